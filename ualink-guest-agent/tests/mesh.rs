//! The agent-to-agent mesh: agents with sim evidence attest each other over TLS 1.3 and the
//! lead distributes vPod keys; rogue peers (untrusted platform, unbound report_data,
//! replayed evidence, reflected nonce, wrong measurement, wrong tenant) are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use ualink_attest::sim::{default_measurement, SimPlatform, SimReportParams};
use ualink_guest_agent::agent::{lead_round, LeadPlan};
use ualink_guest_agent::cvm::CvmVerifier;
use ualink_guest_agent::evidence::sim::SimProvider;
use ualink_guest_agent::evidence::{Evidence, EvidenceProvider, TeeKind};
use ualink_guest_agent::mesh::{self, MeshConfig, MeshListener, Msg, PeerAccelerator, PeerConfig};
use ualink_guest_agent::tls::AgentIdentity;
use ualink_guest_agent::{Error, ErrorClass};
use ualink_policy::{PolicyBundle, PolicyEngine};

const TENANT: &str = "tenant-a";

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        let p = std::env::temp_dir().join(format!("ualink-ga-mesh-{tag}-{}", hex::encode(b)));
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

/// The tenant's policy: defaults, sim allowed, the sim guest's default measurement listed.
fn engine() -> PolicyEngine {
    let overlay = serde_json::json!({"ualink_data": {
        "allow_sim_tee": true,
        "tenants": {TENANT: {"cvm": {"measurements": {"sim": [hex::encode(default_measurement())]}}}},
    }});
    PolicyEngine::new(
        &PolicyBundle::defaults()
            .unwrap()
            .with_data(overlay)
            .unwrap(),
    )
}

struct Pki {
    _dir: TempDir,
    trusted: PathBuf,
}

fn pki() -> Pki {
    let dir = TempDir::new("pki");
    let trusted = dir.path().join("trusted");
    SimPlatform::load_or_create(&trusted).unwrap();
    Pki { _dir: dir, trusted }
}

fn config(pki: &Pki, tenant: &str, provider: Arc<dyn EvidenceProvider>) -> MeshConfig {
    let roots = SimPlatform::load_or_create(&pki.trusted)
        .unwrap()
        .trust_anchors()
        .unwrap();
    MeshConfig {
        identity: Arc::new(AgentIdentity::generate("agent").unwrap()),
        provider,
        verifier: CvmVerifier::new(tenant, roots, engine()),
    }
}

fn honest(pki: &Pki) -> Arc<dyn EvidenceProvider> {
    Arc::new(SimProvider::load_or_create(&pki.trusted).unwrap())
}

fn digest(a: u16) -> String {
    format!("{a:096x}")
}

fn own(accels: &[u16]) -> PeerConfig {
    PeerConfig {
        accelerators: accels
            .iter()
            .map(|a| PeerAccelerator {
                accelerator_id: *a,
                tx_ports: vec![0],
                report_digest: Some(digest(*a)),
            })
            .collect(),
    }
}

fn plan() -> LeadPlan {
    LeadPlan {
        tenant: TENANT.into(),
        members: vec![1, 2, 3],
        accepted: [1u16, 2, 3].iter().map(|a| (*a, digest(*a))).collect(),
        rejected: BTreeSet::new(),
        own: own(&[1]),
        layout: None,
        default_tx_ports: vec![0],
        epoch: 1,
    }
}

