//! Auditing: verify a DCAP quote from files, or a running node's RA-TLS certificate, and
//! report what it proves — as text for people and as one JSON object for tools.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use attestation::ratls::{client_config_with, RaTlsServerVerifier};
use attestation::{
    AttestedPeer, Expectation, Measurements, Policy, QuoteCollateralV3, RaTlsVerifier, TeeKind,
    VerifiedQuote, Verifier,
};
use serde::Serialize;

/// The result of an audit, serialised as the `--json` object.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AuditReport {
    /// The quote verified (DCAP chain, signatures, collateral in date, binding for a node).
    pub verified: bool,
    /// TCB status, e.g. `UpToDate`.
    pub status: Option<String>,
    /// `sgx` or `tdx`.
    pub tee: Option<TeeKind>,
    /// Quote format version.
    pub quote_version: Option<u16>,
    /// REPORTDATA, hex.
    pub report_data: Option<String>,
    /// Intel advisories for the platform's TCB level.
    pub advisories: Vec<String>,
    /// MRENCLAVE/MRSIGNER/ISVPRODID/ISVSVN or MRTD/RTMR0–3.
    pub measurements: Option<Measurements>,
    /// Debug enclave or TD.
    pub debug: Option<bool>,
    /// Verified with the simulated TEE's test PKI (no hardware security).
    pub simulated: bool,
    /// Platform FMSPC, hex.
    pub fmspc: Option<String>,
    /// Earliest collateral expiry, UNIX seconds.
    pub collateral_expires: Option<u64>,
    /// For `audit node`: the node's id and epoch from its certificate.
    pub node: Option<NodeInfo>,
    /// The policy's verdict, when a policy was given.
    pub policy: Option<PolicyVerdict>,
    /// Why verification failed (one line), when it did.
    pub error: Option<String>,
}

/// Node identity from an RA-TLS certificate.
#[derive(Clone, Debug, Serialize)]
pub struct NodeInfo {
    /// Node id.
    pub node_id: String,
    /// Notary-set epoch.
    pub epoch: u64,
}

/// A policy's verdict on a verified quote.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyVerdict {
    /// The quote passed the policy.
    pub passed: bool,
    /// The allowlist entry it matched.
    pub measurement: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl AuditReport {
    fn from_verified(v: VerifiedQuote) -> Self {
        Self {
            verified: true,
            status: Some(v.status),
            tee: Some(v.tee),
            quote_version: Some(v.quote_version),
            report_data: Some(v.report_data),
            advisories: v.advisories,
            measurements: Some(v.measurements),
            debug: Some(v.debug),
            simulated: v.simulated,
            fmspc: Some(v.fmspc),
            collateral_expires: Some(v.collateral_expires),
            ..Self::default()
        }
    }

    fn failed(error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }

    fn apply_policy(&mut self, policy: Option<&Policy>, v: &VerifiedQuote) {
        if let Some(policy) = policy {
            self.policy = Some(match policy.check(v) {
                Ok(rule) => PolicyVerdict {
                    passed: true,
                    measurement: Some(rule.name.clone()),
                    error: None,
                },
                Err(e) => PolicyVerdict {
                    passed: false,
                    measurement: None,
                    error: Some(e.to_string()),
                },
            });
        }
    }

    /// Process exit code: 0 verified (and policy passed), 1 not verified, 3 policy failed.
    pub fn exit_code(&self) -> i32 {
        if !self.verified {
            1
        } else if self.policy.as_ref().is_some_and(|p| !p.passed) {
            3
        } else {
            0
        }
    }

    /// The one-line reason for a non-zero exit.
    pub fn reason(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("not verified: {e}"));
        }
        match &self.policy {
            Some(PolicyVerdict {
                passed: false,
                error: Some(e),
                ..
            }) => Some(format!("verified, but the policy refuses it: {e}")),
            _ => None,
        }
    }

    /// Human-readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<12} {v}\n"));
        if self.simulated {
            line(
                "WARNING",
                "SIMULATED TEE: signed by the test PKI, no hardware security",
            );
        }
        if let Some(node) = &self.node {
            line("Node", &format!("{} (epoch {})", node.node_id, node.epoch));
        }
        if !self.verified {
            line("VerifiedQuote", "NO");
            if let Some(e) = &self.error {
                line("Reason", e);
            }
            return out;
        }
        line(
            "VerifiedQuote",
            if self.simulated {
                "yes (SIMULATED)"
            } else {
                "yes"
            },
        );
        if let (Some(tee), Some(v)) = (self.tee, self.quote_version) {
            line("TEE", &format!("{tee} (quote v{v})"));
        }
        if let Some(s) = &self.status {
            line("TCB status", s);
        }
        let adv = if self.advisories.is_empty() {
            "none".to_string()
        } else {
            self.advisories.join(", ")
        };
        line("Advisories", &adv);
        match &self.measurements {
            Some(Measurements::Sgx {
                mrenclave,
                mrsigner,
                isv_prod_id,
                isv_svn,
            }) => {
                line("MRENCLAVE", mrenclave);
                line("MRSIGNER", mrsigner);
                line("ISVPRODID", &isv_prod_id.to_string());
                line("ISVSVN", &isv_svn.to_string());
            }
            Some(Measurements::Tdx { mrtd, rtmr }) => {
                line("MRTD", mrtd);
                for (i, r) in rtmr.iter().enumerate() {
                    line(&format!("RTMR{i}"), r);
                }
            }
            None => {}
        }
        if let Some(d) = self.debug {
            line(
                "Debug",
                if d {
                    "YES (host can read its memory)"
                } else {
                    "no"
                },
            );
        }
        if let Some(r) = &self.report_data {
            line("REPORTDATA", r);
        }
        if let Some(f) = &self.fmspc {
            line("FMSPC", f);
        }
        if let Some(t) = self.collateral_expires {
            line("Collateral", &format!("valid until {} ({t})", iso(t)));
        }
        match &self.policy {
            Some(PolicyVerdict {
                passed: true,
                measurement,
                ..
            }) => line(
                "Policy",
                &format!("passed: {}", measurement.as_deref().unwrap_or("")),
            ),
            Some(PolicyVerdict { error, .. }) => line(
                "Policy",
                &format!("FAILED: {}", error.as_deref().unwrap_or("")),
            ),
            None => {}
        }
        out
    }
}

