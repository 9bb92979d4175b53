//! `impl ualink_kdrv::FabricOps for SimPod`: the driver core runs on the simulated pod.
//!
//! Every call locks the pod state once and performs a bounded amount of work (register writes in
//! the real hardware); [`FabricOps::drain`] waits only in fabric time, bounded by its budget.
//! SPDM mailbox calls carry MCTP-framed messages to and from each accelerator's responder
//! (ualink-spdm's engine over [`crate::device::SimDevice`]).

use ualink_kdrv::ids::{FabricTime, PortId, SwitchId};
use ualink_kdrv::ops::{
    AcceleratorInfo, Discovered, DrainOutcome, FabricOps, FaultReport, KeySlotCommand, KeySlotRef,
    KeySlotStatus, LinkInfo, OpsError, PermTag, RouteEntry, SlotMeta, SlotState, SwitchInfo,
    WindowPerm,
};
use ualink_kdrv::AcceleratorId;

use crate::error::{KeyError, SimError};
use crate::ids::{AccelId, PortIndex, SwitchIndex, SwitchPort};
use crate::sim::{DevicePerm, SimPod, SlotRef};
use crate::ualinksec::{Direction, SlotInfo, StopReason};

/// The one mapping from simulator errors to the driver's hardware error classes.
pub fn ops_error(e: &SimError) -> OpsError {
    match e {
        SimError::UnknownAccelerator(_)
        | SimError::UnknownPort(_)
        | SimError::UnknownSwitch(_)
        | SimError::UnknownSwitchPort(..)
        | SimError::NoRoute { .. } => OpsError::NoDevice,
        SimError::LinkDown(_) => OpsError::LinkDown,
        SimError::Key {
            reason: KeyError::PeerRxNotReady | KeyError::RollPending,
            ..
        } => OpsError::Busy,
        SimError::Key { .. }
        | SimError::BadTransfer
        | SimError::BadWindow(_)
        | SimError::Malformed(_)
        | SimError::PodConfig(_)
        | SimError::AccelIdOutOfRange(_) => OpsError::Invalid,
        _ => OpsError::Io,
    }
}

fn oe(e: SimError) -> OpsError {
    ops_error(&e)
}

fn slot_ref(s: KeySlotRef) -> SlotRef {
    SlotRef {
        accel: AccelId::from_kdrv(s.accel),
        port: PortIndex(s.port.0),
        dir: match s.dir {
            ualink_kdrv::ops::Direction::Tx => Direction::Tx,
            ualink_kdrv::ops::Direction::Rx => Direction::Rx,
        },
        peer: AccelId::from_kdrv(s.peer),
    }
}

/// Maps the engine's secret-free slot view to the driver's metadata.
pub fn slot_status(i: &SlotInfo) -> KeySlotStatus {
    let last = i.last_epoch.unwrap_or(0);
    let active = match (i.stopped, i.active) {
        (
            Some(StopReason::StaleKey | StopReason::KeyRollTimeout | StopReason::CounterExhausted),
            _,
        ) => SlotMeta {
            state: SlotState::Stale,
            epoch: last,
            fingerprint: None,
        },
        (Some(_), _) | (None, None) => SlotMeta {
            state: SlotState::Empty,
            epoch: last,
            fingerprint: None,
        },
        (None, Some((epoch, fp))) => SlotMeta {
            state: if i.enabled {
                SlotState::Live
            } else {
                SlotState::Programmed
            },
            epoch,
            fingerprint: Some(ualink_kdrv::ops::KeyFingerprint(fp)),
        },
    };
    let alternate = match i.alternate {
        Some((epoch, fp)) => SlotMeta {
            state: SlotState::Programmed,
            epoch,
            fingerprint: Some(ualink_kdrv::ops::KeyFingerprint(fp)),
        },
        None if i.alternate_stale => SlotMeta {
            state: SlotState::Stale,
            epoch: 0,
            fingerprint: None,
        },
        None => SlotMeta::EMPTY,
    };
    KeySlotStatus {
        active,
        alternate,
        enabled: i.enabled && i.stopped.is_none(),
    }
}

impl FabricOps for SimPod {
    fn enumerate(
        &self,
        visit: &mut dyn FnMut(Discovered) -> Result<(), OpsError>,
    ) -> Result<(), OpsError> {
        // Snapshot under the lock, visit without it (the visitor is driver code).
        let mut items = Vec::new();
        {
            let st = self.lock().map_err(oe)?;
            for (id, a) in &st.accels {
                let spec = a.spec();
                items.push(Discovered::Accelerator(AcceleratorInfo {
                    id: id.to_kdrv(),
                    ports: spec.ports.saturating_add(spec.spare_ports),
                    mem_bytes: spec.memory_bytes,
                    vendor_id: spec.vendor_id,
                    device_id: spec.device_id,
                }));
            }
            for s in &st.switches {
                items.push(Discovered::Switch(SwitchInfo {
                    id: SwitchId(s.id().0),
                    ports: s.ports(),
                }));
            }
            for s in &st.switches {
                for (sp, pr) in s.cables() {
                    let up = st.port_carries_traffic(pr);
                    items.push(Discovered::Link(LinkInfo {
                        accel: pr.accel.to_kdrv(),
                        accel_port: PortId(pr.port.0),
                        switch: SwitchId(s.id().0),
                        switch_port: PortId(sp.0),
                        up,
                    }));
                }
            }
        }
        for i in items {
            visit(i)?;
        }
        Ok(())
    }

