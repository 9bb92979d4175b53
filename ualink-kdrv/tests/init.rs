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

#[test]
fn vpods_take_whole_accelerators_once() {
    let mut s = Scenario::new();
    let t = s.tsm_file;
    s.d.tenant_add(&t, ualink_kdrv::TenantId(3)).unwrap();
    let r =
        s.d.vpod_create(&t, ualink_kdrv::TenantId(3), &[acc(4), acc(4)]);
    assert_eq!(r.map_err(Errno::from), Err(Errno::EINVAL));
    // Accelerator 2 is already in B's vPod.
    let r =
        s.d.vpod_create(&t, ualink_kdrv::TenantId(3), &[acc(4), acc(2)]);
    assert_eq!(r.map_err(Errno::from), Err(Errno::EBUSY));
    let r = s.d.vpod_create(&t, ualink_kdrv::TenantId(9), &[acc(4)]);
    assert_eq!(r.map_err(Errno::from), Err(Errno::ENOENT));
    // A quarantined accelerator cannot join.
    s.d.tdi_update(&t, acc(5), ualink_kdrv::TdiState::Error, 1, true)
        .unwrap();
    let r =
        s.d.vpod_create(&t, ualink_kdrv::TenantId(3), &[acc(4), acc(5)]);
    assert_eq!(r.map_err(Errno::from), Err(Errno::ENODEV));
    s.d.vpod_create(&t, ualink_kdrv::TenantId(3), &[acc(4)])
        .unwrap();
    assert_eq!(s.d.accel_tenant(acc(4)), Some(ualink_kdrv::TenantId(3)));
    // Windows only on the tenant's own accelerators, inside memory, without overlap.
    let t3 = ualink_kdrv::TenantId(3);
    assert_eq!(
        s.d.window_create(&t, t3, acc(2), 0, 4096)
            .map_err(Errno::from),
        Err(Errno::EPERM)
    );
    assert_eq!(
        s.d.window_create(&t, t3, acc(4), 1 << 30, 1)
            .map_err(Errno::from),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        s.d.window_create(&t, t3, acc(4), u64::MAX, 2)
            .map_err(Errno::from),
        Err(Errno::EOVERFLOW)
    );
    s.d.window_create(&t, t3, acc(4), 0, 8192).unwrap();
    assert_eq!(
        s.d.window_create(&t, t3, acc(4), 4096, 4096)
            .map_err(Errno::from),
        Err(Errno::EBUSY)
    );
}
