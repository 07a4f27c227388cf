//! Presentations and their offline verification. A presentation carries the signed
//! notarization, every commitment leaf (so the verifier can recompute the root) and the
//! openings of revealed fields; a field that is not opened shows only its key, offset and
//! salted hash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::hexser::{h16, h32, h64};
use crate::{DecodeError, Notarization, VERSION};

/// Longest committed value (bytes of the raw JSON string).
pub const MAX_VALUE: usize = 64;
/// Bytes of a commitment salt.
pub const SALT: usize = 16;
/// How far in the future a notarization's time may be (clock skew), in seconds.
pub const MAX_SKEW: u64 = 300;

/// The commitment the circuit computes to a field value: SHA-256(salt ‖ length byte ‖ value
/// zero-padded to [`MAX_VALUE`] bytes). `None` for a longer value.
pub fn commitment_hash(salt: &[u8; SALT], value: &[u8]) -> Option<[u8; 32]> {
    if value.len() > MAX_VALUE {
        return None;
    }
    let mut h = Sha256::new();
    h.update(salt);
    h.update([value.len() as u8]);
    h.update(value);
    h.update(
        [0u8; MAX_VALUE]
            .get(..MAX_VALUE - value.len())
            .unwrap_or_default(),
    );
    Some(h.finalize().into())
}

/// A commitment leaf: which field (its key and the offset of the `{` or `,` before it) and
/// the salted hash of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// The field's key.
    pub key: String,
    /// Offset in the response.
    pub at: u32,
    /// [`commitment_hash`] of the value.
    #[serde(with = "h32")]
    pub hash: [u8; 32],
}

/// A leaf's hash.
pub fn leaf_hash(c: &Commitment) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera-leaf-v1");
    h.update((c.key.len() as u16).to_be_bytes());
    h.update(c.key.as_bytes());
    h.update(c.at.to_be_bytes());
    h.update(c.hash);
    h.finalize().into()
}

/// The root over the leaves, in order (what the notarization holds).
pub fn commitment_root(leaves: &[Commitment]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera-root-v1");
    h.update((leaves.len() as u32).to_be_bytes());
    for l in leaves {
        h.update(leaf_hash(l));
    }
    h.finalize().into()
}

/// A revealed field: the salt and the raw value (as it appears between the quotes in the
/// response, JSON escapes included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    /// The field's key.
    pub key: String,
    /// Offset in the response.
    pub at: u32,
    /// The salt.
    #[serde(with = "h16")]
    pub salt: [u8; SALT],
    /// The raw value.
    pub value: String,
}

/// What a user gives a relying party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presentation {
    /// [`VERSION`].
    pub version: u16,
    /// The signed statement.
    pub notarization: Notarization,
    /// The group's Ed25519 signature over [`Notarization::to_bytes`].
    #[serde(with = "h64")]
    pub signature: [u8; 64],
    /// Every commitment leaf, in the notarization's order.
    pub commitments: Vec<Commitment>,
    /// The revealed fields.
    pub openings: Vec<Opening>,
}

impl Presentation {
    /// The JSON form.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
    /// Reads the JSON form.
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// A group key a verifier trusts, as read from a `group.json` the notary set publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedGroup {
    /// The Ed25519 group verifying key.
    #[serde(with = "h32")]
    pub group_key: [u8; 32],
    /// Its id, as notarizations name it.
    pub key_id: String,
    /// The latest epoch the verifier knows of: a notarization from a later epoch is refused.
    pub epoch: u64,
    /// Whether this group runs in simulated TEEs. Only a group marked so may sign a
    /// notarization that says a node was simulated; a production trust file refuses them.
    #[serde(default)]
    pub simulated: bool,
}

