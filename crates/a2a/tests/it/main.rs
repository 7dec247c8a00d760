//! The queue's statements against real PostgreSQL: claims that never wait on each other nor
//! return the same item, priority then FIFO order, `messageId` idempotency, the attempt cap,
//! and the reaper.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use molecule_a2a::queue::{self, MAX_ATTEMPTS, NewItem};
use molecule_domain::QueueStatus;
use molecule_testkit::TestDb;
use serde_json::json;
use uuid::Uuid;

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

async fn workspace(conn: &mut AsyncPgConnection) -> Uuid {
    let row: Id = diesel::sql_query("INSERT INTO workspaces (name) VALUES ('w-' || gen_random_uuid()) RETURNING id")
        .get_result(conn)
        .await
        .unwrap();
    row.id
}

fn item(ws: Uuid, priority: i16, key: Option<&str>) -> NewItem {
    NewItem {
        workspace_id: ws,
        caller_id: None,
        priority,
        body: json!({ "jsonrpc": "2.0", "method": "message/send", "params": {} }),
        method: Some("message/send".into()),
        headers: json!({}),
        idempotency_key: key.map(str::to_owned),
        delegation_id: None,
        via: None,
        ttl: Duration::from_secs(3600),
    }
}

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_claim_held_by_one_replica_is_skipped_by_the_other_without_waiting() {
    let db = TestDb::new().await;
    let mut a = db.pool().get().await.unwrap();
    let mut b = db.pool().get().await.unwrap();
    let ws = workspace(&mut a).await;
    let first = queue::enqueue(&mut a, item(ws, 50, None)).await.unwrap().id;
    let second = queue::enqueue(&mut a, item(ws, 50, None)).await.unwrap().id;
    // Replica A claims inside an open transaction (its row lock held, nothing committed).
    let mut b2 = db.pool().get().await.unwrap();
    a.transaction::<_, diesel::result::Error, _>(async |a| {
        let got = queue::claim(a, ws, LEASE).await?.unwrap();
        assert_eq!(got.id, first);
        // Replica B does not wait for A and does not get A's item.
        let other = tokio::time::timeout(Duration::from_secs(5), queue::claim(&mut b, ws, LEASE))
            .await
            .expect("a claim waited on another replica's claim")?
            .unwrap();
        assert_eq!(other.id, second);
        let none = tokio::time::timeout(Duration::from_secs(5), queue::claim(&mut b2, ws, LEASE))
            .await
            .expect("a claim waited on another replica's claim")?;
        assert!(none.is_none());
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn priority_first_then_first_in_first_out() {
    let db = TestDb::new().await;
    let mut c = db.pool().get().await.unwrap();
    let ws = workspace(&mut c).await;
    let info = queue::enqueue(&mut c, item(ws, 10, None)).await.unwrap().id;
    let task1 = queue::enqueue(&mut c, item(ws, 50, None)).await.unwrap().id;
    let task2 = queue::enqueue(&mut c, item(ws, 50, None)).await.unwrap().id;
    let critical = queue::enqueue(&mut c, item(ws, 100, None)).await.unwrap().id;
    let mut order = Vec::new();
    while let Some(i) = queue::claim(&mut c, ws, LEASE).await.unwrap() {
        order.push(i.id);
    }
    assert_eq!(order, vec![critical, task1, task2, info]);
}

#[tokio::test]
async fn a_message_id_is_one_item_while_live_and_a_new_one_after() {
    let db = TestDb::new().await;
    let mut c = db.pool().get().await.unwrap();
    let ws = workspace(&mut c).await;
    let a = queue::enqueue(&mut c, item(ws, 50, Some("m"))).await.unwrap();
    let again = queue::enqueue(&mut c, item(ws, 50, Some("m"))).await.unwrap();
    assert_eq!((again.id, again.existing, again.depth), (a.id, true, 1));
    // In delivery it is still the same item.
    let claimed = queue::claim(&mut c, ws, LEASE).await.unwrap().unwrap();
    assert_eq!(queue::enqueue(&mut c, item(ws, 50, Some("m"))).await.unwrap().id, a.id);
    assert!(queue::complete(&mut c, claimed.lease()).await.unwrap());
    let later = queue::enqueue(&mut c, item(ws, 50, Some("m"))).await.unwrap();
    assert!(!later.existing);
    assert_ne!(later.id, a.id);
}

#[tokio::test]
async fn failed_deliveries_requeue_until_the_attempts_run_out() {
    let db = TestDb::new().await;
    let mut c = db.pool().get().await.unwrap();
    let ws = workspace(&mut c).await;
    let id = queue::enqueue(&mut c, item(ws, 50, None)).await.unwrap().id;
    for attempt in 1..=MAX_ATTEMPTS {
        let got = queue::claim(&mut c, ws, LEASE).await.unwrap().unwrap();
        assert_eq!((got.id, got.attempts), (id, attempt));
        let status = queue::release(&mut c, got.lease(), "busy").await.unwrap();
        let want = if attempt == MAX_ATTEMPTS {
            QueueStatus::Failed
        } else {
            QueueStatus::Queued
        };
        assert_eq!(status, Some(want));
    }
    assert!(queue::claim(&mut c, ws, LEASE).await.unwrap().is_none());
    let stale = queue::Lease {
        id,
        attempt: MAX_ATTEMPTS,
    };
    assert_eq!(
        queue::release(&mut c, stale, "again").await.unwrap(),
        None,
        "no longer in delivery"
    );
}

#[tokio::test]
async fn the_reaper_takes_back_dead_leases_drops_expired_items_and_deletes_old_ones() {
    let db = TestDb::new().await;
    let mut c = db.pool().get().await.unwrap();
    let ws = workspace(&mut c).await;
    // A delivery whose replica died: its lease has run out.
    let dead = queue::enqueue(&mut c, item(ws, 50, None)).await.unwrap().id;
    let first = queue::claim(&mut c, ws, Duration::ZERO).await.unwrap().unwrap().lease();
    // An item past its TTL.
    let mut stale = item(ws, 10, None);
    stale.ttl = Duration::ZERO;
    let expired = queue::enqueue(&mut c, stale).await.unwrap().id;
    tokio::time::sleep(Duration::from_millis(20)).await; // let now() move past both
    let r = queue::reap(&mut c, Duration::from_secs(3600), 100).await.unwrap();
    assert_eq!((r.requeued, r.expired, r.deleted), (1, 1, 0));
    let again = queue::claim(&mut c, ws, LEASE).await.unwrap().unwrap();
    assert_eq!(
        (again.id, again.attempts),
        (dead, 2),
        "delivered again, its attempts kept"
    );
    // The first, taken-over delivery can neither renew nor finish the item any more.
    assert!(!queue::extend(&mut c, first, LEASE).await.unwrap());
    assert!(!queue::complete(&mut c, first).await.unwrap());
    assert!(queue::complete(&mut c, again.lease()).await.unwrap());
    // Finished items past the retention are deleted.
    let r = queue::reap(&mut c, Duration::ZERO, 100).await.unwrap();
    assert_eq!(r.deleted, 2, "the completed and the dropped item");
    assert_eq!(queue::depth(&mut c, ws).await.unwrap(), 0);
    let _ = expired;
}

#[tokio::test]
async fn the_tables_status_check_lists_exactly_the_rust_statuses() {
    use molecule_domain::Vocabulary;
    #[derive(diesel::QueryableByName)]
    struct Def {
        #[diesel(sql_type = diesel::sql_types::Text)]
        def: String,
    }
    let db = TestDb::new().await;
    let mut c = db.pool().get().await.unwrap();
    let d: Def = diesel::sql_query(
        "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint
          WHERE conrelid = 'a2a_queue'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%status%'",
    )
    .get_result(&mut c)
    .await
    .unwrap();
    let mut in_sql: Vec<&str> = d.def.split('\'').skip(1).step_by(2).collect();
    let mut in_rust: Vec<&str> = QueueStatus::ALL.iter().map(|s| s.as_str()).collect();
    in_sql.sort_unstable();
    in_rust.sort_unstable();
    assert_eq!(in_sql, in_rust, "{}", d.def);
}
