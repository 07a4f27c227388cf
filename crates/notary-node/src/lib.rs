//! The Tessera notary node daemon, as a library (the `notary-node` binary is a thin wrapper,
//! and `tessera demo` and the tests start nodes in-process with the same code).
//!
//! A node binds one QUIC endpoint whose certificate is RA-TLS (its quote binds the TLS key),
//! dials the coordinator and keeps that connection: the coordinator opens one stream per
//! command (key generation, repair for a joining node, signing a membership entry, a
//! session). Sessions run the MPC-TLS node role over QUIC streams to the other two nodes and
//! to the client, each session on its own thread; the node then builds its own notarization
//! and FROST-signs only that. Shutdown refuses new sessions and lets running ones finish.
//!
//! - [`config`]: the TOML configuration. [`tee`]: quote source, RA-TLS identity, policy.
//! - [`store`]: sealed keys and the membership log. [`router`]: incoming streams.
//! - [`keys`]: genesis, repair, log signing. [`session`]: one notarization session.
//! - [`metrics`]: Prometheus metrics and health.
#![forbid(unsafe_code)]

pub mod config;
pub mod keys;
pub mod metrics;
pub mod router;
pub mod session;
pub mod store;
pub mod tee;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use attestation::ratls::RaTlsServerVerifier;
use attestation::{AttestedPeer, RaTlsIdentity};
use tokio::sync::{watch, Mutex};
use wire::frame::{self, SMALL};
use wire::msg::{
    Admission, Command, Failure, FailureCode, NodeHello, NodeNotice, StreamHello, PROTOCOL,
};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::router::{Incoming, Route, Router};
use crate::store::Store;
use crate::tee::Tee;

/// Why the node stopped or an operation failed. Messages never carry key material or
/// session data.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The TEE or attestation.
    #[error("TEE: {0}")]
    Tee(String),
    /// State on disk.
    #[error("state: {0}")]
    State(String),
    /// Network.
    #[error("network: {0}")]
    Net(String),
    /// The coordinator refused to admit this node.
    #[error("the coordinator refused this node: {0}")]
    Refused(String),
    /// A protocol step failed.
    #[error("{0}")]
    Protocol(String),
    /// The MPC-TLS session failed (the typed error, not flattened).
    #[error("MPC-TLS: {0}")]
    Tls(mpc_tls::node::NodeError),
    /// The disclosure over the committed session failed.
    #[error("disclosure: {0}")]
    Disclosure(disclosure::node::DiscloseError),
    /// A session step failed, with the code the coordinator is told.
    #[error("{error}")]
    Session {
        /// The failure's kind.
        code: FailureCode,
        /// What failed.
        error: Box<DaemonError>,
    },
}

impl DaemonError {
    /// The failure's kind: the MPC-TLS and disclosure codes kept (so a client's mistake is
    /// a client failure), this node's own failures as [`FailureCode::Node`].
    pub fn code(&self) -> FailureCode {
        match self {
            DaemonError::Tls(e) => e.code(),
            DaemonError::Disclosure(e) => e.code(),
            DaemonError::Refused(_) => FailureCode::Refused,
            DaemonError::Session { code, .. } => *code,
            _ => FailureCode::Node,
        }
    }

    /// What crosses the network to the coordinator.
    pub fn failure(&self) -> Failure {
        Failure::new(self.code(), self.to_string())
    }
}

impl From<wire::quic::QuicError> for DaemonError {
    fn from(e: wire::quic::QuicError) -> Self {
        DaemonError::Net(e.to_string())
    }
}

impl From<wire::frame::FrameError> for DaemonError {
    fn from(e: wire::frame::FrameError) -> Self {
        DaemonError::Net(e.to_string())
    }
}

pub use daemon::program::now;

