//! Test providers: a certificate authority made with rcgen, and an in-process rustls HTTPS
//! server that answers each request with a body of a requested size.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A CA and a leaf for `names`, all ECDSA P-256.
pub struct Pki {
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    pub leaf_der: Vec<u8>,
    pub leaf_key_der: Vec<u8>,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
}

pub fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Tessera test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().to_vec(),
        leaf_der: leaf.der().to_vec(),
        leaf_key_der: leaf_key.serialize_der(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    }
}

/// How the test server answers.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Body bytes.
    pub body: usize,
    /// Use chunked transfer encoding (in 1000-byte chunks).
    pub chunked: bool,
    /// Plaintext bytes per TLS write (each write becomes at least one record).
    pub write_size: usize,
    /// Only TLS 1.3 offered.
    pub tls13_only: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            body: 1024,
            chunked: false,
            write_size: 16 * 1024,
            tls13_only: false,
        }
    }
}

/// Body byte `i` of a response: printable and position-dependent.
pub fn body_byte(i: usize) -> u8 {
    b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + i / 36) % 36]
}

/// The whole HTTP response the server sends.
pub fn http_response(b: Behaviour) -> Vec<u8> {
    let body: Vec<u8> = (0..b.body).map(body_byte).collect();
    if b.chunked {
        let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        for c in body.chunks(1000) {
            out.extend(format!("{:x}\r\n", c.len()).into_bytes());
            out.extend(c);
            out.extend(b"\r\n");
        }
        out.extend(b"0\r\n\r\n");
        out
    } else {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            b.body
        )
        .into_bytes();
        out.extend(body);
        out
    }
}

/// An HTTP request of exactly `len` bytes (padded with a header), for `host`.
pub fn http_request(host: &str, len: usize) -> Vec<u8> {
    let head = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nX-Pad: ");
    let tail = "\r\n\r\n";
    let pad = len.saturating_sub(head.len() + tail.len());
    let mut r = head.into_bytes();
    r.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
    r.extend(tail.as_bytes());
    r
}

/// Starts a rustls server on 127.0.0.1 serving `connections` connections; returns its
/// address and a handle whose result is the request bytes each connection received.
pub fn rustls_server(
    pki: &Pki,
    b: Behaviour,
    connections: usize,
) -> (SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if b.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(pki.leaf_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key_der.clone())),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..connections {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            let ok = loop {
                match tls.read(&mut buf) {
                    Ok(0) => break false,
                    Ok(n) => {
                        req.extend_from_slice(&buf[..n]);
                        if req.windows(4).any(|w| w == b"\r\n\r\n") {
                            break true;
                        }
                    }
                    Err(_) => break false,
                }
            };
            if ok {
                let resp = http_response(b);
                for c in resp.chunks(b.write_size) {
                    if tls.write_all(c).is_err() {
                        break;
                    }
                    let _ = tls.flush();
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
            got.push(req);
        }
        got
    });
    (addr, h)
}
