//! The service's TLS front door over real loopback TLS: TLS 1.3 only, a client certificate
//! is mandatory, admin and agent-key roles are told apart and enforced, the TLS material is
//! reused on restart and its CA key is the TSM identity key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use std::os::unix::fs::PermissionsExt;

use hyper::StatusCode;
use service_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_is_refused_in_the_handshake() {
    let h = Harness::start(|_| {}).await;
    let (cert, key, _) = agent_identity();
    let cfg = client_config(&h.ca(), Some((vec![cert], key)), &[&rustls::version::TLS12]);
    let c = Client {
        addr: h.addr(),
        connector: tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg)),
        key: None,
        cookie: None,
    };
    let e = c.try_send("GET", "/ualink/v0/tsm", None).await.unwrap_err();
    assert!(e.contains("handshake"), "{e}");
    // The same identity over TLS 1.3 gets through.
    assert_eq!(h.agent().get("/ualink/v0/tsm").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused() {
    let h = Harness::start(|_| {}).await;
    let c = Client::new(h.addr(), &h.ca(), None, None);
    assert!(c.try_send("GET", "/ualink/v0/tsm", None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_or_a_p384_self_signed_key_is_refused() {
    let h = Harness::start(|_| {}).await;
    // A leaf signed by an unknown CA (two certificates: not an agent key either).
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let c = Client::new(
        h.addr(),
        &h.ca(),
        Some((
            vec![leaf.der().clone(), ca.der().clone()],
            leaf_key.serialize_der(),
        )),
        None,
    );
    assert!(c.try_send("GET", "/ualink/v0/tsm", None).await.is_err());
    // A self-signed P-384 key is not an agent key (P-256 only).
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&k)
        .unwrap();
    let c = Client::new(
        h.addr(),
        &h.ca(),
        Some((vec![cert.der().clone()], k.serialize_der())),
        None,
    );
    assert!(c.try_send("GET", "/ualink/v0/tsm", None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_admin_on_provider_endpoints_agents_on_kbs() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin();
    let agent = h.agent();
    let r = admin.get("/ualink/v0/devices").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json().as_array().unwrap().len(), 4);
    for (m, p) in [
        ("GET", "/ualink/v0/devices"),
        ("GET", "/ualink/v0/status"),
        ("POST", "/ualink/v0/devices/1/reattest"),
        ("POST", "/ualink/v0/links/1/2/rotate"),
    ] {
        let r = agent.send(m, p, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{m} {p}");
        assert_eq!(r.code(), "wrong_role", "{m} {p}");
    }
    let r = agent
        .post(
            "/ualink/v0/tenants",
            serde_json::json!({"id": 9, "name": "evil", "lead_keys": false}),
        )
        .await;
    assert_eq!(r.code(), "wrong_role");
    // An admin is not a guest agent.
    let r = admin
        .post(
            "/kbs/v0/auth",
            serde_json::json!({"version": "0.4.0", "tee": "snp", "extra-params": ""}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "wrong_role");
    // An unattested agent has no session for agent endpoints.
    let r = agent.get("/ualink/v0/tenants/tenant-a/vpod").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "no_session");
    let s = admin.get("/ualink/v0/status").await.json();
    assert_eq!(s["devices"]["attested"], 4);
    assert_eq!(s["audit"]["writable"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tsm_endpoint_binds_the_ca_to_the_attested_identity_key() {
    let h = Harness::start(|_| {}).await;
    let r = h.agent().get("/ualink/v0/tsm").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    let pk = hex::decode(v["public_key"].as_str().unwrap()).unwrap();
    // The CA's key is the identity key...
    let ca = pem::parse(v["ca_pem"].as_str().unwrap()).unwrap();
    let (_, c) = x509_parser::parse_x509_certificate(ca.contents()).unwrap();
    assert_eq!(
        c.public_key().subject_public_key.data.as_ref(),
        pk.as_slice()
    );
    // ...and the evidence's report_data commits to it.
    use base64::Engine as _;
    let report = base64::engine::general_purpose::STANDARD
        .decode(v["evidence"].as_str().unwrap())
        .unwrap();
    let parsed = ualink_attest::snp::SnpReport::parse(&report).unwrap();
    assert_eq!(
        parsed.report_data,
        ualink_attest::tdi_report::tsm_report_data(&pk)
    );
    assert_eq!(v["cert_chain"][0]["cert_type"], "vcek");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_material_is_private_and_reused_on_restart() {
    let h = Harness::start(|_| {}).await;
    let p = h.svc.tls_paths().clone();
    for k in [p.server_key(), p.client_ca_key(), p.admin_key()] {
        let mode = std::fs::metadata(&k).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", k.display());
    }
    let before: Vec<Vec<u8>> = [p.tsm_ca(), p.server_cert(), p.admin_cert()]
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    let (state, _dir) = h.stop().await;
    let t = tokio::task::spawn_blocking(move || {
        // Reopen the same state (bring-up again) and serve it.
        service_support::tsm(&state)
    })
    .await
    .unwrap();
    let svc = ualink_tsm::service::serve(
        t,
        ualink_tsm::service::ServiceConfig::new("127.0.0.1:0".parse().unwrap()),
        std::future::pending(),
    )
    .await
    .unwrap();
    let after: Vec<Vec<u8>> = [p.tsm_ca(), p.server_cert(), p.admin_cert()]
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(before, after, "TLS material regenerated on restart");
    // A key made group-readable is refused.
    std::fs::set_permissions(p.admin_key(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = ualink_tsm::service::TlsMaterial::load_or_create(
        p.clone(),
        &std::fs::read(p.dir.parent().unwrap().join("tsm-key.pk8")).unwrap(),
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("readable"), "{e}");
    drop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_resumption_every_connection_proves_its_key() {
    let h = Harness::start(|_| {}).await;
    let c = h.agent();
    for _ in 0..3 {
        let tcp = tokio::net::TcpStream::connect(h.addr()).await.unwrap();
        let mut tls = c
            .connector
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(
            b"GET /ualink/v0/tsm HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf).await;
        assert!(buf.starts_with(b"HTTP/1.1 200"));
        assert_eq!(
            tls.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full),
            "a resumed handshake would skip the client's CertificateVerify"
        );
    }
}
