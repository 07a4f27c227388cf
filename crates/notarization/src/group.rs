//! The notary set's public record: `group.json` (the group key, the epoch, every member's
//! verifying share and attested measurement), and the membership log — one entry per epoch,
//! each naming the previous one by hash and signed by the group key, so a verifier or auditor
//! who trusts the group key can check every membership change the coordinator reports.
//! Nothing here is secret.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One member of the notary set, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRecord {
    /// Node id (the FROST identifier and the UID share's x-coordinate).
    pub node_id: u16,
    /// Its FROST verifying share (hex).
    pub verifying_share: String,
    /// `sgx` or `tdx`.
    pub tee: String,
    /// Its measurement (MRENCLAVE or MRTD, hex) from a verified quote.
    pub measurement: String,
    /// Whether its TEE is simulated.
    pub simulated: bool,
}

impl MemberRecord {
    /// Whether `other` attests the same TEE: kind, measurement and simulation flag (the
    /// node id and verifying share are not compared).
    pub fn same_tee(&self, other: &MemberRecord) -> bool {
        (self.tee.as_str(), self.measurement.as_str(), self.simulated)
            == (
                other.tee.as_str(),
                other.measurement.as_str(),
                other.simulated,
            )
    }
}

/// The group's public record (`group.json`): what verifiers trust and auditors check. The
/// fields `group_key`, `key_id`, `epoch` and `simulated` are what [`crate::TrustedGroup`]
/// reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    /// Format version (1).
    pub version: u16,
    /// The Ed25519 group key (hex).
    pub group_key: String,
    /// Its id.
    pub key_id: String,
    /// The notary set's epoch (1 at creation; each membership change adds one).
    pub epoch: u64,
    /// Signing and UID threshold.
    pub threshold: u16,
    /// Whether any member is simulated.
    pub simulated: bool,
    /// The members.
    pub members: Vec<MemberRecord>,
}

/// Why a `group.json` or a membership log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
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
    /// The membership log does not check out; the entry's epoch and the reason.
    #[error("membership log entry for epoch {epoch}: {why}")]
    Log {
        /// The entry's epoch.
        epoch: u64,
        /// What is wrong.
        why: String,
    },
}

impl GroupFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, GroupError> {
        let text = std::fs::read_to_string(path).map_err(|source| GroupError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text).map_err(|why| GroupError::Format {
            path: path.to_path_buf(),
            why,
        })
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let g: GroupFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if g.version != 1 {
            return Err(format!("version {} (this build reads 1)", g.version));
        }
        Ok(g)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes `path` (atomically: a temporary file, then a rename).
    pub fn write(&self, path: &Path) -> Result<(), GroupError> {
        let io = |source| GroupError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, self.to_json() + "\n").map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The member ids in order.
    pub fn member_ids(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.node_id).collect()
    }

    /// The record of member `id`.
    pub fn member(&self, id: u16) -> Option<&MemberRecord> {
        self.members.iter().find(|m| m.node_id == id)
    }

    /// The trust entry a verifier derives from this record.
    pub fn trusted(&self) -> Result<crate::TrustedGroup, String> {
        let key: [u8; 32] = hex::decode(&self.group_key)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or("the group key is not 32 bytes of hex")?;
        Ok(crate::TrustedGroup {
            group_key: key,
            key_id: self.key_id.clone(),
            epoch: self.epoch,
            simulated: self.simulated,
        })
    }
}

/// One membership change: the group record that holds from `group.epoch` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    /// What changed, e.g. `genesis` or `join 4`.
    pub change: String,
    /// When the change was made (unix seconds, the coordinator's clock; informative).
    pub time: u64,
    /// SHA-256 of the previous entry's signed message (hex); empty for the genesis entry.
    pub prev: String,
    /// The group from this epoch on.
    pub group: GroupFile,
}

/// The domain separator of a membership log entry's signed message. A notarization's
/// canonical encoding starts with its own magic, so neither can be taken for the other.
pub const LOG_DOMAIN: &[u8] = b"tessera/membership-log/v1\0";

impl LogEntry {
    /// The bytes the group key signs: [`LOG_DOMAIN`] then the entry's JSON (serde's output
    /// is deterministic for this struct: fixed field order, no maps).
    pub fn message(&self) -> Vec<u8> {
        let mut m = LOG_DOMAIN.to_vec();
        m.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        m
    }

    /// The hash the next entry names in `prev`.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.message()))
    }
}

/// A log entry and the group's Ed25519 signature over [`LogEntry::message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEntry {
    /// The entry.
    pub entry: LogEntry,
    /// The signature (hex, 64 bytes).
    pub signature: String,
}

