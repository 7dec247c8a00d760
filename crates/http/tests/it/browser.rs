//! What a browser sees of the API: CORS (a preflight from an allowed origin, the original
//! canvas's own origin out of the box, another origin refused, this server's own origin
//! always allowed) and the security headers on every route family, refusals included.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use actix_web::http::StatusCode;
use actix_web::test;
use molecule_http::{AppState, app};
use molecule_testkit::TestDb;

use crate::header;

const ADMIN: &str = "browser-admin";

#[actix_web::test]
async fn cors_lets_the_canvas_in_and_keeps_other_sites_out() {
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    state.cors_origins =
        molecule_http::browser::CorsOrigins::parse("http://localhost:3000,https://ops.example.com").unwrap();
    let app = test::init_service(app(state)).await;
    let preflight = |origin: &str| {
        test::TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/workspaces")
            .insert_header(("Origin", origin.to_owned()))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header((
                "Access-Control-Request-Headers",
                "authorization, content-type, x-workspace-id",
            ))
            .to_request()
    };
    for allowed in ["http://localhost:3000", "https://ops.example.com"] {
        let resp = test::call_service(&app, preflight(allowed)).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{allowed}");
        assert_eq!(header(&resp, "access-control-allow-origin"), allowed);
        assert_eq!(header(&resp, "access-control-allow-credentials"), "true");
        let methods = header(&resp, "access-control-allow-methods");
        assert!(methods.contains("PATCH") && methods.contains("DELETE"), "{methods}");
        let headers = header(&resp, "access-control-allow-headers").to_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("x-workspace-id"),
            "{headers}"
        );
    }
    // Another site: its preflight and its request are refused, saying what to change.
    let resp = test::call_service(&app, preflight("https://evil.example")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(header(&resp, "access-control-allow-origin").is_empty());
    assert_eq!(
        header(&resp, "x-content-type-options"),
        "nosniff",
        "a refusal gets the headers too"
    );
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert!(body["error"].as_str().unwrap().contains("CORS_ORIGINS"), "{body}");
    let get = |origin: &str| {
        test::TestRequest::get()
            .uri("/workspaces")
            .insert_header(("Origin", origin.to_owned()))
            .insert_header(molecule_testkit::bearer(ADMIN))
            .to_request()
    };
    let resp = test::call_service(&app, get("https://evil.example")).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // An allowed page reads the answer, and the rate-limit and request-id headers with it.
    let resp = test::call_service(&app, get("http://localhost:3000")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "access-control-allow-origin"), "http://localhost:3000");
    let exposed = header(&resp, "access-control-expose-headers").to_lowercase();
    for h in ["x-ratelimit-remaining", "retry-after", "x-request-id"] {
        assert!(exposed.contains(h), "{h} not exposed: {exposed}");
    }
    // This server's own pages (the console) are never refused.
    let own = test::TestRequest::get()
        .uri("/workspaces")
        .insert_header(("Host", "control.example.net:8080"))
        .insert_header(("Origin", "https://control.example.net:8080"))
        .insert_header(molecule_testkit::bearer(ADMIN))
        .to_request();
    assert_eq!(test::call_service(&app, own).await.status(), StatusCode::OK);
    // No Origin (curl, agents): CORS stays out of the way.
    let plain = test::TestRequest::get()
        .uri("/workspaces")
        .insert_header(molecule_testkit::bearer(ADMIN))
        .to_request();
    assert_eq!(test::call_service(&app, plain).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn every_route_family_carries_the_security_headers() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let app = test::init_service(app(state)).await;
    for (uri, csp_has) in [
        ("/health", "default-src 'none'"),
        ("/workspaces", "default-src 'none'"),
        ("/workspaces/not-a-uuid", "default-src 'none'"),
        ("/no/such/route", "default-src 'none'"),
        ("/openapi.json", "default-src 'none'"),
        ("/canvas/viewport", "default-src 'none'"),
        ("/console/sign-in", "script-src 'self'"),
    ] {
        let resp = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        let csp = header(&resp, "content-security-policy");
        assert!(csp.contains(csp_has), "{uri}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{uri}: {csp}");
        assert_eq!(header(&resp, "x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(header(&resp, "x-frame-options"), "DENY", "{uri}");
        assert!(
            header(&resp, "strict-transport-security").starts_with("max-age="),
            "{uri}"
        );
        assert!(header(&resp, "permissions-policy").contains("camera=()"), "{uri}");
        assert!(!header(&resp, "referrer-policy").is_empty(), "{uri}");
    }
}
