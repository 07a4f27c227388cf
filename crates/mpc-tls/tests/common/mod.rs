//! The software reference the circuits are checked against: the TLS 1.2 PRF (P_SHA256,
//! RFC 5246 §5) on the RustCrypto `hmac` crate.
#![allow(clippy::unwrap_used, dead_code)]

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256(key, msg).
pub fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// P_SHA256(secret, label ‖ seed) truncated to `n` bytes.
pub fn prf(secret: &[u8], label: &[u8], seed: &[u8], n: usize) -> Vec<u8> {
    let ls = [label, seed].concat();
    let mut a = ls.clone();
    let mut out = Vec::new();
    while out.len() < n {
        a = hmac(secret, &a);
        out.extend(hmac(secret, &[a.as_slice(), &ls].concat()));
    }
    out.truncate(n);
    out
}
