//! Shamir secret sharing of the UID key over [`Gf128`], with a dealerless key generation and a
//! resharing that keeps the key when the node set changes. No function here ever reconstructs
//! the key except [`combine`], which only tests and the circuit reference may call: nodes feed
//! their shares into the garbled circuit instead.
//!
//! # Rules
//! - A node's evaluation point is its id `x` (a nonzero `u16`, as the element
//!   [`Gf128::from_u16`]); the secret is the polynomial's value at 0. Ids in one sharing are
//!   distinct.
//! - A sharing with threshold `t` is a polynomial of degree at most `t − 1`: any `t` shares
//!   determine the secret, any `t − 1` are uniformly distributed whatever the secret.
//! - **Key generation** ([`keygen_deal`], [`keygen_combine`]): every node deals a random
//!   secret to all ids; each node adds what it received. The key is the sum of the dealt
//!   secrets, which nobody learns. The dealings are not verifiable: a node that deals
//!   inconsistent shares is caught later by the circuit's consistency check
//!   ([`crate::circuit::combine_shares`]), not here.
//! - **Resharing** ([`reshare_deal`], [`reshare_combine`]): a qualified set Q of old nodes (at
//!   least the old threshold) each deals λ_i·y_i, where λ_i is its Lagrange coefficient at 0
//!   over Q, with a fresh polynomial of degree `new_t − 1` to the new ids; each new node adds
//!   the |Q| shares it received. Since Σ λ_i·y_i is the key, the new shares share the same
//!   key, and they lie on a polynomial independent of the old one, so old shares (such as
//!   those of a node that left) do not combine with new ones.
//! - Dealt polynomial coefficients are zeroized after use; [`Share`] zeroizes on drop.

use std::fmt;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::gf128::Gf128;

/// Errors from sharing, combining and resharing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// A threshold of 0 shares nothing.
    #[error("threshold must be at least 1")]
    ZeroThreshold,
    /// More shares are needed to reconstruct than there are parties.
    #[error("threshold {t} exceeds the number of parties {n}")]
    ThresholdTooLarge {
        /// The threshold asked for.
        t: usize,
        /// The number of ids.
        n: usize,
    },
    /// Fewer shares than the threshold.
    #[error("need {need} shares, got {got}")]
    NotEnoughShares {
        /// The threshold.
        need: usize,
        /// Shares given.
        got: usize,
    },
    /// Id 0 is the secret's evaluation point and cannot be a node.
    #[error("node id 0 is reserved for the secret")]
    ZeroId,
    /// An id occurs twice in one sharing.
    #[error("node id {0} occurs twice")]
    DuplicateId(u16),
    /// A node was handed a share meant for another node.
    #[error("node {expected} received a share for node {got}")]
    WrongRecipient {
        /// The receiving node.
        expected: u16,
        /// The id on the share.
        got: u16,
    },
    /// A resharing node is not in the qualified set it reshares over.
    #[error("node {0} is not in the qualified set")]
    NotQualified(u16),
    /// Nothing to add up.
    #[error("no shares received")]
    NoShares,
}

/// One node's share of a secret: the value `y` of the sharing polynomial at the node's id `x`.
///
/// Secret: zeroizes on drop, `Debug` shows only `x`, [`ConstantTimeEq`] compares in constant
/// time. It serialises (as `{"x": 1, "y": "<32 hex digits of y.to_bytes()>"}`) because nodes
/// store their share sealed; never serialise it anywhere else.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct Share {
    /// The node id (the evaluation point), nonzero.
    pub x: u16,
    /// The polynomial's value at `x`.
    #[serde(with = "hex_gf128")]
    pub y: Gf128,
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Share(x={}, ..)", self.x)
    }
}

impl ConstantTimeEq for Share {
    fn ct_eq(&self, o: &Share) -> Choice {
        self.x.ct_eq(&o.x) & self.y.ct_eq(&o.y)
    }
}

impl PartialEq for Share {
    fn eq(&self, o: &Share) -> bool {
        bool::from(self.ct_eq(o))
    }
}

impl Eq for Share {}

/// Serde for a secret [`Gf128`] as 32 lowercase hex digits of its bytes; the encoding is
/// constant-time and the text is zeroized after use.
mod hex_gf128 {
    use super::Gf128;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    /// Hex digit of a nibble without a table lookup or branch.
    fn nibble_to_hex(n: u8) -> u8 {
        // '0' + n, plus ('a' − '0' − 10) when n > 9.
        let gt9 = ((9i16 - i16::from(n)) >> 8) as u8; // 0xff when n > 9
        b'0' + n + (gt9 & (b'a' - b'0' - 10))
    }

