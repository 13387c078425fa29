package webhook

import (
	"testing"
)

func TestParseImage(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		ref     string
		want    Image
		wantErr bool
	}{
		{ref: "nginx", want: Image{Name: "docker.io/library/nginx"}},
		{ref: "nginx:1.27", want: Image{Name: "docker.io/library/nginx", Tag: "1.27"}},
		{ref: "team/app:v2", want: Image{Name: "docker.io/team/app", Tag: "v2"}},
		{ref: "docker.io/library/nginx@" + d, want: Image{Name: "docker.io/library/nginx", Digest: d}},
		{ref: "index.docker.io/team/app", want: Image{Name: "docker.io/team/app"}},
		{ref: "registry.example.com/team/app:1.0@" + d, want: Image{Name: "registry.example.com/team/app", Tag: "1.0", Digest: d}},
		{ref: "localhost:5000/app@" + d, want: Image{Name: "localhost:5000/app", Digest: d}},
		{ref: "localhost/app", want: Image{Name: "localhost/app"}},
		{ref: "[::1]:5000/app:x", want: Image{Name: "[::1]:5000/app", Tag: "x"}},
		{ref: "registry.k8s.io/pause:3.10", want: Image{Name: "registry.k8s.io/pause", Tag: "3.10"}},
		{ref: "gcr.io/distroless/static-debian12:nonroot", want: Image{Name: "gcr.io/distroless/static-debian12", Tag: "nonroot"}},
		{ref: "", wantErr: true},
		{ref: "Registry/app", want: Image{Name: "Registry/app"}}, // an upper-case first component is a registry, as in Docker
		{ref: "team/App", wantErr: true},
		{ref: "app@sha256:abc", wantErr: true},
		{ref: "app@sha256:" + "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", wantErr: true},
		{ref: "app:bad tag", wantErr: true},
		{ref: "app//x", wantErr: true},
		{ref: "app:", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseImage(tt.ref)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseImage(%q) error = %v, wantErr %v", tt.ref, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			continue
		}
		tt.want.Ref = tt.ref
		if got != tt.want {
			t.Errorf("ParseImage(%q) = %+v, want %+v", tt.ref, got, tt.want)
		}
	}
}

func TestAllowPatterns(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"registry.k8s.io/pause", "registry.k8s.io/pause", true},
		{"registry.k8s.io/pause", "registry.k8s.io/pause2", false},
		{"nginx", "docker.io/library/nginx", true},
		{"team/*", "docker.io/team/app", true},
		{"registry.k8s.io/*", "registry.k8s.io/sig-storage/csi-node-driver-registrar", true},
		{"registry.k8s.io/*", "registry.k8s.io.evil.com/x", false},
		{"*.example.com/base/*", "eu.example.com/base/alpine", true},
		{"*", "anything.example/x", true},
		{"ngin*", "docker.io/library/nginx", true},
	}
	for _, tt := range tests {
		if got := globMatch(normalizePattern(tt.pattern), tt.name); got != tt.want {
			t.Errorf("allow pattern %q (normalised %q) matches %q = %v, want %v", tt.pattern, normalizePattern(tt.pattern), tt.name, got, tt.want)
		}
	}
}
