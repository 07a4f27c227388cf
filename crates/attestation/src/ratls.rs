//! RA-TLS: TLS certificates that carry a node's attestation, and rustls verifiers that accept
//! only attested peers.
//!
//! A node's certificate is self-signed with a fresh P-256 key and carries one extension
//! ([`EVIDENCE_OID`]) holding its node id, the notary-set epoch, its DCAP quote and the quote's
//! collateral. The quote's REPORTDATA is [`report_data_for`]: a domain-separated SHA-512 over
//! the certificate's SubjectPublicKeyInfo, the node id and the epoch, so the quote vouches for
//! exactly this key, node and epoch. The TLS handshake then proves the peer holds the key.
//!
//! [`RaTlsVerifier::verify_cert`] is the whole check as a pure function of the certificate
//! and `now`; [`RaTlsServerVerifier`] and [`RaTlsClientVerifier`] wrap it for rustls (and so for
//! quinn, which takes rustls configurations).

use std::sync::Arc;

use dcap_qvl::QuoteCollateralV3;
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::DistinguishedName;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::policy::{Policy, PolicyError};
use crate::quote::{VerifiedQuote, Verifier, VerifyError};
use crate::source::{QuoteSource, SourceError};

/// OID of the Tessera attestation-evidence extension. It sits in the IANA "experimental"
/// arc (1.3.6.1.3, RFC 1155) until Tessera has a registered enterprise number.
pub const EVIDENCE_OID: [u64; 7] = [1, 3, 6, 1, 3, 7_341, 1];
/// Version of the evidence encoding inside the extension.
const EVIDENCE_VERSION: u64 = 1;
/// ALPN protocol name spoken between Tessera nodes, coordinator and clients.
pub const ALPN: &[u8] = b"tessera/1";
/// Longest node id accepted (bytes).
pub const MAX_NODE_ID: usize = 64;

/// Why an RA-TLS certificate could not be made or was refused. Each variant is one check.
#[derive(Debug, thiserror::Error)]
pub enum RaTlsError {
    /// The certificate is not parseable X.509.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// The certificate has no Tessera evidence extension.
    #[error("certificate carries no attestation evidence (extension {oid})")]
    NoEvidence {
        /// The extension OID looked for.
        oid: String,
    },
    /// The evidence extension cannot be decoded.
    #[error("malformed attestation evidence: {0}")]
    MalformedEvidence(String),
    /// The certificate is outside its validity period.
    #[error("certificate not valid at {now}: valid from {not_before} to {not_after} (UNIX)")]
    CertificateExpired {
        /// notBefore.
        not_before: i64,
        /// notAfter.
        not_after: i64,
        /// The verification time.
        now: u64,
    },
    /// The quote did not verify (the inner error names the DCAP check).
    #[error("quote: {0}")]
    Quote(#[from] VerifyError),
    /// REPORTDATA does not bind this certificate's key, node id and epoch.
    #[error("wrong binding: the quote's REPORTDATA does not commit to this certificate's key, node id {node_id:?} and epoch {epoch}")]
    WrongBinding {
        /// The node id the certificate claims.
        node_id: String,
        /// The epoch the certificate claims.
        epoch: u64,
    },
    /// The peer is attested but is not the node expected.
    #[error("wrong node: expected {expected:?}, the certificate is for {found:?}")]
    WrongNode {
        /// Expected node id.
        expected: String,
        /// Node id in the certificate.
        found: String,
    },
    /// The peer is attested for another notary-set epoch.
    #[error("wrong epoch: expected {expected}, the certificate is for epoch {found}")]
    WrongEpoch {
        /// Expected epoch.
        expected: u64,
        /// Epoch in the certificate.
        found: u64,
    },
    /// The verified quote fails the attestation policy (measurement, debug, status, advisory).
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    /// The node id is empty, too long or not printable ASCII.
    #[error("invalid node id {0:?}: 1–64 printable ASCII characters")]
    InvalidNodeId(String),
    /// The quote source failed.
    #[error("quote source: {0}")]
    Source(#[from] SourceError),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(String),
}

/// What a node's certificate says about it, decoded from the extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// The node's id in the notary set.
    pub node_id: String,
    /// The notary-set epoch the certificate is for.
    pub epoch: u64,
    /// The quote came from the simulated TEE (as the node claims; verification decides).
    pub simulated: bool,
    /// The DCAP quote.
    pub quote: Vec<u8>,
    /// The quote's collateral.
    pub collateral: QuoteCollateralV3,
}

impl Evidence {
    fn encode(&self) -> Result<Vec<u8>, RaTlsError> {
        let collateral = serde_json::to_vec(&self.collateral)
            .map_err(|e| RaTlsError::Generate(format!("collateral: {e}")))?;
        Ok(yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_u64(EVIDENCE_VERSION);
                w.next().write_utf8_string(&self.node_id);
                w.next().write_u64(self.epoch);
                w.next().write_bool(self.simulated);
                w.next().write_bytes(&self.quote);
                w.next().write_bytes(&collateral);
            })
        }))
    }

    fn decode(der: &[u8]) -> Result<Self, RaTlsError> {
        let (version, node_id, epoch, simulated, quote, collateral) = yasna::parse_der(der, |r| {
            r.read_sequence(|r| {
                Ok((
                    r.next().read_u64()?,
                    r.next().read_utf8string()?,
                    r.next().read_u64()?,
                    r.next().read_bool()?,
                    r.next().read_bytes()?,
                    r.next().read_bytes()?,
                ))
            })
        })
        .map_err(|e| RaTlsError::MalformedEvidence(e.to_string()))?;
        if version != EVIDENCE_VERSION {
            return Err(RaTlsError::MalformedEvidence(format!(
                "version {version}, expected {EVIDENCE_VERSION}"
            )));
        }
        check_node_id(&node_id)?;
        let collateral = serde_json::from_slice(&collateral)
            .map_err(|e| RaTlsError::MalformedEvidence(format!("collateral: {e}")))?;
        Ok(Self {
            node_id,
            epoch,
            simulated,
            quote,
            collateral,
        })
    }
}

