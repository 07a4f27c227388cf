//! Workspace-level end-to-end tests live in `tests/`; this crate only provides the daemons'
//! entry points as binaries of its own (`e2e-node`, `e2e-coordinator`).
#![forbid(unsafe_code)]
