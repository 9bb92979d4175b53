//! ERROR (DSP0274 §10.16).
//!
//! ```text
//! 0 SPDMVersion | 7F | Param1 = ErrorCode | Param2 = ErrorData
//! 4 ExtendedErrorData:
//!     ResponseNotReady (0x42): RDTExponent u8 | RequestCode u8 | Token u8 | RDTM u8  (ErrorData reserved)
//!     LargeResponse (0x0F):    Handle u8
//!     Vendor (0xFF):           vendor-defined bytes (kept raw)
//!     every other code:        nothing
//! ```
//! ERROR carries the negotiated version, except in answer to GET_VERSION (0x10); the parser
//! accepts any version byte 0x10..=0x13 so that an old peer's VersionMismatch is understood, and
//! exposes it for the engine to compare.

use alloc::vec::Vec;

use super::header::{RequestResponseCode, SpdmHeader};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Malformed, PeerMisbehaved};

/// An SPDM ERROR code (Param1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u8);

impl ErrorCode {
    /// InvalidRequest.
    pub const INVALID_REQUEST: Self = Self(0x01);
    /// Busy.
    pub const BUSY: Self = Self(0x03);
    /// UnexpectedRequest.
    pub const UNEXPECTED_REQUEST: Self = Self(0x04);
    /// Unspecified.
    pub const UNSPECIFIED: Self = Self(0x05);
    /// DecryptError.
    pub const DECRYPT_ERROR: Self = Self(0x06);
    /// UnsupportedRequest.
    pub const UNSUPPORTED_REQUEST: Self = Self(0x07);
    /// RequestInFlight.
    pub const REQUEST_IN_FLIGHT: Self = Self(0x08);
    /// InvalidResponseCode.
    pub const INVALID_RESPONSE_CODE: Self = Self(0x09);
    /// SessionLimitExceeded.
    pub const SESSION_LIMIT_EXCEEDED: Self = Self(0x0A);
    /// SessionRequired.
    pub const SESSION_REQUIRED: Self = Self(0x0B);
    /// ResetRequired.
    pub const RESET_REQUIRED: Self = Self(0x0C);
    /// ResponseTooLarge.
    pub const RESPONSE_TOO_LARGE: Self = Self(0x0D);
    /// RequestTooLarge.
    pub const REQUEST_TOO_LARGE: Self = Self(0x0E);
    /// LargeResponse.
    pub const LARGE_RESPONSE: Self = Self(0x0F);
    /// MessageLost.
    pub const MESSAGE_LOST: Self = Self(0x10);
    /// InvalidPolicy (SPDM 1.3).
    pub const INVALID_POLICY: Self = Self(0x11);
    /// VersionMismatch.
    pub const VERSION_MISMATCH: Self = Self(0x41);
    /// ResponseNotReady.
    pub const RESPONSE_NOT_READY: Self = Self(0x42);
    /// RequestResynch.
    pub const REQUEST_RESYNCH: Self = Self(0x43);
    /// OperationFailed (SPDM 1.3).
    pub const OPERATION_FAILED: Self = Self(0x44);
    /// NoPendingRequests (SPDM 1.3).
    pub const NO_PENDING_REQUESTS: Self = Self(0x45);
    /// Vendor/other standards defined.
    pub const VENDOR: Self = Self(0xFF);

    /// The spec name of a defined code.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x01 => "InvalidRequest",
            0x03 => "Busy",
            0x04 => "UnexpectedRequest",
            0x05 => "Unspecified",
            0x06 => "DecryptError",
            0x07 => "UnsupportedRequest",
            0x08 => "RequestInFlight",
            0x09 => "InvalidResponseCode",
            0x0A => "SessionLimitExceeded",
            0x0B => "SessionRequired",
            0x0C => "ResetRequired",
            0x0D => "ResponseTooLarge",
            0x0E => "RequestTooLarge",
            0x0F => "LargeResponse",
            0x10 => "MessageLost",
            0x11 => "InvalidPolicy",
            0x41 => "VersionMismatch",
            0x42 => "ResponseNotReady",
            0x43 => "RequestResynch",
            0x44 => "OperationFailed",
            0x45 => "NoPendingRequests",
            0xFF => "Vendor",
            _ => return None,
        })
    }

    /// True for codes defined by SPDM 1.2/1.3 (0x02 InvalidSession was removed in 1.2).
    pub const fn is_known(self) -> bool {
        self.name().is_some()
    }

    /// True for codes a message with header version byte `version` may carry: InvalidPolicy,
    /// OperationFailed and NoPendingRequests exist only from SPDM 1.3 on.
    pub const fn is_defined_in(self, version: u8) -> bool {
        match self.0 {
            0x11 | 0x44 | 0x45 => version >= 0x13,
            _ => self.is_known(),
        }
    }
}

