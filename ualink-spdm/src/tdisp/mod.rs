//! TDISP 1.0 (PCIe TEE Device Interface Security Protocol), carried in SPDM VENDOR_DEFINED
//! messages with the PCI-SIG vendor ID and ProtocolID 0x01.
//!
//! * [`msg`]: every TDISP 1.0 message and the device interface report, byte-exact with
//!   libspdm/spdm-emu (known-answer tests in `tests/tdisp_kat.rs`). Codecs start at the
//!   ProtocolID byte, i.e. at the first byte of the VENDOR_DEFINED payload.
//! * [`state`]: the device-side TDI state machine, enforced in one function
//!   ([`state::Tdi::handle`]), owning the single-use 32-byte START nonce.
//! * [`responder`]: the device side: request payload in, response payload out.
//! * [`requester`]: the TSM side: request builders and response validators, sans-IO.
//!
//! [`TdispError`] is both what the device refuses a request with (it maps to exactly one
//! TDISP_ERROR code, [`TdispError::code`]) and what the requester reports when a device
//! answered TDISP_ERROR.
//!
//! Where the TDISP text (PCIe Base 6.x, chapter 11) is more precise than the project's
//! PROTOCOL.md summary or the spdm-emu reference device, the specification is followed:
//! LOCK without keys is INVALID_REQUEST (Table 11-12) and the keys must come from the locking
//! SPDM session (§11.3.8, [`responder::TdispResponder::respond_in_session`]); STOP is never
//! refused for its state (§11.3.16); ERROR_DATA carries the request code for
//! UNSUPPORTED_REQUEST and the extended-data length for VENDOR_SPECIFIC_ERROR, and is reserved
//! otherwise (Table 11-27); the FUNCTION_ID segment is reserved unless Segment Valid is set.

pub mod msg;
pub mod requester;
pub mod responder;
pub mod state;

use crate::error::Malformed;

pub use msg::TdispErrorCode;
pub use state::TdiState;

/// ProtocolID of TDISP inside a PCI-SIG VENDOR_DEFINED payload.
pub const PROTOCOL_ID: u8 = 0x01;
/// The only TDISP version this crate speaks (1.0, encoded major.minor nibbles).
pub const TDISP_VERSION_1_0: u8 = 0x10;
/// Length of the START_INTERFACE nonce in bytes.
pub const NONCE_LEN: usize = 32;

/// A TDISP request refused by a device (ours, or the peer's TDISP_ERROR seen by a requester).
///
/// Every variant maps to one wire error code ([`TdispError::code`]); the mapping is the only
/// place a refusal becomes a TDISP_ERROR.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TdispError {
    /// The request did not parse (wire code INVALID_REQUEST 0x01).
    #[error("invalid request: {0}")]
    InvalidRequest(Malformed),
    /// A request that must arrive inside an SPDM secured session came outside one. Sent as
    /// INVALID_REQUEST (0x01): TDISP has no code of its own for it.
    #[error("TDISP request outside a secured session refused")]
    SessionRequired,
    /// The device is busy; retry later (BUSY 0x03).
    #[error("device busy")]
    Busy,
    /// The request is not allowed in the interface's current state (INVALID_INTERFACE_STATE 0x04).
    #[error("request {request:#04x} not allowed in TDI state {state:?}")]
    InvalidInterfaceState {
        /// State the interface was in (unchanged by the refusal).
        state: TdiState,
        /// TDISP request code that was refused (0 for a device-side event).
        request: u8,
    },
    /// The device failed for a reason it does not name (UNSPECIFIED 0x05).
    #[error("unspecified device failure")]
    Unspecified,
    /// A request code the device does not implement (UNSUPPORTED_REQUEST 0x07).
    #[error("unsupported TDISP request {0:#04x}")]
    UnsupportedRequest(u8),
    /// A TDISP version other than 1.0 (VERSION_MISMATCH 0x41).
    #[error("TDISP version {0:#04x} not supported (we speak 1.0)")]
    VersionMismatch(u8),
    /// The interface ID names no interface of this device (INVALID_INTERFACE 0x101).
    #[error("no TDI with function id {0:#010x}")]
    InvalidInterface(u32),
    /// START_INTERFACE carried a nonce that is not the live one from LOCK (INVALID_NONCE 0x102).
    #[error("START_INTERFACE nonce does not match the one issued at LOCK")]
    InvalidNonce,
    /// The device could not gather entropy for the nonce (INSUFFICIENT_ENTROPY 0x103).
    #[error("insufficient entropy for the START_INTERFACE nonce")]
    InsufficientEntropy,
    /// The device configuration does not allow the request (INVALID_DEVICE_CONFIGURATION 0x104).
    #[error("invalid device configuration: {0}")]
    InvalidDeviceConfiguration(&'static str),
    /// The peer device answered with TDISP_ERROR `code` (what a requester reports).
    #[error("device answered TDISP_ERROR {code:?} (data {data:#x})")]
    Peer {
        /// The error code received.
        code: TdispErrorCode,
        /// The ERROR_DATA received.
        data: u32,
    },
    /// LOCK refused because the interface's link keys are not live. Sent on the wire as
    /// INVALID_REQUEST (0x01), the code TDISP Table 11-12 gives for "keys have not been
    /// configured for all sub-streams of the default stream".
    #[error("link keys for this interface are not live; LOCK refused")]
    KeysNotLive,
}

impl TdispError {
    /// The TDISP_ERROR code this refusal is sent as.
    pub const fn code(&self) -> TdispErrorCode {
        match self {
            Self::InvalidRequest(_) | Self::SessionRequired | Self::KeysNotLive => {
                TdispErrorCode::InvalidRequest
            }
            Self::Busy => TdispErrorCode::Busy,
            Self::InvalidInterfaceState { .. } => TdispErrorCode::InvalidInterfaceState,
            Self::Unspecified => TdispErrorCode::Unspecified,
            Self::UnsupportedRequest(_) => TdispErrorCode::UnsupportedRequest,
            Self::VersionMismatch(_) => TdispErrorCode::VersionMismatch,
            Self::InvalidInterface(_) => TdispErrorCode::InvalidInterface,
            Self::InvalidNonce => TdispErrorCode::InvalidNonce,
            Self::InsufficientEntropy => TdispErrorCode::InsufficientEntropy,
            Self::Peer { code, .. } => *code,
            Self::InvalidDeviceConfiguration(_) => TdispErrorCode::InvalidDeviceConfiguration,
        }
    }

    /// The ERROR_DATA field sent with [`Self::code`]: the request code for
    /// UNSUPPORTED_REQUEST (TDISP Table 11-27), reserved (zero) for every other code we send.
    pub const fn error_data(&self) -> u32 {
        match self {
            Self::UnsupportedRequest(c) => *c as u32,
            Self::Peer { data, .. } => *data,
            _ => 0,
        }
    }
}

impl From<Malformed> for TdispError {
    fn from(m: Malformed) -> Self {
        Self::InvalidRequest(m)
    }
}
