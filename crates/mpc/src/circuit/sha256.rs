//! The SHA-256 compression function (FIPS 180-4) as a boolean circuit: chaining state and one
//! 512-bit message block in, new chaining state out, 22,573 AND gates. Padding and chaining
//! across blocks are left to the caller.

use super::arith::{add_mod_2n, fixed_shape};
use super::{const_bits, Bit, Builder, Circuit, CircuitError};

/// Bits of the SHA-256 chaining state (H0..H7, each big-endian).
pub const STATE_BITS: usize = 256;
/// Bits of one SHA-256 message block.
pub const BLOCK_BITS: usize = 512;
/// AND gates of [`compression_circuit`]: 64 rounds × (32 for Ch + 32 for Maj), plus 600
/// 32-bit additions at 31 ANDs each, minus 1 + trailing_zeros(K_t) for each round-constant
/// addition (the constant's low bits fold away).
pub const COMPRESSION_AND_COUNT: usize = 22_573;

/// The SHA-256 initial hash value H(0).
pub const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The SHA-256 round constants.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// A 32-bit word, most significant bit first.
type Word = Vec<Bit>;

fn const_word(k: u32) -> Word {
    (0..32)
        .rev()
        .map(|i| Bit::Const((k >> i) & 1 == 1))
        .collect()
}

/// Rotate right by `r` (MSB-first bits): free.
fn rotr(x: &[Bit], r: usize) -> Word {
    let n = x.len();
    (0..n).map(|i| x[(i + n - r) % n]).collect()
}

/// Logical shift right by `r` (MSB-first bits): free.
fn shr(x: &[Bit], r: usize) -> Word {
    (0..x.len())
        .map(|i| if i < r { Bit::Const(false) } else { x[i - r] })
        .collect()
}

fn xor3(b: &mut Builder, x: &[Bit], y: &[Bit], z: &[Bit]) -> Result<Word, CircuitError> {
    let t = b.xor_vec(x, y)?;
    b.xor_vec(&t, z)
}

/// Σ0, Σ1, σ0, σ1 share the shape `f(x) ⊕ g(x) ⊕ h(x)` of rotations/shifts.
fn big_sigma0(b: &mut Builder, x: &[Bit]) -> Result<Word, CircuitError> {
    xor3(b, &rotr(x, 2), &rotr(x, 13), &rotr(x, 22))
}
fn big_sigma1(b: &mut Builder, x: &[Bit]) -> Result<Word, CircuitError> {
    xor3(b, &rotr(x, 6), &rotr(x, 11), &rotr(x, 25))
}
fn small_sigma0(b: &mut Builder, x: &[Bit]) -> Result<Word, CircuitError> {
    xor3(b, &rotr(x, 7), &rotr(x, 18), &shr(x, 3))
}
fn small_sigma1(b: &mut Builder, x: &[Bit]) -> Result<Word, CircuitError> {
    xor3(b, &rotr(x, 17), &rotr(x, 19), &shr(x, 10))
}

/// `Ch(e, f, g) = g ⊕ (e ∧ (f ⊕ g))`: 32 ANDs.
fn ch(b: &mut Builder, e: &[Bit], f: &[Bit], g: &[Bit]) -> Result<Word, CircuitError> {
    let fg = b.xor_vec(f, g)?;
    let t: Word = e.iter().zip(&fg).map(|(&x, &y)| b.and(x, y)).collect();
    b.xor_vec(g, &t)
}

/// `Maj(a, b, c) = a ⊕ ((a ⊕ b) ∧ (a ⊕ c))`: 32 ANDs.
fn maj(bd: &mut Builder, a: &[Bit], b: &[Bit], c: &[Bit]) -> Result<Word, CircuitError> {
    let ab = bd.xor_vec(a, b)?;
    let ac = bd.xor_vec(a, c)?;
    let t: Word = ab.iter().zip(&ac).map(|(&x, &y)| bd.and(x, y)).collect();
    bd.xor_vec(a, &t)
}

