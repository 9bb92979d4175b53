//! What the earlier records of a log establish, and the checks of later records against it.
//!
//! The auditor walks the log in order. Each record first has its recorded policy input (and
//! its event) checked against what the records before it establish, and then adds what it
//! establishes itself. A claim that would let a policy allow something (a TDI in RUN, an
//! appraised device, live link keys, a report digest, an attestation time, a key epoch)
//! must be supported by earlier records; a claim that only makes a decision stricter is not
//! held against the log, because a TSM restart resets what the driver holds (TDI states,
//! key slots) without a record.
//!
//! What is tracked, from which events:
//! - per accelerator: the device id, whether its latest appraisal allowed it
//!   (`device-attested` with outcome allow; `device-quarantined` or a deny clears it) and
//!   the evidence time of its latest allowed appraisal;
//! - per accelerator: its TDI (id, tenant) and TDISP state from `tdi-locked` (LOCKED),
//!   `tdi-started` (RUN), `tdi-stopped` (UNLOCKED), `tdi-error` (ERROR); a quarantine
//!   unlocks it (the TSM drops the TDI);
//! - per TDI id: the TDI report bundles issued for it that verified;
//! - per tenant: the accelerators of its vPods (forgotten when it is offboarded);
//! - per directed link (TX end → RX end, ports included): the key epoch and whether the keys
//!   are live (`keys-programmed`, `keys-rotated`; a quarantine of either end, a
//!   `check.*` rotation refusal of the pair, or the owner's offboarding makes them dead);
//! - per accelerator pair: the last key epoch.

use crate::audit::event::{AuditEvent, LinkEnd, ShareParty};
use crate::audit::{AuditRecord, DecisionKind, Outcome};
use crate::spdm_evidence::VerifiedDeviceEvidence;
use crate::tdi_report::VerifiedTdiReport;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use ualink_spdm::algo::{AsymAlg, HashAlg, SpdmVersion};
use ualink_spdm::tdisp::msg::{InterfaceInfo, MmioRangeAttributes};
use ualink_spdm::tdisp::TdiState;

/// A device's standing in the log.
#[derive(Clone, Debug, Default)]
struct DeviceFacts {
    device_id: String,
    /// The latest appraisal allowed the device.
    appraised: bool,
    /// Evidence time of the latest allowed appraisal.
    attested_at: Option<i64>,
}

/// A TDI's standing in the log.
#[derive(Clone, Debug)]
struct TdiFacts {
    tdi_id: String,
    tenant_id: String,
    state: TdiState,
}

/// A TDI report bundle the log issued (and that verified).
#[derive(Clone, Debug)]
struct IssuedReport {
    bundle_sha384: [u8; 48],
    report: VerifiedTdiReport,
}

/// A directed link's keys.
#[derive(Clone, Copy, Debug)]
struct LinkKeys {
    epoch: u64,
    live: bool,
}

/// A directed link: TX end → RX end, by accelerator and port.
type LinkId = (u16, u16, u16, u16);

fn link_id(tx: &LinkEnd, rx: &LinkEnd) -> LinkId {
    (tx.accelerator_id, tx.port, rx.accelerator_id, rx.port)
}

fn pair(a: u16, b: u16) -> (u16, u16) {
    (a.min(b), a.max(b))
}

/// The log so far, as the checks need it.
#[derive(Debug, Default)]
pub(super) struct History {
    devices: BTreeMap<u16, DeviceFacts>,
    tdis: BTreeMap<u16, TdiFacts>,
    reports: BTreeMap<String, Vec<IssuedReport>>,
    vpods: BTreeMap<String, BTreeSet<u16>>,
    links: BTreeMap<LinkId, LinkKeys>,
    pair_epochs: BTreeMap<(u16, u16), u64>,
}

/// The parts of a record's check the caller supplies from its own verification.
pub(super) struct Verified<'a> {
    /// The device evidence of a `device-attested` record, if it verified.
    pub device: Option<&'a VerifiedDeviceEvidence>,
    /// The TDI report bundle of a `tdi-report-issued` record, if it verified.
    pub tdi_report: Option<&'a VerifiedTdiReport>,
}

/// The accelerator of an `accel-NNNN` subject.
pub(super) fn accelerator_of(subject: &str) -> Option<u16> {
    subject.strip_prefix("accel-")?.parse::<u16>().ok()
}

