//! TLS 1.3 record protection in the clear (RFC 8446 §5.2–§5.4) with `TLS_AES_128_GCM_SHA256`,
//! for the keys that may leave the circuit: the handshake traffic keys (every node decrypts
//! and checks the server's encrypted flight itself) and the server application key opened to
//! the client once the response is committed. The nonce is the IV XORed with the record's
//! sequence number; the additional data is the record header; the plaintext ends with the
//! real content type, then zero padding.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{CodecError, ContentType, GcmFragment};

/// HKDF-Expand-Label(secret, label, context, len) for `len` ≤ 32 (RFC 8446 §7.1), in the
/// clear: for the handshake traffic secrets, which the nodes hold once the handshake
/// execution opened them.
pub fn expand_label(
    secret: &[u8; 32],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    let mut info = Vec::with_capacity(4 + 6 + label.len() + context.len());
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push((6 + label.len()) as u8);
    info.extend_from_slice(b"tls13 ");
    info.extend_from_slice(label);
    info.push(context.len() as u8);
    info.extend_from_slice(context);
    info.push(1);
    let mut out = Zeroizing::new(hmac(secret, &info).to_vec());
    out.truncate(len.min(32));
    out
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// A direction's traffic key and IV (RFC 8446 §7.3), erased when dropped.
pub struct TrafficKey {
    /// The AES-128 key.
    pub key: Zeroizing<[u8; 16]>,
    /// The IV.
    pub iv: Zeroizing<[u8; 12]>,
}

impl TrafficKey {
    /// The key and IV of traffic secret `secret`.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let mut key = Zeroizing::new([0u8; 16]);
        let mut iv = Zeroizing::new([0u8; 12]);
        key.copy_from_slice(&expand_label(secret, b"key", &[], 16));
        iv.copy_from_slice(&expand_label(secret, b"iv", &[], 12));
        TrafficKey { key, iv }
    }
}

/// A Finished message's verify_data (RFC 8446 §4.4.4): HMAC over `transcript_hash` with the
/// Finished key of handshake traffic secret `secret`.
pub fn finished_verify_data(secret: &[u8; 32], transcript_hash: &[u8; 32]) -> [u8; 32] {
    let mut fk = expand_label(secret, b"finished", &[], 32);
    let out = hmac(&fk, transcript_hash);
    fk.zeroize();
    out
}

/// Most plaintext bytes in one record (2^14).
pub const MAX_PLAINTEXT: usize = 1 << 14;
/// Most bytes of a protected record's payload: the plaintext, its content type, padding and
/// the tag (2^14 + 256).
pub const MAX_CIPHERTEXT: usize = MAX_PLAINTEXT + 256;
/// Bytes of a GCM tag.
pub const TAG: usize = 16;

/// A record's nonce: the IV with the 64-bit sequence number XORed into its last 8 bytes.
pub fn nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut n = *iv;
    for (b, s) in n[4..].iter_mut().zip(seq.to_be_bytes()) {
        *b ^= s;
    }
    n
}

/// The header of a protected record with a payload of `len` bytes (its additional data):
/// application_data, legacy version 0x0303, the length.
pub fn header(len: usize) -> [u8; 5] {
    let l = (len as u16).to_be_bytes();
    [ContentType::ApplicationData.byte(), 3, 3, l[0], l[1]]
}

/// Why a protected record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record is malformed.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The record does not decrypt under the key: altered, or protected with another key.
    #[error("record {seq} does not authenticate")]
    Tag {
        /// Its sequence number.
        seq: u64,
    },
    /// The plaintext is all padding: it names no content type.
    #[error("record {seq} has no content type (all padding)")]
    NoContentType {
        /// Its sequence number.
        seq: u64,
    },
}

