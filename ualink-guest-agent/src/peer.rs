//! Peer accelerator acceptance: the tenant verifies a TDI report bundle against ITS OWN trust
//! anchors and applies ITS OWN policy, independently of the provider's verdict.
//!
//! [`PeerAcceptor::judge`] runs, in order:
//! 1. ualink-attest's [`TdiReportVerifier`] with the tenant's device vendor roots and TSM
//!    evidence roots (AMD ARKs, or an explicitly trusted sim ARK): the TSM signature, the
//!    TSM's evidence binding its key, the device evidence, the interface report;
//! 2. the tenant's device appraisal (`ualink.device`) of the verified device evidence, with
//!    the identity claims the TSM reported beside the bundle ([`DeviceClaims`]): a wrong claim
//!    fails closed (the vendor root, model and firmware select reference values the signed
//!    measurements must match);
//! 3. the tenant's TDI acceptance (`ualink.tdi_accept`) of the verified report, with the
//!    tenant's own device appraisal as `device_appraisal`, the vPod membership as reported
//!    (the policy re-checks uniqueness, UALink §9.4) and the decision time.
//!
//! A verification failure or a denial is a [`Verdict::Rejected`] listing the failed checks;
//! an error of the policy engine itself is returned as `Err` and must be treated as a denial.

use crate::error::Result;
use ualink_attest::snp::SnpVerifier;
use ualink_attest::spdm_evidence::{
    DeviceEvidenceVerifier, DeviceTrustAnchors, ExpectedNonce, VerifiedDeviceEvidence,
};
use ualink_attest::tdi_report::{TdiReportVerifier, VerifiedTdiReport};
use ualink_attest::{pki::AnchorOrigin, pki::TrustAnchors, UnixTime};
use ualink_policy::input::{
    alg, DeviceAppraisalInput, DeviceFacts, InterfaceInfoInput, MeasurementInput, MmioRangeInput,
    PriorDecision, SpdmParams, TdiAcceptInput, TdiReportInput, TdiStateInput,
};
use ualink_policy::{Decision, HexBytes, PolicyEngine, Sha384};
use ualink_spdm::algo::{AsymAlg, HashAlg, SpdmVersion};
use ualink_spdm::tdisp::msg::{InterfaceInfo, MmioRangeAttributes};
use ualink_spdm::tdisp::TdiState;

/// The tenant's own trust anchors.
#[derive(Clone, Debug)]
pub struct TenantTrust {
    /// Device vendor roots (SPDM certificate chains end here).
    pub device_roots: DeviceTrustAnchors,
    /// Roots for the TSM's own evidence: AMD's built-in ARKs, or an explicit (sim) ARK.
    pub tsm_roots: TrustAnchors,
}

/// What the TSM reports about the device beside the bundle. Not signed by the device: each
/// claim is checked through the tenant's device appraisal (vendor root, reference values).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceClaims {
    /// The device's name (e.g. `accel-0001`).
    pub device_id: String,
    /// Vendor name (must match the vendor root the chain ends in, per policy).
    pub vendor: String,
    /// Model (selects reference values).
    pub model: String,
    /// Firmware version (selects reference values).
    pub firmware_version: String,
    /// The DHE group of the TSM's secured session (not in the device evidence), policy name.
    pub dhe: String,
    /// The AEAD of the TSM's secured session (not in the device evidence), policy name.
    pub aead: String,
}

/// One TDI offered to the tenant.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    /// The TDI report bundle as received from the TSM.
    pub bundle: &'a [u8],
    /// The nonce the device's signed GET_MEASUREMENTS must carry (or explicitly none).
    pub device_nonce: ExpectedNonce,
    /// The TSM's identity claims for the device.
    pub claims: DeviceClaims,
    /// The vPod's accelerator IDs as the TSM reports them.
    pub vpod_accelerator_ids: Vec<u16>,
}

