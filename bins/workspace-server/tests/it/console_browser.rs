//! The operator console in a real browser: Debian's `chromium`, driven through
//! `chromium-driver` (WebDriver, with fantoccini), against a running workspace-server on the
//! Docker backend with the reference agent, and a real memory plugin.
//!
//! One walk through what an operator does: sign in, see the tree of more than 20 workspaces,
//! watch one created through the API appear and come online and then pause without a reload,
//! decide an approval a real agent is waiting on, read a failed workspace's reason, chat with
//! an agent, add a schedule, search a memory and forget it, type `echo hi` in a Docker
//! workload's terminal and read `hi`, bulk-restart two workspaces, sign out. Every page's
//! HTML is kept and checked for the admin token and a secret's value; each page is saved as a
//! screenshot under `target/console/`.
//!
//! Needs chromium, chromedriver, a Docker engine and the `molecule-agent:*` images. In CI
//! (`CI=true`) anything missing fails the test; elsewhere it is skipped loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test code
#![allow(clippy::disallowed_methods)] // tests read CI, PATH and CARGO_TARGET_DIR directly

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use molecule_memory_plugin::{PluginState, migrations};
use molecule_testkit::client::text;
use molecule_testkit::{Api, TestDb, free_port, until};
use serde_json::{Value, json};

use crate::common::{Cleanup, docker_problem, ready_or_skip};
use crate::docker_e2e::{ADMIN, start, wait_status};

/// A secret value that no page may ever contain.
const CANARY: &str = "sk-console-canary-5be07c1f";

/// What is missing to drive a browser, if anything.
fn browser_problem() -> Option<String> {
    for (bin, package) in [("chromium", "chromium"), ("chromedriver", "chromium-driver")] {
        if !Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Some(format!("`{bin}` is missing (Debian's {package}; .ci/run installs it)"));
        }
    }
    None
}

/// `target/console/`, where the screenshots go.
pub(crate) fn shots_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A chromedriver process on a free loopback port, stopped on drop.
pub(crate) struct Driver {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Driver {
    /// Stops chromedriver and the browsers it started (its process group), pass or fail.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts chromedriver and opens a headless chromium session at 1280×900.
pub(crate) async fn browser() -> (Driver, Client) {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let status = format!("{}/status", driver.url);
    until("chromedriver to answer", Duration::from_secs(30), || async {
        let ok = http.get(&status).send().await.ok()?;
        ok.status().is_success().then_some(())
    })
    .await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--disable-extensions"] }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap();
    (driver, client)
}

/// The browser, with every page's HTML kept for the secrecy check.
pub(crate) struct Page {
    pub(crate) client: Client,
    pub(crate) base: String,
    seen: Vec<(String, String)>,
}

impl Page {
    pub(crate) fn new(client: Client, base: &str) -> Self {
        Self {
            client,
            base: base.to_owned(),
            seen: Vec::new(),
        }
    }

