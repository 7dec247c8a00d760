//! `cargo xtask bench ledger`: ledger transitions through the crate against pgbench on the
//! same UPDATE, and the sweeper beside 1M terminal rows.
//!
//! Must not know: the ledger's internals beyond its example binary.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Ledger transitions per second through the crate (16 writers) against pgbench running the
/// same compare-and-set UPDATE (16 clients) on the same cluster; sweep time with 1M terminal
/// rows against none (1k in flight both times).
pub(super) fn run(args: &Args) -> anyhow::Result<()> {
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
