//! Genesis as one sans-IO machine: a FROST distributed key generation for the group's
//! signing key and a UID key generation (each member deals a random Shamir sharing to every
//! member; each sums what it received, so the UID key never exists anywhere). The machine
//! holds no connection and no clock: the node daemon drives it over attested QUIC streams,
//! the local committee (`tessera prove --local`) by handing messages between three machines
//! in memory. Both run exactly this code.
//!
//! Each member sends every other member [`GenesisMsg::Round1`] and [`GenesisMsg::Uid`] at
//! the start, then [`GenesisMsg::Round2`] once every round-1 package is in; the machine
//! finishes when its DKG has an output and it holds a UID share from every member.

use std::collections::BTreeMap;

use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use threshold::dkg::{Round1Package, Round2Package};
use threshold::{default_threshold, Dkg, DkgError, NodeKey, PublicGroup};
use uid_prf::shamir::{keygen_combine, keygen_deal, ShamirError, Share};

use crate::state::NodeState;

/// A message from one genesis member to another.
#[derive(Clone, Serialize, Deserialize)]
pub enum GenesisMsg {
    /// The sender's FROST DKG round-1 package (broadcast: every member gets the same).
    Round1(Round1Package),
    /// The sender's share of its UID dealing for the receiver (secret: encrypted channel).
    Uid(Share),
    /// The sender's FROST DKG round-2 package for the receiver (secret).
    Round2(Round2Package),
}

impl std::fmt::Debug for GenesisMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GenesisMsg::Round1(_) => "Round1(..)",
            GenesisMsg::Uid(_) => "Uid(..)",
            GenesisMsg::Round2(_) => "Round2(..)",
        })
    }
}

