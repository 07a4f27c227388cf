//! The session's circuits evaluated in plaintext against the references: the software TLS
//! 1.2 PRF (RustCrypto `hmac`), RustCrypto `aes` for every counter block and `aes-gcm` /
//! `ghash` for the client Finished record, with random keys, randoms and nonces. These are
//! the exact circuits the nodes garble.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes_gcm::aead::AeadInPlace;
use common::{prf, state_after};
use ghash::universal_hash::UniversalHash;
use mpc::circuit::aes::expand_key;
use mpc::circuit::{bits_to_bytes, bytes_to_bits};
use mpc::field::{Field, Fp};
use mpc_tls::circuits::{
    batch_blocks, ctr_spec, handshake_spec, hs_out, plan_batches, server_finished_spec,
    suffix_bytes, CtrRecord,
};
use mpc_tls::codec::{finished, gcm_aad, ContentType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn aes_block(key: &[u8; 16], block: [u8; 16]) -> [u8; 16] {
    let c = aes::Aes128::new(key.into());
    let mut b = block.into();
    c.encrypt_block(&mut b);
    b.into()
}

fn counter(iv: &[u8], explicit: &[u8; 8], ctr: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(iv);
    b[4..12].copy_from_slice(explicit);
    b[12..].copy_from_slice(&ctr.to_be_bytes());
    b
}

#[test]
fn handshake_circuit_matches_the_references() {
    let spec = handshake_spec().unwrap();
    let c = spec.circuit();
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    for _ in 0..2 {
        // Additive shares mod p of a random pre-master secret.
        let pms = Fp::random(&mut rng);
        let (a0, a1) = (Fp::random(&mut rng), Fp::random(&mut rng));
        let a2 = pms - a0 - a1;
        let public: Vec<u8> = (0..96).map(|_| rng.gen()).collect();
        let (sh, sr, cr) = (&public[..32], &public[32..64], &public[64..]);
        let mut input = Vec::new();
        for a in [a0, a1, a2] {
            input.extend(bytes_to_bits(&a.to_be_bytes()));
        }
        input.extend(bytes_to_bits(&public));
        input.extend(bytes_to_bits(&public));
        let out = c.evaluate(&input).unwrap();

        let ms = prf(&pms.to_be_bytes(), b"extended master secret", sh, 48);
        let kb = prf(&ms, b"key expansion", &[sr, cr].concat(), 40);
        let ck: [u8; 16] = kb[..16].try_into().unwrap();
        let sk: [u8; 16] = kb[16..32].try_into().unwrap();
        let (civ, siv) = (&kb[32..36], &kb[36..40]);
        let cvd: [u8; 12] = prf(&ms, b"client finished", sh, 12).try_into().unwrap();

        let r = |g: usize| spec.output_range(g);
        let public_out = &out[r(hs_out::PUBLIC)];
        assert!(!public_out[0], "copies agree");
        assert_eq!(bits_to_bytes(&public_out[1..97]), cvd);
        let fin_ct = bits_to_bytes(&public_out[97..225]);
        // aes-gcm's encryption of the Finished message with explicit nonce 0.
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(civ);
        let aad = gcm_aad(0, ContentType::Handshake, 16);
        let mut buf = finished(&cvd).to_vec();
        let tag = aes_gcm::Aes128Gcm::new((&ck).into())
            .encrypt_in_place_detached((&nonce).into(), &aad, &mut buf)
            .unwrap();
        assert_eq!(fin_ct, buf);
        let shares = bits_to_bytes(&out[r(hs_out::SHARES)]);
        let (mask, hc, hs) = (&shares[..16], &shares[16..32], &shares[32..48]);
        assert_eq!(hc, aes_block(&ck, [0; 16]));
        assert_eq!(hs, aes_block(&sk, [0; 16]));
        assert_eq!(mask, aes_block(&ck, counter(civ, &[0; 8], 1)));
        // The tag the nodes assemble: GHASH_H(aad, ct) ⊕ mask.
        let mut g = ghash::GHash::new(hc.into());
        g.update_padded(&aad);
        g.update_padded(&fin_ct);
        let mut lens = [0u8; 16];
        lens[..8].copy_from_slice(&(13u64 * 8).to_be_bytes());
        lens[8..].copy_from_slice(&(16u64 * 8).to_be_bytes());
        g.update(&[lens.into()]);
        let ours: Vec<u8> = g.finalize().iter().zip(mask).map(|(a, b)| a ^ b).collect();
        assert_eq!(ours, tag.as_slice());
        // Kept: expanded keys and implicit nonces, and the master secret's HMAC states.
        let ckey = bits_to_bytes(&out[r(hs_out::CLIENT_KEY)]);
        assert_eq!(&ckey[..176], &expand_key(&ck)[..]);
        assert_eq!(&ckey[176..], civ);
        let skey = bits_to_bytes(&out[r(hs_out::SERVER_KEY)]);
        assert_eq!(&skey[..176], &expand_key(&sk)[..]);
        assert_eq!(&skey[176..], siv);
        let mut pad = [0u8; 64];
        pad[..48].copy_from_slice(&ms);
        let ipad: [u8; 64] = pad.map(|b| b ^ 0x36);
        let opad: [u8; 64] = pad.map(|b| b ^ 0x5c);
        let states = bits_to_bytes(&out[r(hs_out::MASTER)]);
        assert_eq!(states, [state_after(&ipad), state_after(&opad)].concat());

        // A copy that differs in one bit raises the mismatch bit.
        let n = input.len();
        input[n - 1] ^= true;
        assert!(c.evaluate(&input).unwrap()[0]);
    }
}

#[test]
fn server_finished_circuit_matches_the_references() {
    let spec = server_finished_spec(0).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let ms: Vec<u8> = (0..48).map(|_| rng.gen()).collect();
    let sk: [u8; 16] = rng.gen();
    let siv: [u8; 4] = rng.gen();
    let hash: [u8; 32] = rng.gen();
    let explicit: [u8; 8] = rng.gen();
    let mut pad = [0u8; 64];
    pad[..48].copy_from_slice(&ms);
    let mut input = bytes_to_bits(&[&expand_key(&sk)[..], &siv[..]].concat());
    input.extend(bytes_to_bits(&state_after(&pad.map(|b| b ^ 0x36))));
    input.extend(bytes_to_bits(&state_after(&pad.map(|b| b ^ 0x5c))));
    let public = [&hash[..], &explicit[..]].concat();
    input.extend(bytes_to_bits(&public));
    input.extend(bytes_to_bits(&public));
    let out = spec.circuit().evaluate(&input).unwrap();
    assert!(!out[0]);
    assert_eq!(
        bits_to_bytes(&out[1..97]),
        prf(&ms, b"server finished", &hash, 12)
    );
    assert_eq!(
        bits_to_bytes(&out[97..225]),
        aes_block(&sk, counter(&siv, &explicit, 2))
    );
    assert_eq!(
        bits_to_bytes(&out[225..353]),
        aes_block(&sk, counter(&siv, &explicit, 1))
    );
}

#[test]
fn keystream_batches_match_aes_gcm() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let key: [u8; 16] = rng.gen();
    let iv: [u8; 4] = rng.gen();
    let lens = [0usize, 1, 15, 16, 17, 100, 2000, 2];
    let records: Vec<CtrRecord> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| CtrRecord {
            len,
            alert: i == lens.len() - 1,
        })
        .collect();
    let explicit: Vec<[u8; 8]> = lens.iter().map(|_| rng.gen()).collect();
    let plaintexts: Vec<Vec<u8>> = lens
        .iter()
        .map(|&l| (0..l).map(|_| rng.gen()).collect())
        .collect();
    let mut ks: Vec<Vec<u8>> = vec![Vec::new(); lens.len()];
    let mut masks: Vec<Option<Vec<u8>>> = vec![None; lens.len()];
    for batch in plan_batches(&records) {
        let (blocks, shape) = batch_blocks(&records, &batch);
        let spec = ctr_spec(0, hs_out::SERVER_KEY, shape).unwrap();
        let mut input = bytes_to_bits(&[&expand_key(&key)[..], &iv[..]].concat());
        let suffix = bytes_to_bits(&suffix_bytes(&blocks, |r| explicit[r]));
        input.extend(suffix.clone());
        input.extend(suffix);
        let out = spec.circuit().evaluate(&input).unwrap();
        let lay = shape.layout();
        assert!(!out[spec.output_range(lay.public)][0]);
        // Blocks come in the canonical order: public keystream, masks, client keystream.
        let mut outs: Vec<Vec<u8>> = bits_to_bytes(&out[spec.output_range(lay.public)][1..])
            .chunks(16)
            .map(<[u8]>::to_vec)
            .collect();
        if let Some(g) = lay.shares {
            outs.extend(
                bits_to_bytes(&out[spec.output_range(g)])
                    .chunks(16)
                    .map(<[u8]>::to_vec),
            );
        }
        if let Some(g) = lay.client {
            outs.extend(
                bits_to_bytes(&out[spec.output_range(g)])
                    .chunks(16)
                    .map(<[u8]>::to_vec),
            );
        }
        for (b, o) in blocks.iter().zip(outs) {
            assert_eq!(o, aes_block(&key, counter(&iv, &explicit[b.record], b.ctr)));
            if b.ctr == 1 {
                masks[b.record] = Some(o);
            } else {
                ks[b.record].extend(o);
            }
        }
    }
    for (i, p) in plaintexts.iter().enumerate() {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&iv);
        nonce[4..].copy_from_slice(&explicit[i]);
        let mut buf = p.clone();
        aes_gcm::Aes128Gcm::new((&key).into())
            .encrypt_in_place_detached((&nonce).into(), b"", &mut buf)
            .unwrap();
        let ours: Vec<u8> = p.iter().zip(&ks[i]).map(|(a, b)| a ^ b).collect();
        assert_eq!(ours, buf, "record {i}");
        assert!(masks[i].is_some(), "record {i} has its tag mask");
    }
}

