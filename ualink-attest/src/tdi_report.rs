//! The TDI report bundle: a TDISP device interface report, the device evidence it rests on and
//! the TSM's signature over both, with the TSM's own evidence binding its signing key.
//!
//! A tenant's guest agent (or an auditor) verifies it offline: the TSM key is trusted only
//! because its TEE evidence (an SEV-SNP report, or the `sim` platform's report under an
//! explicitly trusted root) commits to it; the device evidence is re-verified from its own
//! bytes; the TSM's signature binds the interface report, interface, state, tenant,
//! accelerator, attestation epoch and time to that device evidence.
//!
//! # Format (version 1): deterministic CBOR (see [`crate::spdm_evidence`] for the rules)
//!
//! ```text
//! TdiReportBundle = {
//!   0 => 1,                    ; format version; any other value fails closed
//!   1 => bstr,                 ; COSE_Sign1 (untagged) by the TSM key, payload TdiReportPayload
//!   2 => bstr,                 ; the device evidence bundle (crate::spdm_evidence), as recorded
//!   3 => bstr .size 97,        ; the TSM public key: SEC1 uncompressed P-384 point
//!   4 => TsmEvidence,
//! }
//! TsmEvidence = [1,            ; 1 = an SEV-SNP-format report (AMD SEV-SNP or sim)
//!                bstr,         ;   the 1184-byte report, as received
//!                bstr,         ;   its VCEK/VLEK, DER
//!                [* bstr]]     ;   intermediates (ASK/ASVK), DER; roots come from the verifier
//!   ; report_data = SHA-384(TSM public key) ‖ 16 zero bytes
//! COSE_Sign1 protected header = { 1 (alg) => -35 (ES384),
//!                                 3 (content type) => "application/ualink-tdi-report+cbor",
//!                                 4 (kid) => SHA-384(TSM public key) }, unprotected = {},
//!            signature = r ‖ s (96 bytes), external_aad = empty
//! TdiReportPayload = {
//!   0 => 1,                    ; payload version
//!   1 => bstr,                 ; DEVICE_INTERFACE_REPORT as assembled from its portions
//!   2 => uint,                 ; INTERFACE_ID (TDISP FUNCTION_ID)
//!   3 => uint .le 3,           ; TDI state when signed (0 CONFIG_UNLOCKED, 1 CONFIG_LOCKED, 2 RUN, 3 ERROR)
//!   4 => bstr .size 48,        ; SHA-384 of the device evidence bundle (key 2) as encoded
//!   5 => tstr,                 ; tenant id
//!   6 => uint .le 1023,        ; accelerator id (UALink, 10 bits)
//!   7 => uint,                 ; attestation epoch
//!   8 => int,                  ; issued at (unix seconds, UTC)
//! }
//! ```
//!
//! # Verification ([`TdiReportVerifier::verify`])
//! 1. decode the bundle strictly; the TSM key is a P-384 point;
//! 2. the COSE_Sign1: alg ES384, the content type above, no `crit`, kid = SHA-384 of the TSM
//!    key, signature checked with that key over the protected header and payload as received;
//! 3. the TSM evidence with the caller's [`SnpVerifier`] (AMD roots, or an explicit sim ARK),
//!    its report_data equal to SHA-384(TSM key) ‖ zeros;
//! 4. the payload decoded strictly; its device-evidence digest equals SHA-384 of key 2;
//! 5. the device evidence bundle verified ([`DeviceEvidenceVerifier`]), taken no later than
//!    the report was issued;
//! 6. the interface report parsed strictly (ualink-spdm's TDISP codec), the interface id and
//!    state are valid values.

use crate::cose::{verify_sign1, Es384Key, Sign1Failure};
use crate::error::{Error, Result};
use crate::snp::{SnpCerts, SnpVerifier, VerifiedSnpReport};
use crate::spdm_evidence::{
    array, bytes_of, cbor_decode, cbor_encode, sha384, uint, uint_of, CborMap,
    DeviceEvidenceVerifier, ExpectedNonce, VerifiedDeviceEvidence,
};
use crate::{ExpectedReportData, UnixTime};
use ciborium::value::Value;
use std::fmt;
use ualink_spdm::tdisp::msg::{InterfaceId, InterfaceReport};
use ualink_spdm::tdisp::TdiState;

