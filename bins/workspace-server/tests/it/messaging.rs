//! Messaging across replicas: a delegation in flight on a replica that is SIGKILLed is
//! delivered again by the other (its lease runs out, the reaper takes the message back, a
//! heartbeat drains it), and its result lands once in the ledger and in the caller's inbox.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use molecule_testkit::agent::Mode;
use molecule_testkit::{StubAgent, TestDb, until, until_ok};
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    common::replica_ready(&http, &a, ADMIN).await;
    common::replica_ready(&http, &b, ADMIN).await;

    let create = |name: &str| {
        let http = http.clone();
        let base = a.base.clone();
        let name = name.to_owned();
        async move {
            let v: Value = http
                .post(format!("{base}/workspaces"))
                .bearer_auth(ADMIN)
                .json(&json!({ "name": name, "runtime": "external" }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (
                v["id"].as_str().unwrap().to_owned(),
                v["auth_token"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (caller, caller_token) = create("caller").await;
    let (callee, callee_token) = create("callee").await;
    // The callee's agent takes the first message and never answers it.
    let agent = StubAgent::start(Mode::Hang).unwrap();
    let reg = http
        .post(format!("{}/registry/register", b.base))
        .bearer_auth(&callee_token)
        .json(&json!({ "id": callee, "url": agent.url, "agent_card": { "name": "callee" } }))
        .send()
        .await
        .unwrap();
    assert!(reg.status().is_success(), "{}", reg.text().await.unwrap());

    let sent: Value = http
        .post(format!("{}/workspaces/{caller}/delegate", a.base))
        .bearer_auth(&caller_token)
        .json(&json!({ "target_id": callee, "task": "survive the crash" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let did = sent["delegation_id"].as_str().unwrap().to_owned();
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
            let hb = http
                .post(format!("{}/registry/heartbeat", b.base))
                .bearer_auth(&callee_token)
                .json(&json!({ "workspace_id": callee, "active_tasks": 0 }))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !hb.status().is_success() {
                return Err(format!("heartbeat: {}", hb.status()));
            }
            let list: Value = http
                .get(format!("{}/workspaces/{caller}/delegations", b.base))
                .bearer_auth(&caller_token)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let row = list
                .as_array()
                .and_then(|l| l.iter().find(|d| d["delegation_id"] == did.as_str()))
                .cloned()
                .ok_or("delegation not listed")?;
            if row["status"] == "completed" {
                Ok(row)
            } else {
                Err(format!("still {}", row["status"]))
            }
        },
    )
    .await;
    assert_eq!(done["response_preview"], "echo: survive the crash");

    // The result lands once: one delegate_result row, one inbox row, one DELEGATION_COMPLETE.
    let rows: Vec<Value> = until_ok("the caller's result rows", Duration::from_secs(10), || async {
        let activity: Value = http
            .get(format!("{}/workspaces/{caller}/activity?limit=100", b.base))
            .bearer_auth(&caller_token)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let rows: Vec<Value> = activity
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "delegate_result")
            .cloned()
            .collect();
        if rows.len() >= 2 {
            Ok(rows)
        } else {
            Err(format!("{} result rows", rows.len()))
        }
    })
    .await;
    assert_eq!(
        rows.iter().filter(|r| r["activity_type"] == "delegation").count(),
        1,
        "{rows:?}"
    );
    assert_eq!(
        rows.iter().filter(|r| r["activity_type"] == "a2a_receive").count(),
        1,
        "{rows:?}"
    );
    let events: Value = http
        .get(format!("{}/events/{caller}", b.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let complete: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "DELEGATION_COMPLETE")
        .collect();
    assert_eq!(complete.len(), 1, "{events}");
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    common::replica_ready(&http, &a, ADMIN).await;
    common::replica_ready(&http, &b, ADMIN).await;
    let mut ids = Vec::new();
    for name in ["caller", "callee"] {
        let v: Value = http
            .post(format!("{}/workspaces", a.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "name": name, "runtime": "external" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push((
            v["id"].as_str().unwrap().to_owned(),
            v["auth_token"].as_str().unwrap().to_owned(),
        ));
    }
    let ((caller, caller_token), (callee, callee_token)) = (ids[0].clone(), ids[1].clone());
    // Three lease lengths (2 s each) to answer.
    let agent = StubAgent::start(Mode::Slow(6000)).unwrap();
    http.post(format!("{}/registry/register", b.base))
        .bearer_auth(&callee_token)
        .json(&json!({ "id": callee, "url": agent.url, "agent_card": {} }))
        .send()
        .await
        .unwrap();
    let sent: Value = http
        .post(format!("{}/workspaces/{caller}/delegate", a.base))
        .bearer_auth(&caller_token)
        .json(&json!({ "target_id": callee, "task": "take your time" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let did = sent["delegation_id"].as_str().unwrap().to_owned();
    until_ok("the slow delegation to complete", Duration::from_secs(30), || async {
        // Heartbeats with a free slot keep offering the other replica a chance to drain.
        let _ = http
            .post(format!("{}/registry/heartbeat", b.base))
            .bearer_auth(&callee_token)
            .json(&json!({ "workspace_id": callee, "active_tasks": 0 }))
            .send()
            .await;
        let list: Value = http
            .get(format!("{}/workspaces/{caller}/delegations", b.base))
            .bearer_auth(&caller_token)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let status = list[0]["status"].clone();
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

/// With the local backend: hibernate, then a message answers 503 `waking` and wakes it; it
/// comes back online and the retried message is answered. A message to a workload that died
/// answers 503 `restarting` and the dispatcher brings it back.
#[tokio::test(flavor = "multi_thread")]
async fn hibernation_and_restart_through_messages() {
    let Some(agent_bin) = reference_agent() else { return };
    let db = TestDb::new().await;
    let data = tempfile::tempdir().unwrap();
    let server = common::start_replica(
        &db.url,
        ADMIN,
        &[
            ("MOLECULE_BACKEND", "local"),
            ("MOLECULE_LOCAL_AGENT_COMMAND", agent_bin.to_str().unwrap()),
            ("MOLECULE_DATA_DIR", data.path().to_str().unwrap()),
            ("MOLECULE_AGENT_ENV", "HEARTBEAT_INTERVAL_SECONDS=1"),
        ],
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    common::replica_ready(&http, &server, ADMIN).await;
    let created: Value = http
        .post(format!("{}/workspaces", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": "sleeper" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let get = || async {
        http.get(format!("{}/workspaces/{id}", server.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let online = || async {
        until_ok("the workspace to be online", Duration::from_secs(30), || async {
            let w = get().await;
            if w["status"] == "online" {
                Ok(w)
            } else {
                Err(format!("{}", w["status"]))
            }
        })
        .await
    };
    let send = |text: &str| {
        http.post(format!("{}/workspaces/{id}/a2a", server.base))
            .bearer_auth(ADMIN)
            .json(&json!({ "message": { "role": "user", "parts": [{ "kind": "text", "text": text }] } }))
            .send()
    };
    online().await;
    let answer: Value = send("before").await.unwrap().json().await.unwrap();
    assert_eq!(answer["result"]["parts"][0]["text"], "echo: before", "{answer}");

    // Hibernate: stopped, no URL.
    let resp = http
        .post(format!("{}/workspaces/{id}/hibernate", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let w = get().await;
    assert_eq!(
        (w["status"].as_str(), w["url"].as_str()),
        (Some("hibernated"), None),
        "{w}"
    );

    // A message wakes it: 503 waking with Retry-After, then online, then answered.
    let resp = send("wake up").await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "15");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["waking"], true, "{body}");
    online().await;
    // Online comes with the agent's registration, which may land before the dispatcher
    // records the new process: wait for both.
    let w = until_ok(
        "the woken workload's pid to be recorded",
        Duration::from_secs(30),
        || async {
            let w = get().await;
            if w["status"] == "online" && w["instance_id"].is_string() {
                Ok(w)
            } else {
                Err(format!("{} {}", w["status"], w["instance_id"]))
            }
        },
    )
    .await;
    let answer: Value = send("wake up").await.unwrap().json().await.unwrap();
    assert_eq!(answer["result"]["parts"][0]["text"], "echo: wake up", "{answer}");

    // The workload dies: the next message finds it dead, answers 503 restarting, and the
    // dispatcher brings it back.
    let pid = w["instance_id"].as_str().unwrap().to_owned();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    let resp = until_ok(
        "the message to find the workload dead",
        Duration::from_secs(10),
        || async {
            let resp = send("anyone?").await.map_err(|e| e.to_string())?;
            if resp.status() == 503 {
                Ok(resp)
            } else {
                Err(format!("{}", resp.status()))
            }
        },
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["restarting"], true, "{body}");
    until_ok("the restarted workload to answer", Duration::from_secs(30), || async {
        let resp = send("back?").await.map_err(|e| e.to_string())?;
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if v["result"]["parts"][0]["text"] == "echo: back?" {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    common::replica_ready(&http, &server, ADMIN).await;
    let created: Value = http
        .post(format!("{}/workspaces", server.base))
        .bearer_auth(ADMIN)
        .json(&json!({ "name": "cloud", "external": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
    // What the dispatcher does for EC2, on the same database.
    let services = molecule_service::Services::new(db.pool().clone(), Default::default()).unwrap();
    let env = [
        (
            "MOLECULE_WORKSPACE_TOKEN".to_owned(),
            created["auth_token"].as_str().unwrap().into(),
        ),
        ("CLOUD_KEY".to_owned(), "cloud-value".into()),
    ]
    .into();
    let files = [("prompts/seeded.md".to_owned(), b"from the bootstrap".to_vec())].into();
    let code = services.vault().stash_bootstrap(id, &env, &files).await.unwrap();
    let configs = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut agent = std::process::Command::new(&agent_bin)
        .env_clear()
        .env("WORKSPACE_ID", id.to_string())
        .env("PLATFORM_URL", &server.base)
        .env("MOLECULE_BOOTSTRAP_CODE", &code)
        .env("WORKSPACE_CONFIG_PATH", configs.path())
        .env("AGENT_PORT", port.to_string())
        .env("HEARTBEAT_INTERVAL_SECONDS", "1")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let online = until(
        "the bootstrapped agent to register",
        Duration::from_secs(30),
        || async {
            let w: Value = http
                .get(format!("{}/workspaces/{id}", server.base))
                .bearer_auth(ADMIN)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (w["status"] == "online").then_some(w)
        },
    )
    .await;
    assert_eq!(online["status"], "online");
    assert_eq!(
        std::fs::read_to_string(configs.path().join("prompts/seeded.md")).unwrap(),
        "from the bootstrap",
        "the files the code carried are in the agent's configs"
    );
    let answer: Value = http
        .post(format!("{}/workspaces/{id}/a2a", server.base))
        .bearer_auth(ADMIN)
        .json(
            &json!({ "message": { "role": "user", "parts": [{ "kind": "text", "text": "secret-sha256:CLOUD_KEY" }] } }),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let want: String = sha2::Sha256::digest(b"cloud-value")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(answer["result"]["parts"][0]["text"], want.as_str(), "{answer}");
    let again = http
        .post(format!("{}/registry/bootstrap", server.base))
        .json(&json!({ "workspace_id": id, "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401, "a code works once");
    let _ = agent.kill();
    let _ = agent.wait();
}
