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

use crate::error::{Error, Result};
use crate::UnixTime;
pub use checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
use core::ops::Range;
pub use event::AuditEvent;
use file::{Next, Tail};
use merkle::{CompactTree, Hash};
pub use record::{AuditRecord, DecisionKind, Digest384, Outcome};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

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
        merkle::root_of(&self.leaf_hashes)
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
    let mut leaf_hashes = Vec::new();
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

    let tail = loop {
        let seq = tree.size();
        let frame = match file::next_frame(bytes, offset) {
            Ok(Next::Frame(f)) => f,
            Ok(Next::End(tail)) => break tail,
            Err(e) => return Err(tampered(seq, e.to_string())),
        };
        let payload = bytes.get(frame.payload.clone()).unwrap_or_default();
        offset = frame.frame.end;
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
            let leaf = merkle::leaf_hash(payload);
            tree.push(leaf);
            leaf_hashes.push(leaf);
            record_ranges.push(frame.payload.start + file::ENTRY_PREFIX..frame.payload.end);
            prev = leaf;
            check_trusted(&tree, &mut next_trusted, &mut last_trusted_match)?;
        } else {
            let cp = key
                .verify(payload)
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
    };
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

/// Buffered bytes at which the writer writes them out (and starts their writeback).
const FLUSH_AT: usize = 1 << 20;

/// Writer state: usable, or failed after an I/O error (reopen to recover).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriterState {
    Ready,
    Failed,
}

/// Appends records and checkpoints to an audit log file.
///
/// Durability: [`Self::append`] buffers; a record is durable (and may be acknowledged) only
/// once [`Self::sync`] or [`Self::checkpoint`] has returned `Ok` after it — one `fdatasync`
/// covers every record appended since the previous one (group commit). While records
/// accumulate, full 1 MiB buffers are written and a background thread starts their
/// writeback early (`fdatasync` on a second handle), so the final `fdatasync` finds little
/// left to write; an error on that thread fails the writer like an error on its own.
#[derive(Debug)]
pub struct AuditLogWriter {
    file: File,
    buf: Vec<u8>,
    tree: CompactTree,
    prev: Hash,
    last_checkpoint_time: i64,
    state: WriterState,
    writeback: Option<Writeback>,
}

/// The background writeback thread's shared state.
#[derive(Debug, Default)]
struct WritebackState {
    /// An `fdatasync` was requested and has not started.
    requested: bool,
    /// An `fdatasync` is running.
    busy: bool,
    /// The writer is being dropped.
    stop: bool,
    /// The first error the thread saw (it may have consumed the kernel's error report, so
    /// the writer must fail on it).
    error: Option<std::io::ErrorKind>,
}

#[derive(Debug, Default)]
struct WritebackShared {
    state: Mutex<WritebackState>,
    cv: Condvar,
}

