//! The disclosure's real circuits, evaluated in the clear on a response encrypted with known
//! keys: the same pipeline (executions, specs, inputs) the nodes run on the MPC engine, with
//! kept labels replaced by the plain bits they carry. A deviating client is modelled by the
//! request it sends; deviating nodes by the inputs they feed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aes::cipher::{BlockEncrypt, KeyInit};
use disclosure::circuit::read_final;
use disclosure::client::{plan, ClientPlan, Selection};
use disclosure::pipeline::{Pipeline, Step};
use disclosure::request::{DisclosureRequest, DisclosureResult};
use mpc::circuit::aes::expand_key;
use mpc::circuit::bytes_to_bits;
use mpc::InputSource;
use mpc_tls::node::CommittedRecord;

pub const SERVER_KEY: [u8; 16] = [0x42; 16];
pub const SERVER_IV: [u8; 4] = [1, 2, 3, 4];
pub const CLIENT_KEY: [u8; 16] = [0x17; 16];
pub const CLIENT_IV: [u8; 4] = [9, 8, 7, 6];
/// 2025-11-21.
pub const TIME: u64 = 1_763_700_000;

/// Encrypts `plain` as records of at most `rec` bytes with explicit nonces 1, 2, …
pub fn encrypt(plain: &[u8], rec: usize, key: &[u8; 16], iv: &[u8; 4]) -> Vec<CommittedRecord> {
    let aes = aes::Aes128::new(key.into());
    plain
        .chunks(rec.max(1))
        .enumerate()
        .map(|(r, chunk)| {
            let explicit = (r as u64 + 1).to_be_bytes();
            let mut ct = chunk.to_vec();
            for (j, blk) in ct.chunks_mut(16).enumerate() {
                let mut counter = [0u8; 16];
                counter[..4].copy_from_slice(iv);
                counter[4..12].copy_from_slice(&explicit);
                counter[12..].copy_from_slice(&(j as u32 + 2).to_be_bytes());
                let mut b = counter.into();
                aes.encrypt_block(&mut b);
                for (c, k) in blk.iter_mut().zip(b.iter()) {
                    *c ^= k;
                }
            }
            CommittedRecord::new(explicit, ct)
        })
        .collect()
}

fn key_bits(key: &[u8; 16], iv: &[u8; 4]) -> Vec<bool> {
    let mut v = bytes_to_bits(&expand_key(key));
    v.extend(bytes_to_bits(iv));
    v
}

/// How the nodes deviate in a clear run (a node feeding other ciphertext is caught by the
/// engine's public-input check, tested in `tests/session.rs`).
#[derive(Default, Clone, Copy)]
pub struct Deviation {
    /// Party `p` feeds a UID share with a flipped bit.
    pub bad_uid_share: Option<usize>,
}

/// UID key material for a clear run: shares and coordinates.
pub struct Uid {
    pub xs: [u16; 3],
    pub t: usize,
    pub ys: [[u8; 16]; 3],
}

/// What a clear run ends with.
pub struct Outcome {
    pub result: Result<DisclosureResult, String>,
    pub and_gates: usize,
}

