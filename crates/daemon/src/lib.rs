//! What Tessera's programs share without linking the MPC engine: the `notary-node` and
//! `coordinator` daemons and the `tessera` command read TOML configurations, log to stderr,
//! wait for SIGINT/SIGTERM and exit with the same codes ([`program`]); nodes and the
//! coordinator convert the group record between its public file form and the threshold
//! crate's types ([`group`]). The coordinator, which holds no secret, depends on this crate
//! and not on the node's.
#![forbid(unsafe_code)]

pub mod group;
pub mod program;
