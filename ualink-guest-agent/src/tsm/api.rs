//! The agent's side of the TSM service contract (`ualink-tsm/API.md`): the JSON bodies of
//! the agent endpoints, defined here because the guest agent does not depend on ualink-tsm.
//!
//! Requests are serialized exactly as the TSM expects (it refuses unknown fields).
//! Responses tolerate members added later (a newer TSM stays readable) but every member
//! listed here is required unless it is an `Option`.

use serde::{Deserialize, Serialize};

/// A right on a shared buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    /// Read.
    Read,
    /// Write.
    Write,
    /// Atomics.
    Atomic,
}

impl std::str::FromStr for Right {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "read" => Ok(Right::Read),
            "write" => Ok(Right::Write),
            "atomic" => Ok(Right::Atomic),
            other => Err(crate::Error::ApiMisuse {
                reason: format!("right {other:?} (read, write or atomic)"),
            }),
        }
    }
}

/// One certificate of the TSM evidence chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertEntry {
    /// `vcek`/`vlek` (the signing key) or `ask`/`asvk` (an intermediate).
    pub cert_type: String,
    /// Base64 DER.
    pub data: String,
}

/// `GET /ualink/v0/tsm`: the TSM's identity key, its evidence binding that key, and the CA
/// (whose key must be the same) its server certificates chain to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TsmInfo {
    /// Hex SEC1 P-384 identity public key.
    pub public_key: String,
    /// Base64 of the TSM's 1184-byte SNP-format report (report_data = SHA-384(public key)
    /// ‖ 0¹⁶).
    pub evidence: String,
    /// The report's VCEK/VLEK and ASK/ASVK.
    #[serde(default)]
    pub cert_chain: Vec<CertEntry>,
    /// The TSM CA certificate, PEM.
    pub ca_pem: String,
}

/// One TDI of the vPod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdiView {
    /// Accelerator ID.
    pub accelerator_id: u16,
    /// `CONFIG_UNLOCKED`, `CONFIG_LOCKED`, `RUN` or `ERROR`.
    pub state: String,
    /// The device's attestation epoch.
    pub epoch: u64,
    /// Hex SHA-384 of the current TDI report bundle, if one was issued.
    #[serde(default)]
    pub report_digest: Option<String>,
}

/// `GET /ualink/v0/tenants/{T}/vpod`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpodView {
    /// Tenant name.
    pub tenant: String,
    /// Accelerator IDs.
    pub members: Vec<u16>,
    /// Whether the tenant's lead agent supplies the link keys.
    pub lead_keys: bool,
    /// The members' TDIs.
    pub tdis: Vec<TdiView>,
    /// Sum of the members' epochs (changes when any member re-attests).
    pub epoch_sum: u64,
    /// The master keys a lead agent must supply, one per (TX accelerator, TX port, RX
    /// accelerator), if the TSM publishes the layout (else the lead derives it from its
    /// peers' TX ports).
    #[serde(default)]
    pub key_layout: Option<Vec<KeySlotView>>,
    /// The smallest key epoch the next lead key set may carry, if the TSM says (else 1, then
    /// one above the last set this agent programmed).
    #[serde(default)]
    pub next_key_epoch: Option<u32>,
}

/// One key a lead agent must supply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeySlotView {
    /// TX accelerator.
    pub tx: u16,
    /// Its TX port.
    pub port: u8,
    /// RX accelerator.
    pub rx: u16,
}

/// The identity the TSM claims for a device (not signed by the device; checked through
/// the tenant's device appraisal). Optional in the report answer: without it the agent uses
/// the tenant's own configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceClaimsView {
    /// Device name.
    pub device_id: String,
    /// Vendor.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Firmware version.
    pub firmware_version: String,
    /// DHE group of the TSM's SPDM session (policy name).
    pub dhe: String,
    /// AEAD of the TSM's SPDM session (policy name).
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
    /// The device identity claims, if the TSM sends them.
    #[serde(default)]
    pub device: Option<DeviceClaimsView>,
}

