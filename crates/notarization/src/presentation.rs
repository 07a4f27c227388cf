//! Presentations and their offline verification. A presentation carries the signed
//! notarization, every commitment leaf (so the verifier can recompute the root) and the
//! openings of revealed targets; a target that is not opened shows only its name, its
//! capacity and its salted hash.
//!
//! A target is a canonical JSONPath of the HTTP response body (`$.user.name`,
//! `$.friends[0].name`, `$['odd key']`) or a byte range of it (`body[START:END]`). An opening
//! that [`verify`] accepts means: its value is the value at that path (or the bytes of that
//! range) of the body of the HTTP response with the notarization's status to the request
//! `METHOD TARGET` on host `HOST` it records. A path's value is the raw JSON text as the body
//! had it, so [`Verified::revealed`] reports it typed (a number stays a number, a string keeps
//! its escapes until a JSON reader decodes them); a range's value is reported as a JSON
//! string.
//!
//! Commitments pad each value to its leaf's public capacity (a length class): a leaf shows
//! which class a value is in, not its length.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::hexser::{h16, h32, h64};
use crate::{DecodeError, HttpRequest, Notarization, VERSION};

/// Largest commitment capacity (bytes of a committed value).
pub const MAX_CAPACITY: usize = 4096;
/// Bytes of a commitment salt.
pub const SALT: usize = 16;
/// How far in the future a notarization's time may be (clock skew), in seconds.
pub const MAX_SKEW: u64 = 300;

/// The prefix of a byte-range target, `body[START:END]`.
const RANGE_PREFIX: &str = "body[";

/// The commitment the circuit computes to a value: SHA-256(salt ‖ u16 big-endian length ‖
/// value ‖ zeros up to `capacity` bytes). `None` for a value longer than `capacity`, or a
/// capacity of 0 or above [`MAX_CAPACITY`].
pub fn commitment_hash(salt: &[u8; SALT], value: &[u8], capacity: usize) -> Option<[u8; 32]> {
    if capacity == 0 || capacity > MAX_CAPACITY || value.len() > capacity {
        return None;
    }
    let len = u16::try_from(value.len()).ok()?;
    let mut h = Sha256::new();
    h.update(salt);
    h.update(len.to_be_bytes());
    h.update(value);
    h.update([0u8; MAX_CAPACITY].get(..capacity - value.len())?);
    Some(h.finalize().into())
}

/// A commitment leaf: which part of the body (its target), the capacity the value was padded
/// to, and the salted hash of the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commitment {
    /// A canonical JSONPath (`$.user.name`) or a byte range (`body[START:END]`).
    pub target: String,
    /// The length class: the value is zero-padded to this many bytes.
    pub capacity: u32,
    /// [`commitment_hash`] of the value at `capacity`.
    #[serde(with = "h32")]
    pub hash: [u8; 32],
}

/// A leaf's hash: SHA-256(`tessera-leaf-v2` ‖ u16 length of target ‖ target ‖ u32 capacity
/// ‖ hash), integers big-endian.
pub fn leaf_hash(c: &Commitment) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera-leaf-v2");
    h.update((c.target.len() as u16).to_be_bytes());
    h.update(c.target.as_bytes());
    h.update(c.capacity.to_be_bytes());
    h.update(c.hash);
    h.finalize().into()
}

/// The root over the leaves, in order (what the notarization holds):
/// SHA-256(`tessera-root-v2` ‖ u32 count ‖ leaf hashes).
pub fn commitment_root(leaves: &[Commitment]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera-root-v2");
    h.update((leaves.len() as u32).to_be_bytes());
    for l in leaves {
        h.update(leaf_hash(l));
    }
    h.finalize().into()
}

/// A revealed target: the salt and the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    /// The target, as its commitment names it.
    pub target: String,
    /// The salt.
    #[serde(with = "h16")]
    pub salt: [u8; SALT],
    /// For a path, the raw JSON text of the value exactly as the body had it (`"Al\"ice"`
    /// with its quotes and escapes, `-12.50`, `true`, `null`, an object or array); for a
    /// range, the range's bytes as text.
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
    /// The revealed targets.
    pub openings: Vec<Opening>,
}

