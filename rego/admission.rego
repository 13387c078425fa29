# Vouch built-in admission policy.
#
# Decides whether the images of a Kubernetes workload may run in an
# environment, from the evidence CI reported for them. The environment's
# requirements come from Vouch's configuration (input.environment.require),
# so the common rules need no Rego. See docs/policy.md for the input document.
#
# Each rule adds a message to `deny` (the change is refused) or `warn` (it is
# admitted and kubectl prints the message). Messages name the container, the
# image and exactly what is missing, so that the person deploying can act.
package vouch.admission

env := input.environment

required := env.require

# Images on the environment's allow-list are exempt; the journal records
# every use.
checked contains a if {
	some a in input.artifacts
	not a.allowed
}

deny contains msg if {
	required.digest
	some a in checked
	a.digest == ""
	msg := sprintf("%s: image %s is not pinned by digest (required in %s); deploy it as %s@sha256:<digest>", [subject(a), a.image, env.name, a.name])
}

deny contains msg if {
	required.provenance
	not required.digest
	some a in checked
	a.digest == ""
	msg := sprintf("%s: image %s is not pinned by digest, so its provenance cannot be checked (provenance is required in %s)", [subject(a), a.image, env.name])
}

deny contains msg if {
	required.provenance
	some a in checked
	a.digest != ""
	a.provenance == null
	msg := sprintf("%s: image %s has no provenance: no build of %s was reported to Vouch (required in %s)", [subject(a), a.image, a.digest, env.name])
}

deny contains msg if {
	some name in required.attestations
	some a in checked
	a.digest != ""
	not latest_attestation(a, name)
	msg := sprintf("%s: image %s has no passed attestation %q (required in %s)", [subject(a), a.image, name, env.name])
}

deny contains msg if {
	some name in required.attestations
	some a in checked
	att := latest_attestation(a, name)
	not att.passed
	msg := sprintf("%s: image %s has no passed attestation %q: the latest (id %d, reported %s by %s) failed (required in %s)", [subject(a), a.image, name, att.id, att.reported_at, att.reported_by, env.name])
}

deny contains msg if {
	required.approval
	some a in checked
	a.digest != ""
	count(a.approvals) == 0
	msg := sprintf("%s: image %s has no release approval for %s (required in %s)", [subject(a), a.image, env.name, env.name])
}

deny contains msg if {
	required.approval
	some a in checked
	count(a.approvals) > 0
	not approved(a)
	msg := sprintf("%s: image %s has no valid release approval for %s: %s (required in %s)", [subject(a), a.image, env.name, approval_problem(a), env.name])
}

# Warn a day ahead when the last valid approval is about to expire.
warn contains msg if {
	required.approval
	some a in checked
	valid := valid_approvals(a)
	count(valid) > 0
	every ap in valid {
		ap.expires_at
	}
	last := max({time.parse_rfc3339_ns(ap.expires_at) | some ap in valid})
	last - time.now_ns() < 86400000000000 # 24 hours
	msg := sprintf("%s: image %s: its release approval for %s expires at %s", [subject(a), a.image, env.name, time.format(last)])
}

# latest_attestation is the most recent attestation named `name`; a later
# run of the same check supersedes an earlier one.
latest_attestation(a, name) := atts[count(atts) - 1] if {
	atts := [att | some att in a.attestations; att.name == name]
	count(atts) > 0
}

approved(a) if count(valid_approvals(a)) > 0

# An approval is valid while unexpired and not followed by a rejection.
valid_approvals(a) := {ap |
	some ap in a.approvals
	ap.decision == "approved"
	not expired(ap)
	not rejected_after(a, ap)
}

expired(ap) if time.parse_rfc3339_ns(ap.expires_at) <= time.now_ns()

rejected_after(a, ap) if {
	some r in a.approvals
	r.decision == "rejected"
	time.parse_rfc3339_ns(r.approved_at) >= time.parse_rfc3339_ns(ap.approved_at)
}

# approval_problem explains the most recent decision for the environment.
approval_problem(a) := sprintf("it was rejected by %s at %s: %s", [last.approver, last.approved_at, last.reason]) if {
	last := a.approvals[count(a.approvals) - 1]
	last.decision == "rejected"
} else := sprintf("the approval by %s expired at %s", [last.approver, last.expires_at]) if {
	last := a.approvals[count(a.approvals) - 1]
	expired(last)
} else := "no unexpired approval without a later rejection"

subject(a) := sprintf("container %q", [a.container]) if a.container_type == "container"

subject(a) := sprintf("init container %q", [a.container]) if a.container_type == "init"

subject(a) := sprintf("ephemeral container %q", [a.container]) if a.container_type == "ephemeral"
