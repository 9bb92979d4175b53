//! The KBS client: JWE known-answer vectors, and the full RCAR flow against a small KBS test
//! peer on 127.0.0.1 that implements the documented protocol 0.4.0 (auth, attest with the
//! report_data binding checked through ualink-attest's SNP verifier, JWE resources built with
//! ring's ECDH — an implementation independent of the client's p256), including every refusal.
//! The peer reads SNP evidence in both formats: ours (raw bytes) and a stock Trustee KBS's
//! (sev's serde form, deserialized here as Trustee does and re-encoded to bytes before the
//! signature check), and records which one each attestation used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ring::agreement::{agree_ephemeral, EphemeralPrivateKey, UnparsedPublicKey, ECDH_P256};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use ualink_attest::snp::{SnpCerts, SnpVerifier};
use ualink_attest::{ExpectedReportData, UnixTime};
use ualink_guest_agent::evidence::sample::SampleProvider;
use ualink_guest_agent::evidence::sim::SimProvider;
use ualink_guest_agent::evidence::{EvidenceFormat, EvidenceProvider};
use ualink_guest_agent::kbs::jwe::{concat_kdf_sha256, EphemeralKey};
use ualink_guest_agent::kbs::{fetch_resource, KbsClient, KbsTrust, ResourcePath};
use ualink_guest_agent::{Error, ErrorClass};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let mut b = [0u8; 8];
        SystemRandom::new().fill(&mut b).unwrap();
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

// ---------------------------------------------------------------------------------------
// JWE known-answer vectors.

#[test]
fn jwe_vector_from_pyca_cryptography_decrypts() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("data/jwe_ecdh_es_a256kw.json")).unwrap();
    let key = EphemeralKey::from_scalar(&hex::decode(v["recipient_d"].as_str().unwrap()).unwrap())
        .unwrap();
    let jwe = serde_json::to_vec(&v["jwe"]).unwrap();
    let pt = key.decrypt(&jwe).unwrap();
    assert_eq!(pt.as_slice(), v["plaintext"].as_str().unwrap().as_bytes());

    // Any change to a field is refused, each with its own reason.
    let tamper = |field: &str, f: &dyn Fn(&str) -> String| {
        let mut j = v["jwe"].clone();
        j[field] = serde_json::Value::String(f(j[field].as_str().unwrap()));
        key.decrypt(&serde_json::to_vec(&j).unwrap()).unwrap_err()
    };
    let flip_b64 = |s: &str| {
        let mut b = URL_SAFE_NO_PAD.decode(s).unwrap();
        b[0] ^= 1;
        URL_SAFE_NO_PAD.encode(b)
    };
    assert_eq!(tamper("ciphertext", &flip_b64).class(), ErrorClass::Crypto);
    assert_eq!(tamper("tag", &flip_b64).class(), ErrorClass::Crypto);
    assert_eq!(tamper("iv", &flip_b64).class(), ErrorClass::Crypto);
    assert!(
        matches!(tamper("encrypted_key", &flip_b64), Error::Crypto { what } if what.contains("unwrap"))
    );
    // The protected header as received is the AAD: re-encoding it (here with a space) fails
    // the tag even though it decodes to the same header.
    let reencoded = |s: &str| {
        let h = String::from_utf8(URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap();
        URL_SAFE_NO_PAD.encode(h.replacen(',', ", ", 1))
    };
    assert_eq!(tamper("protected", &reencoded).class(), ErrorClass::Crypto);
    // The wrong recipient key cannot unwrap.
    let other = EphemeralKey::generate().unwrap();
    assert_eq!(other.decrypt(&jwe).unwrap_err().class(), ErrorClass::Crypto);
}

