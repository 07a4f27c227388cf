//! Quote sources: where a node gets a DCAP quote over 64 bytes of REPORTDATA.
//!
//! One trait, three implementations: Intel TDX through Linux configfs-tsm
//! ([`tsm::TdxTsmSource`]), Intel SGX through Gramine's `/dev/attestation`
//! ([`gramine::GramineSgxSource`]), and the simulated TEE ([`crate::sim::SimulatedTee`]),
//! which signs real-format quotes with a test PKI and is labelled as simulated everywhere.
//!
//! The hardware sources talk to pseudo-filesystems. They do so through [`PseudoFs`], whose
//! production implementation is [`StdFs`] (plain `std::fs`); tests wrap a temporary directory
//! in a fake that plays the kernel's (or Gramine's) part, so the same code path runs.

use std::io;
use std::path::{Path, PathBuf};

pub mod gramine;
pub mod tsm;

/// Which kind of TEE a source (or a verified quote) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeeKind {
    /// Intel SGX enclave (quote version 3).
    Sgx,
    /// Intel TDX trust domain (quote version 4 or 5).
    Tdx,
}

impl std::fmt::Display for TeeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TeeKind::Sgx => "SGX",
            TeeKind::Tdx => "TDX",
        })
    }
}

/// Why a source could not produce a quote.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The TEE interface is not there (not in a TD / not under Gramine / wrong provider).
    #[error("{interface} is not available: {reason}")]
    Unavailable {
        /// The interface, e.g. "configfs-tsm at /sys/kernel/config/tsm/report".
        interface: String,
        /// What was found instead.
        reason: String,
    },
    /// An I/O operation on the interface failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("write", "read", "create", "remove").
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The interface answered, but not as it must (e.g. a concurrent writer changed the request).
    #[error("{0}")]
    Protocol(String),
    /// The simulated TEE failed to build a quote.
    #[error("simulated TEE: {0}")]
    Simulation(String),
}

/// Something that produces DCAP quotes binding caller-chosen REPORTDATA.
pub trait QuoteSource: Send + Sync {
    /// The TEE this source's quotes come from.
    fn tee(&self) -> TeeKind;
    /// True for the simulated TEE (no hardware protection at all).
    fn is_simulated(&self) -> bool;
    /// A short label for logs and CLI output; the simulated source's label says SIMULATED.
    fn label(&self) -> String;
    /// A fresh quote whose REPORTDATA is `report_data`.
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError>;
}

/// The file operations the hardware sources need from a pseudo-filesystem.
pub trait PseudoFs: Send + Sync {
    /// Create a directory (configfs: instantiate an object).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Remove an empty directory (configfs: release an object).
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Write `data` to an existing or new file, replacing its contents.
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Read a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
}

/// Length of the common DCAP quote header.
const QUOTE_HEADER_LEN: usize = 48;
/// Length of REPORTDATA.
const REPORT_DATA_LEN: usize = 64;

/// At most 32 characters of an untrusted string, for one-line error messages.
fn short(s: &str) -> String {
    s.chars().take(32).collect()
}

/// Read a pseudo-file, naming it in the error.
fn read_file<F: PseudoFs>(fs: &F, path: &Path) -> Result<Vec<u8>, SourceError> {
    fs.read(path).map_err(|source| SourceError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// [`PseudoFs`] on the real filesystem (`std::fs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl PseudoFs for StdFs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        std::fs::write(path, data)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
}
