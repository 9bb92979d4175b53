//! Scaffolding for the service tests: a 4-accelerator sim pod with a brought-up TSM served
//! on loopback (port 0), a minimal HTTP/1.1-over-rustls client with an admin or an agent-key
//! client certificate, and a sim CVM (ualink-guest-agent's sim evidence provider).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{json, Value};
use tokio_rustls::TlsConnector;
use ualink_guest_agent::evidence::sim::SimProvider;
use ualink_guest_agent::evidence::EvidenceProvider;
use ualink_guest_agent::kbs::jwe::EphemeralKey;
use ualink_policy::PolicyBundle;
use ualink_sim::pod::{GenParams, PodSpec};
use ualink_sim::SimPod;
use ualink_tsm::service::{serve, BoundService, ServiceConfig};
use ualink_tsm::{Tsm, TsmConfig};

pub const MEASUREMENT_OK: fn() -> [u8; 48] = ualink_attest::sim::default_measurement;

/// The policy overlay: the sim pod's data, tenants a and b accepting the sim CVM's default
/// measurement, tenant c listing another measurement, an a→b read sharing pair.
pub fn overlay(pod: &SimPod, spec: &PodSpec) -> Value {
    let mut v = ualink_tsm::demo::sim_pod_overlay(pod, spec);
    let m = hex::encode(MEASUREMENT_OK());
    let d = v["ualink_data"].as_object_mut().unwrap();
    d.insert(
        "tenants".into(),
        json!({
            "tenant-a": {"cvm": {"measurements": {"sim": [m]}}},
            "tenant-b": {"cvm": {"measurements": {"sim": [m]}}},
            "tenant-c": {"cvm": {"measurements": {"sim": ["00".repeat(48)]}}},
        }),
    );
    d.insert(
        "sharing".into(),
        json!({"pairs": [{"exporter": "tenant-a", "importer": "tenant-b", "rights": ["read"]}]}),
    );
    v
}

/// A 4-accelerator sim pod and the default policies with its [`overlay`].
pub fn pod_and_policy() -> (SimPod, PolicyBundle) {
    let spec = PodSpec::generate(&GenParams {
        accelerators: 4,
        switches: 1,
        memory_bytes: 1 << 20,
        spare_ports: 1,
    })
    .unwrap();
    let pod = SimPod::new(&spec).unwrap();
    let bundle = PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay(&pod, &spec))
        .unwrap();
    (pod, bundle)
}

/// A brought-up TSM over a 4-accelerator pod in `state`.
pub fn tsm(state: &Path) -> Tsm {
    let (pod, bundle) = pod_and_policy();
    let mut t = Tsm::open(TsmConfig::new(state, bundle), pod).unwrap();
    t.bring_up().unwrap();
    t
}

