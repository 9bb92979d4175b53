//! The SPDM requester: a sans-IO state machine (bytes in, bytes out).
//!
//! ```text
//! Requester::start() ──► GET_VERSION
//!   ExpectVersion ─► ExpectCapabilities ─► ExpectAlgorithms          (VCA, transcript A)
//!   ─► ExpectDigests ─► ExpectCertificate (chunked) ─► [ExpectChallengeAuth]   (M1)
//!   ─► [ExpectMeasurements]                                          (L1)
//!   ─► [ExpectKeyExchangeRsp ─► ExpectFinishRsp]                     (TH, key schedule)
//!   ─► Progress::Attested ─► Established ⇄ ExpectAppResponse ─► Closed
//! ```
//!
//! Every call to [`Requester::handle`] consumes the current state and either moves to the next
//! one or fails; after any error the requester is `Failed` for good (and a live session is
//! terminated), so nothing can be resumed from a state the peer pushed us into. Each state is
//! its own struct holding only what that state needs; verification results are carried
//! forward as proof values ([`VerifiedChain`]) that the next state requires.
//!
//! Strictness (beyond what the message codecs check):
//! * version: the highest common of 1.2/1.3, and every response after VERSION (ERROR too) must
//!   carry it — a lower version is [`PeerMisbehaved::Downgrade`];
//! * algorithms: each selection is one bit we offered, and the hash matches the curve;
//! * certificate: portions within what we asked for, consistent total length, root hash,
//!   digest equal to the one in DIGESTS, chain verified by the caller's [`ChainVerifier`];
//! * CHALLENGE_AUTH / MEASUREMENTS / KEY_EXCHANGE_RSP: signatures over the transcripts as
//!   received, CertChainHash, 1.3 RequesterContext echo, verify data;
//! * ERROR Busy / ResponseNotReady: retried (RESPOND_IF_READY for the latter) at most
//!   [`RequesterConfig::max_retries`] times; any other ERROR fails the requester.
//!
//! # Example
//!
//! Our requester attesting a [`crate::device::SoftDevice`] through our responder, in memory
//! (over a socket, hand [`driver::attest`] an `EmuClient` instead of driving by hand):
//!
//! ```
//! use std::sync::Arc;
//! use ualink_spdm::algo::AsymAlg;
//! use ualink_spdm::cert_chain::TrustAnchors;
//! use ualink_spdm::device::SoftDevice;
//! use ualink_spdm::identity::{DeviceIdentity, IdentityOptions};
//! use ualink_spdm::requester::{AppRequest, AppResponse, Progress, Requester, RequesterConfig};
//! use ualink_spdm::responder::{Responder, ResponderConfig};
//!
//! let identity = DeviceIdentity::generate(AsymAlg::EcdsaP256, &IdentityOptions::default())?;
//! let mut anchors = TrustAnchors::new();
//! anchors.add_der(identity.ca_der())?;
//! let mut responder = Responder::new(SoftDevice::new(identity, 1)?, ResponderConfig::default());
//! let mut requester = Requester::new(RequesterConfig::default(), Arc::new(anchors))?;
//!
//! let mut out = requester.start()?;
//! let attestation = loop {
//!     let answer = responder.handle(out.kind, &out.bytes).ok_or("no answer")?;
//!     match requester.handle(answer.kind, &answer.bytes)? {
//!         Progress::Send(next) => out = next,
//!         Progress::Attested(a) => break a,
//!         other => return Err(format!("unexpected {other:?}").into()),
//!     }
//! };
//! assert!(attestation.measurements.is_some() && attestation.session_id.is_some());
//!
//! // Inside the session: a heartbeat.
//! let hb = requester.request(AppRequest::Heartbeat)?;
//! let ack = responder.handle(hb.kind, &hb.bytes).ok_or("no answer")?;
//! assert!(matches!(
//!     requester.handle(ack.kind, &ack.bytes)?,
//!     Progress::Response(AppResponse::HeartbeatAck)
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::algo::{HashAlg, Negotiated, SpdmVersion};
use crate::cert_chain::{ChainVerifier, SpdmCertChain, VerifiedChain};
use crate::crypto::{self, Rng};
use crate::error::{Error, Malformed, PeerIncompatible, PeerMisbehaved, Result};
use crate::msg::{
    self, AlgStruct, AlgType, Algorithms, AsymBits, Capabilities, CapabilityFlags, Certificate,
    Challenge, ChallengeAuth, Digests, ErrorCode, ErrorResponse, ExtendedErrorData,
    GetCapabilities, GetCertificate, GetDigests, GetVersion, HashBits, MeasSpec,
    MeasurementSummaryType, MsgContext, NegotiateAlgorithms, OtherParams, RequestResponseCode,
    SpdmHeader, Version,
};
use crate::negotiation::{self, AlgorithmPolicy};
use crate::transcript::{Transcripts, Vca};
use crate::transport::MessageKind;

mod session;

#[cfg(feature = "std")]
pub mod driver;

pub use session::{AppRequest, AppResponse, KeyUpdateKind};

/// What the requester does, fixed before the first message.
#[derive(Debug, Clone)]
pub struct RequesterConfig {
    /// Versions we offer (a subset of 1.2 and 1.3).
    pub versions: Vec<SpdmVersion>,
    /// Algorithms we offer, in preference order.
    pub algorithms: AlgorithmPolicy,
    /// CTExponent we advertise.
    pub ct_exponent: u8,
    /// DataTransferSize we advertise (largest message we receive in one piece).
    pub data_transfer_size: u32,
    /// MaxSPDMmsgSize we advertise.
    pub max_spdm_msg_size: u32,
    /// Slot whose certificate chain we fetch and verify.
    pub slot: u8,
    /// Largest CERTIFICATE portion we ask for.
    pub cert_portion_len: u16,
    /// Send CHALLENGE (M1 signature) after the certificate.
    pub challenge: bool,
    /// Which measurements to fetch (signed).
    pub measurements: MeasurementPlan,
    /// Set up a secured session after attestation.
    pub session: Option<SessionConfig>,
    /// Record-layer parameters and inner framing of secured messages (the transport binding).
    pub secured: SecuredFraming,
    /// ERROR Busy / ResponseNotReady retries per request.
    pub max_retries: u8,
    /// 1.3 RequesterContext sent in CHALLENGE and GET_MEASUREMENTS (echo checked).
    pub requester_context: [u8; msg::REQUESTER_CONTEXT_LEN],
}

