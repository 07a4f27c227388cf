//! Every gadget evaluated in plaintext against its reference in `canon` / `shamir`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mpc::circuit::{bits_to_bytes, bytes_to_bits, Builder, Circuit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::canon::{self, DateFormat, FieldKind, MAX_VALUE};
use crate::gf128::Gf128;
use crate::shamir;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A circuit over `bytes` (8·l bits) then `len` (8 bits).
fn bytes_len_circuit(
    l: usize,
    f: impl FnOnce(&mut Builder, &[Bit], &[Bit]) -> Vec<Bit>,
) -> Circuit {
    let mut b = Builder::new();
    let bytes = b.inputs(8 * l);
    let len = b.inputs(8);
    let out = f(&mut b, &bytes, &len);
    b.finish(&out).unwrap()
}

/// `s` padded to `l` bytes with random garbage, then the length byte.
fn input_with_garbage(s: &[u8], l: usize, len: u8, r: &mut StdRng) -> Vec<bool> {
    let mut bytes = s.to_vec();
    while bytes.len() < l {
        // Garbage that would matter if it were read: domain bytes, C3, continuation bytes.
        let g = match r.gen_range(0..4) {
            0 => 0xc3,
            1 => r.gen_range(0x80..=0xbf),
            2 => b' ',
            _ => r.gen(),
        };
        bytes.push(g);
    }
    bytes.truncate(l);
    bytes.push(len);
    bytes_to_bits(&bytes)
}

// ---------------------------------------------------------------------------------------
// canon_text

fn text_circuit(l: usize) -> Circuit {
    bytes_len_circuit(l, |b, bytes, len| {
        let t = canon_text(b, bytes, len).unwrap();
        [t.bytes, t.len, vec![t.ok]].concat()
    })
}

/// Runs the text circuit and checks it against the reference for the first `len` bytes.
fn check_text(c: &Circuit, l: usize, s: &[u8], len: usize, r: &mut StdRng) -> bool {
    let inp = input_with_garbage(s, l, len as u8, r);
    let out = c.evaluate(&inp).unwrap();
    let ok = out[8 * l + 8];
    let bytes = bits_to_bytes(&out[..8 * l]);
    let out_len = bits_to_bytes(&out[8 * l..8 * l + 8])[0] as usize;
    let expect_ok = len <= l && len <= s.len() && canon::in_circuit_text_domain(&s[..len]);
    assert_eq!(
        ok,
        expect_ok,
        "ok for {:x?} len {len}",
        &s[..len.min(s.len())]
    );
    if ok {
        let text = std::str::from_utf8(&s[..len]).unwrap();
        let want = canon::canon_text(text);
        assert_eq!(out_len, want.len(), "len for {text:?}");
        let mut padded = want.as_bytes().to_vec();
        padded.resize(l, 0);
        assert_eq!(bytes, padded, "bytes for {text:?}");
    }
    ok
}

fn domain_chars() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0x20..=0x7eu8)
        .filter(|&c| c != b'\\' && c != b'"')
        .map(|c| vec![c])
        .collect();
    v.extend((0x80..=0xbfu8).map(|c| vec![0xc3, c]));
    v
}

/// A random domain string of at most `max` bytes, many spaces.
fn random_domain(r: &mut StdRng, max: usize) -> Vec<u8> {
    let chars = domain_chars();
    let target = r.gen_range(0..=max);
    let mut s = Vec::new();
    while s.len() < target {
        let c = if r.gen_bool(0.3) {
            vec![b' ']
        } else {
            chars[r.gen_range(0..chars.len())].clone()
        };
        if s.len() + c.len() > target {
            break;
        }
        s.extend(c);
    }
    s
}

