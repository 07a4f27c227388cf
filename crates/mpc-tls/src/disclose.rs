//! The after-close garbled pass: what the client asks the committee to attest about the
//! response, and the one circuit that computes it from the committed ciphertext. It must never
//! output plaintext: only field-boundary checks, salted commitments, predicate results and
//! scoped nullifiers leave the circuit.
//!
//! # The field rule (JSON)
//!
//! A field is named by its key `K` and located by the client at a public offset `at` in the
//! response plaintext (all application-data records joined, HTTP head included). The circuit
//! checks, at fixed positions from `at`:
//!
//! ```text
//! { or ,   ws{w0}   "K"   ws{w1}   :   ws{w2}   "   VALUE   "
//! ```
//!
//! where `ws` is space, tab, CR or LF and `w0`, `w1`, `w2` ≤ [`MAX_WS`] are public. `VALUE` is
//! the bytes up to the first *unescaped* quote: a quote is escaped when an odd run of
//! backslashes precedes it inside the value. Its length `n` (0 ≤ n ≤ [`MAX_VALUE`]) is a
//! private input the client shares among the nodes; the circuit accepts only the `n` for which
//! byte `n` is an unescaped quote and no byte before it is, so the client cannot shorten or
//! extend the value. Consequences (each has a test in `tests/disclosure.rs`):
//!
//! - A provider that escapes strings as JSON requires (every `"` inside a string becomes
//!   `\"`) cannot contain `{"K":"` or `,"K":"` inside another string value: the quote before
//!   `K` would be preceded by a backslash, not by `{`, `,` or whitespace. So text a user
//!   controls (a display name, a note) cannot impersonate a field.
//! - A value ending in an escaped quote cannot be cut at that quote.
//! - The rule does **not** say which object the key belongs to: in `{"a":{"name":"x"},
//!   "name":"y"}` both `name`s satisfy it, and with duplicate keys every occurrence does. The
//!   offset of the chosen occurrence is part of the notarization, and the client library picks
//!   the first occurrence in the body; a relying party that needs a path must not rely on the
//!   key alone.
//! - The rule does not check that `at` lies in the HTTP body rather than in a header.
//!
//! Values containing a backslash can be committed and revealed (the verifier unescapes them)
//! but not used by predicates or nullifiers, whose canonicalisation refuses them.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use mpc::circuit::aes::EXPANDED_KEY_BITS;
use mpc::circuit::arith::{eq_bytes, lt_unsigned};
use mpc::circuit::sha256::digest_fixed;
use mpc::circuit::{const_bits, Bit, Builder, CircuitError};
use mpc::{ExecId, ExecSpec, InputGroup, InputSource, OutputGroup, OutputTo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uid_prf::canon::{DateFormat, FieldKind};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::circuits::{aes_block, differ, BuildError, TRAFFIC_KEY_BITS};

/// Longest value a field may have (bytes of the raw JSON string).
pub const MAX_VALUE: usize = uid_prf::canon::MAX_VALUE;
/// Most whitespace bytes allowed at each of the three places of the field rule.
pub const MAX_WS: u8 = 8;
/// Longest key.
pub const MAX_KEY: usize = 32;
/// Most fields in one disclosure.
pub const MAX_FIELDS: usize = 8;
/// Most predicates in one disclosure.
pub const MAX_PREDICATES: usize = 8;
/// Bytes of a commitment salt.
pub const SALT: usize = notarization::SALT;
const _: () = assert!(MAX_VALUE == notarization::MAX_VALUE);

/// Where a field is: its key, the offset of the `{` or `,` before it, and the whitespace
/// counts of the field rule (before the key, before and after the colon).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldRef {
    /// The key (1 to [`MAX_KEY`] bytes of `A–Z a–z 0–9 _ - .`).
    pub key: String,
    /// Offset of the `{` or `,` in the response plaintext.
    pub at: u32,
    /// Whitespace bytes before the key's quote, before the colon, after the colon.
    pub ws: [u8; 3],
}

impl FieldRef {
    /// Bytes from `at` to the value's first byte.
    pub fn prefix_len(&self) -> usize {
        1 + self.ws[0] as usize
            + 1
            + self.key.len()
            + 1
            + self.ws[1] as usize
            + 1
            + self.ws[2] as usize
            + 1
    }
    /// Offset of the value's first byte.
    pub fn value_start(&self) -> usize {
        self.at as usize + self.prefix_len()
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cmp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "==",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// A date on the right of a predicate: fixed, or relative to the session's date (UTC), which
/// the nodes take from their own clock, never from the client.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DateExpr {
    /// `YYYY-MM-DD`.
    Fixed(String),
    /// `today`, `today-18y`, `today-6m`, `today-30d` (one unit, subtracted).
    TodayMinus {
        /// Years.
        years: u16,
        /// Months.
        months: u16,
        /// Days.
        days: u32,
    },
}

/// The right-hand side of a predicate; its type decides how the field is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rhs {
    /// The raw value equals this text (`==`, `!=` only).
    Text(String),
    /// A non-negative decimal, in millionths (the field must be a decimal string).
    Decimal(u64),
    /// A date (the field must be a date in the predicate's format).
    Date(DateExpr),
}

/// One predicate over one field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PredicateReq {
    /// Index into [`DisclosureRequest::fields`].
    pub field: u8,
    /// The comparison.
    pub cmp: Cmp,
    /// What the field is compared with.
    pub rhs: Rhs,
    /// For a date: the format the field is written in.
    pub date_format: Option<DateFormat>,
}

