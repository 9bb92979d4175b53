//! Revocation: each trigger revokes exactly the affected attachments (move_notify, bounded drain, zap),
//! later access is refused, DEAD buffers stay dead; RAS flows.
#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod common;

use std::collections::BTreeSet;

use common::*;
use ualink_kdrv::audit::{AuditEvent, RevokeCause, RevokeScope};
use ualink_kdrv::ids::Rights;
use ualink_kdrv::ops::{Direction, FaultReport, KeySlotCommand, KeySlotRef, StreamId};
use ualink_kdrv::{
    AttachRequest, AttachmentId, BufferHandle, BufferState, Config, Errno, FileCtx, PortId,
    SwitchId, TdiState,
};

/// A world with five mapped attachments:
/// - `b2_a0`: B's accelerator 2 → A's buffer on accelerator 0 (granted)
/// - `a1_a0`: A's accelerator 1 → the same buffer (same tenant and OS: no grant)
/// - `b3_a0`: B's accelerator 3 → the same buffer (granted)
/// - `a1_b2`: A's accelerator 1 → B's buffer on accelerator 2 (granted)
/// - `b2_a0x`: B's accelerator 2 → a second buffer of A (granted)
struct World {
    s: Scenario,
    b2_a0: AttachmentId,
    a1_a0: AttachmentId,
    b3_a0: AttachmentId,
    a1_b2: AttachmentId,
    b2_a0x: AttachmentId,
    buf_b: BufferHandle,
    buf_a2: BufferHandle,
}

impl World {
    fn new() -> World {
        Self::with(Scenario::new())
    }

    fn with(mut s: Scenario) -> World {
        let (fa, fb) = (s.fa, s.fb);
        let b2_a0 = s.granted_mapping();

        let req = AttachRequest {
            handle: s.handle,
            importer_accel: acc(1),
            rights: Rights::ALL,
            invalidate_cookie: Some(0xA1),
            grant: None,
        };
        let a1_a0 = s.d.attach(&fa, &req).unwrap();
        s.d.map(&fa, a1_a0).unwrap();

        let mut c = s.claims_for_b();
        c.importer_accel = 3;
        let g = s.tsm.grant(&c);
        let req = AttachRequest {
            handle: s.handle,
            importer_accel: acc(3),
            rights: Rights::READ,
            invalidate_cookie: Some(0xB3),
            grant: Some(&g),
        };
        let b3_a0 = s.d.attach(&fb, &req).unwrap();
        s.d.map(&fb, b3_a0).unwrap();

        let wb = s.window_b;
        let buf_b = s.d.export(&fb, wb, 0, 0x1000).unwrap();
        let mut c = s.claims_for_b();
        c.exporter_tenant = TENANT_B.0;
        c.exporter_accel = 2;
        c.buffer = buf_b.0;
        c.importer_tenant = TENANT_A.0;
        c.importer_os = OS_A.0;
        c.importer_accel = 1;
        let g = s.tsm.grant(&c);
        let req = AttachRequest {
            handle: buf_b,
            importer_accel: acc(1),
            rights: Rights::READ,
            invalidate_cookie: Some(0xA1B2),
            grant: Some(&g),
        };
        let a1_b2 = s.d.attach(&fa, &req).unwrap();
        s.d.map(&fa, a1_b2).unwrap();

        let wa = s.window_a;
        let buf_a2 = s.d.export(&fa, wa, 0x8000, 0x1000).unwrap();
        let mut c = s.claims_for_b();
        c.buffer = buf_a2.0;
        let g = s.tsm.grant(&c);
        let req = AttachRequest {
            handle: buf_a2,
            importer_accel: acc(2),
            rights: Rights::READ,
            invalidate_cookie: Some(0xB2A2),
            grant: Some(&g),
        };
        let b2_a0x = s.d.attach(&fb, &req).unwrap();
        s.d.map(&fb, b2_a0x).unwrap();

        s.d.audit_sink().0.borrow_mut().clear();
        World {
            s,
            b2_a0,
            a1_a0,
            b3_a0,
            a1_b2,
            b2_a0x,
            buf_b,
            buf_a2,
        }
    }

