//! Attestation policy: which verified quotes a node, coordinator or client accepts.
//!
//! A policy is read from TOML (the deployment's is `configs/measurements.toml`):
//!
//! ```toml
//! allowed_tcb_statuses = ["UpToDate", "SWHardeningNeeded"]
//! allow_simulated = false            # production: never
//!
//! [[measurement]]
//! name = "notary-node 0.1.0 (SGX, Gramine)"
//! tee = "sgx"
//! mrenclave = "…64 hex…"
//! mrsigner = "…64 hex…"
//! isv_prod_id = 1
//! min_isv_svn = 1
//! allowed_advisories = ["INTEL-SA-00615"]
//!
//! [[measurement]]
//! name = "notary-node 0.1.0 (TDX)"
//! tee = "tdx"
//! mrtd = "…96 hex…"
//! rtmr = ["…", "…", "…", "…"]        # optional; all four when present
//! allowed_advisories = []
//! ```
//!
//! Checks run in a fixed order and the first failure is returned, naming the check:
//! simulation, debug, TCB status, measurement, then advisories (allowed per measurement).

use serde::{Deserialize, Serialize};

use crate::quote::{Measurements, VerifiedQuote};
use crate::source::TeeKind;

/// Why a verified quote is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy file is not valid.
    #[error("invalid policy: {0}")]
    Invalid(String),
    /// The quote is simulated and the policy does not allow simulation.
    #[error("SIMULATED TEE refused: the policy does not set allow_simulated")]
    SimulationRefused,
    /// The enclave or TD runs in debug mode.
    #[error("debug {0} refused: its memory is readable by the host")]
    DebugEnclave(TeeKind),
    /// The TCB status is not in `allowed_tcb_statuses`.
    #[error("TCB status {status} is not allowed (allowed: {allowed})")]
    TcbStatusNotAllowed {
        /// The quote's status.
        status: String,
        /// The allowed ones, comma separated.
        allowed: String,
    },
    /// No `[[measurement]]` entry matches.
    #[error("measurement not allowed: {0}")]
    MeasurementNotAllowed(String),
    /// An advisory applies that the matching measurement entry does not allow.
    #[error("advisory {advisory} is not allowed for measurement {measurement:?}")]
    AdvisoryNotAllowed {
        /// The advisory id.
        advisory: String,
        /// The matching entry's name.
        measurement: String,
    },
}

/// One allowed workload identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementRule {
    /// Human name, shown in logs and errors.
    pub name: String,
    /// `sgx` or `tdx`.
    pub tee: TeeKind,
    /// SGX: MRENCLAVE (64 hex digits).
    #[serde(default)]
    pub mrenclave: Option<String>,
    /// SGX: MRSIGNER (64 hex digits).
    #[serde(default)]
    pub mrsigner: Option<String>,
    /// SGX: ISVPRODID.
    #[serde(default)]
    pub isv_prod_id: Option<u16>,
    /// SGX: the lowest ISVSVN accepted.
    #[serde(default)]
    pub min_isv_svn: Option<u16>,
    /// TDX: MRTD (96 hex digits).
    #[serde(default)]
    pub mrtd: Option<String>,
    /// TDX: RTMR0–3 (96 hex digits each), when pinned.
    #[serde(default)]
    pub rtmr: Option<[String; 4]>,
    /// Intel advisories accepted for this workload.
    #[serde(default)]
    pub allowed_advisories: Vec<String>,
    /// This entry describes the simulated node (matches only simulated quotes).
    #[serde(default)]
    pub simulated: bool,
}

/// A whole policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// TCB statuses accepted (Intel's names).
    pub allowed_tcb_statuses: Vec<String>,
    /// Accept quotes from the simulated TEE. Must be false in production.
    #[serde(default)]
    pub allow_simulated: bool,
    /// The allowlist of workload identities.
    #[serde(default, rename = "measurement")]
    pub measurements: Vec<MeasurementRule>,
}

/// Intel's TCB status names, for validating policies.
const KNOWN_STATUSES: &[&str] = &[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
    "Revoked",
];

fn check_hex(
    field: &str,
    rule: &str,
    value: &Option<String>,
    len: usize,
) -> Result<(), PolicyError> {
    if let Some(v) = value {
        let ok = v.len() == len * 2 && v.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(PolicyError::Invalid(format!(
                "measurement {rule:?}: {field} must be {} hex digits",
                len * 2
            )));
        }
    }
    Ok(())
}

fn eq_hex(want: &Option<String>, have: &str) -> bool {
    want.as_ref().map_or(true, |w| w.eq_ignore_ascii_case(have))
}

