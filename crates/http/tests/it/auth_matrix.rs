//! Who may call what. The route list comes from the router's own OpenAPI document, so a new
//! route cannot be left out of this matrix.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use actix_web::http::{Method, StatusCode};
use actix_web::test;
use molecule_http::{AppState, app, openapi};
use molecule_service::testing::workspace_with_token;
use molecule_testkit::{TestDb, bearer};
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN: &str = "admin-secret";

/// Every (method, path template) the router serves.
fn routes() -> Vec<(Method, String)> {
    let doc = serde_json::to_value(openapi()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                path.clone(),
            ));
        }
    }
    out.sort_by_key(|(m, p)| (p.clone(), m.to_string()));
    out
}

/// Routes that take no credentials at all.
/// Routes without bearer auth (`/registry/bootstrap`'s credential is the one-time code in its
/// body; `operator::` tests it). The vendors' webhooks are authenticated by the vendor's
/// signature against the channel row (workspace-server's `channels` tests refuse forged,
/// stale and wrong-row requests); the adapter catalogue is public, as the original's.
const OPEN: &[&str] = &[
    "/health",
    "/readyz",
    "/registry/bootstrap",
    "/channels/adapters",
    "/webhooks/{type}",
    "/webhooks/{type}/{channel_id}",
];

/// Decided from above: the admin token or an ancestor's token, never the workspace's own
/// (checked on its own below, and end to end in workspace-server's `approvals` tests).
const DECIDED_ABOVE: &str = "/workspaces/{id}/approvals/{approval_id}/decide";

fn is_workspace_scoped(path: &str) -> bool {
    path.starts_with("/workspaces/{id}")
}

/// Routes whose workspace is named in the body rather than the path.
fn body_scoped(path: &str) -> bool {
    path.starts_with("/registry/") && !OPEN.contains(&path)
}

/// Open for reading only (the original canvas reads its viewport without credentials; saving
/// it is the admin's).
const OPEN_TO_READ: &[&str] = &["/canvas/viewport"];

fn is_open(method: &Method, path: &str) -> bool {
    OPEN.contains(&path) || (method == Method::GET && OPEN_TO_READ.contains(&path))
}

/// Admin-only: everything that is neither open, workspace-scoped nor body-scoped.
fn is_admin_only(method: &Method, path: &str) -> bool {
    !is_open(method, path)
        && !body_scoped(path)
        && (!is_workspace_scoped(path)
            || (method == Method::DELETE && path == "/workspaces/{id}")
            || (method == Method::PATCH && path == "/workspaces/{id}/budget"))
}

fn fill(path: &str, ws: Uuid) -> String {
    path.replace("{id}", &ws.to_string())
        .replace("{workspace_id}", &ws.to_string())
        .replace("{token_id}", &Uuid::new_v4().to_string())
        .replace("{memory_id}", &Uuid::new_v4().to_string())
        .replace("{approval_id}", &Uuid::new_v4().to_string())
}

fn body_for(path: &str, ws: Uuid) -> Value {
    match path {
        "/registry/register" => json!({ "id": ws, "url": "http://127.0.0.1:9", "agent_card": {} }),
        "/registry/heartbeat" => json!({ "workspace_id": ws }),
        "/registry/update-card" => json!({ "workspace_id": ws, "agent_card": {} }),
        "/registry/check-access" => json!({ "caller_id": ws, "target_id": Uuid::new_v4() }),
        p if p.ends_with("/activity") => json!({ "activity_type": "agent_log" }),
        p if p.ends_with("/delegate") => json!({ "target_id": Uuid::new_v4(), "task": "t" }),
        p if p.ends_with("/delegations/record") => {
            json!({ "target_id": Uuid::new_v4(), "task": "t", "delegation_id": Uuid::new_v4() })
        }
        p if p.ends_with("/update") => json!({ "status": "completed" }),
        p if p.ends_with("/a2a") => json!({ "message": { "role": "user", "parts": [] } }),
        p if p.ends_with("/memories") => json!({ "content": "x", "scope": "LOCAL" }),
        p if p.ends_with("/memories/{memory_id}") => json!({ "content": "x" }),
        p if p.ends_with("/secrets") => json!({ "key": "K", "value": "v" }),
        p if p.ends_with("/model") => json!({ "model": "sonnet" }),
        _ => json!({}),
    }
}

