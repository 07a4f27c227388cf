//! A node's side of the disclosure, on a committed MPC-TLS session: receive the client's
//! request, check it and agree on it with the other nodes, decrypt what it needs with the
//! traffic keys still on the wires, scan, and compute the final outputs. Every node derives
//! the same executions in the same order from the public request; a node holds only
//! ciphertext, labels and its own shares, never plaintext.

use std::time::{Duration, Instant};

use mpc::circuit::bytes_to_bits;
use mpc::transport::Transport;
use mpc::{GroupOutput, Inputs};
use mpc_tls::node::{Committed, NodeError};
use mpc_tls::proto::{Failure, FailureCode, RecordCopy, KEPT_RESPONSE_BYTES};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::circuit::{dec_in, read_final, BuildError, Refusal};
use crate::http::request_prefix;
use crate::pipeline::{response_records_needed, Pipeline, Step};
use crate::request::{DisclosureRequest, DisclosureResult, InputShares, Plan, RequestError};

/// Client → nodes, after the response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ClientMsg {
    /// What to attest, and this node's shares of the salts.
    Disclose {
        /// The public request.
        request: DisclosureRequest,
        /// This node's shares.
        shares: InputShares,
        /// Copies of the response records the disclosure decrypts that a node keeps only
        /// the digest of (past [`KEPT_RESPONSE_BYTES`]); each is checked against its digest.
        records: Vec<RecordCopy>,
    },
}

/// Nodes → client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum NodeMsg {
    /// The committee's result.
    Disclosed(DisclosureResult),
}

/// A node's share of the UID key, as the final execution takes it.
#[derive(Debug, Clone)]
pub struct UidKey {
    /// This node's share.
    pub share: uid_prf::shamir::Share,
    /// Every party's share coordinate (node id), party 0 first.
    pub xs: [u16; 3],
    /// The Shamir threshold.
    pub t: usize,
}

/// Deliberate deviations, for adversarial tests; all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Feed a decryption a ciphertext with one bit flipped.
    pub bad_ciphertext: bool,
    /// Feed the final execution a UID key share with one bit flipped.
    pub bad_uid_share: bool,
}

/// A node's disclosure settings.
#[derive(Debug, Clone, Default)]
pub struct DiscloseConfig {
    /// This node's UID key share, if it serves nullifiers.
    pub uid: Option<UidKey>,
    /// Deviations for tests (only builds with the `faults` feature have this field).
    #[cfg(feature = "faults")]
    pub faults: Faults,
}

impl DiscloseConfig {
    /// Settings with this node's UID key share (if it serves nullifiers) and no deviation.
    pub fn new(uid: Option<UidKey>) -> Self {
        DiscloseConfig {
            uid,
            #[cfg(feature = "faults")]
            faults: Faults::default(),
        }
    }

    /// The deviations this node is told to make: none without the `faults` feature.
    fn faults(&self) -> Faults {
        #[cfg(feature = "faults")]
        return self.faults;
        #[cfg(not(feature = "faults"))]
        return Faults::default();
    }
}

