//! Fault scenarios on the real components, in process: a device reset in the middle of the
//! SPDM handshake and under a live share, a link flap, a port migration with re-keying, a
//! full disk under the audit log, and an importer that crashes mid-import. Each asserts what
//! stopped, what was revoked, what was (or was not) written, and an empty leak oracle.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../../../ualink-tsm/tests/full_disk/mod.rs"]
mod full_disk;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ualink_attest::audit::{AuditLogWriter, DecisionKind};
use ualink_kdrv::ids::{AttachmentId, OsInstanceId, TenantId};
use ualink_kdrv::ops::FaultReport;
use ualink_kdrv::{Errno, FileCtx};
use ualink_sim::{PortIndex, SimError, SimPod};
use ualink_spdm::requester::driver::{attest, SpdmIo};
use ualink_spdm::requester::{Requester, RequesterConfig};
use ualink_spdm::transport::MessageKind;
use ualink_tsm::audit::AuditLog;
use ualink_tsm::mailbox::Mailbox;
use ualink_tsm::store::MemoryStore;
use ualink_tsm::{Tsm, TsmConfig, TsmError};

use common::*;
use full_disk::FullDisk;

fn tsm_ctx() -> FileCtx {
    FileCtx::tsm(OsInstanceId(0))
}

fn fb() -> FileCtx {
    FileCtx::tenant(TenantId(TB), OsInstanceId(OS_B))
}

/// B attached and mapped A's buffer through a real grant.
fn shared(dir: &std::path::Path) -> (Tsm, AttachmentId) {
    let (mut t, h) = two_tenants(dir);
    let g = t.share(&read_request(h)).unwrap();
    let att = attach_b(&mut t, h, Some(&g.grant)).unwrap();
    t.driver_mut().map(&fb(), att).unwrap();
    assert_eq!(
        t.pod().read(id(3), id(1), BUF_ADDR, 4).unwrap(),
        vec![SECRET; 4]
    );
    (t, att)
}

fn revoked(t: &Tsm, att: AttachmentId) -> bool {
    t.driver().gate_check(&fb(), att).map_err(Errno::from) == Err(Errno::EIDRM)
}

/// The TSM's mailbox to a device, resetting the device after `after` requests.
struct ResettingMailbox<'a> {
    inner: Mailbox<'a>,
    pod: &'a SimPod,
    accel: ualink_sim::AccelId,
    sent: u32,
    after: u32,
}

impl SpdmIo for ResettingMailbox<'_> {
    fn send(&mut self, kind: MessageKind, msg: &[u8]) -> std::io::Result<()> {
        self.sent += 1;
        if self.sent == self.after {
            self.pod.reset_device(self.accel).unwrap();
        }
        self.inner.send(kind, msg)
    }
    fn receive(&mut self) -> std::io::Result<(MessageKind, Vec<u8>)> {
        self.inner.receive()
    }
}

fn anchors(pod: &SimPod) -> Arc<ualink_spdm::cert_chain::TrustAnchors> {
    let mut a = ualink_spdm::cert_chain::TrustAnchors::new();
    for (_, der) in pod.vendor_roots() {
        a.add_der(&der).unwrap();
    }
    Arc::new(a)
}

