//! Small building blocks shared by the gadgets: AND/OR trees, comparisons with public
//! constants, a thermometer code of a small secret number, and counters. Public circuit
//! structure only; no values.

use mpc::circuit::{Bit, Builder};

pub(crate) const F: Bit = Bit::Const(false);
pub(crate) const T: Bit = Bit::Const(true);

/// AND of all bits as a balanced tree (n − 1 ANDs); true for none.
pub(crate) fn and_all(b: &mut Builder, bits: &[Bit]) -> Bit {
    let mut level = bits.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| match *p {
                [u, v] => b.and(u, v),
                [u] => u,
                _ => T,
            })
            .collect();
    }
    level.first().copied().unwrap_or(T)
}

/// OR of all bits (De Morgan over [`and_all`]); false for none.
pub(crate) fn or_all(b: &mut Builder, bits: &[Bit]) -> Bit {
    let neg: Vec<Bit> = bits.iter().map(|&x| b.not(x)).collect();
    let a = and_all(b, &neg);
    b.not(a)
}

/// `x ∧ ¬y`.
pub(crate) fn and_not(b: &mut Builder, x: Bit, y: Bit) -> Bit {
    let ny = b.not(y);
    b.and(x, ny)
}

/// Whether the MSB-first `bits` equal the public `value` (its low `bits.len()` bits).
pub(crate) fn eq_const(b: &mut Builder, bits: &[Bit], value: u64) -> Bit {
    let n = bits.len();
    let lits: Vec<Bit> = bits
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if (value >> (n - 1 - i)) & 1 == 1 {
                x
            } else {
                b.not(x)
            }
        })
        .collect();
    and_all(b, &lits)
}

/// `value` as `width` MSB-first constant bits.
pub(crate) fn const_num(value: u64, width: usize) -> Vec<Bit> {
    (0..width)
        .rev()
        .map(|i| Bit::Const(i < 64 && (value >> i) & 1 == 1))
        .collect()
}

