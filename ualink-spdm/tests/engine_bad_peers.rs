//! Bad peers: every protocol violation a malicious or broken responder (or requester) can
//! commit is refused with an error naming it, and nothing proceeds afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_common;

use engine_common::*;
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::cert_chain::CertError;
use ualink_spdm::msg::{self, ErrorCode, ErrorResponse, RequestResponseCode as C};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::{
    AppRequest, AppResponse, Outbound, Progress, RequesterConfig, SessionConfig,
};
use ualink_spdm::transport::MessageKind;
use ualink_spdm::{Error, PeerIncompatible, PeerMisbehaved};

fn cfg(version: SpdmVersion, asym: AsymAlg) -> RequesterConfig {
    RequesterConfig {
        versions: vec![SpdmVersion::V12, SpdmVersion::V13]
            .into_iter()
            .filter(|v| *v <= version)
            .collect(),
        algorithms: AlgorithmPolicy::suite(asym),
        ..RequesterConfig::default()
    }
}

const P256: AsymAlg = AsymAlg::EcdsaP256;

/// Replaces the response whose code is `target` using `f`.
fn on_response(
    target: C,
    mut f: impl FnMut(&mut Vec<u8>),
) -> impl FnMut(Dir, Outbound) -> Outbound {
    move |dir, mut o| {
        if dir == Dir::ToRequester && code(&o) == target.0 {
            f(&mut o.bytes);
        }
        o
    }
}

fn misbehaved(r: ualink_spdm::Result<Progress>) -> PeerMisbehaved {
    match r {
        Err(Error::PeerMisbehaved(p)) => p,
        other => panic!("expected PeerMisbehaved, got {other:?}"),
    }
}

fn error_code(o: &Outbound) -> (ErrorCode, u8) {
    assert_eq!(o.kind, MessageKind::Spdm);
    let e = ErrorResponse::parse(&o.bytes).unwrap();
    (e.code, e.data)
}

// ---------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------

#[test]
fn peer_listing_13_then_answering_as_11_is_a_downgrade() {
    let r = attest_tampered(
        cfg(SpdmVersion::V13, P256),
        P256,
        on_response(C::CAPABILITIES, |b| b[0] = 0x11),
    );
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::Downgrade {
            expected: 0x13,
            got: 0x11
        }
    );
}

#[test]
fn peer_selecting_12_when_13_is_common_is_a_downgrade() {
    let r = attest_tampered(
        cfg(SpdmVersion::V13, P256),
        P256,
        on_response(C::CAPABILITIES, |b| b[0] = 0x12),
    );
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::Downgrade {
            expected: 0x13,
            got: 0x12
        }
    );
}

#[test]
fn later_messages_must_keep_the_negotiated_version() {
    let r = attest_tampered(
        cfg(SpdmVersion::V13, P256),
        P256,
        on_response(C::DIGESTS, |b| b[0] = 0x12),
    );
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::Downgrade {
            expected: 0x13,
            got: 0x12
        }
    );
}

#[test]
fn peer_speaking_only_10_and_11_is_refused() {
    let r = attest_tampered(
        cfg(SpdmVersion::V13, P256),
        P256,
        on_response(C::VERSION, |b| {
            *b = vec![0x10, 0x04, 0, 0, 0, 2, 0x00, 0x10, 0x00, 0x11]
        }),
    );
    assert!(
        matches!(
            r,
            Err(Error::PeerIncompatible(PeerIncompatible::NoCommonVersion))
        ),
        "{r:?}"
    );
}

#[test]
fn peer_offering_14_negotiates_13() {
    let mut req = requester(cfg(SpdmVersion::V13, P256), P256);
    let get_version = req.start().unwrap();
    assert_eq!(get_version.bytes, [0x10, 0x84, 0, 0]);
    let version = [0x10, 0x04, 0, 0, 0, 3, 0x00, 0x12, 0x00, 0x13, 0x00, 0x14];
    let Progress::Send(caps) = req.handle(MessageKind::Spdm, &version).unwrap() else {
        panic!("expected GET_CAPABILITIES")
    };
    assert_eq!(&caps.bytes[..2], &[0x13, 0xE1]);
}

