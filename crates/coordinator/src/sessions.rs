//! Serving clients: the public read API (membership log and node directory) and proving
//! sessions (seat a committee, start it, collect the nodes' notarizations, check they agree,
//! aggregate their FROST shares), with failures reported as codes.

use std::sync::Arc;
use std::time::Duration;

use notarization::group::GroupFile;
use rand::RngCore;
use threshold::sign::Aggregator;
use wire::frame::{self, SMALL};
use wire::msg::{
    ClientReply, ClientRequest, Command, Failure, FailureCode, FollowUp, NodeReply, Seat,
    SessionId, PROTOCOL,
};

use crate::changes::{command, typed_reply};
use crate::{now, Coordinator, Tamper};

/// The first 16 hex digits of a key, for messages.
fn short(key: &str) -> &str {
    key.get(..16).unwrap_or(key)
}

pub(crate) async fn client_conn(c: Arc<Coordinator>, conn: quinn::Connection) {
    while let Ok((send, recv)) = conn.accept_bi().await {
        let c = c.clone();
        tokio::spawn(async move { client_stream(c, send, recv).await });
    }
}

async fn client_stream(
    c: Arc<Coordinator>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let req: ClientRequest =
        match tokio::time::timeout(Duration::from_secs(10), frame::recv(&mut recv, SMALL)).await {
            Ok(Ok(r)) => r,
            _ => return,
        };
    let r = match req {
        ClientRequest::Group { protocol } | ClientRequest::Prove { protocol, .. }
            if protocol != PROTOCOL =>
        {
            Err(Failure::new(
                FailureCode::Refused,
                format!("protocol {protocol} (this coordinator speaks {PROTOCOL})"),
            ))
        }
        ClientRequest::Group { .. } => {
            let reply = ClientReply::Group {
                log: c.log().await,
                nodes: c.statuses().await,
            };
            let _ = frame::send(&mut send, &reply).await;
            let _ = send.finish();
            return;
        }
        ClientRequest::Prove { group_key, .. } => {
            if let Ok(mut k) = c.counters.lock() {
                k.started += 1;
            }
            prove(&c, &group_key, &mut send).await
        }
    };
    match r {
        Ok(()) => c.count(Ok(())),
        Err(reason) => {
            tracing::warn!(reason = reason.code.label(), error = %reason.detail, "session failed");
            c.count(Err(reason.code.label()));
            let _ = frame::send(&mut send, &ClientReply::Failed { reason }).await;
        }
    }
    let _ = send.finish();
    let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
}

/// One session: pick the committee, start it, collect the notarizations, aggregate.
async fn prove(
    c: &Arc<Coordinator>,
    trusted_key: &str,
    client: &mut quinn::SendStream,
) -> Result<(), Failure> {
    let group =
        c.members.lock().await.group().cloned().ok_or_else(|| {
            Failure::new(FailureCode::Unavailable, "the notary set has no group yet")
        })?;
    if !trusted_key.eq_ignore_ascii_case(&group.group_key) {
        return Err(Failure::new(
            FailureCode::Refused,
            format!(
                "this network's notary group (key {}) is not the trusted group (key {}): use \
                 this network's group.json",
                short(&group.group_key),
                short(trusted_key)
            ),
        ));
    }
    let mut session: SessionId = [0; 16];
    rand::rngs::OsRng.fill_bytes(&mut session);
    let seats = c
        .members
        .lock()
        .await
        .seat(&mut rand::rngs::OsRng)
        .map_err(|e| Failure::new(FailureCode::Unavailable, e.to_string()))?;
    let r = run_session(c, &group, session, &seats, client).await;
    c.members.lock().await.release(&seats);
    r
}

