//! What each node checks on its own before it lets its key share be used: the server's
//! certificate chain (rustls-webpki, against configured roots — webpki-roots by default —
//! at a given time), that the certificate is valid for the server name, and the
//! ServerKeyExchange signature over the randoms and the ECDH parameters. A pure function of
//! its inputs and `now`.

use rustls_pki_types::{
    CertificateDer, ServerName, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use webpki::{EndEntityCert, KeyUsage};

use crate::codec::{CipherSuite, ServerKeyExchange};

/// The roots a node trusts for provider certificates.
#[derive(Debug, Clone)]
pub struct Roots {
    anchors: Vec<TrustAnchor<'static>>,
}

impl Default for Roots {
    /// The Mozilla root program, as packaged by `webpki-roots`.
    fn default() -> Self {
        Roots {
            anchors: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }
    }
}

impl Roots {
    /// Roots from DER certificates (for a private provider, or a test CA).
    pub fn from_der(certs: &[Vec<u8>]) -> Result<Roots, CertError> {
        let anchors = certs
            .iter()
            .map(|c| {
                webpki::anchor_from_trusted_cert(&CertificateDer::from(c.as_slice()))
                    .map(|a| a.to_owned())
                    .map_err(|e| CertError::BadRoot(format!("{e:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if anchors.is_empty() {
            return Err(CertError::BadRoot("no root certificate given".into()));
        }
        Ok(Roots { anchors })
    }

    /// Roots from a PEM file's contents (every CERTIFICATE block).
    pub fn from_pem(pem: &str) -> Result<Roots, CertError> {
        Self::from_der(&pem_certificates(pem)?)
    }

    /// Number of roots.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are none (never, for a constructed value).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// The DER bodies of every `CERTIFICATE` block in a PEM text.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let mut out = Vec::new();
    let mut inside: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (&mut inside, line) {
            (None, "-----BEGIN CERTIFICATE-----") => inside = Some(String::new()),
            (Some(b64), "-----END CERTIFICATE-----") => {
                out.push(base64_decode(b64).ok_or_else(|| {
                    CertError::BadRoot("a PEM certificate is not valid base64".into())
                })?);
                inside = None;
            }
            (Some(b64), l) => b64.push_str(l),
            (None, _) => {}
        }
    }
    if inside.is_some() {
        return Err(CertError::BadRoot("unterminated PEM certificate".into()));
    }
    if out.is_empty() {
        return Err(CertError::BadRoot(
            "no CERTIFICATE block in the PEM file".into(),
        ));
    }
    Ok(out)
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// Why a server's certificate or key exchange was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// A configured root could not be used.
    #[error("unusable root certificate: {0}")]
    BadRoot(String),
    /// The server name is not a DNS name or IP address.
    #[error("invalid server name {0:?}")]
    ServerName(String),
    /// The chain does not lead to a trusted root, is expired, or is otherwise invalid.
    #[error("server certificate chain rejected: {0}")]
    Chain(String),
    /// The certificate is valid but not for this server name.
    #[error("server certificate is not valid for {name}: {why}")]
    Name {
        /// The name we connected to.
        name: String,
        /// webpki's reason.
        why: String,
    },
    /// The ServerKeyExchange names a signature scheme we did not offer or that does not fit
    /// the suite.
    #[error("ServerKeyExchange signature scheme {scheme:#06x} is not acceptable for {suite}")]
    Scheme {
        /// The scheme code point.
        scheme: u16,
        /// The negotiated suite.
        suite: CipherSuite,
    },
    /// The signature does not verify under the certificate's key.
    #[error("ServerKeyExchange signature does not verify under the server certificate's key")]
    Signature,
    /// A TLS 1.3 CertificateVerify names a scheme TLS 1.3 does not allow or we did not offer.
    #[error("CertificateVerify signature scheme {0:#06x} is not acceptable in TLS 1.3")]
    Scheme13(u16),
    /// A TLS 1.3 CertificateVerify signature does not verify under the certificate's key.
    #[error("CertificateVerify signature does not verify under the server certificate's key")]
    CertificateVerify,
}

/// The webpki algorithms for a TLS 1.2 signature scheme, and whether it is ECDSA.
fn scheme_algs(scheme: u16) -> Option<(bool, Vec<&'static dyn SignatureVerificationAlgorithm>)> {
    use webpki::ring as r;
    Some(match scheme {
        0x0403 => (true, vec![r::ECDSA_P256_SHA256, r::ECDSA_P384_SHA256]),
        0x0503 => (true, vec![r::ECDSA_P384_SHA384, r::ECDSA_P256_SHA384]),
        0x0804 => (false, vec![r::RSA_PSS_2048_8192_SHA256_LEGACY_KEY]),
        0x0805 => (false, vec![r::RSA_PSS_2048_8192_SHA384_LEGACY_KEY]),
        0x0806 => (false, vec![r::RSA_PSS_2048_8192_SHA512_LEGACY_KEY]),
        0x0401 => (false, vec![r::RSA_PKCS1_2048_8192_SHA256]),
        0x0501 => (false, vec![r::RSA_PKCS1_2048_8192_SHA384]),
        0x0601 => (false, vec![r::RSA_PKCS1_2048_8192_SHA512]),
        _ => return None,
    })
}

/// Algorithms accepted inside certificate chains.
static CHAIN_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_3072_8192_SHA384,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// Validates the chain (end entity first) for `server_name` at `now_unix` (seconds) against
/// `roots`, then the ServerKeyExchange signature for `suite`.
#[allow(clippy::too_many_arguments)] // each is a distinct input of the check
pub fn verify_server(
    roots: &Roots,
    server_name: &str,
    chain: &[Vec<u8>],
    now_unix: u64,
    suite: CipherSuite,
    ske: &ServerKeyExchange,
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> Result<(), CertError> {
    with_end_entity(roots, server_name, chain, now_unix, |ee| {
        let bad_scheme = CertError::Scheme {
            scheme: ske.scheme,
            suite,
        };
        let (ecdsa, algs) = scheme_algs(ske.scheme).ok_or(bad_scheme.clone())?;
        if ecdsa != suite.is_ecdsa() {
            return Err(bad_scheme);
        }
        let msg = ske.signed_message(client_random, server_random);
        if algs
            .iter()
            .any(|a| ee.verify_signature(*a, &msg, &ske.signature).is_ok())
        {
            Ok(())
        } else {
            Err(CertError::Signature)
        }
    })
}

/// The webpki algorithms for a TLS 1.3 CertificateVerify scheme (RFC 8446 §4.2.3: ECDSA with
/// its curve's hash, RSASSA-PSS, Ed25519; never PKCS#1 v1.5).
fn scheme_algs13(scheme: u16) -> Option<&'static dyn SignatureVerificationAlgorithm> {
    use webpki::ring as r;
    Some(match scheme {
        0x0403 => r::ECDSA_P256_SHA256,
        0x0503 => r::ECDSA_P384_SHA384,
        0x0804 => r::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        0x0805 => r::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        0x0806 => r::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        0x0807 => r::ED25519,
        _ => return None,
    })
}

/// Validates the chain (end entity first) for `server_name` at `now_unix` against `roots`,
/// then a TLS 1.3 CertificateVerify (`scheme`, `signature`) over the transcript hash
/// through Certificate (RFC 8446 §4.4.3).
pub fn verify_server13(
    roots: &Roots,
    server_name: &str,
    chain: &[Vec<u8>],
    now_unix: u64,
    scheme: u16,
    signature: &[u8],
    hash_through_certificate: &[u8; 32],
) -> Result<(), CertError> {
    with_end_entity(roots, server_name, chain, now_unix, |ee| {
        let alg = scheme_algs13(scheme).ok_or(CertError::Scheme13(scheme))?;
        let msg = crate::handshake13::certificate_verify_message(hash_through_certificate);
        ee.verify_signature(alg, &msg, signature)
            .map_err(|_| CertError::CertificateVerify)
    })
}

/// Validates the chain for `server_name` at `now_unix` against `roots`, then runs `check`
/// on its end-entity certificate.
fn with_end_entity<T>(
    roots: &Roots,
    server_name: &str,
    chain: &[Vec<u8>],
    now_unix: u64,
    check: impl FnOnce(&EndEntityCert<'_>) -> Result<T, CertError>,
) -> Result<T, CertError> {
    let name = ServerName::try_from(server_name)
        .map_err(|_| CertError::ServerName(server_name.to_string()))?;
    let Some((ee_der, rest)) = chain.split_first() else {
        return Err(CertError::Chain("empty chain".into()));
    };
    let ee_der = CertificateDer::from(ee_der.as_slice());
    let ee = EndEntityCert::try_from(&ee_der).map_err(|e| CertError::Chain(format!("{e}")))?;
    let intermediates: Vec<CertificateDer<'_>> = rest
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    ee.verify_for_usage(
        CHAIN_ALGS,
        &roots.anchors,
        &intermediates,
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(now_unix)),
        KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| CertError::Chain(format!("{e}")))?;
    ee.verify_is_valid_for_subject_name(&name)
        .map_err(|e| CertError::Name {
            name: server_name.to_string(),
            why: format!("{e}"),
        })?;
    check(&ee)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert!(base64_decode("a*==").is_none());
    }

    #[test]
    fn default_roots_are_the_mozilla_set() {
        assert!(Roots::default().len() > 100);
    }

    #[test]
    fn pem_errors() {
        assert!(pem_certificates("nothing").is_err());
        assert!(pem_certificates("-----BEGIN CERTIFICATE-----\nAAAA").is_err());
    }
}
