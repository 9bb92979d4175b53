//! TDISP and UALinkSec key programming through our requester and responder: only inside
//! the secured session, with the TDI state machine enforced on the device.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_common;

use engine_common::*;
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::device::SOFT_TDI;
use ualink_spdm::keyprog::{self, AccelId, Direction, KeyTarget, MasterKey, Slot};
use ualink_spdm::msg::{self, ErrorResponse, VendorDefinedRequest};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::driver::{attest, request, SpdmIo};
use ualink_spdm::requester::{AppRequest, AppResponse, Requester, RequesterConfig};
use ualink_spdm::tdisp::msg::{InterfaceId, LockInterfaceParams};
use ualink_spdm::tdisp::requester::TdispRequester;
use ualink_spdm::tdisp::TdiState;
use ualink_spdm::transport::MessageKind;
use zeroize::Zeroizing;

fn config(version: SpdmVersion, asym: AsymAlg) -> RequesterConfig {
    RequesterConfig {
        versions: vec![version],
        algorithms: AlgorithmPolicy::suite(asym),
        ..RequesterConfig::default()
    }
}

fn vendor(req: &mut Requester, io: &mut dyn SpdmIo, payload: Vec<u8>) -> Vec<u8> {
    match request(req, io, AppRequest::Vendor(Zeroizing::new(payload))).unwrap() {
        Some(AppResponse::Vendor(p)) => p,
        other => panic!("unexpected answer {other:?}"),
    }
}

fn target() -> KeyTarget {
    KeyTarget {
        port: 0,
        direction: Direction::Tx,
        slot: Slot::Active,
        peer: AccelId::new(9).unwrap(),
    }
}

fn key() -> MasterKey {
    let mut k = [0x5Au8; 32];
    MasterKey::from_bytes(&mut k)
}

#[test]
fn tdisp_walk_and_key_programming_in_session() {
    for (version, asym) in [
        (SpdmVersion::V12, AsymAlg::EcdsaP256),
        (SpdmVersion::V13, AsymAlg::EcdsaP384),
    ] {
        let mut rsp = responder(asym);
        let mut req = requester(config(version, asym), asym);
        let mut io = Loop::new(&mut rsp);
        attest(&mut req, &mut io).unwrap();
        let tdi = TdispRequester::new(InterfaceId::new(SOFT_TDI).unwrap());

        tdi.parse_version(&vendor(&mut req, &mut io, tdi.get_version()))
            .unwrap();
        tdi.parse_capabilities(&vendor(&mut req, &mut io, tdi.get_capabilities()))
            .unwrap();
        // LOCK is refused while the interface's link keys are not live.
        let params = LockInterfaceParams::default();
        assert!(tdi
            .parse_lock_interface(&vendor(&mut req, &mut io, tdi.lock_interface(&params)))
            .is_err());

        // Program and enable a link key inside the session.
        let t = target();
        let prog = keyprog::ualink_key_prog(t, 1, &key());
        let ack = vendor(&mut req, &mut io, prog.to_vec());
        keyprog::expect_kp_ack(&ack, t, 1).unwrap();
        let ack = vendor(&mut req, &mut io, keyprog::ualink_go(t));
        keyprog::expect_gostop_ack(&ack, t).unwrap();
        assert!(io.responder.device().key_sink().holds(t, &key()));

        // LOCK → REPORT → START → STOP.
        let nonce = tdi
            .parse_lock_interface(&vendor(&mut req, &mut io, tdi.lock_interface(&params)))
            .unwrap();
        assert_eq!(
            tdi.parse_state(&vendor(&mut req, &mut io, tdi.get_state()))
                .unwrap(),
            TdiState::ConfigLocked
        );
        let mut fetch = tdi.report_fetcher(64);
        let mut report = None;
        while let Some(r) = fetch.next_request() {
            report = fetch
                .handle_response(&vendor(&mut req, &mut io, r))
                .unwrap();
        }
        assert!(report.is_some());
        tdi.parse_start_interface(&vendor(&mut req, &mut io, tdi.start_interface(&nonce)))
            .unwrap();
        assert_eq!(
            tdi.parse_state(&vendor(&mut req, &mut io, tdi.get_state()))
                .unwrap(),
            TdiState::Run
        );
        // The nonce was single use.
        assert!(tdi
            .parse_start_interface(&vendor(&mut req, &mut io, tdi.start_interface(&nonce)))
            .is_err());
        tdi.parse_stop_interface(&vendor(&mut req, &mut io, tdi.stop_interface()))
            .unwrap();
        // A configuration change while locked breaks the lock.
        let nonce = tdi
            .parse_lock_interface(&vendor(&mut req, &mut io, tdi.lock_interface(&params)))
            .unwrap();
        io.responder
            .device_mut()
            .set_measurement(4, b"ualinksec=off")
            .unwrap();
        assert_eq!(
            tdi.parse_state(&vendor(&mut req, &mut io, tdi.get_state()))
                .unwrap(),
            TdiState::Error
        );
        assert!(tdi
            .parse_start_interface(&vendor(&mut req, &mut io, tdi.start_interface(&nonce)))
            .is_err());
        tdi.parse_stop_interface(&vendor(&mut req, &mut io, tdi.stop_interface()))
            .unwrap();
        assert_eq!(
            tdi.parse_state(&vendor(&mut req, &mut io, tdi.get_state()))
                .unwrap(),
            TdiState::ConfigUnlocked
        );
        // The session is still healthy.
        assert_eq!(
            request(&mut req, &mut io, AppRequest::Heartbeat).unwrap(),
            Some(AppResponse::HeartbeatAck)
        );
    }
}

