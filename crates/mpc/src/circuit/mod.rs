//! Boolean circuits: a small builder with constant folding, a plaintext evaluator, and the
//! fixed-shape circuits Tessera needs (AES-128, SHA-256, P-256 field addition, comparisons).
//! Circuits are public data: nothing here may ever hold a secret value except the evaluator's
//! plaintext inputs in tests and benchmarks.
//!
//! Bit order convention: a byte string is a bit string with each byte most-significant bit
//! first, so `bytes_to_bits(&[0x80]) == [true, false, …]`. Numbers are big-endian byte strings.

pub mod aes;
pub mod arith;
pub mod sha256;

use std::fmt;

/// Index of a wire slot in a [`Circuit`]. Slots `0..num_inputs` hold the inputs; a finished
/// circuit reuses the slot of a wire nobody reads any more for a later gate's output.
pub type WireId = u32;

/// A gate of a finished circuit: it reads slots `a` and `b` and writes slot `out`, which is
/// never one of its own inputs; gates are stored in evaluation order.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// `out = a ⊕ b` (free in the garbled circuit).
    Xor { a: WireId, b: WireId, out: WireId },
    /// `out = a ∧ b` (two ciphertexts in the garbled circuit).
    And { a: WireId, b: WireId, out: WireId },
    /// `out = ¬a` (free).
    Not { a: WireId, out: WireId },
    /// `out = value`, a public constant; only created for circuit outputs that folded to a
    /// constant.
    Const { value: bool, out: WireId },
}

/// A finished boolean circuit.
#[derive(Clone)]
pub struct Circuit {
    num_inputs: u32,
    num_wires: u32,
    gates: Vec<Packed>,
    outputs: Vec<WireId>,
    and_count: usize,
    const_count: usize,
    /// [`Circuit::digest`], computed on first use.
    digest: std::sync::OnceLock<[u8; 32]>,
}

impl PartialEq for Circuit {
    fn eq(&self, o: &Circuit) -> bool {
        // The digest is a cache of the rest.
        (self.num_inputs, self.num_wires, &self.gates, &self.outputs)
            == (o.num_inputs, o.num_wires, &o.gates, &o.outputs)
    }
}

impl Eq for Circuit {}

impl fmt::Debug for Circuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Circuit")
            .field("inputs", &self.num_inputs)
            .field("outputs", &self.outputs.len())
            .field("gates", &self.gates.len())
            .field("and", &self.and_count)
            .finish()
    }
}

/// Errors from building or evaluating a circuit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CircuitError {
    /// The evaluator was given the wrong number of input bits.
    #[error("circuit takes {expected} input bits, got {got}")]
    InputLength {
        /// Inputs the circuit declares.
        expected: usize,
        /// Inputs supplied.
        got: usize,
    },
    /// Two operands that must have equal width do not.
    #[error("operand widths differ: {0} and {1} bits")]
    WidthMismatch(usize, usize),
    /// The circuit would exceed the 2^32 wire limit.
    #[error("circuit exceeds 2^32 wires")]
    TooLarge,
}

