//! The client's session as a deterministic state machine: no sockets, no clock. The driver
//! feeds it the provider's bytes ([`ClientSession::handle_provider`]), the nodes' messages
//! ([`ClientSession::handle_node`]) and the time, and carries out what it asks for
//! ([`ClientSession::poll_transmit`]: to a node, or to the provider).
//!
//! Its phases follow the connection: the ClientHello from the nodes goes to the provider;
//! the provider's flight goes to the nodes; the client Finished comes back; the request is
//! encrypted with the keystream the client unmasks itself, then tagged; the response is
//! relayed until the provider closes, and decrypted once every node has verified it. A node
//! output is taken only when all three nodes sent the same thing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mpc::client::ClientPads;
use mpc::spec::PartyId;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{
    apply_keystream, block_bits, unmask, xor_tags, ClientError, ClientOutput, ClientStats, Gather,
};
use crate::circuits::OPENED_KEY_BITS;
use crate::circuits13::OPENED_KEY13_BITS;
use crate::codec::{encode_record, gcm_aad, join_gcm, split_gcm, ContentType, MAX_FRAGMENT};
use crate::handshake13::selects_tls13;
use crate::net::LinkError;
use crate::proto::{
    keeps_whole, kept_records, pack_bits, relay_hash, Finished13, OneCopy, RecordCopy, RelayKind,
    ResponseRecords, ToClient, ToNode, Transcript, MAX_REQUEST_RECORDS, RELAY_NODE,
};
use crate::record13;
use crate::stream::{ServerEvent, ServerStream};

/// Something the client session asks its driver to send.
#[derive(Debug)]
pub enum ClientTransmit {
    /// One encoded [`ToNode`] message to a node.
    Node {
        /// The node.
        node: PartyId,
        /// The message.
        bytes: Vec<u8>,
    },
    /// Bytes for the provider's connection.
    Provider(Vec<u8>),
    /// The session is over: shut the provider's connection down.
    ProviderShutdown,
}

/// What became of the session.
#[derive(Debug)]
pub enum ClientEvent {
    /// The response, verified by every node, and its transcript.
    Done(Box<ClientOutput>),
    /// The session failed.
    Failed(ClientError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the nodes' ClientHello.
    Hello,
    /// Relaying the provider's first flight; waiting for the nodes' Finished.
    Flight,
    /// The client Finished is out; waiting for the nodes to check the provider's.
    AwaitFinished,
    /// The request is out; relaying the response.
    Data,
    /// The provider closed; waiting for the nodes to verify the response.
    Closed,
    /// A node's link is gone while the session still needed it: waiting a moment for a
    /// node's reason (a node that fails sends why, then closes; the client may notice the
    /// closed link before it has read the reason).
    Lost,
    /// Done or failed.
    Over,
}

impl Phase {
    fn waiting_for(self) -> &'static str {
        match self {
            Phase::Hello => "the nodes' ClientHello",
            Phase::Flight => "the provider's handshake or the nodes' Finished",
            Phase::AwaitFinished => "the provider's Finished to be verified",
            Phase::Data => "the provider's response",
            Phase::Closed | Phase::Over => "the nodes to verify the response",
            Phase::Lost => "a node's reason for closing its link",
        }
    }
}

/// The client's second flight as one node sends it: the handshake messages before
/// ChangeCipherSpec ([empty Certificate,] ClientKeyExchange) and the Finished ciphertext.
type FlightCopy = OneCopy<(Vec<u8>, Vec<u8>)>;

