//! HTTP/1.1 as the committee proves it: the request line and Host header, the response's
//! status, where its head ends, the headers that decide how its body is framed, and the
//! chunked framing. The layout ([`HttpLayout`]) is public — the client reads it off its
//! plaintext, the nodes check it against the record lengths, and the circuit checks it
//! against the bytes — so the nodes learn the head's length, the status and the chunk
//! sizes, never a header's value other than the framing ones, and never the body.
//!
//! What the circuit checks ([`check_head`], [`check_bytes`]):
//! - the request begins with `METHOD SP TARGET SP HTTP/1.1 CRLF Host: HOST CRLF`;
//! - the response begins with `HTTP/1.x SP DDD SP`, `DDD` three digits, not `1xx`;
//! - the head ends with the first `CRLF CRLF`, at the declared length, and no header line is
//!   continued (obs-fold);
//! - every `Content-Length`, `Transfer-Encoding` and `Content-Encoding` line is one the
//!   layout declares, at its declared place, byte for byte (the nodes parse the declared
//!   lines: identity coding only, `chunked` only, a length that fits);
//! - chunk size lines and the CRLFs around chunk data are where the layout says.
//!
//! A field can never come from a header: the scan and byte ranges read body content only.

use serde::{Deserialize, Serialize};

use crate::logic::{and_all, const_byte, or_all, Byte, Logic};

/// Longest response head the circuit checks.
pub const MAX_HEAD: usize = 16 * 1024;
/// Longest request line plus Host line.
pub const MAX_REQUEST_PREFIX: usize = 4096;
/// Most chunks a chunked body may have.
pub const MAX_CHUNKS: usize = 4096;

/// The header names whose lines the layout must declare (lowercase).
pub const FRAMING_HEADERS: [&str; 3] = ["content-length", "transfer-encoding", "content-encoding"];

/// A framing header line, as it appears in the head.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HeadLine {
    /// Offset of the line's first byte in the response.
    pub at: u32,
    /// The line without its CRLF, e.g. `Content-Length: 1234`.
    pub text: String,
}

/// How the body is delimited.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Framing {
    /// Neither a length nor chunked: the body runs until the server closes.
    Close,
    /// `Content-Length`: the body is exactly this many bytes, and nothing follows.
    Length(u32),
    /// `Transfer-Encoding: chunked`: each chunk's size line as sent (hex digits), then the
    /// last chunk's (zeros); no extensions, no trailers.
    Chunked {
        /// Size lines of the data chunks, as sent (e.g. `1a3`).
        sizes: Vec<String>,
        /// The last chunk's size line (e.g. `0`).
        last: String,
    },
}

/// The public layout of one HTTP exchange.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HttpLayout {
    /// The request's method.
    pub method: String,
    /// The request target (origin form: starts with `/`).
    pub target: String,
    /// The Host header's value.
    pub host: String,
    /// The response head's length, its final CRLF CRLF included.
    pub head_len: u32,
    /// Every framing header line ([`FRAMING_HEADERS`]) of the head, in order.
    pub lines: Vec<HeadLine>,
    /// How the body is delimited.
    pub framing: Framing,
}

