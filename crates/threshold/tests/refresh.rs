//! Refresh when a node leaves: same group key, leaver removed, old share useless.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use frost_ed25519 as frost;
use threshold::{DkgError, NodeKey, PublicGroup, Refresh};

#[test]
fn leaver_is_removed_and_the_group_key_stays() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 200);
    let (new_keys, new_group) = run_refresh(&keys, &group, &[1, 2, 3, 4], 201);
    assert_eq!(new_group.group_key(), group.group_key());
    assert_eq!(new_group.threshold(), 3);
    assert_eq!(new_group.member_ids(), vec![1, 2, 3, 4]);
    assert!(!new_group.contains(5));
    for (id, key) in &new_keys {
        key.check_against(&new_group).unwrap();
        // Every share changed.
        assert_ne!(
            key.verifying_share().unwrap(),
            keys[id].verifying_share().unwrap()
        );
        assert!(keys[id].check_against(&new_group).is_err());
    }
    for (i, signers) in subsets(&[1, 2, 3, 4], 3).iter().enumerate() {
        let msg = format!("after refresh {i}");
        let sig = sign_with(
            &new_keys,
            &new_group,
            signers,
            msg.as_bytes(),
            210 + i as u64,
        )
        .unwrap();
        assert!(dalek_verify(&group, msg.as_bytes(), &sig));
    }
    // The leaver is not a member of the new group.
    let mut agg = threshold::Aggregator::new(&new_group, b"m");
    let (_n, c) = threshold::commit(&keys[&5], &mut rng(1));
    assert!(matches!(
        agg.add_commitment(5, c),
        Err(threshold::SignError::UnknownSigner { node: 5 })
    ));
}

/// Signs at the frost level with arbitrary key packages and verifying shares, no threshold check
/// beyond frost's own, cheater detection off; returns whether the result verifies.
fn frost_sign(packages: &[&frost::keys::KeyPackage], group: &PublicGroup, seed: u64) -> bool {
    let mut r = rng(seed);
    let mut nonces = BTreeMap::new();
    let mut comms = BTreeMap::new();
    let mut vshares = BTreeMap::new();
    for kp in packages {
        let (n, c) = frost::round1::commit(kp.signing_share(), &mut r);
        nonces.insert(*kp.identifier(), n);
        comms.insert(*kp.identifier(), c);
        vshares.insert(*kp.identifier(), *kp.verifying_share());
    }
    let pkg = frost::SigningPackage::new(comms, b"leaver test");
    let mut shares = BTreeMap::new();
    for kp in packages {
        shares.insert(
            *kp.identifier(),
            frost::round2::sign(&pkg, &nonces[kp.identifier()], kp).unwrap(),
        );
    }
    let pubkeys = frost::keys::PublicKeyPackage::new(
        vshares,
        group.group_key().to_frost().unwrap(),
        Some(group.threshold()),
    );
    frost::aggregate_custom(&pkg, &shares, &pubkeys, frost::CheaterDetection::Disabled).is_ok()
}

#[test]
fn leavers_old_share_does_not_combine_with_refreshed_shares() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 220);
    let (new_keys, new_group) = run_refresh(&keys, &group, &[1, 2, 3, 4], 221);
    let old5 = keys[&5].as_frost();
    // Control: the old shares still sign together (the leaver must delete its share; refresh is
    // what makes it useless with the others' new shares), and the new shares sign together.
    assert!(frost_sign(
        &[keys[&1].as_frost(), keys[&2].as_frost(), old5],
        &group,
        222
    ));
    assert!(frost_sign(
        &[
            new_keys[&1].as_frost(),
            new_keys[&2].as_frost(),
            new_keys[&3].as_frost()
        ],
        &new_group,
        223
    ));
    // The leaver's old share with any two refreshed shares: no valid signature.
    for pair in subsets(&[1, 2, 3, 4], 2) {
        let set = [
            new_keys[&pair[0]].as_frost(),
            new_keys[&pair[1]].as_frost(),
            old5,
        ];
        assert!(
            !frost_sign(&set, &group, 224),
            "old 5 + new {pair:?} signed"
        );
    }
    // Mixed old and new among the remaining members also fails.
    assert!(!frost_sign(
        &[
            keys[&1].as_frost(),
            new_keys[&2].as_frost(),
            new_keys[&3].as_frost()
        ],
        &group,
        225
    ));
}

#[test]
fn refresh_down_to_exactly_t_members() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 230);
    let (new_keys, new_group) = run_refresh(&keys, &group, &[1, 3], 231);
    assert_eq!(new_group.member_ids(), vec![1, 3]);
    assert_eq!(new_group.group_key(), group.group_key());
    let sig = sign_with(&new_keys, &new_group, &[1, 3], b"two left", 232).unwrap();
    assert!(dalek_verify(&group, b"two left", &sig));
    // Old 2 plus new 1 cannot sign.
    assert!(!frost_sign(
        &[keys[&2].as_frost(), new_keys[&1].as_frost()],
        &group,
        233
    ));
}

