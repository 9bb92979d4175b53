//! Bad input for the TDISP codecs and responder: every captured message truncated at every
//! byte, with a trailing byte, with each reserved header byte set; arbitrary bytes never panic;
//! generated messages round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use ualink_spdm::tdisp::msg::{
    DeviceCapabilities, ErrorResponse, InterfaceId, InterfaceInfo, InterfaceReport, LockFlags,
    LockInterfaceParams, MmioRange, MmioRangeAttributes, RegistryId, StartNonce, TdispErrorCode,
    TdispRequest, TdispRequestBody, TdispResponse, TdispResponseBody, VendorErrorData,
};
use ualink_spdm::tdisp::responder::{TdispDevice, TdispResponder};
use ualink_spdm::tdisp::state::{EntropyUnavailable, NonceSource};
use ualink_spdm::tdisp::{TdiState, TdispError};

fn captured() -> Vec<(bool, Vec<u8>)> {
    common::transcript("tsm_like_v12_p256_pcidoe.vdm_plaintext.txt")
        .into_iter()
        .filter(|r| r.decode.contains("TDISP v1.0"))
        .map(|r| (r.decode.starts_with("REQ"), r.bytes[11..].to_vec()))
        .collect()
}

fn parses(req: bool, b: &[u8]) -> bool {
    if req {
        TdispRequest::parse(b).is_ok()
    } else {
        TdispResponse::parse(b).is_ok()
    }
}

#[test]
fn every_truncation_and_every_trailing_byte_is_an_error() {
    for (req, m) in captured() {
        assert!(parses(req, &m));
        for n in 0..m.len() {
            assert!(!parses(req, &m[..n]), "accepted {n} of {} bytes", m.len());
        }
        let mut long = m.clone();
        long.push(0);
        // TDISP_ERROR with vendor data is the only message with an open tail; none captured.
        assert!(!parses(req, &long), "accepted a trailing byte");
    }
}

#[test]
fn every_reserved_header_byte_and_bad_version_is_an_error() {
    for (req, m) in captured() {
        for i in [3usize, 4, 9, 10, 11, 12, 13, 14, 15, 16] {
            let mut b = m.clone();
            b[i] = 0x01;
            assert!(!parses(req, &b), "reserved byte {i} accepted");
        }
        let mut b = m.clone();
        b[8] = 0x02; // FUNCTION_ID bit 25
        assert!(!parses(req, &b));
        for (i, v) in [(0usize, 0x00u8), (1, 0x11), (1, 0x00)] {
            let mut b = m.clone();
            b[i] = v;
            assert!(!parses(req, &b));
        }
    }
}

