//! `molecule-periodic`: background loops that must run once per cluster (sweepers,
//! reconcilers), however many replicas share the database.
//!
//! Owns: the tick loop (first tick at start, then every interval), mutual exclusion per tick
//! through a Postgres advisory lock held on the runner's own pooled connection (with TCP
//! keepalives on that session, so a lock whose holder's host vanished is released in about
//! 30 s rather than the kernel's two hours), or no exclusion for a loop whose body is safe
//! on every replica at once ([`Periodic::on_every_replica`]), isolation of
//! the tick body in its own task so a panic is recorded and the loop goes on, and the stats an
//! operator reads (`last_tick_at`, counts, `last_error`). Each tick runs as actor
//! `loop:<name>` (`molecule-actor`), so the events it records say which loop acted.
//!
//! Must not know: what a tick does. Work functions are handed in by the crates that own them.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::sql_types::{BigInt, Bool};
use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::deadpool::{Object, Pool as DeadPool};

/// The connection pool (the same type as `molecule_db::Pool`; this crate does not depend on
/// any schema).
pub type Pool = DeadPool<AsyncPgConnection>;
use serde::Serialize;
use time::OffsetDateTime;

/// What a tick body returns: counts and facts to report (e.g. `{"marked_offline": 3}`).
pub type Report = serde_json::Value;

/// The outcome of one tick, as seen by this replica.
#[derive(Debug, Clone, PartialEq)]
pub enum TickOutcome {
    /// This replica held the lock and the body finished.
    Ran(Report),
    /// Another replica holds the lock this tick.
    Skipped,
    /// The body returned an error (kept in `last_error`).
    Failed(String),
    /// The body panicked (kept in `last_error`); the loop goes on.
    Panicked(String),
}

/// Counters and the last outcome, serialised for `/admin/liveness`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub name: &'static str,
    pub interval_seconds: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_tick_at: Option<OffsetDateTime>,
    /// This replica holds the lock and a tick is running, since then (a tick stuck for long
    /// shows here before it shows anywhere else).
    #[serde(with = "time::serde::rfc3339::option")]
    pub running_since: Option<OffsetDateTime>,
    pub ticks_run: u64,
    pub ticks_skipped: u64,
    pub errors: u64,
    pub panics: u64,
    pub last_error: Option<String>,
    pub last_report: Option<Report>,
}

/// A task that runs `body` every `interval`, in at most one replica at a time.
#[derive(Clone)]
pub struct Periodic {
    name: &'static str,
    lock_key: i64,
    interval: Duration,
    pool: Pool,
    stats: Arc<Mutex<Stats>>,
    exclusive: bool,
}

impl std::fmt::Debug for Periodic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Periodic")
            .field("name", &self.name)
            .field("interval", &self.interval)
            .finish()
    }
}

/// The text of a panic payload (`&str` or `String`; anything else is described as such).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned())
}

/// A stable advisory-lock key for a task name (FNV-1a), so replicas agree without coordination.
pub fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// `e` and its causes on one line: what `last_error` and the log show (and, through the
/// service layer, every operator-facing reason).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

impl Periodic {
    pub fn new(name: &'static str, interval: Duration, pool: Pool) -> Self {
        let stats = Stats {
            name,
            interval_seconds: interval.as_secs(),
            ..Stats::default()
        };
        Self {
            name,
            lock_key: lock_key(name),
            interval,
            pool,
            stats: Arc::new(Mutex::new(stats)),
            exclusive: true,
        }
    }

