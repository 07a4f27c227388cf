//! JSONPath singular queries: the subset of RFC 9535 that selects at most one
//! value by object member names and array indexes.
//!
//! A [`Path`] is written as `$` followed by steps such as `.name`, `['odd key']`
//! or `[0]`, e.g. `$.user.address.country` or `$.friends[0].name`. A "bare"
//! input without the leading `$` is read as if `$.` were prepended
//! (`user.name` is `$.user.name`). The [`Display`](std::fmt::Display) form of a
//! path is its canonical text, which parses back to the same path.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The most steps (segments) a path may have.
pub const MAX_SEGMENTS: usize = 8;
/// The longest member name a path may use, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 64;
/// The largest array index a path may use.
pub const MAX_INDEX: u32 = 4095;

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Segment {
    /// Select the member of an object with this name.
    Name(String),
    /// Select the element of an array at this position (counting from 0).
    Index(u32),
}

/// A JSONPath singular query: one to [`MAX_SEGMENTS`] name or index steps
/// starting at the root of a JSON document.
///
/// Every `Path` value respects the limits [`MAX_SEGMENTS`], [`MAX_NAME_BYTES`]
/// and [`MAX_INDEX`] and has at least one step; deserialization checks them too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "Vec<Segment>")]
pub struct Path(Vec<Segment>);

/// What was found where something else was expected while parsing a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// This character.
    Char(char),
    /// The end of the input.
    End,
}

impl From<Option<char>> for Found {
    /// `Some(c)` is [`Found::Char`], `None` is [`Found::End`].
    fn from(c: Option<char>) -> Self {
        c.map_or(Found::End, Found::Char)
    }
}

impl fmt::Display for Found {
    /// Writes the character quoted and escaped, or "the end of the path".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Char(c) => write!(f, "{c:?}"),
            Found::End => f.write_str("the end of the path"),
        }
    }
}

/// A syntax problem at one position of a path, see [`PathError::Syntax`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxProblem {
    /// A dot-notation name was expected.
    #[error(
        "expected a name, found {found}; a name in dot notation starts with a letter, `_` or a \
         non-ASCII character and continues with those or digits"
    )]
    ExpectedName {
        /// What was found instead.
        found: Found,
    },
    /// Something other than a quoted name or an index followed `[`.
    #[error(
        "expected a quoted name ('name' or \"name\") or an index (0 to {MAX_INDEX}) after `[`, \
         found {found}"
    )]
    ExpectedSelector {
        /// What was found instead.
        found: Found,
    },
    /// A bracketed step was not closed with `]`.
    #[error("expected `]` to close the step, found {found}")]
    ExpectedCloseBracket {
        /// What was found instead.
        found: Found,
    },
    /// Text that cannot continue a path followed it.
    #[error(
        "unexpected {text:?} after the path; a path continues only with steps such as .name, \
         ['name'] or [0]"
    )]
    TrailingText {
        /// The rest of the input, from the first character that could not be read.
        text: String,
    },
    /// A JSONPath feature other than name and index selectors was used.
    #[error(
        "{feature} are not supported; only name steps (.name or ['name']) and index steps \
         ([0]) are supported"
    )]
    Unsupported {
        /// The feature, e.g. "wildcards (*)".
        feature: &'static str,
    },
    /// An index with a minus sign.
    #[error(
        "negative indexes (counting from the end) are not supported; use an index from 0 to \
         {MAX_INDEX}"
    )]
    NegativeIndex,
    /// An index with a superfluous leading zero, such as `[07]`.
    #[error("indexes are written without leading zeros, e.g. [7] rather than [07]")]
    LeadingZero,
    /// A quoted name without its closing quote.
    #[error("the quoted name is not closed; add the closing quote")]
    UnterminatedString,
    /// A control character written as is inside a quoted name.
    #[error(
        "unescaped control character U+{code:04X} in a quoted name; write it as an escape such \
         as \\n or \\u001f"
    )]
    ControlCharacter {
        /// The character's code point.
        code: u32,
    },
    /// A backslash followed by a character that does not form an escape.
    #[error(
        "invalid escape: a backslash followed by {found}; accepted escapes are \\b \\f \\n \\r \
         \\t \\/ \\\\ \\' (inside '...'), \\\" (inside \"...\") and \\uXXXX"
    )]
    InvalidEscape {
        /// What followed the backslash.
        found: Found,
    },
    /// `\u` not followed by four hexadecimal digits.
    #[error("\\u must be followed by 4 hexadecimal digits, e.g. \\u00e9")]
    InvalidUnicodeEscape,
    /// A `\u` escape of a UTF-16 surrogate that is not part of a valid pair.
    #[error(
        "\\u{code:04X} is half of a UTF-16 surrogate pair without its other half; write a \
         high and a low surrogate together, e.g. \\uD83D\\uDE00, or the character itself"
    )]
    LoneSurrogate {
        /// The surrogate's code unit.
        code: u32,
    },
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The input was empty.
    #[error(
        "empty path: expected a JSONPath such as $.user.name, or a bare name such as user.name"
    )]
    Empty,
    /// The path has no steps, so it would select the whole document.
    #[error(
        "invalid path {input:?}: a path needs at least one step after `$` (the whole document \
         cannot be selected), e.g. $.name or $[0]"
    )]
    NoSteps {
        /// The input.
        input: String,
    },
    /// The input is not valid path syntax.
    #[error("invalid path {input:?} at character {position}: {problem}")]
    Syntax {
        /// The input.
        input: String,
        /// Where the problem is, counting characters from 1.
        position: usize,
        /// What is wrong.
        problem: SyntaxProblem,
    },
    /// A bare input (without the leading `$`) is not valid path syntax.
    #[error(
        "invalid path {input:?} at character {position}: {problem}; a path without a leading `$` \
         is read as `$.` followed by the text, so names with characters other than letters, \
         digits and `_` need bracket notation: use {suggestion}"
    )]
    Bare {
        /// The input.
        input: String,
        /// Where the problem is, counting characters from 1.
        position: usize,
        /// What is wrong.
        problem: SyntaxProblem,
        /// A path in bracket notation the user may have meant.
        suggestion: String,
    },
    /// The path has more than [`MAX_SEGMENTS`] steps.
    #[error(
        "invalid path {input:?}: it has more than {MAX_SEGMENTS} steps; at most {MAX_SEGMENTS} \
         steps are supported"
    )]
    TooManySteps {
        /// The input.
        input: String,
    },
    /// A name is longer than [`MAX_NAME_BYTES`].
    #[error(
        "invalid path {input:?}: the name {name:?} is {len} bytes long; names of at most \
         {MAX_NAME_BYTES} bytes (UTF-8) are supported"
    )]
    NameTooLong {
        /// The input.
        input: String,
        /// The name.
        name: String,
        /// The name's length in bytes.
        len: usize,
    },
    /// An index is larger than [`MAX_INDEX`].
    #[error(
        "invalid path {input:?}: the index {index} is too large; indexes from 0 to {MAX_INDEX} \
         are supported"
    )]
    IndexTooLarge {
        /// The input.
        input: String,
        /// The index as written.
        index: String,
    },
    /// The path uses a name that can never match a key, see [`Path::check_matchable`].
    #[error(
        "the path {path} cannot be used: keys containing quotes (\"), backslashes (\\) or \
         control characters (U+0000 to U+001F) cannot be selected"
    )]
    Unmatchable {
        /// The path in canonical form.
        path: String,
    },
}

