//! The simulated pod: accelerators, switches, the encrypted data path, fault knobs and the leak
//! oracle.
//!
//! All state sits behind one mutex so that [`SimPod`] can implement the driver's `FabricOps`
//! (whose methods take `&self`). Methods never hold the lock across calls into user code.
//!
//! # Data path of one transaction (see [`SimPod::transfer`])
//! 1. The source picks a port: the first live, cabled port with an enabled TX slot for the
//!    destination (else the first cabled port, which then refuses with the key error).
//! 2. The switch's routing table is consulted on the clear header at its ingress port. A Deny is
//!    evaluated before the source seals, the model of an ingress port that refuses the flit: no
//!    counter value is consumed by a denied transaction, so no (key, IV) pair is ever emitted
//!    twice and the two ends' counters stay in step.
//! 3. The source seals the body (address bits 17:2, transaction tag, byte enables, data) under its
//!    TX stream key with the stream's next counter; the 16-byte header is the AAD.
//! 4. Fault knobs may tamper with or capture the wire bytes; the switch forwards on the header's
//!    destination ID to the egress port's cabled accelerator port.
//! 5. The receiver checks the header is addressed to it, verifies and decrypts with its RX slot
//!    for the header's source. A tag mismatch drops the transaction, stops every stream from that
//!    source on that port (the keys are zeroized), and queues an `IntegrityFailure` fault.
//! 6. The target checks its window table (permissions installed through `FabricOps`), then
//!    reads or writes memory, and answers on the read- or write-response stream the same way.
//! 7. The leak oracle inspects every byte delivered into memory or to a requester and records it
//!    if it crossed a tenant boundary without a live driver-installed permission.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use ring::rand::{SecureRandom, SystemRandom};
use ualink_kdrv::ids::{PortId, Rights, SwitchId};
use ualink_kdrv::ops::{FaultReport, KeySlotRef, StreamId as KStreamId};

use ualink_spdm::tdisp::responder::DeviceEvent as TdiEvent;
use ualink_spdm::tdisp::TdiState;

use crate::device::ResponderFault;
use crate::error::{KeyError, SimError};
use crate::ids::{AccelId, PortIndex, PortRef, SwitchIndex, SwitchPort, TenantId};
use crate::measurement::Measurements;
use crate::memory::Memory;
use crate::pki::{DevicePki, PkiFactory};
use crate::pod::{AcceleratorSpec, PodSpec};
use crate::switch::Switch;
use crate::ualinksec::header::{
    self, Cmd, RspStatus, TxnHeader, WireTxn, ADDR_HI_MASK, HEADER_LEN, LOW_ADDR_BITS,
};
use crate::ualinksec::{
    Direction, KeyRole, KeySlot, MasterKey, OpenError, PreparedKey, SecParams, StopReason, StreamId,
};

/// The fabric clock's value when a pod is built (1 s), so that times before the pod started
/// (e.g. an already-expired grant) are representable.
pub const FABRIC_CLOCK_START_NS: u64 = 1_000_000_000;

/// A target-side window permission as the device holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePerm {
    /// Accelerator allowed to access.
    pub initiator: AccelId,
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
    /// Allowed operations.
    pub rights: Rights,
}

impl DevicePerm {
    fn covers(&self, initiator: AccelId, addr: u64, len: u64, right: Rights) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let Some(pend) = self.base.checked_add(self.len) else {
            return false;
        };
        self.initiator == initiator
            && addr >= self.base
            && end <= pend
            && self.rights.contains(right)
    }
}

/// One UALink port of an accelerator.
#[derive(Debug)]
pub struct Port {
    spare: bool,
    failed: bool,
    up: bool,
    link: Option<(SwitchIndex, SwitchPort)>,
    tx: BTreeMap<AccelId, KeySlot>,
    rx: BTreeMap<AccelId, KeySlot>,
}

impl Port {
    fn carries_traffic(&self) -> bool {
        self.up && !self.spare && !self.failed && self.link.is_some()
    }

    fn stop_all(&mut self, reason: StopReason) {
        for s in self.tx.values_mut().chain(self.rx.values_mut()) {
            s.stop(reason);
        }
    }
}

/// An event a device's security engine observes (consumed by its SPDM/TDISP responder once wired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// The host wrote a TDI's configuration space (a locked TDI must move to ERROR).
    TdiConfigWrite {
        /// TDI index on the device.
        tdi: u16,
        /// Offset written.
        offset: u32,
        /// Bytes written.
        bytes: Vec<u8>,
    },
    /// The device was reset.
    Reset,
    /// A firmware update to `version` was attempted; `applied` is false when the device
    /// refused it because its TDI was CONFIG_LOCKED or RUN (NO_UPDATE_AFTER_LOCK).
    FirmwareUpdate {
        /// The firmware version offered.
        version: String,
        /// Whether the device installed it.
        applied: bool,
    },
}

/// One simulated accelerator.
#[derive(Debug)]
pub struct Accelerator {
    spec: AcceleratorSpec,
    id: AccelId,
    pki: DevicePki,
    measurements: Measurements,
    memory: Memory,
    ports: Vec<Port>,
    perms: BTreeMap<u64, DevicePerm>,
    draining: BTreeSet<u64>,
    owner: Option<TenantId>,
    events: Vec<DeviceEvent>,
}

impl Accelerator {
    /// Its 10-bit ID.
    pub fn id(&self) -> AccelId {
        self.id
    }

    /// Its description (vendor, model, firmware, sizes).
    pub fn spec(&self) -> &AcceleratorSpec {
        &self.spec
    }

    /// Its device PKI (for the SPDM responder).
    pub fn pki(&self) -> &DevicePki {
        &self.pki
    }

    /// Its current measurements (for the SPDM responder).
    pub fn measurements(&self) -> &Measurements {
        &self.measurements
    }

    fn port(&self, p: PortIndex) -> Result<&Port, SimError> {
        self.ports
            .get(usize::from(p.0))
            .ok_or(SimError::UnknownPort(PortRef {
                accel: self.id,
                port: p,
            }))
    }

    fn port_mut(&mut self, p: PortIndex) -> Result<&mut Port, SimError> {
        let id = self.id;
        self.ports
            .get_mut(usize::from(p.0))
            .ok_or(SimError::UnknownPort(PortRef { accel: id, port: p }))
    }

    fn window_check(
        &self,
        initiator: AccelId,
        addr: u64,
        len: u64,
        right: Rights,
    ) -> Result<u64, &'static str> {
        let mut draining_hit = false;
        for (tag, p) in &self.perms {
            if p.covers(initiator, addr, len, right) {
                if self.draining.contains(tag) {
                    draining_hit = true;
                    continue;
                }
                return Ok(*tag);
            }
        }
        Err(if draining_hit {
            "permission is draining"
        } else {
            "no permission covers the access"
        })
    }
}

/// Which way bytes crossed for a leak record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakKind {
    /// Bytes written into the target's memory.
    MemoryWrite,
    /// Bytes read from the target's memory and delivered to the requester.
    ReadReturn,
}

/// One oracle record: bytes that crossed a tenant boundary without a live grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakRecord {
    /// Accelerator whose tenant the bytes came from.
    pub from: AccelId,
    /// Accelerator whose tenant received them.
    pub to: AccelId,
    /// Owner of `from`.
    pub from_owner: Option<TenantId>,
    /// Owner of `to`.
    pub to_owner: Option<TenantId>,
    /// Address in the target's memory.
    pub addr: u64,
    /// Number of bytes.
    pub len: u64,
    /// Direction.
    pub kind: LeakKind,
}

/// The leak oracle: its own ledger of driver-installed permissions (only `FabricOps` writes it,
/// unlike the device tables, which fault knobs can also write) and the records. Boundaries are
/// tenants (accelerator ownership from [`SimPod::set_owner`]); the simulator does not see OS
/// instances, whose separation the driver enforces above the fabric.
#[derive(Debug, Default)]
struct Oracle {
    /// (target, tag) -> permission, as installed through `FabricOps::window_perm_set`.
    ledger: BTreeMap<(AccelId, u64), DevicePerm>,
    records: Vec<LeakRecord>,
}

impl Oracle {
    #[allow(clippy::too_many_arguments)]
    fn observe(
        &mut self,
        owners: (Option<TenantId>, Option<TenantId>),
        from: AccelId,
        to: AccelId,
        target: AccelId,
        initiator: AccelId,
        addr: u64,
        len: u64,
        kind: LeakKind,
    ) {
        if owners.0 == owners.1 && owners.0.is_some() {
            return;
        }
        let right = match kind {
            LeakKind::MemoryWrite => Rights::WRITE,
            LeakKind::ReadReturn => Rights::READ,
        };
        let granted = self
            .ledger
            .range((target, 0)..=(target, u64::MAX))
            .any(|(_, p)| p.covers(initiator, addr, len, right));
        if !granted {
            self.records.push(LeakRecord {
                from,
                to,
                from_owner: owners.0,
                to_owner: owners.1,
                addr,
                len,
                kind,
            });
        }
    }
}

