//! Resharing the group key to a new member set and a new threshold, the key unchanged: a
//! verifiable redistribution (Desmedt–Jajodia, with Feldman commitments). Sans-IO steps; a
//! new member must never accept a share that is not on the new polynomial through the group
//! key.
//!
//! Flow: exactly t old members ("dealers", t the old threshold) each take λᵢ·sᵢ (λᵢ the
//! Lagrange coefficient of i at 0 over the dealers, so Σ λᵢ·sᵢ is the group secret) as the
//! constant term of a fresh random polynomial fᵢ of degree t′−1, broadcast Feldman
//! commitments G·aᵢₖ to its coefficients ([`Commitments`]) and send each new member j its
//! share fᵢ(j) over a confidential channel ([`DealtShare`]). New member j checks that each
//! dealer's constant commitment is λᵢ times that dealer's verifying share in the old group
//! record (so a dealer cannot deal anything but its own weighted share) and its share against
//! the commitments (both name the dealer on failure), and sums its shares: s′ⱼ = Σᵢ fᵢ(j),
//! on the polynomial Σᵢ fᵢ of degree t′−1 whose constant term is the group secret. Everyone
//! derives the new verifying shares from the commitments alone ([`new_group`]), and the new
//! record must lie on one degree-(t′−1) polynomial through the unchanged group key.
//!
//! Old shares and new shares lie on different polynomials, so no mix of them interpolates the
//! key; an old member must still erase its old share once the new record is in force.
//! Naming the right culprit assumes each dealer sends the same commitments to everyone
//! (broadcast, as in the DKG).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use frost_ed25519::keys::{KeyPackage, SigningShare, VerifyingShare};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::curve;
use crate::group::{PublicGroup, ThresholdError};
use crate::key::NodeKey;

/// Why a resharing step refused a message or stopped. Errors that name a culprit
/// ([`ReshareError::culprit`]) abort the run.
#[derive(Debug, thiserror::Error)]
pub enum ReshareError {
    /// The plan is not a valid resharing.
    #[error("invalid resharing: {0}")]
    Plan(String),
    /// A message from someone who is not a dealer, a duplicate, or one for another member.
    #[error("unexpected resharing message from node {from}: {what}")]
    Unexpected {
        /// The sender.
        from: u16,
        /// What was wrong.
        what: &'static str,
    },
    /// A dealer's commitments do not deal its own weighted share of the group key.
    #[error("dealer {dealer}'s commitments do not deal its share of the group key")]
    BadConstant {
        /// The dealer.
        dealer: u16,
    },
    /// A dealer's commitments are malformed (wrong count or not points).
    #[error("dealer {dealer}'s commitments are malformed")]
    BadCommitments {
        /// The dealer.
        dealer: u16,
    },
    /// A share does not match its dealer's commitments.
    #[error("dealer {dealer}'s share for node {to} does not match its commitments")]
    BadShare {
        /// The dealer.
        dealer: u16,
        /// The recipient.
        to: u16,
    },
    /// Not every dealer's commitments and share are in.
    #[error("dealer {dealer}'s {what} has not arrived")]
    Missing {
        /// The dealer.
        dealer: u16,
        /// What is missing.
        what: &'static str,
    },
    /// The resulting record or key is invalid (a bug, or a dealer that escaped the checks).
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
}

impl ReshareError {
    /// The dealer this error blames, if any.
    pub fn culprit(&self) -> Option<u16> {
        match self {
            ReshareError::BadConstant { dealer }
            | ReshareError::BadCommitments { dealer }
            | ReshareError::BadShare { dealer, .. } => Some(*dealer),
            _ => None,
        }
    }
}

/// A resharing: the old record, the dealers, the new members and the new threshold.
#[derive(Debug, Clone)]
pub struct ResharePlan {
    old: PublicGroup,
    dealers: BTreeSet<u16>,
    members: BTreeSet<u16>,
    threshold: u16,
}

