//! Sessions against real TLS servers from Debian packages: nginx with an ECDSA P-256
//! certificate and `openssl s_server` with an RSA certificate (so both suites and both kinds
//! of ServerKeyExchange signature are exercised). `.ci/run` installs both
//! (`apt-get install -y nginx openssl`); without them these tests fail and say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpc_tls::codec::CipherSuite;
use mpc_tls::local::{fetch, LocalConfig};
use mpc_tls::provider::{body_byte, pki};
use mpc_tls::verify::Roots;

const NAME: &str = "provider.test";

/// Kills the server when the test ends, however it ends.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need(bin: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return p;
        }
    }
    panic!("{bin} is not installed: run `apt-get install -y nginx openssl` (as .ci/run does)");
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "tessera-{tag}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(d.join("www")).unwrap();
    d
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(addr: SocketAddr, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "server did not listen on {addr}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn write_files(www: &Path, sizes: &[usize]) {
    for &n in sizes {
        let body: Vec<u8> = (0..n).map(body_byte).collect();
        std::fs::write(www.join(format!("f{n}")), body).unwrap();
    }
}

async fn get(
    roots: &Roots,
    addr: SocketAddr,
    path: &str,
    http10: bool,
) -> mpc_tls::local::LocalOutput {
    let mut cfg = LocalConfig::new(roots.clone());
    cfg.timeout = Duration::from_secs(60);
    let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let req = format!("GET {path} {version}\r\nHost: {NAME}\r\nConnection: close\r\n\r\n");
    fetch(&cfg, NAME, addr, req.as_bytes()).await.unwrap()
}

fn body_of(resp: &[u8]) -> &[u8] {
    let at = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    &resp[at + 4..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_ecdsa_p256() {
    let nginx = need("nginx");
    let dir = tempdir("nginx");
    let p = pki(&[NAME]).unwrap();
    std::fs::write(dir.join("leaf.pem"), &p.leaf_pem).unwrap();
    std::fs::write(dir.join("leaf.key"), &p.leaf_key_pem).unwrap();
    let sizes = [0, 1024, 4096, 64 * 1024];
    write_files(&dir.join("www"), &sizes);
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/t1;\n proxy_temp_path {d}/t2;\n fastcgi_temp_path {d}/t3;\n uwsgi_temp_path {d}/t4;\n scgi_temp_path {d}/t5;\n\
          server {{\n  listen 127.0.0.1:{port} ssl;\n  server_name {NAME};\n  ssl_certificate {d}/leaf.pem;\n  ssl_certificate_key {d}/leaf.key;\n\
           ssl_protocols TLSv1.2 TLSv1.3;\n  keepalive_timeout 0;\n  default_type text/plain;\n  root {d}/www;\n }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let log = dir.join("error.log");
    let mut child = Command::new(nginx)
        .args([
            "-p",
            &d.to_string(),
            "-c",
            &format!("{d}/nginx.conf"),
            "-e",
            &log.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr, &mut child, &log);
    let _server = Server(child);
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    for n in sizes {
        let out = get(&roots, addr, &format!("/f{n}"), false).await;
        let resp = &out.client.response;
        assert!(
            resp.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "{}",
            String::from_utf8_lossy(&resp[..40.min(resp.len())])
        );
        let want: Vec<u8> = (0..n).map(body_byte).collect();
        assert_eq!(body_of(resp), &want[..], "body of /f{n}");
        assert!(String::from_utf8_lossy(resp).contains(&format!("Content-Length: {n}\r\n")));
        let t = &out.client.transcript;
        assert_eq!(t.suite, CipherSuite::EcdheEcdsaAes128GcmSha256);
        assert!(t.close_notify, "nginx closes with close_notify");
        if n == 64 * 1024 {
            assert!(t.received_records >= 5, "{} records", t.received_records);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(need("openssl"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_s_server_rsa() {
    let dir = tempdir("openssl");
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=Tessera RSA test CA",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=provider.test",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), format!(
        "subjectAltName=DNS:{NAME}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    )).unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    let sizes = [1024, 64 * 1024];
    write_files(&dir.join("www"), &sizes);
    let port = free_port();
    let log = dir.join("s_server.log");
    let mut child = Command::new(need("openssl"))
        .current_dir(dir.join("www"))
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "../leaf.pem",
            "-key",
            "../leaf.key",
            "-WWW",
            "-quiet",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr, &mut child, &log);
    let _server = Server(child);
    let roots = Roots::from_pem(&std::fs::read_to_string(dir.join("ca.pem")).unwrap()).unwrap();
    for n in sizes {
        let out = get(&roots, addr, &format!("/f{n}"), true).await;
        let resp = &out.client.response;
        assert!(
            resp.starts_with(b"HTTP/1.0 200 ok\r\n"),
            "{}",
            String::from_utf8_lossy(&resp[..40.min(resp.len())])
        );
        let want: Vec<u8> = (0..n).map(body_byte).collect();
        assert_eq!(body_of(resp), &want[..], "body of /f{n}");
        assert_eq!(
            out.client.transcript.suite,
            CipherSuite::EcdheRsaAes128GcmSha256
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
