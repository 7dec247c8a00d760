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

#[actix_web::test]
async fn bootstrap_failed_fails_only_a_provisioning_workspace_with_a_redacted_reason() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let id = workspace_with_token(&state.services, "booting").await.id;
    let app = test::init_service(app(state.clone())).await;
    let report = |body: Value| {
        test::TestRequest::post()
            .uri(&format!("/admin/workspaces/{id}/bootstrap-failed"))
            .insert_header(bearer(ADMIN))
            .set_json(body)
            .to_request()
    };
    let tail = format!(
        "{}\nAuthorization: Bearer sk-ant-api03-{}\nexit 1",
        "x".repeat(70_000),
        "a".repeat(40)
    );
    let resp = test::call_service(
        &app,
        report(json!({ "error": "agent exited with code 1", "log_tail": tail })),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body, json!({ "ok": true }));
    let w = state.services.get_workspace(id).await.unwrap();
    assert_eq!(
        (w.status.to_string(), w.last_sample_error.as_deref()),
        ("failed".to_owned(), Some("agent exited with code 1"))
    );
    let events = state.services.recent_events(Some(id), 10).await.unwrap();
    let failed = serde_json::to_value(&events).unwrap();
    let ev = failed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "WORKSPACE_PROVISION_FAILED")
        .unwrap();
    assert_eq!(ev["payload"]["source"], "bootstrap_watcher");
    let kept = ev["payload"]["log_tail"].as_str().unwrap();
    assert!(
        kept.ends_with("exit 1") && kept.len() <= 64 * 1024 + 64,
        "{}",
        kept.len()
    );
    assert!(!kept.contains("sk-ant-api03"), "the tail is redacted");

    // Not provisioning any more: nothing changes.
    let again = test::call_service(&app, report(json!({ "error": "late report" }))).await;
    let body: Value = test::read_body_json(again).await;
    assert_eq!(body, json!({ "ok": true, "no_change": true }));
    // Bad input names its field; an unknown workspace is a 404.
    let empty = test::call_service(&app, report(json!({ "error": "  " }))).await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    let unknown = test::TestRequest::post()
        .uri(&format!("/admin/workspaces/{}/bootstrap-failed", uuid::Uuid::new_v4()))
        .insert_header(bearer(ADMIN))
        .set_json(json!({ "error": "x" }))
        .to_request();
    assert_eq!(test::call_service(&app, unknown).await.status(), StatusCode::NOT_FOUND);
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
    assert!(state.services.authorize_workspace(token, id).await.is_ok());

    state.auth.test_tokens = false;
    let guarded = test::init_service(app(state)).await;
    let resp = test::call_service(&guarded, get()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = test::read_body_json(resp).await;
    assert!(body.to_string().contains("MOLECULE_ENABLE_TEST_TOKENS"), "{body}");
}