impl ResharePlan {
    /// Checks the plan: exactly the old threshold of dealers, all old members; new members
    /// nonzero ids, 2 ≤ `threshold` ≤ their number.
    pub fn new(
        old: &PublicGroup,
        dealers: &[u16],
        members: &[u16],
        threshold: u16,
    ) -> Result<Self, ReshareError> {
        let dealers: BTreeSet<u16> = dealers.iter().copied().collect();
        let members: BTreeSet<u16> = members.iter().copied().collect();
        if dealers.len() != usize::from(old.threshold()) {
            return Err(ReshareError::Plan(format!(
                "{} dealers; resharing takes exactly the old threshold {}",
                dealers.len(),
                old.threshold()
            )));
        }
        if let Some(d) = dealers.iter().find(|&&d| !old.contains(d)) {
            return Err(ReshareError::Plan(format!("dealer {d} is not a member")));
        }
        if members.contains(&0) {
            return Err(ReshareError::Plan("node id 0".into()));
        }
        if threshold < 2 || usize::from(threshold) > members.len() {
            return Err(ReshareError::Plan(format!(
                "threshold {threshold} for {} members",
                members.len()
            )));
        }
        Ok(ResharePlan {
            old: old.clone(),
            dealers,
            members,
            threshold,
        })
    }

    /// The new threshold.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// What dealer `i`'s constant commitment must be: λᵢ·VSᵢ from the old record.
    fn expected_constant(&self, dealer: u16) -> Option<EdwardsPoint> {
        let vs = curve::decode_point(&self.old.verifying_share(dealer)?)?;
        Some(vs * curve::lagrange(Scalar::ZERO, &self.dealers, dealer))
    }
}

/// A dealer's broadcast: commitments G·aₖ to its polynomial's coefficients, constant first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitments {
    /// The dealer.
    pub dealer: u16,
    /// The commitments, increasing degree.
    pub coefficients: Vec<[u8; 32]>,
}

/// A dealer's share for one new member; goes over a confidential channel to `to` only.
#[derive(Clone, Serialize, Deserialize)]
pub struct DealtShare {
    /// The dealer.
    pub dealer: u16,
    /// The recipient.
    pub to: u16,
    share: [u8; 32],
}

impl Drop for DealtShare {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.share);
    }
}

impl fmt::Debug for DealtShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DealtShare({} → {}, share redacted)",
            self.dealer, self.to
        )
    }
}

/// Dealer `key`'s part of `plan`: its commitments (for everyone) and a share per new member.
pub fn deal<R: RngCore + CryptoRng>(
    plan: &ResharePlan,
    key: &NodeKey,
    rng: &mut R,
) -> Result<(Commitments, Vec<DealtShare>), ReshareError> {
    let me = key.id();
    if !plan.dealers.contains(&me) {
        return Err(ReshareError::Plan(format!("node {me} is not a dealer")));
    }
    key.check_against(&plan.old)?;
    let s = curve::decode_scalar(&key.as_frost().signing_share().serialize())
        .map(Zeroizing::new)
        .ok_or(ThresholdError::MalformedNodeKey("signing share"))?;
    let mut coeffs: Vec<Zeroizing<Scalar>> = Vec::with_capacity(usize::from(plan.threshold));
    coeffs.push(Zeroizing::new(
        *s * curve::lagrange(Scalar::ZERO, &plan.dealers, me),
    ));
    for _ in 1..plan.threshold {
        coeffs.push(Zeroizing::new(Scalar::random(rng)));
    }
    let commitments = Commitments {
        dealer: me,
        coefficients: coeffs
            .iter()
            .map(|a| curve::encode_point(&curve::base_mul(a)))
            .collect(),
    };
    let shares = plan
        .members
        .iter()
        .map(|&j| {
            let x = curve::scalar_of(j);
            let mut v = Zeroizing::new(Scalar::ZERO);
            for a in coeffs.iter().rev() {
                *v = *v * x + **a;
            }
            DealtShare {
                dealer: me,
                to: j,
                share: v.to_bytes(),
            }
        })
        .collect();
    Ok((commitments, shares))
}

/// The new record from every dealer's commitments: each member's verifying share is the sum
/// of the dealers' polynomials in the exponent at its id. Anyone can compute it; it must lie
/// on one polynomial through the unchanged group key.
pub fn new_group(
    plan: &ResharePlan,
    all: &BTreeMap<u16, Commitments>,
) -> Result<PublicGroup, ReshareError> {
    let mut sum = vec![EdwardsPoint::identity(); usize::from(plan.threshold)];
    for &d in &plan.dealers {
        let c = all.get(&d).ok_or(ReshareError::Missing {
            dealer: d,
            what: "commitments",
        })?;
        for (acc, p) in sum.iter_mut().zip(decode(plan, d, c)?) {
            *acc += p;
        }
    }
    if sum[0] != plan.old.group_key().point()? {
        return Err(ThresholdError::InconsistentShares { node: 0 }.into());
    }
    let mut shares = BTreeMap::new();
    for &j in &plan.members {
        let x = curve::scalar_of(j);
        let mut v = EdwardsPoint::identity();
        for c in sum.iter().rev() {
            v = v * x + c;
        }
        shares.insert(j, curve::encode_point(&v));
    }
    Ok(PublicGroup::new(
        *plan.old.group_key(),
        plan.threshold,
        shares,
    )?)
}

