//! The SPDM responder state machine fed arbitrary request sequences, at three stages: fresh,
//! after our requester negotiated (VCA + attestation), and inside a session our requester
//! established (then application requests built from the input travel sealed, so the
//! in-session handlers, TDISP and key programming included, see fuzzer-chosen plaintext).
//!
//! Input: one config byte
//!   bit0 curve (P-256, P-384) | bits 2:1 stage (0 fresh, 1 negotiated, 2 session, 3 fresh)
//!   | bit3 PCI DOE framing (else MCTP) | bit4 handshake in the clear | bit5 SPDM 1.3 (else 1.2)
//! then ops until the input ends (`chunk` = u16 LE length ‖ bytes):
//!   0 chunk   plain SPDM request;   1 chunk: secured record
//!   2 k chunk application request through our requester (k%4: HEARTBEAT, KEY_UPDATE,
//!             VENDOR_DEFINED with chunk as payload, END_SESSION); the answer goes back to it
//!
//! Oracles: no panic; a plain request is answered by a plain message with a response code;
//! when our requester fails, it stays failed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::{anchors, identity, Cursor};
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::device::SoftDevice;
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::{
    AppRequest, KeyUpdateKind, MeasurementPlan, Outbound, Progress, Requester, RequesterConfig,
    SecuredFraming, SessionConfig,
};
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::transport::MessageKind;

fn check_plain_answer(out: &Option<Outbound>) {
    match out {
        Some(o) => {
            assert!(
                o.kind == MessageKind::Spdm,
                "a plain request answered with a secured record"
            );
            let code = o.bytes.get(1).copied().unwrap_or(0xFF);
            assert!(
                o.bytes.len() >= 4 && code < 0x80,
                "plain answer is not an SPDM response: {:02x?}",
                o.bytes
            );
        }
        None => panic!("a plain request went unanswered"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let Some(cfg) = c.u8() else { return };
    let asym = if cfg & 1 == 0 {
        AsymAlg::EcdsaP256
    } else {
        AsymAlg::EcdsaP384
    };
    let stage = (cfg >> 1) & 3;
    let framing = if cfg & 8 == 0 {
        SecuredFraming::MCTP
    } else {
        SecuredFraming::PCI_DOE
    };
    let version = if cfg & 0x20 == 0 {
        SpdmVersion::V12
    } else {
        SpdmVersion::V13
    };
    let Ok(device) = SoftDevice::new(identity(asym), 7) else {
        panic!("fuzz setup: device")
    };
    let mut rsp = Responder::new(
        device,
        ResponderConfig {
            secured: framing,
            ..ResponderConfig::default()
        },
    );

    let mut req = None;
    if stage == 1 || stage == 2 {
        let config = RequesterConfig {
            versions: vec![version],
            algorithms: AlgorithmPolicy::suite(asym),
            cert_portion_len: 512,
            measurements: MeasurementPlan::AllSigned,
            session: (stage == 2).then_some(SessionConfig {
                handshake_in_the_clear: cfg & 0x10 != 0,
                ..SessionConfig::default()
            }),
            secured: framing,
            ..RequesterConfig::default()
        };
        let Ok(mut r) = Requester::new(config, anchors(asym)) else {
            panic!("fuzz setup: requester")
        };
        let Ok(mut out) = r.start() else {
            panic!("fuzz setup: start")
        };
        loop {
            let Some(answer) = rsp.handle(out.kind, &out.bytes) else {
                panic!("setup: responder silent")
            };
            match r.handle(answer.kind, &answer.bytes) {
                Ok(Progress::Send(next)) => out = next,
                Ok(_) => break,
                Err(e) => panic!("setup: our requester refused our responder: {e:?}"),
            }
        }
        req = Some(r);
    }

    for _ in 0..24 {
        let Some(op) = c.u8() else { break };
        match op % 3 {
            0 => {
                let m = c.chunk().unwrap_or_default();
                let out = rsp.handle(MessageKind::Spdm, m);
                check_plain_answer(&out);
            }
            1 => {
                let m = c.chunk().unwrap_or_default();
                let _ = rsp.handle(MessageKind::Secured, m);
            }
            _ => {
                let k = c.u8().unwrap_or(0);
                let payload = c.chunk().unwrap_or_default();
                let Some(r) = req.as_mut() else { continue };
                let app = match k % 4 {
                    0 => AppRequest::Heartbeat,
                    1 => AppRequest::KeyUpdate(if k & 4 == 0 {
                        KeyUpdateKind::RequestOnly
                    } else {
                        KeyUpdateKind::All
                    }),
                    2 => AppRequest::Vendor(zeroize::Zeroizing::new(payload.to_vec())),
                    _ => AppRequest::EndSession,
                };
                let Ok(mut out) = r.request(app) else {
                    continue;
                };
                // KEY_UPDATE takes two round trips (the update, then VerifyNewKey).
                for _ in 0..4 {
                    let Some(answer) = rsp.handle(out.kind, &out.bytes) else {
                        break;
                    };
                    match r.handle(answer.kind, &answer.bytes) {
                        Ok(Progress::Send(next)) => out = next,
                        Ok(_) => break,
                        Err(_) => {
                            assert!(r.is_failed(), "requester error without failing");
                            assert!(
                                r.request(AppRequest::Heartbeat).is_err(),
                                "failed requester still sends"
                            );
                            break;
                        }
                    }
                }
            }
        }
    }
});