/// The device resets just before the requester's 2nd, 3rd, ... last message (VCA,
/// certificate, measurements, key exchange, finish): the reset loses the responder's
/// connection state, transcripts and handshake keys, so the handshake is interrupted — the
/// requester gets an error, never an attestation, whole or partial — the reset is reported,
/// and a fresh handshake afterwards succeeds.
#[test]
fn device_reset_mid_handshake_never_yields_a_partial_attestation() {
    let spec = spec(1);
    let pod = SimPod::new(&spec).unwrap();
    let a = id(1);
    let anchors = anchors(&pod);
    // How many messages a clean handshake sends.
    let total = {
        let mut req = Requester::new(RequesterConfig::default(), anchors.clone()).unwrap();
        let mut io = ResettingMailbox {
            inner: Mailbox::new(&pod, a),
            pod: &pod,
            accel: a,
            sent: 0,
            after: u32::MAX,
        };
        attest(&mut req, &mut io).unwrap();
        io.sent
    };
    assert!(total >= 6, "{total} messages cannot be a whole handshake");
    for after in 2..=total {
        let mut req = Requester::new(RequesterConfig::default(), anchors.clone()).unwrap();
        let mut io = ResettingMailbox {
            inner: Mailbox::new(&pod, a),
            pod: &pod,
            accel: a,
            sent: 0,
            after,
        };
        match attest(&mut req, &mut io) {
            Err(e) => eprintln!("reset before message {after} of {total}: {e}"),
            Ok(att) => panic!(
                "reset before message {after} of {total} went unnoticed: session {:?}",
                att.session_id
            ),
        }
        let f = pod.take_fault().unwrap();
        assert!(matches!(f, Some(FaultReport::DeviceReset { .. })), "{f:?}");
        // After the reset, a clean handshake works.
        let mut req = Requester::new(RequesterConfig::default(), anchors.clone()).unwrap();
        let att = attest(&mut req, &mut Mailbox::new(&pod, a)).unwrap();
        assert!(att.measurements.is_some() && att.session_id.is_some());
    }
}

/// A device reset under a live share: keys, window permissions and memory are gone on the
/// device, the driver revokes the share on the fault report, and B reads nothing; the TSM
/// re-attests and re-keys the pod, and only a new grant brings B back.
#[test]
fn device_reset_under_a_live_share_revokes_it_and_rekeying_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, att) = shared(dir.path());
    t.pod().reset_device(id(1)).unwrap();
    let e = t.pod().read(id(3), id(1), BUF_ADDR, 4).unwrap_err();
    assert!(
        matches!(e, SimError::Key { .. } | SimError::WindowDenied { .. }),
        "{e:?}"
    );
    assert!(t.driver_mut().process_faults(&tsm_ctx(), 16).unwrap() >= 1);
    assert!(revoked(&t, att));
    assert_no_leaks(t.pod());
    // Memory was scrubbed by the reset: the secret is gone from the device.
    assert_ne!(
        t.pod().local_read(id(1), BUF_ADDR, 4).unwrap(),
        vec![SECRET; 4]
    );
    // Recovery: fresh attestation, then fresh keys on both links.
    assert_eq!(
        t.reattest(1).unwrap().status,
        ualink_tsm::DeviceStatus::Attested
    );
    t.key_link(1, 2).unwrap();
    t.key_link(1, 3).unwrap();
    assert!(t.link_keys_live(1, 3).unwrap());
    assert!(
        t.pod().read(id(3), id(1), BUF_ADDR, 4).is_err(),
        "no grant, no bytes"
    );
    assert_no_leaks(t.pod());
}

/// A device reset under a running TDI and the TSM's live SPDM session: the device's session
/// and TDI are gone (it is CONFIG_UNLOCKED again), so the TSM's next request in the old
/// session fails instead of programming keys into a device that forgot who it talks to;
/// processing the fault report quarantines the device (its TDI marked in error) until a
/// fresh attestation, after which keys can be programmed again.
#[test]
fn device_reset_kills_the_tsms_session_and_quarantines_until_reattested() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _h) = two_tenants(dir.path());
    assert_eq!(
        t.pod().tdi_state(id(1)).unwrap(),
        Some(ualink_spdm::tdisp::TdiState::Run)
    );
    t.pod().reset_device(id(1)).unwrap();
    assert_eq!(
        t.pod().tdi_state(id(1)).unwrap(),
        Some(ualink_spdm::tdisp::TdiState::ConfigUnlocked)
    );
    // Before the fault is processed, the TSM still holds its old session: it is dead.
    let e = t.key_link(1, 2).unwrap_err();
    assert!(
        matches!(&e, TsmError::Device { check, .. } if *check == "spdm-session"),
        "{e:?}"
    );
    let sum = t.process_faults().unwrap();
    assert!(sum.reset.contains(&1), "{sum:?}");
    assert!(sum.tdi_errors.contains(&1), "{sum:?}");
    assert!(
        matches!(
            t.device(1).unwrap().status,
            ualink_tsm::DeviceStatus::Quarantined { ref check, .. } if check == "reset"
        ),
        "{:?}",
        t.device(1).unwrap().status
    );
    assert!(t.key_link(1, 2).is_err(), "a quarantined device was keyed");
    assert_no_leaks(t.pod());
    assert_eq!(
        t.reattest(1).unwrap().status,
        ualink_tsm::DeviceStatus::Attested
    );
    t.key_link(1, 2).unwrap();
    assert!(t.link_keys_live(1, 2).unwrap());
    assert_no_leaks(t.pod());
}

