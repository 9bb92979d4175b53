//! Known answers for TDISP 1.0 from the spdm-emu capture `tsm_like_v12_p256_pcidoe` (DMTF
//! reference TSM-like requester against the reference responder, in session): every TDISP
//! message parses and re-encodes to the captured bytes, the captured responses satisfy our
//! requester, and our responder, replaying the captured requests with the captured nonce,
//! answers with exactly the captured responses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ualink_spdm::tdisp::msg::{
    DeviceCapabilities, InterfaceId, InterfaceInfo, InterfaceReport, LockFlags,
    LockInterfaceParams, MmioRangeAttributes, StartNonce, TdispRequest, TdispRequestBody,
    TdispResponse, TdispResponseBody,
};
use ualink_spdm::tdisp::requester::TdispRequester;
use ualink_spdm::tdisp::responder::{TdispDevice, TdispResponder};
use ualink_spdm::tdisp::state::{EntropyUnavailable, NonceSource};
use ualink_spdm::tdisp::{TdiState, TdispError};

const FILE: &str = "tsm_like_v12_p256_pcidoe.vdm_plaintext.txt";
/// SPDM header 4, StandardID 2, VendorIDLen 1, VendorID 2, PayloadLen 2.
const PREFIX: usize = 11;

struct Rec {
    req: bool,
    decode: String,
    payload: Vec<u8>,
}

fn tdisp_records() -> Vec<Rec> {
    let recs: Vec<Rec> = common::transcript(FILE)
        .into_iter()
        .filter(|r| r.decode.contains("TDISP v1.0"))
        .map(|r| {
            // The wrapper: PCI-SIG vendor, payload length as declared.
            assert_eq!(
                &r.bytes[4..9],
                &[0x03, 0x00, 0x02, 0x01, 0x00],
                "{}",
                r.decode
            );
            let len = u16::from_le_bytes([r.bytes[9], r.bytes[10]]) as usize;
            assert_eq!(r.bytes.len(), PREFIX + len, "{}", r.decode);
            Rec {
                req: r.decode.starts_with("REQ"),
                decode: r.decode.clone(),
                payload: r.bytes[PREFIX..].to_vec(),
            }
        })
        .collect();
    assert_eq!(recs.len(), 44, "two TDISP walks of 22 messages each");
    recs
}

fn iface() -> InterfaceId {
    InterfaceId::new(0xBEEF).unwrap()
}

#[test]
fn every_captured_tdisp_message_parses_and_reencodes_identically() {
    for r in tdisp_records() {
        if r.req {
            let m = TdispRequest::parse(&r.payload).unwrap_or_else(|e| panic!("{}: {e}", r.decode));
            assert_eq!(m.interface_id, iface());
            assert_eq!(m.encode(), r.payload, "{}", r.decode);
        } else {
            let m =
                TdispResponse::parse(&r.payload).unwrap_or_else(|e| panic!("{}: {e}", r.decode));
            assert_eq!(m.interface_id, iface());
            assert_eq!(m.encode().unwrap(), r.payload, "{}", r.decode);
        }
    }
}

#[test]
fn captured_fields_decode_to_the_expected_values() {
    let recs = tdisp_records();
    let rsp = |i: usize| TdispResponse::parse(&recs[i].payload).unwrap().body;
    let req = |i: usize| TdispRequest::parse(&recs[i].payload).unwrap().body;
    assert_eq!(rsp(1), TdispResponseBody::Version(vec![0x10]));
    let TdispResponseBody::Capabilities(c) = rsp(3) else {
        panic!()
    };
    assert_eq!(c.dsm_caps, 0);
    assert_eq!(c.req_msgs_supported[0], 0xFE, "0x81..=0x87 supported");
    assert_eq!(c.lock_flags_supported.bits(), 0x7);
    assert_eq!(
        rsp(5),
        TdispResponseBody::DeviceInterfaceState(TdiState::ConfigUnlocked)
    );
    let TdispRequestBody::LockInterface(p) = req(6) else {
        panic!()
    };
    assert_eq!(
        p.flags.bits(),
        LockFlags::NO_FW_UPDATE | LockFlags::SYSTEM_CACHE_LINE_SIZE | LockFlags::LOCK_MSIX
    );
    assert_eq!(p.default_stream_id, 0);
    // The nonce of LOCK is the nonce of START.
    let TdispResponseBody::LockInterface(n) = rsp(7) else {
        panic!()
    };
    assert_eq!(req(14), TdispRequestBody::StartInterface(n.clone()));
    assert_eq!(format!("{n:?}"), "StartNonce(<redacted>)");
    assert_eq!(
        rsp(9),
        TdispResponseBody::DeviceInterfaceState(TdiState::ConfigLocked)
    );
    assert_eq!(
        rsp(17),
        TdispResponseBody::DeviceInterfaceState(TdiState::Run)
    );
    assert_eq!(
        rsp(21),
        TdispResponseBody::DeviceInterfaceState(TdiState::ConfigUnlocked)
    );
    // The two walks used different nonces.
    let TdispResponseBody::LockInterface(n2) = rsp(29) else {
        panic!()
    };
    assert_ne!(n, n2);
}

/// The report assembled from the two captured portions.
fn captured_report_bytes() -> Vec<u8> {
    let recs = tdisp_records();
    let mut out = Vec::new();
    for i in [11, 13] {
        let TdispResponseBody::DeviceInterfaceReport { portion, .. } =
            TdispResponse::parse(&recs[i].payload).unwrap().body
        else {
            panic!()
        };
        out.extend(portion);
    }
    out
}

