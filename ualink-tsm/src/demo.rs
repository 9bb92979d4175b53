//! Policy data for the embedded simulated pod (demo and tests): the pod's vendor roots trusted
//! for their own vendor, reference values for every (vendor, model, firmware) in the pod
//! computed independently from ualink-sim's golden images, and `allow_sim_tee`.
//! Never for a real deployment: its trust comes from the simulator itself.
//!
//! Also the demo's hand-off to the auditor: [`register_demo_roots`] puts the demo's simulated
//! roots in the auditor's trust store (outside the state directory), and
//! [`auditor_report_from_store`] is what the bare `ualink-attest report --state STATE` then
//! appraises.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use ualink_attest::trust_store::{OnConflict, TrustEntry, TrustStore};
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
/// only in this process otherwise) so the demo can register them in the auditor's trust store
/// ([`register_demo_roots`]; the auditor never trusts them from the state directory itself).
/// Returns the files written, sorted.
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
/// --trust T.. --device-trust D..` makes it with an empty trust store (checkpoint key from
/// the identity record or `STATE/tsm.pub`, replay under `STATE/policy/` and
/// `STATE/policy-archive/*/`, the AMD roots plus `tee_roots`, `device_roots` for device
/// evidence). Used by tests.
pub fn auditor_report(
    state: &Path,
    tee_roots: &[PathBuf],
    device_roots: &[PathBuf],
) -> anyhow::Result<ualink_attest::report::Report> {
    use anyhow::Context as _;
    use ualink_attest::pki::{certs_from_pem_or_der, TrustAnchors};
    use ualink_attest::spdm_evidence::DeviceTrustAnchors;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
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
    auditor_report_with(state, tee_anchors, device_anchors)
}

/// The appraisal the bare `ualink-attest report --state STATE` makes: roots from the
/// auditor's trust `store` only (AMD's built in plus its `tee/` and `devices/` entries; a
/// store inside `state`, or an entry resolving into it, is refused), no other flag. Returns the report and the entries used.
pub fn auditor_report_from_store(
    state: &Path,
    store: &TrustStore,
) -> anyhow::Result<(ualink_attest::report::Report, Vec<TrustEntry>)> {
    let roots = store.roots_for_audit(state)?;
    let report = auditor_report_with(state, roots.tee, roots.device)?;
    Ok((report, roots.entries))
}

/// The auditor's appraisal of `state` under the given roots (see [`auditor_report`]).
pub fn auditor_report_with(
    state: &Path,
    tee_anchors: ualink_attest::pki::TrustAnchors,
    device_anchors: ualink_attest::spdm_evidence::DeviceTrustAnchors,
) -> anyhow::Result<ualink_attest::report::Report> {
    use anyhow::Context as _;
    use ualink_attest::report::{audit_with_archive, AuditInputs};
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

/// The prefix of the trust store names the demo gives the roots of `state`:
/// `demo-<first 8 hex digits of SHA-384(state path)>`, so two demo runs never share a name.
pub fn demo_trust_prefix(state: &Path) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA384,
        state.as_os_str().to_string_lossy().as_bytes(),
    );
    let short = hex::encode(digest.as_ref().get(..4).unwrap_or_default());
    format!("demo-{short}")
}

/// Registers a demo's simulated roots in the auditor's trust `store`, through the same code
/// path as `ualink-attest trust add`: `tee_root` (the sim platform's ARK, which signs the
/// TSM's and the CVMs' evidence) as `<prefix>-sim-tee` and each of `device_roots` as
/// `<prefix>-device-<file stem>` (prefix from [`demo_trust_prefix`]). An entry of the same
/// name (an earlier demo in a directory of the same path) is replaced. Returns the entries.
pub fn register_demo_roots(
    store: &TrustStore,
    state: &Path,
    tee_root: &Path,
    device_roots: &[PathBuf],
) -> anyhow::Result<Vec<TrustEntry>> {
    use anyhow::Context as _;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let prefix = demo_trust_prefix(state);
    let mut out = vec![store.add_tee(
        &format!("{prefix}-sim-tee"),
        &read(tee_root)?,
        OnConflict::Replace,
    )?];
    for d in device_roots {
        let name = format!(
            "{prefix}-device-{}",
            ualink_attest::trust_store::name_from_path(d)
        );
        out.push(store.add_device(&name, &read(d)?, OnConflict::Replace)?);
    }
    Ok(out)
}
