//! Approvals end to end: the official MCP Python SDK's agent blocks in `request_approval`
//! until its parent decides through the API (the requester, a sibling and no token are
//! refused), the requester's `/ws` hears `APPROVAL_DECIDED`, and a request nobody decides
//! comes back `expired`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use molecule_testkit::client::{Agent, text};
use molecule_testkit::{TestDb, until_ok};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common;

const ADMIN: &str = "approvals-admin";

async fn child(api: &molecule_testkit::client::Api, name: &str, parent: &Agent) -> Agent {
    let v = api
        .create(&json!({ "name": name, "runtime": "external", "parent_id": parent.id }))
        .await;
    Agent {
        id: text(&v, "id"),
        token: text(&v, "auth_token"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sdk_agent_waits_for_its_parent_and_hears_the_end_on_ws() {
    let Some(python) = common::tools_python(
        "an_sdk_agent_waits_for_its_parent_and_hears_the_end_on_ws",
        "mcp.client.streamable_http",
        "mcp",
    ) else {
        return;
    };
    let db = TestDb::new().await;
    let server = common::start_replica(&db.url, ADMIN, &[("APPROVAL_EXPIRY_INTERVAL_SECONDS", "1")]);
    let api = server.api();
    api.ready().await;
    let lead = api.external("lead").await;
    let worker = child(&api, "worker", &lead).await;
    let sibling = child(&api, "sibling", &lead).await;

    // The worker watches its own events.
    let mut req = format!("{}/ws", server.base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {}", worker.token).parse().unwrap());
    req.headers_mut().insert("X-Workspace-ID", worker.id.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_sdk_approval.py");
    let url = format!("{}/workspaces/{}/mcp", server.base, worker.id);
    let agent = tokio::process::Command::new(&python)
        .arg(&script)
        .args([&url, &worker.token])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // The agent's request shows up pending, for the worker and in the operator's banner.
    let list_path = format!("/workspaces/{}/approvals", worker.id);
    let pending = until_ok("the agent's pending request", Duration::from_secs(60), || async {
        let list = api.get(&list_path, &worker.token).await.expect(200);
        match list.as_array().unwrap().first() {
            Some(r) if r["status"] == "pending" => Ok(r.clone()),
            _ => Err(format!("not yet: {list}")),
        }
    })
    .await;
    assert_eq!(
        pending["context"],
        json!({ "env": "prod" }),
        "context is stored and returned"
    );
    let id = text(&pending, "id");
    let banner = api.admin_get("/approvals/pending").await.expect(200);
    assert_eq!(banner[0]["workspace_name"], "worker", "{banner}");
    api.call(reqwest::Method::GET, "/approvals/pending", None, None)
        .await
        .expect(401);

    // Who may not decide.
    let decide = format!("/workspaces/{}/approvals/{id}/decide", worker.id);
    let approve = json!({ "decision": "approved" });
    let own = api.post(&decide, &worker.token, &approve).await.expect(403);
    assert!(own.to_string().contains("cannot decide its own request"), "{own}");
    api.post(&decide, &sibling.token, &approve).await.expect(403);
    api.call(reqwest::Method::POST, &decide, None, Some(&approve))
        .await
        .expect(401);
    let forged = api
        .post(
            &decide,
            &lead.token,
            &json!({ "decision": "approved", "decided_by": "someone-else" }),
        )
        .await
        .expect(400);
    assert!(forged.to_string().contains("decided_by"), "{forged}");
    let bad = api
        .post(&decide, &lead.token, &json!({ "decision": "yes" }))
        .await
        .expect(400);
    assert!(bad.to_string().contains("decision"), "{bad}");

    // The parent decides.
    let done = api.post(&decide, &lead.token, &approve).await.expect(200);
    assert_eq!(
        done,
        json!({ "status": "approved", "approval_id": id, "decided_by": lead.id })
    );
    api.post(&decide, &lead.token, &approve).await.expect(409);

    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            if let Ok(t) = msg.unwrap().to_text() {
                let ev: Value = serde_json::from_str(t).unwrap_or_default();
                if ev["event"] == "APPROVAL_DECIDED" && ev["payload"]["approval_id"] == id.as_str() {
                    return ev;
                }
            }
        }
        panic!("the WebSocket closed");
    })
    .await
    .expect("the requester's /ws carried APPROVAL_DECIDED");
    assert_eq!(
        heard["payload"],
        json!({ "approval_id": id, "status": "approved", "decided_by": lead.id })
    );

    let out = tokio::time::timeout(Duration::from_secs(60), agent.wait_with_output())
        .await
        .expect("the SDK agent finished")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(report["offered"], true, "{report}");
    assert_eq!(report["decided"]["is_error"], false, "{report}");
    assert_eq!(report["decided"]["result"]["status"], "approved", "{report}");
    assert_eq!(report["decided"]["result"]["approval_id"], id.as_str(), "{report}");
    assert_eq!(report["expired"]["result"]["status"], "expired", "{report}");
    assert_eq!(report["expired"]["result"]["decided_by"], "auto-expired", "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_are_checked_and_only_the_requester_withdraws() {
    let db = TestDb::new().await;
    let server = common::start_replica(&db.url, ADMIN, &[]);
    let api = server.api();
    api.ready().await;
    let ws = api.external("asker").await;
    let path = format!("/workspaces/{}/approvals", ws.id);

    for (body, field) in [
        (json!({ "reason": "no action" }), "action"),
        (json!({ "action": "x", "context": "not an object" }), "context"),
        (json!({ "action": "x", "timeout_seconds": 100000 }), "timeout_seconds"),
        (json!({ "action": "x", "urgent": true }), "urgent"),
    ] {
        let refused = api.post(&path, &ws.token, &body).await.expect(400);
        assert!(refused.to_string().contains(field), "{body} → {refused}");
    }
    let made = api
        .post(&path, &ws.token, &json!({ "action": "merge", "task_id": "t-1" }))
        .await
        .expect(201);
    assert_eq!(made["status"], "pending");
    let id = text(&made, "approval_id");
    let withdraw = format!("/workspaces/{}/approvals/{id}/withdraw", ws.id);
    let by_admin = api.admin_post(&withdraw, &json!({})).await.expect(403);
    assert!(by_admin.to_string().contains("not the requester"), "{by_admin}");
    let w = api.post(&withdraw, &ws.token, &json!({})).await.expect(200);
    assert_eq!(w["status"], "withdrawn");
    api.post(&withdraw, &ws.token, &json!({})).await.expect(409);
    api.post(
        &format!("/workspaces/{}/approvals/not-a-uuid/withdraw", ws.id),
        &ws.token,
        &json!({}),
    )
    .await
    .expect(404);
    let listed = api.get(&path, &ws.token).await.expect(200);
    assert_eq!(listed[0]["status"], "withdrawn");
    assert_eq!(listed[0]["decided_by"], ws.id.as_str());
    assert_eq!(listed[0]["task_id"], "t-1");
    assert_eq!(listed[0]["context"], json!({}));
}