async fn listen(cfg: MeshConfig) -> (MeshListener, SocketAddr) {
    let l = MeshListener::bind("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// Evidence that ignores the requested report_data (binds zeros).
#[derive(Debug)]
struct Unbound(SimPlatform);
impl EvidenceProvider for Unbound {
    fn tee(&self) -> TeeKind {
        TeeKind::Sim
    }
    fn describe(&self) -> String {
        "unbound".into()
    }
    fn evidence(&self, _rd: &[u8; 64]) -> ualink_guest_agent::Result<Evidence> {
        Ok(Evidence {
            tee: TeeKind::Sim,
            source: "sim",
            raw: self.0.report(&[0u8; 64]).unwrap(),
            certs: Some(self.0.certs()),
        })
    }
}

/// Honest the first time, then replays the first evidence.
#[derive(Debug)]
struct Replayer(SimProvider, Mutex<Option<Evidence>>);
impl EvidenceProvider for Replayer {
    fn tee(&self) -> TeeKind {
        TeeKind::Sim
    }
    fn describe(&self) -> String {
        "replayer".into()
    }
    fn evidence(&self, rd: &[u8; 64]) -> ualink_guest_agent::Result<Evidence> {
        let mut saved = self.1.lock().unwrap();
        if let Some(e) = saved.as_ref() {
            return Ok(e.clone());
        }
        let e = self.0.evidence(rd)?;
        *saved = Some(e.clone());
        Ok(e)
    }
}

/// Correctly bound evidence with another launch measurement.
#[derive(Debug)]
struct OtherImage(SimPlatform);
impl EvidenceProvider for OtherImage {
    fn tee(&self) -> TeeKind {
        TeeKind::Sim
    }
    fn describe(&self) -> String {
        "other image".into()
    }
    fn evidence(&self, rd: &[u8; 64]) -> ualink_guest_agent::Result<Evidence> {
        let p = SimReportParams {
            measurement: [0x5A; 48],
            ..SimReportParams::default()
        };
        Ok(Evidence {
            tee: TeeKind::Sim,
            source: "sim",
            raw: self.0.report_with(rd, &p).unwrap(),
            certs: Some(self.0.certs()),
        })
    }
}

#[tokio::test]
async fn lead_attests_two_peers_and_delivers_their_keys() {
    let pki = pki();
    let lead = config(&pki, TENANT, honest(&pki));
    let b_cfg = config(&pki, TENANT, honest(&pki));
    let c_cfg = config(&pki, TENANT, honest(&pki));
    let b_key = b_cfg.identity.public_sec1();
    let (b, b_addr) = listen(b_cfg).await;
    let (c, c_addr) = listen(c_cfg).await;
    let tb = tokio::spawn(async move { b.serve_lead(&own(&[2])).await });
    let tc = tokio::spawn(async move { c.serve_lead(&own(&[3])).await });

    let (bundle, deliveries) = lead_round(&lead, &[b_addr, c_addr], &plan()).await.unwrap();
    // 3 members x 1 TX port x 2 peers.
    assert_eq!(bundle.entries.len(), 6);
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].tls_key, hex::encode(&b_key));
    assert_eq!(deliveries[0].accelerators, vec![2]);
    assert_eq!(
        deliveries[0].measurement,
        hex::encode(default_measurement())
    );
    // Keys involving accelerator 2: 1->2, 2->1, 2->3, 3->2.
    assert_eq!(deliveries[0].keys_sent, 4);

    let sb = tb.await.unwrap().unwrap();
    assert_eq!(sb.lead.tls_key, lead.identity.public_sec1());
    let kb = sb.keys.unwrap();
    assert_eq!(kb.epoch, 1);
    assert_eq!(kb.entries.len(), 4);
    for e in &kb.entries {
        let want = bundle
            .entry(e.tx_accelerator.get(), e.tx_port, e.peer.get())
            .unwrap();
        assert!(e.key().ct_eq(want.key()), "the peer got the lead's key");
        assert!(e.tx_accelerator.get() == 2 || e.peer.get() == 2);
    }
    assert!(!format!("{kb:?}").contains(&hex::encode(kb.entries[0].key().as_bytes())));
    let sc = tc.await.unwrap().unwrap();
    assert_eq!(sc.keys.unwrap().entries.len(), 4);
}

/// Runs one lead session against a peer with `peer_provider`; returns (lead, peer) results.
async fn lead_vs(
    pki: &Pki,
    peer_provider: Arc<dyn EvidenceProvider>,
) -> (
    Result<(), Error>,
    Result<ualink_guest_agent::mesh::LeadSession, Error>,
) {
    let lead = config(pki, TENANT, honest(pki));
    let (p, addr) = listen(config(pki, TENANT, peer_provider)).await;
    let t = tokio::spawn(async move { p.serve_lead(&own(&[2])).await });
    let r = lead_round(&lead, &[addr], &plan()).await.map(|_| ());
    (r, t.await.unwrap())
}

fn assert_verification(e: &Error, needle: &str) {
    assert_eq!(e.class(), ErrorClass::Verification, "{e}");
    assert!(e.to_string().contains(needle), "{e}");
}

