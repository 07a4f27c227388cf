//! What a node keeps on disk: its key shares, sealed (`keys.sealed`, under `seal.key` in
//! simulation — TEE sealing is not implemented), and the membership log it has signed or
//! verified (`log.json`, public). Keys from a key generation or repair that was never
//! logged are kept aside in memory ([`Pending`]) until the group signs the entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use notarization::group::{verify_log, GroupFile, MemberRecord, SignedEntry};
use notary::state::NodeState;
use threshold::store::KeyFileSealer;
use threshold::PublicGroup;

use crate::DaemonError;

/// Keys made but not yet in the signed log, with what this node attested of the others.
pub struct Pending {
    /// The new key shares.
    pub state: Arc<NodeState>,
    /// The group as this node computed it.
    pub public: PublicGroup,
    /// The records of the members as this node verified them (its own included).
    pub records: BTreeMap<u16, MemberRecord>,
}

/// The node's persistent state.
pub struct Store {
    dir: PathBuf,
    id: u16,
    sealer: KeyFileSealer,
    /// The node's key shares, once the log lists it as a member.
    pub keys: Option<Arc<NodeState>>,
    /// The membership log (genesis first).
    pub log: Vec<SignedEntry>,
    /// Keys awaiting their log entry.
    pub pending: Option<Pending>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |e| DaemonError::State(format!("{}: {e}", path.display()))
}

