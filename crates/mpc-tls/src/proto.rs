//! Messages between the client (the phone) and each node, and the session transcript the
//! nodes agree on. Nothing a node sends carries a key, a key share that the client could
//! combine, or plaintext: keystream reaches the client only masked with the client's own
//! pads, tag values only as XOR shares.

use serde::{Deserialize, Serialize};

use crate::codec::CipherSuite;

/// Most records a request may span (64 × 16 KiB = 1 MiB).
pub const MAX_REQUEST_RECORDS: usize = 64;
/// Most application-data records a response may have (1,024 × 16 KiB = 16 MiB).
pub const MAX_RESPONSE_RECORDS: usize = 1024;
/// How much of the response's application-data ciphertext a node keeps after the commit,
/// from the first record on: whole records while their running total stays within this
/// (room for a head and a body as large as the JSON scan takes). Of every later record a node
/// keeps only its digest ([`record_digest`]); the client keeps those records and sends again
/// the ones a computation after the commit needs ([`RecordCopy`]). So a node's memory does
/// not grow with the response past this.
pub const KEPT_RESPONSE_BYTES: usize = (1 << 20) + (1 << 18);

/// How many leading records a node keeps whole, given the records' ciphertext lengths in
/// order: the longest prefix whose total is at most [`KEPT_RESPONSE_BYTES`].
pub fn kept_records(lens: impl IntoIterator<Item = usize>) -> usize {
    let mut total = 0usize;
    let mut n = 0;
    for len in lens {
        total = total.saturating_add(len);
        if total > KEPT_RESPONSE_BYTES {
            break;
        }
        n += 1;
    }
    n
}

/// Whether a node keeps a response record whole, given the running total of the records'
/// ciphertext bytes with this one's `len` included: while the total is within
/// [`KEPT_RESPONSE_BYTES`], and in TLS 1.3 also a record of at most 3 bytes (it could be the
/// closing alert, whose bytes the nodes read). The nodes and the client apply this one rule,
/// so the client sends again exactly the records a node holds only the digest of.
pub fn keeps_whole(running_total: usize, len: usize, tls13: bool) -> bool {
    running_total <= KEPT_RESPONSE_BYTES || (tls13 && len <= 3)
}

/// A committed record's digest: what a node keeps of a record it does not keep whole, to
/// check the copy a client sends later. Domain-separated SHA-256 over the explicit nonce,
/// the length and the ciphertext.
pub fn record_digest(explicit: &[u8; 8], ciphertext: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"tessera record v1");
    h.update(explicit);
    h.update((ciphertext.len() as u64).to_be_bytes());
    h.update(ciphertext);
    h.finalize().into()
}

/// The response's records as the client holds them after the commit, for a computation
/// that follows: every application-data record's ciphertext length, and the records the
/// nodes keep only the digest of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseRecords {
    /// Each application-data record's content length, in order (TLS 1.3: its ciphertext
    /// without the content type byte).
    pub lens: Vec<usize>,
    /// The records past [`kept_records`], in order.
    pub unkept: Vec<RecordCopy>,
}

impl ResponseRecords {
    /// Copies of the records among `needed` (indexes) that the nodes did not keep.
    pub fn copies(&self, needed: &std::collections::BTreeSet<usize>) -> Vec<RecordCopy> {
        self.unkept
            .iter()
            .filter(|c| needed.contains(&(c.index as usize)))
            .cloned()
            .collect()
    }
}

/// A committed response record sent again by the client, for a node that kept only its
/// digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCopy {
    /// The record's index among the response's application-data records (0 first).
    pub index: u32,
    /// Its ciphertext (no explicit nonce, no tag).
    pub ciphertext: Vec<u8>,
}

/// Packs bits (MSB first) into bytes; the width travels separately.
pub fn pack_bits(bits: &[bool]) -> Vec<u8> {
    mpc::circuit::bits_to_bytes(&{
        let mut b = bits.to_vec();
        b.resize(bits.len().next_multiple_of(8), false);
        b
    })
}

