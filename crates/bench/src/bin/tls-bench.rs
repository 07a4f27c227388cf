//! `tls-bench`: whole MPC-TLS sessions (three nodes, a client, a real TCP connection)
//! against a local rustls provider; prints one JSON object with the medians.
//!
//! `cargo run --release -p tessera-bench --bin tls-bench -- --request 1024 --response 4096 --runs 5`
//!
//! By default the nodes run in this process over in-memory transports. With
//! `--node-processes` each node is a child process (this binary again) that talks to the
//! other nodes and to the client over TCP on loopback, so each node's peak memory can be
//! measured on its own.
//!
//! With `--link-latency-ms` (and `--node-mbps`, `--client-mbps`) every node↔node and
//! client↔node message is delayed and paced; in one process each run is then paired with a
//! run on the same network without the latency, and `rounds` is the difference of the
//! medians divided by one round trip: the sequential round trips on the session's critical
//! path. With `--warm` the client starts only once the nodes have garbled everything that
//! needs no input (the time a session takes from a warm pool).
//!
//! The provider speaks TLS 1.2 only, or with `--tls13` TLS 1.3 only, and the nodes prepare
//! for that version (they garble its key schedule ahead); with `--prepare-other` for the
//! other one (the cost of a wrong guess).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use mpc::spec::PartyId;
use mpc::transport::Shaped;
use mpc_tls::client::{run_client, ClientOutput};
use mpc_tls::local::{fetch, LocalConfig};
use mpc_tls::net::{tcp, Wan};
use mpc_tls::node::{run_node, run_node_committed_early, NodeConfig};
use mpc_tls::server_auth::Roots;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tessera_provider::{http_request, http_response, pki, rustls_server, Behaviour};
use tokio::net::{TcpListener, TcpStream};

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
    /// Run each node in its own process, over TCP on loopback, and report each node's peak
    /// memory.
    #[arg(long)]
    node_processes: bool,
    /// Simulated one-way latency of every node↔node and client↔node message, ms (works in
    /// one process and with --node-processes; the provider's link is not delayed).
    #[arg(long, default_value_t = 0.0)]
    link_latency_ms: f64,
    /// Simulated bandwidth of each node↔node link, each direction, Mbit/s (default:
    /// unlimited).
    #[arg(long)]
    node_mbps: Option<f64>,
    /// Simulated bandwidth of each client↔node link, each direction, Mbit/s (default:
    /// unlimited).
    #[arg(long)]
    client_mbps: Option<f64>,
    /// Start each session's nodes before its client, and start the client only once every
    /// node has garbled what needs no input (a warm pool of one session): the times are then
    /// the client's wait with the preprocessing done ahead.
    #[arg(long)]
    warm: bool,
    /// TLS 1.3: the provider speaks TLS 1.3 only and the nodes prepare for it (default: the
    /// provider speaks TLS 1.2 only).
    #[arg(long)]
    tls13: bool,
    /// The nodes prepare for the other version than the provider speaks (a wrong guess: its
    /// executions are skipped and the right ones garbled after the ServerHello).
    #[arg(long)]
    prepare_other: bool,
    /// Internal: be node PARTY of a `--node-processes` benchmark (set by the parent).
    #[arg(long, hide = true)]
    as_node: Option<PartyId>,
}

impl Args {
    /// The simulated network, if any shaping was asked for.
    fn wan(&self) -> anyhow::Result<Option<Wan>> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !ok(self.link_latency_ms) {
            bail!("--link-latency-ms must be a number of milliseconds, 0 or more");
        }
        for m in [self.node_mbps, self.client_mbps].into_iter().flatten() {
            if !(m.is_finite() && m > 0.0) {
                bail!("--node-mbps and --client-mbps must be positive");
            }
        }
        let shaped =
            self.link_latency_ms > 0.0 || self.node_mbps.is_some() || self.client_mbps.is_some();
        Ok(shaped.then(|| Wan {
            latency: Duration::from_secs_f64(self.link_latency_ms / 1e3),
            node_mbps: self.node_mbps,
            client_mbps: self.client_mbps,
        }))
    }

    /// The shaping arguments, to hand to node processes.
    fn wan_args(&self) -> Vec<String> {
        let mut v = vec!["--link-latency-ms".into(), self.link_latency_ms.to_string()];
        if let Some(m) = self.node_mbps {
            v.extend(["--node-mbps".into(), m.to_string()]);
        }
        if let Some(m) = self.client_mbps {
            v.extend(["--client-mbps".into(), m.to_string()]);
        }
        v
    }
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

