//! The client's side of proving: what to ask of the response (fields to reveal or commit to,
//! predicates, a nullifier), turned into a disclosure plan once the plaintext is known, and
//! the presentation assembled from the signed notarization. Salts and values stay on the
//! phone; only what the user reveals goes into the presentation.

use mpc_tls::client::{DisclosurePlan, Planner};
use mpc_tls::disclose::{
    locate, parse_predicate, DiscloseError, DisclosureRequest, FieldRef, PredicateReq, Rhs, UidReq,
    SALT,
};
use notarization::{Commitment, Notarization, Opening, Presentation, VERSION};
use rand::rngs::OsRng;
use rand::RngCore;
use uid_prf::canon::{detect_date_format, in_circuit_text_domain, FieldKind};

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
    #[error("invalid header {0:?}: expected 'Name: value'")]
    Header(String),
    /// A revealed value is not UTF-8.
    #[error("field {0:?} is not UTF-8 text")]
    NotText(String),
    /// The disclosure could not be planned.
    #[error(transparent)]
    Disclose(#[from] DiscloseError),
}

/// What the user asks to prove about the response.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Fields to reveal (committed and opened in the presentation).
    pub reveal: Vec<String>,
    /// Fields to commit to without revealing.
    pub commit: Vec<String>,
    /// Predicate expressions, e.g. `birthdate<=today-18y`.
    pub predicates: Vec<String>,
    /// PII fields for the nullifier.
    pub uid_fields: Vec<String>,
    /// The nullifier's scope.
    pub scope: Option<String>,
}

