//! GET_CAPABILITIES / CAPABILITIES (DSP0274 §10.4), SPDM 1.2 and 1.3 layout (20 bytes each).
//!
//! ```text
//! 0  SPDMVersion | Code (E1 / 61) | Param1 = 0 | Param2 = 0
//! 4  Reserved u8
//! 5  CTExponent u8
//! 6  Reserved u16
//! 8  Flags u32                 (CapabilityFlags; bits undefined for the version/direction = reserved)
//! 12 DataTransferSize u32      (>= 42)
//! 16 MaxSPDMmsgSize u32        (>= DataTransferSize)
//! ```
//! The SPDM 1.3 "supported algorithms" extension (GET_CAPABILITIES Param1 bit 0) is not
//! implemented: a request asking for it is rejected as an unknown value.

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

/// The CAPABILITIES Flags field (request or response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapabilityFlags(pub u32);

impl CapabilityFlags {
    /// CACHE_CAP (responder only).
    pub const CACHE_CAP: Self = Self(1 << 0);
    /// CERT_CAP.
    pub const CERT_CAP: Self = Self(1 << 1);
    /// CHAL_CAP.
    pub const CHAL_CAP: Self = Self(1 << 2);
    /// MEAS_CAP = 01b: measurements without signature (responder only).
    pub const MEAS_CAP_NO_SIG: Self = Self(1 << 3);
    /// MEAS_CAP = 10b: measurements with signature (responder only).
    pub const MEAS_CAP_SIG: Self = Self(1 << 4);
    /// MEAS_FRESH_CAP (responder only).
    pub const MEAS_FRESH_CAP: Self = Self(1 << 5);
    /// ENCRYPT_CAP.
    pub const ENCRYPT_CAP: Self = Self(1 << 6);
    /// MAC_CAP.
    pub const MAC_CAP: Self = Self(1 << 7);
    /// MUT_AUTH_CAP.
    pub const MUT_AUTH_CAP: Self = Self(1 << 8);
    /// KEY_EX_CAP.
    pub const KEY_EX_CAP: Self = Self(1 << 9);
    /// PSK_CAP = 01b (PSK without responder context).
    pub const PSK_CAP: Self = Self(1 << 10);
    /// PSK_CAP = 10b (responder: PSK with context).
    pub const PSK_CAP_WITH_CONTEXT: Self = Self(1 << 11);
    /// ENCAP_CAP.
    pub const ENCAP_CAP: Self = Self(1 << 12);
    /// HBEAT_CAP.
    pub const HBEAT_CAP: Self = Self(1 << 13);
    /// KEY_UPD_CAP.
    pub const KEY_UPD_CAP: Self = Self(1 << 14);
    /// HANDSHAKE_IN_THE_CLEAR_CAP.
    pub const HANDSHAKE_IN_THE_CLEAR_CAP: Self = Self(1 << 15);
    /// PUB_KEY_ID_CAP.
    pub const PUB_KEY_ID_CAP: Self = Self(1 << 16);
    /// CHUNK_CAP (1.2).
    pub const CHUNK_CAP: Self = Self(1 << 17);
    /// ALIAS_CERT_CAP (1.2, responder only).
    pub const ALIAS_CERT_CAP: Self = Self(1 << 18);
    /// SET_CERT_CAP (1.2, responder only).
    pub const SET_CERT_CAP: Self = Self(1 << 19);
    /// CSR_CAP (1.2, responder only).
    pub const CSR_CAP: Self = Self(1 << 20);
    /// CERT_INSTALL_RESET_CAP (1.2, responder only).
    pub const CERT_INSTALL_RESET_CAP: Self = Self(1 << 21);
    /// EP_INFO_CAP = 01b, no signature (1.3).
    pub const EP_INFO_CAP_NO_SIG: Self = Self(1 << 22);
    /// EP_INFO_CAP = 10b, with signature (1.3).
    pub const EP_INFO_CAP_SIG: Self = Self(1 << 23);
    /// MEL_CAP (1.3, responder only).
    pub const MEL_CAP: Self = Self(1 << 24);
    /// EVENT_CAP (1.3).
    pub const EVENT_CAP: Self = Self(1 << 25);
    /// MULTI_KEY_CAP = 01b: only multi-key connections (1.3).
    pub const MULTI_KEY_CAP_ONLY: Self = Self(1 << 26);
    /// MULTI_KEY_CAP = 10b: multi-key negotiated through MULTI_KEY_CONN (1.3).
    pub const MULTI_KEY_CAP_NEG: Self = Self(1 << 27);
    /// GET_KEY_PAIR_INFO_CAP (1.3, responder only).
    pub const GET_KEY_PAIR_INFO_CAP: Self = Self(1 << 28);
    /// SET_KEY_PAIR_INFO_CAP (1.3, responder only).
    pub const SET_KEY_PAIR_INFO_CAP: Self = Self(1 << 29);

    /// Bits a 1.2 requester may set.
    pub const REQUEST_MASK_12: u32 = 0x0003_FFC6;
    /// Bits a 1.3 requester may set (adds EP_INFO, EVENT, MULTI_KEY).
    pub const REQUEST_MASK_13: u32 = Self::REQUEST_MASK_12 | 0x0EC0_0000;
    /// Bits a 1.2 responder may set.
    pub const RESPONSE_MASK_12: u32 = 0x003F_FFFF;
    /// Bits a 1.3 responder may set.
    pub const RESPONSE_MASK_13: u32 = 0x3FFF_FFFF;

