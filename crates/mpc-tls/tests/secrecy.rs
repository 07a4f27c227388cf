//! Nodes hold only shares and ciphertext: everything each node sent and received during a
//! whole session (to and from the client and the other nodes) and everything it reports is
//! scanned for the request plaintext (a cookie), the response plaintext and both session
//! keys (extracted from the provider), and none of them is found. The client, which
//! holds the pads, does recover the plaintext.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use mpc_tls::local::{fetch_recorded, LocalConfig};
use mpc_tls::net::Recording;
use mpc_tls::server_auth::Roots;
use tessera_provider::{http_response, pki, rustls_server, Behaviour};

const NAME: &str = "provider.test";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_never_see_plaintext_or_keys() {
    scan(false).await;
}

/// TLS 1.3: the keys scanned for are the application traffic keys (the handshake traffic
/// keys are the nodes' to know).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_never_see_plaintext_or_keys_in_tls13() {
    scan(true).await;
}

async fn scan(tls13: bool) {
    let p = pki(&[NAME]).unwrap();
    let b = Behaviour {
        body: 3000,
        extract_keys: true,
        tls12_only: !tls13,
        tls13_only: tls13,
        ..Behaviour::default()
    };
    let (addr, server) = rustls_server(&p, b, 1).unwrap();
    let cookie = b"Cookie: session=7f3a9c1e5b2d8046-very-secret-cookie";
    let req = [
        b"GET /account HTTP/1.1\r\nHost: provider.test\r\nConnection: close\r\n".as_slice(),
        cookie,
        b"\r\n\r\n",
    ]
    .concat();
    let recs: [Recording; 3] = std::array::from_fn(|_| Arc::new(Mutex::new(Vec::new())));
    let cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
    let out = fetch_recorded(&cfg, NAME, addr, &req, Some(&recs))
        .await
        .unwrap();
    let served = server.join().unwrap();
    let (client_key, server_key) = served[0].keys.expect("keys extracted");
    let response = http_response(b);
    assert_eq!(&out.client.response[..], &response[..]);

    // Needles: the cookie, pieces of the response body, both keys.
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("cookie".into(), cookie[16..].to_vec()),
        ("client_write_key".into(), client_key.to_vec()),
        ("server_write_key".into(), server_key.to_vec()),
        ("response status line".into(), b"HTTP/1.1 200 OK".to_vec()),
    ];
    for at in [200usize, 1500, 2900] {
        needles.push((
            format!("response bytes {at}.."),
            response[at..at + 24].to_vec(),
        ));
    }
    for (i, r) in recs.iter().enumerate() {
        let mut seen = r.lock().unwrap().clone();
        assert!(
            seen.len() > 1_000_000,
            "node {i} recorded only {} bytes",
            seen.len()
        );
        // What the node reports is scanned too.
        seen.extend(format!("{:?}", out.nodes[i]).into_bytes());
        for (what, n) in &needles {
            assert!(!contains(&seen, n), "node {i} saw the {what}");
        }
        // The scan does find what a node legitimately relays: the provider's certificate
        // (TLS 1.2; in TLS 1.3 it is encrypted, and the ClientHello's server name is).
        let legit: &[u8] = if tls13 {
            NAME.as_bytes()
        } else {
            &p.leaf_der[p.leaf_der.len() - 40..]
        };
        assert!(contains(&seen, legit), "node {i}");
    }
}
