//! Canonical PII and the nullifier message: the plaintext reference that the garbled circuits
//! in [`crate::circuit`] must match bit for bit. It runs only where the PII already is (the
//! client, tests); it must never run on a node, log a value, or keep a copy it does not return.
//!
//! # Text fields — [`canon_text`]
//! 1. Unicode NFC;
//! 2. full default case folding (Unicode `CaseFolding.txt`, statuses C + F, as
//!    `caseless::default_case_fold_str`);
//! 3. NFC again;
//! 4. every maximal run of `White_Space` characters (Rust's [`char::is_whitespace`]) replaced
//!    by one U+0020;
//! 5. a leading and a trailing U+0020 removed.
//!
//! The circuit implements this only on a byte domain ([`in_circuit_text_domain`]): printable
//! ASCII 0x20–0x7E except `\` (0x5C) and `"` (0x22), and the two-byte UTF-8 sequences
//! C3 80–C3 BF (U+00C0–U+00FF). On that domain the rules above reduce to byte rules:
//! A–Z → a–z; C3 80–C3 9E except C3 97 (×) → second byte + 0x20 (À → à, …, Þ → þ);
//! C3 9F (ß) → `ss`; every other byte unchanged (nothing composes or decomposes, and the only
//! whitespace is 0x20); runs of 0x20 collapsed and trimmed. The tests check this claim for
//! every character and every pair of characters of the domain and for random strings.
//!
//! # Date fields — [`canon_date`]
//! A [`DateFormat`] is a pattern of exactly 8 or 10 bytes: `Y`, `M`, `D` stand for one ASCII
//! digit each, any other byte must appear literally. A date is valid iff it has exactly the
//! pattern's length, a digit at every `Y`/`M`/`D` place, the literal separators elsewhere,
//! month 01–12 and day 01–31. There is deliberately **no days-in-month or leap-year check**
//! (2023-02-31 is accepted): the circuit applies exactly these rules, no more. The canonical
//! form is `YYYY-MM-DD` (10 bytes). [`detect_date_format`] tries the formats in the order of
//! [`DateFormat::ALL`] and returns the first that parses, so `01/02/2000` is `DD/MM/YYYY`
//! (1 February) and `MM/DD/YYYY` is chosen only when the day/month reading is invalid.
//!
//! # Decimals — [`parse_decimal`]
//! Exactly `[0-9]{1,12}(\.[0-9]{1,6})?` (ASCII; no sign, exponent, spaces or thousands
//! separators), read as a fixed-point value × 10^6 in a `u64`. Leading zeros are allowed
//! (`007.5` = 7 500 000).
//!
//! # Nullifier message — [`nullifier_message`], [`nullifier`]
//! A fixed layout, so that the circuit hashes a message of public length:
//! `b"tessera-uid-v1\0\0"` (16 bytes), then per field: kind byte ([`FieldKind::tag`]: 1 text,
//! 2 date — the same for every date format), canonical length (1 byte), canonical bytes
//! zero-padded to [`MAX_VALUE`] (64); then the scope length (1 byte) and the scope bytes
//! zero-padded to [`MAX_SCOPE`] (64). 1 to [`MAX_FIELDS`] fields, scope 1 to 64 bytes. The
//! nullifier is HMAC-SHA256 with the 16 bytes [`Gf128::to_bytes`] of the key as HMAC key.

use std::fmt;
use std::str::FromStr;

use caseless::Caseless;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::gf128::Gf128;

/// Maximum canonical length of one field value, in bytes.
pub const MAX_VALUE: usize = 64;
/// Maximum length of the scope, in bytes.
pub const MAX_SCOPE: usize = 64;
/// Maximum number of fields in one nullifier.
pub const MAX_FIELDS: usize = 8;
/// The first 16 bytes of every nullifier message (domain separation and version).
pub const DOMAIN: &[u8; 16] = b"tessera-uid-v1\0\0";