/// Why an HTTP exchange cannot be proven, or a layout is not consistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request is not a request line and a Host line as Tessera sends them.
    #[error("the request does not start with 'METHOD /target HTTP/1.1' and a Host header line")]
    Request,
    /// No end of the head.
    #[error("the response has no complete HTTP head (no blank line within {MAX_HEAD} bytes)")]
    NoHead,
    /// A malformed status line.
    #[error("the response's status line is not 'HTTP/1.x DDD reason'")]
    StatusLine,
    /// An interim response.
    #[error("the response is an interim 1xx response, which cannot be proven")]
    Interim,
    /// A continued header line.
    #[error(
        "the response head continues a header line over several lines (obs-fold), which is refused"
    )]
    Folded,
    /// A content coding other than identity.
    #[error("the provider sent 'Content-Encoding: {0}': only identity (uncompressed) bodies can be proven; the request asks for identity, so the provider ignored it")]
    Coding(String),
    /// A transfer coding other than chunked.
    #[error("the provider sent 'Transfer-Encoding: {0}': only chunked is supported")]
    Transfer(String),
    /// A framing header twice, or both length and chunked.
    #[error("the response has {0}, which makes its length ambiguous")]
    Ambiguous(&'static str),
    /// A bad Content-Length value.
    #[error("the response's Content-Length {0:?} is not a length")]
    Length(String),
    /// The body does not match its framing.
    #[error("the response body does not match its framing: {0}")]
    Body(String),
    /// A layout that contradicts the records or the limits.
    #[error("invalid HTTP layout: {0}")]
    Layout(String),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads the request line and Host line of a request Tessera sent.
pub fn parse_request(request: &[u8]) -> Result<(String, String, String), HttpError> {
    let line_end = find(request, b"\r\n").ok_or(HttpError::Request)?;
    let line = std::str::from_utf8(&request[..line_end]).map_err(|_| HttpError::Request)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some("HTTP/1.1"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Request);
    };
    let rest = &request[line_end + 2..];
    let host_end = find(rest, b"\r\n").ok_or(HttpError::Request)?;
    let host_line = std::str::from_utf8(&rest[..host_end]).map_err(|_| HttpError::Request)?;
    let host = host_line.strip_prefix("Host: ").ok_or(HttpError::Request)?;
    let lay = (method.to_string(), target.to_string(), host.to_string());
    check_request_parts(&lay.0, &lay.1, &lay.2)?;
    Ok(lay)
}

fn check_request_parts(method: &str, target: &str, host: &str) -> Result<(), HttpError> {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
    };
    let visible = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_graphic());
    if !token(method)
        || !target.starts_with('/')
        || !visible(target)
        || !visible(host)
        || request_prefix(method, target, host).len() > MAX_REQUEST_PREFIX
    {
        return Err(HttpError::Request);
    }
    Ok(())
}

/// The bytes a request must begin with.
pub fn request_prefix(method: &str, target: &str, host: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n").into_bytes()
}

