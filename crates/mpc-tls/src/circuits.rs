//! The four garbled executions of one MPC-TLS session and their public input/output layout.
//!
//! 1. [`handshake_spec`] (garbled before the server answers): pre-master-secret shares →
//!    extended master secret → key block; the client Finished verify_data and its encrypted
//!    record body; XOR shares of both GHASH keys and of the Finished tag mask. The expanded
//!    AES keys, the implicit nonces and the master secret's HMAC states stay on wires
//!    ([`OutputTo::Keep`]) for the later executions.
//! 2. [`server_finished_spec`]: the expected server verify_data, the keystream block that
//!    decrypts the server's Finished and the XOR-shared tag mask for it.
//! 3. [`ctr_spec`] for the request records and, after the server closes, for the response
//!    records: AES counter blocks whose explicit nonce and counter are public inputs. Tag
//!    masks go out as XOR shares, application-data keystream only to the client (masked with
//!    its pads), alert keystream to the nodes (an alert carries no user data).
//!
//! Keystream work is split by [`plan_batches`] into executions of at most
//! [`MAX_BLOCKS_PER_EXECUTION`] blocks, and a circuit depends only on the [`CtrShape`] of its
//! batch, and the circuit only on its number of blocks, so circuits are built once per block
//! count and process.
//!
//! Every public input that the nodes learn from the relayed traffic is fed twice, by party 0
//! and by party 1, and the circuit outputs one bit saying whether the copies differ: with at
//! most one deviating party, equal copies are the true value, so nobody can make the circuit
//! compute on values the others did not see.

use std::sync::Arc;

use mpc::circuit::aes::{aes128_expanded, key_schedule, EXPANDED_KEY_BITS};
use mpc::circuit::{const_bits, Bit, Builder, CircuitError};
use mpc::convert::{additive_fp_inputs, sum_mod_p};
use mpc::spec::SpecError;
use mpc::{ExecId, ExecSpec, InputGroup, InputSource, OutputGroup, OutputTo};

use crate::codec::{blocks_for, hs};
use crate::prf::{extended_master_secret, key_expansion, verify_data, HmacKey, Side};

/// Errors building an execution.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A circuit could not be built.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The groups do not fit the circuit.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A record longer than TLS allows, or no records.
    #[error("{0}")]
    Records(String),
}

/// Bits of a kept traffic key: the 11 AES round keys, then the 4-byte implicit nonce.
pub const TRAFFIC_KEY_BITS: usize = EXPANDED_KEY_BITS + 32;

/// Output groups of the handshake execution.
pub mod hs_out {
    /// All: [mismatch bit, client verify_data (96), client Finished ciphertext (128)].
    pub const PUBLIC: usize = 0;
    /// Shares: [client Finished tag mask, H_client, H_server] (128 each).
    pub const SHARES: usize = 1;
    /// Keep: client traffic key.
    pub const CLIENT_KEY: usize = 2;
    /// Keep: server traffic key.
    pub const SERVER_KEY: usize = 3;
    /// Keep: master secret HMAC states.
    pub const MASTER: usize = 4;
}

/// Width of one copy of the handshake's public input: session hash (32 bytes), server random
/// (32), client random (32).
pub const HS_PUBLIC_BITS: usize = 96 * 8;
/// Width of one copy of the server Finished execution's public input: the handshake hash
/// through the client Finished (32 bytes), then the record's explicit nonce (8).
pub const SF_PUBLIC_BITS: usize = 40 * 8;

