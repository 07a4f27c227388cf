//! End to end: dealerless key generation among three nodes, then one circuit that
//! reconstructs the key from the shares, canonicalizes a name and a date, and computes the
//! nullifier — checked against the plaintext reference, across spellings, scopes, a
//! membership change and a tampered share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use mpc::circuit::{bits_to_bytes, bytes_to_bits, Builder, Circuit};
use rand::rngs::StdRng;
use rand::SeedableRng;
use uid_prf::canon::{self, DateFormat, FieldKind, MAX_VALUE};
use uid_prf::circuit::{canon_date, canon_text, combine_shares, nullifier};
use uid_prf::shamir::{self, Share};
use uid_prf::Gf128;

const SCOPE: &str = "bank.example/accounts";

/// Inputs: each node's share value (128 bits, in the order of `xs`), the name (64 bytes +
/// length), the date (10 bytes + length). Outputs: nullifier (256), inconsistent, name ok,
/// date ok.
fn uid_circuit(xs: &[u16], t: usize, f: DateFormat, scope: &str) -> Circuit {
    let mut b = Builder::new();
    let shares: Vec<(u16, Vec<_>)> = xs.iter().map(|&x| (x, b.inputs(128))).collect();
    let name = b.inputs(8 * MAX_VALUE);
    let name_len = b.inputs(8);
    let date = b.inputs(8 * 10);
    let date_len = b.inputs(8);
    let (key, inconsistent) = combine_shares(&mut b, &shares, t).unwrap();
    let name = canon_text(&mut b, &name, &name_len).unwrap();
    let date = canon_date(&mut b, &date, &date_len, f).unwrap();
    let fields = [
        (FieldKind::Text, (&name).into()),
        (FieldKind::Date(f), date.field_bits()),
    ];
    let n = nullifier(&mut b, &key, &fields, scope).unwrap();
    let mut out = n;
    out.extend([inconsistent, name.ok, date.ok]);
    b.finish(&out).unwrap()
}

struct Run {
    nullifier: Vec<u8>,
    inconsistent: bool,
    name_ok: bool,
    date_ok: bool,
}

fn run(c: &Circuit, shares: &[Share], name: &str, date: &str) -> Run {
    let mut inp = Vec::new();
    for s in shares {
        inp.extend(bytes_to_bits(&s.y.to_bytes()));
    }
    let mut nb = name.as_bytes().to_vec();
    nb.resize(MAX_VALUE, b'#');
    inp.extend(bytes_to_bits(&nb));
    inp.extend(bytes_to_bits(&[name.len() as u8]));
    let mut db = date.as_bytes().to_vec();
    db.resize(10, b'#');
    inp.extend(bytes_to_bits(&db));
    inp.extend(bytes_to_bits(&[date.len() as u8]));
    let out = c.evaluate(&inp).unwrap();
    Run {
        nullifier: bits_to_bytes(&out[..256]),
        inconsistent: out[256],
        name_ok: out[257],
        date_ok: out[258],
    }
}

fn reference(key: &Gf128, name: &str, date: &str, f: DateFormat, scope: &str) -> Vec<u8> {
    let name = canon::canon_text(name);
    let date = canon::canon_date(date, f).unwrap();
    canon::nullifier(
        key,
        &[(FieldKind::Text, &name), (FieldKind::Date(f), &date)],
        scope,
    )
    .unwrap()
    .to_vec()
}

fn keygen(xs: &[u16], t: usize, rng: &mut StdRng) -> Vec<Share> {
    let dealings: Vec<Vec<Share>> = xs
        .iter()
        .map(|_| shamir::keygen_deal(xs, t, rng).unwrap())
        .collect();
    xs.iter()
        .enumerate()
        .map(|(i, &x)| {
            let mine: Vec<Share> = dealings.iter().map(|d| d[i].clone()).collect();
            shamir::keygen_combine(x, &mine).unwrap()
        })
        .collect()
}

fn reshare(
    old: &[Share],
    qualified: &[u16],
    new_xs: &[u16],
    t: usize,
    rng: &mut StdRng,
) -> Vec<Share> {
    let dealings: Vec<Vec<Share>> = qualified
        .iter()
        .map(|q| {
            let my = old.iter().find(|s| s.x == *q).unwrap();
            shamir::reshare_deal(my, qualified, new_xs, t, rng).unwrap()
        })
        .collect();
    new_xs
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let mine: Vec<Share> = dealings.iter().map(|d| d[i].clone()).collect();
            shamir::reshare_combine(x, &mine).unwrap()
        })
        .collect()
}

