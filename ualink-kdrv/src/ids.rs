//! Identifiers of fabric and driver objects.
//!
//! Hardware identifiers ([`AcceleratorId`], [`SwitchId`], [`PortId`]) come from the untrusted Pod
//! Controller through [`crate::ops::FabricOps`]; they are range-checked on construction and the driver
//! re-checks uniqueness at enumeration (UALink_200 §9.4). Driver object identifiers are allocated by the
//! driver and never reused within one driver instance.

use core::fmt;

use crate::errno::Errno;

/// A UALink accelerator ID: 10 bits (0..=1023), the switch routing key (UALink_200 §9.4, §10.7).
///
/// # Invariants
/// The value is `<= AcceleratorId::MAX`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AcceleratorId(u16);

impl AcceleratorId {
    /// Largest valid accelerator ID (10 bits).
    pub const MAX: u16 = 0x3ff;

    /// Validates a raw ID.
    ///
    /// Return: `EINVAL` if `raw` does not fit in 10 bits.
    pub const fn new(raw: u16) -> Result<Self, Errno> {
        if raw > Self::MAX {
            Err(Errno::EINVAL)
        } else {
            Ok(AcceleratorId(raw))
        }
    }

    /// Validates a raw ID taken from a 32-bit UAPI field.
    ///
    /// Return: `EINVAL` if `raw` does not fit in 10 bits.
    pub fn from_u32(raw: u32) -> Result<Self, Errno> {
        let v = u16::try_from(raw).map_err(|_| Errno::EINVAL)?;
        Self::new(v)
    }

    /// The 10-bit value.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for AcceleratorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "acc{}", self.0)
    }
}

/// A switch in the pod, as numbered by [`crate::ops::FabricOps::enumerate`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SwitchId(pub u16);

/// A port index on one device (an accelerator or a switch). Ports are grouped four to a station.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PortId(pub u16);

impl PortId {
    /// Ports per station (UALink: a station is four lanes/ports sharing a PHY).
    pub const PER_STATION: u16 = 4;

    /// The station this port belongs to.
    pub const fn station(self) -> u16 {
        self.0 / Self::PER_STATION
    }
}

/// A point on the fabric clock, in nanoseconds since the pod's epoch ([`crate::ops::FabricOps::now`]).
/// Grant not-before and expiry are expressed on this clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct FabricTime(pub u64);

impl FabricTime {
    /// `self + ns`, saturating at `u64::MAX` (the clock never wraps within a pod's life).
    pub const fn saturating_add_ns(self, ns: u64) -> FabricTime {
        FabricTime(self.0.saturating_add(ns))
    }

    /// Nanoseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub const fn saturating_since(self, earlier: FabricTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

macro_rules! id_newtype {
    ($(#[$m:meta])* $name:ident($t:ty)) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
        pub struct $name(pub $t);
    };
}

id_newtype!(
    /// A tenant. Assigned by the trusted side (TSM) and bound to each open file at open time.
    TenantId(u32)
);
id_newtype!(
    /// An OS instance (a host OS or one guest OS). Every open file is bound to exactly one.
    OsInstanceId(u32)
);
id_newtype!(
    /// A virtual pod: a set of whole accelerators belonging to one tenant (UALink_200 §8.4).
    VpodId(u32)
);
id_newtype!(
    /// A memory window: one tenant's region of one accelerator's memory.
    WindowId(u32)
);
id_newtype!(
    /// A dynamic dma_buf attachment (one importer of one buffer).
    AttachmentId(u64)
);
id_newtype!(
    /// One mapping of an attachment (an open route plus a target-side window permission).
    MappingId(u64)
);

/// The opaque 128-bit handle of an exported buffer (as amdgpu's UALink export does it).
///
/// Handles are unguessable: derived from a driver secret and a counter through the crypto backend's
/// digest, so one tenant cannot name another's buffer by guessing. The same export returns the same
/// handle.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BufferHandle(pub [u8; 16]);

impl fmt::Debug for BufferHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buf:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A grant identifier chosen by the TSM (16 bytes), unique per grant.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantId(pub [u8; 16]);

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("grant:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Access rights on a memory window or grant: read, write, atomic (bit set; unknown bits refused).
///
/// # Invariants
/// Only bits in [`Rights::ALL`] are set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    /// No access.
    pub const NONE: Rights = Rights(0);
    /// Loads.
    pub const READ: Rights = Rights(1);
    /// Stores.
    pub const WRITE: Rights = Rights(2);
    /// Atomics (read-modify-write at the target).
    pub const ATOMIC: Rights = Rights(4);
    /// Every defined right.
    pub const ALL: Rights = Rights(7);

    /// Validates raw bits.
    ///
    /// Return: `EINVAL` if an undefined bit is set.
    pub fn from_bits(bits: u32) -> Result<Rights, Errno> {
        if bits & !u32::from(Self::ALL.0) != 0 {
            return Err(Errno::EINVAL);
        }
        u8::try_from(bits).map(Rights).map_err(|_| Errno::EINVAL)
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// True if every right in `other` is also in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union of two right sets.
    pub const fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    /// True if no right is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = if self.contains(Rights::READ) {
            "r"
        } else {
            "-"
        };
        let w = if self.contains(Rights::WRITE) {
            "w"
        } else {
            "-"
        };
        let a = if self.contains(Rights::ATOMIC) {
            "a"
        } else {
            "-"
        };
        write!(f, "{r}{w}{a}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerator_id_is_ten_bits() {
        assert_eq!(AcceleratorId::new(0).map(AcceleratorId::get), Ok(0));
        assert_eq!(AcceleratorId::new(1023).map(AcceleratorId::get), Ok(1023));
        assert_eq!(AcceleratorId::new(1024), Err(Errno::EINVAL));
        assert_eq!(AcceleratorId::from_u32(0x1_0000), Err(Errno::EINVAL));
        assert_eq!(AcceleratorId::from_u32(5).map(AcceleratorId::get), Ok(5));
    }

    #[test]
    fn rights_refuse_unknown_bits() {
        assert_eq!(Rights::from_bits(7), Ok(Rights::ALL));
        assert_eq!(Rights::from_bits(8), Err(Errno::EINVAL));
        assert_eq!(Rights::from_bits(0x100), Err(Errno::EINVAL));
        assert!(Rights::ALL.contains(Rights::WRITE));
        assert!(!Rights::READ.contains(Rights::WRITE));
    }

    #[test]
    fn port_station() {
        assert_eq!(PortId(0).station(), 0);
        assert_eq!(PortId(3).station(), 0);
        assert_eq!(PortId(4).station(), 1);
    }
}
