//! Input documents, one per decision. Each is what the policy sees as `input`.
//!
//! Rules shared by every schema:
//! * Field names are snake_case and unknown fields are refused, so a typo cannot silently
//!   drop a check, and a recorded input replays into exactly the document that was judged.
//! * Byte strings are lowercase hex ([`HexBytes`]); SHA-384 values are 96 lowercase hex
//!   digits ([`Sha384`]).
//! * Times are unix seconds (`u64`). `now` is always an input field: policies never read the
//!   clock, so a decision replays identically from its recorded input.
//! * Every input is a fact that a verifier already checked (a signature, a chain, a
//!   transcript): policy judges verified facts; a verification failure never reaches policy.
//!
//! The same schema is documented field by field in `policy/README.md`.

use crate::hexser::{HexBytes, Sha384};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Algorithm names used in [`SpdmParams`] and in the policy data (`spdm.algorithms`).
pub mod alg {
    /// SPDM BaseAsymAlgo ECDSA P-256 (with SHA-256).
    pub const ECDSA_P256: &str = "ecdsa-p256";
    /// SPDM BaseAsymAlgo ECDSA P-384 (with SHA-384).
    pub const ECDSA_P384: &str = "ecdsa-p384";
    /// SHA-256 (BaseHashAlgo / MeasurementHashAlgo), IANA named-information name.
    pub const SHA_256: &str = "sha-256";
    /// SHA-384 (BaseHashAlgo / MeasurementHashAlgo), IANA named-information name.
    pub const SHA_384: &str = "sha-384";
    /// SHA-512.
    pub const SHA_512: &str = "sha-512";
    /// DHE group secp256r1.
    pub const SECP256R1: &str = "secp256r1";
    /// DHE group secp384r1.
    pub const SECP384R1: &str = "secp384r1";
    /// AEAD AES-128-GCM.
    pub const AES_128_GCM: &str = "aes-128-gcm";
    /// AEAD AES-256-GCM.
    pub const AES_256_GCM: &str = "aes-256-gcm";
    /// AEAD ChaCha20-Poly1305.
    pub const CHACHA20_POLY1305: &str = "chacha20-poly1305";
}

/// The SPDM version and algorithms a device negotiated (VERSION / ALGORITHMS).
///
/// Names are strings (see [`alg`]) so that an algorithm this build does not know can still be
/// recorded and refused by policy rather than lost in a conversion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpdmParams {
    /// Negotiated SPDM version, `"MAJOR.MINOR"` (`"1.2"`, `"1.3"`).
    pub version: String,
    /// BaseAsymAlgo, e.g. `"ecdsa-p384"`.
    pub base_asym: String,
    /// BaseHashAlgo, e.g. `"sha-384"`.
    pub base_hash: String,
    /// MeasurementHashAlgo, e.g. `"sha-384"`.
    pub measurement_hash: String,
    /// DHE group, e.g. `"secp384r1"`.
    pub dhe: String,
    /// AEAD suite, e.g. `"aes-256-gcm"`.
    pub aead: String,
}

/// One DMTF measurement block from a verified MEASUREMENTS response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasurementInput {
    /// Block index (1..=0xFE).
    pub index: u8,
    /// DMTFSpecMeasurementValueType byte (bit 7: raw bit stream; bits 6:0: kind).
    pub value_type: u8,
    /// DMTFSpecMeasurementValue: a digest (in the measurement hash) or the raw value.
    pub value: HexBytes,
}

/// Input of [`crate::DecisionKind::DeviceAppraisal`]: may this device be attested as genuine
/// and running known firmware (package `ualink.device`)?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceAppraisalInput {
    /// Which device (for reasons and the audit subject), e.g. `"accel-0001"`.
    pub device_id: String,
    /// Vendor name from the verified certificate chain.
    pub vendor: String,
    /// Device model.
    pub model: String,
    /// Firmware version the device reports (selects its reference measurements).
    pub firmware_version: String,
    /// SHA-384 of the DER of the root certificate the device chain verified to.
    pub vendor_root_fingerprint: Sha384,
    /// Negotiated SPDM version and algorithms.
    pub spdm: SpdmParams,
    /// Measurement blocks of the signed MEASUREMENTS response, in the order received.
    pub measurements: Vec<MeasurementInput>,
    /// When the signed measurements were obtained (unix seconds).
    pub attested_at: u64,
    /// The time of the decision (unix seconds).
    pub now: u64,
}

/// TDISP TDI state (DEVICE_INTERFACE_STATE), as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TdiStateInput {
    /// 0: configuration may change.
    ConfigUnlocked,
    /// 1: configuration locked, not yet running.
    ConfigLocked,
    /// 2: running.
    Run,
    /// 3: lock broken.
    Error,
}

