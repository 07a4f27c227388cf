//! Proving through the notary network: ask the coordinator for a committee, check each of
//! its three nodes by RA-TLS against the trusted group (node id, measurement, TEE kind,
//! simulation), run the client side of MPC-TLS with them over QUIC, and accept the signed
//! notarization only after checking it against this client's own view of the session and the
//! group key. The coordinator is trusted with nothing.

use std::net::SocketAddr;
use std::time::Duration;

use attestation::ratls::RaTlsServerVerifier;
use attestation::{RaTlsVerifier, SimPki, Verifier};
use disclosure::client::{disclose, plan, ClientDiscloseError, ClientPlan, PlanError, Selection};
use disclosure::request::DisclosureResult;
use mpc_tls::client::{run_client, ClientOutput};
use mpc_tls::net::ClientLinks;
use notarization::group::{verify_log, GroupFile, SignedEntry};
use notarization::{Commitment, Notarization};
use wire::frame::{self, LARGE, SMALL};
use wire::msg::{ClientReply, ClientRequest, NodeStatus, Seat, StreamHello, PROTOCOL};

/// Why a networked proof failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Network or QUIC.
    #[error(transparent)]
    Quic(#[from] wire::quic::QuicError),
    /// A message could not be exchanged.
    #[error("{what}: {source}")]
    Frame {
        /// With whom.
        what: String,
        /// Cause.
        source: wire::frame::FrameError,
    },
    /// The coordinator reported a failure.
    #[error("the notary network failed the session: {0}")]
    Failed(wire::msg::Failure),
    /// A node failed its attestation or is not the member it claims to be.
    #[error("node {node}: {why}")]
    Node {
        /// The node.
        node: u16,
        /// Why.
        why: String,
    },
    /// The MPC-TLS session failed. The engine names parties by role ("node 0" is role 0);
    /// `committee` says which node sat where.
    #[error("MPC-TLS with {committee}: {source}")]
    Session {
        /// "role 0 = node 1, …".
        committee: String,
        /// Cause.
        #[source]
        source: mpc_tls::client::ClientError,
    },
    /// The response cannot give what was asked (checked by the client before the nodes
    /// compute anything).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The disclosure failed.
    #[error("the disclosure with {committee}: {source}")]
    Disclosure {
        /// "role 0 = node 1, …".
        committee: String,
        /// Cause.
        #[source]
        source: ClientDiscloseError,
    },
    /// The provider could not be reached.
    #[error("cannot connect to the provider at {addr}: {error}")]
    Provider {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        error: std::io::Error,
    },
    /// The result does not check out: the coordinator or a node misbehaved.
    #[error("the notarization was refused: {0}")]
    Refused(String),
    /// Something unexpected from the coordinator.
    #[error("the coordinator broke the protocol: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("{0} did not answer within the timeout")]
    Timeout(String),
}

/// What a networked proof needs.
#[derive(Debug, Clone)]
pub struct NetworkOptions {
    /// The coordinator's address (`host:port`).
    pub coordinator: String,
    /// The trusted group (its members' measurements and the group key).
    pub group: GroupFile,
    /// How long to wait for the coordinator and the session.
    pub timeout: Duration,
}

/// The steps a proof goes through, for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Asking the coordinator for a committee.
    Committee,
    /// Checking the committee's attestations (node ids).
    Attesting(Vec<u16>),
    /// Running MPC-TLS with the provider.
    Session,
    /// Bytes received from the provider so far, during the session (every
    /// [`RECEIVED_EVERY`] bytes).
    Received(u64),
    /// The committee proving what was asked about the response.
    Disclosing,
    /// Waiting for the threshold signature.
    Signing,
    /// Checking the signed notarization.
    Checking,
}

/// A networked proof's result.
pub struct NetNotarized {
    /// The signed statement.
    pub notarization: Notarization,
    /// The group signature.
    pub signature: [u8; 64],
    /// The commitment leaves.
    pub leaves: Vec<Commitment>,
    /// What the client got.
    pub client: ClientOutput,
    /// The client's disclosure plan (request, salts, values).
    pub plan: ClientPlan,
    /// The committee's disclosure result.
    pub result: DisclosureResult,
    /// The committee's seats.
    pub seats: Vec<Seat>,
}

fn frame_err(what: &str) -> impl FnOnce(wire::frame::FrameError) -> NetError + '_ {
    move |source| NetError::Frame {
        what: what.to_string(),
        source,
    }
}