/// Everything the node's tasks share.
pub struct Ctx {
    /// The configuration.
    pub cfg: Config,
    /// The TEE.
    pub tee: Tee,
    /// The RA-TLS identity the endpoint serves and presents.
    pub identity: RaTlsIdentity,
    /// This node's own verified attestation.
    pub own: AttestedPeer,
    /// The QUIC endpoint (serves, and dials peers and the coordinator).
    pub endpoint: quinn::Endpoint,
    /// The address clients and peers dial.
    pub advertise: String,
    /// Incoming streams.
    pub router: Router,
    /// Connections to peer nodes.
    peers: Mutex<HashMap<u16, (quinn::Connection, AttestedPeer)>>,
    /// Keys and log.
    pub store: Mutex<Store>,
    /// Metrics and health.
    pub metrics: Arc<Metrics>,
    /// The providers' roots.
    pub roots: mpc_tls::server_auth::Roots,
    /// Shutting down: no new sessions.
    pub draining: AtomicBool,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ctx(node {})", self.cfg.node_id)
    }
}

/// A stream to a peer node, with its attestation.
pub struct PeerStream {
    /// Send half.
    pub send: quinn::SendStream,
    /// Receive half.
    pub recv: quinn::RecvStream,
    /// The peer's verified attestation.
    pub peer: AttestedPeer,
}

impl Ctx {
    /// A connection to peer `node_id` at `addr` (cached), whose RA-TLS certificate passed
    /// this node's policy.
    async fn peer_conn(
        &self,
        node_id: u16,
        addr: &str,
    ) -> Result<(quinn::Connection, AttestedPeer), DaemonError> {
        let mut peers = self.peers.lock().await;
        if let Some((c, p)) = peers.get(&node_id) {
            if c.close_reason().is_none() {
                return Ok((c.clone(), p.clone()));
            }
        }
        let verifier = RaTlsServerVerifier::new(self.tee.ratls(Some(node_id)));
        let cfg = wire::quic::node_client_config(verifier.clone(), Some(&self.identity))?;
        let conn = wire::quic::dial(&self.endpoint, cfg, addr, Duration::from_secs(10))
            .await
            .map_err(|e| DaemonError::Net(format!("node {node_id}: {e}")))?;
        let peer = match verifier.take_outcome() {
            Some(Ok(p)) => p,
            _ => {
                return Err(DaemonError::Net(format!(
                    "node {node_id}: no verified RA-TLS certificate"
                )))
            }
        };
        peers.insert(node_id, (conn.clone(), peer.clone()));
        Ok((conn, peer))
    }

    /// Opens a stream to peer `node_id` and sends `hello`.
    pub async fn open_peer(
        &self,
        node_id: u16,
        addr: &str,
        hello: &StreamHello,
    ) -> Result<PeerStream, DaemonError> {
        let (conn, peer) = self.peer_conn(node_id, addr).await?;
        let (mut send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| DaemonError::Net(format!("node {node_id}: {e}")))?;
        frame::send(&mut send, hello).await?;
        Ok(PeerStream { send, recv, peer })
    }

    /// Waits for the stream on `rx` (registered as a route) and checks it comes from node
    /// `node_id`.
    pub async fn accept_peer(
        &self,
        rx: tokio::sync::oneshot::Receiver<Incoming>,
        node_id: u16,
        timeout: Duration,
    ) -> Result<PeerStream, DaemonError> {
        let inc = tokio::time::timeout(timeout, rx)
            .await
            .map_err(|_| DaemonError::Net(format!("node {node_id} did not connect in time")))?
            .map_err(|_| DaemonError::Net(format!("node {node_id}'s stream was dropped")))?;
        match inc.peer {
            Some((id, peer)) if id == node_id => Ok(PeerStream {
                send: inc.send,
                recv: inc.recv,
                peer,
            }),
            Some((id, _)) => Err(DaemonError::Protocol(format!(
                "node {id} took node {node_id}'s place"
            ))),
            None => Err(DaemonError::Protocol(format!(
                "an unattested party took node {node_id}'s place"
            ))),
        }
    }
}

/// A running node.
pub struct NodeHandle {
    /// The bound QUIC address.
    pub addr: SocketAddr,
    /// The bound health/metrics address, if any.
    pub health: Option<SocketAddr>,
    /// Shared state (for tests and the demo).
    pub ctx: Arc<Ctx>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), DaemonError>>,
}