/// The canonical form of a text field (see the module doc for the exact rules).
///
/// Intermediate text is not stored: normalization, folding and normalization run as one
/// character stream, and the result is allocated once at its exact length.
pub fn canon_text(s: &str) -> String {
    fn stream(s: &str) -> impl Iterator<Item = char> + '_ {
        let mut pending_space = false;
        let mut started = false;
        s.nfc()
            .default_case_fold()
            .nfc()
            .flat_map(move |c| {
                if c.is_whitespace() {
                    pending_space = started;
                    [None, None]
                } else {
                    let sp = pending_space.then_some(' ');
                    pending_space = false;
                    started = true;
                    [sp, Some(c)]
                }
            })
            .flatten()
    }
    let len: usize = stream(s).map(char::len_utf8).sum();
    let mut out = String::with_capacity(len);
    out.extend(stream(s));
    out
}

/// Whether the circuit's text canonicalizer accepts `s`: printable ASCII 0x20–0x7E except
/// `\` and `"`, and the two-byte sequences C3 80–C3 BF; anything else (a lone C3, a lone
/// continuation byte, other UTF-8, control characters) is outside the domain.
pub fn in_circuit_text_domain(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if (0x20..=0x7e).contains(&c) && c != b'\\' && c != b'"' {
            i += 1;
        } else if c == 0xc3 && s.get(i + 1).is_some_and(|n| (0x80..=0xbf).contains(n)) {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

/// An input date format (see the module doc). `Display`, `FromStr` and serde use the pattern
/// string (`"DD.MM.YYYY"`); serde also accepts the variant name (`"DayDot"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DateFormat {
    /// `YYYY-MM-DD` (ISO 8601, also the canonical form).
    #[serde(rename = "YYYY-MM-DD", alias = "Iso")]
    Iso,
    /// `YYYYMMDD`.
    #[serde(rename = "YYYYMMDD", alias = "Compact")]
    Compact,
    /// `YYYY/MM/DD`.
    #[serde(rename = "YYYY/MM/DD", alias = "YearSlash")]
    YearSlash,
    /// `DD.MM.YYYY`.
    #[serde(rename = "DD.MM.YYYY", alias = "DayDot")]
    DayDot,
    /// `DD/MM/YYYY`.
    #[serde(rename = "DD/MM/YYYY", alias = "DaySlash")]
    DaySlash,
    /// `MM/DD/YYYY`.
    #[serde(rename = "MM/DD/YYYY", alias = "MonthSlash")]
    MonthSlash,
}

impl DateFormat {
    /// Every format, in the order [`detect_date_format`] tries them.
    pub const ALL: [DateFormat; 6] = [
        DateFormat::Iso,
        DateFormat::Compact,
        DateFormat::YearSlash,
        DateFormat::DayDot,
        DateFormat::DaySlash,
        DateFormat::MonthSlash,
    ];

    /// The pattern: `Y`, `M`, `D` are digit places, other bytes literal separators.
    pub const fn pattern(self) -> &'static str {
        match self {
            DateFormat::Iso => "YYYY-MM-DD",
            DateFormat::Compact => "YYYYMMDD",
            DateFormat::YearSlash => "YYYY/MM/DD",
            DateFormat::DayDot => "DD.MM.YYYY",
            DateFormat::DaySlash => "DD/MM/YYYY",
            DateFormat::MonthSlash => "MM/DD/YYYY",
        }
    }

    /// The exact length in bytes of a date in this format (8 or 10).
    #[allow(clippy::len_without_is_empty)] // a pattern is never empty
    pub const fn len(self) -> usize {
        self.pattern().len()
    }
}

impl fmt::Display for DateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.pattern())
    }
}

/// A string that is not one of the [`DateFormat`] patterns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown date format {0:?}; expected one of YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD, DD.MM.YYYY, DD/MM/YYYY, MM/DD/YYYY")]
pub struct UnknownDateFormat(pub String);

impl FromStr for DateFormat {
    type Err = UnknownDateFormat;
    fn from_str(s: &str) -> Result<DateFormat, UnknownDateFormat> {
        DateFormat::ALL
            .into_iter()
            .find(|f| f.pattern() == s)
            .ok_or_else(|| UnknownDateFormat(s.to_owned()))
    }
}