impl TrustedGroup {
    /// Reads the fields a verifier needs from a `group.json` (other fields are ignored).
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

/// What a valid presentation proves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// The provider.
    pub server_name: String,
    /// The session's time (unix seconds).
    pub time: u64,
    /// Revealed fields: key → value (JSON escapes decoded).
    pub revealed: BTreeMap<String, String>,
    /// Predicates: expression → result.
    pub predicates: BTreeMap<String, bool>,
    /// The nullifier's scope, if there is one.
    pub scope: Option<String>,
    /// The nullifier (hex), if there is one.
    pub nullifier: Option<String>,
    /// The PII fields the nullifier covers.
    pub nullifier_fields: Vec<String>,
    /// Committed fields that were not revealed.
    pub committed: Vec<String>,
    /// Whether any committee node was simulated.
    pub simulated: bool,
    /// Whether the provider closed with close_notify.
    pub close_notify: bool,
    /// Epoch and group key id.
    pub epoch: u64,
    /// Group key id.
    pub group_key_id: String,
    /// The committee's node ids.
    pub committee: Vec<u16>,
}

/// Why a presentation does not verify; each names the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A format version this build does not read.
    #[error("presentation version {0} is not supported (this build reads version {VERSION})")]
    Version(u16),
    /// The notarization cannot be encoded canonically.
    #[error("the notarization is malformed: {0}")]
    Encoding(#[from] DecodeError),
    /// No trusted group has this key id.
    #[error("the notarization was signed by group {0}, which is not among the trusted groups")]
    UnknownGroup(String),
    /// The notarization names an epoch later than the verifier knows.
    #[error("the notarization is from epoch {got}, later than the trusted epoch {trusted}: update the trust file")]
    EpochAhead {
        /// In the notarization.
        got: u64,
        /// Trusted.
        trusted: u64,
    },
    /// The signature does not verify under the group key.
    #[error("the group signature does not verify: the notarization was altered or not signed by this group")]
    BadSignature,
    /// The group key bytes are not a valid Ed25519 key.
    #[error("the trusted group key is not a valid Ed25519 public key")]
    BadGroupKey,
    /// The notarization is dated in the future.
    #[error("the notarization is dated {time}, more than {MAX_SKEW} s after now ({now})")]
    FromTheFuture {
        /// Its time.
        time: u64,
        /// Now.
        now: u64,
    },
    /// A simulated committee under a group not marked simulated.
    #[error("the notarization comes from a SIMULATED TEE committee, and the trusted group is not marked simulated")]
    SimulationRefused,
    /// The simulated flag contradicts the committee.
    #[error("the notarization's simulated flag contradicts its committee")]
    SimulatedFlag,
    /// The commitment leaves do not hash to the signed root.
    #[error("the commitments do not match the signed commitment root")]
    RootMismatch,
    /// An opening names a field with no commitment.
    #[error("revealed field {0:?} has no commitment")]
    NoCommitment(String),
    /// An opening does not match its commitment.
    #[error("revealed field {0:?} does not match its commitment")]
    OpeningMismatch(String),
    /// A field is revealed twice.
    #[error("field {0:?} is revealed twice")]
    DuplicateOpening(String),
    /// A revealed value is not a valid JSON string body.
    #[error("revealed field {0:?} is not a valid JSON string")]
    BadValue(String),
}

