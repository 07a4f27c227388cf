//! Plumbing for one MPC-TLS session: several sub-protocols (the garbled session, each
//! arithmetic program, the nodes' own control messages) share one node-to-node
//! [`Transport`] as numbered channels, and each node talks to the client over a [`Link`] of
//! encoded [`crate::proto`] messages.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use mpc::spec::PartyId;
use mpc::transport::{LinkShape, TrafficStats, Transport, TransportError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, Mutex};

/// Channel numbers.
pub mod ch {
    /// The garbled-circuit session.
    pub const GARBLED: u8 = 0;
    /// The nodes' own messages (commitments, hash and tag comparisons).
    pub const CONTROL: u8 = 1;
    /// ECtF.
    pub const ECTF: u8 = 2;
    /// GHASH powers of the client-write key.
    pub const GHASH_CLIENT: u8 = 3;
    /// GHASH powers of the server-write key.
    pub const GHASH_SERVER: u8 = 4;
    /// The provider's bytes, forwarded by the relay node.
    pub const RELAY: u8 = 5;
}

struct Mux<T> {
    inner: T,
    queues: HashMap<u8, VecDeque<(PartyId, Vec<u8>)>>,
}

/// One numbered channel over a shared transport. Messages for other channels that arrive
/// while this one receives are queued for them, so sub-protocols that overlap at their
/// edges never see each other's messages.
pub struct Channel<T> {
    mux: Arc<Mutex<Mux<T>>>,
    id: PartyId,
    ch: u8,
    stats: Arc<std::sync::Mutex<TrafficStats>>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel {
            mux: self.mux.clone(),
            id: self.id,
            ch: self.ch,
            stats: self.stats.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel(party {}, channel {})", self.id, self.ch)
    }
}

impl<T: Transport> Channel<T> {
    /// Channel 0 over `inner`; make the others with [`Channel::channel`].
    pub fn new(inner: T) -> Self {
        let id = inner.id();
        Channel {
            mux: Arc::new(Mutex::new(Mux {
                inner,
                queues: HashMap::new(),
            })),
            id,
            ch: 0,
            stats: Default::default(),
        }
    }

    /// Channel 0 over `inner`, with messages that already arrived for some channels:
    /// (channel, sender, payload), delivered first, in order.
    pub fn with_queued(inner: T, queued: Vec<(u8, PartyId, Vec<u8>)>) -> Self {
        let id = inner.id();
        let stats = inner.stats();
        let mut queues: HashMap<u8, VecDeque<(PartyId, Vec<u8>)>> = HashMap::new();
        for (ch, from, bytes) in queued {
            queues.entry(ch).or_default().push_back((from, bytes));
        }
        Channel {
            mux: Arc::new(Mutex::new(Mux { inner, queues })),
            id,
            ch: 0,
            stats: Arc::new(std::sync::Mutex::new(stats)),
        }
    }

    /// Another channel over the same transport.
    pub fn channel(&self, ch: u8) -> Self {
        Channel { ch, ..self.clone() }
    }

    /// Copies the shared transport's byte counts, so [`Transport::stats`] needs no lock on it.
    fn note_stats(&self, t: &T) {
        if let Ok(mut s) = self.stats.lock() {
            *s = t.stats();
        }
    }
}

impl<T: Transport> Transport for Channel<T> {
    fn id(&self) -> PartyId {
        self.id
    }

    async fn send(&mut self, to: PartyId, mut payload: Vec<u8>) -> Result<(), TransportError> {
        // The channel number goes last: appending and popping it never moves the payload.
        payload.push(self.ch);
        let mut m = self.mux.lock().await;
        let r = m.inner.send(to, payload).await;
        self.note_stats(&m.inner);
        r
    }

    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        let mut m = self.mux.lock().await;
        if let Some(x) = m.queues.get_mut(&self.ch).and_then(VecDeque::pop_front) {
            return Ok(x);
        }
        loop {
            let (from, mut bytes) = m.inner.recv().await?;
            self.note_stats(&m.inner);
            let Some(ch) = bytes.pop() else {
                // An unlabelled message cannot belong to any channel: treat as a closed peer.
                return Err(TransportError::Closed(from));
            };
            if ch == self.ch {
                return Ok((from, bytes));
            }
            m.queues.entry(ch).or_default().push_back((from, bytes));
        }
    }

    fn stats(&self) -> TrafficStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Closes the shared transport (for every channel).
    async fn close(&mut self, linger: std::time::Duration) {
        self.mux.lock().await.inner.close(linger).await
    }
}

