//! The idle monitor and the hibernate verb against a real database, with hooks that record the
//! workloads they stop and provision (the port the dispatcher implements).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};

use diesel_async::RunQueryDsl;
use molecule_api::workspaces::{CreateWorkspace, PatchWorkspace};
use molecule_service::{HookError, Services, WorkloadHooks};
use molecule_testkit::TestDb;
use molecule_tree::workspaces::Actor;
use serde_json::json;
use uuid::Uuid;

#[derive(Default)]
struct Recorder {
    stopped: Mutex<Vec<Uuid>>,
}

#[async_trait::async_trait]
impl WorkloadHooks for Recorder {
    fn has_provisioner(&self) -> bool {
        true
    }
    async fn stop_one(&self, id: Uuid) -> Result<(), HookError> {
        self.stopped.lock().unwrap().push(id);
        Ok(())
    }
}

async fn online(s: &Services, name: &str, idle_minutes: Option<i32>) -> Uuid {
    let id = s
        .create_workspace(CreateWorkspace {
            name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let reg = serde_json::from_value(json!({ "id": id, "url": "http://127.0.0.1:9", "agent_card": {} })).unwrap();
    s.messaging().register(reg).await.unwrap();
    if let Some(m) = idle_minutes {
        let patch: PatchWorkspace = serde_json::from_value(json!({ "hibernation_idle_minutes": m })).unwrap();
        s.patch_workspace(id, patch, Actor::Admin).await.unwrap();
    }
    id
}

/// Moves a workspace's clock back: created and last messaged `minutes` ago.
async fn age(db: &TestDb, id: Uuid, minutes: i32) {
    let mut c = db.pool().get().await.unwrap();
    diesel::sql_query(
        "UPDATE workspaces SET created_at = now() - make_interval(mins => $2),
                last_inbound_at = now() - make_interval(mins => $2) WHERE id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<diesel::sql_types::Integer, _>(minutes)
    .execute(&mut c)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_idle_monitor_hibernates_only_message_idle_workspaces_without_tasks() {
    let db = TestDb::new().await;
    let hooks = Arc::new(Recorder::default());
    let s = Services::new(db.pool().clone(), Default::default())
        .unwrap()
        .with_hooks(hooks.clone());
    let idle = online(&s, "idle", Some(10)).await;
    let recent = online(&s, "recent", Some(10)).await;
    let busy = online(&s, "busy", Some(10)).await;
    let never = online(&s, "never", None).await;
    for id in [idle, busy, never] {
        age(&db, id, 30).await;
    }
    age(&db, recent, 5).await;
    // Heartbeats keep coming (a live agent): they do not count as activity. One reports a task.
    for id in [idle, recent, never] {
        let hb = serde_json::from_value(json!({ "workspace_id": id, "active_tasks": 0 })).unwrap();
        s.messaging().heartbeat(hb).await.unwrap();
    }
    let hb = serde_json::from_value(json!({ "workspace_id": busy, "active_tasks": 1 })).unwrap();
    s.messaging().heartbeat(hb).await.unwrap();

    let report = s.messaging().hibernate_idle().await.unwrap();
    assert_eq!(report["hibernated"], 1, "{report}");
    assert_eq!(*hooks.stopped.lock().unwrap(), vec![idle]);
    let w = s.tree().get_workspace(idle).await.unwrap();
    assert_eq!((w.status.to_string(), w.url), ("hibernated".to_owned(), None));
    for id in [recent, busy, never] {
        assert_eq!(s.tree().get_workspace(id).await.unwrap().status.to_string(), "online");
    }
    // Hibernated already: a second pass does nothing.
    assert_eq!(s.messaging().hibernate_idle().await.unwrap()["hibernated"], 0);
}

#[tokio::test]
async fn hibernate_refuses_busy_offline_and_external_workspaces_with_reasons() {
    let db = TestDb::new().await;
    let s = Services::new(db.pool().clone(), Default::default())
        .unwrap()
        .with_hooks(Arc::new(Recorder::default()));
    let busy = online(&s, "busy", None).await;
    let hb = serde_json::from_value(json!({ "workspace_id": busy, "active_tasks": 2 })).unwrap();
    s.messaging().heartbeat(hb).await.unwrap();
    let err = s
        .messaging()
        .hibernate_workspace(busy, "test")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("active task"), "{err}");
    let fresh = s
        .create_workspace(CreateWorkspace {
            name: "fresh".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let err = s
        .messaging()
        .hibernate_workspace(fresh, "test")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("provisioning"), "{err}");
    let bad: Result<PatchWorkspace, _> = serde_json::from_value(json!({ "hibernation_idle_minutes": 0 }));
    let err = s
        .patch_workspace(busy, bad.unwrap(), Actor::Admin)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("hibernation_idle_minutes:"), "{err}");
}
