//! Intel SGX quotes through Gramine's `/dev/attestation` pseudo-filesystem.
//!
//! Inside an enclave run by `gramine-sgx`, Gramine exposes remote attestation as pseudo-files
//! (Gramine docs, "Attestation and Secret Provisioning", low-level `/dev/attestation`
//! interface): `attestation_type` names the scheme (`none`, `epid` or `dcap`, from the
//! manifest's `sgx.remote_attestation`), `user_report_data` takes the 64 bytes of REPORTDATA,
//! and reading `quote` returns a quote over the REPORTDATA written last.
//!
//! These files hold process-wide state and Gramine does not synchronise access to them, so
//! [`GramineSgxSource`] serialises its own quote requests through one process-wide lock and
//! checks that the returned quote carries the requested REPORTDATA (another writer in the same
//! enclave, outside this source, could still interleave).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{
    read_file, short, PseudoFs, QuoteSource, SourceError, StdFs, TeeKind, QUOTE_HEADER_LEN,
    REPORT_DATA_LEN,
};

/// Where Gramine mounts its attestation pseudo-files inside the enclave.
pub const DEFAULT_GRAMINE_ATTESTATION_ROOT: &str = "/dev/attestation";

/// The only attestation type this source accepts.
const DCAP: &str = "dcap";

/// Length of the SGX report body that follows the header in a v3 quote.
const SGX_REPORT_BODY_LEN: usize = 384;
/// Offset of REPORTDATA inside the SGX report body.
const SGX_REPORT_DATA_OFFSET: usize = 320;
/// Quote format version Gramine's DCAP flow produces for SGX.
const SGX_QUOTE_VERSION: u16 = 3;
/// `tee_type` of an SGX quote (bytes 4..8 of the header, little-endian).
const TEE_TYPE_SGX: u32 = 0;

/// Serialises quote requests: Gramine's `/dev/attestation` files are process-global, so one
/// lock covers every [`GramineSgxSource`] in the process.
static GRAMINE_LOCK: Mutex<()> = Mutex::new(());

/// Intel SGX DCAP quotes from Gramine's `/dev/attestation` pseudo-files.
#[derive(Debug)]
pub struct GramineSgxSource<F: PseudoFs = StdFs> {
    root: PathBuf,
    fs: F,
}

impl GramineSgxSource<StdFs> {
    /// The source on the real filesystem, at [`DEFAULT_GRAMINE_ATTESTATION_ROOT`].
    pub fn new() -> Self {
        Self::with_fs(PathBuf::from(DEFAULT_GRAMINE_ATTESTATION_ROOT), StdFs)
    }
}

impl Default for GramineSgxSource<StdFs> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: PseudoFs> GramineSgxSource<F> {
    /// A source whose attestation directory is `root`, accessed through `fs` (tests pass a
    /// fake here).
    pub fn with_fs(root: PathBuf, fs: F) -> Self {
        Self { root, fs }
    }

    /// The attestation pseudo-file directory this source uses.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn interface(&self) -> String {
        format!("Gramine {}", self.root.display())
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, SourceError> {
        read_file(&self.fs, path)
    }

    fn quote_locked(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError> {
        let type_path = self.root.join("attestation_type");
        let attestation_type = match self.fs.read(&type_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SourceError::Unavailable {
                    interface: self.interface(),
                    reason: format!(
                        "not running in an SGX enclave under Gramine; {} is missing",
                        type_path.display()
                    ),
                })
            }
            Err(source) => {
                return Err(SourceError::Io {
                    op: "read",
                    path: type_path,
                    source,
                })
            }
        };
        let attestation_type = String::from_utf8_lossy(&attestation_type);
        let attestation_type =
            attestation_type.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if attestation_type != DCAP {
            return Err(SourceError::Unavailable {
                interface: self.interface(),
                reason: format!(
                    "attestation_type is {:?}, expected \"dcap\" \
                     (sgx.remote_attestation in the manifest)",
                    short(attestation_type)
                ),
            });
        }

        let user_report_data_path = self.root.join("user_report_data");
        self.fs
            .write(&user_report_data_path, report_data)
            .map_err(|source| SourceError::Io {
                op: "write",
                path: user_report_data_path,
                source,
            })?;

