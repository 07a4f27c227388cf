//! TLS 1.2 wire formats (RFC 5246, 5288, 7627, 8422): records, handshake messages, the
//! ClientHello we send, the server's first flight, alerts, and the AES-128-GCM record nonce
//! and additional data. Pure functions and incremental readers: no I/O, no clock, and no
//! secret ever passes through here (records are ciphertext by the time they are encoded).

use std::fmt;

/// TLS 1.2 on the wire.
pub const TLS12: u16 = 0x0303;
/// Largest plaintext fragment (RFC 5246 §6.2.1).
pub const MAX_FRAGMENT: usize = 1 << 14;
/// Largest ciphertext fragment we accept (RFC 5246 §6.2.3: 2^14 + 2048).
pub const MAX_CIPHERTEXT: usize = MAX_FRAGMENT + 2048;
/// Record header bytes.
pub const RECORD_HEADER: usize = 5;
/// Bytes of the explicit nonce at the start of an AES-GCM record (RFC 5288 §3).
pub const EXPLICIT_NONCE: usize = 8;
/// Bytes of the GCM tag.
pub const TAG: usize = 16;
/// Largest handshake message we accept (certificate chains included).
pub const MAX_HANDSHAKE: usize = 64 * 1024;

/// Record content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ContentType {
    /// change_cipher_spec (20).
    ChangeCipherSpec,
    /// alert (21).
    Alert,
    /// handshake (22).
    Handshake,
    /// application_data (23).
    ApplicationData,
}

impl ContentType {
    /// The wire byte.
    pub fn byte(self) -> u8 {
        match self {
            ContentType::ChangeCipherSpec => 20,
            ContentType::Alert => 21,
            ContentType::Handshake => 22,
            ContentType::ApplicationData => 23,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            20 => ContentType::ChangeCipherSpec,
            21 => ContentType::Alert,
            22 => ContentType::Handshake,
            23 => ContentType::ApplicationData,
            _ => return None,
        })
    }
}

/// The cipher suites Tessera offers (both AES-128-GCM with SHA-256, RFC 5289).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CipherSuite {
    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xC02B).
    EcdheEcdsaAes128GcmSha256,
    /// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (0xC02F).
    EcdheRsaAes128GcmSha256,
    /// TLS_AES_128_GCM_SHA256 (0x1301), TLS 1.3's (offered separately: not in [`Self::ALL`]).
    Aes128GcmSha256,
}

impl CipherSuite {
    /// Every suite we offer, in preference order.
    pub const ALL: [CipherSuite; 2] = [
        CipherSuite::EcdheEcdsaAes128GcmSha256,
        CipherSuite::EcdheRsaAes128GcmSha256,
    ];
    /// The IANA code point.
    pub fn code(self) -> u16 {
        match self {
            CipherSuite::EcdheEcdsaAes128GcmSha256 => 0xC02B,
            CipherSuite::EcdheRsaAes128GcmSha256 => 0xC02F,
            CipherSuite::Aes128GcmSha256 => 0x1301,
        }
    }
    /// The TLS 1.2 suite with this code point, if we offer it.
    pub fn from_code(c: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == c)
    }
    /// Whether the server's certificate key is ECDSA (else RSA).
    pub fn is_ecdsa(self) -> bool {
        matches!(self, CipherSuite::EcdheEcdsaAes128GcmSha256)
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CipherSuite::EcdheEcdsaAes128GcmSha256 => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            CipherSuite::EcdheRsaAes128GcmSha256 => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            CipherSuite::Aes128GcmSha256 => "TLS_AES_128_GCM_SHA256",
        })
    }
}

/// The named group we offer: secp256r1 (23).
pub const SECP256R1: u16 = 23;

/// Signature schemes offered in signature_algorithms, in preference order (RFC 8446 §4.2.3
/// code points, which TLS 1.2 shares): ECDSA P-256/P-384, RSA-PSS, RSA PKCS#1 v1.5.
pub const SIGNATURE_SCHEMES: [u16; 8] = [
    0x0403, 0x0503, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601,
];

/// Extension code points we use.
mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    pub const COOKIE: u16 = 44;
    pub const KEY_SHARE: u16 = 51;
    pub const RENEGOTIATION_INFO: u16 = 0xff01;
}

