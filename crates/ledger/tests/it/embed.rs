//! Embedding: another service creates the table from `molecule-ledger` alone and runs a
//! delegation to completion (the same steps as the README example).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool;
use molecule_ledger::{Ledger, NewDelegation, Outcome, Update};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread")]
async fn a_service_embeds_the_ledger_from_the_crate_alone() {
    // An empty database: no workspace-server schema at all.
    let db = molecule_testkit::TestDb::empty().await;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(&db.url);
    let pool = Pool::builder(manager).max_size(4).build().unwrap();

    let ledger = Ledger::new(pool);
    ledger.install().await.unwrap();
    let (caller, callee) = (Uuid::new_v4(), Uuid::new_v4());
    ledger
        .insert(NewDelegation {
            delegation_id: "embed-1".into(),
            caller_id: caller,
            callee_id: callee,
            task: "translate the manual".into(),
            idempotency_key: None,
            deadline: None,
        })
        .await
        .unwrap();
    ledger.set_status("embed-1", Update::Dispatched).await.unwrap();
    ledger.set_status("embed-1", Update::InProgress).await.unwrap();
    assert!(ledger.heartbeat("embed-1").await.unwrap());
    let outcome = ledger
        .set_status("embed-1", Update::Completed { result: "done".into() })
        .await
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Applied { .. }),
        "exactly this call notifies the caller"
    );
    let row = ledger.get("embed-1").await.unwrap().unwrap();
    assert_eq!(
        (
            molecule_domain::Vocabulary::as_str(row.status),
            row.result_preview.as_deref()
        ),
        ("completed", Some("done"))
    );
}
