//! The after-close disclosure. First the circuit alone, evaluated in the clear on responses
//! encrypted with a known key, against what a lying client might claim (the JSON field rule's
//! adversarial cases: a key inside another string value, a value cut at an escaped quote, a
//! wrong length, duplicate keys, nested objects). Then whole sessions where a node deviates in
//! the disclosure: every deviation ends in an abort, never in a wrong result.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aes::cipher::{BlockEncrypt, KeyInit};
use mpc::circuit::aes::expand_key;
use mpc::circuit::bytes_to_bits;
use mpc_tls::client::DisclosurePlan;
use mpc_tls::disclose::{
    commitment, disclosure_spec, locate_all, public_input, read_output, Cmp, DateExpr,
    DiscloseError, DisclosureRequest, FieldRef, Plan, PredicateReq, Rhs, UidCommittee, UidReq,
};
use mpc_tls::local::{fetch_disclosing, LocalConfig};
use mpc_tls::node::UidKey;
use mpc_tls::provider::{json_response, pki, serve_responses};
use mpc_tls::verify::Roots;
use uid_prf::canon::{DateFormat, FieldKind};
use uid_prf::shamir::{keygen_combine, keygen_deal};

const KEY: [u8; 16] = [0x42; 16];
const IV: [u8; 4] = [1, 2, 3, 4];

/// Encrypts `plain` as records of `rec` bytes with explicit nonces 1, 2, …
fn encrypt(plain: &[u8], rec: usize) -> Vec<(Vec<u8>, [u8; 8])> {
    let aes = aes::Aes128::new(&KEY.into());
    plain
        .chunks(rec)
        .enumerate()
        .map(|(r, chunk)| {
            let explicit = (r as u64 + 1).to_be_bytes();
            let mut ct = chunk.to_vec();
            for (j, blk) in ct.chunks_mut(16).enumerate() {
                let mut counter = [0u8; 16];
                counter[..4].copy_from_slice(&IV);
                counter[4..12].copy_from_slice(&explicit);
                counter[12..].copy_from_slice(&(j as u32 + 2).to_be_bytes());
                let mut b = counter.into();
                aes.encrypt_block(&mut b);
                for (c, k) in blk.iter_mut().zip(b.iter()) {
                    *c ^= k;
                }
            }
            (ct, explicit)
        })
        .collect()
}

/// Evaluates the disclosure circuit in the clear as the committee would for a client that
/// claims `lens` (value lengths) and `salts`.
fn evaluate(
    plain: &[u8],
    req: &DisclosureRequest,
    lens: &[u8],
    salts: &[[u8; 16]],
    uid: Option<(UidCommittee, [[u8; 16]; 3])>,
) -> Result<mpc_tls::disclose::DisclosureResult, DiscloseError> {
    req.check(plain.len())?;
    let records = encrypt(plain, 100);
    let lens_rec: Vec<usize> = records.iter().map(|r| r.0.len()).collect();
    let plan = Plan::new(req, &lens_rec);
    let time = 1_763_700_000; // 2025-11-21
    let built = disclosure_spec(req, &plan, 0, 3, time, uid.as_ref().map(|u| u.0))?;
    let mut input = bytes_to_bits(&expand_key(&KEY));
    input.extend(bytes_to_bits(&IV));
    let public = public_input(&plan, |r| records[r].1, |r| records[r].0.clone());
    input.extend(bytes_to_bits(&public));
    input.extend(bytes_to_bits(&public));
    let mut shared = lens.to_vec();
    for s in salts {
        shared.extend_from_slice(s);
    }
    input.extend(bytes_to_bits(&shared));
    if let Some((_, shares)) = uid {
        for s in shares {
            input.extend(bytes_to_bits(&s));
        }
    }
    let out = built.spec.circuit().evaluate(&input).unwrap();
    read_output(req, &built.layout, &out, built.resolved)
}

fn field(resp: &[u8], key: &str, nth: usize) -> (FieldRef, Vec<u8>) {
    let l = locate_all(resp, key).into_iter().nth(nth).unwrap();
    (l.field, l.value)
}

fn request(fields: Vec<FieldRef>) -> DisclosureRequest {
    let n = fields.len() as u8;
    DisclosureRequest {
        fields,
        commit: (0..n).collect(),
        ..Default::default()
    }
}

