//! Expiry: a request nobody decided ends as `expired` with `APPROVAL_DECIDED`, once; a waiting
//! agent hears its decision or its expiry.

use std::time::Duration;

use molecule_approvals::{Decider, NewApproval};
use molecule_domain::ApprovalStatus;
use molecule_testkit::TestDb;

use crate::{approvals, events, workspace};

fn ask(timeout_seconds: u64) -> NewApproval {
    NewApproval {
        action: "deploy".into(),
        timeout_seconds: Some(timeout_seconds),
        ..NewApproval::default()
    }
}

#[tokio::test]
async fn past_its_deadline_a_request_expires_once_with_an_event() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w", None).await;
    let (_, a) = approvals(&db, Duration::from_secs(600));
    let soon = a.request(ws, ask(600)).await.unwrap();
    let late = a.request(ws, ask(600)).await.unwrap();
    db.execute_sql(&format!(
        "UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE id = '{}'",
        late.id
    ))
    .await;

    assert_eq!(a.expire_due().await.unwrap(), 1);
    assert_eq!(a.expire_due().await.unwrap(), 0, "once");
    let ended = a.get(ws, late.id).await.unwrap();
    assert_eq!(ended.status, ApprovalStatus::Expired);
    assert_eq!(ended.decided_by.as_deref(), Some("auto-expired"));
    assert_eq!(a.get(ws, soon.id).await.unwrap().status, ApprovalStatus::Pending);
    let decided: Vec<_> = events(&db, ws)
        .await
        .into_iter()
        .filter(|(t, _)| t == "APPROVAL_DECIDED")
        .collect();
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].1["status"], "expired");
    assert_eq!(decided[0].1["approval_id"], late.id.to_string());
    // An expired request cannot be decided afterwards.
    assert!(
        a.decide(ws, late.id, "approved", Decider::Operator { name: None })
            .await
            .is_err()
    );
    // Nor does the pending list show it.
    assert!(a.pending().await.unwrap().iter().all(|(p, _)| p.id != late.id));
}

#[tokio::test]
async fn a_waiter_hears_the_decision_from_the_bus() {
    let db = TestDb::new().await;
    let parent = workspace(&db, "p", None).await;
    let ws = workspace(&db, "w", Some(parent)).await;
    let (tree, a) = approvals(&db, Duration::from_secs(600));
    let _listener = tree.bus().spawn_listener(db.url().to_owned(), db.pool().clone());
    assert!(tree.bus().wait_listening(Duration::from_secs(10)).await);
    let r = a.request(ws, ask(600)).await.unwrap();
    let waiter = tokio::spawn({
        let a = a.clone();
        async move { a.wait(ws, r.id).await }
    });
    // Decide through a second handle, as another replica would.
    let (_, other) = approvals(&db, Duration::from_secs(600));
    other
        .decide(ws, r.id, "approved", Decider::Workspace(parent))
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter heard the decision well before its 15 s re-read")
        .unwrap()
        .unwrap();
    assert_eq!(done.status, ApprovalStatus::Approved);
}

#[tokio::test]
async fn a_waiter_ends_its_request_at_the_deadline() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w", None).await;
    let (_, a) = approvals(&db, Duration::from_secs(600));
    let r = a.request(ws, ask(1)).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), a.wait(ws, r.id))
        .await
        .expect("the wait ends at the deadline")
        .unwrap();
    assert_eq!(done.status, ApprovalStatus::Expired);
    let decided = events(&db, ws)
        .await
        .into_iter()
        .filter(|(t, _)| t == "APPROVAL_DECIDED")
        .count();
    assert_eq!(decided, 1);
}
