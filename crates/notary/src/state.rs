//! A node's persistent state: its FROST key share and UID key share, sealed at rest
//! ([`threshold::store`]; a key file in simulation, the TEE's sealing key in production), and
//! the group's public record (`group.json`), which verifiers use as their trust file. Key
//! material never reaches logs, errors or unsealed files.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use threshold::store::{read_sealed, write_sealed, KeyFileSealer, Sealer, StoreError};
use threshold::{NodeKey, PublicGroup};
use uid_prf::shamir::Share;
use zeroize::Zeroizing;

/// Why state cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Sealing or unsealing failed.
    #[error("sealed key store: {0}")]
    Store(#[from] StoreError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file's contents are not what this version writes.
    #[error("{path}: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// `group.json` cannot be read or written.
    #[error(transparent)]
    Group(#[from] notarization::group::GroupError),
    /// The key share does not belong to the group.
    #[error("node {0}'s key share does not match group.json: {1}")]
    Mismatch(u16, String),
}

pub use daemon::group::{member_record, public_group};
pub use notarization::group::{GroupFile, MemberRecord};

/// What a node keeps sealed.
#[derive(Serialize, Deserialize)]
struct SealedKeys {
    node_id: u16,
    frost_key: String,
    uid_share: Share,
}

/// A node's secrets in memory: its FROST key share and UID key share.
pub struct NodeState {
    /// The node id.
    pub id: u16,
    /// FROST key share.
    pub key: NodeKey,
    /// UID key share.
    pub uid: Share,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeState {{ id: {}, .. }}", self.id)
    }
}

const AAD: &[u8] = b"tessera node keys v1";

impl NodeState {
    /// Seals the state into `path` with `sealer`.
    pub fn save(&self, path: &Path, sealer: &dyn Sealer) -> Result<(), StateError> {
        let frost = self.key.to_bytes().map_err(|e| StateError::Format {
            path: path.to_path_buf(),
            why: format!("cannot encode the key share: {e}"),
        })?;
        let s = SealedKeys {
            node_id: self.id,
            frost_key: hex::encode(&frost[..]),
            uid_share: self.uid.clone(),
        };
        let plain = Zeroizing::new(serde_json::to_vec(&s).map_err(|_| StateError::Format {
            path: path.to_path_buf(),
            why: "cannot encode the key state".into(),
        })?);
        let mut s = s;
        zeroize::Zeroize::zeroize(&mut s.frost_key);
        write_sealed(path, sealer, AAD, &plain)?;
        Ok(())
    }

    /// Unseals the state from `path` and checks it against the group record.
    pub fn load(path: &Path, sealer: &dyn Sealer, group: &GroupFile) -> Result<Self, StateError> {
        let plain = read_sealed(path, sealer, AAD)?;
        let fmt = |why: &str| StateError::Format {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        let mut s: SealedKeys =
            serde_json::from_slice(&plain).map_err(|_| fmt("the sealed key state is malformed"))?;
        let bytes = Zeroizing::new(
            hex::decode(&s.frost_key).map_err(|_| fmt("the sealed key state is malformed"))?,
        );
        zeroize::Zeroize::zeroize(&mut s.frost_key);
        let key = NodeKey::from_bytes(&bytes)
            .map_err(|_| fmt("the sealed FROST key share is malformed"))?;
        if key.id() != s.node_id || s.uid_share.x != s.node_id {
            return Err(StateError::Mismatch(s.node_id, "ids differ".into()));
        }
        let member = group
            .members
            .iter()
            .find(|m| m.node_id == s.node_id)
            .ok_or_else(|| StateError::Mismatch(s.node_id, "not a member".into()))?;
        let vs = key
            .verifying_share()
            .map_err(|e| StateError::Mismatch(s.node_id, e.to_string()))?;
        if hex::encode(vs) != member.verifying_share {
            return Err(StateError::Mismatch(
                s.node_id,
                "verifying share differs".into(),
            ));
        }
        let gk = key
            .group_key()
            .map_err(|e| StateError::Mismatch(s.node_id, e.to_string()))?;
        if gk.to_hex() != group.group_key {
            return Err(StateError::Mismatch(s.node_id, "group key differs".into()));
        }
        Ok(NodeState {
            id: s.node_id,
            key,
            uid: s.uid_share.clone(),
        })
    }
}

/// The group record for a freshly generated group.
pub fn group_file(public: &PublicGroup, epoch: u64, members: Vec<MemberRecord>) -> GroupFile {
    GroupFile {
        version: 1,
        group_key: public.group_key().to_hex(),
        key_id: public.group_key().id(),
        epoch,
        threshold: public.threshold(),
        simulated: members.iter().any(|m| m.simulated),
        members,
    }
}

/// Opens the simulated sealer of node `id` under `dir` (`node-ID/seal.key`).
pub fn simulated_sealer(dir: &Path, id: u16) -> Result<KeyFileSealer, StateError> {
    let d = dir.join(format!("node-{id}"));
    std::fs::create_dir_all(&d).map_err(|source| StateError::Io {
        path: d.clone(),
        source,
    })?;
    Ok(KeyFileSealer::open_or_create(d.join("seal.key"))?)
}

/// Where node `id`'s sealed keys live under `dir`.
pub fn keys_path(dir: &Path, id: u16) -> PathBuf {
    dir.join(format!("node-{id}")).join("keys.sealed")
}
