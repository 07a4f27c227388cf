//! Sealed storage: round trip, and every way a sealed file can be wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use threshold::{read_sealed, write_sealed, KeyFileSealer, NodeKey, Sealer, StoreError};

const AAD: &[u8] = b"tessera/node-key/v1/node=2";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn node_key_round_trips_through_a_sealed_file() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, group) = run_dkg(&[1, 2, 3], 2, 500);
    let sealer = KeyFileSealer::open_or_create(dir.path().join("sealing.key")).unwrap();
    assert_eq!(sealer.label(), "key-file (simulated sealing, not a TEE)");
    assert!(sealer.is_simulated());
    let path = dir.path().join("node-2.sealed");
    write_sealed(&path, &sealer, AAD, &keys[&2].to_bytes().unwrap()).unwrap();
    // The file does not contain the key in the clear.
    let raw = std::fs::read(&path).unwrap();
    let plain = keys[&2].to_bytes().unwrap();
    assert!(!raw.windows(plain.len()).any(|w| w == &plain[..]));
    assert_eq!(&raw[..7], b"TSSEAL\x01");

    // A new process: reopen the key file, read the sealed key, sign.
    let sealer2 = KeyFileSealer::open_or_create(dir.path().join("sealing.key")).unwrap();
    assert_eq!(sealer2.key_id(), sealer.key_id());
    let restored = NodeKey::from_bytes(&read_sealed(&path, &sealer2, AAD).unwrap()).unwrap();
    restored.check_against(&group).unwrap();
    let mut both = std::collections::BTreeMap::new();
    both.insert(2, restored);
    both.insert(
        3,
        NodeKey::from_bytes(&keys[&3].to_bytes().unwrap()).unwrap(),
    );
    let sig = sign_with(&both, &group, &[2, 3], b"after restart", 501).unwrap();
    assert!(dalek_verify(&group, b"after restart", &sig));

    // Overwrite is atomic and leaves no temporary files behind.
    write_sealed(&path, &sealer, AAD, b"second version").unwrap();
    assert_eq!(
        &read_sealed(&path, &sealer, AAD).unwrap()[..],
        b"second version"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn key_file_and_sealed_file_are_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("sealing.key");
    let sealer = KeyFileSealer::open_or_create(&key_path).unwrap();
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(std::fs::metadata(&key_path).unwrap().len(), 32);
    let path = dir.path().join("blob.sealed");
    write_sealed(&path, &sealer, AAD, b"secret").unwrap();
    assert_eq!(mode(&path), 0o600);
    // Rewriting a file that had wider permissions leaves it at 0600.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    write_sealed(&path, &sealer, AAD, b"secret 2").unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn wrong_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = KeyFileSealer::open_or_create(dir.path().join("a.key")).unwrap();
    let b = KeyFileSealer::open_or_create(dir.path().join("b.key")).unwrap();
    assert_ne!(a.key_id(), b.key_id());
    let path = dir.path().join("blob.sealed");
    write_sealed(&path, &a, AAD, b"secret").unwrap();
    let err = read_sealed(&path, &b, AAD).unwrap_err();
    assert!(matches!(err, StoreError::WrongKey { .. }), "{err}");
    assert!(err.to_string().contains(&a.key_id()));

    // Same key id but a different key (forged header): authentication still fails.
    let mut raw = std::fs::read(&path).unwrap();
    let b_blob = b.seal(AAD, b"x").unwrap();
    raw[7..15].copy_from_slice(&b_blob[7..15]);
    assert!(matches!(b.unseal(AAD, &raw), Err(StoreError::Unseal)));
}

#[test]
fn tampered_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sealer = KeyFileSealer::open_or_create(dir.path().join("k")).unwrap();
    let path = dir.path().join("blob.sealed");
    write_sealed(&path, &sealer, AAD, b"the node key bytes").unwrap();
    let good = std::fs::read(&path).unwrap();
    // Flip one bit anywhere after the header: nonce, ciphertext or tag.
    for i in [15, 20, 27, 30, good.len() - 1] {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        let err = read_sealed(&path, &sealer, AAD).unwrap_err();
        assert!(matches!(err, StoreError::Unseal), "byte {i}: {err}");
    }
    // Header damage.
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(
        sealer.unseal(AAD, &bad),
        Err(StoreError::NotSealed)
    ));
    let mut bad = good.clone();
    bad[6] = 2;
    assert!(matches!(
        sealer.unseal(AAD, &bad),
        Err(StoreError::UnsupportedVersion(2))
    ));
    let mut bad = good.clone();
    bad[9] ^= 0x80;
    assert!(matches!(
        sealer.unseal(AAD, &bad),
        Err(StoreError::WrongKey { .. })
    ));
    // Truncation.
    assert!(matches!(
        sealer.unseal(AAD, &good[..30]),
        Err(StoreError::Truncated(30))
    ));
    assert!(matches!(
        sealer.unseal(AAD, &good[..good.len() - 1]),
        Err(StoreError::Unseal)
    ));
    // Nothing written back: the original still reads.
    std::fs::write(&path, &good).unwrap();
    assert_eq!(
        &read_sealed(&path, &sealer, AAD).unwrap()[..],
        b"the node key bytes"
    );
}

#[test]
fn wrong_aad_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sealer = KeyFileSealer::open_or_create(dir.path().join("k")).unwrap();
    let path = dir.path().join("blob.sealed");
    write_sealed(&path, &sealer, AAD, b"node 2's key").unwrap();
    let err = read_sealed(&path, &sealer, b"tessera/node-key/v1/node=3").unwrap_err();
    assert!(matches!(err, StoreError::Unseal), "{err}");
    assert!(matches!(
        read_sealed(&path, &sealer, b""),
        Err(StoreError::Unseal)
    ));
}

#[test]
fn damaged_key_file_is_reported_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("k");
    std::fs::write(&key_path, [7u8; 31]).unwrap();
    let err = KeyFileSealer::open_or_create(&key_path).unwrap_err();
    assert!(
        matches!(err, StoreError::BadKeyFile { len: 31, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&key_path).unwrap(), vec![7u8; 31]);
    let fresh = KeyFileSealer::open_or_create(dir.path().join("k2")).unwrap();
    let sealer: &dyn Sealer = &fresh;
    let missing = read_sealed(dir.path().join("nope"), sealer, AAD).unwrap_err();
    assert!(matches!(missing, StoreError::Io { .. }));
}

#[test]
fn errors_and_debug_never_show_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("k");
    let sealer = KeyFileSealer::open_or_create(&key_path).unwrap();
    let key_hex = hex::encode(std::fs::read(&key_path).unwrap());
    let other = KeyFileSealer::open_or_create(dir.path().join("k2")).unwrap();
    let blob = sealer.seal(AAD, b"plaintext-marker").unwrap();
    let mut texts = vec![format!("{sealer:?}")];
    for err in [
        other.unseal(AAD, &blob).unwrap_err(),
        sealer.unseal(b"other", &blob).unwrap_err(),
        sealer.unseal(AAD, &blob[..20]).unwrap_err(),
    ] {
        texts.push(err.to_string());
        texts.push(format!("{err:?}"));
    }
    for t in texts {
        assert!(!t.contains(&key_hex), "{t}");
        assert!(!t.contains("plaintext-marker"), "{t}");
    }
}
