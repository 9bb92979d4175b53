//! The requester's session states: KEY_EXCHANGE → FINISH (key schedule, TH) and the
//! application phase (HEARTBEAT, KEY_UPDATE, VENDOR_DEFINED, END_SESSION) in secured messages.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::{attestation, Conn, Evidence, PeerChain, Progress, Requester, SessionConfig, State};
use crate::algo::SpdmVersion;
use crate::crypto::{self, EphemeralDhe};
use crate::error::{Error, Malformed, PeerIncompatible, PeerMisbehaved, Result};
use crate::key_schedule::{HandshakeSecret, ScheduleParams, TrafficSecret};
use crate::msg::{
    self, EndSession, EndSessionAck, Finish, FinishRsp, Heartbeat, HeartbeatAck, KeyExchange,
    KeyExchangeRsp, KeyUpdate, KeyUpdateAck, KeyUpdateOp, PciSigProtocol, RequestResponseCode,
    VendorDefinedRequest, VendorDefinedResponse,
};
use crate::secured::{Direction, Role, SecuredSession};
use crate::transcript::Th;

/// DSP0277 secured-message versions we implement, as VersionNumber entries (1.2 only).
pub(crate) const SECURED_MESSAGE_VERSIONS: [u16; 1] = [0x1200];

/// A request the application phase can send. `Debug` shows a vendor payload's ProtocolID
/// and length only (it may carry key bytes).
#[derive(Clone, PartialEq, Eq)]
pub enum AppRequest {
    /// HEARTBEAT.
    Heartbeat,
    /// KEY_UPDATE followed by VerifyNewKey under the new key.
    KeyUpdate(KeyUpdateKind),
    /// A PCI-SIG VENDOR_DEFINED_REQUEST. `payload` starts at the ProtocolID byte (0x01 TDISP,
    /// 0x00 IDE_KM / UALinkSec key programming), as the `tdisp` and `keyprog` builders
    /// produce it; it is zeroized after sending (it may carry key bytes).
    Vendor(zeroize::Zeroizing<Vec<u8>>),
    /// END_SESSION (the session is closed after the ACK).
    EndSession,
    /// Signed GET_MEASUREMENTS for all blocks inside the session (fresh evidence without a
    /// new handshake); L1 = A ‖ this request ‖ the response without its signature.
    Measurements,
}

impl core::fmt::Debug for AppRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Heartbeat => f.write_str("Heartbeat"),
            Self::KeyUpdate(k) => f.debug_tuple("KeyUpdate").field(k).finish(),
            Self::Vendor(p) => f
                .debug_struct("Vendor")
                .field("protocol_id", &p.first())
                .field("len", &p.len())
                .finish_non_exhaustive(),
            Self::EndSession => f.write_str("EndSession"),
            Self::Measurements => f.write_str("Measurements"),
        }
    }
}

/// Which keys a KEY_UPDATE rolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUpdateKind {
    /// UpdateKey: the request direction only.
    RequestOnly,
    /// UpdateAllKeys: both directions.
    All,
}

/// The answer to an [`AppRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppResponse {
    /// HEARTBEAT_ACK.
    HeartbeatAck,
    /// KEY_UPDATE and VerifyNewKey both acknowledged; the new keys are live.
    KeysUpdated,
    /// The PCI-SIG VENDOR_DEFINED_RESPONSE payload, from the ProtocolID byte on (same
    /// ProtocolID as the request), for the `tdisp` / `keyprog` parsers.
    Vendor(Vec<u8>),
    /// Verified signed measurements.
    Measurements(Box<super::SignedMeasurements>),
}

#[derive(Debug)]
pub(super) struct ExpectKeyExchangeRsp {
    conn: Box<Conn>,
    ev: Evidence,
    dhe: EphemeralDhe,
    req_session_id: u16,
    cfg: SessionConfig,
}

impl ExpectKeyExchangeRsp {
    pub(super) fn version(&self) -> SpdmVersion {
        self.conn.version()
    }
    pub(super) fn msg_ctx(&self) -> msg::MsgContext {
        self.conn.ctx
    }
}

