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

use crate::header;

const ADMIN: &str = "console-admin-secret";

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
async fn workspaces_keep_their_place_on_the_canvas() {
    use serde_json::{Value, json};
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let app = test::init_service(app(state)).await;
    let call = |method: actix_web::http::Method, uri: &str, body: Option<Value>| {
        let mut r = test::TestRequest::default()
            .method(method)
            .uri(uri)
            .insert_header(molecule_testkit::bearer(ADMIN));
        if let Some(b) = body {
            r = r.set_json(b);
        }
        r.to_request()
    };
    use actix_web::http::Method;
    let made: Value = test::call_and_read_body_json(
        &app,
        call(
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "placed", "runtime": "external", "canvas": { "x": 120.5, "y": -40.0 } })),
        ),
    )
    .await;
    assert_eq!(
        (made["workspace"]["x"].as_f64(), made["workspace"]["y"].as_f64()),
        (Some(120.5), Some(-40.0))
    );
    let id = made["id"].as_str().unwrap().to_owned();
    let plain: Value = test::call_and_read_body_json(
        &app,
        call(
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "unplaced", "runtime": "external" })),
        ),
    )
    .await;
    assert_eq!(
        (plain["workspace"]["x"].as_f64(), plain["workspace"]["y"].as_f64()),
        (Some(0.0), Some(0.0))
    );

    // x and y move together; an unknown field is refused, not dropped.
    for (body, field) in [
        (json!({ "x": 10.0 }), "y"),
        (json!({ "y": 10.0 }), "x"),
        (json!({ "x": 1e12, "y": 0.0 }), "x"),
        (json!({ "left": 10.0 }), "left"),
    ] {
        let resp = test::call_service(
            &app,
            call(Method::PATCH, &format!("/workspaces/{id}"), Some(body.clone())),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: Value = test::read_body_json(resp).await;
        assert!(err["error"].as_str().unwrap().contains(field), "{body}: {err}");
    }
    let resp = test::call_service(
        &app,
        call(
            Method::PATCH,
            &format!("/workspaces/{id}"),
            Some(json!({ "x": 10.0, "y": 20.0 })),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let one: Value = test::call_and_read_body_json(&app, call(Method::GET, &format!("/workspaces/{id}"), None)).await;
    assert_eq!((one["x"].as_f64(), one["y"].as_f64()), (Some(10.0), Some(20.0)));
    let all: Value = test::call_and_read_body_json(&app, call(Method::GET, "/workspaces", None)).await;
    let placed = all.as_array().unwrap().iter().find(|w| w["id"] == id.as_str()).unwrap();
    assert_eq!((placed["x"].as_f64(), placed["y"].as_f64()), (Some(10.0), Some(20.0)));
    let resp = test::call_service(
        &app,
        call(
            Method::POST,
            "/workspaces",
            Some(json!({ "name": "bad", "canvas": { "x": 1.0 } })),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "canvas needs both");
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
    let (cookie, _) = sign_in(&app).await;
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

/// Signs in with the admin token: the session cookie (`name=value`) and the page's CSRF token.
async fn sign_in<S, B>(app: &S) -> (String, String)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let signed = test::call_service(
        app,
        test::TestRequest::post()
            .uri("/console/sign-in")
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(format!("token={ADMIN}"))
            .to_request(),
    )
    .await;
    let cookie = header(&signed, "set-cookie").split(';').next().unwrap().to_owned();
    let page = test::call_service(
        app,
        test::TestRequest::get()
            .uri("/console")
            .insert_header(("Cookie", cookie.clone()))
            .to_request(),
    )
    .await;
    let html = String::from_utf8(test::read_body(page).await.to_vec()).unwrap();
    (cookie, csrf_of(&html))
}

#[actix_web::test]
async fn the_console_reaches_the_api_through_its_session_only() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let failed = workspace_with_token(&state.services, "broken-one").await.id;
    db.execute_sql(&format!(
        "UPDATE workspaces SET status = 'failed', last_sample_error = 'image pull failed: no such image' WHERE id = '{failed}'"
    ))
    .await;
    let app = test::init_service(app(state)).await;
    let (cookie, csrf) = sign_in(&app).await;
    let call =
        |method: actix_web::http::Method, uri: &str, cookie: Option<&str>, csrf: Option<&str>, origin: Option<&str>| {
            let mut r = test::TestRequest::default().method(method).uri(uri);
            if let Some(c) = cookie {
                r = r.insert_header(("Cookie", c.to_owned()));
            }
            if let Some(t) = csrf {
                r = r.insert_header(("X-CSRF-Token", t.to_owned()));
            }
            if let Some(o) = origin {
                r = r.insert_header(("Origin", o.to_owned()));
            }
            r
        };
    use actix_web::http::Method;

    // No session: refused, even with the admin token itself (the door is the session).
    let resp = test::call_service(
        &app,
        call(Method::GET, "/console/api/workspaces", None, None, None).to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = test::call_service(
        &app,
        call(Method::GET, "/console/api/workspaces", None, None, None)
            .insert_header(("Authorization", format!("Bearer {ADMIN}")))
            .to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&resp, "content-security-policy").contains("default-src 'none'"));

    // A session reads as the admin, query strings included.
    let resp = test::call_service(
        &app,
        call(Method::GET, "/console/api/workspaces", Some(&cookie), None, None).to_request(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let list: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(list[0]["name"], "broken-one");
    let resp = test::call_service(
        &app,
        call(Method::GET, "/console/api/events?limit=0", Some(&cookie), None, None).to_request(),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "the query string reaches the route"
    );

    // A change needs the CSRF token, and never comes from another site.
    let create = |csrf: Option<&str>, origin: Option<&str>| {
        call(Method::POST, "/console/api/workspaces", Some(&cookie), csrf, origin)
            .set_json(serde_json::json!({ "name": "made-in-console", "runtime": "external" }))
            .to_request()
    };
    let resp = test::call_service(&app, create(None, None)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = test::call_service(&app, create(Some("forged"), None)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = test::call_service(&app, create(Some(&csrf), Some("https://evil.example"))).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = test::call_service(&app, create(Some(&csrf), None)).await;
    assert!(resp.status().is_success(), "{}", resp.status());

    // Events carry who caused them; the audit view filters by actor and type.
    let audit = |query: &str| {
        test::TestRequest::get()
            .uri(&format!("/events?{query}"))
            .insert_header(("Authorization", format!("Bearer {ADMIN}")))
            .to_request()
    };
    let resp = test::call_service(&app, audit("actor=console:admin")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let by_console: serde_json::Value = test::read_body_json(resp).await;
    let by_console = by_console.as_array().unwrap();
    assert!(!by_console.is_empty(), "the console's create left events");
    assert!(
        by_console.iter().all(|e| e["actor"] == "console:admin"),
        "{by_console:?}"
    );
    let resp = test::call_service(&app, audit("actor=admin")).await;
    let by_admin: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(by_admin, serde_json::json!([]), "nothing yet by the admin token");
    let resp = test::call_service(&app, audit("event=NOT_A_TYPE")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().starts_with("event:"), "{body}");

    // The fleet's live part (what the script fetches on events) shows it; not without a session.
    let resp = test::call_service(
        &app,
        call(Method::GET, "/console/fleet/live", Some(&cookie), None, None).to_request(),
    )
    .await;
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(
        html.contains("made-in-console") && html.contains("2 of 2 workspaces"),
        "{html}"
    );
    for page in ["/console/fleet/live", "/console/delegations", "/console/system"] {
        let resp = test::call_service(&app, call(Method::GET, page, None, None, None).to_request()).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{page} without a session");
        let resp = test::call_service(&app, call(Method::GET, page, Some(&cookie), None, None).to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK, "{page} with one");
        let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        assert!(!html.contains(ADMIN), "{page} holds no admin token");
    }

    // A failed workspace's page says why.
    let uri = format!("/console/workspaces/{failed}");
    let resp = test::call_service(&app, call(Method::GET, &uri, Some(&cookie), None, None).to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(html.contains("image pull failed: no such image"), "{html}");
    assert!(!html.contains(ADMIN));
    let resp = test::call_service(&app, call(Method::GET, &uri, None, None, None).to_request()).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    // The terminal: an upgrade only, from this server's pages only, and no provisioner here.
    let terminal = |origin: Option<&str>, upgrade: bool| {
        let mut r = call(
            Method::GET,
            &format!("/console/api/workspaces/{failed}/terminal"),
            Some(&cookie),
            None,
            origin,
        );
        if upgrade {
            r = r
                .insert_header(("Connection", "Upgrade"))
                .insert_header(("Upgrade", "websocket"))
                .insert_header(("Sec-WebSocket-Version", "13"))
                .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
        }
        r.to_request()
    };
    let resp = test::call_service(&app, terminal(None, false)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = test::call_service(&app, terminal(None, true)).await;
    assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().contains("MOLECULE_BACKEND"), "{body}");
    let resp = test::call_service(&app, terminal(Some("https://evil.example"), true)).await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a foreign Origin, at the console's door"
    );
    let direct = |origin: &str| {
        test::TestRequest::get()
            .uri(&format!("/workspaces/{failed}/terminal"))
            .insert_header(("Authorization", format!("Bearer {ADMIN}")))
            .insert_header(("Host", "localhost:8080"))
            .insert_header(("Origin", origin.to_owned()))
            .insert_header(("Connection", "Upgrade"))
            .insert_header(("Upgrade", "websocket"))
            .insert_header(("Sec-WebSocket-Version", "13"))
            .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
            .to_request()
    };
    let resp = test::call_service(&app, direct("https://evil.example")).await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a foreign Origin, with the admin token"
    );
    let resp = test::call_service(&app, direct("http://localhost:8080")).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_IMPLEMENTED,
        "this server's own origin passes"
    );
}
