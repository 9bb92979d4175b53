//! `FabricOps`: the hardware boundary.
//!
//! Everything the driver knows about, or does to, the hardware goes through this trait: a real backend
//! (switch and accelerator registers, the device security engine's mailbox) and `ualink-sim` implement
//! it, the way the kernel's `cxl_test` mock ops run the real CXL core on a fake topology.
//!
//! # Contract for implementers
//! - All methods take `&self`: the driver may call them from several contexts, so implementations use
//!   interior mutability (a spinlock or mutex around their tables).
//! - No method may block without bound. [`FabricOps::drain`] is the only method that may wait, and it
//!   waits at most the budget it is given. Methods used on the map path ([`FabricOps::route_set`],
//!   [`FabricOps::window_perm_set`]) must be register writes, not round trips.
//! - Identifiers passed in were obtained from [`FabricOps::enumerate`]; an unknown one is
//!   [`OpsError::NoDevice`], never a panic.
//! - Key bytes never cross this trait. Link keys travel inside SPDM secured sessions (opaque to the
//!   driver, relayed by [`FabricOps::spdm_send`] / [`FabricOps::spdm_receive`]); key-slot commands
//!   return metadata only (state, epoch, fingerprint).
//! - After reset every routing entry is Deny (UALink_200 §10.7) and no window permission exists.

use crate::errno::Errno;
use crate::ids::{AcceleratorId, FabricTime, PortId, Rights, SwitchId};

/// An error reported by the hardware backend. Mapped to an errno by `From<OpsError> for Errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpsError {
    /// The accelerator, switch or port does not exist or is gone (`ENXIO`).
    NoDevice,
    /// The link is down (`ENOLINK`).
    LinkDown,
    /// The device is busy; retry later (`EBUSY`).
    Busy,
    /// Nothing to read yet (mailbox empty) (`EAGAIN`).
    WouldBlock,
    /// The device did not answer within its bound (`ETIMEDOUT`).
    Timeout,
    /// The request was malformed for this device (`EINVAL`).
    Invalid,
    /// A buffer was too small for the response (`E2BIG`).
    TooBig,
    /// A table in the hardware is full (`ENOSPC`).
    NoSpace,
    /// The operation is not supported by this backend (`EOPNOTSUPP`).
    Unsupported,
    /// The driver ran out of memory while consuming backend output (`ENOMEM`).
    NoMemory,
    /// Any other hardware failure (`EIO`).
    Io,
}

impl From<OpsError> for Errno {
    fn from(e: OpsError) -> Errno {
        match e {
            OpsError::NoDevice => Errno::ENXIO,
            OpsError::LinkDown => Errno::ENOLINK,
            OpsError::Busy => Errno::EBUSY,
            OpsError::WouldBlock => Errno::EAGAIN,
            OpsError::Timeout => Errno::ETIMEDOUT,
            OpsError::Invalid => Errno::EINVAL,
            OpsError::TooBig => Errno::E2BIG,
            OpsError::NoSpace => Errno::ENOSPC,
            OpsError::Unsupported => Errno::EOPNOTSUPP,
            OpsError::NoMemory => Errno::ENOMEM,
            OpsError::Io => Errno::EIO,
        }
    }
}

/// One accelerator as the hardware reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceleratorInfo {
    /// Its 10-bit accelerator ID (assigned by the untrusted Pod Controller; the driver checks uniqueness).
    pub id: AcceleratorId,
    /// Number of UALink ports (four per station).
    pub ports: u16,
    /// Bytes of fabric-addressable memory.
    pub mem_bytes: u64,
    /// PCI-style vendor ID of the accelerator (informational; identity comes from SPDM).
    pub vendor_id: u16,
    /// Vendor's device/model ID (informational).
    pub device_id: u16,
}

/// One switch as the hardware reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchInfo {
    /// Its identifier.
    pub id: SwitchId,
    /// Number of ports.
    pub ports: u16,
}

/// A link between an accelerator port and a switch port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// The accelerator end.
    pub accel: AcceleratorId,
    /// The accelerator's port.
    pub accel_port: PortId,
    /// The switch end.
    pub switch: SwitchId,
    /// The switch's port.
    pub switch_port: PortId,
    /// Whether the link is currently trained and up.
    pub up: bool,
}

/// An item reported by [`FabricOps::enumerate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discovered {
    /// An accelerator.
    Accelerator(AcceleratorInfo),
    /// A switch.
    Switch(SwitchInfo),
    /// A link between an accelerator port and a switch port.
    Link(LinkInfo),
}

