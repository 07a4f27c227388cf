//! The async driver over real transports: in-memory channels and framed byte streams.
//! Honest runs produce correct outputs and consistent byte counts; a dead or silent peer
//! ends every other party's session with an error (no hang, no output); a deviating peer's
//! abort reaches the others through the driver.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

mod common;
use common::{aes_ref, aes_spec};
use mpc::circuit::{bits_to_bytes, bytes_to_bits};
use mpc::msg::{AbortCode, Msg};
use mpc::session::{Session, SessionError};
use mpc::transport::{memory_network, pipe_network, TrafficStats, Transport, TransportError};
use mpc::{Abort, GroupOutput, Inputs, Party, PartyId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn inputs_for(id: PartyId, key: &[u8; 16], pt: &[u8; 16]) -> Inputs {
    match id {
        0 => Inputs::none().value(0, bytes_to_bits(key)),
        2 => Inputs::none().value(1, bytes_to_bits(pt)),
        _ => Inputs::none(),
    }
}

/// One party's whole run: setup, preprocess `n` AES executions, then run them online.
async fn run_party<T: Transport>(
    t: T,
    n: usize,
    key: [u8; 16],
    pt: [u8; 16],
    timeout: Duration,
) -> (Result<Vec<Vec<u8>>, SessionError>, TrafficStats) {
    let id = t.id();
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(id) + 40);
    let party = Party::new(id, &mut rng).unwrap();
    let mut s = Session::new(party, t).with_timeout(timeout);
    let r = async {
        s.setup().await?;
        let spec = aes_spec();
        let ids: Vec<_> = (0..n)
            .map(|_| s.preprocess(spec.clone()).unwrap())
            .collect();
        s.flush().await?;
        let mut outs = Vec::new();
        for e in ids {
            let o = s.execute(e, inputs_for(id, &key, &pt), &mut rng).await?;
            match &o[0] {
                GroupOutput::Value(v) => outs.push(bits_to_bytes(v)),
                other => panic!("{other:?}"),
            }
        }
        Ok(outs)
    }
    .await;
    let stats = s.transport().stats();
    (r, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_network_runs_several_executions() {
    let key = [7u8; 16];
    let pt = [9u8; 16];
    let handles: Vec<_> = memory_network()
        .into_iter()
        .map(|t| tokio::spawn(run_party(t, 3, key, pt, Duration::from_secs(30))))
        .collect();
    let mut stats = Vec::new();
    for h in handles {
        let (r, s) = h.await.unwrap();
        let outs = r.unwrap();
        assert_eq!(outs.len(), 3);
        assert!(outs.iter().all(|o| *o == aes_ref(&key, &pt)));
        stats.push(s);
    }
    // Every byte sent is received, per link.
    for a in 0..3 {
        for b in 0..3 {
            assert_eq!(stats[a].sent[b], stats[b].received[a], "link {a}->{b}");
        }
    }
    // The evaluator receives at least the tables: 32 bytes per AND gate.
    assert!(stats[2].total_received() >= 3 * 6400 * 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framed_byte_streams_run_the_protocol() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let key: [u8; 16] = rng.gen();
    let pt: [u8; 16] = rng.gen();
    let handles: Vec<_> = pipe_network(64 * 1024)
        .unwrap()
        .into_iter()
        .map(|t| tokio::spawn(run_party(t, 2, key, pt, Duration::from_secs(30))))
        .collect();
    for h in handles {
        let (r, _) = h.await.unwrap();
        assert!(r.unwrap().iter().all(|o| *o == aes_ref(&key, &pt)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_peer_ends_the_others_sessions() {
    let [t0, t1, t2] = memory_network();
    // Garbler 1 dies right away: its transport is dropped.
    drop(t1);
    let key = [1u8; 16];
    let pt = [2u8; 16];
    let h0 = tokio::spawn(run_party(t0, 1, key, pt, Duration::from_secs(5)));
    let h2 = tokio::spawn(run_party(t2, 1, key, pt, Duration::from_secs(5)));
    let (r0, _) = h0.await.unwrap();
    let (r2, _) = h2.await.unwrap();
    // Garbler 0 cannot even send to it; the evaluator never gets a digest and times out or
    // hears garbler 0's abort.
    assert!(matches!(
        r0,
        Err(SessionError::Transport(TransportError::Closed(1)))
    ));
    assert!(r2.is_err());
}

/// A transport that silently drops every message of one kind from this party.
struct Dropping<T> {
    inner: T,
    kind: &'static str,
}

impl<T: Transport> Transport for Dropping<T> {
    fn id(&self) -> PartyId {
        self.inner.id()
    }
    async fn send(&mut self, to: PartyId, payload: Vec<u8>) -> Result<(), TransportError> {
        if Msg::decode(&payload).map(|m| m.kind()) == Ok(self.kind) {
            return Ok(());
        }
        self.inner.send(to, payload).await
    }
    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        self.inner.recv().await
    }
    fn stats(&self) -> TrafficStats {
        self.inner.stats()
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_times_out_everywhere() {
    let [t0, t1, t2] = memory_network();
    let key = [3u8; 16];
    let pt = [4u8; 16];
    let timeout = Duration::from_secs(10);
    let t1 = Dropping {
        inner: t1,
        kind: "InputLabels",
    };
    let (a, b, c) = tokio::join!(
        run_party(t0, 1, key, pt, timeout),
        run_party(t1, 1, key, pt, timeout),
        run_party(t2, 1, key, pt, timeout),
    );
    // The evaluator waits for garbler 1's labels while the garblers wait for its reveal.
    // Whoever times out first tells the others; every party ends in an error, none holds an
    // output, and at least one error is the timeout itself.
    let results = [a.0, b.0, c.0];
    let mut timeouts = 0;
    for r in results {
        let e = r.unwrap_err();
        match &e {
            SessionError::Timeout(_) => timeouts += 1,
            other => assert!(
                matches!(
                    other.abort(),
                    Some(Abort::PeerAborted {
                        reason: AbortCode::Local,
                        ..
                    })
                ),
                "{e:?}"
            ),
        }
    }
    assert!(timeouts >= 1);
}

/// A transport that flips one bit of every garbled-table message it sends.
struct Flipping<T> {
    inner: T,
}

impl<T: Transport> Transport for Flipping<T> {
    fn id(&self) -> PartyId {
        self.inner.id()
    }
    async fn send(&mut self, to: PartyId, mut payload: Vec<u8>) -> Result<(), TransportError> {
        if Msg::decode(&payload).map(|m| m.kind()) == Ok("Garbled") {
            let n = payload.len();
            payload[n - 100] ^= 4;
        }
        self.inner.send(to, payload).await
    }
    async fn recv(&mut self) -> Result<(PartyId, Vec<u8>), TransportError> {
        self.inner.recv().await
    }
    fn stats(&self) -> TrafficStats {
        self.inner.stats()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cheating_garbler_is_caught_through_the_driver() {
    let [t0, t1, t2] = memory_network();
    let key = [5u8; 16];
    let pt = [6u8; 16];
    let d = Duration::from_secs(20);
    let h0 = tokio::spawn(run_party(Flipping { inner: t0 }, 1, key, pt, d));
    let h1 = tokio::spawn(run_party(t1, 1, key, pt, d));
    let h2 = tokio::spawn(run_party(t2, 1, key, pt, d));
    let (_, _) = h0.await.unwrap();
    let (r1, _) = h1.await.unwrap();
    let (r2, _) = h2.await.unwrap();
    assert!(matches!(
        r2.unwrap_err().abort(),
        Some(Abort::TableMismatch { sender: 0, .. })
    ));
    // Garbler 1 either reads the evaluator's abort notice or, if the evaluator has already
    // shut down, fails to send to it; either way it ends in an error.
    let e1 = r1.unwrap_err();
    assert!(
        matches!(e1.abort(), Some(Abort::PeerAborted { party: 2, .. }))
            || matches!(e1, SessionError::Transport(TransportError::Closed(2))),
        "{e1:?}"
    );
}
