//! The public side of a group: its Ed25519 verifying key ([`GroupKey`]) and the membership record
//! ([`PublicGroup`]: threshold and each member's verifying share).
//! Holds only public values; it must never accept a record whose shares do not lie on one
//! polynomial through the group key.

use std::collections::BTreeMap;
use std::fmt;

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use frost_ed25519::keys::{PublicKeyPackage, VerifyingShare};
use frost_ed25519::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::curve;
use crate::repair::RepairError;

/// Errors about group keys, membership records, node keys and final signatures.
#[derive(Debug, thiserror::Error)]
pub enum ThresholdError {
    /// The signature is well formed but does not verify under the group key.
    #[error("signature does not verify under group key {group_key_id}")]
    InvalidSignature {
        /// [`GroupKey::id`] of the key checked against.
        group_key_id: String,
    },
    /// The 64 signature bytes do not decode (R not a valid point, or s not a canonical scalar).
    #[error(
        "signature is malformed: R must be a canonical prime-order point, s a canonical scalar"
    )]
    MalformedSignature,
    /// The group key bytes are not a valid Ed25519 point of prime order.
    #[error("group key is not a canonical, prime-order Ed25519 point")]
    MalformedGroupKey,
    /// A member's verifying share is not a valid Ed25519 point of prime order.
    #[error("verifying share of node {node} is not a canonical, prime-order Ed25519 point")]
    MalformedVerifyingShare {
        /// The member whose share is malformed.
        node: u16,
    },
    /// Node id 0, or a frost identifier that is not one of our `u16` ids.
    #[error("node ids are nonzero u16 values; got {0}")]
    InvalidNodeId(String),
    /// The threshold is outside 2 ≤ t ≤ N.
    #[error("threshold {threshold} is out of range for {members} members (need 2 <= t <= N)")]
    InvalidThreshold {
        /// The threshold found.
        threshold: u16,
        /// The number of members.
        members: usize,
    },
    /// A frost public key package without `min_signers` (made before frost 3.0).
    #[error("public key package has no threshold (min_signers); it predates frost 3.0")]
    MissingThreshold,
    /// The verifying shares do not interpolate to the group key, or a member's share is off the
    /// polynomial the first t members define.
    #[error("verifying share of node {node} is not on the group's polynomial: the record is corrupt or forged")]
    InconsistentShares {
        /// The first member found off the polynomial (0 when the group key itself is off).
        node: u16,
    },
    /// A key file or sealed blob did not decode to a node key. Carries no key bytes.
    #[error("node key bytes do not decode: {0}")]
    MalformedNodeKey(&'static str),
    /// A node key does not belong to the group it is used with.
    #[error("node {node}'s key does not match the group: {check}")]
    KeyGroupMismatch {
        /// The node whose key was checked.
        node: u16,
        /// Which check failed.
        check: &'static str,
    },
    /// Hex text did not decode to the expected number of bytes.
    #[error("{what} is not {len} bytes of hex")]
    BadHex {
        /// What was being decoded.
        what: &'static str,
        /// Expected length in bytes.
        len: usize,
    },
}

/// The group's Ed25519 verifying key (the "group public key"); signatures made by any t members
/// verify under it as ordinary Ed25519 signatures (RFC 8032).
///
/// Serialized as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupKey {
    bytes: [u8; 32],
}

impl GroupKey {
    /// Parses the 32-byte compressed point; rejects non-canonical, identity and small-order keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, ThresholdError> {
        curve::decode_point(bytes).ok_or(ThresholdError::MalformedGroupKey)?;
        Ok(Self { bytes: *bytes })
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Result<Self, ThresholdError> {
        Self::from_bytes(&hex32(text, "group key")?)
    }

    /// The 32-byte compressed point (the Ed25519 public key bytes).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// Lowercase hex of [`GroupKey::to_bytes`].
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Short key id: lowercase hex of the first 8 bytes of SHA-512 over the 32 key bytes
    /// (16 hex characters). For logs and display; compare full keys for security decisions.
    pub fn id(&self) -> String {
        let digest = Sha512::digest(self.bytes);
        hex::encode(&digest[..8])
    }

