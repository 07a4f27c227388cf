//! Tessera's client library: what a phone app or an auditor embeds. It depends on the
//! attestation crate only — never on node or coordinator code.
//!
//! Today it holds [`audit`]: verifying a quote from files, or a node's RA-TLS certificate over
//! QUIC, and reporting what it proves.

#![forbid(unsafe_code)]

pub mod audit;
