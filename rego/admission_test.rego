package vouch.admission_test

import data.vouch.admission

# Inputs here carry the summaries Vouch computes in Go (policy.Input.Summarize):
# latest_attestations and approval. The Go tests cover how they are computed.

# 2026-11-25T12:00:00Z
now := 1795608000000000000

digest := "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

image := sprintf("registry.example.com/app@%s", [digest])

prod := {"name": "prod", "require": {
	"digest": true, "provenance": true,
	"attestations": ["unit-tests", "security-scan"], "approval": true,
}}

provenance := {"id": 1, "name": "registry.example.com/app", "digest": digest, "git_commit": "", "reported_by": "ci", "reported_at": "2026-11-24T10:00:00Z"}

passed(name, id) := {"id": id, "name": name, "type": "generic", "passed": true, "url": "", "verified": false, "key_id": "", "reported_by": "ci", "reported_at": "2026-11-24T10:01:00Z"}

failed(name, id) := {"id": id, "name": name, "type": "generic", "passed": false, "url": "", "verified": false, "key_id": "", "reported_by": "ci", "reported_at": "2026-11-24T10:00:30Z"}

signed(att) := object.union(att, {"verified": true, "key_id": "release-signer"})

approval := {"id": 9, "environment": "prod", "decision": "approved", "reason": "CAB-1", "approver": "alice", "approved_at": "2026-11-24T11:00:00Z"}

# artifact is the complete artifact with the given top-level fields replaced.
artifact(overrides) := object.union(object.remove(base_artifact, object.keys(overrides)), overrides)

base_artifact := {
		"container": "web", "container_type": "container",
		"image": image, "name": "registry.example.com/app", "tag": "", "digest": digest,
		"allowed": false, "provenance": provenance,
		"attestations": [passed("unit-tests", 2), passed("security-scan", 3)],
		"latest_attestations": {"unit-tests": passed("unit-tests", 2), "security-scan": passed("security-scan", 3)},
		"approvals": [approval],
		"approval": approval,
	}

no_evidence := {"provenance": null, "attestations": [], "latest_attestations": {}, "approvals": [], "approval": null}

# decide returns the deny messages, the warnings and the requirements the
# violations name.
decide(environment, artifacts) := {"deny": deny, "warn": warn, "unmet": unmet} if {
	doc := {"environment": environment, "artifacts": artifacts}
	violations := admission.deny with input as doc with time.now_ns as now
	deny := {v.msg | some v in violations}
	unmet := {v.requirement | some v in violations}
	warn := admission.warn with input as doc with time.now_ns as now
}

test_complete_evidence_is_admitted if {
	d := decide(prod, [artifact({})])
	d.deny == set()
	d.warn == set()
}

test_tag_image_is_denied if {
	d := decide(prod, [artifact(object.union(no_evidence, {"image": "registry.example.com/app:1.0", "tag": "1.0", "digest": ""}))])
	d.deny == {`container "web": image registry.example.com/app:1.0 is not pinned by digest (required in prod); deploy it as registry.example.com/app@sha256:<digest>`}
}

test_missing_provenance_is_denied if {
	d := decide(prod, [artifact({"provenance": null})])
	d.deny == {sprintf(`container "web": image %s has no provenance: no build with this digest was reported to Vouch (required in prod)`, [image])}
}

test_missing_attestation_is_denied if {
	d := decide(prod, [artifact({"latest_attestations": {"unit-tests": passed("unit-tests", 2)}})])
	d.deny == {sprintf(`container "web": image %s has no passed attestation "security-scan" (required in prod)`, [image])}
}

test_failed_latest_attestation_is_denied if {
	d := decide(prod, [artifact({"latest_attestations": {"unit-tests": failed("unit-tests", 5), "security-scan": passed("security-scan", 3)}})])
	d.deny == {sprintf(`container "web": image %s has no passed attestation "unit-tests": the latest (id 5, reported 2026-11-24T10:00:30Z by ci) failed (required in prod)`, [image])}
}

test_missing_approval_is_denied if {
	d := decide(prod, [artifact({"approvals": [], "approval": null})])
	d.deny == {sprintf(`container "web": image %s has no release approval for prod (required in prod)`, [image])}
}

test_rejection_is_explained if {
	rejection := {"id": 10, "environment": "prod", "decision": "rejected", "reason": "CVE-2026-1", "approver": "bob", "approved_at": "2026-11-24T12:00:00Z"}
	d := decide(prod, [artifact({"approvals": [approval, rejection], "approval": null})])
	d.deny == {sprintf(`container "web": image %s has no valid release approval for prod: it was rejected by bob at 2026-11-24T12:00:00Z: CVE-2026-1 (required in prod)`, [image])}
}

test_expiry_is_explained if {
	expired := object.union(approval, {"expires_at": "2026-11-25T11:59:59Z"})
	d := decide(prod, [artifact({"approvals": [expired], "approval": null})])
	d.deny == {sprintf(`container "web": image %s has no valid release approval for prod: the approval by alice expired at 2026-11-25T11:59:59Z (required in prod)`, [image])}
}

test_approval_expiring_within_a_day_warns if {
	soon := object.union(approval, {"expires_at": "2026-11-26T06:00:00Z"})
	d := decide(prod, [artifact({"approvals": [soon], "approval": soon})])
	d.deny == set()
	d.warn == {sprintf(`container "web": image %s: its release approval for prod expires at 2026-11-26T06:00:00Z`, [image])}

	later := object.union(approval, {"expires_at": "2026-12-26T06:00:00Z"})
	d2 := decide(prod, [artifact({"approvals": [later], "approval": later})])
	d2.warn == set()
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

test_provenance_without_digest_requirement if {
	env := {"name": "dev", "require": {"provenance": true}}
	d := decide(env, [artifact(object.union(no_evidence, {"image": "app:1", "digest": ""}))])
	d.deny == {`container "web": image app:1 is not pinned by digest, so its provenance cannot be checked (provenance is required in dev)`}
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

test_missing_verified_attestation if {
	d := decide(signed_env, [artifact({"latest_attestations": {}})])
	d.deny == {sprintf(`container "web": image %s has no attestation "slsa-provenance" signed by a trusted key (required in prod)`, [image])}
}

test_signed_but_failed_attestation if {
	d := decide(signed_env, [artifact({"latest_attestations": {"slsa-provenance": signed(failed("slsa-provenance", 8))}})])
	d.deny == {sprintf(`container "web": image %s has no passed attestation "slsa-provenance": the latest signed one (id 8, key release-signer) failed (required in prod)`, [image])}
}
