//! What one garbled execution computes and who supplies and receives what: the public
//! description that all three parties must agree on (it is bound into the garbled-table
//! digest, so parties that disagree abort). Holds no secret.

use std::ops::Range;
use std::sync::Arc;

use crate::circuit::Circuit;

/// A party of the three-party protocol: 0 and 1 garble, 2 evaluates.
pub type PartyId = u8;
/// First garbler (MRZ15's P1).
pub const GARBLER_0: PartyId = 0;
/// Second garbler (MRZ15's P2).
pub const GARBLER_1: PartyId = 1;
/// The evaluator (MRZ15's P3).
pub const EVALUATOR: PartyId = 2;
/// Number of parties.
pub const PARTIES: usize = 3;

/// Index of an execution within a session, in the order executions were preprocessed.
pub type ExecId = u32;

/// Where the bits of one input group come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// A private value of one party. The evaluator's private inputs are XOR-shared to the
    /// garblers, so no oblivious transfer is needed.
    Private(PartyId),
    /// A value XOR-shared among all three parties; each supplies its share.
    Shared,
    /// The labels of a [`OutputTo::Keep`] output group of an earlier execution: the value flows
    /// on without ever being revealed.
    Kept {
        /// The earlier execution.
        exec: ExecId,
        /// Its output group.
        group: usize,
    },
    /// Part of a [`OutputTo::Keep`] output group of an earlier execution: its bits
    /// `offset..offset + width`, so one kept group (a decrypted record, say) can feed
    /// several later executions, each the part it needs.
    KeptPart {
        /// The earlier execution.
        exec: ExecId,
        /// Its output group.
        group: usize,
        /// First bit of the group this input group takes.
        offset: usize,
    },
    /// A value every party already knows and agrees on (a ciphertext the nodes hold, a
    /// counter). Each party supplies the same bits; garbler 0 sends the evaluator the active
    /// labels, garbler 1 a digest of the labels it computed from its own copy, so a party
    /// that deviates, or parties that hold different values, abort. No per-bit commitments,
    /// and no second copy of the value is needed to catch a lying garbler.
    Public,
}

/// Who learns an output group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputTo {
    /// Every party learns the value.
    All,
    /// Only this party learns the value.
    Party(PartyId),
    /// The value is split into fresh XOR shares, one per party; no party learns it.
    Shares,
    /// An external client: every party supplies a one-time pad the client gave it and learns
    /// only the value masked with the XOR of the three pads, which it forwards to the client.
    Client,
    /// Nobody: the evaluator keeps the labels for a later execution ([`InputSource::Kept`]).
    Keep,
}

impl OutputTo {
    pub(crate) fn masked(self) -> bool {
        matches!(self, OutputTo::Shares | OutputTo::Client)
    }
}

/// A run of consecutive circuit inputs with one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputGroup {
    /// Number of bits.
    pub width: usize,
    /// Their source.
    pub source: InputSource,
}

/// A run of consecutive circuit outputs with one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputGroup {
    /// Number of bits.
    pub width: usize,
    /// Their destination.
    pub to: OutputTo,
}

/// Errors in an execution description.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// Input groups do not cover the circuit inputs exactly.
    #[error("input groups cover {groups} bits, the circuit has {circuit} inputs")]
    InputWidth {
        /// Sum of group widths.
        groups: usize,
        /// Circuit inputs.
        circuit: usize,
    },
    /// Output groups do not cover the circuit outputs exactly.
    #[error("output groups cover {groups} bits, the circuit has {circuit} outputs")]
    OutputWidth {
        /// Sum of group widths.
        groups: usize,
        /// Circuit outputs.
        circuit: usize,
    },
    /// A party id outside 0..3.
    #[error("party {0} does not exist (parties are 0, 1 and 2)")]
    NoSuchParty(PartyId),
    /// A kept input names something that is not an earlier keep-group of the same width.
    #[error("input group {group} takes kept labels that execution {from} does not keep: {why}")]
    BadKept {
        /// Input group.
        group: usize,
        /// Referenced execution.
        from: ExecId,
        /// What is wrong.
        why: &'static str,
    },
}

/// The public description of one execution: a circuit and its input and output groups.
#[derive(Debug, Clone)]
pub struct ExecSpec {
    circuit: Arc<Circuit>,
    inputs: Vec<InputGroup>,
    outputs: Vec<OutputGroup>,
    fingerprint: [u8; 32],
}