/// A scoped nullifier over PII fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UidReq {
    /// Fields (indices into [`DisclosureRequest::fields`]) and how each is canonicalised.
    pub fields: Vec<(u8, FieldKind)>,
    /// The relying party's scope (1 to 64 bytes).
    pub scope: String,
}

/// The public part of a disclosure: identical at every node (they compare its hash).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DisclosureRequest {
    /// The fields used below.
    pub fields: Vec<FieldRef>,
    /// Fields to commit to (the client may later reveal them).
    pub commit: Vec<u8>,
    /// Predicates.
    pub predicates: Vec<PredicateReq>,
    /// A nullifier, if asked for.
    pub uid: Option<UidReq>,
}

/// One node's XOR shares of the client's private inputs: every field's value length and
/// every commitment's salt.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct InputShares {
    /// Shares of the value lengths, one per field.
    pub lens: Vec<u8>,
    /// Shares of the salts, one per commitment.
    pub salts: Vec<[u8; SALT]>,
}

impl fmt::Debug for InputShares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InputShares(..)")
    }
}

/// What the committee computed: public, identical at every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisclosureResult {
    /// SHA-256 commitments, in the order of [`DisclosureRequest::commit`].
    pub commitments: Vec<[u8; 32]>,
    /// Predicate results, in request order.
    pub predicates: Vec<bool>,
    /// Resolved right-hand-side dates (`YYYY-MM-DD`), per predicate (`None` if not a date).
    pub resolved: Vec<Option<String>>,
    /// The nullifier.
    pub nullifier: Option<[u8; 32]>,
}

/// Why a disclosure cannot be computed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DiscloseError {
    /// The request is malformed or exceeds a limit.
    #[error("invalid disclosure request: {0}")]
    Request(String),
    /// A field is not where the client said, or is not a string value under the rule.
    #[error("field {key:?} at offset {at} is not the string value of that key (the JSON field rule fails)")]
    NotAField {
        /// The key.
        key: String,
        /// Its offset.
        at: u32,
    },
    /// A predicate's field is not a date or decimal as the predicate needs.
    #[error("predicate {0} cannot be evaluated: the field is not a {1}")]
    BadOperand(String, &'static str),
    /// A PII field contains bytes the in-circuit canonicaliser does not accept.
    #[error("field {0:?} cannot be canonicalised for the nullifier (it is empty, or holds characters outside ASCII and Latin-1 letters, a JSON escape, or an invalid date)")]
    NotCanonical(String),
    /// The UID key shares do not lie on one polynomial.
    #[error("the UID key shares are inconsistent: a node supplied a wrong share")]
    InconsistentShares,
    /// The two garblers fed different ciphertext or counters.
    #[error("the nodes disagree about the response ciphertext")]
    Mismatch,
    /// A circuit could not be built.
    #[error("cannot build the disclosure circuit: {0}")]
    Build(String),
}

impl From<CircuitError> for DiscloseError {
    fn from(e: CircuitError) -> Self {
        DiscloseError::Build(e.to_string())
    }
}

impl From<uid_prf::circuit::CircuitError> for DiscloseError {
    fn from(e: uid_prf::circuit::CircuitError) -> Self {
        DiscloseError::Build(e.to_string())
    }
}

impl From<BuildError> for DiscloseError {
    fn from(e: BuildError) -> Self {
        DiscloseError::Build(e.to_string())
    }
}

