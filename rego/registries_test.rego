package vouch.admission_test

registries_env(patterns) := {"name": "prod", "require": {"registries": patterns}}

test_image_from_an_allowed_registry_is_admitted if {
	d := decide(registries_env(["registry.example.com/*"]), [artifact({})])
	d.deny == set()
}

test_a_registry_host_allows_all_its_repositories if {
	d := decide(registries_env(["registry.example.com"]), [artifact({})])
	d.deny == set()
}

test_image_from_another_registry_is_denied if {
	d := decide(registries_env(["registry.example.com/platform/*", "ghcr.io/acme/*"]), [artifact({})])
	d.deny == {sprintf(`container "web": image %s comes from registry.example.com/app, which is not an allowed registry in prod (allowed: registry.example.com/platform/*, ghcr.io/acme/*)`, [image])}
	d.unmet == {"registries"}
}

test_a_host_pattern_does_not_match_a_longer_host if {
	d := decide(registries_env(["registry.example"]), [artifact({})])
	count(d.deny) == 1
}

test_allow_listed_images_skip_the_registry_rule if {
	d := decide(registries_env(["registry.example.com/*"]), [artifact(object.union(no_evidence, {"image": "registry.k8s.io/pause:3.10", "name": "registry.k8s.io/pause", "digest": "", "allowed": true}))])
	d.deny == set()
}
