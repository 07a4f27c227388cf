//! The MRZ15 protocol driven by hand, in one thread: honest runs of every input source and
//! output destination checked against plaintext evaluation, chaining and preprocessing, and
//! adversarial runs where one party deviates — each must end in a typed abort at every
//! honest party, never a wrong output and never a panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]

use std::collections::VecDeque;
use std::sync::Arc;

mod common;
use common::{aes_ref, aes_spec};
use mpc::circuit::{self, bits_to_bytes, bytes_to_bits, Builder};
use mpc::client::{ClientError, ClientPads};
use mpc::msg::{AbortCode, Msg};
use mpc::{
    Abort, Error, ExecSpec, GroupOutput, InputGroup, InputSource, Inputs, OutputGroup, OutputTo,
    Party, PartyId,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// What the network does with one message.
enum Action {
    Deliver(Vec<u8>),
    Twice(Vec<u8>),
}

type Tamper = Box<dyn FnMut(PartyId, PartyId, &Msg, Vec<u8>) -> Action>;

struct Net {
    parties: Vec<Party>,
    queue: VecDeque<(PartyId, PartyId, Msg)>,
    tamper: Tamper,
    /// First error each party saw.
    errors: [Option<Error>; 3],
    rng: ChaCha20Rng,
}

impl Net {
    fn new(seed: u64) -> Net {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let parties = (0..3).map(|i| Party::new(i, &mut rng).unwrap()).collect();
        Net {
            parties,
            queue: VecDeque::new(),
            tamper: Box::new(|_, _, _, b| Action::Deliver(b)),
            errors: [None, None, None],
            rng,
        }
    }

    fn tamper(
        mut self,
        f: impl FnMut(PartyId, PartyId, &Msg, Vec<u8>) -> Action + 'static,
    ) -> Self {
        self.tamper = Box::new(f);
        self
    }

    fn note(&mut self, p: usize, r: Result<(), Error>) {
        if let Err(e) = r {
            if self.errors[p].is_none() {
                self.errors[p] = Some(e);
            }
        }
    }

    /// Runs work and delivers messages until nothing moves.
    fn run(&mut self) {
        loop {
            for p in 0..3 {
                loop {
                    match self.parties[p].poll_work() {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            self.note(p, Err(e));
                            break;
                        }
                    }
                }
                while let Some((to, m)) = self.parties[p].poll_transmit() {
                    self.queue.push_back((p as PartyId, to, m));
                }
            }
            let Some((from, to, m)) = self.queue.pop_front() else {
                return;
            };
            let bytes = m.encode();
            let deliveries = match (self.tamper)(from, to, &m, bytes) {
                Action::Deliver(b) => vec![b],
                Action::Twice(b) => vec![b.clone(), b],
            };
            for b in deliveries {
                let r = self.parties[to as usize].handle(from, &b);
                self.note(to as usize, r);
            }
        }
    }

    fn preprocess(&mut self, spec: &Arc<ExecSpec>) -> u32 {
        let ids: Vec<u32> = self
            .parties
            .iter_mut()
            .map(|p| p.preprocess(spec.clone()).unwrap())
            .collect();
        assert!(ids.iter().all(|&i| i == ids[0]));
        ids[0]
    }

    fn start(&mut self, exec: u32, inputs: [Inputs; 3]) {
        for (p, i) in inputs.into_iter().enumerate() {
            let r = self.parties[p].start(exec, i, &mut self.rng);
            self.note(p, r);
        }
    }

    fn outputs(&self, exec: u32) -> Vec<Option<Vec<GroupOutput>>> {
        self.parties
            .iter()
            .map(|p| p.output(exec).map(|o| o.to_vec()))
            .collect()
    }

    fn abort_of(&self, p: usize) -> Option<&Abort> {
        self.parties[p].aborted()
    }
}

fn bits(rng: &mut impl Rng, n: usize) -> Vec<bool> {
    (0..n).map(|_| rng.gen()).collect()
}

fn value(o: &GroupOutput) -> Vec<bool> {
    match o {
        GroupOutput::Value(v) => v.clone(),
        other => panic!("expected a value, got {other:?}"),
    }
}

fn aes_inputs(key: &[u8], pt: &[u8]) -> [Inputs; 3] {
    [
        Inputs::none().value(0, bytes_to_bits(key)),
        Inputs::none(),
        Inputs::none().value(1, bytes_to_bits(pt)),
    ]
}

#[test]
fn aes_all_parties_learn_the_ciphertext() {
    let mut net = Net::new(1);
    let spec = aes_spec();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let mut cases = Vec::new();
    for _ in 0..4 {
        let key: [u8; 16] = rng.gen();
        let pt: [u8; 16] = rng.gen();
        let e = net.preprocess(&spec);
        cases.push((e, key, pt));
    }
    assert!(net.parties.iter().all(|p| !p.preprocessed()));
    // Preprocessing happens before any input exists.
    net.run();
    assert!(
        net.parties.iter().all(Party::preprocessed),
        "every party reports its input-independent work done"
    );
    // A new execution is work to do again.
    let extra = net.preprocess(&spec);
    assert!(net.parties.iter().all(|p| !p.preprocessed()));
    net.run();
    assert!(net.parties.iter().all(Party::preprocessed));
    let (key, pt) = (rng.gen::<[u8; 16]>(), rng.gen::<[u8; 16]>());
    cases.push((extra, key, pt));
    for (e, key, pt) in &cases {
        net.start(*e, aes_inputs(key, pt));
    }
    net.run();
    for (e, key, pt) in cases {
        let want = aes_ref(&key, &pt);
        for (p, out) in net.outputs(e).into_iter().enumerate() {
            let out = out.unwrap_or_else(|| panic!("party {p} has no output"));
            assert_eq!(bits_to_bytes(&value(&out[0])), want, "party {p}");
        }
    }
    assert!(net.errors.iter().all(Option::is_none));
    // Completed executions with no kept output release every label they held.
    for (p, party) in net.parties.iter().enumerate() {
        assert_eq!(party.held_labels(), 0, "party {p}");
    }
}

/// An execution registered and never started blocks every later one (the evaluator goes in
/// order), unless every party skips it: then later executions run, before or after its
/// tables were garbled and shipped, and the skipped one can no longer be started.
#[test]
fn skipped_executions_are_not_waited_for() {
    let spec = aes_spec();
    for garble_first in [false, true] {
        let mut net = Net::new(7);
        let skipped = net.preprocess(&spec);
        let used = net.preprocess(&spec);
        if garble_first {
            net.run();
            assert!(net.parties.iter().all(Party::preprocessed));
        }
        let (key, pt) = ([3u8; 16], [5u8; 16]);
        net.start(used, aes_inputs(&key, &pt));
        net.run();
        assert!(
            net.outputs(used).iter().all(Option::is_none),
            "the evaluator waits for the earlier execution"
        );
        for p in &mut net.parties {
            p.skip(skipped).unwrap();
        }
        net.run();
        for (p, out) in net.outputs(used).into_iter().enumerate() {
            let out = out.unwrap_or_else(|| panic!("party {p} has no output"));
            assert_eq!(bits_to_bytes(&value(&out[0])), aes_ref(&key, &pt));
        }
        assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);
        assert!(net.parties.iter().all(Party::preprocessed));
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let [first, ..] = aes_inputs(&key, &pt);
        let e = net.parties[0].start(skipped, first, &mut rng).unwrap_err();
        assert!(e.to_string().contains("skipped"), "{e}");
        // A started execution cannot be skipped.
        assert!(net.parties[1].skip(used).is_err());
    }
}