/// A recording of everything a party sent and received, for tests that scan it.
pub type Recording = Arc<std::sync::Mutex<Vec<u8>>>;

/// A transport that records every payload it sends and receives into a [`Recording`] (when
/// one is given) and otherwise passes through.
pub struct Tap<T> {
    inner: T,
    rec: Option<Recording>,
}

impl<T: Transport> Tap<T> {
    /// Wraps `inner`, recording into `rec` if given.
    pub fn new(inner: T, rec: Option<Recording>) -> Self {
        Tap { inner, rec }
    }
    fn note(&self, b: &[u8]) {
        if let Some(Ok(mut r)) = self.rec.as_ref().map(|r| r.lock()) {
            r.extend_from_slice(b);
        }
    }
}

impl<T: Transport> Transport for Tap<T> {
    fn id(&self) -> PartyId {
        self.inner.id()
    }
    async fn send(&mut self, to: PartyId, payload: Vec<u8>) -> Result<(), TransportError> {
        self.note(&payload);
        self.inner.send(to, payload).await
    }
    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        let (from, b) = self.inner.recv().await?;
        self.note(&b);
        Ok((from, b))
    }
    fn stats(&self) -> TrafficStats {
        self.inner.stats()
    }
    async fn close(&mut self, linger: std::time::Duration) {
        self.inner.close(linger).await
    }
}

/// Errors on a client link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The other end went away.
    #[error("the {0} closed the link")]
    Closed(&'static str),
    /// A message that does not decode.
    #[error("undecodable message from the {0}")]
    Decode(&'static str),
    /// A node's link ended (its stream closed or broke).
    #[error("node {0}'s link closed (the node stopped or the connection was lost)")]
    NodeClosed(PartyId),
    /// The client never connected to the node.
    #[error("{0}")]
    NotConnected(&'static str),
}

/// The node's end of its message link with the client. An optional tap
/// records everything sent and received (for the tests that scan what a node handles).
pub struct Link {
    node: PartyId,
    tx: mpsc::UnboundedSender<(PartyId, Vec<u8>)>,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    tap: Option<Recording>,
    /// The task writing to the stream, for a link over one.
    writer: Option<tokio::task::JoinHandle<()>>,
    /// For a link over a stream: how many more bytes its reader may queue before the
    /// session reads them ([`LINK_WINDOW`] at most), so a client sending faster than the
    /// node works is held back by the stream's own flow control.
    window: Option<Arc<tokio::sync::Semaphore>>,
}

/// Most bytes of a client's messages a node's link reads ahead of its session.
pub const LINK_WINDOW: usize = 1 << 20;

/// What a message takes of a link's window (a message larger than the window takes all
/// of it).
fn window_share(len: usize) -> u32 {
    len.min(LINK_WINDOW) as u32
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Link(node {})", self.node)
    }
}

/// The client's ends of its links with the three nodes: one sender per node, one receiver
/// for all of them.
pub struct ClientLinks {
    txs: [mpsc::UnboundedSender<Vec<u8>>; 3],
    rx: mpsc::UnboundedReceiver<(PartyId, Vec<u8>)>,
}

impl std::fmt::Debug for ClientLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientLinks")
    }
}

/// In-process links between a client and three nodes: (client ends, node ends by id).
pub fn links() -> (ClientLinks, [Link; 3]) {
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let mut txs = Vec::new();
    let mut nodes = Vec::new();
    for node in 0..3u8 {
        let (tx, rx) = mpsc::unbounded_channel();
        txs.push(tx);
        nodes.push(Link {
            node,
            tx: up_tx.clone(),
            rx,
            tap: None,
            writer: None,
            window: None,
        });
    }
    let mut txs = txs.into_iter();
    let mut nodes = nodes.into_iter();
    let client = ClientLinks {
        txs: std::array::from_fn(|_| txs.next().unwrap_or_else(|| mpsc::unbounded_channel().0)),
        rx: up_rx,
    };
    let nodes = std::array::from_fn(|i| {
        nodes.next().unwrap_or_else(|| Link {
            node: i as PartyId,
            tx: mpsc::unbounded_channel().0,
            rx: mpsc::unbounded_channel().1,
            tap: None,
            writer: None,
            window: None,
        })
    });
    (client, nodes)
}

/// A simulated wide-area network for benchmarks: the latency of every link, and the
/// bandwidth of the links between nodes and of the client's links (each direction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wan {
    /// One-way delay of every message, node to node and client to node.
    pub latency: std::time::Duration,
    /// Megabits per second of each node-to-node link (`None`: unlimited).
    pub node_mbps: Option<f64>,
    /// Megabits per second of each of the client's links (`None`: unlimited).
    pub client_mbps: Option<f64>,
}

