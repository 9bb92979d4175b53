//! Attacks on the running `ualink-tsm serve` over real mutual TLS on loopback, from clients
//! built on the guest agent's own HTTP stack (a fresh self-signed P-256 agent key each):
//! unauthenticated and wrong-role calls, a replayed KBS attestation, a tenant's session asking
//! for another tenant's TDI report and resource, a CVM another tenant's policy refuses
//! (audited), and oversized and malformed bodies. Each names the status and the stable error
//! code; the log the server leaves verifies.

use serde_json::{json, Value};
use ualink_guest_agent::error::Error as AgentError;
use ualink_guest_agent::evidence::sim::SimProvider;
use ualink_guest_agent::evidence::EvidenceProvider;
use ualink_guest_agent::kbs::http::{HttpClient, KbsTrust, Response};
use ualink_guest_agent::tls::AgentIdentity;

use super::Server;

const COOKIE: &str = "kbs-session-id";

/// One agent: its key, its HTTP client trusting the TSM CA, its session cookie.
struct Agent {
    id: AgentIdentity,
    http: HttpClient,
    cookie: Option<String>,
}

impl Agent {
    fn new(srv: &Server) -> Self {
        let id = AgentIdentity::generate("e2e-agent").unwrap();
        let ca = std::fs::read(srv.state.join("tls/tsm-ca.pem")).unwrap();
        let http = HttpClient::with_identity(&srv.url, KbsTrust::Pem(ca), Some(&id)).unwrap();
        Self {
            id,
            http,
            cookie: None,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        reply(self.http.get(path, self.cookie.as_deref()).await)
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, serde_json::to_vec(body).unwrap()).await
    }

    async fn post_raw(&self, path: &str, body: Vec<u8>) -> Reply {
        reply(self.http.post(path, body, self.cookie.as_deref()).await)
    }

    /// `POST /kbs/v0/auth`: keeps the cookie, returns the nonce.
    async fn auth(&mut self) -> String {
        let r = self
            .post(
                "/kbs/v0/auth",
                &json!({"version": "0.4.0", "tee": "snp", "extra-params": ""}),
            )
            .await;
        let r =
            r.ok.unwrap_or_else(|| panic!("auth: {} {}", r.status, r.text));
        self.cookie = r.cookie(COOKIE);
        assert!(self.cookie.is_some());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v["nonce"].as_str().unwrap().to_string()
    }

    /// The attest body binding `nonce` and this agent's key, with `cvm`'s evidence.
    fn attest_body(&self, nonce: &str, cvm: &dyn EvidenceProvider) -> Value {
        let jwk = self.id.key().jwk();
        let (_, rd) = ualink_guest_agent::kbs::binding(nonce, &jwk, "").unwrap();
        let ev = cvm.evidence(&rd).unwrap();
        json!({
            "init-data": null,
            "runtime-data": {"nonce": nonce, "tee-pubkey": serde_json::to_value(&jwk).unwrap()},
            "tee-evidence": {"primary_evidence": ev.to_kbs_json().unwrap(), "additional_evidence": ""},
        })
    }

    /// auth + attest; returns the attest body it sent.
    async fn attest(&mut self, cvm: &dyn EvidenceProvider) -> Value {
        let nonce = self.auth().await;
        let b = self.attest_body(&nonce, cvm);
        let r = self.post("/kbs/v0/attest", &b).await;
        assert_eq!(r.status, 200, "{}", body(&r));
        b
    }
}

/// What came back: a 2xx response, or the TSM's refusal (status, stable code, reason).
struct Reply {
    status: u16,
    code: String,
    text: String,
    ok: Option<Response>,
}

fn reply(r: Result<Response, AgentError>) -> Reply {
    match r {
        Ok(r) => Reply {
            status: r.status,
            code: String::new(),
            text: String::from_utf8_lossy(&r.body).to_string(),
            ok: Some(r),
        },
        Err(AgentError::TsmRefused {
            status,
            code,
            reason,
            ..
        }) => Reply {
            status,
            code,
            text: reason,
            ok: None,
        },
        Err(e) => panic!("transport failure instead of an answer: {e}"),
    }
}

fn body(r: &Reply) -> String {
    format!("{} {}: {}", r.status, r.code, r.text)
}