#[test]
fn tampered_vca_fails_the_first_signature() {
    // A man in the middle who adds 1.4 to VERSION changes transcript A on one side only.
    let r = attest_tampered(
        cfg(SpdmVersion::V13, P256),
        P256,
        on_response(C::VERSION, |b| {
            *b = vec![0x10, 0x04, 0, 0, 0, 3, 0x00, 0x12, 0x00, 0x13, 0x00, 0x14]
        }),
    );
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::BadSignature {
            what: "CHALLENGE_AUTH"
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Algorithms, certificates
// ---------------------------------------------------------------------------------------------

#[test]
fn algorithm_selection_not_offered_is_refused() {
    // BaseAsymSel (offset 12) switched to P-384 though we offered only P-256.
    let r = attest_tampered(
        cfg(SpdmVersion::V12, P256),
        P256,
        on_response(C::ALGORITHMS, |b| {
            b[12..16].copy_from_slice(&0x80u32.to_le_bytes())
        }),
    );
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::SelectionNotOffered {
            what: "BaseAsymSel"
        }
    );
}

#[test]
fn untrusted_chain_is_refused() {
    let mut rsp = responder(AsymAlg::EcdsaP384);
    // The requester trusts only the P-256 root.
    let mut req = requester(cfg(SpdmVersion::V12, AsymAlg::EcdsaP384), P256);
    let first = req.start().unwrap();
    let r = drive(&mut req, &mut rsp, first, |_, o| o);
    assert!(
        matches!(r, Err(Error::CertChain(CertError::UntrustedRoot))),
        "{r:?}"
    );
    assert!(req.is_failed());
}

#[test]
fn chain_not_matching_digests_is_refused() {
    let r = attest_tampered(
        cfg(SpdmVersion::V12, P256),
        P256,
        on_response(C::DIGESTS, |b| b[4] ^= 1),
    );
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::DigestMismatch {
            what: "certificate chain vs DIGESTS"
        }
    );
}

#[test]
fn out_of_order_response_is_refused() {
    let mut digests = None;
    let r = attest_tampered(cfg(SpdmVersion::V12, P256), P256, |dir, mut o| {
        if dir == Dir::ToRequester && code(&o) == C::DIGESTS.0 {
            digests = Some(o.bytes.clone());
        } else if dir == Dir::ToRequester && code(&o) == C::CERTIFICATE.0 {
            o.bytes = digests.clone().unwrap();
        }
        o
    });
    assert!(matches!(
        misbehaved(r),
        PeerMisbehaved::UnexpectedMessage { got: 0x01, .. }
    ),);
}

// ---------------------------------------------------------------------------------------------
// Signatures and echoes
// ---------------------------------------------------------------------------------------------

#[test]
fn wrong_signatures_are_refused() {
    for (target, what) in [
        (C::CHALLENGE_AUTH, "CHALLENGE_AUTH"),
        (C::MEASUREMENTS, "MEASUREMENTS"),
    ] {
        let r = attest_tampered(
            cfg(SpdmVersion::V12, P256),
            P256,
            on_response(target, |b| {
                let n = b.len();
                b[n - 1] ^= 0x55;
            }),
        );
        assert_eq!(misbehaved(r), PeerMisbehaved::BadSignature { what });
    }
    // KEY_EXCHANGE_RSP: the signature precedes the 32-byte ResponderVerifyData.
    let r = attest_tampered(
        cfg(SpdmVersion::V12, P256),
        P256,
        on_response(C::KEY_EXCHANGE_RSP, |b| {
            let n = b.len();
            b[n - 33] ^= 0x55;
        }),
    );
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::BadSignature {
            what: "KEY_EXCHANGE_RSP"
        }
    );
}

#[test]
fn wrong_verify_data_is_refused() {
    let r = attest_tampered(
        cfg(SpdmVersion::V12, P256),
        P256,
        on_response(C::KEY_EXCHANGE_RSP, |b| {
            let n = b.len();
            b[n - 1] ^= 0x55;
        }),
    );
    assert!(matches!(
        misbehaved(r),
        PeerMisbehaved::VerifyDataMismatch { .. }
    ));
}