/// Splits the payload of protected record `seq` into its parts as a TLS 1.2 fragment's
/// ([`GcmFragment`]): the sequence number stands where TLS 1.2 has the explicit nonce (it is
/// what the nonce takes from the record), then the ciphertext (the inner plaintext: content,
/// content type, padding), then the tag. The ciphertext is at least one byte (the content
/// type) and at most [`MAX_CIPHERTEXT`] − [`TAG`].
pub fn split(payload: &[u8], seq: u64) -> Result<GcmFragment<'_>, CodecError> {
    if payload.len() > MAX_CIPHERTEXT {
        return Err(CodecError::RecordTooLong(payload.len()));
    }
    let (ciphertext, tag) = payload
        .split_at_checked(payload.len().saturating_sub(TAG))
        .filter(|(c, t)| !c.is_empty() && t.len() == TAG)
        .ok_or(CodecError::Truncated("TLS 1.3 record"))?;
    let mut t = [0u8; TAG];
    t.copy_from_slice(tag);
    Ok(GcmFragment {
        explicit: seq.to_be_bytes(),
        ciphertext,
        tag: t,
    })
}

/// Removes the protection of record `seq` (its payload, after the 5-byte header): returns the
/// inner content type byte and the plaintext without it and its padding. The content type is
/// returned as sent: what is acceptable where is the caller's decision.
pub fn open(
    key: &[u8; 16],
    iv: &[u8; 12],
    seq: u64,
    payload: &[u8],
) -> Result<(u8, Vec<u8>), RecordError> {
    if payload.len() > MAX_CIPHERTEXT {
        return Err(CodecError::RecordTooLong(payload.len()).into());
    }
    let (ct, tag) = payload
        .split_at_checked(payload.len().saturating_sub(TAG))
        .filter(|(_, t)| t.len() == TAG)
        .ok_or(CodecError::Truncated("TLS 1.3 record"))?;
    let mut buf = ct.to_vec();
    Aes128Gcm::new(key.into())
        .decrypt_in_place_detached(
            (&nonce(iv, seq)).into(),
            &header(payload.len()),
            &mut buf,
            aes_gcm::Tag::from_slice(tag),
        )
        .map_err(|_| RecordError::Tag { seq })?;
    let end = buf
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(RecordError::NoContentType { seq })?;
    let typ = buf[end];
    buf.truncate(end);
    if buf.len() > MAX_PLAINTEXT {
        return Err(CodecError::RecordTooLong(buf.len()).into());
    }
    Ok((typ, buf))
}

