//! Conversions between garbled circuits and the arithmetic side, run as one session per party
//! over in-memory transports: the pipeline TLS uses.
//! - AES in a garbled circuit gives XOR shares of H; GHASH on shares gives the AES-GCM tag.
//! - ECtF gives additive shares mod p; a circuit adds them mod p to x(P₀ + P₁ + P₂); the same
//!   circuit hands the value back as additive shares, which become replicated shares.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes128Gcm;
use mpc::circuit::{self, bytes_to_bits, Builder};
use mpc::convert::{
    additive_fp_inputs, fp_from_bits, fp_mask_inputs, fp_to_bits, gf128_from_bits, reshare_machine,
    sum_mod_p, FpMask,
};
use mpc::ectf::ectf_machine;
use mpc::field::{Field, Fp};
use mpc::ghash::{gcm_blocks, GhashKey};
use mpc::rss::{reconstruct, Machine, Share};
use mpc::session::{run_arith, Session};
use mpc::transport::{memory_network, Transport};
use mpc::{ExecSpec, GroupOutput, InputGroup, InputSource, Inputs, OutputGroup, OutputTo, Party};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::Field as _;
use p256::{ProjectivePoint, Scalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

const T: Duration = Duration::from_secs(30);

/// H = AES_K(0) with K XOR-shared among the parties; H comes out XOR-shared.
fn h_spec() -> Arc<ExecSpec> {
    let mut b = Builder::new();
    let key = b.inputs(128);
    let zero: Vec<_> = (0..128).map(|_| circuit::Bit::Const(false)).collect();
    let h = circuit::aes::aes128(&mut b, &key, &zero).unwrap();
    let c = b.finish(&h).unwrap();
    Arc::new(
        ExecSpec::new(
            Arc::new(c),
            vec![InputGroup {
                width: 128,
                source: InputSource::Shared,
            }],
            vec![OutputGroup {
                width: 128,
                to: OutputTo::Shares,
            }],
        )
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_h_into_ghash_shares_gives_the_gcm_tag() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let key: [u8; 16] = rng.gen();
    let k0: [u8; 16] = rng.gen();
    let k1: [u8; 16] = rng.gen();
    let k2: [u8; 16] = std::array::from_fn(|i| key[i] ^ k0[i] ^ k1[i]);
    let key_shares = [k0, k1, k2];
    let nonce: [u8; 12] = rng.gen();
    let aad = [0x17u8; 13];
    let pt: Vec<u8> = (0..1000).map(|_| rng.gen()).collect();
    let sealed = Aes128Gcm::new(&key.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: &pt,
                aad: &aad,
            },
        )
        .unwrap();
    let (ct, tag) = sealed.split_at(pt.len());
    let blocks = gcm_blocks(&aad, ct);

    // One transport for both sub-protocols: the tasks meet between them (see
    // `ectf_shares_enter_a_circuit_and_come_back_replicated`).
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(3));
    let tasks: Vec<_> = memory_network()
        .into_iter()
        .map(|t| {
            let ks = key_shares[t.id() as usize];
            let blocks = blocks.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let id = t.id();
                let mut rng = ChaCha20Rng::seed_from_u64(10 + u64::from(id));
                let mut s = Session::new(Party::new(id, &mut rng).unwrap(), t).with_timeout(T);
                s.setup().await.unwrap();
                let e = s.preprocess(h_spec()).unwrap();
                let out = s
                    .execute(e, Inputs::none().value(0, bytes_to_bits(&ks)), &mut rng)
                    .await
                    .unwrap();
                let GroupOutput::Share(bits) = &out[0] else {
                    panic!("{out:?}")
                };
                let h_share = gf128_from_bits(bits).unwrap().to_block();
                barrier.wait().await;
                let mut m = Machine::new(
                    id,
                    GhashKey::new(id, h_share, blocks.len()).unwrap(),
                    &mut rng,
                )
                .unwrap();
                let powers = run_arith(s.transport_mut(), &mut m, T).await.unwrap();
                powers.ghash_share(&blocks).unwrap()
            })
        })
        .collect();
    let mut ghash = [0u8; 16];
    for t in tasks {
        let s = t.await.unwrap();
        for i in 0..16 {
            ghash[i] ^= s[i];
        }
    }
    // tag = GHASH ⊕ AES_K(J0), J0 = nonce ‖ 0³¹ ‖ 1.
    let mut j0 = [0u8; 16];
    j0[..12].copy_from_slice(&nonce);
    j0[15] = 1;
    let ej0 = {
        use aes::cipher::{BlockEncrypt, KeyInit};
        let c = aes::Aes128::new(&key.into());
        let mut b = j0.into();
        c.encrypt_block(&mut b);
        <[u8; 16]>::from(b)
    };
    let got: Vec<u8> = (0..16).map(|i| ghash[i] ^ ej0[i]).collect();
    assert_eq!(got, tag);
}

