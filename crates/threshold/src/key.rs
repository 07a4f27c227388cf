//! A node's long-lived secret: its share of the group signing key ([`NodeKey`]).
//! It must never be printed, serialized except for sealing ([`crate::store`]), or sent anywhere.

use std::fmt;

use frost_ed25519::keys::{KeyPackage, VerifyingShare};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::curve;
use crate::group::{GroupKey, PublicGroup, ThresholdError};

/// A node's key share: node id, secret share sᵢ, its verifying share G·sᵢ, the group key and the
/// threshold. Wraps frost's `KeyPackage`.
///
/// Wiped on drop; `Debug` prints the id and group key id only; no `Clone`, no `Serialize`: the only
/// way out is [`NodeKey::to_bytes`], meant to go straight into [`crate::store::write_sealed`].
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct NodeKey {
    #[zeroize(skip)]
    id: u16,
    inner: KeyPackage,
}

impl NodeKey {
    /// Wraps a frost key package after checking that its identifier is a `u16` node id, that the
    /// verifying share is G·(signing share) and that the threshold is at least 2.
    pub fn from_frost(inner: KeyPackage) -> Result<Self, ThresholdError> {
        let id = curve::node_id(inner.identifier())
            .ok_or_else(|| ThresholdError::InvalidNodeId(format!("{:?}", inner.identifier())))?;
        let derived = VerifyingShare::from(*inner.signing_share());
        if derived != *inner.verifying_share() {
            return Err(ThresholdError::KeyGroupMismatch {
                node: id,
                check: "verifying share is not G times the signing share",
            });
        }
        if *inner.min_signers() < 2 {
            return Err(ThresholdError::KeyGroupMismatch {
                node: id,
                check: "threshold below 2",
            });
        }
        GroupKey::from_frost(inner.verifying_key())?;
        Ok(Self { id, inner })
    }

    /// The frost key package, for frost-level interop and tests. It holds the secret share and
    /// frost lets it be serialized: seal it with [`NodeKey::to_bytes`] and nothing else.
    pub fn as_frost(&self) -> &KeyPackage {
        &self.inner
    }

    /// This node's id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The group key this share belongs to.
    pub fn group_key(&self) -> Result<GroupKey, ThresholdError> {
        GroupKey::from_frost(self.inner.verifying_key())
    }

    /// The group's threshold t.
    pub fn threshold(&self) -> u16 {
        *self.inner.min_signers()
    }

    /// This node's verifying share G·sᵢ (public).
    pub fn verifying_share(&self) -> Result<[u8; 32], ThresholdError> {
        let bytes = self
            .inner
            .verifying_share()
            .serialize()
            .map_err(|_| ThresholdError::MalformedVerifyingShare { node: self.id })?;
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| ThresholdError::MalformedVerifyingShare { node: self.id })
    }

    /// Checks that this key belongs to `group`: same group key, same threshold, and the group lists
    /// this node with this key's verifying share.
    pub fn check_against(&self, group: &PublicGroup) -> Result<(), ThresholdError> {
        let mismatch = |check| ThresholdError::KeyGroupMismatch {
            node: self.id,
            check,
        };
        if self.group_key()? != *group.group_key() {
            return Err(mismatch("different group key"));
        }
        if self.threshold() != group.threshold() {
            return Err(mismatch("different threshold"));
        }
        match group.verifying_share(self.id) {
            None => Err(mismatch("node is not a member of the group")),
            Some(vs) if vs != self.verifying_share()? => Err(mismatch(
                "group lists a different verifying share for this node",
            )),
            Some(_) => Ok(()),
        }
    }

    /// Serializes the key for sealing (frost's versioned postcard encoding with its ciphersuite
    /// header). The buffer is wiped on drop.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, ThresholdError> {
        self.inner
            .serialize()
            .map(Zeroizing::new)
            .map_err(|_| ThresholdError::MalformedNodeKey("frost could not serialize the key"))
    }

    /// Parses [`NodeKey::to_bytes`] output and re-checks it as [`NodeKey::from_frost`] does.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ThresholdError> {
        let inner = KeyPackage::deserialize(bytes)
            .map_err(|_| ThresholdError::MalformedNodeKey("not a frost Ed25519 key package"))?;
        Self::from_frost(inner)
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = self
            .group_key()
            .map(|k| k.id())
            .unwrap_or_else(|_| "<invalid>".into());
        f.debug_struct("NodeKey")
            .field("id", &self.id)
            .field("group_key_id", &group)
            .field("threshold", &self.threshold())
            .field("share", &"<redacted>")
            .finish()
    }
}
