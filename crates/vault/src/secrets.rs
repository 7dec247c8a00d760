//! Workspace and global secrets: set, list (never a value), delete, the merged values an agent
//! reads and a workload is given (globals, then the workspace's own on top), the boot check of
//! the stored key ids, and `rotate-key`. Values are sealed by the server's
//! [`molecule_secrets::Keyring`] before they reach a row, and bound to their row (workspace or
//! global, and key name).
//!
//! A change restarts the workspaces it reaches through the hooks (the dispatcher): a workspace
//! secret its workspace, a global every workspace without an override of that key. Only
//! workspaces that run a workload now are restarted; a paused or hibernated one reads the new
//! values when it next starts.
//!
//! Must not know: HTTP, backends, or how a workload receives its environment.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_api::secrets::{SecretChanged, SecretEntry, SetSecret};
use molecule_db::schema::{global_secrets as gs, workspace_secrets as ws};
use molecule_domain::{EventType, SecretScope, WorkspaceStatus};
use molecule_secrets::{ExposeSecret, Keyring, Sealed, SecretError, SecretString, Slot, Version};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use molecule_tree::error::{Result, ServiceError};

use molecule_tree::events;

/// The largest value accepted (it becomes an environment variable).
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_KEY_CHARS: usize = 256;

/// Statuses whose workload runs now (or is being started): a secret change restarts these.
const RUNNING: [WorkspaceStatus; 5] = [
    WorkspaceStatus::Online,
    WorkspaceStatus::Degraded,
    WorkspaceStatus::Offline,
    WorkspaceStatus::Failed,
    WorkspaceStatus::Provisioning,
];

/// A stored secret that could not be opened: which one, and why (never its value).
#[derive(Debug, thiserror::Error)]
#[error("secret {key} ({scope}) cannot be opened: {source}")]
pub struct OpenFailed {
    pub key: String,
    pub scope: SecretScope,
    #[source]
    pub source: SecretError,
}

/// Checks a key name: an environment variable name, at most 256 characters.
pub fn check_key(key: &str) -> Result<()> {
    let mut chars = key.chars();
    let ok_first = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    if !ok_first || !chars.all(|c| c == '_' || c.is_ascii_alphanumeric()) || key.len() > MAX_KEY_CHARS {
        return Err(ServiceError::invalid(
            "key",
            format!(
                "must match [A-Za-z_][A-Za-z0-9_]* and be at most {MAX_KEY_CHARS} characters (it becomes an environment variable); got {key:?}"
            ),
        ));
    }
    Ok(())
}

/// The reserved workspace secret holding the platform's inbound credential toward the agent
/// (`inbound` issues it; users can neither set nor delete it, and lists never show it).
pub const INBOUND_SECRET_KEY: &str = "MOLECULE_PLATFORM_INBOUND_SECRET";

/// As [`check_key`], and not a key the platform keeps for itself.
pub fn check_user_key(key: &str) -> Result<()> {
    check_key(key)?;
    if key == INBOUND_SECRET_KEY {
        return Err(ServiceError::invalid(
            "key",
            format!("{key} is the platform's own credential toward the agent and cannot be set or deleted"),
        ));
    }
    Ok(())
}

fn check_value(value: &SecretString) -> Result<()> {
    let v = value.expose_secret();
    if v.len() > MAX_VALUE_BYTES {
        return Err(ServiceError::invalid(
            "value",
            format!("at most {MAX_VALUE_BYTES} bytes; got {}", v.len()),
        ));
    }
    if v.contains('\0') {
        return Err(ServiceError::invalid(
            "value",
            "must not contain a NUL character (it cannot be an environment variable)",
        ));
    }
    Ok(())
}

fn seal(keyring: &Keyring, slot: Slot<'_>, value: &SecretString) -> Result<Sealed> {
    keyring
        .seal(slot, value)
        .map_err(|e| ServiceError::internal("sealing a secret", e))
}

fn sealed(version: i16, key_id: Option<String>, bytes: Vec<u8>) -> std::result::Result<Sealed, SecretError> {
    // The column's CHECK admits 0, 1 and 2 only; anything else is a value this build cannot read.
    let version = Version::from_column(version).ok_or(SecretError::UnknownVersion(version))?;
    Ok(Sealed { version, key_id, bytes })
}

