//! Opaque data format 1 (DSP0274 "general opaque data", OtherParams bit 1) and the DSP0277
//! secured-message version element carried in KEY_EXCHANGE / KEY_EXCHANGE_RSP.
//!
//! ```text
//! OpaqueData:  TotalElements u8 | Reserved[3] | element x TotalElements
//! element:     ID u8 (0 = DMTF) | VendorLen u8 | VendorID[VendorLen] | OpaqueElementDataLen u16
//!              | OpaqueElementData | AlignPadding (zeros to a 4-byte boundary)
//! DSP0277 secured-message data (ID 0, VendorLen 0):
//!              SMDataVersion u8 = 1 | SMDataID u8
//!              | SMDataID 0 (version selection): SelectedVersion u16
//!              | SMDataID 1 (supported versions): VersionCount u8 | Version u16 x count (0x1200 = 1.2)
//! ```

use alloc::vec::Vec;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Malformed};

/// One opaque element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueElement {
    /// ID (registry; 0 = DMTF).
    pub id: u8,
    /// VendorID bytes.
    pub vendor_id: Vec<u8>,
    /// OpaqueElementData (without padding).
    pub data: Vec<u8>,
}

/// Format-1 opaque data: a list of elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpaqueData {
    /// Elements in order.
    pub elements: Vec<OpaqueElement>,
}

impl OpaqueData {
    /// Parses exactly one format-1 opaque data block (padding must be zero).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let total = r.u8("opaque data TotalElements")?;
        r.reserved(3, "opaque data Reserved")?;
        let mut elements = Vec::with_capacity(usize::from(total.min(8)));
        for _ in 0..total {
            let id = r.u8("opaque element ID")?;
            let vlen = usize::from(r.u8("opaque element VendorLen")?);
            let vendor_id = super::take_vec(&mut r, vlen, "opaque element VendorID")?;
            let dlen = usize::from(r.u16("opaque element OpaqueElementDataLen")?);
            let data = super::take_vec(&mut r, dlen, "opaque element OpaqueElementData")?;
            let unpadded = 4usize.saturating_add(vlen).saturating_add(dlen);
            r.reserved(pad(unpadded), "opaque element AlignPadding")?;
            elements.push(OpaqueElement {
                id,
                vendor_id,
                data,
            });
        }
        r.finish("opaque data")?;
        Ok(Self { elements })
    }

    /// Encodes the block.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let total = u8::try_from(self.elements.len()).map_err(|_| Malformed::LengthOverflow {
            what: "opaque data TotalElements",
        })?;
        let mut w = Writer::new();
        w.u8(total).zeros(3);
        for e in &self.elements {
            let vlen = u8::try_from(e.vendor_id.len()).map_err(|_| Malformed::LengthOverflow {
                what: "opaque element VendorLen",
            })?;
            w.u8(e.id)
                .u8(vlen)
                .bytes(&e.vendor_id)
                .len_u16(e.data.len(), "opaque element OpaqueElementDataLen")?
                .bytes(&e.data);
            w.zeros(pad(4usize
                .saturating_add(e.vendor_id.len())
                .saturating_add(e.data.len())));
        }
        Ok(w.into_vec())
    }

    /// One DMTF element listing the secured-message versions we support (KEY_EXCHANGE).
    pub fn supported_versions(versions: &[u16]) -> Result<Self, Error> {
        Ok(Self {
            elements: alloc::vec![
                SecuredMessageVersionData::Supported(versions.to_vec()).to_element()?
            ],
        })
    }

    /// One DMTF element selecting a secured-message version (KEY_EXCHANGE_RSP).
    pub fn selected_version(version: u16) -> Self {
        Self {
            elements: alloc::vec![OpaqueElement {
                id: 0,
                vendor_id: Vec::new(),
                data: SecuredMessageVersionData::Selection(version).data(),
            }],
        }
    }

    /// The DSP0277 secured-message element, if exactly one is present. Other elements are
    /// ignored; two secured-message elements are malformed.
    pub fn secured_message(&self) -> Result<Option<SecuredMessageVersionData>, Error> {
        let mut found = None;
        for e in self
            .elements
            .iter()
            .filter(|e| e.id == 0 && e.vendor_id.is_empty())
        {
            let d = SecuredMessageVersionData::parse(&e.data)?;
            if found.replace(d).is_some() {
                return Err(Malformed::UnknownValue {
                    what: "opaque data: duplicate secured-message element",
                    value: 2,
                }
                .into());
            }
        }
        Ok(found)
    }
}

fn pad(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// The DSP0277 secured-message version element payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecuredMessageVersionData {
    /// SMDataID 0: the responder's selection.
    Selection(u16),
    /// SMDataID 1: the requester's supported versions.
    Supported(Vec<u16>),
}

impl SecuredMessageVersionData {
    /// Parses an element's data (SMDataVersion must be 1).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let ver = r.u8("secured-message SMDataVersion")?;
        if ver != 1 {
            return Err(Malformed::UnknownValue {
                what: "secured-message SMDataVersion",
                value: u32::from(ver),
            }
            .into());
        }
        let out = match r.u8("secured-message SMDataID")? {
            0 => Self::Selection(r.u16("secured-message SelectedVersion")?),
            1 => {
                let n = r.u8("secured-message VersionCount")?;
                if n == 0 {
                    return Err(Malformed::BadLength {
                        what: "secured-message VersionCount (zero)",
                    }
                    .into());
                }
                let mut v = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    v.push(r.u16("secured-message Version")?);
                }
                Self::Supported(v)
            }
            id => {
                return Err(Malformed::UnknownValue {
                    what: "secured-message SMDataID",
                    value: u32::from(id),
                }
                .into())
            }
        };
        r.finish("secured-message element data")?;
        Ok(out)
    }

    /// The element data bytes.
    pub fn data(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(1);
        match self {
            Self::Selection(v) => {
                w.u8(0).u16(*v);
            }
            Self::Supported(list) => {
                // `to_element` checks the count fits; saturate here so this stays infallible.
                w.u8(1).u8(u8::try_from(list.len()).unwrap_or(u8::MAX));
                for v in list.iter().take(usize::from(u8::MAX)) {
                    w.u16(*v);
                }
            }
        }
        w.into_vec()
    }

    /// A DMTF element carrying this data.
    pub fn to_element(&self) -> Result<OpaqueElement, Error> {
        if let Self::Supported(list) = self {
            if list.is_empty() || list.len() > usize::from(u8::MAX) {
                return Err(Malformed::LengthOverflow {
                    what: "secured-message VersionCount",
                }
                .into());
            }
        }
        Ok(OpaqueElement {
            id: 0,
            vendor_id: Vec::new(),
            data: self.data(),
        })
    }
}