#[test]
fn jwe_header_refusals() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("data/jwe_ecdh_es_a256kw.json")).unwrap();
    let key = EphemeralKey::from_scalar(&hex::decode(v["recipient_d"].as_str().unwrap()).unwrap())
        .unwrap();
    let with_header = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut j = v["jwe"].clone();
        let mut h: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(j["protected"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        edit(&mut h);
        j["protected"] = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&h).unwrap())
            .into();
        key.decrypt(&serde_json::to_vec(&j).unwrap()).unwrap_err()
    };
    let e = with_header(&|h| h["alg"] = "RSA-OAEP".into());
    assert_eq!(e.class(), ErrorClass::PeerIncompatible, "{e}");
    let e = with_header(&|h| h["enc"] = "A128GCM".into());
    assert_eq!(e.class(), ErrorClass::PeerIncompatible, "{e}");
    let e = with_header(&|h| h["zip"] = "DEF".into());
    assert_eq!(e.class(), ErrorClass::PeerIncompatible, "{e}");
    let e = with_header(&|h| h["epk"]["crv"] = "P-384".into());
    assert_eq!(e.class(), ErrorClass::PeerIncompatible, "{e}");
    let e = with_header(&|h| h["epk"]["y"] = URL_SAFE_NO_PAD.encode([7u8; 32]).into());
    assert!(e.to_string().contains("not a point on P-256"), "{e}");
    let mut j = v["jwe"].clone();
    j["header"] = serde_json::json!({});
    let e = key.decrypt(&serde_json::to_vec(&j).unwrap()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Malformed, "{e}");
}

// ---------------------------------------------------------------------------------------
// The KBS test peer.

/// How the test KBS misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Requires protocol 0.3.0 and refuses ours.
    OldVersionOnly,
    /// Sends a nonce that is not base64.
    BadNonce,
    /// Sends a 4-byte nonce.
    ShortNonce,
    /// Sets no session cookie.
    NoCookie,
    /// Ends the session after attestation (resource → 401 expired).
    ExpireAfterAttest,
    /// Alters one ciphertext byte of the resource JWE.
    TamperJwe,
    /// Encrypts the resource to a key other than the attested one.
    WrongRecipient,
    /// Replies to attest with a token that is empty.
    EmptyToken,
}

struct Session {
    nonce: String,
    attested_key: Option<serde_json::Value>,
}

struct Kbs {
    fault: Fault,
    /// Roots for SNP-format evidence (the sim ARK).
    snp: SnpVerifier,
    sessions: Mutex<HashMap<String, Session>>,
    resources: HashMap<String, Vec<u8>>,
    /// What the peer saw (for assertions).
    seen: Mutex<Vec<String>>,
    /// The SNP evidence format of each attestation (`ualink` or `trustee`).
    formats: Mutex<Vec<&'static str>>,
}

/// Trustee's `SnpEvidence` (deps/verifier/src/snp), as a stock KBS deserializes it.
#[derive(serde::Deserialize)]
struct TrusteeSnpEvidence {
    attestation_report: sev::firmware::guest::AttestationReport,
    cert_chain: Option<Vec<sev::firmware::host::CertTableEntry>>,
}

fn err(status: StatusCode, kind: &str, detail: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "type": format!("https://github.com/confidential-containers/kbs/errors/{kind}"),
        "detail": detail,
    });
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn ok_json(v: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn cookie_of(req: &Request<hyper::body::Incoming>) -> Option<String> {
    let c = req.headers().get("cookie")?.to_str().ok()?;
    c.split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(n, _)| *n == "kbs-session-id")
        .map(|(_, v)| v.to_string())
}

/// The test peer's own canonical form, written independently of the client's JCS: members
/// sorted through a BTreeMap (equal to UTF-16 order for these ASCII keys), leaves printed by
/// serde_json (strings only here). serde_json's `Map` may keep insertion order (its
/// `preserve_order` feature is on in this workspace), so it is not relied upon.
fn peer_canonical(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: std::collections::BTreeMap<&String, &serde_json::Value> =
                m.iter().collect();
            let members: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        peer_canonical(v)
                    )
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
        other => other.to_string(),
    }
}

fn peer_report_data(nonce: &str, pk: &serde_json::Value, additional: &str) -> [u8; 64] {
    let doc =
        serde_json::json!({"additional-evidence": additional, "nonce": nonce, "tee-pubkey": pk});
    let mut rd = [0u8; 64];
    rd[..48].copy_from_slice(
        ring::digest::digest(&ring::digest::SHA384, peer_canonical(&doc).as_bytes()).as_ref(),
    );
    rd
}

