//! The client's side of the disclosure: what the user asks to prove ([`Selection`]), the
//! request planned from the plaintext it holds ([`plan`]: the same scan the circuit runs,
//! evaluated in the clear, so whatever the committee would refuse is refused here first,
//! with the same message), and the exchange with the nodes ([`disclose`]). Salts and values
//! stay on the phone.

use std::time::Duration;

use mpc::spec::PartyId;
use mpc_tls::client::{all_equal, ClientError, Gather};
use mpc_tls::net::{ClientLinks, LinkError};
use mpc_tls::proto::{ResponseRecords, ToClient, ToNode};
use rand_core::{CryptoRng, RngCore};
use uid_prf::canon::{detect_date_format, in_circuit_text_domain, FieldKind};
use zeroize::Zeroize;

use crate::expr::{Cmp, PredicateExpr, Rhs};
use crate::http::{self, HttpError, HttpLayout};
use crate::node::{ClientMsg, NodeMsg};
use crate::path::Path;
use crate::pipeline::response_records_needed;
use crate::request::{
    chunk_for, ByteRange, DisclosureRequest, DisclosureResult, Field, InputShares, Predicate,
    RequestError, Target, UidReq, MAX_OPERAND, SALT,
};
use crate::scan::{scan_clear, ScanError, Shape, CAPACITIES, MAX_FIELDS};

/// What the user asks to prove about the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// JSON values to reveal (committed, then opened in the presentation).
    pub reveal: Vec<Path>,
    /// JSON values to commit to without revealing.
    pub commit: Vec<Path>,
    /// Byte ranges of the body to reveal.
    pub reveal_ranges: Vec<ByteRange>,
    /// Byte ranges of the body to commit to.
    pub commit_ranges: Vec<ByteRange>,
    /// Predicates.
    pub predicates: Vec<PredicateExpr>,
    /// PII values for the nullifier.
    pub uid_fields: Vec<Path>,
    /// The nullifier's scope.
    pub scope: Option<String>,
}

/// Why a disclosure cannot be planned (before the nodes compute anything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The options are inconsistent or out of bounds.
    #[error("{0}")]
    Usage(String),
    /// The HTTP exchange cannot be proven.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The JSON body does not give the values asked for.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The planned request is invalid.
    #[error(transparent)]
    Request(#[from] RequestError),
}

impl Selection {
    /// Checks the options before any connection is made: limits, paths the circuit can
    /// match, predicates it can evaluate.
    pub fn check(&self) -> Result<(), PlanError> {
        let usage = |m: String| Err(PlanError::Usage(m));
        if self.uid_fields.is_empty() != self.scope.is_none() {
            return usage("--uid-fields and --scope go together".into());
        }
        if self.reveal.is_empty()
            && self.commit.is_empty()
            && self.reveal_ranges.is_empty()
            && self.commit_ranges.is_empty()
            && self.predicates.is_empty()
            && self.uid_fields.is_empty()
        {
            return usage(
                "nothing to prove: give --reveal, --commit, --reveal-range, --predicate or --uid-fields"
                    .into(),
            );
        }
        let paths = self.paths();
        if paths.len() > MAX_FIELDS {
            return usage(format!(
                "at most {MAX_FIELDS} distinct JSON paths in one proof ({} given)",
                paths.len()
            ));
        }
        for p in &paths {
            p.check_matchable()
                .map_err(|e| PlanError::Usage(e.to_string()))?;
        }
        if self.predicates.len() > crate::request::MAX_PREDICATES {
            return usage(format!(
                "at most {} predicates in one proof",
                crate::request::MAX_PREDICATES
            ));
        }
        // The same checks the nodes apply to predicates and the scope.
        for p in &self.predicates {
            let probe = Predicate {
                field: 0,
                cmp: p.cmp,
                rhs: p.rhs.clone(),
                date_format: Some(uid_prf::canon::DateFormat::Iso),
            };
            probe_rhs(&probe).map_err(|e| PlanError::Usage(format!("predicate {p}: {e}")))?;
        }
        if let Some(s) = &self.scope {
            if s.is_empty() || s.len() > uid_prf::canon::MAX_SCOPE {
                return usage("the scope must be 1 to 64 bytes".into());
            }
        }
        let ranges: Vec<&ByteRange> = self
            .reveal_ranges
            .iter()
            .chain(&self.commit_ranges)
            .collect();
        if ranges.len() > crate::request::MAX_RANGES {
            return usage(format!(
                "at most {} byte ranges in one proof",
                crate::request::MAX_RANGES
            ));
        }
        for r in ranges {
            let len = r.end.saturating_sub(r.start) as usize;
            if len == 0 || len > notarization::MAX_CAPACITY {
                return usage(format!(
                    "{r}: a range must be 1 to {} bytes",
                    notarization::MAX_CAPACITY
                ));
            }
        }
        Ok(())
    }