#[tokio::test]
async fn peer_from_an_untrusted_platform_is_refused() {
    let pki = pki();
    let rogue_dir = TempDir::new("rogue");
    let rogue: Arc<dyn EvidenceProvider> =
        Arc::new(SimProvider::load_or_create(rogue_dir.path()).unwrap());
    let (lead, peer) = lead_vs(&pki, rogue).await;
    let e = lead.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Verification, "{e}");
    // The rogue is told why.
    let pe = peer.unwrap_err();
    assert!(matches!(pe, Error::MeshRefused { .. }), "{pe}");
}

#[tokio::test]
async fn peer_with_unbound_report_data_is_refused() {
    let pki = pki();
    let p = Arc::new(Unbound(SimPlatform::load_or_create(&pki.trusted).unwrap()));
    let (lead, peer) = lead_vs(&pki, p).await;
    assert_verification(&lead.unwrap_err(), "report_data");
    assert!(peer.is_err());
}

#[tokio::test]
async fn replayed_evidence_from_an_earlier_session_is_refused() {
    let pki = pki();
    let p = Arc::new(Replayer(
        SimProvider::load_or_create(&pki.trusted).unwrap(),
        Mutex::new(None),
    ));
    // First session: fresh evidence, accepted.
    let (lead, peer) = lead_vs(&pki, p.clone()).await;
    lead.unwrap();
    peer.unwrap();
    // Second session: the same evidence again, bound to the old nonce.
    let (lead, peer) = lead_vs(&pki, p).await;
    assert_verification(&lead.unwrap_err(), "report_data");
    assert!(peer.is_err());
}

#[tokio::test]
async fn peer_with_a_measurement_outside_the_tenant_policy_is_refused() {
    let pki = pki();
    let p = Arc::new(OtherImage(
        SimPlatform::load_or_create(&pki.trusted).unwrap(),
    ));
    let (lead, peer) = lead_vs(&pki, p).await;
    let e = lead.unwrap_err();
    assert_eq!(e.class(), ErrorClass::PolicyDenied, "{e}");
    assert!(e.to_string().contains("measurement_not_allowed"), "{e}");
    assert!(peer.is_err());
}

#[tokio::test]
async fn peer_of_another_tenant_is_refused() {
    let pki = pki();
    let lead = config(&pki, TENANT, honest(&pki));
    let (p, addr) = listen(config(&pki, "tenant-b", honest(&pki))).await;
    let t = tokio::spawn(async move { p.serve_lead(&own(&[2])).await });
    let e = lead_round(&lead, &[addr], &plan()).await.unwrap_err();
    assert!(e.to_string().contains("tenant"), "{e}");
    assert!(t.await.unwrap().is_err());
}