/// The phone's side of one MPC-TLS session, as a state machine. See the module doc.
pub struct ClientSession<R> {
    rng: R,
    timeout: Duration,
    start: Instant,
    deadline: Instant,
    phase: Phase,
    request: Vec<Zeroizing<Vec<u8>>>,
    /// The seeds of the nodes' pads for the request keystream (its width depends on the
    /// TLS version the server picks).
    seeds: Zeroizing<[[u8; 32]; 3]>,
    /// The server picked TLS 1.3.
    tls13: bool,
    /// TLS 1.3: how many encrypted records the server's flight took (the nodes say).
    flight13: Option<usize>,
    stream: ServerStream,
    /// The running hash of the provider's bytes sent to the relay node.
    relay_chain: [u8; 32],
    server_records: usize,
    /// The response's application-data records as relayed (explicit nonce, ciphertext,
    /// tag), sequence numbers 1, 2, …; TLS 1.3: every encrypted record (ciphertext, tag),
    /// the server's flight first.
    response: Vec<Vec<u8>>,
    server_hello_done_at: Option<Instant>,
    stats: ClientStats,
    hello: Gather<OneCopy<Vec<u8>>>,
    fin: Gather<(FlightCopy, [u8; 16])>,
    fin13: Gather<OneCopy<Finished13>>,
    closing: Gather<()>,
    req_ks: Gather<OneCopy<Vec<u8>>>,
    req_tags: Gather<Vec<[u8; 16]>>,
    response_from: Gather<(OneCopy<Vec<u8>>, OneCopy<Transcript>)>,
    request_cts: Vec<Vec<u8>>,
    resp_pads: Option<(ClientPads, usize)>,
    /// In [`Phase::Lost`]: the error the session ends with if no node's reason comes.
    lost: Option<ClientError>,
    out: VecDeque<ClientTransmit>,
    events: VecDeque<ClientEvent>,
}

/// How long the client waits, once a node's link is gone, for a node to say why: its reason
/// is already on the way or it is not coming.
fn lost_grace(timeout: Duration) -> Duration {
    timeout.min(Duration::from_secs(2))
}

impl<R> std::fmt::Debug for ClientSession<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("phase", &self.phase)
            .finish()
    }
}

/// Decrypts and authenticates the response's records with the server write key the nodes
/// opened (`key`: AES key then implicit nonce). A record that does not authenticate means the
/// nodes opened another key than the one the provider used: they verified every tag in MPC
/// before opening it, so at least one of them deviated.
fn decrypt_response(key: &[u8], records: &[Vec<u8>]) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::KeyInit;
    let (k, iv) = key
        .split_at_checked(16)
        .filter(|(_, iv)| iv.len() == 4)
        .ok_or(ClientError::Disagree("the opened key's width"))?;
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(k)
        .map_err(|_| ClientError::Disagree("the opened key's width"))?;
    let mut plain = Zeroizing::new(Vec::new());
    for (i, payload) in records.iter().enumerate() {
        let f = split_gcm(payload)?;
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(iv);
        nonce[4..].copy_from_slice(&f.explicit);
        let aad = gcm_aad(
            1 + i as u64,
            ContentType::ApplicationData,
            f.ciphertext.len(),
        );
        let mut buf = Zeroizing::new(f.ciphertext.to_vec());
        cipher
            .decrypt_in_place_detached(
                (&nonce).into(),
                &aad,
                &mut buf,
                aes_gcm::Tag::from_slice(&f.tag),
            )
            .map_err(|_| {
                ClientError::Disagree("the response: the opened key does not decrypt it")
            })?;
        plain.extend_from_slice(&buf);
    }
    Ok(plain)
}

/// The response records' lengths and the records a node keeps only the digest of (past
/// [`KEPT_RESPONSE_BYTES`](crate::proto::KEPT_RESPONSE_BYTES)), for the client to send
/// again if a computation after the commit needs them.
/// The relayed records are taken over in place (explicit nonce and tag cut off).
fn response_records(records: Vec<Vec<u8>>) -> Result<ResponseRecords, ClientError> {
    let mut lens = Vec::with_capacity(records.len());
    for p in &records {
        lens.push(split_gcm(p)?.ciphertext.len());
    }
    let kept = kept_records(lens.iter().copied());
    let mut unkept = Vec::with_capacity(records.len() - kept);
    for ((i, mut p), &len) in records.into_iter().enumerate().zip(&lens).skip(kept) {
        p.drain(..crate::codec::EXPLICIT_NONCE);
        p.truncate(len);
        unkept.push(RecordCopy {
            index: i as u32,
            ciphertext: p,
        });
    }
    Ok(ResponseRecords { lens, unkept })
}

