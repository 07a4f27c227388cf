//! Sessions with the nodes and the client connected over real TCP on loopback, as when the
//! nodes are separate processes: several sessions in a row over fresh connections (the
//! framing, nodes running ahead of each other, and the graceful close that must not lose a
//! slower peer's last messages), and a node that vanishes mid-session, which must be an
//! error for the others at once rather than a wait for the timeout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mpc_tls::client::run_client;
use mpc_tls::net::tcp;
use mpc_tls::node::{run_node, NodeConfig, NodeError, NodeReport};
use mpc_tls::server_auth::Roots;
use rand::SeedableRng;
use tessera_provider::{http_request, http_response, pki, rustls_server, Behaviour};
use tokio::net::{TcpListener, TcpStream};

const NAME: &str = "provider.test";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Starts three node tasks that each run `sessions` sessions; node `stop_after.0` gives up
/// (drops everything, as a killed process would) `stop_after.1` into its first session.
async fn nodes(
    ca_pem: &str,
    client: SocketAddr,
    sessions: usize,
    stop_after: Option<(u8, Duration)>,
) -> Vec<tokio::task::JoinHandle<Vec<Result<NodeReport, NodeError>>>> {
    let mut listeners = Vec::new();
    let mut addrs = [SocketAddr::from(([127, 0, 0, 1], 0)); 3];
    for a in &mut addrs {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        *a = l.local_addr().unwrap();
        listeners.push(l);
    }
    let mut tasks = Vec::new();
    for (party, listener) in listeners.into_iter().enumerate() {
        let party = party as u8;
        let cfg = NodeConfig::new(
            Roots::from_pem(ca_pem).unwrap(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            TIMEOUT,
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..sessions {
                let t = tcp::mesh(party, &listener, &addrs, TIMEOUT).await.unwrap();
                let link = tcp::node_link(party, client).await.unwrap();
                let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
                let run = run_node(party, cfg.clone(), t, link, &mut rng);
                match stop_after {
                    Some((p, after)) if p == party => {
                        // Dropping the session future closes its sockets without the
                        // end-of-session marker.
                        let _ = tokio::time::timeout(after, run).await;
                        return out;
                    }
                    _ => out.push(run.await),
                }
            }
            out
        }));
    }
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sessions_in_a_row_over_tcp() {
    let p = pki(&[NAME]).unwrap();
    let b = Behaviour {
        body: 4096,
        ..Behaviour::default()
    };
    let (addr, server) = rustls_server(&p, b, 3).unwrap();
    let client_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tasks = nodes(&p.ca_pem, client_listener.local_addr().unwrap(), 3, None).await;
    let req = http_request(NAME, "/", 1024);
    let mut transcripts = Vec::new();
    for _ in 0..3 {
        let mut links = tcp::client_links(&client_listener, TIMEOUT).await.unwrap();
        let tls = TcpStream::connect(addr).await.unwrap();
        let out = run_client(
            NAME,
            tls,
            &mut links,
            &req,
            TIMEOUT,
            &mut rand::rngs::OsRng,
            false,
        )
        .await
        .unwrap();
        assert_eq!(&out.response[..], &http_response(b)[..]);
        transcripts.push(out.transcript);
    }
    for (party, t) in tasks.into_iter().enumerate() {
        let reports = t.await.unwrap();
        assert_eq!(reports.len(), 3);
        for (r, want) in reports.into_iter().zip(&transcripts) {
            let r = r.unwrap_or_else(|e| panic!("node {party}: {e}"));
            assert_eq!(&r.transcript, want);
            assert!(r.node_bytes_sent > 0);
        }
    }
    assert_eq!(server.join().unwrap().len(), 3);
    // Fresh randomness each session: the handshakes differ.
    assert_ne!(transcripts[0].handshake_hash, transcripts[1].handshake_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_vanishes_mid_session_stops_everyone_quickly() {
    let p = pki(&[NAME]).unwrap();
    let (addr, _server) = rustls_server(&p, Behaviour::default(), 1).unwrap();
    let client_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // 150 ms in, the nodes are garbling the handshake (a whole session takes several times
    // longer in this build).
    let gone = Some((1, Duration::from_millis(150)));
    let tasks = nodes(&p.ca_pem, client_listener.local_addr().unwrap(), 1, gone).await;
    let start = Instant::now();
    let mut links = tcp::client_links(&client_listener, TIMEOUT).await.unwrap();
    let tls = TcpStream::connect(addr).await.unwrap();
    let req = http_request(NAME, "/", 100);
    let r = run_client(
        NAME,
        tls,
        &mut links,
        &req,
        TIMEOUT,
        &mut rand::rngs::OsRng,
        false,
    )
    .await;
    let err = r
        .expect_err("a session with a vanished node must fail")
        .to_string();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}: the failure waited for a timeout",
        start.elapsed()
    );
    // Either the client sees node 1's link close itself, or a surviving node's abort naming
    // it arrives first.
    assert!(
        err.contains("party 1") || err.contains("node 1's link closed"),
        "{err}"
    );
    for (party, t) in tasks.into_iter().enumerate() {
        for r in t.await.unwrap() {
            let e = r.expect_err("no node may finish a session a peer left");
            // "connection to party 1 closed", "I/O error with party 1: broken pipe", or the
            // other honest node's abort naming it.
            assert!(e.to_string().contains("party 1"), "node {party}: {e}");
        }
    }
}
