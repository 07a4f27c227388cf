//! DCAP quote verification: a pure function of the quote, its collateral, the trusted roots
//! and the time.
//!
//! `dcap-qvl` does the cryptography and Intel's appraisal steps (root → PCK chain and CRLs,
//! signed TCB info and QE identity, QE report, the quote's signature, TCB level matching).
//! This module chooses the root (Intel's, an injected one, or — only when allowed — the
//! simulated TEE's), checks the collateral's validity window itself so that expiry has its
//! own error, and turns the result into a [`VerifiedQuote`] report with the measurements named.
//! Whether the report is *acceptable* is [`crate::policy::Policy`]'s decision.

use dcap_qvl::quote::{Quote, Report};
use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::{QuoteClaims, QuoteCollateralV3};
use serde::{Deserialize, Serialize};

use crate::sim::SIM_ROOT_CN;
use crate::source::TeeKind;

/// Why a quote did not verify. Each variant names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The quote bytes are not a DCAP quote this verifier understands.
    #[error("malformed quote: {0}")]
    Malformed(String),
    /// The collateral is not in dcap-qvl's `QuoteCollateralV3` form.
    #[error("malformed collateral: {0}")]
    MalformedCollateral(String),
    /// The quote is signed by the simulated TEE's PKI and this verifier does not allow it.
    #[error("quote comes from the SIMULATED TEE (test PKI), which this configuration refuses")]
    SimulationRefused,
    /// A piece of collateral is past its `nextUpdate` (or a certificate past `notAfter`).
    #[error("collateral expired: {item} was valid until {until} (UNIX), now is {now}")]
    CollateralExpired {
        /// Which piece ("TCB info", "QE identity", "CRL or certificate").
        item: &'static str,
        /// Its `nextUpdate` / `notAfter`, UNIX seconds.
        until: u64,
        /// The verification time.
        now: u64,
    },
    /// A piece of collateral was issued after the verification time.
    #[error("collateral not yet valid: {item} was issued at {issued} (UNIX), now is {now}")]
    CollateralNotYetValid {
        /// Which piece.
        item: &'static str,
        /// Its issue date, UNIX seconds.
        issued: u64,
        /// The verification time.
        now: u64,
    },
    /// Intel's TCB info marks the platform (or its QE) as revoked.
    #[error("TCB status is Revoked: the platform's keys are compromised")]
    TcbRevoked,
    /// A certificate in the quote's chain is on a CRL.
    #[error("certificate revoked: {0}")]
    CertificateRevoked(String),
    /// Any other failed DCAP check, as dcap-qvl reports it (signature, chain, FMSPC, QE identity…).
    #[error("quote verification failed: {0}")]
    Dcap(String),
}

/// Where the trusted root comes from.
#[derive(Clone, Debug)]
enum Root {
    /// Intel's SGX root CA (embedded in dcap-qvl).
    Intel,
    /// A root given by the caller (tests, private PKIs).
    Der(Vec<u8>),
}

/// Verifies quotes against a root, and optionally the simulated TEE's root.
#[derive(Clone, Debug)]
pub struct Verifier {
    root: Root,
    simulated_root: Option<Vec<u8>>,
}

/// Measurements of a verified quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tee", rename_all = "lowercase")]
pub enum Measurements {
    /// An SGX enclave's identity.
    Sgx {
        /// MRENCLAVE (hex).
        mrenclave: String,
        /// MRSIGNER (hex).
        mrsigner: String,
        /// ISVPRODID.
        isv_prod_id: u16,
        /// ISVSVN.
        isv_svn: u16,
    },
    /// A TDX trust domain's identity.
    Tdx {
        /// MRTD (hex).
        mrtd: String,
        /// RTMR0–3 (hex).
        rtmr: [String; 4],
    },
}

/// A quote that passed DCAP verification, with what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedQuote {
    /// SGX or TDX.
    pub tee: TeeKind,
    /// Quote format version (3, 4 or 5).
    pub quote_version: u16,
    /// Converged TCB status as Intel names it (e.g. `UpToDate`).
    pub status: String,
    /// Intel security advisories that apply to this platform's TCB level.
    pub advisories: Vec<String>,
    /// The enclave's or TD's measurements.
    pub measurements: Measurements,
    /// REPORTDATA (64 bytes, hex).
    pub report_data: String,
    /// The enclave or TD runs in debug mode (its memory is readable by the host).
    pub debug: bool,
    /// Verified with the simulated TEE's test PKI: no hardware security at all.
    pub simulated: bool,
    /// FMSPC of the platform (hex).
    pub fmspc: String,
    /// The earliest `nextUpdate`/`notAfter` among all collateral (UNIX seconds): verification
    /// fails from about then on (a CRL from that very second), so refresh collateral before.
    pub collateral_expires: u64,
}

