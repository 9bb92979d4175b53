//! TDISP 1.0 messages, byte-exact with libspdm's `pci_tdisp.h` and the spdm-emu captures.
//!
//! Every codec covers the VENDOR_DEFINED payload from its ProtocolID byte on:
//!
//! ```text
//! off 0   ProtocolID u8 = 0x01
//! off 1   TDISPVersion u8 = 0x10
//! off 2   MessageType u8
//! off 3   reserved u16 (zero)
//! off 5   INTERFACE_ID: FUNCTION_ID u32 (bits 15:0 requester ID, 23:16 segment,
//!         bit 24 segment valid, 31:25 reserved) + reserved 8 bytes (zero)
//! off 17  message body (below, per message)
//! ```
//!
//! All integers are little-endian. Parsing is strict: a wrong ProtocolID or version, a
//! reserved field or bit that is not zero, an unknown code, a length that disagrees with the
//! data or a byte left over is a [`Malformed`] error naming the field. Encoding is the exact
//! inverse (`parse(encode(m)) == m` and `encode(parse(b)) == b` for every accepted `b`).

use alloc::vec::Vec;
use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::state::TdiState;
use super::{NONCE_LEN, PROTOCOL_ID, TDISP_VERSION_1_0};
use crate::codec::{Reader, Writer};
use crate::error::Malformed;

/// Length of the TDISP header including the ProtocolID byte.
pub const HEADER_LEN: usize = 17;

/// Request codes (MessageType of requests).
pub mod code {
    /// GET_TDISP_VERSION.
    pub const GET_TDISP_VERSION: u8 = 0x81;
    /// GET_TDISP_CAPABILITIES.
    pub const GET_TDISP_CAPABILITIES: u8 = 0x82;
    /// LOCK_INTERFACE_REQUEST.
    pub const LOCK_INTERFACE_REQUEST: u8 = 0x83;
    /// GET_DEVICE_INTERFACE_REPORT.
    pub const GET_DEVICE_INTERFACE_REPORT: u8 = 0x84;
    /// GET_DEVICE_INTERFACE_STATE.
    pub const GET_DEVICE_INTERFACE_STATE: u8 = 0x85;
    /// START_INTERFACE_REQUEST.
    pub const START_INTERFACE_REQUEST: u8 = 0x86;
    /// STOP_INTERFACE_REQUEST.
    pub const STOP_INTERFACE_REQUEST: u8 = 0x87;
    /// TDISP_VERSION.
    pub const TDISP_VERSION: u8 = 0x01;
    /// TDISP_CAPABILITIES.
    pub const TDISP_CAPABILITIES: u8 = 0x02;
    /// LOCK_INTERFACE_RESPONSE.
    pub const LOCK_INTERFACE_RESPONSE: u8 = 0x03;
    /// DEVICE_INTERFACE_REPORT.
    pub const DEVICE_INTERFACE_REPORT: u8 = 0x04;
    /// DEVICE_INTERFACE_STATE.
    pub const DEVICE_INTERFACE_STATE: u8 = 0x05;
    /// START_INTERFACE_RESPONSE.
    pub const START_INTERFACE_RESPONSE: u8 = 0x06;
    /// STOP_INTERFACE_RESPONSE.
    pub const STOP_INTERFACE_RESPONSE: u8 = 0x07;
    /// TDISP_ERROR.
    pub const TDISP_ERROR: u8 = 0x7F;
}

/// The INTERFACE_ID of every TDISP message: a FUNCTION_ID (reserved bits 31:25 zero) followed
/// by 8 reserved bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InterfaceId(u32);

impl InterfaceId {
    const RESERVED_MASK: u32 = 0xFE00_0000;

    /// FUNCTION_ID 0 (used to echo a request whose interface ID could not be read).
    pub const ZERO: Self = Self(0);

    /// A FUNCTION_ID; fails if reserved bits 31:25 are set, or if the segment (bits 23:16)
    /// is not zero while Requester Segment Valid (bit 24) is clear (it is reserved then).
    pub const fn new(function_id: u32) -> Result<Self, Malformed> {
        if function_id & Self::RESERVED_MASK != 0 {
            return Err(Malformed::ReservedNonZero {
                what: "FUNCTION_ID bits 31:25",
            });
        }
        if function_id & 0x0100_0000 == 0 && function_id & 0x00FF_0000 != 0 {
            return Err(Malformed::ReservedNonZero {
                what: "FUNCTION_ID segment without Segment Valid",
            });
        }
        Ok(Self(function_id))
    }

    /// The FUNCTION_ID as sent on the wire.
    pub const fn function_id(self) -> u32 {
        self.0
    }

