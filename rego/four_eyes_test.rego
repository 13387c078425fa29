package vouch.admission_test

four_eyes_env := {"name": "prod", "require": {"approval": true, "four_eyes": true}}

authored_by(author) := object.union(provenance, {"author": author, "git_commit": "0123abc"})

test_approved_by_someone_else if {
	d := decide(four_eyes_env, [artifact({"provenance": authored_by("bob@example.com")})])
	d.deny == set()
}

test_approved_by_the_author_is_denied if {
	d := decide(four_eyes_env, [artifact({"provenance": authored_by("Alice")})])
	d.deny == {sprintf(`container "web": image %s was approved only by alice, who wrote commit 0123abc it was built from; another person must approve (four eyes are required in prod)`, [image])}
	d.unmet == {"four eyes"}
}

test_a_second_approver_satisfies_four_eyes if {
	bob := object.union(approval, {"id": 10, "approver": "bob"})
	d := decide(four_eyes_env, [artifact({"provenance": authored_by("alice"), "approvals": [approval, bob], "approvals_in_force": [approval, bob]})])
	d.deny == set()
}

test_unknown_author_cannot_be_checked if {
	d := decide(four_eyes_env, [artifact({})])
	d.deny == {sprintf(`container "web": image %s cannot be checked for four eyes: its build did not report the commit author (four eyes are required in prod)`, [image])}
}

test_four_eyes_without_an_approval_requirement_needs_an_approval if {
	env := {"name": "prod", "require": {"four_eyes": true}}
	d := decide(env, [artifact({"provenance": authored_by("alice"), "approvals": [], "approval": null, "approvals_in_force": []})])
	d.unmet == {"four eyes"}

	# With approval required, the approval rule explains the missing approval alone.
	d2 := decide(four_eyes_env, [artifact({"provenance": authored_by("alice"), "approvals": [], "approval": null, "approvals_in_force": []})])
	d2.unmet == {"approval"}
}
