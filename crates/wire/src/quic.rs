//! QUIC and TLS settings for every Tessera party.
//!
//! - Transport: a keep-alive every second and a 5-second idle timeout, so a dead peer is
//!   noticed within seconds; large stream windows for the garbled-circuit traffic.
//! - Nodes serve their RA-TLS certificate and take an optional client certificate, which
//!   they check themselves (by RA-TLS and their policy) when a stream says it comes from a
//!   peer node. Clients are anonymous.
//! - The coordinator serves a throwaway self-signed certificate; it holds no secret and no one
//!   relies on its identity (every result is checked end to end), so no one checks it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use attestation::ratls::{RaTlsIdentity, RaTlsServerVerifier};
use rustls::client::danger::{ServerCertVerified, ServerCertVerifier};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::DistinguishedName;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

/// Errors setting up or dialing QUIC.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// A TLS or QUIC configuration was refused.
    #[error("QUIC/TLS configuration: {0}")]
    Config(String),
    /// The address does not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// The endpoint could not be created.
    #[error("cannot open a UDP endpoint: {0}")]
    Endpoint(String),
    /// Connecting failed (includes a refused RA-TLS certificate).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No answer in time.
    #[error("{0} did not answer in time")]
    Timeout(String),
}

/// How long without a packet before a connection counts as dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle connection sends a keep-alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// The transport settings every endpoint uses.
pub fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    if let Ok(idle) = quinn::IdleTimeout::try_from(IDLE_TIMEOUT) {
        t.max_idle_timeout(Some(idle));
    }
    t.max_concurrent_bidi_streams(4096u32.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.stream_receive_window((16u32 << 20).into());
    t.receive_window((256u32 << 20).into());
    t.send_window(256 << 20);
    Arc::new(t)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn cfg_err(e: impl std::fmt::Display) -> QuicError {
    QuicError::Config(e.to_string())
}

/// Accepts any client certificate, or none, after checking the handshake signature (so the
/// peer holds the certificate's key). Whoever accepts a stream decides what the certificate
/// must be: a node checks a peer node's RA-TLS certificate; clients present none.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    attestation::handshake_signatures!();
}

/// Accepts the coordinator's certificate whatever it is (after checking the handshake
/// signature). The coordinator is untrusted by design: see the module documentation.
#[derive(Debug)]
struct UncheckedCoordinator {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for UncheckedCoordinator {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    attestation::handshake_signatures!();
}

fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, QuicError> {
    let p = provider();
    let mut tls = rustls::ServerConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(cfg_err)?
        .with_client_cert_verifier(Arc::new(AnyClientCert { provider: p }))
        .with_single_cert(vec![cert], key)
        .map_err(cfg_err)?;
    tls.alpn_protocols = vec![attestation::ratls::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(cfg_err)?;
    let mut c = quinn::ServerConfig::with_crypto(Arc::new(quic));
    c.transport_config(transport());
    Ok(c)
}

/// A node's server configuration: its RA-TLS certificate; client certificates optional.
pub fn node_server_config(identity: &RaTlsIdentity) -> Result<quinn::ServerConfig, QuicError> {
    server_config(identity.cert().clone(), identity.key())
}

/// The coordinator's server configuration: a fresh self-signed certificate (it proves
/// nothing and is not meant to); client certificates optional (nodes present RA-TLS ones).
pub fn coordinator_server_config() -> Result<quinn::ServerConfig, QuicError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(cfg_err)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["tessera-coordinator".to_string()]).map_err(cfg_err)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "tessera coordinator (unauthenticated by design)",
    );
    let cert = params.self_signed(&key).map_err(cfg_err)?;
    server_config(
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

/// A client configuration for dialing the coordinator, presenting `identity` (nodes) or
/// nothing (clients).
pub fn coordinator_client_config(
    identity: Option<&RaTlsIdentity>,
) -> Result<quinn::ClientConfig, QuicError> {
    let p = provider();
    let builder = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(cfg_err)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(UncheckedCoordinator { provider: p }));
    let mut tls = match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert().clone()], id.key())
            .map_err(cfg_err)?,
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![attestation::ratls::ALPN.to_vec()];
    client_config(tls)
}

/// A client configuration for dialing a node: its certificate must pass `verifier` (an
/// RA-TLS verifier whose outcome the caller reads afterwards); `identity` is presented when a
/// node dials a peer.
pub fn node_client_config(
    verifier: Arc<RaTlsServerVerifier>,
    identity: Option<&RaTlsIdentity>,
) -> Result<quinn::ClientConfig, QuicError> {
    let tls = attestation::ratls::client_config_with(verifier, identity).map_err(cfg_err)?;
    client_config(tls)
}

fn client_config(tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, QuicError> {
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(cfg_err)?;
    let mut c = quinn::ClientConfig::new(Arc::new(quic));
    c.transport_config(transport());
    Ok(c)
}

/// A client-only endpoint on an ephemeral port of the right address family.
pub fn client_endpoint(ipv6: bool) -> Result<quinn::Endpoint, QuicError> {
    let bind: SocketAddr = if ipv6 {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0u8; 4], 0))
    };
    quinn::Endpoint::client(bind).map_err(|e| QuicError::Endpoint(e.to_string()))
}

/// Resolves `addr` (`host:port`).
pub async fn resolve(addr: &str) -> Result<SocketAddr, QuicError> {
    tokio::net::lookup_host(addr)
        .await
        .map_err(|_| QuicError::Resolve(addr.to_string()))?
        .next()
        .ok_or_else(|| QuicError::Resolve(addr.to_string()))
}

/// Dials `addr` from `endpoint` with `config`, giving up after `timeout`.
pub async fn dial(
    endpoint: &quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: &str,
    timeout: Duration,
) -> Result<quinn::Connection, QuicError> {
    let target = resolve(addr).await?;
    let connecting = endpoint
        .connect_with(config, target, "tessera")
        .map_err(|e| QuicError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    match tokio::time::timeout(timeout, connecting).await {
        Err(_) => Err(QuicError::Timeout(addr.to_string())),
        Ok(Err(e)) => Err(QuicError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        }),
        Ok(Ok(c)) => Ok(c),
    }
}

/// The end-entity certificate the peer presented on `conn` (DER), if any.
pub fn peer_cert(conn: &quinn::Connection) -> Option<Vec<u8>> {
    let any = conn.peer_identity()?;
    let certs = any.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().map(|c| c.to_vec())
}
