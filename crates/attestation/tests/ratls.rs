//! RA-TLS: certificates carrying quotes, and the verifiers that accept only attested peers with
//! allowed measurements. Each way a peer can be bad is refused with its own error, both by
//! `verify_cert` and inside a real rustls handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use attestation::ratls::{client_config, report_data_for, server_config};
use attestation::sim::{CollateralWindow, PlatformStatus, SimIdentity, SimPki, SimulatedTee};
use attestation::{
    Expectation, Policy, PolicyError, QuoteSource, RaTlsError, RaTlsIdentity, RaTlsVerifier,
    SourceError, TeeKind, Verifier, VerifyError,
};

const NOW: u64 = 1_790_000_000;
const SIM_POLICY: &str = include_str!("../../../configs/measurements.simulated.toml");
const PROD_POLICY: &str = include_str!("../../../configs/measurements.toml");

fn node_tee(tee: TeeKind) -> SimulatedTee {
    SimulatedTee::new(SimPki::well_known().unwrap(), SimIdentity::notary_node(tee))
}

fn identity_from(
    source: &dyn QuoteSource,
    tee: &SimulatedTee,
    status: &PlatformStatus,
    node: &str,
    epoch: u64,
) -> RaTlsIdentity {
    let coll = tee
        .collateral(status, CollateralWindow::around(NOW, 30))
        .unwrap();
    let now = NOW as i64;
    RaTlsIdentity::generate(source, coll, node, epoch, now - 3600, now + 90 * 86_400).unwrap()
}

fn identity(tee: &SimulatedTee, node: &str, epoch: u64) -> RaTlsIdentity {
    identity_from(tee, tee, &PlatformStatus::default(), node, epoch)
}

fn verifier(expect: Expectation) -> RaTlsVerifier {
    let pki = SimPki::well_known().unwrap();
    RaTlsVerifier::new(
        Verifier::intel().allow_simulated(pki.root_der()),
        Policy::from_toml(SIM_POLICY).unwrap(),
        expect,
    )
}

#[test]
fn an_attested_node_is_accepted_with_its_identity() {
    for tee in [TeeKind::Sgx, TeeKind::Tdx] {
        let id = identity(&node_tee(tee), "node-1", 3);
        let peer = verifier(Expectation {
            node_id: Some("node-1".into()),
            epoch: Some(3),
        })
        .verify_cert(id.cert(), NOW)
        .unwrap();
        assert_eq!((peer.node_id.as_str(), peer.epoch), ("node-1", 3));
        assert!(peer.verified.simulated);
        assert_eq!(peer.verified.tee, tee);
        assert!(peer.measurement.unwrap().contains("SIMULATED"));
    }
}

#[test]
fn wrong_measurement() {
    let other = SimulatedTee::new(
        SimPki::well_known().unwrap(),
        SimIdentity::Sgx {
            mr_enclave: [0xee; 32],
            mr_signer: [0xee; 32],
            isv_prod_id: 1,
            isv_svn: 1,
        },
    );
    let id = identity(&other, "node-1", 3);
    let err = verifier(Expectation::default())
        .verify_cert(id.cert(), NOW)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RaTlsError::Policy(PolicyError::MeasurementNotAllowed(_))
        ),
        "{err}"
    );
}

/// A source that ignores the REPORTDATA asked for and quotes over fixed bytes: what a node
/// replaying someone else's quote (or a quote for another key) looks like.
struct FixedReportData<'a>(&'a SimulatedTee, [u8; 64]);

impl QuoteSource for FixedReportData<'_> {
    fn tee(&self) -> TeeKind {
        self.0.tee()
    }
    fn is_simulated(&self) -> bool {
        true
    }
    fn label(&self) -> String {
        self.0.label()
    }
    fn quote(&self, _: &[u8; 64]) -> Result<Vec<u8>, SourceError> {
        self.0.quote(&self.1)
    }
}