fn code(r: &Reply) -> String {
    r.code.clone()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn cvm(srv: &Server) -> SimProvider {
    SimProvider::load_or_create(&srv.state.join("sim-platform")).unwrap()
}

/// Two tenants onboarded with TDIs locked (reports exist).
fn served(dir: &std::path::Path) -> Server {
    let srv = Server::start(&dir.join("state"));
    super::onboard(&srv);
    srv
}

/// An agent key that never attested calls tenant endpoints (401) and provider endpoints
/// (403 wrong_role); attested, it still may not call provider endpoints.
#[test]
fn unauthenticated_and_wrong_role_api_calls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = served(dir.path());
    rt().block_on(async {
        let mut a = Agent::new(&srv);
        let r = a.get("/ualink/v0/tenants/tenant-a/vpod").await;
        assert_eq!(r.status, 401, "{}", body(&r));
        for (m, p) in [("GET", "/ualink/v0/devices"), ("GET", "/ualink/v0/status")] {
            let r = a.get(p).await;
            assert_eq!(
                (r.status, code(&r)),
                (403, "wrong_role".into()),
                "{m} {p}: {}",
                body(&r)
            );
        }
        let r = a
            .post(
                "/ualink/v0/tenants",
                &json!({"id": 9, "name": "mallory", "lead_keys": false}),
            )
            .await;
        assert_eq!(
            (r.status, code(&r)),
            (403, "wrong_role".into()),
            "{}",
            body(&r)
        );
        a.attest(&cvm(&srv)).await;
        let r = a.get("/ualink/v0/devices").await;
        assert_eq!(
            (r.status, code(&r)),
            (403, "wrong_role".into()),
            "{}",
            body(&r)
        );
        let r = a.post("/ualink/v0/devices/1/reattest", &json!({})).await;
        assert_eq!(r.status, 403, "{}", body(&r));
    });
    // Nothing the agent tried reached the core: still two tenants.
    assert_eq!(srv.ok(&["status"])["tenants"], 2);
    assert!(srv.signal("-TERM").success());
}

/// A genuine attestation captured and replayed: on the same session (its nonce is spent), on
/// a fresh session of the same key (another nonce), and from another agent's TLS key.
#[test]
fn replayed_kbs_attestation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = served(dir.path());
    rt().block_on(async {
        let c = cvm(&srv);
        let mut a = Agent::new(&srv);
        let captured = a.attest(&c).await;
        // Same session, nonce already used.
        let r = a.post("/kbs/v0/attest", &captured).await;
        assert!((400..500).contains(&r.status), "same session: {}", body(&r));
        // Same key, new session: the evidence binds the old nonce.
        a.auth().await;
        let r = a.post("/kbs/v0/attest", &captured).await;
        assert!((400..500).contains(&r.status), "new nonce: {}", body(&r));
        // Another key replays the whole body in its own session.
        let mut m = Agent::new(&srv);
        m.auth().await;
        let r = m.post("/kbs/v0/attest", &captured).await;
        assert!((400..500).contains(&r.status), "other key: {}", body(&r));
        // The replayer's session is not attested: it gets no tenant data.
        let r = m.get("/ualink/v0/tenants/tenant-a/vpod").await;
        assert_eq!(r.status, 401, "{}", body(&r));
    });
    assert!(srv.signal("-TERM").success());
}

/// A session that acts for tenant B asks for tenant A's TDI report, vPod and KBS resource.
#[test]
fn a_tenants_session_asking_for_another_tenants_report_or_resource_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = served(dir.path());
    rt().block_on(async {
        let mut b = Agent::new(&srv);
        b.attest(&cvm(&srv)).await;
        let r = b.get("/ualink/v0/tenants/tenant-b/tdis/3/report").await;
        assert_eq!(r.status, 200, "{}", body(&r));
        for p in [
            "/ualink/v0/tenants/tenant-a/tdis/1/report",
            "/ualink/v0/tenants/tenant-a/vpod",
            "/kbs/v0/resource/tenant-a/vpod/config",
        ] {
            let r = b.get(p).await;
            assert_eq!(r.status, 403, "{p}: {}", body(&r));
            assert!(!code(&r).is_empty(), "{p}: {}", body(&r));
        }
        // Tenant B's own accelerator through tenant A's path is no better.
        let r = b.get("/ualink/v0/tenants/tenant-a/tdis/3/report").await;
        assert!((400..500).contains(&r.status), "{}", body(&r));
    });
    assert!(srv.signal("-TERM").success());
}

