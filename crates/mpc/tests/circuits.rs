//! Black-box checks of the public circuit API (`mpc::circuit::{aes, sha256, arith}`) from
//! outside the crate: fixed-shape circuits against reference implementations, and gadgets
//! composed through the public `Builder`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use mpc::circuit::{aes as caes, arith, bytes_to_bits, sha256, Bit, Builder};
use rand::Rng;
use sha2::Digest;

fn aes_ref(key: &[u8; 16], pt: &[u8; 16]) -> [u8; 16] {
    let mut blk = GenericArray::clone_from_slice(pt);
    aes::Aes128::new(GenericArray::from_slice(key)).encrypt_block(&mut blk);
    blk.into()
}

#[test]
fn aes_circuits_match_aes_crate() {
    let c = caes::aes128_circuit();
    let e = caes::aes128_expanded_circuit();
    assert_eq!((c.and_count(), e.and_count()), (6400, 5120));
    let mut rng = rand::thread_rng();
    for _ in 0..100 {
        let key: [u8; 16] = rng.gen();
        let pt: [u8; 16] = rng.gen();
        let want = aes_ref(&key, &pt).to_vec();
        assert_eq!(c.evaluate_bytes(&[key, pt].concat()).unwrap(), want);
        let rk = caes::expand_key(&key);
        assert_eq!(
            e.evaluate_bytes(&[rk.as_slice(), &pt].concat()).unwrap(),
            want
        );
    }
}

/// A composed circuit: "is AES_k(m) equal to c?", with k, m and c all inputs.
#[test]
fn composed_aes_then_equality() {
    let mut b = Builder::new();
    let k = b.inputs(128);
    let m = b.inputs(128);
    let c = b.inputs(128);
    let ct = caes::aes128(&mut b, &k, &m).unwrap();
    let eq = arith::eq_bytes(&mut b, &ct, &c).unwrap();
    let circ = b.finish(&[eq]).unwrap();
    assert_eq!(circ.and_count(), 6400 + 127);
    let mut rng = rand::thread_rng();
    for _ in 0..20 {
        let key: [u8; 16] = rng.gen();
        let pt: [u8; 16] = rng.gen();
        let good = aes_ref(&key, &pt);
        let mut bad = good;
        bad[rng.gen_range(0..16)] ^= 1 << rng.gen_range(0..8);
        let run = |ct: &[u8; 16]| circ.evaluate(&bytes_to_bits(&[key, pt, *ct].concat()));
        assert_eq!(run(&good).unwrap(), vec![true]);
        assert_eq!(run(&bad).unwrap(), vec![false]);
    }
}

#[test]
fn sha256_chained_compression_matches_sha2() {
    let c = sha256::compression_circuit();
    assert_eq!(c.and_count(), 22_573);
    let mut rng = rand::thread_rng();
    for len in [0usize, 3, 55, 56, 64, 119, 150] {
        let msg: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        let mut padded = msg.clone();
        padded.push(0x80);
        while padded.len() % 64 != 56 {
            padded.push(0);
        }
        padded.extend(((len as u64) * 8).to_be_bytes());
        let mut h: Vec<u8> = sha256::IV.iter().flat_map(|w| w.to_be_bytes()).collect();
        for block in padded.chunks_exact(64) {
            h = c.evaluate_bytes(&[h.as_slice(), block].concat()).unwrap();
        }
        assert_eq!(h, sha2::Sha256::digest(&msg).to_vec(), "len {len}");
    }
}

#[test]
fn p256_eq_lt_circuits() {
    let add = arith::add_mod_p256_circuit();
    assert_eq!(add.and_count(), 768);
    let mut pm1 = arith::P256_P;
    pm1[31] -= 1;
    let mut pm2 = arith::P256_P;
    pm2[31] -= 2;
    let mut one = [0u8; 32];
    one[31] = 1;
    // (p−1) + (p−1) = p − 2; (p−1) + 1 = 0.
    assert_eq!(
        add.evaluate_bytes(&[pm1, pm1].concat()).unwrap(),
        pm2.to_vec()
    );
    assert_eq!(
        add.evaluate_bytes(&[pm1, one].concat()).unwrap(),
        vec![0u8; 32]
    );

    let eq = arith::eq_circuit(16);
    let lt = arith::lt_circuit(128);
    assert_eq!((eq.and_count(), lt.and_count()), (127, 128));
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let x: u128 = rng.gen();
        let y: u128 = if rng.gen() { x } else { rng.gen() };
        let input = [x.to_be_bytes(), y.to_be_bytes()].concat();
        assert_eq!(
            eq.evaluate_bytes(&input).unwrap(),
            vec![u8::from(x == y) << 7]
        );
        assert_eq!(
            lt.evaluate_bytes(&input).unwrap(),
            vec![u8::from(x < y) << 7]
        );
    }
    // Gadgets accept constants: against 2^127 the whole borrow chain folds to ¬x[0].
    let mut b = Builder::new();
    let x = b.inputs(128);
    let k: Vec<Bit> = bytes_to_bits(&(1u128 << 127).to_be_bytes())
        .into_iter()
        .map(Bit::Const)
        .collect();
    let o = arith::lt_unsigned(&mut b, &x, &k).unwrap();
    let circ = b.finish(&[o]).unwrap();
    assert_eq!(circ.and_count(), 0);
    for v in [0u128, 1, (1 << 127) - 1, 1 << 127, u128::MAX] {
        let out = circ.evaluate(&bytes_to_bits(&v.to_be_bytes())).unwrap();
        assert_eq!(out, vec![v < (1 << 127)]);
    }
}
