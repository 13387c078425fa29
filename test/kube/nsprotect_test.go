package kube

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// TestChartProtectsNamespaceAnnotations applies the chart's
// ValidatingAdmissionPolicy (namespaceAnnotations.protect) to the real
// apiserver: people who may create and edit namespaces, but are not listed,
// can do so but cannot set, change or remove a namespace's vouch.dev/
// annotations; those listed can.
func TestChartProtectsNamespaceAnnotations(t *testing.T) {
	needCluster(t)
	objs, err := render(t, map[string]any{"namespaceAnnotations": map[string]any{"protect": true, "groups": []any{"platform"}, "users": []any{"system:serviceaccount:argocd:argocd-application-controller"}}})
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, k := range []string{"ValidatingAdmissionPolicy/vouch-namespace-annotations", "ValidatingAdmissionPolicyBinding/vouch-namespace-annotations"} {
		o, ok := objs[k]
		if !ok {
			t.Fatalf("the chart renders no %s", k)
		}
		b, _ := yaml.Marshal(o)
		docs = append(docs, string(b))
	}
	// Developers who may manage namespaces, as in a self-service cluster.
	docs = append(docs, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: np-namespace-editor}
rules: [{apiGroups: [""], resources: [namespaces], verbs: [get, list, create, update, patch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: np-namespace-editor}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: np-namespace-editor}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: devs}
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: platform}
  - {kind: ServiceAccount, name: argocd-application-controller, namespace: argocd}
`)
	mustKubectlApply(t, strings.Join(docs, "---\n"))
	if _, err := render(t, map[string]any{"namespaceAnnotations": map[string]any{"protect": true, "groups": []any{}}}); err == nil || !strings.Contains(err.Error(), "list in groups or users who may set") {
		t.Errorf("protect with nobody allowed: %v", err)
	}
	t.Cleanup(func() {
		kubectl(t, "delete", "validatingadmissionpolicy,validatingadmissionpolicybinding", "vouch-namespace-annotations", "--ignore-not-found")
		kubectl(t, "delete", "clusterrole,clusterrolebinding", "np-namespace-editor", "--ignore-not-found")
		kubectl(t, "delete", "namespace", "np-self", "np-team", "np-gitops", "--ignore-not-found", "--wait=false")
	})
	dev := []string{"--as=dev", "--as-group=devs"}
	platform := []string{"--as=pat", "--as-group=platform"}
	as := func(who []string, args ...string) (string, error) { return kubectl(t, append(args, who...)...) }
	refused := func(out string, err error) bool {
		return err != nil && strings.Contains(out, "the vouch.dev/ annotations of namespaces decide what Vouch trusts")
	}
	withCI := "apiVersion: v1\nkind: Namespace\nmetadata: {name: np-self, annotations: {vouch.dev/configuration-item: Payments API}}\n"

	// The policy takes a moment to be enforced after it is created (a dry
	// run is admitted, or not, as the change would be, and creates nothing).
	waitFor(t, 30*time.Second, "the policy enforced", func() bool {
		return refused(applyYAML(t, withCI, append(dev, "--dry-run=server")...))
	})
	if out, err := applyYAML(t, withCI, dev...); !refused(out, err) {
		t.Errorf("a developer created a namespace with a configuration item: %v\n%s", err, out)
	}
	// Namespaces, labels and other annotations: as before.
	if out, err := as(dev, "create", "namespace", "np-team"); err != nil {
		t.Fatalf("create a namespace: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"label", "namespace", "np-team", "team=payments"}, {"annotate", "namespace", "np-team", "example.com/owner=payments"},
		{"annotate", "namespace", "np-team", "example.com/owner-"}} {
		if out, err := as(dev, args...); err != nil {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	if out, err := as(dev, "annotate", "namespace", "np-team", "vouch.dev/configuration-item=Payments API"); !refused(out, err) {
		t.Errorf("a developer set the configuration item: %v\n%s", err, out)
	}
	// The platform team sets it; developers can neither change nor remove it.
	if out, err := as(platform, "annotate", "namespace", "np-team", "vouch.dev/configuration-item=Payments API"); err != nil {
		t.Fatalf("the platform team: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"annotate", "--overwrite", "namespace", "np-team", "vouch.dev/configuration-item=Ledger"},
		{"annotate", "namespace", "np-team", "vouch.dev/configuration-item-"},
	} {
		if out, err := as(dev, args...); !refused(out, err) {
			t.Errorf("a developer %v: %v\n%s", args, err, out)
		}
	}
	if out, err := as(dev, "label", "namespace", "np-team", "tier=gold"); err != nil {
		t.Errorf("a label beside the configuration item: %v\n%s", err, out)
	}
	if got := mustKubectl(t, "get", "namespace", "np-team", "-o", `jsonpath={.metadata.annotations.vouch\.dev/configuration-item}`); got != "Payments API" {
		t.Errorf("configuration item = %q", got)
	}
	// A listed user (the GitOps controller) creates namespaces with it.
	gitops := []string{"--as=system:serviceaccount:argocd:argocd-application-controller"}
	if out, err := applyYAML(t, strings.Replace(withCI, "np-self", "np-gitops", 1), gitops...); err != nil {
		t.Errorf("the GitOps controller: %v\n%s", err, out)
	}
}