/// One failed check of a rejection.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FailedCheck {
    /// `verification`, or the policy rule (`device:deny.measurement_mismatch`,
    /// `tdi_accept:deny.tdi_not_locked`, ...).
    pub check: String,
    /// Why.
    pub reason: String,
}

/// The tenant's verdict on one TDI.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Accepted: the TSM may START the TDI.
    Accepted(Box<Accepted>),
    /// Rejected, with every failed check.
    Rejected(Vec<FailedCheck>),
}

/// What an acceptance rests on (for the audit trail).
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The verified TDI report.
    pub report: VerifiedTdiReport,
    /// Where the TSM's evidence chain ended.
    pub tsm_root: AnchorOrigin,
    /// The tenant's device appraisal.
    pub device_decision: Decision,
    /// The tenant's TDI acceptance.
    pub tdi_decision: Decision,
}

/// Judges TDIs for one tenant.
#[derive(Clone, Debug)]
pub struct PeerAcceptor {
    tenant_id: String,
    verifier: TdiReportVerifier,
    engine: PolicyEngine,
}

impl PeerAcceptor {
    /// An acceptor for `tenant_id` with its trust anchors and policy.
    pub fn new(tenant_id: &str, trust: TenantTrust, engine: PolicyEngine) -> Self {
        Self {
            tenant_id: tenant_id.to_string(),
            verifier: TdiReportVerifier::new(
                DeviceEvidenceVerifier::new(trust.device_roots),
                SnpVerifier::new(trust.tsm_roots),
            ),
            engine,
        }
    }

    /// Verifies and judges `c` at time `now` (see the module documentation).
    pub fn judge(&self, c: &Candidate<'_>, now: UnixTime) -> Result<Verdict> {
        let report = match self.verifier.verify(c.bundle, &c.device_nonce, now) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Verdict::Rejected(vec![FailedCheck {
                    check: "verification".into(),
                    reason: e.to_string(),
                }]))
            }
        };
        let now_secs = u64::try_from(now.secs()).unwrap_or(0);
        let spdm = spdm_params(&report.device, &c.claims);
        let device_input = device_input(&report.device, &c.claims, spdm.clone(), now_secs);
        let device_decision = self.engine.evaluate_device(&device_input)?;
        let tdi_input = TdiAcceptInput {
            tenant_id: self.tenant_id.clone(),
            accelerator_id: report.content.accelerator_id,
            vpod_accelerator_ids: c.vpod_accelerator_ids.clone(),
            tdi: tdi_input(&report),
            device: DeviceFacts {
                device_id: c.claims.device_id.clone(),
                vendor: c.claims.vendor.clone(),
                model: c.claims.model.clone(),
                firmware_version: c.claims.firmware_version.clone(),
                spdm,
                attested_at: u64::try_from(report.device.taken_at.secs()).unwrap_or(0),
            },
            device_appraisal: PriorDecision::from(&device_decision),
            now: now_secs,
        };
        let tdi_decision = self.engine.evaluate_tdi_accept(&tdi_input)?;
        let mut failed = Vec::new();
        for (kind, d) in [("device", &device_decision), ("tdi_accept", &tdi_decision)] {
            if !d.allow {
                failed.extend(d.rules.iter().zip(&d.reasons).map(|(r, why)| FailedCheck {
                    check: format!("{kind}:{r}"),
                    reason: why.clone(),
                }));
            }
        }
        if report.content.tenant_id != self.tenant_id {
            failed.push(FailedCheck {
                check: "tenant".into(),
                reason: format!(
                    "the TDI report names tenant {:?}, not {:?}",
                    report.content.tenant_id, self.tenant_id
                ),
            });
        }
        if !failed.is_empty() {
            return Ok(Verdict::Rejected(failed));
        }
        Ok(Verdict::Accepted(Box::new(Accepted {
            tsm_root: report.tsm.root.clone(),
            report,
            device_decision,
            tdi_decision,
        })))
    }
}