/// A JWE to `pk` built with ring's ECDH and AES-GCM (the client uses p256 for ECDH).
fn seal_jwe(pk: &serde_json::Value, plaintext: &[u8], tamper: bool) -> Vec<u8> {
    let rng = SystemRandom::new();
    let x = URL_SAFE_NO_PAD.decode(pk["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(pk["y"].as_str().unwrap()).unwrap();
    let peer = [&[4u8][..], &x, &y].concat();
    let eph = EphemeralPrivateKey::generate(&ECDH_P256, &rng).unwrap();
    let epk = eph.compute_public_key().unwrap();
    let (ex, ey) = (&epk.as_ref()[1..33], &epk.as_ref()[33..65]);
    let kek: [u8; 32] = agree_ephemeral(eph, &UnparsedPublicKey::new(&ECDH_P256, peer), |z| {
        concat_kdf_sha256(z, b"ECDH-ES+A256KW", b"", b"", 256)
            .unwrap()
            .to_vec()
    })
    .unwrap()
    .try_into()
    .unwrap();
    let mut cek = [0u8; 32];
    rng.fill(&mut cek).unwrap();
    let mut wrapped = [0u8; 40];
    aes_kw::KekAes256::from(kek)
        .wrap(&cek, &mut wrapped)
        .unwrap();
    let header = serde_json::json!({"alg": "ECDH-ES+A256KW", "enc": "A256GCM",
        "epk": {"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(ex), "y": URL_SAFE_NO_PAD.encode(ey)}});
    let protected = URL_SAFE_NO_PAD.encode(header.to_string());
    let mut iv = [0u8; 12];
    rng.fill(&mut iv).unwrap();
    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &cek).unwrap(),
    );
    let mut buf = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            ring::aead::Nonce::assume_unique_for_key(iv),
            ring::aead::Aad::from(protected.as_bytes()),
            &mut buf,
        )
        .unwrap();
    if tamper {
        buf[0] ^= 0x80;
    }
    serde_json::to_vec(&serde_json::json!({
        "protected": protected, "encrypted_key": URL_SAFE_NO_PAD.encode(wrapped),
        "iv": URL_SAFE_NO_PAD.encode(iv), "ciphertext": URL_SAFE_NO_PAD.encode(&buf),
        "tag": URL_SAFE_NO_PAD.encode(tag.as_ref()),
    }))
    .unwrap()
}

impl Kbs {
    fn new_session(&self) -> (String, String) {
        let rng = SystemRandom::new();
        let mut id = [0u8; 16];
        rng.fill(&mut id).unwrap();
        let mut nonce = [0u8; 32];
        rng.fill(&mut nonce).unwrap();
        let (id, nonce) = (hex::encode(id), STANDARD.encode(nonce));
        self.sessions.lock().unwrap().insert(
            id.clone(),
            Session {
                nonce: nonce.clone(),
                attested_key: None,
            },
        );
        (id, nonce)
    }

    fn verify_evidence(
        &self,
        tee: &str,
        ev: &serde_json::Value,
        rd: &[u8; 64],
    ) -> Result<(), String> {
        match tee {
            "sample" => {
                let got = STANDARD
                    .decode(ev["report_data"].as_str().ok_or("no report_data")?)
                    .map_err(|e| e.to_string())?;
                (got == rd[..48])
                    .then_some(())
                    .ok_or_else(|| "sample report_data mismatch".into())
            }
            "snp" if ev["attestation_report"].is_object() => {
                use sev::firmware::host::CertType;
                use sev::parser::ByteParser as _;
                self.formats.lock().unwrap().push("trustee");
                let t: TrusteeSnpEvidence =
                    serde_json::from_value(ev.clone()).map_err(|e| e.to_string())?;
                let report = t
                    .attestation_report
                    .to_bytes()
                    .map_err(|e| e.to_string())?
                    .to_vec();
                let chain = t.cert_chain.ok_or("no cert_chain")?;
                let der = |t: CertType| -> Vec<Vec<u8>> {
                    chain
                        .iter()
                        .filter(|c| c.cert_type == t)
                        .map(|c| c.data().to_vec())
                        .collect()
                };
                let certs = SnpCerts {
                    leaf: der(CertType::VCEK).pop().ok_or("no VCEK")?,
                    intermediates: der(CertType::ASK),
                };
                self.snp
                    .verify(
                        &report,
                        &certs,
                        &ExpectedReportData::Expected(*rd),
                        UnixTime::now(),
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            "snp" => {
                self.formats.lock().unwrap().push("ualink");
                let report = STANDARD
                    .decode(ev["attestation_report"].as_str().ok_or("no report")?)
                    .map_err(|e| e.to_string())?;
                let chain = ev["cert_chain"].as_array().ok_or("no cert_chain")?;
                let der = |t: &str| -> Vec<Vec<u8>> {
                    chain
                        .iter()
                        .filter(|c| c["cert_type"] == t)
                        .map(|c| STANDARD.decode(c["data"].as_str().unwrap()).unwrap())
                        .collect()
                };
                let certs = SnpCerts {
                    leaf: der("vcek").pop().ok_or("no vcek")?,
                    intermediates: der("ask"),
                };
                self.snp
                    .verify(
                        &report,
                        &certs,
                        &ExpectedReportData::Expected(*rd),
                        UnixTime::now(),
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("tee {other} not supported by the test KBS")),
        }
    }

    async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let cookie = cookie_of(&req);
        self.seen.lock().unwrap().push(format!("{method} {path}"));
        let body = req.into_body().collect().await.unwrap().to_bytes();
        match (method.as_str(), path.as_str()) {
            ("POST", "/kbs/v0/auth") => {
                let r: kbs_types::Request = match serde_json::from_slice(&body) {
                    Ok(r) => r,
                    Err(e) => {
                        return err(StatusCode::BAD_REQUEST, "InvalidRequest", &e.to_string())
                    }
                };
                let want = if self.fault == Fault::OldVersionOnly {
                    "0.3.0"
                } else {
                    "0.4.0"
                };
                if r.version != want {
                    return err(
                        StatusCode::BAD_REQUEST,
                        "ProtocolVersion",
                        &format!("expected version {want}, got {}", r.version),
                    );
                }
                let (id, mut nonce) = self.new_session();
                if self.fault == Fault::BadNonce {
                    nonce = "not*base64!".into();
                }
                if self.fault == Fault::ShortNonce {
                    nonce = STANDARD.encode([1, 2, 3, 4]);
                }
                let mut resp = ok_json(&serde_json::json!({"nonce": nonce, "extra-params": ""}));
                if self.fault != Fault::NoCookie {
                    resp.headers_mut().insert(
                        "set-cookie",
                        format!("kbs-session-id={id}; Expires=Wed, 01 Jan 2099 00:00:00 GMT")
                            .parse()
                            .unwrap(),
                    );
                }
                resp
            }
            ("POST", "/kbs/v0/attest") => {
                let Some(id) = cookie else {
                    return err(
                        StatusCode::UNAUTHORIZED,
                        "MissingCookie",
                        "no kbs-session-id cookie",
                    );
                };
                let att: kbs_types::Attestation = match serde_json::from_slice(&body) {
                    Ok(a) => a,
                    Err(e) => {
                        return err(StatusCode::BAD_REQUEST, "InvalidRequest", &e.to_string())
                    }
                };
                let mut sessions = self.sessions.lock().unwrap();
                let Some(s) = sessions.get_mut(&id) else {
                    return err(StatusCode::UNAUTHORIZED, "InvalidCookie", "unknown session");
                };
                if att.runtime_data.nonce != s.nonce {
                    return err(
                        StatusCode::UNAUTHORIZED,
                        "NonceMismatch",
                        "runtime-data nonce is not the challenge",
                    );
                }
                let pk = serde_json::to_value(&att.runtime_data.tee_pubkey).unwrap();
                let rd = peer_report_data(&s.nonce, &pk, &att.tee_evidence.additional_evidence);
                let tee = if att.tee_evidence.primary_evidence.get("svn").is_some() {
                    "sample"
                } else {
                    "snp"
                };
                if let Err(e) = self.verify_evidence(tee, &att.tee_evidence.primary_evidence, &rd) {
                    return err(StatusCode::UNAUTHORIZED, "AttestationFailed", &e);
                }
                s.attested_key = Some(pk);
                let token = if self.fault == Fault::EmptyToken {
                    ""
                } else {
                    "test-token"
                };
                ok_json(&serde_json::json!({"token": token}))
            }
            ("GET", p) if p.starts_with("/kbs/v0/resource/") => {
                let Some(id) = cookie else {
                    return err(
                        StatusCode::UNAUTHORIZED,
                        "MissingCookie",
                        "no kbs-session-id cookie",
                    );
                };
                if self.fault == Fault::ExpireAfterAttest {
                    return err(
                        StatusCode::UNAUTHORIZED,
                        "ExpiredCookie",
                        "the session expired",
                    );
                }
                let sessions = self.sessions.lock().unwrap();
                let Some(pk) = sessions.get(&id).and_then(|s| s.attested_key.clone()) else {
                    return err(
                        StatusCode::UNAUTHORIZED,
                        "UnAuthenticatedCookie",
                        "session not attested",
                    );
                };
                let Some(secret) = self.resources.get(&p["/kbs/v0/resource/".len()..]) else {
                    return err(
                        StatusCode::NOT_FOUND,
                        "ResourceNotFound",
                        "no such resource",
                    );
                };
                let pk = if self.fault == Fault::WrongRecipient {
                    serde_json::to_value(EphemeralKey::generate().unwrap().jwk()).unwrap()
                } else {
                    pk
                };
                let jwe = seal_jwe(&pk, secret, self.fault == Fault::TamperJwe);
                Response::new(Full::new(Bytes::from(jwe)))
            }
            _ => err(StatusCode::NOT_FOUND, "NotFound", "no such endpoint"),
        }
    }
}

struct Peer {
    url: String,
    kbs: Arc<Kbs>,
    _dir: TempDir,
    sim: SimProvider,
}

async fn start(fault: Fault) -> Peer {
    start_with(fault, None).await
}

/// A CA and a `localhost` server certificate signed by it: (CA PEM, server config).
fn tls_server() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{
        BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    };
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (ca.pem(), Arc::new(cfg))
}

async fn start_with(fault: Fault, tls: Option<Arc<rustls::ServerConfig>>) -> Peer {
    let dir = TempDir::new("kbs");
    let sim = SimProvider::load_or_create(&dir.path().join("sim")).unwrap();
    let kbs = Arc::new(Kbs {
        fault,
        snp: SnpVerifier::new(sim.platform().trust_anchors().unwrap()),
        sessions: Mutex::new(HashMap::new()),
        resources: HashMap::from([(
            "default/key/tenant-a".to_string(),
            b"s3cret key bytes".to_vec(),
        )]),
        seen: Mutex::new(Vec::new()),
        formats: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = match tls {
        Some(_) => format!("https://localhost:{port}"),
        None => format!("http://127.0.0.1:{port}"),
    };
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let k = kbs.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let k = k.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let k = k.clone();
                    async move { Ok::<_, std::convert::Infallible>(k.handle(req).await) }
                });
                let http = hyper::server::conn::http1::Builder::new();
                let _ = match acceptor {
                    None => http.serve_connection(TokioIo::new(tcp), svc).await,
                    Some(a) => match a.accept(tcp).await {
                        Ok(tls) => http.serve_connection(TokioIo::new(tls), svc).await,
                        Err(_) => return,
                    },
                };
            });
        }
    });
    Peer {
        url,
        kbs,
        _dir: dir,
        sim,
    }
}

