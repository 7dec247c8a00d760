//! `cargo xtask image`: the reference agent as a local Docker image, with no registry.
//!
//! A static glibc build (`-C target-feature=+crt-static`; `--target` is required so
//! proc-macros still build for the host), a root filesystem holding only the binary, then
//! `docker import`, tagged once per runtime (`molecule-agent:claude-code`, …) for tests.

use std::process::Command;

use anyhow::{Context, bail};

use crate::steps::{cargo, exec, target_dir};

pub const REPOSITORY: &str = "molecule-agent";
pub const RUNTIMES: &[&str] = &["claude-code", "hermes", "openclaw", "codex", "latest"];
const TRIPLE: &str = "x86_64-unknown-linux-gnu";

#[derive(clap::Args)]
pub struct Args {
    /// Only print what would be tagged.
    #[arg(long)]
    pub dry_run: bool,
}

/// True when a Docker engine answers.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    build_image(args.dry_run)
}

pub fn build_image(dry_run: bool) -> anyhow::Result<()> {
    if !docker_available() {
        bail!("no Docker engine answers (`docker version` failed): start dockerd or set DOCKER_HOST");
    }
    exec(
        cargo()
            .args(["build", "--release", "-p", "molecule-agent", "--target", TRIPLE])
            .env("RUSTFLAGS", "-C target-feature=+crt-static -C relocation-model=static"),
    )?;
    let binary = target_dir()?.join(TRIPLE).join("release/molecule-agent");
    let rootfs = target_dir()?.join("agent-rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(rootfs.join("tmp")).with_context(|| format!("creating {}", rootfs.display()))?;
    std::fs::copy(&binary, rootfs.join("molecule-agent")).with_context(|| format!("copying {}", binary.display()))?;
    let tarball = target_dir()?.join("agent-rootfs.tar");
    exec(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    )?;
    let first = format!("{REPOSITORY}:{}", RUNTIMES[0]);
    if dry_run {
        println!(
            "would import {} as {}",
            tarball.display(),
            RUNTIMES
                .iter()
                .map(|r| format!("{REPOSITORY}:{r}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(());
    }
    exec(
        Command::new("docker")
            .args([
                "import",
                "--change",
                r#"ENTRYPOINT ["/molecule-agent"]"#,
                "--change",
                "LABEL molecule.platform.image=reference-agent",
            ])
            .arg(&tarball)
            .arg(&first),
    )?;
    for rt in &RUNTIMES[1..] {
        exec(Command::new("docker").args(["tag", &first, &format!("{REPOSITORY}:{rt}")]))?;
    }
    println!(
        "built {}",
        RUNTIMES
            .iter()
            .map(|r| format!("{REPOSITORY}:{r}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
