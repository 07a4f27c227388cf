//! The simulated TEE: its quotes verify with *unmodified* dcap-qvl given the test root, and each
//! way a simulated platform can be bad is refused with its own error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attestation::sim::{CollateralWindow, PlatformStatus, SimIdentity, SimPki, SimulatedTee};
use attestation::{Measurements, Policy, PolicyError, QuoteSource, TeeKind, Verifier, VerifyError};

const NOW: u64 = 1_790_000_000;

fn sgx() -> SimIdentity {
    SimIdentity::Sgx {
        mr_enclave: [0xa1; 32],
        mr_signer: [0xb2; 32],
        isv_prod_id: 7,
        isv_svn: 3,
    }
}

fn tdx(version: u16) -> SimIdentity {
    SimIdentity::Tdx {
        version,
        mr_td: [0xc3; 48],
        rtmr: [[1; 48], [2; 48], [3; 48], [4; 48]],
    }
}

fn tee(identity: SimIdentity) -> SimulatedTee {
    SimulatedTee::new(SimPki::from_seed(b"simulated.rs").unwrap(), identity)
}

fn window() -> CollateralWindow {
    CollateralWindow::around(NOW, 30)
}

#[test]
fn unmodified_dcap_qvl_verifies_simulated_quotes_with_the_test_root() {
    for (identity, version, tee_type) in [(sgx(), 3, 0u32), (tdx(4), 4, 0x81), (tdx(5), 5, 0x81)] {
        let t = tee(identity);
        let quote = t.quote(&[0x5a; 64]).unwrap();
        let coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
        let qvl = dcap_qvl::verify::QuoteVerifier::new(t.pki().root_der());
        let report = qvl.verify(&quote, &coll, NOW).unwrap();
        assert_eq!(report.status, "UpToDate");
        let claims = qvl
            .verify_with_policy(
                &quote,
                coll.clone(),
                NOW,
                &dcap_qvl::QuotePolicy::strict(NOW),
            )
            .unwrap();
        assert_eq!(claims.header.version, version);
        assert_eq!(claims.tee_type, tee_type);
        // …and Intel's root does not accept them.
        assert!(dcap_qvl::verify::QuoteVerifier::new_prod()
            .verify(&quote, &coll, NOW)
            .is_err());
    }
}

#[test]
fn verifier_labels_simulated_quotes_and_reads_measurements() {
    let t = tee(sgx());
    let quote = t.quote(&[7; 64]).unwrap();
    let coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
    let v = Verifier::intel()
        .allow_simulated(t.pki().root_der())
        .verify(&quote, &coll, NOW)
        .unwrap();
    assert!(v.simulated);
    assert_eq!(v.tee, TeeKind::Sgx);
    assert_eq!(v.report_data, hex::encode([7u8; 64]));
    assert_eq!(
        v.measurements,
        Measurements::Sgx {
            mrenclave: hex::encode([0xa1; 32]),
            mrsigner: hex::encode([0xb2; 32]),
            isv_prod_id: 7,
            isv_svn: 3
        }
    );
    assert!(t.label().contains("SIMULATED"));

    let t = tee(tdx(5));
    let quote = t.quote(&[9; 64]).unwrap();
    let coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
    let v = Verifier::intel()
        .allow_simulated(t.pki().root_der())
        .verify(&quote, &coll, NOW)
        .unwrap();
    assert_eq!(
        (v.tee, v.quote_version, v.simulated),
        (TeeKind::Tdx, 5, true)
    );
    let Measurements::Tdx { mrtd, rtmr } = v.measurements else {
        panic!()
    };
    assert_eq!(mrtd, hex::encode([0xc3; 48]));
    assert_eq!(rtmr[3], hex::encode([4; 48]));
}

#[test]
fn simulation_is_refused_unless_allowed() {
    let t = tee(sgx());
    let quote = t.quote(&[0; 64]).unwrap();
    let coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
    let err = Verifier::intel().verify(&quote, &coll, NOW).unwrap_err();
    assert_eq!(err, VerifyError::SimulationRefused);
    // An injected root that is not the simulated one does not help either.
    let other = SimPki::from_seed(b"other").unwrap();
    let err = Verifier::with_root(other.root_der())
        .verify(&quote, &coll, NOW)
        .unwrap_err();
    assert_eq!(err, VerifyError::SimulationRefused);
    // Allowing a different simulated PKI's root: the chain does not verify.
    let err = Verifier::intel()
        .allow_simulated(other.root_der())
        .verify(&quote, &coll, NOW)
        .unwrap_err();
    assert!(matches!(err, VerifyError::Dcap(_)), "{err}");
}

