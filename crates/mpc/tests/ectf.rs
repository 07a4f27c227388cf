//! ECtF against `p256` point arithmetic, including every degenerate case.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mpc::ectf::{ectf_machine, EctfError, EctfMachine};
use mpc::field::Field;
use mpc::rss::{run_local, ArithAbort};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::Field as _;
use p256::{AffinePoint, ProjectivePoint, Scalar};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn machines(points: [AffinePoint; 3], seed: u64) -> [EctfMachine; 3] {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    [0u8, 1, 2].map(|i| ectf_machine(i, &points[i as usize], &mut rng).unwrap())
}

/// Runs ECtF; returns the x-coordinate recombined from the three additive shares.
fn run(points: [AffinePoint; 3], seed: u64) -> Result<Result<[u8; 32], EctfError>, ArithAbort> {
    let mut m = machines(points, seed);
    run_local(&mut m)?;
    let outs: Vec<_> = m.iter_mut().map(|m| m.take_output().unwrap()).collect();
    let mut sum = mpc::field::Fp::ZERO;
    for o in outs {
        match o {
            Ok(s) => sum += s.value(),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(sum.to_be_bytes()))
}

fn x_of(p: ProjectivePoint) -> [u8; 32] {
    let a = p.to_affine();
    let enc = a.to_encoded_point(false);
    (*enc.x().unwrap()).into()
}

fn random_point(rng: &mut ChaCha20Rng) -> ProjectivePoint {
    ProjectivePoint::GENERATOR * Scalar::random(rng)
}

#[test]
fn matches_p256_on_random_points() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for t in 0..20 {
        let p = [0; 3].map(|_| random_point(&mut rng));
        let want = x_of(p[0] + p[1] + p[2]);
        let got = run(p.map(|q| q.to_affine()), t).unwrap().unwrap();
        assert_eq!(got, want, "trial {t}");
    }
}

#[test]
fn first_two_points_equal_doubles() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let a = random_point(&mut rng);
    let c = random_point(&mut rng);
    let got = run([a, a, c].map(|q| q.to_affine()), 1).unwrap().unwrap();
    assert_eq!(got, x_of((a + a) + c));
}

#[test]
fn first_two_points_opposite_gives_the_third() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let a = random_point(&mut rng);
    let c = random_point(&mut rng);
    let got = run([a, -a, c].map(|q| q.to_affine()), 2).unwrap().unwrap();
    assert_eq!(got, x_of(c));
}

#[test]
fn partial_sum_equal_to_third_doubles() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let a = random_point(&mut rng);
    let b = random_point(&mut rng);
    let got = run([a, b, a + b].map(|q| q.to_affine()), 3)
        .unwrap()
        .unwrap();
    assert_eq!(got, x_of((a + b) + (a + b)));
}

#[test]
fn sum_at_infinity_is_an_explicit_result() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let a = random_point(&mut rng);
    let b = random_point(&mut rng);
    let got = run([a, b, -(a + b)].map(|q| q.to_affine()), 4).unwrap();
    assert_eq!(got, Err(EctfError::SumIsInfinity));
    // All three equal: 3P via doubling then adding.
    let got = run([a, a, a].map(|q| q.to_affine()), 5).unwrap().unwrap();
    assert_eq!(got, x_of(a + a + a));
}

#[test]
fn a_point_at_infinity_aborts_every_party() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let a = random_point(&mut rng).to_affine();
    let mut m = machines([a, AffinePoint::IDENTITY, a], 6);
    let err = run_local(&mut m).unwrap_err();
    assert!(
        matches!(err, ArithAbort::Peer { .. } | ArithAbort::BadInput(_)),
        "{err}"
    );
    assert!(matches!(m[1].aborted(), Some(ArithAbort::BadInput(_))));
    for i in [0, 2] {
        assert!(
            matches!(
                m[i].aborted(),
                Some(ArithAbort::Peer {
                    from: 1,
                    code: mpc::msg::AbortCode::BadInput
                })
            ),
            "party {i}: {:?}",
            m[i].aborted()
        );
        assert!(m[i].output().is_none());
    }
}
