# Device appraisal: is this device genuine (its certificate chain ends in a trusted vendor
# root) and running known firmware (its signed measurements equal the reference values for
# its model and firmware version), over a strong enough SPDM session, recently?
#
# Input: ualink_policy::DeviceAppraisalInput (policy/README.md).
# Data:  ualink_data.device, ualink_data.spdm, ualink_data.reference_values, ualink_data.tenants.
package ualink.device

import data.ualink.lib
import rego.v1

cfg := data.ualink_data

default allow := false

allow if {
	count(deny) == 0
	count(root_entries) > 0
	known_firmware
	count(input.measurements) > 0
	fresh
}

default max_age := 0

max_age := cfg.device.max_attestation_age_seconds

# --- vendor roots -------------------------------------------------------------------------

root_entries := [e |
	some e in cfg.device.trusted_vendor_roots
	lower(e.sha384) == input.vendor_root_fingerprint
]

deny contains {
	"rule": "untrusted_vendor_root",
	"reason": sprintf("%s: chain ends in root %s, which is not a trusted vendor root", [input.device_id, input.vendor_root_fingerprint]),
} if {
	count(root_entries) == 0
}

deny contains {
	"rule": "vendor_root_mismatch",
	"reason": sprintf("%s: claims vendor %q but its root is trusted only for %v", [input.device_id, input.vendor, [e.vendor | some e in root_entries]]),
} if {
	count(root_entries) > 0
	not root_vouches_for_vendor
}

root_vouches_for_vendor if {
	some e in root_entries
	e.vendor == input.vendor
}

allow_rules contains {
	"rule": "trusted_vendor_root",
	"reason": sprintf("%s: chain ends in the trusted %s root %s", [input.device_id, input.vendor, input.vendor_root_fingerprint]),
} if {
	root_vouches_for_vendor
}

# --- reference values (CoRIM-shaped, see policy/README.md) --------------------------------

ref_triples := [t |
	some tag in cfg.reference_values.tags
	some t in tag.comid.triples["reference-triples"]
]

model_triples := [t |
	some t in ref_triples
	t.environment.class.vendor == input.vendor
	t.environment.class.model == input.model
]

known_model if count(model_triples) > 0

known_firmware if {
	some t in model_triples
	some m in t.measurements
	m.mval.version.version == input.firmware_version
}

# Reference measurements that apply to this firmware version: version-independent ones
# (no mval.version, e.g. the boot ROM) and those of this version.
ref_measurements := [m |
	some t in model_triples
	some m in t.measurements
	applies(m)
]

applies(m) if not m.mval.version

applies(m) if m.mval.version.version == input.firmware_version

ref_indices := {m.mkey | some m in ref_measurements}

reported_indices := {b.index | some b in input.measurements}

deny contains {
	"rule": "unknown_device_model",
	"reason": sprintf("%s: no reference values for %s %s", [input.device_id, input.vendor, input.model]),
} if {
	not known_model
}

deny contains {
	"rule": "unknown_firmware_version",
	"reason": sprintf("%s: no reference values for %s %s firmware %s", [input.device_id, input.vendor, input.model, input.firmware_version]),
} if {
	known_model
	not known_firmware
}

deny contains {
	"rule": "missing_measurement",
	"reason": sprintf("%s: measurement block %d has a reference value but was not reported", [input.device_id, i]),
} if {
	known_firmware
	some i in ref_indices
	not i in reported_indices
}

deny contains {
	"rule": "measurement_mismatch",
	"reason": sprintf("%s: measurement block %d = %s matches no reference value for %s %s firmware %s", [input.device_id, b.index, b.value, input.vendor, input.model, input.firmware_version]),
} if {
	known_firmware
	some b in input.measurements
	b.index in ref_indices
	not block_matches(b)
}

block_matches(b) if {
	some m in ref_measurements
	m.mkey == b.index
	value_matches(m, b)
}

value_matches(m, b) if {
	some d in m.mval.digests
	d.alg == input.spdm.measurement_hash
	lower(d.value) == b.value
}

value_matches(m, b) if lower(m.mval["raw-value"]) == b.value

deny contains {
	"rule": "unreferenced_measurement",
	"reason": sprintf("%s: measurement block %d has no reference value", [input.device_id, b.index]),
} if {
	known_firmware
	not cfg.device.allow_unreferenced_measurements
	some b in input.measurements
	not b.index in ref_indices
}

deny contains {
	"rule": "duplicate_measurement_index",
	"reason": sprintf("%s: measurement block %d reported more than once", [input.device_id, i]),
} if {
	some i in reported_indices
	count([b | some b in input.measurements; b.index == i]) > 1
}

deny contains {
	"rule": "no_measurements",
	"reason": sprintf("%s: no measurement blocks", [input.device_id]),
} if {
	count(input.measurements) == 0
}

allow_rules contains {
	"rule": "reference_values_match",
	"reason": sprintf("%s: %d measurement blocks match the reference values for %s %s firmware %s", [input.device_id, count(input.measurements), input.vendor, input.model, input.firmware_version]),
} if {
	known_firmware
	count(input.measurements) > 0
}

# --- SPDM version and algorithms ----------------------------------------------------------

default min_spdm_version := "1.2"

min_spdm_version := cfg.spdm.min_version

# Each check below is a rule, not a function call, so it is evaluated once per decision.
spdm_version_ok if lib.version_at_least(input.spdm.version, min_spdm_version)

deny contains {
	"rule": "spdm_version_too_old",
	"reason": sprintf("%s: SPDM %s is below the minimum %s", [input.device_id, input.spdm.version, min_spdm_version]),
} if {
	not spdm_version_ok
}

# Device appraisal accepts the provider's default algorithms, and those any tenant opted
# down to (that tenant's TDI acceptance then re-checks against its own set).
acceptable_algorithms[cat] := default_set | tenant_set if {
	some cat in lib.spdm_categories
	default_set := {a | some a in cfg.spdm.algorithms[cat]}
	tenant_set := {a | some tc in cfg.tenants; some a in tc.spdm_algorithms[cat]}
}

deny contains {
	"rule": "weak_algorithm",
	"reason": sprintf("%s: %s %s is not an accepted algorithm", [input.device_id, cat, input.spdm[cat]]),
} if {
	some cat in lib.spdm_categories
	not input.spdm[cat] in object.get(acceptable_algorithms, cat, set())
}

allow_rules contains {
	"rule": "spdm_parameters_accepted",
	"reason": sprintf("%s: SPDM %s with %s/%s/%s/%s/%s", [input.device_id, input.spdm.version, input.spdm.base_asym, input.spdm.base_hash, input.spdm.measurement_hash, input.spdm.dhe, input.spdm.aead]),
} if {
	spdm_version_ok
}

# --- freshness ----------------------------------------------------------------------------

fresh if lib.fresh(input.attested_at, input.now, max_age)

deny contains {
	"rule": "stale_attestation",
	"reason": sprintf("%s: attested %d s ago, more than the %d s allowed", [input.device_id, input.now - input.attested_at, max_age]),
} if {
	not fresh
	lib.stale(input.attested_at, input.now, max_age)
}

deny contains {
	"rule": "attestation_in_future",
	"reason": sprintf("%s: attested at %d, after the decision time %d", [input.device_id, input.attested_at, input.now]),
} if {
	not fresh
	lib.in_future(input.attested_at, input.now)
}

allow_rules contains {
	"rule": "fresh_attestation",
	"reason": sprintf("%s: attested %d s before the decision (limit %d s)", [input.device_id, input.now - input.attested_at, max_age]),
} if {
	fresh
}
