//! Key life cycle on the link: RX before TX, KeyRollMSG swaps, stale keys, roll timeouts, port
//! migration, device reset and link flaps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ualink_kdrv::ids::Rights;
use ualink_kdrv::ops::FaultReport;
use ualink_sim::error::KeyError;
use ualink_sim::sim::KeyRollFault;
use ualink_sim::ualinksec::{KeyRole, MasterKey, SecParams, StopReason};
use ualink_sim::{PortIndex, SimError, SimPod};

fn pair() -> SimPod {
    let p = pod(2);
    own(&p, id(1), 1);
    own(&p, id(2), 1);
    connect(&p, id(1), id(2), 1);
    grant(&p, id(2), id(1), 1, Rights::ALL);
    grant(&p, id(1), id(2), 2, Rights::ALL);
    p
}

#[test]
fn rx_must_be_enabled_before_tx() {
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let k = [0x31u8; 32];
    p.program_key(tx(id(1), id(2)), KeyRole::Active, MasterKey::new(k, 1))
        .unwrap();
    p.program_key(rx(id(2), id(1)), KeyRole::Active, MasterKey::new(k, 1))
        .unwrap();
    // TX first: refused.
    assert!(matches!(
        p.enable(tx(id(1), id(2))),
        Err(SimError::Key {
            reason: KeyError::PeerRxNotReady,
            ..
        })
    ));
    p.enable(rx(id(2), id(1))).unwrap();
    p.enable(tx(id(1), id(2))).unwrap();
    // A TX key that differs from the peer's RX key is refused even with RX enabled.
    p.program_key(
        tx(id(1), id(2)),
        KeyRole::Active,
        MasterKey::new([0x32; 32], 2),
    )
    .unwrap();
    assert!(matches!(
        p.enable(tx(id(1), id(2))),
        Err(SimError::Key {
            reason: KeyError::PeerRxNotReady,
            ..
        })
    ));
    // Both ends hold the same key: the fingerprints the driver sees match.
    p.key_pair(id(1), id(2), 3).unwrap();
    let a = p.slot_info(tx(id(1), id(2))).unwrap();
    let b = p.slot_info(rx(id(2), id(1))).unwrap();
    assert_eq!(a.active, b.active);
    assert!(a.enabled && b.enabled);
}

#[test]
fn key_roll_message_swaps_active_and_alternate_in_band() {
    let p = pair();
    p.write(id(1), id(2), 0, b"before").unwrap();
    let before = p.slot_info(tx(id(1), id(2))).unwrap().active.unwrap();
    p.key_pair_alternate(id(1), id(2), 2).unwrap();
    p.key_roll(tx(id(1), id(2))).unwrap();
    let t = p.slot_info(tx(id(1), id(2))).unwrap();
    let r = p.slot_info(rx(id(2), id(1))).unwrap();
    assert_eq!(t.active.unwrap().0, 2);
    assert_eq!(t.active, r.active, "both ends moved to the same key");
    assert_ne!(t.active.unwrap().1, before.1);
    assert!(t.alternate_stale && r.alternate_stale);
    p.write(id(1), id(2), 0, b"after!").unwrap();
    assert_eq!(p.read(id(1), id(2), 0, 6).unwrap(), b"after!");
    // Without a fresh alternate another roll is refused.
    assert!(matches!(
        p.key_roll(tx(id(1), id(2))),
        Err(SimError::Key {
            reason: KeyError::NoFreshAlternate,
            ..
        })
    ));
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn threshold_rolls_automatically_when_an_alternate_is_fresh() {
    let p = pair();
    p.set_sec_params(SecParams {
        roll_threshold: 4,
        ..SecParams::default()
    })
    .unwrap();
    p.key_pair_alternate(id(1), id(2), 2).unwrap();
    // Four writes reach the threshold and roll to epoch 2; two more run on the new key (a
    // further four would need another fresh alternate).
    for i in 0..6u8 {
        p.write(id(1), id(2), u64::from(i) * 4, &[i; 4]).unwrap();
    }
    assert_eq!(p.slot_info(tx(id(1), id(2))).unwrap().active.unwrap().0, 2);
    assert_eq!(p.slot_info(rx(id(2), id(1))).unwrap().active.unwrap().0, 2);
}

#[test]
fn stale_alternate_key_stops_traffic_at_the_threshold() {
    let p = pair();
    p.set_sec_params(SecParams {
        roll_threshold: 4,
        ..SecParams::default()
    })
    .unwrap();
    // No alternate key programmed: at the threshold the key is stale and the slot stops.
    let mut res = Ok(());
    for i in 0..8u8 {
        res = p.write(id(1), id(2), 0, &[i; 4]);
        if res.is_err() {
            break;
        }
    }
    let e = res.unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Key {
                reason: KeyError::Stopped(StopReason::StaleKey),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(faults(&p)
        .iter()
        .any(|f| matches!(f, FaultReport::StaleKey { .. })));
}

#[test]
fn stale_alternate_not_replaced_in_time_stops_traffic() {
    let p = pair();
    p.key_pair_alternate(id(1), id(2), 2).unwrap();
    p.key_roll(tx(id(1), id(2))).unwrap();
    let timeout = SecParams::default().stale_key_timeout_ns;
    p.advance_clock(timeout + 1).unwrap();
    let f = faults(&p);
    assert!(
        f.iter().any(|f| matches!(f, FaultReport::StaleKey { .. })),
        "{f:?}"
    );
    let e = p.write(id(1), id(2), 0, &[1; 4]).unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Key {
                reason: KeyError::Stopped(StopReason::StaleKey),
                ..
            }
        ),
        "{e:?}"
    );
    // Refreshing the alternate in time keeps traffic flowing.
    let p = pair();
    p.key_pair_alternate(id(1), id(2), 2).unwrap();
    p.key_roll(tx(id(1), id(2))).unwrap();
    p.advance_clock(timeout / 2).unwrap();
    p.key_pair_alternate(id(1), id(2), 3).unwrap();
    p.advance_clock(timeout).unwrap();
    p.write(id(1), id(2), 0, &[1; 4]).unwrap();
}

