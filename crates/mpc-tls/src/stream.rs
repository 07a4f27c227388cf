//! The server's byte stream as events, for the nodes and the client alike: plaintext
//! handshake messages and alerts before ChangeCipherSpec, encrypted records after it; in
//! TLS 1.3 ([`ServerStream::expect_tls13`]), every application-data record after the
//! ServerHello is encrypted and a ChangeCipherSpec is only the middlebox-compatibility one.
//! Sans-IO: push bytes in whatever pieces TCP delivered them, pull events out.

use crate::codec::{Alert, CodecError, ContentType, HandshakeReader, RecordReader};

/// One thing the server sent.
#[derive(Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A whole plaintext handshake message, header included.
    Handshake(Vec<u8>),
    /// A plaintext alert.
    Alert(Alert),
    /// ChangeCipherSpec: everything after it is encrypted.
    ChangeCipherSpec,
    /// An encrypted record (after ChangeCipherSpec), its fragment unopened.
    Encrypted {
        /// The content type from the record header.
        typ: ContentType,
        /// The fragment: explicit nonce, ciphertext, tag.
        payload: Vec<u8>,
    },
}

/// Names and sizes only: events end up in error messages, which should stay short.
impl std::fmt::Debug for ServerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerEvent::Handshake(m) => {
                write!(
                    f,
                    "handshake message {} ({} bytes)",
                    m.first().copied().unwrap_or(0),
                    m.len()
                )
            }
            ServerEvent::Alert(a) => write!(f, "a plaintext {a}"),
            ServerEvent::ChangeCipherSpec => f.write_str("ChangeCipherSpec"),
            ServerEvent::Encrypted { typ, payload } => {
                write!(f, "an encrypted {typ:?} record ({} bytes)", payload.len())
            }
        }
    }
}

/// Turns relayed bytes into [`ServerEvent`]s.
#[derive(Debug, Default)]
pub struct ServerStream {
    records: RecordReader,
    handshake: HandshakeReader,
    encrypted: bool,
    tls13: bool,
}

impl ServerStream {
    /// A stream at its start.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the server.
    pub fn push(&mut self, bytes: &[u8]) {
        self.records.push(bytes);
    }

    /// The server chose TLS 1.3 (its ServerHello was the last event): from now on,
    /// application-data records are [`ServerEvent::Encrypted`] (their content type is inside),
    /// a ChangeCipherSpec is reported and changes nothing (RFC 8446 §5: middlebox
    /// compatibility), and a plaintext handshake message is refused. Fails if bytes of a
    /// plaintext handshake message are still buffered.
    pub fn expect_tls13(&mut self) -> Result<(), CodecError> {
        if self.handshake.has_partial() {
            return Err(CodecError::Invalid(
                "handshake bytes after the TLS 1.3 ServerHello in its record".into(),
            ));
        }
        self.tls13 = true;
        Ok(())
    }

    /// Whether bytes are buffered that do not yet form a whole record or message.
    pub fn has_partial(&self) -> bool {
        self.records.pending() > 0 || self.handshake.has_partial()
    }

