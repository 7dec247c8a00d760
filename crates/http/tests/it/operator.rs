//! Operator routes of the secrets issue over HTTP: the bootstrap watcher's failure report and
//! the test-token route with its production guard.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use actix_web::http::StatusCode;
use actix_web::test;
use molecule_http::{AppState, app};
use molecule_service::testing::workspace_with_token;
use molecule_testkit::{TestDb, bearer};
use serde_json::{Value, json};

const ADMIN: &str = "admin-secret";

/// The route's contract; the failing itself goes through the dispatcher (its tests show it).
#[actix_web::test]
async fn bootstrap_failed_checks_its_input_and_without_a_provisioner_changes_nothing() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let id = workspace_with_token(&state.services, "booting").await.id;
    let app = test::init_service(app(state.clone())).await;
    let report = |ws: uuid::Uuid, body: Value| {
        test::TestRequest::post()
            .uri(&format!("/admin/workspaces/{ws}/bootstrap-failed"))
            .insert_header(bearer(ADMIN))
            .set_json(body)
            .to_request()
    };
    let resp = test::call_service(&app, report(id, json!({ "error": "agent exited with code 1" }))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body, json!({ "ok": true, "no_change": true }));
    let empty = test::call_service(&app, report(id, json!({ "error": "  " }))).await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    let extra = test::call_service(&app, report(id, json!({ "error": "x", "exit": 1 }))).await;
    assert_eq!(extra.status(), StatusCode::BAD_REQUEST, "unknown fields are refused");
    let unknown = test::call_service(&app, report(uuid::Uuid::new_v4(), json!({ "error": "x" }))).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn test_tokens_work_outside_production_and_are_hidden_in_it() {
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let id = workspace_with_token(&state.services, "tested").await.id;
    let get = || {
        test::TestRequest::get()
            .uri(&format!("/admin/workspaces/{id}/test-token"))
            .insert_header(bearer(ADMIN))
            .to_request()
    };
    let open = test::init_service(app(state.clone())).await;
    let resp = test::call_service(&open, get()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["workspace_id"], json!(id));
    let token = body["auth_token"].as_str().unwrap();
    assert!(state.services.tree().authorize_workspace(token, id).await.is_ok());

    state.auth.test_tokens = false;
    let guarded = test::init_service(app(state)).await;
    let resp = test::call_service(&guarded, get()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = test::read_body_json(resp).await;
    assert!(body.to_string().contains("MOLECULE_ENABLE_TEST_TOKENS"), "{body}");
}

#[actix_web::test]
async fn a_bootstrap_code_is_redeemed_once_by_its_workspace_only() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let id = workspace_with_token(&state.services, "cloud").await.id;
    let other = workspace_with_token(&state.services, "other").await.id;
    let env = [("API_KEY".to_owned(), molecule_secrets::SecretString::from("v"))].into();
    let files = [("notes/a.md".to_owned(), b"x".to_vec())].into();
    let code = state.services.vault().stash_bootstrap(id, &env, &files).await.unwrap();
    let app = test::init_service(app(state)).await;
    let redeem = |ws: uuid::Uuid, code: &str| {
        test::TestRequest::post()
            .uri("/registry/bootstrap")
            .set_json(json!({ "workspace_id": ws, "code": code }))
            .to_request()
    };
    // Another workspace's id with the right code: refused, and the code survives it.
    assert_eq!(
        test::call_service(&app, redeem(other, &code)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = test::call_service(&app, redeem(id, &code)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(
        body,
        json!({ "env": { "API_KEY": "v" }, "files": { "notes/a.md": "eA==" } })
    );
    let again = test::call_service(&app, redeem(id, &code)).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let body: Value = test::read_body_json(again).await;
    assert!(body["error"].as_str().unwrap().contains("restart"), "{body}");
    let bad = test::TestRequest::post()
        .uri("/registry/bootstrap")
        .set_json(json!({ "workspace_id": id }))
        .to_request();
    assert_eq!(test::call_service(&app, bad).await.status(), StatusCode::BAD_REQUEST);
}
