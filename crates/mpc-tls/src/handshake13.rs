//! The server's TLS 1.3 flight (RFC 8446 §4) as an explicit, sans-IO state machine, in the
//! clear: the ServerHello (plaintext), then the messages of the encrypted flight once a
//! node has decrypted them with the server handshake traffic key (`record13`):
//! EncryptedExtensions → [CertificateRequest] → Certificate → CertificateVerify → Finished.
//! It checks their order and structure and keeps the transcript hash at each point a
//! signature or MAC covers; the checks of the chain and the CertificateVerify signature
//! (`server_auth::verify_server13`) and of the Finished MAC are the caller's, with the hashes
//! it yields.

use sha2::{Digest, Sha256};

use crate::codec::{certificate_list, check_extensions, hs, CodecError, Reader};
use crate::handshake::ServerError;

/// TLS 1.3's version code point.
pub const TLS13: u16 = 0x0304;
/// `TLS_AES_128_GCM_SHA256`.
pub const TLS_AES_128_GCM_SHA256: u16 = 0x1301;
/// The secp256r1 named group.
pub const SECP256R1: u16 = 23;
/// The ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256 of
/// "HelloRetryRequest".
pub const HELLO_RETRY_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// message_hash (254): stands for the first ClientHello after a HelloRetryRequest.
const MESSAGE_HASH: u8 = 254;
/// encrypted_extensions (8).
const ENCRYPTED_EXTENSIONS: u8 = 8;
/// certificate_verify (15).
const CERTIFICATE_VERIFY: u8 = 15;
/// finished (20).
const FINISHED: u8 = 20;

const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_COOKIE: u16 = 44;
const EXT_KEY_SHARE: u16 = 51;

/// What a TLS 1.3 ServerHello says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello13 {
    /// A ServerHello: the server's random and its key share.
    Hello {
        /// The server random.
        random: [u8; 32],
        /// The key share's group.
        group: u16,
        /// The server's public key share (for secp256r1, an uncompressed point).
        key: Vec<u8>,
    },
    /// A HelloRetryRequest: the server wants a key share for `group` (and its cookie back).
    Retry {
        /// The group it selected.
        group: u16,
        /// The cookie the second ClientHello must carry, if the server sent one.
        cookie: Option<Vec<u8>>,
    },
}

/// Parses a ServerHello body that selected TLS 1.3: legacy version 0x0303, the legacy session
/// id echoing ours, `TLS_AES_128_GCM_SHA256`, null compression, supported_versions = 1.3, and
/// a key_share (in a HelloRetryRequest, only the selected group, and perhaps a cookie). Other
/// extensions are refused: a ServerHello carries nothing else (RFC 8446 §4.1.3, §4.2).
pub fn parse_server_hello13(body: &[u8], session_id: &[u8]) -> Result<Hello13, ServerError> {
    let mut r = Reader::new(body, "ServerHello");
    if r.u16()? != 0x0303 {
        return Err(bad("a TLS 1.3 ServerHello's legacy version is not 0x0303"));
    }
    let mut random = [0u8; 32];
    random.copy_from_slice(r.take(32)?);
    if r.vec8()? != session_id {
        return Err(bad("the ServerHello does not echo the legacy session id"));
    }
    let suite = r.u16()?;
    if suite != TLS_AES_128_GCM_SHA256 {
        return Err(ServerError::Suite {
            chosen: suite,
            supported: "TLS_AES_128_GCM_SHA256".into(),
        });
    }
    if r.u8()? != 0 {
        return Err(bad("a TLS 1.3 ServerHello with a compression method"));
    }
    let mut e = Reader::new(r.vec16()?, "ServerHello extensions");
    r.end()?;
    let retry = random == HELLO_RETRY_RANDOM;
    let (mut version, mut share, mut cookie) = (None, None, None);
    while !e.is_empty() {
        let code = e.u16()?;
        let mut d = Reader::new(e.vec16()?, "ServerHello extension");
        match code {
            EXT_SUPPORTED_VERSIONS if version.is_none() => version = Some(d.u16()?),
            EXT_KEY_SHARE if share.is_none() => {
                let group = d.u16()?;
                share = Some((
                    group,
                    if retry {
                        Vec::new()
                    } else {
                        d.vec16()?.to_vec()
                    },
                ));
            }
            EXT_COOKIE if retry && cookie.is_none() => {
                let c = d.vec16()?;
                if c.is_empty() {
                    return Err(bad("an empty HelloRetryRequest cookie"));
                }
                cookie = Some(c.to_vec());
            }
            c => return Err(bad(&format!("ServerHello extension {c} (or a duplicate)"))),
        }
        d.end()?;
    }
    if version != Some(TLS13) {
        return Err(bad(
            "a TLS 1.3 ServerHello without supported_versions = TLS 1.3",
        ));
    }
    let (group, key) = share.ok_or_else(|| bad("a TLS 1.3 ServerHello without key_share"))?;
    if group != SECP256R1 {
        return Err(bad(&format!(
            "the server chose group {group}; Tessera offers secp256r1 only"
        )));
    }
    Ok(if retry {
        Hello13::Retry { group, cookie }
    } else {
        Hello13::Hello { random, group, key }
    })
}

