//! A local HTTPS provider for the example, the benchmark and the tests: a throwaway
//! certificate authority (rcgen, ECDSA P-256) and an in-process rustls server that answers
//! each request with a body of a chosen size. Not for production use: its keys are
//! generated in memory and never protected.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// Errors setting up the provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Cert(#[from] rcgen::Error),
    /// The TLS configuration was refused.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Binding the listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// A server program from the system is missing or did not start.
    #[error("{0}")]
    External(String),
    /// The client-certificate verifier could not be built from the test CA.
    #[error("client-certificate verifier: {0}")]
    ClientAuth(String),
}

/// A CA and one leaf certificate for some names, all ECDSA P-256.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The leaf certificate, DER.
    pub leaf_der: Vec<u8>,
    /// The leaf key, PKCS#8 DER.
    pub leaf_key_der: Vec<u8>,
    /// The leaf certificate, PEM.
    pub leaf_pem: String,
    /// The leaf key, PEM.
    pub leaf_key_pem: String,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pki { .. }")
    }
}

/// A fresh CA and a leaf valid for `names` (DNS names or IP addresses).
pub fn pki(names: &[&str]) -> Result<Pki, ProviderError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Tessera test CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let leaf_params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;
    Ok(Pki {
        ca_pem: ca.pem(),
        leaf_der: leaf.der().to_vec(),
        leaf_key_der: leaf_key.serialize_der(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
    })
}

/// How the provider answers.
#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    /// Body bytes.
    pub body: usize,
    /// Use chunked transfer encoding (in 1000-byte chunks).
    pub chunked: bool,
    /// Plaintext bytes per TLS write (each write becomes at least one record).
    pub write_size: usize,
    /// Offer TLS 1.3 only.
    pub tls13_only: bool,
    /// Offer TLS 1.2 only.
    pub tls12_only: bool,
    /// Offer only TLS 1.2 suites Tessera does not support (AES-256-GCM).
    pub aes256_only: bool,
    /// Extract the traffic keys at the end (for tests that check nobody else has them).
    pub extract_keys: bool,
    /// Ask the client for a certificate (issued by the test CA), without requiring one.
    pub ask_client_certificate: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            body: 1024,
            chunked: false,
            write_size: 16 * 1024,
            tls13_only: false,
            tls12_only: false,
            aes256_only: false,
            extract_keys: false,
            ask_client_certificate: false,
        }
    }
}

/// Body byte `i` of a response: printable and position-dependent.
pub fn body_byte(i: usize) -> u8 {
    b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + i / 36) % 36]
}

/// The whole HTTP response the provider sends for `b`.
pub fn http_response(b: Behaviour) -> Vec<u8> {
    let body: Vec<u8> = (0..b.body).map(body_byte).collect();
    let mut out = if b.chunked {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec()
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            b.body
        )
        .into_bytes()
    };
    if b.chunked {
        for c in body.chunks(1000) {
            out.extend(format!("{:x}\r\n", c.len()).into_bytes());
            out.extend(c);
            out.extend(b"\r\n");
        }
        out.extend(b"0\r\n\r\n");
    } else {
        out.extend(body);
    }
    out
}

/// An HTTP GET of `path` for `host` of at least `len` bytes (padded with a header), asking
/// the server to close the connection after answering.
pub fn http_request(host: &str, path: &str, len: usize) -> Vec<u8> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nX-Pad: ");
    let tail = "\r\n\r\n";
    let pad = len.saturating_sub(head.len() + tail.len());
    let mut r = head.into_bytes();
    r.extend((0..pad).map(|i| b'a' + (i % 26) as u8));
    r.extend(tail.as_bytes());
    r
}

/// What one connection to the provider saw.
#[derive(Debug, Default, Clone)]
pub struct Served {
    /// The request bytes received (empty when the handshake failed).
    pub request: Vec<u8>,
    /// With [`Behaviour::extract_keys`]: the client-write then server-write AES keys.
    pub keys: Option<([u8; 16], [u8; 16])>,
}

