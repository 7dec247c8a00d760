//! Real A2A peers written by others: an agent built with the official A2A Python SDK (PyPI
//! `a2a-sdk`) registered as an external workspace, reached through the proxy with a v0.3
//! `message/send` body, and the SDK's own client pointed at `/workspaces/:id/a2a`.
//!
//! Needs the tools virtualenv with `a2a-sdk[http-server]` and `uvicorn` (`cargo xtask test`
//! installs them); outside CI a missing one skips the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
#![allow(clippy::disallowed_methods)] // reads HOME for the tools virtualenv

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use molecule_testkit::{Api, TestDb, free_port, until, until_ok};
use serde_json::json;

use crate::common;

const ADMIN: &str = "sdk-admin";

pub(crate) fn python() -> Option<PathBuf> {
    common::tools_python(
        "an_a2a_sdk_agent_behind_the_proxy",
        "a2a.server.routes, uvicorn, httpx",
        "'a2a-sdk[http-server]' uvicorn",
    )
}

pub(crate) fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/a2a_sdk_peer.py")
}

/// Kills the SDK agent when the test ends, however it ends.
pub(crate) struct Peer(pub(crate) Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_a2a_sdk_agent_behind_the_proxy() {
    let Some(python) = python() else { return };
    let db = TestDb::new().await;
    let server = common::start_replica(&db.url, ADMIN, &[]);
    let api = server.api();
    api.ready().await;

    let port = free_port();
    let _peer = Peer(
        Command::new(&python)
            .arg(peer_script())
            .args(["serve", &port.to_string()])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    until("the SDK agent to listen", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;

    let agent = api.external("sdk-agent").await;
    let id = agent.id.clone();
    // The SDK agent's own card, read from it as a peer would.
    let peer = Api::new(&format!("http://127.0.0.1:{port}"), "");
    let card = peer
        .call(reqwest::Method::GET, "/.well-known/agent-card.json", None, None)
        .await
        .expect(200);
    api.register(&agent, &format!("http://127.0.0.1:{port}/"), &card).await;

    // 1. A v0.3 message/send body (what the original and its runtimes speak), through the proxy.
    let body = api
        .a2a(
            &id,
            ADMIN,
            &json!({ "jsonrpc": "2.0", "id": "v03", "method": "message/send",
            "params": { "message": { "role": "user", "messageId": "v03-1", "parts": [{ "kind": "text", "text": "old dialect" }] } } }),
        )
        .await
        .expect(200);
    assert_eq!(body["result"]["parts"][0]["text"], "sdk echo: old dialect", "{body}");

    // 2. The SDK's own client (v1.0 SendMessage, its A2A-Version header) pointed at the proxy.
    let url = format!("{}/workspaces/{id}/a2a", server.base);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(peer_script())
            .args(["client", &url, ADMIN, "new dialect"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "SDK client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "sdk echo: new dialect");

    // Both arrived as a2a_receive rows on the agent's workspace, in their own method names
    // (written just after each answer, on a task of their own).
    let methods = until_ok("both a2a_receive rows", Duration::from_secs(10), || async {
        let rows = api.activity(&id, ADMIN, "type=a2a_receive").await?;
        let mut methods: Vec<String> = rows
            .iter()
            .filter_map(|r| r["method"].as_str().map(str::to_owned))
            .collect();
        methods.sort_unstable();
        if methods.len() == 2 {
            Ok(methods)
        } else {
            Err(format!("{rows:?}"))
        }
    })
    .await;
    assert_eq!(methods, vec!["SendMessage", "message/send"]);
}

/// An agent written with the official A2A Python SDK that logs each messageId it receives to
/// `log` and, with `gate`, holds its answers while that file exists.
pub(crate) struct SdkAgent {
    _peer: Peer,
    pub(crate) url: String,
    log: tempfile::NamedTempFile,
}

impl SdkAgent {
    pub(crate) async fn start(python: &std::path::Path, gate: Option<&std::path::Path>) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let port = molecule_testkit::free_port();
        let mut cmd = std::process::Command::new(python);
        cmd.arg(peer_script())
            .args(["serve", &port.to_string()])
            .arg(log.path())
            .stdin(std::process::Stdio::null());
        if let Some(gate) = gate {
            cmd.arg(gate);
        }
        let peer = Peer(cmd.spawn().unwrap());
        molecule_testkit::until("the SDK agent to listen", Duration::from_secs(30), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        Self {
            _peer: peer,
            url: format!("http://127.0.0.1:{port}/"),
            log,
        }
    }

    /// How many times each messageId starting with `prefix` reached the agent.
    pub(crate) fn received(&self, prefix: &str) -> std::collections::BTreeMap<String, usize> {
        let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for id in std::fs::read_to_string(self.log.path()).unwrap_or_default().lines() {
            if id.starts_with(prefix) {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        counts
    }
}
