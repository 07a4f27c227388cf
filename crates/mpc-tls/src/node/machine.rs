//! A node's session as a deterministic state machine, in the style of the engine's
//! [`Party`]: no sockets, no clock, no tasks. A driver feeds it what arrives
//! ([`NodeSession::handle_peer`], [`NodeSession::handle_client`],
//! [`NodeSession::handle_timeout`]), lets it do its heavy work ([`NodeSession::poll_work`]),
//! and carries out what it asks for ([`NodeSession::poll_transmit`],
//! [`NodeSession::poll_event`], [`NodeSession::poll_timeout`]). Every input takes the time
//! `now` from the driver, so a test can step three nodes and a client by hand.
//!
//! The session owns its sub-machines: the garbled-circuit [`Party`], the arithmetic
//! [`Machine`]s (ECtF, the GHASH powers of each direction) and the server's first flight
//! ([`ServerFlight`]). Its states follow the protocol one step at a time; each holds only
//! what is valid at that step (the ECDH scalar until ECtF starts, the GHASH key shares until
//! their powers exist, the request pad until the request keystream is out).
//!
//! Node-to-node messages travel on numbered channels ([`ch`]) over one transport: the
//! channel number is the last byte of each payload.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use mpc::circuit::{bits_to_bytes, bytes_to_bits};
use mpc::convert::fp_to_bits;
use mpc::ectf::{ectf_machine, EctfMachine};
use mpc::field::Gf128;
use mpc::ghash::{gcm_blocks, GhashKey, GhashPowers, MAX_POWERS};
use mpc::rss::Machine;
use mpc::session::SessionError;
use mpc::spec::PartyId;
use mpc::{ExecId, GroupOutput, Inputs, Party, Work};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::elliptic_curve::Field as _;
use p256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{
    cert_chain_hash, commitment, peers, unexpected, CommittedRecord, Ctl, NodeConfig, NodeError,
    NodeReport, NodeTimings,
};
use std::sync::Arc;

use mpc::ExecSpec;

use crate::circuits::{
    batch_blocks, byte_position, ctr_spec_for, handshake_spec, hs_out, open_key_spec_for,
    plan_batches, server_finished_spec, suffix_bytes, CtrBlock, CtrRecord, CtrShape, NonceKind,
    Segment, MAX_BLOCKS_PER_EXECUTION, OPENED_KEY_BITS,
};
use crate::circuits13::{app13_out, application13_spec, handshake13_spec, OPENED_KEY13_BITS};
use crate::codec::{
    self, blocks_for, gcm_aad, split_gcm, Alert, CipherSuite, ContentType, MAX_FRAGMENT,
};
use crate::handshake::{Flight, ServerError, ServerFlight};
use crate::handshake13::TLS13;
use crate::net::ch;
use crate::proto::{
    hash_record, keeps_whole, pack_bits, relay_hash, unpack_bits, Failure, FailureCode, OneCopy,
    RelayKind, ToClient, ToNode, Transcript, MAX_REQUEST_RECORDS, MAX_RESPONSE_RECORDS, RELAY_NODE,
};
use crate::record13;
use crate::server_auth::verify_server;
use crate::stream::{ServerEvent, ServerStream};

mod tls13;

/// Messages a peer may send on a channel this node is not yet (or no longer) running, kept
/// until it is: a peer can be one step ahead, never far.
const MAX_EARLY: usize = 256;

/// Most bytes the relay node's forwarded copy may run ahead of the client's hashes of them
/// at another node: the hashes are a few bytes each and go straight from the client, so a
/// longer backlog means the client is withholding them.
pub const MAX_RELAY_BACKLOG: usize = 4 << 20;

/// Most bytes of client messages a node holds unread: the session reads the provider's
/// bytes as they come while it reads the response, so only a client that sends ahead of
/// the protocol reaches this.
pub const MAX_CLIENT_BACKLOG: usize = 4 << 20;

/// Something the session asks its driver to send.
#[derive(Debug)]
pub enum NodeTransmit {
    /// To another node: the payload for the node-to-node transport (its last byte is the
    /// channel number).
    Peer {
        /// The node.
        to: PartyId,
        /// The payload.
        bytes: Vec<u8>,
    },
    /// To the client: one encoded [`ToClient`] message.
    Client(Vec<u8>),
}

/// What became of the session.
#[derive(Debug)]
pub enum NodeEvent {
    /// The session is committed: the transcript went to the client. Take it over with
    /// [`NodeSession::into_committed`].
    Committed,
    /// The session failed; what tells the client and the peers is queued for
    /// [`NodeSession::poll_transmit`].
    Failed(NodeError),
}

/// What the session holds once committed, for the computation that runs on it next.
pub struct CommittedParts {
    /// The garbled-circuit party, both traffic keys still on its wires.
    pub party: Party,
    /// The TLS version (0x0303 or 0x0304).
    pub tls_version: u16,
    /// Where the client application traffic key is kept: (execution, output group).
    pub client_key: (ExecId, usize),
    /// Where the server application traffic key is kept.
    pub server_key: (ExecId, usize),
    /// The request's records.
    pub request: Vec<CommittedRecord>,
    /// The response's application-data records.
    pub response: Vec<CommittedRecord>,
    /// Whether the client asked for a computation after the response.
    pub disclose: bool,
    /// The report so far.
    pub report: NodeReport,
    /// Control messages peers sent for the next step.
    pub(super) ctl: CtlInbox,
    /// Messages on other channels that arrived early: (channel, peer, payload).
    pub early_peer: Vec<(u8, PartyId, Vec<u8>)>,
    /// Client messages not yet read.
    pub early_client: Vec<ToNode>,
}

/// An arithmetic sub-machine and the channel it runs on.
enum Arith {
    Ectf(Box<EctfMachine>),
    Ghash(Box<Machine<Gf128, GhashKey>>),
}

impl Arith {
    fn handle(&mut self, from: PartyId, b: &[u8]) -> Result<(), mpc::rss::ArithAbort> {
        match self {
            Arith::Ectf(m) => m.handle(from, b),
            Arith::Ghash(m) => m.handle(from, b),
        }
    }
    fn poll_transmit(&mut self) -> Option<(PartyId, Vec<u8>)> {
        match self {
            Arith::Ectf(m) => m.poll_transmit(),
            Arith::Ghash(m) => m.poll_transmit(),
        }
    }
    fn aborted(&self) -> Option<&mpc::rss::ArithAbort> {
        match self {
            Arith::Ectf(m) => m.aborted(),
            Arith::Ghash(m) => m.aborted(),
        }
    }
    fn is_done(&self) -> bool {
        match self {
            Arith::Ectf(m) => m.is_done(),
            Arith::Ghash(m) => m.is_done(),
        }
    }
    fn abort_local(&mut self, why: &str) {
        match self {
            Arith::Ectf(m) => {
                m.abort_local(why);
            }
            Arith::Ghash(m) => {
                m.abort_local(why);
            }
        }
    }
}

/// The executions registered ahead of the server's answer, for the TLS version the session
/// prepared for ([`NodeConfig::prepare_tls13`]); if the server picks the other, that
/// version's are registered when its ServerHello comes.
#[derive(Debug, Clone, Copy)]
enum Pre {
    /// TLS 1.2: the handshake and server Finished executions.
    V12 { e_hs: ExecId, e_sf: ExecId },
    /// TLS 1.3: the handshake and application executions.
    V13 { e_hs: ExecId, e_app: ExecId },
}

/// Which TLS the session speaks, and where its application traffic keys are kept.
#[derive(Debug, Clone, Copy)]
enum Tls {
    /// TLS 1.2: both keys kept by the handshake execution.
    V12 { e_hs: ExecId },
    /// TLS 1.3: both keys kept by the application execution.
    V13 { e_app: ExecId },
}

impl Tls {
    fn is13(self) -> bool {
        matches!(self, Tls::V13 { .. })
    }
    /// Where a direction's key is kept and how its nonces are formed.
    fn key(self, client: bool) -> (ExecId, usize, NonceKind) {
        match (self, client) {
            (Tls::V12 { e_hs }, true) => (e_hs, hs_out::CLIENT_KEY, NonceKind::Explicit),
            (Tls::V12 { e_hs }, false) => (e_hs, hs_out::SERVER_KEY, NonceKind::Explicit),
            (Tls::V13 { e_app }, true) => (e_app, app13_out::CLIENT_KEY, NonceKind::Sequence),
            (Tls::V13 { e_app }, false) => (e_app, app13_out::SERVER_KEY, NonceKind::Sequence),
        }
    }
    /// A keystream execution of `shape` under a direction's key.
    fn ctr_spec(self, client: bool, shape: CtrShape) -> Result<Arc<ExecSpec>, NodeError> {
        let (exec, group, kind) = self.key(client);
        Ok(ctr_spec_for(exec, group, shape, kind)?)
    }
    /// The sequence number of the first application-data record.
    fn first_seq(self) -> u64 {
        match self {
            Tls::V12 { .. } => 1,
            Tls::V13 { .. } => 0,
        }
    }
    /// A record's additional data.
    fn aad(self, seq: u64, typ: ContentType, ct_len: usize) -> Vec<u8> {
        match self {
            Tls::V12 { .. } => gcm_aad(seq, typ, ct_len).to_vec(),
            Tls::V13 { .. } => record13::header(ct_len + codec::TAG).to_vec(),
        }
    }
    /// A relayed record's parts.
    fn split(self, payload: &[u8], seq: u64) -> Result<codec::GcmFragment<'_>, NodeError> {
        Ok(match self {
            Tls::V12 { .. } => split_gcm(payload)?,
            Tls::V13 { .. } => record13::split(payload, seq)?,
        })
    }
}

/// What is valid from the client's Start to the end.
struct Setup {
    server_name: String,
    /// The request records' content lengths.
    request_lens: Vec<usize>,
    /// The seed of this node's share of the client's pads for the request keystream.
    request_pad_seed: Zeroizing<[u8; 32]>,
    disclose: bool,
    pre: Pre,
    /// The request's keystream executions, under the client key of `pre`'s version.
    req_execs: Vec<(ExecId, Vec<CtrBlock>, CtrShape)>,
}

impl Setup {
    /// The request records' lengths as protected: in TLS 1.3 each has its content type.
    fn record_lens(&self, tls13: bool) -> Vec<usize> {
        self.request_lens
            .iter()
            .map(|&l| l + usize::from(tls13))
            .collect()
    }
    /// This node's share of the client's pads for the request keystream (whole AES blocks
    /// per record).
    fn request_pad(&self, tls13: bool) -> Vec<bool> {
        let bits = self
            .record_lens(tls13)
            .iter()
            .map(|&l| blocks_for(l) * 128)
            .sum();
        mpc::client::pad_from_seed(&self.request_pad_seed, bits)
    }
    /// The TLS 1.2 handshake and server Finished executions.
    fn hs12(&self) -> Result<(ExecId, ExecId), NodeError> {
        match self.pre {
            Pre::V12 { e_hs, e_sf } => Ok((e_hs, e_sf)),
            Pre::V13 { .. } => Err(usage("the TLS 1.2 executions are not registered")),
        }
    }
    /// The TLS 1.3 handshake and application executions.
    fn hs13(&self) -> Result<(ExecId, ExecId), NodeError> {
        match self.pre {
            Pre::V13 { e_hs, e_app } => Ok((e_hs, e_app)),
            Pre::V12 { .. } => Err(usage("the TLS 1.3 executions are not registered")),
        }
    }
}

/// Commit-then-reveal of this node's client-random contribution and ECDH share.
struct Keying {
    s: Setup,
    random: [u8; 32],
    scalar: Zeroizing<Scalar>,
    point: Vec<u8>,
}

/// The ClientHello is out.
struct Hello {
    s: Setup,
    scalar: Zeroizing<Scalar>,
    client_random: [u8; 32],
    client_pub: Vec<u8>,
    /// The ClientHello (the handshake message), for the transcript.
    client_hello: Vec<u8>,
}

/// The server's first flight is agreed and checked.
struct Agreed {
    s: Setup,
    client_random: [u8; 32],
    client_pub: Vec<u8>,
    flight: Flight,
    transcript: Sha256,
}

/// The handshake execution is out: the client Finished (its ciphertext and tag mask share).
struct Keys {
    a: Agreed,
    cke: Vec<u8>,
    cvd: [u8; 12],
    fin_ct: Vec<u8>,
    fin_mask: Zeroizing<[u8; 16]>,
}

/// The client Finished is out; the server's is awaited.
struct Finishing {
    s: Setup,
    client_random: [u8; 32],
    flight: Flight,
    transcript: Sha256,
    hash_through_client_finished: [u8; 32],
    cpow: GhashPowers,
}

/// The server's Finished record while it is checked.
struct FinishedRecord {
    spow: GhashPowers,
    record: Vec<u8>,
    /// This node's XOR share of the record's tag, once computed.
    mine: Option<[u8; 16]>,
    plain_keystream: Vec<u8>,
    svd: [u8; 12],
}

/// The handshake is done: application data.
struct App {
    s: Setup,
    tls: Tls,
    client_random: [u8; 32],
    suite: CipherSuite,
    cert_chain_hash: [u8; 32],
    handshake_hash: [u8; 32],
    cpow: GhashPowers,
    spow: GhashPowers,
}

