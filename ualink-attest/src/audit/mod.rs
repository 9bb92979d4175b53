//! The TSM's audit log: CBOR records in an append-only RFC 9162 Merkle tree (SHA-384) with
//! TSM-signed checkpoints, stored in one file (`STATE/audit.log`, format in [`file`](mod@file)).
//!
//! - [`AuditLogWriter`] appends records (group commit: durable after [`AuditLogWriter::sync`]
//!   or [`AuditLogWriter::checkpoint`]), truncates a torn tail on open, and refuses to
//!   continue after an I/O error.
//! - [`verify_log`] checks a whole log: framing, sequence numbers, the `prev` chain, every
//!   checkpoint's signature, size and root, and any checkpoints the auditor trusts from
//!   outside the file. It reports the first bad sequence number for a changed, removed,
//!   reordered or inserted record, a truncated tail, and a fork.
//! - [`merkle`] has inclusion and consistency proofs with their verifiers.

pub mod checkpoint;
pub mod event;
pub mod file;
pub mod merkle;
pub mod proof;
pub mod record;
mod writer;

use crate::error::{Error, Result};
pub use checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use core::ops::Range;
pub use event::AuditEvent;
use file::{Next, Tail};
use merkle::{CompactTree, Hash};
pub use record::{AuditRecord, DecisionKind, Digest384, Outcome};
use std::sync::{Mutex, PoisonError};
pub use writer::{AuditLogWriter, OpenReport, SharedAuditLog};

/// What a full verification established.
#[derive(Clone, Debug)]
pub struct VerifiedLog {
    /// Leaf hash of every entry, by sequence number.
    pub leaf_hashes: Vec<Hash>,
    /// Byte range of each entry's CBOR record in the verified bytes, by sequence number.
    pub record_ranges: Vec<Range<usize>>,
    /// Every checkpoint in the file, in order (all verified).
    pub checkpoints: Vec<Checkpoint>,
    /// Length of a torn last frame (0 if none). Its records were never acknowledged.
    pub torn_tail_bytes: usize,
    /// Byte offset where the good frames end (where a writer truncates).
    pub good_len: usize,
    /// The tree over every record, as verification built it (a writer continues it).
    tree: CompactTree,
}

impl VerifiedLog {
    /// Number of records.
    pub fn size(&self) -> u64 {
        self.leaf_hashes.len() as u64
    }

    /// First sequence number not covered by a checkpoint in the file, if any.
    pub fn unsealed_from(&self) -> Option<u64> {
        let sealed = self.checkpoints.last().map_or(0, |c| c.tree_size);
        (sealed < self.size()).then_some(sealed)
    }

    /// The RFC 9162 root over all records.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// Decodes record `seq` from the same bytes that were verified.
    pub fn record(&self, bytes: &[u8], seq: u64) -> Result<AuditRecord> {
        let range = usize::try_from(seq)
            .ok()
            .and_then(|i| self.record_ranges.get(i))
            .ok_or(Error::ApiMisuse {
                reason: "record sequence number beyond the log",
            })?;
        let b = bytes.get(range.clone()).ok_or(Error::ApiMisuse {
            reason: "bytes are not the ones verified",
        })?;
        AuditRecord::from_cbor(b)
    }

    /// Inclusion proof for record `seq` in the tree of the first `tree_size` records.
    pub fn inclusion_proof(&self, seq: u64, tree_size: u64) -> Result<Vec<Hash>> {
        merkle::inclusion_proof(seq, self.prefix(tree_size)?)
    }

    /// Consistency proof between the trees of the first `old_size` and `new_size` records.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>> {
        merkle::consistency_proof(old_size, self.prefix(new_size)?)
    }

    fn prefix(&self, size: u64) -> Result<&[Hash]> {
        usize::try_from(size)
            .ok()
            .and_then(|n| self.leaf_hashes.get(..n))
            .ok_or(Error::ApiMisuse {
                reason: "tree size beyond the log",
            })
    }
}