#[tokio::test]
async fn a_peer_that_reflects_our_nonce_is_refused() {
    let pki = pki();
    let (honest_peer, addr) = listen(config(&pki, TENANT, honest(&pki))).await;
    let t = tokio::spawn(async move { honest_peer.serve_lead(&own(&[2])).await });
    // A rogue lead: proper TLS identity, but it sends back the nonce it was given.
    let rogue = AgentIdentity::generate("rogue").unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(mesh::client_config(&rogue).unwrap()))
        .connect(
            rustls_pki_types::ServerName::try_from("ualink-agent").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let Msg::Hello { nonce, .. } = mesh::read_msg(&mut s).await.unwrap() else {
        panic!("no hello")
    };
    mesh::write_msg(
        &mut s,
        &Msg::Hello {
            tenant: TENANT.into(),
            nonce,
        },
    )
    .await
    .unwrap();
    match mesh::read_msg(&mut s).await.unwrap() {
        Msg::Error { reason } => assert!(reason.contains("reflected"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let _ = s.shutdown().await;
    let e = t.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("reflected"), "{e}");
}

#[tokio::test]
async fn the_lead_refuses_a_configuration_contradicting_its_verdicts() {
    let pki = pki();
    let lead = config(&pki, TENANT, honest(&pki));
    // The peer claims accelerator 2 under a different report than the lead accepted.
    let mut claimed = own(&[2]);
    claimed.accelerators[0].report_digest = Some(digest(99));
    let (p, addr) = listen(config(&pki, TENANT, honest(&pki))).await;
    let t = tokio::spawn(async move { p.serve_lead(&claimed).await });
    let e = lead_round(&lead, &[addr], &plan()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::PolicyDenied, "{e}");
    assert!(e.to_string().contains("report_mismatch"), "{e}");
    drop(t);
    // No keys for a vPod with a member the lead rejected.
    let mut p2 = plan();
    p2.rejected = BTreeSet::from([3]);
    let e = lead_round(&lead, &[], &p2).await.unwrap_err();
    assert!(e.to_string().contains("member_rejected"), "{e}");
    // A peer that has not judged its TDI yet (not locked) is fine: keys come first.
    let mut unjudged = own(&[2]);
    unjudged.accelerators[0].report_digest = None;
    let (p, addr) = listen(config(&pki, TENANT, honest(&pki))).await;
    let t = tokio::spawn(async move { p.serve_lead(&unjudged).await });
    lead_round(&lead, &[addr], &plan()).await.unwrap();
    assert_eq!(t.await.unwrap().unwrap().keys.unwrap().entries.len(), 4);
}

#[tokio::test]
async fn with_the_tsm_layout_each_peer_gets_exactly_its_links() {
    let pki = pki();
    let lead = config(&pki, TENANT, honest(&pki));
    let (b, b_addr) = listen(config(&pki, TENANT, honest(&pki))).await;
    let (c, c_addr) = listen(config(&pki, TENANT, honest(&pki))).await;
    let tb = tokio::spawn(async move { b.serve_lead(&own(&[2])).await });
    let tc = tokio::spawn(async move { c.serve_lead(&own(&[3])).await });
    let mut p = plan();
    // A star around accelerator 1, on two planes toward 2.
    p.layout = Some(vec![
        (1, 0, 2),
        (2, 0, 1),
        (1, 1, 2),
        (2, 1, 1),
        (1, 0, 3),
        (3, 0, 1),
    ]);
    p.epoch = 5;
    let (bundle, d) = lead_round(&lead, &[b_addr, c_addr], &p).await.unwrap();
    assert_eq!(bundle.entries.len(), 6);
    assert_eq!((d[0].keys_sent, d[1].keys_sent), (4, 2));
    let kb = tb.await.unwrap().unwrap().keys.unwrap();
    assert_eq!(kb.epoch, 5);
    assert!(kb
        .entries
        .iter()
        .all(|e| e.tx_accelerator.get() == 2 || e.peer.get() == 2));
    assert_eq!(tc.await.unwrap().unwrap().keys.unwrap().entries.len(), 2);
    // A layout naming an accelerator outside the vPod is refused before any key is made.
    p.layout = Some(vec![(1, 0, 9)]);
    let e = lead_round(&lead, &[], &p).await.unwrap_err();
    assert!(e.to_string().contains("not a vPod member"), "{e}");
}

#[tokio::test]
async fn evidence_bound_to_another_tls_session_is_refused() {
    let pki = pki();
    let (honest_peer, addr) = listen(config(&pki, TENANT, honest(&pki))).await;
    let t = tokio::spawn(async move { honest_peer.serve_lead(&own(&[2])).await });
    // A lead on a trusted platform with the right key and nonce, but evidence bound to
    // another TLS session (as a relay would present).
    let rogue = AgentIdentity::generate("relay").unwrap();
    let sim = SimProvider::load_or_create(&pki.trusted).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(mesh::client_config(&rogue).unwrap()))
        .connect(
            rustls_pki_types::ServerName::try_from("ualink-agent").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let Msg::Hello { nonce, .. } = mesh::read_msg(&mut s).await.unwrap() else {
        panic!("no hello")
    };
    use base64::Engine as _;
    mesh::write_msg(
        &mut s,
        &Msg::Hello {
            tenant: TENANT.into(),
            nonce: base64::engine::general_purpose::STANDARD.encode([1u8; 32]),
        },
    )
    .await
    .unwrap();
    let rd = mesh::mesh_binding(&nonce, &rogue.public_sec1(), &[0u8; 32]).unwrap();
    let ev = sim.evidence(&rd).unwrap().to_kbs_json().unwrap();
    mesh::write_msg(&mut s, &Msg::Evidence { evidence: ev })
        .await
        .unwrap();
    let _their_evidence = mesh::read_msg(&mut s).await.unwrap();
    match mesh::read_msg(&mut s).await.unwrap() {
        Msg::Verdict { accepted, reason } => {
            assert!(!accepted);
            assert!(reason.contains("report_data"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let _ = s.shutdown().await;
    let e = t.await.unwrap().unwrap_err();
    assert_eq!(e.class(), ErrorClass::Verification, "{e}");
}
