//! Fuzz the ualink-kdrv ioctl entry: sequences of (file, command, user bytes) against a small pod.
//! The driver must never panic, and its answer must always be Ok or a valid errno.
//!
//! Input layout, repeated until the input ends:
//!   u8  file     (0: TSM, 1: tenant A / OS 10, 2: tenant A / OS 11, 3: tenant B / OS 20)
//!   u8  selector (< 0xf0: index into the driver's ioctl table; else the next 4 bytes are a raw cmd)
//!   u16 len (LE) then `len` bytes of user buffer (capped by the input)
//! A grant or rotation message whose signature is 96 bytes of 0xAA verifies (see FuzzCrypto), so the
//! fuzzer can reach claim parsing and the live-state gate.
#![no_main]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};

use libfuzzer_sys::fuzz_target;
use ualink_kdrv::crypto::{BadSignature, CryptoBackend, RingCrypto, TsmPublicKey};
use ualink_kdrv::ids::*;
use ualink_kdrv::ops::*;
use ualink_kdrv::uapi::IOCTLS;
use ualink_kdrv::{Config, Driver, Errno, FileCtx, NullSink};

struct FuzzCrypto;

impl CryptoBackend for FuzzCrypto {
    fn sha384(&self, parts: &[&[u8]]) -> [u8; 48] {
        RingCrypto.sha384(parts)
    }
    fn verify_es384(&self, _k: &TsmPublicKey, _m: &[u8], sig: &[u8]) -> Result<(), BadSignature> {
        if sig == [0xAA; 96] {
            Ok(())
        } else {
            Err(BadSignature)
        }
    }
}

struct Fabric {
    clock: Cell<u64>,
    routes: RefCell<BTreeMap<(SwitchId, PortId, AcceleratorId), PortId>>,
    perms: RefCell<BTreeMap<(AcceleratorId, PermTag), WindowPerm>>,
    slots: RefCell<BTreeMap<KeySlotRef, KeySlotStatus>>,
    faults: RefCell<VecDeque<FaultReport>>,
    mailbox: RefCell<VecDeque<Vec<u8>>>,
}

const N_ACC: u16 = 4;
const N_SW: u16 = 2;

fn acc(i: u16) -> AcceleratorId {
    AcceleratorId::new(i).unwrap_or(AcceleratorId::new(0).unwrap())
}

impl FabricOps for Fabric {
    fn enumerate(
        &self,
        v: &mut dyn FnMut(Discovered) -> Result<(), OpsError>,
    ) -> Result<(), OpsError> {
        for a in 0..N_ACC {
            v(Discovered::Accelerator(AcceleratorInfo {
                id: acc(a),
                ports: N_SW,
                mem_bytes: 1 << 24,
                vendor_id: 1,
                device_id: 1,
            }))?;
        }
        for s in 0..N_SW {
            v(Discovered::Switch(SwitchInfo {
                id: SwitchId(s),
                ports: N_ACC,
            }))?;
        }
        for a in 0..N_ACC {
            for s in 0..N_SW {
                v(Discovered::Link(LinkInfo {
                    accel: acc(a),
                    accel_port: PortId(s),
                    switch: SwitchId(s),
                    switch_port: PortId(a),
                    up: true,
                }))?;
            }
        }
        Ok(())
    }
    fn now(&self) -> FabricTime {
        let t = self.clock.get();
        self.clock.set(t.wrapping_add(1000));
        FabricTime(t)
    }
    fn spdm_send(&self, _a: AcceleratorId, m: &[u8]) -> Result<(), OpsError> {
        let mut mb = self.mailbox.borrow_mut();
        if mb.len() < 8 {
            mb.push_back(m.to_vec());
        }
        Ok(())
    }
    fn spdm_receive(&self, _a: AcceleratorId, buf: &mut [u8]) -> Result<usize, OpsError> {
        let m = self
            .mailbox
            .borrow_mut()
            .pop_front()
            .ok_or(OpsError::WouldBlock)?;
        let dst = buf.get_mut(..m.len()).ok_or(OpsError::TooBig)?;
        dst.copy_from_slice(&m);
        Ok(m.len())
    }
    fn route_set(&self, e: &RouteEntry) -> Result<(), OpsError> {
        self.routes
            .borrow_mut()
            .insert((e.switch, e.ingress, e.dest), e.egress);
        Ok(())
    }
    fn route_clear(&self, s: SwitchId, i: PortId, d: AcceleratorId) -> Result<(), OpsError> {
        self.routes.borrow_mut().remove(&(s, i, d));
        Ok(())
    }
    fn route_get(
        &self,
        s: SwitchId,
        i: PortId,
        d: AcceleratorId,
    ) -> Result<Option<PortId>, OpsError> {
        Ok(self.routes.borrow().get(&(s, i, d)).copied())
    }
    fn window_perm_set(&self, p: &WindowPerm) -> Result<(), OpsError> {
        self.perms.borrow_mut().insert((p.target, p.tag), *p);
        Ok(())
    }
    fn window_perm_clear(&self, t: AcceleratorId, tag: PermTag) -> Result<(), OpsError> {
        self.perms.borrow_mut().remove(&(t, tag));
        Ok(())
    }
    fn drain(
        &self,
        _t: AcceleratorId,
        _tag: PermTag,
        budget: u64,
    ) -> Result<DrainOutcome, OpsError> {
        Ok(DrainOutcome::Drained {
            elapsed_ns: budget.min(10),
        })
    }
    fn key_slot(&self, slot: KeySlotRef, cmd: KeySlotCommand) -> Result<KeySlotStatus, OpsError> {
        let mut slots = self.slots.borrow_mut();
        let st = slots.entry(slot).or_insert(KeySlotStatus {
            active: SlotMeta {
                state: SlotState::Live,
                epoch: 1,
                fingerprint: Some(KeyFingerprint([1; 48])),
            },
            alternate: SlotMeta::EMPTY,
            enabled: true,
        });
        match cmd {
            KeySlotCommand::Query | KeySlotCommand::Roll => {}
            KeySlotCommand::Go => st.enabled = true,
            KeySlotCommand::Stop => st.enabled = false,
            KeySlotCommand::Invalidate => {
                st.active = SlotMeta::EMPTY;
                st.enabled = false;
            }
        }
        Ok(*st)
    }
    fn stop_streams(
        &self,
        _a: AcceleratorId,
        _p: PortId,
        _s: AcceleratorId,
    ) -> Result<(), OpsError> {
        Ok(())
    }
    fn next_fault(&self) -> Option<FaultReport> {
        self.faults.borrow_mut().pop_front()
    }
}

