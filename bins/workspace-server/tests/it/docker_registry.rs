//! A moving tag is pulled again on every provision: publish a new image under the same tag in
//! a local registry (Debian's `docker-registry` on 127.0.0.1), restart, and the new image runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test code
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Cleanup, Proc, docker_ok as docker, docker_problem, free_port, ready_or_skip, until};
use molecule_testkit::client::text;
use molecule_testkit::{Api, TestDb};
use serde_json::json;

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_workspace-server");
const ADMIN: &str = "reg-admin";

#[tokio::test(flavor = "multi_thread")]
async fn a_moving_tag_is_pulled_again_on_restart() {
    let registry_missing = (!std::path::Path::new("/usr/bin/docker-registry").exists())
        .then(|| "Debian's docker-registry is not installed (apt-get install docker-registry)".to_owned());
    if !ready_or_skip(
        "the registry pull test",
        docker_problem("molecule-agent:latest").or(registry_missing),
    ) {
        return;
    }
    // A registry of our own, on loopback.
    let dir = tempfile::tempdir().unwrap();
    let reg_port = free_port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{reg_port}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let _registry = Proc {
        child: Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        base: String::new(),
        admin: String::new(),
    };
    let registry = Api::new(&format!("http://127.0.0.1:{reg_port}"), "");
    until("registry up", Duration::from_secs(20), || async {
        let r = registry.try_call(reqwest::Method::GET, "/v2/", None, None).await.ok()?;
        (r.status == 200).then_some(())
    })
    .await;

    let repo = format!("127.0.0.1:{reg_port}/molecule/agent:latest");
    docker(&["tag", "molecule-agent:latest", &repo]);
    docker(&["push", &repo]);
    let old_id = docker(&["image", "inspect", "-f", "{{.Id}}", "molecule-agent:latest"]);

    let db = TestDb::empty().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let instance = format!("reg-{}", uuid::Uuid::new_v4().simple());
    let _cleanup = Cleanup(instance.clone());
    let _server = Proc {
        child: Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("PORT", port.to_string())
            .env("MOLECULE_BIND_ADDR", "127.0.0.1")
            .env("PLATFORM_URL", &base)
            .env("ADMIN_TOKEN", ADMIN)
            .env("MOLECULE_BACKEND", "docker")
            .env("RATE_LIMIT", "1000000")
            .env("MOLECULE_DOCKER_NETWORK", "host")
            .env("MOLECULE_PLATFORM_INSTANCE", &instance)
            .env("MOLECULE_RUNTIME_IMAGES", format!("claude-code={repo}"))
            .env("MOLECULE_AGENT_ENV", "HEARTBEAT_INTERVAL_SECONDS=1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
        base: base.clone(),
        admin: ADMIN.to_owned(),
    };
    let api = _server.api();
    api.ready().await;
    let id = text(
        &api.create(&json!({ "name": "puller", "runtime": "claude-code" })).await,
        "id",
    );
    let container = format!("ws-{id}");
    let running_image = || docker(&["inspect", "-f", "{{.Image}}", &container]);
    let online = |want_image: String| {
        let (api, id) = (&api, &id);
        async move {
            let w = api.workspace(id).await;
            assert_ne!(w["status"], "failed", "{}", w["last_sample_error"]);
            let image = Command::new("docker")
                .args(["inspect", "-f", "{{.Image}}", &format!("ws-{id}")])
                .output()
                .ok()?;
            let image = String::from_utf8_lossy(&image.stdout).trim().to_owned();
            (w["status"] == "online" && image == want_image).then_some(())
        }
    };
    until("online on the first image", Duration::from_secs(60), || {
        online(old_id.clone())
    })
    .await;
    assert_eq!(running_image(), old_id);

    // Publish a new image under the same tag; the local tag still names the old one.
    let mut build = Command::new("docker")
        .args(["build", "-q", "-t", &repo, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        build
            .stdin
            .take()
            .unwrap()
            .write_all(b"FROM molecule-agent:latest\nLABEL molecule.test.generation=2\n")
            .unwrap();
    }
    assert!(build.wait().unwrap().success(), "docker build");
    docker(&["push", &repo]);
    let new_id = docker(&["image", "inspect", "-f", "{{.Id}}", &repo]);
    assert_ne!(new_id, old_id);
    docker(&["tag", "molecule-agent:latest", &repo]);
    assert_eq!(
        docker(&["image", "inspect", "-f", "{{.Id}}", &repo]),
        old_id,
        "the local cache is stale"
    );

    api.admin_action(&format!("/workspaces/{id}/restart")).await.expect(200);
    until("online on the new image", Duration::from_secs(90), || {
        online(new_id.clone())
    })
    .await;

    api.admin_delete(&format!("/workspaces/{id}")).await.expect(200);
    let _ = Command::new("docker").args(["rmi", "-f", &repo, &new_id]).output();
}
