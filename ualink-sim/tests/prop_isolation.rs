//! Random operation sequences from several tenants, including attacks and faults. Invariants after
//! every step: the leak oracle is empty, and every accelerator's memory equals a shadow model that
//! only successful transfers update (a failed, tampered, replayed or misrouted transfer changes
//! nothing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;
use ualink_kdrv::ids::Rights;
use ualink_kdrv::ops::{FabricOps, PermTag};
use ualink_sim::ids::{SwitchIndex, SwitchPort};
use ualink_sim::sim::WireTamper;
use ualink_sim::{DevicePerm, PortIndex};

const N: u16 = 4;
const SPAN: u64 = 4096;

#[derive(Debug, Clone)]
enum Step {
    Connect(u16, u16),
    Grant {
        target: u16,
        initiator: u16,
        base: u64,
        len: u64,
        rights: u8,
        tag: u64,
    },
    Revoke {
        target: u16,
        tag: u64,
    },
    Write {
        src: u16,
        dst: u16,
        addr: u64,
        len: u64,
        fill: u8,
    },
    Read {
        src: u16,
        dst: u16,
        addr: u64,
        len: u64,
    },
    ForgeRoute {
        ingress: u16,
        dest: u16,
        egress: u16,
    },
    Tamper {
        offset: usize,
        xor: u8,
    },
    Replay,
    Reset(u16),
    Flap(u16),
    Migrate(u16),
    KeyRoll(u16, u16),
}

fn accel() -> impl Strategy<Value = u16> {
    1..=N
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (accel(), accel()).prop_map(|(a, b)| Step::Connect(a, b)),
        3 => (accel(), accel(), prop_oneof![Just((0, SPAN)), (0..SPAN, 1..SPAN)], 1u8..8, 0u64..4).prop_map(|(target, initiator, (base, len), rights, tag)| Step::Grant { target, initiator, base, len, rights, tag }),
        1 => (accel(), 0u64..4).prop_map(|(target, tag)| Step::Revoke { target, tag }),
        8 => (accel(), accel(), 0..SPAN - 600, 1u64..600, any::<u8>()).prop_map(|(src, dst, addr, len, fill)| Step::Write { src, dst, addr, len, fill }),
        5 => (accel(), accel(), 0..SPAN - 600, 1u64..600).prop_map(|(src, dst, addr, len)| Step::Read { src, dst, addr, len }),
        1 => (0u16..N, accel(), 0u16..N).prop_map(|(ingress, dest, egress)| Step::ForgeRoute { ingress, dest, egress }),
        2 => (0usize..64, 1u8..=255).prop_map(|(offset, xor)| Step::Tamper { offset, xor }),
        1 => Just(Step::Replay),
        1 => accel().prop_map(Step::Reset),
        1 => accel().prop_map(Step::Flap),
        1 => accel().prop_map(Step::Migrate),
        1 => (accel(), accel()).prop_map(|(a, b)| Step::KeyRoll(a, b)),
    ]
}