impl Wan {
    /// The shape of a node-to-node link.
    pub fn nodes(&self) -> LinkShape {
        LinkShape {
            latency: self.latency,
            bytes_per_sec: self.node_mbps.map(|m| m * 1e6 / 8.0),
        }
    }
    /// The shape of a client link.
    pub fn client(&self) -> LinkShape {
        LinkShape {
            latency: self.latency,
            bytes_per_sec: self.client_mbps.map(|m| m * 1e6 / 8.0),
        }
    }
}

/// A sender whose messages reach `out` as they would over a `shape` link: each is stamped
/// when sent, paced at the link's bandwidth and delivered `latency` later, in order.
fn delayed<M: Send + 'static>(
    out: mpsc::UnboundedSender<M>,
    shape: LinkShape,
    len: fn(&M) -> usize,
) -> mpsc::UnboundedSender<M> {
    let (tx, mut rx) = mpsc::unbounded_channel::<M>();
    tokio::spawn(async move {
        let mut queue: VecDeque<(tokio::time::Instant, M)> = VecDeque::new();
        let mut free = tokio::time::Instant::now();
        let mut open = true;
        while open || !queue.is_empty() {
            let next = queue.front().map(|(at, _)| *at);
            tokio::select! {
                m = rx.recv(), if open => match m {
                    Some(m) => {
                        let at = shape.arrival(&mut free, tokio::time::Instant::now(), len(&m));
                        queue.push_back((at, m));
                    }
                    None => open = false,
                },
                _ = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                    if let Some((_, m)) = queue.pop_front() {
                        if out.send(m).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    tx
}

/// Bridges a byte stream to a pair of message queues: a task writes each queued message as
/// one frame ([`mpc::transport::write_frame`]) and a task reads frames into the other queue.
/// Either task ends (closing its queue) when the stream or the other side goes away.
fn bridge<S, M: Send + 'static>(
    stream: S,
    peer: PartyId,
    mut out: mpsc::UnboundedReceiver<M>,
    bytes: fn(&M) -> &[u8],
    window: Option<Arc<tokio::sync::Semaphore>>,
    inbound: impl Fn(Option<Vec<u8>>) -> bool + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        while let Some(m) = out.recv().await {
            if mpc::transport::write_frame(&mut w, peer, bytes(&m))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut w).await;
    });
    tokio::spawn(async move {
        while let Ok(Some(m)) = mpc::transport::read_frame(&mut r, peer).await {
            // Wait for room in the window before reading on: the stream's flow control
            // then holds the sender back.
            if let Some(w) = &window {
                match w.acquire_many(window_share(m.len())).await {
                    Ok(p) => p.forget(),
                    Err(_) => return,
                }
            }
            if !inbound(Some(m)) {
                return;
            }
        }
        inbound(None);
    });
    writer
}

impl Link {
    /// Node `node`'s link with the client over a byte stream (TCP, a QUIC bi-stream), one
    /// frame per message. Must be called inside a tokio runtime.
    pub fn over_stream<S>(node: PartyId, stream: S) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let (up_tx, up_rx) = mpsc::unbounded_channel::<(PartyId, Vec<u8>)>();
        let (down_tx, down_rx) = mpsc::unbounded_channel();
        // Stream errors name the peer by party id; the client has none, so it gets the
        // first id past the nodes'.
        let client = mpc::spec::PARTIES as PartyId;
        let window = Arc::new(tokio::sync::Semaphore::new(LINK_WINDOW));
        let writer = bridge(
            stream,
            client,
            up_rx,
            |m| &m.1,
            Some(window.clone()),
            move |m| m.is_some_and(|m| down_tx.send(m).is_ok()),
        );
        Link {
            node,
            tx: up_tx,
            rx: down_rx,
            tap: None,
            writer: Some(writer),
            window: Some(window),
        }
    }

    /// Delays what this end sends as over a `shape` link (a benchmark's simulated network).
    /// Must be called inside a tokio runtime.
    pub fn shaped(mut self, shape: LinkShape) -> Self {
        self.tx = delayed(self.tx, shape, |m| m.1.len() + mpc::transport::FRAME_HEADER);
        self
    }

    /// Records every byte this end sends and receives into `tap`.
    pub fn with_tap(mut self, tap: Recording) -> Self {
        self.tap = Some(tap);
        self
    }

    fn note(&self, b: &[u8]) {
        if let Some(Ok(mut t)) = self.tap.as_ref().map(|t| t.lock()) {
            t.extend_from_slice(b);
        }
    }

    /// Sends one message to the client.
    pub fn send<M: Serialize>(&mut self, m: &M) -> Result<(), LinkError> {
        let bytes = postcard::to_stdvec(m).map_err(|_| LinkError::Decode("node"))?;
        self.send_bytes(bytes)
    }

    /// Sends one encoded message to the client.
    pub fn send_bytes(&mut self, bytes: Vec<u8>) -> Result<(), LinkError> {
        self.note(&bytes);
        self.tx
            .send((self.node, bytes))
            .map_err(|_| LinkError::Closed("client"))
    }

    /// Receives one message from the client.
    pub async fn recv<M: DeserializeOwned>(&mut self) -> Result<M, LinkError> {
        let bytes = self.recv_bytes().await?;
        postcard::from_bytes(&bytes).map_err(|_| LinkError::Decode("client"))
    }

    /// Receives one encoded message from the client. Cancel-safe: a call dropped before it
    /// returns loses nothing.
    pub async fn recv_bytes(&mut self) -> Result<Vec<u8>, LinkError> {
        let bytes = self.rx.recv().await.ok_or(LinkError::Closed("client"))?;
        if let Some(w) = &self.window {
            w.add_permits(window_share(bytes.len()) as usize);
        }
        self.note(&bytes);
        Ok(bytes)
    }

    /// Closes the sending side and, for a link over a stream, waits until everything sent
    /// has been written to it (a process that exits right after its last message must not
    /// lose it). Later sends fail with [`LinkError::Closed`].
    pub async fn close(&mut self) {
        self.tx = mpsc::unbounded_channel().0;
        if let Some(w) = self.writer.take() {
            let _ = w.await;
        }
    }
}

impl ClientLinks {
    /// The client's links over one byte stream per node (index = node id), one frame per
    /// message. Must be called inside a tokio runtime.
    pub fn over_streams<S>(streams: [S; 3]) -> Self
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    {
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        let mut node: PartyId = 0;
        let txs = streams.map(|s| {
            let (tx, rx) = mpsc::unbounded_channel();
            let up = up_tx.clone();
            let id = node;
            // The end of a node's stream reaches the client as an empty message (a real
            // message is never empty), so it learns at once that the node is gone.
            bridge(s, id, rx, Vec::as_slice, None, move |m| {
                up.send((id, m.unwrap_or_default())).is_ok()
            });
            node += 1;
            tx
        });
        ClientLinks { txs, rx: up_rx }
    }

    /// Delays what the client sends as over a `shape` link (a benchmark's simulated
    /// network). Must be called inside a tokio runtime.
    pub fn shaped(mut self, shape: LinkShape) -> Self {
        self.txs = self
            .txs
            .map(|tx| delayed(tx, shape, |m| m.len() + mpc::transport::FRAME_HEADER));
        self
    }

    /// Sends one message to node `node`.
    pub fn send<M: Serialize>(&mut self, node: PartyId, m: &M) -> Result<(), LinkError> {
        let bytes = postcard::to_stdvec(m).map_err(|_| LinkError::Decode("client"))?;
        self.send_bytes(node, bytes)
    }

    /// Sends one encoded message to node `node`.
    pub fn send_bytes(&mut self, node: PartyId, bytes: Vec<u8>) -> Result<(), LinkError> {
        self.txs
            .get(node as usize)
            .ok_or(LinkError::Closed("node"))?
            .send(bytes)
            .map_err(|_| LinkError::Closed("node"))
    }

    /// Sends one message to every node.
    pub fn broadcast<M: Serialize>(&mut self, m: &M) -> Result<(), LinkError> {
        (0..3).try_for_each(|n| self.send(n, m))
    }

    /// Receives the next message from any node; [`LinkError::NodeClosed`] when a node's link
    /// over a stream ends (the caller decides whether it still needed that node).
    pub async fn recv<M: DeserializeOwned>(&mut self) -> Result<(PartyId, M), LinkError> {
        let (node, bytes) = self.recv_bytes().await?;
        let m = postcard::from_bytes(&bytes).map_err(|_| LinkError::Decode("node"))?;
        Ok((node, m))
    }

    /// Receives the next encoded message from any node, as [`ClientLinks::recv`].
    /// Cancel-safe: a call dropped before it returns loses nothing.
    pub async fn recv_bytes(&mut self) -> Result<(PartyId, Vec<u8>), LinkError> {
        let (node, bytes) = self.rx.recv().await.ok_or(LinkError::Closed("nodes"))?;
        if bytes.is_empty() {
            return Err(LinkError::NodeClosed(node));
        }
        Ok((node, bytes))
    }
}

/// TCP plumbing for running the nodes as separate processes on one host (`tls-bench
/// --node-processes`, the tests). The connections are neither encrypted nor authenticated:
/// this is for loopback; the deployment puts the same streams inside attested QUIC.
pub mod tcp {
    use std::io;
    use std::net::SocketAddr;
    use std::time::Duration;

    use mpc::spec::PartyId;
    use mpc::transport::StreamTransport;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::tcp::OwnedWriteHalf;
    use tokio::net::{TcpListener, TcpStream};

    use super::{ClientLinks, Link};

    fn bad(what: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, what)
    }

    async fn accept_one(listener: &TcpListener, timeout: Duration) -> io::Result<(u8, TcpStream)> {
        let (mut s, _) = tokio::time::timeout(timeout, listener.accept())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no connection in time"))??;
        let id = tokio::time::timeout(timeout, s.read_u8())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no id in time"))??;
        let _ = s.set_nodelay(true);
        Ok((id, s))
    }

    async fn dial(addr: SocketAddr, id: u8) -> io::Result<TcpStream> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_u8(id).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    /// Node `party`'s connections to the other two nodes for one session: it dials the
    /// nodes with lower ids (at `nodes[id]`) and accepts the ones with higher ids on
    /// `listener`. Each connection starts with the dialer's id.
    pub async fn mesh(
        party: PartyId,
        listener: &TcpListener,
        nodes: &[SocketAddr; 3],
        timeout: Duration,
    ) -> io::Result<StreamTransport<OwnedWriteHalf>> {
        if party > 2 {
            return Err(bad(format!("there is no node {party}")));
        }
        let mut peers = Vec::new();
        for (j, addr) in nodes.iter().enumerate().take(party as usize) {
            peers.push((j as PartyId, dial(*addr, party).await?));
        }
        for _ in party + 1..3 {
            let (j, s) = accept_one(listener, timeout).await?;
            if j <= party || j > 2 || peers.iter().any(|(p, _)| *p == j) {
                return Err(bad(format!(
                    "node {party} was dialled by a peer claiming to be node {j}"
                )));
            }
            peers.push((j, s));
        }
        let peers = peers
            .into_iter()
            .map(|(j, s)| {
                let (r, w) = s.into_split();
                (j, r, w)
            })
            .collect();
        StreamTransport::new(party, peers).map_err(io::Error::other)
    }

    /// Node `party`'s link to the client listening at `client`.
    pub async fn node_link(party: PartyId, client: SocketAddr) -> io::Result<Link> {
        Ok(Link::over_stream(party, dial(client, party).await?))
    }

    /// The client's links: one connection from each node on `listener`, each announcing its
    /// id.
    pub async fn client_links(
        listener: &TcpListener,
        timeout: Duration,
    ) -> io::Result<ClientLinks> {
        let mut streams: [Option<TcpStream>; 3] = Default::default();
        for _ in 0..3 {
            let (id, s) = accept_one(listener, timeout).await?;
            match streams.get_mut(id as usize) {
                Some(slot @ None) => *slot = Some(s),
                _ => return Err(bad(format!("a second or unknown node {id} connected"))),
            }
        }
        let [Some(a), Some(b), Some(c)] = streams else {
            return Err(bad("a node link is missing".into()));
        };
        Ok(ClientLinks::over_streams([a, b, c]))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    /// A node's link reads at most [`LINK_WINDOW`] ahead of its session: a client that
    /// keeps sending is held back by the stream, and goes on once the session reads.
    #[tokio::test]
    async fn a_link_reads_ahead_only_within_its_window() {
        let (client_end, node_end) = tokio::io::duplex(64 << 10);
        let mut link = Link::over_stream(0, node_end);
        let chunk = vec![7u8; 64 << 10];
        let total = 4 * LINK_WINDOW / chunk.len();
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        let writer = tokio::spawn(async move {
            let mut w = client_end;
            for _ in 0..total {
                mpc::transport::write_frame(&mut w, 0, &chunk)
                    .await
                    .unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            w
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = sent.load(std::sync::atomic::Ordering::SeqCst);
        // The window, the stream's buffer and one frame in flight at most.
        let bound = (LINK_WINDOW + (64 << 10)) / (64 << 10) + 2;
        assert!(
            before < total && before <= bound,
            "{before} frames sent unread"
        );
        for _ in 0..total {
            assert_eq!(link.recv_bytes().await.unwrap().len(), 64 << 10);
        }
        writer.await.unwrap();
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), total);
    }
}