/// What happens to the next KeyRollMSG(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRollFault {
    /// The message is lost.
    Drop,
    /// The message is held for this many nanoseconds of fabric time.
    Delay(u64),
}

/// A modification of the next transaction on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireTamper {
    /// Offset into `header || ciphertext || tag`.
    pub offset: usize,
    /// XOR mask applied to that byte.
    pub xor: u8,
}

/// A transaction captured on the wire, with the switch port it entered on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The switch.
    pub switch: SwitchIndex,
    /// Its ingress port.
    pub ingress: SwitchPort,
    /// The wire bytes.
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
struct DelayedRoll {
    deliver_at_ns: u64,
    switch: SwitchIndex,
    ingress: SwitchPort,
    wire: WireTxn,
    tx: PortRef,
    peer: AccelId,
}

#[derive(Debug)]
struct Inflight {
    target: AccelId,
    tag: u64,
    complete_at_ns: u64,
}

/// Names one key slot in the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotRef {
    /// Accelerator holding the slot.
    pub accel: AccelId,
    /// Its port.
    pub port: PortIndex,
    /// TX or RX.
    pub dir: Direction,
    /// Destination (TX) or source (RX).
    pub peer: AccelId,
}

impl SlotRef {
    /// The error for a key operation on this slot that failed with `reason`.
    pub fn key_error(self, reason: KeyError) -> SimError {
        SimError::Key {
            port: PortRef {
                accel: self.accel,
                port: self.port,
            },
            peer: self.peer,
            reason,
        }
    }
}

/// A read or a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Read `len` bytes.
    Read(u64),
    /// Write these bytes.
    Write(&'a [u8]),
}

/// Everything behind the lock.
#[derive(Debug)]
pub(crate) struct PodState {
    pub(crate) sec: SecParams,
    max_txn: u16,
    pub(crate) now_ns: u64,
    pub(crate) accels: BTreeMap<AccelId, Accelerator>,
    pub(crate) switches: Vec<Switch>,
    pub(crate) faults: VecDeque<FaultReport>,
    oracle: Oracle,
    scratch: Vec<u8>,
    /// Reused request and response body buffers of the data path (no allocation per
    /// transaction). They only ever hold ciphertext or bytes bound for (or read from) memory
    /// that the simulator keeps anyway, so they are not zeroized between uses.
    req_buf: Vec<u8>,
    rsp_buf: Vec<u8>,
    next_txn_tag: u16,
    tamper: VecDeque<WireTamper>,
    capture: Option<Vec<Captured>>,
    keyroll_faults: VecDeque<KeyRollFault>,
    delayed_rolls: Vec<DelayedRoll>,
    inflight: Vec<Inflight>,
    /// TDISP events for devices' TDIs, applied to the responders once the state lock is released.
    tdi_events: Vec<(AccelId, TdiEvent)>,
}

/// The simulated pod.
#[derive(Debug)]
pub struct SimPod {
    st: Arc<Mutex<PodState>>,
    pki: PkiFactory,
    /// Each accelerator's SPDM responder and mailbox, each behind its own lock. The map is
    /// built once in [`SimPod::new`] and never changes shape (a device reset rebuilds the
    /// responder inside its entry), so reaching a device's mailbox takes no pod-wide lock and
    /// responders of different devices (their signing and key agreement) run in parallel.
    ///
    /// Lock order (a thread only ever takes these locks in this order, and at most one
    /// mailbox at a time):
    ///
    /// 1. `tdi_flush` — only while applying queued TDISP events, see
    ///    [`SimPod::flush_tdi_events`];
    /// 2. one device's mailbox;
    /// 3. `st`, the pod state (the responder's device reads it, and the key programming
    ///    engine writes it, while the mailbox is held);
    /// 4. a device's own signing-key cache (see `SimDevice::sign`), never held together
    ///    with `st`.
    ///
    /// `st` is never held while a mailbox or `tdi_flush` is taken: code holding the state
    /// queues TDISP events in `PodState::tdi_events` instead, applied after it is released.
    pub(crate) mailboxes: BTreeMap<AccelId, Mutex<crate::device::Mailbox>>,
    /// Serializes the application of queued TDISP events so that two threads flushing at
    /// once apply one device's events in the order the fabric queued them.
    tdi_flush: Mutex<()>,
}

fn kport(p: PortIndex) -> PortId {
    PortId(p.0)
}

fn kstream(s: StreamId) -> KStreamId {
    match s {
        StreamId::Requests => KStreamId::Request,
        StreamId::ReadResponses => KStreamId::ReadResponse,
        StreamId::WriteResponses => KStreamId::WriteResponse,
    }
}

pub(crate) fn kslot(s: SlotRef) -> KeySlotRef {
    KeySlotRef {
        accel: s.accel.to_kdrv(),
        port: kport(s.port),
        dir: match s.dir {
            Direction::Tx => ualink_kdrv::ops::Direction::Tx,
            Direction::Rx => ualink_kdrv::ops::Direction::Rx,
        },
        peer: s.peer.to_kdrv(),
    }
}

