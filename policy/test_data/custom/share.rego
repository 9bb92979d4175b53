package ualink.share

import rego.v1

# Allows exactly read shares from tenant "x"; everything else falls to default deny.
default allow := false

allow if {
	input.exporter.tenant_id == "x"
	input.rights == ["read"]
}

deny contains {"rule": "write_refused", "reason": "writes are never shared"} if "write" in input.rights

allow_rules contains {"rule": "x_reads", "reason": "tenant x may share reads"} if allow
