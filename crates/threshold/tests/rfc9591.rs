//! RFC 9591 Appendix E.1, FROST(Ed25519, SHA-512): the group key, the signature shares and the
//! aggregate, computed by frost from the vector's inputs (and by this crate's aggregator), must
//! equal the vector; the final signature must verify with ed25519-dalek.
//! Vector: testdata/rfc9591-ed25519.json (its "source" field names where it comes from).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use frost_ed25519 as frost;
use frost_ed25519::keys::{KeyPackage, SigningShare, VerifyingShare};
use frost_ed25519::round1::SigningNonces;

type Nonce = frost_core::round1::Nonce<frost_ed25519::Ed25519Sha512>;
use serde_json::Value;
use threshold::{Aggregator, GroupKey, PublicGroup, SignatureShare, SigningCommitment};

const VECTOR: &str = include_str!("../testdata/rfc9591-ed25519.json");

fn vector() -> Value {
    serde_json::from_str(VECTOR).unwrap()
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn h32(v: &Value) -> [u8; 32] {
    h(v).try_into().unwrap()
}

fn scalar(v: &Value) -> Scalar {
    Scalar::from_canonical_bytes(h32(v)).unwrap()
}

/// Participant shares from the vector, by identifier.
fn shares(v: &Value) -> BTreeMap<u16, [u8; 32]> {
    v["inputs"]["participant_shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["identifier"].as_u64().unwrap() as u16,
                h32(&p["participant_share"]),
            )
        })
        .collect()
}

fn key_package(id: u16, share: &[u8; 32], group_key: &[u8; 32]) -> KeyPackage {
    let signing = SigningShare::deserialize(share).unwrap();
    KeyPackage::new(
        frost::Identifier::try_from(id).unwrap(),
        signing,
        VerifyingShare::from(signing),
        frost::VerifyingKey::deserialize(group_key).unwrap(),
        2,
    )
}

#[test]
fn vector_names_its_source_and_suite() {
    let v = vector();
    assert!(v["source"].as_str().unwrap().contains("RFC 9591"));
    assert_eq!(v["config"]["name"], "FROST(Ed25519, SHA-512)");
    assert_eq!(v["config"]["MIN_PARTICIPANTS"], "2");
    assert_eq!(v["config"]["MAX_PARTICIPANTS"], "3");
}

#[test]
fn rfc9591_e1_group_key_from_participant_shares() {
    let v = vector();
    let inputs = &v["inputs"];
    let group_key = h32(&inputs["group_public_key"]);
    let secret = scalar(&inputs["group_secret_key"]);
    assert_eq!(
        (ED25519_BASEPOINT_POINT * secret).compress().to_bytes(),
        group_key
    );
    // The shares are f(i) for f(x) = secret + a1·x.
    let a1 = scalar(&inputs["share_polynomial_coefficients"][0]);
    let shares = shares(&v);
    assert_eq!(shares.len(), 3);
    for (&id, share) in &shares {
        let fx = secret + a1 * Scalar::from(u64::from(id));
        assert_eq!(fx.to_bytes(), *share, "share {id}");
    }

    // Lagrange interpolation at 0 of every pair of verifying shares gives the group key.
    let vs: BTreeMap<u16, [u8; 32]> = shares
        .iter()
        .map(|(&id, s)| {
            let vs = VerifyingShare::from(SigningShare::deserialize(s).unwrap());
            (id, vs.serialize().unwrap().try_into().unwrap())
        })
        .collect();
    for pair in [[1u16, 2], [1, 3], [2, 3]] {
        let set: BTreeSet<u16> = pair.into_iter().collect();
        let mut acc = curve25519_dalek::edwards::EdwardsPoint::default();
        for &i in &set {
            let mut lambda = Scalar::ONE;
            for &j in set.iter().filter(|&&j| j != i) {
                let (xi, xj) = (Scalar::from(u64::from(i)), Scalar::from(u64::from(j)));
                lambda *= xj * (xj - xi).invert();
            }
            acc += CompressedEdwardsY(vs[&i]).decompress().unwrap() * lambda;
        }
        assert_eq!(acc.compress().to_bytes(), group_key, "pair {pair:?}");
    }

    // frost reconstructs the same secret from any two key packages.
    let kps: Vec<KeyPackage> = [1u16, 3]
        .iter()
        .map(|id| key_package(*id, &shares[id], &group_key))
        .collect();
    let sk = frost::keys::reconstruct(&kps).unwrap();
    assert_eq!(sk.serialize(), secret.to_bytes().to_vec());
    let vk = frost::VerifyingKey::from(&sk);
    assert_eq!(vk.serialize().unwrap(), group_key.to_vec());

    // This crate's group record accepts exactly these shares under this key (it checks the
    // interpolation itself), and refuses them under another key.
    let group = PublicGroup::new(GroupKey::from_bytes(&group_key).unwrap(), 2, vs.clone()).unwrap();
    assert_eq!(group.group_key().to_bytes(), group_key);
    assert_eq!(group.expected_verifying_share(3).unwrap(), vs[&3]);
    let other = (ED25519_BASEPOINT_POINT * Scalar::from(5u64))
        .compress()
        .to_bytes();
    assert!(PublicGroup::new(GroupKey::from_bytes(&other).unwrap(), 2, vs).is_err());
}

