#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use molecule_testkit::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_memory-plugin-postgres");

#[tokio::test(flavor = "multi_thread")]
async fn serves_v1_health_and_stops_on_sigterm() {
    let db = TestDb::empty().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("MEMORY_PLUGIN_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
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
}
