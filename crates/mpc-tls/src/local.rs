//! A whole session in one process: three nodes over in-memory transports and a client over
//! a real TCP connection to the provider. Used by the `fetch` example, `tls-bench` and the
//! tests; the networked deployment puts the same node and client code behind QUIC.

use std::net::SocketAddr;
use std::time::Duration;

use mpc::transport::{memory_network, Shaped};
use rand::rngs::OsRng;
use rand::SeedableRng;
use tokio::net::TcpStream;

use crate::client::{run_client, ClientError, ClientOutput};
use crate::net::{links, ClientLinks, Link, Recording, Tap, Wan};
use crate::node::{run_node_committed_early, NodeConfig, NodeError, NodeReport};
use crate::server_auth::Roots;

/// Settings for [`fetch`].
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Roots the nodes trust for the provider.
    pub roots: Roots,
    /// Certificate-check time (unix seconds).
    pub time: u64,
    /// Receive timeout for every party.
    pub timeout: Duration,
    /// A simulated wide-area network between the parties (benchmarks); `None`: in-memory
    /// links with no delay.
    pub wan: Option<Wan>,
    /// Start the client only once every node has done its input-independent garbling (a
    /// session from a warm pool, for benchmarks); otherwise all start together.
    pub warm: bool,
    /// The nodes garble TLS 1.3's key schedule ahead (the default) instead of TLS 1.2's
    /// ([`NodeConfig::prepare_tls13`]).
    pub prepare_tls13: bool,
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
            wan: None,
            warm: false,
            prepare_tls13: true,
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

/// [`fetch`], recording everything node `i` sends and receives (to the client and the other
/// nodes) into `recordings[i]`.
pub async fn fetch_recorded(
    cfg: &LocalConfig,
    server_name: &str,
    addr: SocketAddr,
    request: &[u8],
    recordings: Option<&[Recording; 3]>,
) -> Result<LocalOutput, LocalError> {
    let LocalNet {
        tcp,
        mut client_links,
        nodes,
    } = LocalNet::connect(cfg, addr, recordings).await?;
    let mut ready = Vec::new();
    let tasks: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            ready.push(rx);
            tokio::spawn(async move {
                let mut rng = n.rng()?;
                let link = n.link;
                let c = run_node_committed_early(
                    n.id,
                    n.cfg,
                    n.transport,
                    async { Ok(link) },
                    Some(tx),
                    &mut rng,
                )
                .await?;
                Ok(c.finish().await)
            })
        })
        .collect();
    if cfg.warm {
        for r in ready {
            // A node that fails before it is ready reports its error below.
            let _ = r.await;
        }
    }
    let client = run_client(
        server_name,
        tcp,
        &mut client_links,
        request,
        cfg.timeout,
        &mut OsRng,
        false,
    )
    .await;
    drop(client_links);
    let nodes = join_nodes(tasks).await;
    let client = client?;
    let nodes = nodes.map_err(|(node, e)| match e {
        Some(source) => LocalError::Node { node, source },
        None => LocalError::Task(node),
    })?;
    Ok(LocalOutput { client, nodes })
}

/// The transport an in-process node talks to its peers over.
pub type LocalTransport = Tap<Shaped<mpc::transport::MemoryTransport>>;

/// What one in-process node of [`LocalNet`] runs with.
pub struct LocalNode {
    /// Its party id.
    pub id: mpc::spec::PartyId,
    /// Its settings.
    pub cfg: NodeConfig,
    /// Its links to the other nodes.
    pub transport: LocalTransport,
    /// Its link to the client.
    pub link: Link,
}

impl LocalNode {
    /// A fresh random generator for the node's task.
    pub fn rng(&self) -> Result<rand_chacha::ChaCha20Rng, NodeError> {
        rand_chacha::ChaCha20Rng::from_rng(OsRng).map_err(|_| NodeError::Random)
    }
}

/// Three in-process nodes and a client, wired together, and the client's connection to the
/// provider: the pieces of [`fetch`], for callers that run more on the session (the
/// disclosure) and so drive the node tasks themselves.
pub struct LocalNet {
    /// The client's open connection to the provider.
    pub tcp: TcpStream,
    /// The client's links to the nodes.
    pub client_links: ClientLinks,
    /// The nodes, party 0 to 2.
    pub nodes: Vec<LocalNode>,
}

impl LocalNet {
    /// Connects to the provider at `addr` and wires three nodes with the settings of `cfg`,
    /// recording node `i`'s traffic into `recordings[i]` if given.
    pub async fn connect(
        cfg: &LocalConfig,
        addr: SocketAddr,
        recordings: Option<&[Recording; 3]>,
    ) -> Result<LocalNet, LocalError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|error| LocalError::Connect { addr, error })?;
        let _ = tcp.set_nodelay(true);
        let (client_links, node_links) = links();
        let client_links = match cfg.wan {
            Some(w) => client_links.shaped(w.client()),
            None => client_links,
        };
        let mut nodes = Vec::new();
        for (i, (t, link)) in memory_network().into_iter().zip(node_links).enumerate() {
            let rec = recordings.map(|r| r[i].clone());
            let link = match &rec {
                Some(r) => link.with_tap(r.clone()),
                None => link,
            };
            let link = match cfg.wan {
                Some(w) => link.shaped(w.client()),
                None => link,
            };
            nodes.push(LocalNode {
                id: i as u8,
                cfg: NodeConfig::new(cfg.roots.clone(), cfg.time, cfg.timeout)
                    .preparing_tls13(cfg.prepare_tls13),
                transport: Tap::new(Shaped::new(t, cfg.wan.map(|w| w.nodes())), rec),
                link,
            });
        }
        Ok(LocalNet {
            tcp,
            client_links,
            nodes,
        })
    }
}

/// Waits for the node tasks, in party order. The first failure is the error: the node's
/// party index and its error (`None` if the task panicked or was cancelled).
pub async fn join_nodes<T, E>(
    tasks: Vec<tokio::task::JoinHandle<Result<T, E>>>,
) -> Result<Vec<T>, (usize, Option<E>)> {
    let mut out = Vec::new();
    let mut err = None;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok(r)) => out.push(r),
            Ok(Err(e)) => {
                err.get_or_insert((i, Some(e)));
            }
            Err(_) => {
                err.get_or_insert((i, None));
            }
        }
    }
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
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
