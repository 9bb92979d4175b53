//! Round trips for the SPDM message codecs: constructed values of every message, in SPDM 1.2
//! and 1.3 and with every optional part on and off, encode and parse back to themselves
//! (through the dispatchers, so the code routing is covered too); arbitrary field contents
//! round-trip under proptest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use ualink_spdm::algo::SpdmVersion;
use ualink_spdm::msg::*;

const VERSIONS: [SpdmVersion; 2] = [SpdmVersion::V12, SpdmVersion::V13];

fn ctx(v: SpdmVersion) -> MsgContext {
    MsgContext {
        req_sig_len: 384,
        dhe_len: 96,
        ..MsgContext::new(v, 48, 96)
    }
}

fn rctx(v: SpdmVersion) -> Option<[u8; REQUESTER_CONTEXT_LEN]> {
    (v == SpdmVersion::V13).then_some([0xC7; REQUESTER_CONTEXT_LEN])
}

fn rt_req(m: SpdmRequest, ctx: Option<&MsgContext>) -> Vec<u8> {
    let b = m.encode().unwrap();
    assert_eq!(SpdmRequest::parse(&b, ctx).unwrap(), m, "{:02x?}", b);
    assert_eq!(SpdmHeader::peek(&b).unwrap().code, m.code());
    assert_eq!(m.version_byte(), b[0]);
    b
}

fn rt_rsp(m: SpdmResponse, ctx: Option<&MsgContext>) -> Vec<u8> {
    let b = m.encode().unwrap();
    assert_eq!(SpdmResponse::parse(&b, ctx).unwrap(), m, "{:02x?}", b);
    assert_eq!(SpdmHeader::peek(&b).unwrap().code, m.code());
    assert_eq!(m.version_byte(), b[0]);
    b
}

#[test]
fn vca_messages_round_trip() {
    rt_req(SpdmRequest::GetVersion(GetVersion), None);
    let v = Version {
        entries: vec![
            VersionNumber(0x1000),
            VersionNumber(0x1200),
            VersionNumber(0x1310),
        ],
    };
    rt_rsp(SpdmResponse::Version(v.clone()), None);
    assert_eq!(
        v.highest_common(&[SpdmVersion::V12, SpdmVersion::V13]),
        Some(SpdmVersion::V13)
    );
    assert_eq!(VersionNumber::of(SpdmVersion::V12), VersionNumber(0x1200));
    // A 1.4-only peer has nothing in common with us; one listing 1.4 too negotiates 1.3.
    let v14 = Version {
        entries: vec![VersionNumber(0x1400)],
    };
    assert_eq!(
        v14.highest_common(&[SpdmVersion::V12, SpdmVersion::V13]),
        None
    );
    for ver in VERSIONS {
        let flags = CapabilityFlags::CERT_CAP
            .union(CapabilityFlags::CHAL_CAP)
            .union(CapabilityFlags::KEY_EX_CAP)
            .union(CapabilityFlags::HANDSHAKE_IN_THE_CLEAR_CAP);
        let gc = GetCapabilities {
            version: ver,
            ct_exponent: 14,
            flags,
            data_transfer_size: 4096,
            max_spdm_msg_size: 65536,
        };
        rt_req(SpdmRequest::GetCapabilities(gc), None);
        let c = Capabilities {
            version: ver,
            ct_exponent: 20,
            flags: flags.union(CapabilityFlags::MEAS_CAP_SIG),
            data_transfer_size: 42,
            max_spdm_msg_size: 42,
        };
        rt_rsp(SpdmResponse::Capabilities(c), None);
        let mut structs = vec![
            AlgStruct::new(AlgType::DHE, DheBits::SECP256R1.0 | DheBits::SECP384R1.0),
            AlgStruct::new(AlgType::AEAD, AeadBits::AES_256_GCM.0),
            AlgStruct::new(AlgType::REQ_BASE_ASYM, 0x0090),
            AlgStruct::new(AlgType::KEY_SCHEDULE, KeyScheduleBits::SPDM.0),
        ];
        structs[1].ext.push(ExtAlg {
            registry_id: 3,
            algorithm_id: 0x1234,
        });
        let na = NegotiateAlgorithms {
            version: ver,
            meas_spec: MeasSpec::DMTF,
            other_params: OtherParams::OPAQUE_DATA_FMT1,
            base_asym: AsymBits(AsymBits::ECDSA_P256.0 | AsymBits::ECDSA_P384.0),
            base_hash: HashBits(HashBits::SHA_256.0 | HashBits::SHA_384.0),
            mel_spec: u8::from(ver == SpdmVersion::V13),
            ext_asym: vec![ExtAlg {
                registry_id: 0,
                algorithm_id: 7,
            }],
            ext_hash: vec![],
            alg_structs: structs.clone(),
        };
        let b = rt_req(SpdmRequest::NegotiateAlgorithms(na.clone()), None);
        assert_eq!(usize::from(u16::from_le_bytes([b[4], b[5]])), b.len());
        assert_eq!(na.alg_struct(AlgType::AEAD), Some(&structs[1]));
        let algs = Algorithms {
            version: ver,
            meas_spec_sel: MeasSpec::DMTF,
            other_params_sel: OtherParams(
                OtherParams::OPAQUE_DATA_FMT1.0
                    | if ver == SpdmVersion::V13 {
                        OtherParams::MULTI_KEY_CONN.0
                    } else {
                        0
                    },
            ),
            meas_hash_sel: MeasHashBits::SHA_384,
            base_asym_sel: AsymBits::ECDSA_P384,
            base_hash_sel: HashBits::SHA_384,
            mel_spec_sel: 0,
            ext_asym_sel: vec![],
            ext_hash_sel: vec![ExtAlg {
                registry_id: 1,
                algorithm_id: 2,
            }],
            alg_structs: vec![
                AlgStruct::new(AlgType::DHE, DheBits::SECP384R1.0),
                AlgStruct::new(AlgType::AEAD, AeadBits::AES_256_GCM.0),
                AlgStruct::new(AlgType::REQ_BASE_ASYM, AsymBits::ECDSA_P256.0 as u16),
                AlgStruct::new(AlgType::KEY_SCHEDULE, KeyScheduleBits::SPDM.0),
            ],
        };
        rt_rsp(SpdmResponse::Algorithms(algs.clone()), None);
        let n = algs.negotiated().unwrap();
        assert_eq!(n.version, ver);
        let c = MsgContext::from_negotiation(&algs, flags, flags).unwrap();
        assert_eq!(
            (c.hash_len, c.sig_len, c.req_sig_len, c.dhe_len),
            (48, 96, 64, 96)
        );
        assert!(c.handshake_in_clear);
        assert_eq!(c.multi_key_conn, ver == SpdmVersion::V13);
    }
}

