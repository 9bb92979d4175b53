//! Policy data for the embedded simulated pod (demo and tests): the pod's vendor roots trusted
//! for their own vendor, reference values for every (vendor, model, firmware) in the pod
//! computed independently from ualink-sim's golden images, and `allow_sim_tee`.
//! Never for a real deployment: its trust comes from the simulator itself.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use ualink_sim::measurement::reference_digests;
use ualink_sim::{PodSpec, SimPod};

/// The overlay (`{"ualink_data": {...}}`) that lets `pod`'s genuine devices pass appraisal.
/// `extra` is deep-merged by the caller (tenants, sharing pairs) with
/// `PolicyBundle::with_data`.
pub fn sim_pod_overlay(pod: &SimPod, spec: &PodSpec) -> Value {
    let roots: Vec<Value> = pod
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
    let triples: Vec<Value> = models
        .iter()
        .map(|(v, m, f)| {
            let [rom, fw, cfg] = reference_digests(v, m, f).map(hex::encode);
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
    json!({"ualink_data": {
        "allow_sim_tee": true,
        "device": {"trusted_vendor_roots": roots},
        "reference_values": {"tags": [{"comid": {"triples": {"reference-triples": triples}}}]}
    }})
}
