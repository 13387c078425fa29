# Four eyes (require.four_eyes): the person who approved the release is not
# the author of the commit it was built from. The author comes from the
# artifact's provenance (vouch artifact report --author, or CI's variables);
# the approver is the identity of the token that approved. Without a
# recorded author the rule cannot be checked, and refuses.
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
} else := sprintf("was approved only by %s, who wrote commit %s it was built from; another person must approve", [a.approval.approver, a.provenance.git_commit]) if {
	a.approval != null
	not approved_by_another(a, author(a))
}

approved_by_another(a, author) if {
	some x in a.approvals_in_force
	lower(x.approver) != lower(author)
}

author(a) := x if {
	x := a.provenance.author
	x != ""
}
