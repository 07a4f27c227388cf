//! The **simulated TEE**: real-format DCAP quotes signed by a test PKI.
//!
//! [`SimPki`] is a complete stand-in for Intel's provisioning PKI: a root CA, a PCK Processor
//! CA, a PCK certificate carrying the Intel SGX extension (PPID, TCB, PCE-ID, FMSPC, SGX type),
//! a TCB signing certificate, both CRLs, and signed TCB info and QE identity documents.
//! [`SimulatedTee`] uses it to emit SGX v3 and TDX v4/v5 quotes laid out byte for byte as
//! Intel's quoting enclaves lay them out, so unmodified `dcap-qvl` verifies them when it is
//! given [`SimPki::root_der`] as its root.
//!
//! A simulated quote proves nothing about hardware: the PKI's keys are derived from a seed,
//! and the [well-known seed](WELL_KNOWN_SEED) is public. Every name in the PKI says
//! SIMULATED, [`crate::quote::Verifier`] refuses the simulated root unless it is explicitly
//! allowed, and every verified result carries `simulated: true`.

use dcap_qvl::QuoteCollateralV3;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePrivateKey;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::source::{QuoteSource, SourceError, TeeKind};

/// The seed of the PKI every simulated node of a deployment shares unless configured otherwise.
/// It is public on purpose: a simulated quote must never be mistaken for a secure one.
pub const WELL_KNOWN_SEED: &[u8] = b"tessera simulated TEE PKI v1 -- PUBLIC SEED, NO SECURITY";

/// Subject common name of the simulated root CA; verifiers recognise simulated chains by it.
pub const SIM_ROOT_CN: &str = "Tessera SIMULATED SGX Root CA (no hardware security)";

/// Intel's QE vendor id, which dcap-qvl requires in every quote header.
const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// OID arc of Intel's SGX extension (1.2.840.113741.1.13.1).
const SGX_EXT: [u64; 8] = [1, 2, 840, 113741, 1, 13, 1, 0];
/// The simulated platform's CPUSVN (one byte per SGX TCB component).
const CPU_SVN: [u8; 16] = [11, 11, 2, 2, 255, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0];
/// The simulated platform's TEE TCB SVN (TDX module 1.0 layout: byte 1 is zero).
const TEE_TCB_SVN: [u8; 16] = [5, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const PCE_SVN: u16 = 13;
const QE_SVN: u16 = 8;
const FMSPC: [u8; 6] = [0x54, 0x53, 0x53, 0x49, 0x4d, 0x00]; // "TSSIM\0"
/// Certificates are valid over a fixed window so that every process deriving the PKI from the
/// same seed builds equivalent certificates.
const CERT_NOT_BEFORE: i64 = 1_704_067_200; // 2024-01-01
const CERT_NOT_AFTER: i64 = 2_524_607_999; // 2049-12-31

/// Why the simulated PKI could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Certificate or CRL generation failed.
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    /// A key could not be encoded.
    #[error("key encoding: {0}")]
    Key(String),
    /// A time is outside what the formats can express.
    #[error("time {0} cannot be represented")]
    Time(i64),
    /// Options that cannot make a valid quote.
    #[error("{0}")]
    Options(String),
}

/// When the simulated collateral (TCB info, QE identity, CRLs) was issued and when it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CollateralWindow {
    /// UNIX seconds of `issueDate` / `thisUpdate`.
    pub issued: i64,
    /// UNIX seconds of `nextUpdate`.
    pub next_update: i64,
}

impl CollateralWindow {
    /// A window of `days` days starting one hour before `now`.
    pub fn around(now: u64, days: i64) -> Self {
        let now = i64::try_from(now).unwrap_or(i64::MAX / 2);
        Self {
            issued: now - 3600,
            next_update: now + days * 86_400,
        }
    }
}

