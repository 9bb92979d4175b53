//! Property: under random ioctl-level sequences from several tenants and OS instances (exports,
//! attaches with valid and invalid grants, maps, unmaps, detaches, revokes, TDI changes, epoch bumps,
//! faults, clock advances, offboarding), no window permission exists in hardware across a tenant or OS
//! boundary without a live grant. "Live" is judged against the test's own model of what the TSM
//! granted and of TDI state, not against the driver's bookkeeping.
#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use ualink_kdrv::ids::Rights;
use ualink_kdrv::ops::{Direction, FaultReport, KeySlotRef, StreamId};
use ualink_kdrv::uapi::*;
use ualink_kdrv::{AttachmentId, BufferHandle, FileCtx, PortId, TdiState, TenantId};

#[derive(Clone, Debug)]
enum GrantKind {
    None,
    Valid,
    WrongImporterOs,
    StaleEpoch,
    Expired,
    ShortLived,
    ExcessRights,
}

#[derive(Clone, Debug)]
enum Op {
    Export {
        file: usize,
        slot: u64,
    },
    Attach {
        file: usize,
        buf: usize,
        accel: u16,
        rights: u32,
        grant: GrantKind,
    },
    Map {
        att: usize,
    },
    Unmap {
        att: usize,
    },
    Detach {
        att: usize,
    },
    Revoke {
        file: usize,
        buf: usize,
    },
    Tdi {
        accel: u16,
        run: bool,
        bump: bool,
    },
    Advance {
        ns: u64,
    },
    StaleKey {
        a: u16,
        b: u16,
    },
    Integrity {
        at: u16,
        source: u16,
    },
    Reset {
        accel: u16,
    },
    OffboardB,
}

fn op() -> impl Strategy<Value = Op> {
    let grant = prop_oneof![
        1 => Just(GrantKind::None),
        6 => Just(GrantKind::Valid),
        1 => Just(GrantKind::WrongImporterOs),
        1 => Just(GrantKind::StaleEpoch),
        1 => Just(GrantKind::Expired),
        2 => Just(GrantKind::ShortLived),
        1 => Just(GrantKind::ExcessRights),
    ];
    prop_oneof![
        3 => (0..3usize, 0..4u64).prop_map(|(file, slot)| Op::Export { file, slot }),
        8 => (0..3usize, 0..8usize, 0..8u16, 1..8u32, grant)
            .prop_map(|(file, buf, accel, rights, grant)| Op::Attach { file, buf, accel, rights, grant }),
        8 => (0..16usize).prop_map(|att| Op::Map { att }),
        1 => (0..16usize).prop_map(|att| Op::Unmap { att }),
        1 => (0..16usize).prop_map(|att| Op::Detach { att }),
        1 => (0..3usize, 0..8usize).prop_map(|(file, buf)| Op::Revoke { file, buf }),
        2 => (0..4u16, any::<bool>(), any::<bool>()).prop_map(|(accel, run, bump)| Op::Tdi { accel, run, bump }),
        2 => (0..2_000u64).prop_map(|ns| Op::Advance { ns }),
        1 => (0..4u16, 0..4u16).prop_map(|(a, b)| Op::StaleKey { a, b }),
        1 => (0..4u16, 0..4u16).prop_map(|(at, source)| Op::Integrity { at, source }),
        1 => (0..4u16).prop_map(|accel| Op::Reset { accel }),
        1 => Just(Op::OffboardB),
    ]
}

/// What the test itself knows.
struct Model {
    /// TDI (run, epoch) per accelerator, as the test set it.
    tdi: BTreeMap<u16, (bool, u64)>,
    /// Grants the TSM issued for attachments that the driver accepted.
    grants: BTreeMap<AttachmentId, Claims>,
    /// Buffers the test revoked, or whose device was reset, or whose owner was offboarded.
    dead: Vec<BufferHandle>,
    /// Tenant of each accelerator (the vPods).
    vpod: BTreeMap<u16, TenantId>,
    b_offboarded: bool,
}

fn files(s: &Scenario) -> [FileCtx; 3] {
    [s.fa, s.fa2, s.fb]
}

