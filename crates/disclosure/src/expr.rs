//! Predicate expressions over JSON paths, such as `$.user.age>=18`,
//! `$.user.birthdate<=today-18y` or `$.user.nationality in ["DE","FR"]`.
//!
//! [`parse_predicate`] reads the text a user writes; the
//! [`Display`](std::fmt::Display) form of a [`PredicateExpr`] is its canonical
//! text, which parses back to the same expression.

use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::path::{Path, PathError};

/// The longest text constant, in bytes of UTF-8.
pub const MAX_TEXT: usize = 64;
/// The most items in an `in [...]` list.
pub const MAX_CHOICES: usize = 16;

/// The most years in `today-Ny`.
const MAX_YEARS: u16 = 200;
/// The most months in `today-Nm`.
const MAX_MONTHS: u16 = 2400;
/// The most days in `today-Nd`.
const MAX_DAYS: u32 = 100_000;

/// Millionths in one unit of a [`Rhs::Number`].
const MILLION: u64 = 1_000_000;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cmp {
    /// `==`, also used for `in`.
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
    /// The operator as written: `==`, `!=`, `<`, `<=`, `>` or `>=`.
    pub fn symbol(self) -> &'static str {
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

impl fmt::Display for Cmp {
    /// Writes [`Cmp::symbol`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A date on the right-hand side of a predicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DateExpr {
    /// A fixed date written `YYYY-MM-DD` (month 01–12, day 01–31).
    Fixed(String),
    /// Today's date minus a period. Parsing sets at most one of the fields.
    TodayMinus {
        /// Years to go back.
        years: u16,
        /// Months to go back.
        months: u16,
        /// Days to go back.
        days: u32,
    },
}

impl fmt::Display for DateExpr {
    /// Writes `2001-09-30`, `today`, `today-18y`, `today-6m` or `today-30d`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateExpr::Fixed(date) => f.write_str(date),
            DateExpr::TodayMinus {
                years,
                months,
                days,
            } => {
                f.write_str("today")?;
                write_period(f, u32::from(*years), 'y')?;
                write_period(f, u32::from(*months), 'm')?;
                write_period(f, *days, 'd')
            }
        }
    }
}

/// Writes `-{amount}{unit}` unless the amount is zero.
fn write_period(f: &mut fmt::Formatter<'_>, amount: u32, unit: char) -> fmt::Result {
    if amount == 0 {
        return Ok(());
    }
    write!(f, "-{amount}{unit}")
}

/// The right-hand side of a predicate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Rhs {
    /// A number, in millionths (the value × 10^6).
    Number(i64),
    /// A date.
    Date(DateExpr),
    /// A text constant.
    Text(String),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// The texts of an `in [...]` list.
    OneOf(Vec<String>),
}

impl fmt::Display for Rhs {
    /// Writes the canonical text: `18`, `-3.5`, `2001-09-30`, `today-18y`,
    /// `"text"`, `true`, `null` or `["DE","FR"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rhs::Number(millionths) => write_millionths(f, *millionths),
            Rhs::Date(date) => write!(f, "{date}"),
            Rhs::Text(text) => write_json_string(f, text),
            Rhs::Bool(value) => write!(f, "{value}"),
            Rhs::Null => f.write_str("null"),
            Rhs::OneOf(items) => write_list(f, items),
        }
    }
}

/// Writes a number given in millionths, without superfluous zeros.
fn write_millionths(f: &mut fmt::Formatter<'_>, millionths: i64) -> fmt::Result {
    let magnitude = millionths.unsigned_abs();
    let whole = magnitude / MILLION;
    let fraction = magnitude % MILLION;
    if millionths < 0 {
        f.write_char('-')?;
    }
    write!(f, "{whole}")?;
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        write!(f, ".{}", digits.trim_end_matches('0'))?;
    }
    Ok(())
}

/// Writes a string as a JSON string literal.
fn write_json_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let json = serde_json::to_string(text).map_err(|_| fmt::Error)?;
    f.write_str(&json)
}

/// Writes `[` the items as JSON strings separated by `,` `]`.
fn write_list(f: &mut fmt::Formatter<'_>, items: &[String]) -> fmt::Result {
    f.write_char('[')?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write_json_string(f, item)?;
    }
    f.write_char(']')
}

/// A predicate: a path, a comparison and a right-hand side.
///
/// For `in [...]`, `cmp` is [`Cmp::Eq`] and `rhs` is [`Rhs::OneOf`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PredicateExpr {
    /// The value compared.
    pub path: Path,
    /// The comparison.
    pub cmp: Cmp,
    /// What the value is compared with.
    pub rhs: Rhs,
}

impl fmt::Display for PredicateExpr {
    /// Writes the canonical text, e.g. `$.user.age>=18` or
    /// `$.user.nationality in ["DE","FR"]`. A list is always written with
    /// `in`, whatever `cmp` is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rhs {
            Rhs::OneOf(_) => write!(f, "{} in {}", self.path, self.rhs),
            rhs => write!(f, "{}{}{}", self.path, self.cmp, rhs),
        }
    }
}

