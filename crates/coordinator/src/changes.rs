//! Membership changes the coordinator runs, one at a time: the genesis among the first
//! nodes and a join by repair among t members, each ending in a membership-log entry the
//! members sign with the group key after recomputing it; and the command streams to nodes
//! that sessions use too.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use notarization::group::{GroupFile, LogEntry, SignedEntry};
use threshold::default_threshold;
use threshold::sign::Aggregator;
use wire::frame::{self, LARGE};
use wire::msg::{Command, Failure, FailureCode, FollowUp, NodeReply, Seat};

use crate::membership::Change;
use crate::{log_path, now, Coordinator, Tamper};

/// Runs the genesis or pending joins, one change at a time.
pub(crate) async fn membership(c: Arc<Coordinator>) {
    let _guard = c.changing.lock().await;
    loop {
        let change = c.members.lock().await.next_change();
        match change {
            Change::Idle => break,
            Change::Waiting { have, need } => {
                tracing::info!(have, need, "waiting for nodes before the genesis");
                break;
            }
            Change::Genesis(members) => {
                match genesis(&c, &members).await {
                    Ok(()) => tracing::info!("genesis complete: epoch 1"),
                    Err(e) => tracing::error!(error = %e, "genesis failed"),
                }
                break;
            }
            Change::Join { node, addr, cert } => match join(&c, node, &addr, &cert).await {
                Ok(epoch) => tracing::info!(node, epoch, "node joined"),
                Err(e) => {
                    tracing::error!(node, error = %e, "join failed");
                    break;
                }
            },
        }
    }
    c.refresh_health().await;
}

pub(crate) async fn conn_of(c: &Coordinator, id: u16) -> Result<quinn::Connection, ChangeError> {
    c.conns
        .lock()
        .await
        .get(&id)
        .cloned()
        .ok_or(ChangeError::NotConnected(id))
}

pub(crate) async fn command(
    c: &Coordinator,
    id: u16,
    cmd: &Command,
) -> Result<(quinn::SendStream, quinn::RecvStream), ChangeError> {
    let stream = |e: &dyn std::fmt::Display| ChangeError::Stream {
        node: id,
        detail: e.to_string(),
    };
    let conn = conn_of(c, id).await?;
    let (mut send, recv) = conn.open_bi().await.map_err(|e| stream(&e))?;
    frame::send(&mut send, cmd).await.map_err(|e| stream(&e))?;
    Ok((send, recv))
}

async fn reply(
    recv: &mut quinn::RecvStream,
    id: u16,
    within: Duration,
) -> Result<NodeReply, ChangeError> {
    typed_reply(recv, id, within)
        .await
        .map_err(ChangeError::Reply)
}

/// A node's reply; a failure keeps the node's code (a client's mistake stays the client's).
pub(crate) async fn typed_reply(
    recv: &mut quinn::RecvStream,
    id: u16,
    within: Duration,
) -> Result<NodeReply, Failure> {
    match tokio::time::timeout(within, frame::recv(recv, LARGE)).await {
        Err(_) => Err(Failure::new(
            FailureCode::Timeout,
            format!("node {id} did not answer in time"),
        )),
        Ok(Err(e)) => Err(Failure::new(FailureCode::Node, format!("node {id}: {e}"))),
        Ok(Ok(NodeReply::Failed(why))) => Err(Failure::new(why.code, format!("node {id}: {why}"))),
        Ok(Ok(r)) => Ok(r),
    }
}

const KEY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a membership change, or a command to a node, failed. Every failure names the node
/// it came from where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The node has no open connection.
    #[error("node {0} is not connected")]
    NotConnected(u16),
    /// The command could not be sent, or the reply not read.
    #[error("node {node}: {detail}")]
    Stream {
        /// The node.
        node: u16,
        /// What failed.
        detail: String,
    },
    /// The node refused, failed, or did not answer in time (its code kept).
    #[error("{0}")]
    Reply(Failure),
    /// The node answered with the wrong message or a malformed one.
    #[error("node {node} {what}")]
    Answer {
        /// The node.
        node: u16,
        /// What was wrong.
        what: &'static str,
    },
    /// The nodes' results do not agree with each other, the group, or what this
    /// coordinator attested.
    #[error("{0}")]
    Mismatch(String),
    /// The change cannot run (no group, too few members, a node left).
    #[error("{0}")]
    Unavailable(String),
    /// FROST signing of the entry failed.
    #[error("signing the log entry: {0}")]
    Signing(String),
    /// The membership log could not be checked or written.
    #[error("membership log: {0}")]
    Log(String),
}

fn signing(e: impl std::fmt::Display) -> ChangeError {
    ChangeError::Signing(e.to_string())
}

