//! Whole sessions stepped by hand (no tokio, no sockets, no clock): an honest run, then a
//! party that deviates on the wire — a node sending a wrong tag share, a wrong masked
//! keystream, a different commitment opening or altered garbled-circuit messages, a client
//! relaying different bytes to one node, a node that goes silent or loses a peer. Every deviation must end
//! in an abort at every honest party, never in a wrong answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

use std::time::Duration;

use harness::{honest, Hook, Route, Stepped};
use mpc_tls::net::ch;
use mpc_tls::node::Ctl;
use mpc_tls::proto::{OneCopy, ToClient, ToNode};
use tessera_provider::{http_request, http_response, Behaviour};

/// A response in several records over TLS 1.2 (most tests here were written for its
/// message flow; the TLS 1.3 ones use [`several_records13`]).
fn several_records() -> Behaviour {
    Behaviour {
        body: 3000,
        write_size: 1000,
        tls12_only: true,
        ..Behaviour::default()
    }
}

/// [`several_records`] over TLS 1.3.
fn several_records13() -> Behaviour {
    Behaviour {
        tls12_only: false,
        tls13_only: true,
        ..several_records()
    }
}

fn run(b: Behaviour, hook: Hook) -> harness::Outcome {
    let req = http_request(harness::NAME, "/", 200);
    Stepped::new(b, &req, Duration::from_secs(20), hook).run()
}

/// Rewrites a node's control message from `from` (to any peer) with `f`.
fn on_ctl(from: u8, mut f: impl FnMut(&mut Ctl) + 'static) -> Hook {
    Box::new(move |route, bytes| {
        if let Route::Peer { from: s, .. } = route {
            if s == from && bytes.last() == Some(&ch::CONTROL) {
                let mut m: Ctl = postcard::from_bytes(&bytes[..bytes.len() - 1]).unwrap();
                f(&mut m);
                *bytes = postcard::to_stdvec(&m).unwrap();
                bytes.push(ch::CONTROL);
            }
        }
        true
    })
}

#[test]
fn an_honest_session_without_sockets() {
    for b in [several_records(), several_records13()] {
        honest_session(b);
    }
}

fn honest_session(b: Behaviour) {
    let out = run(b, honest());
    let client = out.client.as_ref().expect("the session succeeds");
    let want = http_response(b);
    assert_eq!(client.response.as_slice(), want.as_slice());
    assert_eq!(
        out.served_request,
        http_request(harness::NAME, "/", 200),
        "the provider got the request"
    );
    for n in &out.nodes {
        let n = n.as_ref().expect("every node commits");
        assert_eq!(n.transcript, client.transcript);
    }
    assert!(client.transcript.close_notify);
    assert_eq!(client.transcript.received_bytes, want.len() as u64);
    assert_eq!(out.waited, Duration::ZERO, "nothing waited for a timeout");
}

#[test]
fn node_with_a_bad_tag_share_aborts_the_session() {
    // TLS 1.2: the first tags the nodes open are the server Finished's; TLS 1.3: the
    // response's.
    for (b, want) in [
        (
            several_records(),
            "the tag of the server's Finished does not verify",
        ),
        (
            several_records13(),
            "the tag of response record 1 does not verify",
        ),
    ] {
        let out = run(
            b,
            on_ctl(0, |m| {
                if let Ctl::Tags(t) = m {
                    t.iter_mut().for_each(|t| t[0] ^= 1);
                }
            }),
        );
        let e = out.client_error();
        assert!(e.contains(want), "{e}");
        assert_eq!(out.node_errors().len(), 3);
    }
}

#[test]
fn node_opening_a_different_commitment_aborts_the_session() {
    let out = run(
        several_records(),
        on_ctl(1, |m| {
            if let Ctl::Reveal { random, .. } = m {
                random[0] ^= 1;
            }
        }),
    );
    let nodes = out.node_errors();
    assert!(
        nodes
            .iter()
            .any(|e| e.contains("opened a different commitment")),
        "{nodes:?}"
    );
    out.client_error();
}

/// Rewrites node `from`'s messages to the client with `f`.
fn on_to_client(from: u8, mut f: impl FnMut(&mut ToClient) + 'static) -> Hook {
    Box::new(move |route, bytes| {
        if route == Route::NodeToClient(from) {
            let mut m: ToClient = postcard::from_bytes(bytes).unwrap();
            f(&mut m);
            *bytes = postcard::to_stdvec(&m).unwrap();
        }
        true
    })
}