#[test]
fn authentication_messages_round_trip() {
    for v in VERSIONS {
        let c = ctx(v);
        rt_req(SpdmRequest::GetDigests(GetDigests { version: v }), Some(&c));
        for multi in [false, true] {
            let mc = MsgContext {
                multi_key_conn: multi,
                ..c
            };
            let d = Digests {
                version: v,
                supported_slot_mask: if v == SpdmVersion::V13 { 0xFF } else { 0 },
                provisioned_slot_mask: 0b1000_0101,
                digests: vec![vec![1; 48], vec![2; 48], vec![3; 48]],
                key_pair_info: (multi && v == SpdmVersion::V13).then(|| {
                    (0..3)
                        .map(|i| KeyPairInfo {
                            key_pair_id: i,
                            cert_info: 1,
                            key_usage_mask: 0x8005,
                        })
                        .collect()
                }),
            };
            rt_rsp(SpdmResponse::Digests(d), Some(&mc));
        }
        rt_req(
            SpdmRequest::GetCertificate(GetCertificate {
                version: v,
                slot_id: 7,
                param2: u8::from(v == SpdmVersion::V13),
                offset: 0x400,
                length: 0x200,
            }),
            Some(&c),
        );
        rt_rsp(
            SpdmResponse::Certificate(Certificate {
                version: v,
                slot_id: 3,
                param2: if v == SpdmVersion::V13 { 2 } else { 0 },
                remainder_length: 77,
                portion: (0..=255).collect(),
            }),
            Some(&c),
        );
        for summary in [
            MeasurementSummaryType::None,
            MeasurementSummaryType::Tcb,
            MeasurementSummaryType::All,
        ] {
            let ch = Challenge {
                version: v,
                slot_id: if summary == MeasurementSummaryType::Tcb {
                    0xFF
                } else {
                    2
                },
                summary_type: summary,
                nonce: [9; NONCE_LEN],
                requester_context: rctx(v),
            };
            let req = SpdmRequest::Challenge(ch);
            rt_req(req.clone(), Some(&c));
            let auth = ChallengeAuth {
                version: v,
                slot_id: 2,
                basic_mut_auth_req: summary == MeasurementSummaryType::All,
                slot_mask: 0x05,
                cert_chain_hash: vec![0xAA; 48],
                nonce: [0xBB; NONCE_LEN],
                measurement_summary_hash: (summary != MeasurementSummaryType::None)
                    .then(|| vec![0xCC; 48]),
                opaque: vec![1, 2, 3],
                requester_context: rctx(v),
                signature: vec![0xDD; 96],
            };
            let b = rt_rsp(
                SpdmResponse::ChallengeAuth(auth.clone()),
                Some(&c.for_response_to(&req)),
            );
            assert_eq!(auth.signed_portion(&b).unwrap(), &b[..b.len() - 96]);
            assert!(auth.signed_portion(&b[..10]).is_err());
            // In an encapsulated flow the requester answers with its own signature size.
            let mut enc = auth.clone();
            enc.signature = vec![0xEE; 384];
            assert_eq!(
                ChallengeAuth::parse(&enc.encode().unwrap(), &c.for_response_to(&req).reversed())
                    .unwrap(),
                enc
            );
        }
    }
}