/// INTERFACE_INFO of a TDISP device interface report, bit by bit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceInfoInput {
    /// Bit 0: firmware updates not permitted after LOCK.
    pub no_update_after_lock: bool,
    /// Bit 1: DMA without PASID.
    pub dma_without_pasid: bool,
    /// Bit 2: DMA with PASID.
    pub dma_with_pasid: bool,
    /// Bit 3: ATS supported and enabled.
    pub ats: bool,
    /// Bit 4: PRS supported and enabled.
    pub prs: bool,
    /// Bit 5: XT mode supported.
    pub xt_mode: bool,
}

/// One MMIO_RANGE of a device interface report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MmioRangeInput {
    /// Byte address of the first 4 KiB page (reporting offset added).
    pub first_page: u64,
    /// Number of 4 KiB pages.
    pub number_of_pages: u32,
    /// Range ID (e.g. the BAR).
    pub range_id: u16,
    /// Attribute bit 0: holds the MSI-X table.
    pub msix_table: bool,
    /// Attribute bit 1: holds the MSI-X PBA.
    pub msix_pba: bool,
    /// Attribute bit 2: not TEE memory.
    pub non_tee_mem: bool,
    /// Attribute bit 3: memory attributes may be updated.
    pub mem_attr_updatable: bool,
}

/// The TDI report a tenant judges (verified: the TSM's COSE_Sign1 over it and the device
/// evidence checked before this input is built).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdiReportInput {
    /// TDISP INTERFACE_ID (function id).
    pub interface_id: u32,
    /// TDI state when the report was taken.
    pub state: TdiStateInput,
    /// INTERFACE_INFO.
    pub interface_info: InterfaceInfoInput,
    /// The MMIO ranges.
    pub mmio_ranges: Vec<MmioRangeInput>,
    /// SHA-384 of the interface report bytes as received.
    pub report_digest: Sha384,
}

/// Identity and attestation facts of the device behind a TDI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFacts {
    /// Which device, e.g. `"accel-0001"`.
    pub device_id: String,
    /// Vendor name.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Firmware version.
    pub firmware_version: String,
    /// Negotiated SPDM version and algorithms.
    pub spdm: SpdmParams,
    /// When the device evidence was obtained (unix seconds).
    pub attested_at: u64,
}

/// A summary of an earlier decision, carried into a later one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorDecision {
    /// Whether it allowed.
    pub allow: bool,
    /// The rules that decided it.
    pub rules: Vec<String>,
    /// The policy bundle digest it was made under.
    pub policy_digest: Sha384,
}

/// Input of [`crate::DecisionKind::TdiAcceptance`]: does tenant `tenant_id` accept this TDI
/// into its trust boundary (package `ualink.tdi_accept`)?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdiAcceptInput {
    /// The tenant deciding.
    pub tenant_id: String,
    /// The 10-bit UALink accelerator ID the TDI is reached at.
    pub accelerator_id: u16,
    /// Accelerator IDs of every member of the tenant's vPod, as the TSM reported them (the
    /// tenant re-checks they are unique and contain `accelerator_id`; UALink §9.4).
    pub vpod_accelerator_ids: Vec<u16>,
    /// The TDI report.
    pub tdi: TdiReportInput,
    /// The device behind it.
    pub device: DeviceFacts,
    /// The provider's device appraisal of that device.
    pub device_appraisal: PriorDecision,
    /// The time of the decision (unix seconds).
    pub now: u64,
}

/// Access rights of a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    /// Loads.
    Read,
    /// Stores.
    Write,
    /// Atomics.
    Atomic,
}

/// One end of a share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareEnd {
    /// The tenant.
    pub tenant_id: String,
    /// The OS instance (CVM) within the tenant.
    pub os_instance: String,
    /// Accelerator ID of this end's TDI.
    pub accelerator_id: u16,
    /// This end's TDI state now.
    pub tdi_state: TdiStateInput,
    /// When this end's device was last attested (unix seconds).
    pub attested_at: u64,
}

/// Input of [`crate::DecisionKind::Share`]: may `importer` attach `exporter`'s buffer with
/// `rights` (package `ualink.share`)? A share within one tenant between two OS instances is
/// a cross-OS share and needs a pair entry too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareInput {
    /// The exporting end.
    pub exporter: ShareEnd,
    /// The importing end.
    pub importer: ShareEnd,
    /// Rights requested.
    pub rights: Vec<Right>,
    /// Whether link keys are live on every link of the route between the two accelerators.
    pub link_keys_live: bool,
    /// The time of the decision (unix seconds).
    pub now: u64,
}

/// One end of a link-key pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEnd {
    /// Accelerator ID.
    pub accelerator_id: u16,
    /// Port number on that accelerator.
    pub port: u16,
    /// Whether the device's latest appraisal allowed it.
    pub device_appraised: bool,
    /// When the device was last attested (unix seconds).
    pub attested_at: u64,
}

/// Why a rotation happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationTrigger {
    /// A usage threshold (UALink §9.5.9.1.1).
    Threshold,
    /// A schedule.
    Scheduled,
    /// An operator or tenant asked.
    Manual,
    /// After a revocation or a suspected compromise.
    Revocation,
}

