//! What a Tessera committee attests about a committed HTTPS response: "the value at JSON
//! path P of the body of the HTTP response with status S to request METHOD TARGET on host
//! H", proven in a garbled circuit over the ciphertext the nodes committed to, with the
//! traffic keys still on the circuit's wires.
//!
//! - [`path`] and [`expr`]: JSONPath singular queries and predicate expressions (parsing
//!   and canonical text).
//! - [`logic`]: one description of a boolean computation, run in the clear or built as a
//!   circuit, so the client predicts the circuit exactly.
//! - [`http`]: the HTTP layout (request line, status, head, framing) and its checks.
//! - [`scan`]: the JSON lexer and path matcher over the body.
//! - [`request`]: the public disclosure request, its checks, the result.
//! - [`circuit`]: the garbled executions (decryption, scan, final) and reading their output.
//! - [`pipeline`]: the executions in order, their specs and public inputs (no engine).
//! - [`node`] and [`client`]: the two sides of the protocol on a committed MPC-TLS session.
//! - [`local`]: a whole session with its disclosure in one process.
#![forbid(unsafe_code)]

pub mod circuit;
pub mod client;
pub mod expr;
pub mod http;
pub mod local;
pub mod logic;
pub mod node;
pub mod path;
pub mod pipeline;
pub mod request;
pub mod scan;
