# Change request (require.change_request): the change is covered by a
# change request of the change management system — approved, in one of
# the states allowed (default scheduled and implement), and with a planned
# window that holds the time of the change — as Vouch read it from the
# system itself (vouch attest change: type change-request, key_id
# "change:<system>"; the latest attestation of the name counts). With
# match_configuration_item, the change is also for the configuration item
# the workload names in its vouch.dev/configuration-item annotation (on the
# object or its pod template: input.workload.configuration_item), or its
# namespace names in the same annotation, which then decides.
package vouch.admission

deny contains violation(msg, "change-request", "change request") if {
	input.environment.require.change_request
	cr := env.require.change_request
	some a in checked
	a.digest != ""
	problem := change_problem(a, cr)
	msg := sprintf("%s: image %s %s (an approved change request, in its window, is required in %s)", [subject(a), a.image, problem, env.name])
}

change_problem(a, cr) := sprintf("has no %q attestation: have Vouch read the change request with vouch attest change CHG… --name %s", [cr.attestation, cr.attestation]) if {
	not a.latest_attestations[cr.attestation]
} else := sprintf("has a %q attestation (%d) that is not a change request Vouch read from the change system (vouch attest change)", [cr.attestation, x.id]) if {
	x := a.latest_attestations[cr.attestation]
	not read_by_vouch(x)
} else := sprintf("has change request %s, which Vouch could not read: %s", [x.change.number, x.change.problem]) if {
	x := a.latest_attestations[cr.attestation]
	object.get(x.change, "problem", "") != ""
} else := sprintf("has change request %s with approval %q, not approved (read %s)", [x.change.number, x.change.approval, x.reported_at]) if {
	x := a.latest_attestations[cr.attestation]
	x.change.approval != "approved"
} else := sprintf("has change request %s in state %q, not %s (read %s; read it again with vouch attest change once it moves on)", [x.change.number, x.change.state, concat(" or ", cr.states), x.reported_at]) if {
	x := a.latest_attestations[cr.attestation]
	not x.change.state in cr.states
} else := sprintf("has change request %s, which has no planned start and end: plan its window", [x.change.number]) if {
	x := a.latest_attestations[cr.attestation]
	object.get(x.change, "planned_start", "") == ""
} else := sprintf("has change request %s, whose window opens at %s", [x.change.number, x.change.planned_start]) if {
	x := a.latest_attestations[cr.attestation]
	time.now_ns() < time.parse_rfc3339_ns(x.change.planned_start)
} else := sprintf("has change request %s, whose window closed at %s", [x.change.number, x.change.planned_end]) if {
	x := a.latest_attestations[cr.attestation]
	time.now_ns() >= time.parse_rfc3339_ns(x.change.planned_end)
} else := sprintf("is deployed without naming its configuration item: annotate the %s (or its namespace) with %s: <its name in the CMDB>, which change request %s must be for", [input.workload.kind, ci_annotation, x.change.number]) if {
	x := a.latest_attestations[cr.attestation]
	cr.match_configuration_item
	the_ci == ""
} else := sprintf("names configuration item %q, but its namespace %s is for %q (the namespace's %s): remove the workload's %s or set it to the namespace's", [workload_ci, input.request.namespace, namespace_ci, ci_annotation, ci_annotation]) if {
	cr.match_configuration_item
	namespace_ci != ""
	workload_ci != ""
	lower(workload_ci) != lower(namespace_ci)
} else := sprintf("has change request %s, which is not for configuration item %q (%s %s) but for %s%s: use a change for it, or add it to the change's affected CIs and read the change again", [x.change.number, the_ci, ci_source, ci_annotation, change_cis(x.change), unread_cis(x.change)]) if {
	x := a.latest_attestations[cr.attestation]
	cr.match_configuration_item
	not lower(the_ci) in {lower(ci) | some ci in object.get(x.change, "configuration_items", [])}
}

ci_annotation := "vouch.dev/configuration-item"

# workload_ci is the configuration item the workload names (on the object or
# its pod template), namespace_ci the one its namespace names — set by those
# who may edit namespaces, not by the deployer; "" when none.
workload_ci := object.get(input.workload, "configuration_item", "")

namespace_ci := trim_space(object.get(object.get(object.get(input, "namespace", {}), "annotations", {}), ci_annotation, ""))

# the_ci is the configuration item the change must be for: the namespace's,
# else the workload's.
the_ci := namespace_ci if {
	namespace_ci != ""
} else := workload_ci

ci_source := "the namespace's" if {
	namespace_ci != ""
} else := "the workload's"

change_cis(c) := concat(", ", [sprintf("%q", [ci]) | some ci in c.configuration_items]) if {
	count(object.get(c, "configuration_items", [])) > 0
} else := "no configuration item"

unread_cis(c) := sprintf(" (not all its affected CIs were read: %s)", [c.configuration_items_problem]) if {
	object.get(c, "configuration_items_problem", "") != ""
} else := ""

read_by_vouch(x) if {
	x.type == "change-request"
	x.verified
	startswith(x.key_id, "change:")
	x.change
}