    fn file_of(&self, att: AttachmentId) -> FileCtx {
        if att == self.a1_a0 || att == self.a1_b2 {
            self.s.fa
        } else {
            self.s.fb
        }
    }

    fn all(&self) -> [AttachmentId; 5] {
        [self.b2_a0, self.a1_a0, self.b3_a0, self.a1_b2, self.b2_a0x]
    }

    /// Asserts exactly `revoked` are revoked (EIDRM on the map path, no mapping, no window permission
    /// in hardware, move_notify delivered) and every other attachment is still live and mapped.
    fn assert_revoked_exactly(&self, revoked: &[AttachmentId]) {
        let revoked: BTreeSet<_> = revoked.iter().copied().collect();
        let mapped: BTreeSet<_> = self.s.d.mappings().map(|m| m.attachment).collect();
        let hw_tags: BTreeSet<_> = self
            .s
            .d
            .fabric()
            .perms
            .borrow()
            .keys()
            .map(|(_, t)| *t)
            .collect();
        let notified: BTreeSet<_> = self
            .s
            .d
            .notify_sink()
            .0
            .borrow()
            .iter()
            .map(|(_, a)| *a)
            .collect();
        for att in self.all() {
            let f = self.file_of(att);
            if revoked.contains(&att) {
                assert_eq!(
                    self.s.d.gate_check(&f, att).map_err(Errno::from),
                    Err(Errno::EIDRM),
                    "{att:?}"
                );
                assert!(!mapped.contains(&att), "{att:?} still mapped");
                assert!(notified.contains(&att), "{att:?} not notified");
            } else {
                assert_eq!(
                    self.s.d.gate_check(&f, att).map_err(Errno::from),
                    Ok(()),
                    "{att:?}"
                );
                assert!(mapped.contains(&att), "{att:?} lost its mapping");
                assert!(!notified.contains(&att), "{att:?} notified but not revoked");
            }
        }
        // Every permission left in hardware belongs to a live mapping or a window owner.
        let live_tags: BTreeSet<_> = self.s.d.mappings().map(|m| m.tag).collect();
        let owner_tags: BTreeSet<_> = self.s.d.owner_perms().map(|(_, _, t)| t).collect();
        for t in hw_tags {
            assert!(
                live_tags.contains(&t) || owner_tags.contains(&t),
                "orphan permission {t:?}"
            );
        }
    }

    fn last_revoke(&self) -> (RevokeScope, RevokeCause, u32, u32) {
        self.s
            .events()
            .iter()
            .rev()
            .find_map(|e| match e {
                AuditEvent::Revoke {
                    scope,
                    cause,
                    attachments,
                    mappings,
                    ..
                } => Some((*scope, *cause, *attachments, *mappings)),
                _ => None,
            })
            .expect("a Revoke event")
    }
}

#[test]
fn explicit_revoke_kills_the_buffer_and_all_its_attachments_only() {
    let mut w = World::new();
    let (fa, h) = (w.s.fa, w.s.handle);
    w.s.d.revoke(&fa, h).unwrap();
    w.assert_revoked_exactly(&[w.b2_a0, w.a1_a0, w.b3_a0]);
    assert_eq!(w.s.d.buffer_state(&h), Some(BufferState::Dead));
    assert_eq!(w.s.d.buffer_state(&w.buf_a2), Some(BufferState::Live));
    assert_eq!(
        w.last_revoke(),
        (RevokeScope::Buffer(h), RevokeCause::Explicit, 3, 3)
    );
    // Later access faults: map refuses, and so does a second revoke.
    let fb = w.s.fb;
    assert_eq!(
        w.s.d.map(&fb, w.b2_a0).map_err(Errno::from),
        Err(Errno::EIDRM)
    );
    assert_eq!(w.s.d.revoke(&fa, h).map_err(Errno::from), Err(Errno::EIDRM));
    // Revoked attachments can still be detached.
    w.s.d.detach(&fb, w.b2_a0).unwrap();
    // Another tenant cannot revoke A's buffer.
    let h2 = w.buf_a2;
    assert_eq!(
        w.s.d.revoke(&fb, h2).map_err(Errno::from),
        Err(Errno::ENOENT)
    );
}

