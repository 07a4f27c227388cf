//! Whole sessions with a disclosure, three nodes in-process on the MPC engine: what an
//! honest committee returns, what a deviating node causes (an abort at every honest party,
//! never a result), and that no node ever sends, receives or reports a disclosed value,
//! the request's secrets or a key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use disclosure::client::Selection;
use disclosure::expr::parse_predicate;
use disclosure::local::{fetch_disclosing, fetch_disclosing_recorded};
use disclosure::node::{DiscloseConfig, Faults, UidKey};
use disclosure::path::Path;
use mpc_tls::local::LocalConfig;
use mpc_tls::net::Recording;
use mpc_tls::server_auth::Roots;
use tessera_provider::{json_response, pki, rustls_server_serving, serve_responses, Behaviour};
use uid_prf::shamir::{keygen_combine, keygen_deal, Share};

const NAME: &str = "provider.test";
const BODY: &str = r#"{"user":{"name":"Zaphod Beeblebrox","birthdate":"1966-10-11","nationality":"BG","age":57,"address":{"country":"United States of Ruritania"}},"account":{"balance":1234.56},"friends":[{"name":"Ford Prefect"}]}"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn uid(xs: [u16; 3]) -> [Share; 3] {
    let mut rng = rand::thread_rng();
    let dealt: Vec<_> = xs
        .iter()
        .map(|_| keygen_deal(&xs, 2, &mut rng).unwrap())
        .collect();
    [0, 1, 2].map(|i| {
        let mine: Vec<_> = dealt.iter().map(|d| d[i].clone()).collect();
        keygen_combine(xs[i], &mine).unwrap()
    })
}

fn configs(shares: &[Share; 3], xs: [u16; 3]) -> [DiscloseConfig; 3] {
    [0, 1, 2].map(|i| DiscloseConfig {
        uid: Some(UidKey {
            share: shares[i].clone(),
            xs,
            t: 2,
        }),
        ..Default::default()
    })
}

fn selection() -> Selection {
    Selection {
        reveal: vec![Path::parse("$.user.address.country").unwrap()],
        predicates: vec![
            parse_predicate("$.user.age>=18").unwrap(),
            parse_predicate("$.account.balance>=1000").unwrap(),
        ],
        uid_fields: vec![
            Path::parse("$.user.name").unwrap(),
            Path::parse("$.user.birthdate").unwrap(),
        ],
        scope: Some("vote".into()),
        ..Default::default()
    }
}

#[test]
fn an_honest_committee_returns_the_nullifier_of_the_path() {
    let p = pki(&[NAME]).unwrap();
    let (addr, _h) = serve_responses(&p, vec![json_response(BODY); 2]).unwrap();
    let cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
    let xs = [1, 2, 3];
    let shares = uid(xs);
    let req = tessera_provider::http_request(NAME, "/api/me", 64);
    let out = rt()
        .block_on(fetch_disclosing(
            &cfg,
            &configs(&shares, xs),
            NAME,
            addr,
            &req,
            &selection(),
        ))
        .unwrap();
    let key = uid_prf::shamir::combine(&shares, 2).unwrap();
    let want = uid_prf::canon::nullifier(
        &key,
        &[
            (uid_prf::canon::FieldKind::Text, "zaphod beeblebrox"),
            (
                uid_prf::canon::FieldKind::Date(uid_prf::canon::DateFormat::Iso),
                "1966-10-11",
            ),
        ],
        "vote",
    )
    .unwrap();
    assert_eq!(out.result.nullifier, Some(want));
    assert_eq!(out.result.predicates, vec![true, true]);
    assert_eq!(out.result.status, 200);
    assert!(out.nodes.iter().all(|(_, d)| d.result == out.result));
}

