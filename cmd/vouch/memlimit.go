package main

import (
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// memoryLimitShare is the part of the container's memory limit the Go
// runtime is told it may use. The rest is for memory the container's
// limit counts and the runtime does not manage: above all the pages of
// the executable, 60–90 MB of vouch's resident set (docs/benchmarks.md).
const memoryLimitShare = 0.8

// setMemoryLimit gives the Go runtime a soft memory limit
// (runtime/debug.SetMemoryLimit) of memoryLimitShare of the container's
// memory limit, and returns both; zeros when GOMEMLIMIT is set or there
// is no limit. vouch serve runs with GOGC=400, letting the heap grow to
// five times what is live: near the container's limit the GC must
// collect harder instead of the kernel killing the pod. Go 1.26 sets
// GOMAXPROCS from the container's CPU limit but not this.
func setMemoryLimit() (set, container int64) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, 0
	}
	set, container = memoryLimit(os.LookupEnv, string(self), os.DirFS("/sys/fs/cgroup"))
	if set > 0 {
		debug.SetMemoryLimit(set)
	}
	return set, container
}

// memoryLimit returns the soft memory limit to set and the container's
// limit it is derived from (see setMemoryLimit).
func memoryLimit(lookupEnv func(string) (string, bool), self string, sys fs.FS) (set, container int64) {
	if v, ok := lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return 0, 0 // the operator's word, "off" included (empty is unset, as for the runtime)
	}
	container = cgroupMemoryLimit(self, sys)
	return int64(float64(container) * memoryLimitShare), container
}

// cgroupMemoryLimit returns the tightest memory limit of the process's
// cgroups and their ancestors: self is the text of /proc/self/cgroup and
// sys the cgroup file system (/sys/fs/cgroup), where cgroup v2 keeps
// memory.max and v1 memory/memory.limit_in_bytes. In a container the
// cgroup's own directory may not be visible under its host path: walking
// up to the root finds the limit mounted there. 0 means no limit.
func cgroupMemoryLimit(self string, sys fs.FS) int64 {
	var limit int64
	for _, line := range strings.Split(self, "\n") {
		id, controllers, cgroup, ok := cutCgroupLine(line)
		if !ok {
			continue
		}
		var dir, file string
		switch {
		case id == "0" && controllers == "":
			dir, file = ".", "memory.max"
		case slices.Contains(strings.Split(controllers, ","), "memory"):
			dir, file = "memory", "memory.limit_in_bytes"
		default:
			continue
		}
		for p := path.Clean("/" + cgroup); ; p = path.Dir(p) {
			b, err := fs.ReadFile(sys, path.Join(dir, p[1:], file))
			// "max" (v2) and a value near 2^63 (v1) mean no limit.
			if v, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && perr == nil && v > 0 && v < 1<<62 && (limit == 0 || v < limit) {
				limit = v
			}
			if p == "/" {
				break
			}
		}
	}
	return limit
}

// cutCgroupLine splits a line of /proc/self/cgroup,
// hierarchy-ID:controllers:path.
func cutCgroupLine(line string) (id, controllers, cgroup string, ok bool) {
	id, rest, ok1 := strings.Cut(line, ":")
	controllers, cgroup, ok2 := strings.Cut(rest, ":")
	return id, controllers, cgroup, ok1 && ok2
}
