//! `cargo xtask bench console`: the operator console in headless chromium (WebDriver through
//! Debian's chromium-driver), against a release workspace-server holding 1,000 workspaces.
//!
//! Two figures, each beside a reference taken in the same browser in the same run:
//! - the fleet page's load (navigation start to the load event, median of 5), against the same
//!   HTML and assets served as static files, so the ratio is what rendering it on the server
//!   costs over the browser's own work;
//! - an event's way into the DOM: a workspace created through the API until its row is in the
//!   fleet table, against the moment the same event reaches a bare WebSocket on the same
//!   stream in the same page (median and p95 of 20), so the ratio is what the page's refresh
//!   adds to the stream.
//!
//! Must not know: the console's internals beyond its element ids and its sign-in link.

#[allow(clippy::wildcard_imports)]
use super::*;

use std::os::unix::process::CommandExt as _;

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

/// A process and its process group, killed on drop (chromedriver and its browsers).
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// Page loads measured.
const LOADS: usize = 5;

pub(super) fn run(args: &Args) -> anyhow::Result<()> {
    let mut steps = Steps::new(6);
    need_tool("chromium", "chromium")?;
    need_tool("chromedriver", "chromium-driver")?;
    let workspaces = if args.smoke { 50 } else { 1000 };
    let events = if args.smoke { 3 } else { 20 };
    let bin = steps.run("build of workspace-server", || build(args, "workspace-server", None))?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-console-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = (|| {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "bench")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join("workspace-server.log");
        let _server = serve(
            &mut workspace_server(&bin, &url, port, 16, args.smoke),
            &format!("{base}/health"),
            &log,
        )?;
        steps.run(
            &format!("{workspaces} workspaces (a tenth roots, nine children each)"),
            || {
                let mut parent = String::new();
                for i in 0..workspaces {
                    let body = if i % 10 == 0 {
                        format!("{{\"name\":\"fleet-{i:04}\",\"runtime\":\"external\"}}")
                    } else {
                        format!("{{\"name\":\"fleet-{i:04}\",\"runtime\":\"external\",\"parent_id\":\"{parent}\"}}")
                    };
                    let (status, answer) = http("POST", &format!("{base}/workspaces"), "bench", &body)?;
                    if status != 201 {
                        bail!("create: {status} {answer}");
                    }
                    if i % 10 == 0 {
                        let v: Value = serde_json::from_str(&answer)?;
                        parent = v["id"].as_str().unwrap_or_default().to_owned();
                    }
                }
                Ok(())
            },
        )?;
        let from = log_len(&log);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (_driver, c) = steps.run("chromium, signed in through a one-time link", || {
            rt.block_on(open(&base))
        })?;
        let measured = (|| {
            let (load_ms, static_ms) = steps.run(
                &format!("fleet page with {workspaces} workspaces, {LOADS} loads, and its static copy"),
                || rt.block_on(loads(&c, &base, &dir, workspaces)),
            )?;
            let (dom, ws) = steps.run(
                &format!("{events} events: API call to DOM, and to a bare WebSocket"),
                || rt.block_on(event_times(&c, &base, events)),
            )?;
            anyhow::Ok(Figures {
                load_ms,
                static_ms,
                dom_p50: median(dom.clone()),
                dom_p95: percentile(dom, 0.95),
                ws_p50: median(ws),
            })
        })();
        let _ = rt.block_on(c.close());
        let figures = measured?;
        check_server_log(&log, from)?;
        println!(
            "\nconsole ({workspaces} workspaces): fleet load {:.0} ms (static copy {:.0} ms, ratio {:.2}); event to DOM p50 {:.0} ms, p95 {:.0} ms (to a bare WebSocket p50 {:.0} ms, ratio {:.2})",
            figures.load_ms,
            figures.static_ms,
            figures.load_ms / figures.static_ms,
            figures.dom_p50,
            figures.dom_p95,
            figures.ws_p50,
            figures.dom_p50 / figures.ws_p50.max(1.0)
        );
        if args.smoke {
            return Ok(());
        }
        let report = json!({ "benchmark": "console", "workspaces": workspaces, "fleet_load_ms": figures.load_ms,
            "static_load_ms": figures.static_ms, "load_ratio": figures.load_ms / figures.static_ms,
            "event_to_dom_p50_ms": figures.dom_p50, "event_to_dom_p95_ms": figures.dom_p95,
            "event_to_websocket_p50_ms": figures.ws_p50, "events": events,
            "targets": { "fleet_load_ms": 1000, "event_to_dom_ms": 500 } });
        let out = out_dir(args)?;
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("console.json"), serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", out.join("console.json").display());
        Ok(())
    })();
    steps.summary();
    let _ = cluster.destroy();
    result
}