#[test]
fn a_deviating_node_aborts_the_disclosure() {
    let p = pki(&[NAME]).unwrap();
    let (addr, _h) = serve_responses(&p, vec![json_response(BODY); 3]).unwrap();
    let cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
    let xs = [1, 2, 3];
    let shares = uid(xs);
    let req = tessera_provider::http_request(NAME, "/api/me", 64);
    let rt = rt();
    for (node, faults, want) in [
        (
            0usize,
            Faults {
                bad_ciphertext: true,
                ..Default::default()
            },
            "public input labels",
        ),
        (
            1,
            Faults {
                bad_uid_share: true,
                ..Default::default()
            },
            "inconsistent",
        ),
    ] {
        let mut dc = configs(&shares, xs);
        dc[node].faults = faults;
        let r = rt.block_on(fetch_disclosing(&cfg, &dc, NAME, addr, &req, &selection()));
        let e = match r {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a deviating node did not abort the disclosure"),
        };
        assert!(e.contains(want), "{faults:?}: {e}");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn nodes_never_see_a_disclosed_value_or_a_key() {
    let p = pki(&[NAME]).unwrap();
    let b = Behaviour {
        extract_keys: true,
        ..Behaviour::default()
    };
    let (addr, server) = rustls_server_serving(&p, b, vec![json_response(BODY)]).unwrap();
    let cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
    let xs = [1, 2, 3];
    let shares = uid(xs);
    let cookie = b"Cookie: session=7f3a9c1e5b2d8046-very-secret-cookie";
    let req = [
        b"GET /api/me HTTP/1.1\r\nHost: provider.test\r\n".as_slice(),
        cookie,
        b"\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    let recs: [Recording; 3] = std::array::from_fn(|_| Arc::new(Mutex::new(Vec::new())));
    let out = rt()
        .block_on(fetch_disclosing_recorded(
            &cfg,
            &configs(&shares, xs),
            NAME,
            addr,
            &req,
            &selection(),
            Some(&recs),
        ))
        .unwrap();
    let served = server.join().unwrap();
    let (client_key, server_key) = served[0].keys.expect("keys extracted");
    let uid_key = uid_prf::shamir::combine(&shares, 2).unwrap().to_bytes();
    let needles: Vec<(&str, &[u8])> = vec![
        ("the cookie", &cookie[16..]),
        ("the name", b"Zaphod Beeblebrox"),
        ("the birth date", b"1966-10-11"),
        ("the revealed value", br#""United States of Ruritania""#),
        ("the balance", b"1234.56"),
        ("a friend", b"Ford Prefect"),
        ("the client write key", &client_key),
        ("the server write key", &server_key),
        ("the UID key", &uid_key),
    ];
    for (i, r) in recs.iter().enumerate() {
        let mut seen = r.lock().unwrap().clone();
        assert!(
            seen.len() > 1_000_000,
            "node {i} recorded {} bytes",
            seen.len()
        );
        seen.extend(format!("{:?}", out.nodes[i]).into_bytes());
        for (what, n) in &needles {
            assert!(!contains(&seen, n), "node {i} saw {what}");
        }
        // The public facts do appear: the request line and the path.
        assert!(contains(&seen, b"/api/me"), "node {i}");
    }
}

/// What became of a session over a long response whose client may change its record
/// copies: the client's result and revealed value, and per node which response records it
/// held whole before the disclosure and how its disclosure ended.
struct Long {
    result: Result<(), String>,
    revealed: Vec<u8>,
    held: Vec<Vec<bool>>,
    nodes: Vec<Result<(), String>>,
    lens: Vec<usize>,
}

/// How the client of [`long_session`] sends its record copies.
enum Copies {
    /// Through `disclosure::client::disclose`, after `edit` changed them (an honest client
    /// leaves them).
    Edited(fn(&mut mpc_tls::proto::ResponseRecords)),
    /// By hand: the right copies to nodes 0 and 1, node 2's last copy altered.
    Split,
}

/// A session against `addr` and a disclosure of `sel`, the client sending its record copies
/// as `copies` says.
async fn long_session(
    cfg: &LocalConfig,
    addr: std::net::SocketAddr,
    sel: &Selection,
    copies: Copies,
) -> Long {
    use mpc_tls::local::{join_nodes, LocalNet};
    let req = tessera_provider::http_request(NAME, "/big", 64);
    let net = LocalNet::connect(cfg, addr, None).await.unwrap();
    let tasks: Vec<_> = net
        .nodes
        .into_iter()
        .map(|n| {
            tokio::spawn(async move {
                let mut rng = n.rng().unwrap();
                let mut c =
                    mpc_tls::node::run_node_committed(n.id, n.cfg, n.transport, n.link, &mut rng)
                        .await
                        .unwrap();
                let held: Vec<bool> = c
                    .response_records()
                    .iter()
                    .map(|r| r.ciphertext().is_some())
                    .collect();
                let dc = DiscloseConfig::default();
                let ended = match disclosure::node::disclose(&mut c, &dc, &mut rng).await {
                    Ok(_) => {
                        c.finish().await;
                        Ok(())
                    }
                    Err(e) => {
                        c.fail(&e.failure(), e.peer_stopped()).await;
                        Err(e.to_string())
                    }
                };
                Ok::<_, ()>((held, ended))
            })
        })
        .collect();
    let mut links = net.client_links;
    let out = mpc_tls::client::run_client(
        NAME,
        net.tcp,
        &mut links,
        &req,
        cfg.timeout,
        &mut rand::rngs::OsRng,
        true,
    )
    .await
    .unwrap();
    let plan = disclosure::client::plan(sel, &req, &out.response, &mut rand::rngs::OsRng).unwrap();
    let result = match copies {
        Copies::Edited(edit) => {
            let mut records = out.records.clone();
            edit(&mut records);
            disclosure::client::disclose(
                &mut links,
                &plan,
                &records,
                cfg.timeout,
                &mut rand::rngs::OsRng,
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        }
        Copies::Split => split_copies(&mut links, &plan, &out.records).await,
    };
    drop(links);
    let (held, nodes) = join_nodes(tasks).await.unwrap().into_iter().unzip();
    Long {
        result,
        revealed: plan.values.first().cloned().unwrap_or_default(),
        held,
        nodes,
        lens: out.records.lens.clone(),
    }
}

/// A client that sends nodes 0 and 1 the right record copies and node 2 an altered last
/// copy (its salt shares do not matter: nothing may be computed). Returns the first error a
/// node reports to it.
async fn split_copies(
    links: &mut mpc_tls::net::ClientLinks,
    plan: &disclosure::client::ClientPlan,
    records: &mpc_tls::proto::ResponseRecords,
) -> Result<(), String> {
    use disclosure::node::ClientMsg;
    use disclosure::request::InputShares;
    use mpc_tls::proto::{ToClient, ToNode};
    let checked = plan.request.check(records.lens.iter().sum()).unwrap();
    let needed =
        disclosure::pipeline::response_records_needed(&plan.request, &checked, &records.lens);
    let copies = records.copies(&needed);
    assert!(
        !copies.is_empty(),
        "the reveal needs records past the kept prefix"
    );
    for node in 0..3u8 {
        let mut mine = copies.clone();
        if node == 2 {
            mine.last_mut().unwrap().ciphertext[0] ^= 1;
        }
        let msg = ClientMsg::Disclose {
            request: plan.request.clone(),
            shares: InputShares {
                salts: plan.salts.clone(),
            },
            records: mine,
        };
        let bytes = postcard::to_stdvec(&msg).unwrap();
        links.send(node, &ToNode::After(bytes)).unwrap();
    }
    loop {
        match links.recv::<ToClient>().await {
            Ok((node, ToClient::Error(why))) => return Err(format!("node {node}: {why}")),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A response of 3 MiB: a node keeps whole only the records within the first
/// `KEPT_RESPONSE_BYTES` and a digest of the rest; a reveal near the end of the body works
/// because the client sends those records again, each checked against its digest. A client
/// that sends an altered copy, or none, is refused: never a value from other bytes.
#[test]
fn a_long_response_is_kept_as_digests_and_its_records_sent_again() {
    use mpc_tls::proto::{kept_records, KEPT_RESPONSE_BYTES};
    let body: Vec<u8> = (0..3 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    let (start, end) = (body.len() as u32 - 100, body.len() as u32 - 40);
    let sel = Selection {
        reveal_ranges: vec![disclosure::request::ByteRange { start, end }],
        ..Default::default()
    };
    let p = pki(&[NAME]).unwrap();
    let response = tessera_provider::ok_response("text/plain", &body);
    let (addr, _h) = serve_responses(&p, vec![response; 4]).unwrap();
    let cfg = LocalConfig::new(Roots::from_pem(&p.ca_pem).unwrap());
    let rt = rt();

    let honest = rt.block_on(long_session(&cfg, addr, &sel, Copies::Edited(|_| {})));
    assert_eq!(honest.result, Ok(()));
    assert_eq!(honest.revealed, &body[start as usize..end as usize]);
    // The session is TLS 1.3 (rustls picks it): a node keeps records by their ciphertext,
    // each record's content and its content type byte.
    let ct_lens: Vec<usize> = honest.lens.iter().map(|l| l + 1).collect();
    let kept = kept_records(ct_lens.iter().copied());
    assert!(
        kept < honest.lens.len(),
        "the response fits what a node keeps"
    );
    assert!(ct_lens[..kept].iter().sum::<usize>() <= KEPT_RESPONSE_BYTES);
    assert!(honest.nodes.iter().all(Result::is_ok));
    for held in &honest.held {
        assert_eq!(held.len(), honest.lens.len());
        let whole: Vec<usize> = (0..held.len()).filter(|&i| held[i]).collect();
        assert_eq!(whole, (0..kept).collect::<Vec<_>>(), "records held whole");
    }

    let altered = rt.block_on(long_session(
        &cfg,
        addr,
        &sel,
        Copies::Edited(|r| {
            let c = r.unkept.last_mut().unwrap();
            c.ciphertext[3] ^= 1;
        }),
    ));
    let e = altered.result.unwrap_err();
    assert!(e.contains("is not the committed record"), "{e}");
    assert!(altered.nodes.iter().all(Result::is_err));

    let missing = rt.block_on(long_session(
        &cfg,
        addr,
        &sel,
        Copies::Edited(|r| r.unkept.clear()),
    ));
    let e = missing.result.unwrap_err();
    assert!(e.contains("the client did not send it"), "{e}");
    assert!(missing.nodes.iter().all(Result::is_err));

    // Different copies to different nodes: the node with the altered one refuses, the
    // request is not agreed, and every node stops.
    let split = rt.block_on(long_session(&cfg, addr, &sel, Copies::Split));
    let e = split.result.unwrap_err();
    assert!(e.contains("node"), "{e}");
    for (i, n) in split.nodes.iter().enumerate() {
        let e = n
            .as_ref()
            .expect_err("a node went on with different copies");
        if i == 2 {
            assert!(e.contains("is not the committed record"), "node 2: {e}");
        }
    }
}
