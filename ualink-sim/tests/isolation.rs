//! Isolation: tenant B cannot read or write tenant A's memory by any route, and the leak oracle
//! stays empty.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ualink_kdrv::ids::Rights;
use ualink_kdrv::ops::FaultReport;
use ualink_sim::error::KeyError;
use ualink_sim::ids::{SwitchIndex, SwitchPort};
use ualink_sim::ualinksec::StopReason;
use ualink_sim::{DevicePerm, SimError};

/// Tenant A = accelerators 1 and 2; tenant B = accelerator 3.
fn two_tenants() -> ualink_sim::SimPod {
    let p = pod(3);
    own(&p, id(1), 1);
    own(&p, id(2), 1);
    own(&p, id(3), 2);
    connect(&p, id(1), id(2), 1);
    grant(&p, id(2), id(1), 1, Rights::ALL);
    grant(&p, id(1), id(2), 2, Rights::ALL);
    p.local_write(id(1), 0, &[0xa1; 4096]).unwrap();
    p.local_write(id(2), 0, &[0xa2; 4096]).unwrap();
    p
}

fn a_memory_untouched(p: &ualink_sim::SimPod) {
    assert_eq!(p.local_read(id(1), 0, 4096).unwrap(), vec![0xa1; 4096]);
    assert_eq!(p.local_read(id(2), 0, 4096).unwrap(), vec![0xa2; 4096]);
}