#[test]
fn uid_end_to_end() {
    let mut rng = StdRng::seed_from_u64(2024);
    let shares = keygen(&[1, 2, 3], 2, &mut rng);
    let key = shamir::combine(&shares, 2).unwrap();

    let iso = uid_circuit(&[1, 2, 3], 2, DateFormat::Iso, SCOPE);
    let day_dot = uid_circuit(&[1, 2, 3], 2, DateFormat::DayDot, SCOPE);

    // The circuit equals the reference.
    let a = run(&iso, &shares, "Alice  SMITH", "1990-04-01");
    assert!(a.name_ok && a.date_ok && !a.inconsistent);
    assert_eq!(
        a.nullifier,
        reference(&key, "Alice  SMITH", "1990-04-01", DateFormat::Iso, SCOPE)
    );

    // The same person written differently: same nullifier.
    let b = run(&day_dot, &shares, " alice smith", "01.04.1990");
    assert!(b.name_ok && b.date_ok && !b.inconsistent);
    assert_eq!(b.nullifier, a.nullifier);

    // Another person, another date, another scope: different nullifiers.
    let other = run(&iso, &shares, "Alice Smyth", "1990-04-01");
    assert_ne!(other.nullifier, a.nullifier);
    let other_date = run(&iso, &shares, "Alice Smith", "1990-04-02");
    assert_ne!(other_date.nullifier, a.nullifier);
    let other_scope = uid_circuit(&[1, 2, 3], 2, DateFormat::Iso, "shop.example");
    let s = run(&other_scope, &shares, "Alice Smith", "1990-04-01");
    assert_ne!(s.nullifier, a.nullifier);
    assert_eq!(
        s.nullifier,
        reference(
            &key,
            "alice smith",
            "1990-04-01",
            DateFormat::Iso,
            "shop.example"
        )
    );

    // Invalid inputs clear the ok bits.
    let bad = run(&day_dot, &shares, "Alice \"Al\" Smith", "31.13.1990");
    assert!(!bad.name_ok && !bad.date_ok);

    // A tampered share is caught.
    let mut tampered = shares.clone();
    tampered[2].y += Gf128::ONE;
    assert!(run(&iso, &tampered, "Alice Smith", "1990-04-01").inconsistent);
    let mut tampered = shares.clone();
    tampered[0].y += Gf128::from_u128(1 << 100);
    let t = run(&iso, &tampered, "Alice Smith", "1990-04-01");
    assert!(t.inconsistent);
    assert_ne!(t.nullifier, a.nullifier);

    // Node 3 leaves, node 4 joins: same key, same nullifier.
    let after_leave = reshare(&shares, &[1, 2], &[1, 2], 2, &mut rng);
    let after_join = reshare(&after_leave, &[1, 2], &[1, 2, 4], 2, &mut rng);
    assert_eq!(shamir::combine(&after_join, 2).unwrap(), key);
    let joined = uid_circuit(&[1, 2, 4], 2, DateFormat::DayDot, SCOPE);
    let c = run(&joined, &after_join, "ALICE SMITH ", "01.04.1990");
    assert!(c.name_ok && c.date_ok && !c.inconsistent);
    assert_eq!(c.nullifier, a.nullifier);

    // The leaver's old share mixed with new ones is inconsistent and gives another key.
    let mut mixed = after_join.clone();
    mixed[2] = shares[2].clone();
    let mixed_circuit = uid_circuit(&[1, 2, 3], 2, DateFormat::DayDot, SCOPE);
    let m = run(&mixed_circuit, &mixed, "alice smith", "01.04.1990");
    assert!(m.inconsistent);
    let old_first = [
        shares[2].clone(),
        after_join[0].clone(),
        after_join[1].clone(),
    ];
    let m2 = run(
        &uid_circuit(&[3, 1, 2], 2, DateFormat::DayDot, SCOPE),
        &old_first,
        "alice smith",
        "01.04.1990",
    );
    assert!(m2.inconsistent);
    assert_ne!(m2.nullifier, a.nullifier);
}
