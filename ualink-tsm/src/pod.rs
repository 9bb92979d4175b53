//! Pod description files (`ualink-tsm serve --pod POD.toml`): the embedded simulated pod's
//! parameters plus external devices reached over the DMTF spdm-emu socket framing.
//!
//! ```toml
//! [sim]                          # optional; these are the defaults
//! accelerators = 8               # simulated accelerators, IDs 1..=accelerators
//! switches = 1                   # switch planes
//! memory_bytes = 1048576         # fabric memory per accelerator
//! spare_ports = 1
//!
//! [[device]]                     # zero or more external devices
//! id = 900                       # 10-bit accelerator ID, distinct from the simulated ones
//! url = "tcp://127.0.0.1:2323"   # an spdm-emu socket responder (MCTP inside the frames)
//! vendor = "Soft Vendor"         # the inventory claims appraisal checks (reference values
//! model = "SD1"                  # are looked up by vendor/model/firmware)
//! firmware = "1.0.0"
//! trust_anchor = "ca.pem"        # the vendor root its chain must end in (PEM or DER),
//!                                # relative to this file
//! ```
//!
//! External devices are **attest-only**: they are listed, attested over SPDM (chain to the
//! given vendor root, signed measurements, KEY_EXCHANGE/FINISH) and appraised by the same
//! `ualink.device` policy as simulated ones, re-attested with them, and quarantined when they
//! fail; but they have no port on the simulated fabric, so they cannot join a vPod, be keyed
//! or host a TDI (those requests are refused).

use std::path::Path;

use serde::Deserialize;
use ualink_sim::pod::{GenParams, PodSpec};

use crate::error::{Result, TsmError};

/// The embedded simulated pod's generator parameters.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimParams {
    /// Simulated accelerators (IDs 1..=accelerators).
    #[serde(default = "default_accelerators")]
    pub accelerators: u16,
    /// Switch planes.
    #[serde(default = "one")]
    pub switches: u16,
    /// Fabric memory per accelerator (bytes).
    #[serde(default = "default_memory")]
    pub memory_bytes: u64,
    /// Spare ports per accelerator.
    #[serde(default = "one")]
    pub spare_ports: u16,
}

fn default_accelerators() -> u16 {
    8
}
fn one() -> u16 {
    1
}
fn default_memory() -> u64 {
    1 << 20
}

impl Default for SimParams {
    fn default() -> Self {
        Self {
            accelerators: default_accelerators(),
            switches: one(),
            memory_bytes: default_memory(),
            spare_ports: one(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    id: u16,
    url: String,
    vendor: String,
    model: String,
    firmware: String,
    trust_anchor: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPod {
    #[serde(default)]
    sim: SimParams,
    #[serde(default, rename = "device")]
    devices: Vec<RawDevice>,
}

/// An external device: attest-only, reached over the spdm-emu socket framing.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalDevice {
    /// Its 10-bit accelerator ID.
    pub id: u16,
    /// `HOST:PORT` of its spdm-emu socket responder (the `tcp://` prefix removed).
    pub addr: String,
    /// Vendor it claims (appraisal checks the chain's root and the reference values).
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Firmware version.
    pub firmware: String,
    /// The vendor root certificate (PEM or DER) its chain must end in.
    pub trust_anchor: Vec<u8>,
}

impl core::fmt::Debug for ExternalDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExternalDevice")
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("vendor", &self.vendor)
            .field("model", &self.model)
            .field("firmware", &self.firmware)
            .field("trust_anchor_len", &self.trust_anchor.len())
            .finish()
    }
}

impl ExternalDevice {
    /// The device's URL as written in pod files (`tcp://HOST:PORT`).
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }
}

/// A parsed pod description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodDescription {
    /// The embedded simulated pod.
    pub sim: SimParams,
    /// External devices.
    pub devices: Vec<ExternalDevice>,
}

/// Largest pod description file read.
pub const MAX_POD_FILE: u64 = 1 << 20;

