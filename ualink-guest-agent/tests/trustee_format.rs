//! SNP evidence in a stock Trustee KBS's format (`EvidenceFormat::Trustee`), from real AMD
//! reports (tests/data/ORIGIN.md): the JSON deserializes through the `sev` crate's serde into
//! Trustee's `SnpEvidence` shape, the report it yields re-encodes to the raw bytes exactly,
//! and those bytes verify under AMD's roots, so the signature Trustee checks is the firmware's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sev::firmware::guest::AttestationReport;
use sev::firmware::host::{CertTableEntry, CertType};
use sev::parser::ByteParser as _;
use ualink_attest::pki::certs_from_pem_or_der;
use ualink_attest::snp::{SnpCerts, SnpVerifier};
use ualink_attest::{ExpectedReportData, UnixTime};
use ualink_guest_agent::evidence::{Evidence, EvidenceFormat, TeeKind};
use ualink_guest_agent::ErrorClass;

/// Inside the validity of every certificate in the vectors (the VLEK expires 2025-12-10).
const NOW: UnixTime = UnixTime::from_secs(1_748_736_000);

/// Trustee's `deps/verifier/src/snp` struct, written out here: what a stock KBS deserializes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrusteeSnpEvidence {
    attestation_report: AttestationReport,
    cert_chain: Option<Vec<CertTableEntry>>,
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/snp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn milan_report() -> Vec<u8> {
    hex::decode(String::from_utf8(data("report_milan.hex")).unwrap().trim()).unwrap()
}

/// The Milan ASK (first in the PEM: ASK, ARK, ASVK).
fn milan_ask() -> Vec<u8> {
    certs_from_pem_or_der(&data("milan_ask_ark_asvk.pem"))
        .unwrap()
        .remove(0)
}

fn snp(raw: Vec<u8>, certs: Option<SnpCerts>) -> Evidence {
    Evidence {
        tee: TeeKind::Snp,
        source: "test",
        raw,
        certs,
    }
}

/// The three real reports with their certificates (VCEK + ASK, or VLEK + ASVK).
fn vectors() -> Vec<(&'static str, Vec<u8>, SnpCerts)> {
    let pem = certs_from_pem_or_der(&data("milan_ask_ark_asvk.pem")).unwrap();
    vec![
        (
            "virtee Milan v2 (VCEK)",
            milan_report(),
            SnpCerts {
                leaf: data("vcek_milan.der"),
                intermediates: vec![milan_ask()],
            },
        ),
        (
            "Trustee v2 (VCEK)",
            data("test-report.bin"),
            SnpCerts {
                leaf: data("test-vcek.der"),
                intermediates: vec![milan_ask()],
            },
        ),
        (
            "Trustee v3 (VLEK)",
            data("test-vlek-report.bin"),
            SnpCerts {
                leaf: data("test-vlek.der"),
                intermediates: vec![pem[2].clone()],
            },
        ),
    ]
}

#[test]
fn trustee_json_of_real_reports_round_trips_to_the_signed_bytes() {
    let amd = SnpVerifier::amd().unwrap();
    for (name, raw, certs) in vectors() {
        let j = snp(raw.clone(), Some(certs.clone()))
            .to_kbs_json_as(EvidenceFormat::Trustee)
            .unwrap();
        // Trustee's field names, nothing else.
        let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "{name}: {keys:?}");
        assert!(j.get("attestation_report").unwrap().is_object(), "{name}");
        assert!(j.get("cert_chain").unwrap().is_array(), "{name}");

        // Through the network as text, then through sev's serde as Trustee does.
        let text = serde_json::to_string(&j).unwrap();
        let ev: TrusteeSnpEvidence = serde_json::from_str(&text).unwrap();
        let back = ev.attestation_report.to_bytes().unwrap();
        assert_eq!(back.as_slice(), raw.as_slice(), "{name}: bytes differ");

        // The re-encoded bytes are the firmware-signed ones: they verify under AMD's roots.
        let v = amd
            .verify(&back, &certs, &ExpectedReportData::NotProvided, NOW)
            .unwrap();
        assert_eq!(v.report.report_data[..], raw[0x50..0x90], "{name}");

        // The chain: exactly one VCEK or VLEK with the DER as given (what Trustee looks for).
        let chain = ev.cert_chain.unwrap();
        let leaves: Vec<&CertTableEntry> = chain
            .iter()
            .filter(|e| matches!(e.cert_type, CertType::VCEK | CertType::VLEK))
            .collect();
        assert_eq!(leaves.len(), 1, "{name}");
        assert_eq!(leaves[0].data(), certs.leaf.as_slice(), "{name}");
    }
}

#[test]
fn trustee_json_known_fields_of_the_virtee_milan_report() {
    let raw = milan_report();
    let certs = SnpCerts {
        leaf: data("vcek_milan.der"),
        intermediates: vec![milan_ask()],
    };
    let j = snp(raw.clone(), Some(certs.clone()))
        .to_kbs_json_as(EvidenceFormat::Trustee)
        .unwrap();
    let r = &j["attestation_report"];
    let bytes = |v: &serde_json::Value| -> Vec<u8> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
            .collect()
    };
    assert_eq!(r["version"], 2);
    assert_eq!(r["vmpl"].as_u64().unwrap(), u64::from(raw[0x30]));
    assert_eq!(r["sig_algo"], 1);
    assert_eq!(bytes(&r["report_data"]), raw[0x50..0x90]);
    assert_eq!(bytes(&r["measurement"]), raw[0x90..0xC0]);
    assert_eq!(bytes(&r["chip_id"]), raw[0x1A0..0x1E0]);
    // The signature's R and S as the report holds them (72-byte little-endian fields).
    assert_eq!(bytes(&r["signature"]["r"]), raw[0x2A0..0x2E8]);
    assert_eq!(bytes(&r["signature"]["s"]), raw[0x2E8..0x330]);
    // Version 2: no CPUID or mitigation-vector fields.
    assert!(r["cpuid_fam_id"].is_null());
    assert!(r["launch_mit_vector"].is_null());
    // VCEK then ASK, as sev's CertType names them, DER as a byte array.
    let chain = j["cert_chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0]["cert_type"], "VCEK");
    assert_eq!(bytes(&chain[0]["data"]), certs.leaf);
    assert_eq!(chain[1]["cert_type"], "ASK");
    assert_eq!(bytes(&chain[1]["data"]), certs.intermediates[0]);
}

