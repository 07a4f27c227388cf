//! Replicated secret sharing with the Chida et al. check, driven by hand in one thread: honest
//! runs in both fields agree with plaintext arithmetic, and a party that alters, drops,
//! duplicates or truncates any one of its messages makes some honest party abort while no
//! party ever outputs a wrong value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mpc::ectf::ectf_machine;
use mpc::field::{Field, Fp, Gf128};
use mpc::rss::{self, ArithAbort, Auth, Flow, Handle, Machine, Program, Results, Rss};
use mpc::PartyId;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::Field as _;
use p256::{ProjectivePoint, Scalar};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Inputs a (party 0), b (party 1), c (party 2); outputs the opened a·b·c and b/a, the latter
/// through an inverse by masked opening.
struct Poly<F: Field> {
    id: PartyId,
    input: F,
    stage: u8,
    h: Vec<Handle>,
    a: Option<Auth<F>>,
    b: Option<Auth<F>>,
    c: Option<Auth<F>>,
    rho: Option<Auth<F>>,
}

impl<F: Field> Poly<F> {
    fn new(id: PartyId, input: F) -> Self {
        Poly {
            id,
            input,
            stage: 0,
            h: vec![],
            a: None,
            b: None,
            c: None,
            rho: None,
        }
    }
}

impl<F: Field> Program<F> for Poly<F> {
    type Output = (F, F);
    fn step(&mut self, rss: &mut Rss<F>, res: &Results<F>) -> Result<Flow<(F, F)>, ArithAbort> {
        let m = |e: rss::Misuse| ArithAbort::Local(e.to_string());
        self.stage += 1;
        match self.stage {
            1 => {
                self.h = (0..3u8)
                    .map(|d| rss.deal(d, (d == self.id).then_some(self.input)).unwrap())
                    .collect();
                let r = rss.random();
                self.h.push(rss.authenticate(&r));
            }
            2 => {
                let s: Vec<_> = (0..3).map(|i| res.share(self.h[i]).unwrap()).collect();
                self.rho = Some(res.auth(self.h[3]).map_err(m)?);
                self.h = s.iter().map(|x| rss.authenticate(x)).collect();
                self.h.push(rss.mul_auth(self.rho.as_ref().unwrap(), &s[0]));
            }
            3 => {
                self.a = Some(res.auth(self.h[0]).map_err(m)?);
                self.b = Some(res.auth(self.h[1]).map_err(m)?);
                self.c = Some(res.auth(self.h[2]).map_err(m)?);
                let ra = res.auth(self.h[3]).map_err(m)?;
                let (a, b) = (self.a.unwrap(), self.b.unwrap());
                self.h = vec![rss.mul_auth(&a, &b.v), rss.open_auth(&ra).map_err(m)?];
            }
            4 => {
                let ab = res.auth(self.h[0]).map_err(m)?;
                let ra = res.value(self.h[1]).map_err(m)?;
                let inv = self
                    .rho
                    .unwrap()
                    .scale(ra.invert().ok_or(ArithAbort::Local("a = 0".into()))?);
                self.h = vec![
                    rss.mul_auth(&ab, &self.c.unwrap().v),
                    rss.mul_auth(&inv, &self.b.unwrap().v),
                ];
            }
            5 => {
                let abc = res.auth(self.h[0]).map_err(m)?;
                let q = res.auth(self.h[1]).map_err(m)?;
                self.h = vec![
                    rss.open_auth(&abc).map_err(m)?,
                    rss.open_auth(&q).map_err(m)?,
                ];
            }
            _ => {
                return Ok(Flow::Done((
                    res.value(self.h[0]).map_err(m)?,
                    res.value(self.h[1]).map_err(m)?,
                )))
            }
        }
        Ok(Flow::Continue)
    }
}

