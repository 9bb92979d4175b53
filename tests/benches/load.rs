//! Load bench: 1,000 concurrent sim agents against one in-process TSM service over real
//! mutual TLS on loopback (`cargo bench -p ualink-e2e --bench load`; a release build — in a
//! debug build on a small machine the agents' 30 s request timeout trips). Each agent
//! verifies the TSM's evidence, runs the KBS handshake with its own
//! fresh P-256 key and sim SNP evidence, is appraised for its tenant, and fetches a TDI report.
//! The run fails (non-zero exit) on any error or on a report that is not the TSM's, and prints
//! p50 / p99 latency, throughput and peak memory. Bounded: 1,000 agents (`UALINK_LOAD_AGENTS`
//! overrides), then it stops. The server and the agents run on separate runtimes (two worker
//! threads each), as they would on separate machines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use ualink_attest::pki::TrustAnchors;
use ualink_guest_agent::evidence::sim::SimProvider;
use ualink_guest_agent::tls::AgentIdentity;
use ualink_guest_agent::tsm::{TsmClient, TsmTrust};
use ualink_sim::SimPod;
use ualink_tsm::service::{serve, ServiceConfig};

use common::*;

fn agents() -> usize {
    std::env::var("UALINK_LOAD_AGENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let agents = agents();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let spec = spec(4);
    let pod = SimPod::new(&spec).unwrap();
    let m = hex::encode(ualink_attest::sim::default_measurement());
    let mut t = tsm_with(pod, &spec, &state, |d| {
        let tenant = json!({"cvm": {"measurements": {"sim": [m]}}});
        d.insert(
            "tenants".into(),
            json!({"tenant-a": tenant.clone(), "tenant-b": tenant}),
        );
    });
    t.bring_up().unwrap();
    t.tenant_add(TA, "tenant-a").unwrap();
    t.tenant_add(TB, "tenant-b").unwrap();
    t.vpod_create(TA, &[1, 2]).unwrap();
    t.vpod_create(TB, &[3, 4]).unwrap();
    t.provision_keys(TA).unwrap();
    t.provision_keys(TB).unwrap();
    let reports = [t.tdi_lock(TA, 1).unwrap(), t.tdi_lock(TB, 3).unwrap()];
    // The CVMs run on the TSM's simulated host: its sim platform.
    let provider = Arc::new(SimProvider::load_or_create(&state.join("sim-platform")).unwrap());
    let ark = std::fs::read(state.join("sim-platform/ark.pem")).unwrap();
    let trust = TsmTrust {
        roots: TrustAnchors::amd_builtin()
            .unwrap()
            .with_explicit_roots_pem(&ark)
            .unwrap(),
        pinned_ca_pem: None,
    };
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rss_before = peak_rss_kib();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut cfg = ServiceConfig::new("127.0.0.1:0".parse().unwrap());
    cfg.sim_cvm_roots = vec![provider.platform().ark_der().to_vec()];
    let svc = server_rt
        .block_on(serve(t, cfg, async move {
            let _ = stopped.await;
        }))
        .unwrap();
    let url = format!("https://{}", svc.local_addr());
    let start = Instant::now();
    let results = rt.block_on(async {
        let mut tasks = Vec::with_capacity(agents);
        for i in 0..agents {
            let (url, provider, trust) = (url.clone(), provider.clone(), trust.clone());
            let (tenant, accel) = if i % 2 == 0 {
                ("tenant-a", 1u16)
            } else {
                ("tenant-b", 3u16)
            };
            tasks.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let id =
                    Arc::new(AgentIdentity::generate("load-agent").map_err(|e| e.to_string())?);
                let c = TsmClient::connect(&url, tenant, id, &*provider, &trust)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let r = c
                    .tdi_report(accel)
                    .await
                    .map_err(|e| format!("report: {e}"))?;
                Ok::<_, String>((t0.elapsed(), accel, r.bundle))
            }));
        }
        let mut out = Vec::with_capacity(agents);
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let wall = start.elapsed();
    let _ = stop.send(());
    server_rt.block_on(svc.join()).unwrap();
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "{} of {agents} agents failed; first: {:?}",
        errors.len(),
        errors.first()
    );
    let mut lat: Vec<Duration> = Vec::with_capacity(agents);
    for r in results.into_iter().flatten() {
        let (d, accel, bundle) = r;
        let want = &reports[usize::from(accel != 1)];
        assert_eq!(&bundle, want, "accelerator {accel}: not the TSM's report");
        lat.push(d);
    }
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    println!(
        "load: {agents} concurrent agents, 0 errors; p50 {:?}, p99 {:?}, max {:?}; wall {:?}, \
         {:.1} agents/s; peak RSS {} MiB (before serving {} MiB)",
        pct(50),
        pct(99),
        lat[lat.len() - 1],
        wall,
        agents as f64 / wall.as_secs_f64(),
        peak_rss_kib() / 1024,
        rss_before / 1024,
    );
}
