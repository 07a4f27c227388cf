//! Admitting notary nodes: a node's QUIC connection, its hello, its RA-TLS attestation
//! checked against this coordinator's policy, then the membership machine's verdict; notices
//! (draining) until the connection ends.

use std::sync::Arc;
use std::time::Duration;

use attestation::{Expectation, RaTlsVerifier};
use daemon::group::member_record;
use wire::frame::{self, SMALL};
use wire::msg::{Admission, Failure, FailureCode, NodeHello, NodeNotice, PROTOCOL};

use crate::changes::membership;
use crate::membership::{AdmitError, Hello};
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
        Err(refusal) => {
            tracing::warn!(node = id, reason = %refusal, "node refused");
            let reason = Failure::new(FailureCode::Refused, refusal.to_string());
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

/// Why a node is not admitted.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// It speaks another protocol version.
    #[error("protocol {0} (this coordinator speaks {PROTOCOL})")]
    Protocol(u16),
    /// Its connection carries no certificate.
    #[error("no RA-TLS certificate")]
    NoCertificate,
    /// Its attestation does not verify or fails the policy.
    #[error("attestation refused: {0}")]
    Attestation(String),
    /// A simulated TEE at a coordinator that does not admit them.
    #[error("simulated TEEs are not admitted")]
    Simulated,
    /// The membership machine's verdict.
    #[error(transparent)]
    Membership(#[from] AdmitError),
}

/// Checks a node's attestation and place; records it.
async fn admit(
    c: &Coordinator,
    conn: &quinn::Connection,
    hello: &NodeHello,
) -> Result<(), Refusal> {
    if hello.protocol != PROTOCOL {
        return Err(Refusal::Protocol(hello.protocol));
    }
    let cert = wire::quic::peer_cert(conn).ok_or(Refusal::NoCertificate)?;
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
        .map_err(|e| Refusal::Attestation(e.to_string()))?;
    if peer.verified.simulated && !c.cfg.allow_simulated {
        return Err(Refusal::Simulated);
    }
    let attested = member_record(hello.node_id, &[0; 32], &peer.verified);
    // The connection map is locked across the admission so a racing reconnect of the same
    // id cannot interleave.
    let mut conns = c.conns.lock().await;
    c.members.lock().await.admit(Hello {
        node_id: hello.node_id,
        conn: conn.stable_id() as u64,
        addr: hello.addr.clone(),
        epoch: hello.epoch,
        cert,
        attested,
    })?;
    conns.insert(hello.node_id, conn.clone());
    Ok(())
}
