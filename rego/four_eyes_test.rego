package vouch.admission_test

four_eyes_env := {"name": "prod", "require": {"approval": true, "four_eyes": true}}

authored_by(author) := object.union(provenance, {"author": author, "git_commit": "0123abc"})

# alice's token names her: her email and her login.
alice_approval := object.union(approval, {"approver": "rm-alice", "approver_identities": ["alice@example.com", "alice"]})

approved_by(x) := {"approval": x, "approvals": [x], "approvals_in_force": [x]}

test_approved_by_someone_else if {
	d := decide(four_eyes_env, [artifact(object.union(approved_by(alice_approval), {"provenance": authored_by("bob@example.com")}))])
	d.deny == set()
}

test_approved_by_the_author_is_denied if {
	every author in ["Alice", "alice@EXAMPLE.com"] {
		d := decide(four_eyes_env, [artifact(object.union(approved_by(alice_approval), {"provenance": authored_by(author)}))])
		d.deny == {sprintf(`container "web": image %s was approved only by rm-alice, who wrote commit 0123abc it was built from; another person must approve (four eyes are required in prod)`, [image])}
		d.unmet == {"four eyes"}
	}
}

test_a_token_that_names_no_person_does_not_count if {
	# "rm-bob" could be anyone, the author included.
	rm_bob := object.union(approval, {"approver": "rm-bob"})
	d := decide(four_eyes_env, [artifact(object.union(approved_by(rm_bob), {"provenance": authored_by("bob")}))])
	d.deny == {sprintf(`container "web": image %s was approved only by tokens that name no person (rm-bob), so four eyes cannot be checked: approve with a token created with --identity (four eyes are required in prod)`, [image])}
}

test_a_second_approver_satisfies_four_eyes if {
	bob := object.union(approval, {"id": 10, "approver": "rm-bob", "approver_identities": ["bob@example.com"]})
	d := decide(four_eyes_env, [artifact({"provenance": authored_by("alice"), "approval": alice_approval, "approvals": [alice_approval, bob], "approvals_in_force": [alice_approval, bob]})])
	d.deny == set()
}

test_unknown_author_cannot_be_checked if {
	d := decide(four_eyes_env, [artifact(approved_by(alice_approval))])
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
