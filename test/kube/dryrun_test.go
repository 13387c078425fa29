package kube

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestChartObjectsAreValid creates every object the chart renders with a
// server-side dry run against the real apiserver (cert-manager's and the
// Prometheus operator's kinds are left out: their CRDs are not installed).
func TestChartObjectsAreValid(t *testing.T) {
	needCluster(t)
	kubectl(t, "create", "namespace", "vouch-system")
	// A cluster's controller-manager gives every namespace this account; the
	// test's apiserver runs none. The hook and test pods use it.
	kubectl(t, "create", "serviceaccount", "default", "-n", "vouch-system")
	for _, values := range []map[string]any{
		nil,
		{"networkPolicy": map[string]any{"enabled": true, "apiFrom": []any{map[string]any{"namespaceSelector": map[string]any{}}}},
			"database": map[string]any{"existingSecret": "db"}, "journalKey": map[string]any{"existingSecret": "key"},
			"reporter": map[string]any{"enabled": true, "environment": "prod-eu", "server": "https://vouch.example.com", "tokenSecret": map[string]any{"name": "t"}}},
		{"database": map[string]any{"existingSecret": "db"}, "persistence": map[string]any{"enabled": true, "storageClassName": "standard"},
			"migrations": map[string]any{"job": map[string]any{"enabled": true}}},
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

// TestChartRBACGrantsWhatVouchUses applies the chart's RBAC to the real
// apiserver and asks it, as Vouch's ServiceAccount, for each call the code
// makes (drift/watch.go, kube/leader.go, kube/certs.go): all allowed; and
// for what it does not make: refused.
func TestChartRBACGrantsWhatVouchUses(t *testing.T) {
	needCluster(t)
	const ns = "vouch-rbac"
	kubectl(t, "create", "namespace", ns)
	objs, err := render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, k := range []string{"ServiceAccount/vouch", "ClusterRole/vouch", "ClusterRoleBinding/vouch", "Role/vouch", "RoleBinding/vouch"} {
		o := objs[k]
		if meta, ok := o["metadata"].(map[string]any); ok && meta["namespace"] != nil {
			meta["namespace"] = ns
		}
		for _, s := range toAny(o["subjects"]) {
			s.(map[string]any)["namespace"] = ns
		}
		b, _ := yaml.Marshal(o)
		docs = append(docs, string(b))
	}
	mustKubectlApply(t, strings.Join(docs, "---\n"))
	t.Cleanup(func() {
		kubectl(t, "delete", "clusterrole,clusterrolebinding", "vouch", "--ignore-not-found")
		kubectl(t, "delete", "namespace", ns, "--wait=false")
	})
	as := "--as=system:serviceaccount:" + ns + ":vouch"
	can := func(args ...string) bool {
		out, _ := kubectl(t, append(append([]string{"auth", "can-i"}, args...), as)...)
		return strings.TrimSpace(out) == "yes"
	}
	for _, call := range [][]string{
		{"list", "pods", "--all-namespaces"}, {"watch", "pods", "--all-namespaces"},
		{"list", "namespaces"}, {"watch", "namespaces"}, {"get", "namespaces/apps"},
		{"list", "replicasets.apps", "--all-namespaces"}, {"watch", "deployments.apps", "--all-namespaces"},
		{"list", "jobs.batch", "--all-namespaces"},
		{"create", "leases.coordination.k8s.io", "-n", ns}, {"get", "leases.coordination.k8s.io/vouch", "-n", ns}, {"update", "leases.coordination.k8s.io/vouch", "-n", ns},
		{"create", "secrets", "-n", ns}, {"get", "secrets/vouch-tls", "-n", ns}, {"update", "secrets/vouch-tls", "-n", ns},
		{"get", "validatingwebhookconfigurations.admissionregistration.k8s.io/vouch"}, {"patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/vouch"},
	} {
		if !can(call...) {
			t.Errorf("Vouch's ServiceAccount may not %v: the code needs it", call)
		}
	}
	for _, call := range [][]string{
		{"get", "secrets/other", "-n", ns}, {"list", "secrets", "-n", ns}, {"get", "secrets", "-n", "default"},
		{"update", "namespaces/apps"}, {"list", "statefulsets.apps", "--all-namespaces"}, {"create", "pods", "-n", ns},
		{"patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/other"}, {"create", "events", "-n", ns},
	} {
		if can(call...) {
			t.Errorf("Vouch's ServiceAccount may %v: nothing in the code needs it", call)
		}
	}
}

func toAny(v any) []any { a, _ := v.([]any); return a }
