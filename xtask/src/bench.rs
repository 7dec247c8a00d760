//! `cargo xtask bench <name>`: throughput figures against real servers, never timed tests.
//!
//! `heartbeat`: heartbeat requests per second through a release workspace-server (wrk, 32
//! connections), against pgbench running the same SQL a heartbeat runs, on the same cluster
//! with the same concurrency. The ratio is what to watch.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use molecule_pg_cluster::{Cluster, Options};

use crate::steps::{Steps, cargo, exec, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// Which benchmark: `heartbeat`.
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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.name.as_str() {
        "heartbeat" => heartbeat(&args),
        "ledger" => ledger(&args),
        "provision" => provision(),
        other => bail!("unknown benchmark {other:?}; available: heartbeat, ledger, provision"),
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    steps.run("release build of workspace-server", || {
        exec(cargo().args(["build", "--release", "-p", "workspace-server"]))
    })?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = (|| {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "bench")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let _server = Killed(
            Command::new(target_dir()?.join("release/workspace-server"))
                .env("DATABASE_URL", &url)
                .env("PORT", port.to_string())
                .env("MOLECULE_BIND_ADDR", "127.0.0.1")
                .env("ADMIN_TOKEN", "bench")
                .env("MOLECULE_BACKEND", "none")
                .env("MOLECULE_DB_POOL_SIZE", "32")
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .spawn()
                .context("starting workspace-server")?,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http("GET", &format!("{base}/health"), "", "").is_ok_and(|r| r.0 == 200) {
            if Instant::now() > deadline {
                bail!("workspace-server did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
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
                let (id, token) = (
                    v["id"].as_str().unwrap_or_default().to_owned(),
                    v["auth_token"].as_str().unwrap_or_default().to_owned(),
                );
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
            let out = Command::new("wrk")
                .args([
                    "-t2",
                    &format!("-c{}", args.connections),
                    &format!("-d{}s", args.seconds),
                    "-s",
                ])
                .arg(&script)
                .arg(&base)
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            println!("{text}");
            if text.contains("Non-2xx") {
                bail!("some heartbeats failed: {text}");
            }
            parse_after(&text, "Requests/sec:").context("wrk printed no Requests/sec")
        })?;
        let sql_tps = steps.run("pgbench: the same SQL, same cluster, same concurrency", || {
            pgbench(&cluster, &dir, args)
        })?;
        println!(
            "\nheartbeat: server {server_rps:.0} req/s, pgbench {sql_tps:.0} tps, ratio {:.2}",
            server_rps / sql_tps
        );
        let report = serde_json::json!({ "benchmark": "heartbeat", "server_requests_per_second": server_rps, "pgbench_tps": sql_tps, "ratio": server_rps / sql_tps, "connections": args.connections, "seconds": args.seconds, "workspaces": args.workspaces });
        let out = target_dir()?.join("bench");
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("heartbeat.json"), serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", out.join("heartbeat.json").display());
        Ok(())
    })();
    steps.summary();
    let _ = cluster.destroy();
    result
}

/// The statements one heartbeat runs: token lookup and `last_used_at`, then the locked status
/// read, the update and the live-event NOTIFY in one transaction.
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
SELECT t.id, t.workspace_id, t.token_hash FROM workspace_auth_tokens t JOIN workspaces w ON w.id = t.workspace_id WHERE t.token_hash = (SELECT token_hash FROM bench_ids WHERE n = :i) AND t.revoked_at IS NULL AND w.status <> 'removed';
UPDATE workspace_auth_tokens SET last_used_at = now() WHERE token_hash = (SELECT token_hash FROM bench_ids WHERE n = :i);
BEGIN;
SELECT status, current_task FROM workspaces WHERE id = (SELECT id FROM bench_ids WHERE n = :i) FOR UPDATE;
UPDATE workspaces SET last_heartbeat_at = now(), last_error_rate = 0, active_tasks = 1, uptime_seconds = 42, current_task = 'bench', status = status, updated_at = now() WHERE id = (SELECT id FROM bench_ids WHERE n = :i);
SELECT pg_notify('molecule_events', '{{\"event\":\"WORKSPACE_HEARTBEAT\",\"workspace_id\":null,\"timestamp\":\"2026-01-01T00:00:00Z\",\"payload\":{{}}}}');
COMMIT;
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
    steps.run("release build of the ledger benchmark", || {
        exec(cargo().args([
            "build",
            "--release",
            "-p",
            "molecule-ledger",
            "--example",
            "ledger_bench",
        ]))
    })?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-ledger-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = (|| {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "ledger_bench")?;
        let crate_figures: serde_json::Value = steps.run(
            "through molecule-ledger (1M-row sweep included; about a minute)",
            || {
                let out = Command::new(target_dir()?.join("release/examples/ledger_bench"))
                    .env("DATABASE_URL", &url)
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
        let out = target_dir()?.join("bench");
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("ledger.json"), serde_json::to_string_pretty(&report)?)?;
        Ok(())
    })();
    steps.summary();
    let _ = cluster.destroy();
    result
}

/// Org provisioning wall time at three concurrency caps (500 ms per provision).
fn provision() -> anyhow::Result<()> {
    let mut steps = Steps::new(3);
    steps.run("release build of the provisioning benchmark", || {
        exec(cargo().args([
            "build",
            "--release",
            "-p",
            "molecule-dispatcher",
            "--example",
            "provision_bench",
        ]))
    })?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-provision-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = steps.run("50 workspaces at MOLECULE_PROVISION_CONCURRENCY 0, 3 and 10", || {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "provision_bench")?;
        let out = Command::new(target_dir()?.join("release/examples/provision_bench"))
            .env("DATABASE_URL", &url)
            .output()?;
        if !out.status.success() {
            bail!("provision_bench failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let figures: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        println!("{}", serde_json::to_string_pretty(&figures)?);
        let dir = target_dir()?.join("bench");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("provision.json"), serde_json::to_string_pretty(&figures)?)?;
        Ok(())
    });
    steps.summary();
    let _ = cluster.destroy();
    result
}
