//! Test drivers: run the sans-IO machines by hand in one thread, every message through JSON.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use threshold::{
    commit, sign_share, Aggregator, Dkg, DkgError, NodeKey, PublicGroup, Refresh, Round1Package,
    Round2Out, Round2Package, SignError,
};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Sends a message "over the wire": JSON out and back in.
pub fn wire<T: Serialize + DeserializeOwned>(msg: &T) -> T {
    serde_json::from_str(&serde_json::to_string(msg).unwrap()).unwrap()
}

/// Either machine shape.
pub trait Machine {
    fn round1(&mut self, from: u16, p: Round1Package) -> Result<Option<Round2Out>, DkgError>;
    fn round2(
        &mut self,
        from: u16,
        p: Round2Package,
    ) -> Result<Option<(NodeKey, PublicGroup)>, DkgError>;
}

impl Machine for Dkg {
    fn round1(&mut self, from: u16, p: Round1Package) -> Result<Option<Round2Out>, DkgError> {
        self.on_round1(from, p)
    }
    fn round2(
        &mut self,
        from: u16,
        p: Round2Package,
    ) -> Result<Option<(NodeKey, PublicGroup)>, DkgError> {
        self.on_round2(from, p)
    }
}

impl Machine for Refresh {
    fn round1(&mut self, from: u16, p: Round1Package) -> Result<Option<Round2Out>, DkgError> {
        self.on_round1(from, p)
    }
    fn round2(
        &mut self,
        from: u16,
        p: Round2Package,
    ) -> Result<Option<(NodeKey, PublicGroup)>, DkgError> {
        self.on_round2(from, p)
    }
}

/// Round-2 messages produced in round 1: (from, to, package).
pub type Round2Msgs = Vec<(u16, u16, Round2Package)>;

/// Delivers every round-1 package to every other machine; returns the round-2 messages.
pub fn deliver_round1<M: Machine>(
    machines: &mut BTreeMap<u16, M>,
    r1: &BTreeMap<u16, Round1Package>,
) -> Round2Msgs {
    let mut out = Vec::new();
    for (&to, m) in machines.iter_mut() {
        for (&from, p) in r1 {
            if from == to {
                continue;
            }
            if let Some(msgs) = m.round1(from, wire(p)).unwrap() {
                for (dest, pkg) in msgs {
                    out.push((to, dest, pkg));
                }
            }
        }
    }
    out
}

/// Delivers round-2 messages; returns each machine's output.
pub fn deliver_round2<M: Machine>(
    machines: &mut BTreeMap<u16, M>,
    r2: Round2Msgs,
) -> BTreeMap<u16, (NodeKey, PublicGroup)> {
    let mut outputs = BTreeMap::new();
    for (from, to, pkg) in r2 {
        if let Some(o) = machines
            .get_mut(&to)
            .unwrap()
            .round2(from, wire(&pkg))
            .unwrap()
        {
            outputs.insert(to, o);
        }
    }
    outputs
}

/// Checks all members agree on the group; returns keys and the group.
pub fn agree(
    outputs: BTreeMap<u16, (NodeKey, PublicGroup)>,
) -> (BTreeMap<u16, NodeKey>, PublicGroup) {
    let mut keys = BTreeMap::new();
    let mut group: Option<PublicGroup> = None;
    for (id, (key, g)) in outputs {
        assert_eq!(key.id(), id);
        if let Some(first) = &group {
            assert_eq!(first, &g, "node {id} computed a different group");
            assert_eq!(first.fingerprint(), g.fingerprint());
        } else {
            group = Some(g);
        }
        keys.insert(id, key);
    }
    (keys, group.unwrap())
}

/// Runs a whole DKG; every node's output must agree.
pub fn run_dkg(members: &[u16], t: u16, seed: u64) -> (BTreeMap<u16, NodeKey>, PublicGroup) {
    let mut r = rng(seed);
    let mut machines = BTreeMap::new();
    let mut r1 = BTreeMap::new();
    for &m in members {
        let (d, p) = Dkg::new(m, members, t, &mut r).unwrap();
        machines.insert(m, d);
        r1.insert(m, p);
    }
    let r2 = deliver_round1(&mut machines, &r1);
    assert_eq!(r2.len(), members.len() * (members.len() - 1));
    let outputs = deliver_round2(&mut machines, r2);
    assert_eq!(outputs.len(), members.len());
    agree(outputs)
}

/// Runs a whole refresh among `remaining`.
pub fn run_refresh(
    keys: &BTreeMap<u16, NodeKey>,
    group: &PublicGroup,
    remaining: &[u16],
    seed: u64,
) -> (BTreeMap<u16, NodeKey>, PublicGroup) {
    let mut r = rng(seed);
    let mut machines = BTreeMap::new();
    let mut r1 = BTreeMap::new();
    for &m in remaining {
        let (d, p) = Refresh::new(&keys[&m], group, remaining, &mut r).unwrap();
        machines.insert(m, d);
        r1.insert(m, p);
    }
    let r2 = deliver_round1(&mut machines, &r1);
    let outputs = deliver_round2(&mut machines, r2);
    assert_eq!(outputs.len(), remaining.len());
    agree(outputs)
}

/// Runs one signature by `signers` through the public API, messages through JSON.
pub fn sign_with(
    keys: &BTreeMap<u16, NodeKey>,
    group: &PublicGroup,
    signers: &[u16],
    msg: &[u8],
    seed: u64,
) -> Result<[u8; 64], SignError> {
    let mut r = rng(seed);
    let mut agg = Aggregator::new(group, msg);
    let mut nonces = BTreeMap::new();
    for &s in signers {
        let (n, c) = commit(&keys[&s], &mut r);
        nonces.insert(s, n);
        agg.add_commitment(s, wire(&c))?;
    }
    let package = agg.signing_package()?;
    for (s, n) in nonces {
        let pkg = wire(&package);
        assert_eq!(pkg.message(), msg);
        let share = sign_share(&keys[&s], n, &pkg)?;
        agg.add_share(s, wire(&share))?;
    }
    agg.aggregate()
}

/// Verifies with ed25519-dalek's strict verifier (the reference Ed25519 implementation).
pub fn dalek_verify(group: &PublicGroup, msg: &[u8], sig: &[u8; 64]) -> bool {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&group.group_key().to_bytes()).unwrap();
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .is_ok()
}

/// All k-subsets of `ids`.
pub fn subsets(ids: &[u16], k: usize) -> Vec<Vec<u16>> {
    if k == 0 {
        return vec![vec![]];
    }
    if ids.len() < k {
        return vec![];
    }
    let mut with_first: Vec<Vec<u16>> = subsets(&ids[1..], k - 1)
        .into_iter()
        .map(|mut s| {
            s.insert(0, ids[0]);
            s
        })
        .collect();
    with_first.extend(subsets(&ids[1..], k));
    with_first
}