    /// Value of a hex digit, or 0xff-ish garbage flagged by the returned `bad` mask.
    fn hex_to_nibble(c: u8) -> (u8, u8) {
        let c = i16::from(c);
        // Each range test yields 0xffff when c is in range, else 0.
        let in_range = |lo: i16, hi: i16| ((lo - 1 - c) & (c - hi - 1)) >> 8;
        let dig = in_range(0x30, 0x39);
        let low = in_range(0x61, 0x66);
        let up = in_range(0x41, 0x46);
        let v = (dig & (c - 0x30)) | (low & (c - 0x61 + 10)) | (up & (c - 0x41 + 10));
        let ok = dig | low | up;
        (v as u8, !(ok as u8))
    }

    pub(super) fn serialize<S: Serializer>(y: &Gf128, s: S) -> Result<S::Ok, S::Error> {
        let bytes = Zeroizing::new(y.to_bytes());
        let mut text = Zeroizing::new(String::with_capacity(32));
        for b in bytes.iter() {
            text.push(char::from(nibble_to_hex(b >> 4)));
            text.push(char::from(nibble_to_hex(b & 15)));
        }
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Gf128, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let t = text.as_bytes();
        if t.len() != 32 {
            return Err(D::Error::custom("share value must be 32 hex digits"));
        }
        let mut bytes = Zeroizing::new([0u8; 16]);
        let mut bad = 0u8;
        for (i, out) in bytes.iter_mut().enumerate() {
            let (hi, bh) = hex_to_nibble(t[2 * i]);
            let (lo, bl) = hex_to_nibble(t[2 * i + 1]);
            *out = (hi << 4) | (lo & 15);
            bad |= bh | bl;
        }
        if bad != 0 {
            return Err(D::Error::custom("share value must be hex"));
        }
        Ok(Gf128::from_bytes(&bytes))
    }

    #[cfg(test)]
    #[test]
    fn hex_digits_exhaustive() {
        for n in 0..16u8 {
            let c = nibble_to_hex(n);
            assert_eq!(
                char::from(c),
                char::from_digit(u32::from(n), 16).unwrap_or('?')
            );
            assert_eq!(hex_to_nibble(c), (n, 0));
            assert_eq!(hex_to_nibble(c.to_ascii_uppercase()), (n, 0));
        }
        for c in 0..=255u8 {
            let is_hex = c.is_ascii_hexdigit();
            assert_eq!(hex_to_nibble(c).1 == 0, is_hex, "{c:#x}");
        }
    }
}

/// Checks that ids are nonzero and pairwise distinct.
fn check_ids(xs: impl IntoIterator<Item = u16>) -> Result<(), ShamirError> {
    let mut seen = std::collections::BTreeSet::new();
    for x in xs {
        if x == 0 {
            return Err(ShamirError::ZeroId);
        }
        if !seen.insert(x) {
            return Err(ShamirError::DuplicateId(x));
        }
    }
    Ok(())
}

/// Evaluates the polynomial with coefficients `coeffs` (constant first) at `x` (Horner).
fn eval(coeffs: &[Gf128], x: Gf128) -> Gf128 {
    coeffs.iter().rev().fold(Gf128::ZERO, |acc, &c| acc * x + c)
}

/// Shares `secret` among `xs` with threshold `t`: a uniformly random polynomial of degree
/// `t − 1` with constant term `secret`, evaluated at each id. Shares come back in the order of
/// `xs`.
///
/// # Errors
/// `t == 0`, `t > xs.len()`, a zero id or a repeated id.
pub fn deal<R: RngCore + CryptoRng + ?Sized>(
    secret: Gf128,
    t: usize,
    xs: &[u16],
    rng: &mut R,
) -> Result<Vec<Share>, ShamirError> {
    if t == 0 {
        return Err(ShamirError::ZeroThreshold);
    }
    if t > xs.len() {
        return Err(ShamirError::ThresholdTooLarge { t, n: xs.len() });
    }
    check_ids(xs.iter().copied())?;
    let mut coeffs = Zeroizing::new(Vec::with_capacity(t));
    coeffs.push(secret);
    for _ in 1..t {
        coeffs.push(Gf128::random(rng));
    }
    Ok(xs
        .iter()
        .map(|&x| Share {
            x,
            y: eval(&coeffs, Gf128::from_u16(x)),
        })
        .collect())
}

