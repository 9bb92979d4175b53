//! A UALink switch: ports grouped in stations, a routing table keyed by (ingress port, 10-bit
//! destination ID), Deny for every absent entry, all entries cleared at reset (UALink_200 §10.7).
//! The switch holds no keys and is not trusted: it routes on the clear header only.

use std::collections::BTreeMap;

use crate::error::SimError;
use crate::ids::{AccelId, PortRef, SwitchIndex, SwitchPort};

/// One switch.
#[derive(Debug, Clone)]
pub struct Switch {
    id: SwitchIndex,
    ports: u16,
    /// What each switch port is cabled to (an accelerator port).
    attached: BTreeMap<SwitchPort, PortRef>,
    /// (ingress, destination) -> egress. Absent means Deny.
    routes: BTreeMap<(SwitchPort, AccelId), SwitchPort>,
}

impl Switch {
    /// A switch with `ports` ports, nothing attached, every route Deny.
    pub fn new(id: SwitchIndex, ports: u16) -> Self {
        Self {
            id,
            ports,
            attached: BTreeMap::new(),
            routes: BTreeMap::new(),
        }
    }

    /// Its index.
    pub fn id(&self) -> SwitchIndex {
        self.id
    }

    /// Number of ports.
    pub fn ports(&self) -> u16 {
        self.ports
    }

    fn check_port(&self, p: SwitchPort) -> Result<(), SimError> {
        if p.0 >= self.ports {
            return Err(SimError::UnknownSwitchPort(self.id, p));
        }
        Ok(())
    }

    /// Cables switch port `p` to accelerator port `to` (replacing any previous cable).
    pub fn attach(&mut self, p: SwitchPort, to: PortRef) -> Result<(), SimError> {
        self.check_port(p)?;
        self.attached.insert(p, to);
        Ok(())
    }

    /// The accelerator port cabled to switch port `p`.
    pub fn attached(&self, p: SwitchPort) -> Option<PortRef> {
        self.attached.get(&p).copied()
    }

    /// All cables.
    pub fn cables(&self) -> impl Iterator<Item = (SwitchPort, PortRef)> + '_ {
        self.attached.iter().map(|(s, p)| (*s, *p))
    }

    /// Writes a routing entry (Allow toward `egress`).
    pub fn route_set(
        &mut self,
        ingress: SwitchPort,
        dest: AccelId,
        egress: SwitchPort,
    ) -> Result<(), SimError> {
        self.check_port(ingress)?;
        self.check_port(egress)?;
        self.routes.insert((ingress, dest), egress);
        Ok(())
    }

    /// Clears a routing entry back to Deny.
    pub fn route_clear(&mut self, ingress: SwitchPort, dest: AccelId) -> Result<(), SimError> {
        self.check_port(ingress)?;
        self.routes.remove(&(ingress, dest));
        Ok(())
    }

    /// Reads an entry; `None` is Deny.
    pub fn route_get(&self, ingress: SwitchPort, dest: AccelId) -> Option<SwitchPort> {
        self.routes.get(&(ingress, dest)).copied()
    }

    /// Routes a transaction that arrived on `ingress` for `dest`: the egress port, or the Deny.
    pub fn forward(&self, ingress: SwitchPort, dest: AccelId) -> Result<SwitchPort, SimError> {
        self.route_get(ingress, dest)
            .ok_or(SimError::RoutingDenied {
                switch: self.id,
                ingress,
                dst: dest,
            })
    }

    /// Reset: every routing entry back to Deny (cables stay).
    pub fn reset(&mut self) {
        self.routes.clear();
    }

    /// Number of Allow entries (tests use it to check the all-Deny reset state).
    pub fn allow_entries(&self) -> usize {
        self.routes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_by_default_and_after_reset() {
        let a = AccelId::new(1).unwrap();
        let mut s = Switch::new(SwitchIndex(0), 8);
        assert!(matches!(
            s.forward(SwitchPort(0), a),
            Err(SimError::RoutingDenied { .. })
        ));
        s.route_set(SwitchPort(0), a, SwitchPort(1)).unwrap();
        assert_eq!(s.forward(SwitchPort(0), a).unwrap(), SwitchPort(1));
        // Per ingress port: another ingress is still denied.
        assert!(s.forward(SwitchPort(2), a).is_err());
        s.reset();
        assert_eq!(s.allow_entries(), 0);
        assert!(s.forward(SwitchPort(0), a).is_err());
        assert!(s.route_set(SwitchPort(8), a, SwitchPort(1)).is_err());
    }
}
