//! The CVM's own evidence: one [`EvidenceProvider`] per way a Linux guest can obtain it.
//!
//! | `--tee`  | provider | evidence |
//! |----------|----------|----------|
//! | `snp`    | [`configfs::ConfigfsTsm`] (provider `sev_guest`), else [`sev_guest::SevGuestProvider`] on `/dev/sev-guest` | 1184-byte SNP report + VCEK/VLEK, ASK |
//! | `tdx`    | [`configfs::ConfigfsTsm`] (provider `tdx_guest`) | TDX quote |
//! | `sim`    | [`sim::SimProvider`] | SNP-format report signed by a software ARK → ASK → VCEK |
//! | `sample` | [`sample::SampleProvider`] | Trustee's sample evidence (tests only) |
//! | `auto`   | [`open_auto`]: configfs-tsm, then `/dev/sev-guest`; never `sim` or `sample` | |
//!
//! [`EvidenceFormat`] says how SNP evidence is written for a KBS: ours (raw bytes) or a stock
//! Trustee KBS's ([`trustee`]).
//!
//! Every provider checks that the evidence it returns carries the report_data it was asked
//! for, so a kernel or device that silently ignored the request cannot go unnoticed.

pub mod certtable;
pub mod configfs;
pub mod sample;
pub mod sev_guest;
pub mod sim;
pub mod trustee;

use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use ualink_attest::snp::{SnpCerts, SnpReport, REPORT_LEN};

/// The kind of TEE evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TeeKind {
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
    /// The software `sim` platform (SNP report format, software root).
    Sim,
    /// Trustee's sample evidence (no hardware, no signature).
    Sample,
}

impl TeeKind {
    /// The `tee` value sent in the KBS `Request`. `sim` evidence is SNP-format and is sent
    /// as `snp`: the verifier tells the two apart by the root the chain ends in.
    pub fn kbs_tee(self) -> kbs_types::Tee {
        match self {
            TeeKind::Snp | TeeKind::Sim => kbs_types::Tee::Snp,
            TeeKind::Tdx => kbs_types::Tee::Tdx,
            TeeKind::Sample => kbs_types::Tee::Sample,
        }
    }

    /// The lowercase name (`snp`, `tdx`, `sim`, `sample`).
    pub fn name(self) -> &'static str {
        match self {
            TeeKind::Snp => "snp",
            TeeKind::Tdx => "tdx",
            TeeKind::Sim => "sim",
            TeeKind::Sample => "sample",
        }
    }
}

/// Evidence as produced by the TEE interface, unmodified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    /// Which kind.
    pub tee: TeeKind,
    /// Which interface produced it (`configfs-tsm`, `/dev/sev-guest`, `sim`, `sample`).
    pub source: &'static str,
    /// The raw evidence: an SNP report (1184 bytes), a TDX quote, or the sample JSON bytes.
    pub raw: Vec<u8>,
    /// For SNP and sim: the signing certificate and intermediates (`None` when the platform
    /// supplied none, e.g. configfs-tsm without a host certificate table).
    pub certs: Option<SnpCerts>,
}

/// How SNP (and sim) evidence is written into the KBS `primary_evidence`. TDX and sample
/// evidence have one form, Trustee's, in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EvidenceFormat {
    /// Ours: the report as the base64 of its 1184 bytes as produced, so the verifier checks
    /// the signature over exactly what the firmware signed (ualink-tsm, mesh peers).
    Ualink,
    /// A stock Trustee KBS's: the `sev` crate's serde form of the parsed report and of its
    /// certificate table entries ([`trustee`]).
    Trustee,
}

impl EvidenceFormat {
    /// The lowercase name (`ualink`, `trustee`).
    pub fn name(self) -> &'static str {
        match self {
            EvidenceFormat::Ualink => "ualink",
            EvidenceFormat::Trustee => "trustee",
        }
    }
}

impl std::fmt::Display for EvidenceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EvidenceFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ualink" => Ok(EvidenceFormat::Ualink),
            "trustee" => Ok(EvidenceFormat::Trustee),
            other => Err(Error::ApiMisuse {
                reason: format!("evidence format {other:?}: expected ualink or trustee"),
            }),
        }
    }
}

impl Evidence {
    /// The `primary_evidence` JSON in our own format ([`EvidenceFormat::Ualink`]); see
    /// [`Evidence::to_kbs_json_as`].
    pub fn to_kbs_json(&self) -> Result<serde_json::Value> {
        self.to_kbs_json_as(EvidenceFormat::Ualink)
    }

