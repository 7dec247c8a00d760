//! `cargo xtask up`: the platform on this machine. Starts (or reuses) a Postgres cluster under
//! `./.molecule/`, builds and migrates, then runs both binaries with prefixed logs until
//! Ctrl-C, and leaves no process or running cluster behind.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use molecule_pg_cluster::{Cluster, Options};
use rand::RngCore;

use crate::steps::{Steps, cargo, exec, repo_root, target_dir};

#[derive(clap::Args)]
pub struct Args {
    /// workspace-server port (env PORT).
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// memory-plugin-postgres listen address (env MEMORY_PLUGIN_LISTEN_ADDR).
    #[arg(long, env = "MEMORY_PLUGIN_LISTEN_ADDR", default_value = "127.0.0.1:9100")]
    pub plugin_addr: String,
    /// Build in release mode.
    #[arg(long)]
    pub release: bool,
}

const DB_NAME: &str = "molecule";

/// `println!` that never panics: after Ctrl-C the reader of our stdout (a pipe into `tee`,
/// say) may be gone, and cleanup must still run.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Owns everything `up` starts; dropping it (normal exit, error or panic) stops the children
/// first and the cluster last.
struct Session {
    children: Vec<(&'static str, Child)>,
    cluster: Option<Cluster>,
    /// Platform instance label of this session's containers (Docker backend).
    instance: Option<String>,
}

impl Drop for Session {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            terminate(name, child);
        }
        if let Some(instance) = &self.instance {
            // Containers outlive the server (restart policy); this session's go with it.
            let label = format!("label=molecule.platform.instance={instance}");
            let ids = Command::new("docker").args(["ps", "-aq", "--filter", &label]).output();
            let ids = ids
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let ids: Vec<&str> = ids.lines().collect();
            if !ids.is_empty() {
                say!("removing {} workspace container(s)", ids.len());
                let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).output();
            }
        }
        if let Some(c) = self.cluster.take() {
            say!("stopping PostgreSQL ({})", c.dir().display());
            if let Err(e) = c.stop() {
                say!("warning: PostgreSQL did not stop cleanly: {e}");
            }
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let state_dir = repo_root().join(".molecule");
    std::fs::create_dir_all(&state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    }

    let mut steps = Steps::new(5);
    let (cluster, database_url) = steps.run("PostgreSQL", || database(&state_dir))?;
    let mut session = Session {
        children: Vec::new(),
        cluster,
        instance: None,
    };
    run_platform(&args, &mut steps, &state_dir, &database_url, &stop, &mut session)
}

fn run_platform(
    args: &Args,
    steps: &mut Steps,
    state_dir: &Path,
    database_url: &str,
    stop: &AtomicBool,
    session: &mut Session,
) -> anyhow::Result<()> {
    steps.run(
        "build workspace-server, memory-plugin-postgres and molecule-agent",
        || {
            let mut c = cargo();
            c.args([
                "build",
                "-p",
                "workspace-server",
                "-p",
                "memory-plugin-postgres",
                "-p",
                "molecule-agent",
            ]);
            if args.release {
                c.arg("--release");
            }
            exec(&mut c)
        },
    )?;
    let bin_dir = target_dir()?.join(if args.release { "release" } else { "debug" });
    let admin_token = admin_token(state_dir)?;
    // Workspaces get real agents: containers when an engine answers, else local processes.
    let backend = if crate::image::docker_available() {
        steps.run("agent image (Docker)", || {
            crate::image::build_image(false, crate::image::Profile::Release)
        })?;
        "docker"
    } else {
        say!("no Docker engine: workspaces will run as local processes (MOLECULE_BACKEND=local)");
        "local"
    };
    let instance = format!("xtask-up-{}", std::process::id());
    if backend == "docker" {
        session.instance = Some(instance.clone());
    }
    let agent = bin_dir.join("molecule-agent");
    let data_dir = state_dir.join("data");
    let env = |c: &mut Command| {
        c.env("DATABASE_URL", database_url)
            .env("ADMIN_TOKEN", &admin_token)
            .env("PORT", args.port.to_string())
            .env("MOLECULE_BIND_ADDR", "127.0.0.1")
            .env("MEMORY_PLUGIN_LISTEN_ADDR", &args.plugin_addr)
            .env("MEMORY_PLUGIN_URL", format!("http://{}", args.plugin_addr))
            .env("MOLECULE_BACKEND", backend)
            .env("MOLECULE_PLATFORM_INSTANCE", &instance)
            .env("MOLECULE_DOCKER_NETWORK", "host")
            .env("PLATFORM_URL", format!("http://127.0.0.1:{}", args.port))
            .env("MOLECULE_LOCAL_AGENT_COMMAND", &agent)
            .env("MOLECULE_DATA_DIR", &data_dir)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
    };
    steps.run("migrate", || {
        let mut c = Command::new(bin_dir.join("workspace-server"));
        c.arg("migrate");
        env(&mut c);
        exec(&mut c)
    })?;

    let children = &mut session.children;
    let started = steps.run("start both binaries", || {
        let server = format!("http://127.0.0.1:{}", args.port);
        let plugin = format!("http://{}", args.plugin_addr);
        // The plugin first: the server probes it at boot.
        for (name, bin, health) in [
            ("memory-plugin", "memory-plugin-postgres", format!("{plugin}/v1/health")),
            ("workspace-server", "workspace-server", format!("{server}/health")),
        ] {
            let mut c = Command::new(bin_dir.join(bin));
            env(&mut c);
            // Own process group: the terminal's Ctrl-C reaches only xtask, which then stops the
            // children in order (servers first, database last).
            c.process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().with_context(|| format!("starting {bin}"))?;
            prefix_output(name, child.stdout.take());
            prefix_output(name, child.stderr.take());
            children.push((name, child));
            wait_healthy(&health, children, stop)?;
        }
        say!("");
        say!("  workspace-server       {server}   (GET /health, /readyz)");
        say!("  memory-plugin-postgres {plugin}   (GET /v1/health)");
        say!("  DATABASE_URL           {database_url}");
        say!("  ADMIN_TOKEN            {admin_token}");
        match console_link(&server, &admin_token) {
            Some(link) => say!("  console                {link}   (one-time sign-in link, 10 minutes)"),
            None => say!("  console                {server}/console   (sign in with ADMIN_TOKEN)"),
        }
        say!("  workspaces run on      {backend} (POST /workspaces with the admin token)");
        say!("\n  Ctrl-C stops everything.");
        Ok(())
    });
    started?;
    supervise(children, stop)
}

