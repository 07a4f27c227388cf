//! Signing: standard Ed25519 output, cheater detection, and the coordinator's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use threshold::{
    commit, sign_share, Aggregator, GroupKey, NodeKey, PublicGroup, SignError, ThresholdError,
};

#[test]
fn aggregate_is_a_standard_ed25519_signature() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 100);
    let msg = b"tessera notarization: sha256=...";
    let sig = sign_with(&keys, &group, &[2, 4, 5], msg, 101).unwrap();
    assert!(dalek_verify(&group, msg, &sig));
    group.group_key().verify(msg, &sig).unwrap();
    // A different message, or a flipped bit, fails under both verifiers.
    assert!(!dalek_verify(&group, b"tessera notarization: other", &sig));
    assert!(matches!(
        group.group_key().verify(b"other", &sig),
        Err(ThresholdError::InvalidSignature { .. })
    ));
    let mut bad = sig;
    bad[40] ^= 1;
    assert!(!dalek_verify(&group, msg, &bad));
    assert!(group.group_key().verify(msg, &bad).is_err());
    // Randomized nonces: signing twice gives two different valid signatures.
    let sig2 = sign_with(&keys, &group, &[2, 4, 5], msg, 102).unwrap();
    assert_ne!(sig, sig2);
    assert!(dalek_verify(&group, msg, &sig2));
}

/// Runs a signature where `cheaters` sign a different message; returns the aggregate result.
fn sign_with_cheaters(
    keys: &BTreeMap<u16, NodeKey>,
    group: &PublicGroup,
    signers: &[u16],
    cheaters: &[u16],
    seed: u64,
) -> Result<[u8; 64], SignError> {
    let mut r = rng(seed);
    let mut agg = Aggregator::new(group, b"the real message");
    let mut nonces = BTreeMap::new();
    for &s in signers {
        let (n, c) = commit(&keys[&s], &mut r);
        nonces.insert(s, n);
        agg.add_commitment(s, wire(&c)).unwrap();
    }
    let package = agg.signing_package().unwrap();
    // Same commitments, another message: a share that is valid for nothing the coordinator holds.
    let mut commitments = BTreeMap::new();
    for id in package.signers() {
        let ident = frost_ed25519::Identifier::try_from(id).unwrap();
        commitments.insert(
            ident,
            package.as_frost().signing_commitment(&ident).unwrap(),
        );
    }
    let forged: threshold::SigningPackage =
        frost_ed25519::SigningPackage::new(commitments, b"something else").into();
    for (s, n) in nonces {
        let pkg = if cheaters.contains(&s) {
            &forged
        } else {
            &package
        };
        let share = sign_share(&keys[&s], n, pkg).unwrap();
        agg.add_share(s, wire(&share)).unwrap();
    }
    agg.aggregate()
}

#[test]
fn bad_signature_share_is_named_by_the_aggregator() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 110);
    let err = sign_with_cheaters(&keys, &group, &[1, 2], &[2], 111).unwrap_err();
    assert!(
        matches!(&err, SignError::BadShare { nodes } if nodes == &vec![2]),
        "{err}"
    );
    assert!(err.to_string().contains("[2]"));

    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 112);
    let err = sign_with_cheaters(&keys, &group, &[1, 3, 4, 5], &[3, 5], 113).unwrap_err();
    assert!(
        matches!(&err, SignError::BadShare { nodes } if nodes == &vec![3, 5]),
        "{err}"
    );
    // Honest signers alone still sign.
    let sig = sign_with(&keys, &group, &[1, 4, 2], b"the real message", 114).unwrap();
    assert!(dalek_verify(&group, b"the real message", &sig));
}

