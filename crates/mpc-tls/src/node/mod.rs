//! One notary node's side of an MPC-TLS session. The node never holds a session key, the
//! pre-master secret or any plaintext of the request or response: it holds its ECDH scalar
//! share, its additive share of the pre-master secret, XOR shares of tag masks and GHASH keys
//! (and replicated shares of the GHASH key powers), the request keystream and the opened
//! server write key masked with the client's pads, and ciphertext. The protocol, in order:
//!
//! 1. Commit-then-reveal among the nodes: each node's contribution to the client random and
//!    its ECDH public share (committing first stops a node from choosing its share after
//!    seeing the others', which would let it know the whole key).
//! 2. Every node builds the same ClientHello; the client sends it and relays the server's
//!    bytes (once, to the relay node, which forwards them; the others check them against the
//!    client's running hash). Each node parses the flight, checks the certificate chain and the
//!    ServerKeyExchange signature itself, and compares the flight's hash and its verdict
//!    with the other nodes before going on.
//! 3. ECtF turns the three shares of the ECDH point into additive shares of the pre-master
//!    secret; the handshake execution (garbled before the server answered) derives the keys
//!    as shares, the client Finished and its encryption. GHASH shares give the tag.
//! 4. The server's Finished is decrypted and checked, and its tag verified, in MPC.
//! 5. The request keystream goes to the client masked; the client returns the ciphertext and
//!    receives tag shares.
//! 6. The client relays the response until the server closes; the nodes compare what they
//!    received, compute every record's tag mask (not its keystream), verify every tag, and
//!    only then open the server write key to the client alone (masked) and send the
//!    transcript; the client decrypts the response itself.
//!
//! After step 6 the session is *committed*: the ciphertext of both directions is fixed and
//! every node holds the same transcript. [`run_node_committed`] stops there and hands the
//! caller a [`Committed`] session, whose garbled-circuit session still holds both traffic keys
//! on its wires, so that a later computation over the committed ciphertext (the disclosure)
//! can run on it; [`run_node`] closes the session at once.
//!
//! The protocol itself is [`machine::NodeSession`], a state machine with no I/O and no
//! clock; this module's [`run_node_committed`] is its driver over a [`Transport`] to the
//! other nodes and a [`Link`] to the client.

pub mod machine;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mpc::session::{Session, SessionError};
use mpc::spec::PartyId;
use mpc::transport::Transport;
use mpc::ExecId;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::circuits::BuildError;
use crate::codec::CodecError;
use crate::handshake::ServerError;
use crate::net::{ch, Channel, Link, LinkError};
use crate::proto::{record_digest, Failure, FailureCode, ToClient, ToNode, Transcript};
use crate::server_auth::{CertError, Roots};
use machine::{usage, CtlInbox, NodeEvent, NodeSession, NodeTransmit};
use subtle::ConstantTimeEq;

/// A node's settings for one session.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Roots for the provider's certificate.
    pub roots: Roots,
    /// The time (unix seconds) at which certificates are checked and the transcript dated.
    pub time: u64,
    /// How long to wait for a peer node or the client.
    pub timeout: Duration,
    /// Garble the TLS 1.3 key schedule ahead of the server's answer (the default: a server
    /// that can picks TLS 1.3) instead of TLS 1.2's. Every session offers both versions; if
    /// the server picks the other one, its executions are garbled after the ServerHello (the
    /// session is slower, never wrong).
    pub prepare_tls13: bool,
}

impl NodeConfig {
    /// A session's settings, preparing for TLS 1.3.
    pub fn new(roots: Roots, time: u64, timeout: Duration) -> Self {
        NodeConfig {
            roots,
            time,
            timeout,
            prepare_tls13: true,
        }
    }

    /// The same settings, preparing for `tls13` (see [`NodeConfig::prepare_tls13`]).
    pub fn preparing_tls13(mut self, tls13: bool) -> Self {
        self.prepare_tls13 = tls13;
        self
    }
}

