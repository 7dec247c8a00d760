//! `cargo xtask image`: the reference agent as a local Docker image, with no registry.
//!
//! A static glibc build (`-C target-feature=+crt-static`; `--target` is required so
//! proc-macros still build for the host), a root filesystem holding the binary and a static
//! busybox (`rm`, `sh`, … as real runtime images have them), then
//! `docker import`, tagged once per runtime (`molecule-agent:claude-code`, …) for tests.

use std::process::Command;

use anyhow::{Context, bail};

use crate::steps::{cargo, exec, target_dir};

pub const REPOSITORY: &str = "molecule-agent";
pub const RUNTIMES: &[&str] = &["claude-code", "hermes", "openclaw", "codex", "latest"];
const TRIPLE: &str = "x86_64-unknown-linux-gnu";
/// Debian's `busybox-static`.
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &["sh", "rm", "ls", "cat", "ln", "mkdir", "echo", "touch", "find", "stat"];

#[derive(clap::Args)]
pub struct Args {
    /// Only print what would be tagged.
    #[arg(long)]
    pub dry_run: bool,
    /// A debug build of the agent: about half the cold build time and a larger, slower
    /// binary (what `cargo xtask test` uses for the Docker tests).
    #[arg(long)]
    pub dev: bool,
}

/// Which cargo profile builds the agent in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Release,
    Dev,
}

/// True when a Docker engine answers.
pub fn docker_available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    build_image(args.dry_run, if args.dev { Profile::Dev } else { Profile::Release })
}

pub fn build_image(dry_run: bool, profile: Profile) -> anyhow::Result<()> {
    if !docker_available() {
        bail!("no Docker engine answers (`docker version` failed): start dockerd or set DOCKER_HOST");
    }
    let mut build = cargo();
    build.args(["build", "-p", "molecule-agent", "--target", TRIPLE]);
    if profile == Profile::Release {
        build.arg("--release");
    }
    exec(build.env("RUSTFLAGS", "-C target-feature=+crt-static -C relocation-model=static"))?;
    let binary = target_dir()?
        .join(TRIPLE)
        .join(if profile == Profile::Release {
            "release"
        } else {
            "debug"
        })
        .join("molecule-agent");
    let rootfs = target_dir()?.join("agent-rootfs");
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::create_dir_all(rootfs.join("tmp")).with_context(|| format!("creating {}", rootfs.display()))?;
    std::fs::copy(&binary, rootfs.join("molecule-agent")).with_context(|| format!("copying {}", binary.display()))?;
    // A static busybox gives the image the few tools real runtime images have and the
    // platform relies on (`rm` for the Files API's deletes; `sh`, `cat`, `ln` for tests).
    let busybox = std::path::Path::new(BUSYBOX);
    if !busybox.is_file() && std::path::Path::new("/etc/debian_version").exists() {
        println!("{BUSYBOX} is missing; installing Debian's busybox-static");
        let installed = Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", "busybox-static"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            println!("apt-get install busybox-static failed (not root, or no package index: run apt-get update)");
        }
    }
    if !busybox.is_file() {
        bail!("{BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static)");
    }
    std::fs::create_dir_all(rootfs.join("bin")).with_context(|| format!("creating {}/bin", rootfs.display()))?;
    std::fs::copy(busybox, rootfs.join("bin/busybox")).with_context(|| format!("copying {BUSYBOX}"))?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
            .with_context(|| format!("linking /bin/{applet}"))?;
    }
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