        let quote = self.read(&self.root.join("quote"))?;
        check_sgx_quote(&quote, report_data)?;
        Ok(quote)
    }
}

impl<F: PseudoFs> QuoteSource for GramineSgxSource<F> {
    fn tee(&self) -> TeeKind {
        TeeKind::Sgx
    }

    fn is_simulated(&self) -> bool {
        false
    }

    fn label(&self) -> String {
        "Intel SGX (Gramine /dev/attestation)".to_string()
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError> {
        // The lock guards no data, so a panic in another holder leaves nothing inconsistent.
        let _guard = GRAMINE_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.quote_locked(report_data)
    }
}

/// Check that `quote` looks like an SGX DCAP v3 quote whose REPORTDATA is `report_data`.
///
/// This is a sanity check on what Gramine returned, not verification.
fn check_sgx_quote(quote: &[u8], report_data: &[u8; 64]) -> Result<(), SourceError> {
    if quote.is_empty() {
        return Err(SourceError::Protocol(
            "Gramine returned an empty quote".to_string(),
        ));
    }
    if quote.len() < QUOTE_HEADER_LEN + SGX_REPORT_BODY_LEN {
        return Err(SourceError::Protocol(format!(
            "Gramine quote is {} bytes, too short for an SGX quote",
            quote.len()
        )));
    }
    let version = u16::from_le_bytes([quote[0], quote[1]]);
    if version != SGX_QUOTE_VERSION {
        return Err(SourceError::Protocol(format!(
            "Gramine quote is not an SGX DCAP quote: \
             header version {version}, expected {SGX_QUOTE_VERSION}"
        )));
    }
    let tee_type = u32::from_le_bytes([quote[4], quote[5], quote[6], quote[7]]);
    if tee_type != TEE_TYPE_SGX {
        return Err(SourceError::Protocol(format!(
            "Gramine quote is not an SGX DCAP quote: \
             tee_type {tee_type:#x}, expected {TEE_TYPE_SGX:#x}"
        )));
    }
    let offset = QUOTE_HEADER_LEN + SGX_REPORT_DATA_OFFSET;
    if quote[offset..offset + REPORT_DATA_LEN] != report_data[..] {
        return Err(SourceError::Protocol(
            "Gramine quote REPORTDATA does not match the request \
             (another writer in this enclave changed user_report_data?)"
                .to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Arc;

    /// A temporary directory that plays Gramine's part of `/dev/attestation`, synchronously.
    struct FakeGramine {
        dir: tempfile::TempDir,
        /// Simulates another writer in the enclave: the quote carries different REPORTDATA.
        interfere: bool,
    }

    impl FakeGramine {
        /// `attestation_type` of `None` leaves the file out (Gramine not running SGX).
        fn new(attestation_type: Option<&str>) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("attestation");
            std::fs::create_dir(&root).unwrap();
            if let Some(t) = attestation_type {
                std::fs::write(root.join("attestation_type"), t).unwrap();
            }
            Self {
                dir,
                interfere: false,
            }
        }

        fn root(&self) -> PathBuf {
            self.dir.path().join("attestation")
        }

        fn source(self) -> GramineSgxSource<FakeGramine> {
            GramineSgxSource::with_fs(self.root(), self)
        }
    }

    impl PseudoFs for FakeGramine {
        fn create_dir(&self, path: &Path) -> io::Result<()> {
            StdFs.create_dir(path)
        }

        fn remove_dir(&self, path: &Path) -> io::Result<()> {
            StdFs.remove_dir(path)
        }

        fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
            StdFs.write(path, data)?;
            if path.file_name().and_then(|n| n.to_str()) == Some("user_report_data") {
                let mut report_data: [u8; 64] = data.try_into().unwrap();
                if self.interfere {
                    report_data = [0xee; 64];
                }
                let root = path.parent().unwrap();
                StdFs.write(&root.join("quote"), &fake_sgx_quote(&report_data))?;
            }
            Ok(())
        }

        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            StdFs.read(path)
        }
    }

    /// Zeros with the right header fields and REPORTDATA, plus a dummy signature-data tail.
    fn fake_sgx_quote(report_data: &[u8; 64]) -> Vec<u8> {
        let mut q = vec![0u8; 48 + 384];
        q[0..2].copy_from_slice(&3u16.to_le_bytes());
        q[2..4].copy_from_slice(&2u16.to_le_bytes()); // ECDSA-256 with P-256
        q[368..432].copy_from_slice(report_data);
        q.extend_from_slice(&[0u8; 4]); // signature data length (empty)
        q
    }

    fn report_data(seed: u8) -> [u8; 64] {
        std::array::from_fn(|i| seed.wrapping_mul(3).wrapping_add(i as u8))
    }

    #[test]
    fn metadata() {
        let source = GramineSgxSource::new();
        assert_eq!(source.tee(), TeeKind::Sgx);
        assert!(!source.is_simulated());
        assert_eq!(source.label(), "Intel SGX (Gramine /dev/attestation)");
        assert_eq!(source.root(), Path::new(DEFAULT_GRAMINE_ATTESTATION_ROOT));
    }

    #[test]
    fn success_returns_quote_with_report_data() {
        let source = FakeGramine::new(Some("dcap")).source();
        let rd = report_data(5);
        let quote = source.quote(&rd).unwrap();
        assert_eq!(quote, fake_sgx_quote(&rd));
        assert_eq!(&quote[368..432], &rd[..]);
        let written = std::fs::read(source.root().join("user_report_data")).unwrap();
        assert_eq!(written, rd);
    }

    #[test]
    fn attestation_type_with_newline_is_accepted() {
        let source = FakeGramine::new(Some("dcap\n")).source();
        source.quote(&report_data(1)).unwrap();
    }

    #[test]
    fn attestation_type_none_or_epid_is_unavailable() {
        for t in ["none", "epid"] {
            let source = FakeGramine::new(Some(t)).source();
            let err = source.quote(&report_data(1)).unwrap_err();
            assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(t), "{msg}");
            assert!(!msg.contains('\n'));
        }
    }

