//! The A2A proxy through the HTTP API, against a scriptable loopback agent: answers passed
//! through with their side effects, the caller checks in order, the budget, the queue (busy,
//! idempotent, drained once by two replicas, dropped), and the transport outcomes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test;
use molecule_http::{AppState, app};
use molecule_service::Services;
use molecule_service::testing::{TestWorkspace, workspace_under};
use molecule_testkit::{TestDb, bearer, stable_json};
use serde_json::{Value, json};
use uuid::Uuid;

use molecule_testkit::StubAgent;
use molecule_testkit::agent::Mode;

const ADMIN: &str = "adm";

struct World {
    db: TestDb,
    state: AppState,
    parent: TestWorkspace,
    target: TestWorkspace,
    stranger: TestWorkspace,
    agent: StubAgent,
}

async fn register(s: &Services, id: Uuid, url: &str) {
    let reg = serde_json::from_value(json!({ "id": id, "url": url, "agent_card": { "name": "stub" } })).unwrap();
    s.messaging().register(reg).await.unwrap();
}

async fn heartbeat(s: &Services, id: Uuid, extra: Value) {
    let mut hb = json!({ "workspace_id": id, "active_tasks": 0 });
    hb.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    s.messaging()
        .heartbeat(serde_json::from_value(hb).unwrap())
        .await
        .unwrap();
}

/// parent ─ target, and an unrelated root `stranger` under its own parent (so the two are not
/// siblings); the target's agent is a stub in `mode`.
async fn world(mode: Mode) -> World {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    state.services.ledger().install().await.unwrap();
    let s = &state.services;
    let parent = workspace_under(s, "parent", None).await;
    let target = workspace_under(s, "target", Some(parent.id)).await;
    let other_root = workspace_under(s, "other-root", None).await;
    let stranger = workspace_under(s, "stranger", Some(other_root.id)).await;
    let agent = StubAgent::start(mode).unwrap();
    register(s, target.id, &agent.url).await;
    World {
        db,
        state,
        parent,
        target,
        stranger,
        agent,
    }
}

fn send(target: Uuid, text: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri(&format!("/workspaces/{target}/a2a"))
        .set_json(json!({ "message": { "role": "user", "parts": [{ "kind": "text", "text": text }] } }))
}

#[actix_web::test]
async fn a_message_reaches_the_agent_and_its_answer_and_side_effects_land() {
    let w = world(Mode::Echo).await;
    let app = test::init_service(app(w.state.clone())).await;
    let bus = w.state.services.bus().clone();
    let _listener = bus.spawn_listener(w.db.url().to_owned(), w.db.pool().clone());
    assert!(bus.wait_listening(Duration::from_secs(10)).await);
    let mut live = bus.subscribe();

    // The operator, with a bare body and an A2A-Version header.
    let req = send(w.target.id, "hello")
        .insert_header(bearer(ADMIN))
        .insert_header(("A2A-Version", "0.3"))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["result"]["parts"][0]["text"], "echo: hello", "{body}");
    let got = w.agent.received();
    assert_eq!(got.len(), 1);
    // A bare body becomes a v0.3 `message/send`, with a messageId added.
    insta::assert_json_snapshot!("a_bare_body_as_the_agent_gets_it", stable_json(&got[0].body));
    assert_eq!(got[0].a2a_version.as_deref(), Some("0.3"), "protocol header forwarded");
    assert_eq!(got[0].caller, None, "the operator sends no caller id");

    // Its parent, in v1.0 names, with its own token: passed through unchanged.
    let req = test::TestRequest::post()
        .uri(&format!("/workspaces/{}/a2a", w.target.id))
        .insert_header(bearer(&w.parent.token))
        .insert_header(("X-Workspace-ID", w.parent.id.to_string()))
        .set_json(json!({ "jsonrpc": "2.0", "id": 9, "method": "SendMessage",
            "params": { "message": { "messageId": "m-9", "role": "ROLE_USER", "parts": [{ "text": "v1" }] } } }))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let got = w.agent.received();
    insta::assert_json_snapshot!("a_v1_body_as_the_agent_gets_it", stable_json(&got[1].body));
    assert_eq!(got[1].caller.as_deref(), Some(w.parent.id.to_string().as_str()));

    // The target's activity (written after the answer, on its own task): two a2a_receive rows
    // with method, duration and tool trace.
    let rows: Vec<Value> = molecule_testkit::until_ok("both activity rows", Duration::from_secs(10), || async {
        let req = test::TestRequest::get()
            .uri(&format!("/workspaces/{}/activity?type=a2a_receive", w.target.id))
            .insert_header(bearer(ADMIN))
            .to_request();
        let rows: Value = test::call_and_read_body_json(&app, req).await;
        let rows = rows.as_array().unwrap().clone();
        if rows.len() == 2 {
            Ok(rows)
        } else {
            Err(format!("{} rows", rows.len()))
        }
    })
    .await;
    let mut from_parent = rows.iter().find(|r| r["method"] == "SendMessage").unwrap().clone();
    assert_eq!(from_parent["source_id"], w.parent.id.to_string());
    let took = from_parent.as_object_mut().unwrap().remove("duration_ms");
    assert!(took.is_some_and(|d| d.is_number()), "{from_parent}");
    insta::assert_json_snapshot!("a2a_receive_row_from_the_parent", stable_json(&from_parent));

    // The live events, after their rows: ACTIVITY_LOGGED for both, A2A_RESPONSE only for the
    // operator's message (the canvas shows it).
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), live.recv())
            .await
            .expect("live events")
            .unwrap();
        if ev.workspace_id == Some(w.target.id) {
            seen.push((ev.event.clone(), ev.payload.clone()));
        }
    }
    let names: Vec<&str> = seen.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names.iter().filter(|e| **e == "ACTIVITY_LOGGED").count(),
        2,
        "{names:?}"
    );
    let (_, response) = seen.iter().find(|(e, _)| e == "A2A_RESPONSE").expect("A2A_RESPONSE");
    assert_eq!(response["response_body"]["result"]["parts"][0]["text"], "echo: hello");
    assert_eq!(response["method"], "message/send");

    // Token usage from result.usage, twice.
    let req = test::TestRequest::get()
        .uri(&format!("/workspaces/{}/budget", w.target.id))
        .insert_header(bearer(&w.target.token))
        .to_request();
    let budget: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(
        budget["tokens_this_month"],
        json!({ "input_tokens": 6, "output_tokens": 10, "calls": 2 })
    );
}