#[test]
fn canon_text_edge_cases() {
    let l = MAX_VALUE;
    let c = text_circuit(l);
    let mut r = rng(10);
    let full: Vec<u8> = "ÀB".repeat(21).bytes().chain(*b"x").collect();
    assert_eq!(full.len(), 64);
    let cases: Vec<(&[u8], bool)> = vec![
        (b"", true),
        (b"     ", true),
        (b"Alice  SMITH", true),
        (b" alice smith ", true),
        ("Straße".as_bytes(), true),
        ("ÀÉÎÕÜÞ àéîõüþ".as_bytes(), true),
        ("× ÷ ÿ ß".as_bytes(), true),
        ("STRASSE ẞ".as_bytes(), false),
        (b"\xc3", false),
        (b"abc\xc3", false),
        (b"\x80abc", false),
        (b"a\\b", false),
        (b"say \"hi\"", false),
        (b"tab\there", false),
        (b"del\x7f", false),
        (b"\xc3\xc3\x80", false),
        (b"a\xc3\x80\x80", false),
        ("a\u{a0}b".as_bytes(), false),
        ("€".as_bytes(), false),
        (&full, true),
        (b"@[`{AZaz~", true),
    ];
    for (s, ok) in cases {
        for _ in 0..4 {
            assert_eq!(check_text(&c, l, s, s.len(), &mut r), ok, "{s:x?}");
        }
    }
    // len beyond L (never ok), and beyond the string (garbage read as content: only the
    // comparison with the reference over the padded bytes matters, checked elsewhere).
    for len in [65usize, 100, 255] {
        let inp = input_with_garbage(b"abc", l, len as u8, &mut r);
        assert!(!c.evaluate(&inp).unwrap()[8 * l + 8]);
    }
    // A C3 as the last byte within len, followed by a continuation byte just past len.
    let inp = input_with_garbage(b"ab\xc3\x80", l, 3, &mut r);
    assert!(!c.evaluate(&inp).unwrap()[8 * l + 8]);
    // And the same with len covering it.
    let inp = input_with_garbage(b"ab\xc3\x80", l, 4, &mut r);
    let out = c.evaluate(&inp).unwrap();
    assert!(out[8 * l + 8]);
    assert_eq!(&bits_to_bytes(&out[..32]), "ab\u{e0}".as_bytes());
}

#[test]
fn canon_text_random_domain_strings() {
    let l = MAX_VALUE;
    let c = text_circuit(l);
    let mut r = rng(11);
    for _ in 0..400 {
        let s = random_domain(&mut r, l);
        assert!(check_text(&c, l, &s, s.len(), &mut r));
        // A prefix as len (cutting a two-byte char makes it invalid, which is checked).
        let cut = r.gen_range(0..=s.len());
        check_text(&c, l, &s, cut, &mut r);
    }
}

#[test]
fn canon_text_random_bytes() {
    let l = MAX_VALUE;
    let c = text_circuit(l);
    let mut r = rng(12);
    let special = [
        0x20u8, 0x20, 0x22, 0x5c, 0x7f, 0x7e, 0x41, 0x5a, 0x61, 0x40, 0x5b, 0xc3, 0xc3, 0x80, 0x97,
        0x9e, 0x9f, 0xa0, 0xbf, 0xc2, 0x00, 0x1f,
    ];
    let mut oks = 0;
    for _ in 0..600 {
        let n = r.gen_range(0..=l);
        let s: Vec<u8> = (0..n)
            .map(|_| {
                if r.gen_bool(0.7) {
                    special[r.gen_range(0..special.len())]
                } else {
                    r.gen_range(0x20..0x7f)
                }
            })
            .collect();
        if check_text(&c, l, &s, n, &mut r) {
            oks += 1;
        }
    }
    // Some of each.
    assert!(oks > 20 && oks < 580, "{oks}");
}

#[test]
fn canon_text_exhaustive_small() {
    // Every string of 4 bytes over an alphabet of the interesting bytes, every len 0..=5.
    let l = 4;
    let c = text_circuit(l);
    let mut r = rng(13);
    let alphabet = [b' ', b'A', b'z', 0xc3, 0x9f, 0x80, 0x97, 0xbf, b'\\', 0x7f];
    let mut ok_count = 0;
    for code in 0..10usize.pow(4) {
        let s: Vec<u8> = (0..4)
            .map(|k| alphabet[code / 10usize.pow(k) % 10])
            .collect();
        for len in 0..=5 {
            if len <= 4 {
                ok_count += usize::from(check_text(&c, l, &s, len, &mut r));
            } else {
                let inp = input_with_garbage(&s, l, len as u8, &mut r);
                assert!(!c.evaluate(&inp).unwrap()[8 * l + 8]);
            }
        }
    }
    assert!(ok_count > 3000, "{ok_count}");
}

// ---------------------------------------------------------------------------------------
// canon_date

fn date_circuit(l: usize, f: DateFormat) -> Circuit {
    bytes_len_circuit(l, |b, bytes, len| {
        let d = canon_date(b, bytes, len, f).unwrap();
        [d.iso, vec![d.ok]].concat()
    })
}