/// The request executions, one after the other.
struct RequestRun {
    request_pad: Vec<bool>,
    next: usize,
    pad_at: usize,
    masked: Vec<bool>,
    masks: Vec<[u8; 16]>,
    /// TLS 1.3: the keystream byte over each request record's content type.
    types: Vec<u8>,
}

/// A response record as a node holds it once relayed: what its tag check needs, and the
/// record itself whole only while within what a node keeps ([`keeps_whole`]),
/// else its digest. Its GHASH share is computed as it arrives, so nothing of the record
/// needs to wait for the tag executions.
struct Relayed {
    /// Its content type: in TLS 1.2 from its header; in TLS 1.3 application data until its
    /// inner content type is revealed ([`Relayed::revealed`]).
    typ: ContentType,
    /// TLS 1.3: whether `typ` is the revealed inner content type.
    revealed: bool,
    /// The ciphertext's last byte (in TLS 1.3, the inner content type under keystream).
    last: u8,
    /// The tag the server sent.
    tag: [u8; 16],
    /// This node's XOR share of the record's GHASH (its tag share without the mask).
    ghash: [u8; 16],
    record: CommittedRecord,
}

/// The response as relayed so far.
struct Reading {
    sent_hash: Sha256,
    request: Vec<Vec<u8>>,
    records: Vec<Relayed>,
    /// Application-data records so far (TLS 1.3: every record, its type unknown yet).
    app_records: usize,
    /// Their ciphertext bytes.
    app_bytes: usize,
    relay_hash: Sha256,
    received_hash: Sha256,
    /// The tag checks, running while the response arrives.
    tags: TagRun,
}

/// The rest of the response's tag checks once the provider closed, then the opening of the
/// server write key.
struct Batches {
    sent_hash: Sha256,
    request: Vec<Vec<u8>>,
    records: Vec<Relayed>,
    /// The client reported the end of the connection without an alert record (TLS 1.2).
    eof: bool,
    /// This node's share of the client's pad for the opened key.
    response_pad: Vec<bool>,
    tags: TagRun,
    received_hash: Sha256,
}

/// The response's tag checks, batch by batch. Each batch is one execution computing the tag
/// masks of up to [`MAX_BLOCKS_PER_EXECUTION`] records (and a closing alert's keystream),
/// whose tags are then opened with the peers and compared with the server's. Batches of
/// [`MAX_BLOCKS_PER_EXECUTION`] application-data records start as soon as their records
/// have arrived ([`TagRun::queue_full`]); what is left is batched once the provider has
/// closed ([`TagRun::queue_rest`]). Which records go in which batch depends only on the
/// records, never on when they arrived, so every node runs the same executions and opens
/// the same tags in the same order.
#[derive(Default)]
struct TagRun {
    /// TLS 1.3: each batch also reveals its records' content types (so it holds half the
    /// records), and an alert's bytes take a batch of their own.
    tls13: bool,
    /// The first record not yet in a batch.
    next: usize,
    /// Batches planned, not started.
    plan: VecDeque<Vec<Segment>>,
    /// The batch running: its execution, blocks, shape, and when it started.
    current: Option<(ExecId, Vec<CtrBlock>, CtrShape, Instant)>,
    /// The batch's outputs while its tags are opened.
    opening: Option<(Opening, Instant)>,
    /// The closing alert and its record, once its keystream is out.
    alert: Option<(usize, Alert)>,
}

impl TagRun {
    /// Records in a whole batch.
    fn per_batch(&self) -> usize {
        if self.tls13 {
            MAX_BLOCKS_PER_EXECUTION / 2
        } else {
            MAX_BLOCKS_PER_EXECUTION
        }
    }

    /// Queues every whole batch of application-data records that has arrived.
    fn queue_full(&mut self, records: &[Relayed]) {
        let n = self.per_batch();
        while let Some(chunk) = records.get(self.next..self.next + n) {
            if chunk.iter().any(|r| r.typ != ContentType::ApplicationData) {
                return;
            }
            let batch = (self.next..self.next + n)
                .map(|record| Segment {
                    record,
                    mask: true,
                    start: 0,
                    end: 0,
                })
                .collect();
            self.plan.push_back(batch);
            self.next += n;
        }
    }

    /// Queues everything left (the provider has closed: no record will come).
    fn queue_rest(&mut self, records: &[Relayed]) {
        self.queue_full(records);
        if self.tls13 {
            for start in (self.next..records.len()).step_by(self.per_batch()) {
                let end = (start + self.per_batch()).min(records.len());
                self.plan.push_back(
                    (start..end)
                        .map(|record| Segment {
                            record,
                            mask: true,
                            start: 0,
                            end: 0,
                        })
                        .collect(),
                );
            }
            self.next = records.len();
            return;
        }
        let rest = planned(records.get(self.next..).unwrap_or_default());
        for mut batch in plan_batches(&rest) {
            for seg in &mut batch {
                seg.record += self.next;
            }
            self.plan.push_back(batch);
        }
        self.next = records.len();
    }

    /// Whether no batch is planned or running.
    fn idle(&self) -> bool {
        self.plan.is_empty() && self.current.is_none() && self.opening.is_none()
    }
}

/// What the tag executions cover of each record: an application-data record only its tag
/// mask (its keystream is never computed: the key is opened to the client once every tag
/// verified), an alert its keystream too.
fn planned(records: &[Relayed]) -> Vec<CtrRecord> {
    records
        .iter()
        .map(|r| {
            let alert = r.typ == ContentType::Alert;
            CtrRecord {
                len: if alert { r.record.ciphertext_len() } else { 0 },
                alert,
            }
        })
        .collect()
}

/// TLS 1.3: the blocks of a response batch in canonical order, its shape and its typed
/// blocks' byte positions. A segment with `mask` stands for a record's tag mask and the
/// block holding its last byte (the inner content type, revealed alone); one without, for
/// an alert record's first keystream block, revealed to the nodes (an alert carries no user
/// data).
fn batch_blocks13(
    records: &[Relayed],
    batch: &[Segment],
) -> Result<(Vec<CtrBlock>, CtrShape, Vec<usize>), NodeError> {
    let (mut public, mut typed, mut masks, mut positions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for seg in batch {
        let len = records
            .get(seg.record)
            .map(|r| r.record.ciphertext_len())
            .filter(|&l| l > 0)
            .ok_or_else(|| usage("no such record"))?;
        let record = seg.record;
        if seg.mask {
            masks.push(CtrBlock { record, ctr: 1 });
            typed.push(CtrBlock {
                record,
                ctr: 2 + ((len - 1) / 16) as u32,
            });
            positions.push((len - 1) % 16);
        } else {
            public.push(CtrBlock { record, ctr: 2 });
        }
    }
    let shape = CtrShape {
        masks: masks.len(),
        client: 0,
        public: public.len(),
        typed: typed.len(),
    };
    public.extend(typed);
    public.extend(masks);
    Ok((public, shape, positions))
}

/// A response batch's outputs while its tags are opened with the peers.
struct Opening {
    /// The records whose tags the batch masks.
    records: Vec<usize>,
    /// This node's XOR shares of their tags.
    mine: Vec<[u8; 16]>,
    /// The public keystream blocks (alerts).
    public: Vec<bool>,
    /// The blocks and shape of the batch.
    blocks: Vec<CtrBlock>,
    shape: CtrShape,
}

/// One state per protocol step, each holding only what is valid then.
enum State {
    /// Waiting for the client's Start.
    Start,
    /// Commitments sent; waiting for the peers'.
    Commit(Box<Keying>),
    /// Openings sent; waiting for the peers'.
    Reveal(Box<Keying>, BTreeMap<PartyId, [u8; 32]>),
    /// ClientHello out (offering TLS 1.3 and 1.2); waiting for the ServerHello.
    ServerHello(Box<Hello>),
    /// TLS 1.2: reading the server's first flight.
    Flight(Box<Hello>, Box<ServerFlight>),
    /// Flight judged; waiting for the peers' hashes and verdicts.
    FlightCheck(
        Box<Hello>,
        Box<Sha256>,
        Box<Result<Flight, NodeError>>,
        [u8; 32],
    ),
    /// ECtF running.
    Ectf(Box<Agreed>),
    /// The handshake execution running (the ClientKeyExchange is fixed).
    Handshake(Box<Agreed>, Vec<u8>),
    /// Both directions' GHASH powers being computed; waiting for the client-write ones.
    ClientPowers(Box<Keys>),
    /// The client Finished out; waiting for the server-write GHASH powers.
    ServerPowers(Box<Finishing>),
    /// Waiting for the server's ChangeCipherSpec.
    ServerCcs(Box<Finishing>, Box<GhashPowers>),
    /// Waiting for the server's Finished record.
    ServerFinished(Box<Finishing>, Box<GhashPowers>),
    /// The record's hash sent; waiting for the peers'.
    FinishedCheck(Box<Finishing>, Box<FinishedRecord>, [u8; 32]),
    /// The server Finished execution running.
    FinishedExec(Box<Finishing>, Box<FinishedRecord>),
    /// Tag shares of the server Finished sent; waiting for the peers'.
    FinishedTag(Box<Finishing>, Box<FinishedRecord>),
    /// TLS 1.3: ECtF running on the server's key share.
    Ectf13(Box<tls13::Hs13>),
    /// TLS 1.3: the handshake execution running.
    Handshake13(Box<tls13::Hs13>),
    /// TLS 1.3: reading the server's encrypted flight.
    Flight13(Box<tls13::Read13>),
    /// TLS 1.3: flight judged; waiting for the peers' hashes and verdicts.
    FlightCheck13(
        Box<tls13::Read13>,
        Box<Result<crate::handshake13::Flight13, NodeError>>,
        [u8; 32],
    ),
    /// TLS 1.3: the application execution running.
    Application13(Box<tls13::Keys13>),
    /// TLS 1.3: both directions' GHASH powers being computed.
    Powers13(Box<tls13::Keys13>),
    /// The request executions running.
    Request(Box<App>, Box<RequestRun>),
    /// The masked request keystream out; waiting for the request ciphertext.
    RequestCiphertext(Box<App>, Vec<[u8; 16]>, Vec<u8>),
    /// Reading the response until the server closes.
    Response(Box<App>, Box<Reading>),
    /// The closing alert came; waiting for the client to report the close.
    AwaitClosed(Box<App>, Box<Reading>, Option<(bool, Vec<u8>)>),
    /// The response's hash sent; waiting for the peers'.
    ResponseCheck(Box<App>, Box<Reading>, (bool, Vec<u8>), [u8; 32]),
    /// The response executions and tag openings.
    ResponseBatches(Box<App>, Box<Batches>),
    /// Every tag verified; the server write key being opened to the client.
    OpenKey(Box<App>, Box<Batches>, ExecId),
    /// Committed: the transcript is out.
    Committed(Box<Done>),
    /// Failed (the reason was reported), or between two states while a step runs.
    Failed,
}

/// What a committed session keeps.
struct Done {
    tls: Tls,
    request: Vec<CommittedRecord>,
    response: Vec<CommittedRecord>,
    disclose: bool,
    report: NodeReport,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "Start",
            State::Commit(..) => "Commit",
            State::Reveal(..) => "Reveal",
            State::ServerHello(..) => "ServerHello",
            State::Flight(..) => "Flight",
            State::Ectf13(..) => "Ectf13",
            State::Handshake13(..) => "Handshake13",
            State::Flight13(..) => "Flight13",
            State::FlightCheck13(..) => "FlightCheck13",
            State::Application13(..) => "Application13",
            State::Powers13(..) => "Powers13",
            State::FlightCheck(..) => "FlightCheck",
            State::Ectf(..) => "Ectf",
            State::Handshake(..) => "Handshake",
            State::ClientPowers(..) => "ClientPowers",
            State::ServerPowers(..) => "ServerPowers",
            State::ServerCcs(..) => "ServerCcs",
            State::ServerFinished(..) => "ServerFinished",
            State::FinishedCheck(..) => "FinishedCheck",
            State::FinishedExec(..) => "FinishedExec",
            State::FinishedTag(..) => "FinishedTag",
            State::Request(..) => "Request",
            State::RequestCiphertext(..) => "RequestCiphertext",
            State::Response(..) => "Response",
            State::AwaitClosed(..) => "AwaitClosed",
            State::ResponseCheck(..) => "ResponseCheck",
            State::ResponseBatches(..) => "ResponseBatches",
            State::OpenKey(..) => "OpenKey",
            State::Committed(..) => "Committed",
            State::Failed => "Failed",
        }
    }

    /// Whom the session waits for in this state, for a timeout's error.
    fn waiting_for(&self) -> &'static str {
        match self {
            State::Start
            | State::ServerHello(..)
            | State::Flight13(..)
            | State::Flight(..)
            | State::ServerCcs(..)
            | State::ServerFinished(..)
            | State::RequestCiphertext(..)
            | State::Response(..)
            | State::AwaitClosed(..) => "the client",
            _ => "a peer node",
        }
    }
}

