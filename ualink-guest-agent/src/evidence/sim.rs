//! The `sim` TEE: SNP-format reports from ualink-attest's software platform. `DIR/ark.pem`
//! is the root a verifier must be told to trust; default policy refuses sim evidence.

use super::{check_report_data, Evidence, EvidenceProvider, TeeKind};
use crate::error::Result;
use std::path::{Path, PathBuf};
use ualink_attest::sim::SimPlatform;

/// Evidence from a [`SimPlatform`] kept in a directory.
#[derive(Debug)]
pub struct SimProvider {
    platform: SimPlatform,
    dir: PathBuf,
}

impl SimProvider {
    /// Loads the platform in `dir`, creating it on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        Ok(Self {
            platform: SimPlatform::load_or_create(dir)?,
            dir: dir.to_path_buf(),
        })
    }

    /// The platform (its ARK, chip id).
    pub fn platform(&self) -> &SimPlatform {
        &self.platform
    }
}

impl EvidenceProvider for SimProvider {
    fn tee(&self) -> TeeKind {
        TeeKind::Sim
    }

    fn describe(&self) -> String {
        format!(
            "sim (software SNP-format platform in {}; trust {} explicitly; not hardware)",
            self.dir.display(),
            self.dir.join("ark.pem").display()
        )
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let raw = self.platform.report(report_data)?;
        check_report_data(TeeKind::Sim, "sim", &raw, report_data)?;
        Ok(Evidence {
            tee: TeeKind::Sim,
            source: "sim",
            raw,
            certs: Some(self.platform.certs()),
        })
    }
}
