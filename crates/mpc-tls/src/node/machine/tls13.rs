//! The node's TLS 1.3 handshake (RFC 8446), from the ServerHello to the application keys;
//! the request and the response then run as in TLS 1.2 over the application keys
//! ([`Tls::V13`]).
//!
//! 1. The ServerHello selects TLS 1.3: each node multiplies the server's key share by its
//!    share of the committee's key, and ECtF turns the three points into additive shares of
//!    the (EC)DHE secret.
//! 2. The handshake execution derives the handshake traffic secrets and opens them to the
//!    nodes (never to the client); the master secret stays on the wires. The secrets are
//!    HKDF-Expand outputs of the handshake secret under labels of their own, so they give
//!    neither it nor the master secret, nor anything derived from the master secret: the
//!    application traffic secrets are HKDF-Expand outputs of the master secret, which is an
//!    HKDF-Extract of a secret derived from the handshake secret (docs/mpc-tls.md).
//! 3. Every node decrypts the server's encrypted flight itself and checks the certificate
//!    chain, the CertificateVerify signature and the server Finished; then the nodes agree
//!    on the transcript hash and their verdicts, as for TLS 1.2's first flight.
//! 4. The client's Finished (and an empty Certificate if the server asked for one) is
//!    computed and protected in the clear by every node and sent to the client, which
//!    checks that all three sent the same record.
//! 5. The application execution derives both application traffic keys from the kept master
//!    secret and the transcript hash through the server Finished; the keys stay on the
//!    wires and the GHASH keys come out as XOR shares, as in TLS 1.2.

use p256::ProjectivePoint;
use subtle::ConstantTimeEq;

use super::*;
use crate::circuits13::{app13_out, hs13_out};
use crate::codec::{handshake_message, hs, HandshakeReader};
use crate::handshake13::{selects_tls13, Flight13, Hello13, ServerFlight13};
use crate::proto::Finished13;
use crate::record13::{finished_verify_data, RecordError, TrafficKey};
use crate::server_auth::verify_server13;

/// TLS 1.3 from the ServerHello to the handshake execution's output.
pub(super) struct Hs13 {
    s: Setup,
    client_random: [u8; 32],
    machine: ServerFlight13,
    /// The transcript hash through the ServerHello.
    hello_hash: [u8; 32],
}

/// The server's encrypted flight, read with the server handshake traffic key.
pub(super) struct Read13 {
    s: Setup,
    client_random: [u8; 32],
    machine: ServerFlight13,
    server: TrafficKey,
    server_secret: Zeroizing<[u8; 32]>,
    client_secret: Zeroizing<[u8; 32]>,
    /// The next record's sequence number (= records read).
    seq: u64,
    messages: HandshakeReader,
    /// Whether the middlebox-compatibility ChangeCipherSpec came.
    ccs: bool,
}

/// The flight is agreed: the application execution, then both GHASH powers.
pub(super) struct Keys13 {
    s: Setup,
    client_random: [u8; 32],
    cert_chain_hash: [u8; 32],
    handshake_hash: [u8; 32],
    e_app: ExecId,
    cpow: Option<GhashPowers>,
    spow: Option<GhashPowers>,
}

fn secret(bits: &[bool]) -> Zeroizing<[u8; 32]> {
    let mut s = Zeroizing::new([0u8; 32]);
    s.copy_from_slice(&bits_to_bytes(bits));
    s
}

impl<R: RngCore + CryptoRng> NodeSession<R> {
    /// Waiting for the ServerHello: TLS 1.3 goes on here, TLS 1.2 in [`State::Flight`].
    pub(super) fn step_server_hello(&mut self, h: Box<Hello>) -> Result<Step, NodeError> {
        let Some(ev) = self.next_event()? else {
            return Ok(Step::Wait(State::ServerHello(h)));
        };
        match ev {
            Some(ServerEvent::Handshake(m)) if selects_tls13(&m) => {
                Ok(Step::Moved(self.on_server_hello13(*h, &m)?))
            }
            Some(ServerEvent::Handshake(m)) => {
                let mut h = h;
                self.choose_version(&mut h.s, false)?;
                let mut machine = ServerFlight::new(&h.client_hello).offering_tls13();
                match machine.on_message(&m)? {
                    None => Ok(Step::Moved(State::Flight(h, Box::new(machine)))),
                    Some(_) => Err(unexpected("a whole first flight in one message")),
                }
            }
            Some(ServerEvent::Alert(a)) => {
                Err(ServerFlight::new(&h.client_hello).on_alert(a).into())
            }
            Some(other) => Err(unexpected(format!("{other:?} instead of ServerHello"))),
            None => Err(unexpected("connection closed before the ServerHello")),
        }
    }

