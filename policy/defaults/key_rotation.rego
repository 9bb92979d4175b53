# Link-key rotation: may new master keys be installed for this TX -> RX pair? Both ends'
# devices must be appraised and freshly attested, and the epoch must move forward.
#
# Input: ualink_policy::KeyRotationInput (policy/README.md).
package ualink.key_rotation

import data.ualink.lib
import rego.v1

cfg := data.ualink_data

default allow := false

allow if {
	count(deny) == 0
	input.new_epoch > input.current_epoch
	input.tx.device_appraised == true
	input.rx.device_appraised == true
	"tx" in fresh_ends
	"rx" in fresh_ends
}

max_age := object.get(cfg.key_rotation, "max_attestation_age_seconds", 0)

ends := {"tx": input.tx, "rx": input.rx}

# The ends whose attestation is fresh (a rule, so each end is checked once per decision).
fresh_ends contains name if {
	some name, e in ends
	lib.fresh(e.attested_at, input.now, max_age)
}

deny contains {
	"rule": "epoch_not_increasing",
	"reason": sprintf("new epoch %d does not follow current epoch %d", [input.new_epoch, input.current_epoch]),
} if {
	input.new_epoch <= input.current_epoch
}

deny contains {
	"rule": "self_pair",
	"reason": sprintf("TX and RX are the same accelerator %d", [input.tx.accelerator_id]),
} if {
	input.tx.accelerator_id == input.rx.accelerator_id
}

deny contains {
	"rule": sprintf("%s_device_not_appraised", [name]),
	"reason": sprintf("%s accelerator %d has no allowing device appraisal", [name, e.accelerator_id]),
} if {
	some name, e in ends
	e.device_appraised != true
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
	"rule": "both_ends_fresh",
	"reason": sprintf("accelerators %d port %d -> %d port %d appraised, attested %d s and %d s ago (limit %d s)", [input.tx.accelerator_id, input.tx.port, input.rx.accelerator_id, input.rx.port, input.now - input.tx.attested_at, input.now - input.rx.attested_at, max_age]),
} if {
	"tx" in fresh_ends
	"rx" in fresh_ends
}

allow_rules contains {
	"rule": "epoch_advances",
	"reason": sprintf("epoch %d -> %d (%s)", [input.current_epoch, input.new_epoch, input.trigger]),
} if {
	input.new_epoch > input.current_epoch
}