/// OR of the bitwise differences: one bit, set when the two copies differ.
pub(crate) fn differ(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Bit, CircuitError> {
    let d = b.xor_vec(x, y)?;
    Ok(d.into_iter()
        .reduce(|acc, v| b.or(acc, v))
        .unwrap_or(Bit::Const(false)))
}

/// Two copies of a public input, fed by parties 0 and 1.
pub(crate) fn public_groups(width: usize) -> [InputGroup; 2] {
    [0, 1].map(|p| InputGroup {
        width,
        source: InputSource::Private(p),
    })
}

/// The 16-byte counter block: implicit nonce (4) ‖ explicit nonce (8) ‖ counter (4).
fn counter_block(iv: &[Bit], explicit: &[Bit], ctr: u32) -> Vec<Bit> {
    let mut block = iv.to_vec();
    block.extend_from_slice(explicit);
    block.extend(const_bits(&ctr.to_be_bytes()));
    block
}

/// The handshake execution. Inputs: the three pre-master-secret shares (party 0, 1, 2, 256
/// bits each), then two copies (parties 0 and 1) of [`HS_PUBLIC_BITS`]. Outputs: see
/// [`hs_out`]. The client's first record (its Finished) uses explicit nonce 0.
pub fn handshake_spec() -> Result<Arc<ExecSpec>, BuildError> {
    cached(SpecKey::Handshake, build_handshake_spec)
}

fn build_handshake_spec() -> Result<Arc<ExecSpec>, BuildError> {
    let mut b = Builder::new();
    let shares = additive_fp_inputs(&mut b);
    let pa = b.inputs(HS_PUBLIC_BITS);
    let pb = b.inputs(HS_PUBLIC_BITS);
    let mismatch = differ(&mut b, &pa, &pb)?;
    let (session_hash, randoms) = pa.split_at(256);
    let (server_random, client_random) = randoms.split_at(256);

    let pms = sum_mod_p(&mut b, &shares.wires)?;
    let ms = extended_master_secret(&mut b, &pms, session_hash)?;
    let mk = HmacKey::new(&mut b, &ms)?;
    let keys = key_expansion(&mut b, &mk, server_random, client_random)?;
    // Client Finished covers the same messages as the session hash (no CertificateVerify).
    let cvd = verify_data(&mut b, &mk, Side::Client, session_hash)?;

    let crk = key_schedule(&mut b, &keys.client_key)?;
    let srk = key_schedule(&mut b, &keys.server_key)?;
    let zero = const_bits(&[0u8; 16]);
    let h_client = aes128_expanded(&mut b, &crk, &zero)?;
    let h_server = aes128_expanded(&mut b, &srk, &zero)?;
    let seq0 = const_bits(&0u64.to_be_bytes());
    let mask = aes128_expanded(&mut b, &crk, &counter_block(&keys.client_iv, &seq0, 1))?;
    let ks = aes128_expanded(&mut b, &crk, &counter_block(&keys.client_iv, &seq0, 2))?;
    let mut fin = const_bits(&[hs::FINISHED, 0, 0, 12]);
    fin.extend_from_slice(&cvd);
    let fin_ct = b.xor_vec(&fin, &ks)?;

    let mut outputs = vec![mismatch];
    outputs.extend(&cvd);
    outputs.extend(&fin_ct);
    outputs.extend(&mask);
    outputs.extend(&h_client);
    outputs.extend(&h_server);
    outputs.extend(&crk);
    outputs.extend(&keys.client_iv);
    outputs.extend(&srk);
    outputs.extend(&keys.server_iv);
    outputs.extend(mk.state_bits());
    let circuit = b.finish(&outputs)?;

    let mut groups = shares.groups;
    groups.extend(public_groups(HS_PUBLIC_BITS));
    let outs = vec![
        OutputGroup {
            width: 1 + 96 + 128,
            to: OutputTo::All,
        },
        OutputGroup {
            width: 3 * 128,
            to: OutputTo::Shares,
        },
        OutputGroup {
            width: TRAFFIC_KEY_BITS,
            to: OutputTo::Keep,
        },
        OutputGroup {
            width: TRAFFIC_KEY_BITS,
            to: OutputTo::Keep,
        },
        OutputGroup {
            width: 512,
            to: OutputTo::Keep,
        },
    ];
    Ok(Arc::new(ExecSpec::new(Arc::new(circuit), groups, outs)?))
}

/// The server Finished execution, over the keys kept by handshake execution `hs_exec`.
/// Inputs: server traffic key (kept), master secret (kept), then two copies (parties 0, 1)
/// of [`SF_PUBLIC_BITS`]. Outputs: All [mismatch, server verify_data (96), keystream block
/// (128)]; Shares [tag mask (128)].
pub fn server_finished_spec(hs_exec: ExecId) -> Result<Arc<ExecSpec>, BuildError> {
    cached(SpecKey::ServerFinished(hs_exec), || {
        build_server_finished_spec(hs_exec)
    })
}

fn build_server_finished_spec(hs_exec: ExecId) -> Result<Arc<ExecSpec>, BuildError> {
    let mut b = Builder::new();
    let skey = b.inputs(TRAFFIC_KEY_BITS);
    let master = b.inputs(512);
    let pa = b.inputs(SF_PUBLIC_BITS);
    let pb = b.inputs(SF_PUBLIC_BITS);
    let mismatch = differ(&mut b, &pa, &pb)?;
    let (hash, explicit) = pa.split_at(256);
    let (rk, iv) = skey.split_at(EXPANDED_KEY_BITS);
    let mk = HmacKey::from_state_bits(&master)?;
    let svd = verify_data(&mut b, &mk, Side::Server, hash)?;
    let ks = aes128_expanded(&mut b, rk, &counter_block(iv, explicit, 2))?;
    let mask = aes128_expanded(&mut b, rk, &counter_block(iv, explicit, 1))?;
    let mut outputs = vec![mismatch];
    outputs.extend(&svd);
    outputs.extend(&ks);
    outputs.extend(&mask);
    let circuit = b.finish(&outputs)?;
    let mut groups = vec![
        InputGroup {
            width: TRAFFIC_KEY_BITS,
            source: InputSource::Kept {
                exec: hs_exec,
                group: hs_out::SERVER_KEY,
            },
        },
        InputGroup {
            width: 512,
            source: InputSource::Kept {
                exec: hs_exec,
                group: hs_out::MASTER,
            },
        },
    ];
    groups.extend(public_groups(SF_PUBLIC_BITS));
    let outs = vec![
        OutputGroup {
            width: 1 + 96 + 128,
            to: OutputTo::All,
        },
        OutputGroup {
            width: 128,
            to: OutputTo::Shares,
        },
    ];
    Ok(Arc::new(ExecSpec::new(Arc::new(circuit), groups, outs)?))
}

/// Most AES blocks in one keystream execution: bounds each execution's circuit and garbled
/// tables (≈ 5,120 AND gates and 165 KB of tables per block) whatever the record sizes.
pub const MAX_BLOCKS_PER_EXECUTION: usize = 32;

/// A record to encrypt or decrypt in counter mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtrRecord {
    /// Plaintext (= ciphertext) length in bytes.
    pub len: usize,
    /// An alert: its keystream is revealed to the nodes (an alert carries no user data)
    /// instead of going to the client.
    pub alert: bool,
}

