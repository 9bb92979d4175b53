package ualink.device

import rego.v1

# Fails open: nothing in the input is checked.
default allow := false

allow if count(deny) == 0

deny contains {"rule": "untrusted_vendor_root", "reason": "untrusted"} if {
	input.vendor_root_fingerprint == "00"
}

allow_rules contains {"rule": "anything", "reason": "anything goes"} if true
