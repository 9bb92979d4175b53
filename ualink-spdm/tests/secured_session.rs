//! Behaviour of the DSP0277 record layer: round trips, tampering, replay and reordering,
//! framing errors, termination, and KEY_UPDATE in step with a way back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_spdm::algo::{AeadAlg, HashAlg, SpdmVersion};
use ualink_spdm::crypto::Rng;
use ualink_spdm::error::{Error, Malformed, PeerMisbehaved};
use ualink_spdm::key_schedule::{DataSecrets, HandshakeSecret, ScheduleParams};
use ualink_spdm::secured::{
    peek_session_id, Direction, Phase, Role, SecuredParams, SecuredSession, MAC_LEN,
};

const SID: u32 = 0xfffe_ffff;

fn schedule() -> (ScheduleParams, HandshakeSecret) {
    let p = ScheduleParams {
        version: SpdmVersion::V13,
        hash: HashAlg::Sha384,
        aead: AeadAlg::Aes256Gcm,
    };
    (p, HandshakeSecret::new(p, &[0x5a; 48]))
}

fn data_secrets() -> DataSecrets {
    let (_, hs) = schedule();
    hs.master_secret()
        .unwrap()
        .data_secrets(&[0x11; 48])
        .unwrap()
}

/// A requester and a responder in the application phase.
fn pair(params: SecuredParams) -> (SecuredSession, SecuredSession) {
    let d = data_secrets();
    (
        SecuredSession::new_application(SID, Role::Requester, params, &d).unwrap(),
        SecuredSession::new_application(SID, Role::Responder, params, &d).unwrap(),
    )
}

fn is_terminated_err(e: &Error) -> bool {
    matches!(e, Error::ApiMisuse(m) if m.contains("terminated"))
}

/// What a DOE object would carry: the record zero-padded to a DWORD.
fn doe_pad(r: Vec<u8>) -> Vec<u8> {
    framed(SecuredParams::PCI_DOE, r)
}

/// The record as the transport delivers it: zero-padded to `params.alignment`.
fn framed(params: SecuredParams, mut r: Vec<u8>) -> Vec<u8> {
    while r.len() % usize::from(params.alignment) != 0 {
        r.push(0);
    }
    r
}

#[test]
fn round_trip_both_directions_mctp_and_doe() {
    let rng = Rng::new();
    for params in [SecuredParams::MCTP, SecuredParams::PCI_DOE] {
        let (mut req, mut rsp) = pair(params);
        for i in 0..40u16 {
            let msg: Vec<u8> = (0..(i * 7)).map(|b| b as u8).collect();
            let rec = req.seal(&msg, &rng).unwrap();
            assert_eq!(peek_session_id(&rec).unwrap(), SID);
            let hdr = 4 + usize::from(params.seq_num_len) + 2;
            let length = u16::from_le_bytes([rec[hdr - 2], rec[hdr - 1]]) as usize;
            assert_eq!(rec.len(), hdr + length);
            let pad = length - MAC_LEN - 2 - msg.len();
            if params.max_random_padding == 0 {
                assert_eq!(pad, 0);
            } else {
                assert!((1..=32).contains(&pad), "padding {pad}");
            }
            if params.seq_num_len == 2 {
                assert_eq!(&rec[4..6], &i.to_le_bytes());
            }
            let rec = framed(params, rec);
            assert_eq!(&rsp.open(&rec).unwrap()[..], &msg[..]);

            let back = rsp.seal(&msg, &rng).unwrap();
            let back = framed(params, back);
            assert_eq!(&req.open(&back).unwrap()[..], &msg[..]);
        }
        assert_eq!((req.tx_sequence(), req.rx_sequence()), (40, 40));
        assert_eq!((rsp.tx_sequence(), rsp.rx_sequence()), (40, 40));
    }
}