#[test]
fn wrong_binding() {
    let tee = node_tee(TeeKind::Sgx);
    // A genuine quote for another key, copied into this certificate.
    let victim = identity(&tee, "node-1", 3);
    let victim_spki = {
        let (_, c) = x509_parser::parse_x509_certificate(victim.cert()).unwrap();
        c.tbs_certificate.subject_pki.raw.to_vec()
    };
    let replay = FixedReportData(&tee, report_data_for(&victim_spki, "node-1", 3));
    let id = identity_from(&replay, &tee, &PlatformStatus::default(), "node-1", 3);
    let err = verifier(Expectation::default())
        .verify_cert(id.cert(), NOW)
        .unwrap_err();
    assert!(matches!(err, RaTlsError::WrongBinding { .. }), "{err}");

    // A quote bound to the right key but another epoch (an old certificate's quote).
    let id = identity(&tee, "node-1", 3);
    let spki = {
        let (_, c) = x509_parser::parse_x509_certificate(id.cert()).unwrap();
        c.tbs_certificate.subject_pki.raw.to_vec()
    };
    assert_eq!(
        hex::encode(report_data_for(&spki, "node-1", 3)),
        verifier(Expectation::default())
            .verify_cert(id.cert(), NOW)
            .unwrap()
            .verified
            .report_data
    );
    let stale = FixedReportData(&tee, report_data_for(&spki, "node-1", 2));
    let id = identity_from(&stale, &tee, &PlatformStatus::default(), "node-1", 3);
    let err = verifier(Expectation::default())
        .verify_cert(id.cert(), NOW)
        .unwrap_err();
    assert!(
        matches!(err, RaTlsError::WrongBinding { epoch: 3, .. }),
        "{err}"
    );
}

#[test]
fn expired_collateral() {
    let id = identity(&node_tee(TeeKind::Tdx), "node-1", 3);
    let later = NOW + 31 * 86_400; // collateral: 30 days; certificate: 90 days
    let err = verifier(Expectation::default())
        .verify_cert(id.cert(), later)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RaTlsError::Quote(VerifyError::CollateralExpired { .. })
        ),
        "{err}"
    );
}

#[test]
fn debug_enclave() {
    for tee in [TeeKind::Sgx, TeeKind::Tdx] {
        let debug = node_tee(tee).with_debug(true);
        let id = identity(&debug, "node-1", 3);
        let err = verifier(Expectation::default())
            .verify_cert(id.cert(), NOW)
            .unwrap_err();
        assert!(
            matches!(err, RaTlsError::Policy(PolicyError::DebugEnclave(t)) if t == tee),
            "{err}"
        );
    }
}

#[test]
fn revoked_status() {
    let tee = node_tee(TeeKind::Sgx);
    let revoked = PlatformStatus {
        status: "Revoked".into(),
        ..PlatformStatus::default()
    };
    let id = identity_from(&tee, &tee, &revoked, "node-1", 3);
    let err = verifier(Expectation::default())
        .verify_cert(id.cert(), NOW)
        .unwrap_err();
    assert!(
        matches!(err, RaTlsError::Quote(VerifyError::TcbRevoked)),
        "{err}"
    );
}

#[test]
fn status_not_allowed_and_advisory_not_allowed() {
    let tee = node_tee(TeeKind::Sgx);
    let out_of_date = PlatformStatus {
        status: "OutOfDate".into(),
        ..PlatformStatus::default()
    };
    let id = identity_from(&tee, &tee, &out_of_date, "node-1", 3);
    let err = verifier(Expectation::default())
        .verify_cert(id.cert(), NOW)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RaTlsError::Policy(PolicyError::TcbStatusNotAllowed { .. })
        ),
        "{err}"
    );
    let advisory = PlatformStatus {
        status: "SWHardeningNeeded".into(),
        advisories: vec!["INTEL-SA-00615".into()],
        pck_revoked: false,
    };
    let id = identity_from(&tee, &tee, &advisory, "node-1", 3);
    let err = verifier(Expectation::default())
        .verify_cert(id.cert(), NOW)
        .unwrap_err();
    assert!(
        matches!(err, RaTlsError::Policy(PolicyError::AdvisoryNotAllowed { ref advisory, .. }) if advisory == "INTEL-SA-00615"),
        "{err}"
    );
}

