//! `molecule-config`: every knob of both binaries, in one place.
//!
//! Owns: the configuration structs, their defaults, the list of knobs (environment variable,
//! default, meaning) that docs/configuration.md's table is checked against, and loading through figment
//! in the order defaults < optional TOML file < environment. Keys in the TOML file are the
//! environment variable names in lower case (`port = 8080`, `admin_token = "…"`).
//!
//! Must not know: what the knobs drive. This is the only crate that reads the process
//! environment; everything else receives typed values.
//!
//! Modules: `knobs` (the knob table), `lenient` (values figment may have typed), `sections`
//! (typed sections for the components, with the fall-back-and-warn rules).

// This crate is the one reader of the environment (Architecture Invariant 6).
#![allow(clippy::disallowed_methods)]
mod knobs;
mod lenient;
mod sections;

pub use sections::{
    BackendChoice, DEFAULT_DELEGATION_STUCK_THRESHOLD_S, DEFAULT_DELEGATION_SWEEPER_INTERVAL_S,
    DEFAULT_PROVISION_CONCURRENCY, DelegationSweeper,
};

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use knobs::{AGENT_KNOBS, Knob, PLUGIN_KNOBS, SERVER_KNOBS, SHARED_KNOBS};

/// Environment variable naming the TOML file (the `--config` flag wins over it).
pub const CONFIG_FILE_ENV: &str = "MOLECULE_CONFIG";

