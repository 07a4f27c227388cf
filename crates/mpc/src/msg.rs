//! Messages between the three parties and their canonical binary encoding.
//! Decoding is strict (exact lengths, canonical bit padding, no trailing bytes) so that a
//! truncated, padded or altered message is an error, never a different message.

use crate::spec::ExecId;

/// Why a party aborted, as sent to its peers (a compact code; the full error stays local).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AbortCode {
    /// Garbled tables did not match the other garbler's digest.
    TableMismatch = 1,
    /// An input label matched no commitment.
    InvalidInputLabel = 2,
    /// Revealed output labels did not authenticate.
    InvalidOutputLabel = 3,
    /// A seed commitment was opened wrongly.
    SeedCommitment = 4,
    /// A message could not be decoded.
    Malformed = 5,
    /// A message arrived that the protocol does not allow at this point.
    Unexpected = 6,
    /// The party stopped for a local reason (shutdown, timeout, misuse).
    Local = 7,
    /// Two parties sent different values for what must be the same share (arithmetic side).
    Inconsistent = 8,
    /// The arithmetic multiplication check failed: some party sent a wrong value.
    CheckFailed = 9,
    /// A party's own input was invalid (for example a point at infinity).
    BadInput = 10,
    /// Public-input labels did not match the other garbler's digest (a party deviated, or
    /// the parties hold different public values).
    PublicInputMismatch = 11,
    /// A code this version does not know.
    Unknown = 255,
}

impl AbortCode {
    fn from_u8(b: u8) -> AbortCode {
        match b {
            1 => AbortCode::TableMismatch,
            2 => AbortCode::InvalidInputLabel,
            3 => AbortCode::InvalidOutputLabel,
            4 => AbortCode::SeedCommitment,
            5 => AbortCode::Malformed,
            6 => AbortCode::Unexpected,
            7 => AbortCode::Local,
            8 => AbortCode::Inconsistent,
            9 => AbortCode::CheckFailed,
            10 => AbortCode::BadInput,
            11 => AbortCode::PublicInputMismatch,
            _ => AbortCode::Unknown,
        }
    }
}

impl std::fmt::Display for AbortCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AbortCode::TableMismatch => "garbled tables did not match the digest",
            AbortCode::InvalidInputLabel => "an input label matched no commitment",
            AbortCode::InvalidOutputLabel => "output labels did not authenticate",
            AbortCode::SeedCommitment => "seed commitment opened wrongly",
            AbortCode::Malformed => "malformed message",
            AbortCode::Unexpected => "unexpected message",
            AbortCode::Local => "local stop",
            AbortCode::Inconsistent => "inconsistent shares",
            AbortCode::CheckFailed => "multiplication check failed",
            AbortCode::BadInput => "invalid input",
            AbortCode::PublicInputMismatch => "public input labels did not match the digest",
            AbortCode::Unknown => "unknown reason",
        })
    }
}