fn render(f: DateFormat, y: &str, m: &str, d: &str) -> Vec<u8> {
    let (mut yi, mut mi, mut di) = (y.bytes(), m.bytes(), d.bytes());
    f.pattern()
        .bytes()
        .map(|p| match p {
            b'Y' => yi.next().unwrap(),
            b'M' => mi.next().unwrap(),
            b'D' => di.next().unwrap(),
            s => s,
        })
        .collect()
}

fn check_date(c: &Circuit, l: usize, f: DateFormat, s: &[u8], len: usize, r: &mut StdRng) {
    let inp = input_with_garbage(s, l, len as u8, r);
    let out = c.evaluate(&inp).unwrap();
    let ok = out[80];
    let want = std::str::from_utf8(&s[..len.min(s.len())])
        .ok()
        .filter(|_| len <= s.len())
        .and_then(|t| canon::canon_date(t, f));
    assert_eq!(
        ok,
        want.is_some(),
        "{f} {:?} len {len}",
        String::from_utf8_lossy(s)
    );
    if let Some(w) = want {
        assert_eq!(bits_to_bytes(&out[..80]), w.as_bytes());
    }
}

#[test]
fn canon_date_every_month_and_day() {
    let mut r = rng(20);
    for f in DateFormat::ALL {
        let l = 12;
        let c = date_circuit(l, f);
        for mm in 0..100 {
            for dd in 0..100 {
                let y = format!("{:04}", r.gen_range(0..10000));
                let s = render(f, &y, &format!("{mm:02}"), &format!("{dd:02}"));
                check_date(&c, l, f, &s, s.len(), &mut r);
            }
        }
    }
}

#[test]
fn canon_date_corruptions() {
    let mut r = rng(21);
    let noise = [
        b'/', b':', b'-', b'.', b' ', b'0', b'9', b'a', 0xc3, 0x00, 0xb0, 0xb9, 0x39, 0x2f,
    ];
    for f in DateFormat::ALL {
        let l = 16;
        let c = date_circuit(l, f);
        for _ in 0..300 {
            let y = format!("{:04}", r.gen_range(0..10000));
            let m = format!("{:02}", r.gen_range(0..14));
            let d = format!("{:02}", r.gen_range(0..33));
            let mut s = render(f, &y, &m, &d);
            if r.gen_bool(0.5) {
                let i = r.gen_range(0..s.len());
                s[i] = noise[r.gen_range(0..noise.len())];
            }
            let len = match r.gen_range(0..6) {
                0 => r.gen_range(0..=l),
                1 => r.gen_range(0..=255),
                _ => s.len(),
            };
            check_date(&c, l, f, &s, len.min(255), &mut r);
        }
        // The examples of the brief.
        for bad in [
            "1990-13-01",
            "1990-00-10",
            "1990-01-32",
            "1990/01/01",
            "1990-01-00",
        ] {
            let s = bad.as_bytes();
            check_date(&c, l, f, s, s.len(), &mut r);
        }
    }
}

#[test]
fn canon_date_rejects_short_inputs() {
    let mut b = Builder::new();
    let bytes = b.inputs(8 * 8);
    let len = b.inputs(8);
    assert!(canon_date(&mut b, &bytes, &len, DateFormat::Compact).is_ok());
    assert!(matches!(
        canon_date(&mut b, &bytes, &len, DateFormat::Iso),
        Err(CircuitError::Width { .. })
    ));
    assert!(canon_date(&mut b, &bytes, &len[..7], DateFormat::Compact).is_err());
}

// ---------------------------------------------------------------------------------------
// parse_decimal

fn decimal_circuit(l: usize) -> Circuit {
    bytes_len_circuit(l, |b, bytes, len| {
        let (v, ok) = parse_decimal(b, bytes, len).unwrap();
        assert_eq!(v.len(), 64);
        [v, vec![ok]].concat()
    })
}

fn check_decimal(c: &Circuit, l: usize, s: &[u8], len: usize, r: &mut StdRng) {
    let inp = input_with_garbage(s, l, len as u8, r);
    let out = c.evaluate(&inp).unwrap();
    let want = std::str::from_utf8(&s[..len.min(s.len())])
        .ok()
        .filter(|_| len <= s.len() && len <= l)
        .and_then(canon::parse_decimal);
    assert_eq!(
        out[64],
        want.is_some(),
        "{:?} len {len}",
        String::from_utf8_lossy(s)
    );
    if let Some(w) = want {
        let v = bits_to_bytes(&out[..64]);
        assert_eq!(u64::from_be_bytes(v.try_into().unwrap()), w, "{s:?}");
    }
}