#[test]
fn wrong_requester_context_echo_is_refused() {
    // 1.3: RequesterContext (8 bytes) sits right before the 64-byte P-256 signature.
    for (target, what) in [
        (C::CHALLENGE_AUTH, "CHALLENGE_AUTH RequesterContext"),
        (C::MEASUREMENTS, "MEASUREMENTS RequesterContext"),
    ] {
        let r = attest_tampered(
            cfg(SpdmVersion::V13, P256),
            P256,
            on_response(target, |b| {
                let n = b.len();
                b[n - 64 - 1] ^= 0xFF;
            }),
        );
        assert_eq!(misbehaved(r), PeerMisbehaved::NonceMismatch { what });
    }
}

// ---------------------------------------------------------------------------------------------
// Busy / ResponseNotReady
// ---------------------------------------------------------------------------------------------

/// Attests, answering GET_DIGESTS with ERROR Busy (without the responder seeing it) the first
/// `busy` times.
fn attest_with_busy_digests(busy: usize) -> ualink_spdm::Result<Progress> {
    let mut rsp = responder(P256);
    let mut req = requester(cfg(SpdmVersion::V12, P256), P256);
    let mut out = req.start()?;
    let mut left = busy;
    loop {
        let answer = if code(&out) == C::GET_DIGESTS.0 && left > 0 {
            left -= 1;
            Outbound {
                kind: MessageKind::Spdm,
                bytes: ErrorResponse::new(0x12, ErrorCode::BUSY, 0)
                    .encode()
                    .unwrap(),
            }
        } else {
            rsp.handle(out.kind, &out.bytes).unwrap()
        };
        match req.handle(answer.kind, &answer.bytes)? {
            Progress::Send(next) => out = next,
            other => return Ok(other),
        }
    }
}

#[test]
fn busy_is_retried_then_bounded() {
    assert!(matches!(
        attest_with_busy_digests(3),
        Ok(Progress::Attested(_))
    ));
    assert_eq!(
        misbehaved(attest_with_busy_digests(4)),
        PeerMisbehaved::RetriesExhausted(3)
    );
}

#[test]
fn response_not_ready_is_fetched_with_respond_if_ready() {
    let mut rsp = responder(P256);
    let mut req = requester(cfg(SpdmVersion::V12, P256), P256);
    let mut out = req.start().unwrap();
    let mut deferred = false;
    let mut saw_respond_if_ready = false;
    let attested = loop {
        let answer = if code(&out) == C::GET_DIGESTS.0 && !deferred {
            deferred = true;
            // Defer: ResponseNotReady with RDTExponent 1, RequestCode GET_DIGESTS, token 7, RDTM 2.
            let e = [0x12, 0x7F, 0x42, 0x00, 0x01, 0x81, 0x07, 0x02];
            Outbound {
                kind: MessageKind::Spdm,
                bytes: e.to_vec(),
            }
        } else if code(&out) == C::RESPOND_IF_READY.0 {
            saw_respond_if_ready = true;
            assert_eq!(&out.bytes, &[0x12, 0xFF, 0x81, 0x07]);
            rsp.handle(
                MessageKind::Spdm,
                &msg::GetDigests {
                    version: SpdmVersion::V12,
                }
                .encode()
                .unwrap(),
            )
            .unwrap()
        } else {
            rsp.handle(out.kind, &out.bytes).unwrap()
        };
        match req.handle(answer.kind, &answer.bytes).unwrap() {
            Progress::Send(next) => out = next,
            Progress::Attested(a) => break a,
            other => panic!("{other:?}"),
        }
    };
    assert!(saw_respond_if_ready);
    assert!(attested.measurements.is_some());
}

// ---------------------------------------------------------------------------------------------
// Secured messages
// ---------------------------------------------------------------------------------------------

fn established(
    in_clear: bool,
) -> (
    ualink_spdm::requester::Requester,
    ualink_spdm::responder::Responder<ualink_spdm::device::SoftDevice>,
) {
    let mut rsp = responder(P256);
    let mut req = requester(
        RequesterConfig {
            session: Some(SessionConfig {
                handshake_in_the_clear: in_clear,
                ..SessionConfig::default()
            }),
            ..cfg(SpdmVersion::V12, P256)
        },
        P256,
    );
    let first = req.start().unwrap();
    assert!(matches!(
        run(&mut req, &mut rsp, first).unwrap(),
        Progress::Attested(_)
    ));
    (req, rsp)
}