/// Why genesis failed at this member.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The member set or the threshold is not one genesis accepts.
    #[error("genesis refused: {0}")]
    Members(String),
    /// The FROST DKG failed (a member's package did not check, and so on).
    #[error("key generation: {0}")]
    Dkg(#[from] DkgError),
    /// The UID key generation failed.
    #[error("UID key generation: {0}")]
    Uid(#[from] ShamirError),
    /// A member sent something out of turn, twice, or is not a member.
    #[error("node {from} broke the genesis protocol: {why}")]
    Protocol {
        /// The sender.
        from: u16,
        /// What was wrong.
        why: &'static str,
    },
}

/// What a member has at the end of genesis.
pub struct GenesisOutput {
    /// Its secrets: FROST key share and UID key share.
    pub state: NodeState,
    /// The group as it computed it.
    pub public: PublicGroup,
}

/// One member's genesis (see the module docs).
pub struct Genesis {
    me: u16,
    ids: Vec<u16>,
    dkg: Dkg,
    round1_from: Vec<u16>,
    uid_in: BTreeMap<u16, Share>,
    round2_from: Vec<u16>,
    dkg_out: Option<(NodeKey, PublicGroup)>,
}

impl Genesis {
    /// Starts genesis at member `me` of `members` with threshold `t` (which must be the
    /// default for the group's size). Returns the machine and the messages to send now.
    pub fn new<R: RngCore + CryptoRng>(
        me: u16,
        members: &[u16],
        t: u16,
        rng: &mut R,
    ) -> Result<(Self, Vec<(u16, GenesisMsg)>), GenesisError> {
        let mut ids = members.to_vec();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != members.len() || !ids.contains(&me) || ids.len() < 3 {
            return Err(GenesisError::Members(
                "genesis needs at least 3 distinct members including this node".into(),
            ));
        }
        let n = u16::try_from(ids.len())
            .map_err(|_| GenesisError::Members("too many members".into()))?;
        if t != default_threshold(n) {
            return Err(GenesisError::Members(format!(
                "threshold {t} refused: {n} members need threshold {}",
                default_threshold(n)
            )));
        }
        let (dkg, r1) = Dkg::new(me, &ids, t, rng)?;
        let dealt = keygen_deal(&ids, usize::from(t), rng)?;
        let mut uid_in = BTreeMap::new();
        let mut out = Vec::new();
        for share in dealt {
            if share.x == me {
                uid_in.insert(me, share);
            } else {
                out.push((share.x, GenesisMsg::Round1(r1.clone())));
                out.push((share.x, GenesisMsg::Uid(share)));
            }
        }
        let g = Genesis {
            me,
            ids,
            dkg,
            round1_from: Vec::new(),
            uid_in,
            round2_from: Vec::new(),
            dkg_out: None,
        };
        Ok((g, out))
    }

    /// This member's id.
    pub fn me(&self) -> u16 {
        self.me
    }

    /// The members, sorted.
    pub fn members(&self) -> &[u16] {
        &self.ids
    }

    /// Takes a message from member `from`; returns the messages to send in answer.
    pub fn handle(
        &mut self,
        from: u16,
        msg: GenesisMsg,
    ) -> Result<Vec<(u16, GenesisMsg)>, GenesisError> {
        let bad = |why| GenesisError::Protocol { from, why };
        if from == self.me || !self.ids.contains(&from) {
            return Err(bad("not another member of this genesis"));
        }
        match msg {
            GenesisMsg::Round1(p) => {
                if self.round1_from.contains(&from) {
                    return Err(bad("a second round-1 package"));
                }
                self.round1_from.push(from);
                Ok(self
                    .dkg
                    .on_round1(from, p)?
                    .map(|out| {
                        out.into_iter()
                            .map(|(to, p)| (to, GenesisMsg::Round2(p)))
                            .collect()
                    })
                    .unwrap_or_default())
            }
            GenesisMsg::Uid(s) => {
                if s.x != self.me {
                    return Err(bad("a UID share for another member"));
                }
                if self.uid_in.insert(from, s).is_some() {
                    return Err(bad("a second UID share"));
                }
                Ok(Vec::new())
            }
            GenesisMsg::Round2(p) => {
                if self.round1_from.len() + 1 != self.ids.len() {
                    return Err(bad("a round-2 package before round 1 ended"));
                }
                if self.round2_from.contains(&from) {
                    return Err(bad("a second round-2 package"));
                }
                self.round2_from.push(from);
                if let Some(o) = self.dkg.on_round2(from, p)? {
                    self.dkg_out = Some(o);
                }
                Ok(Vec::new())
            }
        }
    }

    /// Whether every message has arrived.
    pub fn is_done(&self) -> bool {
        (self.dkg_out.is_some() || self.round2_from.len() + 1 == self.ids.len())
            && self.uid_in.len() == self.ids.len()
    }

    /// The keys, once [`is_done`](Self::is_done).
    pub fn finish(mut self) -> Result<GenesisOutput, GenesisError> {
        let (key, public) = match self.dkg_out.take().or_else(|| self.dkg.take_output()) {
            Some(o) => o,
            None => {
                return Err(GenesisError::Members(
                    "genesis finished before the key generation completed".into(),
                ))
            }
        };
        if self.uid_in.len() != self.ids.len() {
            return Err(GenesisError::Members(
                "genesis finished before every UID share arrived".into(),
            ));
        }
        let received: Vec<Share> = std::mem::take(&mut self.uid_in).into_values().collect();
        let uid = keygen_combine(self.me, &received)?;
        Ok(GenesisOutput {
            state: NodeState {
                id: self.me,
                key,
                uid,
            },
            public,
        })
    }
}

/// Runs genesis for `members` in memory (every machine in this process), delivering every
/// message; each member's output, in `members` order. Used by the local committee and tests.
pub fn run_in_memory<R: RngCore + CryptoRng>(
    members: &[u16],
    rng: &mut R,
) -> Result<Vec<GenesisOutput>, GenesisError> {
    let n = u16::try_from(members.len())
        .map_err(|_| GenesisError::Members("too many members".into()))?;
    let t = default_threshold(n);
    let mut machines = Vec::new();
    let mut queue = std::collections::VecDeque::new();
    for &id in members {
        let (m, out) = Genesis::new(id, members, t, rng)?;
        queue.extend(out.into_iter().map(|(to, msg)| (id, to, msg)));
        machines.push(m);
    }
    while let Some((from, to, msg)) = queue.pop_front() {
        let m = machines
            .iter_mut()
            .find(|m| m.me() == to)
            .ok_or(GenesisError::Protocol {
                from,
                why: "a message for a node that is not a member",
            })?;
        let out = m.handle(from, msg)?;
        queue.extend(out.into_iter().map(|(t2, msg)| (to, t2, msg)));
    }
    let outs: Vec<GenesisOutput> = machines
        .into_iter()
        .map(Genesis::finish)
        .collect::<Result<_, _>>()?;
    if outs.windows(2).any(|w| w[0].public != w[1].public) {
        return Err(GenesisError::Members(
            "members computed different group keys".into(),
        ));
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn three_members_agree_and_their_uid_shares_combine() {
        let outs = run_in_memory(&[1, 2, 3], &mut OsRng).unwrap();
        assert_eq!(outs.len(), 3);
        let shares: Vec<Share> = outs.iter().map(|o| o.state.uid.clone()).collect();
        // Any two of the three shares give the same key (threshold 2).
        let k12 = uid_prf::shamir::combine(&shares[..2], 2)
            .unwrap()
            .to_bytes();
        let k23 = uid_prf::shamir::combine(&shares[1..], 2)
            .unwrap()
            .to_bytes();
        assert_eq!(k12, k23);
        for o in &outs {
            assert_eq!(
                o.public.verifying_share(o.state.id),
                o.state.key.verifying_share().ok()
            );
        }
    }

    #[test]
    fn deviations_are_named() {
        let (mut g, out) = Genesis::new(1, &[1, 2, 3], 2, &mut OsRng).unwrap();
        assert_eq!(out.len(), 4);
        let (_, out2) = Genesis::new(2, &[1, 2, 3], 2, &mut OsRng).unwrap();
        let r1 = out2
            .iter()
            .find(|(to, m)| *to == 1 && matches!(m, GenesisMsg::Round1(_)))
            .unwrap()
            .1
            .clone();
        let uid_for_3 = out2
            .iter()
            .find(|(to, m)| *to == 3 && matches!(m, GenesisMsg::Uid(_)))
            .unwrap()
            .1
            .clone();
        assert!(matches!(
            g.handle(4, r1.clone()),
            Err(GenesisError::Protocol { from: 4, .. })
        ));
        assert!(matches!(
            g.handle(2, uid_for_3),
            Err(GenesisError::Protocol { from: 2, why }) if why.contains("another member")
        ));
        g.handle(2, r1.clone()).unwrap();
        assert!(matches!(
            g.handle(2, r1),
            Err(GenesisError::Protocol { from: 2, why }) if why.contains("second round-1")
        ));
        assert!(!g.is_done());
    }

    #[test]
    fn a_wrong_threshold_or_member_set_is_refused() {
        assert!(matches!(
            Genesis::new(1, &[1, 2, 3], 3, &mut OsRng),
            Err(GenesisError::Members(_))
        ));
        assert!(matches!(
            Genesis::new(4, &[1, 2, 3], 2, &mut OsRng),
            Err(GenesisError::Members(_))
        ));
        assert!(matches!(
            Genesis::new(1, &[1, 2], 2, &mut OsRng),
            Err(GenesisError::Members(_))
        ));
    }
}