/// A row of either table, as read for listing.
#[derive(Queryable)]
struct Listed {
    key: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// A row of either table, as read for opening.
#[derive(Queryable)]
struct Stored {
    key: String,
    encrypted_value: Vec<u8>,
    encryption_version: i16,
    key_id: Option<String>,
}

impl Stored {
    fn open(
        self,
        keyring: &Keyring,
        workspace_id: Option<Uuid>,
    ) -> std::result::Result<(String, SecretString), OpenFailed> {
        let (slot, scope) = match workspace_id {
            Some(workspace_id) => (
                Slot::Workspace {
                    workspace_id,
                    key: &self.key,
                },
                SecretScope::Workspace,
            ),
            None => (Slot::Global { key: &self.key }, SecretScope::Global),
        };
        let fail = |source| OpenFailed {
            key: self.key.clone(),
            scope,
            source,
        };
        let value = sealed(
            self.encryption_version,
            self.key_id.clone(),
            self.encrypted_value.clone(),
        )
        .and_then(|s| keyring.open(slot, &s))
        .map_err(fail)?;
        Ok((self.key, value))
    }
}

/// Writes (inserts or replaces) a workspace secret, sealed for its row.
pub async fn put_workspace_secret(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    workspace_id: Uuid,
    key: &str,
    value: &SecretString,
) -> Result<()> {
    check_key(key)?;
    check_value(value)?;
    let s = seal(keyring, Slot::Workspace { workspace_id, key }, value)?;
    diesel::insert_into(ws::table)
        .values((
            ws::workspace_id.eq(workspace_id),
            ws::key.eq(key),
            ws::encrypted_value.eq(&s.bytes),
            ws::encryption_version.eq(s.version.column()),
            ws::key_id.eq(&s.key_id),
        ))
        .on_conflict((ws::workspace_id, ws::key))
        .do_update()
        .set((
            ws::encrypted_value.eq(&s.bytes),
            ws::encryption_version.eq(s.version.column()),
            ws::key_id.eq(&s.key_id),
            ws::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The workspace's own value of `key`, opened, if it has one.
pub async fn workspace_secret(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    workspace_id: Uuid,
    key: &str,
) -> Result<Option<SecretString>> {
    let row: Option<Stored> = ws::table
        .filter(ws::workspace_id.eq(workspace_id).and(ws::key.eq(key)))
        .select((ws::key, ws::encrypted_value, ws::encryption_version, ws::key_id))
        .first(conn)
        .await
        .optional()?;
    row.map(|r| r.open(keyring, Some(workspace_id)).map(|(_, v)| v))
        .transpose()
        .map_err(|e| ServiceError::internal("opening a stored secret", e))
}

/// Globals, then the workspace's own on top: what the agent reads and the workload is given.
pub async fn merged_values(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    workspace_id: Uuid,
) -> std::result::Result<BTreeMap<String, SecretString>, ServiceError> {
    let globals: Vec<Stored> = gs::table
        .select((gs::key, gs::encrypted_value, gs::encryption_version, gs::key_id))
        .load(conn)
        .await?;
    let own: Vec<Stored> = ws::table
        .filter(ws::workspace_id.eq(workspace_id))
        .select((ws::key, ws::encrypted_value, ws::encryption_version, ws::key_id))
        .load(conn)
        .await?;
    let mut out = BTreeMap::new();
    let opened = globals
        .into_iter()
        .map(|r| r.open(keyring, None))
        .chain(own.into_iter().map(|r| r.open(keyring, Some(workspace_id))));
    for item in opened {
        let (k, v) = item.map_err(|e| ServiceError::internal("opening a stored secret", e))?;
        out.insert(k, v);
    }
    Ok(out)
}

/// How many rows of one table are sealed which way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealingCensus {
    pub plaintext: i64,
    pub legacy: i64,
    /// Version-2 rows per key id.
    pub by_key: BTreeMap<String, i64>,
}

/// What the boot check found (logged by the binary).
#[derive(Debug, Clone, Default)]
pub struct KeyringCheck {
    pub workspace: SealingCensus,
    pub global: SealingCensus,
}

impl KeyringCheck {
    /// Rows not in the form the current key would write (`rotate-key` would re-seal them).
    pub fn stale(&self, keyring: &Keyring) -> i64 {
        [&self.workspace, &self.global]
            .iter()
            .map(|c| {
                let current = keyring
                    .primary_id()
                    .and_then(|id| c.by_key.get(id))
                    .copied()
                    .unwrap_or(0);
                let all: i64 = c.by_key.values().sum::<i64>() + c.legacy + c.plaintext;
                if keyring.primary_id().is_none() {
                    all - c.plaintext
                } else {
                    all - current
                }
            })
            .sum()
    }
}

/// Why the server must not start with this keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeyringRefused {
    #[error(
        "{table} holds {rows} value(s) sealed under key id {key_id}, which is neither SECRETS_ENCRYPTION_KEY ({current}) nor one of SECRETS_PREVIOUS_KEYS: set the key that sealed them (add it to SECRETS_PREVIOUS_KEYS to rotate away from it)"
    )]
    UnknownKey {
        table: &'static str,
        rows: i64,
        key_id: String,
        current: String,
    },
    #[error(
        "{table} holds {rows} value(s) in the original's sealed format (version 1) that open under none of the configured keys: set SECRETS_ENCRYPTION_KEY (or SECRETS_PREVIOUS_KEYS) to the key that sealed them"
    )]
    LegacyUnopenable { table: &'static str, rows: i64 },
    #[error("the database could not be read: {0}")]
    Database(#[source] ServiceError),
}

#[derive(Queryable)]
struct CensusRow {
    version: i16,
    key_id: Option<String>,
    rows: i64,
}

fn census(rows: Vec<CensusRow>) -> SealingCensus {
    let mut c = SealingCensus::default();
    for r in rows {
        match (Version::from_column(r.version), r.key_id) {
            (Some(Version::Bound), Some(id)) => {
                c.by_key.insert(id, r.rows);
            }
            (Some(Version::Legacy), _) => c.legacy += r.rows,
            _ => c.plaintext += r.rows,
        }
    }
    c
}

impl crate::Vault {
    /// The server's keyring (the binary builds it from `SECRETS_ENCRYPTION_KEY`).
    pub fn with_keyring(mut self, keyring: std::sync::Arc<Keyring>) -> Self {
        self.keyring = keyring;
        self
    }

    /// The boot check: every stored key id must be one this server holds, and a legacy value
    /// must open. Counts what it saw, for the boot log.
    pub async fn check_keyring(&self) -> std::result::Result<KeyringCheck, KeyringRefused> {
        use diesel::dsl::count_star;
        let mut conn = self.pool.get().await.map_err(|e| KeyringRefused::Database(e.into()))?;
        let db = |e: diesel::result::Error| KeyringRefused::Database(e.into());
        let w_rows: Vec<CensusRow> = ws::table
            .group_by((ws::encryption_version, ws::key_id))
            .select((ws::encryption_version, ws::key_id, count_star()))
            .load(&mut conn)
            .await
            .map_err(db)?;
        let g_rows: Vec<CensusRow> = gs::table
            .group_by((gs::encryption_version, gs::key_id))
            .select((gs::encryption_version, gs::key_id, count_star()))
            .load(&mut conn)
            .await
            .map_err(db)?;
        let check = KeyringCheck {
            workspace: census(w_rows),
            global: census(g_rows),
        };
        let current = self.keyring.primary_id().unwrap_or("unset").to_owned();
        for (table, c) in [
            ("workspace_secrets", &check.workspace),
            ("global_secrets", &check.global),
        ] {
            if let Some((key_id, rows)) = c.by_key.iter().find(|(id, _)| !self.keyring.knows(id)) {
                return Err(KeyringRefused::UnknownKey {
                    table,
                    rows: *rows,
                    key_id: key_id.clone(),
                    current,
                });
            }
        }
        // A legacy value carries no key id: open one of each table to know the key is right.
        let legacy_w: Option<(Uuid, Stored)> = ws::table
            .filter(ws::encryption_version.eq(Version::Legacy.column()))
            .select((
                ws::workspace_id,
                (ws::key, ws::encrypted_value, ws::encryption_version, ws::key_id),
            ))
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?;
        if let Some((id, row)) = legacy_w
            && row.open(&self.keyring, Some(id)).is_err()
        {
            return Err(KeyringRefused::LegacyUnopenable {
                table: "workspace_secrets",
                rows: check.workspace.legacy,
            });
        }
        let legacy_g: Option<Stored> = gs::table
            .filter(gs::encryption_version.eq(Version::Legacy.column()))
            .select((gs::key, gs::encrypted_value, gs::encryption_version, gs::key_id))
            .first(&mut conn)
            .await
            .optional()
            .map_err(db)?;
        if let Some(row) = legacy_g
            && row.open(&self.keyring, None).is_err()
        {
            return Err(KeyringRefused::LegacyUnopenable {
                table: "global_secrets",
                rows: check.global.legacy,
            });
        }
        Ok(check)
    }

    /// Re-seals up to `batch` rows that are not under the current key (plaintext, legacy, or
    /// an older key), in one transaction per table. Returns how many it re-sealed; 0 means
    /// done. Each call commits, so an interrupted rotation resumes where it stopped.
    pub async fn rotate_key_batch(&self, batch: i64) -> Result<u64> {
        let Some(primary) = self.keyring.primary_id().map(str::to_owned) else {
            return Err(ServiceError::invalid(
                "SECRETS_ENCRYPTION_KEY",
                "rotate-key seals under SECRETS_ENCRYPTION_KEY: set it to the new key (and the old one in SECRETS_PREVIOUS_KEYS)",
            ));
        };
        let keyring = self.keyring.clone();
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let stale_ws = ws::encryption_version
                .ne(Version::Bound.column())
                .or(ws::key_id.ne(&primary));
            let rows: Vec<(Uuid, Uuid, Stored)> = ws::table
                .filter(stale_ws)
                .order(ws::id)
                .limit(batch)
                .for_update()
                .skip_locked()
                .select((
                    ws::id,
                    ws::workspace_id,
                    (ws::key, ws::encrypted_value, ws::encryption_version, ws::key_id),
                ))
                .load(conn)
                .await?;
            let mut done = 0;
            for (row_id, workspace_id, row) in rows {
                let (key, value) = row
                    .open(&keyring, Some(workspace_id))
                    .map_err(|e| ServiceError::internal("opening a secret to re-seal it", e))?;
                let s = seal(
                    &keyring,
                    Slot::Workspace {
                        workspace_id,
                        key: &key,
                    },
                    &value,
                )?;
                diesel::update(ws::table.find(row_id))
                    .set((
                        ws::encrypted_value.eq(&s.bytes),
                        ws::encryption_version.eq(s.version.column()),
                        ws::key_id.eq(&s.key_id),
                    ))
                    .execute(conn)
                    .await?;
                done += 1;
            }
            let stale_gs = gs::encryption_version
                .ne(Version::Bound.column())
                .or(gs::key_id.ne(&primary));
            let rows: Vec<(Uuid, Stored)> = gs::table
                .filter(stale_gs)
                .order(gs::id)
                .limit(batch)
                .for_update()
                .skip_locked()
                .select((
                    gs::id,
                    (gs::key, gs::encrypted_value, gs::encryption_version, gs::key_id),
                ))
                .load(conn)
                .await?;
            for (row_id, row) in rows {
                let (key, value) = row
                    .open(&keyring, None)
                    .map_err(|e| ServiceError::internal("opening a secret to re-seal it", e))?;
                let s = seal(&keyring, Slot::Global { key: &key }, &value)?;
                diesel::update(gs::table.find(row_id))
                    .set((
                        gs::encrypted_value.eq(&s.bytes),
                        gs::encryption_version.eq(s.version.column()),
                        gs::key_id.eq(&s.key_id),
                    ))
                    .execute(conn)
                    .await?;
                done += 1;
            }
            Ok(done)
        })
        .await
    }

    /// How many rows `rotate-key` still has to re-seal.
    pub async fn rotate_key_remaining(&self) -> Result<i64> {
        let check = self.check_keyring().await.map_err(|e| match e {
            KeyringRefused::Database(e) => e,
            other => ServiceError::invalid("SECRETS_PREVIOUS_KEYS", other.to_string()),
        })?;
        Ok(check.stale(&self.keyring))
    }

    /// The workspace's secrets (its own, and the globals it does not override), without values.
    pub async fn list_secrets(&self, id: Uuid) -> Result<Vec<SecretEntry>> {
        let mut conn = self.pool.get().await?;
        live(&mut conn, id).await?;
        let own: Vec<Listed> = ws::table
            .filter(ws::workspace_id.eq(id))
            .filter(ws::key.ne(INBOUND_SECRET_KEY))
            .select((ws::key, ws::created_at, ws::updated_at))
            .load(&mut conn)
            .await?;
        let globals: Vec<Listed> = gs::table
            .select((gs::key, gs::created_at, gs::updated_at))
            .load(&mut conn)
            .await?;
        let mut out: BTreeMap<String, SecretEntry> = BTreeMap::new();
        for (scope, row) in globals
            .into_iter()
            .map(|r| (SecretScope::Global, r))
            .chain(own.into_iter().map(|r| (SecretScope::Workspace, r)))
        {
            out.insert(row.key.clone(), entry(scope, row));
        }
        Ok(out.into_values().collect())
    }

    /// The keys of every global secret (the org import's `required_env` preflight).
    pub async fn global_secret_keys(&self) -> Result<std::collections::BTreeSet<String>> {
        let mut conn = self.pool.get().await?;
        let keys: Vec<String> = gs::table.select(gs::key).load(&mut conn).await?;
        Ok(keys.into_iter().collect())
    }

    /// Every global secret, without values.
    pub async fn list_global_secrets(&self) -> Result<Vec<SecretEntry>> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<Listed> = gs::table
            .order(gs::key.asc())
            .select((gs::key, gs::created_at, gs::updated_at))
            .load(&mut conn)
            .await?;
        Ok(rows.into_iter().map(|r| entry(SecretScope::Global, r)).collect())
    }

    /// The values the workspace's agent sees (globals, then its own on top).
    pub async fn secret_values(&self, id: Uuid) -> Result<BTreeMap<String, SecretString>> {
        let mut conn = self.pool.get().await?;
        live(&mut conn, id).await?;
        merged_values(&mut conn, &self.keyring, id).await
    }

    /// Sets a workspace secret and restarts the workspace if its workload runs.
    pub async fn set_secret(&self, id: Uuid, req: SetSecret) -> Result<SecretChanged> {
        check_user_key(&req.key)?;
        check_value(&req.value)?;
        let keyring = self.keyring.clone();
        let key = req.key.clone();
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            molecule_tree::row::lock_live(conn, id).await?;
            put_workspace_secret(conn, &keyring, id, &key, &req.value).await?;
            events::record(
                conn,
                EventType::SecretSaved,
                Some(id),
                json!({ "key": key, "scope": SecretScope::Workspace }),
            )
            .await
            .map(|_| ())
        })
        .await?;
        let restarted = self.restart_for_secret(Some(id), &req.key).await?;
        Ok(SecretChanged {
            status: "saved",
            key: req.key,
            restarted,
        })
    }

    /// Deletes a workspace secret (404 if it has none of that key) and restarts the workspace
    /// if its workload runs.
    pub async fn delete_secret(&self, id: Uuid, key: &str) -> Result<SecretChanged> {
        check_user_key(key)?;
        let owned = key.to_owned();
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            molecule_tree::row::lock_live(conn, id).await?;
            let gone = delete_workspace_secret(conn, id, &owned).await?;
            if gone == 0 {
                return Err(ServiceError::NotFound(format!("workspace {id} has no secret {owned}")));
            }
            events::record(
                conn,
                EventType::SecretDeleted,
                Some(id),
                json!({ "key": owned, "scope": SecretScope::Workspace }),
            )
            .await
            .map(|_| ())
        })
        .await?;
        let restarted = self.restart_for_secret(Some(id), key).await?;
        Ok(SecretChanged {
            status: "deleted",
            key: key.to_owned(),
            restarted,
        })
    }

    /// Sets a global secret and restarts every running workspace that does not override it.
    pub async fn set_global_secret(&self, req: SetSecret) -> Result<SecretChanged> {
        check_key(&req.key)?;
        check_value(&req.value)?;
        let s = seal(&self.keyring, Slot::Global { key: &req.key }, &req.value)?;
        let key = req.key.clone();
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            diesel::insert_into(gs::table)
                .values((
                    gs::key.eq(&key),
                    gs::encrypted_value.eq(&s.bytes),
                    gs::encryption_version.eq(s.version.column()),
                    gs::key_id.eq(&s.key_id),
                ))
                .on_conflict(gs::key)
                .do_update()
                .set((
                    gs::encrypted_value.eq(&s.bytes),
                    gs::encryption_version.eq(s.version.column()),
                    gs::key_id.eq(&s.key_id),
                    gs::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            events::record(
                conn,
                EventType::SecretSaved,
                None,
                json!({ "key": key, "scope": SecretScope::Global }),
            )
            .await
            .map(|_| ())
        })
        .await?;
        let restarted = self.restart_for_secret(None, &req.key).await?;
        Ok(SecretChanged {
            status: "saved",
            key: req.key,
            restarted,
        })
    }

    /// Deletes a global secret (404 if there is none) and restarts every running workspace
    /// that does not override it.
    pub async fn delete_global_secret(&self, key: &str) -> Result<SecretChanged> {
        check_key(key)?;
        let owned = key.to_owned();
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let gone = diesel::delete(gs::table.filter(gs::key.eq(&owned)))
                .execute(conn)
                .await?;
            if gone == 0 {
                return Err(ServiceError::NotFound(format!("no global secret {owned}")));
            }
            events::record(
                conn,
                EventType::SecretDeleted,
                None,
                json!({ "key": owned, "scope": SecretScope::Global }),
            )
            .await
            .map(|_| ())
        })
        .await?;
        let restarted = self.restart_for_secret(None, key).await?;
        Ok(SecretChanged {
            status: "deleted",
            key: key.to_owned(),
            restarted,
        })
    }

    /// Restarts, through the hooks, the workspaces a change of `key` reaches: `Some(id)` that
    /// one; `None` (a global) every one without its own `key`. Only workloads that run now.
    pub async fn restart_for_secret(&self, id: Option<Uuid>, key: &str) -> Result<Vec<Uuid>> {
        if !self.hooks.has_provisioner() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().await?;
        let overriding: Vec<Uuid> = match id {
            Some(_) => Vec::new(),
            None => {
                ws::table
                    .filter(ws::key.eq(key.to_owned()))
                    .select(ws::workspace_id)
                    .load(&mut conn)
                    .await?
            }
        };
        let ids = molecule_tree::workspaces::running_workloads(&mut conn, &RUNNING, id, &overriding).await?;
        drop(conn);
        for id in &ids {
            self.hooks.restart(*id, false).await;
        }
        Ok(ids)
    }

    /// What the dispatcher hands the workload besides the platform's own variables: globals,
    /// then the workspace's secrets. An unopenable value is an error naming the key.
    pub async fn secret_env(&self, id: Uuid) -> Result<BTreeMap<String, SecretString>> {
        let mut conn = self.pool.get().await?;
        merged_values(&mut conn, &self.keyring, id).await
    }
}

/// Deletes a workspace's secret `key`; how many rows went (0 or 1).
pub async fn delete_workspace_secret(conn: &mut AsyncPgConnection, id: Uuid, key: &str) -> Result<usize> {
    Ok(
        diesel::delete(ws::table.filter(ws::workspace_id.eq(id).and(ws::key.eq(key))))
            .execute(conn)
            .await?,
    )
}

async fn live(conn: &mut AsyncPgConnection, id: Uuid) -> Result<()> {
    let status = molecule_tree::row::status_of(conn, id, molecule_tree::row::Lock::No).await?;
    molecule_tree::row::require_live_status(id, status).map(|_| ())
}

fn entry(scope: SecretScope, r: Listed) -> SecretEntry {
    SecretEntry {
        key: r.key,
        has_value: true,
        scope,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}