    /// Requester ID (bus/device/function), bits 15:0.
    pub const fn requester_id(self) -> u16 {
        (self.0 & 0xFFFF) as u16
    }

    /// Requester segment, if bit 24 (segment valid) is set.
    pub const fn segment(self) -> Option<u8> {
        if self.0 & 0x0100_0000 != 0 {
            Some(((self.0 >> 16) & 0xFF) as u8)
        } else {
            None
        }
    }
}

/// The 32-byte START_INTERFACE nonce: random, single use, zeroed when dropped, compared in
/// constant time, redacted in `Debug`.
#[derive(Clone)]
pub struct StartNonce(Zeroizing<[u8; NONCE_LEN]>);

impl StartNonce {
    /// Wraps nonce bytes (the array is copied; zero the source if it was not temporary).
    pub fn from_bytes(bytes: [u8; NONCE_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The nonce bytes.
    pub fn as_bytes(&self) -> &[u8; NONCE_LEN] {
        &self.0
    }

    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8; NONCE_LEN] {
        &mut self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        let mut n = Self(Zeroizing::new([0u8; NONCE_LEN]));
        n.0.copy_from_slice(r.take(NONCE_LEN, "START_INTERFACE_NONCE")?);
        Ok(n)
    }
}

impl PartialEq for StartNonce {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for StartNonce {}

impl fmt::Debug for StartNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StartNonce(<redacted>)")
    }
}

/// LOCK_INTERFACE_REQUEST flags (bits 15:5 reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockFlags(u16);

impl LockFlags {
    /// NO_FW_UPDATE: firmware updates are not permitted while locked.
    pub const NO_FW_UPDATE: u16 = 0x1;
    /// SYSTEM_CACHE_LINE_SIZE: 128-byte system cache line.
    pub const SYSTEM_CACHE_LINE_SIZE: u16 = 0x2;
    /// LOCK_MSIX: lock the MSI-X table and PBA.
    pub const LOCK_MSIX: u16 = 0x4;
    /// BIND_P2P: peer-to-peer binding.
    pub const BIND_P2P: u16 = 0x8;
    /// ALL_REQUEST_REDIRECT: redirect all requests through the root complex.
    pub const ALL_REQUEST_REDIRECT: u16 = 0x10;
    const DEFINED: u16 = 0x1F;

    /// Flags from their wire value; fails on reserved bits.
    pub const fn from_bits(bits: u16) -> Result<Self, Malformed> {
        if bits & !Self::DEFINED != 0 {
            return Err(Malformed::ReservedNonZero {
                what: "LOCK_INTERFACE flags",
            });
        }
        Ok(Self(bits))
    }

    /// The wire value.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// True if every flag in `other` is set here.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// LOCK_INTERFACE_REQUEST body (20 bytes): flags u16, default_stream_id u8, reserved u8,
/// mmio_reporting_offset u64, bind_p2p_address_mask u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockInterfaceParams {
    /// Requested lock flags.
    pub flags: LockFlags,
    /// Stream the TDI's default traffic uses.
    pub default_stream_id: u8,
    /// Offset the device adds to MMIO addresses in the interface report.
    pub mmio_reporting_offset: u64,
    /// P2P address mask (meaningful with BIND_P2P).
    pub bind_p2p_address_mask: u64,
}

/// TDISP_CAPABILITIES body (28 bytes): dsm_caps u32, req_msgs_supported `[16]`, lock flags
/// supported u16, reserved 3, dev_addr_width u8, num_req_this u8, num_req_all u8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceCapabilities {
    /// DSM capabilities (bit 0 XT_MODE_SUPPORTED; others reserved).
    pub dsm_caps: u32,
    /// Bitmap of supported request codes: bit n set = request code 0x80 + n supported.
    pub req_msgs_supported: [u8; 16],
    /// LOCK_INTERFACE flags the device supports.
    pub lock_flags_supported: LockFlags,
    /// Address width the device supports for DMA.
    pub dev_addr_width: u8,
    /// Outstanding requests this function may issue.
    pub num_req_this: u8,
    /// Outstanding requests all functions may issue.
    pub num_req_all: u8,
}

impl DeviceCapabilities {
    /// DSM_CAPS bit 0: XT mode supported.
    pub const DSM_CAPS_XT_MODE: u32 = 0x1;
}

