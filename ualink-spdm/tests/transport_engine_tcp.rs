//! Our requester against our responder over real TCP with the spdm-emu framing, on every
//! transport binding: attestation, session, heartbeat, key update, end session, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod engine_common;

use std::thread;

use engine_common::{anchors, device};
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::driver::{attest, request};
use ualink_spdm::requester::{
    AppRequest, AppResponse, KeyUpdateKind, Requester, RequesterConfig, SecuredFraming,
    SessionConfig,
};
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::transport::emu_socket::{EmuClient, EmuConfig, EmuServer, ServerEvent};
use ualink_spdm::transport::Transport;

fn framing(t: Transport) -> SecuredFraming {
    SecuredFraming::for_transport(t)
}

/// Serves one connection with a fresh responder until SHUTDOWN; returns how many SPDM or
/// secured messages it answered.
fn serve(server: EmuServer, asym: AsymAlg, transport: Transport) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let config = ResponderConfig {
            secured: framing(transport),
            ..ResponderConfig::default()
        };
        let mut responder = Responder::new(device(asym), config);
        let mut conn = server.accept().unwrap();
        let mut answered = 0;
        loop {
            match conn.next_event().unwrap() {
                ServerEvent::Message(kind, msg) => {
                    if let Some(out) = responder.handle(kind, &msg) {
                        conn.send_response(out.kind, &out.bytes).unwrap();
                        answered += 1;
                    }
                }
                ServerEvent::Shutdown => return answered,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
}

fn run(transport: Transport, version: SpdmVersion, asym: AsymAlg, session: bool) {
    let config = EmuConfig::new(transport);
    let server = EmuServer::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr().unwrap();
    let handle = serve(server, asym, transport);

    let mut client = EmuClient::connect(addr, config).unwrap();
    if transport == Transport::PciDoe {
        assert_eq!(client.doe_discovery().unwrap().len(), 3);
    }
    let rc = RequesterConfig {
        versions: vec![version],
        algorithms: AlgorithmPolicy::suite(asym),
        session: session.then(SessionConfig::default),
        secured: framing(transport),
        cert_portion_len: 512,
        ..RequesterConfig::default()
    };
    let mut req = Requester::new(rc, anchors(asym)).unwrap();
    let a = attest(&mut req, &mut client).unwrap();
    assert_eq!(a.negotiated.version, version);
    assert_eq!(a.negotiated.asym, asym);
    assert!(a.challenge.is_some());
    if session {
        assert!(a.session_id.is_some());
        assert_eq!(
            request(&mut req, &mut client, AppRequest::Heartbeat).unwrap(),
            Some(AppResponse::HeartbeatAck)
        );
        assert_eq!(
            request(
                &mut req,
                &mut client,
                AppRequest::KeyUpdate(KeyUpdateKind::All)
            )
            .unwrap(),
            Some(AppResponse::KeysUpdated)
        );
        assert_eq!(
            request(&mut req, &mut client, AppRequest::Heartbeat).unwrap(),
            Some(AppResponse::HeartbeatAck)
        );
        assert_eq!(
            request(&mut req, &mut client, AppRequest::EndSession).unwrap(),
            None
        );
    }
    client.shutdown().unwrap();
    // VCA (3), DIGESTS, CERTIFICATE portions, CHALLENGE, MEASUREMENTS at least.
    assert!(handle.join().unwrap() >= 7);
}

#[test]
fn mctp_v13_p384_with_session() {
    run(Transport::Mctp, SpdmVersion::V13, AsymAlg::EcdsaP384, true);
}

#[test]
fn none_v12_p256_without_session() {
    run(Transport::None, SpdmVersion::V12, AsymAlg::EcdsaP256, false);
}

#[test]
fn pci_doe_v12_p256_with_session() {
    run(
        Transport::PciDoe,
        SpdmVersion::V12,
        AsymAlg::EcdsaP256,
        true,
    );
}

#[test]
fn pci_doe_v13_p384_with_session() {
    run(
        Transport::PciDoe,
        SpdmVersion::V13,
        AsymAlg::EcdsaP384,
        true,
    );
}
