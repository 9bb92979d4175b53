//! Proofs as portable JSON documents, checked against signed checkpoints.
//!
//! ```text
//! inclusion:   {"kind":"inclusion","seq":N,"tree_size":M,"leaf_hash":hex48,"path":[hex48,...]}
//! consistency: {"kind":"consistency","old_size":A,"new_size":B,"path":[hex48,...]}
//! ```
//! A proof alone proves nothing: [`InclusionProof::verify`] and
//! [`ConsistencyProof::verify`] take the signed checkpoint(s) and the TSM key, and require the
//! proof's sizes to be the checkpoints' sizes.

use super::checkpoint::CheckpointVerifier;
use super::merkle::{self, Hash};
use super::VerifiedLog;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

mod hex48 {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 48], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 48], D::Error> {
        let s = String::deserialize(d)?;
        let b = hex::decode(&s).map_err(D::Error::custom)?;
        <[u8; 48]>::try_from(b.as_slice()).map_err(|_| D::Error::custom("hash is not 48 bytes"))
    }
}

/// A hash in JSON (hex).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HexHash(#[serde(with = "hex48")] pub Hash);

/// The `kind` of an inclusion proof document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InclusionKind {
    /// `"inclusion"`.
    #[default]
    #[serde(rename = "inclusion")]
    Inclusion,
}

/// The `kind` of a consistency proof document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsistencyKind {
    /// `"consistency"`.
    #[default]
    #[serde(rename = "consistency")]
    Consistency,
}

/// Record `seq` is in the tree of the first `tree_size` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// Always "inclusion".
    pub kind: InclusionKind,
    /// The record's sequence number.
    pub seq: u64,
    /// The tree size the proof is for (a checkpoint's size).
    pub tree_size: u64,
    /// The record's leaf hash (SHA-384(0x00 || entry payload)).
    pub leaf_hash: HexHash,
    /// The audit path.
    pub path: Vec<HexHash>,
}

/// The tree of `old_size` records is a prefix of the tree of `new_size` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// Always "consistency".
    pub kind: ConsistencyKind,
    /// The older checkpoint's size.
    pub old_size: u64,
    /// The newer checkpoint's size.
    pub new_size: u64,
    /// The consistency path.
    pub path: Vec<HexHash>,
}

fn path_of(p: &[HexHash]) -> Vec<Hash> {
    p.iter().map(|h| h.0).collect()
}

impl InclusionProof {
    /// Builds the proof for `seq` in the tree of the first `tree_size` records of `log`.
    pub fn build(log: &VerifiedLog, seq: u64, tree_size: u64) -> Result<Self> {
        let leaf = usize::try_from(seq)
            .ok()
            .and_then(|i| log.leaf_hashes.get(i))
            .copied()
            .ok_or(Error::ApiMisuse {
                reason: "record sequence number beyond the log",
            })?;
        Ok(Self {
            kind: InclusionKind::Inclusion,
            seq,
            tree_size,
            leaf_hash: HexHash(leaf),
            path: log
                .inclusion_proof(seq, tree_size)?
                .into_iter()
                .map(HexHash)
                .collect(),
        })
    }

    /// Checks the proof against a signed checkpoint of the same size.
    pub fn verify(&self, checkpoint: &[u8], key: &CheckpointVerifier) -> Result<()> {
        let cp = key.verify(checkpoint)?;
        if cp.tree_size != self.tree_size {
            return Err(Error::ProofInvalid {
                reason: "inclusion: proof is for a different tree size than the checkpoint",
            });
        }
        merkle::verify_inclusion(
            &self.leaf_hash.0,
            self.seq,
            self.tree_size,
            &path_of(&self.path),
            &cp.root,
        )
    }
}

impl ConsistencyProof {
    /// Builds the proof between the first `old_size` and `new_size` records of `log`.
    pub fn build(log: &VerifiedLog, old_size: u64, new_size: u64) -> Result<Self> {
        Ok(Self {
            kind: ConsistencyKind::Consistency,
            old_size,
            new_size,
            path: log
                .consistency_proof(old_size, new_size)?
                .into_iter()
                .map(HexHash)
                .collect(),
        })
    }

    /// Checks the proof between two signed checkpoints of the proof's sizes.
    pub fn verify(&self, old: &[u8], new: &[u8], key: &CheckpointVerifier) -> Result<()> {
        let (o, n) = (key.verify(old)?, key.verify(new)?);
        if o.tree_size != self.old_size || n.tree_size != self.new_size {
            return Err(Error::ProofInvalid {
                reason: "consistency: proof sizes differ from the checkpoints'",
            });
        }
        merkle::verify_consistency(
            self.old_size,
            self.new_size,
            &path_of(&self.path),
            &o.root,
            &n.root,
        )
    }
}
