//! Appending to the audit log: [`AuditLogWriter`] (one owner) and [`SharedAuditLog`]
//! (threads, group commit).
//!
//! Appending is a pipeline over two cores. The appending thread encodes each entry frame
//! and computes its leaf hash — sequential by construction, since the next entry's `prev`
//! is that hash. Every 1 MiB of frames goes, in order, to a sealing thread that writes
//! them and folds their leaves into the Merkle tree (the RFC 9162 node hashes), and a
//! writeback thread starts their `fdatasync` early. [`AuditLogWriter::sync`] and
//! [`AuditLogWriter::checkpoint`] wait for the pipeline to drain, so what they report and
//! sign is exactly what precedes them in the file.

use super::file;
use super::merkle::{self, CompactTree, Hash};
use super::{verify_log, AuditRecord, Checkpoint, CheckpointSigner, CheckpointVerifier};
use crate::error::{Error, Result};
use crate::UnixTime;
use core::ops::Range;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

/// Buffered bytes at which the writer hands its frames to the sealing thread.
const FLUSH_AT: usize = 1 << 20;

/// Batches the appending thread may run ahead of the sealing thread (bounds the memory
/// in flight to a few MiB; the appender waits when the queue is full).
const SEAL_QUEUE: usize = 4;

/// Writer state: usable, or failed after an I/O error (reopen to recover).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriterState {
    Ready,
    Failed,
}

/// Whole frames, in file order, and the leaf hashes of the entries among them, in order.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    leaves: Vec<Hash>,
}

impl Batch {
    fn new() -> Self {
        Self {
            bytes: Vec::with_capacity(FLUSH_AT + (1 << 16)),
            leaves: Vec::with_capacity(FLUSH_AT / 128),
        }
    }
}

/// What the sealing thread has done, shared with the appender.
#[derive(Debug)]
struct SealState {
    /// The tree over every entry of every batch written so far (and, after
    /// [`AuditLogWriter::open`], every entry already in the file).
    tree: CompactTree,
    /// Batches taken off the queue (written, or dropped after a write error).
    sealed: u64,
    /// The first write error; once set, nothing more is written.
    error: Option<std::io::ErrorKind>,
}

#[derive(Debug)]
struct SealShared {
    state: Mutex<SealState>,
    cv: Condvar,
    /// Mirrors `state.error.is_some()` so the appender can check it without the lock.
    failed: AtomicBool,
}