#[test]
fn replayed_request_record_ends_the_session() {
    let (mut req, mut rsp) = established(false);
    let hb = req.request(AppRequest::Heartbeat).unwrap();
    let ack = rsp.handle(hb.kind, &hb.bytes).unwrap();
    assert!(matches!(
        req.handle(ack.kind, &ack.bytes).unwrap(),
        Progress::Response(AppResponse::HeartbeatAck)
    ));
    // The same record again: its sequence number is used up.
    let answer = rsp.handle(hb.kind, &hb.bytes).unwrap();
    assert_eq!(error_code(&answer).0, ErrorCode::DECRYPT_ERROR);
    assert_eq!(rsp.session_id(), None);
    // The session is gone for good: the next (valid) record is not answered.
    let hb2 = req.request(AppRequest::Heartbeat).unwrap();
    assert!(rsp.handle(hb2.kind, &hb2.bytes).is_none());
}

#[test]
fn replayed_response_record_fails_the_requester() {
    let (mut req, mut rsp) = established(false);
    let hb = req.request(AppRequest::Heartbeat).unwrap();
    let ack = rsp.handle(hb.kind, &hb.bytes).unwrap();
    req.handle(ack.kind, &ack.bytes).unwrap();
    let hb2 = req.request(AppRequest::Heartbeat).unwrap();
    let _fresh = rsp.handle(hb2.kind, &hb2.bytes).unwrap();
    let r = req.handle(ack.kind, &ack.bytes);
    assert!(
        matches!(
            r,
            Err(Error::PeerMisbehaved(PeerMisbehaved::SequenceNumber))
        ),
        "{r:?}"
    );
    assert!(req.is_failed());
    assert_eq!(req.session_id(), None);
}

#[test]
fn decrypt_failure_ends_the_session_on_both_sides() {
    // Responder side: a flipped ciphertext byte.
    let (mut req, mut rsp) = established(false);
    let mut hb = req.request(AppRequest::Heartbeat).unwrap();
    let n = hb.bytes.len();
    hb.bytes[n - 20] ^= 1;
    let answer = rsp.handle(hb.kind, &hb.bytes).unwrap();
    assert_eq!(error_code(&answer).0, ErrorCode::DECRYPT_ERROR);
    assert_eq!(rsp.session_id(), None);
    // The requester reports the plain ERROR (it could not be sealed) and is done.
    assert_eq!(
        misbehaved(req.handle(answer.kind, &answer.bytes)),
        PeerMisbehaved::ErrorResponse {
            code: 0x06,
            data: 0
        }
    );
    assert!(req.is_failed());

    // Requester side: a flipped MAC byte in the response.
    let (mut req, mut rsp) = established(true);
    let hb = req.request(AppRequest::Heartbeat).unwrap();
    let mut ack = rsp.handle(hb.kind, &hb.bytes).unwrap();
    let n = ack.bytes.len();
    ack.bytes[n - 1] ^= 1;
    let r = req.handle(ack.kind, &ack.bytes);
    assert!(
        matches!(r, Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))),
        "{r:?}"
    );
    assert_eq!(req.session_id(), None);
    assert!(req.request(AppRequest::Heartbeat).is_err());
}

#[test]
fn corrupted_encrypted_finish_is_a_decrypt_error() {
    // Encrypted handshake: a corrupted FINISH record cannot be opened. The responder answers
    // DecryptError in the clear and drops the handshake; the requester reports that ERROR.
    let mut rsp = responder(P256);
    let mut req = requester(cfg(SpdmVersion::V12, P256), P256);
    let first = req.start().unwrap();
    let r = drive(&mut req, &mut rsp, first, |dir, mut o| {
        if dir == Dir::ToResponder && o.kind == MessageKind::Secured {
            let n = o.bytes.len();
            o.bytes[n - 1] ^= 1;
        }
        o
    });
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::ErrorResponse {
            code: 0x06,
            data: 0
        }
    );
    assert_eq!(rsp.session_id(), None);
}