/// One execution's share of the work on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The record's index in the whole list.
    pub record: usize,
    /// Whether this execution computes the record's tag mask (counter 1).
    pub mask: bool,
    /// Keystream bytes `start..end` of the record (counter blocks from 2 + start / 16).
    pub start: usize,
    /// End of the keystream range.
    pub end: usize,
}

/// Splits records into executions of at most [`MAX_BLOCKS_PER_EXECUTION`] AES blocks,
/// splitting large records at block boundaries.
pub fn plan_batches(records: &[CtrRecord]) -> Vec<Vec<Segment>> {
    let mut batches = Vec::new();
    let mut cur: Vec<Segment> = Vec::new();
    let mut room = MAX_BLOCKS_PER_EXECUTION;
    for (i, r) in records.iter().enumerate() {
        let mut start = 0;
        let mut mask = true;
        loop {
            let need = usize::from(mask) + blocks_for(r.len - start);
            if room == 0 {
                batches.push(std::mem::take(&mut cur));
                room = MAX_BLOCKS_PER_EXECUTION;
            }
            let take_blocks = (room - usize::from(mask)).min(blocks_for(r.len - start));
            let end = (start + 16 * take_blocks).min(r.len);
            cur.push(Segment {
                record: i,
                mask,
                start,
                end,
            });
            room -= usize::from(mask) + take_blocks;
            if need <= usize::from(mask) + take_blocks {
                break;
            }
            start = end;
            mask = false;
        }
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    batches
}

/// The shape of a keystream execution: how many AES blocks of each kind, in this order:
/// public keystream (alerts, revealed to the nodes), typed blocks (TLS 1.3: one byte of each
/// revealed, the byte holding a record's content type), tag masks (to XOR shares), client
/// keystream (to the client, masked). The circuit depends only on the number of blocks and
/// of typed blocks (its outputs are the blocks in order; the shape only groups them), so
/// executions of any shape with the same counts share one circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CtrShape {
    /// Tag-mask blocks (counter 1).
    pub masks: usize,
    /// Keystream blocks for the client.
    pub client: usize,
    /// Keystream blocks revealed to the nodes.
    pub public: usize,
    /// Blocks of which one byte is revealed to the nodes (its position a public input).
    pub typed: usize,
}

