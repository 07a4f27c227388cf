//! One notary node's side of an MPC-TLS session. The node never holds a session key, the
//! pre-master secret or any plaintext of the request or response: it holds its ECDH scalar
//! share, its additive share of the pre-master secret, XOR shares of tag masks and GHASH keys
//! (and replicated shares of the GHASH key powers), keystream masked with the client's pads,
//! and ciphertext. The protocol, in order:
//!
//! 1. Commit-then-reveal among the nodes: each node's contribution to the client random and
//!    its ECDH public share (committing first stops a node from choosing its share after
//!    seeing the others', which would let it know the whole key).
//! 2. Every node builds the same ClientHello; the client sends it and relays the server's
//!    bytes. Each node parses the flight, checks the certificate chain and the
//!    ServerKeyExchange signature itself, and compares the flight's hash and its verdict
//!    with the other nodes before going on.
//! 3. ECtF turns the three shares of the ECDH point into additive shares of the pre-master
//!    secret; the handshake execution (garbled before the server answered) derives the keys
//!    as shares, the client Finished and its encryption. GHASH shares give the tag.
//! 4. The server's Finished is decrypted and checked, and its tag verified, in MPC.
//! 5. The request keystream goes to the client masked; the client returns the ciphertext and
//!    receives tag shares.
//! 6. The client relays the response until the server closes; the nodes compare what they
//!    received, compute every record's tag mask and keystream, verify every tag, and only
//!    then release the (masked) keystream and the transcript.
//!
//! After step 6 the session is *committed*: the ciphertext of both directions is fixed and
//! every node holds the same transcript. [`run_node_committed`] stops there and hands the
//! caller a [`Committed`] session, whose garbled-circuit session still holds both traffic keys
//! on its wires, so that a later computation over the committed ciphertext (the disclosure)
//! can run on it; [`run_node`] closes the session at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mpc::circuit::{bits_to_bytes, bytes_to_bits};
use mpc::convert::fp_to_bits;
use mpc::ectf::ectf_machine;
use mpc::ghash::{gcm_blocks, GhashKey, GhashPowers, MAX_POWERS};
use mpc::rss::Machine;
use mpc::session::{run_arith, Session, SessionError};
use mpc::spec::PartyId;
use mpc::transport::Transport;
use mpc::{ExecId, GroupOutput, Inputs, Party};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::elliptic_curve::Field as _;
use p256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::circuits::{
    batch_blocks, ctr_spec, handshake_spec, hs_out, plan_batches, server_finished_spec,
    suffix_bytes, BuildError, CtrRecord,
};
use crate::codec::{
    self, blocks_for, gcm_aad, split_gcm, Alert, CodecError, ContentType, MAX_FRAGMENT,
};
use crate::handshake::{Flight, ServerError, ServerFlight};
use crate::net::{ch, Channel, Link, LinkError};
use crate::proto::{
    hash_record, pack_bits, unpack_bits, Stop, StopCode, ToClient, ToNode, Transcript,
    MAX_REQUEST_RECORDS, MAX_RESPONSE_RECORDS,
};
use crate::server_auth::{verify_server, CertError, Roots};
use crate::stream::{ServerEvent, ServerStream};

/// A node's settings for one session.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Roots for the provider's certificate.
    pub roots: Roots,
    /// The time (unix seconds) at which certificates are checked and the transcript dated.
    pub time: u64,
    /// How long to wait for a peer node or the client.
    pub timeout: Duration,
    /// Deliberate deviations, for adversarial tests; all off by default. Only builds with
    /// the `faults` feature (the tests') have this field: a production node cannot be
    /// configured to deviate.
    #[cfg(feature = "faults")]
    pub faults: Faults,
}

impl NodeConfig {
    /// A session's settings with no deviation.
    pub fn new(roots: Roots, time: u64, timeout: Duration) -> Self {
        NodeConfig {
            roots,
            time,
            timeout,
            #[cfg(feature = "faults")]
            faults: Faults::default(),
        }
    }

    /// The deviations this node is told to make: none without the `faults` feature.
    fn faults(&self) -> Faults {
        #[cfg(feature = "faults")]
        return self.faults;
        #[cfg(not(feature = "faults"))]
        return Faults::default();
    }
}

/// Ways a node can be told to deviate from the protocol, so tests can check that every
/// deviation ends in an abort at the honest parties rather than in a wrong result. All off
/// by default; nothing but tests sets them, and only builds with the `faults` feature can.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Flip a bit of this node's XOR share of every tag it opens with the other nodes.
    pub bad_tag_share: bool,
    /// Feed the handshake's public input (parties 0 and 1 only) with one bit flipped.
    pub bad_public_input: bool,
    /// Send the client a request keystream with one bit flipped.
    pub bad_masked_keystream: bool,
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
        reason: Stop,
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
    pub fn code(&self) -> StopCode {
        match self {
            NodeError::Link(_) | NodeError::Client(_) => StopCode::Client,
            NodeError::Mpc(_) => StopCode::Mpc,
            NodeError::Server(_) => StopCode::Provider,
            NodeError::Cert(_) => StopCode::Certificate,
            NodeError::Random | NodeError::Build(_) => StopCode::Internal,
            NodeError::BadTag(_) | NodeError::BadFinished | NodeError::Inconsistent(_) => {
                StopCode::Tampered
            }
            NodeError::PeerAborted { reason, .. } => reason.code,
            NodeError::Timeout(_) => StopCode::Timeout,
        }
    }

    /// What this node tells the client and its peers.
    pub fn stop(&self) -> Stop {
        Stop::new(self.code(), self.to_string())
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
    /// Building the response circuits.
    pub response_build: Duration,
    /// The response executions, including tag checks.
    pub response_exec: Duration,
}