/// A link flap on accelerator 1's port: both ends' slots stop, the driver revokes the share on
/// the LinkDown report, and traffic needs fresh keys after LinkUp.
#[test]
fn link_flap_stops_the_link_until_it_is_rekeyed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, att) = shared(dir.path());
    let port = t.pod().planes(id(1), id(3)).unwrap()[0].0;
    t.pod().link_flap(id(1), port).unwrap();
    let e = t.pod().read(id(3), id(1), BUF_ADDR, 4).unwrap_err();
    assert!(matches!(e, SimError::Key { .. }), "{e:?}");
    assert!(t.driver_mut().process_faults(&tsm_ctx(), 16).unwrap() >= 2);
    assert!(revoked(&t, att));
    assert!(!t.link_keys_live(1, 3).unwrap() || t.pod().write(id(1), id(2), 0, b"x").is_err());
    assert_no_leaks(t.pod());
    t.key_link(1, 3).unwrap();
    assert!(t.link_keys_live(1, 3).unwrap());
    // The old attachment stays revoked; a new grant would be needed.
    assert!(t.pod().read(id(3), id(1), BUF_ADDR, 4).is_err());
    assert_no_leaks(t.pod());
}

/// Port migration: accelerator 1's port fails over to its spare. Keys on the old port are
/// zeroized, the new port starts with none, the driver re-points routes and revokes the
/// share; after re-keying, A's own traffic flows over the new port.
#[test]
fn port_migration_rekeys_both_ends_before_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, att) = shared(dir.path());
    t.window_create(TA, 2, 0, 0x1000).unwrap();
    t.pod().write(id(1), id(2), 0x10, b"old port").unwrap();
    let from = t.pod().planes(id(1), id(2)).unwrap()[0].0;
    let spare = PortIndex(from.0 + 1);
    t.pod().migrate_port(id(1), from, spare).unwrap();
    let e = t.pod().write(id(1), id(2), 0x10, b"too soon").unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Key { .. }
                | SimError::LinkDown(_)
                | SimError::RoutingDenied { .. }
                | SimError::NoRoute { .. }
        ),
        "{e:?}"
    );
    assert!(t.driver_mut().process_faults(&tsm_ctx(), 16).unwrap() >= 1);
    assert!(revoked(&t, att));
    assert_no_leaks(t.pod());
    t.key_link(1, 2).unwrap();
    t.pod().write(id(1), id(2), 0x10, b"new port").unwrap();
    assert_eq!(t.pod().local_read(id(2), 0x10, 8).unwrap(), b"new port");
    assert!(t.pod().read(id(3), id(1), BUF_ADDR, 4).is_err());
    assert_no_leaks(t.pod());
}

