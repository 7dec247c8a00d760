//! Delegations through the HTTP API, with the original's bodies, against a local A2A stub that
//! answers, one that never answers, and a callee that does not exist.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::test;
use molecule_http::{AppState, app};
use molecule_service::delegations::DelegationConfig;
use molecule_service::testing::workspace_with_token;
use molecule_testkit::{TestDb, bearer, stable_json};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// A one-route A2A agent: answers `message/send` with `echo: <text>` and keeps the bodies it got.
async fn echo_agent(seen: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break body.to_owned();
                        }
                    }
                    if n == 0 {
                        return;
                    }
                };
                let req: Value = serde_json::from_str(&body).unwrap();
                let text = req["params"]["message"]["parts"][0]["text"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                seen.lock().unwrap().push(req.clone());
                let answer = json!({ "jsonrpc": "2.0", "id": req["id"], "result": { "kind": "message", "role": "agent", "parts": [{ "kind": "text", "text": format!("echo: {text}") }] } }).to_string();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                s.write_all(resp.as_bytes()).await.unwrap();
            });
        }
    });
    format!("http://{addr}")
}

/// An agent that accepts connections and never answers.
async fn silent_agent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            held.push(s);
        }
    });
    format!("http://{addr}")
}

async fn poll_status<S, B>(app: &S, caller: Uuid, token: &str, did: &str) -> Value
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    molecule_testkit::until_ok(
        &format!("delegation {did} to finish"),
        Duration::from_secs(20),
        || async {
            let req = test::TestRequest::get()
                .uri(&format!("/workspaces/{caller}/delegations"))
                .insert_header(bearer(token))
                .to_request();
            let list: Value = test::call_and_read_body_json(app, req).await;
            let row = list
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["delegation_id"] == did)
                .cloned()
                .unwrap();
            if row["status"] == "completed" || row["status"] == "failed" {
                Ok(row)
            } else {
                Err(format!("still {}", row["status"]))
            }
        },
    )
    .await
}

