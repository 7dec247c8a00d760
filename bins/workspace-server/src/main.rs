//! workspace-server: wiring only. config → telemetry → pool → migrations → HTTP, then wait
//! for SIGTERM/SIGINT and drain in-flight requests. Business rules live in the crates.
//!
//! Must not know: business rules, routes or SQL; it composes the crates and their loops.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use molecule_config::ServerConfig;
use molecule_db::{Migrations, PoolOptions};

mod background;
mod provisioning;

#[derive(Parser)]
#[command(version, about = "molecule workspace-server (control plane)")]
struct Cli {
    /// TOML configuration file (keys are the env var names in lower case). Also MOLECULE_CONFIG.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
enum Command {
    /// Apply migrations, then serve HTTP (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Copy the original's agent_memories rows (DATABASE_URL) into the memory plugin
    /// (MEMORY_PLUGIN_URL): idempotent by id, resumable, with a progress bar.
    MemoryBackfill(BackfillArgs),
    /// Secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
enum SecretsCommand {
    /// Re-seal every secret not under SECRETS_ENCRYPTION_KEY (plaintext, the original's format,
    /// or a key in SECRETS_PREVIOUS_KEYS) under it. Batches commit as they go, so an interrupted
    /// run resumes; a second run re-seals nothing.
    RotateKey {
        /// Rows per table per transaction.
        #[arg(long, default_value_t = 200)]
        batch: i64,
    },
}

#[derive(clap::Args, Clone, PartialEq, Eq)]
#[command(group(clap::ArgGroup::new("mode").required(true).multiple(false).args(["dry_run", "apply", "verify"])))]
struct BackfillArgs {
    /// Count and place the rows, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write them (resuming where the last --apply stopped).
    #[arg(long)]
    apply: bool,
    /// Check that every row is in the plugin with its (redacted) content; exit 1 if not.
    #[arg(long)]
    verify: bool,
    /// The source table.
    #[arg(long, default_value = "agent_memories")]
    table: String,
    /// Only this workspace's rows.
    #[arg(long, value_name = "UUID")]
    workspace: Option<uuid::Uuid>,
    /// Stop after this many rows.
    #[arg(long)]
    limit: Option<u64>,
    /// Rows per batch.
    #[arg(long, default_value_t = 500)]
    batch: i64,
    /// Start from the first row, not where the last --apply stopped.
    #[arg(long)]
    restart: bool,
}

/// The chat vendors' client, pointed where the configuration says.
fn channel_vendors(cfg: &ServerConfig) -> anyhow::Result<molecule_channels::vendor::Vendors> {
    molecule_channels::vendor::Vendors::new(molecule_channels::vendor::Bases {
        telegram: cfg.telegram_api_base.clone(),
        slack: cfg.slack_api_base.clone(),
        discord: cfg.discord_api_base.clone(),
        lark: cfg.lark_api_base.clone(),
    })
    .context("building the chat vendors' HTTP client")
}

fn channel_settings(cfg: &ServerConfig) -> molecule_channels::Settings {
    molecule_channels::Settings {
        discord_public_key: cfg.discord_app_public_key.clone(),
        github_secret: cfg
            .github_webhook_secret
            .clone()
            .map(molecule_secrets::SecretString::from),
        poller_lease: Duration::from_secs(cfg.channel_poller_lease_seconds),
        poll_wait: Duration::from_secs(cfg.telegram_poll_timeout_seconds),
        public_url: Some(cfg.external_platform_url()),
    }
}

/// The use-cases' slice of the configuration.
fn service_config(cfg: &ServerConfig) -> molecule_service::ServiceConfig {
    molecule_service::ServiceConfig {
        liveness_ttl: Duration::from_secs(cfg.liveness_ttl_seconds),
        platform_url: cfg.external_platform_url(),
        saas: cfg.is_saas(),
        privileged_tiers: cfg.molecule_allow_privileged_tiers,
        approval_timeout: Duration::from_secs(cfg.approval_timeout_minutes.saturating_mul(60)),
        schedule_fire_lease: Duration::from_secs(cfg.scheduler_fire_lease_seconds),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    molecule_serve::run_main("workspace-server", || run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = ServerConfig::load(cli.config.as_deref())?;
    // Checked before anything starts, so a malformed entry stops the boot naming it.
    let cors_origins = molecule_http::browser::CorsOrigins::parse(
        cfg.cors_origins
            .as_deref()
            .unwrap_or(molecule_http::browser::DEFAULT_ORIGINS),
    )?;
    let limits = if cfg.is_dev() {
        molecule_http::limits::RequestLimits::off()
    } else {
        molecule_http::limits::RequestLimits::per_minute(
            u32::try_from(cfg.rate_limit).unwrap_or(u32::MAX),
            molecule_http::limits::parse_proxies(cfg.trusted_proxies.as_deref().unwrap_or(""))?,
        )
    };
    let telemetry = molecule_telemetry::init("workspace-server", &cfg.telemetry)?;
    let keyring = keyring(&cfg)?;
    let opts = PoolOptions {
        max_size: cfg.molecule_db_pool_size,
        connect_timeout: Duration::from_secs(cfg.molecule_db_connect_timeout_seconds),
    };
    let pool = molecule_db::connect(&cfg.database_url, &opts).await?;
    let migrations = Migrations::default();
    let applied = migrations
        .run_pending(&pool)
        .await
        .context("DATABASE_URL: applying migrations")?;
    tracing::info!(
        applied = applied.len(),
        total = migrations.versions().len(),
        "migrations current"
    );
    let ledger = molecule_ledger::Ledger::new(pool.clone());
    ledger
        .install()
        .await
        .context("DATABASE_URL: installing the delegation ledger's table")?;
    if cli.command == Some(Command::Migrate) {
        return Ok(());
    }
    if let Some(Command::MemoryBackfill(args)) = &cli.command {
        return memory_backfill(&cfg, pool, args).await;
    }
    if let Some(Command::Secrets(SecretsCommand::RotateKey { batch })) = &cli.command {
        return rotate_key(&cfg, pool, keyring, *batch).await;
    }
    if cfg.admin_token.is_none() {
        tracing::warn!("ADMIN_TOKEN is unset: admin routes answer 503 until it is configured");
    }

    if let Some(v) = &cfg.delegation_ledger_write {
        tracing::info!(DELEGATION_LEDGER_WRITE = %v, "DELEGATION_LEDGER_WRITE is accepted but has no effect: the delegation ledger is this platform's source of truth and is always written");
    }
    let services = molecule_service::Services::new(pool.clone(), service_config(&cfg))?
        .with_messaging_config(molecule_messaging::proxy::MessagingConfig {
            idle_timeout: Duration::from_secs(cfg.a2a_idle_timeout_seconds),
            queue_ttl: Duration::from_secs(cfg.a2a_queue_ttl_seconds),
            queue_retention: Duration::from_secs(cfg.a2a_queue_retention_seconds),
            queue_lease: Duration::from_secs(cfg.a2a_queue_lease_seconds),
            ..Default::default()
        })
        .with_delegation_config(molecule_messaging::delegations::DelegationConfig {
            inbox_push: cfg.delegation_result_inbox_push,
            a2a_timeout: Duration::from_secs(cfg.delegation_a2a_timeout_seconds),
            ..Default::default()
        })
        .with_keyring(keyring.clone())
        .with_channels(channel_vendors(&cfg)?, channel_settings(&cfg))
        .with_templates(molecule_templates::Registry::new(
            cfg.configs_dir.clone().map(Into::into),
        ));
    check_keyring(&services, &keyring).await?;
    let dispatcher = provisioning::dispatcher(&cfg, services.clone()).await?;
    let services = services.with_hooks(std::sync::Arc::new(dispatcher.clone()));
    let loops = background::start(&cfg, &pool, &services, &dispatcher);
    let listener_task = services.bus().spawn_listener(cfg.database_url.clone(), pool.clone());
    let bus = services.bus().clone();
    let memory_plugin = memory_plugin(&cfg).await?;
    // The memory tools and endpoints reach the plugin through the service layer; without
    // MEMORY_PLUGIN_URL they answer that memory is not configured, and the other tools work.
    let services = match &memory_plugin {
        Some(client) => services.with_memory(client.clone()),
        None => services,
    };
    let audit_services = services.clone();
    let state = molecule_http::AppState {
        pool,
        migrations,
        services,
        auth: molecule_http::AuthConfig::new(cfg.admin_token.as_deref(), cfg.test_tokens_enabled()),
        tasks: loops.periodic.clone(),
        org_id: cfg.molecule_org_id.clone(),
        org_templates_dir: cfg.molecule_org_templates_dir.clone().map(Into::into),
        metrics: telemetry.metrics(),
        memory_plugin,
        mcp: molecule_mcp::McpSettings {
            limits: molecule_mcp::RateLimits::per_minute(
                u32::try_from(cfg.molecule_mcp_calls_per_minute).unwrap_or(u32::MAX),
            ),
            allow_send_message: cfg.molecule_mcp_allow_send_message,
        },
        cors_origins,
        limits,
        metrics_public: cfg.metrics_public,
        terminals: molecule_http::Terminals::new(
            usize::try_from(cfg.terminal_max_sessions_per_workspace).unwrap_or(usize::MAX),
            Duration::from_secs(cfg.terminal_idle_timeout_seconds),
        ),
    };

    let listener = molecule_http::bind(cfg.listen_addr())?;
    let server = molecule_http::serve(
        listener,
        state,
        Duration::from_secs(cfg.molecule_shutdown_timeout_seconds),
    )?;
    tracing::info!(addr = %server.local_addr, exporting_spans = telemetry.exporting(), "workspace-server listening");
    let handle = server.handle();
    let serving = tokio::spawn(server.wait());

    let signal = molecule_serve::shutdown_signal().await?;
    tracing::info!(signal, "shutting down; letting in-flight requests finish");
    bus.close();
    dispatcher.shutdown();
    handle.stop(true).await;
    serving.await.context("HTTP server task")??;
    // Local processes are this server's children: they stop with it (a later server could
    // neither stop them nor tell them from the ones it would start).
    let stopped = dispatcher.on_exit().await;
    if stopped > 0 {
        tracing::info!(stopped, "local workloads stopped");
    }
    // Audit rows are written behind the requests that made them: the last ones go in now.
    if tokio::time::timeout(
        Duration::from_secs(cfg.molecule_shutdown_timeout_seconds),
        audit_services.tree().flush_audits(),
    )
    .await
    .is_err()
    {
        tracing::error!(
            "audit rows still waiting after MOLECULE_SHUTDOWN_TIMEOUT_SECONDS; the ones not yet written are lost"
        );
    }
    loops.abort();
    // Telegram pollers let their leases go (after the loop that starts them stopped), so
    // another replica polls at once.
    audit_services.channels().stop_pollers().await;
    listener_task.abort();
    let logs = tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    tracing::info!("stopped");
    drop(logs);
    Ok(())
}

/// The keys from `SECRETS_ENCRYPTION_KEY` and `SECRETS_PREVIOUS_KEYS`.
fn keyring(cfg: &ServerConfig) -> anyhow::Result<std::sync::Arc<molecule_secrets::Keyring>> {
    use molecule_secrets::SecretString;
    let primary = cfg.secrets_encryption_key.as_deref().map(SecretString::from);
    let previous: Vec<SecretString> = cfg
        .secrets_previous_keys
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(SecretString::from)
        .collect();
    Ok(std::sync::Arc::new(molecule_secrets::Keyring::new(
        primary.as_ref(),
        &previous,
    )?))
}

/// Refuses to serve when stored secrets were sealed under a key this server lacks.
async fn check_keyring(
    services: &molecule_service::Services,
    keyring: &molecule_secrets::Keyring,
) -> anyhow::Result<()> {
    match keyring.primary_id() {
        Some(id) => tracing::info!(key_id = id, "secrets are sealed with AES-256-GCM"),
        None => tracing::warn!(
            "SECRETS_ENCRYPTION_KEY is unset: secrets are stored in plaintext (allowed outside production only)"
        ),
    }
    let check = services
        .vault()
        .check_keyring()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let stale = check.stale(keyring);
    if stale > 0 {
        tracing::warn!(
            stale,
            "stored secrets not sealed under the current key: run `workspace-server secrets rotate-key`"
        );
    }
    Ok(())
}

/// `workspace-server secrets rotate-key`: batches until nothing is left, with a progress bar.
async fn rotate_key(
    cfg: &ServerConfig,
    pool: molecule_db::Pool,
    keyring: std::sync::Arc<molecule_secrets::Keyring>,
    batch: i64,
) -> anyhow::Result<()> {
    if batch < 1 {
        anyhow::bail!("--batch must be at least 1, got {batch}");
    }
    let services = molecule_service::Services::new(pool, service_config(cfg))?.with_keyring(keyring.clone());
    let remaining = services
        .vault()
        .rotate_key_remaining()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
    let bar = indicatif::ProgressBar::new(u64::try_from(remaining).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("re-sealing [{bar:40}] {pos}/{len} secrets ({eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut total = 0u64;
    loop {
        let done = services
            .vault()
            .rotate_key_batch(batch)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
        if done == 0 {
            break;
        }
        total += done;
        bar.inc(done);
        if bar.is_hidden() {
            tracing::info!(resealed = total, of = remaining, "re-sealing");
        }
    }
    bar.finish();
    let summary = serde_json::json!({ "resealed": total, "key_id": keyring.primary_id() });
    #[allow(clippy::print_stdout)]
    {
        println!("{summary}");
    }
    Ok(())
}

/// `workspace-server memory-backfill`: the service does the work; this shows it.
async fn memory_backfill(cfg: &ServerConfig, pool: molecule_db::Pool, args: &BackfillArgs) -> anyhow::Result<()> {
    let Some(client) = memory_plugin(cfg).await? else {
        anyhow::bail!("MEMORY_PLUGIN_URL is unset: the backfill needs the memory plugin to write to");
    };
    let services = molecule_service::Services::new(pool, service_config(cfg))?.with_memory(client);
    let opts = molecule_memory::memory_backfill::BackfillOptions {
        table: args.table.clone(),
        apply: args.apply,
        workspace: args.workspace,
        batch: args.batch,
        limit: args.limit,
        restart: args.restart,
    };
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let verb = if args.verify {
        "verifying"
    } else if args.apply {
        "copying"
    } else {
        "dry run"
    };
    bar.set_message(verb);
    let show = |p: &molecule_memory::memory_backfill::BackfillProgress| {
        bar.set_length(p.total);
        bar.set_position(p.read);
        // Without a terminal the bar is hidden: a log line per batch says the same.
        if bar.is_hidden() {
            tracing::info!(
                read = p.read,
                total = p.total,
                written = p.written,
                errors = p.errors,
                "{verb}"
            );
        }
    };
    let done = if args.verify {
        services.memory().memory_backfill_verify(&opts, show).await
    } else {
        services.memory().memory_backfill(&opts, show).await
    }
    .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
    bar.finish();
    let summary = serde_json::json!({
        "mode": if args.verify { "verify" } else if args.apply { "apply" } else { "dry_run" },
        "table": args.table,
        "read": done.read,
        "written": done.written,
        "errors": done.errors,
        "resumed_after": done.resumed_after,
        "mismatched": done.mismatched,
    });
    // The result on stdout, as one JSON line, for scripts.
    #[allow(clippy::print_stdout)]
    {
        println!("{summary}");
    }
    if done.mismatched > 0 || done.errors > 0 {
        anyhow::bail!(
            "{} rows missing or different in the plugin, {} rows not placed or written (the log names each)",
            done.mismatched,
            done.errors
        );
    }
    Ok(())
}

/// The memory plugin client when `MEMORY_PLUGIN_URL` is set. A failing health probe at boot
/// is logged, not fatal: the plugin may start later, and the client keeps trying.
async fn memory_plugin(
    cfg: &molecule_config::ServerConfig,
) -> anyhow::Result<Option<std::sync::Arc<molecule_memory_contract::client::PluginClient>>> {
    use molecule_memory_contract::client::{ClientConfig, PluginClient};
    let Some(url) = cfg.memory_plugin_url.as_deref() else {
        tracing::info!("MEMORY_PLUGIN_URL is unset: agent memory is disabled");
        return Ok(None);
    };
    let client = PluginClient::new(ClientConfig {
        base_url: url.to_owned(),
        timeout: cfg.memory_plugin_timeout(),
        ..ClientConfig::default()
    })
    .context("MEMORY_PLUGIN_URL")?;
    match tokio::time::timeout(Duration::from_secs(5), client.refresh()).await {
        Ok(Ok(caps)) => tracing::info!(url, ?caps, "memory plugin answers"),
        Ok(Err(e)) => tracing::warn!(url, error = %e, "memory plugin /v1/health probe failed at boot"),
        Err(_) => tracing::warn!(url, "memory plugin /v1/health probe timed out at boot (5 s)"),
    }
    Ok(Some(std::sync::Arc::new(client)))
}
