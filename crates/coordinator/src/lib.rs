//! The Tessera coordinator, as a library (the `coordinator` binary is a thin wrapper;
//! `tessera demo` and the tests start it in-process with the same code).
//!
//! It holds no secret. It admits nodes whose RA-TLS certificate passes its policy, starts
//! the genesis once enough nodes are there, admits later nodes by a repair among t members,
//! and keeps the membership log, each entry signed by the group key (FROST, by the members
//! themselves, each checking the entry). For a client it picks three healthy members, relays
//! nothing but the committee and the result, and aggregates the nodes' signature shares.
//! Everything it hands out is checked by someone who does not trust it: nodes sign only what
//! they computed, clients check nodes by RA-TLS and the result by the group key.
#![forbid(unsafe_code)]

pub mod config;
pub mod membership;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use attestation::{Expectation, Policy, RaTlsVerifier, SimPki, Verifier};
use daemon::group::member_record;
use notarization::group::{GroupFile, LogEntry, SignedEntry};
use rand::RngCore;
use threshold::default_threshold;
use threshold::sign::Aggregator;
use tokio::sync::{watch, Mutex};
use wire::frame::{self, LARGE, SMALL};
use wire::msg::{
    Admission, ClientReply, ClientRequest, Command, Failure, FailureCode, FollowUp, NodeHello,
    NodeNotice, NodeReply, NodeStatus, Seat, SessionId, PROTOCOL,
};

pub use config::{Config, Tamper};
use membership::{Change, Hello, Membership};

const SIMULATED_POLICY: &str = include_str!("../../../configs/measurements.simulated.toml");
const PRODUCTION_POLICY: &str = include_str!("../../../configs/measurements.toml");

/// Why the coordinator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Attestation setup.
    #[error("attestation: {0}")]
    Attestation(String),
    /// State on disk.
    #[error("state: {0}")]
    State(String),
    /// Network.
    #[error("network: {0}")]
    Net(String),
}

/// Unix seconds now.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Default)]
struct Counters {
    started: u64,
    succeeded: u64,
    failed: BTreeMap<&'static str, u64>,
}

/// The coordinator's shared state.
pub struct Coordinator {
    cfg: Config,
    verifier: Verifier,
    policy: Policy,
    /// Who is admitted, who holds keys, who is busy: the pure state machine.
    members: Mutex<Membership>,
    /// The admitted nodes' connections, by id.
    conns: Mutex<BTreeMap<u16, quinn::Connection>>,
    log: Mutex<Vec<SignedEntry>>,
    changing: Mutex<()>,
    counters: StdMutex<Counters>,
    tamper: StdMutex<Option<Tamper>>,
    healthy: AtomicU64,
    epoch: AtomicU64,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Coordinator")
    }
}

fn log_path(cfg: &Config) -> PathBuf {
    cfg.state_dir.join("log.json")
}

/// A failure to report: its code (which the metric counts by label) and its detail.
struct Fail(FailureCode, String);

fn fail(code: FailureCode) -> impl Fn(String) -> Fail {
    move |s| Fail(code, s)
}

impl From<Failure> for Fail {
    fn from(f: Failure) -> Self {
        Fail(f.code, f.detail)
    }
}