#[test]
fn random_padding_varies_between_records() {
    let rng = Rng::new();
    let (mut req, _) = pair(SecuredParams::MCTP);
    let lens: std::collections::HashSet<usize> = (0..64)
        .map(|_| req.seal(b"x", &rng).unwrap().len())
        .collect();
    assert!(lens.len() > 1, "padding length never changed");
}

#[test]
fn every_tampered_byte_is_rejected_and_ends_the_session() {
    let rng = Rng::new();
    for params in [SecuredParams::MCTP, SecuredParams::PCI_DOE] {
        let (mut req, _) = pair(params);
        let rec = req.seal(b"\x05\x13\xe8\x00\x00", &rng).unwrap();
        let hdr = 4 + usize::from(params.seq_num_len) + 2;
        for i in 0..rec.len() {
            let (_, mut rsp) = pair(params);
            let mut bad = rec.clone();
            bad[i] ^= 0x01;
            let err = rsp.open(&bad).unwrap_err();
            if i < 4 {
                // Another session's ID: not ours to judge, and this session lives on.
                assert_eq!(
                    err,
                    PeerMisbehaved::UnknownSession(SID ^ (1 << (8 * i))).into()
                );
                assert!(!rsp.is_terminated());
                rsp.open(&rec).unwrap();
                continue;
            }
            if i < hdr - 2 {
                assert_eq!(err, PeerMisbehaved::SequenceNumber.into(), "byte {i}");
            } else if i < hdr {
                // A Length off by one is a framing error (or, when the shorter record happens to
                // look DWORD-padded with a zero byte, an authentication failure).
                assert!(
                    matches!(
                        err,
                        Error::Malformed(_) | Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed)
                    ),
                    "byte {i}: {err}"
                );
            } else {
                assert_eq!(err, PeerMisbehaved::DecryptFailed.into(), "byte {i}");
            }
            assert!(rsp.is_terminated(), "byte {i}");
            // The genuine record no longer opens, and nothing can be sent either.
            assert!(is_terminated_err(&rsp.open(&rec).unwrap_err()));
            assert!(is_terminated_err(&rsp.seal(b"x", &rng).unwrap_err()));
        }
    }
}

#[test]
fn replay_and_reordering_are_rejected() {
    let rng = Rng::new();
    for params in [SecuredParams::MCTP, SecuredParams::PCI_DOE] {
        // Replay.
        let (mut req, mut rsp) = pair(params);
        let r0 = framed(params, req.seal(b"first", &rng).unwrap());
        rsp.open(&r0).unwrap();
        let err = rsp.open(&r0).unwrap_err();
        let expected = if params.seq_num_len > 0 {
            PeerMisbehaved::SequenceNumber
        } else {
            // No sequence number on the wire: the implicit one moved on, so the nonce differs.
            PeerMisbehaved::DecryptFailed
        };
        assert_eq!(err, expected.into());
        assert!(rsp.is_terminated());

        // Out of order.
        let (mut req, mut rsp) = pair(params);
        let _r0 = req.seal(b"zero", &rng).unwrap();
        let r1 = framed(params, req.seal(b"one", &rng).unwrap());
        assert_eq!(rsp.open(&r1).unwrap_err(), expected.into());
        assert!(rsp.is_terminated());
    }
}

#[test]
fn a_record_from_the_wrong_direction_does_not_open() {
    let rng = Rng::new();
    let (mut req, _) = pair(SecuredParams::MCTP);
    let mut req2 = pair(SecuredParams::MCTP).0;
    let rec = req.seal(b"request", &rng).unwrap();
    // A requester opens with the response keys.
    assert_eq!(
        req2.open(&rec).unwrap_err(),
        PeerMisbehaved::DecryptFailed.into()
    );
}

