//! `tessera demo` end to end: the whole notary network on loopback (coordinator, three
//! nodes, attested QUIC) proving byte ranges of a large body served by the demo provider,
//! with the transfer's progress shown while the session runs, and the proof verified.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn demo_proves_a_range_of_a_large_body_showing_the_transfer() {
    let dir = tempfile::tempdir().unwrap();
    // 600 KiB of text whose bytes depend on their offset, so the revealed range is checkable.
    let body: Vec<u8> = (0..600 * 1024)
        .map(|i: usize| b'a' + ((i * 7 + i / 251) % 26) as u8)
        .collect();
    let path = dir.path().join("body.txt");
    std::fs::write(&path, &body).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["demo", "--body"])
        .arg(&path)
        .args(["--reveal-range", "1000:1032", "--dir"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let want = std::str::from_utf8(&body[1000..1032]).unwrap();
    assert!(
        stdout.contains(&format!("body[1000:1032] = \"{want}\"")),
        "{stdout}"
    );
    assert!(stdout.contains("verified"), "{stdout}");
    // Not a terminal: one line per progress report, every 256 KiB of the transfer.
    let reports = stderr
        .lines()
        .filter(|l| l.contains("MiB received"))
        .count();
    assert!(reports >= 2, "{stderr}");
    assert!(stderr.contains("SIMULATED"), "{stderr}");
}

#[test]
fn demo_with_a_missing_body_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["demo", "--body"])
        .arg(dir.path().join("nope.bin"))
        .args(["--dir"])
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cannot read the body"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
