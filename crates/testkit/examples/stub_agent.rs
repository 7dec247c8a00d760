//! The test kit's stub A2A agent as a process, for `cargo xtask bench scheduler`: it answers
//! every `message/send` with an echo at once, however many workspaces register its URL (it
//! asks for no inbound secret, unlike the reference agent). Prints `http://127.0.0.1:<port>`
//! on its first line and serves until killed.
#![allow(clippy::print_stdout)] // a benchmark's helper process: its URL is its output

use std::io::Write;

use molecule_testkit::StubAgent;
use molecule_testkit::agent::Mode;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let agent = StubAgent::start(Mode::Echo)?;
    println!("{}", agent.url);
    std::io::stdout().flush()?;
    loop {
        std::thread::park();
    }
}