/// This process's peak resident set (VmHWM), MiB.
fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    // A node is one sequential protocol task, so it runs on one thread: with a thread pool
    // its allocations spread over glibc's per-thread arenas, which kept 15–40 MiB more
    // resident for the evaluator here, and no faster.
    let rt = match a.as_node {
        Some(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => return mpc_tls::local::exit_code(Err(anyhow::Error::from(e))),
    };
    match a.as_node {
        Some(party) => mpc_tls::local::exit_code(rt.block_on(node_process(party, a))),
        None => mpc_tls::local::exit_code(rt.block_on(run(a))),
    }
}

/// What the parent tells each node process once all of them listen.
#[derive(Serialize, Deserialize)]
struct NodeSetup {
    /// Each node's listening address for the other nodes.
    mesh: [SocketAddr; 3],
    /// Where the client accepts the nodes' links.
    client: SocketAddr,
    /// The provider's root, PEM.
    ca_pem: String,
    /// Certificate-check time.
    time: u64,
}

/// What a node process reports when it is done.
#[derive(Serialize, Deserialize)]
struct NodeResult {
    party: PartyId,
    peak_rss_mib: Option<f64>,
    and_gates: Vec<usize>,
    node_bytes_sent: Vec<u64>,
}

/// A child process running one node; its stdout carries the protocol above.
struct NodeChild {
    child: Child,
    out: std::io::BufReader<ChildStdout>,
}

