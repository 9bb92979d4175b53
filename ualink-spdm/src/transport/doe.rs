//! PCI Data Object Exchange (PCIe 6.x §6.30) carrying SPDM (DSP0274 over DOE, PCI-SIG CMA).
//!
//! ```text
//! offset  size  field
//! 0       2     VendorID        u16 LE, 0x0001 (PCI-SIG)
//! 2       1     DataObjectType  0 DOE discovery, 1 SPDM, 2 secured SPDM
//! 3       1     Reserved        0
//! 4       4     Length          u32 LE, bits 17:0 = object length in DWORDs including this
//!                               header (0 means 2^18); bits 31:18 reserved (0)
//! 8       ...   payload, zero-padded to a DWORD boundary
//! ```
//!
//! The DOE layer cannot tell payload from padding: [`decode`] returns the payload with its
//! (at most 3) padding bytes. SPDM messages whose length is self-describing are parsed by the
//! message layer; secured messages carry their own Length.
//!
//! Discovery (DataObjectType 0): the request payload is one DWORD `{Index u8, rsvd u8 x3}`;
//! the response payload is one DWORD `{VendorID u16, DataObjectType u8, NextIndex u8}`.
//! [`answer_discovery`] serves the table the DMTF reference responder serves:
//! index 0 → (0x0001, 0 discovery, next 1), 1 → (0x0001, 1 SPDM, next 2),
//! 2 → (0x0001, 2 secured SPDM, next 0 = end).

use alloc::vec::Vec;

use crate::codec::{Reader, Writer};
use crate::error::Malformed;

/// PCI-SIG vendor ID.
pub const VENDOR_PCI_SIG: u16 = 0x0001;
/// Size of the DOE header.
pub const HEADER_LEN: usize = 8;
/// Largest DOE object, in DWORDs (the 18-bit Length field, 0 encoding 2^18).
pub const MAX_LEN_DW: u32 = 1 << 18;
/// Width of the secured-message SequenceNumber field on DOE (none).
pub const SEQUENCE_NUMBER_LEN: usize = 0;

/// A PCI-SIG DOE data object type we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataObjectType {
    /// DOE discovery (0).
    Discovery,
    /// CMA/SPDM (1).
    Spdm,
    /// Secured CMA/SPDM (2).
    SecuredSpdm,
}

impl DataObjectType {
    /// The wire value.
    pub const fn code(self) -> u8 {
        match self {
            Self::Discovery => 0,
            Self::Spdm => 1,
            Self::SecuredSpdm => 2,
        }
    }

    /// Parses a wire value.
    pub fn from_code(code: u8) -> Result<Self, Malformed> {
        match code {
            0 => Ok(Self::Discovery),
            1 => Ok(Self::Spdm),
            2 => Ok(Self::SecuredSpdm),
            other => Err(Malformed::UnknownValue {
                what: "DOE data object type",
                value: u32::from(other),
            }),
        }
    }
}

/// Wraps `payload` in a PCI-SIG DOE object of `ty`, zero-padding it to a DWORD boundary.
pub fn encode(ty: DataObjectType, payload: &[u8]) -> Result<Vec<u8>, Malformed> {
    let padded = payload
        .len()
        .checked_add(3)
        .map(|n| n & !3)
        .ok_or(Malformed::LengthOverflow { what: "DOE length" })?;
    let total = padded
        .checked_add(HEADER_LEN)
        .ok_or(Malformed::LengthOverflow { what: "DOE length" })?;
    let dw =
        u32::try_from(total / 4).map_err(|_| Malformed::LengthOverflow { what: "DOE length" })?;
    if dw > MAX_LEN_DW {
        return Err(Malformed::LengthOverflow { what: "DOE length" });
    }
    let mut w = Writer::with_capacity(total);
    w.u16(VENDOR_PCI_SIG)
        .u8(ty.code())
        .u8(0)
        .u32(dw & (MAX_LEN_DW - 1))
        .bytes(payload);
    w.zeros(padded.saturating_sub(payload.len()));
    Ok(w.into_vec())
}

/// Parses one DOE object that fills `object` exactly; returns its type and payload
/// (padding included, see the module docs).
pub fn decode(object: &[u8]) -> Result<(DataObjectType, &[u8]), Malformed> {
    let mut r = Reader::new(object);
    let vendor = r.u16("DOE vendor ID")?;
    if vendor != VENDOR_PCI_SIG {
        return Err(Malformed::UnknownValue {
            what: "DOE vendor ID",
            value: u32::from(vendor),
        });
    }
    let ty = DataObjectType::from_code(r.u8("DOE data object type")?)?;
    r.reserved(1, "DOE header reserved")?;
    let len = r.u32("DOE length")?;
    if len & !(MAX_LEN_DW - 1) != 0 {
        return Err(Malformed::ReservedNonZero {
            what: "DOE length bits 31:18",
        });
    }
    let dw = if len == 0 { MAX_LEN_DW } else { len };
    let bytes = usize::try_from(dw)
        .ok()
        .and_then(|d| d.checked_mul(4))
        .ok_or(Malformed::BadLength { what: "DOE length" })?;
    if bytes != object.len() || bytes < HEADER_LEN {
        return Err(Malformed::BadLength { what: "DOE length" });
    }
    Ok((ty, r.rest()))
}

/// DOE discovery request payload: `{Index u8, rsvd u8 x3}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryRequest {
    /// Index of the protocol entry asked for.
    pub index: u8,
}

