//! `ualink-attest verify` on the real vectors and their negative cases, with exit codes; the
//! auditor trust store (`trust add/list/remove`) and `report` using it.
//!
//! Every command runs with `UALINK_ATTEST_TRUST_DIR` set to a directory of the test's own, so
//! the real home's trust store is never read or written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ualink-attest");

fn data(p: &str) -> String {
    format!("{}/tests/data/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String) {
    let empty =
        std::env::temp_dir().join(format!("ualink-attest-cli-no-store-{}", std::process::id()));
    run_with_store(&empty, args)
}

/// Runs the command with the trust store at `store` (never the real home's).
fn run_with_store(store: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("UALINK_ATTEST_TRUST_DIR", store)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A fresh directory of this test's own, removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let d =
            std::env::temp_dir().join(format!("ualink-attest-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    fn p(&self, n: &str) -> PathBuf {
        self.0.join(n)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn sha384_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA384, b))
}

/// A state directory whose log's only record is the TSM's identity, its evidence from a sim
/// platform (so the checkpoint key verifies only under that platform's ARK), sealed by a
/// checkpoint. Returns (state, the sim platform's directory).
fn sim_state(t: &TempDir) -> (PathBuf, PathBuf) {
    use ualink_attest::audit::event::{AuditEvent, Bytes, TsmEvidenceBytes};
    use ualink_attest::audit::{
        AuditLogWriter, AuditRecord, CheckpointSigner, DecisionKind, Outcome,
    };
    use ualink_attest::UnixTime;
    let state = t.p("state");
    std::fs::create_dir_all(&state).unwrap();
    let sim_dir = t.p("sim");
    let sim = ualink_attest::sim::SimPlatform::load_or_create(&sim_dir).unwrap();
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let rd = ualink_attest::tdi_report::tsm_report_data(signer.public_key());
    let now = UnixTime::now().secs();
    let rec = AuditRecord::new(
        UnixTime::from_secs(now),
        DecisionKind::Lifecycle,
        "tsm",
        Outcome::Info,
    )
    .unwrap()
    .with_event(AuditEvent::TsmIdentity {
        public_key: Bytes(signer.public_key().to_vec()),
        evidence: TsmEvidenceBytes {
            report: Bytes(sim.report(&rd).unwrap()),
            leaf: Bytes(sim.certs().leaf),
            intermediates: sim.certs().intermediates.into_iter().map(Bytes).collect(),
        },
    });
    let mut w = AuditLogWriter::create(&state.join("audit.log")).unwrap();
    w.append(&rec).unwrap();
    w.checkpoint(&signer, UnixTime::from_secs(now)).unwrap();
    (state, sim_dir)
}

#[test]
fn trust_add_list_remove_and_non_certificates_are_refused() {
    let t = TempDir::new("trust");
    let store = t.p("store");
    let sim_dir = t.p("sim");
    let p = ualink_attest::sim::SimPlatform::load_or_create(&sim_dir).unwrap();
    let ark = sim_dir.join("ark.pem");
    let run = |args: &[&str]| run_with_store(&store, args);

    // An empty (absent) store lists as empty.
    let (code, out) = run(&["trust", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(empty)") && out.contains(s(&store)), "{out}");

    // Not a certificate: refused with a clear error, nothing written.
    std::fs::write(t.p("junk.pem"), b"hello, I am a root").unwrap();
    let (code, out) = run(&["trust", "add", "--tee", s(&t.p("junk.pem"))]);
    assert_eq!(code, 10, "{out}");
    assert!(out.contains("is not a TEE root certificate"), "{out}");
    assert!(!store.join("tee").exists());
    // A certificate that is not a CA (the sim VCEK) is no TEE root either.
    let (code, out) = run(&["trust", "add", "--tee", s(&sim_dir.join("vcek.pem"))]);
    assert_eq!(code, 10, "{out}");
    // A private key is not a certificate.
    let (code, out) = run(&["trust", "add", "--device", s(&sim_dir.join("vcek.key"))]);
    assert_ne!(code, 0, "{out}");

    // Add the sim ARK (name from the file) and the same bytes as a device root, named.
    let (code, out) = run(&["trust", "add", "--tee", s(&ark)]);
    assert_eq!(code, 0, "{out}");
    let fp = sha384_hex(p.ark_der());
    assert!(out.contains("\"ark\"") && out.contains(&fp), "{out}");
    let entry = store.join("tee/ark.pem");
    assert!(entry.is_file());
    #[cfg(unix)]
    {
        assert_eq!(mode(&store), 0o700);
        assert_eq!(mode(&store.join("tee")), 0o700);
        assert_eq!(mode(&entry), 0o644);
    }
    // Same name, same content: a no-op; same name, other content: refused.
    assert_eq!(run(&["trust", "add", "--tee", s(&ark)]).0, 0);
    let other = t.p("other");
    ualink_attest::sim::SimPlatform::load_or_create(&other).unwrap();
    let (code, out) = run(&[
        "trust",
        "add",
        "--tee",
        s(&other.join("ark.pem")),
        "--name",
        "ark",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("already exists"), "{out}");
    let (code, out) = run(&["trust", "add", "--device", s(&ark), "--name", "vendor-x"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["trust", "add", "--tee", s(&ark), "--name", "../evil"]);
    assert_eq!(code, 2, "{out}");

    let (code, out) = run(&["trust", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tee") && out.contains("ark"), "{out}");
    assert!(out.contains("device") && out.contains("vendor-x"), "{out}");
    assert_eq!(out.matches(&fp).count(), 2, "{out}");

    let (code, out) = run(&["trust", "remove", "ark", "vendor-x"]);
    assert_eq!(code, 0, "{out}");
    assert!(!entry.exists());
    let (code, out) = run(&["trust", "remove", "ark"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no trust store entry"), "{out}");
    assert!(run(&["trust", "list"]).1.contains("(empty)"));
}

#[test]
fn report_trusts_the_store_names_what_vouched_and_refuses_a_store_inside_the_state() {
    let t = TempDir::new("report-store");
    let (state, sim_dir) = sim_state(&t);
    let ark = sim_dir.join("ark.pem");
    let store = t.p("store");

    // Bare: the sim TEE root is not trusted, so the checkpoint key is not established.
    let (code, out) = run_with_store(&store, &["report", "--state", s(&state)]);
    assert_eq!(code, 21, "{out}");
    assert!(!out.contains("Trust:"), "{out}");

    // With the ARK in the trust store: the bare command verifies, and says what vouched.
    let (code, out) = run_with_store(&store, &["trust", "add", "--tee", s(&ark), "--name", "sim"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_with_store(&store, &["report", "--state", s(&state)]);
    assert_eq!(code, 0, "{out}");
    let der = ualink_attest::pki::certs_from_pem_or_der(&std::fs::read(&ark).unwrap()).unwrap();
    let fp = sha384_hex(&der[0]);
    let line = out
        .lines()
        .find(|l| l.contains("store tee"))
        .unwrap_or_else(|| panic!("no store line in {out}"));
    assert!(
        line.contains(s(&store.join("tee/sim.pem"))) && line.contains(&fp),
        "{line}"
    );
    assert!(out.contains("(from $UALINK_ATTEST_TRUST_DIR)"), "{out}");
    let (code, out) = run_with_store(
        &store,
        &["report", "--state", s(&state), "--format", "json"],
    );
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["trust"]["roots"][0]["sha384"], fp.as_str());

    // The same root given with --trust only (empty store) also verifies; with the store in
    // use, a flag's root is named beside the store's.
    let empty = t.p("empty-store");
    let (code, out) = run_with_store(
        &empty,
        &["report", "--state", s(&state), "--trust", s(&ark)],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_with_store(
        &store,
        &["report", "--state", s(&state), "--trust", s(&ark)],
    );
    assert_eq!(code, 0, "{out}");
    let flag = out
        .lines()
        .find(|l| l.trim_start().starts_with("--trust"))
        .unwrap_or_else(|| panic!("no --trust line in {out}"));
    assert!(flag.contains(s(&ark)) && flag.contains(&fp), "{flag}");

    // A trust store inside the audited directory is refused (the TSM could fill it).
    let inside = state.join("trust");
    let (code, out) = run_with_store(&inside, &["trust", "add", "--tee", s(&ark)]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_with_store(&inside, &["report", "--state", s(&state)]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("inside the audited directory"), "{out}");

    // An entry that is a symlink into the audited directory is refused too.
    #[cfg(unix)]
    {
        let linked = t.p("linked-store");
        let (code, out) = run_with_store(&linked, &["trust", "add", "--tee", s(&ark)]);
        assert_eq!(code, 0, "{out}");
        std::fs::copy(&ark, state.join("planted.pem")).unwrap();
        std::os::unix::fs::symlink(state.join("planted.pem"), linked.join("tee/planted.pem"))
            .unwrap();
        let (code, out) = run_with_store(&linked, &["report", "--state", s(&state)]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains("inside the audited directory"), "{out}");
    }

    // A store others can write to is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(store.join("tee"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let (code, out) = run_with_store(&store, &["report", "--state", s(&state)]);
        assert_eq!(code, 16, "{out}");
        assert!(out.contains("writable by group or others"), "{out}");
    }
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
