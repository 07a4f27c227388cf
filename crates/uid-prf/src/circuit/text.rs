//! The canonicalization gadgets: text, dates and decimals as boolean circuits over secret
//! bytes with a secret length. They must compute exactly what [`crate::canon`] computes on
//! their domain and report everything else through their `ok` bit, never by failing to build.

use mpc::circuit::arith::add_mod_2n;
use mpc::circuit::{Bit, Builder};

use super::bits::{
    and_all, and_not, const_num, eq_const, increment, or_all, thermometer, ByteTests, F,
};
use super::{check_bytes, check_len, CircuitError, DateOut, FieldBits, TextOut};
use crate::canon::{DateFormat, MAX_VALUE};

/// Longest input [`canon_text`] takes: the length is one byte.
pub const MAX_TEXT_INPUT: usize = 255;

/// Bits needed to write every number `0..=max`.
fn width_for(max: usize) -> usize {
    (usize::BITS - max.leading_zeros()) as usize
}

/// Canonical text in a circuit (rules: [`crate::canon`] and [`crate::circuit`]).
///
/// `bytes` holds L bytes (8·L bits, L ≤ 255), `len` the number of them that count (8 bits,
/// MSB first); bytes at positions ≥ `len` are ignored. Returns the canonical bytes
/// left-aligned and zero after the canonical length, that length, and `ok`, which is false
/// iff `len > L` or the first `len` bytes are not in [`crate::canon::in_circuit_text_domain`].
/// When `ok` is false the other outputs are unspecified.
///
/// # Errors
/// `bytes` not whole bytes or longer than 255 bytes, `len` not 8 bits.
pub fn canon_text(b: &mut Builder, bytes: &[Bit], len: &[Bit]) -> Result<TextOut, CircuitError> {
    let l = check_bytes("text bytes", bytes, MAX_TEXT_INPUT)?;
    check_len(len)?;
    let (gt, _) = thermometer(b, len, l + 1, false);
    let valid = &gt[..l];
    let overflow = gt[l];

    // Per-byte classification.
    let mut tests: Vec<ByteTests> = bytes.chunks(8).map(ByteTests::new).collect();
    let mut sp = Vec::with_capacity(l);
    let mut c3 = Vec::with_capacity(l);
    let mut x9f = Vec::with_capacity(l);
    let mut cont = Vec::with_capacity(l);
    let mut ascii_ok = Vec::with_capacity(l);
    let mut ascii_upper = Vec::with_capacity(l);
    let mut l1_upper_if_cont = Vec::with_capacity(l);
    for t in tests.iter_mut() {
        let (b7, b6, b5) = (t.bit(0), t.bit(1), t.bit(2));
        sp.push(t.is(b, 0x20));
        c3.push(t.is(b, 0xc3));
        let is9f = t.is(b, 0x9f);
        x9f.push(is9f);
        cont.push(and_not(b, b7, b6));
        // Printable ASCII minus 0x7F, `"` and `\`.
        let hi_ok = b.or(b6, b5);
        let excluded = [t.is(b, 0x7f), t.is(b, 0x22), t.is(b, 0x5c)];
        let any_excluded = or_all(b, &excluded);
        let nb7 = b.not(b7);
        let nx = b.not(any_excluded);
        ascii_ok.push(and_all(b, &[nb7, hi_ok, nx]));
        // 0x41..=0x5A: high nibble 4 with a nonzero low nibble, or 5 with low ≤ 0xA.
        let lo0 = t.lo_is(b, 0);
        let (b3, b2, b1, b0) = (t.bit(4), t.bit(5), t.bit(6), t.bit(7));
        let b10 = b.and(b1, b0);
        let b210 = b.or(b2, b10);
        let lo_ge11 = b.and(b3, b210);
        let h4 = t.hi_is(b, 4);
        let h5 = t.hi_is(b, 5);
        let up4 = and_not(b, h4, lo0);
        let up5 = and_not(b, h5, lo_ge11);
        ascii_upper.push(b.xor(up4, up5));
        let nb5 = b.not(b5);
        // After C3 (so the byte is 80..=BF in the domain): 80..=9E except 97.
        let is97 = t.is(b, 0x97);
        let n97 = b.not(is97);
        let n9f = b.not(is9f);
        l1_upper_if_cont.push(and_all(b, &[nb5, n97, n9f]));
    }

    // Domain check and the byte mapping (one output byte per input byte).
    let mut bad = vec![overflow];
    let mut mapped: Vec<Vec<Bit>> = Vec::with_capacity(l);
    for i in 0..l {
        let prev_c3 = if i > 0 { c3[i - 1] } else { F };
        let (next_cont, next_valid, next_9f) = if i + 1 < l {
            (cont[i + 1], valid[i + 1], x9f[i + 1])
        } else {
            (F, F, F)
        };
        let lead_ok = and_all(b, &[c3[i], next_cont, next_valid]);
        let cont_ok = b.and(cont[i], prev_c3);
        // The three cases are exclusive (ASCII, C3, 80..=BF).
        let okc = b.xor(ascii_ok[i], lead_ok);
        let okc = b.xor(okc, cont_ok);
        bad.push(and_not(b, valid[i], okc));

        let l1 = b.and(l1_upper_if_cont[i], prev_c3);
        let set5 = b.xor(ascii_upper[i], l1);
        let ss_lead = b.and(c3[i], next_9f);
        let ss_cont = b.and(x9f[i], prev_c3);
        let byte = &bytes[8 * i..8 * i + 8];
        // C3 ⊕ B0 = 73 ('s') for the lead of ß, 9F ⊕ EC = 73 for its second byte.
        let m: Vec<Bit> = (0..8)
            .map(|k| {
                let mut x = byte[k];
                if k == 2 {
                    x = b.xor(x, set5);
                }
                if (0xb0u8 >> (7 - k)) & 1 == 1 {
                    x = b.xor(x, ss_lead);
                }
                if (0xecu8 >> (7 - k)) & 1 == 1 {
                    x = b.xor(x, ss_cont);
                }
                x
            })
            .collect();
        mapped.push(m);
    }
    let any_bad = or_all(b, &bad);
    let ok = b.not(any_bad);

    // Which bytes survive whitespace collapsing: non-spaces, and a space that follows a
    // non-space and precedes one (nsv = valid non-space).
    let nsv: Vec<Bit> = (0..l).map(|i| and_not(b, valid[i], sp[i])).collect();
    let mut after = vec![F; l];
    for i in (0..l.saturating_sub(1)).rev() {
        after[i] = b.or(after[i + 1], nsv[i + 1]);
    }
    let keep: Vec<Bit> = (0..l)
        .map(|i| {
            if i == 0 {
                return nsv[0];
            }
            let first_of_run = and_not(b, sp[i], sp[i - 1]);
            let inner = b.and(first_of_run, after[i]);
            b.xor(nsv[i], inner)
        })
        .collect();

    // Dropped bytes before each position (LSB-first counters) and the compaction.
    let shift_bits = width_for(l.saturating_sub(1));
    let count_bits = width_for(l);
    let mut d = vec![F; count_bits];
    let mut slots: Vec<Vec<Bit>> = Vec::with_capacity(l);
    for i in 0..l {
        // A slot: the 8 data bits (MSB first), then its remaining shift (LSB first).
        let mut slot: Vec<Bit> = mapped[i].iter().map(|&x| b.and(x, keep[i])).collect();
        slot.extend(d[..shift_bits].iter().map(|&x| b.and(x, keep[i])));
        slots.push(slot);
        let dropped = b.not(keep[i]);
        d = increment(b, &d, dropped);
    }
    let data = compact(b, slots, shift_bits);

    // Canonical length = L − dropped = (L + 1) + ¬dropped (mod 256).
    let mut dropped8 = const_num(0, 8usize.saturating_sub(count_bits));
    dropped8.extend(d.iter().rev());
    let not_dropped: Vec<Bit> = dropped8.iter().map(|&x| b.not(x)).collect();
    let out_len = add_mod_2n(b, &const_num((l as u64 + 1) % 256, 8), &not_dropped)?;

    Ok(TextOut {
        bytes: data,
        len: out_len,
        ok,
    })
}

