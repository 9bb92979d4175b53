//! Lead-agent keys (UALink §9.4) and automatic rotation (usage threshold, key age).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ualink_attest::audit::event::AuditEvent;
use ualink_attest::audit::{DecisionKind, Outcome};
use ualink_guest_agent::lead::{generate_vpod_keys, VpodMember};
use ualink_sim::measurement::{MeasurementKind, Tamper};
use ualink_sim::AccelId;
use ualink_tsm::keys::LeadKeySet;
use ualink_tsm::tsm::{RotationConfig, TenantOptions};
use ualink_tsm::{Tsm, TsmError};

const LEAD: TenantOptions = TenantOptions { lead_keys: true };

fn id(v: u16) -> AccelId {
    AccelId::new(v).unwrap()
}

/// What the tenant's lead agent does with the vPod the TSM reports: one key per
/// (TX accelerator, TX port, peer), from the agent library.
fn agent_keys(t: &Tsm, tenant: u32, epoch: u32) -> ualink_guest_agent::lead::KeyBundle {
    let layout = t.lead_key_layout(tenant).unwrap();
    let members = t.vpod(tenant).unwrap().unwrap().members;
    let members: Vec<VpodMember> = members
        .iter()
        .map(|m| {
            let mut tx_ports: Vec<u8> = layout
                .iter()
                .filter(|(tx, _, _)| tx == m)
                .map(|(_, p, _)| *p)
                .collect();
            tx_ports.dedup();
            VpodMember {
                accelerator_id: *m,
                tx_ports,
            }
        })
        .collect();
    generate_vpod_keys("tenant-a", &members, epoch).unwrap()
}

#[test]
fn lead_agent_keys_are_programmed_through_spdm_and_carry_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(4, dir.path());
    t.bring_up().unwrap();
    let rec = t.tenant_add_with(1, "tenant-a", LEAD).unwrap();
    assert!(rec.lead_keys);
    t.vpod_create(1, &[1, 2, 3]).unwrap();
    t.window_create(1, 2, 0, 0x1000).unwrap();
    // The TSM refuses to generate keys for a tenant whose lead agent does.
    let e = t.provision_keys(1).unwrap_err();
    assert!(
        matches!(
            e,
            TsmError::KeySource {
                tenant: 1,
                lead_keys: true
            }
        ),
        "{e}"
    );
    assert_eq!(e.code(), "keys_from_lead_agent");
    assert_eq!(t.lead_key_min_epoch(1).unwrap(), 1);
    let bundle = agent_keys(&t, 1, 1);
    let planes = t.pod().planes(id(1), id(2)).unwrap().len();
    assert_eq!(bundle.entries.len(), 3 * 2 * planes);
    let slots = t
        .provision_keys_with(1, LeadKeySet::from_bundle(&bundle))
        .unwrap();
    assert_eq!(slots.len(), 2 * bundle.entries.len());
    // Both ends hold the agent's key: the fingerprint of the entry for (tx, port, rx).
    for s in &slots {
        let (tx, rx) = if s.dir == "tx" {
            (s.accel, s.peer)
        } else {
            (s.peer, s.accel)
        };
        let entry = bundle
            .entries
            .iter()
            .find(|e| {
                e.tx_accelerator.get() == tx
                    && e.peer.get() == rx
                    && (s.dir != "tx" || e.tx_port == s.port)
            })
            .unwrap();
        let want = ualink_sim::ualinksec::MasterKey::new(*entry.key().as_bytes(), 1).fingerprint();
        assert_eq!(s.fingerprint, hex::encode(want));
        let info = t.pod().slot_info(sim_slot(s)).unwrap();
        assert!(info.enabled);
        assert_eq!(info.active.unwrap(), (1, want));
    }
    t.pod().write(id(1), id(2), 0x40, b"agent keyed").unwrap();
    assert_eq!(
        t.pod().read(id(3), id(2), 0x40, 11).unwrap(),
        b"agent keyed"
    );
    assert!(t.link_keys_live(1, 3).unwrap());
    // Rotation of agent keys is the agent's: the TSM does not generate them.
    assert!(matches!(
        t.rotate(1, 2),
        Err(TsmError::KeySource {
            lead_keys: true,
            ..
        })
    ));
    // The next set must move the epoch forward; the same epoch again is refused.
    assert_eq!(t.lead_key_min_epoch(1).unwrap(), 2);
    let again = agent_keys(&t, 1, 1);
    let e = t
        .provision_keys_with(1, LeadKeySet::from_bundle(&again))
        .unwrap_err();
    assert!(e.to_string().contains("reuses an epoch"), "{e}");
    let next = agent_keys(&t, 1, 2);
    t.provision_keys_with(1, LeadKeySet::from_bundle(&next))
        .unwrap();
    t.pod().write(id(1), id(2), 0x40, b"epoch two").unwrap();
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    let added = recs
        .iter()
        .find(|r| matches!(r.event(), Some(AuditEvent::TenantAdded { .. })))
        .unwrap();
    assert!(added.reasons().iter().any(|r| r == "key-source=lead-agent"));
    let programmed: Vec<_> = recs
        .iter()
        .filter(|r| matches!(r.event(), Some(AuditEvent::KeysProgrammed { .. })))
        .collect();
    assert_eq!(programmed.len(), 2 * bundle.entries.len());
    for r in programmed {
        assert!(
            r.reasons().iter().any(|x| x.contains("source=lead-agent")),
            "{:?}",
            r.reasons()
        );
    }
}