#[test]
fn sha256_compression_with_inputs_from_both_garblers() {
    let mut net = Net::new(2);
    let spec = Arc::new(
        ExecSpec::new(
            Arc::new(circuit::sha256::compression_circuit()),
            vec![
                InputGroup {
                    width: 256,
                    source: InputSource::Private(0),
                },
                InputGroup {
                    width: 512,
                    source: InputSource::Private(1),
                },
            ],
            vec![OutputGroup {
                width: 256,
                to: OutputTo::All,
            }],
        )
        .unwrap(),
    );
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let state = bits(&mut rng, 256);
    let block = bits(&mut rng, 512);
    let mut plain = state.clone();
    plain.extend(&block);
    let want = spec.circuit().evaluate(&plain).unwrap();
    let e = net.preprocess(&spec);
    net.start(
        e,
        [
            Inputs::none().value(0, state),
            Inputs::none().value(1, block),
            Inputs::none(),
        ],
    );
    net.run();
    for out in net.outputs(e) {
        assert_eq!(value(&out.unwrap()[0]), want);
    }
}

/// A small circuit with every input source and output destination: inputs a (garbler 0),
/// b (garbler 1), c (evaluator), s (XOR-shared); outputs to each single party, to all, as
/// shares, to a client, and kept.
fn mixed_circuit() -> Arc<circuit::Circuit> {
    let mut b = Builder::new();
    let x = b.inputs(8 * 4);
    let (a, rest) = x.split_at(8);
    let (bb, rest) = rest.split_at(8);
    let (c, s) = rest.split_at(8);
    let mut outs = Vec::new();
    // a∧b, b∧c, c∧s, a⊕s, a∧c, b∧s
    for (p, q, and) in [
        (a, bb, true),
        (bb, c, true),
        (c, s, true),
        (a, s, false),
        (a, c, true),
        (bb, s, true),
        (a, bb, false),
    ] {
        for i in 0..8 {
            outs.push(if and {
                b.and(p[i], q[i])
            } else {
                b.xor(p[i], q[i])
            });
        }
    }
    Arc::new(b.finish(&outs).unwrap())
}

fn mixed_spec() -> Arc<ExecSpec> {
    let inputs = vec![
        InputGroup {
            width: 8,
            source: InputSource::Private(0),
        },
        InputGroup {
            width: 8,
            source: InputSource::Private(1),
        },
        InputGroup {
            width: 8,
            source: InputSource::Private(2),
        },
        InputGroup {
            width: 8,
            source: InputSource::Shared,
        },
    ];
    let outputs = [
        OutputTo::Party(0),
        OutputTo::Party(1),
        OutputTo::Party(2),
        OutputTo::All,
        OutputTo::Shares,
        OutputTo::Client,
        OutputTo::Keep,
    ]
    .into_iter()
    .map(|to| OutputGroup { width: 8, to })
    .collect();
    Arc::new(ExecSpec::new(mixed_circuit(), inputs, outputs).unwrap())
}

struct Mixed {
    a: Vec<bool>,
    b: Vec<bool>,
    c: Vec<bool>,
    s: [Vec<bool>; 3],
    pads: ClientPads,
}

impl Mixed {
    fn new(rng: &mut ChaCha20Rng) -> Mixed {
        Mixed {
            a: bits(rng, 8),
            b: bits(rng, 8),
            c: bits(rng, 8),
            s: [bits(rng, 8), bits(rng, 8), bits(rng, 8)],
            pads: ClientPads::random(8, rng),
        }
    }
    fn inputs(&self) -> [Inputs; 3] {
        [
            Inputs::none()
                .value(0, self.a.clone())
                .value(3, self.s[0].clone())
                .client_pad(5, self.pads.for_node(0)),
            Inputs::none()
                .value(1, self.b.clone())
                .value(3, self.s[1].clone())
                .client_pad(5, self.pads.for_node(1)),
            Inputs::none()
                .value(2, self.c.clone())
                .value(3, self.s[2].clone())
                .client_pad(5, self.pads.for_node(2)),
        ]
    }
    fn expected(&self) -> Vec<Vec<bool>> {
        let s: Vec<bool> = (0..8)
            .map(|i| self.s[0][i] ^ self.s[1][i] ^ self.s[2][i])
            .collect();
        let mut x = self.a.clone();
        x.extend(&self.b);
        x.extend(&self.c);
        x.extend(&s);
        mixed_spec()
            .circuit()
            .evaluate(&x)
            .unwrap()
            .chunks(8)
            .map(<[bool]>::to_vec)
            .collect()
    }
}

#[test]
fn every_input_source_and_output_destination() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for round in 0..5 {
        let mut net = Net::new(100 + round);
        let spec = mixed_spec();
        let m = Mixed::new(&mut rng);
        let e = net.preprocess(&spec);
        net.start(e, m.inputs());
        net.run();
        assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);
        let want = m.expected();
        let out: Vec<Vec<GroupOutput>> = net.outputs(e).into_iter().map(Option::unwrap).collect();
        for p in 0..3 {
            // Single-party outputs reach only their party.
            for q in 0..3 {
                if p == q {
                    assert_eq!(value(&out[p][q]), want[q]);
                } else {
                    assert_eq!(out[p][q], GroupOutput::Hidden);
                }
            }
            assert_eq!(value(&out[p][3]), want[3]);
            assert_eq!(
                out[p][6],
                GroupOutput::Hidden,
                "kept labels are never revealed"
            );
        }
        // Shares XOR to the value.
        let shares: Vec<Vec<bool>> = (0..3)
            .map(|p| match &out[p][4] {
                GroupOutput::Share(s) => s.clone(),
                o => panic!("{o:?}"),
            })
            .collect();
        let joined: Vec<bool> = (0..8)
            .map(|i| shares[0][i] ^ shares[1][i] ^ shares[2][i])
            .collect();
        assert_eq!(joined, want[4]);
        // The client unmasks; no node's masked report equals the value except by chance.
        let reports: Vec<(PartyId, Vec<bool>)> = (0..3)
            .map(|p| match &out[p][5] {
                GroupOutput::Masked(v) => (p as PartyId, v.clone()),
                o => panic!("{o:?}"),
            })
            .collect();
        assert_eq!(m.pads.unmask(&reports).unwrap(), want[5]);
    }
}

#[test]
fn client_rejects_a_lying_node() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let pads = ClientPads::random(16, &mut rng);
    let m = bits(&mut rng, 16);
    let mut reports: Vec<(PartyId, Vec<bool>)> = (0..3).map(|p| (p, m.clone())).collect();
    reports[1].1[3] ^= true;
    assert!(matches!(
        pads.unmask(&reports),
        Err(ClientError::Disagree { .. })
    ));
    reports[1].1[3] ^= true;
    assert_eq!(pads.unmask(&reports[..2]), Err(ClientError::Missing(2)));
    reports[2].1.pop();
    assert!(matches!(
        pads.unmask(&reports),
        Err(ClientError::Width { party: 2, .. })
    ));
}

