//! The config blob and agent assignment routes: an object body merged key by key, the
//! original's status codes, and a move only where the hierarchy lets the workspace reach.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use molecule_testkit::TestDb;
use molecule_testkit::client::{Agent, text};
use serde_json::json;

use crate::common;

const ADMIN: &str = "config-admin";

#[tokio::test(flavor = "multi_thread")]
async fn config_and_agent_routes() {
    let db = TestDb::new().await;
    let server = common::start_replica(&db.url, ADMIN, &[]);
    let api = server.api();
    api.ready().await;
    let lead = api.external("lead").await;
    let v = api
        .create(&json!({ "name": "worker", "runtime": "external", "parent_id": lead.id }))
        .await;
    let worker = Agent {
        id: text(&v, "id"),
        token: text(&v, "auth_token"),
    };
    let stranger = api.external("stranger").await;

    let config = format!("/workspaces/{}/config", worker.id);
    assert_eq!(api.get(&config, &worker.token).await.expect(200), json!({ "data": {} }));
    api.patch(&config, &worker.token, &json!({ "tier": 2, "note": "x" }))
        .await
        .expect(200);
    api.patch(&config, &worker.token, &json!({ "note": null }))
        .await
        .expect(200);
    assert_eq!(
        api.get(&config, &worker.token).await.expect(200),
        json!({ "data": { "tier": 2 } })
    );
    let refused = api.patch(&config, &worker.token, &json!([1, 2])).await.expect(400);
    assert!(refused.to_string().contains("JSON object"), "{refused}");
    api.get(&config, &stranger.token).await.expect(403);

    let agent = format!("/workspaces/{}/agent", worker.id);
    api.get(&agent, &worker.token).await.expect(404);
    let made = api
        .post(&agent, &worker.token, &json!({ "model": "m1" }))
        .await
        .expect(201);
    api.post(&agent, &worker.token, &json!({ "model": "m2" }))
        .await
        .expect(409);
    let replaced = api
        .patch(&agent, &worker.token, &json!({ "model": "m2" }))
        .await
        .expect(200);
    assert_eq!(replaced["old_model"], "m1");
    assert_ne!(replaced["agent_id"], made["agent_id"]);
    api.post(&agent, &worker.token, &json!({ "modle": "typo" }))
        .await
        .expect(400);

    // A move goes where the workspace may reach (its parent), not to a stranger.
    let mv = format!("{agent}/move");
    let far = api
        .post(&mv, &worker.token, &json!({ "target_workspace_id": stranger.id }))
        .await
        .expect(403);
    assert!(far.to_string().contains("target_workspace_id"), "{far}");
    api.post(&mv, &worker.token, &json!({ "target_workspace_id": "nope" }))
        .await
        .expect(400);
    let moved = api
        .post(&mv, &worker.token, &json!({ "target_workspace_id": lead.id }))
        .await
        .expect(200);
    assert_eq!(moved["to_workspace"], lead.id.as_str());
    assert_eq!(moved["model"], "m2");
    let at_lead = api
        .get(&format!("/workspaces/{}/agent", lead.id), &lead.token)
        .await
        .expect(200);
    assert_eq!(at_lead["agent_id"], replaced["agent_id"]);
    // The operator moves anywhere.
    api.post(
        &format!("/workspaces/{}/agent/move", lead.id),
        ADMIN,
        &json!({ "target_workspace_id": stranger.id }),
    )
    .await
    .expect(200);
    let removed = api
        .delete(&format!("/workspaces/{}/agent", stranger.id), &stranger.token)
        .await
        .expect(200);
    assert_eq!(removed["status"], "removed");
    api.delete(&format!("/workspaces/{}/agent", stranger.id), &stranger.token)
        .await
        .expect(404);

    let events = api.admin_get(&format!("/events/{}", lead.id)).await.expect(200);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "AGENT_MOVED").count(),
        2,
        "in and out: {kinds:?}"
    );
}