/// Stable compaction: each slot is 8 data bits followed by its shift amount (LSB first,
/// `shift_bits` bits); empty slots are all zero. Stage k moves a slot left by 2^k when bit k
/// of its shift is set. Kept elements never collide: for kept i < j the dropped count
/// between them is below j − i, and so is the difference of their partial shifts at every
/// stage. Returns the data bits of the slots, in order.
fn compact(b: &mut Builder, mut slots: Vec<Vec<Bit>>, shift_bits: usize) -> Vec<Bit> {
    for k in 0..shift_bits {
        let step = 1usize << k;
        // What moves (masked by the shift bit; that bit itself is spent) and what stays.
        let mut moving = Vec::with_capacity(slots.len());
        let mut staying = Vec::with_capacity(slots.len());
        for s in &slots {
            let sel = s[8 + k];
            let mut mv = Vec::with_capacity(s.len());
            let mut st = Vec::with_capacity(s.len());
            for (j, &x) in s.iter().enumerate() {
                if j >= 8 && j <= 8 + k {
                    // Spent shift bits are dropped (kept as constant zero for indexing).
                    mv.push(F);
                    st.push(F);
                    continue;
                }
                let m = b.and(x, sel);
                mv.push(m);
                st.push(b.xor(x, m));
            }
            moving.push(mv);
            staying.push(st);
        }
        for (p, st) in staying.iter_mut().enumerate() {
            if let Some(mv) = moving.get(p + step) {
                for (x, &m) in st.iter_mut().zip(mv) {
                    *x = b.xor(*x, m);
                }
            }
        }
        slots = staying;
    }
    slots.into_iter().flat_map(|s| s[..8].to_vec()).collect()
}

