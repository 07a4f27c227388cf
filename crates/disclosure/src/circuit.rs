//! The disclosure's garbled executions, over keys that never leave the wires:
//!
//! 1. **Decryption** ([`decrypt_spec`]): AES-CTR blocks of the committed response (server
//!    key) or request (client key), plaintext kept on the wires ([`OutputTo::Keep`]). The
//!    counter blocks and ciphertext are a public input ([`InputSource::Public`]): every node
//!    supplies them from its own committed records, and the engine aborts unless the labels
//!    garbler 0 sends hash to garbler 1's digest of its own view, so no node can feed other
//!    bytes.
//! 2. **Constants** ([`const_spec`]): the scan's initial (all-zero) state and the padding
//!    of its last execution, as kept labels, so every scan execution runs one circuit.
//! 3. **Scan** ([`scan_spec`]): [`crate::scan`] over one chunk of body content, which it
//!    takes from the decryption's kept plaintext byte by byte ([`InputSource::KeptPart`]),
//!    skipping the head and chunk framing; the state passes on as kept labels.
//! 4. **Final** ([`final_spec`]): the HTTP checks, the scan's verdict, each value rotated
//!    into place, commitments, predicates and the nullifier. Only its public outputs leave
//!    the wires: check bits, the status code, commitments, predicate results, the nullifier.
//!
//! Nothing here may output plaintext or a key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use mpc::circuit::aes::EXPANDED_KEY_BITS;
use mpc::circuit::arith::lt_unsigned;
use mpc::circuit::sha256::digest_fixed;
use mpc::circuit::{const_bits, Bit, Builder, Circuit, CircuitError};
use mpc::spec::SpecError;
use mpc::{ExecId, ExecSpec, InputGroup, InputSource, OutputGroup, OutputTo};
use mpc_tls::circuits::NonceKind;
use uid_prf::canon::FieldKind;

use crate::expr::{Cmp, Rhs};
use crate::http::{check_bytes, check_head, request_prefix};
use crate::logic::{and_all, const_byte, eq_bytes_const, or_all, sub, Byte, Logic};
use crate::request::{resolve_date, DisclosureRequest, Plan, Target, MAX_OPERAND, SALT};
use crate::scan::{field_value, scan_chunk, verdict, verdict_width, Shape, PAD, POS_BITS};

/// Why an execution cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A circuit could not be built.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The groups do not fit the circuit.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A gadget refused its parameters.
    #[error(transparent)]
    Gadget(#[from] uid_prf::circuit::CircuitError),
    /// Something the request asks for is not where it should be.
    #[error("{0}")]
    Layout(String),
}

/// Most AES blocks in one decryption execution.
pub const DECRYPT_BLOCKS: usize = 64;
/// Bytes of a block's public input: explicit nonce, counter, ciphertext.
pub const BLOCK_PUBLIC: usize = 8 + 4 + 16;

/// Output groups of a decryption execution.
pub mod dec_out {
    /// Keep: the plaintext, 128 bits per block.
    pub const PLAIN: usize = 0;
}

/// Input groups of a decryption execution.
pub mod dec_in {
    /// Kept: the traffic key.
    pub const KEY: usize = 0;
    /// Public: each block's explicit nonce, counter and ciphertext.
    pub const BLOCKS: usize = 1;
}

/// Circuits built once per key and process.
type Cache<K> = OnceLock<Mutex<BTreeMap<K, Arc<Circuit>>>>;

fn cached_circuit<K: Ord + Clone>(
    cache: &'static Cache<K>,
    key: K,
    max: usize,
    build: impl FnOnce() -> Result<Circuit, BuildError>,
) -> Result<Arc<Circuit>, BuildError> {
    let cache = cache.get_or_init(Default::default);
    if let Some(c) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(c);
    }
    let c = Arc::new(build()?);
    if let Ok(mut m) = cache.lock() {
        while m.len() >= max {
            let Some(k) = m.keys().next().cloned() else {
                break;
            };
            m.remove(&k);
        }
        m.insert(key, c.clone());
    }
    Ok(c)
}

