//! Share refresh when a node leaves: the remaining members (at least t) run frost's refresh DKG
//! (`keys::refresh::refresh_dkg_part1` / `refresh_dkg_part2` / `refresh_dkg_shares`) and get new
//! shares of the same group key; the leaver's old share no longer combines with them.
//! Sans-IO like [`crate::dkg`]; it must never change the group key or the threshold.
//!
//! Each remaining member deals a random polynomial with constant term 0 (its round-1 package
//! commits to the t−1 non-constant coefficients; frost defines no proof of knowledge for it, so
//! none is checked) and adds the sum of the shares it receives to its old share. Every received
//! share is Feldman-checked against its sender's commitment with the constant term forced to 0,
//! so no member can move the group key; a bad share aborts naming its sender.

use std::fmt;

use frost_ed25519::keys::refresh as frost_refresh;
use rand_core::{CryptoRng, RngCore};

use crate::dkg::{
    check_participants, DkgError, Mode, Phase, Round1Package, Round2Out, Round2Package, Run,
};
use crate::group::PublicGroup;
use crate::key::NodeKey;

/// One remaining member's side of a refresh. Same message flow as [`crate::dkg::Dkg`].
pub struct Refresh(Run);

impl Refresh {
    /// Starts a refresh for the holder of `key` in `group`, among `remaining` (the members that
    /// stay, including this node; at least t of them). Members of `group` not in `remaining` are
    /// removed. Returns the machine and the round-1 package to broadcast to the other remaining
    /// members.
    pub fn new<R: RngCore + CryptoRng>(
        key: &NodeKey,
        group: &PublicGroup,
        remaining: &[u16],
        rng: &mut R,
    ) -> Result<(Refresh, Round1Package), DkgError> {
        key.check_against(group).map_err(DkgError::KeyMismatch)?;
        let me = key.id();
        let (participants, ids) = check_participants(me, remaining)?;
        if let Some(&node) = participants.iter().find(|&&p| !group.contains(p)) {
            return Err(DkgError::NotInGroup { node });
        }
        let threshold = group.threshold();
        if participants.len() < usize::from(threshold) {
            return Err(DkgError::BadThreshold {
                threshold,
                participants: participants.len(),
            });
        }
        let n = participants.len() as u16;
        let (secret, package) = frost_refresh::refresh_dkg_part1(ids[&me], n, threshold, &mut *rng)
            .map_err(|source| DkgError::Frost {
                step: "keys::refresh::refresh_dkg_part1",
                source,
            })?;
        let mode = Mode::Refresh {
            old_key: Box::new(key.as_frost().clone()),
            old_group: Box::new(group.to_frost()),
        };
        let run = Run::new(me, participants, ids, threshold, mode, secret);
        Ok((Refresh(run), Round1Package(package)))
    }

    /// Takes a round-1 package from remaining member `from`; once all are in, returns the
    /// round-2 packages to send.
    pub fn on_round1(
        &mut self,
        from: u16,
        package: Round1Package,
    ) -> Result<Option<Round2Out>, DkgError> {
        self.0.on_round1(from, package)
    }

    /// Takes a round-2 package from remaining member `from`; once all are in, returns this node's
    /// refreshed key and the new group record (same group key and threshold, remaining members
    /// only).
    pub fn on_round2(
        &mut self,
        from: u16,
        package: Round2Package,
    ) -> Result<Option<(NodeKey, PublicGroup)>, DkgError> {
        self.0.on_round2(from, package)
    }

    /// The output, if the run finished inside [`Refresh::on_round1`].
    pub fn take_output(&mut self) -> Option<(NodeKey, PublicGroup)> {
        self.0.output.take()
    }

    /// Whether the run aborted.
    pub fn is_aborted(&self) -> bool {
        matches!(self.0.phase, Phase::Aborted)
    }
}

impl fmt::Debug for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Refresh", f)
    }
}
