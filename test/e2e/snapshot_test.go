package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-dev/vouch/evidence/fingerprint"
)

// TestSnapshotPaths reports a server's files with "vouch snapshot paths"
// and asks the env commands what ran, what changed and whether it
// complies.
func TestSnapshotPaths(t *testing.T) {
	v := start(t, "")
	reporter := v.cli("token", "create", "--name", "build-1", "--scopes", "snapshots:write")
	ci := v.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	rm := v.cli("token", "create", "--name", "release-manager", "--scopes", "approvals:write")
	auditor := v.cli("token", "create", "--name", "auditor", "--scopes", "audit:read")

	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		d, err := fingerprint.File(p)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	app := write("bin/app", "the app, build 1")
	conf1 := write("etc/app.conf", "port = 80\n")
	if err := os.Symlink("app", filepath.Join(dir, "bin", "current")); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		return v.cli("snapshot", "paths", "--environment", "build-servers", "--host", "build-1", "--token", reporter, dir)
	}

	if out := snapshot(); !strings.Contains(out, "build-servers: 1 workloads reported, recorded as full") {
		t.Fatalf("first snapshot: %s", out)
	}
	if out := snapshot(); !strings.Contains(out, "recorded as heartbeat") && !strings.Contains(out, "recorded as unchanged") {
		t.Errorf("unchanged files: %s, want no new content record", out)
	}
	between := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	conf2 := write("etc/app.conf", "port = 8080\n")
	if out := snapshot(); !strings.Contains(out, "recorded as delta") {
		t.Errorf("after a change: %s, want a delta", out)
	}

	// What runs now, and what ran before the change.
	state := func(at string) map[string]string {
		var snap struct {
			Workloads []struct {
				Namespace, Kind, Name string
				Containers            []struct{ Name, Digest string }
			}
		}
		arg := "build-servers"
		if at != "" {
			arg += "@" + at
		}
		if err := json.Unmarshal([]byte(v.cli("env", "state", arg, "-o", "json", "--token", auditor)), &snap); err != nil {
			t.Fatal(err)
		}
		if len(snap.Workloads) != 1 || snap.Workloads[0].Namespace != "build-1" || snap.Workloads[0].Kind != "Directory" || snap.Workloads[0].Name != filepath.ToSlash(dir) {
			t.Fatalf("state workloads = %+v", snap.Workloads)
		}
		files := map[string]string{}
		for _, c := range snap.Workloads[0].Containers {
			files[c.Name] = c.Digest
		}
		return files
	}
	want := map[string]string{"bin/app": app, "etc/app.conf": conf2} // the symlink is not a file of its own
	if got := state(""); !maps.Equal(got, want) {
		t.Errorf("state now = %v, want %v", got, want)
	}
	want["etc/app.conf"] = conf1
	if got := state(between.Format(time.RFC3339Nano)); !maps.Equal(got, want) {
		t.Errorf("state before the change = %v, want %v", got, want)
	}
	diff := v.cli("env", "diff", "build-servers@"+between.Format(time.RFC3339Nano), "--token", auditor)
	if !strings.Contains(diff, "changed") || !strings.Contains(diff, "Directory/"+filepath.ToSlash(dir)) {
		t.Errorf("env diff:\n%s", diff)
	}
	if log := v.cli("env", "log", "build-servers", "--since", "1h", "--token", auditor); strings.Count(log, "started") != 1 || strings.Count(log, "changed") != 1 {
		t.Errorf("env log:\n%s", log)
	}

	// Compliance: the app has provenance and a release approval for
	// build-servers; the config file has neither.
	if code, out := v.post(ci, "/api/v1/artifacts", `{"name":"app","digest":"`+app+`"}`); code != 201 {
		t.Fatalf("report artifact: %d %v", code, out)
	}
	if code, out := v.post(rm, "/api/v1/approvals", `{"digest":"`+app+`","environment":"build-servers","decision":"approved","reason":"CHG-9"}`); code != 201 {
		t.Fatalf("approve: %d %v", code, out)
	}
	var rep struct {
		Counts    map[string]int
		Artifacts []struct{ Container, Status string }
	}
	if err := json.Unmarshal([]byte(v.cli("env", "compliance", "build-servers", "-o", "json", "--token", auditor)), &rep); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, a := range rep.Artifacts {
		status[a.Container] = a.Status
	}
	if status["bin/app"] != "compliant" || status["etc/app.conf"] != "undocumented" {
		t.Errorf("compliance = %v", status)
	}
	if list := v.cli("env", "list", "--token", auditor); !strings.Contains(list, "build-servers") {
		t.Errorf("env list:\n%s", list)
	}

	// Mistakes get clear errors.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"snapshot", "paths", dir}, 2, "snapshot needs --environment"},
		{[]string{"snapshot", "paths", "--environment", "build-servers"}, 2, "needs at least one directory"},
		{[]string{"snapshot", "paths", "--environment", "build-servers", filepath.Join(dir, "bin", "app")}, 2, "is not a directory"},
		{[]string{"snapshot", "paths", "--environment", "nowhere", "--token", reporter, dir}, 1, `unknown environment "nowhere"`},
		{[]string{"snapshot", "paths", "--environment", "build-servers", "--token", ci, dir}, 1, "snapshots:write"},
		{[]string{"env", "diff", "build-servers", "--token", auditor}, 2, "want ENV@TIME"},
		{[]string{"env", "state", "build-servers@yesterday", "--token", auditor}, 1, "yesterday"},
	} {
		out, code := v.run(tc.args...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("vouch %s: exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, out, tc.code, tc.want)
		}
	}
}
