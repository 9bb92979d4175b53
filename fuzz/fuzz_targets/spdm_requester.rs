//! The SPDM requester state machine fed arbitrary responses: the real responder answers the
//! first `n` requests, then the input supplies (or corrupts) the responses.
//!
//! Input: two config bytes
//!   b0: bit0 curve (P-256, P-384) | bit1 SPDM 1.3 (else 1.2) | bit2 session | bit3 handshake
//!       in the clear | bit4 PCI DOE framing (else MCTP) | bits 6:5 measurements (Skip,
//!       AllSigned, EachIndex, AllSigned) | bit7 no CHALLENGE
//!   b1: n, the number of real responses before the input takes over (n % 32)
//! then one op per later response (`chunk` = u16 LE length ‖ bytes):
//!   op bit0: secured record (else plain) | bit1: corrupt the real response instead:
//!     flip u8, pos u16 (flip 0: truncate at pos) — else: chunk, the response itself
//!
//! Oracles: no panic; a requester that returned an error stays failed and sends nothing more;
//! whenever the configuration signs or MACs every response (CHALLENGE, signed measurements or
//! a session), attestation never succeeds after a corrupted response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::{anchors, identity, Cursor};
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::device::SoftDevice;
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::{
    AppRequest, MeasurementPlan, Outbound, Progress, Requester, RequesterConfig, SecuredFraming,
    SessionConfig,
};
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::transport::MessageKind;

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let (Some(b0), Some(b1)) = (c.u8(), c.u8()) else {
        return;
    };
    let asym = if b0 & 1 == 0 {
        AsymAlg::EcdsaP256
    } else {
        AsymAlg::EcdsaP384
    };
    let version = if b0 & 2 == 0 {
        SpdmVersion::V12
    } else {
        SpdmVersion::V13
    };
    let framing = if b0 & 0x10 == 0 {
        SecuredFraming::MCTP
    } else {
        SecuredFraming::PCI_DOE
    };
    let measurements = match (b0 >> 5) & 3 {
        0 => MeasurementPlan::Skip,
        2 => MeasurementPlan::EachIndex,
        _ => MeasurementPlan::AllSigned,
    };
    let session = (b0 & 4 != 0).then_some(SessionConfig {
        handshake_in_the_clear: b0 & 8 != 0,
        ..SessionConfig::default()
    });
    let challenge = b0 & 0x80 == 0;
    let covered = challenge || measurements != MeasurementPlan::Skip || session.is_some();
    let config = RequesterConfig {
        versions: vec![version],
        algorithms: AlgorithmPolicy::suite(asym),
        cert_portion_len: 512,
        challenge,
        measurements,
        session,
        secured: framing,
        ..RequesterConfig::default()
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
    let Ok(mut req) = Requester::new(config, anchors(asym)) else {
        panic!("fuzz setup: requester")
    };
    let Ok(mut out) = req.start() else {
        panic!("fuzz setup: start")
    };
    let real_until = usize::from(b1 % 32);
    let mut corrupted = false;

    for n in 0..48 {
        let real = rsp.handle(out.kind, &out.bytes);
        let answer = if n < real_until {
            match real {
                Some(a) => a,
                None => break,
            }
        } else {
            let Some(op) = c.u8() else { break };
            let kind = if op & 1 == 0 {
                MessageKind::Spdm
            } else {
                MessageKind::Secured
            };
            if op & 2 != 0 {
                let Some(mut a) = real else { break };
                let flip = c.u8().unwrap_or(0);
                let pos = usize::from(c.u16().unwrap_or(0));
                if !a.bytes.is_empty() {
                    let i = pos % a.bytes.len();
                    if flip == 0 {
                        a.bytes.truncate(i);
                    } else {
                        a.bytes[i] ^= flip;
                    }
                    corrupted = true;
                }
                a
            } else {
                // A replacement may legitimately differ from the real response (DOE padding,
                // an ERROR the requester retries on), so only byte flips and truncations of real
                // responses feed the attestation oracle.
                let bytes = c.chunk().unwrap_or_default().to_vec();
                Outbound { kind, bytes }
            }
        };
        match req.handle(answer.kind, &answer.bytes) {
            Ok(Progress::Send(next)) => out = next,
            Ok(p) => {
                assert!(
                    !(covered && corrupted),
                    "attested despite a corrupted response: {p:?}"
                );
                break;
            }
            Err(_) => {
                assert!(req.is_failed(), "requester error without failing");
                assert!(
                    req.request(AppRequest::Heartbeat).is_err(),
                    "failed requester still sends"
                );
                break;
            }
        }
    }
});
