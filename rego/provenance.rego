# Provenance (require.provenance): a build of the image's digest was
# reported to Vouch (vouch artifact report, or SLSA provenance).
package vouch.admission

deny contains violation(msg, "provenance", "provenance") if {
	input.environment.require.provenance == true
	some a in checked
	a.digest != ""
	a.provenance == null
	msg := sprintf("%s: image %s has no provenance: no build with this digest was reported to Vouch (required in %s)", [subject(a), a.image, env.name])
}

deny contains violation(msg, "provenance", "provenance") if {
	input.environment.require.provenance == true
	not env.require.digest
	some a in checked
	a.digest == ""
	msg := sprintf("%s: image %s is not pinned by digest, so its provenance cannot be checked (provenance is required in %s)", [subject(a), a.image, env.name])
}
