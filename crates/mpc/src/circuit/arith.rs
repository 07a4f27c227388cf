//! Arithmetic and comparison gadgets on MSB-first bit vectors: wrapping n-bit addition,
//! addition modulo the P-256 field prime, equality and unsigned less-than, plus the
//! fixed-shape circuits built from them.

use super::{const_bits, Bit, Builder, Circuit, CircuitError};

/// The P-256 field prime p = 2^256 − 2^224 + 2^192 + 2^96 − 1, big-endian.
pub const P256_P: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

/// AND gates of [`add_mod_p256`]: 256 for the 257-bit sum (255 internal carries plus the
/// carry out), 256 for the borrow chain of subtracting the constant p (the lowest borrow
/// folds away because p is odd), and 256 for the final selection.
pub const ADD_MOD_P256_AND_COUNT: usize = 768;

/// Turns the result of building a fixed-shape circuit into the circuit.
///
/// Fixed-shape circuits have matching operand widths by construction and stay far below the
/// 2^32 wire limit, so building them cannot fail; an error here is a bug in a gadget.
///
/// # Panics
/// If `r` is an error, which for the fixed shapes in this module tree cannot happen.
#[allow(clippy::expect_used)]
pub(crate) fn fixed_shape(r: Result<Circuit, CircuitError>) -> Circuit {
    r.expect("fixed-shape circuit builds without error")
}

fn check_widths(x: &[Bit], y: &[Bit]) -> Result<(), CircuitError> {
    if x.len() != y.len() {
        return Err(CircuitError::WidthMismatch(x.len(), y.len()));
    }
    Ok(())
}

/// Ripple-carry addition of equal-width MSB-first vectors. Returns the n-bit sum and, if
/// `carry_out` is set, the carry out of the top bit (otherwise `Bit::Const(false)`).
///
/// Carry rule: `c' = c ⊕ ((x ⊕ c) ∧ (y ⊕ c))`, one AND per carry that is computed.
fn ripple_add(b: &mut Builder, x: &[Bit], y: &[Bit], carry_out: bool) -> (Vec<Bit>, Bit) {
    let n = x.len();
    let mut sum = vec![Bit::Const(false); n];
    let mut c = Bit::Const(false);
    for i in (0..n).rev() {
        let xc = b.xor(x[i], c);
        let yc = b.xor(y[i], c);
        sum[i] = b.xor(xc, y[i]);
        if i > 0 || carry_out {
            let t = b.and(xc, yc);
            c = b.xor(c, t);
        }
    }
    let top = if carry_out { c } else { Bit::Const(false) };
    (sum, top)
}

/// Ripple-borrow subtraction `x − y` of equal-width MSB-first vectors. Returns the n-bit
/// difference (mod 2^n) and the borrow out of the top bit, which is `x < y`.
///
/// Borrow rule: the borrow out of a bit is the majority of `¬x`, `y` and the borrow in `w`,
/// i.e. `w' = w ⊕ ((¬x ⊕ w) ∧ (y ⊕ w))`, one AND per bit.
fn ripple_sub(b: &mut Builder, x: &[Bit], y: &[Bit]) -> (Vec<Bit>, Bit) {
    let n = x.len();
    let mut diff = vec![Bit::Const(false); n];
    let mut w = Bit::Const(false);
    for i in (0..n).rev() {
        let xw = b.xor(x[i], w);
        let yw = b.xor(y[i], w);
        diff[i] = b.xor(xw, y[i]);
        let nxw = b.not(xw);
        let t = b.and(nxw, yw);
        w = b.xor(w, t);
    }
    (diff, w)
}

/// `(x + y) mod 2^n` for two n-bit MSB-first vectors: n − 1 AND gates (fewer when operand
/// bits are constants, e.g. for a constant addend with trailing zero bits).
///
/// # Errors
/// [`CircuitError::WidthMismatch`] if `x` and `y` differ in width.
pub fn add_mod_2n(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    check_widths(x, y)?;
    Ok(ripple_add(b, x, y, false).0)
}