/// Whether a ServerHello (a whole handshake message, header included) selects TLS 1.3: its
/// extensions carry supported_versions = 0x0304 (RFC 8446 §4.2.1). A message this cannot
/// read is reported as not selecting it, for the TLS 1.2 parser to refuse in its own words.
pub fn selects_tls13(server_hello: &[u8]) -> bool {
    let read = || -> Result<bool, CodecError> {
        let body = server_hello
            .get(4..)
            .ok_or(CodecError::Truncated("ServerHello"))?;
        let mut r = Reader::new(body, "ServerHello");
        r.take(2 + 32)?;
        r.vec8()?;
        r.take(3)?;
        if r.is_empty() {
            return Ok(false);
        }
        let mut e = Reader::new(r.vec16()?, "ServerHello extensions");
        while !e.is_empty() {
            let code = e.u16()?;
            let data = e.vec16()?;
            if code == EXT_SUPPORTED_VERSIONS {
                return Ok(data == TLS13.to_be_bytes());
            }
        }
        Ok(false)
    };
    server_hello.first() == Some(&hs::SERVER_HELLO) && read().unwrap_or(false)
}

fn bad(m: &str) -> ServerError {
    ServerError::Unexpected(m.into())
}

/// The server's encrypted flight, parsed, with the transcript hashes its checks need.
#[derive(Debug, Clone)]
pub struct Flight13 {
    /// The certificate chain, end entity first.
    pub certs: Vec<Vec<u8>>,
    /// The CertificateVerify signature scheme.
    pub scheme: u16,
    /// The CertificateVerify signature.
    pub signature: Vec<u8>,
    /// The server Finished verify_data.
    pub finished: [u8; 32],
    /// The CertificateRequest's context if the server asked for a client certificate (the
    /// client's Certificate echoes it).
    pub certificate_request: Option<Vec<u8>>,
    /// The transcript hash through Certificate (what CertificateVerify signs).
    pub hash_through_certificate: [u8; 32],
    /// The transcript hash through CertificateVerify (what the server Finished MACs).
    pub hash_through_certificate_verify: [u8; 32],
    /// The transcript hash through the server Finished (the application secrets' context and
    /// what the client Finished MACs).
    pub hash_through_finished: [u8; 32],
}

#[derive(Debug)]
enum State {
    ExpectServerHello,
    ExpectEncryptedExtensions,
    ExpectCertificate {
        requested: Option<Vec<u8>>,
    },
    ExpectCertificateVerify {
        requested: Option<Vec<u8>>,
        certs: Vec<Vec<u8>>,
        hash: [u8; 32],
    },
    ExpectFinished(Box<Flight13>),
    Done,
    Failed,
}

