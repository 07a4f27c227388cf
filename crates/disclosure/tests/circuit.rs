//! The disclosure's circuits, evaluated in the clear on responses encrypted with known keys
//! (`common`): what an honest client gets, and what a deviating client or node gets instead
//! — always an error, never another value, never a second nullifier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use disclosure::client::Selection;
use disclosure::expr::parse_predicate;
use disclosure::http::{Framing, HeadLine};
use disclosure::path::Path;
use disclosure::request::Target;

fn paths(v: &[&str]) -> Vec<Path> {
    v.iter().map(|p| Path::parse(p).unwrap()).collect()
}

fn preds(v: &[&str]) -> Vec<disclosure::expr::PredicateExpr> {
    v.iter().map(|p| parse_predicate(p).unwrap()).collect()
}

const PROFILE: &str = r#"{"user":{"name":"Al\"ice","age":119,"birthdate":"1990-04-01","nationality":"DE","verified":true,"middle":null,"score":-3.25,"address":{"city":"Springfield","country":"US"}},"account":{"balance":1234.56,"limit":"2500.00"},"friends":[{"name":"Alan Turing"},{"name":"Ada"}]}"#;

#[test]
fn an_honest_client_gets_every_value_and_predicate() {
    let sel = Selection {
        reveal: paths(&[
            "$.user.name",
            "$.user.age",
            "$.friends[1].name",
            "$.user.address",
            "$.user.middle",
        ]),
        commit: paths(&["$.account.balance"]),
        predicates: preds(&[
            "$.user.age>=18",
            "$.user.age<119",
            "$.account.balance>=1000",
            "$.account.balance<1234.57",
            "$.user.middle==null",
            "$.user.name==null",
        ]),
        ..Default::default()
    };
    let (plan, out) = honest(&sel, &ok_json(PROFILE), 100, None);
    let r = out.result.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.predicates, vec![true, false, true, true, true, false]);
    let values: Vec<&[u8]> = plan.values.iter().map(Vec::as_slice).collect();
    assert_eq!(
        values,
        vec![
            &br#""Al\"ice""#[..],
            b"119",
            br#""Ada""#,
            br#"{"city":"Springfield","country":"US"}"#,
            b"null",
            b"1234.56",
        ]
    );
    for (k, t) in plan.request.commit.iter().enumerate() {
        let cap = plan.request.target_capacity(*t).unwrap();
        assert_eq!(
            notarization::commitment_hash(&plan.salts[k], &plan.values[k], cap),
            Some(r.commitments[k])
        );
    }
    // Every type of operand.
    let sel = Selection {
        predicates: preds(&[
            "$.account.limit==2500",
            "$.account.limit>2500.001",
            "$.user.score<-3",
            "$.user.score>=-3.25",
            "$.user.birthdate<=today-18y",
            "$.user.birthdate>1990-04-01",
            "$.user.nationality in [\"DE\",\"FR\",\"NL\"]",
            "$.user.nationality!=FR",
            "$.user.verified==true",
            "$.user.verified!=true",
        ]),
        ..Default::default()
    };
    let (_, out) = honest(&sel, &ok_json(PROFILE), 100, None);
    let r = out.result.unwrap();
    assert_eq!(
        r.predicates,
        vec![true, false, true, true, true, false, true, true, true, false]
    );
    assert_eq!(r.resolved[4].as_deref(), Some("2007-11-21"));
    assert_eq!(r.resolved[5].as_deref(), Some("1990-04-01"));
}