/// `(x + y) mod p` for the P-256 field prime [`P256_P`]. `x` and `y` are 256-bit big-endian
/// (MSB-first) values that must already be reduced (`< p`); the result is then `< p`.
///
/// Computes the full 257-bit sum `s`, subtracts the constant `p` from it, and keeps `s − p`
/// unless that subtraction borrowed. Costs exactly [`ADD_MOD_P256_AND_COUNT`] (768) ANDs.
///
/// # Errors
/// [`CircuitError::WidthMismatch`] if `x` or `y` is not 256 bits.
pub fn add_mod_p256(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    check_widths(x, y)?;
    if x.len() != 256 {
        return Err(CircuitError::WidthMismatch(x.len(), 256));
    }
    let (sum, carry) = ripple_add(b, x, y, true);
    let mut s = Vec::with_capacity(257);
    s.push(carry);
    s.extend_from_slice(&sum);
    let mut p = vec![Bit::Const(false)];
    p.extend(const_bits(&P256_P));
    let (d, borrow) = ripple_sub(b, &s, &p);
    // borrow = (s < p): keep s, else take s − p. Bit 0 (the 2^256 place) is dropped: the
    // result is < p < 2^256 either way.
    Ok((1..257).map(|i| b.mux(borrow, d[i], s[i])).collect())
}

/// Circuit for [`add_mod_p256`]: inputs `x` (256 bits) then `y` (256 bits), both big-endian
/// and `< p`; output `(x + y) mod p` (256 bits). 768 AND gates.
pub fn add_mod_p256_circuit() -> Circuit {
    let mut b = Builder::new();
    let x = b.inputs(256);
    let y = b.inputs(256);
    let r = add_mod_p256(&mut b, &x, &y).and_then(|out| b.finish(&out));
    fixed_shape(r)
}

