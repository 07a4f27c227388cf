//! The node's TEE, as configured: where quotes come from (simulated, TDX via configfs-tsm,
//! SGX via Gramine), the RA-TLS identity made from one, and the verifier and measurement
//! policy the node applies to its peers (and to itself, at start).

use attestation::source::gramine::GramineSgxSource;
use attestation::source::tsm::TdxTsmSource;
use attestation::{
    AttestedPeer, CollateralWindow, Expectation, PlatformStatus, Policy, QuoteCollateralV3,
    QuoteSource, RaTlsIdentity, RaTlsVerifier, SimIdentity, SimPki, SimulatedTee, TeeKind,
    Verifier,
};

use crate::config::{Config, Source};
use crate::DaemonError;

const SIMULATED_POLICY: &str = include_str!("../../../configs/measurements.simulated.toml");
const PRODUCTION_POLICY: &str = include_str!("../../../configs/measurements.toml");

enum Quotes {
    Simulated(Box<SimulatedTee>),
    Hardware(Box<dyn QuoteSource>, Box<QuoteCollateralV3>),
}

/// The node's TEE and the attestation rules it applies.
pub struct Tee {
    quotes: Quotes,
    /// Checks quotes (Intel's root, plus the simulated root when allowed).
    pub verifier: Verifier,
    /// The measurement policy for peers.
    pub policy: Policy,
}

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tee({})", self.label())
    }
}

fn err(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Tee(e.to_string())
}

