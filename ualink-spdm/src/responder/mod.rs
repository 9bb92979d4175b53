//! The SPDM responder: a strict, sans-IO state machine over a [`Device`].
//!
//! ```text
//! ExpectGetVersion ─GET_VERSION─► ExpectGetCapabilities ─► ExpectNegotiateAlgorithms ─► Negotiated
//! Negotiated: GET_DIGESTS, GET_CERTIFICATE, CHALLENGE, GET_MEASUREMENTS, KEY_EXCHANGE, VENDOR_DEFINED
//! session:    Handshake ─FINISH─► Established (HEARTBEAT, KEY_UPDATE, GET_MEASUREMENTS,
//!             VENDOR_DEFINED, END_SESSION)
//! GET_VERSION at any time (plain) resets everything and ends the session.
//! ```
//!
//! [`Responder::handle`] takes one request and returns the response to send. It never panics
//! and never answers a request the state does not allow: a request that is not allowed now is
//! ERROR UnexpectedRequest, a version other than the negotiated one is VersionMismatch, a
//! malformed request is InvalidRequest, an unknown code UnsupportedRequest, a KEY_EXCHANGE
//! while a session is open SessionLimitExceeded ([`MAX_SESSIONS`]), link-key programming in
//! the clear SessionRequired — all through the one mapping [`crate::Error::wire_code`]. A secured message that fails to decrypt ends the
//! session (answered with a plain ERROR DecryptError), as does a wrong RequesterVerifyData in
//! FINISH. Any other failed request leaves the connection and session state as they were
//! (apart from the L1 measurement log, which every request other than GET_MEASUREMENTS
//! empties on both sides).

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::algo::{AeadAlg, HashAlg, Negotiated, SpdmVersion};
use crate::crypto::{self, EphemeralDhe};
use crate::device::{Channel, Device, VendorProtocol};
use crate::error::{Error, Malformed, PeerIncompatible, PeerMisbehaved, Result};
use crate::key_schedule::{HandshakeSecret, HandshakeSecrets, ScheduleParams};
use crate::msg::{
    self, AlgStruct, AlgType, Algorithms, AsymBits, Capabilities, CapabilityFlags, Certificate,
    Challenge, ChallengeAuth, Digests, EndSession, EndSessionAck, ErrorCode, ErrorResponse, Finish,
    FinishRsp, GetCapabilities, GetCertificate, GetDigests, GetMeasurements, GetVersion, HashBits,
    Heartbeat, HeartbeatAck, KeyExchange, KeyExchangeRsp, KeyUpdate, KeyUpdateAck, KeyUpdateOp,
    MeasHashBits, MeasSpec, MeasurementOperation, MeasurementSummaryType, Measurements, MsgContext,
    MutAuthRequested, NegotiateAlgorithms, OtherParams, PciSigProtocol, RequestResponseCode,
    SpdmHeader, VendorDefinedRequest, VendorDefinedResponse, Version, VersionNumber,
};
use crate::negotiation;
use crate::requester::Outbound;
use crate::secured::{Direction, Role, SecuredSession};
use crate::transcript::{Th, Transcripts, Vca};
use crate::transport::{MessageKind, SecuredFraming};

pub mod wire_error;

/// Sessions a responder holds at once: a KEY_EXCHANGE while one is open (in handshake or
/// established) is answered with ERROR SessionLimitExceeded.
pub const MAX_SESSIONS: u8 = 1;

/// DSP0277 secured-message version we select (the only one we implement).
const SECURED_MESSAGE_VERSION: u16 = 0x1200;

/// Responder settings that are not properties of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponderConfig {
    /// Framing of secured messages on the transport in use.
    pub secured: SecuredFraming,
    /// HeartbeatPeriod advertised in KEY_EXCHANGE_RSP (0 = no heartbeat required).
    pub heartbeat_period: u8,
    /// DataTransferSize we advertise.
    pub data_transfer_size: u32,
    /// MaxSPDMmsgSize we advertise.
    pub max_spdm_msg_size: u32,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        Self {
            secured: SecuredFraming::MCTP,
            heartbeat_period: 0,
            data_transfer_size: 4096,
            max_spdm_msg_size: 65536,
        }
    }
}

/// The connection (non-session) state.
#[derive(Debug)]
enum Conn {
    ExpectGetVersion,
    ExpectGetCapabilities {
        vca: Vca,
    },
    ExpectNegotiateAlgorithms {
        vca: Vca,
        peer: GetCapabilities,
        ours: Capabilities,
    },
    Negotiated(Box<NegotiatedConn>),
}

#[derive(Debug)]
struct NegotiatedConn {
    negotiated: Negotiated,
    /// DHE and AEAD were negotiated (a session is possible).
    session_capable: bool,
    ctx: MsgContext,
    peer: GetCapabilities,
    transcripts: Transcripts,
}

impl NegotiatedConn {
    fn version(&self) -> SpdmVersion {
        self.negotiated.version
    }
    fn hash(&self) -> HashAlg {
        self.negotiated.hash
    }
}

/// The session, if one is being set up or is live.
enum Session {
    Handshake(Box<Handshake>),
    Established(Box<Established>),
}

struct Handshake {
    session_id: u32,
    th: Th,
    secret: HandshakeSecret,
    hs: HandshakeSecrets,
    in_clear: bool,
    /// The record layer on handshake keys (None when the handshake is in the clear).
    record: Option<SecuredSession>,
}

