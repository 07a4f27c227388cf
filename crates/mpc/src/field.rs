//! The two finite fields of the arithmetic side: the P-256 base field ([`Fp`], for the ECDH
//! x-coordinate) and GF(2^128) in GCM's bit order ([`Gf128`], for GHASH). Values here are often
//! secret shares, so `Debug` never prints them and equality is constant-time.

use std::fmt;
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use p256::elliptic_curve::ff::Field as _;
use rand_core::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// What the replicated-sharing engine needs from a field.
pub trait Field:
    Copy
    + Eq
    + fmt::Debug
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Zeroize
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Length of the canonical encoding.
    const BYTES: usize;
    /// Short name for messages and benchmarks.
    const NAME: &'static str;

    /// A uniformly random element.
    fn random<R: RngCore + ?Sized>(rng: &mut R) -> Self;
    /// The multiplicative inverse, `None` for zero.
    fn invert(&self) -> Option<Self>;
    /// Whether this is zero (constant-time).
    fn is_zero(&self) -> bool;
    /// Appends the canonical encoding (`BYTES` bytes).
    fn write_to(&self, out: &mut Vec<u8>);
    /// Decodes exactly `BYTES` bytes; `None` if the length is wrong or the encoding is not
    /// canonical.
    fn read_from(bytes: &[u8]) -> Option<Self>;
    /// A small integer (used for public constants such as 2 and 3).
    fn from_u64(v: u64) -> Self;
}

// ---------------------------------------------------------------------------------------------
// P-256 base field

/// An element of the P-256 base field, p = 2^256 − 2^224 + 2^192 + 2^96 − 1 (backed by the
/// formally verified arithmetic of the `p256` crate). Encoded as 32 big-endian bytes.
#[derive(Clone, Copy)]
pub struct Fp(p256::FieldElement);

impl Fp {
    /// Decodes 32 big-endian bytes; `None` unless the value is below p.
    pub fn from_be_bytes(b: &[u8; 32]) -> Option<Fp> {
        Option::from(p256::FieldElement::from_bytes(&(*b).into())).map(Fp)
    }

    /// The 32 big-endian bytes.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }
}

impl fmt::Debug for Fp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fp(..)")
    }
}

impl PartialEq for Fp {
    fn eq(&self, other: &Fp) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}
impl Eq for Fp {}

impl Zeroize for Fp {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

macro_rules! ops {
    ($t:ident, $add:expr, $sub:expr, $mul:expr, $neg:expr) => {
        impl Add for $t {
            type Output = $t;
            #[inline]
            fn add(self, o: $t) -> $t {
                $add(self, o)
            }
        }
        impl Sub for $t {
            type Output = $t;
            #[inline]
            fn sub(self, o: $t) -> $t {
                $sub(self, o)
            }
        }
        impl Mul for $t {
            type Output = $t;
            #[inline]
            fn mul(self, o: $t) -> $t {
                $mul(self, o)
            }
        }
        impl Neg for $t {
            type Output = $t;
            #[inline]
            fn neg(self) -> $t {
                $neg(self)
            }
        }
        impl AddAssign for $t {
            #[inline]
            fn add_assign(&mut self, o: $t) {
                *self = *self + o;
            }
        }
        impl SubAssign for $t {
            #[inline]
            fn sub_assign(&mut self, o: $t) {
                *self = *self - o;
            }
        }
        impl MulAssign for $t {
            #[inline]
            fn mul_assign(&mut self, o: $t) {
                *self = *self * o;
            }
        }
    };
}

ops!(
    Fp,
    |a: Fp, b: Fp| Fp(a.0 + b.0),
    |a: Fp, b: Fp| Fp(a.0 - b.0),
    |a: Fp, b: Fp| Fp(a.0 * b.0),
    |a: Fp| Fp(-a.0)
);

impl Field for Fp {
    const ZERO: Fp = Fp(p256::FieldElement::ZERO);
    const ONE: Fp = Fp(p256::FieldElement::ONE);
    const BYTES: usize = 32;
    const NAME: &'static str = "p256-base";

    fn random<R: RngCore + ?Sized>(rng: &mut R) -> Fp {
        // Rejection sampling of 256-bit strings below p (p256's own `Field::random`).
        struct Adapter<'a, R: ?Sized>(&'a mut R);
        impl<R: RngCore + ?Sized> RngCore for Adapter<'_, R> {
            fn next_u32(&mut self) -> u32 {
                self.0.next_u32()
            }
            fn next_u64(&mut self) -> u64 {
                self.0.next_u64()
            }
            fn fill_bytes(&mut self, d: &mut [u8]) {
                self.0.fill_bytes(d)
            }
            fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
                self.0.try_fill_bytes(d)
            }
        }
        Fp(p256::FieldElement::random(Adapter(rng)))
    }

    fn invert(&self) -> Option<Fp> {
        Option::from(self.0.invert()).map(Fp)
    }

    fn is_zero(&self) -> bool {
        bool::from(self.0.is_zero())
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_be_bytes());
    }

    fn read_from(bytes: &[u8]) -> Option<Fp> {
        let b: &[u8; 32] = bytes.try_into().ok()?;
        Fp::from_be_bytes(b)
    }

    fn from_u64(v: u64) -> Fp {
        Fp(p256::FieldElement::from_u64(v))
    }
}