/// Why a predicate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The expression was empty or blank.
    #[error("empty predicate: expected a path, an operator and a value, e.g. $.user.age>=18")]
    Empty,
    /// The path at the start is invalid.
    #[error("invalid predicate {expr:?}: {path_error}")]
    Path {
        /// The expression.
        expr: String,
        /// What is wrong with the path.
        path_error: PathError,
    },
    /// No operator follows the path.
    #[error(
        "invalid predicate {expr:?}: expected an operator (==, !=, <, <=, >, >= or in) after the \
         path {path}, found {}",
        describe(found)
    )]
    MissingOperator {
        /// The expression.
        expr: String,
        /// The path read, in canonical form.
        path: String,
        /// The text after the path.
        found: String,
    },
    /// Text that is neither blank space nor an operator directly follows the path.
    #[error(
        "invalid predicate {expr:?}: the path {path} is directly followed by {text:?}; names \
         with characters other than letters, digits and `_` need bracket notation, e.g. \
         $['first-name'], and the path must be followed by an operator (==, !=, <, <=, >, >= \
         or in)"
    )]
    PathFollowedByText {
        /// The expression.
        expr: String,
        /// The path read, in canonical form.
        path: String,
        /// The text after the path.
        text: String,
    },
    /// `in` without blank space on both sides.
    #[error(
        "invalid predicate {expr:?}: write `in` with spaces on both sides, e.g. \
         $.country in [\"DE\",\"FR\"]"
    )]
    InNeedsSpace {
        /// The expression.
        expr: String,
    },
    /// `in` not followed by a list.
    #[error(
        "invalid predicate {expr:?}: `in` must be followed by a list in brackets, e.g. \
         in [\"DE\",\"FR\",\"NL\"]"
    )]
    InNeedsList {
        /// The expression.
        expr: String,
    },
    /// Nothing follows the operator.
    #[error(
        "invalid predicate {expr:?}: nothing after {op}; expected a value such as 18, -3.5, \
         \"text\", true, false, null, 2001-09-30 or today-18y"
    )]
    MissingValue {
        /// The expression.
        expr: String,
        /// The operator.
        op: Cmp,
    },
    /// A list after a comparison operator.
    #[error(
        "invalid predicate {expr:?}: a list [...] cannot follow {op}; lists go with `in`, e.g. \
         $.country in [\"DE\",\"FR\"]"
    )]
    ListAfterComparison {
        /// The expression.
        expr: String,
        /// The operator.
        op: Cmp,
    },
    /// A double-quoted value that is not a valid JSON string.
    #[error(
        "invalid predicate {expr:?}: {text:?} is not a valid JSON string ({reason}); write text \
         in double quotes with JSON escapes, e.g. \"New York\" or \"say \\\"hi\\\"\""
    )]
    BadString {
        /// The text from the opening quote on.
        text: String,
        /// The expression.
        expr: String,
        /// What the JSON decoder reported.
        reason: String,
    },
    /// A value that starts like a number but is not a supported number.
    #[error(
        "invalid predicate {expr:?}: {text:?} is not a supported number: write an optional -, \
         1 to 12 digits, and optionally a . and 1 to 6 digits, without exponent or +, e.g. 18, \
         -3.5 or 1000.50; to compare with text, put it in double quotes"
    )]
    BadNumber {
        /// The expression.
        expr: String,
        /// The value as written.
        text: String,
    },
    /// A value that starts like a date but is not a valid date.
    #[error(
        "invalid predicate {expr:?}: {text:?} is not a valid date: write dates as YYYY-MM-DD \
         with month 01 to 12 and day 01 to 31, e.g. 2001-09-30; to compare with text, put it in \
         double quotes"
    )]
    BadDate {
        /// The expression.
        expr: String,
        /// The value as written.
        text: String,
    },
    /// A value starting with `today` that is not a supported relative date.
    #[error(
        "invalid predicate {expr:?}: {text:?} is not a supported relative date: write today, \
         today-Ny (N years, at most {MAX_YEARS}), today-Nm (N months, at most {MAX_MONTHS}) or \
         today-Nd (N days, at most {MAX_DAYS}), with exactly one unit"
    )]
    BadToday {
        /// The expression.
        expr: String,
        /// The value as written.
        text: String,
    },
    /// Unquoted text that contains characters not allowed in a bare word.
    #[error(
        "invalid predicate {expr:?}: {text:?} is not a valid unquoted value: unquoted text must \
         not start with =, !, < or > and must not contain blank space, quotes, brackets, commas \
         or control characters; write it as a JSON string in double quotes, e.g. \"New York\""
    )]
    BadWord {
        /// The expression.
        expr: String,
        /// The value as written.
        text: String,
    },
    /// A text constant longer than [`MAX_TEXT`].
    #[error(
        "invalid predicate {expr:?}: a text value is {len} bytes long; text values of at most \
         {MAX_TEXT} bytes (UTF-8) are supported"
    )]
    TextTooLong {
        /// The expression.
        expr: String,
        /// The text's length in bytes.
        len: usize,
    },
    /// An ordering operator with a value that has no order.
    #[error(
        "invalid predicate {expr:?}: only == and != apply to {kind}, not {op}; <, <=, > and >= \
         need a number or a date"
    )]
    OperatorNotAllowed {
        /// The expression.
        expr: String,
        /// The operator.
        op: Cmp,
        /// The kind of value: "text", "true and false" or "null".
        kind: &'static str,
    },
    /// `in []`.
    #[error(
        "invalid predicate {expr:?}: the list after `in` is empty; give 1 to {MAX_CHOICES} items"
    )]
    EmptyList {
        /// The expression.
        expr: String,
    },
    /// A list with more than [`MAX_CHOICES`] items.
    #[error(
        "invalid predicate {expr:?}: the list after `in` has more than {MAX_CHOICES} items; at \
         most {MAX_CHOICES} are supported"
    )]
    TooManyChoices {
        /// The expression.
        expr: String,
    },
    /// The same item twice in a list.
    #[error("invalid predicate {expr:?}: {item:?} appears more than once in the list after `in`")]
    DuplicateChoice {
        /// The expression.
        expr: String,
        /// The repeated item.
        item: String,
    },
    /// A list that is not items separated by commas.
    #[error(
        "invalid predicate {expr:?}: in the list after `in`, expected an item (a JSON string or \
         an unquoted word) followed by , or ], found {}; e.g. in [\"DE\",\"FR\"] or in [DE, FR]",
        describe(found)
    )]
    ListSyntax {
        /// The expression.
        expr: String,
        /// The text where an item, `,` or `]` was expected.
        found: String,
    },
    /// Text after the closing `]` of a list.
    #[error(
        "invalid predicate {expr:?}: unexpected {text:?} after the list; the list must end the \
         expression"
    )]
    TrailingText {
        /// The expression.
        expr: String,
        /// The text after the list.
        text: String,
    },
}