    /// The `primary_evidence` JSON for the KBS `attest` request, in `format`.
    ///
    /// - SNP and sim, [`EvidenceFormat::Ualink`]: `{"attestation_report": "<base64 of the
    ///   1184 bytes as produced>", "cert_chain": [{"cert_type": "vcek"|"vlek"|"ask"|"asvk",
    ///   "data": "<base64 DER>"}, ...]}` (raw bytes, so the verifier checks the signature
    ///   over what the firmware signed; `cert_chain` is `null` without certificates).
    /// - SNP and sim, [`EvidenceFormat::Trustee`]: Trustee's `SnpEvidence`
    ///   (`{"attestation_report": {<sev's serde fields>}, "cert_chain": [{"cert_type":
    ///   "VCEK", "data": [..]}, ..]}`), refused unless `sev` re-encodes the report to exactly
    ///   the raw bytes ([`trustee::snp_json`]).
    /// - TDX: `{"quote": "<base64>", "cc_eventlog": null}` (Trustee's `TdxEvidence`).
    /// - sample: the sample JSON itself.
    pub fn to_kbs_json_as(&self, format: EvidenceFormat) -> Result<serde_json::Value> {
        match (self.tee, format) {
            (TeeKind::Snp | TeeKind::Sim, EvidenceFormat::Trustee) => {
                trustee::snp_json(&self.raw, self.certs.as_ref())
            }
            (TeeKind::Snp | TeeKind::Sim, EvidenceFormat::Ualink) => {
                let chain = self.certs.as_ref().map(|c| {
                    let (leaf_type, inter_type) = if ualink_attest::snp::SnpReport::parse(&self.raw)
                        .map(|r| r.signing_key == ualink_attest::snp::SigningKey::Vlek)
                        .unwrap_or(false)
                    {
                        ("vlek", "asvk")
                    } else {
                        ("vcek", "ask")
                    };
                    let mut v = vec![serde_json::json!({
                        "cert_type": leaf_type, "data": STANDARD.encode(&c.leaf)})];
                    v.extend(c.intermediates.iter().map(|i| {
                        serde_json::json!({"cert_type": inter_type, "data": STANDARD.encode(i)})
                    }));
                    v
                });
                Ok(serde_json::json!({
                    "attestation_report": STANDARD.encode(&self.raw),
                    "cert_chain": chain,
                }))
            }
            (TeeKind::Tdx, _) => Ok(serde_json::json!({
                "quote": STANDARD.encode(&self.raw),
                "cc_eventlog": null,
            })),
            (TeeKind::Sample, _) => serde_json::from_slice(&self.raw)
                .map_err(|e| Error::platform("sample", format!("sample evidence JSON: {e}"))),
        }
    }
}

/// A source of this CVM's evidence.
pub trait EvidenceProvider: Send + Sync + std::fmt::Debug {
    /// The kind of evidence it produces.
    fn tee(&self) -> TeeKind;
    /// A one-line description naming the interface (for `auto` to say what it picked).
    fn describe(&self) -> String;
    /// Evidence binding `report_data`. The returned evidence has been checked to carry
    /// exactly `report_data`.
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence>;
}

/// Offset of REPORTDATA in a TDX v4/v5 quote: 48-byte header + 520 bytes into the TD report.
const TDX_REPORT_DATA_OFFSET: usize = 48 + 520;

/// Checks that `raw` (an SNP report or TDX quote) carries `expected` as its report_data.
pub(crate) fn check_report_data(
    tee: TeeKind,
    interface: &'static str,
    raw: &[u8],
    expected: &[u8; 64],
) -> Result<()> {
    let actual: [u8; 64] = match tee {
        TeeKind::Snp | TeeKind::Sim => {
            if raw.len() != REPORT_LEN {
                return Err(Error::platform(
                    interface,
                    format!("SNP report is {} bytes, expected {REPORT_LEN}", raw.len()),
                ));
            }
            SnpReport::parse(raw)
                .map_err(|e| Error::platform(interface, format!("SNP report: {e}")))?
                .report_data
        }
        TeeKind::Tdx => raw
            .get(TDX_REPORT_DATA_OFFSET..TDX_REPORT_DATA_OFFSET + 64)
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .ok_or_else(|| Error::platform(interface, "TDX quote too short for REPORTDATA"))?,
        TeeKind::Sample => return Ok(()),
    };
    if &actual != expected {
        return Err(Error::platform(
            interface,
            "the evidence does not carry the report_data we asked for",
        ));
    }
    Ok(())
}

