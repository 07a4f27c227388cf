//! Three-party replicated secret sharing (Araki et al., CCS 2016) over a [`Field`], made secure
//! against one malicious party by the multiplication check of Chida et al. (CRYPTO 2018).
//! Sans-IO: an arithmetic [`Program`] queues operations on [`Rss`], the [`Machine`] turns each
//! round into one message per peer and feeds the results back. Never logs a share.
//!
//! Sharing: x = x₀ + x₁ + x₂ and party i holds (xᵢ, xᵢ₊₁), so every component is held by two
//! parties. Multiplication is one round: party i computes its part of the product plus a share
//! of zero and sends it to party i−1. Opening is checked (each party receives its missing
//! component from both holders). Every multiplication is done twice, on x and on r·x for a
//! secret random r; before a program's output is released the machine opens random
//! coefficients αₖ and checks Σαₖ·(r·zₖ) − r·Σαₖ·zₖ = 0, which fails with probability at
//! least 1 − 2/|F| if any party added an error to any multiplication.

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::field::Field;
use crate::msg::{AbortCode, Msg};
use crate::spec::PartyId;

/// Message tag of an arithmetic round (garbled-circuit messages use 1–9).
pub const T_ARITH_ROUND: u8 = 0x20;
/// How many rounds a peer may run ahead of us before we treat it as flooding.
const MAX_AHEAD: usize = 2;
/// Domain separation for the pairwise randomness streams and check coefficients.
const DOMAIN_PRG: &str = "tessera rss prg v1";
const DOMAIN_ALPHA: &str = "tessera rss check coefficients v1";
const DOMAIN_DEALT: &str = "tessera rss dealt shares v1";

fn prev_of(id: PartyId) -> PartyId {
    (id + 2) % 3
}
fn next_of(id: PartyId) -> PartyId {
    (id + 1) % 3
}

// ---------------------------------------------------------------------------------------------
// Shares

/// One party's replicated share: components (xᵢ, xᵢ₊₁) of x = x₀ + x₁ + x₂. Linear operations
/// are local. Printing shows nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Share<F: Field> {
    own: F,
    next: F,
}

impl<F: Field> std::fmt::Debug for Share<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share<{}>(..)", F::NAME)
    }
}

impl<F: Field> Zeroize for Share<F> {
    fn zeroize(&mut self) {
        self.own.zeroize();
        self.next.zeroize();
    }
}

impl<F: Field> Share<F> {
    /// The share of zero.
    pub const ZERO: Self = Share {
        own: F::ZERO,
        next: F::ZERO,
    };

    /// Builds a share from its two components (xᵢ, xᵢ₊₁).
    pub fn from_components(own: F, next: F) -> Self {
        Share { own, next }
    }

    /// This party's additive share xᵢ: the three parties' additive shares sum to the value.
    pub fn additive(&self) -> F {
        self.own
    }

    /// The component xᵢ₊₁ this party holds with its successor.
    pub fn next_component(&self) -> F {
        self.next
    }

    /// x + y.
    pub fn add(&self, o: &Self) -> Self {
        Share {
            own: self.own + o.own,
            next: self.next + o.next,
        }
    }

    /// x − y.
    pub fn sub(&self, o: &Self) -> Self {
        Share {
            own: self.own - o.own,
            next: self.next - o.next,
        }
    }

    /// c·x for a public c.
    pub fn scale(&self, c: F) -> Self {
        Share {
            own: self.own * c,
            next: self.next * c,
        }
    }

    /// x + c for a public c (c lands in component 0).
    pub fn add_const(&self, id: PartyId, c: F) -> Self {
        let mut s = *self;
        if id == 0 {
            s.own += c;
        } else if id == 2 {
            s.next += c;
        }
        s
    }
}

/// Splits `v` into three replicated shares with local randomness (tests, benchmarks, and
/// anyone dealing a value they know).
pub fn deal<F: Field, R: RngCore + ?Sized>(v: F, rng: &mut R) -> [Share<F>; 3] {
    let x0 = F::random(rng);
    let x1 = F::random(rng);
    let x2 = v - x0 - x1;
    [
        Share { own: x0, next: x1 },
        Share { own: x1, next: x2 },
        Share { own: x2, next: x0 },
    ]
}

/// Recombines three parties' shares; `None` if they disagree on a component.
pub fn reconstruct<F: Field>(s: &[Share<F>; 3]) -> Option<F> {
    let consistent = s[0].next == s[1].own && s[1].next == s[2].own && s[2].next == s[0].own;
    consistent.then(|| s[0].own + s[1].own + s[2].own)
}

/// A value with its check companion: `v` shares x and `m` shares r·x for the machine's secret
/// random r. Every product of authenticated values is recorded for the final check.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Auth<F: Field> {
    /// Shares of x.
    pub v: Share<F>,
    /// Shares of r·x.
    pub m: Share<F>,
}

