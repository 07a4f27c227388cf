//! DKG: agreement, threshold signing, and every deviation a party can make in either round.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use frost_ed25519 as frost;
use threshold::{default_threshold, Dkg, DkgError, Round1Package, SignError};

#[test]
fn default_threshold_is_a_strict_majority() {
    assert_eq!(default_threshold(2), 2);
    assert_eq!(default_threshold(3), 2);
    assert_eq!(default_threshold(4), 3);
    assert_eq!(default_threshold(5), 3);
    assert_eq!(default_threshold(6), 4);
    assert_eq!(default_threshold(7), 4);
}

fn agree_and_any_t_sign(members: &[u16], seed: u64) {
    let t = default_threshold(members.len() as u16);
    let (keys, group) = run_dkg(members, t, seed);
    assert_eq!(group.threshold(), t);
    assert_eq!(group.member_ids(), members.to_vec());
    for (id, key) in &keys {
        key.check_against(&group).unwrap();
        assert_eq!(key.threshold(), t);
        assert_eq!(
            group.verifying_share(*id),
            Some(key.verifying_share().unwrap())
        );
    }
    // Every t-subset signs; the result is a standard Ed25519 signature.
    let subsets_t = subsets(members, usize::from(t));
    for (i, signers) in subsets_t.iter().enumerate() {
        let msg = format!("notarization {i} by {signers:?}");
        let sig = sign_with(&keys, &group, signers, msg.as_bytes(), seed + i as u64).unwrap();
        group.group_key().verify(msg.as_bytes(), &sig).unwrap();
        assert!(dalek_verify(&group, msg.as_bytes(), &sig), "{signers:?}");
        assert!(!dalek_verify(&group, b"another message", &sig));
    }
    // All members together sign too.
    let sig = sign_with(&keys, &group, members, b"everyone", seed).unwrap();
    assert!(dalek_verify(&group, b"everyone", &sig));
}

#[test]
fn dkg_3_nodes_threshold_2_agree_and_any_2_sign() {
    agree_and_any_t_sign(&[1, 2, 3], 1);
}

#[test]
fn dkg_5_nodes_threshold_3_agree_and_any_3_sign() {
    agree_and_any_t_sign(&[1, 2, 3, 4, 5], 2);
}

#[test]
fn dkg_with_sparse_ids() {
    agree_and_any_t_sign(&[7, 300, 65535], 3);
}

/// t−1 members cannot sign: the aggregator and the signer refuse, and even with the threshold
/// check removed (frost key packages rebuilt with min_signers = t−1) the aggregate is invalid.
fn fewer_than_t_cannot_sign(members: &[u16], seed: u64) {
    let t = default_threshold(members.len() as u16);
    let (keys, group) = run_dkg(members, t, seed);
    let short: Vec<u16> = members[..usize::from(t) - 1].to_vec();

    // The coordinator will not build a package.
    let mut r = rng(seed);
    let mut agg = threshold::Aggregator::new(&group, b"m");
    for &s in &short {
        let (_n, c) = threshold::commit(&keys[&s], &mut r);
        agg.add_commitment(s, c).unwrap();
    }
    assert!(matches!(
        agg.signing_package(),
        Err(SignError::NotEnoughCommitments { have, need }) if have == short.len() && need == t
    ));

    // A signer will not sign a package with fewer than t signers.
    let (n, c) = threshold::commit(&keys[&short[0]], &mut r);
    let mut commitments = BTreeMap::new();
    commitments.insert(
        frost::Identifier::try_from(short[0]).unwrap(),
        *c.as_frost(),
    );
    let package: threshold::SigningPackage = frost::SigningPackage::new(commitments, b"m").into();
    assert!(matches!(
        threshold::sign_share(&keys[&short[0]], n, &package),
        Err(SignError::TooFewSigners { .. })
    ));

    // Cryptographically: t−1 genuine shares, threshold checks bypassed, do not make a signature.
    let mut shares_kp = BTreeMap::new();
    let mut vshares = BTreeMap::new();
    for &s in &short {
        let kp = keys[&s].as_frost();
        let forced = frost::keys::KeyPackage::new(
            *kp.identifier(),
            *kp.signing_share(),
            *kp.verifying_share(),
            *kp.verifying_key(),
            t - 1,
        );
        vshares.insert(*kp.identifier(), *kp.verifying_share());
        shares_kp.insert(*kp.identifier(), forced);
    }
    let mut nonces = BTreeMap::new();
    let mut comms = BTreeMap::new();
    for (id, kp) in &shares_kp {
        let (n, c) = frost::round1::commit(kp.signing_share(), &mut r);
        nonces.insert(*id, n);
        comms.insert(*id, c);
    }
    let pkg = frost::SigningPackage::new(comms, b"m");
    let mut sig_shares = BTreeMap::new();
    for (id, kp) in &shares_kp {
        sig_shares.insert(*id, frost::round2::sign(&pkg, &nonces[id], kp).unwrap());
    }
    let pubkeys = frost::keys::PublicKeyPackage::new(
        vshares,
        *shares_kp.values().next().unwrap().verifying_key(),
        Some(t - 1),
    );
    let result = frost::aggregate_custom(
        &pkg,
        &sig_shares,
        &pubkeys,
        frost::CheaterDetection::Disabled,
    );
    assert_eq!(result.unwrap_err(), frost::Error::InvalidSignature);
}