impl Default for RequesterConfig {
    /// 1.2 and 1.3, every algorithm we implement, CHALLENGE, all measurements signed, and an
    /// encrypted-handshake session on MCTP framing.
    fn default() -> Self {
        Self {
            versions: negotiation::OUR_VERSIONS.to_vec(),
            algorithms: AlgorithmPolicy::default(),
            ct_exponent: 12,
            data_transfer_size: 4096,
            max_spdm_msg_size: 65536,
            slot: 0,
            cert_portion_len: 1024,
            challenge: true,
            measurements: MeasurementPlan::AllSigned,
            session: Some(SessionConfig::default()),
            secured: SecuredFraming::MCTP,
            max_retries: 3,
            requester_context: *b"ualinkcc",
        }
    }
}

/// Which measurements to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasurementPlan {
    /// No GET_MEASUREMENTS.
    Skip,
    /// One signed GET_MEASUREMENTS for all blocks (Param2 = 0xFF).
    AllSigned,
    /// The count first (Param2 = 0), then one request per index, the last one signed: L1
    /// covers every pair.
    EachIndex,
}

/// How to set up the secured session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Offer HANDSHAKE_IN_THE_CLEAR (used only if the responder offers it too).
    pub handshake_in_the_clear: bool,
    /// Our half of the session ID.
    pub req_session_id: u16,
    /// Measurement summary hash requested in KEY_EXCHANGE.
    pub summary: MeasurementSummaryType,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            handshake_in_the_clear: false,
            req_session_id: 0xFFFE,
            summary: MeasurementSummaryType::None,
        }
    }
}

/// Moved to [`crate::transport::SecuredFraming`] (the responder, binaries and fuzz targets
/// use it too); re-exported here so existing paths keep working.
pub use crate::transport::SecuredFraming;

/// One message to put on the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// Plain SPDM or DSP0277 secured message.
    pub kind: MessageKind,
    /// The message (for secured messages, the whole record: SessionID … MAC).
    pub bytes: Vec<u8>,
}

/// What [`Requester::handle`] asks the caller to do next.
#[derive(Debug)]
pub enum Progress {
    /// Send this message and feed the response back.
    Send(Outbound),
    /// Attestation finished (and the session, if configured, is established).
    Attested(Box<Attestation>),
    /// The answer to an application-phase request.
    Response(AppResponse),
    /// END_SESSION acknowledged; the session is gone.
    SessionClosed,
}

/// The verified outcome of attestation: everything ualink-attest needs to rebuild and
/// re-verify the evidence, with every signed byte kept as received.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// Negotiated version and algorithms.
    pub negotiated: Negotiated,
    /// The responder's CAPABILITIES flags.
    pub peer_flags: CapabilityFlags,
    /// MeasurementHashAlgo as selected on the wire (e.g. 0x8 SHA-512, 0x1 raw bit streams),
    /// whether or not this crate implements it (`negotiated.meas_hash` names it only then).
    pub measurement_hash_algo: u32,
    /// Transcript A (VCA) as exchanged.
    pub vca: Vec<u8>,
    /// The slot attested.
    pub slot: u8,
    /// The responder's certificate chain in SPDM format, as received.
    pub cert_chain: Vec<u8>,
    /// The verified chain (subjects, leaf key).
    pub chain: VerifiedChain,
    /// CHALLENGE_AUTH evidence, if CHALLENGE was sent.
    pub challenge: Option<SignedChallenge>,
    /// Signed measurements, if requested.
    pub measurements: Option<SignedMeasurements>,
    /// The secured session, if one was set up.
    pub session_id: Option<u32>,
    /// The responder's HeartbeatPeriod from KEY_EXCHANGE_RSP (seconds; 0 = none required):
    /// the caller sends [`AppRequest::Heartbeat`] within it to keep the session alive.
    pub heartbeat_period: u8,
}

/// A verified CHALLENGE_AUTH.
#[derive(Debug, Clone)]
pub struct SignedChallenge {
    /// Hash(M1) that the signature covers.
    pub m1_hash: Vec<u8>,
    /// The signature (raw r‖s).
    pub signature: Vec<u8>,
    /// The MeasurementSummaryHash, if one was requested.
    pub measurement_summary_hash: Option<Vec<u8>>,
    /// Our nonce in CHALLENGE.
    pub requester_nonce: [u8; msg::NONCE_LEN],
    /// The responder's nonce in CHALLENGE_AUTH.
    pub responder_nonce: [u8; msg::NONCE_LEN],
}

/// Verified signed measurements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedMeasurements {
    /// The measurement blocks of every MEASUREMENTS response in L1, in order.
    pub blocks: Vec<msg::MeasurementBlock>,
    /// L1 exactly as signed: A ‖ each GET_MEASUREMENTS/MEASUREMENTS pair, the last response
    /// without its signature.
    pub l1: Vec<u8>,
    /// The signature (raw r‖s) over `combined_prefix ‖ Hash(l1)`.
    pub signature: Vec<u8>,
    /// Our nonce in the signed GET_MEASUREMENTS.
    pub requester_nonce: [u8; msg::NONCE_LEN],
    /// The responder's nonce in the signed MEASUREMENTS.
    pub responder_nonce: [u8; msg::NONCE_LEN],
}

/// The request in flight, kept for transcripts and retries. `Debug` shows its code only.
struct Pending {
    /// The SPDM request as first sent (what enters the transcripts). Zeroized on drop: a
    /// key-programming request carries key bytes.
    request: zeroize::Zeroizing<Vec<u8>>,
    /// Sent inside the session.
    secured: bool,
    /// Busy/ResponseNotReady retries so far.
    retries: u8,
}