#[test]
fn a_share_from_another_signing_session_is_named() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 115);
    let mut r = rng(116);
    let mut agg = Aggregator::new(&group, b"m");
    let (n1, c1) = commit(&keys[&1], &mut r);
    let (n3, c3) = commit(&keys[&3], &mut r);
    agg.add_commitment(1, c1).unwrap();
    agg.add_commitment(3, c3).unwrap();
    let package = agg.signing_package().unwrap();
    // Node 3 replays a share from an earlier session (different nonces) instead.
    let earlier = {
        let mut other = Aggregator::new(&group, b"m");
        let (m1, d1) = commit(&keys[&1], &mut r);
        let (m3, d3) = commit(&keys[&3], &mut r);
        other.add_commitment(1, d1).unwrap();
        other.add_commitment(3, d3).unwrap();
        let p = other.signing_package().unwrap();
        drop(m1);
        sign_share(&keys[&3], m3, &p).unwrap()
    };
    drop(n3);
    agg.add_share(1, sign_share(&keys[&1], n1, &package).unwrap())
        .unwrap();
    agg.add_share(3, earlier).unwrap();
    assert!(matches!(agg.aggregate(), Err(SignError::BadShare { nodes }) if nodes == vec![3]));
}

#[test]
fn coordinator_refuses_out_of_order_and_unknown_messages() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 120);
    let mut r = rng(121);
    let mut agg = Aggregator::new(&group, b"m");
    let (n1, c1) = commit(&keys[&1], &mut r);
    let (n2, c2) = commit(&keys[&2], &mut r);
    let (n3, c3) = commit(&keys[&3], &mut r);

    assert!(matches!(
        agg.add_commitment(9, c1),
        Err(SignError::UnknownSigner { node: 9 })
    ));
    assert!(matches!(agg.aggregate(), Err(SignError::NoSigningPackage)));
    agg.add_commitment(1, c1).unwrap();
    assert!(matches!(
        agg.add_commitment(1, c1),
        Err(SignError::DuplicateCommitment { node: 1 })
    ));
    assert!(matches!(
        agg.signing_package(),
        Err(SignError::NotEnoughCommitments { have: 1, need: 2 })
    ));
    agg.add_commitment(2, c2).unwrap();

    let package = agg.signing_package().unwrap();
    assert_eq!(package.signers(), vec![1, 2]);
    assert_eq!(agg.signing_package().unwrap(), package);
    assert!(matches!(
        agg.add_commitment(3, c3),
        Err(SignError::CommitmentAfterPackage { node: 3 })
    ));
    // Node 3 is not in the package: it cannot sign it, and its share would be refused.
    assert!(matches!(
        sign_share(&keys[&3], n3, &package),
        Err(SignError::NotInPackage { node: 3 })
    ));
    let s1 = sign_share(&keys[&1], n1, &package).unwrap();
    assert!(matches!(
        agg.add_share(3, s1),
        Err(SignError::NotASigner { node: 3 })
    ));
    agg.add_share(1, s1).unwrap();
    assert!(matches!(
        agg.add_share(1, s1),
        Err(SignError::DuplicateShare { node: 1 })
    ));
    assert!(matches!(
        agg.aggregate(),
        Err(SignError::MissingShares { nodes }) if nodes == vec![2]
    ));
    agg.add_share(2, sign_share(&keys[&2], n2, &package).unwrap())
        .unwrap();
    let sig = agg.aggregate().unwrap();
    assert!(dalek_verify(&group, b"m", &sig));
}

#[test]
fn share_before_package_is_refused() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 125);
    let mut r = rng(126);
    let mut agg = Aggregator::new(&group, b"m");
    let mut other = Aggregator::new(&group, b"m");
    let (n1, c1) = commit(&keys[&1], &mut r);
    let (_n2, c2) = commit(&keys[&2], &mut r);
    for a in [&mut agg, &mut other] {
        a.add_commitment(1, c1).unwrap();
        a.add_commitment(2, c2).unwrap();
    }
    let p = other.signing_package().unwrap();
    let s1 = sign_share(&keys[&1], n1, &p).unwrap();
    assert!(matches!(
        agg.add_share(1, s1),
        Err(SignError::ShareBeforePackage { node: 1 })
    ));
}

