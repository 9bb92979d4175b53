//! AMD SEV-SNP attestation report verification (and, through the same path, the `sim`
//! platform's reports).
//!
//! [`SnpVerifier::verify`] runs these checks, in this order, on the bytes as received:
//! 1. parse the 1184-byte report ([`SnpReport::parse`]: size, version 2/3/5, reserved bits);
//! 2. SIGNATURE_ALGO is ECDSA P-384 with SHA-384;
//! 3. the chain leaf (VCEK or VLEK) → ASK/ASVK → a trusted ARK, each certificate valid at `now`;
//! 4. the leaf kind matches the report's SIGNING_KEY (VCEK has hwID, VLEK has no hwID);
//! 5. the leaf's TCB extensions (blSPL 1.3.6.1.4.1.3704.1.3.1, teeSPL .3.2, snpSPL .3.3,
//!    ucodeSPL .3.8, and on Turin fmcSPL .3.9) equal the report's REPORTED_TCB components;
//! 6. for a VCEK, its hwID (1.3.6.1.4.1.3704.1.4) equals the report's CHIP_ID (unless the
//!    report masks its chip id, in which case CHIP_ID must be zero and the result says so);
//! 7. the leaf key signs bytes `0x000..0x2A0` as received (r, s converted from 72-byte
//!    little-endian to 48-byte big-endian);
//! 8. REPORT_DATA equals the caller's [`ExpectedReportData`].
//!
//! No policy is applied here: VMPL, guest policy, measurement and TCB minimums are for
//! `ualink-policy`.

pub mod report;

use crate::error::{CertValue, Error, Result};
use crate::pki::{self, AnchorOrigin, TrustAnchors};
use crate::{ExpectedReportData, UnixTime};
pub use report::{SigningKey, SnpReport, TcbLayout, TcbVersion, REPORT_LEN, SIGNED_LEN};
use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED};
use x509_parser::certificate::X509Certificate;

/// OID arc of AMD's VCEK/VLEK extensions, 1.3.6.1.4.1.3704.1.
pub(crate) const AMD_ARC: [u64; 8] = [1, 3, 6, 1, 4, 1, 3704, 1];

/// The certificates that come with a report: the signing leaf and any intermediates (ASK or
/// ASVK; a root among them is ignored, roots come only from [`TrustAnchors`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpCerts {
    /// The VCEK or VLEK, DER.
    pub leaf: Vec<u8>,
    /// Intermediates, DER (may be empty when the ASK is the one built into `sev`).
    pub intermediates: Vec<Vec<u8>>,
}

impl SnpCerts {
    /// A leaf alone; the ASK is taken from the trust anchors' known intermediates.
    pub fn leaf_only(leaf_der: &[u8]) -> Self {
        Self {
            leaf: leaf_der.to_vec(),
            intermediates: Vec::new(),
        }
    }
}

/// A report that passed every check of [`SnpVerifier::verify`].
#[derive(Clone, Debug)]
pub struct VerifiedSnpReport {
    /// The parsed report.
    pub report: SnpReport,
    /// Which key kind signed it (agrees with the report's SIGNING_KEY).
    pub signer: SigningKey,
    /// SHA-384 of the leaf certificate's DER (for audit records: fingerprints, not keys).
    pub leaf_fingerprint: [u8; 48],
    /// The intermediate's subject.
    pub intermediate: String,
    /// Which anchor the chain ends in. A policy must refuse [`AnchorOrigin::Explicit`] roots
    /// unless it allows them (e.g. `allow_sim_tee`).
    pub root: AnchorOrigin,
    /// Whether CHIP_ID was compared with the VCEK hwID (false for VLEK or masked chip id).
    pub chip_id_checked: bool,
    /// Whether REPORT_DATA was compared with an expected value.
    pub report_data_checked: bool,
}

/// Verifies SNP reports against a fixed set of trust anchors.
#[derive(Clone, Debug)]
pub struct SnpVerifier {
    anchors: TrustAnchors,
}

