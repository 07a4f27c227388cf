//! Half-gates garbling with free-XOR (Zahur–Rosulek–Evans 2015) over fixed-key AES.
//! Pure functions of their inputs: the same circuit, Δ, input labels and tweak base always give
//! the same tables, which is what lets two MRZ15 garblers produce identical garbled circuits.
//! Nothing here sends, logs or stores labels; callers own and zeroize them.
//!
//! Hashing: the tweakable circular-correlation-robust hash `H(x, i) = π(π(x) ⊕ i) ⊕ π(x)` with
//! π = AES-128 under a fixed public key (Guo, Katz, Wang, Yu, "Efficient and Secure Multiparty
//! Computation from Fixed-Key Block Ciphers", S&P 2020, §7: TCCR in the random-permutation
//! model). Tweaks are unique per hash call within a session: the high 64 bits carry the
//! execution id and the low bits the AND-gate index.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use std::sync::OnceLock;

use crate::circuit::{Circuit, Gate};
use crate::label::{Delta, Label};

/// Bytes of garbled material per AND gate (two ciphertexts).
pub const AND_TABLE_BYTES: usize = 32;
/// Bytes of garbled material per constant gate (the active label, sent in the clear).
pub const CONST_TABLE_BYTES: usize = 16;

/// Errors from evaluating garbled material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GarbleError {
    /// The tables do not have the size the circuit requires.
    #[error("garbled tables are {got} bytes, the circuit needs {expected}")]
    TableLength {
        /// Required size.
        expected: usize,
        /// Received size.
        got: usize,
    },
    /// The number of input labels does not match the circuit.
    #[error("circuit takes {expected} input labels, got {got}")]
    InputCount {
        /// Required count.
        expected: usize,
        /// Supplied count.
        got: usize,
    },
}

/// Size in bytes of the garbled tables of `c`.
pub fn table_len(c: &Circuit) -> usize {
    c.and_count() * AND_TABLE_BYTES + c.const_count() * CONST_TABLE_BYTES
}

/// The fixed public AES key used as the random permutation π ("Tessera fixed-key AES π v1"
/// truncated; any public constant works, it only has to be the same everywhere).
const FIXED_KEY: [u8; 16] = *b"Tessera-FK-pi-v1";

fn cipher() -> &'static Aes128 {
    static CIPHER: OnceLock<Aes128> = OnceLock::new();
    CIPHER.get_or_init(|| Aes128::new(GenericArray::from_slice(&FIXED_KEY)))
}

/// π applied in place to a small batch of blocks (AES-NI when the CPU has it).
#[inline(always)]
fn permute<const N: usize>(aes: &Aes128, x: &mut [u128; N]) {
    let mut blocks: [aes::Block; N] =
        std::array::from_fn(|i| GenericArray::from(x[i].to_le_bytes()));
    aes.encrypt_blocks(&mut blocks);
    for (xi, b) in x.iter_mut().zip(blocks.iter()) {
        *xi = u128::from_le_bytes((*b).into());
    }
}

/// TCCR hash of N (label, tweak) pairs: `π(π(x) ⊕ i) ⊕ π(x)`.
#[inline(always)]
fn tccr<const N: usize>(aes: &Aes128, x: [u128; N], tweak: [u128; N]) -> [u128; N] {
    let mut px = x;
    permute(aes, &mut px);
    let mut y: [u128; N] = std::array::from_fn(|i| px[i] ^ tweak[i]);
    permute(aes, &mut y);
    std::array::from_fn(|i| y[i] ^ px[i])
}

#[inline(always)]
fn lsb(x: u128) -> bool {
    x & 1 == 1
}

#[inline(always)]
fn sel(bit: bool, x: u128) -> u128 {
    // Branch-free select: all-ones mask when bit is set.
    x & (0u128.wrapping_sub(u128::from(bit)))
}

fn tweak(base: u64, and_index: u64, k: u64) -> u128 {
    (u128::from(base) << 64) | u128::from(and_index * 2 + k)
}

