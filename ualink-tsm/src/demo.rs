//! Policy data for the embedded simulated pod (demo and tests): the pod's vendor roots trusted
//! for their own vendor, reference values for every (vendor, model, firmware) in the pod
//! computed independently from ualink-sim's golden images, and `allow_sim_tee`.
//! Never for a real deployment: its trust comes from the simulator itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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

/// One allowed sharing direction for [`tenants_overlay`].
#[derive(Clone, Debug)]
pub struct SharePair<'a> {
    /// Exporting tenant name.
    pub exporter: &'a str,
    /// Importing tenant name.
    pub importer: &'a str,
    /// Rights the pair may grant ("read", "write", "atomic").
    pub rights: &'a [&'a str],
}

/// [`sim_pod_overlay`] plus the named tenants and the sharing pairs the policy allows (every
/// other cross-tenant share is denied by the default policy).
pub fn tenants_overlay(
    pod: &SimPod,
    spec: &PodSpec,
    tenants: &[&str],
    pairs: &[SharePair<'_>],
) -> Value {
    let mut v = sim_pod_overlay(pod, spec);
    let t: serde_json::Map<String, Value> = tenants
        .iter()
        .map(|n| ((*n).to_string(), json!({})))
        .collect();
    let p: Vec<Value> = pairs
        .iter()
        .map(|p| json!({"exporter": p.exporter, "importer": p.importer, "rights": p.rights}))
        .collect();
    if let Some(d) = v.get_mut("ualink_data").and_then(Value::as_object_mut) {
        d.insert("tenants".into(), Value::Object(t));
        d.insert("sharing".into(), json!({ "pairs": p }));
    }
    v
}

/// Writes the simulated pod's vendor roots to `STATE/device-roots/<vendor>.der` (they exist
/// only in this process otherwise) so an auditor can pass them to
/// `ualink-attest report --device-trust`. Returns the files written, sorted.
pub fn write_device_roots(state: &Path, pod: &SimPod) -> std::io::Result<Vec<PathBuf>> {
    let dir = state.join("device-roots");
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    for (vendor, der) in pod.vendor_roots() {
        let name: String = vendor
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = dir.join(format!("{name}.der"));
        std::fs::write(&path, der)?;
        out.push(path);
    }
    out.sort();
    Ok(out)
}

/// The auditor's appraisal of a state directory, as `ualink-attest report --state STATE
/// --trust T.. --device-trust D..` makes it (checkpoint key from the identity record or
/// `STATE/tsm.pub`, replay under `STATE/policy/` and `STATE/policy-archive/*/`, the AMD roots
/// plus `tee_roots`, `device_roots` for device evidence). Used by the demo to check what it
/// leaves before printing the command, and by tests.
pub fn auditor_report(
    state: &Path,
    tee_roots: &[PathBuf],
    device_roots: &[PathBuf],
) -> anyhow::Result<ualink_attest::report::Report> {
    use anyhow::Context as _;
    use ualink_attest::pki::{certs_from_pem_or_der, TrustAnchors};
    use ualink_attest::report::{audit_with_archive, AuditInputs};
    use ualink_attest::spdm_evidence::DeviceTrustAnchors;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let log = read(&state.join("audit.log"))?;
    let key = state.join("tsm.pub");
    let key_file = if key.exists() {
        Some(read(&key)?)
    } else {
        None
    };
    let policy_dir = state.join("policy");
    let policy = if policy_dir.is_dir() {
        Some(ualink_policy::PolicyBundle::load(&policy_dir)?)
    } else {
        None
    };
    let mut archived = Vec::new();
    if let Ok(entries) = std::fs::read_dir(state.join("policy-archive")) {
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for d in dirs {
            archived.push(ualink_policy::PolicyBundle::load(&d)?);
        }
    }
    let mut tee_anchors = TrustAnchors::amd_builtin()?;
    for t in tee_roots {
        tee_anchors = tee_anchors.with_explicit_roots_pem(&read(t)?)?;
    }
    let mut device_anchors = DeviceTrustAnchors::new();
    for f in device_roots {
        for der in certs_from_pem_or_der(&read(f)?)? {
            device_anchors
                .add_der(&der)
                .map_err(|e| anyhow::anyhow!("device root {}: {e:?}", f.display()))?;
        }
    }
    Ok(audit_with_archive(
        &log,
        &AuditInputs {
            key_file,
            policy,
            tee_anchors,
            device_anchors,
            trusted_checkpoints: Vec::new(),
        },
        &archived,
    ))
}
