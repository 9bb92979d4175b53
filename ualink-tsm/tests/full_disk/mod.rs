//! A real audit log file whose disk "fills up" once `budget` appends were made: every later
//! append fails with the error a full disk gives. Shared by the TSM's and the end-to-end
//! crate's fault tests (the latter includes this file by path).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ualink_attest::audit::{AuditLogWriter, AuditRecord, CheckpointSigner};
use ualink_attest::UnixTime;
use ualink_tsm::audit::AuditBackend;

/// The log and the appends left before the disk is full (shared, so a test can fill or
/// free the disk while the TSM runs).
pub(crate) struct FullDisk {
    pub(crate) inner: AuditLogWriter,
    pub(crate) budget: Arc<AtomicU64>,
}

impl AuditBackend for FullDisk {
    fn append_durable(&mut self, r: &AuditRecord) -> ualink_attest::Result<u64> {
        if self.budget.load(Ordering::SeqCst) == 0 {
            return Err(ualink_attest::Error::Io {
                op: "appending to the audit log",
                detail: "No space left on device (os error 28)".into(),
            });
        }
        self.budget.fetch_sub(1, Ordering::SeqCst);
        self.inner.append_durable(r)
    }
    fn checkpoint(&mut self, s: &CheckpointSigner, t: UnixTime) -> ualink_attest::Result<Vec<u8>> {
        self.inner.checkpoint(s, t)
    }
    fn size(&self) -> u64 {
        AuditBackend::size(&self.inner)
    }
}