/// Decodes and checks one dealer's commitments: the right count, points, and the constant
/// term its own weighted share.
fn decode(
    plan: &ResharePlan,
    dealer: u16,
    c: &Commitments,
) -> Result<Vec<EdwardsPoint>, ReshareError> {
    if c.dealer != dealer || c.coefficients.len() != usize::from(plan.threshold) {
        return Err(ReshareError::BadCommitments { dealer });
    }
    let points = c
        .coefficients
        .iter()
        .map(|b| curve::decode_commitment(b))
        .collect::<Option<Vec<_>>>()
        .ok_or(ReshareError::BadCommitments { dealer })?;
    if Some(points[0]) != plan.expected_constant(dealer) {
        return Err(ReshareError::BadConstant { dealer });
    }
    Ok(points)
}

/// A new member's side: collect every dealer's commitments and share, then [`Receiver::finish`].
pub struct Receiver {
    plan: ResharePlan,
    me: u16,
    commitments: BTreeMap<u16, Commitments>,
    points: BTreeMap<u16, Vec<EdwardsPoint>>,
    shares: BTreeMap<u16, Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Receiver(node {}, shares redacted)", self.me)
    }
}

impl Receiver {
    /// New member `me`'s receiver for `plan`.
    pub fn new(plan: &ResharePlan, me: u16) -> Result<Self, ReshareError> {
        if !plan.members.contains(&me) {
            return Err(ReshareError::Plan(format!("node {me} is not a new member")));
        }
        Ok(Receiver {
            plan: plan.clone(),
            me,
            commitments: BTreeMap::new(),
            points: BTreeMap::new(),
            shares: BTreeMap::new(),
        })
    }

    /// Dealer `from`'s broadcast commitments (`from` from the authenticated channel).
    pub fn on_commitments(&mut self, from: u16, c: Commitments) -> Result<(), ReshareError> {
        if !self.plan.dealers.contains(&from) || self.commitments.contains_key(&from) {
            return Err(ReshareError::Unexpected {
                from,
                what: "commitments from no dealer, or twice",
            });
        }
        let points = decode(&self.plan, from, &c)?;
        self.points.insert(from, points);
        self.commitments.insert(from, c);
        Ok(())
    }

    /// Dealer `from`'s share for this member; its commitments must have come first.
    pub fn on_share(&mut self, from: u16, s: DealtShare) -> Result<(), ReshareError> {
        if s.dealer != from || s.to != self.me || self.shares.contains_key(&from) {
            return Err(ReshareError::Unexpected {
                from,
                what: "a share from another dealer, for another member, or twice",
            });
        }
        let points = self.points.get(&from).ok_or(ReshareError::Missing {
            dealer: from,
            what: "commitments",
        })?;
        if !curve::feldman_ok(self.me, &s.share, points) {
            return Err(ReshareError::BadShare {
                dealer: from,
                to: self.me,
            });
        }
        self.shares.insert(from, Zeroizing::new(s.share));
        Ok(())
    }

    /// This member's key in the new group, and the new record.
    pub fn finish(self) -> Result<(NodeKey, PublicGroup), ReshareError> {
        let group = new_group(&self.plan, &self.commitments)?;
        let mut s = Zeroizing::new(Scalar::ZERO);
        for &d in &self.plan.dealers {
            let share = self.shares.get(&d).ok_or(ReshareError::Missing {
                dealer: d,
                what: "share",
            })?;
            let v = curve::decode_scalar(share.as_slice()).ok_or(ReshareError::BadShare {
                dealer: d,
                to: self.me,
            })?;
            *s += v;
        }
        let vs = group
            .verifying_share(self.me)
            .ok_or(ThresholdError::MalformedVerifyingShare { node: self.me })?;
        let package = KeyPackage::new(
            curve::identifier(self.me).ok_or(ThresholdError::InvalidNodeId(self.me.to_string()))?,
            SigningShare::deserialize(&s.to_bytes())
                .map_err(|_| ThresholdError::MalformedNodeKey("signing share"))?,
            VerifyingShare::deserialize(&vs)
                .map_err(|_| ThresholdError::MalformedVerifyingShare { node: self.me })?,
            group.group_key().to_frost()?,
            self.plan.threshold,
        );
        let key = NodeKey::from_frost(package)?;
        key.check_against(&group)?;
        Ok((key, group))
    }
}