#[test]
fn wrong_finish_verify_data_is_a_decrypt_error() {
    let mut rsp = responder(P256);
    let mut req = requester(
        RequesterConfig {
            session: Some(SessionConfig {
                handshake_in_the_clear: true,
                ..SessionConfig::default()
            }),
            ..cfg(SpdmVersion::V12, P256)
        },
        P256,
    );
    let first = req.start().unwrap();
    let mut finish_answer = None;
    let r = drive(&mut req, &mut rsp, first, |dir, mut o| {
        if dir == Dir::ToResponder && code(&o) == C::FINISH.0 {
            let n = o.bytes.len();
            o.bytes[n - 1] ^= 1;
        }
        if dir == Dir::ToRequester && code(&o) == C::ERROR.0 {
            finish_answer = Some(error_code(&o));
        }
        o
    });
    assert_eq!(finish_answer, Some((ErrorCode::DECRYPT_ERROR, 0)));
    assert_eq!(
        misbehaved(r),
        PeerMisbehaved::ErrorResponse {
            code: 0x06,
            data: 0
        }
    );
    assert_eq!(rsp.session_id(), None);
}

// ---------------------------------------------------------------------------------------------
// The responder is strict with requesters
// ---------------------------------------------------------------------------------------------

fn plain(
    rsp: &mut ualink_spdm::responder::Responder<ualink_spdm::device::SoftDevice>,
    bytes: &[u8],
) -> (ErrorCode, u8) {
    error_code(&rsp.handle(MessageKind::Spdm, bytes).unwrap())
}

#[test]
fn responder_refuses_out_of_order_malformed_and_unknown_requests() {
    let mut rsp = responder(P256);
    // Before GET_VERSION, nothing else.
    assert_eq!(
        plain(&mut rsp, &[0x12, 0x81, 0, 0]).0,
        ErrorCode::UNEXPECTED_REQUEST
    );
    let v = rsp.handle(MessageKind::Spdm, &[0x10, 0x84, 0, 0]).unwrap();
    assert_eq!(v.bytes[1], 0x04);
    // Skipping GET_CAPABILITIES.
    assert_eq!(
        plain(&mut rsp, &[0x12, 0x81, 0, 0]).0,
        ErrorCode::UNEXPECTED_REQUEST
    );
    // Malformed GET_CAPABILITIES (truncated).
    assert_eq!(
        plain(&mut rsp, &[0x12, 0xE1, 0, 0, 0]).0,
        ErrorCode::INVALID_REQUEST
    );
    // Unknown request code.
    assert_eq!(
        plain(&mut rsp, &[0x12, 0xF0, 0, 0]),
        (ErrorCode::UNSUPPORTED_REQUEST, 0xF0)
    );
    // A response code is not a request.
    assert_eq!(
        plain(&mut rsp, &[0x12, 0x04, 0, 0]),
        (ErrorCode::UNSUPPORTED_REQUEST, 0x04)
    );

    // Finish VCA with our requester, then check the negotiated-state rules.
    let mut rsp = responder(P256);
    let mut req = requester(
        RequesterConfig {
            session: None,
            ..cfg(SpdmVersion::V12, P256)
        },
        P256,
    );
    let first = req.start().unwrap();
    run(&mut req, &mut rsp, first).unwrap();
    // Version mismatch.
    assert_eq!(
        plain(&mut rsp, &[0x13, 0x81, 0, 0]).0,
        ErrorCode::VERSION_MISMATCH
    );
    // FINISH without KEY_EXCHANGE.
    let mut fin = vec![0x12, 0xE5, 0, 0];
    fin.extend([0u8; 32]);
    assert_eq!(plain(&mut rsp, &fin).0, ErrorCode::UNEXPECTED_REQUEST);
    // Nothing was deferred, so RESPOND_IF_READY is unexpected.
    assert_eq!(
        plain(&mut rsp, &[0x12, 0xFF, 0x81, 1]).0,
        ErrorCode::UNEXPECTED_REQUEST
    );
    // Session-only requests in the clear.
    assert_eq!(
        plain(&mut rsp, &[0x12, 0xE8, 0, 0]).0,
        ErrorCode::UNEXPECTED_REQUEST
    );
    assert_eq!(
        plain(&mut rsp, &[0x12, 0xE9, 1, 1]).0,
        ErrorCode::UNEXPECTED_REQUEST
    );
    // Reserved bits / trailing bytes.
    assert_eq!(
        plain(&mut rsp, &[0x12, 0x81, 0, 0, 0]).0,
        ErrorCode::INVALID_REQUEST
    );
    assert_eq!(
        plain(&mut rsp, &[0x12, 0x81, 1, 0]).0,
        ErrorCode::INVALID_REQUEST
    );
    // A certificate slot that is not provisioned.
    assert_eq!(
        plain(&mut rsp, &[0x12, 0x82, 3, 0, 0, 0, 0x10, 0]).0,
        ErrorCode::INVALID_REQUEST
    );
    // A secured message for a session that does not exist is not answered at all.
    assert!(rsp
        .handle(MessageKind::Secured, &[1, 2, 3, 4, 0, 0, 0x10, 0])
        .is_none());
}