/// The canonical `YYYY-MM-DD` form of `s` read in format `f`, or `None` if `s` is not a valid
/// date in that format (rules in the module doc; no days-in-month check).
pub fn canon_date(s: &str, f: DateFormat) -> Option<String> {
    let (s, p) = (s.as_bytes(), f.pattern().as_bytes());
    if s.len() != p.len() {
        return None;
    }
    let mut out = Zeroizing::new([b'-'; 10]);
    let (mut y, mut m, mut d) = (0, 5, 8);
    for (&c, &pc) in s.iter().zip(p) {
        let slot = match pc {
            b'Y' => &mut y,
            b'M' => &mut m,
            b'D' => &mut d,
            sep if c == sep => continue,
            _ => return None,
        };
        if !c.is_ascii_digit() {
            return None;
        }
        out[*slot] = c;
        *slot += 1;
    }
    let two = |i: usize| (out[i] - b'0') * 10 + (out[i + 1] - b'0');
    if !(1..=12).contains(&two(5)) || !(1..=31).contains(&two(8)) {
        return None;
    }
    // All ten bytes are ASCII digits or '-'.
    Some(out.iter().map(|&b| char::from(b)).collect())
}

/// The first format of [`DateFormat::ALL`] in which `s` is a valid date. `DD/MM/YYYY` wins
/// over `MM/DD/YYYY` whenever both read `s` as valid.
pub fn detect_date_format(s: &str) -> Option<DateFormat> {
    DateFormat::ALL
        .into_iter()
        .find(|&f| canon_date(s, f).is_some())
}

/// Parses `[0-9]{1,12}(\.[0-9]{1,6})?` as value × 10^6; `None` for anything else.
pub fn parse_decimal(s: &str) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits =
        |t: &str, max: usize| (1..=max).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_digit());
    if !digits(int, 12) {
        return None;
    }
    let value = |t: &str| {
        t.bytes()
            .fold(0u64, |acc, c| acc * 10 + u64::from(c - b'0'))
    };
    let mut v = value(int) * 1_000_000;
    if let Some(f) = frac {
        if !digits(f, 6) {
            return None;
        }
        v += value(f) * 10u64.pow(6 - f.len() as u32);
    }
    Some(v)
}

/// What a nullifier field holds; the tag goes into the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldKind {
    /// Free text, canonicalized by [`canon_text`].
    Text,
    /// A date written in the given format, canonicalized by [`canon_date`] to `YYYY-MM-DD`.
    Date(DateFormat),
}

impl FieldKind {
    /// The kind byte of the message: 1 for text, 2 for a date (whatever its input format).
    pub const fn tag(self) -> u8 {
        match self {
            FieldKind::Text => 1,
            FieldKind::Date(_) => 2,
        }
    }
}

/// Why a nullifier message cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NullifierError {
    /// A nullifier over nothing would be the same for everyone.
    #[error("a nullifier needs at least one field")]
    NoFields,
    /// More fields than the layout allows.
    #[error("{0} fields given; a nullifier takes at most {max}", max = MAX_FIELDS)]
    TooManyFields(usize),
    /// A canonical value longer than [`MAX_VALUE`] bytes.
    #[error("field {index} is {len} bytes after canonicalization; at most {max} are allowed", max = MAX_VALUE)]
    ValueTooLong {
        /// Position of the field.
        index: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// A value that is not the canonical form of itself (text) or not `YYYY-MM-DD` (date).
    #[error("field {index} is not canonical; pass it through canon_text / canon_date first")]
    NotCanonical {
        /// Position of the field.
        index: usize,
    },
    /// The scope separates nullifiers of different relying parties; it cannot be empty.
    #[error("the scope is empty")]
    EmptyScope,
    /// A scope longer than [`MAX_SCOPE`] bytes.
    #[error("the scope is {0} bytes; at most {max} are allowed", max = MAX_SCOPE)]
    ScopeTooLong(usize),
}

/// Length in bytes of the message for `n_fields` fields: 16 + 66·n + 65.
pub const fn message_len(n_fields: usize) -> usize {
    DOMAIN.len() + n_fields * (2 + MAX_VALUE) + 1 + MAX_SCOPE
}

