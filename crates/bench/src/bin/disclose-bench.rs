//! `disclose-bench`: whole MPC-TLS sessions against a local rustls provider serving a JSON
//! body of a chosen size with the selected value at its end, each followed by the
//! disclosure of that value; prints one JSON object with the medians.
//!
//! `cargo run --release -p tessera-bench --bin disclose-bench -- --body 65536 --runs 3`
//!
//! The three nodes run in this process over in-memory transports (so three parties share
//! the machine's cores). `disclose_ms` is the client's time from sending the disclosure
//! request to holding the checked result; the AND-gate counts are the executions' circuits.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;
use disclosure::client::Selection;
use disclosure::expr::parse_predicate;
use disclosure::local::fetch_disclosing;
use disclosure::path::Path;
use mpc_tls::local::LocalConfig;
use mpc_tls::server_auth::Roots;
use tessera_provider::{http_request, pki, serve_responses};

#[derive(Parser)]
#[command(about = "Benchmark the disclosure of a JSON value at the end of a body")]
struct Args {
    /// Body bytes (at least 64).
    #[arg(long, default_value_t = 4096)]
    body: usize,
    /// The path revealed (it is placed at the end of the body).
    #[arg(long, default_value = "$.user.address.country")]
    reveal: String,
    /// Also prove this predicate (e.g. '$.user.age>=18'; `age` is placed next to the
    /// revealed value).
    #[arg(long)]
    predicate: Option<String>,
    /// Serve the body with Transfer-Encoding: chunked, in chunks of this many bytes.
    #[arg(long)]
    chunked: Option<usize>,
    /// Measured runs (after one warm-up run, reported separately).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

/// A JSON body of `size` bytes: filler members first, then the object holding the value.
fn body(size: usize, path: &Path) -> anyhow::Result<String> {
    use disclosure::path::Segment;
    let mut tail = String::from("\"DE\"");
    for seg in path.segments().iter().rev() {
        tail = match seg {
            Segment::Name(n) if tail.starts_with('"') => {
                format!("{{\"age\":119,{}:{tail}}}", serde_json::to_string(n)?)
            }
            Segment::Name(n) => format!("{{{}:{tail}}}", serde_json::to_string(n)?),
            Segment::Index(i) => {
                let mut items: Vec<String> = (0..*i).map(|_| "0".to_string()).collect();
                items.push(tail);
                format!("[{}]", items.join(","))
            }
        };
    }
    // `tail` is an object `{...}`: put filler members before its content.
    let inner = tail
        .strip_prefix('{')
        .context("the path must start with a name")?
        .to_string();
    let mut out = String::from("{");
    let mut k = 0;
    while out.len() + inner.len() + 40 < size {
        let room = size - out.len() - inner.len() - 20;
        let n = room.min(100);
        out.push_str(&format!("\"f{k:05}\":\"{}\",", "x".repeat(n)));
        k += 1;
    }
    while out.len() + inner.len() < size {
        out.push(' ');
    }
    out.push_str(&inner);
    Ok(out)
}

fn response(body: &str, chunked: Option<usize>) -> Vec<u8> {
    match chunked {
        None => tessera_provider::json_response(body),
        Some(n) => {
            let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
            for c in body.as_bytes().chunks(n.max(1)) {
                out.extend(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend(c);
                out.extend(b"\r\n");
            }
            out.extend(b"0\r\n\r\n");
            out
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn run(a: Args) -> anyhow::Result<()> {
    if a.body < 64 {
        bail!("--body must be at least 64 bytes");
    }
    let path = Path::parse(&a.reveal)?;
    let body = body(a.body, &path)?;
    let p = pki(&["provider.test"])?;
    let (addr, _h) = serve_responses(&p, vec![response(&body, a.chunked); a.runs + 1])?;
    let mut cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem)?);
    cfg.timeout = std::time::Duration::from_secs(300);
    let req = http_request("provider.test", "/api/me", 200);
    let sel = Selection {
        reveal: vec![path],
        predicates: a
            .predicate
            .iter()
            .map(|s| parse_predicate(s))
            .collect::<Result<_, _>>()?,
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut first = None;
    let (mut disclose, mut total) = (Vec::new(), Vec::new());
    let mut last = None;
    for i in 0..=a.runs {
        let out = rt.block_on(fetch_disclosing(
            &cfg,
            &Default::default(),
            "provider.test",
            addr,
            &req,
            &sel,
        ))?;
        eprintln!(
            "run {i}: disclosure {:.1} ms, session+disclosure {:.1} ms, node 0 {:?}",
            out.disclose_ms, out.total_ms, out.nodes[0].1.timings
        );
        if i == 0 {
            first = Some(out.disclose_ms);
        } else {
            disclose.push(out.disclose_ms);
            total.push(out.total_ms);
        }
        last = Some(out);
    }
    let out = last.context("no run")?;
    let t = out.nodes[0].1.timings;
    let scanned = out.client.response.len();
    let ands = t.and_decrypt + t.and_scan + t.and_final;
    let report = serde_json::json!({
        "body_bytes": body.len(),
        "response_bytes": scanned,
        "path": a.reveal,
        "predicate": a.predicate,
        "chunked": a.chunked,
        "runs": a.runs,
        "and_gates": { "decrypt": t.and_decrypt, "scan": t.and_scan, "final": t.and_final, "total": ands },
        "scan_ands_per_body_byte": t.and_scan as f64 / body.len() as f64,
        "ands_per_response_byte": (t.and_decrypt + t.and_scan) as f64 / scanned as f64,
        "executions": t.executions,
        "disclose_ms": median(disclose),
        "first_run_disclose_ms": first,
        "session_and_disclose_ms": median(total),
        "result_status": out.result.status,
    });
    println!("{report}");
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
