//! The disclosure's executions as a deterministic sequence, with no engine and no I/O: which
//! execution comes next, its spec (given the ids the engine assigned to earlier ones), and
//! the public inputs a garbler feeds it. The node's driver ([`crate::node`]) runs it on the
//! MPC engine; tests run the very same specs in the clear.

use std::sync::Arc;

use mpc::{ExecId, ExecSpec, InputGroup, InputSource};
use mpc_tls::circuits::NonceKind;
use mpc_tls::node::CommittedRecord;

use crate::circuit::{
    const_out, const_spec, content_to_response, decrypt_public, decrypt_spec, final_spec,
    scan_spec, BlockIn, BuildError, Decrypted, FinalLayout, FinalSources, DECRYPT_BLOCKS,
};
use crate::http::request_prefix;
use crate::request::{DisclosureRequest, Plan};

/// What an execution of the disclosure does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Decrypts blocks `(record, block)` of the response (`response`) or the request.
    Decrypt {
        /// Which direction.
        response: bool,
        /// The blocks, in order.
        blocks: Vec<(usize, usize)>,
    },
    /// The scan's initial state and padding.
    Const,
    /// Scans chunk `chunk` of the body.
    Scan {
        /// The chunk's index.
        chunk: usize,
    },
    /// The HTTP checks, values, commitments, predicates, nullifier.
    Final,
}

/// The disclosure's executions for one checked request.
#[derive(Debug)]
pub struct Pipeline<'a> {
    req: &'a DisclosureRequest,
    plan: &'a Plan,
    steps: Vec<Step>,
    ids: Vec<ExecId>,
    response: Decrypted,
    request: Decrypted,
    last_scan: Option<ExecId>,
    const_exec: Option<ExecId>,
    layout: Option<FinalLayout>,
    uid: Option<([u16; 3], usize)>,
    time: u64,
    nonce: NonceKind,
}

impl<'a> Pipeline<'a> {
    /// The executions for `req` over a response and a request whose records have these
    /// plaintext lengths; `uid` is the committee's share coordinates and threshold if a
    /// nullifier is asked for, `time` the session time.
    pub fn new(
        req: &'a DisclosureRequest,
        plan: &'a Plan,
        response_lens: &[usize],
        request_lens: &[usize],
        uid: Option<([u16; 3], usize)>,
        time: u64,
    ) -> Self {
        let response = Decrypted::new(response_lens);
        let request = Decrypted::new(request_lens);
        let steps = schedule(req, plan, &response, &request);
        Pipeline {
            req,
            plan,
            steps,
            ids: Vec::new(),
            response,
            request,
            last_scan: None,
            const_exec: None,
            layout: None,
            uid,
            time,
            nonce: NonceKind::Explicit,
        }
    }

    /// The same pipeline for records whose nonces are formed as `kind` says (TLS 1.3:
    /// [`NonceKind::Sequence`]; the default is TLS 1.2's explicit nonces).
    pub fn with_nonce(mut self, kind: NonceKind) -> Self {
        self.nonce = kind;
        self
    }

    /// The executions, in the order they are registered and run.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The spec of the next execution to register (they are built in order; each may refer
    /// to earlier ones by the ids given to [`Pipeline::registered`]). `keys` are where the
    /// server and client traffic keys are kept.
    pub fn next_spec(
        &mut self,
        server_key: (ExecId, usize),
        client_key: (ExecId, usize),
    ) -> Result<Arc<ExecSpec>, BuildError> {
        let i = self.ids.len();
        let step = self
            .steps
            .get(i)
            .ok_or_else(|| BuildError::Layout("no execution left to build".into()))?;
        match step {
            Step::Decrypt { response, blocks } => decrypt_spec(
                if *response { server_key } else { client_key },
                blocks.len(),
                self.nonce,
            ),
            Step::Const => const_spec(self.shape()?),
            Step::Scan { chunk } => {
                let state = match (self.last_scan, self.const_exec) {
                    (Some(e), _) => (e, 0),
                    (None, Some(c)) => (c, const_out::STATE),
                    (None, None) => return Err(BuildError::Layout("no constants".into())),
                };
                let groups = self.chunk_groups(*chunk)?;
                scan_spec(self.shape()?, state, groups)
            }
            Step::Final => {
                let src = FinalSources {
                    response: &self.response,
                    request: &self.request,
                    scan: self.last_scan,
                    uid: self.uid,
                    time: self.time,
                };
                let (spec, lay) = final_spec(self.req, self.plan, &src)?;
                self.layout = Some(lay);
                Ok(spec)
            }
        }
    }

    /// Records the id the engine gave the execution last built.
    pub fn registered(&mut self, exec: ExecId) {
        let i = self.ids.len();
        match self.steps.get(i) {
            Some(Step::Decrypt { response, blocks }) => {
                let d = if *response {
                    &mut self.response
                } else {
                    &mut self.request
                };
                for (k, &(r, b)) in blocks.iter().enumerate() {
                    d.place(r, b, exec, k);
                }
            }
            Some(Step::Const) => self.const_exec = Some(exec),
            Some(Step::Scan { .. }) => self.last_scan = Some(exec),
            Some(Step::Final) | None => {}
        }
        self.ids.push(exec);
    }

    /// The id of execution `i`, once registered.
    pub fn id(&self, i: usize) -> Option<ExecId> {
        self.ids.get(i).copied()
    }