/// The nullifier message for already canonical field values (layout in the module doc).
/// A text value must satisfy `canon_text(v) == v`, a date value must be `YYYY-MM-DD` as
/// returned by [`canon_date`] (whatever the field's input format).
///
/// # Errors
/// No fields, more than [`MAX_FIELDS`], a value longer than [`MAX_VALUE`] bytes or not
/// canonical, an empty scope or one longer than [`MAX_SCOPE`] bytes.
pub fn nullifier_message(
    fields: &[(FieldKind, &str)],
    scope: &str,
) -> Result<Vec<u8>, NullifierError> {
    if fields.is_empty() {
        return Err(NullifierError::NoFields);
    }
    if fields.len() > MAX_FIELDS {
        return Err(NullifierError::TooManyFields(fields.len()));
    }
    if scope.is_empty() {
        return Err(NullifierError::EmptyScope);
    }
    if scope.len() > MAX_SCOPE {
        return Err(NullifierError::ScopeTooLong(scope.len()));
    }
    for (index, (kind, v)) in fields.iter().enumerate() {
        if v.len() > MAX_VALUE {
            return Err(NullifierError::ValueTooLong {
                index,
                len: v.len(),
            });
        }
        let canonical = match kind {
            FieldKind::Text => *Zeroizing::new(canon_text(v)) == **v,
            FieldKind::Date(_) => canon_date(v, DateFormat::Iso)
                .map(Zeroizing::new)
                .is_some_and(|c| *c == **v),
        };
        if !canonical {
            return Err(NullifierError::NotCanonical { index });
        }
    }
    let mut m = Vec::with_capacity(message_len(fields.len()));
    m.extend_from_slice(DOMAIN);
    for (kind, v) in fields {
        m.push(kind.tag());
        m.push(v.len() as u8);
        m.extend_from_slice(v.as_bytes());
        m.resize(m.len() + MAX_VALUE - v.len(), 0);
    }
    m.push(scope.len() as u8);
    m.extend_from_slice(scope.as_bytes());
    m.resize(m.len() + MAX_SCOPE - scope.len(), 0);
    debug_assert_eq!(m.len(), message_len(fields.len()));
    Ok(m)
}

