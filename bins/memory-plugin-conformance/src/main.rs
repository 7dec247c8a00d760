//! memory-plugin-conformance: a CLI for plugin authors. Runs the conformance kit of
//! `molecule-memory-conformance` against a plugin's base URL, prints the table, and exits
//! 0 when every check passed, 1 when one failed, 2 on bad arguments.
//!
//! Must not know: what the checks are (the kit owns them) or how any plugin stores memories.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Check a Memory Plugin v1 implementation over HTTP")]
struct Cli {
    /// The plugin's base URL, e.g. http://127.0.0.1:9100
    url: String,
    /// Per-request timeout (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[allow(clippy::print_stdout)] // the table is this program's output
fn main() -> ExitCode {
    let cli = Cli::parse();
    if !(cli.url.starts_with("http://") || cli.url.starts_with("https://")) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "memory-plugin-conformance: URL must start with http:// or https://, got {:?}",
                cli.url
            );
        }
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("memory-plugin-conformance: cannot start the tokio runtime: {e}");
            }
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(molecule_memory_conformance::run(&cli.url, cli.timeout));
    println!("{}", report.table());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