/// Why a node stopped the disclosure.
#[derive(Debug, thiserror::Error)]
pub enum DiscloseError {
    /// The session underneath failed (a peer, the client link, the MPC engine).
    #[error(transparent)]
    Session(#[from] NodeError),
    /// The client's message is not a disclosure request.
    #[error("the client broke the protocol: {0}")]
    Client(String),
    /// The request does not fit the response or the limits.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// An execution could not be built.
    #[error("cannot build the disclosure: {0}")]
    Build(#[from] BuildError),
    /// The committee's circuit refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The result could not be encoded.
    #[error("cannot encode the disclosure's result")]
    Encode,
}

impl DiscloseError {
    /// The kind of failure, as it crosses the network: a request the response cannot
    /// satisfy, or one the circuit refuses (a path not found, a content coding), is the
    /// client's.
    pub fn code(&self) -> FailureCode {
        match self {
            DiscloseError::Session(e) => e.code(),
            DiscloseError::Client(_) | DiscloseError::Request(_) | DiscloseError::Refused(_) => {
                FailureCode::Client
            }
            DiscloseError::Build(_) | DiscloseError::Encode => FailureCode::Node,
        }
    }

    /// What this node tells the client and its peers.
    pub fn failure(&self) -> Failure {
        Failure::new(self.code(), self.to_string())
    }

    /// Whether the failure is a peer's abort (so the peers need not be told).
    pub fn peer_stopped(&self) -> bool {
        matches!(self, DiscloseError::Session(NodeError::PeerAborted { .. }))
    }
}

impl From<mpc::session::SessionError> for DiscloseError {
    fn from(e: mpc::session::SessionError) -> Self {
        DiscloseError::Session(NodeError::Mpc(e))
    }
}

/// What a node computed.
#[derive(Debug, Clone)]
pub struct Disclosed {
    /// The request (public).
    pub request: DisclosureRequest,
    /// The result (public, identical at every node).
    pub result: DisclosureResult,
    /// Where the time went.
    pub timings: DiscloseTimings,
}

/// Where a node's disclosure time went.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct DiscloseTimings {
    /// Building circuits and specs (cached circuits cost nothing after the first session).
    pub build: Duration,
    /// Garbling, shipping and evaluating the executions, waiting for peers included.
    pub run: Duration,
    /// Executions run.
    pub executions: usize,
    /// AND gates of the decryptions.
    pub and_decrypt: usize,
    /// AND gates of the scan executions.
    pub and_scan: usize,
    /// AND gates of the final execution.
    pub and_final: usize,
}

/// Runs the disclosure on a committed session: on success the client has the result and
/// the caller gets it; on failure the caller must end the session with
/// [`Committed::fail`].
pub async fn disclose<T, R>(
    c: &mut Committed<T>,
    cfg: &DiscloseConfig,
    rng: &mut R,
) -> Result<Disclosed, DiscloseError>
where
    T: Transport + 'static,
    R: RngCore + CryptoRng + Send,
{
    let bytes = c.recv_client().await?;
    let msg: ClientMsg = postcard::from_bytes(&bytes)
        .map_err(|_| DiscloseError::Client("an undecodable disclosure request".into()))?;
    let ClientMsg::Disclose {
        request,
        shares,
        records,
    } = msg;
    let resp_lens = c.response_lens();
    let total: usize = resp_lens.iter().sum();
    let copied = take_copies(c, records);
    let checked = request.check(total).and_then(|plan| {
        if shares.salts.len() != request.commit.len() {
            return Err(RequestError::Invalid(
                "the salt shares do not match the commitments".into(),
            ));
        }
        if request.uid.is_some() && cfg.uid.is_none() {
            return Err(RequestError::Invalid(
                "a nullifier was asked for but a node holds no UID key share".into(),
            ));
        }
        let prefix = request_prefix(
            &request.http.method,
            &request.http.target,
            &request.http.host,
        );
        if c.request_lens().first().copied().unwrap_or(0) < prefix.len() {
            return Err(RequestError::Invalid(
                "the request line and Host header are not in the first request record".into(),
            ));
        }
        let needed = response_records_needed(&request, &plan, &resp_lens);
        if let Some(r) = needed.into_iter().find(|&r| {
            c.response_records()
                .get(r)
                .map_or(true, |x| x.ciphertext().is_none())
        }) {
            return Err(RequestError::Invalid(format!(
                "the disclosure decrypts response record {r}, past the first \
                 {KEPT_RESPONSE_BYTES} bytes a node keeps, and the client did not send it"
            )));
        }
        Ok(plan)
    });
    // A copy that is not the committed record is the client's deviation; it counts in the
    // agreement below like an invalid request, so every node stops.
    let checked = copied.and_then(|()| checked.map_err(DiscloseError::from));
    let digest = match (&checked, request.digest()) {
        (Ok(_), Ok(d)) => Some(d),
        _ => None,
    };
    let agreed = c
        .agree(
            "the disclosure request",
            digest.unwrap_or([0; 32]),
            digest.is_some(),
        )
        .await;
    let plan = checked?;
    request.digest()?;
    agreed?;
    let result = run(c, cfg, &request, &plan, &shares, rng).await?;
    let (result, timings) = result;
    let out = postcard::to_stdvec(&NodeMsg::Disclosed(result.clone()))
        .map_err(|_| DiscloseError::Encode)?;
    c.send_client(out)?;
    Ok(Disclosed {
        request,
        result,
        timings,
    })
}

/// Most bytes of response records a client may send again with its request (the records a
/// disclosure decrypts past what a node keeps): as much as a node keeps, so a node never
/// holds more than twice that.
pub const MAX_RECORD_COPIES: usize = KEPT_RESPONSE_BYTES;

/// Takes the client's copies of response records; a copy that is not the committed record,
/// or more copies than [`MAX_RECORD_COPIES`] allows, is the client's error.
fn take_copies<T: Transport>(
    c: &mut Committed<T>,
    copies: Vec<RecordCopy>,
) -> Result<(), DiscloseError> {
    let bytes: usize = copies.iter().map(|r| r.ciphertext.len()).sum();
    if bytes > MAX_RECORD_COPIES {
        return Err(DiscloseError::Client(format!(
            "{bytes} bytes of response records sent again; a disclosure takes at most \
             {MAX_RECORD_COPIES}"
        )));
    }
    c.supply_response(copies)
        .map_err(|e| DiscloseError::Client(e.to_string()))
}

/// How many executions are registered ahead of the one running: the garblers garble them
/// while the evaluator evaluates, and their tables are what a node holds beyond the running
/// one.
const LOOKAHEAD: usize = 8;

async fn run<T, R>(
    c: &mut Committed<T>,
    cfg: &DiscloseConfig,
    req: &DisclosureRequest,
    plan: &Plan,
    shares: &InputShares,
    rng: &mut R,
) -> Result<(DisclosureResult, DiscloseTimings), DiscloseError>
where
    T: Transport + 'static,
    R: RngCore + CryptoRng + Send,
{
    let id = c.id();
    // The records' content (TLS 1.3: without the content type byte).
    let (resp_lens, req_lens) = (c.response_lens(), c.request_lens());
    let mut p = Pipeline::new(
        req,
        plan,
        &resp_lens,
        &req_lens,
        cfg.uid.as_ref().map(|u| (u.xs, u.t)),
        c.time(),
    )
    .with_nonce(c.nonce_kind());
    let steps = p.steps().to_vec();
    let mut tm = DiscloseTimings::default();
    let t_all = Instant::now();
    let mut next = 0usize;
    for (i, step) in steps.iter().enumerate() {
        // Register executions up to LOOKAHEAD ahead of this one.
        while next < steps.len() && next <= i + LOOKAHEAD {
            let t0 = Instant::now();
            let spec = p.next_spec(c.server_key(), c.client_key())?;
            tm.build += t0.elapsed();
            let ands = spec.circuit().and_count();
            match &steps[next] {
                Step::Decrypt { .. } => tm.and_decrypt += ands,
                Step::Scan { .. } => tm.and_scan += ands,
                Step::Final => tm.and_final += ands,
                Step::Const => {}
            }
            let e = c.session().preprocess(spec)?;
            p.registered(e);
            next += 1;
        }
        let e = p
            .id(i)
            .ok_or_else(|| BuildError::Layout("an execution was not registered".into()))?;
        let mut inputs = Inputs::none();
        match step {
            Step::Decrypt { .. } => {
                if let Some(mut public) =
                    p.public_input(i, c.response_records(), c.request_records())?
                {
                    if cfg.faults().bad_ciphertext {
                        if let Some(b) = public.last_mut() {
                            *b ^= 1;
                        }
                    }
                    inputs = inputs.value(dec_in::BLOCKS, bytes_to_bits(&public));
                }
            }
            Step::Final => {
                let lay = p
                    .final_layout()
                    .ok_or_else(|| BuildError::Layout("no final layout".into()))?;
                if let Some(g) = lay.inputs.salts {
                    let mut s: Vec<u8> = shares.salts.iter().flatten().copied().collect();
                    inputs = inputs.value(g, bytes_to_bits(&s));
                    s.zeroize();
                }
                if let (Some(g), Some(u)) = (lay.inputs.uid, &cfg.uid) {
                    let mut y = u.share.y.to_bytes();
                    if cfg.faults().bad_uid_share {
                        y[15] ^= 1;
                    }
                    inputs = inputs.value(g + id as usize, bytes_to_bits(&y));
                    y.zeroize();
                }
            }
            _ => {}
        }
        let out = c.session().execute(e, inputs, rng).await?;
        tm.executions += 1;
        match step {
            Step::Final => {
                let lay = p
                    .final_layout()
                    .ok_or_else(|| BuildError::Layout("no final layout".into()))?;
                let r = read_final(req, plan, lay, value(&out, 0)?)?;
                tm.run = t_all.elapsed().saturating_sub(tm.build);
                return Ok((r, tm));
            }
            Step::Decrypt { .. } | Step::Const | Step::Scan { .. } => {}
        }
    }
    Err(BuildError::Layout("the disclosure has no final execution".into()).into())
}

fn value(out: &[GroupOutput], g: usize) -> Result<&[bool], DiscloseError> {
    match out.get(g) {
        Some(GroupOutput::Value(v)) => Ok(v),
        _ => Err(BuildError::Layout(format!("output group {g} missing")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's mistake is the client's at every node: when one node stops for it, its
    /// peers report the same code, not an MPC failure.
    #[test]
    fn failures_keep_their_cause() {
        let refused = DiscloseError::Refused(Refusal::Http("the status line".into()));
        assert_eq!(refused.code(), FailureCode::Client);
        assert_eq!(refused.failure().detail, refused.to_string());
        let at_peer = DiscloseError::Session(NodeError::PeerAborted {
            node: 1,
            reason: refused.failure(),
        });
        assert_eq!(at_peer.code(), FailureCode::Client);
        assert!(at_peer.peer_stopped());
        let engine = DiscloseError::Session(NodeError::Timeout("a peer node"));
        assert_eq!(engine.code(), FailureCode::Timeout);
        assert_eq!(DiscloseError::Encode.code(), FailureCode::Node);
    }
}