/// Unpacks `width` bits packed by [`pack_bits`]; `None` if the bytes do not fit the width.
pub fn unpack_bits(bytes: &[u8], width: usize) -> Option<Vec<bool>> {
    if bytes.len() != width.div_ceil(8) {
        return None;
    }
    let mut b = mpc::circuit::bytes_to_bits(bytes);
    b.truncate(width);
    Some(b)
}

/// Client → node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToNode {
    /// Opens a session: the provider's name, the byte lengths of the request records (each at
    /// most 16 KiB), and the seed of this node's pad for the request keystream (whole AES
    /// blocks per record, expanded with `mpc::client::pad_from_seed`).
    Start {
        /// The TLS server name (SNI and certificate check).
        server_name: String,
        /// Request record lengths.
        request_records: Vec<u32>,
        /// The seed of this node's pad.
        request_pad_seed: [u8; 32],
        /// Whether the client will ask for a computation on the committed session after the
        /// response (a disclosure), so the nodes keep it open.
        disclose: bool,
    },
    /// Bytes read from the provider's TCP connection, unchanged: sent to the relay node
    /// ([`RELAY_NODE`]) only, which forwards them to the other nodes.
    ServerBytes(Vec<u8>),
    /// The request records' ciphertexts, encrypted by the client with its keystream: sent
    /// to the relay node only, which forwards their encoding to the other nodes.
    RequestCiphertext(Vec<Vec<u8>>),
    /// The provider closed (after close_notify or another alert, or at end of stream): this
    /// node's pad for the server write key opened to the client
    /// ([`crate::circuits::OPENED_KEY_BITS`]).
    Closed {
        /// The connection ended without an alert record.
        eof: bool,
        /// This node's pad, packed.
        response_pad: Vec<u8>,
    },
    /// After the response, for what runs on the committed session (the disclosure): an
    /// opaque message that layer defines and decodes itself.
    After(Vec<u8>),
    /// To every node but the relay node, for each chunk the client sent the relay node
    /// instead (provider bytes, or the request ciphertext's encoding): its length and the
    /// client's running hash after it ([`relay_hash`]). The node checks the chunk the relay
    /// node forwards against it, so a relay node cannot alter what it forwards, and the
    /// client uploads each byte once.
    Relayed {
        /// What the chunk is.
        kind: RelayKind,
        /// The chunk's length.
        len: u32,
        /// The running hash after the chunk.
        hash: [u8; 32],
    },
}

/// What a relayed chunk carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayKind {
    /// Bytes from the provider ([`ToNode::ServerBytes`]).
    ServerBytes,
    /// The encoding of a [`ToNode::RequestCiphertext`]'s records.
    RequestCiphertext,
}

/// The node the client sends the provider's bytes to; it forwards them to the others.
pub const RELAY_NODE: mpc::spec::PartyId = 0;

/// The running hash over the provider's bytes as the client relays them: `prev` is the
/// hash before `chunk` (all zeros before the first).
pub fn relay_hash(prev: &[u8; 32], chunk: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"tessera relay v1");
    h.update(prev);
    h.update((chunk.len() as u64).to_be_bytes());
    h.update(chunk);
    h.finalize().into()
}

/// Node → client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToClient {
    /// The ClientHello handshake message to send (the client wraps it in a record).
    ClientHello(OneCopy<Vec<u8>>),
    /// The client's second flight: its handshake messages before ChangeCipherSpec (an
    /// empty Certificate if the server asked for one, then ClientKeyExchange), then the
    /// encrypted Finished, whose tag the client assembles from the three shares.
    ClientFinished {
        /// The handshake messages before ChangeCipherSpec (one record), then the Finished
        /// ciphertext (16 bytes, explicit nonce 0).
        flight: OneCopy<(Vec<u8>, Vec<u8>)>,
        /// This node's XOR share of the tag.
        tag_share: [u8; 16],
    },
    /// TLS 1.3: the client's encrypted flight, computed in the clear by every node from
    /// the client handshake traffic secret, and how many of the provider's encrypted
    /// records its flight took (the client cannot tell them from what follows).
    ClientFinished13(OneCopy<Finished13>),
    /// The request keystream masked with the client's pads, packed.
    RequestKeystream(OneCopy<Vec<u8>>),
    /// TLS 1.3: the provider sent an alert (a record's content type, hidden inside it, was
    /// revealed to the nodes): nothing more comes, the client stops reading and reports the
    /// close once every node said so.
    ServerClosing,
    /// This node's XOR shares of the request records' tags.
    RequestTags(Vec<[u8; 16]>),
    /// Every record committed and its tag verified: the server write key and implicit
    /// nonce ([`crate::circuits::OPENED_KEY_BITS`]) masked with the client's pads, packed,
    /// and the transcript.
    Response {
        /// The masked key.
        masked_key: OneCopy<Vec<u8>>,
        /// What the nodes saw.
        transcript: OneCopy<Transcript>,
    },
    /// After the response, from what runs on the committed session (the disclosure): an
    /// opaque message that layer defines and decodes itself.
    After(Vec<u8>),
    /// The node stopped; why.
    Error(Failure),
}