#[test]
fn measurement_messages_round_trip() {
    for v in VERSIONS {
        let c = ctx(v);
        for signed in [false, true] {
            for op in [
                MeasurementOperation::Count,
                MeasurementOperation::Index(0xFD),
                MeasurementOperation::All,
            ] {
                let gm = GetMeasurements {
                    version: v,
                    attributes: if signed { 0x03 } else { 0x02 },
                    operation: op,
                    nonce_and_slot: signed.then_some(([5; NONCE_LEN], 1)),
                    requester_context: rctx(v),
                };
                let req = SpdmRequest::GetMeasurements(gm);
                rt_req(req.clone(), Some(&c));
                let m = Measurements {
                    version: v,
                    total_indices: if op == MeasurementOperation::Count {
                        9
                    } else {
                        0
                    },
                    slot_id: 1,
                    content_changed: if signed {
                        ContentChanged::Changed
                    } else {
                        ContentChanged::NotSupported
                    },
                    blocks: if op == MeasurementOperation::Count {
                        vec![]
                    } else {
                        vec![
                            MeasurementBlock {
                                index: 1,
                                value_type: DmtfValueType(DmtfValueType::IMMUTABLE_ROM),
                                value: vec![0x11; 48],
                            },
                            MeasurementBlock {
                                index: 0xFD,
                                value_type: DmtfValueType(
                                    DmtfValueType::RAW_BIT_STREAM | DmtfValueType::MANIFEST,
                                ),
                                value: b"manifest".to_vec(),
                            },
                        ]
                    },
                    nonce: [6; NONCE_LEN],
                    opaque: vec![],
                    requester_context: rctx(v),
                    signature: signed.then(|| vec![7; 96]),
                };
                let b = rt_rsp(
                    SpdmResponse::Measurements(m.clone()),
                    Some(&c.for_response_to(&req)),
                );
                let sig_len = if signed { 96 } else { 0 };
                assert_eq!(m.signed_portion(&b).unwrap(), &b[..b.len() - sig_len]);
                assert!(m.blocks.iter().all(|b| b.value_type.kind() <= 10));
            }
        }
    }
}

