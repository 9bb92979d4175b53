//! The auditor's report over a whole audit log (`ualink-attest report`).
//!
//! [`audit`] verifies the log and its checkpoints, re-verifies every evidence item embedded
//! in its records ([`crate::audit::event`]), replays every recorded policy decision under the
//! recorded policy bundle, and collects what the log says about the pod into a [`Report`],
//! rendered as text ([`Report::to_text`]), JSON ([`Report::to_json`]) or one self-contained
//! HTML page with an SVG of the pod ([`Report::to_html`]).
//!
//! # The checkpoint key
//! The log's checkpoints are signed by the TSM. The auditor obtains the key, in order:
//! 1. from the log's `tsm-identity` record (the first one): its SNP-format evidence must verify
//!    under the auditor's TEE roots (AMD built in, `--trust` for a sim ARK) with report_data =
//!    SHA-384(public key) ‖ zeros; the key is then used to verify every checkpoint, which
//!    covers that record too;
//! 2. otherwise from a key file (`STATE/tsm.pub`: hex SEC1 point or PEM), which the auditor
//!    must have obtained out of band.
//!
//! If both exist they must agree. Without either, the log cannot be verified.
//!
//! # Verdict
//! [`Report::exit_code`]: 0 if everything verified and every decision replays identically,
//! else the most serious failure: [`EXIT_LOG_TAMPERED`] (the log or its checkpoints do not
//! verify, or no checkpoint key), [`EXIT_EVIDENCE_FAILED`] (an embedded evidence item failed
//! verification), [`EXIT_DECISION_MISMATCH`] (a decision the policy would not have made, a
//! policy digest mismatch, or a decision that cannot be replayed).
//!
//! # Verification quarantines
//! A TSM quarantines a device when a verification check fails before policy ever sees its
//! evidence (SPDM exchange, certificate chain, evidence bundle): it records a Deny whose
//! event is `device-quarantined`, whose rules are all `check.<name>`, and which carries no
//! policy input. Such a record is a verification outcome, not a policy decision: it is not
//! replayed (and not counted as not-replayable). If it embeds device evidence, the auditor
//! re-verifies it and requires it to FAIL; evidence that verifies is
//! [`AnomalyKind::QuarantineWithoutFailure`]. Without embedded evidence it is reported as a
//! recorded quarantine.
//!
//! A key rotation the TSM refuses because an end failed its fresh re-attestation is the same
//! kind of outcome: a `key-rotation` Deny without event or policy input, every rule
//! `check.<name>`, subject `accel-NNNN<->accel-MMMM`. It is not replayed; the log must show
//! the failure instead — the latest appraisal of one of the two accelerators before it did
//! not allow it — else [`AnomalyKind::QuarantineWithoutFailure`]. The pair's keys are dead
//! after it. Any other Deny without a policy input stays not-replayable.
//!
//! # Cross-checks against the log
//! Recorded inputs must agree with what earlier records establish (see `history.rs`): a TDI
//! acceptance's report digest, TDI, device facts and vPod with a TDI report bundle the log
//! issued for that TDI (and its `tdi-report` input digest with that bundle); a share's ends,
//! rights, TDI states, attestation times and live link keys with the event and the earlier
//! lifecycle, appraisal and key records; a key rotation's ends (appraised, attestation
//! times), tenant and current epoch with the earlier appraisal and key records, and key
//! epochs must increase link by link. A contradiction is
//! [`AnomalyKind::InputContradictsLog`] (exit 22).

use crate::audit::event::{
    AcceleratorInfo, AuditEvent, LinkEnd, ShareParty, SwitchInfo, TsmEvidenceBytes,
};
use crate::audit::{verify_log, AuditRecord, CheckpointVerifier, Outcome};
use crate::pki::TrustAnchors;
use crate::snp::{SnpCerts, SnpVerifier};
use crate::spdm_evidence::{DeviceEvidenceVerifier, DeviceTrustAnchors, ExpectedNonce};
use crate::tdi_report::{tsm_report_data, TdiReportVerifier};
use crate::{ExpectedReportData, UnixTime};
use serde::Serialize;

mod history;
use std::collections::BTreeMap;
use ualink_policy::{PolicyBundle, PolicyEngine};

/// Accelerators per row in the HTML report's pod picture.
const SVG_ROW_MAX: usize = 12;

/// Exit code: an embedded evidence item failed verification.
pub const EXIT_EVIDENCE_FAILED: u8 = 20;
/// Exit code: the log or its checkpoints do not verify (or cannot: no checkpoint key).
pub const EXIT_LOG_TAMPERED: u8 = 21;
/// Exit code: a recorded decision does not replay identically under the recorded policy.
pub const EXIT_DECISION_MISMATCH: u8 = 22;

/// What the auditor brings.
pub struct AuditInputs {
    /// The checkpoint key file (`STATE/tsm.pub`), if any.
    pub key_file: Option<Vec<u8>>,
    /// The policy bundle decisions are replayed under (`--policy` or `STATE/policy/`).
    pub policy: Option<PolicyBundle>,
    /// Roots for TEE evidence (TSM, CVMs): AMD built in plus explicit ones.
    pub tee_anchors: TrustAnchors,
    /// Device vendor roots.
    pub device_anchors: DeviceTrustAnchors,
    /// Signed checkpoints the auditor kept from earlier audits.
    pub trusted_checkpoints: Vec<Vec<u8>>,
}

/// The class of an anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// The log or a checkpoint does not verify.
    LogTampered,
    /// An embedded evidence item failed verification.
    EvidenceFailed,
    /// The recorded policy digest is not the bundle given.
    PolicyMismatch,
    /// A decision replays differently.
    DecisionMismatch,
    /// A decision cannot be replayed (no input, no policy).
    NotReplayable,
    /// A recorded policy input contradicts the verified evidence it claims to describe.
    InputNotEvidence,
    /// A record's kind is not the one its event goes with (`AuditEvent::record_kind`), or a
    /// share event contradicts the record's outcome.
    RecordKindMismatch,
    /// A verification outcome whose failure the log does not support: a device quarantine
    /// (`check.*` rules, no policy input) whose embedded device evidence verifies, or a
    /// `check.*` key-rotation refusal although both ends' latest appraisals allowed them.
    QuarantineWithoutFailure,
    /// A recorded policy input or event contradicts what earlier records in the log
    /// establish (TDI states, issued TDI reports, appraisals, live keys, key epochs).
    InputContradictsLog,
    /// Records after the last checkpoint (not covered by a signature); informational.
    Unsealed,
}

impl AnomalyKind {
    fn exit_code(self) -> u8 {
        match self {
            AnomalyKind::LogTampered => EXIT_LOG_TAMPERED,
            AnomalyKind::EvidenceFailed => EXIT_EVIDENCE_FAILED,
            AnomalyKind::PolicyMismatch
            | AnomalyKind::DecisionMismatch
            | AnomalyKind::NotReplayable
            | AnomalyKind::InputNotEvidence
            | AnomalyKind::RecordKindMismatch
            | AnomalyKind::QuarantineWithoutFailure
            | AnomalyKind::InputContradictsLog => EXIT_DECISION_MISMATCH,
            AnomalyKind::Unsealed => 0,
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    /// Class.
    pub kind: AnomalyKind,
    /// The record it concerns.
    pub seq: Option<u64>,
    /// What was found.
    pub detail: String,
}

/// The log's integrity.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LogSummary {
    /// Whether the whole log and its checkpoints verified.
    pub verified: bool,
    /// Records.
    pub records: u64,
    /// Checkpoints.
    pub checkpoints: usize,
    /// Where the checkpoint key came from.
    pub key_source: String,
    /// SHA-384 fingerprint of the checkpoint key.
    pub key_sha384: String,
    /// Merkle root over all records.
    pub root: String,
}

/// A device's latest state.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceRow {
    /// Accelerator id.
    pub accelerator_id: u16,
    /// Device id.
    pub device_id: String,
    /// Leaf certificate subject.
    pub identity: String,
    /// SHA-384 of the vendor root.
    pub root_sha384: String,
    /// SPDM version and algorithms.
    pub spdm: String,
    /// Measurement blocks: `index:hex`.
    pub measurements: Vec<String>,
    /// "verified" or the failure.
    pub evidence: String,
    /// "attested", "denied" or "quarantined".
    pub verdict: String,
    /// Deciding rules.
    pub rules: Vec<String>,
    /// Attestation epoch.
    pub epoch: u64,
}