#[test]
fn node_with_a_bad_masked_keystream_is_refused_by_the_client() {
    let hook = on_to_client(2, |m| match m {
        ToClient::RequestKeystream(OneCopy::Whole(v)) => v[0] ^= 1,
        ToClient::RequestKeystream(OneCopy::Digest(d)) => d[0] ^= 1,
        _ => {}
    });
    let out = run(several_records(), hook);
    let e = out.client_error();
    assert!(
        e.contains("the nodes disagree about the masked keystream"),
        "{e}"
    );
}

/// The relay node sends the values every node computes whole; the others send digests.
/// A relay node that sends another whole value (a ClientHello of its own choosing) is
/// caught by the other two nodes' digests, and the provider never sees it.
#[test]
fn a_relay_node_sending_another_whole_value_is_caught_by_the_digests() {
    let hook = on_to_client(0, |m| {
        if let ToClient::ClientHello(OneCopy::Whole(h)) = m {
            if let Some(last) = h.last_mut() {
                *last ^= 1;
            }
        }
    });
    let out = run(several_records(), hook);
    let e = out.client_error();
    assert!(
        e.contains("the nodes disagree about the ClientHello"),
        "{e}"
    );
    assert!(out.served_request.is_empty());
}

/// Node 1's `n`th garbled-circuit message has one byte flipped.
fn flip_garbled(n: usize) -> Hook {
    let mut seen = 0;
    Box::new(move |route, bytes| {
        if let Route::Peer { from: 1, .. } = route {
            if bytes.last() == Some(&ch::GARBLED) {
                if seen == n {
                    let at = bytes.len() / 2;
                    bytes[at] ^= 0x10;
                }
                seen += 1;
            }
        }
        true
    })
}

#[test]
fn altered_garbled_messages_abort_every_party() {
    for n in [0, 2, 5] {
        let out = run(several_records(), flip_garbled(n));
        let client = out.client_error();
        let nodes = out.node_errors();
        assert_eq!(nodes.len(), 3, "message {n}");
        eprintln!("message {n}: client: {client}; nodes: {nodes:?}");
    }
}

/// The client sends the relay node (node 0) the provider's bytes with the byte at offset
/// `at` altered, while its hashes to the other nodes are of the true bytes — counted from
/// the start of the stream, or (with `response`) from the first byte after the request went
/// out.
fn lying_relay(response: bool, at: usize) -> Hook {
    let mut offset = (!response).then_some(0usize);
    Box::new(move |route, bytes| {
        if response && route == Route::NodeToClient(0) {
            if let Ok(ToClient::RequestTags(_)) = postcard::from_bytes::<ToClient>(bytes) {
                offset = Some(0);
            }
        }
        if route == Route::ClientToNode(0) {
            if let (Ok(ToNode::ServerBytes(mut b)), Some(o)) =
                (postcard::from_bytes::<ToNode>(bytes), offset.as_mut())
            {
                if (*o..*o + b.len()).contains(&at) {
                    b[at - *o] ^= 1;
                    *bytes = postcard::to_stdvec(&ToNode::ServerBytes(b.clone())).unwrap();
                }
                *o += b.len();
            }
        }
        true
    })
}

fn assert_relay_caught(out: &harness::Outcome) {
    let nodes = out.node_errors();
    assert!(
        nodes
            .iter()
            .any(|e| e.contains("disagree about the provider's bytes")),
        "{nodes:?}"
    );
    assert!(out.client_error().contains("node"));
}

#[test]
fn different_handshake_bytes_to_the_relay_node_abort_everyone() {
    // Bytes 11..43 of the stream are the server random (record header 5, handshake header
    // 4, version 2).
    assert_relay_caught(&run(several_records(), lying_relay(false, 20)));
}

#[test]
fn different_response_bytes_to_the_relay_node_abort_everyone() {
    // Byte 30 of the response is ciphertext of its first record (header 5, explicit nonce 8).
    assert_relay_caught(&run(several_records(), lying_relay(true, 30)));
}

#[test]
fn a_relay_node_that_alters_what_it_forwards_is_caught() {
    let mut n = 0;
    let hook: Hook = Box::new(move |route, bytes| {
        if let Route::Peer { from: 0, to: 2 } = route {
            if bytes.last() == Some(&ch::RELAY) {
                n += 1;
                if n == 2 {
                    bytes[0] ^= 0x80;
                }
            }
        }
        true
    });
    let out = run(several_records(), hook);
    assert_relay_caught(&out);
}

