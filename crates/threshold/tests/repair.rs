//! Repair when a node joins: the newcomer gets a share of the unchanged key; every tampering is
//! caught, and named where the checks allow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar;
use threshold::{
    NodeKey, PublicGroup, RepairDelta, RepairError, RepairHelper, RepairNewcomer, RepairSigma,
};

type DeltaMsgs = Vec<(u16, u16, RepairDelta)>;

/// Starts the helpers; returns them and every delta message (from, to, msg).
fn start_helpers(
    keys: &BTreeMap<u16, NodeKey>,
    group: &PublicGroup,
    helpers: &[u16],
    newcomer: u16,
    seed: u64,
) -> (BTreeMap<u16, RepairHelper>, DeltaMsgs) {
    let mut r = rng(seed);
    let mut machines = BTreeMap::new();
    let mut msgs = Vec::new();
    for &h in helpers {
        let (m, out) = RepairHelper::new(&keys[&h], group, helpers, newcomer, &mut r).unwrap();
        assert_eq!(out.len(), helpers.len() - 1);
        machines.insert(h, m);
        msgs.extend(out.into_iter().map(|(to, d)| (h, to, d)));
    }
    (machines, msgs)
}

/// Delivers deltas (with an optional tamper hook); returns the sigma messages or the first error.
fn deliver_deltas(
    machines: &mut BTreeMap<u16, RepairHelper>,
    msgs: DeltaMsgs,
    mut tamper: impl FnMut(u16, u16, RepairDelta) -> RepairDelta,
) -> Result<Vec<(u16, RepairSigma)>, RepairError> {
    let mut sigmas = Vec::new();
    for (from, to, msg) in msgs {
        let msg = tamper(from, to, wire(&msg));
        if let Some((newcomer_id, sigma)) = machines.get_mut(&to).unwrap().on_delta(from, msg)? {
            let _ = newcomer_id;
            sigmas.push((to, sigma));
        }
    }
    Ok(sigmas)
}

fn join(
    keys: &BTreeMap<u16, NodeKey>,
    group: &PublicGroup,
    helpers: &[u16],
    newcomer: u16,
    seed: u64,
) -> (NodeKey, PublicGroup) {
    let (mut machines, msgs) = start_helpers(keys, group, helpers, newcomer, seed);
    let sigmas = deliver_deltas(&mut machines, msgs, |_, _, m| m).unwrap();
    assert_eq!(sigmas.len(), helpers.len());
    let mut nc = RepairNewcomer::new(newcomer, group, helpers).unwrap();
    let mut out = None;
    for (from, s) in sigmas {
        out = nc.on_sigma(from, wire(&s)).unwrap();
    }
    out.expect("newcomer finished")
}

fn newcomer_joins_and_signs(members: &[u16], helpers: &[u16], newcomer: u16, seed: u64) {
    let t = threshold::default_threshold(members.len() as u16);
    let (mut keys, group) = run_dkg(members, t, seed);
    let (key, new_group) = join(&keys, &group, helpers, newcomer, seed + 1);
    assert_eq!(key.id(), newcomer);
    assert_eq!(new_group.group_key(), group.group_key());
    assert_eq!(new_group.threshold(), t);
    assert!(new_group.contains(newcomer));
    assert_eq!(new_group.len(), members.len() + 1);
    // Every existing member checks the announced verifying share and reaches the same record.
    let announced = key.verifying_share().unwrap();
    for &m in members {
        let theirs = group.with_member(newcomer, &announced).unwrap();
        assert_eq!(theirs, new_group, "member {m}");
    }
    keys.insert(newcomer, key);
    // The newcomer signs with t−1 old members; no old share changed.
    let mut all: Vec<u16> = members.to_vec();
    all.push(newcomer);
    for (i, others) in subsets(members, usize::from(t) - 1).iter().enumerate() {
        let mut signers = others.clone();
        signers.push(newcomer);
        let msg = format!("with the newcomer {i}");
        let sig = sign_with(
            &keys,
            &new_group,
            &signers,
            msg.as_bytes(),
            seed + 10 + i as u64,
        )
        .unwrap();
        assert!(dalek_verify(&group, msg.as_bytes(), &sig), "{signers:?}");
    }
    // Old members alone still sign under the new record.
    let sig = sign_with(&keys, &new_group, &members[..usize::from(t)], b"old", seed).unwrap();
    assert!(dalek_verify(&group, b"old", &sig));
}

#[test]
fn newcomer_joins_a_3_node_group_and_signs() {
    newcomer_joins_and_signs(&[1, 2, 3], &[1, 3], 4, 300);
}