    pub(crate) async fn goto(&mut self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// Evaluates `script` (a function body that returns a value) in the page.
    pub(crate) async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Polls `script` until it returns `true`; past `within`, saves the page as
    /// `target/console/failed.png` and fails with what the page showed.
    pub(crate) async fn until_js(&self, what: &str, within: Duration, script: &str) {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if self.js(script).await == Value::Bool(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(shots_dir().join("failed.png"), png).unwrap();
        let url = self.client.current_url().await.unwrap();
        let body = self.js("return document.body.innerText.slice(0, 2000);").await;
        panic!(
            "timed out after {within:?} waiting for {what} at {url}; the page says:\n{}",
            body.as_str().unwrap_or_default()
        );
    }

    pub(crate) async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    pub(crate) async fn type_into(&self, css: &str, keys: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(keys).await.unwrap();
    }

    /// Saves a screenshot as `target/console/<name>.png` and keeps the page's HTML.
    pub(crate) async fn shot(&mut self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
        let html = self.client.source().await.unwrap();
        self.seen.push((name.to_owned(), html));
    }

    /// No page seen holds any of `secrets`.
    pub(crate) fn assert_never_showed(&self, secrets: &[&str]) {
        for (name, html) in &self.seen {
            for s in secrets {
                assert!(!html.contains(s), "page {name} contains a secret ({s})");
            }
        }
    }
}

/// The row of workspace `name` in the fleet table, as a JS expression.
fn row(name: &str) -> String {
    format!("document.querySelector('#fleet tr[data-name=\"{name}\"]')")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_runs_the_fleet_from_the_console() {
    let problem = docker_problem("molecule-agent:claude-code").or_else(browser_problem);
    if !ready_or_skip("the console's browser test", problem) {
        return;
    }
    // A real memory plugin, a server on Docker with the reference agent.
    let plugin_db = TestDb::with_migrations(migrations()).await;
    let plugin = molecule_memory_plugin::serve(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        PluginState::new(plugin_db.pool().clone()),
        Duration::from_secs(1),
    )
    .unwrap();
    let plugin_url = format!("http://{}", plugin.local_addr);
    let _plugin = tokio::spawn(plugin.wait());
    let db = TestDb::empty().await;
    let instance = format!("console-{}", uuid::Uuid::new_v4().simple());
    let _cleanup = Cleanup(instance.clone());
    let server = start(
        &db,
        &instance,
        &[
            ("MEMORY_PLUGIN_URL", plugin_url.as_str()),
            (
                "MOLECULE_RUNTIME_IMAGES",
                "claude-code=molecule-agent:claude-code,hermes=127.0.0.1:9/nope:1.0",
            ),
        ],
    );
    let api: Api = server.api();
    api.ready().await;

    // A fleet: a root with children, more roots, a Docker agent and one that cannot start.
    let root = api.external("fleet-root").await;
    for i in 1..=19 {
        let parent = if i <= 10 { json!(root.id) } else { Value::Null };
        api.create(&json!({ "name": format!("fleet-{i:02}"), "runtime": "external", "parent_id": parent }))
            .await;
    }
    let agent = text(
        &api.create(&json!({ "name": "agent-a", "runtime": "claude-code", "secrets": { "CANARY_SECRET": CANARY } }))
            .await,
        "id",
    );
    let broken = text(
        &api.create(&json!({ "name": "broken", "runtime": "hermes" })).await,
        "id",
    );
    wait_status(&api, &agent, "online").await;
    let reason = until("broken to fail with its reason", Duration::from_secs(90), || async {
        let w = api.workspace(&broken).await;
        (w["status"] == "failed").then(|| text(&w, "last_sample_error"))
    })
    .await;
    api.admin_post(
        &format!("/workspaces/{agent}/memories"),
        &json!({ "content": "the needle is under the third stone", "scope": "LOCAL" }),
    )
    .await
    .expect(201);

    let (_driver, client) = browser().await;
    let mut page = Page::new(client, &server.base);
    let within = Duration::from_secs(20);

    // Sign in: every page first goes to the sign-in page.
    page.goto("/console").await;
    assert!(
        page.client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/sign-in")
    );
    page.shot("sign-in").await;
    page.type_into("#token", ADMIN).await;
    page.click("main.sign-in button[type=submit]").await;

    // The tree, live.
    page.until_js(
        "the fleet with every workspace, live",
        within,
        "return document.querySelectorAll('#fleet tbody tr').length >= 22 && document.body.dataset.live === 'open';",
    )
    .await;
    page.shot("fleet").await;
    let depth = page
        .js(&format!(
            "return {}.querySelector('td:nth-child(2)').className;",
            row("fleet-01")
        ))
        .await;
    assert_eq!(depth, "depth-1", "a child is indented under its parent");

    // Created through the API: it appears, then comes online, without a reload.
    page.js("window.__kept = 'same page'; return true;").await;
    let late = text(
        &api.create(&json!({ "name": "late-comer", "runtime": "claude-code" }))
            .await,
        "id",
    );
    page.until_js(
        "late-comer to appear",
        within,
        &format!("return {} !== null;", row("late-comer")),
    )
    .await;
    page.until_js(
        "late-comer to turn online on the page",
        Duration::from_secs(90),
        &format!(
            "const r = {}; return r !== null && r.dataset.status === 'online';",
            row("late-comer")
        ),
    )
    .await;
    // Paused through the API: the page follows.
    api.admin_action(&format!("/workspaces/{late}/pause")).await.expect(200);
    page.until_js(
        "late-comer to show paused",
        Duration::from_secs(60),
        &format!(
            "const r = {}; return r !== null && r.dataset.status === 'paused';",
            row("late-comer")
        ),
    )
    .await;
    assert_eq!(
        page.js("return window.__kept || null;").await,
        "same page",
        "no reload happened"
    );
    page.shot("fleet-live").await;

    // A real agent waits on an approval; the banner shows it and the operator approves.
    let asking = {
        let api = api.clone();
        let agent = agent.clone();
        tokio::spawn(async move {
            let body = json!({ "jsonrpc": "2.0", "id": "ask", "method": "message/send",
                "params": { "message": { "role": "user", "messageId": "ask-1",
                    "parts": [{ "kind": "text", "text": "approval: deploy to production" }] } } });
            api.a2a(&agent, api.admin(), &body).await.expect(200)
        })
    };
    page.until_js(
        "the approval banner",
        within,
        "const b = document.querySelector('.approvals'); return b !== null && b.textContent.includes('deploy to production');",
    )
    .await;
    page.shot("approval").await;
    page.click(".approvals li form.decide button").await;
    let answered = tokio::time::timeout(Duration::from_secs(30), asking)
        .await
        .unwrap()
        .unwrap();
    let said = answered["result"]["parts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(said.contains("approved"), "the agent heard the decision: {answered}");

    // A failed workspace: its page says why.
    page.goto(&format!("/console/workspaces/{broken}")).await;
    page.until_js(
        "the reason",
        within,
        "return document.querySelector('#reason') !== null;",
    )
    .await;
    let shown = page.js("return document.querySelector('#reason').textContent;").await;
    assert!(shown.as_str().unwrap().contains(&reason), "{shown} should say {reason}");
    page.shot("failed-workspace").await;

    // The agent's page: chat, a schedule, memory, the terminal.
    page.goto(&format!("/console/workspaces/{agent}")).await;
    page.until_js(
        "the page's script",
        within,
        "return document.body.dataset.live === 'open';",
    )
    .await;
    page.type_into("#chat-text", "hello console").await;
    page.click("#chat-form button[type=submit]").await;
    page.until_js(
        "the agent's answer",
        within,
        "const a = document.querySelector('#chat-log li[data-who=agent]'); return a !== null && a.textContent === 'agent: echo: hello console';",
    )
    .await;

    page.until_js(
        "the workload's files",
        within,
        "return document.querySelector('#file-list').textContent.includes('config.yaml');",
    )
    .await;

    page.type_into("#s-name", "nightly-summary").await;
    page.type_into("#s-cron", "0 3 * * *").await;
    page.type_into("#s-prompt", "summarize the day").await;
    page.click("#schedule-form button[type=submit]").await;
    page.until_js(
        "the new schedule listed",
        within,
        "return document.querySelector('#schedule-list tbody').textContent.includes('nightly-summary');",
    )
    .await;
    // Edited in place: the form takes the row's values and saves them back.
    page.js(
        "[...document.querySelectorAll('#schedule-list tbody button')].find((b) => b.textContent === 'Edit').click(); return true;",
    )
    .await;
    page.type_into("#s-cron", "0 4 * * *").await;
    page.click("#schedule-form button[type=submit]").await;
    page.until_js(
        "the edited schedule",
        within,
        "return document.querySelector('#schedule-list tbody').textContent.includes('0 4 * * *');",
    )
    .await;
    let schedules = api
        .admin_get(&format!("/workspaces/{agent}/schedules"))
        .await
        .expect(200);
    assert_eq!(schedules[0]["name"], "nightly-summary");
    assert_eq!(schedules[0]["cron_expr"], "0 4 * * *");
    assert_eq!(schedules.as_array().unwrap().len(), 1, "edited, not added");

    page.type_into("#m-q", "needle").await;
    page.click("#memory-form button[type=submit]").await;
    page.until_js(
        "the memory found",
        within,
        "const m = document.querySelector('#memory-list li[data-memory]'); return m !== null && m.textContent.includes('third stone');",
    )
    .await;
    page.shot("workspace").await;
    page.click("#memory-list li[data-memory] button").await;
    page.click("#confirm-yes").await;
    page.until_js(
        "the memory gone from the page",
        within,
        "return document.querySelector('#memory-list li[data-memory]') === null;",
    )
    .await;
    let left = api
        .admin_get(&format!("/workspaces/{agent}/v2/memories?q=needle"))
        .await
        .expect(200);
    assert_eq!(left["memories"], json!([]), "forgotten in the plugin too");

    page.click("#terminal-open").await;
    page.until_js(
        "the terminal to connect",
        within,
        "return document.querySelector('#terminal-state').textContent === 'connected';",
    )
    .await;
    let keys = page
        .client
        .find(Locator::Css("#terminal-screen .xterm-helper-textarea"))
        .await
        .unwrap();
    keys.send_keys("echo hi\u{E007}").await.unwrap();
    page.until_js(
        "`hi` in the terminal",
        within,
        r"return /\nhi\r?\n/.test(document.querySelector('#terminal-transcript').textContent);",
    )
    .await;
    page.shot("terminal").await;
    let listed = page
        .js("return document.querySelector('#secret-list').textContent;")
        .await;
    assert!(
        listed.as_str().unwrap().contains("CANARY_SECRET"),
        "the secret's name is listed"
    );

    // Back to the fleet: bulk-restart two, behind a confirmation.
    page.goto("/console").await;
    page.until_js("the fleet", within, "return document.body.dataset.live === 'open';")
        .await;
    let before = api.workspace(&agent).await["instance_id"].clone();
    for name in ["agent-a", "broken"] {
        page.click(&format!("#fleet tr[data-name=\"{name}\"] input.pick")).await;
    }
    page.click("button[data-bulk=restart]").await;
    let asked = page
        .js("return document.querySelector('#confirm-text').textContent;")
        .await;
    assert!(
        asked.as_str().unwrap().starts_with("Restart 2 workspace(s)?"),
        "{asked}"
    );
    page.shot("bulk-confirm").await;
    page.click("#confirm-yes").await;
    page.until_js(
        "the bulk result",
        within,
        "return document.querySelector('#bulk-result').textContent.startsWith('Restart: 2 of 2 done');",
    )
    .await;
    until("agent-a restarted", Duration::from_secs(90), || async {
        let w = api.workspace(&agent).await;
        (w["status"] == "online" && w["instance_id"] != before).then_some(())
    })
    .await;

    // The terminal session left its activity row.
    let rows = api
        .activity(&agent, api.admin(), "type=terminal_session")
        .await
        .unwrap();
    assert!(!rows.is_empty(), "a terminal_session activity row");

    // Delegations: one sent by fleet-root to the agent, completed, and its timeline.
    let did = api.delegate(&root, &agent, "summarize the fleet").await;
    until("the delegation completed", Duration::from_secs(60), || async {
        let t = api
            .admin_get(&format!("/admin/delegations/{did}/timeline"))
            .await
            .expect(200);
        (t["delegation"]["status"] == "completed").then_some(())
    })
    .await;
    page.goto("/console/delegations").await;
    page.js("document.querySelector('#d-status').value = 'completed'; return true;")
        .await;
    page.click("#delegation-filter button[type=submit]").await;
    let listed = format!("tr[data-delegation=\"{did}\"]");
    page.until_js(
        "the completed delegation listed",
        within,
        &format!("return document.querySelector('{listed}') !== null;"),
    )
    .await;
    page.click(&format!("{listed} button")).await;
    page.until_js(
        "its timeline",
        within,
        "const t = document.querySelector('#timeline-list').textContent; return t.includes('DELEGATION_SENT') && t.includes('DELEGATION_COMPLETE');",
    )
    .await;
    page.shot("delegations").await;

    // System: the loops, and the audit trail of what this operator did.
    page.goto("/console/system").await;
    page.until_js(
        "the background loops",
        within,
        "return document.querySelectorAll('#loop-list tbody tr').length > 0;",
    )
    .await;
    page.type_into("#a-actor", "console:admin").await;
    page.click("#audit-form button[type=submit]").await;
    page.until_js(
        "the operator's actions in the audit",
        within,
        "const rows = [...document.querySelectorAll('#audit-list tbody tr')]; return rows.length > 0 && rows.every((r) => r.children[1].textContent === 'console:admin') && rows.some((r) => r.children[2].textContent === 'WORKSPACE_PROVISIONING');",
    )
    .await;
    page.shot("system").await;

    // Sign out: a page request goes back to sign-in.
    page.click("header form button[type=submit]").await;
    page.goto("/console").await;
    assert!(
        page.client
            .current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/console/sign-in")
    );
    page.shot("signed-out").await;

    page.assert_never_showed(&[ADMIN, CANARY]);
    page.client.close().await.unwrap();
}
