package main

import (
	"testing"
	"testing/fstest"
)

func TestMemoryLimitFromCgroup(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s + "\n")} }
	noEnv := func(string) (string, bool) { return "", false }
	tests := []struct {
		name      string
		self      string
		sys       fstest.MapFS
		env       func(string) (string, bool)
		container int64
	}{
		{
			name: "cgroup v2 in its own namespace (Kubernetes)", self: "0::/\n",
			sys: fstest.MapFS{"memory.max": file("536870912")}, container: 512 << 20,
		},
		{
			name: "cgroup v2 without a limit", self: "0::/\n",
			sys: fstest.MapFS{"memory.max": file("max")},
		},
		{
			name: "cgroup v2, a systemd service under a tighter slice", self: "0::/system.slice/vouch.service\n",
			sys: fstest.MapFS{
				"system.slice/vouch.service/memory.max": file("1073741824"),
				"system.slice/memory.max":               file("805306368"),
				"memory.max":                            file("max"),
			},
			container: 768 << 20,
		},
		{
			name: "cgroup v1, the host path not visible in the container", self: "12:pids:/kubepods/pod1/c1\n4:memory:/kubepods/pod1/c1\n1:cpu,cpuacct:/kubepods/pod1/c1\n",
			sys: fstest.MapFS{"memory/memory.limit_in_bytes": file("268435456")}, container: 256 << 20,
		},
		{
			name: "cgroup v1 without a limit", self: "4:memory:/process_api/40cb69b0\n0::/\n",
			sys: fstest.MapFS{"memory/process_api/40cb69b0/memory.limit_in_bytes": file("9223372036854771712")},
		},
		{
			name: "GOMEMLIMIT set by the operator wins", self: "0::/\n",
			sys: fstest.MapFS{"memory.max": file("536870912")},
			env: func(k string) (string, bool) { return "off", k == "GOMEMLIMIT" },
		},
		{
			name: "GOMEMLIMIT empty is unset", self: "0::/\n",
			sys: fstest.MapFS{"memory.max": file("536870912")}, container: 512 << 20,
			env: func(k string) (string, bool) { return "", k == "GOMEMLIMIT" },
		},
		{
			name: "unreadable lines and values", self: "garbage\n0::/\n",
			sys: fstest.MapFS{"memory.max": file("lots")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			if env == nil {
				env = noEnv
			}
			set, container := memoryLimit(env, tt.self, tt.sys)
			if container != tt.container || set != int64(float64(tt.container)*memoryLimitShare) {
				t.Errorf("memoryLimit = %d of %d, want %d of %d", set, container, int64(float64(tt.container)*memoryLimitShare), tt.container)
			}
		})
	}
}
