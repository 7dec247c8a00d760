//! `store`: the `workspace_memory` table, its one owner.
//!
//! Owns: the checks (a key is 1 to 256 characters without `/`, so every written key can be
//! read and deleted by its path; a value is required, at most 256 KiB as JSON), reads that
//! pass over expired entries, the three kinds of write, deletion, and the sweep.
//!
//! A write first deletes the key's expired entry, in the same transaction, so an expired key
//! starts again at version 1 and a create-only write on it succeeds.
//!
//! Must not know: HTTP.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_db::schema::workspace_memory as m;
use molecule_tree::{Result, ServiceError, Tree};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The most characters a key may have.
pub const MAX_KEY_CHARS: usize = 256;
/// The most bytes a value may take, as JSON.
pub const MAX_VALUE_BYTES: usize = 256 * 1024;
/// The most expired entries one sweep deletes.
pub const SWEEP_BATCH: i64 = 5000;

/// An entry as reads answer it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = m)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub version: i64,
    pub expires_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

/// A write.
#[derive(Debug, Clone, Default)]
pub struct Put {
    pub key: String,
    /// Required; `None` is a 400 naming `value`.
    pub value: Option<Value>,
    /// Seconds to live; 0 or less expires the entry at once; absent clears an earlier TTL.
    pub ttl_seconds: Option<i64>,
    /// Write only over this version; `0`: only if the key does not exist.
    pub if_match_version: Option<i64>,
}

/// The key/value memory of one server.
#[derive(Clone)]
pub struct KvMemory {
    tree: Tree,
}

impl std::fmt::Debug for KvMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvMemory").finish_non_exhaustive()
    }
}

/// Checks a key as written or named in a path.
pub fn key_ok(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(ServiceError::invalid("key", "is required"));
    }
    let n = key.chars().count();
    if n > MAX_KEY_CHARS {
        return Err(ServiceError::invalid(
            "key",
            format!("at most {MAX_KEY_CHARS} characters, got {n}"),
        ));
    }
    if key.contains('/') {
        return Err(ServiceError::invalid(
            "key",
            "may not contain '/' (a key is one path segment of /memory/:key)",
        ));
    }
    Ok(())
}

fn live() -> diesel::dsl::Or<diesel::dsl::IsNull<m::expires_at>, diesel::dsl::Gt<m::expires_at, diesel::dsl::now>> {
    m::expires_at.is_null().or(m::expires_at.gt(diesel::dsl::now))
}

fn mismatch(expected: i64, current: Option<i64>) -> ServiceError {
    let message = if current.is_some() {
        "if_match_version mismatch"
    } else {
        "if_match_version mismatch: key does not exist"
    };
    ServiceError::conflict(
        message,
        json!({ "expected_version": expected, "current_version": current }),
    )
}

async fn current_version(conn: &mut AsyncPgConnection, ws: Uuid, key: &str) -> Result<Option<i64>> {
    Ok(m::table
        .filter(m::workspace_id.eq(ws))
        .filter(m::key.eq(key))
        .filter(live())
        .select(m::version)
        .first(conn)
        .await
        .optional()?)
}

impl KvMemory {
    pub fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// The workspace's live entries, by key.
    pub async fn list(&self, ws: Uuid) -> Result<Vec<Entry>> {
        let mut conn = self.tree.pool().get().await?;
        Ok(m::table
            .filter(m::workspace_id.eq(ws))
            .filter(live())
            .order(m::key.asc())
            .select(Entry::as_select())
            .load(&mut conn)
            .await?)
    }

    /// One live entry; 404 `key not found` when it is missing or expired.
    pub async fn get(&self, ws: Uuid, key: &str) -> Result<Entry> {
        let mut conn = self.tree.pool().get().await?;
        m::table
            .filter(m::workspace_id.eq(ws))
            .filter(m::key.eq(key))
            .filter(live())
            .select(Entry::as_select())
            .first(&mut conn)
            .await
            .optional()?
            .ok_or_else(|| ServiceError::NotFound("key not found".into()))
    }

