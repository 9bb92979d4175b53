//! The provider command line against `ualink-tsm serve` running as a real child process on a
//! free loopback port: every provider subcommand, `--json` output, error codes and exit
//! codes, clients the service must refuse, and a graceful SIGTERM shutdown whose state
//! directory the auditor verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_ualink-tsm");

/// A served pod; killed if the test fails before it stops it.
struct Server {
    child: Option<Child>,
    url: String,
    state: PathBuf,
    /// Lines printed before "listening on".
    banner: Vec<String>,
}

impl Server {
    fn start(state: &Path, accelerators: u16) -> Self {
        Self::start_with(state, &["--accelerators", &accelerators.to_string()])
    }

    fn start_with(state: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--state")
            .arg(state)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = Vec::new();
        let url = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("serve exited early: {banner:?}"))
                .unwrap();
            if let Some(u) = line.strip_prefix("listening on ") {
                break u.to_string();
            }
            banner.push(line);
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                println!("[serve] {l}");
            }
        });
        Self {
            child: Some(child),
            url,
            state: state.to_path_buf(),
            banner,
        }
    }

    fn tls_dir(&self) -> PathBuf {
        self.state.join("tls")
    }

    /// Runs `ualink-tsm ARGS --tsm URL --tls-dir DIR`.
    fn cli_with(&self, tls_dir: &Path, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .args(["--tsm", &self.url, "--tls-dir"])
            .arg(tls_dir)
            .output()
            .unwrap()
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(&self.tls_dir(), args)
    }

    /// Runs a subcommand that must succeed with `--json`; its parsed answer.
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.cli(&a);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out)))
    }

    /// SIGTERM, then wait; the exit status and what it printed last.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn provider_subcommands_drive_a_served_pod_and_report_errors_by_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(&dir.path().join("state"), 4);
    assert!(
        srv.banner
            .iter()
            .any(|l| l == "bring-up: 4 attested, 0 quarantined"),
        "{:?}",
        srv.banner
    );

    // Tables by default.
    let out = srv.cli(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("devices.attested") && l.ends_with(" 4")),
        "{table}"
    );
    let out = srv.cli(&["devices"]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.lines().next().unwrap().starts_with("ID "), "{table}");
    assert_eq!(table.lines().count(), 5, "{table}");

    // --json is the raw answer.
    let devices = srv.json(&["devices"]);
    let devices = devices
        .as_array()
        .or_else(|| devices.get("devices").and_then(|d| d.as_array()))
        .unwrap();
    assert_eq!(devices.len(), 4);
    assert!(devices.iter().all(|d| d["status"]["status"] == "attested"));
    let one = srv.json(&["devices", "--id", "2"]);
    assert_eq!(one["id"], 2);

    // Onboarding, keys, TDISP lock, a window, rotation, re-attestation.
    let t = srv.json(&["tenant", "add", "--name", "acme", "--id", "1"]);
    assert_eq!(t["name"], "acme");
    let v = srv.json(&["vpod", "create", "--tenant", "acme", "--members", "1,2"]);
    assert_eq!(v["members"], serde_json::json!([1, 2]));
    let k = srv.json(&["provision", "--tenant", "acme"]);
    assert!(k["programmed"].as_u64().unwrap() > 0, "{k}");
    let l = srv.json(&["lock", "--tenant", "acme", "--accelerator", "1"]);
    assert_eq!(l["state"], "CONFIG_LOCKED", "{l}");
    let w = srv.json(&[
        "window",
        "add",
        "--tenant",
        "acme",
        "--accelerator",
        "2",
        "--base",
        "0x10000",
        "--len",
        "0x10000",
    ]);
    assert!(w.is_object(), "{w}");
    let r = srv.json(&["rotate", "1", "2"]);
    assert!(r["programmed"].as_u64().unwrap() > 0, "{r}");
    let d = srv.json(&["reattest", "3"]);
    assert_eq!(d["epoch"], 2, "{d}");

    // Caller faults: the code and reason on stderr, exit 3, --json prints the error object.
    let out = srv.cli(&["vpod", "create", "--tenant", "acme", "--members", "3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("409"), "{err}");
    let out = srv.cli(&[
        "vpod",
        "create",
        "--tenant",
        "nobody",
        "--members",
        "3",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["status"], 404, "{e}");
    assert!(e["code"].as_str().is_some_and(|c| !c.is_empty()), "{e}");
    // A name that cannot be a path segment never reaches the server.
    let out = srv.cli(&["offboard", "--tenant", "../status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // Offboarding frees the accelerators.
    srv.json(&["offboard", "--tenant", "acme"]);
    let s = srv.json(&["status"]);
    assert_eq!(s["tenants"], 0, "{s}");
    assert_eq!(s["vpods"], 0, "{s}");

    // SIGTERM: graceful stop, final checkpoint; the auditor verifies the state directory.
    let status = srv.terminate();
    assert!(status.success(), "{status:?}");
    let state = srv.state.clone();
    let tee = vec![state.join("sim-platform/ark.pem")];
    let mut roots: Vec<_> = std::fs::read_dir(state.join("device-roots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    roots.sort();
    let report = ualink_tsm::demo::auditor_report(&state, &tee, &roots).unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
}

fn write_identity(dir: &Path, ca_pem: &[u8], cert: &str, key: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tsm-ca.pem"), ca_pem).unwrap();
    std::fs::write(dir.join("admin.pem"), cert).unwrap();
    std::fs::write(dir.join("admin.key"), key).unwrap();
}

#[test]
fn clients_without_an_admin_certificate_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(&dir.path().join("state"), 4);
    let ca_pem = std::fs::read(srv.tls_dir().join("tsm-ca.pem")).unwrap();

    // A certificate from another CA: refused in the handshake (exit 6), nothing done.
    let foreign = dir.path().join("foreign");
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["admin".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    write_identity(&foreign, &ca_pem, &leaf.pem(), &leaf_key.serialize_pem());
    let out = srv.cli_with(&foreign, &["tenant", "add", "--name", "evil", "--id", "9"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));

    // A self-signed P-256 key is an agent key: authenticated as such, refused the provider
    // role with 403 wrong_role (exit 4).
    let agent = dir.path().join("agent");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["agent".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    write_identity(&agent, &ca_pem, &cert.pem(), &key.serialize_pem());
    let out = srv.cli_with(&agent, &["tenant", "add", "--name", "evil", "--id", "9"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong_role"),
        "{}",
        text(&out)
    );

    // A server we do not trust: the client refuses it (exit 6).
    let other_ca = dir.path().join("other-ca");
    let admin_pem = std::fs::read_to_string(srv.tls_dir().join("admin.pem")).unwrap();
    let admin_key = std::fs::read_to_string(srv.tls_dir().join("admin.key")).unwrap();
    write_identity(
        &other_ca,
        issuer_pem(&key).as_bytes(),
        &admin_pem,
        &admin_key,
    );
    let out = srv.cli_with(&other_ca, &["status"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));

    // Nothing of the refused requests happened.
    let s = srv.json(&["status"]);
    assert_eq!(s["tenants"], 0, "{s}");
}

/// A self-signed CA certificate over `key` (not the TSM's CA).
fn issuer_pem(key: &rcgen::KeyPair) -> String {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.self_signed(key).unwrap().pem()
}

#[test]
fn usage_errors_exit_2_before_any_connection() {
    let out = Command::new(BIN)
        .args([
            "status",
            "--tsm",
            "http://127.0.0.1:1",
            "--tls-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("https://HOST:PORT"));
    let out = Command::new(BIN)
        .args([
            "status",
            "--tsm",
            "https://127.0.0.1:1",
            "--tls-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tsm-ca.pem"));
}

#[test]
fn serve_takes_a_pod_description_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("pod.toml");
    std::fs::write(&pod, "[sim]\naccelerators = 5\nswitches = 1\n").unwrap();
    let srv = Server::start_with(&dir.path().join("state"), &["--pod", pod.to_str().unwrap()]);
    assert!(
        srv.banner
            .iter()
            .any(|l| l == "bring-up: 5 attested, 0 quarantined"),
        "{:?}",
        srv.banner
    );
    let devices = srv.json(&["devices"]);
    assert_eq!(devices.as_array().map(Vec::len), Some(5), "{devices}");
    drop(srv);

    // An external device whose trust anchor is missing: refused before anything starts.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[device]]\nid = 900\nurl = \"tcp://127.0.0.1:1\"\nvendor = \"V\"\nmodel = \"M\"\n\
         firmware = \"1\"\ntrust_anchor = \"missing.pem\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--pod"])
        .arg(&bad)
        .arg("--state")
        .arg(dir.path().join("state2"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.pem"),
        "{}",
        text(&out)
    );
}