/// The decryption execution of `n` blocks under the key kept at `key` (execution, group),
/// whose records form their nonces as `kind` says. Inputs: the key, then [`BLOCK_PUBLIC`]
/// public bytes per block (TLS 1.3: the record's sequence number where TLS 1.2 has the
/// explicit nonce).
pub fn decrypt_spec(
    key: (ExecId, usize),
    n: usize,
    kind: NonceKind,
) -> Result<Arc<ExecSpec>, BuildError> {
    if n == 0 || n > DECRYPT_BLOCKS {
        return Err(BuildError::Layout(format!("a decryption of {n} blocks")));
    }
    static CACHE: Cache<(usize, NonceKind)> = OnceLock::new();
    let circuit = cached_circuit(&CACHE, (n, kind), 4, || {
        let mut b = Builder::new();
        let k = b.inputs(kind.key_bits());
        let public = b.inputs(n * BLOCK_PUBLIC * 8);
        let mut outs = Vec::with_capacity(n * 128);
        let (rk, iv) = k.split_at(EXPANDED_KEY_BITS);
        for blk in public.chunks_exact(BLOCK_PUBLIC * 8) {
            let (nonce, ctr) = blk[..96].split_at(64);
            let counter = match kind {
                NonceKind::Explicit => [iv, &blk[..96]].concat(),
                NonceKind::Sequence => {
                    let mut c = iv[..32].to_vec();
                    c.extend(b.xor_vec(&iv[32..], nonce)?);
                    c.extend_from_slice(ctr);
                    c
                }
            };
            let ks = mpc::circuit::aes::expanded_block(&mut b, rk, &counter)?;
            outs.extend(b.xor_vec(&ks, &blk[96..])?);
        }
        Ok(b.finish(&outs)?)
    })?;
    let w = n * BLOCK_PUBLIC * 8;
    let groups = vec![
        InputGroup {
            width: kind.key_bits(),
            source: InputSource::Kept {
                exec: key.0,
                group: key.1,
            },
        },
        InputGroup {
            width: w,
            source: InputSource::Public,
        },
    ];
    let outs = vec![OutputGroup {
        width: n * 128,
        to: OutputTo::Keep,
    }];
    Ok(Arc::new(ExecSpec::new(circuit, groups, outs)?))
}

/// One AES block to decrypt: its record's explicit nonce, its counter, its ciphertext
/// (zero-padded past the record's end; the plaintext there is keystream, which no later
/// execution ever reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockIn {
    /// The record's explicit nonce.
    pub explicit: [u8; 8],
    /// The counter (2 for a record's first block).
    pub ctr: u32,
    /// The ciphertext.
    pub ct: [u8; 16],
}

/// A decryption's public input.
pub fn decrypt_public(blocks: &[BlockIn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(blocks.len() * BLOCK_PUBLIC);
    for b in blocks {
        out.extend_from_slice(&b.explicit);
        out.extend_from_slice(&b.ctr.to_be_bytes());
        out.extend_from_slice(&b.ct);
    }
    out
}

/// Where each decrypted byte of one direction (response or request) is kept: the plaintext
/// as a sequence of records, each record's blocks in decryption executions.
#[derive(Debug, Clone, Default)]
pub struct Decrypted {
    record_starts: Vec<usize>,
    total: usize,
    /// (record, block) → (execution, block index within it).
    blocks: BTreeMap<(usize, usize), (ExecId, usize)>,
}

impl Decrypted {
    /// A direction whose records have these plaintext lengths.
    pub fn new(record_lens: &[usize]) -> Self {
        let mut record_starts = Vec::with_capacity(record_lens.len());
        let mut total = 0;
        for &l in record_lens {
            record_starts.push(total);
            total += l;
        }
        Decrypted {
            record_starts,
            total,
            blocks: BTreeMap::new(),
        }
    }

    /// Plaintext bytes in all.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The (record, block) pairs covering byte range `r` of the plaintext, in order.
    pub fn blocks_for(&self, r: Range<usize>) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for o in r.start..r.end.min(self.total) {
            let rec = self.record_starts.partition_point(|&s| s <= o) - 1;
            let blk = (o - self.record_starts[rec]) / 16;
            if out.last() != Some(&(rec, blk)) {
                out.push((rec, blk));
            }
        }
        out
    }

    /// Records that block `(record, block)` is decrypted by `exec` as its `index`-th block.
    pub fn place(&mut self, record: usize, block: usize, exec: ExecId, index: usize) {
        self.blocks.insert((record, block), (exec, index));
    }

    /// The kept-label input groups carrying plaintext bytes `r`, in order (runs merged).
    pub fn groups(&self, r: Range<usize>) -> Result<Vec<InputGroup>, BuildError> {
        let mut out: Vec<(ExecId, usize, usize)> = Vec::new();
        for o in r.clone() {
            if o >= self.total {
                return Err(BuildError::Layout(format!("byte {o} is past the end")));
            }
            let rec = self.record_starts.partition_point(|&s| s <= o) - 1;
            let k = o - self.record_starts[rec];
            let &(exec, index) = self
                .blocks
                .get(&(rec, k / 16))
                .ok_or_else(|| BuildError::Layout(format!("byte {o} was not decrypted")))?;
            let bit = index * 128 + (k % 16) * 8;
            match out.last_mut() {
                Some((e, start, len)) if *e == exec && *start + *len == bit => *len += 8,
                _ => out.push((exec, bit, 8)),
            }
        }
        Ok(out
            .into_iter()
            .map(|(exec, offset, width)| InputGroup {
                width,
                source: InputSource::KeptPart {
                    exec,
                    group: dec_out::PLAIN,
                    offset,
                },
            })
            .collect())
    }
}

/// Output groups of the constant execution.
pub mod const_out {
    /// Keep: the scan's initial state (all zero).
    pub const STATE: usize = 0;
    /// Keep: a chunk of padding bytes.
    pub const PAD: usize = 1;
}

