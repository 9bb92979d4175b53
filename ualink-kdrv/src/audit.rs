//! Audit events and the sinks the embedding provides (audit log, importer invalidation).

use crate::errno::Errno;
use crate::error::Denial;
use crate::ids::{
    AcceleratorId, AttachmentId, BufferHandle, GrantId, MappingId, OsInstanceId, Rights, TenantId,
};
use crate::ops::{FaultReport, KeySlotRef};

/// Why a revocation happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevokeCause {
    /// The exporter (or the TSM) revoked the buffer explicitly.
    Explicit,
    /// A TDI left TDISP RUN.
    TdiLeftRun(AcceleratorId),
    /// A TDI's attestation epoch changed.
    EpochBump(AcceleratorId),
    /// A key slot on the route went stale, changed or was lost.
    KeyStale(KeySlotRef),
    /// The hardware reported an integrity failure from `source` at `at`.
    IntegrityFailure {
        /// Receiving accelerator.
        at: AcceleratorId,
        /// Offending source.
        source: AcceleratorId,
    },
    /// A link moved to a spare port; routes and keys through it are re-established from scratch.
    PortMigration(AcceleratorId),
    /// The accelerator was reset.
    DeviceReset(AcceleratorId),
    /// The tenant was offboarded.
    Offboarding(TenantId),
    /// The grant behind the attachment reached its expiry on the fabric clock.
    GrantExpired,
}

/// Scope of a revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevokeScope {
    /// The whole buffer: every attachment revoked, the buffer is DEAD.
    Buffer(BufferHandle),
    /// The attachments the cause affects (counted in the event); their buffers stay live for others.
    Attachments,
}

/// One audit record. Every decision the driver takes produces exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditEvent {
    /// A buffer was exported (or an existing export returned again).
    Export {
        /// The owner.
        tenant: TenantId,
        /// The owner's OS instance.
        os: OsInstanceId,
        /// The handle.
        handle: BufferHandle,
        /// Bytes exported.
        len: u64,
    },
    /// An attach was allowed.
    AttachAllowed {
        /// The buffer.
        handle: BufferHandle,
        /// The new attachment.
        attachment: AttachmentId,
        /// Importer tenant.
        tenant: TenantId,
        /// Importer OS instance.
        os: OsInstanceId,
        /// Importer accelerator.
        accel: AcceleratorId,
        /// Rights of the attachment.
        rights: Rights,
        /// The grant that allowed it (None for an import inside one tenant and OS instance).
        grant: Option<GrantId>,
    },
    /// An attach was refused by the gate.
    AttachDenied {
        /// The buffer named by the caller.
        handle: BufferHandle,
        /// Importer tenant.
        tenant: TenantId,
        /// Importer OS instance.
        os: OsInstanceId,
        /// Why.
        reason: Denial,
        /// The errno returned.
        errno: Errno,
    },
    /// A mapping was opened.
    Map {
        /// The attachment.
        attachment: AttachmentId,
        /// The mapping.
        mapping: MappingId,
    },
    /// A map was refused by the cached gate check.
    MapDenied {
        /// The attachment.
        attachment: AttachmentId,
        /// Why.
        reason: Denial,
    },
    /// A mapping was closed by its importer.
    Unmap {
        /// The attachment.
        attachment: AttachmentId,
    },
    /// An attachment was detached by its importer.
    Detach {
        /// The attachment.
        attachment: AttachmentId,
    },
    /// Access was revoked.
    Revoke {
        /// Buffer or single attachment.
        scope: RevokeScope,
        /// Why.
        cause: RevokeCause,
        /// Attachments revoked.
        attachments: u32,
        /// Mappings zapped.
        mappings: u32,
        /// Time spent draining in-flight transfers (fabric clock).
        drain_ns: u64,
        /// Mappings whose drain hit the bound (their stragglers fault).
        drain_timeouts: u32,
        /// Hardware calls that failed during the revocation (it completes anyway, failing closed).
        hw_errors: u32,
    },
    /// The TSM signing key was rotated.
    KeyRotated {
        /// The rotation sequence number.
        seq: u64,
    },
    /// A key rotation message was refused.
    KeyRotationDenied {
        /// Why.
        reason: Denial,
    },
    /// A TDI's mirrored state or epoch changed.
    TdiUpdate {
        /// The accelerator.
        accel: AcceleratorId,
        /// Now in RUN?
        run: bool,
        /// The new epoch.
        epoch: u64,
    },
    /// A hardware fault was processed.
    Fault(FaultReport),
    /// A routing entry differs from the driver's shadow table (written behind the driver's back); the
    /// driver restored it to its shadow value.
    RouteTampered {
        /// The destination accelerator of the entry.
        dest: AcceleratorId,
    },
}

/// Receives audit events. The embedding forwards them to the TSM's append-only log.
pub trait AuditSink {
    /// Records one event. Must not block.
    fn record(&self, event: &AuditEvent);
}

/// Delivers invalidations to dynamic importers (dma_buf `move_notify`).
pub trait InvalidateSink {
    /// The mapping of `attachment` (importer cookie `cookie`) is being revoked: the importer must stop
    /// issuing transfers and drop it. Must not block.
    fn move_notify(&self, cookie: u64, attachment: AttachmentId);
}

/// A sink that drops every event and notification (for embeddings that have not wired a log yet, and
/// for fuzzing). Production embeddings forward audit events to the TSM's append-only log.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullSink;

impl AuditSink for NullSink {
    fn record(&self, _event: &AuditEvent) {}
}

impl InvalidateSink for NullSink {
    fn move_notify(&self, _cookie: u64, _attachment: AttachmentId) {}
}
