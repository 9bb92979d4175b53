//! The TSM side of TDISP, sans-IO: build a request payload, send it however you like, and
//! hand the response payload to the matching `parse_*` method, which checks it answers that
//! request (message type, interface ID) and turns TDISP_ERROR into
//! [`Error::Tdisp`]`(`[`TdispError::Peer`]`)`.
//!
//! ```text
//! let tdi = TdispRequester::new(id);
//! send(tdi.get_version());            tdi.parse_version(&rsp)?;
//! send(tdi.lock_interface(&params));  let nonce = tdi.parse_lock_interface(&rsp)?;
//! let mut f = tdi.report_fetcher(0x40);
//! while let Some(req) = f.next_request() { if let Some(r) = f.handle_response(&send(req))? { .. } }
//! send(tdi.start_interface(&nonce));  tdi.parse_start_interface(&rsp)?;
//! ```

use alloc::vec::Vec;

use super::msg::{
    code, DeviceCapabilities, InterfaceId, InterfaceReport, LockInterfaceParams, StartNonce,
    TdispRequest, TdispRequestBody, TdispResponse, TdispResponseBody,
};
use super::state::TdiState;
use super::{TdispError, TDISP_VERSION_1_0};
use crate::error::{Error, Malformed, PeerIncompatible, PeerMisbehaved};

/// Builds requests for, and validates responses from, one TDI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdispRequester {
    interface_id: InterfaceId,
}

impl TdispRequester {
    /// A requester for the TDI `interface_id`.
    pub fn new(interface_id: InterfaceId) -> Self {
        Self { interface_id }
    }

    /// The TDI addressed.
    pub fn interface_id(&self) -> InterfaceId {
        self.interface_id
    }

    fn request(&self, body: TdispRequestBody) -> Vec<u8> {
        TdispRequest::new(self.interface_id, body).encode()
    }

    /// Parses `rsp`, checks it is about our TDI, maps TDISP_ERROR to [`TdispError::Peer`],
    /// and checks the message type is `expected`.
    fn expect(
        &self,
        rsp: &[u8],
        expected: u8,
        name: &'static str,
    ) -> Result<TdispResponseBody, Error> {
        let r = TdispResponse::parse(rsp)?;
        if r.interface_id != self.interface_id {
            return Err(PeerMisbehaved::ResponseMismatch {
                what: "TDISP INTERFACE_ID",
            }
            .into());
        }
        if let TdispResponseBody::Error(e) = r.body {
            return Err(TdispError::Peer {
                code: e.code,
                data: e.data,
            }
            .into());
        }
        if r.body.code() != expected {
            return Err(PeerMisbehaved::UnexpectedMessage {
                expected: name,
                got: r.body.code(),
            }
            .into());
        }
        Ok(r.body)
    }

    /// GET_TDISP_VERSION.
    pub fn get_version(&self) -> Vec<u8> {
        self.request(TdispRequestBody::GetVersion)
    }

    /// Checks TDISP_VERSION lists 1.0 (the only version we speak).
    pub fn parse_version(&self, rsp: &[u8]) -> Result<(), Error> {
        match self.expect(rsp, code::TDISP_VERSION, "TDISP_VERSION")? {
            TdispResponseBody::Version(v) if v.contains(&TDISP_VERSION_1_0) => Ok(()),
            _ => Err(PeerIncompatible::MissingCapability { what: "TDISP 1.0" }.into()),
        }
    }

    /// GET_TDISP_CAPABILITIES (TSM_CAPS is reserved in TDISP 1.0 and sent as zero).
    pub fn get_capabilities(&self) -> Vec<u8> {
        self.request(TdispRequestBody::GetCapabilities)
    }

    /// The device's TDISP_CAPABILITIES.
    pub fn parse_capabilities(&self, rsp: &[u8]) -> Result<DeviceCapabilities, Error> {
        match self.expect(rsp, code::TDISP_CAPABILITIES, "TDISP_CAPABILITIES")? {
            TdispResponseBody::Capabilities(c) => Ok(c),
            _ => Err(unreachable_body()),
        }
    }

    /// LOCK_INTERFACE_REQUEST.
    pub fn lock_interface(&self, params: &LockInterfaceParams) -> Vec<u8> {
        self.request(TdispRequestBody::LockInterface(*params))
    }

    /// The START nonce from LOCK_INTERFACE_RESPONSE (keep it for [`Self::start_interface`]).
    /// An all-zero nonce is refused: no device drawing from a real RNG sends one.
    pub fn parse_lock_interface(&self, rsp: &[u8]) -> Result<StartNonce, Error> {
        match self.expect(
            rsp,
            code::LOCK_INTERFACE_RESPONSE,
            "LOCK_INTERFACE_RESPONSE",
        )? {
            TdispResponseBody::LockInterface(n) if n.as_bytes().iter().any(|b| *b != 0) => Ok(n),
            TdispResponseBody::LockInterface(_) => Err(PeerMisbehaved::NonceMismatch {
                what: "LOCK_INTERFACE_RESPONSE (all-zero nonce)",
            }
            .into()),
            _ => Err(unreachable_body()),
        }
    }

    /// GET_DEVICE_INTERFACE_STATE.
    pub fn get_state(&self) -> Vec<u8> {
        self.request(TdispRequestBody::GetDeviceInterfaceState)
    }

