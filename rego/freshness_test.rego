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

# A keyless attestation counts from when it was signed, if that is
# earlier than its report: an old bundle posted today is old.
keyless_scan(signed_at) := object.union(passed("security-scan", 3), {"type": "in-toto", "verified": true, "key_id": "ci-workflow", "reported_at": "2026-11-25T11:00:00Z", "signed_at": signed_at})

test_old_keyless_signature_reported_today_is_denied if {
	d := decide(fresh_env("24h0m0s"), [artifact({"latest_attestations": {"security-scan": keyless_scan("2026-09-01T08:00:00Z")}})])
	d.deny == {sprintf(`container "web": image %s: the latest attestation "security-scan" (id 3) was signed at 2026-09-01T08:00:00Z, more than 24h0m0s before this change; sign and report a new one (required in prod)`, [image])}
}

test_recent_keyless_signature_is_fresh if {
	d := decide(fresh_env("24h0m0s"), [artifact({"latest_attestations": {"security-scan": keyless_scan("2026-11-25T10:59:00Z")}})])
	d.deny == set()

	# A signing time after the report (clock skew) does not make it younger.
	late := decide(fresh_env("1h0m0s"), [artifact({"latest_attestations": {"security-scan": object.union(keyless_scan("2026-11-25T11:30:00Z"), {"reported_at": "2026-11-25T10:30:00Z"})}})])
	late.deny == {sprintf(`container "web": image %s: the latest attestation "security-scan" (id 3) was reported at 2026-11-25T10:30:00Z, more than 1h0m0s before this change; report a new one (required in prod)`, [image])}
}