impl WritebackShared {
    fn lock(&self) -> MutexGuard<'_, WritebackState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Early writeback: `fdatasync` on a duplicate handle, in a thread, when asked.
#[derive(Debug)]
struct Writeback {
    shared: Arc<WritebackShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writeback {
    /// Starts the thread; `None` if the handle cannot be duplicated or the thread not
    /// started (the writer then works without early writeback).
    fn start(file: &File) -> Option<Self> {
        let file = file.try_clone().ok()?;
        let shared = Arc::new(WritebackShared::default());
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("audit-log-writeback".into())
            .spawn(move || loop {
                let mut st = s.lock();
                while !st.requested && !st.stop {
                    st = s.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                if st.stop {
                    return;
                }
                st.requested = false;
                st.busy = true;
                drop(st);
                let r = file.sync_data();
                let mut st = s.lock();
                st.busy = false;
                if let Err(e) = r {
                    st.error.get_or_insert(e.kind());
                }
                drop(st);
                s.cv.notify_all();
            })
            .ok()?;
        Some(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for an `fdatasync` of what has been written so far; does not wait.
    fn kick(&self) {
        self.shared.lock().requested = true;
        self.shared.cv.notify_all();
    }

    /// Cancels a pending request, waits for a running `fdatasync` to end, and returns the
    /// first error the thread saw.
    fn quiesce(&self) -> Option<std::io::ErrorKind> {
        let mut st = self.shared.lock();
        st.requested = false;
        while st.busy {
            st = self
                .shared
                .cv
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        st.error
    }
}

impl Drop for Writeback {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What [`AuditLogWriter::open`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// Records in the log.
    pub records: u64,
    /// Bytes of a torn tail that were truncated.
    pub truncated_bytes: usize,
}

impl AuditLogWriter {
    /// Creates a new, empty log at `path` (fails if it exists) and syncs it.
    pub fn create(path: &Path) -> Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io("creating the audit log", &e))?;
        file.write_all(&file::header())
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io("writing the audit log header", &e))?;
        if let Some(dir) = path.parent() {
            // Make the new directory entry durable too.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let writeback = Writeback::start(&file);
        Ok(Self {
            file,
            buf: Vec::with_capacity(FLUSH_AT + (1 << 16)),
            tree: CompactTree::new(),
            prev: [0; 48],
            last_checkpoint_time: i64::MIN,
            state: WriterState::Ready,
            writeback,
        })
    }

    /// Opens an existing log: verifies it fully with `key` (a tampered log is refused),
    /// truncates a torn tail, and positions for appending.
    pub fn open(path: &Path, key: &CheckpointVerifier) -> Result<(Self, OpenReport)> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading the audit log", &e))?;
        let v = verify_log(&bytes, key, &[])?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io("opening the audit log", &e))?;
        if v.torn_tail_bytes > 0 {
            file.set_len(v.good_len as u64)
                .and_then(|_| file.sync_all())
                .map_err(|e| Error::io("truncating a torn audit log tail", &e))?;
        }
        file.seek(SeekFrom::End(0))
            .map_err(|e| Error::io("seeking the audit log", &e))?;
        let mut tree = CompactTree::new();
        for h in &v.leaf_hashes {
            tree.push(*h);
        }
        let report = OpenReport {
            records: v.size(),
            truncated_bytes: v.torn_tail_bytes,
        };
        let writeback = Writeback::start(&file);
        Ok((
            Self {
                file,
                buf: Vec::with_capacity(FLUSH_AT + (1 << 16)),
                tree,
                prev: v.leaf_hashes.last().copied().unwrap_or([0; 48]),
                last_checkpoint_time: v.checkpoints.last().map_or(i64::MIN, |c| c.time),
                state: WriterState::Ready,
                writeback,
            },
            report,
        ))
    }

    /// [`Self::open`] if `path` exists, else [`Self::create`].
    pub fn open_or_create(path: &Path, key: &CheckpointVerifier) -> Result<(Self, OpenReport)> {
        if path.exists() {
            Self::open(path, key)
        } else {
            let w = Self::create(path)?;
            Ok((
                w,
                OpenReport {
                    records: 0,
                    truncated_bytes: 0,
                },
            ))
        }
    }

    fn ready(&self) -> Result<()> {
        match self.state {
            WriterState::Ready => Ok(()),
            WriterState::Failed => Err(Error::ApiMisuse {
                reason: "the audit log writer failed earlier (I/O error); reopen the log",
            }),
        }
    }

    /// Number of records appended so far (including unsynced ones).
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// Appends a record; returns its sequence number. Durable after the next
    /// [`Self::sync`] or [`Self::checkpoint`].
    pub fn append(&mut self, record: &AuditRecord) -> Result<u64> {
        self.ready()?;
        let seq = self.tree.size();
        let start = self.buf.len();
        // Frame header with a placeholder length, then the payload encoded in place.
        self.buf.push(file::FRAME_ENTRY);
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&seq.to_be_bytes());
        self.buf.extend_from_slice(&self.prev);
        record.encode_cbor(&mut self.buf);
        let payload_len = self.buf.len() - start - 5;
        let len32 = match u32::try_from(payload_len) {
            Ok(l) if payload_len <= file::MAX_PAYLOAD => l,
            _ => {
                self.buf.truncate(start);
                return Err(Error::ApiMisuse {
                    reason: "audit frame larger than 1 MiB",
                });
            }
        };
        if let Some(len_field) = self.buf.get_mut(start + 1..start + 5) {
            len_field.copy_from_slice(&len32.to_be_bytes());
        }
        let frame = self.buf.get(start..).unwrap_or_default();
        let leaf = merkle::leaf_hash(frame.get(5..).unwrap_or_default());
        let crc = crc32fast::hash(frame);
        self.buf.extend_from_slice(&crc.to_be_bytes());
        self.tree.push(leaf);
        self.prev = leaf;
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
            if let Some(wb) = &self.writeback {
                wb.kick();
            }
        }
        Ok(seq)
    }