#[test]
fn newcomer_joins_a_5_node_group_and_signs() {
    newcomer_joins_and_signs(&[1, 2, 3, 4, 5], &[2, 3, 5], 9, 320);
}

#[test]
fn newcomer_joins_after_a_leaver_was_refreshed_out() {
    // Node 3 leaves (refresh), node 7 joins (repair): the key never changes.
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 340);
    let (mut keys2, group2) = run_refresh(&keys, &group, &[1, 2], 341);
    let (key7, group3) = join(&keys2, &group2, &[1, 2], 7, 342);
    keys2.insert(7, key7);
    assert_eq!(group3.member_ids(), vec![1, 2, 7]);
    let sig = sign_with(&keys2, &group3, &[2, 7], b"after churn", 343).unwrap();
    assert!(dalek_verify(&group, b"after churn", &sig));
}

fn add_scalar_to_delta(msg: &RepairDelta, add: &Scalar) -> serde_json::Value {
    let mut v = serde_json::to_value(msg).unwrap();
    let bytes: [u8; 32] = hex::decode(v["delta"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let d = Scalar::from_canonical_bytes(bytes).unwrap() + add;
    v["delta"] = hex::encode(d.to_bytes()).into();
    v
}

#[test]
fn tampered_delta_is_detected_naming_its_sender() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 360);
    let helpers = [1u16, 2, 4];
    let (mut machines, msgs) = start_helpers(&keys, &group, &helpers, 6, 361);
    // The delta from 2 to 4 is changed in transit.
    let err = deliver_deltas(&mut machines, msgs, |from, to, m| {
        if from == 2 && to == 4 {
            serde_json::from_value(add_scalar_to_delta(&m, &Scalar::ONE)).unwrap()
        } else {
            m
        }
    })
    .unwrap_err();
    assert!(
        matches!(err, RepairError::DeltaMismatch { from: 2 }),
        "{err}"
    );
    assert_eq!(err.culprit(), Some(2));
}

#[test]
fn helper_that_splits_the_wrong_value_is_named() {
    // Helper 2 changes its delta to 4 and the matching commitment (a helper lying about its own
    // split, consistently to everyone): the delta check passes, the sum check names helper 2.
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 380);
    let helpers = [1u16, 2, 4];
    let (mut machines, msgs) = start_helpers(&keys, &group, &helpers, 6, 381);
    let bump = |v: &mut serde_json::Value| {
        let c: [u8; 32] = hex::decode(v["commitments"]["4"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let p = CompressedEdwardsY(c).decompress().unwrap() + ED25519_BASEPOINT_POINT;
        v["commitments"]["4"] = hex::encode(p.compress().to_bytes()).into();
    };
    let err = deliver_deltas(&mut machines, msgs, |from, to, m| {
        if from != 2 {
            return m;
        }
        let mut v = if to == 4 {
            add_scalar_to_delta(&m, &Scalar::ONE)
        } else {
            serde_json::to_value(&m).unwrap()
        };
        bump(&mut v);
        serde_json::from_value(v).unwrap()
    })
    .unwrap_err();
    assert!(
        matches!(err, RepairError::BadCommitments { from: 2 }),
        "{err}"
    );
}

#[test]
fn tampered_sigma_is_detected_naming_its_sender() {
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 400);
    let helpers = [2u16, 3];
    let (mut machines, msgs) = start_helpers(&keys, &group, &helpers, 5, 401);
    let sigmas = deliver_deltas(&mut machines, msgs, |_, _, m| m).unwrap();
    let from_2 = sigmas.iter().find(|(f, _)| *f == 2).unwrap().1.clone();
    let mut nc = RepairNewcomer::new(5, &group, &helpers).unwrap();
    let mut result = Ok(None);
    for (from, s) in sigmas {
        let s = if from == 3 {
            let mut v = serde_json::to_value(&s).unwrap();
            let bytes: [u8; 32] = hex::decode(v["sigma"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let x = Scalar::from_canonical_bytes(bytes).unwrap() + Scalar::ONE;
            v["sigma"] = hex::encode(x.to_bytes()).into();
            serde_json::from_value(v).unwrap()
        } else {
            s
        };
        result = nc.on_sigma(from, s);
        if result.is_err() {
            break;
        }
    }
    let err = result.unwrap_err();
    assert!(
        matches!(err, RepairError::SigmaMismatch { from: 3 }),
        "{err}"
    );
    assert_eq!(err.culprit(), Some(3));
    // No member came out of it, and the newcomer refuses to go on.
    assert!(matches!(nc.on_sigma(2, from_2), Err(RepairError::Aborted)));
}

#[test]
fn wrong_announced_verifying_share_is_refused_by_interpolation() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 420);
    let (key, new_group) = join(&keys, &group, &[1, 2, 3], 8, 421);
    let good = key.verifying_share().unwrap();
    assert_eq!(group.expected_verifying_share(8).unwrap(), good);
    // A newcomer that announces another point (here: its share plus G) is refused.
    let forged = (CompressedEdwardsY(good).decompress().unwrap() + ED25519_BASEPOINT_POINT)
        .compress()
        .to_bytes();
    assert!(matches!(
        group.with_member(8, &forged),
        Err(RepairError::VerifyingShareMismatch { node: 8 })
    ));
    // So is a member's existing share replayed for the newcomer.
    let replayed = group.verifying_share(1).unwrap();
    assert!(matches!(
        group.with_member(8, &replayed),
        Err(RepairError::VerifyingShareMismatch { node: 8 })
    ));
    assert!(matches!(
        new_group.with_member(8, &good),
        Err(RepairError::AlreadyMember { node: 8 })
    ));
    // A newcomer share off the polynomial (the right one plus 1) is refused.
    let mut shifted = Scalar::from_canonical_bytes(
        key.as_frost()
            .signing_share()
            .serialize()
            .try_into()
            .unwrap(),
    )
    .unwrap();
    shifted += Scalar::ONE;
    let vs = (ED25519_BASEPOINT_POINT * shifted).compress().to_bytes();
    assert!(matches!(
        group.with_member(8, &vs),
        Err(RepairError::VerifyingShareMismatch { node: 8 })
    ));
}

