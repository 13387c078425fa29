# Evidence freshness (require.max_age): the latest attestation of a name is
# at most that old at the time of the decision — e.g. a security scan of
# the last 7 days, since new vulnerabilities are found every day.
package vouch.admission

deny contains violation(msg, "freshness", sprintf("fresh %s", [name])) if {
	input.environment.require.max_age
	some name, max_age in object.get(env.require, "max_age", {})
	some a in checked
	att := a.latest_attestations[name]
	time.now_ns() - made_at_ns(att) > time.parse_duration_ns(max_age)
	[when, remedy] := made_at_text(att)
	msg := sprintf("%s: image %s: the latest attestation %q (id %d) %s, more than %s before this change; %s (required in %s)", [subject(a), a.image, name, att.id, when, max_age, remedy, env.name])
}

# An attestation was made when it was reported or, for a keyless signature
# whose time a log or timestamp authority verified (signed_at), when it was
# signed, if that is earlier: a bundle signed months ago and posted today
# is months old.
made_at_ns(att) := min({time.parse_rfc3339_ns(att.reported_at), time.parse_rfc3339_ns(att.signed_at)}) if {
	att.signed_at
} else := time.parse_rfc3339_ns(att.reported_at)

# made_at_text says when, and how to renew it: posting the same bundle
# again does not make it younger.
made_at_text(att) := [sprintf("was signed at %s", [att.signed_at]), "sign and report a new one"] if {
	time.parse_rfc3339_ns(att.signed_at) < time.parse_rfc3339_ns(att.reported_at)
} else := [sprintf("was reported at %s", [att.reported_at]), "report a new one"]

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
