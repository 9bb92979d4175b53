//! Known answers for the SPDM message codecs: every plaintext SPDM message of the three captured
//! libspdm/spdm-emu sessions (tests/data, see ORIGIN.md) parses with a context derived from the
//! capture's own VERSION/CAPABILITIES/ALGORITHMS and re-encodes to the identical bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ualink_spdm::algo::SpdmVersion;
use ualink_spdm::msg::*;

/// Walks one capture the way an engine would and returns how many messages (including the
/// messages wrapped in encapsulated requests/responses) were parsed and re-encoded.
fn walk(name: &str) -> usize {
    let doe = name.contains("pcidoe");
    let mut ctx: Option<MsgContext> = None;
    let mut req_flags = CapabilityFlags::default();
    let mut rsp_flags = CapabilityFlags::default();
    let mut last_req: Option<SpdmRequest> = None;
    let mut last_encap_req: Option<SpdmRequest> = None;
    let mut checked = 0;
    for rec in common::transcript(name) {
        if !rec.is_spdm() {
            continue;
        }
        let bytes = &rec.bytes;
        let is_request = bytes[1] & 0x80 != 0;
        // PCI DOE pads every message to a DWORD; the codecs accept only the message itself.
        let parse_len;
        if is_request {
            let (m, used) = if doe {
                SpdmRequest::parse_padded(bytes, ctx.as_ref())
            } else {
                SpdmRequest::parse(bytes, ctx.as_ref()).map(|m| (m, bytes.len()))
            }
            .unwrap_or_else(|e| panic!("{name} #{} {}: {e}", rec.index, rec.decode));
            parse_len = used;
            assert_eq!(m.encode().unwrap(), bytes[..used], "{name} #{}", rec.index);
            if let SpdmRequest::GetCapabilities(c) = &m {
                req_flags = c.flags;
            }
            if let (SpdmRequest::DeliverEncapsulatedResponse(d), Some(c), Some(er)) =
                (&m, &ctx, &last_encap_req)
            {
                let inner = d
                    .inner(&c.for_response_to(er))
                    .unwrap_or_else(|e| panic!("{name} #{} inner response: {e}", rec.index));
                assert_eq!(inner.encode().unwrap(), d.response);
                checked += 1;
            }
            last_req = Some(m);
        } else {
            let rctx = match (&ctx, &last_req) {
                (Some(c), Some(r)) => Some(c.for_response_to(r)),
                (c, _) => *c,
            };
            let (m, used) = if doe {
                SpdmResponse::parse_padded(bytes, rctx.as_ref())
            } else {
                SpdmResponse::parse(bytes, rctx.as_ref()).map(|m| (m, bytes.len()))
            }
            .unwrap_or_else(|e| panic!("{name} #{} {}: {e}", rec.index, rec.decode));
            parse_len = used;
            assert_eq!(m.encode().unwrap(), bytes[..used], "{name} #{}", rec.index);
            match &m {
                SpdmResponse::Capabilities(c) => rsp_flags = c.flags,
                SpdmResponse::Algorithms(a) => {
                    ctx = Some(MsgContext::from_negotiation(a, req_flags, rsp_flags).unwrap());
                }
                SpdmResponse::EncapsulatedRequest(e) => {
                    let inner = e.inner(ctx.as_ref().unwrap()).unwrap();
                    assert_eq!(inner.encode().unwrap(), e.request);
                    last_encap_req = Some(inner);
                    checked += 1;
                }
                SpdmResponse::EncapsulatedResponseAck(a) => {
                    if let Some(inner) = a.inner(ctx.as_ref().unwrap()).unwrap() {
                        assert!(
                            matches!(&a.payload, AckPayload::Request(b) if inner.encode().unwrap() == *b)
                        );
                        last_encap_req = Some(inner);
                        checked += 1;
                    }
                }
                _ => {}
            }
        }
        if doe {
            assert!(bytes.len() - parse_len < 4 && bytes[parse_len..].iter().all(|b| *b == 0));
        } else {
            assert_eq!(parse_len, bytes.len());
        }
        checked += 1;
    }
    checked
}

#[test]
fn every_plaintext_message_of_v13_p384_session_parses_and_reencodes() {
    // 50 plaintext records, plus 14 messages wrapped in encapsulated requests/responses
    // (the responder's GET_DIGESTS/GET_CERTIFICATE/CHALLENGE and the requester's answers).
    assert_eq!(walk("v13_p384_session.transcript.full.txt"), 50 + 14);
}

#[test]
fn every_plaintext_message_of_tsm_like_v12_pcidoe_parses_and_reencodes() {
    // 28 plaintext records (the rest are DOE discovery or secured).
    assert_eq!(walk("tsm_like_v12_p256_pcidoe.transcript.full.txt"), 28);
}

#[test]
fn every_plaintext_message_of_v12_nosession_parses_and_reencodes() {
    assert_eq!(walk("v12_p256_nosession.transcript.full.txt"), 30 + 6);
}

fn record(name: &str, index: usize) -> Vec<u8> {
    common::transcript(name)
        .into_iter()
        .find(|r| r.index == index)
        .unwrap()
        .bytes
}

