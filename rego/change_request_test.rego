package vouch.admission_test

import data.vouch.admission

change_env := {"name": "prod", "require": {"change_request": {"attestation": "change-request", "states": ["scheduled", "implement"]}}}

# The window holds now (2026-11-25T12:00:00Z).
change_request(overrides) := object.union(
	{
		"id": 20, "name": "change-request", "type": "change-request", "passed": true, "verified": true, "key_id": "change:servicenow",
		"reported_by": "ci", "reported_at": "2026-11-25T09:00:00Z",
		"change": {"number": "CHG0030001", "state": "implement", "approval": "approved", "planned_start": "2026-11-25T10:00:00Z", "planned_end": "2026-11-25T14:00:00Z"},
	},
	overrides,
)

changed(x) := artifact({"latest_attestations": {"change-request": x}})

change_denial(problem) := sprintf("container \"web\": image %s %s (an approved change request, in its window, is required in prod)", [image, problem])

test_change_in_its_window if {
	every state in ["scheduled", "implement"] {
		d := decide(change_env, [changed(change_request({"change": {"state": state}}))])
		d.deny == set()
	}
}

test_no_change_request if {
	d := decide(change_env, [artifact({"latest_attestations": {}})])
	d.deny == {change_denial(`has no "change-request" attestation: have Vouch read the change request with vouch attest change CHG… --name change-request`)}
	d.unmet == {"change request"}
}

test_a_pipelines_word_does_not_count if {
	# vouch attest generic --name change-request --passed=true, or a signed statement of that name.
	every x in [
		object.remove(change_request({"type": "generic", "verified": false, "key_id": ""}), ["change"]),
		change_request({"key_id": "ci-key"}),
	] {
		d := decide(change_env, [changed(x)])
		d.deny == {change_denial(`has a "change-request" attestation (20) that is not a change request Vouch read from the change system (vouch attest change)`)}
	}
}

test_change_not_approved if {
	d := decide(change_env, [changed(change_request({"passed": false, "change": {"approval": "requested"}}))])
	d.deny == {change_denial(`has change request CHG0030001 with approval "requested", not approved (read 2026-11-25T09:00:00Z)`)}
}

test_change_in_another_state if {
	every state in ["authorize", "review", "closed", "canceled"] {
		d := decide(change_env, [changed(change_request({"change": {"state": state}}))])
		d.deny == {change_denial(sprintf(`has change request CHG0030001 in state %q, not scheduled or implement (read 2026-11-25T09:00:00Z; read it again with vouch attest change once it moves on)`, [state]))}
	}
}

test_change_outside_its_window if {
	early := change_request({"change": {"planned_start": "2026-11-25T18:00:00Z", "planned_end": "2026-11-25T22:00:00Z"}})
	decide(change_env, [changed(early)]).deny == {change_denial("has change request CHG0030001, whose window opens at 2026-11-25T18:00:00Z")}
	late := change_request({"change": {"planned_start": "2026-11-24T18:00:00Z", "planned_end": "2026-11-25T12:00:00Z"}})
	decide(change_env, [changed(late)]).deny == {change_denial("has change request CHG0030001, whose window closed at 2026-11-25T12:00:00Z")}
	x := change_request({})
	unplanned := object.union(object.remove(x, ["change"]), {"change": object.remove(x.change, ["planned_start", "planned_end"])})
	decide(change_env, [changed(unplanned)]).deny == {change_denial("has change request CHG0030001, which has no planned start and end: plan its window")}
}

test_change_unreadable if {
	x := change_request({"change": {"problem": "payload: a change request names its number, state and approval"}})
	decide(change_env, [changed(x)]).deny == {change_denial("has change request CHG0030001, which Vouch could not read: payload: a change request names its number, state and approval")}
}

test_states_are_the_environments if {
	env := {"name": "prod", "require": {"change_request": {"attestation": "change-request", "states": ["implement"]}}}
	d := decide(env, [changed(change_request({"change": {"state": "scheduled"}}))])
	d.deny == {change_denial(`has change request CHG0030001 in state "scheduled", not implement (read 2026-11-25T09:00:00Z; read it again with vouch attest change once it moves on)`)}
}