fn check_node_id(id: &str) -> Result<(), RaTlsError> {
    let ok = !id.is_empty() && id.len() <= MAX_NODE_ID && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(RaTlsError::InvalidNodeId(id.chars().take(80).collect()))
    }
}

/// REPORTDATA for a certificate key (`spki_der`: the DER SubjectPublicKeyInfo), a node id and an
/// epoch: SHA-512 over a domain separator and the length-prefixed fields.
pub fn report_data_for(spki_der: &[u8], node_id: &str, epoch: u64) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(b"tessera/ra-tls/report-data/v1\0");
    h.update((spki_der.len() as u64).to_be_bytes());
    h.update(spki_der);
    h.update((node_id.len() as u64).to_be_bytes());
    h.update(node_id.as_bytes());
    h.update(epoch.to_be_bytes());
    h.finalize().into()
}

/// A node's RA-TLS certificate and private key.
pub struct RaTlsIdentity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    /// The evidence inside the certificate.
    pub evidence: Evidence,
}

impl std::fmt::Debug for RaTlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaTlsIdentity")
            .field("node_id", &self.evidence.node_id)
            .field("epoch", &self.evidence.epoch)
            .field("simulated", &self.evidence.simulated)
            .finish_non_exhaustive()
    }
}

impl RaTlsIdentity {
    /// A fresh key, a quote from `source` binding it to `node_id` and `epoch`, and the
    /// self-signed certificate carrying both, valid from `not_before` to `not_after` (UNIX).
    pub fn generate(
        source: &dyn QuoteSource,
        collateral: QuoteCollateralV3,
        node_id: &str,
        epoch: u64,
        not_before: i64,
        not_after: i64,
    ) -> Result<Self, RaTlsError> {
        check_node_id(node_id)?;
        let gen = |e: rcgen::Error| RaTlsError::Generate(e.to_string());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen)?;
        let spki = key.public_key_der();
        let report_data = report_data_for(&spki, node_id, epoch);
        let quote = source.quote(&report_data)?;
        let evidence = Evidence {
            node_id: node_id.to_string(),
            epoch,
            simulated: source.is_simulated(),
            quote,
            collateral,
        };
        let mut params = rcgen::CertificateParams::default();
        let cn = if evidence.simulated {
            format!("tessera node {node_id} (SIMULATED TEE)")
        } else {
            format!("tessera node {node_id}")
        };
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let time = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .map_err(|_| RaTlsError::Generate(format!("time {t} out of range")))
        };
        params.not_before = time(not_before)?;
        params.not_after = time(not_after)?;
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &EVIDENCE_OID,
            evidence.encode()?,
        )];
        let cert = params.self_signed(&key).map_err(gen)?;
        Ok(Self {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            evidence,
        })
    }

    /// The certificate (DER).
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The private key, for a rustls configuration.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// What the caller requires of a peer beyond the policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectation {
    /// The peer must be this node.
    pub node_id: Option<String>,
    /// The peer must be attested for this epoch.
    pub epoch: Option<u64>,
}