struct Established {
    record: SecuredSession,
    /// A KEY_UPDATE waiting for VerifyNewKey: which directions were rolled.
    key_update: Option<KeyUpdateOp>,
}

impl Session {
    fn id(&self) -> u32 {
        match self {
            Session::Handshake(h) => h.session_id,
            Session::Established(e) => e.record.session_id(),
        }
    }
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Session::Handshake(h) => write!(f, "Handshake({:#010x})", h.session_id),
            Session::Established(e) => write!(f, "Established({:#010x})", e.record.session_id()),
        }
    }
}

/// The SPDM responder for one device and one requester connection.
pub struct Responder<D: Device> {
    device: D,
    config: ResponderConfig,
    conn: Conn,
    session: Option<Session>,
    /// A response already sealed by its handler (FINISH_RSP under the handshake keys,
    /// END_SESSION_ACK before the session is dropped).
    sealed: Option<Outbound>,
}

impl<D: Device> core::fmt::Debug for Responder<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Responder")
            .field("conn", &self.conn)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Where a request came from, after the record layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Plain,
    Secured,
}

impl<D: Device> Responder<D> {
    /// A responder for `device`, waiting for GET_VERSION.
    pub fn new(device: D, config: ResponderConfig) -> Self {
        Self {
            device,
            config,
            conn: Conn::ExpectGetVersion,
            session: None,
            sealed: None,
        }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutably (e.g. to change a measurement or inject a fault).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Ends any session and returns the device (to serve the next connection with a fresh
    /// `Responder`, keeping the device's state such as programmed keys and TDI states).
    pub fn into_device(mut self) -> D {
        self.end_session();
        self.device
    }

    /// The negotiated parameters, once NEGOTIATE_ALGORITHMS succeeded.
    pub fn negotiated(&self) -> Option<Negotiated> {
        match &self.conn {
            Conn::Negotiated(c) => Some(c.negotiated),
            _ => None,
        }
    }

    /// The ID of the live (established) session, if any.
    pub fn session_id(&self) -> Option<u32> {
        match &self.session {
            Some(Session::Established(e)) => Some(e.record.session_id()),
            _ => None,
        }
    }

    /// Handles one request of `kind` and returns the response to send, or `None` when nothing
    /// may be sent (a secured message for a session we do not have).
    pub fn handle(&mut self, kind: MessageKind, bytes: &[u8]) -> Option<Outbound> {
        self.sealed = None;
        if bytes.len() > usize::try_from(self.config.max_spdm_msg_size).unwrap_or(usize::MAX) {
            let err = Error::PeerIncompatible(PeerIncompatible::TooLarge {
                what: "request larger than MaxSPDMmsgSize",
            });
            return Some(Outbound {
                kind: MessageKind::Spdm,
                bytes: self.error_bytes(bytes, &err),
            });
        }
        match kind {
            MessageKind::Spdm => Some(self.handle_plain(bytes)),
            MessageKind::Secured => self.handle_secured(bytes),
        }
    }

    fn negotiated_version(&self) -> Option<SpdmVersion> {
        match &self.conn {
            Conn::Negotiated(c) => Some(c.version()),
            Conn::ExpectNegotiateAlgorithms { ours, .. } => Some(ours.version),
            _ => None,
        }
    }

    /// The version byte for an ERROR answering `request`.
    fn error_version(&self, request: &[u8]) -> u8 {
        if let Some(v) = self.negotiated_version() {
            return v.byte();
        }
        match request.first() {
            Some(&b) if SpdmVersion::from_byte(b).is_some() => b,
            _ => msg::header::VERSION_10,
        }
    }

    fn error_bytes(&self, request: &[u8], err: &Error) -> Vec<u8> {
        let (code, mut data) = err.wire_code();
        // DSP0274: UnsupportedRequest's ErrorData is the request code refused.
        if code == wire_error::code::UNSUPPORTED_REQUEST && data == 0 {
            data = request.get(1).copied().unwrap_or(0);
        }
        let version = self.error_version(request);
        ErrorResponse::new(version, ErrorCode(code), data)
            .encode()
            .unwrap_or_else(|_| alloc::vec![version, RequestResponseCode::ERROR.0, code, data])
    }

    fn handle_plain(&mut self, request: &[u8]) -> Outbound {
        let ctx = match &self.conn {
            Conn::Negotiated(c) => Some(c.ctx),
            _ => None,
        };
        let stripped = self
            .config
            .secured
            .strip_padding(request, true, ctx.as_ref());
        let response = match stripped.and_then(|r| self.dispatch(Via::Plain, r)) {
            Ok(r) => r,
            Err(e) => self.error_bytes(request, &e),
        };
        Outbound {
            kind: MessageKind::Spdm,
            bytes: response,
        }
    }

    fn handle_secured(&mut self, record: &[u8]) -> Option<Outbound> {
        let sid = crate::secured::peek_session_id(record).ok()?;
        let session = self.session.as_mut().filter(|s| s.id() == sid)?;
        let opened = match session {
            Session::Handshake(h) => match h.record.as_mut() {
                Some(r) => r.open(record),
                // Handshake in the clear: nothing may arrive secured before FINISH_RSP.
                None => Err(PeerMisbehaved::UnexpectedMessage {
                    expected: "plain FINISH (handshake in the clear)",
                    got: 0,
                }
                .into()),
            },
            Session::Established(e) => e.record.open(record),
        };
        let app = match opened {
            Ok(app) => app,
            Err(e) => {
                // The record layer terminated the session: drop it and say why in the clear.
                self.end_session();
                let err = match e {
                    Error::Malformed(_) | Error::PeerMisbehaved(_) => {
                        Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)
                    }
                    other => other,
                };
                return Some(Outbound {
                    kind: MessageKind::Spdm,
                    bytes: self.error_bytes(&[], &err),
                });
            }
        };
        let response = match self.config.secured.from_app_data(&app) {
            Ok(request) => {
                let request = zeroize::Zeroizing::new(request.to_vec());
                match self.dispatch(Via::Secured, &request) {
                    Ok(r) => r,
                    Err(e) => self.error_bytes(&request, &e),
                }
            }
            Err(e) => self.error_bytes(&[], &e),
        };
        match self.seal_response(sid, &response) {
            Some(out) => Some(out),
            // The request ended the session (e.g. a wrong RequesterVerifyData): its ERROR can
            // only go in the clear. Nothing else is ever sent unsealed.
            None if self.session.is_none()
                && response.get(1) == Some(&RequestResponseCode::ERROR.0) =>
            {
                Some(Outbound {
                    kind: MessageKind::Spdm,
                    bytes: response,
                })
            }
            None => None,
        }
    }

    /// Seals a response in the session it answers. Called after `dispatch`, which may have
    /// moved the session to new keys (FINISH → data keys happens after sealing, inside
    /// `on_finish`, so this only sees live sessions).
    fn seal_response(&mut self, sid: u32, response: &[u8]) -> Option<Outbound> {
        if let Some(done) = self.sealed.take() {
            return Some(done);
        }
        let app = self.config.secured.to_app_data(response);
        let record = match self.session.as_mut().filter(|s| s.id() == sid)? {
            Session::Handshake(h) => h.record.as_mut()?,
            Session::Established(e) => &mut e.record,
        };
        match record.seal(&app, self.device.rng()) {
            Ok(bytes) => Some(Outbound {
                kind: MessageKind::Secured,
                bytes,
            }),
            Err(_) => {
                self.end_session();
                None
            }
        }
    }
}

fn unexpected(expected: &'static str, code: RequestResponseCode) -> Error {
    PeerMisbehaved::UnexpectedMessage {
        expected,
        got: code.0,
    }
    .into()
}

fn invalid(what: &'static str) -> Error {
    Malformed::UnknownValue { what, value: 0 }.into()
}

/// Response-side capability flags defined for `version`.
fn response_mask(version: SpdmVersion) -> u32 {
    match version {
        SpdmVersion::V12 => CapabilityFlags::RESPONSE_MASK_12,
        SpdmVersion::V13 => CapabilityFlags::RESPONSE_MASK_13,
    }
}

impl<D: Device> Responder<D> {
    /// Ends the session (if any) and tells the device.
    fn end_session(&mut self) {
        if let Some(s) = self.session.take() {
            self.device.session_ended(s.id());
        }
    }

