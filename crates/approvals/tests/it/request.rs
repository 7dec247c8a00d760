//! A request: what is checked (each refusal names its field), what is stored, the events.

use std::time::Duration;

use molecule_approvals::NewApproval;
use molecule_domain::ApprovalStatus;
use molecule_testkit::TestDb;
use molecule_tree::ServiceError;
use serde_json::json;
use time::OffsetDateTime;

use crate::{approvals, events, field, workspace};

fn ask(action: &str) -> NewApproval {
    NewApproval {
        action: action.into(),
        ..NewApproval::default()
    }
}

#[tokio::test]
async fn a_request_is_checked_field_by_field() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w", None).await;
    let (_, a) = approvals(&db, Duration::from_secs(600));

    assert!(field(a.request(ws, ask("  ")).await.unwrap_err()).starts_with("action: required"));
    let long = "é".repeat(201);
    assert_eq!(
        field(a.request(ws, ask(&long)).await.unwrap_err()),
        "action: at most 200 characters, got 201"
    );
    // 200 two-byte characters are 200 characters, not 400.
    a.request(ws, ask(&"é".repeat(200))).await.unwrap();
    let bad_context = NewApproval {
        context: Some(json!(["not", "an", "object"])),
        ..ask("deploy")
    };
    assert_eq!(
        field(a.request(ws, bad_context).await.unwrap_err()),
        "context: must be a JSON object, got an array"
    );
    let too_long = NewApproval {
        timeout_seconds: Some(601),
        ..ask("deploy")
    };
    assert!(field(a.request(ws, too_long).await.unwrap_err()).starts_with("timeout_seconds: must be 1..=600"));
    let zero = NewApproval {
        timeout_seconds: Some(0),
        ..ask("deploy")
    };
    assert!(field(a.request(ws, zero).await.unwrap_err()).starts_with("timeout_seconds"));
    let nobody = uuid::Uuid::new_v4();
    assert!(matches!(
        a.request(nobody, ask("deploy")).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
}

#[tokio::test]
async fn a_request_stores_its_context_and_deadline_and_tells_the_parent() {
    let db = TestDb::new().await;
    let parent = workspace(&db, "lead", None).await;
    let ws = workspace(&db, "worker", Some(parent)).await;
    let (_, a) = approvals(&db, Duration::from_secs(600));

    let before = OffsetDateTime::now_utc();
    let made = a
        .request(
            ws,
            NewApproval {
                action: "delete_branch".into(),
                reason: Some("stale".into()),
                context: Some(json!({ "branch": "old", "n": 3 })),
                timeout_seconds: Some(60),
                ..NewApproval::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(made.status, ApprovalStatus::Pending);
    assert_eq!(made.task_id, "", "a missing task id is empty, not null");
    assert_eq!(
        serde_json::Value::Object(made.context.clone()),
        json!({ "branch": "old", "n": 3 })
    );
    let wait = made.expires_at - before;
    assert!(
        wait >= time::Duration::seconds(59) && wait <= time::Duration::seconds(61),
        "{wait}"
    );

    // No context is `{}` (the original stored null).
    let plain = a.request(ws, ask("deploy")).await.unwrap();
    assert!(plain.context.is_empty());
    assert!(
        plain.expires_at - before >= time::Duration::seconds(599),
        "the default wait is the most"
    );

    let listed = a.list(ws).await.unwrap();
    assert_eq!(
        listed.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![plain.id, made.id],
        "newest first"
    );
    assert_eq!(listed[1], made);

    let mine = events(&db, ws).await;
    assert_eq!(mine[0].0, "APPROVAL_REQUESTED");
    assert_eq!(mine[0].1["approval_id"], made.id.to_string());
    assert_eq!(mine[0].1["action"], "delete_branch");
    let up = events(&db, parent).await;
    assert_eq!(up.len(), 2, "each request is escalated to the parent: {up:?}");
    assert_eq!(up[0].0, "APPROVAL_ESCALATED");
    assert_eq!(up[0].1["from_workspace_id"], ws.to_string());

    let pending = a.pending().await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].1, "worker", "with its workspace's name");
}
