//! TDISP responder state machine: sequences of requests (arbitrary bytes, or well-formed ones
//! built by the harness, including START with the nonce LOCK just returned) and device events
//! against a two-TDI device.
//!
//! Input: ops until the input ends (`chunk` = u16 LE length ‖ bytes):
//!   0 s chunk   raw request payload (s: bit0 in session, bit1 session 1 instead of 0)
//!   1 t f       LOCK on TDI t with flags f (in session 0)
//!   2 t         START on TDI t with the last nonce LOCK returned for it (bit7 of t: flip it)
//!   3 t o l     GET_DEVICE_INTERFACE_REPORT (offset o, length l as u16 LE each)
//!   4 t         STOP;  5 t: GET_STATE;  6: GET_VERSION/GET_CAPABILITIES
//!   7 t e       device event e on TDI t;  8 k: keys live bits (bit0 TDI 0, bit1 TDI 1)
//!
//! Oracles: every answer parses as a TDISP response for the TDI asked about (or TDI 0); a
//! refusal never changes the state; only START moves a TDI to RUN, and only from
//! CONFIG_LOCKED with the live nonce; a TDI in RUN or CONFIG_LOCKED was locked with live keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::Cursor;
use ualink_spdm::tdisp::msg::{
    DeviceCapabilities, InterfaceId, InterfaceInfo, InterfaceReport, LockFlags,
    LockInterfaceParams, MmioRange, MmioRangeAttributes, StartNonce, TdispRequest,
    TdispRequestBody, TdispResponse, TdispResponseBody,
};
use ualink_spdm::tdisp::responder::{DeviceEvent, TdispDevice, TdispResponder};
use ualink_spdm::tdisp::state::{EntropyUnavailable, NonceSource};
use ualink_spdm::tdisp::{TdiState, TdispError};

struct Dev {
    ids: [InterfaceId; 2],
    keys_live: [bool; 2],
}

impl Dev {
    fn index(&self, id: InterfaceId) -> usize {
        usize::from(id != self.ids[0])
    }
}

impl TdispDevice for Dev {
    fn interfaces(&self) -> Vec<InterfaceId> {
        self.ids.to_vec()
    }
    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities {
            lock_flags_supported: LockFlags::from_bits(0x7).unwrap_or_default(),
            dev_addr_width: 52,
            ..Default::default()
        }
    }
    fn keys_live(&self, id: InterfaceId) -> bool {
        self.keys_live[self.index(id)]
    }
    fn keys_live_in_session(&self, id: InterfaceId, session_id: u32) -> bool {
        self.keys_live(id) && session_id == 0
    }
    fn interface_report(
        &self,
        id: InterfaceId,
        lock: &LockInterfaceParams,
    ) -> Result<Vec<u8>, TdispError> {
        let r = InterfaceReport {
            interface_info: InterfaceInfo::from_bits(InterfaceInfo::DMA_WITHOUT_PASID)
                .unwrap_or_default(),
            msix_message_control: 0,
            lnr_control: 0,
            tph_control: 0,
            mmio_ranges: vec![MmioRange {
                first_page: 0x1000 + lock.mmio_reporting_offset % 0x1000,
                number_of_pages: 4,
                attributes: MmioRangeAttributes::from_bits(0).unwrap_or_default(),
                range_id: 0,
            }],
            device_specific_info: vec![0xA5; 40 + 300 * self.index(id)],
        };
        r.encode().map_err(TdispError::from)
    }
}

/// Deterministic nonces (a counter), so runs reproduce.
struct Counter(u8);