    fn dispatch(&mut self, via: Via, request: &[u8]) -> Result<Vec<u8>> {
        let header = SpdmHeader::peek(request)?;
        let code = header.code;
        if code == RequestResponseCode::GET_VERSION {
            if via == Via::Secured {
                return Err(unexpected("GET_VERSION outside a session", code));
            }
            return self.on_get_version(request);
        }
        if code.name().is_none() || !code.is_request() {
            return Err(PeerMisbehaved::UnsupportedRequest(code.0).into());
        }
        if let Some(v) = self.negotiated_version() {
            if header.version != v.byte() {
                return Err(PeerMisbehaved::VersionMismatch {
                    negotiated: v.byte(),
                    got: header.version,
                }
                .into());
            }
        }
        match code {
            RequestResponseCode::GET_CAPABILITIES => self.on_get_capabilities(request),
            RequestResponseCode::NEGOTIATE_ALGORITHMS => self.on_negotiate_algorithms(request),
            RequestResponseCode::GET_DIGESTS => self.on_get_digests(request),
            RequestResponseCode::GET_CERTIFICATE => self.on_get_certificate(request),
            RequestResponseCode::CHALLENGE if via == Via::Plain => self.on_challenge(request),
            RequestResponseCode::GET_MEASUREMENTS => {
                if via == Via::Secured {
                    self.established(code)?;
                }
                self.on_get_measurements(request)
            }
            RequestResponseCode::KEY_EXCHANGE if via == Via::Plain => self.on_key_exchange(request),
            RequestResponseCode::FINISH => self.on_finish(via, request),
            RequestResponseCode::HEARTBEAT
            | RequestResponseCode::KEY_UPDATE
            | RequestResponseCode::END_SESSION
                if via == Via::Secured =>
            {
                self.conn(code)?.transcripts.on_request(code.0);
                self.on_session_request(code, request)
            }
            RequestResponseCode::VENDOR_DEFINED_REQUEST => self.on_vendor(via, request),
            // We never defer a response, so there is nothing to be ready.
            RequestResponseCode::RESPOND_IF_READY => {
                Err(unexpected("a request (no response is pending)", code))
            }
            RequestResponseCode::CHALLENGE | RequestResponseCode::KEY_EXCHANGE => {
                Err(unexpected("a plain (unsecured) request", code))
            }
            RequestResponseCode::HEARTBEAT
            | RequestResponseCode::KEY_UPDATE
            | RequestResponseCode::END_SESSION => {
                Err(unexpected("a request inside a session", code))
            }
            _ => Err(PeerMisbehaved::UnsupportedRequest(code.0).into()),
        }
    }

