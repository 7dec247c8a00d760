//! Two workspace-server processes on one database: events caused through one replica reach
//! WebSocket clients of the other, and the liveness sweep acts once per stale workspace.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::time::Duration;

use common::{Proc as Replica, until};
use futures_util::StreamExt;
use molecule_testkit::client::text;
use molecule_testkit::{Agent, TestDb};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common;

const ADMIN: &str = "replica-admin";

fn start(db: &TestDb) -> Replica {
    common::start_replica(
        &db.url,
        ADMIN,
        &[("LIVENESS_TTL_SECONDS", "1"), ("LIVENESS_SWEEP_INTERVAL_SECONDS", "1")],
    )
}

async fn sse_connect(base: &str, id: &str, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let host = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req =
        format!("GET /workspaces/{id}/events/stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s
}

/// Reads the stream until `needle` appears (10 s at most); returns what was read.
async fn read_until(s: &mut tokio::net::TcpStream, needle: &str) -> String {
    use tokio::io::AsyncReadExt;
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains(needle) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "stream closed before {needle:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} within 10 s: {seen}"));
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn events_cross_replicas_and_the_sweep_acts_once() {
    // An empty database: both replicas race to migrate it and install the ledger at boot.
    let db = TestDb::empty().await;
    let (a, b) = (start(&db), start(&db));
    let (api_a, api_b) = (a.api(), b.api());
    api_a.ready().await;
    api_b.ready().await;

    // A WebSocket client on replica B.
    let mut req = format!("{}/ws", b.base.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {ADMIN}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    // A change made through replica A.
    let created = api_a.create(&json!({ "name": "cross-replica" })).await;
    let id = text(&created, "id");
    assert!(
        created.get("auth_token").is_none(),
        "a provisioned workspace's create shows no token: {created}"
    );
    let token = api_a.mint_token(&id).await;

    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = ws.next().await {
            let msg = msg.unwrap();
            if let Ok(text) = msg.to_text() {
                let ev: Value = serde_json::from_str(text).unwrap_or_default();
                if ev["workspace_id"] == id.as_str() && ev["event"] == "WORKSPACE_PROVISIONING" {
                    return ev;
                }
            }
        }
        panic!("WebSocket closed");
    })
    .await
    .expect("replica B's WebSocket client never saw the event caused through replica A");
    assert!(seen["id"].as_i64().is_some(), "persisted events carry their id: {seen}");

    // An SSE client of that workspace on replica B sees a change made through replica A.
    let mut sse = sse_connect(&b.base, &id, &token).await;
    let first = read_until(&mut sse, ": ping").await;
    assert!(first.contains(": ping"), "SSE opens with a ping: {first}");
    api_a
        .patch(&format!("/workspaces/{id}"), &token, &json!({ "role": "sse probe" }))
        .await
        .expect(200);
    let frame = read_until(&mut sse, "WORKSPACE_UPDATED").await;
    assert!(frame.contains("data: {"), "SSE frames are `data: <json>`: {frame}");

    // Five online workspaces go stale (TTL 1 s); both replicas sweep every second.
    let mut agents = vec![Agent { id: id.clone(), token }];
    for i in 0..4 {
        agents.push(api_b.provisioned(&json!({ "name": format!("stale-{i}") })).await);
    }
    for agent in &agents {
        api_a
            .register(agent, "http://127.0.0.1:9", &json!({ "name": "x" }))
            .await;
    }
    until("every workspace offline", Duration::from_secs(30), || async {
        let list = api_a.admin_get("/workspaces").await.body;
        list.as_array()?.iter().all(|w| w["status"] == "offline").then_some(())
    })
    .await;
    // Let a few more ticks pass on both replicas (each would re-mark if it were not exclusive).
    let ticks = |r: &Replica| {
        let api = r.api();
        async move {
            let body = api.admin_get("/admin/liveness").await.body;
            let s = &body["subsystems"]["liveness"];
            Some((s["ticks_run"].as_u64()?, s["ticks_skipped"].as_u64()?))
        }
    };
    let before = (ticks(&a).await.unwrap(), ticks(&b).await.unwrap());
    until("three more ticks on each replica", Duration::from_secs(30), || async {
        let (ra, rb) = (ticks(&a).await?, ticks(&b).await?);
        (ra.0 + ra.1 >= before.0.0 + before.0.1 + 3 && rb.0 + rb.1 >= before.1.0 + before.1.1 + 3).then_some(())
    })
    .await;

    for Agent { id, .. } in &agents {
        let events = api_b.events(id).await;
        let offline = events.iter().filter(|e| e["event"] == "WORKSPACE_OFFLINE").count();
        assert_eq!(offline, 1, "workspace {id}: exactly one replica marks it offline");
    }
}

/// An agent on `/ws` (its own token, `X-Workspace-ID`) sees the events of the workspaces it may
/// talk to and nothing of an unrelated tree; without the header its token is not enough.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_on_the_websocket_sees_only_what_the_hierarchy_allows() {
    let db = TestDb::new().await;
    let server = start(&db);
    let api = server.api();
    api.ready().await;
    let create = |name: &'static str, parent: Option<String>| {
        let api = &api;
        async move { api.provisioned(&json!({ "name": name, "parent_id": parent })).await }
    };
    let parent = create("parent", None).await;
    let child = create("child", Some(parent.id.clone())).await;
    let stranger = create("stranger-child", Some(create("stranger", None).await.id)).await;

    let ws_request = |with_header: bool| {
        let mut req = format!("{}/ws", server.base.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Authorization", format!("Bearer {}", child.token).parse().unwrap());
        if with_header {
            req.headers_mut().insert("X-Workspace-ID", child.id.parse().unwrap());
        }
        req
    };
    let refused = tokio_tungstenite::connect_async(ws_request(false)).await;
    assert!(
        refused.is_err_and(|e| e.to_string().contains("401")),
        "a workspace token without X-Workspace-ID is not the admin token"
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(true)).await.unwrap();

    // The stranger's event comes first; the parent's after it. The agent must see the parent's
    // and must not have seen the stranger's.
    for agent in [&stranger, &parent] {
        api.register(agent, "http://127.0.0.1:9", &json!({ "name": "x" })).await;
    }
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = Vec::new();
        while let Some(msg) = ws.next().await {
            let ev: Value = serde_json::from_str(msg.unwrap().to_text().unwrap_or("{}")).unwrap_or_default();
            let done = ev["workspace_id"] == parent.id.as_str() && ev["event"] == "WORKSPACE_ONLINE";
            seen.push(ev);
            if done {
                return seen;
            }
        }
        panic!("WebSocket closed");
    })
    .await
    .expect("the agent never saw its parent come online");
    assert!(
        seen.iter().all(|ev| ev["workspace_id"] != stranger.id.as_str()),
        "the agent saw an unrelated workspace's event: {seen:?}"
    );
}