/// A protocol message.
#[derive(Clone, PartialEq, Eq)]
pub enum Msg {
    /// Garbler 0 → garbler 1: commitment to its seed contribution.
    SeedCommit([u8; 32]),
    /// Garbler 1 → garbler 0: its seed contribution.
    SeedShare([u8; 32]),
    /// Garbler 0 → garbler 1: opening of the commitment.
    SeedOpen([u8; 32]),
    /// A garbler → evaluator: the garbled circuit of one execution.
    Garbled {
        /// Execution.
        exec: ExecId,
        /// Half-gates tables.
        tables: Vec<u8>,
        /// Hash of each garbler's input-label commitments.
        roots: [[u8; 32]; 2],
        /// Decoding (permute) bits of the outputs the evaluator may decode.
        decode: Bits,
    },
    /// The other garbler → evaluator: digest of the same garbled circuit.
    GarbledDigest {
        /// Execution.
        exec: ExecId,
        /// The digest.
        digest: [u8; 32],
    },
    /// Evaluator → a garbler: that garbler's shares of the evaluator's inputs.
    InputShares {
        /// Execution.
        exec: ExecId,
        /// One bit per evaluator wire.
        bits: Bits,
    },
    /// A garbler → evaluator: for each of its virtual input wires, the active label and the
    /// commitment to the other label.
    InputLabels {
        /// Execution.
        exec: ExecId,
        /// 32 bytes per wire: label ‖ other commitment.
        entries: Vec<u8>,
    },
    /// Evaluator → a garbler: colour bits of the output labels this garbler may decode, and a
    /// hash of those labels that authenticates them.
    Reveal {
        /// Execution.
        exec: ExecId,
        /// Colour bits.
        colours: Bits,
        /// Hash of the active labels.
        tag: [u8; 32],
    },
    /// Garbler 0 → evaluator: the active labels of the public input wires of one execution
    /// ([`InputSource::Public`](crate::InputSource::Public)), in wire order.
    PublicLabels {
        /// Execution.
        exec: ExecId,
        /// 16 bytes per public wire: the label `Z ⊕ v·Δ`.
        labels: Vec<u8>,
    },
    /// Garbler 1 → evaluator: a digest of the public values and of the active public labels
    /// garbler 1 computed from its own copy of the values.
    PublicDigest {
        /// Execution.
        exec: ExecId,
        /// The digest.
        digest: [u8; 32],
    },
    /// Any party → the others: it aborted.
    Abort(AbortCode),
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print labels or shares: only the kind, execution and sizes.
        match self {
            Msg::Garbled { exec, tables, .. } => {
                write!(f, "Garbled {{ exec: {exec}, tables: {} B }}", tables.len())
            }
            Msg::InputLabels { exec, entries } => {
                write!(
                    f,
                    "InputLabels {{ exec: {exec}, wires: {} }}",
                    entries.len() / 32
                )
            }
            Msg::PublicLabels { exec, labels } => {
                write!(
                    f,
                    "PublicLabels {{ exec: {exec}, wires: {} }}",
                    labels.len() / 16
                )
            }
            other => write!(f, "{}", other.kind()),
        }
    }
}

/// A packed bit vector (MSB-first within each byte, zero padding).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Bits {
    len: u32,
    bytes: Vec<u8>,
}

impl Bits {
    /// Packs bits.
    pub fn from_bools(b: &[bool]) -> Self {
        Bits {
            len: b.len() as u32,
            bytes: crate::circuit::bits_to_bytes(b),
        }
    }
    /// Unpacks.
    pub fn to_bools(&self) -> Vec<bool> {
        let mut v = crate::circuit::bytes_to_bits(&self.bytes);
        v.truncate(self.len as usize);
        v
    }
    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// The packed bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A message that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed message: {0}")]
pub struct DecodeError(pub &'static str);

const T_SEED_COMMIT: u8 = 1;
const T_SEED_SHARE: u8 = 2;
const T_SEED_OPEN: u8 = 3;
const T_GARBLED: u8 = 4;
const T_DIGEST: u8 = 5;
const T_SHARES: u8 = 6;
const T_LABELS: u8 = 7;
const T_REVEAL: u8 = 8;
const T_ABORT: u8 = 9;
const T_PUBLIC_LABELS: u8 = 10;
const T_PUBLIC_DIGEST: u8 = 11;

impl Msg {
    /// Short name of the message kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::SeedCommit(_) => "SeedCommit",
            Msg::SeedShare(_) => "SeedShare",
            Msg::SeedOpen(_) => "SeedOpen",
            Msg::Garbled { .. } => "Garbled",
            Msg::GarbledDigest { .. } => "GarbledDigest",
            Msg::InputShares { .. } => "InputShares",
            Msg::InputLabels { .. } => "InputLabels",
            Msg::Reveal { .. } => "Reveal",
            Msg::PublicLabels { .. } => "PublicLabels",
            Msg::PublicDigest { .. } => "PublicDigest",
            Msg::Abort(_) => "Abort",
        }
    }