fn iso(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Verify `quote` with `collateral` at `at` (UNIX seconds), then apply `policy` if given.
pub fn audit_quote(
    verifier: &Verifier,
    quote: &[u8],
    collateral: &QuoteCollateralV3,
    at: u64,
    policy: Option<&Policy>,
) -> AuditReport {
    match verifier.verify(quote, collateral, at) {
        Ok(v) => {
            let mut report = AuditReport::from_verified(v.clone());
            report.apply_policy(policy, &v);
            report
        }
        Err(e) => AuditReport::failed(e.to_string()),
    }
}

/// Why a node could not be audited (as opposed to being refused).
#[derive(Debug, thiserror::Error)]
pub enum NodeAuditError {
    /// The address does not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// QUIC setup or connection failed for a reason other than the node's certificate.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The node's address.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// No answer within the timeout.
    #[error("no answer from {0} within the timeout")]
    Timeout(String),
}

/// Connect to a node over QUIC, verify its RA-TLS certificate at the current time, and report.
/// The TLS handshake completes only if the quote verifies and binds the certificate's key, so a
/// verified report also shows the node holds that key. `policy` and `expect` are applied to
/// the verified quote afterwards, so a refused node's measurements are still shown.
pub async fn audit_node(
    addr: &str,
    verifier: Verifier,
    policy: Option<&Policy>,
    expect: &Expectation,
    timeout: Duration,
) -> Result<AuditReport, NodeAuditError> {
    let target: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .map_err(|_| NodeAuditError::Resolve(addr.to_string()))?
        .next()
        .ok_or_else(|| NodeAuditError::Resolve(addr.to_string()))?;
    let connect_err = |reason: String| NodeAuditError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let tls_verifier = RaTlsServerVerifier::new(RaTlsVerifier::audit_only(verifier));
    let tls =
        client_config_with(tls_verifier.clone(), None).map_err(|e| connect_err(e.to_string()))?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| connect_err(e.to_string()))?;
    let bind: SocketAddr = if target.is_ipv6() {
        "[::]:0".parse()
    } else {
        "0.0.0.0:0".parse()
    }
    .map_err(|e: std::net::AddrParseError| connect_err(e.to_string()))?;
    let endpoint = quinn::Endpoint::client(bind).map_err(|e| connect_err(e.to_string()))?;
    let connecting = endpoint
        .connect_with(
            quinn::ClientConfig::new(Arc::new(quic)),
            target,
            "tessera-node",
        )
        .map_err(|e| connect_err(e.to_string()))?;
    let result = tokio::time::timeout(timeout, connecting).await;
    let report = match result {
        Err(_) => return Err(NodeAuditError::Timeout(addr.to_string())),
        Ok(Ok(conn)) => {
            conn.close(0u32.into(), b"audit done");
            match tls_verifier.take_outcome() {
                Some(Ok(peer)) => report_for_peer(peer, policy, expect),
                _ => {
                    return Err(connect_err(
                        "handshake finished without a verified certificate".into(),
                    ))
                }
            }
        }
        Ok(Err(e)) => match tls_verifier.take_outcome() {
            Some(Err(reason)) => AuditReport::failed(reason),
            _ => return Err(connect_err(e.to_string())),
        },
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    Ok(report)
}

fn report_for_peer(
    peer: AttestedPeer,
    policy: Option<&Policy>,
    expect: &Expectation,
) -> AuditReport {
    let mut report = AuditReport::from_verified(peer.verified.clone());
    report.node = Some(NodeInfo {
        node_id: peer.node_id.clone(),
        epoch: peer.epoch,
    });
    let mismatch = match (&expect.node_id, expect.epoch) {
        (Some(want), _) if want != &peer.node_id => Some(format!(
            "wrong node: expected {want:?}, the certificate is for {:?}",
            peer.node_id
        )),
        (_, Some(want)) if want != peer.epoch => Some(format!(
            "wrong epoch: expected {want}, the certificate is for epoch {}",
            peer.epoch
        )),
        _ => None,
    };
    if let Some(error) = mismatch {
        report.policy = Some(PolicyVerdict {
            passed: false,
            measurement: None,
            error: Some(error),
        });
        return report;
    }
    report.apply_policy(policy, &peer.verified);
    report
}
