//! `molecule-tree`: the workspace tree, the core that every other use-case crate of
//! workspace-server builds on.
//!
//! Owns: the `workspaces` row (`row`: every INSERT, UPDATE and DELETE of it, status changes
//! through `row::transition`; `walk`: lineages and subtrees with one depth cap; `workspaces`:
//! the tree, and create and patch as steps
//! on a held connection, so a composing crate can add its own writes to the same transaction), workspace tokens (`tokens`, with the per-replica cache of
//! validated tokens), structure events (`events`: persisted and fanned out through
//! LISTEN/NOTIFY; `recent` keeps each workspace's last event time), activity and the inbox
//! (`activity`, with the grouped audit writer), the lifecycle verbs (`lifecycle`), the
//! liveness sweep (`liveness`), what the dispatcher reads and records (`workloads`), image
//! pins (`pins`), the Files API's path rules (`files`), external agents' connection payload
//! (`external`), the `WorkloadHooks` port (`hooks`), shared input checks (`validate`) and the
//! use-case error, [`ServiceError`] (`error`).
//!
//! Must not know: actix or any HTTP type, backends (they are behind `WorkloadHooks`), secrets
//! at rest, messaging or memory (the crates above compose those; a tree change they must hear
//! of reaches them through the event bus or their composer).

pub mod activity;
pub mod error;
pub mod events;
pub mod external;
pub mod files;
pub mod hooks;
pub mod lifecycle;
pub mod liveness;
pub mod pins;
pub mod recent;
pub mod row;
pub mod tokens;
pub mod validate;
pub mod walk;
pub mod workloads;
pub mod workspaces;

use std::sync::Arc;
use std::time::Duration;

pub use error::{Result, ServiceError};
pub use events::EventBus;
pub use hooks::{HookChain, HookError, NoHooks, WorkloadHooks};
use molecule_db::Pool;

/// Settings the use-cases need (a slice of the server's configuration).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub liveness_ttl: Duration,
    /// Public URL external agents use to reach the platform (their connection payload):
    /// `EXTERNAL_PLATFORM_URL`, else `PLATFORM_URL`.
    pub platform_url: String,
    /// SaaS mode refuses loopback agent URLs.
    pub saas: bool,
    /// `MOLECULE_ALLOW_PRIVILEGED_TIERS`: tiers 3 and 4 get host privileges on Docker.
    pub privileged_tiers: bool,
    /// `APPROVAL_TIMEOUT_MINUTES`: the longest (and default) wait of an approval request.
    pub approval_timeout: Duration,
    /// `SCHEDULER_FIRE_LEASE_SECONDS`: how long a claimed schedule slot is held unless its
    /// replica renews it.
    pub schedule_fire_lease: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            liveness_ttl: Duration::from_secs(180),
            platform_url: "http://127.0.0.1:8080".into(),
            saas: false,
            privileged_tiers: false,
            approval_timeout: Duration::from_secs(10 * 60),
            schedule_fire_lease: Duration::from_secs(60),
        }
    }
}

/// The tree's use-cases, sharing one pool, one event bus and the hooks. Fields are private:
/// other crates call use-cases and named operations, never the pool (this crate owns the SQL
/// of its tables).
#[derive(Clone)]
pub struct Tree {
    pool: Pool,
    bus: EventBus,
    hooks: Arc<dyn WorkloadHooks>,
    config: ServiceConfig,
    /// Platform audit rows, written in groups.
    audits: activity::AuditQueue,
    /// Tokens validated lately.
    token_cache: tokens::TokenCache,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("config", &self.config).finish()
    }
}

impl Tree {
    pub fn new(pool: Pool, config: ServiceConfig) -> Self {
        Self {
            pool,
            bus: EventBus::new(),
            hooks: Arc::new(NoHooks),
            config,
            audits: activity::AuditQueue::default(),
            token_cache: tokens::TokenCache::default(),
        }
    }

    /// The pool, for the crates that compose the tree with tables of their own (they own
    /// their SQL; this crate owns the tree's).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The event bus (streams subscribe here; the binary starts its listener).
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    pub fn hooks(&self) -> &Arc<dyn WorkloadHooks> {
        &self.hooks
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn with_hooks(mut self, hooks: Arc<dyn WorkloadHooks>) -> Self {
        self.hooks = hooks;
        self
    }

    /// Validates a bearer token for workspace `id` (admin callers are checked by the HTTP
    /// layer), through the token cache.
    pub async fn authorize_workspace(&self, token: &str, id: uuid::Uuid) -> Result<tokens::TokenOwner> {
        self.authorize_workspace_digest(&tokens::TokenDigest::of(token), id)
            .await
    }

    /// [`Tree::authorize_workspace`] of a token the caller has already hashed.
    pub async fn authorize_workspace_digest(
        &self,
        token: &tokens::TokenDigest,
        id: uuid::Uuid,
    ) -> Result<tokens::TokenOwner> {
        let owner = self.token_owner(token).await?;
        if owner.workspace_id != id {
            return Err(ServiceError::Forbidden(
                "this token belongs to another workspace".into(),
            ));
        }
        Ok(owner)
    }

    /// Whose live token this is (through the token cache); 401 when it is nobody's.
    pub async fn token_owner(&self, token: &tokens::TokenDigest) -> Result<tokens::TokenOwner> {
        match self.token_cache.get(token, &self.bus) {
            Ok(owner) => Ok(owner),
            Err(lookup) => {
                let mut conn = self.pool.get().await?;
                let owner = tokens::validate(&mut conn, token).await?;
                self.token_cache.put(lookup, owner, &self.bus);
                Ok(owner)
            }
        }
    }

    pub async fn mint_token(&self, id: uuid::Uuid) -> Result<molecule_api::tokens::MintedToken> {
        use diesel_async::AsyncConnection;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| tokens::issue(conn, id, tokens::Issue::Another).await)
            .await
    }

    pub async fn revoke_token(&self, id: uuid::Uuid, token_id: uuid::Uuid) -> Result<()> {
        use diesel_async::AsyncConnection;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            tokens::revoke(conn, id, token_id).await?;
            events::record(
                conn,
                molecule_domain::EventType::TokenRevoked,
                Some(id),
                serde_json::json!({ "token_id": token_id }),
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Revokes every live token and mints one new one (external agents rotating credentials,
    /// and every provision).
    pub async fn rotate_tokens(&self, id: uuid::Uuid) -> Result<molecule_api::tokens::MintedToken> {
        use diesel_async::AsyncConnection;
        let mut conn = self.pool.get().await?;
        conn.transaction::<_, ServiceError, _>(async move |conn| {
            tokens::issue(conn, id, tokens::Issue::Replacing).await
        })
        .await
    }

    pub async fn list_tokens(&self, id: uuid::Uuid) -> Result<Vec<molecule_api::tokens::TokenSummary>> {
        let mut conn = self.pool.get().await?;
        tokens::list(&mut conn, id).await
    }

    pub async fn recent_events(
        &self,
        workspace_id: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<molecule_api::events::Event>> {
        let mut conn = self.pool.get().await?;
        events::recent(&mut conn, workspace_id, limit).await
    }

    /// Persisted events that pass `filter` (the audit view), newest last.
    pub async fn audit_events(
        &self,
        filter: &events::EventFilter,
        limit: i64,
    ) -> Result<Vec<molecule_api::events::Event>> {
        let mut conn = self.pool.get().await?;
        events::matching(&mut conn, filter, limit).await
    }
}
