//! A whole MPC-TLS session stepped by hand: three [`NodeSession`]s, a [`ClientSession`] and
//! a rustls server connection, all in memory, with no tokio, no sockets and no clock (the
//! time only moves when nothing else can, to fire timeouts). Every message between any two
//! of them passes a tamper hook that may change or drop it, so a test can make any party
//! deviate on the wire and check that the honest ones abort.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use mpc::transport::TransportError;
use mpc_tls::client::machine::{ClientEvent, ClientSession, ClientTransmit};
use mpc_tls::client::{ClientError, ClientOutput};
use mpc_tls::node::machine::{NodeEvent, NodeSession, NodeTransmit};
use mpc_tls::node::{NodeConfig, NodeError, NodeReport};
use mpc_tls::server_auth::Roots;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tessera_provider::{http_response, pki, server_config, Behaviour};

/// The provider's name in every stepped session.
pub const NAME: &str = "provider.test";

/// Where a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Between two nodes (the payload's last byte is the channel).
    Peer {
        /// Sender.
        from: u8,
        /// Receiver.
        to: u8,
    },
    /// From a node to the client (an encoded `ToClient`).
    NodeToClient(u8),
    /// From the client to a node (an encoded `ToNode`).
    ClientToNode(u8),
    /// From the client to the provider (TLS bytes).
    ClientToProvider,
    /// From the provider to the client (TLS bytes; empty = the end of the stream).
    ProviderToClient,
}

/// What a hook does with a message: pass it (perhaps changed) or drop it.
pub type Hook = Box<dyn FnMut(Route, &mut Vec<u8>) -> bool>;

/// How each party ended.
pub struct Outcome {
    /// The client.
    pub client: Result<ClientOutput, ClientError>,
    /// The nodes, by id.
    pub nodes: Vec<Result<NodeReport, NodeError>>,
    /// The request the provider received (decrypted by rustls).
    pub served_request: Vec<u8>,
    /// Client messages each committed node still held unread when handed over (what
    /// [`Stepped::after_commit`] delivered, among others).
    pub unread: Vec<Vec<mpc_tls::proto::ToNode>>,
    /// How far the clock had to move to end the session (zero when nothing timed out).
    pub waited: Duration,
}

impl Outcome {
    /// The client's error, or a panic naming the transcript it wrongly got.
    pub fn client_error(&self) -> String {
        match &self.client {
            Ok(o) => panic!("the client succeeded: {:?}", o.transcript),
            Err(e) => e.to_string(),
        }
    }
    /// Every node's error, or a panic if one succeeded.
    pub fn node_errors(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|r| match r {
                Ok(_) => panic!("a node committed a session that should have failed"),
                Err(e) => e.to_string(),
            })
            .collect()
    }
}

/// The session under test.
pub struct Stepped {
    nodes: Vec<Option<NodeSession<ChaCha20Rng>>>,
    node_results: Vec<Option<Result<NodeReport, NodeError>>>,
    client: ClientSession<ChaCha20Rng>,
    client_result: Option<Result<ClientOutput, ClientError>>,
    server: rustls::ServerConnection,
    response: Vec<u8>,
    write_size: usize,
    request: Vec<u8>,
    responded: bool,
    eof_sent: bool,
    shut_down: bool,
    queue: VecDeque<(Route, Vec<u8>)>,
    hook: Hook,
    late: Vec<Vec<u8>>,
    /// (node, peer messages delivered before, the peer it loses): a transport failure.
    loss: Option<(u8, usize, u8)>,
    peer_delivered: usize,
    unread: Vec<Vec<mpc_tls::proto::ToNode>>,
    start: Instant,
    now: Instant,
}

impl Stepped {
    /// A session against a rustls provider answering as `b`, sending `request`, with a
    /// per-party timeout of `timeout`, messages passing `hook`. Seeds make it reproducible.
    pub fn new(b: Behaviour, request: &[u8], timeout: Duration, hook: Hook) -> Self {
        let p = pki(&[NAME]).unwrap();
        let roots = Roots::from_pem(&p.ca_pem).unwrap();
        let server = rustls::ServerConnection::new(server_config(&p, b).unwrap()).unwrap();
        let start = Instant::now();
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let nodes = (0..3u8)
            .map(|i| {
                let cfg = NodeConfig::new(roots.clone(), time, timeout);
                Some(NodeSession::new(
                    i,
                    cfg,
                    ChaCha20Rng::seed_from_u64(100 + u64::from(i)),
                    start,
                ))
            })
            .collect();
        let client = ClientSession::new(
            NAME,
            request,
            timeout,
            false,
            ChaCha20Rng::seed_from_u64(7),
            start,
        )
        .unwrap();
        Stepped {
            nodes,
            node_results: (0..3).map(|_| None).collect(),
            client,
            client_result: None,
            server,
            response: http_response(b),
            write_size: b.write_size.max(1),
            request: Vec::new(),
            responded: false,
            eof_sent: false,
            shut_down: false,
            queue: VecDeque::new(),
            hook,
            late: Vec::new(),
            loss: None,
            peer_delivered: 0,
            unread: vec![Vec::new(); 3],
            start,
            now: start,
        }
    }

    /// Client messages (encoded) to deliver to each node right after it commits, as a
    /// client that keeps talking after the response would.
    pub fn after_commit(mut self, messages: Vec<Vec<u8>>) -> Self {
        self.late = messages;
        self
    }

    /// Once `after` node-to-node messages have been delivered, node `node`'s transport
    /// reports its connection to `peer` closed (the other nodes notice nothing themselves).
    pub fn lose_transport(mut self, node: u8, after: usize, peer: u8) -> Self {
        self.loss = Some((node, after, peer));
        self
    }