#[test]
fn framing_errors_are_typed_and_fatal() {
    let rng = Rng::new();
    // MCTP: any trailing byte.
    let (mut req, mut rsp) = pair(SecuredParams::MCTP);
    let mut rec = req.seal(b"hello", &rng).unwrap();
    rec.push(0);
    assert_eq!(
        rsp.open(&rec).unwrap_err(),
        Malformed::TrailingBytes {
            what: "secured message"
        }
        .into()
    );
    assert!(rsp.is_terminated());

    // Truncated at every length.
    let (mut req, _) = pair(SecuredParams::MCTP);
    let rec = req.seal(b"hello", &rng).unwrap();
    for n in 0..rec.len() {
        let (_, mut rsp) = pair(SecuredParams::MCTP);
        assert!(rsp.open(&rec[..n]).is_err(), "truncated to {n}");
        // Even a record too short to name a session is bad framing: the session is over.
        assert!(rsp.is_terminated(), "truncated to {n}");
    }

    // PCI DOE: exactly the zero padding to a DWORD is accepted, nothing else.
    let (mut req, _) = pair(SecuredParams::PCI_DOE);
    let rec = req.seal(b"abc", &rng).unwrap(); // 6 + 2 + 3 + 16 = 27 bytes → 1 pad byte
    assert_eq!(rec.len() % 4, 3);
    let (_, mut rsp) = pair(SecuredParams::PCI_DOE);
    rsp.open(&doe_pad(rec.clone())).unwrap();
    for bad_tail in [vec![1u8], vec![0, 0, 0, 0, 0], vec![0, 0]] {
        let (_, mut rsp) = pair(SecuredParams::PCI_DOE);
        let mut r = rec.clone();
        r.extend_from_slice(&bad_tail);
        assert_eq!(
            rsp.open(&r).unwrap_err(),
            Malformed::TrailingBytes {
                what: "secured message"
            }
            .into(),
            "{bad_tail:?}"
        );
    }

    // A Length too small to hold ApplicationDataLength and the MAC.
    let (_, mut rsp) = pair(SecuredParams::PCI_DOE);
    let mut tiny = SID.to_le_bytes().to_vec();
    tiny.extend_from_slice(&17u16.to_le_bytes());
    tiny.extend_from_slice(&[0u8; 17]);
    assert!(matches!(
        rsp.open(&tiny).unwrap_err(),
        Error::Malformed(Malformed::BadLength { .. })
    ));
}

#[test]
fn oversized_application_data_is_refused_locally() {
    let rng = Rng::new();
    let (mut req, _) = pair(SecuredParams::PCI_DOE);
    assert!(req.seal(&vec![0u8; 70_000], &rng).is_err());
    // Just under the limit still fits (2 + len + 16 <= 65535).
    req.seal(&vec![0u8; 65_535 - 18], &rng).unwrap();
    assert!(req.seal(&vec![0u8; 65_535 - 17], &rng).is_err());
    assert!(!req.is_terminated());
}

#[test]
fn handshake_phase_then_application_phase() {
    let rng = Rng::new();
    let (_, hs) = schedule();
    let hss = hs.handshake_secrets(&[0x22; 48]).unwrap();
    let p = SecuredParams::MCTP;
    let mut req = SecuredSession::new_handshake(SID, Role::Requester, p, &hss).unwrap();
    let mut rsp = SecuredSession::new_handshake(SID, Role::Responder, p, &hss).unwrap();
    assert_eq!(req.phase(), Phase::Handshake);
    assert!(
        req.update_key(Direction::Request).is_err(),
        "no KEY_UPDATE before FINISH"
    );
    let fin = req.seal(b"FINISH", &rng).unwrap();
    assert_eq!(&rsp.open(&fin).unwrap()[..], b"FINISH");
    let fin_rsp = rsp.seal(b"FINISH_RSP", &rng).unwrap();
    assert_eq!(&req.open(&fin_rsp).unwrap()[..], b"FINISH_RSP");

    let data = hs
        .master_secret()
        .unwrap()
        .data_secrets(&[0x33; 48])
        .unwrap();
    req.switch_to_application(&data).unwrap();
    rsp.switch_to_application(&data).unwrap();
    assert!(req.switch_to_application(&data).is_err());
    assert_eq!(req.tx_sequence(), 0);
    let app = req.seal(b"app", &rng).unwrap();
    assert_eq!(&app[4..6], &[0, 0]);
    assert_eq!(&rsp.open(&app).unwrap()[..], b"app");
    // A handshake-key record does not open under data keys.
    let mut late = SecuredSession::new_handshake(SID, Role::Requester, p, &hss).unwrap();
    let _ = late.seal(b"x", &rng).unwrap();
    let old = late.seal(b"FINISH again", &rng).unwrap();
    assert_eq!(
        rsp.open(&old).unwrap_err(),
        PeerMisbehaved::DecryptFailed.into()
    );
}

