//! The hierarchy rule on every route that applies it: `check-access`, the A2A proxy,
//! `delegate`, `discover` and `peers`, over a tree of depth 3 plus an unrelated root. The expected table is written
//! out by hand, not computed with the rule under test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::{BTreeSet, HashMap};

use actix_web::http::StatusCode;
use actix_web::test;
use molecule_http::{AppState, app};
use molecule_service::testing::{TestWorkspace, workspace_under};
use molecule_testkit::{TestDb, bearer};
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN: &str = "adm";
const NAMES: [&str; 6] = ["root", "a", "a1", "a11", "b", "other"];

/// root ─ a ─ a1 ─ a11, root ─ b, and an unrelated root `other`: every pair that may talk
/// (self aside), both ways.
const ALLOWED: &[(&str, &str)] = &[
    ("root", "a"),
    ("root", "a1"),
    ("root", "a11"),
    ("root", "b"),
    ("root", "other"),
    ("a", "a1"),
    ("a", "a11"),
    ("a", "b"),
    ("a1", "a11"),
];

fn allowed(x: &str, y: &str) -> bool {
    x == y || ALLOWED.iter().any(|&(p, q)| (p, q) == (x, y) || (q, p) == (x, y))
}

/// Direct peers: parent, siblings (other roots for a root), children.
fn expected_peers(name: &str) -> BTreeSet<&'static str> {
    let peers: &[&str] = match name {
        "root" => &["a", "b", "other"],
        "a" => &["root", "b", "a1"],
        "a1" => &["a", "a11"],
        "a11" => &["a1"],
        "b" => &["root", "a"],
        "other" => &["root"],
        _ => unreachable!(),
    };
    peers.iter().copied().collect()
}

struct Tree {
    _db: TestDb,
    state: AppState,
    ws: HashMap<&'static str, TestWorkspace>,
}

async fn tree() -> Tree {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    state.services.ledger().install().await.unwrap();
    let s = &state.services;
    let mut ws = HashMap::new();
    for (name, parent) in [
        ("root", None),
        ("a", Some("root")),
        ("a1", Some("a")),
        ("a11", Some("a1")),
        ("b", Some("root")),
        ("other", None),
    ] {
        let parent = parent.map(|p: &str| ws.get(p).map(|w: &TestWorkspace| w.id).unwrap());
        ws.insert(name, workspace_under(s, name, parent).await);
    }
    // Online with a URL nobody answers on: discovery only reads it.
    for w in ws.values() {
        let reg = serde_json::from_value(json!({ "id": w.id, "url": "http://localhost:9", "agent_card": {} })).unwrap();
        s.messaging().register(reg).await.unwrap();
    }
    Tree { _db: db, state, ws }
}

