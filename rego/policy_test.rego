package vouch.admission_test

test_complete_evidence_is_admitted if {
	d := decide(prod, [artifact({})])
	d.deny == set()
	d.warn == set()
}

test_allow_listed_image_is_exempt if {
	d := decide(prod, [artifact(object.union(no_evidence, {"image": "registry.k8s.io/pause:3.10", "name": "registry.k8s.io/pause", "digest": "", "allowed": true}))])
	d.deny == set()
}

test_default_environment_requires_digest_and_provenance_only if {
	default_env := {"name": "default", "require": {"digest": true, "provenance": true}}
	d := decide(default_env, [artifact(object.union(no_evidence, {"provenance": provenance}))])
	d.deny == set()
}

test_no_requirements_admit_anything if {
	d := decide({"name": "sandbox", "require": {}}, [artifact(object.union(no_evidence, {"image": "nginx", "digest": ""}))])
	d.deny == set()
}

test_every_container_type_is_named if {
	d := decide(prod, [
		artifact({"container": "setup", "container_type": "init", "provenance": null}),
		artifact({"container": "debug", "container_type": "ephemeral", "provenance": null}),
	])
	count(d.deny) == 2
	some m1 in d.deny
	startswith(m1, `init container "setup": `)
	some m2 in d.deny
	startswith(m2, `ephemeral container "debug": `)
}

test_every_problem_is_reported if {
	d := decide(prod, [artifact(no_evidence)])
	count(d.deny) == 4
}

test_every_violation_names_its_requirement if {
	d := decide(prod, [artifact(no_evidence)])
	d.unmet == {"provenance", "attestation unit-tests", "attestation security-scan", "approval"}
}