/// TDISP_ERROR codes (PCIe TDISP 1.0; libspdm `PCI_TDISP_ERROR_CODE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TdispErrorCode {
    /// 0x0001 INVALID_REQUEST.
    InvalidRequest = 0x0001,
    /// 0x0003 BUSY.
    Busy = 0x0003,
    /// 0x0004 INVALID_INTERFACE_STATE.
    InvalidInterfaceState = 0x0004,
    /// 0x0005 UNSPECIFIED.
    Unspecified = 0x0005,
    /// 0x0007 UNSUPPORTED_REQUEST.
    UnsupportedRequest = 0x0007,
    /// 0x0041 VERSION_MISMATCH.
    VersionMismatch = 0x0041,
    /// 0x00FF VENDOR_SPECIFIC_ERROR (carries extended error data).
    VendorSpecific = 0x00FF,
    /// 0x0101 INVALID_INTERFACE.
    InvalidInterface = 0x0101,
    /// 0x0102 INVALID_NONCE.
    InvalidNonce = 0x0102,
    /// 0x0103 INSUFFICIENT_ENTROPY.
    InsufficientEntropy = 0x0103,
    /// 0x0104 INVALID_DEVICE_CONFIGURATION.
    InvalidDeviceConfiguration = 0x0104,
}

impl TdispErrorCode {
    /// Every defined code, in wire order.
    pub const ALL: [Self; 11] = [
        Self::InvalidRequest,
        Self::Busy,
        Self::InvalidInterfaceState,
        Self::Unspecified,
        Self::UnsupportedRequest,
        Self::VersionMismatch,
        Self::VendorSpecific,
        Self::InvalidInterface,
        Self::InvalidNonce,
        Self::InsufficientEntropy,
        Self::InvalidDeviceConfiguration,
    ];

    /// The code for a wire value; fails on undefined codes.
    pub fn from_wire(v: u32) -> Result<Self, Malformed> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.wire() == v)
            .ok_or(Malformed::UnknownValue {
                what: "TDISP error code",
                value: v,
            })
    }

    /// The wire value.
    pub const fn wire(self) -> u32 {
        self as u32
    }
}

/// Registry of a vendor-specific TDISP error's vendor ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryId {
    /// 0x00: PCI-SIG vendor IDs.
    PciSig,
    /// 0x01: CXL vendor IDs.
    Cxl,
}

/// EXTENDED_ERROR_DATA of a VENDOR_SPECIFIC_ERROR: registry_id u8, vendor_id_len u8,
/// vendor_id `[vendor_id_len]`, vendor error data (rest of the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorErrorData {
    /// Registry the vendor ID comes from.
    pub registry_id: RegistryId,
    /// Vendor ID bytes (at most 255).
    pub vendor_id: Vec<u8>,
    /// Vendor-defined error data.
    pub data: Vec<u8>,
}

/// TDISP_ERROR body: error_code u32, error_data u32, then extended error data only for
/// VENDOR_SPECIFIC_ERROR (required there, forbidden otherwise). ERROR_DATA is, per TDISP
/// Table 11-27, the request code for UNSUPPORTED_REQUEST, the length of the extended error data
/// for VENDOR_SPECIFIC_ERROR, and reserved (zero) for every other code; parse and encode
/// enforce this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// The error code.
    pub code: TdispErrorCode,
    /// ERROR_DATA.
    pub data: u32,
    /// Present exactly when `code` is [`TdispErrorCode::VendorSpecific`].
    pub vendor: Option<VendorErrorData>,
}

/// A TDISP request body (what follows the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TdispRequestBody {
    /// GET_TDISP_VERSION (0x81): no body.
    GetVersion,
    /// GET_TDISP_CAPABILITIES (0x82): tsm_caps u32 (reserved in TDISP 1.0, must be zero).
    GetCapabilities,
    /// LOCK_INTERFACE_REQUEST (0x83): [`LockInterfaceParams`].
    LockInterface(LockInterfaceParams),
    /// GET_DEVICE_INTERFACE_REPORT (0x84): offset u16, length u16.
    GetDeviceInterfaceReport {
        /// Byte offset into the report.
        offset: u16,
        /// Bytes requested.
        length: u16,
    },
    /// GET_DEVICE_INTERFACE_STATE (0x85): no body.
    GetDeviceInterfaceState,
    /// START_INTERFACE_REQUEST (0x86): START_INTERFACE_NONCE `[32]`.
    StartInterface(StartNonce),
    /// STOP_INTERFACE_REQUEST (0x87): no body.
    StopInterface,
}