fn tampered(seq: u64, reason: impl Into<String>) -> Error {
    Error::Tampered {
        seq,
        reason: reason.into(),
    }
}

/// Below this many entries, hashing on one thread beats starting others.
const PARALLEL_MIN_ENTRIES: usize = 4096;

/// Entries per unit of work handed to a thread (a power of two: a full unit is a complete
/// subtree of the log's Merkle tree). Small enough that a core slowed by other load takes
/// fewer units instead of holding the others up.
const UNIT: usize = 1024;

/// What the parallel pass of [`verify_log`] computed.
struct Hashed {
    /// Each entry's leaf hash, by sequence number.
    leaves: Vec<Hash>,
    /// For each unit of [`UNIT`] entries (`k * UNIT ..`), the root of its subtree if it is
    /// full (`None` for a trailing partial unit).
    unit_roots: Vec<Option<Hash>>,
    /// Each checkpoint frame's signature verification, in file order.
    checkpoints: Vec<Result<Checkpoint>>,
}

/// One piece of the parallel pass.
enum Job<'a> {
    /// Leaf hashes of a unit of entries, and its subtree root if the unit is full.
    Unit {
        entries: &'a [&'a [u8]],
        leaves: &'a mut [Hash],
        root: &'a mut Option<Hash>,
    },
    /// A checkpoint's signature.
    Checkpoint {
        payload: &'a [u8],
        out: &'a mut Option<Result<Checkpoint>>,
    },
}

impl Job<'_> {
    fn run(self, key: &CheckpointVerifier) {
        match self {
            Job::Unit {
                entries,
                leaves,
                root,
            } => {
                for (l, e) in leaves.iter_mut().zip(entries) {
                    *l = merkle::leaf_hash(e);
                }
                if leaves.len() == UNIT {
                    *root = Some(merkle::root_of(leaves));
                }
            }
            Job::Checkpoint { payload, out } => *out = Some(key.verify(payload)),
        }
    }
}

/// The independent work of a verification — every leaf hash, the subtree root of every
/// full unit of entries, every checkpoint signature — on every core: threads (this one
/// included) take jobs until none are left, so a thread that cannot be started or runs
/// slowly only shifts work to the others.
fn hash_in_parallel(entries: &[&[u8]], checkpoints: &[&[u8]], key: &CheckpointVerifier) -> Hashed {
    let mut leaves = vec![[0u8; 48]; entries.len()];
    let mut unit_roots = vec![None; entries.len().div_ceil(UNIT)];
    let mut cps: Vec<Option<Result<Checkpoint>>> = checkpoints.iter().map(|_| None).collect();
    {
        let mut jobs: Vec<Job<'_>> = checkpoints
            .iter()
            .zip(cps.iter_mut())
            .map(|(payload, out)| Job::Checkpoint { payload, out })
            .collect();
        jobs.extend(
            entries
                .chunks(UNIT)
                .zip(leaves.chunks_mut(UNIT))
                .zip(unit_roots.iter_mut())
                .map(|((entries, leaves), root)| Job::Unit {
                    entries,
                    leaves,
                    root,
                }),
        );
        let jobs = Mutex::new(jobs.into_iter());
        let work = || loop {
            // Take the next job; run it without the lock.
            let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some(job) = job else { break };
            job.run(key);
        };
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        std::thread::scope(|s| {
            if entries.len() >= PARALLEL_MIN_ENTRIES {
                for _ in 1..threads {
                    // A thread that cannot be started leaves its share to the others.
                    let _ = std::thread::Builder::new().spawn_scoped(s, work);
                }
            }
            work();
        });
    }
    Hashed {
        leaves,
        unit_roots,
        checkpoints: cps
            .into_iter()
            .map(|c| {
                // Every job ran before the scope ended, so every slot is filled.
                c.unwrap_or(Err(Error::ApiMisuse {
                    reason: "checkpoint not verified",
                }))
            })
            .collect(),
    }
}

