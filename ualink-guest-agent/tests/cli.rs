//! The `ualink-guest-agent` binary: `evidence` writes files `ualink-attest verify` accepts,
//! and refusals map to their exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use ualink_attest::pki::TrustAnchors;
use ualink_attest::snp::{SnpCerts, SnpVerifier};
use ualink_attest::{ExpectedReportData, UnixTime};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        let p = std::env::temp_dir().join(format!("ualink-ga-{tag}-{}", hex::encode(b)));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ualink-guest-agent"))
}

#[test]
fn sim_evidence_files_verify_under_the_sim_ark() {
    let d = TempDir::new("cli-ev");
    let out = d.path().join("ev.bin");
    let rd = "11".repeat(40);
    let o = agent()
        .args(["evidence", "--tee", "sim", "--sim-platform"])
        .arg(d.path().join("plat"))
        .args(["--report-data", &rd, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("--certs") && stderr.contains("ark.pem"),
        "{stderr}"
    );
    let read = |s: &str| std::fs::read(format!("{}{s}", out.display())).unwrap();
    let certs = SnpCerts {
        leaf: read(".vcek.der"),
        intermediates: vec![read(".ask.der")],
    };
    let ark = std::fs::read(d.path().join("plat/ark.pem")).unwrap();
    let mut expected = [0u8; 64];
    expected[..40].copy_from_slice(&[0x11; 40]);
    let v = SnpVerifier::new(TrustAnchors::empty().with_explicit_roots_pem(&ark).unwrap())
        .verify(
            &read(""),
            &certs,
            &ExpectedReportData::Expected(expected),
            UnixTime::now(),
        )
        .unwrap();
    assert!(v.report_data_checked);
    // Without the sim ARK the AMD roots alone refuse it.
    assert!(SnpVerifier::amd()
        .unwrap()
        .verify(
            &read(""),
            &certs,
            &ExpectedReportData::NotProvided,
            UnixTime::now()
        )
        .is_err());
}

#[test]
fn refusals_have_their_exit_codes() {
    // Too much report_data: usage (2).
    let o = agent()
        .args([
            "evidence",
            "--tee",
            "sample",
            "--report-data",
            &"00".repeat(65),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // sim without a platform directory: usage (2).
    let o = agent()
        .args(["evidence", "--tee", "sim", "--report-data", "00"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // A KBS nobody listens on: I/O (16), after the plain-HTTP warning.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let o = agent()
        .args([
            "kbs-get",
            "--kbs",
            &url,
            "--tee",
            "sample",
            "--resource",
            "default/key/a",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(16),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("plain HTTP"));
    // A malformed resource path: usage (2).
    let o = agent()
        .args([
            "kbs-get",
            "--kbs",
            &url,
            "--tee",
            "sample",
            "--resource",
            "../x",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sample_evidence_prints_trustee_json() {
    let o = agent()
        .args([
            "evidence",
            "--tee",
            "sample",
            "--report-data",
            &"ab".repeat(48),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["svn"], "1");
}

#[test]
fn tsm_commands_refuse_bad_arguments_and_unreachable_tsms() {
    let d = TempDir::new("cli-tsm");
    let plat = d.path().join("plat");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", l.local_addr().unwrap());
    drop(l);
    let conn = |cmd: &str| {
        let mut c = agent();
        c.args([cmd, "--tsm", &url, "--tenant", "tenant-a", "--tee", "sim"])
            .arg("--sim-platform")
            .arg(&plat)
            .arg("--trust")
            .arg(plat.join("ark.pem"));
        c
    };
    // Nobody listens: I/O (16), for every command that talks to the TSM.
    for cmd in ["attest-peers", "status"] {
        let o = conn(cmd).arg("--json").output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(16),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = conn("run").arg("--once").output().unwrap();
    assert_eq!(o.status.code(), Some(16));
    // An unknown right is a usage error (2) before anything is sent.
    let o = conn("export")
        .args([
            "--accelerator",
            "2",
            "--window-base",
            "0x0",
            "--len",
            "4096",
            "--to-tenant",
            "tenant-b",
            "--to-os",
            "1",
            "--rights",
            "read,execute",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // A --trust file that does not exist.
    let o = agent()
        .args(["status", "--tsm", &url, "--tenant", "a", "--tee", "sample"])
        .arg("--trust")
        .arg(d.path().join("missing.pem"))
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.pem"));
    // A tenant name that is not a path segment.
    let o = agent()
        .args(["status", "--tsm", &url, "--tenant", "a/b", "--tee", "sim"])
        .arg("--sim-platform")
        .arg(&plat)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