/// Whether `PrimeField` is the field we think it is (checked in tests).
#[cfg(test)]
fn p256_modulus_hex() -> &'static str {
    <p256::FieldElement as p256::elliptic_curve::ff::PrimeField>::MODULUS
}

// ---------------------------------------------------------------------------------------------
// GF(2^128), GCM bit order

/// An element of GF(2^128) = GF(2)\[x\]/(x^128 + x^7 + x^2 + x + 1) in the bit order of GCM
/// (NIST SP 800-38D): a 16-byte block read as a big-endian integer holds the coefficient of
/// x^0 in its most significant bit. Addition is XOR, so XOR shares are additive shares.
/// Multiplication is constant-time (carry-less products from masked integer multiplies).
#[derive(Clone, Copy, Default)]
pub struct Gf128(u128);

impl Gf128 {
    /// The element a GCM block encodes.
    pub fn from_block(b: [u8; 16]) -> Gf128 {
        Gf128(u128::from_be_bytes(b))
    }

    /// The GCM block encoding.
    pub fn to_block(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Squaring, which is GF(2)-linear: shares of x square into shares of x².
    pub fn square(self) -> Gf128 {
        self * self
    }
}

impl fmt::Debug for Gf128 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gf128(..)")
    }
}

impl PartialEq for Gf128 {
    fn eq(&self, other: &Gf128) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}
impl Eq for Gf128 {}

impl Zeroize for Gf128 {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// Low 64 bits of the carry-less product of two 64-bit words, with integer multiplies on
/// bit-sliced operands (4-bit holes absorb the carries that matter; BearSSL's technique).
#[inline]
fn bmul64_lo(x: u64, y: u64) -> u64 {
    const M0: u64 = 0x1111_1111_1111_1111;
    const M1: u64 = 0x2222_2222_2222_2222;
    const M2: u64 = 0x4444_4444_4444_4444;
    const M3: u64 = 0x8888_8888_8888_8888;
    let (x0, x1, x2, x3) = (x & M0, x & M1, x & M2, x & M3);
    let (y0, y1, y2, y3) = (y & M0, y & M1, y & M2, y & M3);
    let m = |a: u64, b: u64| a.wrapping_mul(b);
    let z0 = m(x0, y0) ^ m(x1, y3) ^ m(x2, y2) ^ m(x3, y1);
    let z1 = m(x0, y1) ^ m(x1, y0) ^ m(x2, y3) ^ m(x3, y2);
    let z2 = m(x0, y2) ^ m(x1, y1) ^ m(x2, y0) ^ m(x3, y3);
    let z3 = m(x0, y3) ^ m(x1, y2) ^ m(x2, y1) ^ m(x3, y0);
    (z0 & M0) | (z1 & M1) | (z2 & M2) | (z3 & M3)
}

/// Full 127-bit carry-less product of two 64-bit words.
#[inline]
fn clmul64(x: u64, y: u64) -> u128 {
    let lo = bmul64_lo(x, y);
    // Reversing both operands reverses the 127-bit product: its low half, reversed back,
    // holds bits 63..126 of the product.
    let hi = bmul64_lo(x.reverse_bits(), y.reverse_bits()).reverse_bits() >> 1;
    (u128::from(hi) << 64) | u128::from(lo)
}

/// Product of polynomials in the natural bit order (bit i = coefficient of x^i) mod the GCM
/// polynomial.
#[inline]
fn mul_natural(x: u128, y: u128) -> u128 {
    let (x0, x1) = (x as u64, (x >> 64) as u64);
    let (y0, y1) = (y as u64, (y >> 64) as u64);
    let z0 = clmul64(x0, y0);
    let z2 = clmul64(x1, y1);
    let z1 = clmul64(x0, y1) ^ clmul64(x1, y0);
    let lo = z0 ^ (z1 << 64);
    let hi = z2 ^ (z1 >> 64);
    // x^128 = x^7 + x^2 + x + 1.
    let spill = (hi >> 127) ^ (hi >> 126) ^ (hi >> 121);
    lo ^ hi ^ (hi << 1) ^ (hi << 2) ^ (hi << 7) ^ spill ^ (spill << 1) ^ (spill << 2) ^ (spill << 7)
}

ops!(
    Gf128,
    |a: Gf128, b: Gf128| Gf128(a.0 ^ b.0),
    |a: Gf128, b: Gf128| Gf128(a.0 ^ b.0),
    |a: Gf128, b: Gf128| Gf128(mul_natural(a.0.reverse_bits(), b.0.reverse_bits()).reverse_bits()),
    |a: Gf128| a
);

impl Field for Gf128 {
    const ZERO: Gf128 = Gf128(0);
    /// The polynomial 1: the most significant bit in GCM order.
    const ONE: Gf128 = Gf128(1 << 127);
    const BYTES: usize = 16;
    const NAME: &'static str = "gf2^128";

