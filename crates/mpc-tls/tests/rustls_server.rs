//! Whole sessions against an in-process rustls server: three nodes and a client, a real TCP
//! connection, response sizes from empty to several records, chunked encoding, and the
//! failures a user must see clearly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mpc_tls::local::{fetch, LocalConfig};
use mpc_tls::server_auth::Roots;
use tessera_provider::{http_request, http_response, pki, rustls_server, Behaviour};

const NAME: &str = "provider.test";

/// The session over TLS 1.2 (the server offers it only), then over TLS 1.3 (the server
/// offers both and picks 1.3).
async fn roundtrip(b: Behaviour, request_len: usize) {
    for tls12_only in [true, false] {
        let b = Behaviour { tls12_only, ..b };
        let version = session(b, request_len).await;
        assert_eq!(version, if tls12_only { 0x0303 } else { 0x0304 });
    }
}

/// One session; returns the TLS version the transcript states.
async fn session(b: Behaviour, request_len: usize) -> u16 {
    let p = pki(&[NAME]).unwrap();
    let (addr, server) = rustls_server(&p, b, 1).unwrap();
    let cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
    let req = http_request(NAME, "/", request_len);
    let out = fetch(&cfg, NAME, addr, &req).await.unwrap();
    let got = server.join().unwrap();
    assert_eq!(
        got[0].request, req,
        "the server received the client's request"
    );
    assert_eq!(&out.client.response[..], &http_response(b)[..]);
    let t = &out.client.transcript;
    assert_eq!(t.server_name, NAME);
    assert!(t.close_notify);
    assert_eq!(t.received_bytes, http_response(b).len() as u64);
    assert_eq!(t.sent_bytes, req.len() as u64);
    for n in &out.nodes {
        assert_eq!(&n.transcript, t);
    }
    t.tls_version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_kib_response() {
    roundtrip(Behaviour::default(), 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_response_body() {
    roundtrip(
        Behaviour {
            body: 0,
            ..Behaviour::default()
        },
        60,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_kib_response_and_one_kib_request() {
    roundtrip(
        Behaviour {
            body: 4096,
            ..Behaviour::default()
        },
        1024,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_kib_response_in_several_records() {
    roundtrip(
        Behaviour {
            body: 64 * 1024,
            ..Behaviour::default()
        },
        200,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_response_in_many_small_records() {
    roundtrip(
        Behaviour {
            body: 5000,
            chunked: true,
            write_size: 700,
            ..Behaviour::default()
        },
        200,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_over_several_records() {
    roundtrip(
        Behaviour {
            body: 100,
            ..Behaviour::default()
        },
        40_000,
    )
    .await;
}

/// A server that asks for an optional client certificate gets an empty Certificate and
/// serves the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_asking_for_an_optional_client_certificate() {
    roundtrip(
        Behaviour {
            ask_client_certificate: true,
            ..Behaviour::default()
        },
        300,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls13_only_server() {
    let b = Behaviour {
        body: 4096,
        tls13_only: true,
        ..Behaviour::default()
    };
    assert_eq!(session(b, 1024).await, 0x0304);
}