#[actix_web::test]
async fn every_pair_gets_the_expected_answer_on_every_route() {
    let t = tree().await;
    let app = test::init_service(app(t.state.clone())).await;
    for x in NAMES {
        for y in NAMES {
            let (cx, cy) = (&t.ws[x], &t.ws[y]);
            let want = allowed(x, y);

            let req = test::TestRequest::post()
                .uri("/registry/check-access")
                .insert_header(bearer(&cx.token))
                .set_json(json!({ "caller_id": cx.id, "target_id": cy.id }))
                .to_request();
            let body: Value = test::call_and_read_body_json(&app, req).await;
            assert_eq!(body, json!({ "allowed": want }), "check-access {x} -> {y}");

            let req = test::TestRequest::get()
                .uri(&format!("/registry/discover/{}", cy.id))
                .insert_header(bearer(&cx.token))
                .insert_header(("X-Workspace-ID", cx.id.to_string()))
                .to_request();
            let resp = test::call_service(&app, req).await;
            let status = resp.status();
            if want {
                assert_eq!(status, StatusCode::OK, "discover {x} -> {y}");
                let body: Value = test::read_body_json(resp).await;
                assert_eq!(
                    (body["id"].as_str(), body["url"].as_str(), body["name"].as_str()),
                    (Some(cy.id.to_string().as_str()), Some("http://localhost:9"), Some(y)),
                    "discover {x} -> {y}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "discover {x} -> {y}");
                let body: Value = test::read_body_json(resp).await;
                assert_eq!(
                    body["error"],
                    "access denied: workspaces cannot communicate per hierarchy rules"
                );
            }

            // The proxy: an allowed pair gets as far as the forward (nobody answers on the
            // URL: 502); a forbidden one stops at the hierarchy check.
            let req = test::TestRequest::post()
                .uri(&format!("/workspaces/{}/a2a", cy.id))
                .insert_header(bearer(&cx.token))
                .insert_header(("X-Workspace-ID", cx.id.to_string()))
                .set_json(json!({ "message": { "role": "user", "parts": [{ "kind": "text", "text": "ping" }] } }))
                .to_request();
            let status = test::call_service(&app, req).await.status();
            let expect = if want {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, expect, "a2a {x} -> {y}");

            if x != y {
                let req = test::TestRequest::post()
                    .uri(&format!("/workspaces/{}/delegate", cx.id))
                    .insert_header(bearer(&cx.token))
                    .set_json(json!({ "target_id": cy.id, "task": "ping" }))
                    .to_request();
                let status = test::call_service(&app, req).await.status();
                let expect = if want {
                    StatusCode::ACCEPTED
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(status, expect, "delegate {x} -> {y}");
            }
        }

        let req = test::TestRequest::get()
            .uri(&format!("/registry/{}/peers", t.ws[x].id))
            .insert_header(bearer(&t.ws[x].token))
            .to_request();
        let peers: Value = test::call_and_read_body_json(&app, req).await;
        let by_id: HashMap<String, &str> = NAMES.iter().map(|n| (t.ws[n].id.to_string(), *n)).collect();
        let got: BTreeSet<&str> = peers
            .as_array()
            .unwrap()
            .iter()
            .map(|p| by_id[p["id"].as_str().unwrap()])
            .collect();
        assert_eq!(got, expected_peers(x), "peers of {x}");
        for p in peers.as_array().unwrap() {
            assert!(
                allowed(x, by_id[p["id"].as_str().unwrap()]),
                "{x} lists a peer it may not talk to: {p}"
            );
        }
    }
}

#[actix_web::test]
async fn unknown_targets_reserved_callers_and_filters() {
    let t = tree().await;
    let app = test::init_service(app(t.state.clone())).await;
    let a = &t.ws["a"];

    let delegate = test::TestRequest::post()
        .uri(&format!("/workspaces/{}/delegate", a.id))
        .insert_header(bearer(&a.token))
        .set_json(json!({ "target_id": Uuid::new_v4(), "task": "ping" }))
        .to_request();
    assert_eq!(test::call_service(&app, delegate).await.status(), StatusCode::NOT_FOUND);

    let discover = |caller: &str| {
        test::TestRequest::get()
            .uri(&format!("/registry/discover/{}", t.ws["b"].id))
            .insert_header(bearer(&a.token))
            .insert_header(("X-Workspace-ID", caller.to_owned()))
            .to_request()
    };
    let resp = test::call_service(&app, discover("system:scheduler")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "invalid caller ID");
    assert_eq!(
        test::call_service(&app, discover("not-a-uuid")).await.status(),
        StatusCode::BAD_REQUEST
    );
    let no_header = test::TestRequest::get()
        .uri(&format!("/registry/discover/{}", t.ws["b"].id))
        .insert_header(bearer(&a.token))
        .to_request();
    let resp = test::call_service(&app, no_header).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().contains("X-Workspace-ID"), "{body}");

    // A paused target is not discoverable now: 503 with Retry-After.
    t.state.services.tree().pause_workspace(t.ws["b"].id).await.unwrap();
    let resp = test::call_service(&app, discover(&a.id.to_string())).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));

    // Peers filtered by name.
    let req = test::TestRequest::get()
        .uri(&format!("/registry/{}/peers?q=A1", a.id))
        .insert_header(bearer(&a.token))
        .to_request();
    let peers: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(peers.as_array().unwrap().len(), 1, "{peers}");
    assert_eq!(peers[0]["relation"], "child");

    // A card update is stored and announced.
    let req = test::TestRequest::post()
        .uri("/registry/update-card")
        .insert_header(bearer(&a.token))
        .set_json(json!({ "workspace_id": a.id, "agent_card": { "name": "a, renamed" } }))
        .to_request();
    let body: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(body, json!({ "status": "updated" }));
    let events = t.state.services.tree().recent_events(Some(a.id), 20).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event == "AGENT_CARD_UPDATED" && e.payload["agent_card"]["name"] == "a, renamed"),
        "{events:?}"
    );
    let w = t.state.services.tree().get_workspace(a.id).await.unwrap();
    assert_eq!(w.agent_card.unwrap()["name"], "a, renamed");
}