/// A peer that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedPeer {
    /// Its node id.
    pub node_id: String,
    /// Its epoch.
    pub epoch: u64,
    /// The verified quote.
    pub verified: VerifiedQuote,
    /// The name of the policy's measurement entry it matched, if a policy was applied.
    pub measurement: Option<String>,
}

/// Checks RA-TLS certificates: quote, binding, expectation, policy.
#[derive(Clone, Debug)]
pub struct RaTlsVerifier {
    verifier: Verifier,
    policy: Option<Policy>,
    expect: Expectation,
}

fn asn1_unix(t: &x509_parser::time::ASN1Time) -> i64 {
    t.timestamp()
}

impl RaTlsVerifier {
    /// A verifier applying `policy` (required for anything that shares secrets with the peer).
    pub fn new(verifier: Verifier, policy: Policy, expect: Expectation) -> Self {
        Self {
            verifier,
            policy: Some(policy),
            expect,
        }
    }

    /// A verifier that checks the quote and the binding but applies no measurement policy —
    /// for auditors who want to see what a node runs. Never use it before sharing a secret.
    pub fn audit_only(verifier: Verifier) -> Self {
        Self {
            verifier,
            policy: None,
            expect: Expectation::default(),
        }
    }

    /// Decode the evidence of `cert_der` without verifying anything.
    pub fn evidence(cert_der: &[u8]) -> Result<Evidence, RaTlsError> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| RaTlsError::MalformedCertificate(e.to_string()))?;
        Self::evidence_of(&cert)
    }

    fn evidence_of(
        cert: &x509_parser::certificate::X509Certificate<'_>,
    ) -> Result<Evidence, RaTlsError> {
        let oid = EVIDENCE_OID
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".");
        let mut found = None;
        for ext in cert.extensions() {
            if ext.oid.to_id_string() == oid {
                if found.is_some() {
                    return Err(RaTlsError::MalformedEvidence(
                        "the evidence extension appears twice".into(),
                    ));
                }
                found = Some(ext.value);
            }
        }
        let value = found.ok_or(RaTlsError::NoEvidence { oid })?;
        Evidence::decode(value)
    }

    /// Every check on a peer certificate at time `now` (UNIX seconds).
    pub fn verify_cert(&self, cert_der: &[u8], now: u64) -> Result<AttestedPeer, RaTlsError> {
        let (rest, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| RaTlsError::MalformedCertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(RaTlsError::MalformedCertificate(
                "trailing bytes after the certificate".into(),
            ));
        }
        let validity = cert.validity();
        let (not_before, not_after) = (
            asn1_unix(&validity.not_before),
            asn1_unix(&validity.not_after),
        );
        let now_i = i64::try_from(now).unwrap_or(i64::MAX);
        if now_i < not_before || now_i > not_after {
            return Err(RaTlsError::CertificateExpired {
                not_before,
                not_after,
                now,
            });
        }
        let evidence = Self::evidence_of(&cert)?;
        let verified = self
            .verifier
            .verify(&evidence.quote, &evidence.collateral, now)?;
        let spki = cert.tbs_certificate.subject_pki.raw;
        let expected = report_data_for(spki, &evidence.node_id, evidence.epoch);
        let bound = verified
            .report_data_bytes()
            .is_some_and(|have| bool::from(expected.ct_eq(&have)));
        if !bound {
            return Err(RaTlsError::WrongBinding {
                node_id: evidence.node_id,
                epoch: evidence.epoch,
            });
        }
        if let Some(want) = &self.expect.node_id {
            if want != &evidence.node_id {
                return Err(RaTlsError::WrongNode {
                    expected: want.clone(),
                    found: evidence.node_id,
                });
            }
        }
        if let Some(want) = self.expect.epoch {
            if want != evidence.epoch {
                return Err(RaTlsError::WrongEpoch {
                    expected: want,
                    found: evidence.epoch,
                });
            }
        }
        let measurement = match &self.policy {
            Some(policy) => Some(policy.check(&verified)?.name.clone()),
            None => None,
        };
        Ok(AttestedPeer {
            node_id: evidence.node_id,
            epoch: evidence.epoch,
            verified,
            measurement,
        })
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn to_rustls(err: RaTlsError) -> rustls::Error {
    tracing::warn!(error = %err, "RA-TLS peer refused");
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(err),
    )))
}

