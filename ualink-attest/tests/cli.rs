//! `ualink-attest verify` on the real vectors and their negative cases, with exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ualink-attest");

fn data(p: &str) -> String {
    format!("{}/tests/data/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

const SNP_NOW: &str = "2025-06-01T00:00:00Z";

#[test]
fn snp_vectors_verify_from_hex_and_binary() {
    let (code, out) = run(&[
        "verify",
        &data("snp/report_milan.hex"),
        "--certs",
        &data("snp/vcek_milan.der"),
        "--now",
        SNP_NOW,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("AMD Milan ARK"), "{out}");
    let (code, out) = run(&[
        "verify",
        &data("snp/test-vlek-report.bin"),
        "--certs",
        &data("snp/test-vlek.der"),
        "--certs",
        &data("snp/milan_ask_ark_asvk.pem"),
        "--now",
        SNP_NOW,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["signer"], "VLEK");
}

#[test]
fn snp_negative_cases_exit_with_their_class() {
    // Expired VLEK (default now = the current time, after 2025-12-10): untrusted, 13.
    let (code, _) = run(&[
        "verify",
        &data("snp/test-vlek-report.bin"),
        "--certs",
        &data("snp/test-vlek.der"),
        "--certs",
        &data("snp/milan_ask_ark_asvk.pem"),
    ]);
    assert_eq!(code, 13);
    // Wrong report_data: binding, 14.
    let zeros = "00".repeat(64);
    let (code, _) = run(&[
        "verify",
        &data("snp/report_milan.hex"),
        "--certs",
        &data("snp/vcek_milan.der"),
        "--now",
        SNP_NOW,
        "--report-data",
        &zeros,
    ]);
    assert_eq!(code, 14);
    // A flipped signature bit: 12; an unknown version: 11; trailing bytes: 18 (not a report).
    let hex = std::fs::read_to_string(data("snp/report_milan.hex")).unwrap();
    let mut report = hex::decode(hex.trim()).unwrap();
    let dir = std::env::temp_dir().join(format!("ualink-attest-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    report[0x2A0] ^= 1;
    let f = dir.join("flipped.bin");
    std::fs::write(&f, &report).unwrap();
    let args = |p: &std::path::Path| {
        run(&[
            "verify",
            p.to_str().unwrap(),
            "--certs",
            &data("snp/vcek_milan.der"),
            "--now",
            SNP_NOW,
        ])
        .0
    };
    assert_eq!(args(&f), 12);
    report[0x2A0] ^= 1;
    report[0] = 9;
    std::fs::write(&f, &report).unwrap();
    assert_eq!(args(&f), 11);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tdx_vectors_verify_and_the_outdated_one_is_refused() {
    let (code, out) = run(&[
        "verify",
        &data("tdx/tdx_quote"),
        "--certs",
        &data("tdx/tdx_quote_collateral.json"),
        "--now",
        "2025-06-19T11:16:03Z",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tcb_status"], "UpToDate");
    assert_eq!(v["zero_padding_trimmed"], 70);
    let (code, _) = run(&[
        "verify",
        &data("tdx/tdx_quote_outdated"),
        "--certs",
        &data("tdx/tdx_quote_outdated_collateral.json"),
        "--now",
        "2026-02-18T11:58:51Z",
    ]);
    assert_eq!(code, 13);
}

#[test]
fn sim_report_needs_explicit_trust() {
    let dir = std::env::temp_dir().join(format!("ualink-attest-cli-sim-{}", std::process::id()));
    let p = ualink_attest::sim::SimPlatform::load_or_create(&dir).unwrap();
    let report = dir.join("report.bin");
    std::fs::write(&report, p.report(&[1; 64]).unwrap()).unwrap();
    let r = report.to_str().unwrap().to_string();
    let vcek = dir.join("vcek.pem").to_str().unwrap().to_string();
    let ask = dir.join("ask.pem").to_str().unwrap().to_string();
    let ark = dir.join("ark.pem").to_str().unwrap().to_string();
    let (code, _) = run(&["verify", &r, "--certs", &vcek, "--certs", &ask]);
    assert_eq!(code, 13);
    let (code, out) = run(&[
        "verify", &r, "--certs", &vcek, "--certs", &ask, "--trust", &ark,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("explicit"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_input_is_its_own_exit_code() {
    let (code, _) = run(&["verify", &data("snp/ORIGIN.md")]);
    assert_eq!(code, 18);
}

#[test]
fn log_verify_and_proofs_through_the_command() {
    use ualink_attest::audit::{
        AuditLogWriter, AuditRecord, CheckpointSigner, DecisionKind, Outcome,
    };
    use ualink_attest::UnixTime;
    let dir = std::env::temp_dir().join(format!("ualink-attest-cli-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let (signer, _) = CheckpointSigner::generate().unwrap();
    std::fs::write(p("tsm.pub"), hex::encode(signer.public_key())).unwrap();
    let mut w = AuditLogWriter::create(std::path::Path::new(&p("audit.log"))).unwrap();
    for i in 0..300u64 {
        let r = AuditRecord::new(
            UnixTime::from_secs(i as i64),
            DecisionKind::Share,
            "g",
            Outcome::Allow,
        )
        .unwrap();
        w.append(&r).unwrap();
        if i == 99 {
            std::fs::write(
                p("cp100"),
                w.checkpoint(&signer, UnixTime::from_secs(100)).unwrap(),
            )
            .unwrap();
        }
    }
    std::fs::write(
        p("cp300"),
        w.checkpoint(&signer, UnixTime::from_secs(300)).unwrap(),
    )
    .unwrap();
    drop(w);

    let (code, out) = run(&[
        "log",
        "verify",
        "--log",
        &p("audit.log"),
        "--key",
        &p("tsm.pub"),
        "--checkpoint",
        &p("cp100"),
        "--checkpoint",
        &p("cp300"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("300"), "{out}");

    let (code, proof) = run(&[
        "log",
        "prove-inclusion",
        "--log",
        &p("audit.log"),
        "--key",
        &p("tsm.pub"),
        "--seq",
        "42",
        "--size",
        "100",
    ]);
    assert_eq!(code, 0, "{proof}");
    std::fs::write(p("incl.json"), &proof).unwrap();
    let (code, out) = run(&[
        "log",
        "inclusion",
        "--proof",
        &p("incl.json"),
        "--checkpoint",
        &p("cp100"),
        "--key",
        &p("tsm.pub"),
    ]);
    assert_eq!(code, 0, "{out}");
    // Against the wrong checkpoint: proof invalid, exit 15.
    let (code, _) = run(&[
        "log",
        "inclusion",
        "--proof",
        &p("incl.json"),
        "--checkpoint",
        &p("cp300"),
        "--key",
        &p("tsm.pub"),
    ]);
    assert_eq!(code, 15);

    let (code, proof) = run(&[
        "log",
        "prove-consistency",
        "--log",
        &p("audit.log"),
        "--key",
        &p("tsm.pub"),
        "--old",
        "100",
        "--new",
        "300",
    ]);
    assert_eq!(code, 0, "{proof}");
    std::fs::write(p("cons.json"), &proof).unwrap();
    let (code, out) = run(&[
        "log",
        "consistency",
        "--proof",
        &p("cons.json"),
        "--old-checkpoint",
        &p("cp100"),
        "--new-checkpoint",
        &p("cp300"),
        "--key",
        &p("tsm.pub"),
    ]);
    assert_eq!(code, 0, "{out}");
    let mut v: serde_json::Value = serde_json::from_str(&proof).unwrap();
    let h = v["path"][0].as_str().unwrap().to_string();
    let flipped = format!("{}{}", if h.starts_with('0') { "1" } else { "0" }, &h[1..]);
    v["path"][0] = serde_json::Value::String(flipped);
    std::fs::write(p("cons.json"), v.to_string()).unwrap();
    let (code, _) = run(&[
        "log",
        "consistency",
        "--proof",
        &p("cons.json"),
        "--old-checkpoint",
        &p("cp100"),
        "--new-checkpoint",
        &p("cp300"),
        "--key",
        &p("tsm.pub"),
    ]);
    assert_eq!(code, 15);

    // Truncated log (last checkpoint and records cut) against the kept checkpoint: 15.
    let bytes = std::fs::read(p("audit.log")).unwrap();
    std::fs::write(p("cut.log"), &bytes[..bytes.len() / 2]).unwrap();
    let (code, out) = run(&[
        "log",
        "verify",
        "--log",
        &p("cut.log"),
        "--key",
        &p("tsm.pub"),
        "--checkpoint",
        &p("cp300"),
    ]);
    assert_eq!(code, 15, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
