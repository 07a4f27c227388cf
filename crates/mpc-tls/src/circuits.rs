//! The four garbled executions of one MPC-TLS session and their public input/output layout.
//!
//! 1. [`handshake_spec`] (garbled before the server answers): pre-master-secret shares →
//!    extended master secret → key block; the client Finished verify_data and its encrypted
//!    record body; XOR shares of both GHASH keys and of the Finished tag mask. The expanded
//!    AES keys, the implicit nonces and the master secret's HMAC states stay on wires
//!    ([`OutputTo::Keep`]) for the later executions.
//! 2. [`server_finished_spec`]: the expected server verify_data, the keystream block that
//!    decrypts the server's Finished and the XOR-shared tag mask for it.
//! 3. [`ctr_spec`] with [`Nonces::Sequence`], for the request: each record's keystream to
//!    the client (masked with the client's pads) and XOR shares of its tag mask.
//! 4. [`ctr_spec`] with [`Nonces::Public`], for the records the server sent, their explicit
//!    nonces as public inputs; alert keystream is revealed to the nodes (an alert carries no
//!    user data), application-data keystream only to the client.
//!
//! Keystream work is split by [`plan_batches`] into executions of bounded size.
//!
//! Every public input that the nodes learn from the relayed traffic is fed twice, by party 0
//! and by party 1, and the circuit outputs one bit saying whether the copies differ: with at
//! most one deviating party, equal copies are the true value, so nobody can make the circuit
//! compute on values the others did not see.

use std::sync::Arc;

use mpc::circuit::aes::{aes128_expanded, key_schedule, EXPANDED_KEY_BITS};
use mpc::circuit::{const_bits, Bit, Builder, CircuitError};
use mpc::convert::{additive_fp_inputs, sum_mod_p};
use mpc::spec::SpecError;
use mpc::{ExecId, ExecSpec, InputGroup, InputSource, OutputGroup, OutputTo};

use crate::codec::{blocks_for, hs, MAX_FRAGMENT};
use crate::prf::{extended_master_secret, key_expansion, verify_data, HmacKey, Side};

/// Errors building an execution.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A circuit could not be built.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The groups do not fit the circuit.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A record longer than TLS allows, or no records.
    #[error("{0}")]
    Records(String),
}

/// Bits of a kept traffic key: the 11 AES round keys, then the 4-byte implicit nonce.
pub const TRAFFIC_KEY_BITS: usize = EXPANDED_KEY_BITS + 32;

/// Output groups of the handshake execution.
pub mod hs_out {
    /// All: [mismatch bit, client verify_data (96), client Finished ciphertext (128)].
    pub const PUBLIC: usize = 0;
    /// Shares: [client Finished tag mask, H_client, H_server] (128 each).
    pub const SHARES: usize = 1;
    /// Keep: client traffic key.
    pub const CLIENT_KEY: usize = 2;
    /// Keep: server traffic key.
    pub const SERVER_KEY: usize = 3;
    /// Keep: master secret HMAC states.
    pub const MASTER: usize = 4;
}

/// Width of one copy of the handshake's public input: session hash (32 bytes), server random
/// (32), client random (32).
pub const HS_PUBLIC_BITS: usize = 96 * 8;
/// Width of one copy of the server Finished execution's public input: the handshake hash
/// through the client Finished (32 bytes), then the record's explicit nonce (8).
pub const SF_PUBLIC_BITS: usize = 40 * 8;

/// OR of the bitwise differences: one bit, set when the two copies differ.
fn differ(b: &mut Builder, x: &[Bit], y: &[Bit]) -> Result<Bit, CircuitError> {
    let d = b.xor_vec(x, y)?;
    Ok(d.into_iter()
        .reduce(|acc, v| b.or(acc, v))
        .unwrap_or(Bit::Const(false)))
}

fn public_groups(width: usize) -> [InputGroup; 2] {
    [0, 1].map(|p| InputGroup {
        width,
        source: InputSource::Private(p),
    })
}

