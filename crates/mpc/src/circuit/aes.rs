//! AES-128 block encryption as a boolean circuit, built on the 32-AND Boyar–Peralta S-box:
//! 6,400 AND gates including the key schedule, 5,120 with pre-expanded round keys. Also a
//! plain (non-circuit) key expansion so callers can produce the expanded-key input.

use super::arith::fixed_shape;
use super::{Bit, Builder, Circuit, CircuitError};

/// Bits in an AES block and in an AES-128 key.
pub const BLOCK_BITS: usize = 128;
/// Bits of the 11 AES-128 round keys, round key 0 first.
pub const EXPANDED_KEY_BITS: usize = 11 * BLOCK_BITS;
/// AND gates of [`sbox`].
pub const SBOX_AND_COUNT: usize = 32;
/// AND gates of [`aes128_circuit`] (key schedule included).
pub const AES128_AND_COUNT: usize = 6400;
/// AND gates of [`aes128_expanded_circuit`].
pub const AES128_EXPANDED_AND_COUNT: usize = 5120;

/// Round constants of the AES-128 key schedule (first byte of the word).
const RCON: [u8; 10] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

type Byte = [Bit; 8];

fn xnor(b: &mut Builder, x: Bit, y: Bit) -> Bit {
    let t = b.xor(x, y);
    b.not(t)
}

