# Release approval (require.approval): an approval for this environment is
# in force — approved, unexpired, and not followed by a rejection.
package vouch.admission

deny contains violation(msg, "approval", "approval") if {
	input.environment.require.approval == true
	some a in checked
	a.digest != ""
	a.approval == null
	msg := sprintf("%s: image %s %s (required in %s)", [subject(a), a.image, approval_problem(a.approvals, env.name), env.name])
}

# Warn a day ahead when the approval in force is about to expire.
warn contains msg if {
	input.environment.require.approval == true
	some a in checked
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
