//! Keying several vPods at once (`provision_keys_many`): concurrent programming, records in
//! a deterministic order, checks before anything is programmed, and what a failure leaves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::num::NonZeroUsize;

use common::*;
use ualink_attest::audit::event::AuditEvent;
use ualink_sim::AccelId;
use ualink_tsm::tsm::TenantOptions;
use ualink_tsm::TsmError;

fn id(v: u16) -> AccelId {
    AccelId::new(v).unwrap()
}

/// (TX accelerator, RX accelerator) of every keys-programmed record, in log order.
fn programmed(recs: &[ualink_attest::audit::AuditRecord]) -> Vec<(u16, u16)> {
    recs.iter()
        .filter_map(|r| match r.event() {
            Some(AuditEvent::KeysProgrammed { tx, rx, .. }) => {
                Some((tx.accelerator_id, rx.accelerator_id))
            }
            _ => None,
        })
        .collect()
}

/// Every pair of `members`, each direction, per plane, in the order the TSM keys them.
fn expected(t: &ualink_tsm::Tsm, members: &[u16]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for (i, a) in members.iter().enumerate() {
        for b in members.iter().skip(i + 1) {
            for _ in t.pod().planes(id(*a), id(*b)).unwrap() {
                out.push((*a, *b));
                out.push((*b, *a));
            }
        }
    }
    out
}

#[test]
fn several_vpods_are_keyed_at_once_with_records_in_the_order_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm_with(
        ualink_sim::SimPod::new(&spec(9)).unwrap(),
        &spec(9),
        dir.path(),
        |c| c.parallelism = NonZeroUsize::new(3),
    );
    t.bring_up().unwrap();
    let vpods: [(u32, &[u16]); 3] = [(1, &[1, 2, 3, 4]), (2, &[5, 6, 7]), (3, &[8, 9])];
    for (tenant, members) in vpods {
        t.tenant_add(tenant, &format!("tenant-{tenant}")).unwrap();
        t.vpod_create(tenant, members).unwrap();
    }
    let before = t.audit().size();
    // Not in tenant order: the records follow the order asked.
    let slots = t.provision_keys_many(&[2, 3, 1]).unwrap();
    let mut want = Vec::new();
    for tenant in [2, 3, 1] {
        let (_, members) = vpods.iter().find(|(x, _)| *x == tenant).unwrap();
        want.extend(expected(&t, members));
        for (i, a) in members.iter().enumerate() {
            for b in members.iter().skip(i + 1) {
                assert!(t.link_keys_live(*a, *b).unwrap(), "{a}-{b}");
            }
        }
    }
    // Two slots (TX and RX) per record, in the same order.
    assert_eq!(slots.len(), 2 * want.len());
    let from_slots: Vec<(u16, u16)> = slots.chunks(2).map(|c| (c[0].accel, c[1].accel)).collect();
    assert_eq!(from_slots, want);
    assert!(slots
        .chunks(2)
        .all(|c| c[0].dir == "tx" && c[1].dir == "rx"));
    // Every slot holds what the TSM recorded.
    for s in &slots {
        let info = t.pod().slot_info(sim_slot(s)).unwrap();
        let (epoch, fp) = info.active.unwrap();
        assert_eq!((epoch, hex::encode(fp)), (s.epoch, s.fingerprint.clone()));
    }
    let key = t.identity().public_key().to_vec();
    let size = t.audit().size();
    t.shutdown().unwrap();
    let recs = records(dir.path(), &key);
    assert_eq!(
        size - before,
        u64::try_from(want.len()).unwrap(),
        "one record per direction and plane"
    );
    assert_eq!(programmed(&recs), want);
}

#[test]
fn nothing_is_programmed_when_a_tenant_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tsm(6, dir.path());
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2, 3]).unwrap();
    t.tenant_add_with(2, "tenant-b", TenantOptions { lead_keys: true })
        .unwrap();
    t.vpod_create(2, &[4, 5]).unwrap();
    t.tenant_add(3, "tenant-c").unwrap();
    let size = t.audit().size();
    let e = t.provision_keys_many(&[1, 1]).unwrap_err();
    assert!(matches!(e, TsmError::InvalidRequest(_)), "{e}");
    let e = t.provision_keys_many(&[1, 2]).unwrap_err();
    assert!(matches!(e, TsmError::KeySource { tenant: 2, .. }), "{e}");
    // Tenant 3 has no vPod.
    let e = t.provision_keys_many(&[1, 3]).unwrap_err();
    assert!(matches!(e, TsmError::NotFound { .. }), "{e}");
    assert_eq!(t.audit().size(), size);
    assert!(!t.link_keys_live(1, 2).unwrap());
    assert!(t.provision_keys_many(&[]).unwrap().is_empty());
    assert_eq!(t.audit().size(), size);
}

#[test]
fn a_failed_pair_leaves_the_programmed_ones_recorded_and_its_epoch_used() {
    let dir = tempfile::tempdir().unwrap();
    // One pair at a time: which pairs ran before the failure is deterministic.
    let mut t = tsm_with(
        ualink_sim::SimPod::new(&spec(4)).unwrap(),
        &spec(4),
        dir.path(),
        |c| c.parallelism = NonZeroUsize::new(1),
    );
    t.bring_up().unwrap();
    t.tenant_add(1, "tenant-a").unwrap();
    t.vpod_create(1, &[1, 2]).unwrap();
    t.tenant_add(2, "tenant-b").unwrap();
    t.vpod_create(2, &[3, 4]).unwrap();
    // Device 4 loses its secured session: its first key is refused after device 3 took its
    // own (same epoch).
    t.pod().reset_device(id(4)).unwrap();
    let e = t.provision_keys_many(&[1, 2]).unwrap_err();
    assert!(
        matches!(&e, TsmError::Device { device, .. } if device.ends_with('4')),
        "{e}"
    );
    // Tenant 1's pair was keyed and recorded; nothing was recorded for 3-4.
    assert!(t.link_keys_live(1, 2).unwrap());
    assert!(!t.link_keys_live(3, 4).unwrap());
    let key = t.identity().public_key().to_vec();
    let recs = records(dir.path(), &key);
    assert_eq!(programmed(&recs), expected(&t, &[1, 2]));
    // Fresh attestation gives 4 a new session; keying again uses a new epoch (device 3's
    // slot already holds the one the failed attempt used, so reusing it would be refused).
    t.reattest(4).unwrap();
    let slots = t.provision_keys(2).unwrap();
    assert!(slots.iter().all(|s| s.epoch == 2), "{slots:?}");
    assert!(t.link_keys_live(3, 4).unwrap());
}