async fn coordinator_stream(
    endpoint: &quinn::Endpoint,
    addr: &str,
    timeout: Duration,
) -> Result<(quinn::Connection, quinn::SendStream, quinn::RecvStream), NetError> {
    let cfg = wire::quic::coordinator_client_config(None)?;
    let conn = wire::quic::dial(endpoint, cfg, addr, timeout).await?;
    let (send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| NetError::Protocol(e.to_string()))?;
    Ok((conn, send, recv))
}

fn endpoint_for(addr: &str) -> Result<quinn::Endpoint, NetError> {
    // An IPv6 literal needs an IPv6 socket; names and IPv4 use IPv4.
    wire::quic::client_endpoint(addr.starts_with('[')).map_err(NetError::from)
}

/// The coordinator's public record: the membership log (verified: chained, signed by one
/// group key, `expect_key` if given) and its node directory. Returns the latest group.
pub async fn fetch_group(
    coordinator: &str,
    expect_key: Option<&str>,
    timeout: Duration,
) -> Result<(GroupFile, Vec<SignedEntry>, Vec<NodeStatus>), NetError> {
    let endpoint = endpoint_for(coordinator)?;
    let (conn, mut send, mut recv) = coordinator_stream(&endpoint, coordinator, timeout).await?;
    frame::send(&mut send, &ClientRequest::Group { protocol: PROTOCOL })
        .await
        .map_err(frame_err("coordinator"))?;
    let reply = tokio::time::timeout(timeout, frame::recv(&mut recv, LARGE))
        .await
        .map_err(|_| NetError::Timeout("the coordinator".into()))?
        .map_err(frame_err("coordinator"))?;
    conn.close(0u32.into(), b"done");
    match reply {
        ClientReply::Group { log, nodes } => {
            let g = verify_log(&log, expect_key).map_err(|e| NetError::Refused(e.to_string()))?;
            Ok((g, log, nodes))
        }
        ClientReply::Failed { reason } => Err(NetError::Failed(reason)),
        _ => Err(NetError::Protocol(
            "an unexpected reply to a group request".into(),
        )),
    }
}

/// How often [`Step::Received`] reports the transfer.
pub const RECEIVED_EVERY: u64 = 256 * 1024;