fn hash_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => alg::SHA_256,
        HashAlg::Sha384 => alg::SHA_384,
    }
}

fn spdm_params(d: &VerifiedDeviceEvidence, claims: &DeviceClaims) -> SpdmParams {
    SpdmParams {
        version: match d.version {
            SpdmVersion::V12 => "1.2",
            SpdmVersion::V13 => "1.3",
        }
        .into(),
        base_asym: match d.algorithms.asym {
            AsymAlg::EcdsaP256 => alg::ECDSA_P256,
            AsymAlg::EcdsaP384 => alg::ECDSA_P384,
        }
        .into(),
        base_hash: hash_name(d.algorithms.hash).into(),
        measurement_hash: match d.algorithms.measurement_hash_algo {
            0x2 => alg::SHA_256.to_string(),
            0x4 => alg::SHA_384.to_string(),
            0x8 => alg::SHA_512.to_string(),
            // Recorded as-is so policy refuses it by name.
            other => format!("measurement-hash-{other:#x}"),
        },
        dhe: claims.dhe.clone(),
        aead: claims.aead.clone(),
    }
}

fn device_input(
    d: &VerifiedDeviceEvidence,
    claims: &DeviceClaims,
    spdm: SpdmParams,
    now: u64,
) -> DeviceAppraisalInput {
    DeviceAppraisalInput {
        device_id: claims.device_id.clone(),
        vendor: claims.vendor.clone(),
        model: claims.model.clone(),
        firmware_version: claims.firmware_version.clone(),
        vendor_root_fingerprint: Sha384(d.root_fingerprint),
        spdm,
        measurements: d
            .measurements
            .iter()
            .map(|m| MeasurementInput {
                index: m.index,
                value_type: m.value_type | if m.raw_bit_stream { 0x80 } else { 0 },
                value: HexBytes(m.value.clone()),
            })
            .collect(),
        attested_at: u64::try_from(d.taken_at.secs()).unwrap_or(0),
        now,
    }
}

fn tdi_input(r: &VerifiedTdiReport) -> TdiReportInput {
    let info = r.interface_report.interface_info.bits();
    let bit = |b: u16| info & b != 0;
    TdiReportInput {
        interface_id: r.content.interface_id.function_id(),
        state: match r.content.state {
            TdiState::ConfigUnlocked => TdiStateInput::ConfigUnlocked,
            TdiState::ConfigLocked => TdiStateInput::ConfigLocked,
            TdiState::Run => TdiStateInput::Run,
            TdiState::Error => TdiStateInput::Error,
        },
        interface_info: InterfaceInfoInput {
            no_update_after_lock: bit(InterfaceInfo::NO_UPDATE_AFTER_LOCK),
            dma_without_pasid: bit(InterfaceInfo::DMA_WITHOUT_PASID),
            dma_with_pasid: bit(InterfaceInfo::DMA_WITH_PASID),
            ats: bit(InterfaceInfo::ATS_SUPPORTED),
            prs: bit(InterfaceInfo::PRS_SUPPORTED),
            xt_mode: bit(InterfaceInfo::XT_MODE_SUPPORTED),
        },
        mmio_ranges: r
            .interface_report
            .mmio_ranges
            .iter()
            .map(|m| {
                let a = m.attributes.bits();
                MmioRangeInput {
                    first_page: m.first_page,
                    number_of_pages: m.number_of_pages,
                    range_id: m.range_id,
                    msix_table: a & MmioRangeAttributes::MSIX_TABLE != 0,
                    msix_pba: a & MmioRangeAttributes::MSIX_PBA != 0,
                    non_tee_mem: a & MmioRangeAttributes::IS_NON_TEE_MEM != 0,
                    mem_attr_updatable: a & MmioRangeAttributes::IS_MEM_ATTR_UPDATABLE != 0,
                }
            })
            .collect(),
        report_digest: Sha384::of(&r.content.interface_report),
    }
}
