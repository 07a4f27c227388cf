//! The three-party garbled-circuit protocol of Mohassel, Rosulek and Zhang (CCS 2015) as a
//! sans-IO state machine: no sockets, no clock, randomness passed in. Parties 0 and 1 garble
//! the same circuit from a coin-tossed seed; party 2 evaluates, taking the tables from one
//! garbler and a digest from the other. Any deviation by one party ends, at every honest
//! party, in a typed [`Abort`] — never in a wrong output.
//!
//! Per execution (see [`ExecSpec`]):
//! 1. *Preprocessing* (no inputs needed): garblers derive labels from the seed, garble, and
//!    commit to every input label (colour-ordered for their own inputs, value-ordered for
//!    shares of the evaluator's inputs). The table sender (garbler `exec % 2`) ships tables,
//!    commitment roots and decoding bits; the other garbler ships their digest.
//! 2. *Online*: the evaluator XOR-shares its inputs to the garblers; each garbler sends, per
//!    input wire it owns, the active label and the commitment to the other label; the
//!    evaluator recomputes the commitment root, so a label outside the committed pair aborts.
//! 3. *Output*: the evaluator decodes what it may and sends each garbler the colour bits of
//!    that garbler's outputs with a hash of the active labels. The evaluator does not know the
//!    other label of any wire, so it cannot authenticate a false output.
//!
//! *Public inputs* ([`InputSource::Public`]: a value all three parties know, such as a
//! ciphertext the nodes hold) need neither commitments nor a second copy. Both garblers derive
//! the zero-labels `Z_i` of the public wires from the shared seed, under their own domain
//! (`tessera mpc public labels v1`, keyed by the seed and the execution id; wire `i` takes
//! bytes `16i..16i+16` of the ChaCha20 stream), so garbling needs only `Z_i`, never the values,
//! and runs ahead of the inputs like any other. Online, garbler 0 sends the evaluator the
//! active labels `Z_i ⊕ v_i·Δ` of all public wires of the execution in one
//! [`Msg::PublicLabels`]; garbler 1 sends [`Msg::PublicDigest`], one keyed hash over the
//! execution id, the spec fingerprint, the values and the labels that it computed from its own
//! copy of the values. The evaluator hashes the received labels with its own copy of the
//! values and uses the labels only if the result equals garbler 1's digest; otherwise it aborts
//! with [`Abort::PublicInputMismatch`]. Its own copy of the values enters only this check: the
//! labels it evaluates on are always the garblers'.
//!
//! Why this is enough, with at most one corrupt party:
//! - *Corrupt garbler 0.* Garbler 1 and the evaluator are honest and hold the true value `v`;
//!   garbler 1's digest covers exactly the labels `Z_i ⊕ v_i·Δ`. Labels for any other value (or
//!   anything else) hash to a different digest unless garbler 0 finds a blake3 collision, so
//!   the evaluator aborts before evaluating: never a wrong output.
//! - *Corrupt garbler 1.* It sends no labels, only the digest: a wrong digest (or one made from
//!   another view of the value) makes the evaluator abort; it cannot change the labels that
//!   garbler 0 sends, which are those of the true value.
//! - *Corrupt evaluator.* It receives one label per public wire, the active label of a value it
//!   already knows, exactly as it would for an input of its own; the `Z_i` are pseudorandom,
//!   fresh per execution (the execution id is in their derivation) and independent of every
//!   other label, so it learns nothing about Δ or about other wires. Lying about its copy of the
//!   value can only make it abort, which it can always do.
//! - *Honest parties that disagree* on a public value abort: if the garblers' copies differ, the
//!   labels differ; if the evaluator's copy differs from garbler 1's, the hashed values differ.
//! - *Replays.* The digest binds the execution id and the fingerprint and the labels are fresh per
//!   execution, so a message of another execution fails the check; a duplicate is
//!   [`Abort::Unexpected`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::garble::{self, table_len};
use crate::label::{Delta, Label};
use crate::msg::{AbortCode, Bits, Msg};
use crate::spec::{
    Contrib, ExecId, ExecSpec, InputSource, OutputTo, PartyId, Plan, Slot, SpecError, VwKind,
    EVALUATOR, GARBLER_0, GARBLER_1,
};

/// How far ahead of this party's own preprocessing a peer's messages may run before they are
/// treated as a flood.
const MAX_EARLY_MESSAGES: usize = 1 << 16;

/// A protocol abort: which party deviated (or which peer reported an abort) and which check
/// failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Abort {
    /// The evaluator's check of the two garblers' material failed.
    #[error("garbled tables of execution {exec} from party {sender} do not match the digest from party {other}")]
    TableMismatch {
        /// Execution.
        exec: ExecId,
        /// Garbler that sent the tables.
        sender: PartyId,
        /// Garbler that sent the digest.
        other: PartyId,
    },
    /// A garbler sent an input label outside its committed pair (or for the wrong value of an
    /// evaluator share).
    #[error("party {party} sent input labels for execution {exec} that match no commitment")]
    InvalidInputLabel {
        /// Execution.
        exec: ExecId,
        /// Offending garbler.
        party: PartyId,
    },
    /// The public-input labels from one garbler do not hash to the other garbler's digest: a
    /// garbler deviated, or the parties hold different public values.
    #[error("public input labels of execution {exec} from party {sender} do not match the digest from party {other} (a party deviated, or the parties hold different public values)")]
    PublicInputMismatch {
        /// Execution.
        exec: ExecId,
        /// Garbler that sent the labels.
        sender: PartyId,
        /// Garbler that sent the digest.
        other: PartyId,
    },
    /// The evaluator revealed an output whose labels do not authenticate.
    #[error("party {party} revealed outputs of execution {exec} whose labels do not authenticate")]
    InvalidOutputLabel {
        /// Execution.
        exec: ExecId,
        /// The evaluator.
        party: PartyId,
    },
    /// Garbler 0 opened its seed commitment to a different value.
    #[error("party {party} opened its seed commitment to a different value")]
    SeedCommitment {
        /// Offending garbler.
        party: PartyId,
    },
    /// A message that does not decode or has the wrong shape.
    #[error("malformed message from party {party}: {what}")]
    Malformed {
        /// Sender.
        party: PartyId,
        /// What is wrong.
        what: &'static str,
    },
    /// A message the protocol does not allow here (wrong sender, duplicate, replay, too early).
    #[error("unexpected {kind} message from party {party}")]
    Unexpected {
        /// Sender.
        party: PartyId,
        /// Message kind.
        kind: &'static str,
    },
    /// A peer aborted and told us.
    #[error("party {party} aborted: {reason}")]
    PeerAborted {
        /// The peer.
        party: PartyId,
        /// Its reason.
        reason: AbortCode,
    },
    /// This party stopped for a local reason (timeout, shutdown, misuse by its caller).
    #[error("stopped locally: {0}")]
    Local(String),
}

impl Abort {
    fn code(&self) -> AbortCode {
        match self {
            Abort::TableMismatch { .. } => AbortCode::TableMismatch,
            Abort::InvalidInputLabel { .. } => AbortCode::InvalidInputLabel,
            Abort::PublicInputMismatch { .. } => AbortCode::PublicInputMismatch,
            Abort::InvalidOutputLabel { .. } => AbortCode::InvalidOutputLabel,
            Abort::SeedCommitment { .. } => AbortCode::SeedCommitment,
            Abort::Malformed { .. } => AbortCode::Malformed,
            Abort::Unexpected { .. } => AbortCode::Unexpected,
            Abort::PeerAborted { reason, .. } => *reason,
            Abort::Local(_) => AbortCode::Local,
        }
    }
}