#[test]
fn body_reserved_bits_are_errors() {
    let id = InterfaceId::new(1).unwrap();
    // GET_CAPABILITIES TSM_CAPS, LOCK flags bit 5, LOCK reserved byte.
    let mut caps = TdispRequest::new(id, TdispRequestBody::GetCapabilities).encode();
    caps[17] = 1;
    assert!(TdispRequest::parse(&caps).is_err());
    let mut lock =
        TdispRequest::new(id, TdispRequestBody::LockInterface(Default::default())).encode();
    lock[17] = 0x20;
    assert!(TdispRequest::parse(&lock).is_err());
    lock[17] = 0;
    lock[20] = 1;
    assert!(TdispRequest::parse(&lock).is_err());
    // TDI_STATE 4, unknown error code, DSM_CAPS bit 1, version count 0.
    let state = TdispResponse::new(id, TdispResponseBody::DeviceInterfaceState(TdiState::Run));
    let mut b = state.encode().unwrap();
    b[17] = 4;
    assert!(TdispResponse::parse(&b).is_err());
    let mut e = TdispResponse::error(id, TdispErrorCode::Busy, 0)
        .encode()
        .unwrap();
    e[17] = 2;
    assert!(TdispResponse::parse(&e).is_err());
    let mut c = TdispResponse::new(id, TdispResponseBody::Capabilities(Default::default()))
        .encode()
        .unwrap();
    c[17] = 2;
    assert!(TdispResponse::parse(&c).is_err());
    let v = TdispResponse::new(id, TdispResponseBody::Version(vec![0x10]));
    let mut b = v.encode().unwrap();
    b[17] = 0;
    b.pop();
    assert!(TdispResponse::parse(&b).is_err());
    // ERROR_DATA is reserved except for UNSUPPORTED_REQUEST and VENDOR_SPECIFIC_ERROR, where
    // it must be the length of the extended error data.
    let mut e = TdispResponse::error(id, TdispErrorCode::InvalidNonce, 0)
        .encode()
        .unwrap();
    e[21] = 1;
    assert!(TdispResponse::parse(&e).is_err());
    assert!(TdispResponse::error(id, TdispErrorCode::Busy, 1)
        .encode()
        .is_err());
    assert!(
        TdispResponse::error(id, TdispErrorCode::UnsupportedRequest, 0x88)
            .encode()
            .is_ok()
    );
    let vendor = TdispResponse::new(
        id,
        TdispResponseBody::Error(ErrorResponse {
            code: TdispErrorCode::VendorSpecific,
            data: 5,
            vendor: Some(VendorErrorData {
                registry_id: RegistryId::PciSig,
                vendor_id: vec![0x01, 0x00],
                data: vec![0xAA],
            }),
        }),
    );
    let mut b = vendor.encode().unwrap();
    assert_eq!(TdispResponse::parse(&b).unwrap(), vendor);
    b[21] = 4;
    assert!(
        TdispResponse::parse(&b).is_err(),
        "length disagrees with the data"
    );
    // FUNCTION_ID: a segment without Segment Valid.
    assert!(InterfaceId::new(0x0012_0000).is_err());
    assert!(InterfaceId::new(0x0112_0000).is_ok());
    // Report: INTERFACE_INFO bit 6, range attribute bit 4, a count larger than the data.
    let r = InterfaceReport {
        mmio_ranges: vec![MmioRange {
            first_page: 0,
            number_of_pages: 1,
            attributes: MmioRangeAttributes::default(),
            range_id: 0,
        }],
        ..Default::default()
    };
    let good = r.encode().unwrap();
    let mut b = good.clone();
    b[0] = 0x40;
    assert!(InterfaceReport::parse(&b).is_err());
    let mut b = good.clone();
    b[16 + 12] = 0x10;
    assert!(InterfaceReport::parse(&b).is_err());
    let mut b = good.clone();
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(InterfaceReport::parse(&b).is_err());
    let mut b = good;
    b[2] = 1;
    assert!(InterfaceReport::parse(&b).is_err());
}

struct Dev;

impl TdispDevice for Dev {
    fn interfaces(&self) -> Vec<InterfaceId> {
        vec![InterfaceId::new(0xBEEF).unwrap()]
    }
    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities {
            lock_flags_supported: LockFlags::from_bits(0x1F).unwrap(),
            ..Default::default()
        }
    }
    fn keys_live(&self, _id: InterfaceId) -> bool {
        true
    }
    fn interface_report(
        &self,
        _id: InterfaceId,
        _lock: &LockInterfaceParams,
    ) -> Result<Vec<u8>, TdispError> {
        Ok(InterfaceReport::default().encode().unwrap())
    }
}

struct Ones;

impl NonceSource for Ones {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        dest.fill(1);
        Ok(())
    }
}

fn arb_interface() -> impl Strategy<Value = InterfaceId> {
    (any::<u16>(), proptest::option::of(any::<u8>())).prop_map(|(rid, seg)| {
        let v = u32::from(rid) | seg.map_or(0, |s| 0x0100_0000 | (u32::from(s) << 16));
        InterfaceId::new(v).unwrap()
    })
}

fn arb_nonce() -> impl Strategy<Value = StartNonce> {
    any::<[u8; 32]>().prop_map(StartNonce::from_bytes)
}