impl Coordinator {
    fn new(cfg: Config) -> Result<Self, CoordError> {
        let policy_text = match &cfg.policy {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| CoordError::Attestation(format!("policy {}: {e}", p.display())))?,
            None if cfg.allow_simulated => SIMULATED_POLICY.to_string(),
            None => PRODUCTION_POLICY.to_string(),
        };
        let policy =
            Policy::from_toml(&policy_text).map_err(|e| CoordError::Attestation(e.to_string()))?;
        let mut verifier = Verifier::intel();
        if cfg.allow_simulated {
            let root = SimPki::well_known()
                .map_err(|e| CoordError::Attestation(e.to_string()))?
                .root_der();
            verifier = verifier.allow_simulated(root);
        }
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| CoordError::State(format!("{}: {e}", cfg.state_dir.display())))?;
        let path = log_path(&cfg);
        let log: Vec<SignedEntry> = if path.exists() {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| CoordError::State(format!("{}: {e}", path.display())))?;
            let log: Vec<SignedEntry> = serde_json::from_str(&text)
                .map_err(|e| CoordError::State(format!("{}: {e}", path.display())))?;
            notarization::group::verify_log(&log, None)
                .map_err(|e| CoordError::State(format!("{}: {e}", path.display())))?;
            log
        } else {
            Vec::new()
        };
        if let Some(t) = cfg.tamper {
            tracing::error!(?t, "this coordinator TAMPERS with messages (tests only)");
        }
        let members = Membership::new(cfg.genesis_nodes, log.last().map(|e| e.entry.group.clone()));
        Ok(Coordinator {
            tamper: StdMutex::new(cfg.tamper),
            epoch: AtomicU64::new(log.len() as u64),
            cfg,
            verifier,
            policy,
            members: Mutex::new(members),
            conns: Mutex::new(BTreeMap::new()),
            log: Mutex::new(log),
            changing: Mutex::new(()),
            counters: StdMutex::new(Counters::default()),
            healthy: AtomicU64::new(0),
        })
    }

    /// Tests: change the misbehaviour at run time.
    pub fn set_tamper(&self, t: Option<Tamper>) {
        if let Ok(mut g) = self.tamper.lock() {
            *g = t;
        }
    }

    fn tamper(&self) -> Option<Tamper> {
        self.tamper.lock().ok().and_then(|g| *g)
    }

    /// The current membership log.
    pub async fn log(&self) -> Vec<SignedEntry> {
        self.log.lock().await.clone()
    }

    /// The public directory.
    pub async fn statuses(&self) -> Vec<NodeStatus> {
        self.members.lock().await.statuses()
    }

    async fn refresh_health(&self) {
        let h = self.statuses().await.iter().filter(|s| s.healthy).count();
        self.healthy.store(h as u64, Ordering::SeqCst);
    }

    fn count(&self, r: Result<(), &'static str>) {
        if let Ok(mut c) = self.counters.lock() {
            match r {
                Ok(()) => c.succeeded += 1,
                Err(l) => *c.failed.entry(l).or_default() += 1,
            }
        }
    }
}

impl wire::metrics::Exporter for Coordinator {
    fn health(&self) -> Result<String, String> {
        let h = self.healthy.load(Ordering::SeqCst);
        let e = self.epoch.load(Ordering::SeqCst);
        let line = format!("epoch={e} healthy_nodes={h}\n");
        if e > 0 && h >= 3 {
            Ok(format!("ok {line}"))
        } else {
            Err(format!("unavailable {line}"))
        }
    }

    fn metrics(&self) -> String {
        use wire::metrics::family;
        let mut out = String::new();
        let Ok(c) = self.counters.lock() else {
            return out;
        };
        let one = |v: f64| vec![(String::new(), v)];
        family(
            &mut out,
            "tessera_coordinator_sessions_started_total",
            "counter",
            "Sessions clients asked for.",
            &one(c.started as f64),
        );
        family(
            &mut out,
            "tessera_coordinator_sessions_succeeded_total",
            "counter",
            "Sessions that ended with a group signature.",
            &one(c.succeeded as f64),
        );
        let f: Vec<(String, f64)> = c
            .failed
            .iter()
            .map(|(l, n)| (format!("reason=\"{l}\""), *n as f64))
            .collect();
        family(
            &mut out,
            "tessera_coordinator_sessions_failed_total",
            "counter",
            "Sessions that failed, by reason.",
            &f,
        );
        family(
            &mut out,
            "tessera_coordinator_healthy_nodes",
            "gauge",
            "Members connected and not draining.",
            &one(self.healthy.load(Ordering::SeqCst) as f64),
        );
        family(
            &mut out,
            "tessera_coordinator_epoch",
            "gauge",
            "The membership log's latest epoch.",
            &one(self.epoch.load(Ordering::SeqCst) as f64),
        );
        out
    }
}

/// A running coordinator.
pub struct CoordinatorHandle {
    /// The bound QUIC address.
    pub addr: SocketAddr,
    /// The bound health/metrics address.
    pub health: Option<SocketAddr>,
    /// The shared state.
    pub coordinator: Arc<Coordinator>,
    endpoint: quinn::Endpoint,
    stop: watch::Sender<bool>,
}

impl CoordinatorHandle {
    /// Stops accepting and closes every connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.endpoint.close(0u32.into(), b"shutdown");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
    }
}