/// The Lagrange coefficients λ_i of the ids `xs` at the point `at`: for every polynomial `f`
/// of degree below `xs.len()`, `f(at) = Σ λ_i · f(x_i)`. The ids are public, so these are
/// public too.
///
/// # Errors
/// A zero or repeated id.
pub fn lagrange_coefficients(xs: &[u16], at: Gf128) -> Result<Vec<Gf128>, ShamirError> {
    check_ids(xs.iter().copied())?;
    let pts: Vec<Gf128> = xs.iter().map(|&x| Gf128::from_u16(x)).collect();
    let mut out = Vec::with_capacity(pts.len());
    for (i, &xi) in pts.iter().enumerate() {
        let mut num = Gf128::ONE;
        let mut den = Gf128::ONE;
        for (j, &xj) in pts.iter().enumerate() {
            if i != j {
                num *= at - xj;
                den *= xi - xj;
            }
        }
        // Distinct ids make every factor of the denominator nonzero.
        let inv = den.inv().ok_or(ShamirError::DuplicateId(xs[i]))?;
        out.push(num * inv);
    }
    Ok(out)
}

/// Reconstructs the secret from the first `t` of `shares` (interpolation at 0). The remaining
/// shares are not looked at; use [`consistent`] to check them.
///
/// # Errors
/// `t == 0`, fewer than `t` shares, or a zero or repeated id among the first `t`.
pub fn combine(shares: &[Share], t: usize) -> Result<Gf128, ShamirError> {
    if t == 0 {
        return Err(ShamirError::ZeroThreshold);
    }
    if shares.len() < t {
        return Err(ShamirError::NotEnoughShares {
            need: t,
            got: shares.len(),
        });
    }
    interpolate(&shares[..t], Gf128::ZERO)
}

/// The value at `at` of the polynomial through `shares`.
fn interpolate(shares: &[Share], at: Gf128) -> Result<Gf128, ShamirError> {
    let xs: Vec<u16> = shares.iter().map(|s| s.x).collect();
    let l = lagrange_coefficients(&xs, at)?;
    Ok(l.iter().zip(shares).map(|(&li, s)| li * s.y).sum())
}

/// Whether all `shares` lie on one polynomial of degree below `t`: each share after the first
/// `t` must equal the value the first `t` interpolate at its id (compared in constant time).
/// With at most `t` shares this holds for any values, so it is a check only when more than `t`
/// shares are given. False for `t == 0` and for zero or repeated ids.
pub fn consistent(shares: &[Share], t: usize) -> bool {
    if t == 0 || check_ids(shares.iter().map(|s| s.x)).is_err() {
        return false;
    }
    if shares.len() <= t {
        return true;
    }
    let (base, rest) = shares.split_at(t);
    let mut ok = Choice::from(1);
    for s in rest {
        match interpolate(base, Gf128::from_u16(s.x)) {
            Ok(v) => ok &= v.ct_eq(&s.y),
            Err(_) => return false,
        }
    }
    bool::from(ok)
}

/// Adds shares that were all dealt to `my_x`.
fn sum_for(my_x: u16, received: &[Share]) -> Result<Share, ShamirError> {
    if my_x == 0 {
        return Err(ShamirError::ZeroId);
    }
    if received.is_empty() {
        return Err(ShamirError::NoShares);
    }
    let mut y = Gf128::ZERO;
    for s in received {
        if s.x != my_x {
            return Err(ShamirError::WrongRecipient {
                expected: my_x,
                got: s.x,
            });
        }
        y += s.y;
    }
    Ok(Share { x: my_x, y })
}

/// Key generation, step 1 at one node: shares a fresh random secret among all ids `xs` with
/// threshold `t`. Send share `i` to node `xs[i]` (over a confidential channel); the random
/// secret itself is dropped and zeroized here.
///
/// # Errors
/// As [`deal`].
pub fn keygen_deal<R: RngCore + CryptoRng + ?Sized>(
    xs: &[u16],
    t: usize,
    rng: &mut R,
) -> Result<Vec<Share>, ShamirError> {
    let mut secret = Gf128::random(rng);
    let shares = deal(secret, t, xs, rng);
    secret.zeroize();
    shares
}