/// The constant execution: the scan's initial state and a chunk of [`PAD`] bytes, kept.
pub fn const_spec(shape: &Shape) -> Result<Arc<ExecSpec>, BuildError> {
    let (w, chunk) = (shape.state_width(), shape.chunk());
    static CACHE: Cache<(usize, usize)> = OnceLock::new();
    let circuit = cached_circuit(&CACHE, (w, chunk), 4, || {
        let b = Builder::new();
        let mut outs = vec![Bit::Const(false); w];
        outs.extend((0..chunk).flat_map(|_| const_bits(&[PAD])));
        Ok(b.finish(&outs)?)
    })?;
    Ok(Arc::new(ExecSpec::new(
        circuit,
        Vec::new(),
        vec![
            OutputGroup {
                width: w,
                to: OutputTo::Keep,
            },
            OutputGroup {
                width: chunk * 8,
                to: OutputTo::Keep,
            },
        ],
    )?))
}

/// The scan circuit of a shape: inputs the state then [`Shape::chunk`] bytes; outputs the
/// next state. Built once per shape and process.
pub fn scan_circuit(shape: &Shape) -> Result<Arc<Circuit>, BuildError> {
    static CACHE: Cache<ShapeKey> = OnceLock::new();
    cached_circuit(&CACHE, ShapeKey(shape.clone()), 4, || {
        let mut b = Builder::new();
        let mut st = b.inputs(shape.state_width());
        let bytes = b.inputs(shape.chunk() * 8);
        let bytes: Vec<Byte<Bit>> = bytes
            .chunks_exact(8)
            .map(|c| std::array::from_fn(|i| c[i]))
            .collect();
        scan_chunk(&mut b, shape, &mut st, &bytes);
        Ok(b.finish(&st)?)
    })
}

/// A shape as a cache key (ordered by its debug text: shapes are small).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShapeKey(Shape);

impl PartialOrd for ShapeKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ShapeKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        format!("{:?}", self.0).cmp(&format!("{:?}", o.0))
    }
}

/// A scan execution: the state from `state` (the constant execution or the previous scan),
/// the chunk's bytes from `bytes` (kept plaintext and padding, [`Shape::chunk`] bytes in
/// all).
pub fn scan_spec(
    shape: &Shape,
    state: (ExecId, usize),
    bytes: Vec<InputGroup>,
) -> Result<Arc<ExecSpec>, BuildError> {
    let circuit = scan_circuit(shape)?;
    let mut groups = vec![InputGroup {
        width: shape.state_width(),
        source: InputSource::Kept {
            exec: state.0,
            group: state.1,
        },
    }];
    groups.extend(bytes);
    Ok(Arc::new(ExecSpec::new(
        circuit,
        groups,
        vec![OutputGroup {
            width: shape.state_width(),
            to: OutputTo::Keep,
        }],
    )?))
}

/// Where the final execution's inputs come from.
pub struct FinalSources<'a> {
    /// The response's decrypted bytes.
    pub response: &'a Decrypted,
    /// The request's decrypted bytes.
    pub request: &'a Decrypted,
    /// The last scan execution (its state is output group 0), if there are fields.
    pub scan: Option<ExecId>,
    /// The committee's UID share coordinates and threshold, if a nullifier is asked for.
    pub uid: Option<([u16; 3], usize)>,
    /// The session time (for `today`).
    pub time: u64,
}

/// Input groups of the final execution after the kept ones: the salts (shared), then each
/// party's UID share.
#[derive(Debug, Clone, Copy)]
pub struct FinalInputs {
    /// Group index of the salts.
    pub salts: Option<usize>,
    /// Group index of party 0's UID share (parties 1 and 2 follow).
    pub uid: Option<usize>,
}

/// Where the final execution's outputs are (one [`OutputTo::All`] group).
#[derive(Debug, Clone)]
pub struct FinalLayout {
    /// Output width.
    pub width: usize,
    /// Input groups for private inputs.
    pub inputs: FinalInputs,
    verdict: Option<usize>,
    commits: Vec<usize>,
    predicates: Vec<usize>,
    uid: Option<usize>,
    /// Per predicate, the date its right-hand side resolved to.
    pub resolved: Vec<Option<String>>,
}

/// The HTTP check bits, in output order.
pub const HTTP_CHECKS: [&str; 5] = [
    "the response's status line",
    "the end of the response head",
    "the response's framing headers",
    "the response's chunked framing",
    "the request line and Host header",
];

struct In {
    b: Builder,
    groups: Vec<InputGroup>,
}

impl In {
    fn take(&mut self, groups: Vec<InputGroup>) -> Vec<Bit> {
        let w: usize = groups.iter().map(|g| g.width).sum();
        self.groups.extend(groups);
        self.b.inputs(w)
    }
    fn bytes(&mut self, groups: Vec<InputGroup>) -> Vec<Byte<Bit>> {
        self.take(groups)
            .chunks_exact(8)
            .map(|c| std::array::from_fn(|i| c[i]))
            .collect()
    }
}