/// What `--tee` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TeeChoice {
    /// Whatever the machine offers (configfs-tsm, then `/dev/sev-guest`).
    Auto,
    /// AMD SEV-SNP through configfs-tsm or `/dev/sev-guest`.
    Snp,
    /// Intel TDX through configfs-tsm.
    Tdx,
    /// The software platform kept in this directory.
    Sim(PathBuf),
    /// Trustee's sample evidence.
    Sample,
}

/// Where [`open`] looks (parameters so tests can point at fake trees).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbePaths {
    /// The configfs-tsm report directory (`/sys/kernel/config/tsm/report`).
    pub configfs_report: PathBuf,
    /// The SEV guest device (`/dev/sev-guest`).
    pub sev_guest: PathBuf,
    /// The TDX guest device (`/dev/tdx_guest`), only to explain what is missing.
    pub tdx_guest: PathBuf,
}

impl Default for ProbePaths {
    fn default() -> Self {
        Self {
            configfs_report: PathBuf::from(configfs::DEFAULT_ROOT),
            sev_guest: PathBuf::from(sev_guest::DEVICE),
            tdx_guest: PathBuf::from("/dev/tdx_guest"),
        }
    }
}

/// Opens the provider `choice` names. `auto` never picks `sim` or `sample`.
pub fn open(choice: &TeeChoice, paths: &ProbePaths) -> Result<Box<dyn EvidenceProvider>> {
    match choice {
        TeeChoice::Auto => open_auto(paths),
        TeeChoice::Snp => open_hw(paths, TeeKind::Snp),
        TeeChoice::Tdx => open_hw(paths, TeeKind::Tdx),
        TeeChoice::Sim(dir) => Ok(Box::new(sim::SimProvider::load_or_create(dir)?)),
        TeeChoice::Sample => Ok(Box::new(sample::SampleProvider::new())),
    }
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

fn looked_for(paths: &ProbePaths, tee: Option<TeeKind>) -> String {
    let mut v = vec![format!(
        "configfs-tsm at {}{}",
        paths.configfs_report.display(),
        match tee {
            Some(TeeKind::Snp) => " (provider sev_guest)",
            Some(TeeKind::Tdx) => " (provider tdx_guest)",
            _ => "",
        }
    )];
    if tee != Some(TeeKind::Tdx) {
        v.push(format!(
            "SEV-SNP guest device {}",
            paths.sev_guest.display()
        ));
    }
    if tee == Some(TeeKind::Tdx) && exists(&paths.tdx_guest) {
        v.push(format!(
            "{} exists, but TDX quotes need configfs-tsm (mount configfs; kernel >= 6.7)",
            paths.tdx_guest.display()
        ));
    }
    v.join(", ")
}

/// The provider the machine offers: configfs-tsm (whichever TEE it reports), then
/// `/dev/sev-guest`. The error names everything looked for.
pub fn open_auto(paths: &ProbePaths) -> Result<Box<dyn EvidenceProvider>> {
    if exists(&paths.configfs_report) {
        return Ok(Box::new(configfs::ConfigfsTsm::open(
            &paths.configfs_report,
        )?));
    }
    if exists(&paths.sev_guest) {
        return Ok(Box::new(sev_guest::SevGuestProvider::open(
            &paths.sev_guest,
        )?));
    }
    Err(Error::NoTee {
        looked_for: looked_for(paths, None),
    })
}

fn open_hw(paths: &ProbePaths, tee: TeeKind) -> Result<Box<dyn EvidenceProvider>> {
    if exists(&paths.configfs_report) {
        let c = configfs::ConfigfsTsm::open(&paths.configfs_report)?;
        if c.tee() == tee {
            return Ok(Box::new(c));
        }
        if tee == TeeKind::Tdx {
            return Err(Error::platform(
                "configfs-tsm",
                format!("asked for tdx, but the provider is {}", c.describe()),
            ));
        }
    }
    if tee == TeeKind::Snp && exists(&paths.sev_guest) {
        return Ok(Box::new(sev_guest::SevGuestProvider::open(
            &paths.sev_guest,
        )?));
    }
    Err(Error::NoTee {
        looked_for: looked_for(paths, Some(tee)),
    })
}
