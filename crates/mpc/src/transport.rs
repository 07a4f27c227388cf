//! Moving protocol messages between the three parties: an async [`Transport`] trait, the
//! length-prefixed framing every byte-stream transport uses (QUIC streams reuse it), an
//! in-memory network for tests and benchmarks, and a transport over any async byte streams.
//! Transports count bytes per peer; they never look inside messages.

use std::future::Future;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::spec::{PartyId, PARTIES};

/// Largest frame accepted (a garbled SHA-256 batch is ~1 MB; leave room for big circuits).
pub const MAX_FRAME: usize = 256 << 20;
/// Bytes of framing per message.
pub const FRAME_HEADER: usize = 4;

/// Transport failures.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer closed its side.
    #[error("connection to party {0} closed")]
    Closed(PartyId),
    /// A frame header announced more than [`MAX_FRAME`] bytes.
    #[error("party {peer} sent a frame of {len} bytes (limit {MAX_FRAME})")]
    FrameTooLarge {
        /// Sender.
        peer: PartyId,
        /// Announced length.
        len: usize,
    },
    /// There is no such peer.
    #[error("no connection to party {0}")]
    NoPeer(PartyId),
    /// An I/O error on the stream to a peer.
    #[error("I/O error with party {peer}: {source}")]
    Io {
        /// Peer.
        peer: PartyId,
        /// Cause.
        source: std::io::Error,
    },
}

/// Bytes on the wire (frames including headers), per peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrafficStats {
    /// Bytes sent to each party (index = party id).
    pub sent: [u64; PARTIES],
    /// Bytes received from each party.
    pub received: [u64; PARTIES],
}

impl TrafficStats {
    /// Total bytes sent.
    pub fn total_sent(&self) -> u64 {
        self.sent.iter().sum()
    }
    /// Total bytes received.
    pub fn total_received(&self) -> u64 {
        self.received.iter().sum()
    }
}

/// Authenticated, ordered, reliable delivery of whole messages between the three parties.
/// The sender id of a received message is the transport's word (authenticated by the
/// connection), not something the message claims.
pub trait Transport: Send {
    /// This party's id.
    fn id(&self) -> PartyId;
    /// Sends one message to `to`.
    fn send(
        &mut self,
        to: PartyId,
        payload: Vec<u8>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Receives the next message from any peer.
    fn recv(&mut self) -> impl Future<Output = Result<(PartyId, Vec<u8>), TransportError>> + Send;
    /// Bytes moved so far.
    fn stats(&self) -> TrafficStats;
}

/// Frames a payload: 4-byte big-endian length, then the payload.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(FRAME_HEADER + payload.len());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Incremental frame decoder for byte streams that arrive in arbitrary pieces.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// A new, empty decoder.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// The next complete frame, if one is buffered. `peer` only labels errors.
    pub fn next_frame(&mut self, peer: PartyId) -> Result<Option<Vec<u8>>, TransportError> {
        if self.buf.len() < FRAME_HEADER {
            return Ok(None);
        }
        let mut h = [0u8; 4];
        h.copy_from_slice(&self.buf[..4]);
        let len = u32::from_be_bytes(h) as usize;
        if len > MAX_FRAME {
            return Err(TransportError::FrameTooLarge { peer, len });
        }
        if self.buf.len() < FRAME_HEADER + len {
            return Ok(None);
        }
        let frame = self.buf[FRAME_HEADER..FRAME_HEADER + len].to_vec();
        self.buf.drain(..FRAME_HEADER + len);
        Ok(Some(frame))
    }
    /// Bytes buffered but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Reads one frame from a stream; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    peer: PartyId,
) -> Result<Option<Vec<u8>>, TransportError> {
    let mut h = [0u8; 4];
    match r.read_exact(&mut h).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => return Err(TransportError::Io { peer, source }),
    }
    let len = u32::from_be_bytes(h) as usize;
    if len > MAX_FRAME {
        return Err(TransportError::FrameTooLarge { peer, len });
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)
        .await
        .map_err(|source| TransportError::Io { peer, source })?;
    Ok(Some(buf))
}

