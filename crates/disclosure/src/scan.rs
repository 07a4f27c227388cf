//! The JSON scan: a lexer and path matcher over the body's bytes, written once over
//! [`Logic`] so the committee's circuit and the client's prediction of it are the same code.
//! It must never let the client choose which bytes are a field's value: the value's place
//! is a function of the body and the public paths alone.
//!
//! # What the scan proves
//!
//! The body is read byte by byte with a small state: inside a string or not, an escape
//! pending, the nesting depth, whether the last token was `{`/`[`/`,` (so the next string is
//! a key, or the next token an array element) or `:` (so the next token is a value). Over
//! that, each requested path is a chain of *nodes* (a trie: `$.user.name` and `$.user.age`
//! share `$.user`). A node is found when, inside its parent's container and at exactly the
//! parent's content depth, the key string equals its name byte for byte (a shift register
//! compares the bytes after each key's opening quote with the name and a closing quote) or,
//! in an array, the element counter equals its index; its value starts at the next token.
//! A node with children must be the container they need (object for names, array for
//! indexes). A field's value runs from its first byte to the end of its token: the closing
//! quote of a string, the matching bracket of a container, the last byte of a number or
//! literal.
//!
//! Refused, each with its own error: a duplicate of a key on a path (anywhere in that
//! object, before or after the value — JSON parsers disagree on which one counts), a key
//! with a backslash escape in an object on a path (it could be a disguised duplicate), a
//! path that does not exist, a value longer than its capacity, nesting deeper than
//! [`MAX_DEPTH`], a control character inside a string, a token after the top-level value, a
//! key not followed by `:`, a closing bracket with nothing open, and a body that ends inside
//! a string or container. Not checked (they do not change which bytes a path selects): the
//! grammar of numbers and literals, escapes other than `\"` and `\\` (an escaped character
//! is skipped whatever it is), UTF-8, whether brackets off the paths are closed by the kind
//! that opened them.
//!
//! # Positions without choice
//!
//! The value's bytes are masked by its in-value bit and folded into a buffer of its
//! capacity `W` (a power of two) at `position mod W` — XOR only, so free in the circuit;
//! its start and end positions are XOR-accumulated from one-hot events (free as well). The
//! final execution rotates the buffer by `start mod W`. The client inputs no position at
//! all.
//!
//! # Cost
//!
//! Per byte, about 90 AND gates of shared lexing, plus per path node 4 to 16 and per field
//! 16 (measured by `disclose-bench`; see docs/BENCHMARKS.md). The body is scanned in
//! executions of [`Shape::chunk`] bytes that pass the state on as kept labels; all of them
//! use one circuit per shape, so a long body costs one circuit build.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::logic::{add, const_num, eq_num_const, or_all, sub, Byte, Logic};
use crate::path::{Path, Segment};

/// Bits of the nesting depth.
pub const DEPTH_BITS: usize = 6;
/// Deepest nesting the scan follows (a body nested deeper anywhere is refused).
pub const MAX_DEPTH: usize = (1 << DEPTH_BITS) - 1;
/// Bits of a position in the body.
pub const POS_BITS: usize = 24;
/// Longest body a scan can cover, bytes.
pub const MAX_SCAN: usize = 1 << 20;
/// Capacities a value may be given (bytes of its raw JSON text), smallest first.
pub const CAPACITIES: [usize; 4] = [64, 256, 1024, 4096];
/// Most fields one scan can carry.
pub const MAX_FIELDS: usize = 8;
/// Bytes per scan execution for bodies longer than this.
pub const MAX_CHUNK: usize = 4096;
/// The byte a scan's last execution is padded with (JSON whitespace: it changes nothing in
/// a complete document).
pub const PAD: u8 = b' ';

/// The container a node's children need it to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// A JSON object (children are names).
    Object,
    /// A JSON array (children are indexes).
    Array,
}

/// A node of the path trie: the root (the whole body's value) or one step below its parent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// Parent node (`None` for the root).
    pub parent: Option<usize>,
    /// The step from the parent.
    pub step: Option<Segment>,
    /// Steps from the root (the root is 0); the node's key or element is at this depth.
    pub level: usize,
    /// The path to this node, canonical (`$` for the root).
    pub path: String,
    /// What the node's children need it to be, if it has any.
    pub kind: Option<Kind>,
    names: Vec<usize>,
    indexes: Vec<usize>,
    /// Key register length: the longest child name plus its closing quote.
    reg: usize,
    /// Element counter bits.
    cnt: usize,
}

/// A field the scan locates: its trie node and capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldShape {
    /// The node whose value it is.
    pub node: usize,
    /// Capacity `W` (one of [`CAPACITIES`]).
    pub capacity: usize,
}

