//! Workspace templates through the binary: the listing over a directory that holds a broken
//! template (listed in the load-error view and the log, never dropped silently), import,
//! create's `template` preflight, and seeding into the local backend's `/configs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::Path;
use std::time::Duration;

use molecule_testkit::{TestDb, until_ok};
use serde_json::{Value, json};

use crate::common;

const ADMIN: &str = "templates-admin";

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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    common::replica_ready(&http, &server, ADMIN).await;
    let base = &server.base;
    let get = |path: String| common::call(&http, reqwest::Method::GET, path, ADMIN, None);

    // The listing: the good ones, in the later shape; the broken one is not there...
    let (status, list) = get(format!("{base}/templates")).await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["claude-code-default", "good"], "{list}");
    let good = &list[1];
    assert_eq!(good["name"], "Good agent");
    assert_eq!(good["tier"], 2);
    assert_eq!(good["model"], "sonnet");
    assert_eq!(good["skills"], json!(["search", "write"]));
    assert_eq!(good["skill_count"], 2);
    assert_eq!(good["required_env"], json!(["GOOD_KEY"]));
    assert_eq!(good["models"][1], json!({ "id": "opus", "required_env": ["OPUS_KEY"] }));
    assert_eq!(good["providers"], json!(["anthropic-oauth"]));
    assert_eq!(good["provider_registry"][0]["name"], "anthropic");
    assert_eq!(good["provider_registry"][0]["base_url"], "");
    assert_eq!(good["provision_timeout_seconds"], 900);
    assert!(list[0].get("provider_registry").is_none(), "absent, never null: {list}");
    // ...but is in the load-error view, with its file and reason, and in the log.
    let (status, errors) = get(format!("{base}/admin/templates/errors")).await;
    assert_eq!(status, 200);
    assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
    assert_eq!(errors[0]["id"], "broken");
    assert!(
        errors[0]["file"].as_str().unwrap().ends_with("broken/config.yaml"),
        "{errors}"
    );
    assert!(
        errors[0]["reason"].as_str().unwrap().contains("not valid YAML"),
        "{errors}"
    );
    common::log_once(&log, "the server log naming the broken template's file", |l| {
        l.contains("templates: skip") && l.contains("broken/config.yaml")
    })
    .await;

    // Import: a new template appears at once; a second import of the name is a 409; a path
    // that leaves the template is a 400 naming `files`.
    let import = |body: Value| {
        common::call(
            &http,
            reqwest::Method::POST,
            format!("{base}/templates/import"),
            ADMIN,
            Some(body),
        )
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
    assert_eq!(get(format!("{base}/templates")).await.1.as_array().unwrap().len(), 3);

    // Create with a template: a missing required variable is a 422 naming it, with nothing
    // made; an unknown template is TEMPLATE_UNAVAILABLE; a field we do not implement is a
    // 400 naming it.
    let create = |body: Value| {
        common::call(
            &http,
            reqwest::Method::POST,
            format!("{base}/workspaces"),
            ADMIN,
            Some(body),
        )
    };
    let (status, refused) = create(json!({ "name": "g", "template": "good" })).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["code"], "MISSING_REQUIRED_ENV");
    assert_eq!(refused["missing"], json!(["GOOD_KEY"]));
    assert!(refused["error"].as_str().unwrap().contains("GOOD_KEY"));
    let (status, refused) =
        create(json!({ "name": "g", "template": "good", "model": "opus", "secrets": { "GOOD_KEY": "v" } })).await;
    assert_eq!(
        (status, &refused["missing"]),
        (422, &json!(["OPUS_KEY"])),
        "the chosen model's variables count too"
    );
    let (status, refused) = create(json!({ "name": "g", "template": "nope" })).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("TEMPLATE_UNAVAILABLE")),
        "{refused}"
    );
    let (status, refused) = create(json!({ "name": "g", "template": "broken" })).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("broken/config.yaml"),
        "{refused}"
    );
    let (status, refused) = create(json!({ "name": "g", "canvas": { "x": 1, "y": 2 } })).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("canvas"), "{refused}");
    assert_eq!(
        get(format!("{base}/workspaces")).await.1.as_array().unwrap().len(),
        0,
        "nothing half-made"
    );

    // With the variable met: the template's tier and model are the defaults, and its files and
    // the generated config.yaml are in the workload's /configs (the local data dir).
    let (status, created) =
        create(json!({ "name": "g", "role": "helper", "template": "good", "secrets": { "GOOD_KEY": "v" } })).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["workspace"]["tier"], 2);
    assert_eq!(created["workspace"]["runtime"], "claude-code");
    let online = || async {
        until_ok("the workspace to be online", Duration::from_secs(30), || async {
            let (_, w) = get(format!("{base}/workspaces/{id}")).await;
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
    let cfg: serde_yaml_ng::Value =
        serde_yaml_ng::from_slice(&std::fs::read(dir.join("config.yaml")).unwrap()).unwrap();
    assert_eq!(cfg["name"], "g");
    assert_eq!(cfg["description"], "helper");
    assert_eq!(cfg["tier"], 2);
    assert_eq!(cfg["model"], "sonnet");
    assert_eq!(cfg["runtime_config"]["model"], "sonnet");
    assert_eq!(cfg["skills"][0], "search", "the template's own keys stay");

    // Seeded once: a restart keeps what changed in /configs since.
    std::fs::write(dir.join("prompts/hello.md"), "edited").unwrap();
    let resp = http
        .post(format!("{base}/workspaces/{id}/restart"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    // A new process, online (its instance id changes; the status alone may flip back to
    // online between two polls).
    until_ok("the restarted workload online", Duration::from_secs(30), || async {
        let (_, w) = get(format!("{base}/workspaces/{id}")).await;
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
         \x20 schedules: [{name: daily, cron_expr: '0 9 * * *', prompt: standup}]\n  channels: [{type: slack}]\n\
         \x20 children:\n    - name: helper\n      template: good\n      required_env: [HELPER_KEY]\n\
         - name: sleeper\n  spawning: false\n  children: [{name: never}]\n",
    );
    write(&org, ".env", "GOOD_KEY=from-org-env\nHELPER_KEY=h\n");
    write(&org, "lead-files/.env", "LEAD_ONLY=1\n");
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
    let base = &w.server.base;
    let resp = w
        .http
        .post(format!("{base}/org/import"))
        .bearer_auth(crate::mcp::ADMIN)
        .json(&json!({ "dir": "acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let imported: Value = resp.json().await.unwrap();
    assert_eq!(
        imported["ignored"],
        json!(["recommended_env", "defaults.plugins"]),
        "{imported}"
    );
    let nodes = imported["workspaces"].as_array().unwrap();
    let node = |name: &str| nodes.iter().find(|n| n["name"] == name).unwrap().clone();
    let lead = node("lead");
    assert_eq!(lead["status"], "created", "{imported}");
    assert_eq!(
        lead["ignored"],
        json!(["channels", "schedules"]),
        "per node: {imported}"
    );
    let helper = node("helper");
    assert_eq!(helper["status"], "created", "{imported}");
    assert!(helper.get("ignored").is_none(), "{imported}");
    assert_eq!(node("sleeper")["status"], "not_spawned");
    assert!(
        nodes.iter().all(|n| n["name"] != "never"),
        "a subtree that does not spawn is left out"
    );
    let (lead, helper) = (
        lead["id"].as_str().unwrap().to_owned(),
        helper["id"].as_str().unwrap().to_owned(),
    );

    // Secrets: the org's .env on every node, a node's files_dir/.env on that node only.
    let keys = |id: String| {
        let http = w.http.clone();
        async move {
            let list: Value = http
                .get(format!("{base}/workspaces/{id}/secrets"))
                .bearer_auth(crate::mcp::ADMIN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    common::replica_ready(&http, &server, ADMIN).await;
    let base = &server.base;
    let create = |body: Value| async {
        let (_, v) = common::call(
            &http,
            reqwest::Method::POST,
            format!("{base}/workspaces"),
            ADMIN,
            Some(body),
        )
        .await;
        v["id"].as_str().unwrap().to_owned()
    };
    let upload = |id: String, parts: Vec<(&'static str, Vec<u8>)>| {
        let http = http.clone();
        async move {
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
                .bearer_auth(ADMIN)
                .multipart(form)
                .send()
                .await
                .unwrap();
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let id = create(json!({ "name": "chatty" })).await;
    until_ok("online", Duration::from_secs(30), || async {
        let w: Value = http
            .get(format!("{base}/workspaces/{id}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
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
        let http = http.clone();
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
    let poll = create(json!({ "name": "poller", "external": true, "delivery_mode": "poll" })).await;
    let (code, body) = upload(poll, vec![("a.txt", b"a".to_vec())]).await;
    assert_eq!((code, body["code"].as_str()), (422, Some("NO_CALLBACK_URL")), "{body}");
    let unset = create(json!({ "name": "unset", "external": true })).await;
    assert_eq!(upload(unset, vec![("a.txt", b"a".to_vec())]).await.0, 422);
    let push = create(json!({ "name": "pusher", "external": true, "delivery_mode": "push" })).await;
    let (code, body) = upload(push, vec![("a.txt", b"a".to_vec())]).await;
    assert_eq!(code, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not registered yet"), "{body}");

    // Notify with the upload attached: AGENT_MESSAGE's activity row carries it as a file part.
    let resp = http
        .post(format!("{base}/workspaces/{id}/notify"))
        .bearer_auth(ADMIN)
        .json(&json!({ "message": "here it is", "attachments": [{ "uri": uri, "name": "pass_wd_.txt", "size": 3 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rows: Value = http
        .get(format!("{base}/workspaces/{id}/activity?type=a2a_receive"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "notify")
        .unwrap();
    assert_eq!(row["response_body"]["result"], "here it is");
    assert_eq!(row["response_body"]["parts"][0]["kind"], "file");
    assert_eq!(row["response_body"]["parts"][0]["file"]["uri"], uri);
}
