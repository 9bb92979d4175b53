//! Over the service: when the audit log cannot be written (the disk fills up after bring-up),
//! every decision is refused with `503 audit_unavailable` — provider operations and a CVM's
//! tenant appraisal alike (no resource is released unlogged) — and status says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod full_disk;
mod service_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use full_disk::FullDisk;
use hyper::StatusCode;
use serde_json::json;
use service_support::*;
use ualink_attest::audit::AuditLogWriter;
use ualink_guest_agent::evidence::sim::SimProvider;
use ualink_tsm::audit::AuditLog;
use ualink_tsm::service::{serve, ServiceConfig};
use ualink_tsm::store::MemoryStore;
use ualink_tsm::{Tsm, TsmConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_audit_disk_refuses_every_decision_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let cvm = SimProvider::load_or_create(&dir.path().join("cvm")).unwrap();
    let budget = Arc::new(AtomicU64::new(u64::MAX));
    let b2 = budget.clone();
    let st = state.clone();
    let t = tokio::task::spawn_blocking(move || {
        let (pod, bundle) = pod_and_policy();
        let path = st.join("audit.log");
        std::fs::create_dir_all(&st).unwrap();
        let mut t = Tsm::open_with_audit(
            TsmConfig::new(&st, bundle),
            pod,
            Box::new(MemoryStore::new()),
            move |id| {
                let inner = AuditLogWriter::create(&path).unwrap();
                Ok(AuditLog::with_backend(
                    Box::new(FullDisk { inner, budget: b2 }),
                    id.checkpoint_signer()?,
                    1000,
                ))
            },
        )
        .unwrap();
        t.bring_up().unwrap();
        t.tenant_add(1, "tenant-a").unwrap();
        t
    })
    .await
    .unwrap();
    let mut cfg = ServiceConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.sim_cvm_roots = vec![cvm.platform().ark_der().to_vec()];
    cfg.fault_interval = None;
    let svc = serve(t, cfg, std::future::pending()).await.unwrap();
    let p = svc.tls_paths().clone();
    let ca = pem_certs(&p.tsm_ca());
    let admin = Client::new(
        svc.local_addr(),
        &ca,
        Some((
            pem_certs(&p.admin_cert()),
            pem::parse(std::fs::read(p.admin_key()).unwrap())
                .unwrap()
                .contents()
                .to_vec(),
        )),
        None,
    );
    // The disk fills up.
    budget.store(0, Ordering::SeqCst);
    let r = admin
        .post("/ualink/v0/tenants", json!({"id": 2, "name": "tenant-b"}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.json());
    assert_eq!(r.code(), "audit_unavailable");
    let r = admin.post("/ualink/v0/devices/1/reattest", json!({})).await;
    assert_eq!(r.code(), "audit_unavailable");
    let s = admin.get("/ualink/v0/status").await.json();
    assert_eq!(s["audit"]["writable"], false);
    assert_eq!(s["tenants"], 1, "the refused tenant was not created");
    // A CVM attests (verification needs no decision) but its tenant appraisal is a decision:
    // refused, so nothing is released.
    let (cert, key, scalar) = agent_identity();
    let mut agent = Client::new(
        svc.local_addr(),
        &ca,
        Some((vec![cert], key)),
        Some(ualink_guest_agent::kbs::jwe::EphemeralKey::from_scalar(&scalar).unwrap()),
    );
    assert_eq!(agent.attest(&cvm).await.status, StatusCode::OK);
    let e = agent.resource("tenant-a/vpod/config").await.unwrap_err();
    assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(e.code(), "audit_unavailable");
}