/// One node's side of an MPC-TLS session, as a state machine. See the module doc.
pub struct NodeSession<R> {
    id: PartyId,
    cfg: NodeConfig,
    rng: R,
    state: State,
    /// The garbled session; created with the session, so garbling the handshake runs
    /// before (and while) the client arrives.
    party: Option<Party>,
    /// The handshake's and the server Finished's executions, registered at creation and
    /// taken by the Start step.
    pre_execs: Option<Pre>,
    /// This node's client-random contribution, ECDH scalar and public share, committed to
    /// at creation and taken by the Start step.
    share: Option<([u8; 32], Zeroizing<Scalar>, Vec<u8>)>,
    /// Control messages from each peer, in order.
    ctl: CtlInbox,
    /// The arithmetic sub-machines running, by channel.
    arith: Vec<(u8, Arith)>,
    /// Messages on channels not running: (channel, peer, payload).
    early_peer: Vec<(u8, PartyId, Vec<u8>)>,
    /// Client messages not yet read, with their encoded sizes.
    client_in: VecDeque<(usize, ToNode)>,
    /// The encoded size of the messages in `client_in` (at most [`MAX_CLIENT_BACKLOG`]).
    client_backlog: usize,
    /// Provider bytes the relay node forwarded, not yet matched with the client's hash.
    relay_in: VecDeque<Vec<u8>>,
    /// The bytes in `relay_in` (at most [`MAX_RELAY_BACKLOG`]).
    relay_backlog: usize,
    /// The running hash of the provider's bytes matched so far.
    relay_chain: [u8; 32],
    stream: ServerStream,
    /// The client's report that the server closed: (end of stream, its response pads).
    closed: Option<(bool, Vec<u8>)>,
    out: VecDeque<NodeTransmit>,
    events: VecDeque<NodeEvent>,
    now: Instant,
    deadline: Instant,
    /// When the timed step running began.
    since: Instant,
    timings: NodeTimings,
    and_gates: usize,
    /// Whether the session failed (and said so).
    failed: bool,
}

impl<R> std::fmt::Debug for NodeSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSession")
            .field("node", &self.id)
            .field("waiting_for", &self.state.waiting_for())
            .field("state", &self.state.name())
            .finish()
    }
}

fn mpc_err(e: mpc::Error) -> NodeError {
    NodeError::Mpc(SessionError::Protocol(e))
}

pub(super) fn usage(e: impl std::fmt::Display) -> NodeError {
    mpc_err(mpc::Error::Usage(e.to_string()))
}

fn kind(m: &ToNode) -> &'static str {
    match m {
        ToNode::Start { .. } => "Start",
        ToNode::ServerBytes(_) => "ServerBytes",
        ToNode::RequestCiphertext(_) => "RequestCiphertext",
        ToNode::Closed { .. } => "Closed",
        ToNode::After(_) => "an after-close message",
        ToNode::Relayed { .. } => "Relayed",
    }
}

/// An event for an error message; `None` is the end of the connection.
fn describe(e: &Option<ServerEvent>) -> String {
    match e {
        Some(e) => format!("{e:?}"),
        None => "the end of the connection".into(),
    }
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
        _ => Err(usage(format!("output group {g} missing"))),
    }
}

fn block(bits: &[bool]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bits_to_bytes(&bits[..128]));
    b
}

fn ghash_tag(
    powers: &GhashPowers,
    aad: &[u8],
    ct: &[u8],
    mask_share: &[u8; 16],
) -> Result<[u8; 16], NodeError> {
    let g = powers.ghash_share(&gcm_blocks(aad, ct)).map_err(usage)?;
    Ok(xor16(&g, mask_share))
}

/// A relayed response record (sequence number `seq`) as this node holds it: its GHASH
/// share computed now; the record whole if it is an alert (TLS 1.3: if it could be one, at
/// most 3 bytes) or within what a node keeps (taken over in place: explicit nonce and tag
/// cut off), else only its digest. An application-data record (TLS 1.3: every record) is
/// hashed into the transcript here, in order.
fn relayed(
    spow: &GhashPowers,
    tls: Tls,
    seq: u64,
    typ: ContentType,
    mut payload: Vec<u8>,
    r: &mut Reading,
) -> Result<Relayed, NodeError> {
    let f = tls.split(&payload, seq)?;
    let (explicit, tag, len) = (f.explicit, f.tag, f.ciphertext.len());
    let last = f.ciphertext.last().copied().unwrap_or(0);
    let ghash = spow
        .ghash_share(&gcm_blocks(&tls.aad(seq, typ, len), f.ciphertext))
        .map_err(usage)?;
    let app = typ == ContentType::ApplicationData;
    if app {
        hash_record(&mut r.received_hash, &explicit, f.ciphertext);
        r.app_bytes = r.app_bytes.saturating_add(len);
    }
    let record = if !app || keeps_whole(r.app_bytes, len, tls.is13()) {
        payload.truncate(payload.len() - codec::TAG);
        if !tls.is13() {
            payload.drain(..codec::EXPLICIT_NONCE);
        }
        payload.shrink_to_fit();
        CommittedRecord::new(explicit, payload)
    } else {
        CommittedRecord::digest_only(explicit, f.ciphertext)
    };
    Ok(Relayed {
        typ,
        revealed: !tls.is13(),
        last,
        tag,
        ghash,
        record,
    })
}

/// Registers the input-independent executions of a TLS version.
fn register_pre(party: &mut Party, tls13: bool) -> Result<Pre, NodeError> {
    Ok(if tls13 {
        let e_hs = party.preprocess(handshake13_spec()?).map_err(mpc_err)?;
        let e_app = party
            .preprocess(application13_spec(e_hs)?)
            .map_err(mpc_err)?;
        Pre::V13 { e_hs, e_app }
    } else {
        let e_hs = party.preprocess(handshake_spec()?).map_err(mpc_err)?;
        let e_sf = party
            .preprocess(server_finished_spec(e_hs)?)
            .map_err(mpc_err)?;
        Pre::V12 { e_hs, e_sf }
    })
}

/// Registers the request's keystream executions under the client key of `s.pre`'s version.
fn register_requests(
    party: &mut Party,
    s: &Setup,
) -> Result<Vec<(ExecId, Vec<CtrBlock>, CtrShape)>, NodeError> {
    let (tls, tls13) = match s.pre {
        Pre::V12 { e_hs, .. } => (Tls::V12 { e_hs }, false),
        Pre::V13 { e_app, .. } => (Tls::V13 { e_app }, true),
    };
    let records: Vec<CtrRecord> = s
        .record_lens(tls13)
        .into_iter()
        .map(|len| CtrRecord { len, alert: false })
        .collect();
    let mut execs = Vec::new();
    for batch in plan_batches(&records) {
        let (blocks, shape) = batch_blocks(&records, &batch);
        let spec = tls.ctr_spec(true, shape)?;
        execs.push((party.preprocess(spec).map_err(mpc_err)?, blocks, shape));
    }
    if tls13 {
        // The keystream byte over each record's content type, revealed to the nodes (it
        // encrypts a public value) to check the ciphertext against.
        let typed: Vec<CtrBlock> = records
            .iter()
            .enumerate()
            .map(|(record, r)| CtrBlock {
                record,
                ctr: 2 + ((r.len - 1) / 16) as u32,
            })
            .collect();
        for chunk in typed.chunks(MAX_BLOCKS_PER_EXECUTION) {
            let shape = CtrShape {
                masks: 0,
                client: 0,
                public: 0,
                typed: chunk.len(),
            };
            let spec = tls.ctr_spec(true, shape)?;
            execs.push((
                party.preprocess(spec).map_err(mpc_err)?,
                chunk.to_vec(),
                shape,
            ));
        }
    }
    Ok(execs)
}

/// A SEC1-encoded P-256 point, if it is one.
fn p256_point(bytes: &[u8]) -> Option<AffinePoint> {
    let e = EncodedPoint::from_bytes(bytes).ok()?;
    AffinePoint::from_encoded_point(&e).into()
}

/// Checks the peers' [`Ctl::Check`] answers: every node must have seen `hash` and be
/// satisfied.
pub(super) fn check_agreed(
    got: [(PartyId, Ctl); 2],
    what: &'static str,
    hash: &[u8; 32],
) -> Result<(), NodeError> {
    for (node, m) in got {
        match m {
            Ctl::Check { hash: h, ok } => {
                if !bool::from(h.ct_eq(hash)) {
                    return Err(NodeError::Inconsistent(what));
                }
                if !ok {
                    return Err(NodeError::PeerAborted {
                        node,
                        reason: Failure::new(FailureCode::Tampered, format!("refused {what}")),
                    });
                }
            }
            _ => return Err(NodeError::Inconsistent(what)),
        }
    }
    Ok(())
}

/// Sums this node's and the peers' XOR shares of some tags.
fn sum_tags(mine: &[[u8; 16]], got: [(PartyId, Ctl); 2]) -> Result<Vec<[u8; 16]>, NodeError> {
    let mut sum = mine.to_vec();
    for (node, m) in got {
        let Ctl::Tags(t) = m else {
            return Err(NodeError::Inconsistent("tag shares"));
        };
        if t.len() != sum.len() {
            return Err(NodeError::PeerAborted {
                node,
                reason: Failure::new(FailureCode::Mpc, "wrong number of tag shares"),
            });
        }
        for (a, b) in sum.iter_mut().zip(t) {
            *a = xor16(a, &b);
        }
    }
    Ok(sum)
}

/// The control messages peers sent and this node has not used yet, in order per peer.
#[derive(Debug)]
pub struct CtlInbox {
    id: PartyId,
    queues: [VecDeque<Ctl>; 3],
}

impl CtlInbox {
    /// An empty inbox for node `id`.
    fn new(id: PartyId) -> Self {
        CtlInbox {
            id,
            queues: Default::default(),
        }
    }

    /// Decodes and keeps a control message from `from`; a peer's abort, a message from no
    /// peer, an undecodable one, or one for two steps ahead is the error.
    pub(super) fn push(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), NodeError> {
        let refuse = |why: &str| NodeError::PeerAborted {
            node: from,
            reason: Failure::new(FailureCode::Mpc, why),
        };
        let m: Ctl =
            postcard::from_bytes(bytes).map_err(|_| refuse("undecodable control message"))?;
        if let Ctl::Abort(reason) = m {
            return Err(NodeError::PeerAborted { node: from, reason });
        }
        let q = self
            .queues
            .get_mut(from as usize)
            .filter(|_| from != self.id)
            .ok_or_else(|| refuse("not a peer"))?;
        // A peer can be one step ahead (it needs this node's message for each step), so at
        // most two of its messages wait here.
        if q.len() >= 2 {
            return Err(refuse("control messages for two steps ahead"));
        }
        q.push_back(m);
        Ok(())
    }

    /// One message from each peer, once both sent one.
    pub(super) fn take(&mut self) -> Option<[(PartyId, Ctl); 2]> {
        let [a, b] = peers(self.id);
        if self.queues[a as usize].is_empty() || self.queues[b as usize].is_empty() {
            return None;
        }
        let ma = self.queues[a as usize].pop_front()?;
        let mb = self.queues[b as usize].pop_front()?;
        Some([(a, ma), (b, mb)])
    }
}

/// A step's result: the next state, and whether it moved.
enum Step {
    Moved(State),
    Wait(State),
}

impl<R: RngCore + CryptoRng> NodeSession<R> {
    /// Node `id`'s session, waiting for the client's Start. `now` starts the first timeout.
    pub fn new(id: PartyId, cfg: NodeConfig, rng: R, now: Instant) -> Self {
        let deadline = now + cfg.timeout;
        let mut s = NodeSession {
            id,
            cfg,
            rng,
            state: State::Start,
            party: None,
            pre_execs: None,
            share: None,
            ctl: CtlInbox::new(id),
            arith: Vec::new(),
            early_peer: Vec::new(),
            client_in: VecDeque::new(),
            client_backlog: 0,
            relay_in: VecDeque::new(),
            relay_backlog: 0,
            relay_chain: [0; 32],
            stream: ServerStream::new(),
            closed: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            now,
            deadline,
            since: now,
            timings: NodeTimings::default(),
            and_gates: 0,
            failed: false,
        };
        if let Err(e) = s.begin() {
            s.fail(e);
        }
        s
    }

    /// Creates the garbled session and registers the executions that depend on no input, for
    /// the TLS version the node prepares for (TLS 1.2: the handshake's key derivation and
    /// Finished messages, the server Finished check; TLS 1.3: the handshake and application
    /// key schedules): the garblers garble them, and ship their tables, as soon as the nodes
    /// are connected, whether or not the client has arrived.
    fn begin(&mut self) -> Result<(), NodeError> {
        let mut party = Party::new(self.id, &mut self.rng).map_err(mpc_err)?;
        let pre = register_pre(&mut party, self.cfg.prepare_tls13)?;
        self.party = Some(party);
        self.pre_execs = Some(pre);
        self.collect();
        // 1. Client random and ECDH share, committed now (neither depends on the client, so
        // the commitments cross while the client arrives) and revealed after its Start.
        let mut random = [0u8; 32];
        self.rng
            .try_fill_bytes(&mut random)
            .map_err(|_| NodeError::Random)?;
        let scalar = Zeroizing::new(Scalar::random(&mut self.rng));
        let point = (ProjectivePoint::GENERATOR * *scalar)
            .to_affine()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        self.send_ctl(&Ctl::Commit(commitment(self.id, &random, &point)));
        self.share = Some((random, scalar, point));
        Ok(())
    }

