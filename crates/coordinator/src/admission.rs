//! Admitting notary nodes: a node's QUIC connection, its hello, its RA-TLS attestation
//! checked against this coordinator's policy, then the membership machine's verdict; notices
//! (draining) until the connection ends.

use std::sync::Arc;
use std::time::Duration;

use attestation::{Expectation, RaTlsVerifier};
use daemon::group::member_record;
use wire::frame::{self, SMALL};
use wire::msg::{Admission, NodeHello, NodeNotice, PROTOCOL};

use crate::changes::membership;
use crate::membership::Hello;
use crate::{now, Coordinator};

pub(crate) async fn node_conn(c: Arc<Coordinator>, conn: quinn::Connection) {
    let Ok((mut send, mut recv)) = conn.accept_bi().await else {
        return;
    };
    let hello: NodeHello =
        match tokio::time::timeout(Duration::from_secs(10), frame::recv(&mut recv, SMALL)).await {
            Ok(Ok(h)) => h,
            _ => return,
        };
    let id = hello.node_id;
    match admit(&c, &conn, &hello).await {
        Err(reason) => {
            tracing::warn!(node = id, %reason, "node refused");
            let _ = frame::send(&mut send, &Admission::Refused { reason }).await;
            let _ = send.finish();
            tokio::time::sleep(Duration::from_millis(200)).await;
            conn.close(1u32.into(), b"refused");
        }
        Ok(()) => {
            let log = c.log().await;
            if frame::send(&mut send, &Admission::Welcome { log })
                .await
                .is_err()
            {
                return;
            }
            c.refresh_health().await;
            tracing::info!(node = id, addr = %hello.addr, "node admitted");
            let c2 = c.clone();
            tokio::spawn(async move { membership(c2).await });
            // Notices until the connection ends.
            while let Ok(NodeNotice::Draining) = frame::recv(&mut recv, SMALL).await {
                c.members.lock().await.draining(id);
                tracing::info!(node = id, "node draining");
                c.refresh_health().await;
            }
            conn.closed().await;
            let drained = c.members.lock().await.closed(id, conn.stable_id() as u64) == Some(true);
            {
                let mut conns = c.conns.lock().await;
                if conns
                    .get(&id)
                    .is_some_and(|k| k.stable_id() == conn.stable_id())
                {
                    conns.remove(&id);
                }
            }
            if drained {
                tracing::info!(node = id, "node left after draining");
            } else {
                tracing::warn!(node = id, "node disconnected");
            }
            c.refresh_health().await;
        }
    }
}

/// Checks a node's attestation and place; records it.
async fn admit(c: &Coordinator, conn: &quinn::Connection, hello: &NodeHello) -> Result<(), String> {
    if hello.protocol != PROTOCOL {
        return Err(format!(
            "protocol {} (this coordinator speaks {PROTOCOL})",
            hello.protocol
        ));
    }
    let cert = wire::quic::peer_cert(conn).ok_or("no RA-TLS certificate")?;
    let v = RaTlsVerifier::new(
        c.verifier.clone(),
        c.policy.clone(),
        Expectation {
            node_id: Some(hello.node_id.to_string()),
            epoch: None,
        },
    );
    let peer = v
        .verify_cert(&cert, now())
        .map_err(|e| format!("attestation refused: {e}"))?;
    if peer.verified.simulated && !c.cfg.allow_simulated {
        return Err("simulated TEEs are not admitted".into());
    }
    let attested = member_record(hello.node_id, &[0; 32], &peer.verified);
    // The connection map is locked across the admission so a racing reconnect of the same
    // id cannot interleave.
    let mut conns = c.conns.lock().await;
    c.members
        .lock()
        .await
        .admit(Hello {
            node_id: hello.node_id,
            conn: conn.stable_id() as u64,
            addr: hello.addr.clone(),
            epoch: hello.epoch,
            cert,
            attested,
        })
        .map_err(|e| e.to_string())?;
    conns.insert(hello.node_id, conn.clone());
    Ok(())
}
