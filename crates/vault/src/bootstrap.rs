//! One-time bootstrap codes: how a workload whose launch parameters the provider's API shows
//! (EC2 user-data) gets its secret environment, and, on its first provision, the files of its
//! `/configs` (a template's, the generated `config.yaml`). The dispatcher stashes the environment here,
//! sealed, and hands the workload only a random code; the agent redeems it once, before it
//! expires, at `POST /registry/bootstrap`. Anyone who reads the user-data later finds a spent
//! or expired code. Only `sha256(code)` is stored.
//!
//! Must not know: HTTP, backends.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use molecule_db::schema::workspace_bootstraps as b;
use molecule_secrets::{ExposeSecret, Sealed, SecretString, Slot, Version};
use time::OffsetDateTime;
use uuid::Uuid;

use molecule_tree::error::{Result, ServiceError};

/// How long a code can be redeemed: longer than an instance takes to boot.
pub const BOOTSTRAP_TTL: Duration = Duration::from_secs(15 * 60);
/// What a sealed environment is bound to besides its workspace.
const SLOT_KEY: &str = "<bootstrap>";

/// What a redeemed code hands over.
#[derive(Debug, Default)]
pub struct Bootstrap {
    pub env: BTreeMap<String, SecretString>,
    /// Files for the workload's `/configs` (relative path → bytes); empty after the first
    /// provision's.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl crate::Vault {
    /// Stashes `env` (and `files` for `/configs`) for workspace `id` and returns the code that
    /// redeems them (replacing any earlier code of the workspace: one provision, one code).
    pub async fn stash_bootstrap(
        &self,
        id: Uuid,
        env: &BTreeMap<String, SecretString>,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<String> {
        use base64::Engine as _;
        let plain: BTreeMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
        let encoded: BTreeMap<&str, String> = files
            .iter()
            .map(|(k, v)| (k.as_str(), base64::engine::general_purpose::STANDARD.encode(v)))
            .collect();
        let json = serde_json::to_string(&serde_json::json!({ "env": plain, "files": encoded }))
            .map_err(|e| ServiceError::internal("encoding a bootstrap", e))?;
        let sealed = self
            .keyring
            .seal(
                Slot::Workspace {
                    workspace_id: id,
                    key: SLOT_KEY,
                },
                &SecretString::from(json),
            )
            .map_err(|e| ServiceError::internal("sealing a bootstrap", e))?;
        let code = molecule_tree::tokens::generate();
        let expires = OffsetDateTime::now_utc() + BOOTSTRAP_TTL;
        let hash = molecule_tree::tokens::hash(&code).to_vec();
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            diesel::delete(b::table.filter(b::workspace_id.eq(id)))
                .execute(conn)
                .await?;
            diesel::insert_into(b::table)
                .values((
                    b::code_hash.eq(hash),
                    b::workspace_id.eq(id),
                    b::sealed_env.eq(&sealed.bytes),
                    b::encryption_version.eq(sealed.version.column()),
                    b::key_id.eq(&sealed.key_id),
                    b::expires_at.eq(expires),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await?;
        Ok(code)
    }

    /// Redeems a code once: the sealed environment of `workspace_id`, or 401 when the code is
    /// unknown, already used, expired or another workspace's.
    /// Files delivered this way mark the workspace's `/configs` seeded.
    pub async fn redeem_bootstrap(&self, workspace_id: Uuid, code: &str) -> Result<Bootstrap> {
        let hash = molecule_tree::tokens::hash(code.trim()).to_vec();
        let mut conn = self.pool.get().await?;
        let row: Option<(Vec<u8>, i16, Option<String>)> = diesel::delete(
            b::table
                .filter(b::code_hash.eq(hash))
                .filter(b::workspace_id.eq(workspace_id))
                .filter(b::expires_at.gt(diesel::dsl::now)),
        )
        .returning((b::sealed_env, b::encryption_version, b::key_id))
        .get_result(&mut conn)
        .await
        .optional()?;
        let Some((bytes, version, key_id)) = row else {
            return Err(ServiceError::Unauthorized(
                "bootstrap code unknown, already used or expired: restart the workspace for a new one".into(),
            ));
        };
        let version = Version::from_column(version).ok_or_else(|| {
            ServiceError::internal(
                "opening a bootstrap",
                molecule_secrets::SecretError::UnknownVersion(version),
            )
        })?;
        let sealed = Sealed { version, key_id, bytes };
        let json = self
            .keyring
            .open(
                Slot::Workspace {
                    workspace_id,
                    key: SLOT_KEY,
                },
                &sealed,
            )
            .map_err(|e| ServiceError::internal("opening a bootstrap", e))?;
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Stashed {
            Full {
                env: BTreeMap<String, String>,
                #[serde(default)]
                files: BTreeMap<String, String>,
            },
            /// A code stashed before files were: the environment alone.
            EnvOnly(BTreeMap<String, String>),
        }
        let stashed: Stashed = serde_json::from_str(json.expose_secret())
            .map_err(|e| ServiceError::internal("decoding a bootstrap", e))?;
        let (env, files) = match stashed {
            Stashed::Full { env, files } => (env, files),
            Stashed::EnvOnly(env) => (env, BTreeMap::new()),
        };
        let files = files
            .into_iter()
            .map(|(k, v)| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(|b| (k, b))
                    .map_err(|e| ServiceError::internal("decoding a bootstrap's files", e))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        drop(conn);
        if !files.is_empty() {
            self.tree.mark_seeded(workspace_id).await?;
        }
        Ok(Bootstrap {
            env: env.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect(),
            files,
        })
    }
}
