//! The TLS 1.3 session's key-schedule executions (RFC 8446 §7.1), built from [`crate::hkdf`]:
//! the building blocks of the TLS 1.3 client, not yet run by a session.
//!
//! - The **handshake execution** ([`handshake13_spec`]) adds the nodes' additive shares of
//!   the (EC)DHE secret mod p and derives the handshake secret, both handshake traffic
//!   secrets and the master secret. The two handshake traffic secrets are output to every
//!   party: with them every node decrypts and checks the server's encrypted flight itself
//!   and the client Finished needs no MPC. They are HKDF-Expand outputs of the handshake
//!   secret, so they give neither it nor the master secret. The master secret stays on the
//!   wires (its HMAC key state, kept for the next execution).
//! - The **application execution** ([`application13_spec`]) takes the kept master secret
//!   and the transcript hash through the server Finished and derives both application
//!   traffic secrets and their AES-128-GCM keys and IVs. The keys' round keys and the IVs
//!   stay on the wires (for the request keystream, the tag masks and, after the commit, the
//!   server key opened to the client alone); the GHASH keys H = AES(k, 0) of both directions
//!   come out as XOR shares.
//!
//! - The **keystream executions** ([`ctr13_spec`]) are TLS 1.2's over a kept application key,
//!   with TLS 1.3's nonces: each block's public input is the record's sequence number and
//!   the counter, XORed into the kept IV inside the circuit (free). [`open_key13_spec`]
//!   opens the server application key and IV to the client alone, after the commit.
//!
//! As in TLS 1.2, the public input (a transcript hash) is fed twice, by parties 0 and 1, and
//! the first output bit says whether the copies differ.

use std::sync::Arc;

use mpc::circuit::aes::{aes128_expanded, key_schedule, EXPANDED_KEY_BITS};
use mpc::circuit::{const_bits, Builder};
use mpc::convert::{additive_fp_inputs, sum_mod_p};
use mpc::{ExecId, ExecSpec, InputGroup, InputSource, OutputGroup, OutputTo};

use crate::circuits::{
    cached, ctr_spec_for, differ, open_key_spec_for, public_groups, BuildError, CtrShape,
    NonceKind, SpecKey,
};
use crate::hkdf::{application_secrets, handshake_secrets, traffic_keys, HASH_LEN, IV_LEN};
use crate::prf::HmacKey;

/// Bits of one copy of a transcript hash fed as public input.
pub const HASH_BITS: usize = HASH_LEN * 8;
/// Bits of a kept TLS 1.3 traffic key: the 11 AES round keys, then the 12-byte IV.
pub const TRAFFIC_KEY13_BITS: usize = EXPANDED_KEY_BITS + IV_LEN * 8;

/// Output groups of the handshake execution.
pub mod hs13_out {
    /// All: [mismatch bit, client handshake traffic secret (256), server handshake traffic
    /// secret (256)].
    pub const OPENED: usize = 0;
    /// Keep: the master secret's HMAC key states (512).
    pub const MASTER: usize = 1;
}

/// Output groups of the application execution.
pub mod app13_out {
    /// All: [mismatch bit].
    pub const CHECK: usize = 0;
    /// Shares: [H_client, H_server] (128 each).
    pub const H: usize = 1;
    /// Keep: client application traffic key (round keys, then IV).
    pub const CLIENT_KEY: usize = 2;
    /// Keep: server application traffic key (round keys, then IV).
    pub const SERVER_KEY: usize = 3;
}

/// The handshake execution. Inputs: the three (EC)DHE-secret shares (parties 0, 1, 2, 256
/// bits each), then two copies (parties 0 and 1) of the transcript hash through ServerHello.
/// Outputs: see [`hs13_out`].
pub fn handshake13_spec() -> Result<Arc<ExecSpec>, BuildError> {
    cached(SpecKey::Handshake13, build_handshake13_spec)
}

