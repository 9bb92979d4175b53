//! Hardware faults and TDISP errors: a locked configuration written behind the TSM's back and
//! a UALinkSec integrity failure on the wire, each turned into a TDI ERROR, revocation and
//! audit records by `Tsm::process_faults`; a device reset quarantines until re-attestation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ualink_attest::audit::event::AuditEvent;
use ualink_attest::audit::{DecisionKind, Outcome};
use ualink_kdrv::ids::{BufferHandle, OsInstanceId, Rights, TenantId, WindowId};
use ualink_kdrv::{AttachRequest, FileCtx, TdiState};
use ualink_policy::input::Right;
use ualink_sim::sim::WireTamper;
use ualink_sim::AccelId;
use ualink_tsm::{DeviceStatus, ShareRequest, Tsm, TsmError};

fn id(v: u16) -> AccelId {
    AccelId::new(v).unwrap()
}

/// Tenant A (1: accelerators 1, 2) and B (2: 3, 4), keyed, TDIs 1 and 3 running, an allowed
/// read share of 4 KiB of accelerator 1 attached and mapped by B on accelerator 3.
fn shared(dir: &std::path::Path) -> Tsm {
    let mut t = tsm(4, dir);
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.tenant_add(2, "tenant-b").unwrap();
    t.vpod_create(1, &[1, 2]).unwrap();
    t.vpod_create(2, &[3, 4]).unwrap();
    t.provision_keys(1).unwrap();
    t.provision_keys(2).unwrap();
    t.key_link(1, 3).unwrap();
    for (tenant, a) in [(1, 1), (2, 3)] {
        t.tdi_lock(tenant, a).unwrap();
        t.tdi_accept(tenant, a, &format!("cvm-test-{tenant}"))
            .unwrap();
    }
    let w = t.window_create(1, 1, 0x1_0000, 0x1_0000).unwrap();
    let fa = FileCtx::tenant(TenantId(1), OsInstanceId(10));
    let handle = t
        .driver_mut()
        .export(&fa, WindowId(w), 0x1000, 0x1000)
        .unwrap();
    t.pod()
        .local_write(id(1), 0x1_1000, &[0xa5; 0x1000])
        .unwrap();
    let g = t.share(&request(handle)).unwrap();
    let fb = FileCtx::tenant(TenantId(2), OsInstanceId(20));
    let att = t
        .driver_mut()
        .attach(
            &fb,
            &AttachRequest {
                handle,
                importer_accel: id(3).to_kdrv(),
                rights: Rights::READ,
                invalidate_cookie: Some(0xB),
                grant: Some(&g.grant),
            },
        )
        .unwrap();
    t.driver_mut().map(&fb, att).unwrap();
    assert_eq!(
        t.pod().read(id(3), id(1), 0x1_1000, 16).unwrap(),
        vec![0xa5; 16]
    );
    t
}

fn request(handle: BufferHandle) -> ShareRequest {
    ShareRequest {
        exporter_tenant: 1,
        exporter_os: 10,
        exporter_accel: 1,
        buffer: handle,
        importer_tenant: 2,
        importer_os: 20,
        importer_accel: 3,
        rights: vec![Right::Read],
    }
}

fn tdi_errors(dir: &std::path::Path, key: &[u8]) -> Vec<(u16, String)> {
    records(dir, key)
        .into_iter()
        .filter_map(|r| match r.event() {
            Some(AuditEvent::TdiError {
                accelerator_id,
                cause,
                ..
            }) => Some((*accelerator_id, cause.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_write_to_a_locked_configuration_errors_the_tdi_and_revokes_the_share() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = shared(dir.path());
    // Nothing to report yet.
    let quiet = t.process_faults().unwrap();
    assert!(
        quiet.tdi_errors.is_empty() && quiet.faults.is_empty(),
        "{quiet:?}"
    );
    // The host writes the running TDI's configuration behind the TSM's back.
    t.pod()
        .host_write_tdi_config(id(1), ualink_sim::device::SIM_TDI as u16, 0x10, &[1, 2])
        .unwrap();
    let s = t.process_faults().unwrap();
    assert_eq!(s.tdi_errors, vec![1], "{s:?}");
    assert_eq!(
        t.driver().tdi(id(1).to_kdrv()).map(|(s, _)| s),
        Some(TdiState::Error)
    );
    // What relied on the TDI is revoked; a new share is denied.
    assert!(t.pod().read(id(3), id(1), 0x1_1000, 16).is_err(), "revoked");
    let e = t.share(&request(BufferHandle([0; 16]))).unwrap_err();
    assert!(matches!(e, TsmError::PolicyDenied { .. }), "{e}");
    // Reported once: the TDI is ERROR now, a second poll finds nothing new to mirror.
    assert!(t.process_faults().unwrap().tdi_errors.is_empty());
    // STOP brings it back to CONFIG_UNLOCKED, out of the TSM's hands.
    t.tdi_stop(1, 1).unwrap();
    assert!(t.process_faults().unwrap().tdi_errors.is_empty());
    assert!(t.pod().leaks().unwrap().is_empty());
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let errs = tdi_errors(dir.path(), &key);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, 1);
    assert!(errs[0].1.contains("locked configuration"), "{errs:?}");
}

#[test]
fn an_integrity_failure_drops_the_pairs_keys_and_errors_the_receiving_tdi() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = shared(dir.path());
    // One flipped ciphertext bit on the next transaction (the request from 3 to 1).
    t.pod()
        .tamper_next_wire(WireTamper { offset: 20, xor: 1 })
        .unwrap();
    assert!(t.pod().read(id(3), id(1), 0x1_1000, 16).is_err());
    let s = t.process_faults().unwrap();
    assert!(
        s.faults
            .iter()
            .any(|f| f.contains("integrity failure at accel-0001")),
        "{s:?}"
    );
    assert_eq!(s.stopped_pairs, vec![(1, 3)]);
    assert!(s.tdi_errors.contains(&1), "{s:?}");
    assert!(!t.link_keys_live(1, 3).unwrap());
    assert!(t.pod().read(id(3), id(1), 0x1_1000, 16).is_err());
    // The other tenant's own links are untouched.
    assert!(t.link_keys_live(3, 4).unwrap());
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    assert!(recs.iter().any(|r| r.kind() == DecisionKind::KeyRotation
        && r.outcome() == Outcome::Deny
        && r.rules().iter().any(|x| x == "check.integrity")));
    let errs = tdi_errors(dir.path(), &key);
    assert!(
        errs.iter()
            .any(|(a, c)| *a == 1 && c.contains("integrity failure")),
        "{errs:?}"
    );
}

#[test]
fn a_device_reset_quarantines_it_until_reattested() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = shared(dir.path());
    t.pod().reset_device(id(3)).unwrap();
    let s = t.process_faults().unwrap();
    assert_eq!(s.reset, vec![3], "{s:?}");
    assert!(s.tdi_errors.contains(&3), "{s:?}");
    assert!(matches!(
        t.device(3).unwrap().status,
        DeviceStatus::Quarantined { ref check, .. } if check == "reset"
    ));
    assert!(!t.link_keys_live(3, 4).unwrap());
    assert!(t.pod().read(id(3), id(1), 0x1_1000, 16).is_err());
    // Fresh attestation brings it back (a new epoch); keys are provisioned again.
    assert_eq!(t.reattest(3).unwrap().status, DeviceStatus::Attested);
    t.provision_keys(2).unwrap();
    assert!(t.link_keys_live(3, 4).unwrap());
}
