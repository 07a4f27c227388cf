//! Tessera's one-per-person pseudonymous UID: a nullifier HMAC-SHA256(k, canonical PII ‖
//! scope) under a key k that exists only as Shamir shares held by the nodes and, during a
//! computation, as wires of a garbled circuit. No node, and no code in this crate outside
//! tests, ever learns k or the client's PII.
//!
//! - [`gf128`]: the field of the key and its shares.
//! - [`shamir`]: sharing, dealerless key generation, resharing on membership changes.
//! - [`canon`]: canonical PII and the nullifier message — the plaintext reference.
//! - [`circuit`]: the same computations as circuit gadgets, with their AND-gate costs.
#![forbid(unsafe_code)]

pub mod canon;
pub mod circuit;
pub mod gf128;
pub mod shamir;

pub use canon::{DateFormat, FieldKind, NullifierError};
pub use gf128::Gf128;
pub use shamir::{ShamirError, Share};
