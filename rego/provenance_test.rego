package vouch.admission_test

test_missing_provenance_is_denied if {
	d := decide(prod, [artifact({"provenance": null})])
	d.deny == {sprintf(`container "web": image %s has no provenance: no build with this digest was reported to Vouch (required in prod)`, [image])}
}

test_provenance_without_digest_requirement if {
	env := {"name": "dev", "require": {"provenance": true}}
	d := decide(env, [artifact(object.union(no_evidence, {"image": "app:1", "digest": ""}))])
	d.deny == {`container "web": image app:1 is not pinned by digest, so its provenance cannot be checked (provenance is required in dev)`}
}
