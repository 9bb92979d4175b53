//! Pod descriptions: a TOML schema and a default generator.
//!
//! ```toml
//! [defaults]                       # optional
//! max_txn_bytes = 256
//!
//! [[switch]]
//! ports = 64
//!
//! [[accelerator]]
//! id = 1                           # 10-bit accelerator ID, unique
//! memory_bytes = 1048576
//! vendor = "Acme"
//! model = "X1"
//! firmware = "1.0.0"
//! vendor_id = 0x1234               # informational (identity comes from SPDM)
//! device_id = 0x0001
//! ports = 2                        # active ports
//! spare_ports = 1                  # spare ports for migration
//!
//! [[link]]                         # accelerator port <-> switch port
//! accel = 1
//! port = 0
//! switch = 0
//! switch_port = 0
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// Whole-pod parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodDefaults {
    /// Largest data payload of one transaction; transfers are split into transactions of at most
    /// this size (and never across a 256 KiB address boundary, as the upper address bits travel in
    /// clear). 4..=32768.
    #[serde(default = "default_max_txn")]
    pub max_txn_bytes: u16,
}

fn default_max_txn() -> u16 {
    crate::ualinksec::header::DEFAULT_MAX_TXN_DATA
}

impl Default for PodDefaults {
    fn default() -> Self {
        Self {
            max_txn_bytes: default_max_txn(),
        }
    }
}

/// One switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    /// Number of ports (four per station).
    pub ports: u16,
}

/// One accelerator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorSpec {
    /// 10-bit accelerator ID.
    pub id: u16,
    /// Fabric-addressable memory in bytes.
    pub memory_bytes: u64,
    /// Vendor name (names the vendor root CA).
    pub vendor: String,
    /// Model name (names the model CA).
    pub model: String,
    /// Firmware version (selects the golden measurement images).
    pub firmware: String,
    /// PCI-style vendor ID.
    #[serde(default)]
    pub vendor_id: u16,
    /// Vendor device ID.
    #[serde(default)]
    pub device_id: u16,
    /// Active ports.
    pub ports: u16,
    /// Spare ports (targets of port migration).
    #[serde(default)]
    pub spare_ports: u16,
}

/// A cable between an accelerator port and a switch port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Accelerator ID.
    pub accel: u16,
    /// Accelerator port index.
    pub port: u16,
    /// Switch index (position in the `switch` list).
    pub switch: u16,
    /// Switch port.
    pub switch_port: u16,
}

/// A whole pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    /// Pod-wide parameters.
    #[serde(default)]
    pub defaults: PodDefaults,
    /// Switches.
    #[serde(default, rename = "switch")]
    pub switches: Vec<SwitchSpec>,
    /// Accelerators.
    #[serde(default, rename = "accelerator")]
    pub accelerators: Vec<AcceleratorSpec>,
    /// Cables.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkSpec>,
}

/// Parameters of [`PodSpec::generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenParams {
    /// Number of accelerators (IDs 1..=n).
    pub accelerators: u16,
    /// Number of switches (port planes); every accelerator has one active port per switch.
    pub switches: u16,
    /// Memory per accelerator.
    pub memory_bytes: u64,
    /// Spare ports per accelerator (cabled to spare switch ports on switch 0).
    pub spare_ports: u16,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            accelerators: 4,
            switches: 1,
            memory_bytes: 1 << 20,
            spare_ports: 1,
        }
    }
}

const VENDORS: [(&str, &str, u16); 2] = [
    ("Acme Accel", "A100X", 0x1ac0),
    ("Zenith Compute", "Z9", 0x2ec0),
];