    fn on_server_hello13(&mut self, h: Hello, m: &[u8]) -> Result<State, NodeError> {
        let sid = codec::legacy_session_id(&h.client_random);
        let mut machine = ServerFlight13::new(&h.client_hello, &sid);
        let key = match machine.on_server_hello(m)? {
            Hello13::Hello { key, .. } => key,
            Hello13::Retry { .. } => {
                return Err(unexpected(
                    "a HelloRetryRequest although the ClientHello had a secp256r1 key share",
                ))
            }
        };
        self.stream.expect_tls13()?;
        let mut s = h.s;
        self.choose_version(&mut s, true)?;
        // RFC 8446 §4.2.8.2: an uncompressed point, not the identity.
        let server_point = Some(&key)
            .filter(|k| k.len() == 65 && k[0] == 4)
            .and_then(|k| p256_point(k))
            .filter(|p| !bool::from(p.is_identity()))
            .ok_or_else(|| unexpected("invalid server key share"))?;
        // 3. (EC)DHE secret shares: every node computes on the same relayed key share (the
        // handshake execution's copies of the transcript hash catch any difference).
        self.since = self.now;
        let my_ecdh = (ProjectivePoint::from(server_point) * *h.scalar).to_affine();
        let ectf = ectf_machine(self.id, &my_ecdh, &mut self.rng)
            .map_err(|a| NodeError::Mpc(SessionError::Arith(a)))?;
        self.start_arith(ch::ECTF, Arith::Ectf(Box::new(ectf)))?;
        let hello_hash = machine.transcript_hash();
        Ok(State::Ectf13(Box::new(Hs13 {
            s,
            client_random: h.client_random,
            machine,
            hello_hash,
        })))
    }

    /// ECtF running; then the handshake execution.
    pub(super) fn step_ectf13(&mut self, x: Box<Hs13>) -> Result<Step, NodeError> {
        let Some(m) = self.arith_done(ch::ECTF)? else {
            return Ok(Step::Wait(State::Ectf13(x)));
        };
        let inputs = self.dhe_inputs(m, &x.hello_hash)?;
        self.since = self.now;
        self.start_exec(x.s.hs13()?.0, inputs)?;
        Ok(Step::Moved(State::Handshake13(x)))
    }

    /// The handshake execution running; then the encrypted flight.
    pub(super) fn step_handshake13(&mut self, x: Box<Hs13>) -> Result<Step, NodeError> {
        let Some(out) = self.exec_output(x.s.hs13()?.0)? else {
            return Ok(Step::Wait(State::Handshake13(x)));
        };
        self.timings.handshake_exec = self.now - self.since;
        let opened = value(&out, hs13_out::OPENED)?;
        if opened[0] {
            return Err(NodeError::Inconsistent(
                "the transcript through the ServerHello",
            ));
        }
        let client_secret = secret(&opened[1..257]);
        let server_secret = secret(&opened[257..513]);
        let Hs13 {
            s,
            client_random,
            machine,
            ..
        } = *x;
        Ok(Step::Moved(State::Flight13(Box::new(Read13 {
            s,
            client_random,
            machine,
            server: TrafficKey::from_secret(&server_secret),
            server_secret,
            client_secret,
            seq: 0,
            messages: HandshakeReader::new(),
            ccs: false,
        }))))
    }