#[test]
fn wrong_node_wrong_epoch_no_evidence_and_production_policy() {
    let tee = node_tee(TeeKind::Sgx);
    let id = identity(&tee, "node-2", 3);
    let err = verifier(Expectation {
        node_id: Some("node-1".into()),
        epoch: None,
    })
    .verify_cert(id.cert(), NOW)
    .unwrap_err();
    assert!(matches!(err, RaTlsError::WrongNode { .. }), "{err}");
    let err = verifier(Expectation {
        node_id: None,
        epoch: Some(4),
    })
    .verify_cert(id.cert(), NOW)
    .unwrap_err();
    assert!(
        matches!(
            err,
            RaTlsError::WrongEpoch {
                expected: 4,
                found: 3
            }
        ),
        "{err}"
    );

    let plain = rcgen::generate_simple_self_signed(vec!["node-1".into()]).unwrap();
    let err = verifier(Expectation::default())
        .verify_cert(plain.cert.der(), NOW)
        .unwrap_err();
    assert!(matches!(err, RaTlsError::NoEvidence { .. }), "{err}");

    // The production policy and Intel's root refuse the simulated node outright.
    let prod = RaTlsVerifier::new(
        Verifier::intel(),
        Policy::from_toml(PROD_POLICY).unwrap(),
        Expectation::default(),
    );
    let err = prod.verify_cert(id.cert(), NOW).unwrap_err();
    assert!(
        matches!(err, RaTlsError::Quote(VerifyError::SimulationRefused)),
        "{err}"
    );
    // Even with the simulated root trusted, the production policy refuses simulation.
    let prod = RaTlsVerifier::new(
        Verifier::intel().allow_simulated(SimPki::well_known().unwrap().root_der()),
        Policy::from_toml(PROD_POLICY).unwrap(),
        Expectation::default(),
    );
    let err = prod.verify_cert(id.cert(), NOW).unwrap_err();
    assert!(
        matches!(err, RaTlsError::Policy(PolicyError::SimulationRefused)),
        "{err}"
    );

    // Outside the certificate's own validity.
    let err = verifier(Expectation::default())
        .verify_cert(id.cert(), NOW - 7200)
        .unwrap_err();
    assert!(
        matches!(err, RaTlsError::CertificateExpired { .. }),
        "{err}"
    );
}

/// Feed all of `bytes` into `conn`, processing as it goes (read_tls takes at most a buffer's
/// worth per call, and RA-TLS certificates are tens of kilobytes).
fn feed<D>(conn: &mut rustls::ConnectionCommon<D>, bytes: &[u8]) -> Result<(), rustls::Error> {
    let mut rest = bytes;
    while !rest.is_empty() {
        conn.read_tls(&mut rest).unwrap();
        conn.process_new_packets()?;
    }
    Ok(())
}

/// Drive a client and a server rustls connection against each other in memory.
#[allow(clippy::result_large_err)]
fn handshake(
    client: rustls::ClientConfig,
    server: rustls::ServerConfig,
) -> Result<(), (Option<rustls::Error>, Option<rustls::Error>)> {
    let mut c = rustls::ClientConnection::new(
        Arc::new(client),
        rustls::pki_types::ServerName::try_from("node-1.tessera").unwrap(),
    )
    .unwrap();
    let mut s = rustls::ServerConnection::new(Arc::new(server)).unwrap();
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        if let Err(e) = feed(&mut s, &buf) {
            let mut alert = Vec::new();
            let _ = s.write_tls(&mut alert);
            return Err((feed(&mut c, &alert).err(), Some(e)));
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        if let Err(e) = feed(&mut c, &buf) {
            return Err((Some(e), None));
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish")
}

#[test]
fn mutual_ra_tls_handshake_with_rustls() {
    // rustls verifies with the real clock: make collateral and certificates valid now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let make = |tee: &SimulatedTee, node: &str| {
        let coll = tee
            .collateral(
                &PlatformStatus::default(),
                CollateralWindow::around(now, 30),
            )
            .unwrap();
        RaTlsIdentity::generate(tee, coll, node, 3, now as i64 - 60, now as i64 + 86_400).unwrap()
    };
    let good = node_tee(TeeKind::Tdx);
    let server_id = make(&good, "node-1");
    let client_id = make(&node_tee(TeeKind::Sgx), "node-2");
    let server = server_config(
        &server_id,
        Some(verifier(Expectation {
            node_id: Some("node-2".into()),
            epoch: Some(3),
        })),
    )
    .unwrap();
    let client = client_config(
        verifier(Expectation {
            node_id: Some("node-1".into()),
            epoch: Some(3),
        }),
        Some(&client_id),
    )
    .unwrap();
    handshake(client, server.clone()).unwrap();

    // A debug server is refused by the client during the handshake, with the reason.
    let debug_id = make(&node_tee(TeeKind::Tdx).with_debug(true), "node-1");
    let client = client_config(verifier(Expectation::default()), Some(&client_id)).unwrap();
    let (client_err, _) = handshake(client, server_config(&debug_id, None).unwrap()).unwrap_err();
    let msg = client_err.unwrap().to_string();
    assert!(msg.contains("DebugEnclave(Tdx)"), "{msg}");

    // A client that is not the expected node is refused by the server.
    let intruder = make(&node_tee(TeeKind::Sgx), "node-9");
    let client = client_config(verifier(Expectation::default()), Some(&intruder)).unwrap();
    let (_, server_err) = handshake(client, server).unwrap_err();
    let msg = server_err.unwrap().to_string();
    assert!(msg.contains("WrongNode"), "{msg}");
}
