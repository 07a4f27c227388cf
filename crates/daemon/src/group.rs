//! The group record's two forms: the public file (`group.json`, [`GroupFile`]) that verifiers
//! and the membership log carry, and the threshold crate's [`PublicGroup`] that signing and
//! joining use; and a member's public record from its verified quote.

use notarization::group::{GroupFile, MemberRecord};
use threshold::PublicGroup;

/// The threshold crate's view of a group record: the group key, the threshold and every
/// member's verifying share. Names the first thing that does not parse.
pub fn public_group(g: &GroupFile) -> Result<PublicGroup, String> {
    let mut shares = std::collections::BTreeMap::new();
    for m in &g.members {
        let b: [u8; 32] = hex::decode(&m.verifying_share)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| format!("member {}'s verifying share is malformed", m.node_id))?;
        shares.insert(m.node_id, b);
    }
    let gk = threshold::GroupKey::from_hex(&g.group_key).map_err(|e| e.to_string())?;
    PublicGroup::new(gk, g.threshold, shares).map_err(|e| e.to_string())
}

/// The public record of member `node_id` with FROST verifying share `verifying_share`, whose
/// quote verified as `v`: its TEE kind, its measurement (MRENCLAVE or MRTD) and whether it is
/// simulated.
pub fn member_record(
    node_id: u16,
    verifying_share: &[u8; 32],
    v: &attestation::VerifiedQuote,
) -> MemberRecord {
    MemberRecord {
        node_id,
        verifying_share: hex::encode(verifying_share),
        tee: v.tee_name(),
        measurement: v.measurement(),
        simulated: v.simulated,
    }
}
