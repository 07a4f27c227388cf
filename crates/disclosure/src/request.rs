//! The disclosure request: what the client asks the committee to attest about the committed
//! response, all of it public (every node checks it and they compare its hash), and the
//! client's only private inputs, the commitment salts. Also the result the committee
//! returns. A request never names a position in the body: paths and ranges are all there is.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uid_prf::canon::{DateFormat, FieldKind};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::expr::{Cmp, DateExpr, PredicateExpr, Rhs};
use crate::http::{HttpError, HttpLayout, Run};
use crate::path::Path;
use crate::scan::{Shape, ShapeError, CAPACITIES, MAX_CHUNK, MAX_SCAN};

/// Bytes of a commitment salt.
pub const SALT: usize = notarization::SALT;
/// Most byte ranges in one request.
pub const MAX_RANGES: usize = 8;
/// Most predicates in one request.
pub const MAX_PREDICATES: usize = 16;
/// Longest value a predicate or a nullifier field reads (bytes of string content or number
/// text).
pub const MAX_OPERAND: usize = uid_prf::canon::MAX_VALUE;

/// A JSON value to locate: its path and the capacity its commitment pads it to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// The path.
    pub path: Path,
    /// Bytes the value's raw JSON text may have (one of [`CAPACITIES`]).
    pub capacity: u32,
}

/// A byte range of the body (after de-chunking), `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "body[{}:{}]", self.start, self.end)
    }
}

/// Something to commit to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    /// A field (index into [`DisclosureRequest::fields`]).
    Field(u8),
    /// A byte range (index into [`DisclosureRequest::ranges`]).
    Range(u8),
}

/// A predicate over a field's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Predicate {
    /// The field (index into [`DisclosureRequest::fields`]).
    pub field: u8,
    /// The comparison (`Eq` for membership).
    pub cmp: Cmp,
    /// What the value is compared with; its type decides how the value is read.
    pub rhs: Rhs,
    /// For a date: the format the value is written in.
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
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DisclosureRequest {
    /// The HTTP exchange's layout.
    pub http: HttpLayout,
    /// JSON values to locate.
    pub fields: Vec<Field>,
    /// Byte ranges of the body.
    pub ranges: Vec<ByteRange>,
    /// What to commit to, in order.
    pub commit: Vec<Target>,
    /// Predicates.
    pub predicates: Vec<Predicate>,
    /// A nullifier, if asked for.
    pub uid: Option<UidReq>,
}

/// The client's private inputs, as one node's XOR share: a salt per commitment.
#[derive(Clone, Default, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct InputShares {
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
    /// The response's status code.
    pub status: u16,
    /// SHA-256 commitments, in the order of [`DisclosureRequest::commit`].
    pub commitments: Vec<[u8; 32]>,
    /// Predicate results, in request order.
    pub predicates: Vec<bool>,
    /// Resolved right-hand-side dates (`YYYY-MM-DD`), per predicate (`None` if not a date).
    pub resolved: Vec<Option<String>>,
    /// The nullifier.
    pub nullifier: Option<[u8; 32]>,
}

/// Why a request is refused before any computation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The HTTP layout does not fit the response.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The paths cannot be scanned.
    #[error("{0}")]
    Shape(String),
    /// Anything else out of bounds or inconsistent.
    #[error("invalid disclosure request: {0}")]
    Invalid(String),
}

impl From<ShapeError> for RequestError {
    fn from(e: ShapeError) -> Self {
        RequestError::Shape(e.to_string())
    }
}

fn bad(m: impl Into<String>) -> RequestError {
    RequestError::Invalid(m.into())
}

/// What a checked request means for the computation: public, derived the same way by every
/// node and the client.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Body content runs in the response.
    pub runs: Vec<Run>,
    /// Chunk framing the circuit checks: (response offset, expected bytes).
    pub framing: Vec<(usize, Vec<u8>)>,
    /// Body content length.
    pub content_len: usize,
    /// The JSON scan, if there are fields.
    pub shape: Option<Shape>,
}

/// Bytes per scan execution for a body of `content_len` bytes with values of at most
/// `max_capacity` bytes: a power of two, at least the capacity, at most [`MAX_CHUNK`].
pub fn chunk_for(content_len: usize, max_capacity: usize) -> usize {
    content_len
        .next_power_of_two()
        .clamp(64, MAX_CHUNK)
        .max(max_capacity)
}