impl CtrShape {
    /// All blocks.
    pub fn blocks(&self) -> usize {
        self.masks + self.client + self.public + self.typed
    }

    /// Bits of one copy of the execution's public input: every block's
    /// [`SUFFIX_BITS`], then a 16-bit one-hot byte position per typed block.
    pub fn public_input_bits(&self) -> usize {
        self.blocks() * SUFFIX_BITS + self.typed * 16
    }
}

/// One AES counter block of a keystream execution: record `record`'s explicit nonce with
/// counter `ctr` (1 for the tag mask, 2, 3, … for keystream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtrBlock {
    /// Index into the session's record list.
    pub record: usize,
    /// The 32-bit counter.
    pub ctr: u32,
}

/// The blocks of a batch in the execution's canonical order (public keystream, masks, client
/// keystream) and its shape. Keystream is computed in whole blocks; the last block
/// of a record is cut to the record's length only by whoever uses it (the bytes past the
/// end are keystream under that record's nonce that nothing ever uses).
pub fn batch_blocks(records: &[CtrRecord], segments: &[Segment]) -> (Vec<CtrBlock>, CtrShape) {
    let mut masks = Vec::new();
    let mut client = Vec::new();
    let mut public = Vec::new();
    for s in segments {
        if s.mask {
            masks.push(CtrBlock {
                record: s.record,
                ctr: 1,
            });
        }
        let alert = records.get(s.record).is_some_and(|r| r.alert);
        for blk in s.start / 16..blocks_for(s.end) {
            let b = CtrBlock {
                record: s.record,
                ctr: 2 + blk as u32,
            };
            if alert {
                public.push(b);
            } else {
                client.push(b);
            }
        }
    }
    let shape = CtrShape {
        masks: masks.len(),
        client: client.len(),
        public: public.len(),
        typed: 0,
    };
    public.extend(masks);
    public.extend(client);
    (public, shape)
}

/// Bits of one block's public input: explicit nonce (8 bytes) then counter (4 bytes).
pub const SUFFIX_BITS: usize = 96;

/// The one-hot public input that reveals byte `pos` (0..16) of a typed block.
pub fn byte_position(pos: usize) -> [bool; 16] {
    std::array::from_fn(|i| i == pos)
}

/// The public input of a batch: each block's explicit nonce and counter, in order.
pub fn suffix_bytes(blocks: &[CtrBlock], explicit: impl Fn(usize) -> [u8; 8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(blocks.len() * 12);
    for b in blocks {
        out.extend_from_slice(&explicit(b.record));
        out.extend_from_slice(&b.ctr.to_be_bytes());
    }
    out
}

/// Output groups of a keystream execution of some shape; the circuit's outputs are the
/// mismatch bit, then every block in the canonical order (a typed block as its one byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtrLayout {
    /// The All group: [mismatch bit, public keystream blocks, typed blocks' bytes].
    pub public: usize,
    /// The Shares group (tag masks), if the shape has masks.
    pub shares: Option<usize>,
    /// The Client group (client keystream), if the shape has client blocks.
    pub client: Option<usize>,
}

impl CtrShape {
    /// Where this shape's outputs are.
    pub fn layout(&self) -> CtrLayout {
        let mut next = 1;
        let mut slot = |present: bool| {
            present.then(|| {
                next += 1;
                next - 1
            })
        };
        let shares = slot(self.masks > 0);
        let client = slot(self.client > 0);
        CtrLayout {
            public: 0,
            shares,
            client,
        }
    }
}

/// The keystream execution of `shape` over the traffic key kept by `hs_exec` as output group
/// `key` ([`hs_out::CLIENT_KEY`] or [`hs_out::SERVER_KEY`]). Inputs: the key (kept), then
/// two copies (parties 0 and 1) of every block's [`SUFFIX_BITS`] public input. Outputs as
/// [`CtrShape::layout`]. The circuit is built once per block count; the spec around it is
/// cheap (its fingerprint uses the circuit's cached digest), so it is made on each call.
pub fn ctr_spec(hs_exec: ExecId, key: usize, shape: CtrShape) -> Result<Arc<ExecSpec>, BuildError> {
    ctr_spec_for(hs_exec, key, shape, NonceKind::Explicit)
}