impl TdispRequestBody {
    /// The MessageType of this request.
    pub const fn code(&self) -> u8 {
        match self {
            Self::GetVersion => code::GET_TDISP_VERSION,
            Self::GetCapabilities => code::GET_TDISP_CAPABILITIES,
            Self::LockInterface(_) => code::LOCK_INTERFACE_REQUEST,
            Self::GetDeviceInterfaceReport { .. } => code::GET_DEVICE_INTERFACE_REPORT,
            Self::GetDeviceInterfaceState => code::GET_DEVICE_INTERFACE_STATE,
            Self::StartInterface(_) => code::START_INTERFACE_REQUEST,
            Self::StopInterface => code::STOP_INTERFACE_REQUEST,
        }
    }
}

/// A TDISP request: header plus body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdispRequest {
    /// The TDI addressed.
    pub interface_id: InterfaceId,
    /// The request.
    pub body: TdispRequestBody,
}

/// A TDISP response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TdispResponseBody {
    /// TDISP_VERSION (0x01): version_num_count u8 (at least 1), versions `[count]`.
    Version(Vec<u8>),
    /// TDISP_CAPABILITIES (0x02).
    Capabilities(DeviceCapabilities),
    /// LOCK_INTERFACE_RESPONSE (0x03): START_INTERFACE_NONCE `[32]`.
    LockInterface(StartNonce),
    /// DEVICE_INTERFACE_REPORT (0x04): portion_length u16, remainder_length u16,
    /// report bytes `[portion_length]`.
    DeviceInterfaceReport {
        /// This portion of the report.
        portion: Vec<u8>,
        /// Bytes of the report after this portion.
        remainder_length: u16,
    },
    /// DEVICE_INTERFACE_STATE (0x05): tdi_state u8 (0..=3).
    DeviceInterfaceState(TdiState),
    /// START_INTERFACE_RESPONSE (0x06): no body.
    StartInterface,
    /// STOP_INTERFACE_RESPONSE (0x07): no body.
    StopInterface,
    /// TDISP_ERROR (0x7F).
    Error(ErrorResponse),
}

impl TdispResponseBody {
    /// The MessageType of this response.
    pub const fn code(&self) -> u8 {
        match self {
            Self::Version(_) => code::TDISP_VERSION,
            Self::Capabilities(_) => code::TDISP_CAPABILITIES,
            Self::LockInterface(_) => code::LOCK_INTERFACE_RESPONSE,
            Self::DeviceInterfaceReport { .. } => code::DEVICE_INTERFACE_REPORT,
            Self::DeviceInterfaceState(_) => code::DEVICE_INTERFACE_STATE,
            Self::StartInterface => code::START_INTERFACE_RESPONSE,
            Self::StopInterface => code::STOP_INTERFACE_RESPONSE,
            Self::Error(_) => code::TDISP_ERROR,
        }
    }
}

/// A TDISP response: header plus body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdispResponse {
    /// The TDI the response is about (echoes the request).
    pub interface_id: InterfaceId,
    /// The response.
    pub body: TdispResponseBody,
}

/// The header fields of a payload, read without judging the body. Used by the responder to
/// answer even a request it cannot parse with the right error and interface ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPeek {
    /// TDISPVersion byte.
    pub version: u8,
    /// MessageType byte.
    pub message_type: u8,
    /// FUNCTION_ID as received (not validated).
    pub function_id: u32,
}

impl HeaderPeek {
    /// Reads ProtocolID, version, type and FUNCTION_ID; `None` if the payload is too short or
    /// not TDISP.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let mut r = Reader::new(payload);
        if r.u8("ProtocolID").ok()? != PROTOCOL_ID {
            return None;
        }
        let version = r.u8("TDISPVersion").ok()?;
        let message_type = r.u8("MessageType").ok()?;
        r.take(2, "reserved").ok()?;
        let function_id = r.u32("FUNCTION_ID").ok()?;
        Some(Self {
            version,
            message_type,
            function_id,
        })
    }
}

fn read_header(r: &mut Reader<'_>) -> Result<(u8, InterfaceId), Malformed> {
    let proto = r.u8("ProtocolID")?;
    if proto != PROTOCOL_ID {
        return Err(Malformed::UnknownValue {
            what: "ProtocolID (TDISP)",
            value: proto.into(),
        });
    }
    let version = r.u8("TDISPVersion")?;
    if version != TDISP_VERSION_1_0 {
        return Err(Malformed::UnknownValue {
            what: "TDISPVersion",
            value: version.into(),
        });
    }
    let message_type = r.u8("MessageType")?;
    r.reserved(2, "TDISP header reserved")?;
    let id = InterfaceId::new(r.u32("FUNCTION_ID")?)?;
    r.reserved(8, "INTERFACE_ID reserved")?;
    Ok((message_type, id))
}

