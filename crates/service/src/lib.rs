//! `molecule-service`: workspace-server's use-cases.
//!
//! Owns: the workspace tree (create, patch, re-parent, cascade delete and purge), workspace
//! tokens, registration and heartbeats, activity and the inbox, structure events (persisted
//! and fanned out through LISTEN/NOTIFY), the liveness sweep, and the hooks through which the
//! dispatcher and the memory layer join in.
//!
//! Must not know: actix, OpenAPI or any HTTP type. Inputs and answers are `molecule-api`'s wire
//! types (rows stay private to their module); errors are [`ServiceError`]s that the HTTP layer
//! maps to status codes.
//!
//! Modules: `workspaces` (the tree), `tokens`, `registry` (register, heartbeat), `activity`,
//! `events`, `external` (external agents' connection payload and credential rotation), `files` (the Files API and chat uploads: path rules, routed to the dispatcher), `bootstrap` (one-time codes that hand EC2 workloads their secrets), `liveness`, `lifecycle` (restart, pause, resume, collapse), `delegations`,
//! `discovery` (the hierarchy rule on the tree, peers, discover, card updates), `proxy` (the A2A
//! proxy: checks, forward, busy rule, side effects), `messaging` (queue drain on heartbeats,
//! reaper, drop-stale, queue view, budgets), `hibernation` (hibernate, wake), `memory` (agent memory: scope from the tree, redaction, org wrap, audit), `memory_admin`
//! (export, import, edit, initial memories), `memory_backfill` (the original's table into the
//! plugin), `pins`,
//! `org` (org import), `workloads` (what the dispatcher reads and records), `hooks` (the
//! `WorkloadHooks` port), `inbound` (the platform's inbound secret per workspace), `validate` (shared input checks), `recent` (per-workspace last times in memory), `redact` (the one secret redactor), `model` (the model and `LLM_PROVIDER`, stored as the runtime's secrets), `secrets` (workspace and global secrets: sealed rows, merged values, the keyring boot check, rotate-key), `templates` (the `/templates` listing, load errors, import, create's template preflight), `error` (`ServiceError`), `testing`
//! (feature `testing`: fixtures for the tests of the crates above).

pub mod activity;
pub mod bootstrap;
pub mod delegations;
pub mod discovery;
pub mod error;
pub mod events;
pub mod external;
pub mod files;
pub mod hibernation;
pub mod hooks;
pub mod inbound;
pub mod lifecycle;
pub mod liveness;
pub mod memory;
pub mod memory_admin;
pub mod memory_backfill;
pub mod messaging;
pub mod model;
pub mod org;
pub mod pins;
pub mod proxy;
mod recent;
pub mod redact;
pub mod registry;
pub mod secrets;
pub mod templates;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
mod validate;
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
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            liveness_ttl: Duration::from_secs(180),
            platform_url: "http://127.0.0.1:8080".into(),
            saas: false,
            privileged_tiers: false,
        }
    }
}

/// The use-cases, sharing one pool, one event bus and the hooks. Fields are private: other
/// crates call use-cases and named operations, never the pool (this crate owns the SQL).
#[derive(Clone)]
pub struct Services {
    pool: Pool,
    bus: EventBus,
    hooks: Arc<dyn WorkloadHooks>,
    config: ServiceConfig,
    ledger: molecule_ledger::Ledger,
    delegation: delegations::DelegationConfig,
    messaging: proxy::MessagingConfig,
    touches: proxy::Touches,
    targets: proxy::TargetCache,
    /// The memory plugin and the resolver; `None` when `MEMORY_PLUGIN_URL` is unset.
    memory: Option<memory::MemoryLayer>,
    /// Outbound HTTP (A2A to agents).
    http: reqwest::Client,
    /// Platform audit rows, written in groups.
    audits: activity::AuditQueue,
    /// Seals and opens secrets (plaintext when no key is configured).
    keyring: Arc<molecule_secrets::Keyring>,
    /// The inbound secrets read lately.
    inbound: inbound::InboundCache,
    /// The workspace templates under `CONFIGS_DIR`.
    templates: molecule_templates::Registry,
    /// Tokens validated lately.
    token_cache: tokens::TokenCache,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").field("config", &self.config).finish()
    }
}

impl Services {
    /// Fails only if the TLS backend cannot initialise (the outbound A2A client).
    pub fn new(pool: Pool, config: ServiceConfig) -> Result<Self> {
        Ok(Self {
            ledger: molecule_ledger::Ledger::new(pool.clone()),
            pool,
            bus: EventBus::new(),
            hooks: Arc::new(NoHooks),
            config,
            delegation: delegations::DelegationConfig::default(),
            messaging: proxy::MessagingConfig::default(),
            touches: proxy::Touches::default(),
            targets: proxy::TargetCache::default(),
            memory: None,
            audits: activity::AuditQueue::default(),
            keyring: Arc::new(molecule_secrets::Keyring::plaintext()),
            inbound: inbound::InboundCache::default(),
            templates: molecule_templates::Registry::default(),
            token_cache: tokens::TokenCache::default(),
            // No redirects: an agent URL that redirects elsewhere is not followed. A builder
            // error is returned, never replaced by a default client that would follow them.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| ServiceError::internal("building the outbound HTTP client", e))?,
        })
    }

    /// The event bus (streams subscribe here; the binary starts its listener).
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The delegation ledger (the binary starts its sweeper; admin routes read it).
    pub fn ledger(&self) -> &molecule_ledger::Ledger {
        &self.ledger
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub fn with_messaging_config(mut self, config: proxy::MessagingConfig) -> Self {
        self.messaging = config;
        self
    }

    pub fn with_delegation_config(mut self, config: delegations::DelegationConfig) -> Self {
        self.delegation = config;
        self
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

    /// [`Services::authorize_workspace`] of a token the caller has already hashed.
    pub async fn authorize_workspace_digest(
        &self,
        token: &tokens::TokenDigest,
        id: uuid::Uuid,
    ) -> Result<tokens::TokenOwner> {
        let owner = match self.token_cache.get(token, &self.bus) {
            Ok(owner) => owner,
            Err(lookup) => {
                let mut conn = self.pool.get().await?;
                let owner = tokens::validate(&mut conn, token).await?;
                self.token_cache.put(lookup, owner, &self.bus);
                owner
            }
        };
        if owner.workspace_id != id {
            return Err(ServiceError::Forbidden(
                "this token belongs to another workspace".into(),
            ));
        }
        Ok(owner)
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
}