fn resource() -> ResourcePath {
    ResourcePath::parse("default/key/tenant-a").unwrap()
}

async fn run(
    fault: Fault,
    provider: Option<&dyn EvidenceProvider>,
) -> (Result<Vec<u8>, Error>, Arc<Kbs>) {
    let p = start(fault).await;
    let client = KbsClient::new(&p.url, KbsTrust::WebPki).unwrap();
    assert!(client.is_plaintext());
    let provider = provider.unwrap_or(&p.sim);
    let r = fetch_resource(&client, provider, &resource())
        .await
        .map(|z| z.to_vec());
    (r, p.kbs)
}

#[tokio::test]
async fn rcar_with_sim_evidence_fetches_and_decrypts() {
    let (r, kbs) = run(Fault::None, None).await;
    assert_eq!(r.unwrap(), b"s3cret key bytes");
    assert_eq!(
        *kbs.seen.lock().unwrap(),
        [
            "POST /kbs/v0/auth",
            "POST /kbs/v0/attest",
            "GET /kbs/v0/resource/default/key/tenant-a"
        ]
    );
    // A client built with `new` sends our format (raw report bytes).
    assert_eq!(*kbs.formats.lock().unwrap(), ["ualink"]);
}

#[tokio::test]
async fn rcar_in_trustee_format_fetches_and_decrypts() {
    // The KBS deserializes Trustee's SnpEvidence through sev's serde and checks the
    // signature over the bytes sev re-encodes: the sim report survives that exactly.
    let p = start(Fault::None).await;
    let client = KbsClient::new(&p.url, KbsTrust::WebPki)
        .unwrap()
        .with_evidence_format(EvidenceFormat::Trustee);
    assert_eq!(client.evidence_format(), EvidenceFormat::Trustee);
    let secret = fetch_resource(&client, &p.sim, &resource()).await.unwrap();
    assert_eq!(secret.as_slice(), b"s3cret key bytes");
    // Explicitly back to ours on the same server.
    let client = client.with_evidence_format(EvidenceFormat::Ualink);
    fetch_resource(&client, &p.sim, &resource()).await.unwrap();
    assert_eq!(*p.kbs.formats.lock().unwrap(), ["trustee", "ualink"]);
}

