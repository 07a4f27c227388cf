//! Routes incoming QUIC streams to the task waiting for them. A stream's first message
//! ([`wire::msg::StreamHello`]) names its route; the session or key-management task registers
//! the routes it expects. A stream that arrives before its waiter is parked for a while.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use attestation::AttestedPeer;
use tokio::sync::oneshot;
use wire::msg::SessionId;

/// What a stream is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// The client's stream for a session.
    Client(SessionId),
    /// A peer's stream for a session, by the peer's role.
    Peer(SessionId, u8),
    /// A peer's key-generation stream, by its node id.
    Genesis(u16),
    /// A peer's repair stream for a newcomer, by (newcomer, sender).
    Repair(u16, u16),
}

/// An accepted stream and, for a peer node, its attested identity.
pub struct Incoming {
    /// Send half.
    pub send: quinn::SendStream,
    /// Receive half.
    pub recv: quinn::RecvStream,
    /// The peer node's id and attestation (None for clients).
    pub peer: Option<(u16, AttestedPeer)>,
}

enum Slot {
    Waiting(oneshot::Sender<Incoming>),
    Parked(Box<Incoming>, Instant),
}

/// The routing table.
#[derive(Default)]
pub struct Router {
    slots: Mutex<HashMap<Route, Slot>>,
}

/// How long a parked stream waits for its task.
const PARK: Duration = Duration::from_secs(60);
/// Most parked streams.
const MAX_PARKED: usize = 4096;

impl Router {
    /// Registers `route`; the receiver yields its stream.
    pub fn expect(&self, route: Route) -> oneshot::Receiver<Incoming> {
        let (tx, rx) = oneshot::channel();
        let Ok(mut slots) = self.slots.lock() else {
            return rx;
        };
        match slots.remove(&route) {
            Some(Slot::Parked(inc, _)) => {
                let _ = tx.send(*inc);
            }
            _ => {
                slots.insert(route, Slot::Waiting(tx));
            }
        }
        rx
    }

    /// Hands `inc` to `route`'s waiter, or parks it; false if it was dropped (a duplicate, or
    /// too many parked).
    pub fn deliver(&self, route: Route, inc: Incoming) -> bool {
        let Ok(mut slots) = self.slots.lock() else {
            return false;
        };
        let now = Instant::now();
        slots.retain(|_, s| match s {
            Slot::Parked(_, t) => now.duration_since(*t) < PARK,
            Slot::Waiting(tx) => !tx.is_closed(),
        });
        match slots.remove(&route) {
            Some(Slot::Waiting(tx)) => tx.send(inc).is_ok(),
            Some(parked @ Slot::Parked(..)) => {
                slots.insert(route, parked);
                false
            }
            None if slots.len() < MAX_PARKED => {
                slots.insert(route, Slot::Parked(Box::new(inc), now));
                true
            }
            None => false,
        }
    }

    /// Drops `routes` (a session that ended).
    pub fn forget(&self, routes: &[Route]) {
        if let Ok(mut slots) = self.slots.lock() {
            for r in routes {
                slots.remove(r);
            }
        }
    }
}