    /// The final execution's layout, once built.
    pub fn final_layout(&self) -> Option<&FinalLayout> {
        self.layout.as_ref()
    }

    /// The public input every node feeds decryption `i` (`None` for other executions); an
    /// error if a record it decrypts is not held whole (see [`response_records_needed`]).
    pub fn public_input(
        &self,
        i: usize,
        response: &[CommittedRecord],
        request: &[CommittedRecord],
    ) -> Result<Option<Vec<u8>>, BuildError> {
        match self.steps.get(i) {
            Some(Step::Decrypt {
                response: resp,
                blocks,
            }) => {
                let recs = if *resp { response } else { request };
                let inputs = block_inputs(recs, blocks).ok_or_else(|| {
                    BuildError::Layout("a decrypted record is not held whole".into())
                })?;
                Ok(Some(decrypt_public(&inputs)))
            }
            _ => Ok(None),
        }
    }

    fn shape(&self) -> Result<&crate::scan::Shape, BuildError> {
        self.plan
            .shape
            .as_ref()
            .ok_or_else(|| BuildError::Layout("a scan step without fields".into()))
    }

    /// The input groups of scan chunk `k`: its content bytes from the decryptions, then
    /// padding.
    fn chunk_groups(&self, k: usize) -> Result<Vec<InputGroup>, BuildError> {
        let sh = self.shape()?;
        let content = k * sh.chunk()..((k + 1) * sh.chunk()).min(self.plan.content_len);
        let mut groups = Vec::new();
        for r in content_to_response(self.plan, content.clone()) {
            groups.extend(self.response.groups(r)?);
        }
        let pad = sh.chunk() - content.len();
        if pad > 0 {
            let e = self
                .const_exec
                .ok_or_else(|| BuildError::Layout("no constants".into()))?;
            groups.push(InputGroup {
                width: pad * 8,
                source: InputSource::KeptPart {
                    exec: e,
                    group: const_out::PAD,
                    offset: 0,
                },
            });
        }
        Ok(groups)
    }
}

/// Every execution in order: decryptions just before the scan (or final execution) that
/// first needs their bytes.
fn schedule(
    req: &DisclosureRequest,
    plan: &Plan,
    response: &Decrypted,
    request: &Decrypted,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    let mut need = |steps: &mut Vec<Step>, ranges: &[std::ops::Range<usize>]| {
        let mut blocks = Vec::new();
        for r in ranges {
            for b in response.blocks_for(r.clone()) {
                if done.insert(b) {
                    blocks.push(b);
                }
            }
        }
        for batch in blocks.chunks(DECRYPT_BLOCKS) {
            steps.push(Step::Decrypt {
                response: true,
                blocks: batch.to_vec(),
            });
        }
    };
    if let Some(sh) = &plan.shape {
        steps.push(Step::Const);
        let chunks = crate::scan::chunks_for(sh, plan.content_len);
        for k in 0..chunks {
            let content = k * sh.chunk()..((k + 1) * sh.chunk()).min(plan.content_len);
            need(&mut steps, &content_to_response(plan, content));
            steps.push(Step::Scan { chunk: k });
        }
    }
    let mut rest: Vec<std::ops::Range<usize>> =
        std::iter::once(0..req.http.head_len as usize).collect();
    rest.extend(plan.framing.iter().map(|(at, w)| *at..at + w.len()));
    for r in &req.ranges {
        rest.extend(content_to_response(plan, r.start as usize..r.end as usize));
    }
    need(&mut steps, &rest);
    let prefix = request_prefix(&req.http.method, &req.http.target, &req.http.host).len();
    for batch in request.blocks_for(0..prefix).chunks(DECRYPT_BLOCKS) {
        steps.push(Step::Decrypt {
            response: false,
            blocks: batch.to_vec(),
        });
    }
    steps.push(Step::Final);
    steps
}

/// The response records (indexes, ascending) the disclosure of `req` decrypts, given the
/// response records' ciphertext lengths: a node that kept only a record's digest needs the
/// client's copy of each of these before it runs the disclosure.
pub fn response_records_needed(
    req: &DisclosureRequest,
    plan: &Plan,
    response_lens: &[usize],
) -> std::collections::BTreeSet<usize> {
    let response = Decrypted::new(response_lens);
    let request = Decrypted::new(&[]);
    schedule(req, plan, &response, &request)
        .iter()
        .filter_map(|s| match s {
            Step::Decrypt {
                response: true,
                blocks,
            } => Some(blocks),
            _ => None,
        })
        .flatten()
        .map(|&(r, _)| r)
        .collect()
}

/// The public inputs of some blocks of one direction's records; `None` if a record is
/// missing or not held whole.
pub fn block_inputs(
    records: &[CommittedRecord],
    blocks: &[(usize, usize)],
) -> Option<Vec<BlockIn>> {
    blocks
        .iter()
        .map(|&(r, b)| {
            let rec = records.get(r)?;
            let c = rec.ciphertext()?;
            let mut ct = [0u8; 16];
            for (i, v) in ct.iter_mut().enumerate() {
                *v = c.get(16 * b + i).copied().unwrap_or(0);
            }
            Some(BlockIn {
                explicit: rec.explicit,
                ctr: 2 + b as u32,
                ct,
            })
        })
        .collect()
}
