//! Distributed key generation (frost `keys::dkg`, Pedersen DKG with proofs of knowledge) as one
//! sans-IO state machine per node: feed it the packages it receives, send what it returns.
//! It must never do I/O or keep going after a check fails: any culprit-naming error aborts the run.
//!
//! The same machine, in refresh mode, runs frost's refresh DKG ([`crate::refresh`]).
//!
//! Transport assumptions (frost's): round-1 packages are broadcast so every member sees the same
//! package from each sender (compare [`PublicGroup::fingerprint`] afterwards to confirm it);
//! round-2 packages carry secret shares and go over a confidential, authenticated channel to the
//! one recipient. The `from` given to `on_round*` must come from that authentication, never from
//! the message itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use frost_ed25519::keys::dkg::{self as frost_dkg, round1, round2};
use frost_ed25519::keys::refresh as frost_refresh;
use frost_ed25519::keys::{KeyPackage, PublicKeyPackage};
use frost_ed25519::Identifier;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::curve;
use crate::group::{PublicGroup, ThresholdError};
use crate::key::NodeKey;

/// Why a DKG or refresh run refused a message or stopped.
///
/// Errors that name a culprit ([`DkgError::culprit`]) abort the run; routing errors (unknown
/// sender, duplicate, message from self) only refuse that message.
#[derive(Debug, thiserror::Error)]
pub enum DkgError {
    /// Node id 0 appeared; ids are nonzero `u16`.
    #[error("node id 0 is not allowed (ids are nonzero u16)")]
    ZeroId,
    /// The same id is listed twice.
    #[error("node {node} is listed twice in the member list")]
    DuplicateMember {
        /// The repeated id.
        node: u16,
    },
    /// This node is not among the participants.
    #[error("node {me} is not in the participant list")]
    NotAParticipant {
        /// This node.
        me: u16,
    },
    /// The threshold is not in 2 ≤ t ≤ N.
    #[error(
        "threshold {threshold} is out of range for {participants} participants (need 2 <= t <= N)"
    )]
    BadThreshold {
        /// Requested threshold.
        threshold: u16,
        /// Number of participants.
        participants: usize,
    },
    /// A message claims to come from this node itself.
    #[error("node {me} was handed a message from itself")]
    FromSelf {
        /// This node.
        me: u16,
    },
    /// A message from a node that is not a participant of this run.
    #[error("node {from} is not a participant of this run; message refused")]
    UnknownSender {
        /// The claimed sender.
        from: u16,
    },
    /// A second round-1 package from the same sender (the first one stands).
    #[error("second round-1 package from node {from}; refused")]
    DuplicateRound1 {
        /// The sender.
        from: u16,
    },
    /// A second round-2 package from the same sender (the first one stands).
    #[error("second round-2 package from node {from}; refused")]
    DuplicateRound2 {
        /// The sender.
        from: u16,
    },
    /// A round-1 package with the wrong number of coefficient commitments.
    #[error("round-1 package from node {from} commits to {got} coefficients, expected {expected}; aborted")]
    BadCommitment {
        /// The sender.
        from: u16,
        /// Coefficients found.
        got: usize,
        /// Coefficients expected (t for a DKG, t−1 for a refresh).
        expected: usize,
    },
    /// A round-1 package whose Schnorr proof of knowledge of its constant term does not verify.
    #[error("proof of knowledge in node {from}'s round-1 package does not verify; aborted")]
    InvalidProofOfKnowledge {
        /// The sender.
        from: u16,
    },
    /// A round-2 share that does not match its sender's round-1 commitment (Feldman check).
    #[error("round-2 share from node {from} does not match its round-1 commitment; aborted")]
    InvalidShare {
        /// The sender.
        from: u16,
    },
    /// The run stopped earlier on a culprit-naming error.
    #[error("this run was aborted by an earlier error; start a new run")]
    Aborted,
    /// The run already produced its output.
    #[error("this run has finished; message refused")]
    Finished,
    /// Refresh: a remaining participant is not a member of the current group.
    #[error("node {node} is not a member of the current group")]
    NotInGroup {
        /// The id.
        node: u16,
    },
    /// Refresh: this node's key does not belong to the current group.
    #[error("node key does not belong to the current group: {0}")]
    KeyMismatch(#[source] ThresholdError),
    /// The output key or group record failed its checks.
    #[error("output check failed: {0}")]
    Output(#[source] ThresholdError),
    /// Refresh produced a different group key (cannot happen with honest frost; checked anyway).
    #[error("refresh changed the group key; aborted")]
    GroupKeyChanged,
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

impl DkgError {
    /// The node this error blames, if any.
    pub fn culprit(&self) -> Option<u16> {
        match self {
            DkgError::BadCommitment { from, .. }
            | DkgError::InvalidProofOfKnowledge { from }
            | DkgError::InvalidShare { from } => Some(*from),
            _ => None,
        }
    }
}

/// A round-1 package: the sender's commitment to its secret polynomial and (DKG only) a proof of
/// knowledge of its constant term. Public; broadcast to every other participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Round1Package(pub(crate) round1::Package);

impl Round1Package {
    /// The frost package.
    pub fn as_frost(&self) -> &round1::Package {
        &self.0
    }
    /// Wraps a frost package.
    pub fn from_frost(package: round1::Package) -> Self {
        Self(package)
    }
}

/// A round-2 package: the sender's secret polynomial evaluated at the recipient's id.
///
/// Secret: send it only to the recipient it was returned for, over a confidential and
/// authenticated channel. `Debug` is redacted; the share is wiped on drop.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Round2Package(pub(crate) round2::Package);

impl Round2Package {
    /// The frost package.
    pub fn as_frost(&self) -> &round2::Package {
        &self.0
    }
    /// Wraps a frost package.
    pub fn from_frost(package: round2::Package) -> Self {
        Self(package)
    }
}

impl fmt::Debug for Round2Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Round2Package(<redacted>)")
    }
}

