//! Both state machines fed arbitrary or corrupted peer bytes: never a panic, and a requester
//! that returned an error stays failed. (The cargo-fuzz targets run the same idea longer.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engine_common;

use engine_common::*;
use proptest::prelude::*;
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::{AppRequest, Outbound, Progress, RequesterConfig, SessionConfig};
use ualink_spdm::transport::MessageKind;

const P256: AsymAlg = AsymAlg::EcdsaP256;

fn cfg(version: SpdmVersion, in_clear: bool) -> RequesterConfig {
    RequesterConfig {
        versions: vec![version],
        algorithms: AlgorithmPolicy::suite(P256),
        session: Some(SessionConfig {
            handshake_in_the_clear: in_clear,
            ..SessionConfig::default()
        }),
        cert_portion_len: 256,
        ..RequesterConfig::default()
    }
}

fn kind(secured: bool) -> MessageKind {
    if secured {
        MessageKind::Secured
    } else {
        MessageKind::Spdm
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Arbitrary requests at a fresh, a negotiated and an in-session responder.
    #[test]
    fn responder_survives_arbitrary_requests(
        msgs in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..160)), 1..12),
        stage in 0u8..3,
    ) {
        let mut rsp = responder(P256);
        if stage > 0 {
            let mut req = requester(
                RequesterConfig { session: (stage == 2).then(SessionConfig::default), ..cfg(SpdmVersion::V13, false) },
                P256,
            );
            let first = req.start().unwrap();
            run(&mut req, &mut rsp, first).unwrap();
        }
        for (secured, mut bytes) in msgs {
            // Make some of them look like real requests of the negotiated version.
            if let Some(b) = bytes.get_mut(0) {
                if *b & 1 == 0 { *b = 0x13; }
            }
            let _ = rsp.handle(kind(secured), &bytes);
        }
    }

    /// One response of a real exchange replaced by arbitrary bytes.
    #[test]
    fn requester_survives_an_arbitrary_response(
        at in 0usize..16,
        junk in proptest::collection::vec(any::<u8>(), 0..200),
        secured in any::<bool>(),
        in_clear in any::<bool>(),
    ) {
        let mut rsp = responder(P256);
        let mut req = requester(cfg(SpdmVersion::V12, in_clear), P256);
        let mut out = req.start().unwrap();
        let mut n = 0;
        loop {
            let real = rsp.handle(out.kind, &out.bytes);
            let answer = if n == at {
                Outbound { kind: kind(secured), bytes: junk.clone() }
            } else {
                match real { Some(a) => a, None => break }
            };
            n += 1;
            match req.handle(answer.kind, &answer.bytes) {
                Ok(Progress::Send(next)) => out = next,
                Ok(_) => break,
                Err(_) => {
                    prop_assert!(req.is_failed());
                    prop_assert!(req.request(AppRequest::Heartbeat).is_err());
                    break;
                }
            }
        }
    }

    /// One byte of one real response flipped (signed, MACed and encrypted data included):
    /// either harmless or an error, never a panic; attestation never succeeds with a
    /// corrupted signed field.
    #[test]
    fn requester_survives_a_corrupted_response(
        at in 0usize..16,
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        truncate in any::<bool>(),
    ) {
        let mut rsp = responder(P256);
        let mut req = requester(cfg(SpdmVersion::V13, false), P256);
        let mut out = req.start().unwrap();
        let mut n = 0;
        let mut corrupted = false;
        while let Some(mut answer) = rsp.handle(out.kind, &out.bytes) {
            if n == at && !answer.bytes.is_empty() {
                let i = pos.index(answer.bytes.len());
                if truncate { answer.bytes.truncate(i); } else { answer.bytes[i] ^= flip; }
                corrupted = true;
            }
            n += 1;
            match req.handle(answer.kind, &answer.bytes) {
                Ok(Progress::Send(next)) => out = next,
                Ok(p) => {
                    // Every response byte is covered by a signature or a MAC.
                    prop_assert!(!corrupted, "attested despite a corrupted response: {p:?}");
                    break;
                }
                Err(_) => { prop_assert!(req.is_failed()); break; }
            }
        }
    }
}