    /// Whether this node's share of the input-independent garbling registered so far is
    /// done (see [`Party::preprocessed`]): a session created ahead of its client can take
    /// it as soon as this holds.
    pub fn preprocessed(&self) -> bool {
        self.party.as_ref().is_some_and(Party::preprocessed)
    }

    /// This node's id.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// The session's settings.
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    /// Whether the session has something queued for [`NodeSession::poll_transmit`].
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether the session has ended (committed or failed).
    pub fn is_over(&self) -> bool {
        self.failed || matches!(self.state, State::Committed(_))
    }

    /// A payload from peer node `from` on the node-to-node transport.
    pub fn handle_peer(&mut self, from: PartyId, mut bytes: Vec<u8>, now: Instant) {
        self.touch(now);
        if from == self.id || from > 2 {
            return self.fail(usage(format!("a message from party {from}")));
        }
        let Some(channel) = bytes.pop() else {
            return self.fail(NodeError::PeerAborted {
                node: from,
                reason: Failure::new(FailureCode::Mpc, "an unlabelled message"),
            });
        };
        if self.failed {
            return;
        }
        let r = match channel {
            ch::GARBLED => self
                .party()
                .and_then(|p| p.handle_owned(from, bytes).map_err(mpc_err)),
            ch::CONTROL => self.ctl.push(from, &bytes),
            ch::RELAY if from == RELAY_NODE && self.id != RELAY_NODE => {
                self.relay_backlog = self.relay_backlog.saturating_add(bytes.len());
                if self.relay_backlog > MAX_RELAY_BACKLOG {
                    Err(NodeError::Client(format!(
                        "the client's hashes of the provider's bytes fell more than \
                         {MAX_RELAY_BACKLOG} bytes behind the relay node's copy"
                    )))
                } else {
                    self.relay_in.push_back(bytes);
                    Ok(())
                }
            }
            ch::RELAY => Err(NodeError::PeerAborted {
                node: from,
                reason: Failure::new(
                    FailureCode::Mpc,
                    "forwarded provider bytes without being the relay",
                ),
            }),
            c => match self.arith.iter_mut().find(|(running, _)| *running == c) {
                Some((_, m)) => m
                    .handle(from, &bytes)
                    .map_err(|a| NodeError::Mpc(SessionError::Arith(a))),
                None => self.keep_early(|s| s.early_peer.push((c, from, bytes))),
            },
        };
        self.after(r);
    }

    /// An encoded [`ToNode`] message from the client.
    pub fn handle_client(&mut self, bytes: &[u8], now: Instant) {
        self.touch(now);
        if self.failed {
            return;
        }
        let r = match postcard::from_bytes::<ToNode>(bytes) {
            Ok(m) => {
                // The relay node forwards the provider's bytes and the request ciphertext
                // at once, whatever its step.
                let fwd = match (&m, self.id) {
                    (ToNode::ServerBytes(b), RELAY_NODE) => {
                        let mut fwd = Vec::with_capacity(b.len() + 1);
                        fwd.extend_from_slice(b);
                        Some(fwd)
                    }
                    (ToNode::RequestCiphertext(cts), RELAY_NODE) => postcard::to_stdvec(cts).ok(),
                    _ => None,
                };
                if let Some(mut fwd) = fwd {
                    fwd.push(ch::RELAY);
                    let [p, q] = peers(self.id);
                    self.out.push_back(NodeTransmit::Peer {
                        to: p,
                        bytes: fwd.clone(),
                    });
                    self.out.push_back(NodeTransmit::Peer { to: q, bytes: fwd });
                }
                self.client_backlog = self.client_backlog.saturating_add(bytes.len());
                if self.client_backlog > MAX_CLIENT_BACKLOG {
                    Err(NodeError::Client(format!(
                        "sent more than {MAX_CLIENT_BACKLOG} bytes ahead of the session"
                    )))
                } else {
                    self.client_in.push_back((bytes.len(), m));
                    Ok(())
                }
            }
            Err(_) => Err(NodeError::Link(crate::net::LinkError::Decode("client"))),
        };
        self.after(r);
    }

    /// The client's link ended or broke.
    pub fn handle_client_lost(&mut self, e: crate::net::LinkError, now: Instant) {
        self.touch(now);
        if !self.is_over() {
            self.fail(NodeError::Link(e));
        }
    }

    /// The node-to-node transport failed.
    pub fn handle_peer_lost(&mut self, e: mpc::transport::TransportError, now: Instant) {
        self.touch(now);
        if !self.is_over() {
            self.abort_subs("transport failed");
            self.fail(NodeError::Mpc(SessionError::Transport(e)));
        }
    }

