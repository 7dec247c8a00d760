//! xtask: the contributor commands. `cargo xtask up` runs the platform on a local Postgres;
//! `cargo xtask test` runs every check CI runs; `cargo xtask lint-arch` enforces the
//! architecture's invariants.
//!
//! Must not know: the product's internals beyond what a contributor runs (it drives the
//! binaries over HTTP and Postgres, as an operator would).

// Tooling, not the product: xtask reads CI, DATABASE_URL and tool paths.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod image;
mod lint_arch;
mod schemathesis;
mod steps;
mod test;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "molecule contributor commands")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run workspace-server and memory-plugin-postgres on a local Postgres (started under
    /// ./.molecule/ unless DATABASE_URL is set). Ctrl-C stops everything.
    Up(up::Args),
    /// Everything CI checks: fmt, clippy, lint-arch, tests on a real Postgres, cargo-deny.
    Test(test::Args),
    /// Build the reference agent statically and import it as `molecule-agent:<runtime>` images.
    Image(image::Args),
    /// Benchmarks against real servers (release builds): `heartbeat`.
    Bench(bench::Args),
    /// Fuzz one server's OpenAPI document with schemathesis (as `cargo xtask test` does).
    Fuzz {
        #[arg(value_enum)]
        target: FuzzTarget,
    },
    /// Check the architecture's invariants; prints `file:line rule: explanation` per violation.
    LintArch {
        /// Cargo.toml of the workspace to check (default: this repository).
        #[arg(long)]
        manifest_path: Option<PathBuf>,
    },
    /// Each workspace member's non-test lines and share (lint-arch's `crate-share` rule holds
    /// every library crate to 15%).
    Sizes,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FuzzTarget {
    /// workspace-server's /openapi.json
    Server,
    /// memory-plugin-postgres against the Memory Plugin v1 document
    Plugin,
}

fn fuzz(target: FuzzTarget) -> anyhow::Result<()> {
    let (cluster, url) = test::start_postgres()?;
    let result = match target {
        FuzzTarget::Server => schemathesis::workspace_server(&url),
        FuzzTarget::Plugin => schemathesis::memory_plugin(&url),
    };
    if let Some(c) = cluster {
        let _ = c.destroy();
    }
    println!("{}", result?);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Up(args) => up::run(args),
        Cmd::Test(args) => test::run(args),
        Cmd::Bench(args) => bench::run(args),
        Cmd::Image(args) => image::run(args),
        Cmd::Fuzz { target } => fuzz(target),
        Cmd::LintArch { manifest_path } => lint_arch_cmd(manifest_path),
        Cmd::Sizes => sizes_cmd(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn sizes_cmd() -> anyhow::Result<()> {
    let meta = cargo_metadata::MetadataCommand::new()
        .manifest_path(steps::repo_root().join("Cargo.toml"))
        .no_deps()
        .exec()?;
    let all = lint_arch::sizes::sizes(&meta);
    let total: usize = all.iter().map(|s| s.lines).sum();
    println!("| crate | kind | non-test lines | share |");
    println!("|---|---|---|---|");
    for s in &all {
        #[allow(clippy::cast_precision_loss)] // line counts are far below 2^52
        let share = s.lines as f64 * 100.0 / total.max(1) as f64;
        let kind = if s.library { "library" } else { "binary" };
        println!("| {} | {kind} | {} | {share:.1}% |", s.name, s.lines);
    }
    println!("| total | | {total} | |");
    Ok(())
}

fn lint_arch_cmd(manifest_path: Option<PathBuf>) -> anyhow::Result<()> {
    let manifest = manifest_path.unwrap_or_else(|| steps::repo_root().join("Cargo.toml"));
    let report = lint_arch::check(&manifest)?;
    for v in &report.violations {
        println!("{v}");
    }
    if report.violations.is_empty() {
        println!(
            "lint-arch: ok ({} crates, {} files, {} owned tables checked)",
            report.crates_checked, report.files_checked, report.tables_owned
        );
        Ok(())
    } else {
        anyhow::bail!("lint-arch: {} violation(s)", report.violations.len())
    }
}
