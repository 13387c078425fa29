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

test_source_needs_repository_and_commit if {
	env := object.union(prod, {"require": object.union(prod.require, {"source": true})})
	d := decide(env, [artifact({})]) # the fixture's build names neither
	d.deny == {sprintf(`container "web": image %s: its build report names no repository or commit, so where it was built from is unknown; report it from CI or with --repository and --commit (required in prod)`, [image])}
}

test_source_met if {
	env := object.union(prod, {"require": object.union(prod.require, {"source": true})})
	built := object.union(provenance, {"repository": "https://git.example.com/app", "git_commit": "4b825dc642cb6eb9a060e54bf8d69288fbee4904"})
	d := decide(env, [artifact({"provenance": built})])
	d.deny == set()
}

test_source_without_provenance_requirement if {
	env := {"name": "dev", "require": {"source": true}}
	d := decide(env, [artifact({"provenance": null})])
	d.deny == {sprintf(`container "web": image %s has no provenance: no build with this digest was reported to Vouch, so its source is unknown (required in dev)`, [image])}
}
