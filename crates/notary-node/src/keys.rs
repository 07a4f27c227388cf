//! Key management at a node, over RA-TLS streams to the other nodes (the coordinator only
//! says who takes part and collects public results):
//!
//! - [`genesis`]: drives [`notary::genesis::Genesis`] (FROST DKG for the group key and a
//!   joint UID-key sharing: each node deals a random sharing; each sums what it got) over
//!   RA-TLS streams among the first members. The threshold must be
//!   [`threshold::default_threshold`] of the member count; a coordinator asking for another
//!   is refused.
//! - [`repair`]: a joining node gets a FROST share (repairable threshold signing, with
//!   commitments that name a cheating helper) and a UID share (masked Lagrange parts) from
//!   exactly t helpers; nobody else's share changes. Helpers check the newcomer's RA-TLS
//!   certificate against their own policy first.
//! - [`sign_log`]: a node signs a membership entry only if it equals the record it computes
//!   itself from what it holds and attested.

use std::collections::BTreeMap;
use std::time::Duration;

use notarization::group::{GroupFile, LogEntry, MemberRecord, SignedEntry};
use notary::genesis::{Genesis, GenesisMsg, GenesisOutput};
use notary::state::{member_record, NodeState};
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use threshold::{PublicGroup, RepairHelper, RepairNewcomer};
use uid_prf::shamir::{repair_combine, repair_masks, repair_part, Share};
use wire::frame::{self, SMALL};
use wire::msg::{FollowUp, NodeReply, Seat, StreamHello};
use zeroize::Zeroize;

use crate::router::Route;
use crate::store::{public_group, Pending};
use crate::{Ctx, DaemonError, PeerStream};

/// How long key management waits for a peer.
const KEY_TIMEOUT: Duration = Duration::from_secs(60);

/// Node-to-node key-management messages (over RA-TLS only). Payloads are postcard
/// encodings, wiped after sending.
#[derive(Serialize, Deserialize)]
enum KeyMsg {
    Round1(Vec<u8>),
    Round2(Vec<u8>),
    Uid(Vec<u8>),
    Delta(Vec<u8>),
    Mask(Vec<u8>),
    Sigma(Vec<u8>),
    Part(Vec<u8>),
}