impl SimPod {
    /// Builds a pod from a validated description: device PKIs are issued, measurements are
    /// golden, memory is zero, every routing entry is Deny, no key is programmed.
    pub fn new(spec: &PodSpec) -> Result<Self, SimError> {
        spec.validate()?;
        let mut pki = PkiFactory::default();
        let mut accels = BTreeMap::new();
        for a in &spec.accelerators {
            let id = AccelId::new(a.id)?;
            let n = a
                .ports
                .checked_add(a.spare_ports)
                .ok_or(SimError::PodConfig("ports".into()))?;
            let ports = (0..n)
                .map(|i| Port {
                    spare: i >= a.ports,
                    failed: false,
                    up: false,
                    link: None,
                    tx: BTreeMap::new(),
                    rx: BTreeMap::new(),
                })
                .collect();
            accels.insert(
                id,
                Accelerator {
                    spec: a.clone(),
                    id,
                    pki: pki.issue(&a.vendor, &a.model, u64::from(a.id))?,
                    measurements: Measurements::golden(&a.vendor, &a.model, &a.firmware),
                    memory: Memory::new(a.memory_bytes),
                    ports,
                    perms: BTreeMap::new(),
                    draining: BTreeSet::new(),
                    owner: None,
                    events: Vec::new(),
                },
            );
        }
        let mut switches: Vec<Switch> = spec
            .switches
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // `validate` bounds the switch count to u16.
                Switch::new(SwitchIndex(u16::try_from(i).unwrap_or(u16::MAX)), s.ports)
            })
            .collect();
        for l in &spec.links {
            let id = AccelId::new(l.accel)?;
            let pr = PortRef {
                accel: id,
                port: PortIndex(l.port),
            };
            let sw = switches
                .get_mut(usize::from(l.switch))
                .ok_or(SimError::UnknownSwitch(SwitchIndex(l.switch)))?;
            sw.attach(SwitchPort(l.switch_port), pr)?;
            let a = accels
                .get_mut(&id)
                .ok_or(SimError::UnknownAccelerator(id))?;
            let p = a.port_mut(PortIndex(l.port))?;
            p.link = Some((SwitchIndex(l.switch), SwitchPort(l.switch_port)));
            p.up = true;
        }
        // Every device's leaf key, parsed now: a device holds its key from power-on, and
        // ring's key-pair check on parsing costs as much as a signature.
        let rng = ualink_spdm::crypto::Rng::new();
        let mut keys = accels
            .iter()
            .map(|(id, a)| Ok((*id, crate::device::CachedKey::load(a.pki(), &rng)?)))
            .collect::<Result<BTreeMap<_, _>, SimError>>()?;
        let st = Arc::new(Mutex::new(PodState {
            sec: SecParams::default(),
            max_txn: spec.defaults.max_txn_bytes,
            now_ns: FABRIC_CLOCK_START_NS,
            accels,
            switches,
            faults: VecDeque::new(),
            oracle: Oracle::default(),
            scratch: Vec::new(),
            req_buf: Vec::new(),
            rsp_buf: Vec::new(),
            next_txn_tag: 0,
            tamper: VecDeque::new(),
            capture: None,
            keyroll_faults: VecDeque::new(),
            delayed_rolls: Vec::new(),
            inflight: Vec::new(),
            tdi_events: Vec::new(),
        }));
        let mut mailboxes = BTreeMap::new();
        for a in &spec.accelerators {
            let id = AccelId::new(a.id)?;
            let ports = u8::try_from(a.ports.saturating_add(a.spare_ports))
                .map_err(|_| SimError::PodConfig("more than 256 ports on an accelerator".into()))?;
            mailboxes.insert(
                id,
                Mutex::new(crate::device::Mailbox::new(
                    id,
                    ports,
                    Arc::clone(&st),
                    keys.remove(&id),
                )?),
            );
        }
        Ok(Self {
            st,
            pki,
            mailboxes,
            tdi_flush: Mutex::new(()),
        })
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, PodState>, SimError> {
        self.st.lock().map_err(|_| SimError::Poisoned)
    }

    /// Locks `accel`'s mailbox (and only it). Must not be called with `st` held, nor with
    /// another mailbox held (see the lock order on [`SimPod::mailboxes`]).
    fn mailbox(&self, accel: AccelId) -> Result<MutexGuard<'_, crate::device::Mailbox>, SimError> {
        self.mailboxes
            .get(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?
            .lock()
            .map_err(|_| SimError::Poisoned)
    }

    /// The vendor root certificates (vendor, DER) a verifier should trust.
    pub fn vendor_roots(&self) -> Vec<(String, Vec<u8>)> {
        self.pki
            .roots()
            .map(|(v, d)| (v.to_owned(), d.to_vec()))
            .collect()
    }

    /// Runs `f` on one accelerator (read-only): PKI, measurements, spec.
    pub fn with_accelerator<R>(
        &self,
        id: AccelId,
        f: impl FnOnce(&Accelerator) -> R,
    ) -> Result<R, SimError> {
        let st = self.lock()?;
        let a = st.accels.get(&id).ok_or(SimError::UnknownAccelerator(id))?;
        Ok(f(a))
    }

    /// All accelerator IDs.
    pub fn accelerator_ids(&self) -> Result<Vec<AccelId>, SimError> {
        Ok(self.lock()?.accels.keys().copied().collect())
    }

    /// Sets the engine's timers and thresholds.
    pub fn set_sec_params(&self, p: SecParams) -> Result<(), SimError> {
        self.lock()?.sec = p;
        Ok(())
    }

    /// The fabric clock in nanoseconds.
    pub fn now_ns(&self) -> Result<u64, SimError> {
        Ok(self.lock()?.now_ns)
    }

    /// Advances the fabric clock: delayed KeyRollMSGs due by then are delivered, then key-roll
    /// timeouts and stale-key deadlines are applied (stopping slots and queueing faults).
    pub fn advance_clock(&self, ns: u64) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.now_ns = st.now_ns.saturating_add(ns);
        st.deliver_due_rolls();
        st.tick_all();
        drop(st);
        self.flush_tdi_events()
    }

    /// Records which tenant owns an accelerator (its vPod membership) for the leak oracle.
    /// `None` means unassigned (its own domain).
    pub fn set_owner(&self, accel: AccelId, owner: Option<TenantId>) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?
            .owner = owner;
        Ok(())
    }

    /// The leak oracle's records (tests assert this stays empty).
    pub fn leaks(&self) -> Result<Vec<LeakRecord>, SimError> {
        Ok(self.lock()?.oracle.records.clone())
    }

    /// Reads a device's memory directly (the device's own view; not a fabric access).
    pub fn local_read(&self, accel: AccelId, addr: u64, len: usize) -> Result<Vec<u8>, SimError> {
        let st = self.lock()?;
        let a = st
            .accels
            .get(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?;
        let mut out = vec![0u8; len];
        a.memory.read(addr, &mut out)?;
        Ok(out)
    }

    /// Writes a device's memory directly (the device's own compute; not a fabric access).
    pub fn local_write(&self, accel: AccelId, addr: u64, data: &[u8]) -> Result<(), SimError> {
        let mut st = self.lock()?;
        let a = st
            .accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?;
        a.memory.write(addr, data)
    }

    /// The device security engine's key sink: programs a master key into a slot. In the full
    /// system this is reached only from the device's SPDM responder
    /// ([`crate::device::SimKeySink`], after a UALinkSec KEY_PROG inside a secured session);
    /// tests and bring-up helpers call it directly, as if the TSM had.
    pub fn program_key(
        &self,
        slot: SlotRef,
        role: KeyRole,
        key: MasterKey,
    ) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.program_key(slot, role, key)
    }

    /// Enables a slot. RX enables need an active key; TX enables additionally need the peer's RX
    /// slot (on the port cabled to the same switch) enabled with the same key (epoch and
    /// fingerprint), UALink_200 §9.5.10.
    pub fn enable(&self, slot: SlotRef) -> Result<(), SimError> {
        self.lock()?.enable(slot)
    }

    /// Bring-up helper standing in for the TSM's key distribution over SPDM (which the
    /// responders implement, see [`crate::device`]): for every switch plane that
    /// connects `a` and `b`, generates one fresh random 256-bit master key per direction,
    /// programs `A.tx[B] = B.rx[A]` and `B.tx[A] = A.rx[B]` at `epoch`, enables every RX slot, then
    /// every TX slot.
    pub fn key_pair(&self, a: AccelId, b: AccelId, epoch: u32) -> Result<(), SimError> {
        let mut st = self.lock()?;
        let planes = st.common_planes(a, b)?;
        if planes.is_empty() {
            return Err(SimError::NoRoute { src: a, dst: b });
        }
        let rng = SystemRandom::new();
        let mut pairs = Vec::new();
        for (pa, pb) in planes {
            for (x, px, y, py) in [(a, pa, b, pb), (b, pb, a, pa)] {
                let mut k = [0u8; 32];
                rng.fill(&mut k).map_err(|_| SimError::Rng)?;
                let tx = SlotRef {
                    accel: x,
                    port: px,
                    dir: Direction::Tx,
                    peer: y,
                };
                let rx = SlotRef {
                    accel: y,
                    port: py,
                    dir: Direction::Rx,
                    peer: x,
                };
                st.program_key(tx, KeyRole::Active, MasterKey::new(k, epoch))?;
                st.program_key(rx, KeyRole::Active, MasterKey::new(k, epoch))?;
                zeroize::Zeroize::zeroize(&mut k);
                pairs.push((tx, rx));
            }
        }
        for (_, rx) in &pairs {
            st.enable(*rx)?;
        }
        for (tx, _) in &pairs {
            st.enable(*tx)?;
        }
        Ok(())
    }

    /// Installs fresh alternate keys (as [`SimPod::key_pair`] does for active keys) on both
    /// directions between `a` and `b`.
    pub fn key_pair_alternate(&self, a: AccelId, b: AccelId, epoch: u32) -> Result<(), SimError> {
        let mut st = self.lock()?;
        let rng = SystemRandom::new();
        for (pa, pb) in st.common_planes(a, b)? {
            for (x, px, y, py) in [(a, pa, b, pb), (b, pb, a, pa)] {
                let mut k = [0u8; 32];
                rng.fill(&mut k).map_err(|_| SimError::Rng)?;
                st.program_key(
                    SlotRef {
                        accel: x,
                        port: px,
                        dir: Direction::Tx,
                        peer: y,
                    },
                    KeyRole::Alternate,
                    MasterKey::new(k, epoch),
                )?;
                st.program_key(
                    SlotRef {
                        accel: y,
                        port: py,
                        dir: Direction::Rx,
                        peer: x,
                    },
                    KeyRole::Alternate,
                    MasterKey::new(k, epoch),
                )?;
                zeroize::Zeroize::zeroize(&mut k);
            }
        }
        Ok(())
    }

    /// Public view of a slot (epochs, fingerprints, state; never key bytes).
    pub fn slot_info(&self, slot: SlotRef) -> Result<crate::ualinksec::SlotInfo, SimError> {
        self.lock()?.slot_info(slot)
    }

    /// The ports of `a` and `b` that share a switch (one pair per plane), for tests.
    pub fn planes(&self, a: AccelId, b: AccelId) -> Result<Vec<(PortIndex, PortIndex)>, SimError> {
        self.lock()?.common_planes(a, b)
    }

    /// Opens routing both ways between `a` and `b` on every shared switch (what the driver's map
    /// does through `FabricOps::route_set`; this helper writes the tables directly).
    pub fn open_routes(&self, a: AccelId, b: AccelId) -> Result<(), SimError> {
        let mut st = self.lock()?;
        for (pa, pb) in st.common_planes(a, b)? {
            let (sa, ia) = st.link_of(a, pa)?;
            let (_, ib) = st.link_of(b, pb)?;
            let sw = st.switch_mut(sa)?;
            sw.route_set(ia, b, ib)?;
            sw.route_set(ib, a, ia)?;
        }
        Ok(())
    }

    /// Installs a target-side window permission *and* records it in the oracle's ledger, exactly
    /// as `FabricOps::window_perm_set` does (the driver path).
    pub fn grant_window(
        &self,
        target: AccelId,
        tag: u64,
        perm: DevicePerm,
    ) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.window_perm_set(target, tag, perm, true)
    }

    /// Performs a transfer of `op` between `src` and `dst` at `addr` in `dst`'s memory, split into
    /// transactions of at most the link's maximum that never cross a 256 KiB boundary. Returns the
    /// bytes read (empty for writes). Stops at the first failing transaction.
    pub fn transfer(
        &self,
        src: AccelId,
        dst: AccelId,
        addr: u64,
        op: Op<'_>,
    ) -> Result<Vec<u8>, SimError> {
        let r = {
            let mut st = self.lock()?;
            st.transfer(src, dst, addr, op)
        };
        self.flush_tdi_events()?;
        r
    }

    /// Applies TDISP events queued by the fabric (integrity failures, resets) to the devices'
    /// TDIs. The state lock is released first: the responders read the pod state.
    ///
    /// Events are taken from the state and applied while `tdi_flush` is held, so flushes
    /// from different threads do not interleave: each device sees its events in queue order.
    /// The common case (nothing queued) takes only the state lock.
    pub(crate) fn flush_tdi_events(&self) -> Result<(), SimError> {
        if self.lock()?.tdi_events.is_empty() {
            return Ok(());
        }
        let _flush = self.tdi_flush.lock().map_err(|_| SimError::Poisoned)?;
        let events = std::mem::take(&mut self.lock()?.tdi_events);
        for (accel, ev) in events {
            // One mailbox at a time, the state released (lock order on `mailboxes`).
            if let Some(mb) = self.mailboxes.get(&accel) {
                mb.lock()
                    .map_err(|_| SimError::Poisoned)?
                    .device_mut()
                    .notify(ev);
            }
        }
        Ok(())
    }

    /// The TDISP state of `accel`'s TDI (CONFIG_UNLOCKED from power-on and after a reset;
    /// `None` only if the device hosts no TDI).
    pub fn tdi_state(&self, accel: AccelId) -> Result<Option<TdiState>, SimError> {
        Ok(self.mailbox(accel)?.device().tdi_state())
    }

    /// Fault knob: makes `accel`'s SPDM responder misbehave (or stop misbehaving).
    pub fn responder_fault(
        &self,
        accel: AccelId,
        fault: ResponderFault,
        on: bool,
    ) -> Result<(), SimError> {
        self.mailbox(accel)?.set_fault(fault, on);
        Ok(())
    }

    /// Fault knob: `accel`'s certificate chain and key are swapped for a well-formed chain from
    /// a rogue CA (same vendor and model names) that does not lead to the vendor's root.
    pub fn swap_certificate(&self, accel: AccelId) -> Result<(), SimError> {
        let mut st = self.lock()?;
        let a = st
            .accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?;
        let (vendor, model) = (a.spec.vendor.clone(), a.spec.model.clone());
        a.pki
            .swap_for_untrusted(&vendor, &model, u64::from(accel.get()))
    }

    /// Passes one transport-framed (MCTP) SPDM message to `accel`'s responder; the answer is
    /// queued for [`SimPod::spdm_take`].
    pub fn spdm_put(&self, accel: AccelId, framed: &[u8]) -> Result<(), SimError> {
        // Only this device's mailbox is held while its responder runs (signing, key
        // agreement): other devices' responders proceed in parallel.
        let r = self.mailbox(accel)?.send(framed);
        self.flush_tdi_events()?;
        r
    }

    /// Takes the oldest queued SPDM answer of `accel` into `buf`: `Ok(None)` if none is queued,
    /// `Err(needed)` if `buf` is too small (the answer stays queued).
    pub fn spdm_take(
        &self,
        accel: AccelId,
        buf: &mut [u8],
    ) -> Result<Result<Option<usize>, usize>, SimError> {
        Ok(self.mailbox(accel)?.receive(buf))
    }

    /// Writes `data` into `dst`'s memory at `addr` from `src`.
    pub fn write(
        &self,
        src: AccelId,
        dst: AccelId,
        addr: u64,
        data: &[u8],
    ) -> Result<(), SimError> {
        self.transfer(src, dst, addr, Op::Write(data)).map(|_| ())
    }

    /// Reads `len` bytes of `dst`'s memory at `addr` into `src`.
    pub fn read(
        &self,
        src: AccelId,
        dst: AccelId,
        addr: u64,
        len: u64,
    ) -> Result<Vec<u8>, SimError> {
        self.transfer(src, dst, addr, Op::Read(len))
    }

    /// Sends a KeyRollMSG from the TX slot: the receiver swaps to its alternate key on receipt,
    /// the sender on the acknowledgement. A lost or late message stops the slot at the timeout.
    pub fn key_roll(&self, tx: SlotRef) -> Result<(), SimError> {
        let r = self.lock()?.key_roll(tx);
        self.flush_tdi_events()?;
        r
    }

    // ------------------------------------------------------------------ fault knobs

    /// Fault knob: XOR a byte of the next transaction put on the wire (requests and responses
    /// alike; queue several for several transactions).
    pub fn tamper_next_wire(&self, t: WireTamper) -> Result<(), SimError> {
        self.lock()?.tamper.push_back(t);
        Ok(())
    }

    /// Fault knob: start or stop recording every transaction on the wire.
    pub fn capture_wire(&self, on: bool) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.capture = if on { Some(Vec::new()) } else { None };
        Ok(())
    }

    /// The recorded transactions.
    pub fn captured(&self) -> Result<Vec<Captured>, SimError> {
        Ok(self.lock()?.capture.clone().unwrap_or_default())
    }

    /// Fault knob: an attacker on the wire injects raw bytes at a switch ingress port (replays,
    /// forgeries). The receiver processes them like any transaction; a request that verifies is
    /// executed and its response discarded.
    pub fn inject_wire(
        &self,
        switch: SwitchIndex,
        ingress: SwitchPort,
        bytes: &[u8],
    ) -> Result<(), SimError> {
        let wire = WireTxn::from_bytes(bytes)?;
        let r = {
            let mut st = self.lock()?;
            st.deliver(switch, ingress, wire)
                .and_then(|(rport, hdr, body)| {
                    st.serve_request(rport, &hdr, &body, &mut Vec::new())
                        .map(|_| ())
                })
        };
        self.flush_tdi_events()?;
        r
    }

    /// Fault knob: the next KeyRollMSG is dropped or delayed.
    pub fn keyroll_fault(&self, f: KeyRollFault) -> Result<(), SimError> {
        self.lock()?.keyroll_faults.push_back(f);
        Ok(())
    }

    /// Fault knob: a host bypassing the driver writes a routing entry directly.
    pub fn host_write_route(
        &self,
        switch: SwitchIndex,
        ingress: SwitchPort,
        dest: AccelId,
        egress: SwitchPort,
    ) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.switch_mut(switch)?.route_set(ingress, dest, egress)
    }

    /// Fault knob: a host bypassing the driver writes a target-side window permission directly.
    /// The oracle's ledger does not learn of it, so any cross-tenant byte it lets through is
    /// recorded as a leak.
    pub fn host_write_window_perm(
        &self,
        target: AccelId,
        tag: u64,
        perm: DevicePerm,
    ) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.window_perm_set(target, tag, perm, false)
    }

    /// Fault knob: the host writes a TDI's configuration; the device's security engine sees a
    /// [`DeviceEvent::TdiConfigWrite`] (a locked TDI must leave RUN for ERROR once TDISP is wired).
    pub fn host_write_tdi_config(
        &self,
        accel: AccelId,
        tdi: u16,
        offset: u32,
        bytes: &[u8],
    ) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?
            .events
            .push(DeviceEvent::TdiConfigWrite {
                tdi,
                offset,
                bytes: bytes.to_vec(),
            });
        if u32::from(tdi) == crate::device::SIM_TDI {
            st.tdi_events.push((accel, TdiEvent::ConfigWritten));
        }
        drop(st);
        self.flush_tdi_events()
    }

    /// Takes the device events queued for `accel`'s security engine.
    pub fn take_device_events(&self, accel: AccelId) -> Result<Vec<DeviceEvent>, SimError> {
        let mut st = self.lock()?;
        Ok(std::mem::take(
            &mut st
                .accels
                .get_mut(&accel)
                .ok_or(SimError::UnknownAccelerator(accel))?
                .events,
        ))
    }

    /// Fault knob: firmware (or ROM/config) tamper; persists across resets.
    pub fn tamper_measurement(
        &self,
        accel: AccelId,
        kind: crate::measurement::MeasurementKind,
        how: crate::measurement::Tamper,
    ) -> Result<(), SimError> {
        let mut st = self.lock()?;
        st.accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?
            .measurements
            .tamper(kind, how);
        Ok(())
    }

    /// A firmware update of `accel` to `version` (the host or provider installing a genuine
    /// image). The device reports NO_UPDATE_AFTER_LOCK, so while its TDI is CONFIG_LOCKED or
    /// RUN it refuses the update — the measurements stay as attested — and moves the TDI to
    /// ERROR ([`SimError::FirmwareUpdateAfterLock`]). Otherwise the firmware and configuration
    /// images become `version`'s golden images, seen in the next MEASUREMENTS. Either way the
    /// security engine sees a [`DeviceEvent::FirmwareUpdate`].
    pub fn update_firmware(&self, accel: AccelId, version: &str) -> Result<(), SimError> {
        self.flush_tdi_events()?;
        // Lock order: the device's mailbox, then the state (see `mailboxes`).
        let mut mb = self.mailbox(accel)?;
        let dev = mb.device_mut();
        let locked = matches!(
            dev.tdi_state(),
            Some(TdiState::ConfigLocked | TdiState::Run)
        );
        if locked {
            // TDISP has no event of its own for this; a firmware change is a change of the
            // locked configuration.
            dev.notify(TdiEvent::ConfigWritten);
        }
        let mut st = self.lock()?;
        let a = st
            .accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?;
        a.events.push(DeviceEvent::FirmwareUpdate {
            version: version.to_owned(),
            applied: !locked,
        });
        if locked {
            return Err(SimError::FirmwareUpdateAfterLock { accel });
        }
        a.measurements.update_firmware(version);
        Ok(())
    }

    /// Fault knob: device reset. All volatile state is lost: keys on every port are
    /// zeroized, window permissions cleared, memory scrubbed, and the SPDM responder is
    /// rebuilt fresh (connection state, transcripts and secured sessions with their keys are
    /// gone; the TDI is back in CONFIG_UNLOCKED with no nonce), so a handshake or session in
    /// progress is interrupted. Peers' slots toward the device stop (both ends must be
    /// re-keyed); a `DeviceReset` fault is queued. Firmware, measurements (including tampers)
    /// and the device's PKI persist.
    pub fn reset_device(&self, accel: AccelId) -> Result<(), SimError> {
        let mut st = self.lock()?;
        let a = st
            .accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?;
        for p in &mut a.ports {
            for s in p.tx.values_mut().chain(p.rx.values_mut()) {
                s.invalidate();
            }
        }
        a.perms.clear();
        a.draining.clear();
        a.memory.scrub();
        a.events.push(DeviceEvent::Reset);
        st.stop_peers_toward(accel, None, StopReason::DeviceReset);
        st.faults.push_back(FaultReport::DeviceReset {
            accel: accel.to_kdrv(),
        });
        // Events queued for the old TDI are moot: it is rebuilt below.
        st.tdi_events.retain(|(a, _)| *a != accel);
        drop(st);
        self.flush_tdi_events()?;
        self.mailbox(accel)?.reset()
    }

    /// Fault knob: switch reset (every routing entry back to Deny).
    pub fn reset_switch(&self, switch: SwitchIndex) -> Result<(), SimError> {
        self.lock()?.switch_mut(switch)?.reset();
        Ok(())
    }

    /// Fault knob: link down/up on one accelerator port. Going down stops the port's slots and the
    /// peers' slots toward it on that plane (both ends re-key) and queues `LinkDown`; coming up
    /// queues `LinkUp` (keys must be re-programmed before traffic).
    pub fn set_link(&self, accel: AccelId, port: PortIndex, up: bool) -> Result<(), SimError> {
        let mut st = self.lock()?;
        let plane = st.link_of(accel, port).ok().map(|(s, _)| s);
        let p = st
            .accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?
            .port_mut(port)?;
        if p.up == up {
            return Ok(());
        }
        p.up = up;
        if up {
            st.faults.push_back(FaultReport::LinkUp {
                accel: accel.to_kdrv(),
                port: kport(port),
            });
        } else {
            p.stop_all(StopReason::LinkDown);
            if let Some(sw) = plane {
                st.stop_peers_toward(accel, Some(sw), StopReason::LinkDown);
            }
            st.faults.push_back(FaultReport::LinkDown {
                accel: accel.to_kdrv(),
                port: kport(port),
            });
            st.tdi_events.push((accel, TdiEvent::KeysRevoked));
        }
        drop(st);
        self.flush_tdi_events()
    }

    /// Fault knob: a link flap (down, then up).
    pub fn link_flap(&self, accel: AccelId, port: PortIndex) -> Result<(), SimError> {
        self.set_link(accel, port, false)?;
        self.set_link(accel, port, true)
    }

    /// Fault knob: port migration. `from` fails; the spare port `to` (cabled to its own switch
    /// port) takes over. Keys on `from` are zeroized, `to` starts with none, and the peers' slots
    /// toward `accel` on that plane stop: both ends must be re-keyed before traffic resumes, and
    /// the driver must re-point routes at the new switch port (reported in the fault).
    pub fn migrate_port(
        &self,
        accel: AccelId,
        from: PortIndex,
        to: PortIndex,
    ) -> Result<(), SimError> {
        let mut st = self.lock()?;
        let (sw_from, _) = st.link_of(accel, from)?;
        let (sw_to, sp_to) = st.link_of(accel, to)?;
        let a = st
            .accels
            .get_mut(&accel)
            .ok_or(SimError::UnknownAccelerator(accel))?;
        if !a.port(to)?.spare || a.port(to)?.failed {
            return Err(SimError::PodConfig(
                "migration target is not a usable spare port".into(),
            ));
        }
        let pf = a.port_mut(from)?;
        for s in pf.tx.values_mut().chain(pf.rx.values_mut()) {
            s.invalidate();
        }
        pf.failed = true;
        pf.up = false;
        let pt = a.port_mut(to)?;
        pt.spare = false;
        pt.up = true;
        st.stop_peers_toward(accel, Some(sw_from), StopReason::PortMigrated);
        if sw_to != sw_from {
            st.stop_peers_toward(accel, Some(sw_to), StopReason::PortMigrated);
        }
        st.faults.push_back(FaultReport::PortMigrated {
            accel: accel.to_kdrv(),
            from: kport(from),
            to: kport(to),
            switch: SwitchId(sw_to.0),
            switch_port: PortId(sp_to.0),
        });
        st.tdi_events.push((accel, TdiEvent::KeysRevoked));
        drop(st);
        self.flush_tdi_events()
    }

    /// Fault knob: `count` transfers under permission `tag` on `target` are in flight and complete
    /// `duration_ns` from now (what `FabricOps::drain` waits for).
    pub fn hold_inflight(
        &self,
        target: AccelId,
        tag: u64,
        count: u32,
        duration_ns: u64,
    ) -> Result<(), SimError> {
        let mut st = self.lock()?;
        let at = st.now_ns.saturating_add(duration_ns);
        for _ in 0..count {
            st.inflight.push(Inflight {
                target,
                tag,
                complete_at_ns: at,
            });
        }
        Ok(())
    }

    /// Takes the next queued fault (oldest first).
    pub fn take_fault(&self) -> Result<Option<FaultReport>, SimError> {
        Ok(self.lock()?.faults.pop_front())
    }
}