/// The nullifier: HMAC-SHA256 keyed with `key.to_bytes()` over [`nullifier_message`].
///
/// # Errors
/// As [`nullifier_message`].
pub fn nullifier(
    key: &Gf128,
    fields: &[(FieldKind, &str)],
    scope: &str,
) -> Result<[u8; 32], NullifierError> {
    let msg = Zeroizing::new(nullifier_message(fields, scope)?);
    // A 16-byte HMAC key is zero-padded to the 64-byte block by definition (RFC 2104), so
    // the block-sized constructor needs no fallible length check.
    let mut k = Zeroizing::new([0u8; 64]);
    k[..16].copy_from_slice(&key.to_bytes());
    let mut mac = <Hmac<Sha256> as Mac>::new(
        hmac::digest::generic_array::GenericArray::from_slice(&k[..]),
    );
    mac.update(&msg);
    Ok(mac.finalize().into_bytes().into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The specification written as separate string passes, to check the streaming version.
    fn canon_text_spec(s: &str) -> String {
        let a: String = s.nfc().collect();
        let b = caseless::default_case_fold_str(&a);
        let c: String = b.nfc().collect();
        c.split(char::is_whitespace)
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The circuit's byte rules (module doc), for strings in the circuit domain.
    fn canon_domain_bytes(s: &[u8]) -> Vec<u8> {
        let mut mapped = Vec::new();
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'A'..=b'Z' => mapped.push(s[i] + 0x20),
                0xc3 => {
                    match s[i + 1] {
                        0x9f => mapped.extend(b"ss"),
                        c @ 0x80..=0x9e if c != 0x97 => mapped.extend([0xc3, c + 0x20]),
                        c => mapped.extend([0xc3, c]),
                    }
                    i += 1;
                }
                c => mapped.push(c),
            }
            i += 1;
        }
        let mut out = Vec::new();
        for w in mapped.split(|&c| c == b' ').filter(|w| !w.is_empty()) {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(w);
        }
        out
    }

    /// Every character of the circuit domain, as UTF-8.
    fn domain_chars() -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = (0x20..=0x7eu8)
            .filter(|&c| c != b'\\' && c != b'"')
            .map(|c| vec![c])
            .collect();
        v.extend((0x80..=0xbfu8).map(|c| vec![0xc3, c]));
        v
    }

    #[test]
    fn text_examples() {
        assert_eq!(canon_text("  Alice \t SMITH\n"), "alice smith");
        assert_eq!(canon_text("Straße"), "strasse");
        assert_eq!(canon_text("ÀÉÎÕÜ"), "àéîõü");
        // NFD input composes first.
        assert_eq!(canon_text("E\u{301}MILE"), "émile");
        // NBSP, ideographic space and line separators are White_Space.
        assert_eq!(canon_text("a\u{a0}\u{3000}b\u{2028}c"), "a b c");
        assert_eq!(canon_text("ǅ"), "ǆ");
        assert_eq!(canon_text(""), "");
        assert_eq!(canon_text(" \t\n "), "");
        assert_eq!(canon_text("×"), "×");
        assert_eq!(canon_text("ΣΑΣ"), "σασ");
        assert_eq!(canon_text("İ"), "i\u{307}");
    }

    #[test]
    fn streaming_matches_the_pass_by_pass_spec() {
        let samples = [
            "Alice  SMITH",
            " alice smith ",
            "ﬃ Straße ǅ \u{1E9E}",
            "e\u{301}\u{327} \u{345}Ω",
            "\u{1FC3}\u{0390} x",
            "\u{2000}\u{2001} a\u{85}b\u{180e}c",
        ];
        for s in samples {
            assert_eq!(canon_text(s), canon_text_spec(s), "{s:?}");
        }
        let mut rng = StdRng::seed_from_u64(1);
        let pool: Vec<char> = "aZ ßẞİıΣσςﬀ\u{301}\u{345}\u{a0}\u{3000}\tÅÅΩΩǅ\u{1FC3}"
            .chars()
            .collect();
        for _ in 0..2000 {
            let s: String = (0..rng.gen_range(0..12))
                .map(|_| {
                    if rng.gen_bool(0.2) {
                        char::from_u32(rng.gen_range(0..0x3000)).unwrap_or('x')
                    } else {
                        pool[rng.gen_range(0..pool.len())]
                    }
                })
                .collect();
            assert_eq!(canon_text(&s), canon_text_spec(&s), "{s:?}");
        }
    }

    #[test]
    fn circuit_byte_rules_equal_canon_text_on_every_char_and_pair() {
        let chars = domain_chars();
        assert_eq!(chars.len(), 93 + 64);
        for a in &chars {
            assert!(in_circuit_text_domain(a));
            let s = std::str::from_utf8(a).unwrap();
            assert_eq!(canon_text(s).as_bytes(), canon_domain_bytes(a), "{s:?}");
            for b in &chars {
                let ab = [a.as_slice(), b].concat();
                let s = std::str::from_utf8(&ab).unwrap();
                assert_eq!(canon_text(s).as_bytes(), canon_domain_bytes(&ab), "{s:?}");
            }
        }
    }

    #[test]
    fn circuit_byte_rules_equal_canon_text_on_random_strings() {
        let chars = domain_chars();
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..5000 {
            let n = rng.gen_range(0..40);
            let s: Vec<u8> = (0..n)
                .flat_map(|_| {
                    if rng.gen_bool(0.3) {
                        vec![b' ']
                    } else {
                        chars[rng.gen_range(0..chars.len())].clone()
                    }
                })
                .collect();
            assert!(in_circuit_text_domain(&s));
            let t = std::str::from_utf8(&s).unwrap();
            assert_eq!(canon_text(t).as_bytes(), canon_domain_bytes(&s), "{t:?}");
            // Canonical text is a fixed point, and stays in the domain.
            let c = canon_text(t);
            assert_eq!(canon_text(&c), c);
            assert!(in_circuit_text_domain(c.as_bytes()));
        }
    }

    #[test]
    fn domain_membership() {
        assert!(in_circuit_text_domain(b""));
        assert!(in_circuit_text_domain(b"   "));
        assert!(in_circuit_text_domain(
            "Müller-Lüdenscheidt ß × ÿ".as_bytes()
        ));
        for bad in [
            &b"a\\b"[..],
            b"\"",
            b"\x7f",
            b"\x1f",
            b"\t",
            b"\xc3",
            b"a\xc3",
            b"\xc3\xc3\x80",
            b"\x80",
            b"\xc3\x80\x80",
            b"\xc3\xc0",
            b"\xc2\xa0",
            "€".as_bytes(),
            "ẞ".as_bytes(),
        ] {
            assert!(!in_circuit_text_domain(bad), "{bad:x?}");
        }
    }

    #[test]
    fn dates() {
        use DateFormat::*;
        let ok = [
            ("1990-04-01", Iso),
            ("19900401", Compact),
            ("1990/04/01", YearSlash),
            ("01.04.1990", DayDot),
            ("01/04/1990", DaySlash),
            ("04/01/1990", MonthSlash),
        ];
        for (s, f) in ok {
            assert_eq!(canon_date(s, f).as_deref(), Some("1990-04-01"), "{s} {f}");
            assert_eq!(f.len(), f.pattern().len());
        }
        // No days-in-month check, by design.
        assert_eq!(canon_date("2023-02-31", Iso).as_deref(), Some("2023-02-31"));
        assert_eq!(canon_date("0000-12-31", Iso).as_deref(), Some("0000-12-31"));
        for (s, f) in [
            ("1990-13-01", Iso),
            ("1990-00-01", Iso),
            ("1990-01-00", Iso),
            ("1990-01-32", Iso),
            ("1990/01/01", Iso),
            ("1990-1-01", Iso),
            ("1990-01-011", Iso),
            ("199a-01-01", Iso),
            ("1990-0١-01", Iso),
            (" 1990-01-01", Iso),
            ("19900132", Compact),
            ("01.13.1990", DayDot),
            ("01-04-1990", DayDot),
            ("", Iso),
            ("+1990-01-1", Iso),
        ] {
            assert_eq!(canon_date(s, f), None, "{s} {f}");
        }
        assert_eq!(detect_date_format("01/02/2000"), Some(DaySlash));
        assert_eq!(detect_date_format("12/31/2000"), Some(MonthSlash));
        assert_eq!(detect_date_format("20000131"), Some(Compact));
        assert_eq!(detect_date_format("31.01.2000"), Some(DayDot));
        assert_eq!(detect_date_format("2000-01-31"), Some(Iso));
        assert_eq!(detect_date_format("31/31/2000"), None);
    }

    #[test]
    fn date_format_strings() {
        for f in DateFormat::ALL {
            assert_eq!(f.to_string().parse::<DateFormat>(), Ok(f));
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.pattern()));
            assert_eq!(serde_json::from_str::<DateFormat>(&json).unwrap(), f);
        }
        assert_eq!(
            serde_json::from_str::<DateFormat>("\"DayDot\"").unwrap(),
            DateFormat::DayDot
        );
        assert!("DD-MM-YYYY".parse::<DateFormat>().is_err());
        let k = FieldKind::Date(DateFormat::DayDot);
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<FieldKind>(&json).unwrap(), k);
        assert_eq!(FieldKind::Text.tag(), 1);
        assert_eq!(k.tag(), 2);
    }

    #[test]
    fn decimals() {
        for (s, v) in [
            ("0", 0),
            ("007.5", 7_500_000),
            ("1.000001", 1_000_001),
            ("123456789012", 123_456_789_012_000_000),
            ("999999999999.999999", 999_999_999_999_999_999),
            ("0.000000", 0),
            ("42.42", 42_420_000),
        ] {
            assert_eq!(parse_decimal(s), Some(v), "{s}");
        }
        for s in [
            "",
            "1.",
            ".5",
            "1.1234567",
            "1234567890123",
            "-1",
            "+1",
            "1e5",
            " 1",
            "1 ",
            "1.2.3",
            "1,5",
            "١",
            ".",
        ] {
            assert_eq!(parse_decimal(s), None, "{s}");
        }
    }

    proptest! {
        #[test]
        fn decimal_roundtrip(i in 0u64..1_000_000_000_000, f in 0u64..1_000_000, fd in 0usize..=6, lead in 0usize..3) {
            let int = format!("{}{}", "0".repeat(lead), i);
            prop_assume!(int.len() <= 12);
            let s = if fd == 0 {
                int.clone()
            } else {
                let f = f % 10u64.pow(fd as u32);
                format!("{int}.{f:0fd$}")
            };
            let frac = if fd == 0 { 0 } else { (f % 10u64.pow(fd as u32)) * 10u64.pow(6 - fd as u32) };
            prop_assert_eq!(parse_decimal(&s), Some(i * 1_000_000 + frac));
        }

        #[test]
        fn canon_text_is_idempotent(s in "\\PC{0,20}") {
            let c = canon_text(&s);
            prop_assert_eq!(canon_text(&c), c.clone());
            prop_assert!(!c.starts_with(' ') && !c.ends_with(' ') && !c.contains("  "));
        }
    }

    #[test]
    fn message_layout() {
        let fields = [
            (FieldKind::Text, "alice smith"),
            (FieldKind::Date(DateFormat::DayDot), "1990-04-01"),
        ];
        let m = nullifier_message(&fields, "example.com/v1").unwrap();
        assert_eq!(m.len(), 16 + 2 * 66 + 65);
        assert_eq!(m.len(), message_len(2));
        assert_eq!(&m[..16], b"tessera-uid-v1\0\0");
        assert_eq!(m[16], 1);
        assert_eq!(m[17], 11);
        assert_eq!(&m[18..29], b"alice smith");
        assert!(m[29..82].iter().all(|&b| b == 0));
        assert_eq!(m[82], 2);
        assert_eq!(m[83], 10);
        assert_eq!(&m[84..94], b"1990-04-01");
        assert_eq!(m[148], 14);
        assert_eq!(&m[149..163], b"example.com/v1");
        assert!(m[163..].iter().all(|&b| b == 0));
    }

    #[test]
    fn nullifier_is_hmac_sha256_with_the_key_bytes() {
        let key = Gf128::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
        let fields = [(FieldKind::Text, "bob")];
        let n = nullifier(&key, &fields, "s").unwrap();
        let msg = nullifier_message(&fields, "s").unwrap();
        let mut mac =
            <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(&key.to_bytes()).unwrap();
        mac.update(&msg);
        assert_eq!(n.to_vec(), mac.finalize().into_bytes().to_vec());
        // Different scope, person or key: different nullifier.
        assert_ne!(n, nullifier(&key, &fields, "t").unwrap());
        assert_ne!(
            n,
            nullifier(&key, &[(FieldKind::Text, "bob2")], "s").unwrap()
        );
        assert_ne!(n, nullifier(&(key + Gf128::ONE), &fields, "s").unwrap());
        // The kind is part of the message.
        let t = nullifier(&key, &[(FieldKind::Text, "2000-01-01")], "s").unwrap();
        let d = nullifier(
            &key,
            &[(FieldKind::Date(DateFormat::Iso), "2000-01-01")],
            "s",
        );
        assert_ne!(t, d.unwrap());
    }

    #[test]
    fn nullifier_message_errors() {
        use NullifierError::*;
        let f = [(FieldKind::Text, "a")];
        assert_eq!(nullifier_message(&[], "s"), Err(NoFields));
        assert_eq!(nullifier_message(&[f[0]; 9], "s"), Err(TooManyFields(9)));
        assert!(nullifier_message(&[f[0]; 8], "s").is_ok());
        assert_eq!(nullifier_message(&f, ""), Err(EmptyScope));
        let long = "x".repeat(65);
        assert_eq!(nullifier_message(&f, &long), Err(ScopeTooLong(65)));
        assert!(nullifier_message(&f, &long[..64]).is_ok());
        assert_eq!(
            nullifier_message(&[(FieldKind::Text, &long)], "s"),
            Err(ValueTooLong { index: 0, len: 65 })
        );
        assert!(nullifier_message(&[(FieldKind::Text, &long[..64])], "s").is_ok());
        assert_eq!(
            nullifier_message(&[f[0], (FieldKind::Text, "Alice")], "s"),
            Err(NotCanonical { index: 1 })
        );
        assert_eq!(
            nullifier_message(&[(FieldKind::Date(DateFormat::DayDot), "01.04.1990")], "s"),
            Err(NotCanonical { index: 0 })
        );
        assert_eq!(
            nullifier_message(&[(FieldKind::Text, " a")], "s"),
            Err(NotCanonical { index: 0 })
        );
        // An empty canonical value is allowed (the caller decides whether it makes sense).
        assert!(nullifier_message(&[(FieldKind::Text, "")], "s").is_ok());
    }
}