impl Circuit {
    /// Number of input bits.
    pub fn num_inputs(&self) -> usize {
        self.num_inputs as usize
    }
    /// Number of output bits.
    pub fn num_outputs(&self) -> usize {
        self.outputs.len()
    }
    /// Number of wire slots (the label storage garbling and evaluation need; wires share slots
    /// once dead, so this is far below inputs plus gates).
    pub fn num_wires(&self) -> usize {
        self.num_wires as usize
    }
    /// The gates in evaluation order.
    pub fn gates(&self) -> impl ExactSizeIterator<Item = Gate> + '_ {
        self.gates.iter().map(|p| p.unpack())
    }

    /// Gate `i` in evaluation order.
    #[inline(always)]
    pub fn gate(&self, i: usize) -> Option<Gate> {
        self.gates.get(i).map(|p| p.unpack())
    }

    /// Number of gates.
    pub fn num_gates(&self) -> usize {
        self.gates.len()
    }
    /// The output wires, in output order.
    pub fn outputs(&self) -> &[WireId] {
        &self.outputs
    }
    /// A collision-resistant digest of the circuit (inputs, slots, gates, outputs), computed
    /// once: specs that share a circuit do not hash it again.
    pub fn digest(&self) -> &[u8; 32] {
        self.digest.get_or_init(|| {
            let mut h = blake3::Hasher::new_derive_key("tessera mpc circuit v1");
            h.update(&u64::from(self.num_inputs).to_le_bytes());
            h.update(&u64::from(self.num_wires).to_le_bytes());
            h.update(&(self.gates.len() as u64).to_le_bytes());
            // Hashed in pieces: a buffer for the whole circuit would be as big as the circuit.
            let mut buf = Vec::with_capacity(1 << 16);
            for p in &self.gates {
                if buf.len() + 12 > buf.capacity() {
                    h.update(&buf);
                    buf.clear();
                }
                // The packed form is canonical: the kind in the top bits of the third word.
                for w in p.0 {
                    buf.extend_from_slice(&w.to_le_bytes());
                }
            }
            h.update(&buf);
            h.update(&(self.outputs.len() as u64).to_le_bytes());
            for o in &self.outputs {
                h.update(&o.to_le_bytes());
            }
            h.finalize().into()
        })
    }

    /// Number of AND gates: the garbling cost.
    pub fn and_count(&self) -> usize {
        self.and_count
    }
    /// Number of constant gates (outputs that folded to a constant).
    pub fn const_count(&self) -> usize {
        self.const_count
    }
    /// Number of XOR and NOT gates (free under free-XOR).
    pub fn free_count(&self) -> usize {
        self.gates()
            .filter(|g| matches!(g, Gate::Xor { .. } | Gate::Not { .. }))
            .count()
    }

    /// Evaluates the circuit on plaintext input bits.
    pub fn evaluate(&self, inputs: &[bool]) -> Result<Vec<bool>, CircuitError> {
        if inputs.len() != self.num_inputs() {
            return Err(CircuitError::InputLength {
                expected: self.num_inputs(),
                got: inputs.len(),
            });
        }
        let mut w = vec![false; self.num_wires()];
        w[..inputs.len()].copy_from_slice(inputs);
        for g in self.gates() {
            match g {
                Gate::Xor { a, b, out } => w[out as usize] = w[a as usize] ^ w[b as usize],
                Gate::And { a, b, out } => w[out as usize] = w[a as usize] & w[b as usize],
                Gate::Not { a, out } => w[out as usize] = !w[a as usize],
                Gate::Const { value, out } => w[out as usize] = value,
            }
        }
        Ok(self.outputs.iter().map(|&o| w[o as usize]).collect())
    }

    /// Evaluates on byte-string input and returns the output as bytes (outputs padded with
    /// zero bits to a whole byte).
    pub fn evaluate_bytes(&self, input: &[u8]) -> Result<Vec<u8>, CircuitError> {
        let bits = bytes_to_bits(input);
        if bits.len() < self.num_inputs() || bits.len() >= self.num_inputs() + 8 {
            return Err(CircuitError::InputLength {
                expected: self.num_inputs(),
                got: bits.len(),
            });
        }
        Ok(bits_to_bytes(&self.evaluate(&bits[..self.num_inputs()])?))
    }
}

/// A bit while a circuit is being built: a public constant or a wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bit {
    /// Public constant.
    Const(bool),
    /// A wire of the circuit under construction.
    Wire(WireId),
}

/// Builds a [`Circuit`] gate by gate, folding constants and trivial identities so that the
/// AND count is exactly what the gadget needs.
#[derive(Debug, Default)]
pub struct Builder {
    num_inputs: u32,
    next_wire: u32,
    /// Packed from the start and kept in chunks of [`BUILD_CHUNK`] gates: no doubling slack,
    /// and [`levelize`] frees each chunk once it has moved its gates.
    gates: Vec<Vec<Packed>>,
    and_count: usize,
    inputs_closed: bool,
}

impl Builder {
    /// A new, empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `n` more input bits. All inputs must be declared before the first gate.
    ///
    /// # Panics
    /// If a gate was already added: that is a programming error in a gadget, not data.
    #[allow(clippy::panic)]
    pub fn inputs(&mut self, n: usize) -> Vec<Bit> {
        if self.inputs_closed {
            panic!("Builder::inputs called after the first gate");
        }
        let start = self.next_wire;
        self.next_wire += n as u32;
        self.num_inputs = self.next_wire;
        (start..self.next_wire).map(Bit::Wire).collect()
    }

    /// Declares one more input bit.
    pub fn input(&mut self) -> Bit {
        self.inputs(1)[0]
    }

