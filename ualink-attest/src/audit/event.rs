//! Typed payloads of audit records: what happened, with the evidence it rests on.
//!
//! A record's optional `event` field (see [`super::record`]) holds one [`AuditEvent`]: a CBOR
//! map whose `type` key names the variant (kebab-case) and whose other keys are the
//! variant's fields (snake_case, unknown keys refused). Evidence is embedded as received
//! (byte strings), so the auditor re-verifies it offline from the log alone. Key material is
//! never embedded except public keys (the TSM's identity); link and session keys appear as
//! SHA-384 fingerprints only.
//!
//! | `type` | record `kind` | fields |
//! |---|---|---|
//! | `tsm-identity` | `lifecycle` | `public_key` (SEC1 P-384, the checkpoint key), `evidence` ([`TsmEvidenceBytes`], report_data = SHA-384(public_key) ‖ 0¹⁶) |
//! | `pod-discovered` | `lifecycle` | `pod_id`, `switches` [`SwitchInfo`], `accelerators` [`AcceleratorInfo`] |
//! | `device-attested` | `device-appraisal` | `device_id`, `accelerator_id`, `epoch`, `nonce` (32 bytes), `evidence` (device evidence bundle) |
//! | `device-quarantined` | `device-appraisal` | `device_id`, `accelerator_id`, `cause`, `evidence` (bundle or null) |
//! | `tenant-added` | `lifecycle` | `tenant_id` |
//! | `vpod-formed` | `lifecycle` | `vpod_id`, `tenant_id`, `accelerator_ids` |
//! | `window-carved` | `lifecycle` | `vpod_id`, `accelerator_id`, `base`, `size` |
//! | `keys-programmed` | `key-rotation` | `link` [`LinkEnd`] ×2 (`tx`, `rx`), `epoch`, `key_fingerprint` |
//! | `keys-rotated` | `key-rotation` | `tx`, `rx`, `previous_epoch`, `epoch`, `key_fingerprint` |
//! | `tdi-locked` / `tdi-started` / `tdi-stopped` | `lifecycle` | `tdi_id`, `accelerator_id`, `tenant_id` |
//! | `tdi-error` | `lifecycle` | `tdi_id`, `accelerator_id`, `tenant_id`, `cause` |
//! | `tdi-report-issued` | `lifecycle` | `tdi_id`, `bundle` (TDI report bundle) |
//! | `tdi-accepted` | `tdi-acceptance` | `tdi_id`, `tenant_id`, `cvm_id` |
//! | `cvm-attested` | `cvm-appraisal` | `cvm_id`, `tenant_id`, `evidence` ([`TsmEvidenceBytes`]-shaped SNP report + certs) |
//! | `cvm-attested-tdx` | `cvm-appraisal` | `cvm_id`, `tenant_id`, `quote` (TD quote v4/v5 as received), `collateral` (the Intel collateral JSON it was verified with) |
//! | `share-allowed` / `share-denied` | `share` | `grant_id`, `exporter`, `importer` [`ShareParty`], `rights` |
//! | `attachment-revoked` | `revocation` | `grant_id`, `cause`, `requested_at`, `drained_at` (unix seconds; latency = difference) |
//! | `tenant-offboarded` | `lifecycle` | `tenant_id` |
//!
//! The deciding rules, reasons, outcome and policy digest are the record's own fields, not
//! repeated here.

use serde::{Deserialize, Serialize};

use super::record::{DecisionKind, Digest384};

/// Bytes embedded in a record as a CBOR byte string (evidence as received, public keys).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl core::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} bytes", self.0.len())
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// An SEV-SNP-format report (AMD or sim) with the certificates it does not carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsmEvidenceBytes {
    /// The 1184-byte report as produced.
    pub report: Bytes,
    /// Its VCEK/VLEK, DER.
    pub leaf: Bytes,
    /// Intermediates (ASK/ASVK), DER. Roots come from the auditor (`--trust`, AMD built in).
    pub intermediates: Vec<Bytes>,
}

/// A switch of the pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchInfo {
    /// Switch id.
    pub switch_id: u16,
    /// Accelerator ids attached to it.
    pub accelerator_ids: Vec<u16>,
}

/// An accelerator of the pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorInfo {
    /// UALink accelerator id (10 bits).
    pub accelerator_id: u16,
    /// Device id (the subject of its device records).
    pub device_id: String,
}

/// One end of a link (for keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkEnd {
    /// Accelerator id.
    pub accelerator_id: u16,
    /// Port.
    pub port: u16,
}

/// One end of a share.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareParty {
    /// Tenant.
    pub tenant_id: String,
    /// OS instance (CVM) within the tenant.
    pub os_instance: String,
    /// Accelerator id.
    pub accelerator_id: u16,
}