/// Runs the disclosure of `req` in the clear over `response` (split into records of `rec`
/// bytes) and `request` (one record), with the client's `salts`.
pub fn run_request(
    req: &DisclosureRequest,
    response: &[u8],
    rec: usize,
    request: &[u8],
    salts: &[[u8; 16]],
    uid: Option<&Uid>,
    dev: Deviation,
) -> Outcome {
    let resp = encrypt(response, rec, &SERVER_KEY, &SERVER_IV);
    let reqr = encrypt(request, 16 * 1024, &CLIENT_KEY, &CLIENT_IV);
    let plan = match req.check(response.len()) {
        Ok(p) => p,
        Err(e) => {
            return Outcome {
                result: Err(e.to_string()),
                and_gates: 0,
            }
        }
    };
    let lens = |r: &[CommittedRecord]| r.iter().map(|r| r.ciphertext_len()).collect::<Vec<_>>();
    let mut p = Pipeline::new(
        req,
        &plan,
        &lens(&resp),
        &lens(&reqr),
        uid.map(|u| (u.xs, u.t)),
        TIME,
    );
    // Execution 0 holds the traffic keys: server key as group 0, client key as group 1.
    let mut outputs: Vec<Vec<Vec<bool>>> = vec![vec![
        key_bits(&SERVER_KEY, &SERVER_IV),
        key_bits(&CLIENT_KEY, &CLIENT_IV),
    ]];
    let steps = p.steps().to_vec();
    let mut ands = 0;
    for (i, step) in steps.iter().enumerate() {
        let spec = match p.next_spec((0, 0), (0, 1)) {
            Ok(s) => s,
            Err(e) => {
                return Outcome {
                    result: Err(e.to_string()),
                    and_gates: ands,
                }
            }
        };
        let exec = (i + 1) as u32;
        p.registered(exec);
        ands += spec.circuit().and_count();
        let mut input = Vec::with_capacity(spec.circuit().num_inputs());
        let public = p.public_input(i, &resp, &reqr).unwrap();
        for (gi, g) in spec.inputs().iter().enumerate() {
            let bits: Vec<bool> = match g.source {
                InputSource::Kept { exec, group } => outputs[exec as usize][group].clone(),
                InputSource::KeptPart {
                    exec,
                    group,
                    offset,
                } => outputs[exec as usize][group][offset..offset + g.width].to_vec(),
                InputSource::Private(party) => match step {
                    Step::Final => {
                        let lay = p.final_layout().unwrap();
                        let u = uid.unwrap();
                        assert_eq!(Some(gi - party as usize), lay.inputs.uid);
                        let mut y = u.ys[party as usize];
                        if dev.bad_uid_share == Some(party as usize) {
                            y[15] ^= 1;
                        }
                        bytes_to_bits(&y)
                    }
                    _ => panic!("a private input in {step:?}"),
                },
                InputSource::Public => bytes_to_bits(&public.clone().unwrap()),
                InputSource::Shared => {
                    let s: Vec<u8> = salts.iter().flatten().copied().collect();
                    bytes_to_bits(&s)
                }
            };
            assert_eq!(bits.len(), g.width);
            input.extend(bits);
        }
        let out = spec.circuit().evaluate(&input).unwrap();
        let groups: Vec<Vec<bool>> = (0..spec.outputs().len())
            .map(|k| out[spec.output_range(k)].to_vec())
            .collect();
        if *step == Step::Final {
            let lay = p.final_layout().unwrap();
            return Outcome {
                result: read_final(req, &plan, lay, &groups[0]).map_err(|e| e.to_string()),
                and_gates: ands,
            };
        }
        outputs.push(groups);
    }
    panic!("no final execution")
}

/// A GET request as Tessera sends it.
pub fn get(target: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nCookie: s=secret\r\nAccept: application/json\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// An HTTP response with Content-Length.
pub fn ok_json(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An HTTP response with chunked framing, chunks of `n` bytes.
pub fn chunked_json(body: &str, n: usize) -> Vec<u8> {
    let mut out =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for c in body.as_bytes().chunks(n) {
        out.extend(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend(c);
        out.extend(b"\r\n");
    }
    out.extend(b"0\r\n\r\n");
    out
}

/// Plans `sel` as an honest client would.
pub fn plan_for(sel: &Selection, request: &[u8], response: &[u8]) -> ClientPlan {
    plan(sel, request, response, &mut rand::thread_rng()).unwrap()
}

/// Plans and runs honestly.
pub fn honest(
    sel: &Selection,
    response: &[u8],
    rec: usize,
    uid: Option<&Uid>,
) -> (ClientPlan, Outcome) {
    let request = get("/api/me", "provider.test");
    let p = plan_for(sel, &request, response);
    let o = run_request(
        &p.request,
        response,
        rec,
        &request,
        &p.salts,
        uid,
        Deviation::default(),
    );
    (p, o)
}

/// UID shares for a committee of node ids `xs`, threshold 2, from a fresh key generation.
pub fn uid_shares(xs: [u16; 3]) -> ([uid_prf::shamir::Share; 3], Uid) {
    use uid_prf::shamir::{keygen_combine, keygen_deal};
    let mut rng = rand::thread_rng();
    let dealt: Vec<_> = xs
        .iter()
        .map(|_| keygen_deal(&xs, 2, &mut rng).unwrap())
        .collect();
    let shares = [0, 1, 2].map(|i| {
        let mine: Vec<_> = dealt.iter().map(|d| d[i].clone()).collect();
        keygen_combine(xs[i], &mine).unwrap()
    });
    let ys = [0, 1, 2].map(|i| shares[i].y.to_bytes());
    (shares, Uid { xs, t: 2, ys })
}