const BODY: &str = r#"{"note":"x,\"name\":\"Mallory\"","name":"Al\"ice","a":{"name":"Nested"},"name":"Dup","birthdate":"01.04.1990","balance":"1234.50"}"#;

fn response() -> Vec<u8> {
    json_response(BODY)
}

#[test]
fn honest_fields_commit_to_their_values() {
    let r = response();
    let (f, v) = field(&r, "name", 0);
    assert_eq!(v, br#"Al\"ice"#);
    let salt = [9u8; 16];
    let res = evaluate(&r, &request(vec![f]), &[v.len() as u8], &[salt], None).unwrap();
    assert_eq!(res.commitments, vec![commitment(&salt, &v).unwrap()]);
}

#[test]
fn a_key_inside_another_string_is_not_a_field() {
    let r = response();
    // The client points at the `,` before `\"name\"` inside the note's value.
    let inner = BODY.find(r#",\"name\""#).unwrap();
    let at = (r.len() - BODY.len() + inner) as u32;
    // Whatever whitespace counts and length it claims, the rule fails (the key's quote is
    // preceded by a backslash).
    for n in [0u8, 7, 11] {
        let f = FieldRef {
            key: "name".into(),
            at,
            ws: [1, 0, 0],
        };
        let e = evaluate(&r, &request(vec![f]), &[n], &[[0; 16]], None).unwrap_err();
        assert!(matches!(e, DiscloseError::NotAField { .. }), "{e}");
    }
    // And the locator never offers it.
    assert!(locate_all(&r, "name").iter().all(|l| l.value != b"Mallory"));
}

#[test]
fn a_value_cannot_be_cut_or_extended() {
    let r = response();
    let (f, v) = field(&r, "name", 0);
    for n in 0..=(v.len() as u8 + 3) {
        let res = evaluate(&r, &request(vec![f.clone()]), &[n], &[[1; 16]], None);
        if n as usize == v.len() {
            assert!(res.is_ok());
        } else {
            // n = 3 would end at the escaped quote in Al\"ice.
            assert!(
                matches!(res, Err(DiscloseError::NotAField { .. })),
                "n = {n}"
            );
        }
    }
    // A shifted offset is refused too.
    let mut g = f.clone();
    g.at += 1;
    assert!(evaluate(&r, &request(vec![g]), &[v.len() as u8], &[[1; 16]], None).is_err());
}

#[test]
fn duplicate_and_nested_keys_follow_the_documented_rule() {
    // Both satisfy the rule; the offset in the notarization says which one was used.
    let r = response();
    let all = locate_all(&r, "name");
    let values: Vec<&[u8]> = all.iter().map(|l| l.value.as_slice()).collect();
    assert_eq!(values, vec![&br#"Al\"ice"#[..], b"Nested", b"Dup"]);
    for l in &all {
        let res = evaluate(
            &r,
            &request(vec![l.field.clone()]),
            &[l.value.len() as u8],
            &[[2; 16]],
            None,
        )
        .unwrap();
        assert_eq!(res.commitments[0], commitment(&[2; 16], &l.value).unwrap());
    }
}

#[test]
fn predicates_on_dates_decimals_and_text() {
    let r = response();
    let (bd, bv) = field(&r, "birthdate", 0);
    let (bal, balv) = field(&r, "balance", 0);
    let (nm, nv) = field(&r, "name", 2);
    let p = |field, cmp, rhs, date_format| PredicateReq {
        field,
        cmp,
        rhs,
        date_format,
    };
    let today18 = Rhs::Date(DateExpr::TodayMinus {
        years: 18,
        months: 0,
        days: 0,
    });
    let req = DisclosureRequest {
        fields: vec![bd, bal, nm],
        commit: vec![],
        predicates: vec![
            p(0, Cmp::Le, today18.clone(), Some(DateFormat::DayDot)),
            p(
                0,
                Cmp::Gt,
                Rhs::Date(DateExpr::Fixed("1990-04-01".into())),
                Some(DateFormat::DayDot),
            ),
            p(
                0,
                Cmp::Ge,
                Rhs::Date(DateExpr::Fixed("1990-04-01".into())),
                Some(DateFormat::DayDot),
            ),
            p(1, Cmp::Ge, Rhs::Decimal(1_234_500_000), None),
            p(1, Cmp::Lt, Rhs::Decimal(1_000_000_000), None),
            p(2, Cmp::Eq, Rhs::Text("Dup".into()), None),
            p(2, Cmp::Ne, Rhs::Text("Du".into()), None),
        ],
        uid: None,
    };
    let lens = [bv.len() as u8, balv.len() as u8, nv.len() as u8];
    let res = evaluate(&r, &req, &lens, &[], None).unwrap();
    assert_eq!(
        res.predicates,
        vec![true, false, true, true, false, true, true]
    );
    assert_eq!(res.resolved[0].as_deref(), Some("2007-11-21"));
    // A date predicate on a field that is not a date in that format cannot be evaluated.
    let mut bad = req.clone();
    bad.predicates = vec![p(2, Cmp::Le, today18, Some(DateFormat::Iso))];
    let e = evaluate(&r, &bad, &lens, &[], None).unwrap_err();
    assert!(matches!(e, DiscloseError::BadOperand(..)), "{e}");
}

fn uid_shares(xs: [u16; 3]) -> [uid_prf::shamir::Share; 3] {
    let mut rng = rand::thread_rng();
    let dealt: Vec<_> = xs
        .iter()
        .map(|_| keygen_deal(&xs, 2, &mut rng).unwrap())
        .collect();
    [0, 1, 2].map(|i| {
        let mine: Vec<_> = dealt.iter().map(|d| d[i].clone()).collect();
        keygen_combine(xs[i], &mine).unwrap()
    })
}

#[test]
fn nullifier_matches_the_reference_and_catches_a_bad_share() {
    let r = json_response(r#"{"name":"Alice  SMITH","birthdate":"01.04.1990","x":""}"#);
    let (n, nv) = field(&r, "name", 0);
    let (b, bv) = field(&r, "birthdate", 0);
    let xs = [1, 2, 3];
    let shares = uid_shares(xs);
    let ys = [0, 1, 2].map(|i| shares[i].y.to_bytes());
    let committee = UidCommittee { xs, t: 2 };
    let req = DisclosureRequest {
        fields: vec![n, b],
        uid: Some(UidReq {
            fields: vec![
                (0, FieldKind::Text),
                (1, FieldKind::Date(DateFormat::DayDot)),
            ],
            scope: "vote".into(),
        }),
        ..Default::default()
    };
    let lens = [nv.len() as u8, bv.len() as u8];
    let res = evaluate(&r, &req, &lens, &[], Some((committee, ys))).unwrap();
    let key = uid_prf::shamir::combine(&shares, 2).unwrap();
    let want = uid_prf::canon::nullifier(
        &key,
        &[
            (FieldKind::Text, "alice smith"),
            (FieldKind::Date(DateFormat::DayDot), "1990-04-01"),
        ],
        "vote",
    )
    .unwrap();
    assert_eq!(res.nullifier, Some(want));
    // One node feeding a wrong share: abort, never a wrong nullifier.
    for i in 0..3 {
        let mut bad = ys;
        bad[i][15] ^= 1;
        let e = evaluate(&r, &req, &lens, &[], Some((committee, bad))).unwrap_err();
        assert_eq!(e, DiscloseError::InconsistentShares);
    }
    // An empty value cannot go into a nullifier.
    let (x, _) = field(&r, "x", 0);
    let mut empty = req.clone();
    empty.fields.push(x);
    empty.uid.as_mut().unwrap().fields = vec![(2, FieldKind::Text)];
    let e = evaluate(
        &r,
        &empty,
        &[lens[0], lens[1], 0],
        &[],
        Some((committee, ys)),
    )
    .unwrap_err();
    assert!(matches!(e, DiscloseError::NotCanonical(_)), "{e}");
}

#[test]
fn a_deviating_node_aborts_the_disclosure() {
    let body = r#"{"name":"Alice","birthdate":"1990-04-01"}"#;
    let p = pki(&["provider.test"]).unwrap();
    let (addr, _h) = serve_responses(&p, vec![json_response(body); 3]).unwrap();
    let xs = [1, 2, 3];
    let shares = uid_shares(xs);
    let committee = UidCommittee { xs, t: 2 };
    let mut cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
    cfg.uid = [0, 1, 2].map(|i| {
        Some(UidKey {
            share: shares[i].clone(),
            committee,
        })
    });
    let req = mpc_tls::provider::http_request("provider.test", "/", 64);
    let planner = |resp: &[u8]| {
        let l = locate_all(resp, "name").remove(0);
        let lens = vec![l.value.len() as u8];
        DisclosurePlan {
            request: DisclosureRequest {
                fields: vec![l.field],
                commit: vec![0],
                predicates: vec![],
                uid: Some(UidReq {
                    fields: vec![(0, FieldKind::Text)],
                    scope: "s".into(),
                }),
            },
            lens,
            salts: vec![[5; 16]],
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Honest: every node reports the same result, and the client's commitment check passes.
    let out = rt
        .block_on(fetch_disclosing(
            &cfg,
            "provider.test",
            addr,
            &req,
            Box::new(move |_, r| Ok(planner(r))),
        ))
        .unwrap();
    let d = out.client.disclosure.unwrap();
    assert!(d.result.nullifier.is_some());
    assert!(out
        .nodes
        .iter()
        .all(|n| n.disclosure.as_ref().map(|x| &x.1) == Some(&d.result)));
    // A node feeding a wrong UID share, or a garbler feeding other ciphertext: abort.
    for (node, fault, want) in [
        (1usize, "uid", "inconsistent"),
        (0, "input", "disagree about the response ciphertext"),
    ] {
        let mut c = cfg.clone();
        match fault {
            "uid" => c.faults[node].bad_uid_share = true,
            _ => c.faults[node].bad_disclosure_input = true,
        }
        let r = rt.block_on(fetch_disclosing(
            &c,
            "provider.test",
            addr,
            &req,
            Box::new(move |_, r| Ok(planner(r))),
        ));
        let e = match r {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{fault}: a deviating node did not abort the disclosure"),
        };
        assert!(e.contains(want), "{fault}: {e}");
    }
}

#[test]
fn nullifier_survives_a_leave_and_a_join() {
    let r = json_response(r#"{"name":"Alice Smith"}"#);
    let (n, nv) = field(&r, "name", 0);
    let req = DisclosureRequest {
        fields: vec![n],
        uid: Some(UidReq {
            fields: vec![(0, FieldKind::Text)],
            scope: "vote".into(),
        }),
        ..Default::default()
    };
    let lens = [nv.len() as u8];
    let old = uid_shares([1, 2, 3]);
    let ys = |s: &[uid_prf::shamir::Share; 3]| [0, 1, 2].map(|i| s[i].y.to_bytes());
    let before = evaluate(
        &r,
        &req,
        &lens,
        &[],
        Some((
            UidCommittee {
                xs: [1, 2, 3],
                t: 2,
            },
            ys(&old),
        )),
    )
    .unwrap()
    .nullifier;
    // Node 3 leaves and node 4 joins: nodes 1 and 2 reshare to {1, 2, 4}.
    let mut rng = rand::thread_rng();
    let new_xs = [1u16, 2, 4];
    let dealt: Vec<_> = old[..2]
        .iter()
        .map(|s| uid_prf::shamir::reshare_deal(s, &[1, 2], &new_xs, 2, &mut rng).unwrap())
        .collect();
    let new = [0, 1, 2].map(|i| {
        let mine: Vec<_> = dealt.iter().map(|d| d[i].clone()).collect();
        uid_prf::shamir::reshare_combine(new_xs[i], &mine).unwrap()
    });
    let after = evaluate(
        &r,
        &req,
        &lens,
        &[],
        Some((UidCommittee { xs: new_xs, t: 2 }, ys(&new))),
    )
    .unwrap()
    .nullifier;
    assert!(before.is_some());
    assert_eq!(before, after);
    // The leaver's old share does not fit the new sharing.
    let mut mixed = ys(&new);
    mixed[2] = old[2].y.to_bytes();
    let e = evaluate(
        &r,
        &req,
        &lens,
        &[],
        Some((UidCommittee { xs: new_xs, t: 2 }, mixed)),
    )
    .unwrap_err();
    assert_eq!(e, DiscloseError::InconsistentShares);
}