/// A switch routing-table entry: traffic entering `switch` on `ingress` for accelerator `dest` leaves on
/// `egress`. An absent entry is Deny (the reset state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteEntry {
    /// The switch holding the entry.
    pub switch: SwitchId,
    /// The ingress port the entry applies to (the per-port Deny bit of UALink_200 §10.7).
    pub ingress: PortId,
    /// Destination accelerator ID (the routing key).
    pub dest: AcceleratorId,
    /// Egress port toward `dest`.
    pub egress: PortId,
}

/// A driver-chosen tag naming one target-side window permission, so it can be drained and cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermTag(pub u64);

/// A target-side window permission: `initiator` may access `[base, base + len)` of `target`'s memory
/// with `rights`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowPerm {
    /// The accelerator whose memory is accessed.
    pub target: AcceleratorId,
    /// The accelerator allowed to access it.
    pub initiator: AcceleratorId,
    /// First byte (device-physical address on `target`).
    pub base: u64,
    /// Length in bytes (non-zero; `base + len` does not overflow — the driver checks).
    pub len: u64,
    /// Allowed operations.
    pub rights: Rights,
    /// The tag naming this permission.
    pub tag: PermTag,
}

/// Result of [`FabricOps::drain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every in-flight transfer under the tag completed; no new one was admitted.
    Drained {
        /// Time the drain took on the fabric clock.
        elapsed_ns: u64,
    },
    /// The budget ran out with transfers still outstanding (the driver zaps anyway; they will fault).
    TimedOut {
        /// Transfers still in flight when the budget ran out.
        outstanding: u32,
    },
}

/// Direction of a key slot on a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Transmit: keyed per destination accelerator.
    Tx,
    /// Receive: keyed per source accelerator.
    Rx,
}

/// Names one key slot pair (active + alternate): on `accel`'s `port`, direction `dir`, for `peer`
/// (the destination for TX, the source for RX). A's TX key for B equals B's RX key for A (§9.5.9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeySlotRef {
    /// The accelerator holding the slot.
    pub accel: AcceleratorId,
    /// Its port.
    pub port: PortId,
    /// TX or RX.
    pub dir: Direction,
    /// The peer accelerator.
    pub peer: AcceleratorId,
}

/// A UALinkSec stream (UALink_200 §9.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamId {
    /// Requests.
    Request,
    /// Read responses.
    ReadResponse,
    /// Write responses.
    WriteResponse,
}

/// State of one key slot (metadata only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// No key.
    Empty,
    /// A key is programmed but not yet in use.
    Programmed,
    /// The key is in use (per-stream keys derived, direction enabled).
    Live,
    /// The key is past its rotation threshold or a KeyRollMSG timed out: traffic with the peer stops.
    Stale,
}

/// A key fingerprint: SHA-384 over a domain label and the key, computed by the device's security
/// engine. It identifies a key without revealing it; the driver never sees key bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyFingerprint(pub [u8; 48]);

impl core::fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("fp:")?;
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..")
    }
}

/// Metadata of one key slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotMeta {
    /// Its state.
    pub state: SlotState,
    /// The key epoch (the `epoch` in the KMAC256 context {epoch, StreamID}).
    pub epoch: u32,
    /// Fingerprint of the key, if one is programmed.
    pub fingerprint: Option<KeyFingerprint>,
}

impl SlotMeta {
    /// An empty slot.
    pub const EMPTY: SlotMeta = SlotMeta {
        state: SlotState::Empty,
        epoch: 0,
        fingerprint: None,
    };
}

/// Metadata of a key-slot pair, as returned by [`FabricOps::key_slot`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeySlotStatus {
    /// The active slot (in use for traffic).
    pub active: SlotMeta,
    /// The alternate slot (next key, swapped in by KeyRollMSG).
    pub alternate: SlotMeta,
    /// Whether the direction is enabled (RX accepting / TX sending).
    pub enabled: bool,
}

/// A key-slot command relayed to the device's security engine. None carries key bytes: programming
/// keys happens inside an SPDM secured session through the mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySlotCommand {
    /// Read the slot pair's metadata.
    Query,
    /// Enable the direction (RX before TX, UALink_200 §9.5.10).
    Go,
    /// Disable the direction: traffic with the peer on this port stops.
    Stop,
    /// Swap alternate into active (send KeyRollMSG for TX).
    Roll,
    /// Zeroize both slots and disable the direction.
    Invalidate,
}