/// Oversized, malformed and over-specified bodies get their own status and code, before any
/// state changes.
#[test]
fn oversized_and_malformed_api_bodies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = served(dir.path());
    rt().block_on(async {
        let a = Agent::new(&srv);
        // The server answers 413 as soon as the declared length exceeds its bound and closes;
        // a client still writing the body may see the connection cut instead of the answer.
        match a
            .http
            .post("/kbs/v0/auth", vec![b' '; 2 * 1024 * 1024], None)
            .await
        {
            Err(AgentError::TsmRefused { status, code, .. }) => {
                assert_eq!((status, code.as_str()), (413, "body_too_large"))
            }
            Err(e) => assert!(e.to_string().contains("writing a body"), "{e}"),
            Ok(r) => panic!("accepted a 2 MiB body: {}", r.status),
        }
        let r = a.post_raw("/kbs/v0/auth", b"{\"version\": ".to_vec()).await;
        assert_eq!(r.status, 400, "{}", body(&r));
        // An unknown field on a UALink endpoint (the KBS endpoints follow kbs-types, which
        // tolerates extra members).
        let mut b = Agent::new(&srv);
        b.attest(&cvm(&srv)).await;
        let r = b
            .post(
                "/ualink/v0/tenants/tenant-b/tdis/3/accept",
                &json!({"report_digest": "00", "force": true}),
            )
            .await;
        assert_eq!(r.status, 400, "unknown field: {}", body(&r));
        let r = b
            .post_raw(
                "/ualink/v0/tenants/tenant-b/tdis/3/accept",
                b"[1,2".to_vec(),
            )
            .await;
        assert_eq!(r.status, 400, "truncated JSON: {}", body(&r));
        // Neither started the TDI.
        let v = b.get("/ualink/v0/tenants/tenant-b/vpod").await;
        let v: Value = serde_json::from_str(&v.text).unwrap();
        let t3 = v["tdis"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["accelerator_id"] == 3)
            .unwrap()
            .clone();
        assert_eq!(t3["state"], "CONFIG_LOCKED", "{v}");
        let r = a
            .post(
                "/kbs/v0/auth",
                &json!({"version": "0.4.0", "tee": "sample", "extra-params": ""}),
            )
            .await;
        assert_eq!(
            (r.status, code(&r)),
            (400, "tee_not_supported".into()),
            "{}",
            body(&r)
        );
    });
    assert_eq!(srv.ok(&["status"])["tenants"], 2);
    assert!(srv.signal("-TERM").success());
}

/// A genuine CVM (its evidence verifies) whose launch measurement tenant C's policy does not
/// list asks to act for C: 403 `cvm_denied` naming the rule, and the decision is in the log
/// with its policy input, so the auditor replays it (report exit 0).
#[test]
fn a_cvm_another_tenants_policy_refuses_is_denied_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = served(dir.path());
    srv.ok(&["tenant", "add", "--name", "tenant-c", "--id", "3"]);
    rt().block_on(async {
        let mut a = Agent::new(&srv);
        a.attest(&cvm(&srv)).await;
        let r = a.get("/ualink/v0/tenants/tenant-c/vpod").await;
        assert_eq!(
            (r.status, code(&r)),
            (403, "cvm_denied".into()),
            "{}",
            body(&r)
        );
    });
    let roots = srv.device_roots();
    assert!(srv.signal("-TERM").success());
    // The checkpoint key is the TSM identity key, which is tsm-ca.pem's key.
    let ca = std::fs::read(srv.state.join("tls/tsm-ca.pem")).unwrap();
    let ca = ualink_attest::pki::certs_from_pem_or_der(&ca).unwrap();
    let key = ualink_guest_agent::tls::cert_public_key(&ca[0]).unwrap();
    let log = std::fs::read(srv.state.join("audit.log")).unwrap();
    let v = ualink_attest::audit::verify_log(
        &log,
        &ualink_attest::audit::CheckpointVerifier::new(&key),
        &[],
    )
    .unwrap();
    let denied: Vec<_> = (0..v.size())
        .map(|i| v.record(&log, i).unwrap())
        .filter(|r| {
            r.event().is_some_and(|e| e.name() == "cvm-attested")
                && r.outcome() == ualink_attest::audit::Outcome::Deny
        })
        .collect();
    assert_eq!(denied.len(), 1, "one cvm-attested deny");
    assert!(!denied[0].rules().is_empty());
    assert!(denied[0].policy_input().is_some(), "replayable");
    let (code, out) = super::report(&srv.state, &roots);
    assert_eq!(code, Some(0), "{out}");
}