impl VerifiedQuote {
    /// The measurement group records name a member by: MRENCLAVE (SGX) or MRTD (TDX), hex.
    pub fn measurement(&self) -> String {
        match &self.measurements {
            Measurements::Sgx { mrenclave, .. } => mrenclave.clone(),
            Measurements::Tdx { mrtd, .. } => mrtd.clone(),
        }
    }

    /// The TEE kind as group records write it: `sgx` or `tdx`.
    pub fn tee_name(&self) -> String {
        self.tee.to_string().to_lowercase()
    }

    /// REPORTDATA as bytes (`None` only if `report_data` was edited into something else).
    pub fn report_data_bytes(&self) -> Option<[u8; 64]> {
        hex::decode(&self.report_data).ok()?.try_into().ok()
    }
}

/// Accepts every claim set: policy is applied afterwards by [`crate::policy::Policy`].
struct NoDcapPolicy;

impl dcap_qvl::Policy for NoDcapPolicy {
    fn validate(&self, _: &QuoteClaims) -> anyhow::Result<()> {
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Dated {
    issue_date: String,
    next_update: String,
}

fn unix_of(rfc3339: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

fn check_window(item: &'static str, json: &str, now: u64) -> Result<(), VerifyError> {
    let dated: Dated = serde_json::from_str(json)
        .map_err(|e| VerifyError::MalformedCollateral(format!("{item}: {e}")))?;
    let issued = unix_of(&dated.issue_date).ok_or_else(|| {
        VerifyError::MalformedCollateral(format!("{item}: bad issueDate {:?}", dated.issue_date))
    })?;
    let until = unix_of(&dated.next_update).ok_or_else(|| {
        VerifyError::MalformedCollateral(format!("{item}: bad nextUpdate {:?}", dated.next_update))
    })?;
    if now < issued {
        return Err(VerifyError::CollateralNotYetValid { item, issued, now });
    }
    if now > until {
        return Err(VerifyError::CollateralExpired { item, until, now });
    }
    Ok(())
}

fn check_crl(item: &'static str, der: &[u8], now: u64) -> Result<(), VerifyError> {
    let (_, crl) = x509_parser::parse_x509_crl(der)
        .map_err(|e| VerifyError::MalformedCollateral(format!("{item}: {e}")))?;
    let issued = u64::try_from(crl.last_update().timestamp()).unwrap_or(0);
    if now < issued {
        return Err(VerifyError::CollateralNotYetValid { item, issued, now });
    }
    if let Some(next) = crl.next_update() {
        let until = u64::try_from(next.timestamp()).unwrap_or(0);
        // As webpki: a CRL is stale from its nextUpdate second on.
        if now >= until {
            return Err(VerifyError::CollateralExpired { item, until, now });
        }
    }
    Ok(())
}

/// Does the quote's PCK chain end in the simulated TEE's root?
fn chain_is_simulated(quote: &Quote) -> Result<bool, VerifyError> {
    let chain = dcap_qvl::intel::extract_cert_chain(quote)
        .map_err(|e| VerifyError::Malformed(format!("PCK certificate chain: {e:#}")))?;
    for der in &chain {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| VerifyError::Malformed(format!("PCK certificate: {e}")))?;
        let issued_by_sim = cert
            .issuer()
            .iter_common_name()
            .any(|cn| cn.as_str() == Ok(SIM_ROOT_CN));
        if issued_by_sim {
            return Ok(true);
        }
    }
    Ok(false)
}

fn classify(err: anyhow::Error) -> VerifyError {
    let chain = format!("{err:#}");
    if chain.contains("TCB status is invalid: Revoked") {
        VerifyError::TcbRevoked
    } else if chain.contains("CertRevoked") {
        VerifyError::CertificateRevoked(chain)
    } else {
        VerifyError::Dcap(chain)
    }
}

fn hex48(b: &[u8; 48]) -> String {
    hex::encode(b)
}

impl Verifier {
    /// A verifier trusting Intel's SGX root CA only: what production uses.
    pub fn intel() -> Self {
        Self {
            root: Root::Intel,
            simulated_root: None,
        }
    }

    /// A verifier trusting the root certificate `root_der` (DER) instead of Intel's.
    pub fn with_root(root_der: Vec<u8>) -> Self {
        Self {
            root: Root::Der(root_der),
            simulated_root: None,
        }
    }

    /// Also accept quotes from the simulated TEE whose PKI has root `sim_root_der`.
    /// Results verified this way carry `simulated: true`.
    pub fn allow_simulated(mut self, sim_root_der: Vec<u8>) -> Self {
        self.simulated_root = Some(sim_root_der);
        self
    }

    /// Whether simulated quotes can verify at all.
    pub fn allows_simulated(&self) -> bool {
        self.simulated_root.is_some()
    }

    /// Verify `quote` with `collateral` at time `now` (UNIX seconds).
    pub fn verify(
        &self,
        quote: &[u8],
        collateral: &QuoteCollateralV3,
        now: u64,
    ) -> Result<VerifiedQuote, VerifyError> {
        let parsed = Quote::parse(quote).map_err(|e| VerifyError::Malformed(format!("{e:#}")))?;
        let simulated = chain_is_simulated(&parsed)?;
        let qvl = match (simulated, &self.simulated_root, &self.root) {
            (true, None, _) => return Err(VerifyError::SimulationRefused),
            (true, Some(sim), _) => QuoteVerifier::new(sim.clone()),
            (false, _, Root::Intel) => QuoteVerifier::new_prod(),
            (false, _, Root::Der(der)) => QuoteVerifier::new(der.clone()),
        };
        check_window("TCB info", &collateral.tcb_info, now)?;
        check_window("QE identity", &collateral.qe_identity, now)?;
        check_crl("root CA CRL", &collateral.root_ca_crl, now)?;
        check_crl("PCK CRL", &collateral.pck_crl, now)?;

        // Debug is a policy decision here (its own error in `Policy`), so dcap-qvl may pass it.
        let claims = qvl
            .allow_debug(true)
            .verify_with_policy(quote, collateral.clone(), now, &NoDcapPolicy)
            .map_err(classify)?;
        if claims.earliest_expiration_date < now {
            return Err(VerifyError::CollateralExpired {
                item: "CRL or certificate",
                until: claims.earliest_expiration_date,
                now,
            });
        }
        let tee = if claims.tee_type == 0x81 {
            TeeKind::Tdx
        } else {
            TeeKind::Sgx
        };
        let (measurements, report_data, debug) = match &claims.report {
            Report::SgxEnclave(r) => (
                Measurements::Sgx {
                    mrenclave: hex::encode(r.mr_enclave),
                    mrsigner: hex::encode(r.mr_signer),
                    isv_prod_id: r.isv_prod_id,
                    isv_svn: r.isv_svn,
                },
                r.report_data,
                r.attributes[0] & 0x02 != 0,
            ),
            other => {
                let Some(td) = other.as_td10() else {
                    return Err(VerifyError::Malformed("unknown report body".into()));
                };
                (
                    Measurements::Tdx {
                        mrtd: hex48(&td.mr_td),
                        rtmr: [
                            hex48(&td.rt_mr0),
                            hex48(&td.rt_mr1),
                            hex48(&td.rt_mr2),
                            hex48(&td.rt_mr3),
                        ],
                    },
                    td.report_data,
                    td.td_attributes[0] & 0x01 != 0,
                )
            }
        };
        Ok(VerifiedQuote {
            tee,
            quote_version: claims.header.version,
            status: claims.tcb.status.to_string(),
            advisories: claims.tcb.advisory_ids.clone(),
            measurements,
            report_data: hex::encode(report_data),
            debug,
            simulated,
            fmspc: hex::encode(claims.platform.pck.fmspc),
            collateral_expires: claims.earliest_expiration_date,
        })
    }
}

/// Read collateral from dcap-qvl's JSON form (hex strings for binary fields).
pub fn collateral_from_json(json: &str) -> Result<QuoteCollateralV3, VerifyError> {
    serde_json::from_str(json).map_err(|e| VerifyError::MalformedCollateral(e.to_string()))
}

/// Write collateral in dcap-qvl's JSON form.
pub fn collateral_to_json(collateral: &QuoteCollateralV3) -> Result<String, VerifyError> {
    serde_json::to_string_pretty(collateral)
        .map_err(|e| VerifyError::MalformedCollateral(e.to_string()))
}