/// Why a node stopped. Messages never include key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The client link failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The multi-party computation aborted (a node deviated, aborted or went silent).
    #[error("MPC failed: {0}")]
    Mpc(#[from] SessionError),
    /// The server sent something malformed, out of order or unsupported, or an alert.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The server's certificate or key exchange was refused.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed")]
    Random,
    /// A record's tag did not verify.
    #[error("the tag of {0} does not verify: the relayed bytes were altered")]
    BadTag(String),
    /// The server's Finished did not match.
    #[error("the server's Finished does not match the handshake")]
    BadFinished,
    /// The nodes disagree about what they saw.
    #[error("the nodes disagree about {0}: the client relayed different bytes to different nodes, or a node deviated")]
    Inconsistent(&'static str),
    /// A peer node stopped.
    #[error("node {node} stopped: {reason}")]
    PeerAborted {
        /// The node.
        node: PartyId,
        /// Its reason.
        reason: Failure,
    },
    /// The client broke the protocol.
    #[error("the client broke the protocol: {0}")]
    Client(String),
    /// A circuit could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Waited too long.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

impl NodeError {
    /// The kind of failure, as it crosses the network. A peer's stop keeps the peer's
    /// code, so a client's mistake is a client failure at every node.
    pub fn code(&self) -> FailureCode {
        match self {
            NodeError::Link(_) | NodeError::Client(_) => FailureCode::Client,
            NodeError::Mpc(_) => FailureCode::Mpc,
            NodeError::Server(_) => FailureCode::Provider,
            NodeError::Cert(_) => FailureCode::Certificate,
            NodeError::Random | NodeError::Build(_) => FailureCode::Node,
            NodeError::BadTag(_) | NodeError::BadFinished | NodeError::Inconsistent(_) => {
                FailureCode::Tampered
            }
            NodeError::PeerAborted { reason, .. } => reason.code,
            NodeError::Timeout(_) => FailureCode::Timeout,
        }
    }

    /// What this node tells the client and its peers.
    pub fn failure(&self) -> Failure {
        Failure::new(self.code(), self.to_string())
    }
}

/// Where a node's time went (wall clock, including waiting for peers).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct NodeTimings {
    /// Garbled-session setup, building and preprocessing the handshake, server Finished and
    /// request executions (before the ClientHello goes out).
    pub prepare: Duration,
    /// ECtF.
    pub ectf: Duration,
    /// The handshake execution.
    pub handshake_exec: Duration,
    /// Both GHASH-power programs.
    pub ghash: Duration,
    /// The server Finished execution.
    pub server_finished_exec: Duration,
    /// The request executions.
    pub request_exec: Duration,
    /// The response executions (building their circuits, garbling, evaluating), including
    /// the tag checks.
    pub response_exec: Duration,
}

impl From<CodecError> for NodeError {
    fn from(e: CodecError) -> Self {
        NodeError::Server(e.into())
    }
}

/// The server did something the protocol does not allow here.
/// The server did something the protocol does not allow here.
fn unexpected(what: impl Into<String>) -> NodeError {
    NodeError::Server(ServerError::Unexpected(what.into()))
}

/// What a node ends with.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// Where the time went.
    pub timings: NodeTimings,
    /// The transcript, as also sent to the client.
    pub transcript: Transcript,
    /// AND gates this node garbled (garblers) or evaluated (evaluator).
    pub and_gates: usize,
    /// Bytes this node sent to and received from the other nodes.
    pub node_bytes_sent: u64,
    /// Bytes this node received.
    pub node_bytes_received: u64,
    /// The client random the nodes chose together: unique to the session.
    pub session_nonce: [u8; 32],
}

/// The nodes' own messages on the control channel ([`ch::CONTROL`]), postcard-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ctl {
    /// A commitment to this node's client-random contribution and ECDH share.
    Commit([u8; 32]),
    /// The opening of the commitment.
    Reveal {
        /// The client-random contribution.
        random: [u8; 32],
        /// The ECDH public share (SEC1, uncompressed).
        point: Vec<u8>,
    },
    /// A hash of what this node saw and whether it accepts it.
    Check {
        /// The hash.
        hash: [u8; 32],
        /// This node's verdict.
        ok: bool,
    },
    /// This node's XOR shares of some tags.
    Tags(Vec<[u8; 16]>),
    /// This node stops, and why.
    Abort(Failure),
}

/// How long a driver should let a failed session's last messages drain: a peer may be the
/// reason, so not long.
fn failure_linger(timeout: Duration) -> Duration {
    timeout.min(Duration::from_secs(2))
}