/// A fault reported by the hardware (over a path software cannot forge, UALink_200 §9.5.13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultReport {
    /// A transaction from `source` failed its integrity check at `at`'s `port`. The hardware dropped it
    /// and stopped all streams from `source` on that port.
    IntegrityFailure {
        /// The receiving accelerator.
        at: AcceleratorId,
        /// The receiving port.
        port: PortId,
        /// The claimed source accelerator.
        source: AcceleratorId,
        /// The stream it arrived on.
        stream: StreamId,
    },
    /// A key slot went stale (alternate key not refreshed in time): traffic with the peer stopped.
    StaleKey {
        /// The slot.
        slot: KeySlotRef,
    },
    /// A KeyRollMSG was not acknowledged in time: traffic with the peer stopped.
    KeyRollTimeout {
        /// The TX slot that sent it.
        slot: KeySlotRef,
    },
    /// A link went down.
    LinkDown {
        /// The accelerator end.
        accel: AcceleratorId,
        /// Its port.
        port: PortId,
    },
    /// A link came back up (its keys must be re-checked before traffic resumes).
    LinkUp {
        /// The accelerator end.
        accel: AcceleratorId,
        /// Its port.
        port: PortId,
    },
    /// An accelerator's link moved from a failed port to a spare.
    PortMigrated {
        /// The accelerator.
        accel: AcceleratorId,
        /// The failed port.
        from: PortId,
        /// The spare port now carrying the link.
        to: PortId,
        /// The switch at the other end of the new link.
        switch: SwitchId,
        /// The switch port at the other end of the new link.
        switch_port: PortId,
    },
    /// An accelerator was reset: its TDIs, keys and window permissions are gone.
    DeviceReset {
        /// The accelerator.
        accel: AcceleratorId,
    },
}

/// The hardware boundary. See the module documentation for the implementer's contract.
pub trait FabricOps {
    /// Reports every accelerator, switch and link to `visit`, accelerators first, then switches, then
    /// links. Stops and returns the visitor's error if it fails (e.g. [`OpsError::NoMemory`]).
    fn enumerate(
        &self,
        visit: &mut dyn FnMut(Discovered) -> Result<(), OpsError>,
    ) -> Result<(), OpsError>;

    /// The fabric clock (monotonic nanoseconds, shared by the TSM that signs grants).
    fn now(&self) -> FabricTime;

    /// Sends one SPDM message (transport-framed bytes) to `accel`'s security engine mailbox.
    fn spdm_send(&self, accel: AcceleratorId, msg: &[u8]) -> Result<(), OpsError>;

    /// Receives the next SPDM message from `accel`'s mailbox into `buf`; returns its length.
    /// [`OpsError::WouldBlock`] if none is ready, [`OpsError::TooBig`] if `buf` is too small.
    fn spdm_receive(&self, accel: AcceleratorId, buf: &mut [u8]) -> Result<usize, OpsError>;

    /// Writes a routing-table entry (Allow toward `entry.egress`).
    fn route_set(&self, entry: &RouteEntry) -> Result<(), OpsError>;

    /// Clears the entry for (`switch`, `ingress`, `dest`) back to Deny. Clearing an absent entry is Ok.
    fn route_clear(
        &self,
        switch: SwitchId,
        ingress: PortId,
        dest: AcceleratorId,
    ) -> Result<(), OpsError>;

    /// Reads back the egress port for (`switch`, `ingress`, `dest`); `None` is Deny. The driver compares
    /// this with its shadow table to detect entries written behind its back.
    fn route_get(
        &self,
        switch: SwitchId,
        ingress: PortId,
        dest: AcceleratorId,
    ) -> Result<Option<PortId>, OpsError>;

    /// Installs a target-side window permission. A second permission with the same tag on the same
    /// target replaces the first.
    fn window_perm_set(&self, perm: &WindowPerm) -> Result<(), OpsError>;

    /// Removes the permission `tag` on `target` (the zap). Later accesses under it fault. Removing an
    /// absent tag is Ok.
    fn window_perm_clear(&self, target: AcceleratorId, tag: PermTag) -> Result<(), OpsError>;

    /// Stops admitting new transfers under `tag` on `target`, then waits at most `budget_ns` (fabric
    /// clock) for in-flight ones to complete.
    fn drain(
        &self,
        target: AcceleratorId,
        tag: PermTag,
        budget_ns: u64,
    ) -> Result<DrainOutcome, OpsError>;

    /// Relays a key-slot command to the device; returns the slot pair's metadata after the command.
    fn key_slot(&self, slot: KeySlotRef, cmd: KeySlotCommand) -> Result<KeySlotStatus, OpsError>;

    /// Stops all streams from `source` arriving at `at`'s `port` (RX side), and all streams from
    /// `at`'s `port` toward `source` (TX side).
    fn stop_streams(
        &self,
        at: AcceleratorId,
        port: PortId,
        source: AcceleratorId,
    ) -> Result<(), OpsError>;

    /// Takes the next pending fault report, oldest first; `None` when the queue is empty.
    fn next_fault(&self) -> Option<FaultReport>;
}