/// Builds the final execution for a checked request.
pub fn final_spec(
    req: &DisclosureRequest,
    plan: &Plan,
    src: &FinalSources<'_>,
) -> Result<(Arc<ExecSpec>, FinalLayout), BuildError> {
    let mut inp = In {
        b: Builder::new(),
        groups: Vec::new(),
    };
    let head_len = req.http.head_len as usize;
    let state = match (&plan.shape, src.scan) {
        (Some(sh), Some(exec)) => Some(inp.take(vec![InputGroup {
            width: sh.state_width(),
            source: InputSource::Kept { exec, group: 0 },
        }])),
        (None, None) => None,
        _ => {
            return Err(BuildError::Layout(
                "a scan without fields, or fields without a scan".into(),
            ))
        }
    };
    let head = inp.bytes(src.response.groups(0..head_len)?);
    let mut framing = Vec::with_capacity(plan.framing.len());
    for (at, want) in &plan.framing {
        framing.push((inp.bytes(src.response.groups(*at..at + want.len())?), want));
    }
    let prefix = request_prefix(&req.http.method, &req.http.target, &req.http.host);
    let req_bytes = inp.bytes(src.request.groups(0..prefix.len())?);
    let mut ranges = Vec::with_capacity(req.ranges.len());
    for r in &req.ranges {
        let mut groups = Vec::new();
        for abs in content_to_response(plan, r.start as usize..r.end as usize) {
            groups.extend(src.response.groups(abs)?);
        }
        ranges.push(inp.bytes(groups));
    }
    let salts_group = (!req.commit.is_empty()).then_some(inp.groups.len());
    let salts = inp.take(
        (!req.commit.is_empty())
            .then(|| InputGroup {
                width: req.commit.len() * SALT * 8,
                source: InputSource::Shared,
            })
            .into_iter()
            .collect(),
    );
    let uid_group = match (&req.uid, src.uid) {
        (Some(_), Some(_)) => Some(inp.groups.len()),
        (Some(_), None) => {
            return Err(BuildError::Layout(
                "a nullifier was asked for but this node holds no UID key share".into(),
            ))
        }
        (None, _) => None,
    };
    let shares: Vec<Vec<Bit>> = match uid_group {
        Some(_) => (0..3u8)
            .map(|p| {
                inp.take(vec![InputGroup {
                    width: 128,
                    source: InputSource::Private(p),
                }])
            })
            .collect(),
        None => Vec::new(),
    };
    let In { mut b, groups } = inp;

    let mut outs: Vec<Bit> = Vec::new();
    // HTTP checks.
    let hc = check_head(&mut b, &req.http, &head);
    let framing_ok: Vec<Bit> = framing
        .iter()
        .map(|(bytes, want)| check_bytes(&mut b, bytes, want))
        .collect();
    let framing_ok = and_all(&mut b, &framing_ok);
    let request_ok = check_bytes(&mut b, &req_bytes, &prefix);
    outs.extend([hc.status_ok, hc.end_ok, hc.lines_ok, framing_ok, request_ok]);
    for d in &hc.status {
        outs.extend(d);
    }

    // The scan's verdict and the values.
    let mut values: Vec<Option<Value>> = vec![None; req.fields.len()];
    let mut verdict_at = None;
    if let (Some(sh), Some(st)) = (&plan.shape, &state) {
        let v = verdict(&mut b, sh, st);
        verdict_at = Some(outs.len());
        outs.extend(v.bits());
        for (fi, f) in req.fields.iter().enumerate() {
            let committed = req.commit.contains(&Target::Field(fi as u8));
            let text_pred = req
                .predicates
                .iter()
                .any(|p| p.field as usize == fi && matches!(p.rhs, Rhs::Text(_) | Rhs::OneOf(_)));
            let used = committed
                || text_pred
                || req.predicates.iter().any(|p| p.field as usize == fi)
                || req
                    .uid
                    .as_ref()
                    .is_some_and(|u| u.fields.iter().any(|(i, _)| *i as usize == fi));
            if !used {
                continue;
            }
            let cap = f.capacity as usize;
            let window = if committed || text_pred {
                cap
            } else {
                cap.min(MAX_OPERAND + 2)
            };
            let (spos, fold) = field_value(sh, st, fi);
            let fold: Vec<Byte<Bit>> = fold
                .chunks_exact(8)
                .map(|c| std::array::from_fn(|i| c[i]))
                .collect();
            let bytes = rotate(&mut b, &fold, &spos, window);
            values[fi] = Some(Value {
                bytes,
                len: v.fields[fi].1.clone(),
            });
        }
    }

    // Commitments: SHA-256(salt ‖ len (2 bytes) ‖ value padded to the capacity).
    let mut commits = Vec::with_capacity(req.commit.len());
    for (ci, t) in req.commit.iter().enumerate() {
        let salt = &salts[ci * SALT * 8..(ci + 1) * SALT * 8];
        let (bytes, len16): (Vec<Byte<Bit>>, Vec<Bit>) = match *t {
            Target::Field(i) => {
                let v = values[i as usize].as_ref().ok_or_else(|| {
                    BuildError::Layout("a committed field was not scanned".into())
                })?;
                (v.bytes.clone(), be16(&v.len))
            }
            Target::Range(i) => {
                let r = req.ranges[i as usize];
                (
                    ranges[i as usize].clone(),
                    const_bits(&((r.end - r.start) as u16).to_be_bytes()),
                )
            }
        };
        let mut msg = salt.to_vec();
        msg.extend(len16);
        for byte in &bytes {
            msg.extend(byte);
        }
        commits.push(outs.len());
        outs.extend(digest_fixed(&mut b, &msg)?);
    }

    // Predicates: (operand of the right type, result) each.
    let mut predicates = Vec::with_capacity(req.predicates.len());
    let mut resolved = Vec::with_capacity(req.predicates.len());
    for p in &req.predicates {
        let v = values[p.field as usize]
            .as_ref()
            .ok_or_else(|| BuildError::Layout("a predicate's field was not scanned".into()))?;
        let (valid, result, date) = predicate(&mut b, v, p, src.time)?;
        resolved.push(date);
        predicates.push(outs.len());
        outs.push(valid);
        outs.push(result);
    }

    // The nullifier: one ok bit per field, the shares' inconsistency, the 256-bit value.
    let mut uid_at = None;
    if let (Some(u), Some((xs, t))) = (&req.uid, src.uid) {
        uid_at = Some(outs.len());
        let mut canon = Vec::with_capacity(u.fields.len());
        for (fi, kind) in &u.fields {
            let v = values[*fi as usize]
                .as_ref()
                .ok_or_else(|| BuildError::Layout("a nullifier field was not scanned".into()))?;
            let s = v.string(&mut b);
            match kind {
                FieldKind::Text => {
                    let c = uid_prf::circuit::canon_text(&mut b, &s.content, &s.len)?;
                    // An empty canonical value would give everyone the same nullifier.
                    let nonempty = or_all(&mut b, &c.len);
                    let ok = and_all(&mut b, &[c.ok, nonempty, s.ok]);
                    outs.push(ok);
                    canon.push((*kind, uid_prf::circuit::FieldBits::from(c)));
                }
                FieldKind::Date(fmt) => {
                    let d = uid_prf::circuit::canon_date(&mut b, &s.content, &s.len, *fmt)?;
                    let ok = b.and(d.ok, s.ok);
                    outs.push(ok);
                    canon.push((*kind, d.field_bits()));
                }
            }
        }
        let shares: Vec<(u16, Vec<Bit>)> = xs.iter().copied().zip(shares).collect();
        let (k, inconsistent) = uid_prf::circuit::combine_shares(&mut b, &shares, t)?;
        outs.push(inconsistent);
        outs.extend(uid_prf::circuit::nullifier(&mut b, &k, &canon, &u.scope)?);
    }

    let width = outs.len();
    let circuit = Arc::new(b.finish(&outs)?);
    let spec = ExecSpec::new(
        circuit,
        groups,
        vec![OutputGroup {
            width,
            to: OutputTo::All,
        }],
    )?;
    Ok((
        Arc::new(spec),
        FinalLayout {
            width,
            inputs: FinalInputs {
                salts: salts_group,
                uid: uid_group,
            },
            verdict: verdict_at,
            commits,
            predicates,
            uid: uid_at,
            resolved,
        },
    ))
}

