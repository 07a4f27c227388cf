//! The notary network end to end: a coordinator and notary nodes as separate processes
//! (the daemons' own entry points), real QUIC on loopback, a demo JSON provider in-process,
//! and the client library proving through the network.
//!
//! - three nodes: a proof verifies; a node killed mid-session gives the client a clear error
//!   within 10 s and no notarization; restarted, the next session succeeds; 20 concurrent
//!   sessions all succeed; a node stopped with SIGTERM mid-session finishes it first.
//! - five nodes (genesis of three, then two joins, each a new signed epoch): sessions go on
//!   with two nodes down; a node with a wrong measurement is refused at join; a client that
//!   never connects times out with the nodes' reason.
//! - a tampering coordinator: forged membership entries are not signed, and each way of
//!   lying about a session ends in an abort at a node or the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use disclosure::client::Selection;
use notarization::group::GroupFile;
use tessera_client::net::{fetch_group, prove_network, NetError, NetNotarized, NetworkOptions};
use tessera_client::prove::{presentation, revealed_targets, Options, Target};
use tessera_provider::{json_response, pki, serve_forever, Running};
use wire::msg::{ClientReply, ClientRequest, PROTOCOL};

const NAME: &str = "provider.test";
/// The simulated notary node's MRENCLAVE (configs/measurements.simulated.toml).
const SIM_MRENCLAVE: &str = "efba80e4803b47e028be42615d8fea0e27fb30a762779671922a6b6f76824090";
const BODY: &str = r#"{"user":{"name":"Alice Smith","birthdate":"1990-04-01","nationality":"us"},"balance":"1234.50"}"#;

fn free_udp() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_tcp() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    id: u16,
    config: PathBuf,
    health: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_e2e-node"))
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn metrics(&self) -> String {
        http_get(self.health, "/metrics")
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

struct Net {
    dir: tempfile::TempDir,
    coordinator: String,
    coord_health: u16,
    coord: Child,
    nodes: Vec<Node>,
    provider: Running,
    ca: PathBuf,
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = self.coord.kill();
        let _ = self.coord.wait();
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!(
                    "---- node {} log ----\n{}",
                    n.id,
                    std::fs::read_to_string(&n.log).unwrap_or_default()
                );
            }
            eprintln!(
                "---- coordinator log ----\n{}",
                std::fs::read_to_string(self.dir.path().join("coordinator.log"))
                    .unwrap_or_default()
            );
        }
    }
}

impl Net {
    /// A coordinator (genesis of three) and `n` nodes, all started; the provider answers
    /// after `delay`.
    fn start(n: u16, delay: Duration) -> Net {
        Net::start_with(n, delay, "session_timeout_secs = 120\n")
    }