impl core::fmt::Debug for Pending {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pending")
            .field("code", &self.request.get(1))
            .field("secured", &self.secured)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// Everything fixed once ALGORITHMS is accepted.
#[derive(Debug)]
struct Conn {
    negotiated: Negotiated,
    ctx: MsgContext,
    peer: Capabilities,
    ours: GetCapabilities,
    meas_hash_bits: u32,
    transcripts: Transcripts,
}

impl Conn {
    fn version(&self) -> SpdmVersion {
        self.negotiated.version
    }
    fn hash(&self) -> HashAlg {
        self.negotiated.hash
    }
}

/// The chain after it verified, carried as proof into every signature-checking state.
#[derive(Debug, Clone)]
struct PeerChain {
    spdm_chain: Vec<u8>,
    chain_hash: Vec<u8>,
    verified: VerifiedChain,
}

#[derive(Debug)]
struct ExpectVersion;

#[derive(Debug)]
struct ExpectCapabilities {
    vca: Vca,
    version: SpdmVersion,
    ours: GetCapabilities,
}

#[derive(Debug)]
struct ExpectAlgorithms {
    vca: Vca,
    ours: GetCapabilities,
    peer: Capabilities,
}

#[derive(Debug)]
struct ExpectDigests {
    conn: Box<Conn>,
}

#[derive(Debug)]
struct ExpectCertificate {
    conn: Box<Conn>,
    digest: Vec<u8>,
    chain: Vec<u8>,
    total: Option<usize>,
}

#[derive(Debug)]
struct ExpectChallengeAuth {
    conn: Box<Conn>,
    peer: PeerChain,
    nonce: [u8; msg::NONCE_LEN],
}

#[derive(Debug)]
struct ExpectMeasurements {
    conn: Box<Conn>,
    peer: PeerChain,
    challenge: Option<SignedChallenge>,
    /// Our nonce in the pending (signed) request.
    nonce: [u8; msg::NONCE_LEN],
    /// Indices still to fetch after the pending request (EachIndex plan).
    remaining: Vec<u8>,
    /// Blocks received so far.
    blocks: Vec<msg::MeasurementBlock>,
    /// The pending request asks for the count only (Param2 = 0).
    counting: bool,
}

/// The results gathered before the session starts.
#[derive(Debug)]
struct Evidence {
    peer: PeerChain,
    challenge: Option<SignedChallenge>,
    measurements: Option<SignedMeasurements>,
}

#[derive(Debug)]
enum State {
    Start,
    ExpectVersion(ExpectVersion),
    ExpectCapabilities(ExpectCapabilities),
    ExpectAlgorithms(ExpectAlgorithms),
    ExpectDigests(ExpectDigests),
    ExpectCertificate(ExpectCertificate),
    ExpectChallengeAuth(ExpectChallengeAuth),
    ExpectMeasurements(ExpectMeasurements),
    ExpectKeyExchangeRsp(session::ExpectKeyExchangeRsp),
    ExpectFinishRsp(session::ExpectFinishRsp),
    Established(session::Established),
    ExpectAppResponse(session::ExpectAppResponse),
    Closed,
    Failed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "Start",
            State::ExpectVersion(_) => "VERSION",
            State::ExpectCapabilities(_) => "CAPABILITIES",
            State::ExpectAlgorithms(_) => "ALGORITHMS",
            State::ExpectDigests(_) => "DIGESTS",
            State::ExpectCertificate(_) => "CERTIFICATE",
            State::ExpectChallengeAuth(_) => "CHALLENGE_AUTH",
            State::ExpectMeasurements(_) => "MEASUREMENTS",
            State::ExpectKeyExchangeRsp(_) => "KEY_EXCHANGE_RSP",
            State::ExpectFinishRsp(_) => "FINISH_RSP",
            State::Established(_) => "Established",
            State::ExpectAppResponse(_) => "application response",
            State::Closed => "Closed",
            State::Failed => "Failed",
        }
    }

    /// The negotiated message context (None before ALGORITHMS).
    fn msg_ctx(&self) -> Option<MsgContext> {
        match self {
            State::ExpectDigests(s) => Some(s.conn.ctx),
            State::ExpectCertificate(s) => Some(s.conn.ctx),
            State::ExpectChallengeAuth(s) => Some(s.conn.ctx),
            State::ExpectMeasurements(s) => Some(s.conn.ctx),
            State::ExpectKeyExchangeRsp(s) => Some(s.msg_ctx()),
            State::ExpectFinishRsp(s) => Some(s.msg_ctx()),
            _ => None,
        }
    }

    /// The version every response in this state must carry (None before VERSION).
    fn negotiated_version(&self) -> Option<SpdmVersion> {
        match self {
            State::Start | State::ExpectVersion(_) | State::Closed | State::Failed => None,
            State::ExpectCapabilities(s) => Some(s.version),
            State::ExpectAlgorithms(s) => Some(s.ours.version),
            State::ExpectDigests(s) => Some(s.conn.version()),
            State::ExpectCertificate(s) => Some(s.conn.version()),
            State::ExpectChallengeAuth(s) => Some(s.conn.version()),
            State::ExpectMeasurements(s) => Some(s.conn.version()),
            State::ExpectKeyExchangeRsp(s) => Some(s.version()),
            State::ExpectFinishRsp(s) => Some(s.version()),
            State::Established(s) => Some(s.version()),
            State::ExpectAppResponse(s) => Some(s.version()),
        }
    }
}

/// The SPDM requester. Create with [`Requester::new`], send [`Requester::start`]'s message,
/// then feed every response to [`Requester::handle`] until [`Progress::Attested`].
pub struct Requester {
    config: Arc<RequesterConfig>,
    verifier: Arc<dyn ChainVerifier + Send + Sync>,
    rng: Rng,
    state: State,
    pending: Option<Pending>,
    session: Option<crate::secured::SecuredSession>,
}