/// Round-2 messages to send: `(recipient, package)`.
pub type Round2Out = Vec<(u16, Round2Package)>;

/// One node's side of a DKG over `members` with threshold t.
///
/// ```text
/// let (mut dkg, r1) = Dkg::new(me, &members, t, &mut rng)?;   // broadcast r1
/// for each (from, pkg) received in round 1:
///     if let Some(out) = dkg.on_round1(from, pkg)? { send each (to, r2) in out }
/// for each (from, pkg) received in round 2:
///     if let Some((key, group)) = dkg.on_round2(from, pkg)? { done }
/// ```
/// Round-2 packages that arrive before this node has all round-1 packages are held and checked
/// once round 1 completes. If they were all early, the output is ready as soon as
/// [`Dkg::on_round1`] returns; take it with [`Dkg::take_output`].
pub struct Dkg(pub(crate) Run);

impl Dkg {
    /// Starts a DKG for node `me` among `members` (which include `me`) with threshold `threshold`
    /// (use [`crate::default_threshold`]). Returns the machine and the round-1 package to
    /// broadcast to every other member.
    ///
    /// The threshold is fixed for the life of the group it makes.
    pub fn new<R: RngCore + CryptoRng>(
        me: u16,
        members: &[u16],
        threshold: u16,
        rng: &mut R,
    ) -> Result<(Dkg, Round1Package), DkgError> {
        let (participants, ids) = check_participants(me, members)?;
        if threshold < 2 || usize::from(threshold) > participants.len() {
            return Err(DkgError::BadThreshold {
                threshold,
                participants: participants.len(),
            });
        }
        let n = participants.len() as u16;
        let (secret, package) =
            frost_dkg::part1(ids[&me], n, threshold, &mut *rng).map_err(|source| {
                DkgError::Frost {
                    step: "keys::dkg::part1",
                    source,
                }
            })?;
        let run = Run::new(me, participants, ids, threshold, Mode::Dkg, secret);
        Ok((Dkg(run), Round1Package(package)))
    }