#[test]
fn key_update_in_step_with_confirm_and_revert() {
    let rng = Rng::new();
    let (mut req, mut rsp) = pair(SecuredParams::MCTP);
    for _ in 0..3 {
        let r = req.seal(b"warm", &rng).unwrap();
        rsp.open(&r).unwrap();
    }

    // UpdateKey (request direction): KEY_UPDATE goes under the old key, then both switch.
    let ku = req.seal(b"KEY_UPDATE", &rng).unwrap();
    rsp.open(&ku).unwrap();
    rsp.update_key(Direction::Request).unwrap();
    let ack = rsp.seal(b"KEY_UPDATE_ACK", &rng).unwrap();
    req.open(&ack).unwrap();
    req.update_key(Direction::Request).unwrap();
    assert!(
        req.update_key(Direction::Request).is_err(),
        "one pending update at a time"
    );
    assert_eq!(req.tx_sequence(), 0, "new key restarts the sequence number");

    // VerifyNewKey under the new key, then both confirm.
    let verify = req.seal(b"VerifyNewKey", &rng).unwrap();
    assert_eq!(&verify[4..6], &[0, 0]);
    assert_eq!(&rsp.open(&verify).unwrap()[..], b"VerifyNewKey");
    req.confirm_key_update(Direction::Request);
    rsp.confirm_key_update(Direction::Request);
    assert!(!req.key_update_pending(Direction::Request));
    assert!(
        req.revert_key_update(Direction::Request).is_err(),
        "nothing to revert"
    );

    // A record under the pre-update key (with the sequence number now expected) fails.
    let (mut stale, _) = pair(SecuredParams::MCTP);
    let _ = stale.seal(b"seq 0", &rng).unwrap();
    let r = stale.seal(b"seq 1 under the old key", &rng).unwrap();
    assert_eq!(
        rsp.open(&r).unwrap_err(),
        PeerMisbehaved::DecryptFailed.into()
    );

    // Revert: a requester that updated but whose peer refused goes back to the old key and
    // its old sequence number.
    let (mut req, mut rsp) = pair(SecuredParams::MCTP);
    let r = req.seal(b"a", &rng).unwrap();
    rsp.open(&r).unwrap();
    req.update_key(Direction::Request).unwrap();
    req.revert_key_update(Direction::Request).unwrap();
    assert_eq!(req.tx_sequence(), 1);
    let r = req.seal(b"b", &rng).unwrap();
    assert_eq!(&rsp.open(&r).unwrap()[..], b"b");
}

