//! The client side of the TLS 1.2 handshake's server flight as an explicit, sans-IO state
//! machine: feed it each whole handshake message (and any alert) in the order the server
//! sent them; it checks the order and contents (ServerHello → Certificate →
//! ServerKeyExchange → [CertificateRequest] → ServerHelloDone), keeps the transcript hash,
//! and yields the parsed
//! flight. Every node runs one over the bytes the client relays.

use sha2::{Digest, Sha256};

use crate::codec::{
    self, hs, Alert, CipherSuite, CodecError, ServerHello, ServerKeyExchange, TLS12,
};

/// Why something the server sent was refused (in the handshake or after it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// A malformed message.
    #[error("malformed message from the server: {0}")]
    Codec(#[from] CodecError),
    /// The server sent an alert.
    #[error("the server sent a {alert} during {stage}")]
    ServerAlert {
        /// The alert.
        alert: Alert,
        /// What we were doing.
        stage: &'static str,
    },
    /// The server negotiated a protocol version we do not speak.
    #[error("the server negotiated {negotiated}; Tessera supports TLS 1.2 only")]
    Version {
        /// What it chose.
        negotiated: String,
    },
    /// The server chose a suite we did not offer.
    #[error("the server chose cipher suite {chosen:#06x}; Tessera supports {supported}")]
    Suite {
        /// The suite's code point.
        chosen: u16,
        /// What we offered.
        supported: String,
    },
    /// The server refused every suite we offered.
    #[error("the server accepted none of Tessera's cipher suites ({supported}); it answered with a {alert}")]
    NoCommonSuite {
        /// Its alert.
        alert: Alert,
        /// What we offered.
        supported: String,
    },
    /// The server did not accept the Extended Master Secret.
    #[error(
        "the server does not support the Extended Master Secret (RFC 7627), which Tessera requires"
    )]
    NoExtendedMasterSecret,
    /// A message out of order, or one we do not support.
    #[error("unexpected from the server: {0}")]
    Unexpected(String),
    /// We offered TLS 1.3, the server chose TLS 1.2, and its random carries RFC 8446's
    /// downgrade sentinel: a server that speaks TLS 1.3 says it saw no offer of it.
    #[error(
        "the server chose TLS 1.2 although it speaks TLS 1.3 and we offered it (its random \
         carries the downgrade sentinel): something between us and the server removed TLS 1.3"
    )]
    Downgrade,
}

/// A protocol version's name.
pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        0x0303 => "TLS 1.2".into(),
        0x0304 => "TLS 1.3".into(),
        v => format!("version {v:#06x}"),
    }
}

/// The suites Tessera offers, for error messages.
pub fn supported_suites() -> String {
    CipherSuite::ALL.map(|s| s.to_string()).join(" and ")
}

/// The server's first flight, parsed.
#[derive(Debug, Clone)]
pub struct Flight {
    /// ServerHello.
    pub hello: ServerHello,
    /// The negotiated suite.
    pub suite: CipherSuite,
    /// The certificate chain, end entity first.
    pub certs: Vec<Vec<u8>>,
    /// The ECDHE parameters and their signature.
    pub ske: ServerKeyExchange,
    /// Whether the server asked for a client certificate (CertificateRequest). Tessera has
    /// none and answers with an empty Certificate, as a browser without one does; a server
    /// that requires one then refuses the handshake.
    pub certificate_requested: bool,
}

#[derive(Debug)]
enum State {
    ExpectServerHello,
    ExpectCertificate(ServerHello, CipherSuite),
    ExpectKeyExchange(ServerHello, CipherSuite, Vec<Vec<u8>>),
    ExpectHelloDone(Flight),
    Done,
    Failed,
}

/// The state machine. Start it with the ClientHello we sent (for the transcript).
#[derive(Debug)]
pub struct ServerFlight {
    state: State,
    transcript: Sha256,
    /// Whether our ClientHello offered TLS 1.3 (then a TLS 1.2 ServerHello must not carry
    /// the downgrade sentinel).
    offered_tls13: bool,
}

