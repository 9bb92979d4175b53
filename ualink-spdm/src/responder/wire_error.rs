//! The one place an [`Error`] becomes an SPDM ERROR response code (DSP0274 Table "ERROR
//! code and error data").

use crate::error::{Error, PeerIncompatible, PeerMisbehaved};
use crate::keyprog::KeyProgError;
use crate::msg::RequestResponseCode;

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

impl Error {
    /// The SPDM ERROR (code, data) that reports this error to a requester.
    ///
    /// The mapping is total and is the only one in the crate: the responder never builds an
    /// ERROR code by other means, and no other error type carries its own code. Data is 0
    /// except for UnsupportedRequest, whose ErrorData is the refused request code (the
    /// responder fills it from the request when the error does not name one).
    pub fn wire_code(&self) -> (u8, u8) {
        match self {
            Error::Malformed(_) => (code::INVALID_REQUEST, 0),
            Error::PeerMisbehaved(p) => match p {
                PeerMisbehaved::UnexpectedMessage { .. } => (code::UNEXPECTED_REQUEST, 0),
                PeerMisbehaved::UnsupportedRequest(c) => (code::UNSUPPORTED_REQUEST, *c),
                PeerMisbehaved::VersionMismatch { .. } | PeerMisbehaved::Downgrade { .. } => {
                    (code::VERSION_MISMATCH, 0)
                }
                PeerMisbehaved::DecryptFailed
                | PeerMisbehaved::SequenceNumber
                | PeerMisbehaved::VerifyDataMismatch { .. } => (code::DECRYPT_ERROR, 0),
                PeerMisbehaved::ErrorResponse { .. } | PeerMisbehaved::RetriesExhausted(_) => {
                    (code::UNSPECIFIED, 0)
                }
                PeerMisbehaved::SelectionNotOffered { .. }
                | PeerMisbehaved::BadSignature { .. }
                | PeerMisbehaved::NonceMismatch { .. }
                | PeerMisbehaved::DigestMismatch { .. }
                | PeerMisbehaved::UnknownSession(_)
                | PeerMisbehaved::ResponseMismatch { .. } => (code::INVALID_REQUEST, 0),
            },
            Error::PeerIncompatible(p) => match p {
                PeerIncompatible::NoCommonVersion => (code::VERSION_MISMATCH, 0),
                PeerIncompatible::TooLarge { .. } => (code::REQUEST_TOO_LARGE, 0),
                PeerIncompatible::MissingCapability { .. } => (code::UNSUPPORTED_REQUEST, 0),
                PeerIncompatible::SessionLimitExceeded { .. } => (code::SESSION_LIMIT_EXCEEDED, 0),
                PeerIncompatible::NoCommonAlgorithm { .. } => (code::INVALID_REQUEST, 0),
            },
            Error::KeyProg(k) => match k {
                KeyProgError::SessionRequired => (code::SESSION_REQUIRED, 0),
                // The VENDOR_DEFINED request carrying an object or protocol we do not serve.
                KeyProgError::UnsupportedProtocol(_) | KeyProgError::UnsupportedObject(_) => (
                    code::UNSUPPORTED_REQUEST,
                    RequestResponseCode::VENDOR_DEFINED_REQUEST.0,
                ),
                KeyProgError::Malformed(_)
                | KeyProgError::UnexpectedObject(_)
                | KeyProgError::Refused(_)
                | KeyProgError::AckMismatch(_) => (code::INVALID_REQUEST, 0),
            },
            Error::CertChain(_) | Error::Tdisp(_) | Error::ApiMisuse(_) | Error::Crypto(_) => {
                (code::UNSPECIFIED, 0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Malformed;
    use crate::keyprog::KeyProgStatus;

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
        assert_eq!(
            Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed).wire_code(),
            (code::DECRYPT_ERROR, 0)
        );
        assert_eq!(Error::ApiMisuse("x").wire_code(), (code::UNSPECIFIED, 0));
    }

    #[test]
    fn unsupported_request_carries_the_refused_code() {
        let unsup = Error::PeerMisbehaved(PeerMisbehaved::UnsupportedRequest(0x85));
        assert_eq!(unsup.wire_code(), (code::UNSUPPORTED_REQUEST, 0x85));
        // An unknown value is a malformed field, never UnsupportedRequest, whatever its label.
        let unknown = Error::Malformed(Malformed::UnknownValue {
            what: "request code",
            value: 0x85,
        });
        assert_eq!(unknown.wire_code(), (code::INVALID_REQUEST, 0));
    }

    #[test]
    fn session_limit_is_session_limit_exceeded() {
        let e = Error::PeerIncompatible(PeerIncompatible::SessionLimitExceeded { max: 1 });
        assert_eq!(e.wire_code(), (code::SESSION_LIMIT_EXCEEDED, 0));
    }

    #[test]
    fn key_programming_refusals_map_once() {
        assert_eq!(
            Error::from(KeyProgError::SessionRequired).wire_code(),
            (code::SESSION_REQUIRED, 0)
        );
        for k in [
            KeyProgError::UnsupportedObject(0x00),
            KeyProgError::UnsupportedProtocol(0x01),
        ] {
            assert_eq!(
                Error::from(k).wire_code(),
                (code::UNSUPPORTED_REQUEST, 0xFE)
            );
        }
        for k in [
            KeyProgError::Malformed(Malformed::Truncated { what: "KEY_PROG" }),
            KeyProgError::UnexpectedObject(0x83),
            KeyProgError::Refused(KeyProgStatus::StaleEpoch),
            KeyProgError::AckMismatch("KP_ACK epoch"),
        ] {
            assert_eq!(Error::from(k).wire_code(), (code::INVALID_REQUEST, 0));
        }
    }
}
