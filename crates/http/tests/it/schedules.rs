//! Schedules through the HTTP API: create with the checks the original got wrong, list,
//! update, run now through the proxy to a real loopback agent (its history row), health
//! without a forged-header bypass, and a deleted workspace's schedules disabled.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use actix_web::test;
use molecule_http::{AppState, app};
use molecule_service::testing::workspace_under;
use molecule_testkit::agent::Mode;
use molecule_testkit::{StubAgent, TestDb, bearer, stable_json};
use serde_json::{Value, json};

const ADMIN: &str = "adm";

#[actix_web::test]
async fn schedules_are_checked_listed_fired_and_disabled_with_their_workspace() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    state.services.ledger().install().await.unwrap();
    let s = &state.services;
    let ws = workspace_under(s, "cronned", None).await;
    let other = workspace_under(s, "other", None).await;
    let agent = StubAgent::start(Mode::Echo).unwrap();
    let reg =
        serde_json::from_value(json!({ "id": ws.id, "url": agent.url, "agent_card": { "name": "stub" } })).unwrap();
    s.messaging().register(reg).await.unwrap();
    let app = test::init_service(app(state.clone())).await;
    let base = format!("/workspaces/{}/schedules", ws.id);
    let call = |req: test::TestRequest, token: &str| req.insert_header(bearer(token)).to_request();

    // Refusals name their field and say why; nothing is made.
    let mut refusals = Vec::new();
    for body in [
        json!({ "cron_expr": "every morning", "prompt": "x" }),
        json!({ "cron_expr": "0 9 * * *", "timezone": "Mars/Base", "prompt": "x" }),
        json!({ "cron_expr": "@daily", "prompt": "x" }),
        json!({ "cron_expr": "0 9 * * *" }),
        json!({ "cron_expr": "0 9 * * *", "prompt": "x", "when": "now" }),
    ] {
        let resp = test::call_service(
            &app,
            call(test::TestRequest::post().uri(&base).set_json(body), &ws.token),
        )
        .await;
        let status = resp.status().as_u16();
        let body: Value = test::read_body_json(resp).await;
        refusals.push(json!({ "status": status, "body": body }));
    }
    insta::assert_json_snapshot!("schedule_create_refused", stable_json(&json!(refusals)));

    // Two unnamed schedules: two generated names.
    let mut ids = Vec::new();
    for prompt in ["standup", "report"] {
        let resp = test::call_service(
            &app,
            call(
                test::TestRequest::post()
                    .uri(&base)
                    .set_json(json!({ "cron_expr": "0 9 * * MON-FRI", "timezone": "Europe/Berlin", "prompt": prompt })),
                &ws.token,
            ),
        )
        .await;
        assert_eq!(resp.status(), 201);
        let made: Value = test::read_body_json(resp).await;
        assert!(made["name"].as_str().unwrap().starts_with("schedule-"), "{made}");
        ids.push(made["id"].as_str().unwrap().to_owned());
    }
    let list: Value = test::call_and_read_body_json(&app, call(test::TestRequest::get().uri(&base), &ws.token)).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let mut first = list[0].clone();
    let name = first.as_object_mut().unwrap().remove("name").unwrap();
    assert!(name.as_str().unwrap().starts_with("schedule-"));
    insta::assert_json_snapshot!("schedule_as_listed", stable_json(&first));

    // Another workspace's token, and a schedule id through another workspace: refused / not found.
    let resp = test::call_service(&app, call(test::TestRequest::get().uri(&base), &other.token)).await;
    assert_eq!(resp.status(), 403);
    let resp = test::call_service(
        &app,
        call(
            test::TestRequest::delete().uri(&format!("/workspaces/{}/schedules/{}", other.id, ids[0])),
            &other.token,
        ),
    )
    .await;
    assert_eq!(resp.status(), 404);
    // Health: no credentials, or a forged X-Workspace-ID with another's token → refused.
    let health = format!("{base}/health");
    let resp = test::call_service(&app, test::TestRequest::get().uri(&health).to_request()).await;
    assert_eq!(resp.status(), 401);
    let resp = test::call_service(
        &app,
        test::TestRequest::get()
            .uri(&health)
            .insert_header(("X-Workspace-ID", ws.id.to_string()))
            .insert_header(bearer(&other.token))
            .to_request(),
    )
    .await;
    assert_eq!(
        resp.status(),
        403,
        "the original's bypass: X-Workspace-ID equal to the target"
    );
    let rows: Value = test::call_and_read_body_json(&app, call(test::TestRequest::get().uri(&health), &ws.token)).await;
    assert!(
        rows[0].get("prompt").is_none() && rows[0].get("cron_expr").is_none(),
        "{rows}"
    );

    // Run now: the agent gets the prompt; the run is counted and has its history row.
    let one = format!("{base}/{}", ids[0]);
    let fired: Value = test::call_and_read_body_json(
        &app,
        call(test::TestRequest::post().uri(&format!("{one}/run")), &ws.token),
    )
    .await;
    assert_eq!(
        (fired["status"].as_str(), fired["prompt"].as_str()),
        (Some("fired"), Some("standup"))
    );
    let runs: Value = molecule_testkit::until_ok("the manual run's history row", Duration::from_secs(10), || async {
        let runs: Value = test::call_and_read_body_json(
            &app,
            call(test::TestRequest::get().uri(&format!("{one}/history")), &ws.token),
        )
        .await;
        if runs.as_array().is_some_and(|r| !r.is_empty()) {
            Ok(runs)
        } else {
            Err(runs.to_string())
        }
    })
    .await;
    assert_eq!(runs[0]["status"], "ok", "{runs}");
    assert_eq!(runs[0]["request"]["manual"], true);
    let got = agent.received();
    assert!(
        got.iter()
            .any(|r| r.body["params"]["message"]["parts"][0]["text"] == "standup"),
        "{got:?}"
    );

    // Update: a bad pattern is refused naming it; disabling works.
    let resp = test::call_service(
        &app,
        call(
            test::TestRequest::patch()
                .uri(&one)
                .set_json(json!({ "cron_expr": "0 9 * *" })),
            &ws.token,
        ),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let resp = test::call_service(
        &app,
        call(
            test::TestRequest::patch()
                .uri(&one)
                .set_json(json!({ "enabled": false })),
            &ws.token,
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);

    // The admin's view: the disabled one is `disabled` (the original called it stale), the
    // other never ran; without the admin token, 401.
    let all: Value = test::call_and_read_body_json(
        &app,
        call(test::TestRequest::get().uri("/admin/schedules/health"), ADMIN),
    )
    .await;
    let status_of = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|r| r["schedule_id"] == id)
            .map(|r| (r["status"].as_str().unwrap().to_owned(), r["workspace_name"].clone()))
    };
    assert_eq!(status_of(&ids[0]), Some(("disabled".into(), json!("cronned"))), "{all}");
    assert_eq!(status_of(&ids[1]).unwrap().0, "never_run", "{all}");
    assert!(all[0]["stale_threshold_seconds"].as_i64().unwrap() > 0, "{all}");
    let resp = test::call_service(
        &app,
        call(test::TestRequest::get().uri("/admin/schedules/health"), &ws.token),
    )
    .await;
    assert_eq!(resp.status(), 401);

    // A heartbeat that declares the runtime's own scheduler is kept on the row (the platform
    // then leaves that workspace's slots to it); one without it clears it.
    let beat = |own: bool| {
        serde_json::from_value(json!({
            "workspace_id": ws.id, "active_tasks": 0,
            "runtime_metadata": { "capabilities": { "scheduler": own } },
        }))
        .unwrap()
    };
    s.messaging().heartbeat(beat(true)).await.unwrap();
    assert!(s.tree().runs_own_scheduler(ws.id).await.unwrap());
    s.messaging().heartbeat(beat(false)).await.unwrap();
    assert!(!s.tree().runs_own_scheduler(ws.id).await.unwrap());

    // The workspace is deleted: its schedules are disabled (nothing fires into it).
    s.delete_workspace(
        ws.id,
        molecule_tree::workspaces::Children::Cascade,
        molecule_api::workspaces::Removal::Removed,
    )
    .await
    .unwrap();
    let left = s.scheduler().schedules().list(ws.id).await.unwrap();
    assert!(left.iter().all(|x| !x.enabled), "{left:?}");
}

