//! `molecule-workspace-config` against a real Postgres: the blob merges key by key (null
//! deletes), stays an object and bounded; one active agent per workspace, even when two
//! assigns race; replace, remove and move each end in one state.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use molecule_domain::AgentStatus;
use molecule_testkit::TestDb;
use molecule_tree::{ServiceConfig, ServiceError, Tree};
use molecule_workspace_config::{Agents, ConfigBlob};
use serde_json::{Value, json};
use uuid::Uuid;

async fn workspace(db: &TestDb, name: &str) -> Uuid {
    db.workspace_row(name, None).await
}

fn tree(db: &TestDb) -> Tree {
    Tree::new(db.pool().clone(), ServiceConfig::default())
}

#[tokio::test]
async fn the_blob_merges_key_by_key_and_null_deletes() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let blob = ConfigBlob::new(tree(&db));
    assert!(blob.get(ws).await.unwrap().is_empty());

    blob.merge(ws, json!({ "a": 1, "nested": { "x": 1 } })).await.unwrap();
    let merged = blob
        .merge(ws, json!({ "b": "two", "nested": { "y": 2 } }))
        .await
        .unwrap();
    assert_eq!(
        Value::Object(merged),
        json!({ "a": 1, "b": "two", "nested": { "y": 2 } }),
        "top-level keys replace, as the original's ||"
    );
    let merged = blob.merge(ws, json!({ "a": null, "c": [1, 2] })).await.unwrap();
    assert_eq!(
        Value::Object(merged),
        json!({ "b": "two", "nested": { "y": 2 }, "c": [1, 2] })
    );
    assert_eq!(
        Value::Object(blob.get(ws).await.unwrap()),
        json!({ "b": "two", "nested": { "y": 2 }, "c": [1, 2] })
    );

    for bad in [json!([1, 2]), json!("text"), json!(3)] {
        match blob.merge(ws, bad.clone()).await.unwrap_err() {
            ServiceError::Invalid { field, .. } => assert_eq!(field, "body", "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(matches!(
        blob.merge(Uuid::new_v4(), json!({ "a": 1 })).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));

    // Growth past the bound is refused whole.
    let chunk = "x".repeat(200 * 1024);
    for k in 0..5 {
        blob.merge(ws, json!({ format!("k{k}"): chunk })).await.unwrap();
    }
    let e = blob.merge(ws, json!({ "k5": chunk })).await.unwrap_err();
    assert!(matches!(e, ServiceError::TooLarge(_)), "{e:?}");
    assert!(!blob.get(ws).await.unwrap().contains_key("k5"), "nothing written");
}

#[tokio::test]
async fn one_active_agent_per_workspace_through_every_change() {
    let db = TestDb::new().await;
    let ws = workspace(&db, "w").await;
    let other = workspace(&db, "other").await;
    let agents = Agents::new(tree(&db));

    assert!(matches!(
        agents.assign(ws, " ").await.unwrap_err(),
        ServiceError::Invalid { field: "model", .. }
    ));
    // Two racing assigns: one wins, one is a 409 (the original could leave two).
    let (x, y) = tokio::join!(agents.assign(ws, "m1"), agents.assign(ws, "m2"));
    assert!(x.is_ok() != y.is_ok(), "{x:?} {y:?}");
    let lost = if x.is_ok() { y } else { x };
    assert!(matches!(lost.unwrap_err(), ServiceError::Conflict { .. }));
    let first = agents.active(ws).await.unwrap();

    let (second, old) = agents.replace(ws, "m3").await.unwrap();
    assert_eq!((second.model.as_str(), second.status), ("m3", AgentStatus::Active));
    assert_eq!(old, first.model);
    assert_eq!(agents.active(ws).await.unwrap().id, second.id);

    // Moving onto a workspace with its own agent is a 409 and moves nothing.
    let theirs = agents.assign(other, "theirs").await.unwrap();
    assert!(matches!(
        agents.move_to(ws, other).await.unwrap_err(),
        ServiceError::Conflict { .. }
    ));
    assert_eq!(agents.active(ws).await.unwrap().id, second.id);
    agents.remove(other).await.unwrap();
    assert_ne!(theirs.id, second.id);

    let moved = agents.move_to(ws, other).await.unwrap();
    assert_eq!((moved.id, moved.workspace_id), (second.id, other));
    assert!(matches!(
        agents.active(ws).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
    assert!(matches!(
        agents.remove(ws).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
    assert!(matches!(
        agents.replace(ws, "m4").await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
    assert!(matches!(
        agents.move_to(other, Uuid::new_v4()).await.unwrap_err(),
        ServiceError::NotFound(_)
    ));
    assert!(matches!(
        agents.move_to(other, other).await.unwrap_err(),
        ServiceError::Invalid {
            field: "target_workspace_id",
            ..
        }
    ));
}