/// Why a set of paths cannot be scanned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// No field.
    #[error("no path to scan for")]
    Empty,
    /// Too many fields.
    #[error("at most {MAX_FIELDS} JSON paths can be selected in one proof")]
    TooMany,
    /// A capacity not in [`CAPACITIES`].
    #[error("capacity {0} is not one of 64, 256, 1024, 4096")]
    Capacity(usize),
    /// A path named twice.
    #[error("the path {0} is selected twice")]
    Repeated(String),
    /// Two paths need one node to be an object and an array.
    #[error("the paths need {0} to be both an object (a name below it) and an array (an index below it)")]
    Conflict(String),
    /// A path longer than the nesting the scan follows.
    #[error("the path {0} is deeper than the {MAX_DEPTH} levels of nesting the circuit follows")]
    TooDeep(String),
    /// A name the scan cannot match.
    #[error("the path {0} has a name with a quote, backslash or control character: such keys cannot be selected")]
    Unmatchable(String),
    /// The chunk size does not fit the capacities.
    #[error("a scan chunk of {0} bytes does not fit the capacities")]
    Chunk(usize),
}

/// The public description of a scan: the trie of the requested paths, the fields, and the
/// bytes per execution. Every node builds the same circuit from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shape {
    nodes: Vec<Node>,
    fields: Vec<FieldShape>,
    chunk: usize,
    lay: StateLayout,
}

impl Shape {
    /// The shape for these fields (path, capacity) scanned `chunk` bytes per execution
    /// (a power of two, at least every capacity, at most [`MAX_CHUNK`]).
    pub fn new(fields: &[(Path, usize)], chunk: usize) -> Result<Shape, ShapeError> {
        if fields.is_empty() {
            return Err(ShapeError::Empty);
        }
        if fields.len() > MAX_FIELDS {
            return Err(ShapeError::TooMany);
        }
        let mut nodes = vec![Node {
            parent: None,
            step: None,
            level: 0,
            path: "$".to_string(),
            kind: None,
            names: Vec::new(),
            indexes: Vec::new(),
            reg: 0,
            cnt: 0,
        }];
        let mut by_step: BTreeMap<(usize, Segment), usize> = BTreeMap::new();
        let mut out = Vec::with_capacity(fields.len());
        for (path, capacity) in fields {
            if !CAPACITIES.contains(capacity) {
                return Err(ShapeError::Capacity(*capacity));
            }
            if !chunk.is_power_of_two() || chunk < *capacity || chunk > MAX_CHUNK {
                return Err(ShapeError::Chunk(chunk));
            }
            if path.segments().len() >= MAX_DEPTH {
                return Err(ShapeError::TooDeep(path.to_string()));
            }
            let mut at = 0usize;
            for (i, seg) in path.segments().iter().enumerate() {
                if let Segment::Name(n) = seg {
                    if n.bytes().any(|c| c == b'"' || c == b'\\' || c < 0x20) {
                        return Err(ShapeError::Unmatchable(path.to_string()));
                    }
                }
                let want = match seg {
                    Segment::Name(_) => Kind::Object,
                    Segment::Index(_) => Kind::Array,
                };
                match nodes[at].kind {
                    Some(k) if k != want => {
                        return Err(ShapeError::Conflict(nodes[at].path.clone()))
                    }
                    _ => nodes[at].kind = Some(want),
                }
                at = match by_step.get(&(at, seg.clone())) {
                    Some(&n) => n,
                    None => {
                        let n = nodes.len();
                        nodes.push(Node {
                            parent: Some(at),
                            step: Some(seg.clone()),
                            level: i + 1,
                            path: prefix_text(&path.segments()[..=i]),
                            kind: None,
                            names: Vec::new(),
                            indexes: Vec::new(),
                            reg: 0,
                            cnt: 0,
                        });
                        match seg {
                            Segment::Name(name) => {
                                nodes[at].names.push(n);
                                nodes[at].reg = nodes[at].reg.max(name.len() + 1);
                            }
                            Segment::Index(ix) => {
                                nodes[at].indexes.push(n);
                                // Enough bits to count past the largest index, plus a top bit
                                // that stops the count once it is passed.
                                let need = (64 - u64::from(*ix).leading_zeros()) as usize + 1;
                                nodes[at].cnt = nodes[at].cnt.max(need);
                            }
                        }
                        by_step.insert((at, seg.clone()), n);
                        n
                    }
                };
            }
            if out.iter().any(|f: &FieldShape| f.node == at) {
                return Err(ShapeError::Repeated(path.to_string()));
            }
            out.push(FieldShape {
                node: at,
                capacity: *capacity,
            });
        }
        let lay = StateLayout::new(&nodes, &out, chunk);
        Ok(Shape {
            nodes,
            fields: out,
            chunk,
            lay,
        })
    }