/// What a record is about, with embedded evidence. See the module documentation for the
/// record `kind` each variant goes with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AuditEvent {
    /// The TSM's identity: its checkpoint public key, bound by its TEE evidence.
    TsmIdentity {
        /// SEC1 uncompressed P-384 point of the checkpoint (and TDI report) signing key.
        public_key: Bytes,
        /// The TSM's SNP-format evidence; report_data = SHA-384(public_key) ‖ 16 zeros.
        evidence: TsmEvidenceBytes,
    },
    /// The pod's topology as discovered.
    PodDiscovered {
        /// Pod id.
        pod_id: String,
        /// Switches.
        switches: Vec<SwitchInfo>,
        /// Accelerators.
        accelerators: Vec<AcceleratorInfo>,
    },
    /// A device was attested (appraisal outcome in the record).
    DeviceAttested {
        /// Device id.
        device_id: String,
        /// Accelerator id.
        accelerator_id: u16,
        /// Attestation epoch.
        epoch: u64,
        /// Requester nonce the TSM sent (checked against the signed GET_MEASUREMENTS).
        nonce: Bytes,
        /// The SPDM device evidence bundle as received.
        evidence: Bytes,
    },
    /// A device was quarantined.
    DeviceQuarantined {
        /// Device id.
        device_id: String,
        /// Accelerator id.
        accelerator_id: u16,
        /// Why.
        cause: String,
        /// The evidence that failed, if any was obtained.
        evidence: Option<Bytes>,
    },
    /// A tenant was added.
    TenantAdded {
        /// Tenant id.
        tenant_id: String,
    },
    /// A vPod was formed for a tenant.
    VpodFormed {
        /// vPod id.
        vpod_id: String,
        /// Tenant id.
        tenant_id: String,
        /// Member accelerators.
        accelerator_ids: Vec<u16>,
    },
    /// A memory window was carved for a vPod member.
    WindowCarved {
        /// vPod id.
        vpod_id: String,
        /// Accelerator id.
        accelerator_id: u16,
        /// Base address.
        base: u64,
        /// Size in bytes.
        size: u64,
    },
    /// Link keys were programmed.
    KeysProgrammed {
        /// Transmitting end.
        tx: LinkEnd,
        /// Receiving end.
        rx: LinkEnd,
        /// Key epoch.
        epoch: u64,
        /// Fingerprint of the key (never the key).
        key_fingerprint: Digest384,
    },
    /// Link keys were rotated.
    KeysRotated {
        /// Transmitting end.
        tx: LinkEnd,
        /// Receiving end.
        rx: LinkEnd,
        /// Epoch before.
        previous_epoch: u64,
        /// Epoch after.
        epoch: u64,
        /// Fingerprint of the new key.
        key_fingerprint: Digest384,
    },
    /// A TDI was locked (CONFIG_LOCKED).
    TdiLocked {
        /// TDI id.
        tdi_id: String,
        /// Accelerator id.
        accelerator_id: u16,
        /// Tenant id.
        tenant_id: String,
    },
    /// A TDI report bundle was issued.
    TdiReportIssued {
        /// TDI id.
        tdi_id: String,
        /// The TDI report bundle as signed.
        bundle: Bytes,
    },
    /// A tenant accepted a TDI (decision in the record).
    TdiAccepted {
        /// TDI id.
        tdi_id: String,
        /// Tenant id.
        tenant_id: String,
        /// The accepting CVM.
        cvm_id: String,
    },
    /// A TDI entered RUN.
    TdiStarted {
        /// TDI id.
        tdi_id: String,
        /// Accelerator id.
        accelerator_id: u16,
        /// Tenant id.
        tenant_id: String,
    },
    /// A TDI was stopped (back to CONFIG_UNLOCKED).
    TdiStopped {
        /// TDI id.
        tdi_id: String,
        /// Accelerator id.
        accelerator_id: u16,
        /// Tenant id.
        tenant_id: String,
    },
    /// A TDI entered ERROR.
    TdiError {
        /// TDI id.
        tdi_id: String,
        /// Accelerator id.
        accelerator_id: u16,
        /// Tenant id.
        tenant_id: String,
        /// Why.
        cause: String,
    },
    /// A CVM's evidence was appraised (decision in the record).
    CvmAttested {
        /// CVM id.
        cvm_id: String,
        /// Tenant id.
        tenant_id: String,
        /// The CVM's SNP-format evidence.
        evidence: TsmEvidenceBytes,
    },
    /// A CVM's Intel TDX evidence was appraised (decision in the record). The collateral is
    /// Intel-signed (TCB info, QE identity, CRLs under Intel's root, which dcap-qvl holds):
    /// embedding it lets the auditor re-verify the quote at the record's time offline.
    CvmAttestedTdx {
        /// CVM id.
        cvm_id: String,
        /// Tenant id.
        tenant_id: String,
        /// The TD quote (v4 or v5) as received.
        quote: Bytes,
        /// The collateral JSON it was verified with (`tdx::TdxCollateral::from_json`).
        collateral: Bytes,
    },
    /// A share was allowed (rules in the record).
    ShareAllowed {
        /// Grant id.
        grant_id: String,
        /// Exporter.
        exporter: ShareParty,
        /// Importer.
        importer: ShareParty,
        /// Rights granted ("read", "write", "atomic").
        rights: Vec<String>,
    },
    /// A share was denied (rules in the record).
    ShareDenied {
        /// The request's grant id.
        grant_id: String,
        /// Exporter.
        exporter: ShareParty,
        /// Importer.
        importer: ShareParty,
        /// Rights requested.
        rights: Vec<String>,
    },
    /// An attachment was revoked and drained.
    AttachmentRevoked {
        /// Grant id.
        grant_id: String,
        /// Why.
        cause: String,
        /// When revocation was requested (unix seconds).
        requested_at: i64,
        /// When the last access drained (unix seconds).
        drained_at: i64,
    },
    /// A tenant was offboarded.
    TenantOffboarded {
        /// Tenant id.
        tenant_id: String,
    },
}

