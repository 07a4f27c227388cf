//! Every message of the network protocol, by conversation. Each conversation is one QUIC
//! bi-stream whose first message says what it is.
//!
//! - Client → coordinator: [`ClientRequest`], answered by [`ClientReply`]s.
//! - Node → coordinator: [`NodeHello`], answered by [`Admission`]; afterwards the node may send
//!   [`NodeNotice`]s on the same stream, and the coordinator opens one stream per
//!   [`Command`], answered by [`NodeReply`]s and followed up by [`FollowUp`]s.
//! - Client → node and node → node: [`StreamHello`] opens a session or key-management stream.
//!
//! Secrets never travel in these messages except the node-to-node key-management payloads,
//! which only cross RA-TLS links between attested nodes.

use notarization::group::{LogEntry, MemberRecord, SignedEntry};
use notarization::Commitment;
use serde::{Deserialize, Serialize};

/// A session's id: 16 random bytes the coordinator picks.
pub type SessionId = [u8; 16];

/// The protocol version every first message carries.
pub const PROTOCOL: u16 = 2;

pub use tessera_common::failure::{Failure, FailureCode};

/// A committee seat: who plays MPC role `role` and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// MPC party index 0–2 (0 and 1 garble, 2 evaluates); for key management, the position.
    pub role: u8,
    /// The node's id.
    pub node_id: u16,
    /// Its QUIC address (`host:port`).
    pub addr: String,
}

/// Client → coordinator, the first message of a stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Start a notarization session.
    Prove {
        /// [`PROTOCOL`].
        protocol: u16,
        /// The group key (hex) the client trusts: a coordinator of another group refuses
        /// before seating anyone.
        group_key: String,
    },
    /// The public record: membership log and node directory.
    Group {
        /// [`PROTOCOL`].
        protocol: u16,
    },
}

/// A node as the coordinator's public directory shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node id.
    pub node_id: u16,
    /// Its QUIC address.
    pub addr: String,
    /// Connected, admitted and not draining.
    pub healthy: bool,
    /// The epoch whose keys it holds (0: not yet a member).
    pub epoch: u64,
    /// `sgx` or `tdx`.
    pub tee: String,
    /// Its attested measurement (hex), as the coordinator verified it.
    pub measurement: String,
    /// Whether its TEE is simulated.
    pub simulated: bool,
}

/// Coordinator → client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ClientReply {
    /// The session's committee: connect to each seat's node.
    Committee {
        /// The session.
        session: SessionId,
        /// The epoch the nodes sign in.
        epoch: u64,
        /// Three seats, roles 0, 1, 2.
        seats: Vec<Seat>,
    },
    /// The signed notarization.
    Signed {
        /// Its canonical encoding.
        notarization: Vec<u8>,
        /// The group's Ed25519 signature (64 bytes).
        signature: Vec<u8>,
        /// The commitment leaves.
        leaves: Vec<Commitment>,
    },
    /// The public record.
    Group {
        /// The membership log, genesis first.
        log: Vec<SignedEntry>,
        /// Every node the coordinator knows.
        nodes: Vec<NodeStatus>,
    },
    /// The session or request failed.
    Failed {
        /// Why.
        reason: Failure,
    },
}

/// Node → coordinator, the first message of the node's control stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeHello {
    /// [`PROTOCOL`].
    pub protocol: u16,
    /// The node's id (must match its RA-TLS certificate).
    pub node_id: u16,
    /// The QUIC address clients and peers should dial.
    pub addr: String,
    /// The epoch of the latest membership entry the node holds (0: it has no keys).
    pub epoch: u64,
}

/// Coordinator → node, the answer to a [`NodeHello`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Admission {
    /// Admitted; the membership log as the coordinator holds it (empty before genesis).
    Welcome {
        /// The log.
        log: Vec<SignedEntry>,
    },
    /// Refused (a failed attestation, a wrong measurement, an id in use).
    Refused {
        /// Why (code [`FailureCode::Refused`]).
        reason: Failure,
    },
}

/// Node → coordinator on the control stream after admission.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NodeNotice {
    /// The node is shutting down: give it no new sessions.
    Draining,
}

/// Coordinator → node, the first message of a command stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    /// Generate the group's keys with these members (FROST DKG and the UID key).
    Genesis {
        /// All members, the receiver included.
        members: Vec<Seat>,
        /// The signing and UID threshold.
        threshold: u16,
    },
    /// Give `newcomer` its key shares; sent to the helpers (exactly t members) and the
    /// newcomer.
    Repair {
        /// The joining node.
        newcomer: Seat,
        /// The helpers.
        helpers: Vec<Seat>,
        /// The newcomer's RA-TLS certificate (DER), which every helper checks itself.
        newcomer_cert: Vec<u8>,
    },
    /// Sign a membership log entry (two rounds: commitment, then [`FollowUp::Package`]).
    SignLog {
        /// The entry.
        entry: LogEntry,
        /// For a join, the newcomer's RA-TLS certificate (DER), checked by every signer.
        newcomer_cert: Option<Vec<u8>>,
    },
    /// Take part in a notarization session.
    Session {
        /// The session.
        session: SessionId,
        /// This node's role.
        role: u8,
        /// All three seats.
        seats: Vec<Seat>,
        /// Give up after this many seconds.
        timeout_secs: u32,
        /// The session's time (unix seconds): every node checks certificates and dates the
        /// notarization with it, so all three agree. Each node refuses a time further than
        /// [`MAX_TIME_SKEW`] from its own clock.
        time: u64,
    },
}

/// How far (seconds) a session's time may be from a node's own clock.
pub const MAX_TIME_SKEW: u64 = 60;

/// Node → coordinator on a command stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NodeReply {
    /// Keys generated or repaired: the group as this node computed it.
    Keyed {
        /// The group key (hex).
        group_key: String,
        /// The threshold.
        threshold: u16,
        /// Every member's verifying share (hex), as this node computed them.
        verifying_shares: Vec<(u16, String)>,
        /// This node's own record.
        member: MemberRecord,
    },
    /// Ready for the session (routes registered).
    Accepted,
    /// A FROST signing commitment (postcard of `threshold::SigningCommitment`).
    Commitment(Vec<u8>),
    /// The session's notarization as this node built it, and its signing commitment.
    Notarized {
        /// The canonical encoding.
        notarization: Vec<u8>,
        /// The commitment leaves.
        leaves: Vec<Commitment>,
        /// The FROST commitment (postcard of `threshold::SigningCommitment`).
        commitment: Vec<u8>,
    },
    /// A FROST signature share (postcard of `threshold::sign::SignatureShare`).
    Share(Vec<u8>),
    /// The node refuses or failed.
    Failed(Failure),
}

/// Coordinator → node, later on a command stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FollowUp {
    /// The FROST signing package (postcard of `threshold::sign::SigningPackage`).
    Package(Vec<u8>),
    /// The aggregated signature over a log entry: the node appends the entry to its log.
    LogSigned(Vec<u8>),
    /// Stop: the session or change failed elsewhere.
    Abort(Failure),
}

/// The first message of a stream opened to a node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StreamHello {
    /// A client joins `session` in `role`.
    Client {
        /// The session.
        session: SessionId,
        /// The seat's role.
        role: u8,
    },
    /// A peer node (role `role`) joins `session`'s mesh.
    Session {
        /// The session.
        session: SessionId,
        /// The sender's role.
        role: u8,
    },
    /// A peer node joins key generation for the group whose first epoch is being made.
    Genesis,
    /// A peer node joins the repair that admits `newcomer`.
    Repair {
        /// The newcomer's id.
        newcomer: u16,
    },
}