impl Path {
    /// Parses a whole string as a path, e.g. `$.user.name`, `$['odd key'][0]`
    /// or the bare `user.name`.
    pub fn parse(s: &str) -> Result<Path, PathError> {
        let (segments, end) = parse_segments(s)?;
        if let Some(text) = s.get(end..).filter(|rest| !rest.is_empty()) {
            let problem = SyntaxProblem::TrailingText {
                text: text.to_owned(),
            };
            return Err(syntax_error(s, end, problem));
        }
        Path::from_parsed(s, segments)
    }

    /// Parses the longest path at the start of `s` and returns it with the
    /// rest of `s`, untouched: `"$.a.b>=3"` gives `$.a.b` and `">=3"`.
    ///
    /// A step that has begun (with `.` or `[`) must be complete. It is an
    /// error if no path can be read at the start of `s`.
    pub fn parse_prefix(s: &str) -> Result<(Path, &str), PathError> {
        let (segments, end) = parse_segments(s)?;
        let path = Path::from_parsed(s, segments)?;
        Ok((path, s.get(end..).unwrap_or("")))
    }

    /// The steps of the path, in order from the root.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Builds a path from steps, checking that there is at least one and the
    /// limits [`MAX_SEGMENTS`], [`MAX_NAME_BYTES`] and [`MAX_INDEX`].
    pub fn new(segments: Vec<Segment>) -> Result<Path, PathError> {
        let input = render(&segments);
        if segments.len() > MAX_SEGMENTS {
            return Err(PathError::TooManySteps { input });
        }
        for segment in &segments {
            check_segment(&input, segment)?;
        }
        Path::from_parsed(&input, segments)
    }

    /// Checks that every name in the path can match a raw JSON key byte for
    /// byte: names containing `"`, `\` or a control character (U+0000 to
    /// U+001F) never can, because such keys are escaped in JSON text.
    pub fn check_matchable(&self) -> Result<(), PathError> {
        let unmatchable = self.0.iter().any(|segment| match segment {
            Segment::Name(name) => name.chars().any(is_unmatchable_char),
            Segment::Index(_) => false,
        });
        if unmatchable {
            return Err(PathError::Unmatchable {
                path: self.to_string(),
            });
        }
        Ok(())
    }

    /// Wraps already checked steps, refusing an empty list.
    fn from_parsed(input: &str, segments: Vec<Segment>) -> Result<Path, PathError> {
        if segments.is_empty() {
            return Err(PathError::NoSteps {
                input: input.to_owned(),
            });
        }
        Ok(Path(segments))
    }
}

impl TryFrom<Vec<Segment>> for Path {
    type Error = PathError;

    /// Same as [`Path::new`].
    fn try_from(segments: Vec<Segment>) -> Result<Path, PathError> {
        Path::new(segments)
    }
}

impl FromStr for Path {
    type Err = PathError;

    /// Same as [`Path::parse`].
    fn from_str(s: &str) -> Result<Path, PathError> {
        Path::parse(s)
    }
}

impl fmt::Display for Path {
    /// Writes the canonical form, e.g. `$.friends[0].name` or `$['odd key']`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_segments(f, &self.0)
    }
}