/// The provider's connection, counting what it delivers so progress can show the transfer.
struct Counted<'a, S> {
    inner: S,
    received: u64,
    next: u64,
    progress: &'a (dyn Fn(Step) + Sync),
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<'_, S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before) as u64;
        self.received += n;
        if self.received >= self.next {
            self.next = self.received + RECEIVED_EVERY;
            (self.progress)(Step::Received(self.received));
        }
        r
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<'_, S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Proves a response through the network. `progress` is told each step.
pub async fn prove_network(
    opts: &NetworkOptions,
    server_name: &str,
    provider: SocketAddr,
    request: &[u8],
    sel: &Selection,
    progress: &(dyn Fn(Step) + Sync),
) -> Result<NetNotarized, NetError> {
    let timeout = opts.timeout;
    let endpoint = endpoint_for(&opts.coordinator)?;
    progress(Step::Committee);
    let (_coord, mut csend, mut crecv) =
        coordinator_stream(&endpoint, &opts.coordinator, timeout).await?;
    let prove = ClientRequest::Prove {
        protocol: PROTOCOL,
        group_key: opts.group.group_key.clone(),
    };
    frame::send(&mut csend, &prove)
        .await
        .map_err(frame_err("coordinator"))?;
    let first = tokio::time::timeout(timeout, frame::recv(&mut crecv, SMALL))
        .await
        .map_err(|_| NetError::Timeout("the coordinator".into()))?
        .map_err(frame_err("coordinator"))?;
    let (session, epoch, mut seats) = match first {
        ClientReply::Committee {
            session,
            epoch,
            seats,
        } => (session, epoch, seats),
        ClientReply::Failed { reason } if reason.code == wire::msg::FailureCode::Refused => {
            return Err(NetError::Refused(reason.to_string()))
        }
        ClientReply::Failed { reason } => return Err(NetError::Failed(reason)),
        _ => return Err(NetError::Protocol("expected the committee".into())),
    };
    if epoch > opts.group.epoch {
        return Err(NetError::Refused(format!(
            "the committee signs in epoch {epoch}, later than the trusted group's {}: update the trust file",
            opts.group.epoch
        )));
    }
    seats.sort_by_key(|s| s.role);
    let mut ids: Vec<u16> = seats.iter().map(|s| s.node_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if seats.iter().map(|s| s.role).collect::<Vec<_>>() != [0, 1, 2] || ids.len() != 3 {
        return Err(NetError::Protocol(
            "the committee is not three distinct nodes in roles 0–2".into(),
        ));
    }
    progress(Step::Attesting(seats.iter().map(|s| s.node_id).collect()));
    let mut verifier = Verifier::intel();
    if opts.group.simulated {
        let root = SimPki::well_known()
            .map_err(|e| NetError::Protocol(e.to_string()))?
            .root_der();
        verifier = verifier.allow_simulated(root);
    }
    let mut streams = Vec::new();
    for s in &seats {
        let (send, recv) =
            attest_and_open(&endpoint, &verifier, &opts.group, s, session, timeout).await?;
        streams.push(tokio::io::join(recv, send));
    }
    let [a, b, c]: [_; 3] = streams
        .try_into()
        .map_err(|_| NetError::Protocol("three streams".into()))?;
    let mut links = ClientLinks::over_streams([a, b, c]);
    progress(Step::Session);
    let tcp = tokio::net::TcpStream::connect(provider)
        .await
        .map_err(|error| NetError::Provider {
            addr: provider,
            error,
        })?;
    let _ = tcp.set_nodelay(true);
    let tcp = Counted {
        inner: tcp,
        received: 0,
        next: RECEIVED_EVERY,
        progress,
    };
    let committee = seats
        .iter()
        .map(|s| format!("role {} = node {}", s.role, s.node_id))
        .collect::<Vec<_>>()
        .join(", ");
    let out = run_client(
        server_name,
        tcp,
        &mut links,
        request,
        timeout,
        &mut rand::rngs::OsRng,
        true,
    )
    .await
    .map_err(|source| NetError::Session {
        committee: committee.clone(),
        source,
    })?;
    progress(Step::Disclosing);
    let plan = plan(sel, request, &out.response, &mut rand::rngs::OsRng)?;
    let result = disclose(
        &mut links,
        &plan,
        &out.records,
        timeout,
        &mut rand::rngs::OsRng,
    )
    .await
    .map_err(|source| NetError::Disclosure { committee, source })?;
    progress(Step::Signing);
    let signed = tokio::time::timeout(timeout, frame::recv(&mut crecv, LARGE))
        .await
        .map_err(|_| NetError::Timeout("the coordinator (signature)".into()))?
        .map_err(frame_err("coordinator"))?;
    let (bytes, signature, leaves) = match signed {
        ClientReply::Signed {
            notarization,
            signature,
            leaves,
        } => (notarization, signature, leaves),
        ClientReply::Failed { reason } => return Err(NetError::Failed(reason)),
        _ => {
            return Err(NetError::Protocol(
                "expected the signed notarization".into(),
            ))
        }
    };
    progress(Step::Checking);
    let notarization = Notarization::from_bytes(&bytes)
        .map_err(|e| NetError::Refused(format!("malformed notarization: {e}")))?;
    let signature: [u8; 64] = signature
        .try_into()
        .map_err(|_| NetError::Refused("the signature is not 64 bytes".into()))?;
    check_against_session(
        &notarization,
        &leaves,
        &out,
        &plan,
        &result,
        server_name,
        &ids,
    )?;
    // The group signature, the leaves' root and the simulation flags, as a verifier will.
    let trusted = opts.group.trusted().map_err(NetError::Refused)?;
    let bare = notarization::Presentation {
        version: notarization::VERSION,
        notarization: notarization.clone(),
        signature,
        commitments: leaves.clone(),
        openings: Vec::new(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    notarization::verify(&bare, &[trusted], now).map_err(|e| NetError::Refused(e.to_string()))?;
    Ok(NetNotarized {
        notarization,
        signature,
        leaves,
        client: out,
        plan,
        result,
        seats,
    })
}

/// Dials seat `s`, checks its RA-TLS certificate (node id, then measurement, TEE kind and
/// simulation against the trusted group's record) and opens the session stream.
async fn attest_and_open(
    endpoint: &quinn::Endpoint,
    verifier: &Verifier,
    group: &GroupFile,
    s: &Seat,
    session: wire::msg::SessionId,
    timeout: Duration,
) -> Result<(quinn::SendStream, quinn::RecvStream), NetError> {
    let node = s.node_id;
    let bad = |why: String| NetError::Node { node, why };
    let record = group
        .member(node)
        .ok_or_else(|| bad("not a member of the trusted group".into()))?;
    let tls_verifier = RaTlsServerVerifier::new(RaTlsVerifier::audit_only(verifier.clone()));
    let cfg = wire::quic::node_client_config(tls_verifier.clone(), None)?;
    let conn = wire::quic::dial(endpoint, cfg, &s.addr, timeout)
        .await
        .map_err(|e| match tls_verifier.take_outcome() {
            Some(Err(reason)) => bad(format!("attestation refused: {reason}")),
            _ => bad(e.to_string()),
        })?;
    let peer = match tls_verifier.take_outcome() {
        Some(Ok(p)) => p,
        _ => return Err(bad("no verified RA-TLS certificate".into())),
    };
    if peer.node_id != node.to_string() {
        return Err(bad(format!(
            "the node at {} is attested as node {}",
            s.addr, peer.node_id
        )));
    }
    let (tee, measurement) = (peer.verified.tee_name(), peer.verified.measurement());
    if (tee.as_str(), measurement.as_str(), peer.verified.simulated)
        != (
            record.tee.as_str(),
            record.measurement.as_str(),
            record.simulated,
        )
    {
        return Err(bad(format!(
            "attests {tee} measurement {measurement} (simulated: {}), but the group recorded {} {} (simulated: {})",
            peer.verified.simulated, record.tee, record.measurement, record.simulated
        )));
    }
    if peer.verified.simulated && !group.simulated {
        return Err(bad(
            "runs in a SIMULATED TEE but the trusted group is not simulated".into(),
        ));
    }
    let (mut send, recv) = conn.open_bi().await.map_err(|e| bad(e.to_string()))?;
    frame::send(
        &mut send,
        &StreamHello::Client {
            session,
            role: s.role,
        },
    )
    .await
    .map_err(|e| bad(e.to_string()))?;
    Ok((send, recv))
}

/// The notarization must describe this client's session: the provider, the transcript
/// hashes and counts, the request line and status, the commitments the committee computed
/// (targets and capacities as planned), the predicates and nullifier, and the committee it
/// talked to.
#[allow(clippy::too_many_arguments)]
fn check_against_session(
    n: &Notarization,
    leaves: &[Commitment],
    out: &ClientOutput,
    plan: &ClientPlan,
    result: &DisclosureResult,
    server_name: &str,
    ids: &[u16],
) -> Result<(), NetError> {
    let refuse = |what: &str| {
        Err(NetError::Refused(format!(
            "{what} differs from this session"
        )))
    };
    let t = &out.transcript;
    if n.server_name != server_name || n.server_name != t.server_name {
        return refuse("the provider name");
    }
    if n.cert_chain_hash != t.cert_chain_hash
        || n.handshake_hash != t.handshake_hash
        || n.sent_hash != t.sent_hash
        || n.received_hash != t.received_hash
        || n.sent_records != t.sent_records
        || n.received_records != t.received_records
        || n.sent_bytes != t.sent_bytes
        || n.received_bytes != t.received_bytes
        || n.close_notify != t.close_notify
        || n.time != t.time
    {
        return refuse("the transcript");
    }
    let req = &plan.request;
    if n.request.method != req.http.method
        || n.request.target != req.http.target
        || n.request.host != req.http.host
        || n.status != result.status
    {
        return refuse("the request line or status");
    }
    if leaves.len() != result.commitments.len()
        || leaves
            .iter()
            .zip(&result.commitments)
            .zip(&req.commit)
            .any(|((l, c), t)| {
                l.hash != *c
                    || Some(l.target.clone()) != req.target_text(*t)
                    || Some(l.capacity as usize) != req.target_capacity(*t)
            })
    {
        return refuse("a commitment");
    }
    let preds: Vec<(Option<String>, bool)> = n
        .predicates
        .iter()
        .map(|p| (Some(p.expr.clone()), p.result))
        .collect();
    let mine: Vec<(Option<String>, bool)> = (0..req.predicates.len())
        .map(|i| (req.predicate_text(i), result.predicates[i]))
        .collect();
    if preds != mine {
        return refuse("a predicate");
    }
    if n.nullifiers.first().map(|x| x.value) != result.nullifier {
        return refuse("the nullifier");
    }
    if notarization::commitment_root(leaves) != n.commitment_root {
        return refuse("the commitment root");
    }
    let committee: Vec<u16> = n.committee.iter().map(|m| m.node_id).collect();
    if committee != ids {
        return refuse("the committee");
    }
    Ok(())
}
