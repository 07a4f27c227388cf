//! Tessera's client library: what a phone app or an auditor embeds. It never depends on
//! node or coordinator code; the `tessera` command (crate `tessera-cli`), which also runs an
//! in-process committee and the demo network, is built on top of it.
//!
//! - [`audit`]: verifying a quote from files, or a node's RA-TLS certificate over QUIC.
//! - [`net`]: proving through the notary network (coordinator and nodes over QUIC).
//! - [`prove`]: what to prove about a response, the disclosure plan, the presentation.
//! - [`verify`]: checking a presentation offline against trusted group keys.

#![forbid(unsafe_code)]

pub mod audit;
pub mod net;
pub mod prove;
pub mod verify;
