//! The TLS 1.2 key schedule as boolean circuits (for garbling): HMAC-SHA256 with the key's
//! inner and outer states computed once, P_SHA256 (RFC 5246 §5), the Extended Master Secret
//! (RFC 7627 §4), key expansion for AES-128-GCM (RFC 5288) and Finished verify_data
//! (RFC 5246 §7.4.9). Public inputs (labels, padding) enter as constants and fold away; every
//! value derived from the pre-master secret stays on wires.

use mpc::circuit::sha256::{compress, BLOCK_BITS, IV, STATE_BITS};
use mpc::circuit::{const_bits, Bit, Builder, CircuitError};

/// Bytes of the master secret.
pub const MASTER_SECRET_LEN: usize = 48;
/// Bytes of the AES-128-GCM key block: two 16-byte keys then two 4-byte implicit nonces.
pub const KEY_BLOCK_LEN: usize = 40;
/// Bytes of Finished verify_data.
pub const VERIFY_DATA_LEN: usize = 12;

fn iv_bits() -> Vec<Bit> {
    let bytes: Vec<u8> = IV.iter().flat_map(|w| w.to_be_bytes()).collect();
    const_bits(&bytes)
}

fn whole_bytes(bits: &[Bit]) -> Result<usize, CircuitError> {
    if bits.len() % 8 != 0 {
        return Err(CircuitError::WidthMismatch(
            bits.len(),
            bits.len().next_multiple_of(8),
        ));
    }
    Ok(bits.len() / 8)
}

/// Continues SHA-256 from `state` (which has absorbed `prefix_bytes`, a multiple of 64) over
/// `msg` and finishes with the padding: returns the 256-bit digest.
pub fn sha256_finish(
    b: &mut Builder,
    state: &[Bit],
    prefix_bytes: usize,
    msg: &[Bit],
) -> Result<Vec<Bit>, CircuitError> {
    if state.len() != STATE_BITS {
        return Err(CircuitError::WidthMismatch(state.len(), STATE_BITS));
    }
    let n = whole_bytes(msg)?;
    let total_bits = ((prefix_bytes + n) as u64) * 8;
    let mut padded = msg.to_vec();
    padded.extend(const_bits(&[0x80]));
    while (padded.len() / 8) % 64 != 56 {
        padded.extend(const_bits(&[0]));
    }
    padded.extend(const_bits(&total_bits.to_be_bytes()));
    let mut st = state.to_vec();
    for block in padded.chunks_exact(BLOCK_BITS) {
        st = compress(b, &st, block)?;
    }
    Ok(st)
}

/// An HMAC-SHA256 key absorbed into the SHA-256 states after K⊕ipad and after K⊕opad
/// (two compressions, done once per key).
#[derive(Debug, Clone)]
pub struct HmacKey {
    inner: Vec<Bit>,
    outer: Vec<Bit>,
}

impl HmacKey {
    /// Absorbs a key of at most 64 bytes (the pre-master secret is 32, the master secret 48).
    pub fn new(b: &mut Builder, key: &[Bit]) -> Result<HmacKey, CircuitError> {
        let n = whole_bytes(key)?;
        if n > 64 {
            return Err(CircuitError::WidthMismatch(key.len(), 512));
        }
        let mut padded = key.to_vec();
        padded.extend(const_bits(&vec![0u8; 64 - n]));
        let ipad = const_bits(&[0x36; 64]);
        let opad = const_bits(&[0x5c; 64]);
        let ki = b.xor_vec(&padded, &ipad)?;
        let ko = b.xor_vec(&padded, &opad)?;
        let iv = iv_bits();
        Ok(HmacKey {
            inner: compress(b, &iv, &ki)?,
            outer: compress(b, &iv, &ko)?,
        })
    }

    /// The two absorbed states, inner then outer (256 bits each), to keep on wires between
    /// executions.
    pub fn state_bits(&self) -> Vec<Bit> {
        [self.inner.clone(), self.outer.clone()].concat()
    }

