//! The keyed part in a circuit: GF(2^128) multiplication by public constants, Lagrange
//! reconstruction of the key from shares with a consistency check, HMAC-SHA256, and the
//! nullifier message. The key exists only as wires here; nothing may output it.

use mpc::circuit::arith::eq_bytes;
use mpc::circuit::sha256::BLOCK_BITS;
use mpc::circuit::{const_bits, Bit, Builder};

use super::bits::{or_all, thermometer, F};
use super::{CircuitError, FieldBits};
use crate::canon::{FieldKind, NullifierError, DOMAIN, MAX_FIELDS, MAX_SCOPE, MAX_VALUE};
use crate::gf128::Gf128;
use crate::shamir::{lagrange_coefficients, ShamirError};

/// Bits of a [`Gf128`] in a circuit.
pub const GF_BITS: usize = 128;

fn check_gf(what: &'static str, x: &[Bit]) -> Result<(), CircuitError> {
    if x.len() != GF_BITS {
        return Err(CircuitError::Width {
            what,
            expected: GF_BITS,
            got: x.len(),
        });
    }
    Ok(())
}

/// `x · c` for a secret element `x` (128 bits: `bytes_to_bits(x.to_bytes())`, so position k
/// holds the coefficient of x^(127−k)) and a public constant `c`. Multiplication by a
/// constant is GF(2)-linear, so this is XOR gates only (zero ANDs).
///
/// # Errors
/// `x` not 128 bits.
pub fn gf_mul_const(b: &mut Builder, x: &[Bit], c: Gf128) -> Result<Vec<Bit>, CircuitError> {
    check_gf("field element", x)?;
    // cols[k] = c · (the monomial at position k) = c · x^(127−k).
    let mut cols = [0u128; GF_BITS];
    let mut m = c;
    for k in (0..GF_BITS).rev() {
        cols[k] = m.to_u128();
        m *= Gf128::from_u16(2);
    }
    Ok((0..GF_BITS)
        .map(|i| {
            let coeff = GF_BITS - 1 - i;
            cols.iter()
                .zip(x)
                .filter(|(col, _)| (*col >> coeff) & 1 == 1)
                .fold(F, |acc, (_, &xk)| b.xor(acc, xk))
        })
        .collect())
}

/// `Σ λ_i · y_i` for public coefficients (XOR only).
fn linear_combination(
    b: &mut Builder,
    ys: &[&[Bit]],
    coeffs: &[Gf128],
) -> Result<Vec<Bit>, CircuitError> {
    let mut acc = vec![F; GF_BITS];
    for (y, &l) in ys.iter().zip(coeffs) {
        let t = gf_mul_const(b, y, l)?;
        acc = b.xor_vec(&acc, &t)?;
    }
    Ok(acc)
}

/// Reconstructs the key from Shamir shares `(x, y)` (ids public, values secret): Lagrange
/// interpolation at 0 over the first `t` shares (XOR only). `inconsistent` is the OR, over
/// every further share j, of `y_j ≠ f(x_j)` where f is the polynomial through the first `t`
/// (127 ANDs per further share); it is `Const(false)` when exactly `t` shares are given.
///
/// # Errors
/// `t == 0`, fewer than `t` shares, a zero or repeated id, or a value not 128 bits.
pub fn combine_shares(
    b: &mut Builder,
    shares: &[(u16, Vec<Bit>)],
    t: usize,
) -> Result<(Vec<Bit>, Bit), CircuitError> {
    if t == 0 {
        return Err(ShamirError::ZeroThreshold.into());
    }
    if shares.len() < t {
        return Err(ShamirError::NotEnoughShares {
            need: t,
            got: shares.len(),
        }
        .into());
    }
    for (_, y) in shares {
        check_gf("share", y)?;
    }
    // Checks every id, not only the first t.
    let all: Vec<u16> = shares.iter().map(|s| s.0).collect();
    lagrange_coefficients(&all, Gf128::ZERO)?;
    let (base, rest) = shares.split_at(t);
    let xs: Vec<u16> = base.iter().map(|s| s.0).collect();
    let ys: Vec<&[Bit]> = base.iter().map(|s| s.1.as_slice()).collect();
    let key = linear_combination(b, &ys, &lagrange_coefficients(&xs, Gf128::ZERO)?)?;
    let mut diffs = Vec::with_capacity(rest.len());
    for (xj, yj) in rest {
        let l = lagrange_coefficients(&xs, Gf128::from_u16(*xj))?;
        let predicted = linear_combination(b, &ys, &l)?;
        let same = eq_bytes(b, &predicted, yj)?;
        diffs.push(b.not(same));
    }
    let inconsistent = or_all(b, &diffs);
    Ok((key, inconsistent))
}

