//! The workspace tree on a real database: re-parent rules, cascade delete, purge.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use molecule_api::workspaces::Removal;
use molecule_api::workspaces::{CreateWorkspace, PatchWorkspace};
use molecule_service::{ServiceConfig, ServiceError, Services};
use molecule_testkit::TestDb;
use molecule_tree::workspaces::{Actor, Children};
use uuid::Uuid;

async fn create(s: &Services, name: &str, parent: Option<Uuid>) -> Uuid {
    s.create_workspace(CreateWorkspace {
        name: name.into(),
        parent_id: parent,
        ..Default::default()
    })
    .await
    .unwrap()
    .id
}

fn reparent(to: Option<Uuid>) -> PatchWorkspace {
    PatchWorkspace {
        parent_id: Some(to),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reparenting_refuses_cycles_missing_and_removed_parents() {
    let db = TestDb::new().await;
    let s = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    let root = create(&s, "root", None).await;
    let mid = create(&s, "mid", Some(root)).await;
    let leaf = create(&s, "leaf", Some(mid)).await;

    let err = s
        .patch_workspace(root, reparent(Some(leaf)), Actor::Admin)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict { .. }), "cycle: {err}");
    let err = s
        .patch_workspace(root, reparent(Some(root)), Actor::Admin)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Invalid { field: "parent_id", .. }),
        "self: {err}"
    );
    let err = s
        .patch_workspace(leaf, reparent(Some(Uuid::new_v4())), Actor::Admin)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Invalid { field: "parent_id", .. }),
        "missing: {err}"
    );
    let err = s
        .patch_workspace(leaf, reparent(Some(root)), Actor::Workspace)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServiceError::Forbidden(_)),
        "token callers may not re-parent: {err}"
    );

    let other = create(&s, "other", None).await;
    s.delete_workspace(other, Children::Refuse, Removal::Removed)
        .await
        .unwrap();
    let err = s
        .patch_workspace(leaf, reparent(Some(other)), Actor::Admin)
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Conflict { .. }), "removed parent: {err}");

    let moved = s
        .patch_workspace(leaf, reparent(Some(root)), Actor::Admin)
        .await
        .unwrap();
    assert!(moved.reparented);
    assert_eq!(moved.workspace.parent_id, Some(root));
    let detached = s.patch_workspace(leaf, reparent(None), Actor::Admin).await.unwrap();
    assert_eq!(detached.workspace.parent_id, None);
    assert!(
        s.patch_workspace(leaf, PatchWorkspace::default(), Actor::Admin)
            .await
            .is_err(),
        "empty patch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_cascades_after_confirmation_and_purge_removes_rows() {
    let db = TestDb::new().await;
    let s = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    let root = create(&s, "root", None).await;
    let a = create(&s, "a", Some(root)).await;
    let b = create(&s, "b", Some(a)).await;
    let token = s.tree().mint_token(b).await.unwrap().auth_token;

    match s
        .delete_workspace(root, Children::Refuse, Removal::Removed)
        .await
        .unwrap_err()
    {
        ServiceError::Conflict { details, .. } => {
            assert_eq!(details["status"], "confirmation_required");
            assert_eq!(details["children_count"], 1);
            assert_eq!(details["children"][0]["name"], "a");
        }
        other => panic!("expected 409, got {other}"),
    }
    let deleted = s
        .delete_workspace(root, Children::Cascade, Removal::Removed)
        .await
        .unwrap();
    assert_eq!((deleted.status, deleted.cascade_deleted), (Removal::Removed, 2));
    for id in [root, a, b] {
        assert_eq!(s.tree().get_workspace(id).await.unwrap().status.to_string(), "removed");
    }
    assert!(
        s.tree().authorize_workspace(&token, b).await.is_err(),
        "tokens revoked with the workspace"
    );
    assert!(s.tree().list_workspaces().await.unwrap().is_empty());
    let removed_events = s
        .tree()
        .recent_events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event == "WORKSPACE_REMOVED")
        .count();
    assert_eq!(removed_events, 3, "one event per workspace");

    let purged = s
        .delete_workspace(root, Children::Refuse, Removal::Purged)
        .await
        .unwrap();
    assert_eq!((purged.status, purged.ids.len()), (Removal::Purged, 3));
    assert!(s.tree().get_workspace(b).await.is_err());
    assert_eq!(
        s.tree().recent_events(Some(b), 10).await.unwrap().last().unwrap().event,
        "WORKSPACE_PURGED",
        "history survives the purge"
    );
}

/// A transaction holding a key-share lock on a workspace row (what inserting a token, event or
/// activity row for it takes) must not stall a delete. When the delete locked rows `FOR
/// UPDATE`, it waited here, and against a provision rotating the same workspace's tokens
/// that wait closed a deadlock. Tokens cannot be minted for a removed workspace.
#[tokio::test(flavor = "multi_thread")]
async fn delete_does_not_wait_on_writers_that_reference_the_workspace() {
    use diesel_async::RunQueryDsl;
    let db = TestDb::new().await;
    let s = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    let root = create(&s, "root", None).await;
    let a = create(&s, "a", Some(root)).await;
    let mut other = db.pool().get().await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut other).await.unwrap();
    for id in [root, a] {
        diesel::sql_query("SELECT 1 FROM workspaces WHERE id = $1 FOR KEY SHARE")
            .bind::<diesel::sql_types::Uuid, _>(id)
            .execute(&mut other)
            .await
            .unwrap();
    }
    let deleted = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.delete_workspace(root, Children::Cascade, Removal::Removed),
    )
    .await
    .expect("the delete waited on a key-share lock")
    .unwrap();
    assert_eq!(deleted.cascade_deleted, 1);
    diesel::sql_query("ROLLBACK").execute(&mut other).await.unwrap();
    for err in [
        s.tree().rotate_tokens(a).await.unwrap_err(),
        s.tree().mint_token(a).await.unwrap_err(),
    ] {
        assert!(matches!(err, ServiceError::Conflict { .. }), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn creation_validates_fields_by_name() {
    let db = TestDb::new().await;
    let s = Services::new(db.pool().clone(), ServiceConfig::default()).unwrap();
    for (body, field) in [
        (
            CreateWorkspace {
                name: "bad\nname".into(),
                ..Default::default()
            },
            "name",
        ),
        (
            CreateWorkspace {
                name: "x".into(),
                tier: Some(9),
                ..Default::default()
            },
            "tier",
        ),
        (
            CreateWorkspace {
                name: "x".into(),
                delivery_mode: Some("smoke".into()),
                ..Default::default()
            },
            "delivery_mode",
        ),
        (
            CreateWorkspace {
                name: "x".into(),
                parent_id: Some(Uuid::new_v4()),
                ..Default::default()
            },
            "parent_id",
        ),
        (
            CreateWorkspace {
                name: "x".into(),
                url: Some("gopher://x".into()),
                ..Default::default()
            },
            "url",
        ),
    ] {
        match s.create_workspace(body).await.unwrap_err() {
            ServiceError::Invalid { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field}: expected 400, got {other}"),
        }
    }
    let ext = s
        .create_workspace(CreateWorkspace {
            name: "ext".into(),
            external: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ext.status.to_string(), "awaiting_agent");
    assert!(ext.connection.is_some());
    let rt = s
        .create_workspace(CreateWorkspace {
            name: "rt".into(),
            runtime: Some("langgraph".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rt.workspace.runtime.to_string(),
        "claude-code",
        "unknown runtime becomes the default"
    );
}
