//! Messaging across replicas: a delegation in flight on a replica that is SIGKILLed is
//! delivered again by the other (its lease runs out, the reaper takes the message back, a
//! heartbeat drains it), and its result lands once in the ledger and in the caller's inbox.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use molecule_testkit::agent::Mode;
use molecule_testkit::client::text;
use molecule_testkit::{StubAgent, TestDb, stable_json, until, until_ok};
use serde_json::{Value, json};

use crate::common;

const ADMIN: &str = "messaging-admin";
/// Short lease and reaper tick, so the takeover is quick (production: 60 s each).
const FAST: &[(&str, &str)] = &[
    ("A2A_QUEUE_LEASE_SECONDS", "2"),
    ("A2A_QUEUE_REAP_INTERVAL_SECONDS", "1"),
];

#[tokio::test(flavor = "multi_thread")]
async fn a_delegation_in_flight_on_a_killed_replica_is_completed_by_the_other_once() {
    let db = TestDb::new().await;
    let mut a = common::start_replica(&db.url, ADMIN, FAST);
    let b = common::start_replica(&db.url, ADMIN, FAST);
    let (api_a, api_b) = (a.api(), b.api());
    api_a.ready().await;
    api_b.ready().await;

    let caller = api_a.external("caller").await;
    let callee = api_a.external("callee").await;
    // The callee's agent takes the first message and never answers it.
    let agent = StubAgent::start(Mode::Hang).unwrap();
    api_b.register(&callee, &agent.url, &json!({ "name": "callee" })).await;

    let did = api_a.delegate(&caller, &callee.id, "survive the crash").await;
    until(
        "the delegation to be in flight on replica A",
        Duration::from_secs(15),
        || async { (agent.received().iter().any(|r| r.message_id() == Some(did.as_str()))).then_some(()) },
    )
    .await;

    // Replica A dies mid-delivery; the agent is free again.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    agent.set(Mode::Echo);

    // The callee keeps heartbeating (to B): once the lease is reaped, a heartbeat drains it.
    let done: Value = until_ok(
        "replica B to complete the delegation",
        Duration::from_secs(60),
        || async {
            api_b.heartbeat(&callee, 0).await.success()?;
            let row = api_b
                .delegations(&caller)
                .await?
                .into_iter()
                .find(|d| d["delegation_id"] == did.as_str())
                .ok_or("delegation not listed")?;
            if row["status"] == "completed" {
                Ok(row)
            } else {
                Err(format!("still {}", row["status"]))
            }
        },
    )
    .await;
    insta::assert_json_snapshot!("delegation_completed_by_the_other_replica", stable_json(&done));

    // The result lands once: one delegate_result row, one inbox row, one DELEGATION_COMPLETE.
    let rows: Vec<Value> = until_ok("the caller's result rows", Duration::from_secs(10), || async {
        let rows: Vec<Value> = api_b
            .activity(&caller.id, &caller.token, "limit=100")
            .await?
            .into_iter()
            .filter(|r| r["method"] == "delegate_result")
            .collect();
        if rows.len() >= 2 {
            Ok(rows)
        } else {
            Err(format!("{} result rows", rows.len()))
        }
    })
    .await;
    let mut kinds: Vec<&str> = rows.iter().filter_map(|r| r["activity_type"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["a2a_receive", "delegation"], "{rows:?}");
    let complete: Vec<Value> = api_b
        .events(&caller.id)
        .await
        .into_iter()
        .filter(|e| e["event"] == "DELEGATION_COMPLETE")
        .collect();
    assert_eq!(complete.len(), 1, "{complete:?}");
    assert_eq!(complete[0]["payload"]["via"], "queue_drain");
    // At least once to the agent: the message A had sent, then B's, with the same messageId.
    let deliveries = agent
        .received()
        .iter()
        .filter(|r| r.message_id() == Some(did.as_str()))
        .count();
    assert_eq!(deliveries, 2, "delivered by A (lost with it), then by B");
}

/// A delivery that outlasts several lease lengths is not taken over while its replica lives:
/// the lease is renewed, so the agent gets the message once.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_delivery_keeps_its_lease_and_is_sent_once() {
    let db = TestDb::new().await;
    let a = common::start_replica(&db.url, ADMIN, FAST);
    let b = common::start_replica(&db.url, ADMIN, FAST);
    let (api_a, api_b) = (a.api(), b.api());
    api_a.ready().await;
    api_b.ready().await;
    let caller = api_a.external("caller").await;
    let callee = api_a.external("callee").await;
    // Three lease lengths (2 s each) to answer.
    let agent = StubAgent::start(Mode::Slow(6000)).unwrap();
    api_b.register(&callee, &agent.url, &json!({})).await;
    let did = api_a.delegate(&caller, &callee.id, "take your time").await;
    until_ok("the slow delegation to complete", Duration::from_secs(30), || async {
        // Heartbeats with a free slot keep offering the other replica a chance to drain.
        let _ = api_b.heartbeat(&callee, 0).await;
        let list = api_b.delegations(&caller).await?;
        let status = list.first().map(|d| d["status"].clone()).unwrap_or_default();
        if status == "completed" {
            Ok(())
        } else {
            Err(format!("still {status}"))
        }
    })
    .await;
    let deliveries = agent
        .received()
        .iter()
        .filter(|r| r.message_id() == Some(did.as_str()))
        .count();
    assert_eq!(deliveries, 1, "sent once while its replica lived");
}

