//! `notary-node`'s entry point, for the end-to-end tests.
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (Some("--config"), Some(path)) => notary_node::cli::main(path.into()),
        _ => {
            eprintln!("usage: e2e-node --config FILE");
            std::process::ExitCode::from(2)
        }
    }
}
