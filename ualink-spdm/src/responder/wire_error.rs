//! The one place an [`Error`] becomes an SPDM ERROR response code (DSP0274 Table "ERROR
//! code and error data").

use crate::error::{Error, Malformed, PeerIncompatible, PeerMisbehaved};

/// SPDM ERROR codes (ERROR Param1) this crate emits or recognises.
pub mod code {
    /// The request was malformed.
    pub const INVALID_REQUEST: u8 = 0x01;
    /// The responder is busy; retry later.
    pub const BUSY: u8 = 0x03;
    /// The request is not allowed in the current state.
    pub const UNEXPECTED_REQUEST: u8 = 0x04;
    /// Unspecified failure.
    pub const UNSPECIFIED: u8 = 0x05;
    /// A secured message or verify data failed to authenticate.
    pub const DECRYPT_ERROR: u8 = 0x06;
    /// The request code is not supported (ERROR Param2 = the request code).
    pub const UNSUPPORTED_REQUEST: u8 = 0x07;
    /// The responder cannot open another session.
    pub const SESSION_LIMIT_EXCEEDED: u8 = 0x0A;
    /// The request is only allowed inside a secured session.
    pub const SESSION_REQUIRED: u8 = 0x0B;
    /// The request does not fit the responder's buffers.
    pub const REQUEST_TOO_LARGE: u8 = 0x0E;
    /// The request's SPDM version is not the negotiated one.
    pub const VERSION_MISMATCH: u8 = 0x41;
    /// The response is not ready; retry with RESPOND_IF_READY.
    pub const RESPONSE_NOT_READY: u8 = 0x42;
    /// The responder lost its state; the requester must restart with GET_VERSION.
    pub const REQUEST_RESYNCH: u8 = 0x43;
}

/// The `what` label a parser uses for an unknown request code. A [`Malformed::UnknownValue`]
/// with this label is answered with UnsupportedRequest (Param2 = the code).
pub const REQUEST_CODE_LABEL: &str = "request code";

impl Error {
    /// The SPDM ERROR (code, data) that reports this error to a requester.
    ///
    /// The mapping is total and is the only one in the crate: the responder never builds an
    /// ERROR code by other means.
    pub fn wire_code(&self) -> (u8, u8) {
        match self {
            Error::Malformed(Malformed::UnknownValue { what, value })
                if *what == REQUEST_CODE_LABEL =>
            {
                (code::UNSUPPORTED_REQUEST, u8::try_from(*value).unwrap_or(0))
            }
            Error::Malformed(_) => (code::INVALID_REQUEST, 0),
            Error::PeerMisbehaved(p) => match p {
                PeerMisbehaved::UnexpectedMessage { .. } => (code::UNEXPECTED_REQUEST, 0),
                PeerMisbehaved::VersionMismatch { .. } | PeerMisbehaved::Downgrade { .. } => {
                    (code::VERSION_MISMATCH, 0)
                }
                PeerMisbehaved::DecryptFailed
                | PeerMisbehaved::SequenceNumber
                | PeerMisbehaved::VerifyDataMismatch { .. } => (code::DECRYPT_ERROR, 0),
                PeerMisbehaved::ErrorResponse { .. } | PeerMisbehaved::RetriesExhausted(_) => {
                    (code::UNSPECIFIED, 0)
                }
                _ => (code::INVALID_REQUEST, 0),
            },
            Error::PeerIncompatible(p) => match p {
                PeerIncompatible::NoCommonVersion => (code::VERSION_MISMATCH, 0),
                PeerIncompatible::TooLarge { .. } => (code::REQUEST_TOO_LARGE, 0),
                PeerIncompatible::MissingCapability { .. } => (code::UNSUPPORTED_REQUEST, 0),
                _ => (code::INVALID_REQUEST, 0),
            },
            _ => (code::UNSPECIFIED, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_covers_the_strict_responder_cases() {
        let unexpected = Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage {
            expected: "GET_VERSION",
            got: 0xE1,
        });
        assert_eq!(unexpected.wire_code(), (code::UNEXPECTED_REQUEST, 0));
        let vm = Error::PeerMisbehaved(PeerMisbehaved::VersionMismatch {
            negotiated: 0x12,
            got: 0x11,
        });
        assert_eq!(vm.wire_code(), (code::VERSION_MISMATCH, 0));
        let bad = Error::Malformed(Malformed::Truncated { what: "x" });
        assert_eq!(bad.wire_code(), (code::INVALID_REQUEST, 0));
        let unsup = Error::Malformed(Malformed::UnknownValue {
            what: REQUEST_CODE_LABEL,
            value: 0x85,
        });
        assert_eq!(unsup.wire_code(), (code::UNSUPPORTED_REQUEST, 0x85));
        assert_eq!(
            Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed).wire_code(),
            (code::DECRYPT_ERROR, 0)
        );
        assert_eq!(Error::ApiMisuse("x").wire_code(), (code::UNSPECIFIED, 0));
    }
}
