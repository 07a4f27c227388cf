//! A whole session in one process: three nodes over in-memory transports and a client over
//! a real TCP connection to the provider. Used by the `fetch` example, `tls-bench` and the
//! tests; the networked deployment puts the same node and client code behind QUIC.

use std::net::SocketAddr;
use std::time::Duration;

use mpc::transport::memory_network;
use rand::rngs::OsRng;
use rand::SeedableRng;
use tokio::net::TcpStream;

use crate::client::{run_client_disclosing, ClientError, ClientOutput, Planner};
use crate::net::{links, Recording, Tap};
use crate::node::{run_node, Faults, NodeConfig, NodeError, NodeReport, UidKey};
use crate::verify::Roots;

/// Settings for [`fetch`].
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Roots the nodes trust for the provider.
    pub roots: Roots,
    /// Certificate-check time (unix seconds).
    pub time: u64,
    /// Receive timeout for every party.
    pub timeout: Duration,
    /// Deliberate deviations per node, for adversarial tests (all off by default).
    pub faults: [Faults; 3],
    /// Each node's UID key share, for nullifiers (none by default).
    pub uid: [Option<UidKey>; 3],
}

impl LocalConfig {
    /// The given roots, the current time and a 30 s timeout.
    pub fn new(roots: Roots) -> Self {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        LocalConfig {
            roots,
            time,
            timeout: Duration::from_secs(30),
            faults: [Faults::default(); 3],
            uid: Default::default(),
        }
    }
}

/// Why a local session failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// Could not reach the provider.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        error: std::io::Error,
    },
    /// The client failed (a node's reason is inside when a node stopped).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A node failed after the client had finished.
    #[error("node {node}: {source}")]
    Node {
        /// The node.
        node: usize,
        /// Its error.
        source: NodeError,
    },
    /// A node task panicked or was cancelled.
    #[error("node task {0} did not finish")]
    Task(usize),
}

/// The outcome of [`fetch`].
#[derive(Debug)]
pub struct LocalOutput {
    /// The client's result.
    pub client: ClientOutput,
    /// Each node's report.
    pub nodes: Vec<NodeReport>,
}

/// Runs one session against the provider at `addr` (TLS name `server_name`), sending
/// `request`, with three in-process nodes.
pub async fn fetch(
    cfg: &LocalConfig,
    server_name: &str,
    addr: SocketAddr,
    request: &[u8],
) -> Result<LocalOutput, LocalError> {
    fetch_recorded(cfg, server_name, addr, request, None).await
}

/// [`fetch`], then the disclosure `planner` makes from the response.
pub async fn fetch_disclosing(
    cfg: &LocalConfig,
    server_name: &str,
    addr: SocketAddr,
    request: &[u8],
    planner: Planner<'_>,
) -> Result<LocalOutput, LocalError> {
    run_local(cfg, server_name, addr, request, None, Some(planner)).await
}

/// [`fetch`], recording everything node `i` sends and receives (to the client and the other
/// nodes) into `recordings[i]`.
pub async fn fetch_recorded(
    cfg: &LocalConfig,
    server_name: &str,
    addr: SocketAddr,
    request: &[u8],
    recordings: Option<&[Recording; 3]>,
) -> Result<LocalOutput, LocalError> {
    run_local(cfg, server_name, addr, request, recordings, None).await
}

async fn run_local(
    cfg: &LocalConfig,
    server_name: &str,
    addr: SocketAddr,
    request: &[u8],
    recordings: Option<&[Recording; 3]>,
    planner: Option<Planner<'_>>,
) -> Result<LocalOutput, LocalError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|error| LocalError::Connect { addr, error })?;
    let _ = tcp.set_nodelay(true);
    let (mut client_links, node_links) = links();
    let mut tasks = Vec::new();
    for (i, (t, link)) in memory_network().into_iter().zip(node_links).enumerate() {
        let rec = recordings.map(|r| r[i].clone());
        let link = match &rec {
            Some(r) => link.with_tap(r.clone()),
            None => link,
        };
        let t = Tap::new(t, rec);
        let ncfg = NodeConfig {
            roots: cfg.roots.clone(),
            time: cfg.time,
            timeout: cfg.timeout,
            faults: cfg.faults[i],
            uid: cfg.uid[i].clone(),
        };
        tasks.push(tokio::spawn(async move {
            let mut rng =
                rand_chacha::ChaCha20Rng::from_rng(OsRng).map_err(|_| NodeError::Random)?;
            run_node(i as u8, ncfg, t, link, &mut rng).await
        }));
    }
    let client = run_client_disclosing(
        server_name,
        tcp,
        &mut client_links,
        request,
        cfg.timeout,
        &mut OsRng,
        planner,
    )
    .await;
    drop(client_links);
    let mut nodes = Vec::new();
    let mut node_err = None;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok(r)) => nodes.push(r),
            Ok(Err(e)) => {
                node_err.get_or_insert(LocalError::Node { node: i, source: e });
            }
            Err(_) => {
                node_err.get_or_insert(LocalError::Task(i));
            }
        }
    }
    let client = client?;
    if let Some(e) = node_err {
        return Err(e);
    }
    Ok(LocalOutput { client, nodes })
}

/// A command-line program's exit: success, or the error on one line (whatever
/// `RUST_BACKTRACE` says) and a failure code.
pub fn exit_code<E>(r: Result<(), E>) -> std::process::ExitCode
where
    E: AsRef<dyn std::error::Error + Send + Sync + 'static>,
{
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line for a command-line user, skipping a cause that its
/// parent's message already quotes.
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let m = err.to_string();
        if !out.contains(&m) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&m);
        }
        next = err.source();
    }
    out
}
