//! End to end on a real Docker engine: the server provisions the reference agent's image, the
//! agent registers back, and pause, resume, restart and delete act on real containers.
//!
//! Needs the `molecule-agent:*` images (`cargo xtask image`; `cargo xtask test` builds them).
//! In CI (`CI=true`) a missing engine or image fails the test; elsewhere it is skipped loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test code
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Cleanup, Proc as Server, docker, docker_problem, free_port, ready_or_skip, until};
use molecule_testkit::TestDb;
use serde_json::{Value, json};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_workspace-server");
const ADMIN: &str = "e2e-admin";

fn start(db: &TestDb, instance: &str, extra: &[(&str, &str)]) -> Server {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("PORT", port.to_string())
        .env("MOLECULE_BIND_ADDR", "127.0.0.1")
        .env("PLATFORM_URL", &base)
        .env("ADMIN_TOKEN", ADMIN)
        .env("MOLECULE_BACKEND", "docker")
        .env("MOLECULE_DOCKER_NETWORK", "host")
        .env("MOLECULE_PLATFORM_INSTANCE", instance)
        .env("MOLECULE_AGENT_ENV", "HEARTBEAT_INTERVAL_SECONDS=1")
        .env("RUST_LOG", "warn,molecule_dispatcher=info");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let child = cmd.stdin(Stdio::null()).spawn().unwrap();
    Server { child, base }
}

async fn post(http: &reqwest::Client, base: &str, path: String, body: Value) -> reqwest::Response {
    http.post(format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn status(http: &reqwest::Client, base: &str, id: &str) -> Value {
    http.get(format!("{base}/workspaces/{id}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_status(http: &reqwest::Client, base: &str, id: &str, want: &str) -> Value {
    until(&format!("{id} {want}"), Duration::from_secs(90), || async {
        let w = status(http, base, id).await;
        assert_ne!(w["status"], "failed", "workspace failed: {}", w["last_sample_error"]);
        (w["status"] == want).then_some(w)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_lifecycle_end_to_end() {
    if !ready_or_skip(
        "the Docker end-to-end test",
        docker_problem("molecule-agent:claude-code"),
    ) {
        return;
    }
    let db = TestDb::empty().await;
    let instance = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let _cleanup = Cleanup(instance.clone());
    let server = start(
        &db,
        &instance,
        &[("MOLECULE_RUNTIME_IMAGES", "claude-code=molecule-agent:claude-code")],
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    until("server up", Duration::from_secs(30), || async {
        http.get(format!("{}/health", server.base))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    // create → the container starts from the local image → the agent registers → online.
    let created: Value = post(
        &http,
        &server.base,
        "/workspaces".into(),
        json!({ "name": "e2e", "runtime": "claude-code", "model": "anthropic:claude" }),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let container = format!("ws-{id}");
    wait_status(&http, &server.base, &id, "online").await;
    // The agent may register before the dispatcher has recorded what it started.
    let w = until("image digest recorded", Duration::from_secs(30), || async {
        let w = status(&http, &server.base, &id).await;
        w["runtime_image_digest"].as_str().is_some().then_some(w)
    })
    .await;
    assert!(
        w["runtime_image_digest"].as_str().unwrap().starts_with("sha256:"),
        "{w}"
    );
    let (_, labels) = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"molecule.platform.instance\"}} {{index .Config.Labels \"molecule.workspace.id\"}} {{.Config.Image}}",
        &container,
    ]);
    assert_eq!(labels, format!("{instance} {id} molecule-agent:claude-code"));
    let (_, env) = docker(&["inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", &container]);
    assert!(
        env.contains("MODEL=anthropic:claude")
            && env.contains("MODEL_PROVIDER=anthropic")
            && env.contains(&format!("WORKSPACE_ID={id}")),
        "{env}"
    );

    // pause → container gone, status paused.
    let r = post(&http, &server.base, format!("/workspaces/{id}/pause"), json!({})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(
        !docker(&["inspect", &container]).0,
        "paused workspace keeps no container"
    );
    assert_eq!(status(&http, &server.base, &id).await["status"], "paused");

    // resume → online again.
    let r = post(&http, &server.base, format!("/workspaces/{id}/resume"), json!({})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    wait_status(&http, &server.base, &id, "online").await;

    // restart twice at once → one run and one coalesced re-run.
    let (a, b) = tokio::join!(
        post(&http, &server.base, format!("/workspaces/{id}/restart"), json!({})),
        post(&http, &server.base, format!("/workspaces/{id}/restart"), json!({}))
    );
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    let outcomes = [a["outcome"].as_str().unwrap(), b["outcome"].as_str().unwrap()];
    assert!(
        outcomes.contains(&"started") && outcomes.contains(&"coalesced"),
        "{outcomes:?}"
    );
    until("two restart cycles", Duration::from_secs(90), || async {
        let events: Value = http
            .get(format!("{}/events/{id}", server.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let cycles = events
            .as_array()?
            .iter()
            .filter(|e| e["event"] == "WORKSPACE_PROVISIONING" && e["payload"]["restart"] == true)
            .count();
        assert!(cycles <= 2, "coalesced into at most one re-run, saw {cycles} cycles");
        (cycles == 2).then_some(())
    })
    .await;
    wait_status(&http, &server.base, &id, "online").await;

    // delete → container and volumes gone.
    let r = http
        .delete(format!("{}/workspaces/{id}", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(!docker(&["inspect", &container]).0, "container removed");
    for v in [format!("ws-{id}-configs"), format!("ws-{id}-workspace")] {
        assert!(!docker(&["volume", "inspect", &v]).0, "volume {v} removed");
    }

    // An image that cannot be obtained fails the workspace with the reason.
    let bad: Value = post(
        &http,
        &server.base,
        "/workspaces".into(),
        json!({ "name": "no-image", "runtime": "hermes" }),
    )
    .await
    .json()
    .await
    .unwrap();
    drop(server);
    let server = start(
        &db,
        &instance,
        &[("MOLECULE_RUNTIME_IMAGES", "hermes=127.0.0.1:9/nope:1.0")],
    );
    until("server up", Duration::from_secs(30), || async {
        http.get(format!("{}/health", server.base))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let bad_id = bad["id"].as_str().unwrap().to_owned();
    let _ = post(&http, &server.base, format!("/workspaces/{bad_id}/restart"), json!({})).await;
    let failed = until("failed with the reason", Duration::from_secs(60), || async {
        let w = status(&http, &server.base, &bad_id).await;
        (w["status"] == "failed").then_some(w)
    })
    .await;
    assert!(
        failed["last_sample_error"]
            .as_str()
            .unwrap()
            .contains("cannot be obtained"),
        "{failed}"
    );
    drop(server);

    // Nothing of this run is left behind.
    let (_, left) = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=molecule.platform.instance={instance}"),
    ]);
    let stale: Vec<&str> = left.lines().collect();
    for c in &stale {
        docker(&["rm", "-f", c]);
    }
    assert!(stale.is_empty(), "containers left behind: {stale:?}");
}