/// Describes the text found where something else was expected.
fn describe(found: &str) -> String {
    if found.is_empty() {
        return "the end of the expression".to_owned();
    }
    format!("{found:?}")
}

/// Parses a predicate such as `$.user.age>=18`, `age >= 18`,
/// `$.since>2001-09-30` or `$.country in ["DE","FR"]`.
pub fn parse_predicate(s: &str) -> Result<PredicateExpr, ExprError> {
    let start = s.trim_start_matches(is_blank);
    if start.is_empty() {
        return Err(ExprError::Empty);
    }
    let (path, rest) = Path::parse_prefix(start).map_err(|path_error| ExprError::Path {
        expr: s.to_owned(),
        path_error,
    })?;
    let (operator, value) = split_operator(s, &path, rest)?;
    let value = value.trim_matches(is_blank);
    let (cmp, rhs) = match operator {
        Operator::In => (Cmp::Eq, parse_list(s, value)?),
        Operator::Cmp(cmp) => (cmp, parse_value(s, cmp, value)?),
    };
    Ok(PredicateExpr { path, cmp, rhs })
}

/// The operator between the path and the value.
enum Operator {
    /// A comparison operator.
    Cmp(Cmp),
    /// The word `in`.
    In,
}

/// The comparison operators, two-character ones first.
const OPERATORS: [(&str, Cmp); 6] = [
    ("==", Cmp::Eq),
    ("!=", Cmp::Ne),
    ("<=", Cmp::Le),
    (">=", Cmp::Ge),
    ("<", Cmp::Lt),
    (">", Cmp::Gt),
];

/// Reads the operator at the start of `rest` (after blank space) and returns
/// it with the text after it.
fn split_operator<'a>(
    expr: &str,
    path: &Path,
    rest: &'a str,
) -> Result<(Operator, &'a str), ExprError> {
    let after_blank = rest.trim_start_matches(is_blank);
    let blank_before = after_blank.len() < rest.len();
    for (symbol, cmp) in OPERATORS {
        if let Some(value) = after_blank.strip_prefix(symbol) {
            return Ok((Operator::Cmp(cmp), value));
        }
    }
    if let Some(value) = after_blank.strip_prefix("in") {
        let blank_after = value.starts_with(is_blank);
        if blank_before && blank_after {
            return Ok((Operator::In, value));
        }
        if blank_before && value.is_empty() {
            return Err(ExprError::InNeedsList {
                expr: expr.to_owned(),
            });
        }
        if blank_after || value.starts_with('[') {
            return Err(ExprError::InNeedsSpace {
                expr: expr.to_owned(),
            });
        }
    }
    if !blank_before && !after_blank.is_empty() {
        return Err(ExprError::PathFollowedByText {
            expr: expr.to_owned(),
            path: path.to_string(),
            text: after_blank.to_owned(),
        });
    }
    Err(ExprError::MissingOperator {
        expr: expr.to_owned(),
        path: path.to_string(),
        found: after_blank.to_owned(),
    })
}

/// Parses the value after a comparison operator and checks that the operator
/// applies to it.
fn parse_value(expr: &str, cmp: Cmp, value: &str) -> Result<Rhs, ExprError> {
    if value.is_empty() {
        return Err(ExprError::MissingValue {
            expr: expr.to_owned(),
            op: cmp,
        });
    }
    if value.starts_with('[') {
        return Err(ExprError::ListAfterComparison {
            expr: expr.to_owned(),
            op: cmp,
        });
    }
    let rhs = classify_value(expr, value)?;
    check_operator(expr, cmp, &rhs)?;
    Ok(rhs)
}

/// Reads a non-empty value of a comparison, detecting its type.
fn classify_value(expr: &str, value: &str) -> Result<Rhs, ExprError> {
    if value.starts_with('"') {
        return decode_json_string(expr, value).map(Rhs::Text);
    }
    match value {
        "true" => return Ok(Rhs::Bool(true)),
        "false" => return Ok(Rhs::Bool(false)),
        "null" => return Ok(Rhs::Null),
        _ => {}
    }
    if is_today_like(value) {
        return parse_today(expr, value).map(Rhs::Date);
    }
    if is_numeric_like(value) {
        return parse_number_or_date(expr, value);
    }
    check_bare_word(expr, value)?;
    Ok(Rhs::Text(value.to_owned()))
}

/// Refuses ordering operators for values that have no order.
fn check_operator(expr: &str, cmp: Cmp, rhs: &Rhs) -> Result<(), ExprError> {
    let kind = match rhs {
        Rhs::Text(_) => "text",
        Rhs::Bool(_) => "true and false",
        Rhs::Null => "null",
        Rhs::Number(_) | Rhs::Date(_) | Rhs::OneOf(_) => return Ok(()),
    };
    if matches!(cmp, Cmp::Eq | Cmp::Ne) {
        return Ok(());
    }
    Err(ExprError::OperatorNotAllowed {
        expr: expr.to_owned(),
        op: cmp,
        kind,
    })
}

/// Decodes a whole JSON string literal and checks its length.
fn decode_json_string(expr: &str, text: &str) -> Result<String, ExprError> {
    let decoded = serde_json::from_str::<String>(text).map_err(|e| ExprError::BadString {
        text: text.to_owned(),
        expr: expr.to_owned(),
        reason: e.to_string(),
    })?;
    check_text_length(expr, &decoded)?;
    Ok(decoded)
}

/// Refuses text longer than [`MAX_TEXT`] bytes.
fn check_text_length(expr: &str, text: &str) -> Result<(), ExprError> {
    if text.len() > MAX_TEXT {
        return Err(ExprError::TextTooLong {
            expr: expr.to_owned(),
            len: text.len(),
        });
    }
    Ok(())
}

