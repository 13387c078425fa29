# Fixtures shared by the Rego tests of the built-in rules.
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
		"approvals_in_force": [approval],
	}

no_evidence := {"provenance": null, "attestations": [], "latest_attestations": {}, "approvals": [], "approval": null, "approvals_in_force": []}

# decide returns the deny messages, the warnings and the requirements the
# violations name.
decide(environment, artifacts) := {"deny": deny, "warn": warn, "unmet": unmet} if {
	doc := {"environment": environment, "artifacts": artifacts}
	violations := admission.deny with input as doc with time.now_ns as now
	deny := {v.msg | some v in violations}
	unmet := {v.requirement | some v in violations}
	warn := admission.warn with input as doc with time.now_ns as now
}
