//! The client's (phone's) side: it owns the TCP connection to the provider, relays the
//! provider's bytes to the three nodes, sends what the nodes prepared, encrypts its request
//! with keystream it unmasks itself (the request never leaves the phone in the clear), and
//! decrypts the response once the nodes have verified every tag. It accepts a node output
//! only when all three nodes sent the same thing.

use std::time::{Duration, Instant};

use mpc::client::ClientPads;
use mpc::spec::PartyId;
use rand_core::{CryptoRng, RngCore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::codec::{
    blocks_for, encode_record, join_gcm, split_gcm, CodecError, ContentType, MAX_FRAGMENT,
};
use crate::net::{ClientLinks, LinkError};
use crate::proto::{pack_bits, unpack_bits, ToClient, ToNode, Transcript};
use crate::stream::{ServerEvent, ServerStream};

/// Why the client's session failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A node stopped and said why.
    #[error("node {node}: {reason}")]
    Node {
        /// The node.
        node: PartyId,
        /// Its reason.
        reason: crate::proto::Stop,
    },
    /// The nodes sent different things: at least one deviated.
    #[error("the nodes disagree about {0}")]
    Disagree(&'static str),
    /// A node sent something out of order or malformed.
    #[error("node {node} broke the protocol: {what}")]
    Protocol {
        /// The node.
        node: PartyId,
        /// What.
        what: String,
    },
    /// The link to the nodes failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The connection to the provider failed.
    #[error("connection to the provider: {0}")]
    Io(#[from] std::io::Error),
    /// The provider's stream is malformed.
    #[error("malformed data from the provider: {0}")]
    Codec(#[from] CodecError),
    /// The provider closed before the handshake finished.
    #[error("the provider closed the connection {0}")]
    Closed(&'static str),
    /// Nothing happened for too long.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// The request is empty or too large.
    #[error("the request must be 1 byte to 1 MiB, not {0} bytes")]
    Request(usize),
}

/// What the client measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientStats {
    /// Start → the server's Finished accepted by the nodes (the request keystream arrived).
    pub handshake: Duration,
    /// ServerHelloDone received → client Finished sent: what the provider sees as our
    /// thinking time.
    pub server_visible_gap: Duration,
    /// Start → plaintext response in hand.
    pub total: Duration,
    /// Bytes sent to the nodes.
    pub bytes_up: u64,
    /// Bytes received from the nodes.
    pub bytes_down: u64,
}

/// The result of a session.
pub struct ClientOutput {
    /// The response plaintext (the application data, all records joined).
    pub response: Zeroizing<Vec<u8>>,
    /// The transcript all three nodes reported.
    pub transcript: Transcript,
    /// Measurements.
    pub stats: ClientStats,
}

impl std::fmt::Debug for ClientOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOutput")
            .field("response_bytes", &self.response.len())
            .field("transcript", &self.transcript)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Collects one message kind from all three nodes.
pub struct Gather<T> {
    got: [Option<T>; 3],
}

impl<T> Default for Gather<T> {
    fn default() -> Self {
        Gather {
            got: [None, None, None],
        }
    }
}

impl<T> Gather<T> {
    /// Nothing gathered yet.
    pub fn new() -> Self {
        Gather {
            got: [None, None, None],
        }
    }
    /// Stores node `node`'s message (`what`, for the error if it sends one twice).
    pub fn put(&mut self, node: PartyId, v: T, what: &'static str) -> Result<(), ClientError> {
        let slot = self
            .got
            .get_mut(node as usize)
            .ok_or(ClientError::Protocol {
                node,
                what: "no such node".into(),
            })?;
        if slot.is_some() {
            return Err(ClientError::Protocol {
                node,
                what: format!("sent {what} twice"),
            });
        }
        *slot = Some(v);
        Ok(())
    }
    /// Whether node `node` has sent its message.
    pub fn has(&self, node: PartyId) -> bool {
        self.got.get(node as usize).is_some_and(Option::is_some)
    }

    /// All three messages, once every node has sent one.
    pub fn take(&mut self) -> Option<[T; 3]> {
        if self.got.iter().all(Option::is_some) {
            let [a, b, c] = std::mem::take(&mut self.got);
            Some([a?, b?, c?])
        } else {
            None
        }
    }
}

fn xor_tags(shares: &[[u8; 16]]) -> [u8; 16] {
    let mut t = [0u8; 16];
    for s in shares {
        for (a, b) in t.iter_mut().zip(s) {
            *a ^= b;
        }
    }
    t
}

/// `Ok` if all three nodes sent the same thing, else [`ClientError::Disagree`] naming `what`.
pub fn all_equal<T: PartialEq>(v: &[T; 3], what: &'static str) -> Result<(), ClientError> {
    if v[0] == v[1] && v[1] == v[2] {
        Ok(())
    } else {
        Err(ClientError::Disagree(what))
    }
}

fn unmask(
    pads: &ClientPads,
    reports: [Vec<u8>; 3],
    width: usize,
) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let mut r = Vec::with_capacity(3);
    for (node, bytes) in reports.into_iter().enumerate() {
        let bits = unpack_bits(&bytes, width).ok_or(ClientError::Protocol {
            node: node as PartyId,
            what: "masked keystream of the wrong width".into(),
        })?;
        r.push((node as PartyId, bits));
    }
    let bits = pads
        .unmask(&r)
        .map_err(|_| ClientError::Disagree("the masked keystream"))?;
    Ok(Zeroizing::new(mpc::circuit::bits_to_bytes(&bits)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hello,
    Flight,
    AwaitFinished,
    Data,
    Closed,
}

/// Runs one session: `server` is the open TCP connection to the provider, `links` reach the
/// three nodes, `request` is the plaintext to send (split into records of at most 16 KiB).
/// With `keep_open`, the nodes are told to keep the committed session open for a computation
/// after the response (a disclosure), which the caller then runs over the same `links`.
pub async fn run_client<S, R>(
    server_name: &str,
    server: S,
    links: &mut ClientLinks,
    request: &[u8],
    timeout: Duration,
    rng: &mut R,
    keep_open: bool,
) -> Result<ClientOutput, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: RngCore + CryptoRng,
{
    session(server_name, server, links, request, timeout, rng, keep_open).await
}

#[allow(clippy::too_many_arguments)]
async fn session<S, R>(
    server_name: &str,
    server: S,
    links: &mut ClientLinks,
    request: &[u8],
    timeout: Duration,
    rng: &mut R,
    disclose: bool,
) -> Result<ClientOutput, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: RngCore + CryptoRng,
{
    let start = Instant::now();
    if request.is_empty() || request.len() > crate::proto::MAX_REQUEST_RECORDS * MAX_FRAGMENT {
        return Err(ClientError::Request(request.len()));
    }
    let chunks: Vec<&[u8]> = request.chunks(MAX_FRAGMENT).collect();
    // Keystream comes in whole AES blocks per record; each record uses its first bytes.
    let req_bits = block_bits(chunks.iter().map(|c| c.len()));
    let req_pads = ClientPads::random(req_bits, rng);
    for node in 0..3u8 {
        links.send(
            node,
            &ToNode::Start {
                server_name: server_name.to_string(),
                request_records: chunks.iter().map(|c| c.len() as u32).collect(),
                request_pad: pack_bits(&req_pads.for_node(node)),
                disclose,
            },
        )?;
    }
    let (mut rd, mut wr) = tokio::io::split(server);
    let mut stream = ServerStream::new();
    let mut phase = Phase::Hello;
    let mut server_records = 0usize;
    let mut response_cts: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    let mut shd_at = None;
    let mut stats = ClientStats::default();
    let mut hello = Gather::new();
    let mut fin = Gather::new();
    let mut req_ks = Gather::new();
    let mut req_tags = Gather::new();
    let mut response = Gather::new();
    let mut request_cts: Vec<Vec<u8>> = Vec::new();
    let mut resp_pads: Option<(ClientPads, usize)> = None;

    #[allow(clippy::large_enum_variant)] // one short-lived value per loop turn
    enum Input {
        Tcp(std::io::Result<usize>),
        Node(Result<(PartyId, ToClient), LinkError>),
    }

    loop {
        let reading = phase != Phase::Hello && phase != Phase::Closed;
        let input = tokio::time::timeout(timeout, async {
            tokio::select! {
                r = rd.read(&mut buf), if reading => Input::Tcp(r),
                m = links.recv::<ToClient>() => Input::Node(m),
            }
        })
        .await
        .map_err(|_| ClientError::Timeout(timeout, waiting_for(phase)))?;
        match input {
            Input::Tcp(r) => {
                let n = r?;
                let mut closed_by = None;
                if n == 0 {
                    closed_by = Some(true);
                } else {
                    links.broadcast(&ToNode::ServerBytes(buf[..n].to_vec()))?;
                    stream.push(&buf[..n]);
                    while let Some(ev) = stream.next_event()? {
                        match ev {
                            ServerEvent::Handshake(m) => {
                                if m.first() == Some(&crate::codec::hs::SERVER_HELLO_DONE) {
                                    shd_at = Some(Instant::now());
                                }
                            }
                            ServerEvent::Alert(_) => closed_by = Some(false),
                            ServerEvent::ChangeCipherSpec => {}
                            ServerEvent::Encrypted { typ, payload } => {
                                server_records += 1;
                                // The first encrypted record is the server's Finished.
                                if server_records == 1 {
                                    continue;
                                }
                                match typ {
                                    ContentType::ApplicationData => {
                                        response_cts.push(split_gcm(&payload)?.ciphertext.to_vec())
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
                    // Tell the nodes; they judge whether this was a proper close.
                    let width = block_bits(response_cts.iter().map(Vec::len));
                    let pads = ClientPads::random(width, rng);
                    for node in 0..3u8 {
                        links.send(
                            node,
                            &ToNode::Closed {
                                eof,
                                response_pad: pack_bits(&pads.for_node(node)),
                            },
                        )?;
                    }
                    resp_pads = Some((pads, width));
                    phase = Phase::Closed;
                }
            }
            Input::Node(Err(LinkError::NodeClosed(node))) if response.has(node) => {
                // A node that has sent the response may close; the others still count.
            }
            Input::Node(m) => {
                let (node, m) = m?;
                match m {
                    ToClient::Error(reason) => return Err(ClientError::Node { node, reason }),
                    ToClient::After(_) => {
                        return Err(ClientError::Protocol {
                            node,
                            what: "an after-close message before the response".into(),
                        })
                    }
                    ToClient::ClientHello(ch) => {
                        hello.put(node, ch, "ClientHello")?;
                        if let Some(all) = hello.take() {
                            all_equal(&all, "the ClientHello")?;
                            wr.write_all(&encode_record(ContentType::Handshake, &all[0]))
                                .await?;
                            wr.flush().await?;
                            phase = Phase::Flight;
                        }
                    }
                    ToClient::ClientFinished {
                        client_key_exchange,
                        ciphertext,
                        tag_share,
                    } => {
                        fin.put(
                            node,
                            (client_key_exchange, ciphertext, tag_share),
                            "Finished",
                        )?;
                        if let Some(all) = fin.take() {
                            let same = all.each_ref().map(|(k, c, _)| (k.clone(), c.clone()));
                            all_equal(&same, "the client Finished")?;
                            let tag = xor_tags(&all.each_ref().map(|x| x.2));
                            let flight = [
                                encode_record(ContentType::Handshake, &all[0].0),
                                encode_record(ContentType::ChangeCipherSpec, &[1]),
                                encode_record(
                                    ContentType::Handshake,
                                    &join_gcm(&0u64.to_be_bytes(), &all[0].1, &tag),
                                ),
                            ]
                            .concat();
                            wr.write_all(&flight).await?;
                            wr.flush().await?;
                            if let Some(t) = shd_at {
                                stats.server_visible_gap = t.elapsed();
                            }
                            phase = Phase::AwaitFinished;
                        }
                    }
                    ToClient::RequestKeystream(b) => {
                        req_ks.put(node, b, "the request keystream")?;
                        if let Some(all) = req_ks.take() {
                            stats.handshake = start.elapsed();
                            let ks = unmask(&req_pads, all, req_bits)?;
                            request_cts = apply_keystream(&chunks, &ks)
                                .ok_or(ClientError::Disagree("the request keystream's length"))?;
                            links.broadcast(&ToNode::RequestCiphertext(request_cts.clone()))?;
                            phase = Phase::Data;
                        }
                    }
                    ToClient::RequestTags(t) => {
                        if t.len() != request_cts.len() {
                            return Err(ClientError::Protocol {
                                node,
                                what: "wrong number of tag shares".into(),
                            });
                        }
                        req_tags.put(node, t, "the request tags")?;
                        if let Some(all) = req_tags.take() {
                            let mut out = Vec::new();
                            for (i, ct) in request_cts.iter().enumerate() {
                                let tag = xor_tags(&all.each_ref().map(|t| t[i]));
                                let seq = 1 + i as u64;
                                out.extend(encode_record(
                                    ContentType::ApplicationData,
                                    &join_gcm(&seq.to_be_bytes(), ct, &tag),
                                ));
                            }
                            wr.write_all(&out).await?;
                            wr.flush().await?;
                        }
                    }
                    ToClient::Response {
                        keystream,
                        transcript,
                    } => {
                        response.put(node, (keystream, transcript), "the response")?;
                        if let Some(all) = response.take() {
                            let transcripts = all.each_ref().map(|x| x.1.clone());
                            all_equal(&transcripts, "the transcript")?;
                            let Some((pads, width)) = &resp_pads else {
                                return Err(ClientError::Protocol {
                                    node,
                                    what: "a response before the close".into(),
                                });
                            };
                            let [a, b, c] = all;
                            let ks = unmask(pads, [a.0, b.0, c.0], *width)?;
                            let cts: Vec<&[u8]> = response_cts.iter().map(Vec::as_slice).collect();
                            let plain = apply_keystream(&cts, &ks)
                                .ok_or(ClientError::Disagree("the response keystream's length"))?
                                .concat();
                            stats.total = start.elapsed();
                            stats.bytes_up = links.sent();
                            stats.bytes_down = links.received();
                            let _ = wr.shutdown().await;
                            return Ok(ClientOutput {
                                response: Zeroizing::new(plain),
                                transcript: a.1,
                                stats,
                            });
                        }
                    }
                }
            }
        }
    }
}

/// Keystream bits for records of these lengths: whole AES blocks per record.
fn block_bits(lens: impl Iterator<Item = usize>) -> usize {
    lens.map(|l| blocks_for(l) * 128).sum()
}

/// XORs each record with its keystream: record i takes the next ⌈len/16⌉ blocks and uses
/// their first `len` bytes. `None` if the keystream is too short (never silently truncated).
fn apply_keystream(records: &[&[u8]], ks: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut at = 0;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let k = ks.get(at..at + r.len())?;
        at += blocks_for(r.len()) * 16;
        out.push(r.iter().zip(k).map(|(a, b)| a ^ b).collect());
    }
    Some(out)
}

fn waiting_for(p: Phase) -> &'static str {
    match p {
        Phase::Hello => "the nodes' ClientHello",
        Phase::Flight => "the provider's handshake or the nodes' Finished",
        Phase::AwaitFinished => "the provider's Finished to be verified",
        Phase::Data => "the provider's response",
        Phase::Closed => "the nodes to verify the response",
    }
}
