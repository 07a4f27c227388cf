//! Whole sessions with a disclosure, three nodes in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use disclosure::client::Selection;
use disclosure::expr::parse_predicate;
use disclosure::local::fetch_disclosing;
use disclosure::node::DiscloseConfig;
use disclosure::path::Path;
use mpc_tls::local::LocalConfig;
use mpc_tls::provider::{http_request, json_response, pki, serve_responses};
use mpc_tls::verify::Roots;

const BODY: &str = r#"{"user":{"name":"Al\"ice","age":119,"verified":true,"address":{"country":"US"}},"account":{"balance":1234.56},"friends":[{"name":"Alan Turing"}]}"#;

#[test]
fn reveal_paths_and_predicates() {
    let p = pki(&["provider.test"]).unwrap();
    let (addr, _h) = serve_responses(&p, vec![json_response(BODY)]).unwrap();
    let cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
    let req = http_request("provider.test", "/api/me", 64);
    let sel = Selection {
        reveal: vec![
            Path::parse("$.user.address.country").unwrap(),
            Path::parse("$.user.name").unwrap(),
        ],
        predicates: vec![
            parse_predicate("$.user.age>=18").unwrap(),
            parse_predicate("$.account.balance>=1000").unwrap(),
            parse_predicate("$.user.verified==true").unwrap(),
        ],
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t0 = std::time::Instant::now();
    let out = rt
        .block_on(fetch_disclosing(
            &cfg,
            &Default::default() as &[DiscloseConfig; 3],
            "provider.test",
            addr,
            &req,
            &sel,
        ))
        .unwrap();
    println!("{:?} in {:?}", out.result, t0.elapsed());
    assert_eq!(out.result.status, 200);
    assert_eq!(out.result.predicates, vec![true, true, true]);
    assert_eq!(out.plan.values[0], br#""US""#);
    for (_, d) in &out.nodes {
        println!("{:?}", d.timings);
    }
}
