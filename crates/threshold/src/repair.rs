//! Adding a node: exactly t existing members ("helpers") run frost's repairable threshold scheme
//! (`keys::repairable::repair_share_part1` / `part2` / `part3`) so a newcomer gets a share of the
//! unchanged group key at its own id. Sans-IO steps; the newcomer must never end up with a share
//! that is not on the group's polynomial.
//!
//! Flow: each helper i splits λᵢ·sᵢ (λᵢ = Lagrange coefficient of i at the newcomer's id over
//! the helper set) into t random deltas, one per helper, and sends each with the public vector of
//! commitments G·δ_{i→j}. Helper j checks every delta it receives against its sender's vector and
//! that the vector sums to λᵢ·VSᵢ (both name the sender on failure), sums its deltas into σⱼ and
//! sends σⱼ with its own vector to the newcomer. The newcomer re-checks the vectors, checks
//! G·σⱼ = Σᵢ G·δ_{i→j} (naming j), adds the σⱼ into its share, and checks its verifying share by
//! interpolation ([`PublicGroup::with_member`]). Existing members run the same interpolation check
//! on the verifying share the newcomer announces.
//!
//! The commitment vectors are an addition to frost's scheme, which has no checks: without them a
//! tampered delta is only caught by the final interpolation check, which cannot say who tampered.
//! They reveal G·δ, which hides δ computationally (frost's scheme hides it unconditionally).
//! Naming the right culprit assumes each helper sends the same vector to everyone (broadcast, as
//! in the DKG); the interpolation check does not depend on that.
//!
//! Adding members keeps t: the group then has N+1 shares with the same threshold.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use curve25519_dalek::edwards::EdwardsPoint;
use frost_ed25519::keys::repairable::{self as frost_repair, Delta, Sigma};
use frost_ed25519::Ed25519Sha512;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::curve;
use crate::group::{PublicGroup, ThresholdError};
use crate::key::NodeKey;