#[test]
fn dropped_key_roll_message_times_out_and_stops() {
    let p = pair();
    p.key_pair_alternate(id(1), id(2), 2).unwrap();
    p.keyroll_fault(KeyRollFault::Drop).unwrap();
    p.key_roll(tx(id(1), id(2))).unwrap();
    assert!(matches!(
        p.write(id(1), id(2), 0, &[1; 4]),
        Err(SimError::Key {
            reason: KeyError::RollPending,
            ..
        })
    ));
    p.advance_clock(SecParams::default().keyroll_timeout_ns + 1)
        .unwrap();
    let f = faults(&p);
    assert!(
        f.iter()
            .any(|f| matches!(f, FaultReport::KeyRollTimeout { .. })),
        "{f:?}"
    );
    assert!(matches!(
        p.write(id(1), id(2), 0, &[1; 4]),
        Err(SimError::Key {
            reason: KeyError::Stopped(StopReason::KeyRollTimeout),
            ..
        })
    ));
}

#[test]
fn delayed_key_roll_message_within_the_timeout_completes() {
    let p = pair();
    let t = SecParams::default().keyroll_timeout_ns;
    p.key_pair_alternate(id(1), id(2), 2).unwrap();
    p.keyroll_fault(KeyRollFault::Delay(t / 2)).unwrap();
    p.key_roll(tx(id(1), id(2))).unwrap();
    assert!(
        p.write(id(1), id(2), 0, &[1; 4]).is_err(),
        "paused while pending"
    );
    p.advance_clock(t / 2).unwrap();
    assert_eq!(p.slot_info(tx(id(1), id(2))).unwrap().active.unwrap().0, 2);
    p.write(id(1), id(2), 0, &[2; 4]).unwrap();
    assert!(faults(&p).is_empty());
}

#[test]
fn delayed_key_roll_message_past_the_timeout_stops() {
    let p = pair();
    let t = SecParams::default().keyroll_timeout_ns;
    p.key_pair_alternate(id(1), id(2), 2).unwrap();
    p.keyroll_fault(KeyRollFault::Delay(2 * t)).unwrap();
    p.key_roll(tx(id(1), id(2))).unwrap();
    p.advance_clock(t + 1).unwrap();
    p.advance_clock(t).unwrap();
    assert!(faults(&p)
        .iter()
        .any(|f| matches!(f, FaultReport::KeyRollTimeout { .. })));
    assert!(p.write(id(1), id(2), 0, &[1; 4]).is_err());
}