/// The last 8 bytes of the random of a TLS 1.3 server that negotiates TLS 1.2 (RFC 8446
/// §4.1.3).
pub const DOWNGRADE_TLS12: [u8; 8] = *b"DOWNGRD\x01";

impl ServerFlight {
    /// A machine that has sent `client_hello` (the handshake message, header included).
    pub fn new(client_hello: &[u8]) -> Self {
        let mut transcript = Sha256::new();
        transcript.update(client_hello);
        ServerFlight {
            state: State::ExpectServerHello,
            transcript,
            offered_tls13: false,
        }
    }

    /// The machine for a ClientHello that offered TLS 1.3 as well: a TLS 1.2 ServerHello
    /// whose random ends with [`DOWNGRADE_TLS12`] is refused ([`ServerError::Downgrade`]).
    pub fn offering_tls13(mut self) -> Self {
        self.offered_tls13 = true;
        self
    }

    /// The running transcript hash (over every message fed so far).
    pub fn transcript(&self) -> &Sha256 {
        &self.transcript
    }

    /// Consumes the machine, returning the transcript hash state to continue with.
    pub fn into_transcript(self) -> Sha256 {
        self.transcript
    }

    /// An alert from the server: always an error, typed by when it came.
    pub fn on_alert(&mut self, alert: Alert) -> ServerError {
        let first = matches!(self.state, State::ExpectServerHello);
        self.state = State::Failed;
        match alert.description {
            70 if first => ServerError::Version {
                negotiated: "no version in common (the server refused TLS 1.2 with a protocol_version alert; it may speak TLS 1.3 only)".into(),
            },
            40 | 71 if first => ServerError::NoCommonSuite {
                alert,
                supported: supported_suites(),
            },
            _ => ServerError::ServerAlert {
                alert,
                stage: "the handshake",
            },
        }
    }