    fn fresh(&mut self) -> WireId {
        self.inputs_closed = true;
        let w = self.next_wire;
        // Past the slot range, finish reports TooLarge; saturating keeps this from wrapping.
        self.next_wire = self.next_wire.saturating_add(1);
        w
    }

    fn push(&mut self, g: Gate) {
        match self.gates.last_mut() {
            Some(c) if c.len() < BUILD_CHUNK => c.push(Packed::pack(g)),
            _ => {
                let mut c = Vec::with_capacity(BUILD_CHUNK);
                c.push(Packed::pack(g));
                self.gates.push(c);
            }
        }
    }

    /// `a ⊕ b`.
    pub fn xor(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(x), Bit::Const(y)) => Bit::Const(x ^ y),
            (Bit::Const(false), w) | (w, Bit::Const(false)) => w,
            (Bit::Const(true), w) | (w, Bit::Const(true)) => self.not(w),
            (Bit::Wire(x), Bit::Wire(y)) if x == y => Bit::Const(false),
            (Bit::Wire(x), Bit::Wire(y)) => {
                let out = self.fresh();
                self.push(Gate::Xor { a: x, b: y, out });
                Bit::Wire(out)
            }
        }
    }

    /// `a ∧ b`.
    pub fn and(&mut self, a: Bit, b: Bit) -> Bit {
        match (a, b) {
            (Bit::Const(x), Bit::Const(y)) => Bit::Const(x & y),
            (Bit::Const(false), _) | (_, Bit::Const(false)) => Bit::Const(false),
            (Bit::Const(true), w) | (w, Bit::Const(true)) => w,
            (Bit::Wire(x), Bit::Wire(y)) if x == y => a,
            (Bit::Wire(x), Bit::Wire(y)) => {
                let out = self.fresh();
                self.push(Gate::And { a: x, b: y, out });
                self.and_count += 1;
                Bit::Wire(out)
            }
        }
    }

    /// `¬a`.
    pub fn not(&mut self, a: Bit) -> Bit {
        match a {
            Bit::Const(x) => Bit::Const(!x),
            Bit::Wire(x) => {
                let out = self.fresh();
                self.push(Gate::Not { a: x, out });
                Bit::Wire(out)
            }
        }
    }

    /// `a ∨ b` (one AND).
    pub fn or(&mut self, a: Bit, b: Bit) -> Bit {
        let x = self.xor(a, b);
        let y = self.and(a, b);
        self.xor(x, y)
    }

    /// `if s { b } else { a }` (one AND).
    pub fn mux(&mut self, s: Bit, a: Bit, b: Bit) -> Bit {
        let d = self.xor(a, b);
        let t = self.and(s, d);
        self.xor(a, t)
    }

    /// Bitwise XOR of two equal-width vectors.
    pub fn xor_vec(&mut self, a: &[Bit], b: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
        if a.len() != b.len() {
            return Err(CircuitError::WidthMismatch(a.len(), b.len()));
        }
        Ok(a.iter().zip(b).map(|(&x, &y)| self.xor(x, y)).collect())
    }

    /// Appends a copy of a finished circuit with its inputs wired to `inputs`, and returns
    /// its outputs. Gates go through the same folding as [`Builder::xor`] and friends, so
    /// constant inputs simplify the copy. Much faster than re-running a gadget when the same
    /// function is needed many times (AES counter blocks).
    pub fn instantiate(&mut self, c: &Circuit, inputs: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
        if inputs.len() != c.num_inputs as usize {
            return Err(CircuitError::WidthMismatch(
                inputs.len(),
                c.num_inputs as usize,
            ));
        }
        let mut map = vec![Bit::Const(false); c.num_wires as usize];
        map[..inputs.len()].copy_from_slice(inputs);
        for g in c.gates() {
            match g {
                Gate::Xor { a, b, out } => {
                    map[out as usize] = self.xor(map[a as usize], map[b as usize])
                }
                Gate::And { a, b, out } => {
                    map[out as usize] = self.and(map[a as usize], map[b as usize])
                }
                Gate::Not { a, out } => map[out as usize] = self.not(map[a as usize]),
                Gate::Const { value, out } => map[out as usize] = Bit::Const(value),
            }
        }
        Ok(c.outputs.iter().map(|&o| map[o as usize]).collect())
    }

    /// AND count so far.
    pub fn and_count(&self) -> usize {
        self.and_count
    }

    /// Finishes the circuit with the given outputs. Outputs that folded to constants become
    /// [`Gate::Const`] wires.
    pub fn finish(mut self, outputs: &[Bit]) -> Result<Circuit, CircuitError> {
        let mut out = Vec::with_capacity(outputs.len());
        let mut const_count = 0;
        for &o in outputs {
            match o {
                Bit::Wire(w) => out.push(w),
                Bit::Const(value) => {
                    let w = self.fresh();
                    self.push(Gate::Const { value, out: w });
                    out.push(w);
                    const_count += 1;
                }
            }
        }
        // Wire ids must fit a packed gate's 30-bit fields.
        if self.next_wire > SLOT_MASK {
            return Err(CircuitError::TooLarge);
        }
        let mut gates = levelize(self.gates, self.next_wire as usize);
        let num_wires = allocate_slots(&mut gates, self.num_inputs, self.next_wire, &mut out);
        Ok(Circuit {
            num_inputs: self.num_inputs,
            num_wires,
            gates,
            outputs: out,
            and_count: self.and_count,
            const_count,
            digest: Default::default(),
        })
    }
}