    /// Every distinct path the selection names, in order of first mention.
    pub fn paths(&self) -> Vec<Path> {
        let mut out: Vec<Path> = Vec::new();
        for p in self
            .reveal
            .iter()
            .chain(&self.commit)
            .chain(self.predicates.iter().map(|p| &p.path))
            .chain(&self.uid_fields)
        {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }
}

fn probe_rhs(p: &Predicate) -> Result<(), RequestError> {
    // Reuse the nodes' own rule on a one-field request.
    let req_rule = |p: &Predicate| -> Result<(), RequestError> {
        match (&p.rhs, p.cmp) {
            (Rhs::Text(t), Cmp::Eq | Cmp::Ne) if raw_text(t) => Ok(()),
            (Rhs::OneOf(v), Cmp::Eq) if v.iter().all(|t| raw_text(t)) => Ok(()),
            (Rhs::Text(_) | Rhs::OneOf(_), _) => Err(RequestError::Invalid(
                "text is compared with the raw JSON string, so it cannot contain quotes, backslashes or control characters".into(),
            )),
            _ => Ok(()),
        }
    };
    req_rule(p)
}

fn raw_text(t: &str) -> bool {
    !t.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20)
}

/// A planned disclosure: the public request, and what stays with the client.
#[derive(Clone)]
pub struct ClientPlan {
    /// The public request.
    pub request: DisclosureRequest,
    /// Each commitment's salt.
    pub salts: Vec<[u8; SALT]>,
    /// Each commitment's value: the raw JSON text of a path's value, or a range's bytes.
    pub values: Vec<Vec<u8>>,
    /// The response's status code, as the client read it.
    pub status: u16,
}

impl Drop for ClientPlan {
    fn drop(&mut self) {
        self.salts.zeroize();
        for v in &mut self.values {
            v.zeroize();
        }
    }
}

impl std::fmt::Debug for ClientPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPlan")
            .field("request", &self.request)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// The smallest capacity that holds `len` bytes.
pub fn capacity_for(len: usize) -> Option<usize> {
    CAPACITIES.into_iter().find(|&c| c >= len)
}