/// A canonical date in a circuit: the date in format `f` at the start of `bytes` (L ≥
/// `f.len()` bytes) with length `len`. Returns the 10 bytes `YYYY-MM-DD` (80 bits) and `ok`,
/// true iff `len == f.len()` and the first `f.len()` bytes are valid as in
/// [`crate::canon::canon_date`] (digits, separators, month 01–12, day 01–31, no days-in-month
/// check). When `ok` is false `iso` is unspecified.
///
/// # Errors
/// `bytes` not whole bytes or shorter than the format, `len` not 8 bits.
pub fn canon_date(
    b: &mut Builder,
    bytes: &[Bit],
    len: &[Bit],
    f: DateFormat,
) -> Result<DateOut, CircuitError> {
    let l = check_bytes("date bytes", bytes, usize::MAX)?;
    check_len(len)?;
    if l < f.len() {
        return Err(CircuitError::Width {
            what: "date bytes",
            expected: 8 * f.len(),
            got: bytes.len(),
        });
    }
    let mut conds = vec![eq_const(b, len, f.len() as u64)];
    let (mut y, mut m, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for (i, pc) in f.pattern().bytes().enumerate() {
        let byte = &bytes[8 * i..8 * i + 8];
        let mut t = ByteTests::new(byte);
        match pc {
            b'Y' | b'M' | b'D' => {
                // 0x30..=0x39: high nibble 3, low nibble ≤ 9 (¬b3 ∨ ¬b2 ∧ ¬b1).
                let hi = t.hi_is(b, 3);
                let b21 = b.or(t.bit(5), t.bit(6));
                let gt9 = b.and(t.bit(4), b21);
                conds.push(and_not(b, hi, gt9));
                match pc {
                    b'Y' => y.push(byte),
                    b'M' => m.push(byte),
                    _ => d.push(byte),
                }
            }
            sep => conds.push(t.is(b, sep)),
        }
    }
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        // The patterns are constants of this crate; this cannot happen.
        return Err(CircuitError::Width {
            what: "date pattern digits",
            expected: 8,
            got: y.len() + m.len() + d.len(),
        });
    }
    // Digit values are the low nibbles; with both digits known to be 0–9:
    // month: 0[1-9] | 1[0-2]; day: 0[1-9] | [12][0-9] | 3[01].
    let nib = |x: &[Bit]| x[4..].to_vec();
    let (m1, m2, d1, d2) = (nib(m[0]), nib(m[1]), nib(d[0]), nib(d[1]));
    let m1_0 = eq_const(b, &m1, 0);
    let m1_1 = eq_const(b, &m1, 1);
    let m2_0 = eq_const(b, &m2, 0);
    let m2_gt2 = b.or(m2[0], m2[1]);
    let m2_b10 = b.and(m2[2], m2[3]);
    let m2_gt2 = b.or(m2_gt2, m2_b10);
    let month_a = and_not(b, m1_0, m2_0);
    let month_b = and_not(b, m1_1, m2_gt2);
    conds.push(b.xor(month_a, month_b));
    let d1_0 = eq_const(b, &d1, 0);
    let d1_1 = eq_const(b, &d1, 1);
    let d1_2 = eq_const(b, &d1, 2);
    let d1_3 = eq_const(b, &d1, 3);
    let d2_0 = eq_const(b, &d2, 0);
    let d2_gt1 = or_all(b, &d2[..3]);
    let day_a = and_not(b, d1_0, d2_0);
    let day_c = and_not(b, d1_3, d2_gt1);
    let day = b.xor(day_a, d1_1);
    let day = b.xor(day, d1_2);
    conds.push(b.xor(day, day_c));
    let ok = and_all(b, &conds);

    let dash = mpc::circuit::const_bits(b"-");
    let mut iso = Vec::with_capacity(80);
    for byte in &y {
        iso.extend_from_slice(byte);
    }
    iso.extend_from_slice(&dash);
    for byte in &m {
        iso.extend_from_slice(byte);
    }
    iso.extend_from_slice(&dash);
    for byte in &d {
        iso.extend_from_slice(byte);
    }
    Ok(DateOut { iso, ok })
}

/// Longest string [`parse_decimal`] accepts: 12 integer digits, the point, 6 decimals.
const DECIMAL_MAX_LEN: usize = 19;
/// Width of the value: 999 999 999 999 999 999 < 2^60.
const DECIMAL_BITS: usize = 60;