/// Gates per chunk of a [`Builder`] (768 KiB).
const BUILD_CHUNK: usize = 1 << 16;

/// Slots fit in 30 bits; the top two bits of a packed gate's third word hold its kind.
const SLOT_MASK: u32 = (1 << 30) - 1;

/// A gate in 12 bytes (the enum takes 16): circuits are the largest thing a node keeps in
/// memory, and most of their gates are XORs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Packed([u32; 3]);

impl Packed {
    fn pack(g: Gate) -> Packed {
        Packed(match g {
            Gate::Xor { a, b, out } => [a, b, out],
            Gate::And { a, b, out } => [a, b, out | 1 << 30],
            Gate::Not { a, out } => [a, 0, out | 2 << 30],
            Gate::Const { value, out } => [u32::from(value), 0, out | 3 << 30],
        })
    }

    #[inline(always)]
    fn unpack(self) -> Gate {
        let [a, b, w] = self.0;
        let out = w & SLOT_MASK;
        match w >> 30 {
            0 => Gate::Xor { a, b, out },
            1 => Gate::And { a, b, out },
            2 => Gate::Not { a, out },
            _ => Gate::Const { value: a != 0, out },
        }
    }
}

/// Renames wires to reusable slots: a gate's output takes a slot freed by a wire nobody reads
/// any more, so garbling and evaluation need label storage for the live wires only, not for
/// every wire ever computed (for SHA-256 and AES circuits that is a small fraction). Inputs
/// keep slots `0..num_inputs`; circuit outputs are never overwritten. A gate's output never
/// shares a slot with its own inputs (inputs are freed after the output is placed), and AND
/// tweaks count AND gates, not wires, so renaming changes nothing cryptographic.
/// Renames in place; returns the number of slots and rewrites `outputs`.
fn allocate_slots(
    gates: &mut [Packed],
    num_inputs: u32,
    num_wires: u32,
    outputs: &mut [WireId],
) -> u32 {
    const NEVER: u32 = u32::MAX;
    let n = num_wires as usize;
    // Index of the last gate reading each wire.
    let mut last = vec![NEVER; n];
    for (i, g) in gates.iter().enumerate() {
        let i = i as u32;
        match g.unpack() {
            Gate::Xor { a, b, .. } | Gate::And { a, b, .. } => {
                last[a as usize] = i;
                last[b as usize] = i;
            }
            Gate::Not { a, .. } => last[a as usize] = i,
            Gate::Const { .. } => {}
        }
    }
    let mut keep = vec![false; n];
    for &o in outputs.iter() {
        keep[o as usize] = true;
    }
    let mut slot = vec![NEVER; n];
    for (w, s) in slot.iter_mut().enumerate().take(num_inputs as usize) {
        *s = w as u32;
    }
    let mut next = num_inputs;
    let mut free: Vec<u32> = Vec::new();
    for (i, p) in gates.iter_mut().enumerate() {
        let i = i as u32;
        let g = p.unpack();
        let (reads, out): ([Option<WireId>; 2], WireId) = match g {
            Gate::Xor { a, b, out } | Gate::And { a, b, out } => ([Some(a), Some(b)], out),
            Gate::Not { a, out } => ([Some(a), None], out),
            Gate::Const { out, .. } => ([None, None], out),
        };
        let s = free.pop().unwrap_or_else(|| {
            next += 1;
            next - 1
        });
        slot[out as usize] = s;
        *p = Packed::pack(match g {
            Gate::Xor { a, b, .. } => Gate::Xor {
                a: slot[a as usize],
                b: slot[b as usize],
                out: s,
            },
            Gate::And { a, b, .. } => Gate::And {
                a: slot[a as usize],
                b: slot[b as usize],
                out: s,
            },
            Gate::Not { a, .. } => Gate::Not {
                a: slot[a as usize],
                out: s,
            },
            Gate::Const { value, .. } => Gate::Const { value, out: s },
        });
        // Free inputs read for the last time (once, even if both operands are the same wire).
        for (k, r) in reads.iter().enumerate() {
            if let Some(r) = *r {
                let dup = k == 1 && reads[0] == Some(r);
                if !dup && last[r as usize] == i && !keep[r as usize] {
                    free.push(slot[r as usize]);
                }
            }
        }
        // An output nobody reads frees its slot at once.
        if last[out as usize] == NEVER && !keep[out as usize] {
            free.push(s);
        }
    }
    for o in outputs.iter_mut() {
        *o = slot[*o as usize];
    }
    next
}

