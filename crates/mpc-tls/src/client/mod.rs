//! The client's (phone's) side: it owns the TCP connection to the provider, relays the
//! provider's bytes to the three nodes, sends what the nodes prepared, encrypts its request
//! with keystream it unmasks itself (the request never leaves the phone in the clear), and
//! decrypts the response once the nodes have verified every tag. It accepts a node output
//! only when all three nodes sent the same thing.
//!
//! The protocol is [`machine::ClientSession`], a state machine with no I/O and no clock;
//! [`run_client`] is its driver over a provider connection and [`ClientLinks`].

use std::time::{Duration, Instant};

use mpc::client::ClientPads;
use mpc::spec::PartyId;
use rand_core::{CryptoRng, RngCore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::codec::{blocks_for, CodecError};
use crate::net::{ClientLinks, LinkError};
use crate::proto::{unpack_bits, ResponseRecords, Transcript};
use machine::{ClientEvent, ClientSession, ClientTransmit};

pub mod machine;

/// Why the client's session failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A node stopped and said why.
    #[error("node {node}: {reason}")]
    Node {
        /// The node.
        node: PartyId,
        /// Its reason.
        reason: crate::proto::Failure,
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
    /// The response records' lengths, and copies of those the nodes kept only the digest
    /// of (past [`KEPT_RESPONSE_BYTES`](crate::proto::KEPT_RESPONSE_BYTES)): a
    /// computation after the commit that decrypts them sends them again.
    pub records: ResponseRecords,
    /// The transcript all three nodes reported.
    pub transcript: Transcript,
    /// Measurements.
    pub stats: ClientStats,
}

impl std::fmt::Debug for ClientOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOutput")
            .field("response_bytes", &self.response.len())
            .field("records", &self.records.lens.len())
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

/// The client output of a masked value all three nodes agreed on (see
/// [`crate::proto::OneCopy`]): the value XOR the client's three pads.
fn unmask(
    pads: &ClientPads,
    masked: Vec<u8>,
    width: usize,
) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let bits = unpack_bits(&masked, width).ok_or(ClientError::Protocol {
        node: crate::proto::RELAY_NODE,
        what: "a masked value of the wrong width".into(),
    })?;
    let bits = pads
        .unmask_agreed(crate::proto::RELAY_NODE, &bits)
        .map_err(|_| ClientError::Disagree("the masked keystream"))?;
    Ok(Zeroizing::new(mpc::circuit::bits_to_bytes(&bits)))
}

/// Runs one session: `server` is the open TCP connection to the provider, `links` reach the
/// three nodes, `request` is the plaintext to send (split into records of at most 16 KiB).
/// With `keep_open`, the nodes are told to keep the committed session open for a computation
/// after the response (a disclosure), which the caller then runs over the same `links`.
///
/// This is the driver of [`ClientSession`]: it carries out what the session queues and
/// feeds it whichever of the provider's bytes, a node's message or its timeout comes first.
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
    let mut s = ClientSession::new(
        server_name,
        request,
        timeout,
        keep_open,
        rng,
        Instant::now(),
    )?;
    let (mut rd, mut wr) = tokio::io::split(server);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        while let Some(t) = s.poll_transmit() {
            match t {
                ClientTransmit::Node { node, bytes } => {
                    // A node that stopped has dropped its end; its reason may be queued.
                    if links.send_bytes(node, bytes).is_err() {
                        s.handle_node_closed(node, Instant::now());
                    }
                }
                ClientTransmit::Provider(b) => {
                    let written = async {
                        wr.write_all(&b).await?;
                        wr.flush().await
                    };
                    if let Err(e) = written.await {
                        s.handle_error(e.into());
                    }
                }
                ClientTransmit::ProviderShutdown => {
                    let _ = wr.shutdown().await;
                }
            }
        }
        match s.poll_event() {
            Some(ClientEvent::Done(out)) => return Ok(*out),
            Some(ClientEvent::Failed(e)) => return Err(e),
            None => {}
        }
        let deadline = s.poll_timeout().unwrap_or_else(|| Instant::now() + timeout);
        let reading = s.wants_provider_bytes();
        tokio::select! {
            r = rd.read(&mut buf), if reading => match r {
                Ok(n) => s.handle_provider(&buf[..n], Instant::now()),
                Err(e) => s.handle_error(e.into()),
            },
            r = links.recv_bytes() => match r {
                Ok((node, bytes)) => s.handle_node(node, &bytes, Instant::now()),
                Err(LinkError::NodeClosed(node)) => s.handle_node_closed(node, Instant::now()),
                Err(e) => s.handle_error(e.into()),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                s.handle_timeout(Instant::now())
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
