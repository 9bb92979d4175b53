//! The TSM core on the embedded simulated pod: bring-up, quarantine, vPods, restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ualink_attest::audit::{DecisionKind, Outcome};
use ualink_sim::measurement::{MeasurementKind, Tamper};
use ualink_sim::{AccelId, SimPod};
use ualink_tsm::{DeviceStatus, TsmError};

#[test]
fn bring_up_attests_all_eight_devices_and_audits_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(8, dir.path());
    // Progress is reported once per device as its attestation ends.
    let seen = std::sync::Mutex::new(Vec::new());
    let r = t
        .bring_up_with_progress(&|id| seen.lock().unwrap().push(id))
        .unwrap();
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, (1..=8).collect::<Vec<u16>>());
    assert_eq!(r.attested, (1..=8).collect::<Vec<u16>>(), "{r:?}");
    assert!(r.quarantined.is_empty());
    for d in t.devices() {
        assert_eq!(d.status, DeviceStatus::Attested);
        assert_eq!(d.epoch, 1);
        assert!(
            d.rules.iter().any(|r| r == "allow.reference_values_match"),
            "{:?}",
            d.rules
        );
        assert!(t.device_evidence(d.id).is_some());
    }
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    assert_eq!(recs.len(), 9);
    // The log opens with the TSM's identity, bound by its evidence.
    assert_eq!(recs[0].kind(), DecisionKind::Lifecycle);
    assert!(matches!(
        recs[0].event(),
        Some(ualink_attest::audit::event::AuditEvent::TsmIdentity { .. })
    ));
    for r in &recs[1..] {
        assert_eq!(r.kind(), DecisionKind::DeviceAppraisal);
        assert_eq!(r.outcome(), Outcome::Allow);
        assert!(r.policy().is_some());
        assert!(r.inputs().iter().any(|i| i.name == "spdm-evidence"));
        // Replayable: the recorded input under the recorded policy gives the same decision.
        let input: serde_json::Value = serde_json::from_str(r.policy_input().unwrap()).unwrap();
        let bundle = ualink_policy::PolicyBundle::load(dir.path().join("policy")).unwrap();
        assert_eq!(&bundle.digest(), r.policy().unwrap().as_bytes());
        let d = ualink_policy::PolicyEngine::new(&bundle)
            .evaluate(ualink_policy::DecisionKind::DeviceAppraisal, &input)
            .unwrap();
        assert!(d.allow);
        assert_eq!(d.rules, r.rules());
    }
}

#[test]
fn a_tampered_device_is_quarantined_with_a_record_naming_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(4);
    let pod = SimPod::new(&spec).unwrap();
    pod.tamper_measurement(
        AccelId::new(3).unwrap(),
        MeasurementKind::Firmware,
        Tamper::FlipBit { offset: 9 },
    )
    .unwrap();
    let mut t = tsm_on(pod, &spec, dir.path());
    let r = t.bring_up().unwrap();
    assert_eq!(r.attested, vec![1, 2, 4]);
    assert_eq!(r.quarantined, vec![(3, "policy".to_string())]);
    let d = t.device(3).unwrap();
    assert!(
        d.rules.iter().any(|r| r == "deny.measurement_mismatch"),
        "{:?}",
        d.rules
    );
    // No vPod with a quarantined device.
    t.tenant_add(1, "tenant-a").unwrap();
    let e = t.vpod_create(1, &[1, 3]).unwrap_err();
    assert!(matches!(e, TsmError::Conflict(_)), "{e}");
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    let bad: Vec<_> = recs
        .iter()
        .filter(|r| r.subject() == "accel-0003")
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].outcome(), Outcome::Deny);
    assert!(bad[0]
        .rules()
        .iter()
        .any(|r| r == "deny.measurement_mismatch"));
}

#[test]
fn vpods_refuse_duplicates_and_shared_accelerators_and_route_only_members() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(4, dir.path());
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.tenant_add(2, "tenant-b").unwrap();
    assert!(matches!(
        t.tenant_add(1, "again"),
        Err(TsmError::Conflict(_))
    ));
    assert!(matches!(
        t.vpod_create(1, &[1, 1]),
        Err(TsmError::InvalidRequest(_))
    ));
    t.vpod_create(1, &[1, 2]).unwrap();
    assert!(matches!(
        t.vpod_create(2, &[2, 3]),
        Err(TsmError::Conflict(_))
    ));
    t.vpod_create(2, &[3, 4]).unwrap();
    let w = t.window_create(1, 1, 0x1_0000, 0x1_0000);
    assert!(w.is_ok(), "{w:?}");
    // A window on another tenant's accelerator is refused by the driver.
    assert!(t.window_create(1, 3, 0, 0x1000).is_err());
}

