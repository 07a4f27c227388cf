//! What a relying party runs: a presentation checked offline against the group keys it
//! trusts, and a report of what it proves (text for people, one JSON object for programs).

use std::collections::BTreeMap;

use notarization::{verify, HttpRequest, Presentation, TrustedGroup, Verified};
use serde::Serialize;
use serde_json::value::RawValue;

/// The outcome of verifying a presentation, as `tessera verify` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Whether it verified.
    pub verified: bool,
    /// The provider.
    pub server_name: Option<String>,
    /// The session's time (unix seconds).
    pub time: Option<u64>,
    /// The TLS version (`1.2` or `1.3`).
    pub tls_version: Option<String>,
    /// The request the response answers: method, target, host.
    pub request: Option<HttpRequest>,
    /// The response's status code.
    pub status: Option<u16>,
    /// Revealed values by canonical path (or `body[START:END]`), as typed JSON values.
    pub revealed: BTreeMap<String, Box<RawValue>>,
    /// Predicate results.
    pub predicates: BTreeMap<String, bool>,
    /// The nullifier's scope.
    pub scope: Option<String>,
    /// The nullifier (hex).
    pub nullifier: Option<String>,
    /// Fields the nullifier covers.
    pub nullifier_fields: Vec<String>,
    /// Committed but unrevealed fields.
    pub committed: Vec<String>,
    /// Whether the committee's TEEs were simulated.
    pub simulated: bool,
    /// Whether the provider closed properly.
    pub close_notify: Option<bool>,
    /// Notary-set epoch.
    pub epoch: Option<u64>,
    /// Group key id.
    pub group_key_id: Option<String>,
    /// Committee node ids.
    pub committee: Vec<u16>,
    /// Why it failed.
    pub error: Option<String>,
}

impl VerifyReport {
    fn ok(v: Verified) -> Self {
        VerifyReport {
            verified: true,
            server_name: Some(v.server_name),
            time: Some(v.time),
            tls_version: Some(v.tls_version),
            request: Some(v.request),
            status: Some(v.status),
            revealed: v.revealed,
            predicates: v.predicates,
            scope: v.scope,
            nullifier: v.nullifier,
            nullifier_fields: v.nullifier_fields,
            committed: v.committed,
            simulated: v.simulated,
            close_notify: Some(v.close_notify),
            epoch: Some(v.epoch),
            group_key_id: Some(v.group_key_id),
            committee: v.committee,
            error: None,
        }
    }

    fn failed(e: &dyn std::fmt::Display, simulated: bool) -> Self {
        VerifyReport {
            verified: false,
            server_name: None,
            time: None,
            tls_version: None,
            request: None,
            status: None,
            revealed: BTreeMap::new(),
            predicates: BTreeMap::new(),
            scope: None,
            nullifier: None,
            nullifier_fields: Vec::new(),
            committed: Vec::new(),
            simulated,
            close_notify: None,
            epoch: None,
            group_key_id: None,
            committee: Vec::new(),
            error: Some(e.to_string()),
        }
    }

    /// The report for people.
    pub fn render(&self) -> String {
        let mut o = String::new();
        if !self.verified {
            o.push_str(&format!(
                "NOT VERIFIED: {}\n",
                self.error.as_deref().unwrap_or("unknown reason")
            ));
            return o;
        }
        if self.simulated {
            o.push_str("WARNING: notarized by a SIMULATED TEE committee: no hardware security\n");
        }
        o.push_str("verified\n");
        if let Some(s) = &self.server_name {
            o.push_str(&format!("server:      {s}\n"));
        }
        if let Some(t) = self.time {
            let when = time::OffsetDateTime::from_unix_timestamp(t as i64)
                .ok()
                .and_then(|d| {
                    d.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| t.to_string());
            o.push_str(&format!("time:        {when} ({t})\n"));
        }
        if let Some(r) = &self.request {
            o.push_str(&format!(
                "request:     {} {} (host {})\n",
                r.method, r.target, r.host
            ));
        }
        if let Some(st) = self.status {
            o.push_str(&format!("status:      {st}\n"));
        }
        if let Some(v) = &self.tls_version {
            o.push_str(&format!("tls:         {v}\n"));
        }
        if self.close_notify == Some(false) {
            o.push_str("note:        the provider did not close with close_notify (the response may be truncated)\n");
        }
        for (k, v) in &self.revealed {
            o.push_str(&format!("revealed:    {k} = {}\n", shown(v)));
        }
        for k in &self.committed {
            o.push_str(&format!("committed:   {k} (not revealed)\n"));
        }
        for (k, v) in &self.predicates {
            o.push_str(&format!("predicate:   {k} is {v}\n"));
        }
        if let (Some(s), Some(n)) = (&self.scope, &self.nullifier) {
            o.push_str(&format!(
                "nullifier:   {n} (scope {s:?}, over {})\n",
                self.nullifier_fields.join(", ")
            ));
        }
        if let (Some(e), Some(g)) = (self.epoch, &self.group_key_id) {
            let c: Vec<String> = self.committee.iter().map(u16::to_string).collect();
            o.push_str(&format!(
                "signed by:   group {g}, epoch {e}, committee {}\n",
                c.join(", ")
            ));
        }
        o.push_str(&format!("simulated:   {}\n", self.simulated));
        o
    }
}

/// A revealed value for people: a JSON string unescaped and quoted, anything else as its
/// JSON text.
fn shown(v: &RawValue) -> String {
    match serde_json::from_str::<serde_json::Value>(v.get()) {
        Ok(serde_json::Value::String(s)) => format!("{s:?}"),
        _ => v.get().to_string(),
    }
}

/// Verifies a presentation (JSON) against trusted groups (each a `group.json`) at `now`.
pub fn verify_json(presentation: &str, trusted: &[TrustedGroup], now: u64) -> VerifyReport {
    let p = match Presentation::from_json(presentation) {
        Ok(p) => p,
        Err(e) => return VerifyReport::failed(&e, false),
    };
    match verify(&p, trusted, now) {
        Ok(v) => VerifyReport::ok(v),
        Err(e) => VerifyReport::failed(&e, p.notarization.simulated),
    }
}