/// Response offsets of body content bytes `r` (content offsets), as runs.
pub fn content_to_response(plan: &Plan, r: Range<usize>) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    for run in &plan.runs {
        let (s, e) = (at, at + run.len);
        let lo = r.start.max(s);
        let hi = r.end.min(e);
        if lo < hi {
            out.push(run.at + (lo - s)..run.at + (hi - s));
        }
        at = e;
    }
    out
}

/// A field's value in the final circuit: its first bytes in place, and its length.
#[derive(Clone)]
struct Value {
    bytes: Vec<Byte<Bit>>,
    /// Length in bytes, LSB first ([`POS_BITS`]).
    len: Vec<Bit>,
}

/// A string value's content as the uid-prf gadgets take it.
struct Content {
    /// [`MAX_OPERAND`] bytes (MSB first per byte).
    content: Vec<Bit>,
    /// Its length, 8 bits MSB first (valid when `ok`).
    len: Vec<Bit>,
    /// The value is a string whose content fits [`MAX_OPERAND`].
    ok: Bit,
}

impl Value {
    fn byte(&self, i: usize) -> Byte<Bit> {
        self.bytes.get(i).copied().unwrap_or([Bit::Const(false); 8])
    }

    /// `len ≤ n`.
    fn len_at_most(&self, b: &mut Builder, n: u64) -> Bit {
        let c = crate::logic::const_num(b, n, POS_BITS);
        let (_, less) = sub(b, &c, &self.len);
        b.not(less)
    }