/// Handshake message types.
pub mod hs {
    /// client_hello.
    pub const CLIENT_HELLO: u8 = 1;
    /// server_hello.
    pub const SERVER_HELLO: u8 = 2;
    /// certificate.
    pub const CERTIFICATE: u8 = 11;
    /// server_key_exchange.
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    /// certificate_request.
    pub const CERTIFICATE_REQUEST: u8 = 13;
    /// server_hello_done.
    pub const SERVER_HELLO_DONE: u8 = 14;
    /// client_key_exchange.
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    /// finished.
    pub const FINISHED: u8 = 20;
    /// certificate_status (RFC 6066), which we do not request.
    pub const CERTIFICATE_STATUS: u8 = 22;
}

/// A malformed or unexpected message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// A record header with an unknown content type.
    #[error("record with unknown content type {0}")]
    ContentType(u8),
    /// A record header whose version is not TLS 1.x.
    #[error("record with version {0:#06x}, not TLS 1.x")]
    RecordVersion(u16),
    /// A record longer than the protocol allows.
    #[error("record of {0} bytes exceeds the {MAX_CIPHERTEXT}-byte limit")]
    RecordTooLong(usize),
    /// A handshake message longer than we accept.
    #[error("handshake message of {0} bytes exceeds the {MAX_HANDSHAKE}-byte limit")]
    HandshakeTooLong(usize),
    /// A message shorter than its fields.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// Bytes left over after a message's fields.
    #[error("{0} has trailing bytes")]
    Trailing(&'static str),
    /// A field with a value we do not accept.
    #[error("{0}")]
    Invalid(String),
}

/// A cursor over bytes received from the peer.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8], what: &'static str) -> Self {
        Reader { b, what }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.b.len() < n {
            return Err(CodecError::Truncated(self.what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u24(&mut self) -> Result<usize, CodecError> {
        let b = self.take(3)?;
        Ok(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
    pub(crate) fn vec8(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u8()?;
        self.take(n.into())
    }
    pub(crate) fn vec16(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u16()?;
        self.take(n.into())
    }
    pub(crate) fn vec24(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.u24()?;
        self.take(n)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.b.is_empty()
    }
    pub(crate) fn end(&self) -> Result<(), CodecError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Trailing(self.what))
        }
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u24(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
}

fn put_vec16(out: &mut Vec<u8>, body: &[u8]) {
    put_u16(out, body.len() as u16);
    out.extend_from_slice(body);
}

/// One record as read off the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// Its content type.
    pub typ: ContentType,
    /// Its fragment (ciphertext once encryption is on).
    pub payload: Vec<u8>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Record({:?}, {} bytes)", self.typ, self.payload.len())
    }
}

/// Encodes a record with the TLS 1.2 version.
pub fn encode_record(typ: ContentType, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER + payload.len());
    out.push(typ.byte());
    put_u16(&mut out, TLS12);
    put_vec16(&mut out, payload);
    out
}

/// Splits a byte stream into records, whatever the TCP read boundaries.
#[derive(Debug, Default)]
pub struct RecordReader {
    buf: Vec<u8>,
}

impl RecordReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// Bytes buffered that do not yet form a record.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
    /// The next complete record, if buffered. A malformed header is an error (the stream
    /// cannot be resynchronised).
    pub fn next_record(&mut self) -> Result<Option<Record>, CodecError> {
        if self.buf.len() < RECORD_HEADER {
            return Ok(None);
        }
        let typ =
            ContentType::from_byte(self.buf[0]).ok_or(CodecError::ContentType(self.buf[0]))?;
        let version = u16::from_be_bytes([self.buf[1], self.buf[2]]);
        if version >> 8 != 3 {
            return Err(CodecError::RecordVersion(version));
        }
        let len = usize::from(u16::from_be_bytes([self.buf[3], self.buf[4]]));
        if len > MAX_CIPHERTEXT {
            return Err(CodecError::RecordTooLong(len));
        }
        if self.buf.len() < RECORD_HEADER + len {
            return Ok(None);
        }
        let payload = self.buf[RECORD_HEADER..RECORD_HEADER + len].to_vec();
        self.buf.drain(..RECORD_HEADER + len);
        Ok(Some(Record { typ, payload }))
    }
}