struct Fixture {
    _db: TestDb,
    state: AppState,
    own: Uuid,
    own_token: String,
    other_token: String,
    revoked_token: String,
}

async fn fixture(admin: Option<&str>) -> Fixture {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), admin.map(str::to_owned)).unwrap();
    state.services.ledger().install().await.unwrap();
    let s = &state.services;
    let own = workspace_with_token(s, "own").await;
    let other = workspace_with_token(s, "other").await;
    let spare = s.tree().mint_token(own.id).await.unwrap();
    s.tree().revoke_token(own.id, spare.id).await.unwrap();
    Fixture {
        own: own.id,
        own_token: own.token,
        other_token: other.token,
        revoked_token: spare.auth_token,
        state,
        _db: db,
    }
}

#[actix_web::test]
async fn every_workspace_route_refuses_foreign_missing_and_revoked_tokens() {
    let f = fixture(Some(ADMIN)).await;
    let app = test::init_service(app(f.state.clone())).await;
    let routes = routes();
    assert!(routes.len() >= 20, "router lists only {} routes", routes.len());
    let mut checked = 0;
    for (method, path) in &routes {
        if !(is_workspace_scoped(path) || body_scoped(path)) || is_admin_only(method, path) || path == DECIDED_ABOVE {
            continue;
        }
        let uri = fill(path, f.own);
        let call = |token: Option<String>| {
            let mut req = test::TestRequest::default().method(method.clone()).uri(&uri);
            if path.starts_with("/registry/discover/") {
                // The caller is named by header; the token must be the caller's.
                req = req.insert_header(("X-Workspace-ID", f.own.to_string()));
            }
            if let Some(t) = token {
                req = req.insert_header(bearer(&t));
            }
            if *method == Method::POST || *method == Method::PATCH || *method == Method::PUT {
                req = req.set_json(body_for(path, f.own));
            }
            req.to_request()
        };
        let expect = [
            (None, StatusCode::UNAUTHORIZED, "no token"),
            (Some(f.revoked_token.clone()), StatusCode::UNAUTHORIZED, "revoked token"),
            (
                Some(f.other_token.clone()),
                StatusCode::FORBIDDEN,
                "another workspace's token",
            ),
        ];
        for (token, status, what) in expect {
            let resp = test::call_service(&app, call(token)).await;
            assert_eq!(resp.status(), status, "{method} {path} with {what}");
        }
        // Its own token gets past auth (whatever the handler then says). Minted per route:
        // `tokens/rotate` legitimately revokes the ones before it.
        let own = f.state.services.tree().mint_token(f.own).await.unwrap();
        let resp = test::call_service(&app, call(Some(own.auth_token))).await;
        assert!(
            ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&resp.status()),
            "{method} {path} with its own token: {}",
            resp.status()
        );
        // Revoked again, so the routes never add up to the 50-token limit (a route may have
        // revoked it already).
        let _ = f.state.services.tree().revoke_token(f.own, own.id).await;
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} workspace routes checked");

    // A decision: no token or a revoked one is 401; the workspace's own token and a stranger's
    // are 403 (only an ancestor or the operator decides), before the request is looked up.
    assert!(routes.iter().any(|(_, p)| p == DECIDED_ABOVE), "the decide route moved");
    let uri = fill(DECIDED_ABOVE, f.own);
    // Minted now: the loop's `tokens/rotate` revoked the fixture's own token.
    let own = f.state.services.tree().mint_token(f.own).await.unwrap().auth_token;
    for (token, status, what) in [
        (None, StatusCode::UNAUTHORIZED, "no token"),
        (Some(f.revoked_token.clone()), StatusCode::UNAUTHORIZED, "revoked token"),
        (Some(own.clone()), StatusCode::FORBIDDEN, "its own token"),
        (Some(f.other_token.clone()), StatusCode::FORBIDDEN, "a stranger's token"),
        (
            Some(ADMIN.to_owned()),
            StatusCode::NOT_FOUND,
            "the admin token (no such request)",
        ),
    ] {
        let mut req = test::TestRequest::post()
            .uri(&uri)
            .set_json(json!({ "decision": "approved" }));
        if let Some(t) = token {
            req = req.insert_header(bearer(&t));
        }
        let resp = test::call_service(&app, req.to_request()).await;
        assert_eq!(resp.status(), status, "decide with {what}");
    }
}

