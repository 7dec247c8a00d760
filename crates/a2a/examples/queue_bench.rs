//! Queue figures for `cargo xtask bench a2a` (run in release mode against an empty database
//! named by `DATABASE_URL`; it applies workspace-server's migrations). One cycle is what a busy
//! message costs the queue: enqueue, claim (leased, `SKIP LOCKED`), complete. It is timed with
//! an empty table, then again beside 1M finished rows of other deliveries (the history the
//! reaper keeps for `A2A_QUEUE_RETENTION_SECONDS`). Prints one JSON object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark driver
#![allow(clippy::disallowed_methods)] // benches read DATABASE_URL directly

use std::time::{Duration, Instant};

use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use molecule_a2a::queue::{self, NewItem};
use serde_json::json;
use uuid::Uuid;

/// `BENCH_SMOKE=1` (`cargo xtask bench --smoke`): a small run that proves the path works.
fn smoke() -> bool {
    std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1")
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

async fn workspace(conn: &mut AsyncPgConnection, name: &str) -> Uuid {
    let row: Id = diesel::sql_query(format!("INSERT INTO workspaces (name) VALUES ('{name}') RETURNING id"))
        .get_result(conn)
        .await
        .unwrap();
    row.id
}

/// Median and mean of `cycles` enqueue → claim → complete cycles, in microseconds.
async fn cycles(conn: &mut AsyncPgConnection, ws: Uuid, cycles: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(cycles);
    for i in 0..cycles {
        let started = Instant::now();
        let item = NewItem {
            workspace_id: ws,
            caller_id: None,
            priority: 50,
            body: json!({ "jsonrpc": "2.0", "id": i, "method": "message/send",
                "params": { "message": { "role": "user", "messageId": format!("m-{i}"), "parts": [{ "kind": "text", "text": "hello" }] } } }),
            method: Some("message/send".into()),
            headers: json!({}),
            idempotency_key: Some(Uuid::new_v4().to_string()),
            delegation_id: None,
            via: None,
            ttl: Duration::from_secs(3600),
        };
        queue::enqueue(conn, item).await.unwrap();
        let claimed = queue::claim(conn, ws, Duration::from_secs(60)).await.unwrap().unwrap();
        assert!(queue::complete(conn, claimed.lease()).await.unwrap());
        times.push(started.elapsed().as_secs_f64() * 1e6);
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], mean)
}

#[tokio::main]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let pool = molecule_db::connect(&url, &molecule_db::PoolOptions::default())
        .await
        .unwrap();
    molecule_db::Migrations::default().run_pending(&pool).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let (n, old) = if smoke() { (200, 10_000) } else { (5_000, 1_000_000) };
    let ws = workspace(&mut conn, "bench-target").await;
    // Warm up the statement cache and the buffers.
    cycles(&mut conn, ws, n / 10).await;
    let (p50_empty, mean_empty) = cycles(&mut conn, ws, n).await;
    // 1M finished rows: the bench workspace's own history and that of 99 others.
    conn.batch_execute(&format!(
        "INSERT INTO workspaces (name) SELECT 'other-' || g FROM generate_series(1, 99) g;
         INSERT INTO a2a_queue (workspace_id, body, method, status, attempts, enqueued_at, completed_at, expires_at)
         SELECT w.id, '{{\"jsonrpc\":\"2.0\",\"method\":\"message/send\"}}', 'message/send',
                (ARRAY['completed','failed','dropped'])[1 + g % 3], 1,
                now() - interval '1 hour', now() - interval '30 minutes', now() + interval '1 day'
           FROM generate_series(1, {old}) g
           JOIN LATERAL (SELECT id FROM workspaces ORDER BY id OFFSET (g % 100) LIMIT 1) w ON true;"
    ))
    .await
    .unwrap();
    // As a live table is: vacuumed and analysed. Without it, autovacuum starts on the fresh
    // million rows in the middle of the measurement (its own statement: VACUUM cannot run in
    // the implicit transaction of a multi-statement batch).
    conn.batch_execute("VACUUM ANALYZE a2a_queue").await.unwrap();
    cycles(&mut conn, ws, n / 10).await;
    let (p50_old, mean_old) = cycles(&mut conn, ws, n).await;
    println!(
        "{}",
        json!({
            "cycles": n,
            "old_rows": old,
            "cycle_p50_us_empty": p50_empty,
            "cycle_mean_us_empty": mean_empty,
            "cycle_p50_us_1m_old": p50_old,
            "cycle_mean_us_1m_old": mean_old,
            "ratio_p50_1m_to_empty": p50_old / p50_empty,
        })
    );
}
