//! Bad input for the SPDM message codecs: every captured message truncated at every byte, with
//! a trailing byte, with reserved bits set, with overflowing lengths and unknown codes → a typed
//! error and never a panic; random and mutated bytes never panic, and whatever parses re-encodes
//! to exactly the bytes it came from (one canonical encoding per message).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use ualink_spdm::algo::SpdmVersion;
use ualink_spdm::msg::*;
use ualink_spdm::{Error, Malformed, PeerIncompatible, PeerMisbehaved};

/// One captured message with the context an engine would parse it with.
#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    index: usize,
    bytes: Vec<u8>,
    ctx: Option<MsgContext>,
    request: bool,
}

impl Case {
    fn parse(&self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        self.parse_with(bytes, self.ctx.as_ref())
    }

    fn parse_with(&self, bytes: &[u8], ctx: Option<&MsgContext>) -> Result<Vec<u8>, Error> {
        if self.request {
            SpdmRequest::parse(bytes, ctx)?.encode()
        } else {
            SpdmResponse::parse(bytes, ctx)?.encode()
        }
    }

    /// Messages whose last field runs to the end of the message (no length field): a prefix or
    /// an extension can be another valid message.
    fn runs_to_end(&self) -> bool {
        matches!(self.bytes[1], 0x6A | 0xEB)
            || (self.bytes[1] == 0x6B && self.bytes[3] == 1)
            || (self.bytes[1] == 0x7F && self.bytes[2] == 0xFF)
    }
}

/// Every plaintext message of every capture (DOE padding removed), with its context.
fn cases() -> &'static [Case] {
    static CASES: std::sync::OnceLock<Vec<Case>> = std::sync::OnceLock::new();
    CASES.get_or_init(load_cases)
}

fn load_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for name in common::SESSIONS {
        let mut ctx: Option<MsgContext> = None;
        let (mut rf, mut sf) = (CapabilityFlags::default(), CapabilityFlags::default());
        let mut last: Option<SpdmRequest> = None;
        for rec in common::transcript(name) {
            if !rec.is_spdm() {
                continue;
            }
            let request = rec.bytes[1] & 0x80 != 0;
            let mctx = if request {
                ctx
            } else {
                match (&ctx, &last) {
                    (Some(c), Some(r)) => Some(c.for_response_to(r)),
                    (c, _) => *c,
                }
            };
            let used = if request {
                let (m, used) = SpdmRequest::parse_padded(&rec.bytes, mctx.as_ref()).unwrap();
                if let SpdmRequest::GetCapabilities(c) = &m {
                    rf = c.flags;
                }
                last = Some(m);
                used
            } else {
                let (m, used) = SpdmResponse::parse_padded(&rec.bytes, mctx.as_ref()).unwrap();
                match &m {
                    SpdmResponse::Capabilities(c) => sf = c.flags,
                    SpdmResponse::Algorithms(a) => {
                        ctx = Some(MsgContext::from_negotiation(a, rf, sf).unwrap())
                    }
                    _ => {}
                }
                used
            };
            out.push(Case {
                name,
                index: rec.index,
                bytes: rec.bytes[..used].to_vec(),
                ctx: mctx,
                request,
            });
        }
    }
    assert_eq!(out.len(), 50 + 28 + 30);
    out
}

fn find(name_part: &str, index: usize) -> Case {
    cases()
        .iter()
        .find(|c| c.name.contains(name_part) && c.index == index)
        .unwrap()
        .clone()
}

fn v13_ctx() -> MsgContext {
    find("v13", 6).ctx.unwrap()
}

fn v12_ctx() -> MsgContext {
    find("v12_p256_nosession", 6).ctx.unwrap()
}

fn is_malformed(e: &Error) -> bool {
    matches!(e, Error::Malformed(_))
}