fn bad(m: impl Into<String>) -> DiscloseError {
    DiscloseError::Request(m.into())
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEY
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

impl DisclosureRequest {
    /// Checks limits and references against a response of `response_len` bytes.
    pub fn check(&self, response_len: usize) -> Result<(), DiscloseError> {
        if self.fields.is_empty() {
            return Err(bad("no fields"));
        }
        if self.fields.len() > MAX_FIELDS {
            return Err(bad(format!("more than {MAX_FIELDS} fields")));
        }
        if self.predicates.len() > MAX_PREDICATES {
            return Err(bad(format!("more than {MAX_PREDICATES} predicates")));
        }
        let mut seen = BTreeSet::new();
        for f in &self.fields {
            if !valid_key(&f.key) {
                return Err(bad(format!(
                    "key {:?} must be 1 to {MAX_KEY} bytes of A-Z a-z 0-9 _ - .",
                    f.key
                )));
            }
            if f.ws.iter().any(|&w| w > MAX_WS) {
                return Err(bad(format!("more than {MAX_WS} whitespace bytes")));
            }
            // The value's closing quote must be inside the response.
            if f.value_start() >= response_len {
                return Err(bad(format!(
                    "field {:?} at {} lies outside the {response_len}-byte response",
                    f.key, f.at
                )));
            }
            if !seen.insert((f.key.clone(), f.at)) {
                return Err(bad(format!("field {:?} at {} named twice", f.key, f.at)));
            }
        }
        let nf = self.fields.len();
        let in_range = |i: u8| (i as usize) < nf;
        let mut commits = BTreeSet::new();
        for &c in &self.commit {
            if !in_range(c) || !commits.insert(c) {
                return Err(bad("commitment list names a missing or repeated field"));
            }
        }
        for p in &self.predicates {
            if !in_range(p.field) {
                return Err(bad("a predicate names a missing field"));
            }
            match &p.rhs {
                Rhs::Text(t) => {
                    if !matches!(p.cmp, Cmp::Eq | Cmp::Ne) {
                        return Err(bad("text can only be compared with == or !="));
                    }
                    if t.len() > MAX_VALUE {
                        return Err(bad(format!(
                            "a text constant longer than {MAX_VALUE} bytes"
                        )));
                    }
                }
                Rhs::Decimal(_) => {}
                Rhs::Date(d) => {
                    if p.date_format.is_none() {
                        return Err(bad("a date predicate without the field's date format"));
                    }
                    if let DateExpr::Fixed(s) = d {
                        if uid_prf::canon::canon_date(s, DateFormat::Iso).as_deref() != Some(s) {
                            return Err(bad(format!("{s:?} is not a YYYY-MM-DD date")));
                        }
                    }
                }
            }
        }
        if let Some(u) = &self.uid {
            if u.fields.is_empty() || u.fields.len() > MAX_FIELDS {
                return Err(bad("a nullifier needs 1 to 8 fields"));
            }
            if u.fields.iter().any(|(i, _)| !in_range(*i)) {
                return Err(bad("the nullifier names a missing field"));
            }
            if u.scope.is_empty() || u.scope.len() > uid_prf::canon::MAX_SCOPE {
                return Err(bad("the scope must be 1 to 64 bytes"));
            }
        }
        Ok(())
    }

    /// SHA-256 of the request's encoding: what the nodes compare before computing.
    pub fn digest(&self) -> Result<[u8; 32], DiscloseError> {
        let bytes = postcard::to_stdvec(self).map_err(|e| bad(e.to_string()))?;
        let mut h = Sha256::new();
        h.update(b"tessera disclosure request v1");
        h.update(bytes);
        Ok(h.finalize().into())
    }

    /// The predicate as text, `field<=today-18y` style (what the notarization records).
    pub fn predicate_text(&self, i: usize) -> Option<String> {
        let p = self.predicates.get(i)?;
        let key = &self.fields.get(p.field as usize)?.key;
        Some(format!("{key}{}{}", p.cmp.symbol(), rhs_text(&p.rhs)))
    }
}

fn rhs_text(r: &Rhs) -> String {
    match r {
        Rhs::Text(t) => format!("{t:?}"),
        Rhs::Decimal(v) => {
            let (i, f) = (v / 1_000_000, v % 1_000_000);
            if f == 0 {
                i.to_string()
            } else {
                let s = format!("{i}.{f:06}");
                s.trim_end_matches('0').to_string()
            }
        }
        Rhs::Date(DateExpr::Fixed(s)) => s.clone(),
        Rhs::Date(DateExpr::TodayMinus {
            years,
            months,
            days,
        }) => match (years, months, days) {
            (0, 0, 0) => "today".into(),
            (y, 0, 0) => format!("today-{y}y"),
            (0, m, 0) => format!("today-{m}m"),
            (0, 0, d) => format!("today-{d}d"),
            (y, m, d) => format!("today-{y}y{m}m{d}d"),
        },
    }
}

/// A parsed predicate expression such as `birthdate<=today-18y`, `balance>=100.50` or
/// `nationality==US`, before its field is located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredicateExpr {
    /// The field's key.
    pub key: String,
    /// The comparison.
    pub cmp: Cmp,
    /// The right-hand side.
    pub rhs: Rhs,
}

/// Parses `KEY OP VALUE` with OP one of `== != <= >= < >`. VALUE is `today`, `today-Ny`,
/// `today-Nm`, `today-Nd`, a `YYYY-MM-DD` date, a non-negative decimal, or text (optionally
/// in double quotes; text allows only `==` and `!=`).
pub fn parse_predicate(expr: &str) -> Result<PredicateExpr, DiscloseError> {
    let ops = [
        ("==", Cmp::Eq),
        ("!=", Cmp::Ne),
        ("<=", Cmp::Le),
        (">=", Cmp::Ge),
        ("<", Cmp::Lt),
        (">", Cmp::Gt),
    ];
    let (pos, op, cmp) = ops
        .iter()
        .filter_map(|(s, c)| expr.find(s).map(|p| (p, *s, *c)))
        .min_by_key(|(p, s, _)| (*p, std::cmp::Reverse(s.len())))
        .ok_or_else(|| {
            bad(format!(
                "predicate {expr:?} has no comparison (== != < <= > >=)"
            ))
        })?;
    let key = expr[..pos].trim().to_string();
    let value = expr[pos + op.len()..].trim();
    if !valid_key(&key) {
        return Err(bad(format!(
            "predicate {expr:?}: {key:?} is not a field key"
        )));
    }
    if value.is_empty() {
        return Err(bad(format!(
            "predicate {expr:?} has nothing to compare with"
        )));
    }
    let rhs = if let Some(rest) = value.strip_prefix("today") {
        Rhs::Date(parse_today(rest).ok_or_else(|| {
            bad(format!(
                "predicate {expr:?}: use today, today-Ny, today-Nm or today-Nd"
            ))
        })?)
    } else if uid_prf::canon::canon_date(value, DateFormat::Iso).is_some() {
        Rhs::Date(DateExpr::Fixed(value.to_string()))
    } else if let Some(v) = uid_prf::canon::parse_decimal(value) {
        Rhs::Decimal(v)
    } else {
        let t = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Rhs::Text(t.to_string())
    };
    if matches!(rhs, Rhs::Text(_)) && !matches!(cmp, Cmp::Eq | Cmp::Ne) {
        return Err(bad(format!(
            "predicate {expr:?}: {value:?} is neither a date nor a decimal, so only == and != apply"
        )));
    }
    Ok(PredicateExpr { key, cmp, rhs })
}

