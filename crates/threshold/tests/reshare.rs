//! Resharing to a new member set and threshold: the group key is unchanged, t′ of the new
//! members sign, fewer cannot, old and new shares do not combine, and a dealer that deals
//! anything but its own weighted share, or a share off its commitments, is named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use threshold::reshare::{deal, new_group};
use threshold::{Commitments, DealtShare, NodeKey, PublicGroup, Receiver, ResharePlan};

type Dealt = (BTreeMap<u16, Commitments>, Vec<DealtShare>);

/// Every dealer's output, through the wire encoding.
fn deal_all(
    plan: &ResharePlan,
    keys: &BTreeMap<u16, NodeKey>,
    dealers: &[u16],
    seed: u64,
) -> Dealt {
    let mut r = rng(seed);
    let mut commitments = BTreeMap::new();
    let mut shares = Vec::new();
    for &d in dealers {
        let (c, s) = deal(plan, &keys[&d], &mut r).unwrap();
        commitments.insert(d, wire(&c));
        shares.extend(s.iter().map(wire));
    }
    (commitments, shares)
}

/// Every new member's receiver fed everything; their outputs must agree.
fn receive_all(
    plan: &ResharePlan,
    members: &[u16],
    (commitments, shares): Dealt,
) -> (BTreeMap<u16, NodeKey>, PublicGroup) {
    let mut keys = BTreeMap::new();
    let mut group = None;
    for &m in members {
        let mut rx = Receiver::new(plan, m).unwrap();
        for (&d, c) in &commitments {
            rx.on_commitments(d, c.clone()).unwrap();
        }
        for s in shares.iter().filter(|s| s.to == m) {
            rx.on_share(s.dealer, s.clone()).unwrap();
        }
        let (k, g) = rx.finish().unwrap();
        assert_eq!(
            g.fingerprint(),
            group.get_or_insert(g.clone()).fingerprint()
        );
        keys.insert(m, k);
    }
    (keys, group.unwrap())
}

#[test]
fn three_to_five_with_threshold_three_keeps_the_key() {
    let (old_keys, old) = run_dkg(&[1, 2, 3], 2, 1);
    let members = [1, 2, 3, 4, 5];
    let plan = ResharePlan::new(&old, &[1, 3], &members, 3).unwrap();
    let dealt = deal_all(&plan, &old_keys, &[1, 3], 2);
    let outsider = new_group(&plan, &dealt.0).unwrap();
    let (keys, group) = receive_all(&plan, &members, dealt);
    assert_eq!(group.group_key(), old.group_key(), "the same group key");
    assert_eq!(group.threshold(), 3);
    assert_eq!(
        group.fingerprint(),
        outsider.fingerprint(),
        "anyone derives the record"
    );
    // Every 3 of the 5 sign; the signature verifies under the unchanged key.
    for signers in subsets(&members, 3) {
        let sig = sign_with(&keys, &group, &signers, b"after the join", 3).unwrap();
        assert!(dalek_verify(&old, b"after the join", &sig), "{signers:?}");
    }
    // Two of them cannot.
    assert!(sign_with(&keys, &group, &[4, 5], b"two", 4).is_err());
    // Old shares do not combine with new ones: members 1 and 2 with their old keys and
    // member 4 with its new one produce no valid signature under the new record.
    let copy = |k: &NodeKey| NodeKey::from_bytes(&k.to_bytes().unwrap()).unwrap();
    let mut mixed: BTreeMap<u16, NodeKey> = keys.iter().map(|(&i, k)| (i, copy(k))).collect();
    mixed.insert(1, copy(&old_keys[&1]));
    mixed.insert(2, copy(&old_keys[&2]));
    assert!(sign_with(&mixed, &group, &[1, 2, 4], b"mixed", 5).is_err());
}

