//! `cargo xtask bench <name>`: throughput figures against real servers, never timed tests.
//!
//! `heartbeat`: heartbeat requests per second through a release workspace-server (wrk, 32
//! connections), against pgbench running the same SQL a heartbeat runs, on the same cluster
//! with the same concurrency. The ratio is what to watch.
//!
//! `memory`: full-text search latency (p50/p99) through a release memory-plugin-postgres over
//! 100k memories in the 3 namespaces a root workspace reads, against pgbench running the same
//! statement (`xtask/bench/memory-search.sql`, kept identical by a test) on the same cluster;
//! then the same searches as the MCP tool `search_memory` of a release workspace-server in
//! front of that plugin; then commit throughput, straight to the plugin and as
//! `commit_memory_v2`.
//!
//! `a2a`: messages through the A2A proxy of a release workspace-server to a release reference
//! agent, against wrk calling the same agent directly in the same run (p50 latency and
//! throughput ratios); and the queue's enqueue → claim → complete cycle with an empty table
//! against the same cycle beside 1M finished rows.
//!
//! `scheduler`: 10,000 schedules over 1,000 workspaces due at one instant, fired by a release
//! workspace-server through its A2A proxy to a stub agent: the time to fire them all, their
//! lateness (p50/p99), and the database time per claim against pgbench running the claim as
//! one statement over the same rows.
//!
//! `console`: the operator console in headless chromium with 1,000 workspaces: the fleet
//! page's load against the same bytes served statically, and an event's way from the API call
//! into the DOM against its arrival on a bare WebSocket in the same page.
//!
//! `--smoke` runs every benchmark small, on the debug build `cargo xtask test` already made,
//! with fewer pool slots than concurrent clients: it asserts no ratio, but fails on any load
//! tool error or timeout and on any warning the servers log (a pool wait among them). That is
//! how CI notices a path that holds one connection while waiting for another.
//!
//! Layout: this module holds the arguments, the dispatch and what every benchmark shares
//! (builds, the server launch, wrk and pgbench parsing, the server-log check); `cpu` reads each
//! process's CPU from `/proc`; each benchmark has a file of its own.

mod a2a;
mod console;
mod cpu;
mod heartbeat;
mod ledger;
mod memory;
mod provision;
mod scheduler;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use molecule_pg_cluster::{Cluster, Options};

use crate::steps::{Steps, cargo, exec, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark: `heartbeat`, `ledger`, `provision`, `memory`, `a2a`, `scheduler` or
    /// `console`.
    pub name: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Concurrent connections (wrk) and clients (pgbench).
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// Workspaces heartbeating.
    #[arg(long, default_value_t = 50)]
    pub workspaces: usize,
    /// `a2a`: milliseconds the reference agent takes per message (a model's latency).
    #[arg(long, default_value_t = 20)]
    pub agent_work_ms: u64,
    /// A short run on the debug build that fails on errors, timeouts or logged warnings and
    /// asserts no ratio (what `cargo xtask test` runs).
    #[arg(long)]
    pub smoke: bool,
}

/// Every benchmark, smoke-sized (`cargo xtask test` calls this).
pub fn smoke_all() -> anyhow::Result<()> {
    for name in [
        "heartbeat",
        "ledger",
        "provision",
        "memory",
        "a2a",
        "scheduler",
        "console",
    ] {
        println!("--- bench {name} --smoke");
        run(Args {
            name: name.into(),
            seconds: 2,
            connections: 16,
            workspaces: 10,
            agent_work_ms: 0,
            smoke: true,
        })
        .with_context(|| format!("bench {name} --smoke"))?;
    }
    Ok(())
}

/// Builds what a benchmark runs and returns the directory holding the binaries: release
/// builds of the named package for a measurement; for a smoke run, the workspace's debug build
/// (the same one the tests use, so nothing is rebuilt).
fn build(args: &Args, package: &str, example: Option<&str>) -> anyhow::Result<std::path::PathBuf> {
    if args.smoke {
        return crate::steps::workspace_debug_build();
    }
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", package]);
    if let Some(e) = example {
        cmd.args(["--example", e]);
    }
    exec(&mut cmd)?;
    Ok(target_dir()?.join("release"))
}