/// Checks an unquoted word and its length.
fn check_bare_word(expr: &str, word: &str) -> Result<(), ExprError> {
    let starts_like_operator = word.starts_with(['=', '!', '<', '>']);
    if word.is_empty() || starts_like_operator || word.chars().any(is_forbidden_in_word) {
        return Err(ExprError::BadWord {
            expr: expr.to_owned(),
            text: word.to_owned(),
        });
    }
    check_text_length(expr, word)
}

/// Characters an unquoted word cannot contain.
fn is_forbidden_in_word(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '[' | ']' | '{' | '}' | ',')
}

/// Blank space between the parts of an expression: space, tab, LF, CR.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Whether a value is meant as `today…`: `today`, or `today` followed by a
/// sign.
fn is_today_like(value: &str) -> bool {
    value
        .strip_prefix("today")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '+']))
}

/// Parses `today`, `today-Ny`, `today-Nm` or `today-Nd`.
fn parse_today(expr: &str, value: &str) -> Result<DateExpr, ExprError> {
    if value == "today" {
        return Ok(today_minus(0, 0, 0));
    }
    parse_today_minus(value).ok_or_else(|| ExprError::BadToday {
        expr: expr.to_owned(),
        text: value.to_owned(),
    })
}

/// Parses `today-Ny`, `today-Nm` or `today-Nd` within the limits.
fn parse_today_minus(value: &str) -> Option<DateExpr> {
    let period = value.strip_prefix("today-")?;
    let (digits, unit) = period.split_at_checked(period.len().checked_sub(1)?)?;
    if !is_digits(digits) {
        return None;
    }
    let amount: u32 = digits.parse().ok()?;
    match unit {
        "y" => Some(today_minus(checked_u16(amount, MAX_YEARS)?, 0, 0)),
        "m" => Some(today_minus(0, checked_u16(amount, MAX_MONTHS)?, 0)),
        "d" => (amount <= MAX_DAYS).then(|| today_minus(0, 0, amount)),
        _ => None,
    }
}

/// Builds a [`DateExpr::TodayMinus`].
fn today_minus(years: u16, months: u16, days: u32) -> DateExpr {
    DateExpr::TodayMinus {
        years,
        months,
        days,
    }
}

/// `amount` as a `u16` if it is at most `max`.
fn checked_u16(amount: u32, max: u16) -> Option<u16> {
    u16::try_from(amount).ok().filter(|amount| *amount <= max)
}

/// Whether `s` is one or more ASCII digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a value is meant as a number or a date: after an optional sign
/// and an optional `.`, it starts with a digit.
fn is_numeric_like(value: &str) -> bool {
    let unsigned = value.strip_prefix(['-', '+']).unwrap_or(value);
    let digits = unsigned.strip_prefix('.').unwrap_or(unsigned);
    digits.starts_with(|c: char| c.is_ascii_digit())
}

/// Parses a value that starts like a number: a date if it has a `-` after
/// the first character, otherwise a number.
fn parse_number_or_date(expr: &str, value: &str) -> Result<Rhs, ExprError> {
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    if unsigned.contains('-') {
        return parse_date(expr, value).map(Rhs::Date);
    }
    parse_number(value)
        .map(Rhs::Number)
        .ok_or_else(|| ExprError::BadNumber {
            expr: expr.to_owned(),
            text: value.to_owned(),
        })
}

/// Parses `YYYY-MM-DD` with month 01–12 and day 01–31.
fn parse_date(expr: &str, value: &str) -> Result<DateExpr, ExprError> {
    let parts: Vec<&str> = value.split('-').collect();
    let valid = match parts.as_slice() {
        [year, month, day] => {
            year.len() == 4
                && is_digits(year)
                && is_two_digits_in(month, 1, 12)
                && is_two_digits_in(day, 1, 31)
        }
        _ => false,
    };
    if !valid {
        return Err(ExprError::BadDate {
            expr: expr.to_owned(),
            text: value.to_owned(),
        });
    }
    Ok(DateExpr::Fixed(value.to_owned()))
}

/// Whether `s` is two digits with a value from `min` to `max`.
fn is_two_digits_in(s: &str, min: u8, max: u8) -> bool {
    s.len() == 2 && is_digits(s) && s.parse::<u8>().is_ok_and(|n| (min..=max).contains(&n))
}

/// Parses `-?[0-9]{1,12}(\.[0-9]{1,6})?` into millionths.
fn parse_number(value: &str) -> Option<i64> {
    let (negative, unsigned) = match value.strip_prefix('-') {
        Some(unsigned) => (true, unsigned),
        None => (false, value),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (unsigned, ""),
    };
    let whole_ok = whole.len() <= 12 && is_digits(whole);
    let fraction_ok = fraction.len() <= 6 && (fraction.is_empty() || is_digits(fraction));
    if !whole_ok || !fraction_ok || unsigned.ends_with('.') {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let millionths = whole
        .checked_mul(MILLION)?
        .checked_add(fraction_millionths(fraction)?)?;
    let millionths = i64::try_from(millionths).ok()?;
    if negative {
        return Some(-millionths);
    }
    Some(millionths)
}

/// The value of up to six fraction digits in millionths: `"5"` is 500000.
fn fraction_millionths(fraction: &str) -> Option<u64> {
    format!("{fraction:0<6}").parse().ok()
}

/// Parses the list after `in`: `[` items separated by `,` `]`.
fn parse_list(expr: &str, value: &str) -> Result<Rhs, ExprError> {
    let mut rest = value
        .strip_prefix('[')
        .ok_or_else(|| ExprError::InNeedsList {
            expr: expr.to_owned(),
        })?;
    let mut items: Vec<String> = Vec::new();
    loop {
        rest = rest.trim_start_matches(is_blank);
        if items.is_empty() && rest.starts_with(']') {
            return Err(ExprError::EmptyList {
                expr: expr.to_owned(),
            });
        }
        let (item, after_item) = take_item(expr, rest)?;
        add_choice(expr, &mut items, item)?;
        rest = after_item.trim_start_matches(is_blank);
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if let Some(after_list) = rest.strip_prefix(']') {
            return finish_list(expr, items, after_list);
        } else {
            return Err(ExprError::ListSyntax {
                expr: expr.to_owned(),
                found: rest.to_owned(),
            });
        }
    }
}

/// Reads one list item at the start of `s`: a JSON string or a bare word.
fn take_item<'a>(expr: &str, s: &'a str) -> Result<(String, &'a str), ExprError> {
    if s.starts_with('"') {
        let end = json_string_end(s).unwrap_or(s.len());
        let (literal, rest) = s.split_at_checked(end).unwrap_or((s, ""));
        return Ok((decode_json_string(expr, literal)?, rest));
    }
    let end = s
        .find(|c: char| is_blank(c) || c == ',' || c == ']')
        .unwrap_or(s.len());
    let (word, rest) = s.split_at_checked(end).unwrap_or((s, ""));
    if word.is_empty() {
        return Err(ExprError::ListSyntax {
            expr: expr.to_owned(),
            found: s.to_owned(),
        });
    }
    check_bare_word(expr, word)?;
    Ok((word.to_owned(), rest))
}