#[test]
fn every_message_truncated_at_every_byte_is_an_error() {
    for c in cases() {
        for len in 0..c.bytes.len() {
            match c.parse(&c.bytes[..len]) {
                Err(e) => assert!(
                    is_malformed(&e),
                    "{} #{} cut at {len}: {e}",
                    c.name,
                    c.index
                ),
                Ok(enc) => {
                    assert!(
                        c.runs_to_end(),
                        "{} #{} cut at {len} parsed",
                        c.name,
                        c.index
                    );
                    assert_eq!(enc, &c.bytes[..len]);
                }
            }
        }
    }
}

#[test]
fn every_message_with_a_trailing_byte_is_rejected() {
    for c in cases() {
        let mut b = c.bytes.clone();
        b.push(0);
        match c.parse(&b) {
            Err(Error::Malformed(Malformed::TrailingBytes { .. })) => {}
            Ok(enc) if c.runs_to_end() => assert_eq!(enc, b),
            other => panic!("{} #{}: {other:?}", c.name, c.index),
        }
    }
}

#[test]
fn doe_padding_is_accepted_only_as_up_to_three_zero_bytes() {
    for c in cases().iter().filter(|c| !c.runs_to_end()) {
        for pad in 0..=4usize {
            for fill in [0u8, 1] {
                let mut b = c.bytes.clone();
                b.extend(std::iter::repeat_n(fill, pad));
                let r = if c.request {
                    SpdmRequest::parse_padded(&b, c.ctx.as_ref()).map(|(_, u)| u)
                } else {
                    SpdmResponse::parse_padded(&b, c.ctx.as_ref()).map(|(_, u)| u)
                };
                if pad == 0 || (pad < 4 && fill == 0) {
                    assert_eq!(r, Ok(c.bytes.len()), "{} #{} pad {pad}", c.name, c.index);
                } else {
                    assert!(
                        matches!(r, Err(Error::Malformed(Malformed::TrailingBytes { .. }))),
                        "{} #{} pad {pad} fill {fill}",
                        c.name,
                        c.index
                    );
                }
            }
        }
    }
}

/// Sets `mask` in byte `off` of the captured message and checks the error.
fn mutate(part: &str, index: usize, off: usize, mask: u8) -> Result<Vec<u8>, Error> {
    let c = find(part, index);
    let mut b = c.bytes.clone();
    b[off] |= mask;
    c.parse(&b)
}

fn reserved(r: Result<Vec<u8>, Error>) -> bool {
    matches!(r, Err(Error::Malformed(Malformed::ReservedNonZero { .. })))
}