/// TLS 1.3: decrypts the records after the server's flight with the server application key
/// and IV the nodes opened (`key`: key then IV, sequence numbers from 0), keeps the
/// application data (post-handshake messages are left out, a closing alert must be last), and
/// takes over the records a node keeps only the digest of, by the nodes' rule
/// ([`keeps_whole`]).
fn decrypt_response13(
    key: &[u8],
    records: Vec<Vec<u8>>,
) -> Result<(Zeroizing<Vec<u8>>, ResponseRecords), ClientError> {
    let (k, iv) = key
        .split_at_checked(16)
        .filter(|(_, iv)| iv.len() == 12)
        .ok_or(ClientError::Disagree("the opened key's width"))?;
    let mut kk = Zeroizing::new([0u8; 16]);
    kk.copy_from_slice(k);
    let mut ivv = Zeroizing::new([0u8; 12]);
    ivv.copy_from_slice(iv);
    let mut plain = Zeroizing::new(Vec::new());
    let mut out = ResponseRecords::default();
    let mut total = 0usize;
    let n = records.len();
    for (i, mut payload) in records.into_iter().enumerate() {
        let (typ, content) = record13::open(&kk, &ivv, i as u64, &payload).map_err(|_| {
            ClientError::Disagree("the response: the opened key does not decrypt it")
        })?;
        let content = Zeroizing::new(content);
        let len = payload.len() - record13::TAG;
        total = total.saturating_add(len);
        match typ {
            0x17 => {
                plain.extend_from_slice(&content);
                let index = out.lens.len() as u32;
                out.lens.push(len - 1);
                if !keeps_whole(total, len, true) {
                    payload.truncate(len);
                    out.unkept.push(RecordCopy {
                        index,
                        ciphertext: payload,
                    });
                }
            }
            0x16 => {}
            0x15 if i + 1 == n => {}
            _ => return Err(ClientError::Disagree("the response records' content types")),
        }
    }
    Ok((plain, out))
}

/// The value of a message every node sends the same, or [`ClientError::Disagree`].
fn agree<T: serde::Serialize + PartialEq>(
    copies: [OneCopy<T>; 3],
    what: &'static str,
) -> Result<T, ClientError> {
    OneCopy::agree(copies).ok_or(ClientError::Disagree(what))
}

impl<R: RngCore + CryptoRng> ClientSession<R> {
    /// A session that will send `request` (split into records of at most 16 KiB) to
    /// `server_name`; the Start messages for the nodes are queued. With `keep_open`, the
    /// nodes are told to keep the committed session open for a computation after the
    /// response (a disclosure).
    pub fn new(
        server_name: &str,
        request: &[u8],
        timeout: Duration,
        keep_open: bool,
        mut rng: R,
        now: Instant,
    ) -> Result<Self, ClientError> {
        if request.is_empty() || request.len() > MAX_REQUEST_RECORDS * MAX_FRAGMENT {
            return Err(ClientError::Request(request.len()));
        }
        let request: Vec<Zeroizing<Vec<u8>>> = request
            .chunks(MAX_FRAGMENT)
            .map(|c| Zeroizing::new(c.to_vec()))
            .collect();
        // One seed per node: each node gets 32 bytes instead of its whole pad.
        let mut seeds = Zeroizing::new([[0u8; 32]; 3]);
        for s in seeds.iter_mut() {
            rng.fill_bytes(s);
        }
        let node_seeds = *seeds;
        let mut s = ClientSession {
            rng,
            timeout,
            start: now,
            deadline: now + timeout,
            phase: Phase::Hello,
            request,
            seeds,
            tls13: false,
            flight13: None,
            stream: ServerStream::new(),
            relay_chain: [0; 32],
            server_records: 0,
            response: Vec::new(),
            server_hello_done_at: None,
            stats: ClientStats::default(),
            hello: Gather::new(),
            fin: Gather::new(),
            fin13: Gather::new(),
            closing: Gather::new(),
            req_ks: Gather::new(),
            req_tags: Gather::new(),
            response_from: Gather::new(),
            request_cts: Vec::new(),
            resp_pads: None,
            lost: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
        };
        for node in 0..3u8 {
            let m = ToNode::Start {
                server_name: server_name.to_string(),
                request_records: s.request.iter().map(|c| c.len() as u32).collect(),
                request_pad_seed: node_seeds[node as usize],
                disclose: keep_open,
            };
            s.send(node, &m)?;
        }
        Ok(s)
    }

