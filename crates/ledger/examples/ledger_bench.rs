//! Ledger throughput figures for `cargo xtask bench ledger` (run in release mode against an
//! empty database named by `DATABASE_URL`). Prints one JSON object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark driver
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::time::{Duration, Instant};

use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use molecule_ledger::{Ledger, Outcome, Update};

const TASKS: usize = 16;
const IN_FLIGHT: usize = 1_000;
const SWEEPS: u32 = 20;

/// `BENCH_SMOKE=1` (`cargo xtask bench --smoke`): a small run that proves the path works.
fn smoke() -> bool {
    std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1")
}

/// Transitions measured, and terminal rows seeded for the second sweep.
fn sizes() -> (usize, usize) {
    if smoke() { (2_000, 10_000) } else { (20_000, 1_000_000) }
}

async fn sql(pool: &Pool<AsyncPgConnection>, s: &str) {
    pool.get().await.unwrap().batch_execute(s).await.unwrap();
}

/// Mean time of `SWEEPS` sweeps that find nothing to do, then one that fails `IN_FLIGHT` rows.
async fn sweep_times(ledger: &Ledger, pool: &Pool<AsyncPgConnection>) -> (f64, f64) {
    let start = Instant::now();
    for _ in 0..SWEEPS {
        let r = ledger.sweep(Duration::from_secs(600)).await.unwrap();
        assert_eq!(r.deadline_failures + r.stuck_marked, 0);
    }
    let idle_ms = start.elapsed().as_secs_f64() * 1000.0 / f64::from(SWEEPS);
    sql(
        pool,
        "UPDATE delegations SET deadline = now() - interval '1 second' WHERE delegation_id LIKE 'live-%'",
    )
    .await;
    let start = Instant::now();
    let r = ledger.sweep(Duration::from_secs(600)).await.unwrap();
    let busy_ms = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(r.deadline_failures, IN_FLIGHT);
    (idle_ms, busy_ms)
}

async fn seed_in_flight(pool: &Pool<AsyncPgConnection>) {
    sql(pool, "DELETE FROM delegations WHERE delegation_id LIKE 'live-%'").await;
    sql(
        pool,
        &format!(
            "INSERT INTO delegations (delegation_id, caller_id, callee_id, task_preview, status, last_heartbeat)
             SELECT 'live-' || g, gen_random_uuid(), gen_random_uuid(), 'task', 'in_progress', now() FROM generate_series(1, {IN_FLIGHT}) g;
             ANALYZE delegations;"
        ),
    )
    .await;
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let pool = Pool::builder(AsyncDieselConnectionManager::<AsyncPgConnection>::new(url))
        .max_size(TASKS + 2)
        .build()
        .unwrap();
    let ledger = Ledger::new(pool.clone());
    ledger.install().await.unwrap();
    let (transitions, terminal) = sizes();

    // Transitions per second: queued -> dispatched on distinct rows, 16 writers.
    sql(
        &pool,
        &format!(
            "INSERT INTO delegations (delegation_id, caller_id, callee_id, task_preview)
             SELECT 't-' || g, gen_random_uuid(), gen_random_uuid(), 'task' FROM generate_series(1, {transitions}) g; ANALYZE delegations;"
        ),
    )
    .await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let l = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let mut applied = 0;
            for i in (t..transitions).step_by(TASKS) {
                if let Outcome::Applied { .. } =
                    l.set_status(&format!("t-{}", i + 1), Update::Dispatched).await.unwrap()
                {
                    applied += 1;
                }
            }
            applied
        }));
    }
    let mut applied = 0;
    for t in tasks {
        applied += t.await.unwrap();
    }
    let transitions_per_second = transitions as f64 / start.elapsed().as_secs_f64();
    assert_eq!(applied, transitions);

    // Sweep with no terminal rows, then with 1M terminal rows.
    sql(&pool, "DELETE FROM delegations").await;
    seed_in_flight(&pool).await;
    let (idle_0, busy_0) = sweep_times(&ledger, &pool).await;
    sql(
        &pool,
        &format!(
            "INSERT INTO delegations (delegation_id, caller_id, callee_id, task_preview, status, result_preview, finished_at, deadline)
             SELECT 'done-' || g, gen_random_uuid(), gen_random_uuid(), 'task', CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'completed' END,
                    'result', now() - interval '1 hour', now() - interval '1 day'
               FROM generate_series(1, {terminal}) g"
        ),
    )
    .await;
    sql(&pool, "VACUUM ANALYZE delegations").await;
    seed_in_flight(&pool).await;
    let (idle_1m, busy_1m) = sweep_times(&ledger, &pool).await;

    println!(
        "{}",
        serde_json::json!({
            "transitions": transitions,
            "terminal_rows": terminal,
            "writers": TASKS,
            "transitions_per_second": transitions_per_second,
            "sweep_idle_ms_0_terminal": idle_0,
            "sweep_idle_ms_1m_terminal": idle_1m,
            "sweep_1k_deadline_failures_ms_0_terminal": busy_0,
            "sweep_1k_deadline_failures_ms_1m_terminal": busy_1m,
        })
    );
}
