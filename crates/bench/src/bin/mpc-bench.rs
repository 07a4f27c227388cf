//! `mpc-bench`: runs the three parties in one process over the in-memory transport, checks
//! every output against plaintext evaluation, and prints one JSON line.
//!
//! `--circuit aes|sha256` runs `--count` executions of that circuit (all preprocessed before
//! any input exists, then evaluated online); `--circuit and-chain` runs one circuit of
//! `--count` dependent AND gates.
//!
//! Public inputs: `--circuit aes-public` encrypts a block every party knows (an
//! [`InputSource::Public`] group) under garbler 0's key; `--circuit aes-two-copies` does the
//! same the way it was done before public inputs existed: the block fed by garbler 0 and by
//! garbler 1, and their XOR output so that a lying garbler shows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use mpc::circuit::{self, Builder, Circuit};
use mpc::session::{Session, WorkTimings};
use mpc::transport::{memory_network, Transport};
use mpc::{ExecSpec, GroupOutput, InputGroup, InputSource, Inputs, OutputGroup, OutputTo, Party};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Which {
    Aes,
    AesPublic,
    AesTwoCopies,
    Sha256,
    AndChain,
    Ectf,
    Ghash,
}

/// Three-party garbled-circuit benchmark (MRZ15, in-memory transport).
#[derive(Parser, Debug)]
struct Args {
    /// Circuit to run.
    #[arg(long, value_enum)]
    circuit: Which,
    /// Executions (aes, sha256) or AND gates (and-chain).
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// GHASH blocks (ghash only): this many powers of H are computed.
    #[arg(long, default_value_t = 256)]
    blocks: usize,
    /// Seed for the benchmark's inputs (the protocol's own randomness is always fresh).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// `count` dependent AND gates over 128 inputs (64 from each garbler):
/// `v[i] = (v[i-1] ∧ v[i-2]) ⊕ v[i-128]`; outputs are the last 128 wires.
fn and_chain(count: usize) -> Result<Circuit, circuit::CircuitError> {
    let mut b = Builder::new();
    let mut v = b.inputs(128);
    for _ in 0..count {
        let n = v.len();
        let a = b.and(v[n - 1], v[n - 2]);
        let x = b.xor(a, v[n - 128]);
        v.push(x);
    }
    let outs = v[v.len() - 128..].to_vec();
    b.finish(&outs)
}

fn group(width: usize, source: InputSource) -> InputGroup {
    InputGroup { width, source }
}

/// AES-128 of a block fed twice: inputs key, block (copy a), block (copy b); outputs the
/// ciphertext under copy a, then copy a ⊕ copy b (all zero when the copies agree).
fn aes_two_copies() -> Result<Circuit, circuit::CircuitError> {
    let mut b = Builder::new();
    let k = b.inputs(128);
    let pa = b.inputs(128);
    let pb = b.inputs(128);
    let mut outs = circuit::aes::aes128(&mut b, &k, &pa)?;
    outs.extend(b.xor_vec(&pa, &pb)?);
    b.finish(&outs)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    // Input groups that repeat an earlier group's value (the second copy of a public block).
    let mut copy_of: Vec<Option<usize>> = Vec::new();
    let (circuit, inputs, execs) = match args.circuit {
        Which::Ectf | Which::Ghash => {
            return arith::run(args.circuit, args.count, args.blocks, args.seed)
        }
        // Key from garbler 0, plaintext from the evaluator (XOR-shared to the garblers).
        Which::Aes => (
            circuit::aes::aes128_circuit(),
            vec![
                group(128, InputSource::Private(0)),
                group(128, InputSource::Private(2)),
            ],
            args.count,
        ),
        // Key from garbler 0, plaintext known to every party.
        Which::AesPublic => (
            circuit::aes::aes128_circuit(),
            vec![
                group(128, InputSource::Private(0)),
                group(128, InputSource::Public),
            ],
            args.count,
        ),
        // Key from garbler 0, plaintext from garbler 0 and again from garbler 1.
        Which::AesTwoCopies => {
            copy_of = vec![None, None, Some(1)];
            (
                aes_two_copies()?,
                vec![
                    group(128, InputSource::Private(0)),
                    group(128, InputSource::Private(0)),
                    group(128, InputSource::Private(1)),
                ],
                args.count,
            )
        }
        // Chaining state from garbler 0, message block from garbler 1.
        Which::Sha256 => (
            circuit::sha256::compression_circuit(),
            vec![
                group(256, InputSource::Private(0)),
                group(512, InputSource::Private(1)),
            ],
            args.count,
        ),
        Which::AndChain => (
            and_chain(args.count)?,
            vec![
                group(64, InputSource::Private(0)),
                group(64, InputSource::Private(1)),
            ],
            1,
        ),
    };
    let circuit = Arc::new(circuit);
    let spec = Arc::new(ExecSpec::new(
        circuit.clone(),
        inputs.clone(),
        vec![OutputGroup {
            width: circuit.num_outputs(),
            to: OutputTo::All,
        }],
    )?);

    // Inputs and expected outputs.
    let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
    let mut plain: Vec<Vec<Vec<bool>>> = Vec::new(); // exec → group → bits
    let mut expected = Vec::new();
    for _ in 0..execs {
        let mut groups: Vec<Vec<bool>> = Vec::new();
        for (gi, g) in inputs.iter().enumerate() {
            let v = match copy_of.get(gi).copied().flatten() {
                Some(src) => groups[src].clone(),
                None => (0..g.width).map(|_| rng.gen()).collect(),
            };
            groups.push(v);
        }
        expected.push(circuit.evaluate(&groups.concat())?);
        plain.push(groups);
    }
    let plain = Arc::new(plain);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let start = Instant::now();
    let results = rt.block_on(async {
        let mut handles = Vec::new();
        for t in memory_network() {
            let spec = spec.clone();
            let plain = plain.clone();
            let input_groups = inputs.clone();
            handles.push(tokio::spawn(async move {
                let id = t.id();
                let mut rng = ChaCha20Rng::from_entropy();
                let party = Party::new(id, &mut rng)?;
                let mut s = Session::new(party, t).with_timeout(Duration::from_secs(120));
                s.setup().await?;
                let ids: Vec<_> = (0..plain.len())
                    .map(|_| s.preprocess(spec.clone()))
                    .collect::<Result<_, _>>()?;
                s.flush().await?;
                let mut outs = Vec::new();
                for (e, groups) in ids.iter().zip(plain.iter()) {
                    let mut inp = Inputs::none();
                    for (gi, g) in input_groups.iter().enumerate() {
                        // Own private groups; public groups are supplied by every party.
                        if g.source == InputSource::Private(id) || g.source == InputSource::Public {
                            inp = inp.value(gi, groups[gi].clone());
                        }
                    }
                    outs.push(s.execute(*e, inp, &mut rng).await?);
                }
                let stats = s.transport().stats();
                anyhow::Ok((id, outs, s.timings(), stats))
            }));
        }
        let mut res = Vec::new();
        for h in handles {
            res.push(h.await.context("party task panicked")??);
        }
        anyhow::Ok(res)
    })?;
    let wall = start.elapsed();

    let mut outputs_ok = true;
    let mut bytes_total = 0u64;
    let mut g0 = WorkTimings::default();
    let mut ev = WorkTimings::default();
    for (id, outs, timings, stats) in &results {
        bytes_total += stats.total_sent();
        for (o, want) in outs.iter().zip(&expected) {
            outputs_ok &= matches!(&o[0], GroupOutput::Value(v) if v == want);
        }
        outputs_ok &= outs.len() == expected.len();
        match *id {
            0 => g0 = *timings,
            2 => ev = *timings,
            _ => {}
        }
    }
    let and_gates = circuit.and_count() * execs;
    let per_and = |d: Duration, n: usize| d.as_nanos() as f64 / n.max(1) as f64;
    let line = serde_json::json!({
        "circuit": args.circuit.to_possible_value().map(|v| v.get_name().to_string()),
        "count": args.count,
        "executions": execs,
        "and_gates": and_gates,
        "parties": 3,
        "wall_ms": wall.as_secs_f64() * 1e3,
        "garble_ns_per_and": per_and(g0.garble, g0.garbled_ands),
        "eval_ns_per_and": per_and(ev.evaluate, ev.evaluated_ands),
        "digest_ns_per_and": per_and(g0.digest, g0.garbled_ands),
        "verify_ns_per_and": per_and(ev.verify, ev.evaluated_ands),
        "bytes_total": bytes_total,
        "bytes_per_and": bytes_total as f64 / and_gates.max(1) as f64,
        "outputs_ok": outputs_ok,
    });
    println!("{line}");
    if !outputs_ok {
        bail!("outputs did not match the plaintext evaluation");
    }
    Ok(())
}

/// The arithmetic benchmarks (ECtF, GHASH powers).
mod arith {
    use std::time::{Duration, Instant};