/// The handshake-signature half of a rustls certificate verifier, for a struct with a
/// `provider: Arc<rustls::crypto::CryptoProvider>` field: the peer proves it holds its
/// certificate's key with the provider's algorithms. Shared by the RA-TLS verifiers here and
/// the network's own verifiers (`crates/wire`), whose crates must depend on `rustls`.
#[doc(hidden)]
#[macro_export]
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &::rustls::pki_types::CertificateDer<'_>,
            dss: &::rustls::DigitallySignedStruct,
        ) -> Result<::rustls::client::danger::HandshakeSignatureValid, ::rustls::Error> {
            ::rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &::rustls::pki_types::CertificateDer<'_>,
            dss: &::rustls::DigitallySignedStruct,
        ) -> Result<::rustls::client::danger::HandshakeSignatureValid, ::rustls::Error> {
            ::rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<::rustls::SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// The outcome of the last server certificate check: the attested peer, or why it was refused.
pub type Outcome = Result<AttestedPeer, String>;

/// rustls server-certificate verifier (client side of a connection) for RA-TLS peers.
#[derive(Debug)]
pub struct RaTlsServerVerifier {
    inner: RaTlsVerifier,
    provider: Arc<CryptoProvider>,
    last: std::sync::Mutex<Option<Outcome>>,
}

impl RaTlsServerVerifier {
    /// Wrap `inner` for rustls.
    pub fn new(inner: RaTlsVerifier) -> Arc<Self> {
        Arc::new(Self {
            inner,
            provider: provider(),
            last: std::sync::Mutex::new(None),
        })
    }

    /// The outcome of the most recent certificate check (taken: a second call returns `None`).
    /// Lets a caller report exactly which check refused a server.
    pub fn take_outcome(&self) -> Option<Outcome> {
        self.last.lock().ok().and_then(|mut last| last.take())
    }
}

impl ServerCertVerifier for RaTlsServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let result = self.inner.verify_cert(end_entity, now.as_secs());
        if let Ok(mut last) = self.last.lock() {
            *last = Some(match &result {
                Ok(peer) => Ok(peer.clone()),
                Err(e) => Err(e.to_string()),
            });
        }
        result
            .map(|_| ServerCertVerified::assertion())
            .map_err(to_rustls)
    }

    handshake_signatures!();
}

/// rustls client-certificate verifier (server side) requiring RA-TLS client certificates.
#[derive(Debug)]
pub struct RaTlsClientVerifier {
    inner: RaTlsVerifier,
    provider: Arc<CryptoProvider>,
}

impl RaTlsClientVerifier {
    /// Wrap `inner` for rustls.
    pub fn new(inner: RaTlsVerifier) -> Arc<Self> {
        Arc::new(Self {
            inner,
            provider: provider(),
        })
    }
}

impl ClientCertVerifier for RaTlsClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verify_cert(end_entity, now.as_secs())
            .map(|_| ClientCertVerified::assertion())
            .map_err(to_rustls)
    }

    handshake_signatures!();
}

/// A TLS 1.3 client configuration that accepts only attested servers, optionally presenting
/// `identity` as an RA-TLS client certificate. ALPN is [`ALPN`].
pub fn client_config(
    verifier: RaTlsVerifier,
    identity: Option<&RaTlsIdentity>,
) -> Result<rustls::ClientConfig, RaTlsError> {
    client_config_with(RaTlsServerVerifier::new(verifier), identity)
}

/// [`client_config`] with a verifier the caller keeps, e.g. to read
/// [`RaTlsServerVerifier::take_outcome`] after connecting.
pub fn client_config_with(
    verifier: Arc<RaTlsServerVerifier>,
    identity: Option<&RaTlsIdentity>,
) -> Result<rustls::ClientConfig, RaTlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| RaTlsError::Generate(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert().clone()], id.key())
            .map_err(|e| RaTlsError::Generate(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A TLS 1.3 server configuration presenting `identity`; with `client_verifier`, clients must
/// present attested certificates too (node-to-node links). ALPN is [`ALPN`].
pub fn server_config(
    identity: &RaTlsIdentity,
    client_verifier: Option<RaTlsVerifier>,
) -> Result<rustls::ServerConfig, RaTlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| RaTlsError::Generate(e.to_string()))?;
    let builder = match client_verifier {
        Some(v) => builder.with_client_cert_verifier(RaTlsClientVerifier::new(v)),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(vec![identity.cert().clone()], identity.key())
        .map_err(|e| RaTlsError::Generate(e.to_string()))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}
