# Vouch built-in admission policy.
#
# Decides whether the images of a Kubernetes workload may run in an
# environment, from the evidence CI reported for them. The environment's
# requirements come from Vouch's configuration (input.environment.require),
# so the common rules need no Rego. See docs/policy.md for the input document.
#
# Each rule adds a violation to `deny` (the change is refused) or a message
# to `warn` (it is admitted and kubectl prints the message). A violation is
# {"msg": …, "rule": …, "requirement": …}: the message names the container,
# the image and exactly what is missing, so that the person deploying can
# act; rule and requirement name what failed, for `vouch assert` and replay
# (plain strings work too, as in Gatekeeper).
#
# Rules read each artifact's summaries, which Vouch computes as of the
# decision time: latest_attestations (the latest attestation of each name)
# and approval (the approval in force: unexpired, not followed by a
# rejection; null when none). The full lists are there too, oldest first.
package vouch.admission

env := input.environment

# Images on the environment's allow-list (artifact.allowed) are exempt; the
# journal records every use.

deny contains msg if {
	input.environment.require.digest
	some a in input.artifacts
	not a.allowed
	a.digest == ""
	msg := violation(sprintf("%s: image %s is not pinned by digest (required in %s); deploy it as %s@sha256:<digest>", [subject(a), a.image, env.name, a.name]), "digest", "digest")
}

deny contains msg if {
	input.environment.require.provenance
	not input.environment.require.digest
	some a in input.artifacts
	not a.allowed
	a.digest == ""
	msg := violation(sprintf("%s: image %s is not pinned by digest, so its provenance cannot be checked (provenance is required in %s)", [subject(a), a.image, env.name]), "provenance", "provenance")
}

deny contains msg if {
	input.environment.require.provenance
	some a in input.artifacts
	not a.allowed
	a.digest != ""
	a.provenance == null
	msg := violation(sprintf("%s: image %s has no provenance: no build with this digest was reported to Vouch (required in %s)", [subject(a), a.image, env.name]), "provenance", "provenance")
}

deny contains msg if {
	some name in input.environment.require.attestations
	some a in input.artifacts
	not a.allowed
	a.digest != ""
	not a.latest_attestations[name]
	msg := violation(sprintf("%s: image %s has no passed attestation %q (required in %s)", [subject(a), a.image, name, env.name]), "attestation", sprintf("attestation %s", [name]))
}

deny contains msg if {
	some name in input.environment.require.attestations
	some a in input.artifacts
	not a.allowed
	att := a.latest_attestations[name]
	not att.passed
	msg := violation(sprintf("%s: image %s has no passed attestation %q: the latest (id %d, reported %s by %s) failed (required in %s)", [subject(a), a.image, name, att.id, att.reported_at, att.reported_by, env.name]), "attestation", sprintf("attestation %s", [name]))
}

# Verified attestations: present, passed, and signed by a trusted key (a
# DSSE envelope verified when it was reported).
deny contains msg if {
	some name in input.environment.require.verified_attestations
	some a in input.artifacts
	not a.allowed
	a.digest != ""
	not verified_passed(a, name)
	msg := violation(sprintf("%s: image %s %s (required in %s)", [subject(a), a.image, verified_problem(a, name), env.name]), "verified-attestation", sprintf("verified attestation %s", [name]))
}

deny contains msg if {
	input.environment.require.approval
	some a in input.artifacts
	not a.allowed
	a.digest != ""
	a.approval == null
	msg := violation(sprintf("%s: image %s %s (required in %s)", [subject(a), a.image, approval_problem(a.approvals, env.name), env.name]), "approval", "approval")
}

# Warn a day ahead when the approval in force is about to expire.
warn contains msg if {
	input.environment.require.approval
	some a in input.artifacts
	not a.allowed
	expires := time.parse_rfc3339_ns(a.approval.expires_at)
	expires - time.now_ns() < 86400000000000 # 24 hours
	msg := sprintf("%s: image %s: its release approval for %s expires at %s", [subject(a), a.image, env.name, a.approval.expires_at])
}

# approval_problem explains why no approval is in force, from the most
# recent decision.
approval_problem(approvals, env_name) := sprintf("has no release approval for %s", [env_name]) if {
	count(approvals) == 0
} else := sprintf("has no valid release approval for %s: it was rejected by %s at %s: %s", [env_name, last.approver, last.approved_at, last.reason]) if {
	last := approvals[count(approvals) - 1]
	last.decision == "rejected"
} else := sprintf("has no valid release approval for %s: the approval by %s expired at %s", [env_name, last.approver, last.expires_at]) if {
	last := approvals[count(approvals) - 1]
	time.parse_rfc3339_ns(last.expires_at) <= time.now_ns()
} else := sprintf("has no valid release approval for %s: none is unexpired without a later rejection", [env_name])

# verified_passed holds when the latest attestation of the name is signed by
# a trusted key and passed.
verified_passed(a, name) if {
	att := a.latest_attestations[name]
	att.verified
	att.passed
}

verified_problem(a, name) := sprintf("has no attestation %q signed by a trusted key", [name]) if {
	not a.latest_attestations[name]
} else := sprintf("has no attestation %q signed by a trusted key: the latest (id %d, reported by %s) is not signed by one", [name, att.id, att.reported_by]) if {
	att := a.latest_attestations[name]
	not att.verified
} else := sprintf("has no passed attestation %q: the latest signed one (id %d, key %s) failed", [name, att.id, att.key_id]) if {
	att := a.latest_attestations[name]
}

violation(msg, rule, requirement) := {"msg": msg, "rule": rule, "requirement": requirement}

subject(a) := sprintf("%s %q", [container_label[a.container_type], a.container])

container_label := {"container": "container", "init": "init container", "ephemeral": "ephemeral container"}