/// Verifies `p` against the trusted groups at unix time `now`: the version, the group, the
/// epoch, the signature, the time, the simulation flag, the commitment root and every
/// opening. Pure: no I/O, no clock.
pub fn verify(
    p: &Presentation,
    trusted: &[TrustedGroup],
    now: u64,
) -> Result<Verified, VerifyError> {
    if p.version != VERSION {
        return Err(VerifyError::Version(p.version));
    }
    let n = &p.notarization;
    if n.version != VERSION {
        return Err(VerifyError::Version(n.version));
    }
    let group = trusted
        .iter()
        .find(|g| g.key_id == n.group_key_id)
        .ok_or_else(|| VerifyError::UnknownGroup(n.group_key_id.clone()))?;
    if n.epoch > group.epoch {
        return Err(VerifyError::EpochAhead {
            got: n.epoch,
            trusted: group.epoch,
        });
    }
    let msg = n.to_bytes()?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&group.group_key)
        .map_err(|_| VerifyError::BadGroupKey)?;
    let sig = ed25519_dalek::Signature::from_bytes(&p.signature);
    key.verify_strict(&msg, &sig)
        .map_err(|_| VerifyError::BadSignature)?;
    if n.time > now.saturating_add(MAX_SKEW) {
        return Err(VerifyError::FromTheFuture { time: n.time, now });
    }
    if n.simulated != n.committee.iter().any(|m| m.simulated) {
        return Err(VerifyError::SimulatedFlag);
    }
    if n.simulated && !group.simulated {
        return Err(VerifyError::SimulationRefused);
    }
    let root = commitment_root(&p.commitments);
    if !bool::from(root.ct_eq(&n.commitment_root)) {
        return Err(VerifyError::RootMismatch);
    }
    let mut revealed = BTreeMap::new();
    let mut opened = Vec::new();
    for o in &p.openings {
        let leaf = p
            .commitments
            .iter()
            .find(|c| c.key == o.key && c.at == o.at)
            .ok_or_else(|| VerifyError::NoCommitment(o.key.clone()))?;
        let h = commitment_hash(&o.salt, o.value.as_bytes())
            .ok_or_else(|| VerifyError::OpeningMismatch(o.key.clone()))?;
        if !bool::from(h.ct_eq(&leaf.hash)) {
            return Err(VerifyError::OpeningMismatch(o.key.clone()));
        }
        let value: String = serde_json::from_str(&format!("\"{}\"", o.value))
            .map_err(|_| VerifyError::BadValue(o.key.clone()))?;
        if revealed.insert(o.key.clone(), value).is_some() {
            return Err(VerifyError::DuplicateOpening(o.key.clone()));
        }
        opened.push((o.key.as_str(), o.at));
    }
    let committed = p
        .commitments
        .iter()
        .filter(|c| !opened.contains(&(c.key.as_str(), c.at)))
        .map(|c| c.key.clone())
        .collect();
    let first = n.nullifiers.first();
    Ok(Verified {
        server_name: n.server_name.clone(),
        time: n.time,
        revealed,
        predicates: n
            .predicates
            .iter()
            .map(|p| (p.expr.clone(), p.result))
            .collect(),
        scope: first.map(|x| x.scope.clone()),
        nullifier: first.map(|x| hex::encode(x.value)),
        nullifier_fields: first.map(|x| x.fields.clone()).unwrap_or_default(),
        committed,
        simulated: n.simulated,
        close_notify: n.close_notify,
        epoch: n.epoch,
        group_key_id: n.group_key_id.clone(),
        committee: n.committee.iter().map(|m| m.node_id).collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::encoding::tests::sample;
    use ed25519_dalek::{Signer, SigningKey};

    fn setup() -> (Presentation, TrustedGroup, SigningKey) {
        let sk = SigningKey::from_bytes(&[9u8; 32]);
        let salt = [3u8; SALT];
        let commitments = vec![
            Commitment {
                key: "name".into(),
                at: 40,
                hash: commitment_hash(&salt, br#"Al\"ice"#).unwrap(),
            },
            Commitment {
                key: "nationality".into(),
                at: 70,
                hash: commitment_hash(&[4; SALT], b"US").unwrap(),
            },
        ];
        let mut n = sample();
        n.commitment_root = commitment_root(&commitments);
        let signature = sk.sign(&n.to_bytes().unwrap()).to_bytes();
        let p = Presentation {
            version: VERSION,
            notarization: n,
            signature,
            commitments,
            openings: vec![Opening {
                key: "name".into(),
                at: 40,
                salt,
                value: r#"Al\"ice"#.into(),
            }],
        };
        let g = TrustedGroup {
            group_key: sk.verifying_key().to_bytes(),
            key_id: "0011223344556677".into(),
            epoch: 1,
            simulated: true,
        };
        (p, g, sk)
    }

    #[test]
    fn verifies_and_reports_only_what_was_revealed() {
        let (p, g, _) = setup();
        let v = verify(&p, &[g], 1_763_700_100).unwrap();
        assert_eq!(v.revealed.len(), 1);
        assert_eq!(v.revealed["name"], "Al\"ice");
        assert_eq!(v.committed, vec!["nationality".to_string()]);
        assert!(v.predicates["birthdate<=today-18y"]);
        assert_eq!(
            v.nullifier.as_deref(),
            Some(hex::encode([6u8; 32]).as_str())
        );
        assert!(v.simulated);
    }

    #[test]
    fn each_check_fails_on_its_own() {
        let (p, g, sk) = setup();
        let now = 1_763_700_100;
        let mut q = p.clone();
        q.notarization.received_bytes += 1;
        assert_eq!(
            verify(&q, std::slice::from_ref(&g), now),
            Err(VerifyError::BadSignature)
        );
        let mut q = p.clone();
        q.signature[0] ^= 1;
        assert_eq!(
            verify(&q, std::slice::from_ref(&g), now),
            Err(VerifyError::BadSignature)
        );
        let mut q = p.clone();
        q.openings[0].value = "Bob".into();
        assert!(matches!(
            verify(&q, std::slice::from_ref(&g), now),
            Err(VerifyError::OpeningMismatch(_))
        ));
        let mut q = p.clone();
        q.openings[0].salt[0] ^= 1;
        assert!(matches!(
            verify(&q, std::slice::from_ref(&g), now),
            Err(VerifyError::OpeningMismatch(_))
        ));
        let mut q = p.clone();
        q.commitments.pop();
        assert_eq!(
            verify(&q, std::slice::from_ref(&g), now),
            Err(VerifyError::RootMismatch)
        );
        let mut q = p.clone();
        q.openings[0].at += 1;
        assert!(matches!(
            verify(&q, std::slice::from_ref(&g), now),
            Err(VerifyError::NoCommitment(_))
        ));
        let mut q = p.clone();
        q.openings.push(q.openings[0].clone());
        assert!(matches!(
            verify(&q, std::slice::from_ref(&g), now),
            Err(VerifyError::DuplicateOpening(_))
        ));
        assert!(matches!(
            verify(&p, std::slice::from_ref(&g), 1_763_000_000),
            Err(VerifyError::FromTheFuture { .. })
        ));
        let mut h = g.clone();
        h.key_id = "ff".into();
        assert!(matches!(
            verify(&p, &[h], now),
            Err(VerifyError::UnknownGroup(_))
        ));
        let mut h = g.clone();
        h.epoch = 0;
        assert!(matches!(
            verify(&p, &[h], now),
            Err(VerifyError::EpochAhead { .. })
        ));
        let mut h = g.clone();
        h.simulated = false;
        assert_eq!(verify(&p, &[h], now), Err(VerifyError::SimulationRefused));
        // A contradictory flag, even correctly signed, is refused.
        let mut q = p.clone();
        q.notarization.simulated = false;
        q.signature = sk.sign(&q.notarization.to_bytes().unwrap()).to_bytes();
        assert_eq!(
            verify(&q, std::slice::from_ref(&g), now),
            Err(VerifyError::SimulatedFlag)
        );
        let mut q = p;
        q.version = 2;
        assert_eq!(verify(&q, &[g], now), Err(VerifyError::Version(2)));
    }

    #[test]
    fn json_round_trip_and_unknown_fields_refused() {
        let (p, _, _) = setup();
        let j = p.to_json().unwrap();
        assert_eq!(Presentation::from_json(&j).unwrap(), p);
        let extra = j.replacen('{', "{\"extra\":1,", 1);
        assert!(Presentation::from_json(&extra).is_err());
    }

    #[test]
    fn commitment_matches_its_definition() {
        let salt = [7u8; SALT];
        let mut m = salt.to_vec();
        m.push(3);
        m.extend_from_slice(b"abc");
        m.resize(SALT + 1 + MAX_VALUE, 0);
        let want: [u8; 32] = Sha256::digest(&m).into();
        assert_eq!(commitment_hash(&salt, b"abc"), Some(want));
        assert_eq!(commitment_hash(&salt, &[b'a'; MAX_VALUE + 1]), None);
    }
}
