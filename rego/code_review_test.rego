package vouch.admission_test

review_env := {"name": "prod", "require": {"code_review": {"attestation": "code-review", "min_approvals": 2}}}

review(type, approvals) := {"id": 12, "name": "code-review", "type": type, "passed": true, "approvals": approvals, "merged_into": "main", "review_problem": "", "verified": false, "key_id": "", "reported_by": "ci", "reported_at": "2026-11-24T10:30:00Z"}

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
	# vouch attest generic --name code-review --passed=true is not a review from the forge.
	x := object.remove(review("generic", 0), ["approvals", "merged_into", "review_problem"])
	d := decide(review_env, [reviewed(x)])
	d.deny == {sprintf(`container "web": image %s has a "code-review" attestation of type "generic", not a review from the forge (vouch attest pr) (code review by 2 person(s) other than the author is required in prod)`, [image])}
}

test_code_review_off_by_default if {
	d := decide({"name": "prod", "require": {}}, [artifact({"latest_attestations": {}})])
	d.deny == set()
}

test_a_review_of_another_build if {
	x := object.union(review("pull-request", 3), {"review_problem": "the review is of commit 1111, but the digest was built from commit 2222"})
	d := decide(review_env, [reviewed(x)])
	d.deny == {sprintf(`container "web": image %s has a review (12) that is not about this build: the review is of commit 1111, but the digest was built from commit 2222 (code review by 2 person(s) other than the author is required in prod)`, [image])}
}

test_missing_approvals_deny if {
	# A review input without the count (a hand-made input) fails closed.
	x := object.remove(review("pull-request", 3), ["approvals"])
	d := decide(review_env, [reviewed(x)])
	d.unmet == {"code review"}
}

test_merged_into_a_listed_branch if {
	env := {"name": "prod", "require": {"code_review": {"attestation": "code-review", "min_approvals": 1, "branches": ["main", "release"]}}}
	decide(env, [reviewed(review("pull-request", 1))]).deny == set()
	d := decide(env, [reviewed(object.union(review("pull-request", 1), {"merged_into": "feature-x"}))])
	d.deny == {sprintf(`container "web": image %s was reviewed in a request merged into "feature-x", not into main or release (review 12) (code review by 1 person(s) other than the author is required in prod)`, [image])}
}

test_verified_requires_the_forge_read_by_vouch if {
	env := {"name": "prod", "require": {"code_review": {"attestation": "code-review", "min_approvals": 1, "verified": true}}}
	d := decide(env, [reviewed(review("pull-request", 2))])
	d.deny == {sprintf(`container "web": image %s has a review (12) reported by ci, not one Vouch read from the forge itself (POST /api/v1/reviews, vouch attest pr --server-side) (code review by 1 person(s) other than the author is required in prod)`, [image])}
	by_vouch := object.union(review("pull-request", 2), {"verified": true, "key_id": "forge:github"})
	decide(env, [reviewed(by_vouch)]).deny == set()
}