#[test]
fn reserved_fields_and_bits_must_be_zero() {
    let v13 = "v13";
    let v12 = "v12_p256_nosession";
    // (capture, record, byte offset, bits to set)
    let cases: &[(&str, usize, usize, u8)] = &[
        (v13, 0, 2, 0x01),   // GET_VERSION Param1
        (v13, 1, 3, 0x80),   // VERSION Param2
        (v13, 1, 4, 0x01),   // VERSION Reserved
        (v13, 2, 3, 0x01),   // GET_CAPABILITIES Param2
        (v13, 2, 4, 0x01),   // GET_CAPABILITIES Reserved
        (v13, 2, 6, 0x01),   // GET_CAPABILITIES Reserved2
        (v13, 2, 11, 0x80),  // GET_CAPABILITIES Flags bit 31
        (v13, 2, 8, 0x01),   // GET_CAPABILITIES Flags bit 0 (CACHE_CAP is responder-only)
        (v13, 3, 11, 0x40),  // CAPABILITIES Flags bit 30
        (v12, 3, 10, 0x40),  // 1.2 CAPABILITIES Flags bit 22 (EP_INFO is 1.3)
        (v13, 3, 8, 0x18),   // CAPABILITIES MEAS_CAP = 11b
        (v13, 4, 3, 0x01),   // NEGOTIATE_ALGORITHMS Param2
        (v13, 4, 6, 0x02),   // NEGOTIATE_ALGORITHMS MeasurementSpecification
        (v13, 4, 7, 0x80),   // NEGOTIATE_ALGORITHMS OtherParamsSupport
        (v12, 4, 7, 0x10),   // 1.2 NEGOTIATE_ALGORITHMS OtherParams MULTI_KEY_CONN
        (v13, 4, 11, 0x80),  // NEGOTIATE_ALGORITHMS BaseAsymAlgo bit 31
        (v13, 4, 16, 0x01),  // NEGOTIATE_ALGORITHMS Reserved
        (v13, 4, 30, 0x01),  // NEGOTIATE_ALGORITHMS Reserved2
        (v12, 4, 31, 0x01),  // 1.2 NEGOTIATE_ALGORITHMS MELspecification
        (v13, 4, 35, 0x80),  // DHE AlgSupported bit 15
        (v13, 5, 20, 0x01),  // ALGORITHMS Reserved
        (v13, 5, 34, 0x01),  // ALGORITHMS Reserved2
        (v13, 5, 7, 0x40),   // ALGORITHMS OtherParamsSelection
        (v13, 5, 11, 0x01),  // ALGORITHMS MeasurementHashAlgo bit 24
        (v13, 6, 2, 0x01),   // GET_DIGESTS Param1
        (v12, 7, 2, 0x01),   // 1.2 DIGESTS Param1
        (v13, 7, 159, 0x01), // DIGESTS KeyUsageMask bit 8
        (v13, 7, 151, 0x08), // DIGESTS CertificateInfo bit 3
        (v13, 8, 2, 0x10),   // GET_CERTIFICATE Param1 bit 4
        (v13, 8, 3, 0x02),   // GET_CERTIFICATE Param2 bit 1
        (v12, 8, 3, 0x01),   // 1.2 GET_CERTIFICATE Param2
        (v13, 9, 3, 0x08),   // CERTIFICATE Param2 bit 3
        (v13, 13, 2, 0x10),  // CHALLENGE_AUTH Param1 bit 4
        (v13, 14, 2, 0x01),  // GET_ENCAPSULATED_REQUEST Param1
        (v13, 15, 3, 0x01),  // ENCAPSULATED_REQUEST Param2
        (v13, 16, 3, 0x01),  // DELIVER_ENCAPSULATED_RESPONSE Param2
        (v13, 17, 5, 0x01),  // ENCAPSULATED_RESPONSE_ACK Reserved
        (v13, 28, 2, 0x08),  // GET_MEASUREMENTS Param1 bit 3
        (v12, 28, 2, 0x04),  // 1.2 GET_MEASUREMENTS Param1 bit 2 (1.3 only)
        (v13, 28, 36, 0x10), // GET_MEASUREMENTS SlotIDParam bit 4
        (v13, 29, 3, 0x40),  // MEASUREMENTS Param2 bit 6
        (v13, 30, 6, 0x04),  // KEY_EXCHANGE SessionPolicy bit 2
        (v13, 30, 7, 0x01),  // KEY_EXCHANGE Reserved
        (v13, 31, 3, 0x01),  // KEY_EXCHANGE_RSP Param2
        (v13, 31, 7, 0x10),  // KEY_EXCHANGE_RSP ReqSlotIDParam bit 4
        (v13, 38, 2, 0x02),  // FINISH Param1 bit 1
        (v13, 39, 2, 0x01),  // FINISH_RSP Param1
    ];
    for &(part, idx, off, mask) in cases.iter().filter(|c| c.3 != 0) {
        let r = mutate(part, idx, off, mask);
        assert!(
            reserved(r.clone()),
            "{part} #{idx} byte {off} |= {mask:#x}: {r:?}"
        );
    }
    // SessionPolicy bit 1 (EventAllPolicy) exists only in 1.3.
    let tsm = "tsm_like";
    assert!(reserved(mutate(tsm, 28, 6, 0x02)));
    assert!(mutate(v13, 30, 6, 0x02).is_ok());
}