    /// Ticks on every replica at once, without the lock: for a body that coordinates itself
    /// (the scheduler's claim hands each due slot to one replica), so the replicas share the
    /// work and none waits on another's session.
    #[must_use]
    pub fn on_every_replica(mut self) -> Self {
        self.exclusive = false;
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Runs ticks forever (abort the returned task to stop).
    pub fn spawn<F, Fut, E>(&self, body: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Report, E>> + Send + 'static,
        E: std::error::Error + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(this.interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                this.tick_once(&body).await;
            }
        })
    }

    /// One tick: take the cluster-wide lock or skip; run `body` in its own task; record.
    pub async fn tick_once<F, Fut, E>(&self, body: &F) -> TickOutcome
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Report, E>> + Send + 'static,
        E: std::error::Error + Send + 'static,
    {
        let outcome = if self.exclusive {
            self.locked(body).await
        } else {
            self.mark_running();
            Self::run_body(self.name, body).await
        };
        self.record(&outcome);
        outcome
    }

    fn mark_running(&self) {
        if let Ok(mut s) = self.stats.lock() {
            s.running_since = Some(OffsetDateTime::now_utc());
        }
    }

    /// The body in its own task: an error or a panic is an outcome, not the loop's end.
    async fn run_body<F, Fut, E>(name: &str, body: &F) -> TickOutcome
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Report, E>> + Send + 'static,
        E: std::error::Error + Send + 'static,
    {
        match tokio::spawn(molecule_actor::scope(Some(format!("loop:{name}")), body())).await {
            Ok(Ok(report)) => TickOutcome::Ran(report),
            Ok(Err(e)) => TickOutcome::Failed(error_chain(&e)),
            Err(join) if join.is_panic() => TickOutcome::Panicked(panic_message(join.into_panic().as_ref())),
            Err(join) => TickOutcome::Failed(format!("tick task cancelled: {join}")),
        }
    }

    async fn locked<F, Fut, E>(&self, body: &F) -> TickOutcome
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Report, E>> + Send + 'static,
        E: std::error::Error + Send + 'static,
    {
        #[derive(diesel::QueryableByName)]
        struct Got {
            #[diesel(sql_type = Bool)]
            locked: bool,
        }
        // The lock lives on this connection (a session lock), outside the body's task, so a
        // panicking body cannot leave it held.
        let mut conn = match self.pool.get().await {
            Ok(c) => c,
            Err(e) => return TickOutcome::Failed(format!("no database connection for the lock: {e}")),
        };
        // Keepalives on this session: if this replica's host vanishes while it holds the lock,
        // the server drops the session (and the lock) after about 10 + 4 × 5 s of silence.
        // Session-local settings; harmless on a pooled connection.
        if let Err(e) = diesel::sql_query(
            "SELECT set_config('tcp_keepalives_idle', '10', false), \
             set_config('tcp_keepalives_interval', '5', false), \
             set_config('tcp_keepalives_count', '4', false)",
        )
        .execute(&mut conn)
        .await
        {
            return TickOutcome::Failed(format!("session keepalives: {e}"));
        }
        let got: Result<Got, _> = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<BigInt, _>(self.lock_key)
            .get_result(&mut conn)
            .await;
        match got {
            Ok(Got { locked: true }) => {}
            Ok(Got { locked: false }) => return TickOutcome::Skipped,
            Err(e) => return TickOutcome::Failed(format!("advisory lock: {e}")),
        }
        self.mark_running();
        let outcome = Self::run_body(self.name, body).await;
        let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(self.lock_key)
            .execute(&mut conn)
            .await;
        if let Err(e) = unlocked {
            // A broken connection releases its session locks when the server drops it; make
            // sure this one is not returned to the pool.
            tracing::warn!(task = self.name, error = %e, "advisory unlock failed; discarding the connection");
            let _ = Object::take(conn);
        }
        outcome
    }

    fn record(&self, outcome: &TickOutcome) {
        self.export(outcome);
        let Ok(mut s) = self.stats.lock() else { return };
        s.last_tick_at = Some(OffsetDateTime::now_utc());
        s.running_since = None;
        match outcome {
            TickOutcome::Ran(report) => {
                s.ticks_run += 1;
                let quiet = is_quiet(report);
                if !quiet {
                    tracing::info!(task = self.name, %report, "tick");
                }
                s.last_report = Some(report.clone());
            }
            TickOutcome::Skipped => s.ticks_skipped += 1,
            TickOutcome::Failed(e) => {
                s.errors += 1;
                tracing::warn!(task = self.name, error = %e, "tick failed");
                s.last_error = Some(e.clone());
            }
            TickOutcome::Panicked(e) => {
                s.panics += 1;
                tracing::error!(task = self.name, panic = %e, "tick panicked; the loop goes on");
                s.last_error = Some(format!("panic: {e}"));
            }
        }
    }
}

