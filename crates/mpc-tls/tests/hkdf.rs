//! The TLS 1.3 key-schedule circuits (`mpc_tls::hkdf`) against the trace of RFC 8448 §3
//! (a full handshake with `TLS_AES_128_GCM_SHA256`: every secret, key, IV and the client
//! Finished) and against a software HKDF built on the RustCrypto `hmac` crate, on random
//! inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{state_after, tls13_schedule};
use mpc::circuit::{bits_to_bytes, bytes_to_bits, Bit, Builder, Circuit};
use mpc_tls::hkdf::{
    application_secrets, finished_key, finished_mac, handshake_secrets, traffic_keys,
};
use mpc_tls::prf::HmacKey;
use rand::{Rng, SeedableRng};

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// One circuit for the whole schedule. Inputs: the DHE secret, the hash through
/// ServerHello, the hash through the server's Finished (32 bytes each). Outputs, 32 bytes
/// unless said: client and server handshake traffic secrets, master secret, client and
/// server handshake key (16) and IV (12), client and server Finished keys, the client
/// Finished verify_data over the third input, client and server application traffic
/// secrets, client and server application key (16) and IV (12).
fn schedule() -> Circuit {
    let mut b = Builder::new();
    let dhe = b.inputs(256);
    let hello = b.inputs(256);
    let sf = b.inputs(256);
    let hs = handshake_secrets(&mut b, &dhe, &hello).unwrap();
    let mut out: Vec<Bit> = Vec::new();
    out.extend(&hs.client);
    out.extend(&hs.server);
    out.extend(&hs.master);
    let ck = HmacKey::new(&mut b, &hs.client).unwrap();
    let sk = HmacKey::new(&mut b, &hs.server).unwrap();
    for k in [&ck, &sk] {
        let t = traffic_keys(&mut b, k).unwrap();
        out.extend(t.key);
        out.extend(t.iv);
    }
    let cf = finished_key(&mut b, &ck).unwrap();
    let sfk = finished_key(&mut b, &sk).unwrap();
    out.extend(&cf);
    out.extend(&sfk);
    out.extend(finished_mac(&mut b, &cf, &sf).unwrap());
    let ms = HmacKey::new(&mut b, &hs.master).unwrap();
    let (ca, sa) = application_secrets(&mut b, &ms, &sf).unwrap();
    out.extend(&ca);
    out.extend(&sa);
    for s in [&ca, &sa] {
        let k = HmacKey::new(&mut b, s).unwrap();
        let t = traffic_keys(&mut b, &k).unwrap();
        out.extend(t.key);
        out.extend(t.iv);
    }
    b.finish(&out).unwrap()
}

/// The outputs of [`schedule`], split.
fn run(c: &Circuit, dhe: &[u8], hello: &[u8], sf: &[u8]) -> Vec<Vec<u8>> {
    let bits: Vec<bool> = [dhe, hello, sf]
        .iter()
        .flat_map(|x| bytes_to_bits(x))
        .collect();
    let out = bits_to_bytes(&c.evaluate(&bits).unwrap());
    let widths = [
        32, 32, 32, 16, 12, 16, 12, 32, 32, 32, 32, 32, 16, 12, 16, 12,
    ];
    let mut at = 0;
    widths
        .iter()
        .map(|w| {
            at += w;
            out[at - w..at].to_vec()
        })
        .collect()
}

#[test]
fn the_schedule_matches_rfc_8448() {
    let c = schedule();
    let got = run(
        &c,
        &hx("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d"),
        &hx("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8"),
        &hx("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13"),
    );
    let want = [
        // client_handshake_traffic_secret, server_handshake_traffic_secret, master secret
        "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
        "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
        "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919",
        // handshake write keys and IVs: client, server
        "dbfaa693d1762c5b666af5d950258d01",
        "5bd3c71b836e0b76bb73265f",
        "3fce516009c21727d0f2e4e86ee403bc",
        "5d313eb2671276ee13000b30",
        // Finished keys: client, server; the client Finished verify_data
        "b80ad01015fb2f0bd65ff7d4da5d6bf83f84821d1f87fdc7d3c75b5a7b42d9c4",
        "008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8",
        "a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61",
        // application traffic secrets: client, server
        "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
        "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
        // application write keys and IVs: client, server
        "17422dda596ed5d9acd890e3c63f5051",
        "5b78923dee08579033e523d9",
        "9f02283b6c9c07efc26bb9f2ac92e356",
        "cf782b88dd83549aadf1e984",
    ];
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(hex::encode(g), w, "output {i}");
    }
}

#[test]
fn the_schedule_matches_software_on_random_inputs() {
    let c = schedule();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(13);
    for _ in 0..8 {
        let ins: Vec<[u8; 32]> = (0..3).map(|_| rng.gen()).collect();
        assert_eq!(
            run(&c, &ins[0], &ins[1], &ins[2]),
            tls13_schedule(&ins[0], &ins[1], &ins[2])
        );
    }
}