/// Waits for Ctrl-C, or for a child to die (which ends the session with an error).
fn supervise(children: &mut [(&str, Child)], stop: &AtomicBool) -> anyhow::Result<()> {
    while !stop.load(Ordering::SeqCst) {
        for (name, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited unexpectedly ({status}); see its log lines above");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    say!("\nCtrl-C: stopping");
    Ok(())
}

/// SIGTERM to the child's whole process group (it leads one): local agents it started stop too.
fn terminate(name: &str, child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    if child.try_wait().ok().flatten().is_some() {
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGTERM);
        return;
    }
    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(35);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            say!("{name} stopped");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    say!("{name} did not stop within 35s; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_healthy(url: &str, children: &mut [(&str, Child)], stop: &AtomicBool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_get_ok(url) {
            return Ok(());
        }
        for (name, child) in children.iter_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited during startup ({status}); see its log lines above");
            }
        }
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted during startup");
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within 60s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Minimal HTTP/1.0 GET over loopback (xtask stays free of an HTTP client stack).
fn http_get_ok(url: &str) -> bool {
    use std::io::Write;
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (hostport, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let Ok(mut s) = std::net::TcpStream::connect(hostport) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// A one-time console sign-in link from the server (`POST /admin/console/sign-in-links`).
fn console_link(server: &str, admin_token: &str) -> Option<String> {
    use std::io::Write;
    let hostport = server.strip_prefix("http://")?;
    let mut s = std::net::TcpStream::connect(hostport).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    write!(
        s,
        "POST /admin/console/sign-in-links HTTP/1.0\r\nHost: {hostport}\r\nAuthorization: Bearer {admin_token}\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 201") && !head.starts_with("HTTP/1.0 201") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("url")?.as_str().map(str::to_owned)
}

fn prefix_output(name: &'static str, stream: Option<impl Read + Send + 'static>) {
    let Some(stream) = stream else { return };
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            say!("[{name:<16}] {line}");
        }
    });
}

/// ADMIN_TOKEN from the environment, else one generated once and kept in .molecule/.
fn admin_token(state_dir: &Path) -> anyhow::Result<String> {
    if let Ok(t) = std::env::var("ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t);
    }
    let path = state_dir.join("admin_token");
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

/// DATABASE_URL from the environment, or the local cluster under .molecule/pg.
fn database(state_dir: &Path) -> anyhow::Result<(Option<Cluster>, String)> {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.trim().is_empty()
    {
        say!("using DATABASE_URL from the environment");
        return Ok((None, url));
    }
    molecule_pg_cluster::ensure_installed(&|msg| say!("{msg}"))?;
    let dir = cluster_dir(state_dir)?;
    if let Some(old) = Cluster::attach(&dir)
        && old.is_running()
    {
        say!("a cluster from an earlier run is still up; stopping it first");
        old.stop()?;
    }
    let opts = Options {
        unsafe_fast: false,
        port: None,
        max_connections: 100,
    };
    let cluster = Cluster::start(&dir, &opts).with_context(|| format!("starting PostgreSQL in {}", dir.display()))?;
    cluster.create_database(DB_NAME)?;
    say!(
        "PostgreSQL on 127.0.0.1:{} (data in {})",
        cluster.port(),
        cluster.data_dir().display()
    );
    let url = cluster.url(DB_NAME);
    Ok((Some(cluster), url))
}

/// `.molecule/pg`, unless the server user cannot reach it (a checkout under /root, say): then a
/// directory under /var/tmp named after this checkout, recorded in `.molecule/pg-location`.
fn cluster_dir(state_dir: &Path) -> anyhow::Result<PathBuf> {
    let local = state_dir.join("pg");
    if !molecule_pg_cluster::running_as_root() || reachable_by_postgres(state_dir) {
        return Ok(local);
    }
    let mut h: u64 = 0xcbf29ce484222325;
    for b in state_dir.to_string_lossy().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let dir = PathBuf::from(format!("/var/tmp/molecule-pg-{h:016x}"));
    say!(
        "the postgres user cannot traverse {}; keeping the cluster in {}",
        state_dir.display(),
        dir.display()
    );
    std::fs::write(state_dir.join("pg-location"), dir.display().to_string())?;
    Ok(dir)
}

fn reachable_by_postgres(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}
