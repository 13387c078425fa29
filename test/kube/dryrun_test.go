package kube

import (
	"strings"
	"testing"
)

// TestChartObjectsAreValid creates every object the chart renders with a
// server-side dry run against the real apiserver (cert-manager's and the
// Prometheus operator's kinds are left out: their CRDs are not installed).
func TestChartObjectsAreValid(t *testing.T) {
	needCluster(t)
	kubectl(t, "create", "namespace", "vouch-system")
	for _, values := range []map[string]any{
		nil,
		{"networkPolicy": map[string]any{"enabled": true, "apiFrom": []any{map[string]any{"namespaceSelector": map[string]any{}}}},
			"database": map[string]any{"existingSecret": "db"}, "journalKey": map[string]any{"existingSecret": "key"},
			"reporter": map[string]any{"enabled": true, "environment": "prod-eu", "server": "https://vouch.example.com", "tokenSecret": map[string]any{"name": "t"}}},
		{"database": map[string]any{"existingSecret": "db"}, "persistence": map[string]any{"enabled": true, "storageClassName": "standard"}},
	} {
		out, err := applyYAML(t, renderYAML(t, values), "--dry-run=server", "-n", "vouch-system")
		if err != nil {
			t.Fatalf("server-side dry run of the chart (values %v): %v\n%s", values, err, out)
		}
		workload := "deployment.apps/vouch"
		if values["persistence"] != nil {
			workload = "statefulset.apps/vouch"
		}
		for _, kind := range []string{workload, "validatingwebhookconfiguration.admissionregistration.k8s.io/vouch", "clusterrole.rbac.authorization.k8s.io/vouch", "poddisruptionbudget.policy/vouch"} {
			if !strings.Contains(out, kind) {
				t.Errorf("dry run output lacks %s:\n%s", kind, out)
			}
		}
	}
}
