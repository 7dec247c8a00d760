//! memory-plugin-postgres: wiring only. config → telemetry → pool → schema → janitor → HTTP,
//! then wait for SIGTERM/SIGINT. The contract lives in `molecule-memory-plugin`.
//!
//! Must not know: business rules, routes or SQL (all in `molecule-memory-plugin`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use molecule_config::PluginConfig;
use molecule_db::PoolOptions;

#[derive(Parser)]
#[command(version, about = "molecule memory plugin (Memory Plugin v1 over Postgres)")]
struct Cli {
    /// TOML configuration file (keys are the env var names in lower case). Also MOLECULE_CONFIG.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    molecule_serve::run_main("memory-plugin-postgres", || run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = PluginConfig::load(cli.config.as_deref())?;
    let telemetry = molecule_telemetry::init("memory-plugin-postgres", &cfg.telemetry)?;
    let opts = PoolOptions {
        max_size: cfg.molecule_db_pool_size,
        connect_timeout: Duration::from_secs(cfg.molecule_db_connect_timeout_seconds),
    };
    let url = cfg.database_url()?;
    let pool = molecule_db::connect(url, &opts)
        .await
        .map_err(|e| anyhow::anyhow!("MEMORY_PLUGIN_DATABASE_URL/{e}"))?;
    if cfg.memory_plugin_skip_migrate {
        tracing::info!("MEMORY_PLUGIN_SKIP_MIGRATE=1: not applying the plugin schema");
    } else {
        let applied = molecule_memory_plugin::migrations()
            .run_pending(&pool)
            .await
            .context("applying the memory_plugin schema (MEMORY_PLUGIN_SKIP_MIGRATE=1 skips this)")?;
        tracing::info!(?applied, "memory_plugin schema is current");
    }
    let mut state = molecule_memory_plugin::PluginState::new(pool.clone());
    state.max_body_bytes = cfg.memory_plugin_max_body_bytes;
    let janitor = molecule_periodic::Periodic::new(
        "memory-janitor",
        Duration::from_secs(cfg.memory_plugin_janitor_interval_seconds),
        pool,
    );
    let janitor_task = {
        let store = state.store.clone();
        janitor.spawn(move || {
            let store = store.clone();
            async move { molecule_memory_plugin::janitor_pass(&store).await }
        })
    };
    let listener = molecule_memory_plugin::bind(cfg.memory_plugin_listen_addr)?;
    let server = molecule_memory_plugin::serve(
        listener,
        state,
        Duration::from_secs(cfg.molecule_shutdown_timeout_seconds),
    )?;
    tracing::info!(addr = %server.local_addr, "memory-plugin-postgres listening");
    let handle = server.handle();
    let serving = tokio::spawn(server.wait());
    let signal = molecule_serve::shutdown_signal().await?;
    tracing::info!(signal, "shutting down");
    handle.stop(true).await;
    janitor_task.abort();
    serving.await.context("HTTP server task")??;
    let logs = tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    tracing::info!("stopped");
    drop(logs);
    Ok(())
}