#[actix_web::test]
async fn admin_routes_need_the_admin_token_and_workspace_tokens_are_not_enough() {
    let f = fixture(Some(ADMIN)).await;
    let app = test::init_service(app(f.state.clone())).await;
    let admin_routes: Vec<_> = routes().into_iter().filter(|(m, p)| is_admin_only(m, p)).collect();
    assert!(admin_routes.iter().any(|(_, p)| p == "/admin/liveness"));
    for (method, path) in &admin_routes {
        for token in [None, Some(f.own_token.clone()), Some("wrong".to_owned())] {
            let mut req = test::TestRequest::default()
                .method(method.clone())
                .uri(&fill(path, f.own));
            if let Some(t) = &token {
                req = req.insert_header(bearer(t));
            }
            let resp = test::call_service(&app, req.to_request()).await;
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
        }
    }
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/admin/liveness")
            .insert_header(bearer(ADMIN))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[actix_web::test]
async fn without_admin_token_admin_routes_are_closed_with_503() {
    let f = fixture(None).await;
    let app = test::init_service(app(f.state.clone())).await;
    for (method, path) in routes().into_iter().filter(|(m, p)| is_admin_only(m, p)) {
        let req = test::TestRequest::default()
            .method(method.clone())
            .uri(&fill(&path, f.own))
            .insert_header(bearer(&f.own_token))
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{method} {path}");
        let body: Value = test::read_body_json(resp).await;
        assert!(body["error"].as_str().unwrap().contains("ADMIN_TOKEN"), "{body}");
    }
}

#[actix_web::test]
async fn tenant_guard_hides_everything_without_the_org_header() {
    let mut f = fixture(Some(ADMIN)).await;
    f.state.org_id = Some("org-1".into());
    let app = test::init_service(app(f.state.clone())).await;
    let get = |org: Option<&str>| {
        let mut req = test::TestRequest::get().uri("/workspaces").insert_header(bearer(ADMIN));
        if let Some(o) = org {
            req = req.insert_header(("X-Molecule-Org-Id", o.to_owned()));
        }
        req.to_request()
    };
    assert_eq!(
        test::call_service(&app, get(None)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        test::call_service(&app, get(Some("org-2"))).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        test::call_service(&app, get(Some("org-1"))).await.status(),
        StatusCode::OK
    );
    let health = test::TestRequest::get().uri("/health").to_request();
    assert_eq!(
        test::call_service(&app, health).await.status(),
        StatusCode::OK,
        "/health stays open"
    );
}

#[actix_web::test]
async fn bad_input_gets_a_json_400_naming_the_field() {
    let f = fixture(Some(ADMIN)).await;
    let app = test::init_service(app(f.state.clone())).await;
    let post = |body: Value| {
        test::TestRequest::post()
            .uri("/workspaces")
            .insert_header(bearer(ADMIN))
            .set_json(body)
            .to_request()
    };
    let resp = test::call_service(&app, post(json!({ "name": "a|b" }))).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["field"], "name", "{body}");
    let resp = test::call_service(&app, post(json!({ "nom": "x" }))).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().contains("name"), "{body}");
    // NUL characters (which Postgres refuses) are the input's fault: 400, nothing written.
    let nul = test::TestRequest::post()
        .uri(&format!("/workspaces/{}/activity", f.own))
        .insert_header(bearer(ADMIN))
        .set_json(json!({ "activity_type": "agent_log", "summary": "a\u{0}b" }))
        .to_request();
    let resp = test::call_service(&app, nul).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().contains("NUL"), "{body}");
    let rows = f
        .state
        .services
        .tree()
        .list_activity(f.own, None, None, None)
        .await
        .unwrap();
    assert!(rows.is_empty(), "nothing half-written");
    let bad_id = test::TestRequest::get()
        .uri("/workspaces/not-a-uuid")
        .insert_header(bearer(ADMIN))
        .to_request();
    assert_eq!(test::call_service(&app, bad_id).await.status(), StatusCode::BAD_REQUEST);
}
