//! Fetches one HTTPS resource through three in-process MPC-TLS nodes: prints the raw HTTP
//! response (headers and body) to stdout and one JSON line of statistics to stderr.
//!
//! `cargo run --release -p mpc-tls --example fetch -- --connect HOST:PORT --server-name NAME
//! --ca CA.pem --path /PATH`

use std::io::Write;
use std::net::ToSocketAddrs;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use mpc_tls::local::{fetch, LocalConfig};
use mpc_tls::server_auth::Roots;

#[derive(Parser)]
#[command(about = "Fetch an HTTPS resource with MPC-TLS (three in-process nodes)")]
struct Args {
    /// Address to connect to (HOST:PORT).
    #[arg(long)]
    connect: String,
    /// TLS server name (SNI and certificate check).
    #[arg(long)]
    server_name: String,
    /// PEM file of root certificates to trust (default: the Mozilla roots).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Path to request.
    #[arg(long, default_value = "/")]
    path: String,
    /// Receive timeout for every party, seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::process::ExitCode {
    mpc_tls::local::exit_code(run(Args::parse()).await)
}

async fn run(a: Args) -> anyhow::Result<()> {
    if !a.path.starts_with('/') || a.path.bytes().any(|c| c.is_ascii_control() || c == b' ') {
        bail!("--path must start with / and contain no spaces or control characters");
    }
    let roots = match &a.ca {
        Some(p) => Roots::from_pem(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => Roots::default(),
    };
    let addr = a
        .connect
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", a.connect))?
        .next()
        .with_context(|| format!("{} resolves to no address", a.connect))?;
    let mut cfg = LocalConfig::new(roots);
    cfg.timeout = Duration::from_secs(a.timeout);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tessera-mpc-tls\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        a.path, a.server_name
    );
    let out = fetch(&cfg, &a.server_name, addr, request.as_bytes()).await?;
    std::io::stdout().write_all(&out.client.response)?;
    std::io::stdout().flush()?;
    let s = out.client.stats;
    let stats = serde_json::json!({
        "handshake_ms": s.handshake.as_secs_f64() * 1e3,
        "total_ms": s.total.as_secs_f64() * 1e3,
        "server_visible_gap_ms": s.server_visible_gap.as_secs_f64() * 1e3,
        "and_gates": out.nodes.first().map_or(0, |n| n.and_gates),
        "node_bytes": out.nodes.iter().map(|n| n.node_bytes_sent).sum::<u64>(),
        "client_bytes_up": s.bytes_up,
        "client_bytes_down": s.bytes_down,
        "suite": out.client.transcript.suite.to_string(),
        "close_notify": out.client.transcript.close_notify,
    });
    eprintln!("{stats}");
    Ok(())
}
