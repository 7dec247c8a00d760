//! Schedules across two replicas on one database: 200 slots due at once fire exactly once
//! each (counted at the agent by messageId), whichever replica's tick takes them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use molecule_testkit::agent::Mode;
use molecule_testkit::{StubAgent, TestDb, until_ok};
use serde_json::json;

use crate::common;

const ADMIN: &str = "schedules-admin";
/// Both replicas look for due slots every second.
const FAST: &[(&str, &str)] = &[("SCHEDULER_POLL_INTERVAL_SECONDS", "1")];

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_due_slots_on_two_replicas_fire_exactly_once_each() {
    let db = TestDb::new().await;
    let a = common::start_replica(&db.url, ADMIN, FAST);
    let b = common::start_replica(&db.url, ADMIN, FAST);
    let (api_a, api_b) = (a.api(), b.api());
    api_a.ready().await;
    api_b.ready().await;
    let agent = StubAgent::start(Mode::Echo).unwrap();
    // Ten agents' workspaces (one loopback agent serves them all), twenty schedules each,
    // created through both replicas.
    for w in 0..10 {
        let api = if w % 2 == 0 { &api_a } else { &api_b };
        let ws = api.external(&format!("cron-{w}")).await;
        api.register(&ws, &agent.url, &json!({ "name": format!("cron-{w}") }))
            .await;
        for i in 0..20 {
            api.post(
                &format!("/workspaces/{}/schedules", ws.id),
                &ws.token,
                &json!({ "name": format!("s{i}"), "cron_expr": "*/30 * * * *", "prompt": format!("tick {w}/{i}") }),
            )
            .await
            .expect(201);
        }
    }
    // Every slot due now (tests may write any table): both replicas race for them.
    {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_schedules SET next_run_at = now() - interval '1 second'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let counts = until_ok(
        "200 scheduled prompts at the agent",
        Duration::from_secs(60),
        || async {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for r in agent.received() {
                if let Some(id) = r.message_id().filter(|m| m.starts_with("cron-")) {
                    *counts.entry(id.to_owned()).or_default() += 1;
                }
            }
            if counts.len() >= 200 {
                Ok(counts)
            } else {
                Err(format!("{} so far", counts.len()))
            }
        },
    )
    .await;
    // A moment for a double to show up, were there one: both replicas tick again meanwhile.
    let ticks_before = |api: &molecule_testkit::Api| {
        let api = api.clone();
        async move { api.admin_get("/admin/liveness").await.body["subsystems"]["scheduler"]["ticks_run"].as_u64() }
    };
    let (ta, tb) = (ticks_before(&api_a).await, ticks_before(&api_b).await);
    until_ok(
        "two more scheduler ticks in the cluster",
        Duration::from_secs(20),
        || async {
            let (na, nb) = (ticks_before(&api_a).await, ticks_before(&api_b).await);
            let more = na.unwrap_or(0) + nb.unwrap_or(0);
            let before = ta.unwrap_or(0) + tb.unwrap_or(0);
            if more >= before + 2 {
                Ok(())
            } else {
                Err(format!("{more} ticks, {before} before"))
            }
        },
    )
    .await;
    let mut again: BTreeMap<String, usize> = BTreeMap::new();
    for r in agent.received() {
        if let Some(id) = r.message_id().filter(|m| m.starts_with("cron-")) {
            *again.entry(id.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), 200);
    assert_eq!(again.len(), 200, "no slot fired twice under another messageId");
    let doubled: Vec<_> = again.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "fired twice: {doubled:?}");
    // Each replica's liveness says how late its fires were (due → sent), over 200 in all.
    let mut fires = 0;
    for api in [&api_a, &api_b] {
        let live = api.admin_get("/admin/liveness").await.expect(200);
        let lateness = &live["subsystems"]["scheduler"]["last_report"]["lateness"];
        if let Some(n) = lateness["fires"].as_u64() {
            fires += n;
            let (p50, p99) = (
                lateness["p50_seconds"].as_f64().unwrap(),
                lateness["p99_seconds"].as_f64().unwrap(),
            );
            assert!(
                0.0 <= p50 && p50 <= p99 && p99 <= lateness["max_seconds"].as_f64().unwrap(),
                "{lateness}"
            );
        }
    }
    assert_eq!(fires, 200, "every fire's lateness is counted once");
    // Each run is counted once on its row.
    let list = api_a.admin_get("/admin/schedules/health").await.expect(200);
    let runs: Vec<&serde_json::Value> = list.as_array().unwrap().iter().collect();
    assert_eq!(runs.len(), 200);
    assert!(
        runs.iter().all(|r| r["status"] == "ok" && !r["last_run_at"].is_null()),
        "{list}"
    );
}

/// The acceptance form: the agent is one written with the official A2A Python SDK, which
/// logs every messageId it receives; 200 slots due at once across two replicas reach it
/// exactly once each.
#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_due_slots_reach_an_a2a_sdk_agent_exactly_once() {
    let Some(python) = crate::a2a_sdk::python() else { return };
    let db = TestDb::new().await;
    let a = common::start_replica(&db.url, ADMIN, FAST);
    let b = common::start_replica(&db.url, ADMIN, FAST);
    let (api_a, api_b) = (a.api(), b.api());
    api_a.ready().await;
    api_b.ready().await;
    let log = tempfile::NamedTempFile::new().unwrap();
    let port = molecule_testkit::free_port();
    let _peer = crate::a2a_sdk::Peer(
        std::process::Command::new(&python)
            .arg(crate::a2a_sdk::peer_script())
            .args(["serve", &port.to_string()])
            .arg(log.path())
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    molecule_testkit::until("the SDK agent to listen", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    let url = format!("http://127.0.0.1:{port}/");
    for w in 0..10 {
        let api = if w % 2 == 0 { &api_a } else { &api_b };
        let ws = api.external(&format!("sdk-cron-{w}")).await;
        api.register(&ws, &url, &json!({ "name": format!("sdk-cron-{w}") }))
            .await;
        for i in 0..20 {
            api.post(
                &format!("/workspaces/{}/schedules", ws.id),
                &ws.token,
                &json!({ "name": format!("s{i}"), "cron_expr": "*/30 * * * *", "prompt": format!("tick {w}/{i}") }),
            )
            .await
            .expect(201);
        }
    }
    {
        let mut conn = db.pool().get().await.unwrap();
        diesel::sql_query("UPDATE workspace_schedules SET next_run_at = now() - interval '1 second'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let received = || {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for id in std::fs::read_to_string(log.path()).unwrap_or_default().lines() {
            if id.starts_with("cron-") {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        counts
    };
    until_ok(
        "200 scheduled prompts at the SDK agent",
        Duration::from_secs(90),
        || async {
            let n = received().len();
            if n >= 200 { Ok(()) } else { Err(format!("{n} so far")) }
        },
    )
    .await;
    // Both replicas tick twice more: a double would show up meanwhile.
    let ticks = |api: &molecule_testkit::Api| {
        let api = api.clone();
        async move {
            api.admin_get("/admin/liveness").await.body["subsystems"]["scheduler"]["ticks_run"]
                .as_u64()
                .unwrap_or(0)
        }
    };
    let before = ticks(&api_a).await + ticks(&api_b).await;
    until_ok("two more scheduler ticks", Duration::from_secs(20), || async {
        let now = ticks(&api_a).await + ticks(&api_b).await;
        if now >= before + 2 {
            Ok(())
        } else {
            Err(format!("{now} ticks, {before} before"))
        }
    })
    .await;
    let counts = received();
    assert_eq!(counts.len(), 200, "every slot reached the agent");
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "received twice: {doubled:?}");
}
