//! The external client's side of [`OutputTo::Client`](crate::OutputTo::Client) outputs: it
//! makes the one-time pads it hands to the nodes, and unmasks what the nodes send back,
//! accepting only when all three nodes report the same masked value.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroize;

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
        let m = first.map(|(_, m)| m.clone()).unwrap_or_default();
        Ok((0..width)
            .map(|i| m[i] ^ self.pads[0][i] ^ self.pads[1][i] ^ self.pads[2][i])
            .collect())
    }
}
