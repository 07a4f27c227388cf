//! The four garbled executions of one MPC-TLS session and their public input/output layout.
//!
//! 1. [`handshake_spec`] (garbled before the server answers): pre-master-secret shares →
//!    extended master secret → key block; the client Finished verify_data and its encrypted
//!    record body; XOR shares of both GHASH keys and of the Finished tag mask. The expanded
//!    AES keys, the implicit nonces and the master secret's HMAC states stay on wires
//!    ([`OutputTo::Keep`]) for the later executions.
//! 2. [`server_finished_spec`]: the expected server verify_data, the keystream block that
//!    decrypts the server's Finished and the XOR-shared tag mask for it.
//! 3. [`request_spec`]: for each request record, its keystream to the client (masked with
//!    the client's pads) and XOR shares of its tag mask.
//! 4. [`response_spec`]: the same for the records the server sent, with their explicit
//!    nonces as public inputs; alert keystream is revealed to the nodes (an alert carries no
//!    user data), application-data keystream only to the client.
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

/// The 16-byte counter block: implicit nonce (4) ‖ explicit nonce (8) ‖ counter (4).
fn counter_block(iv: &[Bit], explicit: &[Bit], ctr: u32) -> Vec<Bit> {
    let mut block = iv.to_vec();
    block.extend_from_slice(explicit);
    block.extend(const_bits(&ctr.to_be_bytes()));
    block
}

/// Keystream for a record of `len` bytes: counter blocks 2, 3, … truncated to `len` bytes.
fn keystream(
    b: &mut Builder,
    rk: &[Bit],
    iv: &[Bit],
    explicit: &[Bit],
    len: usize,
) -> Result<Vec<Bit>, CircuitError> {
    let mut out = Vec::with_capacity(len * 8);
    for i in 0..blocks_for(len) {
        let ks = aes128_expanded(b, rk, &counter_block(iv, explicit, 2 + i as u32))?;
        out.extend(ks);
    }
    out.truncate(len * 8);
    Ok(out)
}

/// The handshake execution. Inputs: the three pre-master-secret shares (party 0, 1, 2, 256
/// bits each), then two copies (parties 0 and 1) of [`HS_PUBLIC_BITS`]. Outputs: see
/// [`hs_out`]. The client's first record (its Finished) uses explicit nonce 0.
pub fn handshake_spec() -> Result<Arc<ExecSpec>, BuildError> {
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

fn check_lens(lens: &[usize]) -> Result<(), BuildError> {
    if lens.is_empty() {
        return Err(BuildError::Records("no records".into()));
    }
    if let Some(l) = lens.iter().find(|&&l| l > MAX_FRAGMENT) {
        return Err(BuildError::Records(format!(
            "a record of {l} bytes exceeds the {MAX_FRAGMENT}-byte TLS limit"
        )));
    }
    Ok(())
}

/// The request execution for client records of `lens` bytes carrying explicit nonces
/// (= sequence numbers) `first_seq`, `first_seq + 1`, …. Input: the client traffic key (kept).
/// Outputs: Client [keystream of every record, concatenated, Σ lens bytes]; Shares [tag
/// mask of every record, 128 bits each].
pub fn request_spec(
    hs_exec: ExecId,
    first_seq: u64,
    lens: &[usize],
) -> Result<Arc<ExecSpec>, BuildError> {
    check_lens(lens)?;
    let mut b = Builder::new();
    let ckey = b.inputs(TRAFFIC_KEY_BITS);
    let (rk, iv) = ckey.split_at(EXPANDED_KEY_BITS);
    let mut ks = Vec::new();
    let mut masks = Vec::new();
    for (i, &len) in lens.iter().enumerate() {
        let explicit = const_bits(&(first_seq + i as u64).to_be_bytes());
        ks.extend(keystream(&mut b, rk, iv, &explicit, len)?);
        masks.extend(aes128_expanded(
            &mut b,
            rk,
            &counter_block(iv, &explicit, 1),
        )?);
    }
    let mut outputs = Vec::new();
    let mut outs = Vec::new();
    if !ks.is_empty() {
        outs.push(OutputGroup {
            width: ks.len(),
            to: OutputTo::Client,
        });
        outputs.extend(ks);
    }
    outs.push(OutputGroup {
        width: masks.len(),
        to: OutputTo::Shares,
    });
    outputs.extend(masks);
    let circuit = b.finish(&outputs)?;
    let groups = vec![InputGroup {
        width: TRAFFIC_KEY_BITS,
        source: InputSource::Kept {
            exec: hs_exec,
            group: hs_out::CLIENT_KEY,
        },
    }];
    Ok(Arc::new(ExecSpec::new(Arc::new(circuit), groups, outs)?))
}

/// A server record as the response execution needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseRecord {
    /// Plaintext (= ciphertext) length.
    pub len: usize,
    /// An alert (its keystream is revealed to the nodes) rather than application data (its
    /// keystream goes only to the client).
    pub alert: bool,
}

