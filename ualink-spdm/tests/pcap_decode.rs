//! The three spdm-emu captures decode to the same records, bytes and lines as the reference
//! transcripts beside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use ualink_spdm::pcap::{Capture, LinkType, PcapError, RecordKind};

const CAPTURES: [(&str, LinkType); 3] = [
    ("v13_p384_session", LinkType::Mctp),
    ("tsm_like_v12_p256_pcidoe", LinkType::PciDoe),
    ("v12_p256_nosession", LinkType::Mctp),
];

#[test]
fn every_record_matches_the_transcript() {
    for (name, link) in CAPTURES {
        let cap = Capture::parse(&common::data(&format!("{name}.pcap"))).unwrap();
        assert_eq!(cap.link, link, "{name}");
        let reference = common::transcript(&format!("{name}.transcript.full.txt"));
        assert_eq!(cap.records.len(), reference.len(), "{name}: record count");
        let lines = cap.decode_lines();
        let mut compared_lines = 0;
        for ((rec, line), want) in cap.records.iter().zip(&lines).zip(&reference) {
            assert_eq!(rec.index, want.index, "{name}");
            assert_eq!(rec.message, want.bytes, "{name} #{}: bytes", rec.index);
            let (idx, decode) = line.split_once(' ').unwrap();
            assert_eq!(idx, format!("#{:04}", want.index));
            match rec.kind {
                RecordKind::Spdm => {
                    assert!(want.is_spdm(), "{name} #{}", rec.index);
                    assert_eq!(decode, want.decode, "{name} #{}", rec.index);
                    compared_lines += 1;
                }
                RecordKind::Secured => {
                    assert!(want.is_secured(), "{name} #{}", rec.index);
                    assert_eq!(decode, want.decode, "{name} #{}", rec.index);
                    compared_lines += 1;
                }
                RecordKind::DoeDiscovery => {
                    // The reference decoder prints these as `mctp_type=0x100`.
                    assert_eq!(link, LinkType::PciDoe);
                    assert!(
                        want.decode.starts_with("mctp_type="),
                        "{name} #{}",
                        rec.index
                    );
                    assert!(decode.starts_with("DOE_DISCOVERY "));
                }
            }
        }
        // Every non-discovery line is identical to the reference.
        let discovery = cap
            .records
            .iter()
            .filter(|r| r.kind == RecordKind::DoeDiscovery)
            .count();
        assert_eq!(compared_lines + discovery, reference.len(), "{name}");
    }
}

#[test]
fn doe_discovery_walk_decodes_as_reference_table() {
    let cap = Capture::parse(&common::data("tsm_like_v12_p256_pcidoe.pcap")).unwrap();
    let lines = cap.decode_lines();
    assert_eq!(
        &lines[..7],
        &[
            "#0000 DOE_DISCOVERY request index=0",
            "#0001 DOE_DISCOVERY response vendor=0x0001 type=0 next=1",
            "#0002 DOE_DISCOVERY request index=1",
            "#0003 DOE_DISCOVERY response vendor=0x0001 type=1 next=2",
            "#0004 DOE_DISCOVERY request index=2",
            "#0005 DOE_DISCOVERY response vendor=0x0001 type=2 next=0",
            "#0006 SPDM v1.0 GET_VERSION(0x84) p1=0x00 p2=0x00 len=4",
        ]
    );
}

#[test]
fn truncated_or_extended_files_are_refused() {
    let bytes = common::data("v12_p256_nosession.pcap");
    for cut in [10, 24 + 8, bytes.len() - 1] {
        assert!(Capture::parse(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert_eq!(
        Capture::parse(&extra),
        Err(PcapError::TruncatedRecord { index: 30 })
    );
    // A record whose MCTP message type is not SPDM.
    let mut bad = bytes.clone();
    bad[24 + 16 + 4] = 0x7E;
    assert!(matches!(
        Capture::parse(&bad),
        Err(PcapError::BadRecord { index: 0, .. })
    ));
}

#[test]
fn mctp_captures_reproduce_the_reference_transcripts_byte_for_byte() {
    for name in ["v13_p384_session", "v12_p256_nosession"] {
        let cap = Capture::parse(&common::data(&format!("{name}.pcap"))).unwrap();
        let want = String::from_utf8(common::data(&format!("{name}.transcript.full.txt"))).unwrap();
        assert_eq!(cap.to_transcript(), want, "{name}");
    }
    // On DOE only the discovery headers differ (the reference prints `mctp_type=0x100`).
    let cap = Capture::parse(&common::data("tsm_like_v12_p256_pcidoe.pcap")).unwrap();
    let want =
        String::from_utf8(common::data("tsm_like_v12_p256_pcidoe.transcript.full.txt")).unwrap();
    let ours = cap.to_transcript();
    assert_eq!(ours.lines().count(), want.lines().count());
    let differing: Vec<_> = ours
        .lines()
        .zip(want.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(differing.len(), 6);
    assert!(differing
        .iter()
        .all(|(a, b)| a.contains("DOE_DISCOVERY") && b.ends_with("mctp_type=0x100")));
}
