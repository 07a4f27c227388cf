//! The node's Prometheus metrics (sessions, aborts by reason, bytes, latency) and health.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use wire::metrics::{family, Exporter};

/// Latency histogram bucket bounds (seconds).
const BUCKETS: [f64; 10] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Default)]
struct Inner {
    started: u64,
    succeeded: u64,
    aborts: BTreeMap<&'static str, u64>,
    node_sent: u64,
    node_received: u64,
    latency_counts: [u64; BUCKETS.len()],
    latency_sum: f64,
    latency_n: u64,
}

/// Counters, shared by every task.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    active: AtomicU64,
    /// Epoch whose keys the node holds (0: none).
    pub epoch: AtomicU64,
    /// Admitted by the coordinator and connected.
    pub connected: AtomicBool,
    /// Shutting down.
    pub draining: AtomicBool,
    /// The TEE label (says SIMULATED for the simulated TEE).
    pub tee: Mutex<String>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut i) = self.inner.lock() {
            f(&mut i)
        }
    }

    /// A session started.
    pub fn started(&self) {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.with(|i| i.started += 1);
    }

    /// A session ended: `Ok(latency)` or `Err(reason)`.
    pub fn ended(&self, r: Result<Duration, &'static str>) {
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.with(|i| match r {
            Ok(d) => {
                i.succeeded += 1;
                let s = d.as_secs_f64();
                for (k, b) in BUCKETS.iter().enumerate() {
                    if s <= *b {
                        i.latency_counts[k] += 1;
                    }
                }
                i.latency_sum += s;
                i.latency_n += 1;
            }
            Err(reason) => *i.aborts.entry(reason).or_default() += 1,
        });
    }

    /// Bytes a session moved to and from the peer nodes.
    pub fn bytes(&self, sent: u64, received: u64) {
        self.with(|i| {
            i.node_sent += sent;
            i.node_received += received;
        });
    }

    /// Sessions running now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::SeqCst)
    }
}

impl Exporter for Metrics {
    fn health(&self) -> Result<String, String> {
        let tee = self.tee.lock().map(|t| t.clone()).unwrap_or_default();
        let epoch = self.epoch.load(Ordering::SeqCst);
        let line = format!(
            "tee={tee} epoch={epoch} connected={} draining={} active_sessions={}\n",
            self.connected.load(Ordering::SeqCst),
            self.draining.load(Ordering::SeqCst),
            self.active()
        );
        if self.connected.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst) {
            Ok(format!("ok {line}"))
        } else {
            Err(format!("unavailable {line}"))
        }
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        let Ok(i) = self.inner.lock() else {
            return out;
        };
        let one = |v: f64| vec![(String::new(), v)];
        family(
            &mut out,
            "tessera_node_sessions_started_total",
            "counter",
            "Sessions this node started.",
            &one(i.started as f64),
        );
        family(
            &mut out,
            "tessera_node_sessions_succeeded_total",
            "counter",
            "Sessions that ended with this node's signature share.",
            &one(i.succeeded as f64),
        );
        let aborts: Vec<(String, f64)> = i
            .aborts
            .iter()
            .map(|(r, n)| (format!("reason=\"{r}\""), *n as f64))
            .collect();
        family(
            &mut out,
            "tessera_node_session_aborts_total",
            "counter",
            "Sessions that ended without a signature share, by reason.",
            &aborts,
        );
        family(
            &mut out,
            "tessera_node_sessions_active",
            "gauge",
            "Sessions running now.",
            &one(self.active() as f64),
        );
        family(
            &mut out,
            "tessera_node_bytes_total",
            "counter",
            "Bytes exchanged with peer nodes in sessions, by direction.",
            &[
                ("direction=\"sent\"".into(), i.node_sent as f64),
                ("direction=\"received\"".into(), i.node_received as f64),
            ],
        );
        let mut h: Vec<(String, f64)> = BUCKETS
            .iter()
            .zip(i.latency_counts)
            .map(|(b, n)| (format!("le=\"{b}\""), n as f64))
            .collect();
        h.push(("le=\"+Inf\"".into(), i.latency_n as f64));
        out.push_str("# HELP tessera_node_session_seconds Session latency, command to signature share.\n# TYPE tessera_node_session_seconds histogram\n");
        for (l, v) in h {
            out.push_str(&format!("tessera_node_session_seconds_bucket{{{l}}} {v}\n"));
        }
        out.push_str(&format!(
            "tessera_node_session_seconds_sum {}\ntessera_node_session_seconds_count {}\n",
            i.latency_sum, i.latency_n
        ));
        family(
            &mut out,
            "tessera_node_epoch",
            "gauge",
            "Epoch whose keys this node holds (0: none).",
            &one(self.epoch.load(Ordering::SeqCst) as f64),
        );
        out
    }
}