/// A test PKI in Intel's shape. Keys are derived from a seed, so every process with the same
/// seed trusts the same root.
pub struct SimPki {
    root_key: KeyPair,
    root_cert: rcgen::Certificate,
    pck_ca_key: KeyPair,
    pck_ca_cert: rcgen::Certificate,
    pck_leaf_key: SigningKey,
    pck_leaf_cert: rcgen::Certificate,
    tcb_key: SigningKey,
    tcb_cert: rcgen::Certificate,
    attestation_key: SigningKey,
    qe_mrsigner: [u8; 32],
}

impl std::fmt::Debug for SimPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPki").finish_non_exhaustive()
    }
}

fn derive_key(seed: &[u8], label: &str) -> Result<SigningKey, SimError> {
    for counter in 0u32..16 {
        let digest = Sha256::new()
            .chain_update(b"tessera/sim-pki/key/v1")
            .chain_update((seed.len() as u64).to_be_bytes())
            .chain_update(seed)
            .chain_update(label.as_bytes())
            .chain_update(counter.to_be_bytes())
            .finalize();
        if let Ok(key) = SigningKey::from_slice(&digest) {
            return Ok(key);
        }
    }
    Err(SimError::Key(format!("no valid scalar for {label}")))
}

fn rcgen_key(key: &SigningKey) -> Result<KeyPair, SimError> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| SimError::Key(e.to_string()))?;
    KeyPair::try_from(der.as_bytes()).map_err(SimError::from)
}

fn datetime(unix: i64) -> Result<OffsetDateTime, SimError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|_| SimError::Time(unix))
}

fn rfc3339(unix: i64) -> Result<String, SimError> {
    let t = datetime(unix)?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(
        DnType::OrganizationName,
        "Tessera simulated TEE (no hardware security)",
    );
    dn
}

fn params(cn: &str, serial: u8, ca: Option<u8>) -> Result<CertificateParams, SimError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = name(cn);
    p.serial_number = Some(SerialNumber::from(vec![serial]));
    p.not_before = datetime(CERT_NOT_BEFORE)?;
    p.not_after = datetime(CERT_NOT_AFTER)?;
    p.key_identifier_method = KeyIdMethod::Sha256;
    match ca {
        Some(depth) => {
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(depth));
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        }
        None => {
            p.is_ca = IsCa::NoCa;
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ];
        }
    }
    Ok(p)
}

/// DER of Intel's SGX extension for the simulated platform (the layout dcap-qvl and Intel's
/// QVL read: PPID, TCB with 16 component SVNs, PCESVN and CPUSVN, PCE-ID, FMSPC, SGX type).
fn sgx_extension(ppid: &[u8; 16]) -> Vec<u8> {
    let oid = |last: u64| {
        yasna::models::ObjectIdentifier::from_slice(&[1, 2, 840, 113741, 1, 13, 1, last])
    };
    let tcb_oid = |last: u64| {
        yasna::models::ObjectIdentifier::from_slice(&[1, 2, 840, 113741, 1, 13, 1, 2, last])
    };
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(1));
                w.next().write_bytes(ppid);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(2));
                w.next().write_sequence(|w| {
                    for (i, svn) in CPU_SVN.iter().enumerate() {
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&tcb_oid(i as u64 + 1));
                            w.next().write_u8(*svn);
                        });
                    }
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&tcb_oid(17));
                        w.next().write_u16(PCE_SVN);
                    });
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&tcb_oid(18));
                        w.next().write_bytes(&CPU_SVN);
                    });
                });
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(3));
                w.next().write_bytes(&[0, 0]);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(4));
                w.next().write_bytes(&FMSPC);
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(5));
                w.next().write_enum(0);
            });
        });
    })
}

