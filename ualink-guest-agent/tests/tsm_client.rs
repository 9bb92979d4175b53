//! The TSM client against a fake TSM over mutual TLS: the TSM identity check (evidence
//! binding the key, CA key and self-signature, pinned CA, untrusted root, malformed
//! answers), the agent's TLS client certificate carrying its tee-pubkey, and error paths
//! (the TSM's code/reason/rules, a report whose digest is not the bundle's).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use ualink_attest::pki::TrustAnchors;
use ualink_attest::sim::SimPlatform;
use ualink_attest::tdi_report::{tsm_report_data, TsmSigningKey};
use ualink_attest::UnixTime;
use ualink_guest_agent::evidence::sim::SimProvider;
use ualink_guest_agent::tls::{AgentIdentity, SelfSignedVerifier};
use ualink_guest_agent::tsm::api::{CertEntry, TsmInfo};
use ualink_guest_agent::tsm::{check_tsm_info, TsmClient, TsmTrust};
use ualink_guest_agent::{Error, ErrorClass};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        let p = std::env::temp_dir().join(format!("ualink-ga-tsm-{tag}-{}", hex::encode(b)));
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

/// A TSM identity: sim platform, P-384 key, evidence binding it, CA self-signed by it.
struct FakeTsm {
    _dir: TempDir,
    sim: SimPlatform,
    pkcs8: Vec<u8>,
    public_key: Vec<u8>,
    ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

fn p384(pkcs8: &[u8]) -> rcgen::KeyPair {
    rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(pkcs8),
        &rcgen::PKCS_ECDSA_P384_SHA384,
    )
    .unwrap()
}

fn ca_params() -> rcgen::CertificateParams {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "fake TSM CA");
    p
}

fn fake_tsm() -> FakeTsm {
    let dir = TempDir::new("id");
    let sim = SimPlatform::load_or_create(dir.path()).unwrap();
    let (key, pkcs8) = TsmSigningKey::generate().unwrap();
    let kp = p384(&pkcs8);
    let ca = ca_params().self_signed(&kp).unwrap();
    FakeTsm {
        _dir: dir,
        sim,
        public_key: key.public_key().to_vec(),
        pkcs8: pkcs8.to_vec(),
        ca_pem: ca.pem(),
        issuer: rcgen::Issuer::new(ca_params(), kp),
    }
}

impl FakeTsm {
    fn info_with(&self, report_data: &[u8; 64], ca_pem: &str) -> TsmInfo {
        let certs = self.sim.certs();
        TsmInfo {
            public_key: hex::encode(&self.public_key),
            evidence: STANDARD.encode(self.sim.report(report_data).unwrap()),
            cert_chain: vec![
                CertEntry {
                    cert_type: "vcek".into(),
                    data: STANDARD.encode(&certs.leaf),
                },
                CertEntry {
                    cert_type: "ask".into(),
                    data: STANDARD.encode(&certs.intermediates[0]),
                },
            ],
            ca_pem: ca_pem.into(),
        }
    }

    fn info(&self) -> TsmInfo {
        self.info_with(&tsm_report_data(&self.public_key), &self.ca_pem)
    }

    fn trust(&self) -> TsmTrust {
        TsmTrust {
            roots: self.sim.trust_anchors().unwrap(),
            pinned_ca_pem: None,
        }
    }
}

fn class(r: Result<impl std::fmt::Debug, Error>) -> (ErrorClass, String) {
    let e = r.unwrap_err();
    (e.class(), e.to_string())
}

#[test]
fn a_tsm_whose_evidence_binds_its_ca_key_is_accepted() {
    let t = fake_tsm();
    let v = check_tsm_info(&t.info(), &t.trust(), UnixTime::now()).unwrap();
    assert_eq!(v.public_key, t.public_key);
    assert!(v.evidence.report_data_checked);
    let mut f = [0u8; 48];
    f.copy_from_slice(ring::digest::digest(&ring::digest::SHA384, &t.public_key).as_ref());
    assert_eq!(v.key_fingerprint(), f);
    // Pinned to the same CA: still accepted.
    let mut pinned = t.trust();
    pinned.pinned_ca_pem = Some(t.ca_pem.clone().into_bytes());
    check_tsm_info(&t.info(), &pinned, UnixTime::now()).unwrap();
}

