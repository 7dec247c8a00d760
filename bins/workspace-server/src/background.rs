//! workspace-server's background loops: each runs once per cluster per tick through
//! `molecule-periodic` (provisioning timeouts, the leak reconciler, the delegation sweeper,
//! the liveness sweep, the queue reaper, the scheduler, the idle monitor, the orphan-token
//! sweep).
//!
//! Owns: which loops run, their intervals from the configuration, and stopping them. Must not
//! know: what a tick does (each is one use-case or dispatcher call).

use std::future::Future;
use std::time::Duration;

use molecule_config::ServerConfig;
use molecule_db::Pool;
use molecule_dispatcher::Dispatcher;
use molecule_periodic::{Periodic, Report};
use molecule_service::{ServiceError, Services};
use tokio::task::JoinHandle;

/// The running loops: their handles for `/admin/liveness` and `/metrics`, and their tasks.
pub struct Loops {
    pub periodic: Vec<Periodic>,
    tasks: Vec<JoinHandle<()>>,
}

impl Loops {
    /// Stops every loop (a tick in flight is dropped; each tick's statements are idempotent).
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A loop named `name` every `interval`, running `tick` with its own clone of `services`.
fn every<F, Fut>(
    name: &'static str,
    interval: Duration,
    pool: &Pool,
    services: &Services,
    tick: F,
) -> (Periodic, JoinHandle<()>)
where
    F: Fn(Services) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Report, ServiceError>> + Send + 'static,
{
    run_on(Periodic::new(name, interval, pool.clone()), services, tick)
}

/// `periodic` running `tick` with its own clone of `services`.
fn run_on<F, Fut>(periodic: Periodic, services: &Services, tick: F) -> (Periodic, JoinHandle<()>)
where
    F: Fn(Services) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Report, ServiceError>> + Send + 'static,
{
    let services = services.clone();
    let task = periodic.spawn(move || tick.clone()(services.clone()));
    (periodic, task)
}

/// Starts every loop.
pub fn start(cfg: &ServerConfig, pool: &Pool, services: &Services, dispatcher: &Dispatcher) -> Loops {
    let secs = Duration::from_secs;
    let mut periodic = Vec::new();
    let mut tasks = Vec::new();
    let mut add = |(p, t): (Periodic, JoinHandle<()>)| {
        periodic.push(p);
        tasks.push(t);
    };

    add(every(
        "liveness",
        secs(cfg.liveness_sweep_interval_seconds),
        pool,
        services,
        |s| async move { s.tree().liveness_sweep().await },
    ));

    let sweeper_config = {
        let typed = cfg.delegation_sweeper();
        molecule_ledger::SweeperConfig {
            interval: typed.interval,
            stuck_threshold: typed.stuck_threshold,
        }
    };
    add({
        let services = services.clone();
        services.ledger().clone().spawn_sweeper(sweeper_config, move |failed| {
            let services = services.clone();
            async move { services.messaging().notify_deadline_failures(failed).await }
        })
    });

    add({
        let timeouts = Periodic::new(
            "provision-timeout",
            secs(cfg.provision_timeout_sweep_interval_seconds),
            pool.clone(),
        );
        let dispatcher = dispatcher.clone();
        let timeout_cfg = molecule_dispatcher::TimeoutConfig {
            global: cfg.provision_timeout_seconds,
            // The same loader as /templates and create's `template`.
            templates: services.templates().clone(),
            interval: secs(cfg.provision_timeout_sweep_interval_seconds),
        };
        let task = timeouts.spawn(move || {
            let dispatcher = dispatcher.clone();
            let timeout_cfg = timeout_cfg.clone();
            async move { dispatcher.sweep_provision_timeouts(&timeout_cfg).await }
        });
        (timeouts, task)
    });

    add({
        let reconciler = Periodic::new(
            "reconciler",
            secs(cfg.molecule_reconcile_interval_seconds),
            pool.clone(),
        );
        let dispatcher = dispatcher.clone();
        let rc = molecule_dispatcher::ReconcileConfig {
            grace: secs(cfg.molecule_reconcile_grace_seconds),
            interval: secs(cfg.molecule_reconcile_interval_seconds),
        };
        let task = reconciler.spawn(move || {
            let dispatcher = dispatcher.clone();
            async move { dispatcher.reconcile(&rc).await }
        });
        (reconciler, task)
    });

    // The queue's reaper: expired leases back to the queue, expired items dropped, old
    // finished items deleted (EventMesh's TaskExpirer scans every minute).
    add(every(
        "a2a-queue-reaper",
        secs(cfg.a2a_queue_reap_interval_seconds),
        pool,
        services,
        |s| async move {
            let r = s.messaging().reap_queue().await?;
            Ok(serde_json::json!({ "requeued": r.requeued, "expired": r.expired, "deleted": r.deleted }))
        },
    ));

    // The scheduler: due schedules' prompts through the A2A proxy (a busy agent's wait in its
    // queue). It runs on every replica at once: the claim hands each due slot to one replica
    // (and a dead replica's slots to another when their lease runs out), so the replicas
    // share a burst, and none waits on a lock whose holder's host is gone.
    add(run_on(
        Periodic::new("scheduler", secs(cfg.scheduler_poll_interval_seconds), pool.clone()).on_every_replica(),
        services,
        |s| async move {
            let t = s.scheduler().tick().await?;
            Ok(serde_json::json!({
                "fired": t.fired,
                "failed": t.failed,
                "left_to_runtime": t.left_to_runtime,
                "lateness": molecule_schedules::fire::recent_lateness(),
            }))
        },
    ));

    // Telegram pollers: every replica takes the rows whose lease it can (one poller per row
    // across replicas; a dead replica's rows are taken over when their lease runs out) and
    // restarts a poller whose config changed.
    add(run_on(
        Periodic::new(
            "channel-pollers",
            secs(cfg.channel_supervise_interval_seconds),
            pool.clone(),
        )
        .on_every_replica(),
        services,
        |s| async move { s.channels().supervise().await },
    ));

    // The channels' sweep: replies a stopped replica left unsent are sent, chat messages
    // nothing will answer are failed, old ones deleted.
    add(every(
        "channel-sweep",
        secs(cfg.channel_supervise_interval_seconds.saturating_mul(5)),
        pool,
        services,
        |s| async move { s.channels().sweep().await },
    ));

    // Console sessions that ended over a day ago are deleted (an ended one is refused at once).
    add(every("console-sessions", secs(3600), pool, services, |s| async move {
        let swept = molecule_console::Sessions::sweep(s.tree().pool()).await?;
        Ok(serde_json::json!({ "swept": swept }))
    }));

    // Approval expiry: pending requests past their deadline end as `expired`, each with
    // `APPROVAL_DECIDED` (the original expired them only when someone read the pending list,
    // and silently). Each row expires once whichever replica runs the pass.
    add(every(
        "approval-expiry",
        secs(cfg.approval_expiry_interval_seconds),
        pool,
        services,
        |s| async move {
            let expired = s.approvals().expire_due().await?;
            Ok(serde_json::json!({ "expired": expired }))
        },
    ));

    // The phantom-busy sweep (the original scheduler's, every 5 minutes): reported work that
    // no activity backs for 10 minutes is cleared.
    add(every("phantom-busy", secs(300), pool, services, |s| async move {
        let cleared = s.tree().sweep_phantom_busy().await?;
        Ok(serde_json::json!({ "cleared": cleared.len() }))
    }));

    // Expired key/value memory entries (invisible already; this reclaims their rows).
    add(every(
        "kv-memory-sweep",
        secs(cfg.kv_memory_sweep_interval_seconds),
        pool,
        services,
        |s| async move {
            let swept = s.kv_memory().sweep().await?;
            Ok(serde_json::json!({ "swept": swept }))
        },
    ));

    // The idle monitor: hibernates workspaces idle past their hibernation_idle_minutes.
    add(every(
        "hibernation-idle",
        secs(cfg.hibernation_sweep_interval_seconds),
        pool,
        services,
        |s| async move { s.messaging().hibernate_idle().await },
    ));

    // Tokens whose workload is gone (the later original's orphan sweeper, every minute).
    add(every("orphan-tokens", secs(60), pool, services, |s| async move {
        let swept = s.tree().sweep_orphan_tokens().await?;
        Ok(serde_json::json!({ "removed": swept.removed, "idle": swept.idle }))
    }));

    Loops { periodic, tasks }
}
