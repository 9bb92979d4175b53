//! The JSON bodies of the service (reference: `ualink-tsm/API.md`). Requests refuse unknown
//! fields; field names are snake_case.

use serde::{Deserialize, Serialize};

/// A right on a shared buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RightName {
    /// Read.
    Read,
    /// Write.
    Write,
    /// Atomics.
    Atomic,
}

impl From<RightName> for ualink_policy::input::Right {
    fn from(r: RightName) -> Self {
        match r {
            RightName::Read => ualink_policy::input::Right::Read,
            RightName::Write => ualink_policy::input::Right::Write,
            RightName::Atomic => ualink_policy::input::Right::Atomic,
        }
    }
}

// ------------------------------------------------------------------ provider requests

/// `POST /ualink/v0/tenants`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantCreate {
    /// Tenant number (kdrv tenant id).
    pub id: u32,
    /// Tenant name (the policy's tenant id and the path segment `{T}`).
    pub name: String,
    /// The tenant's lead agent generates the link keys (`POST .../keys`); otherwise the
    /// provider asks the TSM to generate them (`POST .../keys/provision`).
    #[serde(default)]
    pub lead_keys: bool,
}

/// `POST /ualink/v0/tenants/{T}/vpod`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpodCreate {
    /// Accelerator ids.
    pub members: Vec<u16>,
}

/// `POST /ualink/v0/tenants/{T}/windows`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowCreate {
    /// The accelerator whose memory is carved.
    pub accelerator_id: u16,
    /// Base address in its memory.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Response of `POST /ualink/v0/tenants/{T}/windows`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCreated {
    /// The driver's window id.
    pub window_id: u32,
}

// ------------------------------------------------------------------ agent requests

/// `POST /ualink/v0/tenants/{T}/tdis/{accel}/accept`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdiAccept {
    /// Hex SHA-384 of the TDI report bundle the agent judged.
    pub report_digest: String,
}

/// `POST /ualink/v0/tenants/{T}/tdis/{accel}/reject`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdiReject {
    /// Hex SHA-384 of the TDI report bundle the agent judged.
    pub report_digest: String,
    /// The checks that failed (recorded in the audit log).
    pub failed_checks: Vec<String>,
}

/// One agent-generated link key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentKey {
    /// TX accelerator.
    pub tx: u16,
    /// TX port.
    pub port: u8,
    /// RX accelerator (the peer).
    pub rx: u16,
    /// Base64 of the 32-byte master key (zeroized after programming).
    pub key: SecretString,
}

/// A string holding secret material: zeroized on drop, never printed.
#[derive(Clone)]
pub struct SecretString(pub zeroize::Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretString(zeroize::Zeroizing::new(s)))
    }
}

impl core::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl core::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AgentKey")
            .field("tx", &self.tx)
            .field("port", &self.port)
            .field("rx", &self.rx)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// `POST /ualink/v0/tenants/{T}/keys`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentKeys {
    /// The key epoch the agent generated for.
    pub epoch: u32,
    /// The keys.
    pub keys: Vec<AgentKey>,
}

/// Response of key programming (agent or provider).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysProgrammed {
    /// Slots programmed.
    pub programmed: usize,
    /// Hex fingerprints of the programmed keys (never the keys).
    pub fingerprints: Vec<String>,
}

/// `POST /ualink/v0/tenants/{T}/exports`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The exporter's accelerator (owner of the window).
    pub accelerator_id: u16,
    /// Base of the window the buffer lies in.
    pub window_base: u64,
    /// Offset of the buffer in the window.
    pub offset: u64,
    /// Length of the buffer.
    pub len: u64,
    /// The importing tenant's name.
    pub to_tenant: String,
    /// The importing OS instance.
    pub to_os: u32,
    /// Rights offered.
    pub rights: Vec<RightName>,
    /// The exporter's OS instance (default 1).
    #[serde(default)]
    pub os_instance: Option<u32>,
}

/// Response of an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCreated {
    /// Offer id, 16 hex digits.
    pub offer_id: String,
    /// The driver's buffer handle, 32 hex digits.
    pub buffer: String,
}

/// `POST /ualink/v0/tenants/{T}/imports`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The offer.
    pub offer_id: String,
    /// The importing OS instance (must be the offer's `to_os`).
    pub os_instance: u32,
    /// The importing accelerator.
    pub accelerator_id: u16,
    /// Rights requested (a subset of the offer's).
    pub rights: Vec<RightName>,
}

/// Response of an allowed import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportGranted {
    /// Base64 of the COSE_Sign1 ImportGrant.
    pub grant: String,
    /// The buffer handle the grant is for, 32 hex digits.
    pub buffer: String,
    /// Deciding rules.
    pub rules: Vec<String>,
    /// Expiry (pod clock, ns).
    pub expiry_ns: u64,
}