    use anyhow::{bail, Context};
    use mpc::field::{Field, Fp, Gf128};
    use mpc::ghash::{GhashKey, MAX_POWERS};
    use mpc::rss::Machine;
    use mpc::session::run_arith;
    use mpc::transport::{memory_network, Transport};
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::elliptic_curve::Field as _;
    use p256::{ProjectivePoint, Scalar};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::Which;

    const TIMEOUT: Duration = Duration::from_secs(60);

    /// One run's measurements.
    struct Run {
        wall: Duration,
        bytes: u64,
        rounds: u32,
        mults: u64,
        ok: bool,
    }

    async fn ectf_once(rng: &mut ChaCha20Rng) -> anyhow::Result<Run> {
        let pts =
            [0; 3].map(|_| (ProjectivePoint::GENERATOR * Scalar::random(&mut *rng)).to_affine());
        let sum = (ProjectivePoint::from(pts[0]) + pts[1] + pts[2]).to_affine();
        let want: [u8; 32] = (*sum.to_encoded_point(false).x().context("sum at infinity")?).into();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for mut t in memory_network() {
            let p = pts[t.id() as usize];
            tasks.push(tokio::spawn(async move {
                let id = t.id();
                let mut rng = ChaCha20Rng::from_entropy();
                let mut m = mpc::ectf::ectf_machine(id, &p, &mut rng)?;
                let out = run_arith(&mut t, &mut m, TIMEOUT).await?;
                let share = out.map_err(|e| anyhow::anyhow!("{e}"))?.value();
                anyhow::Ok((share, t.stats().total_sent(), m.rounds(), m.mult_count()))
            }));
        }
        let mut sum = Fp::ZERO;
        let (mut bytes, mut rounds, mut mults) = (0, 0, 0);
        for h in tasks {
            let (s, b, r, m) = h.await.context("party task panicked")??;
            sum += s;
            bytes += b;
            rounds = r;
            mults += m;
        }
        Ok(Run {
            wall: start.elapsed(),
            bytes,
            rounds,
            mults,
            ok: sum.to_be_bytes() == want,
        })
    }