/// Garbles `circuit`. `input_zero` holds the zero-label of each input wire; the result holds
/// the zero-label of each output wire. Tables are appended to `tables` in gate order:
/// 32 bytes per AND gate, 16 bytes (the active label) per constant gate.
pub fn garble(
    circuit: &Circuit,
    delta: &Delta,
    input_zero: &[Label],
    tweak_base: u64,
    tables: &mut Vec<u8>,
) -> Result<Vec<Label>, GarbleError> {
    if input_zero.len() != circuit.num_inputs() {
        return Err(GarbleError::InputCount {
            expected: circuit.num_inputs(),
            got: input_zero.len(),
        });
    }
    let aes = cipher();
    let d = delta.0;
    let mut w = zeroize::Zeroizing::new(vec![0u128; circuit.num_wires()]);
    for (slot, l) in w.iter_mut().zip(input_zero) {
        *slot = l.0;
    }
    tables.reserve(table_len(circuit));
    let mut j = 0u64;
    let mut i = 0;
    while let Some(gate) = circuit.gate(i) {
        match gate {
            Gate::Xor { a, b, out } => w[out as usize] = w[a as usize] ^ w[b as usize],
            Gate::Not { a, out } => w[out as usize] = w[a as usize] ^ d,
            Gate::Const { value, out } => {
                let z = derive_const_label(d, tweak_base, j);
                w[out as usize] = z;
                tables.extend_from_slice(&(z ^ sel(value, d)).to_le_bytes());
            }
            Gate::And { a, b, out } => {
                // Two independent AND gates fill one 8-block AES pipeline.
                if let Some(Gate::And {
                    a: a2,
                    b: b2,
                    out: out2,
                }) = circuit.gate(i + 1)
                {
                    if a2 != out && b2 != out {
                        let (x, y) = (w[a as usize], w[b as usize]);
                        let (x2, y2) = (w[a2 as usize], w[b2 as usize]);
                        let t = [tweak(tweak_base, j, 0), tweak(tweak_base, j, 1)];
                        let t2 = [tweak(tweak_base, j + 1, 0), tweak(tweak_base, j + 1, 1)];
                        let h = tccr(
                            aes,
                            [x, x ^ d, y, y ^ d, x2, x2 ^ d, y2, y2 ^ d],
                            [t[0], t[0], t[1], t[1], t2[0], t2[0], t2[1], t2[1]],
                        );
                        w[out as usize] = garble_and(x, y, d, &h[..4], tables);
                        w[out2 as usize] = garble_and(x2, y2, d, &h[4..], tables);
                        j += 2;
                        i += 2;
                        continue;
                    }
                }
                let (x, y) = (w[a as usize], w[b as usize]);
                let t0 = tweak(tweak_base, j, 0);
                let t1 = tweak(tweak_base, j, 1);
                let h = tccr(aes, [x, x ^ d, y, y ^ d], [t0, t0, t1, t1]);
                w[out as usize] = garble_and(x, y, d, &h, tables);
                j += 1;
            }
        }
        i += 1;
    }
    Ok(circuit
        .outputs()
        .iter()
        .map(|&o| Label(w[o as usize]))
        .collect())
}

/// One half-gates AND from the hashes `h = [H(A0), H(A1), H(B0), H(B1)]`: appends the two
/// ciphertexts and returns the output zero-label.
#[inline(always)]
fn garble_and(a0: u128, b0: u128, d: u128, h: &[u128], tables: &mut Vec<u8>) -> u128 {
    let (pa, pb) = (lsb(a0), lsb(b0));
    // Generator half-gate.
    let tg = h[0] ^ h[1] ^ sel(pb, d);
    let wg = h[0] ^ sel(pa, tg);
    // Evaluator half-gate.
    let te = h[2] ^ h[3] ^ a0;
    let we = h[2] ^ sel(pb, te ^ a0);
    tables.extend_from_slice(&tg.to_le_bytes());
    tables.extend_from_slice(&te.to_le_bytes());
    wg ^ we
}

/// Zero-label for a constant gate: any value works (the active label is sent in the clear);
/// it is derived from Δ so that both garblers agree without extra state.
fn derive_const_label(d: u128, base: u64, j: u64) -> u128 {
    let [h] = tccr(cipher(), [d], [tweak(base, j, 0) ^ (1u128 << 63)]);
    h
}

