//! A committee of three notary nodes in one process (`tessera prove --local`): the same node,
//! client, FROST and UID code as the network, with in-memory links. Key shares persist sealed
//! in a state directory, created on first use by a distributed key generation (FROST DKG
//! for the group key; each node deals a random sharing for the UID key, and the shares are
//! summed, so the UID key never exists anywhere). The nodes' TEEs are SIMULATED: they say so
//! in `group.json`, in every notarization and in the logs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use attestation::{
    CollateralWindow, PlatformStatus, Policy, SimIdentity, SimPki, SimulatedTee, TeeKind, Verifier,
};
use disclosure::client::{ClientPlan, Selection};
use disclosure::local::{fetch_disclosing, LocalDiscloseError};
use disclosure::node::{DiscloseConfig, UidKey};
use disclosure::request::DisclosureResult;
use mpc_tls::client::ClientOutput;
use mpc_tls::local::LocalConfig;
use notarization::{Commitment, CommitteeMember, Notarization};
use rand::rngs::OsRng;
use sha2::{Digest, Sha512};
use threshold::sign::Aggregator;
use threshold::PublicGroup;

use crate::notarize::{build_notarization, commit, leaves, sign_own, NotaryError};
use crate::state::{
    group_file, keys_path, member_record, simulated_sealer, GroupFile, MemberRecord, NodeState,
    StateError,
};

/// The local committee's node ids.
pub const NODE_IDS: [u16; 3] = [1, 2, 3];

/// The simulated measurement policy the local committee's quotes are checked against.
const SIMULATED_POLICY: &str = include_str!("../../../configs/measurements.simulated.toml");

