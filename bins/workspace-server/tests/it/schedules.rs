//! Schedules across two replicas on one database: 200 slots due at once fire exactly once
//! each (counted at the agent by messageId), whichever replica's tick takes them, and still
//! when the replica firing them is killed mid-tick; a busy agent's prompt waits in its queue
//! until a heartbeat says it is free.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use molecule_testkit::agent::Mode;
use molecule_testkit::{StubAgent, TestDb, until_ok};
use serde_json::{Value, json};

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
    // Every slot due now: both replicas race for them.
    every_slot_due_now(&db).await;
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

/// A busy agent (it answers 503) is sent its scheduled prompt through the proxy's durable
/// queue: the run is recorded `ok` and `queued`, and when a heartbeat says a slot is free the
/// prompt reaches the agent, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_agent_gets_its_scheduled_prompt_from_the_queue_once_it_frees() {
    let db = TestDb::new().await;
    let server = common::start_replica(&db.url, ADMIN, FAST);
    let api = server.api();
    api.ready().await;
    let agent = StubAgent::start(Mode::Busy).unwrap();
    let ws = api.external("cron-busy").await;
    api.register(&ws, &agent.url, &json!({ "name": "cron-busy" })).await;
    let made = api
        .post(
            &format!("/workspaces/{}/schedules", ws.id),
            &ws.token,
            &json!({ "name": "nightly", "cron_expr": "0 3 * * *", "prompt": "the nightly report" }),
        )
        .await
        .expect(201);
    every_slot_due_now(&db).await;
    let history = format!(
        "/workspaces/{}/schedules/{}/history",
        ws.id,
        made["id"].as_str().unwrap()
    );
    let run = until_ok("the run recorded as queued", Duration::from_secs(30), || async {
        let rows = api.get(&history, &ws.token).await.expect(200);
        match rows.as_array().and_then(|r| <[Value]>::first(r)).cloned() {
            Some(row) => Ok(row),
            None => Err("no run yet".to_owned()),
        }
    })
    .await;
    assert_eq!(run["status"], "ok", "{run}");
    assert_eq!(run["request"]["queued"], true, "{run}");
    let cron = |agent: &StubAgent| -> Vec<String> {
        agent
            .received()
            .iter()
            .filter_map(|r| r.message_id().filter(|m| m.starts_with("cron-")).map(str::to_owned))
            .collect()
    };
    assert!(cron(&agent).is_empty(), "a busy agent took nothing");
    // The agent frees up and says so in a heartbeat: the queue delivers the prompt.
    agent.set(Mode::Echo);
    api.heartbeat(&ws, 0).await.expect(200);
    until_ok("the queued prompt at the agent", Duration::from_secs(30), || async {
        let got = cron(&agent);
        if got.is_empty() {
            Err("not yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    // More heartbeats and scheduler ticks change nothing: it arrived once.
    for _ in 0..3 {
        api.heartbeat(&ws, 0).await.expect(200);
    }
    two_more_ticks(&[&api]).await;
    let got = cron(&agent);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        agent
            .received()
            .iter()
            .find(|r| r.message_id() == Some(got[0].as_str()))
            .and_then(|r| r.text()),
        Some("the nightly report")
    );
}

/// Ten workspaces served by `url`, twenty schedules each, made through both replicas; then
/// every slot due now (tests may write any table).
async fn two_hundred_due(db: &TestDb, apis: [&molecule_testkit::Api; 2], url: &str, prefix: &str) {
    for w in 0..10 {
        let api = apis[w % 2];
        let ws = api.external(&format!("{prefix}-{w}")).await;
        api.register(&ws, url, &json!({ "name": format!("{prefix}-{w}") }))
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
    every_slot_due_now(db).await;
}

/// Every schedule's next slot a second ago (tests may write any table).
async fn every_slot_due_now(db: &TestDb) {
    let mut conn = db.pool().get().await.unwrap();
    diesel::sql_query("UPDATE workspace_schedules SET next_run_at = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .unwrap();
}

/// The scheduler ticks these replicas have run between them.
async fn ticks(apis: &[&molecule_testkit::Api]) -> u64 {
    let mut n = 0;
    for api in apis {
        n += api.admin_get("/admin/liveness").await.body["subsystems"]["scheduler"]["ticks_run"]
            .as_u64()
            .unwrap_or(0);
    }
    n
}

/// Waits for two more scheduler ticks among `apis`: a double would show up meanwhile.
async fn two_more_ticks(apis: &[&molecule_testkit::Api]) {
    let before = ticks(apis).await;
    until_ok("two more scheduler ticks", Duration::from_secs(20), || async {
        let now = ticks(apis).await;
        if now >= before + 2 {
            Ok(())
        } else {
            Err(format!("{now} ticks, {before} before"))
        }
    })
    .await;
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
    let agent = crate::a2a_sdk::SdkAgent::start(&python, None).await;
    two_hundred_due(&db, [&api_a, &api_b], &agent.url, "sdk-cron").await;
    until_ok(
        "200 scheduled prompts at the SDK agent",
        Duration::from_secs(90),
        || async {
            let n = agent.received("cron-").len();
            if n >= 200 { Ok(()) } else { Err(format!("{n} so far")) }
        },
    )
    .await;
    two_more_ticks(&[&api_a, &api_b]).await;
    let counts = agent.received("cron-");
    assert_eq!(counts.len(), 200, "every slot reached the agent");
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "received twice: {doubled:?}");
}

/// Both replicas fire (each its own claims), ten prompts each held unanswered at the agent
/// and forty more claimed behind them, when one replica is SIGKILLed mid-tick. The other goes
/// on with the rest, and takes the dead one's slots when their lease runs out: its forty are
/// fired, its ten are recorded as sent and not sent again. Every slot reaches the SDK agent
/// exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn killing_a_firing_replica_mid_tick_loses_no_slot_and_doubles_none() {
    let Some(python) = crate::a2a_sdk::python() else { return };
    let db = TestDb::new().await;
    let env: &[(&str, &str)] = &[
        ("SCHEDULER_POLL_INTERVAL_SECONDS", "1"),
        ("SCHEDULER_FIRE_LEASE_SECONDS", "3"),
    ];
    let mut a = common::start_replica(&db.url, ADMIN, env);
    let b = common::start_replica(&db.url, ADMIN, env);
    let (api_a, api_b) = (a.api(), b.api());
    api_a.ready().await;
    api_b.ready().await;
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    std::fs::write(&gate, b"closed").unwrap();
    let agent = crate::a2a_sdk::SdkAgent::start(&python, Some(&gate)).await;
    two_hundred_due(&db, [&api_a, &api_b], &agent.url, "kill-cron").await;

    // Each replica's tick has claimed a batch and sent as many prompts as it fires at once;
    // they wait at the gate.
    until_ok("twenty prompts held at the agent", Duration::from_secs(30), || async {
        let n = agent.received("cron-").len();
        if n >= 20 { Ok(()) } else { Err(format!("{n} so far")) }
    })
    .await;
    for api in [&api_a, &api_b] {
        let live = api.admin_get("/admin/liveness").await.expect(200);
        assert!(
            !live["subsystems"]["scheduler"]["running_since"].is_null(),
            "both replicas are mid-tick: {live}"
        );
    }
    let survivor = &api_b;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    assert_eq!(
        agent.received("cron-").len(),
        20,
        "nothing else was sent while the gate held"
    );
    std::fs::remove_file(&gate).unwrap();

    // The survivor fires the 100 nobody held and its own 50, then the dead replica's 50 once
    // their lease runs out: every slot recorded once.
    until_ok("every slot recorded", Duration::from_secs(90), || async {
        let mut conn = db.pool().get().await.unwrap();
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let left: N = diesel::sql_query(
            "SELECT count(*) AS n FROM workspace_schedules WHERE run_count = 0 OR firing_slot IS NOT NULL",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        if left.n == 0 {
            Ok(())
        } else {
            Err(format!("{} not recorded yet", left.n))
        }
    })
    .await;
    two_more_ticks(&[survivor]).await;
    let counts = agent.received("cron-");
    assert_eq!(counts.len(), 200, "every slot reached the agent");
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "received twice: {doubled:?}");
    // Each slot ran once; the ten the dead replica had sent say so, and nothing else failed.
    let health = survivor.admin_get("/admin/schedules/health").await.expect(200);
    let rows = health.as_array().unwrap();
    assert_eq!(rows.len(), 200);
    let mut conn = db.pool().get().await.unwrap();
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        run_count: i32,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        last_status: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        last_error: Option<String>,
    }
    let rows: Vec<Row> = diesel::sql_query("SELECT run_count, last_status, last_error FROM workspace_schedules")
        .load(&mut conn)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| r.run_count == 1), "each slot ran once");
    let orphans: Vec<&Row> = rows
        .iter()
        .filter(|r| r.last_status.as_deref() == Some("error"))
        .collect();
    assert_eq!(orphans.len(), 10, "the ten in flight at the kill");
    assert!(
        orphans
            .iter()
            .all(|r| r.last_error.as_deref().is_some_and(|e| e.contains("not sent again"))),
        "{:?}",
        orphans.iter().map(|r| &r.last_error).collect::<Vec<_>>()
    );
}