#[test]
fn trustee_vlek_chain_is_the_vlek_alone_and_no_certs_is_null() {
    let (_, raw, certs) = vectors().remove(2);
    let j = snp(raw.clone(), Some(certs.clone()))
        .to_kbs_json_as(EvidenceFormat::Trustee)
        .unwrap();
    let ev: TrusteeSnpEvidence = serde_json::from_value(j).unwrap();
    assert_eq!(
        ev.cert_chain.unwrap(),
        vec![CertTableEntry::new(CertType::VLEK, certs.leaf.clone())]
    );
    assert_eq!(ev.attestation_report.version, 3);
    let j = snp(raw, None)
        .to_kbs_json_as(EvidenceFormat::Trustee)
        .unwrap();
    assert!(j["cert_chain"].is_null());
}

#[test]
fn reports_sev_would_not_reproduce_are_refused_in_trustee_format_only() {
    // Non-zero reserved bytes: signed by the firmware but not fields of sev's
    // AttestationReport, so Trustee would check the signature over other bytes. Refused,
    // naming why; our own format still carries the bytes as they are. sev itself refuses
    // the skipped areas (0x4D after KEY_INFO, 0x188 before CHIP_ID); a reserved byte inside
    // CURRENT_TCB (0x3A on Milan) it parses and silently drops, which only the re-encoding
    // check catches.
    for (at, why) in [
        (0x4D, "cannot parse"),
        (0x188, "cannot parse"),
        (0x3A, "re-encodes the report differently from byte 0x3a"),
    ] {
        let mut raw = milan_report();
        raw[at] ^= 0x01;
        let e = snp(raw.clone(), None)
            .to_kbs_json_as(EvidenceFormat::Trustee)
            .unwrap_err();
        assert_eq!(e.class(), ErrorClass::Platform, "{at:#x}: {e}");
        assert!(e.to_string().contains(why), "{at:#x}: {e}");
        assert!(snp(raw, None)
            .to_kbs_json_as(EvidenceFormat::Ualink)
            .is_ok());
    }

    // A version 2 report with a masked (all-zero) chip id: sev cannot tell the generation.
    let mut raw = milan_report();
    raw[0x1A0..0x1E0].fill(0);
    let e = snp(raw, None)
        .to_kbs_json_as(EvidenceFormat::Trustee)
        .unwrap_err();
    assert!(e.to_string().contains("cannot parse"), "{e}");

    // A truncated report.
    let e = snp(milan_report()[..1000].to_vec(), None)
        .to_kbs_json_as(EvidenceFormat::Trustee)
        .unwrap_err();
    assert!(e.to_string().contains("1000 bytes"), "{e}");
}

#[test]
fn ualink_format_is_the_raw_bytes_and_tdx_sample_are_the_same_in_both() {
    let raw = milan_report();
    let j = snp(raw.clone(), None).to_kbs_json().unwrap();
    assert_eq!(
        j,
        snp(raw.clone(), None)
            .to_kbs_json_as(EvidenceFormat::Ualink)
            .unwrap()
    );
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(j["attestation_report"].as_str().unwrap())
            .unwrap(),
        raw
    );
    let tdx = Evidence {
        tee: TeeKind::Tdx,
        source: "test",
        raw: vec![7; 700],
        certs: None,
    };
    assert_eq!(
        tdx.to_kbs_json_as(EvidenceFormat::Trustee).unwrap(),
        tdx.to_kbs_json_as(EvidenceFormat::Ualink).unwrap()
    );
    assert_eq!(
        "trustee".parse::<EvidenceFormat>().unwrap(),
        EvidenceFormat::Trustee
    );
    assert_eq!(
        "ualink".parse::<EvidenceFormat>().unwrap(),
        EvidenceFormat::Ualink
    );
    assert_eq!(
        "bytes".parse::<EvidenceFormat>().unwrap_err().class(),
        ErrorClass::ApiMisuse
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Any report (a real one with random bytes changed, or random bytes) either is refused
    /// or travels as JSON that sev turns back into exactly those bytes; nothing panics.
    #[test]
    fn trustee_format_sends_exactly_the_report_or_refuses(
        edits in proptest::collection::vec((0usize..1184, 1u8..=255), 1..4),
        random in proptest::collection::vec(proptest::prelude::any::<u8>(), 1184),
    ) {
        let mut raw = milan_report();
        for (at, x) in edits {
            raw[at] ^= x;
        }
        for raw in [raw, random] {
            if let Ok(j) = snp(raw.clone(), None).to_kbs_json_as(EvidenceFormat::Trustee) {
                let ev: TrusteeSnpEvidence = serde_json::from_value(j).unwrap();
                let back = ev.attestation_report.to_bytes().unwrap();
                proptest::prop_assert_eq!(back.as_slice(), raw.as_slice());
            }
        }
    }
}
