//! The scan as a circuit computes exactly what the scan in the clear computes (the client's
//! prediction): the same generic code, built with the circuit builder and evaluated, on
//! hand-picked and random bodies, chunk after chunk; and what it costs per byte.
#![allow(clippy::unwrap_used)]

use disclosure::logic::{byte_bits, Byte, Clear};
use disclosure::path::Path;
use disclosure::scan::{scan_chunk, scan_clear, Shape, PAD};
use mpc::circuit::Circuit;
use proptest::prelude::*;

fn circuit(sh: &Shape) -> (std::sync::Arc<Circuit>, usize) {
    let c = disclosure::circuit::scan_circuit(sh).unwrap();
    let ands = c.and_count();
    (c, ands)
}

/// Runs `body` through the circuit and through Clear, chunk by chunk, comparing states.
fn same(sh: &Shape, c: &Circuit, body: &[u8]) {
    let mut clear = vec![false; sh.state_width()];
    let mut circ = clear.clone();
    for chunk in body.chunks(sh.chunk()) {
        let mut bb: Vec<Byte<bool>> = chunk.iter().map(|&x| byte_bits(x)).collect();
        bb.resize(sh.chunk(), byte_bits(PAD));
        scan_chunk(&mut Clear, sh, &mut clear, &bb);
        let mut input = circ.clone();
        input.extend(bb.iter().flatten());
        circ = c.evaluate(&input).unwrap();
        assert_eq!(circ, clear);
    }
}

const BODY: &str = r#"{"user":{"name":"Al\"ice","age":119,"address":{"country":"US"}},"account":{"balance":1234.56},"friends":[{"name":"Alan Turing"},{"name":"Bob"}], "ok": true, "n": null}"#;

fn shape(paths: &[&str]) -> Shape {
    let fields: Vec<(Path, usize)> = paths
        .iter()
        .map(|p| (Path::parse(p).unwrap(), 64))
        .collect();
    Shape::new(&fields, 64).unwrap()
}

#[test]
fn circuit_equals_clear_and_what_it_costs() {
    for (paths, at_most) in [
        (&["$.user.address.country"][..], 170.0),
        (&["$.name"][..], 120.0),
        (&["$.friends[1].name"][..], 160.0),
        (&["$.user.name", "$.user.age", "$.ok"][..], 240.0),
    ] {
        let sh = shape(paths);
        let (c, ands) = circuit(&sh);
        let per_byte = ands as f64 / sh.chunk() as f64;
        eprintln!("{paths:?}: {per_byte:.1} AND gates per byte");
        assert!(per_byte <= at_most, "{paths:?}: {per_byte} ANDs per byte");
        same(&sh, &c, BODY.as_bytes());
        // And the clear scan finds what a JSON parser finds (or, for `$.name`, that there
        // is nothing at the top level).
        let v: serde_json::Value = serde_json::from_str(BODY).unwrap();
        let p = paths[0]
            .replace("$.", "/")
            .replace(['.', '['], "/")
            .replace(']', "");
        match scan_clear(&sh, BODY.as_bytes()) {
            Ok(got) => {
                let first: serde_json::Value = serde_json::from_str(&BODY[got[0].clone()]).unwrap();
                assert_eq!(v.pointer(&p), Some(&first), "{p}");
            }
            Err(_) => assert_eq!(v.pointer(&p), None, "{p}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Random bytes from JSON's alphabet: whatever they are (mostly not JSON), the circuit
    /// and the clear scan agree bit for bit.
    #[test]
    fn agree_on_any_bytes(body in prop::collection::vec(
        prop::sample::select(b"{}[],:\"\\ \tnameuser01-.tx\x01".to_vec()), 0..300)) {
        let sh = shape(&["$.user.name", "$[0]"][..1]);
        let (c, _) = circuit(&sh);
        same(&sh, &c, &body);
        let sh = shape(&["$[1][0]"]);
        let (c, _) = circuit(&sh);
        same(&sh, &c, &body);
    }
}