/// The only bundle and payload format version this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;
/// The COSE content type of the signed payload.
pub const CONTENT_TYPE: &str = "application/ualink-tdi-report+cbor";
/// TsmEvidence kind 1: an SEV-SNP-format attestation report (AMD or sim).
pub const TSM_EVIDENCE_SNP: u64 = 1;

const WHAT: &str = "TDI report bundle";
const PAYLOAD: &str = "TDI report payload";
const MAX_BUNDLE_LEN: usize = 2 << 20;
const P384_POINT_LEN: usize = 97;

/// The report_data a TSM's evidence must carry: SHA-384 of its SEC1 public key, then 16 zero
/// bytes.
pub fn tsm_report_data(tsm_public_key: &[u8]) -> [u8; 64] {
    let mut rd = [0u8; 64];
    rd[..48].copy_from_slice(&sha384(tsm_public_key));
    rd
}

/// Whether `bytes` start like a version-1 TDI report bundle (structural markers only: a
/// 5-entry map, key 0 = 1, key 1 = a byte string). Nothing is verified; for
/// `ualink-attest verify`'s type detection.
pub fn looks_like_bundle(bytes: &[u8]) -> bool {
    matches!(bytes, [0xA5, 0x00, 0x01, 0x01, major, ..] if *major >> 5 == 2)
}

/// The TSM's report-signing key (ECDSA P-384). The private key never leaves it; `Debug`
/// shows only the key id.
pub struct TsmSigningKey {
    key: Es384Key,
}

impl fmt::Debug for TsmSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsmSigningKey")
            .field("kid", &hex::encode(sha384(self.public_key())))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TsmSigningKey {
    /// A key from its PKCS#8 (P-384) encoding.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        Ok(Self {
            key: Es384Key::from_pkcs8(pkcs8, "TSM signing key")?,
        })
    }

    /// A fresh key and its PKCS#8 encoding (zeroized on drop).
    pub fn generate() -> Result<(Self, zeroize::Zeroizing<Vec<u8>>)> {
        let pkcs8 = Es384Key::generate_pkcs8("generating a TSM signing key")?;
        Ok((Self::from_pkcs8(&pkcs8)?, pkcs8))
    }

    /// The SEC1 uncompressed public key (97 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key()
    }

    /// The report_data the TSM's own evidence must carry ([`tsm_report_data`]).
    pub fn report_data(&self) -> [u8; 64] {
        tsm_report_data(self.public_key())
    }
}

/// The TSM's own TEE evidence, binding its public key through report_data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TsmEvidence {
    /// An SEV-SNP-format report (AMD SEV-SNP, or the sim platform) with its certificates.
    SnpReport {
        /// The 1184-byte report as produced.
        report: Vec<u8>,
        /// Its VCEK/VLEK and intermediates.
        certs: SnpCerts,
    },
}

/// What the TSM signs about one TDI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdiReportContent {
    /// DEVICE_INTERFACE_REPORT as assembled from its portions.
    pub interface_report: Vec<u8>,
    /// The TDI's INTERFACE_ID.
    pub interface_id: InterfaceId,
    /// The TDI state when the TSM signed.
    pub state: TdiState,
    /// The tenant the TDI is assigned to.
    pub tenant_id: String,
    /// The accelerator's UALink ID (10 bits).
    pub accelerator_id: u16,
    /// The attestation epoch of the device evidence.
    pub epoch: u64,
    /// When the TSM signed.
    pub issued_at: UnixTime,
}

/// The producer side (the TSM).
#[derive(Debug)]
pub struct TdiReportBundle;

