//! `tessera`: the Tessera command line.
//!
//! `tessera demo` starts a whole notary network on loopback (coordinator, three nodes in
//! SIMULATED TEEs, a demo JSON provider), proves a response and verifies it.
//! `tessera prove --coordinator ADDR` notarizes an HTTPS response through a notary network;
//! `tessera prove --local` does it with an in-process committee of three nodes (SIMULATED
//! TEEs); either writes a presentation, and `tessera verify` checks one offline.
//! `tessera group` fetches and checks a network's membership log and writes its `group.json`.
//! `tessera audit quote` verifies a DCAP quote with its collateral at a given time;
//! `tessera audit node` connects to a notary node and verifies its RA-TLS certificate.
//! Exit status: 0 verified (and the policy passed), 1 not verified (or the proof failed),
//! 3 refused by the policy, 2 bad usage or unreadable input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use attestation::quote::collateral_from_json;
use attestation::sim::SimPki;
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
    /// Run a notary network on loopback (SIMULATED TEEs), prove a demo response, verify it.
    Demo(DemoArgs),
    /// Notarize an HTTPS response and write a presentation (proof.json).
    Prove(Box<ProveArgs>),
    /// Fetch a notary network's membership log, check it, and write its group.json.
    Group(GroupArgs),
    /// Serve the demo JSON provider over HTTPS (for docker compose).
    DemoProvider(DemoProviderArgs),
    /// Verify a presentation offline against a trusted group.json.
    Verify(VerifyArgs),
    /// Verify attestation: a quote from files, or a running node.
    #[command(subcommand)]
    Audit(Audit),
}