    fn len_is(&self, b: &mut Builder, n: u64) -> Bit {
        crate::logic::eq_num_const(b, &self.len, n)
    }

    fn starts(&self, b: &mut Builder, c: u8) -> Bit {
        let x = self.byte(0);
        eq_bytes_const(b, &[x], &[c])
    }

    /// The string content: bytes 1.., length len − 2.
    fn string(&self, b: &mut Builder) -> Content {
        let q = self.starts(b, b'"');
        let fits = self.len_at_most(b, (MAX_OPERAND + 2) as u64);
        let ok = b.and(q, fits);
        let content: Vec<Bit> = (1..=MAX_OPERAND).flat_map(|i| self.byte(i)).collect();
        let two = crate::logic::const_num(b, 2, POS_BITS);
        let (l, _) = sub(b, &self.len, &two);
        Content {
            content,
            len: msb8(&l),
            ok,
        }
    }

    /// The text of a number: the token, or the content of a string.
    fn number_text(&self, b: &mut Builder) -> Content {
        let s = self.string(b);
        let q = self.starts(b, b'"');
        let tok: Vec<Bit> = (0..MAX_OPERAND).flat_map(|i| self.byte(i)).collect();
        let content: Vec<Bit> = tok
            .iter()
            .zip(&s.content)
            .map(|(&t, &c)| b.mux(q, t, c))
            .collect();
        let tl = msb8(&self.len);
        let len: Vec<Bit> = tl
            .iter()
            .zip(&s.len)
            .map(|(&t, &c)| b.mux(q, t, c))
            .collect();
        let tok_fits = self.len_at_most(b, MAX_OPERAND as u64);
        let ok = b.mux(q, tok_fits, s.ok);
        Content { content, len, ok }
    }
}

/// The low 8 bits of an LSB-first number, MSB first.
fn msb8(x: &[Bit]) -> Vec<Bit> {
    (0..8).rev().map(|i| x[i]).collect()
}

/// The low 16 bits of an LSB-first number as two big-endian bytes (MSB first).
fn be16(x: &[Bit]) -> Vec<Bit> {
    (0..16).rev().map(|i| x[i]).collect()
}

/// `out[j] = x[(r + j) mod W]` for `j < out_len`, `W = x.len()` a power of two and `r` the
/// low bits of `pos` (LSB first): a barrel rotation computing, at each stage, only the
/// positions later stages can still read.
fn rotate(b: &mut Builder, x: &[Byte<Bit>], pos: &[Bit], out_len: usize) -> Vec<Byte<Bit>> {
    let w = x.len();
    let stages = w.trailing_zeros() as usize;
    let mut cur: Vec<Byte<Bit>> = x.to_vec();
    for k in (0..stages).rev() {
        let step = 1usize << k;
        // After this stage the rotation still to come is below `step`.
        let need = (out_len + step - 1).min(w);
        let mut next = vec![[Bit::Const(false); 8]; w];
        for (i, slot) in next.iter_mut().enumerate().take(need) {
            let a = cur[i];
            let c = cur[(i + step) % w];
            *slot = std::array::from_fn(|t| b.mux(pos[k], a[t], c[t]));
        }
        cur = next;
    }
    cur.truncate(out_len);
    cur
}