fn poly_machines<F: Field>(inputs: [F; 3], seed: u64) -> [Machine<F, Poly<F>>; 3] {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    [0u8, 1, 2].map(|i| Machine::new(i, Poly::new(i, inputs[i as usize]), &mut rng).unwrap())
}

/// What the adversary does to one message of party 1.
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// Flip this bit of the message.
    Flip(usize),
    Drop,
    Duplicate,
    Truncate,
}

/// Delivers all messages in order; the `target`-th message party 1 sends is attacked.
/// Returns (messages party 1 sent, whether the attack was applied).
fn run_attacked<F: Field, P: Program<F>>(
    ms: &mut [Machine<F, P>; 3],
    target: usize,
    attack: Attack,
) -> (usize, bool) {
    let mut sent_by_1 = 0;
    let mut applied = false;
    loop {
        let mut moved = false;
        for i in 0..3 {
            while let Some((to, msg)) = ms[i].poll_transmit() {
                moved = true;
                let mut deliveries = vec![msg];
                if i == 1 {
                    if sent_by_1 == target {
                        let m = &mut deliveries[0];
                        match attack {
                            Attack::Flip(bit) => {
                                if bit / 8 < m.len() {
                                    m[bit / 8] ^= 1 << (bit % 8);
                                    applied = true;
                                }
                            }
                            Attack::Drop => {
                                deliveries.clear();
                                applied = true;
                            }
                            Attack::Duplicate => {
                                let d = deliveries[0].clone();
                                deliveries.push(d);
                                applied = true;
                            }
                            Attack::Truncate => {
                                if !m.is_empty() {
                                    m.pop();
                                    applied = true;
                                }
                            }
                        }
                    }
                    sent_by_1 += 1;
                }
                for m in deliveries {
                    let _ = ms[to as usize].handle(i as u8, &m);
                }
            }
        }
        if !moved {
            return (sent_by_1, applied);
        }
    }
}

#[test]
fn honest_runs_match_plaintext_in_both_fields() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for t in 0..10 {
        let x: [Fp; 3] = [0; 3].map(|_| Fp::random(&mut rng));
        let mut ms = poly_machines(x, t);
        rss::run_local(&mut ms).unwrap();
        for m in &mut ms {
            let (abc, q) = m.take_output().unwrap();
            assert!(abc == x[0] * x[1] * x[2]);
            assert!(q == x[1] * x[0].invert().unwrap());
        }
        let g: [Gf128; 3] = [0; 3].map(|_| Gf128::random(&mut rng));
        let mut ms = poly_machines(g, t);
        rss::run_local(&mut ms).unwrap();
        for m in &mut ms {
            let (abc, q) = m.take_output().unwrap();
            assert!(abc == g[0] * g[1] * g[2]);
            assert!(q == g[1] * g[0].invert().unwrap());
        }
    }
}

#[test]
fn deal_and_reconstruct_round_trip() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let v = Fp::random(&mut rng);
    let s = rss::deal(v, &mut rng);
    assert!(rss::reconstruct(&s) == Some(v));
    let mut bad = s;
    bad[1] = rss::Share::from_components(bad[1].additive(), bad[1].next_component() + Fp::ONE);
    assert!(rss::reconstruct(&bad).is_none());
    // Printing a share shows nothing of it.
    assert_eq!(format!("{:?}", s[0]), "Share<p256-base>(..)");
}

/// Checks the outcome of an attacked run: nobody outputs a wrong value, and when the attack
/// altered a message's content somebody stopped without output (an abort, or a wait that the
/// async driver's timeout turns into one). A dropped or duplicated message may also be
/// harmless (a duplicate of a final message arrives after the output was released).
fn assert_safe<F: Field>(
    ms: &mut [Machine<F, Poly<F>>; 3],
    want: (F, F),
    attack: Attack,
    what: &str,
) {
    let mut stopped = 0;
    for (i, m) in ms.iter_mut().enumerate() {
        if m.aborted().is_some() {
            stopped += 1;
            assert!(
                m.output().is_none(),
                "{what}: party {i} aborted yet holds an output"
            );
        } else if let Some(out) = m.take_output() {
            assert!(out == want, "{what}: party {i} output a wrong value");
        } else {
            stopped += 1;
        }
    }
    if matches!(attack, Attack::Flip(_) | Attack::Truncate) {
        assert!(stopped > 0, "{what}: an altered message went unnoticed");
    }
}