fn peers(id: PartyId) -> [PartyId; 2] {
    [(id + 1) % 3, (id + 2) % 3]
}

fn commitment(id: PartyId, random: &[u8; 32], point: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera mpc-tls ecdh commitment v1");
    h.update([id]);
    h.update(random);
    h.update(point);
    h.finalize().into()
}

fn cert_chain_hash(certs: &[Vec<u8>]) -> [u8; 32] {
    let mut h = Sha256::new();
    for c in certs {
        h.update(&(c.len() as u32).to_be_bytes()[1..]);
        h.update(c);
    }
    h.finalize().into()
}

/// One record of the committed traffic, as the nodes hold it: its explicit nonce and its
/// ciphertext (no tag), or, for response records past
/// [`KEPT_RESPONSE_BYTES`](crate::proto::KEPT_RESPONSE_BYTES), only the ciphertext's
/// length and digest ([`record_digest`]) until the client sends it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRecord {
    /// The record's explicit nonce (the counter block's middle 8 bytes).
    pub explicit: [u8; 8],
    held: Held,
}

/// What a node holds of a committed record's ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    Whole(Vec<u8>),
    Digest { len: usize, digest: [u8; 32] },
}

/// A client's copy of a committed record that is not the record the nodes committed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the copy of response record {index} is not the committed record")]
pub struct RecordMismatch {
    /// The record's index (0 first).
    pub index: usize,
}

impl CommittedRecord {
    /// A record kept whole.
    pub fn new(explicit: [u8; 8], ciphertext: Vec<u8>) -> Self {
        CommittedRecord {
            explicit,
            held: Held::Whole(ciphertext),
        }
    }

    /// A record of which only the digest is kept.
    pub fn digest_only(explicit: [u8; 8], ciphertext: &[u8]) -> Self {
        CommittedRecord {
            explicit,
            held: Held::Digest {
                len: ciphertext.len(),
                digest: record_digest(&explicit, ciphertext),
            },
        }
    }

    /// The ciphertext's length.
    pub fn ciphertext_len(&self) -> usize {
        match &self.held {
            Held::Whole(c) => c.len(),
            Held::Digest { len, .. } => *len,
        }
    }

    /// The ciphertext, if held.
    pub fn ciphertext(&self) -> Option<&[u8]> {
        match &self.held {
            Held::Whole(c) => Some(c),
            Held::Digest { .. } => None,
        }
    }

    /// Takes a copy of the ciphertext (record `index`) from the client, if it is the one
    /// committed to (compared in constant time with the digest, or with the ciphertext if
    /// it is held).
    pub fn supply(&mut self, index: usize, ciphertext: Vec<u8>) -> Result<(), RecordMismatch> {
        let same = match &self.held {
            Held::Whole(c) => c.len() == ciphertext.len() && bool::from(c.ct_eq(&ciphertext)),
            Held::Digest { len, digest } => {
                *len == ciphertext.len()
                    && bool::from(record_digest(&self.explicit, &ciphertext).ct_eq(digest))
            }
        };
        if !same {
            return Err(RecordMismatch { index });
        }
        self.held = Held::Whole(ciphertext);
        Ok(())
    }
}

/// Runs one node through a whole session: `transport` reaches the other two nodes, `link`
/// the client. On failure the client and the other nodes are told why.
pub async fn run_node<T, R>(
    id: PartyId,
    cfg: NodeConfig,
    transport: T,
    link: Link,
    rng: &mut R,
) -> Result<NodeReport, NodeError>
where
    T: Transport + 'static,
    R: RngCore + CryptoRng + Send,
{
    Ok(run_node_committed(id, cfg, transport, link, rng)
        .await?
        .finish()
        .await)
}

/// The node's end of the client link as the driver holds it: absent until the client
/// arrives (a session can start before), with what the session said to the client meanwhile.
struct ClientSlot {
    link: Option<Link>,
    held: Vec<Vec<u8>>,
}

impl ClientSlot {
    fn send(&mut self, bytes: Vec<u8>) -> Result<(), LinkError> {
        match self.link.as_mut() {
            Some(l) => l.send_bytes(bytes),
            None => {
                self.held.push(bytes);
                Ok(())
            }
        }
    }

