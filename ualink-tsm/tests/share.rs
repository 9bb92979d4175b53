//! Cross-tenant sharing decided by the TSM: an allowed share whose grant the driver accepts
//! and whose bytes cross encrypted links; a denied one naming its rule; re-attestation after a
//! firmware tamper revokes what crossed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ualink_attest::audit::{DecisionKind, Outcome};
use ualink_kdrv::ids::{BufferHandle, OsInstanceId, Rights, TenantId, WindowId};
use ualink_kdrv::{AttachRequest, FileCtx};
use ualink_policy::input::Right;
use ualink_sim::measurement::{MeasurementKind, Tamper};
use ualink_sim::AccelId;
use ualink_tsm::{DeviceStatus, ShareRequest, Tsm, TsmError};

fn id(v: u16) -> AccelId {
    AccelId::new(v).unwrap()
}

/// Tenant A (1: accelerators 1, 2) and B (2: 3, 4), keyed, TDIs 1 and 3 running, A exported
/// 4 KiB of accelerator 1's memory filled with 0xa5.
fn setup(dir: &std::path::Path) -> (Tsm, BufferHandle) {
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
    (t, handle)
}

fn request(handle: BufferHandle, rights: Vec<Right>) -> ShareRequest {
    ShareRequest {
        exporter_tenant: 1,
        exporter_os: 10,
        exporter_accel: 1,
        buffer: handle,
        importer_tenant: 2,
        importer_os: 20,
        importer_accel: 3,
        rights,
    }
}

fn attach(t: &mut Tsm, handle: BufferHandle, grant: &[u8]) -> ualink_kdrv::ids::AttachmentId {
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
                grant: Some(grant),
            },
        )
        .unwrap();
    t.driver_mut().map(&fb, att).unwrap();
    att
}

#[test]
fn an_allowed_share_moves_encrypted_bytes_and_a_denied_one_names_its_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, handle) = setup(dir.path());
    assert!(
        t.pod().read(id(3), id(1), 0x1_1000, 16).is_err(),
        "no grant, no bytes"
    );
    // Denied: the pair allows only reads.
    let e = t
        .share(&request(handle, vec![Right::Read, Right::Write]))
        .unwrap_err();
    match &e {
        TsmError::PolicyDenied { rules, .. } => {
            assert!(
                rules.iter().any(|r| r == "deny.excessive_rights"),
                "{rules:?}"
            )
        }
        other => panic!("{other}"),
    }
    // Allowed.
    let g = t.share(&request(handle, vec![Right::Read])).unwrap();
    assert!(
        g.rules.iter().any(|r| r == "allow.listed_share_pair"),
        "{:?}",
        g.rules
    );
    attach(&mut t, handle, &g.grant);
    t.pod().capture_wire(true).unwrap();
    assert_eq!(
        t.pod().read(id(3), id(1), 0x1_1000, 0x1000).unwrap(),
        vec![0xa5; 0x1000]
    );
    for c in t.pod().captured().unwrap() {
        assert!(
            !c.bytes.windows(64).any(|w| w == [0xa5; 64]),
            "plaintext on the wire"
        );
    }
    assert!(t.pod().leaks().unwrap().is_empty());
    // Single use: the same grant cannot attach again.
    let fb = FileCtx::tenant(TenantId(2), OsInstanceId(20));
    assert!(t
        .driver_mut()
        .attach(
            &fb,
            &AttachRequest {
                handle,
                importer_accel: id(3).to_kdrv(),
                rights: Rights::READ,
                invalidate_cookie: None,
                grant: Some(&g.grant),
            },
        )
        .is_err());
    // Both outcomes audited with their rules.
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let shares: Vec<_> = records(dir.path(), &key)
        .into_iter()
        .filter(|r| r.kind() == DecisionKind::Share)
        .collect();
    assert_eq!(shares.len(), 2);
    assert_eq!(shares[0].outcome(), Outcome::Deny);
    assert!(shares[0]
        .rules()
        .iter()
        .any(|r| r == "deny.excessive_rights"));
    assert_eq!(shares[1].outcome(), Outcome::Allow);
    assert!(shares[1].inputs().iter().any(|i| i.name == "grant"));
}

