//! The provider and agent endpoints end to end over real loopback TLS: tenant → vPod →
//! window → keys → TDI lock → the agent fetches the signed report and accepts it (RUN) →
//! export → import denied by policy and allowed with a grant the driver accepts and bytes
//! that really cross → revocation, rotation, rejection and re-attestation as events →
//! offboarding; every decision in the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::StatusCode;
use serde_json::{json, Value};
use service_support::*;
use ualink_attest::audit::{DecisionKind, Outcome};
use ualink_kdrv::ids::{BufferHandle, OsInstanceId, Rights, TenantId};
use ualink_kdrv::{AttachRequest, FileCtx};
use ualink_sim::AccelId;

fn id(v: u16) -> AccelId {
    AccelId::new(v).unwrap()
}

fn created(r: &Rsp) {
    assert!(
        r.status == StatusCode::CREATED || r.status == StatusCode::OK,
        "{} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
}

async fn events(c: &Client, tenant: &str, after: u64) -> Vec<Value> {
    let r = c
        .get(&format!("/ualink/v0/tenants/{tenant}/events?after={after}"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()["events"].as_array().unwrap().clone()
}

/// The agent fetches the TDI report, checks its digest and accepts it.
async fn accept(c: &Client, tenant: &str, accel: u16) {
    let r = c
        .get(&format!("/ualink/v0/tenants/{tenant}/tdis/{accel}/report"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let v = r.json();
    let bundle = STANDARD.decode(v["bundle"].as_str().unwrap()).unwrap();
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA384, &bundle));
    assert_eq!(v["report_digest"], digest);
    assert_eq!(v["device"]["device_id"], format!("accel-{accel:04}"));
    assert_eq!(v["device"]["dhe"], "secp384r1");
    assert_eq!(v["device"]["aead"], "aes-256-gcm");
    let r = c
        .post(
            &format!("/ualink/v0/tenants/{tenant}/tdis/{accel}/accept"),
            json!({"report_digest": digest}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(r.json()["state"], "RUN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_and_agent_flow_with_an_allowed_and_a_denied_share() {
    let h =
        Harness::start(|c| c.fault_interval = Some(std::time::Duration::from_millis(200))).await;
    let admin = h.admin();
    // Provider: tenants, vPods, keys, window, cross-tenant link keys, TDI locks.
    for (n, name) in [(1, "tenant-a"), (2, "tenant-b")] {
        created(
            &admin
                .post(
                    "/ualink/v0/tenants",
                    json!({"id": n, "name": name, "lead_keys": false}),
                )
                .await,
        );
    }
    // Duplicate tenant: conflict.
    let r = admin
        .post("/ualink/v0/tenants", json!({"id": 1, "name": "tenant-a"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.json());
    created(
        &admin
            .post(
                "/ualink/v0/tenants/tenant-a/vpod",
                json!({"members": [1, 2]}),
            )
            .await,
    );
    created(
        &admin
            .post(
                "/ualink/v0/tenants/tenant-b/vpod",
                json!({"members": [3, 4]}),
            )
            .await,
    );
    // An accelerator already in a vPod is refused.
    let r = admin
        .post("/ualink/v0/tenants/tenant-b/vpod", json!({"members": [1]}))
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.json());
    for t in ["tenant-a", "tenant-b"] {
        let r = admin
            .post(&format!("/ualink/v0/tenants/{t}/keys/provision"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
        assert!(r.json()["programmed"].as_u64().unwrap() > 0);
    }
    created(&admin.post("/ualink/v0/links/1/3/key", json!({})).await);
    created(
        &admin
            .post(
                "/ualink/v0/tenants/tenant-a/windows",
                json!({"accelerator_id": 1, "base": 0x1_0000, "len": 0x1_0000}),
            )
            .await,
    );
    for (t, a) in [
        ("tenant-a", 1),
        ("tenant-b", 3),
        ("tenant-a", 2),
        ("tenant-b", 4),
    ] {
        let r = admin
            .post(&format!("/ualink/v0/tenants/{t}/tdis/{a}/lock"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
        assert_eq!(r.json()["state"], "CONFIG_LOCKED");
    }

    // Agents attest.
    let cvm = h.sim_cvm();
    let mut a = h.agent();
    let mut b = h.agent();
    assert_eq!(a.attest(&cvm).await.status, StatusCode::OK);
    assert_eq!(b.attest(&cvm).await.status, StatusCode::OK);
    let v = a.get("/ualink/v0/tenants/tenant-a/vpod").await.json();
    assert_eq!(v["tdis"][0]["state"], "CONFIG_LOCKED");
    assert!(v["tdis"][0]["report_digest"].is_string());

    // A stale digest is refused; then each agent accepts its TDI.
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/tdis/1/accept",
            json!({"report_digest": "00".repeat(48)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "stale_report");
    accept(&a, "tenant-a", 1).await;
    accept(&b, "tenant-b", 3).await;
    // A's agent cannot touch B's TDI, and the agents' keys are delegated here.
    let r = a.get("/ualink/v0/tenants/tenant-b/tdis/3/report").await;
    assert_eq!(r.code(), "wrong_tenant");
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/keys",
            json!({"epoch": 1, "keys": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "keys_delegated");

    // A rejects TDI 2: STOPped, audited, and an event for A's agents.
    let rep = a
        .get("/ualink/v0/tenants/tenant-a/tdis/2/report")
        .await
        .json();
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/tdis/2/reject",
            json!({"report_digest": rep["report_digest"], "failed_checks": ["deny.vendor_not_accepted"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let evs = events(&a, "tenant-a", 0).await;
    assert!(
        evs.iter()
            .any(|e| e["kind"] == "tdi_stopped" && e["accelerator_id"] == 2),
        "{evs:?}"
    );

    // A host write to B's locked TDI configuration: the fault timer mirrors ERROR and B's
    // agents hear of it.
    h.svc
        .tsm()
        .lock()
        .unwrap()
        .pod()
        .host_write_tdi_config(id(4), ualink_sim::device::SIM_TDI as u16, 0x10, &[1])
        .unwrap();

    // Export 4 KiB of accelerator 1's window to tenant-b, OS 20, read+write offered.
    h.svc
        .tsm()
        .lock()
        .unwrap()
        .pod()
        .local_write(id(1), 0x1_1000, &[0xa5; 0x1000])
        .unwrap();
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/exports",
            json!({"accelerator_id": 1, "window_base": 0x1_0000, "offset": 0x1000, "len": 0x1000,
                   "to_tenant": "tenant-b", "to_os": 20, "rights": ["read", "write"], "os_instance": 10}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let offer = r.json()["offer_id"].as_str().unwrap().to_string();
    let buffer = hex::decode(r.json()["buffer"].as_str().unwrap()).unwrap();
    let handle = BufferHandle(buffer.try_into().unwrap());

    // The exporter cannot redeem its own offer; rights beyond the offer are refused.
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/imports",
            json!({"offer_id": offer, "os_instance": 20, "accelerator_id": 3, "rights": ["read"]}),
        )
        .await;
    assert_eq!(r.code(), "wrong_tenant");
    let r = b
        .post(
            "/ualink/v0/tenants/tenant-b/imports",
            json!({"offer_id": offer, "os_instance": 20, "accelerator_id": 3, "rights": ["atomic"]}),
        )
        .await;
    assert_eq!(r.code(), "exceeds_offer");
    // Denied by policy: the a→b pair allows reads only.
    let r = b
        .post(
            "/ualink/v0/tenants/tenant-b/imports",
            json!({"offer_id": offer, "os_instance": 20, "accelerator_id": 3, "rights": ["read", "write"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "share_denied");
    assert!(r.json()["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "deny.excessive_rights"));
    // Allowed: a grant the driver accepts, and the bytes cross encrypted links.
    let r = b
        .post(
            "/ualink/v0/tenants/tenant-b/imports",
            json!({"offer_id": offer, "os_instance": 20, "accelerator_id": 3, "rights": ["read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let g = r.json();
    assert!(g["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "allow.listed_share_pair"));
    let grant = STANDARD.decode(g["grant"].as_str().unwrap()).unwrap();
    {
        let tsm = h.svc.tsm();
        let mut t = tsm.lock().unwrap();
        assert!(
            t.pod().read(id(3), id(1), 0x1_1000, 16).is_err(),
            "no attach yet"
        );
        let fb = FileCtx::tenant(TenantId(2), OsInstanceId(20));
        let att = t
            .driver_mut()
            .attach(
                &fb,
                &AttachRequest {
                    handle,
                    importer_accel: id(3).to_kdrv(),
                    rights: Rights::READ,
                    invalidate_cookie: Some(0xB),
                    grant: Some(&grant),
                },
            )
            .unwrap();
        t.driver_mut().map(&fb, att).unwrap();
        assert_eq!(
            t.pod().read(id(3), id(1), 0x1_1000, 0x1000).unwrap(),
            vec![0xa5; 0x1000]
        );
    }

    // Only the exporter revokes; both sides get a `revoked` event; the bytes stop.
    let r = b
        .send(
            "DELETE",
            &format!("/ualink/v0/tenants/tenant-b/exports/{offer}"),
            None,
        )
        .await;
    assert_eq!(r.code(), "wrong_tenant");
    let r = a
        .send(
            "DELETE",
            &format!("/ualink/v0/tenants/tenant-a/exports/{offer}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert!(h
        .svc
        .tsm()
        .lock()
        .unwrap()
        .pod()
        .read(id(3), id(1), 0x1_1000, 16)
        .is_err());
    let evs = events(&b, "tenant-b", 0).await;
    assert!(evs.iter().any(|e| e["kind"] == "revoked"), "{evs:?}");
    // The TDI error on accelerator 4 reached B's feed (bounded wait for the fault timer).
    let mut seen = false;
    for _ in 0..50 {
        let evs = events(&b, "tenant-b", 0).await;
        if evs
            .iter()
            .any(|e| e["kind"] == "tdi_error" && e["accelerator_id"] == 4)
        {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "no tdi_error event for accelerator 4");
    let v = b.get("/ualink/v0/tenants/tenant-b/vpod").await.json();
    assert_eq!(v["tdis"][1]["state"], "ERROR", "{v}");
    assert_eq!(v["tdis"][0]["state"], "RUN", "{v}");
    // The offer is gone.
    let r = b
        .post(
            "/ualink/v0/tenants/tenant-b/imports",
            json!({"offer_id": offer, "os_instance": 20, "accelerator_id": 3, "rights": ["read"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Rotation and re-attestation show up in A's feed, after the cursor.
    let next = a
        .get("/ualink/v0/tenants/tenant-a/events?after=0")
        .await
        .json()["next"]
        .as_u64()
        .unwrap();
    let r = admin.post("/ualink/v0/links/1/2/rotate", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let r = admin.post("/ualink/v0/devices/1/reattest", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let evs = events(&a, "tenant-a", next).await;
    assert!(evs.iter().any(|e| e["kind"] == "keys_rotated"), "{evs:?}");
    assert!(
        evs.iter()
            .any(|e| e["kind"] == "epoch_changed" && e["accelerator_id"] == 1),
        "{evs:?}"
    );
    assert!(evs.iter().all(|e| e["seq"].as_u64().unwrap() > next));

    // Status, then offboarding B.
    let s = admin.get("/ualink/v0/status").await.json();
    assert_eq!(s["tenants"], 2);
    assert_eq!(s["vpods"], 2);
    let r = admin
        .send("DELETE", "/ualink/v0/tenants/tenant-b", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    assert_eq!(admin.get("/ualink/v0/status").await.json()["tenants"], 1);

    // The audit log holds both share decisions, the rejection and the revocation.
    let (state, _d) = h.stop().await;
    let recs = records(&state);
    let shares: Vec<_> = recs
        .iter()
        .filter(|r| r.kind() == DecisionKind::Share)
        .collect();
    assert_eq!(shares.len(), 2);
    assert_eq!(shares[0].outcome(), Outcome::Deny);
    assert!(shares[0]
        .rules()
        .iter()
        .any(|r| r == "deny.excessive_rights"));
    assert_eq!(shares[1].outcome(), Outcome::Allow);
    assert!(recs
        .iter()
        .any(|r| r.kind() == DecisionKind::TdiAcceptance && r.outcome() == Outcome::Deny));
    assert!(recs.iter().any(|r| r.kind() == DecisionKind::Revocation));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reattestation_timer_runs_rounds_and_feeds_epoch_events() {
    let h =
        Harness::start(|c| c.reattest_interval = Some(std::time::Duration::from_millis(300))).await;
    let admin = h.admin();
    created(
        &admin
            .post("/ualink/v0/tenants", json!({"id": 1, "name": "tenant-a"}))
            .await,
    );
    created(
        &admin
            .post(
                "/ualink/v0/tenants/tenant-a/vpod",
                json!({"members": [1, 2]}),
            )
            .await,
    );
    let mut a = h.agent();
    assert_eq!(a.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    let e0 = admin.get("/ualink/v0/devices/1").await.json()["epoch"]
        .as_u64()
        .unwrap();
    // Wait (bounded) for a round to advance device 1's epoch.
    let mut advanced = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let e = admin.get("/ualink/v0/devices/1").await.json()["epoch"]
            .as_u64()
            .unwrap();
        if e > e0 {
            advanced = true;
            break;
        }
    }
    assert!(advanced, "no re-attestation round ran");
    let evs = events(&a, "tenant-a", 0).await;
    assert!(evs.iter().any(|e| e["kind"] == "epoch_changed"), "{evs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_agent_hands_over_the_vpod_keys_and_the_provider_cannot() {
    let h = Harness::start(|_| {}).await;
    let admin = h.admin();
    created(
        &admin
            .post(
                "/ualink/v0/tenants",
                json!({"id": 1, "name": "tenant-a", "lead_keys": true}),
            )
            .await,
    );
    created(
        &admin
            .post(
                "/ualink/v0/tenants/tenant-a/vpod",
                json!({"members": [1, 2]}),
            )
            .await,
    );
    let r = admin
        .post("/ualink/v0/tenants/tenant-a/keys/provision", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "keys_from_lead_agent");
    let mut a = h.agent();
    assert_eq!(a.attest(&h.sim_cvm()).await.status, StatusCode::OK);
    let v = a.get("/ualink/v0/tenants/tenant-a/vpod").await.json();
    assert_eq!(v["lead_keys"], true);
    let layout = v["key_layout"].as_array().unwrap().clone();
    assert!(!layout.is_empty());
    let epoch = v["next_key_epoch"].as_u64().unwrap();
    let keys: Vec<Value> = layout
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"tx": s["tx"], "port": s["port"], "rx": s["rx"],
                   "key": STANDARD.encode([u8::try_from(i + 1).unwrap(); 32])})
        })
        .collect();
    // Missing one key: refused whole, nothing programmed.
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/keys",
            json!({"epoch": epoch, "keys": keys[1..].to_vec()}),
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.json());
    // A key of the wrong length.
    let mut short = keys.clone();
    short[0]["key"] = json!(STANDARD.encode([1u8; 16]));
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/keys",
            json!({"epoch": epoch, "keys": short}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.json());
    // The whole set.
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/keys",
            json!({"epoch": epoch, "keys": keys}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let n = r.json()["programmed"].as_u64().unwrap();
    assert!(n > 0);
    assert_eq!(r.json()["fingerprints"].as_array().unwrap().len() as u64, n);
    assert!(h.svc.tsm().lock().unwrap().link_keys_live(1, 2).unwrap());
    // The same epoch again is refused (epochs are never reused).
    let r = a
        .post(
            "/ualink/v0/tenants/tenant-a/keys",
            json!({"epoch": epoch, "keys": keys}),
        )
        .await;
    assert!(r.status.is_client_error(), "{:?}", r.json());
}
