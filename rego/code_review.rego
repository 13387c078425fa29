# Code review (require.code_review): the commit an image was built from
# was merged through a pull or merge request approved by at least
# min_approvals people other than its author, as the pipeline's vouch
# attest pr reported from the forge (the latest attestation of the name,
# of type pull-request). The review must be about this build — the commit
# and repository it was reported built from — and, when branches are
# given, of a request merged into one of them; with verified, one Vouch
# read from the forge itself (key_id "forge:<name>": POST /reviews), not
# a pipeline's report. The minimum is the environment's, whatever minimum
# the pipeline judged with.
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
} else := sprintf("has a review (%d) reported by %s, not one Vouch read from the forge itself (POST /api/v1/reviews, vouch attest pr --server-side)", [x.id, x.reported_by]) if {
	object.get(cr, "verified", false) == true
	x := a.latest_attestations[cr.attestation]
	not startswith(x.key_id, "forge:")
} else := sprintf("has a review (%d) that is not about this build: %s", [x.id, x.review_problem]) if {
	x := a.latest_attestations[cr.attestation]
	object.get(x, "review_problem", "") != ""
} else := sprintf("has no pull or merge request that merged its commit with an approval by someone other than its author (review %d, reported %s by %s, says why)", [x.id, x.reported_at, x.reported_by]) if {
	x := a.latest_attestations[cr.attestation]
	object.get(x, "approvals", 0) == 0
} else := sprintf("was merged with %d approval(s) by people other than the author of its pull request (review %d, reported %s by %s)", [x.approvals, x.id, x.reported_at, x.reported_by]) if {
	x := a.latest_attestations[cr.attestation]
	x.approvals < cr.min_approvals
} else := sprintf("was reviewed in a request merged into %q, not into %s (review %d)", [x.merged_into, concat(" or ", cr.branches), x.id]) if {
	x := a.latest_attestations[cr.attestation]
	count(object.get(cr, "branches", [])) > 0
	not object.get(x, "merged_into", "") in cr.branches
}
