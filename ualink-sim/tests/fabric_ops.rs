//! The driver's `FabricOps` contract, exercised on the simulated pod.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ualink_kdrv::ids::{PortId, Rights, SwitchId};
use ualink_kdrv::ops::{
    Direction, Discovered, DrainOutcome, FabricOps, FaultReport, KeySlotCommand, KeySlotRef,
    OpsError, PermTag, RouteEntry, SlotState, WindowPerm,
};
use ualink_sim::SimError;

fn kslot(a: u16, dir: Direction, peer: u16) -> KeySlotRef {
    KeySlotRef {
        accel: id(a).to_kdrv(),
        port: PortId(0),
        dir,
        peer: id(peer).to_kdrv(),
    }
}

#[test]
fn enumerate_reports_accelerators_switches_then_links() {
    let p = pod(3);
    let mut seen = Vec::new();
    p.enumerate(&mut |d| {
        seen.push(d);
        Ok(())
    })
    .unwrap();
    let kinds: Vec<u8> = seen
        .iter()
        .map(|d| match d {
            Discovered::Accelerator(_) => 0,
            Discovered::Switch(_) => 1,
            Discovered::Link(_) => 2,
        })
        .collect();
    assert!(kinds.windows(2).all(|w| w[0] <= w[1]), "ordered: {kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == 0).count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == 1).count(), 1);
    // One active and one spare cable per accelerator; spares are not up.
    let links: Vec<_> = seen
        .iter()
        .filter_map(|d| match d {
            Discovered::Link(l) => Some(*l),
            _ => None,
        })
        .collect();
    assert_eq!(links.len(), 6);
    assert_eq!(links.iter().filter(|l| l.up).count(), 3);
    if let Discovered::Accelerator(a) = seen[0] {
        assert_eq!(a.mem_bytes, 1 << 20);
        assert_eq!(a.ports, 2);
    }
    // A failing visitor stops the walk with its error.
    let mut n = 0;
    assert_eq!(
        p.enumerate(&mut |_| {
            n += 1;
            Err(OpsError::NoMemory)
        }),
        Err(OpsError::NoMemory)
    );
    assert_eq!(n, 1);
}

#[test]
fn routing_entries_through_fabric_ops() {
    let p = pod(2);
    let sw = SwitchId(0);
    // All Deny after reset.
    for ingress in 0..4 {
        for dest in 0..4 {
            assert_eq!(
                p.route_get(sw, PortId(ingress), id(dest).to_kdrv())
                    .unwrap(),
                None
            );
        }
    }
    let e = RouteEntry {
        switch: sw,
        ingress: PortId(0),
        dest: id(2).to_kdrv(),
        egress: PortId(1),
    };
    p.route_set(&e).unwrap();
    assert_eq!(
        p.route_get(sw, PortId(0), id(2).to_kdrv()).unwrap(),
        Some(PortId(1))
    );
    p.route_clear(sw, PortId(0), id(2).to_kdrv()).unwrap();
    p.route_clear(sw, PortId(0), id(2).to_kdrv()).unwrap();
    assert_eq!(p.route_get(sw, PortId(0), id(2).to_kdrv()).unwrap(), None);
    assert_eq!(
        p.route_set(&RouteEntry {
            switch: SwitchId(9),
            ..e
        }),
        Err(OpsError::NoDevice)
    );
    assert_eq!(
        p.route_set(&RouteEntry {
            egress: PortId(999),
            ..e
        }),
        Err(OpsError::NoDevice)
    );
    // A host write behind the driver's back is visible on read-back (the driver compares).
    p.host_write_route(
        ualink_sim::SwitchIndex(0),
        ualink_sim::SwitchPort(1),
        id(1),
        ualink_sim::SwitchPort(0),
    )
    .unwrap();
    assert_eq!(
        p.route_get(sw, PortId(1), id(1).to_kdrv()).unwrap(),
        Some(PortId(0))
    );
    p.reset_switch(ualink_sim::SwitchIndex(0)).unwrap();
    assert_eq!(p.route_get(sw, PortId(1), id(1).to_kdrv()).unwrap(), None);
}

#[test]
fn window_permissions_gate_transfers_and_clear_zaps() {
    let p = pod(2);
    connect(&p, id(1), id(2), 1);
    let perm = WindowPerm {
        target: id(2).to_kdrv(),
        initiator: id(1).to_kdrv(),
        base: 0x1000,
        len: 0x1000,
        rights: Rights::WRITE,
        tag: PermTag(5),
    };
    assert!(p.write(id(1), id(2), 0x1000, &[1; 8]).is_err());
    p.window_perm_set(&perm).unwrap();
    p.write(id(1), id(2), 0x1000, &[1; 8]).unwrap();
    assert!(p.read(id(1), id(2), 0x1000, 8).is_err(), "write-only");
    p.window_perm_clear(id(2).to_kdrv(), PermTag(5)).unwrap();
    p.window_perm_clear(id(2).to_kdrv(), PermTag(5)).unwrap();
    assert!(matches!(
        p.write(id(1), id(2), 0x1000, &[2; 8]),
        Err(SimError::WindowDenied { .. })
    ));
    assert_eq!(
        p.window_perm_set(&WindowPerm { len: 0, ..perm }),
        Err(OpsError::Invalid)
    );
    assert_eq!(
        p.window_perm_set(&WindowPerm {
            base: (1 << 20) - 4,
            len: 8,
            ..perm
        }),
        Err(OpsError::Invalid)
    );
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn drain_waits_within_the_budget_and_blocks_new_transfers() {
    let p = pod(2);
    connect(&p, id(1), id(2), 1);
    let perm = WindowPerm {
        target: id(2).to_kdrv(),
        initiator: id(1).to_kdrv(),
        base: 0,
        len: 0x1000,
        rights: Rights::ALL,
        tag: PermTag(1),
    };
    p.window_perm_set(&perm).unwrap();
    p.hold_inflight(id(2), 1, 3, 5_000).unwrap();
    let t0 = p.now().0;
    assert_eq!(
        p.drain(id(2).to_kdrv(), PermTag(1), 10_000).unwrap(),
        DrainOutcome::Drained { elapsed_ns: 5_000 }
    );
    assert_eq!(p.now().0, t0 + 5_000);
    // Draining: no new transfer is admitted under the tag.
    assert!(matches!(
        p.write(id(1), id(2), 0, &[1; 4]),
        Err(SimError::WindowDenied { .. })
    ));
    // A transfer that outlives the budget.
    p.window_perm_set(&perm).unwrap();
    p.hold_inflight(id(2), 1, 2, 50_000).unwrap();
    assert_eq!(
        p.drain(id(2).to_kdrv(), PermTag(1), 10_000).unwrap(),
        DrainOutcome::TimedOut { outstanding: 2 }
    );
    assert_eq!(p.now().0, t0 + 15_000);
}

#[test]
fn key_slot_commands_report_metadata_only() {
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let t = kslot(1, Direction::Tx, 2);
    let r = kslot(2, Direction::Rx, 1);
    assert_eq!(
        p.key_slot(t, KeySlotCommand::Query).unwrap().active.state,
        SlotState::Empty
    );
    // Keys arrive through the device's key sink (SPDM in the full system).
    let k = [0x42u8; 32];
    p.program_key(
        tx(id(1), id(2)),
        ualink_sim::ualinksec::KeyRole::Active,
        ualink_sim::ualinksec::MasterKey::new(k, 7),
    )
    .unwrap();
    p.program_key(
        rx(id(2), id(1)),
        ualink_sim::ualinksec::KeyRole::Active,
        ualink_sim::ualinksec::MasterKey::new(k, 7),
    )
    .unwrap();
    let q = p.key_slot(t, KeySlotCommand::Query).unwrap();
    assert_eq!(q.active.state, SlotState::Programmed);
    assert_eq!(q.active.epoch, 7);
    assert!(!q.enabled);
    // TX before RX: refused (retry after RX).
    assert_eq!(p.key_slot(t, KeySlotCommand::Go), Err(OpsError::Busy));
    let rs = p.key_slot(r, KeySlotCommand::Go).unwrap();
    assert_eq!(rs.active.state, SlotState::Live);
    let ts = p.key_slot(t, KeySlotCommand::Go).unwrap();
    assert_eq!(ts.active.state, SlotState::Live);
    assert_eq!(
        ts.active.fingerprint, rs.active.fingerprint,
        "same key at both ends"
    );
    // The fingerprint is SHA-384 over the documented label and the key, never the key.
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA384);
    ctx.update(ualink_sim::ualinksec::FINGERPRINT_LABEL);
    ctx.update(&k);
    assert_eq!(
        ts.active.fingerprint.unwrap().0.as_slice(),
        ctx.finish().as_ref()
    );
    assert!(!format!("{ts:?}").contains("4242"));
    // RX does not roll on command (it rolls in-band).
    assert_eq!(p.key_slot(r, KeySlotCommand::Roll), Err(OpsError::Invalid));
    // Stop disables; Invalidate zeroizes.
    assert!(!p.key_slot(t, KeySlotCommand::Stop).unwrap().enabled);
    let inv = p.key_slot(t, KeySlotCommand::Invalidate).unwrap();
    assert_eq!(inv.active.state, SlotState::Empty);
    assert_eq!(inv.active.fingerprint, None);
    assert_eq!(
        p.key_slot(kslot(1, Direction::Tx, 9), KeySlotCommand::Query),
        Err(OpsError::NoDevice)
    );
}

#[test]
fn roll_command_and_stale_metadata() {
    let p = pod(2);
    connect(&p, id(1), id(2), 1);
    p.key_pair_alternate(id(1), id(2), 2).unwrap();
    let t = kslot(1, Direction::Tx, 2);
    let st = p.key_slot(t, KeySlotCommand::Roll).unwrap();
    assert_eq!(st.active.epoch, 2);
    assert_eq!(st.alternate.state, SlotState::Stale);
    // No fresh alternate: a second roll is refused.
    assert_eq!(p.key_slot(t, KeySlotCommand::Roll), Err(OpsError::Invalid));
}

#[test]
fn stop_streams_and_fault_queue() {
    let p = pod(2);
    connect(&p, id(1), id(2), 1);
    grant(&p, id(2), id(1), 1, Rights::ALL);
    p.stop_streams(id(2).to_kdrv(), PortId(0), id(1).to_kdrv())
        .unwrap();
    assert!(p.write(id(1), id(2), 0, &[1; 4]).is_err());
    assert_eq!(p.next_fault(), None);
    p.link_flap(id(1), ualink_sim::PortIndex(0)).unwrap();
    assert!(matches!(p.next_fault(), Some(FaultReport::LinkDown { .. })));
    assert!(matches!(p.next_fault(), Some(FaultReport::LinkUp { .. })));
    assert_eq!(p.next_fault(), None);
}

#[test]
fn spdm_mailbox_errors() {
    let p = pod(1);
    // Nothing queued yet; unknown device; undecodable framing.
    let mut buf = [0u8; 64];
    assert_eq!(
        p.spdm_receive(id(1).to_kdrv(), &mut buf),
        Err(OpsError::WouldBlock)
    );
    assert_eq!(
        p.spdm_send(id(7).to_kdrv(), &[0x05, 0x10, 0x84, 0, 0]),
        Err(OpsError::NoDevice)
    );
    assert_eq!(p.spdm_send(id(1).to_kdrv(), &[]), Err(OpsError::Invalid));
    // GET_VERSION (MCTP type 0x05): a VERSION answer that does not fit a 4-byte buffer stays
    // queued.
    p.spdm_send(id(1).to_kdrv(), &[0x05, 0x10, 0x84, 0, 0])
        .unwrap();
    let mut small = [0u8; 4];
    assert_eq!(
        p.spdm_receive(id(1).to_kdrv(), &mut small),
        Err(OpsError::TooBig)
    );
    let n = p.spdm_receive(id(1).to_kdrv(), &mut buf).unwrap();
    assert_eq!(
        &buf[..3],
        &[0x05, 0x10, 0x04],
        "MCTP SPDM, version 1.0, VERSION"
    );
    assert!(n > 6);
}
