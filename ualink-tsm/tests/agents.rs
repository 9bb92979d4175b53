//! The TSM service on loopback with the guest agent library in-process: the agent verifies
//! the TSM and attests its sim CVM (RCAR over mutual TLS with its tee-pubkey as client
//! certificate), judges its vPod's TDIs against the tenant's own roots and policy, the lead
//! distributes keys over the attested mesh and hands them to the TSM, sharing goes through
//! the TSM's policy, and re-verification notices a tampered device.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod service_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::StatusCode;
use serde_json::json;
use service_support::*;
use ualink_attest::pki::TrustAnchors;
use ualink_attest::spdm_evidence::DeviceTrustAnchors;
use ualink_guest_agent::agent::{Agent, AgentConfig, TdiDecision};
use ualink_guest_agent::peer::{DeviceClaims, TenantTrust};
use ualink_guest_agent::tsm::api::{ExportRequest, ImportRequest, Right};
use ualink_guest_agent::tsm::TsmTrust;
use ualink_guest_agent::ErrorClass;
use ualink_policy::{PolicyBundle, PolicyEngine};
use ualink_sim::measurement::{reference_digests, MeasurementKind, Tamper};
use ualink_sim::AccelId;

/// The tenant's own policy: the pod's vendor roots and reference values computed from the
/// simulator's golden images (`corrupt_ref` alters every firmware digest, as a tenant that
/// does not recognise the firmware would), its CVMs' sim measurement, a→b read sharing.
fn tenant_policy(h: &Harness, corrupt_ref: bool) -> PolicyEngine {
    let core = h.svc.tsm();
    let t = core.lock().unwrap();
    let roots: Vec<_> = t
        .pod()
        .vendor_roots()
        .into_iter()
        .map(|(vendor, der)| {
            json!({"vendor": vendor,
                   "sha384": hex::encode(ring::digest::digest(&ring::digest::SHA384, &der))})
        })
        .collect();
    let models: std::collections::BTreeSet<(String, String, String)> = t
        .devices()
        .into_iter()
        .map(|d| (d.vendor, d.model, d.firmware))
        .collect();
    let triples: Vec<_> = models
        .iter()
        .map(|(v, m, f)| {
            let [rom, mut fw, cfg] = reference_digests(v, m, f);
            if corrupt_ref {
                fw[0] ^= 1;
            }
            let [rom, fw, cfg] = [rom, fw, cfg].map(hex::encode);
            json!({
                "environment": {"class": {"vendor": v, "model": m}},
                "measurements": [
                    {"mkey": 1, "mval": {"digests": [{"alg": "sha-384", "value": rom}]}},
                    {"mkey": 2, "mval": {"version": {"version": f},
                                         "digests": [{"alg": "sha-384", "value": fw}]}},
                    {"mkey": 3, "mval": {"version": {"version": f},
                                         "digests": [{"alg": "sha-384", "value": cfg}]}}
                ]
            })
        })
        .collect();
    let m = hex::encode(MEASUREMENT_OK());
    let overlay = json!({"ualink_data": {
        "allow_sim_tee": true,
        "device": {"trusted_vendor_roots": roots},
        "reference_values": {"tags": [{"comid": {"triples": {"reference-triples": triples}}}]},
        // No acceptance waiver: the sim TDI reports NO_UPDATE_AFTER_LOCK (the TSM locks with
        // NO_FW_UPDATE), so the default `require_no_update_after_lock` holds.
        "tenants": {
            "tenant-a": {"cvm": {"measurements": {"sim": [m]}}},
            "tenant-b": {"cvm": {"measurements": {"sim": [m]}}},
        },
    }});
    PolicyEngine::new(
        &PolicyBundle::defaults()
            .unwrap()
            .with_data(overlay)
            .unwrap(),
    )
}

/// The device roots the tenant trusts (the pod's vendors), or none.
fn device_roots(h: &Harness, trusted: bool) -> DeviceTrustAnchors {
    let mut d = DeviceTrustAnchors::new();
    if trusted {
        for (_, der) in h.svc.tsm().lock().unwrap().pod().vendor_roots() {
            d.add_der(&der).unwrap();
        }
    }
    d
}

