//! The untrusted host: it rewrites a locked TDI's configuration, writes switch routing entries
//! behind the driver's back, issues ioctls from an OS instance that holds no grant, and tries
//! every cross-tenant route. None of it moves a byte of another tenant's memory.

use ualink_kdrv::ids::{OsInstanceId, TenantId};
use ualink_kdrv::ops::{Discovered, FabricOps, LinkInfo};
use ualink_kdrv::uapi::{
    UalinkAttach, UalinkTenant, UALINK_ATTACH_F_DYNAMIC, UALINK_IOC_ATTACH, UALINK_IOC_TENANT_ADD,
    UALINK_RIGHT_READ,
};
use ualink_kdrv::{Errno, FileCtx, TdiState};
use ualink_sim::{SimError, SimPod, SwitchIndex, SwitchPort};
use ualink_tsm::TsmError;

use crate::common::*;

fn links(p: &SimPod) -> Vec<LinkInfo> {
    let mut v = Vec::new();
    p.enumerate(&mut |d| {
        if let Discovered::Link(l) = d {
            v.push(l);
        }
        Ok(())
    })
    .unwrap();
    v
}

/// The host writes a locked, running TDI's configuration space: the device's security engine
/// moves the TDI to ERROR; the TSM's next fault pass (`Tsm::process_faults`, which asks every
/// TDI it holds for its TDISP state inside the SPDM session) mirrors the ERROR into the
/// driver, the share that depended on it stops, and the TSM refuses new shares of it.
#[test]
fn host_rewriting_a_locked_tdis_config_is_caught_and_stops_sharing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    let g = t.share(&read_request(h)).unwrap();
    let att = attach_b(&mut t, h, Some(&g.grant)).unwrap();
    let fb = FileCtx::tenant(TenantId(TB), OsInstanceId(OS_B));
    t.driver_mut().map(&fb, att).unwrap();
    assert!(t.pod().read(id(3), id(1), BUF_ADDR, 4).is_ok());
    t.pod()
        .host_write_tdi_config(id(1), ualink_sim::device::SIM_TDI as u16, 0x10, &[0xff; 4])
        .unwrap();
    assert_eq!(
        t.pod().tdi_state(id(1)).unwrap(),
        Some(ualink_spdm::tdisp::TdiState::Error)
    );
    // The TSM's fault pass asks every TDI it holds for its TDISP state.
    let sum = t.process_faults().unwrap();
    assert!(sum.tdi_errors.contains(&1), "{sum:?}");
    assert_eq!(t.driver().tdi(id(1).to_kdrv()).unwrap().0, TdiState::Error);
    assert_b_reads_nothing(&t);
    let e = t.share(&read_request(h)).unwrap_err();
    assert!(matches!(e, TsmError::PolicyDenied { .. }), "{e}");
}

/// The same attack without a fault pass in between: the device's security engine sees the
/// write and moves the TDI to ERROR (so TDISP refuses to START it again), and the next
/// re-attestation alone also revokes the share through the epoch bump.
#[test]
fn host_tdi_config_write_moves_the_device_tdi_to_error_and_reattestation_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    let g = t.share(&read_request(h)).unwrap();
    let att = attach_b(&mut t, h, Some(&g.grant)).unwrap();
    let fb = FileCtx::tenant(TenantId(TB), OsInstanceId(OS_B));
    t.driver_mut().map(&fb, att).unwrap();
    t.pod()
        .host_write_tdi_config(id(1), ualink_sim::device::SIM_TDI as u16, 0x10, &[0xff; 4])
        .unwrap();
    assert!(t
        .pod()
        .take_device_events(id(1))
        .unwrap()
        .iter()
        .any(|e| matches!(e, ualink_sim::sim::DeviceEvent::TdiConfigWrite { .. })));
    assert_eq!(
        t.pod().tdi_state(id(1)).unwrap(),
        Some(ualink_spdm::tdisp::TdiState::Error)
    );
    t.reattest(1).unwrap();
    assert_eq!(
        t.driver().gate_check(&fb, att).map_err(Errno::from),
        Err(Errno::EIDRM)
    );
    assert_b_reads_nothing(&t);
    let recs = close(t, dir.path());
    assert_eq!(shares(&recs).len(), 1);
}