#[actix_web::test]
async fn callers_are_checked_in_the_original_order() {
    let w = world(Mode::Echo).await;
    let app = test::init_service(app(w.state.clone())).await;
    let status = |req: test::TestRequest| {
        let app = &app;
        async move { test::call_service(app, req.to_request()).await.status() }
    };
    let t = w.target.id;
    // 1. a reserved caller prefix, whatever the token
    assert_eq!(
        status(
            send(t, "x")
                .insert_header(bearer(ADMIN))
                .insert_header(("X-Workspace-ID", "system:cron"))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // 2. a caller without its own token
    assert_eq!(
        status(
            send(t, "x")
                .insert_header(bearer(&w.target.token))
                .insert_header(("X-Workspace-ID", w.parent.id.to_string()))
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(send(t, "x")).await,
        StatusCode::UNAUTHORIZED,
        "no credential at all"
    );
    // 3. the hierarchy
    let resp = test::call_service(
        &app,
        send(t, "x")
            .insert_header(bearer(&w.stranger.token))
            .insert_header(("X-Workspace-ID", w.stranger.id.to_string()))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(
        body["error"],
        "access denied: workspaces cannot communicate per hierarchy rules"
    );
    // unknown target
    assert_eq!(
        status(send(Uuid::new_v4(), "x").insert_header(bearer(ADMIN))).await,
        StatusCode::NOT_FOUND
    );
    // 4. the budget: 402 once the reported spend reaches the limit
    let req = test::TestRequest::patch()
        .uri(&format!("/workspaces/{t}/budget"))
        .insert_header(bearer(ADMIN))
        .set_json(json!({ "budget_limit": 100 }))
        .to_request();
    let budget: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(budget["exceeded"], false);
    heartbeat(&w.state.services, t, json!({ "monthly_spend": 150 })).await;
    let resp = test::call_service(&app, send(t, "x").insert_header(bearer(ADMIN)).to_request()).await;
    assert_eq!(resp.status(), StatusCode::PAYMENT_REQUIRED);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body, json!({ "error": "workspace budget limit exceeded" }));
    let req = test::TestRequest::patch()
        .uri(&format!("/workspaces/{t}/budget"))
        .insert_header(bearer(ADMIN))
        .set_json(json!({ "budget_limit": null }))
        .to_request();
    test::call_service(&app, req).await;
    assert_eq!(status(send(t, "x").insert_header(bearer(ADMIN))).await, StatusCode::OK);
    // A bad body names what to fix; a body over 1 MiB is 413.
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri(&format!("/workspaces/{t}/a2a"))
            .insert_header(bearer(ADMIN))
            .set_payload("[1,2]")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().starts_with("body:"), "{body}");
    let big = "x".repeat((1 << 20) + 1);
    let req = test::TestRequest::post()
        .uri(&format!("/workspaces/{t}/a2a"))
        .insert_header(bearer(ADMIN))
        .set_payload(big)
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[actix_web::test]
async fn transport_outcomes_no_url_unreachable_and_idle() {
    let w = world(Mode::Hang).await;
    let app = test::init_service(app(w.state.clone())).await;
    let s = &w.state.services;

    // No URL: a poll-mode agent.
    let poll = workspace_under(s, "poll", Some(w.parent.id)).await;
    let reg = serde_json::from_value(json!({ "id": poll.id, "agent_card": {}, "delivery_mode": "poll" })).unwrap();
    s.messaging().register(reg).await.unwrap();
    let resp = test::call_service(&app, send(poll.id, "x").insert_header(bearer(ADMIN)).to_request()).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let body: Value = test::read_body_json(resp).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("workspace has no URL: its agent polls its inbox"),
        "{body}"
    );
    assert_eq!(body["status"], "online");

    // Not registered yet (a new workspace is provisioning): transient, so 503 with
    // `Retry-After`, which clients retry; failed: 409 saying what to do.
    let starting = workspace_under(s, "starting", Some(w.parent.id)).await;
    let resp = test::call_service(&app, send(starting.id, "x").insert_header(bearer(ADMIN)).to_request()).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(
        (body["status"].as_str(), body["retry_after"].as_u64()),
        (Some("provisioning"), Some(5)),
        "{body}"
    );
    w.db.execute_sql(&format!(
        "UPDATE workspaces SET status = 'failed' WHERE id = '{}'",
        starting.id
    ))
    .await;
    let resp = test::call_service(&app, send(starting.id, "x").insert_header(bearer(ADMIN)).to_request()).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let body: Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().contains("restart it"), "{body}");

    // Nothing listens: 502.
    let closed = workspace_under(s, "closed", Some(w.parent.id)).await;
    let port = molecule_testkit::free_port();
    register(s, closed.id, &format!("http://127.0.0.1:{port}")).await;
    let resp = test::call_service(&app, send(closed.id, "x").insert_header(bearer(ADMIN)).to_request()).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let body: Value = test::read_body_json(resp).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("failed to reach workspace agent"),
        "{body}"
    );

    // An agent that holds the message past its idle timeout (the heartbeat's override, 1 s):
    // the message is queued.
    heartbeat(
        s,
        w.target.id,
        json!({ "runtime_metadata": { "idle_timeout_seconds": 1 }, "active_tasks": 1 }),
    )
    .await;
    let resp = test::call_service(
        &app,
        send(w.target.id, "slow").insert_header(bearer(ADMIN)).to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["queued"], true);
    assert_eq!(body["queue_depth"], 1);
    assert!(
        body["message"].as_str().unwrap().contains("A2A_IDLE_TIMEOUT_SECONDS"),
        "{body}"
    );
}

