//! The per-client rate limit over HTTP: the headers on every answer, the 429 with
//! `Retry-After` past the limit, one allowance per token (and per address without one), the
//! probes never limited, and nothing limited in dev mode.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use actix_web::http::StatusCode;
use actix_web::test;
use molecule_http::limits::RequestLimits;
use molecule_http::{AppState, app};
use molecule_testkit::TestDb;

use crate::header;

const ADMIN: &str = "limits-admin";

#[actix_web::test]
async fn each_client_gets_its_share_and_a_429_past_it() {
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    state.limits = RequestLimits::per_minute(3, Vec::new());
    let app = test::init_service(app(state)).await;
    let as_token = |token: &str| {
        test::TestRequest::get()
            .uri("/workspaces")
            .insert_header(molecule_testkit::bearer(token))
            .peer_addr("192.0.2.10:5000".parse().unwrap())
            .to_request()
    };
    for remaining in ["2", "1", "0"] {
        let resp = test::call_service(&app, as_token(ADMIN)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "x-ratelimit-limit"), "3");
        assert_eq!(header(&resp, "x-ratelimit-remaining"), remaining);
        assert!(header(&resp, "x-ratelimit-reset").parse::<u64>().unwrap() >= 1);
    }
    let resp = test::call_service(&app, as_token(ADMIN)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "0");
    assert_eq!(
        header(&resp, "x-content-type-options"),
        "nosniff",
        "a 429 gets the security headers"
    );
    let body: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(body["error"], "rate limit exceeded");
    assert_eq!(body["retry_after"].as_u64(), Some(retry));

    // Another token from the same address has its own allowance; so has an address without one.
    let resp = test::call_service(&app, as_token("some-other-token")).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "counted apart, then refused by auth"
    );
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "2");
    let anonymous = test::TestRequest::get()
        .uri("/canvas/viewport")
        .peer_addr("192.0.2.10:5001".parse().unwrap())
        .to_request();
    let resp = test::call_service(&app, anonymous).await;
    assert_eq!(
        (resp.status(), header(&resp, "x-ratelimit-remaining")),
        (StatusCode::OK, "2".to_owned())
    );

    // Probes are never limited.
    for _ in 0..5 {
        let probe = test::TestRequest::get()
            .uri("/health")
            .peer_addr("192.0.2.10:5002".parse().unwrap())
            .to_request();
        assert_eq!(test::call_service(&app, probe).await.status(), StatusCode::OK);
    }
}

#[actix_web::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    state.limits = RequestLimits::per_minute(1, molecule_http::limits::parse_proxies("10.0.0.0/8").unwrap());
    let app = test::init_service(app(state)).await;
    let via = |peer: &str, forwarded: &str| {
        test::TestRequest::get()
            .uri("/canvas/viewport")
            .peer_addr(format!("{peer}:4000").parse().unwrap())
            .insert_header(("X-Forwarded-For", forwarded.to_owned()))
            .to_request()
    };
    // Behind the trusted proxy, two clients are two allowances.
    assert_eq!(
        test::call_service(&app, via("10.1.1.1", "198.51.100.1")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        test::call_service(&app, via("10.1.1.1", "198.51.100.2")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        test::call_service(&app, via("10.1.1.1", "198.51.100.1")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // From anyone else the header is ignored: the peer is the client.
    assert_eq!(
        test::call_service(&app, via("203.0.113.5", "198.51.100.3"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        test::call_service(&app, via("203.0.113.5", "198.51.100.4"))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[actix_web::test]
async fn dev_mode_limits_nothing_and_says_so() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let app = test::init_service(app(state)).await;
    for _ in 0..20 {
        let resp = test::call_service(&app, test::TestRequest::get().uri("/canvas/viewport").to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "x-ratelimit-limit"), "unlimited");
    }
}
