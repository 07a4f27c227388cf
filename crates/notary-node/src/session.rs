//! One notarization session at a node: check the seats, register the streams it expects,
//! connect the mesh (dial lower roles, accept higher ones, every peer attested), run the
//! MPC-TLS node role on a thread of its own (at the session time the coordinator proposed, if
//! it is within [`wire::msg::MAX_TIME_SKEW`] of this node's clock, so all three agree), build the notarization from this node's own
//! report, and FROST-sign it — only it — when the coordinator sends the signing package.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use daemon::group::member_record;
use disclosure::node::{disclose, DiscloseConfig, DiscloseError, UidKey};
use mpc::spec::PartyId;
use mpc::transport::StreamTransport;
use mpc_tls::net::{Link, LinkError};
use mpc_tls::node::{run_node_committed_early, NodeConfig};
use notarization::CommitteeMember;
use notary::notarize::{build_notarization, commit, leaves, sign_own};
use rand::rngs::OsRng;
use rand::SeedableRng;
use wire::frame::{self, SMALL};
use wire::msg::{FailureCode, FollowUp, NodeReply, Seat, SessionId, StreamHello};

use crate::router::Route;
use crate::{Ctx, DaemonError};

/// Where a session failed: the step names the metric's reason label and the code the
/// coordinator is told.
#[derive(Clone, Copy)]
enum Step {
    /// The session's members are not the group's.
    Refused,
    /// Connecting to or attesting a peer node.
    Mesh,
    /// The MPC-TLS session and the disclosure: their own codes.
    Mpc,
    /// This node's own failure.
    Node,
    /// Building this node's notarization.
    Notarize,
    /// Threshold signing.
    Signing,
    /// Talking to the coordinator.
    Coordinator,
}

impl Step {
    /// The failure's code; the MPC-TLS and disclosure steps keep their errors' codes.
    fn code(self, e: &DaemonError) -> FailureCode {
        match self {
            Step::Mpc => e.code(),
            Step::Refused => FailureCode::Refused,
            Step::Signing => FailureCode::Signing,
            Step::Coordinator => FailureCode::Coordinator,
            Step::Mesh | Step::Node | Step::Notarize => FailureCode::Node,
        }
    }

    /// The metric's reason label.
    fn label(self, e: &DaemonError) -> &'static str {
        match self {
            Step::Mpc => e.code().label(),
            Step::Refused => "refused",
            Step::Mesh => "mesh",
            Step::Node => "node",
            Step::Notarize => "notarize",
            Step::Signing => "signing",
            Step::Coordinator => "coordinator",
        }
    }
}

/// A failed session: the step that failed and why.
struct Abort(Step, DaemonError);

fn at(step: Step) -> impl FnOnce(DaemonError) -> Abort {
    move |e| Abort(step, e)
}

/// A session this node cannot take now (the coordinator may seat another).
fn unavailable(why: &str) -> DaemonError {
    DaemonError::Session {
        code: FailureCode::Unavailable,
        error: Box::new(proto(why)),
    }
}

fn proto(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Protocol(e.to_string())
}

/// A `Session` command.
#[derive(Debug, Clone)]
pub struct Order {
    /// The session.
    pub session: SessionId,
    /// This node's role.
    pub role: u8,
    /// All three seats.
    pub seats: Vec<Seat>,
    /// The session time the coordinator proposed (unix seconds).
    pub time: u64,
    /// How long to wait for any party.
    pub timeout: Duration,
}

