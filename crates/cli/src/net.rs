//! The `tessera` subcommands that talk to (or start) a notary network: `prove --coordinator`,
//! `group`, `demo` and `demo-provider`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use disclosure::client::Selection;
use notarization::group::GroupFile;
use tessera_client::net::{fetch_group, prove_network as prove_net, NetworkOptions, Step};
use tessera_client::prove::{presentation, revealed_targets, Options, Target};

use super::{now, DemoArgs, DemoProviderArgs, GroupArgs, ProveArgs};

/// The demo provider's response body: a person's record at an imaginary provider.
pub const DEMO_BODY: &str = r#"{"user":{"name":"Alice Smith","birthdate":"1990-04-01","nationality":"US","verified":true,"address":{"city":"Springfield","country":"US"}},"account":{"balance":1234.50,"currency":"EUR"},"email":"alice@example.com","friends":[{"name":"Alan Turing"}]}"#;

/// Progress on stderr: a bar on a terminal, one line per step otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(len: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = indicatif::ProgressBar::new(len);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg} ({elapsed})")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress { bar: Some(bar) }
    }

    fn step(&self, msg: String) {
        match &self.bar {
            Some(b) => {
                b.inc(1);
                b.set_message(msg);
            }
            None => eprintln!("[tessera] {msg}"),
        }
    }

    /// A step's progress: the bar's message changes, its position does not.
    fn update(&self, msg: String) {
        match &self.bar {
            Some(b) => b.set_message(msg),
            None => eprintln!("[tessera] {msg}"),
        }
    }

    /// Shows `s`: a new step, or progress within one.
    fn show(&self, s: &Step) {
        match s {
            Step::Received(_) => self.update(step_text(s)),
            _ => self.step(step_text(s)),
        }
    }

    fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn step_text(s: &Step) -> String {
    match s {
        Step::Committee => "asking the coordinator for a committee".into(),
        Step::Attesting(ids) => format!(
            "checking the RA-TLS attestation of nodes {}",
            ids.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Step::Session => "MPC-TLS session with the provider".into(),
        Step::Received(n) => format!(
            "MPC-TLS session with the provider: {:.1} MiB received",
            *n as f64 / (1024.0 * 1024.0)
        ),
        Step::Disclosing => "the committee proves the selected values in its circuit".into(),
        Step::Signing => "waiting for the committee's threshold signature".into(),
        Step::Checking => "checking the notarization against this session".into(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Reads a trusted group.json, or fetches the coordinator's log (trust on first use).
async fn trusted_group(
    trust: Option<&Path>,
    coordinator: &str,
    timeout: Duration,
) -> anyhow::Result<GroupFile> {
    match trust {
        Some(p) => Ok(GroupFile::read(p)?),
        None => {
            let (g, _, _) = fetch_group(coordinator, None, timeout).await?;
            eprintln!(
                "WARNING: no --trust file: trusting group {} (epoch {}) from the coordinator's signed log on first use",
                g.key_id, g.epoch
            );
            Ok(g)
        }
    }
}

async fn provider_addr(args: &ProveArgs, target: &Target) -> anyhow::Result<SocketAddr> {
    let connect = match &args.connect {
        Some(a) => a.clone(),
        None => format!("{}:{}", target.host, target.port),
    };
    let mut addrs = tokio::net::lookup_host(&connect)
        .await
        .with_context(|| format!("cannot resolve {connect}"))?;
    addrs
        .next()
        .with_context(|| format!("{connect} resolves to no address"))
}

/// `tessera prove --coordinator ADDR`.
pub fn prove_network(
    args: &ProveArgs,
    coordinator: &str,
    target: &Target,
    request: &[u8],
    sel: Selection,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout);
    let rt = runtime()?;
    let (p, group) = rt.block_on(async {
        let group = trusted_group(args.trust.as_deref(), coordinator, timeout).await?;
        if group.simulated {
            eprintln!("WARNING: the notary group runs in SIMULATED TEEs: no hardware security");
        }
        let addr = provider_addr(args, target).await?;
        let progress = Progress::new(6);
        let opts = NetworkOptions {
            coordinator: coordinator.to_string(),
            group: group.clone(),
            timeout,
        };
        let r = prove_net(&opts, &target.host, addr, request, &sel, &|s| {
            progress.show(&s)
        })
        .await;
        progress.done();
        let n = r?;
        let p = presentation(
            n.notarization.clone(),
            n.signature,
            n.leaves.clone(),
            &n.plan,
            &revealed_targets(&sel),
        )?;
        anyhow::Ok((p, group))
    })?;
    let trusted = group.trusted().map_err(anyhow::Error::msg)?;
    notarization::verify(&p, &[trusted], now())
        .map_err(|e| anyhow::anyhow!("the presentation does not verify: {e}"))?;
    std::fs::write(&args.output, p.to_json()? + "\n")
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "[tessera] wrote {} (group {}, epoch {}, committee {})",
        args.output.display(),
        group.key_id,
        p.notarization.epoch,
        p.notarization
            .committee
            .iter()
            .map(|m| m.node_id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// `tessera group`.
pub fn group(args: GroupArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let r = rt.block_on(fetch_group(
        &args.coordinator,
        args.expect_key.as_deref(),
        Duration::from_secs(args.timeout),
    ));
    let (g, log, nodes) = match r {
        Ok(x) => x,
        Err(e) => {
            eprintln!("tessera: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "group": g, "log": log, "nodes": nodes })
        );
    } else {
        println!(
            "group {} (key {}), epoch {}, threshold {}{}",
            g.key_id,
            g.group_key,
            g.epoch,
            g.threshold,
            if g.simulated { ", SIMULATED TEEs" } else { "" }
        );
        for e in &log {
            println!(
                "  epoch {}: {} ({} members)",
                e.entry.group.epoch,
                e.entry.change,
                e.entry.group.members.len()
            );
        }
        for n in &nodes {
            println!(
                "  node {} at {}: {} epoch {}, {} {}{}",
                n.node_id,
                n.addr,
                if n.healthy {
                    "healthy,"
                } else {
                    "unavailable,"
                },
                n.epoch,
                n.tee,
                n.measurement,
                if n.simulated { " (SIMULATED)" } else { "" }
            );
        }
    }
    if let Some(o) = &args.output {
        g.write(o)?;
        eprintln!("[tessera] wrote {}", o.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `tessera demo-provider`.
pub fn demo_provider(args: DemoProviderArgs) -> anyhow::Result<ExitCode> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from_pem_file(&args.cert)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.cert.display()))?;
    let key = PrivatePkcs8KeyDer::from_pem_file(&args.key)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.key.display()))?;
    let bind: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen {}", args.listen))?;
    let running = tessera_provider::serve_forever(
        cert.to_vec(),
        key.secret_pkcs8_der().to_vec(),
        bind,
        tessera_provider::json_response(DEMO_BODY),
        Duration::ZERO,
    )?;
    eprintln!(
        "demo provider (demo data only) listening on {}",
        running.addr
    );
    // As PID 1 in a container, SIGTERM does nothing unless handled.
    runtime()?.block_on(daemon::program::shutdown_signal());
    drop(running);
    Ok(ExitCode::SUCCESS)
}

fn node_config(
    id: u16,
    coordinator: SocketAddr,
    dir: &Path,
    ca: &Path,
) -> notary_node::config::Config {
    notary_node::config::Config {
        node_id: id,
        listen: "127.0.0.1:0".into(),
        advertise: None,
        coordinator: coordinator.to_string(),
        state_dir: dir.join(format!("node-{id}")),
        health_listen: None,
        production: false,
        allow_simulated: true,
        policy: None,
        provider_roots: Some(ca.to_path_buf()),
        max_sessions: 64,
        drain_secs: 30,
        prepare_tls13: true,
        tee: notary_node::config::TeeConfig {
            source: notary_node::config::Source::Simulated,
            kind: None,
            simulated_mrenclave: None,
            collateral: None,
        },
    }
}

/// `tessera demo`.
pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .dir
        .unwrap_or_else(|| std::env::temp_dir().join("tessera-demo"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Printed paths are absolute, so the `verify` line below works from any directory.
    let dir =
        std::fs::canonicalize(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
    eprintln!("WARNING: the demo network runs in SIMULATED TEEs: no hardware security");
    let work = tempfile::tempdir()?;
    // The provider's answer: the demo record, or a file of the user's with byte ranges.
    let (response, sel, what) = match &args.body {
        None => (
            tessera_provider::json_response(DEMO_BODY),
            Options {
                reveal: vec!["$.user.nationality".into()],
                predicates: vec![
                    "$.user.birthdate<=today-18y".into(),
                    "$.account.balance>=1000".into(),
                ],
                uid_fields: vec!["$.user.name,$.user.birthdate".into()],
                scope: Some("demo.example".into()),
                ..Default::default()
            }
            .selection()?,
            "demo JSON provider".to_string(),
        ),
        Some(path) => {
            let body = std::fs::read(path)
                .with_context(|| format!("cannot read the body {}", path.display()))?;
            let ranges = if args.reveal_range.is_empty() {
                vec!["0:64".to_string()]
            } else {
                args.reveal_range.clone()
            };
            let what = format!(
                "demo provider serving {} ({} bytes)",
                path.display(),
                body.len()
            );
            let response = tessera_provider::ok_response("application/octet-stream", &body);
            let sel = Options {
                reveal_range: ranges,
                ..Default::default()
            }
            .selection()?;
            (response, sel, what)
        }
    };
    let rt = runtime()?;
    let started = Instant::now();
    let url = "https://provider.demo/api/me";
    let out = rt.block_on(async {
        let progress = Progress::new(10);
        let pki = tessera_provider::pki(&["provider.demo"])?;
        let ca = work.path().join("provider-ca.pem");
        std::fs::write(&ca, &pki.ca_pem)?;
        let provider = tessera_provider::serve_forever(
            pki.leaf_der.clone(),
            pki.leaf_key_der.clone(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            response,
            Duration::ZERO,
        )?;
        progress.step(format!("{what} on {} (own CA)", provider.addr));
        let coord = coordinator::start(coordinator::Config {
            listen: "127.0.0.1:0".into(),
            state_dir: work.path().join("coordinator"),
            health_listen: None,
            genesis_nodes: 3,
            session_timeout_secs: 120,
            production: false,
            allow_simulated: true,
            policy: None,
            tamper: None,
        })
        .await?;
        progress.step(format!("coordinator on {}", coord.addr));
        let mut nodes = Vec::new();
        for id in 1..=3u16 {
            nodes.push(notary_node::start(node_config(id, coord.addr, work.path(), &ca)).await?);
        }
        progress.step(
            "three notary nodes (SIMULATED TEEs) started; waiting for the genesis (DKG)".into(),
        );
        let caddr = coord.addr.to_string();
        let deadline = Instant::now() + Duration::from_secs(90);
        let group = loop {
            if let Ok((g, _, n)) = fetch_group(&caddr, None, Duration::from_secs(5)).await {
                if n.iter().filter(|s| s.healthy).count() >= 3 {
                    break g;
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the demo network did not form within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let gpath = dir.join("group.json");
        group.write(&gpath)?;
        progress.step(format!(
            "group {} formed (epoch {})",
            group.key_id, group.epoch
        ));
        let target = Target::parse(url)?;
        let request = target.request(&[])?;
        let opts = NetworkOptions {
            coordinator: caddr,
            group: group.clone(),
            timeout: Duration::from_secs(60),
        };
        let t0 = Instant::now();
        let n = prove_net(&opts, &target.host, provider.addr, &request, &sel, &|s| {
            progress.show(&s)
        })
        .await?;
        let took = t0.elapsed();
        progress.done();
        let p = presentation(
            n.notarization.clone(),
            n.signature,
            n.leaves.clone(),
            &n.plan,
            &revealed_targets(&sel),
        )?;
        let ppath = dir.join("proof.json");
        std::fs::write(&ppath, p.to_json()? + "\n")?;
        for node in nodes {
            node.shutdown().await?;
        }
        coord.shutdown().await;
        anyhow::Ok((group, gpath, ppath, took))
    })?;
    let (group, gpath, ppath, took) = out;
    let text = std::fs::read_to_string(&ppath)?;
    let trusted = group.trusted().map_err(anyhow::Error::msg)?;
    let report = tessera_client::verify::verify_json(&text, &[trusted], now());
    println!("Tessera demo — a notary network on loopback (SIMULATED TEEs: no hardware security)");
    println!(
        "  network:  coordinator + nodes 1, 2, 3; group {} epoch {}",
        group.key_id, group.epoch
    );
    println!("  proved:   {url} ({what}) in {:.1} s", took.as_secs_f64());
    println!("  files:    {} and {}", ppath.display(), gpath.display());
    // The binary that is running, so the line can be pasted as it is (cargo run does not
    // put `tessera` on the PATH).
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "tessera".into());
    println!(
        "  check it: {exe} verify {} --trust {}",
        ppath.display(),
        gpath.display()
    );
    println!("verification of the proof:");
    for line in report.render().lines() {
        println!("  {line}");
    }
    println!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    if report.verified {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}