/// Runs `ops`; returns how many cross-boundary mappings the invariant examined.
fn run(ops: Vec<Op>) -> usize {
    let mut s = Scenario::new();
    let mut m = Model {
        tdi: (0..6).map(|a| (a, (true, 1))).collect(),
        grants: BTreeMap::new(),
        dead: Vec::new(),
        vpod: [(0, TENANT_A), (1, TENANT_A), (2, TENANT_B), (3, TENANT_B)]
            .into_iter()
            .collect(),
        b_offboarded: false,
    };
    let mut bufs: Vec<(BufferHandle, usize, u16)> = vec![(s.handle, 0, 0)];
    let mut atts: Vec<(AttachmentId, usize)> = Vec::new();
    let t = s.tsm_file;
    let mut crossings = 0;
    for op in ops {
        let fs = files(&s);
        match op {
            Op::Export { file, slot } => {
                let w = if file == 2 { s.window_b } else { s.window_a };
                let mut b = vec![0u8; 48];
                UalinkExport {
                    size: 48,
                    flags: 0,
                    window: w.0,
                    _rsvd0: 0,
                    offset: slot * 0x1000,
                    len: 0x1000,
                    handle: [0; 16],
                }
                .encode(&mut b)
                .unwrap();
                if s.d.ioctl(&fs[file], UALINK_IOC_EXPORT, &mut b).is_ok() {
                    let h = BufferHandle(UalinkExport::decode(&b).unwrap().handle);
                    if !bufs.iter().any(|(x, _, _)| *x == h) {
                        bufs.push((h, file, if file == 2 { 2 } else { 0 }));
                    }
                }
            }
            Op::Attach {
                file,
                buf,
                accel,
                rights,
                grant,
            } => {
                let Some(&(h, owner, exp_accel)) = bufs.get(buf % bufs.len().max(1)) else {
                    continue;
                };
                // Mostly one of the caller's own accelerators, sometimes anyone's.
                let own_accels = if file == 2 { [2u16, 3] } else { [0, 1] };
                let accel = if accel < 6 {
                    own_accels[usize::from(accel % 2)]
                } else {
                    accel % 4
                };
                let f = fs[file];
                let own = fs[owner];
                let now = s.now();
                let (er, ee) = m.tdi[&exp_accel];
                let (_, ie) = m.tdi[&accel];
                let _ = er;
                let mut c = Claims {
                    grant_id: [0; 16],
                    exporter_tenant: own.tenant_id().0,
                    exporter_accel: exp_accel,
                    buffer: h.0,
                    importer_tenant: f.tenant_id().0,
                    importer_os: f.os().0,
                    importer_accel: accel,
                    rights,
                    exporter_epoch: ee,
                    importer_epoch: ie,
                    not_before: now.saturating_sub(1),
                    expiry: now + 1_000_000,
                    nonce: [0; 16],
                };
                s.nonce_ctr = s.nonce_ctr.wrapping_add(1);
                c.grant_id[..8].copy_from_slice(&(now ^ u64::from(s.nonce_ctr)).to_le_bytes());
                c.grant_id[8] = s.nonce_ctr;
                c.nonce = c.grant_id;
                c.nonce[15] = 0xff;
                match grant {
                    GrantKind::WrongImporterOs => c.importer_os ^= 1,
                    GrantKind::StaleEpoch => c.exporter_epoch += 1,
                    GrantKind::Expired => c.expiry = now,
                    GrantKind::ShortLived => c.expiry = now + 700,
                    GrantKind::ExcessRights => c.rights = 1,
                    GrantKind::None | GrantKind::Valid => {}
                }
                let g = match grant {
                    GrantKind::None => Vec::new(),
                    _ => s.tsm.grant(&c),
                };
                let mut b = vec![0u8; 56];
                UalinkAttach {
                    size: 56,
                    flags: UALINK_ATTACH_F_DYNAMIC,
                    handle: h.0,
                    importer_accel: u32::from(accel),
                    rights,
                    cookie: 1,
                    grant_len: g.len() as u32,
                    _rsvd0: 0,
                    attachment: 0,
                }
                .encode(&mut b)
                .unwrap();
                b.extend_from_slice(&g);
                if s.d.ioctl(&f, UALINK_IOC_ATTACH, &mut b).is_ok() {
                    let id = AttachmentId(UalinkAttach::decode(&b).unwrap().attachment);
                    if !g.is_empty() {
                        m.grants.insert(id, c);
                    }
                    atts.push((id, file));
                }
            }
            Op::Map { att } | Op::Unmap { att } | Op::Detach { att } => {
                let Some(&(id, file)) = atts.get(att % atts.len().max(1)) else {
                    continue;
                };
                let cmd = match op {
                    Op::Map { .. } => UALINK_IOC_MAP,
                    Op::Unmap { .. } => UALINK_IOC_UNMAP,
                    _ => UALINK_IOC_DETACH,
                };
                let mut b = if cmd == UALINK_IOC_MAP {
                    let mut b = vec![0u8; 24];
                    UalinkMap {
                        size: 24,
                        flags: 0,
                        attachment: id.0,
                        mapping: 0,
                    }
                    .encode(&mut b)
                    .unwrap();
                    b
                } else {
                    let mut b = vec![0u8; 16];
                    UalinkAttachmentArg {
                        size: 16,
                        flags: 0,
                        attachment: id.0,
                    }
                    .encode(&mut b)
                    .unwrap();
                    b
                };
                let _ = s.d.ioctl(&fs[file], cmd, &mut b);
            }
            Op::Revoke { file, buf } => {
                let Some(&(h, _, _)) = bufs.get(buf % bufs.len().max(1)) else {
                    continue;
                };
                let mut b = vec![0u8; 24];
                UalinkRevoke {
                    size: 24,
                    flags: 0,
                    handle: h.0,
                }
                .encode(&mut b)
                .unwrap();
                if s.d.ioctl(&fs[file], UALINK_IOC_REVOKE, &mut b).is_ok() {
                    m.dead.push(h);
                }
            }
            Op::Tdi { accel, run, bump } => {
                let e = m.tdi.get_mut(&accel).unwrap();
                let was_run = e.0;
                e.0 = run;
                if bump {
                    e.1 += 1;
                }
                if run && !was_run {
                    // STOP to a known state, LOCK, then START (the TDISP order).
                    s.d.tdi_update(&t, acc(accel), TdiState::ConfigUnlocked, e.1, false)
                        .unwrap();
                    s.d.tdi_update(&t, acc(accel), TdiState::ConfigLocked, e.1, false)
                        .unwrap();
                }
                let st = if run {
                    TdiState::Run
                } else {
                    TdiState::ConfigUnlocked
                };
                s.d.tdi_update(&t, acc(accel), st, e.1, false).unwrap();
            }
            Op::Advance { ns } => s.d.fabric().advance(ns),
            Op::StaleKey { a, b } if a != b => {
                let slot = KeySlotRef {
                    accel: acc(a),
                    port: PortId(0),
                    dir: Direction::Rx,
                    peer: acc(b),
                };
                s.d.fabric()
                    .faults
                    .borrow_mut()
                    .push_back(FaultReport::StaleKey { slot });
            }
            Op::Integrity { at, source } if at != source => {
                s.d.fabric()
                    .faults
                    .borrow_mut()
                    .push_back(FaultReport::IntegrityFailure {
                        at: acc(at),
                        port: PortId(1),
                        source: acc(source),
                        stream: StreamId::Request,
                    });
            }
            Op::Reset { accel } => {
                s.d.fabric()
                    .faults
                    .borrow_mut()
                    .push_back(FaultReport::DeviceReset { accel: acc(accel) });
                m.tdi.get_mut(&accel).unwrap().0 = false;
                for (h, _, ea) in &bufs {
                    if *ea == accel {
                        m.dead.push(*h);
                    }
                }
            }
            Op::OffboardB => {
                if !m.b_offboarded && s.d.tenant_offboard(&t, TENANT_B).is_ok() {
                    m.b_offboarded = true;
                    m.vpod.retain(|_, t| *t != TENANT_B);
                    for (h, owner, _) in &bufs {
                        if *owner == 2 {
                            m.dead.push(*h);
                        }
                    }
                }
            }
            Op::StaleKey { .. } | Op::Integrity { .. } => {}
        }
        // The embedding's timer and fault interrupt run between syscalls.
        let mut b = vec![0u8; 16];
        UalinkRasPoll {
            size: 16,
            flags: 0,
            max: 64,
            handled: 0,
        }
        .encode(&mut b)
        .unwrap();
        s.d.ioctl(&t, UALINK_IOC_RAS_POLL, &mut b).unwrap();
        crossings += check_invariant(&s, &m);
    }
    crossings
}

