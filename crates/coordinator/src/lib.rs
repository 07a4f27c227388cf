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
//!
//! - [`membership`]: who is admitted, who holds keys, who is busy, what change runs next
//!   and who is seated: a pure state machine over node ids (no connection, no clock, the
//!   random source passed in).
//! - `admission`: a node's connection, its attestation, the machine's verdict.
//! - `changes`: the genesis and joins, the membership log and its signing.
//! - `sessions`: the client API: the public record and proving sessions.
//! - [`config`]: the configuration file.
#![forbid(unsafe_code)]

mod admission;
mod changes;
pub mod config;
pub mod membership;
mod sessions;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use attestation::{Policy, SimPki, Verifier};
use notarization::group::SignedEntry;
use tokio::sync::{watch, Mutex};
use wire::msg::NodeStatus;

pub use config::{Config, Tamper};
use membership::Membership;

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

use daemon::program::now;

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
                        admission::node_conn(c, conn).await;
                    } else {
                        sessions::client_conn(c, conn).await;
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