#[tokio::test]
async fn kbs_get_sends_trustee_format_unless_told_otherwise() {
    let p = start(Fault::None).await;
    let sim_dir = p._dir.path().join("sim");
    let run = |extra: &'static [&'static str]| {
        let (url, sim_dir) = (p.url.clone(), sim_dir.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_ualink-guest-agent"))
                .args(["kbs-get", "--kbs", &url, "--tee", "sim", "--sim-platform"])
                .arg(&sim_dir)
                .args(["--resource", "default/key/tenant-a"])
                .args(extra)
                .output()
                .unwrap()
        })
    };
    for (extra, want) in [
        (&[][..], "trustee"),
        (&["--evidence-format", "ualink"][..], "ualink"),
        (&["--evidence-format", "trustee"][..], "trustee"),
    ] {
        let o = run(extra).await.unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.stdout, b"s3cret key bytes");
        assert_eq!(p.kbs.formats.lock().unwrap().pop(), Some(want), "{extra:?}");
    }
    let o = run(&["--evidence-format", "raw"]).await.unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(p.kbs.formats.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rcar_over_tls_with_an_explicit_ca() {
    let (ca_pem, cfg) = tls_server();
    let p = start_with(Fault::None, Some(cfg)).await;
    let client = KbsClient::new(&p.url, KbsTrust::Pem(ca_pem.into_bytes())).unwrap();
    assert!(!client.is_plaintext());
    let secret = fetch_resource(&client, &p.sim, &resource()).await.unwrap();
    assert_eq!(secret.as_slice(), b"s3cret key bytes");
    // A client trusting another CA refuses the server before sending anything.
    let (other_ca, _) = tls_server();
    let client = KbsClient::new(&p.url, KbsTrust::Pem(other_ca.into_bytes())).unwrap();
    let seen_before = p.kbs.seen.lock().unwrap().len();
    let e = fetch_resource(&client, &p.sim, &resource())
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Io);
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    assert_eq!(p.kbs.seen.lock().unwrap().len(), seen_before);
}

