//! Our TDISP responder driven by our requester: the walk, chunked report fetch, refusals with
//! the right TDISP_ERROR code for every state and request, lock-breaking device events, and
//! requests outside a secured session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_spdm::tdisp::msg::{
    DeviceCapabilities, InterfaceId, InterfaceInfo, InterfaceReport, LockFlags,
    LockInterfaceParams, MmioRange, MmioRangeAttributes, StartNonce, TdispErrorCode, TdispRequest,
    TdispRequestBody, TdispResponse, TdispResponseBody,
};
use ualink_spdm::tdisp::requester::TdispRequester;
use ualink_spdm::tdisp::responder::{DeviceEvent, TdispDevice, TdispResponder};
use ualink_spdm::tdisp::state::{EntropyUnavailable, NonceSource};
use ualink_spdm::tdisp::{TdiState, TdispError};
use ualink_spdm::Error;

struct Dev {
    keys_live: bool,
    report: InterfaceReport,
    transitions: Vec<(TdiState, TdiState)>,
}

fn id() -> InterfaceId {
    InterfaceId::new(0x0100_0010).unwrap()
}

fn report(tag: u8) -> InterfaceReport {
    InterfaceReport {
        interface_info: InterfaceInfo::from_bits(InterfaceInfo::DMA_WITHOUT_PASID).unwrap(),
        msix_message_control: 0,
        lnr_control: 0,
        tph_control: 0,
        mmio_ranges: vec![
            MmioRange {
                first_page: 0x1000,
                number_of_pages: 4,
                attributes: MmioRangeAttributes::from_bits(0).unwrap(),
                range_id: 0,
            },
            MmioRange {
                first_page: 0x8000,
                number_of_pages: 1,
                attributes: MmioRangeAttributes::from_bits(MmioRangeAttributes::MSIX_TABLE)
                    .unwrap(),
                range_id: 2,
            },
        ],
        device_specific_info: vec![tag; 21],
    }
}

impl TdispDevice for Dev {
    fn interfaces(&self) -> Vec<InterfaceId> {
        vec![id()]
    }
    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities {
            lock_flags_supported: LockFlags::from_bits(0x7).unwrap(),
            dev_addr_width: 52,
            ..Default::default()
        }
    }
    fn keys_live(&self, _id: InterfaceId) -> bool {
        self.keys_live
    }
    fn interface_report(
        &self,
        _id: InterfaceId,
        _lock: &LockInterfaceParams,
    ) -> Result<Vec<u8>, TdispError> {
        Ok(self.report.encode().unwrap())
    }
    fn on_transition(&mut self, _id: InterfaceId, from: TdiState, to: TdiState) {
        self.transitions.push((from, to));
    }
}

struct Counter(u8);

impl NonceSource for Counter {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        self.0 = self.0.wrapping_add(1);
        dest.fill(self.0);
        Ok(())
    }
}

fn responder(keys_live: bool) -> TdispResponder<Dev, Counter> {
    TdispResponder::new(
        Dev {
            keys_live,
            report: report(0xA5),
            transitions: vec![],
        },
        Counter(0),
    )
}

fn params() -> LockInterfaceParams {
    LockInterfaceParams {
        flags: LockFlags::from_bits(LockFlags::NO_FW_UPDATE).unwrap(),
        ..Default::default()
    }
}

fn peer_code(e: Error) -> TdispErrorCode {
    match e {
        Error::Tdisp(TdispError::Peer { code, .. }) => code,
        other => panic!("expected a TDISP_ERROR, got {other:?}"),
    }
}

#[test]
fn walk_with_chunked_report_fetch() {
    let mut dev = responder(true);
    let tsm = TdispRequester::new(id());
    tsm.parse_version(&dev.respond(&tsm.get_version(), true))
        .unwrap();
    let caps = tsm
        .parse_capabilities(&dev.respond(&tsm.get_capabilities(), true))
        .unwrap();
    assert_eq!(caps.req_msgs_supported[0], 0xFE);
    let nonce = tsm
        .parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
        .unwrap();
    assert_eq!(
        tsm.parse_state(&dev.respond(&tsm.get_state(), true))
            .unwrap(),
        TdiState::ConfigLocked
    );
    // Fetch in 7-byte portions: 13 round trips for 84 bytes.
    let mut f = tsm.report_fetcher(7);
    let mut rounds = 0;
    let fetched = loop {
        let req = f.next_request().unwrap();
        rounds += 1;
        if let Some(r) = f.handle_response(&dev.respond(&req, true)).unwrap() {
            break r;
        }
    };
    assert_eq!(fetched.report, report(0xA5));
    assert_eq!(rounds, fetched.bytes.len().div_ceil(7));
    tsm.parse_start_interface(&dev.respond(&tsm.start_interface(&nonce), true))
        .unwrap();
    assert_eq!(dev.state(id()), Some(TdiState::Run));
    tsm.parse_stop_interface(&dev.respond(&tsm.stop_interface(), true))
        .unwrap();
    assert_eq!(
        dev.device().transitions,
        vec![
            (TdiState::ConfigUnlocked, TdiState::ConfigLocked),
            (TdiState::ConfigLocked, TdiState::Run),
            (TdiState::Run, TdiState::ConfigUnlocked),
        ]
    );
}