/// The AES S-box on one byte (`x[0]` is the most significant bit), as the 115-gate
/// Boyar–Peralta circuit (SEA 2010): a 23-XOR top linear layer, a nonlinear middle of
/// 32 ANDs (9 + 5 + 18) and 30 XORs, and a 30-gate bottom linear layer with 4 XNORs.
/// Exactly [`SBOX_AND_COUNT`] AND gates when the input bits are distinct wires.
pub fn sbox(b: &mut Builder, x: [Bit; 8]) -> [Bit; 8] {
    // Top linear layer.
    let y14 = b.xor(x[3], x[5]);
    let y13 = b.xor(x[0], x[6]);
    let y9 = b.xor(x[0], x[3]);
    let y8 = b.xor(x[0], x[5]);
    let t0 = b.xor(x[1], x[2]);
    let y1 = b.xor(t0, x[7]);
    let y4 = b.xor(y1, x[3]);
    let y12 = b.xor(y13, y14);
    let y2 = b.xor(y1, x[0]);
    let y5 = b.xor(y1, x[6]);
    let y3 = b.xor(y5, y8);
    let t1 = b.xor(x[4], y12);
    let y15 = b.xor(t1, x[5]);
    let y20 = b.xor(t1, x[1]);
    let y6 = b.xor(y15, x[7]);
    let y10 = b.xor(y15, t0);
    let y11 = b.xor(y20, y9);
    let y7 = b.xor(x[7], y11);
    let y17 = b.xor(y10, y11);
    let y19 = b.xor(y10, y8);
    let y16 = b.xor(t0, y11);
    let y21 = b.xor(y13, y16);
    let y18 = b.xor(x[0], y16);

    // Nonlinear middle: 9 ANDs.
    let t2 = b.and(y12, y15);
    let t3 = b.and(y3, y6);
    let t4 = b.xor(t3, t2);
    let t5 = b.and(y4, x[7]);
    let t6 = b.xor(t5, t2);
    let t7 = b.and(y13, y16);
    let t8 = b.and(y5, y1);
    let t9 = b.xor(t8, t7);
    let t10 = b.and(y2, y7);
    let t11 = b.xor(t10, t7);
    let t12 = b.and(y9, y11);
    let t13 = b.and(y14, y17);
    let t14 = b.xor(t13, t12);
    let t15 = b.and(y8, y10);
    let t16 = b.xor(t15, t12);
    let t17 = b.xor(t4, t14);
    let t18 = b.xor(t6, t16);
    let t19 = b.xor(t9, t14);
    let t20 = b.xor(t11, t16);
    let t21 = b.xor(t17, y20);
    let t22 = b.xor(t18, y19);
    let t23 = b.xor(t19, y21);
    let t24 = b.xor(t20, y18);

    // GF(2^4) inversion: 5 ANDs.
    let t25 = b.xor(t21, t22);
    let t26 = b.and(t21, t23);
    let t27 = b.xor(t24, t26);
    let t28 = b.and(t25, t27);
    let t29 = b.xor(t28, t22);
    let t30 = b.xor(t23, t24);
    let t31 = b.xor(t22, t26);
    let t32 = b.and(t31, t30);
    let t33 = b.xor(t32, t24);
    let t34 = b.xor(t23, t33);
    let t35 = b.xor(t27, t33);
    let t36 = b.and(t24, t35);
    let t37 = b.xor(t36, t34);
    let t38 = b.xor(t27, t36);
    let t39 = b.and(t29, t38);
    let t40 = b.xor(t25, t39);
    let t41 = b.xor(t40, t37);
    let t42 = b.xor(t29, t33);
    let t43 = b.xor(t29, t40);
    let t44 = b.xor(t33, t37);
    let t45 = b.xor(t42, t41);

    // Output multiplications: 18 ANDs.
    let z0 = b.and(t44, y15);
    let z1 = b.and(t37, y6);
    let z2 = b.and(t33, x[7]);
    let z3 = b.and(t43, y16);
    let z4 = b.and(t40, y1);
    let z5 = b.and(t29, y7);
    let z6 = b.and(t42, y11);
    let z7 = b.and(t45, y17);
    let z8 = b.and(t41, y10);
    let z9 = b.and(t44, y12);
    let z10 = b.and(t37, y3);
    let z11 = b.and(t33, y4);
    let z12 = b.and(t43, y13);
    let z13 = b.and(t40, y5);
    let z14 = b.and(t29, y2);
    let z15 = b.and(t42, y9);
    let z16 = b.and(t45, y14);
    let z17 = b.and(t41, y8);

    // Bottom linear layer.
    let t46 = b.xor(z15, z16);
    let t47 = b.xor(z10, z11);
    let t48 = b.xor(z5, z13);
    let t49 = b.xor(z9, z10);
    let t50 = b.xor(z2, z12);
    let t51 = b.xor(z2, z5);
    let t52 = b.xor(z7, z8);
    let t53 = b.xor(z0, z3);
    let t54 = b.xor(z6, z7);
    let t55 = b.xor(z16, z17);
    let t56 = b.xor(z12, t48);
    let t57 = b.xor(t50, t53);
    let t58 = b.xor(z4, t46);
    let t59 = b.xor(z3, t54);
    let t60 = b.xor(t46, t57);
    let t61 = b.xor(z14, t57);
    let t62 = b.xor(t52, t58);
    let t63 = b.xor(t49, t58);
    let t64 = b.xor(z4, t59);
    let t65 = b.xor(t61, t62);
    let t66 = b.xor(z1, t63);
    let s0 = b.xor(t59, t63);
    let s6 = xnor(b, t56, t62);
    let s7 = xnor(b, t48, t60);
    let t67 = b.xor(t64, t65);
    let s3 = b.xor(t53, t66);
    let s4 = b.xor(t51, t66);
    let s5 = b.xor(t47, t65);
    let s1 = xnor(b, t64, s3);
    let s2 = xnor(b, t55, t67);

    [s0, s1, s2, s3, s4, s5, s6, s7]
}

fn check_len(bits: &[Bit], expected: usize) -> Result<(), CircuitError> {
    if bits.len() != expected {
        return Err(CircuitError::WidthMismatch(bits.len(), expected));
    }
    Ok(())
}

