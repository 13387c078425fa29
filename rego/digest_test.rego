package vouch.admission_test

test_tag_image_is_denied if {
	d := decide(prod, [artifact(object.union(no_evidence, {"image": "registry.example.com/app:1.0", "tag": "1.0", "digest": ""}))])
	d.deny == {`container "web": image registry.example.com/app:1.0 is not pinned by digest (required in prod); deploy it as registry.example.com/app@sha256:<digest>`}
}