impl PodSpec {
    /// Parses a TOML description and validates it.
    pub fn from_toml(s: &str) -> Result<Self, SimError> {
        let spec: PodSpec = toml::from_str(s).map_err(|e| SimError::PodConfig(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Serializes to TOML.
    pub fn to_toml(&self) -> Result<String, SimError> {
        toml::to_string(self).map_err(|e| SimError::PodConfig(e.to_string()))
    }

    /// The default generator: `n` accelerators alternating between two vendors, one active port
    /// per switch plane cabled to that switch, spare ports cabled to spare ports on switch 0.
    /// Spare switch ports are cabled but a spare accelerator port carries no traffic until a
    /// migration moves a link onto it.
    pub fn generate(p: &GenParams) -> Result<Self, SimError> {
        if p.accelerators == 0 || p.switches == 0 {
            return Err(SimError::PodConfig(
                "generator needs accelerators and switches".into(),
            ));
        }
        if p.accelerators > AccelIdMax::COUNT {
            return Err(SimError::PodConfig(
                "more accelerators than 10-bit IDs".into(),
            ));
        }
        let n = p.accelerators;
        // Switch 0 carries active + spare ports; the others only active ports.
        let ports0 = n
            .checked_mul(1 + p.spare_ports)
            .ok_or(SimError::PodConfig("too many ports".into()))?;
        let mut switches = vec![SwitchSpec {
            ports: ports0.max(4),
        }];
        for _ in 1..p.switches {
            switches.push(SwitchSpec { ports: n.max(4) });
        }
        let mut accelerators = Vec::new();
        let mut links = Vec::new();
        for i in 0..n {
            let id = i + 1;
            let (vendor, model, vid) = VENDORS[usize::from(i % 2)];
            accelerators.push(AcceleratorSpec {
                id,
                memory_bytes: p.memory_bytes,
                vendor: vendor.into(),
                model: model.into(),
                firmware: "1.0.0".into(),
                vendor_id: vid,
                device_id: 1,
                ports: p.switches,
                spare_ports: p.spare_ports,
            });
            for s in 0..p.switches {
                links.push(LinkSpec {
                    accel: id,
                    port: s,
                    switch: s,
                    switch_port: i,
                });
            }
            for k in 0..p.spare_ports {
                links.push(LinkSpec {
                    accel: id,
                    port: p.switches + k,
                    switch: 0,
                    switch_port: n * (1 + k) + i,
                });
            }
        }
        let spec = PodSpec {
            defaults: PodDefaults::default(),
            switches,
            accelerators,
            links,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks IDs are unique and in range, sizes non-zero, cables point at existing ports, and no
    /// port is cabled twice.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::PodConfig(m.to_owned()));
        if !(4..=32768).contains(&self.defaults.max_txn_bytes) {
            return bad("max_txn_bytes must be within 4..=32768");
        }
        let mut ids = BTreeSet::new();
        for a in &self.accelerators {
            if a.id > crate::ids::AccelId::MAX {
                return bad("accelerator id exceeds 10 bits");
            }
            if !ids.insert(a.id) {
                return bad("duplicate accelerator id");
            }
            if a.memory_bytes == 0 || a.ports == 0 {
                return bad("accelerator needs memory and ports");
            }
            if a.ports.checked_add(a.spare_ports).is_none() {
                return bad("too many ports");
            }
        }
        if u16::try_from(self.switches.len()).is_err() {
            return bad("too many switches");
        }
        for s in &self.switches {
            if s.ports == 0 {
                return bad("switch needs ports");
            }
        }
        let mut used_accel = BTreeSet::new();
        let mut used_switch = BTreeSet::new();
        for l in &self.links {
            let Some(a) = self.accelerators.iter().find(|a| a.id == l.accel) else {
                return bad("link names an unknown accelerator");
            };
            if l.port >= a.ports.saturating_add(a.spare_ports) {
                return bad("link names an unknown accelerator port");
            }
            let Some(s) = self.switches.get(usize::from(l.switch)) else {
                return bad("link names an unknown switch");
            };
            if l.switch_port >= s.ports {
                return bad("link names an unknown switch port");
            }
            if !used_accel.insert((l.accel, l.port)) {
                return bad("accelerator port cabled twice");
            }
            if !used_switch.insert((l.switch, l.switch_port)) {
                return bad("switch port cabled twice");
            }
        }
        Ok(())
    }
}

struct AccelIdMax;
impl AccelIdMax {
    const COUNT: u16 = 1023;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pod_round_trips_through_toml() {
        let spec = PodSpec::generate(&GenParams::default()).unwrap();
        let text = spec.to_toml().unwrap();
        assert_eq!(PodSpec::from_toml(&text).unwrap(), spec);
    }

    #[test]
    fn rejects_inconsistent_descriptions() {
        let mut spec = PodSpec::generate(&GenParams::default()).unwrap();
        spec.accelerators[1].id = spec.accelerators[0].id;
        assert!(spec.validate().is_err());
        let mut spec = PodSpec::generate(&GenParams::default()).unwrap();
        spec.links[1].switch_port = spec.links[0].switch_port;
        spec.links[1].switch = spec.links[0].switch;
        assert!(spec.validate().is_err());
        let mut spec = PodSpec::generate(&GenParams::default()).unwrap();
        spec.accelerators[0].id = 1024;
        assert!(spec.validate().is_err());
        assert!(PodSpec::from_toml("[[accelerator]]\nid = 1\nbogus = 2\n").is_err());
    }

    #[test]
    fn parses_documented_example() {
        let t = r#"
[[switch]]
ports = 8
[[accelerator]]
id = 1
memory_bytes = 1048576
vendor = "Acme"
model = "X1"
firmware = "1.0.0"
ports = 1
[[link]]
accel = 1
port = 0
switch = 0
switch_port = 0
"#;
        let s = PodSpec::from_toml(t).unwrap();
        assert_eq!(s.defaults.max_txn_bytes, 256);
        assert_eq!(s.accelerators[0].spare_ports, 0);
    }
}