#[test]
fn session_messages_round_trip() {
    for v in VERSIONS {
        for clear in [false, true] {
            let c = MsgContext {
                handshake_in_clear: clear,
                ..ctx(v)
            };
            let opaque = OpaqueData::supported_versions(&[0x1100, 0x1200])
                .unwrap()
                .encode()
                .unwrap();
            let ke = KeyExchange {
                version: v,
                summary_type: MeasurementSummaryType::Tcb,
                slot_id: 0,
                req_session_id: 0xFFFE,
                session_policy: 1,
                random: [1; RANDOM_LEN],
                exchange_data: vec![2; 96],
                opaque,
            };
            let req = SpdmRequest::KeyExchange(ke);
            rt_req(req.clone(), Some(&c));
            let rsp = KeyExchangeRsp {
                version: v,
                heartbeat_period: 5,
                rsp_session_id: 0x1234,
                mut_auth_requested: MutAuthRequested::REQUESTED,
                req_slot_id: 3,
                random: [3; RANDOM_LEN],
                exchange_data: vec![4; 96],
                measurement_summary_hash: Some(vec![5; 48]),
                opaque: OpaqueData::selected_version(0x1200).encode().unwrap(),
                signature: vec![6; 96],
                verify_data: (!clear).then(|| vec![7; 48]),
            };
            let b = rt_rsp(
                SpdmResponse::KeyExchangeRsp(rsp.clone()),
                Some(&c.for_response_to(&req)),
            );
            let vd = if clear { 0 } else { 48 };
            assert_eq!(rsp.signed_portion(&b).unwrap(), &b[..b.len() - vd - 96]);
            assert_eq!(rsp.without_verify_data(&b).unwrap(), &b[..b.len() - vd]);
            assert_eq!(rsp.session_id(0xFFFE), 0x1234_FFFE);
            for sig in [None, Some(vec![8; 384])] {
                let f = Finish {
                    version: v,
                    req_slot_id: if sig.is_some() { 3 } else { 0 },
                    signature: sig.clone(),
                    verify_data: vec![9; 48],
                };
                let b = rt_req(SpdmRequest::Finish(f.clone()), Some(&c));
                assert_eq!(f.signed_portion(&b).unwrap(), &b[..4]);
                assert_eq!(
                    f.without_verify_data(&b).unwrap().len(),
                    4 + sig.map_or(0, |s| s.len())
                );
            }
            let fr = FinishRsp {
                version: v,
                verify_data: clear.then(|| vec![10; 48]),
            };
            let b = rt_rsp(SpdmResponse::FinishRsp(fr.clone()), Some(&c));
            assert_eq!(fr.without_verify_data(&b).unwrap(), &b[..4]);
            let psk = PskExchange {
                version: v,
                summary_type: MeasurementSummaryType::None,
                session_policy: 0,
                req_session_id: 0xFEFF,
                psk_hint: b"hint".to_vec(),
                requester_context: vec![1; 32],
                opaque: vec![],
            };
            let req = SpdmRequest::PskExchange(psk);
            rt_req(req.clone(), Some(&c));
            let pr = PskExchangeRsp {
                version: v,
                heartbeat_period: 0,
                rsp_session_id: 1,
                measurement_summary_hash: None,
                responder_context: vec![2; 32],
                opaque: vec![3; 12],
                verify_data: vec![4; 48],
            };
            let b = rt_rsp(
                SpdmResponse::PskExchangeRsp(pr.clone()),
                Some(&c.for_response_to(&req)),
            );
            assert_eq!(pr.without_verify_data(&b).unwrap(), &b[..b.len() - 48]);
            rt_req(
                SpdmRequest::PskFinish(PskFinish {
                    version: v,
                    verify_data: vec![5; 48],
                }),
                Some(&c),
            );
            rt_rsp(
                SpdmResponse::PskFinishRsp(PskFinishRsp { version: v }),
                Some(&c),
            );
            rt_req(SpdmRequest::Heartbeat(Heartbeat { version: v }), Some(&c));
            rt_rsp(
                SpdmResponse::HeartbeatAck(HeartbeatAck { version: v }),
                Some(&c),
            );
            for op in [
                KeyUpdateOp::UpdateKey,
                KeyUpdateOp::UpdateAllKeys,
                KeyUpdateOp::VerifyNewKey,
            ] {
                rt_req(
                    SpdmRequest::KeyUpdate(KeyUpdate {
                        version: v,
                        op,
                        tag: 0x5A,
                    }),
                    Some(&c),
                );
                rt_rsp(
                    SpdmResponse::KeyUpdateAck(KeyUpdateAck {
                        version: v,
                        op,
                        tag: 0x5A,
                    }),
                    Some(&c),
                );
            }
            for clear_state in [false, true] {
                rt_req(
                    SpdmRequest::EndSession(EndSession {
                        version: v,
                        clear_negotiated_state: clear_state,
                    }),
                    Some(&c),
                );
            }
            rt_rsp(
                SpdmResponse::EndSessionAck(EndSessionAck { version: v }),
                Some(&c),
            );
        }
    }
}

