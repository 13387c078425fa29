package vouch.admission_test

review_env := {"name": "prod", "require": {"code_review": {"attestation": "code-review", "min_approvals": 2}}}

review(type, approvals) := {"id": 12, "name": "code-review", "type": type, "passed": true, "approvals": approvals, "reported_by": "ci", "reported_at": "2026-11-24T10:30:00Z"}

reviewed(x) := artifact({"latest_attestations": {"code-review": x}})

test_reviewed_by_enough_people if {
	every n in [2, 3] {
		d := decide(review_env, [reviewed(review("pull-request", n))])
		d.deny == set()
	}
}

test_too_few_approvals_whatever_the_pipeline_judged if {
	# The pipeline's --min-approvals 1 passed it; prod asks for 2.
	d := decide(review_env, [reviewed(review("pull-request", 1))])
	d.deny == {sprintf(`container "web": image %s was merged with 1 approval(s) by people other than the author of its pull request (review 12, reported 2026-11-24T10:30:00Z by ci) (code review by 2 person(s) other than the author is required in prod)`, [image])}
	d.unmet == {"code review"}
}

test_pushed_without_review if {
	x := object.union(review("pull-request", 0), {"passed": false})
	d := decide(review_env, [reviewed(x)])
	d.deny == {sprintf(`container "web": image %s has no pull or merge request that merged its commit with an approval by someone other than its author (review 12, reported 2026-11-24T10:30:00Z by ci, says why) (code review by 2 person(s) other than the author is required in prod)`, [image])}
}

test_no_review if {
	d := decide(review_env, [artifact({"latest_attestations": {}})])
	d.deny == {sprintf(`container "web": image %s has no "code-review" attestation: record the review with vouch attest pr --name code-review (code review by 2 person(s) other than the author is required in prod)`, [image])}
}

test_a_review_not_from_the_forge_does_not_count if {
	# vouch attest generic --name code-review --passed=true is a claim, not the forge's answer.
	x := object.remove(review("generic", 0), ["approvals"])
	d := decide(review_env, [reviewed(x)])
	d.deny == {sprintf(`container "web": image %s has a "code-review" attestation of type "generic", not a review from the forge (vouch attest pr) (code review by 2 person(s) other than the author is required in prod)`, [image])}
}

test_code_review_off_by_default if {
	d := decide({"name": "prod", "require": {}}, [artifact({"latest_attestations": {}})])
	d.deny == set()
}