#[test]
fn impossible_and_overflowing_lengths_are_rejected() {
    let bad_len = |r: Result<Vec<u8>, Error>| {
        matches!(
            r,
            Err(Error::Malformed(
                Malformed::BadLength { .. }
                    | Malformed::Truncated { .. }
                    | Malformed::TrailingBytes { .. }
            ))
        )
    };
    let set = |part: &str, idx: usize, off: usize, bytes: &[u8]| {
        let c = find(part, idx);
        let mut b = c.bytes.clone();
        b[off..off + bytes.len()].copy_from_slice(bytes);
        c.parse(&b)
    };
    // MEASUREMENTS: record length at the 24-bit maximum, one block too many/few.
    assert!(bad_len(set("v13", 29, 5, &[0xFF, 0xFF, 0xFF])));
    assert!(bad_len(set("v13", 29, 4, &[9])));
    assert!(bad_len(set("v13", 29, 4, &[7])));
    // A measurement block whose MeasurementSize disagrees with its ValueSize.
    assert!(bad_len(set("v13", 29, 10, &[0x34, 0x00])));
    assert!(bad_len(set("v13", 29, 10, &[0x32, 0x00])));
    // CERTIFICATE PortionLength one too long / too short.
    let cert = find("v13", 9);
    let pl = u16::from_le_bytes([cert.bytes[4], cert.bytes[5]]);
    assert!(bad_len(set("v13", 9, 4, &(pl + 1).to_le_bytes())));
    assert!(bad_len(set("v13", 9, 4, &(pl - 1).to_le_bytes())));
    assert!(bad_len(set("v13", 9, 4, &[0xFF, 0xFF])));
    // Opaque data longer than 1024 (CHALLENGE_AUTH OpaqueDataLength at 4+48+32+48).
    assert!(matches!(
        set("v13", 13, 132, &[0x01, 0x04]),
        Err(Error::Malformed(Malformed::BadLength { .. }))
    ));
    // NEGOTIATE_ALGORITHMS / ALGORITHMS Length not the message length.
    assert!(bad_len(set("v13", 4, 4, &[49, 0])));
    assert!(bad_len(set("v13", 5, 4, &[0xFF, 0xFF])));
    // VERSION with no entries, or more entries than bytes.
    assert!(bad_len(set("v13", 1, 5, &[0])));
    assert!(bad_len(set("v13", 1, 5, &[0xFF])));
    // Extended algorithm counts beyond what the spec allows / the bytes hold.
    assert!(bad_len(set("v13", 5, 32, &[2])));
    assert!(bad_len(set("v13", 4, 28, &[21])));
    assert!(set("v13", 4, 28, &[1]).is_err());
    // AlgStruct fixed byte count other than 2.
    assert!(bad_len(set("v13", 4, 33, &[0x30])));
    // CAPABILITIES DataTransferSize below 42, MaxSPDMmsgSize below DataTransferSize.
    assert!(bad_len(set("v13", 3, 12, &[41, 0, 0, 0])));
    assert!(bad_len(set("v13", 3, 16, &[0, 0, 0, 0])));
    // KEY_EXCHANGE OpaqueDataLength beyond the message.
    assert!(bad_len(set("v13", 30, 136, &[0xFF, 0x03])));
    // A certificate portion at an offset that overflows the 64 KiB chain.
    let c = Certificate::parse(&find("v13", 9).bytes).unwrap();
    assert!(certificate::implied_chain_len(0, &c).is_ok());
    assert!(certificate::implied_chain_len(u16::MAX, &c).is_err());
}