/// Values flow from one execution into the next without being revealed: AES key schedule
/// output kept as labels and fed to AES-with-expanded-key; and an output split into XOR
/// shares that the parties feed back as a shared input.
#[test]
fn chaining_kept_labels_and_shares() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let key: [u8; 16] = rng.gen();
    let pt: [u8; 16] = rng.gen();
    // Execution 0: key (shared) → expanded key, kept; also the expanded key as XOR shares.
    let ks = {
        let mut b = Builder::new();
        let k = b.inputs(128);
        let rk = circuit::aes::key_schedule(&mut b, &k).unwrap();
        let mut outs = rk.clone();
        outs.extend(rk);
        Arc::new(b.finish(&outs).unwrap())
    };
    let ks_spec = Arc::new(
        ExecSpec::new(
            ks,
            vec![InputGroup {
                width: 128,
                source: InputSource::Shared,
            }],
            vec![
                OutputGroup {
                    width: 1408,
                    to: OutputTo::Keep,
                },
                OutputGroup {
                    width: 1408,
                    to: OutputTo::Shares,
                },
            ],
        )
        .unwrap(),
    );
    let enc = Arc::new(circuit::aes::aes128_expanded_circuit());
    // Execution 1: encrypt with the kept expanded key.
    let kept_spec = Arc::new(
        ExecSpec::new(
            enc.clone(),
            vec![
                InputGroup {
                    width: 1408,
                    source: InputSource::Kept { exec: 0, group: 0 },
                },
                InputGroup {
                    width: 128,
                    source: InputSource::Private(1),
                },
            ],
            vec![OutputGroup {
                width: 128,
                to: OutputTo::All,
            }],
        )
        .unwrap(),
    );
    // Execution 2: encrypt with the expanded key re-entered from the XOR shares.
    let shared_spec = Arc::new(
        ExecSpec::new(
            enc,
            vec![
                InputGroup {
                    width: 1408,
                    source: InputSource::Shared,
                },
                InputGroup {
                    width: 128,
                    source: InputSource::Private(2),
                },
            ],
            vec![OutputGroup {
                width: 128,
                to: OutputTo::Party(2),
            }],
        )
        .unwrap(),
    );
    let mut net = Net::new(7);
    let e0 = net.preprocess(&ks_spec);
    let e1 = net.preprocess(&kept_spec);
    let e2 = net.preprocess(&shared_spec);
    net.run();
    let kb = bytes_to_bits(&key);
    let k1 = bits(&mut rng, 128);
    let k2 = bits(&mut rng, 128);
    let k0: Vec<bool> = (0..128).map(|i| kb[i] ^ k1[i] ^ k2[i]).collect();
    net.start(
        e0,
        [
            Inputs::none().value(0, k0),
            Inputs::none().value(0, k1),
            Inputs::none().value(0, k2),
        ],
    );
    net.run();
    let shares: Vec<Vec<bool>> = net
        .outputs(e0)
        .into_iter()
        .map(|o| o.unwrap()[1].bits().unwrap().to_vec())
        .collect();
    let expanded: Vec<bool> = (0..1408)
        .map(|i| shares[0][i] ^ shares[1][i] ^ shares[2][i])
        .collect();
    assert_eq!(
        bits_to_bytes(&expanded),
        circuit::aes::expand_key(&key).to_vec()
    );
    net.start(
        e1,
        [
            Inputs::none(),
            Inputs::none().value(1, bytes_to_bits(&pt)),
            Inputs::none(),
        ],
    );
    net.start(
        e2,
        [
            Inputs::none().value(0, shares[0].clone()),
            Inputs::none().value(0, shares[1].clone()),
            Inputs::none()
                .value(0, shares[2].clone())
                .value(1, bytes_to_bits(&pt)),
        ],
    );
    net.run();
    assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);
    let want = aes_ref(&key, &pt);
    for out in net.outputs(e1) {
        assert_eq!(bits_to_bytes(&value(&out.unwrap()[0])), want);
    }
    let out2 = net.outputs(e2);
    assert_eq!(bits_to_bytes(&value(&out2[2].as_ref().unwrap()[0])), want);
    assert_eq!(out2[0].as_ref().unwrap()[0], GroupOutput::Hidden);
}

#[test]
fn kept_input_must_name_an_earlier_kept_group() {
    let mut net = Net::new(8);
    let spec = aes_spec();
    net.preprocess(&spec);
    let bad = Arc::new(
        ExecSpec::new(
            Arc::new(circuit::aes::aes128_circuit()),
            vec![
                InputGroup {
                    width: 128,
                    source: InputSource::Kept { exec: 0, group: 0 },
                },
                InputGroup {
                    width: 128,
                    source: InputSource::Private(0),
                },
            ],
            vec![OutputGroup {
                width: 128,
                to: OutputTo::All,
            }],
        )
        .unwrap(),
    );
    assert!(matches!(
        net.parties[0].preprocess(bad),
        Err(Error::Spec(_))
    ));
}

/// Parts of one kept group feed later executions, in any order and overlapping; a part
/// outside the group is refused when the execution is registered.
#[test]
fn kept_parts_feed_later_executions() {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    // Execution 0 keeps 64 bits from party 2 (XOR-shared to the garblers) untouched.
    let mut b = Builder::new();
    let x = b.inputs(64);
    let id = Arc::new(b.finish(&x).unwrap());
    let keep = Arc::new(
        ExecSpec::new(
            id,
            vec![InputGroup {
                width: 64,
                source: InputSource::Private(2),
            }],
            vec![OutputGroup {
                width: 64,
                to: OutputTo::Keep,
            }],
        )
        .unwrap(),
    );
    // Execution 1 reveals bits 40..56 then 8..24 of it (XORed together and as they are).
    let mut b = Builder::new();
    let hi = b.inputs(16);
    let lo = b.inputs(16);
    let mut outs = b.xor_vec(&hi, &lo).unwrap();
    outs.extend(&lo);
    let c = Arc::new(b.finish(&outs).unwrap());
    let part = |offset| InputGroup {
        width: 16,
        source: InputSource::KeptPart {
            exec: 0,
            group: 0,
            offset,
        },
    };
    let reveal = Arc::new(
        ExecSpec::new(
            c.clone(),
            vec![part(40), part(8)],
            vec![OutputGroup {
                width: 32,
                to: OutputTo::All,
            }],
        )
        .unwrap(),
    );
    let mut net = Net::new(22);
    let e0 = net.preprocess(&keep);
    let e1 = net.preprocess(&reveal);
    net.run();
    let v = bits(&mut rng, 64);
    net.start(
        e0,
        [
            Inputs::none(),
            Inputs::none(),
            Inputs::none().value(0, v.clone()),
        ],
    );
    net.start(e1, [Inputs::none(), Inputs::none(), Inputs::none()]);
    net.run();
    assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);
    let want: Vec<bool> = (0..16)
        .map(|i| v[40 + i] ^ v[8 + i])
        .chain(v[8..24].iter().copied())
        .collect();
    for out in net.outputs(e1) {
        assert_eq!(value(&out.unwrap()[0]), want);
    }
    // A part reaching past the group's end is refused.
    let outside = Arc::new(
        ExecSpec::new(
            c,
            vec![part(0), part(49)],
            vec![OutputGroup {
                width: 32,
                to: OutputTo::All,
            }],
        )
        .unwrap(),
    );
    assert!(matches!(
        net.parties[0].preprocess(outside),
        Err(Error::Spec(_))
    ));
}