/// The request ciphertext goes up once too, to the relay node, which forwards it. A relay
/// node that alters the forwarded copy, or a client that sends the relay node another
/// ciphertext than it hashed for the others, is caught before the request reaches the
/// provider.
#[test]
fn an_altered_request_ciphertext_on_either_leg_is_caught() {
    for leg in ["relay node", "client"] {
        let mut armed = false;
        let hook: Hook = Box::new(move |route, bytes| {
            match route {
                Route::ClientToNode(0) => {
                    if let Ok(ToNode::RequestCiphertext(mut cts)) = postcard::from_bytes(bytes) {
                        if leg == "client" {
                            cts[0][0] ^= 1;
                            *bytes = postcard::to_stdvec(&ToNode::RequestCiphertext(cts)).unwrap();
                        } else {
                            armed = true;
                        }
                    }
                }
                Route::Peer { from: 0, to: 2 } if armed && bytes.last() == Some(&ch::RELAY) => {
                    armed = false;
                    let at = bytes.len() - 2;
                    bytes[at] ^= 1;
                }
                _ => {}
            }
            true
        });
        let out = run(several_records(), hook);
        let nodes = out.node_errors();
        assert!(
            nodes
                .iter()
                .any(|e| e.contains("disagree about the request ciphertext")),
            "{leg}: {nodes:?}"
        );
        assert!(out.served_request.is_empty(), "{leg}");
    }
}

/// TLS 1.3: a client whose request record does not end with the application-data content
/// type (here its last byte decrypts to zero, padding: the provider would read fewer bytes
/// than the nodes commit to) is refused before it gets its tags. The hook keeps the
/// client's hashes to nodes 1 and 2 consistent with the altered copy, as a client that
/// encrypts such a record itself would send them.
#[test]
fn a_tls13_request_record_without_its_content_type_is_refused() {
    use mpc_tls::proto::{relay_hash, RelayKind};
    let mut chain = [0u8; 32];
    let mut diverged: Option<[u8; 32]> = None;
    let hook: Hook = Box::new(move |route, bytes| {
        match route {
            Route::ClientToNode(0) => match postcard::from_bytes::<ToNode>(bytes) {
                Ok(ToNode::ServerBytes(b)) => chain = relay_hash(&chain, &b),
                Ok(ToNode::RequestCiphertext(mut cts)) => {
                    let last = cts[0].len() - 1;
                    cts[0][last] ^= 0x17;
                    chain = relay_hash(&chain, &postcard::to_stdvec(&cts).unwrap());
                    diverged = Some(chain);
                    *bytes = postcard::to_stdvec(&ToNode::RequestCiphertext(cts)).unwrap();
                }
                _ => {}
            },
            Route::ClientToNode(_) => {
                if let (
                    Ok(ToNode::Relayed {
                        kind: RelayKind::RequestCiphertext,
                        len,
                        ..
                    }),
                    Some(hash),
                ) = (postcard::from_bytes::<ToNode>(bytes), diverged)
                {
                    let m = ToNode::Relayed {
                        kind: RelayKind::RequestCiphertext,
                        len,
                        hash,
                    };
                    *bytes = postcard::to_stdvec(&m).unwrap();
                }
            }
            _ => {}
        }
        true
    });
    let out = run(several_records13(), hook);
    let nodes = out.node_errors();
    assert!(
        nodes
            .iter()
            .any(|e| e
                .contains("request record 1 does not end with the application-data content type")),
        "{nodes:?}"
    );
    assert!(out.served_request.is_empty(), "the provider got no request");
}

#[test]
fn each_provider_byte_goes_up_once() {
    let mut to_nodes = [0usize; 3];
    let hook: Hook = Box::new(move |route, bytes| {
        if let Route::ClientToNode(n) = route {
            if let Ok(ToNode::ServerBytes(b)) = postcard::from_bytes::<ToNode>(bytes) {
                to_nodes[n as usize] += b.len();
                assert_eq!(n, 0, "provider bytes went to node {n}: {to_nodes:?}");
            }
        }
        true
    });
    let out = run(several_records(), hook);
    let client = out.client.as_ref().expect("the session succeeds");
    // The upload is the provider's bytes once, the request ciphertext three times, and
    // small messages: well under twice the provider's bytes.
    let provider_bytes = client.transcript.received_bytes;
    assert!(
        client.stats.bytes_up < 2 * provider_bytes + 3 * 200 + 4096,
        "{} bytes up for {provider_bytes} response bytes",
        client.stats.bytes_up
    );
}

#[test]
fn a_flipped_response_record_is_caught_by_its_tag() {
    // The provider's third TLS write toward the client (after the handshake flights)
    // carries response records; flip a ciphertext bit in it.
    let mut writes = 0;
    let hook: Hook = Box::new(move |route, bytes| {
        if route == Route::ProviderToClient && !bytes.is_empty() {
            writes += 1;
            if writes == 3 {
                let at = bytes.len() - 20;
                bytes[at] ^= 4;
            }
        }
        true
    });
    let out = run(several_records(), hook);
    let e = out.client_error();
    assert!(e.contains("does not verify"), "{e}");
}