/// The `accel-NNNN<->accel-MMMM` subject of a TSM key-rotation record.
pub(super) fn rotation_pair(subject: &str) -> Option<(u16, u16)> {
    let (a, b) = subject.split_once("<->")?;
    let id = |s: &str| s.strip_prefix("accel-")?.parse::<u16>().ok();
    Some((id(a)?, id(b)?))
}

fn state_name(s: TdiState) -> &'static str {
    match s {
        TdiState::ConfigUnlocked => "CONFIG_UNLOCKED",
        TdiState::ConfigLocked => "CONFIG_LOCKED",
        TdiState::Run => "RUN",
        TdiState::Error => "ERROR",
    }
}

fn spdm_names(d: &VerifiedDeviceEvidence) -> (&'static str, &'static str, &'static str) {
    (
        match d.version {
            SpdmVersion::V12 => "1.2",
            SpdmVersion::V13 => "1.3",
        },
        match d.algorithms.asym {
            AsymAlg::EcdsaP256 => "ecdsa-p256",
            AsymAlg::EcdsaP384 => "ecdsa-p384",
        },
        match d.algorithms.hash {
            HashAlg::Sha256 => "sha-256",
            HashAlg::Sha384 => "sha-384",
        },
    )
}

/// The `tdi` object of a TDI-acceptance input as the issued report says it (the fields the
/// tenant's agent derives from the verified bundle).
fn tdi_object(r: &VerifiedTdiReport) -> Value {
    let info = r.interface_report.interface_info.bits();
    let bit = |b: u16| info & b != 0;
    let ranges: Vec<Value> = r
        .interface_report
        .mmio_ranges
        .iter()
        .map(|m| {
            let a = m.attributes.bits();
            serde_json::json!({
                "first_page": m.first_page,
                "number_of_pages": m.number_of_pages,
                "range_id": m.range_id,
                "msix_table": a & MmioRangeAttributes::MSIX_TABLE != 0,
                "msix_pba": a & MmioRangeAttributes::MSIX_PBA != 0,
                "non_tee_mem": a & MmioRangeAttributes::IS_NON_TEE_MEM != 0,
                "mem_attr_updatable": a & MmioRangeAttributes::IS_MEM_ATTR_UPDATABLE != 0,
            })
        })
        .collect();
    serde_json::json!({
        "interface_id": r.content.interface_id.function_id(),
        "state": state_name(r.content.state),
        "interface_info": {
            "no_update_after_lock": bit(InterfaceInfo::NO_UPDATE_AFTER_LOCK),
            "dma_without_pasid": bit(InterfaceInfo::DMA_WITHOUT_PASID),
            "dma_with_pasid": bit(InterfaceInfo::DMA_WITH_PASID),
            "ats": bit(InterfaceInfo::ATS_SUPPORTED),
            "prs": bit(InterfaceInfo::PRS_SUPPORTED),
            "xt_mode": bit(InterfaceInfo::XT_MODE_SUPPORTED),
        },
        "mmio_ranges": ranges,
        "report_digest": hex::encode(crate::spdm_evidence::sha384(&r.content.interface_report)),
    })
}

fn parse(input: &str) -> Result<Value, String> {
    serde_json::from_str(input).map_err(|e| format!("is not JSON: {e}"))
}

impl History {
    /// Checks `rec` (its policy input and its event) against the records before it.
    /// Returns every contradiction found, each a sentence.
    pub(super) fn check(&self, rec: &AuditRecord) -> Vec<String> {
        let mut found = Vec::new();
        let input = rec.policy_input().map(parse);
        if let Some(Err(e)) = &input {
            found.push(format!("policy input {e}"));
        }
        let input = input.and_then(Result::ok);
        match (rec.kind(), rec.event()) {
            (
                DecisionKind::TdiAcceptance,
                Some(AuditEvent::TdiAccepted {
                    tdi_id, tenant_id, ..
                }),
            ) => {
                self.check_tdi_acceptance(rec, tdi_id, tenant_id, input.as_ref(), &mut found);
            }
            (DecisionKind::Share, ev) => {
                if let Some(i) = &input {
                    self.check_share(i, ev, &mut found);
                }
            }
            (DecisionKind::KeyRotation, ev) => {
                if let Some(i) = &input {
                    self.check_rotation_input(i, ev, &mut found);
                }
                if rec.outcome() != Outcome::Deny {
                    self.check_key_event(ev, &mut found);
                }
            }
            _ => {}
        }
        found
    }