fn random_decimal(r: &mut StdRng) -> Vec<u8> {
    let digits = |r: &mut StdRng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + r.gen_range(0..10)))
            .collect()
    };
    let int_len = if r.gen_bool(0.1) {
        13
    } else {
        r.gen_range(0..=12)
    };
    let mut s = digits(r, int_len);
    if r.gen_bool(0.6) {
        s.push('.');
        let f = if r.gen_bool(0.1) {
            7
        } else {
            r.gen_range(0..=6)
        };
        s.push_str(&digits(r, f));
    }
    let mut b = s.into_bytes();
    if !b.is_empty() && r.gen_bool(0.15) {
        let i = r.gen_range(0..b.len());
        b[i] = [b'.', b'/', b':', b'-', b' ', b'e', 0xb5][r.gen_range(0..7)];
    }
    b
}

#[test]
fn parse_decimal_examples_and_random() {
    let mut r = rng(30);
    for l in [64usize, 20, 19, 8, 1] {
        let c = decimal_circuit(l);
        for s in [
            "0",
            "007.5",
            "1.",
            ".5",
            "1.1234567",
            "1234567890123",
            "123456789012",
            "999999999999.999999",
            "999999999999.9999990",
            "",
            "1.2.3",
            "..",
            "12.34",
            "000000000000.000000",
            "1.000001",
            "+1",
        ] {
            let s = s.as_bytes();
            check_decimal(&c, l, s, s.len().min(255), &mut r);
        }
        for _ in 0..if l == 64 { 600 } else { 150 } {
            let s = random_decimal(&mut r);
            let len = if r.gen_bool(0.1) {
                r.gen_range(0..=s.len())
            } else {
                s.len()
            };
            check_decimal(&c, l, &s, len, &mut r);
        }
        // Lengths past L, past 19.
        for len in [l + 1, 20, 200] {
            let inp = input_with_garbage(b"1", l, len.min(255) as u8, &mut r);
            assert!(!c.evaluate(&inp).unwrap()[64] || len <= l);
        }
    }
}

// ---------------------------------------------------------------------------------------
// GF(2^128) and shares

fn gf_bits(v: Gf128) -> Vec<bool> {
    bytes_to_bits(&v.to_bytes())
}

fn bits_gf(bits: &[bool]) -> Gf128 {
    Gf128::from_bytes(&bits_to_bytes(bits).try_into().unwrap())
}

#[test]
fn gf_mul_const_is_free_and_correct() {
    let mut r = rng(40);
    for _ in 0..20 {
        let cst = Gf128::random(&mut r);
        let mut b = Builder::new();
        let x = b.inputs(128);
        let y = gf_mul_const(&mut b, &x, cst).unwrap();
        assert_eq!(b.and_count(), 0);
        let c = b.finish(&y).unwrap();
        assert_eq!(c.and_count(), 0);
        for _ in 0..25 {
            let v = Gf128::random(&mut r);
            assert_eq!(bits_gf(&c.evaluate(&gf_bits(v)).unwrap()), v * cst);
        }
    }
    let mut b = Builder::new();
    let x = b.inputs(127);
    assert!(gf_mul_const(&mut b, &x, Gf128::ONE).is_err());
}

fn combine_circuit(xs: &[u16], t: usize) -> Circuit {
    let mut b = Builder::new();
    let shares: Vec<(u16, Vec<Bit>)> = xs.iter().map(|&x| (x, b.inputs(128))).collect();
    let (key, bad) = combine_shares(&mut b, &shares, t).unwrap();
    b.finish(&[key, vec![bad]].concat()).unwrap()
}