#[test]
fn same_tenant_round_trip_with_real_encryption() {
    let p = two_tenants();
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    // Odd address and a length that is not a multiple of the transaction size.
    p.write(id(1), id(2), 0x1_0003, &data).unwrap();
    assert_eq!(p.local_read(id(2), 0x1_0003, 1000).unwrap(), data);
    assert_eq!(p.read(id(1), id(2), 0x1_0003, 1000).unwrap(), data);
    // Across the 256 KiB boundary where the clear upper address bits change.
    p.write(id(1), id(2), 0x3_ff80, &data).unwrap();
    assert_eq!(p.read(id(1), id(2), 0x3_ff80, 1000).unwrap(), data);
    // The other direction uses the other key pair.
    assert_eq!(p.read(id(2), id(1), 0, 16).unwrap(), vec![0xa1; 16]);
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn direct_access_without_route_keys_or_window_fails() {
    let p = two_tenants();
    // No route, no keys, no window for B.
    assert!(matches!(
        p.write(id(3), id(1), 0, &[0xbb; 64]),
        Err(SimError::RoutingDenied { .. })
    ));
    assert!(matches!(
        p.read(id(3), id(2), 0, 64),
        Err(SimError::RoutingDenied { .. })
    ));
    a_memory_untouched(&p);
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn window_table_refuses_keyed_and_routed_cross_tenant_access() {
    // Even with a route and link keys (say, left over from an earlier share), the target's window
    // table refuses B.
    let p = two_tenants();
    connect(&p, id(3), id(1), 1);
    let e = p.write(id(3), id(1), 0, &[0xbb; 64]).unwrap_err();
    assert!(matches!(e, SimError::WindowDenied { .. }), "{e:?}");
    let e = p.read(id(3), id(1), 0, 64).unwrap_err();
    assert!(matches!(e, SimError::WindowDenied { .. }), "{e:?}");
    // A permission for a *different* initiator or a read-only one does not help.
    p.grant_window(
        id(1),
        7,
        DevicePerm {
            initiator: id(3),
            base: 0,
            len: 16,
            rights: Rights::READ,
        },
    )
    .unwrap();
    assert!(matches!(
        p.write(id(3), id(1), 0, &[0xbb; 8]),
        Err(SimError::WindowDenied { .. })
    ));
    assert!(matches!(
        p.read(id(3), id(1), 8, 16),
        Err(SimError::WindowDenied { .. })
    ));
    a_memory_untouched(&p);
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn forged_routing_entry_without_keys_is_an_unkeyed_link() {
    let p = two_tenants();
    // The host opens the switch for B -> A behind the driver's back (both directions).
    let planes = p.planes(id(3), id(1)).unwrap();
    assert_eq!(planes.len(), 1);
    // Generated pod: accelerator i is on switch port i-1.
    p.host_write_route(SwitchIndex(0), SwitchPort(2), id(1), SwitchPort(0))
        .unwrap();
    p.host_write_route(SwitchIndex(0), SwitchPort(0), id(3), SwitchPort(2))
        .unwrap();
    let e = p.write(id(3), id(1), 0, &[0xbb; 64]).unwrap_err();
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
    let e = p.read(id(3), id(1), 0, 64).unwrap_err();
    assert!(matches!(e, SimError::Key { .. }), "{e:?}");
    a_memory_untouched(&p);
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn forged_routing_entry_that_misdirects_traffic_leaks_nothing() {
    let p = two_tenants();
    // Send A1's traffic for A2 to B's port instead.
    p.host_write_route(SwitchIndex(0), SwitchPort(0), id(2), SwitchPort(2))
        .unwrap();
    let e = p.write(id(1), id(2), 0, &[0x55; 64]).unwrap_err();
    assert!(matches!(e, SimError::Misrouted { .. }), "{e:?}");
    assert_eq!(p.local_read(id(3), 0, 64).unwrap(), vec![0; 64]);
    a_memory_untouched(&p);
    // Repairing the route is not enough: the dropped transaction consumed a TX counter, so the
    // next one fails verification, which stops the streams and is reported.
    p.host_write_route(SwitchIndex(0), SwitchPort(0), id(2), SwitchPort(1))
        .unwrap();
    let e = p.write(id(1), id(2), 0, &[0x55; 64]).unwrap_err();
    assert!(matches!(e, SimError::IntegrityFailure { .. }), "{e:?}");
    assert!(faults(&p)
        .iter()
        .any(|f| matches!(f, FaultReport::IntegrityFailure { .. })));
    a_memory_untouched(&p);
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn replayed_transfer_fails_on_the_counter() {
    let p = two_tenants();
    p.capture_wire(true).unwrap();
    p.write(id(1), id(2), 0x100, &[0x77; 32]).unwrap();
    let cap = p.captured().unwrap();
    assert_eq!(cap.len(), 2, "request and write response");
    p.capture_wire(false).unwrap();
    // The target's memory is changed locally so that a re-applied write would show.
    p.local_write(id(2), 0x100, &[0x00; 32]).unwrap();
    let req = &cap[0];
    let e = p
        .inject_wire(req.switch, req.ingress, &req.bytes)
        .unwrap_err();
    assert!(matches!(e, SimError::IntegrityFailure { .. }), "{e:?}");
    assert_eq!(p.local_read(id(2), 0x100, 32).unwrap(), vec![0; 32]);
    let f = faults(&p);
    assert!(
        f.iter().any(|f| matches!(f, FaultReport::IntegrityFailure { source, .. } if *source == id(1).to_kdrv())),
        "{f:?}"
    );
    // Every stream from the source is stopped: later requests from A1 fail until re-keyed.
    assert_eq!(
        p.slot_info(rx(id(2), id(1))).unwrap().stopped,
        Some(StopReason::IntegrityFailure)
    );
    assert!(p.write(id(1), id(2), 0x100, &[1; 4]).is_err());
    p.key_pair(id(1), id(2), 2).unwrap();
    p.write(id(1), id(2), 0x100, &[1; 4]).unwrap();
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn wrong_key_is_an_integrity_failure_that_stops_all_streams_and_is_reported() {
    let p = two_tenants();
    // An attacker-controlled key reaches A2's RX slot for A1 (newer epoch, different bytes).
    p.program_key(
        rx(id(2), id(1)),
        ualink_sim::ualinksec::KeyRole::Active,
        ualink_sim::ualinksec::MasterKey::new([0xee; 32], 9),
    )
    .unwrap();
    p.enable(rx(id(2), id(1))).unwrap();
    let e = p.write(id(1), id(2), 0, &[0xcc; 64]).unwrap_err();
    assert!(
        matches!(
            e,
            SimError::IntegrityFailure {
                stream: ualink_sim::ualinksec::StreamId::Requests,
                ..
            }
        ),
        "{e:?}"
    );
    a_memory_untouched(&p);
    let f = faults(&p);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(matches!(f[0], FaultReport::IntegrityFailure { .. }));
    // All streams from A1 are stopped: reads fail too, and the slot holds no key.
    let info = p.slot_info(rx(id(2), id(1))).unwrap();
    assert_eq!(info.stopped, Some(StopReason::IntegrityFailure));
    assert!(info.active.is_none());
    let e = p.read(id(1), id(2), 0, 16).unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Key {
                reason: KeyError::Stopped(StopReason::IntegrityFailure),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn unkeyed_link_refuses_traffic() {
    let p = pod(2);
    own(&p, id(1), 1);
    own(&p, id(2), 1);
    p.open_routes(id(1), id(2)).unwrap();
    grant(&p, id(2), id(1), 1, Rights::ALL);
    let e = p.write(id(1), id(2), 0, &[1; 8]).unwrap_err();
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
    // A TX key alone cannot be enabled: the peer's RX is not ready.
    p.program_key(
        tx(id(1), id(2)),
        ualink_sim::ualinksec::KeyRole::Active,
        ualink_sim::ualinksec::MasterKey::new([3; 32], 1),
    )
    .unwrap();
    assert!(matches!(
        p.enable(tx(id(1), id(2))),
        Err(SimError::Key {
            reason: KeyError::PeerRxNotReady,
            ..
        })
    ));
    let e = p.write(id(1), id(2), 0, &[1; 8]).unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Key {
                reason: KeyError::TxNotEnabled,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(p.local_read(id(2), 0, 8).unwrap(), vec![0; 8]);
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn oracle_sees_a_host_written_window_permission() {
    // The oracle is not vacuous: a permission written behind the driver's back lets bytes cross,
    // and they are recorded.
    let p = two_tenants();
    connect(&p, id(3), id(1), 1);
    p.host_write_window_perm(
        id(1),
        99,
        DevicePerm {
            initiator: id(3),
            base: 0,
            len: 64,
            rights: Rights::ALL,
        },
    )
    .unwrap();
    p.write(id(3), id(1), 0, &[0xbb; 16]).unwrap();
    let got = p.read(id(3), id(1), 16, 16).unwrap();
    assert_eq!(got, vec![0xa1; 16]);
    let leaks = p.leaks().unwrap();
    assert_eq!(leaks.len(), 2, "{leaks:?}");
    assert_eq!(leaks[0].len, 16);
}

#[test]
fn driver_granted_cross_tenant_share_is_not_a_leak() {
    let p = two_tenants();
    connect(&p, id(3), id(1), 1);
    p.grant_window(
        id(1),
        50,
        DevicePerm {
            initiator: id(3),
            base: 0x200,
            len: 0x100,
            rights: Rights::READ,
        },
    )
    .unwrap();
    assert_eq!(
        p.read(id(3), id(1), 0x200, 0x100).unwrap(),
        vec![0xa1; 0x100]
    );
    // Outside the grant, or writing: refused.
    assert!(p.read(id(3), id(1), 0x1f0, 0x20).is_err());
    assert!(p.write(id(3), id(1), 0x200, &[0; 4]).is_err());
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn tamper_of_every_request_byte_is_detected() {
    let p = two_tenants();
    let data = [0x5au8; 16];
    // Wire layout of the write: 16 header + 5 encrypted prefix + 16 data + 8 tag.
    let wire_len = 16 + 5 + 16 + 8;
    let mut epoch = 1;
    for offset in 0..wire_len {
        for xor in [0x01u8, 0x80] {
            epoch += 1;
            p.key_pair(id(1), id(2), epoch).unwrap();
            p.tamper_next_wire(ualink_sim::sim::WireTamper { offset, xor })
                .unwrap();
            let e = p
                .write(id(1), id(2), 0x800, &data)
                .expect_err(&format!("tamper at {offset} xor {xor:#x} went undetected"));
            if offset >= 16 {
                assert!(
                    matches!(e, SimError::IntegrityFailure { .. }),
                    "offset {offset}: {e:?}"
                );
            } else {
                // Header fields: the cmd/len/address are authenticated (integrity failure); IDs
                // change the route or the key (Deny, misroute, no key); reserved bits and
                // unknown codes are malformed.
                assert!(
                    matches!(
                        e,
                        SimError::IntegrityFailure { .. }
                            | SimError::RoutingDenied { .. }
                            | SimError::Misrouted { .. }
                            | SimError::Malformed(_)
                            | SimError::Key { .. }
                    ),
                    "offset {offset}: {e:?}"
                );
            }
            a_memory_untouched(&p);
            faults(&p);
        }
    }
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn tamper_of_read_response_is_detected_and_nothing_is_delivered() {
    let p = two_tenants();
    // Header 16 + prefix 3 + data 16 + tag 8 for the read response.
    for offset in 16..(16 + 3 + 16 + 8) {
        p.key_pair(id(1), id(2), offset as u32 + 10).unwrap();
        // The first queued tamper hits the request (a no-op XOR), the second the response.
        p.tamper_next_wire(ualink_sim::sim::WireTamper { offset: 0, xor: 0 })
            .unwrap();
        p.tamper_next_wire(ualink_sim::sim::WireTamper { offset, xor: 0x10 })
            .unwrap();
        let e = p.read(id(1), id(2), 0, 16).unwrap_err();
        assert!(
            matches!(e, SimError::IntegrityFailure { .. }),
            "offset {offset}: {e:?}"
        );
        let f = faults(&p);
        assert!(
            f.iter().any(
                |f| matches!(f, FaultReport::IntegrityFailure { at, .. } if *at == id(1).to_kdrv())
            ),
            "{f:?}"
        );
    }
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn transfers_outside_the_target_memory_are_refused_before_any_traffic() {
    let p = two_tenants();
    assert!(matches!(
        p.read(id(1), id(2), 0, 1 << 40),
        Err(SimError::BadTransfer)
    ));
    assert!(matches!(
        p.write(id(1), id(2), (1 << 20) - 2, &[0; 4]),
        Err(SimError::BadTransfer)
    ));
    assert!(matches!(
        p.read(id(1), id(2), 0, 0),
        Err(SimError::BadTransfer)
    ));
    // The link is still in step afterwards.
    p.write(id(1), id(2), 0, &[1; 4]).unwrap();
}