/// Key generation, step 2 at node `my_x`: the sum of the shares every node (including this
/// one) dealt to it is its share of the key. The caller must pass exactly one share from each
/// dealer.
///
/// # Errors
/// No shares, `my_x == 0`, or a share addressed to another id.
pub fn keygen_combine(my_x: u16, received: &[Share]) -> Result<Share, ShamirError> {
    sum_for(my_x, received)
}

/// Resharing, step 1 at an old node: deals λ·y (its Lagrange coefficient at 0 over
/// `qualified`, times its share) to `new_xs` with threshold `new_t`. Every node of `qualified`
/// must run this, and `qualified` must hold at least the old threshold of old ids, or the new
/// shares share garbage (that cannot be checked here).
///
/// # Errors
/// `my.x` not in `qualified`; zero or repeated ids in `qualified` or `new_xs`; `new_t == 0` or
/// `new_t > new_xs.len()`.
pub fn reshare_deal<R: RngCore + CryptoRng + ?Sized>(
    my: &Share,
    qualified: &[u16],
    new_xs: &[u16],
    new_t: usize,
    rng: &mut R,
) -> Result<Vec<Share>, ShamirError> {
    let lambdas = lagrange_coefficients(qualified, Gf128::ZERO)?;
    let i = qualified
        .iter()
        .position(|&q| q == my.x)
        .ok_or(ShamirError::NotQualified(my.x))?;
    let mut part = lambdas[i] * my.y;
    let shares = deal(part, new_t, new_xs, rng);
    part.zeroize();
    shares
}

/// Resharing, step 2 at new node `my_new_x`: the sum of the shares received from every node
/// of the qualified set is its new share. The caller must pass exactly one share from each
/// member of the qualified set.
///
/// # Errors
/// No shares, `my_new_x == 0`, or a share addressed to another id.
pub fn reshare_combine(my_new_x: u16, received: &[Share]) -> Result<Share, ShamirError> {
    sum_for(my_new_x, received)
}

/// Repair (a node joins without changing anyone else's share), step 1 at helper `me`: one
/// fresh random mask for each other helper in `helpers` (exactly t members). Send mask `i` (its
/// `x` names the recipient) over a confidential channel and keep the list for [`repair_part`].
///
/// # Errors
/// A zero or repeated helper id, or `me` not among `helpers`.
pub fn repair_masks<R: RngCore + CryptoRng + ?Sized>(
    me: u16,
    helpers: &[u16],
    rng: &mut R,
) -> Result<Vec<Share>, ShamirError> {
    check_ids(helpers.iter().copied())?;
    if !helpers.contains(&me) {
        return Err(ShamirError::NotQualified(me));
    }
    Ok(helpers
        .iter()
        .filter(|&&h| h != me)
        .map(|&h| Share {
            x: h,
            y: Gf128::random(rng),
        })
        .collect())
}

/// Repair, step 2 at a helper: its part for newcomer `new_x`, λ·y (its Lagrange coefficient
/// at `new_x` over `helpers`, times its share) plus every mask it sent and received. The masks
/// cancel in the sum of all parts (characteristic 2), so the newcomer learns only the sum,
/// its share; the helpers learn nothing new.
///
/// # Errors
/// `new_x` zero or a helper; `my.x` not a helper; a mask count other than one per other
/// helper; a received mask addressed to another node.
pub fn repair_part(
    my: &Share,
    helpers: &[u16],
    new_x: u16,
    sent: &[Share],
    received: &[Share],
) -> Result<Share, ShamirError> {
    if new_x == 0 {
        return Err(ShamirError::ZeroId);
    }
    if helpers.contains(&new_x) {
        return Err(ShamirError::DuplicateId(new_x));
    }
    let l = lagrange_coefficients(helpers, Gf128::from_u16(new_x))?;
    let i = helpers
        .iter()
        .position(|&h| h == my.x)
        .ok_or(ShamirError::NotQualified(my.x))?;
    let others = helpers.len() - 1;
    if sent.len() != others || received.len() != others {
        return Err(ShamirError::NotEnoughShares {
            need: others,
            got: sent.len().min(received.len()),
        });
    }
    let mut y = l[i] * my.y;
    for s in sent {
        y += s.y;
    }
    for r in received {
        if r.x != my.x {
            return Err(ShamirError::WrongRecipient {
                expected: my.x,
                got: r.x,
            });
        }
        y += r.y;
    }
    Ok(Share { x: new_x, y })
}

