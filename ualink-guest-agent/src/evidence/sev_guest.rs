//! `/dev/sev-guest` through `sev::firmware::guest::Firmware` (SNP_GET_EXT_REPORT): the SNP
//! fallback when configfs-tsm is absent.
//!
//! The device is behind [`SnpGuestDevice`] so the provider logic (certificate table mapping,
//! report_data check) is tested without hardware.

use super::certtable::{CertEntry, CertKind};
use super::{certtable, check_report_data, Evidence, EvidenceProvider, TeeKind};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The SEV guest device node.
pub const DEVICE: &str = "/dev/sev-guest";
const IFACE: &str = "/dev/sev-guest";

/// An SNP guest request interface: an extended report (report + certificate table entries).
pub trait SnpGuestDevice: Send {
    /// The 1184-byte report carrying `report_data` at VMPL 0, and the host-provided
    /// certificates (empty if the host provisioned none).
    fn extended_report(&mut self, report_data: &[u8; 64]) -> Result<(Vec<u8>, Vec<CertEntry>)>;
}

/// The real device through the `sev` crate.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct SevGuestFirmware(sev::firmware::guest::Firmware);

#[cfg(target_os = "linux")]
impl SevGuestFirmware {
    /// Opens `/dev/sev-guest` (the `sev` crate opens that fixed path).
    pub fn open() -> Result<Self> {
        sev::firmware::guest::Firmware::open()
            .map(Self)
            .map_err(|e| Error::platform(IFACE, format!("open: {e}")))
    }
}

#[cfg(target_os = "linux")]
impl SnpGuestDevice for SevGuestFirmware {
    fn extended_report(&mut self, report_data: &[u8; 64]) -> Result<(Vec<u8>, Vec<CertEntry>)> {
        let (report, certs) = self
            .0
            .get_ext_report(None, Some(*report_data), Some(0))
            .map_err(|e| Error::platform(IFACE, format!("SNP_GET_EXT_REPORT: {e}")))?;
        let certs = certs
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let kind = match c.cert_type {
                    sev::firmware::host::CertType::VCEK => CertKind::Vcek,
                    sev::firmware::host::CertType::VLEK => CertKind::Vlek,
                    sev::firmware::host::CertType::ASK => CertKind::Ask,
                    sev::firmware::host::CertType::ARK => CertKind::Ark,
                    ref other => {
                        CertKind::Other(uuid_bytes(&other.to_string()).unwrap_or([0xFF; 16]))
                    }
                };
                CertEntry { kind, der: c.data }
            })
            .collect();
        Ok((report, certs))
    }
}

/// The 16 bytes of a textual UUID (for certificate kinds `sev` does not name).
#[cfg(target_os = "linux")]
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let h: String = s.chars().filter(|c| *c != '-').collect();
    hex::decode(h).ok()?.try_into().ok()
}

/// Evidence from an SNP guest device.
pub struct SevGuestProvider {
    device: Mutex<Box<dyn SnpGuestDevice>>,
    path: PathBuf,
}

impl std::fmt::Debug for SevGuestProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SevGuestProvider")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SevGuestProvider {
    /// Opens the real device. `path` must be `/dev/sev-guest` (the `sev` crate's fixed path);
    /// any other path is refused rather than silently ignored.
    pub fn open(path: &Path) -> Result<Self> {
        if path != Path::new(DEVICE) {
            return Err(Error::ApiMisuse {
                reason: format!("the sev crate opens {DEVICE} only, not {}", path.display()),
            });
        }
        #[cfg(target_os = "linux")]
        {
            Ok(Self::with_device(Box::new(SevGuestFirmware::open()?), path))
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(Error::platform(IFACE, "only available on Linux"))
        }
    }

    /// A provider over any [`SnpGuestDevice`] (`path` is for messages only).
    pub fn with_device(device: Box<dyn SnpGuestDevice>, path: &Path) -> Self {
        Self {
            device: Mutex::new(device),
            path: path.to_path_buf(),
        }
    }
}

impl EvidenceProvider for SevGuestProvider {
    fn tee(&self) -> TeeKind {
        TeeKind::Snp
    }

    fn describe(&self) -> String {
        format!("snp via {}", self.path.display())
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let (raw, entries) = {
            let mut d = self
                .device
                .lock()
                .map_err(|_| Error::platform(IFACE, "device lock poisoned"))?;
            d.extended_report(report_data)?
        };
        check_report_data(TeeKind::Snp, IFACE, &raw, report_data)?;
        Ok(Evidence {
            tee: TeeKind::Snp,
            source: IFACE,
            raw,
            certs: certtable::to_snp_certs(&entries),
        })
    }
}