impl SealShared {
    fn lock(&self) -> MutexGuard<'_, SealState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sealing thread: writes batches in the order they were submitted, folds their leaves
/// into the tree, and asks the writeback thread to start their `fdatasync`.
#[derive(Debug)]
struct Sealer {
    tx: Option<SyncSender<Batch>>,
    /// Emptied batches coming back for reuse (no fresh 1 MiB buffer per batch).
    recycled: Receiver<Batch>,
    shared: Arc<SealShared>,
    /// Batches submitted so far.
    submitted: u64,
    thread: Option<JoinHandle<()>>,
}

impl Sealer {
    /// Starts the thread on `file` (a handle positioned at the end of the good frames) with
    /// `tree` over the entries already there.
    fn start(
        mut file: File,
        tree: CompactTree,
        writeback: Option<Arc<WritebackShared>>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(SealShared {
            state: Mutex::new(SealState {
                tree,
                sealed: 0,
                error: None,
            }),
            cv: Condvar::new(),
            failed: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::sync_channel::<Batch>(SEAL_QUEUE);
        let (back, recycled) = mpsc::channel::<Batch>();
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("audit-log-sealer".into())
            .spawn(move || {
                while let Ok(mut batch) = rx.recv() {
                    if !s.failed.load(Ordering::Acquire) {
                        match file.write_all(&batch.bytes) {
                            Ok(()) => {
                                if let Some(wb) = &writeback {
                                    wb.kick();
                                }
                                let mut st = s.lock();
                                for leaf in &batch.leaves {
                                    st.tree.push(*leaf);
                                }
                            }
                            Err(e) => {
                                s.lock().error.get_or_insert(e.kind());
                                s.failed.store(true, Ordering::Release);
                            }
                        }
                    }
                    batch.bytes.clear();
                    batch.leaves.clear();
                    // The appender may be gone (dropping); then the buffer is just freed.
                    let _ = back.send(batch);
                    let mut st = s.lock();
                    st.sealed = st.sealed.saturating_add(1);
                    drop(st);
                    s.cv.notify_all();
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            recycled,
            shared,
            submitted: 0,
            thread: Some(thread),
        })
    }

    /// An empty batch, reused if one came back.
    fn spare(&self) -> Batch {
        self.recycled.try_recv().unwrap_or_else(|_| Batch::new())
    }

    /// Queues `batch` (waits while the queue is full).
    fn submit(&mut self, batch: Batch) -> Result<()> {
        let sent = self.tx.as_ref().map(|tx| tx.send(batch));
        match sent {
            Some(Ok(())) => {
                self.submitted = self.submitted.saturating_add(1);
                Ok(())
            }
            // The thread only ends when `tx` is dropped, so this is unreachable short of
            // the thread dying; report it as the I/O failure it would be.
            _ => Err(Error::io(
                "appending to the audit log (sealing thread stopped)",
                &std::io::Error::from(std::io::ErrorKind::BrokenPipe),
            )),
        }
    }

    /// A write error seen by the thread, without waiting.
    fn failed(&self) -> Option<std::io::ErrorKind> {
        if self.shared.failed.load(Ordering::Acquire) {
            Some(
                self.shared
                    .lock()
                    .error
                    .unwrap_or(std::io::ErrorKind::Other),
            )
        } else {
            None
        }
    }

    /// Waits until every submitted batch is written and in the tree; returns the state, or
    /// the first write error.
    fn drain(&self) -> core::result::Result<MutexGuard<'_, SealState>, std::io::ErrorKind> {
        let mut st = self.shared.lock();
        while st.sealed < self.submitted {
            st = self
                .shared
                .cv
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        match st.error {
            Some(kind) => Err(kind),
            None => Ok(st),
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has written what was queued.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Appends records and checkpoints to an audit log file.
///
/// Durability: [`Self::append`] buffers; a record is durable (and may be acknowledged) only
/// once [`Self::sync`] or [`Self::checkpoint`] has returned `Ok` after it — one `fdatasync`
/// covers every record appended since the previous one (group commit). While records
/// accumulate, full 1 MiB batches are written by the sealing thread and a writeback thread
/// starts their `fdatasync` early, so the final `fdatasync` finds little left to write. An
/// I/O error on either thread fails the writer like an error on its own: it is reported by
/// the next call (at the latest by the `sync` that would have acknowledged the records), and
/// every call after that is refused.
#[derive(Debug)]
pub struct AuditLogWriter {
    /// The appender's handle: `fdatasync`.
    file: File,
    /// Frames not yet handed to the sealing thread.
    batch: Batch,
    /// Entries appended so far (including ones still in the pipeline).
    size: u64,
    prev: Hash,
    last_checkpoint_time: i64,
    state: WriterState,
    sealer: Sealer,
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

    /// Asks for an `fdatasync` of what has been written so far; does not wait.
    fn kick(&self) {
        self.lock().requested = true;
        self.cv.notify_all();
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
    /// Starts the pipeline on `file`, positioned at the end of its good frames, whose
    /// entries form `tree` and end with leaf `prev`.
    pub(super) fn start(
        file: File,
        tree: CompactTree,
        prev: Hash,
        last_checkpoint_time: i64,
    ) -> Result<Self> {
        let writeback = Writeback::start(&file);
        let seal_file = file
            .try_clone()
            .map_err(|e| Error::io("duplicating the audit log handle", &e))?;
        let size = tree.size();
        let sealer = Sealer::start(
            seal_file,
            tree,
            writeback.as_ref().map(|w| Arc::clone(&w.shared)),
        )
        .map_err(|e| Error::io("starting the audit log sealing thread", &e))?;
        Ok(Self {
            file,
            batch: Batch::new(),
            size,
            prev,
            last_checkpoint_time,
            state: WriterState::Ready,
            sealer,
            writeback,
        })
    }

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
        Self::start(file, CompactTree::new(), [0; 48], i64::MIN)
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
        let report = OpenReport {
            records: v.size(),
            truncated_bytes: v.torn_tail_bytes,
        };
        let writer = Self::start(
            file,
            v.tree.clone(),
            v.leaf_hashes.last().copied().unwrap_or([0; 48]),
            v.checkpoints.last().map_or(i64::MIN, |c| c.time),
        )?;
        Ok((writer, report))
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

    /// `Ok` while the writer may be used; the first call after a pipeline I/O error reports
    /// that error and fails the writer.
    fn ready(&mut self) -> Result<()> {
        match self.state {
            WriterState::Failed => Err(Error::ApiMisuse {
                reason: "the audit log writer failed earlier (I/O error); reopen the log",
            }),
            WriterState::Ready => match self.sealer.failed() {
                None => Ok(()),
                Some(kind) => {
                    self.state = WriterState::Failed;
                    Err(Error::io(
                        "appending to the audit log",
                        &std::io::Error::from(kind),
                    ))
                }
            },
        }
    }

    /// Number of records appended so far (including unsynced ones).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root over every record appended so far (waits for them to be written).
    pub fn root(&mut self) -> Result<Hash> {
        self.ready()?;
        self.write_out()?;
        let root = self.sealer.drain().map(|st| st.tree.root());
        root.map_err(|kind| self.fail("appending to the audit log", kind))
    }

    fn fail(&mut self, op: &'static str, kind: std::io::ErrorKind) -> Error {
        self.state = WriterState::Failed;
        Error::io(op, &std::io::Error::from(kind))
    }

    /// Appends a record; returns its sequence number. Durable after the next
    /// [`Self::sync`] or [`Self::checkpoint`].
    pub fn append(&mut self, record: &AuditRecord) -> Result<u64> {
        self.ready()?;
        let seq = self.size;
        let buf = &mut self.batch.bytes;
        let start = buf.len();
        // Frame header with a placeholder length, then the payload encoded in place.
        buf.push(file::FRAME_ENTRY);
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&self.prev);
        record.encode_cbor(buf);
        let payload_len = buf.len() - start - 5;
        let len32 = match u32::try_from(payload_len) {
            Ok(l) if payload_len <= file::MAX_PAYLOAD => l,
            _ => {
                buf.truncate(start);
                return Err(Error::ApiMisuse {
                    reason: "audit frame larger than 1 MiB",
                });
            }
        };
        if let Some(len_field) = buf.get_mut(start + 1..start + 5) {
            len_field.copy_from_slice(&len32.to_be_bytes());
        }
        let frame = buf.get(start..).unwrap_or_default();
        let leaf = merkle::leaf_hash(frame.get(5..).unwrap_or_default());
        let crc = crc32fast::hash(frame);
        buf.extend_from_slice(&crc.to_be_bytes());
        self.batch.leaves.push(leaf);
        self.size = self.size.saturating_add(1);
        self.prev = leaf;
        if self.batch.bytes.len() >= FLUSH_AT {
            self.submit()?;
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

    /// Hands the buffered frames to the sealing thread.
    fn submit(&mut self) -> Result<()> {
        if self.batch.bytes.is_empty() {
            return Ok(());
        }
        let next = self.sealer.spare();
        let batch = core::mem::replace(&mut self.batch, next);
        self.sealer.submit(batch).inspect_err(|_| {
            self.state = WriterState::Failed;
        })
    }

    /// Writes every buffered frame (waiting for the pipeline to drain) and waits for a
    /// running background `fdatasync`; fails the writer on any error either thread saw.
    pub(super) fn write_out(&mut self) -> Result<()> {
        self.submit()?;
        if let Err(kind) = self.sealer.drain().map(drop) {
            return Err(self.fail("appending to the audit log", kind));
        }
        // A running background fdatasync may have consumed a writeback error the kernel
        // reports only once per open file: wait for it and fail on what it saw.
        if let Some(kind) = self.writeback.as_ref().and_then(Writeback::quiesce) {
            return Err(self.fail("syncing the audit log (background writeback)", kind));
        }
        Ok(())
    }

    /// Writes buffered frames and fsyncs (`fdatasync`: the file only grows, so its size is
    /// the one piece of metadata that must be durable, and `fdatasync` covers it). Every
    /// record appended before this call is durable when it returns `Ok` (group commit).
    pub fn sync(&mut self) -> Result<()> {
        self.ready()?;
        self.write_out()?;
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
        self.write_out()?;
        let sealed = self
            .sealer
            .drain()
            .map(|st| (st.tree.size(), st.tree.root()));
        let (tree_size, root) =
            sealed.map_err(|kind| self.fail("appending to the audit log", kind))?;
        let cp = Checkpoint {
            tree_size,
            root,
            time: time.secs(),
        };
        let signed = signer.sign(&cp)?;
        file::encode_frame(&mut self.batch.bytes, file::FRAME_CHECKPOINT, &[&signed])?;
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
            if let Err(e) = st.writer.write_out() {
                self.shared.cv.notify_all();
                return Err(e);
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
    use crate::audit::{DecisionKind, Outcome};

    #[test]
    fn writer_refuses_to_continue_after_an_io_error() {
        let dir = std::env::temp_dir().join(format!("ualink-audit-io-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("audit.log");
        let _ = std::fs::remove_file(&path);
        drop(AuditLogWriter::create(&path).unwrap());
        // A read-only handle makes the next write fail like a full or failing disk would.
        let mut w = AuditLogWriter::start(
            File::open(&path).unwrap(),
            CompactTree::new(),
            [0; 48],
            i64::MIN,
        )
        .unwrap();
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

    /// A fresh directory under the system temp dir, removed on drop.
    struct TestDir(std::path::PathBuf);

    impl TestDir {
        fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir()
                .join(format!("ualink-audit-writer-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn record(i: u64) -> AuditRecord {
        AuditRecord::new(
            UnixTime::from_secs(1_764_000_000 + i as i64),
            DecisionKind::Share,
            &format!("grant-{i}"),
            Outcome::Allow,
        )
        .unwrap()
        .with_reason(&"x".repeat(400))
        .unwrap()
    }

    #[test]
    fn a_write_error_in_the_sealing_thread_fails_the_next_append_and_loses_nothing_acknowledged() {
        let dir = TestDir::new();
        let path = dir.0.join("audit.log");
        let (signer, _) = CheckpointSigner::generate().unwrap();
        let key = signer.verifier();
        let mut w = AuditLogWriter::create(&path).unwrap();
        for i in 0..10 {
            w.append(&record(i)).unwrap();
        }
        w.checkpoint(&signer, UnixTime::from_secs(1_764_000_000))
            .unwrap();
        drop(w);
        let acknowledged = std::fs::read(&path).unwrap();
        // Reopen through a read-only handle: every write the sealing thread makes fails.
        let v = verify_log(&acknowledged, &key, &[]).unwrap();
        let mut w = AuditLogWriter::start(
            File::open(&path).unwrap(),
            v.tree.clone(),
            *v.leaf_hashes.last().unwrap(),
            i64::MIN,
        )
        .unwrap();
        // More than one batch: the first full batch goes to the sealer and fails there.
        let mut err = None;
        for i in 10..20_000 {
            if let Err(e) = w.append(&record(i)) {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(err, Some(Error::Io { .. })), "{err:?}");
        assert!(matches!(w.append(&record(0)), Err(Error::ApiMisuse { .. })));
        assert!(matches!(w.sync(), Err(Error::ApiMisuse { .. })));
        assert!(matches!(w.root(), Err(Error::ApiMisuse { .. })));
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), acknowledged);
    }

    #[test]
    fn root_and_checkpoints_cover_exactly_the_records_in_the_file() {
        let dir = TestDir::new();
        let path = dir.0.join("audit.log");
        let (signer, _) = CheckpointSigner::generate().unwrap();
        let key = signer.verifier();
        let mut w = AuditLogWriter::create(&path).unwrap();
        // Enough for several batches in flight, checkpoints between and inside them.
        for i in 0..6_000 {
            w.append(&record(i)).unwrap();
            if i % 1_700 == 0 {
                w.checkpoint(&signer, UnixTime::from_secs(1_764_000_000))
                    .unwrap();
            }
        }
        let root = w.root().unwrap();
        w.sync().unwrap();
        let v = verify_log(&std::fs::read(&path).unwrap(), &key, &[]).unwrap();
        assert_eq!(v.size(), 6_000);
        assert_eq!(v.root(), root);
        assert_eq!(v.checkpoints.len(), 4);
        drop(w);
        // Reopened, it continues the same tree.
        let (mut w, rep) = AuditLogWriter::open(&path, &key).unwrap();
        assert_eq!(rep.records, 6_000);
        assert_eq!(w.root().unwrap(), root);
        w.append(&record(6_000)).unwrap();
        w.checkpoint(&signer, UnixTime::from_secs(1_764_000_001))
            .unwrap();
        let v = verify_log(&std::fs::read(&path).unwrap(), &key, &[]).unwrap();
        assert_eq!(v.size(), 6_001);
    }
}