fn parse_today(rest: &str) -> Option<DateExpr> {
    if rest.is_empty() {
        return Some(DateExpr::TodayMinus {
            years: 0,
            months: 0,
            days: 0,
        });
    }
    let n = rest.strip_prefix('-')?;
    let (num, unit) = n.split_at(n.len().checked_sub(1)?);
    let v: u32 = num.parse().ok()?;
    match unit {
        "y" if v <= 200 => Some(DateExpr::TodayMinus {
            years: v as u16,
            months: 0,
            days: 0,
        }),
        "m" if v <= 2400 => Some(DateExpr::TodayMinus {
            years: 0,
            months: v as u16,
            days: 0,
        }),
        "d" if v <= 100_000 => Some(DateExpr::TodayMinus {
            years: 0,
            months: 0,
            days: v,
        }),
        _ => None,
    }
}

/// The date `e` stands for at unix time `time` (UTC): years and months are subtracted from
/// the calendar date with the day clamped to the month's length (2024-02-29 − 1y =
/// 2023-02-28), days from the day count.
pub fn resolve_date(e: &DateExpr, time: u64) -> Result<String, DiscloseError> {
    match e {
        DateExpr::Fixed(s) => Ok(s.clone()),
        DateExpr::TodayMinus {
            years,
            months,
            days,
        } => {
            let out_of_range = || bad("the date is out of range");
            let today = i64::try_from(time)
                .ok()
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .ok_or_else(out_of_range)?
                .date();
            let total = i64::from(today.year()) * 12 + i64::from(u8::from(today.month()) - 1)
                - i64::from(*years) * 12
                - i64::from(*months);
            let year = i32::try_from(total.div_euclid(12)).map_err(|_| out_of_range())?;
            let month = time::Month::try_from(total.rem_euclid(12) as u8 + 1)
                .map_err(|_| out_of_range())?;
            let day = today.day().min(month.length(year));
            let d = time::Date::from_calendar_date(year, month, day)
                .ok()
                .and_then(|d| d.checked_sub(time::Duration::days(i64::from(*days))))
                .filter(|d| (0..=9999).contains(&d.year()))
                .ok_or_else(out_of_range)?;
            Ok(format!(
                "{:04}-{:02}-{:02}",
                d.year(),
                u8::from(d.month()),
                d.day()
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Locating fields (client side: it holds the plaintext).

/// A field the client found in its response.
#[derive(Debug, Clone)]
pub struct Located {
    /// Where it is.
    pub field: FieldRef,
    /// Its raw value (bytes between the quotes, escapes as sent).
    pub value: Vec<u8>,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// The value length that the circuit will accept at `start`, if any: bytes up to the first
/// unescaped quote within [`MAX_VALUE`].
fn value_len(p: &[u8], start: usize) -> Option<usize> {
    let mut escaped = false;
    for i in 0..=MAX_VALUE {
        let c = *p.get(start + i)?;
        if c == b'"' && !escaped {
            return Some(i);
        }
        escaped = c == b'\\' && !escaped;
    }
    None
}

/// Matches the field rule at `at`, returning the field if it holds.
fn match_at(p: &[u8], at: usize, key: &str) -> Option<Located> {
    if !matches!(p.get(at), Some(b'{' | b',')) {
        return None;
    }
    let mut i = at + 1;
    let mut ws = [0u8; 3];
    let skip = |i: &mut usize, w: &mut u8| {
        while *w < MAX_WS && p.get(*i).is_some_and(|&c| is_ws(c)) {
            *i += 1;
            *w += 1;
        }
    };
    skip(&mut i, &mut ws[0]);
    let k = key.as_bytes();
    if p.get(i) != Some(&b'"') || p.get(i + 1..i + 1 + k.len()) != Some(k) {
        return None;
    }
    i += 1 + k.len();
    if p.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    skip(&mut i, &mut ws[1]);
    if p.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    skip(&mut i, &mut ws[2]);
    if p.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    let n = value_len(p, i)?;
    Some(Located {
        field: FieldRef {
            key: key.to_string(),
            at: at as u32,
            ws,
        },
        value: p[i..i + n].to_vec(),
    })
}

/// Every place in `response` where `key`'s string value satisfies the field rule, in order,
/// from the start of the HTTP body (after the first blank line) if there is one.
pub fn locate_all(response: &[u8], key: &str) -> Vec<Located> {
    let body = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    (body..response.len())
        .filter_map(|at| match_at(response, at, key))
        .collect()
}

/// The first occurrence of `key` under the field rule.
pub fn locate(response: &[u8], key: &str) -> Result<Located, DiscloseError> {
    if !valid_key(key) {
        return Err(bad(format!(
            "key {key:?} must be 1 to {MAX_KEY} bytes of A-Z a-z 0-9 _ - ."
        )));
    }
    locate_all(response, key).into_iter().next().ok_or_else(|| {
        bad(format!(
            "the response has no string value for key {key:?} of at most {MAX_VALUE} bytes (only string values are supported)"
        ))
    })
}

// ---------------------------------------------------------------------------------------
// The circuit.

/// One AES counter block the circuit decrypts: response record (0-based, application data
/// only) and counter (2 for the record's first block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockRef {
    /// Record.
    pub record: usize,
    /// Counter.
    pub ctr: u32,
}

/// Where each plaintext byte the circuit needs comes from.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Blocks to decrypt, sorted.
    pub blocks: Vec<BlockRef>,
    /// Start offset of each application-data record in the plaintext.
    record_starts: Vec<usize>,
    total: usize,
}

impl Plan {
    /// The blocks that cover every field's window, for records of the given plaintext
    /// lengths.
    pub fn new(req: &DisclosureRequest, record_lens: &[usize]) -> Self {
        let mut record_starts = Vec::with_capacity(record_lens.len());
        let mut total = 0;
        for &l in record_lens {
            record_starts.push(total);
            total += l;
        }
        let mut set = BTreeSet::new();
        let mut plan = Plan {
            blocks: Vec::new(),
            record_starts,
            total,
        };
        for f in &req.fields {
            for o in window(f, total) {
                if let Some((b, _)) = plan.locate(o) {
                    set.insert(b);
                }
            }
        }
        plan.blocks = set.into_iter().collect();
        plan
    }

    fn locate(&self, o: usize) -> Option<(BlockRef, usize)> {
        if o >= self.total {
            return None;
        }
        let r = self.record_starts.partition_point(|&s| s <= o) - 1;
        let k = o - self.record_starts[r];
        Some((
            BlockRef {
                record: r,
                ctr: 2 + (k / 16) as u32,
            },
            k % 16,
        ))
    }
}

/// Offsets the circuit reads for a field: the prefix, [`MAX_VALUE`] value bytes and the
/// closing quote, clipped to the response.
fn window(f: &FieldRef, total: usize) -> std::ops::Range<usize> {
    let start = (f.at as usize).min(total);
    let end = (f.value_start() + MAX_VALUE + 1).min(total);
    start..end.max(start)
}

/// Bits of one copy of the public input per block: explicit nonce (8 bytes), counter (4),
/// ciphertext (16, zero-padded after a record's end).
pub const BLOCK_PUBLIC_BITS: usize = (8 + 4 + 16) * 8;

/// The public input one garbler feeds: per block, explicit nonce ‖ counter ‖ ciphertext.
pub fn public_input(
    plan: &Plan,
    explicit: impl Fn(usize) -> [u8; 8],
    ciphertext: impl Fn(usize) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(plan.blocks.len() * BLOCK_PUBLIC_BITS / 8);
    for b in &plan.blocks {
        out.extend_from_slice(&explicit(b.record));
        out.extend_from_slice(&b.ctr.to_be_bytes());
        let ct = ciphertext(b.record);
        let from = (b.ctr as usize - 2) * 16;
        let mut blk = [0u8; 16];
        for (i, v) in blk.iter_mut().enumerate() {
            *v = ct.get(from + i).copied().unwrap_or(0);
        }
        out.extend_from_slice(&blk);
    }
    out
}

/// Where the disclosure circuit's outputs are (one [`OutputTo::All`] group).
#[derive(Debug, Clone)]
pub struct Layout {
    commits: usize,
    predicates: usize,
    uid_fields: usize,
    uid: bool,
    /// Width of the output.
    pub width: usize,
}

/// Input groups of the disclosure execution.
pub mod input {
    /// The kept server traffic key.
    pub const KEY: usize = 0;
    /// Party 0's copy of the public input.
    pub const PUBLIC_0: usize = 1;
    /// Party 1's copy.
    pub const PUBLIC_1: usize = 2;
    /// The client's shared inputs: lengths (8 bits per field), then salts (128 per commit).
    pub const SHARED: usize = 3;
    /// Party `p`'s UID key share (when a nullifier is asked for) is group `UID + p`.
    pub const UID: usize = 4;
}

/// The UID key shares' x-coordinates (node ids) of parties 0, 1, 2, and the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UidCommittee {
    /// Node id of each party.
    pub xs: [u16; 3],
    /// Shamir threshold.
    pub t: usize,
}

fn byte_at(bits: &[Bit], i: usize) -> [Bit; 8] {
    let mut o = [Bit::Const(false); 8];
    o.copy_from_slice(&bits[8 * i..8 * i + 8]);
    o
}

fn eq_const(b: &mut Builder, x: &[Bit; 8], c: u8) -> Result<Bit, CircuitError> {
    eq_bytes(b, x, &const_bits(&[c]))
}

fn any_of(b: &mut Builder, x: &[Bit; 8], cs: &[u8]) -> Result<Bit, CircuitError> {
    let mut acc = Bit::Const(false);
    for &c in cs {
        let e = eq_const(b, x, c)?;
        acc = b.or(acc, e);
    }
    Ok(acc)
}

fn and_all(b: &mut Builder, xs: impl IntoIterator<Item = Bit>) -> Bit {
    xs.into_iter()
        .fold(Bit::Const(true), |acc, v| b.and(acc, v))
}

/// The commitment to a value as a verifier recomputes it (the circuit computes the same
/// thing): [`notarization::commitment_hash`].
pub use notarization::commitment_hash as commitment;

/// A built disclosure execution.
#[derive(Debug)]
pub struct Built {
    /// The execution.
    pub spec: Arc<ExecSpec>,
    /// Where its outputs are.
    pub layout: Layout,
    /// Each predicate's resolved date, if it compares with one.
    pub resolved: Vec<Option<String>>,
}

/// Builds the disclosure execution for `req` over `plan`, reading the server key kept by
/// `hs_exec` as its output group `key_group`. `time` is the session time (for `today`).
pub fn disclosure_spec(
    req: &DisclosureRequest,
    plan: &Plan,
    hs_exec: ExecId,
    key_group: usize,
    time: u64,
    uid: Option<UidCommittee>,
) -> Result<Built, DiscloseError> {
    let mut b = Builder::new();
    let key = b.inputs(TRAFFIC_KEY_BITS);
    let (rk, iv) = key.split_at(EXPANDED_KEY_BITS);
    let n_pub = plan.blocks.len() * BLOCK_PUBLIC_BITS;
    let pa = b.inputs(n_pub);
    let pb = b.inputs(n_pub);
    let nf = req.fields.len();
    let nc = req.commit.len();
    let shared = b.inputs(nf * 8 + nc * SALT * 8);
    let uid_inputs: Vec<Vec<Bit>> = match (&req.uid, uid) {
        (Some(_), Some(_)) => (0..3).map(|_| b.inputs(128)).collect(),
        (Some(_), None) => {
            return Err(bad(
                "a nullifier was asked for but this node holds no UID key share",
            ))
        }
        _ => Vec::new(),
    };

    let mismatch = differ(&mut b, &pa, &pb)?;

    // Decrypt every planned block.
    let mut plain_blocks: Vec<Vec<Bit>> = Vec::with_capacity(plan.blocks.len());
    for i in 0..plan.blocks.len() {
        let p = &pa[i * BLOCK_PUBLIC_BITS..(i + 1) * BLOCK_PUBLIC_BITS];
        let mut counter = iv.to_vec();
        counter.extend_from_slice(&p[..96]);
        let ks = aes_block(&mut b, rk, &counter)?;
        plain_blocks.push(b.xor_vec(&ks, &p[96..])?);
    }
    let byte = |o: usize| -> [Bit; 8] {
        match plan.locate(o) {
            Some((blk, k)) => match plan.blocks.binary_search(&blk) {
                Ok(i) => byte_at(&plain_blocks[i], k),
                Err(_) => [Bit::Const(false); 8],
            },
            None => [Bit::Const(false); 8],
        }
    };

    let mut outputs = vec![mismatch];
    // Per field: the rule, and the masked value and length.
    let mut values: Vec<(Vec<Bit>, Vec<Bit>, Vec<Bit>)> = Vec::with_capacity(nf); // (masked value bits, len bits, eq flags)
    let mut field_ok = Vec::with_capacity(nf);
    for (fi, f) in req.fields.iter().enumerate() {
        let mut checks = Vec::new();
        let mut o = f.at as usize;
        let first = byte(o);
        checks.push(any_of(&mut b, &first, b"{,")?);
        o += 1;
        let ws = |b: &mut Builder, o: &mut usize, n: u8, checks: &mut Vec<Bit>| {
            for _ in 0..n {
                let c = byte(*o);
                checks.push(any_of(b, &c, b" \t\r\n")?);
                *o += 1;
            }
            Ok::<(), CircuitError>(())
        };
        ws(&mut b, &mut o, f.ws[0], &mut checks)?;
        let lit = |b: &mut Builder, o: &mut usize, s: &[u8], checks: &mut Vec<Bit>| {
            for &c in s {
                let x = byte(*o);
                checks.push(eq_const(b, &x, c)?);
                *o += 1;
            }
            Ok::<(), CircuitError>(())
        };
        lit(&mut b, &mut o, b"\"", &mut checks)?;
        lit(&mut b, &mut o, f.key.as_bytes(), &mut checks)?;
        lit(&mut b, &mut o, b"\"", &mut checks)?;
        ws(&mut b, &mut o, f.ws[1], &mut checks)?;
        lit(&mut b, &mut o, b":", &mut checks)?;
        ws(&mut b, &mut o, f.ws[2], &mut checks)?;
        lit(&mut b, &mut o, b"\"", &mut checks)?;
        debug_assert_eq!(o, f.value_start());
        let v: Vec<[Bit; 8]> = (0..=MAX_VALUE).map(|i| byte(o + i)).collect();
        let n = &shared[fi * 8..fi * 8 + 8];
        // eq[i] = (n == i)
        let eq: Vec<Bit> = (0..=MAX_VALUE)
            .map(|i| eq_bytes(&mut b, n, &const_bits(&[i as u8])))
            .collect::<Result<_, _>>()?;
        // lt[i] = (i < n) = OR_{j > i} eq[j]
        let mut lt = vec![Bit::Const(false); MAX_VALUE + 1];
        let mut acc = Bit::Const(false);
        for i in (0..=MAX_VALUE).rev() {
            lt[i] = acc;
            acc = b.or(acc, eq[i]);
        }
        let mut escaped = Bit::Const(false);
        let mut closes = Bit::Const(false);
        for i in 0..=MAX_VALUE {
            let q = eq_const(&mut b, &v[i], b'"')?;
            let ne = b.not(escaped);
            let uq = b.and(q, ne);
            // Before n: no unescaped quote.
            let early = b.and(lt[i], uq);
            checks.push(b.not(early));
            // At n: an unescaped quote.
            let here = b.and(eq[i], uq);
            closes = b.or(closes, here);
            let bs = eq_const(&mut b, &v[i], b'\\')?;
            escaped = b.and(bs, ne);
        }
        checks.push(closes);
        field_ok.push(and_all(&mut b, checks));
        let mut masked = Vec::with_capacity(MAX_VALUE * 8);
        for i in 0..MAX_VALUE {
            for &bit in &v[i] {
                masked.push(b.and(bit, lt[i]));
            }
        }
        values.push((masked, n.to_vec(), eq));
    }
    outputs.extend(field_ok);

    // Commitments.
    for (ci, &f) in req.commit.iter().enumerate() {
        let salt = &shared[nf * 8 + ci * SALT * 8..nf * 8 + (ci + 1) * SALT * 8];
        let (masked, n, _) = &values[f as usize];
        let mut msg = salt.to_vec();
        msg.extend_from_slice(n);
        msg.extend_from_slice(masked);
        outputs.extend(digest_fixed(&mut b, &msg)?);
    }

    // Predicates: (operand valid, result) each.
    let mut resolved = Vec::with_capacity(req.predicates.len());
    for p in &req.predicates {
        let (masked, n, eq) = &values[p.field as usize];
        let (valid, x, c): (Bit, Vec<Bit>, Vec<Bit>) = match &p.rhs {
            Rhs::Text(t) => {
                let tb = t.as_bytes();
                let mut e = vec![eq[tb.len()]];
                for (i, &c) in tb.iter().enumerate() {
                    let x = byte_at(masked, i);
                    e.push(eq_const(&mut b, &x, c)?);
                }
                let r = and_all(&mut b, e);
                resolved.push(None);
                let r = if p.cmp == Cmp::Ne { b.not(r) } else { r };
                outputs.push(Bit::Const(true));
                outputs.push(r);
                continue;
            }
            Rhs::Decimal(v) => {
                let (x, ok) = uid_prf::circuit::parse_decimal(&mut b, masked, n)?;
                resolved.push(None);
                (ok, x, const_bits(&v.to_be_bytes()))
            }
            Rhs::Date(e) => {
                let fmt = p
                    .date_format
                    .ok_or_else(|| bad("a date predicate without the field's date format"))?;
                let d = uid_prf::circuit::canon_date(&mut b, masked, n, fmt)?;
                let iso = resolve_date(e, time)?;
                let c = const_bits(iso.as_bytes());
                resolved.push(Some(iso));
                (d.ok, d.iso, c)
            }
        };
        let r = match p.cmp {
            Cmp::Lt => lt_unsigned(&mut b, &x, &c)?,
            Cmp::Gt => lt_unsigned(&mut b, &c, &x)?,
            Cmp::Le => {
                let g = lt_unsigned(&mut b, &c, &x)?;
                b.not(g)
            }
            Cmp::Ge => {
                let l = lt_unsigned(&mut b, &x, &c)?;
                b.not(l)
            }
            Cmp::Eq => eq_bytes(&mut b, &x, &c)?,
            Cmp::Ne => {
                let e = eq_bytes(&mut b, &x, &c)?;
                b.not(e)
            }
        };
        outputs.push(valid);
        outputs.push(r);
    }

    // The nullifier.
    let mut uid_fields = 0;
    if let (Some(u), Some(committee)) = (&req.uid, uid) {
        let mut canon = Vec::with_capacity(u.fields.len());
        for (fi, kind) in &u.fields {
            let (masked, n, _) = &values[*fi as usize];
            match kind {
                FieldKind::Text => {
                    let t = uid_prf::circuit::canon_text(&mut b, masked, n)?;
                    // An empty canonical value would give everyone the same nullifier.
                    let nonempty = t.len.iter().fold(Bit::Const(false), |acc, &v| b.or(acc, v));
                    let ok = b.and(t.ok, nonempty);
                    outputs.push(ok);
                    canon.push((
                        *kind,
                        uid_prf::circuit::FieldBits {
                            bytes: t.bytes,
                            len: t.len,
                        },
                    ));
                }
                FieldKind::Date(fmt) => {
                    let d = uid_prf::circuit::canon_date(&mut b, masked, n, *fmt)?;
                    outputs.push(d.ok);
                    let mut bytes = d.iso;
                    bytes.resize(MAX_VALUE * 8, Bit::Const(false));
                    canon.push((
                        *kind,
                        uid_prf::circuit::FieldBits {
                            bytes,
                            len: const_bits(&[10]),
                        },
                    ));
                }
            }
            uid_fields += 1;
        }
        let shares: Vec<(u16, Vec<Bit>)> = committee
            .xs
            .iter()
            .zip(uid_inputs)
            .map(|(&x, s)| (x, s))
            .collect();
        let (k, inconsistent) = uid_prf::circuit::combine_shares(&mut b, &shares, committee.t)?;
        outputs.push(inconsistent);
        outputs.extend(uid_prf::circuit::nullifier(&mut b, &k, &canon, &u.scope)?);
    }

    let width = outputs.len();
    let circuit = Arc::new(b.finish(&outputs)?);
    let mut groups = vec![
        InputGroup {
            width: TRAFFIC_KEY_BITS,
            source: InputSource::Kept {
                exec: hs_exec,
                group: key_group,
            },
        },
        InputGroup {
            width: n_pub,
            source: InputSource::Private(0),
        },
        InputGroup {
            width: n_pub,
            source: InputSource::Private(1),
        },
        InputGroup {
            width: nf * 8 + nc * SALT * 8,
            source: InputSource::Shared,
        },
    ];
    if req.uid.is_some() {
        for p in 0..3 {
            groups.push(InputGroup {
                width: 128,
                source: InputSource::Private(p),
            });
        }
    }
    let spec = ExecSpec::new(
        circuit,
        groups,
        vec![OutputGroup {
            width,
            to: OutputTo::All,
        }],
    )
    .map_err(BuildError::from)?;
    Ok(Built {
        spec: Arc::new(spec),
        layout: Layout {
            commits: nc,
            predicates: req.predicates.len(),
            uid_fields,
            uid: req.uid.is_some(),
            width,
        },
        resolved,
    })
}

/// Reads the circuit's output, turning every failed check into its error.
pub fn read_output(
    req: &DisclosureRequest,
    lay: &Layout,
    bits: &[bool],
    resolved: Vec<Option<String>>,
) -> Result<DisclosureResult, DiscloseError> {
    if bits.len() != lay.width {
        return Err(DiscloseError::Build("output width".into()));
    }
    if bits[0] {
        return Err(DiscloseError::Mismatch);
    }
    let mut at = 1;
    for f in &req.fields {
        if !bits[at] {
            return Err(DiscloseError::NotAField {
                key: f.key.clone(),
                at: f.at,
            });
        }
        at += 1;
    }
    let mut commitments = Vec::with_capacity(lay.commits);
    for _ in 0..lay.commits {
        let mut c = [0u8; 32];
        c.copy_from_slice(&mpc::circuit::bits_to_bytes(&bits[at..at + 256]));
        commitments.push(c);
        at += 256;
    }
    let mut predicates = Vec::with_capacity(lay.predicates);
    for i in 0..lay.predicates {
        if !bits[at] {
            let p = &req.predicates[i];
            let what = match p.rhs {
                Rhs::Date(_) => "date in the given format",
                Rhs::Decimal(_) => "decimal number",
                Rhs::Text(_) => "string",
            };
            return Err(DiscloseError::BadOperand(
                req.predicate_text(i).unwrap_or_default(),
                what,
            ));
        }
        predicates.push(bits[at + 1]);
        at += 2;
    }
    let mut nullifier = None;
    if lay.uid {
        if let Some(u) = &req.uid {
            for (fi, _) in u.fields.iter().take(lay.uid_fields) {
                if !bits[at] {
                    return Err(DiscloseError::NotCanonical(
                        req.fields[*fi as usize].key.clone(),
                    ));
                }
                at += 1;
            }
        }
        if bits[at] {
            return Err(DiscloseError::InconsistentShares);
        }
        at += 1;
        let mut n = [0u8; 32];
        n.copy_from_slice(&mpc::circuit::bits_to_bytes(&bits[at..at + 256]));
        nullifier = Some(n);
    }
    Ok(DisclosureResult {
        commitments,
        predicates,
        resolved,
        nullifier,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dates_resolve_with_clamping() {
        // 2024-02-29 01:00 UTC.
        let t = 1_709_168_400;
        let e = |y, m, d| DateExpr::TodayMinus {
            years: y,
            months: m,
            days: d,
        };
        assert_eq!(resolve_date(&e(0, 0, 0), t).unwrap(), "2024-02-29");
        assert_eq!(resolve_date(&e(18, 0, 0), t).unwrap(), "2006-02-28");
        assert_eq!(resolve_date(&e(4, 0, 0), t).unwrap(), "2020-02-29");
        assert_eq!(resolve_date(&e(0, 1, 0), t).unwrap(), "2024-01-29");
        assert_eq!(resolve_date(&e(0, 0, 60), t).unwrap(), "2023-12-31");
        assert_eq!(resolve_date(&e(0, 0, 0), 0).unwrap(), "1970-01-01");
    }

    #[test]
    fn predicates_parse_and_print() {
        let p = parse_predicate("birthdate<=today-18y").unwrap();
        assert_eq!(p.key, "birthdate");
        assert_eq!(p.cmp, Cmp::Le);
        assert_eq!(
            p.rhs,
            Rhs::Date(DateExpr::TodayMinus {
                years: 18,
                months: 0,
                days: 0
            })
        );
        assert_eq!(
            parse_predicate("balance >= 100.5").unwrap().rhs,
            Rhs::Decimal(100_500_000)
        );
        assert_eq!(
            parse_predicate("nationality==US").unwrap().rhs,
            Rhs::Text("US".into())
        );
        assert_eq!(
            parse_predicate("since>2001-09-30").unwrap().rhs,
            Rhs::Date(DateExpr::Fixed("2001-09-30".into()))
        );
        assert!(parse_predicate("name<Bob").is_err());
        assert!(parse_predicate("birthdate<=today-18q").is_err());
        assert!(parse_predicate("no operator").is_err());
        assert!(parse_predicate("bad key!==x").is_err());
        let req = DisclosureRequest {
            fields: vec![FieldRef {
                key: "birthdate".into(),
                at: 0,
                ws: [0; 3],
            }],
            predicates: vec![PredicateReq {
                field: 0,
                cmp: Cmp::Le,
                rhs: p.rhs,
                date_format: Some(DateFormat::Iso),
            }],
            ..Default::default()
        };
        assert_eq!(req.predicate_text(0).unwrap(), "birthdate<=today-18y");
    }

    #[test]
    fn locating_follows_the_rule() {
        let r = r#"HTTP/1.1 200 OK
X: {"name":"Header"}

{"note":"a,\"name\":\"Mallory\"", "name" :  "Al\"ice", "x":{"name":"Nested"}}"#
            .replace('\n', "\r\n");
        let r = r.as_bytes();
        let all = locate_all(r, "name");
        let values: Vec<&[u8]> = all.iter().map(|l| l.value.as_slice()).collect();
        assert_eq!(values, vec![&br#"Al\"ice"#[..], b"Nested"]);
        assert_eq!(all[0].field.ws, [1, 1, 2]);
        assert!(locate(r, "missing").is_err());
    }
}
