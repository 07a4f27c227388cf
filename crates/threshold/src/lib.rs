//! Tessera's group signing key: FROST (RFC 9591) with the FROST(Ed25519, SHA-512) ciphersuite, on
//! the Zcash Foundation's `frost-ed25519` 3.0. The notary nodes hold shares of one Ed25519 key;
//! any t of them sign a notarization, and the result is an ordinary Ed25519 signature.
//!
//! - [`dkg`]: distributed key generation, one sans-IO [`Dkg`] machine per node.
//! - [`sign`]: node-side [`commit`] / [`sign_share`], coordinator-side [`Aggregator`] with
//!   cheater detection.
//! - [`refresh`]: new shares of the same key when a node leaves ([`Refresh`]).
//! - [`repair`]: a share for a joining node from t helpers ([`RepairHelper`], [`RepairNewcomer`]).
//! - [`reshare`]: the same key to a new member set and a new threshold ([`ResharePlan`]).
//! - [`group`]: the public record ([`GroupKey`], [`PublicGroup`]); [`key`]: a node's secret
//!   share ([`NodeKey`]).
//! - [`store`]: sealing key material at rest ([`Sealer`], simulated [`KeyFileSealer`]).
//!
//! Node ids are nonzero `u16`, mapped to frost identifiers with `Identifier::try_from(u16)`.
//!
//! The threshold is t = ⌊N/2⌋+1 for the N members of the initial DKG ([`default_threshold`]).
//! Refresh (a node leaves) and repair (a node joins) keep it; [`reshare`] moves the same key
//! to a new member set with a new threshold.
//!
//! The protocol machines do no I/O and take randomness from the caller; they assume the transport
//! frost assumes (authenticated channels, broadcast for round-1 packages, confidentiality for
//! secret shares) and say so where it matters.

#![forbid(unsafe_code)]

mod curve;
pub mod dkg;
pub mod group;
pub mod key;
pub mod refresh;
pub mod repair;
pub mod reshare;
pub mod sign;
pub mod store;

pub use dkg::{Dkg, DkgError, Round1Package, Round2Out, Round2Package};
pub use group::{GroupKey, PublicGroup, ThresholdError};
pub use key::NodeKey;
pub use refresh::Refresh;
pub use repair::{RepairDelta, RepairError, RepairHelper, RepairNewcomer, RepairSigma};
pub use reshare::{Commitments, DealtShare, Receiver, ReshareError, ResharePlan};
pub use sign::{
    commit, sign_share, Aggregator, Nonces, SignError, SignatureShare, SigningCommitment,
    SigningPackage,
};
pub use store::{read_sealed, write_sealed, KeyFileSealer, Sealer, StoreError};

/// The re-exported frost ciphersuite crate, for callers that need its types.
pub use frost_ed25519 as frost;

/// The threshold for a group of `n` members: ⌊n/2⌋+1 (a strict majority).
///
/// Fixed at the DKG for the life of the group. For n < 3 this is larger than frost allows for
/// n = 1 (frost needs 2 ≤ t ≤ n), so a group needs at least 2 members, and a 2-member group
/// needs both.
pub fn default_threshold(n: u16) -> u16 {
    n / 2 + 1
}