#[test]
fn key_programming_outside_a_session_is_refused() {
    let asym = AsymAlg::EcdsaP256;
    let mut rsp = responder(asym);
    let mut req = requester(
        RequesterConfig {
            session: None,
            ..config(SpdmVersion::V12, asym)
        },
        asym,
    );
    let mut io = Loop::new(&mut rsp);
    attest(&mut req, &mut io).unwrap();
    let t = target();
    let prog = keyprog::ualink_key_prog(t, 1, &key());
    let plain =
        VendorDefinedRequest::pci_sig(SpdmVersion::V12, msg::PciSigProtocol(prog[0]), &prog[1..])
            .encode()
            .unwrap();
    io.send(MessageKind::Spdm, &plain).unwrap();
    let (kind, answer) = io.receive().unwrap();
    assert_eq!(kind, MessageKind::Spdm);
    let err = ErrorResponse::parse(&answer).unwrap();
    assert_eq!(err.code, msg::ErrorCode::SESSION_REQUIRED);
    assert_eq!(err.data, 0);
    assert!(!io.responder.device().key_sink().holds(t, &key()));
    assert!(!io.responder.device().key_sink().any_live());

    // TDISP LOCK in the clear is refused by the TDISP responder too.
    let tdi = TdispRequester::new(InterfaceId::new(SOFT_TDI).unwrap());
    let lock = tdi.lock_interface(&LockInterfaceParams::default());
    let plain =
        VendorDefinedRequest::pci_sig(SpdmVersion::V12, msg::PciSigProtocol(lock[0]), &lock[1..])
            .encode()
            .unwrap();
    io.send(MessageKind::Spdm, &plain).unwrap();
    let (_, answer) = io.receive().unwrap();
    let v = msg::VendorDefinedResponse::parse(&answer).unwrap();
    assert!(tdi.parse_lock_interface(&v.payload).is_err());
}

#[test]
fn lock_needs_keys_from_the_locking_session() {
    let asym = AsymAlg::EcdsaP256;
    let mut rsp = responder(asym);
    let tdi = TdispRequester::new(InterfaceId::new(SOFT_TDI).unwrap());
    let t = target();
    {
        // Session 1 programs and enables the keys, then ends.
        let mut req = requester(config(SpdmVersion::V12, asym), asym);
        let mut io = Loop::new(&mut rsp);
        attest(&mut req, &mut io).unwrap();
        let ack = vendor(
            &mut req,
            &mut io,
            keyprog::ualink_key_prog(t, 1, &key()).to_vec(),
        );
        keyprog::expect_kp_ack(&ack, t, 1).unwrap();
        let ack = vendor(&mut req, &mut io, keyprog::ualink_go(t));
        keyprog::expect_gostop_ack(&ack, t).unwrap();
        assert_eq!(
            request(&mut req, &mut io, AppRequest::EndSession).unwrap(),
            None
        );
    }
    // Session 2 (a new connection to the same device) may not lock on session 1's keys.
    let mut req = requester(config(SpdmVersion::V12, asym), asym);
    let mut io = Loop::new(&mut rsp);
    attest(&mut req, &mut io).unwrap();
    let params = LockInterfaceParams::default();
    assert!(tdi
        .parse_lock_interface(&vendor(&mut req, &mut io, tdi.lock_interface(&params)))
        .is_err());
    // Re-programming the keys in this session makes LOCK possible.
    let ack = vendor(
        &mut req,
        &mut io,
        keyprog::ualink_key_prog(t, 2, &key()).to_vec(),
    );
    keyprog::expect_kp_ack(&ack, t, 2).unwrap();
    let ack = vendor(&mut req, &mut io, keyprog::ualink_go(t));
    keyprog::expect_gostop_ack(&ack, t).unwrap();
    tdi.parse_lock_interface(&vendor(&mut req, &mut io, tdi.lock_interface(&params)))
        .unwrap();
}