impl PodState {
    pub(crate) fn switch_mut(&mut self, s: SwitchIndex) -> Result<&mut Switch, SimError> {
        self.switches
            .get_mut(usize::from(s.0))
            .ok_or(SimError::UnknownSwitch(s))
    }

    pub(crate) fn switch(&self, s: SwitchIndex) -> Result<&Switch, SimError> {
        self.switches
            .get(usize::from(s.0))
            .ok_or(SimError::UnknownSwitch(s))
    }

    fn accel(&self, a: AccelId) -> Result<&Accelerator, SimError> {
        self.accels.get(&a).ok_or(SimError::UnknownAccelerator(a))
    }

    fn accel_mut(&mut self, a: AccelId) -> Result<&mut Accelerator, SimError> {
        self.accels
            .get_mut(&a)
            .ok_or(SimError::UnknownAccelerator(a))
    }

    pub(crate) fn link_of(
        &self,
        a: AccelId,
        p: PortIndex,
    ) -> Result<(SwitchIndex, SwitchPort), SimError> {
        self.accel(a)?
            .port(p)?
            .link
            .ok_or(SimError::LinkDown(PortRef { accel: a, port: p }))
    }

    /// Ports of `a` and `b` that carry traffic on the same switch, one pair per switch.
    fn common_planes(
        &self,
        a: AccelId,
        b: AccelId,
    ) -> Result<Vec<(PortIndex, PortIndex)>, SimError> {
        let aa = self.accel(a)?;
        let bb = self.accel(b)?;
        let mut out = Vec::new();
        for (i, pa) in aa.ports.iter().enumerate() {
            if !pa.carries_traffic() {
                continue;
            }
            let Some((sa, _)) = pa.link else { continue };
            if let Some(j) = bb
                .ports
                .iter()
                .position(|pb| pb.carries_traffic() && pb.link.map(|(s, _)| s) == Some(sa))
            {
                out.push((PortIndex(i as u16), PortIndex(j as u16)));
            }
        }
        Ok(out)
    }