/// AES-128 of one block under expanded round keys, as a copy of a circuit built once per
/// process (re-running the gadget for every counter block dominated session set-up time).
fn aes_block(b: &mut Builder, rk: &[Bit], block: &[Bit]) -> Result<Vec<Bit>, CircuitError> {
    static AES: std::sync::OnceLock<mpc::circuit::Circuit> = std::sync::OnceLock::new();
    let c = AES.get_or_init(mpc::circuit::aes::aes128_expanded_circuit);
    let mut inputs = rk.to_vec();
    inputs.extend_from_slice(block);
    b.instantiate(c, &inputs)
}

/// The 16-byte counter block: implicit nonce (4) ‖ explicit nonce (8) ‖ counter (4).
fn counter_block(iv: &[Bit], explicit: &[Bit], ctr: u32) -> Vec<Bit> {
    let mut block = iv.to_vec();
    block.extend_from_slice(explicit);
    block.extend(const_bits(&ctr.to_be_bytes()));
    block
}

/// The handshake execution. Inputs: the three pre-master-secret shares (party 0, 1, 2, 256
/// bits each), then two copies (parties 0 and 1) of [`HS_PUBLIC_BITS`]. Outputs: see
/// [`hs_out`]. The client's first record (its Finished) uses explicit nonce 0.
pub fn handshake_spec() -> Result<Arc<ExecSpec>, BuildError> {
    // The circuit is the same for every session: build it once per process.
    static SPEC: std::sync::OnceLock<Arc<ExecSpec>> = std::sync::OnceLock::new();
    if let Some(s) = SPEC.get() {
        return Ok(s.clone());
    }
    let s = build_handshake_spec()?;
    Ok(SPEC.get_or_init(|| s).clone())
}

fn build_handshake_spec() -> Result<Arc<ExecSpec>, BuildError> {
    let mut b = Builder::new();
    let shares = additive_fp_inputs(&mut b);
    let pa = b.inputs(HS_PUBLIC_BITS);
    let pb = b.inputs(HS_PUBLIC_BITS);
    let mismatch = differ(&mut b, &pa, &pb)?;
    let (session_hash, randoms) = pa.split_at(256);
    let (server_random, client_random) = randoms.split_at(256);

    let pms = sum_mod_p(&mut b, &shares.wires)?;
    let ms = extended_master_secret(&mut b, &pms, session_hash)?;
    let mk = HmacKey::new(&mut b, &ms)?;
    let keys = key_expansion(&mut b, &mk, server_random, client_random)?;
    // Client Finished covers the same messages as the session hash (no CertificateVerify).
    let cvd = verify_data(&mut b, &mk, Side::Client, session_hash)?;

    let crk = key_schedule(&mut b, &keys.client_key)?;
    let srk = key_schedule(&mut b, &keys.server_key)?;
    let zero = const_bits(&[0u8; 16]);
    let h_client = aes128_expanded(&mut b, &crk, &zero)?;
    let h_server = aes128_expanded(&mut b, &srk, &zero)?;
    let seq0 = const_bits(&0u64.to_be_bytes());
    let mask = aes128_expanded(&mut b, &crk, &counter_block(&keys.client_iv, &seq0, 1))?;
    let ks = aes128_expanded(&mut b, &crk, &counter_block(&keys.client_iv, &seq0, 2))?;
    let mut fin = const_bits(&[hs::FINISHED, 0, 0, 12]);
    fin.extend_from_slice(&cvd);
    let fin_ct = b.xor_vec(&fin, &ks)?;

    let mut outputs = vec![mismatch];
    outputs.extend(&cvd);
    outputs.extend(&fin_ct);
    outputs.extend(&mask);
    outputs.extend(&h_client);
    outputs.extend(&h_server);
    outputs.extend(&crk);
    outputs.extend(&keys.client_iv);
    outputs.extend(&srk);
    outputs.extend(&keys.server_iv);
    outputs.extend(mk.state_bits());
    let circuit = b.finish(&outputs)?;

    let mut groups = shares.groups;
    groups.extend(public_groups(HS_PUBLIC_BITS));
    let outs = vec![
        OutputGroup {
            width: 1 + 96 + 128,
            to: OutputTo::All,
        },
        OutputGroup {
            width: 3 * 128,
            to: OutputTo::Shares,
        },
        OutputGroup {
            width: TRAFFIC_KEY_BITS,
            to: OutputTo::Keep,
        },
        OutputGroup {
            width: TRAFFIC_KEY_BITS,
            to: OutputTo::Keep,
        },
        OutputGroup {
            width: 512,
            to: OutputTo::Keep,
        },
    ];
    Ok(Arc::new(ExecSpec::new(Arc::new(circuit), groups, outs)?))
}