/// A report that says nothing happened: every field zero, null, empty or `false` (the
/// scheduler's idle `"lateness": null`, the idle monitor's `"failed": []`). Such ticks are
/// not logged; they would be a line every few seconds.
fn is_quiet(report: &Report) -> bool {
    report.as_object().is_some_and(|o| {
        o.values().all(|v| match v {
            serde_json::Value::Null | serde_json::Value::Bool(false) => true,
            serde_json::Value::Number(n) => n.as_f64() == Some(0.0),
            serde_json::Value::String(s) => s.is_empty(),
            serde_json::Value::Array(a) => a.is_empty(),
            serde_json::Value::Object(m) => m.is_empty(),
            serde_json::Value::Bool(true) => false,
        })
    })
}

impl Periodic {
    /// Publishes the tick through the `metrics` facade (a no-op until a binary installs a
    /// recorder): `molecule_task_ticks_total{task,outcome}`,
    /// `molecule_task_last_tick_timestamp_seconds{task}`, and for every count in a report
    /// `molecule_task_items_total{task,item}` (summed over ticks) and
    /// `molecule_task_last_report{task,item}` (the last tick's value).
    fn export(&self, outcome: &TickOutcome) {
        let task = self.name;
        let label = match outcome {
            TickOutcome::Ran(_) => "ran",
            TickOutcome::Skipped => "skipped",
            TickOutcome::Failed(_) => "failed",
            TickOutcome::Panicked(_) => "panicked",
        };
        metrics::counter!("molecule_task_ticks_total", "task" => task, "outcome" => label).increment(1);
        #[allow(clippy::cast_precision_loss)] // seconds since 1970 fit an f64 exactly for ages
        metrics::gauge!("molecule_task_last_tick_timestamp_seconds", "task" => task)
            .set(OffsetDateTime::now_utc().unix_timestamp() as f64);
        if let TickOutcome::Ran(report) = outcome
            && let Some(fields) = report.as_object()
        {
            for (item, value) in fields {
                let Some(n) = value.as_u64() else { continue };
                metrics::counter!("molecule_task_items_total", "task" => task, "item" => item.clone()).increment(n);
                #[allow(clippy::cast_precision_loss)] // counts far below 2^53
                metrics::gauge!("molecule_task_last_report", "task" => task, "item" => item.clone()).set(n as f64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use molecule_testkit::TestDb;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_tick_is_recorded_and_releases_the_lock() {
        let db = TestDb::empty().await;
        let p = Periodic::new("test-panics", Duration::from_secs(60), db.pool().clone());
        let boom = || async { panic!("kaboom") };
        assert_eq!(
            p.tick_once::<_, _, std::io::Error>(&boom).await,
            TickOutcome::Panicked("kaboom".into())
        );
        let ok = || async { Ok::<_, std::io::Error>(serde_json::json!({"n": 1})) };
        assert_eq!(p.tick_once(&ok).await, TickOutcome::Ran(serde_json::json!({"n": 1})));
        let s = p.stats();
        assert_eq!((s.ticks_run, s.panics), (1, 1));
        assert!(s.last_error.unwrap().contains("kaboom"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ticks_and_report_counts_become_metrics() {
        let db = TestDb::empty().await;
        let p = Periodic::new("test-metrics", Duration::from_secs(60), db.pool().clone());
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            p.export(&TickOutcome::Ran(serde_json::json!({"swept": 3, "note": "x"})));
            p.export(&TickOutcome::Ran(serde_json::json!({"swept": 2})));
            p.export(&TickOutcome::Failed("db down".into()));
        });
        let text = handle.render();
        for line in [
            r#"molecule_task_ticks_total{task="test-metrics",outcome="ran"} 2"#,
            r#"molecule_task_ticks_total{task="test-metrics",outcome="failed"} 1"#,
            r#"molecule_task_items_total{task="test-metrics",item="swept"} 5"#,
            r#"molecule_task_last_report{task="test-metrics",item="swept"} 2"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(!text.contains("note"), "non-numbers are not metrics");
    }

    #[test]
    fn idle_reports_are_quiet_and_any_count_is_not() {
        use serde_json::json;
        assert!(is_quiet(
            &json!({"fired": 0, "lateness": null, "failed": [], "skipped": ""})
        ));
        assert!(!is_quiet(&json!({"fired": 1, "lateness": null})));
        assert!(!is_quiet(&json!({"failed": ["w1"]})));
        assert!(!is_quiet(&json!({"hibernated": 0, "skipped": "no provisioner"})));
        assert!(!is_quiet(&json!("not an object")));
    }

    /// Starts a tick of `p` whose body waits until the returned sender fires; returns once the
    /// body runs (so `p` holds the lock, if it takes one).
    async fn hold_a_tick(p: &Periodic) -> (tokio::task::JoinHandle<TickOutcome>, tokio::sync::oneshot::Sender<()>) {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let channels = std::sync::Mutex::new(Some((started_tx, release_rx)));
        let slow = move || {
            let channels = channels.lock().unwrap().take();
            async move {
                if let Some((started, release)) = channels {
                    let _ = started.send(());
                    let _ = release.await;
                }
                Ok::<_, std::io::Error>(serde_json::json!({}))
            }
        };
        let p = p.clone();
        let running = tokio::spawn(async move { p.tick_once(&slow).await });
        tokio::time::timeout(Duration::from_secs(10), started_rx)
            .await
            .expect("the held tick never started")
            .unwrap();
        (running, release_tx)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_one_runner_holds_the_tick() {
        let db = TestDb::empty().await;
        let a = Periodic::new("test-exclusive", Duration::from_secs(60), db.pool().clone());
        let b = Periodic::new("test-exclusive", Duration::from_secs(60), db.pool().clone());
        let (running, release_tx) = hold_a_tick(&a).await;
        let quick = || async { Ok::<_, std::io::Error>(serde_json::json!({})) };
        assert_eq!(
            b.tick_once(&quick).await,
            TickOutcome::Skipped,
            "b must not run while a holds the tick"
        );
        // The runner says a tick is in progress; the one that skipped does not.
        assert!(a.stats().running_since.is_some());
        assert!(b.stats().running_since.is_none());
        release_tx.send(()).unwrap();
        assert!(matches!(running.await.unwrap(), TickOutcome::Ran(_)));
        assert!(a.stats().running_since.is_none(), "cleared when the tick ends");
        assert!(
            matches!(b.tick_once(&quick).await, TickOutcome::Ran(_)),
            "released after a's tick"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_loop_on_every_replica_ticks_beside_a_running_one() {
        let db = TestDb::empty().await;
        let a = Periodic::new("test-shared", Duration::from_secs(60), db.pool().clone()).on_every_replica();
        let b = Periodic::new("test-shared", Duration::from_secs(60), db.pool().clone()).on_every_replica();
        let (running, release_tx) = hold_a_tick(&a).await;
        assert!(a.stats().running_since.is_some());
        let quick = || async { Ok::<_, std::io::Error>(serde_json::json!({"n": 1})) };
        assert_eq!(
            b.tick_once(&quick).await,
            TickOutcome::Ran(serde_json::json!({"n": 1})),
            "no lock: b runs while a's tick is in progress"
        );
        release_tx.send(()).unwrap();
        assert!(matches!(running.await.unwrap(), TickOutcome::Ran(_)));
        assert_eq!((a.stats().ticks_skipped, b.stats().ticks_skipped), (0, 0));
    }
}
