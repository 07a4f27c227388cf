//! The client's side of proving: the user's options (JSON paths, byte ranges, predicates,
//! a nullifier) read into a [`Selection`], the request to send, and the presentation
//! assembled from the signed notarization. Salts and values stay on the phone; only what
//! the user reveals goes into the presentation.

use disclosure::client::{ClientPlan, Selection};
use disclosure::expr::parse_predicate;
use disclosure::path::Path;
use disclosure::request::ByteRange;
use notarization::{Commitment, Notarization, Opening, Presentation, VERSION};

/// Why a proof cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ProveError {
    /// The options are inconsistent.
    #[error("{0}")]
    Usage(String),
    /// The URL is not `https://HOST[:PORT]/PATH`.
    #[error("invalid URL {0:?}: expected https://HOST[:PORT]/PATH")]
    Url(String),
    /// A header is not `Name: value`.
    #[error("invalid header {0:?}: expected 'Name: value' (Host, Connection and Accept-Encoding are set by tessera)")]
    Header(String),
    /// A revealed value is not UTF-8.
    #[error("{0} is not UTF-8 text: commit to it instead of revealing it")]
    NotText(String),
    /// A path or predicate could not be read.
    #[error("{0}")]
    Parse(String),
}

/// The user's options as written on the command line (or given by an app).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// JSON paths to reveal.
    pub reveal: Vec<String>,
    /// JSON paths to commit to.
    pub commit: Vec<String>,
    /// Byte ranges of the body to reveal, `START:END`.
    pub reveal_range: Vec<String>,
    /// Byte ranges of the body to commit to, `START:END`.
    pub commit_range: Vec<String>,
    /// Predicates, e.g. `$.user.age>=18`.
    pub predicates: Vec<String>,
    /// PII paths for the nullifier (each entry may hold several, comma-separated).
    pub uid_fields: Vec<String>,
    /// The nullifier's scope.
    pub scope: Option<String>,
}

impl Options {
    /// Reads the options into a selection and checks it (everything that can be checked
    /// before any connection: syntax, limits, what the circuit can match).
    pub fn selection(&self) -> Result<Selection, ProveError> {
        let path = |s: &String| Path::parse(s).map_err(|e| ProveError::Parse(e.to_string()));
        let ranges = |v: &[String]| {
            v.iter()
                .map(|s| parse_range(s))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut uid = Vec::new();
        for entry in &self.uid_fields {
            for p in split_paths(entry) {
                uid.push(Path::parse(&p).map_err(|e| ProveError::Parse(e.to_string()))?);
            }
        }
        let sel = Selection {
            reveal: self.reveal.iter().map(path).collect::<Result<_, _>>()?,
            commit: self.commit.iter().map(path).collect::<Result<_, _>>()?,
            reveal_ranges: ranges(&self.reveal_range)?,
            commit_ranges: ranges(&self.commit_range)?,
            predicates: self
                .predicates
                .iter()
                .map(|p| parse_predicate(p).map_err(|e| ProveError::Parse(e.to_string())))
                .collect::<Result<_, _>>()?,
            uid_fields: uid,
            scope: self.scope.clone(),
        };
        sel.check().map_err(|e| ProveError::Usage(e.to_string()))?;
        Ok(sel)
    }
}

/// `START:END`, byte offsets in the body (after de-chunking), END exclusive.
pub fn parse_range(s: &str) -> Result<ByteRange, ProveError> {
    let bad = || {
        ProveError::Parse(format!(
            "invalid range {s:?}: expected START:END, byte offsets in the body with START < END"
        ))
    };
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let start: u32 = a.trim().parse().map_err(|_| bad())?;
    let end: u32 = b.trim().parse().map_err(|_| bad())?;
    if start >= end {
        return Err(bad());
    }
    Ok(ByteRange { start, end })
}

/// Splits a comma-separated list of paths, leaving commas inside brackets and quotes alone
/// (`$.a,$['b,c']` is two paths).
pub fn split_paths(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    out.push(std::mem::take(&mut cur).trim().to_string());
                    continue;
                }
                _ => {}
            },
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() || !out.is_empty() {
        out.push(cur.trim().to_string());
    }
    out.retain(|p| !p.is_empty());
    out
}

/// The targets the options reveal, as the notarization names them (canonical paths,
/// `body[START:END]`).
pub fn revealed_targets(sel: &Selection) -> Vec<String> {
    sel.reveal
        .iter()
        .map(Path::to_string)
        .chain(sel.reveal_ranges.iter().map(ByteRange::to_string))
        .collect()
}

