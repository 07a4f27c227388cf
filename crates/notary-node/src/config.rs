//! The node's TOML configuration (`configs/node-*.toml`). Relative paths are read relative
//! to the configuration file. A production configuration refuses the simulated TEE unless
//! `allow_simulated = true` says otherwise explicitly.

use std::path::{Path, PathBuf};

use attestation::TeeKind;
use serde::Deserialize;

pub use daemon::program::ConfigError;

/// Where the node's quotes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The simulated TEE: real-format quotes signed by a public test PKI. No security.
    Simulated,
    /// Intel TDX through Linux configfs-tsm.
    Tdx,
    /// Intel SGX through Gramine's `/dev/attestation`.
    SgxGramine,
}

/// `[tee]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeeConfig {
    /// The quote source.
    pub source: Source,
    /// For the simulated source: which TEE it imitates (default `sgx`).
    #[serde(default)]
    pub kind: Option<TeeKind>,
    /// For the simulated source: report this MRENCLAVE (hex) instead of the notary-node
    /// build's. Only for tests of measurement policies: the node is then refused at join.
    #[serde(default)]
    pub simulated_mrenclave: Option<String>,
    /// For hardware sources: the DCAP collateral (JSON, as `tessera audit quote` reads it)
    /// fetched from a PCCS for this platform.
    #[serde(default)]
    pub collateral: Option<PathBuf>,
}

/// A notary node's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's id (1–65535): its FROST identifier and UID share coordinate.
    pub node_id: u16,
    /// The UDP address the QUIC endpoint binds.
    pub listen: String,
    /// The address clients and peers dial (default: the bound address).
    #[serde(default)]
    pub advertise: Option<String>,
    /// The coordinator's QUIC address.
    pub coordinator: String,
    /// Where sealed keys and the membership log live.
    pub state_dir: PathBuf,
    /// TCP address for `/health` and `/metrics` (none: not served).
    #[serde(default)]
    pub health_listen: Option<String>,
    /// A production node: refuses the simulated TEE unless `allow_simulated`.
    #[serde(default)]
    pub production: bool,
    /// Accept the simulated TEE (own and peers'). Never in production.
    #[serde(default)]
    pub allow_simulated: bool,
    /// The measurement policy peers must pass (default: the built-in one for the mode,
    /// `configs/measurements.simulated.toml` or `configs/measurements.toml`).
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// PEM roots the node trusts for providers (default: the Mozilla roots).
    #[serde(default)]
    pub provider_roots: Option<PathBuf>,
    /// Most sessions at once; more are refused.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// On shutdown, how long to let running sessions finish.
    #[serde(default = "default_drain")]
    pub drain_secs: u64,
    /// Garble TLS 1.3's key schedule ahead of the provider's answer (the default: a provider
    /// that speaks TLS 1.3 picks it); `false` garbles TLS 1.2's instead, for nodes that serve
    /// mostly TLS 1.2 providers. A wrong guess costs time, never correctness.
    #[serde(default = "default_prepare_tls13")]
    pub prepare_tls13: bool,
    /// The TEE.
    pub tee: TeeConfig,
}

fn default_max_sessions() -> usize {
    64
}

fn default_drain() -> u64 {
    120
}

fn default_prepare_tls13() -> bool {
    true
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut c: Config = daemon::program::read_toml(path)?;
        daemon::program::resolve_relative(
            path,
            std::iter::once(&mut c.state_dir)
                .chain(c.policy.as_mut())
                .chain(c.provider_roots.as_mut())
                .chain(c.tee.collateral.as_mut()),
        );
        c.check()?;
        Ok(c)
    }

    /// The security and consistency rules.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.node_id == 0 {
            return Err(ConfigError::Invalid("node_id must be 1–65535".into()));
        }
        let simulated = self.tee.source == Source::Simulated;
        if simulated && !self.allow_simulated {
            return Err(ConfigError::Invalid(
                "tee.source = \"simulated\" needs allow_simulated = true (the simulated TEE has no security)".into(),
            ));
        }
        if self.production && self.allow_simulated {
            tracing::warn!(
                "production configuration with allow_simulated = true: SIMULATED TEEs are accepted"
            );
        }
        if !simulated && (self.tee.simulated_mrenclave.is_some() || self.tee.kind.is_some()) {
            return Err(ConfigError::Invalid(
                "tee.kind and tee.simulated_mrenclave apply to the simulated source only".into(),
            ));
        }
        if !simulated && self.tee.collateral.is_none() {
            return Err(ConfigError::Invalid(
                "a hardware TEE source needs tee.collateral (DCAP collateral JSON from a PCCS)"
                    .into(),
            ));
        }
        if self.max_sessions == 0 {
            return Err(ConfigError::Invalid(
                "max_sessions must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.toml");
        std::fs::write(&p, s).unwrap();
        Config::load(&p)
    }

    const BASE: &str = "node_id = 1\nlisten = \"127.0.0.1:0\"\ncoordinator = \"127.0.0.1:7100\"\nstate_dir = \"s\"\n";

    #[test]
    fn the_simulated_tee_must_be_allowed_explicitly() {
        let e = parse(&format!("{BASE}[tee]\nsource = \"simulated\"\n")).unwrap_err();
        assert!(e.to_string().contains("allow_simulated"), "{e}");
        let c = parse(&format!(
            "{BASE}allow_simulated = true\n[tee]\nsource = \"simulated\"\n"
        ))
        .unwrap();
        assert!(c.state_dir.is_absolute());
        let e = parse(&format!("{BASE}[tee]\nsource = \"tdx\"\n")).unwrap_err();
        assert!(e.to_string().contains("collateral"), "{e}");
        let e = parse(&format!("{BASE}bogus = 1\n[tee]\nsource = \"tdx\"\n")).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let zero = BASE
            .replace("node_id = 1", "node_id = 0")
            .replace("state_dir", "allow_simulated = true\nstate_dir");
        let e = parse(&format!("{zero}[tee]\nsource = \"simulated\"\n")).unwrap_err();
        assert!(e.to_string().contains("node_id"), "{e}");
    }

    #[test]
    fn nodes_prepare_for_tls13_unless_told_otherwise() {
        let sim = "allow_simulated = true\n[tee]\nsource = \"simulated\"\n";
        assert!(parse(&format!("{BASE}{sim}")).unwrap().prepare_tls13);
        let c = parse(&format!("{BASE}prepare_tls13 = false\n{sim}")).unwrap();
        assert!(!c.prepare_tls13);
    }

    #[test]
    fn the_shipped_configurations_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        for f in [
            "node-1.toml",
            "node-2.toml",
            "node-3.toml",
            "docker/node-1.toml",
            "docker/node-2.toml",
            "docker/node-3.toml",
        ] {
            let c = Config::load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(c.tee.source, Source::Simulated, "{f}");
            assert!(c.allow_simulated && !c.production, "{f}");
        }
    }
}