impl NonceSource for Counter {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        self.0 = self.0.wrapping_add(1);
        dest.fill(self.0);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let (Ok(a), Ok(b)) = (InterfaceId::new(0x0100_0010), InterfaceId::new(0x0000_0200)) else {
        panic!("fuzz setup: interface IDs")
    };
    let ids = [a, b];
    let mut rsp = TdispResponder::new(
        Dev {
            ids,
            keys_live: [true, true],
        },
        Counter(0),
    );
    let mut nonces: [Option<StartNonce>; 2] = [None, None];
    let mut c = Cursor::new(data);
    for _ in 0..48 {
        let Some(op) = c.u8() else { break };
        let t = usize::from(c.u8().unwrap_or(0));
        let tdi = t & 1;
        let id = ids[tdi];
        let build = |body| TdispRequest::new(id, body).encode();
        let (req, session) = match op % 9 {
            0 => {
                let s = match t & 3 {
                    0 | 2 => None,
                    1 => Some(0),
                    _ => Some(1),
                };
                (c.chunk().unwrap_or_default().to_vec(), s)
            }
            1 => {
                let flags =
                    LockFlags::from_bits(u16::from(c.u8().unwrap_or(0)) & 0x1F).unwrap_or_default();
                let p = LockInterfaceParams {
                    flags,
                    default_stream_id: 0,
                    mmio_reporting_offset: 0,
                    bind_p2p_address_mask: 0,
                };
                (build(TdispRequestBody::LockInterface(p)), Some(0))
            }
            2 => {
                let mut n = nonces[tdi].as_ref().map_or([0; 32], |n| *n.as_bytes());
                if t & 0x80 != 0 {
                    n[0] ^= 1;
                }
                (
                    build(TdispRequestBody::StartInterface(StartNonce::from_bytes(n))),
                    Some(0),
                )
            }
            3 => {
                let offset = c.u16().unwrap_or(0);
                let length = c.u16().unwrap_or(0);
                (
                    build(TdispRequestBody::GetDeviceInterfaceReport { offset, length }),
                    Some(0),
                )
            }
            4 => (build(TdispRequestBody::StopInterface), Some(0)),
            5 => (build(TdispRequestBody::GetDeviceInterfaceState), None),
            6 => (
                build(if t & 2 == 0 {
                    TdispRequestBody::GetVersion
                } else {
                    TdispRequestBody::GetCapabilities
                }),
                None,
            ),
            7 => {
                let e = match c.u8().unwrap_or(0) % 4 {
                    0 => DeviceEvent::ConfigWritten,
                    1 => DeviceEvent::IntegrityFailure,
                    2 => DeviceEvent::Reset,
                    _ => DeviceEvent::KeysRevoked,
                };
                let _ = rsp.notify(id, e);
                continue;
            }
            _ => {
                rsp.device_mut().keys_live = [t & 1 != 0, t & 2 != 0];
                continue;
            }
        };
        let before = ids.map(|i| rsp.state(i));
        let out = rsp.respond_in_session(&req, session);
        let after = ids.map(|i| rsp.state(i));
        let parsed = TdispResponse::parse(&out)
            .unwrap_or_else(|e| panic!("responder answer does not parse: {e:?}\n{out:02x?}"));
        let target = TdispRequest::parse(&req).ok().map(|r| r.interface_id);
        match &parsed.body {
            TdispResponseBody::Error(_) => {
                assert!(
                    before == after,
                    "a refused request changed state: {before:?} -> {after:?}"
                );
            }
            TdispResponseBody::LockInterface(n) => {
                assert!(
                    target == Some(parsed.interface_id),
                    "LOCK answer for another TDI"
                );
                let i = usize::from(parsed.interface_id != ids[0]);
                assert!(
                    session == Some(0) && rsp.device().keys_live[i],
                    "LOCK without live keys in its session"
                );
                assert!(
                    after[i] == Some(TdiState::ConfigLocked),
                    "LOCK did not lock"
                );
                nonces[i] = Some(n.clone());
            }
            TdispResponseBody::StartInterface => {
                let i = usize::from(parsed.interface_id != ids[0]);
                assert!(
                    before[i] == Some(TdiState::ConfigLocked),
                    "START from {:?}",
                    before[i]
                );
                assert!(after[i] == Some(TdiState::Run), "START did not run");
                let sent = TdispRequest::parse(&req).ok().map(|r| r.body);
                let live = nonces[i].take().map(TdispRequestBody::StartInterface);
                assert!(
                    sent.is_some() && sent == live,
                    "START accepted a nonce other than the live one"
                );
            }
            _ => {}
        }
        for (i, (b, a)) in before.iter().zip(after.iter()).enumerate() {
            if a == &Some(TdiState::Run) && b != &Some(TdiState::Run) {
                assert!(
                    matches!(parsed.body, TdispResponseBody::StartInterface),
                    "TDI {i} reached RUN without START"
                );
            }
        }
    }
});