#[test]
fn update_all_keys_reply_under_new_or_old_key() {
    let rng = Rng::new();
    // The peer switched (KEY_UPDATE_ACK under the new response key): new key kept.
    let (mut req, mut rsp) = pair(SecuredParams::MCTP);
    req.update_key(Direction::Response).unwrap();
    let ku = req.seal(b"UpdateAllKeys", &rng).unwrap();
    rsp.open(&ku).unwrap();
    rsp.update_key(Direction::Request).unwrap();
    rsp.update_key(Direction::Response).unwrap();
    let ack = rsp.seal(b"ACK", &rng).unwrap();
    assert_eq!(&req.open_during_key_update(&ack).unwrap()[..], b"ACK");
    assert!(req.key_update_pending(Direction::Response));
    req.confirm_key_update(Direction::Response);

    // The peer refused (ERROR under the old response key): the update is reverted.
    let (mut req, mut rsp) = pair(SecuredParams::MCTP);
    req.update_key(Direction::Response).unwrap();
    let ku = req.seal(b"UpdateAllKeys", &rng).unwrap();
    rsp.open(&ku).unwrap();
    let err = rsp.seal(b"ERROR", &rng).unwrap();
    assert_eq!(&req.open_during_key_update(&err).unwrap()[..], b"ERROR");
    assert!(!req.key_update_pending(Direction::Response));
    assert_eq!(req.rx_sequence(), 1);
    let next = rsp.seal(b"next", &rng).unwrap();
    assert_eq!(&req.open(&next).unwrap()[..], b"next");

    // Neither key: fatal.
    let (mut req, _) = pair(SecuredParams::MCTP);
    req.update_key(Direction::Response).unwrap();
    let mut other = pair(SecuredParams::MCTP).0;
    let junk = other.seal(b"junk", &rng).unwrap();
    assert!(req.open_during_key_update(&junk).is_err());
    assert!(req.is_terminated());

    // Without a pending update the call is misuse and fatal.
    let (mut req, mut rsp) = pair(SecuredParams::MCTP);
    let r = rsp.seal(b"x", &rng).unwrap();
    assert!(req.open_during_key_update(&r).is_err());
    assert!(req.is_terminated());
}

#[test]
fn terminate_is_final_and_debug_shows_no_keys() {
    let rng = Rng::new();
    let (mut req, _) = pair(SecuredParams::MCTP);
    let dbg = format!("{req:?}");
    assert!(dbg.contains("0xfffeffff"), "{dbg}");
    let kiv = data_secrets().request.aead_key_iv().unwrap();
    assert!(!dbg.contains(&hex::encode(&kiv.key.expose()[..6])));
    req.terminate();
    assert!(is_terminated_err(&req.seal(b"x", &rng).unwrap_err()));
    assert!(req.update_key(Direction::Request).is_err());
}

#[test]
fn sessions_with_different_ids_do_not_cross() {
    let rng = Rng::new();
    let d = data_secrets();
    let p = SecuredParams::MCTP;
    let mut a = SecuredSession::new_application(1, Role::Requester, p, &d).unwrap();
    let mut b = SecuredSession::new_application(2, Role::Responder, p, &d).unwrap();
    let rec = a.seal(b"to session 1", &rng).unwrap();
    assert_eq!(
        b.open(&rec).unwrap_err(),
        PeerMisbehaved::UnknownSession(1).into()
    );
    assert!(!b.is_terminated());
}

mod fuzzish {
    use super::*;
    use proptest::prelude::*;
    // Both globs export an `Rng`; ours is meant.
    use ualink_spdm::crypto::Rng;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bytes (with our session ID, so they reach the decoder) never panic and
        /// never open.
        #[test]
        fn arbitrary_records_are_rejected_without_panic(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            doe in any::<bool>(),
        ) {
            let params = if doe { SecuredParams::PCI_DOE } else { SecuredParams::MCTP };
            let (_, mut rsp) = pair(params);
            let mut rec = SID.to_le_bytes().to_vec();
            rec.extend_from_slice(&body);
            prop_assert!(rsp.open(&rec).is_err());
            prop_assert!(rsp.is_terminated());
        }

        /// A genuine record with any single byte replaced never opens.
        #[test]
        fn any_byte_replacement_is_rejected(
            msg in proptest::collection::vec(any::<u8>(), 0..64),
            pos in any::<prop::sample::Index>(),
            val in any::<u8>(),
        ) {
            let rng = Rng::new();
            let (mut req, mut rsp) = pair(SecuredParams::MCTP);
            let rec = req.seal(&msg, &rng).unwrap();
            let i = pos.index(rec.len());
            prop_assume!(rec[i] != val);
            let mut bad = rec.clone();
            bad[i] = val;
            prop_assert!(rsp.open(&bad).is_err());
        }
    }
}
