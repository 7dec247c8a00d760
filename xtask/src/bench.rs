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
//! `--smoke` runs every benchmark small, on the debug build `cargo xtask test` already made,
//! with fewer pool slots than concurrent clients: it asserts no ratio, but fails on any load
//! tool error or timeout and on any warning the servers log (a pool wait among them). That is
//! how CI notices a path that holds one connection while waiting for another.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use molecule_pg_cluster::{Cluster, Options};

use crate::steps::{Steps, cargo, exec, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark: `heartbeat`, `ledger`, `provision`, `memory` or `a2a`.
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
    for name in ["heartbeat", "ledger", "provision", "memory", "a2a"] {
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
        "heartbeat" => heartbeat(&args),
        "ledger" => ledger(&args),
        "provision" => provision(&args),
        "memory" => memory(&args),
        "a2a" => a2a(&args),
        other => bail!("unknown benchmark {other:?}; available: heartbeat, ledger, provision, memory, a2a"),
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU seconds each process of the memory benchmark has used so far, by part: the plugin,
/// workspace-server and PostgreSQL (the postmaster and its backends), and within PostgreSQL
/// the backends serving workspace-server's own database (its audit rows, tokens and tree).
/// Read from `/proc`, in the kernel's USER_HZ ticks, which Linux fixes at 100 on every
/// architecture it exposes to user space.
#[derive(Debug, Clone, Default)]
struct CpuSplit(std::collections::HashMap<u32, (usize, bool, f64)>);

/// The parts, in [`CpuSplit`]'s order; the last is a share of `postgres`, not an addition.
const CPU_PARTS: [&str; 4] = [
    "plugin",
    "workspace_server",
    "postgres",
    "postgres_for_workspace_server_db",
];

impl CpuSplit {
    /// `server_db`: the database name workspace-server's backends show in their process title.
    fn now(plugin: u32, server: u32, postmaster: u32, server_db: &str) -> Self {
        let mut split = Self::default();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return split;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // After the command name (which may hold spaces): state, ppid, … utime (14th), stime.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
            let ppid = fields.get(1).and_then(|f| f.parse::<u32>().ok()).unwrap_or(0);
            let part = match pid {
                p if p == plugin => 0,
                p if p == server => 1,
                p if p == postmaster || ppid == postmaster => 2,
                _ => continue,
            };
            // A backend's title names its database: "postgres: <user> <database> <client>
            // <state>", or "postgres: autovacuum worker <database>".
            let for_server = part == 2
                && std::fs::read(entry.path().join("cmdline")).is_ok_and(|title| {
                    String::from_utf8_lossy(&title)
                        .split_whitespace()
                        .any(|w| w == server_db)
                });
            split.0.insert(pid, (part, for_server, (field(11) + field(12)) / 100.0));
        }
        split
    }

    /// Milliseconds of CPU per request between `self` and `later`, by part (a process that
    /// ended in between is left out; one that started counts whole).
    fn per_request(&self, later: &Self, requests: f64) -> serde_json::Value {
        let mut used = [0.0_f64; 4];
        for (pid, (part, for_server, seconds)) in &later.0 {
            let before = self.0.get(pid).map_or(0.0, |(_, _, s)| *s);
            used[*part] += seconds - before;
            if *for_server {
                used[3] += seconds - before;
            }
        }
        let ms = |s: f64| (s * 1000.0 / requests.max(1.0) * 1000.0).round() / 1000.0;
        serde_json::Value::Object(
            CPU_PARTS
                .iter()
                .zip(used)
                .map(|(name, s)| ((*name).to_owned(), ms(s).into()))
                .collect(),
        )
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

fn heartbeat(args: &Args) -> anyhow::Result<()> {
    let mut steps = Steps::new(6);
    need_tool("wrk", "wrk")?;
    let bin = steps.run("build of workspace-server", || build(args, "workspace-server", None))?;
    // Fewer pool slots than clients in a smoke run: a request that needs two connections at
    // once waits, and the pool's wait shows as a logged warning or a wrk timeout.
    let pool_size = if args.smoke { args.connections / 4 } else { 32 }.max(1);
    let dir = std::env::temp_dir().join(format!("molecule-bench-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = (|| {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "bench")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join("workspace-server.log");
        let _server = serve(
            Command::new(bin.join("workspace-server"))
                .env("DATABASE_URL", &url)
                .env("PORT", port.to_string())
                .env("MOLECULE_BIND_ADDR", "127.0.0.1")
                .env("ADMIN_TOKEN", "bench")
                .env("MOLECULE_BACKEND", "none")
                .env("MOLECULE_DB_POOL_SIZE", pool_size.to_string())
                // A pool wait fails (and logs) within the load window, not after it.
                .env(
                    "MOLECULE_DB_CONNECT_TIMEOUT_SECONDS",
                    if args.smoke { "1" } else { "5" },
                ),
            &format!("{base}/health"),
            &log,
        )?;
        let pairs = steps.run(&format!("{} workspaces, registered", args.workspaces), || {
            let mut pairs = Vec::new();
            for i in 0..args.workspaces {
                let (status, body) = http(
                    "POST",
                    &format!("{base}/workspaces"),
                    "bench",
                    &format!("{{\"name\":\"bench-{i}\"}}"),
                )?;
                if status != 201 {
                    bail!("create: {status} {body}");
                }
                let v: serde_json::Value = serde_json::from_str(&body)?;
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                // A provisioned workspace's create answer carries no token: mint one.
                let (status, body) = http("POST", &format!("{base}/workspaces/{id}/tokens"), "bench", "")?;
                if status != 201 {
                    bail!("mint a token: {status} {body}");
                }
                let minted: serde_json::Value = serde_json::from_str(&body)?;
                let token = minted["auth_token"].as_str().unwrap_or_default().to_owned();
                let reg =
                    format!("{{\"id\":\"{id}\",\"url\":\"http://127.0.0.1:9\",\"agent_card\":{{\"name\":\"bench\"}}}}");
                let (status, body) = http("POST", &format!("{base}/registry/register"), &token, &reg)?;
                if status != 200 {
                    bail!("register: {status} {body}");
                }
                pairs.push((id, token));
            }
            Ok(pairs)
        })?;
        let script = dir.join("heartbeat.lua");
        let entries: Vec<String> = pairs.iter().map(|(id, t)| format!("{{\"{id}\",\"{t}\"}}")).collect();
        std::fs::write(
            &script,
            format!(
                "local pairs = {{{}}}\nlocal i = 0\nrequest = function()\n  i = (i % #pairs) + 1\n  local p = pairs[i]\n  local body = '{{\"workspace_id\":\"' .. p[1] .. '\",\"error_rate\":0,\"active_tasks\":1,\"uptime_seconds\":42,\"current_task\":\"bench\",\"runtime_state\":\"\"}}'\n  return wrk.format(\"POST\", \"/registry/heartbeat\", {{[\"Content-Type\"]=\"application/json\", [\"Authorization\"]=\"Bearer \" .. p[2]}}, body)\nend\n",
                entries.join(",")
            ),
        )?;
        let server_rps = steps.run("wrk: POST /registry/heartbeat through the server", || {
            let from = log_len(&log);
            let text = wrk(args.connections, args.seconds, false, &script, &base)?;
            check_server_log(&log, from)?;
            parse_after(&text, "Requests/sec:").context("wrk printed no Requests/sec")
        })?;
        if args.smoke {
            println!(
                "heartbeat smoke: {server_rps:.0} req/s, no errors, timeouts or warnings (pool of {pool_size} for {} clients)",
                args.connections
            );
            return Ok(());
        }
        let sql_tps = steps.run("pgbench: the same SQL, same cluster, same concurrency", || {
            pgbench(&cluster, &dir, args)
        })?;
        println!(
            "\nheartbeat: server {server_rps:.0} req/s, pgbench {sql_tps:.0} tps, ratio {:.2}",
            server_rps / sql_tps
        );
        let report = serde_json::json!({ "benchmark": "heartbeat", "server_requests_per_second": server_rps, "pgbench_tps": sql_tps, "ratio": server_rps / sql_tps, "connections": args.connections, "seconds": args.seconds, "workspaces": args.workspaces });
        let out = out_dir(args)?;
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("heartbeat.json"), serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", out.join("heartbeat.json").display());
        Ok(())
    })();
    steps.summary();
    let _ = cluster.destroy();
    result
}

/// The statements one heartbeat runs in steady state, as the server runs them: the locked
/// status read, the update and the live-event NOTIFY in one transaction, then the callee's
/// delegation heartbeat (on the same connection). No token lookup: the server's token cache
/// reads each token once per `TOKEN_CACHE_TTL` (5 s), a tenth of a lookup a second per
/// workspace here. The workload reports its one slot busy, so no queue probe follows. Keep it
/// in step with `Services::heartbeat` and the ledger's `heartbeat_callee`.
fn pgbench(cluster: &Cluster, dir: &Path, args: &Args) -> anyhow::Result<f64> {
    let bin = molecule_pg_cluster::find_bin_dir()?;
    let url = molecule_pg_cluster::with_database(&cluster.url("postgres"), "bench");
    let setup = "DROP TABLE IF EXISTS bench_ids; CREATE TABLE bench_ids AS SELECT row_number() OVER () AS n, w.id, t.token_hash FROM workspaces w JOIN workspace_auth_tokens t ON t.workspace_id = w.id WHERE t.revoked_at IS NULL; CREATE UNIQUE INDEX ON bench_ids (n);";
    exec(Command::new(bin.join("psql")).args(["-qAt", "-d", &url, "-c", setup]))?;
    let script = dir.join("heartbeat.sql");
    std::fs::write(
        &script,
        format!(
            "\\set i random(1, {n})
BEGIN;
SELECT status, current_task, max_concurrent_tasks FROM workspaces WHERE id = (SELECT id FROM bench_ids WHERE n = :i) FOR NO KEY UPDATE;
UPDATE workspaces SET last_heartbeat_at = now(), last_error_rate = 0, active_tasks = 1, uptime_seconds = 42, current_task = 'bench', idle_timeout_seconds = NULL, updated_at = now() WHERE id = (SELECT id FROM bench_ids WHERE n = :i);
SELECT pg_notify('molecule_events', '{{\"event\":\"WORKSPACE_HEARTBEAT\",\"workspace_id\":null,\"timestamp\":\"2026-01-01T00:00:00Z\",\"payload\":{{}}}}');
COMMIT;
UPDATE delegations SET last_heartbeat = now(), updated_at = now(), status = CASE WHEN status = 'stuck' THEN 'in_progress' ELSE status END, error_detail = CASE WHEN status = 'stuck' THEN NULL ELSE error_detail END WHERE callee_id = (SELECT id FROM bench_ids WHERE n = :i) AND status IN ('queued', 'dispatched', 'in_progress', 'stuck');
",
            n = args.workspaces
        ),
    )?;
    let out = Command::new(bin.join("pgbench"))
        .args([
            "-n",
            "-j2",
            &format!("-c{}", args.connections),
            &format!("-T{}", args.seconds),
            "-f",
        ])
        .arg(&script)
        .arg(&url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("pgbench failed");
    }
    parse_after(&text, "tps =").context("pgbench printed no tps")
}

/// Ledger transitions per second through the crate (16 writers) against pgbench running the
/// same compare-and-set UPDATE (16 clients) on the same cluster; sweep time with 1M terminal
/// rows against none (1k in flight both times).
fn ledger(args: &Args) -> anyhow::Result<()> {
    let mut steps = Steps::new(4);
    let bin = steps.run("build of the ledger benchmark", || {
        build(args, "molecule-ledger", Some("ledger_bench"))
    })?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-ledger-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = (|| {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "ledger_bench")?;
        let crate_figures: serde_json::Value = steps.run(
            "through molecule-ledger (1M-row sweep included; about a minute)",
            || {
                let out = Command::new(bin.join("examples/ledger_bench"))
                    .env("DATABASE_URL", &url)
                    .env("BENCH_SMOKE", if args.smoke { "1" } else { "0" })
                    .output()?;
                if !out.status.success() {
                    bail!("ledger_bench failed: {}", String::from_utf8_lossy(&out.stderr));
                }
                Ok(serde_json::from_slice(&out.stdout)?)
            },
        )?;
        let pg_tps = steps.run("pgbench: the same CAS UPDATE", || {
            let bin = molecule_pg_cluster::find_bin_dir()?;
            let setup = "DELETE FROM delegations; INSERT INTO delegations (delegation_id, caller_id, callee_id, task_preview) SELECT 'p-' || g, gen_random_uuid(), gen_random_uuid(), 'task' FROM generate_series(1, 20000) g; ANALYZE delegations;";
            exec(Command::new(bin.join("psql")).args(["-qAt", "-d", &url, "-c", setup]))?;
            let script = dir.join("cas.sql");
            std::fs::write(
                &script,
                "\\set i random(1, 20000)\nWITH cur AS (SELECT status FROM delegations WHERE delegation_id = 'p-' || :i), upd AS (UPDATE delegations SET status = 'dispatched', result_preview = COALESCE(NULL, result_preview), finished_at = finished_at, updated_at = now() WHERE delegation_id = 'p-' || :i AND status = ANY('{queued,dispatched}') RETURNING status) SELECT (SELECT status FROM cur), (SELECT status FROM upd);\n",
            )?;
            let out = Command::new(bin.join("pgbench"))
                .args(["-n", "-j2", "-c16", &format!("-T{}", args.seconds), "-f"])
                .arg(&script)
                .arg(&url)
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.status.success() {
                bail!("pgbench failed: {text}{}", String::from_utf8_lossy(&out.stderr));
            }
            parse_after(&text, "tps =").context("pgbench printed no tps")
        })?;
        let crate_tps = crate_figures["transitions_per_second"].as_f64().unwrap_or(0.0);
        let ratio =
            |a: &str, b: &str| crate_figures[a].as_f64().unwrap_or(0.0) / crate_figures[b].as_f64().unwrap_or(f64::NAN);
        let report = serde_json::json!({
            "benchmark": "ledger",
            "crate": crate_figures,
            "pgbench_cas_update_tps": pg_tps,
            "transitions_ratio_crate_to_pgbench": crate_tps / pg_tps,
            "sweep_idle_ratio_1m_to_0": ratio("sweep_idle_ms_1m_terminal", "sweep_idle_ms_0_terminal"),
            "sweep_busy_ratio_1m_to_0": ratio("sweep_1k_deadline_failures_ms_1m_terminal", "sweep_1k_deadline_failures_ms_0_terminal"),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        let out = out_dir(args)?;
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("ledger.json"), serde_json::to_string_pretty(&report)?)?;
        Ok(())
    })();
    steps.summary();
    let _ = cluster.destroy();
    result
}

/// Org provisioning wall time at three concurrency caps (500 ms per provision).
fn provision(args: &Args) -> anyhow::Result<()> {
    let mut steps = Steps::new(3);
    let bin = steps.run("build of the provisioning benchmark", || {
        build(args, "molecule-dispatcher", Some("provision_bench"))
    })?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-provision-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = steps.run("50 workspaces at MOLECULE_PROVISION_CONCURRENCY 0, 3 and 10", || {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "provision_bench")?;
        let out = Command::new(bin.join("examples/provision_bench"))
            .env("DATABASE_URL", &url)
            .output()?;
        if !out.status.success() {
            bail!("provision_bench failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let figures: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        println!("{}", serde_json::to_string_pretty(&figures)?);
        let dir = out_dir(args)?;
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("provision.json"), serde_json::to_string_pretty(&figures)?)?;
        Ok(())
    });
    steps.summary();
    let _ = cluster.destroy();
    result
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

const MEMORY_WORDS: u32 = 2000;

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

fn memory(args: &Args) -> anyhow::Result<()> {
    let mut steps = Steps::new(13);
    need_tool("wrk", "wrk")?;
    let plugin_bin = steps.run("build of memory-plugin-postgres and workspace-server", || {
        build(args, "memory-plugin-postgres", None)?;
        build(args, "workspace-server", None)
    })?;
    let memories: u32 = if args.smoke { 2_000 } else { 100_000 };
    let dir = std::env::temp_dir().join(format!("molecule-bench-memory-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let clients = 4;
    let result = (|| {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "memory_bench")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join("memory-plugin.log");
        let plugin = serve(
            Command::new(plugin_bin.join("memory-plugin-postgres"))
                .env("MEMORY_PLUGIN_DATABASE_URL", &url)
                .env("MEMORY_PLUGIN_LISTEN_ADDR", format!("127.0.0.1:{port}"))
                .env("MOLECULE_DB_POOL_SIZE", if args.smoke { "4" } else { "16" }),
            &format!("{base}/v1/health"),
            &log,
        )?;
        // A root workspace behind a workspace-server in front of the plugin: its three
        // namespaces (own, team, org) are the ones searched both ways.
        let server_db = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "memory_bench_server")?;
        let server_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server_base = format!("http://127.0.0.1:{server_port}");
        let server_log = dir.join("workspace-server.log");
        let server = serve(
            Command::new(plugin_bin.join("workspace-server"))
                .env("DATABASE_URL", &server_db)
                .env("PORT", server_port.to_string())
                .env("MOLECULE_BIND_ADDR", "127.0.0.1")
                .env("ADMIN_TOKEN", "bench")
                .env("MOLECULE_BACKEND", "none")
                .env("MEMORY_PLUGIN_URL", &base)
                .env("MOLECULE_MCP_CALLS_PER_MINUTE", "100000000")
                .env("MOLECULE_DB_POOL_SIZE", if args.smoke { "4" } else { "16" }),
            &format!("{server_base}/health"),
            &server_log,
        )?;
        let (status, body) = http(
            "POST",
            &format!("{server_base}/workspaces"),
            "bench",
            r#"{"name":"rememberer","runtime":"external"}"#,
        )?;
        if status != 201 {
            bail!("create: {status} {body}");
        }
        let created: serde_json::Value = serde_json::from_str(&body)?;
        let ws = created["id"].as_str().unwrap_or_default().to_owned();
        let token = created["auth_token"].as_str().unwrap_or_default().to_owned();
        let namespaces = [format!("workspace:{ws}"), format!("team:{ws}"), format!("org:{ws}")];
        let bin = molecule_pg_cluster::find_bin_dir()?;
        steps.run(
            &format!("{memories} memories over 3 namespaces (12 words each from 2000)"),
            || {
                for (ns, kind) in namespaces.iter().zip(["workspace", "team", "org"]) {
                    let (status, body) = http(
                        "PUT",
                        &format!("{base}/v1/namespaces/{ns}"),
                        "",
                        &format!(r#"{{"kind":"{kind}"}}"#),
                    )?;
                    if status != 200 {
                        bail!("PUT {ns}: {status} {body}");
                    }
                }
                let seed = format!(
                    "INSERT INTO memory_plugin.memories (id, namespace, content, kind, source)
                 SELECT gen_random_uuid(), (ARRAY['{a}','{b}','{c}'])[1 + g % 3],
                        (SELECT string_agg('term' || (1 + floor(random() * {MEMORY_WORDS}))::int, ' ')
                           FROM generate_series(1, 12) WHERE g > 0),
                        'fact', 'agent'
                   FROM generate_series(1, {memories}) g;
                 ANALYZE memory_plugin.memories; ANALYZE memory_plugin.namespaces;",
                    a = namespaces[0],
                    b = namespaces[1],
                    c = namespaces[2]
                );
                exec(Command::new(bin.join("psql")).args(["-qAt", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c", &seed]))
            },
        )?;
        let namespaces_json = namespaces
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(",");
        let search_lua = dir.join("search.lua");
        std::fs::write(
            &search_lua,
            format!(
                "math.randomseed(7)\nrequest = function()\n  local body = '{{\"namespaces\":[{namespaces_json}],\"query\":\"term' .. math.random(1, {MEMORY_WORDS}) .. '\",\"limit\":20}}'\n  return wrk.format(\"POST\", \"/v1/search\", {{[\"Content-Type\"]=\"application/json\"}}, body)\nend\n"
            ),
        )?;
        let (http_p50, http_p99, http_rps) = steps.run(
            &format!("wrk: full-text POST /v1/search, {clients} connections"),
            || wrk_latency(clients, args.seconds, &search_lua, &base, &log),
        )?;
        let (sql_p50, sql_p99, sql_n) =
            steps.run("pgbench: the same statement, same cluster, same concurrency", || {
                let template =
                    std::fs::read_to_string(crate::steps::repo_root().join("xtask/bench/memory-search.sql"))?;
                let ns_array = format!("'{{{}}}'::text[]", namespaces.join(","));
                let statement = template
                    .replace("$1", &ns_array)
                    .replace("$2", "NULL")
                    .replace("$3", "20")
                    .replace("$4", "('term' || :w)");
                let script = dir.join("search.sql");
                // pgbench takes one statement per line unless it ends with `;`.
                std::fs::write(
                    &script,
                    format!(
                        "\\set w random(1, {MEMORY_WORDS})\n{};\n",
                        statement.trim().replace('\n', " ")
                    ),
                )?;
                let out = Command::new(bin.join("pgbench"))
                    .current_dir(&dir)
                    .args([
                        "-n",
                        "-j2",
                        &format!("-c{clients}"),
                        &format!("-T{}", args.seconds),
                        "--log",
                        "--log-prefix=search",
                        "-f",
                    ])
                    .arg(&script)
                    .arg(&url)
                    .output()?;
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                println!("{text}");
                if !out.status.success() {
                    bail!("pgbench failed: {text}{}", String::from_utf8_lossy(&out.stderr));
                }
                pgbench_percentiles(&dir, "search")
            })?;
        // The same searches and commits as MCP tool calls (one JSON-RPC request each, as the
        // original's runtimes send them), with the workspace's token.
        let mcp_lua = |name: &str, tool: &str, arguments: &str| -> anyhow::Result<std::path::PathBuf> {
            let file = dir.join(name);
            std::fs::write(
                &file,
                format!(
                    "math.randomseed(7)\nrequest = function()\n  local body = '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"{tool}\",\"arguments\":{arguments}}}}}'\n  return wrk.format(\"POST\", \"/workspaces/{ws}/mcp\", {{[\"Content-Type\"]=\"application/json\", [\"Accept\"]=\"application/json, text/event-stream\", [\"Authorization\"]=\"Bearer {token}\"}}, body)\nend\n"
                ),
            )?;
            Ok(file)
        };
        let mcp_search = mcp_lua(
            "mcp-search.lua",
            "search_memory",
            &format!("{{\"query\":\"term' .. math.random(1, {MEMORY_WORDS}) .. '\",\"limit\":20}}"),
        )?;
        // One call first: a tool error would still be a 200 to wrk.
        let (status, body) = http(
            "POST",
            &format!("{server_base}/workspaces/{ws}/mcp"),
            &token,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_memory","arguments":{"query":"term7"}}}"#,
        )?;
        if status != 200 || !body.contains(r#""isError":false"#) {
            bail!("search_memory through MCP failed: {status} {body}");
        }
        let (mcp_p50, mcp_p99, mcp_rps) = steps.run(
            &format!("wrk: the same searches as MCP search_memory, {clients} connections"),
            || wrk_latency(clients, args.seconds, &mcp_search, &server_base, &server_log),
        )?;
        let commit_lua = dir.join("commit.lua");
        std::fs::write(
            &commit_lua,
            format!(
                "request = function()\n  local body = '{{\"content\":\"term' .. math.random(1, {MEMORY_WORDS}) .. ' term' .. math.random(1, {MEMORY_WORDS}) .. ' written by the benchmark\",\"kind\":\"fact\",\"source\":\"agent\"}}'\n  return wrk.format(\"POST\", \"/v1/namespaces/{}/memories\", {{[\"Content-Type\"]=\"application/json\"}}, body)\nend\n",
                namespaces[0]
            ),
        )?;
        // Where the CPU goes, per commit, both ways (the machine is shared by all of them).
        let postmaster: u32 = std::fs::read_to_string(cluster.data_dir().join("postmaster.pid"))?
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .context("no pid in postmaster.pid")?;
        let cpu = || CpuSplit::now(plugin.0.id(), server.0.id(), postmaster, "memory_bench_server");
        // Each commit run starts from the same index state: without this, the GIN index's
        // pending list left by one run is flushed (and paid for) by the next.
        let vacuum = || {
            exec(Command::new(bin.join("psql")).args([
                "-qAt",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &url,
                "-c",
                "VACUUM (ANALYZE) memory_plugin.memories",
            ]))
        };
        // One commit run: vacuumed first, then wrk with 16 connections; its commits per second
        // and the CPU each part used per commit.
        let mut timeouts = Vec::new();
        let mut commit_run =
            |title: &str, lua: &Path, base: &str, log: &Path| -> anyhow::Result<(f64, serde_json::Value)> {
                vacuum()?;
                let before = cpu();
                let (rate, slow) = steps.run(title, || {
                    let from = log_len(log);
                    let text = wrk(16, args.seconds, false, lua, base)?;
                    check_server_log(log, from)?;
                    let rate = parse_after(&text, "Requests/sec:").context("no Requests/sec")?;
                    Ok((rate, wrk_timeouts(&text)))
                })?;
                timeouts.push(slow);
                Ok((rate, before.per_request(&cpu(), rate * args.seconds as f64)))
            };
        let mcp_commit = mcp_lua(
            "mcp-commit.lua",
            "commit_memory_v2",
            &format!(
                "{{\"content\":\"term' .. math.random(1, {MEMORY_WORDS}) .. ' term' .. math.random(1, {MEMORY_WORDS}) .. ' written by the benchmark\"}}"
            ),
        )?;
        // Direct, MCP, direct, MCP, direct: each MCP run is measured against the mean of the
        // direct runs on either side of it, so a drift over the runs (a growing table, a
        // checkpoint) does not land on one side, and two MCP runs halve the luck of one.
        let direct_title = "wrk: POST memories, 16 connections";
        let mcp_title = "wrk: the same commits as MCP commit_memory_v2, 16 connections";
        let (first, direct_cpu) = commit_run(direct_title, &commit_lua, &base, &log)?;
        let (mcp_first, mcp_cpu) = commit_run(mcp_title, &mcp_commit, &server_base, &server_log)?;
        let (second, _) = commit_run(direct_title, &commit_lua, &base, &log)?;
        let (mcp_second, _) = commit_run(mcp_title, &mcp_commit, &server_base, &server_log)?;
        let (third, direct_after_cpu) = commit_run(direct_title, &commit_lua, &base, &log)?;
        let direct_runs = [first, second, third];
        let mcp_runs = [mcp_first, mcp_second];
        let ratios = [
            mcp_first / ((first + second) / 2.0),
            mcp_second / ((second + third) / 2.0),
        ];
        let direct_commits = direct_runs.iter().sum::<f64>() / 3.0;
        let mcp_commits = mcp_runs.iter().sum::<f64>() / 2.0;
        let commit_ratio = ratios.iter().sum::<f64>() / 2.0;
        let report = serde_json::json!({
            "benchmark": "memory",
            "memories": memories,
            "namespaces": namespaces.len(),
            "search_clients": clients,
            "search_http_p50_ms": http_p50,
            "search_http_p99_ms": http_p99,
            "search_http_requests_per_second": http_rps,
            "search_sql_p50_ms": sql_p50,
            "search_sql_p99_ms": sql_p99,
            "search_sql_transactions": sql_n,
            "p50_ratio_http_to_sql": http_p50 / sql_p50,
            "p99_ratio_http_to_sql": http_p99 / sql_p99,
            "commits_per_second": direct_commits,
            "commits_per_second_runs": direct_runs,
            "search_mcp_p50_ms": mcp_p50,
            "search_mcp_p99_ms": mcp_p99,
            "search_mcp_requests_per_second": mcp_rps,
            "p50_ratio_mcp_to_http": mcp_p50 / http_p50,
            "mcp_commits_per_second": mcp_commits,
            "mcp_commits_per_second_runs": mcp_runs,
            "commit_ratio_mcp_to_http": commit_ratio,
            "commit_ratio_runs": ratios,
            "commit_cpu_ms_direct": direct_cpu,
            "commit_cpu_ms_direct_again": direct_after_cpu,
            "commit_cpu_ms_mcp": mcp_cpu,
            "commit_requests_over_1s": timeouts,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        let out = out_dir(args)?;
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("memory.json"), serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", out.join("memory.json").display());
        Ok(())
    })();
    steps.summary();
    let _ = cluster.destroy();
    result
}

/// The A2A proxy against direct calls to the same agent, and the queue's cycle at 0 and 1M old
/// rows.
fn a2a(args: &Args) -> anyhow::Result<()> {
    let mut steps = Steps::new(7);
    need_tool("wrk", "wrk")?;
    let bin = steps.run(
        "build of workspace-server, molecule-agent and the queue benchmark",
        || {
            if args.smoke {
                return crate::steps::workspace_debug_build();
            }
            // Two builds: with `--example`, cargo builds only the examples of the named packages.
            exec(cargo().args(["build", "--release", "-p", "workspace-server", "-p", "molecule-agent"]))?;
            exec(cargo().args(["build", "--release", "-p", "molecule-a2a", "--example", "queue_bench"]))?;
            Ok(target_dir()?.join("release"))
        },
    )?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-a2a-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = (|| {
        let queue_url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "queue_bench")?;
        let queue: serde_json::Value = steps.run("the queue's cycle, empty and beside 1M old rows", || {
            let out = Command::new(bin.join("examples/queue_bench"))
                .env("DATABASE_URL", &queue_url)
                .env("BENCH_SMOKE", if args.smoke { "1" } else { "0" })
                .output()?;
            if !out.status.success() {
                bail!("queue_bench failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(serde_json::from_slice(&out.stdout)?)
        })?;
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "a2a_bench")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join("workspace-server.log");
        let pool_size = if args.smoke { args.connections / 4 } else { 32 }.max(1);
        let _server = serve(
            Command::new(bin.join("workspace-server"))
                .env("DATABASE_URL", &url)
                .env("PORT", port.to_string())
                .env("MOLECULE_BIND_ADDR", "127.0.0.1")
                .env("ADMIN_TOKEN", "bench")
                .env("MOLECULE_BACKEND", "none")
                .env("MOLECULE_DB_POOL_SIZE", pool_size.to_string())
                .env(
                    "MOLECULE_DB_CONNECT_TIMEOUT_SECONDS",
                    if args.smoke { "1" } else { "5" },
                ),
            &format!("{base}/health"),
            &log,
        )?;
        let (id, agent_url, _agent, inbound) =
            steps.run("a reference agent, registered as an external workspace", || {
                let (status, body) = http(
                    "POST",
                    &format!("{base}/workspaces"),
                    "bench",
                    r#"{"name":"echo","runtime":"external"}"#,
                )?;
                if status != 201 {
                    bail!("create: {status} {body}");
                }
                let v: serde_json::Value = serde_json::from_str(&body)?;
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                let token = v["auth_token"].as_str().unwrap_or_default().to_owned();
                let agent_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                let agent_url = format!("http://127.0.0.1:{agent_port}");
                let agent_log = dir.join("agent.log");
                let agent = serve(
                    Command::new(bin.join("molecule-agent"))
                        .env("WORKSPACE_ID", &id)
                        .env("PLATFORM_URL", &base)
                        .env("MOLECULE_WORKSPACE_TOKEN", &token)
                        .env("AGENT_PORT", agent_port.to_string())
                        .env("AGENT_URL", &agent_url)
                        .env("AGENT_WORK_MILLISECONDS", args.agent_work_ms.to_string()),
                    &format!("{agent_url}/health"),
                    &agent_log,
                )?;
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let (_, body) = http("GET", &format!("{base}/workspaces/{id}"), "bench", "")?;
                    if body.contains("\"status\":\"online\"") {
                        break;
                    }
                    if Instant::now() > deadline {
                        bail!("the agent did not register within 30 s: {body}");
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                // The agent takes calls only with the platform's inbound secret: the direct run
                // presents it too, so both runs carry the same header.
                let (status, body) = http("GET", &format!("{base}/workspaces/{id}/secrets/values"), &token, "")?;
                if status != 200 {
                    bail!("reading the agent's secrets: {status} {body}");
                }
                let values: serde_json::Value = serde_json::from_str(&body)?;
                let inbound = values["MOLECULE_PLATFORM_INBOUND_SECRET"]
                    .as_str()
                    .context("the platform minted no inbound secret at registration")?
                    .to_owned();
                Ok((id, agent_url, agent, inbound))
            })?;
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","parts":[{"kind":"text","text":"bench"}]}}}"#;
        let script = |name: &str, path: &str, auth: &str| -> anyhow::Result<std::path::PathBuf> {
            let file = dir.join(name);
            std::fs::write(
                &file,
                format!(
                    "wrk.method = \"POST\"\nwrk.path = \"{path}\"\nwrk.body = '{body}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n{auth}"
                ),
            )?;
            Ok(file)
        };
        let direct = script(
            "direct.lua",
            "/",
            &format!("wrk.headers[\"Authorization\"] = \"Bearer {inbound}\"\n"),
        )?;
        let proxied = script(
            "proxy.lua",
            &format!("/workspaces/{id}/a2a"),
            "wrk.headers[\"Authorization\"] = \"Bearer bench\"\n",
        )?;
        let measure = |script: &Path, target: &str| -> anyhow::Result<(f64, f64)> {
            let from = log_len(&log);
            let text = wrk(args.connections, args.seconds, true, script, target)?;
            check_server_log(&log, from)?;
            Ok((
                wrk_percentile(&text, "50%").context("wrk printed no p50")?,
                parse_after(&text, "Requests/sec:").context("wrk printed no Requests/sec")?,
            ))
        };
        let (direct_p50, direct_rps) = steps.run("wrk: message/send straight to the agent", || {
            measure(&direct, &agent_url)
        })?;
        let (proxy_p50, proxy_rps) = steps.run("wrk: the same through POST /workspaces/:id/a2a", || {
            measure(&proxied, &base)
        })?;
        let report = serde_json::json!({
            "benchmark": "a2a",
            "agent_work_ms": args.agent_work_ms,
            "connections": args.connections,
            "seconds": args.seconds,
            "direct_p50_ms": direct_p50,
            "proxy_p50_ms": proxy_p50,
            "p50_ratio_proxy_to_direct": proxy_p50 / direct_p50,
            "direct_requests_per_second": direct_rps,
            "proxy_requests_per_second": proxy_rps,
            "throughput_ratio_proxy_to_direct": proxy_rps / direct_rps,
            "queue": queue,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
        if args.smoke {
            return Ok(());
        }
        let out = out_dir(args)?;
        std::fs::create_dir_all(&out)?;
        let file = out.join(format!("a2a-work{}ms.json", args.agent_work_ms));
        std::fs::write(&file, serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", file.display());
        Ok(())
    })();
    steps.summary();
    let _ = cluster.destroy();
    result
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