#[test]
fn combine_shares_matches_shamir() {
    let mut r = rng(41);
    for (xs, t) in [
        (vec![1u16, 2, 3], 2usize),
        (vec![1, 2, 3], 3),
        (vec![5, 9, 200, 7], 2),
        (vec![1, 2, 3, 4, 5], 3),
        (vec![3], 1),
    ] {
        let c = combine_circuit(&xs, t);
        let extra = xs.len() - t;
        // 127 ANDs per extra share, plus the OR over them.
        assert_eq!(c.and_count(), 127 * extra + extra.saturating_sub(1));
        for _ in 0..30 {
            let key = Gf128::random(&mut r);
            let mut shares = shamir::deal(key, t, &xs, &mut r).unwrap();
            let inp: Vec<bool> = shares.iter().flat_map(|s| gf_bits(s.y)).collect();
            let out = c.evaluate(&inp).unwrap();
            assert_eq!(bits_gf(&out[..128]), key);
            assert!(!out[128]);
            // Tamper with any one share.
            let j = r.gen_range(0..xs.len());
            shares[j].y += Gf128::from_u128(1 << r.gen_range(0..128));
            let inp: Vec<bool> = shares.iter().flat_map(|s| gf_bits(s.y)).collect();
            let out = c.evaluate(&inp).unwrap();
            assert_eq!(out[128], extra > 0);
            assert_eq!(out[128], !shamir::consistent(&shares, t));
        }
    }
    let mut b = Builder::new();
    let y = b.inputs(128);
    for (shares, t) in [
        (vec![(1u16, y.clone()), (1, y.clone())], 1usize),
        (vec![(0, y.clone())], 1),
        (vec![(1, y.clone())], 2),
        (vec![(1, y.clone())], 0),
        (vec![(1, y[..64].to_vec())], 1),
    ] {
        assert!(combine_shares(&mut b, &shares, t).is_err());
    }
}

// ---------------------------------------------------------------------------------------
// HMAC and the nullifier