/// What the tenant knows of each device (the TSM sends no identity claims with a report).
fn claims(h: &Harness) -> BTreeMap<u16, DeviceClaims> {
    h.svc
        .tsm()
        .lock()
        .unwrap()
        .devices()
        .into_iter()
        .map(|d| {
            (
                d.id,
                DeviceClaims {
                    device_id: format!("accel-{:04}", d.id),
                    vendor: d.vendor,
                    model: d.model,
                    firmware_version: d.firmware,
                    dhe: "secp384r1".into(),
                    aead: "aes-256-gcm".into(),
                },
            )
        })
        .collect()
}

struct Opts {
    tenant: &'static str,
    lead: bool,
    accelerators: Option<Vec<u16>>,
    corrupt_ref: bool,
    trusted_devices: bool,
}

impl Opts {
    fn new(tenant: &'static str) -> Self {
        Self {
            tenant,
            lead: false,
            accelerators: None,
            corrupt_ref: false,
            trusted_devices: true,
        }
    }
}

fn config(h: &Harness, o: Opts) -> AgentConfig {
    let tsm_ark = std::fs::read(h.state.join("sim-platform").join("ark.pem")).unwrap();
    let tsm_roots = TrustAnchors::empty()
        .with_explicit_roots_pem(&tsm_ark)
        .unwrap();
    let cvm = h.sim_cvm();
    AgentConfig {
        tsm_url: format!("https://localhost:{}", h.addr().port()),
        tenant: o.tenant.into(),
        cvm_roots: cvm.platform().trust_anchors().unwrap(),
        provider: Arc::new(cvm),
        tsm_trust: TsmTrust {
            roots: tsm_roots.clone(),
            pinned_ca_pem: Some(std::fs::read(h.svc.tls_paths().tsm_ca()).unwrap()),
        },
        trust: TenantTrust {
            device_roots: device_roots(h, o.trusted_devices),
            tsm_roots,
        },
        policy: tenant_policy(h, o.corrupt_ref),
        lead: o.lead,
        device_claims: claims(h),
        accelerators: o.accelerators,
        tx_ports: vec![0],
    }
}