/// A TDI and its TDISP history.
#[derive(Clone, Debug, Serialize)]
pub struct TdiRow {
    /// TDI id.
    pub tdi_id: String,
    /// Accelerator id.
    pub accelerator_id: u16,
    /// Tenant.
    pub tenant_id: String,
    /// Events in order (`locked`, `report-issued (verified)`, `accepted by cvm`, ...).
    pub history: Vec<String>,
}

/// A tenant.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TenantRow {
    /// Tenant id.
    pub tenant_id: String,
    /// vPods and their members.
    pub vpods: Vec<String>,
    /// CVMs: `id (verdict, measurement)`.
    pub cvms: Vec<String>,
    /// TDIs accepted or refused: `tdi by cvm: outcome`.
    pub accepted: Vec<String>,
    /// Whether offboarded.
    pub offboarded: bool,
}

/// A share decision and its revocation.
#[derive(Clone, Debug, Serialize)]
pub struct ShareRow {
    /// Grant id.
    pub grant_id: String,
    /// `tenant/os@accel`.
    pub exporter: String,
    /// `tenant/os@accel`.
    pub importer: String,
    /// Rights.
    pub rights: Vec<String>,
    /// allow / deny.
    pub outcome: String,
    /// Deciding rules.
    pub rules: Vec<String>,
    /// Revocation cause, if revoked.
    pub revoked: Option<String>,
    /// Revocation latency (drained - requested), seconds.
    pub revocation_latency_s: Option<i64>,
    /// Whether the ends are different tenants.
    pub cross_tenant: bool,
}

/// A key programming or rotation.
#[derive(Clone, Debug, Serialize)]
pub struct KeyRow {
    /// Record sequence number.
    pub seq: u64,
    /// "programmed" / "rotated".
    pub event: String,
    /// `accel:port -> accel:port`.
    pub link: String,
    /// `epoch` or `old -> new`.
    pub epoch: String,
    /// SHA-384 fingerprint of the key.
    pub key_sha384: String,
    /// Outcome and rules.
    pub decision: String,
}

/// The pod's topology.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PodView {
    /// Pod id.
    pub pod_id: String,
    /// Switches and the accelerators attached to each.
    pub switches: Vec<SwitchInfo>,
    /// Accelerators and their device ids.
    pub accelerators: Vec<AcceleratorInfo>,
    /// vPods.
    pub vpods: Vec<VpodView>,
    /// Memory windows carved for vPod members (`window-carved`), in log order.
    pub windows: Vec<WindowView>,
}

/// A memory window carved on an accelerator for a vPod.
#[derive(Clone, Debug, Serialize)]
pub struct WindowView {
    /// Record sequence number.
    pub seq: u64,
    /// vPod id.
    pub vpod_id: String,
    /// Accelerator id.
    pub accelerator_id: u16,
    /// Base address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// A vPod.
#[derive(Clone, Debug, Serialize)]
pub struct VpodView {
    /// vPod id.
    pub vpod_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Member accelerators.
    pub accelerator_ids: Vec<u16>,
}

/// Replay statistics.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplaySummary {
    /// Decisions replayed.
    pub replayed: u64,
    /// Decisions that replayed identically.
    pub identical: u64,
    /// Digest of the bundle replayed under.
    pub policy_sha384: Option<String>,
}

/// Everything the auditor learned.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Log integrity.
    pub log: LogSummary,
    /// Policy replay.
    pub replay: ReplaySummary,
    /// The pod.
    pub pod: PodView,
    /// Devices (latest state of each).
    pub devices: Vec<DeviceRow>,
    /// TDIs.
    pub tdis: Vec<TdiRow>,
    /// Tenants.
    pub tenants: Vec<TenantRow>,
    /// Shares (exports/imports) and revocations.
    pub shares: Vec<ShareRow>,
    /// Key epochs and rotations.
    pub keys: Vec<KeyRow>,
    /// Findings.
    pub anomalies: Vec<Anomaly>,
    /// Every record in order, for the HTML timeline (not in the JSON: the tables carry it).
    #[serde(skip)]
    pub timeline: Vec<TimelineEntry>,
}

/// One record on the HTML report's timeline.
#[derive(Clone, Debug)]
pub struct TimelineEntry {
    /// Sequence number.
    pub seq: u64,
    /// Record time (unix seconds).
    pub time: i64,
    /// Record kind (`device-appraisal`, `lifecycle`, ...): the timeline row.
    pub kind: &'static str,
    /// Subject.
    pub subject: String,
    /// Event type (`window-carved`, ...) or `-`.
    pub event: &'static str,
    /// Outcome.
    pub outcome: Outcome,
}

fn short(h: &str) -> String {
    h.get(..16)
        .map_or_else(|| h.to_string(), |s| format!("{s}…"))
}

fn snp_certs(e: &TsmEvidenceBytes) -> SnpCerts {
    SnpCerts {
        leaf: e.leaf.0.clone(),
        intermediates: e.intermediates.iter().map(|b| b.0.clone()).collect(),
    }
}

/// Finds the first `tsm-identity` record without verifying anything (its key is then checked
/// against its evidence and used to verify the whole log).
fn find_identity(bytes: &[u8]) -> Option<(Vec<u8>, TsmEvidenceBytes, UnixTime)> {
    use crate::audit::file;
    file::check_header(bytes).ok()?;
    let mut offset = file::HEADER_LEN;
    while let Ok(file::Next::Frame(f)) = file::next_frame(bytes, offset) {
        offset = f.frame.end;
        if f.frame_type != file::FRAME_ENTRY {
            continue;
        }
        let rec = bytes
            .get(f.payload.start.checked_add(file::ENTRY_PREFIX)?..f.payload.end)
            .and_then(|b| AuditRecord::from_cbor(b).ok());
        if let Some(r) = &rec {
            if let Some(AuditEvent::TsmIdentity {
                public_key,
                evidence,
            }) = r.event()
            {
                return Some((
                    public_key.0.clone(),
                    evidence.clone(),
                    UnixTime::from_secs(r.time()),
                ));
            }
        }
    }
    None
}

fn rules_of(r: &AuditRecord) -> Vec<String> {
    r.rules().to_vec()
}

/// Prefix of the rules a TSM records for a failed verification check (`check.<name>`).
const CHECK_RULE_PREFIX: &str = "check.";

/// Whether `rec` is a verification quarantine (see the module docs): a device-appraisal Deny
/// with a `device-quarantined` event, at least one rule, every rule `check.<name>` with a
/// non-empty name, and no policy input. Such a record holds no policy decision.
pub fn is_verification_quarantine(rec: &AuditRecord) -> bool {
    rec.kind() == crate::audit::DecisionKind::DeviceAppraisal
        && rec.outcome() == Outcome::Deny
        && matches!(rec.event(), Some(AuditEvent::DeviceQuarantined { .. }))
        && rec.policy_input().is_none()
        && !rec.rules().is_empty()
        && rec.rules().iter().all(|r| {
            r.strip_prefix(CHECK_RULE_PREFIX)
                .is_some_and(|name| !name.is_empty())
        })
}

/// Whether `rec` is a key rotation the TSM refused on a failed verification check (see the
/// module docs): a `key-rotation` Deny with no event and no policy input whose rules are all
/// `check.<name>`, about a pair `accel-NNNN<->accel-MMMM`.
pub fn is_rotation_check_refusal(rec: &AuditRecord) -> bool {
    rec.kind() == crate::audit::DecisionKind::KeyRotation
        && rec.outcome() == Outcome::Deny
        && rec.event().is_none()
        && rec.policy_input().is_none()
        && history::rotation_pair(rec.subject()).is_some()
        && !rec.rules().is_empty()
        && rec.rules().iter().all(|r| {
            r.strip_prefix(CHECK_RULE_PREFIX)
                .is_some_and(|name| !name.is_empty())
        })
}

/// Whether `rec` is a tenant's TDI rejection relayed by the TSM: a `tdi-acceptance` Deny with
/// no policy digest, no policy input and no event, citing the rejected TDI report bundle
/// (`tdi-report` input), about an accelerator `accel-NNNN`. The tenant's agent decided under
/// the tenant's policy, which is not in the log, so it is not replayed; the log must have
/// issued the cited bundle for a TDI on that accelerator (else `input-contradicts-log`). A
/// rejection only ever stops a TDI.
pub fn is_relayed_tenant_rejection(rec: &AuditRecord) -> bool {
    rec.kind() == crate::audit::DecisionKind::TdiAcceptance
        && rec.outcome() == Outcome::Deny
        && rec.policy().is_none()
        && rec.policy_input().is_none()
        && rec.event().is_none()
        && history::accelerator_of(rec.subject()).is_some()
        && rec.inputs().iter().any(|i| i.name == "tdi-report")
}

