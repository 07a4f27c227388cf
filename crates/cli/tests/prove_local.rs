//! `tessera prove --local` and `tessera verify` end to end, against a demo JSON provider
//! (rustls, in-process) with its own CA: what a presentation shows and hides, that it
//! resists tampering, and how nullifiers behave across sessions, formats, scopes and people.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tessera_provider::{json_response, pki, serve_responses};

const NAME: &str = "provider.test";

fn tessera(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .expect("run tessera");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        format!("{stdout}{stderr}"),
    )
}

struct Provider {
    addr: String,
    ca: String,
}

fn provider(bodies: &[&str], dir: &Path) -> Provider {
    let p = pki(&[NAME]).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &p.ca_pem).unwrap();
    let (addr, _h) =
        serve_responses(&p, bodies.iter().map(|b| json_response(b)).collect()).unwrap();
    Provider {
        addr: addr.to_string(),
        ca: ca.display().to_string(),
    }
}

fn prove(p: &Provider, state: &Path, out: &Path, extra: &[&str]) -> (i32, String) {
    let url = format!("https://{NAME}/api/me");
    let state = state.display().to_string();
    let out = out.display().to_string();
    let mut args = vec![
        "prove",
        "--local",
        "--state",
        &state,
        "--url",
        &url,
        "--connect",
        &p.addr,
        "--ca",
        &p.ca,
        "--header",
        "Cookie: session=s3cr3t-cookie",
        "-o",
        &out,
    ];
    args.extend_from_slice(extra);
    let (code, _, text) = tessera(&args);
    (code, text)
}

fn verify(proof: &Path, state: &Path) -> (i32, Value, String) {
    tessera(&[
        "verify",
        &proof.display().to_string(),
        "--trust",
        &state.join("group.json").display().to_string(),
        "--json",
    ])
}

const ALICE: &str = r#"{"id":7,"name":"Alice  SMITH","note":"x,\"name\":\"Mallory\"","birthdate":"1990-04-01","nationality":"us","balance":"1234.50","email":"alice@example.com"}"#;
const ALICE_AGAIN: &str =
    r#"{ "nationality" : "US", "name" :" alice smith ", "birthdate":"01.04.1990", "balance":"99"}"#;
const BOB: &str = r#"{"name":"Bob Jones","birthdate":"1990-04-01","nationality":"us"}"#;

