//! Errors of the simulated pod, classed by who is at fault.

use crate::ids::{AccelId, PortRef, SwitchIndex, SwitchPort};
use crate::ualinksec::{StopReason, StreamId};

/// Every rejection the simulator can produce. Each variant names its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    // ---- Malformed input (pod descriptions, wire bytes) ----
    /// A 10-bit accelerator ID was out of range.
    #[error("accelerator ID {0:#x} does not fit in 10 bits")]
    AccelIdOutOfRange(u16),
    /// The pod description is inconsistent (duplicate IDs, dangling links, zero sizes, ...).
    #[error("invalid pod description: {0}")]
    PodConfig(String),
    /// Wire bytes did not decode (header or payload codec).
    #[error("malformed {0}")]
    Malformed(&'static str),

    // ---- API misuse by the caller (driver or test) ----
    /// The accelerator is not part of this pod.
    #[error("unknown accelerator {0}")]
    UnknownAccelerator(AccelId),
    /// The port does not exist on that accelerator.
    #[error("unknown port {0:?}")]
    UnknownPort(PortRef),
    /// The switch does not exist.
    #[error("unknown switch {0:?}")]
    UnknownSwitch(SwitchIndex),
    /// The switch has no such port.
    #[error("unknown port {1:?} on switch {0:?}")]
    UnknownSwitchPort(SwitchIndex, SwitchPort),
    /// A transfer had zero length, or its length or address range overflowed.
    #[error("invalid transfer length or address range")]
    BadTransfer,
    /// A memory window or permission referred to an invalid range.
    #[error("invalid memory window: {0}")]
    BadWindow(&'static str),
    /// Generating the device PKI failed.
    #[error("device PKI generation failed: {0}")]
    Pki(String),

    /// The simulator's state lock was poisoned by a panic in another thread.
    #[error("simulator state poisoned")]
    Poisoned,
    /// The system random generator failed.
    #[error("random generator failed")]
    Rng,

    // ---- Fabric state refused the operation ----
    /// A transaction reached a port whose accelerator is not the header's destination (a
    /// misdirecting routing entry); the port dropped it unopened.
    #[error("{at} dropped a transaction addressed to {dst}")]
    Misrouted {
        /// The accelerator that received it.
        at: AccelId,
        /// The destination named in the header.
        dst: AccelId,
    },
    /// No switch connects a live port of the source with a live port of the destination.
    #[error("no route from {src} to {dst}")]
    NoRoute {
        /// Source accelerator.
        src: AccelId,
        /// Destination accelerator.
        dst: AccelId,
    },
    /// The switch's routing table denies the destination on the ingress port.
    #[error("switch {switch:?} port {ingress:?} denies destination {dst}")]
    RoutingDenied {
        /// Switch that dropped the transaction.
        switch: SwitchIndex,
        /// Ingress port the transaction arrived on.
        ingress: SwitchPort,
        /// Destination accelerator ID in the header.
        dst: AccelId,
    },
    /// The switch's egress port for the destination has no accelerator cabled to it.
    #[error("switch {0:?} port {1:?} is not cabled")]
    Uncabled(SwitchIndex, SwitchPort),
    /// The link on this port is down (flap, reset, migration).
    #[error("link on {0:?} is down")]
    LinkDown(PortRef),
    /// Key-slot state refused the operation (no key, TX before RX, stopped stream, ...).
    #[error("key state on {port:?} for peer {peer}: {reason}")]
    Key {
        /// Port holding the slot.
        port: PortRef,
        /// The peer (destination for TX slots, source for RX slots).
        peer: AccelId,
        /// Why.
        reason: KeyError,
    },
    /// The target's window table does not allow this access.
    #[error("window check at {target} refused {source_accel} at {addr:#x}+{len}: {reason}")]
    WindowDenied {
        /// Target accelerator.
        target: AccelId,
        /// Requesting accelerator.
        source_accel: AccelId,
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// Why.
        reason: &'static str,
    },

    /// A firmware update was attempted while the accelerator's TDI was CONFIG_LOCKED or RUN;
    /// the device reports NO_UPDATE_AFTER_LOCK, so it refused the update and moved the TDI to
    /// ERROR.
    #[error("{accel} refused a firmware update while its TDI is locked (TDI now in ERROR)")]
    FirmwareUpdateAfterLock {
        /// The accelerator.
        accel: AccelId,
    },

    // ---- The peer or the wire misbehaved ----
    /// Tag verification failed: the transaction was dropped and every stream from the source stopped.
    #[error("integrity failure on {port:?} from {source_accel} ({stream:?})")]
    IntegrityFailure {
        /// Receiving port.
        port: PortRef,
        /// Source accelerator named in the header.
        source_accel: AccelId,
        /// Stream the transaction arrived on.
        stream: StreamId,
    },
}

/// Why a key slot refused an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No active master key is programmed.
    #[error("no key programmed")]
    NoKey,
    /// RX is not enabled on this slot.
    #[error("RX not enabled")]
    RxNotEnabled,
    /// TX enable was requested before the peer's RX slot was enabled with the same key epoch.
    #[error("peer RX not ready (TX must follow RX)")]
    PeerRxNotReady,
    /// TX is not enabled on this slot.
    #[error("TX not enabled")]
    TxNotEnabled,
    /// The slot has stopped; it must be re-keyed.
    #[error("stopped: {0}")]
    Stopped(StopReason),
    /// A KeyRollMSG is outstanding; new transactions wait for it.
    #[error("key roll pending")]
    RollPending,
    /// A key roll needs a fresh alternate key and there is none.
    #[error("no fresh alternate key")]
    NoFreshAlternate,
    /// A KeyRollMSG named an epoch that does not match the alternate key.
    #[error("key roll epoch mismatch")]
    RollEpochMismatch,
    /// A key was programmed with an epoch that does not advance.
    #[error("key epoch does not advance")]
    EpochNotAdvancing,
}
