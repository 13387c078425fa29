package vouch.admission_test

frozen := {"name": "prod", "require": {}, "freeze": {"active": true, "reason": "year-end freeze", "ends_at": "2027-01-03T00:00:00Z"}}

test_change_during_a_freeze_is_denied if {
	d := decide(frozen, [artifact({})])
	d.deny == {sprintf(`container "web": image %s: prod is in a change freeze until 2027-01-03T00:00:00Z (year-end freeze); only changes with an emergency release approval may go in`, [image])}
	d.unmet == {"no change freeze"}
}

test_emergency_approval_passes_a_freeze if {
	emergency := object.union(approval, {"emergency": true})
	d := decide(frozen, [artifact({"approvals": [approval, emergency], "approval": approval, "approvals_in_force": [approval, emergency]})])
	d.deny == set()
}

test_every_image_needs_the_emergency_approval if {
	emergency := object.union(approval, {"emergency": true})
	d := decide(frozen, [
		artifact({"approvals": [emergency], "approval": emergency, "approvals_in_force": [emergency]}),
		artifact({"container": "sidecar"}),
	])
	count(d.deny) == 1
}

test_no_freeze_when_inactive if {
	d := decide(object.union(frozen, {"freeze": {"active": false}}), [artifact({})])
	d.deny == set()
}