    /// Appends `records` in order and makes them durable with one `fdatasync` (group
    /// commit); returns their sequence numbers. None of them may be acknowledged unless this
    /// returns `Ok`. After an error the records appended before it stay in the log as
    /// unacknowledged records (an I/O error also fails the writer, as in [`Self::sync`]).
    pub fn append_all_durable(&mut self, records: &[AuditRecord]) -> Result<Range<u64>> {
        let first = self.size();
        for r in records {
            self.append(r)?;
        }
        self.sync()?;
        Ok(first..self.size())
    }

    /// Appends an already CBOR-encoded record; it must decode as an [`AuditRecord`].
    pub fn append_encoded(&mut self, cbor: &[u8]) -> Result<u64> {
        self.ready()?;
        let record = AuditRecord::from_cbor(cbor)?;
        self.append(&record)
    }

    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        match self.file.write_all(&self.buf) {
            Ok(()) => {
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                self.state = WriterState::Failed;
                Err(Error::io("appending to the audit log", &e))
            }
        }
    }

    /// Writes buffered frames and fsyncs (`fdatasync`: the file only grows, so its size is
    /// the one piece of metadata that must be durable, and `fdatasync` covers it). Every
    /// record appended before this call is durable when it returns `Ok` (group commit).
    pub fn sync(&mut self) -> Result<()> {
        self.ready()?;
        self.flush_buf()?;
        // A running background fdatasync may have consumed a writeback error the kernel
        // reports only once per open file: wait for it and fail on what it saw.
        if let Some(kind) = self.writeback.as_ref().and_then(Writeback::quiesce) {
            self.state = WriterState::Failed;
            return Err(Error::io(
                "syncing the audit log (background writeback)",
                &std::io::Error::from(kind),
            ));
        }
        if let Err(e) = self.file.sync_data() {
            self.state = WriterState::Failed;
            return Err(Error::io("syncing the audit log", &e));
        }
        Ok(())
    }

    /// Signs a checkpoint over every record so far at `time`, appends it and syncs.
    /// Returns the signed checkpoint (COSE_Sign1 bytes) for publication.
    pub fn checkpoint(&mut self, signer: &CheckpointSigner, time: UnixTime) -> Result<Vec<u8>> {
        self.ready()?;
        if time.secs() < self.last_checkpoint_time {
            return Err(Error::ApiMisuse {
                reason: "checkpoint time before the previous checkpoint",
            });
        }
        let cp = Checkpoint {
            tree_size: self.tree.size(),
            root: self.tree.root(),
            time: time.secs(),
        };
        let signed = signer.sign(&cp)?;
        file::encode_frame(&mut self.buf, file::FRAME_CHECKPOINT, &[&signed])?;
        self.sync()?;
        self.last_checkpoint_time = cp.time;
        Ok(signed)
    }
}

/// An audit log shared by threads, with group commit: [`SharedAuditLog::append_durable`]
/// returns only once an `fdatasync` that started after the record was written has
/// succeeded, and one `fdatasync` covers every record appended while the previous one ran.
/// Appending never waits for a running `fdatasync`; the records appended meanwhile are made
/// durable together by the next one. Cloning the handle shares the log.
#[derive(Clone, Debug)]
pub struct SharedAuditLog {
    shared: Arc<SharedLog>,
}

#[derive(Debug)]
struct SharedLog {
    state: Mutex<SharedState>,
    cv: Condvar,
}

#[derive(Debug)]
struct SharedState {
    writer: AuditLogWriter,
    /// A handle on the same file for `fdatasync` outside the lock.
    sync_handle: File,
    /// Records `0..durable` are durable.
    durable: u64,
    /// An `fdatasync` is running (outside the lock).
    syncing: bool,
    /// `fdatasync` calls made.
    syncs: u64,
}