/// The server Finished execution, over the keys kept by handshake execution `hs_exec`.
/// Inputs: server traffic key (kept), master secret (kept), then two copies (parties 0, 1)
/// of [`SF_PUBLIC_BITS`]. Outputs: All [mismatch, server verify_data (96), keystream block
/// (128)]; Shares [tag mask (128)].
pub fn server_finished_spec(hs_exec: ExecId) -> Result<Arc<ExecSpec>, BuildError> {
    static SPEC: std::sync::OnceLock<Arc<ExecSpec>> = std::sync::OnceLock::new();
    if let Some(s) = SPEC.get().filter(|_| hs_exec == 0) {
        return Ok(s.clone());
    }
    let s = build_server_finished_spec(hs_exec)?;
    if hs_exec == 0 {
        return Ok(SPEC.get_or_init(|| s).clone());
    }
    Ok(s)
}

fn build_server_finished_spec(hs_exec: ExecId) -> Result<Arc<ExecSpec>, BuildError> {
    let mut b = Builder::new();
    let skey = b.inputs(TRAFFIC_KEY_BITS);
    let master = b.inputs(512);
    let pa = b.inputs(SF_PUBLIC_BITS);
    let pb = b.inputs(SF_PUBLIC_BITS);
    let mismatch = differ(&mut b, &pa, &pb)?;
    let (hash, explicit) = pa.split_at(256);
    let (rk, iv) = skey.split_at(EXPANDED_KEY_BITS);
    let mk = HmacKey::from_state_bits(&master)?;
    let svd = verify_data(&mut b, &mk, Side::Server, hash)?;
    let ks = aes128_expanded(&mut b, rk, &counter_block(iv, explicit, 2))?;
    let mask = aes128_expanded(&mut b, rk, &counter_block(iv, explicit, 1))?;
    let mut outputs = vec![mismatch];
    outputs.extend(&svd);
    outputs.extend(&ks);
    outputs.extend(&mask);
    let circuit = b.finish(&outputs)?;
    let mut groups = vec![
        InputGroup {
            width: TRAFFIC_KEY_BITS,
            source: InputSource::Kept {
                exec: hs_exec,
                group: hs_out::SERVER_KEY,
            },
        },
        InputGroup {
            width: 512,
            source: InputSource::Kept {
                exec: hs_exec,
                group: hs_out::MASTER,
            },
        },
    ];
    groups.extend(public_groups(SF_PUBLIC_BITS));
    let outs = vec![
        OutputGroup {
            width: 1 + 96 + 128,
            to: OutputTo::All,
        },
        OutputGroup {
            width: 128,
            to: OutputTo::Shares,
        },
    ];
    Ok(Arc::new(ExecSpec::new(Arc::new(circuit), groups, outs)?))
}

/// Most AES blocks in one keystream execution: bounds each execution's circuit and garbled
/// tables (≈ 5,120 AND gates and 165 KB of tables per block) whatever the record sizes.
pub const MAX_BLOCKS_PER_EXECUTION: usize = 128;

