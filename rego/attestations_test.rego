package vouch.admission_test

test_missing_attestation_is_denied if {
	d := decide(prod, [artifact({"latest_attestations": {"unit-tests": passed("unit-tests", 2)}})])
	d.deny == {sprintf(`container "web": image %s has no passed attestation "security-scan" (required in prod)`, [image])}
}

test_failed_latest_attestation_is_denied if {
	d := decide(prod, [artifact({"latest_attestations": {"unit-tests": failed("unit-tests", 5), "security-scan": passed("security-scan", 3)}})])
	d.deny == {sprintf(`container "web": image %s has no passed attestation "unit-tests": the latest (id 5, reported 2026-11-24T10:00:30Z by ci) failed (required in prod)`, [image])}
}

signed_env := {"name": "prod", "require": {"verified_attestations": ["slsa-provenance"]}}

test_verified_attestation_admits_when_signed if {
	att := signed(passed("slsa-provenance", 7))
	d := decide(signed_env, [artifact({"latest_attestations": {"slsa-provenance": att}})])
	d.deny == set()
}

test_unsigned_attestation_is_not_verified if {
	d := decide(signed_env, [artifact({"latest_attestations": {"slsa-provenance": passed("slsa-provenance", 7)}})])
	d.deny == {sprintf(`container "web": image %s has no attestation "slsa-provenance" signed by a trusted key: the latest (id 7, reported by ci) is not signed by one (required in prod)`, [image])}
	d.unmet == {"verified attestation slsa-provenance"}
}

test_what_vouch_read_is_not_signed if {
	# POST /changes or /reviews under a name that must be signed.
	every key in ["change:servicenow", "forge:github"] {
		att := object.union(passed("slsa-provenance", 7), {"verified": true, "key_id": key})
		d := decide(signed_env, [artifact({"latest_attestations": {"slsa-provenance": att}})])
		d.deny == {sprintf(`container "web": image %s has no attestation "slsa-provenance" signed by a trusted key: the latest (id 7, reported by ci) is not signed by one (required in prod)`, [image])}
	}
}

test_missing_verified_attestation if {
	d := decide(signed_env, [artifact({"latest_attestations": {}})])
	d.deny == {sprintf(`container "web": image %s has no attestation "slsa-provenance" signed by a trusted key (required in prod)`, [image])}
}

test_signed_but_failed_attestation if {
	d := decide(signed_env, [artifact({"latest_attestations": {"slsa-provenance": signed(failed("slsa-provenance", 8))}})])
	d.deny == {sprintf(`container "web": image %s has no passed attestation "slsa-provenance": the latest signed one (id 8, key release-signer) failed (required in prod)`, [image])}
}