/// One count of wrk's `Socket errors: connect 0, read 0, write 0, timeout 0` line (0 when wrk
/// printed none).
fn wrk_socket_errors(text: &str, kind: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .and_then(|errors| {
            errors
                .split(',')
                .find_map(|e| e.trim().strip_prefix(kind)?.strip_prefix(' '))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Requests wrk gave up on (slower than its `--timeout`).
fn wrk_timeouts(text: &str) -> u64 {
    wrk_socket_errors(text, "timeout")
}

/// Runs wrk and returns its output. Fails when wrk reports non-2xx answers or connect, read or
/// write errors: a benchmark that "passed" with errors measured nothing. Requests slower than
/// the timeout fail it too unless they are rare, at most one in 10,000 (one is always
/// allowed): on two cores shared by wrk, both servers and Postgres, a run of 50k commits now
/// and then sees a request stall past a second, which says nothing about its throughput. They
/// are printed, and the memory benchmark reports them ([`wrk_timeouts`]).
fn wrk(connections: u32, seconds: u64, latency: bool, script: &Path, base: &str) -> anyhow::Result<String> {
    let mut cmd = Command::new("wrk");
    // A request slower than a second is a timeout: a wait on the pool shows up as one.
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "1s",
    ]);
    if latency {
        cmd.arg("--latency");
    }
    let out = cmd.arg("-s").arg(script).arg(base).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}");
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let timeouts = wrk_timeouts(&text);
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let socket_errors = ["connect", "read", "write"]
        .iter()
        .any(|kind| wrk_socket_errors(&text, kind) > 0);
    let bad: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with("Non-2xx")
                || (l.starts_with("Socket errors") && (socket_errors || timeouts > (requests / 10_000).max(1)))
        })
        .collect();
    if !bad.is_empty() {
        bail!("wrk reported failures: {}", bad.join("; "));
    }
    if timeouts > 0 {
        println!("note: {timeouts} of {requests} requests took longer than wrk's 1 s timeout (allowed: one in 10,000)");
    }
    if parse_after(&text, "Requests/sec:").is_none_or(|r| r <= 0.0) {
        bail!("wrk completed no request in {seconds}s");
    }
    Ok(text)
}

/// Where reports go: `target/bench/`, or `target/bench/smoke/` for smoke runs (whose figures
/// measure nothing and must not overwrite real ones).
fn out_dir(args: &Args) -> anyhow::Result<std::path::PathBuf> {
    let dir = target_dir()?.join("bench");
    Ok(if args.smoke { dir.join("smoke") } else { dir })
}