#[test]
fn encoders_refuse_fields_that_overflow_their_length() {
    let v = SpdmVersion::V12;
    let big = vec![0u8; 70_000];
    let cert = Certificate {
        version: v,
        slot_id: 0,
        param2: 0,
        remainder_length: 0,
        portion: big.clone(),
    };
    assert!(matches!(
        cert.encode(),
        Err(Error::Malformed(Malformed::LengthOverflow { .. }))
    ));
    let vdm = VendorDefinedRequest {
        version: v,
        standard_id: 3,
        vendor_id: vec![0; 300],
        payload: vec![],
    };
    assert!(vdm.encode().is_err());
    let m = Measurements {
        version: v,
        total_indices: 0,
        slot_id: 0,
        content_changed: ContentChanged::NotSupported,
        blocks: vec![MeasurementBlock {
            index: 1,
            value_type: DmtfValueType(0),
            value: vec![0; 65_533],
        }],
        nonce: [0; 32],
        opaque: vec![],
        requester_context: None,
        signature: None,
    };
    assert!(m.encode().is_err());
    let ver = Version { entries: vec![] };
    assert!(ver.encode().is_err());
    // A 1.3 message without its RequesterContext (or a 1.2 one with it) is an API error.
    let ch = Challenge {
        version: SpdmVersion::V13,
        slot_id: 0,
        summary_type: MeasurementSummaryType::None,
        nonce: [0; 32],
        requester_context: None,
    };
    assert!(matches!(ch.encode(), Err(Error::ApiMisuse(_))));
}