fn arb_request() -> impl Strategy<Value = TdispRequest> {
    let body = prop_oneof![
        Just(TdispRequestBody::GetVersion),
        Just(TdispRequestBody::GetCapabilities),
        (0u16..0x20, any::<u8>(), any::<u64>(), any::<u64>()).prop_map(|(f, s, o, m)| {
            TdispRequestBody::LockInterface(LockInterfaceParams {
                flags: LockFlags::from_bits(f).unwrap(),
                default_stream_id: s,
                mmio_reporting_offset: o,
                bind_p2p_address_mask: m,
            })
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(offset, length)| {
            TdispRequestBody::GetDeviceInterfaceReport { offset, length }
        }),
        Just(TdispRequestBody::GetDeviceInterfaceState),
        arb_nonce().prop_map(TdispRequestBody::StartInterface),
        Just(TdispRequestBody::StopInterface),
    ];
    (arb_interface(), body).prop_map(|(i, b)| TdispRequest::new(i, b))
}

fn arb_response() -> impl Strategy<Value = TdispResponse> {
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..5).prop_map(TdispResponseBody::Version),
        (0u32..2, any::<[u8; 16]>(), 0u16..0x20, any::<[u8; 3]>()).prop_map(|(d, r, f, x)| {
            TdispResponseBody::Capabilities(DeviceCapabilities {
                dsm_caps: d,
                req_msgs_supported: r,
                lock_flags_supported: LockFlags::from_bits(f).unwrap(),
                dev_addr_width: x[0],
                num_req_this: x[1],
                num_req_all: x[2],
            })
        }),
        arb_nonce().prop_map(TdispResponseBody::LockInterface),
        (prop::collection::vec(any::<u8>(), 0..64), any::<u16>()).prop_map(|(portion, rem)| {
            TdispResponseBody::DeviceInterfaceReport {
                portion,
                remainder_length: rem,
            }
        }),
        (0u8..4)
            .prop_map(|s| TdispResponseBody::DeviceInterfaceState(TdiState::from_wire(s).unwrap())),
        Just(TdispResponseBody::StartInterface),
        Just(TdispResponseBody::StopInterface),
        (
            0usize..11,
            any::<u32>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..4),
            prop::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(c, data, cxl, vid, vdata)| {
                let code = TdispErrorCode::ALL[c];
                let (data, vendor) = match code {
                    TdispErrorCode::VendorSpecific => (
                        (2 + vid.len() + vdata.len()) as u32,
                        Some(VendorErrorData {
                            registry_id: if cxl {
                                RegistryId::Cxl
                            } else {
                                RegistryId::PciSig
                            },
                            vendor_id: vid,
                            data: vdata,
                        }),
                    ),
                    TdispErrorCode::UnsupportedRequest => (data, None),
                    _ => (0, None),
                };
                TdispResponseBody::Error(ErrorResponse { code, data, vendor })
            }),
    ];
    (arb_interface(), body).prop_map(|(i, b)| TdispResponse::new(i, b))
}

fn arb_report() -> impl Strategy<Value = InterfaceReport> {
    (
        0u16..0x40,
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        prop::collection::vec((any::<u64>(), any::<u32>(), 0u16..0x10, any::<u16>()), 0..6),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(info, msix, lnr, tph, ranges, dsi)| InterfaceReport {
            interface_info: InterfaceInfo::from_bits(info).unwrap(),
            msix_message_control: msix,
            lnr_control: lnr,
            tph_control: tph,
            mmio_ranges: ranges
                .into_iter()
                .map(|(first_page, number_of_pages, a, range_id)| MmioRange {
                    first_page,
                    number_of_pages,
                    attributes: MmioRangeAttributes::from_bits(a).unwrap(),
                    range_id,
                })
                .collect(),
            device_specific_info: dsi,
        })
}

proptest! {
    #[test]
    fn requests_round_trip(m in arb_request()) {
        let b = m.encode();
        prop_assert_eq!(TdispRequest::parse(&b).unwrap(), m);
    }

    #[test]
    fn responses_round_trip(m in arb_response()) {
        let b = m.encode().unwrap();
        prop_assert_eq!(TdispResponse::parse(&b).unwrap(), m);
    }

    #[test]
    fn reports_round_trip_and_reject_truncation(r in arb_report(), cut in any::<prop::sample::Index>()) {
        let b = r.encode().unwrap();
        prop_assert_eq!(&InterfaceReport::parse(&b).unwrap(), &r);
        let n = cut.index(b.len());
        prop_assert!(InterfaceReport::parse(&b[..n]).is_err());
        let mut long = b.clone();
        long.push(0);
        prop_assert!(InterfaceReport::parse(&long).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..80), ty in any::<u8>()) {
        // A valid-looking header followed by noise, and pure noise.
        let mut b = vec![0x01, 0x10, ty, 0, 0, 0xEF, 0xBE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend(&tail);
        for input in [&b[..], &tail[..]] {
            let _ = TdispRequest::parse(input);
            let _ = TdispResponse::parse(input);
            let _ = InterfaceReport::parse(input);
            let mut dev = TdispResponder::new(Dev, Ones);
            let rsp = dev.respond(input, true);
            // The responder always answers something that parses.
            prop_assert!(TdispResponse::parse(&rsp).is_ok());
        }
    }
}
