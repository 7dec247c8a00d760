//! `molecule-pg-cluster`: a local PostgreSQL cluster started from Debian's `postgresql`
//! binaries, for the test kit and for `cargo xtask up`.
//!
//! Owns: finding (and, as root on Debian, installing) the server binaries, `initdb`,
//! `pg_ctl start/stop` on 127.0.0.1 with a free port, dropping to the `postgres` user when run
//! as root (the server refuses root), creating databases, and a watchdog that stops a
//! throwaway cluster when the process that started it exits.
//!
//! Must not know: the platform's schema, diesel, async. It shells out to the Postgres tools
//! and nothing else.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What went wrong while managing a cluster. Every variant says what to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; install Debian's \
         `postgresql` package (apt-get install -y postgresql) or set DATABASE_URL to an existing server"
    )]
    NotInstalled,
    #[error("installing postgresql with apt-get failed: {0}")]
    InstallFailed(String),
    #[error("`{cmd}` failed ({status}); see {log}")]
    Command { cmd: String, status: String, log: String },
    #[error("could not run `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the `postgres` user cannot reach {0}; every directory above a cluster must be traversable \
         (chmod o+x) when running as root"
    )]
    NotTraversable(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// True when this process runs as root (the server must then run as `postgres`).
pub fn running_as_root() -> bool {
    // `id -u` avoids unsafe libc calls; it is in coreutils on every Debian.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest `/usr/lib/postgresql/<major>/bin` that holds `initdb` and `pg_ctl`.
pub fn find_bin_dir() -> Result<PathBuf, Error> {
    let base = Path::new("/usr/lib/postgresql");
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir(base) {
        for entry in entries.flatten() {
            let Ok(major) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let bin = entry.path().join("bin");
            if bin.join("initdb").exists()
                && bin.join("pg_ctl").exists()
                && best.as_ref().is_none_or(|(m, _)| major > *m)
            {
                best = Some((major, bin));
            }
        }
    }
    best.map(|(_, p)| p).ok_or(Error::NotInstalled)
}

/// Finds the binaries; when they are missing and we are root on Debian, installs the
/// `postgresql` package first, calling `announce` with what it does.
pub fn ensure_installed(announce: &dyn Fn(&str)) -> Result<PathBuf, Error> {
    if let Ok(bin) = find_bin_dir() {
        return Ok(bin);
    }
    if !(running_as_root() && Path::new("/etc/debian_version").exists()) {
        return Err(Error::NotInstalled);
    }
    announce("PostgreSQL is not installed; running `apt-get update && apt-get install -y postgresql` (root on Debian)");
    for args in [
        vec!["update", "-q"],
        vec!["install", "-y", "-q", "--no-install-recommends", "postgresql"],
    ] {
        let status = Command::new("apt-get")
            .args(&args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .map_err(|source| Error::Spawn {
                cmd: format!("apt-get {}", args.join(" ")),
                source,
            })?;
        if !status.success() {
            return Err(Error::InstallFailed(format!(
                "apt-get {} exited with {status}",
                args.join(" ")
            )));
        }
    }
    find_bin_dir()
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, Error> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io_err(Path::new("127.0.0.1:0")))?;
    let port = l.local_addr().map_err(io_err(Path::new("127.0.0.1:0")))?.port();
    Ok(port)
}

/// A running (or stoppable) cluster rooted at `dir`, with its data in `dir/data`.
#[derive(Debug, Clone)]
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// fsync off and friends: for throwaway test clusters only.
    pub unsafe_fast: bool,
    /// Port to listen on; `None` picks a free one.
    pub port: Option<u16>,
    pub max_connections: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            unsafe_fast: true,
            port: None,
            max_connections: 200,
        }
    }
}

