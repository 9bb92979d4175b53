//! SPDM 1.2/1.3 message codecs (DSP0274), one module per message family.
//!
//! Every message type has
//! * `parse(bytes, ..) -> Result<Self, Error>`: accepts exactly one message and nothing more
//!   (trailing bytes are [`Malformed::TrailingBytes`]); reserved fields and bits must be zero
//!   ([`Malformed::ReservedNonZero`]); undefined code points are [`Malformed::UnknownValue`];
//!   a header code that is not this message is [`PeerMisbehaved::UnexpectedMessage`].
//! * `encode(&self) -> Result<Vec<u8>, Error>`: the exact inverse of `parse` (fails only when a
//!   variable-length field does not fit its length field).
//!
//! Messages whose layout depends on negotiation (hash size H, signature size S, DHE exchange size,
//! whether a MeasurementSummaryHash / ResponderVerifyData / RequesterContext is present) take a
//! [`MsgContext`]; they also check that the header carries `ctx.version`
//! ([`PeerMisbehaved::VersionMismatch`]). Fixed-layout messages parse without a context and
//! expose the version they carry (`.version`), so the engine can compare it with the negotiated
//! one; the dispatchers [`SpdmRequest::parse`] / [`SpdmResponse::parse`] do that comparison for
//! every message when given a context.
//!
//! Signed messages expose the exact bytes that enter the transcript before their signature:
//! [`ChallengeAuth::signed_portion`], [`Measurements::signed_portion`],
//! [`KeyExchangeRsp::signed_portion`] / [`KeyExchangeRsp::without_verify_data`],
//! [`Finish::signed_portion`] / [`Finish::without_verify_data`],
//! [`PskExchangeRsp::without_verify_data`]. They slice the received bytes (as received, never
//! re-encoded) at offsets computed from the parsed fields.
//!
//! # Using the codecs from an engine
//!
//! * Before ALGORITHMS, parse with `ctx = None` (only GET_VERSION..ALGORITHMS, ERROR and the
//!   fixed-layout messages are accepted); afterwards build the context once with
//!   [`MsgContext::from_negotiation`] and, for each response, refine it with
//!   [`MsgContext::for_response_to`] the request it answers (that is what sizes the optional
//!   MeasurementSummaryHash and the MEASUREMENTS signature). After a new GET_VERSION, parse the
//!   VERSION (or ERROR, which then carries 0x10) with `ctx = None` again.
//! * Expecting a specific response? Parse with [`SpdmResponse::parse`] and match, so that an
//!   ERROR (Busy, ResponseNotReady, ...) arrives as [`SpdmResponse::Error`] rather than as an
//!   unexpected-code error from the specific type's `parse`.
//! * PCI DOE pads every message to a DWORD: use [`SpdmRequest::parse_padded`] /
//!   [`SpdmResponse::parse_padded`], which accept at most three zero bytes and return the
//!   message length; transcripts take only that many bytes.
//! * Encapsulated flows: [`EncapsulatedRequest::inner`] / [`EncapsulatedResponseAck::inner`] and
//!   [`DeliverEncapsulatedResponse::inner`] parse the wrapped message with the context reversed
//!   ([`MsgContext::reversed`]: the requester's signature size and multi-key setting apply).
//!
//! # Transcripts (checked against the captured libspdm signatures, `tests/msg_signed_kat.rs`)
//!
//! * M1 = VCA ‖ every GET_DIGESTS/DIGESTS and GET_CERTIFICATE/CERTIFICATE pair (all slots, in
//!   order) ‖ CHALLENGE ‖ `ChallengeAuth::signed_portion`.
//! * L1 = VCA ‖ GET_MEASUREMENTS ‖ `Measurements::signed_portion` (1.2 and 1.3).
//! * TH for the KEY_EXCHANGE_RSP signature = VCA ‖ [DIGESTS response, 1.3 with MULTI_KEY_CONN]
//!   ‖ Hash(certificate chain) ‖ KEY_EXCHANGE ‖ `KeyExchangeRsp::signed_portion`; the DIGESTS
//!   comes *before* the chain hash.

use alloc::vec::Vec;

use crate::algo::SpdmVersion;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Malformed, PeerIncompatible, PeerMisbehaved};

