//! Verifying another CVM's evidence for the tenant: a mesh peer agent (or any CVM claiming
//! to belong to the tenant) must present SNP-format evidence that
//! 1. verifies under the tenant's roots (AMD ARKs, or an explicitly trusted sim ARK),
//! 2. carries exactly the report_data the caller expects (a binding of a nonce the caller
//!    chose and the key the peer authenticates with), and
//! 3. passes the tenant's CVM appraisal (`ualink.cvm`, tenant_id = the tenant): TEE kind
//!    and root, launch measurement among the tenant's reference measurements, not
//!    debuggable, VMPL, migration agent, TCB minimums.
//!
//! The evidence JSON is the KBS `primary_evidence` the agent itself sends
//! ([`crate::evidence::Evidence::to_kbs_json`]):
//! `{"attestation_report": "<base64 of 1184 bytes>", "cert_chain": [{"cert_type","data"}]}`.

use crate::error::{Error, Result};
use crate::tsm::api::CertEntry;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::BTreeMap;
use ualink_attest::pki::{AnchorOrigin, TrustAnchors};
use ualink_attest::snp::{SnpCerts, SnpVerifier, VerifiedSnpReport};
use ualink_attest::{ExpectedReportData, UnixTime};
use ualink_policy::input::{CvmAppraisalInput, CvmPolicyFields, CvmTcb, TeeRoot, TeeType};
use ualink_policy::{Decision, HexBytes, PolicyEngine};

/// SNP guest POLICY bits (SEV-SNP ABI, table "Guest Policy Structure").
const POLICY_SMT: u64 = 1 << 16;
const POLICY_MIGRATE_MA: u64 = 1 << 18;
const POLICY_DEBUG: u64 = 1 << 19;

/// The SNP-format evidence JSON, parsed. Unknown members are refused.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SnpEvidenceJson {
    attestation_report: String,
    cert_chain: Option<Vec<CertEntry>>,
}

/// Parses `{"attestation_report","cert_chain"}` into the report bytes and certificates.
pub fn parse_snp_evidence(v: &serde_json::Value) -> Result<(Vec<u8>, SnpCerts)> {
    let e: SnpEvidenceJson = serde_json::from_value(v.clone())
        .map_err(|e| Error::malformed("CVM evidence JSON", e.to_string()))?;
    let report = STANDARD
        .decode(&e.attestation_report)
        .map_err(|_| Error::malformed("CVM evidence JSON", "attestation_report is not base64"))?;
    let chain = e.cert_chain.ok_or_else(|| {
        Error::malformed(
            "CVM evidence JSON",
            "no cert_chain (the VCEK/VLEK is required)",
        )
    })?;
    Ok((report, crate::tsm::certs_of(&chain)?))
}

/// A CVM whose evidence verified, bound as expected and passed the tenant's appraisal.
#[derive(Clone, Debug)]
pub struct VerifiedCvm {
    /// The verified report.
    pub report: VerifiedSnpReport,
    /// The TEE kind as appraised (`snp` for an AMD root, `sim` for an explicit one).
    pub tee: TeeType,
    /// The tenant's CVM appraisal (allowed).
    pub decision: Decision,
}

/// Verifies other CVMs' evidence for one tenant.
#[derive(Clone, Debug)]
pub struct CvmVerifier {
    tenant: String,
    snp: SnpVerifier,
    engine: PolicyEngine,
}

impl CvmVerifier {
    /// A verifier for `tenant` trusting `roots`, appraising with `engine`.
    pub fn new(tenant: &str, roots: TrustAnchors, engine: PolicyEngine) -> Self {
        Self {
            tenant: tenant.to_string(),
            snp: SnpVerifier::new(roots),
            engine,
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Runs the three checks of the module documentation on `evidence` at time `now`.
    pub fn verify(
        &self,
        evidence: &serde_json::Value,
        expected_report_data: &[u8; 64],
        now: UnixTime,
    ) -> Result<VerifiedCvm> {
        let (report, certs) = parse_snp_evidence(evidence)?;
        let v = self.snp.verify(
            &report,
            &certs,
            &ExpectedReportData::Expected(*expected_report_data),
            now,
        )?;
        let input = appraisal_input(&self.tenant, &v, now);
        let decision = self.engine.evaluate_cvm(&input)?;
        if !decision.allow {
            return Err(Error::Denied {
                decision: "ualink.cvm",
                rules: decision.rules,
                reasons: decision.reasons,
            });
        }
        Ok(VerifiedCvm {
            report: v,
            tee: input.tee,
            decision,
        })
    }
}

/// The `ualink.cvm` input for verified SNP-format evidence. SNP reports carry no time, so
/// `attested_at` is the verification time: freshness comes from the caller's nonce.
pub fn appraisal_input(tenant: &str, v: &VerifiedSnpReport, now: UnixTime) -> CvmAppraisalInput {
    let r = &v.report;
    let (tee, root) = match v.root {
        AnchorOrigin::AmdBuiltin(_) => (TeeType::Snp, TeeRoot::Amd),
        AnchorOrigin::Explicit => (TeeType::Sim, TeeRoot::Explicit),
    };
    let mut components = BTreeMap::new();
    let t = &r.reported_tcb;
    components.insert("bootloader".to_string(), u64::from(t.bootloader));
    components.insert("tee".to_string(), u64::from(t.tee));
    components.insert("snp".to_string(), u64::from(t.snp));
    components.insert("microcode".to_string(), u64::from(t.microcode));
    if let Some(f) = t.fmc {
        components.insert("fmc".to_string(), u64::from(f));
    }
    let now = u64::try_from(now.secs()).unwrap_or(0);
    let debug = r.policy & POLICY_DEBUG != 0;
    CvmAppraisalInput {
        tenant_id: tenant.to_string(),
        tee,
        root,
        measurement: HexBytes(r.measurement.to_vec()),
        policy: CvmPolicyFields {
            debug_allowed: debug,
            migration_agent_allowed: r.policy & POLICY_MIGRATE_MA != 0,
            smt_allowed: r.policy & POLICY_SMT != 0,
            vmpl: Some(u8::try_from(r.vmpl).unwrap_or(u8::MAX)),
        },
        tcb: CvmTcb {
            components,
            status: None,
        },
        report_data_bound: v.report_data_checked,
        debug,
        attested_at: now,
        now,
    }
}