/// Writes one frame to a stream.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    peer: PartyId,
    payload: &[u8],
) -> Result<(), TransportError> {
    let io = |source| TransportError::Io { peer, source };
    w.write_all(&(payload.len() as u32).to_be_bytes())
        .await
        .map_err(io)?;
    w.write_all(payload).await.map_err(io)?;
    w.flush().await.map_err(io)
}

/// Sends `(sender, framed bytes)` to one party's queue.
type FrameSender = mpsc::UnboundedSender<(PartyId, Vec<u8>)>;

/// In-memory transport: framed bytes through unbounded channels. Used by tests and the
/// benchmark; counts exactly the bytes a stream transport would carry.
#[derive(Debug)]
pub struct MemoryTransport {
    id: PartyId,
    tx: [Option<FrameSender>; PARTIES],
    rx: mpsc::UnboundedReceiver<(PartyId, Vec<u8>)>,
    decoders: [FrameDecoder; PARTIES],
    stats: TrafficStats,
}

/// Three connected in-memory transports, indexed by party id.
pub fn memory_network() -> [MemoryTransport; PARTIES] {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..PARTIES).map(|_| mpsc::unbounded_channel()).unzip();
    let mut rxs = rxs.into_iter();
    std::array::from_fn(|i| MemoryTransport {
        id: i as PartyId,
        tx: std::array::from_fn(|j| (j != i).then(|| txs[j].clone())),
        rx: rxs.next().unwrap_or_else(|| mpsc::unbounded_channel().1),
        decoders: Default::default(),
        stats: TrafficStats::default(),
    })
}

impl Transport for MemoryTransport {
    fn id(&self) -> PartyId {
        self.id
    }

    async fn send(&mut self, to: PartyId, payload: Vec<u8>) -> Result<(), TransportError> {
        let tx = self
            .tx
            .get(to as usize)
            .and_then(Option::as_ref)
            .ok_or(TransportError::NoPeer(to))?;
        let frame = encode_frame(&payload);
        let n = frame.len() as u64;
        tx.send((self.id, frame))
            .map_err(|_| TransportError::Closed(to))?;
        self.stats.sent[to as usize] += n;
        Ok(())
    }

    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        loop {
            for p in 0..PARTIES {
                if let Some(f) = self.decoders[p].next_frame(p as PartyId)? {
                    return Ok((p as PartyId, f));
                }
            }
            let (from, bytes) = self
                .rx
                .recv()
                .await
                .ok_or(TransportError::Closed(self.id))?;
            let Some(dec) = self.decoders.get_mut(from as usize) else {
                return Err(TransportError::NoPeer(from));
            };
            self.stats.received[from as usize] += bytes.len() as u64;
            dec.push(&bytes);
        }
    }

    fn stats(&self) -> TrafficStats {
        self.stats
    }
}

/// A transport over one async byte stream per peer (TCP, QUIC bi-streams, pipes), using
/// [`encode_frame`] framing. A reader task per peer feeds one queue, so a peer that sends a
/// large message never blocks on us writing to it.
pub struct StreamTransport<W> {
    id: PartyId,
    writers: [Option<W>; PARTIES],
    rx: mpsc::UnboundedReceiver<Result<(PartyId, Vec<u8>), TransportError>>,
    stats: TrafficStats,
}

impl<W> std::fmt::Debug for StreamTransport<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTransport")
            .field("id", &self.id)
            .field("stats", &self.stats)
            .finish()
    }
}

impl<W: AsyncWrite + Unpin + Send> StreamTransport<W> {
    /// Builds a transport for party `id` from `(peer, reader, writer)` for each peer. Must be
    /// called inside a tokio runtime (it spawns the reader tasks).
    pub fn new<R>(id: PartyId, peers: Vec<(PartyId, R, W)>) -> Result<Self, TransportError>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut writers: [Option<W>; PARTIES] = Default::default();
        for (peer, mut reader, writer) in peers {
            if peer as usize >= PARTIES || peer == id {
                return Err(TransportError::NoPeer(peer));
            }
            writers[peer as usize] = Some(writer);
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    match read_frame(&mut reader, peer).await {
                        Ok(Some(f)) => {
                            if tx.send(Ok((peer, f))).is_err() {
                                return;
                            }
                        }
                        Ok(None) => {
                            let _ = tx.send(Err(TransportError::Closed(peer)));
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            });
        }
        Ok(Self {
            id,
            writers,
            rx,
            stats: TrafficStats::default(),
        })
    }
}