    /// Whether the session wants the provider's bytes now (after the ClientHello went out,
    /// until the provider closed).
    pub fn wants_provider_bytes(&self) -> bool {
        matches!(
            self.phase,
            Phase::Flight | Phase::AwaitFinished | Phase::Data
        )
    }

    /// Whether the session has ended.
    pub fn is_over(&self) -> bool {
        self.phase == Phase::Over
    }

    /// Bytes read from the provider; an empty slice is the end of its stream.
    pub fn handle_provider(&mut self, bytes: &[u8], now: Instant) {
        if self.is_over() || self.phase == Phase::Lost {
            return;
        }
        self.deadline = now + self.timeout;
        let r = self.on_provider(bytes, now);
        self.after(r);
    }

    /// One encoded [`ToClient`] message from node `node`.
    pub fn handle_node(&mut self, node: PartyId, bytes: &[u8], now: Instant) {
        if self.is_over() {
            return;
        }
        self.stats.bytes_down += bytes.len() as u64;
        let m = postcard::from_bytes::<ToClient>(bytes);
        if self.phase == Phase::Lost {
            // Only a node's reason matters now; the deadline stays.
            if let Ok(ToClient::Error(reason)) = m {
                self.after(Err(ClientError::Node { node, reason }));
            }
            return;
        }
        self.deadline = now + self.timeout;
        let r = match m {
            Ok(m) => self.on_node(node, m, now),
            Err(_) => Err(ClientError::Link(LinkError::Decode("node"))),
        };
        self.after(r);
    }

    /// Node `node`'s link ended (its stream closed, or a send to it failed). A node that has
    /// sent the response may close; if the session still needed it, it waits a moment for a
    /// node's reason (see [`Phase::Lost`]) and otherwise fails with this.
    pub fn handle_node_closed(&mut self, node: PartyId, now: Instant) {
        if self.is_over() || self.response_from.has(node) {
            return;
        }
        if self.phase != Phase::Lost {
            self.phase = Phase::Lost;
            self.lost = Some(ClientError::Link(LinkError::NodeClosed(node)));
            self.deadline = now + lost_grace(self.timeout);
        }
    }

    /// The links to the nodes or the provider's connection failed.
    pub fn handle_error(&mut self, e: ClientError) {
        if self.is_over() {
            return;
        }
        // Once a node is gone, the links ending is expected: keep the first cause.
        let e = self.lost.take().unwrap_or(e);
        self.after(Err(e));
    }