    /// Bytes per scan execution.
    pub fn chunk(&self) -> usize {
        self.chunk
    }
    /// The trie's nodes (the root first).
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    /// The fields, in request order.
    pub fn fields(&self) -> &[FieldShape] {
        &self.fields
    }
    /// Bits of the state passed from one scan execution to the next.
    pub fn state_width(&self) -> usize {
        self.lay.width
    }
    /// Deepest level a byte's depth is compared with.
    fn max_level(&self) -> usize {
        self.nodes.iter().map(|n| n.level).max().unwrap_or(0) + 1
    }
}

/// Where each part of the state is in the state's bit vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StateLayout {
    width: usize,
    nodes: Vec<NodeOff>,
    fields: Vec<FieldOff>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct NodeOff {
    base: usize,
    reg: usize,
    cnt: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FieldOff {
    base: usize,
    fold: usize,
}

// Global bits.
const S: usize = 0;
const E: usize = 1;
const A: usize = 2;
const C: usize = 3;
const STARTED: usize = 4;
const DONE: usize = 5;
const ERR_SYNTAX: usize = 6;
const ERR_DEPTH: usize = 7;
const D: usize = 8;
const POS: usize = D + DEPTH_BITS;
const GLOBAL: usize = POS + POS_BITS;
// Per node, from its base.
const ACTIVE: usize = 0;
const FOUND: usize = 1;
const PEND: usize = 2;
const OK: usize = 3;
const KIN: usize = 4;
const ERR_DUP: usize = 5;
const ERR_ESC: usize = 6;
const ERR_KIND: usize = 7;
const REG: usize = 8;
// Per field, from its base.
const RS: usize = 0;
const RC: usize = 1;
const RX: usize = 2;
const SF: usize = 3;
const EF: usize = 4;
const SPOS: usize = 5;
const EPOS: usize = SPOS + POS_BITS;
const FOLD: usize = EPOS + POS_BITS;

impl StateLayout {
    fn new(nodes: &[Node], fields: &[FieldShape], _chunk: usize) -> Self {
        let mut at = GLOBAL;
        let mut no = Vec::with_capacity(nodes.len());
        for n in nodes {
            no.push(NodeOff {
                base: at,
                reg: n.reg,
                cnt: n.cnt,
            });
            at += REG + n.reg + n.cnt;
        }
        let mut fo = Vec::with_capacity(fields.len());
        for f in fields {
            fo.push(FieldOff {
                base: at,
                fold: f.capacity * 8,
            });
            at += FOLD + f.capacity * 8;
        }
        StateLayout {
            width: at,
            nodes: no,
            fields: fo,
        }
    }
}

/// The byte classes the scan needs, from one byte (34 ANDs).
struct Classes<B> {
    quote: B,
    bs: B,
    open: B,
    close: B,
    comma: B,
    colon: B,
    ws: B,
    ctl: B,
    brace: B,
}

fn classify<L: Logic>(l: &mut L, c: &Byte<L::Bit>) -> Classes<L::Bit> {
    let [b7, b6, b5, b4, b3, b2, b1, b0] = *c;
    let (n7, n6, n5, n4, n3, n2, n1, n0) = (
        l.not(b7),
        l.not(b6),
        l.not(b5),
        l.not(b4),
        l.not(b3),
        l.not(b2),
        l.not(b1),
        l.not(b0),
    );
    // 0x00–0x3F, then 0x20–0x3F and 0x00–0x1F.
    let p = l.and(n7, n6);
    let y = l.and(p, b5);
    let ctl = l.and(p, n5);
    // 0x58–0x5F and 0x78–0x7F: brackets, braces, backslash.
    let x1 = l.and(n7, b6);
    let x2 = l.and(b4, b3);
    let x = l.and(x1, x2);
    let t1 = l.and(n2, b1); // low bits x01x
    let t2 = l.and(b2, n1); // x10x
    let t0 = l.and(n2, n1); // x00x
    let y0 = l.and(y, n0);
    let m00 = l.and(n4, n3);
    let m01 = l.and(n4, b3);
    let m11 = l.and(b4, b3);
    let y0m00 = l.and(y0, m00);
    let quote = l.and(y0m00, t1); // 0x22
    let space = l.and(y0m00, t0); // 0x20
    let y0m01 = l.and(y0, m01);
    let comma = l.and(y0m01, t2); // 0x2C
    let y0m11 = l.and(y0, m11);
    let colon = l.and(y0m11, t1); // 0x3A
    let z = l.and(ctl, m01); // 0x08–0x0F
                             // Tab 0x09, LF 0x0A, CR 0x0D: low bits 001, 010, 101 (exclusive, so XOR is OR).
    let l001 = l.and(t0, b0);
    let l010 = l.and(t1, n0);
    let l101 = l.and(t2, b0);
    let l1 = l.xor(l001, l010);
    let low = l.xor(l1, l101);
    let tab_lf_cr = l.and(z, low);
    let xt1 = l.and(x, t1);
    let open = l.and(xt1, b0); // 0x5B 0x7B
    let xt2 = l.and(x, t2);
    let close = l.and(xt2, b0); // 0x5D 0x7D
    let xt2n0 = l.and(xt2, n0);
    let bs = l.and(xt2n0, n5); // 0x5C (not 0x7C)
    let ws = l.xor(space, tab_lf_cr);
    Classes {
        quote,
        bs,
        open,
        close,
        comma,
        colon,
        ws,
        ctl,
        brace: b5,
    }
}

/// Equality of the depth with the levels `1..=max` that the scan compares it with, sharing
/// partial products.
fn depth_eq<L: Logic>(l: &mut L, d: &[L::Bit], max: usize) -> Vec<L::Bit> {
    // Products of the top bits first (memoized by value), then the bottom two bits.
    let mut memo: BTreeMap<(usize, usize), L::Bit> = BTreeMap::new();
    let mut out = vec![l.lit(false); max + 1];
    for (k, o) in out.iter_mut().enumerate().skip(1) {
        if k > MAX_DEPTH {
            break;
        }
        // prefix(b) = AND of literals of bits DEPTH_BITS-1 .. b for the value k.
        let mut acc = l.lit(true);
        for b in (0..DEPTH_BITS).rev() {
            let key = (b, k >> b);
            acc = match memo.get(&key) {
                Some(&v) => v,
                None => {
                    let lit = if (k >> b) & 1 == 1 { d[b] } else { l.not(d[b]) };
                    let v = l.and(acc, lit);
                    memo.insert(key, v);
                    v
                }
            };
        }
        *o = acc;
    }
    out
}

/// The per-execution accumulators of start and end events (reset for every execution).
struct Acc<B> {
    sloc: Vec<Vec<B>>,
    sfl: Vec<B>,
    eloc: Vec<Vec<B>>,
    efl: Vec<B>,
}

/// Bits of a position within one execution (`chunk` itself must fit: an end after the
/// last byte).
fn local_bits(chunk: usize) -> usize {
    (usize::BITS - chunk.leading_zeros()) as usize
}

/// Scans one execution's bytes: `state` (the layout of [`Shape::state_width`]) is updated in
/// place. `bytes.len()` must be [`Shape::chunk`].
pub fn scan_chunk<L: Logic>(l: &mut L, sh: &Shape, state: &mut [L::Bit], bytes: &[Byte<L::Bit>]) {
    let lb = local_bits(sh.chunk);
    let nf = sh.fields.len();
    let zero = l.lit(false);
    let mut acc = Acc {
        sloc: vec![vec![zero; lb]; nf],
        sfl: vec![zero; nf],
        eloc: vec![vec![zero; lb]; nf],
        efl: vec![zero; nf],
    };
    for (i, b) in bytes.iter().enumerate() {
        step(l, sh, state, b, i, &mut acc);
    }
    // Positions: this execution's first byte is at `pos`.
    let pos: Vec<L::Bit> = state[POS..POS + POS_BITS].to_vec();
    for (f, off) in sh.lay.fields.iter().enumerate() {
        for (flag, loc, at, fl) in [
            (acc.sfl[f], &acc.sloc[f], off.base + SPOS, off.base + SF),
            (acc.efl[f], &acc.eloc[f], off.base + EPOS, off.base + EF),
        ] {
            let mut wide = loc.clone();
            wide.resize(POS_BITS, zero);
            let abs = add(l, &pos, &wide);
            for (k, &a) in abs.iter().enumerate() {
                let g = l.and(flag, a);
                state[at + k] = l.xor(state[at + k], g);
            }
            state[fl] = l.xor(state[fl], flag);
        }
    }
    let next = crate::logic::add_const(l, &pos, sh.chunk as u64);
    state[POS..POS + POS_BITS].copy_from_slice(&next);
}

fn step<L: Logic>(
    l: &mut L,
    sh: &Shape,
    st: &mut [L::Bit],
    byte: &Byte<L::Bit>,
    local: usize,
    acc: &mut Acc<L::Bit>,
) {
    let k = classify(l, byte);
    let s = st[S];
    let e = st[E];
    let n_e = l.not(e);
    let n_s = l.not(s);
    // Strings.
    let qe = l.and(k.quote, n_e); // an unescaped quote
    let oq = l.and(qe, n_s); // opening quote
    let cq = l.xor(qe, oq); // closing quote
    let s2 = l.xor(s, qe);
    let bs_ne = l.and(k.bs, n_e);
    let e2 = l.and(bs_ne, s);
    // Tokens outside strings.
    let ope = l.and(k.open, n_s);
    let cle = l.and(k.close, n_s);
    let cma = l.and(k.comma, n_s);
    let cln = l.and(k.colon, n_s);
    let n_ws = l.not(k.ws);
    let tok = l.and(n_s, n_ws);
    let sc1 = l.xor(tok, ope);
    let sc2 = l.xor(cle, cma);
    let sc3 = l.xor(cln, oq);
    let sc4 = l.xor(sc1, sc2);
    let scal = l.xor(sc4, sc3); // a byte of a number or literal
    let open_obj = l.and(ope, k.brace);
    let open_arr = l.xor(ope, open_obj);
    let mut syntax = vec![l.and(s, k.ctl)];

    // Depth: D + 1 on an opener, D − 1 on a closer.
    let d: Vec<L::Bit> = st[D..D + DEPTH_BITS].to_vec();
    let eq = depth_eq(l, &d, sh.max_level());
    let v0 = l.xor(ope, cle);
    let mut carry = l.lit(false);
    for j in 0..DEPTH_BITS {
        let v = if j == 0 { v0 } else { cle };
        let sum = l.xor(d[j], v);
        st[D + j] = l.xor(sum, carry);
        let dc = l.xor(d[j], carry);
        let vc = l.xor(v, carry);
        let t = l.and(dc, vc);
        carry = l.xor(carry, t);
    }
    let over = l.and(ope, carry);
    let n_carry = l.not(carry);
    syntax.push(l.and(cle, n_carry)); // a closer with nothing open
                                      // Closers of the container whose content is at depth `lv`.
    let mut closes = vec![zero_bit(l); eq.len()];
    for (lv, c) in closes.iter_mut().enumerate().skip(1) {
        *c = l.and(cle, eq[lv]);
    }

    // After `{` `[` `,` / after `:`, until the next token.
    let a = st[A];
    let c = st[C];
    let n_tok = l.not(tok);
    let a_keep = l.and(a, n_tok);
    let a2 = l.xor(ope, cma);
    st[A] = l.xor(a2, a_keep);
    let c_keep = l.and(c, n_tok);
    st[C] = l.xor(cln, c_keep);
    let oq_a = l.and(oq, a); // a string where a key may be
    let c_tok = l.and(c, tok); // a value's first byte
    let n_c = l.not(c);
    let n_cln = l.not(cln);
    let tok_nc = l.and(tok, n_c);
    let not_colon = l.and(tok_nc, n_cln); // a token that is neither a value nor `:`
                                          // An array element's first byte (if in an array); only paths with indexes need it.
    let elem = if sh.nodes.iter().any(|n| !n.indexes.is_empty()) {
        let n_cle = l.not(cle);
        let a_tok = l.and(a, tok);
        l.and(a_tok, n_cle)
    } else {
        l.lit(false)
    };
    // At most one key is waiting for its value at a time, so these are exclusive.
    let mut colon_missing = l.lit(false);

    // The top-level value.
    let started = st[STARTED];
    let done = st[DONE];
    let n_started = l.not(started);
    let vs_root = l.and(tok, n_started);
    st[STARTED] = l.xor(started, vs_root);
    st[DONE] = l.xor(done, closes[1]);
    syntax.push(l.and(done, tok));

    // Nodes, in creation order: a parent's events come from its state before this byte.
    let mut vs = vec![zero_bit(l); sh.nodes.len()];
    vs[0] = vs_root;
    for (ni, node) in sh.nodes.iter().enumerate() {
        let off = sh.lay.nodes[ni];
        let b = off.base;
        // This node's own start event was computed by its parent (below) before this loop
        // reached it; the root's above.
        let v = vs[ni];
        if let Some(kind) = node.kind {
            // A container for its children: check the kind, track being inside it.
            let want = match kind {
                Kind::Object => open_obj,
                Kind::Array => open_arr,
            };
            let n_want = l.not(want);
            let bad_kind = l.and(v, n_want);
            st[b + ERR_KIND] = l.or(st[b + ERR_KIND], bad_kind);
            let active = st[b + ACTIVE];
            let lv = node.level + 1;
            let leave = l.and(active, closes[lv]);
            let t = l.xor(active, leave);
            st[b + ACTIVE] = l.xor(t, v);
            let inside = l.and(active, eq[lv]); // at this container's own depth
            if !node.names.is_empty() {
                let ks = l.and(oq_a, inside); // a key of this object starts here
                                              // Inside a key of this object: a backslash there is refused.
                let kin = st[b + KIN];
                let kin_keep = l.and(kin, s2);
                st[b + KIN] = l.xor(ks, kin_keep);
                let esc = l.and(kin, e2);
                st[b + ERR_ESC] = l.or(st[b + ERR_ESC], esc);
                let reg: Vec<L::Bit> = st[b + REG..b + REG + off.reg].to_vec();
                for &ci in &node.names {
                    let Some(Segment::Name(name)) = &sh.nodes[ci].step else {
                        continue;
                    };
                    let cb = sh.lay.nodes[ci].base;
                    let m = name.len();
                    // The byte expected here: name[j − 1] when the key's quote was j bytes
                    // ago, the closing quote at j = m + 1 (registers are one-hot in time).
                    let mut diff = Vec::with_capacity(8);
                    for (bit, &x) in byte.iter().enumerate() {
                        let mut ex = l.lit(false);
                        for (j, &r) in reg.iter().enumerate().take(m + 1) {
                            let ch = if j < m { name.as_bytes()[j] } else { b'"' };
                            if (ch >> (7 - bit)) & 1 == 1 {
                                ex = l.xor(ex, r);
                            }
                        }
                        diff.push(l.xor(x, ex));
                    }
                    let differs = or_all(l, &diff);
                    let n_diff = l.not(differs);
                    let ok = st[cb + OK];
                    let t = l.and(ok, n_diff);
                    let n_t = l.not(t);
                    let restart = l.and(ks, n_t);
                    st[cb + OK] = l.xor(t, restart);
                    let matched = l.and(reg[m], t);
                    // Its value is the next token after `:`.
                    let pend = st[cb + PEND];
                    let start = l.and(pend, c_tok);
                    vs[ci] = start;
                    let p2 = l.xor(pend, start);
                    st[cb + PEND] = l.xor(p2, matched);
                    let miss = l.and(pend, not_colon);
                    colon_missing = l.xor(colon_missing, miss);
                    let found = st[cb + FOUND];
                    let dup = l.and(matched, found);
                    st[cb + ERR_DUP] = l.or(st[cb + ERR_DUP], dup);
                    st[cb + FOUND] = l.xor(found, matched);
                }
                // Shift the key register.
                for j in (1..off.reg).rev() {
                    st[b + REG + j] = st[b + REG + j - 1];
                }
                if off.reg > 0 {
                    st[b + REG] = ks;
                }
            }
            if !node.indexes.is_empty() {
                let es = l.and(elem, inside); // an element of this array starts here
                let cnt_at = b + REG + off.reg;
                let cnt: Vec<L::Bit> = st[cnt_at..cnt_at + off.cnt].to_vec();
                for &ci in &node.indexes {
                    let Some(Segment::Index(ix)) = &sh.nodes[ci].step else {
                        continue;
                    };
                    let here = eq_num_const(l, &cnt, u64::from(*ix));
                    let start = l.and(es, here);
                    vs[ci] = start;
                    let cb = sh.lay.nodes[ci].base;
                    st[cb + FOUND] = l.xor(st[cb + FOUND], start);
                }
                // Count elements until the top bit is set (past every index asked for).
                let n_top = l.not(cnt[off.cnt - 1]);
                let mut carry = l.and(es, n_top);
                for (j, &x) in cnt.iter().enumerate() {
                    st[cnt_at + j] = l.xor(x, carry);
                    if j + 1 < cnt.len() {
                        carry = l.and(carry, x);
                    }
                }
            }
        }
    }

    // Fields: which bytes are the value, folded into the value buffer.
    for (fi, f) in sh.fields.iter().enumerate() {
        let off = sh.lay.fields[fi];
        let b = off.base;
        let v = vs[f.node];
        let lv = sh.nodes[f.node].level + 1;
        let (rs, rc, rx) = (st[b + RS], st[b + RC], st[b + RX]);
        let rxs = l.and(rx, scal);
        let i1 = l.xor(v, rs);
        let i2 = l.xor(rc, rxs);
        let inval = l.xor(i1, i2);
        let vsq = l.and(v, oq);
        let rs_on = l.xor(vsq, rs);
        st[b + RS] = l.and(rs_on, s2);
        let vso = l.and(v, ope);
        let rcl = l.and(rc, closes[lv]);
        let rc1 = l.xor(vso, rc);
        st[b + RC] = l.xor(rc1, rcl);
        let vss = l.and(v, scal);
        st[b + RX] = l.xor(vss, rxs);
        // The value's end: after this byte (string, container), or before it (number,
        // literal: this byte is not part of it).
        let rsq = l.and(rs, cq);
        let ev1 = l.xor(rsq, rcl);
        let ev0 = l.xor(rx, rxs);
        for (bit, sl) in acc.sloc[fi].iter_mut().enumerate() {
            if (local >> bit) & 1 == 1 {
                *sl = l.xor(*sl, v);
            }
        }
        acc.sfl[fi] = l.xor(acc.sfl[fi], v);
        for (bit, el) in acc.eloc[fi].iter_mut().enumerate() {
            let a1 = ((local + 1) >> bit) & 1 == 1;
            let a0 = (local >> bit) & 1 == 1;
            if a1 {
                *el = l.xor(*el, ev1);
            }
            if a0 {
                *el = l.xor(*el, ev0);
            }
        }
        let ev = l.xor(ev1, ev0);
        acc.efl[fi] = l.xor(acc.efl[fi], ev);
        let slot = local % f.capacity;
        for (bit, &x) in byte.iter().enumerate() {
            let at = b + FOLD + slot * 8 + bit;
            let m = l.and(x, inval);
            st[at] = l.xor(st[at], m);
        }
    }

    st[S] = s2;
    st[E] = e2;
    syntax.push(colon_missing);
    let bad = or_all(l, &syntax);
    st[ERR_SYNTAX] = l.or(st[ERR_SYNTAX], bad);
    st[ERR_DEPTH] = l.or(st[ERR_DEPTH], over);
}

/// The canonical text of a path prefix (never empty: the root's text is `$`).
fn prefix_text(segments: &[Segment]) -> String {
    Path::new(segments.to_vec())
        .map(|p| p.to_string())
        .unwrap_or_else(|_| "$".to_string())
}

fn zero_bit<L: Logic>(l: &L) -> L::Bit {
    l.lit(false)
}

/// Why the scan refuses a body, as the circuit reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    /// The body is not well-formed JSON where it matters.
    #[error("the body is not well-formed JSON (a control character in a string, a key without ':', a token after the top-level value, or an unmatched bracket)")]
    Syntax,
    /// The body ends inside a string, object or array.
    #[error("the body ends inside a string, object or array (truncated)")]
    Truncated,
    /// Nesting deeper than the circuit follows.
    #[error("the body nests deeper than {MAX_DEPTH} levels, which the circuit does not follow")]
    TooDeep,
    /// A node's value is not the container its children need (`$`: the body itself).
    #[error("the value at {path} is not {want} (for `$`: the body is not JSON of that kind)")]
    NotContainer {
        /// The node's path (`$` for the whole body).
        path: String,
        /// What it needs to be.
        want: &'static str,
    },
    /// A key occurs twice in an object on a path.
    #[error("the key {path} occurs twice in its object: a duplicate key makes the value ambiguous, so it is refused")]
    Duplicate {
        /// The duplicated path.
        path: String,
    },
    /// A key with an escape in an object on a path.
    #[error("an object on the path ({path}) has a key written with a backslash escape, which could be a disguised duplicate: refused")]
    EscapedKey {
        /// The object's path.
        path: String,
    },
    /// No value at a path.
    #[error("the body has no value at {path}")]
    NotFound {
        /// The path.
        path: String,
    },
    /// A value longer than its capacity.
    #[error("the value at {path} is longer than its capacity of {capacity} bytes of JSON text")]
    TooLong {
        /// The path.
        path: String,
        /// The capacity.
        capacity: usize,
    },
}

