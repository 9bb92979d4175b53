//! The system in real processes on loopback: `ualink-tsm serve` on an ephemeral port with a
//! temporary state directory, the provider's `ualink-tsm` subcommands, one
//! `ualink-guest-agent run` per tenant (sim TEE), and `ualink-attest report` over the state
//! directory the TSM leaves; plus the TSM killed with SIGKILL at points of onboarding and
//! restarted (nothing acknowledged lost, the log verifies).
//!
//! The binaries are found next to this test's executable (`ualink_e2e::workspace_bin`); build
//! them first with the same target directory:
//! `cargo build -p ualink-tsm -p ualink-guest-agent -p ualink-attest --bins`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

mod api;

fn bin(name: &str) -> PathBuf {
    ualink_e2e::workspace_bin(name).unwrap_or_else(|| {
        panic!(
            "{name} not built next to the test executable; run `cargo build -p ualink-tsm -p \
             ualink-guest-agent -p ualink-attest --bins` with the same CARGO_TARGET_DIR first"
        )
    })
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The tenants' policy data: both accept the sim CVM's default launch measurement; A may
/// share read-only with B; tenant C lists another measurement. A and B keep the default TDI
/// acceptance policy (including `firmware_update_after_lock`: the simulated TDI reports
/// NO_UPDATE_AFTER_LOCK).
fn overlay() -> Value {
    let m = hex::encode(ualink_attest::sim::default_measurement());
    let tenant = json!({
        "cvm": {"measurements": {"sim": [m]}},
    });
    // Tenant C admits only a CVM image none of the tests runs; tenant D runs the sim image
    // but accepts devices of another vendor only, so it rejects every sim TDI.
    let other = json!({"cvm": {"measurements": {"sim": ["11".repeat(48)]}}});
    let strict = json!({
        "cvm": {"measurements": {"sim": [m.clone()]}},
        "accept": {"vendors": ["No Such Vendor"]},
    });
    json!({"ualink_data": {
        "tenants": {"tenant-a": tenant.clone(), "tenant-b": tenant, "tenant-c": other, "tenant-d": strict},
        "sharing": {"pairs": [{"exporter": "tenant-a", "importer": "tenant-b", "rights": ["read"]}]},
    }})
}

/// `ualink-tsm serve` as a child process; killed if the test ends without stopping it.
struct Server {
    child: Option<Child>,
    url: String,
    state: PathBuf,
    banner: Vec<String>,
}

impl Server {
    fn start(state: &Path) -> Self {
        std::fs::create_dir_all(state).unwrap();
        // The sim platform the TSM's own evidence and the tenants' CVMs come from.
        ualink_attest::sim::SimPlatform::load_or_create(&state.join("sim-platform")).unwrap();
        let overlay_path = state.with_extension("overlay.json");
        std::fs::write(&overlay_path, serde_json::to_vec(&overlay()).unwrap()).unwrap();
        let mut child = Command::new(bin("ualink-tsm"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--accelerators",
                "4",
                "--state",
            ])
            .arg(state)
            .arg("--overlay")
            .arg(&overlay_path)
            .arg("--sim-cvm-root")
            .arg(state.join("sim-platform/ark.pem"))
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

    /// `ualink-tsm ARGS --json --tsm URL --tls-dir STATE/tls`.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin("ualink-tsm"))
            .args(args)
            .arg("--json")
            .args(["--tsm", &self.url, "--tls-dir"])
            .arg(self.state.join("tls"))
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn device_roots(&self) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(self.state.join("device-roots"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    /// The tenants' expectation of each accelerator's identity (`--devices`), from the
    /// provider's inventory: what the TDI reports' device evidence must show.
    fn device_claims(&self) -> PathBuf {
        let devs = self.ok(&["devices"]);
        let list = devs
            .as_array()
            .or_else(|| devs.get("devices").and_then(Value::as_array))
            .unwrap()
            .clone();
        let mut claims = serde_json::Map::new();
        for d in list {
            let id = d["id"].as_u64().unwrap();
            claims.insert(
                id.to_string(),
                json!({
                    "device_id": format!("accel-{id:04}"),
                    "vendor": d["vendor"],
                    "model": d["model"],
                    "firmware_version": d["firmware"],
                    "dhe": "secp384r1",
                    "aead": "aes-256-gcm",
                }),
            );
        }
        let p = self.state.with_extension("devices.json");
        std::fs::write(&p, serde_json::to_vec(&Value::Object(claims)).unwrap()).unwrap();
        p
    }

    /// `ualink-guest-agent run --once` for `tenant` (sim TEE on the shared sim platform).
    fn agent(&self, tenant: &str) -> Child {
        let claims = self.device_claims();
        let mut c = Command::new(bin("ualink-guest-agent"));
        c.args([
            "run", "--once", "--json", "--tee", "sim", "--tsm", &self.url,
        ])
        .args(["--tenant", tenant])
        .arg("--sim-platform")
        .arg(self.state.join("sim-platform"))
        .arg("--policy")
        .arg(self.state.join("policy"))
        .arg("--trust")
        .arg(self.state.join("sim-platform/ark.pem"))
        .arg("--devices")
        .arg(claims);
        for r in self.device_roots() {
            c.arg("--device-trust").arg(r);
        }
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let st = Command::new("kill")
            .args([sig, &child.id().to_string()])
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

/// `ualink-attest report --state STATE --trust ark --device-trust roots --json`.
fn report(state: &Path, roots: &[PathBuf]) -> (Option<i32>, String) {
    // An empty auditor trust store next to the state: only the roots given here vouch.
    let store = state.with_extension("auditor-trust");
    std::fs::create_dir_all(&store).unwrap();
    let mut c = Command::new(bin("ualink-attest"));
    c.env("UALINK_ATTEST_TRUST_DIR", &store)
        .env_remove("XDG_CONFIG_HOME")
        .args(["report", "--state"])
        .arg(state)
        .arg("--trust")
        .arg(state.join("sim-platform/ark.pem"));
    for r in roots {
        c.arg("--device-trust").arg(r);
    }
    let out = c.output().unwrap();
    (out.status.code(), text(&out))
}

fn onboard(srv: &Server) {
    for (name, id, members) in [("tenant-a", "1", "1,2"), ("tenant-b", "2", "3,4")] {
        srv.ok(&["tenant", "add", "--name", name, "--id", id]);
        srv.ok(&["vpod", "create", "--tenant", name, "--members", members]);
        srv.ok(&["provision", "--tenant", name]);
    }
    for (name, a) in [
        ("tenant-a", "1"),
        ("tenant-a", "2"),
        ("tenant-b", "3"),
        ("tenant-b", "4"),
    ] {
        let l = srv.ok(&["lock", "--tenant", name, "--accelerator", a]);
        assert_eq!(l["state"], "CONFIG_LOCKED", "{l}");
    }
}

/// Provider onboarding over the CLI, two tenants' agents as separate processes (sim CVMs)
/// that attest over KBS, verify every TDI report and accept, then a graceful stop and the
/// auditor's report over the state directory: exit 0, every decision replays.
#[test]
fn serve_two_tenant_agents_and_the_auditor_report_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(&dir.path().join("state"));
    assert!(
        srv.banner
            .iter()
            .any(|l| l == "bring-up: 4 attested, 0 quarantined"),
        "{:?}",
        srv.banner
    );
    onboard(&srv);
    let agents = [
        ("tenant-a", [1, 2], srv.agent("tenant-a")),
        ("tenant-b", [3, 4], srv.agent("tenant-b")),
    ];
    for (tenant, members, a) in agents {
        let out = a.wait_with_output().unwrap();
        assert!(out.status.success(), "{tenant} agent: {}", text(&out));
        // The first JSON document is the agent's verdict on its vPod's TDIs.
        let first: Value = serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter::<Value>()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(first["tenant"], tenant, "{first}");
        let tdis = first["tdis"].as_array().unwrap();
        assert_eq!(tdis.len(), 2, "{first}");
        for (t, m) in tdis.iter().zip(members) {
            assert_eq!(t["accelerator_id"], m, "{first}");
            assert_eq!(t["decision"], "accepted", "{first}");
            assert_eq!(t["state"], "RUN", "{first}");
        }
    }
    let s = srv.ok(&["status"]);
    assert_eq!(s["tenants"], 2, "{s}");
    assert_eq!(s["vpods"], 2, "{s}");
    let roots = srv.device_roots();
    let st = srv.signal("-TERM");
    assert!(st.success(), "{st:?}");
    let (code, out) = report(&srv.state, &roots);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("tenant-a") && out.contains("tenant-b"),
        "{out}"
    );
}

/// The TSM is killed with SIGKILL right after each acknowledged step of onboarding, and
/// once while a request is in flight; after each restart from the same state directory
/// everything acknowledged before the kill is still there, the log verifies, the pod
/// converges (keys re-provisioned, TDIs locked and accepted by both tenants' agents), and the
/// auditor's report over the whole history exits 0.
#[test]
fn tsm_sigkilled_during_onboarding_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    type Step = (&'static [&'static str], &'static str, u64, u64);
    // (command, what it acknowledges, tenants and vPods expected after it)
    let steps: [Step; 5] = [
        (
            &["tenant", "add", "--name", "tenant-a", "--id", "1"],
            "tenant",
            1,
            0,
        ),
        (
            &["vpod", "create", "--tenant", "tenant-a", "--members", "1,2"],
            "vpod",
            1,
            1,
        ),
        (&["provision", "--tenant", "tenant-a"], "keys", 1, 1),
        (
            &["tenant", "add", "--name", "tenant-b", "--id", "2"],
            "tenant",
            2,
            1,
        ),
        (
            &["vpod", "create", "--tenant", "tenant-b", "--members", "3,4"],
            "vpod",
            2,
            2,
        ),
    ];
    // Every `serve` start simulates the pod afresh (new device PKI) and rewrites
    // STATE/device-roots, so the auditor is given every run's vendor roots.
    let mut roots = Vec::new();
    let mut keep = |srv: &Server| {
        for r in srv.device_roots() {
            let p = dir.path().join(format!("root-{}.der", roots.len()));
            std::fs::copy(&r, &p).unwrap();
            roots.push(p);
        }
    };
    for (cmd, what, tenants, vpods) in steps {
        let mut srv = Server::start(&state);
        keep(&srv);
        srv.ok(cmd);
        // Killed the moment the answer arrived: no graceful checkpoint, no shutdown.
        let st = srv.signal("-KILL");
        assert!(!st.success());
        let srv = Server::start(&state);
        keep(&srv);
        let s = srv.ok(&["status"]);
        assert_eq!(s["tenants"], tenants, "after {what}: {s}");
        assert_eq!(s["vpods"], vpods, "after {what}: {s}");
        drop(srv);
    }
    // In flight: the kill races a request; whatever the client saw, the state is coherent.
    let mut srv = Server::start(&state);
    keep(&srv);
    let mut c = Command::new(bin("ualink-tsm"));
    c.args([
        "provision",
        "--tenant",
        "tenant-b",
        "--json",
        "--tsm",
        &srv.url,
        "--tls-dir",
    ])
    .arg(state.join("tls"));
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    srv.signal("-KILL");
    let _ = child.wait_with_output().unwrap();
    let mut srv = Server::start(&state);
    keep(&srv);
    let s = srv.ok(&["status"]);
    assert_eq!(s["tenants"], 2, "{s}");
    assert_eq!(s["vpods"], 2, "{s}");
    // Keys are never persisted: a restarted TSM re-provisions, and the pod still keys.
    let k = srv.ok(&["provision", "--tenant", "tenant-b"]);
    assert!(k["programmed"].as_u64().unwrap() > 0, "{k}");
    // The pod converges: TDIs lock and both tenants' agents accept them.
    for (name, a) in [
        ("tenant-a", "1"),
        ("tenant-a", "2"),
        ("tenant-b", "3"),
        ("tenant-b", "4"),
    ] {
        srv.ok(&["lock", "--tenant", name, "--accelerator", a]);
    }
    for tenant in ["tenant-a", "tenant-b"] {
        let out = srv.agent(tenant).wait_with_output().unwrap();
        assert!(out.status.success(), "{tenant}: {}", text(&out));
        let first: Value = serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter::<Value>()
            .next()
            .unwrap()
            .unwrap();
        assert!(
            first["tdis"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["decision"] == "accepted" && t["state"] == "RUN"),
            "{first}"
        );
    }
    assert!(srv.signal("-TERM").success());
    let (code, out) = report(&state, &roots);
    assert_eq!(code, Some(0), "{out}");
}

/// A tenant whose policy accepts only another vendor (`vendor_not_accepted`) rejects every
/// simulated TDI; the TSM stops them and records the rejection. The auditor should be able to
/// verify that history (exit 0).
///
/// The TSM relays each rejection without a policy digest (the tenant decided under its own
/// policy); the report checks it cites a bundle the log issued and does not replay it.
#[test]
fn tdis_rejected_by_the_tenants_policy_are_stopped_and_the_history_audits() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(&dir.path().join("state"));
    // Tenant D accepts another vendor only.
    srv.ok(&["tenant", "add", "--name", "tenant-d", "--id", "4"]);
    srv.ok(&["vpod", "create", "--tenant", "tenant-d", "--members", "1,2"]);
    srv.ok(&["provision", "--tenant", "tenant-d"]);
    srv.ok(&["lock", "--tenant", "tenant-d", "--accelerator", "1"]);
    // Reject through the agent with tenant D's policy.
    let mut c = Command::new(bin("ualink-guest-agent"));
    c.args(["run", "--once", "--json", "--tee", "sim", "--tsm", &srv.url])
        .args(["--tenant", "tenant-d", "--accelerators", "1"])
        .arg("--sim-platform")
        .arg(srv.state.join("sim-platform"))
        .arg("--policy")
        .arg(srv.state.join("policy"))
        .arg("--trust")
        .arg(srv.state.join("sim-platform/ark.pem"))
        .arg("--devices")
        .arg(srv.device_claims());
    for r in srv.device_roots() {
        c.arg("--device-trust").arg(r);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("vendor_not_accepted"),
        "{}",
        text(&out)
    );
    let roots = srv.device_roots();
    assert!(srv.signal("-TERM").success());
    let (code, out) = report(&srv.state, &roots);
    assert_eq!(code, Some(0), "{out}");
}

/// SIGKILL at random moments (clock-seeded, printed) while the provider creates tenants as
/// fast as it can, three rounds on one state directory. After each restart the TSM holds every
/// tenant whose creation was acknowledged and at most the one that was in flight; the log
/// verifies each time (the restart opens it), and the auditor's report over all rounds exits 0.
#[test]
fn tsm_sigkilled_at_random_points_keeps_every_acknowledged_tenant() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    println!("seed {seed}");
    let mut roots = Vec::new();
    let mut acknowledged_total = 0u64;
    for round in 0..3u32 {
        let mut srv = Server::start(&state);
        for r in srv.device_roots() {
            let p = dir.path().join(format!("root-{}.der", roots.len()));
            std::fs::copy(&r, &p).unwrap();
            roots.push(p);
        }
        let before = srv.ok(&["status"])["tenants"].as_u64().unwrap();
        assert!(
            before >= acknowledged_total,
            "lost tenants: {before} < {acknowledged_total}"
        );
        let acked = Arc::new(Mutex::new(0u64));
        let (url, tls, a2) = (srv.url.clone(), state.join("tls"), acked.clone());
        let worker = std::thread::spawn(move || {
            for i in 0..40u32 {
                let id = 100 + round * 100 + i;
                let out = Command::new(bin("ualink-tsm"))
                    .args([
                        "tenant",
                        "add",
                        "--name",
                        &format!("t{id}"),
                        "--id",
                        &id.to_string(),
                    ])
                    .args(["--json", "--tsm", &url, "--tls-dir"])
                    .arg(&tls)
                    .output()
                    .unwrap();
                if !out.status.success() {
                    break;
                }
                *a2.lock().unwrap() += 1;
            }
        });
        // Somewhere between the first few and the last few requests.
        let delay = 100 + u64::from(seed.wrapping_mul(round + 7) % 900);
        std::thread::sleep(std::time::Duration::from_millis(delay));
        srv.signal("-KILL");
        worker.join().unwrap();
        let acked = *acked.lock().unwrap();
        let srv = Server::start(&state);
        for r in srv.device_roots() {
            let p = dir.path().join(format!("root-{}.der", roots.len()));
            std::fs::copy(&r, &p).unwrap();
            roots.push(p);
        }
        let after = srv.ok(&["status"])["tenants"].as_u64().unwrap();
        println!(
            "round {round}: killed after {delay} ms; {acked} acknowledged, {} stored",
            after - before
        );
        assert!(
            after >= before + acked && after <= before + acked + 1,
            "round {round}: {before} + {acked} acknowledged, {after} after restart"
        );
        acknowledged_total = after;
        drop(srv);
    }
    let mut srv = Server::start(&state);
    for r in srv.device_roots() {
        let p = dir.path().join(format!("root-{}.der", roots.len()));
        std::fs::copy(&r, &p).unwrap();
        roots.push(p);
    }
    assert!(srv.signal("-TERM").success());
    let (code, out) = report(&state, &roots);
    assert_eq!(code, Some(0), "{out}");
}
