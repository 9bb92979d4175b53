package ualink.device

import rego.v1

default allow := false

allow if input.ok == true

allow_rules contains {"rule": "ok", "reason": "ok"} if input.ok == true