/// How a record's nonce is formed, which sets the kept key's width and the counter blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NonceKind {
    /// TLS 1.2 (RFC 5288): the 4-byte implicit nonce, then the record's 8-byte explicit
    /// nonce (the block's public input).
    Explicit,
    /// TLS 1.3 (RFC 8446 §5.3): the 12-byte IV with the record's 64-bit sequence number
    /// (the block's public input) XORed into its last 8 bytes.
    Sequence,
}

impl NonceKind {
    /// Bits of the kept key: round keys, then the IV (4 bytes in TLS 1.2, 12 in TLS 1.3).
    pub fn key_bits(self) -> usize {
        match self {
            NonceKind::Explicit => TRAFFIC_KEY_BITS,
            NonceKind::Sequence => EXPANDED_KEY_BITS + 96,
        }
    }
}

/// [`ctr_spec`] for either kind of nonce.
pub fn ctr_spec_for(
    hs_exec: ExecId,
    key: usize,
    shape: CtrShape,
    kind: NonceKind,
) -> Result<Arc<ExecSpec>, BuildError> {
    let n = shape.blocks();
    if n == 0 || n > MAX_BLOCKS_PER_EXECUTION {
        return Err(BuildError::Records(format!(
            "a keystream execution of {n} blocks"
        )));
    }
    let circuit = ctr_circuit(n, shape.public, shape.typed, kind)?;
    let mut outs = vec![OutputGroup {
        width: 1 + shape.public * 128 + shape.typed * 8,
        to: OutputTo::All,
    }];
    if shape.masks > 0 {
        outs.push(OutputGroup {
            width: shape.masks * 128,
            to: OutputTo::Shares,
        });
    }
    if shape.client > 0 {
        outs.push(OutputGroup {
            width: shape.client * 128,
            to: OutputTo::Client,
        });
    }
    let mut groups = vec![InputGroup {
        width: kind.key_bits(),
        source: InputSource::Kept {
            exec: hs_exec,
            group: key,
        },
    }];
    groups.extend(public_groups(shape.public_input_bits()));
    Ok(Arc::new(ExecSpec::new(circuit, groups, outs)?))
}

/// Bits the client gets when a traffic key is opened to it ([`open_key_spec`]): the AES
/// key (the expanded key's first round key), then the 4-byte implicit nonce.
pub const OPENED_KEY_BITS: usize = 128 + 32;

/// The execution that opens the traffic key kept by `hs_exec` as output group `key` to the
/// client alone: its one output group goes to the client masked with the client's pads
/// ([`OutputTo::Client`]), so each node sees only key ⊕ pad. No AND gates. Run only after
/// the ciphertext it decrypts is committed and every tag verified (docs/mpc-tls.md says
/// why that is safe).
pub fn open_key_spec(hs_exec: ExecId, key: usize) -> Result<Arc<ExecSpec>, BuildError> {
    open_key_spec_for(hs_exec, key, NonceKind::Explicit)
}

/// [`open_key_spec`] for either kind of key: the client gets the AES key, then the IV (4
/// bytes in TLS 1.2, 12 in TLS 1.3).
pub fn open_key_spec_for(
    exec: ExecId,
    key: usize,
    kind: NonceKind,
) -> Result<Arc<ExecSpec>, BuildError> {
    let width = kind.key_bits();
    let mut b = Builder::new();
    let tk = b.inputs(width);
    let mut out: Vec<Bit> = tk[..128].to_vec();
    out.extend_from_slice(&tk[EXPANDED_KEY_BITS..]);
    let circuit = Arc::new(b.finish(&out)?);
    let groups = vec![InputGroup {
        width,
        source: InputSource::Kept { exec, group: key },
    }];
    let outs = vec![OutputGroup {
        width: 128 + width - EXPANDED_KEY_BITS,
        to: OutputTo::Client,
    }];
    Ok(Arc::new(ExecSpec::new(circuit, groups, outs)?))
}

/// What a cached execution spec was built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SpecKey {
    Handshake,
    ServerFinished(ExecId),
    Handshake13,
    Application13(ExecId),
}

/// Keystream circuits kept (one per block count; ≈ 11 MB at 32 blocks); beyond this the
/// smallest are dropped. A node sees few block counts: full batches and a few tails.
const MAX_CACHED_CTR_CIRCUITS: usize = 4;

