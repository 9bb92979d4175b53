# Cross-tenant or cross-OS share: may the importer attach the exporter's buffer with the
# rights requested? Both TDIs must be RUN with fresh attestation, the link keys on the route
# live, and ualink_data.sharing.pairs must list (exporter tenant, importer tenant) with at
# least the rights requested. A share between two OS instances of one tenant needs a pair
# entry with exporter == importer.
#
# Input: ualink_policy::ShareInput (policy/README.md).
package ualink.share

import data.ualink.lib
import rego.v1

cfg := data.ualink_data

default allow := false

allow if {
	count(deny) == 0
	count(matching_pairs) > 0
	count(input.rights) > 0
	input.link_keys_live == true
	input.exporter.tdi_state == "RUN"
	input.importer.tdi_state == "RUN"
	"exporter" in fresh_ends
	"importer" in fresh_ends
}

max_age := object.get(cfg.sharing, "max_attestation_age_seconds", 0)

matching_pairs := [p |
	some p in cfg.sharing.pairs
	p.exporter == input.exporter.tenant_id
	p.importer == input.importer.tenant_id
]

granted_rights := {r | some p in matching_pairs; some r in p.rights}

kind := "cross-OS" if input.exporter.tenant_id == input.importer.tenant_id

kind := "cross-tenant" if input.exporter.tenant_id != input.importer.tenant_id

deny contains {
	"rule": "unlisted_share_pair",
	"reason": sprintf("no %s sharing rule lets %q export to %q", [kind, input.exporter.tenant_id, input.importer.tenant_id]),
} if {
	count(matching_pairs) == 0
}

deny contains {
	"rule": "excessive_rights",
	"reason": sprintf("%q may export to %q with %v only, %q requested", [input.exporter.tenant_id, input.importer.tenant_id, sort(granted_rights), r]),
} if {
	count(matching_pairs) > 0
	some r in input.rights
	not r in granted_rights
}

deny contains {
	"rule": "no_rights",
	"reason": "the share requests no rights",
} if {
	count(input.rights) == 0
}

deny contains {
	"rule": "same_endpoint",
	"reason": sprintf("exporter and importer are the same OS instance %q of %q", [input.exporter.os_instance, input.exporter.tenant_id]),
} if {
	input.exporter.tenant_id == input.importer.tenant_id
	input.exporter.os_instance == input.importer.os_instance
}

deny contains {
	"rule": "link_keys_not_live",
	"reason": sprintf("link keys are not live on the route %d -> %d", [input.exporter.accelerator_id, input.importer.accelerator_id]),
} if {
	input.link_keys_live != true
}

ends := {"exporter": input.exporter, "importer": input.importer}

# The ends whose attestation is fresh (a rule, so each end is checked once per decision).
fresh_ends contains name if {
	some name, e in ends
	lib.fresh(e.attested_at, input.now, max_age)
}

deny contains {
	"rule": sprintf("%s_tdi_not_running", [name]),
	"reason": sprintf("%s TDI on accelerator %d is %s, not RUN", [name, e.accelerator_id, e.tdi_state]),
} if {
	some name, e in ends
	e.tdi_state != "RUN"
}

deny contains {
	"rule": sprintf("%s_attestation_stale", [name]),
	"reason": sprintf("%s accelerator %d attested %d s ago, more than the %d s allowed", [name, e.accelerator_id, input.now - e.attested_at, max_age]),
} if {
	some name, e in ends
	not name in fresh_ends
	lib.stale(e.attested_at, input.now, max_age)
}

deny contains {
	"rule": sprintf("%s_attestation_in_future", [name]),
	"reason": sprintf("%s accelerator %d attested at %d, after the decision time %d", [name, e.accelerator_id, e.attested_at, input.now]),
} if {
	some name, e in ends
	not name in fresh_ends
	lib.in_future(e.attested_at, input.now)
}

allow_rules contains {
	"rule": "listed_share_pair",
	"reason": sprintf("%s share %q/%s -> %q/%s with %v is within %v", [kind, input.exporter.tenant_id, input.exporter.os_instance, input.importer.tenant_id, input.importer.os_instance, input.rights, sort(granted_rights)]),
} if {
	count(matching_pairs) > 0
}

allow_rules contains {
	"rule": "both_ends_running_and_fresh",
	"reason": sprintf("both TDIs RUN, attested %d s and %d s ago (limit %d s), link keys live", [input.now - input.exporter.attested_at, input.now - input.importer.attested_at, max_age]),
} if {
	input.exporter.tdi_state == "RUN"
	input.importer.tdi_state == "RUN"
	input.link_keys_live == true
}
