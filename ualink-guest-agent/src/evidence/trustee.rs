//! SNP evidence in the form a stock Trustee KBS reads ([`super::EvidenceFormat::Trustee`]).
//!
//! Trustee's SNP verifier deserializes `primary_evidence` with serde into
//! ```text
//! struct SnpEvidence {
//!     attestation_report: sev::firmware::guest::AttestationReport,
//!     cert_chain: Option<Vec<sev::firmware::host::CertTableEntry>>,
//! }
//! ```
//! so the report travels as the `sev` crate's serde form of its parsed fields (integers,
//! byte arrays as JSON arrays of numbers, `signature: {"r": [72], "s": [72]}`), not as bytes.
//! Trustee re-encodes that struct to check the signature. The reserved bytes of the report
//! are not fields of `AttestationReport`, so they do not travel: a report whose bytes `sev`
//! would not reproduce exactly (non-zero reserved bytes, a masked chip id in a version 2
//! report, an unknown CPU generation) would fail Trustee's signature check. [`snp_json`]
//! therefore re-encodes the parsed report and refuses to send it unless the result equals
//! the raw report byte for byte.
//!
//! `cert_chain` entries are `{"cert_type": "VCEK"|"VLEK"|"ASK", "data": [DER bytes]}`
//! (`CertTableEntry`'s serde form). A VCEK travels with its ASK. A VLEK travels alone,
//! because the certificate table has no type for its ASVK and Trustee takes the ASK and ASVK
//! from its own copy of AMD's chain anyway. `cert_chain` is `null` without certificates (Trustee
//! then fetches the VCEK from AMD KDS).

use crate::error::{Error, Result};
use serde::Serialize;
use sev::firmware::guest::AttestationReport;
use sev::firmware::host::{CertTableEntry, CertType};
use sev::parser::ByteParser as _;
use ualink_attest::snp::{SigningKey, SnpCerts, SnpReport, REPORT_LEN};

const WHAT: &str = "Trustee evidence format";

/// The serialized shape: the field names of Trustee's `SnpEvidence`.
#[derive(Serialize)]
struct SnpEvidence {
    attestation_report: AttestationReport,
    cert_chain: Option<Vec<CertTableEntry>>,
}

/// Parses `raw` with `sev` and checks that `sev` re-encodes it to exactly `raw`, so a
/// verifier holding only the parsed fields checks the signature over the signed bytes.
pub fn parse_exact(raw: &[u8]) -> Result<AttestationReport> {
    if raw.len() != REPORT_LEN {
        return Err(Error::platform(
            WHAT,
            format!("SNP report is {} bytes, expected {REPORT_LEN}", raw.len()),
        ));
    }
    let report = AttestationReport::from_bytes(raw).map_err(|e| {
        Error::platform(WHAT, format!("the sev crate cannot parse the report: {e}"))
    })?;
    let again = report.to_bytes().map_err(|e| {
        Error::platform(
            WHAT,
            format!("the sev crate cannot re-encode the report: {e}"),
        )
    })?;
    if again.as_slice() != raw {
        let first = again.iter().zip(raw).position(|(a, b)| a != b).unwrap_or(0);
        return Err(Error::platform(
            WHAT,
            format!(
                "the sev crate re-encodes the report differently from byte {first:#x} on \
                 (reserved bytes it does not carry?): Trustee would check the signature over \
                 other bytes than the firmware signed"
            ),
        ));
    }
    Ok(report)
}

/// Trustee's `SnpEvidence` JSON for the report `raw` and its certificates.
pub fn snp_json(raw: &[u8], certs: Option<&SnpCerts>) -> Result<serde_json::Value> {
    let attestation_report = parse_exact(raw)?;
    let vlek = SnpReport::parse(raw)
        .map(|r| r.signing_key == SigningKey::Vlek)
        .map_err(|e| Error::platform(WHAT, format!("SNP report: {e}")))?;
    let cert_chain = certs.map(|c| {
        let leaf_type = if vlek { CertType::VLEK } else { CertType::VCEK };
        let mut v = vec![CertTableEntry::new(leaf_type, c.leaf.clone())];
        if !vlek {
            v.extend(
                c.intermediates
                    .iter()
                    .map(|i| CertTableEntry::new(CertType::ASK, i.clone())),
            );
        }
        v
    });
    serde_json::to_value(SnpEvidence {
        attestation_report,
        cert_chain,
    })
    .map_err(|e| Error::platform(WHAT, format!("serializing: {e}")))
}