#[test]
fn lead_key_sets_are_checked_whole_before_anything_is_programmed() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(4, dir.path());
    t.bring_up().unwrap();
    t.tenant_add_with(1, "tenant-a", LEAD).unwrap();
    t.tenant_add(2, "tenant-b").unwrap();
    t.vpod_create(1, &[1, 2]).unwrap();
    t.vpod_create(2, &[3, 4]).unwrap();
    let layout = t.lead_key_layout(1).unwrap();
    let key = [7u8; 32];
    let full = |extra: &dyn Fn(&mut LeadKeySet)| {
        let mut s = LeadKeySet::new(1);
        for (tx, p, rx) in &layout {
            s.push(*tx, *p, *rx, &key).unwrap();
        }
        extra(&mut s);
        s
    };
    let refused = |t: &mut Tsm, s: LeadKeySet, want: &str| {
        let e = t.provision_keys_with(1, s).unwrap_err();
        assert!(matches!(e, TsmError::InvalidRequest(_)), "{e}");
        assert!(e.to_string().contains(want), "{e} should say {want}");
    };
    // A key given twice.
    let (tx, p, rx) = layout[0];
    refused(
        &mut t,
        full(&|s| s.push(tx, p, rx, &key).unwrap()),
        "given twice",
    );
    // A key for an accelerator outside the vPod (another tenant's).
    refused(
        &mut t,
        full(&|s| s.push(1, p, 3, &key).unwrap()),
        "not in tenant 1's vPod",
    );
    // A port that is not a link between the two.
    refused(
        &mut t,
        full(&|s| s.push(tx, 9, rx, &key).unwrap()),
        "is not a link",
    );
    // A key missing.
    let mut short = LeadKeySet::new(1);
    for (tx, p, rx) in layout.iter().skip(1) {
        short.push(*tx, *p, *rx, &key).unwrap();
    }
    refused(&mut t, short, "misses");
    // Epoch 0 is below every link's next epoch.
    let mut zero = LeadKeySet::new(0);
    for (tx, p, rx) in &layout {
        zero.push(*tx, *p, *rx, &key).unwrap();
    }
    refused(&mut t, zero, "reuses an epoch");
    // A key that is not 32 bytes never enters a set.
    let mut s = LeadKeySet::new(1);
    assert!(matches!(
        s.push(1, 0, 2, &[1u8; 31]),
        Err(TsmError::InvalidRequest(_))
    ));
    assert!(s.is_empty());
    // Nothing was programmed by any refused set.
    for (tx, p, rx) in &layout {
        let info = t
            .pod()
            .slot_info(ualink_sim::SlotRef {
                accel: id(*tx),
                port: ualink_sim::PortIndex(u16::from(*p)),
                dir: ualink_sim::ualinksec::Direction::Tx,
                peer: id(*rx),
            })
            .unwrap();
        assert_eq!(info.active, None);
    }
    // A delegating tenant's keys come from the TSM only.
    let e = t.provision_keys_with(2, LeadKeySet::new(1)).unwrap_err();
    assert_eq!(e.code(), "keys_delegated");
    // Debug output never shows key bytes.
    let dbg = format!("{:?}", full(&|_| {}));
    assert!(
        dbg.contains("<redacted>") && !dbg.contains("7, 7, 7"),
        "{dbg}"
    );
    // The complete set goes in.
    t.provision_keys_with(1, full(&|_| {})).unwrap();
    assert!(t.link_keys_live(1, 2).unwrap());
}