#[test]
fn revoking_live_keys_moves_a_locked_tdi_to_error() {
    let asym = AsymAlg::EcdsaP256;
    let mut rsp = responder(asym);
    let mut req = requester(config(SpdmVersion::V13, asym), asym);
    let mut io = Loop::new(&mut rsp);
    attest(&mut req, &mut io).unwrap();
    let tdi = TdispRequester::new(InterfaceId::new(SOFT_TDI).unwrap());
    let t = target();
    let ack = vendor(
        &mut req,
        &mut io,
        keyprog::ualink_key_prog(t, 1, &key()).to_vec(),
    );
    keyprog::expect_kp_ack(&ack, t, 1).unwrap();
    let ack = vendor(&mut req, &mut io, keyprog::ualink_go(t));
    keyprog::expect_gostop_ack(&ack, t).unwrap();
    tdi.parse_lock_interface(&vendor(
        &mut req,
        &mut io,
        tdi.lock_interface(&LockInterfaceParams::default()),
    ))
    .unwrap();
    // K_SET_STOP takes the only live key away: the stop is acknowledged and the locked TDI
    // is in ERROR.
    let ack = vendor(&mut req, &mut io, keyprog::ualink_stop(t));
    keyprog::expect_gostop_ack(&ack, t).unwrap();
    assert!(!io.responder.device().key_sink().any_live());
    assert_eq!(
        tdi.parse_state(&vendor(&mut req, &mut io, tdi.get_state()))
            .unwrap(),
        TdiState::Error
    );
}

#[test]
fn an_unlocked_tdi_is_untouched_by_key_revocation() {
    let asym = AsymAlg::EcdsaP256;
    let mut rsp = responder(asym);
    let mut req = requester(config(SpdmVersion::V12, asym), asym);
    let mut io = Loop::new(&mut rsp);
    attest(&mut req, &mut io).unwrap();
    let tdi = TdispRequester::new(InterfaceId::new(SOFT_TDI).unwrap());
    let t = target();
    let ack = vendor(
        &mut req,
        &mut io,
        keyprog::ualink_key_prog(t, 1, &key()).to_vec(),
    );
    keyprog::expect_kp_ack(&ack, t, 1).unwrap();
    keyprog::expect_gostop_ack(&vendor(&mut req, &mut io, keyprog::ualink_go(t)), t).unwrap();
    keyprog::expect_gostop_ack(&vendor(&mut req, &mut io, keyprog::ualink_stop(t)), t).unwrap();
    assert_eq!(
        tdi.parse_state(&vendor(&mut req, &mut io, tdi.get_state()))
            .unwrap(),
        TdiState::ConfigUnlocked
    );
}

#[test]
fn the_device_zeroes_the_key_payload_in_place() {
    use ualink_spdm::device::{Channel, Device, VendorProtocol};
    let mut dev = device(AsymAlg::EcdsaP256);
    let t = target();
    // In a session: programmed, and the caller's buffer holds no key byte afterwards.
    let mut buf = keyprog::ualink_key_prog(t, 1, &key()).to_vec();
    let ack = dev
        .vendor_request_in_place(
            VendorProtocol::KeyProgramming,
            Channel::Secured(7),
            &mut buf,
        )
        .unwrap()
        .unwrap();
    keyprog::expect_kp_ack(&ack, t, 1).unwrap();
    assert!(buf.iter().all(|b| *b == 0));
    assert!(dev.key_sink().holds(t, &key()));
    // In the clear: refused with SessionRequired, and zeroed all the same.
    let t2 = KeyTarget {
        slot: Slot::Alternate,
        ..t
    };
    let mut buf = keyprog::ualink_key_prog(t2, 2, &key()).to_vec();
    let err = dev
        .vendor_request_in_place(VendorProtocol::KeyProgramming, Channel::Clear, &mut buf)
        .unwrap()
        .unwrap_err();
    assert_eq!(err.wire_code(), (0x0B, 0));
    assert!(buf.iter().all(|b| *b == 0));
    assert!(!dev.key_sink().holds(t2, &key()));
}
