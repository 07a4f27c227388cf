//! Threshold signing (RFC 9591 rounds 1 and 2 via frost `round1::commit`, `round2::sign`,
//! `aggregate_custom`): node-side [`commit`] and [`sign_share`], coordinator-side [`Aggregator`].
//! A node must never use a nonce twice ([`Nonces`] is consumed by [`sign_share`] and cannot be
//! cloned or serialized); the aggregator must never output a signature that does not verify.

use std::collections::BTreeMap;
use std::fmt;

use frost_ed25519::round1::{SigningCommitments, SigningNonces};
use frost_ed25519::round2;
use frost_ed25519::{CheaterDetection, Identifier};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::curve;
use crate::group::PublicGroup;
use crate::key::NodeKey;

/// Why signing or aggregation failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A commitment or share from a node that is not a member of the group.
    #[error("node {node} is not a member of the group; refused")]
    UnknownSigner {
        /// The sender.
        node: u16,
    },
    /// A second commitment from the same node.
    #[error("second commitment from node {node}; refused")]
    DuplicateCommitment {
        /// The sender.
        node: u16,
    },
    /// A commitment arriving after the signing package was fixed.
    #[error("commitment from node {node} arrived after the signing package was fixed; refused")]
    CommitmentAfterPackage {
        /// The sender.
        node: u16,
    },
    /// Fewer than t commitments.
    #[error("{have} commitments, need at least the threshold {need}")]
    NotEnoughCommitments {
        /// Commitments collected.
        have: usize,
        /// The threshold.
        need: u16,
    },
    /// Aggregation attempted before the signing package was fixed.
    #[error("no signing package yet: call signing_package() once at least t commitments are in")]
    NoSigningPackage,
    /// A share before the signing package was fixed.
    #[error("signature share from node {node} before the signing package was fixed; refused")]
    ShareBeforePackage {
        /// The sender.
        node: u16,
    },
    /// A share from a node whose commitment is not in the signing package.
    #[error("node {node} is not a signer in this signing package; share refused")]
    NotASigner {
        /// The sender.
        node: u16,
    },
    /// A second share from the same node.
    #[error("second signature share from node {node}; refused")]
    DuplicateShare {
        /// The sender.
        node: u16,
    },
    /// Aggregation attempted before every signer's share arrived.
    #[error("missing signature shares from nodes {nodes:?}")]
    MissingShares {
        /// Signers whose shares are missing.
        nodes: Vec<u16>,
    },
    /// The aggregate did not verify; frost's cheater detection found these signers' shares invalid.
    #[error("invalid signature shares from nodes {nodes:?}: the aggregate does not verify")]
    BadShare {
        /// The culprits.
        nodes: Vec<u16>,
    },
    /// The signing package does not contain this node's commitment.
    #[error("signing package has no commitment from node {node}")]
    NotInPackage {
        /// This node.
        node: u16,
    },
    /// The signing package lists a different commitment for this node than its nonces.
    #[error("signing package lists a different commitment for node {node} than its nonces")]
    CommitmentMismatch {
        /// This node.
        node: u16,
    },
    /// Nonces made for another node's key.
    #[error("nonces belong to node {nonces_for}, key to node {key_of}")]
    NoncesForOtherNode {
        /// Owner of the nonces.
        nonces_for: u16,
        /// Owner of the key.
        key_of: u16,
    },
    /// The signing package has fewer than t signers.
    #[error("signing package has {have} signers, need at least the threshold {need}")]
    TooFewSigners {
        /// Signers in the package.
        have: usize,
        /// The threshold.
        need: u16,
    },
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

/// A node's secret signing nonces for one signature. Consumed by [`sign_share`]; wiped on drop;
/// no `Clone`, no `Serialize`, redacted `Debug`.
pub struct Nonces {
    node: u16,
    inner: SigningNonces,
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonces(node {}, <redacted>)", self.node)
    }
}

/// A node's public commitment to its nonces (round 1). Sent to the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SigningCommitment(SigningCommitments);

impl SigningCommitment {
    /// The frost commitments.
    pub fn as_frost(&self) -> &SigningCommitments {
        &self.0
    }
}

impl From<SigningCommitments> for SigningCommitment {
    fn from(c: SigningCommitments) -> Self {
        Self(c)
    }
}