/// Starts a rustls server on 127.0.0.1 with `pki`'s leaf, serving `connections`
/// connections one after the other; returns its address and a handle whose result is the
/// [`Served`] record of each connection.
pub fn rustls_server(
    pki: &Pki,
    b: Behaviour,
    connections: usize,
) -> Result<(SocketAddr, std::thread::JoinHandle<Vec<Served>>), ProviderError> {
    rustls_server_serving(pki, b, (0..connections).map(|_| http_response(b)).collect())
}

/// [`rustls_server`] answering its connections, one after the other, with `responses`
/// (whole HTTP responses) instead of [`http_response`]'s.
pub fn rustls_server_serving(
    pki: &Pki,
    b: Behaviour,
    responses: Vec<Vec<u8>>,
) -> Result<(SocketAddr, std::thread::JoinHandle<Vec<Served>>), ProviderError> {
    serve(server_config(pki, b)?, b, responses)
}

/// [`rustls_server_serving`] with a configuration of the caller's (e.g. [`server_config`]'s
/// with a key log).
pub fn rustls_server_with_config(
    config: Arc<rustls::ServerConfig>,
    b: Behaviour,
    responses: Vec<Vec<u8>>,
) -> Result<(SocketAddr, std::thread::JoinHandle<Vec<Served>>), ProviderError> {
    serve(config, b, responses)
}

/// The rustls server configuration [`rustls_server`] uses for `pki` and `b` (versions,
/// suites, key extraction), for a test that drives a `rustls::ServerConnection` itself.
pub fn server_config(pki: &Pki, b: Behaviour) -> Result<Arc<rustls::ServerConfig>, ProviderError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut provider = rustls::crypto::ring::default_provider();
    if b.aes256_only {
        provider.cipher_suites =
            vec![rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384];
    }
    let provider = Arc::new(provider);
    let versions: &[&rustls::SupportedProtocolVersion] = if b.tls13_only {
        &[&rustls::version::TLS13]
    } else if b.tls12_only || b.aes256_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)?;
    let builder = if b.ask_client_certificate {
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(pki.ca_pem.as_bytes())
            .map_err(|e| ProviderError::ClientAuth(e.to_string()))?;
        roots
            .add(ca)
            .map_err(|e| ProviderError::ClientAuth(e.to_string()))?;
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| ProviderError::ClientAuth(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder.with_single_cert(
        vec![CertificateDer::from(pki.leaf_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key_der.clone())),
    )?;
    let mut config = config;
    config.enable_secret_extraction = b.extract_keys;
    Ok(Arc::new(config))
}

/// An HTTP response with a JSON body (`Content-Type: application/json`, `Content-Length`,
/// `Connection: close`).
pub fn json_response(body: &str) -> Vec<u8> {
    ok_response("application/json", body.as_bytes())
}

/// A `200 OK` HTTP response with `body` of `content_type` (`Content-Length`,
/// `Connection: close`).
pub fn ok_response(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Starts a TLS 1.2/1.3 rustls server on 127.0.0.1 with `pki`'s leaf that answers its
/// connections, one after the other, with `responses` (whole HTTP responses, one per
/// connection, in order) and then stops.
pub fn serve_responses(
    pki: &Pki,
    responses: Vec<Vec<u8>>,
) -> Result<(SocketAddr, std::thread::JoinHandle<Vec<Served>>), ProviderError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(pki.leaf_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key_der.clone())),
        )?;
    serve(Arc::new(config), Behaviour::default(), responses)
}

fn serve(
    config: Arc<rustls::ServerConfig>,
    b: Behaviour,
    responses: Vec<Vec<u8>>,
) -> Result<(SocketAddr, std::thread::JoinHandle<Vec<Served>>), ProviderError> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let h = std::thread::spawn(move || {
        let mut got = Vec::new();
        for resp in responses {
            let Ok((tcp, _)) = listener.accept() else {
                break;
            };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                break;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            let complete = loop {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break false,
                    Ok(n) => {
                        req.extend_from_slice(&buf[..n]);
                        if req.windows(4).any(|w| w == b"\r\n\r\n") {
                            break true;
                        }
                    }
                }
            };
            let mut served = Served::default();
            if complete {
                for c in resp.chunks(b.write_size.max(1)) {
                    if tls.write_all(c).and_then(|_| tls.flush()).is_err() {
                        break;
                    }
                }
                tls.conn.send_close_notify();
                let _ = tls.flush();
                if b.extract_keys {
                    served.keys = traffic_keys(tls.conn);
                }
            }
            served.request = req;
            got.push(served);
        }
        got
    });
    Ok((addr, h))
}

