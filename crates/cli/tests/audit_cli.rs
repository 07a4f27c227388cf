//! `tessera audit quote` on Intel's real quotes, and `tessera audit node` against a QUIC server
//! presenting an RA-TLS certificate from the simulated TEE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use attestation::ratls::server_config;
use attestation::sim::{CollateralWindow, PlatformStatus, SimIdentity, SimPki, SimulatedTee};
use attestation::{RaTlsIdentity, TeeKind};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../attestation/testdata/dcap")
        .join(name)
}

fn config(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name)
}

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn quote_args<'a>(quote: &'a str, coll: &'a str, at: &'a str) -> Vec<&'a str> {
    vec![
        "audit",
        "quote",
        "--quote",
        quote,
        "--collateral",
        coll,
        "--at",
        at,
    ]
}

#[test]
fn sgx_quote_json_and_text() {
    let (q, c) = (data("sgx_quote"), data("sgx_quote_collateral.json"));
    let (q, c) = (q.to_str().unwrap(), c.to_str().unwrap());
    let mut args = quote_args(q, c, "1751624924");
    args.push("--json");
    let out = tessera(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["verified"], true);
    assert_eq!(v["status"], "ConfigurationAndSWHardeningNeeded");
    assert_eq!(v["tee"], "sgx");
    assert_eq!(v["quote_version"], 3);
    assert_eq!(
        v["advisories"],
        serde_json::json!(["INTEL-SA-00289", "INTEL-SA-00615"])
    );
    assert!(v["report_data"]
        .as_str()
        .unwrap()
        .starts_with("48656c6c6f2c20776f726c6421"));
    assert_eq!(v["measurements"]["mrenclave"].as_str().unwrap().len(), 64);
    assert!(v["measurements"]["isv_prod_id"].is_number());
    assert_eq!(v["simulated"], false);

    let out = tessera(&quote_args(q, c, "1751624924"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "SGX (quote v3)",
        "ConfigurationAndSWHardeningNeeded",
        "INTEL-SA-00289",
        "MRENCLAVE",
        "MRSIGNER",
        "ISVPRODID",
        "ISVSVN",
        "REPORTDATA",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    assert!(!text.contains("SIMULATED"));
}

#[test]
fn tdx_quote_up_to_date_with_rtmrs() {
    let (q, c) = (data("tdx_quote"), data("tdx_quote_collateral.json"));
    let out = tessera(&quote_args(
        q.to_str().unwrap(),
        c.to_str().unwrap(),
        "1751328000",
    ));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "TDX (quote v4)",
        "UpToDate",
        "MRTD",
        "RTMR0",
        "RTMR3",
        "9a9d48e7f6799642",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn expired_and_tampered_quotes_exit_non_zero_with_one_line() {
    let (q, c) = (data("tdx_quote"), data("tdx_quote_collateral.json"));
    let (qs, cs) = (q.to_str().unwrap(), c.to_str().unwrap());
    let mut args = quote_args(qs, cs, "1760000000");
    args.push("--json");
    let out = tessera(&args);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["verified"], false);
    assert!(v["error"].as_str().unwrap().contains("collateral expired"));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("collateral expired"), "{err}");

    let dir = std::env::temp_dir().join(format!("tessera-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = std::fs::read(&q).unwrap();
    bytes[48 + 200] ^= 1; // inside the TD report body (MRTD)
    let flipped = dir.join("flipped");
    std::fs::write(&flipped, bytes).unwrap();
    let out = tessera(&quote_args(flipped.to_str().unwrap(), cs, "1751328000"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("signature"), "{err}");

    // A missing file is a usage error (2) naming the file.
    let out = tessera(&quote_args("/nonexistent/q", cs, "1751328000"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/q"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_policy_can_refuse_a_verified_quote() {
    let (q, c) = (data("sgx_quote"), data("sgx_quote_collateral.json"));
    let prod = config("measurements.toml");
    let mut args = quote_args(q.to_str().unwrap(), c.to_str().unwrap(), "1751624924");
    args.extend(["--policy", prod.to_str().unwrap(), "--json"]);
    let out = tessera(&args);
    assert_eq!(out.status.code(), Some(3));
    let v = json(&out);
    assert_eq!(v["verified"], true);
    assert_eq!(v["policy"]["passed"], false);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("TCB status ConfigurationAndSWHardeningNeeded is not allowed"),
        "{err}"
    );
}

/// A QUIC endpoint presenting an RA-TLS certificate, standing in for a notary node.
fn serve(
    identity: RaTlsIdentity,
) -> (
    SocketAddr,
    std::thread::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let tls = server_config(&identity, None).unwrap();
            let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
            let endpoint = quinn::Endpoint::server(
                quinn::ServerConfig::with_crypto(Arc::new(quic)),
                "127.0.0.1:0".parse().unwrap(),
            )
            .unwrap();
            addr_tx.send(endpoint.local_addr().unwrap()).unwrap();
            let accept = async {
                while let Some(incoming) = endpoint.accept().await {
                    tokio::spawn(async move {
                        if let Ok(conn) = incoming.await {
                            conn.closed().await;
                        }
                    });
                }
            };
            tokio::select! {
                _ = accept => {}
                _ = stop_rx => {}
            }
        });
    });
    (addr_rx.recv().unwrap(), handle, stop_tx)
}

fn node_identity(tee: SimulatedTee, status: &PlatformStatus) -> RaTlsIdentity {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let coll = tee
        .collateral(status, CollateralWindow::around(now, 30))
        .unwrap();
    RaTlsIdentity::generate(
        &tee,
        coll,
        "node-7",
        2,
        now as i64 - 60,
        now as i64 + 86_400,
    )
    .unwrap()
}

#[test]
fn audit_node_over_quic() {
    let tee = SimulatedTee::new(
        SimPki::well_known().unwrap(),
        SimIdentity::notary_node(TeeKind::Tdx),
    );
    let (addr, handle, stop) = serve(node_identity(tee, &PlatformStatus::default()));
    let addr = addr.to_string();
    let sim_policy = config("measurements.simulated.toml");
    let prod_policy = config("measurements.toml");

    // Default trust (Intel root only): the simulated node is refused, naming why.
    let out = tessera(&["audit", "node", &addr]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("SIMULATED"), "{err}");

    // With the simulated policy: verified, labelled, with node id, epoch and measurements.
    let out = tessera(&[
        "audit",
        "node",
        &addr,
        "--policy",
        sim_policy.to_str().unwrap(),
        "--json",
        "--node-id",
        "node-7",
        "--epoch",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["verified"], true);
    assert_eq!(v["simulated"], true);
    assert_eq!(v["tee"], "tdx");
    assert_eq!(v["node"]["node_id"], "node-7");
    assert_eq!(v["node"]["epoch"], 2);
    assert_eq!(v["policy"]["passed"], true);
    assert_eq!(v["measurements"]["rtmr"].as_array().unwrap().len(), 4);

    let out = tessera(&["audit", "node", &addr, "--allow-simulated"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("SIMULATED TEE"), "{text}");
    assert!(text.contains("node-7 (epoch 2)"), "{text}");

    // Wrong expected node id, and the production policy: verified but refused (exit 3).
    let out = tessera(&[
        "audit",
        "node",
        &addr,
        "--allow-simulated",
        "--node-id",
        "node-1",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong node"));
    let out = tessera(&[
        "audit",
        "node",
        &addr,
        "--allow-simulated",
        "--policy",
        prod_policy.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIMULATED TEE refused"));

    stop.send(()).unwrap();
    handle.join().unwrap();

    // A node whose platform is revoked fails the handshake with that reason.
    let tee = SimulatedTee::new(
        SimPki::well_known().unwrap(),
        SimIdentity::notary_node(TeeKind::Sgx),
    );
    let revoked = PlatformStatus {
        status: "Revoked".into(),
        ..PlatformStatus::default()
    };
    let (addr, handle, stop) = serve(node_identity(tee, &revoked));
    let out = tessera(&["audit", "node", &addr.to_string(), "--allow-simulated"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Revoked"));
    stop.send(()).unwrap();
    handle.join().unwrap();

    // Nothing listening: a clear timeout, exit 2.
    let out = tessera(&["audit", "node", "127.0.0.1:9", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no answer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--root` takes PEM or DER: Intel's root copied out of the collateral's issuer chain verifies
/// the real quote; the simulated PKI's root does not.
#[test]
fn an_injected_root_is_used() {
    let (q, c) = (data("sgx_quote"), data("sgx_quote_collateral.json"));
    let coll: serde_json::Value = serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    let chain = coll["pck_crl_issuer_chain"].as_str().unwrap();
    let begin = chain.rfind("-----BEGIN CERTIFICATE-----").unwrap();
    let dir = std::env::temp_dir().join(format!("tessera-root-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let intel = dir.join("intel-root.pem");
    std::fs::write(&intel, &chain[begin..]).unwrap();
    let sim = dir.join("sim-root.der");
    std::fs::write(&sim, SimPki::well_known().unwrap().root_der()).unwrap();

    let mut args = quote_args(q.to_str().unwrap(), c.to_str().unwrap(), "1751624924");
    args.extend(["--root", intel.to_str().unwrap()]);
    let out = tessera(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut args = quote_args(q.to_str().unwrap(), c.to_str().unwrap(), "1751624924");
    args.extend(["--root", sim.to_str().unwrap()]);
    let out = tessera(&args);
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_dir_all(dir).unwrap();
}
