package vouch.admission_test

latest_env := {"name": "dev", "require": {"no_latest": true}}

test_latest_tag_is_denied if {
	d := decide(latest_env, [artifact({"image": "nginx:latest", "name": "docker.io/library/nginx", "tag": "latest", "digest": ""})])
	d.deny == {`container "web": image nginx:latest uses the latest tag, which changes under a running workload; deploy a versioned tag or a digest (required in dev)`}
}

test_no_tag_is_latest if {
	d := decide(latest_env, [artifact({"image": "nginx", "name": "docker.io/library/nginx", "tag": "", "digest": ""})])
	d.unmet == {"no latest"}
}

test_versioned_tag_is_admitted if {
	d := decide(latest_env, [artifact({"image": "nginx:1.27", "name": "docker.io/library/nginx", "tag": "1.27", "digest": ""})])
	d.deny == set()
}

test_latest_pinned_by_digest_is_admitted if {
	d := decide(latest_env, [artifact({"image": sprintf("nginx:latest@%s", [digest]), "tag": "latest"})])
	d.deny == set()
}