/// Starts the coordinator.
pub async fn start(cfg: Config) -> Result<CoordinatorHandle, CoordError> {
    let bind = wire::quic::resolve(&cfg.listen)
        .await
        .map_err(|e| CoordError::Net(e.to_string()))?;
    let health_listen = cfg.health_listen.clone();
    let c = Arc::new(Coordinator::new(cfg)?);
    let endpoint = quinn::Endpoint::server(
        wire::quic::coordinator_server_config().map_err(|e| CoordError::Net(e.to_string()))?,
        bind,
    )
    .map_err(|e| CoordError::Net(format!("cannot bind {bind}: {e}")))?;
    let addr = endpoint
        .local_addr()
        .map_err(|e| CoordError::Net(e.to_string()))?;
    let (stop, stop_rx) = watch::channel(false);
    let health = match health_listen {
        Some(h) => {
            let a = wire::quic::resolve(&h)
                .await
                .map_err(|e| CoordError::Net(e.to_string()))?;
            let l = wire::metrics::bind(a)
                .await
                .map_err(|e| CoordError::Net(format!("cannot bind {a}: {e}")))?;
            let bound = l.local_addr().map_err(|e| CoordError::Net(e.to_string()))?;
            let mut rx = stop_rx.clone();
            tokio::spawn(wire::metrics::serve(l, c.clone(), async move {
                let _ = rx.wait_for(|s| *s).await;
            }));
            Some(bound)
        }
        None => None,
    };
    tracing::info!(%addr, epoch = c.epoch.load(Ordering::SeqCst), "coordinator listening");
    let ep = endpoint.clone();
    let c2 = c.clone();
    tokio::spawn(async move {
        while let Some(incoming) = ep.accept().await {
            let c = c2.clone();
            tokio::spawn(async move {
                if let Ok(conn) = incoming.await {
                    if wire::quic::peer_cert(&conn).is_some() {
                        node_conn(c, conn).await;
                    } else {
                        client_conn(c, conn).await;
                    }
                }
            });
        }
    });
    Ok(CoordinatorHandle {
        addr,
        health,
        coordinator: c,
        endpoint,
        stop,
    })
}

/// Runs the coordinator until `shutdown` completes.
pub async fn serve(cfg: Config, shutdown: impl Future<Output = ()>) -> Result<(), CoordError> {
    let h = start(cfg).await?;
    shutdown.await;
    h.shutdown().await;
    Ok(())
}

// ---------------------------------------------------------------- nodes

async fn node_conn(c: Arc<Coordinator>, conn: quinn::Connection) {
    let Ok((mut send, mut recv)) = conn.accept_bi().await else {
        return;
    };
    let hello: NodeHello =
        match tokio::time::timeout(Duration::from_secs(10), frame::recv(&mut recv, SMALL)).await {
            Ok(Ok(h)) => h,
            _ => return,
        };
    let id = hello.node_id;
    match admit(&c, &conn, &hello).await {
        Err(reason) => {
            tracing::warn!(node = id, %reason, "node refused");
            let _ = frame::send(&mut send, &Admission::Refused { reason }).await;
            let _ = send.finish();
            tokio::time::sleep(Duration::from_millis(200)).await;
            conn.close(1u32.into(), b"refused");
        }
        Ok(()) => {
            let log = c.log().await;
            if frame::send(&mut send, &Admission::Welcome { log })
                .await
                .is_err()
            {
                return;
            }
            c.refresh_health().await;
            tracing::info!(node = id, addr = %hello.addr, "node admitted");
            let c2 = c.clone();
            tokio::spawn(async move { membership(c2).await });
            // Notices until the connection ends.
            while let Ok(NodeNotice::Draining) = frame::recv(&mut recv, SMALL).await {
                c.members.lock().await.draining(id);
                tracing::info!(node = id, "node draining");
                c.refresh_health().await;
            }
            conn.closed().await;
            let drained = c.members.lock().await.closed(id, conn.stable_id() as u64) == Some(true);
            {
                let mut conns = c.conns.lock().await;
                if conns
                    .get(&id)
                    .is_some_and(|k| k.stable_id() == conn.stable_id())
                {
                    conns.remove(&id);
                }
            }
            if drained {
                tracing::info!(node = id, "node left after draining");
            } else {
                tracing::warn!(node = id, "node disconnected");
            }
            c.refresh_health().await;
        }
    }
}