/// The scan's verdict bits, in the order the circuit outputs them: the global checks, then
/// per node (not the root) found / duplicate / escaped key / kind, then per field
/// too-long.
pub struct Verdict<B> {
    /// Syntax error.
    pub syntax: B,
    /// Truncated.
    pub truncated: B,
    /// Too deep.
    pub deep: B,
    /// Per node: (found, duplicate key, escaped key in it, not the container needed).
    pub nodes: Vec<[B; 4]>,
    /// Per field: too long for its capacity, and its length (LSB first, [`POS_BITS`]).
    pub fields: Vec<(B, Vec<B>)>,
}

impl<B: Copy> Verdict<B> {
    /// All verdict bits in output order (lengths are not included).
    pub fn bits(&self) -> Vec<B> {
        let mut v = vec![self.syntax, self.truncated, self.deep];
        for n in &self.nodes {
            v.extend(n);
        }
        v.extend(self.fields.iter().map(|f| f.0));
        v
    }
}

/// Number of verdict bits of a shape ([`Verdict::bits`]).
pub fn verdict_width(sh: &Shape) -> usize {
    3 + 4 * sh.nodes.len() + sh.fields.len()
}

/// The final checks on the state after the last execution.
pub fn verdict<L: Logic>(l: &mut L, sh: &Shape, st: &[L::Bit]) -> Verdict<L::Bit> {
    let n_done = l.not(st[DONE]);
    let mut open: Vec<L::Bit> = vec![st[S], n_done];
    let mut nodes = Vec::with_capacity(sh.nodes.len());
    for (ni, off) in sh.lay.nodes.iter().enumerate() {
        let b = off.base;
        let found = if ni == 0 { st[STARTED] } else { st[b + FOUND] };
        // A key matched whose value never started (the body ended) is a truncation.
        open.push(st[b + PEND]);
        nodes.push([found, st[b + ERR_DUP], st[b + ERR_ESC], st[b + ERR_KIND]]);
    }
    let mut fields = Vec::with_capacity(sh.fields.len());
    for (fi, f) in sh.fields.iter().enumerate() {
        let b = sh.lay.fields[fi].base;
        let started = st[b + SF];
        let n_ended = l.not(st[b + EF]);
        let unended = l.and(started, n_ended);
        open.push(unended);
        let (len, _) = sub(
            l,
            &st[b + EPOS..b + EPOS + POS_BITS],
            &st[b + SPOS..b + SPOS + POS_BITS],
        );
        let cap = const_num(l, f.capacity as u64, POS_BITS);
        let (_, longer) = sub(l, &cap, &len);
        fields.push((longer, len));
    }
    let truncated = or_all(l, &open);
    Verdict {
        syntax: st[ERR_SYNTAX],
        truncated,
        deep: st[ERR_DEPTH],
        nodes,
        fields,
    }
}

