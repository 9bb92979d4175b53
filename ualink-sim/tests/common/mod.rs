//! Shared scaffolding for ualink-sim integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ualink_kdrv::ids::Rights;
use ualink_sim::pod::{GenParams, PodSpec};
use ualink_sim::ualinksec::Direction;
use ualink_sim::{AccelId, DevicePerm, PortIndex, SimPod, SlotRef, TenantId};

pub(crate) fn id(v: u16) -> AccelId {
    AccelId::new(v).unwrap()
}

/// `n` accelerators (IDs 1..=n, 1 MiB each), one switch, one spare port each.
pub(crate) fn pod(n: u16) -> SimPod {
    SimPod::new(
        &PodSpec::generate(&GenParams {
            accelerators: n,
            switches: 1,
            memory_bytes: 1 << 20,
            spare_ports: 1,
        })
        .unwrap(),
    )
    .unwrap()
}

/// Routes both ways and keys both directions at `epoch`.
pub(crate) fn connect(p: &SimPod, a: AccelId, b: AccelId, epoch: u32) {
    p.open_routes(a, b).unwrap();
    p.key_pair(a, b, epoch).unwrap();
}

/// Driver-path window permission: `initiator` may access all of `target`'s memory.
pub(crate) fn grant(p: &SimPod, target: AccelId, initiator: AccelId, tag: u64, rights: Rights) {
    p.grant_window(
        target,
        tag,
        DevicePerm {
            initiator,
            base: 0,
            len: 1 << 20,
            rights,
        },
    )
    .unwrap();
}

pub(crate) fn own(p: &SimPod, a: AccelId, t: u32) {
    p.set_owner(a, Some(TenantId(t))).unwrap();
}

pub(crate) fn tx(a: AccelId, peer: AccelId) -> SlotRef {
    SlotRef {
        accel: a,
        port: PortIndex(0),
        dir: Direction::Tx,
        peer,
    }
}

pub(crate) fn rx(a: AccelId, peer: AccelId) -> SlotRef {
    SlotRef {
        accel: a,
        port: PortIndex(0),
        dir: Direction::Rx,
        peer,
    }
}

pub(crate) fn faults(p: &SimPod) -> Vec<ualink_kdrv::ops::FaultReport> {
    let mut v = Vec::new();
    while let Some(f) = p.take_fault().unwrap() {
        v.push(f);
    }
    v
}