#[test]
fn widths_are_checked() {
    let mut b = Builder::new();
    let short = b.inputs(248);
    let hash = b.inputs(256);
    assert!(handshake_secrets(&mut b, &short, &hash).is_err());
    assert!(handshake_secrets(&mut b, &hash, &short).is_err());
    assert!(finished_mac(&mut b, &short, &hash).is_err());
    let k = HmacKey::new(&mut b, &hash).unwrap();
    assert!(mpc_tls::hkdf::expand_label(&mut b, &k, b"key", &[], 33).is_err());
}

/// An HMAC key's inner and outer states, as `HmacKey::state_bits` lays them out.
fn hmac_states(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for pad in [0x36u8, 0x5c] {
        let mut block = [pad; 64];
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
        out.extend(state_after(&block));
    }
    out
}

fn aes_zero(key: &[u8]) -> Vec<u8> {
    use aes::cipher::{BlockEncrypt, KeyInit};
    let c = aes::Aes128::new_from_slice(key).unwrap();
    let mut b = [0u8; 16].into();
    c.encrypt_block(&mut b);
    b.to_vec()
}

/// The two TLS 1.3 executions evaluated in the clear, chained as a session chains them
/// (the application execution takes the master secret the handshake execution kept),
/// against the software schedule: the opened handshake secrets, the kept master secret,
/// the GHASH keys and the kept application keys and IVs; copies of a public input that
/// differ set the mismatch bit.
#[test]
fn the_tls13_executions_match_software() {
    use mpc::circuit::aes::expand_key;
    use mpc::field::{Field, Fp};
    use mpc_tls::circuits13::{application13_spec, handshake13_spec};
    let hs = handshake13_spec().unwrap();
    let app = application13_spec(0).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    for round in 0..2 {
        let dhe = Fp::random(&mut rng);
        let (a0, a1) = (Fp::random(&mut rng), Fp::random(&mut rng));
        let a2 = dhe - a0 - a1;
        let hello: [u8; 32] = rng.gen();
        let sf: [u8; 32] = rng.gen();
        let mut other = hello;
        other[0] ^= u8::from(round == 1);
        let mut input = Vec::new();
        for a in [a0, a1, a2] {
            input.extend(bytes_to_bits(&a.to_be_bytes()));
        }
        input.extend(bytes_to_bits(&hello));
        input.extend(bytes_to_bits(&other));
        let out = hs.circuit().evaluate(&input).unwrap();
        assert_eq!(out[0], round == 1, "the mismatch bit");
        let out = bits_to_bytes(&out[1..]);
        let want = tls13_schedule(&dhe.to_be_bytes(), &hello, &sf);
        assert_eq!(&out[..32], &want[0][..], "client handshake traffic secret");
        assert_eq!(
            &out[32..64],
            &want[1][..],
            "server handshake traffic secret"
        );
        let master_state = out[64..128].to_vec();
        assert_eq!(
            master_state,
            hmac_states(&want[2]),
            "the kept master secret"
        );

        let mut input = bytes_to_bits(&master_state);
        input.extend(bytes_to_bits(&sf));
        input.extend(bytes_to_bits(&sf));
        let out = app.circuit().evaluate(&input).unwrap();
        assert!(!out[0]);
        let out = bits_to_bytes(&out[1..]);
        let (ckey, civ, skey, siv) = (&want[12], &want[13], &want[14], &want[15]);
        assert_eq!(&out[..16], &aes_zero(ckey)[..], "H_client");
        assert_eq!(&out[16..32], &aes_zero(skey)[..], "H_server");
        let kept = &out[32..];
        let rk = 176;
        assert_eq!(&kept[..rk], &expand_key(ckey[..].try_into().unwrap())[..]);
        assert_eq!(&kept[rk..rk + 12], &civ[..]);
        assert_eq!(
            &kept[rk + 12..2 * rk + 12],
            &expand_key(skey[..].try_into().unwrap())[..]
        );
        assert_eq!(&kept[2 * rk + 12..], &siv[..]);
    }
}

/// What the TLS 1.3 executions cost, next to the TLS 1.2 handshake execution.
#[test]
fn the_tls13_executions_cost_about_one_tls12_handshake() {
    let hs = mpc_tls::circuits13::handshake13_spec().unwrap();
    let app = mpc_tls::circuits13::application13_spec(0).unwrap();
    let tls12 = mpc_tls::circuits::handshake_spec().unwrap();
    let (a, b, c) = (
        hs.circuit().and_count(),
        app.circuit().and_count(),
        tls12.circuit().and_count(),
    );
    assert!(a + b < c + c / 10, "{a} + {b} AND gates against {c}");
}