/// One predicate: (operand of the right type, result, resolved date).
fn predicate(
    b: &mut Builder,
    v: &Value,
    p: &crate::request::Predicate,
    time: u64,
) -> Result<(Bit, Bit, Option<String>), BuildError> {
    let negate = |b: &mut Builder, r: Bit| if p.cmp == Cmp::Ne { b.not(r) } else { r };
    let order = |b: &mut Builder, x: &[Bit], c: &[Bit]| -> Result<Bit, CircuitError> {
        Ok(match p.cmp {
            Cmp::Lt => lt_unsigned(b, x, c)?,
            Cmp::Gt => lt_unsigned(b, c, x)?,
            Cmp::Le => {
                let g = lt_unsigned(b, c, x)?;
                b.not(g)
            }
            Cmp::Ge => {
                let l = lt_unsigned(b, x, c)?;
                b.not(l)
            }
            Cmp::Eq => mpc::circuit::arith::eq_bytes(b, x, c)?,
            Cmp::Ne => {
                let e = mpc::circuit::arith::eq_bytes(b, x, c)?;
                b.not(e)
            }
        })
    };
    match &p.rhs {
        Rhs::Text(t) => {
            let (valid, eq) = text_eq(b, v, &[t.as_str()]);
            Ok((valid, negate(b, eq), None))
        }
        Rhs::OneOf(ts) => {
            let refs: Vec<&str> = ts.iter().map(String::as_str).collect();
            let (valid, eq) = text_eq(b, v, &refs);
            Ok((valid, eq, None))
        }
        Rhs::Bool(want) => {
            let t = literal(b, v, b"true");
            let f = literal(b, v, b"false");
            let valid = b.xor(t, f);
            let eq = if *want { t } else { f };
            Ok((valid, negate(b, eq), None))
        }
        Rhs::Null => {
            let n = literal(b, v, b"null");
            Ok((Bit::Const(true), negate(b, n), None))
        }
        Rhs::Number(c) => {
            let n = v.number_text(b);
            // A sign, then an unsigned decimal.
            let first: Byte<Bit> = std::array::from_fn(|i| n.content[i]);
            let neg = eq_bytes_const(b, &[first], b"-");
            let digits: Vec<Bit> = (0..MAX_OPERAND * 8)
                .map(|i| {
                    let here = n.content[i];
                    let next = n.content.get(i + 8).copied().unwrap_or(Bit::Const(false));
                    b.mux(neg, here, next)
                })
                .collect();
            let len_lsb: Vec<Bit> = n.len.iter().rev().copied().collect();
            let one = crate::logic::const_num(b, 1, 8);
            let (dl, _) = sub(b, &len_lsb, &one);
            let dlen: Vec<Bit> = len_lsb
                .iter()
                .zip(&dl)
                .map(|(&a, &d)| b.mux(neg, a, d))
                .rev()
                .collect();
            let (mag, ok) = uid_prf::circuit::parse_decimal(b, &digits, &dlen)?;
            // A JSON number has no leading zero ("007" is not one; as a string it is fine).
            let q = v.starts(b, b'"');
            let d0: Byte<Bit> = std::array::from_fn(|i| digits[i]);
            let d1: Byte<Bit> = std::array::from_fn(|i| digits[8 + i]);
            let zero = eq_bytes_const(b, &[d0], b"0");
            let hi3 = {
                let n0 = b.not(d1[0]);
                let n1 = b.not(d1[1]);
                let a = b.and(n0, n1);
                let c = b.and(d1[2], d1[3]);
                b.and(a, c)
            };
            let nine = {
                let o = b.or(d1[5], d1[6]);
                b.and(d1[4], o)
            };
            let n_nine = b.not(nine);
            let digit1 = b.and(hi3, n_nine);
            let n_q = b.not(q);
            let lz0 = b.and(zero, digit1);
            let leading_zero = b.and(lz0, n_q);
            let n_lz = b.not(leading_zero);
            let ok = b.and(ok, n_lz);
            // Signed, as offset binary: flip the sign bit of the two's complement.
            let signed = negate_if(b, neg, &mag);
            let mut x = signed;
            x[0] = b.not(x[0]);
            let cv = (*c as u64) ^ (1 << 63);
            let cb = const_bits(&cv.to_be_bytes());
            let r = order(b, &x, &cb)?;
            let valid = b.and(ok, n.ok);
            Ok((valid, r, None))
        }
        Rhs::Date(e) => {
            let fmt = p
                .date_format
                .ok_or_else(|| BuildError::Layout("a date predicate without a format".into()))?;
            let s = v.string(b);
            let d = uid_prf::circuit::canon_date(b, &s.content, &s.len, fmt)?;
            let iso = resolve_date(e, time).map_err(|e| BuildError::Layout(e.to_string()))?;
            let cb = const_bits(iso.as_bytes());
            let r = order(b, &d.iso, &cb)?;
            let valid = b.and(d.ok, s.ok);
            Ok((valid, r, Some(iso)))
        }
    }
}

/// `x` (64 bits, MSB first) negated in two's complement when `neg`.
fn negate_if(b: &mut Builder, neg: Bit, x: &[Bit]) -> Vec<Bit> {
    // −x = ¬x + 1; with neg: (x ⊕ neg) + neg.
    let mut out = vec![Bit::Const(false); x.len()];
    let mut carry = neg;
    for i in (0..x.len()).rev() {
        let t = b.xor(x[i], neg);
        out[i] = b.xor(t, carry);
        carry = b.and(t, carry);
    }
    out
}

/// A string value's content equals one of `ts` (valid: a string without escapes).
fn text_eq(b: &mut Builder, v: &Value, ts: &[&str]) -> (Bit, Bit) {
    let q = v.starts(b, b'"');
    // Any backslash in the value makes a raw comparison meaningless: refused, not false.
    let bs: Vec<Bit> = v
        .bytes
        .iter()
        .map(|x| eq_bytes_const(b, &[*x], b"\\"))
        .collect();
    let any_bs = or_all(b, &bs);
    let n_bs = b.not(any_bs);
    let valid = b.and(q, n_bs);
    let mut hits = Vec::with_capacity(ts.len());
    for t in ts {
        let want = [b"\"", t.as_bytes(), b"\""].concat();
        hits.push(literal(b, v, &want));
    }
    let any = or_all(b, &hits);
    (valid, any)
}

