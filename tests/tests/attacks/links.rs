//! The links: an unkeyed link the host opened by hand, a dropped KeyRollMSG, a stale
//! alternate key at the swap, and a physical attacker flipping or replaying wire bytes.
//! UALinkSec's key state stops the traffic; the driver revokes what depended on it; the leak
//! oracle stays empty.

use ualink_attest::audit::{DecisionKind, Outcome};
use ualink_kdrv::ids::{OsInstanceId, Rights, TenantId};
use ualink_kdrv::ops::FaultReport;
use ualink_kdrv::FileCtx;
use ualink_sim::error::KeyError;
use ualink_sim::sim::{KeyRollFault, WireTamper};
use ualink_sim::ualinksec::{SecParams, StopReason};
use ualink_sim::{DevicePerm, SimError, SimPod};
use ualink_tsm::{Tsm, TsmError};

use crate::common::*;

fn faults(p: &SimPod) -> Vec<FaultReport> {
    let mut v = Vec::new();
    while let Some(f) = p.take_fault().unwrap() {
        v.push(f);
    }
    v
}

/// B attached and mapped A's buffer through a real grant (the share the attacks below disturb).
fn shared(dir: &std::path::Path) -> (Tsm, ualink_kdrv::ids::AttachmentId) {
    let (mut t, h) = two_tenants(dir);
    let g = t.share(&read_request(h)).unwrap();
    let att = attach_b(&mut t, h, Some(&g.grant)).unwrap();
    let fb = FileCtx::tenant(TenantId(TB), OsInstanceId(OS_B));
    t.driver_mut().map(&fb, att).unwrap();
    assert_eq!(
        t.pod().read(id(3), id(1), BUF_ADDR, 4).unwrap(),
        vec![SECRET; 4]
    );
    (t, att)
}

/// The host opens routes and writes a target window permission between A's accelerator 2 and
/// B's accelerator 4 behind the driver's back. No key was ever programmed for that pair, so
/// the port refuses to send.
#[test]
fn unkeyed_link_opened_by_the_host_carries_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _h) = two_tenants(dir.path());
    let p = t.pod();
    p.open_routes(id(2), id(4)).unwrap();
    p.host_write_window_perm(
        id(2),
        0xbad,
        DevicePerm {
            initiator: id(4),
            base: 0,
            len: 1 << 20,
            rights: Rights::ALL,
        },
    )
    .unwrap();
    let e = p.read(id(4), id(2), 0, 16).unwrap_err();
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
    let e = p.write(id(4), id(2), 0, b"x").unwrap_err();
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
    assert!(!t.link_keys_live(2, 4).unwrap());
    assert_no_leaks(p);
}

/// The KeyRollMSG of a TSM key rotation on A's 1↔2 link is dropped by the fabric: the TSM's
/// rotation fails naming the key-roll check (the active epoch did not advance) and the TSM
/// stops the pair at once (a failed rotation stops the pair, issue #5) rather than leaving it
/// to the hardware's roll timeout: traffic is refused for want of a key, before and after the
/// timeout, and what was written before the roll stays where it landed.
#[test]
fn dropped_keyroll_message_fails_the_rotation_and_stops_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _h) = two_tenants(dir.path());
    t.window_create(TA, 2, 0, 0x1000).unwrap();
    t.pod().write(id(1), id(2), 0x10, b"before").unwrap();
    t.pod().keyroll_fault(KeyRollFault::Drop).unwrap();
    let e = t.rotate(1, 2).unwrap_err();
    assert!(
        matches!(&e, TsmError::Device { check, .. } if *check == "key-roll"),
        "{e}"
    );
    assert!(!t.link_keys_live(1, 2).unwrap());
    let e = t.pod().write(id(1), id(2), 0x10, b"during").unwrap_err();
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
    t.pod()
        .advance_clock(SecParams::default().keyroll_timeout_ns + 1)
        .unwrap();
    let e = t.pod().write(id(1), id(2), 0x10, b"after").unwrap_err();
    assert!(matches!(e, SimError::Key { .. }), "{e:?}");
    // Whatever the hardware still reports is handled by the driver.
    t.driver_mut()
        .process_faults(&FileCtx::tsm(OsInstanceId(0)), 16)
        .unwrap();
    assert_eq!(t.pod().local_read(id(2), 0x10, 6).unwrap(), b"before");
    assert_no_leaks(t.pod());
    // The rotation decision is on the record, and so is its failure.
    let recs = close(t, dir.path());
    assert!(recs.iter().any(|r| r.kind() == DecisionKind::KeyRotation
        && r.subject() == "accel-0001<->accel-0002"
        && r.outcome() == Outcome::Allow));
    assert!(recs.iter().any(|r| r.kind() == DecisionKind::KeyRotation
        && r.subject() == "accel-0001<->accel-0002"
        && r.outcome() == Outcome::Deny
        && r.rules().iter().any(|x| x == "check.key-roll")));
}