/// Input of [`crate::DecisionKind::KeyRotation`]: may new master keys be installed for this
/// TX→RX pair (package `ualink.key_rotation`)?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRotationInput {
    /// The tenant owning the vPod.
    pub tenant_id: String,
    /// The transmitting end.
    pub tx: KeyEnd,
    /// The receiving end.
    pub rx: KeyEnd,
    /// The key epoch in use.
    pub current_epoch: u64,
    /// The epoch being installed.
    pub new_epoch: u64,
    /// Why.
    pub trigger: RotationTrigger,
    /// The time of the decision (unix seconds).
    pub now: u64,
}

/// The TEE that produced CVM evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeeType {
    /// AMD SEV-SNP.
    Snp,
    /// Intel TDX.
    Tdx,
    /// The project's software platform (SNP report format, software root). Tests and demo.
    Sim,
}

/// Which kind of root the evidence chain ended in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeeRoot {
    /// An AMD ARK built into the verifier.
    Amd,
    /// Intel's SGX/TDX root CA.
    Intel,
    /// A root passed explicitly (`--trust`), e.g. the sim platform's.
    Explicit,
}

/// Guest policy fields of CVM evidence (SNP POLICY, TDX TD_ATTRIBUTES).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvmPolicyFields {
    /// The guest policy permits debugging (SNP POLICY.DEBUG, TDX TD_ATTRIBUTES.DEBUG).
    pub debug_allowed: bool,
    /// A migration agent may be associated (SNP POLICY.MIGRATE_MA; false for TDX).
    pub migration_agent_allowed: bool,
    /// SMT permitted (SNP POLICY.SMT; true for TDX).
    pub smt_allowed: bool,
    /// VMPL of the report (SNP); `None` for TDX.
    pub vmpl: Option<u8>,
}

/// TCB facts of CVM evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvmTcb {
    /// Named SVN components (SNP REPORTED_TCB: `bootloader`, `tee`, `snp`, `microcode`, and
    /// `fmc` on Turin; TDX may give `tee_tcb_svn0`..).
    pub components: BTreeMap<String, u64>,
    /// The collateral's TCB status (TDX: `"UpToDate"`, `"SWHardeningNeeded"`, ...); `None`
    /// for SNP.
    pub status: Option<String>,
}

/// Input of [`crate::DecisionKind::CvmAppraisal`]: is this CVM's own evidence acceptable
/// for its tenant (package `ualink.cvm`)?
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CvmAppraisalInput {
    /// The tenant the CVM claims to belong to.
    pub tenant_id: String,
    /// The TEE.
    pub tee: TeeType,
    /// The kind of root the evidence chain ended in.
    pub root: TeeRoot,
    /// Launch measurement (SNP MEASUREMENT, TDX MRTD), 48 bytes.
    pub measurement: HexBytes,
    /// Guest policy fields.
    pub policy: CvmPolicyFields,
    /// TCB.
    pub tcb: CvmTcb,
    /// Whether REPORT_DATA equalled the expected binding (nonce, TEE public key).
    pub report_data_bound: bool,
    /// Whether the evidence says the guest is debuggable now.
    pub debug: bool,
    /// When the evidence was produced (unix seconds).
    pub attested_at: u64,
    /// The time of the decision (unix seconds).
    pub now: u64,
}

impl From<&crate::Decision> for PriorDecision {
    /// The summary of `d` that a later decision carries (e.g. the device appraisal inside a
    /// [`TdiAcceptInput`]).
    fn from(d: &crate::Decision) -> Self {
        Self {
            allow: d.allow,
            rules: d.rules.clone(),
            policy_digest: Sha384(d.policy_digest),
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// An input document of one decision kind: what producers build, evaluate and record.
///
/// Implemented for the five input types only.
pub trait DecisionInput: Serialize + serde::de::DeserializeOwned + sealed::Sealed {
    /// The decision this input is for.
    const KIND: crate::DecisionKind;

    /// The input as canonical JSON (object members sorted by key, no whitespace; see
    /// [`crate::canonical_input`]): the bytes to store in the audit log and to hash, so that
    /// replay reads back exactly the document that was judged.
    fn to_canonical_json(&self) -> crate::Result<String> {
        let v = serde_json::to_value(self).map_err(|e| crate::PolicyError::InvalidInput {
            kind: Self::KIND,
            reason: e.to_string(),
        })?;
        Ok(crate::canon::to_canonical(&v))
    }
}

macro_rules! decision_input {
    ($t:ty, $k:ident) => {
        impl sealed::Sealed for $t {}
        impl DecisionInput for $t {
            const KIND: crate::DecisionKind = crate::DecisionKind::$k;
        }
    };
}

decision_input!(DeviceAppraisalInput, DeviceAppraisal);
decision_input!(TdiAcceptInput, TdiAcceptance);
decision_input!(ShareInput, Share);
decision_input!(KeyRotationInput, KeyRotation);
decision_input!(CvmAppraisalInput, CvmAppraisal);