fn build_handshake13_spec() -> Result<Arc<ExecSpec>, BuildError> {
    let mut b = Builder::new();
    let shares = additive_fp_inputs(&mut b);
    let pa = b.inputs(HASH_BITS);
    let pb = b.inputs(HASH_BITS);
    let mismatch = differ(&mut b, &pa, &pb)?;
    let dhe = sum_mod_p(&mut b, &shares.wires)?;
    let secrets = handshake_secrets(&mut b, &dhe, &pa)?;
    let master = HmacKey::new(&mut b, &secrets.master)?;
    let mut outputs = vec![mismatch];
    outputs.extend(&secrets.client);
    outputs.extend(&secrets.server);
    outputs.extend(master.state_bits());
    let circuit = b.finish(&outputs)?;
    let mut groups = shares.groups;
    groups.extend(public_groups(HASH_BITS));
    let outs = vec![
        OutputGroup {
            width: 1 + 2 * HASH_BITS,
            to: OutputTo::All,
        },
        OutputGroup {
            width: 512,
            to: OutputTo::Keep,
        },
    ];
    Ok(Arc::new(ExecSpec::new(Arc::new(circuit), groups, outs)?))
}

/// The application execution over the master secret kept by handshake execution `hs_exec`.
/// Inputs: the kept master secret, then two copies (parties 0 and 1) of the transcript hash
/// through the server Finished. Outputs: see [`app13_out`].
pub fn application13_spec(hs_exec: ExecId) -> Result<Arc<ExecSpec>, BuildError> {
    cached(SpecKey::Application13(hs_exec), || {
        build_application13_spec(hs_exec)
    })
}

fn build_application13_spec(hs_exec: ExecId) -> Result<Arc<ExecSpec>, BuildError> {
    let mut b = Builder::new();
    let master = b.inputs(512);
    let pa = b.inputs(HASH_BITS);
    let pb = b.inputs(HASH_BITS);
    let mismatch = differ(&mut b, &pa, &pb)?;
    let ms = HmacKey::from_state_bits(&master)?;
    let zero = const_bits(&[0u8; 16]);
    let mut hs = Vec::new();
    let mut kept = Vec::new();
    let (c, s) = application_secrets(&mut b, &ms, &pa)?;
    for secret in [c, s] {
        let key = HmacKey::new(&mut b, &secret)?;
        let keys = traffic_keys(&mut b, &key)?;
        let rk = key_schedule(&mut b, &keys.key)?;
        hs.extend(aes128_expanded(&mut b, &rk, &zero)?);
        let mut k = rk;
        k.extend(keys.iv);
        kept.push(k);
    }
    let mut outputs = vec![mismatch];
    outputs.extend(hs);
    for k in &kept {
        outputs.extend(k);
    }
    let circuit = b.finish(&outputs)?;
    let mut groups = vec![InputGroup {
        width: 512,
        source: InputSource::Kept {
            exec: hs_exec,
            group: hs13_out::MASTER,
        },
    }];
    groups.extend(public_groups(HASH_BITS));
    let keep = || OutputGroup {
        width: TRAFFIC_KEY13_BITS,
        to: OutputTo::Keep,
    };
    let outs = vec![
        OutputGroup {
            width: 1,
            to: OutputTo::All,
        },
        OutputGroup {
            width: 256,
            to: OutputTo::Shares,
        },
        keep(),
        keep(),
    ];
    Ok(Arc::new(ExecSpec::new(Arc::new(circuit), groups, outs)?))
}

/// A keystream execution of `shape` over the application key kept by `app_exec` as
/// [`app13_out::CLIENT_KEY`] or [`app13_out::SERVER_KEY`]. Inputs: the key (kept), then two
/// copies (parties 0 and 1) of every block's public input: the record's sequence number
/// (8 bytes, big-endian) and the counter (4). Outputs as [`CtrShape::layout`].
pub fn ctr13_spec(
    app_exec: ExecId,
    key: usize,
    shape: CtrShape,
) -> Result<Arc<ExecSpec>, BuildError> {
    ctr_spec_for(app_exec, key, shape, NonceKind::Sequence)
}

/// Bits the client gets when a TLS 1.3 application key is opened to it
/// ([`open_key13_spec`]): the AES key, then the 12-byte IV.
pub const OPENED_KEY13_BITS: usize = 128 + IV_LEN * 8;

/// Opens the application key kept by `app_exec` as `key` to the client alone (masked with
/// its pads): the AES key, then the 12-byte IV. No AND gates.
pub fn open_key13_spec(app_exec: ExecId, key: usize) -> Result<Arc<ExecSpec>, BuildError> {
    open_key_spec_for(app_exec, key, NonceKind::Sequence)
}