    /// The next event, if one is complete.
    pub fn next_event(&mut self) -> Result<Option<ServerEvent>, CodecError> {
        if !self.encrypted {
            if let Some(m) = self.handshake.next_message()? {
                return Ok(Some(ServerEvent::Handshake(m)));
            }
        }
        loop {
            let Some(rec) = self.records.next_record()? else {
                return Ok(None);
            };
            if self.tls13 {
                return match rec.typ {
                    ContentType::ApplicationData => Ok(Some(ServerEvent::Encrypted {
                        typ: rec.typ,
                        payload: rec.payload,
                    })),
                    ContentType::ChangeCipherSpec if rec.payload == [1] => {
                        Ok(Some(ServerEvent::ChangeCipherSpec))
                    }
                    ContentType::ChangeCipherSpec => {
                        Err(CodecError::Invalid("malformed ChangeCipherSpec".into()))
                    }
                    ContentType::Alert => Ok(Some(ServerEvent::Alert(Alert::parse(&rec.payload)?))),
                    ContentType::Handshake => Err(CodecError::Invalid(
                        "a plaintext handshake record after the TLS 1.3 ServerHello".into(),
                    )),
                };
            }
            if self.encrypted {
                return Ok(Some(ServerEvent::Encrypted {
                    typ: rec.typ,
                    payload: rec.payload,
                }));
            }
            match rec.typ {
                ContentType::Handshake => {
                    if rec.payload.is_empty() {
                        return Err(CodecError::Invalid("empty handshake record".into()));
                    }
                    self.handshake.push(&rec.payload);
                    if let Some(m) = self.handshake.next_message()? {
                        return Ok(Some(ServerEvent::Handshake(m)));
                    }
                }
                ContentType::Alert => {
                    return Ok(Some(ServerEvent::Alert(Alert::parse(&rec.payload)?)))
                }
                ContentType::ChangeCipherSpec => {
                    if rec.payload != [1] {
                        return Err(CodecError::Invalid("malformed ChangeCipherSpec".into()));
                    }
                    if self.handshake.has_partial() {
                        return Err(CodecError::Invalid(
                            "ChangeCipherSpec in the middle of a handshake message".into(),
                        ));
                    }
                    self.encrypted = true;
                    return Ok(Some(ServerEvent::ChangeCipherSpec));
                }
                ContentType::ApplicationData => {
                    return Err(CodecError::Invalid(
                        "application data before the handshake finished".into(),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::codec::{encode_record, handshake_message};

    #[test]
    fn events_in_order_whatever_the_split() {
        let hs1 = handshake_message(2, &[1; 10]);
        let hs2 = handshake_message(14, &[]);
        let stream = [
            encode_record(ContentType::Handshake, &[hs1.clone(), hs2.clone()].concat()),
            encode_record(ContentType::ChangeCipherSpec, &[1]),
            encode_record(ContentType::Handshake, &[9; 40]),
            encode_record(ContentType::ApplicationData, &[8; 30]),
        ]
        .concat();
        for step in [1, 3, 7, 1000] {
            let mut s = ServerStream::new();
            let mut ev = Vec::new();
            for piece in stream.chunks(step) {
                s.push(piece);
                while let Some(e) = s.next_event().unwrap() {
                    ev.push(e);
                }
            }
            assert_eq!(ev.len(), 5, "step {step}");
            assert_eq!(ev[0], ServerEvent::Handshake(hs1.clone()));
            assert_eq!(ev[1], ServerEvent::Handshake(hs2.clone()));
            assert_eq!(ev[2], ServerEvent::ChangeCipherSpec);
            assert!(
                matches!(&ev[4], ServerEvent::Encrypted { typ: ContentType::ApplicationData, payload } if payload.len() == 30)
            );
            assert!(!s.has_partial());
        }
    }

    #[test]
    fn tls13_records_after_the_server_hello() {
        let sh = handshake_message(2, &[1; 10]);
        let stream = [
            encode_record(ContentType::Handshake, &sh),
            encode_record(ContentType::ChangeCipherSpec, &[1]),
            encode_record(ContentType::ApplicationData, &[9; 40]),
            encode_record(ContentType::ApplicationData, &[8; 30]),
        ]
        .concat();
        let mut s = ServerStream::new();
        s.push(&stream);
        assert_eq!(s.next_event().unwrap(), Some(ServerEvent::Handshake(sh)));
        s.expect_tls13().unwrap();
        assert_eq!(s.next_event().unwrap(), Some(ServerEvent::ChangeCipherSpec));
        for len in [40, 30] {
            assert!(matches!(
                s.next_event().unwrap(),
                Some(ServerEvent::Encrypted { typ: ContentType::ApplicationData, payload }) if payload.len() == len
            ));
        }
        assert_eq!(s.next_event().unwrap(), None);
        s.push(&encode_record(ContentType::Handshake, &[1; 8]));
        assert!(s.next_event().is_err(), "no plaintext handshake in TLS 1.3");
    }

    #[test]
    fn plaintext_alert_and_bad_ccs() {
        let mut s = ServerStream::new();
        s.push(&encode_record(ContentType::Alert, &[2, 40]));
        assert_eq!(
            s.next_event().unwrap(),
            Some(ServerEvent::Alert(Alert {
                level: 2,
                description: 40
            }))
        );
        let mut s = ServerStream::new();
        s.push(&encode_record(ContentType::ChangeCipherSpec, &[2]));
        assert!(s.next_event().is_err());
        let mut s = ServerStream::new();
        s.push(&encode_record(ContentType::ApplicationData, &[2]));
        assert!(s.next_event().is_err());
    }
}