/// Joins handshake-record payloads and splits them into whole handshake messages (a message
/// may span records, a record may hold several messages).
#[derive(Debug, Default)]
pub struct HandshakeReader {
    buf: Vec<u8>,
}

impl HandshakeReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a handshake record's payload.
    pub fn push(&mut self, payload: &[u8]) {
        self.buf.extend_from_slice(payload);
    }
    /// Whether a partial message is buffered.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty()
    }
    /// The next whole message, header included (as the transcript hash needs it).
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, CodecError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = usize::from(self.buf[1]) << 16
            | usize::from(self.buf[2]) << 8
            | usize::from(self.buf[3]);
        if len > MAX_HANDSHAKE {
            return Err(CodecError::HandshakeTooLong(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let m = self.buf[..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(m))
    }
}

/// Wraps a handshake body in its 4-byte header.
pub fn handshake_message(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.push(typ);
    put_u24(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// Whether a server name is a syntactically valid DNS name for SNI (RFC 6066 §3: no IP
/// literal, no trailing dot).
pub fn valid_sni(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.ends_with('.')
        && name.parse::<std::net::IpAddr>().is_err()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The ClientHello handshake message (header included): TLS 1.2, no session id, our two
/// suites, no compression, and SNI (when `server_name` is a DNS name), supported_groups
/// {secp256r1}, ec_point_formats {uncompressed}, signature_algorithms, extended_master_secret
/// and an empty renegotiation_info. Deterministic: every node builds the same bytes.
pub fn client_hello(client_random: &[u8; 32], server_name: &str) -> Vec<u8> {
    client_hello_offering(client_random, server_name, None)
}

/// What a ClientHello offering TLS 1.3 as well carries: the client's secp256r1 key share (an
/// uncompressed point), or none (to be asked for one by a HelloRetryRequest).
#[derive(Debug, Clone, Copy)]
pub struct Tls13Offer<'a> {
    /// The key share, or `None` for an empty key_share list.
    pub key_share: Option<&'a [u8]>,
    /// The cookie of a HelloRetryRequest, echoed in the second ClientHello.
    pub cookie: Option<&'a [u8]>,
}

/// The legacy session id of a ClientHello offering TLS 1.3 (RFC 8446 §4.1.2, middlebox
/// compatibility: 32 bytes), derived from the client random so every node builds the same.
pub fn legacy_session_id(client_random: &[u8; 32]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"tessera legacy session id");
    h.update(client_random);
    h.finalize().into()
}

/// The ClientHello of [`client_hello`], and with `tls13` one that offers TLS 1.3 too: the
/// legacy session id of [`legacy_session_id`], `TLS_AES_128_GCM_SHA256` first among the
/// suites, supported_versions {TLS 1.3, TLS 1.2} and a key_share. The TLS 1.2 extensions
/// stay, so a TLS 1.2 server reads it as before.
pub fn client_hello_offering(
    client_random: &[u8; 32],
    server_name: &str,
    tls13: Option<Tls13Offer<'_>>,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(300);
    put_u16(&mut body, TLS12);
    body.extend_from_slice(client_random);
    match tls13 {
        Some(_) => {
            body.push(32);
            body.extend_from_slice(&legacy_session_id(client_random));
        }
        None => body.push(0),
    }
    let mut suites: Vec<u8> = Vec::new();
    if tls13.is_some() {
        put_u16(&mut suites, crate::handshake13::TLS_AES_128_GCM_SHA256);
    }
    suites.extend(CipherSuite::ALL.iter().flat_map(|s| s.code().to_be_bytes()));
    put_vec16(&mut body, &suites);
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut exts = Vec::new();
    let mut push_ext = |code: u16, data: &[u8]| {
        put_u16(&mut exts, code);
        put_vec16(&mut exts, data);
    };
    if valid_sni(server_name) {
        let mut entry = vec![0u8]; // host_name
        put_vec16(&mut entry, server_name.as_bytes());
        let mut list = Vec::new();
        put_vec16(&mut list, &entry);
        push_ext(ext::SERVER_NAME, &list);
    }
    let mut groups = Vec::new();
    put_vec16(&mut groups, &SECP256R1.to_be_bytes());
    push_ext(ext::SUPPORTED_GROUPS, &groups);
    push_ext(ext::EC_POINT_FORMATS, &[1, 0]);
    let schemes: Vec<u8> = SIGNATURE_SCHEMES
        .iter()
        .flat_map(|s| s.to_be_bytes())
        .collect();
    let mut sa = Vec::new();
    put_vec16(&mut sa, &schemes);
    push_ext(ext::SIGNATURE_ALGORITHMS, &sa);
    push_ext(ext::EXTENDED_MASTER_SECRET, &[]);
    push_ext(ext::RENEGOTIATION_INFO, &[0]);
    if let Some(offer) = tls13 {
        push_ext(ext::SUPPORTED_VERSIONS, &[4, 3, 4, 3, 3]);
        let mut shares = Vec::new();
        if let Some(key) = offer.key_share {
            put_u16(&mut shares, SECP256R1);
            put_vec16(&mut shares, key);
        }
        let mut ks = Vec::new();
        put_vec16(&mut ks, &shares);
        push_ext(ext::KEY_SHARE, &ks);
        if let Some(c) = offer.cookie {
            let mut cookie = Vec::new();
            put_vec16(&mut cookie, c);
            push_ext(ext::COOKIE, &cookie);
        }
    }
    put_vec16(&mut body, &exts);
    handshake_message(hs::CLIENT_HELLO, &body)
}

/// What ServerHello told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The server random.
    pub random: [u8; 32],
    /// The suite it chose, as a code point (checked against ours by the caller).
    pub suite: u16,
    /// Whether it echoed extended_master_secret.
    pub extended_master_secret: bool,
    /// The version it selected through supported_versions (TLS 1.3), if it sent that.
    pub selected_version: Option<u16>,
    /// The legacy version field.
    pub version: u16,
}

/// Parses a ServerHello body.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, CodecError> {
    let mut r = Reader::new(body, "ServerHello");
    let version = r.u16()?;
    let mut random = [0u8; 32];
    random.copy_from_slice(r.take(32)?);
    let sid = r.vec8()?;
    if sid.len() > 32 {
        return Err(CodecError::Invalid(
            "ServerHello session id longer than 32 bytes".into(),
        ));
    }
    let suite = r.u16()?;
    let compression = r.u8()?;
    if compression != 0 {
        return Err(CodecError::Invalid(format!(
            "server chose compression method {compression}; only null compression is offered"
        )));
    }
    let mut ems = false;
    let mut selected_version = None;
    if !r.is_empty() {
        let mut e = Reader::new(r.vec16()?, "ServerHello extensions");
        let mut seen = Vec::new();
        while !e.is_empty() {
            let code = e.u16()?;
            let data = e.vec16()?;
            if seen.contains(&code) {
                return Err(CodecError::Invalid(format!(
                    "duplicate ServerHello extension {code}"
                )));
            }
            seen.push(code);
            match code {
                ext::EXTENDED_MASTER_SECRET => {
                    if !data.is_empty() {
                        return Err(CodecError::Invalid(
                            "non-empty extended_master_secret".into(),
                        ));
                    }
                    ems = true;
                }
                ext::SUPPORTED_VERSIONS => {
                    let mut v = Reader::new(data, "supported_versions");
                    selected_version = Some(v.u16()?);
                    v.end()?;
                }
                ext::RENEGOTIATION_INFO if data != [0] => {
                    return Err(CodecError::Invalid("non-empty renegotiation_info".into()));
                }
                // server_name ack, ec_point_formats and others carry nothing we act on.
                _ => {}
            }
        }
        r.end()?;
    }
    Ok(ServerHello {
        random,
        suite,
        extended_master_secret: ems,
        selected_version,
        version,
    })
}