/// Protects `plaintext` of content type `typ` as record `seq` (no padding): the whole record,
/// header included.
pub fn seal(
    key: &[u8; 16],
    iv: &[u8; 12],
    seq: u64,
    typ: ContentType,
    plaintext: &[u8],
) -> Result<Vec<u8>, RecordError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(CodecError::RecordTooLong(plaintext.len()).into());
    }
    let mut buf = Vec::with_capacity(5 + plaintext.len() + 1 + TAG);
    buf.extend_from_slice(plaintext);
    buf.push(typ.byte());
    let h = header(buf.len() + TAG);
    let tag = Aes128Gcm::new(key.into())
        .encrypt_in_place_detached((&nonce(iv, seq)).into(), &h, &mut buf)
        .map_err(|_| RecordError::Tag { seq })?;
    let mut out = h.to_vec();
    out.extend_from_slice(&buf);
    out.extend_from_slice(&tag);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // RFC 8448 §3: the client's Finished, protected with the client handshake traffic key
    // and IV as record 0.
    const KEY: &str = "dbfaa693d1762c5b666af5d950258d01";
    const IV: &str = "5bd3c71b836e0b76bb73265f";
    const FINISHED: &str =
        "14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61";
    const RECORD: &str = "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546";

    fn key_iv() -> ([u8; 16], [u8; 12]) {
        (hx(KEY).try_into().unwrap(), hx(IV).try_into().unwrap())
    }

    // RFC 8448 §3: handshake traffic secrets → keys and IVs; the client Finished
    // verify_data over the transcript hash through the server's Finished.
    #[test]
    fn the_clear_schedule_of_rfc_8448() {
        let c: [u8; 32] = hx("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
            .try_into()
            .unwrap();
        let s: [u8; 32] = hx("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
            .try_into()
            .unwrap();
        let ck = TrafficKey::from_secret(&c);
        assert_eq!(hex::encode(*ck.key), KEY);
        assert_eq!(hex::encode(*ck.iv), IV);
        let sk = TrafficKey::from_secret(&s);
        assert_eq!(hex::encode(*sk.key), "3fce516009c21727d0f2e4e86ee403bc");
        assert_eq!(hex::encode(*sk.iv), "5d313eb2671276ee13000b30");
        let h: [u8; 32] = hx("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13")
            .try_into()
            .unwrap();
        assert_eq!(
            hex::encode(finished_verify_data(&c, &h)),
            "a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61"
        );
    }

    #[test]
    fn the_client_finished_of_rfc_8448() {
        let (k, iv) = key_iv();
        let rec = seal(&k, &iv, 0, ContentType::Handshake, &hx(FINISHED)).unwrap();
        assert_eq!(hex::encode(&rec), RECORD);
        let (typ, plain) = open(&k, &iv, 0, &rec[5..]).unwrap();
        assert_eq!(typ, ContentType::Handshake.byte());
        assert_eq!(plain, hx(FINISHED));
    }

    #[test]
    fn an_altered_record_or_another_sequence_number_is_refused() {
        let (k, iv) = key_iv();
        let rec = hx(RECORD);
        let mut bad = rec[5..].to_vec();
        bad[3] ^= 1;
        assert_eq!(open(&k, &iv, 0, &bad), Err(RecordError::Tag { seq: 0 }));
        assert_eq!(
            open(&k, &iv, 1, &rec[5..]),
            Err(RecordError::Tag { seq: 1 })
        );
        assert!(matches!(
            open(&k, &iv, 0, &rec[5..25]),
            Err(RecordError::Tag { .. })
        ));
        assert!(matches!(
            open(&k, &iv, 0, &rec[5..10]),
            Err(RecordError::Codec(CodecError::Truncated(_)))
        ));
    }

    #[test]
    fn padding_is_removed_and_all_padding_is_refused() {
        let (k, iv) = key_iv();
        // Plaintext "hi", type application_data, three bytes of padding: sealed by hand.
        let mut inner = b"hi".to_vec();
        inner.extend([23, 0, 0, 0]);
        let padded = seal_raw(&k, &iv, 7, &inner);
        assert_eq!(open(&k, &iv, 7, &padded).unwrap(), (23, b"hi".to_vec()));
        let zeros = seal_raw(&k, &iv, 7, &[0, 0, 0]);
        assert_eq!(
            open(&k, &iv, 7, &zeros),
            Err(RecordError::NoContentType { seq: 7 })
        );
    }

    /// A record payload protecting `inner` (content type and padding included) as is.
    fn seal_raw(k: &[u8; 16], iv: &[u8; 12], seq: u64, inner: &[u8]) -> Vec<u8> {
        let mut buf = inner.to_vec();
        let tag = Aes128Gcm::new(k.into())
            .encrypt_in_place_detached(
                (&nonce(iv, seq)).into(),
                &header(inner.len() + TAG),
                &mut buf,
            )
            .unwrap();
        buf.extend_from_slice(&tag);
        buf
    }

    #[test]
    fn sizes_past_the_limits_are_refused() {
        let (k, iv) = key_iv();
        assert!(matches!(
            seal(
                &k,
                &iv,
                0,
                ContentType::ApplicationData,
                &vec![1; MAX_PLAINTEXT + 1]
            ),
            Err(RecordError::Codec(CodecError::RecordTooLong(_)))
        ));
        assert!(seal(
            &k,
            &iv,
            0,
            ContentType::ApplicationData,
            &vec![1; MAX_PLAINTEXT]
        )
        .is_ok());
        assert!(matches!(
            open(&k, &iv, 0, &vec![0; MAX_CIPHERTEXT + 1]),
            Err(RecordError::Codec(CodecError::RecordTooLong(_)))
        ));
    }

    #[test]
    fn nonces_xor_the_sequence_number() {
        let iv = [0xff; 12];
        let n = nonce(&iv, 0x0102);
        assert_eq!(&n[..10], &[0xff; 10]);
        assert_eq!(&n[10..], &[0xfe, 0xfd]);
    }
}