/// Equality of two equal-length bit strings (any length, not only whole bytes): an AND tree
/// over the bitwise XNORs, n − 1 AND gates and depth ⌈log2 n⌉. Empty strings are equal.
///
/// # Errors
/// [`CircuitError::WidthMismatch`] if `x` and `y` differ in length.
pub fn eq_bytes(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Bit, CircuitError> {
    check_widths(x, y)?;
    let mut level: Vec<Bit> = x
        .iter()
        .zip(y)
        .map(|(&u, &v)| {
            let d = b.xor(u, v);
            b.not(d)
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match *pair {
                [u, v] => b.and(u, v),
                [u] => u,
                _ => Bit::Const(true),
            })
            .collect();
    }
    Ok(level.first().copied().unwrap_or(Bit::Const(true)))
}

/// Circuit comparing two `n_bytes`-byte strings: inputs `x` then `y` (8·`n_bytes` bits each),
/// one output bit, true iff `x == y`. 8·`n_bytes` − 1 AND gates (0 for `n_bytes == 0`).
///
/// # Panics
/// If the circuit would not fit in 2^32 wires.
pub fn eq_circuit(n_bytes: usize) -> Circuit {
    let mut b = Builder::new();
    let x = b.inputs(8 * n_bytes);
    let y = b.inputs(8 * n_bytes);
    let r = eq_bytes(&mut b, &x, &y).and_then(|e| b.finish(&[e]));
    fixed_shape(r)
}

/// `x < y` for two equal-width unsigned MSB-first values: the borrow out of `x − y`, n AND
/// gates. For width 0 the result is false.
///
/// # Errors
/// [`CircuitError::WidthMismatch`] if `x` and `y` differ in width.
pub fn lt_unsigned(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Bit, CircuitError> {
    check_widths(x, y)?;
    let mut w = Bit::Const(false);
    for i in (0..x.len()).rev() {
        let xw = b.xor(x[i], w);
        let nxw = b.not(xw);
        let yw = b.xor(y[i], w);
        let t = b.and(nxw, yw);
        w = b.xor(w, t);
    }
    Ok(w)
}

/// Circuit for unsigned `x < y`: inputs `x` then `y` (`n_bits` bits each, MSB first), one
/// output bit. `n_bits` AND gates.
///
/// # Panics
/// If the circuit would not fit in 2^32 wires.
pub fn lt_circuit(n_bits: usize) -> Circuit {
    let mut b = Builder::new();
    let x = b.inputs(n_bits);
    let y = b.inputs(n_bits);
    let r = lt_unsigned(&mut b, &x, &y).and_then(|o| b.finish(&[o]));
    fixed_shape(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::bytes_to_bits;
    use super::*;
    use rand::Rng;

    fn u128_bits(v: u128, n: usize) -> Vec<bool> {
        (0..n).map(|i| (v >> (n - 1 - i)) & 1 == 1).collect()
    }

    fn bits_u128(bits: &[bool]) -> u128 {
        bits.iter()
            .fold(0u128, |acc, &b| (acc << 1) | u128::from(b))
    }

    fn mask(n: usize) -> u128 {
        if n == 128 {
            u128::MAX
        } else {
            (1u128 << n) - 1
        }
    }

    #[test]
    fn add_mod_2n_matches_wrapping_add() {
        let mut rng = rand::thread_rng();
        for n in [1usize, 2, 8, 31, 32, 64, 100, 128] {
            let mut b = Builder::new();
            let x = b.inputs(n);
            let y = b.inputs(n);
            let s = add_mod_2n(&mut b, &x, &y).unwrap();
            let c = b.finish(&s).unwrap();
            assert_eq!(c.and_count(), n - 1);
            assert_eq!(c.num_outputs(), n);
            let m = mask(n);
            let mut cases: Vec<(u128, u128)> = vec![(0, 0), (m, m), (m, 1), (1, m), (m, 0)];
            for _ in 0..1000 {
                cases.push((rng.gen::<u128>() & m, rng.gen::<u128>() & m));
            }
            for (u, v) in cases {
                let mut inp = u128_bits(u, n);
                inp.extend(u128_bits(v, n));
                let out = bits_u128(&c.evaluate(&inp).unwrap());
                assert_eq!(out, u.wrapping_add(v) & m, "n={n} {u:#x}+{v:#x}");
            }
        }
    }

    #[test]
    fn add_mod_2n_width_mismatch() {
        let mut b = Builder::new();
        let x = b.inputs(3);
        let y = b.inputs(4);
        assert_eq!(
            add_mod_2n(&mut b, &x, &y),
            Err(CircuitError::WidthMismatch(3, 4))
        );
    }

    #[test]
    fn add_mod_2n_constant_addend_folds() {
        // Adding the constant 0b1000 to a 32-bit value: carries below bit 3 fold away, the
        // carry out of bit 3 is free, leaving 30 − 3 ANDs.
        let mut b = Builder::new();
        let x = b.inputs(32);
        let k: Vec<Bit> = u128_bits(8, 32).into_iter().map(Bit::Const).collect();
        let s = add_mod_2n(&mut b, &x, &k).unwrap();
        let c = b.finish(&s).unwrap();
        assert_eq!(c.and_count(), 27);
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let v: u32 = rng.gen();
            let out = bits_u128(&c.evaluate(&u128_bits(u128::from(v), 32)).unwrap());
            assert_eq!(out, u128::from(v.wrapping_add(8)));
        }
    }

    // ---- a small 256-bit helper: little-endian u64 limbs ----

    type U256 = [u64; 4];

    fn from_be(bytes: &[u8]) -> U256 {
        let mut l = [0u64; 4];
        for (i, limb) in l.iter_mut().enumerate() {
            let off = 32 - 8 * (i + 1);
            *limb = u64::from_be_bytes(bytes[off..off + 8].try_into().unwrap());
        }
        l
    }

    fn to_be(l: &U256) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, limb) in l.iter().enumerate() {
            let off = 32 - 8 * (i + 1);
            out[off..off + 8].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    fn add256(a: &U256, b: &U256) -> (U256, bool) {
        let mut out = [0u64; 4];
        let mut carry = false;
        for i in 0..4 {
            let (s1, c1) = a[i].overflowing_add(b[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            out[i] = s2;
            carry = c1 || c2;
        }
        (out, carry)
    }

    fn sub256(a: &U256, b: &U256) -> (U256, bool) {
        let mut out = [0u64; 4];
        let mut borrow = false;
        for i in 0..4 {
            let (d1, b1) = a[i].overflowing_sub(b[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            out[i] = d2;
            borrow = b1 || b2;
        }
        (out, borrow)
    }

    fn ge256(a: &U256, b: &U256) -> bool {
        !sub256(a, b).1
    }

    /// Reference (x + y) mod p for x, y < p.
    fn add_mod_p_ref(x: &[u8; 32], y: &[u8; 32]) -> [u8; 32] {
        let p = from_be(&P256_P);
        let (s, carry) = add256(&from_be(x), &from_be(y));
        if carry || ge256(&s, &p) {
            // Wrapping subtraction is correct even with the carry set: the true value is
            // s + 2^256 and s + 2^256 − p < 2^256.
            to_be(&sub256(&s, &p).0)
        } else {
            to_be(&s)
        }
    }

    fn random_below_p(rng: &mut impl Rng) -> [u8; 32] {
        let p = from_be(&P256_P);
        loop {
            let v: [u8; 32] = rng.gen();
            if !ge256(&from_be(&v), &p) {
                return v;
            }
        }
    }

    fn p_minus(k: u64) -> [u8; 32] {
        to_be(&sub256(&from_be(&P256_P), &[k, 0, 0, 0]).0)
    }

    #[test]
    fn reference_helper_sanity() {
        let pm1 = p_minus(1);
        let one = to_be(&[1, 0, 0, 0]);
        assert_eq!(add_mod_p_ref(&pm1, &one), [0u8; 32]);
        let two = to_be(&[2, 0, 0, 0]);
        assert_eq!(add_mod_p_ref(&pm1, &two), one);
        assert_eq!(add_mod_p_ref(&pm1, &pm1), p_minus(2));
    }

    #[test]
    fn add_mod_p256_matches_reference() {
        let c = add_mod_p256_circuit();
        assert_eq!(c.num_inputs(), 512);
        assert_eq!(c.num_outputs(), 256);
        assert_eq!(c.and_count(), ADD_MOD_P256_AND_COUNT);
        assert_eq!(c.and_count(), 768);

        let mut rng = rand::thread_rng();
        let zero = [0u8; 32];
        let one = to_be(&[1, 0, 0, 0]);
        let pm1 = p_minus(1);
        // (p − 1) / 2 and (p + 1) / 2: they sum to p exactly.
        let pl = from_be(&P256_P);
        let half_lo = [
            (pl[0] >> 1) | (pl[1] << 63),
            (pl[1] >> 1) | (pl[2] << 63),
            (pl[2] >> 1) | (pl[3] << 63),
            pl[3] >> 1,
        ];
        let half_hi = add256(&half_lo, &[1, 0, 0, 0]).0;
        let (half_lo, half_hi) = (to_be(&half_lo), to_be(&half_hi));
        assert_eq!(add_mod_p_ref(&half_lo, &half_hi), zero);
        let mut cases: Vec<([u8; 32], [u8; 32])> = vec![
            (pm1, pm1),
            (zero, zero),
            (pm1, one),
            (one, pm1),
            (p_minus(5), to_be(&[5, 0, 0, 0])),
            (zero, pm1),
            (pm1, zero),
            (half_lo, half_lo),
            (half_lo, half_hi),
            (half_hi, half_hi),
            (p_minus(1 << 40), to_be(&[(1 << 40) + 1, 0, 0, 0])),
        ];
        for _ in 0..1000 {
            cases.push((random_below_p(&mut rng), random_below_p(&mut rng)));
        }
        // Pairs whose sum is exactly p: result must be 0.
        for _ in 0..50 {
            let x = random_below_p(&mut rng);
            if x == zero {
                continue;
            }
            let y = to_be(&sub256(&from_be(&P256_P), &from_be(&x)).0);
            cases.push((x, y));
            assert_eq!(add_mod_p_ref(&x, &y), zero);
        }
        for (x, y) in cases {
            let out = c.evaluate_bytes(&[x, y].concat()).unwrap();
            assert_eq!(out, add_mod_p_ref(&x, &y).to_vec(), "{x:02x?} + {y:02x?}");
        }
    }

    #[test]
    fn add_mod_p256_rejects_wrong_widths() {
        let mut b = Builder::new();
        let x = b.inputs(255);
        let y = b.inputs(255);
        assert!(matches!(
            add_mod_p256(&mut b, &x, &y),
            Err(CircuitError::WidthMismatch(255, 256))
        ));
        let z = b.inputs(0);
        assert!(add_mod_p256(&mut b, &x, &z).is_err());
    }

    fn eq_bits_circuit(n: usize) -> Circuit {
        let mut b = Builder::new();
        let x = b.inputs(n);
        let y = b.inputs(n);
        let e = eq_bytes(&mut b, &x, &y).unwrap();
        b.finish(&[e]).unwrap()
    }

    #[test]
    fn eq_matches_reference() {
        let mut rng = rand::thread_rng();
        for n in [0usize, 1, 2, 3, 8, 32, 100, 256] {
            let c = eq_bits_circuit(n);
            assert_eq!(c.and_count(), n.saturating_sub(1), "n={n}");
            let mut cases: Vec<(Vec<bool>, Vec<bool>)> = vec![
                (vec![true; n], vec![true; n]),
                (vec![false; n], vec![false; n]),
            ];
            if n > 0 {
                let mut almost = vec![true; n];
                almost[n - 1] = false;
                cases.push((vec![true; n], almost.clone()));
                cases.push((almost, vec![true; n]));
                cases.push((vec![false; n], vec![true; n]));
            }
            for _ in 0..1000 {
                let x: Vec<bool> = (0..n).map(|_| rng.gen()).collect();
                let y = match rng.gen_range(0..3) {
                    // equal
                    0 => x.clone(),
                    // one bit flipped
                    1 if n > 0 => {
                        let mut y = x.clone();
                        let i = rng.gen_range(0..n);
                        y[i] = !y[i];
                        y
                    }
                    _ => (0..n).map(|_| rng.gen()).collect(),
                };
                cases.push((x, y));
            }
            for (x, y) in cases {
                let mut inp = x.clone();
                inp.extend(&y);
                assert_eq!(c.evaluate(&inp).unwrap(), vec![x == y], "n={n}");
            }
        }
    }

    #[test]
    fn eq_circuit_bytes() {
        let mut rng = rand::thread_rng();
        let c0 = eq_circuit(0);
        assert_eq!(c0.num_inputs(), 0);
        assert_eq!(c0.evaluate(&[]).unwrap(), vec![true]);
        for n in [1usize, 4, 32] {
            let c = eq_circuit(n);
            assert_eq!(c.num_inputs(), 16 * n);
            assert_eq!(c.and_count(), 8 * n - 1);
            for _ in 0..1000 {
                let x: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                let y: Vec<u8> = if rng.gen() {
                    x.clone()
                } else {
                    (0..n).map(|_| rng.gen()).collect()
                };
                let out = c.evaluate(&bytes_to_bits(&[x.clone(), y.clone()].concat()));
                assert_eq!(out.unwrap(), vec![x == y]);
            }
        }
        let mut b = Builder::new();
        let x = b.inputs(2);
        let y = b.inputs(3);
        assert_eq!(
            eq_bytes(&mut b, &x, &y),
            Err(CircuitError::WidthMismatch(2, 3))
        );
    }

    fn bools_lt(x: &[bool], y: &[bool]) -> bool {
        // Lexicographic on MSB-first bits is unsigned order for equal widths.
        x < y
    }

    #[test]
    fn lt_matches_reference() {
        let mut rng = rand::thread_rng();
        for n in [0usize, 1, 2, 8, 32, 64, 128] {
            let c = lt_circuit(n);
            assert_eq!(c.and_count(), n, "n={n}");
            let m = if n == 0 { 0 } else { mask(n) };
            let mut cases: Vec<(u128, u128)> = vec![(0, 0), (m, m), (0, m), (m, 0)];
            if n > 0 {
                cases.extend([(m - 1, m), (m, m - 1), (1, 0), (0, 1)].map(|(a, b)| (a & m, b & m)));
            }
            for _ in 0..1000 {
                let x = rng.gen::<u128>() & m;
                let y = match rng.gen_range(0..3) {
                    0 => x,
                    1 => x ^ ((1u128 << rng.gen_range(0..n.max(1))) & m),
                    _ => rng.gen::<u128>() & m,
                };
                cases.push((x, y));
            }
            for (x, y) in cases {
                let mut inp = u128_bits(x, n);
                inp.extend(u128_bits(y, n));
                assert_eq!(
                    c.evaluate(&inp).unwrap(),
                    vec![x < y],
                    "n={n} {x:#x}<{y:#x}"
                );
            }
        }
    }

    #[test]
    fn lt_256_bits() {
        let mut rng = rand::thread_rng();
        let c = lt_circuit(256);
        assert_eq!(c.and_count(), 256);
        let ones = [0xffu8; 32];
        let zero = [0u8; 32];
        let mut ones_minus = ones;
        ones_minus[31] = 0xfe;
        let mut cases = vec![
            (ones, ones),
            (zero, zero),
            (zero, ones),
            (ones, zero),
            (ones_minus, ones),
            (ones, ones_minus),
            (P256_P, p_minus(1)),
        ];
        for _ in 0..1000 {
            let x: [u8; 32] = rng.gen();
            let mut y: [u8; 32] = rng.gen();
            if rng.gen_range(0..4) == 0 {
                // share a long prefix
                let k = rng.gen_range(0..32);
                y[..k].copy_from_slice(&x[..k]);
            }
            cases.push((x, y));
        }
        for (x, y) in cases {
            let inp = bytes_to_bits(&[x, y].concat());
            let out = c.evaluate(&inp).unwrap();
            assert_eq!(out, vec![bools_lt(&inp[..256], &inp[256..])]);
            assert_eq!(out, vec![x < y]);
        }
    }
}