/// Errors returned by [`Party`] methods.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The session is aborted; it cannot continue.
    #[error(transparent)]
    Abort(#[from] Abort),
    /// The caller used the API wrongly; the session is unaffected.
    #[error("invalid use: {0}")]
    Usage(String),
    /// An execution description is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// The inputs one party supplies to one execution.
#[derive(Default)]
pub struct Inputs {
    values: BTreeMap<usize, Vec<bool>>,
    pads: BTreeMap<usize, Vec<bool>>,
}

impl Drop for Inputs {
    fn drop(&mut self) {
        for v in self.values.values_mut().chain(self.pads.values_mut()) {
            v.iter_mut().for_each(Zeroize::zeroize);
        }
    }
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("groups", &self.values.keys().collect::<Vec<_>>())
            .field("pads", &self.pads.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Inputs {
    /// No inputs (for a party that only relays or evaluates).
    pub fn none() -> Self {
        Self::default()
    }
    /// This party's value (or, for a [`InputSource::Shared`] group, its share) of input group
    /// `group`. Every party, the evaluator included, supplies the value of each
    /// [`InputSource::Public`] group this way.
    pub fn value(mut self, group: usize, bits: Vec<bool>) -> Self {
        self.values.insert(group, bits);
        self
    }
    /// The one-time pad a client gave this party for [`OutputTo::Client`] output group `group`.
    pub fn client_pad(mut self, group: usize, bits: Vec<bool>) -> Self {
        self.pads.insert(group, bits);
        self
    }
}

/// What one party learns from one execution, per output group.
#[derive(Clone, PartialEq, Eq)]
pub enum GroupOutput {
    /// The value ([`OutputTo::All`], or [`OutputTo::Party`] naming this party).
    Value(Vec<bool>),
    /// This party's XOR share ([`OutputTo::Shares`]).
    Share(Vec<bool>),
    /// The value masked with the client's pads, to forward to the client
    /// ([`OutputTo::Client`]).
    Masked(Vec<bool>),
    /// Nothing for this party (kept labels, or another party's output).
    Hidden,
}

impl std::fmt::Debug for GroupOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupOutput::Value(v) => write!(f, "Value({} bits)", v.len()),
            GroupOutput::Share(v) => write!(f, "Share({} bits)", v.len()),
            GroupOutput::Masked(v) => write!(f, "Masked({} bits)", v.len()),
            GroupOutput::Hidden => f.write_str("Hidden"),
        }
    }
}

impl Drop for GroupOutput {
    fn drop(&mut self) {
        if let GroupOutput::Value(v) | GroupOutput::Share(v) | GroupOutput::Masked(v) = self {
            v.iter_mut().for_each(Zeroize::zeroize);
        }
    }
}

impl GroupOutput {
    /// The bits, if this party learns any.
    pub fn bits(&self) -> Option<&[bool]> {
        match self {
            GroupOutput::Value(v) | GroupOutput::Share(v) | GroupOutput::Masked(v) => Some(v),
            GroupOutput::Hidden => None,
        }
    }
}

/// One unit of heavy local work done by [`Party::poll_work`], for drivers that time or
/// offload it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// A garbler garbled an execution.
    Garbled {
        /// Execution.
        exec: ExecId,
        /// AND gates garbled.
        and_gates: usize,
    },
    /// The table-sending garbler queued the tables.
    Shipped {
        /// Execution.
        exec: ExecId,
    },
    /// The other garbler hashed the tables into a digest.
    Digested {
        /// Execution.
        exec: ExecId,
    },
    /// The evaluator checked the tables against the digest.
    Verified {
        /// Execution.
        exec: ExecId,
    },
    /// The evaluator evaluated an execution.
    Evaluated {
        /// Execution.
        exec: ExecId,
        /// AND gates evaluated.
        and_gates: usize,
    },
}

enum Seed {
    /// Garbler 0 committed to `mine` and waits for garbler 1's contribution.
    G0Committed(Zeroizing<[u8; 32]>),
    /// Garbler 1 waits for garbler 0's commitment; `mine` is its contribution.
    G1AwaitCommit(Zeroizing<[u8; 32]>),
    /// Garbler 1 sent `mine` and waits for the opening of `commit`.
    G1AwaitOpen {
        commit: [u8; 32],
        mine: Zeroizing<[u8; 32]>,
    },
    Ready {
        seed: Zeroizing<[u8; 32]>,
        delta: Delta,
    },
    /// The evaluator has no seed.
    Evaluator,
}

/// Garbler-side state of one execution.
#[derive(Default)]
struct GState {
    garbled: bool,
    /// Zero-labels of both garblers' virtual input wires.
    vw_zero: [Zeroizing<Vec<Label>>; 2],
    /// Commitments for this garbler's virtual wires: `[slot 0, slot 1]`.
    coms: Vec<[[u8; 16]; 2]>,
    /// Zero-labels of the public wires (dropped once their active labels are sent).
    pub_zero: Zeroizing<Vec<Label>>,
    /// Zero-labels of the outputs (masked outputs include their pads).
    out_zero: Zeroizing<Vec<Label>>,
    tables: Option<(Vec<u8>, [[u8; 32]; 2], Bits)>,
    /// Values of this garbler's own virtual wires (None for evaluator-share wires until the
    /// shares arrive).
    own: Option<Zeroizing<Vec<bool>>>,
    /// This garbler's shares of the evaluator wires.
    eshares: Option<Zeroizing<Vec<bool>>>,
    labels_sent: bool,
    public_sent: bool,
    revealed: bool,
}

/// Bits that zeroize on drop.
type SecretBits = Zeroizing<Vec<bool>>;

/// Evaluator-side state of one execution.
#[derive(Default)]
struct EState {
    garbled: Option<(Vec<u8>, [[u8; 32]; 2], Bits)>,
    digest: Option<[u8; 32]>,
    verified: bool,
    /// Value of each evaluator wire, and garbler 0's share of it.
    values: Option<(SecretBits, SecretBits)>,
    labels: [Option<Zeroizing<Vec<u8>>>; 2],
    /// Garbler 0's active labels of the public wires, and garbler 1's digest of them.
    public_labels: Option<Zeroizing<Vec<u8>>>,
    public_digest: Option<[u8; 32]>,
    evaluated: bool,
    /// Active output labels (masked outputs include their pads); kept for chaining.
    out: Zeroizing<Vec<Label>>,
}

struct Exec {
    spec: Arc<ExecSpec>,
    plan: Plan,
    started: bool,
    /// Given up before it started ([`Party::skip`]): never evaluated, never waited for.
    skipped: bool,
    /// This party's copy of the public wires' values (from start until it has been sent or
    /// checked).
    public: Option<Vec<bool>>,
    g: GState,
    e: EState,
    output: Option<Vec<GroupOutput>>,
}

/// One party of a three-party session. Drive it by calling [`Party::preprocess`],
/// [`Party::start`], [`Party::handle`] and [`Party::poll_work`], and send whatever
/// [`Party::poll_transmit`] yields.
pub struct Party {
    id: PartyId,
    seed: Seed,
    execs: Vec<Exec>,
    outbox: VecDeque<(PartyId, Msg)>,
    early: BTreeMap<ExecId, Vec<(PartyId, Msg)>>,
    early_count: usize,
    next_work: usize,
    aborted: Option<Abort>,
}