/// Reorders gates by AND depth: all AND gates of depth d (whose inputs are ready after depth
/// d−1) come before the free gates of depth d, keeping the original relative order otherwise.
/// The result is still topological, and AND gates of one depth are adjacent and independent,
/// which lets the garbler and evaluator hash several of them in one pipelined AES batch.
fn levelize(chunks: Vec<Vec<Packed>>, num_wires: usize) -> Vec<Packed> {
    let num_gates = chunks.iter().map(Vec::len).sum();
    // Key of a gate: 2·(AND depth) + (1 if free). A stable counting sort on it.
    let mut level = vec![0u32; num_wires];
    let mut dest: Vec<u32> = Vec::with_capacity(num_gates);
    dest.extend(chunks.iter().flatten().map(|g| match g.unpack() {
        Gate::Xor { a, b, out } => {
            let l = level[a as usize].max(level[b as usize]);
            level[out as usize] = l;
            2 * l + 1
        }
        Gate::Not { a, out } => {
            let l = level[a as usize];
            level[out as usize] = l;
            2 * l + 1
        }
        Gate::Const { .. } => 1,
        Gate::And { a, b, out } => {
            let l = level[a as usize].max(level[b as usize]) + 1;
            level[out as usize] = l;
            2 * l
        }
    }));
    drop(level);
    let buckets = dest.iter().map(|&k| k as usize + 1).max().unwrap_or(0);
    let mut start = vec![0u32; buckets + 1];
    for &k in &dest {
        start[k as usize + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    // A zeroed allocation gets its pages from the system only as they are written, and each
    // source chunk is freed once moved, so the gates are held about once, not twice.
    let mut out = vec![[0u32; 3]; num_gates];
    let mut keys = dest.iter();
    for chunk in chunks {
        for (g, &k) in chunk.iter().zip(keys.by_ref()) {
            let b = &mut start[k as usize];
            out[*b as usize] = g.0;
            *b += 1;
        }
    }
    // Same size and alignment: this reuses the allocation.
    out.into_iter().map(Packed).collect()
}

/// A public byte string as constant circuit bits, each byte most-significant bit first (the
/// order of [`bytes_to_bits`]); constants fold away in the builder.
pub fn const_bits(bytes: &[u8]) -> Vec<Bit> {
    bytes
        .iter()
        .flat_map(|&v| (0..8).rev().map(move |i| Bit::Const((v >> i) & 1 == 1)))
        .collect()
}

/// Byte string to bits, each byte most-significant bit first.
pub fn bytes_to_bits(bytes: &[u8]) -> Vec<bool> {
    bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1 == 1))
        .collect()
}