/// Why a repair step refused a message or stopped.
///
/// Errors that name a culprit ([`RepairError::culprit`]) abort the run.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// Node id 0.
    #[error("node id 0 is not allowed (ids are nonzero u16)")]
    InvalidNodeId,
    /// The newcomer's id is already a member.
    #[error("node {node} is already a member of the group")]
    AlreadyMember {
        /// The id.
        node: u16,
    },
    /// A helper is not a member of the group.
    #[error("helper {node} is not a member of the group")]
    NotAMember {
        /// The id.
        node: u16,
    },
    /// Not exactly t helpers.
    #[error("{got} helpers given; repair uses exactly the threshold {need}")]
    WrongHelperCount {
        /// Helpers given.
        got: usize,
        /// The threshold.
        need: u16,
    },
    /// A helper listed twice.
    #[error("helper {node} is listed twice")]
    DuplicateHelper {
        /// The id.
        node: u16,
    },
    /// This node is not in the helper list.
    #[error("node {me} is not in the helper list")]
    NotAHelper {
        /// This node.
        me: u16,
    },
    /// A message from a node that is not a helper of this repair.
    #[error("node {from} is not a helper of this repair; message refused")]
    UnknownSender {
        /// The claimed sender.
        from: u16,
    },
    /// A message from this node itself.
    #[error("node {me} was handed a message from itself")]
    FromSelf {
        /// This node.
        me: u16,
    },
    /// A second message from the same helper (the first stands).
    #[error("second message from helper {from}; refused")]
    Duplicate {
        /// The sender.
        from: u16,
    },
    /// A message whose scalar or points do not decode.
    #[error("message from helper {from} does not decode; aborted")]
    Malformed {
        /// The sender.
        from: u16,
    },
    /// A helper's commitment vector is not over the helper set or does not sum to λᵢ·VSᵢ: that
    /// helper did not split its own share.
    #[error(
        "helper {from}'s delta commitments do not add up to its weighted verifying share; aborted"
    )]
    BadCommitments {
        /// The sender.
        from: u16,
    },
    /// A delta that does not match its sender's commitment.
    #[error("delta from helper {from} does not match its commitment; aborted")]
    DeltaMismatch {
        /// The sender.
        from: u16,
    },
    /// A sigma that is not the sum of the deltas its sender received.
    #[error("sigma from helper {from} does not match the committed deltas; aborted")]
    SigmaMismatch {
        /// The sender.
        from: u16,
    },
    /// The new member's verifying share is not Σ λⱼ(x_new)·VSⱼ.
    #[error(
        "verifying share of node {node} does not interpolate from the group's shares; refused"
    )]
    VerifyingShareMismatch {
        /// The new member.
        node: u16,
    },
    /// This helper's key does not belong to the group.
    #[error("helper key does not belong to the group: {0}")]
    KeyMismatch(#[source] ThresholdError),
    /// A group-record check failed.
    #[error("group record check failed: {0}")]
    Group(#[source] ThresholdError),
    /// The run stopped earlier on a culprit-naming error.
    #[error("this repair was aborted by an earlier error; start a new one")]
    Aborted,
    /// The run already produced its output.
    #[error("this repair step has finished; message refused")]
    Finished,
    /// Another frost error, with the step it came from.
    #[error("frost {step} failed: {source}")]
    Frost {
        /// The frost function.
        step: &'static str,
        /// frost's error.
        #[source]
        source: frost_ed25519::Error,
    },
}

impl RepairError {
    /// The node this error blames, if any.
    pub fn culprit(&self) -> Option<u16> {
        match self {
            RepairError::Malformed { from }
            | RepairError::BadCommitments { from }
            | RepairError::DeltaMismatch { from }
            | RepairError::SigmaMismatch { from } => Some(*from),
            RepairError::VerifyingShareMismatch { node } => Some(*node),
            _ => None,
        }
    }
}

/// Helper i → helper j: δ_{i→j} (secret) and i's public commitment vector {k: G·δ_{i→k}}.
/// Send over a confidential, authenticated channel. `Debug` is redacted.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairDelta {
    delta: Delta,
    #[serde(with = "hex_points")]
    commitments: BTreeMap<u16, [u8; 32]>,
}

impl fmt::Debug for RepairDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepairDelta")
            .field("delta", &"<redacted>")
            .field(
                "commitments_for",
                &self.commitments.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Helper j → newcomer: σⱼ (secret) and j's own commitment vector. Send over a confidential,
/// authenticated channel. `Debug` is redacted.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairSigma {
    sigma: Sigma,
    #[serde(with = "hex_points")]
    commitments: BTreeMap<u16, [u8; 32]>,
}