fn write_header(w: &mut Writer, message_type: u8, id: InterfaceId) {
    w.u8(PROTOCOL_ID)
        .u8(TDISP_VERSION_1_0)
        .u8(message_type)
        .u16(0)
        .u32(id.function_id())
        .zeros(8);
}

impl TdispRequest {
    /// A request for `interface_id`.
    pub fn new(interface_id: InterfaceId, body: TdispRequestBody) -> Self {
        Self { interface_id, body }
    }

    /// Parses a request payload (from the ProtocolID byte).
    pub fn parse(payload: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(payload);
        let (message_type, interface_id) = read_header(&mut r)?;
        let body = match message_type {
            code::GET_TDISP_VERSION => TdispRequestBody::GetVersion,
            code::GET_TDISP_CAPABILITIES => {
                if r.u32("TSM_CAPS")? != 0 {
                    return Err(Malformed::ReservedNonZero { what: "TSM_CAPS" });
                }
                TdispRequestBody::GetCapabilities
            }
            code::LOCK_INTERFACE_REQUEST => {
                let flags = LockFlags::from_bits(r.u16("LOCK flags")?)?;
                let default_stream_id = r.u8("default_stream_id")?;
                r.reserved(1, "LOCK_INTERFACE reserved")?;
                TdispRequestBody::LockInterface(LockInterfaceParams {
                    flags,
                    default_stream_id,
                    mmio_reporting_offset: r.u64("mmio_reporting_offset")?,
                    bind_p2p_address_mask: r.u64("bind_p2p_address_mask")?,
                })
            }
            code::GET_DEVICE_INTERFACE_REPORT => TdispRequestBody::GetDeviceInterfaceReport {
                offset: r.u16("report offset")?,
                length: r.u16("report length")?,
            },
            code::GET_DEVICE_INTERFACE_STATE => TdispRequestBody::GetDeviceInterfaceState,
            code::START_INTERFACE_REQUEST => {
                TdispRequestBody::StartInterface(StartNonce::read(&mut r)?)
            }
            code::STOP_INTERFACE_REQUEST => TdispRequestBody::StopInterface,
            other => {
                return Err(Malformed::UnknownValue {
                    what: "TDISP request code",
                    value: other.into(),
                })
            }
        };
        r.finish("TDISP request")?;
        Ok(Self { interface_id, body })
    }

    /// Encodes the request payload (from the ProtocolID byte). START_INTERFACE carries the
    /// nonce; callers should not keep the bytes longer than needed.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_LEN + 32);
        write_header(&mut w, self.body.code(), self.interface_id);
        match &self.body {
            TdispRequestBody::GetVersion
            | TdispRequestBody::GetDeviceInterfaceState
            | TdispRequestBody::StopInterface => {}
            TdispRequestBody::GetCapabilities => {
                w.u32(0);
            }
            TdispRequestBody::LockInterface(p) => {
                w.u16(p.flags.bits())
                    .u8(p.default_stream_id)
                    .u8(0)
                    .u64(p.mmio_reporting_offset)
                    .u64(p.bind_p2p_address_mask);
            }
            TdispRequestBody::GetDeviceInterfaceReport { offset, length } => {
                w.u16(*offset).u16(*length);
            }
            TdispRequestBody::StartInterface(n) => {
                w.bytes(n.as_bytes());
            }
        }
        w.into_vec()
    }
}

impl TdispResponse {
    /// A response about `interface_id`.
    pub fn new(interface_id: InterfaceId, body: TdispResponseBody) -> Self {
        Self { interface_id, body }
    }