impl NodeHandle {
    /// Starts a graceful shutdown and waits for the node to stop.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|_| DaemonError::Protocol("the node task failed".into()))?
    }

    /// Waits for the node to stop by itself (a refusal, a fatal error).
    pub async fn wait(self) -> Result<(), DaemonError> {
        self.task
            .await
            .map_err(|_| DaemonError::Protocol("the node task failed".into()))?
    }
}

/// Starts a node: binds its endpoints, attests itself, and connects to the coordinator in
/// the background.
pub async fn start(cfg: Config) -> Result<NodeHandle, DaemonError> {
    let tee = Tee::from_config(&cfg)?;
    if tee.is_simulated() {
        tracing::warn!(
            node = cfg.node_id,
            "SIMULATED TEE ({}): this node has no hardware protection",
            tee.label()
        );
    }
    let mut store = Store::open(&cfg.state_dir, cfg.node_id)?;
    store.pending = None;
    let epoch = store.member_epoch();
    let t = now();
    let identity = tee.identity(cfg.node_id, epoch, t)?;
    let own = tee
        .ratls(Some(cfg.node_id))
        .verify_cert(identity.cert(), t)
        .map_err(|e| {
            DaemonError::Tee(format!("this node's own attestation fails its policy: {e}"))
        })?;
    let bind: SocketAddr = wire::quic::resolve(&cfg.listen).await?;
    let endpoint = quinn::Endpoint::server(wire::quic::node_server_config(&identity)?, bind)
        .map_err(|e| DaemonError::Net(format!("cannot bind {bind}: {e}")))?;
    let addr = endpoint
        .local_addr()
        .map_err(|e| DaemonError::Net(e.to_string()))?;
    let advertise = cfg.advertise.clone().unwrap_or_else(|| addr.to_string());
    let roots = match &cfg.provider_roots {
        Some(p) => {
            let pem = std::fs::read_to_string(p)
                .map_err(|e| DaemonError::State(format!("{}: {e}", p.display())))?;
            mpc_tls::server_auth::Roots::from_pem(&pem)
                .map_err(|e| DaemonError::State(format!("{}: {e}", p.display())))?
        }
        None => mpc_tls::server_auth::Roots::default(),
    };
    let metrics = Arc::new(Metrics::default());
    metrics.epoch.store(epoch, Ordering::SeqCst);
    if let Ok(mut l) = metrics.tee.lock() {
        *l = tee.label();
    }
    let (stop, stop_rx) = watch::channel(false);
    let health = match &cfg.health_listen {
        Some(h) => {
            let a = wire::quic::resolve(h).await?;
            let l = wire::metrics::bind(a)
                .await
                .map_err(|e| DaemonError::Net(format!("cannot bind {a}: {e}")))?;
            let bound = l
                .local_addr()
                .map_err(|e| DaemonError::Net(e.to_string()))?;
            let mut rx = stop_rx.clone();
            let m = metrics.clone();
            tokio::spawn(wire::metrics::serve(l, m, async move {
                let _ = rx.wait_for(|s| *s).await;
            }));
            Some(bound)
        }
        None => None,
    };
    tracing::info!(node = cfg.node_id, %addr, epoch, tee = %tee.label(), "notary node listening");
    let ctx = Arc::new(Ctx {
        cfg,
        tee,
        identity,
        own,
        endpoint,
        advertise,
        router: Router::default(),
        peers: Mutex::new(HashMap::new()),
        store: Mutex::new(store),
        metrics,
        roots,
        draining: AtomicBool::new(false),
    });
    tokio::spawn(accept_loop(ctx.clone()));
    let task = tokio::spawn(run(ctx.clone(), stop_rx));
    Ok(NodeHandle {
        addr,
        health,
        ctx,
        stop,
        task,
    })
}

/// Runs a node until `shutdown` completes (then drains) or it is refused.
pub async fn serve(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), DaemonError> {
    let h = start(cfg).await?;
    let stop = h.stop.clone();
    let mut task = h.task;
    tokio::select! {
        r = &mut task => return r.map_err(|_| DaemonError::Protocol("the node task failed".into()))?,
        _ = shutdown => {}
    }
    let _ = stop.send(true);
    task.await
        .map_err(|_| DaemonError::Protocol("the node task failed".into()))?
}

