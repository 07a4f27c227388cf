//! The key-schedule circuits against the TLS 1.2 PRF test vector from the IETF TLS working
//! group (msg03416, also used by BearSSL and others) and against a software PRF built on the
//! RustCrypto `hmac` crate, on random inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::prf;
use mpc::circuit::{bits_to_bytes, bytes_to_bits, Builder, Circuit};
use mpc_tls::prf::{extended_master_secret, key_expansion, verify_data, HmacKey, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Builds a circuit whose inputs are byte strings of the given lengths.
fn build(
    lens: &[usize],
    f: impl FnOnce(&mut Builder, Vec<Vec<mpc::circuit::Bit>>) -> Vec<mpc::circuit::Bit>,
) -> Circuit {
    let mut b = Builder::new();
    let ins: Vec<_> = lens.iter().map(|n| b.inputs(n * 8)).collect();
    let out = f(&mut b, ins);
    b.finish(&out).unwrap()
}

fn eval(c: &Circuit, inputs: &[&[u8]]) -> Vec<u8> {
    let bits: Vec<bool> = inputs.iter().flat_map(|i| bytes_to_bits(i)).collect();
    bits_to_bytes(&c.evaluate(&bits).unwrap())
}

#[test]
fn p_sha256_matches_the_tls_working_group_vector() {
    let secret = hx("9bbe436ba940f017b17652849a71db35");
    let seed = hx("a0ba9f936cda311827a6f796ffd5198c");
    let want = hx(concat!(
        "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a",
        "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab",
        "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701",
        "87347b66"
    ));
    // The reference agrees with the vector …
    assert_eq!(prf(&secret, b"test label", &seed, 100), want);
    // … and so does the circuit.
    let c = build(&[16, 16], |b, ins| {
        let k = HmacKey::new(b, &ins[0]).unwrap();
        k.prf(b, b"test label", &ins[1], 100).unwrap()
    });
    assert_eq!(eval(&c, &[&secret, &seed]), want);
}

#[test]
fn the_handshake_key_schedule_matches_software_on_random_inputs() {
    // One circuit for the whole TLS 1.2 schedule: pms, session hash, randoms, two
    // handshake hashes in; master secret, key block and both verify_data out.
    let c = build(&[32, 32, 32, 32, 32, 32], |b, ins| {
        let ms = extended_master_secret(b, &ins[0], &ins[1]).unwrap();
        let mk = HmacKey::new(b, &ms).unwrap();
        let keys = key_expansion(b, &mk, &ins[2], &ins[3]).unwrap();
        let cf = verify_data(b, &mk, Side::Client, &ins[4]).unwrap();
        let sf = verify_data(b, &mk, Side::Server, &ins[5]).unwrap();
        [
            ms,
            keys.client_key,
            keys.server_key,
            keys.client_iv,
            keys.server_iv,
            cf,
            sf,
        ]
        .concat()
    });
    // 35 SHA-256 compressions: EMS 12, key expansion 13 (2 key states + 3 + 3 + 2 + 3, the
    // 77-byte seed taking two blocks), each Finished 5 (2 + 3, the master-secret key states
    // shared).
    let per = mpc::circuit::sha256::COMPRESSION_AND_COUNT;
    eprintln!("TLS 1.2 key schedule: {} AND gates", c.and_count());
    assert!(
        c.and_count() <= 35 * per && c.and_count() > 34 * per,
        "{}",
        c.and_count()
    );
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for _ in 0..5 {
        let v: Vec<[u8; 32]> = (0..6).map(|_| rng.gen()).collect();
        let (pms, session_hash, sr, cr, hc, hs) = (v[0], v[1], v[2], v[3], v[4], v[5]);
        let ms = prf(&pms, b"extended master secret", &session_hash, 48);
        let kb = prf(&ms, b"key expansion", &[sr, cr].concat(), 40);
        let cf = prf(&ms, b"client finished", &hc, 12);
        let sf = prf(&ms, b"server finished", &hs, 12);
        let want = [ms, kb, cf, sf].concat();
        let got = eval(&c, &[&pms, &session_hash, &sr, &cr, &hc, &hs]);
        assert_eq!(got, want);
    }
}

#[test]
fn compressions_are_as_counted() {
    use mpc::circuit::sha256::COMPRESSION_AND_COUNT;
    // EMS: 2 (key states) + A(1) 2 + P(1) 3 + A(2) 2 + P(2) 3 = 12 compressions; the
    // constant padding and label words fold some additions away, never add any.
    let c = build(&[32, 32], |b, ins| {
        extended_master_secret(b, &ins[0], &ins[1]).unwrap()
    });
    assert!(
        c.and_count() <= 12 * COMPRESSION_AND_COUNT,
        "{}",
        c.and_count()
    );
    assert!(
        c.and_count() > 11 * COMPRESSION_AND_COUNT,
        "{}",
        c.and_count()
    );
}

#[test]
fn bad_widths_are_errors() {
    let mut b = Builder::new();
    let long = b.inputs(65 * 8);
    assert!(HmacKey::new(&mut b, &long).is_err());
    let mut b = Builder::new();
    let odd = b.inputs(7);
    assert!(HmacKey::new(&mut b, &odd).is_err());
}