/// Why text is not a presentation this build reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A presentation (or the notarization in it) of another format version.
    #[error(
        "presentation format version {got} is not supported (this build reads version {VERSION}); make a new proof with this version of tessera"
    )]
    Version {
        /// The version the presentation declares.
        got: u16,
    },
    /// Not JSON, or not the shape of a presentation.
    #[error("not a Tessera presentation: {0}")]
    Json(String),
}

/// The `"version"` member of a JSON object, if it is a number that fits a `u16`.
fn declared_version(v: &serde_json::Value) -> Option<u16> {
    v.get("version")
        .and_then(serde_json::Value::as_u64)
        .and_then(|x| u16::try_from(x).ok())
}

impl Presentation {
    /// The JSON form.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// Reads the JSON form. A presentation of another format version (or holding a
    /// notarization of another version) is refused as [`FormatError::Version`] before the
    /// strict parse, so an old proof gets a clear message rather than a missing field.
    pub fn from_json(s: &str) -> Result<Self, FormatError> {
        let loose: serde_json::Value =
            serde_json::from_str(s).map_err(|e| FormatError::Json(e.to_string()))?;
        let inner = loose.get("notarization");
        for got in [declared_version(&loose), inner.and_then(declared_version)]
            .into_iter()
            .flatten()
        {
            if got != VERSION {
                return Err(FormatError::Version { got });
            }
        }
        serde_json::from_str(s).map_err(|e| FormatError::Json(e.to_string()))
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

/// What a valid presentation proves. Serializes to one JSON object in which each revealed
/// value appears typed, e.g. `"revealed": {"$.user.age": 119, "$.user.name": "Al\"ice",
/// "body[0:5]": "hello"}`.
///
/// `PartialEq` compares revealed values by their JSON text ([`RawValue::get`]).
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// The provider.
    pub server_name: String,
    /// The session's time (unix seconds).
    pub time: u64,
    /// The TLS version: `1.2`, `1.3`, or the code in hex (`0x0302`).
    pub tls_version: String,
    /// The request the response answers.
    pub request: HttpRequest,
    /// The response's HTTP status code.
    pub status: u16,
    /// Revealed targets → their values as JSON: for a path the raw JSON text as it appeared
    /// in the body, for a range a JSON string of its bytes.
    pub revealed: BTreeMap<String, Box<RawValue>>,
    /// Predicates: canonical text → result.
    pub predicates: BTreeMap<String, bool>,
    /// The nullifier's scope, if there is one.
    pub scope: Option<String>,
    /// The nullifier (hex), if there is one.
    pub nullifier: Option<String>,
    /// The PII fields the nullifier covers, as `PATH:KIND`.
    pub nullifier_fields: Vec<String>,
    /// Committed targets that were not revealed.
    pub committed: Vec<String>,
    /// Whether any committee node was simulated.
    pub simulated: bool,
    /// Whether the provider closed with close_notify.
    pub close_notify: bool,
    /// The notary set's epoch.
    pub epoch: u64,
    /// Group key id.
    pub group_key_id: String,
    /// The committee's node ids.
    pub committee: Vec<u16>,
}

impl PartialEq for Verified {
    fn eq(&self, other: &Self) -> bool {
        // Destructured without `..`, so a new field cannot be forgotten here.
        let Verified {
            server_name,
            time,
            tls_version,
            request,
            status,
            revealed,
            predicates,
            scope,
            nullifier,
            nullifier_fields,
            committed,
            simulated,
            close_notify,
            epoch,
            group_key_id,
            committee,
        } = self;
        *server_name == other.server_name
            && *time == other.time
            && *tls_version == other.tls_version
            && *request == other.request
            && *status == other.status
            && revealed.len() == other.revealed.len()
            && revealed
                .iter()
                .zip(&other.revealed)
                .all(|((k, v), (l, w))| k == l && v.get() == w.get())
            && *predicates == other.predicates
            && *scope == other.scope
            && *nullifier == other.nullifier
            && *nullifier_fields == other.nullifier_fields
            && *committed == other.committed
            && *simulated == other.simulated
            && *close_notify == other.close_notify
            && *epoch == other.epoch
            && *group_key_id == other.group_key_id
            && *committee == other.committee
    }
}

impl Eq for Verified {}

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
    /// An opening names a target with no commitment.
    #[error("revealed target {0:?} has no commitment")]
    NoCommitment(String),
    /// An opening does not match its commitment.
    #[error("revealed target {0:?} does not match its commitment")]
    OpeningMismatch(String),
    /// A target is revealed twice.
    #[error("target {0:?} is revealed twice")]
    DuplicateOpening(String),
    /// A revealed path's value is not exactly one JSON value, or a range's value is not as
    /// long as the range.
    #[error("the value revealed at {0:?} is not what its target holds (one JSON value for a path, the range's bytes for body[START:END])")]
    BadValue(String),
    /// A revealed target is neither a JSONPath nor a body range.
    #[error(
        "revealed target {0:?} is neither a JSON path ($…) nor a body range (body[START:END])"
    )]
    BadTarget(String),
}