/// `POST .../accept` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TdiAccept {
    /// Hex SHA-384 of the bundle judged.
    pub report_digest: String,
}

/// `POST .../reject` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TdiReject {
    /// Hex SHA-384 of the bundle judged.
    pub report_digest: String,
    /// The failed checks (`check: reason`).
    pub failed_checks: Vec<String>,
}

/// A TDI state after accept or reject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdiStateView {
    /// The new state.
    pub state: String,
}

/// Answer to `POST /ualink/v0/tenants/{T}/keys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysProgrammed {
    /// Slots programmed.
    pub programmed: usize,
    /// Hex fingerprints of the programmed keys (never the keys).
    pub fingerprints: Vec<String>,
}

/// `POST /ualink/v0/tenants/{T}/exports` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
    pub rights: Vec<Right>,
    /// The exporter's OS instance (the TSM assumes 1 when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_instance: Option<u32>,
}

/// Answer to an export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCreated {
    /// Offer id, 16 hex digits.
    pub offer_id: String,
    /// The driver's buffer handle, 32 hex digits.
    pub buffer: String,
}

/// `POST /ualink/v0/tenants/{T}/imports` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportRequest {
    /// The offer.
    pub offer_id: String,
    /// The importing OS instance (must be the offer's `to_os`).
    pub os_instance: u32,
    /// The importing accelerator.
    pub accelerator_id: u16,
    /// Rights requested (a subset of the offer's).
    pub rights: Vec<Right>,
}

/// Answer to an allowed import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportGranted {
    /// Base64 of the COSE_Sign1 import grant (for the kernel driver).
    pub grant: String,
    /// The buffer handle the grant is for, 32 hex digits (if the TSM says).
    #[serde(default)]
    pub buffer: Option<String>,
    /// The deciding rules.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Expiry on the pod clock, ns.
    pub expiry_ns: u64,
}

/// One event for the tenant's agents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number (increasing).
    pub seq: u64,
    /// `epoch_changed`, `tdi_stopped`, `revoked`, `keys_rotated`, `tdi_error`, or a kind
    /// added later (kept as text).
    pub kind: String,
    /// The accelerator concerned, if any.
    #[serde(default)]
    pub accelerator_id: Option<u16>,
    /// Human detail.
    #[serde(default)]
    pub detail: String,
}

/// `GET /ualink/v0/tenants/{T}/events?after=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Events {
    /// Events with `seq > after`, oldest first.
    pub events: Vec<Event>,
    /// The `after` to poll with next.
    pub next: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requests_encode_as_the_contract_says() {
        let e = ExportRequest {
            accelerator_id: 1,
            window_base: 0x1000,
            offset: 0,
            len: 4096,
            to_tenant: "b".into(),
            to_os: 2,
            rights: vec![Right::Read, Right::Atomic],
            os_instance: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"accelerator_id":1,"window_base":4096,"offset":0,"len":4096,"to_tenant":"b","to_os":2,"rights":["read","atomic"]}"#
        );
        let r = TdiReject {
            report_digest: "ab".into(),
            failed_checks: vec!["verification: x".into()],
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"report_digest":"ab","failed_checks":["verification: x"]}"#
        );
    }

    #[test]
    fn responses_tolerate_additions_but_need_their_members() {
        let v: VpodView = serde_json::from_str(
            r#"{"tenant":"a","members":[1,2],"lead_keys":true,"tdis":[{"accelerator_id":1,
            "state":"RUN","epoch":3,"report_digest":null,"new":1}],"epoch_sum":3,"x":0}"#,
        )
        .unwrap();
        assert_eq!(v.tdis[0].report_digest, None);
        assert!(serde_json::from_str::<VpodView>(r#"{"tenant":"a","members":[]}"#).is_err());
        let ev: Events = serde_json::from_str(
            r#"{"events":[{"seq":4,"kind":"epoch_changed","accelerator_id":2,"detail":"d"}],"next":4}"#,
        )
        .unwrap();
        assert_eq!(ev.events[0].accelerator_id, Some(2));
        assert!("exec".parse::<Right>().is_err());
    }
}
