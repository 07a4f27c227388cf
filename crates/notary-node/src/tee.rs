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
use crate::NodeError;

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

fn err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Tee(e.to_string())
}

impl Tee {
    /// The TEE `cfg` names.
    pub fn from_config(cfg: &Config) -> Result<Self, NodeError> {
        let policy_text = match &cfg.policy {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| NodeError::Tee(format!("policy {}: {e}", p.display())))?,
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
                    .map_err(|e| NodeError::Tee(format!("collateral {}: {e}", path.display())))?;
                let collateral = attestation::verify::collateral_from_json(&json).map_err(err)?;
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
    pub fn identity(&self, node_id: u16, epoch: u64, now: u64) -> Result<RaTlsIdentity, NodeError> {
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
    pub fn check_peer(&self, cert: &[u8], now: u64) -> Result<(u16, AttestedPeer), NodeError> {
        let peer = self.ratls(None).verify_cert(cert, now).map_err(err)?;
        let id: u16 = peer
            .node_id
            .parse()
            .map_err(|_| err(format!("peer node id {:?} is not a number", peer.node_id)))?;
        Ok((id, peer))
    }
}