impl From<CodecError> for NodeError {
    fn from(e: CodecError) -> Self {
        NodeError::Server(e.into())
    }
}

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

/// The nodes' own messages on the control channel.
#[derive(Debug, Serialize, Deserialize)]
enum Ctl {
    Commit([u8; 32]),
    Reveal { random: [u8; 32], point: Vec<u8> },
    Check { hash: [u8; 32], ok: bool },
    Tags(Vec<[u8; 16]>),
    Abort(Stop),
}

struct Ctx<T: Transport> {
    id: PartyId,
    cfg: NodeConfig,
    base: Channel<T>,
    ctl: Channel<T>,
    link: Link,
    stream: ServerStream,
    /// Control messages a peer sent for the next step before this node finished the current
    /// one (it had all it needed for the current step and went on). At most one per peer.
    early: Vec<(PartyId, Ctl)>,
}

fn peers(id: PartyId) -> [PartyId; 2] {
    [(id + 1) % 3, (id + 2) % 3]
}

impl<T: Transport> Ctx<T> {
    async fn exchange(&mut self, m: &Ctl) -> Result<BTreeMap<PartyId, Ctl>, NodeError> {
        let bytes =
            postcard::to_stdvec(m).map_err(|_| mpc_usage("cannot encode a control message"))?;
        for p in peers(self.id) {
            self.ctl
                .send(p, bytes.clone())
                .await
                .map_err(SessionError::from)?;
        }
        let mut got = BTreeMap::new();
        for (from, m) in std::mem::take(&mut self.early) {
            got.insert(from, m);
        }
        while got.len() < 2 {
            let (from, b) = tokio::time::timeout(self.cfg.timeout, self.ctl.recv())
                .await
                .map_err(|_| NodeError::Timeout("a peer node"))?
                .map_err(SessionError::from)?;
            let m: Ctl = postcard::from_bytes(&b).map_err(|_| NodeError::PeerAborted {
                node: from,
                reason: Stop::new(StopCode::Mpc, "undecodable control message"),
            })?;
            if let Ctl::Abort(reason) = m {
                return Err(NodeError::PeerAborted { node: from, reason });
            }
            match got.entry(from) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(m);
                }
                // A peer cannot be two steps ahead: it needs this node's message for each.
                _ if self.early.iter().any(|(p, _)| *p == from) => {
                    return Err(NodeError::PeerAborted {
                        node: from,
                        reason: Stop::new(StopCode::Mpc, "control messages for two steps ahead"),
                    });
                }
                _ => self.early.push((from, m)),
            }
        }
        Ok(got)
    }

    /// Exchanges a hash and this node's verdict (`ok`); every node must agree on the hash
    /// and be satisfied.
    async fn agree(
        &mut self,
        what: &'static str,
        hash: [u8; 32],
        ok: bool,
    ) -> Result<(), NodeError> {
        let got = self.exchange(&Ctl::Check { hash, ok }).await?;
        for (node, m) in got {
            match m {
                Ctl::Check { hash: h, ok } => {
                    if !bool::from(h.ct_eq(&hash)) {
                        return Err(NodeError::Inconsistent(what));
                    }
                    if !ok {
                        return Err(NodeError::PeerAborted {
                            node,
                            reason: Stop::new(StopCode::Tampered, format!("refused {what}")),
                        });
                    }
                }
                _ => return Err(NodeError::Inconsistent(what)),
            }
        }
        Ok(())
    }

    /// Sums the three nodes' XOR shares of some tags.
    async fn open_tags(&mut self, mut mine: Vec<[u8; 16]>) -> Result<Vec<[u8; 16]>, NodeError> {
        if self.cfg.faults().bad_tag_share {
            mine.iter_mut().for_each(|t| t[0] ^= 1);
        }
        let got = self.exchange(&Ctl::Tags(mine.clone())).await?;
        let mut sum = mine;
        for (node, m) in got {
            let Ctl::Tags(t) = m else {
                return Err(NodeError::Inconsistent("tag shares"));
            };
            if t.len() != sum.len() {
                return Err(NodeError::PeerAborted {
                    node,
                    reason: Stop::new(StopCode::Mpc, "wrong number of tag shares"),
                });
            }
            for (a, b) in sum.iter_mut().zip(t) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x ^= y;
                }
            }
        }
        Ok(sum)
    }

    async fn recv_client(&mut self) -> Result<ToNode, NodeError> {
        tokio::time::timeout(self.cfg.timeout, self.link.recv())
            .await
            .map_err(|_| NodeError::Timeout("the client"))?
            .map_err(NodeError::from)
    }

    /// The next server event, reading relayed bytes as needed. `Ok(None)` when the client
    /// reports the connection closed (with its pads, returned to the caller through `closed`).
    async fn next_event(
        &mut self,
        closed: &mut Option<(bool, Vec<u8>)>,
    ) -> Result<Option<ServerEvent>, NodeError> {
        loop {
            if let Some(e) = self.stream.next_event()? {
                return Ok(Some(e));
            }
            if closed.is_some() {
                return Ok(None);
            }
            match self.recv_client().await? {
                ToNode::ServerBytes(b) => self.stream.push(&b),
                ToNode::Closed { eof, response_pad } => *closed = Some((eof, response_pad)),
                other => {
                    return Err(NodeError::Client(format!(
                        "sent {} while server bytes were expected",
                        kind(&other)
                    )))
                }
            }
        }
    }
}