#[test]
fn tsm_identity_refusals() {
    let t = fake_tsm();
    let now = UnixTime::now();
    // Evidence that binds another key.
    let (c, m) = class(check_tsm_info(
        &t.info_with(&[7u8; 64], &t.ca_pem),
        &t.trust(),
        now,
    ));
    assert_eq!(c, ErrorClass::Verification, "{m}");
    // Evidence from a platform the tenant does not trust.
    let other = TempDir::new("other");
    let untrusted = TsmTrust {
        roots: SimPlatform::load_or_create(other.path())
            .unwrap()
            .trust_anchors()
            .unwrap(),
        pinned_ca_pem: None,
    };
    let (c, m) = class(check_tsm_info(&t.info(), &untrusted, now));
    assert_eq!(c, ErrorClass::Verification, "{m}");
    let (c, _) = class(check_tsm_info(
        &t.info(),
        &TsmTrust {
            roots: TrustAnchors::empty(),
            pinned_ca_pem: None,
        },
        now,
    ));
    assert_eq!(c, ErrorClass::Verification);
    // A CA with another key.
    let other_ca = ca_params()
        .self_signed(&rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap())
        .unwrap()
        .pem();
    let (c, m) = class(check_tsm_info(
        &t.info_with(&tsm_report_data(&t.public_key), &other_ca),
        &t.trust(),
        now,
    ));
    assert_eq!(c, ErrorClass::PeerMisbehaved, "{m}");
    assert!(m.contains("not the key its evidence binds"), "{m}");
    // A CA carrying the attested key but signed by another one.
    let forger = rcgen::Issuer::new(
        ca_params(),
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
    );
    let forged = ca_params()
        .signed_by(&p384(&t.pkcs8), &forger)
        .unwrap()
        .pem();
    let (c, m) = class(check_tsm_info(
        &t.info_with(&tsm_report_data(&t.public_key), &forged),
        &t.trust(),
        now,
    ));
    assert_eq!(c, ErrorClass::PeerMisbehaved, "{m}");
    assert!(m.contains("self-signed"), "{m}");
    // Pinned to another CA.
    let mut pinned = t.trust();
    pinned.pinned_ca_pem = Some(other_ca.clone().into_bytes());
    let (c, m) = class(check_tsm_info(&t.info(), &pinned, now));
    assert_eq!(c, ErrorClass::PeerMisbehaved, "{m}");
    assert!(m.contains("pinned"), "{m}");
    // Malformed answers.
    let mut bad = t.info();
    bad.public_key = "zz".into();
    assert_eq!(
        class(check_tsm_info(&bad, &t.trust(), now)).0,
        ErrorClass::Malformed
    );
    let mut bad = t.info();
    bad.cert_chain.remove(0);
    assert_eq!(
        class(check_tsm_info(&bad, &t.trust(), now)).0,
        ErrorClass::Malformed
    );
    let mut bad = t.info();
    bad.ca_pem = format!("{}{}", t.ca_pem, other_ca);
    assert_eq!(
        class(check_tsm_info(&bad, &t.trust(), now)).0,
        ErrorClass::Malformed
    );
    let mut bad = t.info();
    bad.cert_chain[1].cert_type = "ark".into();
    assert_eq!(
        class(check_tsm_info(&bad, &t.trust(), now)).0,
        ErrorClass::Malformed
    );
}