    fn random<R: RngCore + ?Sized>(rng: &mut R) -> Gf128 {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Gf128::from_block(b)
    }

    fn invert(&self) -> Option<Gf128> {
        if self.is_zero() {
            return None;
        }
        // a^(2^128 − 2) = a^(2 + 4 + … + 2^127): square-and-multiply over 127 squarings.
        let mut acc = Gf128::ONE;
        let mut pow = *self;
        for _ in 1..128 {
            pow = pow.square();
            acc *= pow;
        }
        Some(acc)
    }

    fn is_zero(&self) -> bool {
        bool::from(self.0.ct_eq(&0))
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_block());
    }

    fn read_from(bytes: &[u8]) -> Option<Gf128> {
        let b: [u8; 16] = bytes.try_into().ok()?;
        Some(Gf128::from_block(b))
    }

    fn from_u64(v: u64) -> Gf128 {
        // Integers embed through their parity (characteristic 2).
        if v & 1 == 1 {
            Gf128::ONE
        } else {
            Gf128::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn gf(hex_str: &str) -> Gf128 {
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex_str[2 * i..2 * i + 2], 16).unwrap();
        }
        Gf128::from_block(b)
    }

    #[test]
    fn fp_is_the_p256_base_field() {
        assert_eq!(
            p256_modulus_hex(),
            "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"
        );
        // p − 1 + 1 = 0; p itself does not decode.
        let mut pm1 = [0xffu8; 32];
        pm1[..4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        pm1[4..8].copy_from_slice(&[0, 0, 0, 1]);
        pm1[8..20].fill(0);
        pm1[31] = 0xfe;
        let a = Fp::from_be_bytes(&pm1).unwrap();
        assert!((a + Fp::ONE).is_zero());
        let mut p = pm1;
        p[31] = 0xff;
        assert!(Fp::from_be_bytes(&p).is_none());
        assert!(Fp::read_from(&[0u8; 31]).is_none());
    }

    #[test]
    fn fp_inverse_and_encoding_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..200 {
            let a = Fp::random(&mut rng);
            let mut v = Vec::new();
            a.write_to(&mut v);
            assert_eq!(Fp::read_from(&v), Some(a));
            assert_eq!(a * a.invert().unwrap(), Fp::ONE);
        }
        assert!(Fp::ZERO.invert().is_none());
    }

    /// GCM specification (McGrew–Viega), test case 2: H = AES_0(0), and GHASH of the one
    /// ciphertext block C = 0388dace60b6a392f328c2b971b2fe78 with the length block gives
    /// f38cbb1ad69223dcc3457ae5b6b0f885.
    #[test]
    fn gf128_matches_the_gcm_spec_vector() {
        let h = gf("66e94bd4ef8a2c3b884cfa59ca342b2e");
        let c = gf("0388dace60b6a392f328c2b971b2fe78");
        let len = gf("00000000000000000000000000000080");
        let x1 = c * h;
        let x2 = (x1 + len) * h;
        assert_eq!(
            x2.to_block(),
            gf("f38cbb1ad69223dcc3457ae5b6b0f885").to_block()
        );
    }

    #[test]
    fn gf128_matches_the_ghash_crate() {
        use ghash::universal_hash::{KeyInit, UniversalHash};
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for _ in 0..2000 {
            let a: [u8; 16] = rng.gen();
            let b: [u8; 16] = rng.gen();
            // GHASH of one block X under key H is X·H.
            let mut g = ghash::GHash::new(&b.into());
            g.update(&[a.into()]);
            let want: [u8; 16] = g.finalize().into();
            let got = Gf128::from_block(a) * Gf128::from_block(b);
            assert_eq!(got.to_block(), want);
        }
    }

    #[test]
    fn gf128_field_laws() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for _ in 0..200 {
            let a = Gf128::random(&mut rng);
            let b = Gf128::random(&mut rng);
            let c = Gf128::random(&mut rng);
            assert_eq!(a * (b + c), a * b + a * c);
            assert_eq!((a * b) * c, a * (b * c));
            assert_eq!(a * Gf128::ONE, a);
            assert_eq!((a + b).square(), a.square() + b.square());
            if !a.is_zero() {
                assert_eq!(a * a.invert().unwrap(), Gf128::ONE);
            }
        }
        assert!(Gf128::ZERO.invert().is_none());
        assert_eq!(Gf128::ONE.invert(), Some(Gf128::ONE));
    }
}
