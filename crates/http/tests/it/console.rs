//! The operator console's sign-in and its guards, over HTTP: nothing but the sign-in page
//! without a session, the admin token traded for an HttpOnly `SameSite=Strict` cookie that
//! never contains it, a forged or signed-out cookie worth nothing, cross-site and CSRF-less
//! posts refused, and the Content-Security-Policy on every answer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use actix_web::http::StatusCode;
use actix_web::test;
use molecule_http::{AppState, app};
use molecule_service::testing::workspace_with_token;
use molecule_testkit::TestDb;

const ADMIN: &str = "console-admin-secret";

fn header<B>(resp: &actix_web::dev::ServiceResponse<B>, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The CSRF token a console page's forms carry.
fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn the_console_needs_a_session_and_guards_it() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    workspace_with_token(&state.services, "fleet-one").await;
    let app = test::init_service(app(state)).await;
    let get = |uri: &str, cookie: Option<&str>| {
        let mut r = test::TestRequest::get().uri(uri);
        if let Some(c) = cookie {
            r = r.insert_header(("Cookie", format!("molecule_console={c}")));
        }
        r.to_request()
    };
    let post = |uri: &str, body: &str, cookie: Option<&str>, origin: Option<&str>| {
        let mut r = test::TestRequest::post()
            .uri(uri)
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(body.to_owned());
        if let Some(c) = cookie {
            r = r.insert_header(("Cookie", format!("molecule_console={c}")));
        }
        if let Some(o) = origin {
            r = r.insert_header(("Origin", o.to_owned()));
        }
        r.to_request()
    };

    // Without a session: only the sign-in page (and its assets); pages redirect there.
    let resp = test::call_service(&app, get("/console", None)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&resp, "location"), "/console/sign-in");
    assert!(header(&resp, "content-security-policy").contains("script-src 'self'"));
    let resp = test::call_service(&app, get("/console/sign-in", None)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let csp = header(&resp, "content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<style"),
        "no inline code: {html}"
    );
    assert!(!html.contains("fleet-one"), "nothing of the fleet before sign-in");

    // A wrong token, and a cross-site sign-in, are refused.
    let resp = test::call_service(&app, post("/console/sign-in", "token=nope", None, None)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&resp, "set-cookie").is_empty());
    let evil = Some("https://evil.example");
    let resp = test::call_service(&app, post("/console/sign-in", &format!("token={ADMIN}"), None, evil)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // The admin token becomes a session cookie that does not contain it.
    let resp = test::call_service(&app, post("/console/sign-in", &format!("token={ADMIN}"), None, None)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = header(&resp, "set-cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains(ADMIN), "the cookie holds no token");
    let cookie = set
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("molecule_console=")
        .to_owned();

    // Signed in: the fleet, with no secret in the page.
    let resp = test::call_service(&app, get("/console", Some(&cookie))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(html.contains("fleet-one"), "{html}");
    assert!(!html.contains(ADMIN), "the page holds no admin token");
    let csrf = csrf_of(&html);

    // A forged cookie (another secret under the same id) is worth nothing.
    let mut parts: Vec<String> = cookie.split('.').map(str::to_owned).collect();
    parts[1] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    let resp = test::call_service(&app, get("/console", Some(&parts.join(".")))).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    // Sign-out: refused cross-site or without the CSRF token; then the cookie is dead.
    let resp = test::call_service(
        &app,
        post("/console/sign-out", &format!("csrf={csrf}"), Some(&cookie), evil),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = test::call_service(&app, post("/console/sign-out", "csrf=wrong", Some(&cookie), None)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = test::call_service(
        &app,
        post("/console/sign-out", &format!("csrf={csrf}"), Some(&cookie), None),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(header(&resp, "set-cookie").contains("Max-Age=0"));
    let resp = test::call_service(&app, get("/console", Some(&cookie))).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "a signed-out cookie is refused");
    assert_eq!(header(&resp, "location"), "/console/sign-in");
}

#[actix_web::test]
async fn without_an_admin_token_nobody_signs_in() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), None).unwrap();
    let app = test::init_service(app(state)).await;
    let resp = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/console/sign-in")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload("token=anything")
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[actix_web::test]
async fn the_canvas_viewport_is_read_openly_and_saved_by_the_admin() {
    use serde_json::{Value, json};
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let app = test::init_service(app(state)).await;
    let get = || test::TestRequest::get().uri("/canvas/viewport").to_request();
    let put = |body: Value, admin: bool| {
        let mut r = test::TestRequest::put().uri("/canvas/viewport").set_json(body);
        if admin {
            r = r.insert_header(molecule_testkit::bearer(ADMIN));
        }
        r.to_request()
    };
    let first: Value = test::call_and_read_body_json(&app, get()).await;
    assert_eq!(first, json!({ "x": 0.0, "y": 0.0, "zoom": 1.0 }));
    let resp = test::call_service(&app, put(json!({ "x": 1.0, "y": 2.0, "zoom": 1.5 }), false)).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = test::call_service(&app, put(json!({ "x": -120.5, "y": 40.0, "zoom": 0.75 }), true)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let saved: Value = test::call_and_read_body_json(&app, get()).await;
    assert_eq!(saved, json!({ "x": -120.5, "y": 40.0, "zoom": 0.75 }));
    for (body, field) in [
        (json!({ "x": 0.0, "y": 0.0, "zoom": 0.0 }), "zoom"),
        (json!({ "x": 1e12, "y": 0.0, "zoom": 1.0 }), "x"),
        (json!({ "x": 0.0, "zoom": 1.0 }), "y"),
    ] {
        let resp = test::call_service(&app, put(body, true)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let err: Value = test::read_body_json(resp).await;
        assert!(err["error"].as_str().unwrap().contains(field), "{err}");
    }
    let kept: Value = test::call_and_read_body_json(&app, get()).await;
    assert_eq!(kept, saved, "a refused save changes nothing");
}

#[actix_web::test]
async fn a_sign_in_link_works_once() {
    use serde_json::Value;
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let app = test::init_service(app(state)).await;
    let minted = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/admin/console/sign-in-links")
            .insert_header(molecule_testkit::bearer(ADMIN))
            .to_request(),
    )
    .await;
    assert_eq!(minted.status(), StatusCode::CREATED);
    let link: Value = test::read_body_json(minted).await;
    let url = link["url"].as_str().unwrap();
    assert!(!url.contains(ADMIN), "the link holds a one-time code, not the token");
    let path = &url[url.find("/console/").unwrap()..];
    let first = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let set = header(&first, "set-cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/console")
            .insert_header(("Cookie", cookie))
            .to_request(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let again = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "used once");
    let unauthenticated = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/admin/console/sign-in-links")
            .to_request(),
    )
    .await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_pending_approval_is_decided_from_the_fleet_page() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let ws = workspace_with_token(&state.services, "asker").await.id;
    let asked = state
        .services
        .approvals()
        .request(
            ws,
            molecule_approvals::NewApproval {
                action: "deploy to production".into(),
                task_id: None,
                reason: Some("the release is tagged".into()),
                context: None,
                timeout_seconds: None,
            },
        )
        .await
        .unwrap();
    let services = state.services.clone();
    let app = test::init_service(app(state)).await;
    let signed = test::call_service(
        &app,
        test::TestRequest::post()
            .uri("/console/sign-in")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(format!("token={ADMIN}"))
            .to_request(),
    )
    .await;
    let cookie = header(&signed, "set-cookie").split(';').next().unwrap().to_owned();
    let fleet = || {
        test::TestRequest::get()
            .uri("/console")
            .insert_header(("Cookie", cookie.clone()))
            .to_request()
    };
    let html = String::from_utf8(test::read_body(test::call_service(&app, fleet()).await).await.to_vec()).unwrap();
    assert!(
        html.contains("deploy to production") && html.contains("1 pending approval"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let decide = |csrf: &str| {
        test::TestRequest::post()
            .uri(&format!("/console/approvals/{ws}/{}", asked.id))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("Cookie", cookie.clone()))
            .set_payload(format!("csrf={csrf}&decision=approved"))
            .to_request()
    };
    let refused = test::call_service(&app, decide("forged")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let done = test::call_service(&app, decide(&csrf)).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let now = services.approvals().list(ws).await.unwrap();
    assert_eq!(now[0].status, molecule_domain::ApprovalStatus::Approved);
    assert_eq!(now[0].decided_by.as_deref(), Some("console:admin"));
    let html = String::from_utf8(test::read_body(test::call_service(&app, fleet()).await).await.to_vec()).unwrap();
    assert!(!html.contains("deploy to production"), "decided: gone from the banner");
    // The filter is the page's query string.
    let filtered = test::TestRequest::get()
        .uri("/console?status=failed&q=ask")
        .insert_header(("Cookie", cookie.clone()))
        .to_request();
    let html = String::from_utf8(test::read_body(test::call_service(&app, filtered).await).await.to_vec()).unwrap();
    assert!(html.contains("0 of 1 workspaces"), "{html}");
    let named = test::TestRequest::get()
        .uri("/console?q=ASK")
        .insert_header(("Cookie", cookie.clone()))
        .to_request();
    let html = String::from_utf8(test::read_body(test::call_service(&app, named).await).await.to_vec()).unwrap();
    assert!(html.contains("1 of 1 workspaces") && html.contains("asker"), "{html}");
}
