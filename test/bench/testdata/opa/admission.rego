# The plain-OPA alternative to Vouch that `make bench-compare` measures:
# what a platform team would run with kube-mgmt and OPA, evidence loaded as
# data and no journal. It decides as Vouch's built-in policy does for the
# benchmark's environment (prod: require digest, provenance, attestations
# unit-tests and security-scan, approval), and answers an AdmissionReview
# with an AdmissionReview as OPA's default decision, data.system.main,
# served at POST /.
#
# data.evidence.artifacts[digest] is {"artifact", "attestations",
# "approvals"}, as Vouch's evidence API returns it: attestations and
# approvals oldest first.
package system

main := {
	"apiVersion": "admission.k8s.io/v1",
	"kind": "AdmissionReview",
	"response": response,
}

response := {"uid": input.request.uid, "allowed": true} if {
	count(deny) == 0
} else := {"uid": input.request.uid, "allowed": false, "status": {
	"code": 403,
	"reason": "Forbidden",
	"message": concat("\n", deny),
}}

environment := "prod"

required_attestations := ["unit-tests", "security-scan"]

exempt_namespaces := {"kube-system", "vouch-system"}

template_kinds := {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job"}

pod_spec := input.request.object.spec if input.request.kind.kind == "Pod"

pod_spec := input.request.object.spec.template.spec if input.request.kind.kind in template_kinds

pod_spec := input.request.object.spec.jobTemplate.spec.template.spec if input.request.kind.kind == "CronJob"

container_fields := {"containers": "container", "initContainers": "init container", "ephemeralContainers": "ephemeral container"}

# containers are the [label, name, image] of every container the change
# runs: regular, init and ephemeral, of a Pod or a pod template.
containers contains [label, c.name, c.image] if {
	input.request.operation in {"CREATE", "UPDATE"}
	not input.request.namespace in exempt_namespaces
	object.get(input.request, "subResource", "") in {"", "ephemeralcontainers"}
	some field, label in container_fields
	some c in pod_spec[field]
}

digest(image) := d if {
	i := indexof(image, "@")
	i >= 0
	d := substring(image, i + 1, -1)
	regex.match(`^sha256:[0-9a-f]{64}$`, d)
}

deny contains msg if {
	some [label, name, image] in containers
	not digest(image)
	msg := sprintf("%s %q: image %s is not pinned by digest (required in %s)", [label, name, image, environment])
}

deny contains msg if {
	some [label, name, image] in containers
	d := digest(image)
	not has_provenance(d)
	msg := sprintf("%s %q: image %s has no provenance (required in %s)", [label, name, image, environment])
}

deny contains msg if {
	some [label, name, image] in containers
	d := digest(image)
	some att in required_attestations
	not latest_passed(object.get(data.evidence.artifacts, [d, "attestations"], []), att)
	msg := sprintf("%s %q: image %s has no passed attestation %q (required in %s)", [label, name, image, att, environment])
}

deny contains msg if {
	some [label, name, image] in containers
	d := digest(image)
	not approved(object.get(data.evidence.artifacts, [d, "approvals"], []))
	msg := sprintf("%s %q: image %s has no release approval for %s", [label, name, image, environment])
}

has_provenance(d) if data.evidence.artifacts[d].artifact != null

# latest_passed holds when the latest attestation of the name passed: a
# later run of a check supersedes earlier ones.
latest_passed(attestations, name) if {
	runs := [a | some a in attestations; a.name == name]
	runs[count(runs) - 1].passed
}

# approved holds when the latest release decision for the environment
# approved it and has not expired.
approved(approvals) if {
	decisions := [a | some a in approvals; a.environment == environment]
	last := decisions[count(decisions) - 1]
	last.decision == "approved"
	not expired(last)
}

expired(approval) if time.parse_rfc3339_ns(approval.expires_at) <= time.now_ns()
