//! The TSM's decision log: every decision is appended to `STATE/audit.log` (ualink-attest's
//! Merkle log) and synced before it is acknowledged; checkpoints are signed with the TSM key
//! every `checkpoint_every` records and at shutdown. After the first write failure the log is
//! refused for the rest of the process's life and so is every new decision.

use std::path::Path;

use ualink_attest::audit::{
    AuditLogWriter, AuditRecord, CheckpointSigner, CheckpointVerifier, OpenReport,
};
use ualink_attest::UnixTime;

use crate::error::{Result, TsmError};

/// Where audit records go: the durable-append operations the TSM needs. [`AuditLogWriter`]
/// is the production backend; tests wrap it to model a disk that fails.
pub trait AuditBackend: Send {
    /// Appends `record` and makes it durable (fsync) before returning its sequence number.
    fn append_durable(&mut self, record: &AuditRecord) -> ualink_attest::Result<u64>;
    /// Appends a checkpoint signed by `signer` at `time` and syncs.
    fn checkpoint(
        &mut self,
        signer: &CheckpointSigner,
        time: UnixTime,
    ) -> ualink_attest::Result<Vec<u8>>;
    /// Records in the log so far.
    fn size(&self) -> u64;
    /// Appends every record and makes them durable before returning the last sequence number
    /// (group commit: one sync for the batch). The default syncs each.
    fn append_all_durable(&mut self, records: &[AuditRecord]) -> ualink_attest::Result<u64> {
        let mut last = self.size();
        for r in records {
            last = self.append_durable(r)?;
        }
        Ok(last)
    }
}

impl AuditBackend for AuditLogWriter {
    fn append_durable(&mut self, record: &AuditRecord) -> ualink_attest::Result<u64> {
        let seq = self.append(record)?;
        self.sync()?;
        Ok(seq)
    }

    fn checkpoint(
        &mut self,
        signer: &CheckpointSigner,
        time: UnixTime,
    ) -> ualink_attest::Result<Vec<u8>> {
        AuditLogWriter::checkpoint(self, signer, time)
    }

    fn size(&self) -> u64 {
        AuditLogWriter::size(self)
    }

    fn append_all_durable(&mut self, records: &[AuditRecord]) -> ualink_attest::Result<u64> {
        let mut last = AuditLogWriter::size(self);
        for r in records {
            last = self.append(r)?;
        }
        self.sync()?;
        Ok(last)
    }
}

/// The TSM's audit log: a backend, the checkpoint signer and the cadence.
pub struct AuditLog {
    backend: Box<dyn AuditBackend>,
    signer: CheckpointSigner,
    checkpoint_every: u64,
    since_checkpoint: u64,
    /// Checkpoints signed through this handle.
    signed: u64,
    failed: Option<String>,
}

impl core::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuditLog")
            .field("size", &self.backend.size())
            .field("checkpoint_every", &self.checkpoint_every)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (verifying it against `verifier`, truncating a torn tail) or creates the log at
    /// `path`.
    pub fn open(
        path: &Path,
        verifier: &CheckpointVerifier,
        signer: CheckpointSigner,
        checkpoint_every: u64,
    ) -> Result<(Self, OpenReport)> {
        let (w, report) = AuditLogWriter::open_or_create(path, verifier)
            .map_err(|e| TsmError::AuditUnavailable(format!("opening {}: {e}", path.display())))?;
        Ok((
            Self::with_backend(Box::new(w), signer, checkpoint_every),
            report,
        ))
    }

    /// A log over any backend.
    pub fn with_backend(
        backend: Box<dyn AuditBackend>,
        signer: CheckpointSigner,
        checkpoint_every: u64,
    ) -> Self {
        Self {
            backend,
            signer,
            checkpoint_every: checkpoint_every.max(1),
            since_checkpoint: 0,
            signed: 0,
            failed: None,
        }
    }

    /// Whether new decisions can be logged (false after a write failure).
    pub fn is_writable(&self) -> bool {
        self.failed.is_none()
    }

    /// Refuses early, before any state changes, if the log already failed.
    pub fn ensure_writable(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(TsmError::AuditUnavailable(why.clone())),
        }
    }

    /// Records in the log.
    pub fn size(&self) -> u64 {
        self.backend.size()
    }

    /// Checkpoints signed through this handle since it was opened.
    pub fn checkpoints_signed(&self) -> u64 {
        self.signed
    }

    /// Appends `record` durably and returns its sequence number; signs a checkpoint when the
    /// cadence is reached. A failure poisons the log: this and every later call returns
    /// [`TsmError::AuditUnavailable`].
    pub fn record(&mut self, record: &AuditRecord) -> Result<u64> {
        self.ensure_writable()?;
        let seq = match self.backend.append_durable(record) {
            Ok(s) => s,
            Err(e) => return Err(self.fail(format!("appending a record: {e}"))),
        };
        self.since_checkpoint = self.since_checkpoint.saturating_add(1);
        if self.since_checkpoint >= self.checkpoint_every {
            self.checkpoint()?;
        }
        Ok(seq)
    }

    /// Appends `records` durably as one group (one sync), then signs a checkpoint if the
    /// cadence was reached. Nothing in the batch is acknowledged unless all of it is durable;
    /// a failure poisons the log as [`Self::record`] does.
    pub fn record_all(&mut self, records: &[AuditRecord]) -> Result<()> {
        self.ensure_writable()?;
        if records.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.backend.append_all_durable(records) {
            return Err(self.fail(format!("appending {} records: {e}", records.len())));
        }
        let n = u64::try_from(records.len()).unwrap_or(u64::MAX);
        self.since_checkpoint = self.since_checkpoint.saturating_add(n);
        if self.since_checkpoint >= self.checkpoint_every {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Signs a checkpoint over every record so far (also called at shutdown). Returns the
    /// COSE_Sign1 checkpoint.
    pub fn checkpoint(&mut self) -> Result<Vec<u8>> {
        self.ensure_writable()?;
        match self.backend.checkpoint(&self.signer, UnixTime::now()) {
            Ok(cp) => {
                self.since_checkpoint = 0;
                self.signed = self.signed.saturating_add(1);
                Ok(cp)
            }
            Err(e) => Err(self.fail(format!("signing a checkpoint: {e}"))),
        }
    }

    fn fail(&mut self, why: String) -> TsmError {
        self.failed = Some(why.clone());
        TsmError::AuditUnavailable(why)
    }
}
