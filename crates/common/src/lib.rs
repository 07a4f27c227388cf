//! What every layer of Tessera that talks over a network shares, and nothing else: the
//! length-prefixed framing of messages on byte streams ([`frame`]) and the failure codes
//! that cross the network ([`failure`]). The MPC engine, the MPC-TLS session and the
//! daemons' wire protocol all use these, so a frame or a failure means the same everywhere.
#![forbid(unsafe_code)]

pub mod failure;
pub mod frame;