impl SnpVerifier {
    /// A verifier trusting exactly `anchors`.
    pub fn new(anchors: TrustAnchors) -> Self {
        Self { anchors }
    }

    /// A verifier trusting the AMD ARKs built into `sev` (Milan, Genoa, Turin) and nothing else.
    pub fn amd() -> Result<Self> {
        Ok(Self::new(TrustAnchors::amd_builtin()?))
    }

    /// Runs every check listed in the module documentation on `report_bytes` as received.
    pub fn verify(
        &self,
        report_bytes: &[u8],
        certs: &SnpCerts,
        expected: &ExpectedReportData,
        now: UnixTime,
    ) -> Result<VerifiedSnpReport> {
        let report = SnpReport::parse(report_bytes)?;
        if report.signature_algo != report::SIG_ALGO_ECDSA_P384_SHA384 {
            return Err(Error::UnsupportedAlgorithm {
                what: "SNP report",
                detail: format!("SIGNATURE_ALGO {}", report.signature_algo),
            });
        }
        let leaf = pki::parse_cert(&certs.leaf, "SNP signing certificate (VCEK/VLEK)")?;
        let chain = pki::verify_chain(&leaf, &certs.intermediates, &self.anchors, now)?;

        let (cert_kind, chip_id_checked) = leaf_binding(&report, &leaf)?;

        let signed = report_bytes
            .get(..SIGNED_LEN)
            .ok_or_else(|| Error::malformed("SNP attestation report", "truncated"))?;
        let mut sig = [0u8; 96];
        sig[..48].copy_from_slice(&report.signature_r);
        sig[48..].copy_from_slice(&report.signature_s);
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &chain.leaf_public_key)
            .verify(signed, &sig)
            .map_err(|_| Error::BadSignature {
                check: "SNP report signed by the VCEK/VLEK",
            })?;

        let report_data_checked = expected.check(&report.report_data)?;
        let mut leaf_fingerprint = [0u8; 48];
        leaf_fingerprint
            .copy_from_slice(ring::digest::digest(&ring::digest::SHA384, &certs.leaf).as_ref());
        Ok(VerifiedSnpReport {
            signer: cert_kind,
            report,
            leaf_fingerprint,
            intermediate: chain.intermediate_subject,
            root: chain.origin,
            chip_id_checked,
            report_data_checked,
        })
    }
}

/// Checks steps 4 to 6 alone (signing-key kind, TCB extensions, hwID) between a parsed report
/// and a leaf certificate, without checking any signature. [`SnpVerifier::verify`] runs the
/// same checks after the chain; this entry point lets a caller diagnose why a certificate
/// does not belong to a report.
pub fn check_leaf_binding(report: &SnpReport, leaf_der: &[u8]) -> Result<SigningKey> {
    let leaf = pki::parse_cert(leaf_der, "SNP signing certificate (VCEK/VLEK)")?;
    leaf_binding(report, &leaf).map(|(kind, _)| kind)
}

fn leaf_binding(report: &SnpReport, leaf: &X509Certificate<'_>) -> Result<(SigningKey, bool)> {
    let ext = AmdExtensions::from_cert(leaf)?;
    let cert_kind = if ext.hw_id.is_some() {
        SigningKey::Vcek
    } else {
        SigningKey::Vlek
    };
    if report.signing_key != cert_kind {
        return Err(Error::KeyKindMismatch {
            report: report.signing_key.name(),
            cert: cert_kind.name(),
        });
    }
    check_tcb(report, &ext)?;
    let chip_id_checked = check_chip_id(report, &ext)?;
    Ok((cert_kind, chip_id_checked))
}

/// The AMD extensions of a VCEK/VLEK that bind it to a TCB and a chip.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AmdExtensions {
    pub(crate) bl: Option<u8>,
    pub(crate) tee: Option<u8>,
    pub(crate) snp: Option<u8>,
    pub(crate) ucode: Option<u8>,
    pub(crate) fmc: Option<u8>,
    pub(crate) hw_id: Option<Vec<u8>>,
}