/// An org template's `schedules:` are created with the workspace; a re-import updates the
/// template's own and leaves one made through the API alone; a bad item refuses the import
/// before anything is written, naming it.
#[actix_web::test]
async fn org_templates_bring_their_schedules_and_re_imports_leave_runtime_ones_alone() {
    let db = TestDb::new().await;
    let state = AppState::for_tests(db.pool().clone(), Some(ADMIN.into())).unwrap();
    let app = test::init_service(app(state.clone())).await;
    let import = |yaml: String| {
        test::TestRequest::post()
            .uri("/org/import")
            .insert_header(bearer(ADMIN))
            .set_json(json!({ "template": yaml }))
            .to_request()
    };
    let org = |daily_cron: &str| {
        format!(
            "name: acme\nworkspaces:\n  - name: lead\n    runtime: external\n    schedules:\n      \
             - {{name: daily, cron_expr: '{daily_cron}', timezone: America/New_York, prompt: standup}}\n      \
             - {{name: manual, cron_expr: '0 12 * * *', prompt: from the template}}\n"
        )
    };
    let resp = test::call_service(&app, import(org("0 9 * * *"))).await;
    assert_eq!(resp.status(), 201);
    let imported: Value = test::read_body_json(resp).await;
    assert!(
        imported["workspaces"][0].get("ignored").is_none(),
        "schedules are no longer ignored: {imported}"
    );
    let lead: uuid::Uuid = imported["workspaces"][0]["id"].as_str().unwrap().parse().unwrap();
    let schedules = state.services.scheduler();
    let list = schedules.schedules().list(lead).await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        list.iter()
            .all(|s| s.source == molecule_domain::ScheduleSource::Template)
    );

    // The operator takes `manual` over through the API (delete, re-create: now `runtime`).
    let manual = list.iter().find(|s| s.name == "manual").unwrap();
    schedules.schedules().delete(lead, manual.id).await.unwrap();
    schedules
        .schedules()
        .create(
            lead,
            molecule_schedules::store::NewSchedule {
                name: Some("manual".into()),
                cron_expr: "30 8 * * *".into(),
                prompt: "the operator's own".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Re-import with a changed `daily`: updated; `manual` stays the operator's.
    let resp = test::call_service(&app, import(org("0 10 * * *"))).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let list = schedules.schedules().list(lead).await.unwrap();
    let by = |n: &str| list.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!(by("daily").cron_expr, "0 10 * * *");
    assert_eq!(
        (by("manual").cron_expr.as_str(), by("manual").prompt.as_str()),
        ("30 8 * * *", "the operator's own")
    );

    // A bad item: 400 naming it, nothing created.
    let bad = "name: broken\nworkspaces:\n  - name: other\n    runtime: external\n    schedules:\n      - {name: x, cron_expr: '61 * * * *', prompt: y}\n";
    let resp = test::call_service(&app, import(bad.into())).await;
    assert_eq!(resp.status(), 400);
    let body: Value = test::read_body_json(resp).await;
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("workspaces[0] (\"other\").schedules[0]: cron_expr:"),
        "{body}"
    );
    let names: Vec<String> = state
        .services
        .tree()
        .list_workspaces()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert!(!names.contains(&"other".to_owned()), "{names:?}");
}
