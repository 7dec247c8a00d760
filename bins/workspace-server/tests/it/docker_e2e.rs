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
use molecule_testkit::client::text;
use molecule_testkit::{Api, TestDb, stable_json};
use serde_json::{Value, json};

use crate::common;

const BIN: &str = env!("CARGO_BIN_EXE_workspace-server");
pub(crate) const ADMIN: &str = "e2e-admin";

/// A 32-character key: secrets are sealed at rest in this run.
const SEALING_KEY: &str = "e2e-sealing-key-0123456789abcdef";
/// Values that must never appear in a log, an event, `docker inspect` or a row.
const CANARY: &str = "sk-canary-0c5e1d9a7b3f4e28";
const CANARY_AFTER: &str = "sk-canary-after-change-6d1f";
const GLOBAL_CANARY: &str = "gh-canary-global-93ab0e";

fn sha256_hex(v: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(v.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn start(db: &TestDb, instance: &str, extra: &[(&str, &str)]) -> Server {
    start_logged(db, instance, extra, None)
}

/// As [`start`], with the server's output appended to `log` when given.
pub(crate) fn start_logged(
    db: &TestDb,
    instance: &str,
    extra: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> Server {
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
        .env("RATE_LIMIT", "1000000")
        .env("MOLECULE_DOCKER_NETWORK", "host")
        .env("MOLECULE_PLATFORM_INSTANCE", instance)
        .env("MOLECULE_AGENT_ENV", "HEARTBEAT_INTERVAL_SECONDS=1")
        .env("RUST_LOG", "warn,molecule_dispatcher=info");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    if let Some(path) = log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        cmd.stdout(file.try_clone().unwrap()).stderr(file);
    }
    let child = cmd.stdin(Stdio::null()).spawn().unwrap();
    Server {
        child,
        base,
        admin: ADMIN.to_owned(),
    }
}

/// Waits (at most 90 s) for workspace `id` to be `want`; fails at once, with the reason, if it
/// fails instead.
pub(crate) async fn wait_status(api: &Api, id: &str, want: &str) -> Value {
    until(&format!("{id} {want}"), Duration::from_secs(90), || async {
        let w = api.workspace(id).await;
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
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("server.log");
    let server = start_logged(
        &db,
        &instance,
        &[
            ("MOLECULE_RUNTIME_IMAGES", "claude-code=molecule-agent:claude-code"),
            ("SECRETS_ENCRYPTION_KEY", SEALING_KEY),
            // Verbose on our own crates: the canary must not be in any of it.
            (
                "RUST_LOG",
                "info,molecule_service=debug,molecule_dispatcher=debug,molecule_http=debug,molecule_provisioner=debug,workspace_server=debug",
            ),
        ],
        Some(&log),
    );
    let api = server.api();
    api.ready().await;
    // A global secret, then create with a workspace secret → the container starts from the
    // local image with its secrets in a file → the agent registers with the delivered token.
    api.admin_post(
        "/settings/secrets",
        &json!({ "key": "GLOBAL_TOKEN", "value": GLOBAL_CANARY }),
    )
    .await
    .expect(200);
    let created = api
        .create(
            &json!({ "name": "e2e", "runtime": "claude-code", "model": "anthropic:claude", "secrets": { "CANARY_KEY": CANARY } }),
        )
        .await;
    let id = text(&created, "id");
    let container = format!("ws-{id}");
    wait_status(&api, &id, "online").await;
    // The agent may register before the dispatcher has recorded what it started.
    let w = until("image digest recorded", Duration::from_secs(30), || async {
        let w = api.workspace(&id).await;
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
        env.contains("MODEL=anthropic:claude") && env.contains(&format!("WORKSPACE_ID={id}")),
        "{env}"
    );
    // Neither a secret value nor the token is in what the engine shows of the container.
    let tokens = api.admin_get(&format!("/workspaces/{id}/tokens")).await.expect(200);
    let prefix = tokens["tokens"][0]["prefix"].as_str().unwrap().to_owned();
    let (_, inspect) = docker(&["inspect", &container]);
    for hidden in [
        CANARY,
        GLOBAL_CANARY,
        "MOLECULE_WORKSPACE_TOKEN",
        prefix.as_str(),
        "MODEL_PROVIDER",
    ] {
        assert!(!inspect.contains(hidden), "docker inspect shows {hidden}");
    }
    // The agent sees them: it answers the SHA-256 of what it was delivered.
    let ask = |key: &str| {
        let log = log.clone();
        let body = crate::messaging::user_message(&format!("secret-sha256:{key}"));
        let (api, id) = (&api, &id);
        async move {
            let resp = api.a2a(id, ADMIN, &body).await;
            let (status, v) = (resp.status, resp.body);
            // Only the answer's text is compared; what came instead is shown whole.
            v["result"]["parts"][0]["text"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(40).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    format!(
                        "no answer text (HTTP {status}): {v}\nserver log, last lines:\n{}",
                        tail.join("\n")
                    )
                })
        }
    };
    assert_eq!(ask("CANARY_KEY").await, sha256_hex(CANARY));
    // Anyone else who reaches the agent's port is refused: only the platform holds its
    // inbound secret.
    let agent_url = text(&api.workspace(&id).await, "url");
    let direct = Api::new(&agent_url, "")
        .call(
            reqwest::Method::POST,
            "",
            None,
            Some(&json!({ "jsonrpc": "2.0", "id": 1, "method": "message/send", "params": { "message": { "role": "user", "parts": [{ "kind": "text", "text": "secret-sha256:CANARY_KEY" }] } } })),
        )
        .await;
    assert_eq!(direct.status, 401, "{}", direct.text);
    assert_eq!(ask("GLOBAL_TOKEN").await, sha256_hex(GLOBAL_CANARY));
    assert_eq!(ask("LLM_PROVIDER").await, sha256_hex("anthropic"));

    // pause → container gone, status paused.
    api.admin_action(&format!("/workspaces/{id}/pause")).await.expect(200);
    assert!(
        !docker(&["inspect", &container]).0,
        "paused workspace keeps no container"
    );
    assert_eq!(api.workspace(&id).await["status"], "paused");

    // resume → online again.
    api.admin_action(&format!("/workspaces/{id}/resume")).await.expect(200);
    wait_status(&api, &id, "online").await;

    // restart twice at once → one run and one coalesced re-run.
    let restart = format!("/workspaces/{id}/restart");
    let (a, b) = tokio::join!(api.admin_action(&restart), api.admin_action(&restart));
    let (a, b) = (a.ok(), b.ok());
    let outcomes = [a["outcome"].as_str().unwrap(), b["outcome"].as_str().unwrap()];
    assert!(
        outcomes.contains(&"started") && outcomes.contains(&"coalesced"),
        "{outcomes:?}"
    );
    until("two restart cycles", Duration::from_secs(90), || async {
        let events = api.events(&id).await;
        let cycles = events
            .iter()
            .filter(|e| e["event"] == "WORKSPACE_PROVISIONING" && e["payload"]["restart"] == true)
            .count();
        assert!(cycles <= 2, "coalesced into at most one re-run, saw {cycles} cycles");
        (cycles == 2).then_some(())
    })
    .await;
    wait_status(&api, &id, "online").await;

    // A secret change restarts the workspace, and the new value reaches the agent.
    let changed = api.put_secret(&id, "CANARY_KEY", CANARY_AFTER).await.expect(200);
    insta::assert_json_snapshot!("secret_change_restarts_the_workspace", stable_json(&changed));
    until("the agent sees the changed secret", Duration::from_secs(90), || async {
        (ask("CANARY_KEY").await == sha256_hex(CANARY_AFTER)).then_some(())
    })
    .await;
    // The model and provider survived every restart of this run. The secret change's restart
    // can still be under way here: it coalesces with the restarts above, so the canary may
    // already show on the container it then replaces, and an ask it cuts short is answered
    // 503 "restarting" with a retry_after, as it should be. So ask until an answer comes.
    for (key, want) in [("MODEL_PROVIDER", "anthropic:claude"), ("LLM_PROVIDER", "anthropic")] {
        let got = molecule_testkit::until_ok(&format!("an answer for {key}"), Duration::from_secs(90), || {
            let asked = ask(key);
            async move {
                let answer = asked.await;
                if answer.starts_with("no answer text") {
                    Err(answer)
                } else {
                    Ok(answer)
                }
            }
        })
        .await;
        assert_eq!(got, sha256_hex(want), "{key}");
    }
    let (_, agent_log) = docker(&["logs", &container]);

    // delete → container and volumes gone.
    api.admin_delete(&format!("/workspaces/{id}")).await.expect(200);
    assert!(!docker(&["inspect", &container]).0, "container removed");
    for v in [format!("ws-{id}-configs"), format!("ws-{id}-workspace")] {
        assert!(!docker(&["volume", "inspect", &v]).0, "volume {v} removed");
    }

    // After provision, restart, a secret change and delete: no canary in the server's log,
    // the agent's log, any event, or any secret row.
    // Read once the delete's access line is written: every line before it is written too.
    let server_log = crate::common::log_once(&log, "the delete's access line in the server log", |l| {
        l.contains(&format!("DELETE /workspaces/{id} "))
    })
    .await;
    assert!(server_log.contains(&id), "the log is the server's");
    let events = api.admin_get("/events").await.expect(200);
    for canary in [CANARY, CANARY_AFTER, GLOBAL_CANARY] {
        assert!(!server_log.contains(canary), "the server's log shows {canary}");
        assert!(!agent_log.contains(canary), "the agent's log shows {canary}");
        assert!(!events.to_string().contains(canary), "an event shows {canary}");
    }
    // An image that cannot be obtained fails the workspace with the reason.
    let bad = api.create(&json!({ "name": "no-image", "runtime": "hermes" })).await;
    drop(server);
    // A server without the key that sealed the rows refuses to start, in one line naming it.
    let refused_log = logs.path().join("refused.log");
    let mut refused = start_logged(&db, &instance, &[], Some(&refused_log));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = refused.child.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "the keyless server kept running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!exit.success());
    let said = std::fs::read_to_string(&refused_log).unwrap();
    let last = said.lines().last().unwrap_or_default();
    assert!(
        last.contains("sealed under key id") && last.contains("SECRETS_ENCRYPTION_KEY"),
        "{said}"
    );
    drop(refused);
    let server = start(
        &db,
        &instance,
        &[
            ("MOLECULE_RUNTIME_IMAGES", "hermes=127.0.0.1:9/nope:1.0"),
            ("SECRETS_ENCRYPTION_KEY", SEALING_KEY),
        ],
    );
    let api = server.api();
    api.ready().await;
    let bad_id = text(&bad, "id");
    let _ = api.admin_action(&format!("/workspaces/{bad_id}/restart")).await;
    let failed = until("failed with the reason", Duration::from_secs(60), || async {
        let w = api.workspace(&bad_id).await;
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