/// Invalid configuration. The message names the file, key or environment variable to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Log output shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Logging and tracing knobs shared by both binaries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Telemetry {
    /// `RUST_LOG`-style filter.
    pub rust_log: String,
    /// `MOLECULE_LOG_FORMAT`: `pretty` or `json`.
    pub molecule_log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: when set, spans are exported over OTLP/HTTP.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME`: overrides the binary's own name in exported spans.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub otel_service_name: Option<String>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            rust_log: "info".into(),
            molecule_log_format: LogFormat::Pretty,
            otel_exporter_otlp_endpoint: None,
            otel_service_name: None,
        }
    }
}

/// workspace-server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerConfig {
    #[serde(deserialize_with = "lenient::string")]
    pub database_url: String,
    pub port: u16,
    pub molecule_bind_addr: IpAddr,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub admin_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_org_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_env: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub secrets_encryption_key: Option<String>,
    /// Older keys, comma-separated: they open values sealed under them but never seal
    /// (`workspace-server secrets rotate-key` re-seals those values under the current key).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub secrets_previous_keys: Option<String>,
    /// `GET /admin/workspaces/:id/test-token` answers in production only with this set.
    #[serde(deserialize_with = "lenient::flag")]
    pub molecule_enable_test_tokens: bool,
    pub liveness_ttl_seconds: u64,
    pub liveness_sweep_interval_seconds: u64,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub platform_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub external_platform_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_deploy_mode: Option<String>,
    /// Raw: an invalid value falls back to the default with a warning (the original's rule).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub delegation_sweeper_interval_s: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub delegation_stuck_threshold_s: Option<String>,
    #[serde(deserialize_with = "lenient::flag")]
    pub delegation_result_inbox_push: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub delegation_ledger_write: Option<String>,
    pub delegation_a2a_timeout_seconds: u64,
    pub a2a_idle_timeout_seconds: u64,
    pub a2a_queue_ttl_seconds: u64,
    pub a2a_queue_retention_seconds: u64,
    pub a2a_queue_lease_seconds: u64,
    pub a2a_queue_reap_interval_seconds: u64,
    pub hibernation_sweep_interval_seconds: u64,
    /// How often the scheduler looks for due schedules.
    pub scheduler_poll_interval_seconds: u64,
    /// How long a claimed schedule slot is held unless its replica renews it.
    pub scheduler_fire_lease_seconds: u64,
    /// How long an approval request waits for a decision, at most (and by default).
    pub approval_timeout_minutes: u64,
    /// How often pending approvals past their deadline are expired.
    pub approval_expiry_interval_seconds: u64,
    /// How often expired key/value memory entries are deleted.
    pub kv_memory_sweep_interval_seconds: u64,
    /// Where the chat vendors are (a local fake, a forward proxy); unset: their public hosts.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub telegram_api_base: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub slack_api_base: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub discord_api_base: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub lark_api_base: Option<String>,
    /// The Discord application key of rows without their own `public_key`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub discord_app_public_key: Option<String>,
    /// GitHub's webhook secret (unset: `/webhooks/github` answers 503).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub github_webhook_secret: Option<String>,
    /// How long a Telegram row's poller holds it unless its replica renews the lease.
    pub channel_poller_lease_seconds: u64,
    /// How long one Telegram `getUpdates` long poll waits.
    pub telegram_poll_timeout_seconds: u64,
    /// How often each replica starts the pollers it can take and the channels' sweep runs.
    pub channel_supervise_interval_seconds: u64,
    /// Offer the MCP tool `send_message_to_user`.
    #[serde(deserialize_with = "lenient::flag")]
    pub molecule_mcp_allow_send_message: bool,
    /// MCP calls a minute per token.
    pub molecule_mcp_calls_per_minute: u64,
    /// Origins allowed to call the API from a browser (comma-separated, or `*`); unset: the
    /// original canvas's development origins.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub cors_origins: Option<String>,
    /// Serve `/metrics` without a token.
    #[serde(deserialize_with = "lenient::flag")]
    pub metrics_public: bool,
    /// Requests a minute per client (per replica); not applied in dev mode.
    pub rate_limit: u64,
    /// Proxies whose `X-Forwarded-For` names the client (addresses or CIDR networks).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub trusted_proxies: Option<String>,
    /// Open terminals a workspace may have at once (per replica).
    pub terminal_max_sessions_per_workspace: u64,
    /// A terminal closes after this long with nothing typed and nothing printed.
    pub terminal_idle_timeout_seconds: u64,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_backend: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_platform_instance: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub molecule_docker_network: String,
    /// Grant tiers 3 and 4 the original's host privileges (privileged, host PID; T4 also host
    /// network and the Docker socket).
    #[serde(deserialize_with = "lenient::flag")]
    pub molecule_allow_privileged_tiers: bool,
    #[serde(default)]
    pub tier1_memory_mb: Option<u64>,
    #[serde(default)]
    pub tier2_memory_mb: Option<u64>,
    #[serde(default)]
    pub tier3_memory_mb: Option<u64>,
    #[serde(default)]
    pub tier4_memory_mb: Option<u64>,
    #[serde(default)]
    pub tier1_cpu_shares: Option<u64>,
    #[serde(default)]
    pub tier2_cpu_shares: Option<u64>,
    #[serde(default)]
    pub tier3_cpu_shares: Option<u64>,
    #[serde(default)]
    pub tier4_cpu_shares: Option<u64>,
    #[serde(deserialize_with = "lenient::string")]
    pub molecule_workspace_image: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_runtime_images: Option<String>,
    #[serde(deserialize_with = "lenient::flag")]
    pub workspace_image_local_override: bool,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_provision_concurrency: Option<String>,
    #[serde(default)]
    pub provision_timeout_seconds: Option<u64>,
    pub provision_timeout_sweep_interval_seconds: u64,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub configs_dir: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub molecule_data_dir: String,
    #[serde(deserialize_with = "lenient::string")]
    pub molecule_local_agent_command: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_agent_env: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_container_platform_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_org_templates_dir: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_ec2_default_ami: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_ec2_amis: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub molecule_ec2_default_instance_type: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_ec2_instance_types: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_ec2_subnet_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_ec2_security_group_ids: Option<String>,
    pub molecule_reconcile_grace_seconds: u64,
    pub molecule_reconcile_interval_seconds: u64,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub memory_plugin_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub memory_plugin_timeout: Option<String>,
    pub molecule_db_pool_size: usize,
    pub molecule_db_connect_timeout_seconds: u64,
    pub molecule_shutdown_timeout_seconds: u64,
    #[serde(flatten)]
    pub telemetry: Telemetry,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            database_url: "postgres://dev:dev@localhost:5432/molecule?sslmode=disable".into(),
            port: 8080,
            molecule_bind_addr: IpAddr::from([0, 0, 0, 0]),
            admin_token: None,
            molecule_org_id: None,
            molecule_env: None,
            secrets_encryption_key: None,
            secrets_previous_keys: None,
            molecule_enable_test_tokens: false,
            liveness_ttl_seconds: 180,
            liveness_sweep_interval_seconds: 30,
            platform_url: None,
            external_platform_url: None,
            molecule_deploy_mode: None,
            delegation_sweeper_interval_s: None,
            delegation_stuck_threshold_s: None,
            delegation_result_inbox_push: true,
            delegation_ledger_write: None,
            delegation_a2a_timeout_seconds: 1800,
            a2a_idle_timeout_seconds: 300,
            a2a_queue_ttl_seconds: 86_400,
            a2a_queue_retention_seconds: 604_800,
            a2a_queue_lease_seconds: 60,
            a2a_queue_reap_interval_seconds: 60,
            scheduler_poll_interval_seconds: 5,
            scheduler_fire_lease_seconds: 60,
            approval_timeout_minutes: 10,
            approval_expiry_interval_seconds: 15,
            kv_memory_sweep_interval_seconds: 300,
            telegram_api_base: None,
            slack_api_base: None,
            discord_api_base: None,
            lark_api_base: None,
            discord_app_public_key: None,
            github_webhook_secret: None,
            channel_poller_lease_seconds: 15,
            telegram_poll_timeout_seconds: 10,
            channel_supervise_interval_seconds: 2,
            hibernation_sweep_interval_seconds: 60,
            molecule_mcp_allow_send_message: false,
            molecule_mcp_calls_per_minute: 120,
            cors_origins: None,
            metrics_public: false,
            rate_limit: 600,
            trusted_proxies: None,
            terminal_max_sessions_per_workspace: 4,
            terminal_idle_timeout_seconds: 1800,
            molecule_backend: None,
            molecule_platform_instance: None,
            molecule_docker_network: "bridge".into(),
            molecule_allow_privileged_tiers: false,
            tier1_memory_mb: None,
            tier2_memory_mb: None,
            tier3_memory_mb: None,
            tier4_memory_mb: None,
            tier1_cpu_shares: None,
            tier2_cpu_shares: None,
            tier3_cpu_shares: None,
            tier4_cpu_shares: None,
            molecule_workspace_image: "molecule-agent:latest".into(),
            molecule_runtime_images: None,
            workspace_image_local_override: false,
            molecule_provision_concurrency: None,
            provision_timeout_seconds: None,
            provision_timeout_sweep_interval_seconds: 30,
            configs_dir: None,
            molecule_data_dir: ".molecule/data".into(),
            molecule_local_agent_command: "molecule-agent".into(),
            molecule_agent_env: None,
            molecule_container_platform_url: None,
            molecule_org_templates_dir: None,
            molecule_ec2_default_ami: None,
            molecule_ec2_amis: None,
            molecule_ec2_default_instance_type: "t3.micro".into(),
            molecule_ec2_instance_types: None,
            molecule_ec2_subnet_id: None,
            molecule_ec2_security_group_ids: None,
            molecule_reconcile_grace_seconds: 300,
            molecule_reconcile_interval_seconds: 60,
            memory_plugin_url: None,
            memory_plugin_timeout: None,
            molecule_db_pool_size: 16,
            molecule_db_connect_timeout_seconds: 5,
            molecule_shutdown_timeout_seconds: 30,
            telemetry: Telemetry::default(),
        }
    }
}

impl ServerConfig {
    /// Loads defaults < `file` (or `$MOLECULE_CONFIG`) < environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let cfg: Self = extract(
            Serialized::defaults(Self::default()),
            file,
            &[SHARED_KNOBS, SERVER_KNOBS],
        )?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.molecule_bind_addr, self.port)
    }

    /// Dev mode per the original: `MOLECULE_ENV` is `dev` or `development` (no rate limit).
    pub fn is_dev(&self) -> bool {
        matches!(self.molecule_env.as_deref(), Some("dev" | "development"))
    }

    /// Production per the original: `MOLECULE_ENV` is `prod` or `production`.
    pub fn is_production(&self) -> bool {
        matches!(self.molecule_env.as_deref(), Some("prod" | "production"))
    }

    /// Whether the admin test-token route answers: outside production, or when
    /// `MOLECULE_ENABLE_TEST_TOKENS` says so.
    pub fn test_tokens_enabled(&self) -> bool {
        !self.is_production() || self.molecule_enable_test_tokens
    }

    /// `MOLECULE_RUNTIME_IMAGES` (`runtime=image,runtime=image`).
    pub fn runtime_images(&self) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
        pairs("MOLECULE_RUNTIME_IMAGES", self.molecule_runtime_images.as_deref())
    }

    /// `MOLECULE_EC2_AMIS` (`runtime=ami-…`).
    pub fn ec2_amis(&self) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
        pairs("MOLECULE_EC2_AMIS", self.molecule_ec2_amis.as_deref())
    }

    /// `MOLECULE_EC2_INSTANCE_TYPES` (`runtime=t3.large`).
    pub fn ec2_instance_types(&self) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
        pairs(
            "MOLECULE_EC2_INSTANCE_TYPES",
            self.molecule_ec2_instance_types.as_deref(),
        )
    }

    /// `MEMORY_PLUGIN_TIMEOUT` as a duration: Go-style (`2s`, `500ms`, `1m30s`); unset,
    /// unparsable or not positive means 2 s (the original's rule), with a warning for the
    /// last two.
    pub fn memory_plugin_timeout(&self) -> std::time::Duration {
        const DEFAULT: std::time::Duration = std::time::Duration::from_secs(2);
        let Some(raw) = self.memory_plugin_timeout.as_deref() else {
            return DEFAULT;
        };
        match humantime::parse_duration(raw.trim()) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                tracing::warn!(
                    value = raw,
                    "MEMORY_PLUGIN_TIMEOUT is not a positive duration such as 2s; using 2s"
                );
                DEFAULT
            }
        }
    }

    /// `MOLECULE_AGENT_ENV` (`NAME=value,NAME=value`).
    pub fn agent_env(&self) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
        pairs("MOLECULE_AGENT_ENV", self.molecule_agent_env.as_deref())
    }

    /// SaaS mode: `MOLECULE_DEPLOY_MODE=saas`, or, when that is unset, `MOLECULE_ORG_ID` set.
    pub fn is_saas(&self) -> bool {
        match self.molecule_deploy_mode.as_deref() {
            Some(mode) => mode == "saas",
            None => self.molecule_org_id.is_some(),
        }
    }

    /// The URL agents use to reach this server: `PLATFORM_URL`, else derived from `PORT`.
    pub fn platform_url(&self) -> String {
        self.platform_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", self.port))
    }

    /// The URL external agents are told to use: `EXTERNAL_PLATFORM_URL`, else
    /// [`Self::platform_url`], without a trailing `/` (endpoints are appended to it).
    pub fn external_platform_url(&self) -> String {
        self.external_platform_url
            .clone()
            .unwrap_or_else(|| self.platform_url())
            .trim_end_matches('/')
            .to_owned()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        positive("LIVENESS_TTL_SECONDS", self.liveness_ttl_seconds)?;
        positive("LIVENESS_SWEEP_INTERVAL_SECONDS", self.liveness_sweep_interval_seconds)?;
        positive("DELEGATION_A2A_TIMEOUT_SECONDS", self.delegation_a2a_timeout_seconds)?;
        positive("A2A_IDLE_TIMEOUT_SECONDS", self.a2a_idle_timeout_seconds)?;
        positive("A2A_QUEUE_TTL_SECONDS", self.a2a_queue_ttl_seconds)?;
        positive("A2A_QUEUE_RETENTION_SECONDS", self.a2a_queue_retention_seconds)?;
        positive("A2A_QUEUE_LEASE_SECONDS", self.a2a_queue_lease_seconds)?;
        positive("A2A_QUEUE_REAP_INTERVAL_SECONDS", self.a2a_queue_reap_interval_seconds)?;
        positive("SCHEDULER_POLL_INTERVAL_SECONDS", self.scheduler_poll_interval_seconds)?;
        if self.scheduler_fire_lease_seconds < 3 {
            return Err(ConfigError::Invalid(
                "SCHEDULER_FIRE_LEASE_SECONDS must be at least 3 (the firing replica renews its hold every third of it)"
                    .into(),
            ));
        }
        positive("APPROVAL_TIMEOUT_MINUTES", self.approval_timeout_minutes)?;
        positive(
            "APPROVAL_EXPIRY_INTERVAL_SECONDS",
            self.approval_expiry_interval_seconds,
        )?;
        positive(
            "KV_MEMORY_SWEEP_INTERVAL_SECONDS",
            self.kv_memory_sweep_interval_seconds,
        )?;
        if self.channel_poller_lease_seconds < 3 {
            return Err(ConfigError::Invalid(
                "CHANNEL_POLLER_LEASE_SECONDS must be at least 3 (a poller renews its lease every third of it)".into(),
            ));
        }
        if !(1..=50).contains(&self.telegram_poll_timeout_seconds) {
            return Err(ConfigError::Invalid(
                "TELEGRAM_POLL_TIMEOUT_SECONDS must be 1 to 50 (Telegram's long poll)".into(),
            ));
        }
        positive(
            "CHANNEL_SUPERVISE_INTERVAL_SECONDS",
            self.channel_supervise_interval_seconds,
        )?;
        for (var, value) in [
            ("TELEGRAM_API_BASE", &self.telegram_api_base),
            ("SLACK_API_BASE", &self.slack_api_base),
            ("DISCORD_API_BASE", &self.discord_api_base),
            ("LARK_API_BASE", &self.lark_api_base),
        ] {
            if let Some(v) = value
                && !(v.starts_with("http://") || v.starts_with("https://"))
            {
                return Err(ConfigError::Invalid(format!(
                    "{var} must be an http:// or https:// origin (got {v:?})"
                )));
            }
        }
        positive(
            "HIBERNATION_SWEEP_INTERVAL_SECONDS",
            self.hibernation_sweep_interval_seconds,
        )?;
        positive("MOLECULE_MCP_CALLS_PER_MINUTE", self.molecule_mcp_calls_per_minute)?;
        positive(
            "TERMINAL_MAX_SESSIONS_PER_WORKSPACE",
            self.terminal_max_sessions_per_workspace,
        )?;
        positive("TERMINAL_IDLE_TIMEOUT_SECONDS", self.terminal_idle_timeout_seconds)?;
        positive("RATE_LIMIT", self.rate_limit)?;
        positive(
            "PROVISION_TIMEOUT_SWEEP_INTERVAL_SECONDS",
            self.provision_timeout_sweep_interval_seconds,
        )?;
        self.backend()?;
        self.runtime_images()?;
        self.agent_env()?;
        positive("MOLECULE_DB_POOL_SIZE", self.molecule_db_pool_size as u64)?;
        positive(
            "MOLECULE_DB_CONNECT_TIMEOUT_SECONDS",
            self.molecule_db_connect_timeout_seconds,
        )?;
        if self.is_production() && self.secrets_encryption_key.is_none() {
            return Err(ConfigError::Invalid(
                "SECRETS_ENCRYPTION_KEY must be set when MOLECULE_ENV is production (secrets would be stored in plaintext)".into(),
            ));
        }
        Ok(())
    }
}

/// memory-plugin-postgres configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginConfig {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub memory_plugin_database_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub database_url: Option<String>,
    pub memory_plugin_listen_addr: SocketAddr,
    #[serde(deserialize_with = "lenient::flag")]
    pub memory_plugin_skip_migrate: bool,
    pub memory_plugin_janitor_interval_seconds: u64,
    pub memory_plugin_max_body_bytes: usize,
    pub molecule_db_pool_size: usize,
    pub molecule_db_connect_timeout_seconds: u64,
    pub molecule_shutdown_timeout_seconds: u64,
    #[serde(flatten)]
    pub telemetry: Telemetry,
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            memory_plugin_database_url: None,
            database_url: None,
            memory_plugin_listen_addr: SocketAddr::from(([127, 0, 0, 1], 9100)),
            memory_plugin_skip_migrate: false,
            memory_plugin_janitor_interval_seconds: 60,
            memory_plugin_max_body_bytes: 1 << 20,
            molecule_db_pool_size: 16,
            molecule_db_connect_timeout_seconds: 5,
            molecule_shutdown_timeout_seconds: 30,
            telemetry: Telemetry::default(),
        }
    }
}

impl PluginConfig {
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let cfg: Self = extract(
            Serialized::defaults(Self::default()),
            file,
            &[SHARED_KNOBS, PLUGIN_KNOBS],
        )?;
        cfg.database_url()?;
        positive("MOLECULE_DB_POOL_SIZE", cfg.molecule_db_pool_size as u64)?;
        positive(
            "MEMORY_PLUGIN_JANITOR_INTERVAL_SECONDS",
            cfg.memory_plugin_janitor_interval_seconds,
        )?;
        positive("MEMORY_PLUGIN_MAX_BODY_BYTES", cfg.memory_plugin_max_body_bytes as u64)?;
        positive(
            "MOLECULE_DB_CONNECT_TIMEOUT_SECONDS",
            cfg.molecule_db_connect_timeout_seconds,
        )?;
        Ok(cfg)
    }

    /// `MEMORY_PLUGIN_DATABASE_URL`, falling back to `DATABASE_URL`.
    pub fn database_url(&self) -> Result<&str, ConfigError> {
        self.memory_plugin_database_url
            .as_deref()
            .or(self.database_url.as_deref())
            .ok_or_else(|| {
                ConfigError::Invalid("set MEMORY_PLUGIN_DATABASE_URL (or DATABASE_URL) to the plugin's Postgres".into())
            })
    }
}

/// molecule-agent (the reference agent) configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentConfig {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub workspace_id: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub platform_url: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_workspace_token: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub model: Option<String>,
    /// The delivered secrets file (see [`Delivered`]).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_secrets_file: Option<String>,
    /// A one-time code to redeem at `POST /registry/bootstrap` for the secret environment
    /// (backends whose launch parameters are readable, such as EC2).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_bootstrap_code: Option<String>,
    /// Where the agent's `/configs` is: files a redeemed bootstrap code carries are written
    /// there.
    #[serde(deserialize_with = "lenient::string")]
    pub workspace_config_path: String,
    /// Port the A2A endpoint listens on (all interfaces).
    pub agent_port: u16,
    /// URL the platform should call; default `http://127.0.0.1:<AGENT_PORT>`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub agent_url: Option<String>,
    #[serde(deserialize_with = "lenient::string")]
    pub delivery_mode: String,
    pub heartbeat_interval_seconds: u64,
    /// Fixed reply text; unset means echo.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub agent_reply: Option<String>,
    /// Seconds to "work" on each message (heartbeating its delegation meanwhile).
    pub agent_work_seconds: u64,
    /// Extra milliseconds of "work" per message (added to `agent_work_seconds`; benchmarks use
    /// it to stand for a model's latency).
    pub agent_work_milliseconds: u64,
    /// How long an approval the agent asks for (`approval:<action>`) may wait for a decision.
    pub agent_approval_timeout_seconds: u64,
    /// Start busy: A2A answers 503 and heartbeats report a full slot, until `POST /control/busy`
    /// says otherwise.
    #[serde(deserialize_with = "lenient::flag")]
    pub agent_busy: bool,
    /// The platform's tenant id (`MOLECULE_ORG_ID`): sent as `X-Molecule-Org-Id` on every call,
    /// so a platform running in org mode does not hide its routes (404) from the agent.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub molecule_org_id: Option<String>,
    #[serde(flatten)]
    pub telemetry: Telemetry,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            workspace_id: None,
            platform_url: "http://127.0.0.1:8080".into(),
            molecule_workspace_token: None,
            model: None,
            molecule_secrets_file: None,
            molecule_bootstrap_code: None,
            workspace_config_path: "/configs".into(),
            agent_port: 8000,
            agent_url: None,
            delivery_mode: "push".into(),
            heartbeat_interval_seconds: 30,
            agent_reply: None,
            agent_work_seconds: 0,
            agent_work_milliseconds: 0,
            agent_approval_timeout_seconds: 300,
            agent_busy: false,
            molecule_org_id: None,
            telemetry: Telemetry::default(),
        }
    }
}