/// Verifies a whole log held in `bytes` with the TSM's checkpoint key, plus `trusted`
/// checkpoints the auditor holds from outside this file (e.g. from the previous audit),
/// each given as signed COSE_Sign1 bytes.
///
/// Errors: [`Error::Tampered`] with the first bad sequence number; for a fork detected only
/// through a trusted checkpoint, `seq` is the largest trusted size the log still matches (the
/// divergence is at or after it). Malformed headers fail as [`Error::Malformed`] or
/// [`Error::UnsupportedVersion`].
pub fn verify_log(
    bytes: &[u8],
    key: &CheckpointVerifier,
    trusted: &[Vec<u8>],
) -> Result<VerifiedLog> {
    file::check_header(bytes)?;
    let mut trusted_cps = Vec::with_capacity(trusted.len());
    for t in trusted {
        trusted_cps.push(key.verify(t)?);
    }
    trusted_cps.sort_by_key(|c| c.tree_size);
    let mut next_trusted = trusted_cps.iter().peekable();
    let mut last_trusted_match = 0u64;

    let mut tree = CompactTree::new();
    let mut record_ranges = Vec::new();
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut prev = [0u8; 48];
    let mut offset = file::HEADER_LEN;
    let mut sealed = 0u64;

    let check_trusted =
        |tree: &CompactTree,
         next_trusted: &mut core::iter::Peekable<core::slice::Iter<'_, Checkpoint>>,
         last_match: &mut u64|
         -> Result<()> {
            while let Some(tc) = next_trusted.peek() {
                if tc.tree_size != tree.size() {
                    break;
                }
                if tc.root != tree.root() {
                    return Err(tampered(
                        *last_match,
                        format!(
                            "fork: the trusted checkpoint at size {} does not match this log; the \
                         logs diverge at or after seq {} (last trusted size that matches)",
                            tc.tree_size, last_match
                        ),
                    ));
                }
                *last_match = tc.tree_size;
                next_trusted.next();
            }
            Ok(())
        };
    check_trusted(&tree, &mut next_trusted, &mut last_trusted_match)?;

    // Pass 1: framing (lengths, CRCs), sequential. A framing error is reported after the
    // frames before it have been checked, as if found in order.
    let mut frames = Vec::new();
    let end = loop {
        match file::next_frame(bytes, offset) {
            Ok(Next::Frame(f)) => {
                offset = f.frame.end;
                frames.push(f);
            }
            Ok(Next::End(tail)) => break Ok(tail),
            Err(e) => break Err(e),
        }
    };
    // Pass 2, on every core: what does not depend on order (leaf hashes, the subtree root
    // of every full unit of entries, checkpoint signatures).
    let mut entries = Vec::new();
    let mut cp_payloads = Vec::new();
    // A unit is "split" when a checkpoint in the file or a trusted one ends inside it: its
    // leaves then go into the tree one by one, so the root at that size can be compared.
    let mut split = vec![false; frames.len().div_ceil(UNIT)];
    let mut mark_split = |size: u64| {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size % UNIT != 0 {
            if let Some(s) = split.get_mut(size / UNIT) {
                *s = true;
            }
        }
    };
    for f in &frames {
        let payload = bytes.get(f.payload.clone()).unwrap_or_default();
        if f.frame_type == file::FRAME_ENTRY {
            entries.push(payload);
        } else {
            mark_split(entries.len() as u64);
            cp_payloads.push(payload);
        }
    }
    for tc in &trusted_cps {
        mark_split(tc.tree_size);
    }
    let hashed = hash_in_parallel(&entries, &cp_payloads, key);
    let mut cp_results = hashed.checkpoints.into_iter();
    // Pass 3: the chain, the tree and the checkpoints, in file order.
    let mut seq = 0u64;
    for frame in &frames {
        let payload = bytes.get(frame.payload.clone()).unwrap_or_default();
        if frame.frame_type == file::FRAME_ENTRY {
            let (Some(seq_bytes), Some(prev_field)) = (payload.get(..8), payload.get(8..56)) else {
                return Err(tampered(seq, "entry shorter than its prefix"));
            };
            let mut s = [0u8; 8];
            s.copy_from_slice(seq_bytes);
            let found = u64::from_be_bytes(s);
            if found != seq {
                return Err(tampered(
                    found.min(seq),
                    format!("expected seq {seq} at this position, found {found}"),
                ));
            }
            if prev_field != prev {
                return Err(tampered(
                    seq.saturating_sub(1),
                    format!(
                        "hash chain broken between seq {} and {seq}: record {} was changed \
                         (or the link in {seq})",
                        seq.saturating_sub(1),
                        seq.saturating_sub(1)
                    ),
                ));
            }
            let i = usize::try_from(seq).unwrap_or(usize::MAX);
            // One leaf per entry, in order (pass 2), so this is always `Some`.
            let leaf = hashed
                .leaves
                .get(i)
                .copied()
                .unwrap_or_else(|| merkle::leaf_hash(payload));
            let unit = i / UNIT;
            let whole = match hashed.unit_roots.get(unit) {
                Some(Some(root)) if !split.get(unit).copied().unwrap_or(true) => Some(*root),
                _ => None,
            };
            match whole {
                // A whole unit enters the tree as one subtree with its last entry (no
                // checkpoint, trusted or in the file, ends inside it).
                Some(root) => {
                    if i % UNIT == UNIT - 1 && !tree.push_subtree(root, UNIT as u64) {
                        let first = i + 1 - UNIT;
                        for l in hashed.leaves.get(first..=i).unwrap_or_default() {
                            tree.push(*l);
                        }
                    }
                }
                None => tree.push(leaf),
            }
            record_ranges.push(frame.payload.start + file::ENTRY_PREFIX..frame.payload.end);
            prev = leaf;
            seq = seq.saturating_add(1);
            check_trusted(&tree, &mut next_trusted, &mut last_trusted_match)?;
        } else {
            let cp = cp_results
                .next()
                .unwrap_or_else(|| key.verify(payload))
                .map_err(|e| tampered(sealed, format!("checkpoint after seq {seq}: {e}")))?;
            if cp.tree_size != seq {
                return Err(tampered(
                    sealed,
                    format!(
                        "checkpoint claims {} records but {seq} precede it: records after seq \
                         {sealed} were inserted or removed",
                        cp.tree_size
                    ),
                ));
            }
            if cp.root != tree.root() {
                return Err(tampered(
                    sealed,
                    format!(
                        "checkpoint at size {seq} does not match the records: seq {sealed}..{seq} \
                         were rewritten"
                    ),
                ));
            }
            if checkpoints.last().is_some_and(|l| l.time > cp.time) {
                return Err(tampered(sealed, "checkpoint time goes backwards"));
            }
            sealed = seq;
            checkpoints.push(cp);
        }
    }
    let tail = end.map_err(|e| tampered(seq, e.to_string()))?;
    let leaf_hashes = hashed.leaves;
    if let Some(tc) = next_trusted.next() {
        return Err(tampered(
            tree.size(),
            format!(
                "truncated: a trusted checkpoint covers {} records but the log has {}",
                tc.tree_size,
                tree.size()
            ),
        ));
    }
    let (good_len, torn_tail_bytes) = match tail {
        Tail::Clean => (bytes.len(), 0),
        Tail::Torn { offset } => (offset, bytes.len().saturating_sub(offset)),
    };
    Ok(VerifiedLog {
        leaf_hashes,
        record_ranges,
        checkpoints,
        torn_tail_bytes,
        good_len,
        tree,
    })
}

/// Compares two logs that each verify on their own (e.g. an auditor's archived copy and the
/// current log) and returns the first sequence number where they differ, or `None` if one
/// is a prefix of the other.
pub fn find_fork(a: &VerifiedLog, b: &VerifiedLog) -> Option<u64> {
    a.leaf_hashes
        .iter()
        .zip(&b.leaf_hashes)
        .position(|(x, y)| x != y)
        .map(|i| i as u64)
}