impl DiscoveryRequest {
    /// The 4-byte payload.
    pub fn encode(&self) -> [u8; 4] {
        [self.index, 0, 0, 0]
    }

    /// Parses exactly 4 payload bytes; reserved bytes must be zero.
    pub fn parse(payload: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(payload);
        let index = r.u8("DOE discovery index")?;
        r.reserved(3, "DOE discovery request reserved")?;
        r.finish("DOE discovery request")?;
        Ok(Self { index })
    }
}

/// DOE discovery response payload: `{VendorID u16, DataObjectType u8, NextIndex u8}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryResponse {
    /// Vendor of the protocol at this index.
    pub vendor_id: u16,
    /// Data object type at this index (raw: other vendors' types are legal here).
    pub object_type: u8,
    /// Next index to ask for; 0 ends the walk.
    pub next_index: u8,
}

impl DiscoveryResponse {
    /// The 4-byte payload.
    pub fn encode(&self) -> [u8; 4] {
        let [a, b] = self.vendor_id.to_le_bytes();
        [a, b, self.object_type, self.next_index]
    }

    /// Parses exactly 4 payload bytes.
    pub fn parse(payload: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(payload);
        let vendor_id = r.u16("DOE discovery vendor ID")?;
        let object_type = r.u8("DOE discovery object type")?;
        let next_index = r.u8("DOE discovery next index")?;
        r.finish("DOE discovery response")?;
        Ok(Self {
            vendor_id,
            object_type,
            next_index,
        })
    }
}

/// The discovery table we serve: discovery, SPDM, secured SPDM (PCI-SIG).
pub const DISCOVERY_TABLE: [DiscoveryResponse; 3] = [
    DiscoveryResponse {
        vendor_id: VENDOR_PCI_SIG,
        object_type: 0,
        next_index: 1,
    },
    DiscoveryResponse {
        vendor_id: VENDOR_PCI_SIG,
        object_type: 1,
        next_index: 2,
    },
    DiscoveryResponse {
        vendor_id: VENDOR_PCI_SIG,
        object_type: 2,
        next_index: 0,
    },
];

/// Responder side: answers a discovery request payload with a whole DOE object.
/// An index past the table is refused ([`Malformed::UnknownValue`]).
pub fn answer_discovery(request_payload: &[u8]) -> Result<Vec<u8>, Malformed> {
    let req = DiscoveryRequest::parse(request_payload)?;
    let entry = DISCOVERY_TABLE
        .get(usize::from(req.index))
        .ok_or(Malformed::UnknownValue {
            what: "DOE discovery index",
            value: u32::from(req.index),
        })?;
    encode(DataObjectType::Discovery, &entry.encode())
}

/// Requester side: the DOE object asking for discovery entry `index`.
pub fn discovery_request(index: u8) -> Result<Vec<u8>, Malformed> {
    encode(
        DataObjectType::Discovery,
        &DiscoveryRequest { index }.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_kat_from_reference_peers() {
        // Captured between spdm-emu requester and responder (PROTOCOL.md).
        let req0 = [
            0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(discovery_request(0).unwrap(), req0);
        let (ty, p) = decode(&req0).unwrap();
        assert_eq!(ty, DataObjectType::Discovery);
        let expected: [[u8; 4]; 3] = [[1, 0, 0, 1], [1, 0, 1, 2], [1, 0, 2, 0]];
        for (i, exp) in expected.iter().enumerate() {
            let req = discovery_request(u8::try_from(i).unwrap()).unwrap();
            let (_, p) = decode(&req).unwrap();
            let rsp = answer_discovery(p).unwrap();
            let mut want = vec![0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00];
            want.extend_from_slice(exp);
            assert_eq!(rsp, want);
            let (_, rp) = decode(&rsp).unwrap();
            assert_eq!(DiscoveryResponse::parse(rp).unwrap().encode(), *exp);
        }
        assert_eq!(DiscoveryRequest::parse(p).unwrap().index, 0);
        assert!(answer_discovery(&[3, 0, 0, 0]).is_err());
        assert!(answer_discovery(&[0, 1, 0, 0]).is_err());
    }

    #[test]
    fn get_version_kat_and_padding() {
        let wire = [
            0x01, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x10, 0x84, 0x00, 0x00,
        ];
        assert_eq!(
            encode(DataObjectType::Spdm, &[0x10, 0x84, 0, 0]).unwrap(),
            wire
        );
        assert_eq!(
            decode(&wire).unwrap(),
            (DataObjectType::Spdm, &[0x10u8, 0x84, 0, 0][..])
        );
        let odd = encode(DataObjectType::SecuredSpdm, &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(odd.len(), 16);
        assert_eq!(&odd[4..8], &[4, 0, 0, 0]);
        assert_eq!(&odd[13..], &[0, 0, 0]);
    }

    #[test]
    fn rejects_bad_headers() {
        let good = encode(DataObjectType::Spdm, &[0x10, 0x84, 0, 0]).unwrap();
        for (i, v) in [(0usize, 2u8), (2, 3), (3, 1), (4, 4), (7, 0x80)] {
            let mut bad = good.clone();
            bad[i] = v;
            assert!(decode(&bad).is_err(), "byte {i}");
        }
        let mut long = good.clone();
        long.extend_from_slice(&[0; 4]);
        assert!(decode(&long).is_err());
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err());
        }
    }
}