fn kind(m: &ToNode) -> &'static str {
    match m {
        ToNode::Start { .. } => "Start",
        ToNode::ServerBytes(_) => "ServerBytes",
        ToNode::RequestCiphertext(_) => "RequestCiphertext",
        ToNode::Closed { .. } => "Closed",
        ToNode::After(_) => "an after-close message",
    }
}

/// An event for an error message; `None` is the end of the connection.
fn describe(e: &Option<ServerEvent>) -> String {
    match e {
        Some(e) => format!("{e:?}"),
        None => "the end of the connection".into(),
    }
}

fn commitment(id: PartyId, random: &[u8; 32], point: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera mpc-tls ecdh commitment v1");
    h.update([id]);
    h.update(random);
    h.update(point);
    h.finalize().into()
}

fn xor16(a: &[u8; 16], b: &[u8]) -> [u8; 16] {
    let mut o = *a;
    for (x, y) in o.iter_mut().zip(b) {
        *x ^= y;
    }
    o
}

fn value(out: &[GroupOutput], g: usize) -> Result<&[bool], NodeError> {
    match out.get(g) {
        Some(GroupOutput::Value(v) | GroupOutput::Share(v) | GroupOutput::Masked(v)) => Ok(v),
        _ => Err(NodeError::Mpc(SessionError::Protocol(mpc::Error::Usage(
            format!("output group {g} missing"),
        )))),
    }
}

fn block(bits: &[bool]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bits_to_bytes(&bits[..128]));
    b
}

fn mpc_usage(e: impl std::fmt::Display) -> NodeError {
    NodeError::Mpc(SessionError::Protocol(mpc::Error::Usage(e.to_string())))
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

/// Runs one node until the session is committed (the response verified and relayed, the
/// transcript agreed and sent to the client) and returns it still open, with both traffic
/// keys on the wires of its garbled-circuit session, for a computation over the committed
/// ciphertext. On failure the client and the other nodes are told why and the session is
/// closed.
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
    let base = Channel::new(transport);
    let mut cx = Ctx {
        id,
        cfg,
        ctl: base.channel(ch::CONTROL),
        base,
        link,
        stream: ServerStream::new(),
        early: Vec::new(),
    };
    match session(&mut cx, rng).await {
        Ok(open) => Ok(Committed { cx, open }),
        Err(e) => {
            tell_failure(
                &mut cx,
                &e.stop(),
                matches!(e, NodeError::PeerAborted { .. }),
            )
            .await;
            close(&mut cx, false).await;
            Err(e)
        }
    }
}

/// Tells the client, and (unless a peer stopped first) the other nodes, why this node stops.
async fn tell_failure<T: Transport>(cx: &mut Ctx<T>, reason: &Stop, peer_stopped: bool) {
    tracing::warn!(role = cx.id, reason = reason.code.label(), error = %reason, "MPC-TLS session failed");
    let _ = cx.link.send(&ToClient::Error(reason.clone()));
    if !peer_stopped {
        if let Ok(b) = postcard::to_stdvec(&Ctl::Abort(reason.clone())) {
            for p in peers(cx.id) {
                let _ = cx.ctl.send(p, b.clone()).await;
            }
        }
    }
}

/// Flushes and closes the client link and the peer transport. After a failure it waits only
/// briefly for peers (one of them may be the reason).
async fn close<T: Transport>(cx: &mut Ctx<T>, ok: bool) {
    let _ = tokio::time::timeout(cx.cfg.timeout, cx.link.close()).await;
    let linger = if ok {
        cx.cfg.timeout
    } else {
        cx.cfg.timeout.min(Duration::from_secs(2))
    };
    cx.base.close(linger).await;
}

/// One record of the committed traffic, as the nodes hold it: its explicit nonce and its
/// ciphertext (no tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRecord {
    /// The record's explicit nonce (the counter block's middle 8 bytes).
    pub explicit: [u8; 8],
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

/// What the session keeps once committed.
struct Open<T: Transport> {
    gc: Session<Channel<T>>,
    e_hs: ExecId,
    request: Vec<CommittedRecord>,
    response: Vec<CommittedRecord>,
    disclose: bool,
    report: NodeReport,
}

/// A committed session at one node: the transcript is agreed and sent to the client, and
/// the garbled-circuit session still holds both traffic keys on its wires (never revealed to
/// anyone). What runs on it next must end with [`Committed::finish`] or [`Committed::fail`].
pub struct Committed<T: Transport> {
    cx: Ctx<T>,
    open: Open<T>,
}

impl<T: Transport> std::fmt::Debug for Committed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committed")
            .field("node", &self.cx.id)
            .field("transcript", &self.open.report.transcript)
            .finish()
    }
}