/// The reference agent built next to this test binary (`cargo xtask test` builds every binary
/// of the workspace first). Outside CI a missing binary skips the test loudly.
pub(crate) fn reference_agent() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("molecule-agent");
    let problem = (!path.exists()).then(|| format!("{} is not built (cargo build -p molecule-agent)", path.display()));
    common::ready_or_skip("hibernation_and_restart_through_messages", problem).then_some(path)
}

/// The body of an A2A message from the user saying `text`, as the proxy takes it.
pub(crate) fn user_message(text: &str) -> Value {
    json!({ "message": { "role": "user", "parts": [{ "kind": "text", "text": text }] } })
}

/// The text of the first part of an A2A answer, if it has one.
pub(crate) fn said(answer: &Value) -> Option<&str> {
    answer["result"]["parts"][0]["text"].as_str()
}

/// With the local backend: hibernate, then a message answers 503 `waking` and wakes it; it
/// comes back online and the retried message is answered. A message to a workload that died
/// answers 503 `restarting` and the dispatcher brings it back.
#[tokio::test(flavor = "multi_thread")]
async fn hibernation_and_restart_through_messages() {
    let Some(agent_bin) = reference_agent() else { return };
    let db = TestDb::new().await;
    let data = tempfile::tempdir().unwrap();
    let server = common::start_replica(&db.url, ADMIN, &common::local_agents(&agent_bin, data.path()));
    let api = server.api();
    api.ready().await;
    let id = text(&api.create(&json!({ "name": "sleeper" })).await, "id");
    let online = || async {
        until_ok("the workspace to be online", Duration::from_secs(30), || async {
            let w = api.workspace(&id).await;
            if w["status"] == "online" {
                Ok(w)
            } else {
                Err(format!("{}", w["status"]))
            }
        })
        .await
    };
    let send = |words: &str| {
        let body = user_message(words);
        let (api, id) = (&api, &id);
        async move { api.a2a(id, ADMIN, &body).await }
    };
    online().await;
    let answer = send("before").await.ok();
    assert_eq!(said(&answer), Some("echo: before"), "{answer}");

    // Hibernate: stopped, no URL.
    api.admin_action(&format!("/workspaces/{id}/hibernate"))
        .await
        .expect(200);
    let w = api.workspace(&id).await;
    assert_eq!(
        (w["status"].as_str(), w["url"].as_str()),
        (Some("hibernated"), None),
        "{w}"
    );

    // A message wakes it: 503 waking with Retry-After, then online, then answered.
    let resp = send("wake up").await;
    assert_eq!(resp.header("retry-after"), "15");
    insta::assert_json_snapshot!("a2a_to_a_hibernated_workspace", stable_json(&resp.expect(503)));
    online().await;
    // Online comes with the agent's registration, which may land before the dispatcher
    // records the new process: wait for both.
    let w = until_ok(
        "the woken workload's pid to be recorded",
        Duration::from_secs(30),
        || async {
            let w = api.workspace(&id).await;
            if w["status"] == "online" && w["instance_id"].is_string() {
                Ok(w)
            } else {
                Err(format!("{} {}", w["status"], w["instance_id"]))
            }
        },
    )
    .await;
    let answer = send("wake up").await.ok();
    assert_eq!(said(&answer), Some("echo: wake up"), "{answer}");

    // The workload dies: the next message finds it dead, answers 503 restarting, and the
    // dispatcher brings it back.
    let pid = text(&w, "instance_id");
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    let body = until_ok(
        "the message to find the workload dead",
        Duration::from_secs(10),
        || async {
            let resp = send("anyone?").await;
            if resp.status == 503 {
                Ok(resp.body)
            } else {
                Err(resp.text)
            }
        },
    )
    .await;
    // The transport's own words vary with the moment the process died (refused, or closed
    // mid-request): the snapshot keeps the rest, and the reason's frame is checked here.
    let mut body = body;
    let reason = body.as_object_mut().and_then(|o| o.remove("error")).unwrap_or_default();
    let reason = reason.as_str().unwrap_or_default();
    assert!(
        reason.starts_with("workspace agent is not running (") && reason.ends_with("); it is being restarted"),
        "{reason}"
    );
    insta::assert_json_snapshot!("a2a_to_a_dead_workload", stable_json(&body));
    until_ok("the restarted workload to answer", Duration::from_secs(30), || async {
        let v = send("back?").await.body;
        if said(&v) == Some("echo: back?") {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;

    // The server exits (SIGTERM): its local workload, a child it alone could stop, stops with
    // it instead of heartbeating to nobody.
    let w = until_ok("the restarted workload's pid", Duration::from_secs(30), || async {
        let w = api.workspace(&id).await;
        if w["instance_id"].is_string() && w["instance_id"] != json!(pid) {
            Ok(w)
        } else {
            Err(format!("{}", w["instance_id"]))
        }
    })
    .await;
    let running = text(&w, "instance_id");
    assert!(std::path::Path::new(&format!("/proc/{running}")).exists());
    drop(server);
    until(
        "the local workload to stop with the server",
        Duration::from_secs(15),
        || async {
            let stat = std::fs::read_to_string(format!("/proc/{running}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for init to reap it.
            (stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z")).then_some(())
        },
    )
    .await;
}

/// EC2's way, with the real agent: it starts with only a one-time code (no token, no secret in
/// its environment), redeems it, registers with the delivered token and sees its secret; the
/// code then no longer works.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_with_only_a_bootstrap_code_redeems_it_and_registers() {
    use sha2::Digest;
    let Some(agent_bin) = reference_agent() else { return };
    let db = TestDb::new().await;
    let server = common::start_replica(&db.url, ADMIN, &[("MOLECULE_BACKEND", "none")]);
    let api = server.api();
    api.ready().await;
    let created = api.create(&json!({ "name": "cloud", "external": true })).await;
    let id: uuid::Uuid = text(&created, "id").parse().unwrap();
    // What the dispatcher does for EC2, on the same database.
    let services = molecule_service::Services::new(db.pool().clone(), Default::default()).unwrap();
    let env = [
        (
            "MOLECULE_WORKSPACE_TOKEN".to_owned(),
            text(&created, "auth_token").into(),
        ),
        ("CLOUD_KEY".to_owned(), "cloud-value".into()),
    ]
    .into();
    let files = [("prompts/seeded.md".to_owned(), b"from the bootstrap".to_vec())].into();
    let code = services.vault().stash_bootstrap(id, &env, &files).await.unwrap();
    let configs = tempfile::tempdir().unwrap();
    let mut agent = std::process::Command::new(&agent_bin)
        .env_clear()
        .env("WORKSPACE_ID", id.to_string())
        .env("PLATFORM_URL", &server.base)
        .env("MOLECULE_BOOTSTRAP_CODE", &code)
        .env("WORKSPACE_CONFIG_PATH", configs.path())
        .env("AGENT_PORT", common::free_port().to_string())
        .env("HEARTBEAT_INTERVAL_SECONDS", "1")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    until(
        "the bootstrapped agent to register",
        Duration::from_secs(30),
        || async { (api.workspace(&id.to_string()).await["status"] == "online").then_some(()) },
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(configs.path().join("prompts/seeded.md")).unwrap(),
        "from the bootstrap",
        "the files the code carried are in the agent's configs"
    );
    let answer = api
        .a2a(&id.to_string(), ADMIN, &user_message("secret-sha256:CLOUD_KEY"))
        .await
        .ok();
    let want: String = sha2::Sha256::digest(b"cloud-value")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(said(&answer), Some(want.as_str()), "{answer}");
    let again = api
        .call(
            reqwest::Method::POST,
            "/registry/bootstrap",
            None,
            Some(&json!({ "workspace_id": id, "code": code })),
        )
        .await;
    assert_eq!(again.status, 401, "a code works once: {}", again.text);
    let _ = agent.kill();
    let _ = agent.wait();
}
