//! GHASH on shares: from XOR shares of the GCM key H (as a garbled circuit outputs them), the
//! nodes compute replicated shares of H¹ … H^L in ⌈log₂ L⌉ multiplication rounds, checked
//! before release; afterwards the XOR shares of GHASH_H(X₁ … Xₙ) for any public blocks with
//! n ≤ L are local: Σ Xⱼ·H^(n−j+1). Never holds H or a power of it in the clear.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::field::{Field, Gf128};
use crate::rss::{ArithAbort, Auth, Flow, Handle, Machine, Program, Results, Rss, Share};
use crate::spec::PartyId;

/// Most powers a program may compute: a 16 KiB TLS record is 1,024 blocks (1,025 in TLS
/// 1.3, whose records carry their content type after the 2^14 bytes), plus the
/// additional-data block and the length block.
pub const MAX_POWERS: usize = 1027;

/// A GHASH request the shares cannot serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GhashError {
    /// More blocks than computed powers.
    #[error("{blocks} blocks need {blocks} powers of H, only {powers} were computed")]
    TooManyBlocks {
        /// Blocks asked for.
        blocks: usize,
        /// Powers available.
        powers: usize,
    },
    /// A power count of zero or above [`MAX_POWERS`].
    #[error("the number of powers must be between 1 and {MAX_POWERS}, not {0}")]
    PowerCount(usize),
}

/// This party's checked replicated shares of H¹ … H^L. Zeroized on drop; prints nothing.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct GhashPowers {
    #[zeroize(skip)]
    id: PartyId,
    /// powers[k] shares H^(k+1).
    powers: Vec<Share<Gf128>>,
}

impl std::fmt::Debug for GhashPowers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GhashPowers {{ party: {}, powers: {} }}",
            self.id,
            self.powers.len()
        )
    }
}

impl GhashPowers {
    /// Number of powers held.
    pub fn len(&self) -> usize {
        self.powers.len()
    }

    /// Whether no power is held (never, for a finished program).
    pub fn is_empty(&self) -> bool {
        self.powers.is_empty()
    }

    /// The replicated share of H^k (1 ≤ k ≤ L).
    pub fn power(&self, k: usize) -> Option<Share<Gf128>> {
        k.checked_sub(1).and_then(|i| self.powers.get(i)).copied()
    }

    /// This party's XOR share of GHASH_H(blocks); the three parties' shares XOR to the hash.
    pub fn ghash_share(&self, blocks: &[[u8; 16]]) -> Result<[u8; 16], GhashError> {
        let n = blocks.len();
        if n > self.powers.len() {
            return Err(GhashError::TooManyBlocks {
                blocks: n,
                powers: self.powers.len(),
            });
        }
        // GHASH = Σⱼ Xⱼ·H^(n−j+1), j = 1..n.
        let mut acc = Gf128::ZERO;
        for (j, x) in blocks.iter().enumerate() {
            acc += Gf128::from_block(*x) * self.powers[n - 1 - j].additive();
        }
        let out = acc.to_block();
        acc.zeroize();
        Ok(out)
    }
}

/// GCM's GHASH input for additional data `aad` and ciphertext `c`: both zero-padded to whole
/// blocks, then the block of their bit lengths (64 bits each, big-endian).
pub fn gcm_blocks(aad: &[u8], c: &[u8]) -> Vec<[u8; 16]> {
    let mut out = Vec::with_capacity(aad.len().div_ceil(16) + c.len().div_ceil(16) + 1);
    for part in [aad, c] {
        for chunk in part.chunks(16) {
            let mut b = [0u8; 16];
            b[..chunk.len()].copy_from_slice(chunk);
            out.push(b);
        }
    }
    let mut len = [0u8; 16];
    len[..8].copy_from_slice(&((aad.len() as u64) * 8).to_be_bytes());
    len[8..].copy_from_slice(&((c.len() as u64) * 8).to_be_bytes());
    out.push(len);
    out
}

#[derive(Clone, Copy)]
enum Stage {
    Start,
    Reshared(Handle),
    /// The next `n` powers are in flight, queued consecutively from `first`.
    Powers {
        first: Handle,
        n: usize,
    },
    Finished,
}

/// The program that turns XOR shares of H into checked shares of H¹ … H^L.
pub struct GhashKey {
    id: PartyId,
    h_share: Gf128,
    count: usize,
    powers: Vec<Auth<Gf128>>,
    stage: Stage,
}

impl std::fmt::Debug for GhashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GhashKey {{ party: {}, powers: {} }}",
            self.id, self.count
        )
    }
}

impl Drop for GhashKey {
    fn drop(&mut self) {
        self.h_share.zeroize();
        for p in &mut self.powers {
            p.zeroize();
        }
    }
}

/// The machine running [`GhashKey`] for one party.
pub type GhashMachine = Machine<Gf128, GhashKey>;

impl GhashKey {
    /// Party `id`'s program from its XOR share of H (a 16-byte GCM block), for `count`
    /// powers.
    pub fn new(id: PartyId, h_share: [u8; 16], count: usize) -> Result<GhashKey, GhashError> {
        if count == 0 || count > MAX_POWERS {
            return Err(GhashError::PowerCount(count));
        }
        Ok(GhashKey {
            id,
            h_share: Gf128::from_block(h_share),
            count,
            powers: Vec::with_capacity(count),
            stage: Stage::Start,
        })
    }

    /// Queues H^(have+1) … H^min(2·have, count) as H^have · H^(k−have).
    fn next_powers(&mut self, rss: &mut Rss<Gf128>) -> Stage {
        let have = self.powers.len();
        let top = self.powers[have - 1];
        let upto = (2 * have).min(self.count);
        let mut first = None;
        for k in have + 1..=upto {
            let other = self.powers[k - have - 1].v;
            let h = rss.mul_auth(&top, &other);
            first.get_or_insert(h);
        }
        Stage::Powers {
            first: first.unwrap_or_default(),
            n: upto - have,
        }
    }

    fn finish(&mut self) -> Flow<GhashPowers> {
        self.stage = Stage::Finished;
        Flow::Done(GhashPowers {
            id: self.id,
            powers: self.powers.iter().map(|a| a.v).collect(),
        })
    }
}

fn misuse(m: crate::rss::Misuse) -> ArithAbort {
    ArithAbort::Local(m.to_string())
}

impl Program<Gf128> for GhashKey {
    type Output = GhashPowers;

    fn step(
        &mut self,
        rss: &mut Rss<Gf128>,
        res: &Results<Gf128>,
    ) -> Result<Flow<GhashPowers>, ArithAbort> {
        let next = match self.stage {
            Stage::Start => Stage::Reshared(rss.reshare(self.h_share)),
            Stage::Reshared(h) => {
                let h = res.share(h).map_err(misuse)?;
                // The authenticated H is H¹, the first "power" in flight.
                Stage::Powers {
                    first: rss.authenticate(&h),
                    n: 1,
                }
            }
            Stage::Powers { first, n } => {
                for i in 0..n {
                    self.powers
                        .push(res.auth(first.nth_after(i)).map_err(misuse)?);
                }
                if self.powers.len() >= self.count {
                    return Ok(self.finish());
                }
                self.next_powers(rss)
            }
            Stage::Finished => {
                return Err(ArithAbort::Local("GHASH stepped after finishing".into()))
            }
        };
        self.stage = next;
        Ok(Flow::Continue)
    }
}