impl core::fmt::Debug for Requester {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Requester")
            .field("state", &self.state.name())
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Requester {
    /// A requester that verifies the responder's chain with `verifier`.
    pub fn new(
        config: RequesterConfig,
        verifier: Arc<dyn ChainVerifier + Send + Sync>,
    ) -> Result<Self> {
        if config.versions.is_empty()
            || config
                .versions
                .iter()
                .any(|v| !negotiation::OUR_VERSIONS.contains(v))
        {
            return Err(Error::ApiMisuse(
                "versions must be a non-empty subset of 1.2/1.3",
            ));
        }
        if config.algorithms.asym.is_empty() || config.algorithms.hash.is_empty() {
            return Err(Error::ApiMisuse(
                "no signature or hash algorithm configured",
            ));
        }
        if config
            .algorithms
            .asym
            .iter()
            .any(|a| !config.algorithms.hash.contains(&negotiation::hash_for(*a)))
        {
            return Err(Error::ApiMisuse(
                "each signature algorithm needs its curve's hash (P-256/SHA-256, P-384/SHA-384)",
            ));
        }
        if config.slot > 7 {
            return Err(Error::ApiMisuse("slot must be 0..=7"));
        }
        if config.cert_portion_len == 0 {
            return Err(Error::ApiMisuse(
                "certificate portion length must be non-zero",
            ));
        }
        if config.session.is_some()
            && (config.algorithms.dhe.is_empty() || config.algorithms.aead.is_empty())
        {
            return Err(Error::ApiMisuse("a session needs a DHE group and an AEAD"));
        }
        Ok(Self {
            config: Arc::new(config),
            verifier,
            rng: Rng::new(),
            state: State::Start,
            pending: None,
            session: None,
        })
    }

    /// The first message: GET_VERSION. Fails unless the requester is fresh.
    pub fn start(&mut self) -> Result<Outbound> {
        if !matches!(self.state, State::Start) {
            return Err(Error::ApiMisuse("requester already started"));
        }
        let get_version = GetVersion.encode()?;
        self.state = State::ExpectVersion(ExpectVersion);
        self.emit(get_version, false)
    }

    /// The configuration.
    pub fn config(&self) -> &RequesterConfig {
        &self.config
    }

    /// True once attestation (and session setup) completed and no request is outstanding.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established(_))
    }

    /// True after a failure: the requester cannot be used any more.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// The secured session ID, while a session is live.
    pub fn session_id(&self) -> Option<u32> {
        self.session
            .as_ref()
            .filter(|s| !s.is_terminated())
            .map(|s| s.session_id())
    }

    /// Handles one received message of `kind` (plain SPDM or a secured record).
    ///
    /// On error the requester becomes `Failed` and any session is terminated.
    pub fn handle(&mut self, kind: MessageKind, bytes: &[u8]) -> Result<Progress> {
        let state = core::mem::replace(&mut self.state, State::Failed);
        match self.step(state, kind, bytes) {
            Ok((next, progress)) => {
                self.state = next;
                Ok(progress)
            }
            Err(e) => {
                self.pending = None;
                if let Some(s) = self.session.as_mut() {
                    s.terminate();
                }
                Err(e)
            }
        }
    }

    fn step(&mut self, state: State, kind: MessageKind, bytes: &[u8]) -> Result<(State, Progress)> {
        let pending = self
            .pending
            .take()
            .ok_or(Error::ApiMisuse("no request outstanding"))?;
        if bytes.len() > usize::try_from(self.config.max_spdm_msg_size).unwrap_or(usize::MAX) {
            return Err(PeerIncompatible::TooLarge {
                what: "response larger than our MaxSPDMmsgSize",
            }
            .into());
        }
        // Unwrap the record layer if the request went inside the session.
        let plaintext;
        let rsp: &[u8] = match (pending.secured, kind) {
            (false, MessageKind::Spdm) => bytes,
            (true, MessageKind::Secured) => {
                let app = self.open(&state, bytes)?;
                plaintext = app;
                self.config.secured.from_app_data(&plaintext)?
            }
            (true, MessageKind::Spdm) => {
                // A responder that could not decrypt our request can only answer in the
                // clear: report its ERROR (never retry on it); anything else is refused.
                if bytes.get(1) == Some(&RequestResponseCode::ERROR.0) {
                    let err = ErrorResponse::parse(bytes)?;
                    return Err(PeerMisbehaved::ErrorResponse {
                        code: err.code.0,
                        data: err.data,
                    }
                    .into());
                }
                return Err(PeerMisbehaved::UnexpectedMessage {
                    expected: "a secured message",
                    got: bytes.get(1).copied().unwrap_or(0),
                }
                .into());
            }
            (false, MessageKind::Secured) => {
                return Err(PeerMisbehaved::UnexpectedMessage {
                    expected: "a plain SPDM message",
                    got: 0,
                }
                .into())
            }
        };
        let header = SpdmHeader::peek(rsp)?;
        if let Some(v) = state.negotiated_version() {
            negotiation::check_version(v, header.version)?;
        }
        let rsp = if pending.secured {
            rsp
        } else {
            let ctx = match state.msg_ctx() {
                Some(c) => {
                    Some(c.for_response_to(&msg::SpdmRequest::parse(&pending.request, Some(&c))?))
                }
                None => None,
            };
            self.config
                .secured
                .strip_padding(rsp, false, ctx.as_ref())?
        };
        if header.code == RequestResponseCode::ERROR {
            return self.on_error(state, pending, rsp);
        }
        let req = pending.request;
        match state {
            State::ExpectVersion(s) => self.on_version(s, &req, rsp),
            State::ExpectCapabilities(s) => self.on_capabilities(s, &req, rsp),
            State::ExpectAlgorithms(s) => self.on_algorithms(s, &req, rsp),
            State::ExpectDigests(s) => self.on_digests(s, &req, rsp),
            State::ExpectCertificate(s) => self.on_certificate(s, &req, rsp),
            State::ExpectChallengeAuth(s) => self.on_challenge_auth(s, &req, rsp),
            State::ExpectMeasurements(s) => self.on_measurements(s, &req, rsp),
            State::ExpectKeyExchangeRsp(s) => self.on_key_exchange_rsp(s, &req, rsp),
            State::ExpectFinishRsp(s) => self.on_finish_rsp(s, &req, rsp),
            State::ExpectAppResponse(s) => self.on_app_response(s, &req, rsp),
            State::Start | State::Established(_) | State::Closed | State::Failed => {
                Err(Error::ApiMisuse("no response expected in this state"))
            }
        }
    }

    /// Opens a secured record in the state's session.
    fn open(&mut self, state: &State, record: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let key_update = match state {
            State::ExpectAppResponse(s) => s.opens_with_pending_key(),
            _ => false,
        };
        let session = self
            .session
            .as_mut()
            .ok_or(Error::ApiMisuse("no session"))?;
        if key_update {
            session.open_during_key_update(record)
        } else {
            session.open(record)
        }
    }

