#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use molecule_testkit::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_memory-plugin-postgres");

/// The binary with only `env` (and PATH) on a free loopback port.
fn plugin(env: &[(&str, &str)]) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .env("MEMORY_PLUGIN_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}

/// Also: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the requests' spans reach a collector.
#[tokio::test(flavor = "multi_thread")]
async fn serves_v1_health_and_stops_on_sigterm() {
    let db = TestDb::empty().await;
    let collector = molecule_testkit::OtlpSink::start().unwrap();
    let (mut child, port) = plugin(&[
        ("DATABASE_URL", &db.url),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url()),
    ]);
    let result = tokio::task::spawn_blocking(move || {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/v1/health")).send() {
                assert_eq!(r.status(), 200);
                let body: serde_json::Value = r.json().unwrap();
                assert_eq!(body["status"], "ok");
                // The schema was applied at boot: every capability works.
                assert_eq!(body["capabilities"].as_array().unwrap().len(), 5, "{body}");
                return;
            }
            assert!(Instant::now() < deadline, "no /v1/health within 30s");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(25));
    };
    result.unwrap();
    assert!(status.success());
    let traces = collector.wait_for(Duration::from_secs(5), |r| {
        r.path == "/v1/traces" && r.body_contains("/v1/health") && r.body_contains("memory-plugin-postgres")
    });
    assert!(traces.is_some(), "no span for /v1/health: {:?}", collector.received());
}

#[tokio::test(flavor = "multi_thread")]
async fn skipping_migrations_on_an_empty_database_reports_degraded() {
    let db = TestDb::empty().await;
    let (mut child, port) = plugin(&[
        ("MEMORY_PLUGIN_DATABASE_URL", &db.url),
        ("MEMORY_PLUGIN_SKIP_MIGRATE", "1"),
    ]);
    let result = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::blocking::get(format!("http://127.0.0.1:{port}/v1/health")) {
                assert_eq!(r.status(), 503);
                let body: serde_json::Value = r.json().unwrap();
                assert_eq!(body["status"], "degraded");
                assert!(
                    body["message"].as_str().unwrap().contains("MEMORY_PLUGIN_SKIP_MIGRATE"),
                    "{body}"
                );
                return;
            }
            assert!(Instant::now() < deadline, "no /v1/health within 30s");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}