pub(super) struct ExpectFinishRsp {
    conn: Box<Conn>,
    ev: Evidence,
    th: Th,
    secret: HandshakeSecret,
    rsp_hs: TrafficSecret,
    session_id: u32,
    in_clear: bool,
    heartbeat_period: u8,
}

impl core::fmt::Debug for ExpectFinishRsp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExpectFinishRsp")
            .field("session_id", &self.session_id)
            .field("in_clear", &self.in_clear)
            .finish_non_exhaustive()
    }
}

impl ExpectFinishRsp {
    pub(super) fn version(&self) -> SpdmVersion {
        self.conn.version()
    }
    pub(super) fn msg_ctx(&self) -> msg::MsgContext {
        self.conn.ctx
    }
}

/// A live session with no request outstanding.
#[derive(Debug)]
pub(super) struct Established {
    conn: Box<Conn>,
    /// The verified chain, for signed measurements inside the session.
    peer: PeerChain,
    next_tag: u8,
}

impl Established {
    pub(super) fn version(&self) -> SpdmVersion {
        self.conn.version()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyUpdateStep {
    Update,
    Verify,
}

#[derive(Debug)]
enum PendingOp {
    Heartbeat,
    KeyUpdate {
        kind: KeyUpdateKind,
        tag: u8,
        step: KeyUpdateStep,
    },
    Vendor(PciSigProtocol),
    EndSession,
    Measurements([u8; msg::NONCE_LEN]),
}

#[derive(Debug)]
pub(super) struct ExpectAppResponse {
    est: Established,
    op: PendingOp,
}

impl ExpectAppResponse {
    pub(super) fn version(&self) -> SpdmVersion {
        self.est.version()
    }

    /// The response to UpdateAllKeys comes under the new response key (or, for an ERROR,
    /// possibly the old one).
    pub(super) fn opens_with_pending_key(&self) -> bool {
        matches!(
            self.op,
            PendingOp::KeyUpdate {
                kind: KeyUpdateKind::All,
                step: KeyUpdateStep::Update,
                ..
            }
        )
    }
}

impl Requester {
    pub(super) fn send_key_exchange(
        &mut self,
        mut conn: Box<Conn>,
        ev: Evidence,
        cfg: SessionConfig,
    ) -> Result<(State, Progress)> {
        let dhe = EphemeralDhe::generate(conn.negotiated.dhe, &self.rng)?;
        let random = self.rng.nonce32()?;
        let bytes = KeyExchange {
            version: conn.version(),
            summary_type: cfg.summary,
            slot_id: self.config.slot,
            req_session_id: cfg.req_session_id,
            session_policy: 0,
            random,
            exchange_data: dhe.exchange_data().to_vec(),
            opaque: msg::OpaqueData::supported_versions(&SECURED_MESSAGE_VERSIONS)?.encode()?,
        }
        .encode()?;
        conn.transcripts
            .on_request(RequestResponseCode::KEY_EXCHANGE.0);
        self.send(
            State::ExpectKeyExchangeRsp(ExpectKeyExchangeRsp {
                conn,
                ev,
                dhe,
                req_session_id: cfg.req_session_id,
                cfg,
            }),
            bytes,
            false,
        )
    }

    pub(super) fn on_key_exchange_rsp(
        &mut self,
        s: ExpectKeyExchangeRsp,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let mut ctx = s.conn.ctx;
        ctx.summary_hash_requested = s.cfg.summary != msg::MeasurementSummaryType::None;
        let in_clear = ctx.handshake_in_clear;
        let ke = KeyExchangeRsp::parse(rsp, &ctx)?;
        if ke.mut_auth_requested.0 != 0 {
            return Err(PeerIncompatible::MissingCapability {
                what: "mutual authentication (requested by the responder)",
            }
            .into());
        }
        let selected = match msg::OpaqueData::parse(&ke.opaque)?.secured_message()? {
            Some(msg::SecuredMessageVersionData::Selection(v)) => v,
            _ => {
                return Err(PeerMisbehaved::SelectionNotOffered {
                    what: "secured message version (no selection in KEY_EXCHANGE_RSP)",
                }
                .into())
            }
        };
        if !SECURED_MESSAGE_VERSIONS.contains(&selected) {
            return Err(PeerMisbehaved::SelectionNotOffered {
                what: "secured message version",
            }
            .into());
        }
        let conn = s.conn;
        let version = conn.version();
        let hash = conn.hash();
        // TH: A ‖ Hash(cert chain) ‖ KEY_EXCHANGE ‖ KEY_EXCHANGE_RSP (without signature).
        let mut th = conn.transcripts.start_th(&s.ev.peer.spdm_chain);
        th.push(req);
        let signed = ke.signed_portion(rsp)?;
        crypto::verify(
            conn.negotiated.asym,
            s.ev.peer.verified.leaf_public_key(),
            version,
            crypto::CTX_KEY_EXCHANGE_RSP,
            th.hash_with(signed).as_bytes(),
            &ke.signature,
            "KEY_EXCHANGE_RSP",
        )?;
        th.push(ke.without_verify_data(rsp)?);
        let th1 = th.hash();
        let shared = s.dhe.agree(&ke.exchange_data)?;
        let params = ScheduleParams {
            version,
            hash,
            aead: conn.negotiated.aead,
        };
        let secret = HandshakeSecret::new(params, shared.expose());
        let hs = secret.handshake_secrets(th1.as_bytes())?;
        let session_id = ke.session_id(s.req_session_id);
        if let Some(vd) = &ke.verify_data {
            hs.response.finished_key()?.check(
                th1.as_bytes(),
                vd,
                "KEY_EXCHANGE_RSP ResponderVerifyData",
            )?;
            th.push(vd);
        } else if !in_clear {
            return Err(Malformed::Truncated {
                what: "KEY_EXCHANGE_RSP ResponderVerifyData",
            }
            .into());
        }
        // FINISH: header ‖ RequesterVerifyData = HMAC(req finished key, Hash(TH ‖ header)).
        let header = [version.byte(), RequestResponseCode::FINISH.0, 0, 0];
        let req_vd = hs
            .request
            .finished_key()?
            .verify_data(th.hash_with(&header).as_bytes());
        let finish = Finish {
            version,
            req_slot_id: 0,
            signature: None,
            verify_data: req_vd,
        }
        .encode()?;
        if finish.get(..4) != Some(&header[..]) {
            return Err(Error::ApiMisuse("FINISH header encoding"));
        }
        th.push(&finish);
        let framing = self.config.secured;
        if !in_clear {
            self.session = Some(SecuredSession::new_handshake(
                session_id,
                Role::Requester,
                framing.params,
                &hs,
            )?);
        }
        let next = State::ExpectFinishRsp(ExpectFinishRsp {
            conn,
            ev: s.ev,
            th,
            secret,
            rsp_hs: hs.response,
            session_id,
            in_clear,
            heartbeat_period: ke.heartbeat_period,
        });
        self.send(next, finish, !in_clear)
    }

    pub(super) fn on_finish_rsp(
        &mut self,
        mut s: ExpectFinishRsp,
        _req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let fr = FinishRsp::parse(rsp, &s.conn.ctx)?;
        match (&fr.verify_data, s.in_clear) {
            (Some(vd), true) => {
                let header = fr.without_verify_data(rsp)?;
                s.rsp_hs.finished_key()?.check(
                    s.th.hash_with(header).as_bytes(),
                    vd,
                    "FINISH_RSP ResponderVerifyData",
                )?;
            }
            (None, false) => {}
            _ => {
                return Err(Malformed::BadLength {
                    what: "FINISH_RSP ResponderVerifyData",
                }
                .into())
            }
        }
        s.th.push(rsp);
        let th2 = s.th.hash();
        let data = s.secret.master_secret()?.data_secrets(th2.as_bytes())?;
        match self.session.as_mut() {
            Some(sess) if !s.in_clear => sess.switch_to_application(&data)?,
            _ => {
                self.session = Some(SecuredSession::new_application(
                    s.session_id,
                    Role::Requester,
                    self.config.secured.params,
                    &data,
                )?)
            }
        }
        let peer = s.ev.peer.clone();
        let mut report = Box::new(attestation(
            &s.conn,
            self.config.slot,
            s.ev,
            Some(s.session_id),
        ));
        report.heartbeat_period = s.heartbeat_period;
        let est = Established {
            conn: s.conn,
            peer,
            next_tag: 1,
        };
        Ok((State::Established(est), Progress::Attested(report)))
    }

    /// Sends an application-phase request inside the session. Only allowed once the session
    /// is established and no other request is outstanding.
    pub fn request(&mut self, app: AppRequest) -> Result<super::Outbound> {
        let est = match core::mem::replace(&mut self.state, State::Failed) {
            State::Established(e) => e,
            other => {
                self.state = other;
                return Err(Error::ApiMisuse(
                    "no established session, or a request is outstanding",
                ));
            }
        };
        let mut est = est;
        let version = est.version();
        let (bytes, op) = match app {
            AppRequest::Measurements => {
                let nonce = self.rng.nonce32()?;
                let bytes = msg::GetMeasurements {
                    version,
                    attributes: 1,
                    operation: msg::MeasurementOperation::All,
                    nonce_and_slot: Some((nonce, self.config.slot)),
                    requester_context: self.context_for(version),
                }
                .encode()?;
                (bytes, PendingOp::Measurements(nonce))
            }
            AppRequest::Heartbeat => (Heartbeat { version }.encode()?, PendingOp::Heartbeat),
            AppRequest::EndSession => (
                EndSession {
                    version,
                    clear_negotiated_state: false,
                }
                .encode()?,
                PendingOp::EndSession,
            ),
            AppRequest::Vendor(payload) => {
                let protocol = PciSigProtocol(*payload.first().ok_or(Error::ApiMisuse(
                    "vendor payload must start with a ProtocolID",
                ))?);
                let mut v = VendorDefinedRequest {
                    version,
                    standard_id: msg::vendor::STANDARD_ID_PCI_SIG,
                    vendor_id: msg::vendor::PCI_SIG_VENDOR_ID.to_vec(),
                    payload: payload.to_vec(),
                };
                let bytes = v.encode();
                zeroize::Zeroize::zeroize(&mut v.payload);
                (bytes?, PendingOp::Vendor(protocol))
            }
            AppRequest::KeyUpdate(kind) => {
                let op = match kind {
                    KeyUpdateKind::RequestOnly => KeyUpdateOp::UpdateKey,
                    KeyUpdateKind::All => KeyUpdateOp::UpdateAllKeys,
                };
                (
                    KeyUpdate {
                        version,
                        op,
                        tag: est.next_tag,
                    }
                    .encode()?,
                    PendingOp::KeyUpdate {
                        kind,
                        tag: est.next_tag,
                        step: KeyUpdateStep::Update,
                    },
                )
            }
        };
        est.conn
            .transcripts
            .on_request(bytes.get(1).copied().unwrap_or(0));
        // If sealing fails (session terminated or exhausted) the requester stays Failed.
        let out = self.emit(bytes, true)?;
        if let PendingOp::KeyUpdate {
            kind: KeyUpdateKind::All,
            ..
        } = op
        {
            // The ACK to UpdateAllKeys comes under the responder's new key.
            self.session_mut()?.update_key(Direction::Response)?;
        }
        self.state = State::ExpectAppResponse(ExpectAppResponse { est, op });
        Ok(out)
    }

    fn session_mut(&mut self) -> Result<&mut SecuredSession> {
        self.session.as_mut().ok_or(Error::ApiMisuse("no session"))
    }

    pub(super) fn on_app_response(
        &mut self,
        s: ExpectAppResponse,
        req: &[u8],
        rsp: &[u8],
    ) -> Result<(State, Progress)> {
        let mut est = s.est;
        match s.op {
            PendingOp::Measurements(nonce) => {
                let mut ctx = est.conn.ctx;
                ctx.measurement_signature_requested = true;
                let m = msg::Measurements::parse(rsp, &ctx)?;
                self.check_context(
                    est.version(),
                    &m.requester_context,
                    "MEASUREMENTS RequesterContext",
                )?;
                if m.slot_id != self.config.slot || m.total_indices != 0 {
                    return Err(PeerMisbehaved::ResponseMismatch {
                        what: "MEASUREMENTS SlotID/Param1",
                    }
                    .into());
                }
                let signature = m.signature.clone().ok_or(Malformed::Truncated {
                    what: "MEASUREMENTS Signature",
                })?;
                let l1 = est.conn.transcripts.take_l1(req, m.signed_portion(rsp)?);
                crypto::verify(
                    est.conn.negotiated.asym,
                    est.peer.verified.leaf_public_key(),
                    est.version(),
                    crypto::CTX_MEASUREMENTS,
                    crypto::hash(est.conn.hash(), &l1).as_bytes(),
                    &signature,
                    "MEASUREMENTS",
                )?;
                let signed = super::SignedMeasurements {
                    blocks: m.blocks,
                    l1,
                    signature,
                    requester_nonce: nonce,
                    responder_nonce: m.nonce,
                };
                Ok((
                    State::Established(est),
                    Progress::Response(AppResponse::Measurements(Box::new(signed))),
                ))
            }
            PendingOp::Heartbeat => {
                HeartbeatAck::parse(rsp)?;
                Ok((
                    State::Established(est),
                    Progress::Response(AppResponse::HeartbeatAck),
                ))
            }
            PendingOp::EndSession => {
                EndSessionAck::parse(rsp)?;
                self.session_mut()?.terminate();
                Ok((State::Closed, Progress::SessionClosed))
            }
            PendingOp::Vendor(protocol) => {
                let mut v = VendorDefinedResponse::parse(rsp)?;
                let (p, _) = v.as_pci_sig().ok_or(PeerMisbehaved::ResponseMismatch {
                    what: "VENDOR_DEFINED_RESPONSE StandardID/VendorID",
                })?;
                if p != protocol {
                    return Err(PeerMisbehaved::ResponseMismatch {
                        what: "VENDOR_DEFINED_RESPONSE ProtocolID",
                    }
                    .into());
                }
                Ok((
                    State::Established(est),
                    Progress::Response(AppResponse::Vendor(core::mem::take(&mut v.payload))),
                ))
            }
            PendingOp::KeyUpdate { kind, tag, step } => {
                let ack = KeyUpdateAck::parse(rsp)?;
                let want = match (step, kind) {
                    (KeyUpdateStep::Verify, _) => KeyUpdateOp::VerifyNewKey,
                    (KeyUpdateStep::Update, KeyUpdateKind::RequestOnly) => KeyUpdateOp::UpdateKey,
                    (KeyUpdateStep::Update, KeyUpdateKind::All) => KeyUpdateOp::UpdateAllKeys,
                };
                if ack.op != want || ack.tag != tag {
                    return Err(PeerMisbehaved::ResponseMismatch {
                        what: "KEY_UPDATE_ACK KeyOperation/Tag",
                    }
                    .into());
                }
                match step {
                    KeyUpdateStep::Update => {
                        let sess = self.session_mut()?;
                        if kind == KeyUpdateKind::All {
                            sess.confirm_key_update(Direction::Response);
                        }
                        sess.update_key(Direction::Request)?;
                        est.next_tag = est.next_tag.wrapping_add(1);
                        let verify_tag = est.next_tag;
                        est.next_tag = est.next_tag.wrapping_add(1);
                        let bytes = KeyUpdate {
                            version: est.version(),
                            op: KeyUpdateOp::VerifyNewKey,
                            tag: verify_tag,
                        }
                        .encode()?;
                        let next = State::ExpectAppResponse(ExpectAppResponse {
                            est,
                            op: PendingOp::KeyUpdate {
                                kind,
                                tag: verify_tag,
                                step: KeyUpdateStep::Verify,
                            },
                        });
                        self.send(next, bytes, true)
                    }
                    KeyUpdateStep::Verify => {
                        self.session_mut()?.confirm_key_update(Direction::Request);
                        Ok((
                            State::Established(est),
                            Progress::Response(AppResponse::KeysUpdated),
                        ))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_request_debug_redacts_the_payload() {
        let r = AppRequest::Vendor(zeroize::Zeroizing::new(alloc::vec![0x00, 0xAB, 0xCD, 0xEF]));
        let s = alloc::format!("{r:?}");
        assert!(s.contains("len: 4"), "{s}");
        for secret in ["171", "205", "239", "ab", "cd", "ef"] {
            assert!(!s.to_lowercase().contains(secret), "{s}");
        }
    }
}