/// For the MSB-first unsigned number `v`: `gt[i] = (v > i)` for `i < n`, and, if `want_eq`,
/// `eq[i] = (v == i)` (otherwise `eq` is empty).
///
/// Splits `v` into a high and a low half and combines the halves' codes:
/// `v > i ⇔ hi > a ∨ (hi = a ∧ lo > c)` for `i = a·2^k + c` (the two cases are exclusive, so
/// the OR is an XOR): one AND per output plus the halves' codes, which cover far fewer
/// values (99 ANDs for w = 8, n = 65, against 8 per output for separate comparators).
pub(crate) fn thermometer(
    b: &mut Builder,
    v: &[Bit],
    n: usize,
    want_eq: bool,
) -> (Vec<Bit>, Vec<Bit>) {
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let w = v.len();
    match w {
        0 => {
            let eq = if want_eq {
                (0..n).map(|i| Bit::Const(i == 0)).collect()
            } else {
                Vec::new()
            };
            (vec![F; n], eq)
        }
        1 => {
            let x = v[0];
            let gt = (0..n).map(|i| if i == 0 { x } else { F }).collect();
            let eq = if want_eq {
                let nx = b.not(x);
                (0..n)
                    .map(|i| match i {
                        0 => nx,
                        1 => x,
                        _ => F,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (gt, eq)
        }
        _ => {
            let k = w / 2;
            let (hi, lo) = v.split_at(w - k);
            // Values of v: 0 .. 2^w (capped to avoid overflow for wide inputs).
            let span = |bits: usize| 1usize.checked_shl(bits as u32).unwrap_or(usize::MAX);
            let cap = span(w);
            let na = (((n - 1) >> k) + 1).min(span(w - k));
            let nl = n.min(span(k));
            let (gh, eh) = thermometer(b, hi, na, true);
            let (gl, el) = thermometer(b, lo, nl, want_eq);
            let mut gt = Vec::with_capacity(n);
            let mut eq = Vec::with_capacity(if want_eq { n } else { 0 });
            for i in 0..n {
                if i >= cap {
                    gt.push(F);
                    if want_eq {
                        eq.push(F);
                    }
                    continue;
                }
                let (a, c) = (i >> k, i & (span(k) - 1));
                let t = b.and(eh[a], gl[c]);
                gt.push(b.xor(gh[a], t));
                if want_eq {
                    eq.push(b.and(eh[a], el[c]));
                }
            }
            (gt, eq)
        }
    }
}

/// `c + inc` for an LSB-first counter `c` of fixed width (the carry out is dropped): one AND
/// per bit that is not a constant.
pub(crate) fn increment(b: &mut Builder, c: &[Bit], inc: Bit) -> Vec<Bit> {
    let mut carry = inc;
    c.iter()
        .map(|&x| {
            let s = b.xor(x, carry);
            carry = b.and(x, carry);
            s
        })
        .collect()
}

/// Equality tests of one byte against public constants, sharing work: the byte is four
/// 2-bit pairs; each pair value used costs 1 AND once, each nibble value 1 AND once (two
/// pairs), each byte constant 1 AND (two nibbles).
pub(crate) struct ByteTests {
    bits: [Bit; 8],
    pairs: [[Option<Bit>; 4]; 4],
    nibbles: [[Option<Bit>; 16]; 2],
}

impl ByteTests {
    /// The tests of the byte `bits` (8 bits, MSB first).
    pub(crate) fn new(bits: &[Bit]) -> ByteTests {
        let mut a = [F; 8];
        a.copy_from_slice(&bits[..8]);
        ByteTests {
            bits: a,
            pairs: [[None; 4]; 4],
            nibbles: [[None; 16]; 2],
        }
    }

    /// The byte's bit `7 − i` (index 0 is the most significant bit).
    pub(crate) fn bit(&self, i: usize) -> Bit {
        self.bits[i]
    }

    /// Whether pair `p` (bits 2p and 2p+1, MSB first) is `v`.
    fn pair_is(&mut self, b: &mut Builder, p: usize, v: u8) -> Bit {
        let v = usize::from(v & 3);
        if let Some(x) = self.pairs[p][v] {
            return x;
        }
        let x = eq_const(b, &self.bits[2 * p..2 * p + 2], v as u64);
        self.pairs[p][v] = Some(x);
        x
    }

    fn nibble_is(&mut self, b: &mut Builder, n: usize, v: u8) -> Bit {
        let v = v & 15;
        if let Some(x) = self.nibbles[n][usize::from(v)] {
            return x;
        }
        let h = self.pair_is(b, 2 * n, v >> 2);
        let l = self.pair_is(b, 2 * n + 1, v);
        let x = b.and(h, l);
        self.nibbles[n][usize::from(v)] = Some(x);
        x
    }

    /// Whether the high nibble is `v`.
    pub(crate) fn hi_is(&mut self, b: &mut Builder, v: u8) -> Bit {
        self.nibble_is(b, 0, v)
    }

    /// Whether the low nibble is `v`.
    pub(crate) fn lo_is(&mut self, b: &mut Builder, v: u8) -> Bit {
        self.nibble_is(b, 1, v)
    }

    /// Whether the byte is `v`.
    pub(crate) fn is(&mut self, b: &mut Builder, v: u8) -> Bit {
        let h = self.hi_is(b, v >> 4);
        let l = self.lo_is(b, v);
        b.and(h, l)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn thermometer_matches_comparisons() {
        for w in 0..=9usize {
            for n in [0usize, 1, 2, 5, 17, 65, 300] {
                for want_eq in [false, true] {
                    let mut b = Builder::new();
                    let v = b.inputs(w);
                    let (gt, eq) = thermometer(&mut b, &v, n, want_eq);
                    assert_eq!(gt.len(), n);
                    assert_eq!(eq.len(), if want_eq { n } else { 0 });
                    let c = b.finish(&[gt, eq].concat()).unwrap();
                    for x in 0..(1usize << w) {
                        let bits: Vec<bool> = (0..w).rev().map(|i| (x >> i) & 1 == 1).collect();
                        let out = c.evaluate(&bits).unwrap();
                        for i in 0..n {
                            assert_eq!(out[i], x > i, "w={w} n={n} x={x} i={i}");
                            if want_eq {
                                assert_eq!(out[n + i], x == i);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn thermometer_is_cheap() {
        // The 8-bit length against 65 thresholds (canon_text with L = 64).
        let mut b = Builder::new();
        let v = b.inputs(8);
        thermometer(&mut b, &v, 65, false);
        assert_eq!(b.and_count(), 99);
    }

    #[test]
    fn byte_tests_and_counter() {
        let mut b = Builder::new();
        let x = b.inputs(8);
        let mut t = ByteTests::new(&x);
        let consts = [0x20u8, 0x22, 0xc3, 0x9f, 0x2e, 0x00, 0xff, 0x5a];
        let mut outs: Vec<Bit> = consts.iter().map(|&v| t.is(&mut b, v)).collect();
        outs.push(t.hi_is(&mut b, 0xa));
        outs.push(t.lo_is(&mut b, 0x6));
        let mut cnt = vec![F; 4];
        for &bit in &x {
            cnt = increment(&mut b, &cnt, bit);
        }
        let c = b.finish(&[outs, cnt].concat()).unwrap();
        for v in 0..=255u8 {
            let out = c.evaluate(&mpc::circuit::bytes_to_bits(&[v])).unwrap();
            for (k, &cv) in consts.iter().enumerate() {
                assert_eq!(out[k], v == cv);
            }
            assert_eq!(out[8], v >> 4 == 0xa);
            assert_eq!(out[9], v & 15 == 6);
            let ones = (0..4).fold(0u32, |acc, i| acc | (u32::from(out[10 + i]) << i));
            assert_eq!(ones, v.count_ones());
        }
    }
}
