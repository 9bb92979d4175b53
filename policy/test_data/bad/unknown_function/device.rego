package ualink.device

import rego.v1

default allow := false

allow if {
	count(deny) == 0
	ualink_lookup(input.device_id)
}

deny contains {"rule": "x", "reason": "y"} if false

allow_rules contains {"rule": "x", "reason": "y"} if false