/// ResponseNotReady extended error data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseNotReady {
    /// RDTExponent: the responder needs 2^RDTExponent microseconds.
    pub rdt_exponent: u8,
    /// The request code being processed.
    pub request_code: RequestResponseCode,
    /// Token to echo in RESPOND_IF_READY.
    pub token: u8,
    /// RDTM: multiplier for the time after which the request is dropped.
    pub rdtm: u8,
}

/// Code-specific extended error data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendedErrorData {
    /// No extended data (every code but the three below).
    None,
    /// ResponseNotReady.
    ResponseNotReady(ResponseNotReady),
    /// LargeResponse: the chunking handle.
    LargeResponse {
        /// Handle to pass to CHUNK_GET.
        handle: u8,
    },
    /// Vendor-defined bytes.
    Vendor(Vec<u8>),
}

/// An ERROR response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Header version byte (0x10 in answer to GET_VERSION, else the negotiated one).
    pub version: u8,
    /// ErrorCode (always a known code).
    pub code: ErrorCode,
    /// ErrorData (Param2; 0 for ResponseNotReady).
    pub data: u8,
    /// ExtendedErrorData matching `code`.
    pub extended: ExtendedErrorData,
}

impl ErrorResponse {
    /// An error without extended data.
    pub fn new(version: u8, code: ErrorCode, data: u8) -> Self {
        Self {
            version,
            code,
            data,
            extended: ExtendedErrorData::None,
        }
    }

    /// Parses exactly one ERROR.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("ERROR")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let h = SpdmHeader::read(r)?;
        if h.code != RequestResponseCode::ERROR {
            return Err(PeerMisbehaved::UnexpectedMessage {
                expected: "ERROR",
                got: h.code.0,
            }
            .into());
        }
        if !(0x10..=0x13).contains(&h.version) {
            return Err(Malformed::UnknownValue {
                what: "ERROR SPDMVersion",
                value: u32::from(h.version),
            }
            .into());
        }
        let code = ErrorCode(h.param1);
        if !code.is_defined_in(h.version) {
            return Err(Malformed::UnknownValue {
                what: "ERROR ErrorCode",
                value: u32::from(code.0),
            }
            .into());
        }
        let extended = match code {
            ErrorCode::RESPONSE_NOT_READY => {
                super::zero(h.param2, "ERROR ErrorData (ResponseNotReady)")?;
                let rdt_exponent = r.u8("ResponseNotReady RDTExponent")?;
                let request_code = RequestResponseCode(r.u8("ResponseNotReady RequestCode")?);
                if !request_code.is_request() || request_code.name().is_none() {
                    return Err(Malformed::UnknownValue {
                        what: "ResponseNotReady RequestCode",
                        value: u32::from(request_code.0),
                    }
                    .into());
                }
                let token = r.u8("ResponseNotReady Token")?;
                let rdtm = r.u8("ResponseNotReady RDTM")?;
                ExtendedErrorData::ResponseNotReady(ResponseNotReady {
                    rdt_exponent,
                    request_code,
                    token,
                    rdtm,
                })
            }
            ErrorCode::LARGE_RESPONSE => ExtendedErrorData::LargeResponse {
                handle: r.u8("LargeResponse Handle")?,
            },
            ErrorCode::VENDOR => {
                let rest = r.rest();
                let v = super::take_vec(r, rest.len(), "ERROR vendor data")?;
                ExtendedErrorData::Vendor(v)
            }
            _ => ExtendedErrorData::None,
        };
        Ok(Self {
            version: h.version,
            code,
            data: h.param2,
            extended,
        })
    }

    /// Encodes the message; fails if `extended` does not match `code`.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = Writer::with_capacity(8);
        SpdmHeader {
            version: self.version,
            code: RequestResponseCode::ERROR,
            param1: self.code.0,
            param2: self.data,
        }
        .write(&mut w);
        match (&self.extended, self.code) {
            (ExtendedErrorData::ResponseNotReady(n), ErrorCode::RESPONSE_NOT_READY) => {
                w.u8(n.rdt_exponent)
                    .u8(n.request_code.0)
                    .u8(n.token)
                    .u8(n.rdtm);
            }
            (ExtendedErrorData::LargeResponse { handle }, ErrorCode::LARGE_RESPONSE) => {
                w.u8(*handle);
            }
            (ExtendedErrorData::Vendor(v), ErrorCode::VENDOR) => {
                w.bytes(v);
            }
            (ExtendedErrorData::None, c)
                if c != ErrorCode::RESPONSE_NOT_READY
                    && c != ErrorCode::LARGE_RESPONSE
                    && c != ErrorCode::VENDOR => {}
            _ => {
                return Err(Error::ApiMisuse(
                    "ERROR extended data does not match its code",
                ))
            }
        }
        Ok(w.into_vec())
    }
}