impl AmdExtensions {
    pub(crate) fn from_cert(cert: &X509Certificate<'_>) -> Result<Self> {
        let mut out = Self::default();
        for ext in cert.extensions() {
            let arcs: Option<Vec<u64>> = ext.oid.iter().map(|i| i.collect());
            let Some(arcs) = arcs else { continue };
            let Some(rest) = arcs.strip_prefix(&AMD_ARC[..]) else {
                continue;
            };
            let slot = match rest {
                [3, 1] => &mut out.bl,
                [3, 2] => &mut out.tee,
                [3, 3] => &mut out.snp,
                [3, 8] => &mut out.ucode,
                [3, 9] => &mut out.fmc,
                [4] => {
                    if out.hw_id.replace(ext.value.to_vec()).is_some() {
                        return Err(dup("hwID"));
                    }
                    continue;
                }
                _ => continue,
            };
            let v = der_small_uint(ext.value)?;
            if slot.replace(v).is_some() {
                return Err(dup("TCB SPL"));
            }
        }
        Ok(out)
    }
}

fn dup(what: &str) -> Error {
    Error::malformed(
        "SNP signing certificate (VCEK/VLEK)",
        format!("duplicate {what} extension"),
    )
}

/// Decodes a DER INTEGER in 0..=255 (minimal encoding: `02 01 vv` or `02 02 00 vv` with
/// vv >= 0x80).
fn der_small_uint(v: &[u8]) -> Result<u8> {
    let bad = || {
        Error::malformed(
            "SNP signing certificate (VCEK/VLEK)",
            "TCB extension is not a DER INTEGER in 0..=255",
        )
    };
    match v {
        [0x02, 0x01, x] if *x < 0x80 => Ok(*x),
        [0x02, 0x02, 0x00, x] if *x >= 0x80 => Ok(*x),
        _ => Err(bad()),
    }
}

fn check_tcb(report: &SnpReport, ext: &AmdExtensions) -> Result<()> {
    let t = &report.reported_tcb;
    let mut checks = vec![
        ("blSPL (1.3.6.1.4.1.3704.1.3.1)", t.bootloader, ext.bl),
        ("teeSPL (1.3.6.1.4.1.3704.1.3.2)", t.tee, ext.tee),
        ("snpSPL (1.3.6.1.4.1.3704.1.3.3)", t.snp, ext.snp),
        ("ucodeSPL (1.3.6.1.4.1.3704.1.3.8)", t.microcode, ext.ucode),
    ];
    if let Some(fmc) = t.fmc {
        checks.push(("fmcSPL (1.3.6.1.4.1.3704.1.3.9)", fmc, ext.fmc));
    }
    for (component, in_report, in_cert) in checks {
        if in_cert != Some(in_report) {
            return Err(Error::TcbMismatch {
                component,
                report: in_report,
                cert: in_cert.map_or(CertValue::Missing, CertValue::Present),
            });
        }
    }
    Ok(())
}

/// VCEK only. A Turin hwID is 8 bytes and names the first 8 bytes of CHIP_ID; older
/// generations carry all 64.
fn check_chip_id(report: &SnpReport, ext: &AmdExtensions) -> Result<bool> {
    let Some(hw_id) = &ext.hw_id else {
        return Ok(false);
    };
    if report.mask_chip_key {
        if report.chip_id.iter().any(|&b| b != 0) {
            return Err(Error::malformed(
                "SNP attestation report",
                "MASK_CHIP_KEY set but CHIP_ID is not zero",
            ));
        }
        return Ok(false);
    }
    let expected: &[u8] = match (report.tcb_layout(), hw_id.len()) {
        (TcbLayout::Turin, 8) => &report.chip_id[..8],
        _ => &report.chip_id[..],
    };
    if hw_id.as_slice() != expected {
        return Err(Error::ChipIdMismatch);
    }
    Ok(true)
}