/// Checks a node's attestation and place; records it.
async fn admit(c: &Coordinator, conn: &quinn::Connection, hello: &NodeHello) -> Result<(), String> {
    if hello.protocol != PROTOCOL {
        return Err(format!(
            "protocol {} (this coordinator speaks {PROTOCOL})",
            hello.protocol
        ));
    }
    let cert = wire::quic::peer_cert(conn).ok_or("no RA-TLS certificate")?;
    let v = RaTlsVerifier::new(
        c.verifier.clone(),
        c.policy.clone(),
        Expectation {
            node_id: Some(hello.node_id.to_string()),
            epoch: None,
        },
    );
    let peer = v
        .verify_cert(&cert, now())
        .map_err(|e| format!("attestation refused: {e}"))?;
    if peer.verified.simulated && !c.cfg.allow_simulated {
        return Err("simulated TEEs are not admitted".into());
    }
    let attested = member_record(hello.node_id, &[0; 32], &peer.verified);
    // The connection map is locked across the admission so a racing reconnect of the same
    // id cannot interleave.
    let mut conns = c.conns.lock().await;
    c.members
        .lock()
        .await
        .admit(Hello {
            node_id: hello.node_id,
            conn: conn.stable_id() as u64,
            addr: hello.addr.clone(),
            epoch: hello.epoch,
            cert,
            attested,
        })
        .map_err(|e| e.to_string())?;
    conns.insert(hello.node_id, conn.clone());
    Ok(())
}

/// Runs the genesis or pending joins, one change at a time.
async fn membership(c: Arc<Coordinator>) {
    let _guard = c.changing.lock().await;
    loop {
        let change = c.members.lock().await.next_change();
        match change {
            Change::Idle => break,
            Change::Waiting { have, need } => {
                tracing::info!(have, need, "waiting for nodes before the genesis");
                break;
            }
            Change::Genesis(members) => {
                match genesis(&c, &members).await {
                    Ok(()) => tracing::info!("genesis complete: epoch 1"),
                    Err(e) => tracing::error!(error = %e, "genesis failed"),
                }
                break;
            }
            Change::Join { node, addr, cert } => match join(&c, node, &addr, &cert).await {
                Ok(epoch) => tracing::info!(node, epoch, "node joined"),
                Err(e) => {
                    tracing::error!(node, error = %e, "join failed");
                    break;
                }
            },
        }
    }
    c.refresh_health().await;
}

async fn conn_of(c: &Coordinator, id: u16) -> Result<quinn::Connection, String> {
    c.conns
        .lock()
        .await
        .get(&id)
        .cloned()
        .ok_or_else(|| format!("node {id} is not connected"))
}

async fn command(
    c: &Coordinator,
    id: u16,
    cmd: &Command,
) -> Result<(quinn::SendStream, quinn::RecvStream), String> {
    let conn = conn_of(c, id).await?;
    let (mut send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| format!("node {id}: {e}"))?;
    frame::send(&mut send, cmd)
        .await
        .map_err(|e| format!("node {id}: {e}"))?;
    Ok((send, recv))
}

async fn reply(
    recv: &mut quinn::RecvStream,
    id: u16,
    within: Duration,
) -> Result<NodeReply, String> {
    typed_reply(recv, id, within).await.map_err(|f| f.detail)
}

/// A node's reply; a failure keeps the node's code (a client's mistake stays the client's).
async fn typed_reply(
    recv: &mut quinn::RecvStream,
    id: u16,
    within: Duration,
) -> Result<NodeReply, Failure> {
    match tokio::time::timeout(within, frame::recv(recv, LARGE)).await {
        Err(_) => Err(Failure::new(
            FailureCode::Timeout,
            format!("node {id} did not answer in time"),
        )),
        Ok(Err(e)) => Err(Failure::new(FailureCode::Node, format!("node {id}: {e}"))),
        Ok(Ok(NodeReply::Failed(why))) => Err(Failure::new(why.code, format!("node {id}: {why}"))),
        Ok(Ok(r)) => Ok(r),
    }
}

const KEY_TIMEOUT: Duration = Duration::from_secs(120);

