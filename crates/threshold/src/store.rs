//! Key material at rest: a [`Sealer`] encrypts and authenticates blobs, [`write_sealed`] /
//! [`read_sealed`] put them in files atomically with mode 0600. [`KeyFileSealer`] is SIMULATED
//! sealing (an AES-256-GCM key in a local file), not a TEE; its label says so.
//! Nothing here may print, log or put into an error any key or plaintext byte.
//!
//! Sealed format (version 1):
//! `magic "TSSEAL" (6) || version 0x01 (1) || key id (8) || nonce (12) || AES-256-GCM ciphertext+tag`,
//! with the first 15 bytes (magic, version, key id) and the caller's `aad` as associated data.
//! The key id is the first 8 bytes of SHA-512("tessera-key-file-id/v1" || key); it lets a wrong
//! key file be reported as such instead of as tampering.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand_core::RngCore;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

/// Why sealing, unsealing or a sealed file operation failed. Never carries key or plaintext bytes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The key file exists but is not exactly 32 bytes.
    #[error("key file {path} is {len} bytes, expected 32: it is not a Tessera key file or it is damaged; restore it from backup (do not delete it: data sealed under it would be lost)")]
    BadKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The blob does not start with the sealed-format magic.
    #[error("not a Tessera sealed blob (bad magic)")]
    NotSealed,
    /// The blob's format version is not one this build reads.
    #[error("sealed blob has format version {0}; this build reads version 1")]
    UnsupportedVersion(u8),
    /// The blob is shorter than header plus tag.
    #[error("sealed blob is truncated ({0} bytes)")]
    Truncated(usize),
    /// The blob was sealed under a different key.
    #[error(
        "sealed under key {blob_key_id}, but this sealer's key is {sealer_key_id}: wrong key file"
    )]
    WrongKey {
        /// Key id in the blob header.
        blob_key_id: String,
        /// Key id of this sealer.
        sealer_key_id: String,
    },
    /// Authentication failed: the blob was modified, or the associated data differs.
    #[error("sealed blob failed authentication: it was modified, or opened with different associated data")]
    Unseal,
    /// Encryption failed.
    #[error("sealing failed")]
    Seal,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Something that seals blobs for this machine: a TEE's sealing key, or the simulated
/// [`KeyFileSealer`].
pub trait Sealer {
    /// Human-readable description of where the sealing key lives.
    fn label(&self) -> &str;
    /// True when this is not hardware sealing (for example [`KeyFileSealer`]).
    fn is_simulated(&self) -> bool;
    /// Encrypts and authenticates `plaintext`, binding `aad`.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError>;
    /// Reverses [`Sealer::seal`]; fails unless `aad` and the key match and the blob is unmodified.
    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError>;
}

const MAGIC: &[u8; 6] = b"TSSEAL";
const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_ID_LEN;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// SIMULATED sealing: a random 32-byte AES-256-GCM key kept in a local file (mode 0600), created
/// on first use. Anyone who can read that file can unseal; it stands in for TEE sealing in
/// development and tests, and says so in [`Sealer::label`] and [`Sealer::is_simulated`].
pub struct KeyFileSealer {
    key: Zeroizing<[u8; 32]>,
    key_id: [u8; KEY_ID_LEN],
    path: PathBuf,
}

impl KeyFileSealer {
    /// Label of this sealer.
    pub const LABEL: &'static str = "key-file (simulated sealing, not a TEE)";