/// How much a server has logged so far (see [`check_server_log`]), once its log has stopped
/// growing: a server's lines reach the file some milliseconds after they are logged
/// (`molecule_telemetry::writer`), so the length is read until two reads 30 ms apart agree
/// (2 s at most, for a server that never falls quiet).
fn log_len(log: &Path) -> usize {
    let len = || std::fs::metadata(log).map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = len();
    loop {
        std::thread::sleep(Duration::from_millis(30));
        let now = len();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Fails when a server under test logged a warning or an error after byte `from` of its log
/// (its stderr is kept in `log`): what it logged while under load.
fn check_server_log(log: &Path, from: usize) -> anyhow::Result<()> {
    log_len(log); // what was logged under load has reached the file
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let text = text.get(from..).unwrap_or_default();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("WARN")
                || l.contains("ERROR")
                || l.contains("\"level\":\"WARN")
                || l.contains("\"level\":\"ERROR")
        })
        .take(5)
        .collect();
    if !bad.is_empty() {
        bail!(
            "the server logged warnings under load ({}):\n{}",
            log.display(),
            bad.join("\n")
        );
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.name.as_str() {
        "heartbeat" => heartbeat::run(&args),
        "ledger" => ledger::run(&args),
        "provision" => provision::run(&args),
        "memory" => memory::run(&args),
        "a2a" => a2a::run(&args),
        "scheduler" => scheduler::run(&args),
        "console" => console::run(&args),
        other => bail!(
            "unknown benchmark {other:?}; available: heartbeat, ledger, provision, memory, a2a, scheduler, console"
        ),
    }
}

/// workspace-server as every benchmark runs it: on `database_url`, listening on
/// 127.0.0.1:`port`, admin token `bench`, no backend, `pool_size` pooled connections, and a
/// pool wait that fails within the load window (1 s in a smoke run). Callers add their knobs.
fn workspace_server(bin: &Path, database_url: &str, port: u16, pool_size: u32, smoke: bool) -> Command {
    let mut cmd = Command::new(bin.join("workspace-server"));
    cmd.env("DATABASE_URL", database_url)
        .env("PORT", port.to_string())
        .env("MOLECULE_BIND_ADDR", "127.0.0.1")
        .env("ADMIN_TOKEN", "bench")
        .env("MOLECULE_BACKEND", "none")
        // Load tools are a few clients sending far more than a client's share.
        .env("RATE_LIMIT", "100000000")
        .env("MOLECULE_DB_POOL_SIZE", pool_size.to_string())
        .env("MOLECULE_DB_CONNECT_TIMEOUT_SECONDS", if smoke { "1" } else { "5" });
    cmd
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server (warnings and errors only, to `log`) and waits up to 60 s for `health` to
/// answer 200.
fn serve(cmd: &mut Command, health: &str, log: &Path) -> anyhow::Result<Killed> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let stderr = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = Killed(
        cmd.env("RUST_LOG", "warn")
            .env("MOLECULE_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {name}"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http("GET", health, "", "").is_ok_and(|r| r.0 == 200) {
        if Instant::now() > deadline {
            bail!("{name} did not answer {health} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(child)
}

/// Minimal HTTP/1.1 request over loopback; returns (status, body).
fn http(method: &str, url: &str, token: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn need_tool(tool: &str, package: &str) -> anyhow::Result<()> {
    if Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()?
        .success()
    {
        return Ok(());
    }
    if !molecule_pg_cluster::running_as_root() {
        bail!("{tool} is missing: apt-get install {package}");
    }
    println!("{tool} is missing; installing Debian's {package}");
    exec(
        Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn parse_after(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(key)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    })
}

/// Milliseconds from a wrk latency cell such as `812.00us`, `1.52ms` or `1.01s`.
fn wrk_ms(cell: &str) -> Option<f64> {
    let (num, factor) = if let Some(n) = cell.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = cell.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = cell.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|v| v * factor)
}

/// The `p%` line of wrk's `--latency` distribution, in milliseconds.
fn wrk_percentile(text: &str, p: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let mut cells = l.split_whitespace();
        (cells.next() == Some(p))
            .then(|| cells.next().and_then(wrk_ms))
            .flatten()
    })
}

/// p50 and p99 in milliseconds from pgbench's per-transaction logs (latency in µs, 3rd field).
fn pgbench_percentiles(dir: &Path, prefix: &str) -> anyhow::Result<(f64, f64, usize)> {
    let mut lat: Vec<f64> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        {
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse::<f64>().ok()) {
                    lat.push(us / 1000.0);
                }
            }
        }
    }
    if lat.is_empty() {
        bail!("pgbench wrote no transaction log under {}", dir.display());
    }
    lat.sort_by(f64::total_cmp);
    let at = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.50), at(0.99), lat.len()))
}

/// wrk with latency figures against `base`, failing on anything the server logs meanwhile:
/// (p50 ms, p99 ms, requests/s).
fn wrk_latency(clients: u32, seconds: u64, script: &Path, base: &str, log: &Path) -> anyhow::Result<(f64, f64, f64)> {
    let from = log_len(log);
    let text = wrk(clients, seconds, true, script, base)?;
    check_server_log(log, from)?;
    Ok((
        wrk_percentile(&text, "50%").context("no p50 in wrk output")?,
        wrk_percentile(&text, "99%").context("no p99 in wrk output")?,
        parse_after(&text, "Requests/sec:").context("no Requests/sec")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::wrk_timeouts;

    #[test]
    fn timeouts_are_read_from_the_socket_errors_line() {
        let out = "  45067 requests in 10.01s, 9.46MB read\n  Socket errors: connect 0, read 0, write 0, timeout 3\nRequests/sec:   4500.45\n";
        assert_eq!(wrk_timeouts(out), 3);
        assert_eq!(super::wrk_socket_errors(out, "read"), 0);
        assert_eq!(
            super::wrk_socket_errors("Socket errors: connect 0, read 12, write 0, timeout 0", "read"),
            12
        );
        assert_eq!(wrk_timeouts("  45067 requests in 10.01s\nRequests/sec: 4500\n"), 0);
    }
}