    /// Reading the encrypted flight; then the verdict goes to the peers.
    pub(super) fn step_flight13(&mut self, mut r: Box<Read13>) -> Result<Step, NodeError> {
        let verdict = loop {
            let ev = match self.next_event() {
                Ok(None) => return Ok(Step::Wait(State::Flight13(r))),
                Ok(Some(ev)) => ev,
                Err(e) => break Err(e),
            };
            match ev {
                Some(ServerEvent::ChangeCipherSpec) if !r.ccs && r.seq == 0 => r.ccs = true,
                Some(ServerEvent::Encrypted { payload, .. }) => match read_record(&mut r, &payload)
                {
                    Ok(None) => {}
                    Ok(Some(f)) => break Ok(f),
                    Err(e) => break Err(e),
                },
                Some(ServerEvent::Alert(alert)) => {
                    break Err(ServerError::ServerAlert {
                        alert,
                        stage: "the handshake",
                    }
                    .into())
                }
                Some(other) => {
                    break Err(unexpected(format!(
                        "{other:?} during the TLS 1.3 handshake"
                    )))
                }
                None => break Err(unexpected("connection closed during the handshake")),
            }
        };
        let verdict = verdict.and_then(|f| {
            verify_server13(
                &self.cfg.roots,
                &r.s.server_name,
                &f.certs,
                self.cfg.time,
                f.scheme,
                &f.signature,
                &f.hash_through_certificate,
            )?;
            let want = finished_verify_data(&r.server_secret, &f.hash_through_certificate_verify);
            if !bool::from(want.ct_eq(&f.finished)) {
                return Err(NodeError::BadFinished);
            }
            Ok(f)
        });
        // The peers hear the verdict either way.
        let hash = r.machine.transcript_hash();
        self.send_ctl(&Ctl::Check {
            hash,
            ok: verdict.is_ok(),
        });
        Ok(Step::Moved(State::FlightCheck13(
            r,
            Box::new(verdict),
            hash,
        )))
    }

    /// Waiting for the peers' verdicts on the flight; then the client Finished and the
    /// application execution.
    pub(super) fn step_flight_check13(
        &mut self,
        r: Box<Read13>,
        verdict: Box<Result<Flight13, NodeError>>,
        hash: [u8; 32],
    ) -> Result<Step, NodeError> {
        let Some(got) = self.ctl.take() else {
            return Ok(Step::Wait(State::FlightCheck13(r, verdict, hash)));
        };
        let agreed = check_agreed(got, "the server's encrypted flight", &hash);
        // This node's own reason comes first.
        let f = (*verdict)?;
        agreed?;
        // 4. The client's flight: an empty Certificate if asked for, then Finished.
        let mut msgs = match &f.certificate_request {
            Some(context) => {
                let mut body = vec![context.len() as u8];
                body.extend_from_slice(context);
                body.extend_from_slice(&[0, 0, 0]);
                handshake_message(hs::CERTIFICATE, &body)
            }
            None => Vec::new(),
        };
        let vd = finished_verify_data(&r.client_secret, &r.machine.transcript_hash_with(&msgs));
        msgs.extend(handshake_message(hs::FINISHED, &vd));
        let client = TrafficKey::from_secret(&r.client_secret);
        let records = record13::seal(&client.key, &client.iv, 0, ContentType::Handshake, &msgs)
            .map_err(|e| usage(e.to_string()))?;
        self.send_client(&ToClient::ClientFinished13(OneCopy::from_node(
            self.id,
            Finished13 {
                server_records: r.seq as u32,
                records,
            },
        )));
        let handshake_hash = r.machine.transcript_hash_with(&msgs);
        // 5. The application keys.
        let e_app = r.s.hs13()?.1;
        let mut inputs = Inputs::none();
        if self.id < 2 {
            inputs = inputs.value(
                1 + self.id as usize,
                bytes_to_bits(&f.hash_through_finished),
            );
        }
        self.since = self.now;
        self.start_exec(e_app, inputs)?;
        let Read13 {
            s, client_random, ..
        } = *r;
        Ok(Step::Moved(State::Application13(Box::new(Keys13 {
            s,
            client_random,
            cert_chain_hash: cert_chain_hash(&f.certs),
            handshake_hash,
            e_app,
            cpow: None,
            spow: None,
        }))))
    }