#[tokio::test]
async fn rcar_with_sample_evidence() {
    let (r, _) = run(Fault::None, Some(&SampleProvider::new())).await;
    assert_eq!(r.unwrap(), b"s3cret key bytes");
}

#[tokio::test]
async fn sessions_are_typestate_and_reusable_for_several_resources() {
    let p = start(Fault::None).await;
    let client = KbsClient::new(&p.url, KbsTrust::WebPki).unwrap();
    let ch = client.auth(kbs_types::Tee::Snp).await.unwrap();
    assert_eq!(STANDARD.decode(ch.nonce()).unwrap().len(), 32);
    let s = ch.attest(&p.sim).await.unwrap();
    assert_eq!(s.token(), "test-token");
    // Debug output shows neither bearer secret.
    let dbg = format!("{s:?}");
    assert!(!dbg.contains("test-token"), "{dbg}");
    for id in p.kbs.sessions.lock().unwrap().keys() {
        assert!(!dbg.contains(id.as_str()), "{dbg}");
    }
    assert_eq!(&s.report_data()[48..], &[0u8; 16]);
    for _ in 0..2 {
        assert_eq!(
            s.resource(&resource()).await.unwrap().as_slice(),
            b"s3cret key bytes"
        );
    }
    let e = s
        .resource(&ResourcePath::parse("default/key/other").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Refused { status: 404, error_type, .. } if error_type.ends_with("ResourceNotFound")),
        "{e}"
    );
    // Evidence of another TEE than authenticated is refused before anything is sent.
    let ch = client.auth(kbs_types::Tee::Snp).await.unwrap();
    let e = ch.attest(&SampleProvider::new()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::ApiMisuse);
}

