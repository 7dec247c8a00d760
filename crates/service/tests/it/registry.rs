//! The original's register and heartbeat bodies, against a real database: the statuses and
//! events they produce, the TTL sweep, and removed workspaces staying removed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use molecule_api::workspaces::Removal;
use molecule_tree::workspaces::Children;
use std::time::Duration;

use molecule_api::registry::{Heartbeat, Register};
use molecule_api::workspaces::CreateWorkspace;
use molecule_service::{ServiceConfig, Services};
use molecule_testkit::TestDb;
use serde_json::json;
use uuid::Uuid;

fn services(db: &TestDb) -> Services {
    Services::new(
        db.pool().clone(),
        ServiceConfig {
            liveness_ttl: Duration::from_secs(180),
            ..ServiceConfig::default()
        },
    )
    .unwrap()
}

async fn workspace(s: &Services, name: &str) -> Uuid {
    s.create_workspace(CreateWorkspace {
        name: name.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .id
}

fn register_body(id: Uuid) -> Register {
    // The original agent's body (workspace/main.py): id, url, agent_card.
    serde_json::from_value(json!({
        "id": id,
        "url": "http://127.0.0.1:8000",
        "agent_card": { "name": "echo", "url": "http://127.0.0.1:8000", "skills": [] }
    }))
    .unwrap()
}

fn heartbeat_body(id: Uuid, error_rate: f64, runtime_state: &str) -> Heartbeat {
    // The original agent's heartbeat (workspace/heartbeat.py).
    serde_json::from_value(json!({
        "workspace_id": id,
        "error_rate": error_rate,
        "sample_error": if error_rate > 0.0 { "tool call failed" } else { "" },
        "active_tasks": 1,
        "uptime_seconds": 42,
        "current_task": "summarise the repo",
        "monthly_spend": 0,
        "runtime_state": runtime_state,
        "runtime_metadata": { "capabilities": { "heartbeat": true, "status_mgmt": false }, "idle_timeout_seconds": 300 }
    }))
    .unwrap()
}

async fn event_types(s: &Services, id: Uuid) -> Vec<String> {
    s.tree()
        .recent_events(Some(id), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn register_heartbeat_degrade_recover_and_expire() {
    let db = TestDb::new().await;
    let s = services(&db);
    let id = workspace(&s, "agent-a").await;
    assert_eq!(
        s.tree().get_workspace(id).await.unwrap().status.to_string(),
        "provisioning"
    );

    let reg = s.messaging().register(register_body(id)).await.unwrap();
    assert_eq!(
        (serde_json::to_value(reg.status).unwrap(), reg.delivery_mode.to_string()),
        (json!("registered"), "push".to_owned())
    );
    let ws = s.tree().get_workspace(id).await.unwrap();
    assert_eq!(ws.status.to_string(), "online");
    assert_eq!(ws.url.as_deref(), Some("http://127.0.0.1:8000"));

    assert_eq!(
        s.messaging()
            .heartbeat(heartbeat_body(id, 0.0, ""))
            .await
            .unwrap()
            .workspace_status
            .to_string(),
        "online"
    );
    let ws = s.tree().get_workspace(id).await.unwrap();
    assert_eq!(
        (ws.active_tasks, ws.uptime_seconds, ws.current_task.as_deref()),
        (1, 42, Some("summarise the repo"))
    );

    assert_eq!(
        s.messaging()
            .heartbeat(heartbeat_body(id, 0.6, ""))
            .await
            .unwrap()
            .workspace_status
            .to_string(),
        "degraded"
    );
    assert_eq!(
        s.tree().get_workspace(id).await.unwrap().last_sample_error.as_deref(),
        Some("tool call failed")
    );
    assert_eq!(
        s.messaging()
            .heartbeat(heartbeat_body(id, 0.3, ""))
            .await
            .unwrap()
            .workspace_status
            .to_string(),
        "degraded",
        "hysteresis"
    );
    assert_eq!(
        s.messaging()
            .heartbeat(heartbeat_body(id, 0.0, ""))
            .await
            .unwrap()
            .workspace_status
            .to_string(),
        "online"
    );
    assert_eq!(
        s.messaging()
            .heartbeat(heartbeat_body(id, 0.0, "wedged"))
            .await
            .unwrap()
            .workspace_status
            .to_string(),
        "degraded"
    );
    assert_eq!(
        s.messaging()
            .heartbeat(heartbeat_body(id, 0.0, ""))
            .await
            .unwrap()
            .workspace_status
            .to_string(),
        "online"
    );

    // Nothing is stale yet.
    assert_eq!(s.tree().liveness_sweep().await.unwrap(), json!({ "marked_offline": 0 }));
    // Age the heartbeat past the TTL, then sweep.
    db.execute_sql(&format!(
        "UPDATE workspaces SET last_heartbeat_at = now() - interval '181 seconds' WHERE id = '{id}'"
    ))
    .await;
    assert_eq!(s.tree().liveness_sweep().await.unwrap(), json!({ "marked_offline": 1 }));
    assert_eq!(s.tree().get_workspace(id).await.unwrap().status.to_string(), "offline");
    assert_eq!(
        s.tree().liveness_sweep().await.unwrap(),
        json!({ "marked_offline": 0 }),
        "idempotent"
    );

    // A heartbeat brings it back.
    assert_eq!(
        s.messaging()
            .heartbeat(heartbeat_body(id, 0.0, ""))
            .await
            .unwrap()
            .workspace_status
            .to_string(),
        "online"
    );

    let events = event_types(&s, id).await;
    assert_eq!(
        events,
        [
            // No TOKEN_MINTED: a provisioned workspace's tokens come from its provisions.
            "WORKSPACE_PROVISIONING",
            "WORKSPACE_ONLINE",
            "WORKSPACE_DEGRADED",
            "WORKSPACE_ONLINE",
            "WORKSPACE_DEGRADED",
            "WORKSPACE_ONLINE",
            "WORKSPACE_OFFLINE",
            "WORKSPACE_ONLINE",
        ],
        "persisted events (heartbeat and task updates are live-only)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_and_paused_workspaces_are_never_revived() {
    let db = TestDb::new().await;
    let s = services(&db);
    let id = workspace(&s, "gone").await;
    s.messaging().register(register_body(id)).await.unwrap();
    s.delete_workspace(id, Children::Refuse, Removal::Removed)
        .await
        .unwrap();
    let err = s.messaging().register(register_body(id)).await.unwrap_err();
    assert!(matches!(err, molecule_service::ServiceError::Conflict { .. }), "{err}");
    let err = s.messaging().heartbeat(heartbeat_body(id, 0.0, "")).await.unwrap_err();
    assert!(matches!(err, molecule_service::ServiceError::Conflict { .. }), "{err}");
    assert_eq!(s.tree().get_workspace(id).await.unwrap().status.to_string(), "removed");

    let paused = workspace(&s, "napping").await;
    db.execute_sql(&format!(
        "UPDATE workspaces SET status = 'paused' WHERE id = '{paused}'"
    ))
    .await;
    assert!(s.messaging().register(register_body(paused)).await.is_err());
    assert_eq!(
        s.messaging()
            .heartbeat(heartbeat_body(paused, 0.0, ""))
            .await
            .unwrap()
            .workspace_status
            .to_string(),
        "paused"
    );
    assert_eq!(
        s.tree().get_workspace(paused).await.unwrap().status.to_string(),
        "paused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn push_mode_needs_a_url_and_poll_mode_does_not() {
    let db = TestDb::new().await;
    let s = services(&db);
    let id = workspace(&s, "poller").await;
    let no_url: Register = serde_json::from_value(json!({ "id": id, "agent_card": { "name": "p" } })).unwrap();
    let err = s.messaging().register(no_url.clone()).await.unwrap_err().to_string();
    assert!(err.contains("url"), "{err}");
    let poll = Register {
        delivery_mode: Some("poll".into()),
        ..no_url
    };
    assert_eq!(
        s.messaging().register(poll).await.unwrap().delivery_mode.to_string(),
        "poll"
    );
    let bad = Register {
        url: Some("http://169.254.169.254/".into()),
        ..register_body(id)
    };
    assert!(s.messaging().register(bad).await.is_err(), "metadata address refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_needs_a_reason_which_is_kept_and_announced() {
    let db = TestDb::new().await;
    let s = services(&db);
    let id = workspace(&s, "doomed").await;
    let reason = molecule_domain::FailureReason::new("image pull failed: no such image").unwrap();
    assert!(
        s.tree()
            .mark_failed(id, reason, json!({ "source": "test" }))
            .await
            .unwrap()
    );
    let ws = s.tree().get_workspace(id).await.unwrap();
    assert_eq!(ws.status.to_string(), "failed");
    assert_eq!(
        ws.last_sample_error.as_deref(),
        Some("image pull failed: no such image")
    );
    let events = s.tree().recent_events(Some(id), 10).await.unwrap();
    let failed = events.iter().find(|e| e.event == "WORKSPACE_PROVISION_FAILED").unwrap();
    assert_eq!(failed.payload["error"], "image pull failed: no such image");
    assert_eq!(failed.payload["source"], "test");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_heartbeat_keeps_the_callees_delegations_alive() {
    use molecule_ledger::{NewDelegation, Update};
    let db = TestDb::new().await;
    let s = services(&db);
    s.ledger().install().await.unwrap();
    let callee = workspace(&s, "callee").await;
    s.messaging().register(register_body(callee)).await.unwrap();
    s.ledger()
        .insert(NewDelegation {
            delegation_id: "d".into(),
            caller_id: Uuid::new_v4(),
            callee_id: callee,
            task: "t".into(),
            idempotency_key: None,
            deadline: None,
        })
        .await
        .unwrap();
    s.ledger().set_status("d", Update::InProgress).await.unwrap();
    db.execute_sql("UPDATE delegations SET status = 'stuck', last_heartbeat = now() - interval '1 hour'")
        .await;
    s.messaging().heartbeat(heartbeat_body(callee, 0.0, "")).await.unwrap();
    let d = s.ledger().get("d").await.unwrap().unwrap();
    assert_eq!(
        d.status.to_string(),
        "in_progress",
        "the callee's heartbeat revives its stuck delegation"
    );
    assert!(d.last_heartbeat.unwrap() > time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
}

/// The create token contract: an external workspace's agent gets its first token in the create
/// answer, and it works; a provisioned workspace's answer carries none (its workload gets a
/// fresh one at every provision, which revokes the rest) and says where to mint one, and no
/// token is left behind for it.
#[tokio::test]
async fn create_shows_a_token_only_where_no_provision_will_revoke_it() {
    let db = TestDb::new().await;
    let s = services(&db);
    let external = s
        .create_workspace(CreateWorkspace {
            name: "outside".into(),
            runtime: Some("external".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let token = external.auth_token.expect("an external workspace's first token");
    assert_eq!(external.connection.unwrap()["auth_token"], token.as_str());
    assert_eq!(
        s.tree()
            .authorize_workspace(&token, external.id)
            .await
            .unwrap()
            .workspace_id,
        external.id
    );
    assert!(external.auth_token_note.is_none());

    let provisioned = s
        .create_workspace(CreateWorkspace {
            name: "inside".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(provisioned.auth_token.is_none());
    let note = provisioned.auth_token_note.unwrap();
    assert!(
        note.contains(&format!("POST /workspaces/{}/tokens", provisioned.id)),
        "{note}"
    );
    assert!(s.tree().list_tokens(provisioned.id).await.unwrap().is_empty());
    let minted = s.tree().mint_token(provisioned.id).await.unwrap();
    assert!(
        s.tree()
            .authorize_workspace(&minted.auth_token, provisioned.id)
            .await
            .is_ok()
    );
}

/// External credentials: rotate revokes the old token and answers a working new one with the
/// full payload (absolute endpoints from the platform URL, trailing `/` trimmed); the
/// connection view shows the same payload without a token; neither is for a provisioned
/// workspace (400 pointing at restart), and restarting an external one is a 400 pointing at
/// rotate (a restart used to clear its URL).
#[tokio::test]
async fn external_credentials_rotate_and_show_and_restart_is_refused() {
    let db = TestDb::new().await;
    let s = Services::new(
        db.pool().clone(),
        ServiceConfig {
            platform_url: "https://molecule.example.com/".into(),
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    let created = s
        .create_workspace(CreateWorkspace {
            name: "outside".into(),
            external: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let (id, first) = (created.id, created.auth_token.unwrap());
    let at_create = created.connection.unwrap();
    assert_eq!(
        at_create["registry_endpoint"],
        "https://molecule.example.com/registry/register"
    );
    assert_eq!(
        at_create["heartbeat_endpoint"],
        "https://molecule.example.com/registry/heartbeat"
    );
    assert_eq!(at_create["platform_url"], "https://molecule.example.com");

    let rotated = s.tree().rotate_external(id).await.unwrap();
    let second = rotated["auth_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert!(
        s.tree().authorize_workspace(&first, id).await.is_err(),
        "the old token is refused at once"
    );
    assert!(s.tree().authorize_workspace(&second, id).await.is_ok());
    assert!(rotated["curl_register_template"].as_str().unwrap().contains(&second));
    assert!(
        rotated["python_snippet"]
            .as_str()
            .unwrap()
            .contains(&format!("WORKSPACE_ID = \"{id}\""))
    );
    // The same shape as create's, token aside.
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&rotated), keys(&at_create));
    assert!(
        event_types(&s, id)
            .await
            .contains(&"EXTERNAL_CREDENTIALS_ROTATED".to_owned())
    );

    let shown = s.tree().external_connection(id).await.unwrap();
    assert_eq!(shown["auth_token"], "");
    assert!(
        shown["curl_register_template"]
            .as_str()
            .unwrap()
            .contains("<ROTATE_TO_REVEAL_TOKEN>")
    );
    assert!(
        s.tree().authorize_workspace(&second, id).await.is_ok(),
        "showing revokes nothing"
    );
    // Every runtime's snippet: the absolute MCP endpoint, the token where shown and the
    // placeholder otherwise; the shell ones parse and refuse to run with the placeholder;
    // none appends to a config file or asks for MOLECULE_ORG_ID.
    let snippets = [
        "universal_mcp_snippet",
        "claude_code_channel_snippet",
        "codex_snippet",
        "hermes_channel_snippet",
        "openclaw_snippet",
    ];
    let mcp = format!("https://molecule.example.com/workspaces/{id}/mcp");
    assert_eq!(rotated["mcp_endpoint"], mcp.as_str());
    for name in snippets {
        let with = rotated[name].as_str().unwrap();
        let without = shown[name].as_str().unwrap();
        assert!(with.contains(&mcp) && with.contains(&second), "{name}: {with}");
        assert!(
            without.contains("<ROTATE_TO_REVEAL_TOKEN>") && !without.contains(&second),
            "{name}"
        );
        assert!(
            !with.contains("MOLECULE_ORG_ID") && !with.contains(">>"),
            "{name}: {with}"
        );
    }
    let config: serde_json::Value = serde_json::from_str(rotated["universal_mcp_snippet"].as_str().unwrap()).unwrap();
    assert_eq!(config["mcpServers"]["molecule"]["url"], mcp.as_str());
    for name in ["claude_code_channel_snippet", "codex_snippet", "openclaw_snippet"] {
        let check = std::process::Command::new("bash")
            .args(["-n", "-c", shown[name].as_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        // With the placeholder the guard stops it before anything runs.
        let run = std::process::Command::new("/bin/bash")
            .args(["-c", shown[name].as_str().unwrap()])
            .env("PATH", "/nonexistent")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&run.stderr);
        assert!(
            !run.status.success() && said.contains("rotate the credentials first"),
            "{name}: {said}"
        );
    }

    let e = s.tree().restart_workspace(id, false).await.unwrap_err().to_string();
    assert!(e.contains("/external/rotate"), "{e}");

    let inside = workspace(&s, "inside").await;
    for e in [
        s.tree().rotate_external(inside).await.unwrap_err(),
        s.tree().external_connection(inside).await.unwrap_err(),
    ] {
        assert!(matches!(e, molecule_service::ServiceError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("/restart"), "{e}");
    }
    let e = s.tree().rotate_external(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(e, molecule_service::ServiceError::NotFound(_)), "{e}");
}

/// The phantom-busy sweep clears reported work that no activity backs for 10 minutes, and
/// leaves a workspace with recent activity (or none reported) alone.
#[tokio::test]
async fn the_phantom_busy_sweep_clears_only_unbacked_work() {
    let db = TestDb::new().await;
    let s = services(&db);
    let phantom = workspace(&s, "phantom").await;
    let working = workspace(&s, "working").await;
    let idle = workspace(&s, "idle").await;
    db.execute_sql(&format!(
        "UPDATE workspaces SET active_tasks = 2, current_task = 'stuck' WHERE id IN ('{phantom}', '{working}')"
    ))
    .await;
    // Activity long ago for the phantom, just now for the working one.
    db.execute_sql(&format!(
        "INSERT INTO activity_logs (workspace_id, activity_type, status, created_at)
         VALUES ('{phantom}', 'agent_log', 'ok', now() - interval '11 minutes'),
                ('{working}', 'agent_log', 'ok', now() - interval '1 minute')"
    ))
    .await;
    assert_eq!(s.tree().sweep_phantom_busy().await.unwrap(), vec![phantom]);
    assert_eq!(s.tree().sweep_phantom_busy().await.unwrap(), Vec::<Uuid>::new(), "once");
    let w = s.tree().get_workspace(phantom).await.unwrap();
    assert_eq!((w.active_tasks, w.current_task.as_deref()), (0, None));
    let w = s.tree().get_workspace(working).await.unwrap();
    assert_eq!((w.active_tasks, w.current_task.as_deref()), (2, Some("stuck")));
    assert_eq!(s.tree().get_workspace(idle).await.unwrap().active_tasks, 0);
}