#[test]
fn encapsulated_vendor_error_and_retry_messages_round_trip() {
    for v in VERSIONS {
        let c = ctx(v);
        rt_req(
            SpdmRequest::GetEncapsulatedRequest(GetEncapsulatedRequest { version: v }),
            Some(&c),
        );
        let inner = GetDigests { version: v }.encode().unwrap();
        let er = EncapsulatedRequest {
            version: v,
            request_id: 1,
            request: inner.clone(),
        };
        rt_rsp(SpdmResponse::EncapsulatedRequest(er.clone()), Some(&c));
        let inner_req = er.inner(&c).unwrap();
        assert_eq!(
            inner_req,
            SpdmRequest::GetDigests(GetDigests { version: v })
        );
        // The requester's DIGESTS, sized by the reversed context (requester multi-key).
        let rc = MsgContext {
            multi_key_conn_req: false,
            ..c
        };
        let digests = Digests {
            version: v,
            supported_slot_mask: if v == SpdmVersion::V13 { 1 } else { 0 },
            provisioned_slot_mask: 1,
            digests: vec![vec![0x42; 48]],
            key_pair_info: None,
        };
        let d = DeliverEncapsulatedResponse {
            version: v,
            request_id: 1,
            response: digests.encode().unwrap(),
        };
        rt_req(
            SpdmRequest::DeliverEncapsulatedResponse(d.clone()),
            Some(&c),
        );
        assert_eq!(
            d.inner(&rc.for_response_to(&inner_req)).unwrap(),
            SpdmResponse::Digests(digests)
        );
        // Over PCI DOE the wrapper's tail carries the DWORD padding; inner_padded strips it.
        let odd = VendorDefinedRequest::pci_sig(v, PciSigProtocol::TDISP, &[1, 2]);
        let odd_bytes = odd.encode().unwrap();
        let wrapped = EncapsulatedRequest {
            version: v,
            request_id: 5,
            request: odd_bytes.clone(),
        };
        let mut padded = wrapped.encode().unwrap();
        let unpadded = padded.len();
        padded.resize(unpadded.div_ceil(4) * 4, 0);
        assert_ne!(padded.len(), unpadded);
        let (outer, used) = SpdmResponse::parse_padded(&padded, Some(&c)).unwrap();
        assert_eq!(used, padded.len());
        let SpdmResponse::EncapsulatedRequest(outer) = outer else {
            panic!("not ENCAPSULATED_REQUEST")
        };
        assert!(outer.inner(&c).is_err());
        assert_eq!(
            outer.inner_padded(&c).unwrap(),
            (SpdmRequest::VendorDefined(odd), odd_bytes.len())
        );
        let mut dpad = d.encode().unwrap();
        dpad.resize(dpad.len().div_ceil(4) * 4, 0);
        let (SpdmRequest::DeliverEncapsulatedResponse(dd), _) =
            SpdmRequest::parse_padded(&dpad, Some(&c)).unwrap()
        else {
            panic!("not DELIVER_ENCAPSULATED_RESPONSE")
        };
        assert_eq!(
            dd.inner_padded(&rc.for_response_to(&inner_req)).unwrap().1,
            d.response.len()
        );
        for payload in [
            AckPayload::Absent,
            AckPayload::Request(inner.clone()),
            AckPayload::ReqSlotNumber(3),
        ] {
            let ack = EncapsulatedResponseAck {
                version: v,
                request_id: 2,
                ack_request_id: 1,
                payload,
            };
            rt_rsp(SpdmResponse::EncapsulatedResponseAck(ack.clone()), Some(&c));
            assert_eq!(
                ack.inner(&c).unwrap().is_some(),
                matches!(ack.payload, AckPayload::Request(_))
            );
            assert_eq!(
                ack.inner_padded(&c).unwrap().map(|(_, n)| n),
                matches!(ack.payload, AckPayload::Request(_)).then_some(inner.len())
            );
        }
        let vreq =
            VendorDefinedRequest::pci_sig(v, PciSigProtocol::TDISP, &[0x10, 0x81, 0, 0, 1, 0]);
        rt_req(SpdmRequest::VendorDefined(vreq.clone()), Some(&c));
        assert_eq!(
            vreq.as_pci_sig(),
            Some((PciSigProtocol::TDISP, &[0x10, 0x81, 0, 0, 1, 0][..]))
        );
        let vrsp = VendorDefinedResponse {
            version: v,
            standard_id: 3,
            vendor_id: vec![0x98, 0x1E],
            payload: vec![1, 2, 3],
        };
        rt_rsp(SpdmResponse::VendorDefined(vrsp.clone()), Some(&c));
        assert_eq!(vrsp.as_pci_sig(), None);
        // Payloads may carry key bytes (IDE_KM KEY_PROG): Debug shows only their length.
        let key_prog = VendorDefinedRequest::pci_sig(v, PciSigProtocol::IDE_KM, &[0xA5; 40]);
        let dbg = format!("{key_prog:?}");
        assert!(
            dbg.contains("payload_len: 41") && !dbg.contains("165"),
            "{dbg}"
        );
        rt_req(
            SpdmRequest::RespondIfReady(RespondIfReady {
                version: v,
                request_code: RequestResponseCode::CHALLENGE,
                token: 3,
            }),
            Some(&c),
        );
        for code in [
            0x01u8, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C,
        ]
        .into_iter()
        .chain([0x0D, 0x0E, 0x10, 0x41, 0x43])
        .chain(if v == SpdmVersion::V13 {
            vec![0x11, 0x44, 0x45]
        } else {
            vec![]
        }) {
            rt_rsp(
                SpdmResponse::Error(ErrorResponse::new(v.byte(), ErrorCode(code), 0)),
                Some(&c),
            );
        }
        let nr = ErrorResponse {
            version: v.byte(),
            code: ErrorCode::RESPONSE_NOT_READY,
            data: 0,
            extended: ExtendedErrorData::ResponseNotReady(ResponseNotReady {
                rdt_exponent: 10,
                request_code: RequestResponseCode::GET_MEASUREMENTS,
                token: 1,
                rdtm: 2,
            }),
        };
        rt_rsp(SpdmResponse::Error(nr), Some(&c));
        let large = ErrorResponse {
            version: v.byte(),
            code: ErrorCode::LARGE_RESPONSE,
            data: 0,
            extended: ExtendedErrorData::LargeResponse { handle: 4 },
        };
        rt_rsp(SpdmResponse::Error(large), Some(&c));
        let vendor = ErrorResponse {
            version: v.byte(),
            code: ErrorCode::VENDOR,
            data: 1,
            extended: ExtendedErrorData::Vendor(vec![3, 0, 2, 1, 0]),
        };
        rt_rsp(SpdmResponse::Error(vendor), Some(&c));
        // Extended data that does not belong to the code is an API error, not silently dropped.
        let wrong = ErrorResponse {
            version: v.byte(),
            code: ErrorCode::BUSY,
            data: 0,
            extended: ExtendedErrorData::LargeResponse { handle: 1 },
        };
        assert!(wrong.encode().is_err());
    }
    // ERROR in answer to GET_VERSION carries 0x10.
    let e = ErrorResponse::new(0x10, ErrorCode::VERSION_MISMATCH, 0);
    assert_eq!(
        SpdmResponse::parse(&e.encode().unwrap(), None).unwrap(),
        SpdmResponse::Error(e)
    );
}