// ------------------------------------------------------------------ responses

/// One certificate of the TSM evidence chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertEntry {
    /// `vcek` or `ask`.
    pub cert_type: String,
    /// Base64 DER.
    pub data: String,
}

/// `GET /ualink/v0/tsm`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TsmInfo {
    /// Hex SEC1 P-384 identity public key.
    pub public_key: String,
    /// Base64 of the TSM's 1184-byte SNP-format report (report_data = SHA-384(public key) ‖ 0¹⁶).
    pub evidence: String,
    /// The report's VCEK and ASK (base64 DER), as in the agent's KBS evidence.
    pub cert_chain: Vec<CertEntry>,
    /// `tsm-ca.pem` (its key is `public_key`).
    pub ca_pem: String,
}

/// A TDI of a vPod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdiView {
    /// Accelerator.
    pub accelerator_id: u16,
    /// `CONFIG_UNLOCKED`, `CONFIG_LOCKED`, `RUN` or `ERROR`.
    pub state: String,
    /// The device's attestation epoch.
    pub epoch: u64,
    /// Hex SHA-384 of the current TDI report bundle, if one was issued.
    pub report_digest: Option<String>,
}

/// `GET /ualink/v0/tenants/{T}/vpod`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpodView {
    /// Tenant name.
    pub tenant: String,
    /// Accelerator ids.
    pub members: Vec<u16>,
    /// Whether the tenant's lead agent supplies the link keys.
    pub lead_keys: bool,
    /// TDIs of the members.
    pub tdis: Vec<TdiView>,
    /// Sum of the members' epochs (changes when any member re-attests).
    pub epoch_sum: u64,
    /// The link keys a lead agent must supply (`POST .../keys`): one per (TX accelerator,
    /// its TX port, RX accelerator) on every switch plane joining two members.
    pub key_layout: Vec<KeySlotId>,
    /// The smallest key epoch the next lead key set may carry (epochs are never reused).
    pub next_key_epoch: u32,
}

/// One directed link key slot of a vPod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlotId {
    /// TX accelerator.
    pub tx: u16,
    /// Its TX port.
    pub port: u8,
    /// RX accelerator.
    pub rx: u16,
}

/// What the TSM says about a device's identity (from its appraisal and the ALGORITHMS
/// message of its evidence bundle; not signed by the device: the agent checks it through
/// the bundle and its own device appraisal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceClaimsView {
    /// `accel-NNNN`.
    pub device_id: String,
    /// Vendor.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Firmware version.
    pub firmware_version: String,
    /// Negotiated DHE group (`secp256r1`, `secp384r1`).
    pub dhe: String,
    /// Negotiated AEAD (`aes-256-gcm`).
    pub aead: String,
}

/// `GET /ualink/v0/tenants/{T}/tdis/{accel}/report`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdiReportView {
    /// Base64 of the signed TDI report bundle (CBOR).
    pub bundle: String,
    /// Hex SHA-384 of the bundle.
    pub report_digest: String,
    /// The device epoch.
    pub epoch: u64,
    /// The device's identity claims, when the TSM holds its evidence.
    pub device: Option<DeviceClaimsView>,
}

/// A TDI state after accept/reject/lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdiStateView {
    /// The new state.
    pub state: String,
}

/// One event for a tenant's agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number (increasing, global).
    pub seq: u64,
    /// `epoch_changed`, `tdi_stopped`, `revoked`, `keys_rotated`, `tdi_error`.
    pub kind: String,
    /// The accelerator concerned, if any.
    pub accelerator_id: Option<u16>,
    /// Human detail.
    pub detail: String,
}

/// `GET /ualink/v0/tenants/{T}/events?after=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Events {
    /// Events with `seq > after`, oldest first (at most 256).
    pub events: Vec<Event>,
    /// The `after` to poll with next.
    pub next: u64,
}

/// Device counts of `GET /ualink/v0/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCounts {
    /// Attested.
    pub attested: usize,
    /// Quarantined.
    pub quarantined: usize,
    /// Not yet attested.
    pub pending: usize,
}

/// Audit log facts of `GET /ualink/v0/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditStatus {
    /// Records in the log.
    pub records: u64,
    /// Log file size in bytes.
    pub size: u64,
    /// Whether the log is writable (decisions are refused otherwise).
    pub writable: bool,
}

/// `GET /ualink/v0/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Device counts.
    pub devices: DeviceCounts,
    /// Tenants.
    pub tenants: usize,
    /// vPods.
    pub vpods: usize,
    /// The audit log.
    pub audit: AuditStatus,
    /// Hex SHA-384 of the policy bundle in force.
    pub policy_digest: String,
}

/// `GET /kbs/v0/resource/<T>/vpod/config`: the vPod as the agent sees it.
pub type VpodConfig = VpodView;
