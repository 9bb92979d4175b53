//! The SEV-SNP certificate table (GHCB spec, "SNP Extended Guest Request"): what
//! `SNP_GET_EXT_REPORT` and configfs-tsm's `auxblob` return beside an SNP report.
//!
//! # Layout
//! ```text
//! entry[0..n]: guid[16] (RFC 4122 byte order, as virtee/sev reads it)
//!              offset: u32 LE   (from the start of the table)
//!              length: u32 LE
//! terminator:  24 zero bytes
//! then the certificates (DER) at the offsets the entries give
//! ```
//! Parsing refuses a missing terminator, an entry pointing outside the buffer, more than
//! [`MAX_ENTRIES`] entries, and a GUID listed twice. Unknown GUIDs are kept as
//! [`CertKind::Other`].

use crate::error::{Error, Result};
use ualink_attest::snp::SnpCerts;

/// The most entries accepted (the spec defines five kinds).
pub const MAX_ENTRIES: usize = 16;
const ENTRY_LEN: usize = 24;
const WHAT: &str = "SNP certificate table";

/// VCEK `63da758d-e664-4564-adc5-f4b93be8accd`.
pub const GUID_VCEK: [u8; 16] = guid(0x63da758d, 0xe664, 0x4564, 0xadc5_f4b93be8accd);
/// VLEK `a8074bc2-a25a-483e-aae6-39c045a0b8a1`.
pub const GUID_VLEK: [u8; 16] = guid(0xa8074bc2, 0xa25a, 0x483e, 0xaae6_39c045a0b8a1);
/// ASK `4ab7b379-bbac-4fe4-a02f-05aef327c782`.
pub const GUID_ASK: [u8; 16] = guid(0x4ab7b379, 0xbbac, 0x4fe4, 0xa02f_05aef327c782);
/// ARK `c0b406a4-a803-4952-9743-3fb6014cd0ae`.
pub const GUID_ARK: [u8; 16] = guid(0xc0b406a4, 0xa803, 0x4952, 0x9743_3fb6014cd0ae);

const fn guid(a: u32, b: u16, c: u16, d: u64) -> [u8; 16] {
    let a = a.to_be_bytes();
    let b = b.to_be_bytes();
    let c = c.to_be_bytes();
    let d = d.to_be_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// What a table entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// Versioned chip endorsement key.
    Vcek,
    /// Versioned loaded endorsement key.
    Vlek,
    /// AMD SEV signing key (intermediate).
    Ask,
    /// AMD root key (ignored for trust: roots come from the verifier).
    Ark,
    /// Any other GUID.
    Other([u8; 16]),
}

impl CertKind {
    /// The kind for `guid`.
    pub fn from_guid(guid: [u8; 16]) -> Self {
        match guid {
            GUID_VCEK => CertKind::Vcek,
            GUID_VLEK => CertKind::Vlek,
            GUID_ASK => CertKind::Ask,
            GUID_ARK => CertKind::Ark,
            g => CertKind::Other(g),
        }
    }

    /// The GUID of this kind.
    pub fn guid(self) -> [u8; 16] {
        match self {
            CertKind::Vcek => GUID_VCEK,
            CertKind::Vlek => GUID_VLEK,
            CertKind::Ask => GUID_ASK,
            CertKind::Ark => GUID_ARK,
            CertKind::Other(g) => g,
        }
    }
}

/// One certificate from the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertEntry {
    /// Its kind.
    pub kind: CertKind,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| Error::malformed(WHAT, "truncated entry"))
}

/// Parses a table. An empty buffer is an empty table (no certificates provisioned).
pub fn parse(table: &[u8]) -> Result<Vec<CertEntry>> {
    if table.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<CertEntry> = Vec::new();
    for i in 0..=MAX_ENTRIES {
        let at = i * ENTRY_LEN;
        let raw = table
            .get(at..at + ENTRY_LEN)
            .ok_or_else(|| Error::malformed(WHAT, "no terminating zero entry"))?;
        if raw.iter().all(|&b| b == 0) {
            return Ok(out);
        }
        if i == MAX_ENTRIES {
            break;
        }
        let mut g = [0u8; 16];
        g.copy_from_slice(raw.get(..16).unwrap_or(&[0; 16]));
        let offset = usize::try_from(u32_at(raw, 16)?)
            .map_err(|_| Error::malformed(WHAT, "offset overflows"))?;
        let length = usize::try_from(u32_at(raw, 20)?)
            .map_err(|_| Error::malformed(WHAT, "length overflows"))?;
        let end = offset
            .checked_add(length)
            .ok_or_else(|| Error::malformed(WHAT, "offset + length overflows"))?;
        let der = table.get(offset..end).ok_or_else(|| {
            Error::malformed(
                WHAT,
                format!(
                    "entry {i} points at {offset}..{end}, outside {} bytes",
                    table.len()
                ),
            )
        })?;
        let kind = CertKind::from_guid(g);
        if out.iter().any(|e| e.kind == kind) {
            return Err(Error::malformed(WHAT, format!("{kind:?} listed twice")));
        }
        out.push(CertEntry {
            kind,
            der: der.to_vec(),
        });
    }
    Err(Error::malformed(
        WHAT,
        format!("more than {MAX_ENTRIES} entries"),
    ))
}