impl fmt::Debug for RepairSigma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepairSigma")
            .field("sigma", &"<redacted>")
            .field(
                "commitments_for",
                &self.commitments.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Checks the helper list: exactly t distinct members, newcomer not a member.
fn check_helpers(
    group: &PublicGroup,
    helpers: &[u16],
    newcomer: u16,
) -> Result<BTreeSet<u16>, RepairError> {
    if newcomer == 0 {
        return Err(RepairError::InvalidNodeId);
    }
    if group.contains(newcomer) {
        return Err(RepairError::AlreadyMember { node: newcomer });
    }
    let mut set = BTreeSet::new();
    for &h in helpers {
        if !group.contains(h) {
            return Err(RepairError::NotAMember { node: h });
        }
        if !set.insert(h) {
            return Err(RepairError::DuplicateHelper { node: h });
        }
    }
    if set.len() != usize::from(group.threshold()) {
        return Err(RepairError::WrongHelperCount {
            got: set.len(),
            need: group.threshold(),
        });
    }
    Ok(set)
}

/// Decodes helper `from`'s commitment vector and checks Σⱼ Cⱼ = λ_from(x_new)·VS_from.
fn check_commitments(
    group: &PublicGroup,
    helpers: &BTreeSet<u16>,
    newcomer: u16,
    from: u16,
    commitments: &BTreeMap<u16, [u8; 32]>,
) -> Result<BTreeMap<u16, EdwardsPoint>, RepairError> {
    let bad = RepairError::BadCommitments { from };
    if commitments.keys().copied().collect::<BTreeSet<u16>>() != *helpers {
        return Err(bad);
    }
    let mut points = BTreeMap::new();
    let mut sum = curve::identity();
    for (&j, bytes) in commitments {
        let p = curve::decode_commitment(bytes).ok_or(RepairError::Malformed { from })?;
        sum += p;
        points.insert(j, p);
    }
    let vs = group
        .verifying_share(from)
        .and_then(|b| curve::decode_point(&b))
        .ok_or(RepairError::NotAMember { node: from })?;
    let lambda = curve::lagrange(curve::scalar_of(newcomer), helpers, from);
    if sum != vs * lambda {
        return Err(bad);
    }
    Ok(points)
}

/// One helper's side of a repair.
pub struct RepairHelper {
    me: u16,
    newcomer: u16,
    helpers: BTreeSet<u16>,
    group: PublicGroup,
    own_commitments: BTreeMap<u16, [u8; 32]>,
    /// Received deltas (and our own), as canonical scalar bytes, wiped on drop.
    deltas: BTreeMap<u16, Zeroizing<Vec<u8>>>,
    state: State,
}

/// Whether a message from `from` may be taken now: the run is collecting, the sender is
/// another helper, and it has not sent one already.
fn admit(
    state: State,
    me: u16,
    helpers: &BTreeSet<u16>,
    already: bool,
    from: u16,
) -> Result<(), RepairError> {
    match state {
        State::Aborted => return Err(RepairError::Aborted),
        State::Done => return Err(RepairError::Finished),
        State::Collecting => {}
    }
    if from == me {
        return Err(RepairError::FromSelf { me });
    }
    if !helpers.contains(&from) {
        return Err(RepairError::UnknownSender { from });
    }
    if already {
        return Err(RepairError::Duplicate { from });
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Collecting,
    Done,
    Aborted,
}

impl RepairHelper {
    /// Starts helping `newcomer` join. `helpers` are exactly t members of `group`, including this
    /// node (the holder of `key`). Returns the machine and the deltas to send to the other helpers.
    pub fn new<R: RngCore + CryptoRng>(
        key: &NodeKey,
        group: &PublicGroup,
        helpers: &[u16],
        newcomer: u16,
        rng: &mut R,
    ) -> Result<(RepairHelper, Vec<(u16, RepairDelta)>), RepairError> {
        key.check_against(group).map_err(RepairError::KeyMismatch)?;
        let me = key.id();
        let set = check_helpers(group, helpers, newcomer)?;
        if !set.contains(&me) {
            return Err(RepairError::NotAHelper { me });
        }
        let ident = |id: u16| curve::identifier(id).ok_or(RepairError::InvalidNodeId);
        let frost_helpers = set
            .iter()
            .map(|&h| ident(h))
            .collect::<Result<Vec<_>, _>>()?;
        let deltas = frost_repair::repair_share_part1::<Ed25519Sha512, R>(
            &frost_helpers,
            key.as_frost(),
            rng,
            ident(newcomer)?,
        )
        .map_err(|source| RepairError::Frost {
            step: "keys::repairable::repair_share_part1",
            source,
        })?;
        let mut by_node: BTreeMap<u16, Zeroizing<Vec<u8>>> = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for (ident, delta) in &deltas {
            let node = curve::node_id(ident).ok_or(RepairError::InvalidNodeId)?;
            let bytes = Zeroizing::new(delta.serialize());
            let scalar = curve::decode_scalar(&bytes)
                .map(Zeroizing::new)
                .ok_or(RepairError::Malformed { from: me })?;
            commitments.insert(node, curve::encode_point(&curve::base_mul(&scalar)));
            by_node.insert(node, bytes);
        }
        let mut out = Vec::with_capacity(set.len() - 1);
        for (ident, delta) in deltas {
            let node = curve::node_id(&ident).ok_or(RepairError::InvalidNodeId)?;
            if node != me {
                out.push((
                    node,
                    RepairDelta {
                        delta,
                        commitments: commitments.clone(),
                    },
                ));
            }
        }
        let own = by_node.remove(&me).ok_or(RepairError::NotAHelper { me })?;
        let mut received = BTreeMap::new();
        received.insert(me, own);
        Ok((
            RepairHelper {
                me,
                newcomer,
                helpers: set,
                group: group.clone(),
                own_commitments: commitments,
                deltas: received,
                state: State::Collecting,
            },
            out,
        ))
    }

    fn abort(&mut self, e: RepairError) -> RepairError {
        tracing::warn!(node = self.me, error = %e, "repair aborted");
        self.state = State::Aborted;
        self.deltas.clear();
        e
    }

    /// Takes helper `from`'s delta. Once all t are in, returns `(newcomer, sigma)` to send.
    pub fn on_delta(
        &mut self,
        from: u16,
        msg: RepairDelta,
    ) -> Result<Option<(u16, RepairSigma)>, RepairError> {
        admit(
            self.state,
            self.me,
            &self.helpers,
            self.deltas.contains_key(&from),
            from,
        )?;
        let points = match check_commitments(
            &self.group,
            &self.helpers,
            self.newcomer,
            from,
            &msg.commitments,
        ) {
            Ok(p) => p,
            Err(e) => return Err(self.abort(e)),
        };
        let bytes = Zeroizing::new(msg.delta.serialize());
        let Some(delta) = curve::decode_scalar(&bytes).map(Zeroizing::new) else {
            return Err(self.abort(RepairError::Malformed { from }));
        };
        if Some(&curve::base_mul(&delta)) != points.get(&self.me) {
            return Err(self.abort(RepairError::DeltaMismatch { from }));
        }
        self.deltas.insert(from, bytes);
        if self.deltas.len() < self.helpers.len() {
            return Ok(None);
        }
        let mut frost_deltas = Vec::with_capacity(self.deltas.len());
        for (&from, bytes) in &self.deltas {
            match Delta::deserialize(bytes) {
                Ok(d) => frost_deltas.push(d),
                Err(_) => return Err(self.abort(RepairError::Malformed { from })),
            }
        }
        let sigma = frost_repair::repair_share_part2(&frost_deltas);
        drop(frost_deltas);
        self.deltas.clear();
        self.state = State::Done;
        Ok(Some((
            self.newcomer,
            RepairSigma {
                sigma,
                commitments: self.own_commitments.clone(),
            },
        )))
    }
}

impl fmt::Debug for RepairHelper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepairHelper")
            .field("me", &self.me)
            .field("newcomer", &self.newcomer)
            .field("helpers", &self.helpers)
            .field("deltas_from", &self.deltas.keys().collect::<Vec<_>>())
            .field("state", &self.state)
            .finish()
    }
}