#[test]
fn port_migration_re_keys_both_ends_before_traffic() {
    let p = pair();
    p.write(id(1), id(2), 0, &[1; 4]).unwrap();
    p.migrate_port(id(1), PortIndex(0), PortIndex(1)).unwrap();
    let f = faults(&p);
    let Some(FaultReport::PortMigrated {
        from,
        to,
        switch_port,
        ..
    }) = f.first().copied()
    else {
        panic!("{f:?}");
    };
    assert_eq!((from.0, to.0), (0, 1));
    // Generated pod with 2 accelerators: accelerator 1's spare is on switch port 2.
    assert_eq!(switch_port.0, 2);
    // The peer's slots toward the migrated accelerator are stopped: both ends need new keys.
    let peer_rx = p.slot_info(rx(id(2), id(1))).unwrap();
    assert_eq!(peer_rx.stopped, Some(StopReason::PortMigrated));
    assert!(peer_rx.active.is_none());
    // Routes re-pointed at the new switch port, but no keys yet: no traffic.
    p.open_routes(id(1), id(2)).unwrap();
    let e = p.write(id(1), id(2), 0, &[2; 4]).unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Key {
                reason: KeyError::NoKey,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(p.local_read(id(2), 0, 4).unwrap(), vec![1; 4]);
    // Re-keyed on the new port (and the peer): traffic resumes over port 1.
    p.key_pair(id(1), id(2), 2).unwrap();
    p.write(id(1), id(2), 0, &[3; 4]).unwrap();
    assert_eq!(p.read(id(1), id(2), 0, 4).unwrap(), vec![3; 4]);
    assert_eq!(
        p.planes(id(1), id(2)).unwrap(),
        vec![(PortIndex(1), PortIndex(0))]
    );
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn device_reset_drops_keys_windows_and_memory() {
    let p = pair();
    p.write(id(1), id(2), 0, &[9; 8]).unwrap();
    p.reset_device(id(2)).unwrap();
    assert!(faults(&p)
        .iter()
        .any(|f| matches!(f, FaultReport::DeviceReset { .. })));
    assert_eq!(
        p.local_read(id(2), 0, 8).unwrap(),
        vec![0; 8],
        "memory scrubbed"
    );
    assert!(p.write(id(1), id(2), 0, &[1; 8]).is_err());
    // Re-keyed but no window yet: the reset cleared the permissions.
    p.key_pair(id(1), id(2), 2).unwrap();
    assert!(matches!(
        p.write(id(1), id(2), 0, &[1; 8]),
        Err(SimError::WindowDenied { .. })
    ));
    grant(&p, id(2), id(1), 1, Rights::ALL);
    p.write(id(1), id(2), 0, &[1; 8]).unwrap();
    assert!(p
        .take_device_events(id(2))
        .unwrap()
        .contains(&ualink_sim::sim::DeviceEvent::Reset));
}

#[test]
fn link_flap_stops_both_ends_until_re_keyed() {
    let p = pair();
    p.link_flap(id(1), PortIndex(0)).unwrap();
    let f = faults(&p);
    assert!(
        matches!(f.first(), Some(FaultReport::LinkDown { .. })),
        "{f:?}"
    );
    assert!(
        matches!(f.get(1), Some(FaultReport::LinkUp { .. })),
        "{f:?}"
    );
    assert!(p.write(id(1), id(2), 0, &[1; 4]).is_err());
    assert_eq!(
        p.slot_info(rx(id(2), id(1))).unwrap().stopped,
        Some(StopReason::LinkDown)
    );
    p.key_pair(id(1), id(2), 2).unwrap();
    p.write(id(1), id(2), 0, &[1; 4]).unwrap();
}

#[test]
fn epochs_never_repeat_on_a_slot() {
    let p = pair();
    // Re-programming the same epoch would restart the counters under the same stream keys.
    let e = p
        .program_key(
            tx(id(1), id(2)),
            KeyRole::Active,
            MasterKey::new([1; 32], 1),
        )
        .unwrap_err();
    assert!(matches!(
        e,
        SimError::Key {
            reason: KeyError::EpochNotAdvancing,
            ..
        }
    ));
}

#[test]
fn host_config_write_to_a_tdi_reaches_the_security_engine() {
    let p = pair();
    p.host_write_tdi_config(id(2), 0, 0x10, &[0xff; 4]).unwrap();
    let ev = p.take_device_events(id(2)).unwrap();
    assert_eq!(
        ev,
        vec![ualink_sim::sim::DeviceEvent::TdiConfigWrite {
            tdi: 0,
            offset: 0x10,
            bytes: vec![0xff; 4]
        }]
    );
    assert!(p.take_device_events(id(2)).unwrap().is_empty());
}

#[test]
fn debug_output_of_the_whole_pod_never_shows_key_bytes() {
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let k = [0x5cu8; 32];
    p.program_key(tx(id(1), id(2)), KeyRole::Active, MasterKey::new(k, 1))
        .unwrap();
    p.program_key(rx(id(2), id(1)), KeyRole::Active, MasterKey::new(k, 1))
        .unwrap();
    p.program_key(tx(id(1), id(2)), KeyRole::Alternate, MasterKey::new(k, 2))
        .unwrap();
    let d = format!("{p:?}");
    assert!(d.contains("redacted"));
    assert!(
        !d.contains("92, 92, 92, 92, 92, 92, 92, 92"),
        "key bytes in Debug output"
    );
    assert!(
        !d.to_lowercase().contains("5c5c"),
        "key bytes in Debug output"
    );
}