/// A TLS version code as people write it.
fn tls_version_name(v: u16) -> String {
    match v {
        0x0303 => "1.2".into(),
        0x0304 => "1.3".into(),
        _ => format!("0x{v:04x}"),
    }
}

/// A decimal without sign or leading zeros (other than `0` itself).
fn canonical_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The `(START, END)` of a `body[START:END]` target, `START <= END`.
fn body_range(target: &str) -> Option<(u64, u64)> {
    let (a, b) = target
        .strip_prefix(RANGE_PREFIX)?
        .strip_suffix(']')?
        .split_once(':')?;
    let (a, b) = (canonical_decimal(a)?, canonical_decimal(b)?);
    (a <= b).then_some((a, b))
}

/// An opened value as typed JSON: a path's value must be exactly one JSON value (no
/// surrounding whitespace); a range's value must be as long as the range and becomes a JSON
/// string.
fn typed_value(target: &str, value: &str) -> Result<Box<RawValue>, VerifyError> {
    let bad = || VerifyError::BadValue(target.to_string());
    if target.starts_with('$') {
        let raw: Box<RawValue> = serde_json::from_str(value).map_err(|_| bad())?;
        if raw.get() != value {
            return Err(bad());
        }
        Ok(raw)
    } else if target.starts_with(RANGE_PREFIX) {
        let (start, end) =
            body_range(target).ok_or_else(|| VerifyError::BadTarget(target.to_string()))?;
        if u64::try_from(value.len()).ok() != Some(end - start) {
            return Err(bad());
        }
        serde_json::value::to_raw_value(value).map_err(|_| bad())
    } else {
        Err(VerifyError::BadTarget(target.to_string()))
    }
}