/// Plans the disclosure of `sel` from the request the client sent and the response it
/// received: the HTTP layout, each path located by the circuit's own scan in the clear,
/// capacities, predicate types and date formats, nullifier kinds, fresh salts.
pub fn plan<R: RngCore + CryptoRng>(
    sel: &Selection,
    sent: &[u8],
    response: &[u8],
    rng: &mut R,
) -> Result<ClientPlan, PlanError> {
    sel.check()?;
    let (method, target, host) = http::parse_request(sent)?;
    let (head_len, lines, framing, status) = http::parse_response(response)?;
    let http = HttpLayout {
        method,
        target,
        host,
        head_len,
        lines,
        framing,
    };
    let (runs, _) = http.resolve(response.len())?;
    let content: Vec<u8> = runs
        .iter()
        .flat_map(|r| response[r.at..r.at + r.len].iter().copied())
        .collect();
    let paths = sel.paths();
    let mut fields = Vec::with_capacity(paths.len());
    let mut tokens: Vec<Vec<u8>> = Vec::new();
    if !paths.is_empty() {
        if content.len() > crate::scan::MAX_SCAN {
            return Err(PlanError::Usage(format!(
                "the body is {} bytes; JSON paths can be proven in bodies of at most {} bytes",
                content.len(),
                crate::scan::MAX_SCAN
            )));
        }
        // Locate with the largest capacity, then give each value the smallest that fits, and
        // scan again exactly as the nodes will.
        let max = CAPACITIES[CAPACITIES.len() - 1];
        let wide: Vec<(Path, usize)> = paths.iter().map(|p| (p.clone(), max)).collect();
        let found = scan_clear(
            &Shape::new(&wide, chunk_for(content.len(), max)).map_err(RequestError::from)?,
            &content,
        )?;
        for (p, r) in paths.iter().zip(&found) {
            let cap = capacity_for(r.len()).ok_or_else(|| ScanError::TooLong {
                path: p.to_string(),
                capacity: max,
            })?;
            fields.push(Field {
                path: p.clone(),
                capacity: cap as u32,
            });
            tokens.push(content[r.clone()].to_vec());
        }
        let exact: Vec<(Path, usize)> = fields
            .iter()
            .map(|f| (f.path.clone(), f.capacity as usize))
            .collect();
        let cap = exact.iter().map(|f| f.1).max().unwrap_or(CAPACITIES[0]);
        let again = scan_clear(
            &Shape::new(&exact, chunk_for(content.len(), cap)).map_err(RequestError::from)?,
            &content,
        )?;
        if again != found {
            return Err(PlanError::Usage(
                "internal error: the scan located the values differently at their capacities"
                    .into(),
            ));
        }
    }
    let idx = |p: &Path| paths.iter().position(|x| x == p).map(|i| i as u8);
    let mut ranges: Vec<ByteRange> = Vec::new();
    for r in sel.reveal_ranges.iter().chain(&sel.commit_ranges) {
        if r.end as usize > content.len() {
            return Err(PlanError::Usage(format!(
                "{r} lies outside the {}-byte body",
                content.len()
            )));
        }
        if !ranges.contains(r) {
            ranges.push(*r);
        }
    }
    let mut commit = Vec::new();
    let mut values = Vec::new();
    for p in sel.reveal.iter().chain(&sel.commit) {
        if let Some(i) = idx(p) {
            if !commit.contains(&Target::Field(i)) {
                commit.push(Target::Field(i));
                values.push(tokens[i as usize].clone());
            }
        }
    }
    for (i, r) in ranges.iter().enumerate() {
        commit.push(Target::Range(i as u8));
        values.push(content[r.start as usize..r.end as usize].to_vec());
    }
    let mut predicates = Vec::with_capacity(sel.predicates.len());
    for e in &sel.predicates {
        let field = idx(&e.path).ok_or_else(|| PlanError::Usage(format!("no field {}", e.path)))?;
        let token = &tokens[field as usize];
        let date_format = match &e.rhs {
            Rhs::Date(_) => Some(
                string_content(token)
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .and_then(detect_date_format)
                    .ok_or_else(|| {
                        PlanError::Usage(format!(
                            "predicate {e}: the value at {} is not a date in a supported format (YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD, DD.MM.YYYY, DD/MM/YYYY, MM/DD/YYYY)",
                            e.path
                        ))
                    })?,
            ),
            _ => None,
        };
        if let Some(why) = operand_problem(token, &e.rhs) {
            return Err(PlanError::Usage(format!(
                "predicate {e} cannot be evaluated: the value is not {why}"
            )));
        }
        predicates.push(Predicate {
            field,
            cmp: e.cmp,
            rhs: e.rhs.clone(),
            date_format,
        });
    }
    let uid = match &sel.scope {
        Some(scope) => {
            let mut f = Vec::new();
            for p in &sel.uid_fields {
                let i = idx(p).ok_or_else(|| PlanError::Usage(format!("no field {p}")))?;
                let kind = uid_kind(&tokens[i as usize]).ok_or_else(|| {
                    PlanError::Usage(format!(
                        "the value at {p} cannot go into a nullifier: it must be a non-empty JSON string of at most {MAX_OPERAND} bytes of ASCII or Latin-1 letters without escapes, or a date in a supported format"
                    ))
                })?;
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
            rng.fill_bytes(&mut s);
            s
        })
        .collect();
    let request = DisclosureRequest {
        http,
        fields,
        ranges,
        commit,
        predicates,
        uid,
    };
    request.check(response.len())?;
    Ok(ClientPlan {
        request,
        salts,
        values,
        status,
    })
}

/// The content of a JSON string token (raw, escapes as sent), if it is one.
pub fn string_content(token: &[u8]) -> Option<&[u8]> {
    token
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
}

/// What a predicate's operand is not, if the circuit would refuse it (the same rules).
fn operand_problem(token: &[u8], rhs: &Rhs) -> Option<&'static str> {
    let content = string_content(token);
    match rhs {
        Rhs::Number(_) => {
            let text = content.unwrap_or(token);
            let text = text.strip_prefix(b"-").unwrap_or(text);
            let leading_zero =
                content.is_none() && text.len() > 1 && text[0] == b'0' && text[1].is_ascii_digit();
            let ok = !leading_zero
                && text.len() < MAX_OPERAND
                && std::str::from_utf8(text)
                    .ok()
                    .and_then(uid_prf::canon::parse_decimal)
                    .is_some();
            (!ok).then_some(
                "a number (or numeric string) of at most 12 integer and 6 decimal digits, without exponent",
            )
        }
        Rhs::Date(_) => None,
        Rhs::Text(_) | Rhs::OneOf(_) => match content {
            Some(c) if !c.contains(&b'\\') => None,
            _ => Some("a string without escapes"),
        },
        Rhs::Bool(_) => (token != b"true" && token != b"false").then_some("true or false"),
        Rhs::Null => None,
    }
}