async fn accept_loop(ctx: Arc<Ctx>) {
    while let Some(incoming) = ctx.endpoint.accept().await {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            let peer = wire::quic::peer_cert(&conn).map(|c| ctx.tee.check_peer(&c, now()));
            if let Some(Err(e)) = &peer {
                tracing::warn!(error = %e, "a peer certificate failed attestation; it may connect as a client only");
            }
            let peer = peer.and_then(Result::ok);
            while let Ok((send, mut recv)) = conn.accept_bi().await {
                let ctx = ctx.clone();
                let peer = peer.clone();
                tokio::spawn(async move {
                    let hello = tokio::time::timeout(
                        Duration::from_secs(10),
                        frame::recv::<_, StreamHello>(&mut recv, SMALL),
                    )
                    .await;
                    let Ok(Ok(hello)) = hello else { return };
                    let from = peer.as_ref().map(|(id, _)| *id);
                    let route = match (hello, from) {
                        (StreamHello::Client { session, .. }, _) => Route::Client(session),
                        (StreamHello::Session { session, role }, Some(_)) => {
                            Route::Peer(session, role)
                        }
                        (StreamHello::Genesis, Some(id)) => Route::Genesis(id),
                        (StreamHello::Repair { newcomer }, Some(id)) => Route::Repair(newcomer, id),
                        _ => {
                            tracing::warn!(
                                "a node stream without an attested peer certificate was refused"
                            );
                            return;
                        }
                    };
                    ctx.router.deliver(route, Incoming { send, recv, peer });
                });
            }
        });
    }
}