#[test]
fn fewer_than_t_cannot_sign_n3() {
    fewer_than_t_cannot_sign(&[1, 2, 3], 10);
}

#[test]
fn fewer_than_t_cannot_sign_n5() {
    fewer_than_t_cannot_sign(&[1, 2, 3, 4, 5], 11);
}

/// Starts a DKG and returns machines and round-1 packages.
fn start(members: &[u16], seed: u64) -> (BTreeMap<u16, Dkg>, BTreeMap<u16, Round1Package>) {
    let t = default_threshold(members.len() as u16);
    let mut r = rng(seed);
    let mut machines = BTreeMap::new();
    let mut r1 = BTreeMap::new();
    for &m in members {
        let (d, p) = Dkg::new(m, members, t, &mut r).unwrap();
        machines.insert(m, d);
        r1.insert(m, p);
    }
    (machines, r1)
}

fn json_field_swap(target: &Round1Package, donor: &Round1Package, field: &str) -> Round1Package {
    let mut t = serde_json::to_value(target).unwrap();
    let d = serde_json::to_value(donor).unwrap();
    t[field] = d[field].clone();
    serde_json::from_value(t).unwrap()
}

#[test]
fn altered_round1_proof_aborts_naming_sender() {
    for members in [vec![1u16, 2, 3], vec![1, 2, 3, 4, 5]] {
        let (mut machines, r1) = start(&members, 20);
        // Node 2's package reaches node 1 with node 3's proof of knowledge in it.
        let altered = json_field_swap(&r1[&2], &r1[&3], "proof_of_knowledge");
        let node1 = machines.get_mut(&1).unwrap();
        let mut result = Ok(None);
        for (&from, p) in &r1 {
            if from == 1 {
                continue;
            }
            let pkg = if from == 2 { altered.clone() } else { wire(p) };
            result = node1.on_round1(from, pkg);
            if result.is_err() {
                break;
            }
        }
        let err = result.unwrap_err();
        assert!(
            matches!(err, DkgError::InvalidProofOfKnowledge { from: 2 }),
            "{err}"
        );
        assert_eq!(err.culprit(), Some(2));
        assert!(node1.is_aborted());
        // The run is over: nothing more is accepted.
        assert!(matches!(
            node1.on_round1(3, wire(&r1[&3])),
            Err(DkgError::DuplicateRound1 { from: 3 }) | Err(DkgError::Aborted)
        ));
    }
}

