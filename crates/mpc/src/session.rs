//! The async driver: moves messages between a [`Party`] state machine and a [`Transport`],
//! runs the party's heavy work, enforces a receive timeout, and on any failure makes sure the
//! peers are told (so every honest party ends in an abort, not a hang).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};

use crate::spec::{ExecId, ExecSpec};
use crate::three_party::{self, Abort, GroupOutput, Inputs, Party, Work};
use crate::transport::{Transport, TransportError};

/// Default time to wait for a peer's next message.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a session stopped.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The protocol aborted (a peer deviated or aborted) or the API was misused.
    #[error(transparent)]
    Protocol(#[from] three_party::Error),
    /// The transport failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// No message arrived in time.
    #[error("no message from any peer within {0:?}")]
    Timeout(Duration),
    /// An arithmetic computation aborted.
    #[error(transparent)]
    Arith(#[from] crate::rss::ArithAbort),
}

impl SessionError {
    /// The protocol abort behind this error, if it is one.
    pub fn abort(&self) -> Option<&Abort> {
        match self {
            SessionError::Protocol(three_party::Error::Abort(a)) => Some(a),
            _ => None,
        }
    }
}

/// Time spent in each kind of local work.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkTimings {
    /// Garbling (garblers).
    pub garble: Duration,
    /// AND gates garbled.
    pub garbled_ands: usize,
    /// Hashing tables into digests (the non-sending garbler).
    pub digest: Duration,
    /// Checking tables against digests (evaluator).
    pub verify: Duration,
    /// Evaluating (evaluator), including input-label checks and output decoding.
    pub evaluate: Duration,
    /// AND gates evaluated.
    pub evaluated_ands: usize,
}

/// A party plus its transport.
#[derive(Debug)]
pub struct Session<T> {
    party: Party,
    transport: T,
    timeout: Duration,
    timings: WorkTimings,
}

impl<T: Transport> Session<T> {
    /// Wraps a party and its transport.
    pub fn new(party: Party, transport: T) -> Self {
        Self {
            party,
            transport,
            timeout: DEFAULT_TIMEOUT,
            timings: WorkTimings::default(),
        }
    }

    /// The transport, to run other protocols (such as [`run_arith`]) over the same links.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Sets the receive timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The state machine.
    pub fn party(&self) -> &Party {
        &self.party
    }

    /// The transport (for its byte counts).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Local work timings so far.
    pub fn timings(&self) -> WorkTimings {
        self.timings
    }

    /// Runs the garblers' seed coin toss to completion.
    pub async fn setup(&mut self) -> Result<(), SessionError> {
        self.drive(|p| p.is_ready()).await
    }

    /// Registers an execution; garblers garble and ship it on the next [`Session::flush`] or
    /// while driving another call.
    pub fn preprocess(&mut self, spec: Arc<ExecSpec>) -> Result<ExecId, SessionError> {
        Ok(self.party.preprocess(spec)?)
    }

    /// Does all local work that is ready and sends everything queued.
    pub async fn flush(&mut self) -> Result<(), SessionError> {
        self.pump().await
    }

    /// Supplies this party's inputs to `exec` and drives the session until this party has
    /// the execution's outputs.
    pub async fn execute<R: RngCore + CryptoRng>(
        &mut self,
        exec: ExecId,
        inputs: Inputs,
        rng: &mut R,
    ) -> Result<Vec<GroupOutput>, SessionError> {
        self.party.start(exec, inputs, rng)?;
        self.drive(|p| p.output(exec).is_some()).await?;
        self.party.take_output(exec).ok_or_else(|| {
            SessionError::Protocol(three_party::Error::Usage(format!(
                "outputs of execution {exec} were already taken"
            )))
        })
    }

