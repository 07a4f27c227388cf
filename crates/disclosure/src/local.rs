//! A whole session and its disclosure in one process: three in-process nodes and a client
//! with a real TCP connection to the provider. Used by the in-process committee, the
//! benchmark and the tests; the network puts the same node and client code behind QUIC.

use std::net::SocketAddr;
use std::time::Instant;

use mpc_tls::client::{run_client, ClientOutput};
use mpc_tls::local::{join_nodes, LocalConfig, LocalError, LocalNet};
use mpc_tls::net::Recording;
use mpc_tls::node::{run_node_committed, NodeReport};
use rand::rngs::OsRng;

use crate::client::{disclose, plan, ClientDiscloseError, ClientPlan, PlanError, Selection};
use crate::node::{self, DiscloseConfig, DiscloseError, Disclosed};
use crate::request::DisclosureResult;

/// Why a local session with a disclosure failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalDiscloseError {
    /// The MPC-TLS session failed.
    #[error(transparent)]
    Session(#[from] LocalError),
    /// The client could not plan the disclosure from the response.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The client's side of the disclosure failed.
    #[error(transparent)]
    Client(#[from] ClientDiscloseError),
    /// A node's disclosure failed after the client had finished.
    #[error("node {node}: {source}")]
    Node {
        /// The node.
        node: usize,
        /// Its error.
        source: DiscloseError,
    },
    /// A node task panicked or was cancelled.
    #[error("node task {0} did not finish")]
    Task(usize),
}

/// What a local session with a disclosure gives.
#[derive(Debug)]
pub struct LocalDisclosed {
    /// The client's session result (the response plaintext and the transcript).
    pub client: ClientOutput,
    /// The client's plan (the request, salts, values).
    pub plan: ClientPlan,
    /// The committee's result.
    pub result: DisclosureResult,
    /// Each node's session report and disclosure.
    pub nodes: Vec<(NodeReport, Disclosed)>,
    /// The client's time from connecting to the result, ms.
    pub total_ms: f64,
    /// The client's time from sending the disclosure request to holding the checked result
    /// (the disclosure alone), ms.
    pub disclose_ms: f64,
}

/// Runs a session against the provider at `addr` (TLS name `server_name`) sending
/// `request`, then the disclosure the client plans from the response for `sel`. Node `i`
/// discloses with `disclose[i]`.
pub async fn fetch_disclosing(
    cfg: &LocalConfig,
    disclose_cfg: &[DiscloseConfig; 3],
    server_name: &str,
    addr: SocketAddr,
    request: &[u8],
    sel: &Selection,
) -> Result<LocalDisclosed, LocalDiscloseError> {
    fetch_disclosing_recorded(cfg, disclose_cfg, server_name, addr, request, sel, None).await
}

/// [`fetch_disclosing`], recording everything node `i` sends and receives (to the client and
/// the other nodes) into `recordings[i]`.
pub async fn fetch_disclosing_recorded(
    cfg: &LocalConfig,
    disclose_cfg: &[DiscloseConfig; 3],
    server_name: &str,
    addr: SocketAddr,
    request: &[u8],
    sel: &Selection,
    recordings: Option<&[Recording; 3]>,
) -> Result<LocalDisclosed, LocalDiscloseError> {
    let t0 = Instant::now();
    let LocalNet {
        tcp,
        mut client_links,
        nodes,
    } = LocalNet::connect(cfg, addr, recordings).await?;
    let tasks: Vec<_> = nodes
        .into_iter()
        .zip(disclose_cfg.iter().cloned())
        .map(|(n, dc)| {
            tokio::spawn(async move {
                let mut rng = n.rng().map_err(DiscloseError::Session)?;
                let mut c = run_node_committed(n.id, n.cfg, n.transport, n.link, &mut rng).await?;
                match node::disclose(&mut c, &dc, &mut rng).await {
                    Ok(d) => Ok((c.finish().await, d)),
                    Err(e) => {
                        c.fail(&e.failure(), e.peer_stopped()).await;
                        Err(e)
                    }
                }
            })
        })
        .collect();
    let client = async {
        let out = run_client(
            server_name,
            tcp,
            &mut client_links,
            request,
            cfg.timeout,
            &mut OsRng,
            true,
        )
        .await
        .map_err(|e| LocalDiscloseError::Session(e.into()))?;
        let p = plan(sel, request, &out.response, &mut OsRng)?;
        let t1 = Instant::now();
        let r = disclose(&mut client_links, &p, &out.records, cfg.timeout, &mut OsRng).await?;
        Ok::<_, LocalDiscloseError>((out, p, r, t1.elapsed()))
    }
    .await;
    drop(client_links);
    let nodes = join_nodes(tasks).await;
    let (client, plan, result, took) = client?;
    let nodes = nodes.map_err(|(node, e)| match e {
        Some(source) => LocalDiscloseError::Node { node, source },
        None => LocalDiscloseError::Task(node),
    })?;
    Ok(LocalDisclosed {
        client,
        plan,
        result,
        nodes,
        total_ms: t0.elapsed().as_secs_f64() * 1e3,
        disclose_ms: took.as_secs_f64() * 1e3,
    })
}