/// Accepts `accel`'s TDI for the agent's tenant (report digest as the TSM states it).
async fn accept(a: &Agent, tenant: &str, accel: u16) {
    let r = a
        .get(&format!("/ualink/v0/tenants/{tenant}/tdis/{accel}/report"))
        .await;
    assert_eq!(r.status, 200, "{}", body(&r));
    let v: Value = serde_json::from_str(&r.text).unwrap();
    let r = a
        .post(
            &format!("/ualink/v0/tenants/{tenant}/tdis/{accel}/accept"),
            &json!({"report_digest": v["report_digest"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", body(&r));
}

/// The TSM is SIGKILLed right after it acknowledged a grant to B's agent. After the restart
/// the grant's share decision is in the log with the digest of exactly the bytes B received,
/// the log verifies, and the auditor's report over the whole history exits 0.
#[test]
fn tsm_sigkilled_right_after_issuing_a_grant_keeps_the_decision() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut srv = served(dir.path());
    srv.ok(&["link", "1", "3"]);
    srv.ok(&[
        "window",
        "add",
        "--tenant",
        "tenant-a",
        "--accelerator",
        "1",
        "--base",
        "0x10000",
        "--len",
        "0x10000",
    ]);
    let mut roots = Vec::new();
    for r in srv.device_roots() {
        let p = dir.path().join(format!("root-{}.der", roots.len()));
        std::fs::copy(&r, &p).unwrap();
        roots.push(p);
    }
    let grant = rt().block_on(async {
        let c = cvm(&srv);
        let (mut a, mut b) = (Agent::new(&srv), Agent::new(&srv));
        a.attest(&c).await;
        b.attest(&c).await;
        accept(&a, "tenant-a", 1).await;
        accept(&b, "tenant-b", 3).await;
        let r = a
            .post(
                "/ualink/v0/tenants/tenant-a/exports",
                &json!({"accelerator_id": 1, "window_base": 0x10000, "offset": 0x1000,
                        "len": 0x1000, "to_tenant": "tenant-b", "to_os": 20, "rights": ["read"]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", body(&r));
        let offer: Value = serde_json::from_str(&r.text).unwrap();
        let r = b
            .post(
                "/ualink/v0/tenants/tenant-b/imports",
                &json!({"offer_id": offer["offer_id"], "os_instance": 20,
                        "accelerator_id": 3, "rights": ["read"]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", body(&r));
        let g: Value = serde_json::from_str(&r.text).unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(g["grant"].as_str().unwrap())
            .unwrap()
    });
    assert!(!srv.signal("-KILL").success());
    // Restarted: the log opens (verified) and carries the acknowledged decision.
    let mut srv = Server::start(&state);
    for r in srv.device_roots() {
        let p = dir.path().join(format!("root-{}.der", roots.len()));
        std::fs::copy(&r, &p).unwrap();
        roots.push(p);
    }
    assert_eq!(srv.ok(&["status"])["tenants"], 2);
    assert!(srv.signal("-TERM").success());
    let ca = std::fs::read(state.join("tls/tsm-ca.pem")).unwrap();
    let ca = ualink_attest::pki::certs_from_pem_or_der(&ca).unwrap();
    let key = ualink_guest_agent::tls::cert_public_key(&ca[0]).unwrap();
    let log = std::fs::read(state.join("audit.log")).unwrap();
    let v = ualink_attest::audit::verify_log(
        &log,
        &ualink_attest::audit::CheckpointVerifier::new(&key),
        &[],
    )
    .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA384, &grant);
    let found = (0..v.size())
        .map(|i| v.record(&log, i).unwrap())
        .filter(|r| r.kind() == ualink_attest::audit::DecisionKind::Share)
        .any(|r| {
            r.outcome() == ualink_attest::audit::Outcome::Allow
                && r.inputs()
                    .iter()
                    .any(|i| i.name == "grant" && &i.sha384.as_bytes()[..] == digest.as_ref())
        });
    assert!(found, "the acknowledged grant's decision survived the kill");
    let (code, out) = super::report(&state, &roots);
    assert_eq!(code, Some(0), "{out}");
}