pub mod algorithms;
pub mod capabilities;
pub mod certificate;
pub mod challenge;
pub mod chunk;
pub mod digests;
pub mod encapsulated;
pub mod end_session;
pub mod error;
pub mod finish;
pub mod header;
pub mod heartbeat;
pub mod key_exchange;
pub mod key_update;
pub mod measurements;
pub mod opaque;
pub mod psk;
pub mod respond_if_ready;
pub mod vendor;
pub mod version;

mod dispatch;

pub use algorithms::{
    AeadBits, AlgStruct, AlgType, Algorithms, AsymBits, DheBits, ExtAlg, HashBits, KeyScheduleBits,
    MeasHashBits, MeasSpec, NegotiateAlgorithms, OtherParams,
};
pub use capabilities::{Capabilities, CapabilityFlags, GetCapabilities};
pub use certificate::{Certificate, GetCertificate};
pub use challenge::{Challenge, ChallengeAuth, MeasurementSummaryType};
pub use chunk::{ChunkGet, ChunkResponse, ChunkSend, ChunkSendAck};
pub use digests::{Digests, GetDigests, KeyPairInfo};
pub use dispatch::{SpdmRequest, SpdmResponse};
pub use encapsulated::{
    AckPayload, DeliverEncapsulatedResponse, EncapsulatedRequest, EncapsulatedResponseAck,
    GetEncapsulatedRequest,
};
pub use end_session::{EndSession, EndSessionAck};
pub use error::{ErrorCode, ErrorResponse, ExtendedErrorData, ResponseNotReady};
pub use finish::{Finish, FinishRsp};
pub use header::{RequestResponseCode, SpdmHeader};
pub use heartbeat::{Heartbeat, HeartbeatAck};
pub use key_exchange::{KeyExchange, KeyExchangeRsp, MutAuthRequested};
pub use key_update::{KeyUpdate, KeyUpdateAck, KeyUpdateOp};
pub use measurements::{
    ContentChanged, DmtfValueType, GetMeasurements, MeasurementBlock, MeasurementOperation,
    Measurements,
};
pub use opaque::{OpaqueData, OpaqueElement, SecuredMessageVersionData};
pub use psk::{PskExchange, PskExchangeRsp, PskFinish, PskFinishRsp};
pub use respond_if_ready::RespondIfReady;
pub use vendor::{PciSigProtocol, VendorDefinedRequest, VendorDefinedResponse};
pub use version::{GetVersion, Version, VersionNumber};

/// Nonce length in CHALLENGE, GET_MEASUREMENTS and their responses.
pub const NONCE_LEN: usize = 32;
/// Random-data length in KEY_EXCHANGE and KEY_EXCHANGE_RSP.
pub const RANDOM_LEN: usize = 32;
/// RequesterContext length (SPDM 1.3 CHALLENGE/GET_MEASUREMENTS and their responses).
pub const REQUESTER_CONTEXT_LEN: usize = 8;

/// Everything negotiation fixes that message layouts depend on, plus the few facts about the
/// pending request that shape its response.
///
/// Build one with [`MsgContext::from_negotiation`] after ALGORITHMS, then refine it for a
/// specific response with [`MsgContext::for_response_to`]. For messages inside an encapsulated
/// flow (the responder acting as requester), use [`MsgContext::reversed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgContext {
    /// Negotiated version; every message must carry it in its header.
    pub version: SpdmVersion,
    /// H: BaseHashSel digest length.
    pub hash_len: usize,
    /// S of the side that signs responses in this direction (BaseAsymSel for the responder).
    pub sig_len: usize,
    /// S of the other side (ReqBaseAsymAlg for the requester: FINISH, mutual-auth CHALLENGE_AUTH).
    pub req_sig_len: usize,
    /// D: DHE ExchangeData length (0 if no DHE group was selected).
    pub dhe_len: usize,
    /// HANDSHAKE_IN_THE_CLEAR_CAP set by both sides: KEY_EXCHANGE_RSP carries no
    /// ResponderVerifyData and FINISH_RSP carries one.
    pub handshake_in_clear: bool,
    /// 1.3 MULTI_KEY_CONN for the responder's key pairs: DIGESTS carries KeyPairID,
    /// CertificateInfo and KeyUsageMask per slot.
    pub multi_key_conn: bool,
    /// 1.3 MULTI_KEY_CONN for the requester's key pairs (DIGESTS in encapsulated flows).
    pub multi_key_conn_req: bool,
    /// The pending request (CHALLENGE Param2 / KEY_EXCHANGE Param1 / PSK_EXCHANGE Param1) asked
    /// for a measurement summary hash, so the response carries H bytes of it.
    pub summary_hash_requested: bool,
    /// The pending GET_MEASUREMENTS asked for a signature (Param1 bit 0).
    pub measurement_signature_requested: bool,
}