    /// Runs the session until every party has ended or nothing can move.
    pub fn run(mut self) -> Outcome {
        for _ in 0..1_000_000 {
            if self.step() {
                continue;
            }
            // Nothing moves: let time pass to the earliest timeout.
            let next = self
                .nodes
                .iter()
                .flatten()
                .filter_map(|n| n.poll_timeout())
                .chain(self.client.poll_timeout())
                .min();
            let Some(t) = next else { break };
            self.now = self.now.max(t);
            for n in self.nodes.iter_mut().flatten() {
                n.handle_timeout(self.now);
            }
            self.client.handle_timeout(self.now);
        }
        let nodes = self
            .node_results
            .into_iter()
            .map(|r| r.expect("a node neither committed nor failed"))
            .collect();
        Outcome {
            client: self
                .client_result
                .expect("the client neither finished nor failed"),
            nodes,
            served_request: self.request,
            unread: self.unread,
            waited: self.now - self.start,
        }
    }

    /// One round: every party works and sends, then every message in flight is delivered.
    /// Returns whether anything happened.
    fn step(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        for i in 0..3 {
            let Some(n) = self.nodes[i].as_mut() else {
                continue;
            };
            while n.poll_work(now).is_some() {
                moved = true;
            }
            while let Some(t) = n.poll_transmit() {
                moved = true;
                let route = match t {
                    NodeTransmit::Peer { to, bytes } => (Route::Peer { from: i as u8, to }, bytes),
                    NodeTransmit::Client(b) => (Route::NodeToClient(i as u8), b),
                };
                self.queue.push_back(route);
            }
            while let Some(e) = n.poll_event() {
                moved = true;
                match e {
                    NodeEvent::Failed(e) => {
                        self.node_results[i] = Some(Err(e));
                    }
                    NodeEvent::Committed => {
                        let mut n = self.nodes[i].take().unwrap();
                        for m in &self.late {
                            n.handle_client(m, now);
                        }
                        assert!(n.poll_event().is_none(), "a committed session changed");
                        let parts = n.into_committed().unwrap();
                        self.unread[i] = parts.early_client;
                        self.node_results[i] = Some(Ok(parts.report));
                        break;
                    }
                }
            }
        }
        while let Some(t) = self.client.poll_transmit() {
            moved = true;
            match t {
                ClientTransmit::Node { node, bytes } => {
                    self.queue.push_back((Route::ClientToNode(node), bytes))
                }
                ClientTransmit::Provider(b) => self.queue.push_back((Route::ClientToProvider, b)),
                ClientTransmit::ProviderShutdown => self.shut_down = true,
            }
        }
        while let Some(e) = self.client.poll_event() {
            moved = true;
            self.client_result = Some(match e {
                ClientEvent::Done(o) => Ok(*o),
                ClientEvent::Failed(e) => Err(e),
            });
        }
        moved |= self.provider_output();
        while let Some((route, mut bytes)) = self.queue.pop_front() {
            moved = true;
            if !(self.hook)(route, &mut bytes) {
                continue;
            }
            let now = self.now;
            match route {
                Route::Peer { from, to } => {
                    if let Some(n) = self.nodes[to as usize].as_mut() {
                        n.handle_peer(from, bytes, now);
                    }
                    self.peer_delivered += 1;
                    if let Some((node, after, peer)) = self.loss {
                        if self.peer_delivered == after {
                            if let Some(n) = self.nodes[node as usize].as_mut() {
                                n.handle_peer_lost(TransportError::Closed(peer), now);
                            }
                        }
                    }
                }
                Route::NodeToClient(i) => self.client.handle_node(i, &bytes, now),
                Route::ClientToNode(i) => {
                    if let Some(n) = self.nodes[i as usize].as_mut() {
                        n.handle_client(&bytes, now);
                    }
                }
                Route::ClientToProvider => self.provider_input(&bytes),
                Route::ProviderToClient => {
                    if self.client.wants_provider_bytes() {
                        self.client.handle_provider(&bytes, now);
                    }
                }
            }
        }
        moved
    }

    /// The provider reads what the client sent; once the request is whole it answers (in
    /// writes of `write_size`) and closes with close_notify, as `rustls_server` does.
    fn provider_input(&mut self, mut bytes: &[u8]) {
        if self.eof_sent {
            return;
        }
        while !bytes.is_empty() {
            if self.server.read_tls(&mut bytes).is_err() {
                break;
            }
        }
        if self.server.process_new_packets().is_err() {
            // rustls queued its alert; the connection ends after it.
            self.responded = true;
            self.server.send_close_notify();
            return;
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.server.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            self.request.extend_from_slice(&buf[..n]);
        }
        if !self.responded && self.request.windows(4).any(|w| w == b"\r\n\r\n") {
            self.responded = true;
            let response = std::mem::take(&mut self.response);
            for c in response.chunks(self.write_size) {
                self.server.writer().write_all(c).unwrap();
            }
            self.server.send_close_notify();
        }
    }

    /// Moves the provider's TLS output into the queue, then the end of its stream once it
    /// has said everything.
    fn provider_output(&mut self) -> bool {
        let mut moved = false;
        while self.server.wants_write() {
            let mut out = Vec::new();
            if self.server.write_tls(&mut out).is_err() || out.is_empty() {
                break;
            }
            moved = true;
            self.queue.push_back((Route::ProviderToClient, out));
        }
        if self.responded && !self.eof_sent && !self.server.wants_write() {
            self.eof_sent = true;
            moved = true;
            self.queue.push_back((Route::ProviderToClient, Vec::new()));
        }
        moved
    }
}

/// A hook that passes everything unchanged.
pub fn honest() -> Hook {
    Box::new(|_, _| true)
}
