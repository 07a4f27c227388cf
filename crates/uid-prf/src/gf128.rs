//! GF(2^128) = GF(2)\[x\]/(x^128 + x^7 + x^2 + x + 1) in the *natural* bit order: bit `i` of
//! the `u128` is the coefficient of x^i, and the byte encoding is the big-endian `u128`. This is
//! the field of the UID key and its Shamir shares; it must never print or branch on a value
//! (Debug is redacted, equality and multiplication are constant-time).
//!
//! Note the order differs from GCM's (`mpc::field::Gf128`), which reflects the bits; the tests
//! cross-check the two through that reflection.

use std::fmt;
use std::ops::{Add, AddAssign, Mul, MulAssign, Sub, SubAssign};

use rand_core::{CryptoRng, RngCore};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroize;

/// The low part of the modulus: x^128 = x^7 + x^2 + x + 1.
const REDUCTION: u128 = 0x87;

/// An element of GF(2^128), natural bit order (see the module doc).
///
/// `Copy`, so it cannot zeroize itself on drop: containers of secret elements
/// ([`crate::shamir::Share`]) do that.
#[derive(Clone, Copy, Default)]
pub struct Gf128(u128);

impl Gf128 {
    /// The additive identity.
    pub const ZERO: Gf128 = Gf128(0);
    /// The multiplicative identity (the polynomial 1).
    pub const ONE: Gf128 = Gf128(1);

    /// The element whose bit `i` is the coefficient of x^i.
    pub const fn from_u128(v: u128) -> Gf128 {
        Gf128(v)
    }

    /// The integer whose bit `i` is the coefficient of x^i.
    pub const fn to_u128(self) -> u128 {
        self.0
    }

    /// A node id as a field element (the polynomial whose coefficients are the id's bits).
    /// Node ids are nonzero, so their elements are too.
    pub const fn from_u16(id: u16) -> Gf128 {
        Gf128(id as u128)
    }

    /// Big-endian encoding of the `u128`: byte 15 holds x^0..x^7.
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Inverse of [`Gf128::to_bytes`]; every 16-byte string encodes an element.
    pub fn from_bytes(b: &[u8; 16]) -> Gf128 {
        Gf128(u128::from_be_bytes(*b))
    }

    /// A uniformly random element.
    pub fn random<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Gf128 {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        let v = Gf128::from_bytes(&b);
        b.zeroize();
        v
    }

    /// Whether this is zero, in constant time.
    pub fn is_zero(&self) -> Choice {
        self.0.ct_eq(&0)
    }

    /// `self²` (GF(2)-linear, but computed as a product).
    pub fn square(self) -> Gf128 {
        self * self
    }

    /// The multiplicative inverse, `None` for zero. Computed as a^(2^128 − 2) with a fixed
    /// sequence of 127 squarings and 126 products (no branch on the value except the final
    /// zero test, which the `Option` reveals anyway).
    pub fn inv(&self) -> Option<Gf128> {
        // a^(2^k − 1) for k = 1..=127, then one more squaring: a^(2^128 − 2).
        let mut r = *self;
        for _ in 1..127 {
            r = r.square() * *self;
        }
        let r = r.square();
        if bool::from(self.is_zero()) {
            None
        } else {
            Some(r)
        }
    }
}

/// Constant-time product: 128 rounds of conditional add (masked) and multiply-by-x with
/// reduction (masked); the number and kind of operations never depend on the operands.
fn mul(a: u128, b: u128) -> u128 {
    let mut acc = 0u128;
    let mut a = a;
    for i in 0..128 {
        let bit = (b >> i) & 1;
        acc ^= a & 0u128.wrapping_sub(bit);
        let top = a >> 127;
        a = (a << 1) ^ (REDUCTION & 0u128.wrapping_sub(top));
    }
    acc
}

impl fmt::Debug for Gf128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gf128(..)")
    }
}

