# Digest pinning (require.digest): every image is pinned by digest, so
# that what runs is exactly what was built and attested.
package vouch.admission

deny contains violation(msg, "digest", "digest") if {
	input.environment.require.digest == true
	some a in checked
	a.digest == ""
	msg := sprintf("%s: image %s is not pinned by digest (required in %s); deploy it as %s@sha256:<digest>", [subject(a), a.image, env.name, a.name])
}
