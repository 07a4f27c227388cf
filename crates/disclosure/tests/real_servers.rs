//! Disclosures of responses from real servers (Debian packages; `.ci/run` installs them):
//! nginx with gzip enabled (Tessera asks for identity, so the body comes uncompressed), nginx
//! sending a chunked body, a provider that compresses anyway (a clear refusal), all over TLS
//! 1.2; and `openssl s_server` answering HTTP/1.0 with a body delimited by the close, over
//! TLS 1.3 (where the content type of every record is inside it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use disclosure::client::Selection;
use disclosure::expr::parse_predicate;
use disclosure::http::Framing;
use disclosure::local::{fetch_disclosing, LocalDiscloseError, LocalDisclosed};
use disclosure::path::Path;
use disclosure::request::ByteRange;
use mpc_tls::local::LocalConfig;
use mpc_tls::server_auth::Roots;
use tessera_provider::{nginx_with_protocols, pki, s_server_www, scratch_dir};

const NAME: &str = "provider.test";
const PROFILE: &str = r#"{"user":{"name":"Alice Smith","age":36,"address":{"country":"US"}},"friends":[{"name":"Alan Turing"}],"pad":"zzz zzz zzz"}"#;

fn request(target: &str, encoding: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {NAME}\r\nAccept: application/json\r\nAccept-Encoding: {encoding}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

fn selection() -> Selection {
    Selection {
        reveal: vec![
            Path::parse("$.user.address.country").unwrap(),
            Path::parse("$.friends[0].name").unwrap(),
        ],
        predicates: vec![parse_predicate("$.user.age>=18").unwrap()],
        ..Default::default()
    }
}

async fn prove(
    roots: &Roots,
    addr: SocketAddr,
    req: &[u8],
    sel: &Selection,
) -> Result<LocalDisclosed, LocalDiscloseError> {
    let mut cfg = LocalConfig::new(roots.clone());
    cfg.timeout = std::time::Duration::from_secs(60);
    fetch_disclosing(&cfg, &Default::default(), NAME, addr, req, sel).await
}

const NGINX_EXTRA: &str = "  gzip on;\n  gzip_types application/json;\n  gzip_min_length 1;\n  \
    location /chunked/ {\n   sub_filter_types application/json;\n   sub_filter 'zzz' 'zz!';\n   sub_filter_once off;\n  }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_with_gzip_enabled_and_a_chunked_body() {
    let p = pki(&[NAME]).unwrap();
    // TLS 1.2 here; openssl s_server below speaks TLS 1.3.
    let server = nginx_with_protocols(
        &p,
        NAME,
        &[
            ("profile.json", PROFILE.as_bytes().to_vec()),
            ("chunked/profile.json", PROFILE.as_bytes().to_vec()),
        ],
        NGINX_EXTRA,
        "TLSv1.2",
    )
    .unwrap();
    let roots = Roots::from_pem(&p.ca_pem).unwrap();

    // gzip is on, but Tessera asks for identity: a plain body with Content-Length.
    let out = prove(
        &roots,
        server.addr,
        &request("/profile.json", "identity"),
        &selection(),
    )
    .await
    .unwrap();
    assert_eq!(out.result.status, 200);
    assert_eq!(out.result.predicates, vec![true]);
    assert_eq!(out.plan.values[0], br#""US""#);
    assert_eq!(out.plan.values[1], br#""Alan Turing""#);
    assert!(matches!(
        out.plan.request.http.framing,
        Framing::Length(n) if n as usize == PROFILE.len()
    ));

    // A filtered response has no length: nginx sends it chunked.
    let out = prove(
        &roots,
        server.addr,
        &request("/chunked/profile.json", "identity"),
        &selection(),
    )
    .await
    .unwrap();
    assert!(
        matches!(out.plan.request.http.framing, Framing::Chunked { .. }),
        "{:?}",
        out.plan.request.http.framing
    );
    assert_eq!(out.plan.values[1], br#""Alan Turing""#);
    assert_eq!(out.result.predicates, vec![true]);

    // A client that asks for gzip gets it, and the proof is refused with the reason.
    let e = prove(
        &roots,
        server.addr,
        &request("/profile.json", "gzip"),
        &selection(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("Content-Encoding: gzip"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_server_http10_body_to_the_close() {
    let dir = scratch_dir("s_server").unwrap();
    let p = pki(&[NAME]).unwrap();
    std::fs::write(dir.join("leaf.pem"), &p.leaf_pem).unwrap();
    std::fs::write(dir.join("leaf.key"), &p.leaf_key_pem).unwrap();
    std::fs::write(dir.join("www/profile.json"), PROFILE).unwrap();
    let server = s_server_www(dir).unwrap();
    let addr = server.addr;
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    let start = PROFILE.find("Alice").unwrap() as u32;
    let sel = Selection {
        reveal: vec![Path::parse("$.user.name").unwrap()],
        reveal_ranges: vec![ByteRange {
            start,
            end: start + 11,
        }],
        ..Default::default()
    };
    let out = prove(&roots, addr, &request("/profile.json", "identity"), &sel)
        .await
        .unwrap();
    assert_eq!(out.plan.request.http.framing, Framing::Close);
    assert_eq!(out.result.status, 200);
    assert_eq!(out.plan.values[0], br#""Alice Smith""#);
    assert_eq!(out.plan.values[1], b"Alice Smith");
}
