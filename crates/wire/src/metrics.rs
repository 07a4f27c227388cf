//! A minimal HTTP/1.1 responder for `GET /health` and `GET /metrics` (Prometheus text
//! format 0.0.4), so the daemons need no web framework. Everything else gets 404; requests
//! are read up to 8 KiB and one response is sent per connection.

use std::future::Future;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a health/metrics endpoint serves.
pub trait Exporter: Send + Sync + 'static {
    /// `Ok(text)` for a healthy process, `Err(text)` (HTTP 503) otherwise.
    fn health(&self) -> Result<String, String>;
    /// The metrics in Prometheus text format.
    fn metrics(&self) -> String;
}

/// Serves `exporter` on `listener` until `stop` completes.
pub async fn serve<E: Exporter>(
    listener: TcpListener,
    exporter: std::sync::Arc<E>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => a,
        };
        let Ok((mut s, _)) = accepted else { continue };
        let e = exporter.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut n = 0;
            while n < buf.len() {
                match tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf[n..]))
                    .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(k)) => {
                        n += k;
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                }
            }
            let line = String::from_utf8_lossy(&buf[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = match path {
                "/health" => match e.health() {
                    Ok(b) => ("200 OK", "text/plain", b),
                    Err(b) => ("503 Service Unavailable", "text/plain", b),
                },
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", e.metrics()),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}

/// Binds `addr` for [`serve`].
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Appends one metric family (`# HELP`, `# TYPE`, and its samples) to `out`.
/// `samples` are (label set without braces, value); an empty label set prints none.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    for (labels, v) in samples {
        if labels.is_empty() {
            out.push_str(&format!("{name} {v}\n"));
        } else {
            out.push_str(&format!("{name}{{{labels}}} {v}\n"));
        }
    }
}