#[test]
fn lock_without_live_keys_is_refused_with_invalid_request() {
    let mut dev = responder(false);
    let tsm = TdispRequester::new(id());
    let e = tsm
        .parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
        .unwrap_err();
    // TDISP Table 11-12: keys not configured for the default stream -> INVALID_REQUEST.
    assert_eq!(peer_code(e), TdispErrorCode::InvalidRequest);
    assert_eq!(dev.state(id()), Some(TdiState::ConfigUnlocked));
    // Once the keys are live, LOCK succeeds.
    dev.device_mut().keys_live = true;
    tsm.parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
        .unwrap();
}

#[test]
fn start_with_wrong_or_reused_nonce_is_invalid_nonce() {
    let mut dev = responder(true);
    let tsm = TdispRequester::new(id());
    let n1 = tsm
        .parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
        .unwrap();
    let wrong = StartNonce::from_bytes([0x55; 32]);
    let e = tsm
        .parse_start_interface(&dev.respond(&tsm.start_interface(&wrong), true))
        .unwrap_err();
    assert_eq!(peer_code(e), TdispErrorCode::InvalidNonce);
    assert_eq!(dev.state(id()), Some(TdiState::ConfigLocked));
    tsm.parse_stop_interface(&dev.respond(&tsm.stop_interface(), true))
        .unwrap();
    assert_eq!(dev.has_live_nonce(id()), Some(false));
    tsm.parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
        .unwrap();
    let e = tsm
        .parse_start_interface(&dev.respond(&tsm.start_interface(&n1), true))
        .unwrap_err();
    assert_eq!(
        peer_code(e),
        TdispErrorCode::InvalidNonce,
        "nonce of an earlier LOCK"
    );
}

#[test]
fn config_change_while_locked_or_running_moves_to_error() {
    for run in [false, true] {
        let mut dev = responder(true);
        let tsm = TdispRequester::new(id());
        let n = tsm
            .parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
            .unwrap();
        if run {
            tsm.parse_start_interface(&dev.respond(&tsm.start_interface(&n), true))
                .unwrap();
        }
        assert_eq!(
            dev.notify(id(), DeviceEvent::ConfigWritten),
            Ok(TdiState::Error)
        );
        assert_eq!(dev.has_live_nonce(id()), Some(false));
        assert_eq!(
            tsm.parse_state(&dev.respond(&tsm.get_state(), true))
                .unwrap(),
            TdiState::Error
        );
        // No report, no START from ERROR; STOP recovers.
        let mut f = tsm.report_fetcher(64);
        let req = f.next_request().unwrap();
        let e = f.handle_response(&dev.respond(&req, true)).unwrap_err();
        assert_eq!(peer_code(e), TdispErrorCode::InvalidInterfaceState);
        let e = tsm
            .parse_start_interface(&dev.respond(&tsm.start_interface(&n), true))
            .unwrap_err();
        assert_eq!(peer_code(e), TdispErrorCode::InvalidInterfaceState);
        tsm.parse_stop_interface(&dev.respond(&tsm.stop_interface(), true))
            .unwrap();
        assert_eq!(dev.state(id()), Some(TdiState::ConfigUnlocked));
    }
}

#[test]
fn report_is_snapshotted_per_lock() {
    let mut dev = responder(true);
    let tsm = TdispRequester::new(id());
    let fetch = |dev: &mut TdispResponder<Dev, Counter>| {
        let mut f = tsm.report_fetcher(0x40);
        loop {
            let req = f.next_request().unwrap();
            if let Some(r) = f.handle_response(&dev.respond(&req, true)).unwrap() {
                break r.report;
            }
        }
    };
    tsm.parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
        .unwrap();
    assert_eq!(fetch(&mut dev), report(0xA5));
    tsm.parse_stop_interface(&dev.respond(&tsm.stop_interface(), true))
        .unwrap();
    dev.device_mut().report = report(0x5A);
    tsm.parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
        .unwrap();
    assert_eq!(fetch(&mut dev), report(0x5A));
}