#[test]
fn tdi_leaving_run_revokes_only_grants_naming_it() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    w.s.d
        .tdi_update(&t, acc(3), TdiState::Error, 1, false)
        .unwrap();
    w.assert_revoked_exactly(&[w.b3_a0]);
    assert_eq!(w.last_revoke().1, RevokeCause::TdiLeftRun(acc(3)));
}

#[test]
fn epoch_bump_revokes_grants_naming_that_tdi_but_not_same_tenant_imports() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    w.s.d
        .tdi_update(&t, acc(0), TdiState::Run, 2, false)
        .unwrap();
    w.assert_revoked_exactly(&[w.b2_a0, w.b3_a0, w.b2_a0x]);
    assert_eq!(
        w.last_revoke(),
        (
            RevokeScope::Attachments,
            RevokeCause::EpochBump(acc(0)),
            3,
            3
        )
    );
    // An unchanged update revokes nothing more.
    let before = w.s.events().len();
    w.s.d
        .tdi_update(&t, acc(0), TdiState::Run, 2, false)
        .unwrap();
    assert!(!w.s.events()[before..]
        .iter()
        .any(|e| matches!(e, AuditEvent::Revoke { .. })));
}

#[test]
fn stale_key_fault_revokes_the_pair_only() {
    let mut w = World::new();
    let slot = KeySlotRef {
        accel: acc(2),
        port: PortId(0),
        dir: Direction::Rx,
        peer: acc(0),
    };
    w.s.d
        .fabric()
        .faults
        .borrow_mut()
        .push_back(FaultReport::StaleKey { slot });
    let t = w.s.tsm_file;
    assert_eq!(w.s.d.process_faults(&t, 16).unwrap(), 1);
    w.assert_revoked_exactly(&[w.b2_a0, w.b2_a0x]);
    assert_eq!(w.last_revoke().1, RevokeCause::KeyStale(slot));
}

#[test]
fn key_change_seen_at_sync_revokes_the_pair() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    // The device's key for (1 -> 2) changes behind the driver's back (e.g. a rogue re-key).
    w.s.d.fabric().program_pair(acc(1), acc(2), 9);
    let slot = KeySlotRef {
        accel: acc(1),
        port: PortId(1),
        dir: Direction::Tx,
        peer: acc(2),
    };
    w.s.d.key_slot(&t, slot, KeySlotCommand::Query).unwrap();
    w.assert_revoked_exactly(&[w.a1_b2]);
}

#[test]
fn integrity_failure_stops_streams_and_revokes_traffic_from_that_source() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    w.s.d
        .fabric()
        .faults
        .borrow_mut()
        .push_back(FaultReport::IntegrityFailure {
            at: acc(0),
            port: PortId(1),
            source: acc(3),
            stream: StreamId::Request,
        });
    w.s.d.process_faults(&t, 16).unwrap();
    assert_eq!(
        w.s.d.fabric().stopped.borrow().as_slice(),
        &[(acc(0), PortId(1), acc(3))]
    );
    w.assert_revoked_exactly(&[w.b3_a0]);
    assert!(w
        .s
        .events()
        .iter()
        .any(|e| matches!(e, AuditEvent::Fault(FaultReport::IntegrityFailure { .. }))));
    // The RX slot is now stale in the driver's metadata: a new grant over it needs a re-key (another
    // port still has live keys, so the pair can still attach over switch 0).
    let slot = KeySlotRef {
        accel: acc(0),
        port: PortId(1),
        dir: Direction::Rx,
        peer: acc(3),
    };
    assert_eq!(
        w.s.d.key_slot_meta(&slot).unwrap().active.state,
        ualink_kdrv::ops::SlotState::Stale
    );
}