/// The presentation of a signed notarization, opening the targets in `reveal`.
pub fn presentation(
    notarization: Notarization,
    signature: [u8; 64],
    leaves: Vec<Commitment>,
    plan: &ClientPlan,
    reveal: &[String],
) -> Result<Presentation, ProveError> {
    let mut openings = Vec::new();
    for t in reveal {
        let k = plan
            .request
            .commit
            .iter()
            .position(|&c| plan.request.target_text(c).as_deref() == Some(t.as_str()))
            .ok_or_else(|| ProveError::Usage(format!("{t} was not committed")))?;
        let value = String::from_utf8(plan.values[k].clone())
            .map_err(|_| ProveError::NotText(t.clone()))?;
        openings.push(Opening {
            target: t.clone(),
            salt: plan.salts[k],
            value,
        });
    }
    Ok(Presentation {
        version: VERSION,
        notarization,
        signature,
        commitments: leaves,
        openings,
    })
}

/// A target URL: `https://HOST[:PORT]/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host (TLS server name).
    pub host: String,
    /// The port (443 by default).
    pub port: u16,
    /// The path, with query.
    pub path: String,
}

impl Target {
    /// Parses the URL.
    pub fn parse(url: &str) -> Result<Self, ProveError> {
        let bad = || ProveError::Url(url.to_string());
        let rest = url.strip_prefix("https://").ok_or_else(bad)?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (hostport, 443),
        };
        if host.is_empty()
            || !host.bytes().all(|c| c.is_ascii_graphic())
            || !path.bytes().all(|c| c.is_ascii_graphic())
        {
            return Err(bad());
        }
        Ok(Target {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The Host header's value: the host, with the port unless it is 443.
    pub fn host_header(&self) -> String {
        if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The HTTP/1.1 GET request: the request line and Host header first (the committee
    /// proves both), the extra headers, then asking for JSON, an uncompressed body and a
    /// close.
    pub fn request(&self, headers: &[String]) -> Result<Vec<u8>, ProveError> {
        let mut r = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n",
            self.path,
            self.host_header()
        );
        for h in headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| ProveError::Header(h.clone()))?;
            let name = name.trim();
            let reserved = [
                "host",
                "connection",
                "accept-encoding",
                "content-length",
                "transfer-encoding",
            ];
            if name.is_empty()
                || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                || reserved.iter().any(|r| name.eq_ignore_ascii_case(r))
                || value.contains(['\r', '\n'])
            {
                return Err(ProveError::Header(h.clone()));
            }
            r.push_str(&format!("{name}: {}\r\n", value.trim()));
        }
        r.push_str(
            "Accept: application/json\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        );
        Ok(r.into_bytes())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_headers() {
        let t = Target::parse("https://bank.example:8443/api/me?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("bank.example", 8443, "/api/me?x=1")
        );
        assert_eq!(Target::parse("https://bank.example").unwrap().path, "/");
        assert!(Target::parse("http://bank.example/").is_err());
        assert!(Target::parse("https://:1/").is_err());
        let r = String::from_utf8(t.request(&["Cookie: a=b".into()]).unwrap()).unwrap();
        assert!(r.starts_with("GET /api/me?x=1 HTTP/1.1\r\nHost: bank.example:8443\r\n"));
        assert!(r.contains("\r\nCookie: a=b\r\n"));
        assert!(r.contains("\r\nAccept-Encoding: identity\r\n"));
        assert!(t.request(&["Bad\r\nX: y".into()]).is_err());
        assert!(t.request(&["NoColon".into()]).is_err());
        assert!(t.request(&["Host: other.example".into()]).is_err());
        let (m, target, host) = disclosure::http::parse_request(r.as_bytes()).unwrap();
        assert_eq!(
            (m.as_str(), target.as_str(), host.as_str()),
            ("GET", "/api/me?x=1", "bank.example:8443")
        );
    }

    #[test]
    fn options_read_into_a_selection() {
        let o = Options {
            reveal: vec!["user.address.country".into(), "$['odd key']".into()],
            reveal_range: vec!["0:10".into()],
            predicates: vec!["$.user.age >= 18".into()],
            uid_fields: vec!["$.user.name,$['a,b']".into()],
            scope: Some("vote".into()),
            ..Default::default()
        };
        let s = o.selection().unwrap();
        assert_eq!(s.reveal[0].to_string(), "$.user.address.country");
        assert_eq!(s.uid_fields.len(), 2);
        assert_eq!(s.uid_fields[1].to_string(), "$['a,b']");
        assert_eq!(
            revealed_targets(&s),
            vec!["$.user.address.country", "$['odd key']", "body[0:10]"]
        );
        assert!(Options::default().selection().is_err());
        for bad in ["10:5", "a:b", "5", "3:3"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        let o = Options {
            uid_fields: vec!["$.name".into()],
            ..Default::default()
        };
        assert!(o.selection().is_err(), "uid fields without a scope");
        assert_eq!(
            split_paths("a, b ,$[\"c,]d\"]"),
            vec!["a", "b", "$[\"c,]d\"]"]
        );
    }
}
