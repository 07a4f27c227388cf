//! The handshake's secret path, end to end among three parties over in-memory transports:
//! ECtF turns three points into additive shares of the ECDH x-coordinate (the pre-master
//! secret); a garbled circuit adds them mod p, derives the extended master secret and the
//! session keys, and hands the keys out only as XOR shares, and the client's Finished
//! verify_data to everyone. Checked against a software PRF over the real ECDH secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

mod common;
use common::prf;
use mpc::circuit::{bits_to_bytes, bytes_to_bits, Builder};
use mpc::convert::{additive_fp_inputs, fp_to_bits, sum_mod_p};
use mpc::ectf::ectf_machine;
use mpc::session::{run_arith, Session};
use mpc::transport::{memory_network, Transport};
use mpc::{ExecSpec, GroupOutput, InputGroup, InputSource, Inputs, OutputGroup, OutputTo, Party};
use mpc_tls::prf::{extended_master_secret, key_expansion, verify_data, HmacKey, Side};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::Field as _;
use p256::{ProjectivePoint, Scalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const T: Duration = Duration::from_secs(120);

/// Inputs: three pms shares (parties 0, 1, 2), then the public session hash, server random,
/// client random and handshake hash (fed by party 0 here). Outputs: the 40-byte key block as
/// XOR shares, client verify_data to all.
fn spec() -> Arc<ExecSpec> {
    let mut b = Builder::new();
    let shares = additive_fp_inputs(&mut b);
    let publics: Vec<_> = (0..4).map(|_| b.inputs(256)).collect();
    let pms = sum_mod_p(&mut b, &shares.wires).unwrap();
    let ms = extended_master_secret(&mut b, &pms, &publics[0]).unwrap();
    let mk = HmacKey::new(&mut b, &ms).unwrap();
    let k = key_expansion(&mut b, &mk, &publics[1], &publics[2]).unwrap();
    let cf = verify_data(&mut b, &mk, Side::Client, &publics[3]).unwrap();
    let out = [k.client_key, k.server_key, k.client_iv, k.server_iv, cf].concat();
    let c = b.finish(&out).unwrap();
    let mut groups = shares.groups;
    groups.push(InputGroup {
        width: 1024,
        source: InputSource::Private(0),
    });
    Arc::new(
        ExecSpec::new(
            Arc::new(c),
            groups,
            vec![
                OutputGroup {
                    width: 320,
                    to: OutputTo::Shares,
                },
                OutputGroup {
                    width: 96,
                    to: OutputTo::All,
                },
            ],
        )
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdh_shares_to_session_key_shares() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    // The server's key pair and the three nodes' scalar shares of the client's key.
    let server = Scalar::random(&mut rng);
    let server_pub = ProjectivePoint::GENERATOR * server;
    let s: [Scalar; 3] = [0; 3].map(|_| Scalar::random(&mut rng));
    let client_pub = ProjectivePoint::GENERATOR * (s[0] + s[1] + s[2]);
    // What the server computes.
    let premaster: [u8; 32] = (*(client_pub * server)
        .to_affine()
        .to_encoded_point(false)
        .x()
        .unwrap())
    .into();
    let publics: [[u8; 32]; 4] = [0; 4].map(|_| rng.gen());
    let ms = prf(&premaster, b"extended master secret", &publics[0], 48);
    let want_keys = prf(
        &ms,
        b"key expansion",
        &[publics[1], publics[2]].concat(),
        40,
    );
    let want_cf = prf(&ms, b"client finished", &publics[3], 12);

    let spec = spec();
    let tasks: Vec<_> = memory_network()
        .into_iter()
        .map(|mut t| {
            let id = t.id();
            let point = (server_pub * s[id as usize]).to_affine();
            let spec = spec.clone();
            tokio::spawn(async move {
                let mut rng = ChaCha20Rng::seed_from_u64(100 + u64::from(id));
                let mut m = ectf_machine(id, &point, &mut rng).unwrap();
                let share = run_arith(&mut t, &mut m, T).await.unwrap().unwrap();
                let mut sess = Session::new(Party::new(id, &mut rng).unwrap(), t).with_timeout(T);
                sess.setup().await.unwrap();
                let e = sess.preprocess(spec).unwrap();
                sess.flush().await.unwrap();
                let mut inputs =
                    Inputs::none().value(id as usize, fp_to_bits(&share.value()).to_vec());
                if id == 0 {
                    inputs = inputs.value(3, bytes_to_bits(&publics.concat()));
                }
                sess.execute(e, inputs, &mut rng).await.unwrap()
            })
        })
        .collect();
    let mut keys = vec![0u8; 40];
    for t in tasks {
        let out = t.await.unwrap();
        let (GroupOutput::Share(k), GroupOutput::Value(cf)) = (&out[0], &out[1]) else {
            panic!("{out:?}")
        };
        let k = bits_to_bytes(k);
        // No single share is the key.
        assert_ne!(k, want_keys);
        for (a, b) in keys.iter_mut().zip(k) {
            *a ^= b;
        }
        assert_eq!(bits_to_bytes(cf), want_cf);
    }
    assert_eq!(keys, want_keys);
}

/// The TLS 1.3 path among three parties: ECtF gives additive shares of the ECDH secret;
/// the TLS 1.3 handshake execution opens both handshake traffic secrets to every party and
/// keeps the master secret on its wires; the application execution takes it from there
/// and hands out the GHASH keys of both application traffic keys as XOR shares. Checked
/// against the software schedule over the real ECDH secret (the kept application keys
/// themselves show only through H = AES(key, 0)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdh_shares_to_tls13_secrets() {
    use aes::cipher::{BlockEncrypt, KeyInit};
    use mpc_tls::circuits13::{app13_out, application13_spec, handshake13_spec, hs13_out};
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let server = Scalar::random(&mut rng);
    let server_pub = ProjectivePoint::GENERATOR * server;
    let s: [Scalar; 3] = [0; 3].map(|_| Scalar::random(&mut rng));
    let client_pub = ProjectivePoint::GENERATOR * (s[0] + s[1] + s[2]);
    let dhe: [u8; 32] = (*(client_pub * server)
        .to_affine()
        .to_encoded_point(false)
        .x()
        .unwrap())
    .into();
    let (hello, sf): ([u8; 32], [u8; 32]) = (rng.gen(), rng.gen());
    let want = common::tls13_schedule(&dhe, &hello, &sf);
    let h = |key: &[u8]| {
        let mut b = [0u8; 16].into();
        aes::Aes128::new_from_slice(key)
            .unwrap()
            .encrypt_block(&mut b);
        b.to_vec()
    };
    let want_h = [h(&want[12]), h(&want[14])].concat();

    let tasks: Vec<_> = memory_network()
        .into_iter()
        .map(|mut t| {
            let id = t.id();
            let point = (server_pub * s[id as usize]).to_affine();
            tokio::spawn(async move {
                let mut rng = ChaCha20Rng::seed_from_u64(200 + u64::from(id));
                let mut m = ectf_machine(id, &point, &mut rng).unwrap();
                let share = run_arith(&mut t, &mut m, T).await.unwrap().unwrap();
                let mut sess = Session::new(Party::new(id, &mut rng).unwrap(), t).with_timeout(T);
                sess.setup().await.unwrap();
                let e_hs = sess.preprocess(handshake13_spec().unwrap()).unwrap();
                let e_app = sess.preprocess(application13_spec(e_hs).unwrap()).unwrap();
                sess.flush().await.unwrap();
                let mut inputs =
                    Inputs::none().value(id as usize, fp_to_bits(&share.value()).to_vec());
                if id < 2 {
                    inputs = inputs.value(3 + id as usize, bytes_to_bits(&hello));
                }
                let hs = sess.execute(e_hs, inputs, &mut rng).await.unwrap();
                let inputs = if id < 2 {
                    Inputs::none().value(1 + id as usize, bytes_to_bits(&sf))
                } else {
                    Inputs::none()
                };
                let app = sess.execute(e_app, inputs, &mut rng).await.unwrap();
                (hs, app)
            })
        })
        .collect();
    let mut hs_keys = vec![0u8; 32];
    for t in tasks {
        let (hs, app) = t.await.unwrap();
        let GroupOutput::Value(opened) = &hs[hs13_out::OPENED] else {
            panic!("{hs:?}")
        };
        assert!(!opened[0], "the copies of the hello hash agree");
        let opened = bits_to_bytes(&opened[1..]);
        assert_eq!(
            &opened[..32],
            &want[0][..],
            "client handshake traffic secret"
        );
        assert_eq!(
            &opened[32..],
            &want[1][..],
            "server handshake traffic secret"
        );
        let (GroupOutput::Value(check), GroupOutput::Share(hk)) =
            (&app[app13_out::CHECK], &app[app13_out::H])
        else {
            panic!("{app:?}")
        };
        assert!(!check[0]);
        let hk = bits_to_bytes(hk);
        assert_ne!(hk, want_h, "no single share is the GHASH keys");
        for (a, b) in hs_keys.iter_mut().zip(hk) {
            *a ^= b;
        }
    }
    assert_eq!(hs_keys, want_h);
}
