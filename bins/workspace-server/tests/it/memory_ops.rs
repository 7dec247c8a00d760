//! Memory's operator paths against a running workspace-server and a real
//! memory-plugin-postgres: the export/import round trip of 10 000 memories over 50 namespaces
//! with the plugin calls counted (from the server's own `/metrics`), editing over HTTP,
//! `initial_memories` on create and org import, and the backfill command run twice over a
//! table shaped like the original's `agent_memories`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report
#![allow(clippy::disallowed_methods)] // the backfill command is run with the test process PATH

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use molecule_memory_contract::client::{ClientConfig, PluginClient};
use molecule_memory_contract::{MemoryWrite, NamespaceKind, NamespaceUpsert};
use serde_json::{Value, json};

use molecule_testkit::stable_json;

use crate::mcp::{ADMIN, World, Ws, world};

impl World {
    fn plugin(&self) -> PluginClient {
        PluginClient::new(ClientConfig {
            base_url: self.plugin_url.clone(),
            timeout: Duration::from_secs(10),
            ..ClientConfig::default()
        })
        .unwrap()
    }

    /// `molecule_memory_plugin_calls_total{op=…}` summed over outcomes, from `/metrics`.
    async fn plugin_calls(&self, op: &str) -> u64 {
        let text = self.api.admin_get("/metrics").await.text;
        text.lines()
            .filter(|l| l.starts_with("molecule_memory_plugin_calls_total{") && l.contains(&format!("op=\"{op}\"")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
            .sum()
    }

    async fn export(&self) -> Vec<Value> {
        let list = self.api.admin_get("/admin/memories/export").await.expect(200);
        serde_json::from_value(list).unwrap()
    }

    async fn import(&self, query: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .api
            .http()
            .post(self.api.url(&format!("/admin/memories/import?{query}")))
            .bearer_auth(ADMIN)
            // 10k memories are 10k plugin commits in one request: past the client's 30 s on
            // a loaded CI machine (one run took longer), so this call gets its own bound.
            .timeout(Duration::from_secs(300))
            .json(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }
}

fn entry_key(v: &Value) -> (String, String, String) {
    (
        v["id"].as_str().unwrap().to_owned(),
        v["namespace"].as_str().unwrap().to_owned(),
        v["content"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn export_and_import_round_trip_ten_thousand_memories_over_fifty_namespaces() {
    let w = world(true).await;
    // A root and 47 children: 48 workspace namespaces, the root's team and its org = 50.
    let root = w.create("root", None).await;
    let mut children = Vec::new();
    for i in 0..47 {
        children.push(w.create(&format!("child-{i}"), Some(&root)).await);
    }
    let mut namespaces: Vec<String> = children.iter().map(|c| format!("workspace:{}", c.id)).collect();
    namespaces.extend([
        format!("workspace:{}", root.id),
        format!("team:{}", root.id),
        format!("org:{}", root.id),
    ]);
    assert_eq!(namespaces.len(), 50);
    let plugin = w.plugin();
    for ns in &namespaces {
        plugin
            .upsert_namespace(
                ns,
                &NamespaceUpsert {
                    kind: match ns.split(':').next().unwrap() {
                        "workspace" => NamespaceKind::Workspace,
                        "team" => NamespaceKind::Team,
                        _ => NamespaceKind::Org,
                    },
                    expires_at: None,
                    metadata: None,
                },
            )
            .await
            .unwrap();
    }
    let writes: Vec<(String, MemoryWrite)> = (0..10_000)
        .map(|i| {
            let mut m = MemoryWrite::fact(format!("memory number {i} about deploys and reviews"));
            m.pin = i % 97 == 0;
            (namespaces[i % 50].clone(), m)
        })
        .collect();
    futures_util::stream::iter(writes)
        .for_each_concurrent(16, |(ns, m)| {
            let plugin = &plugin;
            async move {
                plugin.commit(&ns, &m).await.unwrap();
            }
        })
        .await;
    let before = w.plugin_rows().await;
    assert_eq!(before.len(), 10_000);

    // Export: 200 per namespace in pages of 100 is three searches each (the third is empty).
    let searches = w.plugin_calls("search").await;
    let exported = w.export().await;
    let spent = w.plugin_calls("search").await - searches;
    assert_eq!(exported.len(), 10_000);
    assert_eq!(spent, 150, "one plugin search per page per namespace");
    let keys: BTreeSet<_> = exported.iter().map(entry_key).collect();
    assert_eq!(keys, before, "the export is exactly the plugin's rows");
    let child0 = exported
        .iter()
        .find(|e| e["namespace"] == format!("workspace:{}", children[0].id))
        .unwrap();
    assert_eq!(child0["workspace_name"], "child-0");
    assert_eq!(child0["scope"], "LOCAL");

    // Into an emptied plugin: everything comes back, ids and namespaces included.
    for ns in &namespaces {
        plugin.delete_namespace(ns).await.unwrap();
    }
    assert!(w.plugin_rows().await.is_empty());
    let body = Value::Array(exported.clone());
    let (status, dry) = w.import("dry_run=true", &body).await;
    assert_eq!(
        (status, dry["imported"].as_u64(), dry["dry_run"].as_bool()),
        (200, Some(10_000), Some(true))
    );
    assert!(w.plugin_rows().await.is_empty(), "a dry run writes nothing");
    let commits = w.plugin_calls("commit").await;
    let (status, report) = w.import("", &body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["imported"], 10_000, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["namespaces"], 50);
    // One commit per memory, and one more per namespace for the 404 that creates it.
    assert_eq!(w.plugin_calls("commit").await - commits, 10_050);
    assert_eq!(w.plugin_rows().await, before, "counts and contents are equal");

    // Idempotent by id: again is all skipped, or all overwritten when asked; still one copy.
    let (_, again) = w.import("on_conflict=skip", &body).await;
    assert_eq!(
        (again["skipped"].as_u64(), again["imported"].as_u64()),
        (Some(10_000), Some(0))
    );
    let (_, over) = w.import("on_conflict=overwrite", &body).await;
    assert_eq!(over["overwritten"], 10_000);
    assert_eq!(w.plugin_rows().await.len(), 10_000);
    let again: BTreeSet<_> = w.export().await.iter().map(entry_key).collect();
    assert_eq!(again, before);

    // Bad input: named, and nothing half-written.
    let (status, e) = w.import("on_conflict=merge", &body).await;
    assert_eq!(status, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("on_conflict"), "{e}");
    let (status, _) = w.import("", &json!({"not": "an array"})).await;
    assert_eq!(status, 400);
    let mixed = json!([
        {"content": "the original's shape", "scope": "TEAM", "namespace": "general", "workspace_name": "child-3"},
        {"content": "", "namespace": format!("workspace:{}", root.id)},
        {"content": "AWS key AKIAABCDEFGHIJKLMNOP here", "namespace": format!("workspace:{}", root.id), "colour": "red"},
        {"content": "AWS key AKIAABCDEFGHIJKLMNOP here", "namespace": format!("workspace:{}", root.id)}
    ]);
    let (status, r) = w.import("", &mixed).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (r["imported"].as_u64(), r["errors"].as_u64()),
        (Some(2), Some(2)),
        "{r}"
    );
    assert_eq!(r["error_details"][0]["index"], 1);
    assert!(
        r["error_details"][1]["error"].as_str().unwrap().contains("colour"),
        "{r}"
    );
    assert_eq!(r["redactions"]["AWS_ACCESS_KEY_ID"], 1, "{r}");
    let rows = w.plugin_rows().await;
    assert!(
        rows.iter()
            .any(|(_, ns, c)| ns == &format!("team:{}", root.id) && c == "the original's shape")
    );
    assert!(
        rows.iter().all(|(_, _, c)| !c.contains("AKIA")),
        "no secret reaches the plugin"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_is_edited_over_http_and_redacted_again() {
    let w = world(true).await;
    let ws = w.create("editor", None).await;
    let other = w.create("other", None).await;
    let stored = w
        .api
        .post(
            &format!("/workspaces/{}/memories", ws.id),
            &ws.token,
            &json!({"content": "the build takes ten minutes", "scope": "LOCAL"}),
        )
        .await
        .expect(201);
    let id = stored["id"].as_str().unwrap();
    let patch = |who: &Ws, memory: &str, body: Value| {
        let (api, who, path) = (&w.api, who.clone(), format!("/workspaces/{}/memories/{memory}", who.id));
        async move {
            let r = api.patch(&path, &who.token, &body).await;
            (r.status, r.body)
        }
    };
    let (s, same) = patch(&ws, id, json!({"content": "the build takes ten minutes"})).await;
    assert_eq!((s, same["changed"].as_bool()), (200, Some(false)), "{same}");
    let (s, changed) = patch(
        &ws,
        id,
        json!({"content": "the build takes 4 min; token ghp_abcdefghijklmnopqrstuvwx"}),
    )
    .await;
    assert_eq!((s, changed["changed"].as_bool()), (200, Some(true)), "{changed}");
    let rows = w.plugin_rows().await;
    let (_, _, content) = rows.iter().find(|(rid, _, _)| rid == id).unwrap();
    assert!(
        content.starts_with("the build takes 4 min") && !content.contains("ghp_"),
        "{content}"
    );
    assert_eq!(rows.len(), 1, "an edit is the same memory");
    let (s, e) = patch(&ws, id, json!({"content": "  "})).await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = patch(&ws, id, json!({"content": "x", "pin": true})).await;
    assert_eq!(s, 400, "an unknown field is refused, not dropped");
    // Another workspace cannot reach it: to it, it does not exist.
    let (s, _) = patch(&other, id, json!({"content": "mine now"})).await;
    assert_eq!(s, 404);
    let (s, _) = patch(&ws, &uuid::Uuid::new_v4().to_string(), json!({"content": "x"})).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn initial_memories_reach_the_plugin_on_create_and_org_import() {
    let w = world(true).await;
    let root = w.create("parent", None).await;
    let create = |body: Value| {
        let api = &w.api;
        async move {
            let r = api.admin_post("/workspaces", &body).await;
            (r.status, r.body)
        }
    };
    let (s, made) = create(json!({
        "name": "seeded", "runtime": "external", "parent_id": root.id,
        "initial_memories": [
            {"content": "prefer small pull requests"},
            {"content": "the team ships on tuesdays", "scope": "team"}
        ]
    }))
    .await;
    assert_eq!(s, 201, "{made}");
    let id = made["id"].as_str().unwrap();
    let rows = w.plugin_rows().await;
    assert!(
        rows.iter()
            .any(|(_, ns, c)| ns == &format!("workspace:{id}") && c == "prefer small pull requests")
    );
    assert!(
        rows.iter()
            .any(|(_, ns, c)| ns == &format!("team:{}", root.id) && c == "the team ships on tuesdays")
    );

    // Refused before anything is created: GLOBAL on a child, an unknown scope, an unknown field.
    let mut refusals = Vec::new();
    for body in [
        json!({"name": "g", "parent_id": root.id, "initial_memories": [{"content": "x", "scope": "GLOBAL"}]}),
        json!({"name": "s", "initial_memories": [{"content": "x", "scope": "PLANET"}]}),
        json!({"name": "f", "initial_memories": [{"content": "x", "weight": 2}]}),
        json!({"name": "e", "initial_memories": [{"content": " "}]}),
    ] {
        let (s, e) = create(body).await;
        refusals.push(json!({ "status": s, "body": e }));
    }
    insta::assert_json_snapshot!("initial_memories_refused", stable_json(&json!(refusals)));
    let names: Vec<String> = w
        .api
        .admin_get("/workspaces")
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["parent", "seeded"]);

    // Org import: node memories, defaults for nodes without, the org's on the first root.
    let template = "name: acme\ndefaults:\n  initial_memories:\n    - content: default memory\nglobal_memories:\n  - content: the org is called acme\nworkspaces:\n  - name: lead\n    runtime: external\n    initial_memories:\n      - content: lead memory\n    children:\n      - name: helper\n        runtime: external\n";
    let imported = w
        .api
        .admin_post("/org/import", &json!({ "template": template }))
        .await
        .ok();
    assert_eq!(imported["created"], 2, "{imported}");
    let lead = imported["workspaces"][0]["id"].as_str().unwrap();
    let helper = imported["workspaces"][1]["id"].as_str().unwrap();
    let rows = w.plugin_rows().await;
    let has = |ns: String, c: &str| rows.iter().any(|(_, n, content)| *n == ns && content == c);
    assert!(has(format!("workspace:{lead}"), "lead memory"));
    assert!(has(format!("org:{lead}"), "the org is called acme"));
    assert!(has(format!("workspace:{helper}"), "default memory"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_plugin_initial_memories_are_refused_not_dropped() {
    let w = world(false).await;
    let e = w
        .api
        .admin_post(
            "/workspaces",
            &json!({"name": "x", "initial_memories": [{"content": "remember me"}]}),
        )
        .await
        .expect(400);
    insta::assert_json_snapshot!("initial_memories_without_a_plugin", e);
}

/// The original's `agent_memories` (with the 017 `namespace` label), in the server's database.
const AGENT_MEMORIES: &str = "CREATE TABLE agent_memories (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id UUID NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    scope VARCHAR(10) NOT NULL CHECK (scope IN ('LOCAL','TEAM','GLOBAL')),
    namespace VARCHAR(50) NOT NULL DEFAULT 'general',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now())";

#[tokio::test(flavor = "multi_thread")]
async fn backfill_from_the_original_table_twice_is_one_copy() {
    let w = world(true).await;
    let root = w.create("root", None).await;
    let child = w.create("child", Some(&root)).await;
    {
        let mut conn = w.db.pool().get().await.unwrap();
        diesel::sql_query(AGENT_MEMORIES).execute(&mut conn).await.unwrap();
        diesel::sql_query(format!(
            "INSERT INTO agent_memories (workspace_id, content, scope, namespace)
             SELECT CASE WHEN i % 2 = 0 THEN '{r}'::uuid ELSE '{c}'::uuid END,
                    'legacy memory ' || i || CASE WHEN i = 7 THEN ' password postgres://u:hunter2@db/x' ELSE '' END,
                    CASE WHEN i % 3 = 0 THEN 'TEAM' WHEN i % 10 = 2 THEN 'GLOBAL' ELSE 'LOCAL' END,
                    'notes'
               FROM generate_series(1, 1200) i",
            r = root.id,
            c = child.id
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_workspace-server"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &w.db.url)
            .env("MEMORY_PLUGIN_URL", &w.plugin_url)
            .env("RUST_LOG", "warn")
            .arg("memory-backfill")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
        (
            out.status.success(),
            summary,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, dry, err) = run(&["--dry-run"]);
    assert!(ok, "{err}");
    assert_eq!(
        (dry["read"].as_u64(), dry["written"].as_u64()),
        (Some(1200), Some(1200))
    );
    assert!(w.plugin_rows().await.is_empty(), "a dry run writes nothing");

    // Stopped part-way (--limit), then resumed, then run again: one copy of each row.
    let (ok, first, err) = run(&["--apply", "--limit", "500", "--batch", "200"]);
    assert!(ok, "{err}");
    assert_eq!(first["written"], 500);
    let (ok, second, err) = run(&["--apply"]);
    assert!(ok, "{err}");
    assert_eq!(
        (second["resumed_after"].as_u64(), second["read"].as_u64()),
        (Some(500), Some(700))
    );
    let (ok, third, err) = run(&["--apply"]);
    assert!(ok, "{err}");
    assert_eq!(third["read"], 0, "nothing left: {third}");
    let (ok, again, err) = run(&["--apply", "--restart"]);
    assert!(ok, "{err}");
    assert_eq!(again["written"], 1200);
    let rows = w.plugin_rows().await;
    assert_eq!(rows.len(), 1200, "run twice, one copy");
    let team = rows
        .iter()
        .filter(|(_, ns, _)| *ns == format!("team:{}", root.id))
        .count();
    assert_eq!(team, 400, "TEAM rows of root and child share the root's team");
    assert!(
        rows.iter().all(|(_, _, c)| !c.contains("hunter2")),
        "redacted on the way in"
    );
    let (ok, verify, err) = run(&["--verify"]);
    assert!(ok, "{err}");
    assert_eq!(verify["written"], 1200);

    // A row the plugin lost is found by --verify, which then fails.
    {
        let mut conn = w.plugin_db.pool().get().await.unwrap();
        diesel::sql_query(
            "DELETE FROM memory_plugin.memories WHERE id IN (SELECT id FROM memory_plugin.memories LIMIT 1)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let (ok, verify, _) = run(&["--verify"]);
    assert!(!ok);
    assert_eq!(verify["mismatched"], 1);
    // A table that is not there is named.
    let (ok, _, err) = run(&["--dry-run", "--table", "old_memories"]);
    assert!(!ok && err.contains("old_memories"), "{err}");
}