    /// [`Net::start`] with extra coordinator settings.
    fn start_with(n: u16, delay: Duration, extra: &str) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let p = pki(&[NAME]).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &p.ca_pem).unwrap();
        let provider = serve_forever(
            p.leaf_der.clone(),
            p.leaf_key_der.clone(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            json_response(BODY),
            delay,
        )
        .unwrap();
        let cport = free_udp();
        let coord_health = free_tcp();
        let cfg = dir.path().join("coordinator.toml");
        std::fs::write(
            &cfg,
            format!(
                "listen = \"127.0.0.1:{cport}\"\nstate_dir = \"coordinator\"\nhealth_listen = \"127.0.0.1:{coord_health}\"\nallow_simulated = true\n{extra}"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("coordinator.log")).unwrap();
        let coord = Command::new(env!("CARGO_BIN_EXE_e2e-coordinator"))
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut net = Net {
            coordinator: format!("127.0.0.1:{cport}"),
            coord_health,
            coord,
            nodes: Vec::new(),
            provider,
            ca,
            dir,
        };
        for id in 1..=n {
            net.add_node(id, None);
        }
        net
    }

    fn add_node(&mut self, id: u16, measurement: Option<&str>) -> usize {
        let port = free_udp();
        let health = free_tcp();
        let config = self.dir.path().join(format!("node-{id}.toml"));
        let extra = measurement
            .map(|m| format!("simulated_mrenclave = \"{m}\"\n"))
            .unwrap_or_default();
        // A node with another measurement runs with a policy of its own that allows it (as a
        // modified build would); the coordinator's policy is the one that counts at join.
        let policy = match measurement {
            Some(m) => {
                let path = self.dir.path().join(format!("policy-{id}.toml"));
                let text = include_str!("../../configs/measurements.simulated.toml")
                    .replace(SIM_MRENCLAVE, m);
                std::fs::write(&path, text).unwrap();
                format!("policy = \"{}\"\n", path.display())
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "node_id = {id}\nlisten = \"127.0.0.1:{port}\"\ncoordinator = \"{}\"\nstate_dir = \"node-{id}\"\nhealth_listen = \"127.0.0.1:{health}\"\nallow_simulated = true\nprovider_roots = \"{}\"\ndrain_secs = 60\n{policy}[tee]\nsource = \"simulated\"\n{extra}",
                self.coordinator,
                self.ca.display()
            ),
        )
        .unwrap();
        let mut node = Node {
            id,
            config,
            health,
            log: self.dir.path().join(format!("node-{id}.log")),
            child: None,
        };
        node.spawn();
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn node(&mut self, id: u16) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }

    /// Waits until the log reaches `epoch` and exactly `healthy` nodes are healthy.
    async fn wait(&self, epoch: u64, healthy: usize) -> GroupFile {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok((g, _, nodes)) =
                fetch_group(&self.coordinator, None, Duration::from_secs(5)).await
            {
                if g.epoch == epoch && nodes.iter().filter(|s| s.healthy).count() == healthy {
                    return g;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the network did not reach epoch {epoch} with {healthy} healthy nodes"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn prove(&self, group: &GroupFile) -> Result<NetNotarized, NetError> {
        prove_at(self.coordinator.clone(), self.provider.addr, group.clone()).await
    }

    /// Restarts the coordinator (same port and state) with `tamper` set or not.
    fn restart_coordinator(&mut self, tamper: Option<&str>) {
        let _ = self.coord.kill();
        let _ = self.coord.wait();
        let cfg = self.dir.path().join("coordinator.toml");
        let text = std::fs::read_to_string(&cfg).unwrap();
        let mut text: String = text
            .lines()
            .filter(|l| !l.starts_with("tamper"))
            .map(|l| format!("{l}\n"))
            .collect();
        if let Some(t) = tamper {
            text.push_str(&format!("tamper = \"{t}\"\n"));
        }
        std::fs::write(&cfg, text).unwrap();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("coordinator.log"))
            .unwrap();
        self.coord = Command::new(env!("CARGO_BIN_EXE_e2e-coordinator"))
            .arg("--config")
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
    }
}

async fn prove_at(
    coordinator: String,
    provider: SocketAddr,
    group: GroupFile,
) -> Result<NetNotarized, NetError> {
    let sel = selection();
    let target = Target::parse(&format!("https://{NAME}/api/me")).unwrap();
    let opts = NetworkOptions {
        coordinator,
        group,
        timeout: Duration::from_secs(120),
    };
    prove_network(
        &opts,
        NAME,
        provider,
        &target.request(&[]).unwrap(),
        &sel,
        &|_| {},
    )
    .await
}

fn selection() -> Selection {
    Options {
        reveal: vec!["$.user.nationality".into()],
        predicates: vec!["$.user.birthdate<=today-18y".into()],
        uid_fields: vec!["$.user.name,$.user.birthdate".into()],
        scope: Some("e2e.example".into()),
        ..Default::default()
    }
    .selection()
    .unwrap()
}

/// The notarization verifies as a presentation and shows what was asked.
fn check_proof(n: &NetNotarized, group: &GroupFile) -> String {
    let p = presentation(
        n.notarization.clone(),
        n.signature,
        n.leaves.clone(),
        &n.plan,
        &revealed_targets(&selection()),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let v = notarization::verify(&p, &[group.trusted().unwrap()], now).unwrap();
    assert_eq!(
        v.revealed.get("$.user.nationality").map(|r| r.get()),
        Some("\"us\"")
    );
    assert_eq!(v.predicates.get("$.user.birthdate<=today-18y"), Some(&true));
    assert_eq!(
        (
            v.request.method.as_str(),
            v.request.target.as_str(),
            v.status
        ),
        ("GET", "/api/me", 200)
    );
    assert!(v.simulated);
    // The demo provider speaks TLS 1.2 and 1.3 and picks 1.3: these proofs are TLS 1.3
    // sessions through the attested network, and the presentation says so.
    assert_eq!(v.tls_version, "1.3");
    v.nullifier.unwrap()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The tests start many processes on a 2-core machine: one network at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run<F: std::future::Future<Output = ()>>(f: F) {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn kill_pid(pid: u32, signal: &str) {
    Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .unwrap();
}

/// Waits until the node behind `health` runs a session, then a little longer.
async fn wait_active(health: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(
        &http_get(health, "/metrics"),
        "tessera_node_sessions_active",
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the node never started the session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[test]
fn three_nodes_a_killed_node_a_restart_twenty_concurrent_sessions_and_a_graceful_stop() {
    run(async {
        let mut net = Net::start(3, Duration::from_secs(2));
        let group = net.wait(1, 3).await;
        assert_eq!(group.member_ids(), vec![1, 2, 3]);
        assert!(group.simulated);

        // A proof through the network verifies.
        let first = net.prove(&group).await.unwrap();
        let nullifier = check_proof(&first, &group);

        // Another group's trust file is refused as soon as the committee is named, before
        // any MPC (the seated nodes give up waiting for the client).
        let mut other = group.clone();
        other.group_key = "ab".repeat(32);
        let t0 = Instant::now();
        match net.prove(&other).await {
            Err(NetError::Refused(why)) => assert!(why.contains("not the trusted group"), "{why}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

        // Node 2 is killed while a session runs: the client gets a clear error within
        // 10 s and no notarization exists.
        let (pid, health) = (net.nodes[1].pid(), net.nodes[1].health);
        let (r, killed_at) = tokio::join!(
            async {
                let r = net.prove(&group).await;
                (r, Instant::now())
            },
            async {
                wait_active(health).await;
                kill_pid(pid, "-KILL");
                Instant::now()
            }
        );
        let (r, failed_at) = r;
        let err = match r {
            Ok(_) => panic!("a session with a killed node produced a notarization"),
            Err(e) => e.to_string(),
        };
        let after = failed_at.duration_since(killed_at);
        eprintln!("killed node 2: the client failed {after:?} later: {err}");
        assert!(after < Duration::from_secs(10), "the error took {after:?}");
        // The coordinator counts the failure when the surviving nodes report it, which may
        // be a moment after the client has its error.
        let deadline = Instant::now() + Duration::from_secs(15);
        let cm = loop {
            let cm = http_get(net.coord_health, "/metrics");
            if metric(&cm, "tessera_coordinator_sessions_failed_total") >= 1.0
                || Instant::now() > deadline
            {
                break cm;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            metric(&cm, "tessera_coordinator_sessions_succeeded_total"),
            1.0,
            "{cm}"
        );
        assert!(
            metric(&cm, "tessera_coordinator_sessions_failed_total") >= 1.0,
            "{cm}"
        );
        net.node(2).kill();
        net.wait(1, 2).await;
        // Two nodes are not enough for a session: a clear refusal.
        let e = net
            .prove(&group)
            .await
            .err()
            .expect("a session with two nodes");
        assert!(e.to_string().contains("healthy"), "{e}");

        // Restarted from its sealed state, node 2 takes part again.
        net.node(2).spawn();
        net.wait(1, 3).await;
        let again = net.prove(&group).await.unwrap();
        assert_eq!(
            check_proof(&again, &group),
            nullifier,
            "same person, same scope"
        );

        // Twenty concurrent sessions all succeed.
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..20 {
            set.spawn(prove_at(
                net.coordinator.clone(),
                net.provider.addr,
                group.clone(),
            ));
        }
        let mut ok = 0;
        while let Some(r) = set.join_next().await {
            let n = r.unwrap().unwrap();
            assert_eq!(check_proof(&n, &group), nullifier);
            ok += 1;
        }
        assert_eq!(ok, 20);
        eprintln!("20 concurrent sessions in {:?}", t0.elapsed());
        let m = net.nodes[0].metrics();
        assert!(
            metric(&m, "tessera_node_sessions_succeeded_total") >= 22.0,
            "{m}"
        );
        assert!(metric(&m, "tessera_node_bytes_total") > 0.0, "{m}");

        // SIGTERM mid-session: node 3 finishes the session (signs), then exits cleanly.
        let (pid, health) = (net.nodes[2].pid(), net.nodes[2].health);
        let (r, _) = tokio::join!(net.prove(&group), async {
            wait_active(health).await;
            kill_pid(pid, "-TERM");
        });
        let n = r.expect("a draining node finishes its session");
        check_proof(&n, &group);
        let mut c = net.node(3).child.take().unwrap();
        let status = c.wait().unwrap();
        assert!(status.success(), "node 3 exited with {status}");
        let log = std::fs::read_to_string(&net.nodes[2].log).unwrap();
        assert!(log.contains("drained: no session running"), "{log}");
        net.wait(1, 2).await;
    });
}

#[test]
fn five_nodes_join_by_signed_epochs_work_with_two_down_and_a_wrong_measurement_is_refused() {
    run(async {
        let mut net = Net::start_with(3, Duration::ZERO, "session_timeout_secs = 10\n");
        let g1 = net.wait(1, 3).await;

        // A client that takes a committee and never connects: the session times out at the
        // nodes and the coordinator tells the client why.
        let ep = wire::quic::client_endpoint(false).unwrap();
        let cfg = wire::quic::coordinator_client_config(None).unwrap();
        let conn = wire::quic::dial(&ep, cfg, &net.coordinator, Duration::from_secs(5))
            .await
            .unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let prove = ClientRequest::Prove {
            protocol: PROTOCOL,
            group_key: g1.group_key.clone(),
        };
        wire::frame::send(&mut send, &prove).await.unwrap();
        let first: ClientReply = wire::frame::recv(&mut recv, wire::frame::SMALL)
            .await
            .unwrap();
        assert!(matches!(first, ClientReply::Committee { .. }), "{first:?}");
        let t0 = Instant::now();
        let next: ClientReply = wire::frame::recv(&mut recv, wire::frame::SMALL)
            .await
            .unwrap();
        let waited = t0.elapsed();
        match next {
            ClientReply::Failed { reason } => {
                assert!(
                    reason.detail.contains("the client did not connect in time"),
                    "{reason}"
                );
                assert_eq!(reason.code, wire::msg::FailureCode::Client, "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            waited >= Duration::from_secs(9) && waited < Duration::from_secs(20),
            "{waited:?}"
        );
        conn.close(0u32.into(), b"done");
        // Node 0 counts its abort once its session has closed (after a short linger for
        // its peers), which may be after another node's report reached the client.
        let counted = Instant::now();
        loop {
            let m = net.nodes[0].metrics();
            let aborts = metric(&m, "tessera_node_session_aborts_total{reason=\"client\"}");
            if aborts == 1.0 {
                break;
            }
            let lines: Vec<&str> = m.lines().filter(|l| l.contains("aborts")).collect();
            assert!(
                aborts < 1.0 && counted.elapsed() < Duration::from_secs(10),
                "{lines:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        net.add_node(4, None);
        net.wait(2, 4).await;
        net.add_node(5, None);
        let g3 = net.wait(3, 5).await;
        assert_eq!(g3.member_ids(), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            (g3.group_key.as_str(), g3.threshold),
            (g1.group_key.as_str(), 2)
        );
        // The log verifies under the genesis key, entry by entry.
        let (_, log, nodes) = fetch_group(
            &net.coordinator,
            Some(&g1.group_key),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let changes: Vec<&str> = log.iter().map(|e| e.entry.change.as_str()).collect();
        assert_eq!(changes, ["genesis", "join 4", "join 5"]);
        assert!(nodes
            .iter()
            .all(|n| n.simulated && n.measurement == g1.members[0].measurement));

        // Two nodes down, sessions go on.
        net.node(1).kill();
        net.node(4).kill();
        net.wait(3, 3).await;
        let mut nullifiers = Vec::new();
        for _ in 0..2 {
            let n = net.prove(&g3).await.unwrap();
            let ids: Vec<u16> = n.notarization.committee.iter().map(|m| m.node_id).collect();
            assert_eq!(ids, vec![2, 3, 5]);
            nullifiers.push(check_proof(&n, &g3));
        }
        assert_eq!(nullifiers[0], nullifiers[1]);

        // A node reporting another measurement is refused at join and exits with an error.
        let i = net.add_node(6, Some(&"ab".repeat(32)));
        let child = net.nodes[i].child.as_mut().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the wrong node was not refused");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status.code(), Some(1));
        let log = std::fs::read_to_string(&net.nodes[i].log).unwrap();
        assert!(
            log.contains("refused") && log.contains("measurement"),
            "{log}"
        );
        let (g, _, nodes) = fetch_group(&net.coordinator, None, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(g.epoch, 3);
        assert!(nodes.iter().all(|n| n.node_id != 6));
    });
}

#[test]
fn a_tampering_coordinator_causes_aborts_not_false_notarizations() {
    run(async {
        // A forged membership entry (another measurement for a member) is signed by no one:
        // no group comes to exist.
        let mut net = Net::start_with(3, Duration::ZERO, "tamper = \"log\"\n");
        let deadline = Instant::now() + Duration::from_secs(60);
        // (The coordinator asks the members in order and stops at the first refusal.)
        while !std::fs::read_to_string(net.dir.path().join("node-1.log"))
            .unwrap_or_default()
            .contains(
                "membership entry refused: the entry's group differs from this node's own record",
            )
        {
            assert!(
                Instant::now() < deadline,
                "the nodes did not refuse the forged entry"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let e = fetch_group(&net.coordinator, None, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        // Honest again (the nodes reconnect), the genesis goes through.
        net.restart_coordinator(None);
        let group = net.wait(1, 3).await;
        for (tamper, expect) in [
            ("message", "refuses to sign"),
            ("leaves", "commitment"),
            ("signature", "signature"),
            ("seat", "attested as node"),
            ("time", "from this node's clock"),
        ] {
            net.restart_coordinator(Some(tamper));
            net.wait(1, 3).await;
            let e = net
                .prove(&group)
                .await
                .err()
                .unwrap_or_else(|| panic!("tamper {tamper}: a notarization was accepted"));
            eprintln!("tamper {tamper}: {e}");
            assert!(e.to_string().contains(expect), "tamper {tamper}: {e}");
        }
        net.restart_coordinator(None);
        net.wait(1, 3).await;
        check_proof(&net.prove(&group).await.unwrap(), &group);

        // A join whose entry misstates a member's measurement is not signed either: the
        // newcomer gets its shares by repair, but the epoch does not change until an honest
        // coordinator proposes the true entry.
        net.restart_coordinator(Some("log"));
        net.wait(1, 3).await;
        net.add_node(4, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(net.dir.path().join("coordinator.log"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("join failed") && l.contains("membership entry refused"))
        {
            assert!(
                Instant::now() < deadline,
                "the forged join entry was not refused"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (g, _, _) = fetch_group(&net.coordinator, None, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(g.epoch, 1);
        net.restart_coordinator(None);
        let g2 = net.wait(2, 4).await;
        assert_eq!(g2.member_ids(), vec![1, 2, 3, 4]);
    });
}