/// Three additive shares in; their sum mod p to everyone, and back out as additive shares
/// (masks of parties 0 and 1, masked value to party 2).
fn sum_spec() -> Arc<ExecSpec> {
    let mut b = Builder::new();
    let shares = additive_fp_inputs(&mut b);
    let masks = fp_mask_inputs(&mut b);
    let sum = sum_mod_p(&mut b, &shares.wires).unwrap();
    let masked = sum_mod_p(
        &mut b,
        &[sum.clone(), masks.wires[0].clone(), masks.wires[1].clone()],
    )
    .unwrap();
    let mut groups = shares.groups;
    groups.extend(masks.groups);
    let mut outs = sum.clone();
    outs.extend(masked);
    let c = b.finish(&outs).unwrap();
    Arc::new(
        ExecSpec::new(
            Arc::new(c),
            groups,
            vec![
                OutputGroup {
                    width: 256,
                    to: OutputTo::All,
                },
                OutputGroup {
                    width: 256,
                    to: OutputTo::Party(2),
                },
            ],
        )
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ectf_shares_enter_a_circuit_and_come_back_replicated() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let pts = [0; 3].map(|_| (ProjectivePoint::GENERATOR * Scalar::random(&mut rng)).to_affine());
    let sum = (ProjectivePoint::from(pts[0]) + pts[1] + pts[2]).to_affine();
    let want: [u8; 32] = (*sum.to_encoded_point(false).x().unwrap()).into();

    // The three sub-protocols share one transport here, and a party that finishes one
    // would otherwise send the next one's first message to a party still reading the
    // previous one's (which aborts on a message type it does not expect). Real sessions
    // give each sub-protocol its own channel; this test synchronizes the three tasks.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(3));
    let tasks: Vec<_> = memory_network()
        .into_iter()
        .map(|mut t| {
            let p = pts[t.id() as usize];
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let id = t.id();
                let mut rng = ChaCha20Rng::seed_from_u64(20 + u64::from(id));
                // ECtF first, on the bare transport.
                let mut m = ectf_machine(id, &p, &mut rng).unwrap();
                let share = run_arith(&mut t, &mut m, T).await.unwrap().unwrap();
                barrier.wait().await;
                // Then the garbled circuit on the same links.
                let mut s = Session::new(Party::new(id, &mut rng).unwrap(), t).with_timeout(T);
                s.setup().await.unwrap();
                let e = s.preprocess(sum_spec()).unwrap();
                let mask = FpMask::random(&mut rng);
                let mut inputs =
                    Inputs::none().value(id as usize, fp_to_bits(&share.value()).to_vec());
                if id < 2 {
                    inputs = inputs.value(3 + id as usize, mask.input_bits().to_vec());
                }
                let out = s.execute(e, inputs, &mut rng).await.unwrap();
                let GroupOutput::Value(v) = &out[0] else {
                    panic!("{out:?}")
                };
                let opened = fp_from_bits(v).unwrap();
                let additive = match (&out[1], id) {
                    (GroupOutput::Value(masked), 2) => fp_from_bits(masked).unwrap(),
                    (GroupOutput::Hidden, _) => mask.share(),
                    other => panic!("{other:?}"),
                };
                // Additive → replicated.
                barrier.wait().await;
                let mut r = reshare_machine(id, vec![additive], &mut rng).unwrap();
                let rep = run_arith(s.transport_mut(), &mut r, T).await.unwrap();
                (opened, rep.0[0])
            })
        })
        .collect();
    let mut rep: Vec<Share<Fp>> = Vec::new();
    for t in tasks {
        let (opened, share) = t.await.unwrap();
        assert_eq!(opened.to_be_bytes(), want, "sum mod p inside the circuit");
        rep.push(share);
    }
    let v = reconstruct(&[rep[0], rep[1], rep[2]]).unwrap();
    assert_eq!(
        v.to_be_bytes(),
        want,
        "replicated shares of the circuit's value"
    );
    assert!(!v.is_zero());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_ends_an_arithmetic_run_with_a_timeout_and_no_output() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let pts = [0; 3].map(|_| (ProjectivePoint::GENERATOR * Scalar::random(&mut rng)).to_affine());
    let mut net: Vec<_> = memory_network().into_iter().collect();
    let silent = net.pop().unwrap(); // party 2 never runs, but its links stay open
    let tasks: Vec<_> = net
        .into_iter()
        .map(|mut t| {
            let p = pts[t.id() as usize];
            tokio::spawn(async move {
                let mut rng = ChaCha20Rng::seed_from_u64(30 + u64::from(t.id()));
                let mut m = ectf_machine(t.id(), &p, &mut rng).unwrap();
                let r = run_arith(&mut t, &mut m, Duration::from_millis(300)).await;
                (r.map(|_| ()), m.output().is_some())
            })
        })
        .collect();
    // Whoever times out first tells the other, which may stop on that notice instead.
    let mut timeouts = 0;
    for t in tasks {
        let (r, has_output) = t.await.unwrap();
        match r {
            Err(mpc::session::SessionError::Timeout(_)) => timeouts += 1,
            Err(mpc::session::SessionError::Arith(mpc::rss::ArithAbort::Peer { .. })) => {}
            other => panic!("{other:?}"),
        }
        assert!(!has_output);
    }
    assert!(timeouts >= 1);
    drop(silent);
}
