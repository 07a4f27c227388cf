//! One description of a boolean computation, two ways to run it: [`Clear`] evaluates it on
//! plain bits (the client's planner and the tests' reference model), and
//! [`mpc::circuit::Builder`] records it as a circuit for the committee. Writing the disclosure's
//! logic once, generically over [`Logic`], is what makes the client's prediction of the
//! circuit's result exact: both run the same code.
//!
//! Conventions: a byte is `[Bit; 8]`, most significant bit first (as
//! [`mpc::circuit::bytes_to_bits`]); a number is a `Vec<Bit>`, least significant bit first.

use mpc::circuit::{Bit, Builder};

/// A boolean algebra to describe computations in: plain bits or circuit wires.
pub trait Logic {
    /// A bit: a `bool`, or a circuit wire or constant.
    type Bit: Copy + std::fmt::Debug;
    /// A public constant.
    fn lit(&self, v: bool) -> Self::Bit;
    /// `a ⊕ b` (free in a garbled circuit).
    fn xor(&mut self, a: Self::Bit, b: Self::Bit) -> Self::Bit;
    /// `a ∧ b` (the one gate that costs).
    fn and(&mut self, a: Self::Bit, b: Self::Bit) -> Self::Bit;
    /// `¬a` (free).
    fn not(&mut self, a: Self::Bit) -> Self::Bit;

    /// `a ∨ b` (one AND).
    fn or(&mut self, a: Self::Bit, b: Self::Bit) -> Self::Bit {
        let x = self.xor(a, b);
        let y = self.and(a, b);
        self.xor(x, y)
    }
    /// `if s { b } else { a }` (one AND).
    fn mux(&mut self, s: Self::Bit, a: Self::Bit, b: Self::Bit) -> Self::Bit {
        let d = self.xor(a, b);
        let t = self.and(s, d);
        self.xor(a, t)
    }
    /// `a ∧ ¬b`.
    fn and_not(&mut self, a: Self::Bit, b: Self::Bit) -> Self::Bit {
        let nb = self.not(b);
        self.and(a, nb)
    }
}

/// Plain bits: the reference evaluation of whatever is written over [`Logic`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Clear;

impl Logic for Clear {
    type Bit = bool;
    fn lit(&self, v: bool) -> bool {
        v
    }
    fn xor(&mut self, a: bool, b: bool) -> bool {
        a ^ b
    }
    fn and(&mut self, a: bool, b: bool) -> bool {
        a & b
    }
    fn not(&mut self, a: bool) -> bool {
        !a
    }
}

impl Logic for Builder {
    type Bit = Bit;
    fn lit(&self, v: bool) -> Bit {
        Bit::Const(v)
    }
    fn xor(&mut self, a: Bit, b: Bit) -> Bit {
        Builder::xor(self, a, b)
    }
    fn and(&mut self, a: Bit, b: Bit) -> Bit {
        Builder::and(self, a, b)
    }
    fn not(&mut self, a: Bit) -> Bit {
        Builder::not(self, a)
    }
}

/// A byte, most significant bit first.
pub type Byte<B> = [B; 8];

/// A public byte as constants.
pub fn const_byte<L: Logic>(l: &L, v: u8) -> Byte<L::Bit> {
    std::array::from_fn(|i| l.lit((v >> (7 - i)) & 1 == 1))
}

/// A plain byte as bits (for [`Clear`] and for tests).
pub fn byte_bits(v: u8) -> Byte<bool> {
    std::array::from_fn(|i| (v >> (7 - i)) & 1 == 1)
}

/// The XOR of all bits (free).
pub fn xor_all<L: Logic>(l: &mut L, xs: &[L::Bit]) -> L::Bit {
    let mut acc = l.lit(false);
    for &x in xs {
        acc = l.xor(acc, x);
    }
    acc
}

/// The OR of all bits, as a balanced tree (`n − 1` ANDs, depth ⌈log2 n⌉).
pub fn or_all<L: Logic>(l: &mut L, xs: &[L::Bit]) -> L::Bit {
    reduce(l, xs, false, |l, a, b| l.or(a, b))
}

/// The AND of all bits, as a balanced tree.
pub fn and_all<L: Logic>(l: &mut L, xs: &[L::Bit]) -> L::Bit {
    reduce(l, xs, true, |l, a, b| l.and(a, b))
}

fn reduce<L: Logic>(
    l: &mut L,
    xs: &[L::Bit],
    empty: bool,
    f: impl Fn(&mut L, L::Bit, L::Bit) -> L::Bit + Copy,
) -> L::Bit {
    match xs.len() {
        0 => l.lit(empty),
        1 => xs[0],
        n => {
            let (a, b) = xs.split_at(n / 2);
            let x = reduce(l, a, empty, f);
            let y = reduce(l, b, empty, f);
            f(l, x, y)
        }
    }
}

/// Whether `x` equals the public byte string `c` (`8·len − 1` ANDs).
pub fn eq_bytes_const<L: Logic>(l: &mut L, x: &[Byte<L::Bit>], c: &[u8]) -> L::Bit {
    let mut lits = Vec::with_capacity(8 * c.len());
    for (b, &v) in x.iter().zip(c) {
        for (i, &bit) in b.iter().enumerate() {
            let want = (v >> (7 - i)) & 1 == 1;
            lits.push(if want { bit } else { l.not(bit) });
        }
    }
    if x.len() != c.len() {
        return l.lit(false);
    }
    and_all(l, &lits)
}

