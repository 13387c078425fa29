// Package layout checks the repository's structure: domain packages never
// depend on transports or drivers, directly or through other packages, and
// the documentation's links lead somewhere.
package layout

import (
	"os/exec"
	"strings"
	"testing"
)

func TestDomainPackagesImportNoTransportOrDriver(t *testing.T) {
	forbidden := []string{
		"github.com/gin-gonic/gin",
		"github.com/jackc/pgx/v5",
		"github.com/redis/go-redis/v9",
		"modernc.org/sqlite",
	}
	for _, pkg := range []string{"webhook", "policy", "evidence", "journal", "auth", "replay"} {
		out, err := exec.Command("go", "list", "-deps", "github.com/vouch-dev/vouch/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("package %s depends on %s", pkg, dep)
				}
			}
		}
	}
}

func TestOnlyAPIImportsGin(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/vouch-dev/vouch/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "github.com/gin-gonic/gin") && fields[0] != "github.com/vouch-dev/vouch/api" {
				t.Errorf("%s imports gin; only package api may", fields[0])
			}
		}
	}
}