fn error_code(rsp: &[u8]) -> Option<TdispErrorCode> {
    match TdispResponse::parse(rsp).unwrap().body {
        TdispResponseBody::Error(e) => Some(e.code),
        _ => None,
    }
}

/// Every state x every request through the responder: accepted ones get their response type,
/// refused ones INVALID_INTERFACE_STATE (or INVALID_NONCE for a wrong START nonce).
#[test]
fn every_state_times_every_request_gives_the_right_answer() {
    use TdiState::*;
    for state in TdiState::ALL {
        for req in 0..8u8 {
            let mut dev = responder(true);
            let tsm = TdispRequester::new(id());
            let mut nonce = None;
            if state != ConfigUnlocked {
                let n = tsm
                    .parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
                    .unwrap();
                if state == Run {
                    tsm.parse_start_interface(&dev.respond(&tsm.start_interface(&n), true))
                        .unwrap();
                }
                if state == Error {
                    dev.notify(id(), DeviceEvent::IntegrityFailure).unwrap();
                }
                nonce = Some(n);
            }
            assert_eq!(dev.state(id()), Some(state));
            let live = nonce.unwrap_or_else(|| StartNonce::from_bytes([9; 32]));
            let body = match req {
                0 => TdispRequestBody::GetVersion,
                1 => TdispRequestBody::GetCapabilities,
                2 => TdispRequestBody::LockInterface(params()),
                3 => TdispRequestBody::GetDeviceInterfaceReport {
                    offset: 0,
                    length: 16,
                },
                4 => TdispRequestBody::GetDeviceInterfaceState,
                5 => TdispRequestBody::StartInterface(live.clone()),
                6 => TdispRequestBody::StartInterface(StartNonce::from_bytes([0xEE; 32])),
                _ => TdispRequestBody::StopInterface,
            };
            let rsp = dev.respond(&TdispRequest::new(id(), body).encode(), true);
            let want_err = match (state, req) {
                (_, 0 | 1 | 4) => None,
                (ConfigUnlocked, 2) => None,
                (ConfigLocked | Run, 3) => None,
                (ConfigLocked, 5) => None,
                (ConfigLocked, 6) => Some(TdispErrorCode::InvalidNonce),
                (_, 7) => None,
                _ => Some(TdispErrorCode::InvalidInterfaceState),
            };
            assert_eq!(error_code(&rsp), want_err, "{state:?} x request #{req}");
        }
    }
}

#[test]
fn outside_a_session_only_discovery_and_state_are_answered() {
    let mut dev = responder(true);
    let tsm = TdispRequester::new(id());
    tsm.parse_version(&dev.respond(&tsm.get_version(), false))
        .unwrap();
    tsm.parse_capabilities(&dev.respond(&tsm.get_capabilities(), false))
        .unwrap();
    tsm.parse_state(&dev.respond(&tsm.get_state(), false))
        .unwrap();
    let e = tsm
        .parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), false))
        .unwrap_err();
    assert_eq!(peer_code(e), TdispErrorCode::InvalidRequest);
    assert_eq!(dev.state(id()), Some(TdiState::ConfigUnlocked));
    let e = tsm
        .parse_stop_interface(&dev.respond(&tsm.stop_interface(), false))
        .unwrap_err();
    assert_eq!(peer_code(e), TdispErrorCode::InvalidRequest);
}

#[test]
fn bad_requests_get_their_codes() {
    let mut dev = responder(true);
    let good = TdispRequester::new(id()).get_state();
    // Unknown interface.
    let other = TdispRequester::new(InterfaceId::new(0x42).unwrap());
    let rsp = dev.respond(&other.get_state(), true);
    assert_eq!(error_code(&rsp), Some(TdispErrorCode::InvalidInterface));
    assert_eq!(
        TdispResponse::parse(&rsp)
            .unwrap()
            .interface_id
            .function_id(),
        0x42
    );
    // Version 1.1.
    let mut v11 = good.clone();
    v11[1] = 0x11;
    assert_eq!(
        error_code(&dev.respond(&v11, true)),
        Some(TdispErrorCode::VersionMismatch)
    );
    // BIND_P2P_STREAM (0x88) and an unknown code.
    for c in [0x88u8, 0x8C, 0xC0, 0x01] {
        let mut m = good.clone();
        m[2] = c;
        assert_eq!(
            error_code(&dev.respond(&m, true)),
            Some(TdispErrorCode::UnsupportedRequest),
            "{c:#x}"
        );
    }
    // Trailing byte, truncation, reserved bits.
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        error_code(&dev.respond(&long, true)),
        Some(TdispErrorCode::InvalidRequest)
    );
    assert_eq!(
        error_code(&dev.respond(&good[..good.len() - 1], true)),
        Some(TdispErrorCode::InvalidRequest)
    );
    let mut rsvd = good.clone();
    rsvd[10] = 1;
    assert_eq!(
        error_code(&dev.respond(&rsvd, true)),
        Some(TdispErrorCode::InvalidRequest)
    );
    assert_eq!(
        error_code(&dev.respond(&[], true)),
        Some(TdispErrorCode::InvalidRequest)
    );
    // LOCK with a flag the device does not support.
    let lock = TdispRequester::new(id()).lock_interface(&LockInterfaceParams {
        flags: LockFlags::from_bits(LockFlags::BIND_P2P).unwrap(),
        ..Default::default()
    });
    assert_eq!(
        error_code(&dev.respond(&lock, true)),
        Some(TdispErrorCode::InvalidDeviceConfiguration)
    );
    // A report offset past the end.
    dev.respond(&TdispRequester::new(id()).lock_interface(&params()), true);
    let req = TdispRequest::new(
        id(),
        TdispRequestBody::GetDeviceInterfaceReport {
            offset: 1000,
            length: 8,
        },
    );
    assert_eq!(
        error_code(&dev.respond(&req.encode(), true)),
        Some(TdispErrorCode::InvalidRequest)
    );
}