/// Whether the number `x` (LSB first) equals the constant `c`; bits of `c` beyond `x`'s width
/// must be zero for equality.
pub fn eq_num_const<L: Logic>(l: &mut L, x: &[L::Bit], c: u64) -> L::Bit {
    if x.len() < 64 && c >> x.len() != 0 {
        return l.lit(false);
    }
    let lits: Vec<L::Bit> = x
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if i < 64 && (c >> i) & 1 == 1 {
                b
            } else {
                l.not(b)
            }
        })
        .collect();
    and_all(l, &lits)
}

/// `x + y` of equal widths (LSB first), the carry out of the top dropped; one AND per bit but
/// the last.
pub fn add<L: Logic>(l: &mut L, x: &[L::Bit], y: &[L::Bit]) -> Vec<L::Bit> {
    let mut out = Vec::with_capacity(x.len());
    let mut carry = l.lit(false);
    for (i, (&a, &b)) in x.iter().zip(y).enumerate() {
        let s = l.xor(a, b);
        out.push(l.xor(s, carry));
        if i + 1 < x.len() {
            // carry' = maj(a, b, carry) = carry ⊕ ((a ⊕ carry) ∧ (b ⊕ carry))
            let ac = l.xor(a, carry);
            let bc = l.xor(b, carry);
            let t = l.and(ac, bc);
            carry = l.xor(carry, t);
        }
    }
    out
}

/// `x + c` for a public constant (LSB first, wrapping at `x`'s width).
pub fn add_const<L: Logic>(l: &mut L, x: &[L::Bit], c: u64) -> Vec<L::Bit> {
    let y: Vec<L::Bit> = (0..x.len())
        .map(|i| l.lit(i < 64 && (c >> i) & 1 == 1))
        .collect();
    add(l, x, &y)
}

/// `x − y` (LSB first, wrapping) and whether it borrowed (`x < y`).
pub fn sub<L: Logic>(l: &mut L, x: &[L::Bit], y: &[L::Bit]) -> (Vec<L::Bit>, L::Bit) {
    // x − y = x + ¬y + 1; no borrow iff the carry out is set.
    let mut out = Vec::with_capacity(x.len());
    let mut carry = l.lit(true);
    for (&a, &b) in x.iter().zip(y) {
        let nb = l.not(b);
        let s = l.xor(a, nb);
        out.push(l.xor(s, carry));
        let ac = l.xor(a, carry);
        let bc = l.xor(nb, carry);
        let t = l.and(ac, bc);
        carry = l.xor(carry, t);
    }
    let borrow = l.not(carry);
    (out, borrow)
}

/// Every bit of `x` ANDed with `s`.
pub fn gate<L: Logic>(l: &mut L, s: L::Bit, x: &[L::Bit]) -> Vec<L::Bit> {
    x.iter().map(|&b| l.and(s, b)).collect()
}

/// `x` as a number in the clear (LSB first).
pub fn clear_num(x: &[bool]) -> u64 {
    x.iter()
        .take(64)
        .enumerate()
        .fold(0, |acc, (i, &b)| acc | (u64::from(b) << i))
}

/// A public number as `width` constant bits, LSB first.
pub fn const_num<L: Logic>(l: &L, v: u64, width: usize) -> Vec<L::Bit> {
    (0..width)
        .map(|i| l.lit(i < 64 && (v >> i) & 1 == 1))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn num(v: u64, w: usize) -> Vec<bool> {
        const_num(&Clear, v, w)
    }

    proptest! {
        #[test]
        fn arithmetic_matches_integers(x in 0u64..1 << 20, y in 0u64..1 << 20) {
            let mut l = Clear;
            let w = 21;
            prop_assert_eq!(clear_num(&add(&mut l, &num(x, w), &num(y, w))), x + y);
            prop_assert_eq!(clear_num(&add_const(&mut l, &num(x, w), y)), x + y);
            let (d, borrow) = sub(&mut l, &num(x, w), &num(y, w));
            prop_assert_eq!(borrow, x < y);
            prop_assert_eq!(clear_num(&d), x.wrapping_sub(y) & ((1 << w) - 1));
            prop_assert_eq!(eq_num_const(&mut l, &num(x, w), y), x == y);
        }
    }

    #[test]
    fn the_circuit_computes_what_clear_computes() {
        // The same generic function, built as a circuit and evaluated, equals Clear.
        fn f<L: Logic>(l: &mut L, x: &[L::Bit], y: &[L::Bit]) -> Vec<L::Bit> {
            let mut out = add(l, x, y);
            let (d, b) = sub(l, x, y);
            out.extend(d);
            out.push(b);
            let bx: Vec<Byte<L::Bit>> =
                x.chunks(8).map(|c| std::array::from_fn(|i| c[i])).collect();
            out.push(eq_bytes_const(l, &bx, b"ab"));
            out
        }
        let mut b = Builder::new();
        let x = b.inputs(16);
        let y = b.inputs(16);
        let outs = f(&mut b, &x, &y);
        let c = b.finish(&outs).unwrap();
        for (xv, yv) in [(0u64, 0u64), (0x6162, 5), (0xffff, 1), (1234, 4321)] {
            let (xb, yb) = (num(xv, 16), num(yv, 16));
            let mut input = xb.clone();
            input.extend(&yb);
            // The byte view reads x's bits MSB-first per byte; build the same in the clear.
            assert_eq!(c.evaluate(&input).unwrap(), f(&mut Clear, &xb, &yb));
        }
    }
}
