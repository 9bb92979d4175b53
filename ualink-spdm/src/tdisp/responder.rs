//! The device side of TDISP: a request payload in, a response payload out.
//!
//! [`TdispResponder::respond`] always produces a response: either the matching TDISP response
//! or TDISP_ERROR with the code of the refusal ([`TdispError::code`]). Every state decision
//! goes through [`Tdi::handle`]; this module only parses, asks the [`TdispDevice`], and
//! encodes. The SPDM responder engine routes VENDOR_DEFINED payloads with ProtocolID 0x01
//! here and passes whether they arrived inside a secured session.

use alloc::vec;
use alloc::vec::Vec;

use super::msg::{
    code, DeviceCapabilities, HeaderPeek, InterfaceId, LockInterfaceParams, TdispErrorCode,
    TdispRequest, TdispRequestBody, TdispResponse, TdispResponseBody,
};
use super::state::{NonceSource, Tdi, TdiEvent, TdiState, Transition};
use super::{TdispError, TDISP_VERSION_1_0};

/// REQ_MSGS_SUPPORTED this responder implements: request codes 0x81..=0x87 (bits 1..=7).
pub const REQ_MSGS_SUPPORTED: [u8; 16] = [0xFE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// What a device supplies to the TDISP responder.
pub trait TdispDevice {
    /// The TDIs this device hosts (read once, when the responder is built).
    fn interfaces(&self) -> Vec<InterfaceId>;

    /// Capabilities to report. The responder replaces `req_msgs_supported` with
    /// [`REQ_MSGS_SUPPORTED`], which is what it actually implements.
    fn capabilities(&self) -> DeviceCapabilities;

    /// Whether the link keys protecting `id` are programmed and live (LOCK requires it).
    fn keys_live(&self, id: InterfaceId) -> bool;

    /// Whether those keys are live *and* were programmed over the SPDM session `session_id`,
    /// the one LOCK arrived on (TDISP §11.3.8: keys "not configured over the SPDM session on
    /// which the LOCK_INTERFACE_REQUEST was received" fail LOCK with INVALID_REQUEST). Used by
    /// [`TdispResponder::respond_in_session`]; the default ignores the session.
    fn keys_live_in_session(&self, id: InterfaceId, session_id: u32) -> bool {
        let _ = session_id;
        self.keys_live(id)
    }

    /// The encoded device interface report of `id` under the lock parameters given (e.g. the
    /// MMIO reporting offset). Called once per lock, at the first report request; the bytes
    /// are then served unchanged until the TDI leaves CONFIG_LOCKED/RUN.
    fn interface_report(
        &self,
        id: InterfaceId,
        lock: &LockInterfaceParams,
    ) -> Result<Vec<u8>, TdispError>;

    /// Told after every accepted transition (the device freezes its configuration on
    /// CONFIG_LOCKED, enables the TDI on RUN, and tears down on CONFIG_UNLOCKED/ERROR).
    fn on_transition(&mut self, id: InterfaceId, from: TdiState, to: TdiState) {
        let _ = (id, from, to);
    }
}

struct Slot {
    id: InterfaceId,
    tdi: Tdi,
    lock: Option<LockInterfaceParams>,
    report: Option<Vec<u8>>,
}

/// The TDISP responder of one device.
pub struct TdispResponder<D, R> {
    device: D,
    rng: R,
    slots: Vec<Slot>,
}

impl<D: TdispDevice, R: NonceSource> TdispResponder<D, R> {
    /// A responder for `device`, drawing START nonces from `rng`. Every TDI starts in
    /// CONFIG_UNLOCKED.
    pub fn new(device: D, rng: R) -> Self {
        let slots = device
            .interfaces()
            .into_iter()
            .map(|id| Slot {
                id,
                tdi: Tdi::new(),
                lock: None,
                report: None,
            })
            .collect();
        Self { device, rng, slots }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutably (for simulations changing keys or configuration; report such
    /// changes with [`Self::notify`]).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The state of TDI `id`, if the device hosts it.
    pub fn state(&self, id: InterfaceId) -> Option<TdiState> {
        self.slots
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.tdi.state())
    }

    /// Whether TDI `id` holds a live START nonce (for tests and diagnostics).
    pub fn has_live_nonce(&self, id: InterfaceId) -> Option<bool> {
        self.slots
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.tdi.has_live_nonce())
    }

    /// Reports a device-side event (config write, integrity failure, reset, keys revoked)
    /// for TDI `id`; returns the state afterwards.
    pub fn notify(&mut self, id: InterfaceId, event: DeviceEvent) -> Result<TdiState, TdispError> {
        let ev = match event {
            DeviceEvent::ConfigWritten => TdiEvent::ConfigWritten,
            DeviceEvent::IntegrityFailure => TdiEvent::IntegrityFailure,
            DeviceEvent::Reset => TdiEvent::Reset,
            DeviceEvent::KeysRevoked => TdiEvent::KeysRevoked,
        };
        let idx = self.slot_index(id)?;
        let t = self.transition(idx, ev)?;
        Ok(t.to)
    }

    /// Answers one request payload (from the ProtocolID byte). `in_session` says whether it
    /// arrived inside an SPDM secured session: outside one only GET_TDISP_VERSION,
    /// GET_TDISP_CAPABILITIES and GET_DEVICE_INTERFACE_STATE are answered, everything else
    /// is refused with INVALID_REQUEST (the nonce and the report must never travel in clear).
    pub fn respond(&mut self, request: &[u8], in_session: bool) -> Vec<u8> {
        self.respond_inner(request, in_session, None)
    }

    /// Like [`Self::respond`] for a request that arrived in the secured session `session_id`
    /// (`None`: in clear). LOCK then also requires
    /// [`TdispDevice::keys_live_in_session`] for that session.
    pub fn respond_in_session(&mut self, request: &[u8], session_id: Option<u32>) -> Vec<u8> {
        self.respond_inner(request, session_id.is_some(), session_id)
    }

    fn respond_inner(
        &mut self,
        request: &[u8],
        in_session: bool,
        session_id: Option<u32>,
    ) -> Vec<u8> {
        let echo = HeaderPeek::read(request)
            .and_then(|h| InterfaceId::new(h.function_id).ok())
            .unwrap_or(InterfaceId::ZERO);
        let rsp = match self.handle_inner(request, in_session, session_id) {
            Ok(rsp) => rsp,
            Err(e) => TdispResponse::error(echo, e.code(), e.error_data()),
        };
        rsp.encode().unwrap_or_else(|_| {
            // Only a device-supplied report portion or version list could fail to encode; the
            // fixed-size error below cannot.
            TdispResponse::error(echo, TdispErrorCode::Unspecified, 0)
                .encode()
                .unwrap_or_default()
        })
    }

    /// Like [`Self::respond`] but returns the typed response or the refusal.
    pub fn handle(
        &mut self,
        request: &[u8],
        in_session: bool,
    ) -> Result<TdispResponse, TdispError> {
        self.handle_inner(request, in_session, None)
    }

    fn handle_inner(
        &mut self,
        request: &[u8],
        in_session: bool,
        session_id: Option<u32>,
    ) -> Result<TdispResponse, TdispError> {
        let peek = HeaderPeek::read(request).ok_or(TdispError::InvalidRequest(
            crate::error::Malformed::UnknownValue {
                what: "ProtocolID (TDISP) or header",
                value: request.first().copied().map_or(0, u32::from),
            },
        ))?;
        if peek.version != TDISP_VERSION_1_0 {
            return Err(TdispError::VersionMismatch(peek.version));
        }
        if !(code::GET_TDISP_VERSION..=code::STOP_INTERFACE_REQUEST).contains(&peek.message_type) {
            return Err(TdispError::UnsupportedRequest(peek.message_type));
        }
        let req = TdispRequest::parse(request)?;
        let id = req.interface_id;
        let idx = self.slot_index(id)?;
        let needs_session = !matches!(
            req.body,
            TdispRequestBody::GetVersion
                | TdispRequestBody::GetCapabilities
                | TdispRequestBody::GetDeviceInterfaceState
        );
        if needs_session && !in_session {
            return Err(TdispError::SessionRequired);
        }
        let body = match &req.body {
            TdispRequestBody::GetVersion => TdispResponseBody::Version(vec![TDISP_VERSION_1_0]),
            TdispRequestBody::GetCapabilities => {
                let mut caps = self.device.capabilities();
                caps.req_msgs_supported = REQ_MSGS_SUPPORTED;
                TdispResponseBody::Capabilities(caps)
            }
            TdispRequestBody::GetDeviceInterfaceState => {
                TdispResponseBody::DeviceInterfaceState(self.slot(idx)?.tdi.state())
            }
            TdispRequestBody::LockInterface(params) => {
                let supported = self.device.capabilities().lock_flags_supported;
                if !supported.contains(params.flags) {
                    return Err(TdispError::InvalidDeviceConfiguration(
                        "LOCK flag not supported by the device",
                    ));
                }
                let keys_live = match session_id {
                    Some(sid) => self.device.keys_live_in_session(id, sid),
                    None => self.device.keys_live(id),
                };
                let slot = self.slots.get_mut(idx).ok_or(TdispError::Unspecified)?;
                let t = slot.tdi.handle(TdiEvent::Lock {
                    keys_live,
                    rng: &mut self.rng,
                })?;
                slot.lock = Some(*params);
                slot.report = None;
                let nonce = t.nonce.clone().ok_or(TdispError::Unspecified)?;
                self.device.on_transition(id, t.from, t.to);
                TdispResponseBody::LockInterface(nonce)
            }
            TdispRequestBody::GetDeviceInterfaceReport { offset, length } => {
                self.transition(idx, TdiEvent::ReadReport)?;
                let slot = self.slots.get_mut(idx).ok_or(TdispError::Unspecified)?;
                if slot.report.is_none() {
                    let lock = slot.lock.ok_or(TdispError::Unspecified)?;
                    slot.report = Some(self.device.interface_report(id, &lock)?);
                }
                let report = slot.report.as_deref().ok_or(TdispError::Unspecified)?;
                let (portion, remainder) = portion_of(report, *offset, *length)?;
                TdispResponseBody::DeviceInterfaceReport {
                    portion: portion.to_vec(),
                    remainder_length: remainder,
                }
            }
            TdispRequestBody::StartInterface(nonce) => {
                self.transition(idx, TdiEvent::Start(nonce))?;
                TdispResponseBody::StartInterface
            }
            TdispRequestBody::StopInterface => {
                self.transition(idx, TdiEvent::Stop)?;
                TdispResponseBody::StopInterface
            }
        };
        Ok(TdispResponse::new(id, body))
    }

    fn slot_index(&self, id: InterfaceId) -> Result<usize, TdispError> {
        self.slots
            .iter()
            .position(|s| s.id == id)
            .ok_or(TdispError::InvalidInterface(id.function_id()))
    }

    fn slot(&self, idx: usize) -> Result<&Slot, TdispError> {
        self.slots.get(idx).ok_or(TdispError::Unspecified)
    }

    /// Runs `event` through the TDI's state machine and tells the device. Leaving
    /// CONFIG_LOCKED/RUN drops the lock parameters and the report snapshot.
    fn transition(&mut self, idx: usize, event: TdiEvent<'_>) -> Result<Transition, TdispError> {
        let slot = self.slots.get_mut(idx).ok_or(TdispError::Unspecified)?;
        let t = slot.tdi.handle(event)?;
        if matches!(t.to, TdiState::ConfigUnlocked | TdiState::Error) {
            slot.lock = None;
            slot.report = None;
        }
        if t.from != t.to {
            self.device.on_transition(slot.id, t.from, t.to);
        }
        Ok(t)
    }
}

/// A device-side event that may break a TDI's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// Configuration that LOCK froze was written.
    ConfigWritten,
    /// An integrity failure affecting the TDI.
    IntegrityFailure,
    /// The function was reset.
    Reset,
    /// The link keys the TDI relies on were revoked or went stale.
    KeysRevoked,
}

/// The `[offset, offset + length)` portion of `report` and the bytes after it. An offset past
/// the end, or a zero length, is an invalid request.
fn portion_of(report: &[u8], offset: u16, length: u16) -> Result<(&[u8], u16), TdispError> {
    let bad = |what| TdispError::InvalidRequest(crate::error::Malformed::BadLength { what });
    let start = usize::from(offset);
    if length == 0 || start >= report.len() {
        return Err(bad("report offset/length"));
    }
    let end = start.saturating_add(usize::from(length)).min(report.len());
    let portion = report.get(start..end).ok_or(bad("report offset"))?;
    let remainder = u16::try_from(report.len().saturating_sub(end))
        .map_err(|_| bad("report larger than 64 KiB"))?;
    Ok((portion, remainder))
}
