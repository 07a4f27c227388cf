//! The software reference the circuits are checked against, on the RustCrypto `hmac` crate:
//! the TLS 1.2 PRF (P_SHA256, RFC 5246 §5) and the TLS 1.3 key schedule (RFC 8446 §7.1).
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

/// HKDF-Expand-Label(secret, label, context, len) for `len` ≤ 32 (one HMAC block).
pub fn expand_label(secret: &[u8], label: &str, context: &[u8], len: usize) -> Vec<u8> {
    let full = format!("tls13 {label}");
    let mut info = (len as u16).to_be_bytes().to_vec();
    info.push(full.len() as u8);
    info.extend(full.as_bytes());
    info.push(context.len() as u8);
    info.extend(context);
    info.push(1);
    let mut t = hmac(secret, &info);
    t.truncate(len);
    t
}

/// The whole TLS 1.3 schedule without a PSK from the (EC)DHE secret, the hash through
/// ServerHello and the hash through the server Finished: client and server handshake
/// traffic secrets, master secret, client and server handshake key and IV, client and server
/// Finished keys, the client Finished verify_data, client and server application traffic
/// secrets, client and server application key and IV.
pub fn tls13_schedule(dhe: &[u8], hello: &[u8], sf: &[u8]) -> Vec<Vec<u8>> {
    use sha2::Digest;
    let empty = Sha256::digest(b"").to_vec();
    let early = hmac(&[0; 32], &[0; 32]);
    let hs = hmac(&expand_label(&early, "derived", &empty, 32), dhe);
    let c_hs = expand_label(&hs, "c hs traffic", hello, 32);
    let s_hs = expand_label(&hs, "s hs traffic", hello, 32);
    let master = hmac(&expand_label(&hs, "derived", &empty, 32), &[0; 32]);
    let cf = expand_label(&c_hs, "finished", &[], 32);
    let sfk = expand_label(&s_hs, "finished", &[], 32);
    let c_ap = expand_label(&master, "c ap traffic", sf, 32);
    let s_ap = expand_label(&master, "s ap traffic", sf, 32);
    let keys = |s: &[u8]| {
        [
            expand_label(s, "key", &[], 16),
            expand_label(s, "iv", &[], 12),
        ]
    };
    let mut out = vec![c_hs.clone(), s_hs.clone(), master];
    out.extend(keys(&c_hs));
    out.extend(keys(&s_hs));
    out.extend([cf.clone(), sfk, hmac(&cf, sf), c_ap.clone(), s_ap.clone()]);
    out.extend(keys(&c_ap));
    out.extend(keys(&s_ap));
    out
}

/// SHA-256 state after one block, as the circuits lay states out (words big-endian).
pub fn state_after(block: &[u8; 64]) -> Vec<u8> {
    let mut st = [
        0x6a09e667u32,
        0xbb67ae85,
        0x3c6ef372,
        0xa54ff53a,
        0x510e527f,
        0x9b05688c,
        0x1f83d9ab,
        0x5be0cd19,
    ];
    sha2::compress256(&mut st, &[(*block).into()]);
    st.iter().flat_map(|w| w.to_be_bytes()).collect()
}