impl ConstantTimeEq for Gf128 {
    fn ct_eq(&self, other: &Gf128) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Gf128 {
    fn eq(&self, other: &Gf128) -> bool {
        bool::from(self.ct_eq(other))
    }
}

impl Eq for Gf128 {}

impl Zeroize for Gf128 {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

// Addition in characteristic 2 is XOR; clippy's heuristic flags `^` in an `Add` impl.
#[allow(clippy::suspicious_arithmetic_impl)]
impl Add for Gf128 {
    type Output = Gf128;
    fn add(self, o: Gf128) -> Gf128 {
        Gf128(self.0 ^ o.0)
    }
}

/// Subtraction equals addition in characteristic 2.
#[allow(clippy::suspicious_arithmetic_impl)]
impl Sub for Gf128 {
    type Output = Gf128;
    fn sub(self, o: Gf128) -> Gf128 {
        Gf128(self.0 ^ o.0)
    }
}

impl Mul for Gf128 {
    type Output = Gf128;
    fn mul(self, o: Gf128) -> Gf128 {
        Gf128(mul(self.0, o.0))
    }
}

impl AddAssign for Gf128 {
    fn add_assign(&mut self, o: Gf128) {
        *self = *self + o;
    }
}

impl SubAssign for Gf128 {
    fn sub_assign(&mut self, o: Gf128) {
        *self = *self - o;
    }
}

impl MulAssign for Gf128 {
    fn mul_assign(&mut self, o: Gf128) {
        *self = *self * o;
    }
}

impl std::iter::Sum for Gf128 {
    fn sum<I: Iterator<Item = Gf128>>(iter: I) -> Gf128 {
        iter.fold(Gf128::ZERO, |a, b| a + b)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Independent reference: schoolbook product of bit arrays, then long division by the
    /// modulus from the top coefficient down.
    fn mul_bitwise(a: u128, b: u128) -> u128 {
        let mut p = [false; 255];
        for i in 0..128 {
            for j in 0..128 {
                if (a >> i) & 1 == 1 && (b >> j) & 1 == 1 {
                    p[i + j] ^= true;
                }
            }
        }
        for d in (128..255).rev() {
            if p[d] {
                // x^d = x^(d−128) · (x^7 + x^2 + x + 1)
                p[d] = false;
                for e in [7, 2, 1, 0] {
                    p[d - 128 + e] ^= true;
                }
            }
        }
        (0..128).fold(0u128, |acc, i| acc | (u128::from(p[i]) << i))
    }

    fn rand_el(rng: &mut StdRng) -> Gf128 {
        Gf128::random(rng)
    }

    #[test]
    fn known_products() {
        let x = Gf128::from_u128(2);
        let x127 = Gf128::from_u128(1 << 127);
        // x^128 reduces to x^7 + x^2 + x + 1.
        assert_eq!((x127 * x).to_u128(), 0x87);
        assert_eq!((Gf128::from_u16(3) * Gf128::from_u16(3)).to_u128(), 5);
        assert_eq!(Gf128::ONE * x127, x127);
        assert_eq!((Gf128::ZERO * x127).to_u128(), 0);
    }

    #[test]
    fn matches_bitwise_reference() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut cases = vec![(0u128, 0u128), (u128::MAX, u128::MAX), (1 << 127, 1 << 127)];
        for _ in 0..300 {
            cases.push((rng.gen(), rng.gen()));
        }
        for (a, b) in cases {
            let got = (Gf128::from_u128(a) * Gf128::from_u128(b)).to_u128();
            assert_eq!(got, mul_bitwise(a, b), "{a:#x} * {b:#x}");
        }
    }

    #[test]
    fn matches_gcm_field_through_reflection() {
        // mpc's GF(2^128) is the same field with the bits of the u128 reversed.
        use mpc::field::Gf128 as Gcm;
        let to_gcm = |v: Gf128| Gcm::from_block(v.to_u128().reverse_bits().to_be_bytes());
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..500 {
            let (a, b) = (rand_el(&mut rng), rand_el(&mut rng));
            assert_eq!(to_gcm(a * b), to_gcm(a) * to_gcm(b));
        }
    }

    #[test]
    fn field_axioms() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..300 {
            let (a, b, c) = (rand_el(&mut rng), rand_el(&mut rng), rand_el(&mut rng));
            assert_eq!(a + b, b + a);
            assert_eq!(a * b, b * a);
            assert_eq!((a + b) + c, a + (b + c));
            assert_eq!((a * b) * c, a * (b * c));
            assert_eq!(a * (b + c), a * b + a * c);
            assert_eq!(a + Gf128::ZERO, a);
            assert_eq!(a * Gf128::ONE, a);
            assert_eq!(a + a, Gf128::ZERO);
            assert_eq!(a - b, a + b);
            let mut d = a;
            d += b;
            d *= c;
            d -= a;
            assert_eq!(d, (a + b) * c + a);
        }
    }

    #[test]
    fn inverses() {
        let mut rng = StdRng::seed_from_u64(4);
        assert!(Gf128::ZERO.inv().is_none());
        assert_eq!(Gf128::ONE.inv(), Some(Gf128::ONE));
        for id in 1..=20u16 {
            let x = Gf128::from_u16(id);
            assert_eq!(x * x.inv().unwrap(), Gf128::ONE);
        }
        for _ in 0..100 {
            let a = rand_el(&mut rng);
            let i = a.inv().unwrap();
            assert_eq!(a * i, Gf128::ONE);
            assert_eq!(i.inv().unwrap(), a);
        }
    }

    #[test]
    fn bytes_roundtrip_and_redaction() {
        let v = Gf128::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let b = v.to_bytes();
        assert_eq!(b[0], 1);
        assert_eq!(b[15], 0x10);
        assert_eq!(Gf128::from_bytes(&b), v);
        assert_eq!(format!("{v:?}"), "Gf128(..)");
        assert_eq!(Gf128::from_u16(0x0102).to_bytes()[14..], [1, 2]);
        let mut z = v;
        z.zeroize();
        assert_eq!(z, Gf128::ZERO);
    }
}