/// Parses a Certificate body into the DER certificates, end entity first.
pub fn parse_certificate(body: &[u8]) -> Result<Vec<Vec<u8>>, CodecError> {
    let mut r = Reader::new(body, "Certificate");
    let list = r.vec24()?;
    r.end()?;
    certificate_list(list, false)
}

/// The DER certificates of a non-empty certificate list, end entity first; with
/// `extensions` (TLS 1.3), each certificate is followed by its extension list.
pub(crate) fn certificate_list(list: &[u8], extensions: bool) -> Result<Vec<Vec<u8>>, CodecError> {
    let mut list = Reader::new(list, "Certificate list");
    let mut certs = Vec::new();
    while !list.is_empty() {
        let c = list.vec24()?;
        if c.is_empty() {
            return Err(CodecError::Invalid("empty certificate in chain".into()));
        }
        if extensions {
            check_extensions(list.vec16()?, "CertificateEntry")?;
        }
        certs.push(c.to_vec());
    }
    if certs.is_empty() {
        return Err(CodecError::Invalid(
            "server sent an empty certificate chain".into(),
        ));
    }
    Ok(certs)
}

/// Checks the structure of an extension list's contents (code, data; no code twice).
pub(crate) fn check_extensions(body: &[u8], what: &'static str) -> Result<(), CodecError> {
    let mut r = Reader::new(body, what);
    let mut seen = Vec::new();
    while !r.is_empty() {
        let code = r.u16()?;
        r.vec16()?;
        if seen.contains(&code) {
            return Err(CodecError::Invalid(format!(
                "{what} repeats extension {code}"
            )));
        }
        seen.push(code);
    }
    Ok(())
}