struct Figures {
    load_ms: f64,
    static_ms: f64,
    dom_p50: f64,
    dom_p95: f64,
    ws_p50: f64,
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn median(v: Vec<f64>) -> f64 {
    percentile(v, 0.5)
}

/// Milliseconds since the Unix epoch, as the browser's `Date.now()` counts them.
fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// How long the last navigation took, from its start to the end of the load event.
async fn load_time(c: &Client) -> anyhow::Result<f64> {
    let v = c
        .execute(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd;",
            vec![],
        )
        .await?;
    v.as_f64().context("no navigation timing")
}

/// Polls `script` in the page until it returns something other than null (30 s at most).
async fn until_value(c: &Client, what: &str, script: &str) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = c.execute(script, vec![]).await?;
        if !v.is_null() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("the console did not show {what} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// chromedriver and a headless chromium session at 1280×900, signed in to the console
/// through a one-time link (the token never reaches the browser).
async fn open(base: &str) -> anyhow::Result<(Group, Client)> {
    let driver_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let driver = Group(
        Command::new("chromedriver")
            .arg(format!("--port={driver_port}"))
            // Its own process group, so that the browsers it starts stop with it.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (Debian's chromium-driver)")?,
    );
    let driver_url = format!("http://127.0.0.1:{driver_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Listening is ready: chromedriver keeps connections alive, which `http` cannot read to
    // the end.
    while std::net::TcpStream::connect(("127.0.0.1", driver_port)).is_err() {
        if Instant::now() > deadline {
            bail!("chromedriver did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--disable-extensions"] }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver_url)
        .await
        .context("opening a chromium session")?;
    let (status, body) = http("POST", &format!("{base}/admin/console/sign-in-links"), "bench", "{}")?;
    if status != 201 {
        bail!("sign-in link: {status} {body}");
    }
    let link: Value = serde_json::from_str(&body)?;
    c.goto(link["url"].as_str().context("the sign-in link has no url")?)
        .await?;
    Ok((driver, c))
}

/// The fleet page's load time (median of [`LOADS`]), and that of the same bytes served as
/// static files by a plain file server.
async fn loads(c: &Client, base: &str, dir: &Path, workspaces: usize) -> anyhow::Result<(f64, f64)> {
    let mut loads = Vec::new();
    for _ in 0..LOADS {
        c.goto(&format!("{base}/console")).await?;
        let rows = c
            .execute("return document.querySelectorAll('#fleet tbody tr').length;", vec![])
            .await?;
        if rows.as_u64() != Some(workspaces as u64) {
            bail!("the fleet shows {rows} rows, not {workspaces}");
        }
        loads.push(load_time(c).await?);
    }
    let html = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; fetch('/console').then(r => r.text()).then(done);",
            vec![],
        )
        .await?;
    let site = dir.join("static");
    std::fs::create_dir_all(site.join("console/assets"))?;
    std::fs::write(site.join("console/index.html"), html.as_str().unwrap_or_default())?;
    for asset in ["console.css", "console.js"] {
        let (_, text) = http("GET", &format!("{base}/console/assets/{asset}"), "", "")?;
        std::fs::write(site.join("console/assets").join(asset), text)?;
    }
    let static_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _files = Killed(
        Command::new("python3")
            .args(["-m", "http.server", &static_port.to_string(), "--bind", "127.0.0.1"])
            .current_dir(&site)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting python3 -m http.server")?,
    );
    let static_url = format!("http://127.0.0.1:{static_port}/console/index.html");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http("GET", &static_url, "", "").is_ok_and(|r| r.0 == 200) {
        if Instant::now() > deadline {
            bail!("the static file server did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut statics = Vec::new();
    for _ in 0..LOADS {
        c.goto(&static_url).await?;
        statics.push(load_time(c).await?);
    }
    Ok((median(loads), median(statics)))
}

/// For each of `events` workspaces created through the API: milliseconds until its row is in
/// the fleet table, and until its first event reaches a bare WebSocket in the same page.
async fn event_times(c: &Client, base: &str, events: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    c.goto(&format!("{base}/console")).await?;
    until_value(
        c,
        "the live stream",
        "return document.body.dataset.live === 'open' ? true : null;",
    )
    .await?;
    c.execute(
        "window.__ws = {}; const s = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/console/api/ws');
         s.onmessage = (m) => { const e = JSON.parse(m.data); if (e.workspace_id && !(e.workspace_id in window.__ws)) window.__ws[e.workspace_id] = Date.now(); };
         window.__bare = s; return true;",
        vec![],
    )
    .await?;
    until_value(
        c,
        "the bare WebSocket",
        "return window.__bare.readyState === 1 ? true : null;",
    )
    .await?;
    let (mut dom, mut ws) = (Vec::new(), Vec::new());
    for i in 0..events {
        let name = format!("probe-{i:03}");
        let sel = format!("#fleet tr[data-name=\"{name}\"]");
        c.execute(
            &format!(
                "window.__seen = null; const o = new MutationObserver(() => {{ if (window.__seen === null && document.querySelector('{sel}')) {{ window.__seen = Date.now(); o.disconnect(); }} }});
                 o.observe(document.querySelector('#live'), {{ childList: true, subtree: true }}); return true;"
            ),
            vec![],
        )
        .await?;
        let sent = now_ms();
        let (status, body) = http(
            "POST",
            &format!("{base}/workspaces"),
            "bench",
            &format!("{{\"name\":\"{name}\",\"runtime\":\"external\"}}"),
        )?;
        if status != 201 {
            bail!("create: {status} {body}");
        }
        let id = serde_json::from_str::<Value>(&body)?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let seen = until_value(c, &name, "return window.__seen;").await?;
        let arrived = until_value(
            c,
            &format!("{name}'s event on the bare WebSocket"),
            &format!("return window.__ws['{id}'] || null;"),
        )
        .await?;
        dom.push(seen.as_f64().unwrap_or(f64::NAN) - sent);
        ws.push(arrived.as_f64().unwrap_or(f64::NAN) - sent);
        // Let the page settle, so each event is measured on its own.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((dom, ws))
}