/// The first error a verdict reports (in the clear), in the order a user should fix them.
pub fn verdict_error(sh: &Shape, v: &Verdict<bool>) -> Option<ScanError> {
    if v.deep {
        return Some(ScanError::TooDeep);
    }
    if v.syntax {
        return Some(ScanError::Syntax);
    }
    if !v.nodes[0][0] {
        return Some(ScanError::NotFound { path: "$".into() });
    }
    if v.nodes[0][3] {
        let want = match sh.nodes[0].kind {
            Some(Kind::Array) => "an array",
            _ => "an object",
        };
        return Some(ScanError::NotContainer {
            path: "$".into(),
            want,
        });
    }
    if v.truncated {
        return Some(ScanError::Truncated);
    }
    // Shallowest problem on a path first.
    let mut order: Vec<usize> = (0..sh.nodes.len()).collect();
    order.sort_by_key(|&n| sh.nodes[n].level);
    for &n in &order {
        let node = &sh.nodes[n];
        let [found, dup, esc, kind] = v.nodes[n];
        let path = node.path.clone();
        if dup {
            return Some(ScanError::Duplicate { path });
        }
        if !found && n != 0 {
            return Some(ScanError::NotFound { path });
        }
        if kind {
            let want = match node.kind {
                Some(Kind::Array) => "an array",
                _ => "an object",
            };
            return Some(ScanError::NotContainer { path, want });
        }
        if esc {
            return Some(ScanError::EscapedKey { path });
        }
    }
    for (fi, f) in sh.fields.iter().enumerate() {
        if v.fields[fi].0 {
            return Some(ScanError::TooLong {
                path: sh.nodes[f.node].path.clone(),
                capacity: f.capacity,
            });
        }
    }
    None
}