/// Repair, step 3 at the newcomer: the sum of the helpers' parts is its share.
///
/// # Errors
/// No parts, `new_x == 0`, or a part addressed to another id.
pub fn repair_combine(new_x: u16, parts: &[Share]) -> Result<Share, ShamirError> {
    sum_for(new_x, parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn repair_gives_the_newcomer_a_share_of_the_same_secret_and_leaves_others_unchanged() {
        let mut rng = rand::rngs::OsRng;
        let secret = Gf128::random(&mut rng);
        let shares = deal(secret, 2, &[1, 2, 3], &mut rng).unwrap();
        let helpers = [1u16, 3];
        let masks: Vec<Vec<Share>> = helpers
            .iter()
            .map(|&h| repair_masks(h, &helpers, &mut rng).unwrap())
            .collect();
        let parts: Vec<Share> = helpers
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let received: Vec<Share> = masks
                    .iter()
                    .flatten()
                    .filter(|m| m.x == h)
                    .cloned()
                    .collect();
                repair_part(
                    &shares[if h == 1 { 0 } else { 2 }],
                    &helpers,
                    4,
                    &masks[i],
                    &received,
                )
                .unwrap()
            })
            .collect();
        let new = repair_combine(4, &parts).unwrap();
        assert_eq!(
            combine(&[shares[1].clone(), new.clone()], 2).unwrap(),
            secret
        );
        let all = [shares[0].clone(), shares[1].clone(), shares[2].clone(), new];
        assert!(consistent(&all, 2));
        // A part alone is masked: it is not the helper's unmasked contribution.
        let l = lagrange_coefficients(&helpers, Gf128::from_u16(4)).unwrap();
        assert_ne!(parts[0].y, l[0] * shares[0].y);
        // Misuse is refused.
        assert!(repair_masks(2, &helpers, &mut rng).is_err());
        assert!(repair_part(&shares[0], &helpers, 3, &masks[0], &masks[1]).is_err());
        assert!(repair_part(&shares[0], &helpers, 4, &masks[0], &masks[0]).is_err());
        assert!(repair_part(&shares[0], &helpers, 4, &[], &masks[1]).is_err());
    }
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    /// Runs key generation among `xs`: returns each node's key share (in the order of `xs`).
    fn keygen(xs: &[u16], t: usize, rng: &mut StdRng) -> Vec<Share> {
        let dealings: Vec<Vec<Share>> = xs
            .iter()
            .map(|_| keygen_deal(xs, t, rng).unwrap())
            .collect();
        xs.iter()
            .enumerate()
            .map(|(i, &x)| {
                let received: Vec<Share> = dealings.iter().map(|d| d[i].clone()).collect();
                keygen_combine(x, &received).unwrap()
            })
            .collect()
    }

    fn reshare(
        old: &[Share],
        qualified: &[u16],
        new_xs: &[u16],
        new_t: usize,
        rng: &mut StdRng,
    ) -> Vec<Share> {
        let dealings: Vec<Vec<Share>> = qualified
            .iter()
            .map(|q| {
                let my = old.iter().find(|s| s.x == *q).unwrap();
                reshare_deal(my, qualified, new_xs, new_t, rng).unwrap()
            })
            .collect();
        new_xs
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let received: Vec<Share> = dealings.iter().map(|d| d[i].clone()).collect();
                reshare_combine(x, &received).unwrap()
            })
            .collect()
    }

    /// Every `t`-subset of `shares` (by index), small sets only.
    fn subsets(n: usize, t: usize) -> Vec<Vec<usize>> {
        (0u32..1 << n)
            .filter(|m| m.count_ones() as usize == t)
            .map(|m| (0..n).filter(|i| m >> i & 1 == 1).collect())
            .collect()
    }

    #[test]
    fn deal_and_combine_every_subset() {
        let mut r = rng(1);
        for (n, t) in [(1, 1), (3, 1), (3, 2), (3, 3), (5, 3), (7, 4)] {
            let xs: Vec<u16> = (1..=n as u16).map(|i| i * 7 + 1).collect();
            let secret = Gf128::random(&mut r);
            let shares = deal(secret, t, &xs, &mut r).unwrap();
            assert_eq!(shares.iter().map(|s| s.x).collect::<Vec<_>>(), xs);
            assert!(consistent(&shares, t));
            for set in subsets(n, t) {
                let sub: Vec<Share> = set.iter().map(|&i| shares[i].clone()).collect();
                assert_eq!(combine(&sub, t).unwrap(), secret);
            }
        }
    }

    #[test]
    fn t_minus_one_shares_do_not_determine_the_key() {
        // Two different keys: for the same t − 1 shares there is a degree t − 1 polynomial
        // through each key, so the t − 1 shares carry no information about which it is.
        let mut r = rng(2);
        for (n, t) in [(3, 2), (5, 3), (6, 4)] {
            let xs: Vec<u16> = (1..=n as u16).collect();
            let k1 = Gf128::random(&mut r);
            let k2 = Gf128::random(&mut r);
            assert_ne!(k1, k2);
            let s1 = deal(k1, t, &xs, &mut r).unwrap();
            // The polynomial through (0, k2) and the first t − 1 shares of s1.
            let mut pts = vec![Share { x: 0, y: k2 }];
            pts.extend(s1[..t - 1].iter().cloned());
            let s2: Vec<Share> = xs
                .iter()
                .map(|&x| {
                    let px: Vec<u16> = pts.iter().map(|p| p.x).collect();
                    // Interpolation through x = 0 too: done by hand, 0 is not a node id.
                    let y = px
                        .iter()
                        .enumerate()
                        .map(|(i, &xi)| {
                            let mut l = Gf128::ONE;
                            for (j, &xj) in px.iter().enumerate() {
                                if i != j {
                                    let (xi, xj) = (Gf128::from_u16(xi), Gf128::from_u16(xj));
                                    l *= (Gf128::from_u16(x) - xj) * (xi - xj).inv().unwrap();
                                }
                            }
                            l * pts[i].y
                        })
                        .sum();
                    Share { x, y }
                })
                .collect();
            assert_eq!(s2[..t - 1], s1[..t - 1]);
            assert!(consistent(&s2, t));
            assert_eq!(combine(&s2, t).unwrap(), k2);
            assert_eq!(combine(&s1, t).unwrap(), k1);
        }
    }

    #[test]
    fn single_shares_look_uniform() {
        // With t = 2 a single share is k + a·x for uniform a: for a fixed key every bit of
        // the share is a fair coin. 4000 dealings; each bit count within ±5σ of 2000.
        let mut r = rng(3);
        let key = Gf128::from_u128(0x1234_5678);
        let mut counts = [0u32; 128];
        for _ in 0..4000 {
            let s = deal(key, 2, &[3, 5], &mut r).unwrap();
            let v = s[0].y.to_u128();
            for (i, c) in counts.iter_mut().enumerate() {
                *c += (v >> i & 1) as u32;
            }
        }
        for c in counts {
            assert!((1842..=2158).contains(&c), "bit count {c}");
        }
    }

    #[test]
    fn consistency_check_catches_a_tampered_share() {
        let mut r = rng(4);
        let xs = [1u16, 2, 3, 4];
        let mut shares = deal(Gf128::random(&mut r), 2, &xs, &mut r).unwrap();
        assert!(consistent(&shares, 2));
        assert!(consistent(&shares[..2], 2));
        shares[3].y += Gf128::ONE;
        assert!(!consistent(&shares, 2));
        assert!(consistent(&shares, 4));
        assert!(!consistent(&shares, 0));
        let dup = vec![shares[0].clone(), shares[0].clone()];
        assert!(!consistent(&dup, 1));
    }

    #[test]
    fn dkg_then_reshare_keeps_the_key() {
        let mut r = rng(5);
        let shares = keygen(&[1, 2, 3], 2, &mut r);
        let key = combine(&shares, 2).unwrap();
        assert!(consistent(&shares, 2));
        for pair in [[0, 1], [0, 2], [1, 2]] {
            let sub = [shares[pair[0]].clone(), shares[pair[1]].clone()];
            assert_eq!(combine(&sub, 2).unwrap(), key);
        }

        // (a) Node 3 leaves: {1, 2} reshare among themselves.
        let left = reshare(&shares, &[1, 2], &[1, 2], 2, &mut r);
        assert_eq!(combine(&left, 2).unwrap(), key);
        assert!(left.iter().zip(&shares).all(|(n, o)| n.y != o.y));

        // (b) Node 4 joins: {1, 2} reshare to {1, 2, 4}.
        let joined = reshare(&left, &[1, 2], &[1, 2, 4], 2, &mut r);
        assert!(consistent(&joined, 2));
        for set in subsets(3, 2) {
            let sub: Vec<Share> = set.iter().map(|&i| joined[i].clone()).collect();
            assert_eq!(combine(&sub, 2).unwrap(), key);
        }

        // The leaver's old share does not combine with new shares to the key.
        let old3 = shares[2].clone();
        for new in &joined {
            if new.x != 3 {
                let mixed = [new.clone(), old3.clone()];
                assert_ne!(combine(&mixed, 2).unwrap(), key);
                assert!(!consistent(
                    &[joined[0].clone(), joined[1].clone(), old3.clone()],
                    2
                ));
            }
        }

        // A larger qualified set (all three old nodes) works too, and so does raising t.
        let wide = reshare(&shares, &[1, 2, 3], &[1, 2, 4, 5], 3, &mut r);
        assert_eq!(combine(&wide, 3).unwrap(), key);
        assert_eq!(combine(&wide[1..], 3).unwrap(), key);
    }

    #[test]
    fn errors() {
        let mut r = rng(6);
        let k = Gf128::ONE;
        assert_eq!(deal(k, 0, &[1], &mut r), Err(ShamirError::ZeroThreshold));
        assert_eq!(
            deal(k, 3, &[1, 2], &mut r),
            Err(ShamirError::ThresholdTooLarge { t: 3, n: 2 })
        );
        assert_eq!(deal(k, 1, &[0, 2], &mut r), Err(ShamirError::ZeroId));
        assert_eq!(
            deal(k, 1, &[2, 2], &mut r),
            Err(ShamirError::DuplicateId(2))
        );
        assert_eq!(
            lagrange_coefficients(&[1, 1], Gf128::ZERO),
            Err(ShamirError::DuplicateId(1))
        );
        let s = deal(k, 2, &[1, 2, 3], &mut r).unwrap();
        assert_eq!(
            combine(&s[..1], 2),
            Err(ShamirError::NotEnoughShares { need: 2, got: 1 })
        );
        assert_eq!(combine(&s, 0), Err(ShamirError::ZeroThreshold));
        assert_eq!(
            keygen_combine(1, &s),
            Err(ShamirError::WrongRecipient {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(keygen_combine(1, &[]), Err(ShamirError::NoShares));
        assert_eq!(keygen_combine(0, &s[..1]), Err(ShamirError::ZeroId));
        assert_eq!(
            reshare_deal(&s[2], &[1, 2], &[1, 2], 2, &mut r),
            Err(ShamirError::NotQualified(3))
        );
        assert_eq!(
            reshare_deal(&s[0], &[1, 2], &[1, 2], 3, &mut r),
            Err(ShamirError::ThresholdTooLarge { t: 3, n: 2 })
        );
        assert!(keygen_deal(&[1, 2], 0, &mut r).is_err());
    }

    #[test]
    fn lagrange_at_a_node_is_a_unit_vector() {
        let xs = [3u16, 9, 200];
        let l = lagrange_coefficients(&xs, Gf128::from_u16(9)).unwrap();
        assert_eq!(l, vec![Gf128::ZERO, Gf128::ONE, Gf128::ZERO]);
        let l0 = lagrange_coefficients(&xs, Gf128::ZERO).unwrap();
        assert_eq!(l0.iter().copied().sum::<Gf128>(), Gf128::ONE);
    }

    #[test]
    fn share_is_redacted_and_serialises_as_hex() {
        let s = Share {
            x: 7,
            y: Gf128::from_u128(0x00ff_0000_0000_0000_0000_0000_0000_abcd),
        };
        assert_eq!(format!("{s:?}"), "Share(x=7, ..)");
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"x":7,"y":"00ff000000000000000000000000abcd"}"#);
        let back: Share = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let upper: Share =
            serde_json::from_str(r#"{"x":7,"y":"00FF000000000000000000000000ABCD"}"#).unwrap();
        assert_eq!(upper, s);
        for bad in [
            r#"{"x":7,"y":"00ff"}"#,
            r#"{"x":7,"y":"00ff000000000000000000000000abcg"}"#,
            r#"{"x":7,"y":"00ff000000000000000000000000abcdef"}"#,
        ] {
            assert!(serde_json::from_str::<Share>(bad).is_err(), "{bad}");
        }
        let mut z = s.clone();
        z.zeroize();
        assert_eq!(z.y, Gf128::ZERO);
        assert!(bool::from(s.ct_eq(&back)));
    }
}