#[test]
fn altered_round1_commitment_aborts_naming_sender() {
    let members = [1u16, 2, 3];
    let (mut machines, r1) = start(&members, 21);
    // Node 3's commitment replaced by another run's (its proof no longer matches).
    let (_, other) = start(&members, 99);
    let altered = json_field_swap(&r1[&3], &other[&3], "commitment");
    let node1 = machines.get_mut(&1).unwrap();
    assert!(node1.on_round1(2, wire(&r1[&2])).unwrap().is_none());
    let err = node1.on_round1(3, altered).unwrap_err();
    assert!(
        matches!(err, DkgError::InvalidProofOfKnowledge { from: 3 }),
        "{err}"
    );

    // A commitment with the wrong number of coefficients is refused on arrival.
    let (mut machines, r1) = start(&members, 22);
    let (_, bigger) = start(&[1, 2, 3, 4, 5], 23); // t = 3 there
    let altered = json_field_swap(&r1[&2], &bigger[&2], "commitment");
    let err = machines
        .get_mut(&1)
        .unwrap()
        .on_round1(2, altered)
        .unwrap_err();
    assert!(
        matches!(
            err,
            DkgError::BadCommitment {
                from: 2,
                got: 3,
                expected: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn altered_round2_share_aborts_naming_sender() {
    for members in [vec![1u16, 2, 3], vec![1, 2, 3, 4, 5]] {
        let (mut machines, r1) = start(&members, 30);
        let r2 = deliver_round1(&mut machines, &r1);
        // Node 2 sends node 1 the share meant for node 3.
        let for_3 = r2
            .iter()
            .find(|(from, to, _)| *from == 2 && *to == 3)
            .map(|(_, _, p)| p.clone())
            .unwrap();
        let node1 = machines.get_mut(&1).unwrap();
        let mut err = None;
        for (from, to, pkg) in &r2 {
            if *to != 1 {
                continue;
            }
            let pkg = if *from == 2 { for_3.clone() } else { wire(pkg) };
            if let Err(e) = node1.on_round2(*from, pkg) {
                err = Some(e);
                break;
            }
        }
        let err = err.expect("altered share accepted");
        assert!(matches!(err, DkgError::InvalidShare { from: 2 }), "{err}");
        assert_eq!(err.culprit(), Some(2));
        assert!(node1.is_aborted());
        // Other nodes are unaffected and finish.
        let node3 = machines.get_mut(&3).unwrap();
        let mut done = None;
        for (from, to, pkg) in &r2 {
            if *to == 3 {
                done = node3.on_round2(*from, wire(pkg)).unwrap();
            }
        }
        assert!(done.is_some());
    }
}

#[test]
fn unknown_sender_self_and_duplicates_are_refused_without_aborting() {
    let members = [1u16, 2, 3];
    let (mut machines, r1) = start(&members, 40);
    let node1 = machines.get_mut(&1).unwrap();
    assert!(matches!(
        node1.on_round1(9, wire(&r1[&2])),
        Err(DkgError::UnknownSender { from: 9 })
    ));
    assert!(matches!(
        node1.on_round1(1, wire(&r1[&1])),
        Err(DkgError::FromSelf { me: 1 })
    ));
    assert!(node1.on_round1(2, wire(&r1[&2])).unwrap().is_none());
    assert!(matches!(
        node1.on_round1(2, wire(&r1[&2])),
        Err(DkgError::DuplicateRound1 { from: 2 })
    ));
    assert!(!node1.is_aborted());
    // The run still completes normally.
    let (mut machines, r1) = start(&members, 41);
    let r2 = deliver_round1(&mut machines, &r1);
    let (dup_from, dup_to, dup) = r2[0].clone();
    let node = machines.get_mut(&dup_to).unwrap();
    assert!(node.on_round2(dup_from, wire(&dup)).unwrap().is_none());
    assert!(matches!(
        node.on_round2(dup_from, wire(&dup)),
        Err(DkgError::DuplicateRound2 { .. })
    ));
    assert!(matches!(
        node.on_round2(77, wire(&dup)),
        Err(DkgError::UnknownSender { from: 77 })
    ));
    let rest: Vec<_> = r2.into_iter().skip(1).collect();
    let outputs = deliver_round2(&mut machines, rest);
    assert_eq!(outputs.len(), 3);
    let (_keys, group) = agree(outputs);
    assert_eq!(group.threshold(), 2);
}

#[test]
fn early_round2_packages_are_held_until_round1_completes() {
    let members = [1u16, 2, 3];
    let (mut machines, r1) = start(&members, 50);
    // Nodes 2 and 3 finish round 1 first.
    let mut r2 = Vec::new();
    for to in [2u16, 3] {
        for from in members.iter().copied().filter(|&f| f != to) {
            if let Some(out) = machines
                .get_mut(&to)
                .unwrap()
                .on_round1(from, wire(&r1[&from]))
                .unwrap()
            {
                r2.extend(out.into_iter().map(|(dest, p)| (to, dest, p)));
            }
        }
    }
    // Their round-2 packages reach node 1 before node 1 has any round-1 package.
    let node1 = machines.get_mut(&1).unwrap();
    for (from, to, p) in &r2 {
        if *to == 1 {
            assert!(node1.on_round2(*from, wire(p)).unwrap().is_none());
        }
    }
    assert!(node1.on_round1(2, wire(&r1[&2])).unwrap().is_none());
    let out1 = node1.on_round1(3, wire(&r1[&3])).unwrap().unwrap();
    let (key1, group1) = node1.take_output().expect("output ready after round 1");
    assert_eq!(key1.id(), 1);
    // Node 1's round-2 packages complete the others.
    let mut outputs = BTreeMap::new();
    for (dest, p) in out1 {
        r2.push((1, dest, p));
    }
    for (from, to, p) in r2 {
        if to == 1 {
            continue;
        }
        if let Some(o) = machines
            .get_mut(&to)
            .unwrap()
            .on_round2(from, wire(&p))
            .unwrap()
        {
            outputs.insert(to, o);
        }
    }
    outputs.insert(1, (key1, group1));
    let (keys, group) = agree(outputs);
    let sig = sign_with(&keys, &group, &[1, 3], b"early", 51).unwrap();
    assert!(dalek_verify(&group, b"early", &sig));
}

#[test]
fn bad_parameters_are_refused() {
    let mut r = rng(60);
    assert!(matches!(
        Dkg::new(4, &[1, 2, 3], 2, &mut r),
        Err(DkgError::NotAParticipant { me: 4 })
    ));
    assert!(matches!(
        Dkg::new(1, &[1, 2, 3], 4, &mut r),
        Err(DkgError::BadThreshold {
            threshold: 4,
            participants: 3
        })
    ));
    assert!(matches!(
        Dkg::new(1, &[1, 2, 3], 1, &mut r),
        Err(DkgError::BadThreshold { threshold: 1, .. })
    ));
    assert!(matches!(
        Dkg::new(1, &[0, 1, 2], 2, &mut r),
        Err(DkgError::ZeroId)
    ));
    assert!(matches!(
        Dkg::new(1, &[1, 2, 2], 2, &mut r),
        Err(DkgError::DuplicateMember { node: 2 })
    ));
}

#[test]
fn secrets_do_not_print() {
    let (keys, _group) = run_dkg(&[1, 2, 3], 2, 70);
    let key = &keys[&1];
    let debug = format!("{key:?}");
    assert!(debug.contains("redacted"), "{debug}");
    let share_hex = hex::encode(key.as_frost().signing_share().serialize());
    assert!(!debug.contains(&share_hex));
    let bytes = key.to_bytes().unwrap();
    assert!(!debug.contains(&hex::encode(&bytes[..])));

    let (mut machines, r1) = start(&[1, 2, 3], 71);
    let r2 = deliver_round1(&mut machines, &r1);
    let pkg = &r2[0].2;
    let share_hex = hex::encode(pkg.as_frost().signing_share().serialize());
    assert_eq!(format!("{pkg:?}"), "Round2Package(<redacted>)");
    assert!(!format!("{:?}", machines[&1]).contains(&share_hex));
}
