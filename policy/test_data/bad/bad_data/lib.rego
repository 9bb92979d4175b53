# Helpers shared by the ualink-cc decision packages.
package ualink.lib

import rego.v1

cfg := data.ualink_data

# Numeric parts of a "MAJOR.MINOR" version string.
version_parts(v) := [to_number(p) | some p in split(v, ".")]

# a >= b for "MAJOR.MINOR" versions (undefined if either is malformed).
version_at_least(a, b) if {
	pa := version_parts(a)
	pb := version_parts(b)
	count(pa) == 2
	count(pb) == 2
	pa[0] > pb[0]
}

version_at_least(a, b) if {
	pa := version_parts(a)
	pb := version_parts(b)
	count(pa) == 2
	count(pb) == 2
	pa[0] == pb[0]
	pa[1] >= pb[1]
}

# Allowed clock skew between the evidence time and the decision time.
default max_skew := 60

max_skew := cfg.max_clock_skew_seconds

# The evidence is at most max_age seconds old and not from the future (beyond the skew).
fresh(attested_at, now, max_age) if {
	attested_at <= now + max_skew
	now - attested_at <= max_age
}

in_future(attested_at, now) if attested_at > now + max_skew

stale(attested_at, now, max_age) if now - attested_at > max_age

# The SPDM algorithm categories policies check.
spdm_categories := ["base_asym", "base_hash", "measurement_hash", "dhe", "aead"]

# Algorithms accepted by default (the provider's strong set).
default_algorithm(cat, a) if a in cfg.spdm.algorithms[cat]

# Algorithms a tenant opted down to (ualink_data.tenants.<t>.spdm_algorithms).
tenant_algorithm(t, cat, a) if a in cfg.tenants[t].spdm_algorithms[cat]

# Effective set for a tenant: its own list if it has one for the category, else the default.
tenant_accepts_algorithm(t, cat, a) if tenant_algorithm(t, cat, a)

tenant_accepts_algorithm(t, cat, a) if {
	not cfg.tenants[t].spdm_algorithms[cat]
	default_algorithm(cat, a)
}
