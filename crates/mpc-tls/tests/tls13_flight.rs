//! The TLS 1.3 pieces in the clear against a real rustls TLS 1.3 server: a rustls client
//! with a key log runs a handshake with it in memory; the server's flight, as it went over
//! the wire, is opened with `record13` under the server handshake traffic key (derived in
//! software from the logged secret), parsed by `handshake13::ServerFlight13`, its chain and
//! CertificateVerify checked by `server_auth::verify_server13`, and its Finished MAC compared
//! with HMAC(finished key, hash through CertificateVerify).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

mod common;
use common::{expand_label, hmac};
use mpc_tls::codec::{HandshakeReader, RecordReader};
use mpc_tls::handshake13::{Flight13, Hello13, ServerFlight13, SECP256R1};
use mpc_tls::server_auth::{verify_server13, CertError, Roots};
use tessera_provider::{pki, server_config, Behaviour};

const NAME: &str = "provider.test";

#[derive(Debug, Default)]
struct Log(Mutex<Vec<(String, Vec<u8>)>>);

impl rustls::KeyLog for Log {
    fn log(&self, label: &str, _client_random: &[u8], secret: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push((label.to_string(), secret.to_vec()));
    }
    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

/// What a handshake left: the ClientHello message and its session id, the server's bytes,
/// the server handshake traffic secret, the roots.
struct Run {
    client_hello: Vec<u8>,
    session_id: Vec<u8>,
    server_bytes: Vec<u8>,
    secret: Vec<u8>,
    roots: Roots,
}

fn handshake() -> Run {
    let p = pki(&[NAME]).unwrap();
    let server = server_config(
        &p,
        Behaviour {
            tls13_only: true,
            ..Behaviour::default()
        },
    )
    .unwrap();
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![rustls::crypto::ring::kx_group::SECP256R1];
    provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    let mut roots = rustls::RootCertStore::empty();
    let ca = Roots::from_pem(&p.ca_pem).unwrap();
    for c in mpc_tls::server_auth::pem_certificates(&p.ca_pem).unwrap() {
        roots
            .add(rustls::pki_types::CertificateDer::from(c))
            .unwrap();
    }
    let log = Arc::new(Log::default());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.key_log = log.clone();
    let mut c = rustls::ClientConnection::new(Arc::new(config), NAME.try_into().unwrap()).unwrap();
    let mut s = rustls::ServerConnection::new(server).unwrap();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let mut b = Vec::new();
        c.write_tls(&mut b).unwrap();
        up.extend(&b);
        s.read_tls(&mut &b[..]).unwrap();
        s.process_new_packets().unwrap();
        let mut b = Vec::new();
        s.write_tls(&mut b).unwrap();
        down.extend(&b);
        c.read_tls(&mut &b[..]).unwrap();
        c.process_new_packets().unwrap();
        if !c.is_handshaking() && !s.is_handshaking() {
            break;
        }
    }
    assert!(!c.is_handshaking(), "the handshake did not finish");
    // The ClientHello: the first record's payload (one message).
    let mut r = RecordReader::new();
    r.push(&up);
    let ch = r.next_record().unwrap().unwrap().payload;
    let sid_len = usize::from(ch[4 + 2 + 32]);
    let session_id = ch[4 + 2 + 32 + 1..4 + 2 + 32 + 1 + sid_len].to_vec();
    let secret = log
        .0
        .lock()
        .unwrap()
        .iter()
        .find(|(l, _)| l == "SERVER_HANDSHAKE_TRAFFIC_SECRET")
        .map(|(_, s)| s.clone())
        .unwrap();
    Run {
        client_hello: ch,
        session_id,
        server_bytes: down,
        secret,
        roots: ca,
    }
}