pub use tessera_common::failure::{Failure, FailureCode};

/// The client's TLS 1.3 flight as the nodes send it ([`ToClient::ClientFinished13`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished13 {
    /// How many encrypted records the provider's flight took (EncryptedExtensions to
    /// Finished): the records after them are the response.
    pub server_records: u32,
    /// The protected record(s) to send: an empty Certificate if the server asked for one,
    /// then the Finished, as handshake record 0 under the client handshake traffic key.
    pub records: Vec<u8>,
}

/// A value every honest node computes identically (a ClientHello, a masked output, the
/// transcript), sent whole by [`RELAY_NODE`] and as a digest by the other two, so the client
/// downloads it once. The client accepts it only if the other nodes' digests match the whole
/// value: a node that sends another value, whole or digested, is caught as before, when every
/// node sent the value whole (a node would have to find a SHA-256 second preimage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OneCopy<T> {
    /// The value.
    Whole(T),
    /// [`OneCopy::digest`] of the value.
    Digest([u8; 32]),
}

impl<T: Serialize> OneCopy<T> {
    /// What node `node` sends of `v`.
    pub fn from_node(node: mpc::spec::PartyId, v: T) -> Self {
        if node == RELAY_NODE {
            OneCopy::Whole(v)
        } else {
            OneCopy::Digest(Self::digest(&v))
        }
    }

    /// SHA-256 over a label and the value's encoding.
    pub fn digest(v: &T) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"tessera mpc-tls one copy v1");
        // A value that cannot be encoded hashes as empty: the whole copy of it could not
        // have been sent either, so no digest of it is ever compared.
        h.update(postcard::to_stdvec(v).unwrap_or_default());
        h.finalize().into()
    }

    /// The value, if all three copies (one whole, two digests, in any order; or several
    /// whole copies) agree.
    pub fn agree(copies: [OneCopy<T>; 3]) -> Option<T>
    where
        T: PartialEq,
    {
        let mut whole: Option<T> = None;
        let mut digests = Vec::new();
        for c in copies {
            match c {
                OneCopy::Whole(v) => match &whole {
                    Some(w) if *w != v => return None,
                    Some(_) => {}
                    None => whole = Some(v),
                },
                OneCopy::Digest(d) => digests.push(d),
            }
        }
        let whole = whole?;
        let d = Self::digest(&whole);
        digests.iter().all(|x| *x == d).then_some(whole)
    }
}

/// What the nodes saw of one session, identical at every node (the notarization signs it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// The provider's name, as checked against its certificate.
    pub server_name: String,
    /// The session's time (unix seconds) at which the certificate was checked.
    pub time: u64,
    /// The negotiated TLS version (0x0303 for TLS 1.2, 0x0304 for TLS 1.3).
    pub tls_version: u16,
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// SHA-256 over the certificate chain (each DER certificate with a 3-byte length, end
    /// entity first, as in the Certificate message).
    pub cert_chain_hash: [u8; 32],
    /// SHA-256 over every handshake message, both Finished messages included.
    pub handshake_hash: [u8; 32],
    /// SHA-256 over the request records (8-byte explicit nonce, 2-byte length, ciphertext).
    pub sent_hash: [u8; 32],
    /// SHA-256 over the response records, the same way: in TLS 1.2 its application-data
    /// records; in TLS 1.3 every record after the handshake (whose content type is inside
    /// the ciphertext), post-handshake messages and the closing alert included, with the
    /// sequence number where TLS 1.2 has the explicit nonce.
    pub received_hash: [u8; 32],
    /// Request records and bytes.
    pub sent_records: u32,
    /// Request plaintext bytes.
    pub sent_bytes: u64,
    /// Response application-data records.
    pub received_records: u32,
    /// Response plaintext bytes (application data only).
    pub received_bytes: u64,
    /// Whether the provider ended with close_notify (else the response may be truncated).
    pub close_notify: bool,
}