impl<F: Field> Zeroize for Auth<F> {
    fn zeroize(&mut self) {
        self.v.zeroize();
        self.m.zeroize();
    }
}

impl<F: Field> Auth<F> {
    /// x + y.
    pub fn add(&self, o: &Self) -> Self {
        Auth {
            v: self.v.add(&o.v),
            m: self.m.add(&o.m),
        }
    }
    /// x − y.
    pub fn sub(&self, o: &Self) -> Self {
        Auth {
            v: self.v.sub(&o.v),
            m: self.m.sub(&o.m),
        }
    }
    /// c·x for a public c.
    pub fn scale(&self, c: F) -> Self {
        Auth {
            v: self.v.scale(c),
            m: self.m.scale(c),
        }
    }

    /// x / c for an opened, public c; `None` when c = 0.
    ///
    /// This finishes an inverse by masked opening: for a secret a, take a random ρ
    /// ([`Rss::random`], then [`Rss::authenticate`]), compute ρ·a ([`Rss::mul_auth`]), open it
    /// as c ([`Rss::open_auth`]); then `rho.div_by_opened(c)` is a⁻¹, and `(ρ·b).div_by_opened(c)`
    /// is b/a. c is uniform whenever a ≠ 0, and c = 0 means a = 0.
    pub fn div_by_opened(&self, c: F) -> Option<Self> {
        c.invert().map(|inv| self.scale(inv))
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Why an arithmetic computation stopped. Every honest party ends in one of these when a peer
/// deviates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArithAbort {
    /// Both holders of a component sent it for an opening and the values differ.
    #[error("parties {0} and {1} sent different values for the same component of an opened share")]
    OpenMismatch(PartyId, PartyId),
    /// Two receivers of a dealt input hold different shares of it.
    #[error("party {peer} received different shares than we did from dealer {dealer}")]
    DealMismatch {
        /// The other receiver.
        peer: PartyId,
        /// The dealer.
        dealer: PartyId,
    },
    /// The randomized multiplication check failed: some party added an error.
    #[error("the multiplication check failed: some party sent a wrong value")]
    CheckFailed,
    /// A message could not be decoded or had the wrong size.
    #[error("party {from} sent a malformed message: {why}")]
    Malformed {
        /// Sender.
        from: PartyId,
        /// What was wrong.
        why: &'static str,
    },
    /// A message for another round, or more messages than the protocol allows.
    #[error("party {from} sent an unexpected message: {why}")]
    Unexpected {
        /// Sender.
        from: PartyId,
        /// What was wrong.
        why: &'static str,
    },
    /// A peer aborted.
    #[error("party {from} aborted: {code}")]
    Peer {
        /// The peer.
        from: PartyId,
        /// Its reason.
        code: AbortCode,
    },
    /// This party's own input is invalid.
    #[error("invalid input: {0}")]
    BadInput(&'static str),
    /// This party stopped for a local reason (misuse, shutdown).
    #[error("local stop: {0}")]
    Local(String),
}

impl ArithAbort {
    /// The code sent to peers.
    pub fn code(&self) -> AbortCode {
        match self {
            ArithAbort::OpenMismatch(..) | ArithAbort::DealMismatch { .. } => {
                AbortCode::Inconsistent
            }
            ArithAbort::CheckFailed => AbortCode::CheckFailed,
            ArithAbort::Malformed { .. } => AbortCode::Malformed,
            ArithAbort::Unexpected { .. } => AbortCode::Unexpected,
            ArithAbort::BadInput(_) => AbortCode::BadInput,
            ArithAbort::Peer { .. } | ArithAbort::Local(_) => AbortCode::Local,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pairwise randomness

/// A randomness stream shared by two parties (a keyed BLAKE3 XOF), zeroized on drop.
struct Prg(blake3::OutputReader);

impl Prg {
    fn new(key: &[u8; 32]) -> Prg {
        let k = blake3::derive_key(DOMAIN_PRG, key);
        Prg(blake3::Hasher::new_keyed(&k).finalize_xof())
    }
}

impl Drop for Prg {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl RngCore for Prg {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        self.0.fill(d)
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(d);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The per-party engine

/// Refers to the result of an operation queued in the current round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handle(usize);

impl Handle {
    /// The handle of the operation queued `i` operations after this one in the same round.
    pub fn nth_after(self, i: usize) -> Handle {
        Handle(self.0 + i)
    }
}

enum Op<F: Field> {
    /// Plain product; `z` is this party's component (already sent to prev).
    Mul { z: F },
    /// Product of authenticated values: components of x·y and of (r·x)·y.
    MulAuth { z: F, rz: F },
    /// r·x for a base value x.
    Authenticate { v: Share<F>, rz: F },
    /// Checked opening.
    Open { s: Share<F> },
    /// Input dealt by `dealer`; `known` is what this party already has.
    Deal { dealer: PartyId, known: Share<F> },
    /// Additive share made replicated.
    Reshare { own: F },
    /// Digests of dealt inputs, compared pairwise.
    Digests,
}

/// The result of one queued operation.
enum Outcome<F: Field> {
    Share(Share<F>),
    Auth(Auth<F>),
    Value(F),
    None,
}

/// The results of the round that just completed, by [`Handle`].
pub struct Results<F: Field> {
    outcomes: Vec<Outcome<F>>,
}

/// A program asked for a result it did not queue or of another kind: a bug, reported instead
/// of a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("arithmetic program misuse: {0}")]
pub struct Misuse(pub &'static str);

impl<F: Field> Results<F> {
    fn empty() -> Self {
        Results {
            outcomes: Vec::new(),
        }
    }

    /// A plain share (product, dealt input, reshared value).
    pub fn share(&self, h: Handle) -> Result<Share<F>, Misuse> {
        match self.outcomes.get(h.0) {
            Some(Outcome::Share(s)) => Ok(*s),
            _ => Err(Misuse("handle is not a share result of the last round")),
        }
    }

    /// An authenticated share.
    pub fn auth(&self, h: Handle) -> Result<Auth<F>, Misuse> {
        match self.outcomes.get(h.0) {
            Some(Outcome::Auth(a)) => Ok(*a),
            _ => Err(Misuse(
                "handle is not an authenticated result of the last round",
            )),
        }
    }

    /// An opened value.
    pub fn value(&self, h: Handle) -> Result<F, Misuse> {
        match self.outcomes.get(h.0) {
            Some(Outcome::Value(v)) => Ok(*v),
            _ => Err(Misuse("handle is not an opened value of the last round")),
        }
    }
}

impl<F: Field> Drop for Results<F> {
    fn drop(&mut self) {
        for o in &mut self.outcomes {
            match o {
                Outcome::Share(s) => s.zeroize(),
                Outcome::Auth(a) => a.zeroize(),
                Outcome::Value(_) | Outcome::None => {}
            }
        }
    }
}

/// One party's replicated-sharing state: pairwise randomness, the check key r, the recorded
/// products, and the operations queued for the next round.
pub struct Rss<F: Field> {
    id: PartyId,
    /// Stream for component xᵢ (shared with the previous party).
    own_prg: Prg,
    /// Stream for component xᵢ₊₁ (shared with the next party).
    next_prg: Prg,
    r: Share<F>,
    /// (z, r·z) for every authenticated product and base value.
    checks: Vec<(Share<F>, Share<F>)>,
    /// Hashes of the dealt components received from prev / from next.
    dealt_from_prev: blake3::Hasher,
    dealt_from_next: blake3::Hasher,
    queue: Vec<Op<F>>,
    to_prev: Vec<u8>,
    to_next: Vec<u8>,
    mults: u64,
    /// A deal completed and its digests have not been sent yet.
    fresh_deals: bool,
    /// Digests of dealt inputs are in this round's messages.
    digests_in_flight: bool,
}

impl<F: Field> std::fmt::Debug for Rss<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rss")
            .field("id", &self.id)
            .field("field", &F::NAME)
            .field("checks", &self.checks.len())
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl<F: Field> Drop for Rss<F> {
    fn drop(&mut self) {
        self.r.zeroize();
        for (a, b) in &mut self.checks {
            a.zeroize();
            b.zeroize();
        }
        self.to_prev.zeroize();
        self.to_next.zeroize();
        self.dealt_from_prev.zeroize();
        self.dealt_from_next.zeroize();
    }
}

impl<F: Field> Rss<F> {
    /// Party `id`'s engine from the key it shares with its predecessor (for component xᵢ) and
    /// the key it shares with its successor (for xᵢ₊₁).
    fn new(id: PartyId, key_with_prev: &[u8; 32], key_with_next: &[u8; 32]) -> Self {
        let mut s = Rss {
            id,
            own_prg: Prg::new(key_with_prev),
            next_prg: Prg::new(key_with_next),
            r: Share::ZERO,
            checks: Vec::new(),
            dealt_from_prev: blake3::Hasher::new_derive_key(DOMAIN_DEALT),
            dealt_from_next: blake3::Hasher::new_derive_key(DOMAIN_DEALT),
            queue: Vec::new(),
            to_prev: Vec::new(),
            to_next: Vec::new(),
            mults: 0,
            fresh_deals: false,
            digests_in_flight: false,
        };
        s.r = s.random();
        s
    }

    /// This party.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// Multiplications (including check companions) done so far.
    pub fn mult_count(&self) -> u64 {
        self.mults
    }

    /// A share of a fresh random value no party knows (no communication).
    pub fn random(&mut self) -> Share<F> {
        Share {
            own: F::random(&mut self.own_prg),
            next: F::random(&mut self.next_prg),
        }
    }

    /// This party's additive share of zero, fresh for every call (no communication).
    fn zero(&mut self) -> F {
        F::random(&mut self.own_prg) - F::random(&mut self.next_prg)
    }

    /// A public constant as an authenticated value (no communication).
    pub fn constant(&self, c: F) -> Auth<F> {
        Auth {
            v: Share::ZERO.add_const(self.id, c),
            m: self.r.scale(c),
        }
    }

    /// x + c for a public c.
    pub fn add_const(&self, a: &Auth<F>, c: F) -> Auth<F> {
        Auth {
            v: a.v.add_const(self.id, c),
            m: a.m.add(&self.r.scale(c)),
        }
    }

    fn queue(&mut self, op: Op<F>) -> Handle {
        self.queue.push(op);
        Handle(self.queue.len() - 1)
    }

    fn local_product(&mut self, x: &Share<F>, y: &Share<F>) -> F {
        x.own * y.own + x.own * y.next + x.next * y.own + self.zero()
    }

    /// Queues x·y without a check companion (used by the check itself).
    fn mul(&mut self, x: &Share<F>, y: &Share<F>) -> Handle {
        let z = self.local_product(x, y);
        z.write_to(&mut self.to_prev);
        self.mults += 1;
        self.queue(Op::Mul { z })
    }

    /// Queues x·y for an authenticated x: computes shares of x·y and of (r·x)·y, and records
    /// the pair for the check. `y` is the value part of an authenticated value (its own
    /// correctness is covered by its own recorded pair) or a dealt input.
    pub fn mul_auth(&mut self, x: &Auth<F>, y: &Share<F>) -> Handle {
        let z = self.local_product(&x.v, y);
        let rz = self.local_product(&x.m, y);
        z.write_to(&mut self.to_prev);
        rz.write_to(&mut self.to_prev);
        self.mults += 2;
        self.queue(Op::MulAuth { z, rz })
    }

    /// Queues r·x for a base value (input, random or reshared), giving an authenticated value.
    pub fn authenticate(&mut self, v: &Share<F>) -> Handle {
        let r = self.r;
        let rz = self.local_product(&r, v);
        rz.write_to(&mut self.to_prev);
        self.mults += 1;
        self.queue(Op::Authenticate { v: *v, rz })
    }

    /// Queues a checked opening of x.
    ///
    /// Refused while the two receivers of a dealt input have not yet confirmed that they hold
    /// the same share of it (the digests go out automatically in the round after a deal and
    /// are compared at its end): opening a value computed from an inconsistently dealt input
    /// could reveal more than an additive error does. So open no earlier than two rounds
    /// after the last deal.
    pub fn open(&mut self, s: &Share<F>) -> Result<Handle, Misuse> {
        if self.fresh_deals || self.digests_in_flight {
            return Err(Misuse(
                "opening before the dealt inputs are confirmed consistent (open at least two rounds after a deal)",
            ));
        }
        Ok(self.open_unchecked(s))
    }

    fn open_unchecked(&mut self, s: &Share<F>) -> Handle {
        s.own.write_to(&mut self.to_next);
        s.next.write_to(&mut self.to_prev);
        self.queue(Op::Open { s: *s })
    }

    /// Queues an opening of an authenticated value (its companion stays secret); see
    /// [`Rss::open`].
    pub fn open_auth(&mut self, a: &Auth<F>) -> Result<Handle, Misuse> {
        self.open(&a.v)
    }

    /// Queues the sharing of a value held by `dealer`; only the dealer passes `Some(value)`.
    pub fn deal(&mut self, dealer: PartyId, value: Option<F>) -> Result<Handle, Misuse> {
        let known = if dealer == self.id {
            let v = value.ok_or(Misuse("the dealer must supply its value"))?;
            let own = F::random(&mut self.own_prg);
            let next = F::random(&mut self.next_prg);
            let third = v - own - next;
            third.write_to(&mut self.to_next);
            third.write_to(&mut self.to_prev);
            Share { own, next }
        } else if value.is_some() {
            return Err(Misuse("only the dealer supplies a value"));
        } else if dealer == prev_of(self.id) {
            // Our own component is the dealer's next component.
            Share {
                own: F::random(&mut self.own_prg),
                next: F::ZERO,
            }
        } else {
            // Our next component is the dealer's own component.
            Share {
                own: F::ZERO,
                next: F::random(&mut self.next_prg),
            }
        };
        Ok(self.queue(Op::Deal { dealer, known }))
    }

    /// Queues the conversion of an additive share (such as a XOR share from a garbled circuit,
    /// in GF(2^128)) into a replicated share of the same value.
    pub fn reshare(&mut self, additive: F) -> Handle {
        additive.write_to(&mut self.to_prev);
        self.queue(Op::Reshare { own: additive })
    }

    /// Whether operations are queued.
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    fn queue_digests(&mut self) -> Handle {
        self.to_next
            .extend_from_slice(self.dealt_from_prev.finalize().as_bytes());
        self.to_prev
            .extend_from_slice(self.dealt_from_next.finalize().as_bytes());
        self.fresh_deals = false;
        self.digests_in_flight = true;
        self.queue(Op::Digests)
    }

    /// Payloads for prev and next for the queued round; adds the digests of dealt inputs
    /// if a deal completed in the previous round (every party does, as every party queues
    /// every deal).
    fn take_payloads(&mut self) -> (Vec<u8>, Vec<u8>) {
        if self.fresh_deals {
            self.queue_digests();
        }
        (
            std::mem::take(&mut self.to_prev),
            std::mem::take(&mut self.to_next),
        )
    }

    /// Sizes the queued round expects from prev and from next.
    fn expected(&self) -> (usize, usize) {
        let b = F::BYTES;
        let (mut p, mut n) = (0, 0);
        for op in &self.queue {
            match op {
                Op::Mul { .. } | Op::Authenticate { .. } | Op::Reshare { .. } => n += b,
                Op::MulAuth { .. } => n += 2 * b,
                Op::Open { .. } => {
                    p += b;
                    n += b;
                }
                Op::Deal { dealer, .. } => {
                    if *dealer == prev_of(self.id) {
                        p += b
                    } else if *dealer == next_of(self.id) {
                        n += b
                    }
                }
                Op::Digests => {
                    p += 32;
                    n += 32;
                }
            }
        }
        (p, n)
    }

    /// Completes the queued round with the payloads received from prev and next.
    fn receive(&mut self, from_prev: &[u8], from_next: &[u8]) -> Result<Results<F>, ArithAbort> {
        let (prev, next) = (prev_of(self.id), next_of(self.id));
        let (ep, en) = self.expected();
        if from_prev.len() != ep {
            return Err(ArithAbort::Malformed {
                from: prev,
                why: "round payload has the wrong length",
            });
        }
        if from_next.len() != en {
            return Err(ArithAbort::Malformed {
                from: next,
                why: "round payload has the wrong length",
            });
        }
        let mut rp = Reader::new(from_prev, prev);
        let mut rn = Reader::new(from_next, next);
        let ops = std::mem::take(&mut self.queue);
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let o = match op {
                Op::Mul { z } => Outcome::Share(Share {
                    own: z,
                    next: rn.elem::<F>()?,
                }),
                Op::MulAuth { z, rz } => {
                    let zn = rn.elem::<F>()?;
                    let rzn = rn.elem::<F>()?;
                    let a = Auth {
                        v: Share { own: z, next: zn },
                        m: Share { own: rz, next: rzn },
                    };
                    self.checks.push((a.v, a.m));
                    Outcome::Auth(a)
                }
                Op::Authenticate { v, rz } => {
                    let a = Auth {
                        v,
                        m: Share {
                            own: rz,
                            next: rn.elem::<F>()?,
                        },
                    };
                    self.checks.push((a.v, a.m));
                    Outcome::Auth(a)
                }
                Op::Open { s } => {
                    let a = rp.elem::<F>()?;
                    let b = rn.elem::<F>()?;
                    if a != b {
                        return Err(ArithAbort::OpenMismatch(prev, next));
                    }
                    Outcome::Value(s.own + s.next + a)
                }
                Op::Deal { dealer, known } => {
                    self.fresh_deals = true;
                    if dealer == self.id {
                        Outcome::Share(known)
                    } else if dealer == prev {
                        let third = rp.elem_hashed::<F>(&mut self.dealt_from_prev)?;
                        Outcome::Share(Share {
                            own: known.own,
                            next: third,
                        })
                    } else {
                        let third = rn.elem_hashed::<F>(&mut self.dealt_from_next)?;
                        Outcome::Share(Share {
                            own: third,
                            next: known.next,
                        })
                    }
                }
                Op::Reshare { own } => Outcome::Share(Share {
                    own,
                    next: rn.elem::<F>()?,
                }),
                Op::Digests => {
                    let from_next = digest(rn.take(32)?, next)?;
                    let from_prev = digest(rp.take(32)?, prev)?;
                    // next's digest of what prev dealt us both; prev's of what next dealt.
                    if self.dealt_from_prev.finalize() != from_next {
                        return Err(ArithAbort::DealMismatch {
                            peer: next,
                            dealer: prev,
                        });
                    }
                    if self.dealt_from_next.finalize() != from_prev {
                        return Err(ArithAbort::DealMismatch {
                            peer: prev,
                            dealer: next,
                        });
                    }
                    self.digests_in_flight = false;
                    Outcome::None
                }
            };
            outcomes.push(o);
        }
        Ok(Results { outcomes })
    }

    /// Check round 2: the random coefficients are open; combine and queue r·w.
    fn check_combine(&mut self, seed: F) -> (Handle, Share<F>) {
        let mut enc = Zeroizing::new(Vec::new());
        seed.write_to(&mut enc);
        let mut h = blake3::Hasher::new_derive_key(DOMAIN_ALPHA);
        h.update(&enc);
        h.update(&(self.checks.len() as u64).to_le_bytes());
        let mut alphas = Prg(h.finalize_xof());
        let mut w = Share::ZERO;
        let mut u = Share::ZERO;
        for (z, rz) in &self.checks {
            let a = F::random(&mut alphas);
            w = w.add(&z.scale(a));
            u = u.add(&rz.scale(a));
        }
        let r = self.r;
        let hd = self.mul(&r, &w);
        w.zeroize();
        (hd, u)
    }
}

fn digest(b: &[u8], from: PartyId) -> Result<blake3::Hash, ArithAbort> {
    blake3::Hash::from_slice(b).map_err(|_| ArithAbort::Malformed {
        from,
        why: "digest must be 32 bytes",
    })
}

/// Reads field elements from a round payload.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    from: PartyId,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8], from: PartyId) -> Self {
        Reader { b, pos: 0, from }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArithAbort> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or(ArithAbort::Malformed {
                from: self.from,
                why: "round payload too short",
            })?;
        self.pos += n;
        Ok(s)
    }
    /// A field element whose canonical encoding is also absorbed into `h`.
    fn elem_hashed<F: Field>(&mut self, h: &mut blake3::Hasher) -> Result<F, ArithAbort> {
        let start = self.pos;
        let v = self.elem::<F>()?;
        h.update(&self.b[start..self.pos]);
        Ok(v)
    }

    fn elem<F: Field>(&mut self) -> Result<F, ArithAbort> {
        let from = self.from;
        let s = self.take(F::BYTES)?;
        F::read_from(s).ok_or(ArithAbort::Malformed {
            from,
            why: "field element is not canonical",
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Programs and the machine

/// What a program does after a step.
#[derive(Debug)]
pub enum Flow<O> {
    /// Operations are queued; run the round.
    Continue,
    /// The program finished; the machine runs the check and then releases this output.
    Done(O),
}

/// An arithmetic computation written as rounds: each call queues the next round's operations
/// on `rss` (or finishes), given the results of the previous round (empty on the first call).
pub trait Program<F: Field> {
    /// What the program produces for this party.
    type Output;
    /// One step.
    fn step(
        &mut self,
        rss: &mut Rss<F>,
        results: &Results<F>,
    ) -> Result<Flow<Self::Output>, ArithAbort>;
}

enum Phase<F: Field> {
    /// Waiting for the predecessor's pairwise key.
    Setup { key_with_next: Zeroizing<[u8; 32]> },
    /// The program's rounds.
    Running,
    /// Check round 1 (open the coefficient seed, compare dealt digests) is in flight.
    Check1 { seed: Handle },
    /// Check round 2 (r·w) is in flight; `u` is Σαₖ·(r·zₖ).
    Check2 { rw: Handle, u: Share<F> },
    /// Check round 3 (open T = u − r·w) is in flight.
    Check3 { t: Handle },
    /// The output is released.
    Done,
    /// Stopped.
    Aborted,
}

/// Runs one [`Program`] for one party: pairwise key setup, the program's rounds, then the
/// multiplication check, and only then the output. Sans-IO: feed it every message from a peer
/// with [`Machine::handle`] and send what [`Machine::poll_transmit`] returns.
pub struct Machine<F: Field, P: Program<F>> {
    id: PartyId,
    rss: Option<Rss<F>>,
    program: P,
    phase: Phase<F>,
    round: u32,
    inbox: [VecDeque<(u32, Vec<u8>)>; 3],
    outbox: VecDeque<(PartyId, Vec<u8>)>,
    pending: Option<P::Output>,
    output: Option<P::Output>,
    aborted: Option<ArithAbort>,
    /// Multiplications of a finished computation (the engine is dropped at the end).
    mults_done: u64,
}

impl<F: Field, P: Program<F>> std::fmt::Debug for Machine<F, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("id", &self.id)
            .field("field", &F::NAME)
            .field("round", &self.round)
            .field("done", &self.output.is_some())
            .field("aborted", &self.aborted)
            .finish_non_exhaustive()
    }
}

fn encode_round(round: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(5 + payload.len());
    m.push(T_ARITH_ROUND);
    m.extend_from_slice(&round.to_be_bytes());
    m.extend_from_slice(payload);
    m
}

impl<F: Field, P: Program<F>> Machine<F, P> {
    /// Party `id` (0, 1 or 2) starting `program`. The first messages (pairwise keys) are ready
    /// in [`Machine::poll_transmit`].
    pub fn new<R: RngCore + CryptoRng>(
        id: PartyId,
        program: P,
        rng: &mut R,
    ) -> Result<Self, ArithAbort> {
        if id > 2 {
            return Err(ArithAbort::Local(format!("party {id} does not exist")));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        let mut m = Machine {
            id,
            rss: None,
            program,
            phase: Phase::Setup {
                key_with_next: key.clone(),
            },
            round: 0,
            inbox: Default::default(),
            outbox: VecDeque::new(),
            pending: None,
            output: None,
            aborted: None,
            mults_done: 0,
        };
        m.outbox
            .push_back((next_of(id), encode_round(0, key.as_ref())));
        m.outbox.push_back((prev_of(id), encode_round(0, &[])));
        Ok(m)
    }

    /// This party.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// Communication rounds started so far, the key setup included.
    pub fn rounds(&self) -> u32 {
        self.round + 1
    }

    /// Multiplications done so far, including check companions and the check itself.
    pub fn mult_count(&self) -> u64 {
        self.rss
            .as_ref()
            .map_or(self.mults_done, |r| r.mult_count())
    }

    /// Why this party stopped, if it did.
    pub fn aborted(&self) -> Option<&ArithAbort> {
        self.aborted.as_ref()
    }

    /// The output, once the check has passed.
    pub fn output(&self) -> Option<&P::Output> {
        self.output.as_ref()
    }

    /// Takes the output, once the check has passed.
    pub fn take_output(&mut self) -> Option<P::Output> {
        self.output.take()
    }

    /// Whether the output has been released.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<(PartyId, Vec<u8>)> {
        self.outbox.pop_front()
    }

    /// Stops for a local reason and tells the peers.
    pub fn abort_local(&mut self, why: &str) -> ArithAbort {
        let a = ArithAbort::Local(why.to_string());
        self.fail(a.clone());
        a
    }

    fn fail(&mut self, a: ArithAbort) {
        if self.aborted.is_some() {
            return;
        }
        let bytes = Msg::Abort(a.code()).encode();
        self.outbox.clear();
        for p in [prev_of(self.id), next_of(self.id)] {
            if !matches!(a, ArithAbort::Peer { from, .. } if from == p) {
                self.outbox.push_back((p, bytes.clone()));
            }
        }
        self.phase = Phase::Aborted;
        self.pending = None;
        self.rss = None;
        self.aborted = Some(a);
    }

    /// Consumes one message from peer `from`.
    pub fn handle(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ArithAbort> {
        if let Some(a) = &self.aborted {
            return Err(a.clone());
        }
        match self.handle_inner(from, bytes) {
            Ok(()) => Ok(()),
            Err(a) => {
                if !matches!(self.phase, Phase::Done) {
                    self.fail(a.clone());
                }
                Err(a)
            }
        }
    }

    fn handle_inner(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), ArithAbort> {
        if from > 2 || from == self.id {
            return Err(ArithAbort::Local(format!(
                "message from invalid party {from}"
            )));
        }
        if matches!(self.phase, Phase::Done) {
            return Err(ArithAbort::Unexpected {
                from,
                why: "message after the computation finished",
            });
        }
        match bytes.first() {
            Some(&T_ARITH_ROUND) => {
                let round = bytes
                    .get(1..5)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
                    .ok_or(ArithAbort::Malformed {
                        from,
                        why: "truncated round header",
                    })?;
                let q = &mut self.inbox[from as usize];
                if q.len() >= MAX_AHEAD {
                    return Err(ArithAbort::Unexpected {
                        from,
                        why: "too many rounds ahead",
                    });
                }
                q.push_back((round, bytes[5..].to_vec()));
            }
            _ => match Msg::decode(bytes) {
                Ok(Msg::Abort(code)) => return Err(ArithAbort::Peer { from, code }),
                Ok(_) => {
                    return Err(ArithAbort::Unexpected {
                        from,
                        why: "a garbled-circuit message in an arithmetic computation",
                    })
                }
                Err(_) => {
                    return Err(ArithAbort::Malformed {
                        from,
                        why: "unknown message",
                    })
                }
            },
        }
        self.advance()
    }

    fn advance(&mut self) -> Result<(), ArithAbort> {
        let (prev, next) = (prev_of(self.id), next_of(self.id));
        while !self.inbox[prev as usize].is_empty() && !self.inbox[next as usize].is_empty() {
            let (rp, bp) = self.inbox[prev as usize].pop_front().unwrap_or_default();
            let (rn, bn) = self.inbox[next as usize].pop_front().unwrap_or_default();
            for (r, who) in [(rp, prev), (rn, next)] {
                if r != self.round {
                    return Err(ArithAbort::Unexpected {
                        from: who,
                        why: "message for another round",
                    });
                }
            }
            let bp = Zeroizing::new(bp);
            let bn = Zeroizing::new(bn);
            self.complete_round(&bp, &bn)?;
            if matches!(self.phase, Phase::Done) {
                break;
            }
        }
        Ok(())
    }

    fn rss(&mut self) -> Result<&mut Rss<F>, ArithAbort> {
        self.rss
            .as_mut()
            .ok_or_else(|| ArithAbort::Local("arithmetic engine used before setup".into()))
    }

    fn complete_round(&mut self, from_prev: &[u8], from_next: &[u8]) -> Result<(), ArithAbort> {
        let phase = std::mem::replace(&mut self.phase, Phase::Aborted);
        match phase {
            Phase::Setup { key_with_next } => {
                let (prev, next) = (prev_of(self.id), next_of(self.id));
                let key: [u8; 32] = from_prev.try_into().map_err(|_| ArithAbort::Malformed {
                    from: prev,
                    why: "pairwise key must be 32 bytes",
                })?;
                if !from_next.is_empty() {
                    return Err(ArithAbort::Malformed {
                        from: next,
                        why: "unexpected payload in the key round",
                    });
                }
                let key = Zeroizing::new(key);
                self.rss = Some(Rss::new(self.id, &key, &key_with_next));
                self.phase = Phase::Running;
                self.run_program(&Results::empty())
            }
            Phase::Running => {
                let results = self.rss()?.receive(from_prev, from_next)?;
                self.phase = Phase::Running;
                self.run_program(&results)
            }
            Phase::Check1 { seed } => {
                let rss = self.rss()?;
                let results = rss.receive(from_prev, from_next)?;
                let seed = results.value(seed).map_err(misuse)?;
                let (rw, u) = rss.check_combine(seed);
                self.phase = Phase::Check2 { rw, u };
                self.send_round()
            }
            Phase::Check2 { rw, mut u } => {
                let rss = self.rss()?;
                let results = rss.receive(from_prev, from_next)?;
                let t = u.sub(&results.share(rw).map_err(misuse)?);
                u.zeroize();
                let t = rss.open(&t).map_err(misuse)?;
                self.phase = Phase::Check3 { t };
                self.send_round()
            }
            Phase::Check3 { t } => {
                let results = self.rss()?.receive(from_prev, from_next)?;
                if !results.value(t).map_err(misuse)?.is_zero() {
                    return Err(ArithAbort::CheckFailed);
                }
                self.output = self.pending.take();
                self.mults_done = self.rss.as_ref().map_or(0, |r| r.mult_count());
                self.rss = None;
                self.phase = Phase::Done;
                Ok(())
            }
            Phase::Done | Phase::Aborted => Err(ArithAbort::Local("round after the end".into())),
        }
    }

    fn run_program(&mut self, results: &Results<F>) -> Result<(), ArithAbort> {
        let rss = self
            .rss
            .as_mut()
            .ok_or_else(|| ArithAbort::Local("arithmetic engine used before setup".into()))?;
        match self.program.step(rss, results)? {
            Flow::Continue => {
                if !rss.has_queued() {
                    return Err(ArithAbort::Local(
                        "program continued without queuing an operation".into(),
                    ));
                }
                self.send_round()
            }
            Flow::Done(out) => {
                if rss.has_queued() {
                    return Err(ArithAbort::Local(
                        "program finished with operations queued".into(),
                    ));
                }
                self.pending = Some(out);
                // The seed is a fresh random share, independent of any input: it may be
                // opened while the last deal's digests are still in flight.
                let s = rss.random();
                let seed = rss.open_unchecked(&s);
                self.phase = Phase::Check1 { seed };
                self.send_round()
            }
        }
    }

    fn send_round(&mut self) -> Result<(), ArithAbort> {
        self.round += 1;
        let round = self.round;
        let (p, n) = self.rss()?.take_payloads();
        let (p, n) = (Zeroizing::new(p), Zeroizing::new(n));
        self.outbox
            .push_back((prev_of(self.id), encode_round(round, &p)));
        self.outbox
            .push_back((next_of(self.id), encode_round(round, &n)));
        Ok(())
    }
}

fn misuse(m: Misuse) -> ArithAbort {
    ArithAbort::Local(m.to_string())
}

/// Runs three machines to completion in one thread, delivering every message in order; for
/// tests, benchmarks and examples. Returns the total bytes sent.
pub fn run_local<F: Field, P: Program<F>>(
    machines: &mut [Machine<F, P>; 3],
) -> Result<u64, ArithAbort> {
    let mut bytes = 0u64;
    loop {
        let mut moved = false;
        for i in 0..3 {
            while let Some((to, m)) = machines[i].poll_transmit() {
                moved = true;
                bytes += m.len() as u64;
                let from = machines[i].id();
                if let Some(t) = machines.get_mut(to as usize) {
                    // Aborts surface below through `aborted()`.
                    let _ = t.handle(from, &m);
                }
            }
        }
        if !moved {
            break;
        }
    }
    for m in machines.iter() {
        if let Some(a) = m.aborted() {
            return Err(a.clone());
        }
    }
    if machines.iter().all(|m| m.is_done()) {
        Ok(bytes)
    } else {
        Err(ArithAbort::Local("the computation stalled".into()))
    }
}
