# Four eyes (require.four_eyes): the person who approved the release is not
# the author of the commit it was built from. The author comes from the
# artifact's provenance (vouch artifact report --author, or CI's variables);
# the approver is the person the approving token belongs to: its
# identities (vouch token create --identity), emails and logins in lower
# case, recorded with the approval. A token name says nothing about a
# person, so an approval by a token without identities does not count.
# Without a recorded author the rule cannot be checked, and refuses.
package vouch.admission

deny contains violation(msg, "four-eyes", "four eyes") if {
	input.environment.require.four_eyes == true
	some a in checked
	a.digest != ""
	problem := four_eyes_problem(a)
	msg := sprintf("%s: image %s %s (four eyes are required in %s)", [subject(a), a.image, problem, env.name])
}

four_eyes_problem(a) := "has no release approval, so nobody but its author vouched for it" if {
	not env.require.approval # that rule explains a missing approval already
	a.approval == null
} else := "cannot be checked for four eyes: its build did not report the commit author" if {
	a.approval != null
	not author(a)
} else := sprintf("was approved only by tokens that name no person (%s), so four eyes cannot be checked: approve with a token created with --identity", [concat(", ", approvers(a))]) if {
	a.approval != null
	not some_person_approved(a)
} else := sprintf("was approved only by %s, who wrote commit %s it was built from; another person must approve", [concat(", ", approvers_naming_a_person(a)), a.provenance.git_commit]) if {
	a.approval != null
	not approved_by_another(a, author(a))
}

# approvers are the names of the tokens whose approvals are in force.
approvers(a) := sort({x.approver | some x in a.approvals_in_force})

approvers_naming_a_person(a) := sort({x.approver |
	some x in a.approvals_in_force
	count(identities(x)) > 0
})

some_person_approved(a) if {
	some x in a.approvals_in_force
	count(identities(x)) > 0
}

approved_by_another(a, author) if {
	some x in a.approvals_in_force
	ids := identities(x)
	count(ids) > 0
	not lower(author) in ids
}

identities(x) := x.approver_identities if is_array(x.approver_identities)

else := []

author(a) := x if {
	x := a.provenance.author
	x != ""
}