/// The disk under the audit log fills up just before a share decision: the share is refused
/// (no grant leaves the TSM), B cannot import, nothing half-written is in the log, and the
/// TSM stays refusing rather than deciding unlogged.
#[test]
fn disk_full_on_the_audit_log_refuses_the_share_and_writes_nothing_half() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(4);
    let pod = SimPod::new(&spec).unwrap();
    let b = bundle(&pod, &spec);
    let budget = Arc::new(AtomicU64::new(u64::MAX));
    let b2 = budget.clone();
    let path = dir.path().join("audit.log");
    let mut t = Tsm::open_with_audit(
        TsmConfig::new(dir.path(), b),
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
    t.bring_up().unwrap();
    t.tenant_add(TA, "tenant-a").unwrap();
    t.tenant_add(TB, "tenant-b").unwrap();
    t.vpod_create(TA, &[1, 2]).unwrap();
    t.vpod_create(TB, &[3, 4]).unwrap();
    t.provision_keys(TA).unwrap();
    t.provision_keys(TB).unwrap();
    t.key_link(1, 3).unwrap();
    for (tenant, a) in [(TA, 1), (TB, 3)] {
        t.tdi_lock(tenant, a).unwrap();
        t.tdi_accept(tenant, a, &format!("cvm-test-{tenant}"))
            .unwrap();
    }
    let w = t.window_create(TA, 1, 0x1_0000, 0x1_0000).unwrap();
    let fa = FileCtx::tenant(TenantId(TA), OsInstanceId(OS_A));
    let h = t
        .driver_mut()
        .export(&fa, ualink_kdrv::ids::WindowId(w), 0x1000, 0x1000)
        .unwrap();
    let before = t.audit().size();
    budget.store(0, Ordering::SeqCst);
    let e = t.share(&read_request(h)).unwrap_err();
    assert!(matches!(e, TsmError::AuditUnavailable(_)), "{e}");
    assert_eq!(e.fault(), ualink_tsm::Fault::Platform);
    assert_eq!(attach_b(&mut t, h, None), Err(Errno::EACCES));
    assert_b_reads_nothing(&t);
    // The disk recovers, but the TSM keeps refusing: it never decides unlogged.
    budget.store(100, Ordering::SeqCst);
    let e = t.share(&read_request(h)).unwrap_err();
    assert!(matches!(e, TsmError::AuditUnavailable(_)), "{e}");
    // What is on disk verifies, holds every record acknowledged before, and no share.
    let key = t.identity().public_key().to_vec();
    drop(t);
    let bytes = std::fs::read(dir.path().join("audit.log")).unwrap();
    let v = ualink_attest::audit::verify_log(
        &bytes,
        &ualink_attest::audit::CheckpointVerifier::new(&key),
        &[],
    )
    .unwrap();
    assert_eq!(v.size(), before);
    let recs: Vec<_> = (0..v.size())
        .map(|i| v.record(&bytes, i).unwrap())
        .collect();
    assert!(recs.iter().all(|r| r.kind() != DecisionKind::Share));
}

/// The importer got a grant and attached, then crashed before mapping (its process is gone;
/// nobody detaches). The attachment does not dangle: it maps nothing, and when the grant
/// expires the driver's timer revokes it.
#[test]
fn importer_crashing_mid_import_leaves_no_dangling_attachment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    let g = t.share(&read_request(h)).unwrap();
    let att = attach_b(&mut t, h, Some(&g.grant)).unwrap();
    // Crash: no map, no detach. Nothing crosses meanwhile.
    assert_b_reads_nothing(&t);
    assert_eq!(t.driver().mappings().count(), 0);
    let now = t.pod().now_ns().unwrap();
    t.pod().advance_clock(g.expiry_ns - now + 1).unwrap();
    assert!(t.driver_mut().tick().unwrap() >= 1);
    assert!(revoked(&t, att));
    // A restarted importer cannot pick it up again with the same grant.
    let e = attach_b(&mut t, h, Some(&g.grant)).unwrap_err();
    assert!(e == Errno::EKEYEXPIRED || e == Errno::EALREADY, "{e:?}");
    assert_b_reads_nothing(&t);
}
