//! Recognising an evidence item from its bytes (for `ualink-attest verify FILE`).

use crate::snp::REPORT_LEN;

/// The evidence types `ualink-attest verify` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceKind {
    /// An SEV-SNP attestation report (real or `sim`: the root tells them apart).
    SnpReport,
    /// An Intel TDX quote (v4/v5 header with TEE type TDX), possibly zero-padded.
    TdxQuote,
    /// An audit log file (`UALINKAL` magic).
    AuditLog,
    /// An SPDM device evidence bundle ([`crate::spdm_evidence`]).
    DeviceEvidence,
    /// A TDI report bundle ([`crate::tdi_report`]).
    TdiReport,
}

/// If `bytes` is ASCII hex (whitespace allowed), its decoding; otherwise the bytes as given.
pub fn decode_hex_or_binary(bytes: &[u8]) -> Vec<u8> {
    let compact: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !compact.is_empty() && compact.iter().all(u8::is_ascii_hexdigit) {
        if let Ok(d) = hex::decode(&compact) {
            return d;
        }
    }
    bytes.to_vec()
}

/// Recognises the evidence type from structural markers only (nothing is verified).
pub fn detect(bytes: &[u8]) -> Option<EvidenceKind> {
    if bytes.starts_with(crate::audit::file::MAGIC) {
        return Some(EvidenceKind::AuditLog);
    }
    if crate::spdm_evidence::looks_like_bundle(bytes) {
        return Some(EvidenceKind::DeviceEvidence);
    }
    if crate::tdi_report::looks_like_bundle(bytes) {
        return Some(EvidenceKind::TdiReport);
    }
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if matches!(u16_at(0), Some(4 | 5)) && u32_at(4) == Some(0x81) {
        return Some(EvidenceKind::TdxQuote);
    }
    if bytes.len() == REPORT_LEN {
        return Some(EvidenceKind::SnpReport);
    }
    None
}