impl Selection {
    /// Checks the options before any connection is made.
    pub fn check(&self) -> Result<(), ProveError> {
        if self.uid_fields.is_empty() != self.scope.is_none() {
            return Err(ProveError::Usage(
                "--uid-fields and --scope go together".into(),
            ));
        }
        if self.reveal.is_empty()
            && self.commit.is_empty()
            && self.predicates.is_empty()
            && self.uid_fields.is_empty()
        {
            return Err(ProveError::Usage(
                "nothing to prove: give --reveal, --commit, --predicate or --uid-fields".into(),
            ));
        }
        for p in &self.predicates {
            parse_predicate(p)?;
        }
        Ok(())
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        let preds = self
            .predicates
            .iter()
            .filter_map(|p| parse_predicate(p).ok().map(|e| e.key));
        for k in self
            .reveal
            .iter()
            .chain(&self.commit)
            .cloned()
            .chain(preds)
            .chain(self.uid_fields.iter().cloned())
        {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    /// The plan for a response: every named field located under the field rule (first
    /// occurrence in the body), fresh salts, date formats detected from the values.
    pub fn plan(&self, response: &[u8]) -> Result<DisclosurePlan, ProveError> {
        let keys = self.keys();
        let mut fields: Vec<FieldRef> = Vec::new();
        let mut values: Vec<Vec<u8>> = Vec::new();
        for k in &keys {
            let l = locate(response, k)?;
            fields.push(l.field);
            values.push(l.value);
        }
        let idx = |k: &str| keys.iter().position(|x| x == k).map(|i| i as u8);
        let mut commit = Vec::new();
        for k in self.reveal.iter().chain(&self.commit) {
            if let Some(i) = idx(k) {
                if !commit.contains(&i) {
                    commit.push(i);
                }
            }
        }
        let mut predicates = Vec::new();
        for p in &self.predicates {
            let e = parse_predicate(p)?;
            let field =
                idx(&e.key).ok_or_else(|| ProveError::Usage(format!("no field {}", e.key)))?;
            let value = String::from_utf8_lossy(&values[field as usize]).into_owned();
            let date_format = match &e.rhs {
                Rhs::Date(_) => Some(detect_date_format(&value).ok_or_else(|| {
                    ProveError::Usage(format!(
                        "predicate {p:?}: field {:?} is not a date in a supported format (YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD, DD.MM.YYYY, DD/MM/YYYY)",
                        e.key
                    ))
                })?),
                _ => None,
            };
            predicates.push(PredicateReq {
                field,
                cmp: e.cmp,
                rhs: e.rhs,
                date_format,
            });
        }
        let uid = match &self.scope {
            Some(scope) => {
                let mut f = Vec::new();
                for k in &self.uid_fields {
                    let i = idx(k).ok_or_else(|| ProveError::Usage(format!("no field {k}")))?;
                    let v = &values[i as usize];
                    let kind = match std::str::from_utf8(v).ok().and_then(detect_date_format) {
                        Some(fmt) => FieldKind::Date(fmt),
                        None if in_circuit_text_domain(v)
                            && !uid_prf::canon::canon_text(&String::from_utf8_lossy(v)).is_empty() =>
                        {
                            FieldKind::Text
                        }
                        None => {
                            return Err(ProveError::Usage(format!(
                                "field {k:?} cannot go into a nullifier: it must be non-empty, and only ASCII and Latin-1 letters without JSON escapes are canonicalised in the circuit"
                            )))
                        }
                    };
                    f.push((i, kind));
                }
                Some(UidReq {
                    fields: f,
                    scope: scope.clone(),
                })
            }
            None => None,
        };
        let salts = commit
            .iter()
            .map(|_| {
                let mut s = [0u8; SALT];
                OsRng.fill_bytes(&mut s);
                s
            })
            .collect();
        Ok(DisclosurePlan {
            lens: values.iter().map(|v| v.len() as u8).collect(),
            request: DisclosureRequest {
                fields,
                commit,
                predicates,
                uid,
            },
            salts,
        })
    }

    /// [`Selection::plan`] as the planner the MPC-TLS client calls.
    pub fn planner(self) -> Planner<'static> {
        Box::new(move |_t, response| {
            self.plan(response).map_err(|e| match e {
                ProveError::Disclose(d) => d,
                other => DiscloseError::Request(other.to_string()),
            })
        })
    }
}

/// The presentation of a signed notarization, opening the fields in `reveal`.
pub fn presentation(
    notarization: Notarization,
    signature: [u8; 64],
    leaves: Vec<Commitment>,
    plan: &DisclosurePlan,
    response: &[u8],
    reveal: &[String],
) -> Result<Presentation, ProveError> {
    let mut openings = Vec::new();
    for k in reveal {
        let (pos, &f) = plan
            .request
            .commit
            .iter()
            .enumerate()
            .find(|(_, &f)| plan.request.fields[f as usize].key == *k)
            .ok_or_else(|| ProveError::Usage(format!("field {k:?} was not committed")))?;
        let fr = &plan.request.fields[f as usize];
        let start = fr.value_start();
        let n = plan.lens[f as usize] as usize;
        let raw = response
            .get(start..start + n)
            .ok_or_else(|| ProveError::Usage(format!("field {k:?} lies outside the response")))?;
        let value = String::from_utf8(raw.to_vec()).map_err(|_| ProveError::NotText(k.clone()))?;
        openings.push(Opening {
            key: fr.key.clone(),
            at: fr.at,
            salt: plan.salts[pos],
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
        if host.is_empty() || path.contains(char::is_whitespace) {
            return Err(bad());
        }
        Ok(Target {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// The HTTP/1.1 GET request, with the extra headers, asking the server to close.
    pub fn request(&self, headers: &[String]) -> Result<Vec<u8>, ProveError> {
        let mut r = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", self.path, self.host);
        for h in headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| ProveError::Header(h.clone()))?;
            let name = name.trim();
            if name.is_empty()
                || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                || value.contains(['\r', '\n'])
            {
                return Err(ProveError::Header(h.clone()));
            }
            r.push_str(&format!("{name}: {}\r\n", value.trim()));
        }
        r.push_str("Accept: application/json\r\nConnection: close\r\n\r\n");
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
        let r = t.request(&["Cookie: a=b".into()]).unwrap();
        assert!(String::from_utf8(r)
            .unwrap()
            .contains("\r\nCookie: a=b\r\n"));
        assert!(t.request(&["Bad\r\nX: y".into()]).is_err());
        assert!(t.request(&["NoColon".into()]).is_err());
    }

    #[test]
    fn plans_locate_fields_and_kinds() {
        let resp = b"HTTP/1.1 200 OK\r\n\r\n{\"name\":\"Alice Smith\",\"birthdate\":\"01.04.1990\",\"nationality\":\"US\"}";
        let sel = Selection {
            reveal: vec!["nationality".into()],
            predicates: vec!["birthdate<=today-18y".into()],
            uid_fields: vec!["name".into(), "birthdate".into()],
            scope: Some("vote".into()),
            ..Default::default()
        };
        sel.check().unwrap();
        let p = sel.plan(resp).unwrap();
        assert_eq!(p.request.fields.len(), 3);
        assert_eq!(p.request.commit, vec![0]);
        assert_eq!(p.salts.len(), 1);
        assert_eq!(p.lens, vec![2, 10, 11]);
        let u = p.request.uid.as_ref().unwrap();
        assert_eq!(u.fields[0], (2, FieldKind::Text));
        assert!(matches!(u.fields[1].1, FieldKind::Date(_)));
        assert!(Selection::default().check().is_err());
        let missing = Selection {
            reveal: vec!["email".into()],
            ..Default::default()
        };
        assert!(missing.plan(resp).is_err());
    }
}
