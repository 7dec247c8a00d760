//! `/metrics` as a scraper sees it: per-request series by route pattern (unmatched paths in
//! one series), the request-duration histogram, the pool's gauges, the admin token by default
//! and none with `METRICS_PUBLIC`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::test;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use molecule_http::{AppState, app};
use molecule_testkit::TestDb;

const ADMIN: &str = "metrics-admin";

#[actix_web::test]
async fn requests_are_counted_by_route_pattern() {
    // nextest runs each test in a process of its own: the global recorder is this test's.
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("molecule_http_request_duration_seconds".into()),
            &[0.01, 0.1, 1.0],
        )
        .unwrap()
        .install_recorder()
        .unwrap();
    let db = TestDb::new().await;
    let mut state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    state.metrics = Some(Arc::new(move || handle.render()));
    let public = AppState {
        metrics_public: true,
        ..state.clone()
    };
    let app = test::init_service(app(state)).await;
    let get = |uri: &str, admin: bool| {
        let mut r = test::TestRequest::get().uri(uri);
        if admin {
            r = r.insert_header(molecule_testkit::bearer(ADMIN));
        }
        r.to_request()
    };
    assert_eq!(
        test::call_service(&app, get("/workspaces", true)).await.status(),
        StatusCode::OK
    );
    let missing = format!("/workspaces/{}", uuid::Uuid::new_v4());
    assert_eq!(
        test::call_service(&app, get(&missing, true)).await.status(),
        StatusCode::NOT_FOUND
    );
    for i in 0..3 {
        let resp = test::call_service(&app, get(&format!("/scan/{i}"), false)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        test::call_service(&app, get("/metrics", false)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = test::call_service(&app, get("/metrics", true)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    let line = |name: &str, parts: &[&str]| {
        text.lines()
            .find(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
            .unwrap_or_else(|| panic!("no {name} with {parts:?} in:\n{text}"))
            .to_owned()
    };
    let ok = line(
        "molecule_http_requests_total{",
        &["path=\"/workspaces\"", "status=\"200\"", "method=\"GET\""],
    );
    assert!(ok.ends_with(" 1"), "{ok}");
    line(
        "molecule_http_requests_total{",
        &["path=\"/workspaces/{id}\"", "status=\"404\""],
    );
    let unmatched = line(
        "molecule_http_requests_total{",
        &["path=\"unmatched\"", "status=\"404\""],
    );
    assert!(unmatched.ends_with(" 3"), "random paths share one series: {unmatched}");
    assert!(!text.contains("/scan/"), "no series per raw path");
    line(
        "molecule_http_request_duration_seconds_bucket{",
        &["path=\"/workspaces\"", "le=\"0.1\""],
    );
    line("molecule_db_pool_connections{", &["state=\"max\""]);

    // METRICS_PUBLIC: scrapers without a token.
    let open = test::init_service(molecule_http::app(public)).await;
    assert_eq!(
        test::call_service(&open, get("/metrics", false)).await.status(),
        StatusCode::OK
    );
}