#[test]
fn repair_refuses_bad_parameters_and_messages() {
    let (keys, group) = run_dkg(&[1, 2, 3, 4, 5], 3, 440);
    let mut r = rng(441);
    assert!(matches!(
        RepairHelper::new(&keys[&1], &group, &[1, 2], 6, &mut r),
        Err(RepairError::WrongHelperCount { got: 2, need: 3 })
    ));
    assert!(matches!(
        RepairHelper::new(&keys[&1], &group, &[1, 2, 3, 4], 6, &mut r),
        Err(RepairError::WrongHelperCount { got: 4, need: 3 })
    ));
    assert!(matches!(
        RepairHelper::new(&keys[&1], &group, &[1, 2, 3], 4, &mut r),
        Err(RepairError::AlreadyMember { node: 4 })
    ));
    assert!(matches!(
        RepairHelper::new(&keys[&1], &group, &[2, 3, 4], 6, &mut r),
        Err(RepairError::NotAHelper { me: 1 })
    ));
    assert!(matches!(
        RepairHelper::new(&keys[&1], &group, &[1, 2, 9], 6, &mut r),
        Err(RepairError::NotAMember { node: 9 })
    ));
    assert!(matches!(
        RepairHelper::new(&keys[&1], &group, &[1, 1, 2], 6, &mut r),
        Err(RepairError::DuplicateHelper { node: 1 })
    ));
    assert!(matches!(
        RepairNewcomer::new(0, &group, &[1, 2, 3]),
        Err(RepairError::InvalidNodeId)
    ));

    let helpers = [1u16, 2, 3];
    let (mut machines, msgs) = start_helpers(&keys, &group, &helpers, 6, 442);
    let (from, to, m) = msgs
        .iter()
        .find(|(f, t, _)| *f == 1 && *t == 2)
        .cloned()
        .unwrap();
    let h2 = machines.get_mut(&to).unwrap();
    assert!(matches!(
        h2.on_delta(5, m.clone()),
        Err(RepairError::UnknownSender { from: 5 })
    ));
    assert!(matches!(
        h2.on_delta(2, m.clone()),
        Err(RepairError::FromSelf { me: 2 })
    ));
    assert!(h2.on_delta(from, m.clone()).unwrap().is_none());
    assert!(matches!(
        h2.on_delta(from, m.clone()),
        Err(RepairError::Duplicate { from: 1 })
    ));
    // Routing refusals do not abort: the repair still completes.
    let rest: Vec<_> = msgs
        .into_iter()
        .filter(|(f, t, _)| !(*f == 1 && *t == 2))
        .collect();
    let sigmas = deliver_deltas(&mut machines, rest, |_, _, m| m).unwrap();
    assert_eq!(sigmas.len(), 3);
    assert!(format!("{m:?}").contains("redacted"));
}