impl SimPki {
    /// The PKI derived from `seed`.
    pub fn from_seed(seed: &[u8]) -> Result<Self, SimError> {
        let root_signing = derive_key(seed, "root")?;
        let root_key = rcgen_key(&root_signing)?;
        let root_cert = params(SIM_ROOT_CN, 1, Some(1))?.self_signed(&root_key)?;

        let pck_ca_key = rcgen_key(&derive_key(seed, "pck-ca")?)?;
        let pck_ca_cert = params("Tessera SIMULATED SGX PCK Processor CA", 2, Some(0))?.signed_by(
            &pck_ca_key,
            &root_cert,
            &root_key,
        )?;

        let pck_leaf_key = derive_key(seed, "pck-leaf")?;
        let mut leaf = params("Tessera SIMULATED SGX PCK Certificate", 3, None)?;
        let ppid: [u8; 16] = Sha256::digest([seed, b"ppid"].concat())[..16]
            .try_into()
            .map_err(|_| SimError::Key("ppid".into()))?;
        leaf.custom_extensions = vec![CustomExtension::from_oid_content(
            &SGX_EXT[..7],
            sgx_extension(&ppid),
        )];
        let pck_leaf_cert =
            leaf.signed_by(&rcgen_key(&pck_leaf_key)?, &pck_ca_cert, &pck_ca_key)?;

        let tcb_key = derive_key(seed, "tcb-signing")?;
        let tcb_cert = params("Tessera SIMULATED SGX TCB Signing", 4, None)?.signed_by(
            &rcgen_key(&tcb_key)?,
            &root_cert,
            &root_key,
        )?;

        let attestation_key = derive_key(seed, "qe-attestation-key")?;
        let qe_mrsigner: [u8; 32] = Sha256::digest([seed, b"qe-mrsigner"].concat()).into();
        Ok(Self {
            root_key,
            root_cert,
            pck_ca_key,
            pck_ca_cert,
            pck_leaf_key,
            pck_leaf_cert,
            tcb_key,
            tcb_cert,
            attestation_key,
            qe_mrsigner,
        })
    }

    /// The PKI from [`WELL_KNOWN_SEED`], shared by all simulated nodes of a deployment.
    pub fn well_known() -> Result<Self, SimError> {
        Self::from_seed(WELL_KNOWN_SEED)
    }

    /// DER of the root CA certificate: the root a verifier needs for simulated quotes.
    pub fn root_der(&self) -> Vec<u8> {
        self.root_cert.der().to_vec()
    }

    /// The certificate serial of the PCK leaf (what a CRL names to revoke the platform).
    pub fn pck_leaf_serial() -> u8 {
        3
    }

    fn pck_chain_pem(&self) -> String {
        [&self.pck_leaf_cert, &self.pck_ca_cert, &self.root_cert]
            .iter()
            .map(|c| c.pem())
            .collect()
    }

    fn sign_json(&self, value: &serde_json::Value) -> (String, Vec<u8>) {
        let text = value.to_string();
        let signature: Signature = self.tcb_key.sign(text.as_bytes());
        (text, signature.to_bytes().to_vec())
    }