async fn genesis(c: &Coordinator, members: &[(u16, String)]) -> Result<(), ChangeError> {
    let seats: Vec<Seat> = members
        .iter()
        .enumerate()
        .map(|(i, (id, addr))| Seat {
            role: i as u8,
            node_id: *id,
            addr: addr.clone(),
        })
        .collect();
    let n = u16::try_from(seats.len())
        .map_err(|_| ChangeError::Unavailable("too many genesis members".into()))?;
    let t = default_threshold(n);
    let cmd = Command::Genesis {
        members: seats.clone(),
        threshold: t,
    };
    let mut tasks = Vec::new();
    for s in &seats {
        let (send, mut recv) = command(c, s.node_id, &cmd).await?;
        let id = s.node_id;
        tasks.push(tokio::spawn(async move {
            let r = reply(&mut recv, id, KEY_TIMEOUT).await;
            drop(send);
            (id, r)
        }));
    }
    let mut keyed = Vec::new();
    for t in tasks {
        let (id, r) = t
            .await
            .map_err(|e| ChangeError::Unavailable(format!("a node task failed: {e}")))?;
        keyed.push((id, r?));
    }
    let group = group_from_keyed(c, &keyed, 1).await?;
    let entry = LogEntry {
        change: "genesis".into(),
        time: now(),
        prev: String::new(),
        group,
    };
    let signers: Vec<u16> = seats.iter().map(|s| s.node_id).collect();
    sign_entry(c, entry, &signers, None).await
}

/// The group record from the nodes' `Keyed` replies, which must agree; each member's record
/// must match what this coordinator attested.
async fn group_from_keyed(
    c: &Coordinator,
    keyed: &[(u16, NodeReply)],
    epoch: u64,
) -> Result<GroupFile, ChangeError> {
    // (group key, threshold, verifying shares) as the first node reported them.
    type View = (String, u16, Vec<(u16, String)>);
    let mut first: Option<View> = None;
    let mut members = Vec::new();
    let nodes = c.members.lock().await;
    for (id, r) in keyed {
        let NodeReply::Keyed {
            group_key,
            threshold,
            verifying_shares,
            member,
        } = r
        else {
            return Err(ChangeError::Answer {
                node: *id,
                what: "answered the key generation wrongly",
            });
        };
        let view = (group_key.clone(), *threshold, verifying_shares.clone());
        match &first {
            None => first = Some(view),
            Some(f) if *f != view => {
                return Err(ChangeError::Mismatch(format!(
                    "node {id} computed a different group than the others"
                )))
            }
            Some(_) => {}
        }
        let attested = &nodes
            .node(*id)
            .ok_or_else(|| ChangeError::Unavailable(format!("node {id} left")))?
            .record;
        if member.node_id != *id
            || !member.same_tee(attested)
            || !verifying_shares.contains(&(*id, member.verifying_share.clone()))
        {
            return Err(ChangeError::Mismatch(format!(
                "node {id}'s own record does not match its attestation"
            )));
        }
        members.push(member.clone());
    }
    let (group_key, threshold, _) =
        first.ok_or_else(|| ChangeError::Unavailable("no member answered".into()))?;
    let key_id = threshold::GroupKey::from_hex(&group_key)
        .map_err(|e| ChangeError::Mismatch(format!("the group key: {e}")))?
        .id();
    members.sort_by_key(|m| m.node_id);
    Ok(GroupFile {
        version: 1,
        group_key,
        key_id,
        epoch,
        threshold,
        simulated: members.iter().any(|m| m.simulated),
        members,
    })
}

/// Has `signers` FROST-sign `entry` (each checks it), appends it to the log and tells them.
async fn sign_entry(
    c: &Coordinator,
    entry: LogEntry,
    signers: &[u16],
    newcomer_cert: Option<Vec<u8>>,
) -> Result<(), ChangeError> {
    let mut entry = entry;
    if c.tamper() == Some(Tamper::Log) {
        if let Some(m) = entry.group.members.first_mut() {
            m.measurement = "00".repeat(32);
        }
    }
    let public = daemon::group::public_group(&entry.group).map_err(ChangeError::Mismatch)?;
    let msg = entry.message();
    let mut agg = Aggregator::new(&public, &msg);
    let cmd = Command::SignLog {
        entry: entry.clone(),
        newcomer_cert,
    };
    let mut streams = Vec::new();
    for &id in signers {
        let (send, mut recv) = command(c, id, &cmd).await?;
        let NodeReply::Commitment(b) = reply(&mut recv, id, KEY_TIMEOUT).await? else {
            return Err(ChangeError::Answer {
                node: id,
                what: "answered the signing request wrongly",
            });
        };
        let com = postcard::from_bytes(&b).map_err(|_| ChangeError::Answer {
            node: id,
            what: "sent a malformed commitment",
        })?;
        agg.add_commitment(id, com).map_err(signing)?;
        streams.push((id, send, recv));
    }
    let package = agg.signing_package().map_err(signing)?;
    let pb = postcard::to_stdvec(&package).map_err(signing)?;
    for (id, send, recv) in streams.iter_mut() {
        frame::send(send, &FollowUp::Package(pb.clone()))
            .await
            .map_err(|e| ChangeError::Stream {
                node: *id,
                detail: e.to_string(),
            })?;
        let NodeReply::Share(b) = reply(recv, *id, KEY_TIMEOUT).await? else {
            return Err(ChangeError::Answer {
                node: *id,
                what: "answered the signing package wrongly",
            });
        };
        let share = postcard::from_bytes(&b).map_err(|_| ChangeError::Answer {
            node: *id,
            what: "sent a malformed share",
        })?;
        agg.add_share(*id, share).map_err(signing)?;
    }
    let sig = agg.aggregate().map_err(signing)?;
    let mut log = c.log.lock().await;
    log.push(SignedEntry {
        entry: entry.clone(),
        signature: hex::encode(sig),
    });
    notarization::group::verify_log(&log, None).map_err(|e| {
        log.pop();
        ChangeError::Log(e.to_string())
    })?;
    let text = serde_json::to_string_pretty(&*log).map_err(|e| ChangeError::Log(e.to_string()))?;
    let path = log_path(&c.cfg);
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &path))
        .map_err(|e| ChangeError::Log(format!("{}: {e}", path.display())))?;
    c.epoch.store(log.len() as u64, Ordering::SeqCst);
    drop(log);
    c.members.lock().await.changed(entry.group.clone(), signers);
    for (id, send, _) in streams.iter_mut() {
        if let Err(e) = frame::send(send, &FollowUp::LogSigned(sig.to_vec())).await {
            tracing::warn!(node = *id, error = %e, "could not deliver the log signature");
        }
        let _ = send.finish();
    }
    Ok(())
}

