//! ECtF ("elliptic curve to field"): node i holds a point Pᵢ on P-256 and the nodes obtain
//! additive shares mod p of x(P₀ + P₁ + P₂) — the ECDH pre-master secret when each Pᵢ is a
//! node's scalar share times the server's key — without any node learning the sum.
//!
//! Affine addition on replicated shares: each slope is b/a computed as (ρ·b)·(ρ·a)⁻¹ with a
//! random ρ, so the only opened values are ρ·a, uniform whenever a ≠ 0. When an opening is
//! zero the points share an x-coordinate; one more opening of ρ·b tells equal from opposite
//! and the computation takes the doubling formula or returns the point at infinity explicitly.

use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::AffinePoint;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::field::{Field, Fp};
use crate::rss::{ArithAbort, Auth, Flow, Handle, Machine, Program, Results, Rss, Share};
use crate::spec::PartyId;

/// A non-result of ECtF that every honest party agrees on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EctfError {
    /// This party's own point is the identity, which has no affine coordinates.
    #[error("the input point is the point at infinity")]
    InputAtInfinity,
    /// P₀ + P₁ + P₂ is the point at infinity, which has no x-coordinate.
    #[error("the sum of the three points is the point at infinity")]
    SumIsInfinity,
}

/// This party's additive share mod p of x(P₀ + P₁ + P₂). Zeroized on drop; prints nothing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EctfShare(Fp);

impl std::fmt::Debug for EctfShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EctfShare(..)")
    }
}

impl EctfShare {
    /// The share as a field element.
    pub fn value(&self) -> Fp {
        self.0
    }

    /// The share as 32 big-endian bytes (what enters a garbled circuit).
    pub fn to_be_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_be_bytes())
    }
}

/// Affine coordinates of a point, or `InputAtInfinity`.
pub fn coordinates(p: &AffinePoint) -> Result<(Fp, Fp), EctfError> {
    let enc = p.to_encoded_point(false);
    let (Some(x), Some(y)) = (enc.x(), enc.y()) else {
        return Err(EctfError::InputAtInfinity);
    };
    let x: [u8; 32] = (*x).into();
    let y: [u8; 32] = (*y).into();
    match (Fp::from_be_bytes(&x), Fp::from_be_bytes(&y)) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err(EctfError::InputAtInfinity),
    }
}

#[derive(Clone, Copy)]
enum Stage {
    /// Deal the coordinates; authenticate the masks.
    Start,
    Dealt {
        x: [Handle; 3],
        y: [Handle; 3],
        rho: [Handle; 2],
    },
    Authenticated {
        xa: [Handle; 3],
        ya: [Handle; 3],
        c: Handle,
        e: Handle,
    },
    /// ρ₁·(x₁ − x₀) is being opened.
    Open1 {
        c: Handle,
    },
    /// x₀ = x₁: ρ₁·(y₁ − y₀) is being opened to tell P₀ = P₁ from P₀ = −P₁.
    Tell1 {
        e: Handle,
    },
    /// Doubling (P₀ in addition 0, Q in addition 1): x² and ρ·2y are being computed.
    DoubleA {
        add: usize,
        sq: Handle,
        c: Handle,
    },
    /// Doubling: ρ·2y is being opened, ρ·(3x² − 3) computed.
    DoubleB {
        add: usize,
        c: Handle,
        e: Handle,
    },
    /// λ₁² and λ₁·(2x₀ + x₁) are being computed.
    Slope1 {
        sq: Handle,
        t: Handle,
    },
    /// λ₁³ and ρ₂·(x₂ − x_Q).
    Cube1 {
        cube: Handle,
        c: Handle,
    },
    /// ρ₂·(x₂ − x_Q) is being opened, ρ₂·(y₂ − y_Q) computed.
    Open2 {
        c: Handle,
        e: Handle,
    },
    /// x_Q = x₂: ρ₂·(y₂ − y_Q) is being opened.
    Tell2 {
        e: Handle,
    },
    /// λ₂² is being computed.
    Slope2 {
        sq: Handle,
    },
    Finished,
}

/// The ECtF program for one party (run it with [`Machine`]).
pub struct Ectf {
    id: PartyId,
    mine: Option<(Fp, Fp)>,
    stage: Stage,
    xa: [Auth<Fp>; 3],
    ya: [Auth<Fp>; 3],
    rho: [Auth<Fp>; 2],
    /// ρ₁·(y₁ − y₀) (step 1) or ρ₂·(y₂ − y_Q) (step 2).
    e: Auth<Fp>,
    lambda: Auth<Fp>,
    t: Auth<Fp>,
    xq: Auth<Fp>,
    yq: Auth<Fp>,
}

impl Drop for Ectf {
    fn drop(&mut self) {
        if let Some((x, y)) = &mut self.mine {
            x.zeroize();
            y.zeroize();
        }
        for a in self
            .xa
            .iter_mut()
            .chain(self.ya.iter_mut())
            .chain(self.rho.iter_mut())
        {
            a.zeroize();
        }
        for a in [
            &mut self.e,
            &mut self.lambda,
            &mut self.t,
            &mut self.xq,
            &mut self.yq,
        ] {
            a.zeroize();
        }
    }
}