impl Cluster {
    /// Initialises `dir/data` when it does not exist yet, then starts the server. A cluster
    /// whose data directory already exists keeps its data (used by `cargo xtask up`).
    pub fn start(dir: &Path, opts: &Options) -> Result<Self, Error> {
        let bin = find_bin_dir()?;
        let as_postgres = running_as_root();
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let dir = dir.canonicalize().map_err(io_err(dir))?;
        if as_postgres {
            run(
                Command::new("chown").args(["postgres:postgres"]).arg(&dir),
                &dir.join("chown.log"),
            )?;
            let probe = Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(&dir)
                .status()
                .map_err(|source| Error::Spawn {
                    cmd: "runuser".into(),
                    source,
                })?;
            if !probe.success() {
                return Err(Error::NotTraversable(dir.display().to_string()));
            }
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            as_postgres,
        };
        if !cluster.data_dir().join("PG_VERSION").exists() {
            cluster.initdb()?;
        }
        let mut last_err = None;
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..3 {
            cluster.port = match opts.port {
                Some(p) => p,
                None => free_port()?,
            };
            match cluster.pg_ctl_start(opts) {
                Ok(()) => {
                    std::fs::write(cluster.dir.join("port"), cluster.port.to_string()).map_err(io_err(&cluster.dir))?;
                    return Ok(cluster);
                }
                Err(e) => {
                    last_err = Some(e);
                    if opts.port.is_some() {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or(Error::NotInstalled))
    }

    /// A handle on a cluster some other process started in `dir` (port read from `dir/port`).
    pub fn attach(dir: &Path) -> Option<Self> {
        let port = std::fs::read_to_string(dir.join("port")).ok()?.trim().parse().ok()?;
        Some(Self {
            dir: dir.to_path_buf(),
            bin: find_bin_dir().ok()?,
            port,
            as_postgres: running_as_root(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.pg_ctl()
            .args(["status", "-D"])
            .arg(self.data_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Creates database `name` unless it exists.
    pub fn create_database(&self, name: &str) -> Result<(), Error> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-tAc",
            ])
            .arg(format!(
                "SELECT 1 FROM pg_database WHERE datname = '{}'",
                name.replace('\'', "''")
            ))
            .output()
            .map_err(|source| Error::Spawn {
                cmd: "psql".into(),
                source,
            })?;
        if String::from_utf8_lossy(&out.stdout).trim() == "1" {
            return Ok(());
        }
        run(
            Command::new(self.bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
                .arg(name),
            &self.dir.join("createdb.log"),
        )
    }

    /// Fast shutdown (in-flight transactions are rolled back). Idempotent.
    pub fn stop(&self) -> Result<(), Error> {
        if !self.data_dir().join("postmaster.pid").exists() {
            return Ok(());
        }
        run(
            self.pg_ctl()
                .args(["stop", "-m", "fast", "-w", "-s", "-D"])
                .arg(self.data_dir()),
            &self.dir.join("stop.log"),
        )
    }

    /// Stops the server and deletes the cluster directory.
    pub fn destroy(self) -> Result<(), Error> {
        self.stop()?;
        std::fs::remove_dir_all(&self.dir).map_err(io_err(&self.dir))
    }

    /// Starts a detached watchdog that stops this cluster and deletes its directory once
    /// process `pid` has exited, so a throwaway cluster never outlives its test run even when
    /// the test process is killed.
    pub fn destroy_when_process_exits(&self, pid: u32) -> Result<(), Error> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {as_pg} '{pg_ctl}' stop -m immediate -w -s -D '{data}' >/dev/null 2>&1; rm -rf '{dir}'",
            as_pg = if self.as_postgres { "runuser -u postgres --" } else { "" },
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data_dir().display(),
            dir = self.dir.display(),
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::Spawn {
                cmd: "setsid sh".into(),
                source,
            })?;
        Ok(())
    }

    fn as_server_user(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self) -> Command {
        self.as_server_user(&self.bin.join("pg_ctl"))
    }

    fn initdb(&self) -> Result<(), Error> {
        let mut cmd = self.as_server_user(&self.bin.join("initdb"));
        cmd.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        ]);
        run(&mut cmd, &self.dir.join("initdb.log"))
    }

    fn pg_ctl_start(&self, opts: &Options) -> Result<(), Error> {
        let mut server_opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections={}",
            self.port,
            self.dir.display(),
            opts.max_connections
        );
        if opts.unsafe_fast {
            server_opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut cmd = self.pg_ctl();
        cmd.arg("-D").arg(self.data_dir()).arg("-l").arg(self.log_path()).args([
            "-w",
            "-s",
            "-t",
            "30",
            "-o",
            &server_opts,
            "start",
        ]);
        run(&mut cmd, &self.log_path())?;
        // pg_ctl -w already waited for readiness; confirm the TCP listener before handing out URLs.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(Error::Command {
                    cmd: "pg_ctl start".into(),
                    status: format!("port {} never accepted connections", self.port),
                    log: self.log_path().display().to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

fn run(cmd: &mut Command, log: &Path) -> Result<(), Error> {
    let shown = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().map_err(|source| Error::Spawn {
        cmd: shown.clone(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut text = out.stdout;
    text.extend_from_slice(&out.stderr);
    // Best effort: the error still names the command when the log cannot be written.
    let _ = std::fs::write(log.with_extension("err"), &text);
    Err(Error::Command {
        cmd: shown,
        status: format!("{}: {}", out.status, String::from_utf8_lossy(&text).trim()),
        log: log.display().to_string(),
    })
}

/// Drops and recreates database `name` on the server of `url` (with `psql` from the Debian
/// binaries), returning the URL of the new database.
pub fn fresh_database_url(url: &str, name: &str) -> Result<String, Error> {
    let bin = find_bin_dir()?;
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\""),
    ] {
        let out = Command::new(bin.join("psql"))
            .args(["-v", "ON_ERROR_STOP=1", "-qAt", "-d", url, "-c", &sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                cmd: "psql".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(Error::Command {
                cmd: format!("psql -c {sql:?}"),
                status: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                log: "(stderr above)".into(),
            });
        }
    }
    Ok(with_database(url, name))
}

/// `url` with its database path replaced by `db` (query parameters kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_swapped_and_query_kept() {
        assert_eq!(
            with_database("postgres://u@h:1/a?sslmode=disable", "b"),
            "postgres://u@h:1/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "b"), "postgres://u@h:1/b");
    }

    #[test]
    fn starts_creates_a_database_and_stops() {
        let tmp = tempfile::Builder::new().prefix("pgc-").tempdir_in("/tmp").unwrap();
        // tempdir is 0700; the server user must be able to traverse it.
        Command::new("chmod").arg("755").arg(tmp.path()).status().unwrap();
        let cluster = Cluster::start(&tmp.path().join("pg"), &Options::default()).unwrap();
        assert!(cluster.is_running());
        cluster.create_database("probe").unwrap();
        cluster.create_database("probe").unwrap(); // idempotent
        let port = cluster.port();
        cluster.clone().destroy().unwrap();
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
