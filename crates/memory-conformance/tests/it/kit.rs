//! The kit against three plugins: memory-plugin-postgres (passes, every capability checked),
//! the flat Python plugin (passes, capabilities skipped) and the flat plugin with ids ignored
//! (fails on idempotency).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test code
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use molecule_memory_conformance::{Status, run};
use molecule_memory_plugin::{PluginState, migrations};
use molecule_testkit::TestDb;

struct Flat(Child, u16);

impl Drop for Flat {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The flat plugin, or `None` (a loud skip; a failure in CI) without python3.
fn flat(extra: &[&str]) -> Option<Flat> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/flat_plugin.py");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = match Command::new("python3")
        .arg(script)
        .args(["--port", &port.to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
                "python3 is needed for the flat plugin in CI: {e}"
            );
            eprintln!("\n!!!! SKIPPING the flat-plugin checks: python3 cannot start ({e}) !!!!\n");
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the flat plugin did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Flat(child, port))
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_plugin_postgres_passes_with_every_capability() {
    let db = TestDb::with_migrations(migrations()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server =
        molecule_memory_plugin::serve(listener, PluginState::new(db.pool().clone()), Duration::from_secs(1)).unwrap();
    let base = format!("http://{}", server.local_addr);
    let _serving = tokio::spawn(server.wait());
    let report = run(&base, Duration::from_secs(5)).await;
    eprintln!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    assert!(
        !report.outcomes.iter().any(|o| matches!(o.status, Status::Skip(_))),
        "every capability is advertised and checked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_flat_plugin_passes_without_capabilities() {
    let Some(plugin) = flat(&[]) else { return };
    let report = run(&format!("http://127.0.0.1:{}", plugin.1), Duration::from_secs(5)).await;
    eprintln!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    assert_eq!(
        report
            .outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Skip(_)))
            .count(),
        5,
        "the five capability checks are skipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_ignores_ids_fails() {
    let Some(plugin) = flat(&["--ignore-id"]) else { return };
    let report = run(&format!("http://127.0.0.1:{}", plugin.1), Duration::from_secs(5)).await;
    assert!(!report.passed());
    assert!(
        report.failed("POST same id twice → one memory, updated"),
        "{}",
        report.table()
    );
    assert_eq!(report.failures(), 1, "{}", report.table());
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_fails_every_check() {
    let report = run("http://127.0.0.1:1", Duration::from_secs(2)).await;
    assert!(!report.passed());
    assert!(report.table().contains("FAIL"));
}