/// Splits a bit vector whose length is a multiple of 8 into bytes.
fn to_bytes(bits: &[Bit]) -> Vec<Byte> {
    bits.chunks_exact(8)
        .map(|c| [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
        .collect()
}

fn xor_byte(b: &mut Builder, x: &Byte, y: &Byte) -> Byte {
    let mut out = [Bit::Const(false); 8];
    for i in 0..8 {
        out[i] = b.xor(x[i], y[i]);
    }
    out
}

/// Multiplication by x in GF(2^8) (the AES `xtime`), on MSB-first bits: free.
fn xtime(b: &mut Builder, a: &Byte) -> Byte {
    // Shift left by one, then reduce by 0x1b (bits 3, 4, 6, 7 in MSB-first order).
    [
        a[1],
        a[2],
        a[3],
        b.xor(a[4], a[0]),
        b.xor(a[5], a[0]),
        a[6],
        b.xor(a[7], a[0]),
        a[0],
    ]
}

/// ShiftRows on a column-major state of 16 bytes (byte `r + 4c` is row `r`, column `c`).
fn shift_rows(s: &[Byte]) -> Vec<Byte> {
    (0..16)
        .map(|i| {
            let (r, c) = (i % 4, i / 4);
            s[r + 4 * ((c + r) % 4)]
        })
        .collect()
}

/// MixColumns: each output byte is `a_r ⊕ t ⊕ xtime(a_r ⊕ a_{r+1})` with `t` the XOR of the
/// column. Free.
fn mix_columns(b: &mut Builder, s: &[Byte]) -> Vec<Byte> {
    let mut out = Vec::with_capacity(16);
    for col in s.chunks_exact(4) {
        let t01 = xor_byte(b, &col[0], &col[1]);
        let t23 = xor_byte(b, &col[2], &col[3]);
        let t = xor_byte(b, &t01, &t23);
        for r in 0..4 {
            let pair = xor_byte(b, &col[r], &col[(r + 1) % 4]);
            let x2 = xtime(b, &pair);
            let u = xor_byte(b, &col[r], &t);
            out.push(xor_byte(b, &u, &x2));
        }
    }
    out
}

/// AES-128 encryption of one block with pre-expanded round keys.
///
/// `round_keys` is the 11 round keys (1,408 bits, round key 0 first, each in the byte order
/// of the standard key expansion, as produced by [`expand_key`] or [`key_schedule`]);
/// `block` is the 128-bit plaintext. Returns the 128-bit ciphertext. 5,120 AND gates.
///
/// # Errors
/// [`CircuitError::WidthMismatch`] if `round_keys` is not 1,408 bits or `block` not 128.
pub fn aes128_expanded(
    b: &mut Builder,
    round_keys: &[Bit],
    block: &[Bit],
) -> Result<Vec<Bit>, CircuitError> {
    check_len(round_keys, EXPANDED_KEY_BITS)?;
    check_len(block, BLOCK_BITS)?;
    let rk: Vec<Vec<Byte>> = round_keys.chunks_exact(BLOCK_BITS).map(to_bytes).collect();
    let pt = to_bytes(block);
    let mut state: Vec<Byte> = pt
        .iter()
        .zip(&rk[0])
        .map(|(p, k)| xor_byte(b, p, k))
        .collect();
    for (round, key) in rk.iter().enumerate().skip(1) {
        let sub: Vec<Byte> = state.iter().map(|&x| sbox(b, x)).collect();
        let shifted = shift_rows(&sub);
        let mixed = if round == 10 {
            shifted
        } else {
            mix_columns(b, &shifted)
        };
        state = mixed
            .iter()
            .zip(key)
            .map(|(s, k)| xor_byte(b, s, k))
            .collect();
    }
    Ok(state.into_iter().flatten().collect())
}

/// The AES-128 key schedule: from the 128-bit key, the 11 round keys (1,408 bits, round key 0
/// first, the byte order of the standard expansion). 40 S-boxes, 1,280 AND gates.
///
/// # Errors
/// [`CircuitError::WidthMismatch`] if `key` is not 128 bits.
pub fn key_schedule(b: &mut Builder, key: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    check_len(key, BLOCK_BITS)?;
    let mut w: Vec<[Byte; 4]> = to_bytes(key)
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    for i in 4..44 {
        let prev = w[i - 1];
        let temp = if i % 4 == 0 {
            let rot = [prev[1], prev[2], prev[3], prev[0]];
            let mut sub = rot.map(|x| sbox(b, x));
            let rc = RCON[i / 4 - 1];
            for (j, bit) in sub[0].iter_mut().enumerate() {
                *bit = b.xor(*bit, Bit::Const((rc >> (7 - j)) & 1 == 1));
            }
            sub
        } else {
            prev
        };
        let back = w[i - 4];
        let mut word = [[Bit::Const(false); 8]; 4];
        for j in 0..4 {
            word[j] = xor_byte(b, &back[j], &temp[j]);
        }
        w.push(word);
    }
    Ok(w.into_iter().flatten().flatten().collect())
}

/// AES-128 encryption of one block: key schedule then [`aes128_expanded`]. `key` and `block`
/// are 128 bits each; returns the 128-bit ciphertext. 6,400 AND gates.
///
/// # Errors
/// [`CircuitError::WidthMismatch`] if `key` or `block` is not 128 bits.
pub fn aes128(b: &mut Builder, key: &[Bit], block: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    check_len(key, BLOCK_BITS)?;
    check_len(block, BLOCK_BITS)?;
    let rk = key_schedule(b, key)?;
    aes128_expanded(b, &rk, block)
}

/// The AES-128 circuit: inputs are the key (128 bits) then the plaintext block (128 bits);
/// outputs the ciphertext (128 bits). [`AES128_AND_COUNT`] (6,400) AND gates.
pub fn aes128_circuit() -> Circuit {
    let mut b = Builder::new();
    let key = b.inputs(BLOCK_BITS);
    let block = b.inputs(BLOCK_BITS);
    let r = aes128(&mut b, &key, &block).and_then(|ct| b.finish(&ct));
    fixed_shape(r)
}

/// AES-128 with pre-expanded keys: inputs are the 11 round keys (1,408 bits, round key 0
/// first, as [`expand_key`] lays them out) then the plaintext block (128 bits); outputs the
/// ciphertext (128 bits). [`AES128_EXPANDED_AND_COUNT`] (5,120) AND gates.
pub fn aes128_expanded_circuit() -> Circuit {
    let mut b = Builder::new();
    let rk = b.inputs(EXPANDED_KEY_BITS);
    let block = b.inputs(BLOCK_BITS);
    let r = aes128_expanded(&mut b, &rk, &block).and_then(|ct| b.finish(&ct));
    fixed_shape(r)
}

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, without secret-dependent
/// branches or table lookups.
fn gf_mul(mut a: u8, b: u8) -> u8 {
    let mut p = 0u8;
    for i in 0..8 {
        p ^= a & 0u8.wrapping_sub((b >> i) & 1);
        let hi = a >> 7;
        a = (a << 1) ^ (0x1b & 0u8.wrapping_sub(hi));
    }
    p
}

/// The AES S-box computed arithmetically (inverse as x^254, then the affine map), so the
/// plain key expansion does no secret-indexed table lookups.
fn sbox_byte(x: u8) -> u8 {
    // x^254 = x^(2+4+8+16+32+64+128).
    let mut sq = gf_mul(x, x); // x^2
    let mut inv = sq;
    for _ in 0..6 {
        sq = gf_mul(sq, sq);
        inv = gf_mul(inv, sq);
    }
    inv ^ inv.rotate_left(1) ^ inv.rotate_left(2) ^ inv.rotate_left(3) ^ inv.rotate_left(4) ^ 0x63
}

/// AES-128 of one block under expanded round keys, as a copy of
/// [`aes128_expanded_circuit`] (built once per process): much faster than running the gadget
/// again when a circuit needs many blocks (counter-mode keystream, decryption).
pub fn expanded_block(
    b: &mut Builder,
    rk: &[Bit],
    block: &[Bit],
) -> Result<Vec<Bit>, CircuitError> {
    static AES: std::sync::OnceLock<Circuit> = std::sync::OnceLock::new();
    let c = AES.get_or_init(aes128_expanded_circuit);
    let mut inputs = rk.to_vec();
    inputs.extend_from_slice(block);
    b.instantiate(c, &inputs)
}

/// Plain (non-circuit) AES-128 key expansion: the 11 round keys, round key 0 (the key
/// itself) first, 176 bytes, in the layout [`aes128_expanded_circuit`] expects.
///
/// Runs in time independent of the key. The result is key material: the caller owns
/// zeroizing it.
pub fn expand_key(key: &[u8; 16]) -> [u8; 176] {
    let mut w = [0u8; 176];
    w[..16].copy_from_slice(key);
    for i in 4..44 {
        let mut temp = [w[4 * i - 4], w[4 * i - 3], w[4 * i - 2], w[4 * i - 1]];
        if i % 4 == 0 {
            temp = [
                sbox_byte(temp[1]) ^ RCON[i / 4 - 1],
                sbox_byte(temp[2]),
                sbox_byte(temp[3]),
                sbox_byte(temp[0]),
            ];
        }
        for j in 0..4 {
            w[4 * i + j] = w[4 * (i - 4) + j] ^ temp[j];
        }
    }
    w
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::{bits_to_bytes, bytes_to_bits};
    use super::*;
    use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
    use rand::Rng;

    /// The FIPS-197 S-box (Figure 7).
    const FIPS_SBOX: [u8; 256] = [
        0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab,
        0x76, 0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4,
        0x72, 0xc0, 0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71,
        0xd8, 0x31, 0x15, 0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2,
        0xeb, 0x27, 0xb2, 0x75, 0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6,
        0xb3, 0x29, 0xe3, 0x2f, 0x84, 0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb,
        0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf, 0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45,
        0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8, 0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5,
        0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2, 0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44,
        0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73, 0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a,
        0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb, 0xe0, 0x32, 0x3a, 0x0a, 0x49,
        0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79, 0xe7, 0xc8, 0x37, 0x6d,
        0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08, 0xba, 0x78, 0x25,
        0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a, 0x70, 0x3e,
        0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e, 0xe1,
        0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
        0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb,
        0x16,
    ];

    fn hex16(s: &str) -> [u8; 16] {
        hex::decode(s.replace(' ', "")).unwrap().try_into().unwrap()
    }

    fn reference(key: &[u8; 16], pt: &[u8; 16]) -> [u8; 16] {
        let cipher = aes::Aes128::new(GenericArray::from_slice(key));
        let mut blk = GenericArray::clone_from_slice(pt);
        cipher.encrypt_block(&mut blk);
        blk.into()
    }

    fn run(c: &Circuit, prefix: &[u8], pt: &[u8; 16]) -> Vec<u8> {
        c.evaluate_bytes(&[prefix, pt.as_slice()].concat()).unwrap()
    }

    #[test]
    fn sbox_circuit_matches_fips_table() {
        let mut b = Builder::new();
        let x = b.inputs(8);
        let out = sbox(&mut b, [x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]);
        let c = b.finish(&out).unwrap();
        assert_eq!(c.and_count(), SBOX_AND_COUNT);
        assert_eq!(c.and_count(), 32);
        // 83 XOR/XNOR gates (the 4 XNORs add 4 NOT gates here) and 32 AND: 115 gates.
        assert_eq!(c.num_gates(), 115 + 4);
        for v in 0..=255u8 {
            assert_eq!(
                c.evaluate_bytes(&[v]).unwrap(),
                vec![FIPS_SBOX[usize::from(v)]],
                "S({v:#04x})"
            );
        }
    }

    #[test]
    fn plain_sbox_matches_fips_table() {
        for v in 0..=255u8 {
            assert_eq!(sbox_byte(v), FIPS_SBOX[usize::from(v)], "S({v:#04x})");
        }
    }

    #[test]
    fn expand_key_fips197_appendix_a() {
        let w = expand_key(&hex16("2b7e1516 28aed2a6 abf71588 09cf4f3c"));
        assert_eq!(w[16..20], [0xa0, 0xfa, 0xfe, 0x17]);
        assert_eq!(w[172..176], [0xb6, 0x63, 0x0c, 0xa6]);
        assert_eq!(w[160..176], hex16("d014f9a8 c9ee2589 e13f0cc8 b6630ca6"));
    }

    #[test]
    fn key_schedule_circuit_matches_expand_key() {
        let mut b = Builder::new();
        let k = b.inputs(128);
        let rk = key_schedule(&mut b, &k).unwrap();
        assert_eq!(rk.len(), 1408);
        let c = b.finish(&rk).unwrap();
        assert_eq!(c.and_count(), 1280);
        let mut rng = rand::thread_rng();
        let mut keys = vec![
            [0u8; 16],
            [0xff; 16],
            hex16("2b7e1516 28aed2a6 abf71588 09cf4f3c"),
        ];
        for _ in 0..200 {
            keys.push(rng.gen());
        }
        for key in keys {
            assert_eq!(c.evaluate_bytes(&key).unwrap(), expand_key(&key).to_vec());
        }
    }

    #[test]
    fn and_counts() {
        let c = aes128_circuit();
        assert_eq!(c.and_count(), AES128_AND_COUNT);
        assert_eq!(c.and_count(), 6400);
        assert_eq!((c.num_inputs(), c.num_outputs()), (256, 128));
        let e = aes128_expanded_circuit();
        assert_eq!(e.and_count(), AES128_EXPANDED_AND_COUNT);
        assert_eq!(e.and_count(), 5120);
        assert_eq!((e.num_inputs(), e.num_outputs()), (1408 + 128, 128));
    }

    #[test]
    fn fips197_vectors() {
        let c = aes128_circuit();
        let e = aes128_expanded_circuit();
        let vectors = [
            // Appendix B.
            (
                "2b7e1516 28aed2a6 abf71588 09cf4f3c",
                "3243f6a8 885a308d 313198a2 e0370734",
                "3925841d 02dc09fb dc118597 196a0b32",
            ),
            // Appendix C.1.
            (
                "00010203 04050607 08090a0b 0c0d0e0f",
                "00112233 44556677 8899aabb ccddeeff",
                "69c4e0d8 6a7b0430 d8cdb780 70b4c55a",
            ),
        ];
        for (k, p, ct) in vectors {
            let (key, pt, ct) = (hex16(k), hex16(p), hex16(ct));
            assert_eq!(run(&c, &key, &pt), ct.to_vec());
            assert_eq!(run(&e, &expand_key(&key), &pt), ct.to_vec());
            assert_eq!(reference(&key, &pt), ct);
        }
    }

    #[test]
    fn random_against_aes_crate() {
        let c = aes128_circuit();
        let e = aes128_expanded_circuit();
        let mut rng = rand::thread_rng();
        for _ in 0..1000 {
            let key: [u8; 16] = rng.gen();
            let pt: [u8; 16] = rng.gen();
            let want = reference(&key, &pt).to_vec();
            assert_eq!(run(&c, &key, &pt), want);
            assert_eq!(run(&e, &expand_key(&key), &pt), want);
        }
    }

    #[test]
    fn builder_api_and_width_errors() {
        let mut b = Builder::new();
        let key = b.inputs(128);
        let pt = b.inputs(128);
        assert_eq!(
            aes128(&mut b, &key[..120], &pt),
            Err(CircuitError::WidthMismatch(120, 128))
        );
        assert_eq!(
            aes128_expanded(&mut b, &key, &pt),
            Err(CircuitError::WidthMismatch(128, 1408))
        );
        assert!(key_schedule(&mut b, &pt[..8]).is_err());
        // Mixed constant key: the builder API composes with constants.
        let fixed_key = hex16("00010203 04050607 08090a0b 0c0d0e0f");
        let kbits: Vec<Bit> = bytes_to_bits(&fixed_key)
            .into_iter()
            .map(Bit::Const)
            .collect();
        let ct = aes128(&mut b, &kbits, &pt).unwrap();
        let c = b.finish(&ct).unwrap();
        let input =
            bytes_to_bits(&[[0u8; 16], hex16("00112233 44556677 8899aabb ccddeeff")].concat());
        assert_eq!(
            bits_to_bytes(&c.evaluate(&input).unwrap()),
            hex16("69c4e0d8 6a7b0430 d8cdb780 70b4c55a").to_vec()
        );
    }
}
