package vouch.admission_test

test_missing_approval_is_denied if {
	d := decide(prod, [artifact({"approvals": [], "approval": null})])
	d.deny == {sprintf(`container "web": image %s has no release approval for prod (required in prod)`, [image])}
}

test_rejection_is_explained if {
	rejection := {"id": 10, "environment": "prod", "decision": "rejected", "reason": "CVE-2026-1", "approver": "bob", "approved_at": "2026-11-24T12:00:00Z"}
	d := decide(prod, [artifact({"approvals": [approval, rejection], "approval": null})])
	d.deny == {sprintf(`container "web": image %s has no valid release approval for prod: it was rejected by bob at 2026-11-24T12:00:00Z: CVE-2026-1 (required in prod)`, [image])}
}

test_expiry_is_explained if {
	expired := object.union(approval, {"expires_at": "2026-11-25T11:59:59Z"})
	d := decide(prod, [artifact({"approvals": [expired], "approval": null})])
	d.deny == {sprintf(`container "web": image %s has no valid release approval for prod: the approval by alice expired at 2026-11-25T11:59:59Z (required in prod)`, [image])}
}

test_approval_expiring_within_a_day_warns if {
	soon := object.union(approval, {"expires_at": "2026-11-26T06:00:00Z"})
	d := decide(prod, [artifact({"approvals": [soon], "approval": soon})])
	d.deny == set()
	d.warn == {sprintf(`container "web": image %s: its release approval for prod expires at 2026-11-26T06:00:00Z`, [image])}

	later := object.union(approval, {"expires_at": "2026-12-26T06:00:00Z"})
	d2 := decide(prod, [artifact({"approvals": [later], "approval": later})])
	d2.warn == set()
}
