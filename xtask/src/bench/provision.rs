//! `cargo xtask bench provision`: an org of 50 workspaces through the dispatcher at three
//! concurrency caps.
//!
//! Must not know: the dispatcher's internals beyond its example binary.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Org provisioning wall time at three concurrency caps (500 ms per provision).
pub(super) fn run(args: &Args) -> anyhow::Result<()> {
    let mut steps = Steps::new(3);
    let bin = steps.run("build of the provisioning benchmark", || {
        build(args, "molecule-dispatcher", Some("provision_bench"))
    })?;
    let dir = std::env::temp_dir().join(format!("molecule-bench-provision-{}", std::process::id()));
    let cluster = steps.run("PostgreSQL", || Ok(Cluster::start(&dir, &Options::default())?))?;
    cluster.destroy_when_process_exits(std::process::id())?;
    let result = steps.run("50 workspaces at MOLECULE_PROVISION_CONCURRENCY 0, 3 and 10", || {
        let url = molecule_pg_cluster::fresh_database_url(&cluster.url("postgres"), "provision_bench")?;
        let out = Command::new(bin.join("examples/provision_bench"))
            .env("DATABASE_URL", &url)
            .output()?;
        if !out.status.success() {
            bail!("provision_bench failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let figures: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        println!("{}", serde_json::to_string_pretty(&figures)?);
        let dir = out_dir(args)?;
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("provision.json"), serde_json::to_string_pretty(&figures)?)?;
        Ok(())
    });
    steps.summary();
    let _ = cluster.destroy();
    result
}
