//! Shared scaffolding: a generated sim pod and the demo policy overlay for it (vendor roots
//! and reference values computed independently from ualink-sim's golden images).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;
use ualink_policy::PolicyBundle;
use ualink_sim::measurement::reference_digests;
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

/// The demo overlay: the pod's vendor roots trusted for their vendor, reference values for
/// every (vendor, model, firmware) in the pod, tenants a and b, a→b read sharing.
pub(crate) fn overlay(pod: &SimPod, spec: &PodSpec) -> serde_json::Value {
    let roots: Vec<_> = pod
        .vendor_roots()
        .into_iter()
        .map(|(vendor, der)| {
            json!({"vendor": vendor,
                   "sha384": hex::encode(ring::digest::digest(&ring::digest::SHA384, &der))})
        })
        .collect();
    let models: BTreeSet<(String, String, String)> = spec
        .accelerators
        .iter()
        .map(|a| (a.vendor.clone(), a.model.clone(), a.firmware.clone()))
        .collect();
    let triples: Vec<_> = models
        .iter()
        .map(|(v, m, f)| {
            let [rom, fw, cfg] = reference_digests(v, m, f).map(hex::encode);
            json!({
                "environment": {"class": {"vendor": v, "model": m}},
                "measurements": [
                    {"mkey": 1, "mval": {"digests": [{"alg": "sha-384", "value": rom}]}},
                    {"mkey": 2, "mval": {"version": {"version": f}, "digests": [{"alg": "sha-384", "value": fw}]}},
                    {"mkey": 3, "mval": {"version": {"version": f}, "digests": [{"alg": "sha-384", "value": cfg}]}}
                ]
            })
        })
        .collect();
    json!({"ualink_data": {
        "allow_sim_tee": true,
        "device": {"trusted_vendor_roots": roots},
        "reference_values": {"tags": [{"comid": {"triples": {"reference-triples": triples}}}]},
        "tenants": {"tenant-a": {}, "tenant-b": {}},
        "sharing": {"pairs": [{"exporter": "tenant-a", "importer": "tenant-b", "rights": ["read"]}]}
    }})
}

/// A pod of `n` accelerators and a TSM over `state`.
pub(crate) fn tsm(n: u16, state: &Path) -> Tsm {
    let spec = spec(n);
    let pod = SimPod::new(&spec).unwrap();
    tsm_on(pod, &spec, state)
}

pub(crate) fn tsm_on(pod: SimPod, spec: &PodSpec, state: &Path) -> Tsm {
    let bundle = PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay(&pod, spec))
        .unwrap();
    let mut cfg = TsmConfig::new(state, bundle);
    cfg.checkpoint_every = 4;
    Tsm::open(cfg, pod).unwrap()
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
