//! Sessions against real TLS servers from Debian packages. TLS 1.2: nginx with an ECDSA
//! P-256 certificate and `openssl s_server` with an RSA certificate (so both suites and both
//! kinds of ServerKeyExchange signature are exercised), and GnuTLS `gnutls-serv` asking for
//! a client certificate. TLS 1.3 only: nginx with an RSA certificate (RSA-PSS
//! CertificateVerify), `openssl s_server -tls1_3` with ECDSA P-256 and P-256 as its only
//! group, and `gnutls-serv` (which asks for an optional client certificate: the client's
//! empty Certificate goes in its encrypted flight). `.ci/run` installs them (`apt-get
//! install -y nginx openssl gnutls-bin`); without them these tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mpc_tls::codec::CipherSuite;
use mpc_tls::local::{fetch, LocalConfig};
use mpc_tls::server_auth::Roots;
use tessera_provider::{
    body_byte, nginx_with_protocols, pki, s_server_www_with, scratch_dir, system_binary, Pki,
};

const NAME: &str = "provider.test";

fn files(sizes: &[usize]) -> Vec<(String, Vec<u8>)> {
    sizes
        .iter()
        .map(|&n| (format!("f{n}"), (0..n).map(body_byte).collect()))
        .collect()
}

async fn get(
    roots: &Roots,
    addr: SocketAddr,
    path: &str,
    http10: bool,
) -> mpc_tls::local::LocalOutput {
    let mut cfg = LocalConfig::new(roots.clone());
    cfg.timeout = Duration::from_secs(60);
    let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let req = format!("GET {path} {version}\r\nHost: {NAME}\r\nConnection: close\r\n\r\n");
    fetch(&cfg, NAME, addr, req.as_bytes()).await.unwrap()
}

