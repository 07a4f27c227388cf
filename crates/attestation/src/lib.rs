//! TEE attestation for Tessera: DCAP quote verification and policy, quote sources (Intel TDX,
//! Intel SGX under Gramine, and a labelled simulated TEE), and RA-TLS certificates and verifiers.
//!
//! Verification is a pure function of the quote, its collateral, the trusted roots and `now`
//! ([`quote::Verifier::verify`]), in the style of `dcap-qvl`, which does the cryptographic
//! checks. [`policy::Policy`] then decides whether a verified quote is acceptable (TCB status,
//! advisories, debug, measurement allowlist).

#![forbid(unsafe_code)]

pub mod policy;
pub mod quote;
pub mod ratls;
pub mod sim;
pub mod source;

pub use dcap_qvl::QuoteCollateralV3;
pub use policy::{MeasurementRule, Policy, PolicyError};
pub use quote::{Measurements, VerifiedQuote, Verifier, VerifyError};
pub use ratls::{AttestedPeer, Evidence, Expectation, RaTlsError, RaTlsIdentity, RaTlsVerifier};
pub use sim::{CollateralWindow, PlatformStatus, SimIdentity, SimPki, SimulatedTee};
pub use source::{QuoteSource, SourceError, TeeKind};
