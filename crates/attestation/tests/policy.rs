//! Policy files: the shipped ones parse, bad ones are refused with a reason, and each check
//! (simulation, debug, status, measurement, advisory) fails on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use attestation::quote::collateral_from_json;
use attestation::{Policy, PolicyError, Verifier};

const PROD: &str = include_str!("../../../configs/measurements.toml");
const SIM: &str = include_str!("../../../configs/measurements.simulated.toml");
const SGX_QUOTE: &[u8] = include_bytes!("../testdata/dcap/sgx_quote");
const SGX_COLLATERAL: &str = include_str!("../testdata/dcap/sgx_quote_collateral.json");

#[test]
fn shipped_policies_parse() {
    let prod = Policy::from_toml(PROD).unwrap();
    assert!(!prod.allow_simulated);
    assert!(prod.measurements.is_empty());
    let sim = Policy::from_toml(SIM).unwrap();
    assert!(sim.allow_simulated);
    assert_eq!(sim.measurements.len(), 2);
    assert!(sim.measurements.iter().all(|m| m.simulated));
}

#[test]
fn invalid_policies_are_refused_with_a_reason() {
    let cases = [
        ("allowed_tcb_statuses = []", "empty"),
        (r#"allowed_tcb_statuses = ["Revoked"]"#, "Revoked can never"),
        (r#"allowed_tcb_statuses = ["Fine"]"#, "unknown TCB status"),
        (
            r#"allowed_tcb_statuses = ["UpToDate"]
allow_simulted = true"#,
            "unknown field",
        ),
        (
            r#"allowed_tcb_statuses = ["UpToDate"]
[[measurement]]
name = "a"
tee = "sgx"
mrenclave = "00""#,
            "64 hex digits",
        ),
        (
            r#"allowed_tcb_statuses = ["UpToDate"]
[[measurement]]
name = "a"
tee = "tdx""#,
            "needs mrtd",
        ),
        (
            r#"allowed_tcb_statuses = ["UpToDate"]
[[measurement]]
name = "a"
tee = "sgx"
mrsigner = "0000000000000000000000000000000000000000000000000000000000000000""#,
            "needs isv_prod_id",
        ),
        (
            r#"allowed_tcb_statuses = ["UpToDate"]
[[measurement]]
name = "a"
tee = "sgx"
simulated = true
mrenclave = "0000000000000000000000000000000000000000000000000000000000000000""#,
            "allow_simulated is false",
        ),
    ];
    for (text, want) in cases {
        let err = Policy::from_toml(text).unwrap_err();
        assert!(matches!(err, PolicyError::Invalid(_)), "{err}");
        assert!(err.to_string().contains(want), "{text}: {err}");
    }
}

/// Intel's real SGX sample quote against policies that differ in one check each.
#[test]
fn each_check_fails_on_its_own_with_the_real_sgx_quote() {
    let coll = collateral_from_json(SGX_COLLATERAL).unwrap();
    let v = Verifier::intel()
        .verify(SGX_QUOTE, &coll, 1_751_624_924)
        .unwrap();
    let attestation::Measurements::Sgx {
        mrenclave,
        mrsigner,
        isv_prod_id,
        isv_svn,
    } = &v.measurements
    else {
        panic!()
    };
    let policy = |statuses: &str, rule: &str| {
        Policy::from_toml(&format!("allowed_tcb_statuses = [{statuses}]\n[[measurement]]\nname = \"sample\"\ntee = \"sgx\"\n{rule}"))
            .unwrap()
    };
    let ok_status = r#""ConfigurationAndSWHardeningNeeded""#;
    let advisories = r#"allowed_advisories = ["INTEL-SA-00289", "INTEL-SA-00615"]"#;

    let pass = policy(
        ok_status,
        &format!("mrenclave = \"{mrenclave}\"\n{advisories}"),
    );
    assert_eq!(pass.check(&v).unwrap().name, "sample");
    // Pinned by signer and product instead, with a minimum SVN.
    let by_signer = policy(
        ok_status,
        &format!("mrsigner = \"{mrsigner}\"\nisv_prod_id = {isv_prod_id}\nmin_isv_svn = {isv_svn}\n{advisories}"),
    );
    by_signer.check(&v).unwrap();
    let svn_too_low = policy(
        ok_status,
        &format!("mrsigner = \"{mrsigner}\"\nisv_prod_id = {isv_prod_id}\nmin_isv_svn = {}\n{advisories}", isv_svn + 1),
    );
    assert!(matches!(
        svn_too_low.check(&v),
        Err(PolicyError::MeasurementNotAllowed(_))
    ));

    let status = policy(
        r#""UpToDate""#,
        &format!("mrenclave = \"{mrenclave}\"\n{advisories}"),
    );
    assert!(matches!(
        status.check(&v),
        Err(PolicyError::TcbStatusNotAllowed { .. })
    ));

    let other = policy(
        ok_status,
        &format!("mrenclave = \"{}\"\n{advisories}", "00".repeat(32)),
    );
    assert!(matches!(
        other.check(&v),
        Err(PolicyError::MeasurementNotAllowed(_))
    ));

    let one_advisory = policy(
        ok_status,
        &format!("mrenclave = \"{mrenclave}\"\nallowed_advisories = [\"INTEL-SA-00615\"]"),
    );
    assert_eq!(
        one_advisory.check(&v).unwrap_err(),
        PolicyError::AdvisoryNotAllowed {
            advisory: "INTEL-SA-00289".into(),
            measurement: "sample".into()
        }
    );

    // A simulated-only entry never matches a real quote.
    let sim_only = Policy::from_toml(&format!(
        "allowed_tcb_statuses = [{ok_status}]\nallow_simulated = true\n[[measurement]]\nname = \"s\"\ntee = \"sgx\"\nsimulated = true\nmrenclave = \"{mrenclave}\"\n{advisories}"
    ))
    .unwrap();
    assert!(matches!(
        sim_only.check(&v),
        Err(PolicyError::MeasurementNotAllowed(_))
    ));
}
