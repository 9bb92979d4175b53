# Helpers shared by the ualink-cc decision packages.
package ualink.lib

import rego.v1

cfg := data.ualink_data

# A non-empty string of decimal digits.
decimal(s) if {
	count(s) > 0
	count(s) <= 9
	every c in split(s, "") {
		indexof("0123456789", c) >= 0
	}
}

# Numeric parts of a "MAJOR.MINOR" version string (undefined unless every part is decimal).
version_parts(v) := [to_number(p) | some p in split(v, ".")] if {
	every p in split(v, ".") {
		decimal(p)
	}
}

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