/// Panics on a violation; returns the number of cross-boundary mappings examined.
fn check_invariant(s: &Scenario, m: &Model) -> usize {
    let mut crossings = 0;
    let now = s.now();
    let views: BTreeMap<_, _> = s.d.mappings().map(|v| (v.tag, v)).collect();
    let owner_tags: Vec<_> = s.d.owner_perms().map(|(_, _, t)| t).collect();
    for p in s.d.fabric().perms_list() {
        if owner_tags.contains(&p.tag) {
            // A window owner's permission: initiator and target in the same vPod.
            let ti = m.vpod.get(&p.initiator.get());
            assert!(
                ti.is_some() && ti == m.vpod.get(&p.target.get()),
                "owner perm across vPods: {p:?}"
            );
            continue;
        }
        let v = views
            .get(&p.tag)
            .unwrap_or_else(|| panic!("permission without a mapping: {p:?}"));
        assert_eq!(
            (v.importer_accel, v.exporter_accel),
            (p.initiator, p.target)
        );
        assert!(
            !m.dead.contains(&v.handle),
            "mapping of a dead buffer: {v:?}"
        );
        // The importing accelerator belongs to the importing tenant.
        assert_eq!(
            m.vpod.get(&v.importer_accel.get()),
            Some(&v.importer_tenant),
            "{v:?}"
        );
        let crossing = v.exporter_tenant != v.importer_tenant || v.exporter_os != v.importer_os;
        if !crossing {
            continue;
        }
        crossings += 1;
        let c = m
            .grants
            .get(&v.attachment)
            .unwrap_or_else(|| panic!("cross-boundary mapping without a grant: {v:?}"));
        assert_eq!(c.importer_tenant, v.importer_tenant.0);
        assert_eq!(c.importer_os, v.importer_os.0);
        assert_eq!(c.importer_accel, v.importer_accel.get());
        assert_eq!(c.exporter_tenant, v.exporter_tenant.0);
        assert_eq!(c.buffer, v.handle.0);
        assert!(now < c.expiry, "expired grant still mapped: {v:?}");
        assert!(
            Rights::from_bits(c.rights).unwrap().contains(p.rights),
            "{p:?} beyond {c:?}"
        );
        for (a, e) in [
            (c.exporter_accel, c.exporter_epoch),
            (c.importer_accel, c.importer_epoch),
        ] {
            assert_eq!(
                m.tdi[&a],
                (true, e),
                "TDI {a} not RUN at the grant's epoch: {v:?}"
            );
        }
    }
    crossings
}