/// The host pushes a genuine firmware update to an accelerator whose TDI is running under a
/// live share: the TDI reports NO_UPDATE_AFTER_LOCK, so the device refuses it (the firmware
/// stays as attested) and moves the TDI to ERROR; the TSM's fault pass finds the TDI in
/// ERROR, mirrors it into the driver, which revokes the share, and B reads nothing.
#[test]
fn host_updating_firmware_under_a_running_tdi_is_refused_and_revokes_the_share() {
    use ualink_sim::measurement::MeasurementKind;
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    let g = t.share(&read_request(h)).unwrap();
    let att = attach_b(&mut t, h, Some(&g.grant)).unwrap();
    let fb = FileCtx::tenant(TenantId(TB), OsInstanceId(OS_B));
    t.driver_mut().map(&fb, att).unwrap();
    assert!(t.pod().read(id(3), id(1), BUF_ADDR, 4).is_ok());
    let firmware = |t: &ualink_tsm::Tsm| {
        t.pod()
            .with_accelerator(id(1), |a| {
                a.measurements().block(MeasurementKind::Firmware).digest()
            })
            .unwrap()
    };
    let before = firmware(&t);
    let e = t.pod().update_firmware(id(1), "9.9.9").unwrap_err();
    assert!(
        matches!(e, SimError::FirmwareUpdateAfterLock { .. }),
        "{e:?}"
    );
    assert_eq!(firmware(&t), before, "the refused update was installed");
    assert_eq!(
        t.pod().tdi_state(id(1)).unwrap(),
        Some(ualink_spdm::tdisp::TdiState::Error)
    );
    let sum = t.process_faults().unwrap();
    assert!(sum.tdi_errors.contains(&1), "{sum:?}");
    assert_eq!(t.driver().tdi(id(1).to_kdrv()).unwrap().0, TdiState::Error);
    assert_eq!(
        t.driver().gate_check(&fb, att).map_err(Errno::from),
        Err(Errno::EIDRM)
    );
    assert_b_reads_nothing(&t);
}

/// The host writes a routing entry that sends B's traffic to A's accelerator. The transfer
/// still fails (no window, no keys for that pair), and the driver's route audit finds and
/// clears the entry.
#[test]
fn host_writing_a_routing_entry_directly_is_refused_and_reverted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _h) = two_tenants(dir.path());
    let ls = links(t.pod());
    let from4 = ls.iter().find(|l| l.accel == id(4).to_kdrv()).unwrap();
    let to2 = ls
        .iter()
        .find(|l| l.accel == id(2).to_kdrv() && l.switch == from4.switch)
        .unwrap();
    t.pod()
        .host_write_route(
            SwitchIndex(from4.switch.0),
            SwitchPort(from4.switch_port.0),
            id(2),
            SwitchPort(to2.switch_port.0),
        )
        .unwrap();
    let e = t.pod().write(id(4), id(2), 0, b"rogue").unwrap_err();
    assert!(
        matches!(e, SimError::Key { .. } | SimError::WindowDenied { .. }),
        "{e:?}"
    );
    let e = t.pod().read(id(4), id(2), 0, 8).unwrap_err();
    assert!(
        matches!(e, SimError::Key { .. } | SimError::WindowDenied { .. }),
        "{e:?}"
    );
    assert_no_leaks(t.pod());
    let fixed = t
        .driver_mut()
        .audit_routes(&FileCtx::tsm(OsInstanceId(0)))
        .unwrap();
    assert!(fixed >= 1, "the rogue entry was found");
    let e = t.pod().write(id(4), id(2), 0, b"rogue").unwrap_err();
    assert!(matches!(e, SimError::RoutingDenied { .. }), "{e:?}");
}

/// ioctls straight into the driver's UAPI from B's OS instance, which holds no grant: an
/// attach without a grant is EACCES, and a TSM-only command from a tenant file is EPERM.
#[test]
fn host_ioctls_from_an_os_instance_with_no_grant_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    let fb = FileCtx::tenant(TenantId(TB), OsInstanceId(OS_B));
    let a = UalinkAttach {
        size: UalinkAttach::SIZE as u32,
        flags: UALINK_ATTACH_F_DYNAMIC,
        handle: h.0,
        importer_accel: 3,
        rights: UALINK_RIGHT_READ,
        cookie: 7,
        grant_len: 0,
        _rsvd0: 0,
        attachment: 0,
    };
    let mut b = vec![0u8; UalinkAttach::SIZE];
    a.encode(&mut b).unwrap();
    assert_eq!(
        t.driver_mut().ioctl(&fb, UALINK_IOC_ATTACH, &mut b),
        Err(Errno::EACCES)
    );
    // A grant_len that claims bytes the buffer does not carry.
    let mut lying = b.clone();
    let mut a2 = a;
    a2.grant_len = 512;
    a2.encode(&mut lying).unwrap();
    let e = t
        .driver_mut()
        .ioctl(&fb, UALINK_IOC_ATTACH, &mut lying)
        .unwrap_err();
    assert!(e == Errno::EFAULT || e == Errno::EINVAL, "{e:?}");
    // A tenant file cannot add tenants (the TSM's role).
    let ten = UalinkTenant {
        size: UalinkTenant::SIZE as u32,
        flags: 0,
        tenant: 9,
        _rsvd0: 0,
    };
    let mut tb = vec![0u8; UalinkTenant::SIZE];
    ten.encode(&mut tb).unwrap();
    assert_eq!(
        t.driver_mut().ioctl(&fb, UALINK_IOC_TENANT_ADD, &mut tb),
        Err(Errno::EPERM)
    );
    assert_eq!(t.driver().attachment_count(), 0);
    assert_b_reads_nothing(&t);
}