/// Checks a TLS 1.2 CertificateRequest body (RFC 5246 §7.4.4): at least one certificate
/// type, the signature algorithms (pairs), the certificate authorities (each a non-empty
/// distinguished name), nothing after. Its content does not matter to Tessera, which
/// answers with an empty Certificate: it is checked so a malformed one is refused.
pub fn parse_certificate_request(body: &[u8]) -> Result<(), CodecError> {
    let mut r = Reader::new(body, "CertificateRequest");
    if r.vec8()?.is_empty() {
        return Err(CodecError::Invalid(
            "a CertificateRequest without certificate types".into(),
        ));
    }
    if r.vec16()?.len() % 2 != 0 {
        return Err(CodecError::Invalid(
            "a CertificateRequest's signature algorithms are not pairs".into(),
        ));
    }
    let mut cas = Reader::new(r.vec16()?, "CertificateRequest authorities");
    r.end()?;
    while !cas.is_empty() {
        if cas.vec16()?.is_empty() {
            return Err(CodecError::Invalid(
                "an empty distinguished name in a CertificateRequest".into(),
            ));
        }
    }
    Ok(())
}

/// The Certificate message a client without a certificate sends when asked for one
/// (RFC 5246 §7.4.6): an empty list.
pub fn empty_certificate() -> Vec<u8> {
    handshake_message(hs::CERTIFICATE, &[0, 0, 0])
}

/// An ECDHE ServerKeyExchange (RFC 8422 §5.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeyExchange {
    /// The signed ServerECDHParams bytes (curve type, named curve, point).
    pub params: Vec<u8>,
    /// The server's ephemeral public key, SEC1 uncompressed.
    pub point: Vec<u8>,
    /// The signature scheme.
    pub scheme: u16,
    /// The signature.
    pub signature: Vec<u8>,
}

impl ServerKeyExchange {
    /// What the signature covers: client_random ‖ server_random ‖ params.
    pub fn signed_message(&self, client_random: &[u8; 32], server_random: &[u8; 32]) -> Vec<u8> {
        [&client_random[..], &server_random[..], &self.params].concat()
    }
}

/// Parses an ECDHE ServerKeyExchange body; only named curve secp256r1 is accepted.
pub fn parse_server_key_exchange(body: &[u8]) -> Result<ServerKeyExchange, CodecError> {
    let mut r = Reader::new(body, "ServerKeyExchange");
    let curve_type = r.u8()?;
    if curve_type != 3 {
        return Err(CodecError::Invalid(format!(
            "ServerKeyExchange curve type {curve_type}; only named_curve (3) is supported"
        )));
    }
    let group = r.u16()?;
    if group != SECP256R1 {
        return Err(CodecError::Invalid(format!(
            "server chose group {group}; Tessera supports secp256r1 (23) only"
        )));
    }
    let point = r.vec8()?.to_vec();
    let params_len = body.len() - r.b.len();
    let params = body[..params_len].to_vec();
    let scheme = r.u16()?;
    let signature = r.vec16()?.to_vec();
    r.end()?;
    Ok(ServerKeyExchange {
        params,
        point,
        scheme,
        signature,
    })
}

/// ClientKeyExchange (ECDHE) with our public key, SEC1 uncompressed (65 bytes).
pub fn client_key_exchange(point: &[u8]) -> Vec<u8> {
    let mut body = vec![point.len() as u8];
    body.extend_from_slice(point);
    handshake_message(hs::CLIENT_KEY_EXCHANGE, &body)
}