/// The response's head and framing as the client reads them off its plaintext, and the
/// body content (de-chunked). The same rules the circuit checks, plus clear errors for what
/// it refuses.
pub fn parse_response(response: &[u8]) -> Result<(u32, Vec<HeadLine>, Framing, u16), HttpError> {
    let head_end =
        find(&response[..response.len().min(MAX_HEAD)], b"\r\n\r\n").ok_or(HttpError::NoHead)?;
    let head_len = head_end + 4;
    let head = &response[..head_len];
    let status = parse_status(head)?;
    let mut lines = Vec::new();
    let mut length = None;
    let mut chunked = false;
    let mut at = find(head, b"\r\n").ok_or(HttpError::NoHead)? + 2;
    while at < head_end + 2 {
        let end = at + find(&head[at..], b"\r\n").ok_or(HttpError::NoHead)?;
        let line = &head[at..end];
        if line.first().is_some_and(|&c| c == b' ' || c == b'\t') {
            return Err(HttpError::Folded);
        }
        if let Some(name) = framing_name(line) {
            let text = String::from_utf8(line.to_vec())
                .map_err(|_| HttpError::Length("(not UTF-8)".into()))?;
            let value = text[name.len() + 1..].trim_matches([' ', '\t']).to_string();
            match name {
                "content-length" => {
                    if length.is_some() {
                        return Err(HttpError::Ambiguous("two Content-Length headers"));
                    }
                    length = Some(parse_length(&value)?);
                }
                "transfer-encoding" => {
                    if chunked {
                        return Err(HttpError::Ambiguous("two Transfer-Encoding headers"));
                    }
                    if !value.eq_ignore_ascii_case("chunked") {
                        return Err(HttpError::Transfer(value));
                    }
                    chunked = true;
                }
                _ => {
                    if !value.eq_ignore_ascii_case("identity") {
                        return Err(HttpError::Coding(value));
                    }
                }
            }
            lines.push(HeadLine {
                at: at as u32,
                text,
            });
        }
        at = end + 2;
    }
    let body = &response[head_len..];
    let framing = match (length, chunked) {
        (Some(_), true) => {
            return Err(HttpError::Ambiguous(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (Some(n), false) => {
            if body.len() != n as usize {
                return Err(HttpError::Body(format!(
                    "Content-Length says {n} bytes, the connection carried {}",
                    body.len()
                )));
            }
            Framing::Length(n)
        }
        (None, true) => parse_chunks(body)?,
        (None, false) => Framing::Close,
    };
    Ok((head_len as u32, lines, framing, status))
}

fn parse_status(head: &[u8]) -> Result<u16, HttpError> {
    let ok = head.len() >= 13
        && head.starts_with(b"HTTP/1.")
        && matches!(head[7], b'0' | b'1')
        && head[8] == b' '
        && head[9..12].iter().all(u8::is_ascii_digit)
        && head[12] == b' ';
    if !ok {
        return Err(HttpError::StatusLine);
    }
    if head[9] == b'1' {
        return Err(HttpError::Interim);
    }
    Ok(head[9..12]
        .iter()
        .fold(0u16, |a, &d| a * 10 + u16::from(d - b'0')))
}

/// The framing header a line names (lowercase), if any: `name:` with no space before the
/// colon, case-insensitive.
fn framing_name(line: &[u8]) -> Option<&'static str> {
    FRAMING_HEADERS.into_iter().find(|n| {
        line.len() > n.len()
            && line[..n.len()].eq_ignore_ascii_case(n.as_bytes())
            && line[n.len()] == b':'
    })
}

fn parse_length(v: &str) -> Result<u32, HttpError> {
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(HttpError::Length(v.to_string()));
    }
    v.parse().map_err(|_| HttpError::Length(v.to_string()))
}

fn parse_chunks(body: &[u8]) -> Result<Framing, HttpError> {
    let mut sizes = Vec::new();
    let mut at = 0;
    loop {
        let end = at
            + find(&body[at..], b"\r\n")
                .ok_or_else(|| HttpError::Body("a chunk size line without CRLF".into()))?;
        let line = std::str::from_utf8(&body[at..end])
            .map_err(|_| HttpError::Body("a chunk size line that is not text".into()))?;
        if line.contains(';') {
            return Err(HttpError::Body("chunk extensions are not supported".into()));
        }
        let size = chunk_size(line)
            .ok_or_else(|| HttpError::Body(format!("{line:?} is not a chunk size")))?;
        at = end + 2;
        if size == 0 {
            if body.get(at..) != Some(b"\r\n") {
                return Err(HttpError::Body(
                    "trailers or bytes after the last chunk are not supported".into(),
                ));
            }
            return Ok(Framing::Chunked {
                sizes,
                last: line.to_string(),
            });
        }
        let data_end = at + size as usize;
        if body.get(data_end..data_end + 2) != Some(b"\r\n") {
            return Err(HttpError::Body("a chunk is not followed by CRLF".into()));
        }
        sizes.push(line.to_string());
        if sizes.len() > MAX_CHUNKS {
            return Err(HttpError::Body(format!("more than {MAX_CHUNKS} chunks")));
        }
        at = data_end + 2;
    }
}

/// The size a chunk size line says: 1 to 8 hex digits.
pub fn chunk_size(line: &str) -> Option<u32> {
    if line.is_empty() || line.len() > 8 || !line.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(line, 16).ok()
}

/// A run of body content: `len` bytes at response offset `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Offset in the response.
    pub at: usize,
    /// Bytes.
    pub len: usize,
}

