//! Properties: transport and capture decoders never panic, and encode/decode round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use proptest::prelude::*;
use ualink_spdm::pcap::Capture;
use ualink_spdm::transport::doe::{self, DiscoveryRequest, DiscoveryResponse};
use ualink_spdm::transport::emu_socket::read_frame;
use ualink_spdm::transport::{mctp, MessageKind, Received, Transport};

fn kind() -> impl Strategy<Value = MessageKind> {
    prop_oneof![Just(MessageKind::Spdm), Just(MessageKind::Secured)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for t in [Transport::None, Transport::Mctp, Transport::PciDoe] {
            let _ = t.decode(&bytes);
        }
        let _ = mctp::decapsulate(&bytes);
        let _ = doe::decode(&bytes);
        let _ = doe::answer_discovery(&bytes);
        let _ = DiscoveryRequest::parse(&bytes);
        let _ = DiscoveryResponse::parse(&bytes);
        let _ = read_frame(&mut &bytes[..], 256);
        let _ = Capture::parse(&bytes);
    }

    #[test]
    fn transports_round_trip(k in kind(), msg in proptest::collection::vec(any::<u8>(), 1..300)) {
        for t in [Transport::Mctp, Transport::PciDoe] {
            let wire = t.encode(k, &msg).unwrap();
            match t.decode(&wire).unwrap() {
                Received::Message(k2, m) => {
                    prop_assert_eq!(k2, k);
                    prop_assert_eq!(&m[..msg.len()], &msg[..]);
                    prop_assert!(m.len() - msg.len() < 4);
                }
                Received::DoeDiscovery(_) => prop_assert!(false, "not discovery"),
            }
        }
    }

    #[test]
    fn mutated_captures_never_panic(pos in 0usize..4000, val in any::<u8>(), cut in 0usize..4000) {
        let mut bytes = common::data("tsm_like_v12_p256_pcidoe.pcap");
        let pos = pos % bytes.len();
        bytes[pos] = val;
        bytes.truncate(cut.max(1) * bytes.len() / 4000);
        if let Ok(cap) = Capture::parse(&bytes) {
            prop_assert_eq!(cap.decode_lines().len(), cap.records.len());
        }
    }
}
