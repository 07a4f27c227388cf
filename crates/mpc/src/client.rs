//! The external client's side of [`OutputTo::Client`](crate::OutputTo::Client) outputs: it
//! makes the one-time pads it hands to the nodes, and unmasks what the nodes send back,
//! accepting only when all three nodes report the same masked value.

use rand_core::{CryptoRng, RngCore, SeedableRng};
use zeroize::{Zeroize, Zeroizing};

use crate::spec::{PartyId, PARTIES};

/// Errors unmasking a client output.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    /// A node's report is missing.
    #[error("no masked output from node {0}")]
    Missing(PartyId),
    /// A report has the wrong width.
    #[error("node {party} sent {got} bits, expected {expected}")]
    Width {
        /// Node.
        party: PartyId,
        /// Received width.
        got: usize,
        /// Expected width.
        expected: usize,
    },
    /// Nodes disagree: at least one deviated, so nothing is accepted.
    #[error("node {party} reported a masked output that differs from node {other}'s")]
    Disagree {
        /// A node whose report differs.
        party: PartyId,
        /// The node it was compared with.
        other: PartyId,
    },
}

/// A pad of `width` bits expanded from `seed` with ChaCha20: bit `i` is bit `i % 8` (least
/// significant first) of keystream byte `i / 8`. The client and the node that holds the seed
/// expand the same pad; to anyone without the seed it is as good as random (a pseudorandom
/// generator's output), so the masked output it hides stays hidden.
pub fn pad_from_seed(seed: &[u8; 32], width: usize) -> Vec<bool> {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(*seed);
    let mut bytes = Zeroizing::new(vec![0u8; width.div_ceil(8)]);
    rng.fill_bytes(&mut bytes);
    (0..width)
        .map(|i| bytes[i / 8] >> (i % 8) & 1 == 1)
        .collect()
}

/// The client's pads for one output group: pad `i` goes to node `i`. The output is masked
/// with the XOR of all three, so no single node (nor two, short of the evaluator and a
/// garbler colluding) learns it.
pub struct ClientPads {
    pads: [Vec<bool>; PARTIES],
}

impl Drop for ClientPads {
    fn drop(&mut self) {
        for p in &mut self.pads {
            p.iter_mut().for_each(Zeroize::zeroize);
        }
    }
}

impl std::fmt::Debug for ClientPads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientPads({} bits)", self.pads[0].len())
    }
}

impl ClientPads {
    /// Fresh random pads for an output of `width` bits.
    pub fn random<R: RngCore + CryptoRng>(width: usize, rng: &mut R) -> Self {
        let pads = std::array::from_fn(|_| (0..width).map(|_| rng.next_u32() & 1 == 1).collect());
        ClientPads { pads }
    }
    /// Pads expanded from one 32-byte seed per node ([`pad_from_seed`]): a node can be
    /// handed its seed instead of its pad, 32 bytes however wide the output.
    pub fn from_seeds(seeds: &[[u8; 32]; PARTIES], width: usize) -> Self {
        ClientPads {
            pads: std::array::from_fn(|i| pad_from_seed(&seeds[i], width)),
        }
    }

    /// The pad to hand to node `party`.
    pub fn for_node(&self, party: PartyId) -> Vec<bool> {
        self.pads[party as usize % PARTIES].clone()
    }
    /// Recovers the output from the three nodes' reports `(node, masked bits)`.
    pub fn unmask(&self, reports: &[(PartyId, Vec<bool>)]) -> Result<Vec<bool>, ClientError> {
        let width = self.pads[0].len();
        let mut by_node: [Option<&Vec<bool>>; PARTIES] = [None; PARTIES];
        for (p, bits) in reports {
            if let Some(slot) = by_node.get_mut(*p as usize) {
                *slot = Some(bits);
            }
        }
        let mut first: Option<(PartyId, &Vec<bool>)> = None;
        for (p, r) in by_node.iter().enumerate() {
            let p = p as PartyId;
            let r = r.ok_or(ClientError::Missing(p))?;
            if r.len() != width {
                return Err(ClientError::Width {
                    party: p,
                    got: r.len(),
                    expected: width,
                });
            }
            match first {
                None => first = Some((p, r)),
                Some((q, f)) if f != r => return Err(ClientError::Disagree { party: p, other: q }),
                Some(_) => {}
            }
        }
        let (p, m) = first.ok_or(ClientError::Missing(0))?;
        self.unmask_agreed(p, m)
    }

    /// Recovers the output from the one masked value the three nodes agreed on (checked by
    /// the caller, as when one node sends it whole and the others a digest); `from` names
    /// the node it came from, for the width error.
    pub fn unmask_agreed(&self, from: PartyId, masked: &[bool]) -> Result<Vec<bool>, ClientError> {
        let width = self.pads[0].len();
        if masked.len() != width {
            return Err(ClientError::Width {
                party: from,
                got: masked.len(),
                expected: width,
            });
        }
        Ok((0..width)
            .map(|i| masked[i] ^ self.pads[0][i] ^ self.pads[1][i] ^ self.pads[2][i])
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_pad_is_the_chacha20_keystream_bit_by_bit() {
        let seed = [7u8; 32];
        let pad = pad_from_seed(&seed, 20);
        assert_eq!(pad.len(), 20);
        let mut ks = [0u8; 3];
        rand_chacha::ChaCha20Rng::from_seed(seed).fill_bytes(&mut ks);
        for (i, b) in pad.iter().enumerate() {
            assert_eq!(*b, ks[i / 8] >> (i % 8) & 1 == 1, "bit {i}");
        }
        // Same seed, same pad (client and node agree); a longer pad extends a shorter one.
        assert_eq!(pad_from_seed(&seed, 20), pad);
        assert_eq!(&pad_from_seed(&seed, 64)[..20], &pad[..]);
        assert_ne!(pad_from_seed(&[8u8; 32], 20), pad);
    }

    #[test]
    fn seeded_pads_unmask_like_random_ones() {
        let seeds = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let pads = ClientPads::from_seeds(&seeds, 100);
        for n in 0..3u8 {
            assert_eq!(pads.for_node(n), pad_from_seed(&seeds[n as usize], 100));
        }
        let value: Vec<bool> = (0..100).map(|i| i % 3 == 0).collect();
        let masked: Vec<bool> = (0..100)
            .map(|i| value[i] ^ (0..3).fold(false, |a, n| a ^ pads.for_node(n)[i]))
            .collect();
        let reports: Vec<_> = (0..3).map(|n| (n, masked.clone())).collect();
        assert_eq!(pads.unmask(&reports).unwrap(), value);
        assert_eq!(pads.unmask_agreed(0, &masked).unwrap(), value);
    }
}