/// Bits `(start position, fold buffer)` of field `f` in a state.
pub fn field_value<B: Copy>(sh: &Shape, st: &[B], f: usize) -> (Vec<B>, Vec<B>) {
    let off = sh.lay.fields[f];
    let b = off.base;
    (
        st[b + SPOS..b + SPOS + POS_BITS].to_vec(),
        st[b + FOLD..b + FOLD + off.fold].to_vec(),
    )
}

/// The scan in the clear, exactly as the circuit computes it: the bytes of each field's
/// value (its raw JSON text) in the body, or the error the committee would report.
pub fn scan_clear(sh: &Shape, body: &[u8]) -> Result<Vec<std::ops::Range<usize>>, ScanError> {
    let mut l = crate::logic::Clear;
    let mut st = vec![false; sh.state_width()];
    for chunk in body.chunks(sh.chunk).chain(
        // An empty body is still scanned once (and found wanting).
        std::iter::once(&[][..]).filter(|_| body.is_empty()),
    ) {
        let mut bytes: Vec<Byte<bool>> =
            chunk.iter().map(|&b| crate::logic::byte_bits(b)).collect();
        bytes.resize(sh.chunk, crate::logic::byte_bits(PAD));
        scan_chunk(&mut l, sh, &mut st, &bytes);
    }
    let v = verdict(&mut l, sh, &st);
    if let Some(e) = verdict_error(sh, &v) {
        return Err(e);
    }
    Ok(sh
        .fields
        .iter()
        .enumerate()
        .map(|(fi, _)| {
            let b = sh.lay.fields[fi].base;
            let s = crate::logic::clear_num(&st[b + SPOS..b + SPOS + POS_BITS]) as usize;
            let len = crate::logic::clear_num(&v.fields[fi].1) as usize;
            s..s + len
        })
        .collect())
}

/// The number of scan executions for a body of `len` bytes.
pub fn chunks_for(sh: &Shape, len: usize) -> usize {
    len.div_ceil(sh.chunk).max(1)
}