#[test]
fn every_single_message_attack_ends_in_abort_never_a_wrong_output() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let x: [Fp; 3] = [0; 3].map(|_| Fp::random(&mut rng));
    let want = (x[0] * x[1] * x[2], x[1] * x[0].invert().unwrap());
    // Count party 1's messages in an honest run.
    let mut ms = poly_machines(x, 9);
    let (total, _) = run_attacked(&mut ms, usize::MAX, Attack::Drop);
    assert!(total >= 16, "party 1 sent only {total} messages");
    let mut runs = 0;
    for target in 0..total {
        for attack in [
            Attack::Flip(0),
            Attack::Flip(5 * 8 + 2),
            Attack::Flip(5 * 8 + 8 * 31),
            Attack::Flip(5 * 8 + 8 * 32 + 7),
            Attack::Drop,
            Attack::Duplicate,
            Attack::Truncate,
        ] {
            let mut ms = poly_machines(x, 9);
            let (_, applied) = run_attacked(&mut ms, target, attack);
            if !applied {
                continue;
            }
            runs += 1;
            assert_safe(
                &mut ms,
                want,
                attack,
                &format!("message {target}, {attack:?}"),
            );
        }
    }
    assert!(runs > 80, "only {runs} attacks applied");
}

#[test]
fn gf128_attacks_are_caught_too() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let g: [Gf128; 3] = [0; 3].map(|_| Gf128::random(&mut rng));
    let want = (g[0] * g[1] * g[2], g[1] * g[0].invert().unwrap());
    let mut ms = poly_machines(g, 10);
    let (total, _) = run_attacked(&mut ms, usize::MAX, Attack::Drop);
    for target in 0..total {
        for bit in [5 * 8, 5 * 8 + 77] {
            let mut ms = poly_machines(g, 10);
            if run_attacked(&mut ms, target, Attack::Flip(bit)).1 {
                assert_safe(
                    &mut ms,
                    want,
                    Attack::Flip(bit),
                    &format!("message {target}, bit {bit}"),
                );
            }
        }
    }
}

#[test]
fn an_additive_error_on_a_product_fails_the_check_at_every_party() {
    // Party 1 adds an error to the first product component of round 3 (a·b) and otherwise
    // follows the protocol: the honest parties abort with the check failure (party 1's own
    // machine may hear an abort first), and none reports a mismatch.
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let x: [Fp; 3] = [0; 3].map(|_| Fp::random(&mut rng));
    let mut ms = poly_machines(x, 11);
    // Party 1's messages go prev (0) then next (2) each round; round 3's message to party 0
    // is its 7th message (index 6): header (5 bytes) then the a·b component.
    let (_, applied) = run_attacked(&mut ms, 6, Attack::Flip(5 * 8 + 8 * 31));
    assert!(applied);
    for m in [&ms[0], &ms[2]] {
        assert!(
            matches!(
                m.aborted(),
                Some(
                    ArithAbort::CheckFailed
                        | ArithAbort::Peer {
                            code: mpc::msg::AbortCode::CheckFailed,
                            ..
                        }
                )
            ),
            "{m:?}"
        );
    }
    assert!(ms
        .iter()
        .any(|m| m.aborted() == Some(&ArithAbort::CheckFailed)));
    assert!(ms[1].output().is_none());
}