/// A Finished message (header included) around its 12-byte verify_data.
pub fn finished(verify_data: &[u8; 12]) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..4].copy_from_slice(&[hs::FINISHED, 0, 0, 12]);
    m[4..].copy_from_slice(verify_data);
    m
}

/// Alert levels and descriptions (RFC 5246 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// 1 = warning, 2 = fatal.
    pub level: u8,
    /// The description code.
    pub description: u8,
}

impl Alert {
    /// close_notify.
    pub const CLOSE_NOTIFY: Alert = Alert {
        level: 1,
        description: 0,
    };
    /// Parses a 2-byte alert.
    pub fn parse(b: &[u8]) -> Result<Alert, CodecError> {
        match b {
            [level, description] => Ok(Alert {
                level: *level,
                description: *description,
            }),
            _ => Err(CodecError::Invalid(format!("alert of {} bytes", b.len()))),
        }
    }
    /// Whether this is close_notify.
    pub fn is_close_notify(self) -> bool {
        self.description == 0
    }
    /// The description's name.
    pub fn name(self) -> &'static str {
        match self.description {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            22 => "record_overflow",
            40 => "handshake_failure",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            50 => "decode_error",
            51 => "decrypt_error",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            112 => "unrecognized_name",
            _ => "unknown",
        }
    }
}

impl fmt::Display for Alert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.level == 1 { "warning" } else { "fatal" };
        write!(f, "{level} alert {} ({})", self.name(), self.description)
    }
}

/// The 12-byte AES-GCM nonce: the 4-byte implicit salt from the key block, then the 8-byte
/// explicit nonce carried in the record (RFC 5288 §3).
pub fn gcm_nonce(salt: &[u8; 4], explicit: &[u8; 8]) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(explicit);
    n
}

/// The GCM additional data of a record: seq_num ‖ type ‖ version ‖ plaintext length.
pub fn gcm_aad(seq: u64, typ: ContentType, plaintext_len: usize) -> [u8; 13] {
    let mut a = [0u8; 13];
    a[..8].copy_from_slice(&seq.to_be_bytes());
    a[8] = typ.byte();
    a[9..11].copy_from_slice(&TLS12.to_be_bytes());
    a[11..].copy_from_slice(&(plaintext_len as u16).to_be_bytes());
    a
}

/// The parts of an AES-GCM record fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcmFragment<'a> {
    /// The explicit nonce.
    pub explicit: [u8; 8],
    /// The ciphertext (as long as the plaintext).
    pub ciphertext: &'a [u8],
    /// The tag.
    pub tag: [u8; 16],
}

/// Splits an encrypted record's fragment.
pub fn split_gcm(payload: &[u8]) -> Result<GcmFragment<'_>, CodecError> {
    if payload.len() < EXPLICIT_NONCE + TAG {
        return Err(CodecError::Truncated("AES-GCM record"));
    }
    let ct_len = payload.len() - EXPLICIT_NONCE - TAG;
    if ct_len > MAX_FRAGMENT {
        return Err(CodecError::RecordTooLong(payload.len()));
    }
    let mut explicit = [0u8; 8];
    explicit.copy_from_slice(&payload[..EXPLICIT_NONCE]);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&payload[EXPLICIT_NONCE + ct_len..]);
    Ok(GcmFragment {
        explicit,
        ciphertext: &payload[EXPLICIT_NONCE..EXPLICIT_NONCE + ct_len],
        tag,
    })
}

/// Assembles an encrypted record's fragment.
pub fn join_gcm(explicit: &[u8; 8], ciphertext: &[u8], tag: &[u8; 16]) -> Vec<u8> {
    [&explicit[..], ciphertext, &tag[..]].concat()
}