async fn join(c: &Coordinator, n: u16, addr: &str, cert: &[u8]) -> Result<u64, ChangeError> {
    let group = c
        .members
        .lock()
        .await
        .group()
        .cloned()
        .ok_or_else(|| ChangeError::Unavailable("no group".into()))?;
    let helpers: Vec<Seat> = c.members.lock().await.helpers(usize::from(group.threshold));
    if helpers.len() < usize::from(group.threshold) {
        return Err(ChangeError::Unavailable(format!(
            "node {n} waits: a join needs {} connected members",
            group.threshold
        )));
    }
    let newcomer = Seat {
        role: helpers.len() as u8,
        node_id: n,
        addr: addr.to_string(),
    };
    let cmd = Command::Repair {
        newcomer: newcomer.clone(),
        helpers: helpers.clone(),
        newcomer_cert: cert.to_vec(),
    };
    let mut tasks = Vec::new();
    for id in helpers.iter().map(|s| s.node_id).chain([n]) {
        let (send, mut recv) = command(c, id, &cmd).await?;
        tasks.push(tokio::spawn(async move {
            let r = reply(&mut recv, id, KEY_TIMEOUT).await;
            drop(send);
            (id, r)
        }));
    }
    let mut keyed = None;
    for t in tasks {
        let (id, r) = t
            .await
            .map_err(|e| ChangeError::Unavailable(format!("a node task failed: {e}")))?;
        match r? {
            NodeReply::Accepted if id != n => {}
            k @ NodeReply::Keyed { .. } if id == n => keyed = Some(k),
            _ => {
                return Err(ChangeError::Answer {
                    node: id,
                    what: "answered the repair wrongly",
                })
            }
        }
    }
    let Some(NodeReply::Keyed {
        group_key, member, ..
    }) = keyed
    else {
        return Err(ChangeError::Answer {
            node: n,
            what: "did not report its keys",
        });
    };
    if group_key != group.group_key {
        return Err(ChangeError::Mismatch(format!(
            "the newcomer {n} reports another group key"
        )));
    }
    let expected = daemon::group::public_group(&group)
        .map_err(ChangeError::Mismatch)?
        .expected_verifying_share(n)
        .map_err(|e| ChangeError::Mismatch(e.to_string()))?;
    let attested = c
        .members
        .lock()
        .await
        .node(n)
        .map(|e| e.record.clone())
        .ok_or_else(|| ChangeError::Unavailable(format!("the newcomer {n} left")))?;
    if member.node_id != n
        || member.verifying_share != hex::encode(expected)
        || !member.same_tee(&attested)
    {
        return Err(ChangeError::Mismatch(format!(
            "the newcomer {n}'s record does not match the group or its attestation"
        )));
    }
    let mut members = group.members.clone();
    members.push(member);
    members.sort_by_key(|m| m.node_id);
    let prev = c
        .log
        .lock()
        .await
        .last()
        .map(|e| e.entry.hash())
        .unwrap_or_default();
    let new = GroupFile {
        epoch: group.epoch + 1,
        simulated: members.iter().any(|m| m.simulated),
        members,
        ..group.clone()
    };
    let entry = LogEntry {
        change: format!("join {n}"),
        time: now(),
        prev,
        group: new,
    };
    let signers: Vec<u16> = c.members.lock().await.signers(&entry.group, Some(n));
    let epoch = entry.group.epoch;
    // Members that are not connected stay behind until they reconnect and adopt the log
    // (`sign_entry` records who signed).
    sign_entry(c, entry, &signers, Some(cert.to_vec())).await?;
    Ok(epoch)
}