/// The property is not vacuous: a plain sharing sequence produces cross-boundary mappings that the
/// invariant examines (and passes).
#[test]
fn invariant_examines_cross_boundary_mappings() {
    let ops = vec![
        Op::Attach {
            file: 2,
            buf: 0,
            accel: 2,
            rights: 1,
            grant: GrantKind::Valid,
        },
        Op::Map { att: 0 },
        Op::Attach {
            file: 1,
            buf: 0,
            accel: 1,
            rights: 3,
            grant: GrantKind::Valid,
        },
        Op::Map { att: 1 },
        Op::Advance { ns: 10 },
    ];
    assert!(run(ops) >= 4);
}

/// The invariant catches a violation: a permission written into hardware for B's accelerator over A's
/// memory without any mapping.
#[test]
fn invariant_catches_a_forged_permission() {
    let s = Scenario::new();
    let m = Model {
        tdi: (0..6).map(|a| (a, (true, 1))).collect(),
        grants: BTreeMap::new(),
        dead: Vec::new(),
        vpod: [(0, TENANT_A), (1, TENANT_A), (2, TENANT_B), (3, TENANT_B)]
            .into_iter()
            .collect(),
        b_offboarded: false,
    };
    assert_eq!(check_invariant(&s, &m), 0);
    let forged = ualink_kdrv::ops::WindowPerm {
        target: acc(0),
        initiator: acc(2),
        base: 0x10_0000,
        len: 0x1000,
        rights: Rights::READ,
        tag: ualink_kdrv::ops::PermTag(u64::MAX),
    };
    ualink_kdrv::FabricOps::window_perm_set(s.d.fabric(), &forged).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_invariant(&s, &m)));
    assert!(r.is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_mapping_crosses_a_boundary_without_a_live_grant(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