impl<T: Transport> Committed<T> {
    /// This node's party id in the session.
    pub fn id(&self) -> PartyId {
        self.cx.id
    }
    /// The session's time (unix seconds).
    pub fn time(&self) -> u64 {
        self.cx.cfg.time
    }
    /// How long to wait for a peer or the client.
    pub fn timeout(&self) -> Duration {
        self.cx.cfg.timeout
    }
    /// The session's report so far (transcript, nonce, MPC-TLS timings).
    pub fn report(&self) -> &NodeReport {
        &self.open.report
    }
    /// Whether the client said at the start that it would ask for a computation after the
    /// response (a disclosure).
    pub fn client_will_disclose(&self) -> bool {
        self.open.disclose
    }
    /// The garbled-circuit session, to preprocess and execute more executions on it.
    pub fn session(&mut self) -> &mut Session<Channel<T>> {
        &mut self.open.gc
    }
    /// Where the server traffic key is kept: (execution, output group). Its bits are the
    /// expanded AES key ([`mpc::circuit::aes::EXPANDED_KEY_BITS`]) then the 4-byte implicit
    /// nonce ([`crate::circuits::TRAFFIC_KEY_BITS`] in all).
    pub fn server_key(&self) -> (ExecId, usize) {
        (self.open.e_hs, hs_out::SERVER_KEY)
    }
    /// Where the client traffic key is kept, as [`Committed::server_key`].
    pub fn client_key(&self) -> (ExecId, usize) {
        (self.open.e_hs, hs_out::CLIENT_KEY)
    }
    /// The request's application-data records, in order (record i has sequence number and
    /// explicit nonce i + 1).
    pub fn request_records(&self) -> &[CommittedRecord] {
        &self.open.request
    }
    /// The response's application-data records, in order (alerts left out), as every node
    /// verified them.
    pub fn response_records(&self) -> &[CommittedRecord] {
        &self.open.response
    }
    /// The next message the client sent after the response ([`ToNode::After`]).
    pub async fn recv_client(&mut self) -> Result<Vec<u8>, NodeError> {
        match self.cx.recv_client().await? {
            ToNode::After(b) => Ok(b),
            other => Err(NodeError::Client(format!(
                "sent {} after the response",
                kind(&other)
            ))),
        }
    }
    /// Sends the client a message ([`ToClient::After`]).
    pub fn send_client(&mut self, bytes: Vec<u8>) -> Result<(), NodeError> {
        Ok(self.cx.link.send(&ToClient::After(bytes))?)
    }
    /// Exchanges `hash` and this node's verdict with the other nodes: every node must agree
    /// on the hash and be satisfied, or the session stops (naming `what`).
    pub async fn agree(
        &mut self,
        what: &'static str,
        hash: [u8; 32],
        ok: bool,
    ) -> Result<(), NodeError> {
        self.cx.agree(what, hash, ok).await
    }

    /// Ends the session: flushes the client link, lets the peers finish, and returns the
    /// report with the session's final totals (AND gates, bytes).
    pub async fn finish(mut self) -> NodeReport {
        close(&mut self.cx, true).await;
        self.report_totals()
    }

    /// Ends the session after a failure of what ran on it: tells the client and (unless
    /// `peer_stopped`, the failure being a peer's abort) the other nodes `reason`, then
    /// closes.
    pub async fn fail(mut self, reason: &Stop, peer_stopped: bool) {
        tell_failure(&mut self.cx, reason, peer_stopped).await;
        close(&mut self.cx, false).await;
    }

    fn report_totals(&self) -> NodeReport {
        let t = self.open.gc.timings();
        let stats = self.cx.base.stats();
        NodeReport {
            and_gates: t.garbled_ands.max(t.evaluated_ands),
            node_bytes_sent: stats.total_sent(),
            node_bytes_received: stats.total_received(),
            ..self.open.report.clone()
        }
    }
}

/// Reads handshake messages until the server's first flight is complete.
async fn server_flight<T: Transport>(
    cx: &mut Ctx<T>,
    machine: &mut ServerFlight,
) -> Result<Flight, NodeError> {
    let mut closed = None;
    loop {
        match cx.next_event(&mut closed).await? {
            Some(ServerEvent::Handshake(m)) => {
                if let Some(f) = machine.on_message(&m)? {
                    return Ok(f);
                }
            }
            Some(ServerEvent::Alert(a)) => return Err(machine.on_alert(a).into()),
            Some(other) => return Err(unexpected(format!("{other:?} during the handshake"))),
            None => return Err(unexpected("connection closed during the handshake")),
        }
    }
}

fn cert_chain_hash(certs: &[Vec<u8>]) -> [u8; 32] {
    let mut h = Sha256::new();
    for c in certs {
        h.update(&(c.len() as u32).to_be_bytes()[1..]);
        h.update(c);
    }
    h.finalize().into()
}

async fn ghash_powers<T: Transport + 'static, R: RngCore + CryptoRng>(
    cx: &Ctx<T>,
    channel: u8,
    h_share: [u8; 16],
    count: usize,
    rng: &mut R,
) -> Result<GhashPowers, NodeError> {
    let prog = GhashKey::new(cx.id, h_share, count).map_err(mpc_usage)?;
    let mut m = Machine::new(cx.id, prog, rng).map_err(SessionError::from)?;
    let mut chan = cx.base.channel(channel);
    Ok(run_arith(&mut chan, &mut m, cx.cfg.timeout).await?)
}

fn ghash_tag(
    powers: &GhashPowers,
    aad: &[u8],
    ct: &[u8],
    mask_share: &[u8; 16],
) -> Result<[u8; 16], NodeError> {
    let g = powers
        .ghash_share(&gcm_blocks(aad, ct))
        .map_err(mpc_usage)?;
    Ok(xor16(&g, mask_share))
}