#[test]
fn restart_from_the_same_state_resumes_tenants_and_vpods_and_the_log_continues() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(4);
    let key;
    {
        let mut t = tsm_on(SimPod::new(&spec).unwrap(), &spec, dir.path());
        t.bring_up().unwrap();
        t.tenant_add(1, "tenant-a").unwrap();
        t.vpod_create(1, &[1, 2]).unwrap();
        t.provision_keys(1).unwrap();
        key = t.identity().public_key().to_vec();
        t.shutdown().unwrap();
    }
    let mut t = tsm_on(SimPod::new(&spec).unwrap(), &spec, dir.path());
    assert_eq!(
        t.identity().public_key(),
        &key[..],
        "same TSM key after restart"
    );
    assert_eq!(t.tenants().unwrap().len(), 1);
    let r = t.bring_up().unwrap();
    assert_eq!(r.resumed_vpods, vec![1]);
    assert_eq!(t.vpod(1).unwrap().unwrap().members, vec![1, 2]);
    // Epochs continue from the store.
    assert_eq!(t.device(1).unwrap().epoch, 2);
    // The accelerator is taken again in the driver.
    assert!(matches!(t.vpod_create(1, &[3]), Err(TsmError::Conflict(_))));
    // Keys were re-provisioned with a new epoch (never persisted, never reused) and carry data.
    t.window_create(1, 2, 0, 0x1000).unwrap();
    let (a1, a2) = (AccelId::new(1).unwrap(), AccelId::new(2).unwrap());
    t.pod().write(a1, a2, 0x10, b"after restart").unwrap();
    let planes = t.pod().planes(a1, a2).unwrap();
    let info = t
        .pod()
        .slot_info(ualink_sim::SlotRef {
            accel: a1,
            port: planes[0].0,
            dir: ualink_sim::ualinksec::Direction::Tx,
            peer: a2,
        })
        .unwrap();
    assert_eq!(info.active.unwrap().0, 2);
    t.shutdown().unwrap();
    // Before the restart: identity, 4 verdicts, tenant, vPod, key records; after: 4
    // verdicts, key records, 1 window. One log, verified end to end.
    let keyed = 2 * planes.len();
    let recs = records(dir.path(), &key);
    assert_eq!(recs.len(), 12 + 2 * keyed);
    let lifecycle: Vec<_> = recs
        .iter()
        .filter_map(|r| r.event().map(|e| e.name()))
        .filter(|n| ["tenant-added", "vpod-formed", "window-carved"].contains(n))
        .collect();
    assert_eq!(
        lifecycle,
        vec!["tenant-added", "vpod-formed", "window-carved"]
    );
}

#[test]
fn reattestation_bumps_the_epoch_and_a_tamper_found_then_quarantines() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(2, dir.path());
    t.bring_up().unwrap();
    assert_eq!(t.reattest(1).unwrap().epoch, 2);
    t.pod()
        .tamper_measurement(
            AccelId::new(2).unwrap(),
            MeasurementKind::Firmware,
            Tamper::FlipBit { offset: 1 },
        )
        .unwrap();
    let d = t.reattest(2).unwrap();
    assert!(
        matches!(d.status, DeviceStatus::Quarantined { .. }),
        "{d:?}"
    );
    assert!(t.device_evidence(2).is_none());
    let (_, epoch) = t.driver().tdi(AccelId::new(2).unwrap().to_kdrv()).unwrap();
    assert_eq!(epoch, 1, "a failed attestation does not advance the epoch");
}

#[test]
fn a_quarantined_device_loses_its_link_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(2, dir.path());
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2]).unwrap();
    t.window_create(1, 2, 0, 0x1000).unwrap();
    t.provision_keys(1).unwrap();
    let (a1, a2) = (AccelId::new(1).unwrap(), AccelId::new(2).unwrap());
    t.pod().write(a1, a2, 0x10, b"ok").unwrap();
    t.pod()
        .tamper_measurement(a1, MeasurementKind::Firmware, Tamper::FlipBit { offset: 5 })
        .unwrap();
    assert!(matches!(
        t.reattest(1).unwrap().status,
        DeviceStatus::Quarantined { .. }
    ));
    assert!(t.pod().write(a1, a2, 0x10, b"no").is_err());
    assert!(t.pod().write(a2, a1, 0x10, b"no").is_err());
    assert!(!t.link_keys_live(1, 2).unwrap());
}