/// What the fake server saw and how it misbehaves.
#[derive(Default)]
struct Seen {
    client_keys: Vec<Vec<u8>>,
    tee_pubkeys: Vec<serde_json::Value>,
    reports: usize,
    rejects: Vec<serde_json::Value>,
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    info: Arc<TsmInfo>,
    seen: Arc<Mutex<Seen>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    match path.as_str() {
        "/ualink/v0/tsm" => json(StatusCode::OK, serde_json::to_value(&*info).unwrap()),
        "/kbs/v0/auth" => Response::builder()
            .header("set-cookie", "kbs-session-id=0123456789abcdef; Max-Age=300")
            .body(Full::new(Bytes::from(
                serde_json::json!({"nonce": STANDARD.encode([9u8; 32]), "extra-params": ""})
                    .to_string(),
            )))
            .unwrap(),
        "/kbs/v0/attest" => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            seen.lock()
                .unwrap()
                .tee_pubkeys
                .push(v["runtime-data"]["tee-pubkey"].clone());
            json(
                StatusCode::OK,
                serde_json::json!({"token": "ear.token.sig"}),
            )
        }
        "/ualink/v0/tenants/tenant-a/vpod" => json(
            StatusCode::CONFLICT,
            serde_json::json!({"code": "cvm_denied", "reason": "measurement", "rules": ["measurement_not_allowed"]}),
        ),
        "/ualink/v0/tenants/tenant-s/vpod" => json(
            StatusCode::OK,
            serde_json::json!({"tenant": "tenant-s", "members": [1], "lead_keys": false,
                "tdis": [{"accelerator_id": 1, "state": "CONFIG_LOCKED", "epoch": 1,
                          "report_digest": hex::encode(ring::digest::digest(&ring::digest::SHA384, b"bundle"))}],
                "epoch_sum": 1}),
        ),
        "/ualink/v0/tenants/tenant-s/tdis/1/report" => {
            seen.lock().unwrap().reports += 1;
            json(
                StatusCode::OK,
                serde_json::json!({"bundle": STANDARD.encode(b"bundle"),
                    "report_digest": hex::encode(ring::digest::digest(&ring::digest::SHA384, b"bundle")),
                    "epoch": 1}),
            )
        }
        "/ualink/v0/tenants/tenant-s/tdis/1/reject" => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let mut s = seen.lock().unwrap();
            s.rejects.push(v);
            if s.rejects.len() == 1 {
                json(
                    StatusCode::CONFLICT,
                    serde_json::json!({"code": "stale_report", "reason": "fetch the report again"}),
                )
            } else {
                json(
                    StatusCode::OK,
                    serde_json::json!({"state": "CONFIG_UNLOCKED"}),
                )
            }
        }
        "/ualink/v0/tenants/tenant-a/tdis/1/report" => json(
            StatusCode::OK,
            serde_json::json!({"bundle": STANDARD.encode(b"bundle"), "report_digest": "00".repeat(48), "epoch": 1}),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"code": "not_found", "reason": path}),
        ),
    }
}