    /// The TDI a relayed tenant rejection (subject `accel-NNNN`, `tdi-report` input) is
    /// about: the TDI on that accelerator, whose issued bundles must include every cited one.
    pub(super) fn rejected_tdi(&self, rec: &AuditRecord) -> Result<String, String> {
        let accel = accelerator_of(rec.subject()).ok_or("subject is not an accelerator")?;
        let tdi = self.tdis.get(&accel).ok_or_else(|| {
            format!("rejects a TDI on accelerator {accel}, which the log never locked")
        })?;
        let issued = self
            .reports
            .get(&tdi.tdi_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for named in rec.inputs().iter().filter(|n| n.name == "tdi-report") {
            if !issued
                .iter()
                .any(|r| &r.bundle_sha384 == named.sha384.as_bytes())
            {
                return Err(format!(
                    "cites a TDI report bundle ({}) the log never issued for {}",
                    super::short(&hex::encode(named.sha384.as_bytes())),
                    tdi.tdi_id
                ));
            }
        }
        Ok(tdi.tdi_id.clone())
    }

    /// Whether the log supports a `check.*` rotation refusal of `pair`: an end's latest
    /// appraisal did not allow it.
    pub(super) fn rotation_refusal_supported(&self, (a, b): (u16, u16)) -> bool {
        [a, b]
            .iter()
            .any(|x| self.devices.get(x).is_some_and(|d| !d.appraised))
    }

    fn check_tdi_acceptance(
        &self,
        rec: &AuditRecord,
        tdi_id: &str,
        tenant_id: &str,
        input: Option<&Value>,
        found: &mut Vec<String>,
    ) {
        let Some((accel, tdi)) = self.tdis.iter().find(|(_, t)| t.tdi_id == tdi_id) else {
            found.push(format!("accepts TDI {tdi_id}, which the log never locked"));
            return;
        };
        if tdi.tenant_id != tenant_id {
            found.push(format!(
                "tenant {tenant_id} accepts TDI {tdi_id}, which was locked for {}",
                tdi.tenant_id
            ));
        }
        let issued = self
            .reports
            .get(tdi_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for named in rec.inputs().iter().filter(|n| n.name == "tdi-report") {
            if !issued
                .iter()
                .any(|r| &r.bundle_sha384 == named.sha384.as_bytes())
            {
                found.push(format!(
                    "cites a TDI report bundle ({}) the log never issued for {tdi_id}",
                    super::short(&hex::encode(named.sha384.as_bytes()))
                ));
            }
        }
        let Some(i) = input else { return };
        if i["tenant_id"].as_str() != Some(tenant_id) {
            found.push(format!(
                "policy input names tenant {}, the record {tenant_id}",
                i["tenant_id"]
            ));
        }
        if i["accelerator_id"].as_u64() != Some(u64::from(*accel)) {
            found.push(format!(
                "policy input names accelerator {}, TDI {tdi_id} is on {accel}",
                i["accelerator_id"]
            ));
        }
        let digest = i["tdi"]["report_digest"].as_str().unwrap_or_default();
        let Some(r) = issued.iter().rev().find(|r| {
            hex::encode(crate::spdm_evidence::sha384(
                &r.report.content.interface_report,
            )) == digest
        }) else {
            found.push(format!(
                "policy input's report digest {} is not the interface report of a TDI report \
                 bundle issued for {tdi_id}",
                super::short(digest)
            ));
            return;
        };
        let expected = tdi_object(&r.report);
        if i["tdi"] != expected {
            found.push(format!(
                "policy input's TDI (interface, state, INTERFACE_INFO, MMIO ranges) differs from \
                 the issued report's: recorded {}, report {}",
                i["tdi"], expected
            ));
        }
        let device = &r.report.device;
        if i["device"]["attested_at"].as_i64() != Some(device.taken_at.secs()) {
            found.push(format!(
                "policy input's device attested_at {} is not the report's device evidence time {}",
                i["device"]["attested_at"],
                device.taken_at.secs()
            ));
        }
        let (version, asym, hash) = spdm_names(device);
        let spdm = &i["device"]["spdm"];
        if spdm["version"].as_str() != Some(version)
            || spdm["base_asym"].as_str() != Some(asym)
            || spdm["base_hash"].as_str() != Some(hash)
        {
            found.push(format!(
                "policy input's SPDM parameters {spdm} are not the report's device evidence \
                 ({version}, {asym}, {hash})"
            ));
        }
        if let Some(d) = self.devices.get(accel) {
            if i["device"]["device_id"].as_str() != Some(d.device_id.as_str()) {
                found.push(format!(
                    "policy input names device {}, accelerator {accel} is {}",
                    i["device"]["device_id"], d.device_id
                ));
            }
        }
        let members: Option<BTreeSet<u64>> = i["vpod_accelerator_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect());
        let vpod: Option<BTreeSet<u64>> = self
            .vpods
            .get(tenant_id)
            .map(|m| m.iter().map(|x| u64::from(*x)).collect());
        if members.is_none() || members != vpod {
            found.push(format!(
                "policy input's vPod members {} are not tenant {tenant_id}'s vPod {:?}",
                i["vpod_accelerator_ids"],
                vpod.unwrap_or_default()
            ));
        }
    }

    fn check_end_facts(&self, who: &str, end: &Value, found: &mut Vec<String>) {
        let Some(accel) = end["accelerator_id"]
            .as_u64()
            .and_then(|a| u16::try_from(a).ok())
        else {
            return;
        };
        let tenant = end["tenant_id"].as_str().unwrap_or_default();
        let device = self.devices.get(&accel);
        if end["tdi_state"].as_str() == Some("RUN") {
            let tdi_runs = self
                .tdis
                .get(&accel)
                .is_some_and(|t| t.state == TdiState::Run && t.tenant_id == tenant);
            let member = self.vpods.get(tenant).is_some_and(|m| m.contains(&accel));
            let appraised = device.is_some_and(|d| d.appraised);
            if !(tdi_runs && member && appraised) {
                found.push(format!(
                    "{who} claims its TDI on accelerator {accel} is RUN for {tenant}, but the log \
                     shows {}",
                    match (self.tdis.get(&accel), member, appraised) {
                        (_, false, _) => format!("{accel} is not in a vPod of {tenant}"),
                        (_, _, false) => format!("device {accel} is not appraised"),
                        (Some(t), _, _) => format!(
                            "TDI {} {} for {}",
                            t.tdi_id,
                            state_name(t.state),
                            t.tenant_id
                        ),
                        (None, _, _) => "no TDI on it".to_string(),
                    }
                ));
            }
        }
        self.check_attested_at(who, accel, &end["attested_at"], found);
    }

    fn check_attested_at(&self, who: &str, accel: u16, claimed: &Value, found: &mut Vec<String>) {
        let claimed = claimed.as_i64().unwrap_or(0);
        if claimed == 0 {
            return;
        }
        let logged = self.devices.get(&accel).and_then(|d| d.attested_at);
        if logged != Some(claimed) {
            found.push(format!(
                "{who} claims accelerator {accel} was attested at {claimed}, the log's latest \
                 allowed appraisal is at {}",
                logged.map_or_else(|| "none".to_string(), |t| t.to_string())
            ));
        }
    }

    fn keys_live(&self, a: u16, b: u16) -> bool {
        let dir = |x: u16, y: u16| {
            let mut any = false;
            for ((tx, _, rx, _), k) in &self.links {
                if (*tx, *rx) == (x, y) {
                    if !k.live {
                        return false;
                    }
                    any = true;
                }
            }
            any
        };
        dir(a, b) && dir(b, a)
    }

    fn check_share(&self, i: &Value, ev: Option<&AuditEvent>, found: &mut Vec<String>) {
        if let Some(
            AuditEvent::ShareAllowed {
                exporter,
                importer,
                rights,
                ..
            }
            | AuditEvent::ShareDenied {
                exporter,
                importer,
                rights,
                ..
            },
        ) = ev
        {
            let same = |who: &str, p: &ShareParty, found: &mut Vec<String>| {
                let v = &i[who];
                if v["tenant_id"].as_str() != Some(p.tenant_id.as_str())
                    || v["os_instance"].as_str() != Some(p.os_instance.as_str())
                    || v["accelerator_id"].as_u64() != Some(u64::from(p.accelerator_id))
                {
                    found.push(format!(
                        "policy input's {who} is not the event's {}/{}@{}",
                        p.tenant_id, p.os_instance, p.accelerator_id
                    ));
                }
            };
            same("exporter", exporter, found);
            same("importer", importer, found);
            let recorded: Option<Vec<&str>> = i["rights"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect());
            if recorded.as_deref() != Some(&rights.iter().map(String::as_str).collect::<Vec<_>>()) {
                found.push(format!(
                    "policy input's rights {} are not the event's {rights:?}",
                    i["rights"]
                ));
            }
        }
        self.check_end_facts("exporter", &i["exporter"], found);
        self.check_end_facts("importer", &i["importer"], found);
        if i["link_keys_live"].as_bool() == Some(true) {
            let ends = (
                i["exporter"]["accelerator_id"].as_u64(),
                i["importer"]["accelerator_id"].as_u64(),
            );
            let live = match ends {
                (Some(a), Some(b)) => match (u16::try_from(a), u16::try_from(b)) {
                    (Ok(a), Ok(b)) => a != b && self.keys_live(a, b),
                    _ => false,
                },
                _ => false,
            };
            if !live {
                found.push(
                    "policy input claims live link keys between the share's accelerators; the \
                     log has no live keys in both directions"
                        .into(),
                );
            }
        }
    }

    fn check_rotation_input(&self, i: &Value, ev: Option<&AuditEvent>, found: &mut Vec<String>) {
        let end = |who: &str| -> Option<u16> {
            i[who]["accelerator_id"]
                .as_u64()
                .and_then(|a| u16::try_from(a).ok())
        };
        let (Some(tx), Some(rx)) = (end("tx"), end("rx")) else {
            return;
        };
        for (who, accel) in [("tx", tx), ("rx", rx)] {
            if i[who]["device_appraised"].as_bool() == Some(true)
                && !self.devices.get(&accel).is_some_and(|d| d.appraised)
            {
                found.push(format!(
                    "policy input claims the {who} device {accel} is appraised; its latest \
                     appraisal in the log did not allow it"
                ));
            }
            self.check_attested_at(who, accel, &i[who]["attested_at"], found);
        }
        let tenant = i["tenant_id"].as_str().unwrap_or_default();
        if !self.vpods.get(tenant).is_some_and(|m| m.contains(&tx)) {
            found.push(format!(
                "policy input names tenant {tenant}, whose vPod does not hold accelerator {tx}"
            ));
        }
        let current = i["current_epoch"].as_u64();
        let logged = self.pair_epochs.get(&pair(tx, rx)).copied();
        if logged.is_none() || current != logged {
            found.push(format!(
                "policy input's current epoch {} is not the log's last key epoch {} for \
                 {tx}<->{rx}",
                i["current_epoch"],
                logged.map_or_else(|| "none (no keys recorded)".into(), |e| e.to_string())
            ));
        }
        if let Some(AuditEvent::KeysRotated {
            tx: etx,
            rx: erx,
            previous_epoch,
            epoch,
            ..
        }) = ev
        {
            if pair(etx.accelerator_id, erx.accelerator_id) != pair(tx, rx)
                || Some(*previous_epoch) != current
                || Some(*epoch) != i["new_epoch"].as_u64()
            {
                found.push(format!(
                    "the keys-rotated event ({}->{}, epoch {previous_epoch} -> {epoch}) is not \
                     the rotation the policy input decided ({tx}<->{rx}, {} -> {})",
                    etx.accelerator_id, erx.accelerator_id, i["current_epoch"], i["new_epoch"]
                ));
            }
        }
    }

    fn check_key_event(&self, ev: Option<&AuditEvent>, found: &mut Vec<String>) {
        match ev {
            Some(AuditEvent::KeysProgrammed { tx, rx, epoch, .. }) => {
                if let Some(k) = self.links.get(&link_id(tx, rx)) {
                    if *epoch <= k.epoch {
                        found.push(format!(
                            "keys programmed at epoch {epoch} on {}:{} -> {}:{}, which already \
                             had epoch {}: epochs must increase",
                            tx.accelerator_id, tx.port, rx.accelerator_id, rx.port, k.epoch
                        ));
                    }
                }
            }
            Some(AuditEvent::KeysRotated {
                tx,
                rx,
                previous_epoch,
                epoch,
                ..
            }) => {
                if epoch <= previous_epoch {
                    found.push(format!(
                        "keys rotated from epoch {previous_epoch} to {epoch}: epochs must increase"
                    ));
                }
                let logged = self.links.get(&link_id(tx, rx)).map(|k| k.epoch);
                if logged != Some(*previous_epoch) {
                    found.push(format!(
                        "keys rotated on {}:{} -> {}:{} from epoch {previous_epoch}, the log's \
                         epoch there is {}",
                        tx.accelerator_id,
                        tx.port,
                        rx.accelerator_id,
                        rx.port,
                        logged.map_or_else(|| "none (never programmed)".into(), |e| e.to_string())
                    ));
                }
            }
            _ => {}
        }
    }

    fn kill_links(&mut self, touches: impl Fn(u16, u16) -> bool) {
        for ((tx, _, rx, _), k) in &mut self.links {
            if touches(*tx, *rx) {
                k.live = false;
            }
        }
    }

    /// Adds what `rec` establishes.
    pub(super) fn apply(&mut self, rec: &AuditRecord, v: &Verified<'_>) {
        let outcome = rec.outcome();
        if rec.kind() == DecisionKind::KeyRotation
            && outcome == Outcome::Deny
            && rec.event().is_none()
        {
            if let Some((a, b)) = rotation_pair(rec.subject()) {
                self.kill_links(|x, y| pair(x, y) == pair(a, b));
            }
        }
        let Some(ev) = rec.event() else { return };
        match ev {
            AuditEvent::DeviceAttested {
                device_id,
                accelerator_id,
                ..
            } => {
                let d = self.devices.entry(*accelerator_id).or_default();
                d.device_id.clone_from(device_id);
                d.appraised = outcome == Outcome::Allow && v.device.is_some();
                if d.appraised {
                    d.attested_at = v.device.map(|e| e.taken_at.secs());
                }
            }
            AuditEvent::DeviceQuarantined {
                device_id,
                accelerator_id,
                ..
            } => {
                let a = *accelerator_id;
                let d = self.devices.entry(a).or_default();
                d.device_id.clone_from(device_id);
                d.appraised = false;
                if let Some(t) = self.tdis.get_mut(&a) {
                    t.state = TdiState::ConfigUnlocked;
                }
                self.kill_links(|x, y| x == a || y == a);
            }
            AuditEvent::VpodFormed {
                tenant_id,
                accelerator_ids,
                ..
            } => {
                self.vpods
                    .entry(tenant_id.clone())
                    .or_default()
                    .extend(accelerator_ids.iter().copied());
            }
            AuditEvent::TenantOffboarded { tenant_id } => {
                let members = self.vpods.remove(tenant_id).unwrap_or_default();
                self.kill_links(|x, y| members.contains(&x) || members.contains(&y));
            }
            AuditEvent::KeysProgrammed { tx, rx, epoch, .. } if outcome != Outcome::Deny => {
                self.links.insert(
                    link_id(tx, rx),
                    LinkKeys {
                        epoch: *epoch,
                        live: true,
                    },
                );
                let e = self
                    .pair_epochs
                    .entry(pair(tx.accelerator_id, rx.accelerator_id))
                    .or_default();
                *e = (*e).max(*epoch);
            }
            AuditEvent::KeysRotated { tx, rx, epoch, .. } if outcome != Outcome::Deny => {
                let k = self.links.entry(link_id(tx, rx)).or_insert(LinkKeys {
                    epoch: *epoch,
                    live: true,
                });
                k.epoch = *epoch;
                let e = self
                    .pair_epochs
                    .entry(pair(tx.accelerator_id, rx.accelerator_id))
                    .or_default();
                *e = (*e).max(*epoch);
            }
            AuditEvent::TdiLocked {
                tdi_id,
                accelerator_id,
                tenant_id,
            } => {
                self.tdis.insert(
                    *accelerator_id,
                    TdiFacts {
                        tdi_id: tdi_id.clone(),
                        tenant_id: tenant_id.clone(),
                        state: TdiState::ConfigLocked,
                    },
                );
            }
            AuditEvent::TdiStarted { accelerator_id, .. }
            | AuditEvent::TdiStopped { accelerator_id, .. }
            | AuditEvent::TdiError { accelerator_id, .. } => {
                if let Some(t) = self.tdis.get_mut(accelerator_id) {
                    t.state = match ev {
                        AuditEvent::TdiStarted { .. } => TdiState::Run,
                        AuditEvent::TdiStopped { .. } => TdiState::ConfigUnlocked,
                        _ => TdiState::Error,
                    };
                }
            }
            AuditEvent::TdiReportIssued { tdi_id, bundle } => {
                if let Some(r) = v.tdi_report {
                    self.reports
                        .entry(tdi_id.clone())
                        .or_default()
                        .push(IssuedReport {
                            bundle_sha384: crate::spdm_evidence::sha384(&bundle.0),
                            report: r.clone(),
                        });
                }
            }
            _ => {}
        }
    }
}