/// A record to encrypt or decrypt in counter mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtrRecord {
    /// Plaintext (= ciphertext) length in bytes.
    pub len: usize,
    /// An alert: its keystream is revealed to the nodes (an alert carries no user data)
    /// instead of going to the client.
    pub alert: bool,
}

/// One execution's share of the work on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The record's index in the whole list.
    pub record: usize,
    /// Whether this execution computes the record's tag mask (counter 1).
    pub mask: bool,
    /// Keystream bytes `start..end` of the record (counter blocks from 2 + start / 16).
    pub start: usize,
    /// End of the keystream range.
    pub end: usize,
}

/// Splits records into executions of at most [`MAX_BLOCKS_PER_EXECUTION`] AES blocks,
/// splitting large records at block boundaries.
pub fn plan_batches(records: &[CtrRecord]) -> Vec<Vec<Segment>> {
    let mut batches = Vec::new();
    let mut cur: Vec<Segment> = Vec::new();
    let mut room = MAX_BLOCKS_PER_EXECUTION;
    for (i, r) in records.iter().enumerate() {
        let mut start = 0;
        let mut mask = true;
        loop {
            let need = usize::from(mask) + blocks_for(r.len - start);
            if room == 0 {
                batches.push(std::mem::take(&mut cur));
                room = MAX_BLOCKS_PER_EXECUTION;
            }
            let take_blocks = (room - usize::from(mask)).min(blocks_for(r.len - start));
            let end = (start + 16 * take_blocks).min(r.len);
            cur.push(Segment {
                record: i,
                mask,
                start,
                end,
            });
            room -= usize::from(mask) + take_blocks;
            if need <= usize::from(mask) + take_blocks {
                break;
            }
            start = end;
            mask = false;
        }
    }
    if !cur.is_empty() {
        batches.push(cur);
    }
    batches
}

/// Where a keystream execution's explicit nonces come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nonces {
    /// Our own records: the explicit nonce is the sequence number, a circuit constant.
    Sequence(Vec<u64>),
    /// The server's records: public inputs, one 8-byte nonce per distinct record of the
    /// execution in order, fed by parties 0 and 1 and compared.
    Public,
}

/// Layout of a keystream execution's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtrLayout {
    /// The records whose nonces this execution takes, in input order.
    pub records: Vec<usize>,
    /// Index of the All group [mismatch bit when nonces are public, then alert keystream],
    /// if there is one.
    pub public: Option<usize>,
    /// Index of the Shares group (tag masks, 128 bits each, in segment order), if any.
    pub shares: Option<usize>,
    /// Index of the Client group (keystream of non-alert segments, in order), if any.
    pub client: Option<usize>,
    /// Width of the Client group.
    pub client_bits: usize,
}

/// Width of one copy of a keystream execution's public input for `n` records.
pub fn nonce_bits(n: usize) -> usize {
    64 * n
}