impl MeasurementRule {
    fn validate(&self) -> Result<(), PolicyError> {
        let n = &self.name;
        match self.tee {
            TeeKind::Sgx => {
                if self.mrenclave.is_none() && self.mrsigner.is_none() {
                    return Err(PolicyError::Invalid(format!(
                        "measurement {n:?}: an SGX entry needs mrenclave or mrsigner"
                    )));
                }
                if self.mrenclave.is_none() && self.isv_prod_id.is_none() {
                    return Err(PolicyError::Invalid(format!(
                        "measurement {n:?}: an entry pinned by mrsigner alone needs isv_prod_id"
                    )));
                }
                if self.mrtd.is_some() || self.rtmr.is_some() {
                    return Err(PolicyError::Invalid(format!(
                        "measurement {n:?}: mrtd/rtmr are TDX fields"
                    )));
                }
                check_hex("mrenclave", n, &self.mrenclave, 32)?;
                check_hex("mrsigner", n, &self.mrsigner, 32)?;
            }
            TeeKind::Tdx => {
                if self.mrtd.is_none() {
                    return Err(PolicyError::Invalid(format!(
                        "measurement {n:?}: a TDX entry needs mrtd"
                    )));
                }
                if self.mrenclave.is_some() || self.mrsigner.is_some() {
                    return Err(PolicyError::Invalid(format!(
                        "measurement {n:?}: mrenclave/mrsigner are SGX fields"
                    )));
                }
                check_hex("mrtd", n, &self.mrtd, 48)?;
                if let Some(rtmr) = &self.rtmr {
                    for (i, r) in rtmr.iter().enumerate() {
                        check_hex(&format!("rtmr[{i}]"), n, &Some(r.clone()), 48)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Does this rule describe the verified workload?
    pub fn matches(&self, v: &VerifiedQuote) -> bool {
        if self.simulated != v.simulated {
            return false;
        }
        match &v.measurements {
            Measurements::Sgx {
                mrenclave,
                mrsigner,
                isv_prod_id,
                isv_svn,
            } => {
                self.tee == TeeKind::Sgx
                    && eq_hex(&self.mrenclave, mrenclave)
                    && eq_hex(&self.mrsigner, mrsigner)
                    && self.isv_prod_id.map_or(true, |p| p == *isv_prod_id)
                    && self.min_isv_svn.map_or(true, |m| *isv_svn >= m)
            }
            Measurements::Tdx { mrtd, rtmr } => {
                self.tee == TeeKind::Tdx
                    && eq_hex(&self.mrtd, mrtd)
                    && self.rtmr.as_ref().map_or(true, |want| {
                        want.iter()
                            .zip(rtmr)
                            .all(|(w, h)| w.eq_ignore_ascii_case(h))
                    })
            }
        }
    }
}

impl Policy {
    /// Parse and validate a policy from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy =
            toml::from_str(text).map_err(|e| PolicyError::Invalid(e.message().to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Read a policy file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError::Invalid(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.allowed_tcb_statuses.is_empty() {
            return Err(PolicyError::Invalid(
                "allowed_tcb_statuses is empty: nothing could pass".into(),
            ));
        }
        for s in &self.allowed_tcb_statuses {
            if s == "Revoked" {
                return Err(PolicyError::Invalid("Revoked can never be allowed".into()));
            }
            if !KNOWN_STATUSES.contains(&s.as_str()) {
                return Err(PolicyError::Invalid(format!("unknown TCB status {s:?}")));
            }
        }
        for rule in &self.measurements {
            rule.validate()?;
            if rule.simulated && !self.allow_simulated {
                return Err(PolicyError::Invalid(format!(
                    "measurement {:?} is simulated but allow_simulated is false",
                    rule.name
                )));
            }
        }
        Ok(())
    }

    /// Decide whether `v` is acceptable; on success, the measurement entry it matched.
    pub fn check<'a>(&'a self, v: &VerifiedQuote) -> Result<&'a MeasurementRule, PolicyError> {
        if v.simulated && !self.allow_simulated {
            return Err(PolicyError::SimulationRefused);
        }
        if v.debug {
            return Err(PolicyError::DebugEnclave(v.tee));
        }
        if !self.allowed_tcb_statuses.iter().any(|s| s == &v.status) {
            return Err(PolicyError::TcbStatusNotAllowed {
                status: v.status.clone(),
                allowed: self.allowed_tcb_statuses.join(", "),
            });
        }
        let rule = self
            .measurements
            .iter()
            .find(|r| r.matches(v))
            .ok_or_else(|| PolicyError::MeasurementNotAllowed(describe(v)))?;
        if let Some(advisory) = v
            .advisories
            .iter()
            .find(|a| !rule.allowed_advisories.contains(a))
        {
            return Err(PolicyError::AdvisoryNotAllowed {
                advisory: advisory.clone(),
                measurement: rule.name.clone(),
            });
        }
        Ok(rule)
    }
}

/// A one-line description of a workload identity, for errors.
pub fn describe(v: &VerifiedQuote) -> String {
    let sim = if v.simulated { "SIMULATED " } else { "" };
    match &v.measurements {
        Measurements::Sgx {
            mrenclave,
            mrsigner,
            isv_prod_id,
            isv_svn,
        } => format!(
            "{sim}SGX MRENCLAVE {mrenclave} MRSIGNER {mrsigner} ISVPRODID {isv_prod_id} ISVSVN {isv_svn}"
        ),
        Measurements::Tdx { mrtd, .. } => format!("{sim}TDX MRTD {mrtd}"),
    }
}