/// Encodes a table (entries, terminator, certificates in order).
pub fn encode(entries: &[CertEntry]) -> Result<Vec<u8>> {
    if entries.len() > MAX_ENTRIES {
        return Err(Error::ApiMisuse {
            reason: format!("more than {MAX_ENTRIES} certificate table entries"),
        });
    }
    let header_len = (entries.len() + 1) * ENTRY_LEN;
    let mut head = Vec::with_capacity(header_len);
    let mut body = Vec::new();
    for e in entries {
        let offset = u32::try_from(header_len + body.len()).map_err(|_| Error::ApiMisuse {
            reason: "certificate table too large".into(),
        })?;
        let length = u32::try_from(e.der.len()).map_err(|_| Error::ApiMisuse {
            reason: "certificate too large".into(),
        })?;
        head.extend_from_slice(&e.kind.guid());
        head.extend_from_slice(&offset.to_le_bytes());
        head.extend_from_slice(&length.to_le_bytes());
        body.extend_from_slice(&e.der);
    }
    head.extend_from_slice(&[0u8; ENTRY_LEN]);
    head.extend_from_slice(&body);
    Ok(head)
}

/// The signing certificate (VCEK or VLEK) and intermediates (ASK) from a table; the ARK and
/// unknown entries are dropped (roots come only from the verifier's trust anchors). `None`
/// if the table holds no signing certificate.
pub fn to_snp_certs(entries: &[CertEntry]) -> Option<SnpCerts> {
    let leaf = entries
        .iter()
        .find(|e| matches!(e.kind, CertKind::Vcek | CertKind::Vlek))?;
    Some(SnpCerts {
        leaf: leaf.der.clone(),
        intermediates: entries
            .iter()
            .filter(|e| e.kind == CertKind::Ask)
            .map(|e| e.der.clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Vec<CertEntry> {
        vec![
            CertEntry {
                kind: CertKind::Vcek,
                der: vec![1, 2, 3],
            },
            CertEntry {
                kind: CertKind::Ask,
                der: vec![4, 5],
            },
            CertEntry {
                kind: CertKind::Ark,
                der: vec![6],
            },
        ]
    }

    #[test]
    fn round_trip_and_known_layout() {
        let t = encode(&sample()).unwrap();
        // Entry 0: the VCEK GUID in RFC 4122 byte order, offset 96 (4 entries x 24), length 3.
        assert_eq!(
            &t[..16],
            &hex::decode("63da758de6644564adc5f4b93be8accd").unwrap()[..]
        );
        assert_eq!(&t[16..24], &[96, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&t[72..96], &[0u8; 24]);
        assert_eq!(&t[96..], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(parse(&t).unwrap(), sample());
        let c = to_snp_certs(&parse(&t).unwrap()).unwrap();
        assert_eq!(c.leaf, vec![1, 2, 3]);
        assert_eq!(c.intermediates, vec![vec![4, 5]]);
    }

    #[test]
    fn refusals() {
        let t = encode(&sample()).unwrap();
        // Missing terminator.
        assert!(parse(&t[..72]).is_err());
        // Entry pointing outside.
        let mut bad = t.clone();
        bad[20] = 200;
        assert!(matches!(parse(&bad), Err(Error::Malformed { .. })));
        // Duplicate kind.
        let dup = encode(&[sample()[0].clone(), sample()[0].clone()]).unwrap();
        assert!(parse(&dup).is_err());
        // Empty table: no certificates.
        assert!(parse(&[]).unwrap().is_empty());
        assert!(to_snp_certs(&[]).is_none());
    }
}