impl std::fmt::Debug for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Party")
            .field("id", &self.id)
            .field("execs", &self.execs.len())
            .field("aborted", &self.aborted)
            .finish()
    }
}

fn keyed(context: &'static str, cell: &'static OnceLock<[u8; 32]>) -> blake3::Hasher {
    blake3::Hasher::new_keyed(cell.get_or_init(|| blake3::derive_key(context, b"")))
}

macro_rules! hasher {
    ($ctx:literal) => {{
        static KEY: OnceLock<[u8; 32]> = OnceLock::new();
        keyed($ctx, &KEY)
    }};
}

fn commitment(exec: ExecId, owner: u8, idx: u32, l: Label) -> [u8; 16] {
    let mut h = hasher!("tessera mpc input commitment v1");
    h.update(&exec.to_le_bytes());
    h.update(&[owner]);
    h.update(&idx.to_le_bytes());
    h.update(&l.to_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

fn commitment_root(exec: ExecId, owner: u8, coms: &[[[u8; 16]; 2]]) -> [u8; 32] {
    let mut h = hasher!("tessera mpc commitment root v1");
    h.update(&exec.to_le_bytes());
    h.update(&[owner]);
    for c in coms {
        h.update(&c[0]);
        h.update(&c[1]);
    }
    *h.finalize().as_bytes()
}

fn table_digest(
    exec: ExecId,
    fingerprint: &[u8; 32],
    tables: &[u8],
    roots: &[[u8; 32]; 2],
    decode: &Bits,
) -> [u8; 32] {
    let mut h = hasher!("tessera mpc table digest v1");
    h.update(&exec.to_le_bytes());
    h.update(fingerprint);
    h.update(&roots[0]);
    h.update(&roots[1]);
    h.update(&(decode.len() as u64).to_le_bytes());
    h.update(decode.as_bytes());
    h.update(&(tables.len() as u64).to_le_bytes());
    h.update(tables);
    *h.finalize().as_bytes()
}

fn reveal_tag(exec: ExecId, to: PartyId, labels: &[Label]) -> [u8; 32] {
    let mut h = hasher!("tessera mpc reveal tag v1");
    h.update(&exec.to_le_bytes());
    h.update(&[to]);
    for l in labels {
        h.update(&l.to_bytes());
    }
    *h.finalize().as_bytes()
}

/// The garbler that ships the tables of `exec` (alternating balances the two garblers' load).
fn table_sender(exec: ExecId) -> PartyId {
    if exec % 2 == 0 {
        GARBLER_0
    } else {
        GARBLER_1
    }
}

/// Which output bits may the evaluator decode (decoding bits are shipped for them)?
fn evaluator_decodes(to: OutputTo) -> bool {
    matches!(
        to,
        OutputTo::All | OutputTo::Party(EVALUATOR) | OutputTo::Shares | OutputTo::Client
    )
}

/// Which output bits does the evaluator reveal (as colours) to garbler `g`?
fn revealed_to(to: OutputTo, g: PartyId) -> bool {
    match to {
        OutputTo::All | OutputTo::Shares | OutputTo::Client => true,
        OutputTo::Party(p) => p == g,
        OutputTo::Keep => false,
    }
}

impl Party {
    /// Creates party `id` (0 or 1: garbler, 2: evaluator). Garbler 0 immediately queues its
    /// seed commitment.
    pub fn new<R: RngCore + CryptoRng>(id: PartyId, rng: &mut R) -> Result<Party, Error> {
        let seed = match id {
            GARBLER_0 => {
                let mut mine = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(mine.as_mut());
                Seed::G0Committed(mine)
            }
            GARBLER_1 => {
                let mut mine = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(mine.as_mut());
                Seed::G1AwaitCommit(mine)
            }
            EVALUATOR => Seed::Evaluator,
            other => return Err(Error::Usage(format!("party id {other} is not 0, 1 or 2"))),
        };
        let mut p = Party {
            id,
            seed,
            execs: Vec::new(),
            outbox: VecDeque::new(),
            early: BTreeMap::new(),
            early_count: 0,
            next_work: 0,
            aborted: None,
        };
        if let Seed::G0Committed(mine) = &p.seed {
            let c = seed_commit(mine);
            p.outbox.push_back((GARBLER_1, Msg::SeedCommit(c)));
        }
        Ok(p)
    }

    /// This party's id.
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// True once the garblers share a seed (always true for the evaluator).
    pub fn is_ready(&self) -> bool {
        matches!(self.seed, Seed::Ready { .. } | Seed::Evaluator)
    }

    /// The abort that ended this session, if any.
    pub fn aborted(&self) -> Option<&Abort> {
        self.aborted.as_ref()
    }

    /// Whether this party's share of every registered execution's input-independent work
    /// is done: a garbler has garbled and shipped (or digested) each one's tables; the
    /// evaluator has received and checked them. What remains is online work only.
    pub fn preprocessed(&self) -> bool {
        if self.id == EVALUATOR {
            self.execs.iter().all(|x| x.e.verified || x.skipped)
        } else {
            self.is_ready() && self.next_work >= self.execs.len()
        }
    }

    /// Number of executions preprocessed so far.
    pub fn num_execs(&self) -> usize {
        self.execs.len()
    }

    /// Outputs of an execution once it completed at this party.
    pub fn output(&self, exec: ExecId) -> Option<&[GroupOutput]> {
        self.execs.get(exec as usize)?.output.as_deref()
    }

    /// Takes the outputs of a completed execution (later calls return `None`).
    pub fn take_output(&mut self, exec: ExecId) -> Option<Vec<GroupOutput>> {
        self.execs.get_mut(exec as usize)?.output.take()
    }

    /// Next message to send.
    pub fn poll_transmit(&mut self) -> Option<(PartyId, Msg)> {
        self.outbox.pop_front()
    }

    /// Aborts locally (timeout, shutdown) and tells the peers.
    pub fn abort_local(&mut self, why: &str) -> Abort {
        self.fail(Abort::Local(why.to_string()))
    }

    fn check_live(&self) -> Result<(), Error> {
        match &self.aborted {
            Some(a) => Err(Error::Abort(a.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, a: Abort) -> Abort {
        if self.aborted.is_none() {
            tracing::warn!(role = self.id, abort = %a, "mpc session aborted");
            if !matches!(a, Abort::PeerAborted { .. }) {
                self.outbox.clear();
                for p in 0..3u8 {
                    if p != self.id {
                        self.outbox.push_back((p, Msg::Abort(a.code())));
                    }
                }
            }
            self.aborted = Some(a.clone());
        }
        a
    }

    fn guard<T>(&mut self, r: Result<T, Abort>) -> Result<T, Error> {
        r.map_err(|a| Error::Abort(self.fail(a)))
    }

    /// Registers the next execution (its id is returned). Garblers garble it in
    /// [`Party::poll_work`] as soon as the seed is ready; no inputs are needed.
    pub fn preprocess(&mut self, spec: Arc<ExecSpec>) -> Result<ExecId, Error> {
        self.check_live()?;
        let id = self.execs.len() as ExecId;
        for (gi, g) in spec.inputs().iter().enumerate() {
            let kept = match g.source {
                InputSource::Kept { exec, group } => Some((exec, group, 0)),
                InputSource::KeptPart {
                    exec,
                    group,
                    offset,
                } => Some((exec, group, offset)),
                _ => None,
            };
            if let Some((exec, group, offset)) = kept {
                let whole = matches!(g.source, InputSource::Kept { .. });
                let bad = |why| {
                    Error::Spec(SpecError::BadKept {
                        group: gi,
                        from: exec,
                        why,
                    })
                };
                let src = self
                    .execs
                    .get(exec as usize)
                    .ok_or_else(|| bad("no such earlier execution"))?;
                let og = src
                    .spec
                    .outputs()
                    .get(group)
                    .ok_or_else(|| bad("no such output group"))?;
                if og.to != OutputTo::Keep {
                    return Err(bad("that output group is not kept"));
                }
                if src.skipped {
                    return Err(bad("that execution was skipped"));
                }
                if whole && og.width != g.width {
                    return Err(bad("widths differ"));
                }
                if !whole
                    && offset
                        .checked_add(g.width)
                        .map_or(true, |end| end > og.width)
                {
                    return Err(bad("the part lies outside the group"));
                }
            }
        }
        let plan = Plan::new(&spec);
        self.execs.push(Exec {
            spec,
            plan,
            started: false,
            skipped: false,
            public: None,
            g: GState::default(),
            e: EState::default(),
            output: None,
        });
        if let Some(msgs) = self.early.remove(&id) {
            self.early_count -= msgs.len();
            for (from, m) in msgs {
                self.handle_msg(from, m)?;
            }
        }
        Ok(id)
    }

    /// Gives up execution `exec`, registered but never to be started (for example the
    /// executions of a protocol branch the session did not take). Every party must skip the
    /// same executions: the evaluator then no longer waits for it before evaluating later
    /// ones, garblers drop (or never garble) its tables, and tables that arrive for it are
    /// dropped. A skipped execution cannot be started, nor its kept outputs used; an
    /// execution that takes kept outputs from it must be skipped too.
    pub fn skip(&mut self, exec: ExecId) -> Result<(), Error> {
        self.check_live()?;
        let x = self
            .execs
            .get_mut(exec as usize)
            .ok_or_else(|| Error::Usage(format!("execution {exec} was not preprocessed")))?;
        if x.started {
            return Err(Error::Usage(format!(
                "execution {exec} started: it cannot be skipped"
            )));
        }
        x.skipped = true;
        x.g.tables = None;
        x.e.garbled = None;
        x.release();
        x.g.out_zero = Default::default();
        x.e.out = Default::default();
        Ok(())
    }

    /// Supplies this party's inputs to execution `exec` and starts its online phase.
    pub fn start<R: RngCore + CryptoRng>(
        &mut self,
        exec: ExecId,
        inputs: Inputs,
        rng: &mut R,
    ) -> Result<(), Error> {
        self.check_live()?;
        let id = self.id;
        let x = self
            .execs
            .get_mut(exec as usize)
            .ok_or_else(|| Error::Usage(format!("execution {exec} was not preprocessed")))?;
        if x.started {
            return Err(Error::Usage(format!("execution {exec} already started")));
        }
        if x.skipped {
            return Err(Error::Usage(format!("execution {exec} was skipped")));
        }
        // Map the caller's groups onto this party's slots, checking they match exactly.
        // Slot ranges index evaluator wires (evaluator) or virtual wires (garbler).
        let slots = &x.plan.slots[id as usize];
        let n = if id == EVALUATOR {
            x.plan.ewires.len()
        } else {
            x.plan.vws[id as usize].len()
        };
        let mut vals = Zeroizing::new(vec![false; n]);
        let mut used_values = 0;
        let mut used_pads = 0;
        for (slot, range) in slots {
            let dst = &mut vals[range.start as usize..range.end as usize];
            let src: Option<&Vec<bool>> = match *slot {
                Slot::Input(gi) => {
                    used_values += 1;
                    Some(inputs.values.get(&gi).ok_or_else(|| {
                        Error::Usage(format!("execution {exec}: missing input group {gi}"))
                    })?)
                }
                Slot::Pad(oi) if x.spec.outputs()[oi].to == OutputTo::Client => {
                    used_pads += 1;
                    Some(inputs.pads.get(&oi).ok_or_else(|| {
                        Error::Usage(format!(
                            "execution {exec}: missing client pad for output group {oi}"
                        ))
                    })?)
                }
                Slot::Pad(_) => None,
            };
            match src {
                Some(bits) if bits.len() != dst.len() => {
                    return Err(Error::Usage(format!(
                        "execution {exec}: {slot:?} takes {} bits, got {}",
                        dst.len(),
                        bits.len()
                    )))
                }
                Some(bits) => dst.copy_from_slice(bits),
                None => dst.iter_mut().for_each(|b| *b = rng.next_u32() & 1 == 1),
            }
        }
        // Public groups: every party supplies the value.
        let mut public = vec![false; x.plan.n_public as usize];
        for (gi, range) in &x.plan.public {
            used_values += 1;
            let bits = inputs.values.get(gi).ok_or_else(|| {
                Error::Usage(format!(
                    "execution {exec}: missing public input group {gi} (every party supplies \
                     the value of a public group)"
                ))
            })?;
            let dst = &mut public[range.start as usize..range.end as usize];
            if bits.len() != dst.len() {
                return Err(Error::Usage(format!(
                    "execution {exec}: public input group {gi} takes {} bits, got {}",
                    dst.len(),
                    bits.len()
                )));
            }
            dst.copy_from_slice(bits);
        }
        if used_values != inputs.values.len() || used_pads != inputs.pads.len() {
            return Err(Error::Usage(format!(
                "execution {exec}: inputs given for groups party {id} does not supply"
            )));
        }
        x.started = true;
        x.public = Some(public);
        if id == EVALUATOR {
            let share0: Zeroizing<Vec<bool>> =
                Zeroizing::new((0..n).map(|_| rng.next_u32() & 1 == 1).collect());
            let share1: Vec<bool> = vals.iter().zip(share0.iter()).map(|(v, s)| v ^ s).collect();
            self.outbox.push_back((
                GARBLER_0,
                Msg::InputShares {
                    exec,
                    bits: Bits::from_bools(&share0),
                },
            ));
            self.outbox.push_back((
                GARBLER_1,
                Msg::InputShares {
                    exec,
                    bits: Bits::from_bools(&share1),
                },
            ));
            x.e.values = Some((vals, share0));
        } else {
            // Values of own virtual wires; evaluator-share wires take the shares later.
            x.g.own = Some(vals);
            self.try_send_labels(exec);
            self.try_send_public(exec);
        }
        Ok(())
    }

    /// Decodes and handles a message from peer `from` (as authenticated by the transport).
    pub fn handle(&mut self, from: PartyId, bytes: &[u8]) -> Result<(), Error> {
        self.check_live()?;
        self.handle_decoded(from, Msg::decode(bytes))
    }

    /// [`Party::handle`] taking the buffer: garbled tables are kept in it, not copied out.
    pub fn handle_owned(&mut self, from: PartyId, bytes: Vec<u8>) -> Result<(), Error> {
        self.check_live()?;
        self.handle_decoded(from, Msg::decode_owned(bytes))
    }

    fn handle_decoded(
        &mut self,
        from: PartyId,
        m: Result<Msg, crate::msg::DecodeError>,
    ) -> Result<(), Error> {
        let m = m.map_err(|e| Abort::Malformed {
            party: from,
            what: e.0,
        });
        let m = self.guard(m)?;
        self.handle_msg(from, m)
    }

    /// Handles an already-decoded message from peer `from`.
    pub fn handle_msg(&mut self, from: PartyId, m: Msg) -> Result<(), Error> {
        self.check_live()?;
        let r = self.handle_inner(from, m);
        self.guard(r)
    }

    fn handle_inner(&mut self, from: PartyId, m: Msg) -> Result<(), Abort> {
        let unexpected = |m: &Msg| Abort::Unexpected {
            party: from,
            kind: m.kind(),
        };
        if from as usize >= 3 || from == self.id {
            return Err(unexpected(&m));
        }
        if let Msg::Abort(reason) = m {
            return Err(Abort::PeerAborted {
                party: from,
                reason,
            });
        }
        if let Some(exec) = m.exec() {
            if exec as usize >= self.execs.len() {
                // A peer ahead of us: keep it until we preprocess that execution.
                if self.early_count >= MAX_EARLY_MESSAGES {
                    return Err(unexpected(&m));
                }
                self.early_count += 1;
                self.early.entry(exec).or_default().push((from, m));
                return Ok(());
            }
        }
        match (self.id, from, m) {
            (GARBLER_1, GARBLER_0, Msg::SeedCommit(c)) => {
                let Seed::G1AwaitCommit(mine) = &self.seed else {
                    return Err(Abort::Unexpected {
                        party: from,
                        kind: "SeedCommit",
                    });
                };
                let mine = mine.clone();
                self.outbox.push_back((GARBLER_0, Msg::SeedShare(*mine)));
                self.seed = Seed::G1AwaitOpen { commit: c, mine };
                Ok(())
            }
            (GARBLER_0, GARBLER_1, Msg::SeedShare(theirs)) => {
                let Seed::G0Committed(mine) = &self.seed else {
                    return Err(Abort::Unexpected {
                        party: from,
                        kind: "SeedShare",
                    });
                };
                let mine = mine.clone();
                self.outbox.push_back((GARBLER_1, Msg::SeedOpen(*mine)));
                self.seed = ready_seed(&mine, &theirs);
                Ok(())
            }
            (GARBLER_1, GARBLER_0, Msg::SeedOpen(opened)) => {
                let Seed::G1AwaitOpen { commit, mine } = &self.seed else {
                    return Err(Abort::Unexpected {
                        party: from,
                        kind: "SeedOpen",
                    });
                };
                if !bool::from(seed_commit(&opened).ct_eq(commit)) {
                    return Err(Abort::SeedCommitment { party: from });
                }
                self.seed = ready_seed(&opened, mine);
                Ok(())
            }
            (EVALUATOR, g, Msg::Garbled { exec, .. } | Msg::GarbledDigest { exec, .. })
                if self.execs[exec as usize].skipped && g < 2 =>
            {
                // Sent before the garbler skipped it too.
                Ok(())
            }
            (EVALUATOR, g, m @ Msg::Garbled { exec, .. }) if g == table_sender(exec) => {
                let x = &mut self.execs[exec as usize];
                if x.e.garbled.is_some() || x.e.verified {
                    return Err(unexpected(&m));
                }
                let Msg::Garbled {
                    tables,
                    roots,
                    decode,
                    ..
                } = m
                else {
                    return Err(unexpected(&m));
                };
                x.e.garbled = Some((tables, roots, decode));
                Ok(())
            }
            (EVALUATOR, g, m @ Msg::GarbledDigest { exec, digest })
                if g != table_sender(exec) && g != EVALUATOR =>
            {
                let x = &mut self.execs[exec as usize];
                if x.e.digest.is_some() {
                    return Err(unexpected(&m));
                }
                x.e.digest = Some(digest);
                Ok(())
            }
            (EVALUATOR, g, m @ Msg::InputLabels { exec, .. }) if g < 2 => {
                let x = &mut self.execs[exec as usize];
                if x.e.labels[g as usize].is_some() || !x.started || x.e.evaluated {
                    return Err(unexpected(&m));
                }
                let Msg::InputLabels { entries, .. } = m else {
                    return Err(unexpected(&m));
                };
                if entries.len() != 32 * x.plan.vws[g as usize].len() {
                    return Err(Abort::Malformed {
                        party: from,
                        what: "wrong number of input labels",
                    });
                }
                x.e.labels[g as usize] = Some(Zeroizing::new(entries));
                Ok(())
            }
            (EVALUATOR, GARBLER_0, m @ Msg::PublicLabels { exec, .. }) => {
                let x = &mut self.execs[exec as usize];
                if x.plan.n_public == 0 || x.e.public_labels.is_some() || x.e.evaluated {
                    return Err(unexpected(&m));
                }
                let Msg::PublicLabels { labels, .. } = m else {
                    return Err(unexpected(&m));
                };
                if labels.len() != 16 * x.plan.n_public as usize {
                    return Err(Abort::Malformed {
                        party: from,
                        what: "wrong number of public labels",
                    });
                }
                x.e.public_labels = Some(Zeroizing::new(labels));
                Ok(())
            }
            (EVALUATOR, GARBLER_1, m @ Msg::PublicDigest { exec, digest }) => {
                let x = &mut self.execs[exec as usize];
                if x.plan.n_public == 0 || x.e.public_digest.is_some() || x.e.evaluated {
                    return Err(unexpected(&m));
                }
                x.e.public_digest = Some(digest);
                Ok(())
            }
            (g, EVALUATOR, m @ Msg::InputShares { exec, .. }) if g < 2 => {
                let x = &mut self.execs[exec as usize];
                if x.g.eshares.is_some() || x.g.revealed {
                    return Err(unexpected(&m));
                }
                let Msg::InputShares { bits, .. } = m else {
                    return Err(unexpected(&m));
                };
                if bits.len() != x.plan.ewires.len() {
                    return Err(Abort::Malformed {
                        party: from,
                        what: "wrong number of input shares",
                    });
                }
                x.g.eshares = Some(Zeroizing::new(bits.to_bools()));
                self.try_send_labels(exec);
                Ok(())
            }
            (g, EVALUATOR, m @ Msg::Reveal { exec, .. }) if g < 2 => {
                let x = &self.execs[exec as usize];
                if !x.g.labels_sent || x.g.revealed {
                    return Err(unexpected(&m));
                }
                let Msg::Reveal { colours, tag, .. } = m else {
                    return Err(unexpected(&m));
                };
                self.garbler_reveal(exec, &colours, &tag)
            }
            (_, _, m) => Err(unexpected(&m)),
        }
    }

    /// Does one unit of heavy local work (garbling, hashing, verifying, evaluating), if any is
    /// ready. Call until it returns `Ok(None)`.
    pub fn poll_work(&mut self) -> Result<Option<Work>, Error> {
        self.check_live()?;
        let r = if self.id == EVALUATOR {
            self.evaluator_work()
        } else {
            self.garbler_work()
        };
        self.guard(r)
    }

    fn garbler_work(&mut self) -> Result<Option<Work>, Abort> {
        let Seed::Ready { seed, delta } = &self.seed else {
            return Ok(None);
        };
        while self.execs.get(self.next_work).is_some_and(|x| x.skipped) {
            self.next_work += 1;
        }
        let k = self.next_work;
        if k >= self.execs.len() {
            return Ok(None);
        }
        let exec = k as ExecId;
        if !self.execs[k].g.garbled {
            let (seed, delta) = (seed.clone(), delta.clone());
            let and_gates = self.garble_exec(exec, &seed, &delta)?;
            return Ok(Some(Work::Garbled { exec, and_gates }));
        }
        // Ship or digest the tables, then move on.
        let fp = *self.execs[k].spec.fingerprint();
        let x = &mut self.execs[k];
        // Garbling stores the tables and only this step takes them, so they are here.
        let Some((tables, roots, decode)) = x.g.tables.take() else {
            return Err(Abort::Local(format!(
                "internal error: tables of execution {exec} vanished before shipping"
            )));
        };
        self.next_work += 1;
        let work = if table_sender(exec) == self.id {
            self.outbox.push_back((
                EVALUATOR,
                Msg::Garbled {
                    exec,
                    tables,
                    roots,
                    decode,
                },
            ));
            Work::Shipped { exec }
        } else {
            let digest = table_digest(exec, &fp, &tables, &roots, &decode);
            self.outbox
                .push_back((EVALUATOR, Msg::GarbledDigest { exec, digest }));
            Work::Digested { exec }
        };
        self.try_send_labels(exec);
        self.try_send_public(exec);
        Ok(Some(work))
    }

    fn garble_exec(
        &mut self,
        exec: ExecId,
        seed: &[u8; 32],
        delta: &Delta,
    ) -> Result<usize, Abort> {
        let me = self.id as usize;
        let (before, rest) = self.execs.split_at_mut(exec as usize);
        let x = &mut rest[0];
        let mut key = Zeroizing::new([0u8; 32]);
        {
            let mut h = hasher!("tessera mpc exec labels v1");
            h.update(seed);
            h.update(&exec.to_le_bytes());
            key.copy_from_slice(h.finalize().as_bytes());
        }
        let mut rng = ChaCha20Rng::from_seed(*key);
        let plan = &x.plan;
        let vw_zero: [Zeroizing<Vec<Label>>; 2] = [
            Zeroizing::new(
                (0..plan.vws[0].len())
                    .map(|_| Label::random(&mut rng))
                    .collect(),
            ),
            Zeroizing::new(
                (0..plan.vws[1].len())
                    .map(|_| Label::random(&mut rng))
                    .collect(),
            ),
        ];
        let pub_zero = public_zero_labels(seed, exec, plan.n_public as usize);
        let resolve =
            |c: &Contrib| resolve_label(c, &vw_zero, &pub_zero, before, |x| &x.g.out_zero);
        let input_zero: Zeroizing<Vec<Label>> =
            Zeroizing::new(plan.inputs.iter().map(resolve).collect());
        let circuit = x.spec.circuit().clone();
        // Room for the message header in front, so shipping needs no second buffer.
        let mut tables =
            Vec::with_capacity(garble::table_len(&circuit) + Msg::garbled_header_len(&circuit));
        // Sizes come from the plan, which matches the circuit by construction; a mismatch
        // would be a bug here, reported as a local abort rather than a panic.
        let out_zero = garble::garble(&circuit, delta, &input_zero, u64::from(exec), &mut tables)
            .map_err(|e| {
            Abort::Local(format!("internal error garbling execution {exec}: {e}"))
        })?;
        let mut out_zero = Zeroizing::new(out_zero);
        let mut decode = Vec::new();
        let mut pad_i = 0;
        for (gi, g) in x.spec.outputs().iter().enumerate() {
            let range = x.spec.output_range(gi);
            for o in range {
                if g.to.masked() {
                    out_zero[o] ^= resolve(&plan.pads[pad_i]);
                    pad_i += 1;
                }
                if evaluator_decodes(g.to) {
                    decode.push(out_zero[o].colour());
                }
            }
        }
        let mut roots = [[0u8; 32]; 2];
        let mut my_coms = Vec::new();
        for owner in 0..2u8 {
            let coms: Vec<[[u8; 16]; 2]> = plan.vws[owner as usize]
                .iter()
                .enumerate()
                .map(|(i, kind)| {
                    let l0 = vw_zero[owner as usize][i];
                    let l1 = delta.select(l0, true);
                    let c0 = commitment(exec, owner, i as u32, l0);
                    let c1 = commitment(exec, owner, i as u32, l1);
                    match kind {
                        VwKind::Own if l0.colour() => [c1, c0],
                        _ => [c0, c1],
                    }
                })
                .collect();
            roots[owner as usize] = commitment_root(exec, owner, &coms);
            if owner as usize == me {
                my_coms = coms;
            }
        }
        let and_gates = circuit.and_count();
        x.g = GState {
            garbled: true,
            vw_zero,
            coms: my_coms,
            pub_zero,
            out_zero,
            tables: Some((tables, roots, Bits::from_bools(&decode))),
            own: x.g.own.take(),
            eshares: x.g.eshares.take(),
            labels_sent: false,
            public_sent: false,
            revealed: false,
        };
        Ok(and_gates)
    }

    fn try_send_labels(&mut self, exec: ExecId) {
        let Seed::Ready { delta, .. } = &self.seed else {
            return;
        };
        let g = self.id as usize;
        let x = &mut self.execs[exec as usize];
        let (Some(own), Some(eshares)) = (&x.g.own, &x.g.eshares) else {
            return;
        };
        if !x.g.garbled || x.g.labels_sent {
            return;
        }
        let mut entries = Zeroizing::new(Vec::with_capacity(32 * x.plan.vws[g].len()));
        for (i, kind) in x.plan.vws[g].iter().enumerate() {
            let bit = match kind {
                VwKind::Own => own[i],
                VwKind::EShare(e) => eshares[*e as usize],
            };
            let l = delta.select(x.g.vw_zero[g][i], bit);
            let other_slot = match kind {
                VwKind::Own => !l.colour(),
                VwKind::EShare(_) => !bit,
            };
            entries.extend_from_slice(&l.to_bytes());
            entries.extend_from_slice(&x.g.coms[i][usize::from(other_slot)]);
        }
        x.g.labels_sent = true;
        self.outbox.push_back((
            EVALUATOR,
            Msg::InputLabels {
                exec,
                entries: entries.to_vec(),
            },
        ));
    }

    /// Garbler 0 sends the active labels of the public wires, garbler 1 its digest of them,
    /// once the execution is garbled and this garbler has its copy of the values.
    fn try_send_public(&mut self, exec: ExecId) {
        let Seed::Ready { delta, .. } = &self.seed else {
            return;
        };
        let x = &mut self.execs[exec as usize];
        if x.plan.n_public == 0 || !x.g.garbled || x.g.public_sent || x.public.is_none() {
            return;
        }
        // Neither the values nor the zero-labels are needed once the message is out.
        let values = x.public.take().unwrap_or_default();
        let mut labels = Vec::with_capacity(16 * values.len());
        for (z, &v) in x.g.pub_zero.iter().zip(&values) {
            labels.extend_from_slice(&delta.select(*z, v).to_bytes());
        }
        x.g.public_sent = true;
        x.g.pub_zero = Zeroizing::default();
        let msg = if self.id == GARBLER_0 {
            Msg::PublicLabels { exec, labels }
        } else {
            let digest = public_digest(exec, x.spec.fingerprint(), &values, &labels);
            labels.zeroize();
            Msg::PublicDigest { exec, digest }
        };
        self.outbox.push_back((EVALUATOR, msg));
    }

    fn garbler_reveal(
        &mut self,
        exec: ExecId,
        colours: &Bits,
        tag: &[u8; 32],
    ) -> Result<(), Abort> {
        let Seed::Ready { delta, .. } = &self.seed else {
            return Err(Abort::Unexpected {
                party: EVALUATOR,
                kind: "Reveal",
            });
        };
        let me = self.id;
        let x = &mut self.execs[exec as usize];
        let colours = colours.to_bools();
        let mut labels = Zeroizing::new(Vec::new());
        let mut values = Vec::new();
        for (gi, g) in x.spec.outputs().iter().enumerate() {
            if revealed_to(g.to, me) {
                for o in x.spec.output_range(gi) {
                    let Some(&c) = colours.get(values.len()) else {
                        return Err(Abort::Malformed {
                            party: EVALUATOR,
                            what: "too few output colours",
                        });
                    };
                    let z = x.g.out_zero[o];
                    let v = c ^ z.colour();
                    labels.push(delta.select(z, v));
                    values.push(v);
                }
            }
        }
        if values.len() != colours.len() {
            return Err(Abort::Malformed {
                party: EVALUATOR,
                what: "too many output colours",
            });
        }
        if !bool::from(reveal_tag(exec, me, &labels).ct_eq(tag)) {
            return Err(Abort::InvalidOutputLabel {
                exec,
                party: EVALUATOR,
            });
        }
        // Assemble this garbler's outputs.
        let mut outputs = Vec::with_capacity(x.spec.outputs().len());
        let mut vi = 0;
        for (gi, g) in x.spec.outputs().iter().enumerate() {
            let w = g.width;
            let out = match g.to {
                t if !revealed_to(t, me) => GroupOutput::Hidden,
                OutputTo::Shares => {
                    let m = &values[vi..vi + w];
                    vi += w;
                    let pad = own_pad(&x.plan, x.g.own.as_ref().map(|v| &v[..]), me, gi);
                    if me == GARBLER_0 {
                        GroupOutput::Share(m.iter().zip(&pad).map(|(a, b)| a ^ b).collect())
                    } else {
                        GroupOutput::Share(pad)
                    }
                }
                OutputTo::Client => {
                    vi += w;
                    GroupOutput::Masked(values[vi - w..vi].to_vec())
                }
                _ => {
                    vi += w;
                    GroupOutput::Value(values[vi - w..vi].to_vec())
                }
            };
            outputs.push(out);
        }
        values.iter_mut().for_each(Zeroize::zeroize);
        x.g.revealed = true;
        x.output = Some(outputs);
        x.release();
        Ok(())
    }

    fn evaluator_work(&mut self) -> Result<Option<Work>, Abort> {
        // Verify any garbled circuit whose tables and digest are both here.
        for k in self.next_work..self.execs.len() {
            let x = &mut self.execs[k];
            let exec = k as ExecId;
            if x.e.verified || x.skipped {
                continue;
            }
            if let (Some((tables, roots, decode)), Some(digest)) = (&x.e.garbled, &x.e.digest) {
                let sender = table_sender(exec);
                let mismatch = Abort::TableMismatch {
                    exec,
                    sender,
                    other: 1 - sender,
                };
                let got = table_digest(exec, x.spec.fingerprint(), tables, roots, decode);
                if !bool::from(got.ct_eq(digest)) {
                    return Err(mismatch);
                }
                // Both garblers agree, so at least the honest one produced this: the shape
                // can only be wrong if the parties disagree on the circuit itself.
                let n_decode = x
                    .spec
                    .outputs()
                    .iter()
                    .filter(|g| evaluator_decodes(g.to))
                    .map(|g| g.width)
                    .sum::<usize>();
                if tables.len() != table_len(x.spec.circuit()) || decode.len() != n_decode {
                    return Err(mismatch);
                }
                x.e.verified = true;
                return Ok(Some(Work::Verified { exec }));
            }
        }
        // Evaluate the next execution in order once everything it needs is here.
        while self.execs.get(self.next_work).is_some_and(|x| x.skipped) {
            self.next_work += 1;
        }
        let k = self.next_work;
        let Some(x) = self.execs.get(k) else {
            return Ok(None);
        };
        let public_here =
            x.plan.n_public == 0 || (x.e.public_labels.is_some() && x.e.public_digest.is_some());
        if !(x.e.verified
            && x.e.values.is_some()
            && x.e.labels.iter().all(Option::is_some)
            && public_here)
        {
            return Ok(None);
        }
        let and_gates = self.evaluate_exec(k as ExecId)?;
        self.next_work += 1;
        Ok(Some(Work::Evaluated {
            exec: k as ExecId,
            and_gates,
        }))
    }

    fn evaluate_exec(&mut self, exec: ExecId) -> Result<usize, Abort> {
        let (before, rest) = self.execs.split_at_mut(exec as usize);
        let x = &mut rest[0];
        let plan = &x.plan;
        let (Some((tables, roots, decode)), Some((values, share0))) = (&x.e.garbled, &x.e.values)
        else {
            return Ok(0);
        };
        // Public labels: garbler 0's labels must hash, with this party's copy of the values,
        // to garbler 1's digest.
        let mut public = Zeroizing::new(Vec::with_capacity(plan.n_public as usize));
        if plan.n_public > 0 {
            let (Some(labels), Some(digest), Some(values)) =
                (&x.e.public_labels, &x.e.public_digest, &x.public)
            else {
                return Ok(0);
            };
            let got = public_digest(exec, x.spec.fingerprint(), values, labels);
            if !bool::from(got.ct_eq(digest)) {
                return Err(Abort::PublicInputMismatch {
                    exec,
                    sender: GARBLER_0,
                    other: GARBLER_1,
                });
            }
            public.extend(labels.chunks_exact(16).map(|c| {
                let mut b = [0u8; 16];
                b.copy_from_slice(c);
                Label::from_bytes(b)
            }));
        }
        // Check every input label against the committed pairs and collect the active labels.
        let mut active: [Zeroizing<Vec<Label>>; 2] = Default::default();
        for g in 0..2u8 {
            let entries = x.e.labels[g as usize]
                .as_deref()
                .map_or(&[][..], |v| &v[..]);
            let mut coms = Vec::with_capacity(plan.vws[g as usize].len());
            for (i, kind) in plan.vws[g as usize].iter().enumerate() {
                let e = &entries[32 * i..32 * i + 32];
                let mut lb = [0u8; 16];
                lb.copy_from_slice(&e[..16]);
                let l = Label::from_bytes(lb);
                let mut other = [0u8; 16];
                other.copy_from_slice(&e[16..]);
                let slot = match kind {
                    VwKind::Own => l.colour(),
                    VwKind::EShare(w) => {
                        let w = *w as usize;
                        if g == 0 {
                            share0[w]
                        } else {
                            share0[w] ^ values[w]
                        }
                    }
                };
                let mine = commitment(exec, g, i as u32, l);
                coms.push(if slot { [other, mine] } else { [mine, other] });
                active[g as usize].push(l);
            }
            let root = commitment_root(exec, g, &coms);
            if !bool::from(root.ct_eq(&roots[g as usize])) {
                return Err(Abort::InvalidInputLabel { exec, party: g });
            }
        }
        let resolve = |c: &Contrib| resolve_label(c, &active, &public, before, |x| &x.e.out);
        let inputs: Zeroizing<Vec<Label>> =
            Zeroizing::new(plan.inputs.iter().map(resolve).collect());
        let circuit = x.spec.circuit().clone();
        let out = garble::evaluate(&circuit, &inputs, tables, u64::from(exec)).map_err(|_| {
            Abort::Malformed {
                party: table_sender(exec),
                what: "garbled tables have the wrong size",
            }
        })?;
        let mut out = Zeroizing::new(out);
        let decode = decode.to_bools();
        let mut di = 0;
        let mut pad_i = 0;
        let mut outputs = Vec::new();
        let mut reveal: [(Vec<bool>, Zeroizing<Vec<Label>>); 2] = Default::default();
        for (gi, g) in x.spec.outputs().iter().enumerate() {
            let range = x.spec.output_range(gi);
            let mut vals = Vec::new();
            for o in range.clone() {
                if g.to.masked() {
                    out[o] ^= resolve(&plan.pads[pad_i]);
                    pad_i += 1;
                }
                if evaluator_decodes(g.to) {
                    vals.push(out[o].colour() ^ decode[di]);
                    di += 1;
                }
                for (gb, r) in reveal.iter_mut().enumerate() {
                    if revealed_to(g.to, gb as PartyId) {
                        r.0.push(out[o].colour());
                        r.1.push(out[o]);
                    }
                }
            }
            outputs.push(match g.to {
                OutputTo::All | OutputTo::Party(EVALUATOR) => GroupOutput::Value(vals),
                OutputTo::Client => GroupOutput::Masked(vals),
                OutputTo::Shares => {
                    vals.iter_mut().for_each(Zeroize::zeroize);
                    GroupOutput::Share(own_pad(plan, Some(&values[..]), EVALUATOR, gi))
                }
                _ => GroupOutput::Hidden,
            });
        }
        for (gb, (colours, labels)) in reveal.iter().enumerate() {
            let gb = gb as PartyId;
            self.outbox.push_back((
                gb,
                Msg::Reveal {
                    exec,
                    colours: Bits::from_bools(colours),
                    tag: reveal_tag(exec, gb, labels),
                },
            ));
        }
        x.e.out = out;
        x.e.evaluated = true;
        x.e.labels = Default::default();
        x.e.public_labels = None;
        x.public = None;
        x.e.garbled = None;
        x.output = Some(outputs);
        x.release();
        Ok(circuit.and_count())
    }

    /// How many wire labels this party still holds over all executions (input, public and
    /// output labels): what a long session's memory grows with.
    pub fn held_labels(&self) -> usize {
        self.execs
            .iter()
            .map(|x| {
                x.g.vw_zero.iter().map(|v| v.len()).sum::<usize>()
                    + x.g.pub_zero.len()
                    + x.g.out_zero.len()
                    + x.e.out.len()
            })
            .sum()
    }
}

impl Exec {
    /// Frees what a completed execution no longer needs: its plan, its input-side labels
    /// and values, and its output labels unless a later execution may take a kept group
    /// from them. Messages for it after this are refused as before (each handler checks
    /// that its step is still open first).
    fn release(&mut self) {
        self.plan = Plan::empty();
        self.g.vw_zero = Default::default();
        self.g.coms = Vec::new();
        self.g.pub_zero = Default::default();
        self.g.own = None;
        self.g.eshares = None;
        self.e.values = None;
        if !self.spec.outputs().iter().any(|g| g.to == OutputTo::Keep) {
            self.g.out_zero = Default::default();
            self.e.out = Default::default();
        }
    }
}

/// The label (zero-label for garblers, active label for the evaluator) of one circuit input or
/// pad: the XOR of its virtual wires' labels, a public wire's label, or a kept output label of
/// an earlier execution.
fn resolve_label(
    c: &Contrib,
    vws: &[Zeroizing<Vec<Label>>; 2],
    public: &[Label],
    before: &[Exec],
    kept: impl Fn(&Exec) -> &[Label],
) -> Label {
    match *c {
        Contrib::Vws { n, v } => v[..n as usize]
            .iter()
            .fold(Label::default(), |acc, &(o, i)| {
                acc ^ vws[o as usize][i as usize]
            }),
        Contrib::Public(i) => public[i as usize],
        Contrib::Kept { exec, group, bit } => {
            let src = &before[exec as usize];
            let start = src.spec.output_range(group as usize).start;
            kept(src)[start + bit as usize]
        }
    }
}

/// This party's pad bits for (masked) output group `gi`, from its slot values (indexed by
/// evaluator wire for the evaluator, by virtual wire for a garbler).
fn own_pad(plan: &Plan, vals: Option<&[bool]>, party: PartyId, gi: usize) -> Vec<bool> {
    let Some(vals) = vals else {
        return Vec::new();
    };
    plan.slots[party as usize]
        .iter()
        .filter(|(s, _)| *s == Slot::Pad(gi))
        .flat_map(|(_, r)| r.clone())
        .map(|i| vals[i as usize])
        .collect()
}

/// Zero-labels of the `n` public wires of `exec`: wire `i` takes bytes `16i..16i + 16` of a
/// ChaCha20 stream keyed, in its own domain, by the garbling seed and the execution id. Both
/// garblers derive the same labels; no other derivation uses this domain.
fn public_zero_labels(seed: &[u8; 32], exec: ExecId, n: usize) -> Zeroizing<Vec<Label>> {
    if n == 0 {
        return Zeroizing::default();
    }
    let mut key = Zeroizing::new([0u8; 32]);
    let mut h = hasher!("tessera mpc public labels v1");
    h.update(seed);
    h.update(&exec.to_le_bytes());
    key.copy_from_slice(h.finalize().as_bytes());
    let mut rng = ChaCha20Rng::from_seed(*key);
    let mut bytes = Zeroizing::new(vec![0u8; 16 * n]);
    rng.fill_bytes(&mut bytes);
    Zeroizing::new(
        bytes
            .chunks_exact(16)
            .map(|c| {
                let mut b = [0u8; 16];
                b.copy_from_slice(c);
                let l = Label::from_bytes(b);
                b.zeroize();
                l
            })
            .collect(),
    )
}

/// Garbler 1's digest of the public wires of `exec`: their values and active labels, bound to
/// the execution and its spec. One bulk hash; the evaluator recomputes it over garbler 0's
/// labels and its own copy of the values.
fn public_digest(exec: ExecId, fingerprint: &[u8; 32], values: &[bool], labels: &[u8]) -> [u8; 32] {
    let mut h = hasher!("tessera mpc public labels digest v1");
    h.update(&exec.to_le_bytes());
    h.update(fingerprint);
    h.update(&(values.len() as u64).to_le_bytes());
    h.update(&crate::circuit::bits_to_bytes(values));
    h.update(labels);
    *h.finalize().as_bytes()
}

fn seed_commit(s: &[u8; 32]) -> [u8; 32] {
    let mut h = hasher!("tessera mpc seed commitment v1");
    h.update(s);
    *h.finalize().as_bytes()
}

fn ready_seed(g0: &[u8; 32], g1: &[u8; 32]) -> Seed {
    let mut h = hasher!("tessera mpc seed v1");
    h.update(g0);
    h.update(g1);
    let seed = Zeroizing::new(*h.finalize().as_bytes());
    let mut dh = hasher!("tessera mpc delta v1");
    dh.update(seed.as_ref());
    let mut d = [0u8; 16];
    d.copy_from_slice(&dh.finalize().as_bytes()[..16]);
    let delta = Delta(u128::from_le_bytes(d) | 1);
    d.zeroize();
    Seed::Ready { seed, delta }
}