#[test]
fn rfc9591_e1_signature_shares_and_aggregate() {
    let v = vector();
    let inputs = &v["inputs"];
    let group_key = h32(&inputs["group_public_key"]);
    let message = h(&inputs["message"]);
    let shares = shares(&v);
    let participants: Vec<u16> = inputs["participant_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u16)
        .collect();
    assert_eq!(participants, vec![1, 3]);

    // Round one from the vector's nonces; the commitments must match.
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for out in v["round_one_outputs"]["outputs"].as_array().unwrap() {
        let id = out["identifier"].as_u64().unwrap() as u16;
        let hiding = Nonce::deserialize(&h(&out["hiding_nonce"])).unwrap();
        let binding = Nonce::deserialize(&h(&out["binding_nonce"])).unwrap();
        let n = SigningNonces::from_nonces(hiding, binding);
        let c = *n.commitments();
        assert_eq!(
            c.hiding().serialize().unwrap(),
            h(&out["hiding_nonce_commitment"]),
            "hiding commitment {id}"
        );
        assert_eq!(
            c.binding().serialize().unwrap(),
            h(&out["binding_nonce_commitment"]),
            "binding commitment {id}"
        );
        let ident = frost::Identifier::try_from(id).unwrap();
        nonces.insert(id, n);
        commitments.insert(ident, c);
    }
    let package = frost::SigningPackage::new(commitments.clone(), &message);
    let vk = frost::VerifyingKey::deserialize(&group_key).unwrap();

    // Binding factor inputs (RFC 9591 section 4.4) match.
    let preimages = package.binding_factor_preimages(&vk, &[]).unwrap();
    for (out, (ident, preimage)) in v["round_one_outputs"]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(preimages)
    {
        let id = out["identifier"].as_u64().unwrap() as u16;
        assert_eq!(ident, frost::Identifier::try_from(id).unwrap());
        assert_eq!(
            preimage,
            h(&out["binding_factor_input"]),
            "binding input {id}"
        );
    }

    // Round two: frost's round2::sign from the vector's key shares and nonces.
    let mut sig_shares = BTreeMap::new();
    for out in v["round_two_outputs"]["outputs"].as_array().unwrap() {
        let id = out["identifier"].as_u64().unwrap() as u16;
        let kp = key_package(id, &shares[&id], &group_key);
        let s = frost::round2::sign(&package, &nonces[&id], &kp).unwrap();
        assert_eq!(s.serialize(), h(&out["sig_share"]), "signature share {id}");
        sig_shares.insert(id, s);
    }

    // Aggregate with frost directly.
    let expected_sig = h(&v["final_output"]["sig"]);
    let vshares: BTreeMap<_, _> = shares
        .iter()
        .map(|(&id, s)| {
            (
                frost::Identifier::try_from(id).unwrap(),
                VerifyingShare::from(SigningShare::deserialize(s).unwrap()),
            )
        })
        .collect();
    let pubkeys = frost::keys::PublicKeyPackage::new(vshares, vk, Some(2));
    let frost_shares: BTreeMap<_, _> = sig_shares
        .iter()
        .map(|(&id, s)| (frost::Identifier::try_from(id).unwrap(), *s))
        .collect();
    let sig = frost::aggregate(&package, &frost_shares, &pubkeys).unwrap();
    assert_eq!(sig.serialize().unwrap(), expected_sig);

    // Aggregate with this crate's coordinator: same bytes.
    let group = PublicGroup::from_frost(&pubkeys).unwrap();
    let mut agg = Aggregator::new(&group, &message);
    for (ident, c) in &commitments {
        let id = if *ident == frost::Identifier::try_from(1).unwrap() {
            1
        } else {
            3
        };
        agg.add_commitment(id, SigningCommitment::from(*c)).unwrap();
    }
    assert_eq!(agg.signing_package().unwrap().as_frost(), &package);
    for (&id, s) in &sig_shares {
        agg.add_share(id, SignatureShare::from(*s)).unwrap();
    }
    let ours = agg.aggregate().unwrap();
    assert_eq!(ours.to_vec(), expected_sig);

    // A standard Ed25519 signature: ed25519-dalek's strict verifier accepts it.
    let dalek_key = ed25519_dalek::VerifyingKey::from_bytes(&group_key).unwrap();
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&ours);
    dalek_key.verify_strict(&message, &dalek_sig).unwrap();
    group.group_key().verify(&message, &ours).unwrap();
    assert!(dalek_key.verify_strict(b"tesT", &dalek_sig).is_err());
}