    pub(crate) fn slot_mut(&mut self, s: SlotRef) -> Result<&mut KeySlot, SimError> {
        self.accel(s.peer)?;
        let p = self.accel_mut(s.accel)?.port_mut(s.port)?;
        let m = match s.dir {
            Direction::Tx => &mut p.tx,
            Direction::Rx => &mut p.rx,
        };
        Ok(m.entry(s.peer).or_insert_with(|| KeySlot::new(s.dir)))
    }

    /// Whether any key slot of `accel` is enabled and live.
    pub(crate) fn any_live_slot(&self, accel: AccelId) -> bool {
        self.accels.get(&accel).is_some_and(|a| {
            a.ports
                .iter()
                .any(|p| p.tx.values().chain(p.rx.values()).any(KeySlot::is_live))
        })
    }

    pub(crate) fn port_carries_traffic(&self, p: PortRef) -> bool {
        self.accels
            .get(&p.accel)
            .and_then(|a| a.ports.get(usize::from(p.port.0)))
            .is_some_and(Port::carries_traffic)
    }

    pub(crate) fn slot_info(&self, s: SlotRef) -> Result<crate::ualinksec::SlotInfo, SimError> {
        self.accel(s.peer)?;
        Ok(match self.slot(s)? {
            Some(x) => x.info(),
            None => KeySlot::new(s.dir).info(),
        })
    }

