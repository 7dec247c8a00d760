//! Who decides (the operator or an ancestor; never the requester, a sibling or a child), and
//! that a request ends once.

use std::time::Duration;

use molecule_approvals::{Decider, NewApproval};
use molecule_domain::ApprovalStatus;
use molecule_testkit::TestDb;
use molecule_tree::ServiceError;

use crate::{approvals, events, field, workspace};

fn ask(action: &str) -> NewApproval {
    NewApproval {
        action: action.into(),
        ..NewApproval::default()
    }
}

#[tokio::test]
async fn only_the_operator_or_an_ancestor_decides() {
    let db = TestDb::new().await;
    let root = workspace(&db, "root", None).await;
    let lead = workspace(&db, "lead", Some(root)).await;
    let ws = workspace(&db, "worker", Some(lead)).await;
    let sibling = workspace(&db, "sibling", Some(lead)).await;
    let child = workspace(&db, "child", Some(ws)).await;
    let (_, a) = approvals(&db, Duration::from_secs(600));
    let r = a.request(ws, ask("deploy")).await.unwrap();

    for (who, what) in [(ws, "the requester"), (sibling, "a sibling"), (child, "a child")] {
        let e = a
            .decide(ws, r.id, "approved", Decider::Workspace(who))
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceError::Forbidden(_)), "{what}: {e:?}");
    }
    assert_eq!(
        a.get(ws, r.id).await.unwrap().status,
        ApprovalStatus::Pending,
        "refusals change nothing"
    );
    assert_eq!(
        field(a.decide(ws, r.id, "maybe", Decider::Workspace(lead)).await.unwrap_err()),
        "decision: must be 'approved' or 'denied'"
    );

    // The grandparent is an ancestor too.
    let done = a.decide(ws, r.id, "denied", Decider::Workspace(root)).await.unwrap();
    assert_eq!(done.status, ApprovalStatus::Denied);
    assert_eq!(done.decided_by.as_deref(), Some(root.to_string().as_str()));
    assert!(done.decided_at.is_some());

    // Once: a second decision is a 409 that says how it ended.
    let again = a
        .decide(ws, r.id, "approved", Decider::Operator { name: None })
        .await
        .unwrap_err();
    match again {
        ServiceError::Conflict { message, .. } => assert_eq!(message, "approval already denied"),
        other => panic!("{other:?}"),
    }

    let r2 = a.request(ws, ask("merge")).await.unwrap();
    let ok = a
        .decide(
            ws,
            r2.id,
            "approved",
            Decider::Operator {
                name: Some("alice".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(ok.decided_by.as_deref(), Some("alice"));
    let r3 = a.request(ws, ask("merge")).await.unwrap();
    let ok = a
        .decide(ws, r3.id, "approved", Decider::Operator { name: None })
        .await
        .unwrap();
    assert_eq!(ok.decided_by.as_deref(), Some("human"), "the original's default");

    // A request of another workspace is not found under this one.
    let elsewhere = a
        .decide(sibling, r2.id, "approved", Decider::Operator { name: None })
        .await;
    assert!(matches!(elsewhere.unwrap_err(), ServiceError::NotFound(_)));

    let seen: Vec<String> = events(&db, ws).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        seen,
        [
            "APPROVAL_REQUESTED",
            "APPROVAL_DENIED",
            "APPROVAL_DECIDED",
            "APPROVAL_REQUESTED",
            "APPROVAL_APPROVED",
            "APPROVAL_DECIDED",
            "APPROVAL_REQUESTED",
            "APPROVAL_APPROVED",
            "APPROVAL_DECIDED",
        ]
    );
    let decided = events(&db, ws)
        .await
        .into_iter()
        .find(|(t, _)| t == "APPROVAL_DECIDED")
        .unwrap()
        .1;
    assert_eq!(
        decided,
        serde_json::json!({ "approval_id": r.id, "status": "denied", "decided_by": root.to_string() }),
        "what a waiting agent reads, at the top of the payload"
    );
}

#[tokio::test]
async fn the_requester_withdraws_once() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w", None).await;
    let (_, a) = approvals(&db, Duration::from_secs(600));
    let r = a.request(ws, ask("deploy")).await.unwrap();
    let w = a.withdraw(ws, r.id).await.unwrap();
    assert_eq!(w.status, ApprovalStatus::Withdrawn);
    assert!(matches!(
        a.withdraw(ws, r.id).await.unwrap_err(),
        ServiceError::Conflict { .. }
    ));
    assert!(matches!(
        a.withdraw(ws, uuid::Uuid::new_v4()).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
    let kinds: Vec<String> = events(&db, ws).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(kinds, ["APPROVAL_REQUESTED", "APPROVAL_WITHDRAWN", "APPROVAL_DECIDED"]);
}

/// Two deciders at once: one wins, the other hears 409; one `APPROVAL_DECIDED`.
#[tokio::test]
async fn two_deciders_at_once_end_it_once() {
    let db = TestDb::new().await;
    let parent = workspace(&db, "p", None).await;
    let ws = workspace(&db, "w", Some(parent)).await;
    let (_, a) = approvals(&db, Duration::from_secs(600));
    for _ in 0..5 {
        let r = a.request(ws, ask("deploy")).await.unwrap();
        let (x, y) = tokio::join!(
            a.decide(ws, r.id, "approved", Decider::Workspace(parent)),
            a.decide(ws, r.id, "denied", Decider::Operator { name: None }),
        );
        assert!(x.is_ok() != y.is_ok(), "exactly one wins: {x:?} {y:?}");
    }
    let decided = events(&db, ws)
        .await
        .into_iter()
        .filter(|(t, _)| t == "APPROVAL_DECIDED")
        .count();
    assert_eq!(decided, 5);
}
