//! The agent as a library: what `ualink-guest-agent run` does, usable in-process from any
//! tokio runtime (the `ualink-tsm demo` and the integration tests drive it this way).
//!
//! ```text
//! let agent = Agent::connect(config).await?;   // verify the TSM, RCAR attest, act for T
//! let report = agent.attest_peers().await?;     // judge every TDI of T's vPod, accept/reject
//! let lead = agent.lead_keys(&peer_addrs).await?; // lead only: mesh, keys, POST keys
//! let w = agent.watch().await?;                 // poll events, re-verify on epoch changes
//! ```
//! A peer agent serves the lead on a [`mesh::MeshListener`] from [`Agent::mesh_listener`]:
//! `agent.serve_lead(&listener).await`.
//!
//! Every method takes `&self` (the agent is `Send + Sync`); state is kept behind a mutex that
//! is never held across an await.

use crate::cvm::CvmVerifier;
use crate::error::{Error, Result};
use crate::evidence::EvidenceProvider;
use crate::lead::{generate_keys_for_layout, generate_vpod_keys, KeyBundle, VpodMember};
use crate::mesh::{self, MeshConfig, PeerAccelerator, PeerConfig};
use crate::peer::{Candidate, DeviceClaims, FailedCheck, PeerAcceptor, TenantTrust, Verdict};
use crate::tls::AgentIdentity;
use crate::tsm::api::{self, Event, VpodView};
use crate::tsm::{Grant, TsmClient, TsmTrust};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use ualink_attest::pki::{AnchorOrigin, TrustAnchors};
use ualink_attest::spdm_evidence::ExpectedNonce;
use ualink_attest::UnixTime;
use ualink_policy::PolicyEngine;

/// The most failed checks sent in one rejection, and the longest one (the TSM's limits).
const MAX_CHECKS: usize = 64;
const MAX_CHECK_LEN: usize = 256;

/// Everything an agent needs to start.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The TSM service URL (`https://host:port`).
    pub tsm_url: String,
    /// The tenant this agent acts for (its name at the TSM and in the policy).
    pub tenant: String,
    /// This CVM's evidence.
    pub provider: Arc<dyn EvidenceProvider>,
    /// How the TSM itself is trusted (its evidence roots, an optional pinned CA).
    pub tsm_trust: TsmTrust,
    /// The tenant's roots for TDI report bundles (device vendors, TSM evidence).
    pub trust: TenantTrust,
    /// Roots for peer agents' CVM evidence on the mesh.
    pub cvm_roots: TrustAnchors,
    /// The tenant's policy (device appraisal, TDI acceptance, CVM appraisal).
    pub policy: PolicyEngine,
    /// Whether this agent is the tenant's lead (`--lead`).
    pub lead: bool,
    /// Device identity claims per accelerator, used when the TSM sends none with a report.
    pub device_claims: BTreeMap<u16, DeviceClaims>,
    /// The accelerators this CVM uses (`None`: every member of the vPod).
    pub accelerators: Option<Vec<u16>>,
    /// The TX ports of this CVM's accelerators (for the key layout when the TSM publishes
    /// none).
    pub tx_ports: Vec<u8>,
}

/// The tenant's verdict on one TDI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum TdiDecision {
    /// Verified and allowed by the tenant's policy; the TSM was told to START it (or it
    /// already ran).
    Accepted,
    /// Refused; the TSM was told to STOP it, with these checks.
    Rejected {
        /// The failed checks.
        failed_checks: Vec<FailedCheck>,
    },
    /// The TSM no longer offers a report for a TDI this agent had accepted (the device was
    /// quarantined or the TDI unlocked): it is no longer trusted.
    Withdrawn {
        /// Why.
        reason: String,
    },
    /// Not judged (no report yet, not in this CVM's scope).
    Skipped {
        /// Why.
        reason: String,
    },
    /// The exchange with the TSM failed; nothing was decided.
    Failed {
        /// The error.
        error: String,
    },
}