#[test]
fn keys_are_programmed_through_spdm_rx_before_tx_and_data_crosses_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(3, dir.path());
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2]).unwrap();
    t.window_create(1, 2, 0, 0x1000).unwrap();
    let (a1, a2) = (AccelId::new(1).unwrap(), AccelId::new(2).unwrap());
    // Routed and permitted, but no keys yet: nothing crosses.
    assert!(t.pod().write(a1, a2, 0x40, b"too early").is_err());
    let slots = t.provision_keys(1).unwrap();
    // Two directions, a TX and an RX slot each, per plane.
    let planes = t.pod().planes(a1, a2).unwrap().len();
    assert_eq!(slots.len(), 4 * planes);
    for s in &slots {
        assert_eq!(s.epoch, 1);
        let info = t
            .pod()
            .slot_info(ualink_sim::SlotRef {
                accel: AccelId::new(s.accel).unwrap(),
                port: ualink_sim::PortIndex(u16::from(s.port)),
                dir: if s.dir == "tx" {
                    ualink_sim::ualinksec::Direction::Tx
                } else {
                    ualink_sim::ualinksec::Direction::Rx
                },
                peer: AccelId::new(s.peer).unwrap(),
            })
            .unwrap();
        assert!(info.enabled, "{info:?}");
        let (epoch, fp) = info.active.unwrap();
        assert_eq!(epoch, 1);
        assert_eq!(hex::encode(fp), s.fingerprint);
    }
    t.pod().capture_wire(true).unwrap();
    t.pod().write(a1, a2, 0x40, b"sealed end to end").unwrap();
    assert_eq!(
        t.pod().read(a1, a2, 0x40, 17).unwrap(),
        b"sealed end to end"
    );
    let wire = t.pod().captured().unwrap();
    assert!(!wire.is_empty());
    let needle = b"sealed end to end";
    for c in &wire {
        assert!(
            !c.bytes.windows(needle.len()).any(|w| w == needle),
            "plaintext on the wire"
        );
    }
    // Accelerator 3 is outside the vPod: no route.
    let a3 = AccelId::new(3).unwrap();
    assert!(t.pod().write(a3, a2, 0x40, b"x").is_err());
    assert!(t.pod().leaks().unwrap().is_empty());
    // The audit log names the fingerprints, and the store has no key bytes.
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    let kr: Vec<_> = recs
        .iter()
        .filter(|r| r.kind() == DecisionKind::KeyRotation)
        .collect();
    // One record per direction and plane, each with its key's fingerprint.
    assert_eq!(kr.len(), 2 * planes);
    for r in &kr {
        assert_eq!(r.keys().len(), 1);
        assert!(matches!(
            r.event(),
            Some(ualink_attest::audit::event::AuditEvent::KeysProgrammed { epoch: 1, .. })
        ));
    }
}

#[test]
fn tdisp_lock_needs_keys_then_report_verifies_and_accept_starts_the_tdi() {
    use ualink_attest::sim::SimPlatform;
    use ualink_attest::snp::SnpVerifier;
    use ualink_attest::spdm_evidence::{DeviceEvidenceVerifier, ExpectedNonce};
    use ualink_attest::tdi_report::TdiReportVerifier;
    use ualink_kdrv::TdiState;

    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(2, dir.path());
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2]).unwrap();
    // No live keys: the device refuses LOCK.
    let e = t.tdi_lock(1, 1).unwrap_err();
    assert!(matches!(e, TsmError::Device { check: "tdisp", .. }), "{e}");
    t.provision_keys(1).unwrap();
    let bundle = t.tdi_lock(1, 1).unwrap();
    assert_eq!(t.tdi_report(1, 1), Some(&bundle[..]));
    assert_eq!(t.tdi_report(2, 1), None, "kept for its tenant only");
    let a1 = AccelId::new(1).unwrap();
    assert_eq!(
        t.pod().tdi_state(a1).unwrap(),
        Some(ualink_spdm::tdisp::TdiState::ConfigLocked)
    );
    // The tenant's side: the bundle verifies against the vendor roots and the sim platform.
    let mut anchors = ualink_spdm::cert_chain::TrustAnchors::new();
    for (_, der) in t.pod().vendor_roots() {
        anchors.add_der(&der).unwrap();
    }
    let platform = SimPlatform::load_or_create(&dir.path().join("sim-platform")).unwrap();
    let v = TdiReportVerifier::new(
        DeviceEvidenceVerifier::new(anchors),
        SnpVerifier::new(platform.trust_anchors().unwrap()),
    )
    .verify(
        &bundle,
        &ExpectedNonce::NotProvided,
        ualink_attest::UnixTime::now(),
    )
    .unwrap();
    assert_eq!(v.content.accelerator_id, 1);
    assert_eq!(v.content.tenant_id, "tenant-a");
    assert_eq!(v.content.epoch, 1);
    // Accept → START → RUN, mirrored into the driver.
    t.tdi_accept(1, 1, "cvm-a").unwrap();
    assert_eq!(
        t.pod().tdi_state(a1).unwrap(),
        Some(ualink_spdm::tdisp::TdiState::Run)
    );
    assert_eq!(t.driver().tdi(a1.to_kdrv()).unwrap().0, TdiState::Run);
    // Another tenant cannot accept or stop it.
    t.tenant_add(2, "tenant-b").unwrap();
    assert!(t.tdi_accept(2, 1, "cvm-b").is_err());
    t.tdi_stop(1, 1).unwrap();
    assert_eq!(
        t.driver().tdi(a1.to_kdrv()).unwrap().0,
        TdiState::ConfigUnlocked
    );
}

