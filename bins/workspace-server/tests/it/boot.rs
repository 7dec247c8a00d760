//! The binary's boot contract: bad configuration fails fast with one line that names what to
//! change; a good one serves /health and /readyz and stops cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, sigterm, wait_exit};
use molecule_testkit::{Api, TestDb, until_ok};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_workspace-server");

/// The binary with a clean environment (only PATH), so the developer's shell cannot leak in.
fn server() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// [`server`] on `port` over `database_url` with an admin token `t` and no backend.
fn serving(database_url: &str, port: u16) -> Command {
    let mut c = server();
    c.env("DATABASE_URL", database_url)
        .env("PORT", port.to_string())
        .env("MOLECULE_BIND_ADDR", "127.0.0.1")
        .env("ADMIN_TOKEN", "t")
        .env("MOLECULE_BACKEND", "none");
    c
}

/// Polls `path` until it answers 200 (30 s at most).
async fn wait_for(api: &Api, path: &str) {
    until_ok(&format!("{path} to answer 200"), Duration::from_secs(30), || async {
        let r = api.try_call(reqwest::Method::GET, path, None, None).await?;
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("{}: {}", r.status, r.text))
        }
    })
    .await;
}

fn stderr_lines(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn unreachable_database_fails_fast_naming_database_url() {
    let closed = free_port(); // nothing listens there
    let started = Instant::now();
    let mut child = server()
        .env(
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{closed}/molecule"),
        )
        .env("PORT", free_port().to_string())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let lines = stderr_lines(child);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("DATABASE_URL"), "{lines:?}");
}

#[test]
fn a_malformed_cors_origin_stops_the_boot_naming_it() {
    let mut child = server()
        .env("CORS_ORIGINS", "http://localhost:3000, canvas.example.com")
        .env("PORT", free_port().to_string())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(!status.success());
    let lines = stderr_lines(child);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("CORS_ORIGINS") && lines[0].contains("canvas.example.com"),
        "{lines:?}"
    );
}

#[test]
fn malformed_config_file_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("molecule.toml");
    std::fs::write(&file, "port = \"not-a-number\"\n").unwrap();
    let mut child = server().arg("--config").arg(&file).spawn().unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(10));
    assert!(!status.success());
    let lines = stderr_lines(child);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("molecule.toml") && lines[0].contains("port"),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_health_and_readyz_then_stops_on_sigterm() {
    let db = TestDb::empty().await; // the binary migrates it at boot
    let port = free_port();
    let mut child = serving(&db.url, port)
        // A plugin that is not there does not stop the boot.
        .env("MEMORY_PLUGIN_URL", "http://127.0.0.1:1")
        .env("MEMORY_PLUGIN_TIMEOUT", "300ms")
        .spawn()
        .unwrap();
    let api = Api::new(&format!("http://127.0.0.1:{port}"), "t");
    let checks = async move {
        wait_for(&api, "/health").await;
        wait_for(&api, "/readyz").await;
        // The ledger's table is installed at boot: its admin view answers.
        api.admin_get("/admin/delegations/stats").await.expect(200);
        // The background loops tick at start, so /metrics already counts them.
        let metrics = api.admin_get("/metrics").await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics
                .text
                .contains(r#"molecule_task_ticks_total{task="liveness",outcome="ran"}"#),
            "{}",
            metrics.text
        );
        assert_eq!(api.call(reqwest::Method::GET, "/metrics", None, None).await.status, 401);
        let liveness = api.admin_get("/admin/liveness").await.expect(200);
        assert_eq!(liveness["memory_plugin"]["url"], "http://127.0.0.1:1", "{liveness}");
        assert!(
            liveness["memory_plugin"]["capabilities"].is_null(),
            "never answered: {liveness}"
        );
        let missing = api.admin_get("/no/such/route").await.expect(404);
        insta::assert_json_snapshot!("unknown_route", missing);
    };
    // Stopped whatever the checks find, so a failing check does not leave the server behind.
    let result = tokio::spawn(checks).await;
    let status = sigterm(&mut child);
    result.unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    // Logs written to a pipe carry no terminal colour codes.
    let lines = stderr_lines(child);
    assert!(lines.len() > 3, "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains('\u{1b}')), "{lines:?}");
}

/// A log reader that stops reading (a full pipe, a stuck log shipper) does not stop the API:
/// lines queue behind a writer thread of their own, and every queued line is written once the
/// reader is back, the shutdown's last line included.
#[tokio::test(flavor = "multi_thread")]
async fn a_log_reader_that_stops_reading_does_not_stop_the_api() {
    use std::io::Read as _;
    const REQUESTS: usize = 2000; // an access line each: about 180 kB, a 64 kB pipe three times over
    let db = TestDb::empty().await;
    let port = free_port();
    let mut child = serving(&db.url, port).spawn().unwrap();
    let api = Api::new(&format!("http://127.0.0.1:{port}"), "t");
    // Nobody reads stderr while the requests run.
    let answered = tokio::spawn(async move {
        wait_for(&api, "/health").await;
        for i in 0..REQUESTS {
            match api.try_call(reqwest::Method::GET, "/health", None, None).await {
                Ok(r) => assert_eq!(r.status, 200, "request {i}: {}", r.text),
                Err(e) => panic!("request {i} with stderr unread: {e}"),
            }
        }
        api.admin_get("/metrics").await.text
    })
    .await;
    // The reader comes back, then the server is stopped.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let status = sigterm(&mut child);
    let metrics = answered.unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(metrics.contains("molecule_log_lines_dropped_total 0"), "{metrics}");
    let text = reader.join().unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let access = lines.iter().filter(|l| l.contains("GET /health")).count();
    assert!(access > REQUESTS, "{access} access lines for {REQUESTS} requests");
    assert!(
        lines.last().is_some_and(|l| l.contains("stopped")),
        "{:?}",
        lines.last()
    );
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, each request's span reaches the collector over
/// OTLP/HTTP (at the latest when SIGTERM flushes the exporter), under the service's name.
#[tokio::test(flavor = "multi_thread")]
async fn request_spans_reach_an_otlp_collector() {
    let db = TestDb::empty().await;
    let collector = molecule_testkit::OtlpSink::start().unwrap();
    let port = free_port();
    let mut child = serving(&db.url, port)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url())
        .spawn()
        .unwrap();
    let api = Api::new(&format!("http://127.0.0.1:{port}"), "t");
    let served = tokio::spawn(async move { wait_for(&api, "/readyz").await }).await;
    let status = sigterm(&mut child);
    served.unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    let traces = collector.wait_for(Duration::from_secs(5), |r| {
        r.method == "POST" && r.path == "/v1/traces" && r.body_contains("/readyz")
    });
    let got: Vec<_> = collector
        .received()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let traces = traces.unwrap_or_else(|| panic!("no span for /readyz; the collector got {got:?}"));
    assert!(traces.body_contains("workspace-server"), "service.name missing");
    assert_eq!(traces.content_type.as_deref(), Some("application/x-protobuf"));
}

/// docs/configuration.md's table lists every knob of both binaries.
#[test]
fn readme_documents_every_knob() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md")).unwrap();
    for knob in molecule_config::SHARED_KNOBS
        .iter()
        .chain(molecule_config::SERVER_KNOBS)
        .chain(molecule_config::PLUGIN_KNOBS)
        .chain(molecule_config::AGENT_KNOBS)
    {
        assert!(
            readme.contains(&format!("`{}`", knob.env)),
            "docs/configuration.md does not document {}",
            knob.env
        );
    }
}