/// The state machine. Start it with the ClientHello we sent (for the transcript).
#[derive(Debug)]
pub struct ServerFlight13 {
    state: State,
    transcript: Sha256,
    session_id: Vec<u8>,
    /// Whether this follows a HelloRetryRequest (a second one is refused).
    retried: bool,
}

impl ServerFlight13 {
    /// A machine that has sent `client_hello` (the handshake message, header included) with
    /// legacy session id `session_id`.
    pub fn new(client_hello: &[u8], session_id: &[u8]) -> Self {
        let mut transcript = Sha256::new();
        transcript.update(client_hello);
        ServerFlight13 {
            state: State::ExpectServerHello,
            transcript,
            session_id: session_id.to_vec(),
            retried: false,
        }
    }

    /// The machine for the second ClientHello `ch2`, sent after `ch1` drew the
    /// HelloRetryRequest `hrr` (whole handshake messages): the transcript starts with
    /// `ch1`'s hash in a message_hash message, then `hrr` and `ch2` (RFC 8446 §4.4.1). A
    /// second HelloRetryRequest is refused.
    pub fn after_retry(ch1: &[u8], hrr: &[u8], ch2: &[u8], session_id: &[u8]) -> Self {
        let mut transcript = Sha256::new();
        transcript.update([MESSAGE_HASH, 0, 0, 32]);
        transcript.update(Sha256::digest(ch1));
        transcript.update(hrr);
        transcript.update(ch2);
        ServerFlight13 {
            state: State::ExpectServerHello,
            transcript,
            session_id: session_id.to_vec(),
            retried: true,
        }
    }

    /// The transcript hash so far (through ServerHello once it is in: the handshake
    /// secrets' context).
    pub fn transcript_hash(&self) -> [u8; 32] {
        self.transcript.clone().finalize().into()
    }

    /// The transcript hash through what was fed and then `more` (whole handshake messages
    /// of our own, e.g. the client's Certificate before its Finished).
    pub fn transcript_hash_with(&self, more: &[u8]) -> [u8; 32] {
        let mut t = self.transcript.clone();
        t.update(more);
        t.finalize().into()
    }

    /// Feeds the ServerHello (a whole handshake message). A HelloRetryRequest is returned as
    /// such and leaves the machine failed: answering it takes a new ClientHello and machine.
    pub fn on_server_hello(&mut self, m: &[u8]) -> Result<Hello13, ServerError> {
        let r = self.server_hello(m);
        if !matches!(r, Ok(Hello13::Hello { .. })) {
            self.state = State::Failed;
        }
        r
    }

    fn server_hello(&mut self, m: &[u8]) -> Result<Hello13, ServerError> {
        if !matches!(self.state, State::ExpectServerHello) {
            return Err(bad("a second ServerHello"));
        }
        let (typ, body) = split(m)?;
        if typ != hs::SERVER_HELLO {
            return Err(bad(&format!(
                "handshake message {typ} instead of ServerHello"
            )));
        }
        let h = parse_server_hello13(body, &self.session_id)?;
        if self.retried && matches!(h, Hello13::Retry { .. }) {
            return Err(bad("a second HelloRetryRequest"));
        }
        self.transcript.update(m);
        self.state = State::ExpectEncryptedExtensions;
        Ok(h)
    }

