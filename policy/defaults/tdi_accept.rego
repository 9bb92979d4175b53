# Tenant acceptance of a TDI: does the tenant take this device interface into its trust
# boundary? Judged on the TSM-signed TDISP interface report, the provider's appraisal of the
# device behind it, and the tenant's own settings (ualink_data.tenants.<tenant_id>.accept).
#
# Input: ualink_policy::TdiAcceptInput (policy/README.md).
package ualink.tdi_accept

import data.ualink.lib
import rego.v1

cfg := data.ualink_data

tenant := cfg.tenants[input.tenant_id]

default allow := false

allow if {
	count(deny) == 0
	tenant
	input.device_appraisal.allow == true
	input.tdi.state in {"CONFIG_LOCKED", "RUN"}
	input.accelerator_id in input.vpod_accelerator_ids
	fresh
}

# Each check is a rule, not a function call, so it is evaluated once per decision.
fresh if lib.fresh(input.device.attested_at, input.now, max_age)

# The tenant's own algorithm list for a category if it has one, else the provider default.
accepted_algorithms[cat] := {a | some a in tenant.spdm_algorithms[cat]} if {
	some cat in lib.spdm_categories
	tenant.spdm_algorithms[cat]
}

accepted_algorithms[cat] := {a | some a in cfg.spdm.algorithms[cat]} if {
	some cat in lib.spdm_categories
	not tenant.spdm_algorithms[cat]
}

default max_age := 0

# The tenant's own limit, else the provider's device limit.
max_age := object.get(tenant, "max_attestation_age_seconds", object.get(cfg.device, "max_attestation_age_seconds", 0))

# Tenant settings with safe defaults.
default require_no_update_after_lock := true

require_no_update_after_lock := tenant.accept.require_no_update_after_lock

default allow_non_tee_mmio := false

allow_non_tee_mmio := tenant.accept.allow_non_tee_mmio

deny contains {
	"rule": "unknown_tenant",
	"reason": sprintf("tenant %q has no policy", [input.tenant_id]),
} if {
	not tenant
}

deny contains {
	"rule": "device_not_appraised",
	"reason": sprintf("%s: the provider's device appraisal did not allow it (%v)", [input.device.device_id, input.device_appraisal.rules]),
} if {
	input.device_appraisal.allow != true
}

deny contains {
	"rule": "tdi_not_locked",
	"reason": sprintf("TDI %d on %s is %s, not CONFIG_LOCKED or RUN", [input.tdi.interface_id, input.device.device_id, input.tdi.state]),
} if {
	not input.tdi.state in {"CONFIG_LOCKED", "RUN"}
}

deny contains {
	"rule": "firmware_update_after_lock",
	"reason": sprintf("TDI %d on %s permits firmware updates after LOCK", [input.tdi.interface_id, input.device.device_id]),
} if {
	require_no_update_after_lock == true
	input.tdi.interface_info.no_update_after_lock != true
}

deny contains {
	"rule": "non_tee_mmio",
	"reason": sprintf("TDI %d on %s maps MMIO range %d as non-TEE memory", [input.tdi.interface_id, input.device.device_id, r.range_id]),
} if {
	allow_non_tee_mmio != true
	some r in input.tdi.mmio_ranges
	r.non_tee_mem == true
}

deny contains {
	"rule": "vendor_not_accepted",
	"reason": sprintf("tenant %q does not accept vendor %q", [input.tenant_id, input.device.vendor]),
} if {
	tenant.accept.vendors
	not input.device.vendor in tenant.accept.vendors
}

deny contains {
	"rule": "model_not_accepted",
	"reason": sprintf("tenant %q does not accept model %q", [input.tenant_id, input.device.model]),
} if {
	tenant.accept.models
	not input.device.model in tenant.accept.models
}

deny contains {
	"rule": "weak_algorithm",
	"reason": sprintf("tenant %q does not accept %s %s", [input.tenant_id, cat, input.device.spdm[cat]]),
} if {
	tenant
	some cat in lib.spdm_categories
	not input.device.spdm[cat] in object.get(accepted_algorithms, cat, set())
}

deny contains {
	"rule": "accelerator_not_in_vpod",
	"reason": sprintf("accelerator %d is not a member of the tenant's vPod %v", [input.accelerator_id, input.vpod_accelerator_ids]),
} if {
	not input.accelerator_id in input.vpod_accelerator_ids
}

deny contains {
	"rule": "duplicate_accelerator_id",
	"reason": sprintf("accelerator id %d appears more than once in the vPod", [id]),
} if {
	some id in input.vpod_accelerator_ids
	count([x | some x in input.vpod_accelerator_ids; x == id]) > 1
}

deny contains {
	"rule": "stale_attestation",
	"reason": sprintf("%s: attested %d s ago, more than the %d s allowed", [input.device.device_id, input.now - input.device.attested_at, max_age]),
} if {
	not fresh
	lib.stale(input.device.attested_at, input.now, max_age)
}

deny contains {
	"rule": "attestation_in_future",
	"reason": sprintf("%s: attested at %d, after the decision time %d", [input.device.device_id, input.device.attested_at, input.now]),
} if {
	not fresh
	lib.in_future(input.device.attested_at, input.now)
}

allow_rules contains {
	"rule": "device_appraised",
	"reason": sprintf("%s appraised under policy %s", [input.device.device_id, input.device_appraisal.policy_digest]),
} if {
	input.device_appraisal.allow == true
}

allow_rules contains {
	"rule": "tdi_report_accepted",
	"reason": sprintf("TDI %d on %s (%s %s firmware %s) in %s, report %s", [input.tdi.interface_id, input.device.device_id, input.device.vendor, input.device.model, input.device.firmware_version, input.tdi.state, input.tdi.report_digest]),
} if {
	input.tdi.state in {"CONFIG_LOCKED", "RUN"}
}