/// TLS 1.3 keystream executions (`circuits13::ctr13_spec`: the sequence number XORed into
/// the kept 12-byte IV inside the circuit) against AES under RFC 8446's nonces, and whole
/// records against `record13::seal` (our keystream XOR the inner plaintext is its
/// ciphertext); the 1.3 opened key is the AES key and the 12-byte IV.
#[test]
fn tls13_keystream_batches_match_aes_gcm() {
    use mpc_tls::circuits13::{app13_out, ctr13_spec, open_key13_spec};
    use mpc_tls::record13::{nonce, seal};
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let key: [u8; 16] = rng.gen();
    let iv: [u8; 12] = rng.gen();
    // Inner plaintexts (content and content type) of records 0, 1, 2, …
    let lens = [1usize, 16, 17, 300];
    let inner: Vec<Vec<u8>> = lens
        .iter()
        .map(|&l| (0..l).map(|_| rng.gen_range(1..=255)).collect())
        .collect();
    let records: Vec<CtrRecord> = lens
        .iter()
        .map(|&len| CtrRecord { len, alert: false })
        .collect();
    let mut ks: Vec<Vec<u8>> = vec![Vec::new(); lens.len()];
    for batch in plan_batches(&records) {
        let (blocks, shape) = batch_blocks(&records, &batch);
        let spec = ctr13_spec(0, app13_out::SERVER_KEY, shape).unwrap();
        let mut input = bytes_to_bits(&[&expand_key(&key)[..], &iv[..]].concat());
        let suffix = bytes_to_bits(&suffix_bytes(&blocks, |r| (r as u64).to_be_bytes()));
        input.extend(suffix.clone());
        input.extend(suffix);
        let out = spec.circuit().evaluate(&input).unwrap();
        let lay = shape.layout();
        assert!(!out[spec.output_range(lay.public)][0]);
        let mut outs: Vec<Vec<u8>> = Vec::new();
        for g in [lay.shares, lay.client].into_iter().flatten() {
            outs.extend(
                bits_to_bytes(&out[spec.output_range(g)])
                    .chunks(16)
                    .map(<[u8]>::to_vec),
            );
        }
        for (b, o) in blocks.iter().zip(outs) {
            let mut block = [0u8; 16];
            block[..12].copy_from_slice(&nonce(&iv, b.record as u64));
            block[12..].copy_from_slice(&b.ctr.to_be_bytes());
            assert_eq!(
                o,
                aes_block(&key, block),
                "record {} counter {}",
                b.record,
                b.ctr
            );
            if b.ctr > 1 {
                ks[b.record].extend(o);
            }
        }
    }
    for (i, p) in inner.iter().enumerate() {
        let (content, typ) = p.split_at(p.len() - 1);
        let typ = match typ[0] % 2 {
            0 => ContentType::ApplicationData,
            _ => ContentType::Handshake,
        };
        let mut with_type = content.to_vec();
        with_type.push(typ.byte());
        let rec = seal(&key, &iv, i as u64, typ, content).unwrap();
        let ours: Vec<u8> = with_type.iter().zip(&ks[i]).map(|(a, b)| a ^ b).collect();
        assert_eq!(ours, rec[5..5 + with_type.len()], "record {i}");
    }
    // The opened key: AES key then the 12-byte IV, taken from the kept key.
    let open = open_key13_spec(0, app13_out::SERVER_KEY).unwrap();
    let input = bytes_to_bits(&[&expand_key(&key)[..], &iv[..]].concat());
    let out = bits_to_bytes(&open.circuit().evaluate(&input).unwrap());
    assert_eq!(out, [&key[..], &iv[..]].concat());
    assert_eq!(open.circuit().and_count(), 0);
}
