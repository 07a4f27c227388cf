//! Tessera's client library: what a phone app or an auditor embeds. It depends on the
//! attestation crate only — never on node or coordinator code.
//!
//! - [`audit`]: verifying a quote from files, or a node's RA-TLS certificate over QUIC.
//! - [`prove`]: what to prove about a response, the disclosure plan, the presentation.
//! - [`verify`]: checking a presentation offline against trusted group keys.

#![forbid(unsafe_code)]

pub mod audit;
pub mod prove;
pub mod verify;
