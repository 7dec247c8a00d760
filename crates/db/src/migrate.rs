//! The embedded migrations of `migrations/` and the functions that apply, revert and check
//! them.

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncMigrationHarness, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{DbError, Pool};

/// Every migration under the repository's `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A set of embedded migrations with the operations the binaries and the test kit need.
/// Other crates (the memory plugin, the ledger) wrap their own sets in the same type.
/// It holds a constructor because diesel's `EmbeddedMigrations` is neither `Clone` nor `Copy`;
/// a `const` is materialised afresh by each call.
#[derive(Clone, Copy)]
pub struct Migrations {
    source: fn() -> EmbeddedMigrations,
    /// Changes whenever any migration file's content changes (computed by the owning crate's
    /// build script), so caches keyed on it never serve an edited schema.
    pub fingerprint: &'static str,
    /// When set, the set lives in this Postgres schema: it is created first, the migrations
    /// run with `search_path` set to it, and the bookkeeping table is kept there (so two
    /// sets sharing a database never see each other's versions).
    schema: Option<&'static str>,
}

impl Default for Migrations {
    fn default() -> Self {
        Self::new(|| MIGRATIONS, env!("MOLECULE_MIGRATIONS_FINGERPRINT"))
    }
}

impl std::fmt::Debug for Migrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.versions()).finish()
    }
}

impl Migrations {
    pub const fn new(source: fn() -> EmbeddedMigrations, fingerprint: &'static str) -> Self {
        Self {
            source,
            fingerprint,
            schema: None,
        }
    }

    /// The same set, kept in its own Postgres schema (see the field).
    pub const fn in_schema(self, schema: &'static str) -> Self {
        Self {
            schema: Some(schema),
            ..self
        }
    }

    /// The bookkeeping table, qualified when the set has its own schema.
    fn bookkeeping(&self) -> String {
        match self.schema {
            Some(s) => format!("\"{s}\".__diesel_schema_migrations"),
            None => "__diesel_schema_migrations".to_owned(),
        }
    }

    /// Points `conn` at this set's schema (creating it) before the harness runs.
    async fn enter(&self, conn: &mut crate::Conn) -> Result<(), DbError> {
        if let Some(s) = self.schema {
            diesel::sql_query(format!("CREATE SCHEMA IF NOT EXISTS \"{s}\""))
                .execute(conn)
                .await?;
            diesel::sql_query(format!("SET search_path TO \"{s}\""))
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    /// Restores `search_path` before the connection goes back to the pool.
    async fn leave(&self, conn: &mut crate::Conn) -> Result<(), DbError> {
        if self.schema.is_some() {
            diesel::sql_query("RESET search_path").execute(conn).await?;
        }
        Ok(())
    }

    /// Versions of every embedded migration, in order.
    pub fn versions(&self) -> Vec<String> {
        MigrationSource::<Pg>::migrations(&(self.source)())
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect())
            .unwrap_or_default()
    }

    /// Applies what is pending; returns the versions applied. Needs the multi-thread runtime
    /// (diesel's harness blocks in place).
    /// Replicas booting together take turns through a session advisory lock, held on the
    /// harness's own connection (so a pool of one connection works too).
    pub async fn run_pending(&self, pool: &Pool) -> Result<Vec<String>, DbError> {
        let key = self.lock_key();
        let mut conn = pool.get().await.map_err(|e| DbError::Pool(e.to_string()))?;
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(key)
            .execute(&mut conn)
            .await?;
        let entered = self.enter(&mut conn).await;
        let mut harness = AsyncMigrationHarness::new(conn);
        let result = match entered {
            Ok(()) => harness
                .run_pending_migrations((self.source)())
                .map(|applied| applied.iter().map(ToString::to_string).collect())
                .map_err(|e| DbError::Migration(e.to_string())),
            Err(e) => Err(e),
        };
        let mut conn = harness.into_inner();
        if self.leave(&mut conn).await.is_err()
            || diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(key)
                .execute(&mut conn)
                .await
                .is_err()
        {
            // The session lock dies with the connection; make sure it is not reused.
            let _ = crate::Conn::take(conn);
        }
        result
    }

    /// Lock key for this migration set (derived from its first version, so two sets differ).
    fn lock_key(&self) -> i64 {
        let mut h: u64 = 0x6d69_6772_6174_6521;
        let versions = self.versions();
        // Slice syntax: diesel's RunQueryDsl would claim a plain `.first()`.
        let first = <[String]>::first(&versions).map(String::as_bytes).unwrap_or_default();
        for b in first {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        i64::from_ne_bytes(h.to_ne_bytes())
    }

    /// Reverts every applied migration of this set, newest first.
    pub async fn revert_all(&self, pool: &Pool) -> Result<Vec<String>, DbError> {
        let mut conn = pool.get().await.map_err(|e| DbError::Pool(e.to_string()))?;
        self.enter(&mut conn).await?;
        let mut harness = AsyncMigrationHarness::new(conn);
        let reverted: Result<Vec<String>, DbError> = harness
            .revert_all_migrations((self.source)())
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(|e| DbError::Migration(e.to_string()));
        let mut conn = harness.into_inner();
        if self.leave(&mut conn).await.is_err() {
            let _ = crate::Conn::take(conn);
        }
        reverted
    }

    /// Versions embedded here but not yet recorded in the database. Plain async SQL, so it is
    /// safe on any runtime (readiness probes run on actix's single-threaded workers).
    pub async fn pending(&self, pool: &Pool) -> Result<Vec<String>, DbError> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            version: String,
        }
        let mut conn = pool.get().await.map_err(|e| DbError::Pool(e.to_string()))?;
        let applied: Vec<Row> = match diesel::sql_query(format!("SELECT version FROM {}", self.bookkeeping()))
            .load(&mut conn)
            .await
        {
            Ok(rows) => rows,
            // No bookkeeping table yet: nothing is applied.
            Err(diesel::result::Error::DatabaseError(_, info)) if info.message().contains("does not exist") => {
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        let applied: std::collections::HashSet<String> = applied.into_iter().map(|r| r.version).collect();
        Ok(self.versions().into_iter().filter(|v| !applied.contains(v)).collect())
    }
}