impl Store {
    /// Opens (creating) node `id`'s state in `dir`.
    pub fn open(dir: &Path, id: u16) -> Result<Self, DaemonError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let sealer = KeyFileSealer::open_or_create(dir.join("seal.key"))
            .map_err(|e| DaemonError::State(e.to_string()))?;
        let log_path = dir.join("log.json");
        let log: Vec<SignedEntry> = if log_path.exists() {
            let text = std::fs::read_to_string(&log_path).map_err(io(&log_path))?;
            serde_json::from_str(&text)
                .map_err(|e| DaemonError::State(format!("{}: {e}", log_path.display())))?
        } else {
            Vec::new()
        };
        if !log.is_empty() {
            verify_log(&log, None).map_err(|e| DaemonError::State(e.to_string()))?;
        }
        let mut s = Store {
            dir: dir.to_path_buf(),
            id,
            sealer,
            keys: None,
            log,
            pending: None,
        };
        s.keys = s.load_keys();
        Ok(s)
    }

    fn keys_path(&self) -> PathBuf {
        self.dir.join("keys.sealed")
    }

    /// The sealed keys, if they belong to the latest group.
    fn load_keys(&self) -> Option<Arc<NodeState>> {
        let group = self.group()?;
        group.member(self.id)?;
        match NodeState::load(&self.keys_path(), &self.sealer, group) {
            Ok(k) => Some(Arc::new(k)),
            Err(e) => {
                tracing::warn!(error = %e, "sealed keys unusable");
                None
            }
        }
    }

    /// The latest group record.
    pub fn group(&self) -> Option<&GroupFile> {
        self.log.last().map(|e| &e.entry.group)
    }

    /// The epoch this node holds keys for (0: none).
    pub fn member_epoch(&self) -> u64 {
        match (&self.keys, self.group()) {
            (Some(_), Some(g)) => g.epoch,
            _ => 0,
        }
    }

    /// Takes the coordinator's log if it verifies and extends this node's own.
    pub fn adopt(&mut self, log: Vec<SignedEntry>) -> Result<(), DaemonError> {
        if log.is_empty() {
            if self.log.is_empty() {
                return Ok(());
            }
            return Err(DaemonError::State(format!(
                "the coordinator has no membership log, but this node holds one up to epoch {}",
                self.log.len()
            )));
        }
        let expect = self.log.first().map(|e| e.entry.group.group_key.clone());
        verify_log(&log, expect.as_deref()).map_err(|e| DaemonError::State(e.to_string()))?;
        if log.len() < self.log.len() || log[..self.log.len()] != self.log[..] {
            return Err(DaemonError::State(format!(
                "the coordinator's membership log (epoch {}) does not extend this node's (epoch {})",
                log.len(),
                self.log.len()
            )));
        }
        if log.len() > self.log.len() {
            self.log = log;
            self.save_log()?;
            if self.keys.is_none() {
                self.keys = self.load_keys();
            } else if let Some(g) = self.group() {
                if g.member(self.id).is_none() {
                    tracing::warn!("this node is no longer in the group's latest epoch");
                    self.keys = None;
                }
            }
        }
        Ok(())
    }

    fn save_log(&self) -> Result<(), DaemonError> {
        let path = self.dir.join("log.json");
        let tmp = self.dir.join("log.json.tmp");
        let text = serde_json::to_string_pretty(&self.log)
            .map_err(|e| DaemonError::State(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Appends a signed entry; if pending keys belong to it, seals and keeps them.
    pub fn append(&mut self, e: SignedEntry) -> Result<(), DaemonError> {
        self.log.push(e);
        verify_log(&self.log, None).map_err(|e| DaemonError::State(e.to_string()))?;
        self.save_log()?;
        if let Some(p) = self.pending.take() {
            p.state
                .save(&self.keys_path(), &self.sealer)
                .map_err(|e| DaemonError::State(e.to_string()))?;
            self.keys = Some(p.state);
        }
        Ok(())
    }
}

/// The threshold crate's view of a group record.
pub fn public_group(g: &GroupFile) -> Result<PublicGroup, DaemonError> {
    daemon::group::public_group(g).map_err(|why| DaemonError::State(format!("group record: {why}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use notarization::group::LogEntry;

    fn entry(key: &SigningKey, epoch: u64, prev: &str, ids: &[u16], tag: &str) -> SignedEntry {
        let group = GroupFile {
            version: 1,
            group_key: hex::encode(key.verifying_key().to_bytes()),
            key_id: "k".into(),
            epoch,
            threshold: 2,
            simulated: true,
            members: ids
                .iter()
                .map(|&node_id| MemberRecord {
                    node_id,
                    verifying_share: "00".repeat(32),
                    tee: "sgx".into(),
                    measurement: tag.repeat(32),
                    simulated: true,
                })
                .collect(),
        };
        let change = if epoch == 1 {
            "genesis".to_string()
        } else {
            format!("join {}", ids[ids.len() - 1])
        };
        let entry = LogEntry {
            change,
            time: epoch,
            prev: prev.into(),
            group,
        };
        let signature = hex::encode(key.sign(&entry.message()).to_bytes());
        SignedEntry { entry, signature }
    }

    fn chain(key: &SigningKey, tag: &str) -> Vec<SignedEntry> {
        let g = entry(key, 1, "", &[1, 2, 3], "ab");
        let j = entry(key, 2, &g.entry.hash(), &[1, 2, 3, 4], tag);
        vec![g, j]
    }

    #[test]
    fn a_node_adopts_only_logs_that_extend_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let log = chain(&key, "ab");
        let mut s = Store::open(dir.path(), 5).unwrap();
        s.adopt(log[..1].to_vec()).unwrap();
        assert_eq!(
            s.member_epoch(),
            0,
            "node 5 is not a member and holds no keys"
        );
        s.adopt(log.clone()).unwrap();
        assert_eq!(s.group().unwrap().epoch, 2);
        // Persisted, and checked again on open.
        let mut s = Store::open(dir.path(), 5).unwrap();
        assert_eq!(s.log, log);
        // A rolled-back log, a forked one (another epoch 2, validly signed), one under another
        // group key, and none at all are refused; the node's log stays as it was.
        let e = s.adopt(log[..1].to_vec()).unwrap_err().to_string();
        assert!(e.contains("does not extend"), "{e}");
        let e = s.adopt(chain(&key, "cd")).unwrap_err().to_string();
        assert!(e.contains("does not extend"), "{e}");
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(s.adopt(chain(&other, "ab")).is_err());
        assert!(s
            .adopt(Vec::new())
            .unwrap_err()
            .to_string()
            .contains("no membership log"));
        assert_eq!(s.log, log);
        // An altered log file is refused at open.
        let path = dir.path().join("log.json");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\"ab", "\"ee", 1);
        std::fs::write(&path, text).unwrap();
        assert!(Store::open(dir.path(), 5).is_err());
    }
}