    /// ERROR handling: Busy → resend; ResponseNotReady → RESPOND_IF_READY; else fail.
    fn on_error(
        &mut self,
        state: State,
        pending: Pending,
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let err = ErrorResponse::parse(rsp)?;
        let retry = matches!(err.code, ErrorCode::BUSY | ErrorCode::RESPONSE_NOT_READY);
        if !retry {
            return Err(PeerMisbehaved::ErrorResponse {
                code: err.code.0,
                data: err.data,
            }
            .into());
        }
        if pending.retries >= self.config.max_retries {
            return Err(PeerMisbehaved::RetriesExhausted(pending.retries).into());
        }
        let wire = match (err.code, &err.extended) {
            (ErrorCode::RESPONSE_NOT_READY, ExtendedErrorData::ResponseNotReady(rnr)) => {
                let code = pending.request.get(1).copied().unwrap_or(0);
                if rnr.request_code.0 != code {
                    return Err(PeerMisbehaved::ResponseMismatch {
                        what: "ResponseNotReady RequestCode",
                    }
                    .into());
                }
                let version =
                    state
                        .negotiated_version()
                        .ok_or(PeerMisbehaved::UnexpectedMessage {
                            expected: "VERSION",
                            got: RequestResponseCode::ERROR.0,
                        })?;
                msg::RespondIfReady {
                    version,
                    request_code: rnr.request_code,
                    token: rnr.token,
                }
                .encode()?
            }
            _ => pending.request.to_vec(),
        };
        // An ERROR to UpdateAllKeys came under the responder's old key, which reverted our
        // receiving key: arm the new one again before asking once more.
        if let State::ExpectAppResponse(s) = &state {
            if s.opens_with_pending_key() {
                let session = self
                    .session
                    .as_mut()
                    .ok_or(Error::ApiMisuse("no session"))?;
                if !session.key_update_pending(crate::secured::Direction::Response) {
                    session.update_key(crate::secured::Direction::Response)?;
                }
            }
        }
        let out = self.seal_if(pending.secured, &wire)?;
        self.pending = Some(Pending {
            retries: pending.retries.saturating_add(1),
            ..pending
        });
        Ok((state, Progress::Send(out)))
    }

    /// Records `request` as pending and returns it ready for the transport.
    fn emit(&mut self, request: Vec<u8>, secured: bool) -> Result<Outbound> {
        let out = self.seal_if(secured, &request)?;
        self.pending = Some(Pending {
            request: zeroize::Zeroizing::new(request),
            secured,
            retries: 0,
        });
        Ok(out)
    }

    fn seal_if(&mut self, secured: bool, spdm: &[u8]) -> Result<Outbound> {
        if !secured {
            return Ok(Outbound {
                kind: MessageKind::Spdm,
                bytes: spdm.to_vec(),
            });
        }
        let app = self.config.secured.to_app_data(spdm);
        let session = self
            .session
            .as_mut()
            .ok_or(Error::ApiMisuse("no session"))?;
        Ok(Outbound {
            kind: MessageKind::Secured,
            bytes: session.seal(&app, &self.rng)?,
        })
    }

    fn send(&mut self, next: State, request: Vec<u8>, secured: bool) -> Result<(State, Progress)> {
        let out = self.emit(request, secured)?;
        Ok((next, Progress::Send(out)))
    }

    // ----------------------------------------------------------------------------------
    // VCA
    // ----------------------------------------------------------------------------------

    fn our_flags(&self) -> CapabilityFlags {
        let mut f = CapabilityFlags::default();
        if let Some(s) = &self.config.session {
            f = f
                .union(CapabilityFlags::ENCRYPT_CAP)
                .union(CapabilityFlags::MAC_CAP)
                .union(CapabilityFlags::KEY_EX_CAP)
                .union(CapabilityFlags::HBEAT_CAP)
                .union(CapabilityFlags::KEY_UPD_CAP);
            if s.handshake_in_the_clear {
                f = f.union(CapabilityFlags::HANDSHAKE_IN_THE_CLEAR_CAP);
            }
        }
        f
    }

    fn on_version(
        &mut self,
        _s: ExpectVersion,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let version = Version::parse(rsp)?;
        let entries: Vec<u16> = version.entries.iter().map(|e| e.0).collect();
        let selected = negotiation::highest_common(&self.config.versions, &entries)?;
        let mut vca = Vca::new();
        vca.push(req)?;
        vca.push(rsp)?;
        let ours = GetCapabilities {
            version: selected,
            ct_exponent: self.config.ct_exponent,
            flags: self.our_flags(),
            data_transfer_size: self.config.data_transfer_size,
            max_spdm_msg_size: self.config.max_spdm_msg_size,
        };
        let bytes = ours.encode()?;
        self.send(
            State::ExpectCapabilities(ExpectCapabilities {
                vca,
                version: selected,
                ours,
            }),
            bytes,
            false,
        )
    }