#[test]
fn repeated_key_updates_stay_in_step() {
    let (mut req, mut rsp) = established(false);
    for _ in 0..3 {
        let o = req
            .request(AppRequest::KeyUpdate(
                ualink_spdm::requester::KeyUpdateKind::All,
            ))
            .unwrap();
        let mut out = o;
        loop {
            let a = rsp.handle(out.kind, &out.bytes).unwrap();
            match req.handle(a.kind, &a.bytes).unwrap() {
                Progress::Send(n) => out = n,
                Progress::Response(AppResponse::KeysUpdated) => break,
                other => panic!("{other:?}"),
            }
        }
    }
    let hb = req.request(AppRequest::Heartbeat).unwrap();
    let a = rsp.handle(hb.kind, &hb.bytes).unwrap();
    assert!(matches!(
        req.handle(a.kind, &a.bytes).unwrap(),
        Progress::Response(AppResponse::HeartbeatAck)
    ));
}

#[test]
fn error_to_update_all_keys_under_the_old_key_is_reported() {
    use ualink_spdm::device::SoftDevice;
    use ualink_spdm::msg::CapabilityFlags;
    use ualink_spdm::responder::{Responder, ResponderConfig};
    // A device that does not do KEY_UPDATE answers UpdateAllKeys with an ERROR under its
    // unchanged key; the requester reads it (its new receiving key is reverted) and reports it.
    let dev = device(P256).with_flags(SoftDevice::DEFAULT_FLAGS & !CapabilityFlags::KEY_UPD_CAP.0);
    let mut rsp = Responder::new(dev, ResponderConfig::default());
    let mut req = requester(cfg(SpdmVersion::V12, P256), P256);
    let first = req.start().unwrap();
    assert!(matches!(
        run(&mut req, &mut rsp, first).unwrap(),
        Progress::Attested(_)
    ));
    let ku = req
        .request(AppRequest::KeyUpdate(
            ualink_spdm::requester::KeyUpdateKind::All,
        ))
        .unwrap();
    let answer = rsp.handle(ku.kind, &ku.bytes).unwrap();
    assert_eq!(answer.kind, MessageKind::Secured);
    assert_eq!(
        misbehaved(req.handle(answer.kind, &answer.bytes)),
        PeerMisbehaved::ErrorResponse {
            code: 0x07,
            data: 0xE9
        }
    );
}

#[test]
fn second_key_exchange_while_a_session_is_open_is_refused() {
    use ualink_spdm::crypto::{EphemeralDhe, Rng};
    let (req, mut rsp) = established(false);
    let live = rsp.session_id().unwrap();
    let dhe = EphemeralDhe::generate(ualink_spdm::algo::DheGroup::Secp256r1, &Rng::new()).unwrap();
    let ke = msg::KeyExchange {
        version: SpdmVersion::V12,
        summary_type: msg::MeasurementSummaryType::None,
        slot_id: 0,
        req_session_id: 0x1234,
        session_policy: 0,
        random: [3; 32],
        exchange_data: dhe.exchange_data().to_vec(),
        opaque: msg::OpaqueData::supported_versions(&[0x1200])
            .unwrap()
            .encode()
            .unwrap(),
    }
    .encode()
    .unwrap();
    // DSP0274: a session beyond the responder's limit (one) is SessionLimitExceeded.
    assert_eq!(plain(&mut rsp, &ke), (ErrorCode::SESSION_LIMIT_EXCEEDED, 0));
    // The live session is untouched.
    assert_eq!(rsp.session_id(), Some(live));
    assert_eq!(req.session_id(), Some(live));
}