async fn genesis(c: &Coordinator, members: &[(u16, String)]) -> Result<(), String> {
    let seats: Vec<Seat> = members
        .iter()
        .enumerate()
        .map(|(i, (id, addr))| Seat {
            role: i as u8,
            node_id: *id,
            addr: addr.clone(),
        })
        .collect();
    let n = u16::try_from(seats.len()).map_err(|e| e.to_string())?;
    let t = default_threshold(n);
    let cmd = Command::Genesis {
        members: seats.clone(),
        threshold: t,
    };
    let mut tasks = Vec::new();
    for s in &seats {
        let (send, mut recv) = command(c, s.node_id, &cmd).await?;
        let id = s.node_id;
        tasks.push(tokio::spawn(async move {
            let r = reply(&mut recv, id, KEY_TIMEOUT).await;
            drop(send);
            (id, r)
        }));
    }
    let mut keyed = Vec::new();
    for t in tasks {
        let (id, r) = t.await.map_err(|e| e.to_string())?;
        keyed.push((id, r?));
    }
    let group = group_from_keyed(c, &keyed, 1).await?;
    let entry = LogEntry {
        change: "genesis".into(),
        time: now(),
        prev: String::new(),
        group,
    };
    let signers: Vec<u16> = seats.iter().map(|s| s.node_id).collect();
    sign_entry(c, entry, &signers, None).await
}

/// The group record from the nodes' `Keyed` replies, which must agree; each member's record
/// must match what this coordinator attested.
async fn group_from_keyed(
    c: &Coordinator,
    keyed: &[(u16, NodeReply)],
    epoch: u64,
) -> Result<GroupFile, String> {
    // (group key, threshold, verifying shares) as the first node reported them.
    type View = (String, u16, Vec<(u16, String)>);
    let mut first: Option<View> = None;
    let mut members = Vec::new();
    let nodes = c.members.lock().await;
    for (id, r) in keyed {
        let NodeReply::Keyed {
            group_key,
            threshold,
            verifying_shares,
            member,
        } = r
        else {
            return Err(format!("node {id} answered the key generation wrongly"));
        };
        let view = (group_key.clone(), *threshold, verifying_shares.clone());
        match &first {
            None => first = Some(view),
            Some(f) if *f != view => {
                return Err(format!(
                    "node {id} computed a different group than the others"
                ))
            }
            Some(_) => {}
        }
        let attested = &nodes.node(*id).ok_or(format!("node {id} left"))?.record;
        if member.node_id != *id
            || (
                member.tee.as_str(),
                member.measurement.as_str(),
                member.simulated,
            ) != (
                attested.tee.as_str(),
                attested.measurement.as_str(),
                attested.simulated,
            )
            || !verifying_shares.contains(&(*id, member.verifying_share.clone()))
        {
            return Err(format!(
                "node {id}'s own record does not match its attestation"
            ));
        }
        members.push(member.clone());
    }
    let (group_key, threshold, _) = first.ok_or("no member answered")?;
    let key_id = threshold::GroupKey::from_hex(&group_key)
        .map_err(|e| e.to_string())?
        .id();
    members.sort_by_key(|m| m.node_id);
    Ok(GroupFile {
        version: 1,
        group_key,
        key_id,
        epoch,
        threshold,
        simulated: members.iter().any(|m| m.simulated),
        members,
    })
}

/// Has `signers` FROST-sign `entry` (each checks it), appends it to the log and tells them.
async fn sign_entry(
    c: &Coordinator,
    entry: LogEntry,
    signers: &[u16],
    newcomer_cert: Option<Vec<u8>>,
) -> Result<(), String> {
    let mut entry = entry;
    if c.tamper() == Some(Tamper::Log) {
        if let Some(m) = entry.group.members.first_mut() {
            m.measurement = "00".repeat(32);
        }
    }
    let public = daemon::group::public_group(&entry.group)?;
    let msg = entry.message();
    let mut agg = Aggregator::new(&public, &msg);
    let cmd = Command::SignLog {
        entry: entry.clone(),
        newcomer_cert,
    };
    let mut streams = Vec::new();
    for &id in signers {
        let (send, mut recv) = command(c, id, &cmd).await?;
        let NodeReply::Commitment(b) = reply(&mut recv, id, KEY_TIMEOUT).await? else {
            return Err(format!("node {id} answered the signing request wrongly"));
        };
        let com =
            postcard::from_bytes(&b).map_err(|_| format!("node {id}: malformed commitment"))?;
        agg.add_commitment(id, com).map_err(|e| e.to_string())?;
        streams.push((id, send, recv));
    }
    let package = agg.signing_package().map_err(|e| e.to_string())?;
    let pb = postcard::to_stdvec(&package).map_err(|e| e.to_string())?;
    for (id, send, recv) in streams.iter_mut() {
        frame::send(send, &FollowUp::Package(pb.clone()))
            .await
            .map_err(|e| format!("node {id}: {e}"))?;
        let NodeReply::Share(b) = reply(recv, *id, KEY_TIMEOUT).await? else {
            return Err(format!("node {id} answered the signing package wrongly"));
        };
        let share = postcard::from_bytes(&b).map_err(|_| format!("node {id}: malformed share"))?;
        agg.add_share(*id, share).map_err(|e| e.to_string())?;
    }
    let sig = agg.aggregate().map_err(|e| e.to_string())?;
    let mut log = c.log.lock().await;
    log.push(SignedEntry {
        entry: entry.clone(),
        signature: hex::encode(sig),
    });
    notarization::group::verify_log(&log, None).map_err(|e| {
        log.pop();
        e.to_string()
    })?;
    let text = serde_json::to_string_pretty(&*log).map_err(|e| e.to_string())?;
    let path = log_path(&c.cfg);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    c.epoch.store(log.len() as u64, Ordering::SeqCst);
    drop(log);
    c.members.lock().await.changed(entry.group.clone(), signers);
    for (id, send, _) in streams.iter_mut() {
        if let Err(e) = frame::send(send, &FollowUp::LogSigned(sig.to_vec())).await {
            tracing::warn!(node = *id, error = %e, "could not deliver the log signature");
        }
        let _ = send.finish();
    }
    Ok(())
}

