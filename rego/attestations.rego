# Named attestations (require.attestations): each is present for the
# digest and its latest report passed — a later run of a check supersedes
# earlier ones.
#
# Verified attestations (require.verified_attestations): the same, and the
# latest is signed by a key trusted for its name (trusted_keys).
package vouch.admission

deny contains violation(msg, "attestation", sprintf("attestation %s", [name])) if {
	some name in env.require.attestations
	some a in checked
	a.digest != ""
	not a.latest_attestations[name]
	msg := sprintf("%s: image %s has no passed attestation %q (required in %s)", [subject(a), a.image, name, env.name])
}

deny contains violation(msg, "attestation", sprintf("attestation %s", [name])) if {
	some name in env.require.attestations
	some a in checked
	att := a.latest_attestations[name]
	not att.passed
	msg := sprintf("%s: image %s has no passed attestation %q: the latest (id %d, reported %s by %s) failed (required in %s)", [subject(a), a.image, name, att.id, att.reported_at, att.reported_by, env.name])
}

deny contains violation(msg, "verified-attestation", sprintf("verified attestation %s", [name])) if {
	input.environment.require.verified_attestations
	some name in env.require.verified_attestations
	some a in checked
	a.digest != ""
	not verified_passed(a, name)
	msg := sprintf("%s: image %s %s (required in %s)", [subject(a), a.image, verified_problem(a, name), env.name])
}

# verified_passed holds when the latest attestation of the name is signed
# by a trusted key and passed.
verified_passed(a, name) if {
	att := a.latest_attestations[name]
	key_signed(att)
	att.passed
}

# key_signed holds for an attestation a trusted key or identity signed.
# What Vouch read from a forge or a change system itself (key_id forge:…,
# change:…) is verified too, but signed by nobody: it passes no signature
# requirement, whatever its name.
key_signed(att) if {
	att.verified
	not startswith(att.key_id, "forge:")
	not startswith(att.key_id, "change:")
}

verified_problem(a, name) := sprintf("has no attestation %q signed by a trusted key", [name]) if {
	not a.latest_attestations[name]
} else := sprintf("has no attestation %q signed by a trusted key: the latest (id %d, reported by %s) is not signed by one", [name, att.id, att.reported_by]) if {
	att := a.latest_attestations[name]
	not key_signed(att)
} else := sprintf("has no passed attestation %q: the latest signed one (id %d, key %s) failed", [name, att.id, att.key_id]) if {
	att := a.latest_attestations[name]
}