#[test]
fn the_same_seed_gives_an_equivalent_root_in_another_instance() {
    let a = tee(sgx());
    let b = SimPki::from_seed(b"simulated.rs").unwrap();
    let quote = a.quote(&[1; 64]).unwrap();
    let coll = a.collateral(&PlatformStatus::default(), window()).unwrap();
    Verifier::intel()
        .allow_simulated(b.root_der())
        .verify(&quote, &coll, NOW)
        .unwrap();
}

#[test]
fn expired_and_not_yet_valid_collateral_are_their_own_errors() {
    let t = tee(tdx(4));
    let quote = t.quote(&[0; 64]).unwrap();
    let coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
    let v = Verifier::intel().allow_simulated(t.pki().root_der());
    let late = NOW + 31 * 86_400;
    assert!(matches!(
        v.verify(&quote, &coll, late).unwrap_err(),
        VerifyError::CollateralExpired { item: "TCB info", now, .. } if now == late
    ));
    let early = NOW - 2 * 3600;
    assert!(matches!(
        v.verify(&quote, &coll, early).unwrap_err(),
        VerifyError::CollateralNotYetValid {
            item: "TCB info",
            ..
        }
    ));
}

#[test]
fn revoked_tcb_status_and_revoked_pck_certificate() {
    let t = tee(sgx());
    let quote = t.quote(&[0; 64]).unwrap();
    let v = Verifier::intel().allow_simulated(t.pki().root_der());
    let revoked = PlatformStatus {
        status: "Revoked".into(),
        advisories: vec!["INTEL-SA-00999".into()],
        pck_revoked: false,
    };
    let coll = t.collateral(&revoked, window()).unwrap();
    assert_eq!(
        v.verify(&quote, &coll, NOW).unwrap_err(),
        VerifyError::TcbRevoked
    );

    let pck_revoked = PlatformStatus {
        pck_revoked: true,
        ..PlatformStatus::default()
    };
    let coll = t.collateral(&pck_revoked, window()).unwrap();
    let err = v.verify(&quote, &coll, NOW).unwrap_err();
    assert!(matches!(err, VerifyError::CertificateRevoked(_)), "{err}");
}

#[test]
fn tampered_collateral_is_rejected() {
    let t = tee(sgx());
    let quote = t.quote(&[0; 64]).unwrap();
    let v = Verifier::intel().allow_simulated(t.pki().root_der());
    let mut coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
    // Upgrade our own status in the signed TCB info: the signature no longer matches.
    coll.tcb_info = coll.tcb_info.replace("\"UpToDate\"", "\"UpToDate\" ");
    let err = v.verify(&quote, &coll, NOW).unwrap_err();
    assert!(
        matches!(err, VerifyError::Dcap(ref m) if m.contains("tcb_info")),
        "{err}"
    );
}

#[test]
fn debug_is_reported_and_refused_by_policy() {
    let t = tee(sgx()).with_debug(true);
    let quote = t.quote(&[0; 64]).unwrap();
    let coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
    let v = Verifier::intel()
        .allow_simulated(t.pki().root_der())
        .verify(&quote, &coll, NOW)
        .unwrap();
    assert!(v.debug);
    let policy = Policy::from_toml(&format!(
        r#"allowed_tcb_statuses = ["UpToDate"]
allow_simulated = true
[[measurement]]
name = "x"
tee = "sgx"
mrenclave = "{}"
simulated = true
"#,
        hex::encode([0xa1; 32])
    ))
    .unwrap();
    assert_eq!(
        policy.check(&v).unwrap_err(),
        PolicyError::DebugEnclave(TeeKind::Sgx)
    );

    let t = tee(tdx(4)).with_debug(true);
    let quote = t.quote(&[0; 64]).unwrap();
    let coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
    let v = Verifier::intel()
        .allow_simulated(t.pki().root_der())
        .verify(&quote, &coll, NOW)
        .unwrap();
    assert!(v.debug);
}

#[test]
fn every_flipped_byte_in_a_simulated_quotes_signed_part_is_rejected() {
    let t = tee(tdx(5));
    let quote = t.quote(&[3; 64]).unwrap();
    let coll = t.collateral(&PlatformStatus::default(), window()).unwrap();
    let v = Verifier::intel().allow_simulated(t.pki().root_der());
    v.verify(&quote, &coll, NOW).unwrap();
    for i in 0..48 + 6 + 648 {
        let mut q = quote.clone();
        q[i] ^= 0x04;
        assert!(v.verify(&q, &coll, NOW).is_err(), "byte {i}");
    }
}
