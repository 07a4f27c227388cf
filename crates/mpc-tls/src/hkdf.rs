//! The TLS 1.3 key schedule (RFC 8446 §7.1, §7.3, §4.4.4) as boolean circuits for garbling,
//! for `TLS_AES_128_GCM_SHA256` and a full handshake without a pre-shared key: HKDF-Extract
//! and HKDF-Expand-Label over the HMAC-SHA256 of [`crate::prf`], the handshake and
//! application traffic secrets, the traffic keys and IVs, the Finished keys and MACs.
//!
//! Every value derived from the (EC)DHE secret stays on wires. What is public enters as
//! constants and folds away: labels, the early secret and the salt derived from it (there is
//! no PSK, so both are fixed), the empty transcript hash; transcript hashes enter as inputs.
//! Output widths are at most one SHA-256 block of HKDF-Expand (32 bytes), which is all this
//! suite needs, so each expansion is one HMAC.

use mpc::circuit::{const_bits, Bit, Builder, CircuitError};

use crate::prf::HmacKey;

/// Bytes of a SHA-256 hash, and of every secret in this schedule.
pub const HASH_LEN: usize = 32;
/// Bytes of an AES-128-GCM traffic key.
pub const KEY_LEN: usize = 16;
/// Bytes of a TLS 1.3 per-record nonce base (the traffic IV).
pub const IV_LEN: usize = 12;

/// SHA-256 of the empty string: the transcript of "derived".
const EMPTY_HASH: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

fn check_len(bits: &[Bit], bytes: usize) -> Result<(), CircuitError> {
    if bits.len() != bytes * 8 {
        return Err(CircuitError::WidthMismatch(bits.len(), bytes * 8));
    }
    Ok(())
}

/// HKDF-Extract(salt, IKM) = HMAC-SHA256(salt, IKM) (RFC 5869 §2.2).
pub fn extract(b: &mut Builder, salt: &[Bit], ikm: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    HmacKey::new(b, salt)?.mac(b, ikm)
}

/// HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 §7.1) for a length of at most
/// 32 bytes: the first block of HKDF-Expand, HMAC(Secret, HkdfLabel ‖ 0x01), truncated.
/// `secret` is the secret already absorbed as an HMAC key, so one key serves several labels.
pub fn expand_label(
    b: &mut Builder,
    secret: &HmacKey,
    label: &[u8],
    context: &[Bit],
    len: usize,
) -> Result<Vec<Bit>, CircuitError> {
    if len > HASH_LEN {
        return Err(CircuitError::WidthMismatch(len * 8, HASH_LEN * 8));
    }
    if context.len() % 8 != 0 || context.len() / 8 > 255 {
        return Err(CircuitError::WidthMismatch(context.len(), HASH_LEN * 8));
    }
    let full_label = [b"tls13 ".as_slice(), label].concat();
    let mut info = const_bits(&(len as u16).to_be_bytes());
    info.extend(const_bits(&[full_label.len() as u8]));
    info.extend(const_bits(&full_label));
    info.extend(const_bits(&[(context.len() / 8) as u8]));
    info.extend_from_slice(context);
    info.extend(const_bits(&[1]));
    let mut out = secret.mac(b, &info)?;
    out.truncate(len * 8);
    Ok(out)
}

/// Derive-Secret(Secret, Label, Messages) = HKDF-Expand-Label(Secret, Label,
/// Transcript-Hash(Messages), 32), given that hash.
pub fn derive_secret(
    b: &mut Builder,
    secret: &HmacKey,
    label: &[u8],
    transcript_hash: &[Bit],
) -> Result<Vec<Bit>, CircuitError> {
    check_len(transcript_hash, HASH_LEN)?;
    expand_label(b, secret, label, transcript_hash, HASH_LEN)
}

/// The secrets of a full handshake: the handshake traffic secrets of both sides and the
/// master secret, 32 bytes each.
#[derive(Debug, Clone)]
pub struct HandshakeSecrets {
    /// client_handshake_traffic_secret.
    pub client: Vec<Bit>,
    /// server_handshake_traffic_secret.
    pub server: Vec<Bit>,
    /// The master secret.
    pub master: Vec<Bit>,
}

/// The handshake secrets from the (EC)DHE shared secret (for P-256, the 32-byte
/// x-coordinate) and the transcript hash through ServerHello. Without a PSK the early
/// secret is HKDF-Extract(0, 0) and the salt derived from it is a constant.
pub fn handshake_secrets(
    b: &mut Builder,
    dhe: &[Bit],
    hello_hash: &[Bit],
) -> Result<HandshakeSecrets, CircuitError> {
    check_len(dhe, HASH_LEN)?;
    let zeros = const_bits(&[0; HASH_LEN]);
    let empty = const_bits(&EMPTY_HASH);
    let early = extract(b, &zeros, &zeros)?;
    let early = HmacKey::new(b, &early)?;
    let salt = derive_secret(b, &early, b"derived", &empty)?;
    let hs = extract(b, &salt, dhe)?;
    let hs = HmacKey::new(b, &hs)?;
    let client = derive_secret(b, &hs, b"c hs traffic", hello_hash)?;
    let server = derive_secret(b, &hs, b"s hs traffic", hello_hash)?;
    let salt = derive_secret(b, &hs, b"derived", &empty)?;
    let master = extract(b, &salt, &zeros)?;
    Ok(HandshakeSecrets {
        client,
        server,
        master,
    })
}

/// The application traffic secrets (client, server) from the master secret (absorbed as an
/// HMAC key, as a later execution takes it) and the transcript hash through the server's
/// Finished.
pub fn application_secrets(
    b: &mut Builder,
    master: &HmacKey,
    hash_through_server_finished: &[Bit],
) -> Result<(Vec<Bit>, Vec<Bit>), CircuitError> {
    let c = derive_secret(b, master, b"c ap traffic", hash_through_server_finished)?;
    let s = derive_secret(b, master, b"s ap traffic", hash_through_server_finished)?;
    Ok((c, s))
}

/// A side's AES-128-GCM write key and IV.
#[derive(Debug, Clone)]
pub struct TrafficKeys {
    /// The key (128 bits).
    pub key: Vec<Bit>,
    /// The IV (96 bits), XORed with the record sequence number to form each nonce.
    pub iv: Vec<Bit>,
}

/// The write key and IV of a traffic secret (RFC 8446 §7.3), the secret already absorbed.
pub fn traffic_keys(b: &mut Builder, secret: &HmacKey) -> Result<TrafficKeys, CircuitError> {
    Ok(TrafficKeys {
        key: expand_label(b, secret, b"key", &[], KEY_LEN)?,
        iv: expand_label(b, secret, b"iv", &[], IV_LEN)?,
    })
}

/// The Finished key of a handshake traffic secret (RFC 8446 §4.4.4), the secret already
/// absorbed.
pub fn finished_key(b: &mut Builder, secret: &HmacKey) -> Result<Vec<Bit>, CircuitError> {
    expand_label(b, secret, b"finished", &[], HASH_LEN)
}

/// Finished verify_data = HMAC(finished_key, transcript hash) (RFC 8446 §4.4.4).
pub fn finished_mac(
    b: &mut Builder,
    finished_key: &[Bit],
    transcript_hash: &[Bit],
) -> Result<Vec<Bit>, CircuitError> {
    check_len(finished_key, HASH_LEN)?;
    check_len(transcript_hash, HASH_LEN)?;
    HmacKey::new(b, finished_key)?.mac(b, transcript_hash)
}