async fn join(c: &Coordinator, n: u16, addr: &str, cert: &[u8]) -> Result<u64, String> {
    let group = c
        .log
        .lock()
        .await
        .last()
        .map(|e| e.entry.group.clone())
        .ok_or("no group")?;
    let helpers: Vec<Seat> = c.members.lock().await.helpers(usize::from(group.threshold));
    if helpers.len() < usize::from(group.threshold) {
        return Err(format!(
            "node {n} waits: a join needs {} connected members",
            group.threshold
        ));
    }
    let newcomer = Seat {
        role: helpers.len() as u8,
        node_id: n,
        addr: addr.to_string(),
    };
    let cmd = Command::Repair {
        newcomer: newcomer.clone(),
        helpers: helpers.clone(),
        newcomer_cert: cert.to_vec(),
    };
    let mut tasks = Vec::new();
    for id in helpers.iter().map(|s| s.node_id).chain([n]) {
        let (send, mut recv) = command(c, id, &cmd).await?;
        tasks.push(tokio::spawn(async move {
            let r = reply(&mut recv, id, KEY_TIMEOUT).await;
            drop(send);
            (id, r)
        }));
    }
    let mut keyed = None;
    for t in tasks {
        let (id, r) = t.await.map_err(|e| e.to_string())?;
        match r? {
            NodeReply::Accepted if id != n => {}
            k @ NodeReply::Keyed { .. } if id == n => keyed = Some(k),
            _ => return Err(format!("node {id} answered the repair wrongly")),
        }
    }
    let Some(NodeReply::Keyed {
        group_key, member, ..
    }) = keyed
    else {
        return Err("the newcomer did not report its keys".into());
    };
    if group_key != group.group_key {
        return Err("the newcomer reports another group key".into());
    }
    let expected = daemon::group::public_group(&group)?
        .expected_verifying_share(n)
        .map_err(|e| e.to_string())?;
    let attested = c
        .members
        .lock()
        .await
        .node(n)
        .map(|e| e.record.clone())
        .ok_or("the newcomer left")?;
    if member.node_id != n
        || member.verifying_share != hex::encode(expected)
        || (
            member.tee.as_str(),
            member.measurement.as_str(),
            member.simulated,
        ) != (
            attested.tee.as_str(),
            attested.measurement.as_str(),
            attested.simulated,
        )
    {
        return Err("the newcomer's record does not match the group or its attestation".into());
    }
    let mut members = group.members.clone();
    members.push(member);
    members.sort_by_key(|m| m.node_id);
    let prev = c
        .log
        .lock()
        .await
        .last()
        .map(|e| e.entry.hash())
        .unwrap_or_default();
    let new = GroupFile {
        epoch: group.epoch + 1,
        simulated: members.iter().any(|m| m.simulated),
        members,
        ..group.clone()
    };
    let entry = LogEntry {
        change: format!("join {n}"),
        time: now(),
        prev,
        group: new,
    };
    let signers: Vec<u16> = c.members.lock().await.signers(&entry.group, Some(n));
    let epoch = entry.group.epoch;
    // Members that are not connected stay behind until they reconnect and adopt the log
    // (`sign_entry` records who signed).
    sign_entry(c, entry, &signers, Some(cert.to_vec())).await?;
    Ok(epoch)
}

