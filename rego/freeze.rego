# Change freezes (freeze: in the environment): while a freeze window is
# active, changes are refused unless every image has an emergency release
# approval in force (vouch approve --emergency). Scaling is not a change
# Vouch sees (it goes through the scale subresource).
package vouch.admission

deny contains violation(msg, "freeze", "no change freeze") if {
	input.environment.freeze.active == true
	some a in checked
	not emergency_approved(a)
	msg := sprintf("%s: image %s: %s is in a change freeze until %s (%s); only changes with an emergency release approval may go in", [subject(a), a.image, env.name, env.freeze.ends_at, env.freeze.reason])
}

emergency_approved(a) if {
	some x in a.approvals_in_force
	x.emergency
}