test_not_required_not_checked if {
	decide({"name": "prod", "require": {}}, [artifact({"latest_attestations": {}})]).deny == set()
}

ci_env := {"name": "prod", "require": {"change_request": {"attestation": "change-request", "states": ["scheduled", "implement"], "match_configuration_item": true}}}

# The change request rule's denials of a Deployment naming configuration
# item ci ("" for none).
ci_denials(ci, x) := ns_ci_denials({}, ci, x)

# ... in a namespace with annotations.
ns_ci_denials(ns_annotations, ci, x) := {v.msg | some v in violations; v.rule == "change-request"} if {
	doc := {
		"environment": ci_env, "request": {"namespace": "payments"},
		"namespace": {"name": "payments", "labels": {}, "annotations": ns_annotations},
		"workload": {"kind": "Deployment", "name": "web", "configuration_item": ci}, "artifacts": [changed(x)],
	}
	violations := admission.deny with input as doc with time.now_ns as now
}

for_cis(cis) := change_request({"change": {"configuration_items": cis}})

test_change_for_the_workloads_configuration_item if {
	ci_denials("Payments API", for_cis(["Payments API", "payments-db"])) == set()
	# CMDB names are compared without regard to case.
	ci_denials("payments-DB", for_cis(["Payments API", "payments-db"])) == set()
}

test_change_for_another_configuration_item if {
	ci_denials("Ledger", for_cis(["Payments API", "payments-db"])) == {change_denial(`has change request CHG0030001, which is not for configuration item "Ledger" (the workload's vouch.dev/configuration-item) but for "Payments API", "payments-db": use a change for it, or add it to the change's affected CIs and read the change again`)}
	ci_denials("Ledger", change_request({})) == {change_denial(`has change request CHG0030001, which is not for configuration item "Ledger" (the workload's vouch.dev/configuration-item) but for no configuration item: use a change for it, or add it to the change's affected CIs and read the change again`)}
}

test_affected_cis_not_all_read if {
	x := change_request({"change": {"configuration_items": ["Payments API"], "configuration_items_problem": "the integration user may not read task_ci: 403"}})
	ci_denials("payments-db", x) == {change_denial(`has change request CHG0030001, which is not for configuration item "payments-db" (the workload's vouch.dev/configuration-item) but for "Payments API" (not all its affected CIs were read: the integration user may not read task_ci: 403): use a change for it, or add it to the change's affected CIs and read the change again`)}
	ci_denials("Payments API", x) == set()
}

test_workload_without_configuration_item if {
	ci_denials("", for_cis(["Payments API"])) == {change_denial("is deployed without naming its configuration item: annotate the Deployment (or its namespace) with vouch.dev/configuration-item: <its name in the CMDB>, which change request CHG0030001 must be for")}
}

test_the_namespace_names_the_configuration_item if {
	ns := {"vouch.dev/configuration-item": " Payments API "}
	x := for_cis(["Payments API", "payments-db"])
	# The namespace's decides; a workload may name the same or none.
	ns_ci_denials(ns, "", x) == set()
	ns_ci_denials(ns, "payments api", x) == set()
	# Not another, even one the change is for.
	ns_ci_denials(ns, "payments-db", x) == {change_denial(`names configuration item "payments-db", but its namespace payments is for "Payments API" (the namespace's vouch.dev/configuration-item): remove the workload's vouch.dev/configuration-item or set it to the namespace's`)}
	ns_ci_denials(ns, "", for_cis(["payments-db"])) == {change_denial(`has change request CHG0030001, which is not for configuration item "Payments API" (the namespace's vouch.dev/configuration-item) but for "payments-db": use a change for it, or add it to the change's affected CIs and read the change again`)}
}

test_configuration_item_not_matched_unless_required if {
	d := decide(change_env, [changed(for_cis(["payments-db"]))])
	d.deny == set()
}