/// A running service, its sim CVM platform directory and a stop switch.
pub struct Harness {
    pub svc: BoundService,
    pub state: PathBuf,
    pub cvm_dir: PathBuf,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Starts a service with `tweak` applied to the default config (sim CVM root trusted,
    /// short header timeout).
    pub async fn start(tweak: impl FnOnce(&mut ServiceConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let cvm_dir = dir.path().join("cvm");
        let provider = SimProvider::load_or_create(&cvm_dir).unwrap();
        let st = state.clone();
        let t = tokio::task::spawn_blocking(move || tsm(&st)).await.unwrap();
        let mut cfg = ServiceConfig::new("127.0.0.1:0".parse().unwrap());
        cfg.sim_cvm_roots = vec![provider.platform().ark_der().to_vec()];
        cfg.header_timeout = Duration::from_secs(2);
        tweak(&mut cfg);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = serve(t, cfg, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
        Self {
            svc,
            state,
            cvm_dir,
            stop: Some(tx),
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.svc.local_addr()
    }

    pub fn ca(&self) -> Vec<CertificateDer<'static>> {
        pem_certs(&self.svc.tls_paths().tsm_ca())
    }

    pub fn admin(&self) -> Client {
        let p = self.svc.tls_paths();
        let cert = pem_certs(&p.admin_cert());
        let key = pem::parse(std::fs::read(p.admin_key()).unwrap()).unwrap();
        Client::new(
            self.addr(),
            &self.ca(),
            Some((cert, key.contents().to_vec())),
            None,
        )
    }

    /// A fresh agent: a new P-256 key in a self-signed certificate.
    pub fn agent(&self) -> Client {
        let (cert, pkcs8, scalar) = agent_identity();
        Client::new(
            self.addr(),
            &self.ca(),
            Some((vec![cert], pkcs8)),
            Some(EphemeralKey::from_scalar(&scalar).unwrap()),
        )
    }

    pub fn sim_cvm(&self) -> SimProvider {
        SimProvider::load_or_create(&self.cvm_dir).unwrap()
    }

    /// Stops the server and waits for it (final checkpoint written); returns the state
    /// directory and the temporary directory that holds it.
    pub async fn stop(mut self) -> (PathBuf, tempfile::TempDir) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.svc.join().await.unwrap();
        (self.state, self._dir)
    }
}

pub fn pem_certs(path: &Path) -> Vec<CertificateDer<'static>> {
    pem::parse_many(std::fs::read(path).unwrap())
        .unwrap()
        .into_iter()
        .map(|p| CertificateDer::from(p.contents().to_vec()))
        .collect()
}

/// A self-signed P-256 certificate, its PKCS#8 key and the key's scalar.
pub fn agent_identity() -> (CertificateDer<'static>, Vec<u8>, Vec<u8>) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let der = kp.serialize_der();
    // ring's P-256 PKCS#8 template: the 32-byte scalar sits at 36..68.
    assert_eq!(der.len(), 138, "unexpected PKCS#8 layout");
    assert_eq!(&der[34..36], &[0x04, 0x20], "unexpected PKCS#8 layout");
    let scalar = der[36..68].to_vec();
    let params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let cert = params.self_signed(&kp).unwrap();
    (cert.der().clone(), der, scalar)
}

/// A response.
#[derive(Debug)]
pub struct Rsp {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Rsp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
    pub fn cookie(&self) -> Option<String> {
        let v = self.headers.get(hyper::header::SET_COOKIE)?.to_str().ok()?;
        let first = v.split(';').next()?;
        first.strip_prefix("kbs-session-id=").map(str::to_string)
    }
}

/// A client with one TLS identity; one connection per request.
pub struct Client {
    pub addr: SocketAddr,
    pub connector: TlsConnector,
    pub key: Option<EphemeralKey>,
    pub cookie: Option<String>,
}

pub fn client_config(
    ca: &[CertificateDer<'static>],
    identity: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in ca {
        roots.add(c.clone()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    match identity {
        Some((certs, key)) => b
            .with_client_auth_cert(certs, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
            .unwrap(),
        None => b.with_no_client_auth(),
    }
}

impl Client {
    pub fn new(
        addr: SocketAddr,
        ca: &[CertificateDer<'static>],
        identity: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
        key: Option<EphemeralKey>,
    ) -> Self {
        let cfg = client_config(ca, identity, &[&rustls::version::TLS13]);
        Self {
            addr,
            connector: TlsConnector::from(Arc::new(cfg)),
            key,
            cookie: None,
        }
    }

    /// One request over a fresh connection; `Err` if the TLS handshake or the connection
    /// failed.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Rsp, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let tls = self
            .connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("kbs-session-id={c}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let rsp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = rsp.status();
        let headers = rsp.headers().clone();
        let body = rsp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes()
            .to_vec();
        Ok(Rsp {
            status,
            headers,
            body,
        })
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Rsp {
        self.try_send(method, path, body.map(|b| serde_json::to_vec(&b).unwrap()))
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Rsp {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Rsp {
        self.send("POST", path, Some(body)).await
    }

    /// The tee-pubkey JWK of this agent's TLS key.
    pub fn jwk(&self) -> kbs_types::TeePubKey {
        self.key.as_ref().unwrap().jwk()
    }

    /// `POST /kbs/v0/auth`; keeps the cookie; returns the nonce.
    pub async fn auth(&mut self) -> String {
        let r = self
            .post(
                "/kbs/v0/auth",
                json!({"version": "0.4.0", "tee": "snp", "extra-params": ""}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        self.cookie = r.cookie();
        assert!(self.cookie.is_some(), "no session cookie");
        r.json()["nonce"].as_str().unwrap().to_string()
    }

    /// The attest body for `nonce` with evidence from `cvm`, binding `jwk`.
    pub fn attest_body(
        &self,
        nonce: &str,
        jwk: &kbs_types::TeePubKey,
        cvm: &dyn EvidenceProvider,
    ) -> Value {
        let (_, rd) = ualink_guest_agent::kbs::binding(nonce, jwk, "").unwrap();
        let ev = cvm.evidence(&rd).unwrap();
        json!({
            "init-data": null,
            "runtime-data": {"nonce": nonce, "tee-pubkey": serde_json::to_value(jwk).unwrap()},
            "tee-evidence": {"primary_evidence": ev.to_kbs_json().unwrap(), "additional_evidence": ""},
        })
    }

    /// auth + attest with this agent's own key; returns the attest response.
    pub async fn attest(&mut self, cvm: &dyn EvidenceProvider) -> Rsp {
        let nonce = self.auth().await;
        let body = self.attest_body(&nonce, &self.jwk(), cvm);
        self.post("/kbs/v0/attest", body).await
    }

    /// Fetches and decrypts a KBS resource.
    pub async fn resource(&self, path: &str) -> Result<Vec<u8>, Rsp> {
        let r = self.get(&format!("/kbs/v0/resource/{path}")).await;
        if r.status != StatusCode::OK {
            return Err(r);
        }
        Ok(self
            .key
            .as_ref()
            .unwrap()
            .decrypt(&r.body)
            .unwrap()
            .to_vec())
    }
}

/// Base64url of bytes (for JWK coordinates).
pub fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// The audit records of a stopped TSM's state directory.
pub fn records(state: &Path) -> Vec<ualink_attest::audit::AuditRecord> {
    let bytes = std::fs::read(state.join("audit.log")).unwrap();
    // The checkpoint key is the TSM identity key, the CA key of tsm-ca.pem.
    let ca = pem_certs(&state.join("tls").join("tsm-ca.pem"));
    let (_, c) = x509_parser::parse_x509_certificate(ca[0].as_ref()).unwrap();
    let key = c.public_key().subject_public_key.data.to_vec();
    let v = ualink_attest::audit::verify_log(
        &bytes,
        &ualink_attest::audit::CheckpointVerifier::new(&key),
        &[],
    )
    .unwrap();
    (0..v.size())
        .map(|i| v.record(&bytes, i).unwrap())
        .collect()
}