#[test]
fn nonces_only_sign_their_own_commitment() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 130);
    let mut r = rng(131);
    let mut agg = Aggregator::new(&group, b"m");
    let (_n1, c1) = commit(&keys[&1], &mut r);
    let (n2, c2) = commit(&keys[&2], &mut r);
    agg.add_commitment(1, c1).unwrap();
    agg.add_commitment(2, c2).unwrap();
    let package = agg.signing_package().unwrap();
    // Fresh nonces whose commitment is not the one in the package.
    let (fresh, _) = commit(&keys[&1], &mut r);
    assert!(matches!(
        sign_share(&keys[&1], fresh, &package),
        Err(SignError::CommitmentMismatch { node: 1 })
    ));
    // Node 2's nonces with node 1's key.
    assert!(matches!(
        sign_share(&keys[&1], n2, &package),
        Err(SignError::NoncesForOtherNode {
            nonces_for: 2,
            key_of: 1
        })
    ));
    let (n, _) = commit(&keys[&1], &mut r);
    assert!(format!("{n:?}").contains("redacted"));
}

#[test]
fn public_group_json_round_trip_and_tamper_detection() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 140);
    let json = serde_json::to_string_pretty(&group).unwrap();
    let back: PublicGroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, group);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["threshold"], 3);
    assert_eq!(v["group_key"], group.group_key().to_hex());
    assert_eq!(
        v["members"]["4"],
        hex::encode(keys[&4].verifying_share().unwrap())
    );
    // frost conversion both ways.
    assert_eq!(PublicGroup::from_frost(&group.to_frost()).unwrap(), group);

    // Swap two members' verifying shares: off the polynomial, refused.
    let mut t = v.clone();
    t["members"]["4"] = v["members"]["5"].clone();
    t["members"]["5"] = v["members"]["4"].clone();
    let err = serde_json::from_value::<PublicGroup>(t).unwrap_err();
    assert!(
        err.to_string().contains("not on the group's polynomial"),
        "{err}"
    );
    // Another group key: refused.
    let (_, other) = run_dkg(&[1, 2, 3], 2, 141);
    let mut t = v.clone();
    t["group_key"] = serde_json::Value::String(other.group_key().to_hex());
    assert!(serde_json::from_value::<PublicGroup>(t).is_err());
    // Threshold larger than N, or below 2: refused.
    let mut t = v.clone();
    t["threshold"] = 6.into();
    assert!(serde_json::from_value::<PublicGroup>(t).is_err());
    let mut t = v.clone();
    t["threshold"] = 1.into();
    assert!(serde_json::from_value::<PublicGroup>(t).is_err());
    // Unknown fields: refused.
    let mut t = v;
    t["extra"] = 1.into();
    assert!(serde_json::from_value::<PublicGroup>(t).is_err());
}

#[test]
fn group_key_id_and_encoding() {
    let (_, group) = run_dkg(&[1, 2, 3], 2, 150);
    let key = group.group_key();
    let id = key.id();
    assert_eq!(id.len(), 16);
    use sha2::Digest;
    let digest = sha2::Sha512::digest(key.to_bytes());
    assert_eq!(id, hex::encode(&digest[..8]));
    assert_eq!(GroupKey::from_hex(&key.to_hex()).unwrap(), *key);
    assert_eq!(
        serde_json::to_string(key).unwrap(),
        format!("\"{}\"", key.to_hex())
    );
    // The identity point and a small-order point are not group keys.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(GroupKey::from_bytes(&identity).is_err());
    assert!(GroupKey::from_bytes(&[0u8; 32]).is_err());
    assert!(matches!(
        key.verify(b"m", &[0xffu8; 64]),
        Err(ThresholdError::MalformedSignature)
    ));
}

#[test]
fn node_key_bytes_round_trip() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 160);
    let bytes = keys[&2].to_bytes().unwrap();
    let restored = NodeKey::from_bytes(&bytes).unwrap();
    assert_eq!(restored.id(), 2);
    restored.check_against(&group).unwrap();
    let mut keys2 = BTreeMap::new();
    keys2.insert(
        1,
        NodeKey::from_bytes(&keys[&1].to_bytes().unwrap()).unwrap(),
    );
    keys2.insert(2, restored);
    let sig = sign_with(&keys2, &group, &[1, 2], b"restored", 161).unwrap();
    assert!(dalek_verify(&group, b"restored", &sig));
    assert!(NodeKey::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    // Another group's key is not this group's.
    let (other_keys, _) = run_dkg(&[1, 2, 3], 2, 162);
    assert!(other_keys[&2].check_against(&group).is_err());
}