    fn on_capabilities(
        &mut self,
        mut s: ExpectCapabilities,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let peer = Capabilities::parse(rsp)?;
        negotiation::check_version(s.version, peer.version.byte())?;
        let need = |flag: CapabilityFlags, what: &'static str| -> Result<()> {
            if peer.flags.contains(flag) {
                Ok(())
            } else {
                Err(PeerIncompatible::MissingCapability { what }.into())
            }
        };
        need(CapabilityFlags::CERT_CAP, "CERT_CAP")?;
        if self.config.challenge {
            need(CapabilityFlags::CHAL_CAP, "CHAL_CAP")?;
        }
        if self.config.measurements != MeasurementPlan::Skip {
            need(CapabilityFlags::MEAS_CAP_SIG, "MEAS_CAP (with signature)")?;
        }
        if self.config.session.is_some() {
            need(CapabilityFlags::KEY_EX_CAP, "KEY_EX_CAP")?;
            need(CapabilityFlags::ENCRYPT_CAP, "ENCRYPT_CAP")?;
            need(CapabilityFlags::MAC_CAP, "MAC_CAP")?;
        }
        s.vca.push(req)?;
        s.vca.push(rsp)?;
        let pol = &self.config.algorithms;
        let mut structs = Vec::with_capacity(4);
        if self.config.session.is_some() {
            structs.push(AlgStruct::new(AlgType::DHE, pol.dhe_mask()));
            structs.push(AlgStruct::new(AlgType::AEAD, pol.aead_mask()));
        }
        structs.push(AlgStruct::new(
            AlgType::REQ_BASE_ASYM,
            u16::try_from(pol.asym_mask()).unwrap_or(0),
        ));
        if self.config.session.is_some() {
            structs.push(AlgStruct::new(AlgType::KEY_SCHEDULE, 0x1));
        }
        let neg = NegotiateAlgorithms {
            version: s.version,
            meas_spec: MeasSpec::DMTF,
            other_params: OtherParams::OPAQUE_DATA_FMT1,
            base_asym: AsymBits(pol.asym_mask()),
            base_hash: HashBits(pol.hash_mask()),
            mel_spec: 0,
            ext_asym: Vec::new(),
            ext_hash: Vec::new(),
            alg_structs: structs,
        };
        let bytes = neg.encode()?;
        self.send(
            State::ExpectAlgorithms(ExpectAlgorithms {
                vca: s.vca,
                ours: s.ours,
                peer,
            }),
            bytes,
            false,
        )
    }

    fn on_algorithms(
        &mut self,
        mut s: ExpectAlgorithms,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let algs = Algorithms::parse(rsp)?;
        negotiation::check_version(s.ours.version, algs.version.byte())?;
        let pol = &self.config.algorithms;
        let asym = pol.accept_asym(algs.base_asym_sel.0)?;
        let hash = pol.accept_hash(algs.base_hash_sel.0)?;
        if negotiation::hash_for(asym) != hash {
            return Err(PeerIncompatible::NoCommonAlgorithm {
                what: "BaseHashSel matching the BaseAsymSel curve",
            }
            .into());
        }
        // MeasurementHashAlgo is the responder's choice (not offered by us): any one defined
        // bit (raw bit stream, SHA-2, SHA-3, SM3). We only name it in `Negotiated` when we
        // implement it; the raw bits are in the attestation result.
        let meas_bits = algs.meas_hash_sel.0;
        if meas_bits.count_ones() > 1 || meas_bits & !msg::MeasHashBits::DEFINED != 0 {
            return Err(PeerMisbehaved::SelectionNotOffered {
                what: "MeasurementHashAlgo",
            }
            .into());
        }
        if meas_bits == 0 && self.config.measurements != MeasurementPlan::Skip {
            return Err(PeerIncompatible::NoCommonAlgorithm {
                what: "MeasurementHashAlgo",
            }
            .into());
        }
        let meas_hash = pol.accept_meas_hash(meas_bits).unwrap_or(hash);
        if algs.meas_spec_sel != MeasSpec::DMTF {
            return Err(PeerMisbehaved::SelectionNotOffered {
                what: "MeasurementSpecificationSel",
            }
            .into());
        }
        if algs.other_params_sel.0 & !OtherParams::OPAQUE_DATA_FMT1.0 != 0 {
            return Err(PeerMisbehaved::SelectionNotOffered {
                what: "OtherParamsSelection",
            }
            .into());
        }
        if !algs.ext_asym_sel.is_empty() || !algs.ext_hash_sel.is_empty() {
            return Err(PeerMisbehaved::SelectionNotOffered {
                what: "extended algorithms",
            }
            .into());
        }
        let (dhe, aead) = if self.config.session.is_some() {
            (
                pol.accept_dhe(algs.dhe_sel().0)?,
                pol.accept_aead(algs.aead_sel().0)?,
            )
        } else {
            // Nothing offered, so nothing may be selected; the negotiated record still
            // names the suite that matches the curve.
            if algs.dhe_sel().0 != 0 || algs.aead_sel().0 != 0 {
                return Err(PeerMisbehaved::SelectionNotOffered { what: "DHE/AEAD" }.into());
            }
            (negotiation::dhe_for(asym), crate::algo::AeadAlg::Aes256Gcm)
        };
        if self.config.session.is_some() && algs.key_schedule_sel().0 != 0x1 {
            return Err(PeerMisbehaved::SelectionNotOffered {
                what: "KeySchedule",
            }
            .into());
        }
        let req_asym = algs.req_base_asym_sel().0;
        if req_asym != 0 && pol.accept_asym(req_asym).is_err() {
            return Err(PeerMisbehaved::SelectionNotOffered {
                what: "ReqBaseAsymAlg",
            }
            .into());
        }
        let negotiated = Negotiated {
            version: s.ours.version,
            hash,
            meas_hash,
            asym,
            dhe,
            aead,
        };
        s.vca.push(req)?;
        s.vca.push(rsp)?;
        let ctx = MsgContext::from_negotiation(&algs, s.ours.flags, s.peer.flags)?;
        let transcripts = Transcripts::new(hash, &s.vca)?;
        let conn = Box::new(Conn {
            negotiated,
            ctx,
            peer: s.peer,
            ours: s.ours,
            meas_hash_bits: meas_bits,
            transcripts,
        });
        self.send_get_digests(conn)
    }

    // ----------------------------------------------------------------------------------
    // Digests, certificate, challenge
    // ----------------------------------------------------------------------------------

    fn send_get_digests(&mut self, mut conn: Box<Conn>) -> Result<(State, Progress)> {
        let bytes = GetDigests {
            version: conn.version(),
        }
        .encode()?;
        conn.transcripts
            .on_request(RequestResponseCode::GET_DIGESTS.0);
        self.send(State::ExpectDigests(ExpectDigests { conn }), bytes, false)
    }

    fn on_digests(
        &mut self,
        mut s: ExpectDigests,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let d = Digests::parse(rsp, &s.conn.ctx)?;
        let slot = self.config.slot;
        if d.provisioned_slot_mask & (1 << slot) == 0 {
            return Err(PeerIncompatible::MissingCapability {
                what: "certificate chain in the configured slot",
            }
            .into());
        }
        // Digests come in ascending slot order, one per provisioned slot.
        let below = (d.provisioned_slot_mask & ((1u8 << slot) - 1)).count_ones() as usize;
        let digest = d
            .digests
            .get(below)
            .ok_or(Malformed::BadLength { what: "DIGESTS" })?
            .clone();
        s.conn.transcripts.push_b(req, rsp);
        if s.conn.ctx.multi_key_conn {
            s.conn.transcripts.set_digests_for_th(rsp);
        }
        self.send_get_certificate(ExpectCertificate {
            conn: s.conn,
            digest,
            chain: Vec::new(),
            total: None,
        })
    }

    fn portion_len(&self, conn: &Conn) -> u16 {
        // A CERTIFICATE carries an 8-byte header before the portion.
        let fit = |dts: u32| u16::try_from(dts.saturating_sub(8)).unwrap_or(u16::MAX);
        self.config
            .cert_portion_len
            .min(fit(conn.peer.data_transfer_size))
            .min(fit(conn.ours.data_transfer_size))
            .max(1)
    }

    fn send_get_certificate(&mut self, mut s: ExpectCertificate) -> Result<(State, Progress)> {
        let offset = u16::try_from(s.chain.len()).map_err(|_| Malformed::LengthOverflow {
            what: "certificate chain",
        })?;
        let mut length = self.portion_len(&s.conn);
        if let Some(total) = s.total {
            let left = u16::try_from(total.saturating_sub(s.chain.len())).unwrap_or(u16::MAX);
            length = length.min(left);
        }
        let bytes = GetCertificate {
            version: s.conn.version(),
            slot_id: self.config.slot,
            param2: 0,
            offset,
            length,
        }
        .encode()?;
        s.conn
            .transcripts
            .on_request(RequestResponseCode::GET_CERTIFICATE.0);
        self.send(State::ExpectCertificate(s), bytes, false)
    }

    fn on_certificate(
        &mut self,
        mut s: ExpectCertificate,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let get = GetCertificate::parse(req)?;
        let cert = Certificate::parse(rsp)?;
        if cert.slot_id != get.slot_id {
            return Err(PeerMisbehaved::ResponseMismatch {
                what: "CERTIFICATE SlotID",
            }
            .into());
        }
        if cert.portion.len() > usize::from(get.length) {
            return Err(Malformed::BadLength {
                what: "CERTIFICATE PortionLength (more than requested)",
            }
            .into());
        }
        let total = msg::certificate::implied_chain_len(get.offset, &cert)?;
        match s.total {
            None => s.total = Some(total),
            Some(t) if t == total => {}
            Some(_) => {
                return Err(PeerMisbehaved::ResponseMismatch {
                    what: "CERTIFICATE RemainderLength (chain length changed)",
                }
                .into())
            }
        }
        if cert.portion.is_empty() && cert.remainder_length != 0 {
            return Err(Malformed::BadLength {
                what: "CERTIFICATE empty portion with data remaining",
            }
            .into());
        }
        s.conn.transcripts.push_b(req, rsp);
        s.chain.extend_from_slice(&cert.portion);
        if cert.remainder_length != 0 {
            return self.send_get_certificate(s);
        }
        let peer = self.verify_chain(&s.conn, s.chain, &s.digest)?;
        self.after_certificate(s.conn, peer)
    }

    fn verify_chain(&self, conn: &Conn, chain: Vec<u8>, digest: &[u8]) -> Result<PeerChain> {
        let parsed = SpdmCertChain::parse(&chain, conn.hash())?;
        let chain_hash = crypto::hash(conn.hash(), &chain);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(chain_hash.as_bytes(), digest)) {
            return Err(PeerMisbehaved::DigestMismatch {
                what: "certificate chain vs DIGESTS",
            }
            .into());
        }
        let verified = self
            .verifier
            .verify(parsed.certs_der(), conn.negotiated.asym)?;
        Ok(PeerChain {
            chain_hash: chain_hash.as_bytes().to_vec(),
            spdm_chain: chain,
            verified,
        })
    }

    fn after_certificate(
        &mut self,
        mut conn: Box<Conn>,
        peer: PeerChain,
    ) -> Result<(State, Progress)> {
        if self.config.challenge {
            let nonce = self.rng.nonce32()?;
            let bytes = Challenge {
                version: conn.version(),
                slot_id: self.config.slot,
                summary_type: MeasurementSummaryType::None,
                nonce,
                requester_context: self.context_for(conn.version()),
            }
            .encode()?;
            conn.transcripts
                .on_request(RequestResponseCode::CHALLENGE.0);
            return self.send(
                State::ExpectChallengeAuth(ExpectChallengeAuth { conn, peer, nonce }),
                bytes,
                false,
            );
        }
        self.start_measurements(conn, peer, None)
    }

    fn context_for(&self, v: SpdmVersion) -> Option<[u8; msg::REQUESTER_CONTEXT_LEN]> {
        (v >= SpdmVersion::V13).then_some(self.config.requester_context)
    }

    fn check_context(
        &self,
        v: SpdmVersion,
        got: &Option<[u8; msg::REQUESTER_CONTEXT_LEN]>,
        what: &'static str,
    ) -> Result<()> {
        if *got != self.context_for(v) {
            return Err(PeerMisbehaved::NonceMismatch { what }.into());
        }
        Ok(())
    }

    fn on_challenge_auth(
        &mut self,
        mut s: ExpectChallengeAuth,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let ctx = s.conn.ctx;
        let auth = ChallengeAuth::parse(rsp, &ctx)?;
        if auth.slot_id != self.config.slot {
            return Err(PeerMisbehaved::ResponseMismatch {
                what: "CHALLENGE_AUTH SlotID",
            }
            .into());
        }
        if auth.basic_mut_auth_req {
            return Err(PeerIncompatible::MissingCapability {
                what: "mutual authentication (requested by the responder)",
            }
            .into());
        }
        if auth.slot_mask & (1 << self.config.slot) == 0 {
            return Err(PeerMisbehaved::ResponseMismatch {
                what: "CHALLENGE_AUTH SlotMask",
            }
            .into());
        }
        if auth.cert_chain_hash != s.peer.chain_hash {
            return Err(PeerMisbehaved::DigestMismatch {
                what: "CHALLENGE_AUTH CertChainHash",
            }
            .into());
        }
        self.check_context(
            s.conn.version(),
            &auth.requester_context,
            "CHALLENGE_AUTH RequesterContext",
        )?;
        let unsigned = auth.signed_portion(rsp)?;
        let m1_hash = s.conn.transcripts.m1_hash(req, unsigned);
        crypto::verify(
            s.conn.negotiated.asym,
            s.peer.verified.leaf_public_key(),
            s.conn.version(),
            crypto::CTX_CHALLENGE_AUTH,
            m1_hash.as_bytes(),
            &auth.signature,
            "CHALLENGE_AUTH",
        )?;
        let challenge = SignedChallenge {
            m1_hash: m1_hash.as_bytes().to_vec(),
            signature: auth.signature,
            measurement_summary_hash: auth.measurement_summary_hash,
            requester_nonce: s.nonce,
            responder_nonce: auth.nonce,
        };
        self.start_measurements(s.conn, s.peer, Some(challenge))
    }
}