#[test]
fn the_same_values_through_chunked_framing_and_small_records() {
    let sel = Selection {
        reveal: paths(&["$.user.address.country", "$.friends[0].name"]),
        predicates: preds(&["$.user.age>=18"]),
        ..Default::default()
    };
    // Chunks of 7 bytes split keys, values and escapes; records of 33 bytes split chunks.
    let (plan, out) = honest(&sel, &chunked_json(PROFILE, 7), 33, None);
    let r = out.result.unwrap();
    assert_eq!(r.predicates, vec![true]);
    assert_eq!(plan.values[0], br#""US""#);
    assert_eq!(plan.values[1], br#""Alan Turing""#);
    assert!(matches!(plan.request.http.framing, Framing::Chunked { .. }));
}

#[test]
fn raw_ranges_of_a_body_that_is_not_json() {
    let html = "<html><body><p id=\"name\">Alice Smith</p><p>born 1990</p></body></html>";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{html}\r\n0\r\n\r\n",
        html.len()
    );
    let start = html.find("Alice").unwrap() as u32;
    let sel = Selection {
        reveal_ranges: vec![disclosure::request::ByteRange {
            start,
            end: start + 11,
        }],
        ..Default::default()
    };
    let (plan, out) = honest(&sel, response.as_bytes(), 50, None);
    let r = out.result.unwrap();
    assert_eq!(plan.values[0], b"Alice Smith");
    assert_eq!(
        notarization::commitment_hash(&plan.salts[0], b"Alice Smith", 11),
        Some(r.commitments[0])
    );
    // Not JSON: a path is refused (before the session, by the client's own scan).
    let request = get("/", "provider.test");
    let bad = Selection {
        reveal: paths(&["$.name"]),
        ..Default::default()
    };
    let e = disclosure::client::plan(&bad, &request, response.as_bytes(), &mut rand::thread_rng())
        .unwrap_err();
    assert!(e.to_string().contains("value at $ is not an object"), "{e}");
}

#[test]
fn a_long_string_is_revealed_whole() {
    let long = "x\\\"y".repeat(400); // 1,600 bytes of JSON text, 1,200 characters
    let body = format!(r#"{{"bio":"{long}","n":1}}"#);
    let sel = Selection {
        reveal: paths(&["$.bio"]),
        ..Default::default()
    };
    let (plan, out) = honest(&sel, &ok_json(&body), 16 * 1024, None);
    out.result.unwrap();
    assert_eq!(plan.request.fields[0].capacity, 4096);
    let v: String = serde_json::from_slice(&plan.values[0]).unwrap();
    assert_eq!(v.len(), 1200);
}

#[test]
fn predicates_on_the_wrong_type_are_refused_never_false() {
    let request = get("/api/me", "provider.test");
    let response = ok_json(r#"{"a":"abc","n":1e5,"z":"007","b":true,"s":"x\"y","lz":007}"#);
    // The client refuses before the session…
    for (p, why) in [
        ("$.a>=18", "a number"),
        ("$.n>=18", "a number"),
        ("$.b==x", "a string"),
        ("$.s==x", "a string"),
        ("$.a==true", "true or false"),
        ("$.lz>1", "a number"),
    ] {
        let sel = Selection {
            predicates: preds(&[p]),
            ..Default::default()
        };
        let e = disclosure::client::plan(&sel, &request, &response, &mut rand::thread_rng())
            .unwrap_err();
        assert!(e.to_string().contains(why), "{p}: {e}");
    }
    // …and a client that asks anyway gets the committee's refusal, not `false`.
    let sel = Selection {
        predicates: preds(&["$.z>=5"]),
        ..Default::default()
    };
    let honest_plan = plan_for(&sel, &request, &response);
    for (p, field) in [
        ("$.a>=18", "$.a"),
        ("$.n>=18", "$.n"),
        ("$.b==x", "$.b"),
        ("$.s==x", "$.s"),
        ("$.a==true", "$.a"),
        ("$.lz>1", "$.lz"),
    ] {
        let mut req = honest_plan.request.clone();
        req.fields[0].path = Path::parse(field).unwrap();
        let e = parse_predicate(p).unwrap();
        req.predicates[0].cmp = e.cmp;
        req.predicates[0].rhs = e.rhs;
        let out = run_request(
            &req,
            &response,
            100,
            &request,
            &[],
            None,
            Deviation::default(),
        );
        let err = out.result.unwrap_err();
        assert!(err.contains("cannot be evaluated"), "{p}: {err}");
    }
    // "007" as a string is a numeric string.
    let out = run_request(
        &honest_plan.request,
        &response,
        100,
        &request,
        &[],
        None,
        Deviation::default(),
    );
    assert_eq!(out.result.unwrap().predicates, vec![true]);
}

/// The issue a path rule must close: a client choosing which occurrence of a key (a
/// friend's name, a key of another object, a duplicate) feeds the nullifier.
#[test]
fn a_deviating_client_cannot_fork_the_nullifier() {
    let (shares, uid) = uid_shares([1, 2, 3]);
    let body = r#"{"user":{"name":"Alice Smith","id":7},"friends":[{"name":"Alan Turing"}],"page":{"name":"Bob"}}"#;
    let response = ok_json(body);
    let sel = Selection {
        uid_fields: paths(&["$.user.name"]),
        scope: Some("vote".into()),
        ..Default::default()
    };
    let request = get("/api/me", "provider.test");
    let p = plan_for(&sel, &request, &response);
    let out = run_request(
        &p.request,
        &response,
        64,
        &request,
        &[],
        Some(&uid),
        Deviation::default(),
    );
    let key = uid_prf::shamir::combine(&shares, 2).unwrap();
    let want = uid_prf::canon::nullifier(
        &key,
        &[(uid_prf::canon::FieldKind::Text, "alice smith")],
        "vote",
    )
    .unwrap();
    assert_eq!(out.result.unwrap().nullifier, Some(want));

    // 1. A key inside another object: `$.name` does not exist, whatever object has a `name`.
    let mut req = p.request.clone();
    req.fields[0].path = Path::parse("$.name").unwrap();
    let e = run_request(
        &req,
        &response,
        64,
        &request,
        &[],
        Some(&uid),
        Deviation::default(),
    )
    .result
    .unwrap_err();
    assert!(e.contains("no value at $.name"), "{e}");

    // 2. A friend's name can only be had under its own path, which the notarization states.
    let mut req = p.request.clone();
    req.fields[0].path = Path::parse("$.friends[0].name").unwrap();
    let r = run_request(
        &req,
        &response,
        64,
        &request,
        &[],
        Some(&uid),
        Deviation::default(),
    )
    .result
    .unwrap();
    assert_ne!(r.nullifier, Some(want));
    assert_eq!(
        req.uid_field_text(0, uid_prf::canon::FieldKind::Text)
            .unwrap(),
        "$.friends[0].name:text"
    );

    // 3. A duplicate key on the path, before or after: refused.
    for dup in [
        r#"{"user":{"name":"Alice Smith","name":"Mallory"}}"#,
        r#"{"user":{"name":"Mallory","id":1,"name":"Alice Smith"}}"#,
        r#"{"user":{"name":"Alice Smith"},"user":{"name":"Mallory"}}"#,
        r#"{"user":{"name":"Alice Smith","na\u006de":"Mallory"}}"#,
    ] {
        let response = ok_json(dup);
        let e = disclosure::client::plan(&sel, &request, &response, &mut rand::thread_rng())
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice") || e.contains("escape"), "{dup}: {e}");
        // A client that sends the request anyway gets the committee's refusal.
        let mut req = p.request.clone();
        req.http.lines[0] = HeadLine {
            at: req.http.lines[0].at,
            text: format!("Content-Length: {}", dup.len()),
        };
        req.http.framing = Framing::Length(dup.len() as u32);
        let e = run_request(
            &req,
            &response,
            64,
            &request,
            &[],
            Some(&uid),
            Deviation::default(),
        )
        .result
        .unwrap_err();
        assert!(e.contains("twice") || e.contains("escape"), "{dup}: {e}");
    }

    // 4. A lying layout: chunk framing declared so that the friend's object would look like
    //    the top level. The framing check fails.
    let chunked = chunked_json(body, 1000);
    let honest_chunked = plan_for(&sel, &request, &chunked);
    let mut req = honest_chunked.request.clone();
    let friend = body.find(r#"{"name":"Alan"#).unwrap();
    if let Framing::Chunked { sizes, .. } = &mut req.http.framing {
        sizes[0] = format!("{:x}", body.len() - friend);
    }
    let e = run_request(
        &req,
        &chunked,
        64,
        &request,
        &[],
        Some(&uid),
        Deviation::default(),
    )
    .result
    .unwrap_err();
    assert!(!e.is_empty());
    // 5. A head declared longer than it is (starting the body inside it), or shorter.
    for delta in [-2i64, 2, 9] {
        let mut req = p.request.clone();
        req.http.head_len = (req.http.head_len as i64 + delta) as u32;
        if let Framing::Length(n) = &mut req.http.framing {
            *n = (*n as i64 - delta) as u32;
        }
        req.http.lines[0].text = format!("Content-Length: {}", (body.len() as i64 - delta));
        let e = run_request(
            &req,
            &response,
            64,
            &request,
            &[],
            Some(&uid),
            Deviation::default(),
        )
        .result
        .unwrap_err();
        assert!(!e.is_empty(), "head {delta}");
    }
}

#[test]
fn a_field_never_comes_from_a_header() {
    let body = r#"{"id":1}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\nX-Profile: {{\"name\":\"Mallory\"}}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let sel = Selection {
        reveal: paths(&["$.name"]),
        ..Default::default()
    };
    let request = get("/api/me", "provider.test");
    let e = disclosure::client::plan(&sel, &request, response.as_bytes(), &mut rand::thread_rng())
        .unwrap_err();
    assert!(e.to_string().contains("no value at $.name"), "{e}");
}

#[test]
fn the_http_checks_catch_a_lying_layout() {
    let sel = Selection {
        reveal: paths(&["$.id"]),
        ..Default::default()
    };
    let request = get("/api/me", "provider.test");
    let body = r#"{"id":1}"#;
    // A gzip line the client leaves out of its layout.
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Encoding: gzip\r\n\r\n{body}",
        body.len()
    );
    let e = disclosure::client::plan(&sel, &request, response.as_bytes(), &mut rand::thread_rng())
        .unwrap_err();
    assert!(e.to_string().contains("Content-Encoding: gzip"), "{e}");
    let clean = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Pad: gzip+++++++++++\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(clean.len(), response.len());
    let p = plan_for(&sel, &request, clean.as_bytes());
    let e = run_request(
        &p.request,
        response.as_bytes(),
        64,
        &request,
        &p.salts,
        None,
        Deviation::default(),
    )
    .result
    .unwrap_err();
    assert!(e.contains("framing headers"), "{e}");
    // A request line other than the one sent.
    let mut req = p.request.clone();
    req.http.target = "/api/other".into();
    let other = get("/api/me", "provider.test");
    let e = run_request(
        &req,
        clean.as_bytes(),
        64,
        &other,
        &p.salts,
        None,
        Deviation::default(),
    )
    .result
    .unwrap_err();
    assert!(e.contains("request line"), "{e}");
    // Another status than the response's is impossible: the status is read from the bytes.
    let not_found = clean.replacen("200 OK", "404 No!", 1);
    let p2 = plan_for(&sel, &request, not_found.as_bytes());
    let r = run_request(
        &p2.request,
        not_found.as_bytes(),
        64,
        &request,
        &p2.salts,
        None,
        Deviation::default(),
    );
    assert_eq!(r.result.unwrap().status, 404);
}

#[test]
fn deviating_nodes_abort() {
    let (_, uid) = uid_shares([1, 2, 4]);
    let sel = Selection {
        reveal: paths(&["$.user.nationality"]),
        uid_fields: paths(&["$.user.address.city"]),
        scope: Some("s".into()),
        ..Default::default()
    };
    let request = get("/api/me", "provider.test");
    let response = ok_json(PROFILE);
    let p = plan_for(&sel, &request, &response);
    let ok = run_request(
        &p.request,
        &response,
        64,
        &request,
        &p.salts,
        Some(&uid),
        Deviation::default(),
    );
    assert!(ok.result.unwrap().nullifier.is_some());
    let run = |dev: Deviation| {
        run_request(
            &p.request,
            &response,
            64,
            &request,
            &p.salts,
            Some(&uid),
            dev,
        )
        .result
        .unwrap_err()
    };
    for party in 0..3 {
        let e = run(Deviation {
            bad_uid_share: Some(party),
        });
        assert!(e.contains("inconsistent"), "{e}");
    }
}

#[test]
fn nesting_deeper_than_the_circuit_follows_is_refused() {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(70), "]".repeat(70));
    let sel = Selection {
        reveal: paths(&["$.a"]),
        ..Default::default()
    };
    let request = get("/api/me", "provider.test");
    let e = disclosure::client::plan(&sel, &request, &ok_json(&deep), &mut rand::thread_rng())
        .unwrap_err();
    assert!(e.to_string().contains("deeper than 63"), "{e}");
    // 60 levels are fine.
    let ok = format!("{{\"a\":{}1{}}}", "[".repeat(60), "]".repeat(60));
    let (p, out) = honest(&sel, &ok_json(&ok), 100, None);
    out.result.unwrap();
    assert_eq!(p.values[0].len(), 121);
}

#[test]
fn commitments_name_their_targets() {
    let sel = Selection {
        commit: paths(&["$['odd key']", "$.friends[0]"]),
        reveal_ranges: vec![disclosure::request::ByteRange { start: 0, end: 4 }],
        ..Default::default()
    };
    let body = r#"{"odd key":[1,2],"friends":[{"n":1}]}"#;
    let (p, out) = honest(&sel, &ok_json(body), 100, None);
    out.result.unwrap();
    let names: Vec<String> = p
        .request
        .commit
        .iter()
        .map(|t| p.request.target_text(*t).unwrap())
        .collect();
    assert_eq!(names, vec!["$['odd key']", "$.friends[0]", "body[0:4]"]);
    assert_eq!(p.request.commit[2], Target::Range(0));
}