    pub(crate) fn slot(&self, s: SlotRef) -> Result<Option<&KeySlot>, SimError> {
        let p = self.accel(s.accel)?.port(s.port)?;
        Ok(match s.dir {
            Direction::Tx => p.tx.get(&s.peer),
            Direction::Rx => p.rx.get(&s.peer),
        })
    }

    pub(crate) fn program_key(
        &mut self,
        slot: SlotRef,
        role: KeyRole,
        key: MasterKey,
    ) -> Result<(), SimError> {
        self.program_slot(slot, |s| s.program(role, key))
    }

    /// [`Self::program_key`] with a key prepared (streams derived) outside the state lock.
    pub(crate) fn program_prepared(
        &mut self,
        slot: SlotRef,
        key: PreparedKey,
    ) -> Result<(), SimError> {
        self.program_slot(slot, |s| s.program_prepared(key))
    }

    /// Runs `program` on `slot` (never a slot towards its own accelerator).
    fn program_slot(
        &mut self,
        slot: SlotRef,
        program: impl FnOnce(&mut KeySlot) -> Result<(), KeyError>,
    ) -> Result<(), SimError> {
        if slot.peer == slot.accel {
            return Err(SimError::BadTransfer);
        }
        program(self.slot_mut(slot)?).map_err(|reason| slot.key_error(reason))
    }

    /// The peer's port on the same switch as `slot`'s port (the other end of the key pair).
    fn peer_port(&self, slot: SlotRef) -> Result<PortIndex, SimError> {
        let (sw, _) = self.link_of(slot.accel, slot.port)?;
        let peer = self.accel(slot.peer)?;
        peer.ports
            .iter()
            .position(|p| p.carries_traffic() && p.link.map(|(s, _)| s) == Some(sw))
            .map(|j| PortIndex(j as u16))
            .ok_or(SimError::NoRoute {
                src: slot.accel,
                dst: slot.peer,
            })
    }

    pub(crate) fn enable(&mut self, slot: SlotRef) -> Result<(), SimError> {
        let kerr = |reason| SimError::Key {
            port: PortRef {
                accel: slot.accel,
                port: slot.port,
            },
            peer: slot.peer,
            reason,
        };
        if slot.dir == Direction::Tx {
            let pp = self.peer_port(slot)?;
            let peer_rx = SlotRef {
                accel: slot.peer,
                port: pp,
                dir: Direction::Rx,
                peer: slot.accel,
            };
            let mine = self.slot(slot)?.map(|s| s.info());
            let theirs = self.slot(peer_rx)?.map(|s| s.info());
            let ready = match (mine, theirs) {
                (Some(m), Some(t)) => {
                    t.enabled && t.stopped.is_none() && m.active.is_some() && m.active == t.active
                }
                _ => false,
            };
            if !ready {
                return Err(kerr(KeyError::PeerRxNotReady));
            }
        }
        self.slot_mut(slot)?.enable().map_err(kerr)
    }

    /// Stops every slot of other accelerators that pairs with `accel` (TX toward it, RX from it),
    /// on ports cabled to `plane` (all planes if `None`).
    fn stop_peers_toward(
        &mut self,
        accel: AccelId,
        plane: Option<SwitchIndex>,
        reason: StopReason,
    ) {
        for (id, a) in self.accels.iter_mut() {
            if *id == accel {
                continue;
            }
            for p in &mut a.ports {
                if let Some(pl) = plane {
                    if p.link.map(|(s, _)| s) != Some(pl) {
                        continue;
                    }
                }
                if let Some(s) = p.tx.get_mut(&accel) {
                    s.stop(reason);
                }
                if let Some(s) = p.rx.get_mut(&accel) {
                    s.stop(reason);
                }
            }
        }
    }

    fn window_perm_set(
        &mut self,
        target: AccelId,
        tag: u64,
        perm: DevicePerm,
        via_driver: bool,
    ) -> Result<(), SimError> {
        if perm.len == 0 || perm.base.checked_add(perm.len).is_none() {
            return Err(SimError::BadWindow("empty or overflowing range"));
        }
        let a = self.accel_mut(target)?;
        if perm.base.saturating_add(perm.len) > a.memory.size() {
            return Err(SimError::BadWindow("range exceeds device memory"));
        }
        a.perms.insert(tag, perm);
        a.draining.remove(&tag);
        if via_driver {
            self.oracle.ledger.insert((target, tag), perm);
        }
        Ok(())
    }

    pub(crate) fn window_perm_clear(&mut self, target: AccelId, tag: u64) -> Result<(), SimError> {
        let a = self.accel_mut(target)?;
        a.perms.remove(&tag);
        a.draining.remove(&tag);
        self.oracle.ledger.remove(&(target, tag));
        Ok(())
    }

    pub(crate) fn window_perm_set_driver(
        &mut self,
        target: AccelId,
        tag: u64,
        perm: DevicePerm,
    ) -> Result<(), SimError> {
        self.window_perm_set(target, tag, perm, true)
    }

    /// Marks `tag` draining and waits (in fabric time) at most `budget_ns` for its in-flight
    /// transfers. Returns Ok(elapsed) or Err(outstanding).
    pub(crate) fn drain(
        &mut self,
        target: AccelId,
        tag: u64,
        budget_ns: u64,
    ) -> Result<Result<u64, u32>, SimError> {
        let a = self.accel_mut(target)?;
        if a.perms.contains_key(&tag) {
            a.draining.insert(tag);
        }
        let now = self.now_ns;
        let deadline = now.saturating_add(budget_ns);
        let mut last = now;
        let mut outstanding = 0u32;
        for f in self
            .inflight
            .iter()
            .filter(|f| f.target == target && f.tag == tag)
        {
            if f.complete_at_ns <= deadline {
                last = last.max(f.complete_at_ns);
            } else {
                outstanding = outstanding.saturating_add(1);
            }
        }
        let res = if outstanding == 0 {
            self.now_ns = last;
            Ok(last.saturating_sub(now))
        } else {
            self.now_ns = deadline;
            Err(outstanding)
        };
        let t = self.now_ns;
        self.inflight.retain(|f| f.complete_at_ns > t);
        self.deliver_due_rolls();
        self.tick_all();
        Ok(res)
    }

    fn tick_all(&mut self) {
        let now = self.now_ns;
        let sec = self.sec;
        let mut faults = Vec::new();
        let mut keys_lost = Vec::new();
        for (id, a) in self.accels.iter_mut() {
            for (i, p) in a.ports.iter_mut().enumerate() {
                for (dir, m) in [(Direction::Tx, &mut p.tx), (Direction::Rx, &mut p.rx)] {
                    for (peer, s) in m.iter_mut() {
                        if let Some(r) = s.tick(now, &sec) {
                            let slot = kslot(SlotRef {
                                accel: *id,
                                port: PortIndex(i as u16),
                                dir,
                                peer: *peer,
                            });
                            faults.push(match r {
                                StopReason::KeyRollTimeout => FaultReport::KeyRollTimeout { slot },
                                _ => FaultReport::StaleKey { slot },
                            });
                            keys_lost.push(*id);
                        }
                    }
                }
            }
        }
        self.faults.extend(faults);
        for a in keys_lost {
            self.tdi_events.push((a, TdiEvent::KeysRevoked));
        }
    }