/// Bits (each byte most-significant bit first) to bytes; a final partial byte is padded
/// with zero bits on the right.
pub fn bits_to_bytes(bits: &[bool]) -> Vec<u8> {
    bits.chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << (7 - i)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_gates_roundtrip() {
        let m = SLOT_MASK;
        for g in [
            Gate::Xor { a: 0, b: m, out: m },
            Gate::And { a: m, b: 1, out: 0 },
            Gate::Not { a: 7, out: m },
            Gate::Const {
                value: true,
                out: m,
            },
            Gate::Const {
                value: false,
                out: 3,
            },
        ] {
            assert_eq!(Packed::pack(g).unpack(), g);
        }
        assert_eq!(std::mem::size_of::<Packed>(), 12);
    }

    #[test]
    fn wires_share_slots() {
        // Label storage is for live wires only: far fewer slots than gates.
        for c in [sha256::compression_circuit(), aes::aes128_circuit()] {
            assert!(
                c.num_wires() * 4 < c.num_gates(),
                "{} slots for {} gates",
                c.num_wires(),
                c.num_gates()
            );
        }
        // A gate never writes a slot it reads. (That outputs are never overwritten shows in
        // the evaluation tests against the sha2 and aes crates.)
        let c = sha256::compression_circuit();
        for g in c.gates() {
            match g {
                Gate::Xor { a, b, out } | Gate::And { a, b, out } => assert!(a != out && b != out),
                Gate::Not { a, out } => assert!(a != out),
                Gate::Const { .. } => {}
            }
        }
    }

    #[test]
    fn instantiate_matches_the_gadget() {
        let aes = aes::aes128_expanded_circuit();
        let mut b = Builder::new();
        let rk = b.inputs(aes::EXPANDED_KEY_BITS);
        let blk = b.inputs(128);
        let mut inputs = rk.clone();
        inputs.extend(&blk);
        let a = b.instantiate(&aes, &inputs).unwrap();
        // A second copy with a constant block folds nothing away that matters: same ANDs.
        let mut ci = rk.clone();
        ci.extend(const_bits(&[7u8; 16]));
        let c2 = b.instantiate(&aes, &ci).unwrap();
        assert_eq!(b.and_count(), 2 * aes::AES128_EXPANDED_AND_COUNT);
        let c = b.finish(&[a, c2].concat()).unwrap();
        let key = [9u8; 16];
        let mut input = aes::expand_key(&key).to_vec();
        input.extend([3u8; 16]);
        let out = c.evaluate_bytes(&input).unwrap();
        use ::aes::cipher::{BlockEncrypt, KeyInit};
        let cipher = ::aes::Aes128::new(&key.into());
        for (pt, got) in [[3u8; 16], [7u8; 16]].iter().zip(out.chunks(16)) {
            let mut blk = (*pt).into();
            cipher.encrypt_block(&mut blk);
            assert_eq!(got, blk.as_slice());
        }
        assert!(Builder::new().instantiate(&aes, &[]).is_err());
    }

    #[test]
    fn folding_removes_trivial_gates() {
        let mut b = Builder::new();
        let x = b.input();
        let y = b.input();
        assert_eq!(b.xor(x, x), Bit::Const(false));
        assert_eq!(b.and(x, Bit::Const(true)), x);
        assert_eq!(b.and(x, Bit::Const(false)), Bit::Const(false));
        assert_eq!(b.xor(x, Bit::Const(false)), x);
        assert_eq!(b.and(x, x), x);
        assert_eq!(b.and_count(), 0);
        let z = b.and(x, y);
        assert_eq!(b.and_count(), 1);
        let c = b.finish(&[z, Bit::Const(true)]).unwrap();
        for (i, j) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(c.evaluate(&[i, j]).unwrap(), vec![i & j, true]);
        }
    }

    #[test]
    fn mux_or_not() {
        let mut b = Builder::new();
        let v = b.inputs(3);
        let m = b.mux(v[0], v[1], v[2]);
        let o = b.or(v[1], v[2]);
        let n = b.not(v[0]);
        let c = b.finish(&[m, o, n]).unwrap();
        assert_eq!(c.and_count(), 2);
        for k in 0..8u8 {
            let (s, x, y) = (k & 1 == 1, k & 2 == 2, k & 4 == 4);
            assert_eq!(
                c.evaluate(&[s, x, y]).unwrap(),
                vec![if s { y } else { x }, x | y, !s]
            );
        }
    }

    #[test]
    fn wrong_input_length_is_an_error() {
        let mut b = Builder::new();
        let v = b.inputs(2);
        let z = b.and(v[0], v[1]);
        let c = b.finish(&[z]).unwrap();
        assert_eq!(
            c.evaluate(&[true]),
            Err(CircuitError::InputLength {
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn bit_order_roundtrip() {
        assert!(bytes_to_bits(&[0x80])[0]);
        let data = [0x12u8, 0xab, 0xff, 0x00];
        assert_eq!(bits_to_bytes(&bytes_to_bits(&data)), data);
    }
}