/// SHA-256 of a bit string of whole bytes; the padding depends only on the public length.
fn sha256(b: &mut Builder, msg: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    Ok(mpc::circuit::sha256::digest_fixed(b, msg)?)
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key`, both whole bytes; the key is at most one
/// block (512 bits) and is zero-padded to it, as HMAC does with short keys. Costs one SHA-256
/// compression (22,573 ANDs with all-wire inputs, less where inputs are constant) per block
/// of `ipad‖msg` and two for the outer hash.
///
/// # Errors
/// A key longer than 512 bits, or `key`/`msg` not whole bytes.
pub fn hmac_sha256(b: &mut Builder, key: &[Bit], msg: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    if key.len() > BLOCK_BITS || key.len() % 8 != 0 {
        return Err(CircuitError::Width {
            what: "HMAC key (whole bytes, at most 512 bits)",
            expected: BLOCK_BITS,
            got: key.len(),
        });
    }
    if msg.len() % 8 != 0 {
        return Err(CircuitError::Width {
            what: "HMAC message (whole bytes)",
            expected: msg.len() / 8 * 8,
            got: msg.len(),
        });
    }
    let mut k0 = key.to_vec();
    k0.resize(BLOCK_BITS, F);
    let pad = |b: &mut Builder, byte: u8| -> Vec<Bit> {
        k0.iter()
            .zip(const_bits(&[byte; 64]))
            .map(|(&k, p)| b.xor(k, p))
            .collect()
    };
    let mut inner = pad(b, 0x36);
    inner.extend_from_slice(msg);
    let inner_hash = sha256(b, &inner)?;
    let mut outer = pad(b, 0x5c);
    outer.extend(inner_hash);
    sha256(b, &outer)
}

/// The nullifier in a circuit: HMAC-SHA256 under the 128-bit key of the message
/// [`crate::canon::nullifier_message`] would build, from canonical fields given as bits (each
/// [`MAX_VALUE`] bytes and an 8-bit length, e.g. [`super::TextOut`] or
/// [`super::DateOut::field_bits`]). Kind bytes and the scope are public constants. Bytes at
/// positions ≥ a field's length are masked to zero here (about 600 ANDs per text field; free
/// for dates, whose padding is constant), so the message equals the reference's even if a
/// caller passes garbage there. A length above 64 is not detected here: it comes only with a
/// false `ok` from the canonicalizer, which the caller must check.
///
/// Returns the 256-bit HMAC.
///
/// # Errors
/// No fields or more than [`MAX_FIELDS`], an empty scope or one over [`MAX_SCOPE`] bytes, a
/// key not 128 bits, a field not 512 + 8 bits.
pub fn nullifier(
    b: &mut Builder,
    key: &[Bit],
    fields: &[(FieldKind, FieldBits)],
    scope: &str,
) -> Result<Vec<Bit>, CircuitError> {
    check_gf("key", key)?;
    if fields.is_empty() {
        return Err(NullifierError::NoFields.into());
    }
    if fields.len() > MAX_FIELDS {
        return Err(NullifierError::TooManyFields(fields.len()).into());
    }
    if scope.is_empty() {
        return Err(NullifierError::EmptyScope.into());
    }
    if scope.len() > MAX_SCOPE {
        return Err(NullifierError::ScopeTooLong(scope.len()).into());
    }
    let mut msg = const_bits(DOMAIN);
    for (kind, f) in fields {
        if f.bytes.len() != 8 * MAX_VALUE {
            return Err(CircuitError::Width {
                what: "field bytes",
                expected: 8 * MAX_VALUE,
                got: f.bytes.len(),
            });
        }
        super::check_len(&f.len)?;
        msg.extend(const_bits(&[kind.tag()]));
        msg.extend_from_slice(&f.len);
        let (inside, _) = thermometer(b, &f.len, MAX_VALUE, false);
        for (byte, &keep) in f.bytes.chunks(8).zip(&inside) {
            msg.extend(byte.iter().map(|&x| b.and(x, keep)));
        }
    }
    let mut scope_bytes = vec![scope.len() as u8];
    scope_bytes.extend_from_slice(scope.as_bytes());
    scope_bytes.resize(1 + MAX_SCOPE, 0);
    msg.extend(const_bits(&scope_bytes));
    hmac_sha256(b, key, &msg)
}