fn owner(a: u16) -> u32 {
    match a {
        1 | 2 => 1,
        3 => 2,
        _ => 3,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_byte_crosses_without_a_grant(steps in proptest::collection::vec(step(), 1..40)) {
        let p = pod(N);
        for a in 1..=N {
            own(&p, id(a), owner(a));
        }
        p.capture_wire(true).unwrap();
        let mut shadow: Vec<Vec<u8>> = (0..=N).map(|_| vec![0u8; SPAN as usize]).collect();
        let mut epoch = 1u32;
        // Baseline: every pair routed and keyed; windows open within tenant 1 (accelerators 1
        // and 2). Cross-tenant access needs a Grant step (an explicit, driver-installed share).
        for a in 1..=N {
            for b in (a + 1)..=N {
                connect(&p, id(a), id(b), epoch);
            }
        }
        grant(&p, id(2), id(1), 10, Rights::ALL);
        grant(&p, id(1), id(2), 10, Rights::ALL);
        let mut migrated = [false; (N + 1) as usize];
        for s in steps {
            match s {
                Step::Connect(a, b) if a != b => {
                    epoch += 1;
                    let _ = p.open_routes(id(a), id(b));
                    let _ = p.key_pair(id(a), id(b), epoch);
                    let _ = p.key_pair_alternate(id(a), id(b), epoch + 1);
                    epoch += 1;
                }
                Step::Grant { target, initiator, base, len, rights, tag } if target != initiator => {
                    // The driver path: only within a tenant, or across tenants as an explicit share.
                    let len = len.min(SPAN - base).max(1);
                    let _ = p.grant_window(id(target), tag, DevicePerm {
                        initiator: id(initiator), base, len,
                        rights: Rights::from_bits(u32::from(rights)).unwrap(),
                    });
                }
                Step::Revoke { target, tag } => {
                    p.window_perm_clear(id(target).to_kdrv(), PermTag(tag)).unwrap();
                }
                Step::Write { src, dst, addr, len, fill } if src != dst => {
                    let data = vec![fill; len as usize];
                    let range = addr as usize..(addr + len) as usize;
                    if p.write(id(src), id(dst), addr, &data).is_ok() {
                        shadow[dst as usize][range].copy_from_slice(&data);
                    } else {
                        // A transfer stops at its first failing transaction. Transactions before it
                        // completed, and the failing one may have been committed if only its
                        // completion was lost; nothing after it may land. So memory must be the
                        // new data up to a transaction boundary and the old data after it.
                        let now = p.local_read(id(dst), addr, len as usize).unwrap();
                        let old = &shadow[dst as usize][range.clone()];
                        let split_ok = (0..=len as usize)
                            .filter(|s| s % 256 == 0 || *s == len as usize)
                            .any(|s| now[..s] == data[..s] && now[s..] == old[s..]);
                        prop_assert!(split_ok, "failed write left memory in an impossible state");
                        shadow[dst as usize][range].copy_from_slice(&now);
                    }
                }
                Step::Read { src, dst, addr, len } if src != dst => {
                    if let Ok(got) = p.read(id(src), id(dst), addr, len) {
                        prop_assert_eq!(&got[..], &shadow[dst as usize][addr as usize..(addr + len) as usize]);
                    }
                }
                Step::ForgeRoute { ingress, dest, egress } => {
                    let _ = p.host_write_route(SwitchIndex(0), SwitchPort(ingress), id(dest), SwitchPort(egress));
                }
                Step::Tamper { offset, xor } => {
                    p.tamper_next_wire(WireTamper { offset, xor }).unwrap();
                }
                Step::Replay => {
                    if let Some(c) = p.captured().unwrap().last().cloned() {
                        let _ = p.inject_wire(c.switch, c.ingress, &c.bytes);
                    }
                }
                Step::Reset(a) => {
                    p.reset_device(id(a)).unwrap();
                    shadow[a as usize].fill(0);
                }
                Step::Flap(a) => {
                    let port = if migrated[a as usize] { 1 } else { 0 };
                    p.link_flap(id(a), PortIndex(port)).unwrap();
                }
                Step::Migrate(a) if !migrated[a as usize] => {
                    p.migrate_port(id(a), PortIndex(0), PortIndex(1)).unwrap();
                    migrated[a as usize] = true;
                }
                Step::KeyRoll(a, b) if a != b => {
                    for (pa, _) in p.planes(id(a), id(b)).unwrap() {
                        let _ = p.key_roll(ualink_sim::SlotRef { accel: id(a), port: pa, dir: ualink_sim::ualinksec::Direction::Tx, peer: id(b) });
                    }
                }
                _ => {}
            }
            prop_assert!(p.leaks().unwrap().is_empty(), "leak: {:?}", p.leaks().unwrap());
            for a in 1..=N {
                let mem = p.local_read(id(a), 0, SPAN as usize).unwrap();
                let diff = mem.iter().zip(&shadow[a as usize]).position(|(x, y)| x != y);
                prop_assert!(diff.is_none(), "accelerator {} differs from the shadow at {:?}", a, diff);
            }
        }
    }
}