/// The server's flight through `ServerFlight13`, its encrypted records opened with the
/// keys of `secret`; `tamper` may change each decrypted handshake message first.
fn flight(run: &Run, tamper: impl Fn(&mut Vec<u8>)) -> Result<Flight13, String> {
    let key: [u8; 16] = expand_label(&run.secret, "key", &[], 16)
        .try_into()
        .unwrap();
    let iv: [u8; 12] = expand_label(&run.secret, "iv", &[], 12).try_into().unwrap();
    let mut m = ServerFlight13::new(&run.client_hello, &run.session_id);
    let mut records = RecordReader::new();
    records.push(&run.server_bytes);
    let mut hs = HandshakeReader::new();
    let mut seq = 0;
    while let Some(rec) = records.next_record().map_err(|e| e.to_string())? {
        match rec.typ.byte() {
            22 => match m.on_server_hello(&rec.payload).map_err(|e| e.to_string())? {
                Hello13::Hello { group, key, .. } => {
                    assert_eq!(group, SECP256R1);
                    assert_eq!(key.len(), 65);
                }
                Hello13::Retry { .. } => return Err("a retry".into()),
            },
            20 => {} // middlebox-compatibility ChangeCipherSpec
            23 => {
                let (typ, plain) = mpc_tls::record13::open(&key, &iv, seq, &rec.payload)
                    .map_err(|e| e.to_string())?;
                seq += 1;
                assert_eq!(typ, 22, "only handshake messages in the server's flight");
                hs.push(&plain);
                while let Some(mut msg) = hs.next_message().map_err(|e| e.to_string())? {
                    tamper(&mut msg);
                    if let Some(f) = m.on_message(&msg).map_err(|e| e.to_string())? {
                        return Ok(f);
                    }
                }
            }
            t => return Err(format!("record type {t}")),
        }
    }
    Err("the flight ended early".into())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `verify_server13` on `f`'s chain at the current time, for `name`, `scheme`, `signature`
/// over `hash`.
fn check(
    run: &Run,
    f: &Flight13,
    name: &str,
    scheme: u16,
    signature: &[u8],
    hash: &[u8; 32],
) -> Result<(), CertError> {
    verify_server13(&run.roots, name, &f.certs, now(), scheme, signature, hash)
}

/// Whether `f`'s Finished is HMAC(finished key of the server handshake secret, hash through
/// CertificateVerify).
fn finished_matches(run: &Run, f: &Flight13) -> bool {
    let finished_key = expand_label(&run.secret, "finished", &[], 32);
    hmac(&finished_key, &f.hash_through_certificate_verify) == f.finished
}

#[test]
fn a_rustls_tls13_flight_parses_verifies_and_its_finished_matches() {
    let run = handshake();
    let f = flight(&run, |_| {}).unwrap();
    assert_eq!(f.scheme, 0x0403, "the test PKI's leaf is ECDSA P-256");
    assert!(f.certificate_request.is_none());
    let (sig, h_cert) = (&f.signature, &f.hash_through_certificate);
    check(&run, &f, NAME, f.scheme, sig, h_cert).unwrap();
    assert!(finished_matches(&run, &f));

    // Another name, a flipped signature, a PKCS#1 scheme, another hash: refused.
    assert!(matches!(
        check(&run, &f, "other.test", f.scheme, sig, h_cert),
        Err(CertError::Name { .. })
    ));
    let mut flipped = sig.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(
        check(&run, &f, NAME, f.scheme, &flipped, h_cert),
        Err(CertError::CertificateVerify)
    );
    assert_eq!(
        check(&run, &f, NAME, 0x0401, sig, h_cert),
        Err(CertError::Scheme13(0x0401))
    );
    let h_cv = &f.hash_through_certificate_verify;
    assert_eq!(
        check(&run, &f, NAME, f.scheme, sig, h_cv),
        Err(CertError::CertificateVerify)
    );
}

/// A changed EncryptedExtensions (the record decrypts: the change is made after) moves the
/// transcript, so the CertificateVerify no longer verifies and the Finished no longer
/// matches.
#[test]
fn a_changed_flight_message_breaks_the_signature_and_the_finished() {
    let run = handshake();
    let f = flight(&run, |m| {
        if m[0] == 8 {
            m.extend([0xff, 0x01, 0, 0]);
            let len = m.len() - 4;
            m[1..4].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
            let ext_len = len - 2;
            m[4..6].copy_from_slice(&(ext_len as u16).to_be_bytes());
        }
    })
    .unwrap();
    let (sig, h_cert) = (&f.signature, &f.hash_through_certificate);
    assert_eq!(
        check(&run, &f, NAME, f.scheme, sig, h_cert),
        Err(CertError::CertificateVerify)
    );
    assert!(!finished_matches(&run, &f));
}

/// A rustls server (TLS 1.3 and 1.2, `p`'s leaf) in memory.
fn server(p: &tessera_provider::Pki) -> rustls::ServerConnection {
    rustls::ServerConnection::new(server_config(p, Behaviour::default()).unwrap()).unwrap()
}

/// What `s` answers to one ClientHello record, as records.
fn answer(s: &mut rustls::ServerConnection, ch: &[u8]) -> Vec<mpc_tls::codec::Record> {
    let rec = mpc_tls::codec::encode_record(mpc_tls::codec::ContentType::Handshake, ch);
    s.read_tls(&mut &rec[..]).unwrap();
    s.process_new_packets().unwrap();
    let mut out = Vec::new();
    s.write_tls(&mut out).unwrap();
    let mut r = RecordReader::new();
    r.push(&out);
    std::iter::from_fn(|| r.next_record().unwrap()).collect()
}

/// A client key share: the scalar and the uncompressed point.
fn key_share(seed: u64) -> (p256::Scalar, Vec<u8>) {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::elliptic_curve::Field;
    use rand::SeedableRng;
    let scalar = p256::Scalar::random(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed));
    let public = (p256::ProjectivePoint::GENERATOR * scalar)
        .to_affine()
        .to_encoded_point(false);
    (scalar, public.as_bytes().to_vec())
}