    /// Collateral in dcap-qvl's `QuoteCollateralV3` form for the simulated platform.
    pub fn collateral(
        &self,
        tee: TeeKind,
        platform: &PlatformStatus,
        window: CollateralWindow,
    ) -> Result<QuoteCollateralV3, SimError> {
        let issue = rfc3339(window.issued)?;
        let next = rfc3339(window.next_update)?;
        let svns = |bytes: &[u8]| -> Vec<serde_json::Value> {
            bytes.iter().map(|s| json!({ "svn": s })).collect()
        };
        let mut tcb = json!({ "sgxtcbcomponents": svns(&CPU_SVN), "pcesvn": PCE_SVN });
        if tee == TeeKind::Tdx {
            tcb["tdxtcbcomponents"] = svns(&TEE_TCB_SVN).into();
        }
        let mut tcb_info = json!({
            "id": if tee == TeeKind::Tdx { "TDX" } else { "SGX" },
            "version": 3,
            "issueDate": issue,
            "nextUpdate": next,
            "fmspc": hex::encode_upper(FMSPC),
            "pceId": "0000",
            "tcbType": 0,
            "tcbEvaluationDataNumber": 17,
            "tcbLevels": [{
                "tcb": tcb,
                "tcbDate": "2024-03-13T00:00:00Z",
                "tcbStatus": platform.status,
                "advisoryIDs": platform.advisories,
            }],
        });
        if tee == TeeKind::Tdx {
            tcb_info["tdxModule"] = json!({
                "mrsigner": hex::encode_upper([0u8; 48]),
                "attributes": "0000000000000000",
                "attributesMask": "FFFFFFFFFFFFFFFF",
            });
            tcb_info["tdxModuleIdentities"] = json!([]);
        }
        let (qe_id, prod_id) = qe_identity_of(tee);
        let qe_identity = json!({
            "id": qe_id,
            "version": 2,
            "issueDate": issue,
            "nextUpdate": next,
            "tcbEvaluationDataNumber": 17,
            "miscselect": "00000000",
            "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": hex::encode_upper(self.qe_mrsigner),
            "isvprodid": prod_id,
            "tcbLevels": [{ "tcb": { "isvsvn": QE_SVN }, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate" }],
        });
        let (tcb_info, tcb_info_signature) = self.sign_json(&tcb_info);
        let (qe_identity, qe_identity_signature) = self.sign_json(&qe_identity);

        let (this_update, next_update) = (datetime(window.issued)?, datetime(window.next_update)?);
        let crl = |revoked: Vec<RevokedCertParams>| CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(vec![1]),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let root_ca_crl = crl(vec![]).signed_by(&self.root_cert, &self.root_key)?;
        let revoked = if platform.pck_revoked {
            vec![RevokedCertParams {
                serial_number: SerialNumber::from(vec![Self::pck_leaf_serial()]),
                revocation_time: this_update,
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }]
        } else {
            vec![]
        };
        let pck_crl = crl(revoked).signed_by(&self.pck_ca_cert, &self.pck_ca_key)?;

        let tcb_chain = format!("{}{}", self.tcb_cert.pem(), self.root_cert.pem());
        Ok(QuoteCollateralV3 {
            pck_crl_issuer_chain: format!("{}{}", self.pck_ca_cert.pem(), self.root_cert.pem()),
            root_ca_crl: root_ca_crl.der().to_vec(),
            pck_crl: pck_crl.der().to_vec(),
            tcb_info_issuer_chain: tcb_chain.clone(),
            tcb_info,
            tcb_info_signature,
            qe_identity_issuer_chain: tcb_chain,
            qe_identity,
            qe_identity_signature,
            pck_certificate_chain: None,
        })
    }

    /// The quoting enclave's signed report and certification data, binding `attestation_key`.
    fn qe_certification(&self, tee: TeeKind) -> Vec<u8> {
        let att_pub = self.attestation_pub();
        let qe_auth_data = [0u8; 32];
        let mut report = SgxReport {
            cpu_svn: CPU_SVN,
            attributes: [0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            mr_enclave: Sha256::digest(b"tessera simulated quoting enclave").into(),
            mr_signer: self.qe_mrsigner,
            isv_prod_id: qe_identity_of(tee).1,
            isv_svn: QE_SVN,
            report_data: [0; 64],
        };
        let hash: [u8; 32] = Sha256::new()
            .chain_update(att_pub)
            .chain_update(qe_auth_data)
            .finalize()
            .into();
        report.report_data[..32].copy_from_slice(&hash);
        let report = report.encode();
        let report_sig: Signature = self.pck_leaf_key.sign(&report);

        let mut out = Vec::with_capacity(2048);
        out.extend_from_slice(&report);
        out.extend_from_slice(&report_sig.to_bytes());
        out.extend_from_slice(&(qe_auth_data.len() as u16).to_le_bytes());
        out.extend_from_slice(&qe_auth_data);
        let chain = self.pck_chain_pem();
        out.extend_from_slice(&5u16.to_le_bytes());
        out.extend_from_slice(&(chain.len() as u32).to_le_bytes());
        out.extend_from_slice(chain.as_bytes());
        out
    }

    fn attestation_pub(&self) -> [u8; 64] {
        let point = self.attestation_key.verifying_key().to_encoded_point(false);
        let mut out = [0u8; 64];
        out.copy_from_slice(&point.as_bytes()[1..65]);
        out
    }

    /// A quote over `body`: header, (v5 body descriptor), report body, and the ECDSA signature
    /// data with the QE's certification data, in Intel's layout for `version`.
    pub fn quote(&self, body: &ReportBody, version: u16) -> Result<Vec<u8>, SimError> {
        let (tee, tee_type, body_bytes, body_type) = match body {
            ReportBody::Sgx(r) => (TeeKind::Sgx, 0u32, r.encode(), 1u16),
            ReportBody::Td10(r) => (TeeKind::Tdx, 0x81, r.encode(), 2),
            ReportBody::Td15(r) => (TeeKind::Tdx, 0x81, r.encode(), 3),
        };
        match (tee, version, body_type) {
            (TeeKind::Sgx, 3, _) | (TeeKind::Tdx, 4, 2) | (TeeKind::Tdx, 5, 2 | 3) => {}
            _ => {
                return Err(SimError::Options(format!(
                    "a {tee} quote of version {version} cannot carry this report body"
                )))
            }
        }
        let mut quote = Vec::with_capacity(8192);
        quote.extend_from_slice(&version.to_le_bytes());
        quote.extend_from_slice(&2u16.to_le_bytes()); // ECDSA-256 with P-256
        quote.extend_from_slice(&tee_type.to_le_bytes());
        quote.extend_from_slice(&QE_SVN.to_le_bytes());
        quote.extend_from_slice(&PCE_SVN.to_le_bytes());
        quote.extend_from_slice(&INTEL_QE_VENDOR_ID);
        quote.extend_from_slice(&[0u8; 20]);
        if version == 5 {
            quote.extend_from_slice(&body_type.to_le_bytes());
            quote.extend_from_slice(&(body_bytes.len() as u32).to_le_bytes());
        }
        quote.extend_from_slice(&body_bytes);
        let signature: Signature = self.attestation_key.sign(&quote);

        let qe_cert = self.qe_certification(tee);
        let mut sig_data = Vec::with_capacity(qe_cert.len() + 256);
        sig_data.extend_from_slice(&signature.to_bytes());
        sig_data.extend_from_slice(&self.attestation_pub());
        if version == 3 {
            sig_data.extend_from_slice(&qe_cert);
        } else {
            sig_data.extend_from_slice(&6u16.to_le_bytes());
            sig_data.extend_from_slice(&(qe_cert.len() as u32).to_le_bytes());
            sig_data.extend_from_slice(&qe_cert);
        }
        quote.extend_from_slice(&(sig_data.len() as u32).to_le_bytes());
        quote.extend_from_slice(&sig_data);
        Ok(quote)
    }
}

fn qe_identity_of(tee: TeeKind) -> (&'static str, u16) {
    match tee {
        TeeKind::Sgx => ("QE", 1),
        TeeKind::Tdx => ("TD_QE", 2),
    }
}

/// The TCB status the simulated TCB info gives the platform, its advisories, and whether the
/// PCK CRL revokes the platform's PCK certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformStatus {
    /// A TCB status name as Intel writes it (`UpToDate`, `SWHardeningNeeded`, `Revoked`, …).
    pub status: String,
    /// Advisory ids for the level (e.g. `INTEL-SA-00615`).
    pub advisories: Vec<String>,
    /// Put the PCK certificate on the PCK CRL.
    pub pck_revoked: bool,
}

impl Default for PlatformStatus {
    fn default() -> Self {
        Self {
            status: "UpToDate".into(),
            advisories: vec![],
            pck_revoked: false,
        }
    }
}

/// An SGX enclave report body (384 bytes on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SgxReport {
    /// CPU security version.
    pub cpu_svn: [u8; 16],
    /// ATTRIBUTES (flags then XFRM); bit 1 of byte 0 is DEBUG.
    pub attributes: [u8; 16],
    /// MRENCLAVE.
    pub mr_enclave: [u8; 32],
    /// MRSIGNER.
    pub mr_signer: [u8; 32],
    /// ISVPRODID.
    pub isv_prod_id: u16,
    /// ISVSVN.
    pub isv_svn: u16,
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

impl SgxReport {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        out.extend_from_slice(&self.cpu_svn);
        out.extend_from_slice(&0u32.to_le_bytes()); // MISCSELECT
        out.extend_from_slice(&[0u8; 28]);
        out.extend_from_slice(&self.attributes);
        out.extend_from_slice(&self.mr_enclave);
        out.extend_from_slice(&[0u8; 32]);
        out.extend_from_slice(&self.mr_signer);
        out.extend_from_slice(&[0u8; 96]);
        out.extend_from_slice(&self.isv_prod_id.to_le_bytes());
        out.extend_from_slice(&self.isv_svn.to_le_bytes());
        out.extend_from_slice(&[0u8; 60]);
        out.extend_from_slice(&self.report_data);
        out
    }
}

/// A TDX 1.0 TD report body (584 bytes on the wire).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdReport {
    /// TD attributes; bit 0 is DEBUG, bit 28 SEPT_VE_DISABLE.
    pub td_attributes: u64,
    /// MRTD: the initial contents of the TD.
    pub mr_td: [u8; 48],
    /// RTMR0–3: runtime measurement registers.
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

impl TdReport {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(648);
        out.extend_from_slice(&TEE_TCB_SVN);
        out.extend_from_slice(&[0u8; 48]); // MRSEAM
        out.extend_from_slice(&[0u8; 48]); // MRSIGNERSEAM (Intel's module: zero)
        out.extend_from_slice(&[0u8; 8]); // SEAMATTRIBUTES
        out.extend_from_slice(&self.td_attributes.to_le_bytes());
        out.extend_from_slice(&0xe7u64.to_le_bytes()); // XFAM
        out.extend_from_slice(&self.mr_td);
        out.extend_from_slice(&[0u8; 48 * 3]); // MRCONFIGID, MROWNER, MROWNERCONFIG
        for r in &self.rtmr {
            out.extend_from_slice(r);
        }
        out.extend_from_slice(&self.report_data);
        out
    }
}