    /// The TDI state from DEVICE_INTERFACE_STATE.
    pub fn parse_state(&self, rsp: &[u8]) -> Result<TdiState, Error> {
        match self.expect(rsp, code::DEVICE_INTERFACE_STATE, "DEVICE_INTERFACE_STATE")? {
            TdispResponseBody::DeviceInterfaceState(s) => Ok(s),
            _ => Err(unreachable_body()),
        }
    }

    /// START_INTERFACE_REQUEST carrying `nonce`.
    pub fn start_interface(&self, nonce: &StartNonce) -> Vec<u8> {
        self.request(TdispRequestBody::StartInterface(nonce.clone()))
    }

    /// Checks START_INTERFACE_RESPONSE.
    pub fn parse_start_interface(&self, rsp: &[u8]) -> Result<(), Error> {
        self.expect(
            rsp,
            code::START_INTERFACE_RESPONSE,
            "START_INTERFACE_RESPONSE",
        )
        .map(|_| ())
    }

    /// STOP_INTERFACE_REQUEST.
    pub fn stop_interface(&self) -> Vec<u8> {
        self.request(TdispRequestBody::StopInterface)
    }

    /// Checks STOP_INTERFACE_RESPONSE.
    pub fn parse_stop_interface(&self, rsp: &[u8]) -> Result<(), Error> {
        self.expect(
            rsp,
            code::STOP_INTERFACE_RESPONSE,
            "STOP_INTERFACE_RESPONSE",
        )
        .map(|_| ())
    }

    /// A fetch loop for the device interface report, asking for at most `max_portion` bytes
    /// per request (0 is treated as 1).
    pub fn report_fetcher(&self, max_portion: u16) -> ReportFetcher {
        ReportFetcher {
            requester: *self,
            max_portion: max_portion.max(1),
            buf: Vec::new(),
            total: None,
            outstanding: None,
            done: false,
        }
    }
}

fn unreachable_body() -> Error {
    // `expect` already matched the message type, so the body variant agrees; this only exists
    // so no path panics.
    Error::ApiMisuse("TDISP response body does not match its type")
}

/// The assembled device interface report: the bytes exactly as received (to sign or hash)
/// and their parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedReport {
    /// The report bytes, concatenated from the portions.
    pub bytes: Vec<u8>,
    /// The parsed report.
    pub report: InterfaceReport,
}

/// Fetches the device interface report portion by portion and checks the portions agree:
/// the first response fixes the total (`portion + remainder`), every later one must satisfy
/// `offset + portion + remainder == total`, each portion is non-empty and no longer than
/// asked for.
#[derive(Debug, Clone)]
pub struct ReportFetcher {
    requester: TdispRequester,
    max_portion: u16,
    buf: Vec<u8>,
    total: Option<usize>,
    outstanding: Option<(u16, u16)>,
    done: bool,
}

impl ReportFetcher {
    /// The next GET_DEVICE_INTERFACE_REPORT to send, or `None` when the report is complete.
    /// Calling it twice without a response in between returns the same request.
    pub fn next_request(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let offset = u16::try_from(self.buf.len()).ok()?;
        let length = match self.total {
            Some(t) => {
                let left = t.saturating_sub(self.buf.len());
                u16::try_from(left)
                    .unwrap_or(u16::MAX)
                    .min(self.max_portion)
            }
            None => self.max_portion,
        };
        self.outstanding = Some((offset, length));
        Some(
            self.requester
                .request(TdispRequestBody::GetDeviceInterfaceReport { offset, length }),
        )
    }

    /// Handles the response to the last request: `Ok(None)` means send the next request,
    /// `Ok(Some(_))` is the complete, parsed report.
    pub fn handle_response(&mut self, rsp: &[u8]) -> Result<Option<FetchedReport>, Error> {
        let (offset, length) = self.outstanding.take().ok_or(Error::ApiMisuse(
            "report response handled without an outstanding request",
        ))?;
        let body = self.requester.expect(
            rsp,
            code::DEVICE_INTERFACE_REPORT,
            "DEVICE_INTERFACE_REPORT",
        )?;
        let TdispResponseBody::DeviceInterfaceReport {
            portion,
            remainder_length,
        } = body
        else {
            return Err(unreachable_body());
        };
        let mismatch = |what| -> Error { PeerMisbehaved::ResponseMismatch { what }.into() };
        if portion.len() > usize::from(length) {
            return Err(mismatch("PORTION_LENGTH longer than requested"));
        }
        if portion.is_empty() && remainder_length != 0 {
            return Err(mismatch("empty PORTION_LENGTH with bytes remaining"));
        }
        let claimed = usize::from(offset)
            .checked_add(portion.len())
            .and_then(|n| n.checked_add(usize::from(remainder_length)))
            .ok_or(Malformed::LengthOverflow {
                what: "report length",
            })?;
        match self.total {
            None => self.total = Some(claimed),
            Some(t) if t != claimed => {
                return Err(mismatch(
                    "REMAINDER_LENGTH inconsistent with earlier portions",
                ))
            }
            Some(_) => {}
        }
        self.buf.extend_from_slice(&portion);
        if remainder_length != 0 {
            if u16::try_from(self.buf.len()).is_err() {
                return Err(PeerIncompatible::TooLarge {
                    what: "device interface report beyond 64 KiB offsets",
                }
                .into());
            }
            return Ok(None);
        }
        self.done = true;
        let report = InterfaceReport::parse(&self.buf)?;
        Ok(Some(FetchedReport {
            bytes: core::mem::take(&mut self.buf),
            report,
        }))
    }
}