    /// Parses a response payload (from the ProtocolID byte).
    pub fn parse(payload: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(payload);
        let (message_type, interface_id) = read_header(&mut r)?;
        let body = match message_type {
            code::TDISP_VERSION => {
                let count = r.u8("version_num_count")?;
                if count == 0 {
                    return Err(Malformed::BadLength {
                        what: "version_num_count",
                    });
                }
                TdispResponseBody::Version(r.take(count.into(), "version_num_entry")?.to_vec())
            }
            code::TDISP_CAPABILITIES => {
                let dsm_caps = r.u32("DSM_CAPS")?;
                if dsm_caps & !DeviceCapabilities::DSM_CAPS_XT_MODE != 0 {
                    return Err(Malformed::ReservedNonZero { what: "DSM_CAPS" });
                }
                let req_msgs_supported = r.take_array::<16>("REQ_MSGS_SUPPORTED")?;
                let lock_flags_supported =
                    LockFlags::from_bits(r.u16("LOCK_INTERFACE_FLAGS_SUPPORTED")?)?;
                r.reserved(3, "TDISP_CAPABILITIES reserved")?;
                TdispResponseBody::Capabilities(DeviceCapabilities {
                    dsm_caps,
                    req_msgs_supported,
                    lock_flags_supported,
                    dev_addr_width: r.u8("DEV_ADDR_WIDTH")?,
                    num_req_this: r.u8("NUM_REQ_THIS")?,
                    num_req_all: r.u8("NUM_REQ_ALL")?,
                })
            }
            code::LOCK_INTERFACE_RESPONSE => {
                TdispResponseBody::LockInterface(StartNonce::read(&mut r)?)
            }
            code::DEVICE_INTERFACE_REPORT => {
                let portion_length = r.u16("PORTION_LENGTH")?;
                let remainder_length = r.u16("REMAINDER_LENGTH")?;
                let portion = r.take(portion_length.into(), "report portion")?.to_vec();
                TdispResponseBody::DeviceInterfaceReport {
                    portion,
                    remainder_length,
                }
            }
            code::DEVICE_INTERFACE_STATE => {
                TdispResponseBody::DeviceInterfaceState(TdiState::from_wire(r.u8("TDI_STATE")?)?)
            }
            code::START_INTERFACE_RESPONSE => TdispResponseBody::StartInterface,
            code::STOP_INTERFACE_RESPONSE => TdispResponseBody::StopInterface,
            code::TDISP_ERROR => {
                let code = TdispErrorCode::from_wire(r.u32("ERROR_CODE")?)?;
                let data = r.u32("ERROR_DATA")?;
                if code == TdispErrorCode::VendorSpecific {
                    if usize::try_from(data).ok() != Some(r.remaining()) {
                        return Err(Malformed::BadLength {
                            what: "ERROR_DATA (extended error data length)",
                        });
                    }
                } else if code != TdispErrorCode::UnsupportedRequest && data != 0 {
                    return Err(Malformed::ReservedNonZero { what: "ERROR_DATA" });
                }
                let vendor = if code == TdispErrorCode::VendorSpecific {
                    let registry_id = match r.u8("REGISTRY_ID")? {
                        0 => RegistryId::PciSig,
                        1 => RegistryId::Cxl,
                        v => {
                            return Err(Malformed::UnknownValue {
                                what: "REGISTRY_ID",
                                value: v.into(),
                            })
                        }
                    };
                    let len = r.u8("VENDOR_ID_LEN")?;
                    let vendor_id = r.take(len.into(), "VENDOR_ID")?.to_vec();
                    let data = r.rest().to_vec();
                    r.take(data.len(), "vendor error data")?;
                    Some(VendorErrorData {
                        registry_id,
                        vendor_id,
                        data,
                    })
                } else {
                    None
                };
                TdispResponseBody::Error(ErrorResponse { code, data, vendor })
            }
            other => {
                return Err(Malformed::UnknownValue {
                    what: "TDISP response code",
                    value: other.into(),
                })
            }
        };
        r.finish("TDISP response")?;
        Ok(Self { interface_id, body })
    }

