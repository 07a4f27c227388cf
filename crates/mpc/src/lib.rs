//! Tessera's MPC engine: three-party, honest-majority garbled circuits with security against
//! a malicious party (abort), after Mohassel–Rosulek–Zhang (CCS 2015).
//!
//! - [`circuit`]: boolean circuit builder, plaintext evaluator, AES-128, SHA-256, arithmetic.
//! - [`garble`]: half-gates + free-XOR garbling over fixed-key AES.
//! - [`three_party`]: the protocol as a sans-IO state machine per party.
//! - [`transport`] and [`session`]: framing, in-memory and stream transports, async driver.
//! - [`client`]: an external client's pads and unmasking for client-bound outputs.
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
