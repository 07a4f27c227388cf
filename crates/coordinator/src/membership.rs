//! The coordinator's membership logic as a pure state machine over node ids, in the style of
//! `quinn_proto::Endpoint`: no connection, no clock, no global randomness. The QUIC server
//! tells it what happened (a node attested and said hello, a connection closed, a node is
//! draining, a change completed) and asks it what to do next (run the genesis, let a node
//! join, seat a committee with a random source it passes in). Tests drive it by hand.
//!
//! What it does not decide: whether an attestation verifies (the server does that with the
//! node's RA-TLS certificate before calling [`Membership::admit`]) and whether a key change
//! succeeded (the nodes compute it; the server reports the outcome).

use std::collections::BTreeMap;

use notarization::group::{GroupFile, MemberRecord};
use rand::RngCore;
use wire::msg::{NodeStatus, Seat};

/// What the coordinator knows of one connected node.
#[derive(Debug, Clone)]
pub struct Node {
    /// The connection it is on (the server's connection id; a reconnect gets another).
    pub conn: u64,
    /// Its QUIC address for peers and clients.
    pub addr: String,
    /// Its RA-TLS certificate (DER), handed to helpers when it joins.
    pub cert: Vec<u8>,
    /// Its public record: the one in the membership log for a member, else as attested.
    pub record: MemberRecord,
    /// Holds keys for the latest epoch.
    pub member: bool,
    /// Told the coordinator it is shutting down.
    pub draining: bool,
    /// Its connection is open.
    pub connected: bool,
    /// Sessions it is seated in now.
    pub active: u64,
}

impl Node {
    /// Can be seated or take part in a change.
    fn available(&self) -> bool {
        self.connected && !self.draining
    }
}

/// A node asking to be admitted, after its attestation verified.
#[derive(Debug, Clone)]
pub struct Hello {
    /// Its id (bound to its certificate).
    pub node_id: u16,
    /// The server's id for its connection.
    pub conn: u64,
    /// Its QUIC address.
    pub addr: String,
    /// The epoch whose keys it says it holds (0: none).
    pub epoch: u64,
    /// Its RA-TLS certificate.
    pub cert: Vec<u8>,
    /// Its record as attested (TEE kind, measurement, simulated).
    pub attested: MemberRecord,
}

/// Why a node is not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// Another live connection holds this id.
    #[error("node id {0} is already connected")]
    AlreadyConnected(u16),
    /// A member attests another measurement than the log records.
    #[error("node {node} attests measurement {attested} but the group recorded {recorded}")]
    Measurement {
        /// The node.
        node: u16,
        /// What it attests.
        attested: String,
        /// What the log holds.
        recorded: String,
    },
    /// A member that lost its keys.
    #[error("node {0} is a member but holds no keys: restore its sealed state")]
    NoKeys(u16),
    /// A node claiming keys the log does not give it.
    #[error("node {node} claims keys for epoch {epoch} but is not in the membership log")]
    NotInLog {
        /// The node.
        node: u16,
        /// The epoch it claims.
        epoch: u64,
    },
}

/// Why no committee can be seated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    /// No genesis yet.
    #[error("the notary set has no group yet")]
    NoGroup,
    /// Fewer than three members are connected and not draining.
    #[error("only {0} healthy notary nodes; a session needs 3")]
    TooFew(usize),
}

/// The next membership change to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to do.
    Idle,
    /// No group yet and too few nodes for the genesis.
    Waiting {
        /// Nodes available.
        have: usize,
        /// Nodes the genesis needs.
        need: usize,
    },
    /// Run the genesis among these nodes (id, address), in id order.
    Genesis(Vec<(u16, String)>),
    /// Let this node join.
    Join {
        /// The newcomer.
        node: u16,
        /// Its address.
        addr: String,
        /// Its certificate.
        cert: Vec<u8>,
    },
}

/// The membership state (see the module docs).
#[derive(Debug, Clone)]
pub struct Membership {
    genesis_nodes: usize,
    group: Option<GroupFile>,
    nodes: BTreeMap<u16, Node>,
}

impl Membership {
    /// A coordinator that runs the genesis once `genesis_nodes` nodes are connected, with
    /// the latest group record from its log (`None` before the genesis).
    pub fn new(genesis_nodes: usize, group: Option<GroupFile>) -> Self {
        Membership {
            genesis_nodes,
            group,
            nodes: BTreeMap::new(),
        }
    }