    fn deliver_due_rolls(&mut self) {
        let now = self.now_ns;
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed_rolls)
            .into_iter()
            .partition(|d| d.deliver_at_ns <= now);
        self.delayed_rolls = keep;
        for d in due {
            // A late message is still processed; if the sender already timed out its slot is
            // stopped and the acknowledgement is refused.
            let _ = self.finish_roll(d.switch, d.ingress, d.wire, d.tx, d.peer);
        }
    }

    fn next_tag(&mut self) -> u16 {
        let t = self.next_txn_tag;
        self.next_txn_tag = (t + 1) & 0x0fff;
        t
    }

    /// Picks the source port toward `dst`: a live TX slot if any, else the first cabled port.
    fn pick_port(&self, src: AccelId, dst: AccelId) -> Result<PortIndex, SimError> {
        let a = self.accel(src)?;
        let mut fallback = None;
        for (i, p) in a.ports.iter().enumerate() {
            if !p.carries_traffic() {
                continue;
            }
            if p.tx.get(&dst).is_some_and(|s| s.is_live()) {
                return Ok(PortIndex(i as u16));
            }
            if fallback.is_none() {
                fallback = Some(PortIndex(i as u16));
            }
        }
        fallback.ok_or(SimError::NoRoute { src, dst })
    }

    /// Seals and sends one transaction from `from`, returning the receiver port, the verified
    /// header and the decrypted body.
    fn transmit(
        &mut self,
        from: PortRef,
        hdr: &TxnHeader,
        mut body: Vec<u8>,
    ) -> Result<(PortRef, TxnHeader, Vec<u8>), SimError> {
        let port = self.accel(from.accel)?.port(from.port)?;
        if !port.carries_traffic() {
            return Err(SimError::LinkDown(from));
        }
        let (sw, ingress) = port.link.ok_or(SimError::LinkDown(from))?;
        // Ingress Deny check on the clear header before any counter is consumed.
        self.switch(sw)?.forward(ingress, hdr.dst)?;
        let aad = hdr.encode();
        let slot_ref = SlotRef {
            accel: from.accel,
            port: from.port,
            dir: Direction::Tx,
            peer: hdr.dst,
        };
        let threshold = self.sec.roll_threshold;
        let slot = self.slot_mut(slot_ref)?;
        let was_live = slot.is_live();
        let sealed = slot.seal(hdr.cmd.stream(), &aad, &mut body);
        let tag = match sealed {
            Ok(t) => t,
            Err(reason) => {
                // Exhausting a counter stops the slot once; report it like a stale key (the key
                // is past its use limit and traffic with the peer stops).
                if was_live && reason == KeyError::Stopped(StopReason::CounterExhausted) {
                    self.faults.push_back(FaultReport::StaleKey {
                        slot: kslot(slot_ref),
                    });
                }
                return Err(SimError::Key {
                    port: from,
                    peer: hdr.dst,
                    reason,
                });
            }
        };
        let roll_due = slot.roll_due(threshold);
        let wire = WireTxn {
            header: aad,
            ciphertext: body,
            tag,
        };
        let result = self.deliver(sw, ingress, wire);
        if roll_due && hdr.cmd != Cmd::KeyRoll {
            self.auto_roll(slot_ref);
        }
        result
    }

    /// Threshold reached: roll if a fresh alternate exists, else the stale key stops the slot.
    fn auto_roll(&mut self, tx: SlotRef) {
        let fresh = self.slot(tx).ok().flatten().map(|s| s.roll_epoch());
        match fresh {
            Some(Ok(_)) => {
                let _ = self.key_roll(tx);
            }
            Some(Err(_)) => {
                if let Ok(s) = self.slot_mut(tx) {
                    if s.stopped().is_none() {
                        s.stop(StopReason::StaleKey);
                        self.tdi_events.push((tx.accel, TdiEvent::KeysRevoked));
                        self.faults
                            .push_back(FaultReport::StaleKey { slot: kslot(tx) });
                    }
                }
            }
            None => {}
        }
    }

    /// The switch and receiver half: tamper/capture knobs, forwarding, verification.
    fn deliver(
        &mut self,
        sw: SwitchIndex,
        ingress: SwitchPort,
        mut wire: WireTxn,
    ) -> Result<(PortRef, TxnHeader, Vec<u8>), SimError> {
        if let Some(t) = self.tamper.pop_front() {
            let hl = HEADER_LEN;
            let cl = wire.ciphertext.len();
            let b = if t.offset < hl {
                wire.header.get_mut(t.offset)
            } else if t.offset < hl + cl {
                wire.ciphertext.get_mut(t.offset - hl)
            } else {
                wire.tag.get_mut(t.offset - hl - cl)
            };
            if let Some(b) = b {
                *b ^= t.xor;
            }
        }
        if let Some(c) = self.capture.as_mut() {
            c.push(Captured {
                switch: sw,
                ingress,
                bytes: wire.to_bytes(),
            });
        }
        // The switch parses only the clear header.
        let hdr = TxnHeader::decode(&wire.header)?;
        let switch = self.switch(sw)?;
        let egress = switch.forward(ingress, hdr.dst)?;
        let rport = switch
            .attached(egress)
            .ok_or(SimError::Uncabled(sw, egress))?;
        let rp = self.accel(rport.accel)?.port(rport.port)?;
        if !rp.carries_traffic() {
            return Err(SimError::LinkDown(rport));
        }
        // The receiving port accepts only transactions addressed to its own accelerator.
        if hdr.dst != rport.accel {
            return Err(SimError::Misrouted {
                at: rport.accel,
                dst: hdr.dst,
            });
        }
        if hdr.len > self.max_txn {
            return Err(SimError::Malformed("header: len exceeds the link maximum"));
        }
        let stream = hdr.cmd.stream();
        let rx = SlotRef {
            accel: rport.accel,
            port: rport.port,
            dir: Direction::Rx,
            peer: hdr.src,
        };
        // One lookup of the RX slot; the verification scratch is a disjoint field.
        let PodState {
            accels, scratch, ..
        } = self;
        let slot = accels
            .get_mut(&rx.accel)
            .and_then(|a| a.ports.get_mut(usize::from(rx.port.0)))
            .and_then(|p| p.rx.get_mut(&rx.peer));
        // No slot for the claimed source (including IDs not in the pod): an unkeyed link.
        let Some(slot) = slot else {
            return Err(SimError::Key {
                port: rport,
                peer: hdr.src,
                reason: KeyError::NoKey,
            });
        };
        let mut body = wire.ciphertext;
        let r = slot.open(stream, &wire.header, &mut body, &wire.tag, scratch);
        match r {
            Ok(()) => Ok((rport, hdr, body)),
            Err(OpenError::Key(reason)) => Err(SimError::Key {
                port: rport,
                peer: hdr.src,
                reason,
            }),
            Err(OpenError::Integrity) => {
                self.tdi_events
                    .push((rport.accel, TdiEvent::IntegrityFailure));
                self.faults.push_back(FaultReport::IntegrityFailure {
                    at: rport.accel.to_kdrv(),
                    port: kport(rport.port),
                    source: hdr.src.to_kdrv(),
                    stream: kstream(stream),
                });
                Err(SimError::IntegrityFailure {
                    port: rport,
                    source_accel: hdr.src,
                    stream,
                })
            }
        }
    }

    fn owner(&self, a: AccelId) -> Option<TenantId> {
        self.accels.get(&a).and_then(|x| x.owner)
    }

    /// Target side of a verified request: window check, memory access, oracle, response.
    /// Returns the response header to send, its body written into `rb` (none for KeyRoll).
    fn serve_request(
        &mut self,
        at: PortRef,
        hdr: &TxnHeader,
        body: &[u8],
        rb: &mut Vec<u8>,
    ) -> Result<Option<TxnHeader>, SimError> {
        rb.clear();
        let req = header::decode_request(hdr, body)?;
        let len = u64::from(hdr.len);
        match hdr.cmd {
            Cmd::KeyRoll => {
                let epoch = req
                    .data
                    .first_chunk::<4>()
                    .map(|b| u32::from_be_bytes(*b))
                    .ok_or(SimError::Malformed("KeyRollMSG: epoch"))?;
                let now = self.now_ns;
                let rx = SlotRef {
                    accel: at.accel,
                    port: at.port,
                    dir: Direction::Rx,
                    peer: hdr.src,
                };
                self.slot_mut(rx)?
                    .swap(epoch, now)
                    .map_err(|reason| SimError::Key {
                        port: at,
                        peer: hdr.src,
                        reason,
                    })?;
                Ok(None)
            }
            Cmd::Write => {
                let target = self.accel(at.accel)?;
                let status = match target.window_check(hdr.src, req.addr, len, Rights::WRITE) {
                    Ok(_) => {
                        let owners = (self.owner(hdr.src), self.owner(at.accel));
                        self.accel_mut(at.accel)?.memory.write(req.addr, req.data)?;
                        self.oracle.observe(
                            owners,
                            hdr.src,
                            at.accel,
                            at.accel,
                            hdr.src,
                            req.addr,
                            len,
                            LeakKind::MemoryWrite,
                        );
                        RspStatus::Ok
                    }
                    Err(_) => RspStatus::Denied,
                };
                let rh = TxnHeader {
                    cmd: Cmd::WriteResponse,
                    src: at.accel,
                    dst: hdr.src,
                    len: 0,
                    addr_hi: 0,
                };
                rb.extend_from_slice(&header::encode_response_prefix(req.txn_tag, status));
                Ok(Some(rh))
            }
            Cmd::Read => {
                let target = self.accel(at.accel)?;
                let mut rlen = 0;
                if target
                    .window_check(hdr.src, req.addr, len, Rights::READ)
                    .is_ok()
                {
                    rb.extend_from_slice(&header::encode_response_prefix(
                        req.txn_tag,
                        RspStatus::Ok,
                    ));
                    let start = rb.len();
                    rb.resize(start + usize::from(hdr.len), 0);
                    target
                        .memory
                        .read(req.addr, rb.get_mut(start..).ok_or(SimError::BadTransfer)?)?;
                    rlen = hdr.len;
                } else {
                    rb.extend_from_slice(&header::encode_response_prefix(
                        req.txn_tag,
                        RspStatus::Denied,
                    ));
                }
                let rh = TxnHeader {
                    cmd: Cmd::ReadResponse,
                    src: at.accel,
                    dst: hdr.src,
                    len: rlen,
                    addr_hi: 0,
                };
                Ok(Some(rh))
            }
            Cmd::ReadResponse | Cmd::WriteResponse => {
                Err(SimError::Malformed("request: response command"))
            }
        }
    }

    fn transfer(
        &mut self,
        src: AccelId,
        dst: AccelId,
        addr: u64,
        op: Op<'_>,
    ) -> Result<Vec<u8>, SimError> {
        if src == dst {
            return Err(SimError::BadTransfer);
        }
        let total = match op {
            Op::Read(n) => n,
            Op::Write(d) => u64::try_from(d.len()).map_err(|_| SimError::BadTransfer)?,
        };
        let end = addr.checked_add(total).ok_or(SimError::BadTransfer)?;
        if total == 0 || end > self.accel(dst)?.memory.size() {
            return Err(SimError::BadTransfer);
        }
        let mut out = Vec::new();
        if let Op::Read(n) = op {
            out.reserve(usize::try_from(n).map_err(|_| SimError::BadTransfer)?);
        }
        let max = u64::from(self.max_txn);
        let mut done = 0u64;
        while done < total {
            let a = addr + done;
            let to_boundary = (1u64 << LOW_ADDR_BITS) - (a & !ADDR_HI_MASK);
            let n = (total - done).min(max).min(to_boundary);
            let n16 = u16::try_from(n).map_err(|_| SimError::BadTransfer)?;
            let data = match op {
                Op::Write(d) => {
                    let s = usize::try_from(done).map_err(|_| SimError::BadTransfer)?;
                    let e = usize::try_from(done + n).map_err(|_| SimError::BadTransfer)?;
                    Some(d.get(s..e).ok_or(SimError::BadTransfer)?)
                }
                Op::Read(_) => None,
            };
            self.one_transaction(src, dst, a, n16, data, &mut out)?;
            done += n;
        }
        Ok(out)
    }

    fn one_transaction(
        &mut self,
        src: AccelId,
        dst: AccelId,
        addr: u64,
        len: u16,
        data: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Result<(), SimError> {
        let port = self.pick_port(src, dst)?;
        let from = PortRef { accel: src, port };
        let cmd = if data.is_some() {
            Cmd::Write
        } else {
            Cmd::Read
        };
        let hdr = TxnHeader {
            cmd,
            src,
            dst,
            len,
            addr_hi: addr & ADDR_HI_MASK,
        };
        let tag = self.next_tag();
        let prefix = header::encode_request_prefix(addr, len, tag)?;
        let mut body = std::mem::take(&mut self.req_buf);
        body.clear();
        body.extend_from_slice(&prefix);
        if let Some(d) = data {
            body.extend_from_slice(d);
        }
        let (rport, rhdr, rbody) = self.transmit(from, &hdr, body)?;
        let mut resp_body = std::mem::take(&mut self.rsp_buf);
        let served = self.serve_request(rport, &rhdr, &rbody, &mut resp_body);
        self.req_buf = rbody;
        let Some(resp_hdr) = served? else {
            return Err(SimError::Malformed("request produced no response"));
        };
        // The response travels back from the port the request arrived on.
        let (back_at, bh, bb) = self.transmit(rport, &resp_hdr, resp_body)?;
        let r = self.finish_transaction(src, dst, addr, len, cmd, tag, back_at, &bh, &bb, out);
        self.rsp_buf = bb;
        r
    }

    /// Requester side of a transaction's verified response: matching tag, status, read data
    /// (and the oracle's view of it).
    #[allow(clippy::too_many_arguments)]
    fn finish_transaction(
        &mut self,
        src: AccelId,
        dst: AccelId,
        addr: u64,
        len: u16,
        cmd: Cmd,
        tag: u16,
        back_at: PortRef,
        bh: &TxnHeader,
        bb: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SimError> {
        if back_at.accel != src {
            return Err(SimError::Misrouted {
                at: back_at.accel,
                dst: src,
            });
        }
        let rsp = header::decode_response(bh, bb)?;
        if rsp.txn_tag != tag {
            return Err(SimError::Malformed(
                "response: tag does not match the request",
            ));
        }
        match rsp.status {
            RspStatus::Ok => {}
            RspStatus::Denied => {
                return Err(SimError::WindowDenied {
                    target: dst,
                    source_accel: src,
                    addr,
                    len: u64::from(len),
                    reason: "target window table refused the access",
                })
            }
        }
        if cmd == Cmd::Read {
            if rsp.data.len() != usize::from(len) {
                return Err(SimError::Malformed("response: short read"));
            }
            let owners = (self.owner(dst), self.owner(src));
            out.extend_from_slice(rsp.data);
            self.oracle.observe(
                owners,
                dst,
                src,
                dst,
                src,
                addr,
                u64::from(len),
                LeakKind::ReadReturn,
            );
        }
        Ok(())
    }

    pub(crate) fn key_roll(&mut self, tx: SlotRef) -> Result<(), SimError> {
        if tx.dir != Direction::Tx {
            return Err(SimError::Key {
                port: PortRef {
                    accel: tx.accel,
                    port: tx.port,
                },
                peer: tx.peer,
                reason: KeyError::TxNotEnabled,
            });
        }
        let kerr = |reason| SimError::Key {
            port: PortRef {
                accel: tx.accel,
                port: tx.port,
            },
            peer: tx.peer,
            reason,
        };
        let epoch = self
            .slot(tx)?
            .ok_or(kerr(KeyError::NoKey))?
            .roll_epoch()
            .map_err(kerr)?;
        let from = PortRef {
            accel: tx.accel,
            port: tx.port,
        };
        let (sw, ingress) = self.link_of(tx.accel, tx.port)?;
        self.switch(sw)?.forward(ingress, tx.peer)?;
        let hdr = TxnHeader {
            cmd: Cmd::KeyRoll,
            src: tx.accel,
            dst: tx.peer,
            len: 4,
            addr_hi: 0,
        };
        let t = self.next_tag();
        let mut body = header::encode_request_prefix(0, 4, t)?.to_vec();
        body.extend_from_slice(&epoch.to_be_bytes());
        let aad = hdr.encode();
        let now = self.now_ns;
        let slot = self.slot_mut(tx)?;
        let tag = slot
            .seal(StreamId::Requests, &aad, &mut body)
            .map_err(kerr)?;
        slot.mark_roll_sent(epoch, now);
        let wire = WireTxn {
            header: aad,
            ciphertext: body,
            tag,
        };
        match self.keyroll_faults.pop_front() {
            Some(KeyRollFault::Drop) => Ok(()),
            Some(KeyRollFault::Delay(d)) => {
                self.delayed_rolls.push(DelayedRoll {
                    deliver_at_ns: now.saturating_add(d),
                    switch: sw,
                    ingress,
                    wire,
                    tx: from,
                    peer: tx.peer,
                });
                Ok(())
            }
            None => self.finish_roll(sw, ingress, wire, from, tx.peer),
        }
    }

    /// Delivers a KeyRollMSG; on success the receiver has swapped and the sender swaps on the
    /// acknowledgement (modelled as completing in the same step).
    fn finish_roll(
        &mut self,
        sw: SwitchIndex,
        ingress: SwitchPort,
        wire: WireTxn,
        tx: PortRef,
        peer: AccelId,
    ) -> Result<(), SimError> {
        let (rport, hdr, body) = self.deliver(sw, ingress, wire)?;
        let req = header::decode_request(&hdr, &body)?;
        let epoch = req
            .data
            .first_chunk::<4>()
            .map(|b| u32::from_be_bytes(*b))
            .ok_or(SimError::Malformed("KeyRollMSG: epoch"))?;
        self.serve_request(rport, &hdr, &body, &mut Vec::new())?;
        let now = self.now_ns;
        let s = SlotRef {
            accel: tx.accel,
            port: tx.port,
            dir: Direction::Tx,
            peer,
        };
        self.slot_mut(s)?
            .swap(epoch, now)
            .map_err(|reason| SimError::Key {
                port: tx,
                peer,
                reason,
            })
    }
}