fn traffic_keys(conn: rustls::ServerConnection) -> Option<([u8; 16], [u8; 16])> {
    use rustls::ConnectionTrafficSecrets as S;
    let secrets = conn.dangerous_extract_secrets().ok()?;
    let key = |s: &S| match s {
        S::Aes128Gcm { key, .. } => key.as_ref().try_into().ok(),
        _ => None,
    };
    // The server transmits with the server-write key and receives with the client-write key.
    Some((key(&secrets.rx.1)?, key(&secrets.tx.1)?))
}

/// A provider answering every connection, each on a thread of its own, until dropped.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Serves `response` (a whole HTTP response) to every connection on `bind` with the leaf
/// certificate and key (DER), after waiting `delay` once the request is in (to stretch
/// sessions in tests). TLS 1.2 and 1.3. The demo provider of `tessera demo` and docker
/// compose.
pub fn serve_forever(
    leaf_der: Vec<u8>,
    key_der: Vec<u8>,
    bind: SocketAddr,
    response: Vec<u8>,
    delay: std::time::Duration,
) -> Result<Running, ProviderError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf_der)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
            )?,
    );
    let listener = TcpListener::bind(bind)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let response = Arc::new(response);
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            if s2.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let Ok(tcp) = tcp else { continue };
            let config = config.clone();
            let response = response.clone();
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)));
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            req.extend_from_slice(&buf[..n]);
                            if req.windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                    }
                }
                std::thread::sleep(delay);
                if tls.write_all(&response).and_then(|_| tls.flush()).is_ok() {
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            });
        }
    });
    Ok(Running { addr, stop })
}

/// A server program from the system's packages (nginx, `openssl s_server`), for the tests
/// that run sessions against real servers: killed, and its directory removed, when dropped.
pub struct External {
    child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its working directory (configuration, certificates, served files, log).
    pub dir: std::path::PathBuf,
}

impl Drop for External {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The path of a program from the system's packages, or an error saying how to install it.
pub fn system_binary(name: &str) -> Result<std::path::PathBuf, ProviderError> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = std::path::Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(ProviderError::External(format!(
        "{name} is not installed: run `apt-get install -y nginx openssl` (as .ci/run does)"
    )))
}