/// Connects to the coordinator (again after a lost connection) and serves its commands,
/// until shutdown or a refusal.
async fn run(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) -> Result<(), DaemonError> {
    let mut backoff = Duration::from_millis(200);
    loop {
        if *stop.borrow() {
            break;
        }
        match admit(&ctx).await {
            Ok((conn, mut notices)) => {
                backoff = Duration::from_millis(200);
                ctx.metrics.connected.store(true, Ordering::SeqCst);
                tracing::info!(node = ctx.cfg.node_id, "admitted by the coordinator");
                let stopped = serve_commands(&ctx, &conn, &mut notices, &mut stop).await;
                ctx.metrics.connected.store(false, Ordering::SeqCst);
                if stopped {
                    break;
                }
                tracing::warn!(node = ctx.cfg.node_id, "lost the coordinator; reconnecting");
            }
            Err(DaemonError::Refused(r)) => {
                tracing::error!(node = ctx.cfg.node_id, reason = %r, "refused by the coordinator");
                ctx.endpoint.close(0u32.into(), b"refused");
                return Err(DaemonError::Refused(r));
            }
            Err(e @ DaemonError::State(_)) => {
                ctx.endpoint.close(0u32.into(), b"state");
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(node = ctx.cfg.node_id, error = %e, "cannot reach the coordinator");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    drain(&ctx).await;
    Ok(())
}

/// Stops taking sessions and waits (up to `drain_secs`) for running ones to finish, so no
/// session is left between its notarization and its signature share.
async fn drain(ctx: &Ctx) {
    ctx.draining.store(true, Ordering::SeqCst);
    ctx.metrics.draining.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(ctx.cfg.drain_secs);
    while ctx.metrics.active() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = ctx.metrics.active();
    if left > 0 {
        tracing::warn!(sessions = left, "drain timeout: stopping with sessions running (they abort; nothing was signed for them)");
    } else {
        tracing::info!("drained: no session running");
    }
    ctx.endpoint.close(0u32.into(), b"shutdown");
    let _ = tokio::time::timeout(Duration::from_secs(2), ctx.endpoint.wait_idle()).await;
}

async fn admit(ctx: &Ctx) -> Result<(quinn::Connection, quinn::SendStream), DaemonError> {
    let cfg = wire::quic::coordinator_client_config(Some(&ctx.identity))?;
    let conn = wire::quic::dial(
        &ctx.endpoint,
        cfg,
        &ctx.cfg.coordinator,
        Duration::from_secs(10),
    )
    .await?;
    let (mut send, mut recv) = conn
        .open_bi()
        .await
        .map_err(|e| DaemonError::Net(e.to_string()))?;
    let epoch = ctx.store.lock().await.member_epoch();
    frame::send(
        &mut send,
        &NodeHello {
            protocol: PROTOCOL,
            node_id: ctx.cfg.node_id,
            addr: ctx.advertise.clone(),
            epoch,
        },
    )
    .await?;
    let a: Admission = tokio::time::timeout(
        Duration::from_secs(30),
        frame::recv(&mut recv, wire::frame::LARGE),
    )
    .await
    .map_err(|_| DaemonError::Net("the coordinator did not answer the hello".into()))??;
    match a {
        Admission::Refused { reason } => Err(DaemonError::Refused(reason.to_string())),
        Admission::Welcome { log } => {
            let mut store = ctx.store.lock().await;
            store.adopt(log)?;
            ctx.metrics
                .epoch
                .store(store.member_epoch(), Ordering::SeqCst);
            Ok((conn, send))
        }
    }
}

async fn wait_stop(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Serves commands until the connection is lost (false) or shutdown (true, after telling the
/// coordinator and draining).
async fn serve_commands(
    ctx: &Arc<Ctx>,
    conn: &quinn::Connection,
    notices: &mut quinn::SendStream,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    loop {
        tokio::select! {
            s = conn.accept_bi() => {
                let Ok((send, recv)) = s else { return false };
                let ctx = ctx.clone();
                tokio::spawn(async move { command(ctx, send, recv).await });
            }
            _ = wait_stop(stop) => {
                ctx.draining.store(true, Ordering::SeqCst);
                let _ = frame::send(notices, &NodeNotice::Draining).await;
                // Let the notice arrive before the connection closes.
                let _ = notices.finish();
                let _ = tokio::time::timeout(Duration::from_secs(1), notices.stopped()).await;
                // Keep serving the running sessions' follow-ups while draining.
                let conn = conn.clone();
                let c2 = ctx.clone();
                let keep = tokio::spawn(async move {
                    while let Ok((send, recv)) = conn.accept_bi().await {
                        let ctx = c2.clone();
                        tokio::spawn(async move { command(ctx, send, recv).await });
                    }
                });
                drain(ctx).await;
                keep.abort();
                return true;
            }
        }
    }
}

async fn command(ctx: Arc<Ctx>, mut send: quinn::SendStream, mut recv: quinn::RecvStream) {
    let cmd: Command = match frame::recv(&mut recv, wire::frame::LARGE).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable command");
            return;
        }
    };
    let r = match cmd {
        Command::Genesis { members, threshold } => {
            keys::genesis(&ctx, &members, threshold, &mut send).await
        }
        Command::Repair {
            newcomer,
            helpers,
            newcomer_cert,
        } => keys::repair(&ctx, &newcomer, &helpers, &newcomer_cert, &mut send).await,
        Command::SignLog {
            entry,
            newcomer_cert,
        } => keys::sign_log(&ctx, entry, newcomer_cert, &mut send, &mut recv).await,
        Command::Session {
            session,
            role,
            seats,
            timeout_secs,
            time,
        } => {
            let order = session::Order {
                session,
                role,
                seats,
                time,
                timeout: Duration::from_secs(u64::from(timeout_secs)),
            };
            session::run(&ctx, order, &mut send, &mut recv).await
        }
    };
    if let Err(e) = r {
        tracing::warn!(node = ctx.cfg.node_id, error = %e, "command failed");
        let _ = frame::send(&mut send, &wire::msg::NodeReply::Failed(e.failure())).await;
    }
    let _ = send.finish();
}

/// The daemon's entry point, shared by the `notary-node` binary and the test harness.
pub mod cli {
    use std::path::PathBuf;
    use std::process::ExitCode;

    use crate::config::Config;

    /// Logs to stderr (`RUST_LOG`, default `info`), loads `config`, and runs the node until
    /// SIGINT/SIGTERM. Exit 0 after a clean drain, 1 on a fatal error, 2 for a bad config.
    pub fn main(config: PathBuf) -> ExitCode {
        daemon::program::main("notary-node", || Config::load(&config), crate::serve)
    }
}