/// `secrets rotate-key` moves every value to the new key (a second run re-seals nothing), and
/// a server lacking the key that sealed stored values refuses to start in one line naming it.
#[tokio::test]
async fn rotate_key_reseals_once_and_an_unknown_key_refuses_boot() {
    use molecule_secrets::{Keyring, SecretString};
    const OLD: &str = "old-key-0123456789abcdef01234567";
    const NEW: &str = "new-key-0123456789abcdef01234567";
    let db = TestDb::new().await;
    let old = std::sync::Arc::new(Keyring::new(Some(&SecretString::from(OLD)), &[]).unwrap());
    let s = molecule_service::Services::new(db.pool().clone(), Default::default())
        .unwrap()
        .with_keyring(old);
    s.create_workspace(molecule_api::workspaces::CreateWorkspace {
        name: "sealed".into(),
        secrets: [("API_KEY".to_owned(), SecretString::from("v1"))].into(),
        ..Default::default()
    })
    .await
    .unwrap();
    s.vault()
        .set_global_secret(molecule_api::secrets::SetSecret {
            key: "SHARED".into(),
            value: SecretString::from("v2"),
        })
        .await
        .unwrap();

    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut c = server();
        c.env("DATABASE_URL", &db.url).args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let rotate = |envs: &[(&str, &str)]| {
        let out = run(&["secrets", "rotate-key", "--batch", "1"], envs);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        summary["resealed"].as_u64().unwrap()
    };
    let both = [("SECRETS_ENCRYPTION_KEY", NEW), ("SECRETS_PREVIOUS_KEYS", OLD)];
    assert_eq!(rotate(&both), 2);
    assert_eq!(rotate(&both), 0, "a second run is a no-op");

    // Only the old key now: every row names the new key's id, so the server must not start.
    let out = run(&[], &[("SECRETS_ENCRYPTION_KEY", OLD), ("MOLECULE_BACKEND", "none")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains(" WARN ") && !l.contains(" INFO "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("sealed under key id") && lines[0].contains("SECRETS_PREVIOUS_KEYS"),
        "{stderr}"
    );
    // A key that is not 32 bytes names the variable and never echoes the key.
    let out = run(&[], &[("SECRETS_ENCRYPTION_KEY", "too-short-key")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("SECRETS_ENCRYPTION_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("too-short-key"), "{stderr}");
}