fn v13_ctx() -> MsgContext {
    let name = "v13_p384_session.transcript.full.txt";
    let req = GetCapabilities::parse(&record(name, 2)).unwrap();
    let rsp = Capabilities::parse(&record(name, 3)).unwrap();
    let alg = Algorithms::parse(&record(name, 5)).unwrap();
    MsgContext::from_negotiation(&alg, req.flags, rsp.flags).unwrap()
}

#[test]
fn v13_negotiation_yields_the_expected_context_and_algorithms() {
    let name = "v13_p384_session.transcript.full.txt";
    let v = Version::parse(&record(name, 1)).unwrap();
    assert_eq!(v.entries, vec![VersionNumber(0x1300)]);
    assert_eq!(
        v.highest_common(&[SpdmVersion::V12, SpdmVersion::V13]),
        Some(SpdmVersion::V13)
    );
    let ctx = v13_ctx();
    assert_eq!(ctx.version, SpdmVersion::V13);
    assert_eq!(ctx.hash_len, 48);
    assert_eq!(ctx.sig_len, 96);
    // The requester signs with RSASSA-3072 (ReqBaseAsymAlg 0x0008 = RSAPSS-3072 → 384 bytes).
    assert_eq!(ctx.req_sig_len, 384);
    assert_eq!(ctx.dhe_len, 96);
    assert!(ctx.handshake_in_clear);
    assert!(ctx.multi_key_conn);
    let alg = Algorithms::parse(&record(name, 5)).unwrap();
    let n = alg.negotiated().unwrap();
    assert_eq!(n.asym, ualink_spdm::algo::AsymAlg::EcdsaP384);
    assert_eq!(n.hash, ualink_spdm::algo::HashAlg::Sha384);
    assert_eq!(n.dhe, ualink_spdm::algo::DheGroup::Secp384r1);
}

#[test]
fn v13_digests_carry_key_pair_info() {
    let d = Digests::parse(
        &record("v13_p384_session.transcript.full.txt", 7),
        &v13_ctx(),
    )
    .unwrap();
    assert_eq!(d.supported_slot_mask, 0x13);
    assert_eq!(d.provisioned_slot_mask, 0x13);
    assert_eq!(d.digests.len(), 3);
    let k = d.key_pair_info.unwrap();
    assert_eq!(k.len(), 3);
    assert!(k
        .iter()
        .all(|i| i.cert_info == 1 && i.key_usage_mask == 0x000F));
}

#[test]
fn v13_challenge_auth_signed_portion_stops_before_the_signature() {
    let name = "v13_p384_session.transcript.full.txt";
    let ch = Challenge::parse(&record(name, 12)).unwrap();
    assert_eq!(ch.summary_type, MeasurementSummaryType::All);
    assert_eq!(
        ch.requester_context,
        Some(*b"\x11\x22\x33\x44\x55\x66\x77\x88")
    );
    let ctx = v13_ctx().for_response_to(&SpdmRequest::Challenge(ch.clone()));
    let raw = record(name, 13);
    let auth = ChallengeAuth::parse(&raw, &ctx).unwrap();
    assert!(auth.basic_mut_auth_req);
    assert_eq!(auth.requester_context, ch.requester_context);
    assert!(auth.measurement_summary_hash.is_some());
    let signed = auth.signed_portion(&raw).unwrap();
    assert_eq!(signed.len(), raw.len() - 96);
    assert_eq!(&raw[signed.len()..], &auth.signature[..]);
}

#[test]
fn v13_measurements_blocks_and_signed_portion() {
    let name = "v13_p384_session.transcript.full.txt";
    let req = GetMeasurements::parse(&record(name, 28)).unwrap();
    assert!(req.signature_requested());
    assert_eq!(req.operation, MeasurementOperation::All);
    let ctx = v13_ctx().for_response_to(&SpdmRequest::GetMeasurements(req));
    let raw = record(name, 29);
    let m = Measurements::parse(&raw, &ctx).unwrap();
    assert_eq!(m.blocks.len(), 8);
    assert_eq!(m.content_changed, ContentChanged::NoChange);
    assert_eq!(m.blocks[0].index, 1);
    assert_eq!(m.blocks[0].value.len(), 48);
    assert_eq!(
        m.signed_portion(&raw).unwrap().len(),
        raw.len() - m.signature.as_ref().unwrap().len()
    );
}

