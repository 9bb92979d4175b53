//! Devices that lie: tampered firmware, a certificate from an untrusted root, a chain swapped
//! after a session was established, an SPDM version downgrade, replayed signed measurements
//! (the old nonce), forged signatures and malformed responses. The TSM quarantines each one
//! with an audit record naming the failed check; a quarantined device gets no vPod, no keys,
//! and nothing it shared survives.

use ualink_attest::audit::{DecisionKind, Outcome};
use ualink_sim::device::ResponderFault;
use ualink_sim::measurement::{MeasurementKind, Tamper};
use ualink_sim::SimPod;
use ualink_tsm::{DeviceStatus, TsmError};

use crate::common::*;

/// Brings up a 3-device pod where `attack` was applied to accelerator 2 first; returns the
/// quarantine check and the verified log.
fn quarantined_at_bring_up(
    attack: impl FnOnce(&SimPod),
) -> (String, Vec<ualink_attest::audit::AuditRecord>) {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(3);
    let pod = SimPod::new(&spec).unwrap();
    attack(&pod);
    let mut t = tsm_on(pod, &spec, dir.path());
    let r = t.bring_up().unwrap();
    assert_eq!(r.attested, vec![1, 3], "{r:?}");
    let check = match t.device(2).unwrap().status {
        DeviceStatus::Quarantined { check, .. } => check,
        s => panic!("{s:?}"),
    };
    assert!(t.device_evidence(2).is_none());
    // A quarantined device can join no vPod.
    t.tenant_add(TA, "tenant-a").unwrap();
    let e = t.vpod_create(TA, &[1, 2]).unwrap_err();
    assert!(matches!(e, TsmError::Conflict(_)), "{e}");
    assert_no_leaks(t.pod());
    (check, close(t, dir.path()))
}

fn assert_quarantine_record(recs: &[ualink_attest::audit::AuditRecord], rule: &str) {
    assert_denied(recs, DecisionKind::DeviceAppraisal, "accel-0002", rule);
    assert!(recs
        .iter()
        .any(|r| r.event().is_some_and(|e| e.name() == "device-quarantined")));
}

#[test]
fn tampered_firmware_is_quarantined_by_the_reference_values() {
    let (check, recs) = quarantined_at_bring_up(|p| {
        p.tamper_measurement(
            id(2),
            MeasurementKind::Firmware,
            Tamper::FlipBit { offset: 17 },
        )
        .unwrap()
    });
    assert_eq!(check, "policy");
    assert_quarantine_record(&recs, "deny.measurement_mismatch");
}

#[test]
fn device_certificate_from_an_untrusted_root_is_quarantined() {
    let (check, recs) = quarantined_at_bring_up(|p| p.swap_certificate(id(2)).unwrap());
    assert_eq!(check, "certificate_chain");
    assert_quarantine_record(&recs, "check.certificate_chain");
}

/// The provider's policy requires SPDM 1.3; a device (or a man in the middle rewriting
/// VERSION) that offers only 1.2 negotiates 1.2, and the appraisal refuses it.
#[test]
fn spdm_version_downgrade_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(3);
    let pod = SimPod::new(&spec).unwrap();
    pod.responder_fault(id(2), ResponderFault::VersionDowngrade, true)
        .unwrap();
    let mut t = tsm_with(pod, &spec, dir.path(), |d| {
        d.insert("spdm".into(), serde_json::json!({"min_version": "1.3"}));
    });
    let r = t.bring_up().unwrap();
    assert_eq!(r.attested, vec![1, 3], "{r:?}");
    assert_eq!(r.quarantined, vec![(2, "policy".to_string())]);
    assert_no_leaks(t.pod());
    let recs = close(t, dir.path());
    assert_quarantine_record(&recs, "deny.spdm_version_too_old");
}

#[test]
fn forged_device_signatures_are_refused() {
    let (check, recs) = quarantined_at_bring_up(|p| {
        p.responder_fault(id(2), ResponderFault::BadSignature, true)
            .unwrap()
    });
    assert_eq!(check, "signature");
    assert_quarantine_record(&recs, "check.signature");
}

#[test]
fn malicious_responder_sending_malformed_messages_is_quarantined() {
    let (check, recs) = quarantined_at_bring_up(|p| {
        p.responder_fault(id(2), ResponderFault::Malformed, true)
            .unwrap()
    });
    assert!(["spdm", "transport"].contains(&check.as_str()), "{check}");
    assert_quarantine_record(&recs, &format!("check.{check}"));
}

/// A device that answers the re-attestation's fresh nonce with the signed measurements of the
/// previous round (an old nonce) is caught and quarantined; its link keys die.
#[test]
fn replayed_measurements_with_an_old_nonce_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _h) = two_tenants(dir.path());
    assert!(t.link_keys_live(1, 2).unwrap());
    t.pod()
        .responder_fault(id(2), ResponderFault::ReplayPrevious, true)
        .unwrap();
    let d = t.reattest(2).unwrap();
    let check = match d.status {
        DeviceStatus::Quarantined { check, .. } => check,
        s => panic!("{s:?}"),
    };
    assert!(["nonce", "signature"].contains(&check.as_str()), "{check}");
    assert!(!t.link_keys_live(1, 2).unwrap());
    assert!(t.pod().write(id(1), id(2), 0, b"x").is_err());
    assert_no_leaks(t.pod());
    let recs = close(t, dir.path());
    assert_denied(
        &recs,
        DecisionKind::DeviceAppraisal,
        "accel-0002",
        &format!("check.{check}"),
    );
}

/// After a good attestation and a live share, the device swaps its chain for a rogue one: the
/// next attestation refuses the chain, quarantines the device and revokes the share.
#[test]
fn certificate_chain_swapped_mid_session_is_caught_and_revokes_shares() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    let g = t.share(&read_request(h)).unwrap();
    let att = attach_b(&mut t, h, Some(&g.grant)).unwrap();
    let fb = ualink_kdrv::FileCtx::tenant(
        ualink_kdrv::ids::TenantId(TB),
        ualink_kdrv::ids::OsInstanceId(OS_B),
    );
    t.driver_mut().map(&fb, att).unwrap();
    assert_eq!(
        t.pod().read(id(3), id(1), BUF_ADDR, 4).unwrap(),
        vec![SECRET; 4]
    );
    t.pod().swap_certificate(id(1)).unwrap();
    let d = t.reattest(1).unwrap();
    assert!(
        matches!(&d.status, DeviceStatus::Quarantined { check, .. } if check == "certificate_chain"),
        "{d:?}"
    );
    assert_b_reads_nothing(&t);
    assert!(!t.link_keys_live(1, 3).unwrap());
    // No new share from it either.
    let e = t.share(&read_request(h)).unwrap_err();
    assert!(matches!(e, TsmError::PolicyDenied { .. }), "{e}");
    let recs = close(t, dir.path());
    assert_denied(
        &recs,
        DecisionKind::DeviceAppraisal,
        "accel-0001",
        "check.certificate_chain",
    );
    let s = shares(&recs);
    assert_eq!(s.last().unwrap().outcome(), Outcome::Deny);
}