    /// The client arrived: what was held goes out first.
    fn arrive(&mut self, mut link: Link) -> Result<(), LinkError> {
        for b in std::mem::take(&mut self.held) {
            link.send_bytes(b)?;
        }
        self.link = Some(link);
        Ok(())
    }

    async fn recv(&mut self) -> Result<Vec<u8>, LinkError> {
        match self.link.as_mut() {
            Some(l) => l.recv_bytes().await,
            None => std::future::pending().await,
        }
    }
}

/// Sends what the session queued; a failed send to a peer is reported to the session.
async fn send_queued<T: Transport, R: RngCore + CryptoRng>(
    s: &mut NodeSession<R>,
    transport: &mut T,
    client: &mut ClientSlot,
) {
    while let Some(t) = s.poll_transmit() {
        match t {
            NodeTransmit::Peer { to, bytes } => {
                if let Err(e) = transport.send(to, bytes).await {
                    s.handle_peer_lost(e, Instant::now());
                }
            }
            NodeTransmit::Client(bytes) => {
                if let Err(e) = client.send(bytes) {
                    s.handle_client_lost(e, Instant::now());
                }
            }
        }
    }
}

/// The output of `f` if it is ready at once (`f` must be cancel-safe: it is dropped if not).
fn ready_now<F: std::future::Future>(f: F) -> Option<F::Output> {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Feeds the session whatever has already arrived, without waiting, before its next unit of
/// heavy work: a unit can be a whole execution's garbling, and an input that moves the
/// protocol on (the client's Start, a peer's commitment) should not wait behind it. Returns
/// whether it fed anything.
fn take_ready<T: Transport, R: RngCore + CryptoRng>(
    s: &mut NodeSession<R>,
    transport: &mut T,
    client: &mut ClientSlot,
) -> bool {
    let mut fed = false;
    while !s.is_over() {
        if let Some(r) = ready_now(transport.recv()) {
            match r {
                Ok((from, bytes)) => s.handle_peer(from, bytes, Instant::now()),
                Err(e) => s.handle_peer_lost(e, Instant::now()),
            }
        } else if let Some(r) = ready_now(client.recv()) {
            match r {
                Ok(bytes) => s.handle_client(&bytes, Instant::now()),
                Err(e) => s.handle_client_lost(e, Instant::now()),
            }
        } else {
            break;
        }
        fed = true;
        // What it queued goes out before more comes in (the relay node queues a forward
        // of every chunk it takes: taking chunks faster than they go out would pile them
        // up here).
        if s.has_transmit() {
            break;
        }
    }
    fed
}

/// Runs one node until the session is committed (the response verified and relayed, the
/// transcript agreed and sent to the client) and returns it still open, with both traffic
/// keys on the wires of its garbled-circuit session, for a computation over the committed
/// ciphertext. On failure the client and the other nodes are told why and the session is
/// closed.
///
/// This is the driver of [`NodeSession`]: it sends what the session queues, gives it its
/// heavy work, and feeds it whichever of a peer's message, a client message or its timeout
/// comes first.
pub async fn run_node_committed<T, R>(
    id: PartyId,
    cfg: NodeConfig,
    transport: T,
    link: Link,
    rng: &mut R,
) -> Result<Committed<T>, NodeError>
where
    T: Transport + 'static,
    R: RngCore + CryptoRng + Send,
{
    run_node_committed_early(id, cfg, transport, async { Ok(link) }, None, rng).await
}

/// [`run_node_committed`] for a session that starts before its client arrives: the nodes
/// garble the handshake's input-independent executions as soon as they are connected to each
/// other, while `link` (the client's arrival) is pending. `preprocessed`, if given, is told
/// once this node's share of that work is done (a pool of sessions ready for clients, or a
/// benchmark of one). The session's timeout runs meanwhile: a client that does not arrive
/// in time ends it.
pub async fn run_node_committed_early<T, R, F>(
    id: PartyId,
    cfg: NodeConfig,
    mut transport: T,
    link: F,
    mut preprocessed: Option<tokio::sync::oneshot::Sender<()>>,
    rng: &mut R,
) -> Result<Committed<T>, NodeError>
where
    T: Transport + 'static,
    R: RngCore + CryptoRng + Send,
    F: std::future::Future<Output = Result<Link, LinkError>>,
{
    let timeout = cfg.timeout;
    let time = cfg.time;
    let mut s = NodeSession::new(id, cfg, rng, Instant::now());
    let mut client = ClientSlot {
        link: None,
        held: Vec::new(),
    };
    let mut arriving = std::pin::pin!(link);
    let mut waiting = true;
    loop {
        loop {
            send_queued(&mut s, &mut transport, &mut client).await;
            if take_ready(&mut s, &mut transport, &mut client) {
                // What it queued goes out before the next work.
                continue;
            }
            if s.poll_work(Instant::now()).is_none() {
                break;
            }
        }
        if preprocessed.is_some() && s.preprocessed() {
            if let Some(tx) = preprocessed.take() {
                let _ = tx.send(());
            }
        }
        match s.poll_event() {
            Some(NodeEvent::Committed) => break,
            Some(NodeEvent::Failed(e)) => {
                send_queued(&mut s, &mut transport, &mut client).await;
                if let Some(link) = client.link.as_mut() {
                    let _ = tokio::time::timeout(timeout, link.close()).await;
                }
                transport.close(failure_linger(timeout)).await;
                return Err(e);
            }
            None => {}
        }
        let deadline = s.poll_timeout().unwrap_or_else(|| Instant::now() + timeout);
        tokio::select! {
            r = transport.recv() => match r {
                Ok((from, bytes)) => s.handle_peer(from, bytes, Instant::now()),
                Err(e) => s.handle_peer_lost(e, Instant::now()),
            },
            r = &mut arriving, if waiting => {
                waiting = false;
                if let Err(e) = r.and_then(|l| client.arrive(l)) {
                    s.handle_client_lost(e, Instant::now());
                }
            },
            r = client.recv() => match r {
                Ok(bytes) => s.handle_client(&bytes, Instant::now()),
                Err(e) => s.handle_client_lost(e, Instant::now()),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                s.handle_timeout(Instant::now())
            }
        }
    }
    let link = client
        .link
        .ok_or_else(|| usage("a session committed without its client"))?;
    let Some(parts) = s.into_committed() else {
        return Err(usage("a committed session could not be taken over"));
    };
    let base = Channel::with_queued(transport, parts.early_peer);
    let gc = Session::new(parts.party, base.channel(ch::GARBLED)).with_timeout(timeout);
    Ok(Committed {
        id,
        time,
        timeout,
        ctl_chan: base.channel(ch::CONTROL),
        base,
        link,
        ctl: parts.ctl,
        client: parts.early_client.into(),
        gc,
        tls_version: parts.tls_version,
        client_key: parts.client_key,
        server_key: parts.server_key,
        request: parts.request,
        response: parts.response,
        disclose: parts.disclose,
        report: parts.report,
    })
}

/// A committed session at one node: the transcript is agreed and sent to the client, and
/// the garbled-circuit session still holds both traffic keys on its wires (never revealed to
/// anyone). What runs on it next must end with [`Committed::finish`] or [`Committed::fail`].
pub struct Committed<T: Transport> {
    id: PartyId,
    time: u64,
    timeout: Duration,
    base: Channel<T>,
    ctl_chan: Channel<T>,
    link: Link,
    /// Control messages from the peers not yet used.
    ctl: CtlInbox,
    /// Client messages that came before the session was handed over.
    client: VecDeque<ToNode>,
    gc: Session<Channel<T>>,
    tls_version: u16,
    client_key: (ExecId, usize),
    server_key: (ExecId, usize),
    request: Vec<CommittedRecord>,
    response: Vec<CommittedRecord>,
    disclose: bool,
    report: NodeReport,
}

impl<T: Transport> std::fmt::Debug for Committed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committed")
            .field("node", &self.id)
            .field("transcript", &self.report.transcript)
            .finish()
    }
}