/// The value's raw JSON text is exactly `lit`.
fn literal(b: &mut Builder, v: &Value, lit: &[u8]) -> Bit {
    if lit.len() > v.bytes.len() {
        return Bit::Const(false);
    }
    let bytes: Vec<Byte<Bit>> = (0..lit.len()).map(|i| v.byte(i)).collect();
    let eq = eq_bytes_const(b, &bytes, lit);
    let l = v.len_is(b, lit.len() as u64);
    b.and(eq, l)
}

/// Why the committee refuses, as read off the final execution's outputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// An HTTP check failed.
    #[error("{0} does not match the layout the client declared (the client deviated, or the response is not what it claimed)")]
    Http(String),
    /// The scan refused the body.
    #[error(transparent)]
    Scan(#[from] crate::scan::ScanError),
    /// A predicate's operand is not of the type it needs.
    #[error("predicate {0} cannot be evaluated: the value is not {1}")]
    Operand(String, &'static str),
    /// A nullifier field cannot be canonicalised.
    #[error("the value at {0} cannot go into a nullifier: it must be a non-empty string of at most 64 bytes of ASCII or Latin-1 letters without escapes (or a date in the stated format)")]
    NotCanonical(String),
    /// The UID key shares do not lie on one polynomial.
    #[error("the UID key shares are inconsistent: a node supplied a wrong share")]
    InconsistentShares,
}

/// Reads the final execution's output.
pub fn read_final(
    req: &DisclosureRequest,
    plan: &Plan,
    lay: &FinalLayout,
    bits: &[bool],
) -> Result<crate::request::DisclosureResult, Refusal> {
    if bits.len() != lay.width {
        return Err(Refusal::Http("the output".into()));
    }
    for (i, what) in HTTP_CHECKS.iter().enumerate() {
        if !bits[i] {
            return Err(Refusal::Http((*what).to_string()));
        }
    }
    let digits = mpc::circuit::bits_to_bytes(&bits[5..29]);
    let status = digits
        .iter()
        .fold(0u16, |a, &d| a * 10 + u16::from(d.wrapping_sub(b'0') % 10));
    if let (Some(at), Some(sh)) = (lay.verdict, &plan.shape) {
        let w = verdict_width(sh);
        let v = &bits[at..at + w];
        let mut k = 3;
        let mut nodes = Vec::new();
        for _ in sh.nodes() {
            nodes.push([v[k], v[k + 1], v[k + 2], v[k + 3]]);
            k += 4;
        }
        let fields = (0..sh.fields().len())
            .map(|i| (v[k + i], Vec::new()))
            .collect();
        let verdict = crate::scan::Verdict {
            syntax: v[0],
            truncated: v[1],
            deep: v[2],
            nodes,
            fields,
        };
        if let Some(e) = crate::scan::verdict_error(sh, &verdict) {
            return Err(e.into());
        }
    }
    let commitments = lay
        .commits
        .iter()
        .map(|&at| {
            let mut c = [0u8; 32];
            c.copy_from_slice(&mpc::circuit::bits_to_bytes(&bits[at..at + 256]));
            c
        })
        .collect();
    let mut predicates = Vec::with_capacity(lay.predicates.len());
    for (i, &at) in lay.predicates.iter().enumerate() {
        if !bits[at] {
            let p = &req.predicates[i];
            let what = match p.rhs {
                Rhs::Date(_) => "a string holding a date in the format given",
                Rhs::Number(_) => "a number (or numeric string) of at most 12 integer and 6 decimal digits, without exponent",
                Rhs::Bool(_) => "true or false",
                Rhs::Null => "anything",
                Rhs::Text(_) | Rhs::OneOf(_) => "a string without escapes",
            };
            return Err(Refusal::Operand(
                req.predicate_text(i).unwrap_or_default(),
                what,
            ));
        }
        predicates.push(bits[at + 1]);
    }
    let mut nullifier = None;
    if let (Some(u), Some(mut at)) = (&req.uid, lay.uid) {
        for (fi, _) in &u.fields {
            if !bits[at] {
                return Err(Refusal::NotCanonical(
                    req.fields[*fi as usize].path.to_string(),
                ));
            }
            at += 1;
        }
        if bits[at] {
            return Err(Refusal::InconsistentShares);
        }
        at += 1;
        let mut n = [0u8; 32];
        n.copy_from_slice(&mpc::circuit::bits_to_bytes(&bits[at..at + 256]));
        nullifier = Some(n);
    }
    Ok(crate::request::DisclosureResult {
        status,
        commitments,
        predicates,
        resolved: lay.resolved.clone(),
        nullifier,
    })
}

/// Checks for [`Logic`]-generic callers that a public byte appears where expected (used by
/// tests of the HTTP checks in the clear).
pub fn const_byte_eq<L: Logic>(l: &mut L, x: &Byte<L::Bit>, c: u8) -> L::Bit {
    let k = const_byte(l, c);
    let d: Vec<L::Bit> = x.iter().zip(&k).map(|(&a, &b)| l.xor(a, b)).collect();
    let any = or_all(l, &d);
    l.not(any)
}