/// The newcomer's side of a repair.
pub struct RepairNewcomer {
    me: u16,
    helpers: BTreeSet<u16>,
    group: PublicGroup,
    sigmas: BTreeMap<u16, Zeroizing<Vec<u8>>>,
    commitments: BTreeMap<u16, BTreeMap<u16, EdwardsPoint>>,
    state: State,
}

impl RepairNewcomer {
    /// Starts joining `group` as node `me` with the given t helpers. `group` must come from a
    /// source the newcomer trusts (for example the same [`PublicGroup::fingerprint`] from several
    /// members): every check below is relative to it.
    pub fn new(me: u16, group: &PublicGroup, helpers: &[u16]) -> Result<Self, RepairError> {
        let set = check_helpers(group, helpers, me)?;
        Ok(Self {
            me,
            helpers: set,
            group: group.clone(),
            sigmas: BTreeMap::new(),
            commitments: BTreeMap::new(),
            state: State::Collecting,
        })
    }

    fn abort(&mut self, e: RepairError) -> RepairError {
        tracing::warn!(node = self.me, error = %e, "repair aborted");
        self.state = State::Aborted;
        self.sigmas.clear();
        e
    }

    /// Takes helper `from`'s sigma. Once all t are in, returns this node's key and the group
    /// record with this node added. Announce `key.verifying_share()` to the existing members;
    /// each checks it with [`PublicGroup::with_member`].
    pub fn on_sigma(
        &mut self,
        from: u16,
        msg: RepairSigma,
    ) -> Result<Option<(NodeKey, PublicGroup)>, RepairError> {
        admit(
            self.state,
            self.me,
            &self.helpers,
            self.sigmas.contains_key(&from),
            from,
        )?;
        let points =
            match check_commitments(&self.group, &self.helpers, self.me, from, &msg.commitments) {
                Ok(p) => p,
                Err(e) => return Err(self.abort(e)),
            };
        let bytes = Zeroizing::new(msg.sigma.serialize());
        if curve::decode_scalar(&bytes).is_none() {
            return Err(self.abort(RepairError::Malformed { from }));
        }
        self.sigmas.insert(from, bytes);
        self.commitments.insert(from, points);
        if self.sigmas.len() < self.helpers.len() {
            return Ok(None);
        }
        self.finish().map(Some)
    }