/// How a value goes into a nullifier, if it can.
fn uid_kind(token: &[u8]) -> Option<FieldKind> {
    let c = string_content(token)?;
    if c.len() > MAX_OPERAND {
        return None;
    }
    let s = std::str::from_utf8(c).ok()?;
    if let Some(f) = detect_date_format(s) {
        return Some(FieldKind::Date(f));
    }
    (in_circuit_text_domain(c) && !uid_prf::canon::canon_text(s).is_empty())
        .then_some(FieldKind::Text)
}

/// Why the client's side of the disclosure failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientDiscloseError {
    /// A node stopped and said why.
    #[error("node {node}: {reason}")]
    Node {
        /// The node.
        node: PartyId,
        /// Its reason.
        reason: mpc_tls::proto::Failure,
    },
    /// The session underneath.
    #[error(transparent)]
    Session(#[from] ClientError),
    /// The link to the nodes.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// Nothing in time.
    #[error("timed out after {0:?} waiting for the nodes' disclosure")]
    Timeout(Duration),
    /// A node sent something that is not a disclosure result.
    #[error("node {0} broke the protocol after the response")]
    Protocol(PartyId),
    /// The committee's commitment does not match the value the client holds.
    #[error("the commitment to {0} does not match the response: a node deviated")]
    Commitment(String),
    /// The disclosure decrypts more of the response past what a node keeps than can be
    /// sent again.
    #[error(
        "the disclosure decrypts {bytes} bytes of response records past the first {kept} bytes \
         a node keeps; at most {max} can be sent again (reveal less, or nearer the start)",
        kept = mpc_tls::proto::KEPT_RESPONSE_BYTES,
        max = crate::node::MAX_RECORD_COPIES
    )]
    RecordCopies {
        /// The bytes needed.
        bytes: usize,
    },
}

