//! The workload terminal on a real Docker engine, as a WebSocket client sees it: a shell on a
//! TTY in the running container (the reference agent's image has busybox `sh`, no bash, so
//! the fallback is what answers), keystrokes in and output out, the JSON resize reaching the
//! TTY (`stty size`), the per-workspace cap, the idle deadline, and one `terminal_session`
//! activity row per session.
//!
//! Needs the `molecule-agent:*` images. In CI a missing engine or image fails the test;
//! elsewhere it is skipped loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use molecule_testkit::client::text;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{Cleanup, docker_problem, ready_or_skip, until};
use crate::docker_e2e::{ADMIN, start, wait_status};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the terminal of `id` as the admin; the refusal's HTTP status otherwise.
async fn open(base: &str, id: &str) -> Result<Socket, u16> {
    let mut req = format!("{}/workspaces/{id}/terminal", base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {ADMIN}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("terminal connect: {e}"),
    }
}

/// Reads output until it contains `want` (20 s at most); everything read.
async fn read_until(ws: &mut Socket, want: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(want) {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {want:?} in the terminal; it printed {seen:?}"));
        match next {
            Some(Ok(Message::Binary(b))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Some(Ok(Message::Text(t))) => seen.push_str(&t),
            Some(Ok(_)) => {}
            other => panic!("the terminal ended ({other:?}) before {want:?}; it printed {seen:?}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_into_a_docker_workload() {
    if !ready_or_skip("the terminal test", docker_problem("molecule-agent:claude-code")) {
        return;
    }
    let db = molecule_testkit::TestDb::empty().await;
    let instance = format!("term-{}", uuid::Uuid::new_v4().simple());
    let _cleanup = Cleanup(instance.clone());
    let server = start(
        &db,
        &instance,
        &[
            ("MOLECULE_RUNTIME_IMAGES", "claude-code=molecule-agent:claude-code"),
            ("TERMINAL_MAX_SESSIONS_PER_WORKSPACE", "2"),
            ("TERMINAL_IDLE_TIMEOUT_SECONDS", "2"),
        ],
    );
    let api = server.api();
    api.ready().await;
    let id = text(
        &api.create(&json!({ "name": "shell-host", "runtime": "claude-code" }))
            .await,
        "id",
    );
    wait_status(&api, &id, "online").await;

    // Keystrokes in, output out; the resize message reaches the TTY.
    let mut ws = open(&server.base, &id).await.unwrap();
    ws.send(Message::text(r#"{"type":"resize","cols":123,"rows":45}"#))
        .await
        .unwrap();
    ws.send(Message::text("echo hi-$((40+2))\r")).await.unwrap();
    read_until(&mut ws, "hi-42").await;
    ws.send(Message::text("stty size\r")).await.unwrap();
    read_until(&mut ws, "45 123").await;

    // The cap: two open, a third refused; closing one frees its place.
    let second = open(&server.base, &id).await.unwrap();
    assert_eq!(
        open(&server.base, &id).await.err(),
        Some(429),
        "a third terminal is refused"
    );
    drop(second);
    let third = until("the closed terminal's place freed", Duration::from_secs(10), || async {
        open(&server.base, &id).await.ok()
    })
    .await;
    drop(third);

    // Silent both ways for the idle deadline: the server closes it, saying why.
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.reason.to_string()),
                Some(Ok(_)) => {}
                _ => return None,
            }
        }
    })
    .await
    .expect("an idle terminal is closed");
    assert_eq!(closed.as_deref(), Some("idle"));

    // Each session left its row: who, how long, why it ended.
    let rows = until("the sessions' activity rows", Duration::from_secs(10), || async {
        let rows = api.activity(&id, api.admin(), "type=terminal_session").await.ok()?;
        (rows.len() >= 3).then_some(rows)
    })
    .await;
    let idle = rows
        .iter()
        .find(|r| r["request_body"]["ended"] == "idle")
        .expect("the idle session's row");
    assert_eq!(idle["request_body"]["actor"], "admin");
    assert!(idle["request_body"]["bytes_out"].as_u64().unwrap() > 0);

    // A workload that is not running has no terminal.
    api.admin_action(&format!("/workspaces/{id}/pause")).await.expect(200);
    assert_eq!(open(&server.base, &id).await.err(), Some(404));
}