async fn session<T, R>(cx: &mut Ctx<T>, rng: &mut R) -> Result<Open<T>, NodeError>
where
    T: Transport + 'static,
    R: RngCore + CryptoRng + Send,
{
    let id = cx.id;
    // The client's request.
    let (server_name, request_lens, request_pad, disclose) = match cx.recv_client().await? {
        ToNode::Start {
            server_name,
            request_records,
            request_pad,
            disclose,
        } => (server_name, request_records, request_pad, disclose),
        other => {
            return Err(NodeError::Client(format!(
                "sent {} before Start",
                kind(&other)
            )))
        }
    };
    if rustls_pki_types::ServerName::try_from(server_name.as_str()).is_err() {
        return Err(NodeError::Client(format!(
            "invalid server name {server_name:?}"
        )));
    }
    let request_lens: Vec<usize> = request_lens.iter().map(|&l| l as usize).collect();
    if request_lens.is_empty()
        || request_lens.len() > MAX_REQUEST_RECORDS
        || request_lens.iter().any(|&l| l == 0 || l > MAX_FRAGMENT)
    {
        return Err(NodeError::Client(format!(
            "request records must be 1 to {MAX_REQUEST_RECORDS} records of 1 to {MAX_FRAGMENT} bytes"
        )));
    }
    // Keystream travels in whole blocks; the client uses each record's first bytes.
    let request_bits: usize = request_lens.iter().map(|&l| blocks_for(l) * 128).sum();
    let request_pad = unpack_bits(&request_pad, request_bits)
        .ok_or_else(|| NodeError::Client("request pad has the wrong width".into()))?;

    // Garbled session: garble everything that does not depend on the server now.
    let mut tm = NodeTimings::default();
    let t0 = Instant::now();
    let mut gc = Session::new(
        Party::new(id, rng).map_err(SessionError::from)?,
        cx.base.channel(ch::GARBLED),
    )
    .with_timeout(cx.cfg.timeout);
    gc.setup().await?;
    let e_hs: ExecId = gc.preprocess(handshake_spec()?)?;
    let e_sf = gc.preprocess(server_finished_spec(e_hs)?)?;
    let req_records: Vec<CtrRecord> = request_lens
        .iter()
        .map(|&len| CtrRecord { len, alert: false })
        .collect();
    let mut req_execs = Vec::new();
    for batch in plan_batches(&req_records) {
        let (blocks, shape) = batch_blocks(&req_records, &batch);
        let spec = ctr_spec(e_hs, hs_out::CLIENT_KEY, shape)?;
        req_execs.push((gc.preprocess(spec)?, blocks, shape));
    }
    gc.flush().await?;
    tm.prepare = t0.elapsed();

    // 1. Client random and ECDH shares, committed then revealed.
    let mut my_random = [0u8; 32];
    rng.fill_bytes(&mut my_random);
    let scalar = Zeroizing::new(Scalar::random(&mut *rng));
    let my_point = (ProjectivePoint::GENERATOR * *scalar).to_affine();
    let my_point_bytes = my_point.to_encoded_point(false).as_bytes().to_vec();
    let commits = cx
        .exchange(&Ctl::Commit(commitment(id, &my_random, &my_point_bytes)))
        .await?;
    let reveals = cx
        .exchange(&Ctl::Reveal {
            random: my_random,
            point: my_point_bytes.clone(),
        })
        .await?;
    let mut randoms = [[0u8; 32]; 3];
    randoms[id as usize] = my_random;
    let mut client_pub = ProjectivePoint::from(my_point);
    for (node, m) in reveals {
        let (Some(Ctl::Commit(c)), Ctl::Reveal { random, point }) = (commits.get(&node), m) else {
            return Err(NodeError::Inconsistent("ECDH commitments"));
        };
        if !bool::from(commitment(node, &random, &point).ct_eq(c)) {
            return Err(NodeError::PeerAborted {
                node,
                reason: Stop::new(StopCode::Mpc, "opened a different commitment"),
            });
        }
        let p = EncodedPoint::from_bytes(&point)
            .ok()
            .and_then(|e| Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&e)))
            .ok_or(NodeError::PeerAborted {
                node,
                reason: Stop::new(StopCode::Mpc, "invalid ECDH share"),
            })?;
        randoms[node as usize] = random;
        client_pub += ProjectivePoint::from(p);
    }
    if bool::from(client_pub.ct_eq(&ProjectivePoint::IDENTITY)) {
        return Err(NodeError::Inconsistent(
            "ECDH shares (they sum to the identity)",
        ));
    }
    let client_random: [u8; 32] = {
        let mut h = Sha256::new();
        h.update(b"tessera mpc-tls client random v1");
        randoms.iter().for_each(|r| h.update(r));
        h.finalize().into()
    };
    let client_pub_bytes = client_pub
        .to_affine()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();

    // 2. ClientHello, the server's flight, checks.
    let ch_msg = codec::client_hello(&client_random, &server_name);
    let mut machine = ServerFlight::new(&ch_msg);
    cx.link.send(&ToClient::ClientHello(ch_msg))?;
    let flight = server_flight(cx, &mut machine).await;
    let mut transcript = machine.into_transcript();
    // Nodes must agree on what the server sent before acting on it.
    let flight_hash: [u8; 32] = transcript.clone().finalize().into();
    let verdict = flight.and_then(|f| {
        verify_server(
            &cx.cfg.roots,
            &server_name,
            &f.certs,
            cx.cfg.time,
            f.suite,
            &f.ske,
            &client_random,
            &f.hello.random,
        )?;
        Ok(f)
    });
    // Tell the peers our verdict either way; our own reason comes first.
    let agreed = cx
        .agree("the server's first flight", flight_hash, verdict.is_ok())
        .await;
    let flight = verdict?;
    agreed?;
    let server_point = EncodedPoint::from_bytes(&flight.ske.point)
        .ok()
        .and_then(|e| Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&e)))
        .filter(|p| !bool::from(p.is_identity()))
        .ok_or_else(|| unexpected("invalid server ECDH public key"))?;

    // 3. Pre-master-secret shares, keys, client Finished.
    let my_ecdh = (ProjectivePoint::from(server_point) * *scalar).to_affine();
    let mut em = ectf_machine(id, &my_ecdh, rng).map_err(SessionError::from)?;
    let t0 = Instant::now();
    let mut ectf_chan = cx.base.channel(ch::ECTF);
    let pms = run_arith(&mut ectf_chan, &mut em, cx.cfg.timeout)
        .await?
        .map_err(|e| unexpected(format!("ECDH: {e}")))?;
    tm.ectf = t0.elapsed();
    let cke = codec::client_key_exchange(&client_pub_bytes);
    transcript.update(&cke);
    let session_hash: [u8; 32] = transcript.clone().finalize().into();
    let public = [
        &session_hash[..],
        &flight.hello.random[..],
        &client_random[..],
    ]
    .concat();
    let mut inputs = Inputs::none().value(id as usize, fp_to_bits(&pms.value()).to_vec());
    if id < 2 {
        let mut bits = bytes_to_bits(&public);
        if cx.cfg.faults().bad_public_input {
            bits[0] ^= true;
        }
        inputs = inputs.value(3 + id as usize, bits);
    }
    drop(pms);
    let t0 = Instant::now();
    let out = gc.execute(e_hs, inputs, rng).await?;
    tm.handshake_exec = t0.elapsed();
    let pubout = value(&out, hs_out::PUBLIC)?;
    if pubout[0] {
        return Err(NodeError::Inconsistent("the handshake's public inputs"));
    }
    let cvd: [u8; 12] = bits_to_bytes(&pubout[1..97])
        .try_into()
        .map_err(|_| mpc_usage("verify_data width"))?;
    let fin_ct = bits_to_bytes(&pubout[97..225]);
    let shares = value(&out, hs_out::SHARES)?;
    let fin_mask = Zeroizing::new(block(&shares[0..128]));
    let h_client = Zeroizing::new(block(&shares[128..256]));
    let h_server = Zeroizing::new(block(&shares[256..384]));
    drop(out);

    let client_powers_needed = request_lens
        .iter()
        .map(|&l| blocks_for(l) + 2)
        .max()
        .unwrap_or(0)
        .max(3);
    let t0 = Instant::now();
    let cpow = ghash_powers(cx, ch::GHASH_CLIENT, *h_client, client_powers_needed, rng).await?;
    tm.ghash = t0.elapsed();
    let aad = gcm_aad(0, ContentType::Handshake, 16);
    let tag_share = ghash_tag(&cpow, &aad, &fin_ct, &fin_mask)?;
    cx.link.send(&ToClient::ClientFinished {
        client_key_exchange: cke,
        ciphertext: fin_ct,
        tag_share,
    })?;
    transcript.update(codec::finished(&cvd));
    let hash_through_client_finished: [u8; 32] = transcript.clone().finalize().into();

    // 4. The server's ChangeCipherSpec and Finished.
    let t0 = Instant::now();
    let spow = ghash_powers(cx, ch::GHASH_SERVER, *h_server, MAX_POWERS, rng).await?;
    tm.ghash += t0.elapsed();
    let mut closed = None;
    match cx.next_event(&mut closed).await? {
        Some(ServerEvent::ChangeCipherSpec) => {}
        Some(ServerEvent::Alert(alert)) => {
            return Err(ServerError::ServerAlert {
                alert,
                stage: "the handshake (after our Finished)",
            }
            .into())
        }
        other => {
            return Err(unexpected(format!(
                "{} instead of ChangeCipherSpec",
                describe(&other)
            )))
        }
    }
    let fin_rec = match cx.next_event(&mut closed).await? {
        Some(ServerEvent::Encrypted {
            typ: ContentType::Handshake,
            payload,
        }) => payload,
        Some(ServerEvent::Encrypted {
            typ: ContentType::Alert,
            ..
        }) => {
            return Err(unexpected(
                "an encrypted alert instead of the server's Finished",
            ))
        }
        other => {
            return Err(unexpected(format!(
                "{} instead of the server's Finished",
                describe(&other)
            )))
        }
    };
    let mut relay_hash = Sha256::new();
    relay_hash.update(&fin_rec);
    cx.agree(
        "the server's Finished record",
        relay_hash.finalize().into(),
        true,
    )
    .await?;
    let frag = split_gcm(&fin_rec)?;
    if frag.ciphertext.len() != 16 {
        return Err(NodeError::BadFinished);
    }
    let sf_public = [&hash_through_client_finished[..], &frag.explicit[..]].concat();
    let mut inputs = Inputs::none();
    if id < 2 {
        inputs = inputs.value(2 + id as usize, bytes_to_bits(&sf_public));
    }
    let t0 = Instant::now();
    let out = gc.execute(e_sf, inputs, rng).await?;
    tm.server_finished_exec = t0.elapsed();
    let pubout = value(&out, 0)?;
    if pubout[0] {
        return Err(NodeError::Inconsistent(
            "the server Finished's public inputs",
        ));
    }
    let svd: [u8; 12] = bits_to_bytes(&pubout[1..97])
        .try_into()
        .map_err(|_| mpc_usage("verify_data width"))?;
    let ks = bits_to_bytes(&pubout[97..225]);
    let sf_mask = block(value(&out, 1)?);
    let tag = cx
        .open_tags(vec![ghash_tag(
            &spow,
            &gcm_aad(0, ContentType::Handshake, 16),
            frag.ciphertext,
            &sf_mask,
        )?])
        .await?;
    if !bool::from(tag[0].ct_eq(&frag.tag)) {
        return Err(NodeError::BadTag("the server's Finished".into()));
    }
    let plain = xor16(&block(&bytes_to_bits(&ks)), frag.ciphertext);
    if !bool::from(plain.ct_eq(&codec::finished(&svd))) {
        return Err(NodeError::BadFinished);
    }
    transcript.update(plain);
    let handshake_hash: [u8; 32] = transcript.finalize().into();

    // 5. The request.
    let t0 = Instant::now();
    let mut masked = Vec::with_capacity(request_bits);
    let mut req_masks: Vec<[u8; 16]> = Vec::with_capacity(request_lens.len());
    let mut pad_at = 0;
    for (exec, blocks, shape) in req_execs {
        let lay = shape.layout();
        let mut inputs = Inputs::none();
        if id < 2 {
            // Our records' explicit nonces are their sequence numbers (record i has i + 1).
            let suffix = suffix_bytes(&blocks, |r| (1 + r as u64).to_be_bytes());
            inputs = inputs.value(1 + id as usize, bytes_to_bits(&suffix));
        }
        if let Some(g) = lay.client {
            let w = shape.client * 128;
            inputs = inputs.client_pad(g, request_pad[pad_at..pad_at + w].to_vec());
            pad_at += w;
        }
        let out = gc.execute(exec, inputs, rng).await?;
        if value(&out, lay.public)?[0] {
            return Err(NodeError::Inconsistent("the request's counter blocks"));
        }
        if let Some(g) = lay.client {
            masked.extend_from_slice(value(&out, g)?);
        }
        if let Some(g) = lay.shares {
            req_masks.extend(value(&out, g)?.chunks_exact(128).map(block));
        }
    }
    if cx.cfg.faults().bad_masked_keystream {
        if let Some(b) = masked.first_mut() {
            *b ^= true;
        }
    }
    let masked = pack_bits(&masked);
    tm.request_exec = t0.elapsed();
    cx.link.send(&ToClient::RequestKeystream(masked))?;
    let cts = match cx.recv_client().await? {
        ToNode::RequestCiphertext(c) => c,
        other => {
            return Err(NodeError::Client(format!(
                "sent {} instead of the request",
                kind(&other)
            )))
        }
    };
    if cts.len() != request_lens.len() || cts.iter().zip(&request_lens).any(|(c, &l)| c.len() != l)
    {
        return Err(NodeError::Client(
            "request ciphertext does not match the announced lengths".into(),
        ));
    }
    let mut sent_hash = Sha256::new();
    let mut tags = Vec::with_capacity(cts.len());
    for (i, (ct, mask)) in cts.iter().zip(&req_masks).enumerate() {
        let seq = 1 + i as u64;
        hash_record(&mut sent_hash, &seq.to_be_bytes(), ct);
        tags.push(ghash_tag(
            &cpow,
            &gcm_aad(seq, ContentType::ApplicationData, ct.len()),
            ct,
            mask,
        )?);
    }
    cx.link.send(&ToClient::RequestTags(tags))?;

    // 6. The response, until the server closes.
    let mut records: Vec<(ContentType, Vec<u8>)> = Vec::new();
    let mut app_records = 0usize;
    let mut relay_hash = Sha256::new();
    loop {
        match cx.next_event(&mut closed).await? {
            Some(ServerEvent::Encrypted { typ, payload }) => {
                match typ {
                    ContentType::ApplicationData | ContentType::Alert => {}
                    t => {
                        return Err(unexpected(format!(
                            "a {t:?} record after the handshake (renegotiation is not supported)"
                        )))
                    }
                }
                let f = split_gcm(&payload)?;
                if typ == ContentType::Alert && f.ciphertext.len() != 2 {
                    return Err(unexpected("an alert record that is not 2 bytes"));
                }
                relay_hash.update([typ.byte()]);
                relay_hash.update((payload.len() as u32).to_be_bytes());
                relay_hash.update(&payload);
                let is_alert = typ == ContentType::Alert;
                records.push((typ, payload));
                app_records += usize::from(!is_alert);
                if app_records > MAX_RESPONSE_RECORDS {
                    return Err(unexpected(format!(
                        "more than {MAX_RESPONSE_RECORDS} response records"
                    )));
                }
                if is_alert {
                    break;
                }
            }
            Some(other) => return Err(unexpected(format!("{other:?} after the handshake"))),
            None => break,
        }
    }
    // The client says when the server closed; wait for that if the alert came first.
    while closed.is_none() {
        match cx.recv_client().await? {
            ToNode::ServerBytes(b) => cx.stream.push(&b),
            ToNode::Closed { eof, response_pad } => closed = Some((eof, response_pad)),
            other => {
                return Err(NodeError::Client(format!(
                    "sent {} instead of Closed",
                    kind(&other)
                )))
            }
        }
    }
    let (eof, response_pad) = closed.unwrap_or_default();
    if cx.stream.next_event()?.is_some() || cx.stream.has_partial() {
        return Err(unexpected(
            "bytes after the server's closing alert, or a truncated record",
        ));
    }
    cx.agree("the response records", relay_hash.finalize().into(), true)
        .await?;
    let close_notify = !eof
        && records
            .last()
            .is_some_and(|(t, _)| *t == ContentType::Alert);

    let layout: Vec<CtrRecord> = records
        .iter()
        .map(|(t, p)| CtrRecord {
            len: p.len().saturating_sub(codec::EXPLICIT_NONCE + codec::TAG),
            alert: *t == ContentType::Alert,
        })
        .collect();
    let frags: Vec<_> = records
        .iter()
        .map(|(_, p)| split_gcm(p))
        .collect::<Result<_, _>>()?;
    let client_bits: usize = layout
        .iter()
        .filter(|r| !r.alert)
        .map(|r| blocks_for(r.len) * 128)
        .sum();
    let response_pad = unpack_bits(&response_pad, client_bits)
        .ok_or_else(|| NodeError::Client("response pad has the wrong width".into()))?;
    let mut received_hash = Sha256::new();
    let mut masked_ks = Vec::with_capacity(client_bits);
    let mut received_bytes = 0u64;
    let mut alert = None;
    let mut pad_at = 0;
    // Server record i (0-based, after the Finished) has sequence number i + 1.
    for batch in plan_batches(&layout) {
        let t0 = Instant::now();
        let (blocks, shape) = batch_blocks(&layout, &batch);
        let spec = ctr_spec(e_hs, hs_out::SERVER_KEY, shape)?;
        let lay = shape.layout();
        tm.response_build += t0.elapsed();
        let t0 = Instant::now();
        let exec = gc.preprocess(spec)?;
        let mut inputs = Inputs::none();
        if id < 2 {
            let suffix = suffix_bytes(&blocks, |r| frags[r].explicit);
            inputs = inputs.value(1 + id as usize, bytes_to_bits(&suffix));
        }
        if let Some(g) = lay.client {
            let w = shape.client * 128;
            inputs = inputs.client_pad(g, response_pad[pad_at..pad_at + w].to_vec());
            pad_at += w;
        }
        let out = gc.execute(exec, inputs, rng).await?;
        let pubout = value(&out, lay.public)?;
        if pubout[0] {
            return Err(NodeError::Inconsistent("the response's explicit nonces"));
        }
        let masks: Vec<[u8; 16]> = match lay.shares {
            Some(g) => value(&out, g)?.chunks_exact(128).map(block).collect(),
            None => Vec::new(),
        };
        let masked_records: Vec<usize> = blocks[shape.public..shape.public + shape.masks]
            .iter()
            .map(|b| b.record)
            .collect();
        let mut mine = Vec::with_capacity(masks.len());
        for (&r, m) in masked_records.iter().zip(&masks) {
            let typ = if layout[r].alert {
                ContentType::Alert
            } else {
                ContentType::ApplicationData
            };
            let f = &frags[r];
            mine.push(ghash_tag(
                &spow,
                &gcm_aad(1 + r as u64, typ, f.ciphertext.len()),
                f.ciphertext,
                m,
            )?);
        }
        let tags = cx.open_tags(mine).await?;
        for (&r, t) in masked_records.iter().zip(&tags) {
            if !bool::from(t.ct_eq(&frags[r].tag)) {
                return Err(NodeError::BadTag(format!("response record {}", r + 1)));
            }
            let f = &frags[r];
            if !layout[r].alert {
                hash_record(&mut received_hash, &f.explicit, f.ciphertext);
                received_bytes += f.ciphertext.len() as u64;
            }
        }
        // Alert records are 2 bytes: one public keystream block each.
        let public_blocks = &blocks[..shape.public];
        for (b, ks) in public_blocks.iter().zip(pubout[1..].chunks_exact(128)) {
            let ks = bits_to_bytes(ks);
            let c = frags[b.record].ciphertext;
            alert = Some(Alert::parse(&[c[0] ^ ks[0], c[1] ^ ks[1]])?);
        }
        if let Some(g) = lay.client {
            masked_ks.extend_from_slice(value(&out, g)?);
        }
        tm.response_exec += t0.elapsed();
    }
    if let Some(a) = alert.filter(|a| !a.is_close_notify()) {
        return Err(ServerError::ServerAlert {
            alert: a,
            stage: "the response",
        }
        .into());
    }
    let transcript = Transcript {
        server_name,
        time: cx.cfg.time,
        suite: flight.suite,
        cert_chain_hash: cert_chain_hash(&flight.certs),
        handshake_hash,
        sent_hash: sent_hash.finalize().into(),
        received_hash: received_hash.finalize().into(),
        sent_records: request_lens.len() as u32,
        sent_bytes: request_lens.iter().sum::<usize>() as u64,
        received_records: layout.iter().filter(|r| !r.alert).count() as u32,
        received_bytes,
        close_notify,
    };
    cx.link.send(&ToClient::Response {
        keystream: pack_bits(&masked_ks),
        transcript: transcript.clone(),
    })?;
    drop(masked_ks);

    let report = NodeReport {
        timings: tm,
        transcript,
        and_gates: 0,
        node_bytes_sent: 0,
        node_bytes_received: 0,
        session_nonce: client_random,
    };
    let committed = |r: &usize| CommittedRecord {
        explicit: frags[*r].explicit,
        ciphertext: frags[*r].ciphertext.to_vec(),
    };
    let response = (0..layout.len())
        .filter(|&r| !layout[r].alert)
        .map(|r| committed(&r))
        .collect();
    let request = cts
        .into_iter()
        .enumerate()
        .map(|(i, ciphertext)| CommittedRecord {
            explicit: (1 + i as u64).to_be_bytes(),
            ciphertext,
        })
        .collect();
    Ok(Open {
        gc,
        e_hs,
        request,
        response,
        disclose,
        report,
    })
}