// --------------------------------------------------------------------------------------
// Measurements
// --------------------------------------------------------------------------------------

impl Requester {
    fn start_measurements(
        &mut self,
        conn: Box<Conn>,
        peer: PeerChain,
        challenge: Option<SignedChallenge>,
    ) -> Result<(State, Progress)> {
        let s = ExpectMeasurements {
            conn,
            peer,
            challenge,
            nonce: [0; msg::NONCE_LEN],
            remaining: Vec::new(),
            blocks: Vec::new(),
            counting: false,
        };
        match self.config.measurements {
            MeasurementPlan::Skip => {
                let ev = Evidence {
                    peer: s.peer,
                    challenge: s.challenge,
                    measurements: None,
                };
                self.after_measurements(s.conn, ev)
            }
            MeasurementPlan::AllSigned => {
                self.send_get_measurements(s, msg::MeasurementOperation::All, true)
            }
            MeasurementPlan::EachIndex => {
                self.send_get_measurements(s, msg::MeasurementOperation::Count, false)
            }
        }
    }

    fn send_get_measurements(
        &mut self,
        mut s: ExpectMeasurements,
        operation: msg::MeasurementOperation,
        signed: bool,
    ) -> Result<(State, Progress)> {
        let version = s.conn.version();
        let nonce_and_slot = if signed {
            s.nonce = self.rng.nonce32()?;
            Some((s.nonce, self.config.slot))
        } else {
            None
        };
        s.counting = operation == msg::MeasurementOperation::Count;
        let bytes = msg::GetMeasurements {
            version,
            attributes: u8::from(signed),
            operation,
            nonce_and_slot,
            requester_context: self.context_for(version),
        }
        .encode()?;
        s.conn
            .transcripts
            .on_request(RequestResponseCode::GET_MEASUREMENTS.0);
        self.send(State::ExpectMeasurements(s), bytes, false)
    }