/// Layout of a response execution's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseLayout {
    /// Index of the All group: [mismatch, alert keystreams concatenated].
    pub public: usize,
    /// Index of the Shares group: tag masks, 128 bits per record in order.
    pub shares: usize,
    /// Index of the Client group (application-data keystream), if any.
    pub client: Option<usize>,
    /// Client keystream bits.
    pub client_bits: usize,
}

/// Width of one copy of the response execution's public input for `n` records.
pub fn response_public_bits(n: usize) -> usize {
    64 * n
}

/// The response execution for `records`, over the server traffic key kept by `hs_exec`.
/// Inputs: server key (kept), then two copies (parties 0, 1) of the records' explicit
/// nonces (8 bytes each).
pub fn response_spec(
    hs_exec: ExecId,
    records: &[ResponseRecord],
) -> Result<(Arc<ExecSpec>, ResponseLayout), BuildError> {
    check_lens(&records.iter().map(|r| r.len).collect::<Vec<_>>())?;
    let mut b = Builder::new();
    let skey = b.inputs(TRAFFIC_KEY_BITS);
    let w = response_public_bits(records.len());
    let pa = b.inputs(w);
    let pb = b.inputs(w);
    let mismatch = differ(&mut b, &pa, &pb)?;
    let (rk, iv) = skey.split_at(EXPANDED_KEY_BITS);
    let mut public = vec![mismatch];
    let mut client = Vec::new();
    let mut masks = Vec::new();
    for (r, explicit) in records.iter().zip(pa.chunks_exact(64)) {
        let ks = keystream(&mut b, rk, iv, explicit, r.len)?;
        if r.alert {
            public.extend(ks);
        } else {
            client.extend(ks);
        }
        masks.extend(aes128_expanded(
            &mut b,
            rk,
            &counter_block(iv, explicit, 1),
        )?);
    }
    let mut outs = vec![
        OutputGroup {
            width: public.len(),
            to: OutputTo::All,
        },
        OutputGroup {
            width: masks.len(),
            to: OutputTo::Shares,
        },
    ];
    let client_bits = client.len();
    let mut outputs = public;
    outputs.extend(masks);
    let client_group = if client.is_empty() {
        None
    } else {
        outs.push(OutputGroup {
            width: client.len(),
            to: OutputTo::Client,
        });
        outputs.extend(client);
        Some(2)
    };
    let circuit = b.finish(&outputs)?;
    let mut groups = vec![InputGroup {
        width: TRAFFIC_KEY_BITS,
        source: InputSource::Kept {
            exec: hs_exec,
            group: hs_out::SERVER_KEY,
        },
    }];
    groups.extend(public_groups(w));
    let spec = ExecSpec::new(Arc::new(circuit), groups, outs)?;
    Ok((
        Arc::new(spec),
        ResponseLayout {
            public: 0,
            shares: 1,
            client: client_group,
            client_bits,
        },
    ))
}