    /// Feeds one whole handshake message (header included). Returns the flight once
    /// ServerHelloDone arrives; any error is final.
    pub fn on_message(&mut self, m: &[u8]) -> Result<Option<Flight>, ServerError> {
        let r = self.step(m);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn step(&mut self, m: &[u8]) -> Result<Option<Flight>, ServerError> {
        let (&typ, body) = m
            .split_first()
            .filter(|_| m.len() >= 4)
            .ok_or(CodecError::Truncated("handshake message"))?;
        let body = &body[3..];
        let expected = |what: &str| {
            ServerError::Unexpected(format!("handshake message {typ} instead of {what}"))
        };
        let state = std::mem::replace(&mut self.state, State::Failed);
        self.state = match state {
            State::ExpectServerHello => {
                if typ != hs::SERVER_HELLO {
                    return Err(expected("ServerHello"));
                }
                let hello = codec::parse_server_hello(body)?;
                if self.offered_tls13 && hello.random[24..] == DOWNGRADE_TLS12 {
                    return Err(ServerError::Downgrade);
                }
                if let Some(v) = hello.selected_version.filter(|&v| v != TLS12) {
                    return Err(ServerError::Version {
                        negotiated: version_name(v),
                    });
                }
                if hello.version != TLS12 {
                    return Err(ServerError::Version {
                        negotiated: version_name(hello.version),
                    });
                }
                let suite =
                    CipherSuite::from_code(hello.suite).ok_or_else(|| ServerError::Suite {
                        chosen: hello.suite,
                        supported: supported_suites(),
                    })?;
                if !hello.extended_master_secret {
                    return Err(ServerError::NoExtendedMasterSecret);
                }
                State::ExpectCertificate(hello, suite)
            }
            State::ExpectCertificate(hello, suite) => {
                if typ != hs::CERTIFICATE {
                    return Err(expected("Certificate"));
                }
                State::ExpectKeyExchange(hello, suite, codec::parse_certificate(body)?)
            }
            State::ExpectKeyExchange(hello, suite, certs) => {
                if typ != hs::SERVER_KEY_EXCHANGE {
                    return Err(expected("ServerKeyExchange"));
                }
                let ske = codec::parse_server_key_exchange(body)?;
                State::ExpectHelloDone(Flight {
                    hello,
                    suite,
                    certs,
                    ske,
                    certificate_requested: false,
                })
            }
            State::ExpectHelloDone(mut flight) => match typ {
                hs::SERVER_HELLO_DONE if body.is_empty() => {
                    self.transcript.update(m);
                    self.state = State::Done;
                    return Ok(Some(flight));
                }
                hs::CERTIFICATE_REQUEST if !flight.certificate_requested => {
                    codec::parse_certificate_request(body)?;
                    flight.certificate_requested = true;
                    State::ExpectHelloDone(flight)
                }
                _ => return Err(expected("ServerHelloDone")),
            },
            State::Done | State::Failed => {
                return Err(ServerError::Unexpected(
                    "a handshake message after ServerHelloDone".into(),
                ))
            }
        };
        self.transcript.update(m);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::codec::handshake_message;

    fn server_hello(suite: u16, ems: bool) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend([1u8; 32]);
        b.push(0);
        b.extend(suite.to_be_bytes());
        b.push(0);
        if ems {
            b.extend([0, 4, 0, 23, 0, 0]);
        }
        handshake_message(hs::SERVER_HELLO, &b)
    }

    fn certificate() -> Vec<u8> {
        handshake_message(hs::CERTIFICATE, &[0, 0, 6, 0, 0, 3, 1, 2, 3])
    }

    fn ske() -> Vec<u8> {
        let mut b = vec![3, 0, 23, 65];
        b.extend([4u8; 65]);
        b.extend([4, 3, 0, 1, 9]);
        handshake_message(hs::SERVER_KEY_EXCHANGE, &b)
    }

    #[test]
    fn a_whole_flight_in_order() {
        let ch = [1u8, 0, 0, 0];
        let mut m = ServerFlight::new(&ch);
        assert!(m.on_message(&server_hello(0xC02B, true)).unwrap().is_none());
        assert!(m.on_message(&certificate()).unwrap().is_none());
        assert!(m.on_message(&ske()).unwrap().is_none());
        let done = handshake_message(hs::SERVER_HELLO_DONE, &[]);
        let f = m.on_message(&done).unwrap().unwrap();
        assert_eq!(f.suite, CipherSuite::EcdheEcdsaAes128GcmSha256);
        assert_eq!(f.certs, vec![vec![1, 2, 3]]);
        let mut h = Sha256::new();
        for x in [
            &ch[..],
            &server_hello(0xC02B, true),
            &certificate(),
            &ske(),
            &done,
        ] {
            h.update(x);
        }
        assert_eq!(m.transcript().clone().finalize(), h.finalize());
        assert!(m.on_message(&done).is_err());
    }

    /// A CertificateRequest (RFC 5246 §7.4.4) is taken once, checked, and kept in the
    /// transcript; the flight says it came, so the client answers with an empty
    /// Certificate.
    #[test]
    fn an_optional_certificate_request_is_noted() {
        // Types rsa_sign, ecdsa_sign; algorithms ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256;
        // one authority (a 3-byte "DN").
        let body = [2, 1, 64, 0, 4, 4, 3, 8, 4, 0, 5, 0, 3, 0x30, 1, 0];
        let req = handshake_message(hs::CERTIFICATE_REQUEST, &body);
        let done = handshake_message(hs::SERVER_HELLO_DONE, &[]);
        let until_request = [
            server_hello(0xC02B, true),
            certificate(),
            ske(),
            req.clone(),
        ];
        let mut m = ServerFlight::new(&[]);
        for x in &until_request {
            assert!(m.on_message(x).unwrap().is_none());
        }
        let f = m.on_message(&done).unwrap().unwrap();
        assert!(f.certificate_requested);
        let mut h = Sha256::new();
        for x in until_request.iter().chain([&done]) {
            h.update(x);
        }
        assert_eq!(m.transcript().clone().finalize(), h.finalize());
        // Twice is refused.
        let mut m = ServerFlight::new(&[]);
        for x in &until_request {
            m.on_message(x).unwrap();
        }
        assert!(m.on_message(&req).is_err());
        // Malformed: no types, odd algorithm bytes, an empty authority, trailing bytes.
        for bad in [
            &[0, 0, 0, 0, 0][..],
            &[1, 64, 0, 3, 4, 3, 8, 0, 0],
            &[1, 64, 0, 2, 4, 3, 0, 2, 0, 0],
            &[1, 64, 0, 2, 4, 3, 0, 0, 9],
        ] {
            let mut m = ServerFlight::new(&[]);
            for x in [server_hello(0xC02B, true), certificate(), ske()] {
                m.on_message(&x).unwrap();
            }
            let e = m.on_message(&handshake_message(hs::CERTIFICATE_REQUEST, bad));
            assert!(e.is_err(), "{bad:?} was taken");
        }
        assert_eq!(
            codec::empty_certificate(),
            vec![hs::CERTIFICATE, 0, 0, 3, 0, 0, 0]
        );
    }

    /// RFC 8446 §4.1.3: a TLS 1.2 ServerHello whose random ends with "DOWNGRD\x01" is
    /// refused when we offered TLS 1.3, and taken when we did not (a TLS 1.3 server talking
    /// to a TLS 1.2-only client sends it too).
    #[test]
    fn the_downgrade_sentinel_counts_only_when_tls13_was_offered() {
        let mut hello = server_hello(0xC02B, true);
        hello[4 + 2 + 24..4 + 2 + 32].copy_from_slice(&DOWNGRADE_TLS12);
        let mut m = ServerFlight::new(&[]).offering_tls13();
        assert!(matches!(m.on_message(&hello), Err(ServerError::Downgrade)));
        let mut m = ServerFlight::new(&[]);
        assert!(m.on_message(&hello).unwrap().is_none());
        let mut m = ServerFlight::new(&[]).offering_tls13();
        assert!(m.on_message(&server_hello(0xC02B, true)).unwrap().is_none());
    }

    #[test]
    fn out_of_order_and_refusals() {
        let mut m = ServerFlight::new(&[]);
        assert!(matches!(
            m.on_message(&certificate()),
            Err(ServerError::Unexpected(_))
        ));
        // Failed machines stay failed.
        assert!(m.on_message(&server_hello(0xC02B, true)).is_err());
        let mut m = ServerFlight::new(&[]);
        assert!(matches!(
            m.on_message(&server_hello(0xC030, true)),
            Err(ServerError::Suite { chosen: 0xC030, .. })
        ));
        let mut m = ServerFlight::new(&[]);
        assert!(matches!(
            m.on_message(&server_hello(0xC02F, false)),
            Err(ServerError::NoExtendedMasterSecret)
        ));
        let mut m = ServerFlight::new(&[]);
        m.on_message(&server_hello(0xC02F, true)).unwrap();
        m.on_message(&certificate()).unwrap();
        m.on_message(&ske()).unwrap();
        assert!(m
            .on_message(&handshake_message(hs::CERTIFICATE_REQUEST, &[0]))
            .is_err());
        let mut m = ServerFlight::new(&[]);
        let e = m.on_alert(Alert {
            level: 2,
            description: 70,
        });
        assert!(e.to_string().contains("TLS 1.2 only"));
        let mut m = ServerFlight::new(&[]);
        assert!(matches!(
            m.on_alert(Alert {
                level: 2,
                description: 40
            }),
            ServerError::NoCommonSuite { .. }
        ));
    }
}