    async fn ghash_once(blocks: usize, rng: &mut ChaCha20Rng) -> anyhow::Result<Run> {
        let h = Gf128::random(&mut *rng);
        let s0 = Gf128::random(&mut *rng);
        let s1 = Gf128::random(&mut *rng);
        let shares = [s0, s1, h - s0 - s1];
        let data: Vec<[u8; 16]> = (0..blocks).map(|_| rng.gen()).collect();
        let want = data
            .iter()
            .fold(Gf128::ZERO, |acc, x| (acc + Gf128::from_block(*x)) * h);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for mut t in memory_network() {
            let hs = shares[t.id() as usize].to_block();
            let data = data.clone();
            tasks.push(tokio::spawn(async move {
                let id = t.id();
                let mut rng = ChaCha20Rng::from_entropy();
                let mut m = Machine::new(id, GhashKey::new(id, hs, data.len())?, &mut rng)?;
                let powers = run_arith(&mut t, &mut m, TIMEOUT).await?;
                let g = powers.ghash_share(&data)?;
                anyhow::Ok((g, t.stats().total_sent(), m.rounds(), m.mult_count()))
            }));
        }
        let mut got = Gf128::ZERO;
        let (mut bytes, mut rounds, mut mults) = (0, 0, 0);
        for h in tasks {
            let (g, b, r, m) = h.await.context("party task panicked")??;
            got += Gf128::from_block(g);
            bytes += b;
            rounds = r;
            mults += m;
        }
        Ok(Run {
            wall: start.elapsed(),
            bytes,
            rounds,
            mults,
            ok: got == want,
        })
    }

    pub fn run(which: Which, count: usize, blocks: usize, seed: u64) -> anyhow::Result<()> {
        if matches!(which, Which::Ghash) && !(1..=MAX_POWERS).contains(&blocks) {
            bail!("--blocks must be between 1 and {MAX_POWERS}");
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut runs = Vec::new();
        for _ in 0..count {
            runs.push(rt.block_on(async {
                match which {
                    Which::Ectf => ectf_once(&mut rng).await,
                    _ => ghash_once(blocks, &mut rng).await,
                }
            })?);
        }
        let ok = runs.iter().all(|r| r.ok);
        let mut walls: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64() * 1e3).collect();
        walls.sort_by(f64::total_cmp);
        let median = walls[walls.len() / 2];
        let last = &runs[runs.len() - 1];
        let mut line = serde_json::json!({
            "circuit": match which { Which::Ectf => "ectf", _ => "ghash" },
            "count": count,
            "parties": 3,
            "wall_ms": median,
            "wall_ms_min": walls[0],
            "wall_ms_max": walls[walls.len() - 1],
            "bytes_total": last.bytes,
            "rounds": last.rounds,
            "mults": last.mults,
            "outputs_ok": ok,
        });
        if matches!(which, Which::Ghash) {
            line["blocks"] = blocks.into();
            line["powers"] = blocks.into();
        }
        println!("{line}");
        if !ok {
            bail!("outputs did not match plaintext arithmetic");
        }
        Ok(())
    }
}
