//! Shared scaffolding: a generated sim pod and the demo policy overlay for it (vendor roots
//! and reference values computed independently from ualink-sim's golden images).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::json;
use ualink_policy::PolicyBundle;
use ualink_sim::pod::{GenParams, PodSpec};
use ualink_sim::SimPod;
use ualink_tsm::{Tsm, TsmConfig};

pub(crate) fn spec(n: u16) -> PodSpec {
    PodSpec::generate(&GenParams {
        accelerators: n,
        switches: 1,
        memory_bytes: 1 << 20,
        spare_ports: 1,
    })
    .unwrap()
}

/// The demo overlay: the library's sim-pod data plus tenants a and b and an a→b read pair.
pub(crate) fn overlay(pod: &SimPod, spec: &PodSpec) -> serde_json::Value {
    let mut v = ualink_tsm::demo::sim_pod_overlay(pod, spec);
    let d = v["ualink_data"].as_object_mut().unwrap();
    d.insert("tenants".into(), json!({"tenant-a": {}, "tenant-b": {}}));
    d.insert(
        "sharing".into(),
        json!({"pairs": [{"exporter": "tenant-a", "importer": "tenant-b", "rights": ["read"]}]}),
    );
    v
}

/// A pod of `n` accelerators and a TSM over `state`.
pub(crate) fn tsm(n: u16, state: &Path) -> Tsm {
    let spec = spec(n);
    let pod = SimPod::new(&spec).unwrap();
    tsm_on(pod, &spec, state)
}

pub(crate) fn tsm_on(pod: SimPod, spec: &PodSpec, state: &Path) -> Tsm {
    tsm_with(pod, spec, state, |_| {})
}

/// [`tsm_on`] with the configuration adjusted by `f`.
pub(crate) fn tsm_with(
    pod: SimPod,
    spec: &PodSpec,
    state: &Path,
    f: impl FnOnce(&mut TsmConfig),
) -> Tsm {
    let bundle = PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay(&pod, spec))
        .unwrap();
    let mut cfg = TsmConfig::new(state, bundle);
    cfg.checkpoint_every = 4;
    f(&mut cfg);
    Tsm::open(cfg, pod).unwrap()
}

/// The simulator's view of a slot the TSM recorded.
pub(crate) fn sim_slot(s: &ualink_tsm::keys::SlotRecord) -> ualink_sim::SlotRef {
    ualink_sim::SlotRef {
        accel: ualink_sim::AccelId::new(s.accel).unwrap(),
        port: ualink_sim::PortIndex(u16::from(s.port)),
        dir: if s.dir == "tx" {
            ualink_sim::ualinksec::Direction::Tx
        } else {
            ualink_sim::ualinksec::Direction::Rx
        },
        peer: ualink_sim::AccelId::new(s.peer).unwrap(),
    }
}

/// Unix seconds now.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub(crate) fn records(state: &Path, tsm_key: &[u8]) -> Vec<ualink_attest::audit::AuditRecord> {
    let bytes = std::fs::read(state.join("audit.log")).unwrap();
    let v = ualink_attest::audit::verify_log(
        &bytes,
        &ualink_attest::audit::CheckpointVerifier::new(tsm_key),
        &[],
    )
    .unwrap();
    (0..v.size())
        .map(|i| v.record(&bytes, i).unwrap())
        .collect()
}
