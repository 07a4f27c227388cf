//! Real Intel quotes (from dcap-qvl's samples, see testdata/dcap/README.md) verified with
//! Intel's production root at the documented times.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attestation::quote::collateral_from_json;
use attestation::{Measurements, TeeKind, Verifier, VerifyError};

const SGX_QUOTE: &[u8] = include_bytes!("../testdata/dcap/sgx_quote");
const SGX_COLLATERAL: &str = include_str!("../testdata/dcap/sgx_quote_collateral.json");
const TDX_QUOTE: &[u8] = include_bytes!("../testdata/dcap/tdx_quote");
const TDX_COLLATERAL: &str = include_str!("../testdata/dcap/tdx_quote_collateral.json");
const SGX_AT: u64 = 1_751_624_924;
const TDX_AT: u64 = 1_751_328_000;

#[test]
fn sgx_quote_verifies_with_its_advisories() {
    let coll = collateral_from_json(SGX_COLLATERAL).unwrap();
    let v = Verifier::intel().verify(SGX_QUOTE, &coll, SGX_AT).unwrap();
    assert_eq!(v.tee, TeeKind::Sgx);
    assert_eq!(v.quote_version, 3);
    assert_eq!(v.status, "ConfigurationAndSWHardeningNeeded");
    assert_eq!(v.advisories, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    assert!(!v.simulated);
    assert!(
        v.report_data.starts_with("48656c6c6f2c20776f726c6421"),
        "{}",
        v.report_data
    );
    assert!(matches!(v.measurements, Measurements::Sgx { .. }));
}

#[test]
fn tdx_quote_verifies_up_to_date() {
    let coll = collateral_from_json(TDX_COLLATERAL).unwrap();
    let v = Verifier::intel().verify(TDX_QUOTE, &coll, TDX_AT).unwrap();
    assert_eq!(v.tee, TeeKind::Tdx);
    assert_eq!(v.quote_version, 4);
    assert_eq!(v.status, "UpToDate");
    assert!(v.advisories.is_empty());
    assert!(
        v.report_data.starts_with("9a9d48e7f6799642"),
        "{}",
        v.report_data
    );
    let Measurements::Tdx { mrtd, rtmr } = &v.measurements else {
        panic!("not TDX")
    };
    assert_eq!(mrtd.len(), 96);
    assert!(rtmr.iter().all(|r| r.len() == 96));
}

/// Any time after the TCB info's nextUpdate (just after 1752919278) is rejected as expired.
#[test]
fn after_next_update_is_rejected() {
    for (quote, coll, at) in [
        (SGX_QUOTE, SGX_COLLATERAL, SGX_AT),
        (TDX_QUOTE, TDX_COLLATERAL, TDX_AT),
    ] {
        let coll = collateral_from_json(coll).unwrap();
        // Still fine one day before expiry…
        Verifier::intel()
            .verify(quote, &coll, 1_752_919_278 - 86_400)
            .unwrap();
        // …rejected the day after, and years after.
        for later in [1_752_919_279, 1_752_919_278 + 86_400, 1_900_000_000] {
            let err = Verifier::intel().verify(quote, &coll, later).unwrap_err();
            assert!(
                matches!(err, VerifyError::CollateralExpired { now, .. } if now == later),
                "{err}"
            );
        }
        let _ = at;
    }
}

/// The signed part of a quote is the header and the report body: flipping any one byte there
/// must make verification fail. Every byte is tried.
#[test]
fn any_flipped_byte_in_the_signed_part_is_rejected() {
    for (quote, coll, at, body_len) in [
        (SGX_QUOTE, SGX_COLLATERAL, SGX_AT, 384usize),
        (TDX_QUOTE, TDX_COLLATERAL, TDX_AT, 584usize),
    ] {
        let coll = collateral_from_json(coll).unwrap();
        let signed = 48 + body_len;
        for i in 0..signed {
            let mut q = quote.to_vec();
            q[i] ^= 0x01;
            assert!(
                Verifier::intel().verify(&q, &coll, at).is_err(),
                "flipping byte {i} of {signed} was accepted"
            );
        }
    }
}

#[test]
fn flipped_bytes_in_signature_data_are_rejected() {
    let coll = collateral_from_json(SGX_COLLATERAL).unwrap();
    // The quote's own signature, the attestation key, the QE report and its signature.
    for i in [
        48 + 384 + 4,
        48 + 384 + 4 + 64,
        48 + 384 + 4 + 128 + 100,
        48 + 384 + 4 + 128 + 384,
    ] {
        let mut q = SGX_QUOTE.to_vec();
        q[i] ^= 0x80;
        assert!(
            Verifier::intel().verify(&q, &coll, SGX_AT).is_err(),
            "byte {i}"
        );
    }
}

#[test]
fn truncated_or_garbage_quotes_are_malformed_not_panics() {
    let coll = collateral_from_json(SGX_COLLATERAL).unwrap();
    for len in [0, 10, 48, 432, 436, 1000, SGX_QUOTE.len() - 1] {
        let err = Verifier::intel()
            .verify(&SGX_QUOTE[..len], &coll, SGX_AT)
            .unwrap_err();
        assert!(matches!(err, VerifyError::Malformed(_)), "len {len}: {err}");
    }
}

#[test]
fn a_real_quote_with_the_other_tees_collateral_is_rejected() {
    let coll = collateral_from_json(TDX_COLLATERAL).unwrap();
    let err = Verifier::intel()
        .verify(SGX_QUOTE, &coll, SGX_AT)
        .unwrap_err();
    assert!(matches!(err, VerifyError::Dcap(_)), "{err}");
}

/// The reported `collateral_expires` is exact: verification passes the second before it and
/// fails with `CollateralExpired` after it.
#[test]
fn collateral_expires_is_the_last_valid_second() {
    for (quote, coll, at) in [
        (SGX_QUOTE, SGX_COLLATERAL, SGX_AT),
        (TDX_QUOTE, TDX_COLLATERAL, TDX_AT),
    ] {
        let coll = collateral_from_json(coll).unwrap();
        let until = Verifier::intel()
            .verify(quote, &coll, at)
            .unwrap()
            .collateral_expires;
        Verifier::intel().verify(quote, &coll, until - 1).unwrap();
        let err = Verifier::intel()
            .verify(quote, &coll, until + 1)
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::CollateralExpired { .. }),
            "{err}"
        );
    }
}