/// The stream counter reaches the roll threshold with no fresh alternate key programmed: the
/// stale key is not used again, the slot stops with StaleKey and a fault is raised.
#[test]
fn stale_alternate_key_at_swap_stops_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _att) = shared(dir.path());
    t.pod()
        .set_sec_params(SecParams {
            roll_threshold: 8,
            ..SecParams::default()
        })
        .unwrap();
    let mut last = Ok(Vec::new());
    for _ in 0..32 {
        last = t.pod().read(id(3), id(1), BUF_ADDR, 4);
        if last.is_err() {
            break;
        }
    }
    let e = last.unwrap_err();
    assert!(
        matches!(
            e,
            SimError::Key {
                reason: KeyError::Stopped(StopReason::StaleKey) | KeyError::NoFreshAlternate,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(faults(t.pod())
        .iter()
        .any(|f| matches!(f, FaultReport::StaleKey { .. })));
    assert_no_leaks(t.pod());
}

/// A physical attacker flips one ciphertext bit of the next transaction: the tag fails, the
/// transaction is dropped, every stream from that source stops and the security processor is
/// told (a fault the driver turns into a revocation).
#[test]
fn wire_tampering_is_an_integrity_failure_that_stops_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, att) = shared(dir.path());
    t.pod()
        // The first queued tamper hits B's read request (a no-op), the second A's response.
        .tamper_next_wire(WireTamper { offset: 0, xor: 0 })
        .unwrap();
    t.pod()
        .tamper_next_wire(WireTamper {
            offset: 20,
            xor: 0x10,
        })
        .unwrap();
    let e = t.pod().read(id(3), id(1), BUF_ADDR, 4).unwrap_err();
    assert!(matches!(e, SimError::IntegrityFailure { .. }), "{e:?}");
    // Stopped: later transactions from that source are refused too.
    assert!(t.pod().read(id(3), id(1), BUF_ADDR, 4).is_err());
    // The driver turns the report into a revocation of the share over that link.
    let handled = t
        .driver_mut()
        .process_faults(&FileCtx::tsm(OsInstanceId(0)), 16)
        .unwrap();
    assert!(handled >= 1, "the integrity-failure report");
    let fb = FileCtx::tenant(TenantId(TB), OsInstanceId(OS_B));
    assert_eq!(
        t.driver()
            .gate_check(&fb, att)
            .map_err(ualink_kdrv::Errno::from),
        Err(ualink_kdrv::Errno::EIDRM)
    );
    assert_no_leaks(t.pod());
}

/// A physical attacker replays a captured, genuinely sealed write: the per-stream counter has
/// moved on, so the replay fails verification and changes nothing.
#[test]
fn replayed_wire_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _att) = shared(dir.path());
    let p = t.pod();
    p.capture_wire(true).unwrap();
    p.local_write(id(1), BUF_ADDR, &[SECRET; 16]).unwrap();
    // A legitimate intra-tenant write from 2 to 1 the attacker records.
    t.pod()
        .write(id(2), id(1), 0x100, &[0x5a; 16])
        .unwrap_or(());
    let cap = p.captured().unwrap();
    let first = cap.first().expect("a captured transaction").clone();
    p.local_write(id(1), 0x100, &[0; 16]).unwrap();
    let r = p.inject_wire(first.switch, first.ingress, &first.bytes);
    assert!(r.is_err(), "replay accepted");
    assert_eq!(p.local_read(id(1), 0x100, 16).unwrap(), vec![0; 16]);
    assert_no_leaks(p);
}

/// The same dropped KeyRollMSG, as the audit log should tell it: no `keys-rotated` event
/// claims the new epoch for a roll that never completed, the failure is recorded, and the
/// TSM no longer reports the pair's keys as live (a failed rotation stops the pair).
#[test]
fn dropped_keyroll_message_is_audited_as_a_failed_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _h) = two_tenants(dir.path());
    t.pod().keyroll_fault(KeyRollFault::Drop).unwrap();
    t.rotate(1, 2).unwrap_err();
    assert!(!t.link_keys_live(1, 2).unwrap());
    let recs = close(t, dir.path());
    assert!(!recs
        .iter()
        .any(|r| r.event().is_some_and(|e| e.name() == "keys-rotated")));
    assert!(recs.iter().any(|r| r.kind() == DecisionKind::KeyRotation
        && r.subject() == "accel-0001<->accel-0002"
        && r.outcome() == Outcome::Deny));
}