/// Serves `info` over TLS (server certificate signed by the TSM CA, client certificate
/// required); returns the URL.
async fn serve(t: &FakeTsm, seen: Arc<Mutex<Seen>>) -> String {
    let server_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&server_key, &t.issuer)
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_client_cert_verifier(SelfSignedVerifier::new())
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let info = Arc::new(t.info());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, info, seen) = (acceptor.clone(), info.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
                let key = ualink_guest_agent::tls::cert_public_key(cert.as_ref()).unwrap();
                seen.lock().unwrap().client_keys.push(key);
                let svc = hyper::service::service_fn(move |req| {
                    let (info, seen) = (info.clone(), seen.clone());
                    async move { Ok::<_, std::convert::Infallible>(handle(req, info, seen).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn the_client_certificate_is_the_tee_pubkey_and_refusals_carry_the_tsm_code() {
    let t = fake_tsm();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve(&t, seen.clone()).await;
    let cvm_dir = TempDir::new("cvm");
    let cvm = SimProvider::load_or_create(cvm_dir.path()).unwrap();
    let id = Arc::new(AgentIdentity::generate("agent").unwrap());
    let c = TsmClient::connect(&url, "tenant-a", id.clone(), &cvm, &t.trust())
        .await
        .unwrap();
    assert_eq!(c.token().unwrap(), "ear.token.sig");
    assert!(!c.session_expiring());
    // A renewed session: same TLS key, evidence again.
    c.reattest(&cvm).await.unwrap();
    assert_eq!(seen.lock().unwrap().tee_pubkeys.len(), 2);
    assert_eq!(c.tsm().public_key, t.public_key);
    {
        let s = seen.lock().unwrap();
        // Every connection (bootstrap, auth, attest) presented the agent's key ...
        assert!(s.client_keys.len() >= 3);
        assert!(s.client_keys.iter().all(|k| *k == id.public_sec1()));
        // ... and it is the tee-pubkey the evidence binds.
        let jwk = &s.tee_pubkeys[0];
        let pk = id.public_sec1();
        assert_eq!(jwk["x"], URL_SAFE_NO_PAD.encode(&pk[1..33]));
        assert_eq!(jwk["y"], URL_SAFE_NO_PAD.encode(&pk[33..]));
    }
    let e = c.vpod().await.unwrap_err();
    assert_eq!(e.tsm_code(), Some("cvm_denied"));
    assert!(e.to_string().contains("measurement_not_allowed"), "{e}");
    let e = c.tdi_report(1).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::PeerMisbehaved, "{e}");
    let e = c.revoke("../x").await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::ApiMisuse);
    // A tenant name that is not a path segment is refused before anything is sent.
    let e = TsmClient::connect(&url, "a/b", id, &cvm, &t.trust())
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::ApiMisuse);
}

#[tokio::test]
async fn a_tsm_the_tenant_does_not_trust_gets_no_evidence() {
    let t = fake_tsm();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve(&t, seen.clone()).await;
    let cvm_dir = TempDir::new("cvm2");
    let cvm = SimProvider::load_or_create(cvm_dir.path()).unwrap();
    let id = Arc::new(AgentIdentity::generate("agent").unwrap());
    let untrusted = TsmTrust {
        roots: TrustAnchors::empty(),
        pinned_ca_pem: None,
    };
    let e = TsmClient::connect(&url, "tenant-a", id, &cvm, &untrusted)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Verification, "{e}");
    assert!(
        seen.lock().unwrap().tee_pubkeys.is_empty(),
        "no attestation after a failed TSM check"
    );
}

#[tokio::test]
async fn a_rejection_the_tsm_calls_stale_is_judged_again_on_the_new_report() {
    use ualink_guest_agent::agent::{Agent, AgentConfig, TdiDecision};
    use ualink_guest_agent::peer::TenantTrust;
    let t = fake_tsm();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let url = serve(&t, seen.clone()).await;
    let cvm_dir = TempDir::new("cvm3");
    let cvm = Arc::new(SimProvider::load_or_create(cvm_dir.path()).unwrap());
    let agent = Agent::connect(AgentConfig {
        tsm_url: url,
        tenant: "tenant-s".into(),
        cvm_roots: cvm.platform().trust_anchors().unwrap(),
        provider: cvm,
        tsm_trust: t.trust(),
        trust: TenantTrust {
            device_roots: ualink_attest::spdm_evidence::DeviceTrustAnchors::new(),
            tsm_roots: t.trust().roots,
        },
        policy: ualink_policy::PolicyEngine::new(&ualink_policy::PolicyBundle::defaults().unwrap()),
        lead: false,
        device_claims: Default::default(),
        accelerators: None,
        tx_ports: vec![0],
    })
    .await
    .unwrap();
    let r = agent.attest_peers().await.unwrap();
    match &r.tdi(1).unwrap().decision {
        // No device identity is known for it: fail closed.
        TdiDecision::Rejected { failed_checks } => {
            assert_eq!(failed_checks[0].check, "device_claims", "{failed_checks:?}")
        }
        other => panic!("{other:?}"),
    }
    let s = seen.lock().unwrap();
    assert_eq!(
        s.reports, 2,
        "the report was fetched again after stale_report"
    );
    assert_eq!(s.rejects.len(), 2);
    assert!(s.rejects[1]["failed_checks"][0]
        .as_str()
        .unwrap()
        .starts_with("device_claims: "));
}
