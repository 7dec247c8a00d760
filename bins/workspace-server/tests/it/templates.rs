//! Workspace templates through the binary: the listing over a directory that holds a broken
//! template (listed in the load-error view and the log, never dropped silently), import,
//! create's `template` preflight, and seeding into the local backend's `/configs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::Path;
use std::time::Duration;

use molecule_testkit::client::text;
use molecule_testkit::{TestDb, stable_json, until_ok};
use serde_json::{Value, json};

use crate::common;

const ADMIN: &str = "templates-admin";

/// `body` with every occurrence of the directory `dir` in its strings written as `name`: a
/// temporary path is not part of the wire shape a snapshot keeps.
fn in_dir(body: &Value, dir: &Path, name: &str) -> Value {
    in_text(body, dir.to_str().unwrap(), name)
}

/// `body` with every occurrence of `needle` in its strings written as `name`.
fn in_text(body: &Value, needle: &str, name: &str) -> Value {
    serde_json::from_str(&body.to_string().replace(needle, name)).unwrap()
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A templates directory: `good` (requires GOOD_KEY, ships a prompt file), `broken` (bad
/// YAML) and `claude-code-default`.
pub(crate) fn fixture(dir: &Path) {
    write(
        dir,
        "good/config.yaml",
        "name: Good agent\ndescription: does good\ntier: 2\nruntime: claude-code\nskills: [search, {name: write}]\n\
         required_env: [GOOD_KEY]\nruntime_config:\n  model: sonnet\n  models: [sonnet, {id: opus, required_env: [OPUS_KEY]}]\n\
         \x20 providers: [anthropic-oauth]\n  provision_timeout_seconds: 900\n\
         providers:\n  - {name: anthropic, auth_env: [ANTHROPIC_API_KEY], model_prefixes: [claude-]}\n",
    );
    write(dir, "good/prompts/hello.md", "hello from the template\n");
    write(dir, "broken/config.yaml", "name: broken\nruntime_config: [unclosed\n");
    write(
        dir,
        "claude-code-default/config.yaml",
        "name: default\nruntime: claude-code\n",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_list_report_broken_ones_import_and_seed_a_local_workload() {
    let Some(agent_bin) = crate::messaging::reference_agent() else {
        return;
    };
    let db = TestDb::new().await;
    let configs = tempfile::tempdir().unwrap();
    fixture(configs.path());
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("server.log");
    let server = common::start_replica_logged(
        &db.url,
        ADMIN,
        &[
            vec![("CONFIGS_DIR", configs.path().to_str().unwrap())],
            common::local_agents(&agent_bin, data.path()),
        ]
        .concat(),
        Some(&log),
    );
    let api = server.api();
    api.ready().await;
    let get = |path: &'static str| async { api.admin_get(path).await.expect(200) };

    // The listing: the good ones, in the later shape (`provider_registry` absent, never null,
    // where a template has none); the broken one is not there...
    insta::assert_json_snapshot!("templates_listing", stable_json(&get("/templates").await));
    // ...but is in the load-error view, with its file and reason, and in the log.
    let errors = in_dir(&get("/admin/templates/errors").await, configs.path(), "[configs]");
    insta::assert_json_snapshot!("templates_load_errors", stable_json(&errors));
    common::log_once(&log, "the server log naming the broken template's file", |l| {
        l.contains("templates: skip") && l.contains("broken/config.yaml")
    })
    .await;

    // Import: a new template appears at once; a second import of the name is a 409; a path
    // that leaves the template is a 400 naming `files`.
    let import = |body: Value| {
        let api = &api;
        async move {
            let r = api.admin_post("/templates/import", &body).await;
            (r.status, r.body)
        }
    };
    let body =
        json!({ "name": "imported", "files": { "config.yaml": "name: Imported\ntier: 1\n", "notes/a.md": "a" } });
    let (status, imported) = import(body.clone()).await;
    assert_eq!(status, 201, "{imported}");
    assert_eq!(imported["tier"], 1);
    assert_eq!(import(body).await.0, 409);
    let (status, bad) = import(json!({ "name": "evil", "files": { "config.yaml": "a: 1", "../x": "x" } })).await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["field"], "files");
    let (status, bad) = import(json!({ "name": "nocfg", "files": { "a.md": "x" } })).await;
    assert_eq!((status, bad["field"].as_str()), (400, Some("files")), "{bad}");
    assert!(!configs.path().join("evil").exists() && !configs.path().join("nocfg").exists());
    assert_eq!(get("/templates").await.as_array().unwrap().len(), 3);

    // Create with a template: a missing required variable is a 422 naming it, with nothing
    // made; an unknown template is TEMPLATE_UNAVAILABLE; a field we do not implement is a
    // 400 naming it.
    let create = |body: Value| {
        let api = &api;
        async move {
            let r = api.admin_post("/workspaces", &body).await;
            (r.status, r.body)
        }
    };
    // The chosen model's variables count too (`OPUS_KEY`).
    let mut refusals = Vec::new();
    for body in [
        json!({ "name": "g", "template": "good" }),
        json!({ "name": "g", "template": "good", "model": "opus", "secrets": { "GOOD_KEY": "v" } }),
        json!({ "name": "g", "template": "nope" }),
        json!({ "name": "g", "template": "broken" }),
        json!({ "name": "g", "compute": { "cpu": 1, "memory": 2 } }),
    ] {
        let (status, refused) = create(body).await;
        refusals.push(json!({ "status": status, "body": in_dir(&refused, configs.path(), "[configs]") }));
    }
    insta::assert_json_snapshot!("create_from_a_template_refused", stable_json(&json!(refusals)));
    assert_eq!(
        get("/workspaces").await.as_array().unwrap().len(),
        0,
        "nothing half-made"
    );

    // With the variable met: the template's tier and model are the defaults, and its files and
    // the generated config.yaml are in the workload's /configs (the local data dir).
    let (status, created) =
        create(json!({ "name": "g", "role": "helper", "template": "good", "secrets": { "GOOD_KEY": "v" } })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&created["workspace"]["tier"], &created["workspace"]["runtime"]),
        (&json!(2), &json!("claude-code")),
        "{created}"
    );
    let online = || async {
        until_ok("the workspace to be online", Duration::from_secs(30), || async {
            let w = api.workspace(&id).await;
            if w["status"] == "online" {
                Ok(w)
            } else {
                Err(w.to_string())
            }
        })
        .await
    };
    let before = online().await["instance_id"].clone();
    let dir = data.path().join(&id);
    assert_eq!(
        std::fs::read_to_string(dir.join("prompts/hello.md")).unwrap(),
        "hello from the template\n"
    );
    // The template's own keys stay; name, description (the role), tier and model are set.
    let cfg: Value = serde_yaml_ng::from_slice(&std::fs::read(dir.join("config.yaml")).unwrap()).unwrap();
    insta::assert_json_snapshot!("config_yaml_seeded_from_a_template", stable_json(&cfg));

    // Seeded once: a restart keeps what changed in /configs since.
    std::fs::write(dir.join("prompts/hello.md"), "edited").unwrap();
    api.admin_action(&format!("/workspaces/{id}/restart")).await.ok();
    // A new process, online (its instance id changes; the status alone may flip back to
    // online between two polls).
    until_ok("the restarted workload online", Duration::from_secs(30), || async {
        let w = api.workspace(&id).await;
        if w["status"] == "online" && !w["instance_id"].is_null() && w["instance_id"] != before {
            Ok(())
        } else {
            Err(w.to_string())
        }
    })
    .await;
    assert_eq!(std::fs::read_to_string(dir.join("prompts/hello.md")).unwrap(), "edited");

    // No template: <runtime>-default is the config source (config recovery).
    let (status, created) = create(json!({ "name": "plain", "runtime": "claude-code" })).await;
    assert_eq!(status, 201, "{created}");
    let plain = created["id"].as_str().unwrap().to_owned();
    let cfg_path = data.path().join(&plain).join("config.yaml");
    let cfg: serde_yaml_ng::Value = until_ok("the default template seeded", Duration::from_secs(30), || async {
        std::fs::read(&cfg_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_yaml_ng::from_slice(&b).map_err(|e| e.to_string()))
    })
    .await;
    assert_eq!(cfg["name"], "plain");
    assert_eq!(cfg["runtime"], "claude-code");
}

/// An org fixture with `!include`, `.env` (the org's and a node's), `files_dir`,
/// `system_prompt`, `initial_memories`, a template with `required_env`, `spawning: false`,
/// and keys this platform does not implement: every node carries what it was given, and the
/// answer lists the ignored keys per node.
#[tokio::test(flavor = "multi_thread")]
async fn an_org_template_in_full_imports_everything_and_reports_what_it_ignores() {
    let Some(agent_bin) = crate::messaging::reference_agent() else {
        return;
    };
    let configs = tempfile::tempdir().unwrap();
    fixture(configs.path());
    let orgs = tempfile::tempdir().unwrap();
    let org = orgs.path().join("acme");
    write(
        &org,
        "org.yml",
        "name: acme\ndefaults:\n  runtime: claude-code\n  plugins: [gh]\nrecommended_env: [NICE_TO_HAVE]\nworkspaces: !include team.yaml\n",
    );
    write(
        &org,
        "team.yaml",
        "- name: lead\n  files_dir: lead-files\n  system_prompt: You lead the team.\n  initial_memories: [{content: lead remembers}]\n\
         \x20 schedules: [{name: daily, cron_expr: '0 9 * * *', prompt: standup}]\n  channels: [{type: slack, config: {webhook_url: '${SLACK_HOOK}'}}, {type: lark}]\n\
         \x20 plugins: [gh]\n\
         \x20 children:\n    - name: helper\n      template: good\n      required_env: [HELPER_KEY]\n\
         - name: sleeper\n  spawning: false\n  children: [{name: never}]\n",
    );
    write(&org, ".env", "GOOD_KEY=from-org-env\nHELPER_KEY=h\n");
    write(
        &org,
        "lead-files/.env",
        "LEAD_ONLY=1\nSLACK_HOOK=https://hooks.slack.com/services/T/B/lead\n",
    );
    write(&org, "lead-files/notes.md", "lead's notes\n");
    let data = tempfile::tempdir().unwrap();
    let w = crate::mcp::world_with(
        true,
        &[
            vec![
                ("CONFIGS_DIR", configs.path().to_str().unwrap()),
                ("MOLECULE_ORG_TEMPLATES_DIR", orgs.path().to_str().unwrap()),
            ],
            common::local_agents(&agent_bin, data.path()),
        ]
        .concat(),
    )
    .await;
    let imported = w
        .api
        .admin_post("/org/import", &json!({ "dir": "acme" }))
        .await
        .expect(201);
    // What is ignored, for the org and per node; a subtree that does not spawn is left out.
    insta::assert_json_snapshot!("org_import_in_full", stable_json(&imported));
    let nodes = imported["workspaces"].as_array().unwrap();
    let node = |name: &str| nodes.iter().find(|n| n["name"] == name).unwrap().clone();
    let (lead, helper) = (node("lead"), node("helper"));
    let (lead, helper) = (
        lead["id"].as_str().unwrap().to_owned(),
        helper["id"].as_str().unwrap().to_owned(),
    );

    // Secrets: the org's .env on every node, a node's files_dir/.env on that node only.
    let keys = |id: String| {
        let api = w.api.clone();
        async move {
            let list = api.admin_get(&format!("/workspaces/{id}/secrets")).await.expect(200);
            list.as_array()
                .unwrap()
                .iter()
                .map(|e| e["key"].as_str().unwrap().to_owned())
                .filter(|k| k.ends_with("_KEY") || k == "LEAD_ONLY")
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(keys(lead.clone()).await, ["GOOD_KEY", "HELPER_KEY", "LEAD_ONLY"]);
    assert_eq!(keys(helper.clone()).await, ["GOOD_KEY", "HELPER_KEY"]);

    // /configs: files_dir and the system prompt for the lead, the template for the helper.
    let read = |id: &str, rel: &str| {
        let path = data.path().join(id).join(rel);
        async move {
            until_ok(
                &format!("{} seeded", path.display()),
                Duration::from_secs(30),
                || async { std::fs::read_to_string(&path).map_err(|e| e.to_string()) },
            )
            .await
        }
    };
    assert_eq!(read(&lead, "notes.md").await, "lead's notes\n");
    assert_eq!(read(&lead, "system-prompt.md").await, "You lead the team.");
    assert!(read(&lead, "config.yaml").await.contains("system-prompt.md"));
    assert!(
        !data.path().join(&lead).join(".env").exists(),
        "a .env is a secret, never a seeded file"
    );
    assert_eq!(read(&helper, "prompts/hello.md").await, "hello from the template\n");
    // initial_memories through the memory layer.
    let rows = w.plugin_rows().await;
    assert!(
        rows.iter()
            .any(|(_, ns, c)| *ns == format!("workspace:{lead}") && c == "lead remembers"),
        "{rows:?}"
    );
}

/// Chat uploads through the local backend: names sanitised, the 413 limits, 422/503 by
/// delivery mode; downloads only inside the roots; notify with an attachment.
#[tokio::test(flavor = "multi_thread")]
async fn chat_uploads_follow_the_limits_and_delivery_modes_and_downloads_stay_in_the_roots() {
    let Some(agent_bin) = crate::messaging::reference_agent() else {
        return;
    };
    let db = TestDb::new().await;
    let data = tempfile::tempdir().unwrap();
    let server = common::start_replica(&db.url, ADMIN, &common::local_agents(&agent_bin, data.path()));
    let api = server.api();
    api.ready().await;
    let base = &server.base;
    let create = |body: Value| {
        let api = &api;
        async move { text(&api.create(&body).await, "id") }
    };
    // Multipart and raw downloads are beyond the typed client: its HTTP client, with a longer
    // bound for the 60 MiB bodies.
    let http = api.http();
    let upload = |id: String, parts: Vec<(&'static str, Vec<u8>)>| async move {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in parts {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(name)
                    .mime_str("text/plain")
                    .unwrap(),
            );
        }
        let resp = http
            .post(format!("{base}/workspaces/{id}/chat/uploads"))
            .timeout(Duration::from_secs(60))
            .bearer_auth(ADMIN)
            .multipart(form)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json::<Value>().await.unwrap_or(Value::Null),
        )
    };
    let id = create(json!({ "name": "chatty" })).await;
    until_ok("online", Duration::from_secs(30), || async {
        let w = api.workspace(&id).await;
        if w["status"] == "online" {
            Ok(())
        } else {
            Err(w.to_string())
        }
    })
    .await;

    let (code, up) = upload(
        id.clone(),
        vec![
            ("../../etc/pass wd?.txt", b"one".to_vec()),
            ("notes.md", b"two".to_vec()),
        ],
    )
    .await;
    assert_eq!(code, 201, "{up}");
    let first = &up["files"][0];
    assert_eq!(first["name"], "pass_wd_.txt", "sanitised: {up}");
    assert_eq!(first["mimeType"], "text/plain");
    assert_eq!(first["size"], 3);
    let uri = first["uri"].as_str().unwrap();
    let abs = uri.strip_prefix("workspace:").unwrap();
    let rel = abs.strip_prefix("/workspace/").unwrap();
    assert!(
        rel.starts_with(".molecule/chat-uploads/") && rel.ends_with("-pass_wd_.txt"),
        "{uri}"
    );
    let stored = data.path().join(format!("{id}-workspace")).join(rel);
    assert_eq!(std::fs::read(&stored).unwrap(), b"one");

    // Downloads: the stored file; nothing outside the roots.
    let download = |path: &str| {
        let url = format!("{base}/workspaces/{id}/chat/download");
        let path = path.to_owned();
        async move {
            // Sent as written: `%2e%2e` must reach the server encoded, to be decoded there.
            let resp = http
                .get(format!("{url}?path={path}"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
        }
    };
    assert_eq!(download(abs).await, (200, b"one".to_vec()));
    for bad in [
        "/etc/passwd",
        "/workspace/../etc/passwd",
        "/workspace/%2e%2e/x",
        "relative.txt",
        "/configs/.molecule/secrets.json",
    ] {
        assert_eq!(download(bad).await.0, 400, "{bad}");
    }
    assert_eq!(download("/workspace/missing.txt").await.0, 404);

    // 413: one file over 25 MiB; several over 50 MiB in all. Nothing is stored.
    let before = std::fs::read_dir(stored.parent().unwrap()).unwrap().count();
    assert_eq!(
        upload(id.clone(), vec![("big.bin", vec![b'x'; 25 * 1024 * 1024 + 1])])
            .await
            .0,
        413
    );
    let part = || vec![b'y'; 20 * 1024 * 1024];
    let r = upload(id.clone(), vec![("a", part()), ("b", part()), ("c", part())]).await;
    assert_eq!(r.0, 413, "{r:?}");
    assert!(
        r.1["error"].as_str().unwrap().contains("in all"),
        "the total limit: {r:?}"
    );
    assert_eq!(std::fs::read_dir(stored.parent().unwrap()).unwrap().count(), before);

    // Delivery modes: no URL in poll (or unset) mode → 422; no URL yet in push mode → 503.
    let mut refusals = serde_json::Map::new();
    for (name, mode) in [("poller", Some("poll")), ("unset", None), ("pusher", Some("push"))] {
        let mut body = json!({ "name": name, "external": true });
        if let Some(m) = mode {
            body["delivery_mode"] = json!(m);
        }
        let target = create(body).await;
        let (code, body) = upload(target, vec![("a.txt", b"a".to_vec())]).await;
        refusals.insert(name.to_owned(), json!({ "status": code, "body": body }));
    }
    insta::assert_json_snapshot!("chat_upload_by_delivery_mode", stable_json(&Value::Object(refusals)));

    // Notify with the upload attached: AGENT_MESSAGE's activity row carries it as a file part.
    api.admin_post(
        &format!("/workspaces/{id}/notify"),
        &json!({ "message": "here it is", "attachments": [{ "uri": uri, "name": "pass_wd_.txt", "size": 3 }] }),
    )
    .await
    .expect(200);
    let rows = api.activity(&id, ADMIN, "type=a2a_receive").await.unwrap();
    let row = rows.iter().find(|r| r["method"] == "notify").unwrap();
    let said = in_text(&row["response_body"], uri, "[uri]");
    insta::assert_json_snapshot!("notify_with_an_attachment", stable_json(&said));
}
