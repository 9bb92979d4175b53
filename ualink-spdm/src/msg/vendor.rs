//! VENDOR_DEFINED_REQUEST / VENDOR_DEFINED_RESPONSE (DSP0274 §10.19), with the PCI-SIG
//! framing used by IDE_KM and TDISP.
//!
//! ```text
//! SPDMVersion | FE / 7E | Param1 = 0 | Param2 = 0
//! | StandardID u16 (registry: 0 DMTF .. 0x0A IANA CBOR) | Len u8 | VendorID[Len]
//! | ReqLength/RespLength u16 | VendorDefinedPayload
//! PCI-SIG: StandardID = 0x0003, Len = 2, VendorID = 0x0001 (LE: 01 00),
//!          payload = ProtocolID u8 (0x00 IDE_KM, 0x01 TDISP) ‖ protocol message
//! ```
//! The protocol messages themselves (IDE_KM, TDISP) are decoded by `tdisp` / `keyprog`.

use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroize;

use super::header::RequestResponseCode;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

/// StandardID of the PCI-SIG registry.
pub const STANDARD_ID_PCI_SIG: u16 = 0x0003;
/// The PCI-SIG vendor ID as carried in VendorID (0x0001, little-endian).
pub const PCI_SIG_VENDOR_ID: [u8; 2] = [0x01, 0x00];
/// Highest registry ID defined by DSP0274 1.3 (IANA CBOR).
pub const MAX_STANDARD_ID: u16 = 0x0A;

/// A PCI-SIG ProtocolID (first payload byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciSigProtocol(pub u8);

impl PciSigProtocol {
    /// IDE_KM (and our UALinkSec link-key programming).
    pub const IDE_KM: Self = Self(0x00);
    /// TDISP.
    pub const TDISP: Self = Self(0x01);
}

/// Version, StandardID, VendorID, payload.
type Body = (SpdmVersion, u16, Vec<u8>, Vec<u8>);

fn read_body(
    r: &mut Reader<'_>,
    code: RequestResponseCode,
    name: &'static str,
) -> Result<Body, Error> {
    let (version, p1, p2) = super::begin(r, code, None)?;
    super::zero(p1, name)?;
    super::zero(p2, name)?;
    let standard_id = r.u16("VENDOR_DEFINED StandardID")?;
    if standard_id > MAX_STANDARD_ID {
        return Err(Malformed::UnknownValue {
            what: "VENDOR_DEFINED StandardID",
            value: u32::from(standard_id),
        }
        .into());
    }
    let len = usize::from(r.u8("VENDOR_DEFINED Len")?);
    let vendor_id = super::take_vec(r, len, "VENDOR_DEFINED VendorID")?;
    let plen = usize::from(r.u16("VENDOR_DEFINED payload length")?);
    let payload = super::take_vec(r, plen, "VENDOR_DEFINED payload")?;
    Ok((version, standard_id, vendor_id, payload))
}

fn write_body(
    code: RequestResponseCode,
    version: SpdmVersion,
    standard_id: u16,
    vendor_id: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, Error> {
    let vlen = u8::try_from(vendor_id.len()).map_err(|_| Malformed::LengthOverflow {
        what: "VENDOR_DEFINED Len",
    })?;
    let mut w = super::start(version, code, 0, 0);
    w.u16(standard_id)
        .u8(vlen)
        .bytes(vendor_id)
        .len_u16(payload.len(), "VENDOR_DEFINED payload length")?
        .bytes(payload);
    Ok(w.into_vec())
}

macro_rules! vendor_msg {
    ($(#[$doc:meta])* $name:ident, $code:ident, $label:literal) => {
        $(#[$doc])*
        ///
        /// The payload may carry key material (IDE_KM KEY_PROG): it is zeroed on drop and
        /// `Debug` prints only its length.
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name {
            /// Header version.
            pub version: SpdmVersion,
            /// StandardID (registry).
            pub standard_id: u16,
            /// VendorID bytes as on the wire.
            pub vendor_id: Vec<u8>,
            /// VendorDefinedPayload.
            pub payload: Vec<u8>,
        }

        impl $name {
            /// Parses exactly one message.
            pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
                let mut r = Reader::new(bytes);
                let m = Self::read(&mut r)?;
                r.finish($label)?;
                Ok(m)
            }

            pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
                let (version, standard_id, vendor_id, payload) =
                    read_body(r, RequestResponseCode::$code, concat!($label, " Param1/Param2"))?;
                Ok(Self {
                    version,
                    standard_id,
                    vendor_id,
                    payload,
                })
            }

            /// Encodes the message.
            pub fn encode(&self) -> Result<Vec<u8>, Error> {
                write_body(
                    RequestResponseCode::$code,
                    self.version,
                    self.standard_id,
                    &self.vendor_id,
                    &self.payload,
                )
            }

            /// A PCI-SIG message: payload = ProtocolID ‖ `body`.
            pub fn pci_sig(version: SpdmVersion, protocol: PciSigProtocol, body: &[u8]) -> Self {
                let mut payload = Vec::with_capacity(body.len().saturating_add(1));
                payload.push(protocol.0);
                payload.extend_from_slice(body);
                Self {
                    version,
                    standard_id: STANDARD_ID_PCI_SIG,
                    vendor_id: PCI_SIG_VENDOR_ID.to_vec(),
                    payload,
                }
            }

            /// For a PCI-SIG message: its ProtocolID and the protocol message after it.
            /// `None` for other registries/vendors or an empty payload.
            pub fn as_pci_sig(&self) -> Option<(PciSigProtocol, &[u8])> {
                if self.standard_id != STANDARD_ID_PCI_SIG || self.vendor_id != PCI_SIG_VENDOR_ID {
                    return None;
                }
                let (first, rest) = self.payload.split_first()?;
                Some((PciSigProtocol(*first), rest))
            }
        }
    };
}

macro_rules! vendor_drop_debug {
    ($name:ident) => {
        impl Drop for $name {
            fn drop(&mut self) {
                self.payload.zeroize();
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("version", &self.version)
                    .field("standard_id", &self.standard_id)
                    .field("vendor_id", &self.vendor_id)
                    .field("payload_len", &self.payload.len())
                    .finish_non_exhaustive()
            }
        }
    };
}

vendor_msg!(
    /// VENDOR_DEFINED_REQUEST.
    VendorDefinedRequest,
    VENDOR_DEFINED_REQUEST,
    "VENDOR_DEFINED_REQUEST"
);
vendor_msg!(
    /// VENDOR_DEFINED_RESPONSE.
    VendorDefinedResponse,
    VENDOR_DEFINED_RESPONSE,
    "VENDOR_DEFINED_RESPONSE"
);

vendor_drop_debug!(VendorDefinedRequest);
vendor_drop_debug!(VendorDefinedResponse);