// ---------------------------------------------------------------- clients

async fn client_conn(c: Arc<Coordinator>, conn: quinn::Connection) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let c = c.clone();
        tokio::spawn(async move { client_stream(c, send, recv).await });
    }
}

async fn client_stream(
    c: Arc<Coordinator>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let req: ClientRequest =
        match tokio::time::timeout(Duration::from_secs(10), frame::recv(&mut recv, SMALL)).await {
            Ok(Ok(r)) => r,
            _ => return,
        };
    let r = match req {
        ClientRequest::Group { protocol } | ClientRequest::Prove { protocol }
            if protocol != PROTOCOL =>
        {
            Err(Fail(
                FailureCode::Refused,
                format!("protocol {protocol} (this coordinator speaks {PROTOCOL})"),
            ))
        }
        ClientRequest::Group { .. } => {
            let reply = ClientReply::Group {
                log: c.log().await,
                nodes: c.statuses().await,
            };
            let _ = frame::send(&mut send, &reply).await;
            let _ = send.finish();
            return;
        }
        ClientRequest::Prove { .. } => {
            if let Ok(mut k) = c.counters.lock() {
                k.started += 1;
            }
            prove(&c, &mut send).await
        }
    };
    match r {
        Ok(()) => c.count(Ok(())),
        Err(Fail(code, detail)) => {
            tracing::warn!(reason = code.label(), error = %detail, "session failed");
            c.count(Err(code.label()));
            let reason = Failure::new(code, detail);
            let _ = frame::send(&mut send, &ClientReply::Failed { reason }).await;
        }
    }
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
}

/// One session: pick the committee, start it, collect the notarizations, aggregate.
async fn prove(c: &Arc<Coordinator>, client: &mut quinn::SendStream) -> Result<(), Fail> {
    let group = c
        .log
        .lock()
        .await
        .last()
        .map(|e| e.entry.group.clone())
        .ok_or_else(|| {
            Fail(
                FailureCode::Unavailable,
                "the notary set has no group yet".into(),
            )
        })?;
    let mut session: SessionId = [0; 16];
    rand::rngs::OsRng.fill_bytes(&mut session);
    let seats = c
        .members
        .lock()
        .await
        .seat(&mut rand::rngs::OsRng)
        .map_err(|e| Fail(FailureCode::Unavailable, e.to_string()))?;
    let r = run_session(c, &group, session, &seats, client).await;
    c.members.lock().await.release(&seats);
    r
}