/// A fresh directory for an external server's files.
pub fn scratch_dir(tag: &str) -> Result<std::path::PathBuf, ProviderError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let d = std::env::temp_dir().join(format!("tessera-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(d.join("www"))?;
    Ok(d)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16, ProviderError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `cmd` (with its working directory in `dir`, logging to `log`) and waits until it
/// accepts connections on `addr`.
pub fn spawn_external(
    mut cmd: std::process::Command,
    dir: std::path::PathBuf,
    addr: SocketAddr,
    log: &std::path::Path,
) -> Result<External, ProviderError> {
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?;
    let mut server = External { child, addr, dir };
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        // A connection to a port nobody listens on yet can succeed as a TCP self-connect
        // (the kernel picking that very port as the source): that is not the server.
        if std::net::TcpStream::connect(addr)
            .is_ok_and(|c| c.local_addr().ok() != c.peer_addr().ok())
        {
            return Ok(server);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(ProviderError::External(format!(
                "the server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(ProviderError::External(format!(
        "the server did not listen on {addr}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    )))
}

/// nginx on 127.0.0.1 with `pki`'s leaf for `name`, serving `files` (path under the root,
/// contents), with `server_extra` added to its `server` block (e.g. gzip settings), speaking
/// TLS 1.2 and 1.3.
pub fn nginx(
    pki: &Pki,
    name: &str,
    files: &[(&str, Vec<u8>)],
    server_extra: &str,
) -> Result<External, ProviderError> {
    nginx_with_protocols(pki, name, files, server_extra, "TLSv1.2 TLSv1.3")
}

/// [`nginx`] with its `ssl_protocols` set to `protocols` (e.g. `TLSv1.3`).
pub fn nginx_with_protocols(
    pki: &Pki,
    name: &str,
    files: &[(&str, Vec<u8>)],
    server_extra: &str,
    protocols: &str,
) -> Result<External, ProviderError> {
    let bin = system_binary("nginx")?;
    let dir = scratch_dir("nginx")?;
    std::fs::write(dir.join("leaf.pem"), &pki.leaf_pem)?;
    std::fs::write(dir.join("leaf.key"), &pki.leaf_key_pem)?;
    for (f, data) in files {
        let path = dir.join("www").join(f);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, data)?;
    }
    let port = free_port()?;
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/t1;\n proxy_temp_path {d}/t2;\n fastcgi_temp_path {d}/t3;\n uwsgi_temp_path {d}/t4;\n scgi_temp_path {d}/t5;\n\
          types {{ application/json json; text/html html; }}\n\
          server {{\n  listen 127.0.0.1:{port} ssl;\n  server_name {name};\n  ssl_certificate {d}/leaf.pem;\n  ssl_certificate_key {d}/leaf.key;\n\
           ssl_protocols {protocols};\n  keepalive_timeout 0;\n  default_type text/plain;\n  root {d}/www;\n{server_extra}\n }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf)?;
    let log = dir.join("error.log");
    let mut cmd = std::process::Command::new(bin);
    cmd.args([
        "-p",
        &d.to_string(),
        "-c",
        &format!("{d}/nginx.conf"),
        "-e",
        &log.display().to_string(),
    ]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    spawn_external(cmd, dir, addr, &log)
}

/// GnuTLS `gnutls-serv --http` on 127.0.0.1 with `pki`'s leaf, answering every request
/// with `body` (it writes the head itself: `HTTP/1.0 200 OK`, `Content-Length`), under the
/// GnuTLS priority string `priority`,
/// with `extra` arguments (`--require-client-cert`, …). Without `--disable-client-cert` it
/// asks every client for an optional certificate.
pub fn gnutls_serv(
    pki: &Pki,
    priority: &str,
    body: &[u8],
    extra: &[&str],
) -> Result<External, ProviderError> {
    let bin = system_binary("gnutls-serv").map_err(|_| {
        ProviderError::External(
            "gnutls-serv is not installed: run `apt-get install -y gnutls-bin` (as .ci/run does)"
                .into(),
        )
    })?;
    let dir = scratch_dir("gnutls")?;
    std::fs::write(dir.join("leaf.pem"), &pki.leaf_pem)?;
    std::fs::write(dir.join("leaf.key"), &pki.leaf_key_pem)?;
    std::fs::write(dir.join("body"), body)?;
    let port = free_port()?;
    let log = dir.join("gnutls-serv.log");
    let mut cmd = std::process::Command::new(bin);
    cmd.current_dir(&dir)
        .args([
            "--http",
            "--httpdata",
            "body",
            "--x509certfile",
            "leaf.pem",
            "--x509keyfile",
            "leaf.key",
            "--port",
            &port.to_string(),
            "--priority",
            priority,
        ])
        .args(extra);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    spawn_external(cmd, dir, addr, &log)
}

/// `openssl s_server -WWW` on 127.0.0.1 serving the files of `dir/www`, with the certificate
/// `dir/leaf.pem` and key `dir/leaf.key` (it answers HTTP/1.0, its body delimited by the
/// close).
pub fn s_server_www(dir: std::path::PathBuf) -> Result<External, ProviderError> {
    s_server_www_with(dir, &[])
}

/// [`s_server_www`] with `extra` arguments (e.g. `-tls1_3`, `-groups P-256`).
pub fn s_server_www_with(
    dir: std::path::PathBuf,
    extra: &[&str],
) -> Result<External, ProviderError> {
    let port = free_port()?;
    let log = dir.join("s_server.log");
    let mut cmd = std::process::Command::new(system_binary("openssl")?);
    cmd.current_dir(dir.join("www")).args([
        "s_server",
        "-accept",
        &format!("127.0.0.1:{port}"),
        "-cert",
        "../leaf.pem",
        "-key",
        "../leaf.key",
        "-WWW",
        "-quiet",
    ]);
    cmd.args(extra);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    spawn_external(cmd, dir, addr, &log)
}