#[test]
fn unknown_codes_and_values_are_typed_errors() {
    let unknown = |r: Result<Vec<u8>, Error>| {
        matches!(r, Err(Error::Malformed(Malformed::UnknownValue { .. })))
    };
    let set = |part: &str, idx: usize, off: usize, val: u8| {
        let c = find(part, idx);
        let mut b = c.bytes.clone();
        b[off] = val;
        c.parse(&b)
    };
    assert!(unknown(set("v13", 12, 3, 0x02))); // CHALLENGE MeasurementSummaryHashType
    assert!(unknown(set("v13", 12, 2, 0x08))); // CHALLENGE SlotID
    assert!(unknown(set("v13", 30, 2, 0x7F))); // KEY_EXCHANGE MeasurementSummaryHashType
    assert!(unknown(set("v13", 31, 6, 0x03))); // KEY_EXCHANGE_RSP MutAuthRequested
    assert!(unknown(set("v13", 29, 9, 0x02))); // measurement block MeasurementSpecification
    assert!(unknown(set("v13", 29, 12, 0x0B))); // DMTF ValueType 11
    assert!(unknown(set("v13", 29, 8, 0x00))); // measurement block Index 0
    assert!(unknown(set("v13", 29, 3, 0x30))); // MEASUREMENTS ContentChanged 11b
    assert!(unknown(set("v13", 4, 32, 0x01))); // AlgStruct type 1
    assert!(unknown(set("v13", 4, 36, 0x02))); // AlgStructs not ascending
    assert!(unknown(set("v13", 17, 3, 0x03))); // ENCAPSULATED_RESPONSE_ACK PayloadType 3
    assert!(unknown(set("v13", 7, 2, 0x03))); // DIGESTS provisioned slot not supported
    assert!(unknown(set("v13", 7, 151, 0x04))); // DIGESTS CertModel 4
    assert!(unknown(set("v13", 9, 3, 0x07))); // CERTIFICATE CertModel 7
                                              // FINISH with a signature when no requester signature algorithm was negotiated.
    let fin = find("v13", 38);
    let no_mut = MsgContext {
        req_sig_len: 0,
        ..fin.ctx.unwrap()
    };
    assert!(matches!(
        Finish::parse(&fin.bytes, &no_mut),
        Err(Error::Malformed(Malformed::UnknownValue { .. }))
    ));
    // KEY_EXCHANGE(_RSP) when no DHE group was negotiated.
    for idx in [30, 31] {
        let ke = find("v13", idx);
        let no_dhe = MsgContext {
            dhe_len: 0,
            ..ke.ctx.unwrap()
        };
        assert!(matches!(
            ke.parse_with(&ke.bytes, Some(&no_dhe)),
            Err(Error::PeerMisbehaved(
                PeerMisbehaved::UnexpectedMessage { .. }
            ))
        ));
    }

    // Every header code: unknown codes are UnknownValue, the wrong direction is
    // UnexpectedMessage, and nothing panics.
    let ctx = v13_ctx();
    for code in 0..=255u8 {
        let b = [0x13, code, 0, 0];
        let known = RequestResponseCode(code).name().is_some();
        // Every code PROTOCOL.md lists is implemented; GET_CSR/SET_CERTIFICATE etc. are unknown.
        let implemented = known;
        let code_err = Error::Malformed(Malformed::UnknownValue {
            what: "RequestResponseCode (unknown or not implemented)",
            value: u32::from(code),
        });
        let req = SpdmRequest::parse(&b, Some(&ctx)).map(|_| ());
        let rsp = SpdmResponse::parse(&b, Some(&ctx)).map(|_| ());
        let wrong_dir = |r: &Result<(), Error>| {
            matches!(
                r,
                Err(Error::PeerMisbehaved(PeerMisbehaved::UnexpectedMessage { got, .. })) if *got == code
            )
        };
        if !known || !implemented {
            // Unknown: both refuse by code.
            let is_req = code & 0x80 != 0;
            let (own, other) = if is_req { (&req, &rsp) } else { (&rsp, &req) };
            assert_eq!(own, &Err(code_err.clone()), "{code:#x}");
            assert!(!known || wrong_dir(other), "{code:#x}");
            assert!(known || other == &Err(code_err), "{code:#x}");
        } else if code & 0x80 != 0 {
            assert!(wrong_dir(&rsp), "{code:#x}");
            assert_ne!(req, Err(code_err), "{code:#x}");
        } else {
            assert!(wrong_dir(&req), "{code:#x}");
            assert_ne!(rsp, Err(code_err), "{code:#x}");
        }
    }
    assert!(matches!(
        SpdmRequest::parse(&[0x13, 0x04, 0, 0], Some(&ctx)),
        Err(Error::PeerMisbehaved(
            PeerMisbehaved::UnexpectedMessage { .. }
        ))
    ));

    // ERROR codes: 1.3 added InvalidPolicy, OperationFailed and NoPendingRequests.
    for version in [0x12u8, 0x13] {
        for code in 0..=255u8 {
            let r = ErrorResponse::parse(&[version, 0x7F, code, 0]);
            let v13_only = matches!(code, 0x11 | 0x44 | 0x45);
            let known = matches!(code, 0x01 | 0x03..=0x0E | 0x10 | 0x41 | 0x43 | 0xFF)
                || (v13_only && version == 0x13);
            if known {
                assert_eq!(r.unwrap().code, ErrorCode(code));
            } else if code != 0x42 && code != 0x0F {
                assert!(
                    matches!(r, Err(Error::Malformed(Malformed::UnknownValue { .. }))),
                    "{version:#x} {code:#x}"
                );
            }
        }
    }
    // ResponseNotReady needs its four bytes; its ErrorData is reserved.
    assert!(ErrorResponse::parse(&[0x12, 0x7F, 0x42, 0]).is_err());
    assert!(ErrorResponse::parse(&[0x12, 0x7F, 0x42, 1, 1, 0xE0, 7, 1]).is_err());
    let nr = ErrorResponse::parse(&[0x12, 0x7F, 0x42, 0, 1, 0xE0, 7, 1]).unwrap();
    assert_eq!(
        nr.extended,
        ExtendedErrorData::ResponseNotReady(ResponseNotReady {
            rdt_exponent: 1,
            request_code: RequestResponseCode::GET_MEASUREMENTS,
            token: 7,
            rdtm: 1
        })
    );
    // ResponseNotReady must name a request being processed.
    assert!(ErrorResponse::parse(&[0x12, 0x7F, 0x42, 0, 1, 0x60, 7, 1]).is_err());
    assert!(ErrorResponse::parse(&[0x12, 0x7F, 0x42, 0, 1, 0xF0, 7, 1]).is_err());
    assert_eq!(
        ErrorCode::RESPONSE_NOT_READY.name(),
        Some("ResponseNotReady")
    );
    assert_eq!(ErrorCode(0x02).name(), None);
    // A code without extended data followed by bytes.
    assert!(ErrorResponse::parse(&[0x12, 0x7F, 0x03, 0, 0]).is_err());

    // KEY_UPDATE operations.
    for op in 0..=255u8 {
        let r = KeyUpdate::parse(&[0x12, 0xE9, op, 9]);
        assert_eq!(r.is_ok(), (1..=3).contains(&op), "{op}");
    }
    // RESPOND_IF_READY must name a known request.
    assert!(RespondIfReady::parse(&[0x12, 0xFF, 0xE0, 1]).is_ok());
    assert!(RespondIfReady::parse(&[0x12, 0xFF, 0x60, 1]).is_err());
    assert!(RespondIfReady::parse(&[0x12, 0xFF, 0xFF, 1]).is_err());
    // VENDOR_DEFINED StandardID beyond the registry list.
    assert!(VendorDefinedRequest::parse(&[0x12, 0xFE, 0, 0, 0x0B, 0, 0, 0, 0]).is_err());
    assert!(VendorDefinedRequest::parse(&[0x12, 0xFE, 0, 0, 0x0A, 0, 0, 0, 0]).is_ok());
    // Opaque data: secured-message element with an unknown SMDataVersion / SMDataID.
    assert!(OpaqueData::parse(&[1, 0, 0, 0, 0, 0, 4, 0, 2, 0, 0, 0x12]).is_ok());
    let od = OpaqueData::parse(&[1, 0, 0, 0, 0, 0, 4, 0, 2, 0, 0, 0x12]).unwrap();
    assert!(od.secured_message().is_err());
    let od = OpaqueData::parse(&[1, 0, 0, 0, 0, 0, 4, 0, 1, 2, 0, 0x12]).unwrap();
    assert!(od.secured_message().is_err());
    // ... with non-zero padding or reserved bytes.
    assert!(OpaqueData::parse(&[1, 0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 1]).is_err());
    assert!(OpaqueData::parse(&[1, 0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 0]).is_ok());
    assert!(OpaqueData::parse(&[0, 1, 0, 0]).is_err());
}