async fn run_session(
    c: &Arc<Coordinator>,
    group: &GroupFile,
    session: SessionId,
    seats: &[Seat],
    client: &mut quinn::SendStream,
) -> Result<(), Fail> {
    let timeout = Duration::from_secs(u64::from(c.cfg.session_timeout_secs));
    // The nodes give up after `timeout` and say why; the coordinator waits a little longer,
    // so the client hears the nodes' reason rather than a bare timeout.
    let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(5);
    let mut streams = Vec::new();
    let time = match c.tamper() {
        Some(Tamper::Time) => now().saturating_sub(3600),
        _ => now(),
    };
    for s in seats {
        let cmd = Command::Session {
            session,
            role: s.role,
            seats: seats.to_vec(),
            timeout_secs: c.cfg.session_timeout_secs,
            time,
        };
        let (send, mut recv) = command(c, s.node_id, &cmd)
            .await
            .map_err(fail(FailureCode::Node))?;
        match typed_reply(&mut recv, s.node_id, Duration::from_secs(10)).await? {
            NodeReply::Accepted => streams.push((s.node_id, send, recv)),
            _ => {
                return Err(Fail(
                    FailureCode::Node,
                    format!("node {} did not accept", s.node_id),
                ))
            }
        }
    }
    let mut to_client = seats.to_vec();
    if c.tamper() == Some(Tamper::Seat) {
        let a = to_client[0].addr.clone();
        to_client[0].addr = to_client[1].addr.clone();
        to_client[1].addr = a;
    }
    frame::send(
        client,
        &ClientReply::Committee {
            session,
            epoch: group.epoch,
            group_key: group.group_key.clone(),
            seats: to_client,
        },
    )
    .await
    .map_err(|e| Fail(FailureCode::Client, e.to_string()))?;
    // Every node's notarization, failing as soon as one node fails.
    let mut set = tokio::task::JoinSet::new();
    for (id, send, mut recv) in streams {
        set.spawn(async move {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = typed_reply(&mut recv, id, left).await;
            (id, send, recv, r)
        });
    }
    let mut got = Vec::new();
    while let Some(j) = set.join_next().await {
        let (id, send, recv, r) = j.map_err(|e| Fail(FailureCode::Node, e.to_string()))?;
        match r {
            Ok(NodeReply::Notarized {
                notarization,
                leaves,
                commitment,
            }) => got.push((id, send, recv, notarization, leaves, commitment)),
            Ok(_) => {
                return Err(Fail(
                    FailureCode::Node,
                    format!("node {id} answered the session wrongly"),
                ))
            }
            Err(e) => {
                set.abort_all();
                for (_, s, _, _, _, _) in got.iter_mut() {
                    let _ = frame::send(s, &FollowUp::Abort(e.clone())).await;
                }
                return Err(e.into());
            }
        }
    }
    got.sort_by_key(|g| g.0);
    let first = got
        .first()
        .ok_or_else(|| Fail(FailureCode::Node, "no notarization".into()))?;
    let (notarization, leaves) = (first.3.clone(), first.4.clone());
    if let Some(g) = got.iter().find(|g| g.3 != notarization || g.4 != leaves) {
        return Err(Fail(
            FailureCode::Disagreement,
            format!(
                "node {}'s notarization differs from node {}'s",
                g.0, first.0
            ),
        ));
    }
    let public = daemon::group::public_group(group).map_err(fail(FailureCode::Coordinator))?;
    let mut msg = notarization.clone();
    if c.tamper() == Some(Tamper::Message) {
        if let Some(b) = msg.last_mut() {
            *b ^= 1;
        }
    }
    let mut agg = Aggregator::new(&public, &msg);
    for (id, _, _, _, _, com) in &got {
        let com = postcard::from_bytes(com).map_err(|_| {
            Fail(
                FailureCode::Node,
                format!("node {id}: malformed commitment"),
            )
        })?;
        agg.add_commitment(*id, com)
            .map_err(|e| Fail(FailureCode::Signing, e.to_string()))?;
    }
    let package = agg
        .signing_package()
        .map_err(|e| Fail(FailureCode::Signing, e.to_string()))?;
    let pb =
        postcard::to_stdvec(&package).map_err(|e| Fail(FailureCode::Signing, e.to_string()))?;
    for (id, send, recv, _, _, _) in got.iter_mut() {
        frame::send(send, &FollowUp::Package(pb.clone()))
            .await
            .map_err(|e| Fail(FailureCode::Node, format!("node {id}: {e}")))?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let NodeReply::Share(b) = typed_reply(recv, *id, left).await? else {
            return Err(Fail(
                FailureCode::Signing,
                format!("node {id} answered the package wrongly"),
            ));
        };
        let share = postcard::from_bytes(&b)
            .map_err(|_| Fail(FailureCode::Signing, format!("node {id}: malformed share")))?;
        agg.add_share(*id, share)
            .map_err(|e| Fail(FailureCode::Signing, e.to_string()))?;
    }
    let mut signature = agg
        .aggregate()
        .map_err(|e| Fail(FailureCode::Signing, e.to_string()))?
        .to_vec();
    let mut leaves = leaves;
    match c.tamper() {
        Some(Tamper::Signature) => signature[0] ^= 1,
        Some(Tamper::Leaves) => {
            if let Some(l) = leaves.first_mut() {
                l.hash[0] ^= 1;
            }
        }
        _ => {}
    }
    frame::send(
        client,
        &ClientReply::Signed {
            notarization,
            signature,
            leaves,
        },
    )
    .await
    .map_err(|e| Fail(FailureCode::Client, e.to_string()))?;
    Ok(())
}

/// The daemon's entry point, shared by the `coordinator` binary and the test harness.
pub mod cli {
    use std::path::PathBuf;
    use std::process::ExitCode;

    use crate::Config;

    /// Logs to stderr (`RUST_LOG`, default `info`), loads `config`, runs until SIGINT or
    /// SIGTERM. Exit 0 after shutdown, 1 on a fatal error, 2 for a bad configuration.
    pub fn main(config: PathBuf) -> ExitCode {
        daemon::program::main("coordinator", || Config::load(&config), crate::serve)
    }
}