    /// Verifies an Ed25519 signature `R || s` over `msg`.
    ///
    /// This is RFC 9591's check with cofactor 1 (the same as `ed25519-dalek`'s `verify_strict` for
    /// every signature this crate produces); R must be a prime-order point and s canonical.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> Result<(), ThresholdError> {
        let signature =
            Signature::deserialize(sig).map_err(|_| ThresholdError::MalformedSignature)?;
        self.to_frost()?
            .verify(msg, &signature)
            .map_err(|_| ThresholdError::InvalidSignature {
                group_key_id: self.id(),
            })
    }

    /// The frost verifying key.
    pub fn to_frost(&self) -> Result<VerifyingKey, ThresholdError> {
        VerifyingKey::deserialize(&self.bytes).map_err(|_| ThresholdError::MalformedGroupKey)
    }

    /// From a frost verifying key.
    pub fn from_frost(key: &VerifyingKey) -> Result<Self, ThresholdError> {
        let bytes = key
            .serialize()
            .map_err(|_| ThresholdError::MalformedGroupKey)?;
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ThresholdError::MalformedGroupKey)?;
        Self::from_bytes(&arr)
    }

    pub(crate) fn point(&self) -> Result<EdwardsPoint, ThresholdError> {
        curve::decode_point(&self.bytes).ok_or(ThresholdError::MalformedGroupKey)
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GroupKey").field(&self.to_hex()).finish()
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for GroupKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for GroupKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// The public record of a group: group key, threshold t, and each member's verifying share
/// (the public key G·sᵢ of its secret share sᵢ).
///
/// t is fixed when the group is made by the DKG and stays fixed for the group's life: refresh and
/// repair keep it. Changing t needs a new DKG, which gives a new group key.
///
/// Every constructor (including deserialization) checks that the verifying shares lie on one
/// polynomial of degree t−1 in the exponent whose value at 0 is the group key, so a record that
/// passed through a file or the network cannot silently be inconsistent.
///
/// JSON form:
/// `{"group_key": "<hex>", "threshold": 2, "members": {"1": "<hex>", "2": "<hex>", "3": "<hex>"}}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PublicGroupWire", into = "PublicGroupWire")]
pub struct PublicGroup {
    group_key: GroupKey,
    threshold: u16,
    members: BTreeMap<u16, [u8; 32]>,
    frost: PublicKeyPackage,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicGroupWire {
    group_key: GroupKey,
    threshold: u16,
    members: BTreeMap<u16, String>,
}

impl TryFrom<PublicGroupWire> for PublicGroup {
    type Error = ThresholdError;
    fn try_from(wire: PublicGroupWire) -> Result<Self, ThresholdError> {
        let mut members = BTreeMap::new();
        for (id, text) in wire.members {
            members.insert(id, hex32(&text, "verifying share")?);
        }
        PublicGroup::new(wire.group_key, wire.threshold, members)
    }
}

impl From<PublicGroup> for PublicGroupWire {
    fn from(group: PublicGroup) -> Self {
        PublicGroupWire {
            group_key: group.group_key,
            threshold: group.threshold,
            members: group
                .members
                .iter()
                .map(|(id, share)| (*id, hex::encode(share)))
                .collect(),
        }
    }
}

impl PublicGroup {
    /// Builds and checks a record: ids nonzero, 2 ≤ t ≤ N, every share a valid point, and all
    /// shares on one degree-(t−1) polynomial through the group key.
    pub fn new(
        group_key: GroupKey,
        threshold: u16,
        members: BTreeMap<u16, [u8; 32]>,
    ) -> Result<Self, ThresholdError> {
        if members.contains_key(&0) {
            return Err(ThresholdError::InvalidNodeId("0".into()));
        }
        if threshold < 2 || usize::from(threshold) > members.len() {
            return Err(ThresholdError::InvalidThreshold {
                threshold,
                members: members.len(),
            });
        }
        let mut points = BTreeMap::new();
        let mut frost_shares = BTreeMap::new();
        for (&id, share) in &members {
            let point = curve::decode_point(share)
                .ok_or(ThresholdError::MalformedVerifyingShare { node: id })?;
            let ident =
                curve::identifier(id).ok_or(ThresholdError::InvalidNodeId(id.to_string()))?;
            let vs = VerifyingShare::deserialize(share)
                .map_err(|_| ThresholdError::MalformedVerifyingShare { node: id })?;
            points.insert(id, point);
            frost_shares.insert(ident, vs);
        }
        check_on_polynomial(&group_key, threshold, &points)?;
        let frost = PublicKeyPackage::new(frost_shares, group_key.to_frost()?, Some(threshold));
        Ok(Self {
            group_key,
            threshold,
            members,
            frost,
        })
    }

    /// The group's verifying key.
    pub fn group_key(&self) -> &GroupKey {
        &self.group_key
    }

    /// The threshold t: how many members must take part in a signature.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// Member ids, ascending.
    pub fn member_ids(&self) -> Vec<u16> {
        self.members.keys().copied().collect()
    }

    /// Number of members N.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false (a group has at least t ≥ 2 members); present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `node` is a member.
    pub fn contains(&self, node: u16) -> bool {
        self.members.contains_key(&node)
    }

    /// Member `node`'s verifying share (compressed point).
    pub fn verifying_share(&self, node: u16) -> Option<[u8; 32]> {
        self.members.get(&node).copied()
    }

    /// All verifying shares by member id.
    pub fn verifying_shares(&self) -> &BTreeMap<u16, [u8; 32]> {
        &self.members
    }

    /// A digest of the whole record, for members to compare after a DKG, refresh or join (the
    /// protocols assume everyone saw the same broadcast; equal fingerprints confirm it).
    ///
    /// Lowercase hex of the first 16 bytes of SHA-512 over
    /// `"tessera-public-group/v1" || group_key || t (u16 BE) || N (u32 BE) || (id (u16 BE) || share)*`
    /// with members in ascending id order.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha512::new();
        h.update(b"tessera-public-group/v1");
        h.update(self.group_key.to_bytes());
        h.update(self.threshold.to_be_bytes());
        h.update((self.members.len() as u32).to_be_bytes());
        for (id, share) in &self.members {
            h.update(id.to_be_bytes());
            h.update(share);
        }
        hex::encode(&h.finalize()[..16])
    }

    /// The frost public key package (with `min_signers` = t).
    pub fn to_frost(&self) -> PublicKeyPackage {
        self.frost.clone()
    }

    pub(crate) fn frost(&self) -> &PublicKeyPackage {
        &self.frost
    }

    /// From a frost public key package; it must carry `min_signers` and use `u16` identifiers.
    pub fn from_frost(package: &PublicKeyPackage) -> Result<Self, ThresholdError> {
        let threshold = package
            .min_signers()
            .ok_or(ThresholdError::MissingThreshold)?;
        let group_key = GroupKey::from_frost(package.verifying_key())?;
        let mut members = BTreeMap::new();
        for (ident, share) in package.verifying_shares() {
            let id = curve::node_id(ident)
                .ok_or_else(|| ThresholdError::InvalidNodeId(format!("{ident:?}")))?;
            let bytes = share
                .serialize()
                .map_err(|_| ThresholdError::MalformedVerifyingShare { node: id })?;
            let arr: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| ThresholdError::MalformedVerifyingShare { node: id })?;
            members.insert(id, arr);
        }
        Self::new(group_key, threshold, members)
    }

    /// The verifying share a new member `node` must have: Σ_j λ_j(node)·VS_j over the first t
    /// members (any t give the same point, since all shares lie on one polynomial).
    pub fn expected_verifying_share(&self, node: u16) -> Result<[u8; 32], ThresholdError> {
        if node == 0 {
            return Err(ThresholdError::InvalidNodeId("0".into()));
        }
        let points = self.first_t_points()?;
        Ok(curve::encode_point(&curve::interpolate(
            curve::scalar_of(node),
            &points,
        )))
    }

    /// A copy of the record with `node` added, after checking its verifying share by
    /// interpolation against [`PublicGroup::expected_verifying_share`].
    ///
    /// This is what every existing member runs on the share a newcomer announces after a repair
    /// ([`crate::repair`]); the newcomer runs it on its own share too.
    pub fn with_member(
        &self,
        node: u16,
        verifying_share: &[u8; 32],
    ) -> Result<PublicGroup, RepairError> {
        if node == 0 {
            return Err(RepairError::InvalidNodeId);
        }
        if self.contains(node) {
            return Err(RepairError::AlreadyMember { node });
        }
        let expected = self
            .expected_verifying_share(node)
            .map_err(RepairError::Group)?;
        if expected != *verifying_share {
            return Err(RepairError::VerifyingShareMismatch { node });
        }
        let mut members = self.members.clone();
        members.insert(node, *verifying_share);
        PublicGroup::new(self.group_key, self.threshold, members).map_err(RepairError::Group)
    }

    fn first_t_points(&self) -> Result<BTreeMap<u16, EdwardsPoint>, ThresholdError> {
        self.members
            .iter()
            .take(usize::from(self.threshold))
            .map(|(&id, share)| {
                curve::decode_point(share)
                    .map(|p| (id, p))
                    .ok_or(ThresholdError::MalformedVerifyingShare { node: id })
            })
            .collect()
    }
}