    fn now(&self) -> FabricTime {
        // A poisoned lock means a panic already happened in the simulator; the clock then reads
        // the largest time, which expires every grant (fail closed).
        self.lock()
            .map_or(FabricTime(u64::MAX), |s| FabricTime(s.now_ns))
    }

    fn spdm_send(&self, accel: AcceleratorId, msg: &[u8]) -> Result<(), OpsError> {
        self.spdm_put(AccelId::from_kdrv(accel), msg).map_err(oe)
    }

    fn spdm_receive(&self, accel: AcceleratorId, buf: &mut [u8]) -> Result<usize, OpsError> {
        match self.spdm_take(AccelId::from_kdrv(accel), buf).map_err(oe)? {
            Ok(Some(n)) => Ok(n),
            Ok(None) => Err(OpsError::WouldBlock),
            Err(_) => Err(OpsError::TooBig),
        }
    }

    fn route_set(&self, e: &RouteEntry) -> Result<(), OpsError> {
        let mut st = self.lock().map_err(oe)?;
        st.switch_mut(SwitchIndex(e.switch.0))
            .map_err(oe)?
            .route_set(
                SwitchPort(e.ingress.0),
                AccelId::from_kdrv(e.dest),
                SwitchPort(e.egress.0),
            )
            .map_err(oe)
    }

    fn route_clear(
        &self,
        switch: SwitchId,
        ingress: PortId,
        dest: AcceleratorId,
    ) -> Result<(), OpsError> {
        let mut st = self.lock().map_err(oe)?;
        st.switch_mut(SwitchIndex(switch.0))
            .map_err(oe)?
            .route_clear(SwitchPort(ingress.0), AccelId::from_kdrv(dest))
            .map_err(oe)
    }

    fn route_get(
        &self,
        switch: SwitchId,
        ingress: PortId,
        dest: AcceleratorId,
    ) -> Result<Option<PortId>, OpsError> {
        let st = self.lock().map_err(oe)?;
        let sw = st.switch(SwitchIndex(switch.0)).map_err(oe)?;
        if ingress.0 >= sw.ports() {
            return Err(OpsError::NoDevice);
        }
        Ok(sw
            .route_get(SwitchPort(ingress.0), AccelId::from_kdrv(dest))
            .map(|p| PortId(p.0)))
    }

    fn window_perm_set(&self, perm: &WindowPerm) -> Result<(), OpsError> {
        let mut st = self.lock().map_err(oe)?;
        st.window_perm_set_driver(
            AccelId::from_kdrv(perm.target),
            perm.tag.0,
            DevicePerm {
                initiator: AccelId::from_kdrv(perm.initiator),
                base: perm.base,
                len: perm.len,
                rights: perm.rights,
            },
        )
        .map_err(oe)
    }

    fn window_perm_clear(&self, target: AcceleratorId, tag: PermTag) -> Result<(), OpsError> {
        let mut st = self.lock().map_err(oe)?;
        st.window_perm_clear(AccelId::from_kdrv(target), tag.0)
            .map_err(oe)
    }

    fn drain(
        &self,
        target: AcceleratorId,
        tag: PermTag,
        budget_ns: u64,
    ) -> Result<DrainOutcome, OpsError> {
        let r = self
            .lock()
            .map_err(oe)?
            .drain(AccelId::from_kdrv(target), tag.0, budget_ns)
            .map_err(oe)?;
        self.flush_tdi_events().map_err(oe)?;
        Ok(match r {
            Ok(elapsed_ns) => DrainOutcome::Drained { elapsed_ns },
            Err(outstanding) => DrainOutcome::TimedOut { outstanding },
        })
    }

    fn key_slot(&self, slot: KeySlotRef, cmd: KeySlotCommand) -> Result<KeySlotStatus, OpsError> {
        let s = slot_ref(slot);
        let mut st = self.lock().map_err(oe)?;
        match cmd {
            KeySlotCommand::Query => {}
            KeySlotCommand::Go => st.enable(s).map_err(oe)?,
            KeySlotCommand::Stop => st.slot_mut(s).map_err(oe)?.disable(),
            KeySlotCommand::Roll => {
                if s.dir == Direction::Rx {
                    // RX swaps in-band, on the peer's KeyRollMSG.
                    return Err(OpsError::Invalid);
                }
                st.key_roll(s).map_err(oe)?;
            }
            KeySlotCommand::Invalidate => st.slot_mut(s).map_err(oe)?.invalidate(),
        }
        let info = st.slot_info(s).map_err(oe)?;
        drop(st);
        self.flush_tdi_events().map_err(oe)?;
        Ok(slot_status(&info))
    }

    fn stop_streams(
        &self,
        at: AcceleratorId,
        port: PortId,
        source: AcceleratorId,
    ) -> Result<(), OpsError> {
        let mut st = self.lock().map_err(oe)?;
        let at = AccelId::from_kdrv(at);
        let source = AccelId::from_kdrv(source);
        for dir in [Direction::Rx, Direction::Tx] {
            st.slot_mut(SlotRef {
                accel: at,
                port: PortIndex(port.0),
                dir,
                peer: source,
            })
            .map_err(oe)?
            .stop(StopReason::Commanded);
        }
        Ok(())
    }

    fn next_fault(&self) -> Option<FaultReport> {
        self.lock().ok().and_then(|mut s| s.faults.pop_front())
    }
}
