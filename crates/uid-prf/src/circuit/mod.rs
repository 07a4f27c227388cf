//! The UID computation as garbled-circuit gadgets on [`mpc::circuit::Builder`]: reconstruct
//! the key from the nodes' shares, canonicalize the client's PII, and compute the nullifier —
//! all on secret wires. Every gadget must equal its plaintext reference in [`crate::canon`]
//! and [`crate::shamir`] exactly (the tests evaluate both); none may output the key or
//! branch on a secret (circuit shape depends only on public parameters).
//!
//! # Conventions
//! Bit vectors are MSB first per byte, bytes in order (`mpc::circuit::bytes_to_bits`). A
//! [`Gf128`](crate::Gf128) is the 128 bits of `bytes_to_bits(&v.to_bytes())`. A length is
//! 8 bits, MSB first. Secret byte strings come with a secret length: positions at or after
//! the length are ignored, whatever they hold.
//!
//! # Text ([`canon_text`])
//! Accepts exactly the bytes [`crate::canon::in_circuit_text_domain`] accepts and computes
//! [`crate::canon::canon_text`] on them, by these byte rules:
//! - domain: each of the first `len` bytes is printable ASCII except `\` and `"`, or a C3
//!   lead followed (within `len`) by 80–BF, or such a continuation byte preceded by C3;
//!   `ok` is false otherwise and when `len > L`;
//! - mapping, one output byte per input byte: A–Z → a–z (set bit 5); a byte 80–9E except 97
//!   after C3 → +0x20; C3 9F (ß) → `s s`; everything else unchanged;
//! - whitespace: a 0x20 survives iff the byte before it is not 0x20 and some non-space
//!   byte follows it within `len`, which collapses runs and trims both ends;
//! - compaction: each surviving byte moves left by the number of dropped bytes before it
//!   (running counters, then a shifter of ⌈log2 L⌉ stages, each moving by 2^k the slots
//!   whose shift has bit k set; stable and collision-free). The output is zero after the
//!   canonical length, which is `L − dropped`.
//!
//! # Dates ([`canon_date`]) and decimals ([`parse_decimal`])
//! The rules of [`crate::canon::canon_date`] (including: no days-in-month check) and
//! [`crate::canon::parse_decimal`], evaluated on the first `len` bytes.
//!
//! # Key and nullifier ([`combine_shares`], [`gf_mul_const`], [`hmac_sha256`], [`nullifier`])
//! Lagrange interpolation at 0 with public coefficients is linear, so the key costs no AND
//! gate; each share beyond the threshold is checked against the interpolated polynomial.
//! The nullifier message is laid out as in [`crate::canon`]; HMAC padding is public.
//!
//! # Cost (AND gates, asserted by the tests in this module)
//! | gadget | ANDs |
//! |---|---|
//! | `canon_text`, L = 64 | 9,077 (≈ 142 per byte: 3,043 classification, 442 domain and mapping, 251 whitespace, 1,295 counters and masking, 3,976 shifter, 70 length) |
//! | `canon_date` | 114 (98 for `YYYYMMDD`) |
//! | `parse_decimal`, L = 64 (only 19 bytes can matter) | 3,546 |
//! | `combine_shares`, 3 shares, t = 2 | 127 (the key itself: 0) |
//! | `gf_mul_const` | 0 |
//! | `nullifier`, 3 text fields | 174,444 = HMAC 172,609 + masking 1,835 |
//! | `hmac_sha256`, 128-bit key, all-wire 279-byte message (8 compressions) | 177,769 |

mod bits;
mod prf;
mod text;

#[cfg(test)]
mod tests;

use mpc::circuit::Bit;

pub use prf::{combine_shares, gf_mul_const, hmac_sha256, nullifier, GF_BITS};
pub use text::{canon_date, canon_text, parse_decimal, MAX_TEXT_INPUT};

use crate::canon::NullifierError;
use crate::shamir::ShamirError;

/// Errors building a gadget: wrong widths or parameters. Secret data never causes an error;
/// it only clears an `ok` bit.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CircuitError {
    /// The underlying builder refused (widths, circuit size).
    #[error(transparent)]
    Builder(#[from] mpc::circuit::CircuitError),
    /// An input of the wrong width.
    #[error("{what}: expected {expected} bits, got {got}")]
    Width {
        /// Which input.
        what: &'static str,
        /// The width the gadget needs (a bound where the message says so).
        expected: usize,
        /// The width given.
        got: usize,
    },
    /// Bad share ids or threshold.
    #[error(transparent)]
    Shamir(#[from] ShamirError),
    /// A nullifier layout parameter out of range.
    #[error(transparent)]
    Nullifier(#[from] NullifierError),
}

/// Output of [`canon_text`].
#[derive(Clone, Debug)]
pub struct TextOut {
    /// The canonical bytes (8·L bits), zero after the canonical length.
    pub bytes: Vec<Bit>,
    /// The canonical length in bytes (8 bits, MSB first).
    pub len: Vec<Bit>,
    /// False iff the input was outside the domain or `len > L`.
    pub ok: Bit,
}

/// Output of [`canon_date`].
#[derive(Clone, Debug)]
pub struct DateOut {
    /// `YYYY-MM-DD`: 10 bytes, 80 bits.
    pub iso: Vec<Bit>,
    /// Whether the input was a valid date in the format with the exact length.
    pub ok: Bit,
}

/// A canonical field as [`nullifier`] takes it: [`crate::canon::MAX_VALUE`] bytes (512 bits)
/// and an 8-bit length.
#[derive(Clone, Debug)]
pub struct FieldBits {
    /// The canonical bytes, 512 bits.
    pub bytes: Vec<Bit>,
    /// The canonical length, 8 bits MSB first.
    pub len: Vec<Bit>,
}

impl From<&TextOut> for FieldBits {
    fn from(t: &TextOut) -> FieldBits {
        FieldBits {
            bytes: t.bytes.clone(),
            len: t.len.clone(),
        }
    }
}

impl From<TextOut> for FieldBits {
    fn from(t: TextOut) -> FieldBits {
        FieldBits {
            bytes: t.bytes,
            len: t.len,
        }
    }
}

/// Checks a byte string's width and returns its length in bytes.
fn check_bytes(what: &'static str, bits: &[Bit], max_bytes: usize) -> Result<usize, CircuitError> {
    if bits.len() % 8 != 0 || bits.len() / 8 > max_bytes {
        return Err(CircuitError::Width {
            what,
            expected: 8 * (bits.len() / 8).min(max_bytes),
            got: bits.len(),
        });
    }
    Ok(bits.len() / 8)
}

/// Checks an 8-bit length.
fn check_len(len: &[Bit]) -> Result<(), CircuitError> {
    if len.len() != 8 {
        return Err(CircuitError::Width {
            what: "length",
            expected: 8,
            got: len.len(),
        });
    }
    Ok(())
}