    fn conn(&mut self, code: RequestResponseCode) -> Result<&mut NegotiatedConn> {
        match &mut self.conn {
            Conn::Negotiated(c) => Ok(c),
            _ => Err(unexpected(
                "GET_VERSION, GET_CAPABILITIES or NEGOTIATE_ALGORITHMS first",
                code,
            )),
        }
    }

    fn has_cap(&self, flag: CapabilityFlags) -> bool {
        CapabilityFlags(self.device.capability_flags()).contains(flag)
    }

    fn require_cap(&self, flag: CapabilityFlags, what: &'static str) -> Result<()> {
        if self.has_cap(flag) {
            Ok(())
        } else {
            Err(PeerIncompatible::MissingCapability { what }.into())
        }
    }

    // ----------------------------------------------------------------------------------
    // VCA
    // ----------------------------------------------------------------------------------

    fn on_get_version(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        GetVersion::parse(request)?;
        let mut entries: Vec<VersionNumber> = self
            .device
            .versions()
            .iter()
            .filter(|v| negotiation::OUR_VERSIONS.contains(v))
            .map(|v| VersionNumber::of(*v))
            .collect();
        entries.sort();
        entries.dedup();
        let response = Version { entries }.encode()?;
        // GET_VERSION resets the connection and ends any session.
        self.end_session();
        let mut vca = Vca::new();
        vca.push(request)?;
        vca.push(&response)?;
        self.conn = Conn::ExpectGetCapabilities { vca };
        Ok(response)
    }

    fn on_get_capabilities(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        let Conn::ExpectGetCapabilities { vca } = &self.conn else {
            return Err(unexpected(
                "GET_VERSION",
                RequestResponseCode::GET_CAPABILITIES,
            ));
        };
        let peer = GetCapabilities::parse(request)?;
        if !self.device.versions().contains(&peer.version) {
            return Err(PeerMisbehaved::VersionMismatch {
                negotiated: self.device.versions().iter().max().map_or(0, |v| v.byte()),
                got: peer.version.byte(),
            }
            .into());
        }
        let flags = self.device.capability_flags() & response_mask(peer.version);
        let ours = Capabilities {
            version: peer.version,
            ct_exponent: self.device.ct_exponent(),
            flags: CapabilityFlags(flags),
            data_transfer_size: self.config.data_transfer_size,
            max_spdm_msg_size: self.config.max_spdm_msg_size,
        };
        let response = ours.encode()?;
        let mut vca = vca.clone();
        vca.push(request)?;
        vca.push(&response)?;
        self.conn = Conn::ExpectNegotiateAlgorithms { vca, peer, ours };
        Ok(response)
    }

    fn on_negotiate_algorithms(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        let Conn::ExpectNegotiateAlgorithms { vca, peer, ours } = &self.conn else {
            return Err(unexpected(
                "GET_CAPABILITIES",
                RequestResponseCode::NEGOTIATE_ALGORITHMS,
            ));
        };
        let req = NegotiateAlgorithms::parse(request)?;
        let version = ours.version;
        let pol = self.device.algorithms();
        // Signature first, then the hash that goes with its curve.
        let asym = pol
            .asym
            .iter()
            .copied()
            .find(|a| {
                req.base_asym.0 & a.bit() != 0
                    && req.base_hash.0 & negotiation::hash_for(*a).base_hash_bit() != 0
                    && pol.hash.contains(&negotiation::hash_for(*a))
            })
            .ok_or(PeerIncompatible::NoCommonAlgorithm {
                what: "BaseAsymAlgo with its BaseHashAlgo",
            })?;
        let hash = negotiation::hash_for(asym);
        let meas = self.has_cap(CapabilityFlags::MEAS_CAP_SIG)
            || self.has_cap(CapabilityFlags::MEAS_CAP_NO_SIG);
        let meas_spec_sel = if meas && req.meas_spec.0 & MeasSpec::DMTF.0 != 0 {
            MeasSpec::DMTF
        } else {
            MeasSpec::default()
        };
        let meas_hash_sel = if meas_spec_sel == MeasSpec::DMTF {
            MeasHashBits(hash.meas_hash_bit())
        } else {
            MeasHashBits(0)
        };
        let other_params_sel = if req.other_params.contains(OtherParams::OPAQUE_DATA_FMT1) {
            OtherParams::OPAQUE_DATA_FMT1
        } else {
            OtherParams::default()
        };
        let key_ex = self.has_cap(CapabilityFlags::KEY_EX_CAP);
        let mut dhe = None;
        let mut aead = None;
        let mut structs = Vec::with_capacity(req.alg_structs.len());
        for st in &req.alg_structs {
            let sel = match st.alg_type {
                AlgType::DHE if key_ex => {
                    let d = pol.pick_dhe(st.supported).ok();
                    dhe = d;
                    d.map_or(0, |d| d.bit())
                }
                AlgType::AEAD if key_ex => {
                    let a = pol.pick_aead(st.supported).ok();
                    aead = a;
                    a.map_or(0, |a| a.bit())
                }
                AlgType::KEY_SCHEDULE if key_ex => st.supported & 0x1,
                _ => 0,
            };
            structs.push(AlgStruct::new(st.alg_type, sel));
        }
        let key_schedule_ok = structs
            .iter()
            .any(|s| s.alg_type == AlgType::KEY_SCHEDULE && s.supported == 0x1);
        let algs = Algorithms {
            version,
            meas_spec_sel,
            other_params_sel,
            meas_hash_sel,
            base_asym_sel: AsymBits(asym.bit()),
            base_hash_sel: HashBits(hash.base_hash_bit()),
            mel_spec_sel: 0,
            ext_asym_sel: Vec::new(),
            ext_hash_sel: Vec::new(),
            alg_structs: structs,
        };
        let response = algs.encode()?;
        let (session_capable, dhe, aead) = match (dhe, aead) {
            (Some(d), Some(a)) if key_schedule_ok => (true, d, a),
            _ => (false, negotiation::dhe_for(asym), AeadAlg::Aes256Gcm),
        };
        let negotiated = Negotiated {
            version,
            hash,
            meas_hash: hash,
            asym,
            dhe,
            aead,
        };
        let ctx = MsgContext::from_negotiation(&algs, peer.flags, ours.flags)?;
        let mut vca = vca.clone();
        vca.push(request)?;
        vca.push(&response)?;
        let transcripts = Transcripts::new(hash, &vca)?;
        self.conn = Conn::Negotiated(Box::new(NegotiatedConn {
            negotiated,
            session_capable,
            ctx,
            peer: *peer,
            transcripts,
        }));
        Ok(response)
    }