/// Runs the session the coordinator commanded; replies on `reply`, reads follow-ups on `recv`.
pub async fn run(
    ctx: &Arc<Ctx>,
    order: Order,
    reply: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> Result<(), DaemonError> {
    let Order {
        session,
        role,
        seats,
        time,
        timeout,
    } = order;
    let me = ctx.cfg.node_id;
    let own = crate::now();
    if time.abs_diff(own) > wire::msg::MAX_TIME_SKEW {
        return Err(proto(format!(
            "the session's time {time} is more than {} s from this node's clock ({own})",
            wire::msg::MAX_TIME_SKEW
        )));
    }
    if ctx.draining.load(Ordering::SeqCst) {
        return Err(unavailable("this node is shutting down"));
    }
    if ctx.metrics.active() as usize >= ctx.cfg.max_sessions {
        return Err(unavailable("this node is at its session limit"));
    }
    let (group, keys) = {
        let store = ctx.store.lock().await;
        match (store.group(), &store.keys) {
            (Some(g), Some(k)) => (g.clone(), k.clone()),
            _ => return Err(unavailable("this node is not a member yet")),
        }
    };
    let mut seats = seats;
    seats.sort_by_key(|s| s.role);
    let roles: Vec<u8> = seats.iter().map(|s| s.role).collect();
    let mut ids: Vec<u16> = seats.iter().map(|s| s.node_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if roles != [0, 1, 2] || ids.len() != 3 {
        return Err(proto(
            "a session needs three distinct nodes in roles 0, 1, 2",
        ));
    }
    if seats.get(usize::from(role)).map(|s| s.node_id) != Some(me) {
        return Err(proto("the command does not seat this node in its role"));
    }
    if let Some(s) = seats.iter().find(|s| group.member(s.node_id).is_none()) {
        return Err(proto(format!(
            "node {} is not a member of epoch {}",
            s.node_id, group.epoch
        )));
    }
    let mut routes = vec![Route::Client(session)];
    let client_rx = ctx.router.expect(Route::Client(session));
    let mut peer_rx = Vec::new();
    for s in seats.iter().filter(|s| s.role > role) {
        routes.push(Route::Peer(session, s.role));
        peer_rx.push((s.clone(), ctx.router.expect(Route::Peer(session, s.role))));
    }
    frame::send(reply, &NodeReply::Accepted).await?;
    ctx.metrics.started();
    let t0 = Instant::now();
    let r = run_session(
        ctx, session, role, &seats, peer_rx, client_rx, &group, keys, time, timeout, reply, recv,
    )
    .await;
    ctx.router.forget(&routes);
    match r {
        Ok(()) => {
            ctx.metrics.ended(Ok(t0.elapsed()));
            Ok(())
        }
        Err(Abort(step, e)) => {
            let label = step.label(&e);
            ctx.metrics.ended(Err(label));
            tracing::warn!(node = me, session = %hex::encode(session), reason = label, error = %e, "session aborted");
            Err(DaemonError::Session {
                code: step.code(&e),
                error: Box::new(e),
            })
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_session(
    ctx: &Arc<Ctx>,
    session: SessionId,
    role: u8,
    seats: &[Seat],
    peer_rx: Vec<(
        Seat,
        tokio::sync::oneshot::Receiver<crate::router::Incoming>,
    )>,
    client_rx: tokio::sync::oneshot::Receiver<crate::router::Incoming>,
    group: &notarization::group::GroupFile,
    keys: Arc<notary::state::NodeState>,
    time: u64,
    timeout: Duration,
    reply: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> Result<(), Abort> {
    let me = ctx.cfg.node_id;
    // The mesh: every peer attested by this node's own policy, and its measurement the one
    // the group recorded for it.
    let mut streams: Vec<(PartyId, quinn::RecvStream, quinn::SendStream)> = Vec::new();
    let mut attested = BTreeMap::new();
    let hello = StreamHello::Session { session, role };
    for s in seats.iter().filter(|s| s.role < role) {
        let p = ctx
            .open_peer(s.node_id, &s.addr, &hello)
            .await
            .map_err(at(Step::Mesh))?;
        attested.insert(s.node_id, p.peer);
        streams.push((s.role, p.recv, p.send));
    }
    for (s, rx) in peer_rx {
        let p = ctx
            .accept_peer(rx, s.node_id, timeout)
            .await
            .map_err(at(Step::Mesh))?;
        attested.insert(s.node_id, p.peer);
        streams.push((s.role, p.recv, p.send));
    }
    let mut committee = Vec::new();
    for id in seats
        .iter()
        .map(|s| s.node_id)
        .collect::<std::collections::BTreeSet<_>>()
    {
        let rec = group
            .member(id)
            .ok_or_else(|| Abort(Step::Refused, proto(format!("node {id} is not a member"))))?;
        if let Some(peer) = attested.get(&id) {
            let seen = member_record(id, &[0; 32], &peer.verified);
            if !seen.same_tee(rec) {
                return Err(Abort(
                    Step::Mesh,
                    proto(format!(
                        "node {id} attests a measurement other than the group recorded"
                    )),
                ));
            }
        }
        committee.push(CommitteeMember {
            node_id: id,
            tee: rec.tee.clone(),
            measurement: rec.measurement.clone(),
            simulated: rec.simulated,
        });
    }
    let xs = [seats[0].node_id, seats[1].node_id, seats[2].node_id];
    let ncfg =
        NodeConfig::new(ctx.roots.clone(), time, timeout).preparing_tls13(ctx.cfg.prepare_tls13);
    let dcfg = DiscloseConfig::new(Some(UidKey {
        share: keys.uid.clone(),
        xs,
        t: usize::from(group.threshold),
    }));
    // The garbled circuits are CPU-bound: a thread of their own keeps this runtime (and the
    // QUIC keep-alives of every other connection) responsive.
    let party = PartyId::from(role);
    let (report, disclosed) = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DaemonError::Protocol(format!("cannot start a session runtime: {e}")))?;
        rt.block_on(async move {
            let transport = StreamTransport::new(party, streams)
                .map_err(|e| DaemonError::Net(e.to_string()))?;
            // The session starts with the mesh: the handshake is garbled while the client
            // connects to the three nodes.
            let link = async move {
                let client = tokio::time::timeout(timeout, client_rx)
                    .await
                    .map_err(|_| LinkError::NotConnected("the client did not connect in time"))?
                    .map_err(|_| LinkError::NotConnected("the client's stream was dropped"))?;
                Ok(Link::over_stream(
                    party,
                    tokio::io::join(client.recv, client.send),
                ))
            };
            let mut rng = rand_chacha::ChaCha20Rng::from_rng(OsRng)
                .map_err(|_| DaemonError::Protocol("no randomness".into()))?;
            let mut c = run_node_committed_early(party, ncfg, transport, link, None, &mut rng)
                .await
                .map_err(DaemonError::Tls)?;
            if !c.client_will_disclose() {
                let e = DiscloseError::Client(
                    "the client did not ask for a disclosure: there is nothing to notarize".into(),
                );
                c.fail(&e.failure(), false).await;
                return Err(DaemonError::Disclosure(e));
            }
            match disclose(&mut c, &dcfg, &mut rng).await {
                Ok(d) => Ok((c.finish().await, d)),
                Err(e) => {
                    c.fail(&e.failure(), e.peer_stopped()).await;
                    Err(DaemonError::Disclosure(e))
                }
            }
        })
    })
    .await
    .map_err(|_| Abort(Step::Node, proto("the session thread failed")))?
    .map_err(at(Step::Mpc))?;
    ctx.metrics
        .bytes(report.node_bytes_sent, report.node_bytes_received);
    let mine = build_notarization(&report, &disclosed, group, &committee)
        .map_err(|e| Abort(Step::Notarize, proto(e)))?;
    let leaves = leaves(&disclosed).map_err(|e| Abort(Step::Notarize, proto(e)))?;
    let bytes = mine
        .to_bytes()
        .map_err(|e| Abort(Step::Notarize, proto(e)))?;
    let (nonces, c) = commit(&keys.key, &mut OsRng);
    let c = postcard::to_stdvec(&c).map_err(|_| Abort(Step::Signing, proto("cannot encode")))?;
    frame::send(
        reply,
        &NodeReply::Notarized {
            notarization: bytes,
            leaves,
            commitment: c,
        },
    )
    .await
    .map_err(|e| Abort(Step::Coordinator, e.into()))?;
    let follow: FollowUp = tokio::time::timeout(timeout, frame::recv(recv, SMALL))
        .await
        .map_err(|_| Abort(Step::Coordinator, proto("no signing package in time")))?
        .map_err(|e| Abort(Step::Coordinator, e.into()))?;
    let package = match follow {
        FollowUp::Package(p) => p,
        FollowUp::Abort(why) => {
            return Err(Abort(Step::Coordinator, proto(format!("aborted: {why}"))))
        }
        FollowUp::LogSigned(_) => {
            return Err(Abort(Step::Coordinator, proto("unexpected follow-up")))
        }
    };
    let package: threshold::sign::SigningPackage = postcard::from_bytes(&package)
        .map_err(|_| Abort(Step::Signing, proto("malformed signing package")))?;
    let share =
        sign_own(&keys.key, nonces, &package, &mine).map_err(|e| Abort(Step::Signing, proto(e)))?;
    let share =
        postcard::to_stdvec(&share).map_err(|_| Abort(Step::Signing, proto("cannot encode")))?;
    frame::send(reply, &NodeReply::Share(share))
        .await
        .map_err(|e| Abort(Step::Coordinator, e.into()))?;
    tracing::info!(node = me, session = %hex::encode(session), "session signed");
    Ok(())
}