/// The SHA-256 compression function.
///
/// `state` is the 256-bit chaining value H0..H7 (each word big-endian, MSB first), `block`
/// the 512-bit message block (byte order of the message). Returns the new 256-bit chaining
/// value. With all-wire inputs this costs exactly [`COMPRESSION_AND_COUNT`] AND gates.
///
/// # Errors
/// [`CircuitError::WidthMismatch`] if `state` is not 256 bits or `block` not 512.
pub fn compress(b: &mut Builder, state: &[Bit], block: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    if state.len() != STATE_BITS {
        return Err(CircuitError::WidthMismatch(state.len(), STATE_BITS));
    }
    if block.len() != BLOCK_BITS {
        return Err(CircuitError::WidthMismatch(block.len(), BLOCK_BITS));
    }
    let h: Vec<Word> = state.chunks_exact(32).map(<[Bit]>::to_vec).collect();

    // Message schedule: 3 additions per word for t = 16..63.
    let mut w: Vec<Word> = block.chunks_exact(32).map(<[Bit]>::to_vec).collect();
    for t in 16..64 {
        let s1 = small_sigma1(b, &w[t - 2])?;
        let s0 = small_sigma0(b, &w[t - 15])?;
        let u = add_mod_2n(b, &s1, &w[t - 7])?;
        let u = add_mod_2n(b, &u, &s0)?;
        let u = add_mod_2n(b, &u, &w[t - 16])?;
        w.push(u);
    }

    let mut v = h.clone();
    for (wt, &kt) in w.iter().zip(K.iter()) {
        let (a, bb, c, d, e, f, g, hh) = (&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
        // T1 = h + Σ1(e) + Ch(e, f, g) + K_t + W_t: four additions, the constant one separate.
        let s1 = big_sigma1(b, e)?;
        let chv = ch(b, e, f, g)?;
        let t1 = add_mod_2n(b, hh, &s1)?;
        let t1 = add_mod_2n(b, &t1, &chv)?;
        let t1 = add_mod_2n(b, &t1, &const_word(kt))?;
        let t1 = add_mod_2n(b, &t1, wt)?;
        // T2 = Σ0(a) + Maj(a, b, c).
        let s0 = big_sigma0(b, a)?;
        let mj = maj(b, a, bb, c)?;
        let t2 = add_mod_2n(b, &s0, &mj)?;
        let new_e = add_mod_2n(b, d, &t1)?;
        let new_a = add_mod_2n(b, &t1, &t2)?;
        v = vec![
            new_a,
            a.clone(),
            bb.clone(),
            c.clone(),
            new_e,
            e.clone(),
            f.clone(),
            g.clone(),
        ];
    }

    let mut out = Vec::with_capacity(STATE_BITS);
    for (hi, vi) in h.iter().zip(&v) {
        out.extend(add_mod_2n(b, hi, vi)?);
    }
    Ok(out)
}

/// SHA-256 of a message of whole bytes whose length is public: the padding is constant, so
/// the cost is one [`compress`] per 512-bit block of the padded message.
///
/// # Errors
/// [`CircuitError`] from the builder (a message not of whole bytes gives wrong padding, so
/// the caller must pass whole bytes).
pub fn digest_fixed(b: &mut Builder, msg: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    let bit_len = msg.len() as u64;
    let mut m = msg.to_vec();
    m.extend(const_bits(&[0x80]));
    while m.len() % BLOCK_BITS != BLOCK_BITS - 64 {
        m.push(Bit::Const(false));
    }
    m.extend(const_bits(&bit_len.to_be_bytes()));
    let iv: Vec<u8> = IV.iter().flat_map(|w| w.to_be_bytes()).collect();
    let mut state = const_bits(&iv);
    for block in m.chunks(BLOCK_BITS) {
        state = compress(b, &state, block)?;
    }
    Ok(state)
}

/// The SHA-256 compression circuit: inputs are the chaining state (256 bits, H0..H7
/// big-endian) then the 512-bit message block; outputs the new 256-bit state.
/// [`COMPRESSION_AND_COUNT`] (22,573) AND gates.
pub fn compression_circuit() -> Circuit {
    let mut b = Builder::new();
    let state = b.inputs(STATE_BITS);
    let block = b.inputs(BLOCK_BITS);
    let r = compress(&mut b, &state, &block).and_then(|h| b.finish(&h));
    fixed_shape(r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::Rng;
    use sha2::Digest;

    fn state_bytes(h: &[u32; 8]) -> Vec<u8> {
        h.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    fn bytes_state(bytes: &[u8]) -> [u32; 8] {
        let mut h = [0u32; 8];
        for (w, c) in h.iter_mut().zip(bytes.chunks_exact(4)) {
            *w = u32::from_be_bytes(c.try_into().unwrap());
        }
        h
    }

    fn pad(msg: &[u8]) -> Vec<u8> {
        let mut m = msg.to_vec();
        m.push(0x80);
        while m.len() % 64 != 56 {
            m.push(0);
        }
        m.extend(((msg.len() as u64) * 8).to_be_bytes());
        m
    }

    fn digest(c: &Circuit, msg: &[u8]) -> Vec<u8> {
        let mut h = state_bytes(&IV);
        for block in pad(msg).chunks_exact(64) {
            h = c.evaluate_bytes(&[h.as_slice(), block].concat()).unwrap();
        }
        h
    }

    #[test]
    fn and_count_is_exact() {
        let c = compression_circuit();
        assert_eq!(c.and_count(), COMPRESSION_AND_COUNT);
        assert_eq!(c.and_count(), 22_573);
        assert_eq!((c.num_inputs(), c.num_outputs()), (768, 256));
        let folded: usize = K.iter().map(|k| 1 + k.trailing_zeros() as usize).sum();
        assert_eq!(64 * 64 + 600 * 31 - folded, 22_573);
    }

    #[test]
    fn fips180_vectors() {
        let c = compression_circuit();
        assert_eq!(
            hex::encode(digest(&c, b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let two = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(pad(two).len(), 128);
        assert_eq!(
            hex::encode(digest(&c, two)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    /// The reference compression: RustCrypto's `sha2::compress256`.
    fn compress_ref(h: &mut [u32; 8], block: &[u8]) {
        let block = *sha2::digest::generic_array::GenericArray::from_slice(block);
        sha2::compress256(h, &[block]);
    }

    fn random_message(rng: &mut impl Rng, max_len: usize) -> Vec<u8> {
        let len = rng.gen_range(0..=max_len);
        (0..len).map(|_| rng.gen()).collect()
    }

    #[test]
    fn reference_matches_sha2_crate() {
        let mut rng = rand::thread_rng();
        for _ in 0..500 {
            let msg = random_message(&mut rng, 300);
            let mut h = IV;
            for block in pad(&msg).chunks_exact(64) {
                compress_ref(&mut h, block);
            }
            assert_eq!(state_bytes(&h), sha2::Sha256::digest(&msg).to_vec());
        }
    }

    #[test]
    fn random_states_against_sha2_compress256() {
        let c = compression_circuit();
        let mut rng = rand::thread_rng();
        for _ in 0..1000 {
            let mut h: [u32; 8] = rng.gen();
            let mut block = [0u8; 64];
            rng.fill(&mut block[..]);
            let out = c
                .evaluate_bytes(&[state_bytes(&h).as_slice(), &block].concat())
                .unwrap();
            compress_ref(&mut h, &block);
            assert_eq!(bytes_state(&out), h);
        }
    }

    #[test]
    fn random_messages_against_sha2_crate() {
        // Multi-block messages also run the circuit from pseudo-random chaining states.
        let c = compression_circuit();
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let msg = random_message(&mut rng, 200);
            assert_eq!(digest(&c, &msg), sha2::Sha256::digest(&msg).to_vec());
        }
    }

    #[test]
    fn width_errors() {
        let mut b = Builder::new();
        let s = b.inputs(256);
        let m = b.inputs(512);
        assert_eq!(
            compress(&mut b, &s[..255], &m),
            Err(CircuitError::WidthMismatch(255, 256))
        );
        assert_eq!(
            compress(&mut b, &s, &m[..256]),
            Err(CircuitError::WidthMismatch(256, 512))
        );
    }
}