/// Evaluates garbled `tables` on the active `inputs` labels and returns the active output
/// labels. The evaluator never learns wire values; a wrong table yields wrong labels, which
/// the output authentication of the protocol catches.
pub fn evaluate(
    circuit: &Circuit,
    inputs: &[Label],
    tables: &[u8],
    tweak_base: u64,
) -> Result<Vec<Label>, GarbleError> {
    if inputs.len() != circuit.num_inputs() {
        return Err(GarbleError::InputCount {
            expected: circuit.num_inputs(),
            got: inputs.len(),
        });
    }
    let expected = table_len(circuit);
    if tables.len() != expected {
        return Err(GarbleError::TableLength {
            expected,
            got: tables.len(),
        });
    }
    let aes = cipher();
    let mut w = zeroize::Zeroizing::new(vec![0u128; circuit.num_wires()]);
    for (slot, l) in w.iter_mut().zip(inputs) {
        *slot = l.0;
    }
    let read = |pos: usize| -> u128 {
        let mut b = [0u8; 16];
        b.copy_from_slice(&tables[pos..pos + 16]);
        u128::from_le_bytes(b)
    };
    let mut pos = 0usize;
    let mut j = 0u64;
    let mut i = 0;
    while let Some(gate) = circuit.gate(i) {
        match gate {
            Gate::Xor { a, b, out } => w[out as usize] = w[a as usize] ^ w[b as usize],
            Gate::Not { a, out } => w[out as usize] = w[a as usize],
            Gate::Const { out, .. } => {
                w[out as usize] = read(pos);
                pos += CONST_TABLE_BYTES;
            }
            Gate::And { .. } => {
                // Up to four independent AND gates fill one 8-block AES pipeline.
                let mut batch = [(0u32, 0u32, 0u32); EVAL_BATCH];
                let mut n = 0;
                while n < EVAL_BATCH {
                    let Some(Gate::And { a, b, out }) = circuit.gate(i + n) else {
                        break;
                    };
                    if batch[..n].iter().any(|&(_, _, o)| o == a || o == b) {
                        break;
                    }
                    batch[n] = (a, b, out);
                    n += 1;
                }
                if n == EVAL_BATCH {
                    let mut x = [0u128; 2 * EVAL_BATCH];
                    let mut t = [0u128; 2 * EVAL_BATCH];
                    for (k, &(a, b, _)) in batch.iter().enumerate() {
                        x[2 * k] = w[a as usize];
                        x[2 * k + 1] = w[b as usize];
                        t[2 * k] = tweak(tweak_base, j + k as u64, 0);
                        t[2 * k + 1] = tweak(tweak_base, j + k as u64, 1);
                    }
                    let h = tccr(aes, x, t);
                    for (k, &(_, _, out)) in batch.iter().enumerate() {
                        let p = pos + k * AND_TABLE_BYTES;
                        w[out as usize] = eval_and(
                            x[2 * k],
                            x[2 * k + 1],
                            h[2 * k],
                            h[2 * k + 1],
                            read(p),
                            read(p + 16),
                        );
                    }
                } else {
                    for (k, &(a, b, out)) in batch[..n].iter().enumerate() {
                        let (la, lb) = (w[a as usize], w[b as usize]);
                        let jj = j + k as u64;
                        let t = [tweak(tweak_base, jj, 0), tweak(tweak_base, jj, 1)];
                        let h = tccr(aes, [la, lb], t);
                        let p = pos + k * AND_TABLE_BYTES;
                        w[out as usize] = eval_and(la, lb, h[0], h[1], read(p), read(p + 16));
                    }
                }
                pos += n * AND_TABLE_BYTES;
                j += n as u64;
                i += n;
                continue;
            }
        }
        i += 1;
    }
    Ok(circuit
        .outputs()
        .iter()
        .map(|&o| Label(w[o as usize]))
        .collect())
}

/// AND gates the evaluator hashes together (2 blocks each: one 8-block AES pipeline).
const EVAL_BATCH: usize = 4;

