//! Progress output and process helpers shared by the commands.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// The repository root (xtask lives in `<root>/xtask`). Read at run time (`cargo run` sets
/// `CARGO_MANIFEST_DIR`): a binary built for another checkout that shares the target dir must
/// not act on that checkout.
pub fn repo_root() -> PathBuf {
    let here =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    here.parent().map_or_else(|| here.clone(), Path::to_path_buf)
}

/// Numbered steps with timings, so long commands show where they are.
pub struct Steps {
    total: usize,
    done: usize,
    started: Instant,
    timings: Vec<(String, f64, bool)>,
}

impl Steps {
    pub fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            started: Instant::now(),
            timings: Vec::new(),
        }
    }

    /// Runs one step, printing `==> [i/n] name` before and its duration after.
    pub fn run<T>(&mut self, name: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.done += 1;
        println!("\n==> [{}/{}] {name}", self.done, self.total);
        let t = Instant::now();
        let result = f();
        let secs = t.elapsed().as_secs_f64();
        let ok = result.is_ok();
        println!(
            "<== [{}/{}] {name}: {} in {secs:.1}s",
            self.done,
            self.total,
            if ok { "ok" } else { "FAILED" }
        );
        self.timings.push((name.to_owned(), secs, ok));
        result
    }

    pub fn summary(&self) {
        println!("\nsummary ({:.1}s total):", self.started.elapsed().as_secs_f64());
        for (name, secs, ok) in &self.timings {
            println!("  {} {name:<40} {secs:>7.1}s", if *ok { "ok  " } else { "FAIL" });
        }
    }
}

/// Runs `cmd` inheriting stdio; fails with the command line when it exits non-zero.
pub fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} exited with {status}");
    }
    Ok(())
}

/// `cargo` from the environment cargo gave us (respects the pinned toolchain).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(repo_root());
    c
}

/// Builds every target of the workspace in the debug profile, with the features the test run
/// resolves (dev-dependencies included), so it reuses the test build's artifacts instead of
/// building each binary again under its own, narrower feature set. Returns `target/debug`.
pub fn workspace_debug_build() -> anyhow::Result<PathBuf> {
    exec(cargo().args(["build", "-q", "--workspace", "--all-targets", "--locked"]))?;
    Ok(target_dir()?.join("debug"))
}

/// True when `cargo <sub> --version` works.
pub fn cargo_has(sub: &str) -> bool {
    cargo()
        .args([sub, "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The target directory cargo uses for this workspace (honours CARGO_TARGET_DIR).
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(repo_root().join("Cargo.toml"))
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    Ok(meta.target_directory.into_std_path_buf())
}
