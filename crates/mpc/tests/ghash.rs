//! GHASH on shares against real AES-GCM tags from the `aes-gcm` crate, including a full
//! 16 KiB TLS record (1,026 powers of H).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aes::cipher::{generic_array::GenericArray, BlockEncrypt};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes128Gcm;
use mpc::ghash::{gcm_blocks, GhashError, GhashKey, GhashMachine, GhashPowers, MAX_POWERS};
use mpc::rss::{run_local, Machine};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn aes(key: &[u8; 16], block: [u8; 16]) -> [u8; 16] {
    let c = aes::Aes128::new(GenericArray::from_slice(key));
    let mut b = GenericArray::from(block);
    c.encrypt_block(&mut b);
    b.into()
}

fn xor(a: [u8; 16], b: [u8; 16]) -> [u8; 16] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// XOR shares of H, the machines, run to completion: each party's powers.
pub fn powers_for(h: [u8; 16], count: usize, rng: &mut ChaCha20Rng) -> Vec<GhashPowers> {
    let s0: [u8; 16] = rng.gen();
    let s1: [u8; 16] = rng.gen();
    let shares = [s0, s1, xor(xor(h, s0), s1)];
    let mut ms: [GhashMachine; 3] = [0u8, 1, 2].map(|i| {
        Machine::new(i, GhashKey::new(i, shares[i as usize], count).unwrap(), rng).unwrap()
    });
    run_local(&mut ms).unwrap();
    ms.iter_mut().map(|m| m.take_output().unwrap()).collect()
}

#[test]
fn shares_of_ghash_give_the_aes_gcm_tag() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let key: [u8; 16] = rng.gen();
    let h = aes(&key, [0; 16]);
    let powers = powers_for(h, 1026, &mut rng);
    assert!(powers.iter().all(|p| p.len() == 1026));
    let cipher = Aes128Gcm::new(GenericArray::from_slice(&key));
    // TLS 1.2 records: 13-byte additional data; plaintexts from empty to a full 16 KiB record.
    for (aad_len, pt_len) in [
        (13, 0),
        (13, 1),
        (13, 16),
        (13, 17),
        (0, 100),
        (13, 4096),
        (13, 16384),
    ] {
        let nonce: [u8; 12] = rng.gen();
        let aad: Vec<u8> = (0..aad_len).map(|_| rng.gen()).collect();
        let pt: Vec<u8> = (0..pt_len).map(|_| rng.gen()).collect();
        let out = cipher
            .encrypt(
                GenericArray::from_slice(&nonce),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .unwrap();
        let (ct, tag) = out.split_at(pt_len);
        let blocks = gcm_blocks(&aad, ct);
        let mut j0 = [0u8; 16];
        j0[..12].copy_from_slice(&nonce);
        j0[15] = 1;
        let mut got = aes(&key, j0);
        for p in &powers {
            got = xor(got, p.ghash_share(&blocks).unwrap());
        }
        assert_eq!(&got[..], tag, "aad {aad_len} B, plaintext {pt_len} B");
    }
}

#[test]
fn each_power_is_right() {
    use mpc::field::{Field, Gf128};
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let h: [u8; 16] = rng.gen();
    let powers = powers_for(h, 37, &mut rng);
    let hg = Gf128::from_block(h);
    let mut want = Gf128::ONE;
    for k in 1..=37 {
        want *= hg;
        let s = [0, 1, 2].map(|i| powers[i].power(k).unwrap());
        assert!(mpc::rss::reconstruct(&s) == Some(want), "H^{k}");
    }
    assert!(powers[0].power(0).is_none() && powers[0].power(38).is_none());
}

#[test]
fn bad_requests_are_errors() {
    assert_eq!(
        GhashKey::new(0, [0; 16], 0).unwrap_err(),
        GhashError::PowerCount(0)
    );
    assert_eq!(
        GhashKey::new(0, [0; 16], MAX_POWERS + 1).unwrap_err(),
        GhashError::PowerCount(MAX_POWERS + 1)
    );
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let powers = powers_for([7; 16], 3, &mut rng);
    assert_eq!(
        powers[0].ghash_share(&[[0; 16]; 4]).unwrap_err(),
        GhashError::TooManyBlocks {
            blocks: 4,
            powers: 3
        }
    );
    // One power is enough for one block; nothing is printed of the shares.
    let one = powers_for([7; 16], 1, &mut rng);
    assert!(one[0].ghash_share(&[[1; 16]]).is_ok());
    assert_eq!(
        format!("{:?}", one[0]),
        "GhashPowers { party: 0, powers: 1 }"
    );
}