#[test]
fn rotation_is_gated_on_fresh_attestation_and_moves_both_ends_to_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(2, dir.path());
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2]).unwrap();
    t.window_create(1, 2, 0, 0x1000).unwrap();
    let before = t.provision_keys(1).unwrap();
    let (a1, a2) = (AccelId::new(1).unwrap(), AccelId::new(2).unwrap());
    let t_planes = t.pod().planes(a1, a2).unwrap().len();
    t.pod().write(a1, a2, 0x10, b"epoch one").unwrap();
    let after = t.rotate(1, 2).unwrap();
    assert_eq!(after.len(), before.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(new.epoch, 2);
        assert_ne!(old.fingerprint, new.fingerprint);
    }
    // Both ends were re-attested first (epoch 2), and the link still carries data.
    assert_eq!(t.device(1).unwrap().epoch, 2);
    assert_eq!(t.device(2).unwrap().epoch, 2);
    t.pod().write(a1, a2, 0x10, b"epoch two").unwrap();
    assert_eq!(t.pod().read(a1, a2, 0x10, 9).unwrap(), b"epoch two");
    // A tampered end fails the fresh attestation: the rotation is refused and the link stops.
    t.pod()
        .tamper_measurement(a2, MeasurementKind::Config, Tamper::FlipBit { offset: 0 })
        .unwrap();
    let e = t.rotate(1, 2).unwrap_err();
    assert!(
        matches!(
            e,
            TsmError::Device {
                check: "re-attestation",
                ..
            }
        ),
        "{e}"
    );
    assert!(t.pod().write(a1, a2, 0x10, b"x").is_err());
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let kinds: Vec<_> = records(dir.path(), &key)
        .into_iter()
        .filter(|r| r.kind() == DecisionKind::KeyRotation)
        .map(|r| r.outcome())
        .collect();
    // initial keys (info per direction), manual allow, rotated keys (info per direction),
    // refused rotation (deny).
    let n = 2 * t_planes;
    let mut want = vec![Outcome::Info; n];
    want.push(Outcome::Allow);
    want.extend(vec![Outcome::Info; n]);
    want.push(Outcome::Deny);
    assert_eq!(kinds, want);
}

#[test]
fn a_device_whose_chain_does_not_reach_a_vendor_root_is_quarantined_at_the_chain_check() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(2);
    let pod = SimPod::new(&spec).unwrap();
    pod.swap_certificate(AccelId::new(2).unwrap()).unwrap();
    let mut t = tsm_on(pod, &spec, dir.path());
    let r = t.bring_up().unwrap();
    assert_eq!(r.attested, vec![1]);
    assert_eq!(r.quarantined, vec![(2, "certificate_chain".to_string())]);
    assert!(t.device_evidence(2).is_none());
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let rec = records(dir.path(), &key)
        .into_iter()
        .find(|r| r.subject() == "accel-0002")
        .unwrap();
    assert_eq!(rec.outcome(), Outcome::Deny);
    assert_eq!(rec.rules(), ["check.certificate_chain"]);
    assert!(matches!(
        rec.event(),
        Some(ualink_attest::audit::event::AuditEvent::DeviceQuarantined { .. })
    ));
}

#[test]
fn a_reattestation_round_bumps_every_good_device_and_quarantines_the_tampered_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(4, dir.path());
    t.bring_up().unwrap();
    t.pod()
        .tamper_measurement(
            AccelId::new(4).unwrap(),
            MeasurementKind::Firmware,
            Tamper::FlipBit { offset: 2 },
        )
        .unwrap();
    assert_eq!(t.reattest_all().unwrap(), vec![4]);
    for id in 1..=3 {
        assert_eq!(t.device(id).unwrap().epoch, 2);
    }
    assert!(matches!(
        t.device(4).unwrap().status,
        DeviceStatus::Quarantined { .. }
    ));
    // The next round skips the quarantined device.
    assert_eq!(t.reattest_all().unwrap(), Vec::<u16>::new());
    assert_eq!(t.device(1).unwrap().epoch, 3);
    assert_eq!(t.device(4).unwrap().epoch, 1);
}
