//! The workload's shape on a real Docker engine: a template's files in `/configs`, the Files
//! API on a running and on a stopped workload (with every traversal refused), each tier's
//! limits as `docker inspect` shows them (and no host privileges without the opt-in), and a
//! session reset that leaves an empty session volume.
//!
//! Needs the `molecule-agent:*` images (`cargo xtask image`). In CI a missing engine or image
//! fails the test; elsewhere it is skipped loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use molecule_testkit::client::text;
use molecule_testkit::{Api, TestDb, until};
use serde_json::{Value, json};

use crate::common::{Cleanup, docker, docker_ok, docker_problem, raw_get_status, ready_or_skip};
use crate::docker_e2e::{ADMIN, start, wait_status};

fn inspect(container: &str) -> Value {
    let out = docker_ok(&["inspect", container]);
    serde_json::from_str::<Value>(&out).unwrap()[0].clone()
}

fn exec(container: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", container];
    args.extend_from_slice(cmd);
    docker_ok(&args)
}

/// Restarts `id` and waits for a new container to be online.
async fn restart(api: &Api, id: &str, reset: bool) {
    let before = api.workspace(id).await["instance_id"].clone();
    api.admin_action(&format!("/workspaces/{id}/restart?reset={reset}"))
        .await
        .ok();
    until("the restarted workload online", Duration::from_secs(90), || async {
        let w = api.workspace(id).await;
        (w["status"] == "online" && !w["instance_id"].is_null() && w["instance_id"] != before).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_templates_files_tiers_and_session_reset() {
    if !ready_or_skip("the Docker workload test", docker_problem("molecule-agent:claude-code")) {
        return;
    }
    let db = TestDb::empty().await;
    let instance = format!("wl-{}", uuid::Uuid::new_v4().simple());
    let _cleanup = Cleanup(instance.clone());
    let configs = tempfile::tempdir().unwrap();
    crate::templates::fixture(configs.path());
    let server = start(
        &db,
        &instance,
        &[
            (
                "MOLECULE_RUNTIME_IMAGES",
                "claude-code=molecule-agent:claude-code,hermes=molecule-agent:hermes",
            ),
            ("CONFIGS_DIR", configs.path().to_str().unwrap()),
            ("TIER2_MEMORY_MB", "640"),
        ],
    );
    let base = server.base.clone();
    let api = server.api();
    api.ready().await;
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let api = &api;
        async move {
            let r = api.call(method, &path, Some(ADMIN), body.as_ref()).await;
            (r.status, r.body)
        }
    };
    use reqwest::Method as M;

    // A template's files reach /configs of the container.
    let created = api
        .create(&json!({ "name": "templated", "template": "good", "secrets": { "GOOD_KEY": "k" } }))
        .await;
    let id = text(&created, "id");
    assert!(
        created.get("tier_note").is_none(),
        "tier 2 has no privileges to withhold: {created}"
    );
    wait_status(&api, &id, "online").await;
    let c = format!("ws-{id}");
    assert_eq!(
        exec(&c, &["cat", "/configs/prompts/hello.md"]),
        "hello from the template"
    );
    assert!(exec(&c, &["cat", "/configs/config.yaml"]).contains("name: templated"));

    // The Files API on the running workload.
    let files = format!("/workspaces/{id}/files");
    let (code, list) = call(M::GET, format!("{files}?depth=2"), None).await;
    assert_eq!(code, 200, "{list}");
    let paths: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"prompts/hello.md") && paths.contains(&"config.yaml"),
        "{paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.starts_with(".molecule")),
        "the secrets file is never listed: {paths:?}"
    );
    let (code, read) = call(M::GET, format!("{files}/prompts/hello.md"), None).await;
    assert_eq!(
        (code, read["content"].as_str()),
        (200, Some("hello from the template\n")),
        "{read}"
    );
    let (code, _) = call(
        M::PUT,
        format!("{files}/notes/new.md"),
        Some(json!({ "content": "written live" })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        call(M::GET, format!("{files}/notes/new.md"), None).await.1["content"],
        "written live"
    );
    assert_eq!(exec(&c, &["cat", "/configs/notes/new.md"]), "written live");
    let (code, _) = call(
        M::PUT,
        format!("{files}/a.txt?root=/workspace"),
        Some(json!({ "content": "ws" })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(exec(&c, &["cat", "/workspace/a.txt"]), "ws");
    assert_eq!(call(M::DELETE, format!("{files}/notes/new.md"), None).await.0, 200);
    assert_eq!(
        call(M::GET, format!("{files}/notes/new.md"), None).await.0,
        404,
        "deleted"
    );
    assert_eq!(call(M::GET, format!("{files}/missing.md"), None).await.0, 404);
    assert_eq!(
        call(M::GET, format!("{files}/.molecule/secrets.json"), None).await.0,
        400
    );
    // Every traversal is a 400: `..`, absolute, encoded, and a symlink out of the root.
    exec(
        &c,
        &[
            "sh",
            "-c",
            "echo outside > /tmp/outside.txt && ln -s /tmp /configs/escape",
        ],
    );
    for (what, path) in [
        ("dot-dot in the listing", format!("{files}?path=../..")),
        ("absolute listing", format!("{files}?path=/etc")),
        ("encoded slashes", format!("{files}/..%2f..%2fetc%2fpasswd")),
        ("encoded dots", format!("{files}/%2e%2e/%2e%2e/etc/passwd")),
        ("symlink escape", format!("{files}/escape/outside.txt")),
        ("symlink listing", format!("{files}?path=escape")),
        ("unknown root", format!("{files}?root=/etc")),
    ] {
        assert_eq!(raw_get_status(&base, &path, ADMIN), 400, "{what}: {path}");
    }
    assert_eq!(
        call(M::DELETE, format!("{files}/escape/outside.txt"), None).await.0,
        400
    );
    let (code, _) = call(
        M::PUT,
        format!("{files}/escape/outside.txt"),
        Some(json!({ "content": "x" })),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        exec(&c, &["cat", "/tmp/outside.txt"]),
        "outside",
        "nothing outside the root was touched"
    );

    // The same on the stopped workload: no container, only its volumes.
    assert_eq!(call(M::POST, format!("/workspaces/{id}/pause"), None).await.0, 200);
    until("the container gone", Duration::from_secs(60), || async {
        (!docker(&["inspect", &c]).0).then_some(())
    })
    .await;
    assert_eq!(
        call(M::GET, format!("{files}/prompts/hello.md"), None).await.1["content"],
        "hello from the template\n"
    );
    let (code, _) = call(
        M::PUT,
        format!("{files}/offline.md"),
        Some(json!({ "content": "written stopped" })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        call(M::GET, format!("{files}/offline.md"), None).await.1["content"],
        "written stopped"
    );
    let (_, list) = call(M::GET, files.clone(), None).await;
    assert!(
        list.as_array().unwrap().iter().any(|e| e["path"] == "offline.md"),
        "{list}"
    );
    assert_eq!(call(M::DELETE, format!("{files}/offline.md"), None).await.0, 200);
    assert_eq!(call(M::GET, format!("{files}/offline.md"), None).await.0, 404);
    assert_eq!(raw_get_status(&base, &format!("{files}/%2e%2e/x"), ADMIN), 400);
    assert_eq!(
        call(M::GET, format!("{files}?root=/home"), None).await.0,
        503,
        "/home needs the running workload"
    );
    // Every helper of this workspace is removed once its request is answered. Polled for a
    // few seconds: one CI run (of many) still listed one at the first look, and it was gone
    // by the end of the run; the listing says which one if it stays.
    molecule_testkit::until_ok(
        "this workspace's files helpers removed",
        Duration::from_secs(10),
        || async {
            let helpers = docker_ok(&[
                "ps",
                "-a",
                "--filter",
                "label=molecule.platform.helper",
                "--filter",
                &format!("name=ws-{id}-files"),
                "--format",
                "{{.ID}} {{.Names}} {{.Status}} created {{.CreatedAt}}",
            ]);
            if helpers.is_empty() { Ok(()) } else { Err(helpers) }
        },
    )
    .await;
    assert_eq!(call(M::POST, format!("/workspaces/{id}/resume"), None).await.0, 200);
    wait_status(&api, &id, "online").await;

    // Tiers: limits, T1's read-only rootfs and configs-only mounts, no privileges anywhere.
    let mut tiered = Vec::new();
    for tier in [1, 3, 4] {
        let (code, created) = call(
            M::POST,
            "/workspaces".into(),
            Some(json!({ "name": format!("tier{tier}"), "tier": tier, "runtime": "hermes" })),
        )
        .await;
        assert_eq!(code, 201, "{created}");
        if tier >= 3 {
            assert!(
                created["tier_note"]
                    .as_str()
                    .unwrap()
                    .contains("MOLECULE_ALLOW_PRIVILEGED_TIERS"),
                "{created}"
            );
        }
        tiered.push((tier, created["id"].as_str().unwrap().to_owned()));
    }
    tiered.push((2, id.clone()));
    let engine_cpus: i64 = docker_ok(&["info", "--format", "{{.NCPU}}"]).parse().unwrap();
    for (tier, wid) in &tiered {
        wait_status(&api, wid, "online").await;
        let hc = inspect(&format!("ws-{wid}"))["HostConfig"].clone();
        let (mb, cpus): (i64, i64) = match tier {
            1 => (512, 1),
            2 => (640, 1),
            3 => (2048, 2),
            _ => (4096, 4),
        };
        assert_eq!(hc["Memory"], json!(mb * 1024 * 1024), "tier {tier}: {hc}");
        // A hard limit cannot exceed the engine's CPUs: the backend caps it there.
        assert_eq!(
            hc["NanoCpus"],
            json!(cpus.min(engine_cpus) * 1_000_000_000),
            "tier {tier}"
        );
        assert_eq!(hc["CpuShares"], json!(cpus * 1024), "tier {tier}");
        assert_eq!(hc["Privileged"], false, "tier {tier}");
        assert_ne!(hc["PidMode"], "host", "tier {tier}");
        let binds: Vec<&str> = hc["Binds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap())
            .collect();
        assert!(
            !binds.iter().any(|b| b.contains("docker.sock")),
            "tier {tier}: {binds:?}"
        );
        assert_eq!(hc["ReadonlyRootfs"], *tier == 1, "tier {tier}");
        if *tier == 1 {
            assert_eq!(
                binds,
                [format!("ws-{wid}-configs:/configs")],
                "T1 mounts the configs volume only"
            );
            assert_eq!(hc["Tmpfs"]["/tmp"], "rw,size=64m");
        }
    }

    // The claude-code session volume: kept by a plain restart, emptied by reset=true.
    exec(&c, &["touch", "/root/.claude/sessions/kept"]);
    restart(&api, &id, false).await;
    assert_eq!(
        exec(&c, &["ls", "/root/.claude/sessions"]),
        "kept",
        "a plain restart keeps the session"
    );
    restart(&api, &id, true).await;
    assert_eq!(
        exec(&c, &["ls", "-A", "/root/.claude/sessions"]),
        "",
        "reset=true leaves an empty session volume"
    );
    assert_eq!(
        exec(&c, &["cat", "/configs/prompts/hello.md"]),
        "hello from the template",
        "/configs survives restarts"
    );
}