impl Drop for NodeChild {
    fn drop(&mut self) {
        // A node that is still running when the benchmark gives up must not outlive it.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl NodeChild {
    fn line(&mut self) -> anyhow::Result<String> {
        let mut l = String::new();
        self.out.read_line(&mut l)?;
        if l.is_empty() {
            bail!("a node process exited early (its error is above)");
        }
        Ok(l)
    }
}

async fn run(a: Args) -> anyhow::Result<()> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let name = "provider.test";
    let p = pki(&[name])?;
    let b = Behaviour {
        body: a.response,
        tls12_only: !a.tls13,
        tls13_only: a.tls13,
        ..Behaviour::default()
    };
    let mut cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem)?);
    cfg.prepare_tls13 = a.tls13 != a.prepare_other;
    cfg.timeout = Duration::from_secs(a.timeout);
    cfg.wan = a.wan()?;
    cfg.warm = a.warm;
    // Round trips: each run is paired with one on the same network without its latency
    // (in one process only: node processes keep their shaping for all their sessions).
    let no_latency = cfg
        .wan
        .filter(|w| !w.latency.is_zero() && !a.node_processes)
        .map(|w| {
            let mut c = cfg.clone();
            c.wan = Some(Wan {
                latency: Duration::ZERO,
                ..w
            });
            c
        });
    let sessions = (a.runs + 1) * if no_latency.is_some() { 2 } else { 1 };
    let (addr, server) = rustls_server(&p, b, sessions)?;
    let req = http_request(name, "/", a.request);
    let want = http_response(b);

    let mut procs = None;
    if a.node_processes {
        let exe = std::env::current_exe().context("cannot find this program to start nodes")?;
        let mut children = Vec::new();
        for party in 0..3u8 {
            let mut child = Command::new(&exe)
                .args(["--as-node", &party.to_string()])
                .args(["--runs", &a.runs.to_string()])
                .args(["--timeout", &a.timeout.to_string()])
                .args(a.warm.then_some("--warm"))
                .args(a.tls13.then_some("--tls13"))
                .args(a.prepare_other.then_some("--prepare-other"))
                .args(a.wan_args())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("cannot start a node process")?;
            let out = child
                .stdout
                .take()
                .ok_or_else(|| anyhow!("node stdout missing"))?;
            children.push(NodeChild {
                child,
                out: std::io::BufReader::new(out),
            });
        }
        let mut mesh = [SocketAddr::from(([127, 0, 0, 1], 0)); 3];
        for (m, c) in mesh.iter_mut().zip(&mut children) {
            *m = c.line()?.trim().parse()?;
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let setup = serde_json::to_string(&NodeSetup {
            mesh,
            client: listener.local_addr()?,
            ca_pem: p.ca_pem.clone(),
            time: cfg.time,
        })?;
        for c in &mut children {
            let stdin = c
                .child
                .stdin
                .as_mut()
                .ok_or_else(|| anyhow!("node stdin missing"))?;
            writeln!(stdin, "{setup}")?;
            stdin.flush()?;
        }
        procs = Some((children, listener));
    }

    let mut rows = Vec::new();
    let mut no_latency_totals = Vec::new();
    let mut first = None;
    for i in 0..=a.runs {
        let (client, and_gates, node_bytes) = match &mut procs {
            None => {
                let out = fetch(&cfg, name, addr, &req)
                    .await
                    .context("session failed")?;
                for (k, n) in out.nodes.iter().enumerate() {
                    eprintln!("run {i}: node {k} {:?}", n.timings);
                }
                let gates = out.nodes.first().map_or(0, |n| n.and_gates);
                let bytes = out.nodes.iter().map(|n| n.node_bytes_sent).sum::<u64>();
                (out.client, gates, bytes)
            }
            Some((children, listener)) => {
                if a.warm {
                    for c in children.iter_mut() {
                        let l = c.line()?;
                        if l.trim() != "preprocessed" {
                            bail!("a node process said {l:?} instead of being ready");
                        }
                    }
                }
                (
                    remote_session(listener, &cfg, name, addr, &req).await?,
                    0,
                    0,
                )
            }
        };
        if client.response[..] != want[..] {
            bail!("run {i}: the decrypted response differs from what the provider sent");
        }
        let version = if a.tls13 { 0x0304 } else { 0x0303 };
        if client.transcript.tls_version != version {
            bail!(
                "run {i}: the session negotiated TLS version {:#06x}, not {version:#06x}",
                client.transcript.tls_version
            );
        }
        let s = client.stats;
        let row = (
            s.handshake.as_secs_f64() * 1e3,
            s.total.as_secs_f64() * 1e3,
            s.server_visible_gap.as_secs_f64() * 1e3,
            and_gates,
            node_bytes,
            s.bytes_up,
            s.bytes_down,
        );
        eprintln!(
            "run {i}: total {:.1} ms, handshake {:.1} ms, gap {:.1} ms",
            row.1, row.0, row.2
        );
        if let Some(c0) = &no_latency {
            let out = fetch(c0, name, addr, &req)
                .await
                .context("session without latency failed")?;
            let t = out.client.stats.total.as_secs_f64() * 1e3;
            eprintln!("run {i}: without latency: total {t:.1} ms");
            if i > 0 {
                no_latency_totals.push(t);
            }
        }
        if i == 0 {
            first = Some(row.1);
        } else {
            rows.push(row);
        }
    }
    drop(server);

    let mut per_node = serde_json::Value::Null;
    if let Some((mut children, _)) = procs {
        let mut peaks = Vec::new();
        for c in &mut children {
            let r: NodeResult = serde_json::from_str(&c.line()?)?;
            // Measured runs only: the first is the warm-up.
            for (row, (g, b)) in rows
                .iter_mut()
                .zip(r.and_gates.iter().zip(&r.node_bytes_sent).skip(1))
            {
                if r.party == 0 {
                    row.3 = *g;
                }
                row.4 += b;
            }
            peaks.push(r.peak_rss_mib);
            let status = c.child.wait()?;
            if !status.success() {
                bail!("node process {} failed: {status}", r.party);
            }
        }
        per_node = serde_json::json!(peaks);
    }

    let col = |f: fn(&Row) -> f64| median(rows.iter().map(f).collect());
    // The latency's cost divided by one round trip: how many sequential round trips between
    // the parties lie on the session's critical path.
    let (no_latency_ms, rounds) = if no_latency.is_some() {
        let t0 = median(no_latency_totals);
        let extra = col(|r| r.1) - t0;
        (Some(t0), Some(extra / (2.0 * a.link_latency_ms)))
    } else {
        (None, None)
    };
    let json = serde_json::json!({
        "tls_version": if a.tls13 { "1.3" } else { "1.2" },
        "prepared_for": if a.tls13 != a.prepare_other { "1.3" } else { "1.2" },
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
        "node_processes": a.node_processes,
        "warm": a.warm,
        "link_latency_ms": a.link_latency_ms,
        "total_ms_without_latency": no_latency_ms,
        "rounds": rounds,
        "node_mbps": a.node_mbps,
        "client_mbps": a.client_mbps,
        "peak_rss_mib_per_node": per_node,
        "peak_rss_mib_this_process": peak_rss_mib(),
        "tee": "none (nodes without attestation)",
    });
    println!("{json}");
    Ok(())
}

