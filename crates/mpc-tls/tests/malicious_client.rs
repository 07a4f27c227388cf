//! A client that tells the nodes different stories: it relays altered provider bytes to one
//! node only. The nodes compare what they received before acting on it, so the session
//! aborts at every node; nothing is released.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mpc::transport::memory_network;
use mpc_tls::client::run_client;
use mpc_tls::net::{links, Link};
use mpc_tls::node::{run_node, NodeConfig, NodeError};
use mpc_tls::proto::{ToClient, ToNode};
use mpc_tls::server_auth::Roots;
use rand::SeedableRng;
use tessera_provider::{http_request, pki, rustls_server, Behaviour};

const NAME: &str = "provider.test";

/// Alters, for node 1 only, the relayed provider byte at offset `at` — counted from the
/// start of the stream, or (with `response`) from the first byte after the request went out.
async fn run(response: bool, at: usize) -> (String, Vec<String>) {
    let p = pki(&[NAME]).unwrap();
    let (addr, _server) = rustls_server(
        &p,
        Behaviour {
            body: 3000,
            write_size: 1000,
            ..Behaviour::default()
        },
        1,
    )
    .unwrap();
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    let (mut client_links, mut middle): (_, [Link; 3]) = links();
    let (mut to_nodes, node_links) = links();
    let mut tasks = Vec::new();
    for (i, (t, link)) in memory_network().into_iter().zip(node_links).enumerate() {
        let cfg = NodeConfig::new(roots.clone(), 1_900_000_000, Duration::from_secs(10));
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(i as u64);
            run_node(i as u8, cfg, t, link, &mut rng).await
        }));
    }
    // The lying relay between the client and the nodes.
    let relay = tokio::spawn(async move {
        let [m0, m1, m2] = &mut middle;
        // Offset of the next relayed byte from the counting origin; None before arming.
        let mut offset = (!response).then_some(0usize);
        loop {
            tokio::select! {
                m = m0.recv::<ToNode>() => { let Ok(m) = m else { break }; let _ = to_nodes.send(0, &m); }
                m = m1.recv::<ToNode>() => {
                    let Ok(mut m) = m else { break };
                    if let (ToNode::ServerBytes(b), Some(o)) = (&mut m, offset.as_mut()) {
                        if (*o..*o + b.len()).contains(&at) {
                            b[at - *o] ^= 1;
                        }
                        *o += b.len();
                    }
                    let _ = to_nodes.send(1, &m);
                }
                m = m2.recv::<ToNode>() => { let Ok(m) = m else { break }; let _ = to_nodes.send(2, &m); }
                r = to_nodes.recv::<ToClient>() => {
                    let Ok((node, m)) = r else { break };
                    if response && node == 1 && matches!(m, ToClient::RequestTags(_)) {
                        offset = Some(0);
                    }
                    let _ = [&mut *m0, &mut *m1, &mut *m2][node as usize].send(&m);
                }
            }
        }
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let req = http_request(NAME, "/", 100);
    let client = run_client(
        NAME,
        tcp,
        &mut client_links,
        &req,
        Duration::from_secs(10),
        &mut rng,
        false,
    )
    .await;
    let client_err = client.expect_err("the session must fail").to_string();
    let mut node_errs = Vec::new();
    for t in tasks {
        let e: NodeError = t.await.unwrap().expect_err("every node must abort");
        node_errs.push(e.to_string());
    }
    relay.abort();
    (client_err, node_errs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_handshake_bytes_to_one_node_abort_everyone() {
    // Bytes 11..43 of the stream are the server random (record header 5, handshake header 4,
    // version 2).
    let (client, nodes) = run(false, 20).await;
    assert!(
        nodes
            .iter()
            .any(|e| e.contains("disagree about the server's first flight")),
        "{nodes:?}"
    );
    assert!(client.contains("node"), "{client}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_response_bytes_to_one_node_abort_everyone() {
    // Byte 30 of the response is ciphertext of its first record (header 5, explicit nonce 8).
    let (client, nodes) = run(true, 30).await;
    assert!(
        nodes
            .iter()
            .any(|e| e.contains("disagree about") || e.contains("does not verify")),
        "{nodes:?}"
    );
    assert!(client.contains("node"), "{client}");
}