impl ExecSpec {
    /// Checks that the groups cover the circuit exactly and names valid parties.
    pub fn new(
        circuit: Arc<Circuit>,
        inputs: Vec<InputGroup>,
        outputs: Vec<OutputGroup>,
    ) -> Result<Self, SpecError> {
        let iw: usize = inputs.iter().map(|g| g.width).sum();
        if iw != circuit.num_inputs() {
            return Err(SpecError::InputWidth {
                groups: iw,
                circuit: circuit.num_inputs(),
            });
        }
        let ow: usize = outputs.iter().map(|g| g.width).sum();
        if ow != circuit.num_outputs() {
            return Err(SpecError::OutputWidth {
                groups: ow,
                circuit: circuit.num_outputs(),
            });
        }
        for g in &inputs {
            if let InputSource::Private(p) = g.source {
                if p as usize >= PARTIES {
                    return Err(SpecError::NoSuchParty(p));
                }
            }
        }
        for g in &outputs {
            if let OutputTo::Party(p) = g.to {
                if p as usize >= PARTIES {
                    return Err(SpecError::NoSuchParty(p));
                }
            }
        }
        let fingerprint = fingerprint(&circuit, &inputs, &outputs);
        Ok(Self {
            circuit,
            inputs,
            outputs,
            fingerprint,
        })
    }

    /// The circuit.
    pub fn circuit(&self) -> &Arc<Circuit> {
        &self.circuit
    }
    /// Input groups.
    pub fn inputs(&self) -> &[InputGroup] {
        &self.inputs
    }
    /// Output groups.
    pub fn outputs(&self) -> &[OutputGroup] {
        &self.outputs
    }
    /// A hash of the circuit and the groups; bound into the garbled-table digest.
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// Bit range of each output group within the circuit outputs.
    pub fn output_range(&self, group: usize) -> Range<usize> {
        let start: usize = self.outputs[..group].iter().map(|g| g.width).sum();
        start..start + self.outputs[group].width
    }
}

fn fingerprint(c: &Circuit, inputs: &[InputGroup], outputs: &[OutputGroup]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("tessera mpc exec spec v1");
    h.update(c.digest());
    for g in inputs {
        h.update(&(g.width as u64).to_le_bytes());
        match g.source {
            InputSource::Private(p) => h.update(&[0, p]),
            InputSource::Shared => h.update(&[1]),
            InputSource::Kept { exec, group } => {
                h.update(&[2]);
                h.update(&exec.to_le_bytes());
                h.update(&(group as u64).to_le_bytes())
            }
            InputSource::KeptPart {
                exec,
                group,
                offset,
            } => {
                h.update(&[3]);
                h.update(&exec.to_le_bytes());
                h.update(&(group as u64).to_le_bytes());
                h.update(&(offset as u64).to_le_bytes())
            }
            InputSource::Public => h.update(&[4]),
        };
    }
    for g in outputs {
        h.update(&(g.width as u64).to_le_bytes());
        match g.to {
            OutputTo::All => h.update(&[0]),
            OutputTo::Party(p) => h.update(&[1, p]),
            OutputTo::Shares => h.update(&[2]),
            OutputTo::Client => h.update(&[3]),
            OutputTo::Keep => h.update(&[4]),
        };
    }
    *h.finalize().as_bytes()
}

/// A party's own contribution slot: which of its input groups or pads a run of its slots
/// carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Input(usize),
    Pad(usize),
}

/// Where one circuit input (or one output pad) gets its label from: up to four virtual
/// wires (garbler, index in that garbler's list), kept labels, or a public wire (index in
/// the execution's list of public wires).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Contrib {
    Vws { n: u8, v: [(u8, u32); 4] },
    Kept { exec: ExecId, group: u32, bit: u32 },
    Public(u32),
}

/// Kind of a garbler-owned virtual input wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VwKind {
    /// The garbler's own value; commitments are ordered by colour.
    Own,
    /// A share of evaluator wire `e` (the evaluator knows the share); commitments are ordered
    /// by value.
    EShare(u32),
}

