//! MPC-TLS: a TLS 1.2 client whose session keys exist only as shares among three notary
//! nodes. This crate is being built up; what exists so far:
//!
//! - [`prf`]: the TLS 1.2 PRF (P_SHA256, RFC 5246 §5) with the Extended Master Secret
//!   (RFC 7627), key expansion and Finished as boolean circuits for the garbled-circuit
//!   engine, so the pre-master secret, master secret and session keys never exist in the clear.
#![forbid(unsafe_code)]

pub mod prf;