#[test]
fn offboarding_revokes_the_tenants_buffers_and_imports() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    w.s.d.tenant_offboard(&t, TENANT_B).unwrap();
    // B's attachments are gone entirely; A's import of B's buffer is revoked; A's own import stays.
    let fa = w.s.fa;
    assert_eq!(
        w.s.d.gate_check(&fa, w.a1_b2).map_err(Errno::from),
        Err(Errno::EIDRM)
    );
    assert_eq!(w.s.d.gate_check(&fa, w.a1_a0), Ok(()));
    let fb = w.s.fb;
    assert_eq!(
        w.s.d.gate_check(&fb, w.b2_a0).map_err(Errno::from),
        Err(Errno::ENOENT)
    );
    assert_eq!(w.s.d.buffer_state(&w.buf_b), Some(BufferState::Dead));
    assert_eq!(w.s.d.buffer_state(&w.s.handle), Some(BufferState::Live));
    assert_eq!(w.s.d.accel_tenant(acc(2)), None);
    // No permission or route toward B's accelerators remains.
    for p in w.s.d.fabric().perms_list() {
        assert!(
            p.initiator != acc(2) && p.initiator != acc(3) && p.target != acc(2),
            "{p:?}"
        );
    }
    for ((_, _, dest), _) in w.s.d.fabric().routes.borrow().iter() {
        assert!(*dest != acc(2) && *dest != acc(3));
    }
    let mapped: Vec<_> = w.s.d.mappings().map(|m| m.attachment).collect();
    assert_eq!(mapped, vec![w.a1_a0]);
}

#[test]
fn port_migration_revokes_cross_accelerator_attachments_and_requires_rekey() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    w.s.d
        .fabric()
        .faults
        .borrow_mut()
        .push_back(FaultReport::PortMigrated {
            accel: acc(3),
            from: PortId(0),
            to: PortId(5),
            switch: SwitchId(0),
            switch_port: PortId(40),
        });
    w.s.d.process_faults(&t, 16).unwrap();
    w.assert_revoked_exactly(&[w.b3_a0]);
    assert_eq!(w.last_revoke().1, RevokeCause::PortMigration(acc(3)));
    // The vPod route 2 -> 3 on switch 0 now leaves on the new switch port.
    let routes = w.s.d.fabric().routes.borrow();
    assert_eq!(
        routes.get(&(SwitchId(0), PortId(2), acc(3))),
        Some(&PortId(40))
    );
    assert_eq!(
        routes.get(&(SwitchId(0), PortId(40), acc(2))),
        Some(&PortId(2))
    );
    assert_eq!(routes.get(&(SwitchId(0), PortId(3), acc(2))), None);
    drop(routes);
    // Keys on the new port are unknown until the TSM re-keys and syncs them.
    let slot = KeySlotRef {
        accel: acc(3),
        port: PortId(5),
        dir: Direction::Rx,
        peer: acc(0),
    };
    assert_eq!(w.s.d.key_slot_meta(&slot), None);
}

#[test]
fn device_reset_kills_buffers_on_it_and_revokes_its_imports() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    w.s.d
        .fabric()
        .faults
        .borrow_mut()
        .push_back(FaultReport::DeviceReset { accel: acc(2) });
    w.s.d.process_faults(&t, 16).unwrap();
    w.assert_revoked_exactly(&[w.a1_b2, w.b2_a0, w.b2_a0x]);
    assert_eq!(w.s.d.buffer_state(&w.buf_b), Some(BufferState::Dead));
    assert_eq!(w.s.d.tdi(acc(2)), Some((TdiState::ConfigUnlocked, 1)));
}

#[test]
fn link_down_revokes_nothing_link_up_with_changed_keys_revokes() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    w.s.d
        .fabric()
        .faults
        .borrow_mut()
        .push_back(FaultReport::LinkDown {
            accel: acc(3),
            port: PortId(1),
        });
    w.s.d.process_faults(&t, 16).unwrap();
    w.assert_revoked_exactly(&[]);
    // While down, the keys of 3 <-> 0 on port 1 were replaced.
    w.s.d.fabric().program_pair(acc(3), acc(0), 5);
    w.s.d
        .fabric()
        .faults
        .borrow_mut()
        .push_back(FaultReport::LinkUp {
            accel: acc(3),
            port: PortId(1),
        });
    w.s.d.process_faults(&t, 16).unwrap();
    w.assert_revoked_exactly(&[w.b3_a0]);
}