impl TdiReportBundle {
    /// Signs `content` bound to `device_bundle` (an encoded device evidence bundle) with the
    /// TSM key, and packs it with the TSM's evidence. Refuses a report that does not parse, an
    /// accelerator id above 1023 and evidence that does not commit to `key`'s public key.
    pub fn sign(
        content: &TdiReportContent,
        device_bundle: &[u8],
        tsm_evidence: &TsmEvidence,
        key: &TsmSigningKey,
    ) -> Result<Vec<u8>> {
        InterfaceReport::parse(&content.interface_report)
            .map_err(|e| Error::malformed("TDISP device interface report", e.to_string()))?;
        if content.accelerator_id > 0x3FF {
            return Err(Error::ApiMisuse {
                reason: "accelerator id exceeds 10 bits",
            });
        }
        let TsmEvidence::SnpReport { report, .. } = tsm_evidence;
        if crate::snp::SnpReport::parse(report)?.report_data != key.report_data() {
            return Err(Error::ApiMisuse {
                reason: "TSM evidence report_data does not commit to this key",
            });
        }
        let payload = encode_payload(content, &sha384(device_bundle))?;
        let cose = sign_payload(payload, key)?;
        encode_bundle(&cose, device_bundle, key.public_key(), tsm_evidence)
    }
}

/// Signs `payload` bytes into a COSE_Sign1 with the format's protected header. No check is
/// made on the payload: [`TdiReportBundle::sign`] is the checked path; this one lets tests and
/// tools build bundles the verifier must refuse.
pub fn sign_payload(payload: Vec<u8>, key: &TsmSigningKey) -> Result<Vec<u8>> {
    key.key.sign1(
        payload,
        &sha384(key.public_key()),
        Some(CONTENT_TYPE),
        "signing a TDI report",
        WHAT,
    )
}

/// The deterministic CBOR payload the TSM signs.
pub fn encode_payload(content: &TdiReportContent, device_digest: &[u8; 48]) -> Result<Vec<u8>> {
    let v = Value::Map(vec![
        (uint(0), uint(FORMAT_VERSION)),
        (uint(1), Value::Bytes(content.interface_report.clone())),
        (uint(2), uint(u64::from(content.interface_id.function_id()))),
        (uint(3), uint(u64::from(content.state.to_wire()))),
        (uint(4), Value::Bytes(device_digest.to_vec())),
        (uint(5), Value::Text(content.tenant_id.clone())),
        (uint(6), uint(u64::from(content.accelerator_id))),
        (uint(7), uint(content.epoch)),
        (uint(8), Value::Integer(content.issued_at.secs().into())),
    ]);
    cbor_encode(&v, PAYLOAD)
}

/// Packs the bundle (the outer map).
pub fn encode_bundle(
    cose: &[u8],
    device_bundle: &[u8],
    tsm_public_key: &[u8],
    tsm_evidence: &TsmEvidence,
) -> Result<Vec<u8>> {
    let TsmEvidence::SnpReport { report, certs } = tsm_evidence;
    let ev = Value::Array(vec![
        uint(TSM_EVIDENCE_SNP),
        Value::Bytes(report.clone()),
        Value::Bytes(certs.leaf.clone()),
        Value::Array(
            certs
                .intermediates
                .iter()
                .cloned()
                .map(Value::Bytes)
                .collect(),
        ),
    ]);
    let v = Value::Map(vec![
        (uint(0), uint(FORMAT_VERSION)),
        (uint(1), Value::Bytes(cose.to_vec())),
        (uint(2), Value::Bytes(device_bundle.to_vec())),
        (uint(3), Value::Bytes(tsm_public_key.to_vec())),
        (uint(4), ev),
    ]);
    cbor_encode(&v, WHAT)
}

/// A TDI report bundle that passed every check of [`TdiReportVerifier::verify`].
#[derive(Clone, Debug)]
pub struct VerifiedTdiReport {
    /// What the TSM signed (the interface report as assembled, interface, state, tenant,
    /// accelerator, epoch, time).
    pub content: TdiReportContent,
    /// The interface report, parsed.
    pub interface_report: InterfaceReport,
    /// The device evidence the report rests on, verified.
    pub device: VerifiedDeviceEvidence,
    /// The TSM's own evidence, verified (its `root` says AMD or explicit/sim).
    pub tsm: VerifiedSnpReport,
    /// SHA-384 of the TSM public key (the COSE kid).
    pub tsm_key_fingerprint: [u8; 48],
}