#[test]
fn a_tamper_found_at_reattestation_quarantines_and_revokes_the_share() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, handle) = setup(dir.path());
    let g = t.share(&request(handle, vec![Right::Read])).unwrap();
    attach(&mut t, handle, &g.grant);
    assert!(t.pod().read(id(3), id(1), 0x1_1000, 16).is_ok());
    t.pod()
        .tamper_measurement(
            id(1),
            MeasurementKind::Firmware,
            Tamper::FlipBit { offset: 3 },
        )
        .unwrap();
    let d = t.reattest(1).unwrap();
    assert!(
        matches!(d.status, DeviceStatus::Quarantined { .. }),
        "{d:?}"
    );
    assert!(t.pod().read(id(3), id(1), 0x1_1000, 16).is_err(), "revoked");
    assert!(t.pod().leaks().unwrap().is_empty());
    // No new share from a quarantined device.
    let e = t.share(&request(handle, vec![Right::Read])).unwrap_err();
    assert!(matches!(e, TsmError::PolicyDenied { .. }), "{e}");
}

#[test]
fn the_auditor_report_over_the_state_directory_verifies_and_replays() {
    use ualink_attest::report::{audit, AuditInputs};
    let dir = tempfile::tempdir().unwrap();
    let (mut t, handle) = setup(dir.path());
    t.share(&request(handle, vec![Right::Read, Right::Write]))
        .unwrap_err();
    t.share(&request(handle, vec![Right::Read])).unwrap();
    t.rotate(1, 2).unwrap();
    let mut device_anchors = ualink_spdm::cert_chain::TrustAnchors::new();
    for (_, der) in t.pod().vendor_roots() {
        device_anchors.add_der(&der).unwrap();
    }
    t.shutdown().unwrap();
    let platform =
        ualink_attest::sim::SimPlatform::load_or_create(&dir.path().join("sim-platform")).unwrap();
    let inputs = AuditInputs {
        key_file: None,
        policy: Some(ualink_policy::PolicyBundle::load(dir.path().join("policy")).unwrap()),
        tee_anchors: platform.trust_anchors().unwrap(),
        device_anchors,
        trusted_checkpoints: Vec::new(),
    };
    let log = std::fs::read(dir.path().join("audit.log")).unwrap();
    let report = audit(&log, &inputs);
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
}

#[test]
fn offboarding_stops_tdis_revokes_shares_zeroizes_keys_and_frees_the_accelerators() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, handle) = setup(dir.path());
    let g = t.share(&request(handle, vec![Right::Read])).unwrap();
    attach(&mut t, handle, &g.grant);
    assert!(t.pod().read(id(3), id(1), 0x1_1000, 16).is_ok());
    t.offboard(1).unwrap();
    // The share is gone, A's links are dead, its TDI is unlocked, its accelerators are free.
    assert!(t.pod().read(id(3), id(1), 0x1_1000, 16).is_err());
    assert!(t.pod().write(id(1), id(2), 0, b"x").is_err());
    assert!(!t.link_keys_live(1, 2).unwrap());
    assert!(!t.link_keys_live(1, 3).unwrap());
    assert_eq!(
        t.driver().tdi(id(1).to_kdrv()).unwrap().0,
        ualink_kdrv::TdiState::ConfigUnlocked
    );
    assert!(t.vpod(1).unwrap().is_none());
    assert!(t.tenants().unwrap().iter().all(|x| x.id != 1));
    // B is untouched and the freed accelerators can form a new vPod.
    assert!(t.link_keys_live(3, 4).unwrap());
    t.tenant_add(5, "tenant-c").unwrap();
    t.vpod_create(5, &[1, 2]).unwrap();
    assert!(t.pod().leaks().unwrap().is_empty());
}
