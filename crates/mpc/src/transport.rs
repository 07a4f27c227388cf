//! Moving protocol messages between the three parties: an async [`Transport`] trait, frames
//! on byte streams (the framing every layer shares, [`tessera_common::frame`]), an
//! in-memory network for tests and benchmarks, and a transport over any async byte streams.
//! Transports count bytes per peer; they never look inside messages.

use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use tessera_common::frame;

use crate::spec::{PartyId, PARTIES};

/// Largest frame accepted (a garbled SHA-256 batch is ~1 MB; leave room for big circuits).
pub const MAX_FRAME: usize = 256 << 20;
/// Bytes of framing per message.
pub const FRAME_HEADER: usize = frame::HEADER;
/// A frame header that carries no payload and says "I have sent everything for this
/// session" (no real frame can be this long): [`Transport::close`] sends it, so the peers can
/// tell a finished party's end of stream from a lost one.
const FINISHED: u32 = u32::MAX;

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
    /// Ends the session gracefully: everything sent is delivered, then the connections are
    /// shut down once the peers have closed theirs too (or `linger` has passed). A party
    /// that simply dropped a connection with unread data in it would make the system reset
    /// it and discard what the party had sent but a slower peer had not yet read. Nothing to
    /// do for in-memory transports.
    fn close(&mut self, linger: std::time::Duration) -> impl Future<Output = ()> + Send {
        let _ = linger;
        async {}
    }
}

/// What a stream delivered next.
enum Read {
    Frame(Vec<u8>),
    /// The peer's [`FINISHED`] marker.
    Finished,
    /// End of stream between frames.
    End,
}

async fn read_next<R: AsyncRead + Unpin>(r: &mut R, peer: PartyId) -> Result<Read, TransportError> {
    let err = |e| stream_error(peer, e);
    let len = match frame::read_len(r).await.map_err(err)? {
        None => return Ok(Read::End),
        Some(FINISHED) => return Ok(Read::Finished),
        Some(len) => len as usize,
    };
    Ok(Read::Frame(
        frame::read_payload(r, len, MAX_FRAME).await.map_err(err)?,
    ))
}

/// A framing error on the stream from or to `peer`.
fn stream_error(peer: PartyId, e: frame::FrameError) -> TransportError {
    match e {
        frame::FrameError::TooLarge { len, .. } => TransportError::FrameTooLarge { peer, len },
        frame::FrameError::Io(source) => TransportError::Io { peer, source },
        other => TransportError::Io {
            peer,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        },
    }
}

/// Reads one frame from a stream; `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    peer: PartyId,
) -> Result<Option<Vec<u8>>, TransportError> {
    match read_next(r, peer).await? {
        Read::Frame(f) => Ok(Some(f)),
        Read::Finished | Read::End => Ok(None),
    }
}

/// Writes one frame to a stream.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    peer: PartyId,
    payload: &[u8],
) -> Result<(), TransportError> {
    frame::write(w, payload)
        .await
        .map_err(|e| stream_error(peer, e))
}

/// A simulated wide-area link for benchmarks: a one-way `latency` and, optionally, a
/// bandwidth, applied to every message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkShape {
    /// One-way delay of every message.
    pub latency: std::time::Duration,
    /// Bytes per second each direction of a link carries (`None`: unlimited).
    pub bytes_per_sec: Option<f64>,
}

impl LinkShape {
    /// When a message of `len` bytes sent at `sent` arrives, on a link busy until `*free`
    /// (updated): it waits for the link, takes `len / bandwidth` to send, then `latency`.
    pub fn arrival(
        &self,
        free: &mut tokio::time::Instant,
        sent: tokio::time::Instant,
        len: usize,
    ) -> tokio::time::Instant {
        let start = (*free).max(sent);
        let tx = self
            .bytes_per_sec
            .map(|b| std::time::Duration::from_secs_f64(len as f64 / b))
            .unwrap_or_default();
        *free = start + tx;
        *free + self.latency
    }
}

/// Bytes of the send time a [`Shaped`] transport appends to each payload.
const SENT_AT: usize = 8;

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A transport whose messages take as long as over a [`LinkShape`] link: the sender appends
/// its send time (wall clock, so parties in different processes on one host agree), the
/// receiver holds each message until it would have arrived, pacing each peer's messages at
/// the link's bandwidth. Receiving stays cancel-safe (a held message is kept). Byte counts
/// leave the appended time out.
#[derive(Debug)]
pub struct Shaped<T> {
    inner: T,
    /// `None`: messages pass unchanged and at once.
    shape: Option<LinkShape>,
    free: [Option<tokio::time::Instant>; PARTIES],
    held: Option<(tokio::time::Instant, PartyId, Vec<u8>)>,
    sent_msgs: [u64; PARTIES],
    received_msgs: [u64; PARTIES],
}

impl<T: Transport> Shaped<T> {
    /// Wraps `inner`; every party of the session must wrap its transport with the same
    /// shape (`None`: no delay, nothing appended).
    pub fn new(inner: T, shape: Option<LinkShape>) -> Self {
        Shaped {
            inner,
            shape,
            free: [None; PARTIES],
            held: None,
            sent_msgs: [0; PARTIES],
            received_msgs: [0; PARTIES],
        }
    }
}

