//! Identifiers used across the simulated pod.
//!
//! Accelerator IDs are the UALink 10-bit IDs (UALink_200 §9.4). They are assigned by the untrusted
//! Pod Controller; the simulator only guarantees that an [`AccelId`] value is in range, the pod
//! builder checks uniqueness.

use core::fmt;

use ualink_kdrv::AcceleratorId;

use crate::error::SimError;

/// A 10-bit UALink accelerator ID (0..=1023). Construction checks the range. It wraps the
/// driver's [`AcceleratorId`] so that conversions at the `FabricOps` boundary are infallible.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct AccelId(AcceleratorId);

impl AccelId {
    /// Largest valid accelerator ID (10 bits).
    pub const MAX: u16 = AcceleratorId::MAX;

    /// Builds an ID, refusing values that do not fit in 10 bits.
    pub fn new(raw: u16) -> Result<Self, SimError> {
        AcceleratorId::new(raw)
            .map(Self)
            .map_err(|_| SimError::AccelIdOutOfRange(raw))
    }

    /// The raw 10-bit value.
    pub fn get(self) -> u16 {
        self.0.get()
    }

    /// The driver's view of this ID.
    pub fn to_kdrv(self) -> AcceleratorId {
        self.0
    }

    /// From the driver's (already range-checked) ID.
    pub fn from_kdrv(id: AcceleratorId) -> Self {
        Self(id)
    }
}

impl fmt::Display for AccelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "accel#{}", self.get())
    }
}

/// Index of a UALink port on one accelerator (active ports first, then spares).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PortIndex(pub u16);

/// Index of a switch in the pod (one switch per port plane in the default generator).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SwitchIndex(pub u16);

/// Index of a port on one switch. Ports are grouped four to a station.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SwitchPort(pub u16);

impl SwitchPort {
    /// Ports per station (UALink stations bundle four lanes/ports).
    pub const PER_STATION: u16 = 4;

    /// The station this port belongs to.
    pub fn station(self) -> u16 {
        self.0 / Self::PER_STATION
    }
}

/// A tenant as the simulator knows it (owner of memory windows and accelerators).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TenantId(pub u32);

/// The (accelerator, port) pair that names one UALink port in the pod.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PortRef {
    /// Accelerator owning the port.
    pub accel: AccelId,
    /// Port index on that accelerator.
    pub port: PortIndex,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accel_id_range() {
        assert_eq!(AccelId::new(0x3ff).unwrap().get(), 0x3ff);
        assert_eq!(AccelId::new(0x400), Err(SimError::AccelIdOutOfRange(0x400)));
    }

    #[test]
    fn station_of_port() {
        assert_eq!(SwitchPort(0).station(), 0);
        assert_eq!(SwitchPort(3).station(), 0);
        assert_eq!(SwitchPort(4).station(), 1);
    }
}