impl<W: AsyncWrite + Unpin + Send> Transport for StreamTransport<W> {
    fn id(&self) -> PartyId {
        self.id
    }

    async fn send(&mut self, to: PartyId, payload: Vec<u8>) -> Result<(), TransportError> {
        let w = self
            .writers
            .get_mut(to as usize)
            .and_then(Option::as_mut)
            .ok_or(TransportError::NoPeer(to))?;
        write_frame(w, to, &payload).await?;
        self.stats.sent[to as usize] += (FRAME_HEADER + payload.len()) as u64;
        Ok(())
    }

    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        let (from, f) = self
            .rx
            .recv()
            .await
            .ok_or(TransportError::Closed(self.id))??;
        self.stats.received[from as usize] += (FRAME_HEADER + f.len()) as u64;
        Ok((from, f))
    }

    fn stats(&self) -> TrafficStats {
        self.stats
    }
}

/// The write half of an in-process byte pipe.
pub type PipeWriter = tokio::io::WriteHalf<tokio::io::DuplexStream>;

/// Three [`StreamTransport`]s over a full mesh of in-process byte pipes of `buffer` bytes each:
/// the same framing a network stream carries, without a network. Call inside a tokio runtime.
pub fn pipe_network(buffer: usize) -> Result<Vec<StreamTransport<PipeWriter>>, TransportError> {
    let mut ends: Vec<Vec<(PartyId, tokio::io::DuplexStream)>> = vec![vec![], vec![], vec![]];
    for i in 0..PARTIES as PartyId {
        for j in (i + 1)..PARTIES as PartyId {
            let (x, y) = tokio::io::duplex(buffer);
            ends[i as usize].push((j, x));
            ends[j as usize].push((i, y));
        }
    }
    ends.into_iter()
        .enumerate()
        .map(|(i, e)| {
            let peers = e
                .into_iter()
                .map(|(p, s)| {
                    let (r, w) = tokio::io::split(s);
                    (p, r, w)
                })
                .collect();
            StreamTransport::new(i as PartyId, peers)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_decoder_handles_arbitrary_splits() {
        let msgs: Vec<Vec<u8>> = vec![vec![], vec![1, 2, 3], vec![7; 1000]];
        let stream: Vec<u8> = msgs.iter().flat_map(|m| encode_frame(m)).collect();
        for chunk in [1, 2, 3, 5, 64, 4096] {
            let mut d = FrameDecoder::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                while let Some(f) = d.next_frame(0).unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, msgs);
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn oversized_frame_is_an_error() {
        let mut d = FrameDecoder::new();
        d.push(&((MAX_FRAME as u32) + 1).to_be_bytes());
        assert!(matches!(
            d.next_frame(1),
            Err(TransportError::FrameTooLarge { peer: 1, .. })
        ));
    }

    #[tokio::test]
    async fn memory_network_delivers_and_counts() {
        let [mut a, mut b, mut c] = memory_network();
        a.send(1, vec![1, 2, 3]).await.unwrap();
        c.send(1, vec![9]).await.unwrap();
        let mut got = vec![b.recv().await.unwrap(), b.recv().await.unwrap()];
        got.sort();
        assert_eq!(got, vec![(0, vec![1, 2, 3]), (2, vec![9])]);
        assert_eq!(a.stats().sent[1], 7);
        assert_eq!(b.stats().received, [7, 0, 5]);
        assert!(matches!(
            a.send(0, vec![]).await,
            Err(TransportError::NoPeer(0))
        ));
    }

    #[tokio::test]
    async fn stream_transport_over_pipes() {
        let mut ts = pipe_network(1024).unwrap();
        let big = vec![5u8; 100_000];
        // A message much larger than the pipe buffer is delivered whole.
        ts[0].send(2, big.clone()).await.unwrap();
        ts[1].send(2, vec![1]).await.unwrap();
        let mut got = vec![ts[2].recv().await.unwrap(), ts[2].recv().await.unwrap()];
        got.sort();
        assert_eq!(got, vec![(0, big), (1, vec![1])]);
        assert_eq!(ts[2].stats().received, [100_004, 5, 0]);
    }
}