    /// The latest group record.
    pub fn group(&self) -> Option<&GroupFile> {
        self.group.as_ref()
    }

    /// The node `id`, if connected or known.
    pub fn node(&self, id: u16) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// Admits a node whose attestation verified: a member must attest the measurement the
    /// log records and hold keys; a newcomer must hold none. A node reconnecting replaces
    /// its closed connection; a second live connection for an id is refused.
    pub fn admit(&mut self, h: Hello) -> Result<&Node, AdmitError> {
        if self.nodes.get(&h.node_id).is_some_and(|n| n.connected) {
            return Err(AdmitError::AlreadyConnected(h.node_id));
        }
        let logged = self
            .group
            .as_ref()
            .and_then(|g| g.member(h.node_id))
            .cloned();
        let (record, member) = match logged {
            Some(m) => {
                let a = &h.attested;
                if !m.same_tee(a) {
                    return Err(AdmitError::Measurement {
                        node: h.node_id,
                        attested: a.measurement.clone(),
                        recorded: m.measurement,
                    });
                }
                if h.epoch == 0 {
                    return Err(AdmitError::NoKeys(h.node_id));
                }
                (m, true)
            }
            None if h.epoch != 0 => {
                return Err(AdmitError::NotInLog {
                    node: h.node_id,
                    epoch: h.epoch,
                })
            }
            None => (h.attested, false),
        };
        let node = Node {
            conn: h.conn,
            addr: h.addr,
            cert: h.cert,
            record,
            member,
            draining: false,
            connected: true,
            active: 0,
        };
        self.nodes.insert(h.node_id, node);
        Ok(&self.nodes[&h.node_id])
    }

    /// Node `id` said it is shutting down: no new sessions or changes.
    pub fn draining(&mut self, id: u16) {
        if let Some(n) = self.nodes.get_mut(&id) {
            n.draining = true;
        }
    }

    /// Connection `conn` of node `id` closed. Returns whether the node had been draining
    /// (a clean leave), or `None` if that connection was already replaced.
    pub fn closed(&mut self, id: u16, conn: u64) -> Option<bool> {
        if self.nodes.get(&id).is_some_and(|n| n.conn == conn) {
            return self.nodes.remove(&id).map(|n| n.draining);
        }
        None
    }

    /// What to run next: the genesis when there is no group and enough nodes; else the
    /// lowest-numbered connected newcomer's join.
    pub fn next_change(&self) -> Change {
        if self.group.is_none() {
            let candidates: Vec<(u16, String)> = self
                .nodes
                .iter()
                .filter(|(_, n)| n.available())
                .map(|(id, n)| (*id, n.addr.clone()))
                .collect();
            if candidates.len() < self.genesis_nodes {
                return Change::Waiting {
                    have: candidates.len(),
                    need: self.genesis_nodes,
                };
            }
            return Change::Genesis(candidates[..self.genesis_nodes].to_vec());
        }
        match self.nodes.iter().find(|(_, n)| !n.member && n.available()) {
            Some((id, n)) => Change::Join {
                node: *id,
                addr: n.addr.clone(),
                cert: n.cert.clone(),
            },
            None => Change::Idle,
        }
    }

    /// A change completed: `group` is the new latest record and `signers` the members that
    /// hold its keys. Members that did not take part stay behind (not seated) until they
    /// reconnect and adopt the log.
    pub fn changed(&mut self, group: GroupFile, signers: &[u16]) {
        for (id, n) in self.nodes.iter_mut() {
            match group.member(*id) {
                Some(m) if signers.contains(id) => {
                    n.member = true;
                    n.record = m.clone();
                }
                _ => n.member = false,
            }
        }
        self.group = Some(group);
    }