async fn run_session(
    c: &Arc<Coordinator>,
    group: &GroupFile,
    session: SessionId,
    seats: &[Seat],
    client: &mut quinn::SendStream,
) -> Result<(), Failure> {
    let timeout = Duration::from_secs(u64::from(c.cfg.session_timeout_secs));
    // The nodes give up after `timeout` and say why; the coordinator waits a little longer,
    // so the client hears the nodes' reason rather than a bare timeout.
    let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(5);
    let mut streams = Vec::new();
    let time = match c.tamper() {
        Some(Tamper::Time) => now().saturating_sub(3600),
        _ => now(),
    };
    for s in seats {
        let cmd = Command::Session {
            session,
            role: s.role,
            seats: seats.to_vec(),
            timeout_secs: c.cfg.session_timeout_secs,
            time,
        };
        let (send, mut recv) = command(c, s.node_id, &cmd)
            .await
            .map_err(|e| Failure::new(FailureCode::Node, e.to_string()))?;
        match typed_reply(&mut recv, s.node_id, Duration::from_secs(10)).await? {
            NodeReply::Accepted => streams.push((s.node_id, send, recv)),
            _ => {
                return Err(Failure::new(
                    FailureCode::Node,
                    format!("node {} did not accept", s.node_id),
                ))
            }
        }
    }
    let mut to_client = seats.to_vec();
    if c.tamper() == Some(Tamper::Seat) {
        let a = to_client[0].addr.clone();
        to_client[0].addr = to_client[1].addr.clone();
        to_client[1].addr = a;
    }
    frame::send(
        client,
        &ClientReply::Committee {
            session,
            epoch: group.epoch,
            seats: to_client,
        },
    )
    .await
    .map_err(|e| Failure::new(FailureCode::Client, e.to_string()))?;
    // Every node's notarization, failing as soon as one node fails.
    let mut set = tokio::task::JoinSet::new();
    for (id, send, mut recv) in streams {
        set.spawn(async move {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let r = typed_reply(&mut recv, id, left).await;
            (id, send, recv, r)
        });
    }
    let mut got = Vec::new();
    while let Some(j) = set.join_next().await {
        let (id, send, recv, r) = j.map_err(|e| Failure::new(FailureCode::Node, e.to_string()))?;
        match r {
            Ok(NodeReply::Notarized {
                notarization,
                leaves,
                commitment,
            }) => got.push((id, send, recv, notarization, leaves, commitment)),
            Ok(_) => {
                return Err(Failure::new(
                    FailureCode::Node,
                    format!("node {id} answered the session wrongly"),
                ))
            }
            Err(e) => {
                set.abort_all();
                for (_, s, _, _, _, _) in got.iter_mut() {
                    let _ = frame::send(s, &FollowUp::Abort(e.clone())).await;
                }
                return Err(e);
            }
        }
    }
    got.sort_by_key(|g| g.0);
    let first = got
        .first()
        .ok_or_else(|| Failure::new(FailureCode::Node, "no notarization"))?;
    let (notarization, leaves) = (first.3.clone(), first.4.clone());
    if let Some(g) = got.iter().find(|g| g.3 != notarization || g.4 != leaves) {
        return Err(Failure::new(
            FailureCode::Disagreement,
            format!(
                "node {}'s notarization differs from node {}'s",
                g.0, first.0
            ),
        ));
    }
    let public = daemon::group::public_group(group)
        .map_err(|e| Failure::new(FailureCode::Coordinator, e))?;
    let mut msg = notarization.clone();
    if c.tamper() == Some(Tamper::Message) {
        if let Some(b) = msg.last_mut() {
            *b ^= 1;
        }
    }
    let mut agg = Aggregator::new(&public, &msg);
    for (id, _, _, _, _, com) in &got {
        let com = postcard::from_bytes(com).map_err(|_| {
            Failure::new(
                FailureCode::Node,
                format!("node {id}: malformed commitment"),
            )
        })?;
        agg.add_commitment(*id, com)
            .map_err(|e| Failure::new(FailureCode::Signing, e.to_string()))?;
    }
    let package = agg
        .signing_package()
        .map_err(|e| Failure::new(FailureCode::Signing, e.to_string()))?;
    let pb = postcard::to_stdvec(&package)
        .map_err(|e| Failure::new(FailureCode::Signing, e.to_string()))?;
    for (id, send, recv, _, _, _) in got.iter_mut() {
        frame::send(send, &FollowUp::Package(pb.clone()))
            .await
            .map_err(|e| Failure::new(FailureCode::Node, format!("node {id}: {e}")))?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let NodeReply::Share(b) = typed_reply(recv, *id, left).await? else {
            return Err(Failure::new(
                FailureCode::Signing,
                format!("node {id} answered the package wrongly"),
            ));
        };
        let share = postcard::from_bytes(&b).map_err(|_| {
            Failure::new(FailureCode::Signing, format!("node {id}: malformed share"))
        })?;
        agg.add_share(*id, share)
            .map_err(|e| Failure::new(FailureCode::Signing, e.to_string()))?;
    }
    let mut signature = agg
        .aggregate()
        .map_err(|e| Failure::new(FailureCode::Signing, e.to_string()))?
        .to_vec();
    let mut leaves = leaves;
    match c.tamper() {
        Some(Tamper::Signature) => signature[0] ^= 1,
        Some(Tamper::Leaves) => {
            if let Some(l) = leaves.first_mut() {
                l.hash[0] ^= 1;
            }
        }
        _ => {}
    }
    frame::send(
        client,
        &ClientReply::Signed {
            notarization,
            signature,
            leaves,
        },
    )
    .await
    .map_err(|e| Failure::new(FailureCode::Client, e.to_string()))?;
    Ok(())
}