impl std::fmt::Debug for Ectf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ectf")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

const ZERO_AUTH: Auth<Fp> = Auth {
    v: Share::ZERO,
    m: Share::ZERO,
};

/// The machine running ECtF for one party.
pub type EctfMachine = Machine<Fp, Ectf>;

impl Ectf {
    /// Party `id`'s program for its point. A point at infinity makes this party abort with
    /// [`ArithAbort::BadInput`] at its first step, which its peers see as an abort with that code.
    pub fn new(id: PartyId, point: &AffinePoint) -> Ectf {
        Ectf {
            id,
            mine: coordinates(point).ok(),
            stage: Stage::Start,
            xa: [ZERO_AUTH; 3],
            ya: [ZERO_AUTH; 3],
            rho: [ZERO_AUTH; 2],
            e: ZERO_AUTH,
            lambda: ZERO_AUTH,
            t: ZERO_AUTH,
            xq: ZERO_AUTH,
            yq: ZERO_AUTH,
        }
    }

    /// After λ₁ is known: queue λ₁² and λ₁·(2x₀ + x₁).
    fn after_slope1(&mut self, rss: &mut Rss<Fp>) -> Stage {
        let l = self.lambda;
        let sq = rss.mul_auth(&l, &l.v);
        let lin = self.xa[0].scale(Fp::from_u64(2)).add(&self.xa[1]);
        let t = rss.mul_auth(&l, &lin.v);
        Stage::Slope1 { sq, t }
    }

    /// After λ₂ is known: queue λ₂².
    fn after_slope2(&mut self, rss: &mut Rss<Fp>) -> Stage {
        let l = self.lambda;
        Stage::Slope2 {
            sq: rss.mul_auth(&l, &l.v),
        }
    }

    /// For doubling a point with shared coordinates (x, y): queue x² and ρ·2y.
    fn start_double(
        rss: &mut Rss<Fp>,
        x: &Auth<Fp>,
        y: &Auth<Fp>,
        rho: &Auth<Fp>,
    ) -> (Handle, Handle) {
        let sq = rss.mul_auth(x, &x.v);
        let c = rss.mul_auth(rho, &y.scale(Fp::from_u64(2)).v);
        (sq, c)
    }
}

fn misuse(m: crate::rss::Misuse) -> ArithAbort {
    ArithAbort::Local(m.to_string())
}

impl Program<Fp> for Ectf {
    type Output = Result<EctfShare, EctfError>;

