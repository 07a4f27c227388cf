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
use crate::rss::{ArithAbort, Flow, Handle, Machine, Program, Results, Rss, Share};
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

/// Private 256-bit inputs allocated in a circuit builder, one group per party.
#[derive(Debug, Clone)]
pub struct FpInputs {
    /// The input groups, to put in the [`ExecSpec`](crate::ExecSpec) in this order.
    pub groups: Vec<InputGroup>,
    /// The wires of each group.
    pub wires: Vec<Vec<Bit>>,
}

fn fp_inputs(b: &mut Builder, parties: &[PartyId]) -> FpInputs {
    let wires = parties.iter().map(|_| b.inputs(256)).collect();
    let groups = parties
        .iter()
        .map(|p| InputGroup {
            width: 256,
            source: InputSource::Private(*p),
        })
        .collect();
    FpInputs { groups, wires }
}

/// Allocates three 256-bit private inputs — party 0's, 1's and 2's additive share mod p, in
/// that order. Call it while allocating inputs (before any gate); add the shares with
/// [`sum_mod_p`]. Each party feeds [`fp_to_bits`] of its share (for example an
/// [`EctfShare`](crate::ectf::EctfShare)).
pub fn additive_fp_inputs(b: &mut Builder) -> FpInputs {
    fp_inputs(b, &[0, 1, 2])
}

/// Allocates the two 256-bit private inputs through which parties 0 and 1 feed −m₀ and −m₁
/// ([`FpMask::input_bits`]) for taking a value out of a circuit as additive shares: then
/// `sum_mod_p([v, −m₀, −m₁])` sent to party 2 alone
/// ([`OutputTo::Party(2)`](crate::OutputTo::Party)) makes m₀, m₁ and v − m₀ − m₁ additive
/// shares of v, and no party learns anything about v.
pub fn fp_mask_inputs(b: &mut Builder) -> FpInputs {
    fp_inputs(b, &[0, 1])
}

/// The sum mod p of 256-bit values (each < p), 768 AND gates per addition.
pub fn sum_mod_p(b: &mut Builder, values: &[Vec<Bit>]) -> Result<Vec<Bit>, CircuitError> {
    let (first, rest) = values
        .split_first()
        .ok_or(CircuitError::WidthMismatch(0, 256))?;
    if first.len() != 256 {
        return Err(CircuitError::WidthMismatch(first.len(), 256));
    }
    let mut acc = first.clone();
    for v in rest {
        acc = add_mod_p256(b, &acc, v)?;
    }
    Ok(acc)
}

/// A random mask of party 0 or 1 for [`fp_mask_inputs`]: the party's additive share is the
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
    /// The queued reshares, once started.
    pending: Option<Vec<Handle>>,
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
            pending: None,
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

    fn step(
        &mut self,
        rss: &mut Rss<F>,
        res: &Results<F>,
    ) -> Result<Flow<Self::Output>, ArithAbort> {
        let Some(pending) = &self.pending else {
            if self.shares.is_empty() {
                return Ok(Flow::Done(ReplicatedShares(Vec::new())));
            }
            self.pending = Some(self.shares.iter().map(|s| rss.reshare(*s)).collect());
            return Ok(Flow::Continue);
        };
        let out = pending
            .iter()
            .map(|h| res.share(*h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ArithAbort::Local(m.to_string()))?;
        Ok(Flow::Done(ReplicatedShares(out)))
    }
}

/// Party `id`'s machine for [`Reshare`].
pub fn reshare_machine<F: Field, R: RngCore + CryptoRng>(
    id: PartyId,
    shares: Vec<F>,
    rng: &mut R,
) -> Result<Machine<F, Reshare<F>>, ArithAbort> {
    Machine::new(id, Reshare::new(shares), rng)
}
