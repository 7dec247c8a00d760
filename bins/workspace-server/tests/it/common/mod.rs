//! Helpers shared by workspace-server's integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // each test uses some
#![allow(clippy::disallowed_methods)] // tests and benches read CI, PATH and DATABASE_URL directly

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use molecule_testkit::Api;
pub use molecule_testkit::{free_port, until};

/// A child process with its base URL; SIGTERM (then SIGKILL after 20 s) when dropped.
pub struct Proc {
    pub child: Child,
    pub base: String,
    /// The admin token it was started with (empty when not a workspace-server).
    pub admin: String,
}

impl Proc {
    /// The typed client of this server, as its admin.
    pub fn api(&self) -> Api {
        Api::new(&self.base, &self.admin)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (polling, at most `within`) for `child` to exit; kills it and fails past that.
pub fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Sends SIGTERM and waits (at most 15 s) for the exit.
pub fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    wait_exit(child, Duration::from_secs(15))
}

/// `docker <args>`: whether it succeeded and its trimmed stdout.
pub fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

/// `docker <args>`, which must succeed.
pub fn docker_ok(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether a Docker test can run: `problem` describes what is missing. In CI (`CI=true`) a
/// missing piece fails the test; elsewhere it is skipped with a loud message.
pub fn ready_or_skip(test: &str, problem: Option<String>) -> bool {
    let Some(problem) = problem else { return true };
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
        "{test} must run in CI: {problem}"
    );
    eprintln!("\n!!!!!!!! SKIPPING {test}: {problem} !!!!!!!!\n");
    false
}

/// What is missing to run containers from `image`, if anything.
pub fn docker_problem(image: &str) -> Option<String> {
    if !Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some("no Docker engine answers".into());
    }
    if !docker(&["image", "inspect", image]).0 {
        return Some(format!("image {image} is missing (run `cargo xtask image`)"));
    }
    None
}

/// Removes every container and volume of a platform instance, pass or fail.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let label = format!("label=molecule.platform.instance={}", self.0);
        let (_, containers) = docker(&["ps", "-aq", "--filter", &label]);
        for id in containers.lines() {
            docker(&["rm", "-f", id]);
        }
        let (_, volumes) = docker(&["volume", "ls", "-q", "--filter", &label]);
        for v in volumes.lines() {
            docker(&["volume", "rm", "-f", v]);
        }
    }
}

/// A workspace-server process on `database_url` with `ADMIN_TOKEN=admin`, no backend, on a free
/// loopback port, plus `extra` environment.
pub fn start_replica(database_url: &str, admin: &str, extra: &[(&str, &str)]) -> Proc {
    start_replica_logged(database_url, admin, extra, None)
}

/// [`start_replica`], with its stdout and stderr (the log) written to `log` when given.
pub fn start_replica_logged(
    database_url: &str,
    admin: &str,
    extra: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> Proc {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_workspace-server"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("PORT", port.to_string())
        .env("MOLECULE_BIND_ADDR", "127.0.0.1")
        .env("ADMIN_TOKEN", admin)
        .env("MOLECULE_BACKEND", "none")
        // Tests drive more than a client's share; the limit has its own test.
        .env("RATE_LIMIT", "1000000")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    if let Some(path) = log {
        let file = std::fs::File::create(path).unwrap();
        cmd.stdout(file.try_clone().unwrap()).stderr(file);
    }
    Proc {
        child: cmd.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
        admin: admin.to_owned(),
    }
}

/// The tools virtualenv's python when it can import `modules` (`cargo xtask test` installs
/// them); otherwise skips `test` loudly (fails in CI), naming what to install.
pub fn tools_python(test: &str, modules: &str, install: &str) -> Option<std::path::PathBuf> {
    let home = std::env::var_os("HOME").map_or_else(|| std::path::PathBuf::from("/root"), std::path::PathBuf::from);
    let python = home.join(".cache/molecule/venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let problem = (!ok).then(|| {
        format!(
            "{} cannot import {modules} (pip install {install} into that virtualenv; cargo xtask test does)",
            python.display()
        )
    });
    ready_or_skip(test, problem).then_some(python)
}

/// The text of the server log at `log` once a line of it satisfies `line` (polled for up to
/// 10 s): the server writes its lines a few milliseconds after they are logged.
pub async fn log_once(log: &std::path::Path, what: &str, line: impl Fn(&str) -> bool) -> String {
    molecule_testkit::until_ok(what, Duration::from_secs(10), || async {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(&line) { Ok(text) } else { Err(text) }
    })
    .await
}

/// The status of `GET <path>` sent byte for byte (no client normalises `..` or `%2e%2e`
/// away), with a bearer token.
pub fn raw_get_status(base: &str, path: &str, token: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// The environment of a server whose workloads are the reference agent run as local
/// processes (data in `data`), heartbeating every second.
pub fn local_agents<'a>(agent: &'a std::path::Path, data: &'a std::path::Path) -> Vec<(&'static str, &'a str)> {
    vec![
        ("MOLECULE_BACKEND", "local"),
        ("MOLECULE_LOCAL_AGENT_COMMAND", agent.to_str().unwrap()),
        ("MOLECULE_DATA_DIR", data.to_str().unwrap()),
        ("MOLECULE_AGENT_ENV", "HEARTBEAT_INTERVAL_SECONDS=1"),
    ]
}