    /// Encodes the response payload (from the ProtocolID byte). Fails only if a variable
    /// field does not fit its length field (or vendor data is inconsistent with the code).
    pub fn encode(&self) -> Result<Vec<u8>, Malformed> {
        let mut w = Writer::with_capacity(HEADER_LEN + 32);
        write_header(&mut w, self.body.code(), self.interface_id);
        match &self.body {
            TdispResponseBody::Version(v) => {
                if v.is_empty() {
                    return Err(Malformed::BadLength {
                        what: "version_num_count",
                    });
                }
                let n = u8::try_from(v.len()).map_err(|_| Malformed::LengthOverflow {
                    what: "version_num_count",
                })?;
                w.u8(n).bytes(v);
            }
            TdispResponseBody::Capabilities(c) => {
                if c.dsm_caps & !DeviceCapabilities::DSM_CAPS_XT_MODE != 0 {
                    return Err(Malformed::ReservedNonZero { what: "DSM_CAPS" });
                }
                w.u32(c.dsm_caps)
                    .bytes(&c.req_msgs_supported)
                    .u16(c.lock_flags_supported.bits())
                    .zeros(3)
                    .u8(c.dev_addr_width)
                    .u8(c.num_req_this)
                    .u8(c.num_req_all);
            }
            TdispResponseBody::LockInterface(n) => {
                w.bytes(n.as_bytes());
            }
            TdispResponseBody::DeviceInterfaceReport {
                portion,
                remainder_length,
            } => {
                w.len_u16(portion.len(), "PORTION_LENGTH")?
                    .u16(*remainder_length)
                    .bytes(portion);
            }
            TdispResponseBody::DeviceInterfaceState(s) => {
                w.u8(s.to_wire());
            }
            TdispResponseBody::StartInterface | TdispResponseBody::StopInterface => {}
            TdispResponseBody::Error(e) => {
                match (&e.vendor, e.code) {
                    (Some(v), TdispErrorCode::VendorSpecific) => {
                        let ext_len = v
                            .vendor_id
                            .len()
                            .saturating_add(2)
                            .saturating_add(v.data.len());
                        if usize::try_from(e.data).ok() != Some(ext_len) {
                            return Err(Malformed::BadLength {
                                what: "ERROR_DATA (extended error data length)",
                            });
                        }
                    }
                    (None, TdispErrorCode::UnsupportedRequest) => {}
                    (None, c) if c != TdispErrorCode::VendorSpecific && e.data == 0 => {}
                    (None, c) if c != TdispErrorCode::VendorSpecific => {
                        return Err(Malformed::ReservedNonZero { what: "ERROR_DATA" })
                    }
                    _ => {
                        return Err(Malformed::BadLength {
                            what: "EXTENDED_ERROR_DATA",
                        })
                    }
                }
                w.u32(e.code.wire()).u32(e.data);
                match (&e.vendor, e.code == TdispErrorCode::VendorSpecific) {
                    (Some(v), true) => {
                        let len = u8::try_from(v.vendor_id.len()).map_err(|_| {
                            Malformed::LengthOverflow {
                                what: "VENDOR_ID_LEN",
                            }
                        })?;
                        w.u8(match v.registry_id {
                            RegistryId::PciSig => 0,
                            RegistryId::Cxl => 1,
                        })
                        .u8(len)
                        .bytes(&v.vendor_id)
                        .bytes(&v.data);
                    }
                    (None, false) => {}
                    _ => {
                        return Err(Malformed::BadLength {
                            what: "EXTENDED_ERROR_DATA",
                        })
                    }
                }
            }
        }
        Ok(w.into_vec())
    }

    /// A TDISP_ERROR response for `interface_id` with no extended data.
    pub fn error(interface_id: InterfaceId, code: TdispErrorCode, data: u32) -> Self {
        Self::new(
            interface_id,
            TdispResponseBody::Error(ErrorResponse {
                code,
                data,
                vendor: None,
            }),
        )
    }
}

/// INTERFACE_INFO bits of the device interface report (bits 15:6 reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InterfaceInfo(u16);

impl InterfaceInfo {
    /// Bit 0: firmware updates not permitted after LOCK.
    pub const NO_UPDATE_AFTER_LOCK: u16 = 0x1;
    /// Bit 1: TDI generates DMA requests without PASID.
    pub const DMA_WITHOUT_PASID: u16 = 0x2;
    /// Bit 2: TDI generates DMA requests with PASID.
    pub const DMA_WITH_PASID: u16 = 0x4;
    /// Bit 3: ATS supported and enabled.
    pub const ATS_SUPPORTED: u16 = 0x8;
    /// Bit 4: PRS supported and enabled.
    pub const PRS_SUPPORTED: u16 = 0x10;
    /// Bit 5: XT mode supported.
    pub const XT_MODE_SUPPORTED: u16 = 0x20;
    const DEFINED: u16 = 0x3F;

    /// From the wire value; fails on reserved bits.
    pub const fn from_bits(bits: u16) -> Result<Self, Malformed> {
        if bits & !Self::DEFINED != 0 {
            return Err(Malformed::ReservedNonZero {
                what: "INTERFACE_INFO",
            });
        }
        Ok(Self(bits))
    }

    /// The wire value.
    pub const fn bits(self) -> u16 {
        self.0
    }
}

/// MMIO_RANGE attributes (bits 15:4 reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MmioRangeAttributes(u16);

impl MmioRangeAttributes {
    /// Bit 0: the range holds the MSI-X table.
    pub const MSIX_TABLE: u16 = 0x1;
    /// Bit 1: the range holds the MSI-X PBA.
    pub const MSIX_PBA: u16 = 0x2;
    /// Bit 2: the range is not TEE memory.
    pub const IS_NON_TEE_MEM: u16 = 0x4;
    /// Bit 3: memory attributes of the range may be updated.
    pub const IS_MEM_ATTR_UPDATABLE: u16 = 0x8;
    const DEFINED: u16 = 0xF;

    /// From the wire value; fails on reserved bits.
    pub const fn from_bits(bits: u16) -> Result<Self, Malformed> {
        if bits & !Self::DEFINED != 0 {
            return Err(Malformed::ReservedNonZero {
                what: "MMIO range attributes",
            });
        }
        Ok(Self(bits))
    }

