package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vouch-dev/vouch/policy"
	vrego "github.com/vouch-dev/vouch/rego"
)

func TestModulesInMemory(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "team.rego"), `package vouch.admission
deny contains "no team" if not input.workload.labels.team
`)
	write(t, filepath.Join(dir, "team_test.rego"), "package broken {")
	write(t, filepath.Join(dir, ".hidden", "x.rego"), "package broken {")
	mods, err := policy.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(mods); got != 1 || mods["team.rego"] == "" {
		t.Fatalf("ReadDir(%q) = %v, want team.rego alone", dir, mods)
	}
	fromDir := newEngine(t, dir)
	inMemory, err := policy.New(context.Background(), policy.Config{Builtin: vrego.FS, Modules: mods})
	if err != nil {
		t.Fatalf("policy.New with modules: %v", err)
	}
	if inMemory.Version() != fromDir.Version() || !cmp.Equal(inMemory.Files(), fromDir.Files()) {
		t.Errorf("modules in memory give %s %v, the same directory %s %v", inMemory.Version(), inMemory.Files(), fromDir.Version(), fromDir.Files())
	}
	if _, err := policy.New(context.Background(), policy.Config{Builtin: vrego.FS, Dir: dir, Modules: mods}); err == nil {
		t.Error("policy.New with a module both in the directory and in memory succeeded")
	}
}

func TestCompileErrorNamesFileAndLine(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []policy.CompileProblem
	}{
		{"parse error", "package vouch.admission\n\ndeny contains x if {\n  x := \n}\n",
			[]policy.CompileProblem{{File: "team.rego", Line: 5, Message: "rego_parse_error: unexpected } token"}}},
		{"type error", "package vouch.admission\n\ndeny contains x if {\n  x := undefined_fn(1)\n}\n",
			[]policy.CompileProblem{{File: "team.rego", Line: 4, Message: "rego_type_error: undefined function undefined_fn"}}},
		{"restricted built-in", "package vouch.admission\n\ndeny contains x if {\n  x := http.send({\"method\": \"GET\", \"url\": \"http://169.254.169.254/\"}).body\n}\n",
			[]policy.CompileProblem{{File: "team.rego", Line: 4, Message: "rego_type_error: unsafe built-in function calls in expression: http.send"}}},
		{"another", "package vouch.admission\n\ndeny contains x if {\n  x := opa.runtime().env.VOUCH_ADMIN_TOKEN\n}\n",
			[]policy.CompileProblem{{File: "team.rego", Line: 4, Message: "rego_type_error: unsafe built-in function calls in expression: opa.runtime"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.New(context.Background(), policy.Config{Builtin: vrego.FS, Modules: map[string]string{"team.rego": tt.src}, Restricted: true})
			var cerr *policy.CompileError
			if !errors.As(err, &cerr) {
				t.Fatalf("policy.New = %v, want a *CompileError", err)
			}
			if diff := cmp.Diff(tt.want, cerr.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckModuleName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr bool
	}{
		{"team.rego", false},
		{"rules/team.rego", false},
		{"", true},
		{"team.txt", true},
		{"team_test.rego", true},
		{"builtin/admission.rego", true},
		{"../team.rego", true},
		{"/etc/team.rego", true},
		{"rules//team.rego", true},
		{".hidden/team.rego", true},
		{`rules\team.rego`, true},
	}
	for _, tt := range tests {
		if err := policy.CheckModuleName(tt.name); (err != nil) != tt.wantErr {
			t.Errorf("CheckModuleName(%q) = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}

// TestConfigMapVolume reads a policy directory laid out as the kubelet
// mounts a ConfigMap (the chart's policy.configMap): each file a symlink
// into ..data, itself a symlink to a timestamped directory that an update
// replaces at once. The update is picked up; the hidden copies never are.
func TestConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	version := func(stamp, rule string) {
		t.Helper()
		write(t, filepath.Join(dir, stamp, "team.rego"), "package vouch.admission\ndeny contains \""+rule+"\" if not input.workload.labels.team\n")
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(stamp, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil { // atomic, as the kubelet swaps it
			t.Fatal(err)
		}
	}
	version("..2026_11_26_06_00_00.1", "no team")
	if err := os.Symlink(filepath.Join("..data", "team.rego"), filepath.Join(dir, "team.rego")); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, dir)
	mods, err := policy.ReadDir(dir)
	if err != nil || len(mods) != 1 || !strings.Contains(mods["team.rego"], "no team") {
		t.Fatalf("ReadDir = %v, %v; want team.rego alone", mods, err)
	}
	first := e.Version()
	version("..2026_11_26_06_01_00.2", "a team label is required")
	if changed, err := e.Reload(context.Background()); err != nil || !changed || e.Version() == first {
		t.Fatalf("after the ConfigMap changed: Reload = %v, %v", changed, err)
	}
	if mods, _ := policy.ReadDir(dir); len(mods) != 1 || !strings.Contains(mods["team.rego"], "a team label is required") {
		t.Errorf("ReadDir after the update = %v", mods)
	}
}