#[test]
fn wrong_inputs_are_usage_errors_not_aborts() {
    let mut net = Net::new(9);
    let e = net.preprocess(&aes_spec());
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let p0 = &mut net.parties[0];
    assert!(matches!(
        p0.start(e, Inputs::none(), &mut rng),
        Err(Error::Usage(_))
    ));
    assert!(matches!(
        p0.start(e, Inputs::none().value(0, vec![true; 5]), &mut rng),
        Err(Error::Usage(_))
    ));
    assert!(matches!(
        p0.start(
            e,
            Inputs::none().value(0, vec![true; 128]).value(1, vec![]),
            &mut rng
        ),
        Err(Error::Usage(_))
    ));
    assert!(p0.aborted().is_none());
    assert!(matches!(
        p0.start(7, Inputs::none(), &mut rng),
        Err(Error::Usage(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Adversarial runs. Each installs a tamper function that plays one corrupt party and checks
// that both honest parties end aborted and that no honest party holds a wrong output.

fn run_aes_attack(
    corrupt: PartyId,
    tamper: impl FnMut(PartyId, PartyId, &Msg, Vec<u8>) -> Action + 'static,
) -> Net {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let key: [u8; 16] = rng.gen();
    let pt: [u8; 16] = rng.gen();
    let mut net = Net::new(12).tamper(tamper);
    let e = net.preprocess(&aes_spec());
    net.run();
    net.start(e, aes_inputs(&key, &pt));
    net.run();
    let want = bytes_to_bits(&aes_ref(&key, &pt));
    for p in 0..3usize {
        if p as PartyId == corrupt {
            continue;
        }
        assert!(
            net.abort_of(p).is_some(),
            "honest party {p} did not abort (errors: {:?})",
            net.errors
        );
        // Whatever an honest party output before the abort must be the true value.
        if let Some(out) = net.parties[p].output(e) {
            assert_eq!(
                value(&out[0]),
                want,
                "honest party {p} output a wrong value"
            );
        }
    }
    net
}

fn is_from(from: PartyId, kind: &'static str) -> impl Fn(PartyId, &Msg) -> bool {
    move |f, m| f == from && m.kind() == kind
}

#[test]
fn garbler_flips_a_table_bit() {
    for bit in [0usize, 1000, 7 * 8 + 3] {
        let net = run_aes_attack(0, move |from, _to, m, mut b| {
            if is_from(0, "Garbled")(from, m) {
                let n = b.len();
                b[n - 1 - bit / 8] ^= 1 << (bit % 8);
            }
            Action::Deliver(b)
        });
        assert!(matches!(
            net.abort_of(2),
            Some(Abort::TableMismatch {
                sender: 0,
                other: 1,
                ..
            })
        ));
        assert!(matches!(
            net.abort_of(1),
            Some(Abort::PeerAborted {
                party: 2,
                reason: AbortCode::TableMismatch
            })
        ));
    }
}

#[test]
fn garblers_tables_differ() {
    // Garbler 1 garbles with a different seed: its digest disagrees with garbler 0's tables.
    let net = run_aes_attack(1, |from, _to, m, b| {
        if let (1, Msg::GarbledDigest { exec, digest }) = (from, m) {
            let mut d = *digest;
            d[0] ^= 0x80;
            return Action::Deliver(
                Msg::GarbledDigest {
                    exec: *exec,
                    digest: d,
                }
                .encode(),
            );
        }
        Action::Deliver(b)
    });
    assert!(matches!(net.abort_of(2), Some(Abort::TableMismatch { .. })));
    assert!(net.abort_of(0).is_some());
}

#[test]
fn garbler_sends_an_invalid_input_label() {
    let net = run_aes_attack(0, |from, _to, m, b| {
        if let (0, Msg::InputLabels { exec, entries }) = (from, m) {
            let mut e = entries.clone();
            e[32 * 5] ^= 0x10; // not a label of that wire
            return Action::Deliver(
                Msg::InputLabels {
                    exec: *exec,
                    entries: e,
                }
                .encode(),
            );
        }
        Action::Deliver(b)
    });
    assert!(matches!(
        net.abort_of(2),
        Some(Abort::InvalidInputLabel { party: 0, .. })
    ));
    assert!(net.abort_of(1).is_some());
}

/// The most dangerous input attack: garbler 1 holds a share of the evaluator's plaintext
/// and sends the *valid* label of the other value, which would flip the evaluator's input.
/// The value-ordered commitments catch it.
#[test]
fn garbler_sends_the_other_valid_label_of_an_evaluator_share() {
    // Garbler 1 learns its share bits from the evaluator, then lies about them.
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let key: [u8; 16] = rng.gen();
    let pt: [u8; 16] = rng.gen();
    let mut net = Net::new(12).tamper(|from, to, m, b| {
        // Flip the share bit the evaluator sends to garbler 1, so garbler 1 (corrupt: it
        // "decides" its share is the other value) sends the other valid label.
        if let (2, 1, Msg::InputShares { exec, bits }) = (from, to, m) {
            let mut v = bits.to_bools();
            v[0] ^= true;
            return Action::Deliver(
                Msg::InputShares {
                    exec: *exec,
                    bits: mpc::msg::Bits::from_bools(&v),
                }
                .encode(),
            );
        }
        Action::Deliver(b)
    });
    let e = net.preprocess(&aes_spec());
    net.run();
    net.start(e, aes_inputs(&key, &pt));
    net.run();
    assert!(matches!(
        net.abort_of(2),
        Some(Abort::InvalidInputLabel { party: 1, .. })
    ));
    assert!(net.abort_of(0).is_some());
    assert!(net.parties[2].output(e).is_none());
}

#[test]
fn evaluator_reports_a_wrong_output() {
    let net = run_aes_attack(2, |from, to, m, b| {
        if let (2, 0, Msg::Reveal { exec, colours, tag }) = (from, to, m) {
            let mut c = colours.to_bools();
            c[17] ^= true;
            return Action::Deliver(
                Msg::Reveal {
                    exec: *exec,
                    colours: mpc::msg::Bits::from_bools(&c),
                    tag: *tag,
                }
                .encode(),
            );
        }
        Action::Deliver(b)
    });
    assert!(matches!(
        net.abort_of(0),
        Some(Abort::InvalidOutputLabel { party: 2, .. })
    ));
    // Garbler 1 got a correct reveal, accepted it, and then learned of the abort.
    assert!(matches!(
        net.abort_of(1),
        Some(Abort::PeerAborted { party: 0, .. })
    ));
}

#[test]
fn evaluator_reports_a_wrong_output_label() {
    let net = run_aes_attack(2, |from, _to, m, b| {
        if let (2, Msg::Reveal { exec, colours, tag }) = (from, m) {
            let mut t = *tag;
            t[31] ^= 1;
            return Action::Deliver(
                Msg::Reveal {
                    exec: *exec,
                    colours: colours.clone(),
                    tag: t,
                }
                .encode(),
            );
        }
        Action::Deliver(b)
    });
    assert!(matches!(
        net.abort_of(0),
        Some(Abort::InvalidOutputLabel { .. })
    ));
    assert!(matches!(
        net.abort_of(1),
        Some(Abort::InvalidOutputLabel { .. })
    ));
}

#[test]
fn truncated_messages_abort() {
    for kind in [
        "SeedCommit",
        "Garbled",
        "GarbledDigest",
        "InputShares",
        "InputLabels",
        "Reveal",
    ] {
        let sender_of = |k: &str| match k {
            "SeedCommit" => 0,
            "Garbled" => 0,
            "GarbledDigest" => 1,
            "InputShares" | "Reveal" => 2,
            _ => 0,
        };
        let corrupt = sender_of(kind);
        let net = run_aes_attack(corrupt, move |_from, _to, m, mut b| {
            if m.kind() == kind {
                b.truncate(b.len() - 1);
            }
            Action::Deliver(b)
        });
        for p in 0..3usize {
            if p as PartyId != corrupt {
                assert!(net.abort_of(p).is_some(), "{kind}: party {p}");
            }
        }
        assert!(
            net.errors
                .iter()
                .flatten()
                .any(|e| matches!(e, Error::Abort(Abort::Malformed { .. }))),
            "{kind}: {:?}",
            net.errors
        );
    }
}

#[test]
fn replayed_messages_abort() {
    for kind in [
        "SeedCommit",
        "SeedShare",
        "Garbled",
        "GarbledDigest",
        "InputShares",
        "InputLabels",
        "Reveal",
    ] {
        let mut net = run_aes_attack(9, move |_from, _to, m, b| {
            if m.kind() == kind {
                Action::Twice(b)
            } else {
                Action::Deliver(b)
            }
        });
        let n_unexpected = net
            .errors
            .iter()
            .flatten()
            .filter(|e| matches!(e, Error::Abort(Abort::Unexpected { .. })))
            .count();
        assert!(n_unexpected >= 1, "{kind}: {:?}", net.errors);
        net.errors = [None, None, None];
    }
}

#[test]
fn replay_of_an_earlier_executions_message_aborts() {
    // Record garbler 0's labels for execution 0 and inject them again during execution 1.
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let mut net = Net::new(14);
    let spec = aes_spec();
    let e0 = net.preprocess(&spec);
    let e1 = net.preprocess(&spec);
    net.run();
    let (k, p): ([u8; 16], [u8; 16]) = (rng.gen(), rng.gen());
    let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
    let s2 = seen.clone();
    net.tamper = Box::new(move |from, _to, m, b| {
        if from == 0 && m.kind() == "InputLabels" && s2.borrow().is_none() {
            *s2.borrow_mut() = Some(b.clone());
        }
        Action::Deliver(b)
    });
    net.start(e0, aes_inputs(&k, &p));
    net.run();
    assert!(net.errors.iter().all(Option::is_none));
    let old = seen.borrow().clone().unwrap();
    net.start(e1, aes_inputs(&k, &p));
    let r = net.parties[2].handle(0, &old);
    assert!(matches!(
        r,
        Err(Error::Abort(Abort::Unexpected { party: 0, .. }))
    ));
    net.run();
    assert!(net.abort_of(0).is_some() && net.abort_of(1).is_some());
}

#[test]
fn wrong_sender_is_unexpected() {
    let mut net = Net::new(15);
    let e = net.preprocess(&aes_spec());
    net.run();
    // The evaluator pretends to be a garbler shipping a digest.
    let fake = Msg::GarbledDigest {
        exec: e,
        digest: [0; 32],
    }
    .encode();
    let r = net.parties[0].handle(2, &fake);
    assert!(matches!(
        r,
        Err(Error::Abort(Abort::Unexpected { party: 2, .. }))
    ));
}

#[test]
fn seed_commitment_must_open_correctly() {
    let net = run_aes_attack(0, |from, _to, m, b| {
        if let (0, Msg::SeedOpen(s)) = (from, m) {
            let mut s = *s;
            s[0] ^= 1;
            return Action::Deliver(Msg::SeedOpen(s).encode());
        }
        Action::Deliver(b)
    });
    assert!(matches!(
        net.abort_of(1),
        Some(Abort::SeedCommitment { party: 0 })
    ));
    assert!(net.abort_of(2).is_some());
}

/// Random single-byte corruption of any message by any party never panics and never yields
/// a wrong output at an honest party.
#[test]
fn random_corruption_never_yields_a_wrong_output() {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    for _ in 0..40 {
        let target: usize = rng.gen_range(0..12);
        let byte: usize = rng.gen();
        let corrupt: PartyId = rng.gen_range(0..3);
        let mut count = 0usize;
        let mut net = Net::new(rng.gen()).tamper(move |from, _to, _m, mut b| {
            if from == corrupt {
                if count == target && !b.is_empty() {
                    let i = byte % b.len();
                    b[i] ^= 0x01;
                }
                count += 1;
            }
            Action::Deliver(b)
        });
        let key: [u8; 16] = rng.gen();
        let pt: [u8; 16] = rng.gen();
        let e = net.preprocess(&aes_spec());
        net.run();
        net.start(e, aes_inputs(&key, &pt));
        net.run();
        let want = bytes_to_bits(&aes_ref(&key, &pt));
        for p in 0..3 {
            if p as PartyId == corrupt {
                continue;
            }
            if let Some(out) = net.parties[p].output(e) {
                assert_eq!(value(&out[0]), want);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Public inputs: a value every party knows. Garbler 0 sends the active labels, garbler 1 a
// digest of them; no commitments, no second copy.

/// AES-128: key from garbler 0, plaintext public (every party supplies it), ciphertext to
/// everyone.
fn aes_public_spec() -> Arc<ExecSpec> {
    Arc::new(
        ExecSpec::new(
            Arc::new(circuit::aes::aes128_circuit()),
            vec![
                InputGroup {
                    width: 128,
                    source: InputSource::Private(0),
                },
                InputGroup {
                    width: 128,
                    source: InputSource::Public,
                },
            ],
            vec![OutputGroup {
                width: 128,
                to: OutputTo::All,
            }],
        )
        .unwrap(),
    )
}

/// Inputs for [`aes_public_spec`]: the key at garbler 0, each party's copy of the plaintext.
fn aes_public_inputs(key: &[u8], pts: [&[u8]; 3]) -> [Inputs; 3] {
    [
        Inputs::none()
            .value(0, bytes_to_bits(key))
            .value(1, bytes_to_bits(pts[0])),
        Inputs::none().value(1, bytes_to_bits(pts[1])),
        Inputs::none().value(1, bytes_to_bits(pts[2])),
    ]
}

/// Counts messages of each kind by sender, without changing them.
type Seen = std::rc::Rc<std::cell::RefCell<Vec<(PartyId, PartyId, &'static str)>>>;

#[test]
fn aes_with_a_public_plaintext_matches_plaintext_evaluation() {
    let seen: Seen = Default::default();
    let log = seen.clone();
    let mut net = Net::new(31).tamper(move |from, to, m, b| {
        log.borrow_mut().push((from, to, m.kind()));
        Action::Deliver(b)
    });
    let spec = aes_public_spec();
    let mut rng = ChaCha20Rng::seed_from_u64(32);
    let mut cases = Vec::new();
    for _ in 0..3 {
        let key: [u8; 16] = rng.gen();
        let pt: [u8; 16] = rng.gen();
        cases.push((net.preprocess(&spec), key, pt));
    }
    // Garbling needs no public value: everything is preprocessed before any input exists.
    net.run();
    // The garblers start (and send their public labels and digest) before the evaluator.
    for (e, key, pt) in &cases {
        let [i0, i1, i2] = aes_public_inputs(key, [pt, pt, pt]);
        for (p, i) in [(0usize, i0), (1, i1)] {
            let r = net.parties[p].start(*e, i, &mut net.rng);
            net.note(p, r);
        }
        net.run();
        let r = net.parties[2].start(*e, i2, &mut net.rng);
        net.note(2, r);
    }
    net.run();
    assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);
    for (e, key, pt) in &cases {
        let want = aes_ref(key, pt);
        for (p, out) in net.outputs(*e).into_iter().enumerate() {
            let out = out.unwrap_or_else(|| panic!("party {p} has no output"));
            assert_eq!(bits_to_bytes(&value(&out[0])), want, "party {p}");
        }
    }
    // One label message from garbler 0 and one digest from garbler 1 per execution, both to
    // the evaluator.
    let seen = seen.borrow();
    let count = |k: &str| seen.iter().filter(|s| s.2 == k).count();
    assert_eq!(count("PublicLabels"), cases.len());
    assert_eq!(count("PublicDigest"), cases.len());
    assert!(seen.iter().all(|&(f, t, k)| match k {
        "PublicLabels" => (f, t) == (0, 2),
        "PublicDigest" => (f, t) == (1, 2),
        _ => true,
    }));
}

/// Executions 0 (keeps a value of party 2), 1 (a public group among every other source and
/// every output destination, keeping an output) and 2 (the kept output of 1 between two
/// public groups).
fn public_mixed_specs() -> [Arc<ExecSpec>; 3] {
    let g = |width, source| InputGroup { width, source };
    let mut b = Builder::new();
    let x = b.inputs(8);
    let keep = Arc::new(
        ExecSpec::new(
            Arc::new(b.finish(&x).unwrap()),
            vec![g(8, InputSource::Private(2))],
            vec![OutputGroup {
                width: 8,
                to: OutputTo::Keep,
            }],
        )
        .unwrap(),
    );
    // Inputs a (garbler 0), p (public), b (garbler 1), c (evaluator), s (shared), k (kept).
    let mut b = Builder::new();
    let x = b.inputs(8 * 6);
    let v: Vec<&[circuit::Bit]> = x.chunks(8).collect();
    let (a, p, bb, c, s, k) = (v[0], v[1], v[2], v[3], v[4], v[5]);
    let mut outs = Vec::new();
    for (q, and) in [
        (a, true),   // → garbler 0
        (bb, false), // → garbler 1
        (c, true),   // → evaluator
        (s, false),  // → all
        (k, true),   // → shares
        (a, false),  // → client
        (k, false),  // → kept
    ] {
        for i in 0..8 {
            outs.push(if and {
                b.and(q[i], p[i])
            } else {
                b.xor(q[i], p[i])
            });
        }
    }
    let mixed = Arc::new(
        ExecSpec::new(
            Arc::new(b.finish(&outs).unwrap()),
            vec![
                g(8, InputSource::Private(0)),
                g(8, InputSource::Public),
                g(8, InputSource::Private(1)),
                g(8, InputSource::Private(2)),
                g(8, InputSource::Shared),
                g(8, InputSource::Kept { exec: 0, group: 0 }),
            ],
            [
                OutputTo::Party(0),
                OutputTo::Party(1),
                OutputTo::Party(2),
                OutputTo::All,
                OutputTo::Shares,
                OutputTo::Client,
                OutputTo::Keep,
            ]
            .into_iter()
            .map(|to| OutputGroup { width: 8, to })
            .collect(),
        )
        .unwrap(),
    );
    // Inputs q1 (public), y (kept from execution 1), q2 (public): outputs y⊕q1, y∧q2.
    let mut b = Builder::new();
    let q1 = b.inputs(8);
    let y = b.inputs(8);
    let q2 = b.inputs(8);
    let mut outs = b.xor_vec(&y, &q1).unwrap();
    for i in 0..8 {
        outs.push(b.and(y[i], q2[i]));
    }
    let chained = Arc::new(
        ExecSpec::new(
            Arc::new(b.finish(&outs).unwrap()),
            vec![
                g(8, InputSource::Public),
                g(8, InputSource::Kept { exec: 1, group: 6 }),
                g(8, InputSource::Public),
            ],
            vec![OutputGroup {
                width: 16,
                to: OutputTo::All,
            }],
        )
        .unwrap(),
    );
    [keep, mixed, chained]
}

#[test]
fn public_input_mixed_with_every_source_and_chained() {
    let mut rng = ChaCha20Rng::seed_from_u64(33);
    for round in 0..4 {
        let [keep, mixed, chained] = public_mixed_specs();
        let mut net = Net::new(300 + round);
        let e0 = net.preprocess(&keep);
        let e1 = net.preprocess(&mixed);
        let e2 = net.preprocess(&chained);
        net.run();
        let (k, a, p, b, c) = (
            bits(&mut rng, 8),
            bits(&mut rng, 8),
            bits(&mut rng, 8),
            bits(&mut rng, 8),
            bits(&mut rng, 8),
        );
        let s = [bits(&mut rng, 8), bits(&mut rng, 8), bits(&mut rng, 8)];
        let (q1, q2) = (bits(&mut rng, 8), bits(&mut rng, 8));
        let pads = ClientPads::random(8, &mut rng);
        net.start(
            e0,
            [
                Inputs::none(),
                Inputs::none(),
                Inputs::none().value(0, k.clone()),
            ],
        );
        net.start(
            e1,
            [
                Inputs::none()
                    .value(0, a.clone())
                    .value(1, p.clone())
                    .value(4, s[0].clone())
                    .client_pad(5, pads.for_node(0)),
                Inputs::none()
                    .value(1, p.clone())
                    .value(2, b.clone())
                    .value(4, s[1].clone())
                    .client_pad(5, pads.for_node(1)),
                Inputs::none()
                    .value(1, p.clone())
                    .value(3, c.clone())
                    .value(4, s[2].clone())
                    .client_pad(5, pads.for_node(2)),
            ],
        );
        let public2 = || Inputs::none().value(0, q1.clone()).value(2, q2.clone());
        net.start(e2, [public2(), public2(), public2()]);
        net.run();
        assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);

        let sv: Vec<bool> = (0..8).map(|i| s[0][i] ^ s[1][i] ^ s[2][i]).collect();
        let want1: Vec<Vec<bool>> = mixed
            .circuit()
            .evaluate(&[a, p, b, c, sv, k].concat())
            .unwrap()
            .chunks(8)
            .map(<[bool]>::to_vec)
            .collect();
        let want2 = chained
            .circuit()
            .evaluate(&[q1, want1[6].clone(), q2].concat())
            .unwrap();
        let out1: Vec<Vec<GroupOutput>> = net.outputs(e1).into_iter().map(Option::unwrap).collect();
        for p in 0..3 {
            for q in 0..3 {
                if p == q {
                    assert_eq!(value(&out1[p][q]), want1[q], "party {p}");
                } else {
                    assert_eq!(out1[p][q], GroupOutput::Hidden);
                }
            }
            assert_eq!(value(&out1[p][3]), want1[3]);
            assert_eq!(out1[p][6], GroupOutput::Hidden);
        }
        let joined: Vec<bool> = (0..8)
            .map(|i| (0..3).fold(false, |acc, p| acc ^ out1[p][4].bits().unwrap()[i]))
            .collect();
        assert_eq!(joined, want1[4]);
        let reports: Vec<(PartyId, Vec<bool>)> = (0..3)
            .map(|p| (p as PartyId, out1[p][5].bits().unwrap().to_vec()))
            .collect();
        assert_eq!(pads.unmask(&reports).unwrap(), want1[5]);
        for out in net.outputs(e2) {
            assert_eq!(value(&out.unwrap()[0]), want2);
        }
    }
}

#[test]
fn public_source_is_bound_into_the_fingerprint() {
    let with = |source| {
        ExecSpec::new(
            Arc::new(circuit::aes::aes128_circuit()),
            vec![
                InputGroup {
                    width: 128,
                    source: InputSource::Private(0),
                },
                InputGroup { width: 128, source },
            ],
            vec![OutputGroup {
                width: 128,
                to: OutputTo::All,
            }],
        )
        .unwrap()
    };
    let public = *with(InputSource::Public).fingerprint();
    for other in [
        InputSource::Private(0),
        InputSource::Private(1),
        InputSource::Private(2),
        InputSource::Shared,
    ] {
        assert_ne!(public, *with(other).fingerprint(), "{other:?}");
    }
    assert_eq!(public, *aes_public_spec().fingerprint());
}

#[test]
fn public_input_usage_errors_are_not_aborts() {
    let mut net = Net::new(34);
    let e = net.preprocess(&aes_public_spec());
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for p in 0..3usize {
        let own = |i: Inputs| {
            if p == 0 {
                i.value(0, vec![true; 128])
            } else {
                i
            }
        };
        let party = &mut net.parties[p];
        // Missing public group (garbler 1 and the evaluator supply nothing else).
        assert!(
            matches!(party.start(e, own(Inputs::none()), &mut rng), Err(Error::Usage(m)) if m.contains("public")),
            "party {p}"
        );
        // Wrong width, too short and too long.
        for w in [127, 129, 0] {
            assert!(
                matches!(
                    party.start(e, own(Inputs::none().value(1, vec![false; w])), &mut rng),
                    Err(Error::Usage(_))
                ),
                "party {p}, width {w}"
            );
        }
        // A public group plus a group the party does not supply.
        assert!(matches!(
            party.start(
                e,
                own(Inputs::none().value(1, vec![false; 128]).value(2, vec![])),
                &mut rng
            ),
            Err(Error::Usage(_))
        ));
        assert!(party.aborted().is_none(), "party {p}");
    }
    // The session is unaffected: correct inputs still run to the right output.
    let key = [7u8; 16];
    let pt = [9u8; 16];
    net.start(e, aes_public_inputs(&key, [&pt, &pt, &pt]));
    net.run();
    assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);
    for out in net.outputs(e) {
        assert_eq!(bits_to_bytes(&value(&out.unwrap()[0])), aes_ref(&key, &pt));
    }
}

/// Runs one public-plaintext AES execution with each party's copy of the plaintext flipped
/// where `flip` says, under `tamper`; checks that every honest party aborts and that none
/// holds a wrong output.
fn run_public_attack(
    corrupt: &[PartyId],
    flip: [bool; 3],
    tamper: impl FnMut(PartyId, PartyId, &Msg, Vec<u8>) -> Action + 'static,
) -> Net {
    let mut rng = ChaCha20Rng::seed_from_u64(35);
    let key: [u8; 16] = rng.gen();
    let pt: [u8; 16] = rng.gen();
    let copies: Vec<[u8; 16]> = flip
        .iter()
        .map(|&f| {
            let mut c = pt;
            c[3] ^= u8::from(f) << 5;
            c
        })
        .collect();
    let mut net = Net::new(36).tamper(tamper);
    let e = net.preprocess(&aes_public_spec());
    net.run();
    net.start(
        e,
        aes_public_inputs(&key, [&copies[0], &copies[1], &copies[2]]),
    );
    net.run();
    for p in 0..3usize {
        if corrupt.contains(&(p as PartyId)) {
            continue;
        }
        assert!(
            net.abort_of(p).is_some(),
            "honest party {p} did not abort (errors: {:?})",
            net.errors
        );
        // Whatever an honest party output must be the true value under its own view.
        if let Some(out) = net.parties[p].output(e) {
            let want = bytes_to_bits(&aes_ref(&key, &copies[p]));
            assert_eq!(
                value(&out[0]),
                want,
                "honest party {p} output a wrong value"
            );
        }
    }
    net
}

fn relabel(m: &Msg, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let Msg::PublicLabels { exec, labels } = m else {
        panic!("not a PublicLabels: {m:?}");
    };
    let mut labels = labels.clone();
    f(&mut labels);
    Msg::PublicLabels {
        exec: *exec,
        labels,
    }
    .encode()
}

#[test]
fn garbler_flips_a_bit_of_a_public_label() {
    // Any bit: the colour bit, a middle bit, the last label's top bit.
    for (label, bit) in [(0usize, 0usize), (5, 77), (127, 127)] {
        let net = run_public_attack(&[0], [false; 3], move |from, _to, m, b| {
            if is_from(0, "PublicLabels")(from, m) {
                return Action::Deliver(relabel(m, |l| l[16 * label + bit / 8] ^= 1 << (bit % 8)));
            }
            Action::Deliver(b)
        });
        assert!(matches!(
            net.abort_of(2),
            Some(Abort::PublicInputMismatch {
                sender: 0,
                other: 1,
                ..
            })
        ));
        assert!(matches!(
            net.abort_of(1),
            Some(Abort::PeerAborted {
                party: 2,
                reason: AbortCode::PublicInputMismatch
            })
        ));
        assert!(net.parties[2].output(0).is_none());
    }
}

#[test]
fn garbler_sends_a_wrong_public_digest() {
    let net = run_public_attack(&[1], [false; 3], |from, _to, m, b| {
        if let (1, Msg::PublicDigest { exec, digest }) = (from, m) {
            let mut d = *digest;
            d[17] ^= 0x04;
            return Action::Deliver(
                Msg::PublicDigest {
                    exec: *exec,
                    digest: d,
                }
                .encode(),
            );
        }
        Action::Deliver(b)
    });
    assert!(matches!(
        net.abort_of(2),
        Some(Abort::PublicInputMismatch { .. })
    ));
    assert!(matches!(
        net.abort_of(0),
        Some(Abort::PeerAborted {
            party: 2,
            reason: AbortCode::PublicInputMismatch
        })
    ));
}

/// A garbler that uses another public value — a corrupt one sending the valid labels of other
/// bits, or an honest one that holds another copy — and an evaluator whose copy differs all
/// end in an abort, never in an output computed on a value some honest party did not agree to.
#[test]
fn parties_that_hold_another_public_value_abort() {
    for odd in 0..3usize {
        let mut flip = [false; 3];
        flip[odd] = true;
        let net = run_public_attack(&[], flip, |_, _, _, b| Action::Deliver(b));
        assert!(
            matches!(
                net.abort_of(2),
                Some(Abort::PublicInputMismatch {
                    sender: 0,
                    other: 1,
                    ..
                })
            ),
            "party {odd} differs: {:?}",
            net.errors
        );
        for g in 0..2 {
            assert!(matches!(
                net.abort_of(g),
                Some(Abort::PeerAborted {
                    party: 2,
                    reason: AbortCode::PublicInputMismatch
                })
            ));
        }
        assert!(net.outputs(0).iter().all(Option::is_none));
    }
}

/// Garbler 0 (or 1) answers execution 1 with its labels (or digest) of execution 0, on the
/// same public value: the labels are fresh per execution and the digest binds the execution,
/// so the evaluator aborts. A copy of an evaluated execution's message is unexpected.
#[test]
fn public_messages_replayed_for_another_execution_abort() {
    let key = [1u8; 16];
    let pt = [2u8; 16];
    let spec = aes_public_spec();
    for (kind, sender) in [("PublicLabels", 0), ("PublicDigest", 1)] {
        let old = std::rc::Rc::new(std::cell::RefCell::new(None::<Msg>));
        let o = old.clone();
        let mut net = Net::new(37).tamper(move |_from, _to, m, b| {
            if m.kind() != kind {
                return Action::Deliver(b);
            }
            let prev = o.borrow().clone();
            match (m.exec(), prev) {
                (Some(0), _) => *o.borrow_mut() = Some(m.clone()),
                (Some(1), Some(Msg::PublicLabels { labels, .. })) => {
                    return Action::Deliver(Msg::PublicLabels { exec: 1, labels }.encode())
                }
                (Some(1), Some(Msg::PublicDigest { digest, .. })) => {
                    return Action::Deliver(Msg::PublicDigest { exec: 1, digest }.encode())
                }
                _ => {}
            }
            Action::Deliver(b)
        });
        let e0 = net.preprocess(&spec);
        let e1 = net.preprocess(&spec);
        net.run();
        net.start(e0, aes_public_inputs(&key, [&pt, &pt, &pt]));
        net.run();
        assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);
        assert!(net.parties[2].output(e0).is_some());
        net.start(e1, aes_public_inputs(&key, [&pt, &pt, &pt]));
        net.run();
        assert!(
            matches!(
                net.abort_of(2),
                Some(Abort::PublicInputMismatch { exec: 1, .. })
            ),
            "{kind}: {:?}",
            net.errors
        );
        assert!(net.abort_of(0).is_some() && net.abort_of(1).is_some());
        assert!(net.parties[2].output(e1).is_none());

        // Execution 0's message again, after execution 0 was evaluated: unexpected.
        let mut net = Net::new(37);
        let e0 = net.preprocess(&spec);
        net.preprocess(&spec);
        net.run();
        net.start(e0, aes_public_inputs(&key, [&pt, &pt, &pt]));
        net.run();
        assert!(net.parties[2].output(e0).is_some());
        let again = old.borrow().clone().unwrap();
        let r = net.parties[2].handle(sender, &again.encode());
        assert!(
            matches!(r, Err(Error::Abort(Abort::Unexpected { party, .. })) if party == sender),
            "{kind}: {r:?}"
        );
    }
}

#[test]
fn duplicated_public_messages_abort() {
    for kind in ["PublicLabels", "PublicDigest"] {
        let net = run_public_attack(&[9], [false; 3], move |_from, _to, m, b| {
            if m.kind() == kind {
                Action::Twice(b)
            } else {
                Action::Deliver(b)
            }
        });
        assert!(
            net.errors
                .iter()
                .flatten()
                .any(|e| matches!(e, Error::Abort(Abort::Unexpected { .. }))),
            "{kind}: {:?}",
            net.errors
        );
    }
}

/// Label messages cut short, padded, with a label too few or too many, or with a length
/// field past the end; a digest cut short: the evaluator aborts (malformed), no panic.
#[test]
fn malformed_public_messages_abort() {
    type Edit = fn(&Msg, Vec<u8>) -> Vec<u8>;
    let edits: [(&str, Edit); 7] = [
        ("PublicLabels", |_, mut b| {
            b.pop();
            b
        }),
        ("PublicLabels", |_, mut b| {
            b.push(0);
            b
        }),
        ("PublicLabels", |m, _| {
            relabel(m, |l| l.truncate(l.len() - 16))
        }),
        ("PublicLabels", |m, _| relabel(m, |l| l.extend([0u8; 16]))),
        ("PublicLabels", |m, _| relabel(m, Vec::clear)),
        ("PublicLabels", |_, mut b| {
            b[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("PublicDigest", |_, mut b| {
            b.truncate(b.len() - 1);
            b
        }),
    ];
    for (i, (kind, edit)) in edits.into_iter().enumerate() {
        let corrupt = if kind == "PublicLabels" { 0 } else { 1 };
        let net = run_public_attack(&[corrupt], [false; 3], move |from, _to, m, b| {
            if from == corrupt && m.kind() == kind {
                return Action::Deliver(edit(m, b));
            }
            Action::Deliver(b)
        });
        assert!(
            matches!(
                net.abort_of(2),
                Some(Abort::Malformed { party, .. }) if *party == corrupt
            ),
            "edit {i}: {:?}",
            net.errors
        );
    }
}

#[test]
fn public_messages_from_the_wrong_party_are_unexpected() {
    let key = [3u8; 16];
    let pt = [4u8; 16];
    // Labels from garbler 1, a digest from garbler 0, either to a garbler, and either for an
    // execution without public inputs.
    let cases: [(PartyId, PartyId, bool, &str); 6] = [
        (1, 2, true, "PublicLabels"),
        (0, 2, true, "PublicDigest"),
        (0, 1, true, "PublicLabels"),
        (1, 0, true, "PublicDigest"),
        (0, 2, false, "PublicLabels"),
        (1, 2, false, "PublicDigest"),
    ];
    for (from, to, public, kind) in cases {
        let mut net = Net::new(39);
        let e = if public {
            net.preprocess(&aes_public_spec())
        } else {
            net.preprocess(&aes_spec())
        };
        net.run();
        let m = match kind {
            "PublicLabels" => Msg::PublicLabels {
                exec: e,
                labels: vec![0; 16 * 128],
            },
            _ => Msg::PublicDigest {
                exec: e,
                digest: [0; 32],
            },
        };
        let r = net.parties[to as usize].handle(from, &m.encode());
        assert!(
            matches!(r, Err(Error::Abort(Abort::Unexpected { party, .. })) if party == from),
            "{kind} from {from} to {to}: {r:?}"
        );
    }
    // Sanity: the same execution runs when nobody injects anything.
    let mut net = Net::new(39);
    let e = net.preprocess(&aes_public_spec());
    net.start(e, aes_public_inputs(&key, [&pt, &pt, &pt]));
    net.run();
    assert!(net.errors.iter().all(Option::is_none), "{:?}", net.errors);
}

/// Random single-byte corruption of any message of a public-input run never panics and never
/// yields a wrong output at an honest party.
#[test]
fn random_corruption_of_public_runs_never_yields_a_wrong_output() {
    let mut rng = ChaCha20Rng::seed_from_u64(40);
    for _ in 0..40 {
        let target: usize = rng.gen_range(0..8);
        let byte: usize = rng.gen();
        let corrupt: PartyId = rng.gen_range(0..3);
        let mut count = 0usize;
        let mut net = Net::new(rng.gen()).tamper(move |from, _to, _m, mut b| {
            if from == corrupt {
                if count == target && !b.is_empty() {
                    let i = byte % b.len();
                    b[i] ^= 0x01;
                }
                count += 1;
            }
            Action::Deliver(b)
        });
        let key: [u8; 16] = rng.gen();
        let pt: [u8; 16] = rng.gen();
        let e = net.preprocess(&aes_public_spec());
        net.run();
        net.start(e, aes_public_inputs(&key, [&pt, &pt, &pt]));
        net.run();
        let want = bytes_to_bits(&aes_ref(&key, &pt));
        for p in 0..3 {
            if p as PartyId != corrupt {
                if let Some(out) = net.parties[p].output(e) {
                    assert_eq!(value(&out[0]), want);
                }
            }
        }
    }
}