/// Sends the plan to the three nodes (each its share of the salts, all of them the copies
/// of the response records it decrypts that a node did not keep), gathers their results
/// and accepts only one all three reported, whose every commitment matches the value and
/// salt the client holds.
pub async fn disclose<R: RngCore + CryptoRng>(
    links: &mut ClientLinks,
    plan: &ClientPlan,
    records: &ResponseRecords,
    timeout: Duration,
    rng: &mut R,
) -> Result<DisclosureResult, ClientDiscloseError> {
    // A request the nodes will refuse gets no copies: they say why.
    let copies = match plan.request.check(records.lens.iter().sum()) {
        Ok(p) => records.copies(&response_records_needed(&plan.request, &p, &records.lens)),
        Err(_) => Vec::new(),
    };
    let bytes: usize = copies.iter().map(|c| c.ciphertext.len()).sum();
    if bytes > crate::node::MAX_RECORD_COPIES {
        return Err(ClientDiscloseError::RecordCopies { bytes });
    }
    let nc = plan.request.commit.len();
    let mut shares: [InputShares; 3] = Default::default();
    for s in shares.iter_mut().take(2) {
        s.salts = (0..nc)
            .map(|_| {
                let mut b = [0u8; SALT];
                rng.fill_bytes(&mut b);
                b
            })
            .collect();
    }
    let mut last = InputShares {
        salts: plan.salts.clone(),
    };
    for s in shares.iter().take(2) {
        for (a, b) in last.salts.iter_mut().zip(&s.salts) {
            for (x, y) in a.iter_mut().zip(b) {
                *x ^= y;
            }
        }
    }
    shares[2] = last;
    // A node that failed sends why, then closes: a link found gone (a send that fails, a
    // stream that ends) ends the wait only after a short grace for that reason to arrive.
    let grace = timeout.min(Duration::from_secs(2));
    let mut lost: Option<PartyId> = None;
    for (node, s) in shares.iter().enumerate() {
        let msg = ClientMsg::Disclose {
            request: plan.request.clone(),
            shares: s.clone(),
            records: copies.clone(),
        };
        let bytes = postcard::to_stdvec(&msg).map_err(|_| ClientDiscloseError::Protocol(0))?;
        if links.send(node as PartyId, &ToNode::After(bytes)).is_err() {
            lost.get_or_insert(node as PartyId);
        }
    }
    drop(shares);
    let mut got = Gather::new();
    loop {
        let wait = if lost.is_some() { grace } else { timeout };
        let r = match tokio::time::timeout(wait, links.recv::<ToClient>()).await {
            Ok(r) => r,
            Err(_) => {
                return Err(match lost {
                    Some(n) => LinkError::NodeClosed(n).into(),
                    None => ClientDiscloseError::Timeout(timeout),
                })
            }
        };
        let (node, m) = match r {
            // A node that has sent its result may close; the others still count.
            Err(LinkError::NodeClosed(n)) if got.has(n) => continue,
            Err(LinkError::NodeClosed(n)) => {
                lost.get_or_insert(n);
                continue;
            }
            Err(e) => return Err(lost.map_or(e, LinkError::NodeClosed).into()),
            Ok(r) => r,
        };
        if lost.is_some() && !matches!(m, ToClient::Error(_)) {
            continue;
        }
        match m {
            ToClient::Error(reason) => return Err(ClientDiscloseError::Node { node, reason }),
            ToClient::After(bytes) => {
                let NodeMsg::Disclosed(r) = postcard::from_bytes(&bytes)
                    .map_err(|_| ClientDiscloseError::Protocol(node))?;
                got.put(node, r, "the disclosure")?;
                if let Some(all) = got.take() {
                    all_equal(&all, "the disclosure")?;
                    let [result, _, _] = all;
                    check_commitments(plan, &result)?;
                    return Ok(result);
                }
            }
            _ => return Err(ClientDiscloseError::Protocol(node)),
        }
    }
}

fn check_commitments(
    plan: &ClientPlan,
    result: &DisclosureResult,
) -> Result<(), ClientDiscloseError> {
    if result.commitments.len() != plan.request.commit.len() {
        return Err(ClientDiscloseError::Commitment(
            "the commitment list".into(),
        ));
    }
    for (k, t) in plan.request.commit.iter().enumerate() {
        let cap = plan.request.target_capacity(*t).unwrap_or(0);
        let mine = notarization::commitment_hash(&plan.salts[k], &plan.values[k], cap);
        if mine.as_ref() != Some(&result.commitments[k]) {
            return Err(ClientDiscloseError::Commitment(
                plan.request.target_text(*t).unwrap_or_default(),
            ));
        }
    }
    Ok(())
}