/// The byte offset just after the closing quote of the JSON string at the
/// start of `s`, if it is closed.
fn json_string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Some(i + 1);
        }
    }
    None
}

/// Adds an item to a list, refusing duplicates and too many items.
fn add_choice(expr: &str, items: &mut Vec<String>, item: String) -> Result<(), ExprError> {
    if items.contains(&item) {
        return Err(ExprError::DuplicateChoice {
            expr: expr.to_owned(),
            item,
        });
    }
    if items.len() >= MAX_CHOICES {
        return Err(ExprError::TooManyChoices {
            expr: expr.to_owned(),
        });
    }
    items.push(item);
    Ok(())
}

/// Checks that nothing follows the list's `]`.
fn finish_list(expr: &str, items: Vec<String>, after_list: &str) -> Result<Rhs, ExprError> {
    if !after_list.is_empty() {
        return Err(ExprError::TrailingText {
            expr: expr.to_owned(),
            text: after_list.to_owned(),
        });
    }
    Ok(Rhs::OneOf(items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::Segment;
    use proptest::prelude::*;

    fn parse_ok(s: &str) -> PredicateExpr {
        match parse_predicate(s) {
            Ok(e) => e,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn parse_err(s: &str) -> ExprError {
        match parse_predicate(s) {
            Ok(e) => panic!("{s:?} should not parse, got {e:?}"),
            Err(e) => e,
        }
    }

    fn pred(path: &str, cmp: Cmp, rhs: Rhs) -> PredicateExpr {
        PredicateExpr {
            path: Path::parse(path).unwrap(),
            cmp,
            rhs,
        }
    }

    fn text(s: &str) -> Rhs {
        Rhs::Text(s.to_owned())
    }

    fn fixed(s: &str) -> Rhs {
        Rhs::Date(DateExpr::Fixed(s.to_owned()))
    }

    fn today(years: u16, months: u16, days: u32) -> Rhs {
        Rhs::Date(today_minus(years, months, days))
    }

    fn one_of(items: &[&str]) -> Rhs {
        Rhs::OneOf(items.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn brief_examples() {
        let cases = [
            (
                "$.user.age>=18",
                pred("$.user.age", Cmp::Ge, Rhs::Number(18_000_000)),
            ),
            ("age >= 18", pred("$.age", Cmp::Ge, Rhs::Number(18_000_000))),
            (
                "$.account.balance>=1000.50",
                pred("$.account.balance", Cmp::Ge, Rhs::Number(1_000_500_000)),
            ),
            (
                "$.user.birthdate<=today-18y",
                pred("$.user.birthdate", Cmp::Le, today(18, 0, 0)),
            ),
            (
                "$.since>2001-09-30",
                pred("$.since", Cmp::Gt, fixed("2001-09-30")),
            ),
            (
                "$.user.nationality==US",
                pred("$.user.nationality", Cmp::Eq, text("US")),
            ),
            (
                "$.user.nationality==\"US\"",
                pred("$.user.nationality", Cmp::Eq, text("US")),
            ),
            (
                "$.user.verified==true",
                pred("$.user.verified", Cmp::Eq, Rhs::Bool(true)),
            ),
            (
                "$.user.middle_name==null",
                pred("$.user.middle_name", Cmp::Eq, Rhs::Null),
            ),
            (
                "$.user.nationality in [\"DE\",\"FR\",\"NL\"]",
                pred("$.user.nationality", Cmp::Eq, one_of(&["DE", "FR", "NL"])),
            ),
            (
                "$['odd key'] != \"x\"",
                pred("$['odd key']", Cmp::Ne, text("x")),
            ),
            (
                "$.temp < -3.5",
                pred("$.temp", Cmp::Lt, Rhs::Number(-3_500_000)),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_ok(input), expected, "{input}");
        }
    }

    #[test]
    fn canonical_text() {
        let cases = [
            ("$.user.age>=18", "$.user.age>=18"),
            ("age >= 18", "$.age>=18"),
            ("$.account.balance>=1000.50", "$.account.balance>=1000.5"),
            ("$.user.birthdate<=today-18y", "$.user.birthdate<=today-18y"),
            ("$.since>2001-09-30", "$.since>2001-09-30"),
            ("$.user.nationality==US", "$.user.nationality==\"US\""),
            ("$.user.verified==true", "$.user.verified==true"),
            ("$.user.verified != false", "$.user.verified!=false"),
            ("$.user.middle_name==null", "$.user.middle_name==null"),
            (
                "$.user.nationality in [ DE , \"FR\",NL ]",
                "$.user.nationality in [\"DE\",\"FR\",\"NL\"]",
            ),
            ("$['odd key'] != \"x\"", "$['odd key']!=\"x\""),
            ("$.temp < -3.5", "$.temp<-3.5"),
            ("$.a==0.000001", "$.a==0.000001"),
            ("$.a==007", "$.a==7"),
            ("$.a==-0", "$.a==0"),
            ("$.a==-0.0", "$.a==0"),
            ("$.a<today", "$.a<today"),
            ("$.a<today-0y", "$.a<today"),
            ("$.a<today-6m", "$.a<today-6m"),
            ("$.a<today-30d", "$.a<today-30d"),
            ("  $.a[0]\t==\n\"é\\n\"  ", "$.a[0]==\"é\\n\""),
        ];
        for (input, canonical) in cases {
            let parsed = parse_ok(input);
            assert_eq!(parsed.to_string(), canonical, "{input}");
            assert_eq!(parse_ok(canonical), parsed, "{canonical}");
        }
    }

    #[test]
    fn operators() {
        for (symbol, cmp) in OPERATORS {
            assert_eq!(parse_ok(&format!("$.a{symbol}1")).cmp, cmp);
            assert_eq!(parse_ok(&format!("$.a {symbol} 1")).cmp, cmp);
            assert_eq!(cmp.symbol(), symbol);
            assert_eq!(cmp.to_string(), symbol);
        }
    }

    #[test]
    fn numbers() {
        let cases = [
            ("0", 0),
            ("1", 1_000_000),
            ("1000.5", 1_000_500_000),
            ("-3.5", -3_500_000),
            ("0.000001", 1),
            ("-0.000001", -1),
            ("999999999999.999999", 999_999_999_999_999_999),
            ("-999999999999.999999", -999_999_999_999_999_999),
        ];
        for (input, millionths) in cases {
            let e = parse_ok(&format!("$.n=={input}"));
            assert_eq!(e.rhs, Rhs::Number(millionths), "{input}");
        }
        assert_eq!(Rhs::Number(-1).to_string(), "-0.000001");
        assert_eq!(Rhs::Number(i64::MIN).to_string(), "-9223372036854.775808");
    }

    #[test]
    fn bad_numbers() {
        for input in [
            "1e3",
            "1E3",
            "1234567890123",
            "1.1234567",
            "1.",
            ".5",
            "-.5",
            "+5",
            "+.5",
            "12abc",
            "1.2.3",
            "0x10",
            "-5e1",
            "1_000",
        ] {
            let err = parse_err(&format!("$.n>{input}"));
            assert!(
                matches!(&err, ExprError::BadNumber { text, .. } if text == input),
                "{input}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.contains("1 to 12 digits"), "{message}");
            assert!(message.contains("1 to 6 digits"), "{message}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_ok("$.d>=0000-01-01").rhs, fixed("0000-01-01"));
        assert_eq!(parse_ok("$.d>=2024-02-31").rhs, fixed("2024-02-31"));
        assert_eq!(parse_ok("$.d==2024-12-31").rhs, fixed("2024-12-31"));
        for input in [
            "2024-13-01",
            "2024-00-01",
            "2024-01-00",
            "2024-01-32",
            "2024-1-5",
            "24-01-01",
            "2024-01-01-01",
            "-2024-01-01",
            "2024-01-0a",
            "2024-01-",
        ] {
            let err = parse_err(&format!("$.d>{input}"));
            assert!(
                matches!(&err, ExprError::BadDate { text, .. } if text == input),
                "{input}: {err:?}"
            );
            assert!(err.to_string().contains("YYYY-MM-DD"));
        }
    }

    #[test]
    fn relative_dates() {
        assert_eq!(parse_ok("$.d<=today").rhs, today(0, 0, 0));
        assert_eq!(parse_ok("$.d<=today-200y").rhs, today(200, 0, 0));
        assert_eq!(parse_ok("$.d<=today-2400m").rhs, today(0, 2400, 0));
        assert_eq!(parse_ok("$.d<=today-100000d").rhs, today(0, 0, 100_000));
        assert_eq!(parse_ok("$.d<=today-018y").rhs, today(18, 0, 0));
        for input in [
            "today-201y",
            "today-2401m",
            "today-100001d",
            "today-99999999999999d",
            "today-",
            "today-y",
            "today-5",
            "today-5w",
            "today+5d",
            "today-1y2m",
            "today-1y-2m",
            "today--1d",
            "today-5é",
        ] {
            let err = parse_err(&format!("$.d<={input}"));
            assert!(
                matches!(&err, ExprError::BadToday { text, .. } if text == input),
                "{input}: {err:?}"
            );
        }
        // Words that merely start with "today" are text.
        assert_eq!(parse_ok("$.d==todays").rhs, text("todays"));
    }

    #[test]
    fn text_values() {
        assert_eq!(parse_ok("$.a==\"123\"").rhs, text("123"));
        assert_eq!(parse_ok("$.a==\"2024-01-01\"").rhs, text("2024-01-01"));
        assert_eq!(parse_ok("$.a==\"true\"").rhs, text("true"));
        assert_eq!(parse_ok("$.a==\"\"").rhs, text(""));
        assert_eq!(parse_ok("$.a==\"a b\"").rhs, text("a b"));
        assert_eq!(parse_ok("$.a==\"\\u00e9\\\"\"").rhs, text("é\""));
        assert_eq!(parse_ok("$.a==True").rhs, text("True"));
        assert_eq!(parse_ok("$.a==-").rhs, text("-"));
        assert_eq!(parse_ok("$.a==C:\\x").rhs, text("C:\\x"));
        assert_eq!(parse_ok("$.a==naïve").rhs, text("naïve"));
        let longest = "x".repeat(MAX_TEXT);
        assert_eq!(parse_ok(&format!("$.a=={longest}")).rhs, text(&longest));
        assert_eq!(parse_ok(&format!("$.a==\"{longest}\"")).rhs, text(&longest));
    }

    #[test]
    fn text_errors() {
        let too_long = "x".repeat(MAX_TEXT + 1);
        for input in [format!("$.a=={too_long}"), format!("$.a==\"{too_long}\"")] {
            assert!(matches!(
                parse_err(&input),
                ExprError::TextTooLong { len: 65, .. }
            ));
        }
        for input in ["\"abc", "\"a\" b", "\"\\x\"", "\"\\ud800\"", "\"a\u{1}\""] {
            let err = parse_err(&format!("$.a=={input}"));
            assert!(
                matches!(err, ExprError::BadString { .. }),
                "{input}: {err:?}"
            );
        }
        for input in [
            "New York", "'x'", "a\"b", "{x}", "a,b", "a]", "=3", "!x", ">3", "a\u{7}",
        ] {
            let err = parse_err(&format!("$.a=={input}"));
            assert!(
                matches!(&err, ExprError::BadWord { text, .. } if text == input),
                "{input}: {err:?}"
            );
        }
    }

    #[test]
    fn ordering_needs_number_or_date() {
        for (input, kind) in [
            ("$.a<x", "text"),
            ("$.a>=\"x\"", "text"),
            ("$.a>true", "true and false"),
            ("$.a<=null", "null"),
        ] {
            let err = parse_err(input);
            assert!(
                matches!(&err, ExprError::OperatorNotAllowed { kind: k, .. } if *k == kind),
                "{input}: {err:?}"
            );
            assert!(err
                .to_string()
                .contains(&format!("only == and != apply to {kind}")));
        }
    }

    #[test]
    fn lists() {
        assert_eq!(parse_ok("$.a in [x]").rhs, one_of(&["x"]));
        assert_eq!(
            parse_ok("$.a in [ \"1\" ,2,\t\"a,b]\" ]").rhs,
            one_of(&["1", "2", "a,b]"])
        );
        assert_eq!(
            parse_ok("$.a in [true, null]").rhs,
            one_of(&["true", "null"])
        );
        assert_eq!(parse_ok("a in [x]").path, Path::parse("$.a").unwrap());
        let sixteen: Vec<String> = (0..MAX_CHOICES).map(|i| format!("v{i}")).collect();
        let e = parse_ok(&format!("$.a in [{}]", sixteen.join(",")));
        assert_eq!(e.rhs, Rhs::OneOf(sixteen));
    }

    #[test]
    fn list_errors() {
        let seventeen: Vec<String> = (0..=MAX_CHOICES).map(|i| format!("v{i}")).collect();
        let too_many = format!("$.a in [{}]", seventeen.join(","));
        assert!(matches!(
            parse_err(&too_many),
            ExprError::TooManyChoices { .. }
        ));
        assert!(matches!(
            parse_err("$.a in [\"DE\", DE]"),
            ExprError::DuplicateChoice { item, .. } if item == "DE"
        ));
        assert!(matches!(
            parse_err("$.a in []"),
            ExprError::EmptyList { .. }
        ));
        assert!(matches!(
            parse_err("$.a in [ ]"),
            ExprError::EmptyList { .. }
        ));
        for input in [
            "$.a in [x,]",
            "$.a in [x",
            "$.a in [x y]",
            "$.a in [,x]",
            "$.a in [x,,y]",
        ] {
            let err = parse_err(input);
            assert!(
                matches!(err, ExprError::ListSyntax { .. }),
                "{input}: {err:?}"
            );
        }
        assert!(matches!(
            parse_err("$.a in [x] y"),
            ExprError::TrailingText { text, .. } if text == " y"
        ));
        assert!(matches!(
            parse_err("$.a in [\"x]"),
            ExprError::BadString { .. }
        ));
        assert!(matches!(
            parse_err("$.a in ['x']"),
            ExprError::BadWord { .. }
        ));
        let long = "x".repeat(MAX_TEXT + 1);
        assert!(matches!(
            parse_err(&format!("$.a in [{long}]")),
            ExprError::TextTooLong { .. }
        ));
        for input in ["$.a in x", "$.a in \"x\"", "$.a in", "$.a in  "] {
            let err = parse_err(input);
            assert!(
                matches!(err, ExprError::InNeedsList { .. }),
                "{input}: {err:?}"
            );
        }
        for input in ["$.a in[x]", "$[0]in [x]"] {
            let err = parse_err(input);
            assert!(
                matches!(err, ExprError::InNeedsSpace { .. }),
                "{input}: {err:?}"
            );
        }
        assert!(matches!(
            parse_err("$.a==[x]"),
            ExprError::ListAfterComparison { op: Cmp::Eq, .. }
        ));
    }

    #[test]
    fn structure_errors() {
        assert_eq!(parse_err(""), ExprError::Empty);
        assert_eq!(parse_err(" \t "), ExprError::Empty);
        assert!(matches!(
            parse_err("$.a"),
            ExprError::MissingOperator { found, .. } if found.is_empty()
        ));
        assert!(matches!(
            parse_err("$.a 3"),
            ExprError::MissingOperator { found, .. } if found == "3"
        ));
        assert!(matches!(
            parse_err("$.a = 3"),
            ExprError::MissingOperator { found, .. } if found == "= 3"
        ));
        assert!(matches!(
            parse_err("$.a index"),
            ExprError::MissingOperator { .. }
        ));
        let err = parse_err("first-name>=3");
        assert!(matches!(
            &err,
            ExprError::PathFollowedByText { path, text, .. } if path == "$.first" && text == "-name>=3"
        ));
        assert!(err.to_string().contains("$['first-name']"));
        assert!(matches!(
            parse_err("$.a>="),
            ExprError::MissingValue { op: Cmp::Ge, .. }
        ));
        assert!(matches!(
            parse_err("$.a ==  "),
            ExprError::MissingValue { op: Cmp::Eq, .. }
        ));
        assert!(matches!(parse_err("$.a===3"), ExprError::BadWord { .. }));
        assert!(matches!(parse_err("$.a<>3"), ExprError::BadWord { .. }));
    }

    #[test]
    fn path_errors_are_wrapped() {
        for input in ["$[-1]>=3", "$.*==1", "$>=3", ">=3", "$['a>=3"] {
            let err = parse_err(input);
            assert!(
                matches!(&err, ExprError::Path { expr, .. } if expr == input),
                "{input}: {err:?}"
            );
            assert!(err
                .to_string()
                .starts_with(&format!("invalid predicate {input:?}: ")));
        }
        assert!(parse_err("$[-1]>=3")
            .to_string()
            .contains("negative indexes (counting from the end) are not supported"));
    }

    #[test]
    fn messages_quote_the_expression() {
        let err = parse_err("$.a<x");
        assert_eq!(
            err.to_string(),
            "invalid predicate \"$.a<x\": only == and != apply to text, not <; <, <=, > and >= \
             need a number or a date"
        );
        assert_eq!(
            parse_err("$.a").to_string(),
            "invalid predicate \"$.a\": expected an operator (==, !=, <, <=, >, >= or in) after \
             the path $.a, found the end of the expression"
        );
    }

    #[test]
    fn serde_round_trip() {
        let e = parse_ok("$.user.nationality in [\"DE\",\"FR\"]");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<PredicateExpr>(&json).unwrap(), e);
    }

    #[test]
    fn display_of_hand_built_values() {
        let e = PredicateExpr {
            path: Path::new(vec![Segment::Name("a".to_owned())]).unwrap(),
            cmp: Cmp::Ne,
            rhs: one_of(&["x"]),
        };
        assert_eq!(e.to_string(), "$.a in [\"x\"]");
        assert_eq!(today(1, 2, 3).to_string(), "today-1y-2m-3d");
    }

    fn arb_path() -> impl Strategy<Value = Path> {
        let segment = prop_oneof![
            prop::collection::vec(any::<char>(), 0..=16)
                .prop_map(|chars| Segment::Name(chars.into_iter().collect())),
            "[a-z_][a-z0-9_]{0,8}".prop_map(Segment::Name),
            (0..=crate::path::MAX_INDEX).prop_map(Segment::Index),
        ];
        prop::collection::vec(segment, 1..=crate::path::MAX_SEGMENTS)
            .prop_map(|segments| Path::new(segments).unwrap())
    }

    fn arb_text() -> impl Strategy<Value = String> {
        // At most 16 characters of at most 4 bytes: within MAX_TEXT.
        prop_oneof![
            prop::collection::vec(any::<char>(), 0..=16).prop_map(String::from_iter),
            "[a-zA-Z0-9 \"\\\\,\\[\\]-]{0,16}",
        ]
    }

    fn arb_date() -> impl Strategy<Value = DateExpr> {
        prop_oneof![
            (0..=9999_u32, 1..=12_u32, 1..=31_u32)
                .prop_map(|(y, m, d)| DateExpr::Fixed(format!("{y:04}-{m:02}-{d:02}"))),
            (0..=MAX_YEARS).prop_map(|y| today_minus(y, 0, 0)),
            (0..=MAX_MONTHS).prop_map(|m| today_minus(0, m, 0)),
            (0..=MAX_DAYS).prop_map(|d| today_minus(0, 0, d)),
        ]
    }

    fn any_cmp() -> impl Strategy<Value = Cmp> {
        prop::sample::select(OPERATORS.map(|(_, cmp)| cmp).to_vec())
    }

    fn equality_cmp() -> impl Strategy<Value = Cmp> {
        prop::sample::select(vec![Cmp::Eq, Cmp::Ne])
    }

    fn arb_comparison() -> impl Strategy<Value = (Cmp, Rhs)> {
        let max = 999_999_999_999_999_999_i64;
        prop_oneof![
            (any_cmp(), -max..=max).prop_map(|(c, n)| (c, Rhs::Number(n))),
            (any_cmp(), -1000_i64..=1000).prop_map(|(c, n)| (c, Rhs::Number(n * 250_000))),
            (any_cmp(), arb_date()).prop_map(|(c, d)| (c, Rhs::Date(d))),
            (equality_cmp(), arb_text()).prop_map(|(c, t)| (c, Rhs::Text(t))),
            (equality_cmp(), any::<bool>()).prop_map(|(c, b)| (c, Rhs::Bool(b))),
            equality_cmp().prop_map(|c| (c, Rhs::Null)),
            prop::collection::hash_set(arb_text(), 1..=MAX_CHOICES)
                .prop_map(|items| (Cmp::Eq, Rhs::OneOf(items.into_iter().collect()))),
        ]
    }

    fn arb_predicate() -> impl Strategy<Value = PredicateExpr> {
        (arb_path(), arb_comparison()).prop_map(|(path, (cmp, rhs))| PredicateExpr {
            path,
            cmp,
            rhs,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn canonical_round_trip(e in arb_predicate()) {
            let text = e.to_string();
            let back = parse_predicate(&text);
            prop_assert_eq!(back.as_ref(), Ok(&e), "{}", text);
            if let Ok(back) = back {
                prop_assert_eq!(back.to_string(), text);
            }
        }

        #[test]
        fn spaced_form_parses_the_same(e in arb_predicate()) {
            let spaced = match &e.rhs {
                Rhs::OneOf(_) => format!(" {} in  {} ", e.path, e.rhs),
                rhs => format!("\t{} {} {}\n", e.path, e.cmp, rhs),
            };
            prop_assert_eq!(parse_predicate(&spaced), Ok(e));
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_predicate(&s);
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            let _ = parse_predicate(&s);
        }

        #[test]
        fn never_panics_on_predicate_like(
            s in "[$.a-z0-9\\[\\]'\" =!<>,.\\\\-]{0,30}",
        ) {
            if let Ok(e) = parse_predicate(&s) {
                prop_assert_eq!(parse_predicate(&e.to_string()), Ok(e));
            }
        }
    }
}
