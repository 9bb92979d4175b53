package ualink.device

# import rego.v1 is missing (this comment does not count)
default allow := false

deny contains {"rule": "x", "reason": "y"} if false

allow_rules contains {"rule": "x", "reason": "y"} if false
