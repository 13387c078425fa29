# Evidence freshness (require.max_age): the latest attestation of a name is
# at most that old at the time of the decision — e.g. a security scan of
# the last 7 days, since new vulnerabilities are found every day.
package vouch.admission

deny contains violation(msg, "freshness", sprintf("fresh %s", [name])) if {
	input.environment.require.max_age
	some name, max_age in object.get(env.require, "max_age", {})
	some a in checked
	att := a.latest_attestations[name]
	time.now_ns() - time.parse_rfc3339_ns(att.reported_at) > time.parse_duration_ns(max_age)
	msg := sprintf("%s: image %s: the latest attestation %q (id %d) was reported at %s, more than %s before this change; report a new one (required in %s)", [subject(a), a.image, name, att.id, att.reported_at, max_age, env.name])
}

# A missing attestation is reported here only when no other rule requires
# it already.
deny contains violation(msg, "freshness", sprintf("fresh %s", [name])) if {
	input.environment.require.max_age
	some name, max_age in object.get(env.require, "max_age", {})
	not name in object.get(env.require, "attestations", [])
	not name in object.get(env.require, "verified_attestations", [])
	some a in checked
	a.digest != ""
	not a.latest_attestations[name]
	msg := sprintf("%s: image %s has no attestation %q (one at most %s old is required in %s)", [subject(a), a.image, name, max_age, env.name])
}