impl<T: Transport> Transport for Shaped<T> {
    fn id(&self) -> PartyId {
        self.inner.id()
    }

    async fn send(&mut self, to: PartyId, mut payload: Vec<u8>) -> Result<(), TransportError> {
        if self.shape.is_none() {
            return self.inner.send(to, payload).await;
        }
        payload.extend_from_slice(&unix_nanos().to_be_bytes());
        if let Some(n) = self.sent_msgs.get_mut(to as usize) {
            *n += 1;
        }
        self.inner.send(to, payload).await
    }

    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        let Some(shape) = self.shape else {
            return self.inner.recv().await;
        };
        loop {
            if let Some((at, _, _)) = &self.held {
                tokio::time::sleep_until(*at).await;
                if let Some((_, from, bytes)) = self.held.take() {
                    return Ok((from, bytes));
                }
            }
            let (from, mut bytes) = self.inner.recv().await?;
            if bytes.len() < SENT_AT {
                return Err(TransportError::Closed(from));
            }
            let mut t = [0u8; SENT_AT];
            t.copy_from_slice(&bytes[bytes.len() - SENT_AT..]);
            bytes.truncate(bytes.len() - SENT_AT);
            let ago = unix_nanos().saturating_sub(u64::from_be_bytes(t));
            let now = tokio::time::Instant::now();
            let sent = now
                .checked_sub(std::time::Duration::from_nanos(ago))
                .unwrap_or(now);
            let slot = self
                .free
                .get_mut(from as usize)
                .ok_or(TransportError::NoPeer(from))?;
            let mut free = slot.unwrap_or(sent);
            let at = shape.arrival(&mut free, sent, bytes.len() + FRAME_HEADER);
            *slot = Some(free);
            if let Some(n) = self.received_msgs.get_mut(from as usize) {
                *n += 1;
            }
            self.held = Some((at, from, bytes));
        }
    }

    fn stats(&self) -> TrafficStats {
        let mut s = self.inner.stats();
        for p in 0..PARTIES {
            s.sent[p] = s.sent[p].saturating_sub(self.sent_msgs[p] * SENT_AT as u64);
            s.received[p] = s.received[p].saturating_sub(self.received_msgs[p] * SENT_AT as u64);
        }
        s
    }

    async fn close(&mut self, linger: std::time::Duration) {
        self.inner.close(linger).await
    }
}

/// Sends `(sender, framed bytes)` to one party's queue.
type FrameSender = mpsc::UnboundedSender<(PartyId, Vec<u8>)>;

/// In-memory transport: whole messages through unbounded channels. Used by tests, the
/// benchmark and in-process nodes; counts exactly the bytes a stream transport would carry
/// (payload plus [`FRAME_HEADER`]). A message's buffer is handed over as it is, not framed and
/// copied, so large messages (garbled tables) cost no copy and no fresh pages in transit.
#[derive(Debug)]
pub struct MemoryTransport {
    id: PartyId,
    tx: [Option<FrameSender>; PARTIES],
    rx: mpsc::UnboundedReceiver<(PartyId, Vec<u8>)>,
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
        let n = (FRAME_HEADER + payload.len()) as u64;
        tx.send((self.id, payload))
            .map_err(|_| TransportError::Closed(to))?;
        self.stats.sent[to as usize] += n;
        Ok(())
    }

    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        let (from, payload) = self
            .rx
            .recv()
            .await
            .ok_or(TransportError::Closed(self.id))?;
        let Some(received) = self.stats.received.get_mut(from as usize) else {
            return Err(TransportError::NoPeer(from));
        };
        // The limit a stream transport's reader enforces.
        if payload.len() > MAX_FRAME {
            return Err(TransportError::FrameTooLarge {
                peer: from,
                len: payload.len(),
            });
        }
        *received += (FRAME_HEADER + payload.len()) as u64;
        Ok((from, payload))
    }

    fn stats(&self) -> TrafficStats {
        self.stats
    }
}