#[test]
fn versions_are_checked_against_the_negotiated_one() {
    let c = find("v13", 6); // GET_DIGESTS
    let mut b = c.bytes.clone();
    b[0] = 0x12;
    assert_eq!(
        SpdmRequest::parse(&b, Some(&v13_ctx())),
        Err(PeerMisbehaved::VersionMismatch {
            negotiated: 0x13,
            got: 0x12
        }
        .into())
    );
    // Without a context the version is exposed, not checked.
    assert_eq!(GetDigests::parse(&b).unwrap().version, SpdmVersion::V12);
    // Context-dependent messages always check.
    let d = find("v12_p256_nosession", 7);
    assert!(matches!(
        Digests::parse(&d.bytes, &v13_ctx()),
        Err(Error::PeerMisbehaved(
            PeerMisbehaved::VersionMismatch { .. }
        ))
    ));
    assert!(Digests::parse(&d.bytes, &v12_ctx()).is_ok());
    // Versions we do not speak.
    for v in [0x10u8, 0x11, 0x14, 0x20] {
        let mut b = find("v13", 2).bytes.clone();
        b[0] = v;
        assert_eq!(
            GetCapabilities::parse(&b),
            Err(PeerIncompatible::NoCommonVersion.into())
        );
    }
    // GET_VERSION / VERSION always carry 0x10.
    assert!(GetVersion::parse(&[0x12, 0x84, 0, 0]).is_err());
    assert!(SpdmRequest::parse(&[0x10, 0x84, 0, 0], Some(&v13_ctx())).is_ok());
    // Before negotiation only VCA messages parse through the dispatcher.
    assert!(matches!(
        SpdmRequest::parse(&find("v13", 30).bytes, None),
        Err(Error::PeerMisbehaved(
            PeerMisbehaved::UnexpectedMessage { .. }
        ))
    ));
}