#[actix_web::test]
async fn delegations_reach_their_terminal_state_with_activity_and_inbox_rows() {
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.pool().clone(), Some("adm".into())).unwrap();
    state.services = state.services.clone().with_delegation_config(DelegationConfig {
        inbox_push: true,
        a2a_timeout: Duration::from_secs(1),
    });
    state.services.ledger().install().await.unwrap();
    let s = state.services.clone();
    let caller = workspace_with_token(&s, "caller").await;
    let answering = workspace_with_token(&s, "answering").await;
    let silent = workspace_with_token(&s, "silent").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    for (ws, url) in [
        (&answering, echo_agent(seen.clone()).await),
        (&silent, silent_agent().await),
    ] {
        let reg = serde_json::from_value(json!({ "id": ws.id, "url": url, "agent_card": { "name": "stub" } })).unwrap();
        s.register(reg).await.unwrap();
    }
    let app = test::init_service(app(state.clone())).await;
    let token = caller.token.clone();
    let delegate = |target: Uuid, key: Option<&str>| {
        let mut body = json!({ "target_id": target, "task": "say hi" });
        if let Some(k) = key {
            body["idempotency_key"] = json!(k);
        }
        test::TestRequest::post()
            .uri(&format!("/workspaces/{}/delegate", caller.id))
            .insert_header(bearer(&token))
            .set_json(body)
            .to_request()
    };

    // 1. A callee that answers.
    let resp = test::call_service(&app, delegate(answering.id, Some("k1"))).await;
    assert_eq!(resp.status(), 202);
    let sent: Value = test::read_body_json(resp).await;
    assert_eq!(sent["status"], "delegated");
    let ok_id = sent["delegation_id"].as_str().unwrap().to_owned();
    let done = poll_status(&app, caller.id, &token, &ok_id).await;
    insta::assert_json_snapshot!("completed_delegation_as_the_caller_lists_it", stable_json(&done));
    let got = seen.lock().unwrap().first().cloned().unwrap();
    assert_eq!(got["method"], "message/send", "{got}");
    assert_eq!(got["params"]["message"]["parts"][0]["kind"], "text");
    assert_eq!(got["params"]["message"]["metadata"]["delegation_id"], ok_id.as_str());
    // The same idempotency key gives the same delegation back.
    let again = test::call_service(&app, delegate(answering.id, Some("k1"))).await;
    assert_eq!(again.status(), 200);
    let again: Value = test::read_body_json(again).await;
    assert_eq!(
        (again["delegation_id"].as_str(), again["idempotent_hit"].as_bool()),
        (Some(ok_id.as_str()), Some(true))
    );

    // 2. A callee that never answers, and 3. one that does not exist (refused up front: no
    // delegation row, no background run).
    let slow: Value = test::call_and_read_body_json(&app, delegate(silent.id, None)).await;
    let gone = test::call_service(&app, delegate(Uuid::new_v4(), None)).await;
    assert_eq!(gone.status(), 404);
    let slow = poll_status(&app, caller.id, &token, slow["delegation_id"].as_str().unwrap()).await;
    assert_eq!(slow["status"], "failed");
    assert!(
        slow["error"].as_str().unwrap().contains("did not answer within 1s"),
        "{slow}"
    );

    // Activity: one delegate row per delegation (status in step), one delegate_result each,
    // and one inbox (a2a_receive) row each. The result rows follow the ledger's terminal
    // transition (which `poll_status` waited for), so wait for them too.
    let activity: Value =
        molecule_testkit::until_ok("both delegations' result rows", Duration::from_secs(20), || async {
            let activity: Value = test::call_and_read_body_json(
                &app,
                test::TestRequest::get()
                    .uri(&format!("/workspaces/{}/activity?limit=100", caller.id))
                    .insert_header(bearer(&token))
                    .to_request(),
            )
            .await;
            let results = activity
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["method"] == "delegate_result" || r["activity_type"] == "a2a_receive")
                .count();
            if results == 4 {
                Ok(activity)
            } else {
                Err(format!("{results} of 4 result and inbox rows so far"))
            }
        })
        .await;
    let rows = activity.as_array().unwrap();
    let count = |f: &dyn Fn(&Value) -> bool| rows.iter().filter(|r| f(r)).count();
    assert_eq!(count(&|r| r["method"] == "delegate"), 2);
    assert_eq!(count(&|r| r["method"] == "delegate" && r["status"] == "completed"), 1);
    assert_eq!(count(&|r| r["method"] == "delegate" && r["status"] == "failed"), 1);
    assert_eq!(
        count(&|r| r["activity_type"] == "delegation" && r["method"] == "delegate_result"),
        2
    );
    let inbox: Vec<&Value> = rows.iter().filter(|r| r["activity_type"] == "a2a_receive").collect();
    assert_eq!(inbox.len(), 2, "one inbox row per delegation");
    let ok_inbox = inbox
        .iter()
        .find(|r| r["response_body"]["delegation_id"] == ok_id.as_str())
        .unwrap();
    insta::assert_json_snapshot!("delegation_result_in_the_callers_inbox", stable_json(ok_inbox));
    assert_eq!(inbox.iter().filter(|r| r["status"] == "error").count(), 1);

    // Self-delegation is refused with a reason.
    let own = test::call_service(&app, delegate(caller.id, None)).await;
    assert_eq!(own.status(), 400);
    let body: Value = test::read_body_json(own).await;
    assert!(body["error"].as_str().unwrap().contains("self-delegation"), "{body}");

    // Admin views.
    let admin = |uri: &str| {
        test::TestRequest::get()
            .uri(uri)
            .insert_header(bearer("adm"))
            .to_request()
    };
    let stats: Value = test::call_and_read_body_json(&app, admin("/admin/delegations/stats")).await;
    assert_eq!(
        (
            stats["completed"].as_i64(),
            stats["failed"].as_i64(),
            stats["stuck"].as_i64()
        ),
        (Some(1), Some(1), Some(0))
    );
    assert!(stats["duration_seconds"]["p50"].is_number());
    let failed: Value = test::call_and_read_body_json(&app, admin("/admin/delegations?status=failed")).await;
    assert_eq!(failed["count"], 1);
    let bad = test::call_service(&app, admin("/admin/delegations?status=bogus")).await;
    assert_eq!(bad.status(), 400);
    let body: Value = test::read_body_json(bad).await;
    insta::assert_json_snapshot!("unknown_delegation_status_filter", body);
    assert_eq!(
        test::call_service(&app, admin("/admin/delegations?limit=0"))
            .await
            .status(),
        400
    );
}
