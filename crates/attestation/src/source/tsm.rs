//! Intel TDX quotes through Linux configfs-tsm (`/sys/kernel/config/tsm/report`).
//!
//! The kernel ABI (Linux `Documentation/ABI/testing/configfs-tsm-report`) works per request
//! entry: `mkdir` a directory under the report root, check `provider`, write up to 64 bytes to
//! `inblob`, read the quote from `outblob`, and `rmdir` the entry. `generation` counts the writes
//! made to an entry, so reading it after `outblob` and comparing it with the number of writes
//! this client made shows whether another writer changed the request in between.
//!
//! [`TdxTsmSource`] creates a fresh, uniquely named entry for every quote (so concurrent callers
//! never share one), requires the `tdx_guest` provider, checks the generation and the quote's
//! header and REPORTDATA, and always removes the entry again.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{
    read_file, short, PseudoFs, QuoteSource, SourceError, StdFs, TeeKind, QUOTE_HEADER_LEN,
    REPORT_DATA_LEN,
};

/// Where configfs-tsm report entries live on Linux.
pub const DEFAULT_TSM_REPORT_ROOT: &str = "/sys/kernel/config/tsm/report";

/// The configfs-tsm provider name of the Linux TDX guest driver.
const TDX_PROVIDER: &str = "tdx_guest";

/// Writes this client makes to a fresh entry (just `inblob`); `generation` must equal it.
const WRITES_PER_REQUEST: u64 = 1;

/// Linux `ENXIO`: configfs-tsm refuses to create entries while no TSM provider is registered.
const ENXIO: i32 = 6;

/// `tee_type` of a TDX quote (bytes 4..8 of the header, little-endian).
const TEE_TYPE_TDX: u32 = 0x81;
/// Length of the v5 body descriptor (u16 body type, u32 body size) after the header.
const V5_BODY_DESCRIPTOR_LEN: usize = 6;
/// v5 body types that carry a TD report (TD 1.0, TD 1.5, TD 1.5 extended).
const V5_TD_BODY_TYPES: [u16; 3] = [2, 3, 4];
/// Length of a TD 1.0 report body, the shortest TD body.
const TD_REPORT10_LEN: usize = 584;
/// Offset of REPORTDATA inside every TD report body.
const TD_REPORT_DATA_OFFSET: usize = 520;

/// Per-process counter that keeps entry names unique within one process.
static ENTRY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Intel TDX quotes from the Linux configfs-tsm report interface.
///
/// Each [`QuoteSource::quote`] call uses its own fresh entry under the report root, so calls
/// from several threads (or processes) may run concurrently.
#[derive(Debug)]
pub struct TdxTsmSource<F: PseudoFs = StdFs> {
    root: PathBuf,
    fs: F,
}

impl TdxTsmSource<StdFs> {
    /// The source on the real filesystem, with entries under [`DEFAULT_TSM_REPORT_ROOT`].
    pub fn new() -> Self {
        Self::with_fs(PathBuf::from(DEFAULT_TSM_REPORT_ROOT), StdFs)
    }
}

impl Default for TdxTsmSource<StdFs> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: PseudoFs> TdxTsmSource<F> {
    /// A source whose report root is `root`, accessed through `fs` (tests pass a fake here).
    pub fn with_fs(root: PathBuf, fs: F) -> Self {
        Self { root, fs }
    }