#[test]
fn v13_key_exchange_opaque_data_and_transcript_slices() {
    let name = "v13_p384_session.transcript.full.txt";
    let ctx = v13_ctx();
    let ke = KeyExchange::parse(&record(name, 30), &ctx).unwrap();
    let opaque = OpaqueData::parse(&ke.opaque).unwrap();
    assert_eq!(opaque.encode().unwrap(), ke.opaque);
    assert_eq!(
        opaque.secured_message().unwrap(),
        Some(SecuredMessageVersionData::Supported(vec![
            0x1000, 0x1100, 0x1200
        ]))
    );
    assert_eq!(
        OpaqueData::supported_versions(&[0x1000, 0x1100, 0x1200])
            .unwrap()
            .encode()
            .unwrap(),
        ke.opaque
    );
    let rctx = ctx.for_response_to(&SpdmRequest::KeyExchange(ke.clone()));
    let raw = record(name, 31);
    let rsp = KeyExchangeRsp::parse(&raw, &rctx).unwrap();
    assert_eq!(
        OpaqueData::parse(&rsp.opaque)
            .unwrap()
            .secured_message()
            .unwrap(),
        Some(SecuredMessageVersionData::Selection(0x1200))
    );
    assert_eq!(
        OpaqueData::selected_version(0x1200).encode().unwrap(),
        rsp.opaque
    );
    assert_eq!(rsp.mut_auth_requested, MutAuthRequested::WITH_ENCAP_REQUEST);
    assert_eq!(rsp.session_id(ke.req_session_id), 0xFFFF_FFFF);
    // Handshake in the clear: no ResponderVerifyData, so both slices end at the signature.
    assert!(rsp.verify_data.is_none());
    assert_eq!(rsp.signed_portion(&raw).unwrap().len(), raw.len() - 96);
    assert_eq!(rsp.without_verify_data(&raw).unwrap(), &raw[..]);

    let fin_raw = record(name, 38);
    let fin = Finish::parse(&fin_raw, &ctx).unwrap();
    assert_eq!(fin.signature.as_ref().unwrap().len(), 384);
    assert_eq!(fin.signed_portion(&fin_raw).unwrap(), &fin_raw[..4]);
    assert_eq!(fin.without_verify_data(&fin_raw).unwrap().len(), 4 + 384);
    let fr = FinishRsp::parse(&record(name, 39), &ctx).unwrap();
    assert_eq!(fr.verify_data.unwrap().len(), 48);
}

#[test]
fn tsm_key_exchange_rsp_carries_verify_data_when_handshake_is_encrypted() {
    let name = "tsm_like_v12_p256_pcidoe.transcript.full.txt";
    let req = GetCapabilities::parse(&record(name, 8)).unwrap();
    let rsp = Capabilities::parse(&record(name, 9)).unwrap();
    let alg = Algorithms::parse(&record(name, 11)).unwrap();
    let ctx = MsgContext::from_negotiation(&alg, req.flags, rsp.flags).unwrap();
    assert!(!ctx.handshake_in_clear);
    let ke_raw = record(name, 28);
    let (ke, used) = SpdmRequest::parse_padded(&ke_raw, Some(&ctx)).unwrap();
    assert_eq!(used, 126);
    let raw = record(name, 29);
    let (m, used) = SpdmResponse::parse_padded(&raw, Some(&ctx.for_response_to(&ke))).unwrap();
    let SpdmResponse::KeyExchangeRsp(r) = m else {
        panic!("not KEY_EXCHANGE_RSP")
    };
    assert_eq!(used, 246);
    let raw = &raw[..used];
    assert_eq!(r.verify_data.as_ref().unwrap().len(), 32);
    assert_eq!(r.signed_portion(raw).unwrap().len(), used - 64 - 32);
    assert_eq!(r.without_verify_data(raw).unwrap().len(), used - 32);
    // Strict parsing refuses the DOE padding.
    assert_eq!(
        SpdmResponse::parse(&record(name, 29), Some(&ctx.for_response_to(&ke))),
        Err(ualink_spdm::Malformed::TrailingBytes {
            what: "SPDM response"
        }
        .into())
    );
}

#[test]
fn in_session_vendor_defined_messages_are_pci_sig_or_cxl() {
    let recs = common::transcript("tsm_like_v12_p256_pcidoe.vdm_plaintext.txt");
    assert!(!recs.is_empty());
    let (mut ide, mut tdisp, mut other) = (0, 0, 0);
    for rec in &recs {
        let (version, standard, payload_len, proto) = if rec.decode.starts_with("REQ") {
            let m = VendorDefinedRequest::parse(&rec.bytes).unwrap();
            assert_eq!(m.encode().unwrap(), rec.bytes);
            let p = m.as_pci_sig().map(|(p, _)| p);
            (m.version, m.standard_id, m.payload.len(), p)
        } else {
            let m = VendorDefinedResponse::parse(&rec.bytes).unwrap();
            assert_eq!(m.encode().unwrap(), rec.bytes);
            let p = m.as_pci_sig().map(|(p, _)| p);
            (m.version, m.standard_id, m.payload.len(), p)
        };
        assert_eq!(version, SpdmVersion::V12);
        assert_eq!(standard, 0x0003);
        assert!(rec.decode.contains(&format!("payload_len={payload_len}")));
        match proto {
            Some(PciSigProtocol::IDE_KM) => ide += 1,
            Some(PciSigProtocol::TDISP) => tdisp += 1,
            _ => other += 1,
        }
    }
    assert!(
        ide > 0 && tdisp > 0,
        "ide {ide} tdisp {tdisp} other {other}"
    );
    let q = VendorDefinedRequest::parse(&recs[0].bytes).unwrap();
    assert_eq!(
        VendorDefinedRequest::pci_sig(SpdmVersion::V12, PciSigProtocol::IDE_KM, &q.payload[1..]),
        q
    );
}
