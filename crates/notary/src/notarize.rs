//! From a node's session report to the statement it signs, and the node's side of signing:
//! a node signs only the notarization it built itself from what it computed, whatever the
//! coordinator asks.

use disclosure::node::Disclosed;
use mpc_tls::node::NodeReport;
use notarization::{
    commitment_root, Commitment, CommitteeMember, HttpRequest, Notarization, NullifierClaim,
    PredicateResult, VERSION,
};
use rand_core::{CryptoRng, RngCore};
use threshold::sign::{self, Nonces, SignatureShare, SigningCommitment, SigningPackage};
use threshold::NodeKey;

use crate::state::GroupFile;

/// Why a node will not sign, or signing failed.
#[derive(Debug, thiserror::Error)]
pub enum NotaryError {
    /// The disclosure's outputs do not fit its request.
    #[error("the disclosure's results do not match its request")]
    Malformed,
    /// The notarization cannot be encoded.
    #[error("cannot encode the notarization: {0}")]
    Encoding(#[from] notarization::DecodeError),
    /// The coordinator asked to sign something other than this node's notarization.
    #[error("node {0} refuses to sign: the signing package's message is not the notarization it computed")]
    MessageMismatch(u16),
    /// FROST failed.
    #[error(transparent)]
    Sign(#[from] threshold::sign::SignError),
}

/// The commitment leaves of a disclosure, in request order.
pub fn leaves(d: &Disclosed) -> Result<Vec<Commitment>, NotaryError> {
    let (req, res) = (&d.request, &d.result);
    if req.commit.len() != res.commitments.len() {
        return Err(NotaryError::Malformed);
    }
    req.commit
        .iter()
        .zip(&res.commitments)
        .map(|(&t, h)| {
            Ok(Commitment {
                target: req.target_text(t).ok_or(NotaryError::Malformed)?,
                capacity: req.target_capacity(t).ok_or(NotaryError::Malformed)? as u32,
                hash: *h,
            })
        })
        .collect()
}

/// The notarization a node signs for its session report and disclosure.
pub fn build_notarization(
    report: &NodeReport,
    d: &Disclosed,
    group: &GroupFile,
    committee: &[CommitteeMember],
) -> Result<Notarization, NotaryError> {
    let (req, res) = (&d.request, &d.result);
    let t = &report.transcript;
    let root = commitment_root(&leaves(d)?);
    if res.predicates.len() != req.predicates.len() || res.resolved.len() != req.predicates.len() {
        return Err(NotaryError::Malformed);
    }
    let predicates = (0..req.predicates.len())
        .map(|i| {
            Ok(PredicateResult {
                expr: req.predicate_text(i).ok_or(NotaryError::Malformed)?,
                resolved: res.resolved[i].clone(),
                result: res.predicates[i],
            })
        })
        .collect::<Result<Vec<_>, NotaryError>>()?;
    let nullifiers = match (&req.uid, res.nullifier) {
        (Some(u), Some(value)) => vec![NullifierClaim {
            scope: u.scope.clone(),
            fields: u
                .fields
                .iter()
                .map(|(f, kind)| req.uid_field_text(*f, *kind).ok_or(NotaryError::Malformed))
                .collect::<Result<_, NotaryError>>()?,
            value,
        }],
        (None, None) => Vec::new(),
        _ => return Err(NotaryError::Malformed),
    };
    Ok(Notarization {
        version: VERSION,
        server_name: t.server_name.clone(),
        time: t.time,
        tls_version: t.tls_version,
        cipher_suite: t.suite.code(),
        cert_chain_hash: t.cert_chain_hash,
        handshake_hash: t.handshake_hash,
        sent_hash: t.sent_hash,
        received_hash: t.received_hash,
        sent_records: t.sent_records,
        sent_bytes: t.sent_bytes,
        received_records: t.received_records,
        received_bytes: t.received_bytes,
        close_notify: t.close_notify,
        request: HttpRequest {
            method: req.http.method.clone(),
            target: req.http.target.clone(),
            host: req.http.host.clone(),
        },
        status: res.status,
        commitment_root: root,
        predicates,
        nullifiers,
        session_nonce: report.session_nonce,
        epoch: group.epoch,
        group_key_id: group.key_id.clone(),
        committee: committee.to_vec(),
        simulated: committee.iter().any(|m| m.simulated),
    })
}

/// Signing round 1 at a node.
pub fn commit<R: RngCore + CryptoRng>(key: &NodeKey, rng: &mut R) -> (Nonces, SigningCommitment) {
    sign::commit(key, rng)
}

/// Signing round 2 at a node: refuses unless the package's message is exactly the encoding
/// of the notarization this node built.
pub fn sign_own(
    key: &NodeKey,
    nonces: Nonces,
    package: &SigningPackage,
    mine: &Notarization,
) -> Result<SignatureShare, NotaryError> {
    if package.message() != mine.to_bytes()?.as_slice() {
        return Err(NotaryError::MessageMismatch(key.id()));
    }
    Ok(sign::sign_share(key, nonces, package)?)
}
