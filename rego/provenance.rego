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

# Source (require.source): the build report names where the bytes came
# from — a repository and a commit. A report with a name and a digest
# alone says nothing about how the artifact got there.
deny contains violation(msg, "source", "source") if {
	input.environment.require.source == true
	some a in checked
	a.digest != ""
	a.provenance != null
	missing := [field | some field in ["repository", "git_commit"]; object.get(a.provenance, field, "") == ""]
	count(missing) > 0
	msg := sprintf("%s: image %s: its build report names no %s, so where it was built from is unknown; report it from CI or with --repository and --commit (required in %s)", [subject(a), a.image, concat(" or ", [source_word(f) | some f in missing]), env.name])
}

# Without require.provenance, a missing build is reported here.
deny contains violation(msg, "source", "source") if {
	input.environment.require.source == true
	not env.require.provenance
	some a in checked
	a.digest != ""
	a.provenance == null
	msg := sprintf("%s: image %s has no provenance: no build with this digest was reported to Vouch, so its source is unknown (required in %s)", [subject(a), a.image, env.name])
}

source_word("git_commit") := "commit"

source_word("repository") := "repository"
