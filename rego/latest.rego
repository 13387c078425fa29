# No :latest (require.no_latest): an image neither pinned by digest nor
# tagged with a version (the latest tag, or no tag at all) is refused: what
# it runs changes without a deployment.
package vouch.admission

deny contains violation(msg, "no-latest", "no latest") if {
	input.environment.require.no_latest == true
	some a in checked
	a.digest == ""
	a.tag in {"latest", ""}
	msg := sprintf("%s: image %s uses the latest tag, which changes under a running workload; deploy a versioned tag or a digest (required in %s)", [subject(a), a.image, env.name])
}