#[test]
fn chunk_messages_round_trip() {
    for v in VERSIONS {
        for (seq_no, large) in [(0u16, Some(9000u32)), (3, None)] {
            for last in [false, true] {
                rt_req(
                    SpdmRequest::ChunkSend(ChunkSend {
                        version: v,
                        last,
                        handle: 7,
                        seq_no,
                        large_message_size: large,
                        chunk: vec![0x33; 100],
                    }),
                    None,
                );
                rt_rsp(
                    SpdmResponse::ChunkResponse(ChunkResponse {
                        version: v,
                        last,
                        handle: 7,
                        seq_no,
                        large_message_size: large,
                        chunk: vec![0x44; 10],
                    }),
                    None,
                );
            }
        }
        for early_error in [false, true] {
            let inner = if early_error {
                ErrorResponse::new(v.byte(), ErrorCode::REQUEST_TOO_LARGE, 0)
                    .encode()
                    .unwrap()
            } else {
                vec![]
            };
            rt_rsp(
                SpdmResponse::ChunkSendAck(ChunkSendAck {
                    version: v,
                    early_error,
                    handle: 7,
                    seq_no: 2,
                    response: inner,
                }),
                None,
            );
        }
        rt_req(
            SpdmRequest::ChunkGet(ChunkGet {
                version: v,
                handle: 1,
                seq_no: 65535,
            }),
            None,
        );
        // LargeMessageSize only on the first chunk; chunks are never empty.
        let bad = ChunkSend {
            version: v,
            last: true,
            handle: 0,
            seq_no: 1,
            large_message_size: Some(5),
            chunk: vec![1],
        };
        assert!(bad.encode().is_err());
        assert!(ChunkSend::parse(&[v.byte(), 0x85, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(ChunkSend::parse(&[v.byte(), 0x85, 2, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9]).is_err());
        assert!(ChunkSend::parse(&[v.byte(), 0x85, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9]).is_ok());
    }
}

fn arb_block() -> impl Strategy<Value = MeasurementBlock> {
    (
        1u8..=0xFE,
        any::<bool>(),
        0u8..=10,
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(index, raw, kind, value)| MeasurementBlock {
            index,
            value_type: DmtfValueType(kind | if raw { 0x80 } else { 0 }),
            value,
        })
}

fn arb_element() -> impl Strategy<Value = OpaqueElement> {
    (
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..6),
        proptest::collection::vec(any::<u8>(), 0..20),
    )
        .prop_map(|(id, vendor_id, data)| OpaqueElement {
            id,
            vendor_id,
            data,
        })
}

proptest! {
    #[test]
    fn measurements_with_arbitrary_blocks_round_trip(
        v13 in any::<bool>(),
        blocks in proptest::collection::vec(arb_block(), 0..6),
        opaque in proptest::collection::vec(any::<u8>(), 0..64),
        signed in any::<bool>(),
        total in any::<u8>(),
    ) {
        let v = if v13 { SpdmVersion::V13 } else { SpdmVersion::V12 };
        let m = Measurements {
            version: v,
            total_indices: total,
            slot_id: 0,
            content_changed: ContentChanged::NoChange,
            blocks,
            nonce: [1; NONCE_LEN],
            opaque,
            requester_context: rctx(v),
            signature: signed.then(|| vec![2; 96]),
        };
        let c = MsgContext { measurement_signature_requested: signed, ..ctx(v) };
        let b = m.encode().unwrap();
        prop_assert_eq!(Measurements::parse(&b, &c).unwrap(), m);
    }

    #[test]
    fn opaque_data_with_arbitrary_elements_round_trips(
        elements in proptest::collection::vec(arb_element(), 0..5),
    ) {
        let o = OpaqueData { elements };
        let b = o.encode().unwrap();
        prop_assert_eq!(b.len() % 4, 0);
        prop_assert_eq!(OpaqueData::parse(&b).unwrap(), o);
    }

    #[test]
    fn secured_message_version_lists_round_trip(
        versions in proptest::collection::vec(any::<u16>(), 1..10),
        pick in any::<u16>(),
    ) {
        let o = OpaqueData::supported_versions(&versions).unwrap();
        let back = OpaqueData::parse(&o.encode().unwrap()).unwrap();
        prop_assert_eq!(
            back.secured_message().unwrap(),
            Some(SecuredMessageVersionData::Supported(versions))
        );
        let s = OpaqueData::selected_version(pick);
        prop_assert_eq!(
            OpaqueData::parse(&s.encode().unwrap()).unwrap().secured_message().unwrap(),
            Some(SecuredMessageVersionData::Selection(pick))
        );
    }

    #[test]
    fn vendor_defined_and_certificate_portions_round_trip(
        standard_id in 0u16..=10,
        vendor_id in proptest::collection::vec(any::<u8>(), 0..8),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        remainder in any::<u16>(),
        slot in 0u8..8,
    ) {
        let m = VendorDefinedResponse {
            version: SpdmVersion::V12,
            standard_id,
            vendor_id,
            payload: payload.clone(),
        };
        prop_assert_eq!(VendorDefinedResponse::parse(&m.encode().unwrap()).unwrap(), m);
        let c = Certificate {
            version: SpdmVersion::V13,
            slot_id: slot,
            param2: 1,
            remainder_length: remainder,
            portion: payload,
        };
        prop_assert_eq!(Certificate::parse(&c.encode().unwrap()).unwrap(), c);
    }
}