/// The client's side of one session with node processes: accept each node's link (it
/// announces its party id in its first byte), then run the client.
async fn remote_session(
    listener: &TcpListener,
    cfg: &LocalConfig,
    name: &str,
    addr: SocketAddr,
    req: &[u8],
) -> anyhow::Result<ClientOutput> {
    let mut links = tcp::client_links(listener, cfg.timeout)
        .await
        .context("the nodes did not connect")?;
    if let Some(w) = cfg.wan {
        links = links.shaped(w.client());
    }
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    let out = run_client(
        name,
        tcp,
        &mut links,
        req,
        cfg.timeout,
        &mut rand::rngs::OsRng,
        false,
    )
    .await
    .context("session failed")?;
    Ok(out)
}

/// A node process: listen for the other nodes, learn the setup from stdin, then run
/// `runs + 1` sessions, each over fresh TCP connections, and report.
async fn node_process(party: PartyId, a: Args) -> anyhow::Result<()> {
    if party > 2 {
        bail!("--as-node takes 0, 1 or 2");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let setup: NodeSetup = serde_json::from_str(&line).context("bad setup from the parent")?;
    let cfg = NodeConfig::new(
        Roots::from_pem(&setup.ca_pem)?,
        setup.time,
        Duration::from_secs(a.timeout),
    )
    .preparing_tls13(a.tls13 != a.prepare_other);
    let wan = a.wan()?;
    let mut result = NodeResult {
        party,
        peak_rss_mib: None,
        and_gates: Vec::new(),
        node_bytes_sent: Vec::new(),
    };
    for _ in 0..=a.runs {
        let transport = tcp::mesh(party, &listener, &setup.mesh, cfg.timeout)
            .await
            .context("cannot connect to the other nodes")?;
        let transport = Shaped::new(transport, wan.map(|w| w.nodes()));
        let mut link = tcp::node_link(party, setup.client)
            .await
            .context("cannot connect to the client")?;
        if let Some(w) = wan {
            link = link.shaped(w.client());
        }
        let mut rng = rand_chacha::ChaCha20Rng::from_rng(rand::rngs::OsRng)?;
        let report = if a.warm {
            // Tell the parent once the input-independent garbling is done.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let tell = tokio::spawn(async move {
                if rx.await.is_ok() {
                    println!("preprocessed");
                    let _ = std::io::stdout().flush();
                }
            });
            let c = run_node_committed_early(
                party,
                cfg.clone(),
                transport,
                async { Ok(link) },
                Some(tx),
                &mut rng,
            )
            .await?;
            let _ = tell.await;
            c.finish().await
        } else {
            run_node(party, cfg.clone(), transport, link, &mut rng).await?
        };
        result.and_gates.push(report.and_gates);
        result.node_bytes_sent.push(report.node_bytes_sent);
    }
    result.peak_rss_mib = peak_rss_mib();
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}
