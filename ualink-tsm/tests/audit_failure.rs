//! If the audit log cannot be written, the TSM refuses new decisions instead of deciding
//! unlogged, and nothing that was refused changed state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod full_disk;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use full_disk::FullDisk;
use ualink_attest::audit::AuditLogWriter;
use ualink_policy::PolicyBundle;
use ualink_sim::SimPod;
use ualink_tsm::audit::AuditLog;
use ualink_tsm::store::MemoryStore;
use ualink_tsm::{DeviceStatus, Tsm, TsmConfig, TsmError};

#[test]
fn a_log_that_cannot_be_written_refuses_decisions_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(3);
    let pod = SimPod::new(&spec).unwrap();
    let bundle = PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay(&pod, &spec))
        .unwrap();
    // The identity record and two verdicts fit.
    let budget = Arc::new(AtomicU64::new(3));
    let b2 = budget.clone();
    let path = dir.path().join("audit.log");
    let mut t = Tsm::open_with_audit(
        TsmConfig::new(dir.path(), bundle),
        pod,
        Box::new(MemoryStore::new()),
        move |id| {
            let inner = AuditLogWriter::create(&path).unwrap();
            Ok(AuditLog::with_backend(
                Box::new(FullDisk { inner, budget: b2 }),
                id.checkpoint_signer()?,
                1000,
            ))
        },
    )
    .unwrap();
    // Bring-up commits its verdicts as one group: the disk fills within it (two of three
    // records fit), so the group is not acknowledged and no device is admitted.
    let e = t.bring_up().unwrap_err();
    assert!(matches!(e, TsmError::AuditUnavailable(_)), "{e}");
    for d in t.devices() {
        assert_eq!(d.status, DeviceStatus::Pending, "{d:?}");
        assert_eq!(d.epoch, 0);
    }
    // Later decisions are refused even though the disk "recovered": the log is poisoned.
    budget.store(100, Ordering::SeqCst);
    assert!(!t.audit().is_writable());
    let e = t.reattest(1).unwrap_err();
    assert!(matches!(e, TsmError::AuditUnavailable(_)), "{e}");
    assert_eq!(t.device(1).unwrap().epoch, 0, "refused before any change");
    let e = t.tenant_add(1, "tenant-a").unwrap_err();
    assert!(matches!(e, TsmError::AuditUnavailable(_)), "{e}");
    assert_eq!(e.fault(), ualink_tsm::Fault::Platform);
    assert!(t.tenants().unwrap().is_empty(), "nothing stored");
    // What was logged is intact (the two records that reached the disk, never acted on).
    let key = t.identity().public_key().to_vec();
    assert_eq!(records(dir.path(), &key).len(), 3);
}