/// Why a local committee could not be set up or could not notarize.
#[derive(Debug, thiserror::Error)]
pub enum CommitteeError {
    /// State on disk.
    #[error(transparent)]
    State(#[from] StateError),
    /// Key generation failed.
    #[error("key generation: {0}")]
    Keygen(String),
    /// A node's simulated attestation failed.
    #[error("attestation of node {0}: {1}")]
    Attestation(u16, String),
    /// The MPC-TLS session or the disclosure failed.
    #[error(transparent)]
    Session(#[from] LocalDiscloseError),
    /// Building or signing the notarization failed.
    #[error(transparent)]
    Notary(#[from] NotaryError),
    /// The nodes built different notarizations.
    #[error("the nodes built different notarizations (node {0} differs from node 1)")]
    Disagree(u16),
}

/// The result of a notarized session.
pub struct Notarized {
    /// The signed statement.
    pub notarization: Notarization,
    /// The group's Ed25519 signature over its canonical encoding.
    pub signature: [u8; 64],
    /// The commitment leaves.
    pub leaves: Vec<Commitment>,
    /// What the client got (response plaintext, transcript).
    pub client: ClientOutput,
    /// The client's disclosure plan (request, salts, values).
    pub plan: ClientPlan,
    /// The committee's disclosure result.
    pub result: DisclosureResult,
}

/// Three nodes with their keys, and the group record.
pub struct LocalCommittee {
    dir: PathBuf,
    group: GroupFile,
    nodes: Vec<NodeState>,
}

impl std::fmt::Debug for LocalCommittee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCommittee")
            .field("dir", &self.dir)
            .field("key_id", &self.group.key_id)
            .finish()
    }
}

impl LocalCommittee {
    /// Opens the committee in `dir`, creating it (keys, sealed state, `group.json`) if `dir`
    /// has no `group.json`. `now` dates the simulated attestation.
    pub fn open_or_create(dir: &Path, now: u64) -> Result<Self, CommitteeError> {
        let gpath = dir.join("group.json");
        if gpath.exists() {
            let group = GroupFile::read(&gpath).map_err(StateError::from)?;
            let mut nodes = Vec::new();
            for id in group.member_ids() {
                let sealer = simulated_sealer(dir, id)?;
                nodes.push(NodeState::load(&keys_path(dir, id), &sealer, &group)?);
            }
            if nodes.len() != 3 {
                return Err(CommitteeError::Keygen(format!(
                    "{} holds {} members; local mode runs exactly 3",
                    gpath.display(),
                    nodes.len()
                )));
            }
            return Ok(LocalCommittee {
                dir: dir.to_path_buf(),
                group,
                nodes,
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| StateError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        tracing::warn!(
            "creating a local notary committee with SIMULATED TEEs in {}",
            dir.display()
        );
        let outs = crate::genesis::run_in_memory(&NODE_IDS, &mut OsRng)
            .map_err(|e| CommitteeError::Keygen(e.to_string()))?;
        let public = match outs.first() {
            Some(o) => o.public.clone(),
            None => return Err(CommitteeError::Keygen("no members".into())),
        };
        let mut members = Vec::new();
        let mut nodes = Vec::new();
        for out in outs {
            let state = out.state;
            let id = state.id;
            let vs = state
                .key
                .verifying_share()
                .map_err(|e| CommitteeError::Keygen(e.to_string()))?;
            members.push(attest_simulated(id, &vs, now)?);
            let sealer = simulated_sealer(dir, id)?;
            state.save(&keys_path(dir, id), &sealer)?;
            nodes.push(state);
        }
        let group = group_file(&public, 1, members);
        group.write(&gpath).map_err(StateError::from)?;
        Ok(LocalCommittee {
            dir: dir.to_path_buf(),
            group,
            nodes,
        })
    }

    /// The group record (`group.json`).
    pub fn group(&self) -> &GroupFile {
        &self.group
    }

    /// The committee as notarizations list it.
    pub fn committee(&self) -> Vec<CommitteeMember> {
        self.group
            .members
            .iter()
            .map(|m| CommitteeMember {
                node_id: m.node_id,
                tee: m.tee.clone(),
                measurement: m.measurement.clone(),
                simulated: m.simulated,
            })
            .collect()
    }

    fn disclose_configs(&self) -> [DiscloseConfig; 3] {
        let xs = [self.nodes[0].id, self.nodes[1].id, self.nodes[2].id];
        let k = |i: usize| {
            DiscloseConfig::new(Some(UidKey {
                share: self.nodes[i].uid.clone(),
                xs,
                t: usize::from(self.group.threshold),
            }))
        };
        [k(0), k(1), k(2)]
    }

    /// Runs a session against the provider at `addr`, the disclosure of `sel` the client
    /// plans from the response, and the threshold signature.
    pub async fn prove(
        &self,
        cfg: LocalConfig,
        server_name: &str,
        addr: SocketAddr,
        request: &[u8],
        sel: &Selection,
    ) -> Result<Notarized, CommitteeError> {
        let out = fetch_disclosing(
            &cfg,
            &self.disclose_configs(),
            server_name,
            addr,
            request,
            sel,
        )
        .await?;
        let committee = self.committee();
        // Each node builds its own notarization from its own report.
        let mine: Vec<Notarization> = out
            .nodes
            .iter()
            .map(|(r, d)| build_notarization(r, d, &self.group, &committee))
            .collect::<Result<_, _>>()?;
        for (i, n) in mine.iter().enumerate().skip(1) {
            if n != &mine[0] {
                return Err(CommitteeError::Disagree(self.nodes[i].id));
            }
        }
        let leaves = leaves(&out.nodes[0].1)?;
        let notarization = mine[0].clone();
        let signature = self.sign(&mine, &notarization)?;
        Ok(Notarized {
            notarization,
            signature,
            leaves,
            client: out.client,
            plan: out.plan,
            result: out.result,
        })
    }

    /// FROST signing: every node commits, the aggregator (the coordinator's role) builds the
    /// package, every node signs only its own notarization, the shares are aggregated (a bad
    /// share is named).
    fn sign(&self, mine: &[Notarization], n: &Notarization) -> Result<[u8; 64], CommitteeError> {
        let public = self.public_group()?;
        let msg = n.to_bytes().map_err(NotaryError::from)?;
        let mut agg = Aggregator::new(&public, &msg);
        let mut nonces = Vec::new();
        for node in &self.nodes {
            let (secret, c) = commit(&node.key, &mut OsRng);
            agg.add_commitment(node.id, c).map_err(NotaryError::from)?;
            nonces.push(secret);
        }
        let package = agg.signing_package().map_err(NotaryError::from)?;
        for ((node, secret), own) in self.nodes.iter().zip(nonces).zip(mine) {
            let share = sign_own(&node.key, secret, &package, own)?;
            agg.add_share(node.id, share).map_err(NotaryError::from)?;
        }
        Ok(agg.aggregate().map_err(NotaryError::from)?)
    }

    fn public_group(&self) -> Result<PublicGroup, CommitteeError> {
        crate::state::public_group(&self.group).map_err(CommitteeError::Keygen)
    }
}

/// A simulated quote for node `id` bound to its verifying share, verified with the same
/// verifier and policy code as real quotes; returns the member record.
fn attest_simulated(
    id: u16,
    verifying_share: &[u8; 32],
    now: u64,
) -> Result<MemberRecord, CommitteeError> {
    let err = |e: String| CommitteeError::Attestation(id, e);
    let pki = SimPki::well_known().map_err(|e| err(e.to_string()))?;
    let root = pki.root_der();
    let tee = SimulatedTee::new(pki, SimIdentity::notary_node(TeeKind::Sgx));
    let mut h = Sha512::new();
    h.update(b"tessera local node v1");
    h.update(id.to_be_bytes());
    h.update(verifying_share);
    let report_data: [u8; 64] = h.finalize().into();
    let quote = tee
        .make_quote(&report_data)
        .map_err(|e| err(e.to_string()))?;
    let collateral = tee
        .collateral(
            &PlatformStatus::default(),
            CollateralWindow::around(now, 30),
        )
        .map_err(|e| err(e.to_string()))?;
    let v = Verifier::intel()
        .allow_simulated(root)
        .verify(&quote, &collateral, now)
        .map_err(|e| err(e.to_string()))?;
    let policy = Policy::from_toml(SIMULATED_POLICY).map_err(|e| err(e.to_string()))?;
    policy.check(&v).map_err(|e| err(e.to_string()))?;
    if v.report_data_bytes() != Some(report_data) {
        return Err(err("the quote does not carry the node's binding".into()));
    }
    Ok(member_record(id, verifying_share, &v))
}