#[test]
fn five_to_four_after_a_leave() {
    let (k3, g3) = run_dkg(&[1, 2, 3], 2, 11);
    let plan = ResharePlan::new(&g3, &[2, 3], &[1, 2, 3, 4, 5], 3).unwrap();
    let (k5, g5) = receive_all(&plan, &[1, 2, 3, 4, 5], deal_all(&plan, &k3, &[2, 3], 12));
    // Node 5 leaves: three of the remaining four reshare to t = 3 among 1–4.
    let plan = ResharePlan::new(&g5, &[1, 2, 4], &[1, 2, 3, 4], 3).unwrap();
    let (k4, g4) = receive_all(&plan, &[1, 2, 3, 4], deal_all(&plan, &k5, &[1, 2, 4], 13));
    assert_eq!(g4.group_key(), g3.group_key());
    assert_eq!(g4.len(), 4);
    let sig = sign_with(&k4, &g4, &[1, 3, 4], b"after the leave", 14).unwrap();
    assert!(dalek_verify(&g3, b"after the leave", &sig));
}

#[test]
fn a_plan_needs_exactly_the_old_threshold_of_member_dealers() {
    let (_, old) = run_dkg(&[1, 2, 3], 2, 21);
    for (dealers, members, t) in [
        (vec![1], vec![1, 2, 3], 2),
        (vec![1, 2, 3], vec![1, 2, 3], 2),
        (vec![1, 9], vec![1, 2, 3], 2),
        (vec![1, 2], vec![1, 2, 3], 1),
        (vec![1, 2], vec![1, 2, 3], 4),
        (vec![1, 2], vec![0, 1, 2], 2),
    ] {
        let e = ResharePlan::new(&old, &dealers, &members, t).unwrap_err();
        assert!(e.to_string().contains("invalid resharing"), "{e}");
    }
}

#[test]
fn a_dealer_dealing_another_constant_is_named() {
    // Dealer 3 deals with the key of a group it is not in: its constant commitment is not
    // λ₃ times its verifying share in this record.
    let (keys, old) = run_dkg(&[1, 2, 3], 2, 31);
    let (stranger_keys, _) = run_dkg(&[1, 2, 3], 2, 32);
    let plan = ResharePlan::new(&old, &[1, 3], &[1, 2, 3, 4], 3).unwrap();
    let mut r = rng(33);
    let (c1, _) = deal(&plan, &keys[&1], &mut r).unwrap();
    // The stranger's key does not match the record: deal refuses it outright…
    assert!(deal(&plan, &stranger_keys[&3], &mut r).is_err());
    // …and commitments that do not deal dealer 3's share are refused by name.
    let mut forged = c1.clone();
    forged.dealer = 3;
    let mut rx = Receiver::new(&plan, 4).unwrap();
    rx.on_commitments(1, c1).unwrap();
    let e = rx.on_commitments(3, forged).unwrap_err();
    assert_eq!(e.culprit(), Some(3), "{e}");
    assert!(e.to_string().contains("do not deal its share"), "{e}");
}

#[test]
fn a_share_off_its_commitments_is_named() {
    let (keys, old) = run_dkg(&[1, 2, 3], 2, 41);
    let plan = ResharePlan::new(&old, &[1, 2], &[1, 2, 3, 4], 3).unwrap();
    let (commitments, shares) = deal_all(&plan, &keys, &[1, 2], 42);
    let mut rx = Receiver::new(&plan, 4).unwrap();
    for (&d, c) in &commitments {
        rx.on_commitments(d, c.clone()).unwrap();
    }
    // Dealer 2's share for node 3 handed to node 4 as its own: another point of the
    // polynomial, refused.
    let for_3 = shares.iter().find(|s| s.dealer == 2 && s.to == 3).unwrap();
    let mut json = serde_json::to_value(for_3).unwrap();
    json["to"] = serde_json::json!(4);
    let wrong: DealtShare = serde_json::from_value(json).unwrap();
    let e = rx.on_share(2, wrong).unwrap_err();
    assert_eq!(e.culprit(), Some(2), "{e}");
    // A missing share is an error at the end, not a key.
    let mine = shares.iter().find(|s| s.dealer == 1 && s.to == 4).unwrap();
    rx.on_share(1, mine.clone()).unwrap();
    let e = rx.finish().unwrap_err();
    assert!(e.to_string().contains("has not arrived"), "{e}");
}
