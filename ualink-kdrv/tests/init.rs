//! Driver initialisation: enumeration from the untrusted Pod Controller is checked.
#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod common;

use common::*;
use ualink_kdrv::crypto::RingCrypto;
use ualink_kdrv::{Config, Driver, Errno};

#[test]
fn duplicate_accelerator_ids_are_refused_at_init() {
    let mut f = FakeFabric::new(4, 2);
    let dup = f.accels[1];
    f.accels.push(dup);
    let tsm = Tsm::new();
    let r = Driver::new(
        f,
        RingCrypto,
        AuditLog::default(),
        Notes::default(),
        tsm.public,
        [0; 32],
        Config::default(),
    );
    assert_eq!(r.err(), Some(Errno::EEXIST));
}

#[test]
fn fresh_driver_has_deny_everywhere_and_no_tenants() {
    let f = FakeFabric::new(4, 2);
    let tsm = Tsm::new();
    let d = Driver::new(
        f,
        RingCrypto,
        AuditLog::default(),
        Notes::default(),
        tsm.public,
        [0; 32],
        Config::default(),
    )
    .unwrap();
    assert!(d.fabric().routes.borrow().is_empty());
    assert!(d.fabric().perms.borrow().is_empty());
    assert_eq!(d.accel_tenant(acc(0)), None);
    assert_eq!(
        d.tdi(acc(0)),
        Some((ualink_kdrv::TdiState::ConfigUnlocked, 0))
    );
    assert_eq!(d.tdi(acc(9)), None);
    assert_eq!(d.mappings().count(), 0);
}