/// Hashes a record for [`Transcript::sent_hash`] / [`Transcript::received_hash`].
pub fn hash_record(h: &mut sha2::Sha256, explicit: &[u8; 8], ciphertext: &[u8]) {
    use sha2::Digest;
    h.update(explicit);
    h.update((ciphertext.len() as u16).to_be_bytes());
    h.update(ciphertext);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bits_roundtrip() {
        for n in [0, 1, 7, 8, 9, 100] {
            let bits: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
            assert_eq!(unpack_bits(&pack_bits(&bits), n).unwrap(), bits);
        }
        assert!(unpack_bits(&[0, 0], 7).is_none());
    }

    #[test]
    fn nodes_keep_the_longest_prefix_within_the_budget() {
        const R: usize = 16 * 1024;
        assert_eq!(kept_records([]), 0);
        assert_eq!(kept_records([R; 10]), 10);
        // 1.25 MiB holds exactly 80 full records; the 81st is past it.
        assert_eq!(kept_records([R; 200]), KEPT_RESPONSE_BYTES / R);
        assert_eq!(kept_records([KEPT_RESPONSE_BYTES, 1]), 1);
        assert_eq!(kept_records([KEPT_RESPONSE_BYTES + 1, 1]), 0);
        // A prefix: a short record after the first one past the budget is not kept.
        assert_eq!(kept_records([KEPT_RESPONSE_BYTES - 1, 2, 1]), 1);
        assert_eq!(kept_records([usize::MAX, 1]), 0);
    }

    #[test]
    fn a_record_digest_binds_nonce_length_and_bytes() {
        let d = record_digest(&[1; 8], b"abc");
        assert_ne!(d, record_digest(&[2; 8], b"abc"));
        assert_ne!(d, record_digest(&[1; 8], b"abd"));
        assert_ne!(d, record_digest(&[1; 8], b"ab"));
        assert_eq!(d, record_digest(&[1; 8], b"abc"));
    }
}

#[cfg(test)]
mod one_copy_tests {
    use super::OneCopy;

    fn copies(v: &[u8]) -> [OneCopy<Vec<u8>>; 3] {
        [0, 1, 2].map(|n| OneCopy::from_node(n, v.to_vec()))
    }

    #[test]
    fn one_whole_copy_and_two_matching_digests_agree() {
        let c = copies(b"masked");
        assert!(matches!(c[0], OneCopy::Whole(_)));
        assert!(matches!(c[1], OneCopy::Digest(_)) && matches!(c[2], OneCopy::Digest(_)));
        assert_eq!(OneCopy::agree(c), Some(b"masked".to_vec()));
        // Every copy whole (as before digests) agrees too, in any order.
        let all = [0, 1, 2].map(|_| OneCopy::Whole(b"v".to_vec()));
        assert_eq!(OneCopy::agree(all), Some(b"v".to_vec()));
    }

    #[test]
    fn any_copy_that_differs_is_refused() {
        let [a, b, c] = copies(b"masked");
        // Another whole value against the honest digests.
        assert_eq!(
            OneCopy::agree([OneCopy::Whole(b"other".to_vec()), b.clone(), c.clone()]),
            None
        );
        // A digest of another value.
        let [_, x, _] = copies(b"other");
        assert_eq!(OneCopy::agree([a.clone(), x, c.clone()]), None);
        // No whole copy at all.
        assert_eq!(OneCopy::agree([b.clone(), b.clone(), c]), None);
        // Two whole copies that differ.
        assert_eq!(
            OneCopy::agree([a, OneCopy::Whole(b"other".to_vec()), b]),
            None
        );
    }
}
