package vouch.admission_test

# now is 2026-11-25T12:00:00Z; the scan below was reported 2026-11-24T10:01:00Z.
fresh_env(max_age) := {"name": "prod", "require": {"max_age": {"security-scan": max_age}}}

test_recent_scan_is_fresh if {
	d := decide(fresh_env("168h0m0s"), [artifact({})])
	d.deny == set()
}

test_old_scan_is_denied if {
	d := decide(fresh_env("24h0m0s"), [artifact({})])
	d.deny == {sprintf(`container "web": image %s: the latest attestation "security-scan" (id 3) was reported at 2026-11-24T10:01:00Z, more than 24h0m0s before this change; report a new one (required in prod)`, [image])}
	d.unmet == {"fresh security-scan"}
}

test_missing_scan_is_denied_once if {
	d := decide(fresh_env("168h0m0s"), [artifact({"latest_attestations": {}})])
	d.deny == {sprintf(`container "web": image %s has no attestation "security-scan" (one at most 168h0m0s old is required in prod)`, [image])}

	# When the attestation is required anyway, that rule says so alone.
	both := {"name": "prod", "require": {"attestations": ["security-scan"], "max_age": {"security-scan": "168h0m0s"}}}
	d2 := decide(both, [artifact({"latest_attestations": {}})])
	d2.unmet == {"attestation security-scan"}
}
