//! The canonical binary encoding of a [`Notarization`]: what the group signs. Big-endian
//! integers, strings and lists with a 16-bit length, fields in declaration order, a magic
//! and the version first. Decoding accepts exactly the bytes encoding produces (no trailing
//! bytes, booleans 0 or 1, UTF-8 strings), so one notarization has one encoding.

use crate::{CommitteeMember, HttpRequest, Notarization, NullifierClaim, PredicateResult, VERSION};

/// The first bytes of every encoded notarization.
const MAGIC: &[u8] = b"tessera-notarization";

/// Why bytes are not a canonical notarization.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a notarization.
    #[error("not a Tessera notarization (bad magic)")]
    Magic,
    /// A version this crate does not read.
    #[error("notarization version {0} is not supported (this build reads version {VERSION})")]
    Version(u16),
    /// Ended early.
    #[error("the notarization is truncated")]
    Truncated,
    /// Bytes after the end.
    #[error("{0} bytes after the end of the notarization")]
    Trailing(usize),
    /// A field's bytes are not valid.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A string or list longer than the encoding allows.
    #[error("{0} is too long to encode")]
    TooLong(&'static str),
}

struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    fn b32(&mut self, v: &[u8; 32]) {
        self.0.extend_from_slice(v);
    }
    fn len(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        let n = u16::try_from(n).map_err(|_| DecodeError::TooLong(what))?;
        self.u16(n);
        Ok(())
    }
    fn str(&mut self, s: &str, what: &'static str) -> Result<(), DecodeError> {
        self.len(s.len(), what)?;
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid(what)),
        }
    }
    fn b32(&mut self) -> Result<[u8; 32], DecodeError> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    fn str(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n = self.u16()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| DecodeError::Invalid(what))
    }
}

impl Notarization {
    /// The canonical encoding (what the group signs).
    pub fn to_bytes(&self) -> Result<Vec<u8>, DecodeError> {
        let mut w = W(Vec::with_capacity(512));
        w.0.extend_from_slice(MAGIC);
        w.u16(self.version);
        w.str(&self.server_name, "server name")?;
        w.u64(self.time);
        w.u16(self.tls_version);
        w.u16(self.cipher_suite);
        w.b32(&self.cert_chain_hash);
        w.b32(&self.handshake_hash);
        w.b32(&self.sent_hash);
        w.b32(&self.received_hash);
        w.u32(self.sent_records);
        w.u64(self.sent_bytes);
        w.u32(self.received_records);
        w.u64(self.received_bytes);
        w.bool(self.close_notify);
        w.str(&self.request.method, "request method")?;
        w.str(&self.request.target, "request target")?;
        w.str(&self.request.host, "host")?;
        w.u16(self.status);
        w.b32(&self.commitment_root);
        w.len(self.predicates.len(), "predicate list")?;
        for p in &self.predicates {
            w.str(&p.expr, "predicate")?;
            match &p.resolved {
                None => w.u8(0),
                Some(r) => {
                    w.u8(1);
                    w.str(r, "resolved date")?;
                }
            }
            w.bool(p.result);
        }
        w.len(self.nullifiers.len(), "nullifier list")?;
        for n in &self.nullifiers {
            w.str(&n.scope, "scope")?;
            w.len(n.fields.len(), "nullifier fields")?;
            for f in &n.fields {
                w.str(f, "nullifier field")?;
            }
            w.b32(&n.value);
        }
        w.b32(&self.session_nonce);
        w.u64(self.epoch);
        w.str(&self.group_key_id, "group key id")?;
        w.len(self.committee.len(), "committee")?;
        for m in &self.committee {
            w.u16(m.node_id);
            w.str(&m.tee, "TEE")?;
            w.str(&m.measurement, "measurement")?;
            w.bool(m.simulated);
        }
        w.bool(self.simulated);
        Ok(w.0)
    }

