//! The crate's error type, classed by who is at fault (rustls style).
//!
//! * [`Malformed`]: bytes that do not parse (the peer, or a corrupt transport).
//! * [`PeerMisbehaved`]: well-formed bytes that break the protocol.
//! * [`PeerIncompatible`]: a well-behaved peer we cannot talk to (versions, algorithms).
//! * [`Error::ApiMisuse`]: the local caller asked for something illegal in this state.
//! * [`Error::Crypto`]: a local cryptographic operation failed.
//! * [`Error::CertChain`], [`Error::Tdisp`], [`Error::KeyProg`]: refusals of the certificate
//!   verifier, the TDISP interface state machine and link-key programming.
//!
//! [`Error::wire_code`] (in `responder::wire_error`) is the single place an error becomes an
//! SPDM ERROR code.

use crate::cert_chain::CertError;
use crate::keyprog::KeyProgError;
use crate::tdisp::TdispError;

/// Every failure this crate reports.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bytes that do not parse.
    #[error("malformed message: {0}")]
    Malformed(#[from] Malformed),
    /// A peer that broke the protocol.
    #[error("peer misbehaved: {0}")]
    PeerMisbehaved(#[from] PeerMisbehaved),
    /// A peer we cannot interoperate with.
    #[error("peer incompatible: {0}")]
    PeerIncompatible(#[from] PeerIncompatible),
    /// A certificate chain that failed verification.
    #[error("certificate chain rejected: {0}")]
    CertChain(#[from] CertError),
    /// A TDISP request refused by the interface state machine.
    #[error("TDISP: {0}")]
    Tdisp(#[from] TdispError),
    /// A link-key programming request refused (in the clear, malformed, unsupported object).
    /// [`KeyProgError::SessionRequired`] is answered with SPDM ERROR SessionRequired.
    #[error("key programming: {0}")]
    KeyProg(#[from] KeyProgError),
    /// The local caller asked for something this state does not allow.
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
    /// A local cryptographic operation failed (key generation, signing).
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
}

/// Bytes that do not parse. `what` names the field or message.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The input ended inside `what`.
    #[error("truncated at {what}")]
    Truncated {
        /// Field that did not fit.
        what: &'static str,
    },
    /// Bytes were left after `what` was complete.
    #[error("trailing bytes after {what}")]
    TrailingBytes {
        /// Message or structure that was complete.
        what: &'static str,
    },
    /// A reserved field or bit was not zero.
    #[error("reserved bits set in {what}")]
    ReservedNonZero {
        /// Field with reserved bits set.
        what: &'static str,
    },
    /// A code point that is not defined (or not allowed here).
    #[error("unknown value {value:#x} for {what}")]
    UnknownValue {
        /// Field holding the value.
        what: &'static str,
        /// The value received.
        value: u32,
    },
    /// A length field inconsistent with the data or the negotiated parameters.
    #[error("bad length in {what}")]
    BadLength {
        /// Field holding the length.
        what: &'static str,
    },
    /// A length that does not fit its wire field.
    #[error("length overflows {what}")]
    LengthOverflow {
        /// Field that would overflow.
        what: &'static str,
    },
}

/// Well-formed bytes that break the protocol.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerMisbehaved {
    /// A message that is not allowed in the current state.
    #[error("unexpected message {got:#04x} (expected {expected})")]
    UnexpectedMessage {
        /// What the state machine was waiting for.
        expected: &'static str,
        /// The request/response code received.
        got: u8,
    },
    /// The header's SPDM version differs from the negotiated one.
    #[error("message carries version {got:#04x}, negotiated {negotiated:#04x}")]
    VersionMismatch {
        /// Negotiated version byte.
        negotiated: u8,
        /// Version byte received.
        got: u8,
    },
    /// The peer answered with a lower version than the highest common one (downgrade).
    #[error("version downgrade: highest common {expected:#04x}, peer selected {got:#04x}")]
    Downgrade {
        /// Highest common version.
        expected: u8,
        /// Version the peer used.
        got: u8,
    },
    /// The peer selected something it was not offered.
    #[error("peer selected {what} that was not offered")]
    SelectionNotOffered {
        /// Which parameter.
        what: &'static str,
    },
    /// A signature did not verify.
    #[error("signature on {what} does not verify")]
    BadSignature {
        /// Message whose signature failed.
        what: &'static str,
    },
    /// A nonce or context echo did not match what we sent.
    #[error("{what} does not echo our nonce")]
    NonceMismatch {
        /// Message with the wrong echo.
        what: &'static str,
    },
    /// An HMAC verify-data did not match.
    #[error("verify data in {what} does not match")]
    VerifyDataMismatch {
        /// Message carrying the verify data.
        what: &'static str,
    },
    /// A digest (cert chain hash, root hash) did not match.
    #[error("digest mismatch in {what}")]
    DigestMismatch {
        /// What was compared.
        what: &'static str,
    },
    /// The peer answered with an SPDM ERROR.
    #[error("peer returned ERROR {code:#04x} (data {data:#04x})")]
    ErrorResponse {
        /// ERROR code (Param1).
        code: u8,
        /// Error data (Param2).
        data: u8,
    },
    /// A secured message failed authentication; the session is over.
    #[error("secured message failed to decrypt; session terminated")]
    DecryptFailed,
    /// A secured message with an unexpected session ID.
    #[error("unknown session id {0:#010x}")]
    UnknownSession(u32),
    /// A sequence number was replayed or skipped.
    #[error("secured message sequence number out of order")]
    SequenceNumber,
    /// The peer kept answering Busy/ResponseNotReady past our retry bound.
    #[error("peer still busy after {0} retries")]
    RetriesExhausted(u8),
    /// A response that does not answer the request sent (wrong slot, tag, index...).
    #[error("response field {what} does not match the request")]
    ResponseMismatch {
        /// Field that disagrees.
        what: &'static str,
    },
    /// A request code that is not defined, not a request, or not implemented by this
    /// responder (SPDM ERROR UnsupportedRequest, ErrorData = this code).
    #[error("unsupported request code {0:#04x}")]
    UnsupportedRequest(u8),
}

/// A well-behaved peer we cannot interoperate with.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerIncompatible {
    /// No SPDM version in common (we speak 1.2 and 1.3).
    #[error("no common SPDM version (we support 1.2 and 1.3)")]
    NoCommonVersion,
    /// No algorithm in common for `what`.
    #[error("no common {what} algorithm")]
    NoCommonAlgorithm {
        /// Algorithm family.
        what: &'static str,
    },
    /// The peer lacks a capability we require.
    #[error("peer lacks capability {what}")]
    MissingCapability {
        /// Capability name.
        what: &'static str,
    },
    /// The peer's message exceeds what we can buffer.
    #[error("message too large for our buffers: {what}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
    },
    /// The requester asked for a session beyond the number the responder holds at once
    /// (KEY_EXCHANGE while a session is open; SPDM ERROR SessionLimitExceeded).
    #[error("session limit exceeded (at most {max} open at once)")]
    SessionLimitExceeded {
        /// Sessions the responder holds at once.
        max: u8,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