/// Writes `$` and the canonical form of each step.
fn write_segments(out: &mut impl fmt::Write, segments: &[Segment]) -> fmt::Result {
    out.write_char('$')?;
    for segment in segments {
        match segment {
            Segment::Index(index) => write!(out, "[{index}]")?,
            Segment::Name(name) if is_plain_ascii_name(name) => write!(out, ".{name}")?,
            Segment::Name(name) => write_quoted_name(out, name)?,
        }
    }
    Ok(())
}

/// Writes a name as `['…']` with RFC 9535 normalized-path escaping.
fn write_quoted_name(out: &mut impl fmt::Write, name: &str) -> fmt::Result {
    out.write_str("['")?;
    for c in name.chars() {
        match c {
            '\'' => out.write_str("\\'")?,
            '\\' => out.write_str("\\\\")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c <= '\u{1f}' => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_str("']")
}

/// The canonical text of a list of steps, valid or not.
fn render(segments: &[Segment]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_segments(&mut out, segments);
    out
}

/// Whether a name is written in dot notation in canonical form.
fn is_plain_ascii_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 9535 name-first: ALPHA / "_" / any character from U+0080.
fn is_name_first(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

/// RFC 9535 name-char: name-first / DIGIT.
fn is_name_char(c: char) -> bool {
    is_name_first(c) || c.is_ascii_digit()
}

/// RFC 9535 blank space: space, tab, line feed, carriage return.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Characters that a raw JSON key can never contain unescaped.
fn is_unmatchable_char(c: char) -> bool {
    c == '"' || c == '\\' || c <= '\u{1f}'
}

/// Checks the per-step limits [`MAX_NAME_BYTES`] and [`MAX_INDEX`].
fn check_segment(input: &str, segment: &Segment) -> Result<(), PathError> {
    match segment {
        Segment::Name(name) if name.len() > MAX_NAME_BYTES => Err(PathError::NameTooLong {
            input: input.to_owned(),
            name: name.clone(),
            len: name.len(),
        }),
        Segment::Index(index) if *index > MAX_INDEX => Err(PathError::IndexTooLarge {
            input: input.to_owned(),
            index: index.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The 1-based character position of a byte offset in `input`.
fn char_position(input: &str, byte_pos: usize) -> usize {
    input.get(..byte_pos).map_or(0, |s| s.chars().count()) + 1
}

/// Builds the syntax error for a problem at `byte_pos`, in the bare form if
/// the input does not start with `$`.
fn syntax_error(input: &str, byte_pos: usize, problem: SyntaxProblem) -> PathError {
    let position = char_position(input, byte_pos);
    if input.starts_with('$') {
        return PathError::Syntax {
            input: input.to_owned(),
            position,
            problem,
        };
    }
    PathError::Bare {
        input: input.to_owned(),
        position,
        problem,
        suggestion: bare_suggestion(input),
    }
}

/// A bracket-notation path to suggest for a bare input that failed to parse.
fn bare_suggestion(input: &str) -> String {
    if input.starts_with('[') {
        format!("${input}")
    } else if input.contains(['.', '[']) {
        "$.user['first-name']".to_owned()
    } else {
        render(&[Segment::Name(input.to_owned())])
    }
}

/// Reads the longest path at the start of `input`; returns its steps (not yet
/// checked to be non-empty) and the byte offset where it ends.
fn parse_segments(input: &str) -> Result<(Vec<Segment>, usize), PathError> {
    if input.is_empty() {
        return Err(PathError::Empty);
    }
    let mut parser = Parser { input, pos: 0 };
    let mut segments = Vec::new();
    if !parser.eat('$') {
        let name = parser.shorthand_name()?;
        parser.push(&mut segments, name)?;
    }
    while let Some(segment) = parser.next_segment()? {
        parser.push(&mut segments, segment)?;
    }
    Ok((segments, parser.pos))
}

/// A cursor over the input of [`parse_segments`].
struct Parser<'a> {
    input: &'a str,
    /// Byte offset of the next character; always on a character boundary.
    pos: usize,
}

impl Parser<'_> {
    /// The input from the cursor on.
    fn rest(&self) -> &str {
        self.input.get(self.pos..).unwrap_or("")
    }

    /// The next character, without consuming it.
    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// The character after the next one, without consuming anything.
    fn peek_second(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    /// Consumes and returns the next character.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes the next character if it is `c`.
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            return true;
        }
        false
    }

    /// Consumes blank space.
    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.bump();
        }
    }

    /// A syntax error at byte offset `pos`.
    fn error_at(&self, pos: usize, problem: SyntaxProblem) -> PathError {
        syntax_error(self.input, pos, problem)
    }

    /// An "unsupported feature" error at the next character.
    fn unsupported(&self, feature: &'static str) -> PathError {
        self.error_at(self.pos, SyntaxProblem::Unsupported { feature })
    }

    /// Appends a step after checking the limits.
    fn push(&self, segments: &mut Vec<Segment>, segment: Segment) -> Result<(), PathError> {
        if segments.len() >= MAX_SEGMENTS {
            return Err(PathError::TooManySteps {
                input: self.input.to_owned(),
            });
        }
        check_segment(self.input, &segment)?;
        segments.push(segment);
        Ok(())
    }

    /// Reads the next step, if blank space and then `.` or `[` follow;
    /// otherwise leaves the cursor where it was.
    fn next_segment(&mut self) -> Result<Option<Segment>, PathError> {
        let before = self.pos;
        self.skip_blanks();
        if self.eat('.') {
            return self.dot_step().map(Some);
        }
        if self.eat('[') {
            return self.bracket_step().map(Some);
        }
        self.pos = before;
        Ok(None)
    }

    /// Reads what follows a `.`.
    fn dot_step(&mut self) -> Result<Segment, PathError> {
        match self.peek() {
            Some('*') => Err(self.unsupported("wildcards (*)")),
            Some('.') => Err(self.unsupported("descendant steps (..)")),
            _ => self.shorthand_name(),
        }
    }

    /// Reads an RFC 9535 member-name-shorthand.
    fn shorthand_name(&mut self) -> Result<Segment, PathError> {
        let start = self.pos;
        match self.peek() {
            Some(c) if is_name_first(c) => self.bump(),
            found => {
                let problem = SyntaxProblem::ExpectedName {
                    found: found.into(),
                };
                return Err(self.error_at(start, problem));
            }
        };
        while self.peek().is_some_and(is_name_char) {
            self.bump();
        }
        let name = self.input.get(start..self.pos).unwrap_or("");
        Ok(Segment::Name(name.to_owned()))
    }

    /// Reads what follows a `[`, up to and including the `]`.
    fn bracket_step(&mut self) -> Result<Segment, PathError> {
        self.skip_blanks();
        let segment = self.selector()?;
        self.skip_blanks();
        match self.peek() {
            Some(']') => {
                self.bump();
                Ok(segment)
            }
            Some(',') => Err(self.unsupported("lists of selectors (,)")),
            Some(':') => Err(self.unsupported("slices (:)")),
            found => Err(self.error_at(
                self.pos,
                SyntaxProblem::ExpectedCloseBracket {
                    found: found.into(),
                },
            )),
        }
    }

    /// Reads a name or index selector inside brackets.
    fn selector(&mut self) -> Result<Segment, PathError> {
        match self.peek() {
            Some(quote @ ('\'' | '"')) => self.string_literal(quote).map(Segment::Name),
            Some(c) if c.is_ascii_digit() => self.index().map(Segment::Index),
            Some('-') if self.peek_second().is_some_and(|c| c.is_ascii_digit()) => {
                Err(self.error_at(self.pos, SyntaxProblem::NegativeIndex))
            }
            Some('*') => Err(self.unsupported("wildcards (*)")),
            Some('?') => Err(self.unsupported("filters (?)")),
            Some(':') => Err(self.unsupported("slices (:)")),
            found => Err(self.error_at(
                self.pos,
                SyntaxProblem::ExpectedSelector {
                    found: found.into(),
                },
            )),
        }
    }

    /// Reads an index: `0` or a non-zero digit followed by digits.
    fn index(&mut self) -> Result<u32, PathError> {
        let start = self.pos;
        if self.eat('0') {
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error_at(start, SyntaxProblem::LeadingZero));
            }
            return Ok(0);
        }
        let mut value: Option<u32> = Some(0);
        while let Some(digit) = self.peek().and_then(|c| c.to_digit(10)) {
            self.bump();
            value = value
                .and_then(|v| v.checked_mul(10))
                .and_then(|v| v.checked_add(digit));
        }
        match value {
            Some(index) if index <= MAX_INDEX => Ok(index),
            _ => Err(PathError::IndexTooLarge {
                input: self.input.to_owned(),
                index: self.input.get(start..self.pos).unwrap_or("").to_owned(),
            }),
        }
    }

    /// Reads a string literal quoted with `quote`, decoding escapes.
    fn string_literal(&mut self, quote: char) -> Result<String, PathError> {
        let open = self.pos;
        self.bump();
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(self.error_at(open, SyntaxProblem::UnterminatedString)),
                Some(c) if c == quote => return Ok(out),
                Some('\\') => out.push(self.escape(quote, at)?),
                Some(c) if c <= '\u{1f}' => {
                    let problem = SyntaxProblem::ControlCharacter { code: u32::from(c) };
                    return Err(self.error_at(at, problem));
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Decodes the escape after a backslash at byte offset `at`.
    fn escape(&mut self, quote: char, at: usize) -> Result<char, PathError> {
        match self.bump() {
            Some('b') => Ok('\u{8}'),
            Some('f') => Ok('\u{c}'),
            Some('n') => Ok('\n'),
            Some('r') => Ok('\r'),
            Some('t') => Ok('\t'),
            Some('/') => Ok('/'),
            Some('\\') => Ok('\\'),
            Some(c @ ('\'' | '"')) if c == quote => Ok(c),
            Some('u') => self.unicode_escape(at),
            found => Err(self.error_at(
                at,
                SyntaxProblem::InvalidEscape {
                    found: found.into(),
                },
            )),
        }
    }

    /// Decodes what follows `\u`, including the second half of a surrogate pair.
    fn unicode_escape(&mut self, at: usize) -> Result<char, PathError> {
        let first = self.hex4(at)?;
        let lone = SyntaxProblem::LoneSurrogate { code: first };
        if (0xDC00..=0xDFFF).contains(&first) {
            return Err(self.error_at(at, lone));
        }
        if !(0xD800..=0xDBFF).contains(&first) {
            return char::from_u32(first).ok_or_else(|| self.error_at(at, lone));
        }
        if !(self.eat('\\') && self.eat('u')) {
            return Err(self.error_at(at, lone));
        }
        let second = self.hex4(at)?;
        if !(0xDC00..=0xDFFF).contains(&second) {
            return Err(self.error_at(at, lone));
        }
        let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
        char::from_u32(code).ok_or_else(|| self.error_at(at, lone))
    }

    /// Reads four hexadecimal digits.
    fn hex4(&mut self, at: usize) -> Result<u32, PathError> {
        let mut value = 0;
        for _ in 0..4 {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(digit) => {
                    self.bump();
                    value = value * 16 + digit;
                }
                None => return Err(self.error_at(at, SyntaxProblem::InvalidUnicodeEscape)),
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> Segment {
        Segment::Name(s.to_owned())
    }

    fn path(segments: Vec<Segment>) -> Path {
        Path::new(segments).unwrap()
    }

    fn parse_ok(s: &str) -> Path {
        match Path::parse(s) {
            Ok(p) => p,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn parse_err(s: &str) -> PathError {
        match Path::parse(s) {
            Ok(p) => panic!("{s:?} should not parse, got {p:?}"),
            Err(e) => e,
        }
    }

    fn problem(s: &str) -> SyntaxProblem {
        match parse_err(s) {
            PathError::Syntax { problem, .. } | PathError::Bare { problem, .. } => problem,
            other => panic!("{s:?}: expected a syntax error, got {other:?}"),
        }
    }

    fn unsupported(s: &str) -> &'static str {
        match problem(s) {
            SyntaxProblem::Unsupported { feature } => feature,
            other => panic!("{s:?}: expected an unsupported feature, got {other:?}"),
        }
    }

    #[test]
    fn dot_names() {
        assert_eq!(parse_ok("$.user"), path(vec![name("user")]));
        assert_eq!(parse_ok("$._x"), path(vec![name("_x")]));
        assert_eq!(parse_ok("$.naïve"), path(vec![name("naïve")]));
        assert_eq!(parse_ok("$.a1_b2"), path(vec![name("a1_b2")]));
        assert_eq!(
            parse_ok("$.user.address.country"),
            path(vec![name("user"), name("address"), name("country")])
        );
    }

    #[test]
    fn dot_name_errors() {
        assert!(matches!(
            problem("$.first-name"),
            SyntaxProblem::TrailingText { text } if text == "-name"
        ));
        assert_eq!(
            problem("$.1a"),
            SyntaxProblem::ExpectedName {
                found: Found::Char('1')
            }
        );
        assert_eq!(
            problem("$."),
            SyntaxProblem::ExpectedName { found: Found::End }
        );
        assert_eq!(
            problem("$.a. b"),
            SyntaxProblem::ExpectedName {
                found: Found::Char(' ')
            }
        );
    }

    #[test]
    fn quoted_names() {
        assert_eq!(parse_ok("$['name']"), path(vec![name("name")]));
        assert_eq!(parse_ok("$[\"name\"]"), path(vec![name("name")]));
        assert_eq!(parse_ok("$['a b']"), path(vec![name("a b")]));
        assert_eq!(parse_ok("$['']"), path(vec![name("")]));
        assert_eq!(parse_ok("$['say \"hi\"']"), path(vec![name("say \"hi\"")]));
        assert_eq!(parse_ok("$[\"it's\"]"), path(vec![name("it's")]));
        assert_eq!(parse_ok("$['\u{7f}']"), path(vec![name("\u{7f}")]));
    }

    #[test]
    fn escapes() {
        let cases = [
            (r"$['\b']", "\u{8}"),
            (r"$['\f']", "\u{c}"),
            (r"$['\n']", "\n"),
            (r"$['\r']", "\r"),
            (r"$['\t']", "\t"),
            (r"$['\/']", "/"),
            (r"$['\\']", "\\"),
            (r"$['\'']", "'"),
            (r#"$["\""]"#, "\""),
            (r"$['\u00e9']", "é"),
            (r"$['\u00E9']", "é"),
            (r"$['\uD83D\uDE00']", "😀"),
            (r"$['\ud83d\ude00']", "😀"),
            (r"$['a\u0000b']", "a\u{0}b"),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_ok(input), path(vec![name(expected)]), "{input}");
        }
    }

    #[test]
    fn escape_errors() {
        assert_eq!(
            problem(r#"$['\"']"#),
            SyntaxProblem::InvalidEscape {
                found: Found::Char('"')
            }
        );
        assert_eq!(
            problem(r#"$["\'"]"#),
            SyntaxProblem::InvalidEscape {
                found: Found::Char('\'')
            }
        );
        assert_eq!(
            problem(r"$['\x']"),
            SyntaxProblem::InvalidEscape {
                found: Found::Char('x')
            }
        );
        assert_eq!(
            problem(r"$['\"),
            SyntaxProblem::InvalidEscape { found: Found::End }
        );
        assert_eq!(problem(r"$['\u12']"), SyntaxProblem::InvalidUnicodeEscape);
        assert_eq!(problem(r"$['\u12g4']"), SyntaxProblem::InvalidUnicodeEscape);
        assert_eq!(
            problem(r"$['\uD83D']"),
            SyntaxProblem::LoneSurrogate { code: 0xD83D }
        );
        assert_eq!(
            problem(r"$['\uDE00']"),
            SyntaxProblem::LoneSurrogate { code: 0xDE00 }
        );
        assert_eq!(
            problem(r"$['\uD83D\u0041']"),
            SyntaxProblem::LoneSurrogate { code: 0xD83D }
        );
        assert_eq!(
            problem(r"$['\uD83Dx']"),
            SyntaxProblem::LoneSurrogate { code: 0xD83D }
        );
        assert_eq!(
            problem("$['a\nb']"),
            SyntaxProblem::ControlCharacter { code: 0x0A }
        );
        assert_eq!(
            problem("$['\u{1f}']"),
            SyntaxProblem::ControlCharacter { code: 0x1F }
        );
        assert_eq!(problem("$['abc"), SyntaxProblem::UnterminatedString);
        assert_eq!(problem("$[\"abc']"), SyntaxProblem::UnterminatedString);
    }

    #[test]
    fn blank_space_in_brackets() {
        assert_eq!(parse_ok("$[ 'a' ]"), path(vec![name("a")]));
        assert_eq!(parse_ok("$[ 0 ]"), path(vec![Segment::Index(0)]));
        assert_eq!(parse_ok("$[\t\r\n1\n]"), path(vec![Segment::Index(1)]));
    }

    #[test]
    fn blank_space_between_steps() {
        assert_eq!(parse_ok("$ .a [0]"), parse_ok("$.a[0]"));
    }

    #[test]
    fn indexes() {
        assert_eq!(parse_ok("$[0]"), path(vec![Segment::Index(0)]));
        assert_eq!(parse_ok("$[10]"), path(vec![Segment::Index(10)]));
        assert_eq!(parse_ok("$[4095]"), path(vec![Segment::Index(MAX_INDEX)]));
        assert_eq!(
            parse_ok("$.friends[0].name"),
            path(vec![name("friends"), Segment::Index(0), name("name")])
        );
        assert_eq!(
            parse_ok("$.a[0]['b c'].d"),
            path(vec![name("a"), Segment::Index(0), name("b c"), name("d")])
        );
    }

    #[test]
    fn index_errors() {
        assert_eq!(problem("$[-1]"), SyntaxProblem::NegativeIndex);
        assert_eq!(problem("$[01]"), SyntaxProblem::LeadingZero);
        assert_eq!(problem("$[00]"), SyntaxProblem::LeadingZero);
        assert_eq!(
            problem("$[+1]"),
            SyntaxProblem::ExpectedSelector {
                found: Found::Char('+')
            }
        );
        assert_eq!(
            problem("$[1.5]"),
            SyntaxProblem::ExpectedCloseBracket {
                found: Found::Char('.')
            }
        );
        assert_eq!(
            problem("$[1"),
            SyntaxProblem::ExpectedCloseBracket { found: Found::End }
        );
        assert_eq!(
            problem("$[]"),
            SyntaxProblem::ExpectedSelector {
                found: Found::Char(']')
            }
        );
        assert_eq!(
            problem("$[a]"),
            SyntaxProblem::ExpectedSelector {
                found: Found::Char('a')
            }
        );
        for big in ["$[4096]", "$[99999999999999999999999]"] {
            let digits = big.trim_start_matches("$[").trim_end_matches(']');
            assert_eq!(
                parse_err(big),
                PathError::IndexTooLarge {
                    input: big.to_owned(),
                    index: digits.to_owned()
                }
            );
        }
    }

    #[test]
    fn unsupported_features() {
        assert_eq!(unsupported("$.*"), "wildcards (*)");
        assert_eq!(unsupported("$[*]"), "wildcards (*)");
        assert_eq!(unsupported("$..a"), "descendant steps (..)");
        assert_eq!(unsupported("$[1:2]"), "slices (:)");
        assert_eq!(unsupported("$[:2]"), "slices (:)");
        assert_eq!(unsupported("$[?@.a]"), "filters (?)");
        assert_eq!(unsupported("$[0,1]"), "lists of selectors (,)");
        assert_eq!(unsupported("$['a','b']"), "lists of selectors (,)");
    }

    #[test]
    fn root_alone_is_refused() {
        assert_eq!(
            parse_err("$"),
            PathError::NoSteps {
                input: "$".to_owned()
            }
        );
        assert!(parse_err("$").to_string().contains("at least one step"));
        assert_eq!(
            Path::parse_prefix("$>=3"),
            Err(PathError::NoSteps {
                input: "$>=3".to_owned()
            })
        );
        assert!(matches!(Path::new(vec![]), Err(PathError::NoSteps { .. })));
    }

    #[test]
    fn empty_is_refused() {
        assert_eq!(parse_err(""), PathError::Empty);
        assert_eq!(Path::parse_prefix(""), Err(PathError::Empty));
    }

    #[test]
    fn trailing_text() {
        assert!(matches!(
            problem("$a"),
            SyntaxProblem::TrailingText { text } if text == "a"
        ));
        assert!(matches!(
            problem("$.a "),
            SyntaxProblem::TrailingText { text } if text == " "
        ));
    }

    #[test]
    fn bare_paths() {
        assert_eq!(parse_ok("name"), parse_ok("$.name"));
        assert_eq!(
            parse_ok("user.address.country"),
            parse_ok("$.user.address.country")
        );
        assert_eq!(parse_ok("friends[0].name"), parse_ok("$.friends[0].name"));
        assert_eq!(parse_ok("naïve"), parse_ok("$.naïve"));
    }

    #[test]
    fn bare_errors_suggest_brackets() {
        let err = parse_err("first-name");
        assert_eq!(
            err,
            PathError::Bare {
                input: "first-name".to_owned(),
                position: 6,
                problem: SyntaxProblem::TrailingText {
                    text: "-name".to_owned()
                },
                suggestion: "$['first-name']".to_owned(),
            }
        );
        assert!(err.to_string().contains("use $['first-name']"), "{err}");
        assert!(matches!(
            parse_err("1a"),
            PathError::Bare { suggestion, .. } if suggestion == "$['1a']"
        ));
        assert!(matches!(
            parse_err("[0]"),
            PathError::Bare { suggestion, .. } if suggestion == "$[0]"
        ));
        assert!(matches!(
            parse_err("user.first-name"),
            PathError::Bare { position: 11, .. }
        ));
        assert!(matches!(
            Path::parse_prefix(">=3"),
            Err(PathError::Bare { position: 1, .. })
        ));
    }

    #[test]
    fn error_messages() {
        let cases = [
            (
                "$[-1]",
                "negative indexes (counting from the end) are not supported",
            ),
            ("$[4096]", "4095"),
            (
                "$.*",
                "only name steps (.name or ['name']) and index steps ([0]) are supported",
            ),
            ("$", "at least one step"),
            ("$['a", "\"$['a\" at character 3"),
            ("$.a.b.c.d.e.f.g.h.i", "at most 8 steps"),
        ];
        for (input, needle) in cases {
            let message = parse_err(input).to_string();
            assert!(message.contains(needle), "{input}: {message}");
        }
    }

    #[test]
    fn positions_count_characters() {
        assert!(matches!(
            parse_err("$.é[x]"),
            PathError::Syntax { position: 5, .. }
        ));
    }

    #[test]
    fn segment_limit() {
        let eight = "$.a.b.c.d.e.f.g.h";
        assert_eq!(parse_ok(eight).segments().len(), MAX_SEGMENTS);
        assert_eq!(
            parse_err("$.a.b.c.d.e.f.g.h[0]"),
            PathError::TooManySteps {
                input: "$.a.b.c.d.e.f.g.h[0]".to_owned()
            }
        );
        assert!(matches!(
            Path::new(vec![Segment::Index(0); MAX_SEGMENTS + 1]),
            Err(PathError::TooManySteps { .. })
        ));
    }

    #[test]
    fn name_limit() {
        let longest = "x".repeat(MAX_NAME_BYTES);
        assert!(Path::parse(&format!("$.{longest}")).is_ok());
        let too_long = format!("{longest}y");
        assert!(matches!(
            parse_err(&format!("$.{too_long}")),
            PathError::NameTooLong { len: 65, .. }
        ));
        // 22 characters of 3 bytes each: 66 bytes.
        let multibyte = "€".repeat(22);
        assert!(matches!(
            parse_err(&format!("$['{multibyte}']")),
            PathError::NameTooLong { len: 66, .. }
        ));
        assert!(matches!(
            Path::new(vec![Segment::Name(too_long)]),
            Err(PathError::NameTooLong { .. })
        ));
        assert!(matches!(
            Path::new(vec![Segment::Index(MAX_INDEX + 1)]),
            Err(PathError::IndexTooLarge { .. })
        ));
    }

    #[test]
    fn parse_prefix_examples() {
        let (p, rest) = Path::parse_prefix("$.a.b>=3").unwrap();
        assert_eq!((p.to_string().as_str(), rest), ("$.a.b", ">=3"));
        let (p, rest) = Path::parse_prefix("age>=18").unwrap();
        assert_eq!((p.to_string().as_str(), rest), ("$.age", ">=18"));
        let (p, rest) = Path::parse_prefix("$.a >= 3").unwrap();
        assert_eq!((p.to_string().as_str(), rest), ("$.a", " >= 3"));
        let (p, rest) = Path::parse_prefix("$['odd key'] != \"x\"").unwrap();
        assert_eq!(
            (p.to_string().as_str(), rest),
            ("$['odd key']", " != \"x\"")
        );
        let (p, rest) = Path::parse_prefix("$.a in [\"x\"]").unwrap();
        assert_eq!((p.to_string().as_str(), rest), ("$.a", " in [\"x\"]"));
        let (p, rest) = Path::parse_prefix("$.a[0]").unwrap();
        assert_eq!((p.to_string().as_str(), rest), ("$.a[0]", ""));
        assert!(Path::parse_prefix("$.a[-1]>=3").is_err());
        assert!(Path::parse_prefix("$.a.>=3").is_err());
    }

    #[test]
    fn canonical_form() {
        let cases = [
            ("$.user.address.country", "$.user.address.country"),
            ("$.friends[0].name", "$.friends[0].name"),
            ("$['odd key']", "$['odd key']"),
            ("$['first-name']", "$['first-name']"),
            ("$.naïve", "$['naïve']"),
            ("$[\"it's\"]", r"$['it\'s']"),
            (r"$['a\\b']", r"$['a\\b']"),
            ("$[\"a\\\"b\"]", "$['a\"b']"),
            (r"$['\b\f\n\r\t']", r"$['\b\f\n\r\t']"),
            (r"$['\u0000\u001F\u007f']", "$['\\u0000\\u001f\u{7f}']"),
            ("$[\"_\"]", "$._"),
            ("$['a1']", "$.a1"),
            ("$['1a']", "$['1a']"),
            ("$['']", "$['']"),
        ];
        for (input, canonical) in cases {
            assert_eq!(parse_ok(input).to_string(), canonical, "{input}");
            assert_eq!(parse_ok(canonical).to_string(), canonical, "{canonical}");
        }
    }

    /// RFC 9535 Table 15 (Normalized Path examples), limited to singular queries.
    #[test]
    fn rfc9535_normalized_paths() {
        let cases = [
            ("$.a", "$['a']"),
            ("$[1]", "$[1]"),
            ("$.a.b[1]", "$['a']['b'][1]"),
            ("$[\"\\u000B\"]", r"$['\u000b']"),
            ("$[\"\\u0061\"]", "$['a']"),
        ];
        for (query, normalized) in cases {
            assert_eq!(parse_ok(query), parse_ok(normalized), "{query}");
        }
        assert_eq!(parse_ok("$[\"\\u000B\"]").to_string(), r"$['\u000b']");
        assert_eq!(parse_ok("$[\"\\u0061\"]").to_string(), "$.a");
    }

    #[test]
    fn from_str_and_segments() {
        let p: Path = "$.a[3]".parse().unwrap();
        assert_eq!(p.segments(), &[name("a"), Segment::Index(3)]);
    }

    #[test]
    fn matchable() {
        assert!(parse_ok("$.a['b c'][0]['é\u{7f}']")
            .check_matchable()
            .is_ok());
        for bad in ["$['a\"b']", r"$['a\\b']", r"$['a\nb']", r"$['\u0000']"] {
            let err = parse_ok(bad).check_matchable().unwrap_err();
            assert!(
                matches!(&err, PathError::Unmatchable { path } if *path == parse_ok(bad).to_string())
            );
            assert!(err.to_string().contains("cannot be selected"), "{err}");
        }
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let p = parse_ok("$.a[0]['b c']");
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"[{"Name":"a"},{"Index":0},{"Name":"b c"}]"#);
        assert_eq!(serde_json::from_str::<Path>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Path>("[]").is_err());
        assert!(serde_json::from_str::<Path>(r#"[{"Index":4096}]"#).is_err());
    }

    fn arb_name_char() -> impl Strategy<Value = char> {
        prop_oneof![
            any::<char>(),
            prop::sample::select(vec![
                '\'', '"', '\\', '.', '[', ']', ' ', '$', '-', 'ï', '😀'
            ]),
            proptest::char::range('\u{0}', '\u{1f}'),
            proptest::char::range('a', 'z'),
        ]
    }

    fn arb_segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            // At most 16 characters of at most 4 bytes: within MAX_NAME_BYTES.
            prop::collection::vec(arb_name_char(), 0..=16)
                .prop_map(|chars| Segment::Name(chars.into_iter().collect())),
            "[a-z_][a-z0-9_]{0,10}".prop_map(Segment::Name),
            (0..=MAX_INDEX).prop_map(Segment::Index),
        ]
    }

    fn arb_path() -> impl Strategy<Value = Path> {
        prop::collection::vec(arb_segment(), 1..=MAX_SEGMENTS).prop_map(path)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn canonical_round_trip(p in arb_path()) {
            let text = p.to_string();
            let back = Path::parse(&text);
            prop_assert_eq!(back.as_ref(), Ok(&p), "{}", text);
            if let Ok(back) = back {
                prop_assert_eq!(back.to_string(), text);
            }
        }

        #[test]
        fn canonical_prefix_round_trip(p in arb_path(), rest in "[ <>=!][^\\[.]{0,8}") {
            let text = format!("{p}{rest}");
            let parsed = Path::parse_prefix(&text);
            prop_assert_eq!(parsed, Ok((p, rest.as_str())));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = Path::parse(&s);
        }

        #[test]
        fn parse_never_panics_on_path_like(s in "[$.\\[\\]'\"\\\\u0-9a-zA-Z:*?,\\- é]{0,30}") {
            if let Ok(p) = Path::parse(&s) {
                prop_assert_eq!(Path::parse(&p.to_string()), Ok(p));
            }
        }

        #[test]
        fn parse_prefix_returns_a_suffix(s in "[$.\\[\\]'\"\\\\u0-9a-zA-Z<>=! é]{0,30}") {
            if let Ok((p, rest)) = Path::parse_prefix(&s) {
                prop_assert!(s.ends_with(rest));
                let consumed = s.get(..s.len() - rest.len());
                prop_assert!(consumed.is_some());
                if let Some(consumed) = consumed {
                    prop_assert_eq!(Path::parse(consumed), Ok(p));
                }
            }
        }

        #[test]
        fn parse_prefix_never_panics(s in any::<String>()) {
            if let Ok((_, rest)) = Path::parse_prefix(&s) {
                prop_assert!(s.ends_with(rest));
            }
        }
    }
}