#[test]
fn a_silent_node_times_everyone_out() {
    // Node 2 stops sending to its peers after the commitments.
    let mut sent = 0;
    let hook: Hook = Box::new(move |route, _| {
        if let Route::Peer { from: 2, .. } = route {
            sent += 1;
            return sent <= 2;
        }
        true
    });
    let out = run(several_records(), hook);
    let e = out.client_error();
    assert!(e.contains("node"), "{e}");
    let nodes = out.node_errors();
    assert!(nodes.iter().any(|e| e.contains("timed out")), "{nodes:?}");
    // A node that timed out tells its peers why before its engine's bare abort reaches them.
    assert!(nodes.iter().all(|e| !e.contains("local stop")), "{nodes:?}");
    assert!(out.waited >= Duration::from_secs(20), "{:?}", out.waited);
}

#[test]
fn a_node_that_loses_a_peer_tells_the_others_why_before_its_engine_stops() {
    // Mid-garbling, node 0 finds its connection to node 1 closed. Its engine's abort says
    // only "party 0 stopped"; the reason must reach node 2 and the client first.
    for after in [10, 40] {
        let req = http_request(harness::NAME, "/", 200);
        let s = Stepped::new(several_records(), &req, Duration::from_secs(20), honest());
        let out = s.lose_transport(0, after, 1).run();
        let nodes = out.node_errors();
        assert_eq!(nodes.len(), 3);
        assert!(nodes[0].contains("party 1"), "{nodes:?}");
        assert!(nodes[2].contains("party 1"), "after {after}: {nodes:?}");
        assert!(nodes.iter().all(|e| !e.contains("local stop")), "{nodes:?}");
        let e = out.client_error();
        assert!(e.contains("party 1"), "{e}");
    }
}

#[test]
fn a_client_that_learned_the_key_cannot_change_what_the_nodes_committed() {
    for b in [several_records(), several_records13()] {
        learned_key(b);
    }
}

fn learned_key(b: Behaviour) {
    // The provider hands out its traffic keys (rustls secret extraction), standing in for
    // the client, which learns the server write key once the nodes open it.
    let b = Behaviour {
        extract_keys: true,
        ..b
    };
    let req = http_request(harness::NAME, "/", 200);
    // A forged application-data record: any bytes with a tag the client could compute.
    // Delivered after the commit, it can change nothing: a committed node reads no more
    // relayed bytes, only the messages of the computation that follows (which carry no
    // ciphertext), and its transcript and records are fixed.
    let forged = mpc_tls::codec::encode_record(
        mpc_tls::codec::ContentType::ApplicationData,
        &[0x55; 8 + 5 + 16],
    );
    let late = vec![postcard::to_stdvec(&ToNode::ServerBytes(forged.clone())).unwrap()];
    let out = Stepped::new(b, &req, Duration::from_secs(20), honest())
        .after_commit(late)
        .run();
    let client = out.client.as_ref().expect("the session succeeds");
    for (n, unread) in out.nodes.iter().zip(&out.unread) {
        let n = n.as_ref().expect("every node commits");
        assert_eq!(
            n.transcript, client.transcript,
            "the transcript did not move"
        );
        assert!(
            matches!(&unread[..], [ToNode::ServerBytes(b)] if *b == forged),
            "the forged bytes were never read as response"
        );
    }
}

/// Tags are checked while the response arrives: a flipped record among the first
/// batch's stops every party although the provider never finishes (the provider's response
/// flight is cut after three quarters and nothing after it is delivered, so neither a
/// closing alert nor the end of the stream comes).
#[test]
fn a_flipped_record_is_caught_before_the_response_ends() {
    let b = Behaviour {
        body: 6000,
        write_size: 100,
        tls12_only: true,
        ..Behaviour::default()
    };
    let mut writes = 0;
    let hook: Hook = Box::new(move |route, bytes| {
        if route != Route::ProviderToClient {
            return true;
        }
        writes += 1;
        if writes == 3 {
            // The response's records, 129 bytes each: at least 40 of them stay.
            assert!(bytes.len() > 55 * 129, "{} bytes", bytes.len());
            bytes[200] ^= 4;
            bytes.truncate(bytes.len() * 3 / 4);
        }
        writes <= 3
    });
    let out = run(b, hook);
    let e = out.client_error();
    assert!(e.contains("does not verify"), "{e}");
    for r in &out.nodes {
        let e = r.as_ref().expect_err("a node committed").to_string();
        assert!(e.contains("does not verify"), "{e}");
    }
    assert_eq!(out.waited, Duration::ZERO, "nobody waited for a timeout");
}
