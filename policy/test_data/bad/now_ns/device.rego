package ualink.device

import rego.v1

default allow := false

allow if {
	count(deny) == 0
	input.attested_at * 1000000000 > time.now_ns() - 3600000000000
}

deny contains {"rule": "x", "reason": "y"} if false

allow_rules contains {"rule": "x", "reason": "y"} if false