    fn step(
        &mut self,
        rss: &mut Rss<Fp>,
        res: &Results<Fp>,
    ) -> Result<Flow<Self::Output>, ArithAbort> {
        let three = Fp::from_u64(3);
        let next = match self.stage {
            Stage::Start => {
                let Some(own) = self.mine else {
                    return Err(ArithAbort::BadInput(
                        "the input point is the point at infinity",
                    ));
                };
                let mut x = [Handle::default(); 3];
                let mut y = x;
                for d in 0..3u8 {
                    let mine = (d == self.id).then_some(own);
                    x[d as usize] = rss.deal(d, mine.map(|m| m.0)).map_err(misuse)?;
                    y[d as usize] = rss.deal(d, mine.map(|m| m.1)).map_err(misuse)?;
                }
                let r1 = rss.random();
                let r2 = rss.random();
                let rho = [rss.authenticate(&r1), rss.authenticate(&r2)];
                Stage::Dealt { x, y, rho }
            }
            Stage::Dealt { x, y, rho } => {
                self.rho = [
                    res.auth(rho[0]).map_err(misuse)?,
                    res.auth(rho[1]).map_err(misuse)?,
                ];
                let mut xs = [Share::ZERO; 3];
                let mut ys = [Share::ZERO; 3];
                let mut xa = [Handle::default(); 3];
                let mut ya = [Handle::default(); 3];
                for i in 0..3 {
                    xs[i] = res.share(x[i]).map_err(misuse)?;
                    ys[i] = res.share(y[i]).map_err(misuse)?;
                    xa[i] = rss.authenticate(&xs[i]);
                    ya[i] = rss.authenticate(&ys[i]);
                }
                let rho1 = self.rho[0];
                let c = rss.mul_auth(&rho1, &xs[1].sub(&xs[0]));
                let e = rss.mul_auth(&rho1, &ys[1].sub(&ys[0]));
                Stage::Authenticated { xa, ya, c, e }
            }
            Stage::Authenticated { xa, ya, c, e } => {
                for i in 0..3 {
                    self.xa[i] = res.auth(xa[i]).map_err(misuse)?;
                    self.ya[i] = res.auth(ya[i]).map_err(misuse)?;
                }
                self.e = res.auth(e).map_err(misuse)?;
                let c = res.auth(c).map_err(misuse)?;
                Stage::Open1 {
                    c: rss.open_auth(&c).map_err(misuse)?,
                }
            }
            Stage::Open1 { c } => {
                let c = res.value(c).map_err(misuse)?;
                match self.e.div_by_opened(c) {
                    Some(lambda) => {
                        self.lambda = lambda;
                        self.after_slope1(rss)
                    }
                    None => Stage::Tell1 {
                        e: rss.open_auth(&self.e).map_err(misuse)?,
                    },
                }
            }
            Stage::Tell1 { e } => {
                if !res.value(e).map_err(misuse)?.is_zero() {
                    // P₀ = −P₁: the sum is P₂.
                    self.stage = Stage::Finished;
                    return Ok(Flow::Done(Ok(EctfShare(self.xa[2].v.additive()))));
                }
                // P₀ = P₁: double P₀.
                let (x0, y0, rho1) = (self.xa[0], self.ya[0], self.rho[0]);
                let (sq, c) = Self::start_double(rss, &x0, &y0, &rho1);
                Stage::DoubleA { add: 0, sq, c }
            }
            Stage::DoubleA { add, sq, c } => {
                let num = rss.add_const(&res.auth(sq).map_err(misuse)?.scale(three), -three);
                let rho = self.rho[add];
                let e = rss.mul_auth(&rho, &num.v);
                let c = rss
                    .open_auth(&res.auth(c).map_err(misuse)?)
                    .map_err(misuse)?;
                Stage::DoubleB { add, c, e }
            }
            Stage::DoubleB { add, c, e } => {
                self.lambda = res
                    .auth(e)
                    .map_err(misuse)?
                    .div_by_opened(res.value(c).map_err(misuse)?)
                    // P-256 has no point with y = 0, so 2y ≠ 0 and ρ·2y ≠ 0.
                    .ok_or_else(|| {
                        ArithAbort::Local("a doubling denominator opened to zero".into())
                    })?;
                if add == 0 {
                    self.after_slope1(rss)
                } else {
                    self.after_slope2(rss)
                }
            }
            Stage::Slope1 { sq, t } => {
                let sq = res.auth(sq).map_err(misuse)?;
                self.t = res.auth(t).map_err(misuse)?;
                self.xq = sq.sub(&self.xa[0]).sub(&self.xa[1]);
                let l = self.lambda;
                let cube = rss.mul_auth(&sq, &l.v);
                let rho2 = self.rho[1];
                let c = rss.mul_auth(&rho2, &self.xa[2].v.sub(&self.xq.v));
                Stage::Cube1 { cube, c }
            }
            Stage::Cube1 { cube, c } => {
                let cube = res.auth(cube).map_err(misuse)?;
                // y_Q = λ₁(x₀ − x_Q) − y₀ = λ₁(2x₀ + x₁) − λ₁³ − y₀.
                self.yq = self.t.sub(&cube).sub(&self.ya[0]);
                let rho2 = self.rho[1];
                let e = rss.mul_auth(&rho2, &self.ya[2].v.sub(&self.yq.v));
                let c = rss
                    .open_auth(&res.auth(c).map_err(misuse)?)
                    .map_err(misuse)?;
                Stage::Open2 { c, e }
            }
            Stage::Open2 { c, e } => {
                self.e = res.auth(e).map_err(misuse)?;
                match self.e.div_by_opened(res.value(c).map_err(misuse)?) {
                    Some(lambda) => {
                        self.lambda = lambda;
                        self.after_slope2(rss)
                    }
                    None => Stage::Tell2 {
                        e: rss.open_auth(&self.e).map_err(misuse)?,
                    },
                }
            }
            Stage::Tell2 { e } => {
                if !res.value(e).map_err(misuse)?.is_zero() {
                    // Q = −P₂.
                    self.stage = Stage::Finished;
                    return Ok(Flow::Done(Err(EctfError::SumIsInfinity)));
                }
                // Q = P₂: double Q.
                let (xq, yq, rho2) = (self.xq, self.yq, self.rho[1]);
                let (sq, c) = Self::start_double(rss, &xq, &yq, &rho2);
                Stage::DoubleA { add: 1, sq, c }
            }
            Stage::Slope2 { sq } => {
                let sq = res.auth(sq).map_err(misuse)?;
                // x_R = λ₂² − x_Q − x₂.
                let xr = sq.sub(&self.xq).sub(&self.xa[2]);
                self.stage = Stage::Finished;
                return Ok(Flow::Done(Ok(EctfShare(xr.v.additive()))));
            }
            Stage::Finished => {
                return Err(ArithAbort::Local("ECtF stepped after finishing".into()))
            }
        };
        self.stage = next;
        Ok(Flow::Continue)
    }
}

/// Party `id`'s ECtF machine for its point; the first messages are ready to send.
pub fn ectf_machine<R: rand_core::RngCore + rand_core::CryptoRng>(
    id: PartyId,
    point: &AffinePoint,
    rng: &mut R,
) -> Result<EctfMachine, ArithAbort> {
    Machine::new(id, Ectf::new(id, point), rng)
}