    /// The application execution running; then both directions' GHASH powers.
    pub(super) fn step_application13(&mut self, k: Box<Keys13>) -> Result<Step, NodeError> {
        let Some(out) = self.exec_output(k.e_app)? else {
            return Ok(Step::Wait(State::Application13(k)));
        };
        self.timings.server_finished_exec = self.now - self.since;
        if value(&out, app13_out::CHECK)?[0] {
            return Err(NodeError::Inconsistent(
                "the transcript through the server's Finished",
            ));
        }
        let h = value(&out, app13_out::H)?;
        let h_client = Zeroizing::new(block(&h[0..128]));
        let h_server = Zeroizing::new(block(&h[128..256]));
        let needed =
            k.s.record_lens(true)
                .iter()
                .map(|&l| blocks_for(l) + 2)
                .max()
                .unwrap_or(0)
                .max(3);
        self.since = self.now;
        let m = self.ghash_machine(*h_client, needed)?;
        self.start_arith(ch::GHASH_CLIENT, m)?;
        let m = self.ghash_machine(*h_server, MAX_POWERS)?;
        self.start_arith(ch::GHASH_SERVER, m)?;
        Ok(Step::Moved(State::Powers13(k)))
    }

    /// Both GHASH powers being computed; then the request.
    pub(super) fn step_powers13(&mut self, mut k: Box<Keys13>) -> Result<Step, NodeError> {
        let mut moved = false;
        for (channel, slot) in [
            (ch::GHASH_CLIENT, &mut k.cpow),
            (ch::GHASH_SERVER, &mut k.spow),
        ] {
            if slot.is_some() {
                continue;
            }
            let Some(m) = self.arith_done(channel)? else {
                continue;
            };
            let Arith::Ghash(mut m) = m else {
                return Err(usage("ECtF instead of GHASH powers"));
            };
            *slot = Some(
                m.take_output()
                    .ok_or_else(|| usage("GHASH powers already taken"))?,
            );
            moved = true;
        }
        if k.cpow.is_none() || k.spow.is_none() {
            return Ok(if moved {
                Step::Moved(State::Powers13(k))
            } else {
                Step::Wait(State::Powers13(k))
            });
        };
        self.timings.ghash = self.now - self.since;
        let Keys13 {
            s,
            client_random,
            cert_chain_hash,
            handshake_hash,
            e_app,
            cpow: Some(cpow),
            spow: Some(spow),
        } = *k
        else {
            return Err(usage("GHASH powers missing"));
        };
        self.since = self.now;
        Ok(Step::Moved(self.start_request(App {
            s,
            tls: Tls::V13 { e_app },
            client_random,
            suite: CipherSuite::Aes128GcmSha256,
            cert_chain_hash,
            handshake_hash,
            cpow,
            spow,
        })?))
    }
}

/// Opens one record of the server's encrypted flight and feeds its handshake messages to
/// the flight's machine: the flight once its Finished is in (which must end its record: the
/// keys change after it).
fn read_record(r: &mut Read13, payload: &[u8]) -> Result<Option<Flight13>, NodeError> {
    let seq = r.seq;
    let (typ, plain) =
        record13::open(&r.server.key, &r.server.iv, seq, payload).map_err(|e| match e {
            RecordError::Tag { .. } => NodeError::BadTag(format!(
                "the server's encrypted flight (record {})",
                seq + 1
            )),
            RecordError::Codec(c) => c.into(),
            other => unexpected(other.to_string()),
        })?;
    r.seq += 1;
    match typ {
        22 => r.messages.push(&plain),
        21 => {
            return Err(ServerError::ServerAlert {
                alert: codec::Alert::parse(&plain)?,
                stage: "the handshake",
            }
            .into())
        }
        t => {
            return Err(unexpected(format!(
                "a record of content type {t} in the server's encrypted flight"
            )))
        }
    }
    while let Some(m) = r.messages.next_message()? {
        if let Some(f) = r.machine.on_message(&m)? {
            if r.messages.has_partial() {
                return Err(unexpected(
                    "handshake data after the server's Finished in its record",
                ));
            }
            return Ok(Some(f));
        }
    }
    Ok(None)
}