    /// Decodes a canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = R(bytes);
        if r.take(MAGIC.len()).map_err(|_| DecodeError::Magic)? != MAGIC {
            return Err(DecodeError::Magic);
        }
        let version = r.u16()?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let server_name = r.str("server name")?;
        let time = r.u64()?;
        let tls_version = r.u16()?;
        let cipher_suite = r.u16()?;
        let cert_chain_hash = r.b32()?;
        let handshake_hash = r.b32()?;
        let sent_hash = r.b32()?;
        let received_hash = r.b32()?;
        let sent_records = r.u32()?;
        let sent_bytes = r.u64()?;
        let received_records = r.u32()?;
        let received_bytes = r.u64()?;
        let close_notify = r.bool("close_notify")?;
        let request = HttpRequest {
            method: r.str("request method")?,
            target: r.str("request target")?,
            host: r.str("host")?,
        };
        let status = r.u16()?;
        let commitment_root = r.b32()?;
        let np = r.u16()?;
        let mut predicates = Vec::with_capacity(np as usize);
        for _ in 0..np {
            let expr = r.str("predicate")?;
            let resolved = match r.u8()? {
                0 => None,
                1 => Some(r.str("resolved date")?),
                _ => return Err(DecodeError::Invalid("resolved date marker")),
            };
            let result = r.bool("predicate result")?;
            predicates.push(PredicateResult {
                expr,
                resolved,
                result,
            });
        }
        let nn = r.u16()?;
        let mut nullifiers = Vec::with_capacity(nn as usize);
        for _ in 0..nn {
            let scope = r.str("scope")?;
            let nf = r.u16()?;
            let mut fields = Vec::with_capacity(nf as usize);
            for _ in 0..nf {
                fields.push(r.str("nullifier field")?);
            }
            let value = r.b32()?;
            nullifiers.push(NullifierClaim {
                scope,
                fields,
                value,
            });
        }
        let session_nonce = r.b32()?;
        let epoch = r.u64()?;
        let group_key_id = r.str("group key id")?;
        let nc = r.u16()?;
        let mut committee = Vec::with_capacity(nc as usize);
        for _ in 0..nc {
            committee.push(CommitteeMember {
                node_id: r.u16()?,
                tee: r.str("TEE")?,
                measurement: r.str("measurement")?,
                simulated: r.bool("simulated flag")?,
            });
        }
        let simulated = r.bool("simulated flag")?;
        if !r.0.is_empty() {
            return Err(DecodeError::Trailing(r.0.len()));
        }
        Ok(Notarization {
            version,
            server_name,
            time,
            tls_version,
            cipher_suite,
            cert_chain_hash,
            handshake_hash,
            sent_hash,
            received_hash,
            sent_records,
            sent_bytes,
            received_records,
            received_bytes,
            close_notify,
            request,
            status,
            commitment_root,
            predicates,
            nullifiers,
            session_nonce,
            epoch,
            group_key_id,
            committee,
            simulated,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Notarization {
        Notarization {
            version: VERSION,
            server_name: "provider.example".into(),
            time: 1_763_700_000,
            tls_version: 0x0303,
            cipher_suite: 0xC02B,
            cert_chain_hash: [1; 32],
            handshake_hash: [2; 32],
            sent_hash: [3; 32],
            received_hash: [4; 32],
            sent_records: 1,
            sent_bytes: 120,
            received_records: 2,
            received_bytes: 900,
            close_notify: true,
            request: HttpRequest {
                method: "GET".into(),
                target: "/api/me".into(),
                host: "provider.example".into(),
            },
            status: 200,
            commitment_root: [5; 32],
            predicates: vec![
                PredicateResult {
                    expr: "$.user.birthdate<=today-18y".into(),
                    resolved: Some("2007-11-21".into()),
                    result: true,
                },
                PredicateResult {
                    expr: r#"$.user.nationality in ["DE","FR","NL"]"#.into(),
                    resolved: None,
                    result: false,
                },
            ],
            nullifiers: vec![NullifierClaim {
                scope: "vote.example/2026".into(),
                fields: vec!["$.user.name:text".into(), "$.user.birthdate:date".into()],
                value: [6; 32],
            }],
            session_nonce: [7; 32],
            epoch: 1,
            group_key_id: "0011223344556677".into(),
            committee: (1..=3)
                .map(|i| CommitteeMember {
                    node_id: i,
                    tee: "sgx".into(),
                    measurement: "ab".repeat(32),
                    simulated: true,
                })
                .collect(),
            simulated: true,
        }
    }

    #[test]
    fn round_trips_and_rejects_every_truncation_and_trailing_bytes() {
        let n = sample();
        let b = n.to_bytes().unwrap();
        assert_eq!(Notarization::from_bytes(&b).unwrap(), n);
        for cut in 0..b.len() {
            assert!(Notarization::from_bytes(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut t = b.clone();
        t.push(0);
        assert_eq!(Notarization::from_bytes(&t), Err(DecodeError::Trailing(1)));
        let mut v = b.clone();
        v[MAGIC.len() + 1] = 1;
        assert_eq!(Notarization::from_bytes(&v), Err(DecodeError::Version(1)));
        assert_eq!(
            DecodeError::Version(1).to_string(),
            "notarization version 1 is not supported (this build reads version 2)"
        );
        let mut m = b;
        m[0] ^= 1;
        assert_eq!(Notarization::from_bytes(&m), Err(DecodeError::Magic));
    }

    #[test]
    fn any_change_changes_the_encoding() {
        let base = sample().to_bytes().unwrap();
        let mut variants = Vec::new();
        let mut n = sample();
        n.time += 1;
        variants.push(n);
        let mut n = sample();
        n.predicates[0].result = false;
        variants.push(n);
        let mut n = sample();
        n.nullifiers[0].value[31] ^= 1;
        variants.push(n);
        let mut n = sample();
        n.committee[2].simulated = false;
        variants.push(n);
        let mut n = sample();
        n.server_name.push('x');
        variants.push(n);
        let mut n = sample();
        n.predicates[1].expr = r#"$.user.nationality in ["DE","FR"]"#.into();
        variants.push(n);
        for v in variants {
            assert_ne!(v.to_bytes().unwrap(), base);
        }
    }

    #[test]
    fn the_request_line_host_and_status_are_signed() {
        let base = sample().to_bytes().unwrap();
        let mut variants = Vec::new();
        let mut n = sample();
        n.request.method = "POST".into();
        variants.push(n);
        let mut n = sample();
        n.request.target = "/api/me?x=1".into();
        variants.push(n);
        let mut n = sample();
        n.request.host = "evil.example".into();
        variants.push(n);
        let mut n = sample();
        n.status = 404;
        variants.push(n);
        // Moving bytes between adjacent strings changes the encoding too (length prefixes).
        let mut n = sample();
        n.request.method = "GET/".into();
        n.request.target = "api/me".into();
        variants.push(n);
        let mut n = sample();
        n.request.target = "/api/meprovider".into();
        n.request.host = ".example".into();
        variants.push(n);
        let mut seen = vec![base.clone()];
        for v in variants {
            let b = v.to_bytes().unwrap();
            assert!(!seen.contains(&b));
            assert_eq!(Notarization::from_bytes(&b).unwrap(), v);
            seen.push(b);
        }
    }

    #[test]
    fn request_and_status_follow_close_notify() {
        let n = sample();
        let b = n.to_bytes().unwrap();
        // magic, version, server name, time, TLS version, suite, 4 hashes, counts.
        let at = MAGIC.len() + 2 + 2 + n.server_name.len() + 8 + 2 + 2 + 4 * 32 + 4 + 8 + 4 + 8;
        assert_eq!(b[at], 1, "close_notify");
        let mut want = Vec::new();
        for s in ["GET", "/api/me", "provider.example"] {
            want.extend_from_slice(&(s.len() as u16).to_be_bytes());
            want.extend_from_slice(s.as_bytes());
        }
        want.extend_from_slice(&200u16.to_be_bytes());
        want.extend_from_slice(&n.commitment_root);
        assert_eq!(&b[at + 1..at + 1 + want.len()], &want[..]);
    }

    #[test]
    fn too_long_strings_are_refused_not_truncated() {
        let mut n = sample();
        n.request.target = "/".repeat(usize::from(u16::MAX) + 1);
        assert_eq!(n.to_bytes(), Err(DecodeError::TooLong("request target")));
        n.request.target = "/".repeat(usize::from(u16::MAX));
        let b = n.to_bytes().unwrap();
        assert_eq!(Notarization::from_bytes(&b).unwrap(), n);
    }

    #[test]
    fn non_utf8_request_strings_are_refused() {
        let n = sample();
        let mut b = n.to_bytes().unwrap();
        let at = b.windows(7).position(|w| w == b"/api/me").unwrap();
        b[at] = 0xff;
        assert_eq!(
            Notarization::from_bytes(&b),
            Err(DecodeError::Invalid("request target"))
        );
    }
}