#[actix_web::test]
async fn events_from_the_target_keep_a_slow_answer_past_its_idle_timeout() {
    // The agent answers after 2.5 s; its idle timeout is 1 s; it reports activity every
    // 200 ms meanwhile (each an ACTIVITY_LOGGED event on the bus), so the message is answered,
    // not queued. Without the events (the last assertion) the same message is queued.
    let w = world(Mode::Slow(2500)).await;
    let s = w.state.services.clone();
    let _listener = s.bus().spawn_listener(w.db.url().to_owned(), w.db.pool().clone());
    assert!(s.bus().wait_listening(Duration::from_secs(10)).await);
    let app = test::init_service(app(w.state.clone())).await;
    heartbeat(
        &s,
        w.target.id,
        json!({ "runtime_metadata": { "idle_timeout_seconds": 1 } }),
    )
    .await;
    let target = w.target.id;
    let reporter = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                let input =
                    serde_json::from_value(json!({ "activity_type": "agent_log", "summary": format!("working {i}") }))
                        .unwrap();
                s.tree().append_activity(target, input).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let resp = test::call_service(&app, send(target, "slow").insert_header(bearer(ADMIN)).to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK, "{:?}", test::read_body(resp).await);
    reporter.abort();
    let _ = reporter.await;
    let resp = test::call_service(
        &app,
        send(target, "slow again").insert_header(bearer(ADMIN)).to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "no events: idle after 1 s");
}