    // ----------------------------------------------------------------------------------
    // Digests, certificate, challenge, measurements
    // ----------------------------------------------------------------------------------

    fn chain(&self, slot: u8, hash: HashAlg) -> Result<Vec<u8>> {
        if slot > 7 || self.device.provisioned_slots() & (1 << slot) == 0 {
            return Err(invalid("SlotID (no certificate chain in this slot)"));
        }
        self.device
            .cert_chain(slot, hash)
            .ok_or(invalid("SlotID (no certificate chain in this slot)"))
    }

    fn on_get_digests(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        self.require_cap(CapabilityFlags::CERT_CAP, "CERT_CAP")?;
        let code = RequestResponseCode::GET_DIGESTS;
        let hash = self.conn(code)?.hash();
        GetDigests::parse(request)?;
        let mask = self.device.provisioned_slots();
        let mut digests = Vec::new();
        for slot in 0..8u8 {
            if mask & (1 << slot) != 0 {
                let chain = self.chain(slot, hash)?;
                digests.push(crypto::hash(hash, &chain).as_bytes().to_vec());
            }
        }
        let conn = self.conn(code)?;
        let version = conn.version();
        let response = Digests {
            version,
            supported_slot_mask: if version >= SpdmVersion::V13 { mask } else { 0 },
            provisioned_slot_mask: mask,
            digests,
            key_pair_info: None,
        }
        .encode()?;
        conn.transcripts.on_request(code.0);
        conn.transcripts.push_b(request, &response);
        if conn.ctx.multi_key_conn {
            conn.transcripts.set_digests_for_th(&response);
        }
        Ok(response)
    }

    fn on_get_certificate(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        self.require_cap(CapabilityFlags::CERT_CAP, "CERT_CAP")?;
        let code = RequestResponseCode::GET_CERTIFICATE;
        let hash = self.conn(code)?.hash();
        let get = GetCertificate::parse(request)?;
        if get.param2 != 0 {
            return Err(invalid("GET_CERTIFICATE SlotSizeRequested (unsupported)"));
        }
        let chain = self.chain(get.slot_id, hash)?;
        let offset = usize::from(get.offset);
        let rest = chain
            .get(offset..)
            .filter(|r| !r.is_empty())
            .ok_or(invalid("GET_CERTIFICATE Offset beyond the chain"))?;
        let dts = self.config.data_transfer_size;
        let conn = self.conn(code)?;
        let fit = |d: u32| usize::try_from(d.saturating_sub(8)).unwrap_or(usize::MAX);
        let take = usize::from(get.length)
            .min(rest.len())
            .min(fit(conn.peer.data_transfer_size))
            .min(fit(dts));
        if take == 0 {
            return Err(invalid("GET_CERTIFICATE Length"));
        }
        let portion = rest.get(..take).unwrap_or(&[]).to_vec();
        let remainder = u16::try_from(rest.len().saturating_sub(take)).map_err(|_| {
            Malformed::LengthOverflow {
                what: "CERTIFICATE RemainderLength",
            }
        })?;
        let response = Certificate {
            version: conn.version(),
            slot_id: get.slot_id,
            param2: 0,
            remainder_length: remainder,
            portion,
        }
        .encode()?;
        conn.transcripts.on_request(code.0);
        conn.transcripts.push_b(request, &response);
        Ok(response)
    }

