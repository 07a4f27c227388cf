#![allow(clippy::unwrap_used)]
use disclosure::path::{Path, Segment};
use disclosure::scan::{scan_clear, Shape};

fn p(s: &[&str]) -> Path {
    Path::new(
        s.iter()
            .map(|x| match x.parse::<u32>() {
                Ok(i) => Segment::Index(i),
                Err(_) => Segment::Name(x.to_string()),
            })
            .collect(),
    )
    .unwrap()
}

fn run(body: &str, paths: &[&[&str]]) -> Result<Vec<String>, String> {
    let fields: Vec<(Path, usize)> = paths.iter().map(|x| (p(x), 64)).collect();
    let sh = Shape::new(&fields, 64).unwrap();
    scan_clear(&sh, body.as_bytes())
        .map(|v| v.into_iter().map(|r| body[r].to_string()).collect())
        .map_err(|e| e.to_string())
}

#[test]
fn quick() {
    let b = r#"{"user":{"name":"Al\"ice","age":119,"address":{"country":"US"}},"account":{"balance":1234.56},"friends":[{"name":"Alan Turing"},{"name":"Bob"}], "ok": true, "n": null}"#;
    assert_eq!(run(b, &[&["user", "name"]]).unwrap(), vec![r#""Al\"ice""#]);
    assert_eq!(run(b, &[&["user", "age"]]).unwrap(), vec!["119"]);
    assert_eq!(
        run(b, &[&["user", "address", "country"]]).unwrap(),
        vec![r#""US""#]
    );
    assert_eq!(run(b, &[&["account", "balance"]]).unwrap(), vec!["1234.56"]);
    assert_eq!(
        run(b, &[&["friends", "1", "name"]]).unwrap(),
        vec![r#""Bob""#]
    );
    assert_eq!(
        run(b, &[&["friends", "0"]]).unwrap(),
        vec![r#"{"name":"Alan Turing"}"#]
    );
    assert_eq!(run(b, &[&["ok"]]).unwrap(), vec!["true"]);
    assert_eq!(run(b, &[&["n"]]).unwrap(), vec!["null"]);
    assert_eq!(
        run(b, &[&["user", "name"], &["user", "age"], &["ok"]]).unwrap(),
        vec![r#""Al\"ice""#, "119", "true"]
    );
    println!("{:?}", run(b, &[&["name"]]));
    println!("{:?}", run(r#"{"name":"a","name":"b"}"#, &[&["name"]]));
    println!("{:?}", run(r#"{"name":"a"} x"#, &[&["name"]]));
    println!("{:?}", run(r#"{"na\u006de":"a"}"#, &[&["name"]]));
    println!("{:?}", run(r#"{"name":"a""#, &[&["name"]]));
    println!("{:?}", run(r#"{"name":{"x":1}}"#, &[&["name", "0"]]));
}

#[test]
fn circuit_equals_clear_and_cost() {
    use disclosure::logic::{byte_bits, Byte};
    use disclosure::scan::scan_chunk;
    use mpc::circuit::{Bit, Builder};
    let b = r#"{"user":{"name":"Al\"ice","age":119,"address":{"country":"US"}},"account":{"balance":1234.56},"friends":[{"name":"Alan Turing"},{"name":"Bob"}], "ok": true, "n": null}"#;
    for paths in [
        vec![p(&["user", "address", "country"])],
        vec![p(&["name"])],
        vec![p(&["friends", "1", "name"])],
    ] {
        let fields: Vec<(Path, usize)> = paths.iter().map(|x| (x.clone(), 64)).collect();
        let sh = Shape::new(&fields, 64).unwrap();
        let w = sh.state_width();
        let mut bld = Builder::new();
        let st_in = bld.inputs(w);
        let by = bld.inputs(64 * 8);
        let mut st: Vec<Bit> = st_in.clone();
        let bytes: Vec<Byte<Bit>> = by
            .chunks(8)
            .map(|c| std::array::from_fn(|i| c[i]))
            .collect();
        scan_chunk(&mut bld, &sh, &mut st, &bytes);
        let ands = bld.and_count();
        let c = bld.finish(&st).unwrap();
        println!(
            "{paths:?}: {} ANDs per byte (state {w} bits)",
            ands as f64 / 64.0
        );
        let mut clear = vec![false; w];
        let mut circ = vec![false; w];
        for chunk in b.as_bytes().chunks(64) {
            let mut bb: Vec<Byte<bool>> = chunk.iter().map(|&x| byte_bits(x)).collect();
            bb.resize(64, byte_bits(b' '));
            scan_chunk(&mut disclosure::logic::Clear, &sh, &mut clear, &bb);
            let mut input = circ.clone();
            input.extend(bb.iter().flatten());
            circ = c.evaluate(&input).unwrap();
            assert_eq!(circ, clear);
        }
    }
}