#[test]
fn prove_verify_and_nullifiers() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let p = provider(&[ALICE, ALICE_AGAIN, ALICE, BOB], dir.path());
    let uid = [
        "--uid-fields",
        "name,birthdate,nationality",
        "--scope",
        "vote-2026",
    ];

    // Session 1: reveal one field, two predicates, a nullifier.
    let proof_a = dir.path().join("a.json");
    let mut extra = vec![
        "--reveal",
        "nationality",
        "--commit",
        "email",
        "--predicate",
        "birthdate<=today-18y",
        "--predicate",
        "balance>=1000",
    ];
    extra.extend_from_slice(&uid);
    let (code, text) = prove(&p, &state, &proof_a, &extra);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("SIMULATED"), "{text}");
    let (code, v, text) = verify(&proof_a, &state);
    assert_eq!(code, 0, "{text}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["server_name"], NAME);
    assert_eq!(v["simulated"], true);
    assert_eq!(v["revealed"], serde_json::json!({"$.nationality": "us"}));
    assert_eq!(v["predicates"]["$.birthdate<=today-18y"], true);
    assert_eq!(v["predicates"]["$.balance>=1000"], true);
    assert_eq!(v["scope"], "vote-2026");
    assert_eq!(v["committed"], serde_json::json!(["$.email"]));
    assert_eq!(
        v["request"],
        serde_json::json!({"method": "GET", "target": "/api/me", "host": NAME})
    );
    assert_eq!(v["status"], 200);
    // The demo provider (rustls) speaks TLS 1.2 and 1.3 and picks 1.3.
    assert_eq!(v["tls_version"], "1.3");
    let null_a = v["nullifier"].as_str().unwrap().to_string();
    assert_eq!(null_a.len(), 64);
    // Nothing else of the response is in the presentation. (Needles that hex could contain
    // by chance, like "1990", would match salts and hashes now and then: each one here has
    // a character hex never has.)
    let proof_text = std::fs::read_to_string(&proof_a).unwrap();
    for secret in [
        "Alice",
        "SMITH",
        "1990-04-01",
        "1234.50",
        "alice@example.com",
        "s3cr3t",
        "Mallory",
    ] {
        assert!(
            !proof_text.contains(secret),
            "{secret} leaked into the presentation"
        );
    }

    // Session 2: the same person, formatted differently → the same nullifier.
    let proof_b = dir.path().join("b.json");
    let (code, text) = prove(&p, &state, &proof_b, &uid);
    assert_eq!(code, 0, "{text}");
    let (_, v, _) = verify(&proof_b, &state);
    assert_eq!(v["nullifier"].as_str().unwrap(), null_a);
    assert_eq!(v["revealed"], serde_json::json!({}));

    // Session 3: the same person in another scope → another nullifier.
    let proof_c = dir.path().join("c.json");
    let (code, text) = prove(
        &p,
        &state,
        &proof_c,
        &[
            "--uid-fields",
            "name,birthdate,nationality",
            "--scope",
            "forum",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let (_, v, _) = verify(&proof_c, &state);
    assert_eq!(v["scope"], "forum");
    assert_ne!(v["nullifier"].as_str().unwrap(), null_a);

    // Session 4: another person → another nullifier.
    let proof_d = dir.path().join("d.json");
    let (code, text) = prove(&p, &state, &proof_d, &uid);
    assert_eq!(code, 0, "{text}");
    let (_, v, _) = verify(&proof_d, &state);
    assert_ne!(v["nullifier"].as_str().unwrap(), null_a);

    // Any changed byte fails, unless the JSON it makes means exactly the same presentation
    // (e.g. a space turned into a tab between tokens).
    let original = notarization::Presentation::from_json(&proof_text).unwrap();
    let group = notarization::TrustedGroup::from_json(
        &std::fs::read_to_string(state.join("group.json")).unwrap(),
    )
    .unwrap();
    let now = original.notarization.time + 10;
    let bytes = proof_text.as_bytes();
    let mut rejected = 0;
    for i in 0..bytes.len() {
        for delta in [1u8, 0x20] {
            let mut t = bytes.to_vec();
            t[i] ^= delta;
            let Ok(s) = String::from_utf8(t) else {
                rejected += 1;
                continue;
            };
            let r = tessera_client::verify::verify_json(&s, std::slice::from_ref(&group), now);
            if r.verified {
                let same = notarization::Presentation::from_json(&s).unwrap();
                assert_eq!(
                    same, original,
                    "byte {i} changed the presentation and it still verified"
                );
            } else {
                rejected += 1;
            }
        }
    }
    assert!(
        rejected > bytes.len(),
        "{rejected} of {} changes rejected",
        2 * bytes.len()
    );

    // Another group's trust file refuses it.
    let other = dir.path().join("other");
    let p2 = provider(&[ALICE], dir.path());
    let (code, text) = prove(
        &p2,
        &other,
        &dir.path().join("e.json"),
        &["--reveal", "nationality"],
    );
    assert_eq!(code, 0, "{text}");
    let (code, v, _) = verify(&proof_a, &other);
    assert_eq!(code, 1);
    assert_eq!(v["verified"], false);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("not among the trusted groups"));
}

#[test]
fn clear_errors_for_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A missing field is refused before anything is signed.
    let p = provider(&[ALICE], dir.path());
    let (code, text) = prove(
        &p,
        &state,
        &dir.path().join("x.json"),
        &["--reveal", "passport"],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("the body has no value at $.passport"),
        "{text}"
    );
    assert!(!dir.path().join("x.json").exists());
    // Usage errors exit 2.
    let (code, _, text) = tessera(&[
        "prove",
        "--local",
        "--state",
        "s",
        "--url",
        "http://x/",
        "-o",
        "o.json",
        "--reveal",
        "a",
    ]);
    assert_eq!(code, 2, "{text}");
    let (code, _, text) = tessera(&[
        "prove",
        "--local",
        "--state",
        "s",
        "--url",
        "https://x/",
        "-o",
        "o.json",
        "--uid-fields",
        "name",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--scope"), "{text}");
    let (code, _, text) = tessera(&["verify", "/nonexistent.json", "--trust", "/nonexistent"]);
    assert_eq!(code, 2, "{text}");
}