    fn finish(&mut self) -> Result<(NodeKey, PublicGroup), RepairError> {
        // σⱼ must be Σᵢ δ_{i→j}: check G·σⱼ against the committed deltas.
        let mut frost_sigmas = Vec::with_capacity(self.sigmas.len());
        for (&j, bytes) in &self.sigmas {
            let sigma = curve::decode_scalar(bytes).map(Zeroizing::new);
            let expected = self
                .commitments
                .values()
                .filter_map(|vector| vector.get(&j))
                .fold(curve::identity(), |acc, p| acc + p);
            match sigma {
                Some(s) if curve::base_mul(&s) == expected => {}
                _ => return Err(self.abort(RepairError::SigmaMismatch { from: j })),
            }
            match Sigma::deserialize(bytes) {
                Ok(s) => frost_sigmas.push(s),
                Err(_) => return Err(self.abort(RepairError::Malformed { from: j })),
            }
        }
        let Some(ident) = curve::identifier(self.me) else {
            return Err(self.abort(RepairError::InvalidNodeId));
        };
        let package =
            match frost_repair::repair_share_part3(&frost_sigmas, ident, self.group.frost()) {
                Ok(p) => p,
                Err(source) => {
                    return Err(self.abort(RepairError::Frost {
                        step: "keys::repairable::repair_share_part3",
                        source,
                    }))
                }
            };
        drop(frost_sigmas);
        let key = match NodeKey::from_frost(package) {
            Ok(k) => k,
            Err(e) => return Err(self.abort(RepairError::Group(e))),
        };
        let share = match key.verifying_share() {
            Ok(s) => s,
            Err(e) => return Err(self.abort(RepairError::Group(e))),
        };
        let group = match self.group.with_member(self.me, &share) {
            Ok(g) => g,
            Err(e) => return Err(self.abort(e)),
        };
        if let Err(e) = key.check_against(&group) {
            return Err(self.abort(RepairError::Group(e)));
        }
        self.sigmas.clear();
        self.state = State::Done;
        tracing::info!(
            node = self.me,
            group_key_id = %group.group_key().id(),
            fingerprint = %group.fingerprint(),
            "joined group by repair"
        );
        Ok((key, group))
    }
}

impl fmt::Debug for RepairNewcomer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepairNewcomer")
            .field("me", &self.me)
            .field("helpers", &self.helpers)
            .field("sigmas_from", &self.sigmas.keys().collect::<Vec<_>>())
            .field("state", &self.state)
            .finish()
    }
}

/// serde for `BTreeMap<u16, [u8; 32]>` as `{ "id": "<hex>" }`.
mod hex_points {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<u16, [u8; 32]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.iter()
            .map(|(k, v)| (*k, hex::encode(v)))
            .collect::<BTreeMap<u16, String>>()
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u16, [u8; 32]>, D::Error> {
        let raw = BTreeMap::<u16, String>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| {
                crate::group::hex32(&v, "commitment")
                    .map(|b| (k, b))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}