/// What the coordinator sends each signer: the message and every signer's commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SigningPackage(frost_ed25519::SigningPackage);

impl SigningPackage {
    /// The message to be signed. A signer must check it is a message it agrees to sign before
    /// calling [`sign_share`].
    pub fn message(&self) -> &[u8] {
        self.0.message()
    }

    /// The signers (ids whose commitments are in the package), ascending.
    pub fn signers(&self) -> Vec<u16> {
        self.0
            .signing_commitments()
            .keys()
            .filter_map(curve::node_id)
            .collect()
    }

    /// The frost signing package.
    pub fn as_frost(&self) -> &frost_ed25519::SigningPackage {
        &self.0
    }
}

impl From<frost_ed25519::SigningPackage> for SigningPackage {
    fn from(p: frost_ed25519::SigningPackage) -> Self {
        Self(p)
    }
}

/// A signer's share of the signature (round 2). Sent to the coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SignatureShare(round2::SignatureShare);

impl SignatureShare {
    /// The frost share.
    pub fn as_frost(&self) -> &round2::SignatureShare {
        &self.0
    }
}

impl From<round2::SignatureShare> for SignatureShare {
    fn from(s: round2::SignatureShare) -> Self {
        Self(s)
    }
}

/// Round 1 on a node: fresh nonces (kept, secret) and their commitment (sent to the coordinator).
/// Use each pair for one signature only.
pub fn commit<R: RngCore + CryptoRng>(key: &NodeKey, rng: &mut R) -> (Nonces, SigningCommitment) {
    let (nonces, commitments) =
        frost_ed25519::round1::commit(key.as_frost().signing_share(), &mut *rng);
    (
        Nonces {
            node: key.id(),
            inner: nonces,
        },
        SigningCommitment(commitments),
    )
}

/// Round 2 on a node: this node's signature share over `package.message()`.
///
/// Consumes `nonces`, so a nonce pair can never sign twice. The caller must first check that the
/// message is one this node agrees to sign.
pub fn sign_share(
    key: &NodeKey,
    nonces: Nonces,
    package: &SigningPackage,
) -> Result<SignatureShare, SignError> {
    let node = key.id();
    if nonces.node != node {
        return Err(SignError::NoncesForOtherNode {
            nonces_for: nonces.node,
            key_of: node,
        });
    }
    let have = package.0.signing_commitments().len();
    if have < usize::from(key.threshold()) {
        return Err(SignError::TooFewSigners {
            have,
            need: key.threshold(),
        });
    }
    let result = round2::sign(&package.0, &nonces.inner, key.as_frost());
    drop(nonces);
    result.map(SignatureShare).map_err(|e| match e {
        frost_ed25519::Error::MissingCommitment => SignError::NotInPackage { node },
        frost_ed25519::Error::IncorrectCommitment => SignError::CommitmentMismatch { node },
        source => SignError::Frost {
            step: "round2::sign",
            source,
        },
    })
}

/// The coordinator of one signature: collects ≥ t commitments, fixes the signing package,
/// collects every signer's share, aggregates, and names the signers whose shares are bad.
///
/// Sans-IO: it only consumes messages and returns results. The `node` given with each message
/// must come from the authenticated channel it arrived on.
pub struct Aggregator {
    group: PublicGroup,
    message: Vec<u8>,
    commitments: BTreeMap<u16, SigningCommitment>,
    package: Option<SigningPackage>,
    shares: BTreeMap<u16, SignatureShare>,
}

impl Aggregator {
    /// A coordinator for a signature over `msg` by members of `group`.
    pub fn new(group: &PublicGroup, msg: &[u8]) -> Aggregator {
        Aggregator {
            group: group.clone(),
            message: msg.to_vec(),
            commitments: BTreeMap::new(),
            package: None,
            shares: BTreeMap::new(),
        }
    }

    /// Records member `node`'s round-1 commitment.
    pub fn add_commitment(
        &mut self,
        node: u16,
        commitment: SigningCommitment,
    ) -> Result<(), SignError> {
        if !self.group.contains(node) {
            return Err(SignError::UnknownSigner { node });
        }
        if self.package.is_some() {
            return Err(SignError::CommitmentAfterPackage { node });
        }
        if self.commitments.contains_key(&node) {
            return Err(SignError::DuplicateCommitment { node });
        }
        self.commitments.insert(node, commitment);
        Ok(())
    }