#[actix_web::test]
async fn a_busy_agent_gets_its_message_once_when_a_slot_frees_even_with_two_replicas() {
    let w = world(Mode::Busy).await;
    let app = test::init_service(app(w.state.clone())).await;
    let t = w.target.id;
    let msg = json!({ "jsonrpc": "2.0", "id": 1, "method": "message/send",
        "params": { "message": { "messageId": "once", "role": "user", "parts": [{ "kind": "text", "text": "queued hi" }] } } });
    let post = || {
        test::TestRequest::post()
            .uri(&format!("/workspaces/{t}/a2a"))
            .insert_header(bearer(&w.parent.token))
            .insert_header(("X-Workspace-ID", w.parent.id.to_string()))
            .set_json(msg.clone())
            .to_request()
    };
    let resp = test::call_service(&app, post()).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let first: Value = test::read_body_json(resp).await;
    insta::assert_json_snapshot!("a2a_to_a_busy_agent_is_queued", stable_json(&first));
    // A retried send with the same messageId is the same item.
    let again: Value = test::call_and_read_body_json(&app, post()).await;
    assert_eq!(again["queue_id"], first["queue_id"]);
    assert_eq!(again["queue_depth"], 1);
    let req = test::TestRequest::get()
        .uri(&format!("/workspaces/{t}/a2a-queue"))
        .insert_header(bearer(&w.target.token))
        .to_request();
    let view: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(view["items"][0]["caller_id"], w.parent.id.to_string());
    insta::assert_json_snapshot!("the_queue_as_its_target_sees_it", stable_json(&view));

    // The agent frees up. A second replica (its own Services and pool on the same database) drains
    // at the same time as the first, many times over: the agent gets the message once.
    w.agent.set(Mode::Echo);
    let pool_b = molecule_db::connect(w.db.url(), &molecule_db::PoolOptions::default())
        .await
        .unwrap();
    let replica_b = Services::new(pool_b, Default::default()).unwrap();
    let (a, b) = (w.state.services.clone(), replica_b.clone());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { s.messaging().drain_one(t).await.unwrap() }));
    }
    let mut drained = 0;
    for task in tasks {
        drained += usize::from(task.await.unwrap());
    }
    assert_eq!(drained, 1, "one claim won");
    let got: Vec<_> = w
        .agent
        .received()
        .into_iter()
        .filter(|r| r.body["params"]["message"]["messageId"] == "once")
        .collect();
    assert_eq!(got.len(), 1, "delivered exactly once: {got:?}");
    assert_eq!(
        got[0].caller.as_deref(),
        Some(w.parent.id.to_string().as_str()),
        "still from its caller"
    );
    let req = test::TestRequest::get()
        .uri(&format!("/workspaces/{t}/a2a-queue"))
        .insert_header(bearer(&w.target.token))
        .to_request();
    let view: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(
        (view["depth"].as_i64(), view["items"][0]["status"].as_str()),
        (Some(0), Some("completed"))
    );

    // Through heartbeats: a new busy message, then a heartbeat with a free slot drains it.
    w.agent.set(Mode::Busy);
    let msg2 = send(t, "via heartbeat").insert_header(bearer(ADMIN)).to_request();
    assert_eq!(test::call_service(&app, msg2).await.status(), StatusCode::ACCEPTED);
    w.agent.set(Mode::Echo);
    heartbeat(&w.state.services, t, json!({ "active_tasks": 1 })).await; // max 1: no slot
    heartbeat(&replica_b, t, json!({ "active_tasks": 0 })).await;
    molecule_testkit::until("the heartbeat's drain to deliver", Duration::from_secs(10), || async {
        w.agent
            .received()
            .iter()
            .any(|r| r.body.pointer("/params/message/parts/0/text") == Some(&json!("via heartbeat")))
            .then_some(())
    })
    .await;
}

#[actix_web::test]
async fn operators_drop_stale_messages_and_items_fail_after_five_attempts() {
    let w = world(Mode::Busy).await;
    let app = test::init_service(app(w.state.clone())).await;
    let t = w.target.id;
    for text in ["one", "two"] {
        let req = send(t, text).insert_header(bearer(ADMIN)).to_request();
        assert_eq!(test::call_service(&app, req).await.status(), StatusCode::ACCEPTED);
    }
    // Five deliveries to a still-busy agent: the oldest item fails, with its reason.
    for _ in 0..5 {
        assert!(w.state.services.messaging().drain_one(t).await.unwrap());
    }
    let req = test::TestRequest::get()
        .uri(&format!("/workspaces/{t}/a2a-queue"))
        .insert_header(bearer(ADMIN))
        .to_request();
    let view: Value = test::call_and_read_body_json(&app, req).await;
    let items = view["items"].as_array().unwrap();
    let failed: Vec<_> = items.iter().filter(|i| i["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{view}");
    assert_eq!(failed[0]["attempts"], 5);
    assert_eq!(failed[0]["last_error"], "the agent answered 503");
    assert_eq!(view["depth"], 1);

    let req = test::TestRequest::post()
        .uri(&format!(
            "/admin/a2a-queue/drop-stale?max_age_minutes=0&workspace_id={t}"
        ))
        .insert_header(bearer(ADMIN))
        .to_request();
    let dropped: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(dropped, json!({ "dropped": 1 }));
    let req = test::TestRequest::post()
        .uri("/admin/a2a-queue/drop-stale?max_age_minutes=-1")
        .insert_header(bearer(ADMIN))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), StatusCode::BAD_REQUEST);
    assert!(
        !w.state.services.messaging().drain_one(t).await.unwrap(),
        "nothing left to deliver"
    );
}