/// The secret environment a backend delivered in `MOLECULE_SECRETS_FILE`: the workspace's
/// secrets and its token, kept out of the container's inspectable environment. `Debug` shows
/// the keys only.
#[derive(Default, Clone)]
pub struct Delivered(std::collections::BTreeMap<String, String>);

impl std::fmt::Debug for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Delivered {
    /// Reads the file at `path`: a JSON object of strings.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let file_err = |message: String| ConfigError::File {
            path: path.display().to_string(),
            message,
        };
        let raw = std::fs::read(path)
            .map_err(|e| file_err(format!("cannot be read (given by MOLECULE_SECRETS_FILE): {e}")))?;
        serde_json::from_slice(&raw).map(Self).map_err(|e| {
            file_err(format!(
                "must be a JSON object of strings (given by MOLECULE_SECRETS_FILE): {e}"
            ))
        })
    }

    /// A secret environment received some other way (a redeemed bootstrap code).
    pub fn from_map(map: std::collections::BTreeMap<String, String>) -> Self {
        Self(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl AgentConfig {
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_delivered().map(|(cfg, _)| cfg)
    }

    /// The configuration and the delivered secrets: the file named by `MOLECULE_SECRETS_FILE`
    /// sits beneath the process environment (the platform's own variables win), so an agent
    /// whose token arrives in the file is configured exactly as if it were in the environment.
    pub fn load_delivered() -> Result<(Self, Delivered), ConfigError> {
        let first = Self::first_pass()?;
        let delivered = match &first.molecule_secrets_file {
            Some(path) => Delivered::read(Path::new(path))?,
            None => Delivered::default(),
        };
        Ok((Self::with_delivered(&delivered)?, delivered))
    }

    /// The environment alone, unchecked: enough to know where the platform is and whether a
    /// secrets file or a bootstrap code is to be read.
    pub fn first_pass() -> Result<Self, ConfigError> {
        extract(
            Serialized::defaults(Self::default()),
            None,
            &[SHARED_KNOBS, AGENT_KNOBS],
        )
    }

    /// The checked configuration with `delivered` beneath the process environment.
    pub fn with_delivered(delivered: &Delivered) -> Result<Self, ConfigError> {
        let names: Vec<&'static str> = [SHARED_KNOBS, AGENT_KNOBS]
            .iter()
            .flat_map(|s| s.iter().map(|k| k.env))
            .collect();
        let layer: std::collections::BTreeMap<String, String> = delivered
            .0
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .collect();
        let cfg: Self = Figment::from(Serialized::defaults(Self::default()))
            .merge(Serialized::defaults(layer))
            .merge(Env::raw().only(&names))
            .extract()
            .map_err(|e| ConfigError::Invalid(describe(&e)))?;
        cfg.validated()
    }

    fn validated(self) -> Result<Self, ConfigError> {
        let cfg = self;
        if cfg.workspace_id.is_none() {
            return Err(ConfigError::Invalid(
                "WORKSPACE_ID must be set to the workspace this agent serves".into(),
            ));
        }
        if cfg.molecule_workspace_token.is_none() {
            return Err(ConfigError::Invalid(
                "MOLECULE_WORKSPACE_TOKEN must be set (the workspace's bearer token)".into(),
            ));
        }
        if !matches!(cfg.delivery_mode.as_str(), "push" | "poll") {
            return Err(ConfigError::Invalid(format!(
                "DELIVERY_MODE must be push or poll, got {:?}",
                cfg.delivery_mode
            )));
        }
        positive("HEARTBEAT_INTERVAL_SECONDS", cfg.heartbeat_interval_seconds)?;
        Ok(cfg)
    }

    pub fn advertised_url(&self) -> String {
        self.agent_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", self.agent_port))
    }
}

fn pairs(name: &str, raw: Option<&str>) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let mut out = std::collections::BTreeMap::new();
    for item in raw.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "{name}: {item:?} is not name=value (separate entries with commas)"
                ))
            })?;
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    Ok(out)
}