#[test]
fn captured_report_parses_into_typed_fields_and_reencodes() {
    let bytes = captured_report_bytes();
    assert_eq!(bytes.len(), 0x40 + 0x24);
    let r = InterfaceReport::parse(&bytes).unwrap();
    assert_eq!(
        r.interface_info.bits(),
        InterfaceInfo::NO_UPDATE_AFTER_LOCK | InterfaceInfo::DMA_WITHOUT_PASID
    );
    assert_eq!(r.mmio_ranges.len(), 4);
    assert_eq!(r.mmio_ranges[0].number_of_pages, 1);
    assert_eq!(
        r.mmio_ranges[0].attributes.bits(),
        MmioRangeAttributes::IS_NON_TEE_MEM
    );
    assert_eq!(
        r.mmio_ranges
            .iter()
            .map(|m| (m.first_page, m.range_id))
            .collect::<Vec<_>>(),
        vec![(0, 1), (0x8000, 2), (0x1_0000, 3), (0x2_0000, 4)]
    );
    assert_eq!(r.device_specific_info, b"tdisp_dev_emu\0\0\0");
    assert_eq!(r.encode().unwrap(), bytes);
}

#[test]
fn captured_responses_satisfy_our_requester() {
    let recs = tdisp_records();
    let tsm = TdispRequester::new(iface());
    // Our requests are the captured requests, byte for byte.
    assert_eq!(tsm.get_version(), recs[0].payload);
    tsm.parse_version(&recs[1].payload).unwrap();
    assert_eq!(tsm.get_capabilities(), recs[2].payload);
    tsm.parse_capabilities(&recs[3].payload).unwrap();
    assert_eq!(tsm.get_state(), recs[4].payload);
    assert_eq!(
        tsm.parse_state(&recs[5].payload).unwrap(),
        TdiState::ConfigUnlocked
    );
    let TdispRequestBody::LockInterface(params) =
        TdispRequest::parse(&recs[6].payload).unwrap().body
    else {
        panic!()
    };
    assert_eq!(tsm.lock_interface(&params), recs[6].payload);
    let nonce = tsm.parse_lock_interface(&recs[7].payload).unwrap();
    let mut f = tsm.report_fetcher(0x40);
    assert_eq!(f.next_request().unwrap(), recs[10].payload);
    assert!(f.handle_response(&recs[11].payload).unwrap().is_none());
    assert_eq!(f.next_request().unwrap(), recs[12].payload);
    let report = f.handle_response(&recs[13].payload).unwrap().unwrap();
    assert_eq!(report.bytes, captured_report_bytes());
    assert!(f.next_request().is_none());
    assert_eq!(tsm.start_interface(&nonce), recs[14].payload);
    tsm.parse_start_interface(&recs[15].payload).unwrap();
    assert_eq!(tsm.stop_interface(), recs[18].payload);
    tsm.parse_stop_interface(&recs[19].payload).unwrap();
    // A response for another interface is refused.
    let other = TdispRequester::new(InterfaceId::new(0xBEF0).unwrap());
    assert!(other.parse_state(&recs[5].payload).is_err());
}

/// A device reproducing the reference responder's TDI.
struct EmuDevice {
    report: Vec<u8>,
    caps: DeviceCapabilities,
}

impl TdispDevice for EmuDevice {
    fn interfaces(&self) -> Vec<InterfaceId> {
        vec![iface()]
    }
    fn capabilities(&self) -> DeviceCapabilities {
        self.caps
    }
    fn keys_live(&self, _id: InterfaceId) -> bool {
        true
    }
    fn interface_report(
        &self,
        _id: InterfaceId,
        _lock: &LockInterfaceParams,
    ) -> Result<Vec<u8>, TdispError> {
        Ok(self.report.clone())
    }
}

/// Hands out the nonces the reference responder drew, in order.
struct Replay(Vec<[u8; 32]>);

impl NonceSource for Replay {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        if self.0.is_empty() {
            return Err(EntropyUnavailable);
        }
        dest.copy_from_slice(&self.0.remove(0));
        Ok(())
    }
}

#[test]
fn our_responder_replays_the_captured_walks_byte_for_byte() {
    let recs = tdisp_records();
    let nonces: Vec<[u8; 32]> = [7usize, 29]
        .iter()
        .map(|&i| {
            let TdispResponseBody::LockInterface(n) =
                TdispResponse::parse(&recs[i].payload).unwrap().body
            else {
                panic!()
            };
            *n.as_bytes()
        })
        .collect();
    let TdispResponseBody::Capabilities(caps) =
        TdispResponse::parse(&recs[3].payload).unwrap().body
    else {
        panic!()
    };
    let device = EmuDevice {
        report: captured_report_bytes(),
        caps,
    };
    let mut rsp = TdispResponder::new(device, Replay(nonces));
    for pair in recs.chunks(2) {
        let (q, a) = (&pair[0], &pair[1]);
        assert!(q.req && !a.req);
        assert_eq!(rsp.respond(&q.payload, true), a.payload, "{}", a.decode);
    }
    assert_eq!(rsp.state(iface()), Some(TdiState::ConfigUnlocked));
    let _ = StartNonce::from_bytes([1; 32]);
}