#[tokio::test]
async fn wrong_version_is_refused_with_the_servers_reason() {
    let (r, _) = run(Fault::OldVersionOnly, None).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::Refused { status: 400, error_type, detail, .. }
        if error_type.ends_with("ProtocolVersion") && detail.contains("0.4.0")),
        "{e}"
    );
}

#[tokio::test]
async fn bad_and_short_nonces_are_refused() {
    let (r, _) = run(Fault::BadNonce, None).await;
    let e = r.unwrap_err();
    assert_eq!(e.class(), ErrorClass::PeerMisbehaved);
    assert!(e.to_string().contains("not base64"), "{e}");
    let (r, _) = run(Fault::ShortNonce, None).await;
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("4 bytes, fewer than 16"));
}

#[tokio::test]
async fn missing_cookie_is_refused() {
    let (r, kbs) = run(Fault::NoCookie, None).await;
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        "peer misbehaved: auth response sets no kbs-session-id cookie"
    );
    // Nothing after auth was sent.
    assert_eq!(kbs.seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn expired_session_is_refused_with_the_servers_reason() {
    let (r, _) = run(Fault::ExpireAfterAttest, None).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::Refused { status: 401, error_type, .. } if error_type.ends_with("ExpiredCookie")),
        "{e}"
    );
}

#[tokio::test]
async fn empty_token_is_refused() {
    let (r, _) = run(Fault::EmptyToken, None).await;
    assert_eq!(r.unwrap_err().class(), ErrorClass::PeerMisbehaved);
}

#[tokio::test]
async fn tampered_or_misaddressed_jwe_is_refused() {
    let (r, _) = run(Fault::TamperJwe, None).await;
    assert_eq!(r.unwrap_err().class(), ErrorClass::Crypto);
    let (r, _) = run(Fault::WrongRecipient, None).await;
    assert_eq!(r.unwrap_err().class(), ErrorClass::Crypto);
}

#[tokio::test]
async fn evidence_under_an_untrusted_root_is_refused_by_the_kbs() {
    // A second sim platform: its ARK is not the one the KBS trusts.
    let dir = TempDir::new("other-sim");
    let other = SimProvider::load_or_create(dir.path()).unwrap();
    let (r, _) = run(Fault::None, Some(&other)).await;
    let e = r.unwrap_err();
    assert!(
        matches!(&e, Error::Refused { status: 401, error_type, detail, .. }
        if error_type.ends_with("AttestationFailed") && detail.contains("root")),
        "{e}"
    );
}

#[tokio::test]
async fn unreachable_kbs_is_an_io_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = KbsClient::new(&url, KbsTrust::WebPki).unwrap();
    let e = client.auth(kbs_types::Tee::Snp).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Io);
}

#[test]
fn resource_paths() {
    assert_eq!(
        resource().request_path(),
        "/kbs/v0/resource/default/key/tenant-a"
    );
    for bad in ["a/b", "a/b/c/d", "a//c", "../b/c", "a/b/c?x", "a/b/ c"] {
        assert_eq!(
            ResourcePath::parse(bad).unwrap_err().class(),
            ErrorClass::ApiMisuse,
            "{bad}"
        );
    }
}