impl HttpLayout {
    /// Checks the layout against a response of `total` bytes and the limits, and returns
    /// the body content's runs (in order) and the framing bytes the circuit checks (offset,
    /// expected bytes).
    #[allow(clippy::type_complexity)]
    pub fn resolve(&self, total: usize) -> Result<(Vec<Run>, Vec<(usize, Vec<u8>)>), HttpError> {
        let bad = |m: String| Err(HttpError::Layout(m));
        check_request_parts(&self.method, &self.target, &self.host)?;
        let head = self.head_len as usize;
        if !(17..=MAX_HEAD).contains(&head) || head > total {
            return bad(format!("a head of {head} bytes"));
        }
        let mut prev_end = 0usize;
        let mut seen = [false; 3];
        let mut length = None;
        let mut chunked = false;
        for l in &self.lines {
            let at = l.at as usize;
            let end = at + l.text.len();
            if at < prev_end + 2 || end + 4 > head || l.text.contains(['\r', '\n']) {
                return bad("header lines out of order or outside the head".into());
            }
            prev_end = end;
            let name = framing_name(l.text.as_bytes()).ok_or_else(|| {
                HttpError::Layout(format!("{:?} is not a framing header", l.text))
            })?;
            let k = FRAMING_HEADERS.iter().position(|n| *n == name).unwrap_or(0);
            if seen[k] {
                return Err(HttpError::Ambiguous("a framing header twice"));
            }
            seen[k] = true;
            let value = l.text[name.len() + 1..].trim_matches([' ', '\t']);
            match k {
                0 => length = Some(parse_length(value)?),
                1 if value.eq_ignore_ascii_case("chunked") => chunked = true,
                1 => return Err(HttpError::Transfer(value.to_string())),
                _ if value.eq_ignore_ascii_case("identity") => {}
                _ => return Err(HttpError::Coding(value.to_string())),
            }
        }
        let body = total - head;
        let mut runs = Vec::new();
        let mut framing = Vec::new();
        match (&self.framing, length, chunked) {
            (Framing::Close, None, false) => runs.push(Run {
                at: head,
                len: body,
            }),
            (Framing::Length(n), Some(m), false) if *n == m => {
                if *n as usize != body {
                    return bad(format!(
                        "Content-Length {n}, but the response carries {body} body bytes"
                    ));
                }
                runs.push(Run {
                    at: head,
                    len: body,
                });
            }
            (Framing::Chunked { sizes, last }, None, true) => {
                if sizes.len() > MAX_CHUNKS {
                    return bad(format!("more than {MAX_CHUNKS} chunks"));
                }
                let mut at = head;
                for s in sizes {
                    let n = chunk_size(s)
                        .filter(|&n| n > 0)
                        .ok_or_else(|| HttpError::Layout(format!("{s:?} is not a chunk size")))?;
                    framing.push((at, [s.as_bytes(), b"\r\n"].concat()));
                    at += s.len() + 2;
                    runs.push(Run {
                        at,
                        len: n as usize,
                    });
                    at = at
                        .checked_add(n as usize)
                        .filter(|&e| e + 2 <= total)
                        .ok_or_else(|| HttpError::Layout("chunks past the end".into()))?;
                    framing.push((at, b"\r\n".to_vec()));
                    at += 2;
                }
                if chunk_size(last) != Some(0) {
                    return bad(format!("{last:?} is not a last chunk"));
                }
                framing.push((at, [last.as_bytes(), b"\r\n\r\n"].concat()));
                at += last.len() + 4;
                if at != total {
                    return bad(format!(
                        "the chunks end at byte {at}, the response at {total}"
                    ));
                }
            }
            _ => return bad("the framing does not match the framing headers".into()),
        }
        runs.retain(|r| r.len > 0);
        Ok((runs, framing))
    }

    /// Body content length.
    pub fn content_len(runs: &[Run]) -> usize {
        runs.iter().map(|r| r.len).sum()
    }
}

/// Whether `bytes` are exactly `expected` (`8·len − 1` ANDs).
pub fn check_bytes<L: Logic>(l: &mut L, bytes: &[Byte<L::Bit>], expected: &[u8]) -> L::Bit {
    crate::logic::eq_bytes_const(l, bytes, expected)
}

/// What the circuit reads off the head.
pub struct HeadChecks<B> {
    /// The status line's form is right (and not 1xx).
    pub status_ok: B,
    /// The status code's three digits (ASCII).
    pub status: [Byte<B>; 3],
    /// The head ends at its declared length, first blank line, no obs-fold.
    pub end_ok: B,
    /// Every declared line is there, and no undeclared framing line.
    pub lines_ok: B,
}

fn is_byte<L: Logic>(l: &mut L, x: &Byte<L::Bit>, v: u8) -> L::Bit {
    crate::logic::eq_bytes_const(l, std::slice::from_ref(x), &[v])
}

/// A letter compared case-insensitively (bit 5 ignored), anything else exactly.
fn is_byte_ci<L: Logic>(l: &mut L, x: &Byte<L::Bit>, v: u8) -> L::Bit {
    if !v.is_ascii_alphabetic() {
        return is_byte(l, x, v);
    }
    let c = const_byte(l, v.to_ascii_lowercase());
    let mut lits = Vec::with_capacity(7);
    for i in 0..8 {
        if i == 2 {
            continue; // bit 5 (0x20): the case bit
        }
        let d = l.xor(x[i], c[i]);
        lits.push(l.not(d));
    }
    and_all(l, &lits)
}