impl MsgContext {
    /// A context with the given sizes and every optional field off.
    pub const fn new(version: SpdmVersion, hash_len: usize, sig_len: usize) -> Self {
        Self {
            version,
            hash_len,
            sig_len,
            req_sig_len: 0,
            dhe_len: 0,
            handshake_in_clear: false,
            multi_key_conn: false,
            multi_key_conn_req: false,
            summary_hash_requested: false,
            measurement_signature_requested: false,
        }
    }

    /// Derives the context from the ALGORITHMS response and both sides' CAPABILITIES flags.
    /// Sizes come from the selected wire bits, so this works for algorithms the crypto layer
    /// does not implement (it only sizes fields); a selection that is not a single known bit
    /// is an error.
    pub fn from_negotiation(
        algorithms: &Algorithms,
        requester_flags: CapabilityFlags,
        responder_flags: CapabilityFlags,
    ) -> Result<Self, Error> {
        let hash_len = algorithms.base_hash_sel.digest_len()?;
        let sig_len = algorithms.base_asym_sel.signature_len()?;
        let req_sig_len = match algorithms.alg_struct(AlgType::REQ_BASE_ASYM) {
            Some(s) if s.supported != 0 => AsymBits(u32::from(s.supported)).signature_len()?,
            _ => 0,
        };
        let dhe_len = match algorithms.alg_struct(AlgType::DHE) {
            Some(s) if s.supported != 0 => DheBits(s.supported).exchange_len()?,
            _ => 0,
        };
        let clear = CapabilityFlags::HANDSHAKE_IN_THE_CLEAR_CAP;
        let multi = algorithms.version >= SpdmVersion::V13
            && algorithms
                .other_params_sel
                .contains(OtherParams::MULTI_KEY_CONN);
        // MULTI_KEY_CONN in ALGORITHMS applies to the responder's keys; for the requester's keys
        // it is implied by the requester's MULTI_KEY_CAP (01b = only, 10b = negotiated, and the
        // requester asked for it in NEGOTIATE_ALGORITHMS, which a conforming responder echoes).
        let req_multi = algorithms.version >= SpdmVersion::V13
            && match requester_flags.multi_key_cap() {
                1 => true,
                2 => multi,
                _ => false,
            };
        Ok(Self {
            version: algorithms.version,
            hash_len,
            sig_len,
            req_sig_len,
            dhe_len,
            handshake_in_clear: requester_flags.contains(clear) && responder_flags.contains(clear),
            multi_key_conn: multi,
            multi_key_conn_req: req_multi,
            summary_hash_requested: false,
            measurement_signature_requested: false,
        })
    }

    /// The context for parsing the response to `request`: sets
    /// [`summary_hash_requested`](Self::summary_hash_requested) and
    /// [`measurement_signature_requested`](Self::measurement_signature_requested) from it.
    pub fn for_response_to(mut self, request: &SpdmRequest) -> Self {
        self.summary_hash_requested = match request {
            SpdmRequest::Challenge(c) => c.summary_type != MeasurementSummaryType::None,
            SpdmRequest::KeyExchange(k) => k.summary_type != MeasurementSummaryType::None,
            SpdmRequest::PskExchange(p) => p.summary_type != MeasurementSummaryType::None,
            _ => false,
        };
        self.measurement_signature_requested = match request {
            SpdmRequest::GetMeasurements(m) => m.signature_requested(),
            _ => false,
        };
        self
    }

    /// The context for messages of an encapsulated flow, where the responder sends requests and
    /// the requester answers: signature sizes and multi-key settings swap roles.
    pub fn reversed(mut self) -> Self {
        core::mem::swap(&mut self.sig_len, &mut self.req_sig_len);
        core::mem::swap(&mut self.multi_key_conn, &mut self.multi_key_conn_req);
        self
    }
}

