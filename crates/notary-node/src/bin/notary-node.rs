//! `notary-node --config configs/node-1.toml`: runs a Tessera notary node until SIGINT or
//! SIGTERM, then drains (running sessions finish; new ones are refused) and exits.
//! Exit status: 0 after a clean shutdown, 1 on a fatal error (a refusal by the coordinator,
//! unusable state), 2 for a bad configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "notary-node", version, about = "Tessera notary node")]
struct Args {
    /// The node's TOML configuration.
    #[arg(long)]
    config: PathBuf,
}

fn main() -> ExitCode {
    notary_node::cli::main(Args::parse().config)
}
