//! `tessera`: the Tessera command line.
//!
//! `tessera audit quote` verifies a DCAP quote with its collateral at a given time;
//! `tessera audit node` connects to a notary node and verifies its RA-TLS certificate.
//! Exit status: 0 verified (and the policy passed), 1 not verified, 3 refused by the policy,
//! 2 bad usage or unreadable input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use attestation::sim::SimPki;
use attestation::verify::collateral_from_json;
use attestation::{Expectation, Policy, Verifier};
use clap::{Args, Parser, Subcommand};
use tessera_client::audit::{audit_node, audit_quote, AuditReport};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: notarized web data from TEE notary nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify attestation: a quote from files, or a running node.
    #[command(subcommand)]
    Audit(Audit),
}

#[derive(Subcommand)]
enum Audit {
    /// Verify a DCAP quote (SGX v3, TDX v4/v5) with its collateral at a given time.
    Quote(QuoteArgs),
    /// Connect to a notary node over QUIC and verify its RA-TLS certificate now.
    Node(NodeArgs),
}

#[derive(Args)]
struct TrustArgs {
    /// Attestation policy (TOML), e.g. configs/measurements.toml.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Trust this root CA (DER or PEM) instead of Intel's SGX root CA.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Also accept the SIMULATED TEE (well-known test PKI; no hardware security).
    /// Implied by a policy with `allow_simulated = true`.
    #[arg(long)]
    allow_simulated: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct QuoteArgs {
    /// The quote, binary.
    #[arg(long)]
    quote: PathBuf,
    /// Its collateral, in dcap-qvl's QuoteCollateralV3 JSON form.
    #[arg(long)]
    collateral: PathBuf,
    /// Verification time, UNIX seconds.
    #[arg(long)]
    at: u64,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Args)]
struct NodeArgs {
    /// The node's QUIC address, HOST:PORT.
    addr: String,
    /// Require this node id.
    #[arg(long)]
    node_id: Option<String>,
    /// Require this notary-set epoch.
    #[arg(long)]
    epoch: Option<u64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(flatten)]
    trust: TrustArgs,
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn der_or_pem(bytes: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    if !bytes.starts_with(b"-----BEGIN") && !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok(bytes);
    }
    let cert = CertificateDer::from_pem_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("root certificate: bad PEM: {e}"))?;
    Ok(cert.to_vec())
}

/// The verifier and policy the trust options ask for.
fn trust(args: &TrustArgs) -> anyhow::Result<(Verifier, Option<Policy>)> {
    let policy = match &args.policy {
        Some(p) => Some(Policy::from_file(p)?),
        None => None,
    };
    let mut verifier = match &args.root {
        Some(p) => Verifier::with_root(der_or_pem(read(p, "root certificate")?)?),
        None => Verifier::intel(),
    };
    if args.allow_simulated || policy.as_ref().is_some_and(|p| p.allow_simulated) {
        let pki = SimPki::well_known().context("building the simulated PKI")?;
        verifier = verifier.allow_simulated(pki.root_der());
    }
    Ok((verifier, policy))
}

fn emit(report: &AuditReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{}", report.render());
    }
    if let Some(reason) = report.reason() {
        eprintln!("tessera: {reason}");
    }
    let code = u8::try_from(report.exit_code()).unwrap_or(1);
    Ok(ExitCode::from(code))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Audit(Audit::Quote(args)) => {
            let quote = read(&args.quote, "quote")?;
            let collateral = String::from_utf8(read(&args.collateral, "collateral")?)
                .context("collateral is not UTF-8 JSON")?;
            let collateral = collateral_from_json(&collateral)?;
            let (verifier, policy) = trust(&args.trust)?;
            let report = audit_quote(&verifier, &quote, &collateral, args.at, policy.as_ref());
            emit(&report, args.trust.json)
        }
        Command::Audit(Audit::Node(args)) => {
            let (verifier, policy) = trust(&args.trust)?;
            let expect = Expectation {
                node_id: args.node_id.clone(),
                epoch: args.epoch,
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(audit_node(
                &args.addr,
                verifier,
                policy.as_ref(),
                &expect,
                Duration::from_secs(args.timeout),
            ))?;
            emit(&report, args.trust.json)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::from(2)
        }
    }
}
