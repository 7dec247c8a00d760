//! `cargo xtask bench memory`: search and commits straight to memory-plugin-postgres and
//! through workspace-server's MCP tools, against pgbench on the same statement.
//!
//! Must not know: the plugin's or the server's internals beyond their wire.

use super::cpu::CpuSplit;
#[allow(clippy::wildcard_imports)]
use super::*;

const MEMORY_WORDS: u32 = 2000;

pub(super) fn run(args: &Args) -> anyhow::Result<()> {
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
            workspace_server(
                &plugin_bin,
                &server_db,
                server_port,
                if args.smoke { 4 } else { 16 },
                args.smoke,
            )
            .env("MEMORY_PLUGIN_URL", &base)
            .env("MOLECULE_MCP_CALLS_PER_MINUTE", "100000000"),
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