    /// Takes a round-1 package from member `from`. Once all are in, returns the round-2 packages
    /// to send (one per other member).
    pub fn on_round1(
        &mut self,
        from: u16,
        package: Round1Package,
    ) -> Result<Option<Round2Out>, DkgError> {
        self.0.on_round1(from, package)
    }

    /// Takes a round-2 package from member `from`. Once all are in, returns this node's key and
    /// the group record (the same at every honest member).
    pub fn on_round2(
        &mut self,
        from: u16,
        package: Round2Package,
    ) -> Result<Option<(NodeKey, PublicGroup)>, DkgError> {
        self.0.on_round2(from, package)
    }

    /// The output, if the run finished inside [`Dkg::on_round1`] (all round-2 packages early).
    pub fn take_output(&mut self) -> Option<(NodeKey, PublicGroup)> {
        self.0.output.take()
    }

    /// This node's id.
    pub fn me(&self) -> u16 {
        self.0.me
    }

    /// Whether the run aborted.
    pub fn is_aborted(&self) -> bool {
        matches!(self.0.phase, Phase::Aborted)
    }
}

impl fmt::Debug for Dkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Dkg", f)
    }
}

/// Checks a participant list; returns it as a set and the id → frost identifier map.
pub(crate) fn check_participants(
    me: u16,
    members: &[u16],
) -> Result<(BTreeSet<u16>, BTreeMap<u16, Identifier>), DkgError> {
    let mut set = BTreeSet::new();
    let mut ids = BTreeMap::new();
    for &m in members {
        let ident = curve::identifier(m).ok_or(DkgError::ZeroId)?;
        if !set.insert(m) {
            return Err(DkgError::DuplicateMember { node: m });
        }
        ids.insert(m, ident);
    }
    if !set.contains(&me) {
        return Err(DkgError::NotAParticipant { me });
    }
    Ok((set, ids))
}

/// DKG or refresh.
pub(crate) enum Mode {
    Dkg,
    Refresh {
        old_key: Box<KeyPackage>,
        old_group: Box<PublicKeyPackage>,
    },
}

pub(crate) enum Phase {
    Round1(round1::SecretPackage),
    Round2(round2::SecretPackage),
    Done,
    Aborted,
}

/// The machine shared by [`Dkg`] and [`crate::refresh::Refresh`].
pub(crate) struct Run {
    me: u16,
    others: BTreeSet<u16>,
    ids: BTreeMap<u16, Identifier>,
    threshold: u16,
    mode: Mode,
    pub(crate) phase: Phase,
    round1: BTreeMap<u16, Round1Package>,
    round2: BTreeMap<u16, Round2Package>,
    pub(crate) output: Option<(NodeKey, PublicGroup)>,
}

impl Run {
    pub(crate) fn new(
        me: u16,
        participants: BTreeSet<u16>,
        ids: BTreeMap<u16, Identifier>,
        threshold: u16,
        mode: Mode,
        secret: round1::SecretPackage,
    ) -> Self {
        let others = participants.into_iter().filter(|&p| p != me).collect();
        Run {
            me,
            others,
            ids,
            threshold,
            mode,
            phase: Phase::Round1(secret),
            round1: BTreeMap::new(),
            round2: BTreeMap::new(),
            output: None,
        }
    }

    fn is_refresh(&self) -> bool {
        matches!(self.mode, Mode::Refresh { .. })
    }

