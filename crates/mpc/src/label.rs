//! Wire labels and the free-XOR offset Δ: the secrets of a garbled circuit.
//! They zeroize on drop, print redacted, compare in constant time, and are never serialized
//! except by the protocol code that must put an active label on the wire.

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 128-bit wire label. Its least significant bit is the point-and-permute colour.
#[derive(Clone, Copy, Default, Zeroize)]
pub struct Label(pub(crate) u128);

impl Label {
    /// A uniformly random label.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        let l = Label(u128::from_le_bytes(b));
        b.zeroize();
        l
    }
    /// The point-and-permute colour bit.
    pub fn colour(&self) -> bool {
        self.0 & 1 == 1
    }
    /// Little-endian bytes, for putting an active label on the wire.
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }
    pub(crate) fn from_bytes(b: [u8; 16]) -> Self {
        Label(u128::from_le_bytes(b))
    }
}

impl std::ops::BitXor for Label {
    type Output = Label;
    fn bitxor(self, rhs: Label) -> Label {
        Label(self.0 ^ rhs.0)
    }
}

impl std::ops::BitXorAssign for Label {
    fn bitxor_assign(&mut self, rhs: Label) {
        self.0 ^= rhs.0;
    }
}

impl ConstantTimeEq for Label {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.to_le_bytes().ct_eq(&other.0.to_le_bytes())
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.ct_eq(other))
    }
}
impl Eq for Label {}

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Label(..)")
    }
}

/// The global free-XOR offset of a session. Its colour bit is always 1, so the two labels of a
/// wire have opposite colours.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Delta(pub(crate) u128);

impl Delta {
    /// A random Δ with colour bit 1.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        Delta(Label::random(rng).0 | 1)
    }
    /// The label of value `bit` on a wire whose zero-label is `zero`.
    pub fn select(&self, zero: Label, bit: bool) -> Label {
        Label(zero.0 ^ (self.0 & 0u128.wrapping_sub(u128::from(bit))))
    }
}

impl std::fmt::Debug for Delta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Delta(..)")
    }
}
