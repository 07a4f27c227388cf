//! `tls-bench`: whole MPC-TLS sessions (three in-process nodes, a client, a real TCP
//! connection) against a local rustls provider; prints one JSON object with the medians.
//!
//! `cargo run --release -p mpc-tls --bin tls-bench -- --request 1024 --response 4096 --runs 5`

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use mpc_tls::local::{fetch, LocalConfig};
use mpc_tls::provider::{http_request, http_response, pki, rustls_server, Behaviour};
use mpc_tls::verify::Roots;

#[derive(Parser)]
#[command(about = "Benchmark MPC-TLS sessions against a local rustls provider")]
struct Args {
    /// Request bytes (an HTTP GET padded to this size).
    #[arg(long, default_value_t = 1024)]
    request: usize,
    /// Response body bytes.
    #[arg(long, default_value_t = 4096)]
    response: usize,
    /// Measured runs (after one warm-up run that is reported separately).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Receive timeout for every party, seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// One run: handshake ms, total ms, gap ms, AND gates, node bytes, client up, client down.
type Row = (f64, f64, f64, usize, u64, u64, u64);

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> std::process::ExitCode {
    mpc_tls::local::exit_code(run(Args::parse()).await)
}

async fn run(a: Args) -> anyhow::Result<()> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let name = "provider.test";
    let p = pki(&[name])?;
    let b = Behaviour {
        body: a.response,
        ..Behaviour::default()
    };
    let (addr, server) = rustls_server(&p, b, a.runs + 1)?;
    let mut cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem)?);
    cfg.timeout = Duration::from_secs(a.timeout);
    let req = http_request(name, "/", a.request);
    let want = http_response(b);
    let mut rows = Vec::new();
    let mut first = None;
    for i in 0..=a.runs {
        let out = fetch(&cfg, name, addr, &req)
            .await
            .context("session failed")?;
        if out.client.response[..] != want[..] {
            bail!("run {i}: the decrypted response differs from what the provider sent");
        }
        let s = out.client.stats;
        let row = (
            s.handshake.as_secs_f64() * 1e3,
            s.total.as_secs_f64() * 1e3,
            s.server_visible_gap.as_secs_f64() * 1e3,
            out.nodes.first().map_or(0, |n| n.and_gates),
            out.nodes.iter().map(|n| n.node_bytes_sent).sum::<u64>(),
            s.bytes_up,
            s.bytes_down,
        );
        if let Some(n) = out.nodes.first() {
            eprintln!("run {i}: node 0 {:?}", n.timings);
        }
        eprintln!(
            "run {i}: total {:.1} ms, handshake {:.1} ms, gap {:.1} ms",
            row.1, row.0, row.2
        );
        if i == 0 {
            first = Some(row.1);
        } else {
            rows.push(row);
        }
    }
    drop(server);
    let col = |f: fn(&Row) -> f64| median(rows.iter().map(f).collect());
    let json = serde_json::json!({
        "request": a.request,
        "response": a.response,
        "runs": a.runs,
        "handshake_ms": col(|r| r.0),
        "total_ms": col(|r| r.1),
        "server_visible_gap_ms": col(|r| r.2),
        "and_gates": col(|r| r.3 as f64) as u64,
        "node_bytes": col(|r| r.4 as f64) as u64,
        "client_bytes_up": col(|r| r.5 as f64) as u64,
        "client_bytes_down": col(|r| r.6 as f64) as u64,
        "first_run_total_ms": first,
        "peak_rss_mib_whole_process": peak_rss_mib(),
        "tee": "none (in-process nodes)",
    });
    println!("{json}");
    Ok(())
}