    /// The wire value.
    pub const fn bits(self) -> u16 {
        self.0
    }
}

/// One MMIO_RANGE (16 bytes): first_page u64 (byte address of the first 4 KiB page, with the
/// LOCK's MMIO reporting offset added),
/// number_of_pages u32, range_attributes u16, range_id u16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioRange {
    /// Byte address of the first 4 KiB page (reporting offset added).
    pub first_page: u64,
    /// Number of 4 KiB pages.
    pub number_of_pages: u32,
    /// Range attributes.
    pub attributes: MmioRangeAttributes,
    /// Range ID (e.g. the BAR).
    pub range_id: u16,
}

/// Length of one MMIO_RANGE in bytes.
pub const MMIO_RANGE_LEN: usize = 16;

/// The device interface report, as assembled from DEVICE_INTERFACE_REPORT portions:
///
/// ```text
/// interface_info u16 | reserved u16 | msi_x_message_control u16 | lnr_control u16 |
/// tph_control u32 | mmio_range_count u32 | MMIO_RANGE [count] |
/// device_specific_info_len u32 | device_specific_info [len]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceReport {
    /// INTERFACE_INFO.
    pub interface_info: InterfaceInfo,
    /// MSI-X Message Control register value.
    pub msix_message_control: u16,
    /// LN Requester Control register value.
    pub lnr_control: u16,
    /// TPH Requester Control register value.
    pub tph_control: u32,
    /// The TDI's MMIO ranges.
    pub mmio_ranges: Vec<MmioRange>,
    /// Device-specific information.
    pub device_specific_info: Vec<u8>,
}

impl InterfaceReport {
    /// Parses a complete report; counts are checked against the bytes present before any
    /// allocation.
    pub fn parse(bytes: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(bytes);
        let interface_info = InterfaceInfo::from_bits(r.u16("INTERFACE_INFO")?)?;
        r.reserved(2, "report reserved")?;
        let msix_message_control = r.u16("MSI_X_MESSAGE_CONTROL")?;
        let lnr_control = r.u16("LNR_CONTROL")?;
        let tph_control = r.u32("TPH_CONTROL")?;
        let count =
            usize::try_from(r.u32("MMIO_RANGE_COUNT")?).map_err(|_| Malformed::BadLength {
                what: "MMIO_RANGE_COUNT",
            })?;
        if count > r.remaining() / MMIO_RANGE_LEN {
            return Err(Malformed::BadLength {
                what: "MMIO_RANGE_COUNT",
            });
        }
        let mut mmio_ranges = Vec::with_capacity(count);
        for _ in 0..count {
            mmio_ranges.push(MmioRange {
                first_page: r.u64("FIRST_PAGE")?,
                number_of_pages: r.u32("NUMBER_OF_PAGES")?,
                attributes: MmioRangeAttributes::from_bits(r.u16("RANGE_ATTRIBUTES")?)?,
                range_id: r.u16("RANGE_ID")?,
            });
        }
        let info_len = usize::try_from(r.u32("DEVICE_SPECIFIC_INFO_LEN")?).map_err(|_| {
            Malformed::BadLength {
                what: "DEVICE_SPECIFIC_INFO_LEN",
            }
        })?;
        let device_specific_info = r.take(info_len, "DEVICE_SPECIFIC_INFO")?.to_vec();
        r.finish("device interface report")?;
        Ok(Self {
            interface_info,
            msix_message_control,
            lnr_control,
            tph_control,
            mmio_ranges,
            device_specific_info,
        })
    }

    /// Encodes the report.
    pub fn encode(&self) -> Result<Vec<u8>, Malformed> {
        let mut w = Writer::new();
        let count =
            u32::try_from(self.mmio_ranges.len()).map_err(|_| Malformed::LengthOverflow {
                what: "MMIO_RANGE_COUNT",
            })?;
        let info_len = u32::try_from(self.device_specific_info.len()).map_err(|_| {
            Malformed::LengthOverflow {
                what: "DEVICE_SPECIFIC_INFO_LEN",
            }
        })?;
        w.u16(self.interface_info.bits())
            .u16(0)
            .u16(self.msix_message_control)
            .u16(self.lnr_control)
            .u32(self.tph_control)
            .u32(count);
        for m in &self.mmio_ranges {
            w.u64(m.first_page)
                .u32(m.number_of_pages)
                .u16(m.attributes.bits())
                .u16(m.range_id);
        }
        w.u32(info_len).bytes(&self.device_specific_info);
        Ok(w.into_vec())
    }
}
