//! `coordinator --config configs/coordinator.toml`: runs the Tessera coordinator until
//! SIGINT or SIGTERM. Exit status: 0 after shutdown, 1 on a fatal error, 2 for a bad
//! configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "coordinator", version, about = "Tessera coordinator")]
struct Args {
    /// The coordinator's TOML configuration.
    #[arg(long)]
    config: PathBuf,
}

fn main() -> ExitCode {
    coordinator::cli::main(Args::parse().config)
}