    fn on_measurements(
        &mut self,
        mut s: ExpectMeasurements,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let get = msg::GetMeasurements::parse(req)?;
        let signed = get.nonce_and_slot.is_some();
        let mut ctx = s.conn.ctx;
        ctx.measurement_signature_requested = signed;
        let m = msg::Measurements::parse(rsp, &ctx)?;
        self.check_context(
            s.conn.version(),
            &m.requester_context,
            "MEASUREMENTS RequesterContext",
        )?;
        match get.operation {
            msg::MeasurementOperation::Count => {
                if !m.blocks.is_empty() {
                    return Err(PeerMisbehaved::ResponseMismatch {
                        what: "MEASUREMENTS blocks in a count-only response",
                    }
                    .into());
                }
            }
            msg::MeasurementOperation::Index(i) => {
                if m.total_indices != 0
                    || m.blocks.len() != 1
                    || m.blocks.iter().any(|b| b.index != i)
                {
                    return Err(PeerMisbehaved::ResponseMismatch {
                        what: "MEASUREMENTS block index",
                    }
                    .into());
                }
            }
            msg::MeasurementOperation::All => {
                if m.total_indices != 0 {
                    return Err(PeerMisbehaved::ResponseMismatch {
                        what: "MEASUREMENTS Param1",
                    }
                    .into());
                }
            }
        }
        if !signed {
            s.conn.transcripts.push_measurements(req, rsp);
            if s.counting {
                if m.total_indices == 0 {
                    return Err(PeerIncompatible::MissingCapability {
                        what: "measurements (device reports none)",
                    }
                    .into());
                }
                // Walk indices 1..=N; the last request is the signed one.
                s.remaining = (1..=m.total_indices).collect();
            } else {
                s.blocks.extend(m.blocks);
            }
            let Some(next) = s.remaining.first().copied() else {
                return Err(Error::ApiMisuse(
                    "measurement walk ended without a signature",
                ));
            };
            s.remaining.remove(0);
            let last = s.remaining.is_empty();
            return self.send_get_measurements(s, msg::MeasurementOperation::Index(next), last);
        }
        if m.slot_id != self.config.slot {
            return Err(PeerMisbehaved::ResponseMismatch {
                what: "MEASUREMENTS SlotID",
            }
            .into());
        }
        let signature = m.signature.clone().ok_or(Malformed::Truncated {
            what: "MEASUREMENTS Signature",
        })?;
        let unsigned = m.signed_portion(rsp)?;
        let l1 = s.conn.transcripts.take_l1(req, unsigned);
        let l1_hash = crypto::hash(s.conn.hash(), &l1);
        crypto::verify(
            s.conn.negotiated.asym,
            s.peer.verified.leaf_public_key(),
            s.conn.version(),
            crypto::CTX_MEASUREMENTS,
            l1_hash.as_bytes(),
            &signature,
            "MEASUREMENTS",
        )?;
        s.blocks.extend(m.blocks);
        let measurements = SignedMeasurements {
            blocks: s.blocks,
            l1,
            signature,
            requester_nonce: s.nonce,
            responder_nonce: m.nonce,
        };
        let ev = Evidence {
            peer: s.peer,
            challenge: s.challenge,
            measurements: Some(measurements),
        };
        self.after_measurements(s.conn, ev)
    }

    fn after_measurements(&mut self, conn: Box<Conn>, ev: Evidence) -> Result<(State, Progress)> {
        match self.config.session {
            Some(sc) => self.send_key_exchange(conn, ev, sc),
            None => {
                let report = Box::new(attestation(&conn, self.config.slot, ev, None));
                Ok((State::Closed, Progress::Attested(report)))
            }
        }
    }
}

fn attestation(conn: &Conn, slot: u8, ev: Evidence, session_id: Option<u32>) -> Attestation {
    Attestation {
        negotiated: conn.negotiated,
        peer_flags: conn.peer.flags,
        measurement_hash_algo: conn.meas_hash_bits,
        vca: conn.transcripts.vca().to_vec(),
        slot,
        cert_chain: ev.peer.spdm_chain,
        chain: ev.peer.verified,
        challenge: ev.challenge,
        measurements: ev.measurements,
        session_id,
        heartbeat_period: 0,
    }
}
