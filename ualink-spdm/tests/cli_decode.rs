//! `ualink-spdm decode` reproduces the reference transcripts of the spdm-emu captures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_common;

use cli_common::{bin, data, run, Outcome};

fn decode(name: &str, hex: bool) -> Outcome {
    let mut cmd = bin();
    cmd.arg("decode").arg(data(name));
    if hex {
        cmd.arg("--hex");
    }
    let out = run(cmd);
    assert_eq!(out.code(), Some(0), "{out:?}");
    out
}

fn reference(name: &str) -> String {
    std::fs::read_to_string(data(&format!("{name}.transcript.full.txt"))).unwrap()
}

#[test]
fn mctp_captures_decode_to_the_reference_transcripts_byte_for_byte() {
    for name in ["v13_p384_session", "v12_p256_nosession"] {
        let out = decode(&format!("{name}.pcap"), true);
        assert_eq!(out.stdout, reference(name), "{name}");
    }
}

#[test]
fn decode_prints_one_line_per_message() {
    for name in ["v13_p384_session", "v12_p256_nosession"] {
        let out = decode(&format!("{name}.pcap"), false);
        let reference = reference(name);
        let want: Vec<&str> = reference.lines().filter(|l| l.starts_with('#')).collect();
        let want = want.join("\n") + "\n";
        assert_eq!(out.stdout, want, "{name}");
    }
}

#[test]
fn pci_doe_capture_matches_except_the_discovery_headers() {
    let name = "tsm_like_v12_p256_pcidoe";
    let out = decode(&format!("{name}.pcap"), true);
    let want = reference(name);
    assert_eq!(out.stdout.lines().count(), want.lines().count());
    let differing: Vec<(&str, &str)> = out
        .stdout
        .lines()
        .zip(want.lines())
        .filter(|(a, b)| a != b)
        .collect();
    // The reference labels the six DOE discovery objects `mctp_type=0x100`; we name them.
    assert_eq!(differing.len(), 6, "{differing:?}");
    for (ours, theirs) in &differing {
        assert!(ours.contains("DOE_DISCOVERY"), "{ours}");
        assert!(theirs.ends_with("mctp_type=0x100"), "{theirs}");
        assert_eq!(ours.get(..6), theirs.get(..6));
    }
    assert!(out
        .stdout
        .contains("#0003 DOE_DISCOVERY response vendor=0x0001 type=1 next=2\n"));
}

#[test]
fn a_file_that_is_not_a_capture_is_refused() {
    let mut cmd = bin();
    cmd.arg("decode").arg(data("README.md"));
    let out = run(cmd);
    assert_ne!(out.code(), Some(0));
    assert!(out.stderr.contains("not a classic pcap file"), "{out:?}");
    let mut cmd = bin();
    cmd.arg("decode").arg(data("no-such-file.pcap"));
    let out = run(cmd);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("cannot read"));
}