    /// The MeasurementSummaryHash for `kind`: Hash of the concatenated measurement blocks
    /// (all of them, or the TCB ones: immutable ROM, mutable firmware, hardware config).
    fn summary_hash(&self, kind: MeasurementSummaryType, hash: HashAlg) -> Result<Option<Vec<u8>>> {
        let tcb = |t: u8| t <= msg::DmtfValueType::HARDWARE_CONFIG;
        match kind {
            MeasurementSummaryType::None => Ok(None),
            MeasurementSummaryType::Tcb | MeasurementSummaryType::All => {
                let mut w = crate::codec::Writer::new();
                for b in self.device.measurements(hash)? {
                    if kind == MeasurementSummaryType::All || tcb(b.value_type.kind()) {
                        b.write(&mut w)?;
                    }
                }
                Ok(Some(crypto::hash(hash, w.as_slice()).as_bytes().to_vec()))
            }
        }
    }

    fn on_challenge(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        self.require_cap(CapabilityFlags::CHAL_CAP, "CHAL_CAP")?;
        let code = RequestResponseCode::CHALLENGE;
        let (version, hash) = {
            let c = self.conn(code)?;
            (c.version(), c.hash())
        };
        let ch = Challenge::parse(request)?;
        let chain = self.chain(ch.slot_id, hash)?;
        let summary = self.summary_hash(ch.summary_type, hash)?;
        let mut nonce = [0u8; msg::NONCE_LEN];
        self.device.rng().fill(&mut nonce)?;
        let mut auth = ChallengeAuth {
            version,
            slot_id: ch.slot_id,
            basic_mut_auth_req: false,
            slot_mask: self.device.provisioned_slots(),
            cert_chain_hash: crypto::hash(hash, &chain).as_bytes().to_vec(),
            nonce,
            measurement_summary_hash: summary,
            opaque: Vec::new(),
            requester_context: ch.requester_context,
            signature: Vec::new(),
        };
        // Encoded without a signature, the message is exactly the signed portion.
        let unsigned = auth.encode()?;
        let conn = self.conn(code)?;
        conn.transcripts.on_request(code.0);
        let m1 = conn.transcripts.m1_hash(request, &unsigned);
        auth.signature = self.device.sign(
            ch.slot_id,
            version,
            crypto::CTX_CHALLENGE_AUTH,
            m1.as_bytes(),
        )?;
        auth.encode()
    }