#[test]
fn ectf_under_attack_never_yields_a_wrong_sum() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let pts = [0; 3].map(|_| ProjectivePoint::GENERATOR * Scalar::random(&mut rng));
    let want: [u8; 32] = (*(pts[0] + pts[1] + pts[2])
        .to_affine()
        .to_encoded_point(false)
        .x()
        .unwrap())
    .into();
    let make = || {
        let mut r = ChaCha20Rng::seed_from_u64(12);
        [0u8, 1, 2].map(|i| ectf_machine(i, &pts[i as usize].to_affine(), &mut r).unwrap())
    };
    let mut ms = make();
    let (total, _) = run_attacked(&mut ms, usize::MAX, Attack::Drop);
    for target in 0..total {
        for attack in [Attack::Flip(5 * 8 + 8 * 31), Attack::Duplicate] {
            let mut ms = make();
            if !run_attacked(&mut ms, target, attack).1 {
                continue;
            }
            let outs: Vec<_> = ms.iter_mut().filter_map(|m| m.take_output()).collect();
            assert!(
                outs.len() < 3 || {
                    let mut s = Fp::ZERO;
                    for o in &outs {
                        s += o.as_ref().unwrap().value();
                    }
                    s.to_be_bytes() == want
                },
                "message {target} {attack:?}: wrong sum"
            );
            if matches!(attack, Attack::Flip(_)) {
                assert!(
                    ms.iter().any(|m| !m.is_done()),
                    "message {target} {attack:?}: an altered message went unnoticed"
                );
            }
        }
    }
}

#[test]
fn a_dealer_that_gives_its_receivers_different_shares_is_caught_before_any_opening() {
    // Party 1 deals b; its round-1 message to party 0 (its third message: key rounds first)
    // carries the component both 0 and 2 must hold. Altering it for party 0 alone makes the
    // receivers' digests differ at the end of round 2, before round 3 opens anything.
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let x: [Fp; 3] = [0; 3].map(|_| Fp::random(&mut rng));
    let mut ms = poly_machines(x, 13);
    assert!(run_attacked(&mut ms, 2, Attack::Flip(5 * 8 + 8 * 31)).1);
    for (i, m) in [(0, &ms[0]), (2, &ms[2])] {
        assert!(
            matches!(
                m.aborted(),
                Some(
                    ArithAbort::DealMismatch { dealer: 1, .. }
                        | ArithAbort::Peer {
                            code: mpc::msg::AbortCode::Inconsistent,
                            ..
                        }
                )
            ),
            "party {i}: {:?}",
            m.aborted()
        );
        assert!(m.rounds() <= 3, "party {i} went on to round {}", m.rounds());
    }
    assert!(ms.iter().any(|m| matches!(
        m.aborted(),
        Some(ArithAbort::DealMismatch { dealer: 1, .. })
    )));
}

/// Deals a value and tries to open it one round later.
struct EarlyOpen(u8, Option<Handle>);

impl Program<Fp> for EarlyOpen {
    type Output = ();
    fn step(&mut self, rss: &mut Rss<Fp>, res: &Results<Fp>) -> Result<Flow<()>, ArithAbort> {
        match self.1.take() {
            None => {
                let v = (self.0 == 0).then_some(Fp::ONE);
                self.1 = Some(rss.deal(0, v).unwrap());
                Ok(Flow::Continue)
            }
            Some(h) => {
                let s = res.share(h).unwrap();
                rss.open(&s).map_err(|e| ArithAbort::Local(e.to_string()))?;
                Ok(Flow::Continue)
            }
        }
    }
}

#[test]
fn opening_right_after_a_deal_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut ms = [0u8, 1, 2].map(|i| Machine::new(i, EarlyOpen(i, None), &mut rng).unwrap());
    assert!(rss::run_local(&mut ms).is_err());
    assert!(ms.iter().any(|m| matches!(
        m.aborted(),
        Some(ArithAbort::Local(why)) if why.contains("before the dealt inputs are confirmed")
    )));
    assert!(ms.iter().all(|m| m.aborted().is_some()));
}