/// A TDX 1.5 TD report body (648 bytes: the 1.0 body, TEE_TCB_SVN2, MRSERVICETD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Td15Report(pub TdReport);

impl Td15Report {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.0.encode();
        out.extend_from_slice(&TEE_TCB_SVN);
        out.extend_from_slice(&[0u8; 48]);
        out
    }
}

/// The report body a simulated quote carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportBody {
    /// SGX enclave report (quote v3).
    Sgx(SgxReport),
    /// TDX 1.0 TD report (quote v4, or v5 body type 2).
    Td10(TdReport),
    /// TDX 1.5 TD report (quote v5 body type 3).
    Td15(Td15Report),
}

/// Identity of the simulated workload: what its quotes measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimIdentity {
    /// An SGX enclave.
    Sgx {
        /// MRENCLAVE.
        mr_enclave: [u8; 32],
        /// MRSIGNER.
        mr_signer: [u8; 32],
        /// ISVPRODID.
        isv_prod_id: u16,
        /// ISVSVN.
        isv_svn: u16,
    },
    /// A TDX trust domain.
    Tdx {
        /// Quote version: 4, or 5 (with a TD 1.5 body).
        version: u16,
        /// MRTD.
        mr_td: [u8; 48],
        /// RTMR0–3.
        rtmr: [[u8; 48]; 4],
    },
}