#[test]
fn drain_is_bounded_and_stragglers_are_zapped_anyway() {
    let cfg = Config {
        drain_budget_ns: 50_000,
        ..Config::default()
    };
    let mut w = World::with(Scenario::with(FakeFabric::new(6, 2), cfg));
    // Every mapping of A's first buffer has transfers that never complete.
    let tags: Vec<_> =
        w.s.d
            .mappings()
            .filter(|m| m.handle == w.s.handle)
            .map(|m| m.tag)
            .collect();
    assert_eq!(tags.len(), 3);
    w.s.d
        .fabric()
        .stuck
        .borrow_mut()
        .extend(tags.iter().copied());
    w.s.d.fabric().drains.borrow_mut().clear();
    let (fa, h) = (w.s.fa, w.s.handle);
    w.s.d.revoke(&fa, h).unwrap();
    w.assert_revoked_exactly(&[w.b2_a0, w.a1_a0, w.b3_a0]);
    // One shared bound: the budgets handed to the hardware add up to at most the configured bound.
    let total: u64 =
        w.s.d
            .fabric()
            .drains
            .borrow()
            .iter()
            .map(|(_, _, b)| *b)
            .sum();
    assert!(total <= 50_000, "total drain budget {total}");
    match w.s.events().last().unwrap() {
        AuditEvent::Revoke {
            drain_ns,
            drain_timeouts,
            mappings,
            ..
        } => {
            assert_eq!(*mappings, 3);
            assert!(*drain_timeouts >= 1);
            assert!(*drain_ns <= 50_000);
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn route_written_behind_the_drivers_back_is_cleared_and_audited() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    // The host bypasses the driver: B's accelerator 3 may now reach A's accelerator 1 via switch 1.
    w.s.d
        .fabric()
        .routes
        .borrow_mut()
        .insert((SwitchId(1), PortId(3), acc(1)), PortId(1));
    // And removes a legitimate vPod entry.
    w.s.d
        .fabric()
        .routes
        .borrow_mut()
        .remove(&(SwitchId(0), PortId(0), acc(1)));
    assert_eq!(w.s.d.audit_routes(&t).unwrap(), 2);
    let routes = w.s.d.fabric().routes.borrow();
    assert_eq!(routes.get(&(SwitchId(1), PortId(3), acc(1))), None);
    assert_eq!(
        routes.get(&(SwitchId(0), PortId(0), acc(1))),
        Some(&PortId(1))
    );
    drop(routes);
    assert_eq!(w.s.d.audit_routes(&t).unwrap(), 0);
    assert!(w
        .s
        .events()
        .iter()
        .any(|e| matches!(e, AuditEvent::RouteTampered { .. })));
}

#[test]
fn unmap_and_detach_release_hardware_state() {
    let mut w = World::new();
    let fb = w.s.fb;
    let before_routes = w.s.d.fabric().routes.borrow().len();
    w.s.d.unmap(&fb, w.b3_a0).unwrap();
    assert_eq!(
        w.s.d.unmap(&fb, w.b3_a0).map_err(Errno::from),
        Err(Errno::ENOENT)
    );
    // 3 <-> 0 routes were opened only for this mapping, on two switches, both directions.
    assert_eq!(w.s.d.fabric().routes.borrow().len(), before_routes - 4);
    let into_a0 = |w: &World| {
        w.s.perms_for_initiator(acc(3))
            .into_iter()
            .filter(|p| p.target == acc(0))
            .count()
    };
    assert_eq!(into_a0(&w), 0);
    w.s.d.map(&fb, w.b3_a0).unwrap();
    assert_eq!(into_a0(&w), 1);
    w.s.d.detach(&fb, w.b3_a0).unwrap();
    assert_eq!(into_a0(&w), 0);
    assert_eq!(
        w.s.d.gate_check(&fb, w.b3_a0).map_err(Errno::from),
        Err(Errno::ENOENT)
    );
    // Routes shared by two mappings (2 <-> 0) survive one unmap.
    w.s.d.unmap(&fb, w.b2_a0).unwrap();
    assert!(w
        .s
        .d
        .fabric()
        .routes
        .borrow()
        .contains_key(&(SwitchId(0), PortId(2), acc(0))));
}

#[test]
fn grant_expiry_revokes_at_the_next_tick_only_the_expired_attachments() {
    let mut s = Scenario::new();
    let fb = s.fb;
    let mut c = s.claims_for_b();
    c.expiry = s.now() + 500;
    let g = s.tsm.grant(&c);
    let short = s.attach_b(Some(&g), Rights::READ).unwrap();
    s.d.map(&fb, short).unwrap();
    let long = s.granted_mapping();
    assert_eq!(s.d.tick().unwrap(), 0);
    s.d.fabric().advance(499);
    assert_eq!(s.d.tick().unwrap(), 0);
    s.d.fabric().advance(1);
    assert_eq!(s.d.tick().unwrap(), 1);
    assert_eq!(
        s.d.gate_check(&fb, short).map_err(Errno::from),
        Err(Errno::EIDRM)
    );
    assert_eq!(s.d.gate_check(&fb, long), Ok(()));
    let mapped: Vec<_> = s.d.mappings().map(|m| m.attachment).collect();
    assert_eq!(mapped, vec![long]);
    assert!(s.events().iter().any(|e| matches!(
        e,
        AuditEvent::Revoke {
            cause: RevokeCause::GrantExpired,
            attachments: 1,
            ..
        }
    )));
}

#[test]
fn tdi_mirror_follows_the_tdisp_state_machine() {
    let mut s = Scenario::new();
    let t = s.tsm_file;
    // RUN -> LOCKED is not a TDISP transition.
    assert_eq!(
        s.d.tdi_update(&t, acc(4), TdiState::ConfigLocked, 1, false)
            .map_err(Errno::from),
        Err(Errno::EINVAL)
    );
    s.d.tdi_update(&t, acc(4), TdiState::ConfigUnlocked, 1, false)
        .unwrap();
    // UNLOCKED -> RUN skips LOCK.
    assert_eq!(
        s.d.tdi_update(&t, acc(4), TdiState::Run, 1, false)
            .map_err(Errno::from),
        Err(Errno::EINVAL)
    );
    assert_eq!(s.d.tdi(acc(4)), Some((TdiState::ConfigUnlocked, 1)));
    s.d.tdi_update(&t, acc(4), TdiState::ConfigLocked, 2, false)
        .unwrap();
    s.d.tdi_update(&t, acc(4), TdiState::Error, 2, false)
        .unwrap();
    assert_eq!(
        s.d.tdi_update(&t, acc(4), TdiState::Run, 2, false)
            .map_err(Errno::from),
        Err(Errno::EINVAL)
    );
    // Tenants cannot touch the mirror.
    let fa = s.fa;
    assert_eq!(
        s.d.tdi_update(&fa, acc(0), TdiState::ConfigUnlocked, 1, false)
            .map_err(Errno::from),
        Err(Errno::EPERM)
    );
}

#[test]
fn tx_goes_live_only_after_the_peers_rx() {
    let mut s = Scenario::new();
    let t = s.tsm_file;
    let tx = KeySlotRef {
        accel: acc(4),
        port: PortId(0),
        dir: Direction::Tx,
        peer: acc(5),
    };
    let rx = KeySlotRef {
        accel: acc(5),
        port: PortId(0),
        dir: Direction::Rx,
        peer: acc(4),
    };
    s.d.key_slot(&t, rx, KeySlotCommand::Stop).unwrap();
    s.d.key_slot(&t, tx, KeySlotCommand::Stop).unwrap();
    assert_eq!(
        s.d.key_slot(&t, tx, KeySlotCommand::Go)
            .map_err(Errno::from),
        Err(Errno::EBUSY)
    );
    s.d.key_slot(&t, rx, KeySlotCommand::Go).unwrap();
    assert!(s.d.key_slot(&t, tx, KeySlotCommand::Go).unwrap().enabled);
}

#[test]
fn offboarding_zeroizes_link_keys_at_both_ends() {
    let mut w = World::new();
    let t = w.s.tsm_file;
    w.s.d.tenant_offboard(&t, TENANT_B).unwrap();
    for (slot, st) in w.s.d.fabric().slots.borrow().iter() {
        let involves_b = [2, 3].contains(&slot.accel.get()) || [2, 3].contains(&slot.peer.get());
        if involves_b {
            assert_eq!(st.active.fingerprint, None, "{slot:?}");
            assert!(!st.enabled, "{slot:?}");
            assert_eq!(w.s.d.key_slot_meta(slot), None);
        } else {
            assert!(st.enabled, "{slot:?}");
        }
    }
}