/// Checks a whole membership log: it starts at epoch 1 with a `genesis` entry, epochs go up
/// by one, each entry names the previous one's hash, the group key never changes (and is
/// `expect_key` if given), and every entry is signed by that key. Returns the latest group.
pub fn verify_log(log: &[SignedEntry], expect_key: Option<&str>) -> Result<GroupFile, GroupError> {
    let first = log.first().ok_or(GroupError::Log {
        epoch: 0,
        why: "the log is empty".into(),
    })?;
    let key_hex = first.entry.group.group_key.clone();
    if let Some(k) = expect_key {
        if !k.eq_ignore_ascii_case(&key_hex) && k != first.entry.group.key_id {
            return Err(GroupError::Log {
                epoch: first.entry.group.epoch,
                why: format!(
                    "the group key is {}, not the expected {k}",
                    first.entry.group.key_id
                ),
            });
        }
    }
    let bad = |epoch: u64, why: &str| GroupError::Log {
        epoch,
        why: why.to_string(),
    };
    let key_bytes: [u8; 32] = hex::decode(&key_hex)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad(1, "the group key is not 32 bytes of hex"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| bad(1, "the group key is not an Ed25519 key"))?;
    let mut prev = String::new();
    for (i, s) in log.iter().enumerate() {
        let e = &s.entry;
        let epoch = e.group.epoch;
        if epoch != i as u64 + 1 {
            return Err(bad(epoch, &format!("expected epoch {}", i + 1)));
        }
        if (i == 0) != (e.change == "genesis") {
            return Err(bad(epoch, "only the first entry is the genesis"));
        }
        if e.prev != prev {
            return Err(bad(epoch, "it does not name the previous entry's hash"));
        }
        if e.group.group_key != key_hex {
            return Err(bad(epoch, "the group key changed"));
        }
        let sig: [u8; 64] = hex::decode(&s.signature)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(epoch, "the signature is not 64 bytes of hex"))?;
        key.verify_strict(&e.message(), &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| bad(epoch, "the group signature does not verify"))?;
        prev = e.hash();
    }
    Ok(log[log.len() - 1].entry.group.clone())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn group(key: &SigningKey, epoch: u64, ids: &[u16]) -> GroupFile {
        GroupFile {
            version: 1,
            group_key: hex::encode(key.verifying_key().to_bytes()),
            key_id: "test".into(),
            epoch,
            threshold: 2,
            simulated: true,
            members: ids
                .iter()
                .map(|&node_id| MemberRecord {
                    node_id,
                    verifying_share: "00".repeat(32),
                    tee: "sgx".into(),
                    measurement: "ab".repeat(32),
                    simulated: true,
                })
                .collect(),
        }
    }

    fn sign(key: &SigningKey, entry: LogEntry) -> SignedEntry {
        let signature = hex::encode(key.sign(&entry.message()).to_bytes());
        SignedEntry { entry, signature }
    }

    fn log(key: &SigningKey) -> Vec<SignedEntry> {
        let g = sign(
            key,
            LogEntry {
                change: "genesis".into(),
                time: 1,
                prev: String::new(),
                group: group(key, 1, &[1, 2, 3]),
            },
        );
        let j = sign(
            key,
            LogEntry {
                change: "join 4".into(),
                time: 2,
                prev: g.entry.hash(),
                group: group(key, 2, &[1, 2, 3, 4]),
            },
        );
        vec![g, j]
    }

    #[test]
    fn a_signed_chain_verifies_and_every_alteration_is_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let l = log(&key);
        assert_eq!(verify_log(&l, None).unwrap().epoch, 2);
        let kh = hex::encode(key.verifying_key().to_bytes());
        assert!(verify_log(&l, Some(&kh)).is_ok());
        assert!(verify_log(&l, Some(&"11".repeat(32))).is_err());
        assert!(verify_log(&[], None).is_err());
        // A member added without a signature.
        let mut m = l.clone();
        let extra = m[1].entry.group.members[0].clone();
        m[1].entry.group.members.push(extra);
        assert!(verify_log(&m, None)
            .unwrap_err()
            .to_string()
            .contains("signature"));
        // Entries out of order, a dropped genesis, a broken chain.
        assert!(verify_log(&[l[1].clone()], None).is_err());
        let mut m = l.clone();
        m.swap(0, 1);
        assert!(verify_log(&m, None).is_err());
        let other = SigningKey::from_bytes(&[8; 32]);
        let mut m = l.clone();
        m[1] = sign(
            &key,
            LogEntry {
                prev: "00".repeat(32),
                ..l[1].entry.clone()
            },
        );
        assert!(verify_log(&m, None)
            .unwrap_err()
            .to_string()
            .contains("previous"));
        // A log signed by another key cannot continue this one.
        let mut m = l.clone();
        m[1] = sign(&other, l[1].entry.clone());
        assert!(verify_log(&m, None).is_err());
    }

    #[test]
    fn the_json_form_round_trips_and_refuses_unknown_fields() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let g = group(&key, 1, &[1, 2, 3]);
        assert_eq!(GroupFile::from_json(&g.to_json()).unwrap(), g);
        let extra = g.to_json().replacen('{', "{\"x\":1,", 1);
        assert!(GroupFile::from_json(&extra).is_err());
        let t = g.trusted().unwrap();
        assert_eq!(t.epoch, 1);
        assert!(t.simulated);
    }
}