/// The wiring every party derives identically from an [`ExecSpec`].
#[derive(Debug)]
pub(crate) struct Plan {
    /// Virtual input wires of each garbler.
    pub vws: [Vec<VwKind>; 2],
    /// For each evaluator wire: its share wire in garbler 0's and garbler 1's list.
    pub ewires: Vec<[u32; 2]>,
    /// Per party: runs of its slots (garbler: own virtual wires; evaluator: evaluator wires).
    pub slots: [Vec<(Slot, Range<u32>)>; 3],
    /// Per circuit input wire.
    pub inputs: Vec<Contrib>,
    /// Per masked output bit, in output order (only bits of masked groups).
    pub pads: Vec<Contrib>,
    /// Public input groups (every party supplies them): group index and its run of public
    /// wires.
    pub public: Vec<(usize, Range<u32>)>,
    /// Number of public wires.
    pub n_public: u32,
}

impl Plan {
    /// The plan of nothing: what a completed execution keeps in place of its own.
    pub(crate) fn empty() -> Plan {
        Plan {
            vws: [Vec::new(), Vec::new()],
            ewires: Vec::new(),
            slots: [Vec::new(), Vec::new(), Vec::new()],
            inputs: Vec::new(),
            pads: Vec::new(),
            public: Vec::new(),
            n_public: 0,
        }
    }

    pub(crate) fn new(spec: &ExecSpec) -> Plan {
        let mut p = Plan {
            vws: [Vec::new(), Vec::new()],
            ewires: Vec::new(),
            slots: [Vec::new(), Vec::new(), Vec::new()],
            inputs: Vec::with_capacity(spec.circuit.num_inputs()),
            pads: Vec::new(),
            public: Vec::new(),
            n_public: 0,
        };
        for (gi, g) in spec.inputs.iter().enumerate() {
            let slot = Slot::Input(gi);
            match g.source {
                InputSource::Private(party) => {
                    let contribs = p.alloc(slot, &[party], g.width);
                    p.inputs.extend(contribs);
                }
                InputSource::Shared => {
                    let contribs = p.alloc(slot, &[0, 1, 2], g.width);
                    p.inputs.extend(contribs);
                }
                InputSource::Kept { exec, group } => p.kept(exec, group, 0, g.width),
                InputSource::KeptPart {
                    exec,
                    group,
                    offset,
                } => p.kept(exec, group, offset, g.width),
                InputSource::Public => {
                    let start = p.n_public;
                    p.n_public += g.width as u32;
                    p.inputs.extend((start..p.n_public).map(Contrib::Public));
                    p.public.push((gi, start..p.n_public));
                }
            }
        }
        for (gi, g) in spec.outputs.iter().enumerate() {
            if g.to.masked() {
                let contribs = p.alloc(Slot::Pad(gi), &[0, 1, 2], g.width);
                p.pads.extend(contribs);
            }
        }
        p
    }

    /// Kept labels of bits `offset..offset + width` of an earlier execution's output group;
    /// they are resolved against that execution when garbling and evaluating.
    fn kept(&mut self, exec: ExecId, group: usize, offset: usize, width: usize) {
        self.inputs.extend((0..width).map(|i| Contrib::Kept {
            exec,
            group: group as u32,
            bit: (offset + i) as u32,
        }));
    }

    /// Allocates `width` slots for each of `parties` and returns the per-bit contributions.
    fn alloc(&mut self, slot: Slot, parties: &[PartyId], width: usize) -> Vec<Contrib> {
        let mut out = vec![
            Contrib::Vws {
                n: 0,
                v: [(0, 0); 4]
            };
            width
        ];
        for &party in parties {
            if party == EVALUATOR {
                let start = self.ewires.len() as u32;
                for c in out.iter_mut() {
                    let e = self.ewires.len() as u32;
                    let i0 = self.vws[0].len() as u32;
                    let i1 = self.vws[1].len() as u32;
                    self.vws[0].push(VwKind::EShare(e));
                    self.vws[1].push(VwKind::EShare(e));
                    self.ewires.push([i0, i1]);
                    push(c, (0, i0));
                    push(c, (1, i1));
                }
                self.slots[2].push((slot, start..self.ewires.len() as u32));
            } else {
                let g = party as usize;
                let start = self.vws[g].len() as u32;
                for c in out.iter_mut() {
                    let i = self.vws[g].len() as u32;
                    self.vws[g].push(VwKind::Own);
                    push(c, (party, i));
                }
                self.slots[g].push((slot, start..self.vws[g].len() as u32));
            }
        }
        out
    }
}

fn push(c: &mut Contrib, x: (u8, u32)) {
    if let Contrib::Vws { n, v } = c {
        v[*n as usize] = x;
        *n += 1;
    }
}