/// A keystream execution over the traffic key kept by `hs_exec` as output group `key`
/// ([`hs_out::CLIENT_KEY`] or [`hs_out::SERVER_KEY`]), for `segments` of `records`.
/// Inputs: the key (kept), then for [`Nonces::Public`] two copies (parties 0, 1) of the
/// nonces. Outputs as [`CtrLayout`] says.
pub fn ctr_spec(
    hs_exec: ExecId,
    key: usize,
    records: &[CtrRecord],
    nonces: &Nonces,
    segments: &[Segment],
) -> Result<(Arc<ExecSpec>, CtrLayout), BuildError> {
    let mut used: Vec<usize> = segments.iter().map(|s| s.record).collect();
    used.dedup();
    for s in segments {
        let r = records
            .get(s.record)
            .ok_or_else(|| BuildError::Records(format!("no record {}", s.record)))?;
        if r.len > MAX_FRAGMENT || s.start > s.end || s.end > r.len || s.start % 16 != 0 {
            return Err(BuildError::Records(format!(
                "bad segment {s:?} of a {}-byte record",
                r.len
            )));
        }
    }
    if segments.is_empty() {
        return Err(BuildError::Records("no segments".into()));
    }
    let mut b = Builder::new();
    let tk = b.inputs(TRAFFIC_KEY_BITS);
    let mut public = Vec::new();
    let mut groups = vec![InputGroup {
        width: TRAFFIC_KEY_BITS,
        source: InputSource::Kept {
            exec: hs_exec,
            group: key,
        },
    }];
    let explicit: Vec<Vec<Bit>> = match nonces {
        Nonces::Sequence(seqs) => used
            .iter()
            .map(|&r| {
                seqs.get(r)
                    .map(|s| const_bits(&s.to_be_bytes()))
                    .ok_or_else(|| {
                        BuildError::Records(format!("no sequence number for record {r}"))
                    })
            })
            .collect::<Result<_, _>>()?,
        Nonces::Public => {
            let w = nonce_bits(used.len());
            let pa = b.inputs(w);
            let pb = b.inputs(w);
            public.push(differ(&mut b, &pa, &pb)?);
            groups.extend(public_groups(w));
            pa.chunks_exact(64).map(<[Bit]>::to_vec).collect()
        }
    };
    let (rk, iv) = tk.split_at(EXPANDED_KEY_BITS);
    let mut client = Vec::new();
    let mut masks = Vec::new();
    for s in segments {
        let slot = used.iter().position(|&r| r == s.record).unwrap_or(0);
        let ex = &explicit[slot];
        if s.mask {
            masks.extend(aes_block(&mut b, rk, &counter_block(iv, ex, 1))?);
        }
        let mut ks = Vec::with_capacity((s.end - s.start) * 8);
        for blk in s.start / 16..blocks_for(s.end) {
            ks.extend(aes128_expanded(
                &mut b,
                rk,
                &counter_block(iv, ex, 2 + blk as u32),
            )?);
        }
        ks.truncate((s.end - s.start) * 8);
        if records[s.record].alert {
            public.extend(ks);
        } else {
            client.extend(ks);
        }
    }
    let mut outs = Vec::new();
    let mut outputs = Vec::new();
    let mut layout = CtrLayout {
        records: used,
        public: None,
        shares: None,
        client: None,
        client_bits: client.len(),
    };
    for (bits, to, slot) in [
        (public, OutputTo::All, &mut layout.public),
        (masks, OutputTo::Shares, &mut layout.shares),
        (client, OutputTo::Client, &mut layout.client),
    ] {
        if !bits.is_empty() {
            *slot = Some(outs.len());
            outs.push(OutputGroup {
                width: bits.len(),
                to,
            });
            outputs.extend(bits);
        }
    }
    let circuit = b.finish(&outputs)?;
    Ok((
        Arc::new(ExecSpec::new(Arc::new(circuit), groups, outs)?),
        layout,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn batches_cover_every_block_once() {
        let recs: Vec<CtrRecord> = [0, 1, 16, 17, 5000, 16384, 2, 16384]
            .iter()
            .map(|&len| CtrRecord { len, alert: false })
            .collect();
        let plan = plan_batches(&recs);
        let mut covered = vec![0usize; recs.len()];
        let mut masks = vec![0; recs.len()];
        for batch in &plan {
            let blocks: usize = batch
                .iter()
                .map(|s| usize::from(s.mask) + blocks_for(s.end) - s.start / 16)
                .sum();
            assert!(blocks <= MAX_BLOCKS_PER_EXECUTION);
            for s in batch {
                assert_eq!(s.start, covered[s.record]);
                covered[s.record] = s.end;
                masks[s.record] += usize::from(s.mask);
            }
        }
        assert_eq!(covered, recs.iter().map(|r| r.len).collect::<Vec<_>>());
        assert!(masks.iter().all(|&m| m == 1));
    }
}
