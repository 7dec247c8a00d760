//! `cargo xtask bench heartbeat`: heartbeats through a release workspace-server against
//! pgbench running the same SQL on the same cluster.
//!
//! Must not know: the server's internals beyond the statements a heartbeat runs.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn run(args: &Args) -> anyhow::Result<()> {
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
        // A pool wait fails (and logs) within the load window, not after it.
        let _server = serve(
            &mut workspace_server(&bin, &url, port, pool_size, args.smoke),
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
UPDATE workspaces SET last_heartbeat_at = now(), last_error_rate = 0, active_tasks = 1, uptime_seconds = 42, current_task = 'bench', idle_timeout_seconds = NULL, native_scheduler = false, updated_at = now() WHERE id = (SELECT id FROM bench_ids WHERE n = :i);
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
