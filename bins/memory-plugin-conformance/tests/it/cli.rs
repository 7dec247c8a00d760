//! The binary's contract with a shell: the table on stdout, exit 0 on a conforming plugin,
//! 1 when a check fails, 2 on a bad URL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::process::Command;
use std::time::Duration;

use molecule_memory_plugin::{PluginState, migrations};
use molecule_testkit::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_memory-plugin-conformance");

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_follow_the_checks() {
    let db = TestDb::with_migrations(migrations()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server =
        molecule_memory_plugin::serve(listener, PluginState::new(db.pool().clone()), Duration::from_secs(1)).unwrap();
    let url = format!("http://{}", server.local_addr);
    let _serving = tokio::spawn(server.wait());

    let ok = tokio::task::spawn_blocking(move || Command::new(BIN).arg(&url).output().unwrap())
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{table}");
    assert!(table.contains("30 checks: 30 passed, 0 failed, 0 skipped"), "{table}");

    let down = Command::new(BIN)
        .args(["http://127.0.0.1:1", "--timeout", "1s"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stdout).contains("FAIL"));

    let bad = Command::new(BIN).arg("localhost:9100").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("http://"));
}
