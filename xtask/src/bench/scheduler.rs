//! `cargo xtask bench scheduler`: 10,000 schedules over 1,000 workspaces, all due at the same
//! instant, fired by a release workspace-server through its A2A proxy to a stub agent; then
//! pgbench running the claim's statement over the same rows on the same cluster.
//!
//! Reports the time from the due instant to the last fire's record, the fires' lateness (due →
//! sent, p50/p99/max, from the server's `/admin/liveness`), and the database time per claim of
//! 50 due slots (`molecule_schedule_claim_seconds` in the server's `/metrics`: the pool wait
//! and the transaction) against pgbench's latency for the same claim as one statement.
//!
//! Must not know: the scheduler's internals beyond its table and what it publishes.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Schedules per workspace.
const PER_WORKSPACE: usize = 10;
/// Due slots one claim takes (the scheduler's `DUE_BATCH`).
const BATCH: usize = 50;

pub(super) fn run(args: &Args) -> anyhow::Result<()> {
    let workspaces = if args.smoke { 20 } else { 1000 };
    let total = workspaces * PER_WORKSPACE;
    let mut steps = Steps::new(8);
    let bin = steps.run("build of workspace-server and the stub agent", || {
        if args.smoke {
            return crate::steps::workspace_debug_build();
        }
        exec(cargo().args(["build", "--release", "-p", "workspace-server"]))?;
        exec(cargo().args([
            "build",
            "--release",
            "-p",
            "molecule-testkit",
            "--example",
            "stub_agent",
        ]))?;
        Ok(target_dir()?.join("release"))
    })?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-scheduler-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = (|| {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "scheduler_bench")?;
        let psql = |sql: &[&str]| -> anyhow::Result<String> {
            let bin = molecule_pg_cluster::find_bin_dir()?;
            let mut cmd = Command::new(bin.join("psql"));
            cmd.args(["-qAt", "-v", "ON_ERROR_STOP=1", "-d", &url]);
            for s in sql {
                cmd.args(["-c", s]);
            }
            let out = cmd.output()?;
            if !out.status.success() {
                bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let agent_log = dir.join("stub-agent.log");
        let (_agent, agent_url) = steps.run("the stub agent", || {
            let mut child = Killed(
                Command::new(bin.join("examples/stub_agent"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(std::fs::File::create(&agent_log)?)
                    .spawn()
                    .context("starting the stub agent")?,
            );
            let mut line = String::new();
            let stdout = child.0.stdout.take().context("the stub agent's stdout")?;
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
            let url = line.trim().to_owned();
            if !url.starts_with("http://") {
                bail!("the stub agent printed no URL ({})", agent_log.display());
            }
            Ok((child, url))
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join("workspace-server.log");
        let pool_size = if args.smoke { 4 } else { 32 };
        let server = serve(
            workspace_server(&bin, &url, port, pool_size, args.smoke)
                .env("SCHEDULER_POLL_INTERVAL_SECONDS", "1")
                // Nothing heartbeats here: no workspace may go offline mid-run.
                .env("LIVENESS_TTL_SECONDS", "86400"),
            &format!("{base}/health"),
            &log,
        )?;
        steps.run(
            &format!("{workspaces} external workspaces registered at the stub agent, {total} schedules"),
            || {
                for i in 0..workspaces {
                    let (status, body) = http(
                        "POST",
                        &format!("{base}/workspaces"),
                        "bench",
                        &format!(r#"{{"name":"cron-bench-{i}","runtime":"external"}}"#),
                    )?;
                    if status != 201 {
                        bail!("create: {status} {body}");
                    }
                    let v: serde_json::Value = serde_json::from_str(&body)?;
                    let id = v["id"].as_str().unwrap_or_default().to_owned();
                    let token = v["auth_token"].as_str().unwrap_or_default().to_owned();
                    let reg = format!(r#"{{"id":"{id}","url":"{agent_url}","agent_card":{{"name":"bench"}}}}"#);
                    let (status, body) = http("POST", &format!("{base}/registry/register"), &token, &reg)?;
                    if status != 200 {
                        bail!("register: {status} {body}");
                    }
                    if (i + 1) % 250 == 0 {
                        println!("  {} workspaces", i + 1);
                    }
                }
                // Fixture rows straight into the table: what is measured is the firing, not
                // 10,000 creates. A yearly pattern, so nothing fires again in the run.
                psql(&[
                    &format!(
                        "INSERT INTO workspace_schedules (workspace_id, name, cron_expr, prompt, next_run_at) \
                         SELECT w.id, 'bench-' || g, '0 0 1 1 *', 'a scheduled bench prompt', '2100-01-01' \
                         FROM workspaces w CROSS JOIN generate_series(1, {PER_WORKSPACE}) g"
                    ),
                    "VACUUM ANALYZE workspace_schedules",
                ])?;
                Ok(())
            },
        )?;
        let claims_before = metric(&base, "molecule_schedule_claim_seconds")?;
        let (fire_all, fired_per_second) = steps.run(&format!("{total} slots due at once, fired"), || {
            let from = log_len(&log);
            // Due now, all together, with the statistics still saying next year: the claim's
            // reads must be index range scans whatever the planner believes (an OR of its two
            // cases over such statistics sorted every due row: 7 ms a claim).
            let due: f64 = psql(&[
                "WITH u AS (UPDATE workspace_schedules SET next_run_at = now() RETURNING 1) \
                 SELECT extract(epoch FROM now()) FROM u LIMIT 1",
            ])?
            .parse()
            .context("the due instant")?;
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut shown = Instant::now();
            loop {
                let done: usize = psql(&["SELECT count(*) FROM workspace_schedules WHERE run_count > 0"])?.parse()?;
                if done == total {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("{done} of {total} fired within 600 s ({})", log.display());
                }
                if shown.elapsed() > Duration::from_secs(2) {
                    println!("  {done} of {total} fired");
                    shown = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let bad = psql(&[
                "SELECT count(*) || ' not ok, e.g. ' || coalesce(min(last_error), '?') FROM workspace_schedules \
                 WHERE last_status IS DISTINCT FROM 'ok' HAVING count(*) > 0",
            ])?;
            if !bad.is_empty() {
                bail!("fires that did not deliver: {bad}");
            }
            let last: f64 = psql(&["SELECT extract(epoch FROM max(last_run_at)) FROM workspace_schedules"])?.parse()?;
            check_server_log(&log, from)?;
            let all = last - due;
            Ok((all, total as f64 / all))
        })?;
        let lateness = steps.run("the fires' lateness, from /admin/liveness", || {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (status, body) = http("GET", &format!("{base}/admin/liveness"), "bench", "")?;
                if status != 200 {
                    bail!("/admin/liveness: {status} {body}");
                }
                let v: serde_json::Value = serde_json::from_str(&body)?;
                let l = v["subsystems"]["scheduler"]["last_report"]["lateness"].clone();
                if l["fires"].as_u64().is_some_and(|n| n as usize >= total.min(10_000)) {
                    return Ok(l);
                }
                if Instant::now() > deadline {
                    bail!("the scheduler's tick did not report its lateness within 60 s: {l}");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })?;
        let claims_after = metric(&base, "molecule_schedule_claim_seconds")?;
        let claims = claims_after.1 - claims_before.1;
        let server_claim_ms = (claims_after.0 - claims_before.0) / claims * 1000.0;
        drop(server);
        let pgbench_claim_ms = steps.run("pgbench: the claim as one statement, same rows, same cluster", || {
            psql(&[
                "UPDATE workspace_schedules SET next_run_at = now() - interval '1 second', firing_slot = NULL, \
                 firing_until = NULL, firing_sent_at = NULL",
                "VACUUM ANALYZE workspace_schedules",
            ])?;
            let script = dir.join("claim.sql");
            std::fs::write(&script, CLAIM_SQL)?;
            let bin = molecule_pg_cluster::find_bin_dir()?;
            let out = Command::new(bin.join("pgbench"))
                .args(["-n", "-c1", &format!("-t{}", total / BATCH), "-f"])
                .arg(&script)
                .arg(&url)
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            println!("{text}{}", String::from_utf8_lossy(&out.stderr));
            if !out.status.success() {
                bail!("pgbench failed");
            }
            let left: usize = psql(&["SELECT count(*) FROM workspace_schedules WHERE firing_slot IS NULL"])?.parse()?;
            if left != 0 {
                bail!("pgbench's claims left {left} rows unclaimed: the reference did not do the same work");
            }
            parse_after(&text, "latency average =").context("pgbench printed no latency average")
        })?;
        let p = |k: &str| lateness[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "\nscheduler: {total} slots over {workspaces} workspaces fired in {fire_all:.2} s ({fired_per_second:.0}/s); \
             lateness p50 {:.2} s, p99 {:.2} s, max {:.2} s; claim of {BATCH}: server {server_claim_ms:.2} ms \
             ({claims:.0} claims), pgbench {pgbench_claim_ms:.2} ms, ratio {:.2}",
            p("p50_seconds"),
            p("p99_seconds"),
            p("max_seconds"),
            server_claim_ms / pgbench_claim_ms
        );
        let report = serde_json::json!({
            "benchmark": "scheduler",
            "schedules": total,
            "workspaces": workspaces,
            "fire_all_seconds": fire_all,
            "fires_per_second": fired_per_second,
            "lateness": lateness,
            "claims": claims,
            "server_claim_ms": server_claim_ms,
            "pgbench_claim_ms": pgbench_claim_ms,
            "claim_ratio": server_claim_ms / pgbench_claim_ms,
        });
        let out = out_dir(args)?;
        std::fs::create_dir_all(&out)?;
        std::fs::write(out.join("scheduler.json"), serde_json::to_string_pretty(&report)?)?;
        println!("written to {}", out.join("scheduler.json").display());
        Ok(())
    })();
    steps.summary();
    let _ = cluster.destroy();
    result
}

/// The claim of 50 free due slots as one statement: the rows the scheduler's claim selects
/// (`FOR UPDATE SKIP LOCKED`, oldest due first), each moved to its next slot and held under a
/// lease, their columns returned. The server's claim also looks for slots whose lease ran out
/// first (none here). Keep it in step with `Schedules::claim_due`.
const CLAIM_SQL: &str = "WITH due AS (
  SELECT id, next_run_at FROM workspace_schedules
  WHERE enabled AND firing_slot IS NULL AND next_run_at <= now()
  ORDER BY next_run_at LIMIT 50 FOR UPDATE SKIP LOCKED)
UPDATE workspace_schedules AS s
SET next_run_at = due.next_run_at + interval '1 year', firing_slot = due.next_run_at, firing_until = now() + interval '60 seconds'
FROM due WHERE s.id = due.id
RETURNING s.*;
";

/// A summary's `_sum` and `_count` from the server's `/metrics` (zeros before its first value).
fn metric(base: &str, name: &str) -> anyhow::Result<(f64, f64)> {
    let (status, body) = http("GET", &format!("{base}/metrics"), "bench", "")?;
    if status != 200 {
        bail!("/metrics: {status}");
    }
    let read = |suffix: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}_{suffix} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((read("sum"), read("count")))
}