impl PodDescription {
    /// Reads and checks `path`; trust anchors are read relative to its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path)
            .map_err(|e| TsmError::InvalidRequest(format!("pod file {}: {e}", path.display())))?;
        if meta.len() > MAX_POD_FILE {
            return Err(TsmError::InvalidRequest(format!(
                "pod file {} is larger than {MAX_POD_FILE} bytes",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| TsmError::InvalidRequest(format!("pod file {}: {e}", path.display())))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_toml(&text, base)
    }

    /// Parses a description; `base` is the directory relative trust-anchor paths start from.
    /// Refuses unknown fields, a URL that is not `tcp://HOST:PORT`, an ID above 10 bits, an
    /// ID given twice or taken by a simulated accelerator, and an unreadable trust anchor.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self> {
        let raw: RawPod = toml::from_str(text)
            .map_err(|e| TsmError::InvalidRequest(format!("pod description: {e}")))?;
        if raw.sim.accelerators == 0 || raw.sim.switches == 0 {
            return Err(TsmError::InvalidRequest(
                "pod description: the simulated pod needs accelerators and a switch".into(),
            ));
        }
        let mut devices: Vec<ExternalDevice> = Vec::with_capacity(raw.devices.len());
        for d in raw.devices {
            let bad = |why: String| TsmError::InvalidRequest(format!("device {}: {why}", d.id));
            if d.id == 0 || d.id > 0x3ff {
                return Err(bad("accelerator ID must be 1..=1023".into()));
            }
            if d.id <= raw.sim.accelerators {
                return Err(bad(format!(
                    "ID taken by a simulated accelerator (1..={})",
                    raw.sim.accelerators
                )));
            }
            if devices.iter().any(|x| x.id == d.id) {
                return Err(bad("ID given twice (UALink §9.4)".into()));
            }
            let addr = d
                .url
                .strip_prefix("tcp://")
                .filter(|a| !a.is_empty() && !a.contains('/'))
                .ok_or_else(|| bad(format!("url {:?} is not tcp://HOST:PORT", d.url)))?
                .to_string();
            if d.vendor.is_empty() || d.model.is_empty() || d.firmware.is_empty() {
                return Err(bad("vendor, model and firmware must be given".into()));
            }
            let anchor_path = base.join(&d.trust_anchor);
            let trust_anchor = std::fs::read(&anchor_path)
                .map_err(|e| bad(format!("trust anchor {}: {e}", anchor_path.display())))?;
            devices.push(ExternalDevice {
                id: d.id,
                addr,
                vendor: d.vendor,
                model: d.model,
                firmware: d.firmware,
                trust_anchor,
            });
        }
        Ok(Self {
            sim: raw.sim,
            devices,
        })
    }

    /// The simulated pod's specification.
    pub fn sim_spec(&self) -> Result<PodSpec> {
        PodSpec::generate(&GenParams {
            accelerators: self.sim.accelerators,
            switches: self.sim.switches,
            memory_bytes: self.sim.memory_bytes,
            spare_ports: self.sim.spare_ports,
        })
        .map_err(|e| TsmError::InvalidRequest(format!("simulated pod: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn dir_with_anchor() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("ca.pem"), b"-----BEGIN CERTIFICATE-----").unwrap();
        d
    }

    const DEV: &str = r#"
[[device]]
id = 900
url = "tcp://127.0.0.1:2323"
vendor = "V"
model = "M"
firmware = "1.0.0"
trust_anchor = "ca.pem"
"#;

    #[test]
    fn a_description_with_defaults_and_one_device_parses() {
        let d = dir_with_anchor();
        let p = PodDescription::from_toml(DEV, d.path()).unwrap();
        assert_eq!(p.sim, SimParams::default());
        assert_eq!(p.devices.len(), 1);
        assert_eq!(p.devices[0].addr, "127.0.0.1:2323");
        assert_eq!(p.devices[0].url(), "tcp://127.0.0.1:2323");
        assert_eq!(p.sim_spec().unwrap().accelerators.len(), 8);
        let s = PodDescription::from_toml("[sim]\naccelerators = 3\n", d.path()).unwrap();
        assert_eq!(s.sim.accelerators, 3);
        assert!(s.devices.is_empty());
    }

    #[test]
    fn bad_descriptions_are_refused_with_their_reason() {
        let d = dir_with_anchor();
        let cases = [
            (DEV.replace("tcp://", "udp://"), "tcp://HOST:PORT"),
            (DEV.replace("id = 900", "id = 4"), "simulated accelerator"),
            (DEV.replace("id = 900", "id = 1024"), "1..=1023"),
            (format!("{DEV}{DEV}"), "given twice"),
            (DEV.replace("ca.pem", "missing.pem"), "trust anchor"),
            (
                DEV.replace("vendor = \"V\"", "vendor = \"\""),
                "vendor, model",
            ),
            (format!("{DEV}colour = 1\n"), "unknown field"),
            ("[sim]\nswitches = 0\n".to_string(), "needs accelerators"),
        ];
        for (text, want) in cases {
            let e = PodDescription::from_toml(&text, d.path()).unwrap_err();
            assert!(matches!(e, TsmError::InvalidRequest(_)), "{e}");
            assert!(e.to_string().contains(want), "{e} should say {want}");
        }
    }
}