    /// The `t` helpers of a join: the lowest-numbered members that are connected and not
    /// draining, roles in that order.
    pub fn helpers(&self, t: usize) -> Vec<Seat> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.member && n.available())
            .take(t)
            .enumerate()
            .map(|(i, (id, n))| Seat {
                role: i as u8,
                node_id: *id,
                addr: n.addr.clone(),
            })
            .collect()
    }

    /// Who signs the entry that makes `group`: its members that are connected and hold the
    /// current keys, and the `newcomer` (which just received its share).
    pub fn signers(&self, group: &GroupFile, newcomer: Option<u16>) -> Vec<u16> {
        group
            .members
            .iter()
            .map(|m| m.node_id)
            .filter(|id| {
                self.nodes
                    .get(id)
                    .is_some_and(|n| (n.member || Some(*id) == newcomer) && n.connected)
            })
            .collect()
    }

    /// Members of the latest group that are connected and not draining.
    pub fn healthy(&self) -> usize {
        self.nodes
            .iter()
            .filter(|(id, n)| self.seatable(**id, n))
            .count()
    }

    fn seatable(&self, id: u16, n: &Node) -> bool {
        n.member && n.available() && self.group.as_ref().is_some_and(|g| g.member(id).is_some())
    }

    /// Seats a committee: the three least busy healthy members, ties broken by `rng`;
    /// roles in id order. Each seated node counts one more active session until
    /// [`release`](Self::release).
    pub fn seat<R: RngCore>(&mut self, rng: &mut R) -> Result<Vec<Seat>, SeatError> {
        if self.group.is_none() {
            return Err(SeatError::NoGroup);
        }
        let mut healthy: Vec<(u64, u64, u16)> = self
            .nodes
            .iter()
            .filter(|(id, n)| self.seatable(**id, n))
            .map(|(id, n)| (n.active, rng.next_u64(), *id))
            .collect();
        if healthy.len() < 3 {
            return Err(SeatError::TooFew(healthy.len()));
        }
        healthy.sort_unstable();
        let mut pick: Vec<u16> = healthy[..3].iter().map(|h| h.2).collect();
        pick.sort_unstable();
        let mut seats = Vec::new();
        for (role, id) in pick.iter().enumerate() {
            if let Some(n) = self.nodes.get_mut(id) {
                n.active += 1;
                seats.push(Seat {
                    role: role as u8,
                    node_id: *id,
                    addr: n.addr.clone(),
                });
            }
        }
        Ok(seats)
    }

    /// A session with `seats` ended.
    pub fn release(&mut self, seats: &[Seat]) {
        for s in seats {
            if let Some(n) = self.nodes.get_mut(&s.node_id) {
                n.active = n.active.saturating_sub(1);
            }
        }
    }

    /// The public directory.
    pub fn statuses(&self) -> Vec<NodeStatus> {
        let epoch = self.group.as_ref().map_or(0, |g| g.epoch);
        self.nodes
            .iter()
            .map(|(id, n)| NodeStatus {
                node_id: *id,
                addr: n.addr.clone(),
                healthy: n.member && n.available(),
                epoch: if n.member { epoch } else { 0 },
                tee: n.record.tee.clone(),
                measurement: n.record.measurement.clone(),
                simulated: n.record.simulated,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn record(id: u16, measurement: &str) -> MemberRecord {
        MemberRecord {
            node_id: id,
            verifying_share: String::new(),
            tee: "tdx".into(),
            measurement: measurement.into(),
            simulated: true,
        }
    }

    fn hello(id: u16, conn: u64, epoch: u64) -> Hello {
        Hello {
            node_id: id,
            conn,
            addr: format!("127.0.0.1:{}", 7000 + id),
            epoch,
            cert: vec![id as u8],
            attested: record(id, "aa"),
        }
    }

    fn group(ids: &[u16], epoch: u64) -> GroupFile {
        GroupFile {
            version: 1,
            group_key: "00".repeat(32),
            key_id: "k".into(),
            threshold: 2,
            epoch,
            simulated: true,
            members: ids.iter().map(|&i| record(i, "aa")).collect(),
        }
    }

    #[test]
    fn genesis_waits_for_enough_nodes_then_takes_the_first_ones() {
        let mut m = Membership::new(3, None);
        assert_eq!(m.next_change(), Change::Waiting { have: 0, need: 3 });
        for id in [5, 2] {
            m.admit(hello(id, u64::from(id), 0)).unwrap();
        }
        assert_eq!(m.next_change(), Change::Waiting { have: 2, need: 3 });
        m.draining(2);
        m.admit(hello(9, 9, 0)).unwrap();
        m.admit(hello(7, 7, 0)).unwrap();
        // Node 2 is draining: not a candidate.
        match m.next_change() {
            Change::Genesis(members) => {
                let ids: Vec<u16> = members.iter().map(|x| x.0).collect();
                assert_eq!(ids, vec![5, 7, 9]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            m.seat(&mut rand::rngs::OsRng),
            Err(SeatError::NoGroup)
        ));
    }

    #[test]
    fn admission_follows_the_log() {
        let mut m = Membership::new(3, Some(group(&[1, 2, 3], 1)));
        assert_eq!(m.admit(hello(1, 1, 0)).unwrap_err(), AdmitError::NoKeys(1));
        assert_eq!(
            m.admit(hello(4, 4, 1)).unwrap_err(),
            AdmitError::NotInLog { node: 4, epoch: 1 }
        );
        let mut other = hello(2, 2, 1);
        other.attested.measurement = "bb".into();
        assert!(matches!(
            m.admit(other),
            Err(AdmitError::Measurement { node: 2, .. })
        ));
        assert!(m.admit(hello(1, 10, 1)).unwrap().member);
        assert_eq!(
            m.admit(hello(1, 11, 1)).unwrap_err(),
            AdmitError::AlreadyConnected(1)
        );
        // A stale connection's close does not remove the live one.
        assert_eq!(m.closed(1, 99), None);
        assert_eq!(m.closed(1, 10), Some(false));
        assert!(m.admit(hello(1, 11, 1)).is_ok());
        assert!(!m.admit(hello(4, 4, 0)).unwrap().member);
    }

    #[test]
    fn newcomers_join_one_at_a_time_in_id_order() {
        let mut m = Membership::new(3, Some(group(&[1, 2, 3], 1)));
        for id in [1, 2, 3] {
            m.admit(hello(id, u64::from(id), 1)).unwrap();
        }
        assert_eq!(m.next_change(), Change::Idle);
        m.admit(hello(6, 6, 0)).unwrap();
        m.admit(hello(4, 4, 0)).unwrap();
        assert!(matches!(m.next_change(), Change::Join { node: 4, .. }));
        let next = group(&[1, 2, 3, 4], 2);
        assert_eq!(
            m.helpers(2).iter().map(|s| s.node_id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(m.signers(&next, Some(4)), vec![1, 2, 3, 4]);
        m.closed(3, 3);
        assert_eq!(m.signers(&next, Some(4)), vec![1, 2, 4]);
        m.changed(next, &[1, 2, 4]);
        assert!(m.node(4).unwrap().member);
        m.admit(hello(3, 33, 1)).unwrap();
        // Node 3 missed epoch 2's entry; a join leaves its share unchanged, so once it
        // reconnects (and adopts the log the welcome carries) it is a member again.
        assert!(m.node(3).unwrap().member);
        assert!(matches!(m.next_change(), Change::Join { node: 6, .. }));
        assert_eq!(m.statuses().iter().filter(|s| s.epoch == 2).count(), 4);
    }

    #[test]
    fn committees_are_the_least_busy_healthy_members() {
        let mut m = Membership::new(3, Some(group(&[1, 2, 3, 4, 5], 2)));
        for id in [1, 2, 3, 4, 5] {
            m.admit(hello(id, u64::from(id), 2)).unwrap();
        }
        m.admit(hello(6, 6, 0)).unwrap(); // not a member: never seated
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let a = m.seat(&mut rng).unwrap();
        assert_eq!(a.iter().map(|s| s.role).collect::<Vec<_>>(), vec![0, 1, 2]);
        let b = m.seat(&mut rng).unwrap();
        // The second committee prefers the two idle members.
        let busy: Vec<u16> = a.iter().map(|s| s.node_id).collect();
        let fresh = b.iter().filter(|s| !busy.contains(&s.node_id)).count();
        assert_eq!(fresh, 2, "{a:?} {b:?}");
        assert!(b.iter().all(|s| s.node_id != 6));
        // The same seed seats the same committee.
        let mut again = Membership::new(3, Some(group(&[1, 2, 3, 4, 5], 2)));
        for id in [1, 2, 3, 4, 5] {
            again.admit(hello(id, u64::from(id), 2)).unwrap();
        }
        let a2 = again
            .seat(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7))
            .unwrap();
        assert_eq!(a, a2);
        m.release(&a);
        m.release(&b);
        assert!(m.statuses().iter().all(|s| s.node_id == 6 || s.healthy));
        // Draining and disconnected members are not seated.
        m.draining(1);
        m.closed(2, 2);
        m.closed(3, 3);
        assert_eq!(m.healthy(), 2);
        assert_eq!(m.seat(&mut rng).unwrap_err(), SeatError::TooFew(2));
    }
}
