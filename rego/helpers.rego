# Vouch built-in admission policy: shared definitions.
#
# The policy decides whether the images of a Kubernetes workload may run in
# an environment, from the evidence CI reported for them. Each rule lives in
# its own file and is configured from the environment (input.environment:
# require, mode, freeze), so the common rules need no Rego. docs/policy.md
# describes the input document and each rule.
#
# A rule adds a violation to `deny` (the change is refused, or in warn and
# audit modes admitted and journaled) or a message to `warn` (kubectl prints
# it). A violation is {"msg", "rule", "requirement"}: the message names the
# container, the image and exactly what is missing, so that the person
# deploying can act; rule and requirement name what failed, for `vouch
# assert` and replay. Plain strings work too, as in Gatekeeper.
#
# Images on the environment's allow-list (artifact.allowed) are exempt from
# every rule; the journal records every use.
package vouch.admission

# env is the environment the change is decided for. A rule's first
# expression tests input.environment directly (input.environment.require.digest
# == true) rather than env: OPA's rule index then leaves out the rules of
# requirements that are off without evaluating them.
env := input.environment

violation(msg, rule, requirement) := {"msg": msg, "rule": rule, "requirement": requirement}

subject(a) := sprintf("%s %q", [container_label[a.container_type], a.container])

container_label := {"container": "container", "init": "init container", "ephemeral": "ephemeral container"}

# checked are the artifacts the environment's requirements apply to: all
# but the images on its allow-list. OPA computes the set once per decision.
checked contains a if {
	some a in input.artifacts
	not a.allowed
}
