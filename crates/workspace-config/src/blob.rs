//! `blob`: the `workspace_config` table, its one owner.
//!
//! Owns: reading a workspace's blob (`{}` when it has none) and merging a patch into it in one
//! statement: top-level keys of the patch replace the stored ones, a `null` value deletes its
//! key (the original could never delete one), and the result must stay under
//! [`MAX_BLOB_BYTES`].
//!
//! Must not know: HTTP, what the keys mean.

use diesel::prelude::*;
use diesel::sql_types::{Array, Jsonb, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_db::schema::workspace_config as c;
use molecule_tree::{Result, ServiceError, Tree};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The most a stored blob may take, as JSON text.
pub const MAX_BLOB_BYTES: usize = 1024 * 1024;

/// The config blobs of one server.
#[derive(Clone)]
pub struct ConfigBlob {
    tree: Tree,
}

impl std::fmt::Debug for ConfigBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigBlob").finish_non_exhaustive()
    }
}

impl ConfigBlob {
    pub fn new(tree: Tree) -> Self {
        Self { tree }
    }

    /// The workspace's blob; `{}` when nothing was ever written.
    pub async fn get(&self, workspace_id: Uuid) -> Result<Map<String, Value>> {
        let mut conn = self.tree.pool().get().await?;
        let data: Option<Value> = c::table
            .find(workspace_id)
            .select(c::data)
            .first(&mut conn)
            .await
            .optional()?;
        Ok(match data {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        })
    }

    /// Merges `patch` (a JSON object) into the workspace's blob and answers the result. 400
    /// naming `body` for anything but an object; 404 for a workspace that is gone; 413 when
    /// the result would pass [`MAX_BLOB_BYTES`] (nothing is written then).
    pub async fn merge(&self, workspace_id: Uuid, patch: Value) -> Result<Map<String, Value>> {
        let Value::Object(patch) = patch else {
            return Err(ServiceError::invalid(
                "body",
                "must be a JSON object: its keys are merged into the config (a null value deletes its key)",
            ));
        };
        self.tree.require_live(workspace_id).await?;
        let deleted: Vec<String> = patch
            .iter()
            .filter(|(_, v)| v.is_null())
            .map(|(k, _)| k.clone())
            .collect();
        let set: Map<String, Value> = patch.into_iter().filter(|(_, v)| !v.is_null()).collect();
        #[derive(QueryableByName)]
        struct Merged {
            #[diesel(sql_type = Jsonb)]
            data: Value,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            size: i32,
        }
        let mut conn = self.tree.pool().get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            let merged: Merged = diesel::sql_query(
                "INSERT INTO workspace_config (workspace_id, data) VALUES ($1, $2 - $3::text[])
                 ON CONFLICT (workspace_id) DO UPDATE
                     SET data = (workspace_config.data || EXCLUDED.data) - $3::text[], updated_at = now()
                 RETURNING data, octet_length(data::text) AS size",
            )
            .bind::<SqlUuid, _>(workspace_id)
            .bind::<Jsonb, _>(Value::Object(set))
            .bind::<Array<Text>, _>(&deleted)
            .get_result(conn)
            .await
            .map_err(|e| match e {
                // Purged between the check and the write.
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::ForeignKeyViolation, _) => {
                    ServiceError::NotFound("workspace not found".into())
                }
                other => other.into(),
            })?;
            let size = usize::try_from(merged.size).unwrap_or(usize::MAX);
            if size > MAX_BLOB_BYTES {
                return Err(ServiceError::TooLarge(format!(
                    "the merged config would take {size} bytes; the most is {MAX_BLOB_BYTES} (delete keys with null)"
                )));
            }
            Ok(match merged.data {
                Value::Object(map) => map,
                _ => Map::new(),
            })
        })
        .await
    }
}