    #[test]
    fn missing_attestation_dir_is_unavailable() {
        let fake = FakeGramine::new(Some("dcap"));
        let root = fake.dir.path().join("no-such-dir");
        let source = GramineSgxSource::with_fs(root, fake);
        let err = source.quote(&report_data(1)).unwrap_err();
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        assert!(
            err.to_string().contains("not running in an SGX enclave"),
            "{err}"
        );
    }

    #[test]
    fn missing_attestation_type_is_unavailable() {
        // gramine-direct: /dev/attestation exists but has no SGX files.
        let source = FakeGramine::new(None).source();
        let err = source.quote(&report_data(1)).unwrap_err();
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
    }

    #[test]
    fn wrong_report_data_is_protocol_error() {
        let mut fake = FakeGramine::new(Some("dcap"));
        fake.interfere = true;
        let source = fake.source();
        let err = source.quote(&report_data(1)).unwrap_err();
        assert!(matches!(err, SourceError::Protocol(_)), "{err}");
        assert!(err.to_string().contains("REPORTDATA"), "{err}");
    }

    #[test]
    fn implausible_quotes_are_rejected() {
        let rd = report_data(2);
        let good = fake_sgx_quote(&rd);
        assert!(check_sgx_quote(&good, &rd).is_ok());

        let mut bad_cases: Vec<Vec<u8>> = vec![Vec::new(), good[..431].to_vec()];
        let mut tdx_version = good.clone();
        tdx_version[0..2].copy_from_slice(&4u16.to_le_bytes());
        bad_cases.push(tdx_version);
        let mut tdx_tee = good.clone();
        tdx_tee[4..8].copy_from_slice(&0x81u32.to_le_bytes());
        bad_cases.push(tdx_tee);
        for bad in bad_cases {
            let err = check_sgx_quote(&bad, &rd).unwrap_err();
            assert!(matches!(err, SourceError::Protocol(_)), "{err}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn concurrent_quotes_are_serialised() {
        let source = Arc::new(FakeGramine::new(Some("dcap")).source());
        let handles: Vec<_> = (0u8..4)
            .map(|seed| {
                let source = Arc::clone(&source);
                std::thread::spawn(move || {
                    for round in 0u8..25 {
                        let rd = report_data(seed.wrapping_mul(31).wrapping_add(round));
                        let quote = source.quote(&rd).unwrap();
                        assert_eq!(&quote[368..432], &rd[..]);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