impl SimIdentity {
    /// The fixed identity a simulated Tessera notary node reports. There is no enclave to
    /// measure, so the values are hashes of fixed labels; `configs/measurements.simulated.toml`
    /// allowlists them (as `simulated = true` entries).
    pub fn notary_node(tee: TeeKind) -> Self {
        match tee {
            TeeKind::Sgx => SimIdentity::Sgx {
                mr_enclave: Sha256::digest(b"tessera/sim/notary-node/mrenclave/v1").into(),
                mr_signer: Sha256::digest(b"tessera/sim/notary-node/mrsigner/v1").into(),
                isv_prod_id: 1,
                isv_svn: 1,
            },
            TeeKind::Tdx => {
                let h = |label: &[u8]| -> [u8; 48] { sha2::Sha384::digest(label).into() };
                SimIdentity::Tdx {
                    version: 4,
                    mr_td: h(b"tessera/sim/notary-node/mrtd/v1"),
                    rtmr: [
                        h(b"tessera/sim/notary-node/rtmr0/v1"),
                        h(b"tessera/sim/notary-node/rtmr1/v1"),
                        h(b"tessera/sim/notary-node/rtmr2/v1"),
                        h(b"tessera/sim/notary-node/rtmr3/v1"),
                    ],
                }
            }
        }
    }
}

