//! `cargo xtask bench a2a`: messages through the A2A proxy against wrk straight at the
//! reference agent, and the queue cycle beside 1M finished rows.
//!
//! Must not know: the proxy's internals beyond its wire.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The A2A proxy against direct calls to the same agent, and the queue's cycle at 0 and 1M old
/// rows.
pub(super) fn run(args: &Args) -> anyhow::Result<()> {
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
            &mut workspace_server(&bin, &url, port, pool_size, args.smoke),
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
