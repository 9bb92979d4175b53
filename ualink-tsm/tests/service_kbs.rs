//! The KBS endpoints over real loopback TLS with a sim CVM (ualink-guest-agent's sim
//! evidence provider): the whole RCAR flow with the resource decrypted by the agent
//! library's JWE code, the tee-pubkey ↔ TLS key binding, single-use nonces, session
//! binding and expiry, tenant scoping, CVM denial audited with its rule, and malformed,
//! oversized and slow requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use std::time::Duration;

use hyper::StatusCode;
use serde_json::json;
use service_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ualink_attest::audit::{DecisionKind, Outcome};

/// Provider setup: tenants a (1), b (2), c (3); a's vPod is accelerators 1 and 2.
async fn provision(h: &Harness) {
    let admin = h.admin();
    for (id, name) in [(1, "tenant-a"), (2, "tenant-b"), (3, "tenant-c")] {
        let r = admin
            .post(
                "/ualink/v0/tenants",
                json!({"id": id, "name": name, "lead_keys": false}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    }
    let r = admin
        .post(
            "/ualink/v0/tenants/tenant-a/vpod",
            json!({"members": [1, 2]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_rcar_flow_gives_the_vpod_config_encrypted_to_the_tls_key() {
    let h = Harness::start(|_| {}).await;
    provision(&h).await;
    let mut agent = h.agent();
    let r = agent.attest(&h.sim_cvm()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    // The token is an EAR signed by the TSM identity key.
    let token = r.json()["token"].as_str().unwrap().to_string();
    let info = agent.get("/ualink/v0/tsm").await.json();
    let pk = hex::decode(info["public_key"].as_str().unwrap()).unwrap();
    let ear = ualink_attest::ear::EarVerifier::new(&pk)
        .verify(&token, ualink_attest::UnixTime::now())
        .unwrap();
    assert_eq!(ear.submods.len(), 1);
    // The resource, decrypted with the agent library's JWE code and the TLS key's scalar.
    let cfg = agent.resource("tenant-a/vpod/config").await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    assert_eq!(v["tenant"], "tenant-a");
    assert_eq!(v["members"], json!([1, 2]));
    assert_eq!(v["lead_keys"], false);
    // And the ualink endpoints with the same session.
    let r = agent.get("/ualink/v0/tenants/tenant-a/vpod").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["members"], json!([1, 2]));
    let ev = agent.get("/ualink/v0/tsm").await.json();
    assert_eq!(ev["public_key"], info["public_key"]);
    // An unknown resource is 404.
    let e = agent.resource("tenant-a/secret/key").await.unwrap_err();
    assert_eq!(e.status, StatusCode::NOT_FOUND);
    // The allow is in the audit log with its policy input.
    let (state, _d) = h.stop().await;
    let recs = records(&state);
    let cvm: Vec<_> = recs
        .iter()
        .filter(|r| r.kind() == DecisionKind::CvmAppraisal)
        .collect();
    assert_eq!(cvm.len(), 1, "appraised once per session and tenant");
    assert_eq!(cvm[0].outcome(), Outcome::Allow);
    assert!(cvm[0]
        .policy_input()
        .unwrap()
        .contains("\"tenant_id\":\"tenant-a\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tee_pubkey_other_than_the_tls_key_is_refused() {
    let h = Harness::start(|_| {}).await;
    let mut agent = h.agent();
    let nonce = agent.auth().await;
    // Evidence honestly binding a different key.
    let other = ualink_guest_agent::kbs::jwe::EphemeralKey::generate().unwrap();
    let body = agent.attest_body(&nonce, &other.jwk(), &h.sim_cvm());
    let r = agent.post("/kbs/v0/attest", body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "tee_pubkey_not_tls_key");
    // The failed attempt ended the session.
    let r = agent.get("/ualink/v0/tenants/tenant-a/vpod").await;
    assert_eq!(r.code(), "no_session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_not_binding_the_nonce_is_refused() {
    let h = Harness::start(|_| {}).await;
    let mut agent = h.agent();
    let nonce = agent.auth().await;
    let mut body = agent.attest_body(
        "c29tZSBvdGhlciBub25jZSBvZiAzMiBieXRlcyEhISE=",
        &agent.jwk(),
        &h.sim_cvm(),
    );
    body["runtime-data"]["nonce"] = json!(nonce);
    let r = agent.post("/kbs/v0/attest", body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "report_data_mismatch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_are_single_use_and_sessions_bound_to_their_tls_key() {
    let h = Harness::start(|_| {}).await;
    provision(&h).await;
    let mut agent = h.agent();
    let nonce = agent.auth().await;
    let body = agent.attest_body(&nonce, &agent.jwk(), &h.sim_cvm());
    let r = agent.post("/kbs/v0/attest", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    // Replaying the same attest on the session: the nonce is spent.
    let r = agent.post("/kbs/v0/attest", body.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "nonce_used");
    // Another agent (another TLS key) presenting the stolen cookie.
    let mut thief = h.agent();
    thief.cookie = agent.cookie.clone();
    let r = thief.get("/ualink/v0/tenants/tenant-a/vpod").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "session_not_bound");
    let r = thief.post("/kbs/v0/attest", body).await;
    assert_eq!(r.code(), "session_not_bound");
    // A made-up cookie.
    thief.cookie = Some("00".repeat(16));
    assert_eq!(
        thief
            .get("/kbs/v0/resource/tenant-a/vpod/config")
            .await
            .code(),
        "no_session"
    );
    // A session that never attested.
    let mut fresh = h.agent();
    fresh.auth().await;
    let r = fresh.get("/ualink/v0/tenants/tenant-a/vpod").await;
    assert_eq!(r.code(), "session_not_attested");
    // The owner still works.
    assert!(agent.resource("tenant-a/vpod/config").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_refused() {
    let h = Harness::start(|c| c.session_ttl = Duration::from_secs(1)).await;
    provision(&h).await;
    let mut agent = h.agent();
    assert_eq!(agent.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    assert!(agent.resource("tenant-a/vpod/config").await.is_ok());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let e = agent.resource("tenant-a/vpod/config").await.unwrap_err();
    assert_eq!(e.status, StatusCode::UNAUTHORIZED);
    assert_eq!(e.code(), "session_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_acts_for_one_tenant_only() {
    let h = Harness::start(|_| {}).await;
    provision(&h).await;
    let mut agent = h.agent();
    assert_eq!(agent.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    assert!(agent.resource("tenant-a/vpod/config").await.is_ok());
    // tenant-b's policy would accept this CVM too, but the session belongs to tenant-a.
    let e = agent.resource("tenant-b/vpod/config").await.unwrap_err();
    assert_eq!(e.status, StatusCode::FORBIDDEN);
    assert_eq!(e.code(), "wrong_tenant");
    let r = agent.get("/ualink/v0/tenants/tenant-b/vpod").await;
    assert_eq!(r.code(), "wrong_tenant");
    // Unknown tenant.
    let mut other = h.agent();
    other.attest(&h.sim_cvm()).await;
    assert_eq!(
        other
            .resource("nobody/vpod/config")
            .await
            .unwrap_err()
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cvm_the_tenant_policy_refuses_is_denied_and_audited_with_the_rule() {
    let h = Harness::start(|_| {}).await;
    provision(&h).await;
    let mut agent = h.agent();
    assert_eq!(agent.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    // tenant-c lists another launch measurement.
    let e = agent.resource("tenant-c/vpod/config").await.unwrap_err();
    assert_eq!(e.status, StatusCode::FORBIDDEN);
    assert_eq!(e.code(), "cvm_denied");
    let rules: Vec<String> = serde_json::from_value(e.json()["rules"].clone()).unwrap();
    assert!(
        rules.iter().any(|r| r == "deny.measurement_not_allowed"),
        "{rules:?}"
    );
    // Asked again: the cached verdict, no second record.
    assert_eq!(
        agent
            .resource("tenant-c/vpod/config")
            .await
            .unwrap_err()
            .code(),
        "cvm_denied"
    );
    let (state, _d) = h.stop().await;
    let recs = records(&state);
    let cvm: Vec<_> = recs
        .iter()
        .filter(|r| r.kind() == DecisionKind::CvmAppraisal)
        .collect();
    assert_eq!(cvm.len(), 1);
    assert_eq!(cvm[0].outcome(), Outcome::Deny);
    assert!(cvm[0]
        .rules()
        .iter()
        .any(|r| r == "deny.measurement_not_allowed"));
    let input = cvm[0].policy_input().unwrap();
    assert!(input.contains("\"tenant_id\":\"tenant-c\""), "{input}");
    assert!(input.contains(&hex::encode(ualink_attest::sim::default_measurement())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_evidence_from_an_untrusted_platform_is_refused() {
    // The service trusts no sim root at all.
    let h = Harness::start(|c| c.sim_cvm_roots.clear()).await;
    let mut agent = h.agent();
    let r = agent.attest(&h.sim_cvm()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "evidence_untrusted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_and_oversized_requests_get_specific_errors() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin();
    let mut agent = h.agent();
    // Malformed JSON.
    let r = admin
        .try_send("POST", "/ualink/v0/tenants", Some(b"{\"id\": 1,".to_vec()))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "malformed_json");
    // Unknown field.
    let r = admin
        .post(
            "/ualink/v0/tenants",
            json!({"id": 1, "name": "x", "lead_keys": false, "extra": 1}),
        )
        .await;
    assert_eq!(r.code(), "malformed_json");
    // Bad tenant name.
    let r = admin
        .post("/ualink/v0/tenants", json!({"id": 1, "name": "../x"}))
        .await;
    assert_eq!(r.code(), "invalid_request");
    // KBS: wrong version, unsupported TEEs.
    let r = agent
        .post(
            "/kbs/v0/auth",
            json!({"version": "0.1.0", "tee": "snp", "extra-params": ""}),
        )
        .await;
    assert_eq!(r.code(), "unsupported_version");
    for tee in ["sample", "tdx"] {
        let r = agent
            .post(
                "/kbs/v0/auth",
                json!({"version": "0.4.0", "tee": tee, "extra-params": ""}),
            )
            .await;
        assert_eq!(r.code(), "tee_not_supported", "{tee}");
    }
    // KBS bodies: an unknown member is refused, as on the ualink endpoints.
    let r = agent
        .post(
            "/kbs/v0/auth",
            json!({"version": "0.4.0", "tee": "snp", "extra-params": "", "tenant": "x"}),
        )
        .await;
    assert_eq!(r.code(), "malformed_json");
    let nonce = agent.auth().await;
    let mut body = agent.attest_body(&nonce, &agent.jwk(), &h.sim_cvm());
    body["extra"] = json!(1);
    let r = agent.post("/kbs/v0/attest", body).await;
    assert_eq!(r.code(), "malformed_json");
    // Garbage evidence.
    let nonce = agent.auth().await;
    let mut body = agent.attest_body(&nonce, &agent.jwk(), &h.sim_cvm());
    body["tee-evidence"]["primary_evidence"] =
        json!({"attestation_report": "!!", "cert_chain": []});
    let r = agent.post("/kbs/v0/attest", body).await;
    assert_eq!(r.code(), "malformed_evidence");
    // Oversized bodies: 1 MiB for the API, 4 MiB for attest.
    let reply = raw_exchange(
        &admin,
        format!(
            "POST /ualink/v0/tenants HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            (1 << 20) + 1
        )
        .as_bytes(),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("body_too_large"), "{reply}");
    // A chunked body that grows past the limit is cut off too.
    let mut chunked = b"POST /ualink/v0/tenants HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    chunked.extend_from_slice(format!("{:x}\r\n", (1 << 20) + 1).as_bytes());
    chunked.extend(std::iter::repeat_n(b' ', (1 << 20) + 1));
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let reply = raw_exchange(&admin, &chunked).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    // (A declared length over the limit is refused before any body byte is read.)
    let reply = raw_exchange(
        &agent,
        format!(
            "POST /kbs/v0/attest HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            (4 << 20) + 1
        )
        .as_bytes(),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("body_too_large"), "{reply}");
    let reply = raw_exchange(
        &agent,
        format!(
            "POST /kbs/v0/attest HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{{}}",
            2
        )
        .as_bytes(),
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 401"),
        "4 MiB limit, not 1 MiB: {reply}"
    );
    // Unknown endpoint.
    let r = admin.get("/ualink/v0/nothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    // Non-numeric ids.
    assert_eq!(
        admin.get("/ualink/v0/devices/x").await.code(),
        "invalid_request"
    );
    assert_eq!(
        admin.get("/ualink/v0/devices/999").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_off_at_the_header_deadline() {
    let h = Harness::start(|c| c.header_timeout = Duration::from_secs(1)).await;
    let agent = h.agent();
    let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let mut tls = agent
        .connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    tls.write_all(b"GET /ualink/v0/tsm HTTP/1.1\r\nHost: local")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    // Never finish the headers: the server must close the connection by itself.
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "the server kept a slow client's connection open");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected reply {text}"
    );
    // An idle connection (handshake done, nothing sent) is closed too.
    let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let mut idle = agent
        .connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "the server kept an idle connection open");
    // A TCP client that never starts the TLS handshake is dropped as well.
    let mut raw = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
    let mut b = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut b)).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
    // And the server still serves others.
    assert_eq!(h.agent().get("/ualink/v0/tsm").await.status, StatusCode::OK);
}

/// Writes `bytes` on a fresh TLS connection and reads the reply until the server closes.
async fn raw_exchange(c: &Client, bytes: &[u8]) -> String {
    let tcp = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    let mut tls = c
        .connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    // The server may answer and close before reading everything: ignore write errors.
    let _ = tls.write_all(bytes).await;
    let _ = tls.flush().await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_agent_kbs_client_with_its_tls_identity_completes_the_flow() {
    use std::sync::Arc;
    use ualink_guest_agent::kbs::{KbsClient, KbsTrust, ResourcePath};
    let h = Harness::start(|_| {}).await;
    provision(&h).await;
    let ca = std::fs::read(h.svc.tls_paths().tsm_ca()).unwrap();
    let url = format!("https://localhost:{}", h.addr().port());
    let identity = Arc::new(ualink_guest_agent::tls::AgentIdentity::generate("cvm-a").unwrap());
    let client = KbsClient::with_identity(&url, KbsTrust::Pem(ca), identity).unwrap();
    let cvm = h.sim_cvm();
    let session = client
        .auth(kbs_types::Tee::Snp)
        .await
        .unwrap()
        .attest(&cvm)
        .await
        .unwrap();
    let cfg = session
        .resource(&ResourcePath::parse("tenant-a/vpod/config").unwrap())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    assert_eq!(v["members"], json!([1, 2]));
    // A stock client without the TLS identity cannot even connect.
    let ca = std::fs::read(h.svc.tls_paths().tsm_ca()).unwrap();
    let anon = KbsClient::new(&url, KbsTrust::Pem(ca)).unwrap();
    assert!(anon.auth(kbs_types::Tee::Snp).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditor_verifies_and_replays_the_cvm_appraisals_the_service_recorded() {
    use ualink_attest::report::{audit, AuditInputs};
    let h = Harness::start(|_| {}).await;
    provision(&h).await;
    let mut a = h.agent();
    assert_eq!(a.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    assert!(a.resource("tenant-a/vpod/config").await.is_ok());
    let mut c = h.agent();
    assert_eq!(c.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    assert_eq!(
        c.resource("tenant-c/vpod/config").await.unwrap_err().code(),
        "cvm_denied"
    );
    let cvm_ark = h.sim_cvm().platform().ark_der().to_vec();
    let vendor_roots = h.svc.tsm().lock().unwrap().pod().vendor_roots();
    let (state, _d) = h.stop().await;
    let tsm_platform =
        ualink_attest::sim::SimPlatform::load_or_create(&state.join("sim-platform")).unwrap();
    let tee_anchors = tsm_platform
        .trust_anchors()
        .unwrap()
        .with_explicit_root_der(&cvm_ark)
        .unwrap();
    let mut device_anchors = ualink_spdm::cert_chain::TrustAnchors::new();
    for (_, der) in vendor_roots {
        device_anchors.add_der(&der).unwrap();
    }
    let inputs = AuditInputs {
        key_file: None,
        policy: Some(ualink_policy::PolicyBundle::load(state.join("policy")).unwrap()),
        tee_anchors,
        device_anchors,
        trusted_checkpoints: Vec::new(),
    };
    let log = std::fs::read(state.join("audit.log")).unwrap();
    let report = audit(&log, &inputs);
    let text = report.to_text();
    // Every record verifies, the CVM evidence under the CVM platform's root, and every
    // decision (the two CVM appraisals included) replays to what was recorded.
    assert_eq!(report.exit_code(), 0, "{text}");
    assert!(text.contains("(accepted measurement"), "{text}");
    assert!(text.contains("(denied measurement"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_does_not_carry_over_to_a_re_created_tenant_of_the_same_name() {
    let h = Harness::start(|_| {}).await;
    provision(&h).await;
    let mut agent = h.agent();
    assert_eq!(agent.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    assert!(agent.resource("tenant-a/vpod/config").await.is_ok());
    let admin = h.admin();
    let r = admin
        .send("DELETE", "/ualink/v0/tenants/tenant-a", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(
        agent.get("/ualink/v0/tenants/tenant-a/vpod").await.status,
        StatusCode::NOT_FOUND
    );
    let r = admin
        .post("/ualink/v0/tenants", json!({"id": 9, "name": "tenant-a"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = agent.get("/ualink/v0/tenants/tenant-a/vpod").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "wrong_tenant");
    // A fresh session is appraised for the new tenant.
    let mut again = h.agent();
    assert_eq!(again.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    let r = again.get("/ualink/v0/tenants/tenant-a/events").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
}
