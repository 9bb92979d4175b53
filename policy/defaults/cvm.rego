# CVM appraisal: is this confidential VM's own evidence (SEV-SNP, TDX, or the project's sim
# platform) acceptable for the tenant it claims? Sim evidence is refused unless
# ualink_data.allow_sim_tee is true (tests and demos only).
#
# Input: ualink_policy::CvmAppraisalInput (policy/README.md).
# Data:  ualink_data.cvm (per TEE settings), ualink_data.tenants.<t>.cvm.measurements.
package ualink.cvm

import data.ualink.lib
import rego.v1

cfg := data.ualink_data

tenant := cfg.tenants[input.tenant_id]

tee_cfg := object.get(cfg.cvm, input.tee, {})

default allow := false

allow if {
	count(deny) == 0
	tee_permitted
	measurement_listed
	input.report_data_bound == true
	input.debug == false
	input.policy.debug_allowed == false
	fresh
}

fresh if lib.fresh(input.attested_at, input.now, max_age)

max_age := object.get(cfg.cvm, "max_attestation_age_seconds", 0)

# Which kind of root each TEE's evidence must chain to.
expected_root := {"snp": "amd", "tdx": "intel", "sim": "explicit"}

tee_permitted if {
	input.tee in {"snp", "tdx"}
	input.tee in cfg.cvm.allowed_tees
}

tee_permitted if {
	input.tee == "sim"
	cfg.allow_sim_tee == true
}

measurement_listed if lower(tenant.cvm.measurements[input.tee][_]) == input.measurement

deny contains {
	"rule": "sim_tee_not_allowed",
	"reason": "evidence from the sim TEE is refused: allow_sim_tee is not set (tests and demos only)",
} if {
	input.tee == "sim"
	cfg.allow_sim_tee != true
}

deny contains {
	"rule": "tee_not_allowed",
	"reason": sprintf("TEE %s is not in the allowed TEEs %v", [input.tee, cfg.cvm.allowed_tees]),
} if {
	input.tee != "sim"
	not input.tee in cfg.cvm.allowed_tees
}

deny contains {
	"rule": "root_mismatch",
	"reason": sprintf("%s evidence must chain to the %s root, not to an %s root", [input.tee, expected_root[input.tee], input.root]),
} if {
	expected_root[input.tee] != input.root
}

deny contains {
	"rule": "unknown_tenant",
	"reason": sprintf("tenant %q has no policy", [input.tenant_id]),
} if {
	not tenant
}

deny contains {
	"rule": "measurement_not_allowed",
	"reason": sprintf("launch measurement %s is not a reference measurement of tenant %q for %s", [input.measurement, input.tenant_id, input.tee]),
} if {
	tenant
	not measurement_listed
}

deny contains {
	"rule": "debug_enabled",
	"reason": "the guest is debuggable",
} if {
	input.debug != false
}

deny contains {
	"rule": "debug_allowed_by_guest_policy",
	"reason": "the guest policy allows debugging",
} if {
	input.policy.debug_allowed != false
}

deny contains {
	"rule": "report_data_not_bound",
	"reason": "REPORT_DATA does not bind the expected nonce and key",
} if {
	input.report_data_bound != true
}

deny contains {
	"rule": "migration_agent_allowed",
	"reason": "the guest policy allows a migration agent",
} if {
	input.policy.migration_agent_allowed == true
	object.get(tee_cfg, "allow_migration_agent", false) != true
}

deny contains {
	"rule": "smt_not_allowed",
	"reason": "the guest policy allows SMT and this TEE's settings forbid it",
} if {
	input.policy.smt_allowed == true
	object.get(tee_cfg, "allow_smt", true) != true
}

deny contains {
	"rule": "vmpl_not_allowed",
	"reason": sprintf("report from VMPL %d, above the maximum %d", [input.policy.vmpl, tee_cfg.max_vmpl]),
} if {
	input.policy.vmpl > tee_cfg.max_vmpl
}

deny contains {
	"rule": "tcb_below_minimum",
	"reason": sprintf("TCB component %s = %v is below the minimum %d", [name, object.get(input.tcb.components, name, "missing"), min]),
} if {
	some name, min in tee_cfg.min_tcb
	not object.get(input.tcb.components, name, -1) >= min
}

deny contains {
	"rule": "tcb_status_not_accepted",
	"reason": sprintf("TCB status %v is not one of %v", [input.tcb.status, tee_cfg.accepted_tcb_statuses]),
} if {
	tee_cfg.accepted_tcb_statuses
	not input.tcb.status in tee_cfg.accepted_tcb_statuses
}

deny contains {
	"rule": "stale_attestation",
	"reason": sprintf("evidence is %d s old, more than the %d s allowed", [input.now - input.attested_at, max_age]),
} if {
	not fresh
	lib.stale(input.attested_at, input.now, max_age)
}

deny contains {
	"rule": "attestation_in_future",
	"reason": sprintf("evidence produced at %d, after the decision time %d", [input.attested_at, input.now]),
} if {
	not fresh
	lib.in_future(input.attested_at, input.now)
}

allow_rules contains {
	"rule": "tee_evidence_accepted",
	"reason": sprintf("%s evidence chained to the %s root, report data bound, not debuggable", [input.tee, input.root]),
} if {
	tee_permitted
	input.report_data_bound == true
}

allow_rules contains {
	"rule": "reference_measurement",
	"reason": sprintf("launch measurement %s is a reference measurement of tenant %q", [input.measurement, input.tenant_id]),
} if {
	measurement_listed
}
