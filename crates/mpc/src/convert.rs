//! Conversions between the arithmetic side and garbled circuits. Into a circuit: each party's
//! additive share mod p is a private 256-bit input and the circuit adds them mod p. Out of a
//! circuit: [`OutputTo::Shares`](crate::OutputTo::Shares) gives XOR shares, which are additive
//! shares in GF(2^128); for mod-p shares two parties feed random masks and the third party
//! learns only the masked value. [`Reshare`] then makes additive shares replicated. Nothing
//! here reveals a value to fewer than all parties' cooperation.

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::circuit::arith::add_mod_p256;
use crate::circuit::{bits_to_bytes, bytes_to_bits, Bit, Builder, CircuitError};
use crate::field::{Field, Fp, Gf128};
use crate::rss::{Abort, Flow, Handle, Machine, Program, Results, Rss, Share};
use crate::spec::{InputGroup, InputSource, PartyId};

/// A field element as circuit input bits: 256 bits, most significant first (the order of
/// [`bytes_to_bits`] on the big-endian encoding).
pub fn fp_to_bits(v: &Fp) -> Zeroizing<Vec<bool>> {
    Zeroizing::new(bytes_to_bits(&v.to_be_bytes()))
}

/// Reads circuit output bits as a field element; `None` unless 256 bits encoding a value < p.
pub fn fp_from_bits(bits: &[bool]) -> Option<Fp> {
    if bits.len() != 256 {
        return None;
    }
    let b: [u8; 32] = bits_to_bytes(bits).try_into().ok()?;
    Fp::from_be_bytes(&b)
}

/// A GF(2^128) element as 128 circuit bits in GCM block order.
pub fn gf128_to_bits(v: &Gf128) -> Zeroizing<Vec<bool>> {
    Zeroizing::new(bytes_to_bits(&v.to_block()))
}

/// Reads 128 circuit output bits as a GF(2^128) element.
pub fn gf128_from_bits(bits: &[bool]) -> Option<Gf128> {
    if bits.len() != 128 {
        return None;
    }
    let b: [u8; 16] = bits_to_bytes(bits).try_into().ok()?;
    Some(Gf128::from_block(b))
}

/// Allocates three 256-bit private inputs in `b` — party 0's, 1's and 2's additive share mod p,
/// in that order — and returns their input groups and the wires of their sum mod p
/// (1,536 AND gates). Each party feeds [`fp_to_bits`] of its share (for example an
/// [`EctfShare`](crate::ectf::EctfShare)).
pub fn additive_fp_input(b: &mut Builder) -> Result<(Vec<InputGroup>, Vec<Bit>), CircuitError> {
    let x0 = b.inputs(256);
    let x1 = b.inputs(256);
    let x2 = b.inputs(256);
    let s = add_mod_p256(b, &x0, &x1)?;
    let sum = add_mod_p256(b, &s, &x2)?;
    let groups = (0..3)
        .map(|p| InputGroup {
            width: 256,
            source: InputSource::Private(p),
        })
        .collect();
    Ok((groups, sum))
}

/// For a value v (< p) on wires `value`: allocates two 256-bit private inputs, from parties 0
/// and 1, carrying −m₀ and −m₁ for their random masks, and returns their input groups and the
/// wires of v − m₀ − m₁ mod p (1,536 AND gates). Send those wires to party 2 alone
/// ([`OutputTo::Party(2)`](crate::OutputTo::Party)): then m₀, m₁ and v − m₀ − m₁ are
/// additive shares of v and no party has learned anything.
pub fn fp_additive_output(
    b: &mut Builder,
    value: &[Bit],
) -> Result<(Vec<InputGroup>, Vec<Bit>), CircuitError> {
    let n0 = b.inputs(256);
    let n1 = b.inputs(256);
    let s = add_mod_p256(b, value, &n0)?;
    let out = add_mod_p256(b, &s, &n1)?;
    let groups = (0..2)
        .map(|p| InputGroup {
            width: 256,
            source: InputSource::Private(p),
        })
        .collect();
    Ok((groups, out))
}

/// A random mask of party 0 or 1 for [`fp_additive_output`]: the party's additive share is the
/// mask, its circuit input is the negated mask.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct FpMask(Fp);

impl std::fmt::Debug for FpMask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FpMask(..)")
    }
}

impl FpMask {
    /// A fresh random mask.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> FpMask {
        FpMask(Fp::random(rng))
    }

    /// The circuit input: −m as 256 bits.
    pub fn input_bits(&self) -> Zeroizing<Vec<bool>> {
        fp_to_bits(&-self.0)
    }

    /// The party's additive share: m.
    pub fn share(&self) -> Fp {
        self.0
    }
}

/// The program that makes additive shares replicated (one round, plus the check rounds every
/// machine runs): party i sends its share to party i−1. A party that sends a different value
/// changes only its own contribution, exactly as if it had input something else.
pub struct Reshare<F: Field> {
    shares: Vec<F>,
    pending: Vec<Handle>,
    started: bool,
}

impl<F: Field> std::fmt::Debug for Reshare<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Reshare<{}> {{ values: {} }}",
            F::NAME,
            self.shares.len()
        )
    }
}

impl<F: Field> Drop for Reshare<F> {
    fn drop(&mut self) {
        for s in &mut self.shares {
            s.zeroize();
        }
    }
}

impl<F: Field> Reshare<F> {
    /// This party's additive shares of the values (same count at every party).
    pub fn new(shares: Vec<F>) -> Self {
        Reshare {
            shares,
            pending: Vec::new(),
            started: false,
        }
    }
}

/// Replicated shares out of [`Reshare`]. Zeroized on drop.
pub struct ReplicatedShares<F: Field>(pub Vec<Share<F>>);

impl<F: Field> std::fmt::Debug for ReplicatedShares<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplicatedShares<{}>({} values)", F::NAME, self.0.len())
    }
}

impl<F: Field> Drop for ReplicatedShares<F> {
    fn drop(&mut self) {
        for s in &mut self.0 {
            s.zeroize();
        }
    }
}

impl<F: Field> Program<F> for Reshare<F> {
    type Output = ReplicatedShares<F>;

    fn step(&mut self, rss: &mut Rss<F>, res: &Results<F>) -> Result<Flow<Self::Output>, Abort> {
        if !self.started {
            self.started = true;
            if self.shares.is_empty() {
                return Ok(Flow::Done(ReplicatedShares(Vec::new())));
            }
            self.pending = self.shares.iter().map(|s| rss.reshare(*s)).collect();
            return Ok(Flow::Continue);
        }
        let out = self
            .pending
            .iter()
            .map(|h| res.share(*h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| Abort::Local(m.to_string()))?;
        Ok(Flow::Done(ReplicatedShares(out)))
    }
}

/// Party `id`'s machine for [`Reshare`].
pub fn reshare_machine<F: Field, R: RngCore + CryptoRng>(
    id: PartyId,
    shares: Vec<F>,
    rng: &mut R,
) -> Result<Machine<F, Reshare<F>>, Abort> {
    Machine::new(id, Reshare::new(shares), rng)
}
