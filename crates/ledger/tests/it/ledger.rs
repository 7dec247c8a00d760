//! The ledger against a real Postgres: state machine, idempotency, heartbeats, sweeper, and
//! the schema derived from the domain vocabulary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use molecule_domain::{DelegationStatus, Vocabulary};
use molecule_ledger::{Inserted, Ledger, LedgerError, NewDelegation, Outcome, StatusFilter, Update, truncate_preview};
use molecule_testkit::TestDb;
use uuid::Uuid;

async fn ledger() -> (TestDb, Ledger) {
    let db = TestDb::empty().await;
    let l = Ledger::new(db.pool().clone());
    l.install().await.unwrap();
    l.install().await.unwrap(); // idempotent
    (db, l)
}

fn new(id: &str, caller: Uuid, callee: Uuid) -> NewDelegation {
    NewDelegation {
        delegation_id: id.into(),
        caller_id: caller,
        callee_id: callee,
        task: "do it".into(),
        idempotency_key: None,
        deadline: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transitions_report_who_made_them() {
    let (_db, l) = ledger().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(matches!(l.insert(new("d1", a, b)).await.unwrap(), Inserted::Created(_)));
    assert!(matches!(
        l.insert(new("d1", a, b)).await.unwrap(),
        Inserted::Existing(_)
    ));

    let applied = l.set_status("d1", Update::Dispatched).await.unwrap();
    assert!(matches!(
        applied,
        Outcome::Applied {
            from: DelegationStatus::Queued,
            ..
        }
    ));
    assert_eq!(l.set_status("d1", Update::Dispatched).await.unwrap(), Outcome::Replayed);
    let done = l
        .set_status("d1", Update::Completed { result: "42".into() })
        .await
        .unwrap();
    match done {
        Outcome::Applied { from, delegation } => {
            assert_eq!(from, DelegationStatus::Dispatched);
            assert_eq!(delegation.result_preview.as_deref(), Some("42"));
            assert!(delegation.finished_at.is_some());
        }
        other => panic!("{other:?}"),
    }
    // A replayed completion with another result changes nothing: the first result stands.
    assert_eq!(
        l.set_status("d1", Update::Completed { result: "43".into() })
            .await
            .unwrap(),
        Outcome::Replayed
    );
    assert_eq!(
        l.get("d1").await.unwrap().unwrap().result_preview.as_deref(),
        Some("42")
    );
    let err = l
        .set_status("d1", Update::Failed { error: "late".into() })
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::InvalidTransition(_)), "{err}");
    assert_eq!(
        l.set_status("nope", Update::Dispatched).await.unwrap(),
        Outcome::NotFound
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_key_returns_the_existing_row() {
    let (_db, l) = ledger().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let first = NewDelegation {
        idempotency_key: Some("k".into()),
        ..new("x1", a, b)
    };
    assert!(matches!(l.insert(first).await.unwrap(), Inserted::Created(_)));
    let retry = NewDelegation {
        idempotency_key: Some("k".into()),
        ..new("x2", a, b)
    };
    match l.insert(retry).await.unwrap() {
        Inserted::Existing(d) => assert_eq!(d.delegation_id, "x1"),
        other => panic!("{other:?}"),
    }
    let other_caller = NewDelegation {
        idempotency_key: Some("k".into()),
        ..new("x3", Uuid::new_v4(), b)
    };
    assert!(matches!(l.insert(other_caller).await.unwrap(), Inserted::Created(_)));
}

#[test]
fn previews_are_cut_on_a_character_boundary() {
    let s = "é".repeat(3000); // 6000 bytes
    let cut = truncate_preview(&s);
    assert!(cut.len() <= 4096 && cut.len() >= 4095);
    assert!(cut.chars().all(|c| c == 'é'));
}

#[tokio::test(flavor = "multi_thread")]
async fn long_task_and_result_are_truncated_and_errors_are_kept_whole() {
    let (_db, l) = ledger().await;
    let big = "x".repeat(10_000);
    let d = NewDelegation {
        task: big.clone(),
        ..new("big", Uuid::new_v4(), Uuid::new_v4())
    };
    assert_eq!(l.insert(d).await.unwrap().delegation().task_preview.len(), 4096);
    l.set_status("big", Update::Failed { error: big.clone() })
        .await
        .unwrap();
    assert_eq!(l.get("big").await.unwrap().unwrap().error_detail.unwrap().len(), 10_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeper_fails_deadlines_marks_stale_stuck_and_skips_null_heartbeats() {
    let (db, l) = ledger().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for id in ["late", "stale", "silent", "fresh"] {
        l.insert(new(id, a, b)).await.unwrap();
        l.set_status(id, Update::InProgress).await.unwrap();
    }
    db.execute_sql("UPDATE delegations SET deadline = now() - interval '1 second' WHERE delegation_id = 'late'")
        .await;
    db.execute_sql("UPDATE delegations SET last_heartbeat = now() - interval '1 hour' WHERE delegation_id = 'stale'")
        .await;
    db.execute_sql("UPDATE delegations SET last_heartbeat = NULL WHERE delegation_id = 'silent'")
        .await;
    let report = l.sweep(Duration::from_secs(600)).await.unwrap();
    assert_eq!((report.deadline_failures, report.stuck_marked), (1, 1));
    assert_eq!(report.deadline_failed[0].delegation_id, "late");
    let status = |id: &'static str| {
        let l = l.clone();
        async move { l.get(id).await.unwrap().unwrap() }
    };
    assert_eq!(status("late").await.status.to_string(), "failed");
    assert_eq!(
        status("late").await.error_detail.as_deref(),
        Some("deadline exceeded by sweeper")
    );
    assert_eq!(status("stale").await.status.to_string(), "stuck");
    assert!(
        status("stale")
            .await
            .error_detail
            .unwrap()
            .starts_with("no heartbeat for 3600s")
    );
    assert_eq!(
        status("silent").await.status.to_string(),
        "in_progress",
        "a NULL heartbeat is a free pass"
    );
    assert_eq!(status("fresh").await.status.to_string(), "in_progress");

    // stuck is recoverable: a heartbeat of its callee brings it back, and it can complete.
    assert_eq!(
        l.heartbeat_callee(b).await.unwrap(),
        3,
        "late is terminal and untouched"
    );
    assert_eq!(status("stale").await.status.to_string(), "in_progress");
    assert_eq!(status("stale").await.error_detail, None);
    db.execute_sql("UPDATE delegations SET status = 'stuck' WHERE delegation_id = 'stale'")
        .await;
    assert!(matches!(
        l.set_status("stale", Update::Completed { result: "ok".into() })
            .await
            .unwrap(),
        Outcome::Applied {
            from: DelegationStatus::Stuck,
            ..
        }
    ));
    assert!(!l.heartbeat("stale").await.unwrap(), "terminal rows are not touched");
    let again = l.sweep(Duration::from_secs(600)).await.unwrap();
    assert_eq!((again.deadline_failures, again.stuck_marked), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn index_predicates_and_check_come_from_the_vocabulary() {
    #[derive(diesel::QueryableByName)]
    struct Def {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        def: String,
    }
    use diesel_async::RunQueryDsl;
    let (db, _l) = ledger().await;
    let mut conn = db.pool().get().await.unwrap();
    let defs: Vec<Def> = diesel::sql_query(
        "SELECT indexname::text AS name, indexdef AS def FROM pg_indexes WHERE tablename = 'delegations' AND indexname LIKE 'delegations_inflight%'
         UNION ALL SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'delegations_status_check'",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(defs.len(), 4);
    for d in &defs {
        let expected: &[DelegationStatus] = if d.name.starts_with("delegations_inflight") {
            DelegationStatus::IN_FLIGHT
        } else {
            DelegationStatus::ALL
        };
        for s in DelegationStatus::ALL {
            let quoted = format!("'{}'", s.as_str());
            assert_eq!(
                d.def.contains(&quoted),
                expected.contains(s),
                "{}: {} in {}",
                d.name,
                s,
                d.def
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_listing_and_stats_are_zero_filled() {
    let (_db, l) = ledger().await;
    let stats = l.stats().await.unwrap();
    assert_eq!(stats.counts.len(), DelegationStatus::ALL.len());
    assert!(stats.counts.values().all(|n| *n == 0));
    assert_eq!(stats.duration_p50_seconds, None);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for i in 0..5 {
        l.insert(new(&format!("s{i}"), a, b)).await.unwrap();
    }
    l.set_status("s0", Update::Completed { result: "r".into() })
        .await
        .unwrap();
    let stats = l.stats().await.unwrap();
    assert_eq!(
        (
            stats.counts["queued"],
            stats.counts["completed"],
            stats.completed_last_24h
        ),
        (4, 1, 1)
    );
    assert!(stats.duration_p99_seconds.is_some());
    assert_eq!(l.list(StatusFilter::InFlight, 100).await.unwrap().len(), 4);
    assert_eq!(l.list(StatusFilter::Completed, 100).await.unwrap().len(), 1);
    assert_eq!(l.list_for(b, 50).await.unwrap().len(), 5);
}