    /// Opens the key file at `path`, or creates it (32 random bytes, mode 0600, written to a
    /// temporary file and linked into place so a concurrent creator cannot clobber it).
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        match Self::read_key(path) {
            Ok(sealer) => return Ok(sealer),
            Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        let tmp = temp_path(path);
        let written = (|| {
            let mut f = create_private(&tmp)?;
            f.write_all(key.as_ref())?;
            f.sync_all()
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("writing new key file", &tmp)(source));
        }
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_parent(path);
                tracing::info!(path = %path.display(), "created simulated sealing key file");
                Ok(Self::from_key(key, path))
            }
            // Someone else created it first: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Self::read_key(path),
            Err(e) => Err(io_err("installing key file", path)(e)),
        }
    }

    fn read_key(path: &Path) -> Result<Self, StoreError> {
        let mut f = File::open(path).map_err(io_err("opening key file", path))?;
        let meta = f
            .metadata()
            .map_err(io_err("reading key file metadata", path))?;
        if meta.len() != 32 {
            return Err(StoreError::BadKeyFile {
                path: path.to_path_buf(),
                len: meta.len(),
            });
        }
        warn_if_shared(path, &meta);
        let mut key = Zeroizing::new([0u8; 32]);
        f.read_exact(key.as_mut())
            .map_err(io_err("reading key file", path))?;
        Ok(Self::from_key(key, path))
    }

    fn from_key(key: Zeroizing<[u8; 32]>, path: &Path) -> Self {
        let digest = Sha512::new()
            .chain_update(b"tessera-key-file-id/v1")
            .chain_update(key.as_ref())
            .finalize();
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            key,
            key_id,
            path: path.to_path_buf(),
        }
    }

    /// The key file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Public id of the key (hex), as written into sealed headers.
    pub fn key_id(&self) -> String {
        hex::encode(self.key_id)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.as_ref()))
    }

    fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..MAGIC.len()].copy_from_slice(MAGIC);
        h[MAGIC.len()] = VERSION;
        h[MAGIC.len() + 1..].copy_from_slice(&self.key_id);
        h
    }
}

fn associated(header: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(header.len() + 8 + aad.len());
    v.extend_from_slice(header);
    v.extend_from_slice(&(aad.len() as u64).to_be_bytes());
    v.extend_from_slice(aad);
    v
}

impl Sealer for KeyFileSealer {
    fn label(&self) -> &str {
        Self::LABEL
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let header = self.header();
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ad = associated(&header, aad);
        let ct = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            .map_err(|_| StoreError::Seal)?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unseal(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if sealed.len() < MAGIC.len() + 1 || &sealed[..MAGIC.len()] != MAGIC {
            return Err(StoreError::NotSealed);
        }
        let version = sealed[MAGIC.len()];
        if version != VERSION {
            return Err(StoreError::UnsupportedVersion(version));
        }
        if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(StoreError::Truncated(sealed.len()));
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let blob_key_id = &header[MAGIC.len() + 1..];
        if blob_key_id != self.key_id {
            return Err(StoreError::WrongKey {
                blob_key_id: hex::encode(blob_key_id),
                sealer_key_id: self.key_id(),
            });
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let ad = associated(header, aad);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &ad })
            .map(Zeroizing::new)
            .map_err(|_| StoreError::Unseal)
    }
}

impl std::fmt::Debug for KeyFileSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileSealer")
            .field("label", &Self::LABEL)
            .field("path", &self.path)
            .field("key_id", &self.key_id())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Seals `plaintext` with `sealer` and writes it to `path` atomically: a new temporary file in the
/// same directory (mode 0600), fsync, rename over `path`, fsync of the directory.
pub fn write_sealed<S: Sealer + ?Sized>(
    path: impl AsRef<Path>,
    sealer: &S,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<(), StoreError> {
    let path = path.as_ref();
    let sealed = sealer.seal(aad, plaintext)?;
    let tmp = temp_path(path);
    let written = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(&sealed)?;
        f.sync_all()
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("writing sealed file", &tmp)(source));
    }
    if let Err(source) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("renaming sealed file into place", path)(source));
    }
    sync_parent(path);
    Ok(())
}

/// Reads `path` and unseals it with `sealer` and `aad`.
pub fn read_sealed<S: Sealer + ?Sized>(
    path: impl AsRef<Path>,
    sealer: &S,
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let path = path.as_ref();
    let sealed = fs::read(path).map_err(io_err("reading sealed file", path))?;
    sealer.unseal(aad, &sealed)
}

/// `dir/.name.tmp-<random>` next to `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = OsRng.next_u64();
    path.with_file_name(format!(".{name}.tmp-{suffix:016x}"))
}

/// Creates a new file that only the owner can read or write.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    // The umask can only remove bits; set the mode explicitly anyway.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(unix)]
fn warn_if_shared(path: &Path, meta: &fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "key file is readable or writable by group or others; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path, _meta: &fs::Metadata) {}
