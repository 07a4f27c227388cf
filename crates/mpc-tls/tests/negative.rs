//! Failures a user must see clearly, and tampering that must end in an abort, never in a
//! wrong answer: a man in the middle (between the client and the provider) flips, drops,
//! duplicates or reorders the provider's records; the certificate names another host or
//! comes from an untrusted root; the provider offers only suites we lack. Each in TLS 1.2
//! and in TLS 1.3 (where the server's whole encrypted flight is one record from rustls, and
//! every record after the handshake hides its content type).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use mpc_tls::codec::{ContentType, RecordReader, RECORD_HEADER};
use mpc_tls::local::{fetch, LocalConfig, LocalError};
use mpc_tls::record13;
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

/// A TCP proxy for one connection: the client's bytes go up unchanged; each of the
/// provider's records is handed to `on_record`, and what it returns (whole records) goes
/// down instead.
fn record_proxy(
    upstream: SocketAddr,
    mut on_record: impl FnMut(mpc_tls::codec::Record) -> Vec<Vec<u8>> + Send + 'static,
) -> SocketAddr {
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
        loop {
            let n = match up.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            reader.push(&buf[..n]);
            while let Some(rec) = reader.next_record().unwrap() {
                for w in on_record(rec) {
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

/// A TCP proxy for one connection that applies `t` to the provider's encrypted records.
fn proxy(upstream: SocketAddr, t: Tamper) -> SocketAddr {
    let mut encrypted = None::<usize>;
    let mut held: Option<Vec<u8>> = None;
    record_proxy(upstream, move |rec| {
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
        out
    })
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

/// A change to one handshake message (its type, the whole message).
type Edit = fn(u8, &mut Vec<u8>);

/// The server handshake traffic secrets a rustls provider logs (by client random).
#[derive(Debug, Default)]
struct ServerSecrets(std::sync::Mutex<Vec<Vec<u8>>>);

impl rustls::KeyLog for ServerSecrets {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        if label == "SERVER_HANDSHAKE_TRAFFIC_SECRET" {
            self.0.lock().unwrap().push(secret.to_vec());
        }
    }
    fn will_log(&self, label: &str) -> bool {
        label == "SERVER_HANDSHAKE_TRAFFIC_SECRET"
    }
}

/// A proxy that knows the server's handshake traffic secret (a man in the middle with the
/// provider's cooperation, or one node's view): it opens the server's TLS 1.3 flight (one
/// record from rustls), changes one handshake message with `edit`, and protects it again
/// under the same key, so the record itself is valid.
fn flight_editor(upstream: SocketAddr, secrets: Arc<ServerSecrets>, edit: Edit) -> SocketAddr {
    let mut edited = false;
    record_proxy(upstream, move |rec| {
        if rec.typ != ContentType::ApplicationData || edited {
            return vec![mpc_tls::codec::encode_record(rec.typ, &rec.payload)];
        }
        edited = true;
        let secret: [u8; 32] = secrets.0.lock().unwrap()[0].clone().try_into().unwrap();
        let k = record13::TrafficKey::from_secret(&secret);
        let (typ, plain) = record13::open(&k.key, &k.iv, 0, &rec.payload).unwrap();
        assert_eq!(typ, 22, "rustls sends its flight as one handshake record");
        let mut msgs = Vec::new();
        let mut at = 0;
        while at < plain.len() {
            let len = u32::from_be_bytes([0, plain[at + 1], plain[at + 2], plain[at + 3]]);
            let mut m = plain[at..at + 4 + len as usize].to_vec();
            edit(m[0], &mut m);
            msgs.extend(m);
            at += 4 + len as usize;
        }
        vec![record13::seal(&k.key, &k.iv, 0, ContentType::Handshake, &msgs).unwrap()]
    })
}

/// Each message of the server's TLS 1.3 flight altered under valid record protection: the
/// certificate (its chain no longer verifies), the CertificateVerify signature, the Finished
/// MAC, and EncryptedExtensions (the signature, over the transcript, no longer verifies).
/// A relaying client holds no handshake key, so it cannot even produce such a record; this
/// checks the nodes' own verification of what the record carries.
/// Every node refuses; nothing is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls13_server_flight_messages_altered_under_valid_protection() {
    const EE: u8 = 8;
    const CERTIFICATE: u8 = 11;
    const CERTIFICATE_VERIFY: u8 = 15;
    const FINISHED: u8 = 20;
    let cases: [(Edit, &str); 4] = [
        (
            |t, m| {
                if t == CERTIFICATE {
                    let at = m.len() / 2;
                    m[at] ^= 1;
                }
            },
            "certificate",
        ),
        (
            |t, m| {
                if t == CERTIFICATE_VERIFY {
                    let at = m.len() - 1;
                    m[at] ^= 1;
                }
            },
            "signature",
        ),
        (
            |t, m| {
                if t == FINISHED {
                    let at = m.len() - 1;
                    m[at] ^= 1;
                }
            },
            "the server's Finished does not match the handshake",
        ),
        (
            |t, m| {
                if t == EE {
                    // Another extension list: the transcript the signature covers changed.
                    *m = vec![EE, 0, 0, 6, 0, 4, 0xff, 0xfe, 0, 0];
                }
            },
            "CertificateVerify signature does not verify",
        ),
    ];
    for (edit, want) in cases {
        let p = pki(&[NAME]).unwrap();
        let b = several_records(true);
        let secrets = Arc::new(ServerSecrets::default());
        let mut config = (*tessera_provider::server_config(&p, b).unwrap()).clone();
        config.key_log = secrets.clone();
        let (addr, _server) = tessera_provider::rustls_server_with_config(
            Arc::new(config),
            b,
            vec![tessera_provider::http_response(b)],
        )
        .unwrap();
        let addr = flight_editor(addr, secrets, edit);
        let mut cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
        cfg.timeout = std::time::Duration::from_secs(20);
        let e = fetch(&cfg, NAME, addr, &http_request(NAME, "/", 200))
            .await
            .map(|o| o.client.transcript)
            .expect_err("a session over an altered flight");
        let e = e.to_string();
        assert!(
            e.to_lowercase().contains(&want.to_lowercase()),
            "{want}: {e}"
        );
    }
}
