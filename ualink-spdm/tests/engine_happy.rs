//! Our requester against our responder, in memory: every version × curve × handshake mode.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_common;

use engine_common::*;
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::driver::{attest, request};
use ualink_spdm::requester::{
    AppRequest, AppResponse, KeyUpdateKind, MeasurementPlan, RequesterConfig, SessionConfig,
};

fn config(version: SpdmVersion, asym: AsymAlg, in_clear: bool) -> RequesterConfig {
    RequesterConfig {
        versions: vec![version],
        algorithms: AlgorithmPolicy::suite(asym),
        session: Some(SessionConfig {
            handshake_in_the_clear: in_clear,
            ..SessionConfig::default()
        }),
        cert_portion_len: 300,
        ..RequesterConfig::default()
    }
}

fn full_run(version: SpdmVersion, asym: AsymAlg, in_clear: bool) {
    let mut rsp = responder(asym);
    let mut req = requester(config(version, asym, in_clear), asym);
    let mut io = Loop::new(&mut rsp);
    let a = attest(&mut req, &mut io).unwrap();
    assert_eq!(a.negotiated.version, version);
    assert_eq!(a.negotiated.asym, asym);
    assert_eq!(a.chain.subjects().len(), 2);
    assert!(a.challenge.is_some());
    let m = a.measurements.as_ref().unwrap();
    assert_eq!(m.blocks.len(), 5);
    assert!(m.l1.starts_with(&a.vca));
    let sid = a.session_id.unwrap();
    assert_eq!(a.heartbeat_period, 0);
    assert_eq!(req.session_id(), Some(sid));
    assert_eq!(
        request(&mut req, &mut io, AppRequest::Heartbeat).unwrap(),
        Some(AppResponse::HeartbeatAck)
    );
    // Fresh signed measurements inside the session; a firmware change shows up.
    let Some(AppResponse::Measurements(before)) =
        request(&mut req, &mut io, AppRequest::Measurements).unwrap()
    else {
        panic!("expected measurements")
    };
    assert_eq!(before.blocks, m.blocks);
    io.responder
        .device_mut()
        .set_measurement(2, b"ualink soft device firmware 1.1")
        .unwrap();
    let Some(AppResponse::Measurements(after)) =
        request(&mut req, &mut io, AppRequest::Measurements).unwrap()
    else {
        panic!("expected measurements")
    };
    assert_ne!(after.blocks[1].value, before.blocks[1].value);
    assert_eq!(after.blocks[0], before.blocks[0]);
    assert!(after.l1.starts_with(&a.vca));
    for kind in [KeyUpdateKind::RequestOnly, KeyUpdateKind::All] {
        assert_eq!(
            request(&mut req, &mut io, AppRequest::KeyUpdate(kind)).unwrap(),
            Some(AppResponse::KeysUpdated)
        );
        assert_eq!(
            request(&mut req, &mut io, AppRequest::Heartbeat).unwrap(),
            Some(AppResponse::HeartbeatAck)
        );
    }
    assert_eq!(
        request(&mut req, &mut io, AppRequest::EndSession).unwrap(),
        None
    );
    assert_eq!(io.responder.session_id(), None);
}

#[test]
fn v12_p256_encrypted_handshake() {
    full_run(SpdmVersion::V12, AsymAlg::EcdsaP256, false);
}

#[test]
fn v12_p256_handshake_in_the_clear() {
    full_run(SpdmVersion::V12, AsymAlg::EcdsaP256, true);
}

#[test]
fn v12_p384_encrypted_handshake() {
    full_run(SpdmVersion::V12, AsymAlg::EcdsaP384, false);
}

#[test]
fn v12_p384_handshake_in_the_clear() {
    full_run(SpdmVersion::V12, AsymAlg::EcdsaP384, true);
}

#[test]
fn v13_p256_encrypted_handshake() {
    full_run(SpdmVersion::V13, AsymAlg::EcdsaP256, false);
}

#[test]
fn v13_p256_handshake_in_the_clear() {
    full_run(SpdmVersion::V13, AsymAlg::EcdsaP256, true);
}

#[test]
fn v13_p384_encrypted_handshake() {
    full_run(SpdmVersion::V13, AsymAlg::EcdsaP384, false);
}

#[test]
fn v13_p384_handshake_in_the_clear() {
    full_run(SpdmVersion::V13, AsymAlg::EcdsaP384, true);
}

#[test]
fn default_config_negotiates_highest_version_and_walks_each_index() {
    let asym = AsymAlg::EcdsaP384;
    let mut rsp = responder(asym);
    let mut req = requester(
        RequesterConfig {
            measurements: MeasurementPlan::EachIndex,
            session: None,
            ..RequesterConfig::default()
        },
        asym,
    );
    let mut io = Loop::new(&mut rsp);
    let a = attest(&mut req, &mut io).unwrap();
    assert_eq!(a.negotiated.version, SpdmVersion::V13);
    let m = a.measurements.unwrap();
    assert_eq!(
        m.blocks.iter().map(|b| b.index).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    // L1 = A ‖ count pair ‖ 5 index pairs (the last without its signature).
    assert_eq!(a.session_id, None);
    assert!(m.l1.len() > a.vca.len() + 6 * 40);
}

#[test]
fn over_pci_doe_and_mctp_framing() {
    use ualink_spdm::requester::{AppRequest, Progress, SecuredFraming};
    use ualink_spdm::responder::{Responder, ResponderConfig};
    use ualink_spdm::transport::Transport;
    for transport in [Transport::PciDoe, Transport::Mctp] {
        for in_clear in [false, true] {
            let asym = AsymAlg::EcdsaP256;
            let framing = SecuredFraming::for_transport(transport);
            let mut rsp = Responder::new(
                device(asym),
                ResponderConfig {
                    secured: framing,
                    heartbeat_period: 30,
                    ..ResponderConfig::default()
                },
            );
            let mut req = requester(
                RequesterConfig {
                    secured: framing,
                    ..config(SpdmVersion::V12, asym, in_clear)
                },
                asym,
            );
            let first = req.start().unwrap();
            let p = run_over(transport, &mut req, &mut rsp, first).unwrap();
            let Progress::Attested(a) = p else {
                panic!("{transport:?}: {p:?}")
            };
            assert_eq!(a.heartbeat_period, 30);
            let hb = req.request(AppRequest::Heartbeat).unwrap();
            let p = run_over(transport, &mut req, &mut rsp, hb).unwrap();
            assert!(matches!(p, Progress::Response(AppResponse::HeartbeatAck)));
        }
    }
}

#[test]
fn engines_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<ualink_spdm::requester::Requester>();
    send::<ualink_spdm::responder::Responder<ualink_spdm::device::SoftDevice>>();
    // A device survives its connection: a second requester attests it again.
    let asym = AsymAlg::EcdsaP256;
    let mut rsp = responder(asym);
    for _ in 0..2 {
        let mut req = requester(config(SpdmVersion::V12, asym, false), asym);
        let mut io = Loop::new(&mut rsp);
        attest(&mut req, &mut io).unwrap();
    }
    let dev = rsp.into_device();
    let mut rsp = ualink_spdm::responder::Responder::new(dev, Default::default());
    let mut req = requester(config(SpdmVersion::V13, asym, true), asym);
    let mut io = Loop::new(&mut rsp);
    assert_eq!(
        attest(&mut req, &mut io).unwrap().negotiated.version,
        SpdmVersion::V13
    );
}
