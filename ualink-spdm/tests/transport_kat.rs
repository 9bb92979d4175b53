//! Known answers from the captured sessions: every transport payload the reference peers
//! exchanged decodes and re-encodes to the same bytes, and our DOE discovery responder
//! answers the captured discovery requests with the captured responses.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use ualink_spdm::transport::doe::{self, DataObjectType};
use ualink_spdm::transport::{mctp, MessageKind, Received, Transport};

/// The raw record payloads of a classic little-endian pcap.
fn raw_records(name: &str) -> Vec<Vec<u8>> {
    let bytes = common::data(name);
    let (mut rest, _) = pcap_parser::parse_pcap_header(&bytes).unwrap();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (next, frame) = pcap_parser::parse_pcap_frame(rest).unwrap();
        out.push(frame.data.to_vec());
        rest = next;
    }
    out
}

#[test]
fn mctp_payloads_round_trip() {
    for name in ["v13_p384_session.pcap", "v12_p256_nosession.pcap"] {
        let records = raw_records(name);
        assert!(records.len() >= 30);
        for rec in records {
            // 4-byte MCTP transport header, then the spdm-emu socket payload.
            assert_eq!(&rec[..4], &[0x00, 0x00, 0x00, 0xc0]);
            let payload = &rec[4..];
            let Received::Message(kind, msg) = Transport::Mctp.decode(payload).unwrap() else {
                panic!("MCTP carries no discovery");
            };
            assert_eq!(Transport::Mctp.encode(kind, msg).unwrap(), payload);
            assert_eq!(mctp::encapsulate(kind, msg), payload);
            if kind == MessageKind::Secured {
                assert_eq!(payload[0], mctp::MCTP_TYPE_SECURED_SPDM);
            }
        }
    }
}

#[test]
fn doe_objects_round_trip_and_discovery_is_answered_as_captured() {
    let records = raw_records("tsm_like_v12_p256_pcidoe.pcap");
    let mut discovery = Vec::new();
    let mut secured = 0;
    for rec in &records {
        let (ty, payload) = doe::decode(rec).unwrap();
        assert_eq!(doe::encode(ty, payload).unwrap(), *rec);
        match ty {
            DataObjectType::Discovery => discovery.push(rec.clone()),
            DataObjectType::SecuredSpdm => secured += 1,
            DataObjectType::Spdm => {}
        }
    }
    assert!(secured > 100);
    assert_eq!(discovery.len(), 6);
    for pair in discovery.chunks(2) {
        let (_, request) = doe::decode(&pair[0]).unwrap();
        assert_eq!(doe::answer_discovery(request).unwrap(), pair[1]);
    }
    // And our requester side produces the captured requests.
    for (index, pair) in discovery.chunks(2).enumerate() {
        assert_eq!(
            doe::discovery_request(u8::try_from(index).unwrap()).unwrap(),
            pair[0]
        );
    }
}