/// The spec for `key`, built once per process: circuits are the same for every session, and
/// building them costs more than garbling them.
pub(crate) fn cached(
    key: SpecKey,
    build: impl FnOnce() -> Result<Arc<ExecSpec>, BuildError>,
) -> Result<Arc<ExecSpec>, BuildError> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: std::sync::OnceLock<Mutex<HashMap<SpecKey, Arc<ExecSpec>>>> =
        std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(s);
    }
    let spec = build()?;
    if let Ok(mut c) = cache.lock() {
        c.insert(key, spec.clone());
    }
    Ok(spec)
}

/// The keystream circuit of `n` blocks, of which blocks `public..public + typed` are typed:
/// inputs traffic key, then two copies of the blocks' public inputs (each block's suffix,
/// then each typed block's one-hot byte position); outputs the mismatch bit, then the
/// blocks in order, a typed block as the one byte its position selects (128 AND gates).
/// Built once per block count, typed count, kind of nonce and process.
fn ctr_circuit(
    n: usize,
    public: usize,
    typed: usize,
    kind: NonceKind,
) -> Result<Arc<mpc::circuit::Circuit>, BuildError> {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    type Key = (usize, usize, usize, NonceKind);
    type Cache = BTreeMap<Key, Arc<mpc::circuit::Circuit>>;
    static CACHE: Mutex<Cache> = Mutex::new(BTreeMap::new());
    // Without typed blocks the circuit does not depend on where the public blocks end.
    let key = (n, typed, if typed > 0 { public } else { 0 }, kind);
    if let Some(c) = CACHE.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(c);
    }
    let mut b = Builder::new();
    let tk = b.inputs(kind.key_bits());
    let w = n * SUFFIX_BITS + typed * 16;
    let pa = b.inputs(w);
    let pb = b.inputs(w);
    let mismatch = differ(&mut b, &pa, &pb)?;
    let (rk, iv) = tk.split_at(EXPANDED_KEY_BITS);
    let (suffixes, positions) = pa.split_at(n * SUFFIX_BITS);
    let mut outputs: Vec<Bit> = Vec::with_capacity(1 + n * 128);
    outputs.push(mismatch);
    for (i, suffix) in suffixes.chunks_exact(SUFFIX_BITS).enumerate() {
        let block = match kind {
            NonceKind::Explicit => [iv, suffix].concat(),
            NonceKind::Sequence => {
                let (seq, ctr) = suffix.split_at(64);
                let mut block = iv[..32].to_vec();
                block.extend(b.xor_vec(&iv[32..], seq)?);
                block.extend_from_slice(ctr);
                block
            }
        };
        let ks = mpc::circuit::aes::expanded_block(&mut b, rk, &block)?;
        match i.checked_sub(public).filter(|t| *t < typed) {
            Some(t) => {
                let onehot = &positions[t * 16..t * 16 + 16];
                let mut byte = vec![Bit::Const(false); 8];
                for (j, &sel) in onehot.iter().enumerate() {
                    for (k, out) in byte.iter_mut().enumerate() {
                        let v = b.and(ks[8 * j + k], sel);
                        *out = b.xor(*out, v);
                    }
                }
                outputs.extend(byte);
            }
            None => outputs.extend(ks),
        }
    }
    let circuit = Arc::new(b.finish(&outputs)?);
    if let Ok(mut c) = CACHE.lock() {
        // Keep the largest: full batches recur in every session, tails vary.
        while c.len() >= MAX_CACHED_CTR_CIRCUITS {
            let Some(&smallest) = c.keys().next() else {
                break;
            };
            c.remove(&smallest);
        }
        c.insert(key, circuit.clone());
    }
    Ok(circuit)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn batches_cover_every_block_once() {
        let recs: Vec<CtrRecord> = [0, 1, 16, 17, 5000, 16384, 2, 16384]
            .iter()
            .map(|&len| CtrRecord { len, alert: false })
            .collect();
        let plan = plan_batches(&recs);
        let mut covered = vec![0usize; recs.len()];
        let mut masks = vec![0; recs.len()];
        for batch in &plan {
            let blocks: usize = batch
                .iter()
                .map(|s| usize::from(s.mask) + blocks_for(s.end) - s.start / 16)
                .sum();
            assert!(blocks <= MAX_BLOCKS_PER_EXECUTION);
            for s in batch {
                assert_eq!(s.start, covered[s.record]);
                covered[s.record] = s.end;
                masks[s.record] += usize::from(s.mask);
            }
        }
        assert_eq!(covered, recs.iter().map(|r| r.len).collect::<Vec<_>>());
        assert!(masks.iter().all(|&m| m == 1));
    }
}