    /// Keeps receiving and working until `done` holds, or an abort.
    pub async fn drive(
        &mut self,
        mut done: impl FnMut(&Party) -> bool,
    ) -> Result<(), SessionError> {
        loop {
            self.pump().await?;
            if done(&self.party) {
                return Ok(());
            }
            let received = tokio::time::timeout(self.timeout, self.transport.recv()).await;
            let (from, bytes) = match received {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => {
                    self.party.abort_local("transport failed");
                    self.send_queued().await;
                    return Err(e.into());
                }
                Err(_) => {
                    self.party.abort_local("timed out waiting for a peer");
                    self.send_queued().await;
                    return Err(SessionError::Timeout(self.timeout));
                }
            };
            if let Err(e) = self.party.handle_owned(from, bytes) {
                self.send_queued().await;
                return Err(e.into());
            }
        }
    }

    async fn pump(&mut self) -> Result<(), SessionError> {
        loop {
            self.send_queued_checked().await?;
            let t = Instant::now();
            match self.party.poll_work() {
                Ok(Some(w)) => self.record(w, t.elapsed()),
                Ok(None) => break,
                Err(e) => {
                    self.send_queued().await;
                    return Err(e.into());
                }
            }
        }
        self.send_queued_checked().await
    }

    fn record(&mut self, w: Work, d: Duration) {
        let t = &mut self.timings;
        match w {
            Work::Garbled { and_gates, .. } => {
                t.garble += d;
                t.garbled_ands += and_gates;
            }
            Work::Digested { .. } => t.digest += d,
            Work::Shipped { .. } => {}
            Work::Verified { .. } => t.verify += d,
            Work::Evaluated { and_gates, .. } => {
                t.evaluate += d;
                t.evaluated_ands += and_gates;
            }
        }
    }

    async fn send_queued_checked(&mut self) -> Result<(), SessionError> {
        while let Some((to, m)) = self.party.poll_transmit() {
            if let Err(e) = self.transport.send(to, m.into_bytes()).await {
                self.party.abort_local("transport failed");
                self.send_queued().await;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Best-effort delivery of whatever is queued (abort notices), ignoring transport errors.
    async fn send_queued(&mut self) {
        while let Some((to, m)) = self.party.poll_transmit() {
            let _ = self.transport.send(to, m.into_bytes()).await;
        }
    }
}

/// Runs an arithmetic [`Machine`](crate::rss::Machine) to completion over `transport`: sends
/// what it queues, feeds it every message, and returns its output once the multiplication
/// check has passed. On any failure the peers are told (best effort) and no output is
/// returned; a peer silent for `timeout` ends the run with [`SessionError::Timeout`].
pub async fn run_arith<T, F, P>(
    transport: &mut T,
    machine: &mut crate::rss::Machine<F, P>,
    timeout: Duration,
) -> Result<P::Output, SessionError>
where
    T: Transport,
    F: crate::field::Field,
    P: crate::rss::Program<F>,
{
    async fn flush<T: Transport, F: crate::field::Field, P: crate::rss::Program<F>>(
        t: &mut T,
        m: &mut crate::rss::Machine<F, P>,
    ) -> Result<(), TransportError> {
        while let Some((to, bytes)) = m.poll_transmit() {
            t.send(to, bytes).await?;
        }
        Ok(())
    }
    loop {
        if let Err(e) = flush(transport, machine).await {
            machine.abort_local("transport failed");
            let _ = flush(transport, machine).await;
            return Err(e.into());
        }
        if let Some(a) = machine.aborted() {
            return Err(a.clone().into());
        }
        if machine.is_done() {
            return machine.take_output().ok_or_else(|| {
                crate::rss::ArithAbort::Local("output already taken".into()).into()
            });
        }
        let (from, bytes) = match tokio::time::timeout(timeout, transport.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                machine.abort_local("transport failed");
                let _ = flush(transport, machine).await;
                return Err(e.into());
            }
            Err(_) => {
                machine.abort_local("timed out waiting for a peer");
                let _ = flush(transport, machine).await;
                return Err(SessionError::Timeout(timeout));
            }
        };
        if let Err(a) = machine.handle(from, &bytes) {
            let _ = flush(transport, machine).await;
            return Err(a.into());
        }
    }
}