#[test]
fn algorithm_selections_convert_only_when_single_and_implemented() {
    assert_eq!(AsymBits(0x10).signature_len().unwrap(), 64);
    assert_eq!(AsymBits(0x04).signature_len().unwrap(), 384);
    assert!(matches!(
        AsymBits(0x90).to_alg(),
        Err(Error::Malformed(Malformed::UnknownValue { .. }))
    ));
    assert_eq!(
        AsymBits(0).to_alg(),
        Err(PeerIncompatible::NoCommonAlgorithm {
            what: "asymmetric (signature) algorithm"
        }
        .into())
    );
    assert!(matches!(
        AsymBits::RSASSA_3072.to_alg(),
        Err(Error::PeerIncompatible(_))
    ));
    assert!(matches!(
        HashBits::SHA_512.to_alg(),
        Err(Error::PeerIncompatible(_))
    ));
    assert!(HashBits(0x3).digest_len().is_err());
    assert!(DheBits(0x18).exchange_len().is_err());
    assert!(matches!(
        AeadBits::AES_128_GCM.to_alg(),
        Err(Error::PeerIncompatible(_))
    ));
    let c = find("v13", 5);
    let mut a = Algorithms::parse(&c.bytes).unwrap();
    assert!(a.negotiated().is_ok());
    a.alg_structs[3].supported = 0;
    assert!(matches!(a.negotiated(), Err(Error::PeerIncompatible(_))));
}

fn arb_ctx() -> impl Strategy<Value = Option<MsgContext>> {
    (
        0usize..3,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(which, clear, multi, sum, sig)| {
            let base = match which {
                0 => return None,
                1 => v12_ctx(),
                _ => v13_ctx(),
            };
            Some(MsgContext {
                handshake_in_clear: clear,
                multi_key_conn: multi,
                summary_hash_requested: sum,
                measurement_signature_requested: sig,
                ..base
            })
        })
}

fn check_canonical(bytes: &[u8], ctx: Option<&MsgContext>) {
    if let Ok(m) = SpdmRequest::parse(bytes, ctx) {
        assert_eq!(m.encode().unwrap(), bytes);
    }
    if let Ok(m) = SpdmResponse::parse(bytes, ctx) {
        assert_eq!(m.encode().unwrap(), bytes);
    }
    let _ = SpdmRequest::parse_padded(bytes, ctx);
    let _ = SpdmResponse::parse_padded(bytes, ctx);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_and_parsed_messages_are_canonical(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ctx in arb_ctx(),
    ) {
        check_canonical(&bytes, ctx.as_ref());
    }

    #[test]
    fn random_bodies_behind_every_header_never_panic(
        version in prop::sample::select(vec![0x10u8, 0x12, 0x13]),
        code in any::<u8>(),
        p1 in prop::sample::select(vec![0u8, 1, 2, 4, 0x80, 0xFF]),
        p2 in prop::sample::select(vec![0u8, 1, 3, 0x13, 0x20, 0xFF]),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        ctx in arb_ctx(),
    ) {
        let mut b = vec![version, code, p1, p2];
        b.extend(body);
        check_canonical(&b, ctx.as_ref());
    }

    #[test]
    fn mutated_captured_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let c = pick.get(cases());
        let mut b = c.bytes.clone();
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        check_canonical(&b, c.ctx.as_ref());
        let _ = OpaqueData::parse(&b);
    }
}
