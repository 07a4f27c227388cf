//! What the `notary-node` and `coordinator` daemons (and `tessera`) share as programs:
//! logging to stderr and waiting for SIGINT/SIGTERM.

/// Logs to stderr, filtered by `RUST_LOG` (else `default`, e.g. `info`).
pub fn init_logging(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// Completes on SIGINT or SIGTERM (as PID 1 in a container, SIGTERM does nothing unless
/// handled).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