/// Number of 16-byte AES counter blocks covering `len` bytes.
pub fn blocks_for(len: usize) -> usize {
    len.div_ceil(16)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn records_survive_any_split() {
        let a = encode_record(ContentType::Handshake, &[1, 2, 3]);
        let b = encode_record(ContentType::ApplicationData, &vec![7u8; 300]);
        let stream = [a, b].concat();
        for cut in 0..stream.len() {
            let mut r = RecordReader::new();
            let mut got = Vec::new();
            for piece in [&stream[..cut], &stream[cut..]] {
                r.push(piece);
                while let Some(rec) = r.next_record().unwrap() {
                    got.push(rec);
                }
            }
            assert_eq!(got.len(), 2, "cut {cut}");
            assert_eq!(got[0].payload, [1, 2, 3]);
            assert_eq!(got[1].typ, ContentType::ApplicationData);
            assert_eq!(r.pending(), 0);
        }
    }

    #[test]
    fn bad_record_headers_are_errors() {
        let mut r = RecordReader::new();
        r.push(&[99, 3, 3, 0, 0]);
        assert_eq!(r.next_record(), Err(CodecError::ContentType(99)));
        let mut r = RecordReader::new();
        r.push(&[22, 2, 0, 0, 0]);
        assert_eq!(r.next_record(), Err(CodecError::RecordVersion(0x0200)));
        let mut r = RecordReader::new();
        r.push(&[23, 3, 3, 0x48, 0x01]);
        assert_eq!(r.next_record(), Err(CodecError::RecordTooLong(0x4801)));
    }

    #[test]
    fn handshake_messages_span_and_share_records() {
        let m1 = handshake_message(2, &[9; 70]);
        let m2 = handshake_message(14, &[]);
        let all = [m1.clone(), m2.clone()].concat();
        let mut h = HandshakeReader::new();
        h.push(&all[..30]);
        assert_eq!(h.next_message().unwrap(), None);
        h.push(&all[30..]);
        assert_eq!(h.next_message().unwrap(), Some(m1));
        assert_eq!(h.next_message().unwrap(), Some(m2));
        assert!(!h.has_partial());
    }

    #[test]
    fn client_hello_layout() {
        let ch = client_hello(&[5; 32], "provider.example");
        assert_eq!(ch[0], hs::CLIENT_HELLO);
        let len = usize::from(ch[1]) << 16 | usize::from(ch[2]) << 8 | usize::from(ch[3]);
        assert_eq!(len + 4, ch.len());
        // Version, random, empty session id, two suites.
        assert_eq!(&ch[4..6], &[3, 3]);
        assert_eq!(&ch[6..38], &[5; 32]);
        assert_eq!(&ch[38..43], &[0, 0, 4, 0xC0, 0x2B]);
        assert!(ch.windows(16).any(|w| w == b"provider.example"));
        // No SNI for an IP literal.
        let ip = client_hello(&[5; 32], "127.0.0.1");
        assert!(!ip.windows(9).any(|w| w == b"127.0.0.1"));
    }

    #[test]
    fn server_hello_parse() {
        let mut body = vec![3, 3];
        body.extend([1u8; 32]);
        body.push(0);
        body.extend([0xC0, 0x2F, 0]);
        body.extend([0, 4, 0, 23, 0, 0]);
        let sh = parse_server_hello(&body).unwrap();
        assert_eq!(sh.suite, 0xC02F);
        assert!(sh.extended_master_secret);
        body.push(0);
        assert!(parse_server_hello(&body).is_err());
        assert!(parse_server_hello(&body[..20]).is_err());
    }

    #[test]
    fn ske_parse() {
        let mut body = vec![3, 0, 23, 65];
        body.extend([4u8; 65]);
        body.extend([4, 3, 0, 2, 0xAA, 0xBB]);
        let ske = parse_server_key_exchange(&body).unwrap();
        assert_eq!(ske.params.len(), 69);
        assert_eq!(ske.scheme, 0x0403);
        assert_eq!(ske.signature, [0xAA, 0xBB]);
        body[2] = 29;
        assert!(matches!(
            parse_server_key_exchange(&body),
            Err(CodecError::Invalid(_))
        ));
    }

    #[test]
    fn gcm_fragment_roundtrip() {
        let p = join_gcm(&[1; 8], &[2; 5], &[3; 16]);
        let f = split_gcm(&p).unwrap();
        assert_eq!(f.explicit, [1; 8]);
        assert_eq!(f.ciphertext, [2; 5]);
        assert_eq!(f.tag, [3; 16]);
        assert!(split_gcm(&p[..23]).is_err());
    }

    #[test]
    fn sni_names() {
        assert!(valid_sni("a.example.com"));
        assert!(!valid_sni("10.0.0.1"));
        assert!(!valid_sni("bad_name.com"));
        assert!(!valid_sni("x."));
    }
}