    /// The configfs-tsm report root this source creates its entries under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn interface(&self) -> String {
        format!("configfs-tsm at {}", self.root.display())
    }

    /// Fill in the request on a freshly created `entry` and read back the checked quote.
    fn request(&self, entry: &Path, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError> {
        let provider_path = entry.join("provider");
        let provider = self.read(&provider_path)?;
        let provider = String::from_utf8_lossy(&provider);
        let provider = provider.trim_end_matches(['\n', '\0']);
        if provider != TDX_PROVIDER {
            return Err(SourceError::Unavailable {
                interface: self.interface(),
                reason: format!(
                    "provider is {:?}, expected {TDX_PROVIDER:?}",
                    short(provider)
                ),
            });
        }

        let inblob_path = entry.join("inblob");
        self.fs
            .write(&inblob_path, report_data)
            .map_err(|source| SourceError::Io {
                op: "write",
                path: inblob_path,
                source,
            })?;

        let outblob = self.read(&entry.join("outblob"))?;

        let generation_path = entry.join("generation");
        let generation = self.read(&generation_path)?;
        let generation = String::from_utf8_lossy(&generation);
        let generation: u64 = generation.trim().parse().map_err(|_| {
            SourceError::Protocol(format!(
                "configfs-tsm: {} does not hold a number",
                generation_path.display()
            ))
        })?;
        if generation != WRITES_PER_REQUEST {
            return Err(SourceError::Protocol(format!(
                "configfs-tsm: generation is {generation} after {WRITES_PER_REQUEST} write(s); \
                 another writer changed the request"
            )));
        }

        check_tdx_quote(&outblob, report_data)?;
        Ok(outblob)
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, SourceError> {
        read_file(&self.fs, path)
    }
}

impl<F: PseudoFs> QuoteSource for TdxTsmSource<F> {
    fn tee(&self) -> TeeKind {
        TeeKind::Tdx
    }

    fn is_simulated(&self) -> bool {
        false
    }

    fn label(&self) -> String {
        "Intel TDX (configfs-tsm)".to_string()
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError> {
        let entry = self.root.join(entry_name());
        if let Err(source) = self.fs.create_dir(&entry) {
            return Err(match (source.kind(), source.raw_os_error()) {
                (std::io::ErrorKind::NotFound, _) => SourceError::Unavailable {
                    interface: self.interface(),
                    reason: format!(
                        "not running in a TDX guest with configfs-tsm; {} is missing",
                        self.root.display()
                    ),
                },
                (_, Some(ENXIO)) => SourceError::Unavailable {
                    interface: self.interface(),
                    reason: "no TSM provider is registered (is the tdx_guest driver loaded?)"
                        .to_string(),
                },
                _ => SourceError::Io {
                    op: "create",
                    path: entry,
                    source,
                },
            });
        }

        let result = self.request(&entry, report_data);

        // configfs removes an entry's attributes together with its directory.
        if let Err(err) = self.fs.remove_dir(&entry) {
            tracing::warn!(
                entry = %entry.display(),
                error = %err,
                request_ok = result.is_ok(),
                "could not remove configfs-tsm report entry"
            );
        }
        result
    }
}

/// A fresh entry name: `tessera-{pid}-{counter}-{nanos}`.
fn entry_name() -> String {
    let counter = ENTRY_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("tessera-{}-{counter}-{nanos}", std::process::id())
}

/// Check that `quote` looks like a TDX DCAP quote (v4 or v5) whose REPORTDATA is `report_data`.
///
/// This is a sanity check on what the kernel returned, not verification.
fn check_tdx_quote(quote: &[u8], report_data: &[u8; 64]) -> Result<(), SourceError> {
    if quote.is_empty() {
        return Err(SourceError::Protocol(
            "configfs-tsm returned an empty outblob".to_string(),
        ));
    }
    if quote.len() < QUOTE_HEADER_LEN {
        return Err(SourceError::Protocol(format!(
            "configfs-tsm outblob is {} bytes, too short for a quote header",
            quote.len()
        )));
    }
    let version = u16::from_le_bytes([quote[0], quote[1]]);
    let tee_type = u32::from_le_bytes([quote[4], quote[5], quote[6], quote[7]]);
    if tee_type != TEE_TYPE_TDX {
        return Err(SourceError::Protocol(format!(
            "configfs-tsm outblob is not a TDX quote: \
             tee_type {tee_type:#x}, expected {TEE_TYPE_TDX:#x}"
        )));
    }
    let body_start = match version {
        4 => QUOTE_HEADER_LEN,
        5 => {
            let descriptor_end = QUOTE_HEADER_LEN + V5_BODY_DESCRIPTOR_LEN;
            if quote.len() < descriptor_end {
                return Err(SourceError::Protocol(format!(
                    "TDX v5 quote is {} bytes, too short for its body descriptor",
                    quote.len()
                )));
            }
            let body_type = u16::from_le_bytes([quote[48], quote[49]]);
            let body_size = u32::from_le_bytes([quote[50], quote[51], quote[52], quote[53]]);
            if !V5_TD_BODY_TYPES.contains(&body_type) {
                return Err(SourceError::Protocol(format!(
                    "TDX v5 quote has body type {body_type}, not a TD report"
                )));
            }
            if u64::from(body_size) < TD_REPORT10_LEN as u64 {
                return Err(SourceError::Protocol(format!(
                    "TDX v5 quote has body size {body_size}, too small for a TD report"
                )));
            }
            descriptor_end
        }
        other => {
            return Err(SourceError::Protocol(format!(
                "configfs-tsm outblob is not a TDX quote: header version {other}, expected 4 or 5"
            )))
        }
    };
    let offset = body_start + TD_REPORT_DATA_OFFSET;
    let Some(found) = quote.get(offset..offset + REPORT_DATA_LEN) else {
        return Err(SourceError::Protocol(format!(
            "TDX v{version} quote is {} bytes, too short for its TD report body",
            quote.len()
        )));
    };
    if found != report_data {
        return Err(SourceError::Protocol(
            "TDX quote REPORTDATA does not match the request".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    /// The attribute files the fake kernel keeps in an entry.
    const ATTRIBUTES: [&str; 4] = ["provider", "generation", "inblob", "outblob"];

    /// Makes the two requests of the concurrency test meet while both entries exist.
    struct Rendezvous {
        arrived: Mutex<usize>,
        all_here: Condvar,
        parties: usize,
    }

    impl Rendezvous {
        fn arrive(&self) {
            let mut arrived = self.arrived.lock().unwrap();
            *arrived += 1;
            self.all_here.notify_all();
            // Time out rather than hang if the other party never comes.
            let _ = self
                .all_here
                .wait_timeout_while(arrived, Duration::from_secs(5), |n| *n < self.parties)
                .unwrap();
        }
    }

    /// A temporary directory that plays the kernel's part of configfs-tsm, synchronously.
    struct FakeTsm {
        dir: tempfile::TempDir,
        provider: String,
        quote_version: u16,
        /// Extra generation increments per `inblob` write (simulates another writer).
        extra_writes: u64,
        /// Flip a REPORTDATA byte in the produced quote.
        corrupt_report_data: bool,
        created: Mutex<Vec<PathBuf>>,
        rendezvous: Option<Arc<Rendezvous>>,
    }

    impl FakeTsm {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("report")).unwrap();
            Self {
                dir,
                provider: "tdx_guest\n".to_string(),
                quote_version: 4,
                extra_writes: 0,
                corrupt_report_data: false,
                created: Mutex::new(Vec::new()),
                rendezvous: None,
            }
        }

        fn root(&self) -> PathBuf {
            self.dir.path().join("report")
        }

        fn source(self) -> (TdxTsmSource<FakeTsm>, PathBuf) {
            let root = self.root();
            (TdxTsmSource::with_fs(root.clone(), self), root)
        }
    }

    impl PseudoFs for FakeTsm {
        fn create_dir(&self, path: &Path) -> io::Result<()> {
            StdFs.create_dir(path)?;
            StdFs.write(&path.join("provider"), self.provider.as_bytes())?;
            StdFs.write(&path.join("generation"), b"0\n")?;
            self.created.lock().unwrap().push(path.to_path_buf());
            Ok(())
        }

        fn remove_dir(&self, path: &Path) -> io::Result<()> {
            for name in ATTRIBUTES {
                match std::fs::remove_file(path.join(name)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            StdFs.remove_dir(path)
        }

        fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
            StdFs.write(path, data)?;
            if path.file_name().and_then(|n| n.to_str()) == Some("inblob") {
                let entry = path.parent().unwrap();
                let generation: u64 = String::from_utf8(StdFs.read(&entry.join("generation"))?)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                let generation = generation + 1 + self.extra_writes;
                StdFs.write(
                    &entry.join("generation"),
                    format!("{generation}\n").as_bytes(),
                )?;
                let mut report_data: [u8; 64] = data.try_into().unwrap();
                if self.corrupt_report_data {
                    report_data[0] ^= 0xff;
                }
                StdFs.write(
                    &entry.join("outblob"),
                    &fake_tdx_quote(self.quote_version, &report_data),
                )?;
                if let Some(r) = &self.rendezvous {
                    r.arrive();
                }
            }
            Ok(())
        }

        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            StdFs.read(path)
        }
    }

    /// Zeros with the right header fields, TD report body and REPORTDATA, plus a dummy tail.
    fn fake_tdx_quote(version: u16, report_data: &[u8; 64]) -> Vec<u8> {
        let mut q = vec![0u8; 48];
        q[0..2].copy_from_slice(&version.to_le_bytes());
        q[2..4].copy_from_slice(&2u16.to_le_bytes()); // ECDSA-256 with P-256
        q[4..8].copy_from_slice(&0x81u32.to_le_bytes());
        let body_len = if version == 5 {
            let body_len = 648usize; // TD 1.5 report body
            q.extend_from_slice(&3u16.to_le_bytes());
            q.extend_from_slice(&(body_len as u32).to_le_bytes());
            body_len
        } else {
            584
        };
        let body_start = q.len();
        q.resize(body_start + body_len, 0);
        q[body_start + 520..body_start + 584].copy_from_slice(report_data);
        q.extend_from_slice(&[0u8; 4]); // signature data length (empty)
        q
    }

    fn report_data(seed: u8) -> [u8; 64] {
        std::array::from_fn(|i| seed.wrapping_add(i as u8))
    }

    fn entries(root: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    #[test]
    fn metadata() {
        let source = TdxTsmSource::new();
        assert_eq!(source.tee(), TeeKind::Tdx);
        assert!(!source.is_simulated());
        assert_eq!(source.label(), "Intel TDX (configfs-tsm)");
        assert_eq!(source.root(), Path::new(DEFAULT_TSM_REPORT_ROOT));
    }

    #[test]
    fn success_v4_returns_outblob_and_removes_entry() {
        let (source, root) = FakeTsm::new().source();
        let rd = report_data(7);
        let quote = source.quote(&rd).unwrap();
        assert_eq!(quote, fake_tdx_quote(4, &rd));
        assert_eq!(&quote[568..632], &rd[..]);
        assert!(entries(&root).is_empty(), "entry left behind");
    }

    #[test]
    fn success_v5_returns_outblob_and_removes_entry() {
        let mut fake = FakeTsm::new();
        fake.quote_version = 5;
        let (source, root) = fake.source();
        let rd = report_data(9);
        let quote = source.quote(&rd).unwrap();
        assert_eq!(&quote[574..638], &rd[..]);
        assert!(entries(&root).is_empty(), "entry left behind");
    }

    #[test]
    fn missing_root_is_unavailable() {
        let fake = FakeTsm::new();
        let root = fake.dir.path().join("missing");
        let source = TdxTsmSource::with_fs(root, fake);
        let err = source.quote(&report_data(1)).unwrap_err();
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("not running in a TDX guest"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn wrong_provider_is_unavailable_and_entry_removed() {
        let mut fake = FakeTsm::new();
        fake.provider = "sev_guest\n".to_string();
        let (source, root) = fake.source();
        let err = source.quote(&report_data(1)).unwrap_err();
        assert!(matches!(err, SourceError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains("sev_guest"), "{err}");
        assert!(entries(&root).is_empty(), "entry left behind");
    }

    #[test]
    fn generation_mismatch_is_protocol_error_and_entry_removed() {
        let mut fake = FakeTsm::new();
        fake.extra_writes = 1;
        let (source, root) = fake.source();
        let err = source.quote(&report_data(1)).unwrap_err();
        assert!(matches!(err, SourceError::Protocol(_)), "{err}");
        assert!(
            err.to_string()
                .contains("another writer changed the request"),
            "{err}"
        );
        assert!(entries(&root).is_empty(), "entry left behind");
    }

    #[test]
    fn wrong_report_data_is_protocol_error() {
        for version in [4, 5] {
            let mut fake = FakeTsm::new();
            fake.corrupt_report_data = true;
            fake.quote_version = version;
            let (source, root) = fake.source();
            let err = source.quote(&report_data(1)).unwrap_err();
            assert!(matches!(err, SourceError::Protocol(_)), "{err}");
            assert!(err.to_string().contains("REPORTDATA"), "{err}");
            assert!(entries(&root).is_empty(), "entry left behind");
        }
    }

    #[test]
    fn implausible_outblobs_are_rejected() {
        let rd = report_data(3);
        let good = fake_tdx_quote(4, &rd);
        assert!(check_tdx_quote(&good, &rd).is_ok());
        assert!(check_tdx_quote(&fake_tdx_quote(5, &rd), &rd).is_ok());

        let mut bad_cases: Vec<Vec<u8>> =
            vec![Vec::new(), good[..47].to_vec(), good[..600].to_vec()];
        let mut sgx_version = good.clone();
        sgx_version[0..2].copy_from_slice(&3u16.to_le_bytes());
        bad_cases.push(sgx_version);
        let mut sgx_tee = good.clone();
        sgx_tee[4..8].copy_from_slice(&0u32.to_le_bytes());
        bad_cases.push(sgx_tee);
        let mut v5_sgx_body = fake_tdx_quote(5, &rd);
        v5_sgx_body[48..50].copy_from_slice(&1u16.to_le_bytes());
        bad_cases.push(v5_sgx_body);
        for bad in bad_cases {
            let err = check_tdx_quote(&bad, &rd).unwrap_err();
            assert!(matches!(err, SourceError::Protocol(_)), "{err}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn concurrent_quotes_use_distinct_entries() {
        let mut fake = FakeTsm::new();
        fake.rendezvous = Some(Arc::new(Rendezvous {
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
            parties: 2,
        }));
        let (source, root) = fake.source();
        let source = Arc::new(source);
        let handles: Vec<_> = [11u8, 22u8]
            .into_iter()
            .map(|seed| {
                let source = Arc::clone(&source);
                std::thread::spawn(move || {
                    let rd = report_data(seed);
                    let quote = source.quote(&rd).unwrap();
                    assert_eq!(&quote[568..632], &rd[..]);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let created = source.fs.created.lock().unwrap().clone();
        assert_eq!(created.len(), 2);
        assert_eq!(created.iter().collect::<HashSet<_>>().len(), 2);
        assert!(entries(&root).is_empty(), "entry left behind");
    }
}