#[test]
fn a_pair_the_hardware_stops_at_its_usage_threshold_is_rekeyed_by_rotate_due() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(2);
    let pod = ualink_sim::SimPod::new(&spec).unwrap();
    let mut t = tsm_with(pod, &spec, dir.path(), |c| {
        c.rotation = RotationConfig {
            max_key_age_secs: None,
            usage_threshold: Some(4),
        };
    });
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2]).unwrap();
    t.window_create(1, 2, 0, 0x1000).unwrap();
    t.provision_keys(1).unwrap();
    assert!(
        t.rotate_due(now_secs()).unwrap().is_empty(),
        "nothing due yet"
    );
    // Traffic until the TX counter reaches the threshold: with no alternate key staged the
    // hardware stops the slot.
    let mut sent = 0;
    while t.pod().write(id(1), id(2), 0x40, b"count me").is_ok() {
        sent += 1;
        assert!(sent < 16, "the threshold never stopped the slot");
    }
    assert!(sent >= 3, "{sent}");
    let rotated = t.rotate_due(now_secs()).unwrap();
    assert_eq!(rotated, vec![(1, 2)]);
    assert!(t.link_keys_live(1, 2).unwrap());
    t.pod().write(id(1), id(2), 0x40, b"fresh key").unwrap();
    assert_eq!(t.pod().read(id(1), id(2), 0x40, 9).unwrap(), b"fresh key");
    assert_eq!(t.device(1).unwrap().epoch, 2, "both ends re-attested first");
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    let allow = recs
        .iter()
        .find(|r| r.kind() == DecisionKind::KeyRotation && r.outcome() == Outcome::Allow)
        .unwrap();
    assert!(allow.policy_input().unwrap().contains("\"threshold\""));
    assert!(recs.iter().any(|r| r
        .reasons()
        .iter()
        .any(|x| x.starts_with("trigger=threshold"))));
}

#[test]
fn old_keys_rotate_on_schedule_and_a_failed_rotation_stops_the_pair() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(4);
    let pod = ualink_sim::SimPod::new(&spec).unwrap();
    let mut t = tsm_with(pod, &spec, dir.path(), |c| {
        c.rotation.max_key_age_secs = Some(3600);
    });
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2, 3]).unwrap();
    t.window_create(1, 2, 0, 0x1000).unwrap();
    let before = t.provision_keys(1).unwrap();
    let now = now_secs();
    assert!(t.rotate_due(now).unwrap().is_empty());
    let rotated = t.rotate_due(now + 3600).unwrap();
    assert_eq!(rotated, vec![(1, 2), (1, 3), (2, 3)]);
    t.pod().write(id(1), id(2), 0x10, b"rotated").unwrap();
    // Fresh keys are not due again.
    assert!(t.rotate_due(now + 1800).unwrap().is_empty());
    // An end that fails its fresh attestation: the pairs it is in stop; the other pair is
    // untouched by it.
    t.pod()
        .tamper_measurement(
            id(3),
            MeasurementKind::Firmware,
            Tamper::FlipBit { offset: 1 },
        )
        .unwrap();
    let rotated = t.rotate_due(now + 2 * 3600 + 1).unwrap();
    assert_eq!(rotated, vec![(1, 2)]);
    assert!(t.pod().write(id(1), id(3), 0x10, b"x").is_err());
    assert!(!t.link_keys_live(2, 3).unwrap());
    t.pod().write(id(1), id(2), 0x10, b"still fine").unwrap();
    let after: Vec<_> = before.iter().map(|s| s.key()).collect();
    assert!(!after.is_empty());
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    assert!(recs.iter().any(|r| r.kind() == DecisionKind::KeyRotation
        && r.outcome() == Outcome::Deny
        && r.subject().contains("accel-0003")));
    assert!(recs
        .iter()
        .filter(|r| r.kind() == DecisionKind::KeyRotation && r.outcome() == Outcome::Allow)
        .any(|r| r.policy_input().unwrap().contains("\"scheduled\"")));
}

/// One decision, one clock read: the slot metadata of keys put on a pair and the
/// `keys-programmed` records of that pair carry the same time (a decision whose parts read
/// the clock separately disagrees across a second boundary, which is how a policy input's
/// `now` once differed from its record's time).
#[test]
fn programmed_keys_and_their_records_carry_one_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(4, dir.path());
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2, 3]).unwrap();
    let slots = t.provision_keys(1).unwrap();
    assert!(!slots.is_empty());
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    let programmed: Vec<_> = recs
        .iter()
        .filter_map(|r| match r.event() {
            Some(AuditEvent::KeysProgrammed { tx, rx, .. }) => {
                Some((tx.accelerator_id, rx.accelerator_id, r.time()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(programmed.len() * 2, slots.len());
    for s in &slots {
        let (tx, rx) = if s.dir == "tx" {
            (s.accel, s.peer)
        } else {
            (s.peer, s.accel)
        };
        let at = programmed
            .iter()
            .find(|(a, b, _)| *a == tx && *b == rx)
            .map(|(_, _, at)| *at)
            .unwrap();
        assert_eq!(i64::try_from(s.programmed_at).unwrap(), at, "{s:?}");
    }
}
