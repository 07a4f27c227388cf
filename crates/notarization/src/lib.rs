//! Tessera notarizations and presentations: what the notary committee signs, what a user
//! hands a relying party, and the offline check of one against trusted group keys.
//!
//! - [`Notarization`]: the signed statement. Its canonical binary encoding
//!   ([`Notarization::to_bytes`]) is what the FROST group signs; a JSON form (serde) is what
//!   travels. The verifier re-encodes the JSON form, so only the canonical bytes matter.
//! - [`Presentation`]: a notarization, its Ed25519 signature, the commitment leaves and the
//!   openings of the targets the user chose to reveal.
//! - [`verify`]: a pure function of the presentation, the trusted groups and the time.
//! - [`group`]: `group.json` and the signed membership log.
//!
//! # What a revealed value means (format version 2)
//!
//! A commitment names a *target* of the HTTP response body: either a canonical JSONPath
//! (`$.user.address.country`, `$.friends[0].name`, `$['odd key']`) or a byte range
//! (`body[START:END]`). A verified opening of target P with value V says: V is the value at
//! JSON path P (or the bytes of range P) of the body of the HTTP response with status S to
//! the request `METHOD TARGET` on host H, from the provider named in the notarization, at
//! its time. The request line, the Host header ([`HttpRequest`]) and the status are part of
//! the signed notarization, so a relying party can tell which resource the value came from
//! and with which status the provider answered (one that needs a success checks it).
//!
//! A path target's value is the raw JSON text of the value exactly as it appeared in the
//! body (a string with its quotes and escapes, a number as written, `true`, `null`, or a
//! whole object or array); a range's value is the range's bytes as text. Commitments pad
//! values to a public *capacity* (a length class, at most [`MAX_CAPACITY`] bytes), so the
//! commitment leaves (signed through the root) show each value's class, not its length.
//!
//! Nothing here holds a secret: salts in openings are revealed on purpose.
#![forbid(unsafe_code)]

mod encoding;
pub mod group;
mod hexser;
mod presentation;

pub use encoding::DecodeError;
pub use presentation::{
    commitment_hash, commitment_root, leaf_hash, verify, Commitment, FormatError, Opening,
    Presentation, TrustedGroup, Verified, VerifyError, MAX_CAPACITY, MAX_SKEW, SALT,
};

use serde::{Deserialize, Serialize};

/// The format version this crate writes and reads.
pub const VERSION: u16 = 2;

/// A predicate and its result, as the committee computed it in the circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredicateResult {
    /// The predicate's canonical text, e.g. `$.user.age>=18`,
    /// `$.user.birthdate<=today-18y` or `$.user.nationality in ["DE","FR","NL"]`.
    pub expr: String,
    /// For a date relative to the session (`today-18y`), the date it stood for.
    pub resolved: Option<String>,
    /// The result.
    pub result: bool,
}

/// A scoped nullifier: HMAC-SHA256 under the threshold UID key of the canonical PII values
/// (each the value at a JSON path of the response body) and the scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullifierClaim {
    /// The relying party's scope.
    pub scope: String,
    /// The fields, in order, as `PATH:KIND`: a canonical JSONPath of the body and the kind
    /// the value was canonicalized as (`$.user.name:text`, `$.user.birthdate:date`).
    pub fields: Vec<String>,
    /// The nullifier.
    #[serde(with = "hexser::h32")]
    pub value: [u8; 32],
}

/// One node of the committee that ran the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitteeMember {
    /// The node's id in the notary set.
    pub node_id: u16,
    /// `sgx` or `tdx`.
    pub tee: String,
    /// Its measurement (MRENCLAVE or MRTD, hex) as its attestation showed.
    pub measurement: String,
    /// Whether its TEE was simulated.
    pub simulated: bool,
}

/// The HTTP request a session's response answers, as the committee decrypted it in the
/// circuit: the request line's method and request target, and the Host header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// The request line's method, e.g. `GET`.
    pub method: String,
    /// The request line's request target, e.g. `/api/me?fields=name`.
    pub target: String,
    /// The Host header's value, e.g. `provider.example`.
    pub host: String,
}

/// What the committee signs about one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notarization {
    /// [`VERSION`].
    pub version: u16,
    /// The provider's name, as checked against its certificate.
    pub server_name: String,
    /// The session's time (unix seconds): certificates were checked at it, `today` is its
    /// UTC date.
    pub time: u64,
    /// TLS version (0x0303 for TLS 1.2).
    pub tls_version: u16,
    /// The negotiated cipher suite.
    pub cipher_suite: u16,
    /// SHA-256 of the provider's certificate chain.
    #[serde(with = "hexser::h32")]
    pub cert_chain_hash: [u8; 32],
    /// SHA-256 of the handshake messages.
    #[serde(with = "hexser::h32")]
    pub handshake_hash: [u8; 32],
    /// SHA-256 of the request records' ciphertext.
    #[serde(with = "hexser::h32")]
    pub sent_hash: [u8; 32],
    /// SHA-256 of the response records' ciphertext.
    #[serde(with = "hexser::h32")]
    pub received_hash: [u8; 32],
    /// Request records.
    pub sent_records: u32,
    /// Request bytes.
    pub sent_bytes: u64,
    /// Response records.
    pub received_records: u32,
    /// Response bytes.
    pub received_bytes: u64,
    /// Whether the provider closed with close_notify (else the response may be truncated).
    pub close_notify: bool,
    /// The request the response answers.
    pub request: HttpRequest,
    /// The response's HTTP status code.
    pub status: u16,
    /// Root over the commitment leaves ([`commitment_root`]).
    #[serde(with = "hexser::h32")]
    pub commitment_root: [u8; 32],
    /// Predicate results.
    pub predicates: Vec<PredicateResult>,
    /// Scoped nullifiers.
    pub nullifiers: Vec<NullifierClaim>,
    /// The session's client random, chosen by the committee: unique per session.
    #[serde(with = "hexser::h32")]
    pub session_nonce: [u8; 32],
    /// The notary set's epoch.
    pub epoch: u64,
    /// The signing group key's id.
    pub group_key_id: String,
    /// The committee.
    pub committee: Vec<CommitteeMember>,
    /// Whether any committee node ran in a simulated TEE.
    pub simulated: bool,
}