/// One TDI's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TdiOutcome {
    /// The accelerator.
    pub accelerator_id: u16,
    /// Its device epoch as the TSM reported it.
    pub epoch: u64,
    /// The digest of the bundle judged, if one was.
    pub report_digest: Option<String>,
    /// The verdict.
    #[serde(flatten)]
    pub decision: TdiDecision,
    /// The TDI state the TSM reported after acting on the verdict.
    pub state: Option<String>,
}

/// What [`Agent::attest_peers`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerReport {
    /// The tenant.
    pub tenant: String,
    /// The vPod's members.
    pub members: Vec<u16>,
    /// Whether the tenant's lead agent generates the keys.
    pub lead_keys: bool,
    /// The vPod's epoch sum when judged.
    pub epoch_sum: u64,
    /// One outcome per TDI.
    pub tdis: Vec<TdiOutcome>,
}

impl PeerReport {
    /// Whether every TDI was accepted.
    pub fn all_accepted(&self) -> bool {
        self.tdis
            .iter()
            .all(|t| t.decision == TdiDecision::Accepted)
    }

    /// The outcome for `accel`.
    pub fn tdi(&self, accel: u16) -> Option<&TdiOutcome> {
        self.tdis.iter().find(|t| t.accelerator_id == accel)
    }
}

/// One peer the lead delivered keys to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerDelivery {
    /// Where.
    pub addr: String,
    /// Its TLS key (SEC1 hex), bound by its evidence.
    pub tls_key: String,
    /// Its launch measurement (hex).
    pub measurement: String,
    /// The accelerators it reported.
    pub accelerators: Vec<u16>,
    /// Keys sent to it.
    pub keys_sent: usize,
}

/// What [`Agent::lead_keys`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeadReport {
    /// The key epoch.
    pub epoch: u32,
    /// Keys generated.
    pub keys: usize,
    /// The peers.
    pub peers: Vec<PeerDelivery>,
    /// What the TSM programmed.
    pub programmed: api::KeysProgrammed,
}

/// What one [`Agent::watch`] poll found and did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WatchReport {
    /// Every event received.
    pub events: Vec<Event>,
    /// TDIs re-verified because of an event, with the new outcome.
    pub reverified: Vec<TdiOutcome>,
    /// Revocation notices (`revoked`) and other notices for the tenant to see.
    pub notices: Vec<Event>,
}

/// The agent's state, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    /// The tenant.
    pub tenant: String,
    /// Whether this is the lead agent.
    pub lead: bool,
    /// Where the evidence comes from.
    pub tee: String,
    /// The agent's TLS key / tee-pubkey (SEC1 hex).
    pub tls_key: String,
    /// SHA-384 of the TSM identity key (hex).
    pub tsm_key_sha384: String,
    /// The TSM evidence root (`amd` or `explicit`).
    pub tsm_root: String,
    /// Accepted TDIs and the digest of the bundle each acceptance rests on.
    pub accepted: BTreeMap<u16, String>,
    /// The event cursor.
    pub events_after: u64,
    /// The last key epoch this agent programmed as lead (0: none).
    pub key_epoch: u32,
    /// The last key epoch this agent received from its lead (0: none).
    pub received_key_epoch: u32,
}

#[derive(Debug, Default)]
struct State {
    accepted: BTreeMap<u16, String>,
    rejected: BTreeSet<u16>,
    events_after: u64,
    key_epoch: u32,
    received_key_epoch: u32,
}

/// A connected, attested agent for one tenant.
pub struct Agent {
    tenant: String,
    lead: bool,
    identity: Arc<AgentIdentity>,
    provider: Arc<dyn EvidenceProvider>,
    tsm: TsmClient,
    acceptor: PeerAcceptor,
    cvm: CvmVerifier,
    device_claims: BTreeMap<u16, DeviceClaims>,
    accelerators: Option<Vec<u16>>,
    tx_ports: Vec<u8>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("tenant", &self.tenant)
            .field("lead", &self.lead)
            .field("identity", &self.identity)
            .field("tsm", &self.tsm)
            .finish_non_exhaustive()
    }
}