/// Reads the header, checks the code and (when `expected` is given) the version.
///
/// Versions other than 1.2 and 1.3 are [`PeerIncompatible::NoCommonVersion`]; with `expected`
/// set, any other byte is [`PeerMisbehaved::VersionMismatch`].
pub(crate) fn begin(
    r: &mut Reader<'_>,
    code: RequestResponseCode,
    expected: Option<SpdmVersion>,
) -> Result<(SpdmVersion, u8, u8), Error> {
    let h = SpdmHeader::read(r)?;
    if h.code != code {
        return Err(PeerMisbehaved::UnexpectedMessage {
            expected: code.name().unwrap_or("?"),
            got: h.code.0,
        }
        .into());
    }
    if let Some(v) = expected {
        if h.version != v.byte() {
            return Err(PeerMisbehaved::VersionMismatch {
                negotiated: v.byte(),
                got: h.version,
            }
            .into());
        }
    }
    let version = SpdmVersion::from_byte(h.version).ok_or(PeerIncompatible::NoCommonVersion)?;
    Ok((version, h.param1, h.param2))
}

/// Starts a message: the header with its version byte.
pub(crate) fn start(version: SpdmVersion, code: RequestResponseCode, p1: u8, p2: u8) -> Writer {
    let mut w = Writer::with_capacity(64);
    SpdmHeader {
        version: version.byte(),
        code,
        param1: p1,
        param2: p2,
    }
    .write(&mut w);
    w
}

/// Fails with [`Malformed::ReservedNonZero`] if `value` has bits outside `allowed`.
pub(crate) fn only_bits(value: u8, allowed: u8, what: &'static str) -> Result<(), Malformed> {
    if value & !allowed != 0 {
        return Err(Malformed::ReservedNonZero { what });
    }
    Ok(())
}

/// Fails with [`Malformed::ReservedNonZero`] unless `value` is zero.
pub(crate) fn zero(value: u8, what: &'static str) -> Result<(), Malformed> {
    only_bits(value, 0, what)
}

/// A SPDM 1.2/1.3 slot ID (0..=7), checked.
pub(crate) fn slot(value: u8, what: &'static str) -> Result<u8, Malformed> {
    if value > 7 {
        return Err(Malformed::UnknownValue {
            what,
            value: u32::from(value),
        });
    }
    Ok(value)
}

/// Takes `len` bytes into an owned vector.
pub(crate) fn take_vec(
    r: &mut Reader<'_>,
    len: usize,
    what: &'static str,
) -> Result<Vec<u8>, Malformed> {
    Ok(r.take(len, what)?.to_vec())
}

/// Accepts what PCI DOE adds after a message: up to 3 zero bytes of DWORD padding.
pub(crate) fn finish_padded(r: &Reader<'_>, what: &'static str) -> Result<(), Malformed> {
    let rest = r.rest();
    if rest.len() > 3 || rest.iter().any(|b| *b != 0) {
        return Err(Malformed::TrailingBytes { what });
    }
    Ok(())
}

/// Slices the first `len` bytes of a received message (the part a signature or MAC covers).
pub(crate) fn prefix<'a>(
    raw: &'a [u8],
    len: Option<usize>,
    what: &'static str,
) -> Result<&'a [u8], Error> {
    len.and_then(|l| raw.get(..l))
        .ok_or(Error::Malformed(Malformed::Truncated { what }))
}

/// Defines a message that is only a header with both params reserved.
macro_rules! header_only {
    ($(#[$doc:meta])* $name:ident, $code:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// Header version.
            pub version: $crate::algo::SpdmVersion,
        }

        impl $name {
            /// Parses exactly one message.
            pub fn parse(bytes: &[u8]) -> Result<Self, $crate::error::Error> {
                let mut r = $crate::codec::Reader::new(bytes);
                let m = Self::read(&mut r)?;
                r.finish($label)?;
                Ok(m)
            }

            pub(crate) fn read(
                r: &mut $crate::codec::Reader<'_>,
            ) -> Result<Self, $crate::error::Error> {
                let (version, p1, p2) = $crate::msg::begin(
                    r,
                    $crate::msg::RequestResponseCode::$code,
                    None,
                )?;
                $crate::msg::zero(p1, concat!($label, " Param1"))?;
                $crate::msg::zero(p2, concat!($label, " Param2"))?;
                Ok(Self { version })
            }

            /// Encodes the message.
            pub fn encode(&self) -> Result<alloc::vec::Vec<u8>, $crate::error::Error> {
                Ok($crate::msg::start(
                    self.version,
                    $crate::msg::RequestResponseCode::$code,
                    0,
                    0,
                )
                .into_vec())
            }
        }
    };
}
pub(crate) use header_only;