#[derive(Args)]
struct ProveArgs {
    /// Prove through the notary network whose coordinator is at HOST:PORT.
    #[arg(long, conflicts_with = "local", required_unless_present = "local")]
    coordinator: Option<String>,
    /// The network's trusted group.json (from `tessera group`). Without it, the
    /// coordinator's membership log is checked and its group key trusted on first use.
    #[arg(long, requires = "coordinator")]
    trust: Option<PathBuf>,
    /// Run the three-node committee in this process (SIMULATED TEEs).
    #[arg(long)]
    local: bool,
    /// The committee's state directory (keys sealed per node, group.json); created on first use.
    #[arg(long, requires = "local")]
    state: Option<PathBuf>,
    /// https://HOST[:PORT]/PATH to fetch.
    #[arg(long)]
    url: String,
    /// Dial this ADDR:PORT instead of resolving the URL's host (the TLS name stays the host).
    #[arg(long)]
    connect: Option<String>,
    /// Trust these root CAs (PEM) for the provider instead of the Mozilla set (local mode:
    /// networked nodes use their own configured roots).
    #[arg(long, requires = "local")]
    ca: Option<PathBuf>,
    /// An extra request header, 'Name: value' (repeatable). Headers never leave this machine
    /// in the clear.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Reveal the JSON value at this path of the body (repeatable): '$.user.address.country',
    /// '$.friends[0].name', "$['odd key']"; a bare 'name' means '$.name'.
    #[arg(long)]
    reveal: Vec<String>,
    /// Commit to the value at this path without revealing it (repeatable).
    #[arg(long)]
    commit: Vec<String>,
    /// Reveal bytes START:END of the body (after de-chunking), for bodies that are not JSON.
    #[arg(long = "reveal-range")]
    reveal_range: Vec<String>,
    /// Commit to bytes START:END of the body without revealing them.
    #[arg(long = "commit-range")]
    commit_range: Vec<String>,
    /// A predicate on a path: '$.user.age>=18', '$.user.birthdate<=today-18y',
    /// '$.account.balance>=1000.50', '$.user.verified==true',
    /// '$.user.nationality in ["DE","FR","NL"]'.
    #[arg(long = "predicate")]
    predicates: Vec<String>,
    /// Paths of the PII for a scoped nullifier (comma-separated), e.g.
    /// '$.user.name,$.user.birthdate'.
    #[arg(long)]
    uid_fields: Vec<String>,
    /// The relying party's scope for the nullifier.
    #[arg(long)]
    scope: Option<String>,
    /// Where to write the presentation.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Give up on a silent party after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[derive(Args)]
struct GroupArgs {
    /// The coordinator, HOST:PORT.
    #[arg(long)]
    coordinator: String,
    /// Refuse unless the group key is this (hex key or key id).
    #[arg(long)]
    expect_key: Option<String>,
    /// Write the latest group.json here.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Print one JSON object (log and node directory) instead of text.
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

#[derive(Args)]
struct DemoArgs {
    /// Where to write the demo's proof and group.json [default: tessera-demo in the
    /// system's temporary directory].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Serve this file as the demo provider's body instead of the demo JSON record, and
    /// prove byte ranges of it (--reveal-range, default 0:64).
    #[arg(long)]
    body: Option<PathBuf>,
    /// With --body: reveal bytes START:END of it (repeatable).
    #[arg(long = "reveal-range", requires = "body")]
    reveal_range: Vec<String>,
}

#[derive(Args)]
struct DemoProviderArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: String,
    /// The TLS certificate (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
}

#[derive(Args)]
struct VerifyArgs {
    /// The presentation.
    proof: PathBuf,
    /// A trusted group.json (repeatable).
    #[arg(long, required = true)]
    trust: Vec<PathBuf>,
    /// Verify as of this UNIX time instead of now.
    #[arg(long)]
    at: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

use daemon::program::now;

fn prove(args: ProveArgs) -> anyhow::Result<ExitCode> {
    use tessera_client::prove::{Options, Target};
    if args.local && args.state.is_none() {
        anyhow::bail!("--local needs --state DIR");
    }
    let target = Target::parse(&args.url)?;
    let request = target.request(&args.headers)?;
    let sel = Options {
        reveal: args.reveal.clone(),
        commit: args.commit.clone(),
        reveal_range: args.reveal_range.clone(),
        commit_range: args.commit_range.clone(),
        predicates: args.predicates.clone(),
        uid_fields: args.uid_fields.clone(),
        scope: args.scope.clone(),
    }
    .selection()?;
    let roots = match &args.ca {
        Some(p) => {
            let pem = String::from_utf8(read(p, "CA file")?).context("CA file is not PEM text")?;
            mpc_tls::server_auth::Roots::from_pem(&pem)
                .with_context(|| format!("CA file {}", p.display()))?
        }
        None => mpc_tls::server_auth::Roots::default(),
    };
    let r = match (&args.coordinator, &args.state) {
        (Some(c), _) => net::prove_network(&args, c, &target, &request, sel),
        (None, Some(state)) => prove_run(&args, state, &target, &request, sel, roots),
        (None, None) => anyhow::bail!("give --coordinator ADDR or --local --state DIR"),
    };
    match r {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("tessera: proof failed: {}", render(&e));
            Ok(ExitCode::from(1))
        }
    }
}

fn prove_run(
    args: &ProveArgs,
    state: &Path,
    target: &tessera_client::prove::Target,
    request: &[u8],
    sel: disclosure::client::Selection,
    roots: mpc_tls::server_auth::Roots,
) -> anyhow::Result<()> {
    use tessera_client::prove::{presentation, revealed_targets};
    let t = now();
    let step = |m: &str| eprintln!("[tessera] {m}");
    step(&format!(
        "opening the local committee in {}",
        state.display()
    ));
    let committee = notary::local::LocalCommittee::open_or_create(state, t)?;
    eprintln!("WARNING: the local committee runs in SIMULATED TEEs: no hardware security");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let notarized = rt.block_on(async {
        let connect = match &args.connect {
            Some(a) => a.clone(),
            None => format!("{}:{}", target.host, target.port),
        };
        let addr = tokio::net::lookup_host(&connect)
            .await
            .with_context(|| format!("cannot resolve {connect}"))?
            .next()
            .with_context(|| format!("{connect} resolves to no address"))?;
        let mut cfg = mpc_tls::local::LocalConfig::new(roots);
        cfg.time = t;
        cfg.timeout = Duration::from_secs(args.timeout);
        step(&format!(
            "MPC-TLS session with {} at {addr}, then the disclosure and the threshold signature",
            target.host
        ));
        let n = committee
            .prove(cfg, &target.host, addr, request, &sel)
            .await?;
        anyhow::Ok(n)
    })?;
    let p = presentation(
        notarized.notarization.clone(),
        notarized.signature,
        notarized.leaves.clone(),
        &notarized.plan,
        &revealed_targets(&sel),
    )?;
    let json = p.to_json()?;
    std::fs::write(&args.output, json + "\n")
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    step(&format!(
        "wrote {} (group {}, epoch {}; verify with: tessera verify {} --trust {})",
        args.output.display(),
        committee.group().key_id,
        committee.group().epoch,
        args.output.display(),
        state.join("group.json").display()
    ));
    Ok(())
}

fn verify_cmd(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let text = String::from_utf8(read(&args.proof, "presentation")?)
        .context("the presentation is not UTF-8 JSON")?;
    let mut trusted = Vec::new();
    for t in &args.trust {
        let g = String::from_utf8(read(t, "trust file")?).context("the trust file is not UTF-8")?;
        trusted.push(
            notarization::TrustedGroup::from_json(&g)
                .with_context(|| format!("trust file {}", t.display()))?,
        );
    }
    let report = tessera_client::verify::verify_json(&text, &trusted, args.at.unwrap_or_else(now));
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.render());
    }
    if let Some(e) = &report.error {
        eprintln!("tessera: {e}");
        // One rule for unreadable input (a file that is not a presentation of this format,
        // like a malformed trust file): 2. A presentation that does not verify: 1.
        let readable = notarization::Presentation::from_json(&text).is_ok();
        return Ok(ExitCode::from(if readable { 1 } else { 2 }));
    }
    Ok(ExitCode::SUCCESS)
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
        Command::Prove(args) => prove(*args),
        Command::Group(args) => net::group(args),
        Command::Demo(args) => net::demo(args),
        Command::DemoProvider(args) => net::demo_provider(args),
        Command::Verify(args) => verify_cmd(args),
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

mod net;

/// An error and its causes on one line, each cause once: a cause whose text the line
/// already carries (a wrapper that prints its source and also reports it as its source) is
/// not repeated.
fn render(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn main() -> ExitCode {
    daemon::program::init_logging("warn");
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tessera: {}", render(&e));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[derive(Debug, thiserror::Error)]
    #[error("invalid disclosure request: {0}")]
    struct Inner(&'static str);

    #[derive(Debug, thiserror::Error)]
    #[error("the disclosure failed: {0}")]
    struct Outer(#[source] Inner);

    #[test]
    fn a_cause_already_in_the_line_is_not_repeated() {
        let e = anyhow::Error::new(Outer(Inner("no such path")));
        assert_eq!(
            format!("{e:#}")
                .matches("invalid disclosure request")
                .count(),
            2
        );
        assert_eq!(
            render(&e),
            "the disclosure failed: invalid disclosure request: no such path"
        );
        let e = anyhow::Error::new(Inner("x")).context("proving");
        assert_eq!(render(&e), "proving: invalid disclosure request: x");
    }
}