/// Takes the server's ServerHello and encrypted flight (`records`) through `m`, opening the
/// flight with the handshake keys of our ECDH (`scalar`) with its share and the software
/// schedule, then checks the chain and CertificateVerify against `p`'s CA and the Finished.
fn check_answer(
    p: &tessera_provider::Pki,
    m: &mut ServerFlight13,
    records: &[mpc_tls::codec::Record],
    scalar: &p256::Scalar,
) {
    use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
    let Hello13::Hello { key, .. } = m.on_server_hello(&records[0].payload).unwrap() else {
        panic!("a retry")
    };
    let point = p256::EncodedPoint::from_bytes(&key).unwrap();
    let point = p256::AffinePoint::from_encoded_point(&point).unwrap();
    let dhe = (p256::ProjectivePoint::from(point) * *scalar)
        .to_affine()
        .to_encoded_point(false);
    let schedule = common::tls13_schedule(dhe.x().unwrap(), &m.transcript_hash(), &[0; 32]);
    let (key, iv): ([u8; 16], [u8; 12]) = (
        schedule[5].clone().try_into().unwrap(),
        schedule[6].clone().try_into().unwrap(),
    );
    let mut hs = HandshakeReader::new();
    let mut flight = None;
    let encrypted = records.iter().skip(1).filter(|r| r.typ.byte() == 23);
    for (seq, rec) in (0u64..).zip(encrypted) {
        let (typ, plain) = mpc_tls::record13::open(&key, &iv, seq, &rec.payload).unwrap();
        assert_eq!(typ, 22);
        hs.push(&plain);
        while let Some(msg) = hs.next_message().unwrap() {
            flight = m.on_message(&msg).unwrap().or(flight);
        }
    }
    let f = flight.expect("the whole flight");
    let roots = Roots::from_pem(&p.ca_pem).unwrap();
    let (sig, h_cert) = (&f.signature, &f.hash_through_certificate);
    verify_server13(&roots, NAME, &f.certs, now(), f.scheme, sig, h_cert).unwrap();
    let server_finished_key = &schedule[8];
    assert_eq!(
        common::hmac(server_finished_key, &f.hash_through_certificate_verify),
        f.finished
    );
}

/// Our ClientHello offering TLS 1.3 next to TLS 1.2, with a real secp256r1 key share, sent
/// to a rustls server that speaks both: it answers in TLS 1.3; `ServerFlight13` takes its
/// ServerHello; the handshake secrets from our ECDH with its share (software schedule)
/// open its encrypted flight, which parses and verifies through to its Finished.
#[test]
fn our_tls13_client_hello_is_answered_in_tls13() {
    use mpc_tls::codec::{client_hello_offering, legacy_session_id, Tls13Offer};
    let (scalar, public) = key_share(5);
    let random = [7u8; 32];
    let offer = Tls13Offer {
        key_share: Some(&public),
        cookie: None,
    };
    let ch = client_hello_offering(&random, NAME, Some(offer));
    let p = pki(&[NAME]).unwrap();
    let records = answer(&mut server(&p), &ch);
    let mut m = ServerFlight13::new(&ch, &legacy_session_id(&random));
    check_answer(&p, &mut m, &records, &scalar);
}

/// A first ClientHello without a key share draws a HelloRetryRequest for secp256r1; the
/// second, with one (and the cookie, if any), gets the ServerHello and flight, checked with
/// the transcript that starts with the first ClientHello's message_hash (RFC 8446 §4.4.1):
/// its Finished verifies only with that transcript. A second retry is refused.
#[test]
fn a_hello_retry_request_and_the_second_client_hello() {
    use mpc_tls::codec::{client_hello_offering, legacy_session_id, Tls13Offer};
    let p = pki(&[NAME]).unwrap();
    let mut s = server(&p);
    let random = [8u8; 32];
    let sid = legacy_session_id(&random);
    let ch1 = client_hello_offering(
        &random,
        NAME,
        Some(Tls13Offer {
            key_share: None,
            cookie: None,
        }),
    );
    let records = answer(&mut s, &ch1);
    let hrr = records[0].payload.clone();
    let Hello13::Retry { group, cookie } = ServerFlight13::new(&ch1, &sid)
        .on_server_hello(&hrr)
        .unwrap()
    else {
        panic!("no retry")
    };
    assert_eq!(group, SECP256R1);
    let (scalar, public) = key_share(6);
    let ch2 = client_hello_offering(
        &random,
        NAME,
        Some(Tls13Offer {
            key_share: Some(&public),
            cookie: cookie.as_deref(),
        }),
    );
    let records = answer(&mut s, &ch2);
    let records: Vec<_> = records.into_iter().filter(|r| r.typ.byte() != 20).collect();
    let mut m = ServerFlight13::after_retry(&ch1, &hrr, &ch2, &sid);
    check_answer(&p, &mut m, &records, &scalar);
    let mut twice = ServerFlight13::after_retry(&ch1, &hrr, &ch2, &sid);
    assert!(twice.on_server_hello(&hrr).is_err(), "a second retry");
}
