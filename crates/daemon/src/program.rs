//! What the `notary-node` and `coordinator` daemons (and `tessera`) share as programs:
//! reading a TOML configuration, logging to stderr, waiting for SIGINT/SIGTERM, and the
//! `main` that ties them together with its exit codes.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::de::DeserializeOwned;

/// Why a daemon's configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("{path}: {why}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The settings contradict each other, the security rules, or a range.
    #[error("{0}")]
    Invalid(String),
}

/// Unix seconds now: the one clock the programs read (the protocol cores take `now` as an
/// argument). A clock before 1970 reads as 0.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Reads the TOML file `path` as a `T`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        why: e.message().to_string(),
    })
}

/// Makes each relative path in `paths` relative to the directory of the configuration file
/// `config` instead of the working directory.
pub fn resolve_relative<'a>(config: &Path, paths: impl IntoIterator<Item = &'a mut PathBuf>) {
    let base = config.parent().unwrap_or(Path::new("."));
    for p in paths {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (else `default`, e.g. `info`); colour only when
/// stderr is a terminal and `NO_COLOR` is unset.
pub fn init_logging(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: piped output and `docker compose logs` stay plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .try_init();
}

/// Completes on SIGINT or SIGTERM (as PID 1 in a container, SIGTERM does nothing unless
/// handled).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// A daemon's `main`: logs to stderr (`RUST_LOG`, default `info`), loads its configuration
/// with `load` (exit 2 if that fails), and runs `serve` on a multi-threaded runtime until it
/// returns, handing it [`shutdown_signal`] (exit 0 when it returns `Ok`, else 1). Messages
/// are prefixed with `name`.
pub fn main<C, E, F, S>(
    name: &str,
    load: impl FnOnce() -> Result<C, ConfigError>,
    serve: S,
) -> ExitCode
where
    E: std::fmt::Display,
    F: Future<Output = Result<(), E>>,
    S: FnOnce(C, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
{
    init_logging("info");
    let cfg = match load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(cfg, Box::pin(shutdown_signal()))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