impl<T: Transport> Committed<T> {
    /// This node's party id in the session.
    pub fn id(&self) -> PartyId {
        self.id
    }
    /// The session's time (unix seconds).
    pub fn time(&self) -> u64 {
        self.time
    }
    /// How long to wait for a peer or the client.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
    /// The session's report so far (transcript, nonce, MPC-TLS timings).
    pub fn report(&self) -> &NodeReport {
        &self.report
    }
    /// Whether the client said at the start that it would ask for a computation after the
    /// response (a disclosure).
    pub fn client_will_disclose(&self) -> bool {
        self.disclose
    }
    /// The garbled-circuit session, to preprocess and execute more executions on it.
    pub fn session(&mut self) -> &mut Session<Channel<T>> {
        &mut self.gc
    }
    /// The negotiated TLS version (0x0303 or 0x0304).
    pub fn tls_version(&self) -> u16 {
        self.tls_version
    }
    /// How the records' nonces are formed under the kept keys: TLS 1.2's explicit nonces
    /// or TLS 1.3's sequence numbers (a record's [`CommittedRecord::explicit`] holds it).
    pub fn nonce_kind(&self) -> crate::circuits::NonceKind {
        if self.tls_version == crate::handshake13::TLS13 {
            crate::circuits::NonceKind::Sequence
        } else {
            crate::circuits::NonceKind::Explicit
        }
    }
    /// Bytes of content type at the end of each committed record's plaintext: 1 in TLS
    /// 1.3 (never padding: the nodes checked), 0 in TLS 1.2.
    fn content_type_bytes(&self) -> usize {
        usize::from(self.tls_version == crate::handshake13::TLS13)
    }
    /// The response records' content lengths, in order (TLS 1.3: each record's plaintext
    /// without its content type byte, which the nodes checked is there, unpadded).
    pub fn response_lens(&self) -> Vec<usize> {
        self.content_lens(&self.response)
    }
    /// The request records' content lengths, as [`Committed::response_lens`].
    pub fn request_lens(&self) -> Vec<usize> {
        self.content_lens(&self.request)
    }
    fn content_lens(&self, records: &[CommittedRecord]) -> Vec<usize> {
        let t = self.content_type_bytes();
        records
            .iter()
            .map(|r| r.ciphertext_len().saturating_sub(t))
            .collect()
    }
    /// Where the server (application) traffic key is kept: (execution, output group). Its
    /// bits are the expanded AES key ([`mpc::circuit::aes::EXPANDED_KEY_BITS`]) then, in
    /// TLS 1.2, the 4-byte implicit nonce ([`crate::circuits::TRAFFIC_KEY_BITS`] in all),
    /// in TLS 1.3 the 12-byte IV ([`crate::circuits13::TRAFFIC_KEY13_BITS`]).
    pub fn server_key(&self) -> (ExecId, usize) {
        self.server_key
    }
    /// Where the client traffic key is kept, as [`Committed::server_key`].
    pub fn client_key(&self) -> (ExecId, usize) {
        self.client_key
    }
    /// The request's application-data records, in order (record i has sequence number and
    /// explicit nonce i + 1).
    pub fn request_records(&self) -> &[CommittedRecord] {
        &self.request
    }
    /// The response's application-data records, in order (alerts left out), as every node
    /// verified them.
    pub fn response_records(&self) -> &[CommittedRecord] {
        &self.response
    }