/// The head checks over the head's bytes (`head.len() == lay.head_len`).
pub fn check_head<L: Logic>(
    l: &mut L,
    lay: &HttpLayout,
    head: &[Byte<L::Bit>],
) -> HeadChecks<L::Bit> {
    let n = head.len();
    let f = l.lit(false);
    if n < 17 {
        return HeadChecks {
            status_ok: f,
            status: [[f; 8]; 3],
            end_ok: f,
            lines_ok: f,
        };
    }
    // Status line.
    let mut st = vec![check_bytes(l, &head[..7], b"HTTP/1.")];
    let v0 = is_byte(l, &head[7], b'0');
    let v1 = is_byte(l, &head[7], b'1');
    st.push(l.xor(v0, v1));
    st.push(is_byte(l, &head[8], b' '));
    for d in &head[9..12] {
        // '0'..'9' = 0011 0000 .. 0011 1001: high nibble 3, low nibble ≤ 9.
        let hi = check_nibble(l, &d[..4], 3);
        let low_big = {
            // low nibble ≥ 10: b3 ∧ (b2 ∨ b1)
            let o = l.or(d[5], d[6]);
            l.and(d[4], o)
        };
        let nb = l.not(low_big);
        st.push(l.and(hi, nb));
    }
    let interim = is_byte(l, &head[9], b'1');
    st.push(l.not(interim));
    st.push(is_byte(l, &head[12], b' '));
    let status_ok = and_all(l, &st);

    // CR / LF per byte.
    let cr: Vec<L::Bit> = head.iter().map(|b| is_byte(l, b, b'\r')).collect();
    let lf: Vec<L::Bit> = head.iter().map(|b| is_byte(l, b, b'\n')).collect();
    let mut bad = Vec::new();
    let mut line_start = vec![f; n];
    for i in 2..n {
        line_start[i] = l.and(cr[i - 2], lf[i - 1]);
    }
    // The first blank line ends the head: none before the end, and the end is one.
    for i in 3..n - 1 {
        let a = l.and(line_start[i - 1], cr[i - 1]);
        let b = l.and(a, lf[i]);
        bad.push(b);
    }
    // No line continued with a space or tab.
    for i in 2..n {
        let sp = is_byte(l, &head[i], b' ');
        let tab = is_byte(l, &head[i], b'\t');
        let w = l.xor(sp, tab);
        bad.push(l.and(line_start[i], w));
    }
    let early = or_all(l, &bad);
    let tail = check_bytes(l, &head[n - 4..], b"\r\n\r\n");
    let n_early = l.not(early);
    let end_ok = l.and(tail, n_early);

    // Framing lines: each declared one exactly, framed by CRLFs; no other line starting with
    // a framing header's name and a colon.
    let mut ok = Vec::new();
    let mut declared = vec![false; n];
    for hl in &lay.lines {
        let at = hl.at as usize;
        let end = at + hl.text.len();
        if at < 2 || end + 2 > n {
            ok.push(f);
            continue;
        }
        declared[at] = true;
        ok.push(line_start[at]);
        ok.push(check_bytes(l, &head[at..end], hl.text.as_bytes()));
        ok.push(check_bytes(l, &head[end..end + 2], b"\r\n"));
    }
    let mut other = Vec::new();
    for (i, &d) in declared.iter().enumerate().skip(2) {
        if d {
            continue;
        }
        for name in FRAMING_HEADERS {
            let want: Vec<u8> = [name.as_bytes(), b":"].concat();
            if i + want.len() > n {
                continue;
            }
            let mut m = vec![line_start[i]];
            for (k, &c) in want.iter().enumerate() {
                m.push(is_byte_ci(l, &head[i + k], c));
            }
            other.push(and_all(l, &m));
        }
    }
    let any_other = or_all(l, &other);
    ok.push(l.not(any_other));
    let lines_ok = and_all(l, &ok);
    HeadChecks {
        status_ok,
        status: [head[9], head[10], head[11]],
        end_ok,
        lines_ok,
    }
}