    fn step(&self, dkg: &'static str, refresh: &'static str) -> &'static str {
        if self.is_refresh() {
            refresh
        } else {
            dkg
        }
    }

    fn check_sender(&self, from: u16) -> Result<(), DkgError> {
        if from == self.me {
            return Err(DkgError::FromSelf { me: self.me });
        }
        if !self.others.contains(&from) {
            return Err(DkgError::UnknownSender { from });
        }
        match self.phase {
            Phase::Aborted => Err(DkgError::Aborted),
            _ => Ok(()),
        }
    }

    /// Records a fatal error: the run is over.
    fn abort(&mut self, error: DkgError) -> DkgError {
        tracing::warn!(node = self.me, %error, "threshold key run aborted");
        self.phase = Phase::Aborted;
        self.round2.clear();
        error
    }

    pub(crate) fn on_round1(
        &mut self,
        from: u16,
        package: Round1Package,
    ) -> Result<Option<Round2Out>, DkgError> {
        self.check_sender(from)?;
        if self.round1.contains_key(&from) {
            return Err(DkgError::DuplicateRound1 { from });
        }
        // A DKG commits to t coefficients; a refresh to t−1 (its constant term is 0 and implicit).
        let expected = usize::from(self.threshold) - usize::from(self.is_refresh());
        let got = package
            .0
            .commitment()
            .serialize()
            .map(|c| c.len())
            .unwrap_or(0);
        if got != expected {
            return Err(self.abort(DkgError::BadCommitment {
                from,
                got,
                expected,
            }));
        }
        self.round1.insert(from, package);
        if self.round1.len() < self.others.len() {
            return Ok(None);
        }
        self.finish_round1().map(Some)
    }

    fn finish_round1(&mut self) -> Result<Round2Out, DkgError> {
        let secret = match std::mem::replace(&mut self.phase, Phase::Aborted) {
            Phase::Round1(secret) => secret,
            other => {
                self.phase = other;
                return Err(DkgError::Finished);
            }
        };
        let packages = self.frost_round1();
        let result = if self.is_refresh() {
            frost_refresh::refresh_dkg_part2(secret, &packages)
        } else {
            frost_dkg::part2(secret, &packages)
        };
        let (secret2, out) = match result {
            Ok(v) => v,
            Err(e) => {
                let error = self.map_frost(e, self.step("keys::dkg::part2", "refresh_dkg_part2"));
                return Err(self.abort(error));
            }
        };
        self.phase = Phase::Round2(secret2);
        let mut messages = Vec::with_capacity(out.len());
        for (ident, package) in out {
            let Some(to) = curve::node_id(&ident) else {
                return Err(self.abort(DkgError::Frost {
                    step: "part2 recipient",
                    source: frost_ed25519::Error::UnknownIdentifier,
                }));
            };
            messages.push((to, Round2Package(package)));
        }
        // Check round-2 packages that arrived early, now that the commitments are known.
        let early: Vec<u16> = self.round2.keys().copied().collect();
        for from in early {
            self.verify_share(from)?;
        }
        if self.round2.len() == self.others.len() {
            let output = self.finish()?;
            self.output = Some(output);
        }
        Ok(messages)
    }

    pub(crate) fn on_round2(
        &mut self,
        from: u16,
        package: Round2Package,
    ) -> Result<Option<(NodeKey, PublicGroup)>, DkgError> {
        self.check_sender(from)?;
        if self.round2.contains_key(&from) {
            return Err(DkgError::DuplicateRound2 { from });
        }
        match self.phase {
            Phase::Done => return Err(DkgError::Finished),
            Phase::Aborted => return Err(DkgError::Aborted),
            Phase::Round1(_) => {
                // Early: hold it until the sender's commitment and our round 1 are complete.
                self.round2.insert(from, package);
                return Ok(None);
            }
            Phase::Round2(_) => {}
        }
        self.round2.insert(from, package);
        self.verify_share(from)?;
        if self.round2.len() < self.others.len() {
            return Ok(None);
        }
        self.finish().map(Some)
    }

    /// Feldman check of `from`'s round-2 share against its round-1 commitment, so the error can
    /// name the sender (frost's refresh does not).
    fn verify_share(&mut self, from: u16) -> Result<(), DkgError> {
        let (Some(r1), Some(r2)) = (self.round1.get(&from), self.round2.get(&from)) else {
            return Err(self.abort(DkgError::InvalidShare { from }));
        };
        let mut coefficients = Vec::with_capacity(usize::from(self.threshold));
        if self.is_refresh() {
            coefficients.push(curve::identity());
        }
        let Ok(serialized) = r1.0.commitment().serialize() else {
            return Err(self.abort(DkgError::InvalidShare { from }));
        };
        for c in &serialized {
            match curve::decode_point(c) {
                Some(p) => coefficients.push(p),
                None => return Err(self.abort(DkgError::InvalidShare { from })),
            }
        }
        let share = zeroize::Zeroizing::new(r2.0.signing_share().serialize());
        if !curve::feldman_ok(self.me, &share, &coefficients) {
            return Err(self.abort(DkgError::InvalidShare { from }));
        }
        Ok(())
    }

    fn frost_round1(&self) -> BTreeMap<Identifier, round1::Package> {
        self.round1
            .iter()
            .filter_map(|(id, p)| self.ids.get(id).map(|ident| (*ident, p.0.clone())))
            .collect()
    }

    fn finish(&mut self) -> Result<(NodeKey, PublicGroup), DkgError> {
        let Phase::Round2(secret) = &self.phase else {
            return Err(DkgError::Finished);
        };
        let r1 = self.frost_round1();
        let r2: BTreeMap<Identifier, round2::Package> = self
            .round2
            .iter()
            .filter_map(|(id, p)| self.ids.get(id).map(|ident| (*ident, p.0.clone())))
            .collect();
        let result = match &self.mode {
            Mode::Dkg => frost_dkg::part3(secret, &r1, &r2),
            Mode::Refresh { old_key, old_group } => frost_refresh::refresh_dkg_shares(
                secret,
                &r1,
                &r2,
                (**old_group).clone(),
                (**old_key).clone(),
            ),
        };
        drop(r2);
        let (key, public) = match result {
            Ok(v) => v,
            Err(e) => {
                let error = self.map_frost(e, self.step("keys::dkg::part3", "refresh_dkg_shares"));
                return Err(self.abort(error));
            }
        };
        if let Mode::Refresh { old_group, .. } = &self.mode {
            if public.verifying_key() != old_group.verifying_key() {
                return Err(self.abort(DkgError::GroupKeyChanged));
            }
        }
        let group = match PublicGroup::from_frost(&public) {
            Ok(g) => g,
            Err(e) => return Err(self.abort(DkgError::Output(e))),
        };
        let key = match NodeKey::from_frost(key) {
            Ok(k) => k,
            Err(e) => return Err(self.abort(DkgError::Output(e))),
        };
        if let Err(e) = key.check_against(&group) {
            return Err(self.abort(DkgError::Output(e)));
        }
        self.phase = Phase::Done;
        self.round2.clear();
        tracing::info!(
            node = self.me,
            group_key_id = %group.group_key().id(),
            fingerprint = %group.fingerprint(),
            refresh = self.is_refresh(),
            "threshold key run finished"
        );
        Ok((key, group))
    }

    fn map_frost(&self, e: frost_ed25519::Error, step: &'static str) -> DkgError {
        let name = |ident: &Identifier| curve::node_id(ident);
        match &e {
            frost_ed25519::Error::InvalidProofOfKnowledge { culprit } => match name(culprit) {
                Some(from) => DkgError::InvalidProofOfKnowledge { from },
                None => DkgError::Frost { step, source: e },
            },
            frost_ed25519::Error::InvalidSecretShare {
                culprit: Some(culprit),
            } => match name(culprit) {
                Some(from) => DkgError::InvalidShare { from },
                None => DkgError::Frost { step, source: e },
            },
            _ => DkgError::Frost { step, source: e },
        }
    }

    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Round1(_) => "round1",
            Phase::Round2(_) => "round2",
            Phase::Done => "done",
            Phase::Aborted => "aborted",
        };
        f.debug_struct(name)
            .field("me", &self.me)
            .field("threshold", &self.threshold)
            .field("others", &self.others)
            .field("phase", &phase)
            .field("round1_from", &self.round1.keys().collect::<Vec<_>>())
            .field("round2_from", &self.round2.keys().collect::<Vec<_>>())
            .finish()
    }
}
