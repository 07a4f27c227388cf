//! Tessera's MPC engine: three-party, honest-majority garbled circuits with security against
//! a malicious party (abort), after Mohassel–Rosulek–Zhang (CCS 2015).
//!
//! - [`circuit`]: boolean circuit builder, plaintext evaluator, AES-128, SHA-256, arithmetic.
//! - [`garble`]: half-gates + free-XOR garbling over fixed-key AES.
//! - [`three_party`]: the protocol as a sans-IO state machine per party.
//! - [`transport`] and [`session`]: framing, in-memory and stream transports, async driver.
//! - [`client`]: an external client's pads and unmasking for client-bound outputs.
//!
//! The arithmetic side (replicated secret sharing with the Chida et al. check):
//! - [`field`]: the P-256 base field and GF(2^128) in GCM bit order.
//! - [`rss`]: shares, the per-party engine, programs and the sans-IO machine that runs them.
//! - [`ectf`]: additive shares of the x-coordinate of a sum of three points.
//! - [`ghash`]: shares of the powers of the GCM key and of GHASH.
//! - [`convert`]: moving values between garbled circuits and the arithmetic side.
#![forbid(unsafe_code)]

pub mod circuit;
pub mod client;
pub mod convert;
pub mod ectf;
pub mod field;
pub mod garble;
pub mod ghash;
pub mod label;
pub mod msg;
pub mod rss;
pub mod session;
pub mod spec;
pub mod three_party;
pub mod transport;

pub use spec::{
    ExecId, ExecSpec, InputGroup, InputSource, OutputGroup, OutputTo, PartyId, EVALUATOR,
    GARBLER_0, GARBLER_1,
};
pub use three_party::{Abort, Error, GroupOutput, Inputs, Party, Work};