    /// Writes an entry and answers it (its new version). 409 with `expected_version` and
    /// `current_version` when `if_match_version` does not hold.
    pub async fn put(&self, ws: Uuid, put: Put) -> Result<Entry> {
        key_ok(&put.key)?;
        let value = put
            .value
            .ok_or_else(|| ServiceError::invalid("value", "is required (any JSON value)"))?;
        let size = value.to_string().len();
        if size > MAX_VALUE_BYTES {
            return Err(ServiceError::invalid(
                "value",
                format!("at most {MAX_VALUE_BYTES} bytes as JSON, got {size}"),
            ));
        }
        if let Some(v) = put.if_match_version
            && v < 0
        {
            return Err(ServiceError::invalid(
                "if_match_version",
                format!("must be 0 (create only) or a version, got {v}"),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let expires_at = put
            .ttl_seconds
            .map(|t| now + time::Duration::seconds(t.clamp(0, i64::from(i32::MAX))));
        self.tree.require_live(ws).await?;
        let key = put.key;
        let mut conn = self.tree.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            // An expired entry does not count: the key starts again.
            diesel::delete(
                m::table
                    .filter(m::workspace_id.eq(ws))
                    .filter(m::key.eq(&key))
                    .filter(m::expires_at.le(diesel::dsl::now)),
            )
            .execute(conn)
            .await?;
            let insert = diesel::insert_into(m::table).values((
                m::workspace_id.eq(ws),
                m::key.eq(&key),
                m::value.eq(&value),
                m::expires_at.eq(expires_at),
            ));
            // Create-only uses ON CONFLICT DO NOTHING: of two racing creates, the second waits
            // for the first to commit and then writes nothing, a 409 (the original: a
            // unique-violation 500).
            let written: Option<Entry> = match put.if_match_version {
                None => Some(
                    insert
                        .on_conflict((m::workspace_id, m::key))
                        .do_update()
                        .set((
                            m::value.eq(&value),
                            m::expires_at.eq(expires_at),
                            m::version.eq(m::version + 1),
                            m::updated_at.eq(diesel::dsl::now),
                        ))
                        .returning(Entry::as_returning())
                        .get_result(conn)
                        .await?,
                ),
                Some(0) => insert
                    .on_conflict((m::workspace_id, m::key))
                    .do_nothing()
                    .returning(Entry::as_returning())
                    .get_result(conn)
                    .await
                    .optional()?,
                Some(expected) => diesel::update(
                    m::table
                        .filter(m::workspace_id.eq(ws))
                        .filter(m::key.eq(&key))
                        .filter(m::version.eq(expected)),
                )
                .set((
                    m::value.eq(&value),
                    m::expires_at.eq(expires_at),
                    m::version.eq(m::version + 1),
                    m::updated_at.eq(diesel::dsl::now),
                ))
                .returning(Entry::as_returning())
                .get_result(conn)
                .await
                .optional()?,
            };
            match written {
                Some(e) => Ok(e),
                None => {
                    let expected = put.if_match_version.unwrap_or_default();
                    Err(mismatch(expected, current_version(conn, ws, &key).await?))
                }
            }
        })
        .await
    }

    /// Deletes the entry (fine when there is none).
    pub async fn delete(&self, ws: Uuid, key: &str) -> Result<()> {
        let mut conn = self.tree.pool().get().await?;
        diesel::delete(m::table.filter(m::workspace_id.eq(ws)).filter(m::key.eq(key)))
            .execute(&mut conn)
            .await?;
        Ok(())
    }

    /// Deletes expired entries, at most [`SWEEP_BATCH`] a pass; answers how many.
    pub async fn sweep(&self) -> Result<usize> {
        let mut conn = self.tree.pool().get().await?;
        Ok(diesel::sql_query(
            "DELETE FROM workspace_memory WHERE id IN
                 (SELECT id FROM workspace_memory WHERE expires_at <= now() LIMIT $1)",
        )
        .bind::<diesel::sql_types::BigInt, _>(SWEEP_BATCH)
        .execute(&mut conn)
        .await?)
    }
}
