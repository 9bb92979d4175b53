//! CVM appraisal: may this attested confidential VM act for tenant T? The service verifies
//! the CVM's evidence (chain, signature, report_data binding) and this decides with policy
//! `ualink.cvm` on the verified claims, recording a `cvm-appraisal` audit record (allow or
//! deny, rules, the canonical policy input and the evidence as received) before answering.

use ualink_attest::audit::event::{AuditEvent, Bytes, TsmEvidenceBytes};
use ualink_attest::audit::{AuditRecord, DecisionKind, Digest384, Outcome};
use ualink_attest::UnixTime;
use ualink_policy::{CvmAppraisalInput, Decision, DecisionInput, HexBytes};

use crate::error::{Result, TsmError};
use crate::service::session::CvmClaims;
use crate::tsm::{audit_build, with_decision, Tsm};

/// The policy input for `claims` appraised for `tenant` at `now` (unix seconds).
pub fn cvm_input(claims: &CvmClaims, tenant: &str, now: u64) -> CvmAppraisalInput {
    CvmAppraisalInput {
        tenant_id: tenant.to_string(),
        tee: claims.tee,
        root: claims.root,
        measurement: HexBytes(claims.measurement.to_vec()),
        policy: claims.policy,
        tcb: claims.tcb.clone(),
        // The service verified REPORT_DATA against the KBS binding before building claims.
        report_data_bound: true,
        debug: claims.debug,
        attested_at: claims.attested_at,
        now,
    }
}

impl Tsm {
    /// Appraises an attested CVM for `tenant` (a tenant name) with `ualink.cvm` and records
    /// the decision (`cvm-attested` event with the evidence) durably before returning it.
    /// A policy-engine failure is a deny with rule `policy_error`. Returns the decision
    /// (allow or deny); `Err` only when the decision could not be recorded.
    pub fn cvm_appraise(&mut self, claims: &CvmClaims, tenant: &str) -> Result<Decision> {
        self.audit.ensure_writable()?;
        let now = UnixTime::now();
        let input = cvm_input(claims, tenant, u64::try_from(now.secs()).unwrap_or(0));
        let json = input
            .to_canonical_json()
            .map_err(|e| TsmError::Policy(e.to_string()))?;
        let decision = match self.engine.evaluate_cvm(&input) {
            Ok(d) => d,
            Err(e) => Decision {
                allow: false,
                rules: vec!["policy_error".into()],
                reasons: vec![e.to_string().chars().take(1000).collect()],
                policy_digest: self.bundle_digest,
            },
        };
        let outcome = if decision.allow {
            Outcome::Allow
        } else {
            Outcome::Deny
        };
        let subject = format!("{}@{tenant}", claims.cvm_id);
        let rec = AuditRecord::new(now, DecisionKind::CvmAppraisal, &subject, outcome)
            .and_then(|r| r.with_input("cvm-evidence", Digest384::of(&claims.report)))
            .and_then(|r| r.with_input("policy-input", Digest384::of(json.as_bytes())))
            .and_then(|r| r.with_policy_input(ualink_policy::DecisionKind::CvmAppraisal, &json))
            .map_err(audit_build)?;
        let rec = with_decision(rec, &decision, &self.policy_digest)?.with_event(
            AuditEvent::CvmAttested {
                cvm_id: claims.cvm_id.clone(),
                tenant_id: tenant.to_string(),
                evidence: TsmEvidenceBytes {
                    report: Bytes(claims.report.clone()),
                    leaf: Bytes(claims.leaf.clone()),
                    intermediates: claims.intermediates.iter().cloned().map(Bytes).collect(),
                },
            },
        );
        self.audit.record(&rec)?;
        Ok(decision)
    }

    /// The TSM's policy bundle digest (hex), as served by `GET /ualink/v0/status`.
    pub fn policy_digest_hex(&self) -> String {
        hex::encode(self.policy_digest.as_bytes())
    }
}

impl Tsm {
    /// The tenant's agent rejected the TDI report of `accel` (its checks `failed_checks`):
    /// records a `tdi-acceptance` deny naming the checks, then STOPs the TDI (the driver
    /// revokes what depended on it).
    pub fn tdi_reject(
        &mut self,
        tenant: u32,
        accel: u16,
        cvm_id: &str,
        failed_checks: &[String],
    ) -> Result<()> {
        self.audit.ensure_writable()?;
        self.tdi_owner_check(tenant, accel)?;
        let report = self
            .tdi_report(tenant, accel)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| TsmError::Conflict(format!("accelerator {accel} is not locked")))?;
        let mut rec = AuditRecord::new(
            UnixTime::now(),
            DecisionKind::TdiAcceptance,
            &crate::tsm::device_subject(accel),
            Outcome::Deny,
        )
        .and_then(|r| r.with_input("tdi-report", Digest384::of(&report)))
        .and_then(|r| r.with_reason(&format!("rejected by {cvm_id} of tenant {tenant}; STOP")))
        .map_err(audit_build)?;
        for c in failed_checks {
            rec = rec.with_reason(c).map_err(audit_build)?;
        }
        self.audit.record(&rec)?;
        self.tdi_stop(tenant, accel)
    }
}