impl DisclosureRequest {
    /// Checks the request against a committed response of `response_len` bytes and the
    /// limits, and derives the plan.
    pub fn check(&self, response_len: usize) -> Result<Plan, RequestError> {
        let (runs, framing) = self.http.resolve(response_len)?;
        let content_len = HttpLayout::content_len(&runs);
        if self.fields.is_empty() && self.ranges.is_empty() {
            return Err(bad("nothing to disclose: no path and no range"));
        }
        if self.ranges.len() > MAX_RANGES {
            return Err(bad(format!("more than {MAX_RANGES} byte ranges")));
        }
        for r in &self.ranges {
            let len = r.end.saturating_sub(r.start) as usize;
            if len == 0 || len > notarization::MAX_CAPACITY || r.end as usize > content_len {
                return Err(bad(format!(
                    "{r} must be 1 to {} bytes inside the {content_len}-byte body",
                    notarization::MAX_CAPACITY
                )));
            }
        }
        let shape = if self.fields.is_empty() {
            None
        } else {
            if content_len > MAX_SCAN {
                return Err(bad(format!(
                    "the body is {content_len} bytes; JSON paths can be proven in bodies of at most {MAX_SCAN} bytes"
                )));
            }
            let cap = self
                .fields
                .iter()
                .map(|f| f.capacity as usize)
                .max()
                .unwrap_or(CAPACITIES[0]);
            let fields: Vec<(Path, usize)> = self
                .fields
                .iter()
                .map(|f| (f.path.clone(), f.capacity as usize))
                .collect();
            Some(Shape::new(&fields, chunk_for(content_len, cap))?)
        };
        let nf = self.fields.len();
        let field = |i: u8| (i as usize) < nf;
        let mut seen = BTreeSet::new();
        for t in &self.commit {
            let ok = match *t {
                Target::Field(i) => field(i),
                Target::Range(i) => (i as usize) < self.ranges.len(),
            };
            if !ok || !seen.insert(*t) {
                return Err(bad(
                    "the commitment list names a missing or repeated target",
                ));
            }
        }
        if self.predicates.len() > MAX_PREDICATES {
            return Err(bad(format!("more than {MAX_PREDICATES} predicates")));
        }
        for p in &self.predicates {
            if !field(p.field) {
                return Err(bad("a predicate names a missing field"));
            }
            check_rhs(p)?;
        }
        if let Some(u) = &self.uid {
            if u.fields.is_empty() || u.fields.len() > uid_prf::canon::MAX_FIELDS {
                return Err(bad("a nullifier needs 1 to 8 fields"));
            }
            if u.fields.iter().any(|(i, _)| !field(*i)) {
                return Err(bad("the nullifier names a missing field"));
            }
            if u.scope.is_empty() || u.scope.len() > uid_prf::canon::MAX_SCOPE {
                return Err(bad("the scope must be 1 to 64 bytes"));
            }
        }
        Ok(Plan {
            runs,
            framing,
            content_len,
            shape,
        })
    }

    /// SHA-256 of the request's encoding: what the nodes compare before computing.
    pub fn digest(&self) -> Result<[u8; 32], RequestError> {
        let bytes = postcard::to_stdvec(self).map_err(|e| bad(e.to_string()))?;
        let mut h = Sha256::new();
        h.update(b"tessera disclosure request v2");
        h.update(bytes);
        Ok(h.finalize().into())
    }

    /// The canonical text of a commitment target (`$.user.name`, `body[0:10]`).
    pub fn target_text(&self, t: Target) -> Option<String> {
        match t {
            Target::Field(i) => self.fields.get(i as usize).map(|f| f.path.to_string()),
            Target::Range(i) => self.ranges.get(i as usize).map(ByteRange::to_string),
        }
    }

    /// The capacity a target's commitment pads to.
    pub fn target_capacity(&self, t: Target) -> Option<usize> {
        match t {
            Target::Field(i) => self.fields.get(i as usize).map(|f| f.capacity as usize),
            Target::Range(i) => self
                .ranges
                .get(i as usize)
                .map(|r| (r.end - r.start) as usize),
        }
    }

    /// Predicate `i` as canonical text (`$.user.age>=18`): what the notarization records.
    pub fn predicate_text(&self, i: usize) -> Option<String> {
        let p = self.predicates.get(i)?;
        let path = self.fields.get(p.field as usize)?.path.clone();
        Some(
            PredicateExpr {
                path,
                cmp: p.cmp,
                rhs: p.rhs.clone(),
            }
            .to_string(),
        )
    }

    /// A nullifier field as `PATH:KIND` (`$.user.name:text`).
    pub fn uid_field_text(&self, field: u8, kind: FieldKind) -> Option<String> {
        let path = &self.fields.get(field as usize)?.path;
        Some(match kind {
            FieldKind::Text => format!("{path}:text"),
            FieldKind::Date(_) => format!("{path}:date"),
        })
    }
}

/// Checks a predicate's operator, type and constants.
fn check_rhs(p: &Predicate) -> Result<(), RequestError> {
    let eq_only = matches!(p.cmp, Cmp::Eq | Cmp::Ne);
    // Text constants are compared with the raw JSON string content, so they must be bytes
    // that appear unescaped in JSON.
    let raw = |t: &str| {
        t.len() <= crate::expr::MAX_TEXT && !t.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20)
    };
    match &p.rhs {
        Rhs::Text(t) if eq_only && raw(t) => Ok(()),
        Rhs::OneOf(v) if p.cmp == Cmp::Eq && !v.is_empty() && v.iter().all(|t| raw(t)) => Ok(()),
        Rhs::Bool(_) | Rhs::Null if eq_only => Ok(()),
        Rhs::Number(_) => Ok(()),
        Rhs::Date(d) => {
            if p.date_format.is_none() {
                return Err(bad("a date predicate without the value's date format"));
            }
            if let DateExpr::Fixed(s) = d {
                if uid_prf::canon::canon_date(s, DateFormat::Iso).as_deref() != Some(s.as_str()) {
                    return Err(bad(format!("{s:?} is not a YYYY-MM-DD date")));
                }
            }
            Ok(())
        }
        Rhs::Text(_) | Rhs::OneOf(_) => Err(bad(
            "text constants must be at most 64 bytes without quotes, backslashes or control characters (they are compared with the raw JSON string), and take == != or in",
        )),
        Rhs::Bool(_) | Rhs::Null => Err(bad("true, false and null take only == and !=")),
    }
}

/// The date `e` stands for at unix time `time` (UTC): years and months are subtracted from
/// the calendar date with the day clamped to the month's length (2024-02-29 − 1y =
/// 2023-02-28), days from the day count.
pub fn resolve_date(e: &DateExpr, time: u64) -> Result<String, RequestError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
    fn chunk_sizes() {
        assert_eq!(chunk_for(10, 64), 64);
        assert_eq!(chunk_for(500, 64), 512);
        assert_eq!(chunk_for(500, 1024), 1024);
        assert_eq!(chunk_for(100_000, 64), MAX_CHUNK);
        assert_eq!(chunk_for(100_000, 4096), 4096);
    }
}