    fn on_get_measurements(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        let code = RequestResponseCode::GET_MEASUREMENTS;
        let (version, meas_hash) = {
            let c = self.conn(code)?;
            (c.version(), c.negotiated.meas_hash)
        };
        let get = GetMeasurements::parse(request)?;
        let signed = get.nonce_and_slot.is_some();
        if signed {
            self.require_cap(CapabilityFlags::MEAS_CAP_SIG, "MEAS_CAP (with signature)")?;
        } else if !self.has_cap(CapabilityFlags::MEAS_CAP_SIG) {
            self.require_cap(CapabilityFlags::MEAS_CAP_NO_SIG, "MEAS_CAP")?;
        }
        let slot = match get.nonce_and_slot {
            Some((_, slot)) => {
                self.chain(slot, meas_hash)?;
                slot
            }
            None => 0,
        };
        let all = self.device.measurements(meas_hash)?;
        let (total_indices, blocks) = match get.operation {
            MeasurementOperation::Count => (
                u8::try_from(all.len()).map_err(|_| Malformed::LengthOverflow {
                    what: "TotalNumberOfMeasurementIndices",
                })?,
                Vec::new(),
            ),
            MeasurementOperation::All => (0, all),
            MeasurementOperation::Index(i) => {
                let b: Vec<_> = all.into_iter().filter(|b| b.index == i).collect();
                if b.is_empty() {
                    return Err(invalid("GET_MEASUREMENTS index (no such measurement)"));
                }
                (0, b)
            }
        };
        let mut nonce = [0u8; msg::NONCE_LEN];
        self.device.rng().fill(&mut nonce)?;
        let mut m = Measurements {
            version,
            total_indices,
            slot_id: slot,
            content_changed: msg::ContentChanged::NotSupported,
            blocks,
            nonce,
            opaque: Vec::new(),
            requester_context: get.requester_context,
            signature: None,
        };
        let unsigned = m.encode()?;
        let conn = self.conn(code)?;
        conn.transcripts.on_request(code.0);
        if !signed {
            conn.transcripts.push_measurements(request, &unsigned);
            return Ok(unsigned);
        }
        let l1 = conn.transcripts.take_l1(request, &unsigned);
        let l1_hash = crypto::hash(conn.hash(), &l1);
        m.signature =
            Some(
                self.device
                    .sign(slot, version, crypto::CTX_MEASUREMENTS, l1_hash.as_bytes())?,
            );
        m.encode()
    }
}

// --------------------------------------------------------------------------------------
// Sessions
// --------------------------------------------------------------------------------------

impl<D: Device> Responder<D> {
    fn on_key_exchange(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        self.require_cap(CapabilityFlags::KEY_EX_CAP, "KEY_EX_CAP")?;
        let code = RequestResponseCode::KEY_EXCHANGE;
        if self.session.is_some() {
            // One session at a time. DSP0274 (ERROR codes table) names this case
            // SessionLimitExceeded — "the requested session is beyond the supported limit" —
            // which is also what libspdm answers when it has no free session slot.
            return Err(PeerIncompatible::SessionLimitExceeded { max: MAX_SESSIONS }.into());
        }
        let (negotiated, ctx, session_capable) = {
            let c = self.conn(code)?;
            (c.negotiated, c.ctx, c.session_capable)
        };
        if !session_capable {
            return Err(unexpected("a negotiated DHE group and AEAD", code));
        }
        let version = negotiated.version;
        let hash = negotiated.hash;
        let ke = KeyExchange::parse(request, &ctx)?;
        // SessionPolicy (TerminationPolicy; 1.3 EventAllPolicy) asks us to end the session on
        // a runtime update or to send events: we never update at runtime and send no events,
        // so every policy the codec accepts is honoured as it stands.
        match msg::OpaqueData::parse(&ke.opaque)?.secured_message()? {
            Some(msg::SecuredMessageVersionData::Supported(v))
                if v.contains(&SECURED_MESSAGE_VERSION) => {}
            _ => {
                return Err(PeerIncompatible::NoCommonAlgorithm {
                    what: "secured message version",
                }
                .into())
            }
        }
        let chain = self.chain(ke.slot_id, hash)?;
        let summary = self.summary_hash(ke.summary_type, hash)?;
        let rng = self.device.rng();
        let dhe = EphemeralDhe::generate(negotiated.dhe, rng)?;
        let exchange_data = dhe.exchange_data().to_vec();
        let shared = dhe.agree(&ke.exchange_data)?;
        let mut random = [0u8; msg::RANDOM_LEN];
        rng.fill(&mut random)?;
        let mut sid_bytes = [0u8; 2];
        rng.fill(&mut sid_bytes)?;
        let rsp_session_id = u16::from_le_bytes(sid_bytes);
        let in_clear = ctx.handshake_in_clear;
        let mut rsp = KeyExchangeRsp {
            version,
            heartbeat_period: self.config.heartbeat_period,
            rsp_session_id,
            mut_auth_requested: MutAuthRequested(0),
            req_slot_id: 0,
            random,
            exchange_data,
            measurement_summary_hash: summary,
            opaque: msg::OpaqueData::selected_version(SECURED_MESSAGE_VERSION).encode()?,
            signature: Vec::new(),
            verify_data: None,
        };
        // Without signature and verify data, the encoding is exactly the signed portion.
        let unsigned = rsp.encode()?;
        let conn = self.conn(code)?;
        conn.transcripts.on_request(code.0);
        let mut th = conn.transcripts.start_th(&chain);
        th.push(request);
        let sig_hash = th.hash_with(&unsigned);
        rsp.signature = self.device.sign(
            ke.slot_id,
            version,
            crypto::CTX_KEY_EXCHANGE_RSP,
            sig_hash.as_bytes(),
        )?;
        th.push(&unsigned);
        th.push(&rsp.signature);
        let th1 = th.hash();
        let params = ScheduleParams {
            version,
            hash,
            aead: negotiated.aead,
        };
        let secret = HandshakeSecret::new(params, shared.expose());
        let hs = secret.handshake_secrets(th1.as_bytes())?;
        if !in_clear {
            let vd = hs.response.finished_key()?.verify_data(th1.as_bytes());
            th.push(&vd);
            rsp.verify_data = Some(vd);
        }
        let response = rsp.encode()?;
        let session_id = rsp.session_id(ke.req_session_id);
        let record = if in_clear {
            None
        } else {
            Some(SecuredSession::new_handshake(
                session_id,
                Role::Responder,
                self.config.secured.params,
                &hs,
            )?)
        };
        self.session = Some(Session::Handshake(Box::new(Handshake {
            session_id,
            th,
            secret,
            hs,
            in_clear,
            record,
        })));
        Ok(response)
    }

    fn on_finish(&mut self, via: Via, request: &[u8]) -> Result<Vec<u8>> {
        let code = RequestResponseCode::FINISH;
        let ctx = self.conn(code)?.ctx;
        let version = ctx.version;
        let Some(Session::Handshake(h)) = self.session.as_mut() else {
            return Err(unexpected("KEY_EXCHANGE before FINISH", code));
        };
        if (via == Via::Plain) != h.in_clear {
            return Err(unexpected(
                "FINISH in the clear iff HANDSHAKE_IN_THE_CLEAR",
                code,
            ));
        }
        let fin = Finish::parse(request, &ctx)?;
        if fin.signature.is_some() {
            return Err(invalid(
                "FINISH signature (mutual authentication not requested)",
            ));
        }
        let header = fin.without_verify_data(request)?;
        let checked = h.hs.request.finished_key()?.check(
            h.th.hash_with(header).as_bytes(),
            &fin.verify_data,
            "FINISH RequesterVerifyData",
        );
        if let Err(e) = checked {
            // A wrong RequesterVerifyData ends the handshake (answered with DecryptError).
            self.end_session();
            return Err(e);
        }
        h.th.push(request);
        let rsp = if h.in_clear {
            let hdr = [version.byte(), RequestResponseCode::FINISH_RSP.0, 0, 0];
            let vd =
                h.hs.response
                    .finished_key()?
                    .verify_data(h.th.hash_with(&hdr).as_bytes());
            FinishRsp {
                version,
                verify_data: Some(vd),
            }
        } else {
            FinishRsp {
                version,
                verify_data: None,
            }
        };
        let response = rsp.encode()?;
        h.th.push(&response);
        let th2 = h.th.hash();
        let data = h.secret.master_secret()?.data_secrets(th2.as_bytes())?;
        let session_id = h.session_id;
        let record = match h.record.take() {
            Some(mut record) => {
                // FINISH_RSP still goes under the handshake keys; then switch.
                let app = self.config.secured.to_app_data(&response);
                let sealed = record.seal(&app, self.device.rng())?;
                record.switch_to_application(&data)?;
                self.sealed = Some(Outbound {
                    kind: MessageKind::Secured,
                    bytes: sealed,
                });
                record
            }
            None => SecuredSession::new_application(
                session_id,
                Role::Responder,
                self.config.secured.params,
                &data,
            )?,
        };
        self.session = Some(Session::Established(Box::new(Established {
            record,
            key_update: None,
        })));
        Ok(response)
    }

