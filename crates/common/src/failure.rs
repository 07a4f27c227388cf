//! The failure codes that cross the network. A party that stops says why with a
//! [`FailureCode`], which programs act on (metrics, retries, which party to blame), and a
//! detail for people, which is never parsed. The MPC-TLS session uses the first codes
//! (a client's, a provider's, a node's); the daemons add their own (refused, unavailable,
//! signing).

use serde::{Deserialize, Serialize};

/// What kind of failure ended a session or a request, as it crosses the network: programs
/// act on the code (metrics, retries, which party to blame); the detail in [`Failure`] is
/// for people and never parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureCode {
    /// The client broke the protocol, asked for what the response cannot prove, or left.
    Client,
    /// The provider's TLS server failed, sent something malformed, or is not supported.
    Provider,
    /// The provider's certificate or key exchange was refused.
    Certificate,
    /// Relayed bytes were altered (a tag or Finished did not verify, nodes saw different
    /// bytes).
    Tampered,
    /// The multi-party computation aborted: a node deviated.
    Mpc,
    /// A party did not answer in time.
    Timeout,
    /// A notary node failed on its own or answered wrongly.
    Node,
    /// The request was refused (protocol version, membership, policy).
    Refused,
    /// The network cannot serve now (no group yet, too few healthy nodes, at capacity).
    Unavailable,
    /// Threshold signing failed.
    Signing,
    /// The nodes' notarizations differ.
    Disagreement,
    /// The coordinator failed on its own.
    Coordinator,
}

impl FailureCode {
    /// A short stable name, e.g. for a metric's `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            FailureCode::Client => "client",
            FailureCode::Provider => "provider",
            FailureCode::Certificate => "certificate",
            FailureCode::Tampered => "tampered",
            FailureCode::Mpc => "mpc",
            FailureCode::Timeout => "timeout",
            FailureCode::Node => "node",
            FailureCode::Refused => "refused",
            FailureCode::Unavailable => "unavailable",
            FailureCode::Signing => "signing",
            FailureCode::Disagreement => "disagreement",
            FailureCode::Coordinator => "coordinator",
        }
    }

    /// What the code means, for a person.
    pub fn message(self) -> &'static str {
        match self {
            FailureCode::Client => {
                "the client broke the protocol or asked for what cannot be proven"
            }
            FailureCode::Provider => "the provider's TLS server failed or is not supported",
            FailureCode::Certificate => "the provider's certificate or key exchange was refused",
            FailureCode::Tampered => "relayed bytes were altered",
            FailureCode::Mpc => "the multi-party computation aborted",
            FailureCode::Timeout => "a party did not answer in time",
            FailureCode::Node => "a notary node failed",
            FailureCode::Refused => "the request was refused",
            FailureCode::Unavailable => "the notary network cannot serve now",
            FailureCode::Signing => "threshold signing failed",
            FailureCode::Disagreement => "the notary nodes disagree",
            FailureCode::Coordinator => "the coordinator failed",
        }
    }
}

/// Why a session or request failed: a [`FailureCode`] and a detail for people (never key
/// material or session data). Displays as the detail, or the code's message without one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The kind of failure.
    pub code: FailureCode,
    /// What happened, in words.
    pub detail: String,
}

impl Failure {
    /// A failure with `code` and `detail`.
    pub fn new(code: FailureCode, detail: impl Into<String>) -> Self {
        Failure {
            code,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.code.message())
        } else {
            f.write_str(&self.detail)
        }
    }
}