    /// A key from [`HmacKey::state_bits`] of an earlier circuit (512 bits).
    pub fn from_state_bits(bits: &[Bit]) -> Result<HmacKey, CircuitError> {
        if bits.len() != 2 * STATE_BITS {
            return Err(CircuitError::WidthMismatch(bits.len(), 2 * STATE_BITS));
        }
        Ok(HmacKey {
            inner: bits[..STATE_BITS].to_vec(),
            outer: bits[STATE_BITS..].to_vec(),
        })
    }

    /// HMAC-SHA256(key, msg).
    pub fn mac(&self, b: &mut Builder, msg: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
        let inner = sha256_finish(b, &self.inner, 64, msg)?;
        sha256_finish(b, &self.outer, 64, &inner)
    }

    /// P_SHA256(key, seed) truncated to `out_bytes` (RFC 5246 §5):
    /// A(0) = seed, A(i) = HMAC(key, A(i−1)), output HMAC(key, A(1) ‖ seed) ‖ HMAC(key, A(2) ‖ seed) ‖ …
    pub fn p_sha256(
        &self,
        b: &mut Builder,
        seed: &[Bit],
        out_bytes: usize,
    ) -> Result<Vec<Bit>, CircuitError> {
        whole_bytes(seed)?;
        let mut out = Vec::with_capacity(out_bytes * 8);
        let mut a = seed.to_vec();
        while out.len() < out_bytes * 8 {
            a = self.mac(b, &a)?;
            let mut m = a.clone();
            m.extend_from_slice(seed);
            out.extend(self.mac(b, &m)?);
        }
        out.truncate(out_bytes * 8);
        Ok(out)
    }

    /// PRF(key, label, seed) = P_SHA256(key, label ‖ seed).
    pub fn prf(
        &self,
        b: &mut Builder,
        label: &[u8],
        seed: &[Bit],
        out_bytes: usize,
    ) -> Result<Vec<Bit>, CircuitError> {
        let mut ls = const_bits(label);
        ls.extend_from_slice(seed);
        self.p_sha256(b, &ls, out_bytes)
    }
}

/// The master secret with the Extended Master Secret extension (RFC 7627 §4):
/// PRF(pre_master_secret, "extended master secret", session_hash)[0..48].
pub fn extended_master_secret(
    b: &mut Builder,
    pre_master_secret: &[Bit],
    session_hash: &[Bit],
) -> Result<Vec<Bit>, CircuitError> {
    HmacKey::new(b, pre_master_secret)?.prf(
        b,
        b"extended master secret",
        session_hash,
        MASTER_SECRET_LEN,
    )
}

/// The AES-128-GCM session keys from a master secret (RFC 5246 §6.3, RFC 5288 §3).
#[derive(Debug, Clone)]
pub struct SessionKeys {
    /// client_write_key (128 bits).
    pub client_key: Vec<Bit>,
    /// server_write_key (128 bits).
    pub server_key: Vec<Bit>,
    /// client_write_IV: the 4-byte implicit nonce (32 bits).
    pub client_iv: Vec<Bit>,
    /// server_write_IV (32 bits).
    pub server_iv: Vec<Bit>,
}

/// key_block = PRF(master_secret, "key expansion", server_random ‖ client_random)[0..40].
pub fn key_expansion(
    b: &mut Builder,
    master: &HmacKey,
    server_random: &[Bit],
    client_random: &[Bit],
) -> Result<SessionKeys, CircuitError> {
    let mut seed = server_random.to_vec();
    seed.extend_from_slice(client_random);
    let kb = master.prf(b, b"key expansion", &seed, KEY_BLOCK_LEN)?;
    Ok(SessionKeys {
        client_key: kb[0..128].to_vec(),
        server_key: kb[128..256].to_vec(),
        client_iv: kb[256..288].to_vec(),
        server_iv: kb[288..320].to_vec(),
    })
}

/// Which side's Finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// "client finished".
    Client,
    /// "server finished".
    Server,
}

/// verify_data = PRF(master_secret, finished_label, handshake_hash)[0..12].
pub fn verify_data(
    b: &mut Builder,
    master: &HmacKey,
    side: Side,
    handshake_hash: &[Bit],
) -> Result<Vec<Bit>, CircuitError> {
    let label: &[u8] = match side {
        Side::Client => b"client finished",
        Side::Server => b"server finished",
    };
    master.prf(b, label, handshake_hash, VERIFY_DATA_LEN)
}
