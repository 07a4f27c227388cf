//! A notary node's notarization logic, independent of how nodes are connected: its sealed
//! key state (FROST key share and UID key share), turning what its MPC-TLS session computed
//! into a [`notarization::Notarization`], and signing it. [`local`] runs a whole committee in
//! one process (`tessera prove --local`). Nothing here ever sees plaintext: a node's report
//! holds hashes, commitments, predicate bits and a nullifier.
#![forbid(unsafe_code)]

pub mod genesis;
pub mod local;
pub mod notarize;
pub mod state;

pub use notarize::{build_notarization, NotaryError};
pub use state::{GroupFile, MemberRecord, NodeState, StateError};
