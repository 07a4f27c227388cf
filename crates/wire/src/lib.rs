//! Tessera's network protocol, shared by the phone-side client, the notary nodes and the
//! coordinator (and nothing else: no key material, no node logic, so a phone app embeds it).
//!
//! - [`msg`]: every message, by conversation.
//! - [`frame`]: one message = a 4-byte big-endian length and its postcard encoding, on a
//!   QUIC stream, with a size limit per conversation.
//! - [`quic`]: the QUIC transport settings (keep-alive, idle timeout, windows), the TLS
//!   configurations (RA-TLS for nodes; the coordinator's throwaway certificate) and dialing.
//! - [`metrics`]: a minimal HTTP responder for `/health` and Prometheus `/metrics`.
//!
//! Trust model: the coordinator is not trusted with anything. Clients and nodes check nodes
//! by RA-TLS; results are checked against the group key. So the coordinator's own TLS
//! certificate is not checked by anyone (see [`quic::coordinator_client_config`]).
#![forbid(unsafe_code)]

pub mod frame;
pub mod metrics;
pub mod msg;
pub mod quic;