impl SharedAuditLog {
    /// Shares `writer` (records it already holds become durable with the next sync).
    pub fn new(writer: AuditLogWriter) -> Result<Self> {
        let sync_handle = writer
            .file
            .try_clone()
            .map_err(|e| Error::io("duplicating the audit log handle", &e))?;
        Ok(Self {
            shared: Arc::new(SharedLog {
                state: Mutex::new(SharedState {
                    writer,
                    sync_handle,
                    durable: 0,
                    syncing: false,
                    syncs: 0,
                }),
                cv: Condvar::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SharedState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `record` and returns its sequence number once it is durable (group commit).
    /// After an I/O error every caller waiting or arriving gets an error and the log is
    /// refused, as [`AuditLogWriter`] does.
    pub fn append_durable(&self, record: &AuditRecord) -> Result<u64> {
        let mut st = self.lock();
        let seq = st.writer.append(record)?;
        loop {
            if st.durable > seq {
                return Ok(seq);
            }
            st.writer.ready()?;
            if st.syncing {
                st = self
                    .shared
                    .cv
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead: write what is buffered, then fdatasync outside the lock so others
            // keep appending (their records go with the next sync).
            st.writer.flush_buf()?;
            if let Some(kind) = st.writer.writeback.as_ref().and_then(Writeback::quiesce) {
                st.writer.state = WriterState::Failed;
                self.shared.cv.notify_all();
                return Err(Error::io(
                    "syncing the audit log (background writeback)",
                    &std::io::Error::from(kind),
                ));
            }
            let target = st.writer.size();
            let handle = match st.sync_handle.try_clone() {
                Ok(h) => h,
                Err(e) => {
                    st.writer.state = WriterState::Failed;
                    self.shared.cv.notify_all();
                    return Err(Error::io("duplicating the audit log handle", &e));
                }
            };
            st.syncing = true;
            drop(st);
            let r = handle.sync_data();
            st = self.lock();
            st.syncing = false;
            st.syncs = st.syncs.saturating_add(1);
            match r {
                Ok(()) => st.durable = st.durable.max(target),
                Err(e) => {
                    st.writer.state = WriterState::Failed;
                    self.shared.cv.notify_all();
                    return Err(Error::io("syncing the audit log", &e));
                }
            }
            self.shared.cv.notify_all();
        }
    }

    /// Signs and appends a checkpoint over every record so far and syncs (see
    /// [`AuditLogWriter::checkpoint`]); every record before it is durable on return.
    pub fn checkpoint(&self, signer: &CheckpointSigner, time: UnixTime) -> Result<Vec<u8>> {
        let mut st = self.lock();
        while st.syncing {
            st = self
                .shared
                .cv
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let cp = st.writer.checkpoint(signer, time)?;
        st.durable = st.writer.size();
        self.shared.cv.notify_all();
        Ok(cp)
    }

    /// Records in the log (durable or not).
    pub fn size(&self) -> u64 {
        self.lock().writer.size()
    }

    /// `fdatasync` calls made by [`Self::append_durable`] so far.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_refuses_to_continue_after_an_io_error() {
        let dir = std::env::temp_dir().join(format!("ualink-audit-io-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("audit.log");
        let _ = std::fs::remove_file(&path);
        drop(AuditLogWriter::create(&path).unwrap());
        // A read-only handle makes the next write fail like a full or failing disk would.
        let mut w = AuditLogWriter {
            file: File::open(&path).unwrap(),
            buf: Vec::new(),
            tree: CompactTree::new(),
            prev: [0; 48],
            last_checkpoint_time: i64::MIN,
            state: WriterState::Ready,
            writeback: None,
        };
        let r = AuditRecord::new(
            UnixTime::from_secs(1),
            DecisionKind::Share,
            "g",
            Outcome::Allow,
        )
        .unwrap();
        w.append(&r).unwrap();
        assert!(matches!(w.sync(), Err(Error::Io { .. })));
        assert!(matches!(w.append(&r), Err(Error::ApiMisuse { .. })));
        assert!(matches!(w.sync(), Err(Error::ApiMisuse { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