    /// Fixes and returns the signing package (all commitments received so far; at least t).
    /// Later calls return the same package; later commitments are refused.
    pub fn signing_package(&mut self) -> Result<SigningPackage, SignError> {
        if let Some(p) = &self.package {
            return Ok(p.clone());
        }
        let need = self.group.threshold();
        if self.commitments.len() < usize::from(need) {
            return Err(SignError::NotEnoughCommitments {
                have: self.commitments.len(),
                need,
            });
        }
        let mut map: BTreeMap<Identifier, SigningCommitments> = BTreeMap::new();
        for (&node, c) in &self.commitments {
            let ident = curve::identifier(node).ok_or(SignError::UnknownSigner { node })?;
            map.insert(ident, c.0);
        }
        let package = SigningPackage(frost_ed25519::SigningPackage::new(map, &self.message));
        self.package = Some(package.clone());
        Ok(package)
    }

    /// Records signer `node`'s signature share.
    pub fn add_share(&mut self, node: u16, share: SignatureShare) -> Result<(), SignError> {
        if !self.group.contains(node) {
            return Err(SignError::UnknownSigner { node });
        }
        if self.package.is_none() {
            return Err(SignError::ShareBeforePackage { node });
        }
        if !self.commitments.contains_key(&node) {
            return Err(SignError::NotASigner { node });
        }
        if self.shares.contains_key(&node) {
            return Err(SignError::DuplicateShare { node });
        }
        self.shares.insert(node, share);
        Ok(())
    }

    /// The signers whose shares are still missing.
    pub fn missing_shares(&self) -> Vec<u16> {
        self.commitments
            .keys()
            .filter(|n| !self.shares.contains_key(n))
            .copied()
            .collect()
    }

    /// Aggregates the shares into a standard Ed25519 signature `R || s` over the message, which
    /// verifies under the group key. If it does not verify, every invalid share is identified
    /// (frost's `CheaterDetection::AllCheaters`) and reported as [`SignError::BadShare`].
    pub fn aggregate(&self) -> Result<[u8; 64], SignError> {
        let Some(package) = &self.package else {
            return Err(SignError::NoSigningPackage);
        };
        let missing = self.missing_shares();
        if !missing.is_empty() {
            return Err(SignError::MissingShares { nodes: missing });
        }
        let mut shares = BTreeMap::new();
        for (&node, s) in &self.shares {
            let ident = curve::identifier(node).ok_or(SignError::UnknownSigner { node })?;
            shares.insert(ident, s.0);
        }
        let signature = frost_ed25519::aggregate_custom(
            &package.0,
            &shares,
            self.group.frost(),
            CheaterDetection::AllCheaters,
        )
        .map_err(|e| match e {
            frost_ed25519::Error::InvalidSignatureShare { culprits } => {
                let nodes: Vec<u16> = culprits.iter().filter_map(curve::node_id).collect();
                tracing::warn!(?nodes, "invalid signature shares");
                SignError::BadShare { nodes }
            }
            source => SignError::Frost {
                step: "aggregate_custom",
                source,
            },
        })?;
        let bytes = signature.serialize().map_err(|source| SignError::Frost {
            step: "Signature::serialize",
            source,
        })?;
        let sig: [u8; 64] = bytes.as_slice().try_into().map_err(|_| SignError::Frost {
            step: "Signature::serialize",
            source: frost_ed25519::Error::MalformedSignature,
        })?;
        // frost verified the aggregate already; check once more through the public API.
        self.group
            .group_key()
            .verify(&self.message, &sig)
            .map_err(|_| SignError::Frost {
                step: "aggregate verification",
                source: frost_ed25519::Error::InvalidSignature,
            })?;
        Ok(sig)
    }
}

impl fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aggregator")
            .field("group_key", self.group.group_key())
            .field("message_len", &self.message.len())
            .field(
                "commitments_from",
                &self.commitments.keys().collect::<Vec<_>>(),
            )
            .field("package_fixed", &self.package.is_some())
            .field("shares_from", &self.shares.keys().collect::<Vec<_>>())
            .finish()
    }
}
