//! MPC-TLS: a TLS 1.2 client whose session keys exist only as shares among three notary
//! nodes, while the client (the phone) owns the connection and its plaintext.
//!
//! - [`codec`]: TLS 1.2 records, handshake messages, alerts and GCM framing.
//! - [`stream`]: the server's relayed bytes as events (sans-IO).
//! - [`handshake`]: the server's first flight as an explicit state machine (sans-IO).
//! - [`server_auth`]: certificate chain and ServerKeyExchange checks each node does itself.
//! - [`prf`]: the TLS 1.2 PRF with the Extended Master Secret as boolean circuits.
//! - [`hkdf`]: the TLS 1.3 key schedule as boolean circuits, [`circuits13`]: the TLS 1.3
//!   handshake and application executions built from it, [`record13`]: TLS 1.3 record
//!   protection in the clear, [`handshake13`]: the server's TLS 1.3 flight as a state
//!   machine (building blocks of the TLS 1.3 client, not yet wired into a session).
//! - [`circuits`]: the session's four garbled executions.
//! - [`proto`] and [`net`]: client↔node messages, the transcript, channels over one transport.
//! - [`node`]: a node's side of a session (and the committed session it can hand on for a
//!   computation over the response, the disclosure); [`client`]: the phone's side.
//! - [`local`]: a whole session in one process (the example, the benchmark, the tests).
#![forbid(unsafe_code)]

pub mod circuits;
pub mod circuits13;
pub mod client;
pub mod codec;
pub mod handshake;
pub mod handshake13;
pub mod hkdf;
pub mod local;
pub mod net;
pub mod node;
pub mod prf;
pub mod proto;
pub mod record13;
pub mod server_auth;
pub mod stream;