impl VerifiedTdiReport {
    /// A JSON summary for reports and `ualink-attest verify --json` (fingerprints, not keys).
    pub fn to_json(&self) -> serde_json::Value {
        let c = &self.content;
        let r = &self.interface_report;
        serde_json::json!({
            "type": "tdi-report",
            "interface_id": format!("{:#010x}", c.interface_id.function_id()),
            "state": format!("{:?}", c.state),
            "tenant": c.tenant_id,
            "accelerator_id": c.accelerator_id,
            "epoch": c.epoch,
            "issued_at": c.issued_at.secs(),
            "interface_report": {
                "sha384": hex::encode(sha384(&c.interface_report)),
                "interface_info": format!("{:#x}", r.interface_info.bits()),
                "mmio_ranges": r.mmio_ranges.iter().map(|m| serde_json::json!({
                    "first_page": format!("{:#x}", m.first_page),
                    "pages": m.number_of_pages,
                    "attributes": format!("{:#x}", m.attributes.bits()),
                    "range_id": m.range_id,
                })).collect::<Vec<_>>(),
                "device_specific_info": hex::encode(&r.device_specific_info),
            },
            "tsm_key_sha384": hex::encode(self.tsm_key_fingerprint),
            "tsm_evidence": {
                "type": "snp-report",
                "root": match &self.tsm.root {
                    crate::pki::AnchorOrigin::AmdBuiltin(g) => format!("AMD {g:?} ARK (built in)"),
                    crate::pki::AnchorOrigin::Explicit => {
                        "explicitly trusted root (not an AMD root: sim or --trust)".to_string()
                    }
                },
                "measurement": hex::encode(self.tsm.report.measurement),
                "vcek_sha384": hex::encode(self.tsm.leaf_fingerprint),
                "report_data_checked": self.tsm.report_data_checked,
            },
            "device": self.device.to_json(),
        })
    }
}

/// Verifies TDI report bundles: device evidence under device vendor roots, TSM evidence
/// under TEE roots.
#[derive(Clone, Debug)]
pub struct TdiReportVerifier {
    device: DeviceEvidenceVerifier,
    tsm: SnpVerifier,
}

impl TdiReportVerifier {
    /// A verifier from a device evidence verifier and a TSM evidence verifier.
    pub fn new(device: DeviceEvidenceVerifier, tsm: SnpVerifier) -> Self {
        Self { device, tsm }
    }

    /// Runs every check listed in the module documentation on `bundle` as received;
    /// `device_nonce` is what the device's signed GET_MEASUREMENTS must carry.
    pub fn verify(
        &self,
        bundle: &[u8],
        device_nonce: &ExpectedNonce,
        now: UnixTime,
    ) -> Result<VerifiedTdiReport> {
        if bundle.len() > MAX_BUNDLE_LEN {
            return Err(Error::malformed(WHAT, "larger than 2 MiB"));
        }
        let mut m = CborMap::new(cbor_decode(bundle, WHAT)?, WHAT)?;
        let version = m.take_uint(0)?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        let cose = m.take_bytes(1)?;
        let device_bundle = m.take_bytes(2)?;
        let tsm_key = m.take_bytes(3)?;
        let evidence = decode_tsm_evidence(m.take(4)?)?;
        m.finish()?;
        if tsm_key.len() != P384_POINT_LEN || tsm_key.first() != Some(&0x04) {
            return Err(Error::malformed(
                WHAT,
                "TSM key is not an uncompressed P-384 point",
            ));
        }
        let kid = sha384(&tsm_key);

        let payload = verify_cose(&cose, &tsm_key, &kid)?;

        let TsmEvidence::SnpReport { report, certs } = &evidence;
        let tsm = self.tsm.verify(
            report,
            certs,
            &ExpectedReportData::Expected(tsm_report_data(&tsm_key)),
            now,
        )?;

        let (content, device_digest) = decode_payload(&payload)?;
        if device_digest != sha384(&device_bundle) {
            return Err(Error::BindingMismatch {
                field: "signed device evidence digest",
            });
        }
        let device = self.device.verify(&device_bundle, device_nonce, now)?;
        if device.taken_at > content.issued_at {
            return Err(Error::BindingMismatch {
                field: "device evidence taken after the TDI report was issued",
            });
        }
        let interface_report = InterfaceReport::parse(&content.interface_report)
            .map_err(|e| Error::malformed("TDISP device interface report", e.to_string()))?;
        Ok(VerifiedTdiReport {
            content,
            interface_report,
            device,
            tsm,
            tsm_key_fingerprint: kid,
        })
    }
}