    /// The execution the message belongs to, if any.
    pub fn exec(&self) -> Option<ExecId> {
        match self {
            Msg::Garbled { exec, .. }
            | Msg::GarbledDigest { exec, .. }
            | Msg::InputShares { exec, .. }
            | Msg::InputLabels { exec, .. }
            | Msg::Reveal { exec, .. }
            | Msg::PublicLabels { exec, .. }
            | Msg::PublicDigest { exec, .. } => Some(*exec),
            _ => None,
        }
    }

    /// Canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut o = Vec::new();
        match self {
            Msg::SeedCommit(x) => {
                o.push(T_SEED_COMMIT);
                o.extend_from_slice(x);
            }
            Msg::SeedShare(x) => {
                o.push(T_SEED_SHARE);
                o.extend_from_slice(x);
            }
            Msg::SeedOpen(x) => {
                o.push(T_SEED_OPEN);
                o.extend_from_slice(x);
            }
            Msg::Garbled {
                exec,
                tables,
                roots,
                decode,
            } => {
                o = garbled_header(*exec, roots, decode, tables.len(), tables.len());
                o.extend_from_slice(tables);
            }
            Msg::GarbledDigest { exec, digest } => {
                o.push(T_DIGEST);
                o.extend_from_slice(&exec.to_le_bytes());
                o.extend_from_slice(digest);
            }
            Msg::InputShares { exec, bits } => {
                o.push(T_SHARES);
                o.extend_from_slice(&exec.to_le_bytes());
                put_bits(&mut o, bits);
            }
            Msg::InputLabels { exec, entries } => {
                o.push(T_LABELS);
                o.extend_from_slice(&exec.to_le_bytes());
                put_bytes(&mut o, entries);
            }
            Msg::Reveal { exec, colours, tag } => {
                o.push(T_REVEAL);
                o.extend_from_slice(&exec.to_le_bytes());
                put_bits(&mut o, colours);
                o.extend_from_slice(tag);
            }
            Msg::PublicLabels { exec, labels } => {
                o.reserve(9 + labels.len());
                o.push(T_PUBLIC_LABELS);
                o.extend_from_slice(&exec.to_le_bytes());
                put_bytes(&mut o, labels);
            }
            Msg::PublicDigest { exec, digest } => {
                o.push(T_PUBLIC_DIGEST);
                o.extend_from_slice(&exec.to_le_bytes());
                o.extend_from_slice(digest);
            }
            Msg::Abort(code) => {
                o.push(T_ABORT);
                o.push(*code as u8);
            }
        }
        o
    }

    /// Most header bytes a [`Msg::Garbled`] for `circuit` puts before its tables (tag,
    /// execution, roots, decode bits, table length), plus one for a transport trailer.
    pub fn garbled_header_len(circuit: &crate::circuit::Circuit) -> usize {
        1 + 4 + 64 + 4 + circuit.num_outputs().div_ceil(8) + 4 + 1
    }

    /// [`Msg::encode`], consuming the message: garbled tables (the only large payload) get
    /// the header put in front of them in their own buffer instead of being copied.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Msg::Garbled {
                exec,
                tables,
                roots,
                decode,
            } => {
                let h = garbled_header(exec, &roots, &decode, tables.len(), 0);
                let mut o = tables;
                o.splice(0..0, h);
                o
            }
            m => m.encode(),
        }
    }

    /// [`Msg::decode`], consuming the buffer: garbled tables stay in it (moved to its front)
    /// instead of being copied out.
    pub fn decode_owned(b: Vec<u8>) -> Result<Msg, DecodeError> {
        if b.first() != Some(&T_GARBLED) {
            return Msg::decode(&b);
        }
        let mut r = Reader { b: &b, pos: 1 };
        let (exec, roots, decode, n) = r.garbled_header()?;
        let start = r.pos;
        match start.checked_add(n) {
            Some(end) if end == b.len() => {}
            Some(end) if end < b.len() => return Err(DecodeError("trailing bytes")),
            _ => return Err(DecodeError("truncated")),
        }
        let mut tables = b;
        tables.drain(..start);
        Ok(Msg::Garbled {
            exec,
            tables,
            roots,
            decode,
        })
    }

    /// Strict decoding: any truncation, extension or non-canonical field is an error.
    pub fn decode(b: &[u8]) -> Result<Msg, DecodeError> {
        let mut r = Reader { b, pos: 0 };
        let tag = r.u8()?;
        let m = match tag {
            T_SEED_COMMIT => Msg::SeedCommit(r.arr32()?),
            T_SEED_SHARE => Msg::SeedShare(r.arr32()?),
            T_SEED_OPEN => Msg::SeedOpen(r.arr32()?),
            T_GARBLED => {
                let (exec, roots, decode, n) = r.garbled_header()?;
                let tables = r.take(n)?.to_vec();
                Msg::Garbled {
                    exec,
                    tables,
                    roots,
                    decode,
                }
            }
            T_DIGEST => Msg::GarbledDigest {
                exec: r.u32()?,
                digest: r.arr32()?,
            },
            T_SHARES => Msg::InputShares {
                exec: r.u32()?,
                bits: r.bits()?,
            },
            T_LABELS => {
                let exec = r.u32()?;
                let entries = r.bytes()?;
                if entries.len() % 32 != 0 {
                    return Err(DecodeError("input label entries are not 32-byte multiples"));
                }
                Msg::InputLabels { exec, entries }
            }
            T_REVEAL => Msg::Reveal {
                exec: r.u32()?,
                colours: r.bits()?,
                tag: r.arr32()?,
            },
            T_PUBLIC_LABELS => {
                let exec = r.u32()?;
                let labels = r.bytes()?;
                if labels.len() % 16 != 0 {
                    return Err(DecodeError("public labels are not 16-byte multiples"));
                }
                Msg::PublicLabels { exec, labels }
            }
            T_PUBLIC_DIGEST => Msg::PublicDigest {
                exec: r.u32()?,
                digest: r.arr32()?,
            },
            T_ABORT => Msg::Abort(AbortCode::from_u8(r.u8()?)),
            _ => return Err(DecodeError("unknown message type")),
        };
        if r.pos != b.len() {
            return Err(DecodeError("trailing bytes"));
        }
        Ok(m)
    }
}

