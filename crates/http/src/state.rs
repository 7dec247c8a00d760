//! The state every handler shares: the services, the pool, the credentials configuration and
//! the settings of the optional parts (metrics, the memory plugin, MCP). Its own module so
//! that the extractors, the routes and the server all depend on it and on nothing of each
//! other.
//!
//! Must not know: routing, HTTP shapes, SQL.

use molecule_db::{Migrations, Pool};
use molecule_periodic::Periodic;
use molecule_service::{ServiceConfig, Services};
use molecule_tree::tokens::TokenDigest;

/// Credentials configuration (from `ADMIN_TOKEN`).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// The admin token's digest (the token itself is not kept).
    pub(crate) admin_token: Option<TokenDigest>,
    /// Whether `GET /admin/workspaces/:id/test-token` answers (else 404): outside production,
    /// or with `MOLECULE_ENABLE_TEST_TOKENS=1`.
    pub test_tokens: bool,
    /// The key the console's session cookies are signed with, derived from the admin token
    /// (rotating the token ends every console session); none without one.
    pub(crate) console_key: Option<[u8; 32]>,
}

impl AuthConfig {
    pub fn new(admin_token: Option<&str>, test_tokens: bool) -> Self {
        let console_key = admin_token.map(|t| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, t.as_bytes());
            let mut out = [0u8; 32];
            out.copy_from_slice(ring::hmac::sign(&key, b"molecule-console-session/1").as_ref());
            out
        });
        Self {
            admin_token: admin_token.map(TokenDigest::of),
            test_tokens,
            console_key,
        }
    }
}

/// Shared state of every request handler.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub migrations: Migrations,
    pub services: Services,
    pub auth: AuthConfig,
    /// Background loops whose stats `/admin/liveness` shows.
    pub tasks: Vec<Periodic>,
    /// `MOLECULE_ORG_ID`: when set, requests must carry a matching `X-Molecule-Org-Id`.
    pub org_id: Option<String>,
    /// `MOLECULE_ORG_TEMPLATES_DIR`: where `POST /org/import {dir}` looks.
    pub org_templates_dir: Option<std::path::PathBuf>,
    /// Renders `/metrics` (the binary installs the recorder; `None` answers 503).
    pub metrics: Option<MetricsRender>,
    /// The memory plugin (`MEMORY_PLUGIN_URL`), when configured.
    pub memory_plugin: Option<std::sync::Arc<molecule_memory_contract::client::PluginClient>>,
    /// The MCP endpoint's settings (its rate limiter is shared by every worker).
    pub mcp: molecule_mcp::McpSettings,
    /// The workload terminals open on this replica and their limits.
    pub terminals: crate::terminals::Terminals,
    /// `CORS_ORIGINS`: the cross-origin pages that may call the API.
    pub cors_origins: crate::browser::CorsOrigins,
    /// `RATE_LIMIT` per client (none in dev mode and in-process tests).
    pub limits: crate::limits::RequestLimits,
    /// `METRICS_PUBLIC`: `/metrics` without a token (for scrapers that cannot send one).
    pub metrics_public: bool,
}

/// Renders the process's metrics in the Prometheus text format.
pub type MetricsRender = std::sync::Arc<dyn Fn() -> String + Send + Sync>;

impl AppState {
    /// State with default service settings (tests).
    pub fn for_tests(pool: Pool, admin_token: Option<String>) -> Result<Self, molecule_service::ServiceError> {
        Ok(Self {
            services: Services::new(pool.clone(), ServiceConfig::default())?,
            pool,
            migrations: Migrations::default(),
            auth: AuthConfig::new(admin_token.as_deref(), true),
            tasks: Vec::new(),
            org_id: None,
            org_templates_dir: None,
            metrics: None,
            memory_plugin: None,
            mcp: molecule_mcp::McpSettings::default(),
            terminals: crate::terminals::Terminals::default(),
            cors_origins: crate::browser::CorsOrigins::default(),
            limits: crate::limits::RequestLimits::off(),
            metrics_public: false,
        })
    }
}