/// Whether `e` says the TSM no longer knows the session (expired or unknown: HTTP 401).
fn session_gone(e: &Error) -> bool {
    matches!(e, Error::TsmRefused { status: 401, .. })
}

/// Runs `$call` (an expression awaiting a TSM request); if the TSM answers 401 (session
/// expired or unknown), renews the session and runs it once more.
macro_rules! renewing {
    ($self:ident, $call:expr) => {{
        match $call {
            Err(e) if session_gone(&e) => {
                $self.tsm.reattest($self.provider.as_ref()).await?;
                $call
            }
            other => other,
        }
    }};
}

fn check_line(c: &FailedCheck) -> String {
    let mut s = format!("{}: {}", c.check, c.reason);
    if s.len() > MAX_CHECK_LEN {
        let mut end = MAX_CHECK_LEN - 3;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

fn failed(check: &str, reason: impl Into<String>) -> FailedCheck {
    FailedCheck {
        check: check.into(),
        reason: reason.into(),
    }
}

impl Agent {
    /// Verifies the TSM, attests this CVM to it (RCAR with the agent's fresh TLS identity)
    /// and returns an agent acting for `config.tenant`.
    pub async fn connect(config: AgentConfig) -> Result<Self> {
        let identity = Arc::new(AgentIdentity::generate(&format!(
            "ualink-guest-agent {}",
            config.tenant
        ))?);
        let tsm = TsmClient::connect(
            &config.tsm_url,
            &config.tenant,
            identity.clone(),
            config.provider.as_ref(),
            &config.tsm_trust,
        )
        .await?;
        Ok(Self {
            acceptor: PeerAcceptor::new(&config.tenant, config.trust, config.policy.clone()),
            cvm: CvmVerifier::new(&config.tenant, config.cvm_roots, config.policy),
            tenant: config.tenant,
            lead: config.lead,
            identity,
            provider: config.provider,
            tsm,
            device_claims: config.device_claims,
            accelerators: config.accelerators,
            tx_ports: config.tx_ports,
            state: Mutex::new(State::default()),
        })
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The agent's TLS identity (its tee-pubkey).
    pub fn identity(&self) -> &Arc<AgentIdentity> {
        &self.identity
    }

    /// The attested TSM session (for requests the agent API does not wrap).
    pub fn tsm(&self) -> &TsmClient {
        &self.tsm
    }

    /// The mesh configuration of this agent (same identity and evidence, the tenant's CVM
    /// policy): bind a [`mesh::MeshListener`] with it to serve the lead.
    pub fn mesh_config(&self) -> MeshConfig {
        MeshConfig {
            identity: self.identity.clone(),
            provider: self.provider.clone(),
            verifier: self.cvm.clone(),
        }
    }

    /// Renews the TSM session (fresh evidence, same TLS identity) when it is close to the
    /// TSM's 300 s expiry, so a long-running agent keeps working. Every agent call also
    /// renews and retries once when the TSM answers 401 (session expired or unknown).
    pub async fn fresh_session(&self) -> Result<()> {
        if self.tsm.session_expiring() {
            self.tsm.reattest(self.provider.as_ref()).await?;
        }
        Ok(())
    }

    /// A mesh endpoint for this agent on `addr` (port 0 picks one).
    pub async fn mesh_listener(&self, addr: SocketAddr) -> Result<mesh::MeshListener> {
        mesh::MeshListener::bind(addr, self.mesh_config()).await
    }

    /// Serves one lead session on `listener` with this agent's current configuration (the
    /// vPod is fetched from the TSM first) and records the key epoch received.
    pub async fn serve_lead(&self, listener: &mesh::MeshListener) -> Result<mesh::LeadSession> {
        let vpod = self.tsm.vpod().await?;
        self.check_vpod(&vpod)?;
        let own = self.own_config(&vpod.members)?;
        let s = listener.serve_lead(&own).await?;
        if let Some(k) = &s.keys {
            self.lock()?.received_key_epoch = k.epoch;
        }
        Ok(s)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| Error::ApiMisuse {
            reason: "agent state lock poisoned".into(),
        })
    }

    fn in_scope(&self, accel: u16) -> bool {
        self.accelerators
            .as_ref()
            .is_none_or(|a| a.contains(&accel))
    }

    /// This CVM's security configuration for the lead: its accelerators among the vPod's
    /// `members`, its TX ports, and the digest of each TDI report it accepted. An
    /// accelerator whose TDI this agent rejected is left out.
    pub fn own_config(&self, members: &[u16]) -> Result<PeerConfig> {
        let st = self.lock()?;
        Ok(PeerConfig {
            accelerators: members
                .iter()
                .filter(|a| self.in_scope(**a) && !st.rejected.contains(a))
                .map(|a| PeerAccelerator {
                    accelerator_id: *a,
                    tx_ports: self.tx_ports.clone(),
                    report_digest: st.accepted.get(a).cloned(),
                })
                .collect(),
        })
    }

    /// Judges every TDI of the tenant's vPod in this CVM's scope against the tenant's own
    /// roots and policy, and tells the TSM: accept (START) or reject (STOP, with the failed
    /// checks).
    pub async fn attest_peers(&self) -> Result<PeerReport> {
        self.fresh_session().await?;
        let vpod = renewing!(self, self.tsm.vpod().await)?;
        self.check_vpod(&vpod)?;
        let mut tdis = Vec::new();
        for m in &vpod.members {
            tdis.push(self.judge_tdi(&vpod, *m, false).await);
        }
        Ok(PeerReport {
            tenant: vpod.tenant,
            members: vpod.members,
            lead_keys: vpod.lead_keys,
            epoch_sum: vpod.epoch_sum,
            tdis,
        })
    }

    fn check_vpod(&self, vpod: &VpodView) -> Result<()> {
        if vpod.tenant != self.tenant {
            return Err(Error::misbehaved(format!(
                "asked for tenant {:?}'s vPod, got {:?}'s",
                self.tenant, vpod.tenant
            )));
        }
        crate::lead::check_unique_ids(vpod.members.iter().copied())?;
        Ok(())
    }

    /// Judges one TDI (see [`Self::attest_peers`]); `reverify` marks a re-verification after
    /// an event. A TDI this agent had accepted whose report the TSM no longer offers is
    /// [`TdiDecision::Withdrawn`]: no longer trusted.
    pub async fn judge_tdi(&self, vpod: &VpodView, accel: u16, reverify: bool) -> TdiOutcome {
        let view = vpod.tdis.iter().find(|t| t.accelerator_id == accel);
        let mut out = TdiOutcome {
            accelerator_id: accel,
            epoch: view.map(|v| v.epoch).unwrap_or(0),
            report_digest: None,
            decision: TdiDecision::Skipped {
                reason: String::new(),
            },
            state: view.map(|v| v.state.clone()),
        };
        let skip = |reason: &str| TdiDecision::Skipped {
            reason: reason.into(),
        };
        if !self.in_scope(accel) {
            out.decision = skip("not one of this CVM's accelerators");
            return out;
        }
        let Some(view) = view else {
            out.decision = skip("the vPod lists no TDI for this member");
            return out;
        };
        if view.report_digest.is_none() {
            let was_accepted = self
                .lock()
                .map(|mut s| s.accepted.remove(&accel).is_some())
                .unwrap_or(false);
            out.decision = if was_accepted {
                TdiDecision::Withdrawn {
                    reason: format!(
                        "the TSM offers no TDI report any more (state {}): device quarantined or TDI unlocked",
                        view.state
                    ),
                }
            } else if reverify {
                skip("no TDI report (stopped or not locked; this agent had not accepted it)")
            } else {
                skip("no TDI report yet (the TDI is not locked)")
            };
            return out;
        }
        // A report the TSM replaced between our fetch and our verdict (`stale_report`) is
        // fetched and judged once more.
        let mut retried = false;
        let (report, checks, result) = loop {
            let report = match self.tsm.tdi_report(accel).await {
                Ok(r) => r,
                Err(e) => {
                    out.decision = TdiDecision::Failed {
                        error: e.to_string(),
                    };
                    return out;
                }
            };
            let checks = self.verdict(vpod, &report);
            let result = if checks.is_empty() {
                if view.state == "RUN" {
                    Ok(api::TdiStateView {
                        state: view.state.clone(),
                    })
                } else {
                    self.tsm.accept(accel, &report.report_digest).await
                }
            } else {
                let lines: Vec<String> = checks.iter().take(MAX_CHECKS).map(check_line).collect();
                self.tsm.reject(accel, &report.report_digest, &lines).await
            };
            match &result {
                Err(e) if !retried && e.tsm_code() == Some("stale_report") => retried = true,
                _ => break (report, checks, result),
            }
        };
        out.report_digest = Some(report.report_digest.clone());
        out.epoch = report.epoch;
        match result {
            Ok(s) => {
                out.state = Some(s.state);
                if let Ok(mut st) = self.lock() {
                    if checks.is_empty() {
                        st.accepted.insert(accel, report.report_digest.clone());
                        st.rejected.remove(&accel);
                    } else {
                        st.accepted.remove(&accel);
                        st.rejected.insert(accel);
                    }
                }
                out.decision = if checks.is_empty() {
                    TdiDecision::Accepted
                } else {
                    TdiDecision::Rejected {
                        failed_checks: checks,
                    }
                };
            }
            Err(e) => {
                if let Ok(mut st) = self.lock() {
                    st.accepted.remove(&accel);
                }
                out.decision = TdiDecision::Failed {
                    error: e.to_string(),
                }
            }
        }
        out
    }

    /// The failed checks of one report (empty: accept).
    fn verdict(&self, vpod: &VpodView, report: &crate::tsm::TdiReport) -> Vec<FailedCheck> {
        let accel = report.accelerator_id;
        let claims = match report
            .device
            .clone()
            .map(|d| DeviceClaims {
                device_id: d.device_id,
                vendor: d.vendor,
                model: d.model,
                firmware_version: d.firmware_version,
                dhe: d.dhe,
                aead: d.aead,
            })
            .or_else(|| self.device_claims.get(&accel).cloned())
        {
            Some(c) => c,
            None => {
                return vec![failed(
                    "device_claims",
                    format!("no device identity for accelerator {accel}: the TSM sent none and the tenant configured none"),
                )]
            }
        };
        let candidate = Candidate {
            bundle: &report.bundle,
            device_nonce: ExpectedNonce::NotProvided,
            claims,
            vpod_accelerator_ids: vpod.members.clone(),
        };
        match self.acceptor.judge(&candidate, UnixTime::now()) {
            Err(e) => vec![failed("policy_error", e.to_string())],
            Ok(Verdict::Rejected(checks)) => checks,
            Ok(Verdict::Accepted(a)) => {
                let mut checks = Vec::new();
                if a.report.tsm_key_fingerprint != self.tsm.tsm().key_fingerprint() {
                    checks.push(failed(
                        "tsm_key",
                        "the bundle is signed by a TSM key other than the attested TSM's",
                    ));
                }
                if a.report.content.accelerator_id != accel {
                    checks.push(failed(
                        "accelerator_id",
                        format!(
                            "the bundle is for accelerator {}, not {accel}",
                            a.report.content.accelerator_id
                        ),
                    ));
                }
                checks
            }
        }
    }

    /// The lead-VM role: collects each peer agent's security configuration over the
    /// mutually attested mesh, checks it against the vPod and what this agent judged,
    /// generates the vPod master keys, gives each peer the keys that involve its
    /// accelerators, and hands all of them to the TSM for programming. Needs `--lead` and a
    /// tenant whose vPod says `lead_keys`. The TSM programs keys before the TDIs are locked
    /// (a device refuses LOCK without live link keys), so this usually runs before
    /// [`Self::attest_peers`]; a member this agent rejected is never keyed.
    pub async fn lead_keys(&self, peers: &[SocketAddr]) -> Result<LeadReport> {
        if !self.lead {
            return Err(Error::ApiMisuse {
                reason: "only the lead agent (--lead) generates vPod keys".into(),
            });
        }
        self.fresh_session().await?;
        let vpod = renewing!(self, self.tsm.vpod().await)?;
        self.check_vpod(&vpod)?;
        if !vpod.lead_keys {
            return Err(Error::ApiMisuse {
                reason: format!(
                    "tenant {} delegates key generation to the TSM (lead_keys = false)",
                    self.tenant
                ),
            });
        }
        let (accepted, rejected, last_epoch) = {
            let st = self.lock()?;
            (st.accepted.clone(), st.rejected.clone(), st.key_epoch)
        };
        let epoch = vpod
            .next_key_epoch
            .unwrap_or(1)
            .max(last_epoch.saturating_add(1));
        let plan = LeadPlan {
            tenant: self.tenant.clone(),
            members: vpod.members.clone(),
            accepted,
            rejected,
            own: self.own_config(&vpod.members)?,
            layout: vpod
                .key_layout
                .as_ref()
                .map(|l| l.iter().map(|k| (k.tx, k.port, k.rx)).collect()),
            default_tx_ports: self.tx_ports.clone(),
            epoch,
        };
        let (bundle, deliveries) = lead_round(&self.mesh_config(), peers, &plan).await?;
        let programmed = self.tsm.program_keys(&bundle).await?;
        self.lock()?.key_epoch = epoch;
        Ok(LeadReport {
            epoch,
            keys: bundle.entries.len(),
            peers: deliveries,
            programmed,
        })
    }

    /// Offers a region of the tenant's window to another tenant or OS instance.
    pub async fn export(&self, req: &api::ExportRequest) -> Result<api::ExportCreated> {
        self.fresh_session().await?;
        renewing!(self, self.tsm.export(req).await)
    }

    /// Imports an offer: the grant, or [`Error::TsmRefused`] `share_denied` with the rules.
    pub async fn import(&self, req: &api::ImportRequest) -> Result<Grant> {
        self.fresh_session().await?;
        renewing!(self, self.tsm.import(req).await)
    }

    /// Revokes an offer this tenant made.
    pub async fn revoke(&self, offer_id: &str) -> Result<()> {
        self.fresh_session().await?;
        renewing!(self, self.tsm.revoke(offer_id).await)
    }

    /// One poll of the tenant's events: each `epoch_changed`, `tdi_error` or `tdi_stopped`
    /// for an accelerator in scope triggers a re-fetch and re-judgement of its TDI (a
    /// failure is a rejection, so the TSM stops it); `revoked` and `keys_rotated` are
    /// surfaced as notices.
    pub async fn watch(&self) -> Result<WatchReport> {
        self.fresh_session().await?;
        let after = self.lock()?.events_after;
        let ev = renewing!(self, self.tsm.events(after).await)?;
        if ev.next < after {
            return Err(Error::misbehaved(format!(
                "the event cursor went back from {after} to {}",
                ev.next
            )));
        }
        let mut rejudge = BTreeSet::new();
        let mut notices = Vec::new();
        for e in &ev.events {
            match (e.kind.as_str(), e.accelerator_id) {
                ("epoch_changed" | "tdi_error" | "tdi_stopped", Some(a)) if self.in_scope(a) => {
                    rejudge.insert(a);
                }
                ("epoch_changed" | "tdi_error" | "tdi_stopped", _) => {}
                // A revocation naming an accelerator (its device was quarantined) is
                // surfaced and its TDI re-judged.
                ("revoked", Some(a)) if self.in_scope(a) => {
                    rejudge.insert(a);
                    notices.push(e.clone());
                }
                _ => notices.push(e.clone()),
            }
        }
        let mut reverified = Vec::new();
        if !rejudge.is_empty() {
            let vpod = self.tsm.vpod().await?;
            self.check_vpod(&vpod)?;
            for a in rejudge {
                reverified.push(self.judge_tdi(&vpod, a, true).await);
            }
        }
        self.lock()?.events_after = ev.next;
        Ok(WatchReport {
            events: ev.events,
            reverified,
            notices,
        })
    }

    /// Polls [`Self::watch`] every `every` until `stop` completes, handing each report that
    /// carries events to `on_report`. A failed poll is returned (the caller decides whether
    /// to reconnect).
    pub async fn watch_until(
        &self,
        every: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
        mut on_report: impl FnMut(&WatchReport),
    ) -> Result<()> {
        tokio::pin!(stop);
        loop {
            let w = self.watch().await?;
            if !w.events.is_empty() {
                on_report(&w);
            }
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// The agent's state.
    pub fn status(&self) -> Result<AgentStatus> {
        let st = self.lock()?;
        let tsm = self.tsm.tsm();
        Ok(AgentStatus {
            tenant: self.tenant.clone(),
            lead: self.lead,
            tee: self.provider.describe(),
            tls_key: hex::encode(self.identity.public_sec1()),
            tsm_key_sha384: hex::encode(tsm.key_fingerprint()),
            tsm_root: match tsm.evidence.root {
                AnchorOrigin::AmdBuiltin(_) => "amd".into(),
                AnchorOrigin::Explicit => "explicit".into(),
            },
            accepted: st.accepted.clone(),
            events_after: st.events_after,
            key_epoch: st.key_epoch,
            received_key_epoch: st.received_key_epoch,
        })
    }
}

/// The inputs of one lead key round.
#[derive(Clone, Debug)]
pub struct LeadPlan {
    /// The tenant.
    pub tenant: String,
    /// The vPod's members.
    pub members: Vec<u16>,
    /// The TDIs the lead accepted, with the bundle digests (a peer that accepted one must
    /// have accepted the same report).
    pub accepted: BTreeMap<u16, String>,
    /// The TDIs the lead rejected: the vPod is not keyed while one is a member.
    pub rejected: BTreeSet<u16>,
    /// The lead's own configuration.
    pub own: PeerConfig,
    /// The TSM's key layout `(tx, port, rx)`, if it publishes one.
    pub layout: Option<Vec<(u16, u8, u16)>>,
    /// TX ports for members no configuration names.
    pub default_tx_ports: Vec<u8>,
    /// The key epoch.
    pub epoch: u32,
}

/// Checks one configuration (a peer's or the lead's own) against the plan.
fn check_config(plan: &LeadPlan, who: &str, c: &PeerConfig) -> Result<()> {
    let deny = |rule: &str, reason: String| Error::Denied {
        decision: "lead key distribution",
        rules: vec![rule.into()],
        reasons: vec![format!("{who}: {reason}")],
    };
    let mut seen = BTreeSet::new();
    for a in &c.accelerators {
        if !seen.insert(a.accelerator_id) {
            return Err(deny(
                "duplicate_accelerator",
                format!("accelerator {} listed twice", a.accelerator_id),
            ));
        }
        if !plan.members.contains(&a.accelerator_id) {
            return Err(deny(
                "not_a_member",
                format!("accelerator {} is not in the vPod", a.accelerator_id),
            ));
        }
        if let (Some(mine), Some(theirs)) = (
            plan.accepted.get(&a.accelerator_id),
            a.report_digest.as_ref(),
        ) {
            if !mine.eq_ignore_ascii_case(theirs) {
                return Err(deny(
                    "report_mismatch",
                    format!(
                        "accelerator {} was accepted under another TDI report than the lead's",
                        a.accelerator_id
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// One lead key round without the TSM: mutual attestation with every peer at `peers`,
/// their configurations checked against `plan` (vPod members only, none listed twice, a
/// report the lead also accepted must be the same report), the keys generated (the TSM's
/// layout, or every TX port of every member toward every other member) and each peer given
/// the keys that involve its accelerators. Refused while a member is one the lead rejected.
pub async fn lead_round(
    cfg: &MeshConfig,
    peers: &[SocketAddr],
    plan: &LeadPlan,
) -> Result<(KeyBundle, Vec<PeerDelivery>)> {
    for m in &plan.members {
        if plan.rejected.contains(m) {
            return Err(Error::Denied {
                decision: "lead key distribution",
                rules: vec!["member_rejected".into()],
                reasons: vec![format!(
                    "the lead rejected vPod member {m}'s TDI: no keys for this vPod"
                )],
            });
        }
    }
    check_config(plan, "the lead", &plan.own)?;
    let mut conns = Vec::new();
    for addr in peers {
        let mut c = mesh::connect(*addr, cfg).await?;
        let config = c.request_config().await?;
        check_config(plan, &format!("peer {addr}"), &config)?;
        conns.push((*addr, c, config));
    }
    let bundle = match &plan.layout {
        Some(layout) => generate_keys_for_layout(&plan.tenant, &plan.members, layout, plan.epoch)?,
        None => {
            let mut ports: BTreeMap<u16, BTreeSet<u8>> = BTreeMap::new();
            for c in std::iter::once(&plan.own).chain(conns.iter().map(|(_, _, c)| c)) {
                for a in &c.accelerators {
                    ports
                        .entry(a.accelerator_id)
                        .or_default()
                        .extend(a.tx_ports.iter().copied());
                }
            }
            let members: Vec<VpodMember> = plan
                .members
                .iter()
                .map(|m| VpodMember {
                    accelerator_id: *m,
                    tx_ports: ports
                        .get(m)
                        .map(|p| p.iter().copied().collect())
                        .unwrap_or_else(|| plan.default_tx_ports.clone()),
                })
                .collect();
            generate_vpod_keys(&plan.tenant, &members, plan.epoch)?
        }
    };
    let mut deliveries = Vec::new();
    for (addr, mut c, config) in conns {
        let theirs: BTreeSet<u16> = config
            .accelerators
            .iter()
            .map(|a| a.accelerator_id)
            .collect();
        let keys: Vec<_> = bundle
            .entries
            .iter()
            .filter(|e| theirs.contains(&e.tx_accelerator.get()) || theirs.contains(&e.peer.get()))
            .collect();
        let sent = c.send_keys(bundle.epoch, &keys).await?;
        let peer = c.peer().clone();
        c.finish().await?;
        deliveries.push(PeerDelivery {
            addr: addr.to_string(),
            tls_key: hex::encode(&peer.tls_key),
            measurement: hex::encode(peer.cvm.report.report.measurement),
            accelerators: theirs.into_iter().collect(),
            keys_sent: sent,
        });
    }
    Ok((bundle, deliveries))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo and the service run agents on a multi-threaded runtime: the agent and the
    /// futures of its methods must be `Send` (no lock is held across an await).
    #[allow(dead_code)]
    fn agent_futures_are_send(a: &'static Agent, l: &'static mesh::MeshListener) {
        fn send<T: Send>(_: &T) {}
        fn sync<T: Send + Sync>() {}
        sync::<Agent>();
        send(&a.attest_peers());
        send(&a.watch());
        send(&a.lead_keys(&[]));
        send(&a.serve_lead(l));
        send(&a.watch_until(std::time::Duration::from_secs(1), async {}, |_| {}));
    }

    #[test]
    fn long_checks_are_cut_at_a_char_boundary() {
        let c = failed("x", "é".repeat(300));
        let line = check_line(&c);
        assert!(line.len() <= MAX_CHECK_LEN);
        assert!(line.ends_with("..."));
        assert_eq!(check_line(&failed("a", "b")), "a: b");
    }
}