/// The provider locks `tenant`'s TDI on `accel` (the device refuses without live link keys).
async fn lock(h: &Harness, tenant: &str, accel: u16) {
    let r = h
        .admin()
        .post(
            &format!("/ualink/v0/tenants/{tenant}/tdis/{accel}/lock"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
}

/// Provider setup: tenant-a (id 1, vPod 1+2, `lead_keys` as given), tenant-b (id 2, vPod
/// 3+4), a window on 2 for tenant-a and one on 3 for tenant-b. Delegated tenants get
/// TSM-generated keys and their TDIs locked; a lead-keyed tenant waits for its lead agent.
async fn provision(h: &Harness, a_lead_keys: bool) {
    let admin = h.admin();
    for (id, name, lead) in [(1, "tenant-a", a_lead_keys), (2, "tenant-b", false)] {
        let r = admin
            .post(
                "/ualink/v0/tenants",
                json!({"id": id, "name": name, "lead_keys": lead}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    }
    for (name, members) in [("tenant-a", json!([1, 2])), ("tenant-b", json!([3, 4]))] {
        let r = admin
            .post(
                &format!("/ualink/v0/tenants/{name}/vpod"),
                json!({ "members": members }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    }
    for (name, accel) in [("tenant-a", 2), ("tenant-b", 3)] {
        let r = admin
            .post(
                &format!("/ualink/v0/tenants/{name}/windows"),
                json!({"accelerator_id": accel, "base": 0, "len": 0x10000}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    }
    let mut delegated = vec!["tenant-b"];
    if !a_lead_keys {
        delegated.push("tenant-a");
    }
    for name in delegated {
        let r = admin
            .post(
                &format!("/ualink/v0/tenants/{name}/keys/provision"),
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    }
    lock(h, "tenant-b", 3).await;
    lock(h, "tenant-b", 4).await;
    if !a_lead_keys {
        lock(h, "tenant-a", 1).await;
        lock(h, "tenant-a", 2).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lead_keys_the_vpod_over_the_mesh_then_agents_accept_their_tdis() {
    let h = Harness::start(|_| {}).await;
    provision(&h, true).await;
    let lead = Agent::connect(config(
        &h,
        Opts {
            lead: true,
            ..Opts::new("tenant-a")
        },
    ))
    .await
    .unwrap();
    let peer = Agent::connect(config(
        &h,
        Opts {
            accelerators: Some(vec![2]),
            ..Opts::new("tenant-a")
        },
    ))
    .await
    .unwrap();
    assert_ne!(
        lead.identity().public_sec1(),
        peer.identity().public_sec1(),
        "one TLS identity per agent run"
    );
    // Nothing is locked yet: a device refuses LOCK until its links are keyed.
    let r = lead.attest_peers().await.unwrap();
    assert!(r.lead_keys);
    assert!(r
        .tdis
        .iter()
        .all(|t| matches!(t.decision, TdiDecision::Skipped { .. })));

    // The peer serves the lead over the mutually attested mesh.
    let peer = Arc::new(peer);
    let listener = peer
        .mesh_listener("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(peer.own_config(&[1, 2]).unwrap().accelerators.len(), 1);
    let p = peer.clone();
    let served = tokio::spawn(async move { p.serve_lead(&listener).await });
    let out = lead.lead_keys(&[addr]).await.unwrap();
    let session = served.await.unwrap().unwrap();
    assert_eq!(peer.status().unwrap().received_key_epoch, out.epoch);
    assert_eq!(session.lead.tls_key, lead.identity().public_sec1());
    let got = session.keys.unwrap();
    assert_eq!(got.epoch, out.epoch);
    assert!(!got.entries.is_empty());
    assert!(got
        .entries
        .iter()
        .all(|e| e.tx_accelerator.get() == 2 || e.peer.get() == 2));
    // The TSM programmed exactly its layout.
    let layout = h.svc.tsm().lock().unwrap().lead_key_layout(1).unwrap();
    assert_eq!(out.keys, layout.len());
    assert!(out.programmed.programmed > 0);
    assert_eq!(out.programmed.programmed, out.programmed.fingerprints.len());
    assert_eq!(out.peers.len(), 1);
    assert_eq!(
        out.peers[0].tls_key,
        hex::encode(peer.identity().public_sec1())
    );
    // A non-lead agent may not generate keys.
    let e = peer.lead_keys(&[]).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::ApiMisuse);

    // Keyed, the provider can lock; each agent judges against the tenant's own policy.
    lock(&h, "tenant-a", 1).await;
    lock(&h, "tenant-a", 2).await;
    let r = peer.attest_peers().await.unwrap();
    let two = r.tdi(2).unwrap();
    assert_eq!(two.decision, TdiDecision::Accepted, "{two:?}");
    assert_eq!(two.state.as_deref(), Some("RUN"));
    assert!(matches!(
        r.tdi(1).unwrap().decision,
        TdiDecision::Skipped { .. }
    ));
    let r = lead.attest_peers().await.unwrap();
    assert!(r.all_accepted(), "{r:?}");
    let vpod = lead.tsm().vpod().await.unwrap();
    assert!(vpod.tdis.iter().all(|t| t.state == "RUN"), "{vpod:?}");
    // Rotation is driven the same way: a new round at a higher epoch, programmed again.
    let listener = peer
        .mesh_listener("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let p = peer.clone();
    let served = tokio::spawn(async move { p.serve_lead(&listener).await });
    let again = lead.lead_keys(&[addr]).await.unwrap();
    served.await.unwrap().unwrap();
    assert!(
        again.epoch > out.epoch,
        "{} after {}",
        again.epoch,
        out.epoch
    );
    assert_eq!(again.programmed.programmed, out.programmed.programmed);
    assert_ne!(again.programmed.fingerprints, out.programmed.fingerprints);
    assert_eq!(peer.status().unwrap().received_key_epoch, again.epoch);
    // The peer's configuration now names the report it accepted, the lead's too.
    let own = peer.own_config(&vpod.members).unwrap();
    assert_eq!(
        own.accelerators[0].report_digest,
        lead.status().unwrap().accepted.get(&2).cloned()
    );
    // Each acceptance is audited with the CVM whose agent accepted (its attested session):
    // the peer's CVM accepted TDI 2, the lead's TDI 1.
    let (state, _d) = h.stop().await;
    let accepted: Vec<(String, String)> = records(&state)
        .iter()
        .filter_map(|r| match r.event() {
            Some(ualink_attest::audit::AuditEvent::TdiAccepted { tdi_id, cvm_id, .. }) => {
                Some((tdi_id.clone(), cvm_id.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    assert!(
        accepted
            .iter()
            .all(|(_, c)| c.starts_with("cvm-") && c.len() == "cvm-".len() + 16),
        "{accepted:?}"
    );
    assert_ne!(accepted[0].1, accepted[1].1, "{accepted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_rejects_bad_measurements_and_an_untrusted_root_and_the_tsm_stops_them() {
    let h = Harness::start(|_| {}).await;
    provision(&h, false).await;
    // tenant-a's policy does not recognise the firmware: both TDIs rejected.
    let a = Agent::connect(config(
        &h,
        Opts {
            corrupt_ref: true,
            ..Opts::new("tenant-a")
        },
    ))
    .await
    .unwrap();
    let r = a.attest_peers().await.unwrap();
    for accel in [1, 2] {
        let t = r.tdi(accel).unwrap();
        match &t.decision {
            TdiDecision::Rejected { failed_checks } => assert!(
                failed_checks.iter().any(|c| c.check.starts_with("device:")),
                "{failed_checks:?}"
            ),
            other => panic!("{accel}: {other:?}"),
        }
        assert_ne!(t.state.as_deref(), Some("RUN"), "{t:?}");
    }
    let vpod = a.tsm().vpod().await.unwrap();
    assert!(vpod.tdis.iter().all(|t| t.state != "RUN"), "{vpod:?}");
    // tenant-b trusts no device vendor: the bundle does not verify.
    let b = Agent::connect(config(
        &h,
        Opts {
            trusted_devices: false,
            ..Opts::new("tenant-b")
        },
    ))
    .await
    .unwrap();
    let r = b.attest_peers().await.unwrap();
    for accel in [3, 4] {
        match &r.tdi(accel).unwrap().decision {
            TdiDecision::Rejected { failed_checks } => {
                assert_eq!(failed_checks[0].check, "verification", "{failed_checks:?}")
            }
            other => panic!("{other:?}"),
        }
    }
    // The rejections are in the audit log with their checks.
    let (state, _d) = h.stop().await;
    let denies = records(&state)
        .into_iter()
        .filter(|r| {
            r.kind() == ualink_attest::audit::DecisionKind::TdiAcceptance
                && r.outcome() == ualink_attest::audit::Outcome::Deny
        })
        .count();
    assert_eq!(denies, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_the_policy_allows_gets_a_grant_and_one_it_refuses_names_the_rules() {
    let h = Harness::start(|_| {}).await;
    provision(&h, false).await;
    let a = Agent::connect(config(&h, Opts::new("tenant-a")))
        .await
        .unwrap();
    let b = Agent::connect(config(&h, Opts::new("tenant-b")))
        .await
        .unwrap();
    assert!(a.attest_peers().await.unwrap().all_accepted());
    assert!(b.attest_peers().await.unwrap().all_accepted());
    let offer = a
        .export(&ExportRequest {
            accelerator_id: 2,
            window_base: 0,
            offset: 0,
            len: 0x1000,
            to_tenant: "tenant-b".into(),
            to_os: 1,
            rights: vec![Right::Read, Right::Write],
            os_instance: None,
        })
        .await
        .unwrap();
    assert_eq!(offer.offer_id.len(), 16);
    // The provider keys the cross-tenant link 2-3 (the share policy needs live keys).
    let r = h.admin().post("/ualink/v0/links/2/3/key", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let import = |rights: Vec<Right>| ImportRequest {
        offer_id: offer.offer_id.clone(),
        os_instance: 1,
        accelerator_id: 3,
        rights,
    };
    let g = b.import(&import(vec![Right::Read])).await.unwrap();
    assert!(!g.grant.is_empty());
    assert!(g.expiry_ns > 0);
    // The policy's a->b pair allows read only.
    let e = b.import(&import(vec![Right::Write])).await.unwrap_err();
    assert_eq!(e.tsm_code(), Some("share_denied"), "{e}");
    match &e {
        ualink_guest_agent::Error::TsmRefused { status, rules, .. } => {
            assert_eq!(*status, 403);
            assert!(!rules.is_empty(), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // The exporter revokes; the importer hears of it.
    a.revoke(&offer.offer_id).await.unwrap();
    let w = b.watch().await.unwrap();
    assert!(w.notices.iter().any(|n| n.kind == "revoked"), "{w:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverification_notices_a_tampered_device_and_stops_trusting_it() {
    let h = Harness::start(|_| {}).await;
    provision(&h, false).await;
    let a = Agent::connect(config(&h, Opts::new("tenant-a")))
        .await
        .unwrap();
    assert!(a.attest_peers().await.unwrap().all_accepted());
    assert_eq!(a.status().unwrap().accepted.len(), 2);
    let admin = h.admin();
    // An honest re-attestation: epoch change, re-judged, still accepted.
    let r = admin.post("/ualink/v0/devices/1/reattest", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let w = a.watch().await.unwrap();
    assert!(w.events.iter().any(|e| e.kind == "epoch_changed"), "{w:?}");
    let one = w.reverified.iter().find(|t| t.accelerator_id == 1).unwrap();
    assert_eq!(one.decision, TdiDecision::Accepted, "{one:?}");
    // Fault injection: accelerator 2's firmware changes; the next re-attestation fails.
    h.svc
        .tsm()
        .lock()
        .unwrap()
        .pod()
        .tamper_measurement(
            AccelId::new(2).unwrap(),
            MeasurementKind::Firmware,
            Tamper::FlipBit { offset: 3 },
        )
        .unwrap();
    let r = admin.post("/ualink/v0/devices/2/reattest", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let w = a.watch().await.unwrap();
    let two = w.reverified.iter().find(|t| t.accelerator_id == 2).unwrap();
    assert!(
        matches!(two.decision, TdiDecision::Withdrawn { .. }),
        "{two:?}"
    );
    assert!(w.notices.iter().any(|n| n.kind == "revoked"), "{w:?}");
    let st = a.status().unwrap();
    assert!(!st.accepted.contains_key(&2), "{st:?}");
    assert!(st.accepted.contains_key(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cvm_the_tsm_policy_refuses_for_its_tenant_gets_cvm_denied_with_the_rule() {
    let h = Harness::start(|_| {}).await;
    // tenant-c's policy at the TSM lists another launch measurement than the sim CVM's.
    let r = h
        .admin()
        .post(
            "/ualink/v0/tenants",
            json!({"id": 3, "name": "tenant-c", "lead_keys": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.json());
    let c = Agent::connect(config(&h, Opts::new("tenant-c")))
        .await
        .unwrap();
    let e = c.attest_peers().await.unwrap_err();
    assert_eq!(e.tsm_code(), Some("cvm_denied"), "{e}");
    match &e {
        ualink_guest_agent::Error::TsmRefused { status, rules, .. } => {
            assert_eq!(*status, 403);
            assert!(
                rules.iter().any(|r| r.contains("measurement_not_allowed")),
                "{rules:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_renewed_with_fresh_evidence() {
    let h = Harness::start(|c| c.session_ttl = std::time::Duration::from_secs(1)).await;
    provision(&h, false).await;
    let a = Agent::connect(config(&h, Opts::new("tenant-a")))
        .await
        .unwrap();
    let before = a.tsm().token().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // The TSM answers 401 session_expired; the agent re-attests and goes on.
    assert!(a.attest_peers().await.unwrap().all_accepted());
    assert_ne!(
        a.tsm().token().unwrap(),
        before,
        "a new session, a new token"
    );
}