fn check_nibble<L: Logic>(l: &mut L, bits: &[L::Bit], v: u8) -> L::Bit {
    let lits: Vec<L::Bit> = bits
        .iter()
        .enumerate()
        .map(|(i, &b)| if (v >> (3 - i)) & 1 == 1 { b } else { l.not(b) })
        .collect();
    and_all(l, &lits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::logic::{byte_bits, Clear};

    fn lay_for(resp: &[u8]) -> HttpLayout {
        let (head_len, lines, framing, _) = parse_response(resp).unwrap();
        HttpLayout {
            method: "GET".into(),
            target: "/".into(),
            host: "h".into(),
            head_len,
            lines,
            framing,
        }
    }

    fn checks(lay: &HttpLayout, resp: &[u8]) -> (bool, bool, bool, u16) {
        let head: Vec<Byte<bool>> = resp[..lay.head_len as usize]
            .iter()
            .map(|&b| byte_bits(b))
            .collect();
        let c = check_head(&mut Clear, lay, &head);
        let digits: Vec<u8> = c
            .status
            .iter()
            .map(|b| b.iter().fold(0u8, |a, &x| (a << 1) | u8::from(x)))
            .collect();
        let status = std::str::from_utf8(&digits).unwrap().parse().unwrap_or(0);
        (c.status_ok, c.end_ok, c.lines_ok, status)
    }

    #[test]
    fn plain_length_and_chunked_responses() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        let lay = lay_for(r);
        assert_eq!(lay.framing, Framing::Length(2));
        assert_eq!(checks(&lay, r), (true, true, true, 200));
        let (runs, fr) = lay.resolve(r.len()).unwrap();
        assert_eq!(
            runs,
            vec![Run {
                at: r.len() - 2,
                len: 2
            }]
        );
        assert!(fr.is_empty());

        let r = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: Chunked\r\n\r\n3\r\n{\"a\r\nA\r\n\":[1,2,3]}\r\n0\r\n\r\n";
        let lay = lay_for(r);
        assert_eq!(checks(&lay, r), (true, true, true, 404));
        let (runs, fr) = lay.resolve(r.len()).unwrap();
        let content: Vec<u8> = runs
            .iter()
            .flat_map(|x| r[x.at..x.at + x.len].to_vec())
            .collect();
        assert_eq!(content, b"{\"a\":[1,2,3]}");
        for (at, want) in fr {
            assert_eq!(&r[at..at + want.len()], &want[..]);
        }
    }

    #[test]
    fn refusals() {
        let e = |r: &[u8]| parse_response(r).unwrap_err();
        assert!(matches!(
            e(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n"),
            HttpError::Coding(c) if c == "gzip"
        ));
        assert!(matches!(
            e(b"HTTP/1.1 100 Continue\r\n\r\n"),
            HttpError::Interim
        ));
        assert!(matches!(
            e(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"),
            HttpError::Ambiguous(_)
        ));
        assert!(matches!(
            e(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nx"),
            HttpError::Body(_)
        ));
        assert!(matches!(
            e(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
            HttpError::Folded
        ));
        assert!(matches!(
            e(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;x=y\r\na\r\n0\r\n\r\n"),
            HttpError::Body(_)
        ));
    }

    #[test]
    fn a_lying_layout_fails_in_the_circuit() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Encoding: gzip\r\n\r\n{}";
        // The client leaves the gzip line out of the layout: the circuit sees it.
        let lay = HttpLayout {
            method: "GET".into(),
            target: "/".into(),
            host: "h".into(),
            head_len: (r.len() - 2) as u32,
            lines: vec![HeadLine {
                at: 17,
                text: "Content-Length: 2".into(),
            }],
            framing: Framing::Length(2),
        };
        assert!(!checks(&lay, r).2);
        // A head length that ends early (inside the head) fails the end check.
        let mut short = lay.clone();
        short.head_len = 19;
        short.lines.clear();
        let c = checks(&short, r);
        assert!(!c.1);
        // Declaring a line one byte off fails.
        let mut off = lay_for(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        off.lines[0].at += 1;
        assert!(!checks(&off, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").2);
    }
}