    /// Feeds one whole decrypted handshake message of the encrypted flight. Returns the
    /// flight once the server Finished is in; any error is final.
    pub fn on_message(&mut self, m: &[u8]) -> Result<Option<Flight13>, ServerError> {
        let r = self.step(m);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn step(&mut self, m: &[u8]) -> Result<Option<Flight13>, ServerError> {
        let (typ, body) = split(m)?;
        let unexpected = |what: &str| bad(&format!("handshake message {typ} instead of {what}"));
        let state = std::mem::replace(&mut self.state, State::Failed);
        let next = match state {
            State::ExpectEncryptedExtensions => {
                if typ != ENCRYPTED_EXTENSIONS {
                    return Err(unexpected("EncryptedExtensions"));
                }
                let mut r = Reader::new(body, "EncryptedExtensions");
                check_extensions(r.vec16()?, "EncryptedExtensions")?;
                r.end()?;
                State::ExpectCertificate { requested: None }
            }
            State::ExpectCertificate { requested } => match typ {
                hs::CERTIFICATE_REQUEST if requested.is_none() => {
                    let mut r = Reader::new(body, "CertificateRequest");
                    let context = r.vec8()?.to_vec();
                    check_extensions(r.vec16()?, "CertificateRequest")?;
                    r.end()?;
                    State::ExpectCertificate {
                        requested: Some(context),
                    }
                }
                hs::CERTIFICATE => {
                    let certs = parse_certificate13(body)?;
                    self.transcript.update(m);
                    self.state = State::ExpectCertificateVerify {
                        requested,
                        certs,
                        hash: self.transcript_hash(),
                    };
                    return Ok(None);
                }
                _ => return Err(unexpected("Certificate")),
            },
            State::ExpectCertificateVerify {
                requested,
                certs,
                hash,
            } => {
                if typ != CERTIFICATE_VERIFY {
                    return Err(unexpected("CertificateVerify"));
                }
                let mut r = Reader::new(body, "CertificateVerify");
                let scheme = r.u16()?;
                let signature = r.vec16()?.to_vec();
                r.end()?;
                self.transcript.update(m);
                self.state = State::ExpectFinished(Box::new(Flight13 {
                    certs,
                    scheme,
                    signature,
                    finished: [0; 32],
                    certificate_request: requested,
                    hash_through_certificate: hash,
                    hash_through_certificate_verify: self.transcript_hash(),
                    hash_through_finished: [0; 32],
                }));
                return Ok(None);
            }
            State::ExpectFinished(mut f) => {
                if typ != FINISHED {
                    return Err(unexpected("Finished"));
                }
                f.finished = body
                    .try_into()
                    .map_err(|_| bad("a Finished that is not 32 bytes"))?;
                self.transcript.update(m);
                f.hash_through_finished = self.transcript_hash();
                self.state = State::Done;
                return Ok(Some(*f));
            }
            State::ExpectServerHello => return Err(bad("an encrypted message before ServerHello")),
            State::Done | State::Failed => {
                return Err(bad("a handshake message after the server's Finished"))
            }
        };
        self.transcript.update(m);
        self.state = next;
        Ok(None)
    }
}

/// A handshake message's type and body.
fn split(m: &[u8]) -> Result<(u8, &[u8]), ServerError> {
    if m.len() < 4 {
        return Err(CodecError::Truncated("handshake message").into());
    }
    let len = usize::from(m[1]) << 16 | usize::from(m[2]) << 8 | usize::from(m[3]);
    if m.len() != 4 + len {
        return Err(CodecError::Truncated("handshake message").into());
    }
    Ok((m[0], &m[4..]))
}

/// Parses a TLS 1.3 Certificate body from the server: an empty request context, then each
/// certificate with its extensions; returns the DER certificates, end entity first.
pub fn parse_certificate13(body: &[u8]) -> Result<Vec<Vec<u8>>, CodecError> {
    let mut r = Reader::new(body, "Certificate");
    if !r.vec8()?.is_empty() {
        return Err(CodecError::Invalid(
            "the server's Certificate has a request context".into(),
        ));
    }
    let list = r.vec24()?;
    r.end()?;
    certificate_list(list, true)
}

/// What a server's CertificateVerify signs (RFC 8446 §4.4.3): 64 spaces, the context string,
/// a zero byte, the transcript hash through Certificate.
pub fn certificate_verify_message(hash_through_certificate: &[u8; 32]) -> Vec<u8> {
    let mut m = vec![0x20; 64];
    m.extend_from_slice(b"TLS 1.3, server CertificateVerify");
    m.push(0);
    m.extend_from_slice(hash_through_certificate);
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::codec::handshake_message;

    fn hello_body(random: [u8; 32], sid: &[u8], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend(random);
        b.push(sid.len() as u8);
        b.extend(sid);
        b.extend(TLS_AES_128_GCM_SHA256.to_be_bytes());
        b.push(0);
        let mut e = Vec::new();
        for (c, d) in exts {
            e.extend(c.to_be_bytes());
            e.extend((d.len() as u16).to_be_bytes());
            e.extend(d);
        }
        b.extend((e.len() as u16).to_be_bytes());
        b.extend(e);
        b
    }

    fn share(key: &[u8]) -> Vec<u8> {
        let mut d = SECP256R1.to_be_bytes().to_vec();
        d.extend((key.len() as u16).to_be_bytes());
        d.extend(key);
        d
    }

    fn versions() -> (u16, Vec<u8>) {
        (EXT_SUPPORTED_VERSIONS, vec![3, 4])
    }

    #[test]
    fn server_hellos_and_retries() {
        let sid = [7u8; 32];
        let b = hello_body(
            [1; 32],
            &sid,
            &[versions(), (EXT_KEY_SHARE, share(&[4; 65]))],
        );
        assert_eq!(
            parse_server_hello13(&b, &sid).unwrap(),
            Hello13::Hello {
                random: [1; 32],
                group: SECP256R1,
                key: vec![4; 65]
            }
        );
        assert!(
            parse_server_hello13(&b, &[8; 32]).is_err(),
            "session id not echoed"
        );
        let hrr = hello_body(
            HELLO_RETRY_RANDOM,
            &sid,
            &[
                versions(),
                (EXT_KEY_SHARE, SECP256R1.to_be_bytes().to_vec()),
            ],
        );
        assert_eq!(
            parse_server_hello13(&hrr, &sid).unwrap(),
            Hello13::Retry {
                group: SECP256R1,
                cookie: None
            }
        );
        let with_cookie = hello_body(
            HELLO_RETRY_RANDOM,
            &sid,
            &[
                versions(),
                (EXT_KEY_SHARE, SECP256R1.to_be_bytes().to_vec()),
                (EXT_COOKIE, vec![0, 2, 0xc0, 0x0c]),
            ],
        );
        assert_eq!(
            parse_server_hello13(&with_cookie, &sid).unwrap(),
            Hello13::Retry {
                group: SECP256R1,
                cookie: Some(vec![0xc0, 0x0c])
            }
        );
        // A cookie only in a retry.
        let b = hello_body(
            [1; 32],
            &sid,
            &[
                versions(),
                (EXT_KEY_SHARE, share(&[4; 65])),
                (EXT_COOKIE, vec![0, 2, 0xc0, 0x0c]),
            ],
        );
        assert!(parse_server_hello13(&b, &sid).is_err());
        for exts in [
            vec![(EXT_KEY_SHARE, share(&[4; 65]))],
            vec![versions()],
            vec![
                (EXT_SUPPORTED_VERSIONS, vec![3, 3]),
                (EXT_KEY_SHARE, share(&[4; 65])),
            ],
            vec![versions(), versions(), (EXT_KEY_SHARE, share(&[4; 65]))],
            vec![versions(), (EXT_KEY_SHARE, share(&[4; 65])), (0, vec![])],
            vec![versions(), (EXT_KEY_SHARE, [0, 29, 0, 1, 9].to_vec())],
        ] {
            let b = hello_body([1; 32], &sid, &exts);
            assert!(parse_server_hello13(&b, &sid).is_err(), "{exts:?}");
        }
    }

    fn certificate(certs: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in certs {
            list.extend(&(c.len() as u32).to_be_bytes()[1..]);
            list.extend(*c);
            list.extend([0, 0]);
        }
        let mut b = vec![0];
        b.extend(&(list.len() as u32).to_be_bytes()[1..]);
        b.extend(list);
        handshake_message(hs::CERTIFICATE, &b)
    }

    #[test]
    fn the_encrypted_flight_in_order_with_its_hashes() {
        let ch = handshake_message(hs::CLIENT_HELLO, &[1, 2, 3]);
        let sh = handshake_message(
            hs::SERVER_HELLO,
            &hello_body(
                [1; 32],
                &[],
                &[versions(), (EXT_KEY_SHARE, share(&[4; 65]))],
            ),
        );
        let ee = handshake_message(ENCRYPTED_EXTENSIONS, &[0, 0]);
        let cr = handshake_message(hs::CERTIFICATE_REQUEST, &[0, 0, 4, 0, 13, 0, 0]);
        let cert = certificate(&[&[9, 9, 9], &[8]]);
        let cv = handshake_message(CERTIFICATE_VERIFY, &[4, 3, 0, 2, 0xaa, 0xbb]);
        let fin = handshake_message(FINISHED, &[5; 32]);
        let mut m = ServerFlight13::new(&ch, &[]);
        assert!(matches!(
            m.on_server_hello(&sh).unwrap(),
            Hello13::Hello { .. }
        ));
        let h = |parts: &[&[u8]]| -> [u8; 32] {
            let mut d = Sha256::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().into()
        };
        assert_eq!(m.transcript_hash(), h(&[&ch, &sh]));
        for x in [&ee, &cr, &cert, &cv] {
            assert!(m.on_message(x).unwrap().is_none());
        }
        let f = m.on_message(&fin).unwrap().unwrap();
        assert_eq!(f.certs, vec![vec![9, 9, 9], vec![8]]);
        assert_eq!((f.scheme, &f.signature[..]), (0x0403, &[0xaa, 0xbb][..]));
        assert!(f.certificate_request.is_some());
        assert_eq!(f.finished, [5; 32]);
        assert_eq!(f.hash_through_certificate, h(&[&ch, &sh, &ee, &cr, &cert]));
        assert_eq!(
            f.hash_through_certificate_verify,
            h(&[&ch, &sh, &ee, &cr, &cert, &cv])
        );
        assert_eq!(
            f.hash_through_finished,
            h(&[&ch, &sh, &ee, &cr, &cert, &cv, &fin])
        );
        assert!(m.on_message(&fin).is_err(), "nothing after the Finished");

        // Out of order, or malformed: refused, and the machine stays failed.
        for bad_flight in [
            vec![cert.clone()],
            vec![ee.clone(), cv.clone()],
            vec![ee.clone(), cr.clone(), cr.clone()],
            vec![ee.clone(), cert.clone(), fin.clone()],
            vec![ee.clone(), certificate(&[])],
            vec![
                ee.clone(),
                cert.clone(),
                cv.clone(),
                handshake_message(FINISHED, &[5; 31]),
            ],
            vec![handshake_message(ENCRYPTED_EXTENSIONS, &[0, 4, 0, 1, 0, 5])],
            vec![handshake_message(
                ENCRYPTED_EXTENSIONS,
                &[0, 8, 0, 1, 0, 0, 0, 1, 0, 0],
            )],
        ] {
            let mut m = ServerFlight13::new(&ch, &[]);
            m.on_server_hello(&sh).unwrap();
            let r: Result<Vec<_>, _> = bad_flight.iter().map(|x| m.on_message(x)).collect();
            assert!(r.is_err(), "{bad_flight:?} was taken");
            assert!(m.on_message(&ee).is_err());
        }
        // A Certificate with a request context is not the server's.
        assert!(parse_certificate13(&[1, 0x42, 0, 0, 0]).is_err());
        assert!(parse_certificate13(&[0, 0, 0, 6, 0, 0, 1, 9, 0, 0]).is_ok());
    }

    #[test]
    fn the_signed_content_of_certificate_verify() {
        let m = certificate_verify_message(&[0xab; 32]);
        assert_eq!(m.len(), 64 + 33 + 1 + 32);
        assert!(m[..64].iter().all(|&b| b == 0x20));
        assert_eq!(&m[64..97], b"TLS 1.3, server CertificateVerify");
        assert_eq!(m[97], 0);
    }
}
