//! ualink-attest: defines and verifies, offline, the signed artifacts of ualink-cc.
//!
//! One verifier per evidence type, each taking the bytes as received and returning either a
//! typed, verified result or an [`Error`] naming the failed check:
//! - [`snp`]: AMD SEV-SNP attestation reports (VCEK/VLEK → ASK/ASVK → ARK), and through the
//!   same code path the [`sim`] platform's reports under an explicitly trusted software root;
//! - [`tdx`]: Intel TDX v4 quotes with caller-supplied collateral (via `dcap-qvl`);
//! - [`spdm_evidence`]: SPDM device evidence bundles (signed MEASUREMENTS, L1, device chain);
//! - [`tdi_report`]: TDI report bundles (TDISP interface report + device evidence, signed by
//!   the TSM under its own SNP/sim evidence);
//! - [`ear`]: signed attestation results (EAR, ES384 JWT);
//! - [`audit`]: the TSM's audit log, a Merkle tree with signed checkpoints.
//! - [`trust_store`]: the auditor's own roots (sim TEE, device vendors), kept outside the
//!   audited directory and named in every report.
//!
//! Verifiers never apply policy (which VMPL, which measurement, which TCB is acceptable): they
//! establish what the evidence says and that it is genuine and bound to the caller's inputs;
//! `ualink-policy` decides.

#![forbid(unsafe_code)]

pub mod audit;
mod cose;
pub mod ear;
pub mod error;
pub mod evidence;
pub mod pki;
pub mod report;
pub mod sim;
pub mod snp;
pub mod spdm_evidence;
pub mod tdi_report;
pub mod tdx;
pub mod time;
pub mod trust_store;

pub use error::{Error, ErrorClass, Result};

/// A verification time in seconds since the Unix epoch (UTC). Verifiers take it explicitly so
/// that offline verification of old evidence is reproducible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    /// The time `secs` seconds after the epoch.
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn secs(self) -> i64 {
        self.0
    }

    /// The current system time (0 if the clock is before 1970).
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self(secs)
    }
}

/// What the caller expects a report's 64-byte `report_data` (or a quote's) to be. Explicit so
/// that "not checked" is a visible choice, never a silent pad or truncation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedReportData {
    /// The report_data must equal these 64 bytes exactly.
    Expected([u8; 64]),
    /// The caller binds the evidence some other way; the verified result records that the
    /// report_data was not checked.
    NotProvided,
}

impl ExpectedReportData {
    /// Checks `actual` against the expectation. Returns whether a check was made.
    pub(crate) fn check(&self, actual: &[u8; 64]) -> Result<bool> {
        match self {
            ExpectedReportData::Expected(e) => {
                // Not secret: a plain comparison is fine.
                if e == actual {
                    Ok(true)
                } else {
                    Err(Error::BindingMismatch {
                        field: "report_data",
                    })
                }
            }
            ExpectedReportData::NotProvided => Ok(false),
        }
    }
}
