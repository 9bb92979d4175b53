package ualink.device

import rego.v1

default allow := false

allow if {
	count(deny) == 0
	input.x ==
}