impl Tee {
    /// The TEE `cfg` names.
    pub fn from_config(cfg: &Config) -> Result<Self, DaemonError> {
        let policy_text = match &cfg.policy {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| DaemonError::Tee(format!("policy {}: {e}", p.display())))?,
            None if cfg.allow_simulated => SIMULATED_POLICY.to_string(),
            None => PRODUCTION_POLICY.to_string(),
        };
        let policy = Policy::from_toml(&policy_text).map_err(err)?;
        let mut verifier = Verifier::intel();
        if cfg.allow_simulated {
            verifier = verifier.allow_simulated(SimPki::well_known().map_err(err)?.root_der());
        }
        let quotes = match cfg.tee.source {
            Source::Simulated => {
                let kind = cfg.tee.kind.unwrap_or(TeeKind::Sgx);
                let mut identity = SimIdentity::notary_node(kind);
                if let Some(m) = &cfg.tee.simulated_mrenclave {
                    let bytes: [u8; 32] = hex::decode(m)
                        .ok()
                        .and_then(|v| v.try_into().ok())
                        .ok_or_else(|| err("tee.simulated_mrenclave must be 64 hex digits"))?;
                    match &mut identity {
                        SimIdentity::Sgx { mr_enclave, .. } => *mr_enclave = bytes,
                        SimIdentity::Tdx { .. } => {
                            return Err(err("tee.simulated_mrenclave needs tee.kind = \"sgx\""))
                        }
                    }
                }
                Quotes::Simulated(Box::new(SimulatedTee::new(
                    SimPki::well_known().map_err(err)?,
                    identity,
                )))
            }
            hw => {
                let path = cfg
                    .tee
                    .collateral
                    .as_ref()
                    .ok_or_else(|| err("a hardware source needs tee.collateral"))?;
                let json = std::fs::read_to_string(path)
                    .map_err(|e| DaemonError::Tee(format!("collateral {}: {e}", path.display())))?;
                let collateral = attestation::quote::collateral_from_json(&json).map_err(err)?;
                let source: Box<dyn QuoteSource> = match hw {
                    Source::Tdx => Box::new(TdxTsmSource::new()),
                    _ => Box::new(GramineSgxSource::new()),
                };
                Quotes::Hardware(source, Box::new(collateral))
            }
        };
        Ok(Tee {
            quotes,
            verifier,
            policy,
        })
    }

    /// The source's label (says SIMULATED for the simulated TEE).
    pub fn label(&self) -> String {
        match &self.quotes {
            Quotes::Simulated(s) => s.label(),
            Quotes::Hardware(s, _) => s.label(),
        }
    }

    /// Whether the TEE is simulated.
    pub fn is_simulated(&self) -> bool {
        matches!(self.quotes, Quotes::Simulated(_))
    }

    /// A fresh RA-TLS identity for node `node_id` at `epoch`, valid for a week from `now`.
    pub fn identity(
        &self,
        node_id: u16,
        epoch: u64,
        now: u64,
    ) -> Result<RaTlsIdentity, DaemonError> {
        let (source, collateral): (&dyn QuoteSource, QuoteCollateralV3) = match &self.quotes {
            Quotes::Simulated(s) => (
                s.as_ref(),
                s.collateral(
                    &PlatformStatus::default(),
                    CollateralWindow::around(now, 30),
                )
                .map_err(err)?,
            ),
            Quotes::Hardware(s, c) => (s.as_ref(), (**c).clone()),
        };
        let now = i64::try_from(now).map_err(err)?;
        RaTlsIdentity::generate(
            source,
            collateral,
            &node_id.to_string(),
            epoch,
            now - 3600,
            now + 7 * 86_400,
        )
        .map_err(err)
    }

    /// An RA-TLS verifier with this node's verifier and policy, expecting node `node_id`
    /// (any node if `None`).
    pub fn ratls(&self, node_id: Option<u16>) -> RaTlsVerifier {
        RaTlsVerifier::new(
            self.verifier.clone(),
            self.policy.clone(),
            Expectation {
                node_id: node_id.map(|n| n.to_string()),
                epoch: None,
            },
        )
    }

    /// Checks a peer node's certificate (DER) at `now`; the node id it proves.
    pub fn check_peer(&self, cert: &[u8], now: u64) -> Result<(u16, AttestedPeer), DaemonError> {
        let peer = self.ratls(None).verify_cert(cert, now).map_err(err)?;
        let id: u16 = peer
            .node_id
            .parse()
            .map_err(|_| err(format!("peer node id {:?} is not a number", peer.node_id)))?;
        Ok((id, peer))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::TeeConfig;
    use std::path::Path;

    fn config(tee: TeeConfig, allow_simulated: bool) -> Config {
        Config {
            node_id: 7,
            listen: "127.0.0.1:0".into(),
            advertise: None,
            coordinator: "127.0.0.1:1".into(),
            state_dir: std::env::temp_dir(),
            health_listen: None,
            production: !allow_simulated,
            allow_simulated,
            policy: None,
            provider_roots: None,
            max_sessions: 1,
            drain_secs: 1,
            prepare_tls13: true,
            tee,
        }
    }

    #[test]
    fn the_simulated_source_makes_an_identity_its_own_policy_accepts() {
        let tee = Tee::from_config(&config(
            TeeConfig {
                source: Source::Simulated,
                kind: None,
                simulated_mrenclave: None,
                collateral: None,
            },
            true,
        ))
        .unwrap();
        assert!(tee.is_simulated() && tee.label().contains("SIMULATED"));
        let now = 1_795_000_000;
        let id = tee.identity(7, 3, now).unwrap();
        let (node, peer) = tee.check_peer(id.cert(), now).unwrap();
        assert_eq!((node, peer.epoch), (7, 3));
        assert!(peer.verified.simulated);
        // Another node's expectation refuses it.
        assert!(tee.ratls(Some(8)).verify_cert(id.cert(), now).is_err());
    }

    #[test]
    fn a_hardware_source_outside_a_tee_fails_clearly_at_quote_time() {
        // Intel's collateral for a real TDX quote (dcap-qvl's test data); the quote source is
        // configfs-tsm, which this machine does not have.
        let collateral = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../attestation/testdata/dcap/tdx_quote_collateral.json");
        let tee = Tee::from_config(&config(
            TeeConfig {
                source: Source::Tdx,
                kind: None,
                simulated_mrenclave: None,
                collateral: Some(collateral),
            },
            false,
        ))
        .unwrap();
        assert!(!tee.is_simulated());
        assert!(tee.label().contains("TDX"), "{}", tee.label());
        let e = tee.identity(7, 1, 1_751_624_924).unwrap_err().to_string();
        assert!(
            e.contains("configfs-tsm") || e.contains("not available"),
            "{e}"
        );
    }
}