fuzz_target!(|data: &[u8]| {
    let fabric = Fabric {
        clock: Cell::new(1_000_000),
        routes: RefCell::new(BTreeMap::new()),
        perms: RefCell::new(BTreeMap::new()),
        slots: RefCell::new(BTreeMap::new()),
        faults: RefCell::new(VecDeque::new()),
        mailbox: RefCell::new(VecDeque::new()),
    };
    let mut key = [0x11u8; 97];
    key[0] = 4;
    let Some(key) = TsmPublicKey::from_sec1(&key) else {
        return;
    };
    let Ok(mut d) = Driver::new(
        fabric,
        FuzzCrypto,
        NullSink,
        NullSink,
        key,
        [3; 32],
        Config::default(),
    ) else {
        return;
    };
    // A small world to act on: tenants 1 and 2 with two accelerators each, RUN TDIs, one window each.
    let tsm = FileCtx::tsm(OsInstanceId(0));
    let _ = d.tenant_add(&tsm, TenantId(1));
    let _ = d.tenant_add(&tsm, TenantId(2));
    let _ = d.vpod_create(&tsm, TenantId(1), &[acc(0), acc(1)]);
    let _ = d.vpod_create(&tsm, TenantId(2), &[acc(2), acc(3)]);
    for a in 0..N_ACC {
        let _ = d.tdi_update(&tsm, acc(a), ualink_kdrv::TdiState::ConfigLocked, 1, false);
        let _ = d.tdi_update(&tsm, acc(a), ualink_kdrv::TdiState::Run, 1, false);
    }
    let _ = d.window_create(&tsm, TenantId(1), acc(0), 0, 1 << 20);
    let _ = d.window_create(&tsm, TenantId(2), acc(2), 0, 1 << 20);
    let files = [
        tsm,
        FileCtx::tenant(TenantId(1), OsInstanceId(10)),
        FileCtx::tenant(TenantId(1), OsInstanceId(11)),
        FileCtx::tenant(TenantId(2), OsInstanceId(20)),
    ];

    let mut rest = data;
    for _ in 0..64 {
        let [f, sel, tail @ ..] = rest else { break };
        let file = files[usize::from(*f) % files.len()];
        let (cmd, tail) = if *sel < 0xf0 {
            (IOCTLS[usize::from(*sel) % IOCTLS.len()].cmd, tail)
        } else {
            let Some((c, t)) = tail.split_first_chunk::<4>() else {
                break;
            };
            (u32::from_le_bytes(*c), t)
        };
        let Some((l, tail)) = tail.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_le_bytes(*l)).min(tail.len());
        let (user, tail) = tail.split_at(len);
        let mut user = user.to_vec();
        match d.ioctl(&file, cmd, &mut user) {
            Ok(v) => assert!(v >= 0),
            Err(e) => assert!(Errno::from_positive(e.to_positive()) == Some(e)),
        }
        rest = tail;
    }
});