/// Checks the COSE_Sign1 and returns its payload.
fn verify_cose(cose: &[u8], tsm_key: &[u8], kid: &[u8; 48]) -> Result<Vec<u8>> {
    const COSE: &str = "TDI report COSE_Sign1";
    verify_sign1(cose, tsm_key, kid, Some(CONTENT_TYPE)).map_err(|f| match f {
        Sign1Failure::Malformed(e) => Error::malformed(COSE, e),
        Sign1Failure::Algorithm(detail) => Error::UnsupportedAlgorithm { what: COSE, detail },
        Sign1Failure::Crit => Error::UnsupportedAlgorithm {
            what: COSE,
            detail: "crit header".into(),
        },
        Sign1Failure::ContentType => Error::malformed(COSE, "content type is not a TDI report"),
        Sign1Failure::Kid => Error::BindingMismatch {
            field: "COSE kid vs the bundle's TSM key",
        },
        Sign1Failure::Signature => Error::BadSignature {
            check: "TDI report COSE_Sign1 signed by the TSM key",
        },
        Sign1Failure::Detached => Error::malformed(COSE, "detached payload"),
    })
}

fn decode_tsm_evidence(v: Value) -> Result<TsmEvidence> {
    let items = array(v, WHAT, "TSM evidence")?;
    let [kind, report, leaf, inter]: [Value; 4] = items
        .try_into()
        .map_err(|_| Error::malformed(WHAT, "TSM evidence is not [kind, report, leaf, [..]]"))?;
    let kind = uint_of(kind, WHAT, "TSM evidence kind")?;
    if kind != TSM_EVIDENCE_SNP {
        return Err(Error::UnsupportedVersion {
            what: "TSM evidence kind",
            version: u32::try_from(kind).unwrap_or(u32::MAX),
        });
    }
    let intermediates = array(inter, WHAT, "TSM evidence intermediates")?
        .into_iter()
        .map(|c| bytes_of(c, WHAT, "TSM intermediate certificate"))
        .collect::<Result<Vec<_>>>()?;
    if intermediates.len() > 4 {
        return Err(Error::malformed(WHAT, "more than 4 TSM intermediates"));
    }
    Ok(TsmEvidence::SnpReport {
        report: bytes_of(report, WHAT, "TSM report")?,
        certs: SnpCerts {
            leaf: bytes_of(leaf, WHAT, "TSM signing certificate")?,
            intermediates,
        },
    })
}

fn decode_payload(bytes: &[u8]) -> Result<(TdiReportContent, [u8; 48])> {
    let mut m = CborMap::new(cbor_decode(bytes, PAYLOAD)?, PAYLOAD)?;
    let version = m.take_uint(0)?;
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            what: PAYLOAD,
            version: u32::try_from(version).unwrap_or(u32::MAX),
        });
    }
    let interface_report = m.take_bytes(1)?;
    let function_id = u32::try_from(m.take_uint(2)?)
        .map_err(|_| Error::malformed(PAYLOAD, "interface id exceeds 32 bits"))?;
    let interface_id = InterfaceId::new(function_id)
        .map_err(|e| Error::malformed(PAYLOAD, format!("interface id: {e}")))?;
    let state = u8::try_from(m.take_uint(3)?)
        .map_err(|_| Error::malformed(PAYLOAD, "TDI state out of range"))
        .and_then(|s| {
            TdiState::from_wire(s).map_err(|e| Error::malformed(PAYLOAD, e.to_string()))
        })?;
    let digest = <[u8; 48]>::try_from(m.take_bytes(4)?.as_slice())
        .map_err(|_| Error::malformed(PAYLOAD, "device evidence digest is not 48 bytes"))?;
    let tenant_id = m.take_text(5)?;
    let accelerator_id = u16::try_from(m.take_uint(6)?)
        .ok()
        .filter(|a| *a <= 0x3FF)
        .ok_or_else(|| Error::malformed(PAYLOAD, "accelerator id exceeds 10 bits"))?;
    let epoch = m.take_uint(7)?;
    let issued_at = UnixTime::from_secs(m.take_int(8)?);
    m.finish()?;
    Ok((
        TdiReportContent {
            interface_report,
            interface_id,
            state,
            tenant_id,
            accelerator_id,
            epoch,
            issued_at,
        },
        digest,
    ))
}