    /// Tells the session the time; past [`ClientSession::poll_timeout`] it fails.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.is_over() && now >= self.deadline {
            let e = match self.lost.take() {
                Some(e) => e,
                None => ClientError::Timeout(self.timeout, self.phase.waiting_for()),
            };
            self.after(Err(e));
        }
    }

    /// When the session next needs [`ClientSession::handle_timeout`]; `None` once over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.is_over()).then_some(self.deadline)
    }

    /// The next thing to send.
    pub fn poll_transmit(&mut self) -> Option<ClientTransmit> {
        self.out.pop_front()
    }

    /// The next thing that became of the session.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn after(&mut self, r: Result<(), ClientError>) {
        if let Err(e) = r {
            self.phase = Phase::Over;
            self.events.push_back(ClientEvent::Failed(e));
        }
    }

    fn send(&mut self, node: PartyId, m: &ToNode) -> Result<(), ClientError> {
        let bytes = postcard::to_stdvec(m).map_err(|_| LinkError::Decode("client"))?;
        self.stats.bytes_up += bytes.len() as u64;
        self.out.push_back(ClientTransmit::Node { node, bytes });
        Ok(())
    }

    /// Sends `whole` to the relay node only, which forwards `chunk` (its payload as the
    /// relay node will forward it); the others get the chunk's length and the client's
    /// running hash after it, to check the forwarded copy.
    fn upload_once(
        &mut self,
        whole: ToNode,
        chunk: &[u8],
        kind: RelayKind,
    ) -> Result<(), ClientError> {
        self.relay_chain = relay_hash(&self.relay_chain, chunk);
        let relayed = ToNode::Relayed {
            kind,
            len: chunk.len() as u32,
            hash: self.relay_chain,
        };
        for node in 0..3u8 {
            self.send(node, if node == RELAY_NODE { &whole } else { &relayed })?;
        }
        Ok(())
    }

    fn on_provider(&mut self, bytes: &[u8], now: Instant) -> Result<(), ClientError> {
        if !self.wants_provider_bytes() {
            if bytes.is_empty() {
                return Err(ClientError::Closed("before the handshake started"));
            }
            return Err(ClientError::Codec(crate::codec::CodecError::Truncated(
                "provider bytes before the ClientHello",
            )));
        }
        let mut closed_by = None;
        if bytes.is_empty() {
            closed_by = Some(true);
        } else {
            self.upload_once(
                ToNode::ServerBytes(bytes.to_vec()),
                bytes,
                RelayKind::ServerBytes,
            )?;
            self.stream.push(bytes);
            while let Some(ev) = self.stream.next_event()? {
                match ev {
                    ServerEvent::Handshake(m) => {
                        if m.first() == Some(&crate::codec::hs::SERVER_HELLO_DONE) {
                            self.server_hello_done_at = Some(now);
                        }
                        if selects_tls13(&m) {
                            // The nodes check the ServerHello; the client only follows it.
                            self.tls13 = true;
                            self.server_hello_done_at = Some(now);
                            self.stream.expect_tls13()?;
                        }
                    }
                    ServerEvent::Alert(_) => closed_by = Some(false),
                    ServerEvent::ChangeCipherSpec => {}
                    ServerEvent::Encrypted { payload, .. } if self.tls13 => {
                        // Its content type is inside: every record is kept until the
                        // nodes have opened the key.
                        record13::split(&payload, 0)?;
                        self.response.push(payload);
                    }
                    ServerEvent::Encrypted { typ, payload } => {
                        self.server_records += 1;
                        // The first encrypted record is the server's Finished.
                        if self.server_records == 1 {
                            continue;
                        }
                        match typ {
                            ContentType::ApplicationData => {
                                split_gcm(&payload)?;
                                self.response.push(payload)
                            }
                            _ => closed_by = Some(false),
                        }
                    }
                }
                if closed_by.is_some() {
                    break;
                }
            }
        }
        if let Some(eof) = closed_by {
            self.report_closed(eof)?;
        }
        Ok(())
    }

    /// The provider closed (`eof`: its stream ended; else it sent an alert): tells the
    /// nodes, which judge whether this was a proper close, with the pads for the key they
    /// open next.
    fn report_closed(&mut self, eof: bool) -> Result<(), ClientError> {
        let width = if self.tls13 {
            OPENED_KEY13_BITS
        } else {
            OPENED_KEY_BITS
        };
        let pads = ClientPads::random(width, &mut self.rng);
        for node in 0..3u8 {
            let m = ToNode::Closed {
                eof,
                response_pad: pack_bits(&pads.for_node(node)),
            };
            self.send(node, &m)?;
        }
        self.resp_pads = Some((pads, width));
        self.phase = Phase::Closed;
        Ok(())
    }

    fn on_node(&mut self, node: PartyId, m: ToClient, now: Instant) -> Result<(), ClientError> {
        match m {
            ToClient::Error(reason) => Err(ClientError::Node { node, reason }),
            ToClient::After(_) => Err(ClientError::Protocol {
                node,
                what: "an after-close message before the response".into(),
            }),
            ToClient::ClientHello(ch) => {
                self.hello.put(node, ch, "ClientHello")?;
                if let Some(all) = self.hello.take() {
                    let hello = agree(all, "the ClientHello")?;
                    self.out.push_back(ClientTransmit::Provider(encode_record(
                        ContentType::Handshake,
                        &hello,
                    )));
                    self.phase = Phase::Flight;
                }
                Ok(())
            }
            ToClient::ClientFinished { flight, tag_share } => {
                self.fin.put(node, (flight, tag_share), "Finished")?;
                if let Some(all) = self.fin.take() {
                    let tag = xor_tags(&all.each_ref().map(|x| x.1));
                    let (cke, fin_ct) = agree(all.map(|x| x.0), "the client Finished")?;
                    let flight = [
                        encode_record(ContentType::Handshake, &cke),
                        encode_record(ContentType::ChangeCipherSpec, &[1]),
                        encode_record(
                            ContentType::Handshake,
                            &join_gcm(&0u64.to_be_bytes(), &fin_ct, &tag),
                        ),
                    ]
                    .concat();
                    self.out.push_back(ClientTransmit::Provider(flight));
                    if let Some(t) = self.server_hello_done_at {
                        self.stats.server_visible_gap = now - t;
                    }
                    self.phase = Phase::AwaitFinished;
                }
                Ok(())
            }
            ToClient::ClientFinished13(f) => {
                self.fin13.put(node, f, "Finished")?;
                if let Some(all) = self.fin13.take() {
                    let f = agree(all, "the client Finished")?;
                    if !self.tls13 {
                        return Err(ClientError::Protocol {
                            node,
                            what: "a TLS 1.3 Finished in a TLS 1.2 session".into(),
                        });
                    }
                    // The middlebox-compatibility ChangeCipherSpec goes first (RFC 8446
                    // §D.4: the ClientHello had a legacy session id).
                    let mut flight = encode_record(ContentType::ChangeCipherSpec, &[1]);
                    flight.extend(f.records);
                    self.out.push_back(ClientTransmit::Provider(flight));
                    self.flight13 = Some(f.server_records as usize);
                    if let Some(t) = self.server_hello_done_at {
                        self.stats.server_visible_gap = now - t;
                    }
                    self.phase = Phase::AwaitFinished;
                }
                Ok(())
            }
            ToClient::ServerClosing => {
                self.closing.put(node, (), "the provider's close")?;
                if self.closing.take().is_some() && self.phase == Phase::Data {
                    self.report_closed(false)?;
                }
                Ok(())
            }
            ToClient::RequestKeystream(b) => {
                self.req_ks.put(node, b, "the request keystream")?;
                if let Some(all) = self.req_ks.take() {
                    self.stats.handshake = now - self.start;
                    let masked = agree(all, "the masked keystream")?;
                    // TLS 1.3: each record's plaintext ends with its content type.
                    let records: Vec<Zeroizing<Vec<u8>>> = self
                        .request
                        .iter()
                        .map(|r| {
                            let mut p = Zeroizing::new(Vec::with_capacity(r.len() + 1));
                            p.extend_from_slice(r);
                            if self.tls13 {
                                p.push(ContentType::ApplicationData.byte());
                            }
                            p
                        })
                        .collect();
                    let bits = block_bits(records.iter().map(|r| r.len()));
                    let pads = ClientPads::from_seeds(&self.seeds, bits);
                    let ks = unmask(&pads, masked, bits)?;
                    let records: Vec<&[u8]> = records.iter().map(|r| r.as_slice()).collect();
                    self.request_cts = apply_keystream(&records, &ks)
                        .ok_or(ClientError::Disagree("the request keystream's length"))?;
                    // The relay node forwards the encoding it receives.
                    let enc = postcard::to_stdvec(&self.request_cts)
                        .map_err(|_| LinkError::Decode("client"))?;
                    let whole = ToNode::RequestCiphertext(self.request_cts.clone());
                    self.upload_once(whole, &enc, RelayKind::RequestCiphertext)?;
                    self.phase = Phase::Data;
                }
                Ok(())
            }
            ToClient::RequestTags(t) => {
                if t.len() != self.request_cts.len() {
                    return Err(ClientError::Protocol {
                        node,
                        what: "wrong number of tag shares".into(),
                    });
                }
                self.req_tags.put(node, t, "the request tags")?;
                if let Some(all) = self.req_tags.take() {
                    let mut out = Vec::new();
                    for (i, ct) in self.request_cts.iter().enumerate() {
                        let tag = xor_tags(&all.each_ref().map(|t| t[i]));
                        let payload = if self.tls13 {
                            [ct.as_slice(), &tag].concat()
                        } else {
                            join_gcm(&(1 + i as u64).to_be_bytes(), ct, &tag)
                        };
                        out.extend(encode_record(ContentType::ApplicationData, &payload));
                    }
                    self.out.push_back(ClientTransmit::Provider(out));
                }
                Ok(())
            }
            ToClient::Response {
                masked_key,
                transcript,
            } => {
                self.response_from
                    .put(node, (masked_key, transcript), "the response")?;
                if let Some(all) = self.response_from.take() {
                    let [a, b, c] = all;
                    let transcript = agree([a.1, b.1, c.1], "the transcript")?;
                    let masked = agree([a.0, b.0, c.0], "the opened key")?;
                    let Some((pads, width)) = &self.resp_pads else {
                        return Err(ClientError::Protocol {
                            node,
                            what: "a response before the close".into(),
                        });
                    };
                    let key = unmask(pads, masked, *width)?;
                    let (plain, records) = if self.tls13 {
                        let flight = self.flight13.ok_or(ClientError::Protocol {
                            node,
                            what: "a response before the client Finished".into(),
                        })?;
                        let mut all = std::mem::take(&mut self.response);
                        if all.len() < flight {
                            return Err(ClientError::Disagree("the server's flight records"));
                        }
                        all.drain(..flight);
                        decrypt_response13(&key, all)?
                    } else {
                        let plain = decrypt_response(&key, &self.response)?;
                        (plain, response_records(std::mem::take(&mut self.response))?)
                    };
                    self.stats.total = now - self.start;
                    self.out.push_back(ClientTransmit::ProviderShutdown);
                    self.phase = Phase::Over;
                    self.events
                        .push_back(ClientEvent::Done(Box::new(ClientOutput {
                            response: plain,
                            records,
                            transcript,
                            stats: self.stats,
                        })));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::proto::{Failure, FailureCode};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const TIMEOUT: Duration = Duration::from_secs(20);

    fn session(now: Instant) -> ClientSession<ChaCha20Rng> {
        let rng = ChaCha20Rng::seed_from_u64(7);
        ClientSession::new(
            "provider.test",
            b"GET / HTTP/1.1\r\n\r\n",
            TIMEOUT,
            false,
            rng,
            now,
        )
        .unwrap()
    }

    fn failed(s: &mut ClientSession<ChaCha20Rng>) -> ClientError {
        match s.poll_event() {
            Some(ClientEvent::Failed(e)) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn error(code: FailureCode, detail: &str) -> Vec<u8> {
        postcard::to_stdvec(&ToClient::Error(Failure::new(code, detail))).unwrap()
    }

    /// A node that fails sends why, then drops its link; the client may find the link gone
    /// (a send fails) before it has read the reason. The reason still wins.
    #[test]
    fn a_nodes_reason_arriving_after_its_link_closed_is_the_error() {
        let now = Instant::now();
        let mut s = session(now);
        s.handle_node_closed(0, now);
        assert!(s.poll_event().is_none(), "it waits for a reason");
        // Other messages while waiting change nothing.
        let hello =
            postcard::to_stdvec(&ToClient::ClientHello(OneCopy::Whole(vec![1, 2, 3]))).unwrap();
        s.handle_node(1, &hello, now);
        assert!(s.poll_event().is_none());
        s.handle_node(2, &error(FailureCode::Provider, "none of our suites"), now);
        match failed(&mut s) {
            ClientError::Node { node: 2, reason } => {
                assert_eq!(reason.code, FailureCode::Provider);
                assert_eq!(reason.detail, "none of our suites");
            }
            e => panic!("{e}"),
        }
        assert!(s.is_over());
    }

    /// Without a reason, the closed link is the error, once the grace has passed (not the
    /// session's whole timeout).
    #[test]
    fn a_closed_link_without_a_reason_fails_after_the_grace() {
        let now = Instant::now();
        let mut s = session(now);
        s.handle_node_closed(1, now);
        let at = s.poll_timeout().unwrap();
        assert_eq!(at, now + lost_grace(TIMEOUT));
        s.handle_timeout(at - Duration::from_millis(1));
        assert!(s.poll_event().is_none());
        s.handle_timeout(at);
        assert!(matches!(
            failed(&mut s),
            ClientError::Link(LinkError::NodeClosed(1))
        ));
    }

    /// When every link ends while waiting, the first cause is kept.
    #[test]
    fn the_links_ending_while_waiting_keeps_the_first_cause() {
        let now = Instant::now();
        let mut s = session(now);
        s.handle_node_closed(2, now);
        s.handle_node_closed(0, now);
        s.handle_error(ClientError::Link(LinkError::Closed("nodes")));
        assert!(matches!(
            failed(&mut s),
            ClientError::Link(LinkError::NodeClosed(2))
        ));
    }
}
