//! The coordinator's TOML configuration (`configs/coordinator.toml`). Relative paths are
//! read relative to the file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use daemon::program::ConfigError;

/// Deliberate misbehaviour, for the tests that show a dishonest coordinator causes aborts
/// rather than false notarizations. Never set in a deployment; the coordinator logs an error
/// at start when one is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tamper {
    /// Put a different message (the notarization with its last byte changed) in the signing
    /// package.
    Message,
    /// Change a commitment leaf before handing the result to the client.
    Leaves,
    /// Change the aggregated signature before handing it to the client.
    Signature,
    /// Give the client a seat whose address is another node's.
    Seat,
    /// Record another measurement for the first member in a membership entry.
    Log,
    /// Propose a session time an hour in the past.
    Time,
}

/// The coordinator's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The UDP address the QUIC endpoint binds.
    pub listen: String,
    /// Where the membership log lives (`log.json`).
    pub state_dir: PathBuf,
    /// TCP address for `/health` and `/metrics` (none: not served).
    #[serde(default)]
    pub health_listen: Option<String>,
    /// How many admitted nodes the genesis waits for (at least 3).
    #[serde(default = "default_genesis")]
    pub genesis_nodes: usize,
    /// A session's deadline, from the committee's selection to the signature.
    #[serde(default = "default_timeout")]
    pub session_timeout_secs: u32,
    /// A production coordinator: refuses simulated nodes unless `allow_simulated`.
    #[serde(default)]
    pub production: bool,
    /// Admit nodes in the simulated TEE. Never in production.
    #[serde(default)]
    pub allow_simulated: bool,
    /// The measurement policy nodes must pass (default: the built-in one for the mode).
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Tests only: misbehave this way.
    #[serde(default)]
    pub tamper: Option<Tamper>,
}

fn default_genesis() -> usize {
    3
}

fn default_timeout() -> u32 {
    120
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut c: Config = daemon::program::read_toml(path)?;
        daemon::program::resolve_relative(
            path,
            std::iter::once(&mut c.state_dir).chain(c.policy.as_mut()),
        );
        c.check()?;
        Ok(c)
    }

    /// Range checks.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.genesis_nodes < 3 {
            return Err(ConfigError::Invalid(
                "genesis_nodes must be at least 3 (a session seats three nodes)".into(),
            ));
        }
        if self.session_timeout_secs < 5 {
            return Err(ConfigError::Invalid(
                "session_timeout_secs must be at least 5".into(),
            ));
        }
        if self.production && self.allow_simulated {
            tracing::warn!(
                "production coordinator with allow_simulated = true: SIMULATED nodes are admitted"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configurations_load_and_limits_hold() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for f in ["coordinator.toml", "docker/coordinator.toml"] {
            let c = Config::load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert!(c.allow_simulated && c.tamper.is_none(), "{f}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:0\"\nstate_dir = \"s\"\ngenesis_nodes = 2\n",
        )
        .unwrap();
        assert!(Config::load(&p)
            .unwrap_err()
            .to_string()
            .contains("genesis_nodes"));
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:0\"\nstate_dir = \"s\"\nsurprise = 1\n",
        )
        .unwrap();
        assert!(Config::load(&p)
            .unwrap_err()
            .to_string()
            .contains("surprise"));
    }
}