/// All shares must lie on the polynomial through the first t, and its value at 0 must be the key.
fn check_on_polynomial(
    group_key: &GroupKey,
    threshold: u16,
    points: &BTreeMap<u16, EdwardsPoint>,
) -> Result<(), ThresholdError> {
    let basis: BTreeMap<u16, EdwardsPoint> = points
        .iter()
        .take(usize::from(threshold))
        .map(|(id, p)| (*id, *p))
        .collect();
    if curve::interpolate(Scalar::ZERO, &basis) != group_key.point()? {
        return Err(ThresholdError::InconsistentShares { node: 0 });
    }
    for (&id, point) in points.iter().skip(usize::from(threshold)) {
        if curve::interpolate(curve::scalar_of(id), &basis) != *point {
            return Err(ThresholdError::InconsistentShares { node: id });
        }
    }
    Ok(())
}

impl fmt::Debug for PublicGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicGroup")
            .field("group_key", &self.group_key)
            .field("threshold", &self.threshold)
            .field("members", &self.member_ids())
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

pub(crate) fn hex32(text: &str, what: &'static str) -> Result<[u8; 32], ThresholdError> {
    let bytes = hex::decode(text).map_err(|_| ThresholdError::BadHex { what, len: 32 })?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| ThresholdError::BadHex { what, len: 32 })
}