/// A transport over one async byte stream per peer (TCP, QUIC bi-streams, pipes), using
/// [`tessera_common::frame`] framing. A reader task per peer feeds one queue, so a peer that sends a
/// large message never blocks on us writing to it.
pub struct StreamTransport<W> {
    id: PartyId,
    writers: [Option<W>; PARTIES],
    rx: mpsc::UnboundedReceiver<(PartyId, Result<Read, TransportError>)>,
    /// Peers that sent [`FINISHED`]: their end of stream is expected, not a failure.
    finished: [bool; PARTIES],
    /// Peers whose stream has ended or failed.
    ended: [bool; PARTIES],
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
                    let r = read_next(&mut reader, peer).await;
                    let last = matches!(r, Ok(Read::End) | Err(_));
                    if tx.send((peer, r)).is_err() || last {
                        return;
                    }
                }
            });
        }
        Ok(Self {
            id,
            writers,
            rx,
            finished: [false; PARTIES],
            ended: [false; PARTIES],
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

    /// The next message from any peer. A peer that finished ([`Transport::close`]) and then
    /// ended its stream is no error: the others may still have messages to deliver. A
    /// peer's stream that ends without that marker, or fails, is an error at once.
    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        loop {
            let (from, r) = self
                .rx
                .recv()
                .await
                .ok_or(TransportError::Closed(self.id))?;
            let p = from as usize;
            match r {
                Ok(Read::Frame(f)) => {
                    self.stats.received[p] += (FRAME_HEADER + f.len()) as u64;
                    return Ok((from, f));
                }
                Ok(Read::Finished) => self.finished[p] = true,
                Ok(Read::End) => {
                    self.ended[p] = true;
                    if !self.finished[p] {
                        return Err(TransportError::Closed(from));
                    }
                }
                Err(e) => {
                    self.ended[p] = true;
                    return Err(e);
                }
            }
        }
    }

    fn stats(&self) -> TrafficStats {
        self.stats
    }

    async fn close(&mut self, linger: std::time::Duration) {
        for w in self.writers.iter_mut().flatten() {
            let _ = w.write_all(&FINISHED.to_be_bytes()).await;
            let _ = w.flush().await;
            let _ = w.shutdown().await;
        }
        // Drain until every peer's stream has ended: the reader tasks keep reading, so
        // nothing unread is left in a socket when it is dropped.
        let deadline = tokio::time::Instant::now() + linger;
        let connected: Vec<usize> = (0..PARTIES)
            .filter(|&p| self.writers[p].is_some())
            .collect();
        while connected.iter().any(|&p| !self.ended[p]) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some((from, Ok(Read::End) | Err(_)))) => self.ended[from as usize] = true,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.writers = Default::default();
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
    use std::time::Duration;

    #[tokio::test]
    async fn a_shaped_link_delays_paces_and_keeps_order() {
        let shape = LinkShape {
            latency: Duration::from_millis(30),
            bytes_per_sec: Some(1e6),
        };
        let [a, b, _c] = memory_network();
        let (mut a, mut b) = (Shaped::new(a, Some(shape)), Shaped::new(b, Some(shape)));
        let t0 = tokio::time::Instant::now();
        a.send(1, vec![1; 50_000]).await.unwrap();
        a.send(1, vec![2; 10]).await.unwrap();
        let (from, m) = b.recv().await.unwrap();
        assert_eq!((from, m.len(), m[0]), (0, 50_000, 1));
        // 50 KB at 1 MB/s, then 30 ms.
        assert!(
            t0.elapsed() >= Duration::from_millis(80),
            "{:?}",
            t0.elapsed()
        );
        let (_, m) = b.recv().await.unwrap();
        assert_eq!(m, vec![2; 10], "in order, nothing appended");
        assert_eq!(b.stats().received[0], 50_010 + 2 * FRAME_HEADER as u64);
        // Without a shape nothing is appended or delayed.
        let [x, y, _] = memory_network();
        let (mut x, mut y) = (Shaped::new(x, None), Shaped::new(y, None));
        x.send(1, vec![7]).await.unwrap();
        assert_eq!(y.recv().await.unwrap(), (0, vec![7]));
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

    /// Three transports over TCP on loopback (a dropped TCP write half ends the stream; a
    /// dropped pipe half does not while its read half lives).
    async fn tcp_network() -> Vec<StreamTransport<tokio::net::tcp::OwnedWriteHalf>> {
        let mut ends: Vec<Vec<_>> = vec![vec![], vec![], vec![]];
        for i in 0..PARTIES as PartyId {
            for j in (i + 1)..PARTIES as PartyId {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let x = tokio::net::TcpStream::connect(l.local_addr().unwrap())
                    .await
                    .unwrap();
                let (y, _) = l.accept().await.unwrap();
                let (xr, xw) = x.into_split();
                let (yr, yw) = y.into_split();
                ends[i as usize].push((j, xr, xw));
                ends[j as usize].push((i, yr, yw));
            }
        }
        ends.into_iter()
            .enumerate()
            .map(|(i, e)| StreamTransport::new(i as PartyId, e).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_closed_peer_is_no_error_but_a_vanished_one_is() {
        let mut ts = tcp_network().await;
        let mut c = ts.pop().unwrap();
        let mut b = ts.pop().unwrap();
        let mut a = ts.pop().unwrap();
        // Party 0 sends its last message and closes: party 2 still waits for party 1.
        a.send(2, vec![7]).await.unwrap();
        let closing = tokio::spawn(async move {
            a.close(Duration::from_secs(5)).await;
            a
        });
        assert_eq!(c.recv().await.unwrap(), (0, vec![7]));
        b.send(2, vec![8]).await.unwrap();
        assert_eq!(c.recv().await.unwrap(), (1, vec![8]));
        // Party 1 vanishes without closing: an error at once, naming it.
        drop(b);
        assert!(matches!(c.recv().await, Err(TransportError::Closed(1))));
        c.close(Duration::from_secs(5)).await;
        // Party 0's close returns once both peers' streams have ended.
        tokio::time::timeout(Duration::from_secs(5), closing)
            .await
            .unwrap()
            .unwrap();
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