/// Everything of a [`Msg::Garbled`] before its `tables` bytes of tables (their length
/// included), with room for `room` more bytes.
fn garbled_header(
    exec: ExecId,
    roots: &[[u8; 32]; 2],
    decode: &Bits,
    tables: usize,
    room: usize,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(77 + decode.bytes.len() + room);
    h.push(T_GARBLED);
    h.extend_from_slice(&exec.to_le_bytes());
    h.extend_from_slice(&roots[0]);
    h.extend_from_slice(&roots[1]);
    put_bits(&mut h, decode);
    h.extend_from_slice(&(tables as u32).to_le_bytes());
    h
}

fn put_bytes(o: &mut Vec<u8>, x: &[u8]) {
    o.extend_from_slice(&(x.len() as u32).to_le_bytes());
    o.extend_from_slice(x);
}

fn put_bits(o: &mut Vec<u8>, b: &Bits) {
    o.extend_from_slice(&b.len.to_le_bytes());
    o.extend_from_slice(&b.bytes);
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(DecodeError("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn arr32(&mut self) -> Result<[u8; 32], DecodeError> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    /// The fields of a [`Msg::Garbled`] after its tag, up to its tables: execution, roots,
    /// decode bits and the tables' length.
    #[allow(clippy::type_complexity)]
    fn garbled_header(&mut self) -> Result<(ExecId, [[u8; 32]; 2], Bits, usize), DecodeError> {
        let exec = self.u32()?;
        let roots = [self.arr32()?, self.arr32()?];
        let decode = self.bits()?;
        let n = self.u32()? as usize;
        Ok((exec, roots, decode, n))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn bits(&mut self) -> Result<Bits, DecodeError> {
        let len = self.u32()?;
        let nbytes = (len as usize).div_ceil(8);
        let bytes = self.take(nbytes)?.to_vec();
        let pad = nbytes * 8 - len as usize;
        if pad > 0 && bytes[nbytes - 1] & ((1u8 << pad) - 1) != 0 {
            return Err(DecodeError("non-zero padding bits"));
        }
        Ok(Bits { len, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Msg> {
        vec![
            Msg::SeedCommit([1; 32]),
            Msg::SeedShare([2; 32]),
            Msg::SeedOpen([3; 32]),
            Msg::Garbled {
                exec: 7,
                tables: vec![9; 64],
                roots: [[4; 32], [5; 32]],
                decode: Bits::from_bools(&[true, false, true]),
            },
            Msg::GarbledDigest {
                exec: 1,
                digest: [6; 32],
            },
            Msg::InputShares {
                exec: 2,
                bits: Bits::from_bools(&[true; 9]),
            },
            Msg::InputLabels {
                exec: 3,
                entries: vec![1; 64],
            },
            Msg::Reveal {
                exec: 4,
                colours: Bits::from_bools(&[false, true]),
                tag: [8; 32],
            },
            Msg::PublicLabels {
                exec: 5,
                labels: vec![7; 48],
            },
            Msg::PublicDigest {
                exec: 6,
                digest: [9; 32],
            },
            Msg::Abort(AbortCode::TableMismatch),
            Msg::Abort(AbortCode::PublicInputMismatch),
        ]
    }

    #[test]
    fn roundtrip() {
        for m in samples() {
            assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
            assert_eq!(m.clone().into_bytes(), m.encode());
            assert_eq!(Msg::decode_owned(m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        for m in samples() {
            let e = m.encode();
            for cut in 0..e.len() {
                assert!(Msg::decode(&e[..cut]).is_err(), "{} cut at {cut}", m.kind());
                assert!(Msg::decode_owned(e[..cut].to_vec()).is_err());
            }
            let mut longer = e.clone();
            longer.push(0);
            assert!(Msg::decode(&longer).is_err());
            assert!(Msg::decode_owned(longer).is_err());
        }
    }

    #[test]
    fn non_canonical_padding_is_rejected() {
        let mut e = Msg::InputShares {
            exec: 0,
            bits: Bits::from_bools(&[true]),
        }
        .encode();
        *e.last_mut().unwrap() |= 1;
        assert_eq!(Msg::decode(&e), Err(DecodeError("non-zero padding bits")));
    }

    #[test]
    fn debug_never_prints_contents() {
        let m = Msg::InputLabels {
            exec: 1,
            entries: vec![0xab; 32],
        };
        assert!(!format!("{m:?}").contains("171"));
        let m = Msg::PublicLabels {
            exec: 1,
            labels: vec![0xab; 32],
        };
        assert_eq!(format!("{m:?}"), "PublicLabels { exec: 1, wires: 2 }");
    }

    #[test]
    fn public_labels_must_be_whole_labels() {
        let mut e = Msg::PublicLabels {
            exec: 0,
            labels: vec![1; 32],
        }
        .encode();
        // Claim 31 bytes and drop one: a well-framed message with a partial label.
        e[5..9].copy_from_slice(&31u32.to_le_bytes());
        e.pop();
        assert_eq!(
            Msg::decode(&e),
            Err(DecodeError("public labels are not 16-byte multiples"))
        );
        assert_eq!(
            AbortCode::from_u8(AbortCode::PublicInputMismatch as u8),
            AbortCode::PublicInputMismatch
        );
    }
}