    /// True if every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union of two flag sets.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The 2-bit MEAS_CAP field (0 none, 1 no signature, 2 with signature).
    pub const fn meas_cap(self) -> u8 {
        ((self.0 >> 3) & 3) as u8
    }

    /// The 2-bit PSK_CAP field.
    pub const fn psk_cap(self) -> u8 {
        ((self.0 >> 10) & 3) as u8
    }

    /// The 2-bit EP_INFO_CAP field (1.3).
    pub const fn ep_info_cap(self) -> u8 {
        ((self.0 >> 22) & 3) as u8
    }

    /// The 2-bit MULTI_KEY_CAP field (1.3): 0 none, 1 only, 2 negotiated.
    pub const fn multi_key_cap(self) -> u8 {
        ((self.0 >> 26) & 3) as u8
    }

    /// Fails if a bit outside `mask` is set or a 2-bit field holds its reserved value 11b.
    fn check(self, mask: u32, what: &'static str) -> Result<(), Malformed> {
        if self.0 & !mask != 0
            || self.meas_cap() == 3
            || self.psk_cap() == 3
            || self.ep_info_cap() == 3
            || self.multi_key_cap() == 3
        {
            return Err(Malformed::ReservedNonZero { what });
        }
        Ok(())
    }
}

/// Minimum DataTransferSize for SPDM 1.2+.
pub const MIN_DATA_TRANSFER_SIZE: u32 = 42;

/// The body shared by GET_CAPABILITIES and CAPABILITIES.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Body {
    version: SpdmVersion,
    ct_exponent: u8,
    flags: CapabilityFlags,
    data_transfer_size: u32,
    max_spdm_msg_size: u32,
}

fn read_body(
    r: &mut Reader<'_>,
    code: RequestResponseCode,
    name: &'static str,
) -> Result<Body, Error> {
    let (version, p1, p2) = super::begin(r, code, None)?;
    if p1 != 0 {
        return Err(Malformed::UnknownValue {
            what: "CAPABILITIES Param1 (1.3 supported-algorithms extension unsupported)",
            value: u32::from(p1),
        }
        .into());
    }
    super::zero(p2, "CAPABILITIES Param2")?;
    r.reserved(1, "CAPABILITIES Reserved")?;
    let ct_exponent = r.u8("CAPABILITIES CTExponent")?;
    r.reserved(2, "CAPABILITIES Reserved2")?;
    let flags = CapabilityFlags(r.u32("CAPABILITIES Flags")?);
    let data_transfer_size = r.u32("CAPABILITIES DataTransferSize")?;
    let max_spdm_msg_size = r.u32("CAPABILITIES MaxSPDMmsgSize")?;
    let mask = match (code == RequestResponseCode::GET_CAPABILITIES, version) {
        (true, SpdmVersion::V12) => CapabilityFlags::REQUEST_MASK_12,
        (true, SpdmVersion::V13) => CapabilityFlags::REQUEST_MASK_13,
        (false, SpdmVersion::V12) => CapabilityFlags::RESPONSE_MASK_12,
        (false, SpdmVersion::V13) => CapabilityFlags::RESPONSE_MASK_13,
    };
    flags.check(mask, name)?;
    if data_transfer_size < MIN_DATA_TRANSFER_SIZE || max_spdm_msg_size < data_transfer_size {
        return Err(Malformed::BadLength {
            what: "CAPABILITIES DataTransferSize/MaxSPDMmsgSize",
        }
        .into());
    }
    Ok(Body {
        version,
        ct_exponent,
        flags,
        data_transfer_size,
        max_spdm_msg_size,
    })
}

fn write_body(code: RequestResponseCode, b: &Body) -> Vec<u8> {
    let mut w = super::start(b.version, code, 0, 0);
    w.u8(0)
        .u8(b.ct_exponent)
        .u16(0)
        .u32(b.flags.0)
        .u32(b.data_transfer_size)
        .u32(b.max_spdm_msg_size);
    w.into_vec()
}

macro_rules! caps_msg {
    ($(#[$doc:meta])* $name:ident, $code:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// Header version (the version the requester chose from VERSION).
            pub version: SpdmVersion,
            /// CTExponent: cryptographic timeout 2^CTExponent microseconds.
            pub ct_exponent: u8,
            /// Flags.
            pub flags: CapabilityFlags,
            /// DataTransferSize: largest single message the sender can receive.
            pub data_transfer_size: u32,
            /// MaxSPDMmsgSize: largest (chunk-reassembled) message the sender can process.
            pub max_spdm_msg_size: u32,
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
                let b = read_body(r, RequestResponseCode::$code, $label)?;
                Ok(Self {
                    version: b.version,
                    ct_exponent: b.ct_exponent,
                    flags: b.flags,
                    data_transfer_size: b.data_transfer_size,
                    max_spdm_msg_size: b.max_spdm_msg_size,
                })
            }

            /// Encodes the message.
            pub fn encode(&self) -> Result<Vec<u8>, Error> {
                Ok(write_body(
                    RequestResponseCode::$code,
                    &Body {
                        version: self.version,
                        ct_exponent: self.ct_exponent,
                        flags: self.flags,
                        data_transfer_size: self.data_transfer_size,
                        max_spdm_msg_size: self.max_spdm_msg_size,
                    },
                ))
            }
        }
    };
}

caps_msg!(
    /// GET_CAPABILITIES: the requester's capabilities.
    GetCapabilities,
    GET_CAPABILITIES,
    "GET_CAPABILITIES"
);
caps_msg!(
    /// CAPABILITIES: the responder's capabilities.
    Capabilities,
    CAPABILITIES,
    "CAPABILITIES"
);