/// Verifies `p` against the trusted groups at unix time `now`: the version, the group, the
/// epoch, the signature, the time, the simulation flag, the commitment root and every
/// opening (its leaf, its hash at the leaf's capacity, its value's form, no target twice).
/// Pure: no I/O, no clock.
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
    for o in &p.openings {
        let leaf = p
            .commitments
            .iter()
            .find(|c| c.target == o.target)
            .ok_or_else(|| VerifyError::NoCommitment(o.target.clone()))?;
        let h = usize::try_from(leaf.capacity)
            .ok()
            .and_then(|cap| commitment_hash(&o.salt, o.value.as_bytes(), cap))
            .ok_or_else(|| VerifyError::OpeningMismatch(o.target.clone()))?;
        if !bool::from(h.ct_eq(&leaf.hash)) {
            return Err(VerifyError::OpeningMismatch(o.target.clone()));
        }
        let value = typed_value(&o.target, &o.value)?;
        if revealed.insert(o.target.clone(), value).is_some() {
            return Err(VerifyError::DuplicateOpening(o.target.clone()));
        }
    }
    let committed = p
        .commitments
        .iter()
        .filter(|c| !revealed.contains_key(&c.target))
        .map(|c| c.target.clone())
        .collect();
    let first = n.nullifiers.first();
    Ok(Verified {
        server_name: n.server_name.clone(),
        time: n.time,
        tls_version: tls_version_name(n.tls_version),
        request: n.request.clone(),
        status: n.status,
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
    use serde_json::json;

    const NOW: u64 = 1_763_700_100;

    /// One committed target: (target, capacity, raw value, salt byte).
    type Leaf = (&'static str, u32, &'static str, u8);

    const LEAVES: &[Leaf] = &[
        ("$.user.name", 64, r#""Al\"ice""#, 3),
        ("$.user.nationality", 64, r#""US""#, 4),
        ("$.user.age", 16, "119", 5),
        ("$.user.verified", 8, "true", 6),
        ("$.user.middle_name", 8, "null", 7),
        ("$.user.balance", 16, "-12.50", 8),
        (
            "$.user.address",
            256,
            r#"{"city": "Berlin", "zip": "10115"}"#,
            9,
        ),
        ("$['odd key']", 16, "[1,2]", 10),
        ("body[0:5]", 5, "hello", 11),
    ];

    fn sign(n: &Notarization, sk: &SigningKey) -> [u8; 64] {
        sk.sign(&n.to_bytes().unwrap()).to_bytes()
    }

    /// A signed presentation committing to `leaves` and opening those named in `open`.
    fn present(leaves: &[Leaf], open: &[&str]) -> (Presentation, TrustedGroup, SigningKey) {
        let sk = SigningKey::from_bytes(&[9u8; 32]);
        let commitments: Vec<Commitment> = leaves
            .iter()
            .map(|&(target, capacity, value, salt)| Commitment {
                target: target.into(),
                capacity,
                hash: commitment_hash(&[salt; SALT], value.as_bytes(), capacity as usize).unwrap(),
            })
            .collect();
        let openings = leaves
            .iter()
            .filter(|l| open.contains(&l.0))
            .map(|&(target, _, value, salt)| Opening {
                target: target.into(),
                salt: [salt; SALT],
                value: value.into(),
            })
            .collect();
        let mut n = sample();
        n.commitment_root = commitment_root(&commitments);
        let p = Presentation {
            version: VERSION,
            signature: sign(&n, &sk),
            notarization: n,
            commitments,
            openings,
        };
        let g = TrustedGroup {
            group_key: sk.verifying_key().to_bytes(),
            key_id: "0011223344556677".into(),
            epoch: 1,
            simulated: true,
        };
        (p, g, sk)
    }

    fn setup() -> (Presentation, TrustedGroup, SigningKey) {
        present(&LEAVES[..2], &["$.user.name"])
    }

    #[test]
    fn verifies_and_reports_only_what_was_revealed() {
        let (p, g, _) = setup();
        let v = verify(&p, &[g], NOW).unwrap();
        assert_eq!(v.revealed.len(), 1);
        assert_eq!(v.revealed["$.user.name"].get(), r#""Al\"ice""#);
        assert_eq!(v.committed, vec!["$.user.nationality".to_string()]);
        assert!(v.predicates["$.user.birthdate<=today-18y"]);
        assert!(!v.predicates[r#"$.user.nationality in ["DE","FR","NL"]"#]);
        assert_eq!(
            v.nullifier.as_deref(),
            Some(hex::encode([6u8; 32]).as_str())
        );
        assert_eq!(
            v.nullifier_fields,
            vec!["$.user.name:text", "$.user.birthdate:date"]
        );
        assert_eq!(v.tls_version, "1.2");
        assert_eq!(
            v.request,
            HttpRequest {
                method: "GET".into(),
                target: "/api/me".into(),
                host: "provider.example".into(),
            }
        );
        assert_eq!(v.status, 200);
        assert!(v.simulated);
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(
            j["request"],
            json!({"method": "GET", "target": "/api/me", "host": "provider.example"})
        );
        assert_eq!(j["status"], json!(200));
        assert_eq!(j["tls_version"], json!("1.2"));
        assert_eq!(j["revealed"], json!({"$.user.name": "Al\"ice"}));
    }

    #[test]
    fn tls_versions_are_named() {
        assert_eq!(tls_version_name(0x0303), "1.2");
        assert_eq!(tls_version_name(0x0304), "1.3");
        assert_eq!(tls_version_name(0x0302), "0x0302");
        assert_eq!(tls_version_name(0xfafa), "0xfafa");
        let (mut p, g, sk) = setup();
        p.notarization.tls_version = 0x0304;
        p.signature = sign(&p.notarization, &sk);
        assert_eq!(verify(&p, &[g], NOW).unwrap().tls_version, "1.3");
    }

    #[test]
    fn revealed_values_are_typed_json() {
        let all: Vec<&str> = LEAVES.iter().map(|l| l.0).collect();
        let (p, g, _) = present(LEAVES, &all);
        let v = verify(&p, &[g], NOW).unwrap();
        assert!(v.committed.is_empty());
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(
            j["revealed"],
            json!({
                "$.user.name": "Al\"ice",
                "$.user.nationality": "US",
                "$.user.age": 119,
                "$.user.verified": true,
                "$.user.middle_name": null,
                "$.user.balance": -12.5,
                "$.user.address": {"city": "Berlin", "zip": "10115"},
                "$['odd key']": [1, 2],
                "body[0:5]": "hello",
            })
        );
        // The JSON text is the body's own, not a re-encoding.
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains(r#""$.user.balance":-12.50"#), "{text}");
        assert!(text.contains(r#""$.user.name":"Al\"ice""#), "{text}");
        assert!(
            text.contains(r#""$.user.address":{"city": "Berlin", "zip": "10115"}"#),
            "{text}"
        );
        assert!(text.contains(r#""body[0:5]":"hello""#), "{text}");
    }

    #[test]
    fn a_range_is_reported_as_a_json_string() {
        let leaves: &[Leaf] = &[("body[10:18]", 8, "a\"b\\c\n\u{e9}", 1)];
        let (p, g, _) = present(leaves, &["body[10:18]"]);
        let v = verify(&p, &[g], NOW).unwrap();
        let raw = &v.revealed["body[10:18]"];
        assert_eq!(raw.get(), r#""a\"b\\c\né""#);
        let back: String = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{e9}");
        // A range whose bytes look like JSON is still text.
        let leaves: &[Leaf] = &[("body[0:3]", 3, "119", 1)];
        let (p, g, _) = present(leaves, &["body[0:3]"]);
        let v = verify(&p, &[g], NOW).unwrap();
        assert_eq!(v.revealed["body[0:3]"].get(), r#""119""#);
    }

    #[test]
    fn a_value_that_is_not_one_json_value_is_refused() {
        for bad in [
            r#""abc"#, "1 2", " 1", "1 ", "", "abc", "{\"a\":1", "[1,]", r#""\q""#,
        ] {
            let leaves: &[Leaf] = &[("$.user.x", 16, bad, 1)];
            let (p, g, _) = present(leaves, &["$.user.x"]);
            assert_eq!(
                verify(&p, &[g], NOW),
                Err(VerifyError::BadValue("$.user.x".into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_range_value_must_fill_its_range_and_targets_must_be_known() {
        for (target, value, want) in [
            (
                "body[0:5]",
                "hell",
                VerifyError::BadValue("body[0:5]".into()),
            ),
            (
                "body[0:5]",
                "hello!",
                VerifyError::BadValue("body[0:5]".into()),
            ),
            ("body[5:1]", "", VerifyError::BadTarget("body[5:1]".into())),
            (
                "body[01:3]",
                "ab",
                VerifyError::BadTarget("body[01:3]".into()),
            ),
            (
                "body[+1:3]",
                "ab",
                VerifyError::BadTarget("body[+1:3]".into()),
            ),
            ("body[1:3", "ab", VerifyError::BadTarget("body[1:3".into())),
            ("body[1]", "a", VerifyError::BadTarget("body[1]".into())),
            (
                "user.name",
                "\"x\"",
                VerifyError::BadTarget("user.name".into()),
            ),
        ] {
            let leaves = [(target, 8, value, 1)];
            let (p, g, _) = present(&leaves, &[target]);
            assert_eq!(verify(&p, &[g], NOW), Err(want), "{target} {value:?}");
        }
        // An empty range holds the empty text.
        let (p, g, _) = present(&[("body[3:3]", 1, "", 1)], &["body[3:3]"]);
        assert_eq!(
            verify(&p, &[g], NOW).unwrap().revealed["body[3:3]"].get(),
            r#""""#
        );
    }

    #[test]
    fn each_check_fails_on_its_own() {
        let (p, g, sk) = setup();
        let now = NOW;
        let gs = std::slice::from_ref(&g);
        assert!(verify(&p, gs, now).is_ok());
        let mut q = p.clone();
        q.notarization.received_bytes += 1;
        assert_eq!(verify(&q, gs, now), Err(VerifyError::BadSignature));
        let mut q = p.clone();
        q.notarization.request.target = "/api/admin".into();
        assert_eq!(verify(&q, gs, now), Err(VerifyError::BadSignature));
        let mut q = p.clone();
        q.notarization.status = 500;
        assert_eq!(verify(&q, gs, now), Err(VerifyError::BadSignature));
        let mut q = p.clone();
        q.signature[0] ^= 1;
        assert_eq!(verify(&q, gs, now), Err(VerifyError::BadSignature));
        let mut q = p.clone();
        q.openings[0].value = r#""Bob""#.into();
        assert_eq!(
            verify(&q, gs, now),
            Err(VerifyError::OpeningMismatch("$.user.name".into()))
        );
        let mut q = p.clone();
        q.openings[0].salt[0] ^= 1;
        assert_eq!(
            verify(&q, gs, now),
            Err(VerifyError::OpeningMismatch("$.user.name".into()))
        );
        // Same salt and value, another capacity: another leaf, so the root breaks; and a
        // re-signed notarization with the other capacity's leaf verifies only at that class.
        let mut q = p.clone();
        q.commitments[0].capacity = 32;
        assert_eq!(verify(&q, gs, now), Err(VerifyError::RootMismatch));
        q.notarization.commitment_root = commitment_root(&q.commitments);
        q.signature = sign(&q.notarization, &sk);
        assert_eq!(
            verify(&q, gs, now),
            Err(VerifyError::OpeningMismatch("$.user.name".into()))
        );
        // A value longer than its leaf's capacity cannot match.
        let mut q = p.clone();
        q.openings[0].value = format!("\"{}\"", "a".repeat(63));
        assert_eq!(
            verify(&q, gs, now),
            Err(VerifyError::OpeningMismatch("$.user.name".into()))
        );
        let mut q = p.clone();
        q.commitments.pop();
        assert_eq!(verify(&q, gs, now), Err(VerifyError::RootMismatch));
        let mut q = p.clone();
        q.commitments.swap(0, 1);
        assert_eq!(verify(&q, gs, now), Err(VerifyError::RootMismatch));
        let mut q = p.clone();
        q.openings[0].target = "$.user.nam".into();
        assert_eq!(
            verify(&q, gs, now),
            Err(VerifyError::NoCommitment("$.user.nam".into()))
        );
        let mut q = p.clone();
        q.openings.push(q.openings[0].clone());
        assert_eq!(
            verify(&q, gs, now),
            Err(VerifyError::DuplicateOpening("$.user.name".into()))
        );
        let (q, h, _) = present(&[("$.user.x", 8, "1 2", 1)], &["$.user.x"]);
        assert_eq!(
            verify(&q, &[h], now),
            Err(VerifyError::BadValue("$.user.x".into()))
        );
        let (q, h, _) = present(&[("user.x", 8, "1", 1)], &["user.x"]);
        assert_eq!(
            verify(&q, &[h], now),
            Err(VerifyError::BadTarget("user.x".into()))
        );
        assert!(matches!(
            verify(&p, gs, 1_763_000_000),
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
        h.group_key = (0u8..=255)
            .map(|b| {
                let mut k = [0u8; 32];
                k[0] = b;
                k
            })
            .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
            .unwrap();
        assert_eq!(verify(&p, &[h], now), Err(VerifyError::BadGroupKey));
        let mut h = g.clone();
        h.simulated = false;
        assert_eq!(verify(&p, &[h], now), Err(VerifyError::SimulationRefused));
        // A contradictory flag, even correctly signed, is refused.
        let mut q = p.clone();
        q.notarization.simulated = false;
        q.signature = sign(&q.notarization, &sk);
        assert_eq!(verify(&q, gs, now), Err(VerifyError::SimulatedFlag));
        let mut q = p.clone();
        q.notarization.server_name = "x".repeat(usize::from(u16::MAX) + 1);
        assert!(matches!(
            verify(&q, gs, now),
            Err(VerifyError::Encoding(DecodeError::TooLong(_)))
        ));
        let mut q = p.clone();
        q.notarization.version = 1;
        assert_eq!(verify(&q, gs, now), Err(VerifyError::Version(1)));
        let mut q = p;
        q.version = 1;
        assert_eq!(verify(&q, &[g], now), Err(VerifyError::Version(1)));
        assert_eq!(
            VerifyError::Version(1).to_string(),
            "presentation version 1 is not supported (this build reads version 2)"
        );
    }

    #[test]
    fn verified_compares_revealed_values_by_their_json_text() {
        let (p, g, _) = setup();
        let a = verify(&p, std::slice::from_ref(&g), NOW).unwrap();
        assert_eq!(a, a.clone());
        let mut b = a.clone();
        b.revealed.insert(
            "$.user.name".into(),
            RawValue::from_string(r#""Bob""#.into()).unwrap(),
        );
        assert_ne!(a, b);
        let mut b = a.clone();
        b.revealed
            .insert("$.other".into(), RawValue::from_string("1".into()).unwrap());
        assert_ne!(a, b);
        let mut b = a.clone();
        b.status = 201;
        assert_ne!(a, b);
    }

    #[test]
    fn json_round_trip_and_unknown_fields_refused() {
        let (p, _, _) = setup();
        let j = p.to_json().unwrap();
        assert_eq!(Presentation::from_json(&j).unwrap(), p);
        let extra = j.replacen('{', "{\"extra\":1,", 1);
        assert!(matches!(
            Presentation::from_json(&extra),
            Err(FormatError::Json(_))
        ));
        let mut v: serde_json::Value = serde_json::from_str(&j).unwrap();
        v["notarization"]["request"]["port"] = json!(443);
        assert!(matches!(
            Presentation::from_json(&v.to_string()),
            Err(FormatError::Json(_))
        ));
        let mut v: serde_json::Value = serde_json::from_str(&j).unwrap();
        v["notarization"].as_object_mut().unwrap().remove("status");
        assert!(matches!(
            Presentation::from_json(&v.to_string()),
            Err(FormatError::Json(_))
        ));
        // A duplicate member is refused, not resolved.
        let dup = j.replacen("\"version\": 2", "\"version\": 2, \"version\": 2", 1);
        assert_ne!(dup, j);
        assert!(matches!(
            Presentation::from_json(&dup),
            Err(FormatError::Json(_))
        ));
        let e = Presentation::from_json("not json").unwrap_err();
        assert!(matches!(e, FormatError::Json(_)));
        assert!(e.to_string().starts_with("not a Tessera presentation: "));
        assert!(matches!(
            Presentation::from_json("[1]"),
            Err(FormatError::Json(_))
        ));
    }

    #[test]
    fn a_version_1_presentation_is_refused_by_its_version() {
        // A presentation as version 1 wrote it: key/at commitments and openings, no request
        // or status.
        let (p, _, _) = setup();
        let mut v = serde_json::to_value(&p).unwrap();
        v["version"] = json!(1);
        v["notarization"]["version"] = json!(1);
        let n = v["notarization"].as_object_mut().unwrap();
        n.remove("request");
        n.remove("status");
        v["commitments"] = json!([{"key": "name", "at": 40, "hash": hex::encode([1u8; 32])}]);
        v["openings"] = json!([{
            "key": "name", "at": 40, "salt": hex::encode([3u8; SALT]), "value": "Alice"
        }]);
        let e = Presentation::from_json(&v.to_string()).unwrap_err();
        assert_eq!(e, FormatError::Version { got: 1 });
        assert_eq!(
            e.to_string(),
            "presentation format version 1 is not supported (this build reads version 2); \
             make a new proof with this version of tessera"
        );
        // Only the outer or only the inner version differing is enough.
        let j = p.to_json().unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&j).unwrap();
        v["notarization"]["version"] = json!(1);
        assert_eq!(
            Presentation::from_json(&v.to_string()),
            Err(FormatError::Version { got: 1 })
        );
        let mut v: serde_json::Value = serde_json::from_str(&j).unwrap();
        v["version"] = json!(3);
        assert_eq!(
            Presentation::from_json(&v.to_string()),
            Err(FormatError::Version { got: 3 })
        );
        // A version that is not a u16 is a format error, not a version.
        let mut v: serde_json::Value = serde_json::from_str(&j).unwrap();
        v["version"] = json!("2");
        assert!(matches!(
            Presentation::from_json(&v.to_string()),
            Err(FormatError::Json(_))
        ));
    }

    #[test]
    fn commitment_matches_its_definition() {
        let salt = [7u8; SALT];
        let mut m = salt.to_vec();
        m.extend_from_slice(&3u16.to_be_bytes());
        m.extend_from_slice(b"abc");
        m.resize(SALT + 2 + 64, 0);
        let want: [u8; 32] = Sha256::digest(&m).into();
        assert_eq!(commitment_hash(&salt, b"abc", 64), Some(want));
        // The capacity is part of the hash: another class, another commitment.
        assert_ne!(commitment_hash(&salt, b"abc", 65), Some(want));
        // The length is too: a value and the same value with a zero byte differ.
        assert_ne!(commitment_hash(&salt, b"abc\0", 64), Some(want));
        // Lengths above 255 are encoded in two bytes.
        let long = vec![b'x'; 300];
        let mut m = salt.to_vec();
        m.extend_from_slice(&[1, 44]);
        m.extend_from_slice(&long);
        m.resize(SALT + 2 + 512, 0);
        let want: [u8; 32] = Sha256::digest(&m).into();
        assert_eq!(commitment_hash(&salt, &long, 512), Some(want));
        // Bounds.
        assert_eq!(commitment_hash(&salt, &[b'a'; 65], 64), None);
        assert_eq!(commitment_hash(&salt, b"", 0), None);
        assert!(commitment_hash(&salt, b"", 1).is_some());
        assert!(commitment_hash(&salt, &[b'a'; MAX_CAPACITY], MAX_CAPACITY).is_some());
        assert_eq!(commitment_hash(&salt, b"a", MAX_CAPACITY + 1), None);
        assert_eq!(
            commitment_hash(&salt, &[b'a'; MAX_CAPACITY + 1], MAX_CAPACITY + 1),
            None
        );
    }

    #[test]
    fn leaf_and_root_match_their_definitions() {
        let c = Commitment {
            target: "$.user.name".into(),
            capacity: 64,
            hash: [0xab; 32],
        };
        let mut m = b"tessera-leaf-v2".to_vec();
        m.extend_from_slice(&11u16.to_be_bytes());
        m.extend_from_slice(b"$.user.name");
        m.extend_from_slice(&64u32.to_be_bytes());
        m.extend_from_slice(&[0xab; 32]);
        let leaf: [u8; 32] = Sha256::digest(&m).into();
        assert_eq!(leaf_hash(&c), leaf);
        let d = Commitment {
            target: "body[0:5]".into(),
            capacity: 5,
            hash: [1; 32],
        };
        let mut m = b"tessera-root-v2".to_vec();
        m.extend_from_slice(&2u32.to_be_bytes());
        m.extend_from_slice(&leaf);
        m.extend_from_slice(&leaf_hash(&d));
        let root: [u8; 32] = Sha256::digest(&m).into();
        assert_eq!(commitment_root(&[c.clone(), d.clone()]), root);
        assert_ne!(commitment_root(&[d, c.clone()]), root);
        let mut e = c.clone();
        e.capacity = 65;
        assert_ne!(leaf_hash(&e), leaf);
        let mut e = c;
        e.target = "$.user.nam".into();
        assert_ne!(leaf_hash(&e), leaf);
    }

    #[test]
    fn commitment_json_form() {
        let c = Commitment {
            target: "body[0:5]".into(),
            capacity: 5,
            hash: [1; 32],
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            json!({"target": "body[0:5]", "capacity": 5, "hash": hex::encode([1u8; 32])})
        );
        let o = Opening {
            target: "$.user.name".into(),
            salt: [2; SALT],
            value: r#""Al\"ice""#.into(),
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(
            v,
            json!({"target": "$.user.name", "salt": hex::encode([2u8; SALT]), "value": "\"Al\\\"ice\""})
        );
    }
}
