# Code review (require.code_review): the commit an image was built from
# was merged through a pull or merge request approved by at least
# min_approvals people other than its author, as the forge said when the
# pipeline asked it (vouch attest pr: the latest attestation of the name,
# of type pull-request). The minimum is the environment's: the count is
# compared here, whatever minimum the pipeline judged with.
package vouch.admission

deny contains violation(msg, "code-review", "code review") if {
	input.environment.require.code_review
	cr := env.require.code_review
	some a in checked
	a.digest != ""
	problem := code_review_problem(a, cr)
	msg := sprintf("%s: image %s %s (code review by %d person(s) other than the author is required in %s)", [subject(a), a.image, problem, cr.min_approvals, env.name])
}

code_review_problem(a, cr) := sprintf("has no %q attestation: record the review with vouch attest pr --name %s", [cr.attestation, cr.attestation]) if {
	not a.latest_attestations[cr.attestation]
} else := sprintf("has a %q attestation of type %q, not a review from the forge (vouch attest pr)", [cr.attestation, x.type]) if {
	x := a.latest_attestations[cr.attestation]
	x.type != "pull-request"
} else := sprintf("has no pull or merge request that merged its commit with an approval by someone other than its author (review %d, reported %s by %s, says why)", [x.id, x.reported_at, x.reported_by]) if {
	x := a.latest_attestations[cr.attestation]
	x.approvals == 0
} else := sprintf("was merged with %d approval(s) by people other than the author of its pull request (review %d, reported %s by %s)", [x.approvals, x.id, x.reported_at, x.reported_by]) if {
	x := a.latest_attestations[cr.attestation]
	x.approvals < cr.min_approvals
}
