# Allowed registries (require.registries): images come only from the listed
# repositories. A pattern's '*' matches any characters, '/' included; a
# pattern without '*' or '/' names a whole registry host.
package vouch.admission

deny contains violation(msg, "registries", "registries") if {
	input.environment.require.registries
	count(input.environment.require.registries) > 0
	some a in checked
	not registry_allowed(a.name)
	msg := sprintf("%s: image %s comes from %s, which is not an allowed registry in %s (allowed: %s)", [subject(a), a.image, a.name, env.name, concat(", ", env.require.registries)])
}

registry_allowed(name) if {
	some p in env.require.registries
	glob.match(p, [], name)
}

registry_allowed(name) if {
	some p in env.require.registries
	not contains(p, "*")
	not contains(p, "/")
	startswith(name, concat("", [p, "/"]))
}