/// A [`QuoteSource`] with no hardware behind it: quotes are signed by a [`SimPki`].
/// Its label and every verification result say SIMULATED.
pub struct SimulatedTee {
    pki: SimPki,
    identity: SimIdentity,
    debug: bool,
}

impl std::fmt::Debug for SimulatedTee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedTee")
            .field("identity", &self.identity)
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

impl SimulatedTee {
    /// A simulated TEE with the given PKI and identity. Its reports are not debug.
    pub fn new(pki: SimPki, identity: SimIdentity) -> Self {
        Self {
            pki,
            identity,
            debug: false,
        }
    }

    /// Mark the simulated enclave / TD as a debug one (for tests of the debug policy).
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// The PKI that signs this TEE's quotes.
    pub fn pki(&self) -> &SimPki {
        &self.pki
    }

    /// Collateral for this TEE's quotes with the given platform status and validity window.
    pub fn collateral(
        &self,
        platform: &PlatformStatus,
        window: CollateralWindow,
    ) -> Result<QuoteCollateralV3, SimError> {
        self.pki.collateral(self.tee(), platform, window)
    }

    /// A quote over `report_data`.
    pub fn make_quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SimError> {
        match &self.identity {
            SimIdentity::Sgx {
                mr_enclave,
                mr_signer,
                isv_prod_id,
                isv_svn,
            } => {
                // INIT | MODE64BIT, plus DEBUG when asked; XFRM x87|SSE|AVX.
                let flags = if self.debug { 0x07 } else { 0x05 };
                let mut attributes = [0u8; 16];
                attributes[0] = flags;
                attributes[8] = 0xe7;
                let body = ReportBody::Sgx(SgxReport {
                    cpu_svn: CPU_SVN,
                    attributes,
                    mr_enclave: *mr_enclave,
                    mr_signer: *mr_signer,
                    isv_prod_id: *isv_prod_id,
                    isv_svn: *isv_svn,
                    report_data: *report_data,
                });
                self.pki.quote(&body, 3)
            }
            SimIdentity::Tdx {
                version,
                mr_td,
                rtmr,
            } => {
                let td = TdReport {
                    td_attributes: (1 << 28) | u64::from(self.debug),
                    mr_td: *mr_td,
                    rtmr: *rtmr,
                    report_data: *report_data,
                };
                let body = if *version == 5 {
                    ReportBody::Td15(Td15Report(td))
                } else {
                    ReportBody::Td10(td)
                };
                self.pki.quote(&body, *version)
            }
        }
    }
}

impl QuoteSource for SimulatedTee {
    fn tee(&self) -> TeeKind {
        match self.identity {
            SimIdentity::Sgx { .. } => TeeKind::Sgx,
            SimIdentity::Tdx { .. } => TeeKind::Tdx,
        }
    }
    fn is_simulated(&self) -> bool {
        true
    }
    fn label(&self) -> String {
        format!("SIMULATED {} (no hardware security)", self.tee())
    }
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, SourceError> {
        tracing::warn!(
            tee = %self.tee(),
            "SIMULATED TEE: issuing a quote signed by the test PKI (no hardware security)"
        );
        self.make_quote(report_data)
            .map_err(|e| SourceError::Simulation(e.to_string()))
    }
}
