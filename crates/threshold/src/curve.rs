//! Ed25519 group arithmetic that frost 3.0 keeps private: node-id ↔ `Identifier` mapping, Lagrange
//! coefficients, point/scalar decoding and the Feldman check used to name a culprit.
//! Works on public values, except the one received share a Feldman check looks at; it must never
//! store, log or return a secret.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul};
use frost_ed25519::{Ed25519Group, Group, Identifier};
use zeroize::Zeroizing;

/// The frost identifier of node `id` (`Identifier::try_from(u16)`); `None` for 0.
pub(crate) fn identifier(id: u16) -> Option<Identifier> {
    Identifier::try_from(id).ok()
}

/// The node id of a frost identifier, if it is one of the `u16` ids this crate hands out.
///
/// frost serializes an Ed25519 identifier as its scalar, 32 bytes little-endian.
pub(crate) fn node_id(identifier: &Identifier) -> Option<u16> {
    let bytes = identifier.serialize();
    if bytes.len() != 32 || bytes[2..].iter().any(|b| *b != 0) {
        return None;
    }
    let id = u16::from_le_bytes([bytes[0], bytes[1]]);
    (id != 0).then_some(id)
}

/// `x` as a scalar.
pub(crate) fn scalar_of(x: u16) -> Scalar {
    Scalar::from(u64::from(x))
}

/// λ_i(x) = Π_{j∈set, j≠i} (x − j)/(i − j): the Lagrange coefficient of `i` over `set`, at `x`.
///
/// `set` must contain `i` and hold distinct nonzero ids (then no denominator is zero).
pub(crate) fn lagrange(x: Scalar, set: &BTreeSet<u16>, i: u16) -> Scalar {
    let xi = scalar_of(i);
    let mut num = Scalar::ONE;
    let mut den = Scalar::ONE;
    for &j in set.iter().filter(|&&j| j != i) {
        let xj = scalar_of(j);
        num *= x - xj;
        den *= xi - xj;
    }
    num * den.invert()
}

/// Σ_i λ_i(x)·P_i over the given points: the value at `x` of the degree-(k−1) polynomial (in the
/// exponent) through the k points.
pub(crate) fn interpolate(x: Scalar, points: &BTreeMap<u16, EdwardsPoint>) -> EdwardsPoint {
    let set: BTreeSet<u16> = points.keys().copied().collect();
    let scalars: Vec<Scalar> = set.iter().map(|&i| lagrange(x, &set, i)).collect();
    EdwardsPoint::vartime_multiscalar_mul(scalars, points.values())
}

/// Decodes a public key or verifying share with frost's rules: canonical 32-byte encoding, not the
/// identity, no torsion component.
pub(crate) fn decode_point(bytes: &[u8]) -> Option<EdwardsPoint> {
    let arr: [u8; 32] = bytes.try_into().ok()?;
    <Ed25519Group as Group>::deserialize(&arr).ok()
}

/// Decodes a commitment to a random scalar: like [`decode_point`] but the identity is allowed (it
/// is the commitment to zero).
pub(crate) fn decode_commitment(bytes: &[u8]) -> Option<EdwardsPoint> {
    let arr: [u8; 32] = bytes.try_into().ok()?;
    let point = CompressedEdwardsY(arr).decompress()?;
    (point.is_torsion_free() && point.compress().to_bytes() == arr).then_some(point)
}

/// Compressed encoding of a point.
pub(crate) fn encode_point(point: &EdwardsPoint) -> [u8; 32] {
    point.compress().to_bytes()
}

/// Decodes a canonical little-endian scalar.
pub(crate) fn decode_scalar(bytes: &[u8]) -> Option<Scalar> {
    let arr: Zeroizing<[u8; 32]> = Zeroizing::new(bytes.try_into().ok()?);
    Option::from(Scalar::from_canonical_bytes(*arr))
}

/// G·s.
pub(crate) fn base_mul(s: &Scalar) -> EdwardsPoint {
    ED25519_BASEPOINT_POINT * s
}

/// The identity point.
pub(crate) fn identity() -> EdwardsPoint {
    EdwardsPoint::identity()
}

/// Feldman check: G·share == Σ_k C_k·me^k, with `coefficients` in increasing degree.
///
/// `share_bytes` is the received secret share; it is decoded into a wiped scalar and dropped here.
pub(crate) fn feldman_ok(me: u16, share_bytes: &[u8], coefficients: &[EdwardsPoint]) -> bool {
    let Some(share) = decode_scalar(share_bytes).map(Zeroizing::new) else {
        return false;
    };
    let x = scalar_of(me);
    let mut power = Scalar::ONE;
    let mut powers = Vec::with_capacity(coefficients.len());
    for _ in coefficients {
        powers.push(power);
        power *= x;
    }
    let expected = EdwardsPoint::vartime_multiscalar_mul(powers, coefficients);
    base_mul(&share) == expected
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn node_ids_round_trip_through_identifiers() {
        for id in [1u16, 2, 255, 256, 4242, u16::MAX] {
            assert_eq!(node_id(&identifier(id).unwrap()), Some(id));
        }
        assert!(identifier(0).is_none());
        // An identifier derived from a string is not a u16 id.
        let derived = Identifier::derive(b"not a small id").unwrap();
        assert_eq!(node_id(&derived), None);
    }

    #[test]
    fn interpolation_recovers_a_line_in_the_exponent() {
        // f(x) = 7 + 3x; points at 2 and 5; value at 0 is G·7, at 9 is G·34.
        let f = |x: u64| base_mul(&(Scalar::from(7u64) + Scalar::from(3u64) * Scalar::from(x)));
        let points: BTreeMap<u16, EdwardsPoint> = [(2u16, f(2)), (5u16, f(5))].into();
        assert_eq!(interpolate(Scalar::ZERO, &points), f(0));
        assert_eq!(interpolate(scalar_of(9), &points), f(9));
    }

    #[test]
    fn feldman_accepts_the_right_share_only() {
        let coeffs = [Scalar::from(11u64), Scalar::from(5u64), Scalar::from(2u64)];
        let commitments: Vec<EdwardsPoint> = coeffs.iter().map(base_mul).collect();
        let at = |x: u64| {
            let x = Scalar::from(x);
            coeffs[0] + coeffs[1] * x + coeffs[2] * x * x
        };
        assert!(feldman_ok(4, at(4).as_bytes(), &commitments));
        assert!(!feldman_ok(4, at(3).as_bytes(), &commitments));
        assert!(!feldman_ok(4, &[0xff; 32], &commitments));
    }
}