fn positive(name: &str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(ConfigError::Invalid(format!("{name} must be greater than 0")));
    }
    Ok(())
}

fn config_file(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os(CONFIG_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

fn extract<T: serde::de::DeserializeOwned>(
    defaults: Serialized<impl Serialize>,
    file: Option<&Path>,
    knob_sets: &[&[Knob]],
) -> Result<T, ConfigError> {
    let names: Vec<&'static str> = knob_sets.iter().flat_map(|s| s.iter().map(|k| k.env)).collect();
    let mut figment = Figment::from(defaults);
    let file = config_file(file);
    if let Some(path) = &file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                message: format!("not found (given by --config or {CONFIG_FILE_ENV})"),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    // Env names map to lower-case keys; only documented knobs are read.
    figment = figment.merge(Env::raw().only(&names));
    figment.extract().map_err(|e| match &file {
        Some(path) if e.metadata.as_ref().is_some_and(|m| m.name.contains("TOML")) => ConfigError::File {
            path: path.display().to_string(),
            message: describe(&e),
        },
        _ => ConfigError::Invalid(describe(&e)),
    })
}

/// One line per figment error: the key (as the env var to set) and what was wrong.
fn describe(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|err| {
            let key = err.path.join(".");
            let source = err.metadata.as_ref().map(|m| m.name.to_string()).unwrap_or_default();
            if key.is_empty() {
                format!("{} ({source})", err.kind)
            } else {
                format!("key `{key}` (env {}): {} ({source})", key.to_uppercase(), err.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature is fixed
mod tests {

    #[test]
    fn memory_plugin_timeout_reads_go_durations_and_falls_back_to_2s() {
        let with = |v: Option<&str>| ServerConfig {
            memory_plugin_timeout: v.map(str::to_owned),
            ..ServerConfig::default()
        };
        let d = std::time::Duration::from_millis;
        assert_eq!(with(None).memory_plugin_timeout(), d(2000));
        assert_eq!(with(Some("500ms")).memory_plugin_timeout(), d(500));
        assert_eq!(with(Some("1m30s")).memory_plugin_timeout(), d(90_000));
        for bad in ["0s", "-1s", "soon", ""] {
            assert_eq!(with(Some(bad)).memory_plugin_timeout(), d(2000), "{bad}");
        }
    }

    use super::*;
    use figment::{Jail, Provider};

    #[test]
    fn defaults_match_the_original() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let c = ServerConfig::load(None).unwrap();
            assert_eq!(c.port, 8080);
            assert_eq!(c.liveness_ttl_seconds, 180);
            assert!(c.admin_token.is_none());
            Ok(())
        });
    }

    #[test]
    fn env_beats_file_beats_defaults() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "m.toml",
                "port = 9000\nadmin_token = \"from-file\"\nliveness_ttl_seconds = 60\n",
            )?;
            jail.set_env("PORT", "9001");
            jail.set_env("ADMIN_TOKEN", "12345");
            let c = ServerConfig::load(Some(Path::new("m.toml"))).unwrap();
            assert_eq!(c.port, 9001);
            assert_eq!(
                c.admin_token.as_deref(),
                Some("12345"),
                "numeric-looking tokens stay strings"
            );
            assert_eq!(c.liveness_ttl_seconds, 60);
            Ok(())
        });
    }

    #[test]
    fn empty_env_means_unset() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("ADMIN_TOKEN", "");
            assert!(ServerConfig::load(None).unwrap().admin_token.is_none());
            Ok(())
        });
    }

    #[test]
    fn malformed_file_names_file_and_key() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("bad.toml", "port = \"eighty\"\n")?;
            let err = ServerConfig::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(err.contains("bad.toml") && err.contains("port"), "{err}");
            jail.create_file("broken.toml", "port = = 1\n")?;
            let err = ServerConfig::load(Some(Path::new("broken.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("broken.toml"), "{err}");
            let err = ServerConfig::load(Some(Path::new("missing.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("missing.toml") && err.contains("not found"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn bad_env_value_names_the_variable() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("PORT", "http");
            let err = ServerConfig::load(None).unwrap_err().to_string();
            assert!(err.contains("PORT"), "{err}");
            jail.set_env("PORT", "8080");
            jail.set_env("LIVENESS_TTL_SECONDS", "0");
            let err = ServerConfig::load(None).unwrap_err().to_string();
            assert!(err.contains("LIVENESS_TTL_SECONDS"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn production_requires_an_encryption_key() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("MOLECULE_ENV", "production");
            let err = ServerConfig::load(None).unwrap_err().to_string();
            assert!(err.contains("SECRETS_ENCRYPTION_KEY"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn plugin_falls_back_to_database_url() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            assert!(PluginConfig::load(None).is_err());
            jail.set_env("DATABASE_URL", "postgres://a@h/db");
            jail.set_env("MEMORY_PLUGIN_SKIP_MIGRATE", "1");
            let c = PluginConfig::load(None).unwrap();
            assert_eq!(c.database_url().unwrap(), "postgres://a@h/db");
            assert!(c.memory_plugin_skip_migrate);
            assert_eq!(c.memory_plugin_listen_addr.to_string(), "127.0.0.1:9100");
            jail.set_env("MEMORY_PLUGIN_DATABASE_URL", "postgres://b@h/db");
            assert_eq!(
                PluginConfig::load(None).unwrap().database_url().unwrap(),
                "postgres://b@h/db"
            );
            Ok(())
        });
    }

    #[test]
    fn every_field_is_a_documented_knob() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let fig = Figment::from(Serialized::defaults(ServerConfig::default()));
            let dict = fig.data().unwrap();
            for (_, d) in dict {
                for key in d.keys() {
                    let env = key.to_uppercase();
                    assert!(
                        SHARED_KNOBS.iter().chain(SERVER_KNOBS).any(|k| k.env == env),
                        "ServerConfig field {key} has no knob entry"
                    );
                }
            }
            let fig = Figment::from(Serialized::defaults(PluginConfig::default()));
            for (_, d) in fig.data().unwrap() {
                for key in d.keys() {
                    let env = key.to_uppercase();
                    assert!(
                        SHARED_KNOBS.iter().chain(PLUGIN_KNOBS).any(|k| k.env == env),
                        "PluginConfig field {key} has no knob entry"
                    );
                }
            }
            Ok(())
        });
    }
}