#[test]
fn refresh_without_removal_rotates_all_shares() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 240);
    let (new_keys, new_group) = run_refresh(&keys, &group, &[1, 2, 3], 241);
    assert_eq!(new_group.member_ids(), vec![1, 2, 3]);
    assert_ne!(new_group, group);
    let sig = sign_with(&new_keys, &new_group, &[2, 3], b"rotated", 242).unwrap();
    assert!(dalek_verify(&group, b"rotated", &sig));
}

#[test]
fn refresh_refuses_bad_parameters() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 250);
    let mut r = rng(251);
    assert!(matches!(
        Refresh::new(&keys[&1], &group, &[1, 2], &mut r),
        Err(DkgError::BadThreshold {
            threshold: 3,
            participants: 2
        })
    ));
    assert!(matches!(
        Refresh::new(&keys[&1], &group, &[1, 2, 9], &mut r),
        Err(DkgError::NotInGroup { node: 9 })
    ));
    assert!(matches!(
        Refresh::new(&keys[&1], &group, &[2, 3, 4], &mut r),
        Err(DkgError::NotAParticipant { me: 1 })
    ));
    let (other_keys, _) = run_dkg(&[1, 2, 3, 4, 5], 3, 252);
    assert!(matches!(
        Refresh::new(&other_keys[&1], &group, &[1, 2, 3], &mut r),
        Err(DkgError::KeyMismatch(_))
    ));
}

fn start_refresh(
    keys: &BTreeMap<u16, NodeKey>,
    group: &PublicGroup,
    remaining: &[u16],
    seed: u64,
) -> (
    BTreeMap<u16, Refresh>,
    BTreeMap<u16, threshold::Round1Package>,
) {
    let mut r = rng(seed);
    let mut machines = BTreeMap::new();
    let mut r1 = BTreeMap::new();
    for &m in remaining {
        let (d, p) = Refresh::new(&keys[&m], group, remaining, &mut r).unwrap();
        machines.insert(m, d);
        r1.insert(m, p);
    }
    (machines, r1)
}

#[test]
fn refresh_altered_round2_share_aborts_naming_sender() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 260);
    let remaining = [1u16, 2, 3, 4];
    let (mut machines, r1) = start_refresh(&keys, &group, &remaining, 261);
    let r2 = deliver_round1(&mut machines, &r1);
    let for_4 = r2
        .iter()
        .find(|(f, t, _)| *f == 3 && *t == 4)
        .map(|(_, _, p)| p.clone())
        .unwrap();
    let node1 = machines.get_mut(&1).unwrap();
    let mut err = None;
    for (from, to, p) in &r2 {
        if *to == 1 {
            let p = if *from == 3 { for_4.clone() } else { wire(p) };
            if let Err(e) = node1.on_round2(*from, p) {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("altered refresh share accepted");
    assert!(matches!(err, DkgError::InvalidShare { from: 3 }), "{err}");
    assert!(node1.is_aborted());
}

#[test]
fn refresh_altered_round1_commitment_is_caught_naming_sender() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 270);
    let remaining = [1u16, 2, 3, 4];
    let (mut machines, r1) = start_refresh(&keys, &group, &remaining, 271);
    let (_, other_r1) = start_refresh(&keys, &group, &remaining, 272);
    // Node 1 receives node 2's round-1 package with another run's commitment in it.
    let mut altered = serde_json::to_value(&r1[&2]).unwrap();
    altered["commitment"] = serde_json::to_value(&other_r1[&2]).unwrap()["commitment"].clone();
    let altered: threshold::Round1Package = serde_json::from_value(altered).unwrap();
    let mut r2 = Vec::new();
    for (&to, m) in machines.iter_mut() {
        for (&from, p) in &r1 {
            if from == to {
                continue;
            }
            let p = if to == 1 && from == 2 {
                altered.clone()
            } else {
                wire(p)
            };
            if let Some(out) = m.on_round1(from, p).unwrap() {
                r2.extend(out.into_iter().map(|(d, p)| (to, d, p)));
            }
        }
    }
    let node1 = machines.get_mut(&1).unwrap();
    let mut err = None;
    for (from, to, p) in &r2 {
        if *to == 1 {
            if let Err(e) = node1.on_round2(*from, wire(p)) {
                err = Some(e);
                break;
            }
        }
    }
    let err = err.expect("altered commitment went unnoticed");
    assert!(matches!(err, DkgError::InvalidShare { from: 2 }), "{err}");

    // A refresh commitment must have t−1 entries: a DKG-sized one is refused on arrival.
    let (mut machines, r1) = start_refresh(&keys, &group, &remaining, 273);
    let mut dkg_r = rng(274);
    let (_, dkg_pkg) = threshold::Dkg::new(2, &[1, 2, 3, 4], 3, &mut dkg_r).unwrap();
    let mut altered = serde_json::to_value(&r1[&2]).unwrap();
    altered["commitment"] = serde_json::to_value(&dkg_pkg).unwrap()["commitment"].clone();
    let altered: threshold::Round1Package = serde_json::from_value(altered).unwrap();
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