    /// Takes the client's copies of response records this node kept only the digest of;
    /// a copy that is not the committed record is refused.
    pub fn supply_response(
        &mut self,
        copies: Vec<crate::proto::RecordCopy>,
    ) -> Result<(), RecordMismatch> {
        for c in copies {
            let index = c.index as usize;
            let rec = self
                .response
                .get_mut(index)
                .ok_or(RecordMismatch { index })?;
            rec.supply(index, c.ciphertext)?;
        }
        Ok(())
    }

    /// The next message the client sent after the response ([`ToNode::After`]).
    pub async fn recv_client(&mut self) -> Result<Vec<u8>, NodeError> {
        let m = match self.client.pop_front() {
            Some(m) => m,
            None => tokio::time::timeout(self.timeout, self.link.recv())
                .await
                .map_err(|_| NodeError::Timeout("the client"))??,
        };
        match m {
            ToNode::After(b) => Ok(b),
            _ => Err(NodeError::Client(
                "sent a session message after the response".into(),
            )),
        }
    }

    /// Sends the client a message ([`ToClient::After`]).
    pub fn send_client(&mut self, bytes: Vec<u8>) -> Result<(), NodeError> {
        Ok(self.link.send(&ToClient::After(bytes))?)
    }

    /// Sends `m` to both peers and returns one control message from each.
    async fn exchange(&mut self, m: &Ctl) -> Result<[(PartyId, Ctl); 2], NodeError> {
        let bytes = postcard::to_stdvec(m).map_err(|_| usage("cannot encode a control message"))?;
        for p in peers(self.id) {
            self.ctl_chan
                .send(p, bytes.clone())
                .await
                .map_err(SessionError::from)?;
        }
        loop {
            if let Some(got) = self.ctl.take() {
                return Ok(got);
            }
            let (from, bytes) = tokio::time::timeout(self.timeout, self.ctl_chan.recv())
                .await
                .map_err(|_| NodeError::Timeout("a peer node"))?
                .map_err(SessionError::from)?;
            self.ctl.push(from, &bytes)?;
        }
    }