#[test]
fn report_fetcher_rejects_inconsistent_portions() {
    let tsm = TdispRequester::new(id());
    let portion = |p: Vec<u8>, rem: u16| {
        TdispResponse::new(
            id(),
            TdispResponseBody::DeviceInterfaceReport {
                portion: p,
                remainder_length: rem,
            },
        )
        .encode()
        .unwrap()
    };
    // Remainder grows between portions.
    let mut f = tsm.report_fetcher(4);
    f.next_request().unwrap();
    assert!(f
        .handle_response(&portion(vec![0; 4], 10))
        .unwrap()
        .is_none());
    f.next_request().unwrap();
    assert!(f.handle_response(&portion(vec![0; 4], 20)).is_err());
    // Longer than asked.
    let mut f = tsm.report_fetcher(4);
    f.next_request().unwrap();
    assert!(f.handle_response(&portion(vec![0; 5], 0)).is_err());
    // No progress.
    let mut f = tsm.report_fetcher(4);
    f.next_request().unwrap();
    assert!(f.handle_response(&portion(vec![], 4)).is_err());
    // A response without a request.
    let mut f = tsm.report_fetcher(4);
    assert!(f.handle_response(&portion(vec![0; 4], 0)).is_err());
}

struct NoEntropy;

impl NonceSource for NoEntropy {
    fn fill(&mut self, _dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        Err(EntropyUnavailable)
    }
}

#[test]
fn lock_without_entropy_is_insufficient_entropy() {
    let mut dev = TdispResponder::new(
        Dev {
            keys_live: true,
            report: report(0),
            transitions: vec![],
        },
        NoEntropy,
    );
    let tsm = TdispRequester::new(id());
    let e = tsm
        .parse_lock_interface(&dev.respond(&tsm.lock_interface(&params()), true))
        .unwrap_err();
    assert_eq!(peer_code(e), TdispErrorCode::InsufficientEntropy);
    assert_eq!(dev.state(id()), Some(TdiState::ConfigUnlocked));
    assert!(dev.device().transitions.is_empty());
}

#[test]
fn every_refusal_maps_to_its_wire_code() {
    use ualink_spdm::Malformed;
    let m = Malformed::Truncated { what: "x" };
    let table = [
        (TdispError::InvalidRequest(m), 0x01),
        (TdispError::SessionRequired, 0x01),
        (TdispError::Busy, 0x03),
        (
            TdispError::InvalidInterfaceState {
                state: TdiState::Run,
                request: 0x83,
            },
            0x04,
        ),
        (TdispError::Unspecified, 0x05),
        (TdispError::UnsupportedRequest(0x88), 0x07),
        (TdispError::VersionMismatch(0x11), 0x41),
        (TdispError::InvalidInterface(1), 0x101),
        (TdispError::InvalidNonce, 0x102),
        (TdispError::InsufficientEntropy, 0x103),
        (TdispError::InvalidDeviceConfiguration("x"), 0x104),
        (TdispError::KeysNotLive, 0x01),
    ];
    for (e, code) in table {
        assert_eq!(e.code().wire(), code, "{e}");
        assert_eq!(TdispErrorCode::from_wire(code).unwrap(), e.code());
    }
    assert_eq!(TdispError::UnsupportedRequest(0x88).error_data(), 0x88);
    assert_eq!(TdispError::InvalidNonce.error_data(), 0);
    assert!(TdispErrorCode::from_wire(0x02).is_err());
    assert!(TdispErrorCode::from_wire(0x105).is_err());
}