fn body_of(resp: &[u8]) -> &[u8] {
    let at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    &resp[at + 4..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_ecdsa_p256() {
    let p = pki(&[NAME]).unwrap();
    let sizes = [0, 1024, 4096, 64 * 1024];
    let f = files(&sizes);
    let f: Vec<(&str, Vec<u8>)> = f.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let server = nginx_with_protocols(&p, NAME, &f, "", "TLSv1.2").unwrap();
    let addr = server.addr;
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    for n in sizes {
        let out = get(&roots, addr, &format!("/f{n}"), false).await;
        let resp = &out.client.response;
        assert!(
            resp.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "{}",
            String::from_utf8_lossy(&resp[..40.min(resp.len())])
        );
        let want: Vec<u8> = (0..n).map(body_byte).collect();
        assert_eq!(body_of(resp), &want[..], "body of /f{n}");
        assert!(String::from_utf8_lossy(resp).contains(&format!("Content-Length: {n}\r\n")));
        let t = &out.client.transcript;
        assert_eq!(t.tls_version, 0x0303);
        assert_eq!(t.suite, CipherSuite::EcdheEcdsaAes128GcmSha256);
        assert!(t.close_notify, "nginx closes with close_notify");
        if n == 64 * 1024 {
            assert!(t.received_records >= 5, "{} records", t.received_records);
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(system_binary("openssl").unwrap())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An RSA CA and a leaf for [`NAME`] made with the openssl CLI in `dir` (`ca.pem`,
/// `leaf.pem`, `leaf.key`).
fn rsa_pki(dir: &Path) -> Pki {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Tessera RSA test CA",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=provider.test",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), format!(
        "subjectAltName=DNS:{NAME}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    )).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    Pki {
        ca_pem: read("ca.pem"),
        leaf_der: Vec::new(),
        leaf_key_der: Vec::new(),
        leaf_pem: read("leaf.pem"),
        leaf_key_pem: read("leaf.key"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_server_rsa() {
    let dir = scratch_dir("openssl").unwrap();
    let ca = rsa_pki(&dir).ca_pem;
    let sizes = [1024, 64 * 1024];
    for (f, data) in files(&sizes) {
        std::fs::write(dir.join("www").join(f), data).unwrap();
    }
    let server = s_server_www_with(dir, &["-tls1_2"]).unwrap();
    let addr = server.addr;
    let roots = Roots::from_pem(&ca).unwrap();
    for n in sizes {
        let out = get(&roots, addr, &format!("/f{n}"), true).await;
        let resp = &out.client.response;
        assert!(
            resp.starts_with(b"HTTP/1.0 200 ok\r\n"),
            "{}",
            String::from_utf8_lossy(&resp[..40.min(resp.len())])
        );
        let want: Vec<u8> = (0..n).map(body_byte).collect();
        assert_eq!(body_of(resp), &want[..], "body of /f{n}");
        assert_eq!(
            out.client.transcript.suite,
            CipherSuite::EcdheRsaAes128GcmSha256
        );
    }
}

/// Checks a TLS 1.3 session's transcript and that every node saw the same.
fn tls13(out: &mut mpc_tls::local::LocalOutput) {
    let t = &out.client.transcript;
    assert_eq!(t.tls_version, 0x0304);
    assert_eq!(t.suite, CipherSuite::Aes128GcmSha256);
    assert_eq!(t.received_bytes, out.client.response.len() as u64);
    for n in &out.nodes {
        assert_eq!(&n.transcript, t);
    }
}

/// nginx speaking TLS 1.3 only, with an RSA certificate: its CertificateVerify is RSA-PSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_tls13_only_rsa() {
    let dir = scratch_dir("nginx-rsa").unwrap();
    let p = rsa_pki(&dir);
    let sizes = [0, 4096, 64 * 1024];
    let f = files(&sizes);
    let f: Vec<(&str, Vec<u8>)> = f.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let server = nginx_with_protocols(&p, NAME, &f, "", "TLSv1.3").unwrap();
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    for n in sizes {
        let mut out = get(&roots, server.addr, &format!("/f{n}"), false).await;
        let resp = &out.client.response;
        assert!(resp.starts_with(b"HTTP/1.1 200 OK\r\n"));
        let want: Vec<u8> = (0..n).map(body_byte).collect();
        assert_eq!(body_of(resp), &want[..], "body of /f{n}");
        assert!(
            out.client.transcript.close_notify,
            "nginx closes with close_notify"
        );
        tls13(&mut out);
    }
}

/// `openssl s_server -tls1_3` with an ECDSA P-256 certificate and P-256 as its only group.
/// It waits for the client's close_notify before closing the connection, so the client
/// learns that the provider closed from the nodes, who revealed the alert's content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_server_tls13_ecdsa_p256() {
    let p = pki(&[NAME]).unwrap();
    let dir = scratch_dir("openssl13").unwrap();
    std::fs::write(dir.join("leaf.pem"), &p.leaf_pem).unwrap();
    std::fs::write(dir.join("leaf.key"), &p.leaf_key_pem).unwrap();
    let sizes = [1024, 64 * 1024];
    for (f, data) in files(&sizes) {
        std::fs::write(dir.join("www").join(f), data).unwrap();
    }
    let server = s_server_www_with(dir, &["-tls1_3", "-groups", "P-256"]).unwrap();
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    for n in sizes {
        let mut out = get(&roots, server.addr, &format!("/f{n}"), true).await;
        let want: Vec<u8> = (0..n).map(body_byte).collect();
        assert_eq!(body_of(&out.client.response), &want[..], "body of /f{n}");
        assert!(out.client.transcript.close_notify);
        tls13(&mut out);
    }
}

/// GnuTLS speaking TLS 1.3 only, asking for an optional client certificate: the client's
/// flight carries an empty Certificate before its Finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gnutls_tls13_only() {
    let p = pki(&[NAME]).unwrap();
    let body: Vec<u8> = (0..3000).map(body_byte).collect();
    let priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
    let server = tessera_provider::gnutls_serv(&p, priority, &body, &[]).unwrap();
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    let mut out = get(&roots, server.addr, "/", false).await;
    assert!(out.client.response.starts_with(b"HTTP/1.0 200"));
    assert_eq!(body_of(&out.client.response), &body[..]);
    tls13(&mut out);
}

/// GnuTLS asks every client for an optional certificate unless told not to: Tessera
/// answers with an empty Certificate, as a browser without one does, and the session goes
/// through. With `--require-client-cert` the server refuses the handshake, and the error
/// says that it had asked for a certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gnutls_tls12_asking_for_an_optional_client_certificate() {
    let p = pki(&[NAME]).unwrap();
    let body: Vec<u8> = (0..3000).map(body_byte).collect();
    let priority = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
    let server = tessera_provider::gnutls_serv(&p, priority, &body, &[]).unwrap();
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    let out = get(&roots, server.addr, "/", false).await;
    assert!(out.client.response.starts_with(b"HTTP/1.0 200"));
    assert_eq!(body_of(&out.client.response), &body[..]);
    for n in &out.nodes {
        assert_eq!(n.transcript, out.client.transcript);
    }
    drop(server);

    let server =
        tessera_provider::gnutls_serv(&p, priority, &body, &["--require-client-cert"]).unwrap();
    let mut cfg = LocalConfig::new(roots.clone());
    cfg.timeout = Duration::from_secs(60);
    let req = format!("GET / HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n");
    let e = fetch(&cfg, NAME, server.addr, req.as_bytes())
        .await
        .expect_err("a server requiring a client certificate served Tessera")
        .to_string();
    assert!(e.contains("asked for a client certificate"), "{e}");
}