/// Every ordered pair of accelerators across the two tenants, reads and writes: each is
/// refused by the fabric (routing Deny, window check or key state) and nothing leaks; inside
/// a tenant the same operations work.
#[test]
fn cross_tenant_reads_and_writes_on_every_route_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (t, _h) = two_tenants(dir.path());
    let p = t.pod();
    p.capture_wire(true).unwrap();
    let mut refused = 0;
    for (x, y) in [(1u16, 3u16), (1, 4), (2, 3), (2, 4)] {
        for (src, dst) in [(x, y), (y, x)] {
            let w = p
                .write(id(src), id(dst), 0x100, b"cross-tenant")
                .unwrap_err();
            let r = p.read(id(src), id(dst), 0x100, 12).unwrap_err();
            for e in [w, r] {
                assert!(
                    matches!(
                        e,
                        SimError::RoutingDenied { .. }
                            | SimError::WindowDenied { .. }
                            | SimError::Key { .. }
                            | SimError::NoRoute { .. }
                    ),
                    "{src}->{dst}: {e:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 16);
    assert_no_leaks(p);
    for c in p.captured().unwrap() {
        assert!(!c.bytes.windows(12).any(|w| w == b"cross-tenant"));
    }
}

/// A residual risk made visible: between two accelerators whose link is keyed (1↔3, keyed for
/// a share), a host that writes both a switch route and a window permission straight into the
/// target's table lets B's accelerator read A's memory without any grant. The leak oracle
/// records every such byte, and the driver's route audit closes the path again; nothing
/// re-audits device-side window tables yet (SECURITY.md, residual risks).
#[test]
fn host_written_route_and_window_on_a_keyed_link_leak_until_the_route_audit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, _h) = two_tenants(dir.path());
    let ls = links(t.pod());
    let from3 = ls.iter().find(|l| l.accel == id(3).to_kdrv()).unwrap();
    let to1 = ls
        .iter()
        .find(|l| l.accel == id(1).to_kdrv() && l.switch == from3.switch)
        .unwrap();
    let from1 = ls
        .iter()
        .find(|l| l.accel == id(1).to_kdrv() && l.switch == from3.switch)
        .unwrap();
    let p = t.pod();
    // The driver alone: refused at the switch.
    let e = p.read(id(3), id(1), BUF_ADDR, 16).unwrap_err();
    assert!(matches!(e, SimError::RoutingDenied { .. }), "{e:?}");
    p.host_write_route(
        SwitchIndex(from3.switch.0),
        SwitchPort(from3.switch_port.0),
        id(1),
        SwitchPort(to1.switch_port.0),
    )
    .unwrap();
    // And the way back, for the read response.
    p.host_write_route(
        SwitchIndex(from1.switch.0),
        SwitchPort(from1.switch_port.0),
        id(3),
        SwitchPort(from3.switch_port.0),
    )
    .unwrap();
    p.host_write_window_perm(
        id(1),
        0xbad,
        ualink_sim::DevicePerm {
            initiator: id(3),
            base: BUF_ADDR,
            len: 16,
            rights: ualink_kdrv::ids::Rights::READ,
        },
    )
    .unwrap();
    assert_eq!(
        p.read(id(3), id(1), BUF_ADDR, 16).unwrap(),
        vec![SECRET; 16]
    );
    let leaks = p.leaks().unwrap();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(
        (leaks[0].from, leaks[0].to, leaks[0].len),
        (id(1), id(3), 16)
    );
    // The driver's route audit finds the rogue entry and the path closes.
    assert!(
        t.driver_mut()
            .audit_routes(&FileCtx::tsm(OsInstanceId(0)))
            .unwrap()
            >= 1
    );
    let e = t.pod().read(id(3), id(1), BUF_ADDR, 16).unwrap_err();
    assert!(matches!(e, SimError::RoutingDenied { .. }), "{e:?}");
}