fn proto(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Protocol(e.to_string())
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, DaemonError> {
    postcard::to_stdvec(v).map_err(|_| proto("cannot encode a key message"))
}

fn dec<T: for<'de> Deserialize<'de>>(b: &[u8], what: &str, from: u16) -> Result<T, DaemonError> {
    postcard::from_bytes(b).map_err(|_| proto(format!("node {from} sent a malformed {what}")))
}

async fn send_key(p: &mut PeerStream, m: KeyMsg) -> Result<(), DaemonError> {
    let r = frame::send(&mut p.send, &m).await;
    let (KeyMsg::Round1(mut b)
    | KeyMsg::Round2(mut b)
    | KeyMsg::Uid(mut b)
    | KeyMsg::Delta(mut b)
    | KeyMsg::Mask(mut b)
    | KeyMsg::Sigma(mut b)
    | KeyMsg::Part(mut b)) = m;
    b.zeroize();
    Ok(r?)
}

async fn recv_key(p: &mut PeerStream, from: u16) -> Result<KeyMsg, DaemonError> {
    tokio::time::timeout(KEY_TIMEOUT, frame::recv(&mut p.recv, SMALL))
        .await
        .map_err(|_| proto(format!("node {from} went silent during key management")))?
        .map_err(|e| proto(format!("node {from}: {e}")))
}

/// Streams to each of `others`: dialed for lower ids, accepted (on `route(id)`) for higher.
async fn pair_mesh(
    ctx: &Ctx,
    others: &[Seat],
    hello: StreamHello,
    route: impl Fn(u16) -> Route,
) -> Result<BTreeMap<u16, PeerStream>, DaemonError> {
    let me = ctx.cfg.node_id;
    let waits: Vec<_> = others
        .iter()
        .filter(|s| s.node_id > me)
        .map(|s| (s.node_id, ctx.router.expect(route(s.node_id))))
        .collect();
    let mut out = BTreeMap::new();
    for s in others.iter().filter(|s| s.node_id < me) {
        out.insert(s.node_id, ctx.open_peer(s.node_id, &s.addr, &hello).await?);
    }
    for (id, rx) in waits {
        out.insert(id, ctx.accept_peer(rx, id, KEY_TIMEOUT).await?);
    }
    Ok(out)
}

fn record_of(id: u16, vs: &[u8; 32], peer: &attestation::AttestedPeer) -> MemberRecord {
    member_record(id, vs, &peer.verified)
}

fn keyed(public: &PublicGroup, member: MemberRecord) -> NodeReply {
    NodeReply::Keyed {
        group_key: public.group_key().to_hex(),
        threshold: public.threshold(),
        verifying_shares: public
            .verifying_shares()
            .iter()
            .map(|(id, v)| (*id, hex::encode(v)))
            .collect(),
        member,
    }
}

/// Genesis at this node: DKG and UID keygen with `members`; replies with the group.
pub async fn genesis(
    ctx: &Ctx,
    members: &[Seat],
    t: u16,
    reply: &mut quinn::SendStream,
) -> Result<(), DaemonError> {
    let me = ctx.cfg.node_id;
    {
        let store = ctx.store.lock().await;
        if !store.log.is_empty() {
            return Err(proto(
                "this node already belongs to a group; genesis refused",
            ));
        }
    }
    let ids: Vec<u16> = members.iter().map(|s| s.node_id).collect();
    // The same machine the local committee runs; it checks the member set and threshold.
    let (mut machine, first) = Genesis::new(me, &ids, t, &mut OsRng).map_err(proto)?;
    let others: Vec<Seat> = members
        .iter()
        .filter(|s| s.node_id != me)
        .cloned()
        .collect();
    let mut pairs = pair_mesh(ctx, &others, StreamHello::Genesis, Route::Genesis).await?;
    send_genesis(&mut pairs, first).await?;
    // Round 1: each peer's round-1 package and its UID share for this node, in that order.
    let mut round2 = Vec::new();
    for (id, p) in pairs.iter_mut() {
        for _ in 0..2 {
            let m = genesis_msg(recv_key(p, *id).await?, *id)?;
            round2.extend(machine.handle(*id, m).map_err(proto)?);
        }
    }
    send_genesis(&mut pairs, round2).await?;
    for (id, p) in pairs.iter_mut() {
        let m = genesis_msg(recv_key(p, *id).await?, *id)?;
        machine.handle(*id, m).map_err(proto)?;
    }
    if !machine.is_done() {
        return Err(proto("genesis ended with messages missing"));
    }
    let GenesisOutput { state, public } = machine.finish().map_err(proto)?;
    let key = &state.key;
    let mut records = BTreeMap::new();
    for (id, p) in &pairs {
        let vs = public
            .verifying_share(*id)
            .ok_or_else(|| proto(format!("no verifying share for node {id}")))?;
        records.insert(*id, record_of(*id, &vs, &p.peer));
    }
    let vs = key.verifying_share().map_err(proto)?;
    let mine = record_of(me, &vs, &ctx.own);
    records.insert(me, mine.clone());
    frame::send(reply, &keyed(&public, mine)).await?;
    ctx.store.lock().await.pending = Some(Pending {
        state: std::sync::Arc::new(state),
        public,
        records,
    });
    tracing::info!(
        node = me,
        "genesis keys generated; awaiting the signed log entry"
    );
    Ok(())
}

/// Sends genesis messages to the peers they are for (payloads wiped after sending).
async fn send_genesis(
    pairs: &mut BTreeMap<u16, PeerStream>,
    out: Vec<(u16, GenesisMsg)>,
) -> Result<(), DaemonError> {
    for (to, m) in out {
        let p = pairs
            .get_mut(&to)
            .ok_or_else(|| proto(format!("genesis addressed unknown node {to}")))?;
        let m = match m {
            GenesisMsg::Round1(pkg) => KeyMsg::Round1(enc(&pkg)?),
            GenesisMsg::Uid(share) => KeyMsg::Uid(enc(&share)?),
            GenesisMsg::Round2(pkg) => KeyMsg::Round2(enc(&pkg)?),
        };
        send_key(p, m).await?;
    }
    Ok(())
}

/// Decodes a genesis message from node `from` (secret payloads wiped after decoding).
fn genesis_msg(m: KeyMsg, from: u16) -> Result<GenesisMsg, DaemonError> {
    Ok(match m {
        KeyMsg::Round1(b) => GenesisMsg::Round1(dec(&b, "round-1 package", from)?),
        KeyMsg::Uid(mut b) => {
            let s = dec(&b, "UID share", from);
            b.zeroize();
            GenesisMsg::Uid(s?)
        }
        KeyMsg::Round2(mut b) => {
            let p = dec(&b, "round-2 package", from);
            b.zeroize();
            GenesisMsg::Round2(p?)
        }
        _ => {
            return Err(proto(format!(
                "node {from} sent a message that is not part of genesis"
            )))
        }
    })
}

/// Repair at this node, as a helper or as the newcomer.
pub async fn repair(
    ctx: &Ctx,
    newcomer: &Seat,
    helpers: &[Seat],
    newcomer_cert: &[u8],
    reply: &mut quinn::SendStream,
) -> Result<(), DaemonError> {
    let me = ctx.cfg.node_id;
    let n = newcomer.node_id;
    let (group, public, key) = {
        let store = ctx.store.lock().await;
        let g = store
            .group()
            .cloned()
            .ok_or_else(|| proto("no group to join yet"))?;
        let public = public_group(&g)?;
        let key = store.keys.clone();
        (g, public, key)
    };
    let mut hids: Vec<u16> = helpers.iter().map(|s| s.node_id).collect();
    hids.sort_unstable();
    hids.dedup();
    if hids.len() != helpers.len()
        || hids.len() != usize::from(group.threshold)
        || hids.iter().any(|h| group.member(*h).is_none())
        || group.member(n).is_some()
    {
        return Err(proto(format!(
            "a repair needs exactly {} distinct members as helpers and a newcomer who is not a member",
            group.threshold
        )));
    }
    let hello = StreamHello::Repair { newcomer: n };
    if me == n {
        if key.is_some() {
            return Err(proto("this node already holds keys"));
        }
        let mut pairs = pair_mesh(ctx, helpers, hello, |id| Route::Repair(n, id)).await?;
        let mut nc = RepairNewcomer::new(me, &public, &hids).map_err(proto)?;
        let mut parts = Vec::new();
        let mut done = None;
        for (id, p) in pairs.iter_mut() {
            let KeyMsg::Sigma(mut b) = recv_key(p, *id).await? else {
                return Err(proto(format!(
                    "node {id} sent the wrong message (sigma expected)"
                )));
            };
            let sigma = dec(&b, "repair sigma", *id)?;
            b.zeroize();
            if let Some(o) = nc.on_sigma(*id, sigma).map_err(proto)? {
                done = Some(o);
            }
            let KeyMsg::Part(mut b) = recv_key(p, *id).await? else {
                return Err(proto(format!(
                    "node {id} sent the wrong message (UID part expected)"
                )));
            };
            let part: Share = dec(&b, "UID part", *id)?;
            b.zeroize();
            parts.push(part);
        }
        let (key, new_public) = done.ok_or_else(|| proto("the repair did not complete"))?;
        let uid = repair_combine(me, &parts).map_err(proto)?;
        let mut records: BTreeMap<u16, MemberRecord> = group
            .members
            .iter()
            .map(|m| (m.node_id, m.clone()))
            .collect();
        let vs = key.verifying_share().map_err(proto)?;
        let mine = record_of(me, &vs, &ctx.own);
        records.insert(me, mine.clone());
        frame::send(reply, &keyed(&new_public, mine)).await?;
        ctx.store.lock().await.pending = Some(Pending {
            state: std::sync::Arc::new(NodeState { id: me, key, uid }),
            public: new_public,
            records,
        });
        tracing::info!(
            node = me,
            "repair complete: key shares received; awaiting the signed log entry"
        );
        return Ok(());
    }
    let keys = key.ok_or_else(|| proto("this node holds no keys to help with"))?;
    let (frost_key, uid) = (&keys.key, &keys.uid);
    if !hids.contains(&me) {
        return Err(proto("this node is not one of the helpers"));
    }
    // The newcomer must pass this node's own policy before it gets anything.
    let (cert_id, _) = ctx.tee.check_peer(newcomer_cert, crate::now())?;
    if cert_id != n {
        return Err(proto(format!(
            "the newcomer's certificate is node {cert_id}'s, not node {n}'s"
        )));
    }
    let mut others: Vec<Seat> = helpers
        .iter()
        .filter(|s| s.node_id != me)
        .cloned()
        .collect();
    others.push(newcomer.clone());
    let mut pairs = pair_mesh(ctx, &others, hello, |id| Route::Repair(n, id)).await?;
    let (mut helper, deltas) =
        RepairHelper::new(frost_key, &public, &hids, n, &mut OsRng).map_err(proto)?;
    let masks = repair_masks(me, &hids, &mut OsRng).map_err(proto)?;
    for (to, d) in deltas {
        let p = pairs
            .get_mut(&to)
            .ok_or_else(|| proto(format!("repair addressed unknown node {to}")))?;
        send_key(p, KeyMsg::Delta(enc(&d)?)).await?;
        let m = masks
            .iter()
            .find(|m| m.x == to)
            .ok_or_else(|| proto("no mask for a helper"))?;
        send_key(p, KeyMsg::Mask(enc(m)?)).await?;
    }
    let mut received = Vec::new();
    let mut sigma = None;
    for h in hids.iter().filter(|h| **h != me) {
        let p = pairs
            .get_mut(h)
            .ok_or_else(|| proto(format!("no stream to helper {h}")))?;
        let KeyMsg::Delta(mut b) = recv_key(p, *h).await? else {
            return Err(proto(format!(
                "node {h} sent the wrong message (delta expected)"
            )));
        };
        let d = dec(&b, "repair delta", *h)?;
        b.zeroize();
        if let Some(s) = helper.on_delta(*h, d).map_err(proto)? {
            sigma = Some(s);
        }
        let KeyMsg::Mask(mut b) = recv_key(p, *h).await? else {
            return Err(proto(format!(
                "node {h} sent the wrong message (mask expected)"
            )));
        };
        let m: Share = dec(&b, "UID mask", *h)?;
        b.zeroize();
        received.push(m);
    }
    let (to, sigma) = sigma.ok_or_else(|| proto("the repair deltas did not complete"))?;
    if to != n {
        return Err(proto("the repair addressed another newcomer"));
    }
    let part = repair_part(uid, &hids, n, &masks, &received).map_err(proto)?;
    let p = pairs
        .get_mut(&n)
        .ok_or_else(|| proto("no stream to the newcomer"))?;
    send_key(p, KeyMsg::Sigma(enc(&sigma)?)).await?;
    send_key(p, KeyMsg::Part(enc(&part)?)).await?;
    frame::send(reply, &NodeReply::Accepted).await?;
    tracing::info!(node = me, newcomer = n, "helped a newcomer join");
    Ok(())
}

/// The group record a node expects for `entry`, from what it holds: `None` if it has no
/// opinion (it is not concerned).
fn expected_group(
    me: u16,
    last: Option<&GroupFile>,
    pending: Option<&Pending>,
    newcomer: Option<MemberRecord>,
) -> Result<GroupFile, String> {
    let build = |public: &PublicGroup, records: Vec<MemberRecord>, epoch: u64| {
        let mut members = records;
        members.sort_by_key(|m| m.node_id);
        GroupFile {
            version: 1,
            group_key: public.group_key().to_hex(),
            key_id: public.group_key().id(),
            epoch,
            threshold: public.threshold(),
            simulated: members.iter().any(|m| m.simulated),
            members,
        }
    };
    match (last, pending) {
        // Genesis: the group this node computed, with the records it attested.
        (None, Some(p)) => Ok(build(&p.public, p.records.values().cloned().collect(), 1)),
        (None, None) => Err("this node took part in no key generation".into()),
        // A newcomer: the old members and itself.
        (Some(g), Some(p)) => {
            let mine = p.records.get(&me).cloned().ok_or("no own record")?;
            let mut members = g.members.clone();
            members.push(mine);
            Ok(build(&p.public, members, g.epoch + 1))
        }
        // A member: the old members and the newcomer, whose verifying share must be the one
        // the old shares interpolate to.
        (Some(g), None) => {
            let mut n = newcomer.ok_or("a join entry needs the newcomer's certificate")?;
            let public = public_group(g).map_err(|e| e.to_string())?;
            let vs = public
                .expected_verifying_share(n.node_id)
                .map_err(|e| e.to_string())?;
            if hex::encode(vs) != n.verifying_share {
                return Err(format!(
                    "node {}'s verifying share is not the one the group's shares interpolate to",
                    n.node_id
                ));
            }
            n.verifying_share = hex::encode(vs);
            let mut members = g.members.clone();
            members.push(n);
            Ok(build(&public, members, g.epoch + 1))
        }
    }
}

/// Signs a membership entry (after checking it), then appends it once the group signature
/// arrives.
pub async fn sign_log(
    ctx: &Ctx,
    entry: LogEntry,
    newcomer_cert: Option<Vec<u8>>,
    reply: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> Result<(), DaemonError> {
    let me = ctx.cfg.node_id;
    let (key, check) = {
        let store = ctx.store.lock().await;
        let last = store.group();
        let newcomer = match (&newcomer_cert, entry.group.members.last()) {
            (Some(cert), _) if store.pending.is_none() => {
                let (id, peer) = ctx.tee.check_peer(cert, crate::now())?;
                let claimed = entry
                    .group
                    .member(id)
                    .ok_or_else(|| proto("the entry does not list the certified newcomer"))?;
                let vs: [u8; 32] = hex::decode(&claimed.verifying_share)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| proto("malformed verifying share"))?;
                Some(record_of(id, &vs, &peer))
            }
            _ => None,
        };
        let expected = expected_group(me, last, store.pending.as_ref(), newcomer);
        let want_change = match (last, &newcomer_cert) {
            (None, _) => "genesis".to_string(),
            (Some(_), _) => {
                let new: Vec<u16> = entry
                    .group
                    .members
                    .iter()
                    .map(|m| m.node_id)
                    .filter(|id| last.is_some_and(|g| g.member(*id).is_none()))
                    .collect();
                format!("join {}", new.first().copied().unwrap_or(0))
            }
        };
        let prev = store.log.last().map(|e| e.entry.hash()).unwrap_or_default();
        let check = match expected {
            Err(e) => Err(e),
            Ok(g) if g != entry.group => {
                Err("the entry's group differs from this node's own record".to_string())
            }
            Ok(_) if entry.prev != prev => {
                Err("the entry does not follow this node's log".to_string())
            }
            Ok(_) if entry.change != want_change => {
                Err(format!("the entry's change should read {want_change:?}"))
            }
            Ok(_) => Ok(()),
        };
        let key = match (&store.pending, &store.keys) {
            (Some(p), _) => p.state.clone(),
            (None, Some(k)) => k.clone(),
            (None, None) => return Err(proto("this node holds no keys")),
        };
        (key, check)
    };
    check.map_err(|e| proto(format!("membership entry refused: {e}")))?;
    let (nonces, c) = threshold::sign::commit(&key.key, &mut OsRng);
    frame::send(reply, &NodeReply::Commitment(enc(&c)?)).await?;
    let package = match next_follow_up(recv).await? {
        FollowUp::Package(p) => p,
        FollowUp::Abort(why) => return Err(proto(format!("aborted: {why}"))),
        FollowUp::LogSigned(_) => return Err(proto("a signature before the signing package")),
    };
    let package: threshold::sign::SigningPackage =
        postcard::from_bytes(&package).map_err(|_| proto("malformed signing package"))?;
    if package.message() != entry.message().as_slice() {
        return Err(proto(
            "the signing package is not for the entry this node checked",
        ));
    }
    let share = threshold::sign::sign_share(&key.key, nonces, &package).map_err(proto)?;
    frame::send(reply, &NodeReply::Share(enc(&share)?)).await?;
    let sig = match next_follow_up(recv).await? {
        FollowUp::LogSigned(s) => s,
        FollowUp::Abort(why) => return Err(proto(format!("aborted: {why}"))),
        FollowUp::Package(_) => return Err(proto("a second signing package")),
    };
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| proto("the log signature is not 64 bytes"))?;
    let gk = threshold::GroupKey::from_hex(&entry.group.group_key).map_err(proto)?;
    gk.verify(&entry.message(), &sig)
        .map_err(|_| proto("the log entry's group signature does not verify"))?;
    let epoch = entry.group.epoch;
    let mut store = ctx.store.lock().await;
    store.append(SignedEntry {
        entry,
        signature: hex::encode(sig),
    })?;
    ctx.metrics
        .epoch
        .store(store.member_epoch(), std::sync::atomic::Ordering::SeqCst);
    tracing::info!(node = me, epoch, "membership entry signed and logged");
    Ok(())
}

async fn next_follow_up(r: &mut quinn::RecvStream) -> Result<FollowUp, DaemonError> {
    tokio::time::timeout(KEY_TIMEOUT, frame::recv(r, SMALL))
        .await
        .map_err(|_| proto("the coordinator went silent"))?
        .map_err(DaemonError::from)
}