    /// Tells the session the time; past [`NodeSession::poll_timeout`] it fails.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if !self.is_over() && now >= self.deadline {
            let who = self.state.waiting_for();
            self.abort_subs("timed out waiting for a peer");
            self.fail(NodeError::Timeout(who));
        }
    }

    /// When the session next needs [`NodeSession::handle_timeout`]: `timeout` after the last
    /// input or work. `None` once it is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_over()).then_some(self.deadline)
    }

    /// Does one unit of heavy local work (garbling, evaluating) if any is ready. Call until
    /// it returns `None`; the driver may time it.
    pub fn poll_work(&mut self, now: Instant) -> Option<Work> {
        if self.failed {
            return None;
        }
        let r = self.party.as_mut()?.poll_work();
        match r {
            Ok(Some(w)) => {
                self.touch(now);
                if let Work::Garbled { and_gates, .. } | Work::Evaluated { and_gates, .. } = w {
                    self.and_gates += and_gates;
                }
                self.after(Ok(()));
                Some(w)
            }
            Ok(None) => None,
            Err(e) => {
                self.after(Err(mpc_err(e)));
                None
            }
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<NodeTransmit> {
        self.out.pop_front()
    }

    /// The next thing that became of the session.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// Hands over a committed session, `None` if it is not committed.
    pub fn into_committed(mut self) -> Option<CommittedParts> {
        let State::Committed(d) = std::mem::replace(&mut self.state, State::Failed) else {
            return None;
        };
        let party = self.party.take()?;
        let (ce, cg, _) = d.tls.key(true);
        let (se, sg, _) = d.tls.key(false);
        Some(CommittedParts {
            party,
            tls_version: if d.tls.is13() { TLS13 } else { codec::TLS12 },
            client_key: (ce, cg),
            server_key: (se, sg),
            request: d.request,
            response: d.response,
            disclose: d.disclose,
            report: d.report,
            ctl: self.ctl,
            early_peer: self.early_peer,
            early_client: self.client_in.into_iter().map(|(_, m)| m).collect(),
        })
    }

    fn touch(&mut self, now: Instant) {
        self.now = now;
        self.deadline = now + self.cfg.timeout;
    }

    fn keep_early(&mut self, keep: impl FnOnce(&mut Self)) -> Result<(), NodeError> {
        if self.early_peer.len() >= MAX_EARLY {
            return Err(usage("too many messages for steps not yet reached"));
        }
        keep(self);
        Ok(())
    }

    /// After an input: on success moves the protocol on, on failure reports it.
    fn after(&mut self, r: Result<(), NodeError>) {
        let r = r.and_then(|()| self.advance());
        if let Err(e) = r {
            self.fail(e);
        }
        self.collect();
    }

    /// Moves sub-machines' messages to the outbox.
    fn collect(&mut self) {
        if let Some(p) = self.party.as_mut() {
            while let Some((to, m)) = p.poll_transmit() {
                let mut bytes = m.into_bytes();
                bytes.push(ch::GARBLED);
                self.out.push_back(NodeTransmit::Peer { to, bytes });
            }
        }
        for (c, m) in self.arith.iter_mut() {
            while let Some((to, mut bytes)) = m.poll_transmit() {
                bytes.push(*c);
                self.out.push_back(NodeTransmit::Peer { to, bytes });
            }
        }
    }

    fn abort_subs(&mut self, why: &str) {
        if let Some(p) = self.party.as_mut() {
            if p.aborted().is_none() {
                p.abort_local(why);
            }
        }
        for (_, m) in self.arith.iter_mut() {
            if m.aborted().is_none() {
                m.abort_local(why);
            }
        }
    }

    /// Ends the session: tells the client and (unless a peer stopped first) the peers why.
    fn fail(&mut self, e: NodeError) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.state = State::Failed;
        let stop = e.failure();
        tracing::warn!(role = self.id, reason = stop.code.label(), error = %stop, "MPC-TLS session failed");
        self.send_client(&ToClient::Error(stop.clone()));
        // The reason goes out before the engines' own abort messages (which say only that
        // this party stopped), so a peer learns why first.
        if !matches!(e, NodeError::PeerAborted { .. }) {
            self.send_ctl(&Ctl::Abort(stop));
        }
        self.collect();
        self.events.push_back(NodeEvent::Failed(e));
    }

    fn send_client(&mut self, m: &ToClient) {
        match postcard::to_stdvec(m) {
            Ok(b) => self.out.push_back(NodeTransmit::Client(b)),
            Err(_) => tracing::error!("cannot encode a message to the client"),
        }
    }

    fn send_ctl(&mut self, m: &Ctl) {
        let Ok(mut bytes) = postcard::to_stdvec(m) else {
            tracing::error!("cannot encode a control message");
            return;
        };
        bytes.push(ch::CONTROL);
        for to in peers(self.id) {
            self.out.push_back(NodeTransmit::Peer {
                to,
                bytes: bytes.clone(),
            });
        }
    }

    fn party(&mut self) -> Result<&mut Party, NodeError> {
        self.party
            .as_mut()
            .ok_or_else(|| usage("the garbled session has not started"))
    }

    fn start_exec(&mut self, exec: ExecId, inputs: Inputs) -> Result<(), NodeError> {
        let p = self
            .party
            .as_mut()
            .ok_or_else(|| usage("no garbled session"))?;
        p.start(exec, inputs, &mut self.rng).map_err(mpc_err)
    }

    fn exec_output(&mut self, exec: ExecId) -> Result<Option<Vec<GroupOutput>>, NodeError> {
        let p = self.party()?;
        if p.output(exec).is_none() {
            return Ok(None);
        }
        Ok(p.take_output(exec))
    }

    fn start_arith(&mut self, channel: u8, mut m: Arith) -> Result<(), NodeError> {
        self.since = self.now;
        let early = std::mem::take(&mut self.early_peer);
        for (c, from, b) in early {
            if c == channel {
                m.handle(from, &b)
                    .map_err(|a| NodeError::Mpc(SessionError::Arith(a)))?;
            } else {
                self.early_peer.push((c, from, b));
            }
        }
        self.arith.push((channel, m));
        Ok(())
    }

    /// The arithmetic machine running on `channel`, once it is done (it is then dropped).
    fn arith_done(&mut self, channel: u8) -> Result<Option<Arith>, NodeError> {
        let Some(at) = self.arith.iter().position(|(c, _)| *c == channel) else {
            return Err(usage("no arithmetic computation is running there"));
        };
        let m = &self.arith[at].1;
        if let Some(a) = m.aborted() {
            return Err(NodeError::Mpc(SessionError::Arith(a.clone())));
        }
        if !m.is_done() {
            return Ok(None);
        }
        // Its last messages go out before it is dropped.
        self.collect();
        Ok(Some(self.arith.remove(at).1))
    }

    /// The client's next message as it came, off the backlog.
    fn pop_client(&mut self) -> Option<ToNode> {
        let (len, m) = self.client_in.pop_front()?;
        self.client_backlog = self.client_backlog.saturating_sub(len);
        Some(m)
    }

    /// The client's next message, with the provider's bytes as this node has them: at the
    /// relay node as the client sent them, elsewhere as the relay node forwarded them, once
    /// they match the client's hash (`Ok(None)` while the forwarded bytes have not come).
    fn pull_client(&mut self) -> Result<Option<ToNode>, NodeError> {
        match self.client_in.front().map(|(_, m)| m) {
            Some(&ToNode::Relayed { kind, len, hash }) if self.id != RELAY_NODE => {
                let Some(chunk) = self.relay_in.pop_front() else {
                    return Ok(None);
                };
                self.relay_backlog -= chunk.len();
                self.pop_client();
                let next = relay_hash(&self.relay_chain, &chunk);
                if chunk.len() != len as usize || !bool::from(next.ct_eq(&hash)) {
                    return Err(NodeError::Inconsistent(match kind {
                        RelayKind::ServerBytes => {
                            "the provider's bytes (the relay node's copy and the client's hash differ)"
                        }
                        RelayKind::RequestCiphertext => {
                            "the request ciphertext (the relay node's copy and the client's hash differ)"
                        }
                    }));
                }
                self.relay_chain = next;
                Ok(Some(match kind {
                    RelayKind::ServerBytes => ToNode::ServerBytes(chunk),
                    // The client hashed this encoding, so it decodes (or the client lied).
                    RelayKind::RequestCiphertext => {
                        ToNode::RequestCiphertext(postcard::from_bytes(&chunk).map_err(|_| {
                            NodeError::Client("an undecodable request ciphertext".into())
                        })?)
                    }
                }))
            }
            Some(ToNode::Relayed { .. }) => Err(NodeError::Client(
                "sent the relay node a hash instead of the provider's bytes".into(),
            )),
            Some(ToNode::ServerBytes(_) | ToNode::RequestCiphertext(_))
                if self.id != RELAY_NODE =>
            {
                Err(NodeError::Client(
                    "sent the relay node's share of the upload to another node".into(),
                ))
            }
            _ => Ok(self.pop_client()),
        }
    }

    /// The next server event from the relayed bytes: `Ok(None)` when more bytes are
    /// needed, `Ok(Some(None))` once the client reported the connection closed.
    fn next_event(&mut self) -> Result<Option<Option<ServerEvent>>, NodeError> {
        loop {
            if let Some(e) = self.stream.next_event()? {
                return Ok(Some(Some(e)));
            }
            if self.closed.is_some() {
                return Ok(Some(None));
            }
            match self.pull_client()? {
                None => return Ok(None),
                Some(ToNode::ServerBytes(b)) => self.stream.push(&b),
                Some(ToNode::Closed { eof, response_pad }) => {
                    self.closed = Some((eof, response_pad))
                }
                Some(other) => {
                    return Err(NodeError::Client(format!(
                        "sent {} while server bytes were expected",
                        kind(&other)
                    )))
                }
            }
        }
    }

    fn advance(&mut self) -> Result<(), NodeError> {
        loop {
            if matches!(self.state, State::Failed | State::Committed(_)) {
                return Ok(());
            }
            let st = std::mem::replace(&mut self.state, State::Failed);
            tracing::trace!(node = self.id, state = st.name(), "step");
            match self.step(st)? {
                Step::Moved(s) => self.state = s,
                Step::Wait(s) => {
                    self.state = s;
                    return Ok(());
                }
            }
        }
    }

    fn step(&mut self, st: State) -> Result<Step, NodeError> {
        use Step::{Moved, Wait};
        Ok(match st {
            State::Start => match self.pop_client() {
                None => Wait(State::Start),
                Some(m) => Moved(self.on_start(m)?),
            },
            State::Commit(k) => match self.ctl.take() {
                None => Wait(State::Commit(k)),
                Some(got) => {
                    let mut commits = BTreeMap::new();
                    for (node, m) in got {
                        let Ctl::Commit(c) = m else {
                            return Err(NodeError::Inconsistent("ECDH commitments"));
                        };
                        commits.insert(node, c);
                    }
                    self.send_ctl(&Ctl::Reveal {
                        random: k.random,
                        point: k.point.clone(),
                    });
                    Moved(State::Reveal(k, commits))
                }
            },
            State::Reveal(k, commits) => match self.ctl.take() {
                None => Wait(State::Reveal(k, commits)),
                Some(got) => Moved(self.on_reveal(*k, &commits, got)?),
            },
            State::ServerHello(h) => self.step_server_hello(h)?,
            State::Ectf13(x) => self.step_ectf13(x)?,
            State::Handshake13(x) => self.step_handshake13(x)?,
            State::Flight13(r) => self.step_flight13(r)?,
            State::FlightCheck13(r, v, h) => self.step_flight_check13(r, v, h)?,
            State::Application13(k) => self.step_application13(k)?,
            State::Powers13(k) => self.step_powers13(k)?,
            State::Flight(h, mut machine) => {
                let verdict = loop {
                    let ev = match self.next_event() {
                        Ok(None) => return Ok(Wait(State::Flight(h, machine))),
                        Ok(Some(ev)) => ev,
                        Err(e) => break Err(e),
                    };
                    match ev {
                        Some(ServerEvent::Handshake(m)) => match machine.on_message(&m) {
                            Ok(Some(f)) => break Ok(f),
                            Ok(None) => {}
                            Err(e) => break Err(e.into()),
                        },
                        Some(ServerEvent::Alert(a)) => break Err(machine.on_alert(a).into()),
                        Some(other) => {
                            break Err(unexpected(format!("{other:?} during the handshake")))
                        }
                        None => break Err(unexpected("connection closed during the handshake")),
                    }
                };
                let transcript = machine.into_transcript();
                // Nodes must agree on what the server sent before acting on it.
                let hash: [u8; 32] = transcript.clone().finalize().into();
                let verdict = verdict.and_then(|f| {
                    verify_server(
                        &self.cfg.roots,
                        &h.s.server_name,
                        &f.certs,
                        self.cfg.time,
                        f.suite,
                        &f.ske,
                        &h.client_random,
                        &f.hello.random,
                    )?;
                    Ok(f)
                });
                // The peers hear the verdict either way.
                self.send_ctl(&Ctl::Check {
                    hash,
                    ok: verdict.is_ok(),
                });
                Moved(State::FlightCheck(
                    h,
                    Box::new(transcript),
                    Box::new(verdict),
                    hash,
                ))
            }
            State::FlightCheck(h, transcript, verdict, hash) => match self.ctl.take() {
                None => Wait(State::FlightCheck(h, transcript, verdict, hash)),
                Some(got) => {
                    let agreed = check_agreed(got, "the server's first flight", &hash);
                    // This node's own reason comes first.
                    let flight = (*verdict)?;
                    agreed?;
                    Moved(self.on_flight(*h, flight, *transcript)?)
                }
            },
            State::Ectf(a) => match self.arith_done(ch::ECTF)? {
                None => Wait(State::Ectf(a)),
                Some(m) => Moved(self.on_ectf(*a, m)?),
            },
            State::Handshake(a, cke) => match self.exec_output(a.s.hs12()?.0)? {
                None => Wait(State::Handshake(a, cke)),
                Some(out) => Moved(self.on_handshake(*a, cke, &out)?),
            },
            State::ClientPowers(k) => match self.arith_done(ch::GHASH_CLIENT)? {
                None => Wait(State::ClientPowers(k)),
                Some(m) => Moved(self.on_client_powers(*k, m)?),
            },
            State::ServerPowers(f) => match self.arith_done(ch::GHASH_SERVER)? {
                None => Wait(State::ServerPowers(f)),
                Some(Arith::Ghash(mut m)) => {
                    // Both programs ran side by side: the span until the second is done.
                    self.timings.ghash = self.now - self.since;
                    let spow = m
                        .take_output()
                        .ok_or_else(|| usage("GHASH powers already taken"))?;
                    Moved(State::ServerCcs(f, Box::new(spow)))
                }
                Some(Arith::Ectf(_)) => return Err(usage("ECtF instead of GHASH powers")),
            },
            State::ServerCcs(f, spow) => match self.next_event()? {
                None => Wait(State::ServerCcs(f, spow)),
                Some(Some(ServerEvent::ChangeCipherSpec)) => Moved(State::ServerFinished(f, spow)),
                Some(Some(ServerEvent::Alert(alert))) => {
                    return Err(ServerError::ServerAlert {
                        alert,
                        stage: if f.flight.certificate_requested {
                            "the handshake (after our Finished; the server had asked for a \
                             client certificate and Tessera has none: it may require one)"
                        } else {
                            "the handshake (after our Finished)"
                        },
                    }
                    .into())
                }
                Some(other) => {
                    return Err(unexpected(format!(
                        "{} instead of ChangeCipherSpec",
                        describe(&other)
                    )))
                }
            },
            State::ServerFinished(f, spow) => match self.next_event()? {
                None => Wait(State::ServerFinished(f, spow)),
                Some(Some(ServerEvent::Encrypted {
                    typ: ContentType::Handshake,
                    payload,
                })) => {
                    let hash: [u8; 32] = Sha256::digest(&payload).into();
                    self.send_ctl(&Ctl::Check { hash, ok: true });
                    let rec = FinishedRecord {
                        spow: *spow,
                        record: payload,
                        mine: None,
                        plain_keystream: Vec::new(),
                        svd: [0; 12],
                    };
                    Moved(State::FinishedCheck(f, Box::new(rec), hash))
                }
                Some(Some(ServerEvent::Encrypted {
                    typ: ContentType::Alert,
                    ..
                })) => {
                    return Err(unexpected(
                        "an encrypted alert instead of the server's Finished",
                    ))
                }
                Some(other) => {
                    return Err(unexpected(format!(
                        "{} instead of the server's Finished",
                        describe(&other)
                    )))
                }
            },
            State::FinishedCheck(f, rec, hash) => match self.ctl.take() {
                None => Wait(State::FinishedCheck(f, rec, hash)),
                Some(got) => {
                    check_agreed(got, "the server's Finished record", &hash)?;
                    let frag = split_gcm(&rec.record)?;
                    if frag.ciphertext.len() != 16 {
                        return Err(NodeError::BadFinished);
                    }
                    let public = [&f.hash_through_client_finished[..], &frag.explicit[..]].concat();
                    let mut inputs = Inputs::none();
                    if self.id < 2 {
                        inputs = inputs.value(2 + self.id as usize, bytes_to_bits(&public));
                    }
                    self.since = self.now;
                    self.start_exec(f.s.hs12()?.1, inputs)?;
                    Moved(State::FinishedExec(f, rec))
                }
            },
            State::FinishedExec(f, mut rec) => match self.exec_output(f.s.hs12()?.1)? {
                None => Wait(State::FinishedExec(f, rec)),
                Some(out) => {
                    self.timings.server_finished_exec = self.now - self.since;
                    let pubout = value(&out, 0)?;
                    if pubout[0] {
                        return Err(NodeError::Inconsistent(
                            "the server Finished's public inputs",
                        ));
                    }
                    rec.svd = bits_to_bytes(&pubout[1..97])
                        .try_into()
                        .map_err(|_| usage("verify_data width"))?;
                    rec.plain_keystream = bits_to_bytes(&pubout[97..225]);
                    let mask = block(value(&out, 1)?);
                    let frag = split_gcm(&rec.record)?;
                    let mine = ghash_tag(
                        &rec.spow,
                        &gcm_aad(0, ContentType::Handshake, 16),
                        frag.ciphertext,
                        &mask,
                    )?;
                    rec.mine = Some(mine);
                    self.send_ctl(&Ctl::Tags(vec![mine]));
                    Moved(State::FinishedTag(f, rec))
                }
            },
            State::FinishedTag(f, rec) => match self.ctl.take() {
                None => Wait(State::FinishedTag(f, rec)),
                Some(got) => Moved(self.on_finished_tag(*f, *rec, got)?),
            },
            State::Request(app, run) => self.step_request(app, run)?,
            State::RequestCiphertext(app, masks, types) => match self.pull_client()? {
                None => Wait(State::RequestCiphertext(app, masks, types)),
                Some(ToNode::RequestCiphertext(cts)) => {
                    Moved(self.on_request_ciphertext(app, &masks, &types, cts)?)
                }
                // TLS 1.3: the provider's post-handshake messages (session tickets) may come
                // before the request; they are read with the response.
                Some(ToNode::ServerBytes(b)) if app.tls.is13() => {
                    self.stream.push(&b);
                    Moved(State::RequestCiphertext(app, masks, types))
                }
                Some(other) => {
                    return Err(NodeError::Client(format!(
                        "sent {} instead of the request",
                        kind(&other)
                    )))
                }
            },
            State::Response(app, mut r) => loop {
                let ev = match self.next_event()? {
                    None => {
                        let moved = self.step_tags(&app, &mut r.records, &mut r.tags)?;
                        return Ok(if moved {
                            Moved(State::Response(app, r))
                        } else {
                            Wait(State::Response(app, r))
                        });
                    }
                    Some(ev) => ev,
                };
                match ev {
                    Some(ServerEvent::Encrypted { typ, payload }) => {
                        match typ {
                            ContentType::ApplicationData | ContentType::Alert => {}
                            t => return Err(unexpected(format!(
                                "a {t:?} record after the handshake (renegotiation is not supported)"
                            ))),
                        }
                        let seq = app.tls.first_seq() + r.records.len() as u64;
                        let f = app.tls.split(&payload, seq)?;
                        if typ == ContentType::Alert && f.ciphertext.len() != 2 {
                            return Err(unexpected("an alert record that is not 2 bytes"));
                        }
                        r.relay_hash.update([typ.byte()]);
                        r.relay_hash.update((payload.len() as u32).to_be_bytes());
                        r.relay_hash.update(&payload);
                        let is_alert = typ == ContentType::Alert;
                        r.app_records += usize::from(!is_alert);
                        if r.app_records > MAX_RESPONSE_RECORDS {
                            return Err(unexpected(format!(
                                "more than {MAX_RESPONSE_RECORDS} response records"
                            )));
                        }
                        let rec = relayed(&app.spow, app.tls, seq, typ, payload, &mut r)?;
                        let maybe_alert = app.tls.is13() && rec.record.ciphertext_len() == 3;
                        r.records.push(rec);
                        if maybe_alert {
                            // TLS 1.3: a record of three bytes may be the closing alert
                            // (level, description, content type), and a provider may wait
                            // for ours before it closes the connection: its type is
                            // revealed now, with every record before it.
                            r.tags.queue_rest(&r.records);
                        } else {
                            r.tags.queue_full(&r.records);
                        }
                        if is_alert {
                            // The client says when the server closed; wait for that.
                            let closed = self.closed.take();
                            break Moved(State::AwaitClosed(app, r, closed));
                        }
                    }
                    Some(other) => {
                        return Err(unexpected(format!("{other:?} after the handshake")))
                    }
                    None => {
                        let closed = self.closed.take();
                        break Moved(State::AwaitClosed(app, r, closed));
                    }
                }
            },
            State::AwaitClosed(app, mut r, mut closed) => {
                while closed.is_none() {
                    match self.pull_client()? {
                        None => {
                            let moved = self.step_tags(&app, &mut r.records, &mut r.tags)?;
                            return Ok(if moved {
                                Moved(State::AwaitClosed(app, r, closed))
                            } else {
                                Wait(State::AwaitClosed(app, r, closed))
                            });
                        }
                        Some(ToNode::ServerBytes(b)) => self.stream.push(&b),
                        Some(ToNode::Closed { eof, response_pad }) => {
                            closed = Some((eof, response_pad))
                        }
                        Some(other) => {
                            return Err(NodeError::Client(format!(
                                "sent {} instead of Closed",
                                kind(&other)
                            )))
                        }
                    }
                }
                if self.stream.next_event()?.is_some() || self.stream.has_partial() {
                    return Err(unexpected(
                        "bytes after the server's closing alert, or a truncated record",
                    ));
                }
                // Every whole batch is checked before the records' hashes are compared, so
                // every node opens the same tags before the same check.
                r.tags.queue_full(&r.records);
                if !r.tags.idle() {
                    let moved = self.step_tags(&app, &mut r.records, &mut r.tags)?;
                    return Ok(if moved {
                        Moved(State::AwaitClosed(app, r, closed))
                    } else {
                        Wait(State::AwaitClosed(app, r, closed))
                    });
                }
                let closed = closed.unwrap_or_default();
                let hash: [u8; 32] = r.relay_hash.clone().finalize().into();
                self.send_ctl(&Ctl::Check { hash, ok: true });
                Moved(State::ResponseCheck(app, r, closed, hash))
            }
            State::ResponseCheck(app, r, closed, hash) => match self.ctl.take() {
                None => Wait(State::ResponseCheck(app, r, closed, hash)),
                Some(got) => {
                    check_agreed(got, "the response records", &hash)?;
                    Moved(self.on_response_agreed(app, *r, closed)?)
                }
            },
            State::ResponseBatches(app, b) => self.step_batches(app, b)?,
            State::OpenKey(app, b, e) => match self.exec_output(e)? {
                None => Wait(State::OpenKey(app, b, e)),
                Some(out) => {
                    self.timings.response_exec += self.now - self.since;
                    let masked = value(&out, 0)?.to_vec();
                    Moved(self.on_response_verified(app, *b, &masked)?)
                }
            },
            s @ (State::Committed(_) | State::Failed) => Wait(s),
        })
    }

    fn on_start(&mut self, m: ToNode) -> Result<State, NodeError> {
        let ToNode::Start {
            server_name,
            request_records,
            request_pad_seed,
            disclose,
        } = m
        else {
            return Err(NodeError::Client(format!("sent {} before Start", kind(&m))));
        };
        if rustls_pki_types::ServerName::try_from(server_name.as_str()).is_err() {
            return Err(NodeError::Client(format!(
                "invalid server name {server_name:?}"
            )));
        }
        let request_lens: Vec<usize> = request_records.iter().map(|&l| l as usize).collect();
        if request_lens.is_empty()
            || request_lens.len() > MAX_REQUEST_RECORDS
            || request_lens.iter().any(|&l| l == 0 || l > MAX_FRAGMENT)
        {
            return Err(NodeError::Client(format!(
                "request records must be 1 to {MAX_REQUEST_RECORDS} records of 1 to {MAX_FRAGMENT} bytes"
            )));
        }
        // The garbled session: everything that does not depend on the server is garbled
        // while the server is contacted (the handshake's part since the session began).
        self.since = self.now;
        let pre = self
            .pre_execs
            .take()
            .ok_or_else(|| usage("the garbled session has not started"))?;
        let mut s = Setup {
            server_name,
            request_lens,
            request_pad_seed: Zeroizing::new(request_pad_seed),
            disclose,
            pre,
            req_execs: Vec::new(),
        };
        s.req_execs = register_requests(self.party()?, &s)?;

        // 1. The client random and ECDH shares committed at creation are revealed next.
        let (random, scalar, point) = self
            .share
            .take()
            .ok_or_else(|| usage("the ECDH share was not committed"))?;
        Ok(State::Commit(Box::new(Keying {
            s,
            random,
            scalar,
            point,
        })))
    }

    /// Makes sure the executions of the version the server chose are registered (they are
    /// if the session prepared for it; else they are registered now, and the ones that were
    /// are skipped).
    fn choose_version(&mut self, s: &mut Setup, tls13: bool) -> Result<(), NodeError> {
        if matches!(s.pre, Pre::V13 { .. }) == tls13 {
            return Ok(());
        }
        let party = self.party()?;
        // The other version's executions are given up (every node does the same: they all
        // read the same ServerHello), so the evaluator does not wait for them.
        let skipped = match s.pre {
            Pre::V12 { e_hs, e_sf } => [e_hs, e_sf],
            Pre::V13 { e_hs, e_app } => [e_hs, e_app],
        };
        for e in skipped.into_iter().chain(s.req_execs.iter().map(|r| r.0)) {
            party.skip(e).map_err(mpc_err)?;
        }
        s.pre = register_pre(party, tls13)?;
        s.req_execs = register_requests(party, s)?;
        Ok(())
    }

    fn on_reveal(
        &mut self,
        k: Keying,
        commits: &BTreeMap<PartyId, [u8; 32]>,
        got: [(PartyId, Ctl); 2],
    ) -> Result<State, NodeError> {
        let mut randoms = [[0u8; 32]; 3];
        randoms[self.id as usize] = k.random;
        let mine = p256_point(&k.point).ok_or_else(|| usage("own ECDH share"))?;
        let mut client_pub = ProjectivePoint::from(mine);
        for (node, m) in got {
            let (Some(c), Ctl::Reveal { random, point }) = (commits.get(&node), m) else {
                return Err(NodeError::Inconsistent("ECDH commitments"));
            };
            if !bool::from(commitment(node, &random, &point).ct_eq(c)) {
                return Err(NodeError::PeerAborted {
                    node,
                    reason: Failure::new(FailureCode::Mpc, "opened a different commitment"),
                });
            }
            let p = p256_point(&point).ok_or(NodeError::PeerAborted {
                node,
                reason: Failure::new(FailureCode::Mpc, "invalid ECDH share"),
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
        let client_pub = client_pub
            .to_affine()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        // 2. The ClientHello, offering TLS 1.3 (with the committee's key share) and 1.2;
        // the server's answer comes back through the client.
        let hello = codec::client_hello_offering(
            &client_random,
            &k.s.server_name,
            Some(codec::Tls13Offer {
                key_share: Some(&client_pub),
                cookie: None,
            }),
        );
        self.send_client(&ToClient::ClientHello(OneCopy::from_node(
            self.id,
            hello.clone(),
        )));
        self.timings.prepare = self.now - self.since;
        Ok(State::ServerHello(Box::new(Hello {
            s: k.s,
            scalar: k.scalar,
            client_random,
            client_pub,
            client_hello: hello,
        })))
    }

    fn on_flight(
        &mut self,
        h: Hello,
        flight: Flight,
        transcript: Sha256,
    ) -> Result<State, NodeError> {
        let server_point = p256_point(&flight.ske.point)
            .filter(|p| !bool::from(p.is_identity()))
            .ok_or_else(|| unexpected("invalid server ECDH public key"))?;
        // 3. Pre-master-secret shares, keys, client Finished.
        let my_ecdh = (ProjectivePoint::from(server_point) * *h.scalar).to_affine();
        let m = ectf_machine(self.id, &my_ecdh, &mut self.rng)
            .map_err(|a| NodeError::Mpc(SessionError::Arith(a)))?;
        self.start_arith(ch::ECTF, Arith::Ectf(Box::new(m)))?;
        Ok(State::Ectf(Box::new(Agreed {
            s: h.s,
            client_random: h.client_random,
            client_pub: h.client_pub,
            flight,
            transcript,
        })))
    }

    /// The handshake execution's inputs once ECtF is done: this node's additive share of the
    /// (EC)DHE secret (group `id`) and, from parties 0 and 1, their copy of the execution's
    /// public input (group 3 + `id`; both versions' handshake executions lay them out so).
    fn dhe_inputs(&mut self, m: Arith, public: &[u8]) -> Result<Inputs, NodeError> {
        let Arith::Ectf(mut m) = m else {
            return Err(usage("GHASH powers instead of ECtF"));
        };
        self.timings.ectf = self.now - self.since;
        let dhe = m
            .take_output()
            .ok_or_else(|| usage("ECtF output already taken"))?
            .map_err(|e| unexpected(format!("ECDH: {e}")))?;
        let mut inputs = Inputs::none().value(self.id as usize, fp_to_bits(&dhe.value()).to_vec());
        if self.id < 2 {
            inputs = inputs.value(3 + self.id as usize, bytes_to_bits(public));
        }
        Ok(inputs)
    }

    fn on_ectf(&mut self, mut a: Agreed, m: Arith) -> Result<State, NodeError> {
        // The client's handshake messages before ChangeCipherSpec: an empty Certificate if
        // the server asked for one, then the ClientKeyExchange (one record carries both).
        let mut cke = Vec::new();
        if a.flight.certificate_requested {
            cke.extend(codec::empty_certificate());
        }
        cke.extend(codec::client_key_exchange(&a.client_pub));
        a.transcript.update(&cke);
        let session_hash: [u8; 32] = a.transcript.clone().finalize().into();
        let public = [
            &session_hash[..],
            &a.flight.hello.random[..],
            &a.client_random[..],
        ]
        .concat();
        let inputs = self.dhe_inputs(m, &public)?;
        self.since = self.now;
        self.start_exec(a.s.hs12()?.0, inputs)?;
        Ok(State::Handshake(Box::new(a), cke))
    }

    fn on_handshake(
        &mut self,
        a: Agreed,
        cke: Vec<u8>,
        out: &[GroupOutput],
    ) -> Result<State, NodeError> {
        self.timings.handshake_exec = self.now - self.since;
        let pubout = value(out, hs_out::PUBLIC)?;
        if pubout[0] {
            return Err(NodeError::Inconsistent("the handshake's public inputs"));
        }
        let cvd: [u8; 12] = bits_to_bytes(&pubout[1..97])
            .try_into()
            .map_err(|_| usage("verify_data width"))?;
        let fin_ct = bits_to_bytes(&pubout[97..225]);
        let shares = value(out, hs_out::SHARES)?;
        let fin_mask = Zeroizing::new(block(&shares[0..128]));
        let h_client = Zeroizing::new(block(&shares[128..256]));
        let h_server = Zeroizing::new(block(&shares[256..384]));
        let needed =
            a.s.request_lens
                .iter()
                .map(|&l| blocks_for(l) + 2)
                .max()
                .unwrap_or(0)
                .max(3);
        // Both directions' GHASH powers at once (their rounds overlap); the client Finished
        // goes out as soon as the client-write ones are done.
        let m = self.ghash_machine(*h_client, needed)?;
        self.start_arith(ch::GHASH_CLIENT, m)?;
        let m = self.ghash_machine(*h_server, MAX_POWERS)?;
        self.start_arith(ch::GHASH_SERVER, m)?;
        Ok(State::ClientPowers(Box::new(Keys {
            a,
            cke,
            cvd,
            fin_ct,
            fin_mask,
        })))
    }

    fn ghash_machine(&mut self, h_share: [u8; 16], count: usize) -> Result<Arith, NodeError> {
        let prog = GhashKey::new(self.id, h_share, count).map_err(usage)?;
        let m = Machine::new(self.id, prog, &mut self.rng)
            .map_err(|a| NodeError::Mpc(SessionError::Arith(a)))?;
        Ok(Arith::Ghash(Box::new(m)))
    }

    fn on_client_powers(&mut self, k: Keys, m: Arith) -> Result<State, NodeError> {
        let Arith::Ghash(mut m) = m else {
            return Err(usage("ECtF instead of GHASH powers"));
        };
        self.timings.ghash = self.now - self.since;
        let cpow = m
            .take_output()
            .ok_or_else(|| usage("GHASH powers already taken"))?;
        let aad = gcm_aad(0, ContentType::Handshake, 16);
        let tag_share = ghash_tag(&cpow, &aad, &k.fin_ct, &k.fin_mask)?;
        self.send_client(&ToClient::ClientFinished {
            flight: OneCopy::from_node(self.id, (k.cke, k.fin_ct)),
            tag_share,
        });
        let Agreed {
            s,
            client_random,
            flight,
            mut transcript,
            ..
        } = k.a;
        transcript.update(codec::finished(&k.cvd));
        let hash_through_client_finished: [u8; 32] = transcript.clone().finalize().into();
        // 4. The server's ChangeCipherSpec and Finished.
        Ok(State::ServerPowers(Box::new(Finishing {
            s,
            client_random,
            flight,
            transcript,
            hash_through_client_finished,
            cpow,
        })))
    }

    fn on_finished_tag(
        &mut self,
        mut f: Finishing,
        rec: FinishedRecord,
        got: [(PartyId, Ctl); 2],
    ) -> Result<State, NodeError> {
        let mine = rec.mine.ok_or_else(|| usage("no tag share"))?;
        let tag = sum_tags(&[mine], got)?;
        let frag = split_gcm(&rec.record)?;
        if !bool::from(tag[0].ct_eq(&frag.tag)) {
            return Err(NodeError::BadTag("the server's Finished".into()));
        }
        let plain = xor16(
            &block(&bytes_to_bits(&rec.plain_keystream)),
            frag.ciphertext,
        );
        if !bool::from(plain.ct_eq(&codec::finished(&rec.svd))) {
            return Err(NodeError::BadFinished);
        }
        f.transcript.update(plain);
        let handshake_hash: [u8; 32] = f.transcript.finalize().into();
        // 5. The request.
        self.since = self.now;
        let tls = Tls::V12 {
            e_hs: f.s.hs12()?.0,
        };
        let app = App {
            s: f.s,
            tls,
            client_random: f.client_random,
            suite: f.flight.suite,
            cert_chain_hash: cert_chain_hash(&f.flight.certs),
            handshake_hash,
            cpow: f.cpow,
            spow: rec.spow,
        };
        self.start_request(app)
    }

    /// The handshake is done: the request executions start.
    fn start_request(&mut self, app: App) -> Result<State, NodeError> {
        let run = RequestRun {
            request_pad: app.s.request_pad(app.tls.is13()),
            next: 0,
            pad_at: 0,
            masked: Vec::new(),
            masks: Vec::new(),
            types: Vec::new(),
        };
        self.start_request_exec(Box::new(app), Box::new(run))
    }

    /// Starts request execution `run.next`.
    fn start_request_exec(
        &mut self,
        app: Box<App>,
        mut run: Box<RequestRun>,
    ) -> Result<State, NodeError> {
        let Some((exec, blocks, shape)) = app.s.req_execs.get(run.next) else {
            return Err(usage("no such request execution"));
        };
        let (exec, lay) = (*exec, shape.layout());
        let mut inputs = Inputs::none();
        if self.id < 2 {
            // Our records' explicit nonces are their sequence numbers (TLS 1.2: record i has
            // i + 1; TLS 1.3: i, and the nonce takes it in place of the explicit nonce).
            let first = app.tls.first_seq();
            let suffix = suffix_bytes(blocks, |r| (first + r as u64).to_be_bytes());
            let mut bits = bytes_to_bits(&suffix);
            // TLS 1.3: each typed block reveals the byte over its record's content type (the
            // last byte of content length + 1).
            for blk in &blocks[shape.public..shape.public + shape.typed] {
                let len = app.s.request_lens.get(blk.record).copied().unwrap_or(0);
                bits.extend(byte_position(len % 16));
            }
            inputs = inputs.value(1 + self.id as usize, bits);
        }
        if let Some(g) = lay.client {
            let w = shape.client * 128;
            let pad = run
                .request_pad
                .get(run.pad_at..run.pad_at + w)
                .ok_or_else(|| usage("request pad too short"))?;
            inputs = inputs.client_pad(g, pad.to_vec());
            run.pad_at += w;
        }
        self.start_exec(exec, inputs)?;
        Ok(State::Request(app, run))
    }

    fn step_request(&mut self, app: Box<App>, mut run: Box<RequestRun>) -> Result<Step, NodeError> {
        let Some((exec, _, shape)) = app.s.req_execs.get(run.next) else {
            return Err(usage("no such request execution"));
        };
        let (exec, lay) = (*exec, shape.layout());
        let Some(out) = self.exec_output(exec)? else {
            return Ok(Step::Wait(State::Request(app, run)));
        };
        if value(&out, lay.public)?[0] {
            return Err(NodeError::Inconsistent("the request's counter blocks"));
        }
        if let Some(g) = lay.client {
            run.masked.extend_from_slice(value(&out, g)?);
        }
        if let Some(g) = lay.shares {
            run.masks
                .extend(value(&out, g)?.chunks_exact(128).map(block));
        }
        if shape.typed > 0 {
            let bytes = value(&out, lay.public)?.get(1..).unwrap_or_default();
            run.types
                .extend(bytes.chunks_exact(8).map(|b| bits_to_bytes(b)[0]));
        }
        run.next += 1;
        if run.next < app.s.req_execs.len() {
            return Ok(Step::Moved(self.start_request_exec(app, run)?));
        }
        self.timings.request_exec = self.now - self.since;
        self.send_client(&ToClient::RequestKeystream(OneCopy::from_node(
            self.id,
            pack_bits(&run.masked),
        )));
        Ok(Step::Moved(State::RequestCiphertext(
            app, run.masks, run.types,
        )))
    }

    fn on_request_ciphertext(
        &mut self,
        app: Box<App>,
        masks: &[[u8; 16]],
        types: &[u8],
        cts: Vec<Vec<u8>>,
    ) -> Result<State, NodeError> {
        let lens = app.s.record_lens(app.tls.is13());
        if cts.len() != lens.len() || cts.iter().zip(&lens).any(|(c, &l)| c.len() != l) {
            return Err(NodeError::Client(
                "request ciphertext does not match the announced lengths".into(),
            ));
        }
        // TLS 1.3: every request record ends with the application-data content type and no
        // padding, so the provider reads exactly the bytes the nodes commit to (a client
        // could otherwise hide bytes from the provider as padding, or send another type).
        if app.tls.is13() {
            if types.len() != cts.len() {
                return Err(usage("the request's content-type keystream is missing"));
            }
            for (i, (ct, k)) in cts.iter().zip(types).enumerate() {
                if ct.last().map(|c| c ^ k) != Some(ContentType::ApplicationData.byte()) {
                    return Err(NodeError::Client(format!(
                        "request record {} does not end with the application-data content type",
                        i + 1
                    )));
                }
            }
        }
        let mut sent_hash = Sha256::new();
        let mut tags = Vec::with_capacity(cts.len());
        for (i, (ct, mask)) in cts.iter().zip(masks).enumerate() {
            let seq = app.tls.first_seq() + i as u64;
            hash_record(&mut sent_hash, &seq.to_be_bytes(), ct);
            tags.push(ghash_tag(
                &app.cpow,
                &app.tls.aad(seq, ContentType::ApplicationData, ct.len()),
                ct,
                mask,
            )?);
        }
        self.send_client(&ToClient::RequestTags(tags));
        let tls13 = app.tls.is13();
        // 6. The response, until the server closes.
        Ok(State::Response(
            app,
            Box::new(Reading {
                sent_hash,
                request: cts,
                records: Vec::new(),
                app_records: 0,
                app_bytes: 0,
                relay_hash: Sha256::new(),
                received_hash: Sha256::new(),
                tags: TagRun {
                    tls13,
                    ..TagRun::default()
                },
            }),
        ))
    }

    fn on_response_agreed(
        &mut self,
        app: Box<App>,
        r: Reading,
        (eof, response_pad): (bool, Vec<u8>),
    ) -> Result<State, NodeError> {
        let width = match app.tls {
            Tls::V12 { .. } => OPENED_KEY_BITS,
            Tls::V13 { .. } => OPENED_KEY13_BITS,
        };
        let response_pad = unpack_bits(&response_pad, width)
            .ok_or_else(|| NodeError::Client("response pad has the wrong width".into()))?;
        let mut tags = r.tags;
        tags.queue_rest(&r.records);
        let b = Batches {
            sent_hash: r.sent_hash,
            request: r.request,
            records: r.records,
            eof,
            response_pad,
            tags,
            received_hash: r.received_hash,
        };
        Ok(State::ResponseBatches(app, Box::new(b)))
    }

    /// One move of the response's tag checks, if one can be made now: check a batch's
    /// opened tags once the peers' shares are in; open a batch's tags once its execution is
    /// out; or start the next batch. Returns whether it moved.
    fn step_tags(
        &mut self,
        app: &App,
        records: &mut [Relayed],
        t: &mut TagRun,
    ) -> Result<bool, NodeError> {
        // Tags being opened: wait for the peers' shares.
        if let Some((o, started)) = t.opening.take() {
            let Some(got) = self.ctl.take() else {
                t.opening = Some((o, started));
                return Ok(false);
            };
            let tags = sum_tags(&o.mine, got)?;
            for (&r, tag) in o.records.iter().zip(&tags) {
                let want = records
                    .get(r)
                    .map(|x| x.tag)
                    .ok_or_else(|| usage("no record"))?;
                if !bool::from(tag.ct_eq(&want)) {
                    return Err(NodeError::BadTag(format!("response record {}", r + 1)));
                }
            }
            let (public, typed) = o.public.split_at(o.shape.public * 128);
            // Alert records (kept whole): their first public keystream block.
            for (blk, ks) in o.blocks[..o.shape.public]
                .iter()
                .zip(public.chunks_exact(128))
            {
                let ks = bits_to_bytes(ks);
                let c = records
                    .get(blk.record)
                    .and_then(|x| x.record.ciphertext())
                    .filter(|c| c.len() >= 2)
                    .ok_or_else(|| usage("an alert record not kept"))?;
                t.alert = Some((blk.record, Alert::parse(&[c[0] ^ ks[0], c[1] ^ ks[1]])?));
            }
            // TLS 1.3: the records' inner content types, now that their tags verified.
            let typed_blocks = &o.blocks[o.shape.public..o.shape.public + o.shape.typed];
            for (blk, byte) in typed_blocks.iter().zip(typed.chunks_exact(8)) {
                let rec = records
                    .get_mut(blk.record)
                    .ok_or_else(|| usage("no record"))?;
                let inner = bits_to_bytes(byte)[0] ^ rec.last;
                rec.typ = match inner {
                    0x17 => ContentType::ApplicationData,
                    0x16 => ContentType::Handshake,
                    0x15 if rec.record.ciphertext_len() == 3 => {
                        // Its two bytes come next, in a batch of their own. The client
                        // cannot see that the provider closed: the nodes tell it.
                        t.plan.push_front(vec![Segment {
                            record: blk.record,
                            mask: false,
                            start: 0,
                            end: 2,
                        }]);
                        self.send_client(&ToClient::ServerClosing);
                        ContentType::Alert
                    }
                    0x15 => {
                        return Err(unexpected(format!(
                            "response record {}: an alert record of {} bytes",
                            blk.record + 1,
                            rec.record.ciphertext_len()
                        )))
                    }
                    0 => {
                        return Err(unexpected(format!(
                            "response record {} is padded (Tessera reads TLS 1.3 records \
                             without padding)",
                            blk.record + 1
                        )))
                    }
                    other => {
                        return Err(unexpected(format!(
                            "response record {} has content type {other}",
                            blk.record + 1
                        )))
                    }
                };
                rec.revealed = true;
            }
            self.timings.response_exec += self.now.saturating_duration_since(started);
            return Ok(true);
        }
        // A batch running: wait for its outputs, then open its tags.
        if let Some((exec, _, _, _)) = &t.current {
            let Some(out) = self.exec_output(*exec)? else {
                return Ok(false);
            };
            let (_, blocks, shape, started) = t.current.take().ok_or_else(|| usage("no batch"))?;
            let lay = shape.layout();
            let pubout = value(&out, lay.public)?;
            if pubout[0] {
                return Err(NodeError::Inconsistent("the response's explicit nonces"));
            }
            let masks: Vec<[u8; 16]> = match lay.shares {
                Some(g) => value(&out, g)?.chunks_exact(128).map(block).collect(),
                None => Vec::new(),
            };
            let first = shape.public + shape.typed;
            let masked: Vec<usize> = blocks[first..first + shape.masks]
                .iter()
                .map(|b| b.record)
                .collect();
            let mut mine = Vec::with_capacity(masks.len());
            for (&r, m) in masked.iter().zip(&masks) {
                let g = records
                    .get(r)
                    .map(|x| x.ghash)
                    .ok_or_else(|| usage("no record"))?;
                mine.push(xor16(&g, m));
            }
            self.send_ctl(&Ctl::Tags(mine.clone()));
            let public = pubout[1..].to_vec();
            t.opening = Some((
                Opening {
                    records: masked,
                    mine,
                    public,
                    blocks,
                    shape,
                },
                started,
            ));
            return Ok(true);
        }
        // The next batch.
        let Some(batch) = t.plan.pop_front() else {
            return Ok(false);
        };
        let (blocks, shape, positions) = if app.tls.is13() {
            batch_blocks13(records, &batch)?
        } else {
            let (blocks, shape) = batch_blocks(&planned(records), &batch);
            (blocks, shape, Vec::new())
        };
        let spec = app.tls.ctr_spec(false, shape)?;
        let lay = shape.layout();
        if lay.client.is_some() {
            return Err(usage("response keystream planned for the client"));
        }
        let exec = self.party()?.preprocess(spec).map_err(mpc_err)?;
        let mut inputs = Inputs::none();
        if self.id < 2 {
            let suffix = suffix_bytes(&blocks, |r| {
                records.get(r).map_or([0; 8], |x| x.record.explicit)
            });
            let mut bits = bytes_to_bits(&suffix);
            bits.extend(positions.iter().flat_map(|&p| byte_position(p)));
            inputs = inputs.value(1 + self.id as usize, bits);
        }
        self.start_exec(exec, inputs)?;
        t.current = Some((exec, blocks, shape, self.now));
        Ok(true)
    }

    /// The response's last tag checks once the provider closed, then the server write key
    /// opened to the client.
    fn step_batches(&mut self, app: Box<App>, mut b: Box<Batches>) -> Result<Step, NodeError> {
        use Step::{Moved, Wait};
        if !b.tags.idle() {
            let moved = self.step_tags(&app, &mut b.records, &mut b.tags)?;
            return Ok(if moved {
                Moved(State::ResponseBatches(app, b))
            } else {
                Wait(State::ResponseBatches(app, b))
            });
        }
        // Every record is committed and its tag verified: open the server write key to the
        // client (masked with its pads; each node sees only key ⊕ its pad share).
        if let Some((_, a)) = b.tags.alert.filter(|(_, a)| !a.is_close_notify()) {
            return Err(ServerError::ServerAlert {
                alert: a,
                stage: "the response",
            }
            .into());
        }
        // TLS 1.3: an alert ends the records (the provider sends nothing after it).
        let last = b.records.len().checked_sub(1);
        if let Some(r) = b
            .records
            .iter()
            .position(|x| x.typ == ContentType::Alert)
            .filter(|&r| Some(r) != last)
        {
            return Err(unexpected(format!(
                "records after the provider's closing alert (record {})",
                r + 1
            )));
        }
        let inputs = Inputs::none().client_pad(0, std::mem::take(&mut b.response_pad));
        self.since = self.now;
        // Registered only now: the engine garbles executions in order, and this one waits
        // for the client's pads.
        let (exec, group, kind) = app.tls.key(false);
        let spec = open_key_spec_for(exec, group, kind)?;
        let e_open = self.party()?.preprocess(spec).map_err(mpc_err)?;
        self.start_exec(e_open, inputs)?;
        Ok(Moved(State::OpenKey(app, b, e_open)))
    }

    fn on_response_verified(
        &mut self,
        app: Box<App>,
        b: Batches,
        masked_key: &[bool],
    ) -> Result<State, NodeError> {
        let App {
            s,
            tls,
            client_random,
            suite,
            cert_chain_hash,
            handshake_hash,
            ..
        } = *app;
        let last_is_alert = b
            .records
            .last()
            .is_some_and(|x| x.typ == ContentType::Alert);
        // TLS 1.2: the client saw the alert record's header; TLS 1.3: its content type was
        // revealed. Either way it is the last record and a close_notify (else it failed).
        let close_notify = last_is_alert && (tls.is13() || !b.eof);
        // The response: its application-data records (TLS 1.3: their content without the
        // content type byte).
        let response: Vec<CommittedRecord> = b
            .records
            .into_iter()
            .filter(|x| x.typ == ContentType::ApplicationData)
            .map(|x| x.record)
            .collect();
        let received_bytes: usize = response
            .iter()
            .map(|r| r.ciphertext_len() - usize::from(tls.is13()))
            .sum();
        let transcript = Transcript {
            server_name: s.server_name,
            time: self.cfg.time,
            tls_version: match tls {
                Tls::V12 { .. } => codec::TLS12,
                Tls::V13 { .. } => TLS13,
            },
            suite,
            cert_chain_hash,
            handshake_hash,
            sent_hash: b.sent_hash.finalize().into(),
            received_hash: b.received_hash.finalize().into(),
            sent_records: s.request_lens.len() as u32,
            sent_bytes: s.request_lens.iter().sum::<usize>() as u64,
            received_records: response.len() as u32,
            received_bytes: received_bytes as u64,
            close_notify,
        };
        self.send_client(&ToClient::Response {
            masked_key: OneCopy::from_node(self.id, pack_bits(masked_key)),
            transcript: OneCopy::from_node(self.id, transcript.clone()),
        });
        let first = tls.first_seq();
        let request = b
            .request
            .into_iter()
            .enumerate()
            .map(|(i, ciphertext)| {
                CommittedRecord::new((first + i as u64).to_be_bytes(), ciphertext)
            })
            .collect();
        let report = NodeReport {
            timings: self.timings,
            transcript,
            and_gates: self.and_gates,
            node_bytes_sent: 0,
            node_bytes_received: 0,
            session_nonce: client_random,
        };
        self.events.push_back(NodeEvent::Committed);
        Ok(State::Committed(Box::new(Done {
            tls,
            request,
            response,
            disclose: s.disclose,
            report,
        })))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::server_auth::Roots;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use std::time::Duration;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn node(id: PartyId, now: Instant) -> NodeSession<ChaCha20Rng> {
        let cfg = NodeConfig::new(Roots::default(), 1_900_000_000, TIMEOUT);
        NodeSession::new(id, cfg, ChaCha20Rng::seed_from_u64(1), now)
    }

    fn ctl(m: &Ctl) -> Vec<u8> {
        let mut b = postcard::to_stdvec(m).unwrap();
        b.push(ch::CONTROL);
        b
    }

    /// Everything the session queued: (peers told, messages to the client).
    fn drain(n: &mut NodeSession<ChaCha20Rng>) -> (Vec<(PartyId, Ctl)>, Vec<ToClient>) {
        let (mut peers, mut client) = (Vec::new(), Vec::new());
        while let Some(t) = n.poll_transmit() {
            match t {
                NodeTransmit::Peer { to, mut bytes } => match bytes.pop() {
                    Some(ch::CONTROL) => peers.push((to, postcard::from_bytes(&bytes).unwrap())),
                    // The garbled session starts with the session (seed commitment, tables).
                    Some(ch::GARBLED) => {}
                    c => panic!("a message on channel {c:?}"),
                },
                NodeTransmit::Client(b) => client.push(postcard::from_bytes(&b).unwrap()),
            }
        }
        (peers, client)
    }

    /// A node whose opening messages (its ECDH commitment to each peer) are already taken.
    fn fresh(id: PartyId, now: Instant) -> NodeSession<ChaCha20Rng> {
        let mut n = node(id, now);
        let (peers, client) = drain(&mut n);
        assert_eq!(peers.len(), 2, "a commitment to each peer");
        assert!(peers.iter().all(|(_, m)| matches!(m, Ctl::Commit(_))));
        assert!(client.is_empty());
        n
    }

    fn failed(n: &mut NodeSession<ChaCha20Rng>) -> NodeError {
        match n.poll_event() {
            Some(NodeEvent::Failed(e)) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_client_message_out_of_order_fails_and_tells_everyone() {
        let t = Instant::now();
        let mut n = fresh(1, t);
        let m = postcard::to_stdvec(&ToNode::RequestCiphertext(vec![vec![1]])).unwrap();
        n.handle_client(&m, t);
        let e = failed(&mut n);
        assert_eq!(e.code(), FailureCode::Client);
        assert!(e.to_string().contains("before Start"), "{e}");
        let (peers, client) = drain(&mut n);
        assert_eq!(peers.len(), 2, "both peers hear of it");
        assert!(peers
            .iter()
            .all(|(_, m)| matches!(m, Ctl::Abort(f) if f.code == FailureCode::Client)));
        assert!(matches!(&client[..], [ToClient::Error(f)] if f.code == FailureCode::Client));
        assert!(n.is_over() && n.poll_timeout().is_none());
        // Later input changes nothing.
        n.handle_client(&m, t);
        assert!(n.poll_event().is_none() && n.poll_transmit().is_none());
    }

    #[test]
    fn a_peers_abort_ends_the_session_without_an_echo() {
        let t = Instant::now();
        let mut n = fresh(0, t);
        let why = Failure::new(FailureCode::Provider, "the provider sent garbage");
        n.handle_peer(2, ctl(&Ctl::Abort(why.clone())), t);
        match failed(&mut n) {
            NodeError::PeerAborted { node: 2, reason } => assert_eq!(reason, why),
            e => panic!("{e}"),
        }
        let (peers, client) = drain(&mut n);
        assert!(peers.is_empty(), "a peer that stopped is not told to stop");
        assert!(matches!(&client[..], [ToClient::Error(f)] if f.code == FailureCode::Provider));
    }

    /// The relay node's forwarded copy waits at another node for the client's hash of it,
    /// but not without bound: a client that withholds its hashes cannot make a node hold
    /// the response.
    #[test]
    fn forwarded_bytes_wait_for_the_clients_hash_within_a_bound() {
        let t = Instant::now();
        let mut n = fresh(1, t);
        let chunk = |len: usize| {
            let mut b = vec![0x17; len];
            b.push(ch::RELAY);
            b
        };
        for _ in 0..MAX_RELAY_BACKLOG / (1 << 16) {
            n.handle_peer(RELAY_NODE, chunk(1 << 16), t);
        }
        assert!(
            n.poll_event().is_none(),
            "a backlog up to the bound is kept"
        );
        n.handle_peer(RELAY_NODE, chunk(1), t);
        let e = failed(&mut n);
        assert_eq!(e.code(), FailureCode::Client);
        assert!(e.to_string().contains("fell more than"), "{e}");
        // Only the relay node forwards.
        let mut n = fresh(1, t);
        n.handle_peer(2, chunk(10), t);
        assert_eq!(failed(&mut n).code(), FailureCode::Mpc);
    }

    /// A client that sends ahead of the protocol (here while the nodes exchange their
    /// commitments) is refused once its unread messages pass the bound.
    #[test]
    fn a_client_sending_ahead_is_refused_past_a_bound() {
        let t = Instant::now();
        let mut n = fresh(0, t);
        let start = ToNode::Start {
            server_name: "provider.test".into(),
            request_records: vec![100],
            request_pad_seed: [3; 32],
            disclose: false,
        };
        n.handle_client(&postcard::to_stdvec(&start).unwrap(), t);
        assert!(n.poll_event().is_none());
        let chunk = postcard::to_stdvec(&ToNode::ServerBytes(vec![0x16; 1 << 16])).unwrap();
        for _ in 0..MAX_CLIENT_BACKLOG / chunk.len() {
            n.handle_client(&chunk, t);
        }
        assert!(
            n.poll_event().is_none(),
            "a backlog up to the bound is kept"
        );
        n.handle_client(&chunk, t);
        let e = failed(&mut n);
        assert_eq!(e.code(), FailureCode::Client);
        assert!(e.to_string().contains("ahead of the session"), "{e}");
    }

    #[test]
    fn a_peer_cannot_run_two_steps_ahead() {
        let t = Instant::now();
        let mut n = node(0, t);
        n.handle_peer(1, ctl(&Ctl::Commit([1; 32])), t);
        n.handle_peer(1, ctl(&Ctl::Commit([2; 32])), t);
        assert!(n.poll_event().is_none(), "one step ahead is allowed");
        n.handle_peer(1, ctl(&Ctl::Commit([3; 32])), t);
        let e = failed(&mut n);
        assert!(e.to_string().contains("two steps ahead"), "{e}");
    }

    #[test]
    fn messages_from_no_peer_or_without_a_channel_are_refused() {
        let t = Instant::now();
        let mut n = node(0, t);
        n.handle_peer(0, ctl(&Ctl::Commit([1; 32])), t);
        assert_eq!(failed(&mut n).code(), FailureCode::Mpc);
        let mut n = node(0, t);
        n.handle_peer(1, Vec::new(), t);
        assert_eq!(failed(&mut n).code(), FailureCode::Mpc);
    }

    /// The garbled session begins with the session: garbler 0's seed commitment goes out
    /// before any client message, and the handshake is garbled as soon as the seed is set.
    #[test]
    fn garbling_starts_before_the_client_arrives() {
        let t = Instant::now();
        let mut n: Vec<_> = (0..3).map(|i| node(i, t)).collect();
        assert!(n.iter().all(|s| !s.preprocessed()));
        for _ in 0..50 {
            let mut moved = false;
            for i in 0..3 {
                while n[i].poll_work(t).is_some() {
                    moved = true;
                }
                while let Some(tx) = n[i].poll_transmit() {
                    moved = true;
                    let NodeTransmit::Peer { to, bytes } = tx else {
                        panic!("a message to a client that has not arrived");
                    };
                    n[to as usize].handle_peer(i as PartyId, bytes, t);
                }
            }
            if !moved {
                break;
            }
        }
        assert!(n.iter().all(NodeSession::preprocessed));
        assert!(
            n.iter_mut().all(|s| s.poll_event().is_none()),
            "nobody failed"
        );
        assert!(
            n.iter().all(|s| s.and_gates > 0 || s.id == 2),
            "the garblers garbled"
        );
    }

    #[test]
    fn time_alone_moves_a_silent_session_to_its_timeout() {
        let t = Instant::now();
        let mut n = node(2, t);
        assert_eq!(n.poll_timeout(), Some(t + TIMEOUT));
        n.handle_timeout(t + TIMEOUT - Duration::from_millis(1));
        assert!(n.poll_event().is_none());
        // An input pushes the deadline on.
        n.handle_peer(0, ctl(&Ctl::Commit([1; 32])), t + Duration::from_secs(1));
        assert_eq!(n.poll_timeout(), Some(t + Duration::from_secs(1) + TIMEOUT));
        n.handle_timeout(t + Duration::from_secs(1) + TIMEOUT);
        let e = failed(&mut n);
        assert_eq!(e.code(), FailureCode::Timeout);
        assert!(e.to_string().contains("the client"), "{e}");
    }
}