/// `10·x` for a [`DECIMAL_BITS`]-bit MSB-first value (mod 2^60): (x≪3) + (x≪1).
fn times10(b: &mut Builder, x: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    let shl = |k: usize| -> Vec<Bit> {
        let mut v = x[k..].to_vec();
        v.extend(std::iter::repeat(F).take(k));
        v
    };
    Ok(add_mod_2n(b, &shl(3), &shl(1))?)
}

/// A decimal in a circuit: matches `[0-9]{1,12}(\.[0-9]{1,6})?` on the first `len` bytes of
/// `bytes` and returns the value × 10^6 as 64 bits MSB first, and `ok` (as
/// [`crate::canon::parse_decimal`] returning `Some`). When `ok` is false the value is
/// unspecified.
///
/// Computes the number formed by all digits (Horner, skipping the point and positions past
/// `len`), then multiplies by 10 once for each of the 6 decimal places the input leaves
/// out: with a point at p, the input has at least j decimals iff `len > p + j`.
///
/// # Errors
/// `bytes` not whole bytes, `len` not 8 bits.
pub fn parse_decimal(
    b: &mut Builder,
    bytes: &[Bit],
    len: &[Bit],
) -> Result<(Vec<Bit>, Bit), CircuitError> {
    let l = check_bytes("decimal bytes", bytes, usize::MAX)?;
    check_len(len)?;
    let n = l.min(DECIMAL_MAX_LEN);
    // gt[v] = len > v for v ≤ n; gt[n] means "too long".
    let (gt, _) = thermometer(b, len, n + 1, false);
    let gt_at = |v: usize| if v <= n { gt[v] } else { F };
    let mut bad = vec![gt[n], b.not(gt[0])];

    let mut digit = Vec::with_capacity(n);
    let mut dot = Vec::with_capacity(n);
    for byte in bytes.chunks(8).take(n) {
        let mut t = ByteTests::new(byte);
        let hi = t.hi_is(b, 3);
        let b21 = b.or(t.bit(5), t.bit(6));
        let gt9 = b.and(t.bit(4), b21);
        digit.push(and_not(b, hi, gt9));
        dot.push(t.is(b, b'.'));
    }
    // dots[i]: a point at i within len; seen[i]: a point before i.
    let dots: Vec<Bit> = (0..n).map(|i| b.and(gt[i], dot[i])).collect();
    let mut seen = vec![F; n + 1];
    for i in 0..n {
        seen[i + 1] = b.or(seen[i], dots[i]);
    }
    for i in 0..n {
        // Neither digit nor point (the two are exclusive).
        let dd = b.xor(digit[i], dot[i]);
        bad.push(and_not(b, gt[i], dd));
        // A second point.
        bad.push(b.and(dots[i], seen[i]));
        // A point at the end.
        bad.push(and_not(b, dots[i], gt_at(i + 1)));
        // A 13th integer digit.
        if i >= 12 {
            bad.push(and_not(b, gt[i], seen[i + 1]));
        }
        // A 7th decimal.
        if i >= 7 {
            bad.push(b.and(gt[i], seen[i - 6]));
        }
    }
    if n > 0 {
        // A point first.
        bad.push(dots[0]);
    }
    let any_bad = or_all(b, &bad);
    let ok = b.not(any_bad);

    // Horner over the digits within len.
    let mut acc = vec![F; DECIMAL_BITS];
    for i in 0..n {
        let take = and_not(b, gt[i], dot[i]);
        let mut dv = vec![F; DECIMAL_BITS - 4];
        dv.extend_from_slice(&bytes[8 * i + 4..8 * i + 8]);
        let t = times10(b, &acc)?;
        let next = add_mod_2n(b, &t, &dv)?;
        acc = acc
            .iter()
            .zip(&next)
            .map(|(&a, &x)| b.mux(take, a, x))
            .collect();
    }
    // Scale: ×10 for each j in 1..=6 with fewer than j decimals.
    for j in 1..=6 {
        let terms: Vec<Bit> = (0..n).map(|p| b.and(dots[p], gt_at(p + j))).collect();
        // At most one point when ok: the OR of exclusive terms is their XOR.
        let has_j = terms.iter().fold(F, |acc, &x| b.xor(acc, x));
        let t = times10(b, &acc)?;
        acc = acc
            .iter()
            .zip(&t)
            .map(|(&a, &x)| b.mux(has_j, x, a))
            .collect();
    }
    let mut value = vec![F; 64 - DECIMAL_BITS];
    value.extend(acc);
    Ok((value, ok))
}

impl DateOut {
    /// The field as the nullifier takes it: the 10 ISO bytes zero-padded to
    /// [`MAX_VALUE`] bytes, length 10.
    pub fn field_bits(&self) -> FieldBits {
        let mut bytes = self.iso.clone();
        bytes.resize(8 * MAX_VALUE, F);
        FieldBits {
            bytes,
            len: const_num(10, 8),
        }
    }
}