impl AuditEvent {
    /// The record `kind` this event goes with (the table in the module documentation). The
    /// auditor flags a record whose kind differs.
    pub fn record_kind(&self) -> DecisionKind {
        match self {
            AuditEvent::DeviceAttested { .. } | AuditEvent::DeviceQuarantined { .. } => {
                DecisionKind::DeviceAppraisal
            }
            AuditEvent::KeysProgrammed { .. } | AuditEvent::KeysRotated { .. } => {
                DecisionKind::KeyRotation
            }
            AuditEvent::TdiAccepted { .. } => DecisionKind::TdiAcceptance,
            AuditEvent::CvmAttested { .. } | AuditEvent::CvmAttestedTdx { .. } => {
                DecisionKind::CvmAppraisal
            }
            AuditEvent::ShareAllowed { .. } | AuditEvent::ShareDenied { .. } => DecisionKind::Share,
            AuditEvent::AttachmentRevoked { .. } => DecisionKind::Revocation,
            AuditEvent::TsmIdentity { .. }
            | AuditEvent::PodDiscovered { .. }
            | AuditEvent::TenantAdded { .. }
            | AuditEvent::VpodFormed { .. }
            | AuditEvent::WindowCarved { .. }
            | AuditEvent::TdiLocked { .. }
            | AuditEvent::TdiReportIssued { .. }
            | AuditEvent::TdiStarted { .. }
            | AuditEvent::TdiStopped { .. }
            | AuditEvent::TdiError { .. }
            | AuditEvent::TenantOffboarded { .. } => DecisionKind::Lifecycle,
        }
    }

    /// The `type` name.
    pub fn name(&self) -> &'static str {
        match self {
            AuditEvent::TsmIdentity { .. } => "tsm-identity",
            AuditEvent::PodDiscovered { .. } => "pod-discovered",
            AuditEvent::DeviceAttested { .. } => "device-attested",
            AuditEvent::DeviceQuarantined { .. } => "device-quarantined",
            AuditEvent::TenantAdded { .. } => "tenant-added",
            AuditEvent::VpodFormed { .. } => "vpod-formed",
            AuditEvent::WindowCarved { .. } => "window-carved",
            AuditEvent::KeysProgrammed { .. } => "keys-programmed",
            AuditEvent::KeysRotated { .. } => "keys-rotated",
            AuditEvent::TdiLocked { .. } => "tdi-locked",
            AuditEvent::TdiReportIssued { .. } => "tdi-report-issued",
            AuditEvent::TdiAccepted { .. } => "tdi-accepted",
            AuditEvent::TdiStarted { .. } => "tdi-started",
            AuditEvent::TdiStopped { .. } => "tdi-stopped",
            AuditEvent::TdiError { .. } => "tdi-error",
            AuditEvent::CvmAttested { .. } => "cvm-attested",
            AuditEvent::CvmAttestedTdx { .. } => "cvm-attested-tdx",
            AuditEvent::ShareAllowed { .. } => "share-allowed",
            AuditEvent::ShareDenied { .. } => "share-denied",
            AuditEvent::AttachmentRevoked { .. } => "attachment-revoked",
            AuditEvent::TenantOffboarded { .. } => "tenant-offboarded",
        }
    }
}
