//! Failures a user must see clearly, and tampering that must end in an abort, never in a
//! wrong answer: a man in the middle (between the client and the provider) flips, drops,
//! duplicates or reorders the provider's records; the certificate names another host or
//! comes from an untrusted root; the provider offers only suites we lack. Each in TLS 1.2
//! and in TLS 1.3 (where the server's whole encrypted flight is one record from rustls, and
//! every record after the handshake hides its content type).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use mpc_tls::codec::{ContentType, RecordReader, RECORD_HEADER};
use mpc_tls::local::{fetch, LocalConfig, LocalError};
use mpc_tls::server_auth::Roots;
use tessera_provider::{http_request, pki, rustls_server, Behaviour};

const NAME: &str = "provider.test";

#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// Flip one bit of the ciphertext of encrypted record `n` (0 = the server's Finished).
    Flip(usize),
    Drop(usize),
    Duplicate(usize),
    /// Swap encrypted records n and n + 1.
    Swap(usize),
}

/// A TCP proxy for one connection that applies `t` to the provider's encrypted records.
fn proxy(upstream: SocketAddr, t: Tamper) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut down, _) = l.accept().unwrap();
        let mut up = TcpStream::connect(upstream).unwrap();
        let (mut down2, mut up2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut down2, &mut up2);
            let _ = up2.shutdown(std::net::Shutdown::Write);
        });
        let mut reader = RecordReader::new();
        let mut buf = [0u8; 8192];
        let mut encrypted = None::<usize>;
        let mut held: Option<Vec<u8>> = None;
        loop {
            let n = match up.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            reader.push(&buf[..n]);
            while let Some(rec) = reader.next_record().unwrap() {
                let mut wire = mpc_tls::codec::encode_record(rec.typ, &rec.payload);
                let idx = match (rec.typ, encrypted) {
                    (ContentType::ChangeCipherSpec, _) => {
                        encrypted = Some(0);
                        None
                    }
                    (_, Some(i)) => {
                        encrypted = Some(i + 1);
                        Some(i)
                    }
                    _ => None,
                };
                let mut out = Vec::new();
                match (t, idx) {
                    (Tamper::Flip(k), Some(i)) if i == k => {
                        wire[RECORD_HEADER + 8] ^= 0x04;
                        out.push(wire);
                    }
                    (Tamper::Drop(k), Some(i)) if i == k => {}
                    (Tamper::Duplicate(k), Some(i)) if i == k => {
                        out.push(wire.clone());
                        out.push(wire);
                    }
                    (Tamper::Swap(k), Some(i)) if i == k => held = Some(wire),
                    (Tamper::Swap(k), Some(i)) if i == k + 1 => {
                        out.push(wire);
                        out.extend(held.take());
                    }
                    _ => out.push(wire),
                }
                for w in out {
                    if down.write_all(&w).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = down.shutdown(std::net::Shutdown::Write);
    });
    addr
}

async fn session_error(
    b: Behaviour,
    tamper: Option<Tamper>,
    roots_pem: Option<String>,
    cert_names: &[&str],
) -> String {
    let p = pki(cert_names).unwrap();
    let (addr, _server) = rustls_server(&p, b, 1).unwrap();
    let addr = match tamper {
        Some(t) => proxy(addr, t),
        None => addr,
    };
    let roots = Roots::from_pem(&roots_pem.unwrap_or(p.ca_pem.clone())).unwrap();
    let mut cfg = LocalConfig::new(roots);
    cfg.timeout = std::time::Duration::from_secs(20);
    match fetch(&cfg, NAME, addr, &http_request(NAME, "/", 200)).await {
        Ok(o) => panic!("session succeeded: {:?}", o.client.transcript),
        Err(LocalError::Client(e)) => {
            eprintln!("error: {e}");
            e.to_string()
        }
        Err(e) => panic!("expected a client-side error, got {e}"),
    }
}

/// A response in several records, from a server speaking TLS 1.2 only or 1.3 only.
fn several_records(tls13: bool) -> Behaviour {
    Behaviour {
        body: 3000,
        write_size: 600,
        tls12_only: !tls13,
        tls13_only: tls13,
        ..Behaviour::default()
    }
}

/// The encrypted record `Tamper` indexes where the response starts: TLS 1.2 has the
/// server's Finished first; rustls sends its TLS 1.3 flight as one record.
const FIRST_RESPONSE_RECORD: usize = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_response_bit_aborts() {
    for tls13 in [false, true] {
        let k = FIRST_RESPONSE_RECORD + 1;
        let e = session_error(several_records(tls13), Some(Tamper::Flip(k)), None, &[NAME]).await;
        assert!(e.contains("tag of response record 2"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_server_finished_aborts() {
    let e = session_error(several_records(false), Some(Tamper::Flip(0)), None, &[NAME]).await;
    assert!(e.contains("server's Finished"), "{e}");
    // TLS 1.3: the record holding EncryptedExtensions … Finished does not open under the
    // server handshake traffic key at any node.
    let e = session_error(several_records(true), Some(Tamper::Flip(0)), None, &[NAME]).await;
    assert!(
        e.contains("the tag of the server's encrypted flight (record 1) does not verify"),
        "{e}"
    );
}

/// TLS 1.3: the closing alert is a record like any other; flipping it is caught by its tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_tls13_closing_alert_aborts() {
    let e = session_error(several_records(true), Some(Tamper::Flip(7)), None, &[NAME]).await;
    assert!(e.contains("tag of response record 7"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_record_aborts() {
    for tls13 in [false, true] {
        let t = Tamper::Drop(FIRST_RESPONSE_RECORD + 1);
        let e = session_error(several_records(tls13), Some(t), None, &[NAME]).await;
        assert!(e.contains("does not verify"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_record_aborts() {
    for tls13 in [false, true] {
        let t = Tamper::Duplicate(FIRST_RESPONSE_RECORD);
        let e = session_error(several_records(tls13), Some(t), None, &[NAME]).await;
        assert!(e.contains("does not verify"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_records_abort() {
    for tls13 in [false, true] {
        let t = Tamper::Swap(FIRST_RESPONSE_RECORD);
        let e = session_error(several_records(tls13), Some(t), None, &[NAME]).await;
        assert!(e.contains("does not verify"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_for_another_name_is_refused() {
    for tls13 in [false, true] {
        let e = session_error(several_records(tls13), None, None, &["other.test"]).await;
        assert!(e.contains("not valid for provider.test"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_root_is_refused() {
    for tls13 in [false, true] {
        let stranger = pki(&[NAME]).unwrap();
        let e = session_error(several_records(tls13), None, Some(stranger.ca_pem), &[NAME]).await;
        // Same CA name, different key: webpki finds the issuer by name and the signature
        // fails.
        assert!(e.contains("chain rejected"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_without_our_suites_gets_a_clear_error() {
    let e = session_error(
        Behaviour {
            aes256_only: true,
            ..Behaviour::default()
        },
        None,
        None,
        &[NAME],
    )
    .await;
    assert!(
        e.contains("none of Tessera's cipher suites")
            && e.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        "{e}"
    );
}