    /// Exchanges `hash` and this node's verdict with the other nodes: every node must agree
    /// on the hash and be satisfied, or the session stops (naming `what`).
    pub async fn agree(
        &mut self,
        what: &'static str,
        hash: [u8; 32],
        ok: bool,
    ) -> Result<(), NodeError> {
        let got = self.exchange(&Ctl::Check { hash, ok }).await?;
        machine::check_agreed(got, what, &hash)
    }

    /// Ends the session: flushes the client link, lets the peers finish, and returns the
    /// report with the session's final totals (AND gates, bytes).
    pub async fn finish(mut self) -> NodeReport {
        let _ = tokio::time::timeout(self.timeout, self.link.close()).await;
        self.base.close(self.timeout).await;
        self.report_totals()
    }

    /// Ends the session after a failure of what ran on it: tells the client and (unless
    /// `peer_stopped`, the failure being a peer's abort) the other nodes `reason`, then
    /// closes.
    pub async fn fail(mut self, reason: &Failure, peer_stopped: bool) {
        tracing::warn!(role = self.id, reason = reason.code.label(), error = %reason, "session failed after the commit");
        let _ = self.link.send(&ToClient::Error(reason.clone()));
        if !peer_stopped {
            if let Ok(b) = postcard::to_stdvec(&Ctl::Abort(reason.clone())) {
                for p in peers(self.id) {
                    let _ = self.ctl_chan.send(p, b.clone()).await;
                }
            }
        }
        let _ = tokio::time::timeout(self.timeout, self.link.close()).await;
        self.base.close(failure_linger(self.timeout)).await;
    }

    fn report_totals(&self) -> NodeReport {
        let t = self.gc.timings();
        let stats = self.base.stats();
        NodeReport {
            // The report holds the MPC-TLS part's gates; add what ran after the commit.
            and_gates: self.report.and_gates + t.garbled_ands.max(t.evaluated_ands),
            node_bytes_sent: stats.total_sent(),
            node_bytes_received: stats.total_received(),
            ..self.report.clone()
        }
    }
}

#[cfg(test)]
mod record_tests {
    #![allow(clippy::unwrap_used)]
    use super::{CommittedRecord, RecordMismatch};

    #[test]
    fn a_digest_only_record_takes_only_its_own_ciphertext() {
        let ct = vec![7u8; 100];
        let mut r = CommittedRecord::digest_only([0, 0, 0, 0, 0, 0, 0, 9], &ct);
        assert_eq!(r.ciphertext(), None);
        assert_eq!(r.ciphertext_len(), 100);
        let mut other = ct.clone();
        other[99] ^= 1;
        assert_eq!(r.supply(4, other), Err(RecordMismatch { index: 4 }));
        assert_eq!(
            r.supply(4, ct[..99].to_vec()),
            Err(RecordMismatch { index: 4 })
        );
        assert_eq!(r.ciphertext(), None);
        r.supply(4, ct.clone()).unwrap();
        assert_eq!(r.ciphertext(), Some(&ct[..]));
        assert_eq!(
            r,
            CommittedRecord::new([0, 0, 0, 0, 0, 0, 0, 9], ct.clone())
        );
        // A record held whole takes only a copy equal to it.
        let mut other = ct.clone();
        other[0] ^= 1;
        assert_eq!(r.supply(4, other), Err(RecordMismatch { index: 4 }));
        r.supply(4, ct.clone()).unwrap();
        assert_eq!(r.ciphertext(), Some(&ct[..]));
    }
}