/// Whether `rec` records a verification outcome rather than a policy decision: a device
/// quarantine ([`is_verification_quarantine`]) or a rotation refusal
/// ([`is_rotation_check_refusal`]). Such records are not replayed.
pub fn is_verification_outcome(rec: &AuditRecord) -> bool {
    is_verification_quarantine(rec) || is_rotation_check_refusal(rec)
}

/// Audits `log` (the bytes of `STATE/audit.log`), replaying decisions under
/// `inputs.policy` only.
pub fn audit(log: &[u8], inputs: &AuditInputs) -> Report {
    audit_with_archive(log, inputs, &[])
}

/// [`audit`], also replaying decisions recorded under earlier bundles: each decision is
/// replayed under whichever of `inputs.policy` and `archived` (e.g. `STATE/policy-archive/*`)
/// has the digest it records; none → a policy mismatch.
pub fn audit_with_archive(log: &[u8], inputs: &AuditInputs, archived: &[PolicyBundle]) -> Report {
    let mut rep = Report::default();
    let tee = SnpVerifier::new(inputs.tee_anchors.clone());
    let anomaly = |rep: &mut Report, kind, seq, detail: String| {
        rep.anomalies.push(Anomaly { kind, seq, detail });
    };

    // 1. The checkpoint key.
    let mut key: Option<(Vec<u8>, String)> = None;
    if let Some((pk, ev, at)) = find_identity(log) {
        match tee.verify(
            &ev.report.0,
            &snp_certs(&ev),
            &ExpectedReportData::Expected(tsm_report_data(&pk)),
            at,
        ) {
            Ok(_) => key = Some((pk, "tsm-identity record (TEE evidence verified)".into())),
            Err(e) => anomaly(
                &mut rep,
                AnomalyKind::EvidenceFailed,
                None,
                format!("TSM identity evidence: {e}"),
            ),
        }
    }
    if let Some(file) = &inputs.key_file {
        match CheckpointVerifier::from_key_file(file) {
            Ok(v) => {
                let pk = v.public_key().to_vec();
                match &key {
                    Some((k, _)) if *k != pk => anomaly(
                        &mut rep,
                        AnomalyKind::LogTampered,
                        None,
                        "tsm.pub differs from the key in the tsm-identity record".into(),
                    ),
                    Some(_) => {}
                    None => key = Some((pk, "tsm.pub (trusted out of band)".into())),
                }
            }
            Err(e) => anomaly(
                &mut rep,
                AnomalyKind::LogTampered,
                None,
                format!("tsm.pub: {e}"),
            ),
        }
    }
    let Some((key, key_source)) = key else {
        anomaly(
            &mut rep,
            AnomalyKind::LogTampered,
            None,
            "no checkpoint key: no verifiable tsm-identity record and no tsm.pub".into(),
        );
        return rep;
    };
    rep.log.key_source = key_source;
    rep.log.key_sha384 = hex::encode(crate::spdm_evidence::sha384(&key));

    // 2. The whole log.
    let verified = match verify_log(
        log,
        &CheckpointVerifier::new(&key),
        &inputs.trusted_checkpoints,
    ) {
        Ok(v) => v,
        Err(e) => {
            let seq = match &e {
                crate::Error::Tampered { seq, .. } => Some(*seq),
                _ => None,
            };
            anomaly(&mut rep, AnomalyKind::LogTampered, seq, e.to_string());
            return rep;
        }
    };
    rep.log.verified = true;
    rep.log.records = verified.size();
    rep.log.checkpoints = verified.checkpoints.len();
    rep.log.root = hex::encode(verified.root());
    if let Some(from) = verified.unsealed_from() {
        anomaly(
            &mut rep,
            AnomalyKind::Unsealed,
            Some(from),
            format!(
                "records {from}..{} are not covered by a signed checkpoint",
                verified.size()
            ),
        );
    }

    let engines: Vec<([u8; 48], PolicyEngine)> = inputs
        .policy
        .iter()
        .chain(archived)
        .map(|b| (b.digest(), PolicyEngine::new(b)))
        .collect();
    rep.replay.policy_sha384 = inputs.policy.as_ref().map(PolicyBundle::digest_hex);
    let device_verifier = DeviceEvidenceVerifier::new(inputs.device_anchors.clone());
    let tdi_verifier = TdiReportVerifier::new(device_verifier.clone(), tee.clone());

    let mut devices: BTreeMap<String, DeviceRow> = BTreeMap::new();
    let mut tdis: BTreeMap<String, TdiRow> = BTreeMap::new();
    let mut tenants: BTreeMap<String, TenantRow> = BTreeMap::new();
    let mut shares: Vec<ShareRow> = Vec::new();
    let mut hist = history::History::default();

    for seq in 0..verified.size() {
        let rec = match verified.record(log, seq) {
            Ok(r) => r,
            Err(e) => {
                anomaly(&mut rep, AnomalyKind::LogTampered, Some(seq), e.to_string());
                continue;
            }
        };
        replay(&mut rep, seq, &rec, &engines);
        rep.timeline.push(TimelineEntry {
            seq,
            time: rec.time(),
            kind: rec.kind().name(),
            subject: rec.subject().to_string(),
            event: rec.event().map_or("-", AuditEvent::name),
            outcome: rec.outcome(),
        });
        for why in hist.check(&rec) {
            anomaly(
                &mut rep,
                AnomalyKind::InputContradictsLog,
                Some(seq),
                format!("{} {}: {why}", rec.kind().name(), rec.subject()),
            );
        }
        let now = UnixTime::from_secs(rec.time());
        let mut seen_device = None;
        let mut seen_tdi_report = None;
        if is_rotation_check_refusal(&rec) {
            if let Some(pair) = history::rotation_pair(rec.subject()) {
                if !hist.rotation_refusal_supported(pair) {
                    anomaly(
                        &mut rep,
                        AnomalyKind::QuarantineWithoutFailure,
                        Some(seq),
                        format!(
                            "rotation-refusal-without-failure: {} refused by {} but the latest \
                             appraisals of both accelerators allowed them",
                            rec.subject(),
                            rec.rules().join(", ")
                        ),
                    );
                }
                rep.keys.push(KeyRow {
                    seq,
                    event: "refused".into(),
                    link: format!("{} <-> {}", pair.0, pair.1),
                    epoch: "-".into(),
                    key_sha384: String::new(),
                    decision: decision_text(&rec),
                });
            }
        }
        if is_relayed_tenant_rejection(&rec) {
            match hist.rejected_tdi(&rec) {
                Ok(tdi_id) => {
                    if let Some(row) = tdis.get_mut(&tdi_id) {
                        row.history.push("rejected by the tenant".into());
                    }
                }
                Err(why) => anomaly(
                    &mut rep,
                    AnomalyKind::InputContradictsLog,
                    Some(seq),
                    format!("tdi-acceptance {}: {why}", rec.subject()),
                ),
            }
        }
        let Some(ev) = rec.event() else {
            hist.apply(
                &rec,
                &history::Verified {
                    device: None,
                    tdi_report: None,
                },
            );
            continue;
        };
        let outcome = rec.outcome();
        let share_contradicts = matches!(
            (ev, outcome),
            (
                AuditEvent::ShareAllowed { .. },
                Outcome::Deny | Outcome::Info
            ) | (
                AuditEvent::ShareDenied { .. },
                Outcome::Allow | Outcome::Info
            )
        );
        if ev.record_kind() != rec.kind() || share_contradicts {
            anomaly(
                &mut rep,
                AnomalyKind::RecordKindMismatch,
                Some(seq),
                format!(
                    "{} event in a {} record with outcome {}",
                    ev.name(),
                    rec.kind().name(),
                    outcome.name()
                ),
            );
        }
        match ev {
            AuditEvent::TsmIdentity { .. } => {}
            AuditEvent::PodDiscovered {
                pod_id,
                switches,
                accelerators,
            } => {
                rep.pod.pod_id.clone_from(pod_id);
                rep.pod.switches.clone_from(switches);
                rep.pod.accelerators.clone_from(accelerators);
            }
            AuditEvent::DeviceAttested {
                device_id,
                accelerator_id,
                epoch,
                nonce,
                evidence,
            } => {
                let expected = <[u8; 32]>::try_from(nonce.0.as_slice())
                    .map_or(ExpectedNonce::NotProvided, ExpectedNonce::Expected);
                let mut row = DeviceRow {
                    evidence: "verified".into(),
                    verdict: match outcome {
                        Outcome::Allow => "attested".into(),
                        Outcome::Deny => "denied".into(),
                        Outcome::Info => "recorded".into(),
                    },
                    rules: rules_of(&rec),
                    epoch: *epoch,
                    ..DeviceRow::blank(*accelerator_id, device_id)
                };
                match device_verifier.verify(&evidence.0, &expected, now) {
                    Ok(v) => {
                        let j = v.to_json();
                        row.fill_from(&v);
                        row.spdm = format!(
                            "{} {} {}",
                            j["spdm_version"].as_str().unwrap_or(""),
                            j["asym"].as_str().unwrap_or(""),
                            j["hash"].as_str().unwrap_or("")
                        );
                        if let Some(why) = rec
                            .policy_input()
                            .and_then(|i| device_input_mismatch(&v, i))
                        {
                            anomaly(
                                &mut rep,
                                AnomalyKind::InputNotEvidence,
                                Some(seq),
                                format!("device {device_id}: policy input {why}"),
                            );
                        }
                        if expected == ExpectedNonce::NotProvided {
                            anomaly(
                                &mut rep,
                                AnomalyKind::EvidenceFailed,
                                Some(seq),
                                format!("device {device_id}: recorded nonce is not 32 bytes"),
                            );
                        } else {
                            seen_device = Some(v);
                        }
                    }
                    Err(e) => {
                        row.evidence = format!("FAILED: {e}");
                        anomaly(
                            &mut rep,
                            AnomalyKind::EvidenceFailed,
                            Some(seq),
                            format!("device {device_id} evidence: {e}"),
                        );
                    }
                }
                devices.insert(device_id.clone(), row);
            }
            AuditEvent::DeviceQuarantined {
                device_id,
                accelerator_id,
                cause,
                evidence,
            } => {
                let check_failure = is_verification_quarantine(&rec);
                // Evidence is embedded when the device was denied by policy; the decision
                // must rest on it like an allow does. (No nonce is recorded for it.)
                // A verification quarantine's evidence must instead fail to verify.
                let verified = evidence
                    .as_ref()
                    .map(|b| device_verifier.verify(&b.0, &ExpectedNonce::NotProvided, now));
                match &verified {
                    Some(Ok(_)) if check_failure => anomaly(
                        &mut rep,
                        AnomalyKind::QuarantineWithoutFailure,
                        Some(seq),
                        format!(
                            "quarantine-without-failure: device {device_id} quarantined by {} \
                             but its embedded evidence verifies",
                            rec.rules().join(", ")
                        ),
                    ),
                    Some(Err(_)) if check_failure => {}
                    Some(Ok(v)) => {
                        if let Some(why) =
                            rec.policy_input().and_then(|i| device_input_mismatch(v, i))
                        {
                            anomaly(
                                &mut rep,
                                AnomalyKind::InputNotEvidence,
                                Some(seq),
                                format!("device {device_id}: policy input {why}"),
                            );
                        }
                    }
                    Some(Err(e)) => anomaly(
                        &mut rep,
                        AnomalyKind::EvidenceFailed,
                        Some(seq),
                        format!("quarantined device {device_id} evidence: {e}"),
                    ),
                    None => {}
                }
                let row = devices
                    .entry(device_id.clone())
                    .or_insert_with(|| DeviceRow {
                        evidence: "-".into(),
                        ..DeviceRow::blank(*accelerator_id, device_id)
                    });
                row.verdict = format!("quarantined: {cause}");
                row.rules = rules_of(&rec);
                match verified {
                    Some(Ok(v)) => {
                        row.fill_from(&v);
                        row.evidence = "verified".into();
                    }
                    Some(Err(e)) if check_failure => {
                        row.evidence = format!("failed as recorded: {e}");
                    }
                    Some(Err(e)) => row.evidence = format!("FAILED: {e}"),
                    None if check_failure => row.evidence = "none embedded".into(),
                    None => {}
                }
            }
            AuditEvent::TenantAdded { tenant_id } => {
                tenants.entry(tenant_id.clone()).or_default().tenant_id = tenant_id.clone();
            }
            AuditEvent::VpodFormed {
                vpod_id,
                tenant_id,
                accelerator_ids,
            } => {
                rep.pod.vpods.push(VpodView {
                    vpod_id: vpod_id.clone(),
                    tenant_id: tenant_id.clone(),
                    accelerator_ids: accelerator_ids.clone(),
                });
                let t = tenants.entry(tenant_id.clone()).or_default();
                t.tenant_id.clone_from(tenant_id);
                t.vpods.push(format!(
                    "{vpod_id} [{}]",
                    accelerator_ids
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
            AuditEvent::WindowCarved {
                vpod_id,
                accelerator_id,
                base,
                size,
            } => rep.pod.windows.push(WindowView {
                seq,
                vpod_id: vpod_id.clone(),
                accelerator_id: *accelerator_id,
                base: *base,
                size: *size,
            }),
            AuditEvent::KeysProgrammed {
                tx,
                rx,
                epoch,
                key_fingerprint,
            } => rep.keys.push(KeyRow {
                seq,
                event: "programmed".into(),
                link: link_text(tx, rx),
                epoch: epoch.to_string(),
                key_sha384: hex::encode(key_fingerprint.as_bytes()),
                decision: decision_text(&rec),
            }),
            AuditEvent::KeysRotated {
                tx,
                rx,
                previous_epoch,
                epoch,
                key_fingerprint,
            } => rep.keys.push(KeyRow {
                seq,
                event: "rotated".into(),
                link: link_text(tx, rx),
                epoch: format!("{previous_epoch} -> {epoch}"),
                key_sha384: hex::encode(key_fingerprint.as_bytes()),
                decision: decision_text(&rec),
            }),
            AuditEvent::TdiLocked {
                tdi_id,
                accelerator_id,
                tenant_id,
            }
            | AuditEvent::TdiStarted {
                tdi_id,
                accelerator_id,
                tenant_id,
            }
            | AuditEvent::TdiStopped {
                tdi_id,
                accelerator_id,
                tenant_id,
            }
            | AuditEvent::TdiError {
                tdi_id,
                accelerator_id,
                tenant_id,
                ..
            } => {
                let row = tdis.entry(tdi_id.clone()).or_insert_with(|| TdiRow {
                    tdi_id: tdi_id.clone(),
                    accelerator_id: *accelerator_id,
                    tenant_id: tenant_id.clone(),
                    history: Vec::new(),
                });
                let what = match ev {
                    AuditEvent::TdiLocked { .. } => "locked".to_string(),
                    AuditEvent::TdiStarted { .. } => "started".to_string(),
                    AuditEvent::TdiStopped { .. } => "stopped".to_string(),
                    AuditEvent::TdiError { cause, .. } => format!("ERROR ({cause})"),
                    _ => String::new(),
                };
                row.history.push(what);
            }
            AuditEvent::TdiReportIssued { tdi_id, bundle } => {
                let status = match tdi_verifier.verify(&bundle.0, &ExpectedNonce::NotProvided, now)
                {
                    Ok(v) => {
                        let bound = tdis.get(tdi_id).is_some_and(|r| {
                            r.tenant_id == v.content.tenant_id
                                && r.accelerator_id == v.content.accelerator_id
                        });
                        if !bound {
                            anomaly(
                                &mut rep,
                                AnomalyKind::EvidenceFailed,
                                Some(seq),
                                format!(
                                    "TDI {tdi_id} report bundle is signed for tenant {} \
                                     accelerator {}, not the TDI's (or the TDI was never locked)",
                                    v.content.tenant_id, v.content.accelerator_id
                                ),
                            );
                        }
                        let status = format!("report issued ({:?}, verified)", v.content.state);
                        if bound {
                            seen_tdi_report = Some(v);
                        }
                        status
                    }
                    Err(e) => {
                        anomaly(
                            &mut rep,
                            AnomalyKind::EvidenceFailed,
                            Some(seq),
                            format!("TDI {tdi_id} report bundle: {e}"),
                        );
                        format!("report issued (FAILED: {e})")
                    }
                };
                if let Some(row) = tdis.get_mut(tdi_id) {
                    row.history.push(status);
                }
            }
            AuditEvent::TdiAccepted {
                tdi_id,
                tenant_id,
                cvm_id,
            } => {
                // The tenant's agent decides; a TSM records its acceptance as information.
                let verdict = match outcome {
                    Outcome::Allow | Outcome::Info => "accepted",
                    Outcome::Deny => "refused",
                };
                if let Some(row) = tdis.get_mut(tdi_id) {
                    row.history.push(format!("{verdict} by {cvm_id}"));
                }
                let t = tenants.entry(tenant_id.clone()).or_default();
                t.tenant_id.clone_from(tenant_id);
                t.accepted.push(format!("{tdi_id} by {cvm_id}: {verdict}"));
            }
            AuditEvent::CvmAttested {
                cvm_id,
                tenant_id,
                evidence,
            } => {
                let status = match tee.verify(
                    &evidence.report.0,
                    &snp_certs(evidence),
                    &ExpectedReportData::NotProvided,
                    now,
                ) {
                    Ok(v) => {
                        if let Some(why) = rec
                            .policy_input()
                            .and_then(|i| cvm_input_mismatch(&v, tenant_id, i))
                        {
                            anomaly(
                                &mut rep,
                                AnomalyKind::InputNotEvidence,
                                Some(seq),
                                format!("CVM {cvm_id}: policy input {why}"),
                            );
                        }
                        format!(
                            "{} measurement {}",
                            match outcome {
                                Outcome::Allow => "accepted",
                                _ => "denied",
                            },
                            short(&hex::encode(v.report.measurement))
                        )
                    }
                    Err(e) => {
                        anomaly(
                            &mut rep,
                            AnomalyKind::EvidenceFailed,
                            Some(seq),
                            format!("CVM {cvm_id} evidence: {e}"),
                        );
                        format!("evidence FAILED: {e}")
                    }
                };
                let t = tenants.entry(tenant_id.clone()).or_default();
                t.tenant_id.clone_from(tenant_id);
                t.cvms.push(format!("{cvm_id} ({status})"));
            }
            AuditEvent::CvmAttestedTdx {
                cvm_id,
                tenant_id,
                quote,
                collateral,
            } => {
                let verified = crate::tdx::TdxCollateral::from_json(&collateral.0).and_then(|c| {
                    crate::tdx::verify_quote(&quote.0, &c, &ExpectedReportData::NotProvided, now)
                });
                let status = match verified {
                    Ok(v) => {
                        if let Some(why) = rec
                            .policy_input()
                            .and_then(|i| tdx_input_mismatch(&v, tenant_id, i))
                        {
                            anomaly(
                                &mut rep,
                                AnomalyKind::InputNotEvidence,
                                Some(seq),
                                format!("CVM {cvm_id}: policy input {why}"),
                            );
                        }
                        format!(
                            "{} TDX MRTD {} TCB {}",
                            match outcome {
                                Outcome::Allow => "accepted",
                                _ => "denied",
                            },
                            short(&hex::encode(v.td.mr_td)),
                            v.tcb_status
                        )
                    }
                    Err(e) => {
                        anomaly(
                            &mut rep,
                            AnomalyKind::EvidenceFailed,
                            Some(seq),
                            format!("CVM {cvm_id} TDX evidence: {e}"),
                        );
                        format!("evidence FAILED: {e}")
                    }
                };
                let t = tenants.entry(tenant_id.clone()).or_default();
                t.tenant_id.clone_from(tenant_id);
                t.cvms.push(format!("{cvm_id} ({status})"));
            }
            AuditEvent::ShareAllowed {
                grant_id,
                exporter,
                importer,
                rights,
            }
            | AuditEvent::ShareDenied {
                grant_id,
                exporter,
                importer,
                rights,
            } => shares.push(ShareRow {
                grant_id: grant_id.clone(),
                exporter: party_text(exporter),
                importer: party_text(importer),
                rights: rights.clone(),
                outcome: outcome.name().into(),
                rules: rules_of(&rec),
                revoked: None,
                revocation_latency_s: None,
                cross_tenant: exporter.tenant_id != importer.tenant_id,
            }),
            AuditEvent::AttachmentRevoked {
                grant_id,
                cause,
                requested_at,
                drained_at,
            } => {
                if let Some(s) = shares.iter_mut().rev().find(|s| s.grant_id == *grant_id) {
                    s.revoked = Some(cause.clone());
                    s.revocation_latency_s = drained_at.checked_sub(*requested_at);
                }
            }
            AuditEvent::TenantOffboarded { tenant_id } => {
                tenants.entry(tenant_id.clone()).or_default().offboarded = true;
            }
        }
        hist.apply(
            &rec,
            &history::Verified {
                device: seen_device.as_ref(),
                tdi_report: seen_tdi_report.as_ref(),
            },
        );
    }
    let mut devs: Vec<DeviceRow> = devices.into_values().collect();
    devs.sort_by_key(|d| d.accelerator_id);
    rep.devices = devs;
    rep.tdis = tdis.into_values().collect();
    rep.tenants = tenants.into_values().collect();
    rep.shares = shares;
    rep
}

/// Whether a recorded device-appraisal input says what the verified evidence says: root
/// fingerprint, SPDM version, every measurement block (index, type byte with bit 7 = raw,
/// value) in order, and the attestation time. `Some(reason)` on the first difference.
fn device_input_mismatch(
    v: &crate::spdm_evidence::VerifiedDeviceEvidence,
    input: &str,
) -> Option<String> {
    let i: serde_json::Value = match serde_json::from_str(input) {
        Ok(i) => i,
        Err(e) => return Some(format!("is not JSON: {e}")),
    };
    if i["vendor_root_fingerprint"].as_str() != Some(hex::encode(v.root_fingerprint).as_str()) {
        return Some("names another vendor root than the evidence chain's".into());
    }
    let version = match v.version {
        ualink_spdm::algo::SpdmVersion::V12 => "1.2",
        ualink_spdm::algo::SpdmVersion::V13 => "1.3",
    };
    if i["spdm"]["version"].as_str() != Some(version) {
        return Some(format!(
            "claims SPDM {}, evidence is {version}",
            i["spdm"]["version"]
        ));
    }
    let evidence: Vec<serde_json::Value> = v
        .measurements
        .iter()
        .map(|m| {
            serde_json::json!({
                "index": m.index,
                "value_type": m.value_type | if m.raw_bit_stream { 0x80 } else { 0 },
                "value": hex::encode(&m.value),
            })
        })
        .collect();
    if i["measurements"].as_array() != Some(&evidence) {
        return Some("lists other measurements than the signed MEASUREMENTS".into());
    }
    if i["attested_at"].as_i64() != Some(v.taken_at.secs()) {
        return Some("claims another attestation time than the evidence".into());
    }
    None
}

/// Whether a recorded CVM-appraisal input says what the verified report says: tenant,
/// measurement and root kind (AMD built-in or explicit). `Some(reason)` on a difference.
fn cvm_input_mismatch(
    v: &crate::snp::VerifiedSnpReport,
    tenant_id: &str,
    input: &str,
) -> Option<String> {
    let i: serde_json::Value = match serde_json::from_str(input) {
        Ok(i) => i,
        Err(e) => return Some(format!("is not JSON: {e}")),
    };
    if i["tenant_id"].as_str() != Some(tenant_id) {
        return Some("names another tenant".into());
    }
    if i["measurement"].as_str() != Some(hex::encode(v.report.measurement).as_str()) {
        return Some("claims another launch measurement than the report".into());
    }
    let root = match v.root {
        crate::pki::AnchorOrigin::AmdBuiltin(_) => "amd",
        crate::pki::AnchorOrigin::Explicit => "explicit",
    };
    if i["root"].as_str() != Some(root) {
        return Some(format!(
            "claims root {}, the report verified to {root}",
            i["root"]
        ));
    }
    None
}

/// Whether a recorded CVM-appraisal input says what the verified TD quote says: TEE `tdx`,
/// root `intel`, tenant, MRTD as the measurement, and the collateral's TCB status.
fn tdx_input_mismatch(
    v: &crate::tdx::VerifiedTdxQuote,
    tenant_id: &str,
    input: &str,
) -> Option<String> {
    let i: serde_json::Value = match serde_json::from_str(input) {
        Ok(i) => i,
        Err(e) => return Some(format!("is not JSON: {e}")),
    };
    if i["tenant_id"].as_str() != Some(tenant_id) {
        return Some("names another tenant".into());
    }
    if i["tee"].as_str() != Some("tdx") || i["root"].as_str() != Some("intel") {
        return Some(format!(
            "claims TEE {} with root {}, the evidence is a TDX quote under Intel's root",
            i["tee"], i["root"]
        ));
    }
    if i["measurement"].as_str() != Some(hex::encode(v.td.mr_td).as_str()) {
        return Some("claims another MRTD than the quote".into());
    }
    if i["tcb"]["status"].as_str() != Some(v.tcb_status.as_str()) {
        return Some(format!(
            "claims TCB status {}, the collateral says {}",
            i["tcb"]["status"], v.tcb_status
        ));
    }
    None
}

impl DeviceRow {
    /// A row with identity and evidence columns empty.
    fn blank(accelerator_id: u16, device_id: &str) -> Self {
        Self {
            accelerator_id,
            device_id: device_id.to_string(),
            identity: String::new(),
            root_sha384: String::new(),
            spdm: String::new(),
            measurements: Vec::new(),
            evidence: String::new(),
            verdict: String::new(),
            rules: Vec::new(),
            epoch: 0,
        }
    }

    /// Identity, root and measurements from verified evidence.
    fn fill_from(&mut self, v: &crate::spdm_evidence::VerifiedDeviceEvidence) {
        self.identity = v.chain_subjects.last().cloned().unwrap_or_default();
        self.root_sha384 = hex::encode(v.root_fingerprint);
        self.measurements = v
            .measurements
            .iter()
            .map(|m| format!("{}:{}", m.index, hex::encode(&m.value)))
            .collect();
    }
}

/// `accel:port -> accel:port`.
fn link_text(tx: &LinkEnd, rx: &LinkEnd) -> String {
    format!(
        "{}:{} -> {}:{}",
        tx.accelerator_id, tx.port, rx.accelerator_id, rx.port
    )
}

/// `tenant/os@accel`.
fn party_text(p: &ShareParty) -> String {
    format!("{}/{}@{}", p.tenant_id, p.os_instance, p.accelerator_id)
}

fn decision_text(r: &AuditRecord) -> String {
    if r.rules().is_empty() {
        r.outcome().name().to_string()
    } else {
        format!("{} ({})", r.outcome().name(), r.rules().join(", "))
    }
}

/// The outcome of replaying one recorded decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// Sequence number.
    pub seq: u64,
    /// Decision kind.
    pub kind: String,
    /// Subject.
    pub subject: String,
    /// What was recorded: allow/deny and rules.
    pub recorded: (bool, Vec<String>),
    /// What the policy says.
    pub replayed: (bool, Vec<String>),
    /// Whether rules, reasons and outcome are identical.
    pub identical: bool,
}

/// Replays the decision in `rec` under `engine`. `None` if the record holds no replayable
/// decision (an Info record, a non-decision, or a verification quarantine:
/// [`is_verification_quarantine`]); `Err` (with the reason) if it should be replayable but
/// cannot be.
pub fn replay_record(
    seq: u64,
    rec: &AuditRecord,
    engine: &PolicyEngine,
) -> Option<core::result::Result<Replayed, String>> {
    let kind = ualink_policy::DecisionKind::from_name(rec.kind().name())?;
    if rec.outcome() == Outcome::Info
        || is_verification_outcome(rec)
        || is_relayed_tenant_rejection(rec)
    {
        return None;
    }
    let Some(input) = rec.policy_input() else {
        return Some(Err(format!(
            "{} decision about {} has no recorded policy input",
            kind.name(),
            rec.subject()
        )));
    };
    let parsed: serde_json::Value = match serde_json::from_str(input) {
        Ok(v) => v,
        Err(e) => return Some(Err(format!("recorded policy input is not JSON: {e}"))),
    };
    if parsed.get("now").and_then(serde_json::Value::as_i64) != Some(rec.time()) {
        return Some(Err("policy input `now` differs from the record time".into()));
    }
    let d = match engine.evaluate(kind, &parsed) {
        Ok(d) => d,
        Err(e) => return Some(Err(format!("policy evaluation failed: {e}"))),
    };
    let recorded_allow = rec.outcome() == Outcome::Allow;
    let identical =
        d.allow == recorded_allow && d.rules == rec.rules() && d.reasons == rec.reasons();
    Some(Ok(Replayed {
        seq,
        kind: kind.name().into(),
        subject: rec.subject().into(),
        recorded: (recorded_allow, rec.rules().to_vec()),
        replayed: (d.allow, d.rules),
        identical,
    }))
}

fn replay(rep: &mut Report, seq: u64, rec: &AuditRecord, engines: &[([u8; 48], PolicyEngine)]) {
    let is_decision = ualink_policy::DecisionKind::from_name(rec.kind().name()).is_some()
        && rec.outcome() != Outcome::Info
        && !is_verification_outcome(rec)
        && !is_relayed_tenant_rejection(rec);
    if !is_decision {
        return;
    }
    if engines.is_empty() {
        rep.anomalies.push(Anomaly {
            kind: AnomalyKind::NotReplayable,
            seq: Some(seq),
            detail: "no policy bundle given (--policy or STATE/policy/)".into(),
        });
        return;
    }
    let engine = match rec.policy() {
        Some(d) => match engines.iter().find(|(g, _)| g == d.as_bytes()) {
            Some((_, e)) => e,
            None => {
                rep.anomalies.push(Anomaly {
                    kind: AnomalyKind::PolicyMismatch,
                    seq: Some(seq),
                    detail: format!(
                        "policy mismatch: decided under {}, no bundle given has that digest ({})",
                        short(&hex::encode(d.as_bytes())),
                        engines
                            .iter()
                            .map(|(g, _)| short(&hex::encode(g)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
                return;
            }
        },
        None => {
            rep.anomalies.push(Anomaly {
                kind: AnomalyKind::NotReplayable,
                seq: Some(seq),
                detail: "decision records no policy digest".into(),
            });
            return;
        }
    };
    rep.replay.replayed += 1;
    match replay_record(seq, rec, engine) {
        None => {}
        Some(Err(e)) => rep.anomalies.push(Anomaly {
            kind: AnomalyKind::NotReplayable,
            seq: Some(seq),
            detail: e,
        }),
        Some(Ok(r)) if r.identical => rep.replay.identical += 1,
        Some(Ok(r)) => rep.anomalies.push(Anomaly {
            kind: AnomalyKind::DecisionMismatch,
            seq: Some(seq),
            detail: format!(
                "{} {}: recorded {} [{}], policy says {} [{}]",
                r.kind,
                r.subject,
                allow_name(r.recorded.0),
                r.recorded.1.join(", "),
                allow_name(r.replayed.0),
                r.replayed.1.join(", ")
            ),
        }),
    }
}

fn allow_name(a: bool) -> &'static str {
    if a {
        "allow"
    } else {
        "deny"
    }
}

impl Report {
    /// 0 if everything verified and replayed identically, else the most serious failure's
    /// code (log tampered > evidence failed > decision mismatch).
    pub fn exit_code(&self) -> u8 {
        let codes: Vec<u8> = self.anomalies.iter().map(|a| a.kind.exit_code()).collect();
        for c in [
            EXIT_LOG_TAMPERED,
            EXIT_EVIDENCE_FAILED,
            EXIT_DECISION_MISMATCH,
        ] {
            if codes.contains(&c) {
                return c;
            }
        }
        0
    }

    /// One word for the verdict.
    pub fn verdict(&self) -> &'static str {
        match self.exit_code() {
            0 => "VERIFIED",
            EXIT_LOG_TAMPERED => "LOG TAMPERED",
            EXIT_EVIDENCE_FAILED => "EVIDENCE FAILED",
            _ => "DECISION MISMATCH",
        }
    }

    /// The report as JSON (full hex digests).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert("verdict".into(), self.verdict().into());
            m.insert("exit_code".into(), self.exit_code().into());
        }
        v
    }

    /// The report as text tables (digests shortened to 16 hex digits).
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        o.push_str(&format!(
            "ualink-attest audit report: {} (exit {})\n\n",
            self.verdict(),
            self.exit_code()
        ));
        o.push_str(&format!(
            "Log: {} records, {} checkpoints, {}; root {}\n     checkpoint key {} from {}\n",
            self.log.records,
            self.log.checkpoints,
            if self.log.verified {
                "verified"
            } else {
                "NOT VERIFIED"
            },
            short(&self.log.root),
            short(&self.log.key_sha384),
            self.log.key_source
        ));
        o.push_str(&format!(
            "Policy: {} decisions replayed, {} identical, bundle {}\n",
            self.replay.replayed,
            self.replay.identical,
            self.replay
                .policy_sha384
                .as_deref()
                .map_or_else(|| "none".into(), short)
        ));
        for (title, table) in self.tables(true) {
            o.push_str(&format!("\n{title}\n"));
            o.push_str(&render_text_table(&table));
        }
        o
    }

    /// Each section as (title, header + rows).
    fn tables(&self, abbreviate: bool) -> Vec<(String, Vec<Vec<String>>)> {
        let h = |s: &str| {
            if abbreviate {
                short(s)
            } else {
                s.to_string()
            }
        };
        let mut out = Vec::new();
        let mut pod = vec![vec!["switch".into(), "accelerators".into()]];
        for sw in &self.pod.switches {
            pod.push(vec![
                sw.switch_id.to_string(),
                sw.accelerator_ids
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
        let mut vp = vec![vec!["vpod".into(), "tenant".into(), "accelerators".into()]];
        for v in &self.pod.vpods {
            vp.push(vec![
                v.vpod_id.clone(),
                v.tenant_id.clone(),
                v.accelerator_ids
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ]);
        }
        out.push((format!("Pod {}", self.pod.pod_id), pod));
        out.push(("vPods".into(), vp));
        if !self.pod.windows.is_empty() {
            let mut win = vec![["seq", "vpod", "accel", "base", "size"]
                .map(String::from)
                .to_vec()];
            for w in &self.pod.windows {
                win.push(vec![
                    w.seq.to_string(),
                    w.vpod_id.clone(),
                    w.accelerator_id.to_string(),
                    format!("{:#x}", w.base),
                    format!("{:#x}", w.size),
                ]);
            }
            out.push(("Windows".into(), win));
        }
        let mut dev = vec![[
            "accel",
            "device",
            "identity",
            "root",
            "spdm",
            "measurements",
            "evidence",
            "verdict",
            "rules",
        ]
        .map(String::from)
        .to_vec()];
        for d in &self.devices {
            dev.push(vec![
                d.accelerator_id.to_string(),
                d.device_id.clone(),
                d.identity.clone(),
                h(&d.root_sha384),
                d.spdm.clone(),
                d.measurements
                    .iter()
                    .map(|m| match m.split_once(':') {
                        Some((i, v)) => format!("{i}:{}", h(v)),
                        None => h(m),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                d.evidence.clone(),
                d.verdict.clone(),
                d.rules.join(", "),
            ]);
        }
        out.push(("Devices".into(), dev));
        let mut tdi = vec![["tdi", "accel", "tenant", "TDISP history"]
            .map(String::from)
            .to_vec()];
        for t in &self.tdis {
            tdi.push(vec![
                t.tdi_id.clone(),
                t.accelerator_id.to_string(),
                t.tenant_id.clone(),
                t.history.join(" -> "),
            ]);
        }
        out.push(("TDIs".into(), tdi));
        let mut ten = vec![["tenant", "vpods", "cvms", "accepted", "status"]
            .map(String::from)
            .to_vec()];
        for t in &self.tenants {
            ten.push(vec![
                t.tenant_id.clone(),
                t.vpods.join("; "),
                t.cvms.join("; "),
                t.accepted.join("; "),
                if t.offboarded { "offboarded" } else { "active" }.into(),
            ]);
        }
        out.push(("Tenants".into(), ten));
        let mut sh = vec![[
            "grant", "exporter", "importer", "rights", "outcome", "rules", "revoked", "latency",
        ]
        .map(String::from)
        .to_vec()];
        for s in &self.shares {
            sh.push(vec![
                s.grant_id.clone(),
                s.exporter.clone(),
                s.importer.clone(),
                s.rights.join(","),
                s.outcome.clone(),
                s.rules.join(", "),
                s.revoked.clone().unwrap_or_else(|| "-".into()),
                s.revocation_latency_s
                    .map_or_else(|| "-".into(), |l| format!("{l} s")),
            ]);
        }
        out.push(("Shares (export/import/revoke)".into(), sh));
        let mut k = vec![["seq", "event", "link", "epoch", "key sha384", "decision"]
            .map(String::from)
            .to_vec()];
        for r in &self.keys {
            k.push(vec![
                r.seq.to_string(),
                r.event.clone(),
                r.link.clone(),
                r.epoch.clone(),
                h(&r.key_sha384),
                r.decision.clone(),
            ]);
        }
        out.push(("Link keys".into(), k));
        let mut an = vec![["kind", "seq", "detail"].map(String::from).to_vec()];
        for a in &self.anomalies {
            an.push(vec![
                serde_json::to_value(a.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                a.seq.map_or_else(|| "-".into(), |s| s.to_string()),
                a.detail.clone(),
            ]);
        }
        out.push(("Anomalies".into(), an));
        out
    }

    /// One self-contained HTML page: the tables and an inline SVG of the pod (one
    /// `<g class="accelerator" id="accel-N">` per accelerator, coloured by tenant; switches;
    /// shares as arrows).
    pub fn to_html(&self) -> String {
        let mut o = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ualink-attest audit \
             report</title>\n<style>body{font-family:sans-serif;margin:16px}table{border-collapse:\
             collapse;margin-bottom:16px}td,th{border:1px solid #999;padding:2px 6px;font-size:12px;\
             text-align:left}th{background:#ddd}.bad{color:#b00;font-weight:bold}.ok{color:#070;\
             font-weight:bold}</style></head><body>\n",
        );
        let cls = if self.exit_code() == 0 { "ok" } else { "bad" };
        o.push_str(&format!(
            "<h1>Audit report: <span class=\"{cls}\" id=\"verdict\">{}</span></h1>\n",
            esc(self.verdict())
        ));
        o.push_str(&format!(
            "<p>{} records, {} checkpoints, log {}; {} decisions replayed, {} identical.</p>\n",
            self.log.records,
            self.log.checkpoints,
            if self.log.verified {
                "verified"
            } else {
                "NOT verified"
            },
            self.replay.replayed,
            self.replay.identical
        ));
        o.push_str(&self.svg());
        o.push_str("<h2>Timeline</h2>\n");
        o.push_str(&self.timeline_svg());
        for (title, table) in self.tables(true) {
            o.push_str(&format!("<h2>{}</h2>\n<table>", esc(&title)));
            for (i, row) in table.iter().enumerate() {
                let tag = if i == 0 { "th" } else { "td" };
                o.push_str("<tr>");
                for c in row {
                    o.push_str(&format!("<{tag}>{}</{tag}>", esc(c)));
                }
                o.push_str("</tr>");
            }
            o.push_str("</table>\n");
        }
        o.push_str("</body></html>\n");
        o
    }

    /// The record timeline: one row per record kind (in a fixed order, kinds without
    /// records left out), one dot per record placed by sequence number, green allow, red
    /// deny, grey information; each dot's title names its seq, time, event and subject.
    fn timeline_svg(&self) -> String {
        const KINDS: [&str; 8] = [
            "lifecycle",
            "device-appraisal",
            "cvm-appraisal",
            "tdi-acceptance",
            "share",
            "key-rotation",
            "revocation",
            "policy-change",
        ];
        const LEFT: usize = 130;
        const ROW_H: usize = 24;
        let rows: Vec<&str> = KINDS
            .iter()
            .copied()
            .filter(|k| self.timeline.iter().any(|e| e.kind == *k))
            .collect();
        let n = self.timeline.len();
        let plot_w = (12 * n).clamp(200, 1400);
        let width = LEFT + plot_w + 20;
        let height = 10 + ROW_H * rows.len().max(1) + 10;
        let mut o = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"{width}\" \
             height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n<rect x=\"0\" y=\"0\" \
             width=\"{width}\" height=\"{height}\" fill=\"#fafafa\"/>\n"
        );
        for (r, k) in rows.iter().enumerate() {
            let y = 10 + ROW_H * r + ROW_H / 2;
            o.push_str(&format!(
                "<g class=\"timeline-row\" data-kind=\"{k}\"><text x=\"8\" y=\"{}\" \
                 font-size=\"11\">{k}</text><line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" \
                 y2=\"{y}\" stroke=\"#ccc\"/></g>\n",
                y + 4,
                LEFT + plot_w
            ));
        }
        for (i, e) in self.timeline.iter().enumerate() {
            let Some(r) = rows.iter().position(|k| *k == e.kind) else {
                continue;
            };
            let x = LEFT + plot_w * i / n.saturating_sub(1).max(1);
            let y = 10 + ROW_H * r + ROW_H / 2;
            let fill = match e.outcome {
                Outcome::Allow => "#2a2",
                Outcome::Deny => "#c00",
                Outcome::Info => "#888",
            };
            o.push_str(&format!(
                "<circle class=\"record\" data-seq=\"{}\" data-event=\"{}\" cx=\"{x}\" \
                 cy=\"{y}\" r=\"4\" fill=\"{fill}\"><title>{}</title></circle>\n",
                e.seq,
                e.event,
                esc(&format!(
                    "seq {} at {}: {} {} ({})",
                    e.seq,
                    e.time,
                    e.event,
                    e.subject,
                    e.outcome.name()
                ))
            ));
        }
        o.push_str("</svg>\n");
        o
    }

    /// The pod picture: one row per switch (its accelerators beside it; rows wrap after
    /// [`SVG_ROW_MAX`] accelerators; accelerators on no switch get a last row), accelerators
    /// coloured by tenant with a red border when not attested, their carved windows as bars
    /// under them, and allowed shares as arrows.
    fn svg(&self) -> String {
        const PALETTE: [&str; 8] = [
            "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
        ];
        const ROW_H: usize = 150;
        const TOP: usize = 50;
        const LEFT: usize = 130;
        const STEP: usize = 90;
        let mut tenant_color: BTreeMap<&str, &str> = BTreeMap::new();
        let mut accel_tenant: BTreeMap<u16, &str> = BTreeMap::new();
        for v in &self.pod.vpods {
            let n = tenant_color.len();
            tenant_color
                .entry(v.tenant_id.as_str())
                .or_insert(PALETTE.get(n % PALETTE.len()).copied().unwrap_or("#888"));
            for a in &v.accelerator_ids {
                accel_tenant.insert(*a, v.tenant_id.as_str());
            }
        }
        // Rows: (switch id or None, accelerators).
        let mut placed: BTreeMap<u16, (usize, usize)> = BTreeMap::new();
        let mut rows: Vec<(Option<u16>, Vec<u16>)> = Vec::new();
        let known: Vec<u16> = self
            .pod
            .accelerators
            .iter()
            .map(|a| a.accelerator_id)
            .collect();
        let mut place = |rows: &mut Vec<(Option<u16>, Vec<u16>)>, sw: Option<u16>, ids: &[u16]| {
            let mut row: Vec<u16> = Vec::new();
            for a in ids {
                if placed.contains_key(a) || !known.contains(a) {
                    continue;
                }
                if row.len() == SVG_ROW_MAX {
                    rows.push((sw, core::mem::take(&mut row)));
                }
                placed.insert(*a, (rows.len(), row.len()));
                row.push(*a);
            }
            if !row.is_empty() || sw.is_some() {
                rows.push((sw, row));
            }
        };
        for sw in &self.pod.switches {
            place(&mut rows, Some(sw.switch_id), &sw.accelerator_ids);
        }
        place(&mut rows, None, &known);
        let cols = rows.iter().map(|(_, r)| r.len()).max().unwrap_or(0).max(1);
        let width = LEFT + STEP * cols + 40;
        let height = TOP + ROW_H * rows.len().max(1) + 30;
        let pos = |a: u16| -> Option<(usize, usize)> {
            placed
                .get(&a)
                .map(|(r, c)| (LEFT + STEP * c, TOP + ROW_H * r + 30))
        };
        let mut o = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"pod\" width=\"{width}\" \
             height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n<defs><marker id=\"arrow\" \
             viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" \
             orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#c00\"/></marker></defs>\n\
             <rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#fafafa\"/>\n"
        );
        let mut switch_row: BTreeMap<u16, usize> = BTreeMap::new();
        for (r, (sw, _)) in rows.iter().enumerate() {
            if let Some(s) = sw {
                switch_row.entry(*s).or_insert(r);
            }
        }
        for sw in &self.pod.switches {
            let s = sw.switch_id;
            let Some(r) = switch_row.get(&s) else {
                continue;
            };
            let (sx, sy) = (10, TOP + ROW_H * r + 35);
            for a in &sw.accelerator_ids {
                if let Some((ax, ay)) = pos(*a) {
                    o.push_str(&format!(
                        "<line x1=\"{}\" y1=\"{}\" x2=\"{ax}\" y2=\"{}\" stroke=\"#999\"/>\n",
                        sx + 80,
                        sy + 20,
                        ay + 25
                    ));
                }
            }
            o.push_str(&format!(
                "<g class=\"switch\" id=\"switch-{s}\"><rect x=\"{sx}\" y=\"{sy}\" width=\"80\" \
                 height=\"40\" fill=\"#555\"/><text x=\"{}\" y=\"{}\" fill=\"#fff\" \
                 text-anchor=\"middle\" font-size=\"12\">switch {s}</text></g>\n",
                sx + 40,
                sy + 25
            ));
        }
        for acc in &self.pod.accelerators {
            let (a, dev) = (&acc.accelerator_id, &acc.device_id);
            let Some((x, y)) = pos(*a) else { continue };
            let tenant = accel_tenant.get(a).copied();
            let fill = tenant
                .and_then(|t| tenant_color.get(t).copied())
                .unwrap_or("#ccc");
            let quarantined = self
                .devices
                .iter()
                .any(|d| d.accelerator_id == *a && d.verdict != "attested");
            o.push_str(&format!(
                "<g class=\"accelerator\" id=\"accel-{a}\" data-tenant=\"{}\"><rect x=\"{x}\" \
                 y=\"{y}\" width=\"70\" height=\"50\" rx=\"6\" fill=\"{fill}\" stroke=\"{}\" \
                 stroke-width=\"{}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
                 font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
                 font-size=\"10\">{}</text></g>\n",
                esc(tenant.unwrap_or("")),
                if quarantined { "#c00" } else { "#333" },
                if quarantined { 3 } else { 1 },
                x + 35,
                y + 20,
                a,
                x + 35,
                y + 38,
                esc(tenant.unwrap_or(dev))
            ));
            for (k, w) in self
                .pod
                .windows
                .iter()
                .filter(|w| w.accelerator_id == *a)
                .enumerate()
            {
                let wy = y + 54 + 7 * k;
                o.push_str(&format!(
                    "<rect class=\"window\" id=\"window-{}\" x=\"{}\" y=\"{wy}\" width=\"60\" \
                     height=\"5\" fill=\"#333\"><title>{}</title></rect>\n",
                    w.seq,
                    x + 5,
                    esc(&format!(
                        "window {:#x}+{:#x} for {} (seq {})",
                        w.base, w.size, w.vpod_id, w.seq
                    ))
                ));
            }
        }
        for (i, s) in self.shares.iter().enumerate() {
            if s.outcome != "allow" {
                continue;
            }
            let acc = |e: &str| e.rsplit('@').next().and_then(|n| n.parse::<u16>().ok());
            let (Some((x1, y1)), Some((x2, y2))) = (
                acc(&s.exporter).and_then(pos),
                acc(&s.importer).and_then(pos),
            ) else {
                continue;
            };
            // Same row: an arc below the row; across rows: a bow to the right, ending on
            // the top (or bottom) edge of the importer.
            let (x1, x2) = (x1 + 35, x2 + 35);
            let bend = 10 * (i % 4);
            let (y1, y2, cx, cy) = match y1.cmp(&y2) {
                core::cmp::Ordering::Equal => (y1 + 50, y2 + 50, (x1 + x2) / 2, y1 + 95 + bend),
                core::cmp::Ordering::Less => {
                    (y1 + 50, y2, (x1 + x2) / 2 + 60 + bend, (y1 + y2) / 2 + 25)
                }
                core::cmp::Ordering::Greater => {
                    (y1, y2 + 50, (x1 + x2) / 2 + 60 + bend, (y1 + y2) / 2 + 25)
                }
            };
            o.push_str(&format!(
                "<path class=\"share{}\" id=\"share-{}\" d=\"M{x1},{y1} Q{cx},{cy} {x2},{y2}\" \
                 fill=\"none\" stroke=\"#c00\" stroke-width=\"2\" \
                 marker-end=\"url(#arrow)\"><title>{}</title></path>\n",
                if s.cross_tenant { " cross-tenant" } else { "" },
                esc(&s.grant_id),
                esc(&format!(
                    "{} -> {} ({})",
                    s.exporter, s.importer, s.grant_id
                ))
            ));
        }
        let mut lx = 10;
        for (t, c) in &tenant_color {
            o.push_str(&format!(
                "<rect x=\"{lx}\" y=\"11\" width=\"10\" height=\"10\" fill=\"{c}\"/><text \
                 x=\"{}\" y=\"20\" font-size=\"11\">{}</text>\n",
                lx + 14,
                esc(t)
            ));
            lx += 24 + 7 * t.chars().count();
        }
        o.push_str("</svg>\n");
        o
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn render_text_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let mut o = String::new();
    for (n, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(c.chars().count());
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        o.push_str("  ");
        o.push_str(line.trim_end());
        o.push('\n');
        if n == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
            o.push_str("  ");
            o.push_str(&"-".repeat(total));
            o.push('\n');
        }
    }
    if rows.len() <= 1 {
        o.push_str("  (none)\n");
    }
    o
}