/// One half-gates AND evaluation from the two hashes and the two ciphertexts.
#[inline(always)]
fn eval_and(la: u128, lb: u128, ha: u128, hb: u128, tg: u128, te: u128) -> u128 {
    let wg = ha ^ sel(lsb(la), tg);
    let we = hb ^ sel(lsb(lb), te ^ la);
    wg ^ we
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::Builder;
    use rand::{Rng, SeedableRng};

    fn random_circuit(rng: &mut impl Rng, inputs: usize, gates: usize) -> Circuit {
        let mut b = Builder::new();
        let mut v = b.inputs(inputs);
        for _ in 0..gates {
            let x = v[rng.gen_range(0..v.len())];
            let y = v[rng.gen_range(0..v.len())];
            let z = match rng.gen_range(0..3) {
                0 => b.and(x, y),
                1 => b.xor(x, y),
                _ => b.not(x),
            };
            v.push(z);
        }
        let outs: Vec<_> = v[v.len() - 16..].to_vec();
        b.finish(&outs).unwrap()
    }

    /// Garbling then evaluating on the labels of random inputs decodes to the plaintext result.
    #[test]
    fn garble_evaluate_matches_plaintext() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for round in 0..50 {
            let c = random_circuit(&mut rng, 20, 400);
            let delta = Delta::random(&mut rng);
            let zero: Vec<Label> = (0..20).map(|_| Label(rng.gen())).collect();
            let mut tables = Vec::new();
            let out0 = garble(&c, &delta, &zero, round, &mut tables).unwrap();
            assert_eq!(tables.len(), table_len(&c));
            let x: Vec<bool> = (0..20).map(|_| rng.gen()).collect();
            let active: Vec<Label> = zero
                .iter()
                .zip(&x)
                .map(|(z, &b)| Label(z.0 ^ sel(b, delta.0)))
                .collect();
            let out = evaluate(&c, &active, &tables, round).unwrap();
            let want = c.evaluate(&x).unwrap();
            for ((o, z), w) in out.iter().zip(&out0).zip(&want) {
                assert!(o.0 == z.0 || o.0 == z.0 ^ delta.0, "label is neither value");
                assert_eq!(o.0 != z.0, *w);
            }
        }
    }

    #[test]
    fn garbling_is_deterministic_and_tweak_separated() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let c = random_circuit(&mut rng, 8, 100);
        let delta = Delta::random(&mut rng);
        let zero: Vec<Label> = (0..8).map(|_| Label(rng.gen())).collect();
        let (mut t1, mut t2, mut t3) = (Vec::new(), Vec::new(), Vec::new());
        garble(&c, &delta, &zero, 3, &mut t1).unwrap();
        garble(&c, &delta, &zero, 3, &mut t2).unwrap();
        garble(&c, &delta, &zero, 4, &mut t3).unwrap();
        assert_eq!(t1, t2);
        assert_ne!(t1, t3);
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let c = random_circuit(&mut rng, 8, 100);
        let labels = vec![Label(0); 8];
        assert!(matches!(
            evaluate(&c, &labels, &[0u8; 3], 0),
            Err(GarbleError::TableLength { .. })
        ));
        assert!(matches!(
            evaluate(&c, &labels[..7], &[], 0),
            Err(GarbleError::InputCount { .. })
        ));
    }

    /// A flipped table bit changes the evaluator's output labels into non-labels (which is
    /// what output authentication detects).
    #[test]
    fn flipped_table_bit_breaks_labels() {
        let mut b = Builder::new();
        let v = b.inputs(2);
        let z = b.and(v[0], v[1]);
        let c = b.finish(&[z]).unwrap();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let delta = Delta::random(&mut rng);
        let zero: Vec<Label> = (0..2).map(|_| Label(rng.gen())).collect();
        let mut t = Vec::new();
        let out0 = garble(&c, &delta, &zero, 0, &mut t).unwrap();
        for byte in 0..t.len() {
            let mut bad = t.clone();
            bad[byte] ^= 1;
            // Labels whose colour bit is 1 make the evaluator use both table rows.
            let colour1 = |z: Label| Label(if lsb(z.0) { z.0 } else { z.0 ^ delta.0 });
            let active = [colour1(zero[0]), colour1(zero[1])];
            let o = evaluate(&c, &active, &bad, 0).unwrap();
            assert!(o[0].0 != out0[0].0 && o[0].0 != out0[0].0 ^ delta.0);
        }
    }
}