fn hmac_ref(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut m = <Hmac<sha2::Sha256> as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

#[test]
fn hmac_sha256_matches_hmac_crate() {
    let mut r = rng(50);
    for (kl, ml) in [
        (16usize, 0usize),
        (16, 55),
        (0, 56),
        (64, 64),
        (32, 1),
        (16, 119),
        (20, 150),
    ] {
        let mut b = Builder::new();
        let k = b.inputs(8 * kl);
        let m = b.inputs(8 * ml);
        let h = hmac_sha256(&mut b, &k, &m).unwrap();
        let c = b.finish(&h).unwrap();
        for _ in 0..3 {
            let key: Vec<u8> = (0..kl).map(|_| r.gen()).collect();
            let msg: Vec<u8> = (0..ml).map(|_| r.gen()).collect();
            let out = c
                .evaluate_bytes(&[key.clone(), msg.clone()].concat())
                .unwrap();
            assert_eq!(out, hmac_ref(&key, &msg), "key {kl} msg {ml}");
        }
    }
    // RFC 4231 test case 2.
    let key = b"Jefe";
    let msg = b"what do ya want for nothing?";
    let mut b = Builder::new();
    let k = b.inputs(32);
    let m = b.inputs(8 * msg.len());
    let h = hmac_sha256(&mut b, &k, &m).unwrap();
    let c = b.finish(&h).unwrap();
    assert_eq!(
        hex::encode(c.evaluate_bytes(&[&key[..], msg].concat()).unwrap()),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let mut b = Builder::new();
    let k = b.inputs(520);
    assert!(hmac_sha256(&mut b, &k, &[]).is_err());
    let k = b.inputs(12);
    assert!(hmac_sha256(&mut b, &k[..8], &k[..4]).is_err());
}

/// Inputs: key (128), then per field bytes (512) and len (8).
fn nullifier_circuit(kinds: &[FieldKind], scope: &str) -> Circuit {
    let mut b = Builder::new();
    let key = b.inputs(128);
    let fields: Vec<(FieldKind, FieldBits)> = kinds
        .iter()
        .map(|&k| {
            let bytes = b.inputs(8 * MAX_VALUE);
            let len = b.inputs(8);
            (k, FieldBits { bytes, len })
        })
        .collect();
    let n = nullifier(&mut b, &key, &fields, scope).unwrap();
    b.finish(&n).unwrap()
}

#[test]
fn nullifier_gadget_matches_reference() {
    let mut r = rng(60);
    let kinds = [
        FieldKind::Text,
        FieldKind::Date(DateFormat::DayDot),
        FieldKind::Text,
    ];
    let scope = "relying-party.example/v1";
    let c = nullifier_circuit(&kinds, scope);
    for _ in 0..12 {
        let key = Gf128::random(&mut r);
        let a = canon::canon_text(std::str::from_utf8(&random_domain(&mut r, 64)).unwrap());
        let d = format!(
            "{:04}-{:02}-{:02}",
            r.gen_range(0..10000),
            r.gen_range(1..13),
            r.gen_range(1..32)
        );
        let e = canon::canon_text(std::str::from_utf8(&random_domain(&mut r, 64)).unwrap());
        let want = canon::nullifier(
            &key,
            &[(kinds[0], &a), (kinds[1], &d), (kinds[2], &e)],
            scope,
        )
        .unwrap();
        let mut inp = key.to_bytes().to_vec();
        for v in [&a, &d, &e] {
            // Garbage past the length must not matter.
            let mut bytes = v.as_bytes().to_vec();
            while bytes.len() < MAX_VALUE {
                bytes.push(r.gen());
            }
            inp.extend(bytes);
            inp.push(v.len() as u8);
        }
        assert_eq!(c.evaluate_bytes(&inp).unwrap(), want);
    }
    // Parameter errors.
    let mut b = Builder::new();
    let key = b.inputs(128);
    let f = FieldBits {
        bytes: b.inputs(512),
        len: b.inputs(8),
    };
    let one = [(FieldKind::Text, f.clone())];
    assert!(nullifier(&mut b, &key, &one, "").is_err());
    assert!(nullifier(&mut b, &key, &one, &"s".repeat(65)).is_err());
    assert!(nullifier(&mut b, &key, &[], "s").is_err());
    let nine: Vec<(FieldKind, FieldBits)> = (0..9).map(|_| one[0].clone()).collect();
    assert!(nullifier(&mut b, &key, &nine, "s").is_err());
    assert!(nullifier(&mut b, &key[..64], &one, "s").is_err());
    let short = [(
        FieldKind::Text,
        FieldBits {
            bytes: f.bytes[..256].to_vec(),
            len: f.len.clone(),
        },
    )];
    assert!(nullifier(&mut b, &key, &short, "s").is_err());
}

// ---------------------------------------------------------------------------------------
// Costs (the table in the module doc)

fn and_count(f: impl FnOnce(&mut Builder)) -> usize {
    let mut b = Builder::new();
    f(&mut b);
    b.and_count()
}

#[test]
fn and_counts() {
    let text = and_count(|b| {
        let x = b.inputs(8 * 64);
        let l = b.inputs(8);
        canon_text(b, &x, &l).unwrap();
    });
    let dates: Vec<usize> = DateFormat::ALL
        .iter()
        .map(|&f| {
            and_count(|b| {
                let x = b.inputs(8 * 10);
                let l = b.inputs(8);
                canon_date(b, &x, &l, f).unwrap();
            })
        })
        .collect();
    let dec = and_count(|b| {
        let x = b.inputs(8 * 64);
        let l = b.inputs(8);
        parse_decimal(b, &x, &l).unwrap();
    });
    let combine = and_count(|b| {
        let s: Vec<(u16, Vec<Bit>)> = (1..=3).map(|x| (x, b.inputs(128))).collect();
        combine_shares(b, &s, 2).unwrap();
    });
    let kinds = [FieldKind::Text; 3];
    let null = nullifier_circuit(&kinds, "scope").and_count();
    // The same with constant lengths: the masking folds away, leaving the HMAC.
    let null_hmac = and_count(|b| {
        let key = b.inputs(128);
        let fields: Vec<(FieldKind, FieldBits)> = kinds
            .iter()
            .map(|&k| {
                let bytes = b.inputs(8 * MAX_VALUE);
                (
                    k,
                    FieldBits {
                        bytes,
                        len: bits::const_num(64, 8),
                    },
                )
            })
            .collect();
        nullifier(b, &key, &fields, "scope").unwrap();
    });
    let hmac = and_count(|b| {
        let k = b.inputs(128);
        let m = b.inputs(8 * canon::message_len(3));
        hmac_sha256(b, &k, &m).unwrap();
    });
    println!(
        "canon_text(64) {text}, canon_date {dates:?}, parse_decimal(64) {dec}, \
         combine(3,2) {combine}, nullifier(3 text) {null} of which HMAC {null_hmac}, \
         hmac(all-wire 3-field message) {hmac}"
    );
    assert_eq!(text, 9_077);
    assert_eq!(dates, [114, 98, 114, 114, 114, 114]);
    assert_eq!(dec, 3_546);
    assert_eq!(combine, 127);
    assert_eq!(null, 174_444);
    assert_eq!(null_hmac, 172_609);
    assert_eq!(hmac, 177_769);
}