    fn established(&mut self, code: RequestResponseCode) -> Result<&mut Established> {
        match self.session.as_mut() {
            Some(Session::Established(e)) => Ok(e),
            _ => Err(unexpected("an established session", code)),
        }
    }

    fn on_session_request(&mut self, code: RequestResponseCode, request: &[u8]) -> Result<Vec<u8>> {
        let version = self.conn(code)?.version();
        match code {
            RequestResponseCode::HEARTBEAT => {
                Heartbeat::parse(request)?;
                self.established(code)?;
                HeartbeatAck { version }.encode()
            }
            RequestResponseCode::KEY_UPDATE => {
                self.require_cap(CapabilityFlags::KEY_UPD_CAP, "KEY_UPD_CAP")?;
                let ku = KeyUpdate::parse(request)?;
                let est = self.established(code)?;
                match (ku.op, est.key_update) {
                    (KeyUpdateOp::UpdateKey | KeyUpdateOp::UpdateAllKeys, None) => {
                        est.record.update_key(Direction::Request)?;
                        if ku.op == KeyUpdateOp::UpdateAllKeys {
                            // The ACK already goes under our new key.
                            est.record.update_key(Direction::Response)?;
                        }
                        est.key_update = Some(ku.op);
                    }
                    (KeyUpdateOp::VerifyNewKey, Some(op)) => {
                        // This request opened under the new request key: both sides switched.
                        est.record.confirm_key_update(Direction::Request);
                        if op == KeyUpdateOp::UpdateAllKeys {
                            est.record.confirm_key_update(Direction::Response);
                        }
                        est.key_update = None;
                    }
                    _ => return Err(unexpected("KEY_UPDATE in sequence", code)),
                }
                KeyUpdateAck {
                    version,
                    op: ku.op,
                    tag: ku.tag,
                }
                .encode()
            }
            RequestResponseCode::END_SESSION => {
                let es = EndSession::parse(request)?;
                let response = EndSessionAck { version }.encode()?;
                let app = self.config.secured.to_app_data(&response);
                let Some(Session::Established(est)) = self.session.as_mut() else {
                    return Err(unexpected("an established session", code));
                };
                let sealed = est.record.seal(&app, self.device.rng())?;
                self.sealed = Some(Outbound {
                    kind: MessageKind::Secured,
                    bytes: sealed,
                });
                self.end_session();
                if es.clear_negotiated_state {
                    self.conn = Conn::ExpectGetVersion;
                }
                Ok(response)
            }
            _ => Err(unexpected("HEARTBEAT, KEY_UPDATE or END_SESSION", code)),
        }
    }

    fn on_vendor(&mut self, via: Via, request: &[u8]) -> Result<Vec<u8>> {
        let code = RequestResponseCode::VENDOR_DEFINED_REQUEST;
        let conn = self.conn(code)?;
        conn.transcripts.on_request(code.0);
        let version = conn.version();
        let mut v = VendorDefinedRequest::parse(request)?;
        let (protocol, _) = v
            .as_pci_sig()
            .ok_or(invalid("VENDOR_DEFINED StandardID/VendorID (not PCI-SIG)"))?;
        let which = match protocol {
            PciSigProtocol::TDISP => VendorProtocol::Tdisp,
            PciSigProtocol::IDE_KM => VendorProtocol::KeyProgramming,
            _ => return Err(invalid("VENDOR_DEFINED ProtocolID")),
        };
        let channel = match (via, &self.session) {
            (Via::Secured, Some(Session::Established(e))) => {
                Channel::Secured(e.record.session_id())
            }
            (Via::Secured, _) => return Err(unexpected("an established session", code)),
            (Via::Plain, _) => Channel::Clear,
        };
        // The payload may carry key bytes: the device gets our copy to consume in place (a key
        // sink zeroes it), and we scrub it again whatever the device did.
        let answer = self
            .device
            .vendor_request_in_place(which, channel, &mut v.payload);
        zeroize::Zeroize::zeroize(&mut v.payload);
        let payload = answer.ok_or(PeerMisbehaved::UnsupportedRequest(code.0))??;
        let (_, body) = payload
            .split_first()
            .filter(|(p, _)| **p == protocol.0)
            .ok_or(Error::ApiMisuse("device answered a different ProtocolID"))?;
        VendorDefinedResponse::pci_sig(version, protocol, body).encode()
    }
}
