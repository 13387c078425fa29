package kube

import (
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"
)

// chartDir is charts/vouch in the repository.
func chartDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "vouch")
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir())
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// render renders the chart as `helm template` would, with the given values
// over the defaults, and returns the objects by "Kind/name".
func render(t *testing.T, values map[string]any) (map[string]map[string]any, error) {
	t.Helper()
	return renderRaw(t, withShared(values))
}

// withShared adds to values what a chart with more than one replica must
// have (TestChartRefusesSplitReplicas): the database and the journal key.
func withShared(values map[string]any) map[string]any {
	out := map[string]any{"database": map[string]any{"existingSecret": "db"}, "journalKey": map[string]any{"existingSecret": "key"}}
	for k, v := range values {
		out[k] = v
	}
	return out
}

// renderRaw renders the chart with exactly values over its defaults.
func renderRaw(t *testing.T, values map[string]any) (map[string]map[string]any, error) {
	t.Helper()
	c := loadChart(t)
	vals, err := chartutil.ToRenderValues(c, values, chartutil.ReleaseOptions{Name: "vouch", Namespace: "vouch-system", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		return nil, err
	}
	objs := map[string]map[string]any{}
	for name, content := range files {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range strings.Split(content, "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var o map[string]any
			if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
				t.Fatalf("%s does not parse: %v\n%s", name, err, doc)
			}
			if o == nil {
				continue
			}
			meta, _ := o["metadata"].(map[string]any)
			objs[o["kind"].(string)+"/"+meta["name"].(string)] = o
		}
	}
	return objs, nil
}

// renderYAML renders the chart to one multi-document YAML stream.
func renderYAML(t *testing.T, values map[string]any) string {
	t.Helper()
	objs, err := render(t, values)
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, o := range objs {
		b, _ := yaml.Marshal(o)
		docs = append(docs, string(b))
	}
	return strings.Join(docs, "---\n")
}

func get(o map[string]any, path ...any) any {
	var cur any = o
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := cur.(map[string]any)
			cur = m[k]
		case int:
			a, _ := cur.([]any)
			if k >= len(a) {
				return nil
			}
			cur = a[k]
		}
	}
	return cur
}

func TestChartDefaults(t *testing.T) {
	objs, err := render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Deployment/vouch", "Service/vouch", "ServiceAccount/vouch", "ConfigMap/vouch", "PodDisruptionBudget/vouch",
		"ValidatingWebhookConfiguration/vouch", "ClusterRole/vouch", "ClusterRoleBinding/vouch", "Role/vouch", "RoleBinding/vouch",
	} {
		if objs[want] == nil {
			t.Errorf("default render lacks %s", want)
		}
	}
	for _, absent := range []string{"ServiceMonitor/vouch", "NetworkPolicy/vouch", "Certificate/vouch", "PrometheusRule/vouch"} {
		if objs[absent] != nil {
			t.Errorf("default render has %s", absent)
		}
	}

	d := objs["Deployment/vouch"]
	if get(d, "spec", "replicas") != float64(2) {
		t.Errorf("replicas = %v, want 2", get(d, "spec", "replicas"))
	}
	c := get(d, "spec", "template", "spec", "containers", 0).(map[string]any)
	sc := c["securityContext"].(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false {
		t.Errorf("container security context = %v", sc)
	}
	if get(d, "spec", "template", "spec", "securityContext", "runAsNonRoot") != true {
		t.Error("pod does not run as non-root")
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe", "startupProbe"} {
		if c[probe] == nil {
			t.Errorf("no %s", probe)
		}
	}
	if get(d, "spec", "template", "spec", "affinity", "podAntiAffinity") == nil {
		t.Error("no pod anti-affinity by default")
	}
	spread, _ := get(d, "spec", "template", "spec", "topologySpreadConstraints", 0).(map[string]any)
	if get(spread, "topologyKey") != "topology.kubernetes.io/zone" || get(spread, "whenUnsatisfiable") != "ScheduleAnyway" ||
		get(spread, "labelSelector", "matchLabels", "app.kubernetes.io/name") != "vouch" {
		t.Errorf("topology spread by default = %v, want a soft spread over zones", spread)
	}
	args := strings.Join(toStrings(c["args"]), " ")
	for _, want := range []string{"--leader-election=true", "--webhook-secret=vouch-tls", "--webhook-configuration=vouch", "--tls-dns-names=vouch,vouch.vouch-system,vouch.vouch-system.svc", "--api-tls"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	if s := get(c, "readinessProbe", "httpGet", "scheme"); s != "HTTPS" {
		t.Errorf("readiness probe scheme = %v, want HTTPS (the API serves TLS)", s)
	}

	w := objs["ValidatingWebhookConfiguration/vouch"]
	hook := get(w, "webhooks", 0).(map[string]any)
	if hook["sideEffects"] != "NoneOnDryRun" || hook["failurePolicy"] != "Fail" || hook["timeoutSeconds"] != float64(5) {
		t.Errorf("webhook = sideEffects %v failurePolicy %v timeoutSeconds %v", hook["sideEffects"], hook["failurePolicy"], hook["timeoutSeconds"])
	}
	excluded := toStrings(get(hook, "namespaceSelector", "matchExpressions", 0, "values"))
	if strings.Join(excluded, ",") != "kube-system,vouch-system" {
		t.Errorf("excluded namespaces = %v", excluded)
	}
	var resources []string
	for _, r := range hook["rules"].([]any) {
		resources = append(resources, toStrings(r.(map[string]any)["resources"])...)
	}
	if got := strings.Join(resources, ","); got != "pods,pods/ephemeralcontainers,deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs" {
		t.Errorf("webhook resources = %s", got)
	}

	// Least privilege: no wildcards, secrets only by name in Vouch's namespace.
	for _, name := range []string{"ClusterRole/vouch", "Role/vouch"} {
		for _, r := range objs[name]["rules"].([]any) {
			rule := r.(map[string]any)
			for _, field := range []string{"verbs", "resources", "apiGroups"} {
				for _, v := range toStrings(rule[field]) {
					if v == "*" {
						t.Errorf("%s has a wildcard %s", name, field)
					}
				}
			}
			if strings.Contains(strings.Join(toStrings(rule["resources"]), ","), "secrets") {
				if name == "ClusterRole/vouch" {
					t.Error("the ClusterRole grants secrets")
				}
				if v := toStrings(rule["verbs"]); !(len(v) == 1 && v[0] == "create") && rule["resourceNames"] == nil {
					t.Errorf("secret verbs %v without resourceNames", v)
				}
			}
		}
	}
}

func TestChartOptions(t *testing.T) {
	objs, err := render(t, map[string]any{
		"certificates":   map[string]any{"mode": "cert-manager", "certManager": map[string]any{"issuerRef": map[string]any{"name": "ca", "kind": "ClusterIssuer"}}},
		"serviceMonitor": map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true, "integrityCheckIntervalSeconds": 3600},
		"networkPolicy": map[string]any{"enabled": true, "apiFrom": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"ci": "true"}}}},
			"webhookFrom": []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.0.0.0/24"}}}},
		"webhook":    map[string]any{"failurePolicy": "Ignore", "excludeNamespaces": []any{"sandbox"}},
		"database":   map[string]any{"existingSecret": "vouch-db"},
		"journalKey": map[string]any{"existingSecret": "vouch-journal-key"},
		"image":      map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Certificate/vouch", "ServiceMonitor/vouch", "NetworkPolicy/vouch", "PrometheusRule/vouch"} {
		if objs[want] == nil {
			t.Errorf("render lacks %s", want)
		}
	}
	// The alerts select this release's namespace and take their thresholds
	// from the values: two integrity intervals, 60 % of the webhook timeout.
	alerts := map[string]string{}
	for _, r := range get(objs["PrometheusRule/vouch"], "spec", "groups", 0, "rules").([]any) {
		rule := r.(map[string]any)
		alerts[rule["alert"].(string)] = rule["expr"].(string)
	}
	for name, want := range map[string]string{
		"VouchAdmissionsRefusedByFailure": `vouch_admissions_total{namespace="vouch-system",decision=~"error|unrecorded"}`,
		"VouchJournalSpooling":            `max(vouch_journal_spool_entries{namespace="vouch-system"}) > 0`,
		"VouchCheckpointRefused":          `max(vouch_journal_checkpoint_refused{namespace="vouch-system"}) > 0`,
		"VouchIntegrityCheckStale":        `vouch_integrity_check_last_passed_timestamp_seconds{namespace="vouch-system"}) > 7200`,
		"VouchWebhookSlow":                `[5m]))) > 3`,
		"VouchNoLeader":                   `max(vouch_leader{namespace="vouch-system"}) < 1`,
	} {
		if !strings.Contains(alerts[name], want) {
			t.Errorf("alert %s: expr %q, want it to contain %q", name, alerts[name], want)
		}
	}
	w := objs["ValidatingWebhookConfiguration/vouch"]
	if get(w, "metadata", "annotations", "cert-manager.io/inject-ca-from") != "vouch-system/vouch" {
		t.Error("cert-manager CA injection annotation missing")
	}
	if get(w, "webhooks", 0, "failurePolicy") != "Ignore" {
		t.Error("failurePolicy value not applied")
	}
	if got := strings.Join(toStrings(get(w, "webhooks", 0, "namespaceSelector", "matchExpressions", 0, "values")), ","); got != "kube-system,sandbox,vouch-system" {
		t.Errorf("excluded namespaces = %s", got)
	}
	c := get(objs["Deployment/vouch"], "spec", "template", "spec", "containers", 0).(map[string]any)
	if !strings.HasSuffix(c["image"].(string), "@sha256:"+strings.Repeat("ab", 32)) {
		t.Errorf("image = %v, want pinned by digest", c["image"])
	}
	args := strings.Join(toStrings(c["args"]), " ")
	if !strings.Contains(args, "--tls-cert-file=/etc/vouch/tls/tls.crt") || strings.Contains(args, "--webhook-secret") {
		t.Errorf("cert-manager args = %s", args)
	}
	env := renderString(t, c["env"])
	if !strings.Contains(env, "VOUCH_DATABASE_URL") || !strings.Contains(env, "vouch-db") {
		t.Errorf("env lacks the database secret: %s", env)
	}
	for _, r := range objs["ClusterRole/vouch"]["rules"].([]any) {
		if strings.Contains(renderString(t, r), "validatingwebhookconfigurations") {
			t.Error("with cert-manager, Vouch needs no access to its webhook configuration")
		}
	}

	if _, err := render(t, map[string]any{"certificates": map[string]any{"mode": "cert-manager"}}); err == nil || !strings.Contains(err.Error(), "issuerRef is required") {
		t.Errorf("cert-manager without an issuer: err = %v", err)
	}
}

func TestChartSchemaAndLint(t *testing.T) {
	for _, bad := range []map[string]any{
		{"webhook": map[string]any{"failurePolicy": "Maybe"}},
		{"replicaCount": 0},
		{"webhook": map[string]any{"timeoutSeconds": 60}},
		{"image": map[string]any{"digest": "latest"}},
		{"config": map[string]any{"environments": []any{map[string]any{"name": "Prod"}}}},
	} {
		c := loadChart(t)
		if err := chartutil.ValidateAgainstSchema(c, bad); err == nil {
			t.Errorf("values %v pass the schema", bad)
		}
	}
	// The environment settings docs/policy.md documents pass (the binary checks them strictly).
	documented := map[string]any{"config": map[string]any{"environments": []any{map[string]any{
		"name": "prod", "namespaces": []any{"shop-*"}, "mode": "enforce", "break_glass": true,
		"require": map[string]any{"digest": true, "provenance": true, "attestations": []any{"unit-tests"}, "verified_attestations": []any{"sbom"},
			"approval": true, "four_eyes": true, "registries": []any{"registry.example.com/"}, "no_latest": true, "max_age": map[string]any{"security-scan": "168h"}},
		"freeze": []any{map[string]any{"cron": "0 18 * * 5", "duration": "62h", "reason": "weekend"}},
	}}}}
	if err := chartutil.ValidateAgainstSchema(loadChart(t), documented); err != nil {
		t.Errorf("documented environment settings fail the schema: %v", err)
	}
	result := lint.AllWithKubeVersion(chartDir(), withShared(nil), "vouch-system", &chartutil.DefaultCapabilities.KubeVersion)
	for _, m := range result.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
}

func toStrings(v any) []string {
	a, _ := v.([]any)
	out := make([]string, len(a))
	for i, x := range a {
		out[i], _ = x.(string)
	}
	return out
}

func renderString(t *testing.T, v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestChartReporterBesideServer: with both on, nothing that selects the
// server's pods (the webhook Service, the PDB) selects a reporter pod: a
// webhook call sent to one would be refused.
func TestChartReporterBesideServer(t *testing.T) {
	objs, err := render(t, map[string]any{
		"reporter": map[string]any{"enabled": true, "environment": "prod-eu", "server": "https://vouch.example.com", "tokenSecret": map[string]any{"name": "vouch-reporter"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pod := get(objs["CronJob/vouch-reporter"], "spec", "jobTemplate", "spec", "template", "metadata", "labels").(map[string]any)
	server := get(objs["Deployment/vouch"], "spec", "template", "metadata", "labels").(map[string]any)
	for _, sel := range []struct {
		name     string
		selector map[string]any
	}{
		{"Service", get(objs["Service/vouch"], "spec", "selector").(map[string]any)},
		{"PodDisruptionBudget", get(objs["PodDisruptionBudget/vouch"], "spec", "selector", "matchLabels").(map[string]any)},
		{"Deployment", get(objs["Deployment/vouch"], "spec", "selector", "matchLabels").(map[string]any)},
	} {
		if !matches(sel.selector, server) {
			t.Errorf("the %s's selector %v does not select the server's pods %v", sel.name, sel.selector, server)
		}
		if matches(sel.selector, pod) {
			t.Errorf("the %s's selector %v selects the reporter's pods %v", sel.name, sel.selector, pod)
		}
	}
}

// TestChartPDBLetsDrainsThrough: one replica gets no PodDisruptionBudget
// (minAvailable 1 would block every drain); two get one.
func TestChartPDBLetsDrainsThrough(t *testing.T) {
	for replicas, want := range map[int]bool{1: false, 2: true} {
		objs, err := render(t, map[string]any{"replicaCount": replicas})
		if err != nil {
			t.Fatal(err)
		}
		if _, got := objs["PodDisruptionBudget/vouch"]; got != want {
			t.Errorf("%d replicas: PodDisruptionBudget rendered %v, want %v", replicas, got, want)
		}
	}
}

// TestChartWebhookClientCA: webhook.clientCA mounts the ConfigMap and
// turns mTLS on.
func TestChartWebhookClientCA(t *testing.T) {
	objs, err := render(t, map[string]any{"webhook": map[string]any{"clientCA": map[string]any{"configMap": "apiserver-client-ca", "key": "ca.crt"}}})
	if err != nil {
		t.Fatal(err)
	}
	pod := get(objs["Deployment/vouch"], "spec", "template", "spec").(map[string]any)
	args := strings.Join(toStrings(get(pod, "containers", 0, "args")), " ")
	if !strings.Contains(args, "--webhook-client-ca-file=/etc/vouch/webhook-client-ca/ca.crt") {
		t.Errorf("args = %s, want the client CA file", args)
	}
	if vols := renderString(t, pod["volumes"]); !strings.Contains(vols, "apiserver-client-ca") {
		t.Errorf("volumes = %s, want the ConfigMap", vols)
	}
	objs, _ = render(t, nil)
	if args := strings.Join(toStrings(get(objs["Deployment/vouch"], "spec", "template", "spec", "containers", 0, "args")), " "); strings.Contains(args, "client-ca") {
		t.Errorf("default args = %s, want no client CA", args)
	}
}

// TestChartExemptNamespacesAgree: the namespaces the webhook is not sent
// are the ones the server exempts (and does not snapshot), whether they
// come from webhook.excludeNamespaces or config.exempt_namespaces.
func TestChartExemptNamespacesAgree(t *testing.T) {
	objs, err := render(t, map[string]any{"webhook": map[string]any{"excludeNamespaces": []any{"istio-system"}},
		"config": map[string]any{"exempt_namespaces": []any{"cert-manager"}}})
	if err != nil {
		t.Fatal(err)
	}
	selector := toStrings(get(objs["ValidatingWebhookConfiguration/vouch"], "webhooks", 0, "namespaceSelector", "matchExpressions", 0, "values"))
	if got := strings.Join(selector, ","); got != "kube-system,istio-system,cert-manager,vouch-system" {
		t.Errorf("webhook namespaceSelector NotIn %s", got)
	}
	args := strings.Join(toStrings(get(objs["Deployment/vouch"], "spec", "template", "spec", "containers", 0, "args")), " ")
	if !strings.Contains(args, "--exempt-namespaces=kube-system,istio-system,cert-manager ") {
		t.Errorf("args = %s, want the same exempt namespaces", args)
	}
}

// TestChartNetworkPolicy: webhookFrom narrows the webhook port; an empty
// apiFrom is refused (it would close the API to everyone).
func TestChartNetworkPolicy(t *testing.T) {
	objs, err := render(t, map[string]any{"networkPolicy": map[string]any{"enabled": true,
		"apiFrom":     []any{map[string]any{"namespaceSelector": map[string]any{}}},
		"webhookFrom": []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.0.0.0/24"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	rules := renderString(t, get(objs["NetworkPolicy/vouch"], "spec", "ingress"))
	if !strings.Contains(rules, "10.0.0.0/24") || !strings.Contains(rules, "port: webhook") || !strings.Contains(rules, "port: api") {
		t.Errorf("ingress rules:\n%s", rules)
	}
	if types := renderString(t, get(objs["NetworkPolicy/vouch"], "spec", "policyTypes")); strings.Contains(types, "Egress") {
		t.Errorf("egress restricted without networkPolicy.egressTo: %s", types)
	}
	objs, err = render(t, map[string]any{"networkPolicy": map[string]any{"enabled": true,
		"apiFrom":  []any{map[string]any{"namespaceSelector": map[string]any{}}},
		"egressTo": []any{map[string]any{"to": []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.96.0.1/32"}}}, "ports": []any{map[string]any{"port": 443}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	np := objs["NetworkPolicy/vouch"]
	if types, egress := renderString(t, get(np, "spec", "policyTypes")), renderString(t, get(np, "spec", "egress")); !strings.Contains(types, "Egress") ||
		!strings.Contains(egress, "port: 53") || !strings.Contains(egress, "10.96.0.1/32") || !strings.Contains(egress, "port: 443") {
		t.Errorf("with egressTo: policyTypes %s, egress:\n%s; want DNS and the listed peer", types, egress)
	}
	if _, err := render(t, map[string]any{"networkPolicy": map[string]any{"enabled": true}}); err == nil || !strings.Contains(err.Error(), "networkPolicy.apiFrom is empty") {
		t.Errorf("networkPolicy without apiFrom: %v, want it refused", err)
	}
}

// TestChartSecretMounts: a notifier's URL comes from a mounted Secret, not
// the ConfigMap.
func TestChartSecretMounts(t *testing.T) {
	objs, err := render(t, map[string]any{"secretMounts": []any{map[string]any{"name": "slack", "secret": "vouch-slack"}},
		"config": map[string]any{"notifications": []any{map[string]any{"name": "ops", "type": "slack", "url_file": "/etc/vouch/secrets/slack/url"}}}})
	if err != nil {
		t.Fatal(err)
	}
	pod := renderString(t, get(objs["Deployment/vouch"], "spec", "template", "spec"))
	if !strings.Contains(pod, "secretName: vouch-slack") || !strings.Contains(pod, "mountPath: /etc/vouch/secrets/slack") {
		t.Errorf("pod spec lacks the secret mount:\n%s", pod)
	}
	if _, err := render(t, map[string]any{"secretMounts": []any{map[string]any{"name": "Bad Name", "secret": "s"}}}); err == nil {
		t.Error("a secret mount named 'Bad Name' passes the schema")
	}
}

// TestChartPolicyConfigMap: policy.configMap mounts your Rego as the
// policy directory.
func TestChartPolicyConfigMap(t *testing.T) {
	objs, err := render(t, map[string]any{"policy": map[string]any{"configMap": "vouch-policy"}})
	if err != nil {
		t.Fatal(err)
	}
	pod := get(objs["Deployment/vouch"], "spec", "template", "spec").(map[string]any)
	if args := strings.Join(toStrings(get(pod, "containers", 0, "args")), " "); !strings.Contains(args, "--policy-dir=/etc/vouch/policy") {
		t.Errorf("args = %s, want the policy directory", args)
	}
	if vols := renderString(t, pod["volumes"]); !strings.Contains(vols, "name: vouch-policy") {
		t.Errorf("volumes = %s, want the ConfigMap", vols)
	}
}

// TestChartSigstoreTrustedRoot: sigstore.trustedRoot.configMap mounts the
// trusted roots and points --sigstore-trusted-root at them.
func TestChartSigstoreTrustedRoot(t *testing.T) {
	objs, err := render(t, map[string]any{"sigstore": map[string]any{"trustedRoot": map[string]any{"configMap": "vouch-sigstore"}}})
	if err != nil {
		t.Fatal(err)
	}
	pod := get(objs["Deployment/vouch"], "spec", "template", "spec").(map[string]any)
	if args := strings.Join(toStrings(get(pod, "containers", 0, "args")), " "); !strings.Contains(args, "--sigstore-trusted-root=/etc/vouch/sigstore/trusted_root.jsonl") {
		t.Errorf("args = %s, want the trusted root", args)
	}
	if mounts := renderString(t, get(pod, "containers", 0, "volumeMounts")); !strings.Contains(mounts, "mountPath: /etc/vouch/sigstore") {
		t.Errorf("volumeMounts = %s", mounts)
	}
	if vols := renderString(t, pod["volumes"]); !strings.Contains(vols, "name: vouch-sigstore") {
		t.Errorf("volumes = %s, want the ConfigMap", vols)
	}
	if _, err := render(t, map[string]any{"sigstore": map[string]any{"trustedRoot": map[string]any{"configMap": "x", "key": ""}}}); err == nil {
		t.Error("an empty key passes the schema")
	}
}

// TestChartRefusesSplitReplicas: more than one replica without a shared
// database or journal key would split the journal; the chart refuses it
// and says what to set. One replica on SQLite is a trial install.
func TestChartRefusesSplitReplicas(t *testing.T) {
	for _, tt := range []struct {
		values map[string]any
		want   string
	}{
		{nil, "database.existingSecret is empty"},
		{map[string]any{"database": map[string]any{"existingSecret": "db"}}, "journalKey.existingSecret is empty"},
	} {
		if _, err := renderRaw(t, tt.values); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("render %v: %v, want an error saying %q", tt.values, err, tt.want)
		}
	}
	if _, err := renderRaw(t, map[string]any{"replicaCount": 1}); err != nil {
		t.Errorf("one replica on SQLite: %v", err)
	}
}

func matches(selector, labels map[string]any) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestChartReporter renders the reporter-only install: a CronJob running
// "vouch snapshot k8s" with read-only access, and nothing of the server.
func TestChartReporter(t *testing.T) {
	objs, err := render(t, map[string]any{
		"server":   map[string]any{"enabled": false},
		"reporter": map[string]any{"enabled": true, "environment": "prod-eu", "server": "https://vouch.example.com", "namespaces": "shop-*", "tokenSecret": map[string]any{"name": "vouch-reporter"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for k := range objs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	want := "ClusterRole/vouch-reporter ClusterRoleBinding/vouch-reporter CronJob/vouch-reporter ServiceAccount/vouch-reporter"
	if strings.Join(kinds, " ") != want {
		t.Errorf("reporter-only render = %v, want %s", kinds, want)
	}
	c := get(objs["CronJob/vouch-reporter"], "spec", "jobTemplate", "spec", "template", "spec", "containers", 0).(map[string]any)
	if got := strings.Join(toStrings(c["args"]), " "); got != "snapshot k8s --environment=prod-eu --server=https://vouch.example.com --namespaces=shop-*" {
		t.Errorf("reporter args = %s", got)
	}
	if env := renderString(t, c["env"]); !strings.Contains(env, "VOUCH_TOKEN") || !strings.Contains(env, "vouch-reporter") {
		t.Errorf("reporter env = %s", env)
	}
	for _, r := range objs["ClusterRole/vouch-reporter"]["rules"].([]any) {
		for _, v := range toStrings(r.(map[string]any)["verbs"]) {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("reporter may %s: it only reads", v)
			}
		}
	}
	for _, missing := range []string{"environment", "server", "tokenSecret.name"} {
		vals := map[string]any{"enabled": true, "environment": "prod-eu", "server": "https://vouch.example.com", "tokenSecret": map[string]any{"name": "s"}}
		switch missing {
		case "tokenSecret.name":
			vals["tokenSecret"] = map[string]any{"name": ""}
		default:
			delete(vals, missing)
		}
		if _, err := render(t, map[string]any{"reporter": vals}); err == nil || !strings.Contains(err.Error(), "reporter."+missing+" is required") {
			t.Errorf("reporter without %s: err = %v", missing, err)
		}
	}
}

// TestChartPersistence: with persistence on, each replica's data directory
// (the spool, or the SQLite journal) is a PersistentVolumeClaim of a
// StatefulSet instead of an emptyDir.
func TestChartPersistence(t *testing.T) {
	objs, err := render(t, map[string]any{
		"database":    map[string]any{"existingSecret": "vouch-db"},
		"persistence": map[string]any{"enabled": true, "size": "2Gi", "storageClassName": "fast"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if objs["Deployment/vouch"] != nil {
		t.Error("persistence on still renders a Deployment")
	}
	s := objs["StatefulSet/vouch"]
	if s == nil {
		t.Fatal("persistence on renders no StatefulSet")
	}
	if get(s, "spec", "serviceName") != "vouch" || get(s, "spec", "podManagementPolicy") != "Parallel" || get(s, "spec", "replicas") != float64(2) {
		t.Errorf("StatefulSet spec = %v", renderString(t, s["spec"]))
	}
	claim, _ := get(s, "spec", "volumeClaimTemplates", 0).(map[string]any)
	if get(claim, "metadata", "name") != "data" || get(claim, "spec", "resources", "requests", "storage") != "2Gi" || get(claim, "spec", "storageClassName") != "fast" {
		t.Errorf("volume claim = %v", renderString(t, claim))
	}
	for _, v := range get(s, "spec", "template", "spec", "volumes").([]any) {
		if v.(map[string]any)["name"] == "data" {
			t.Errorf("the data volume is still a pod volume: %v", v)
		}
	}

	objs, err = render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if objs["StatefulSet/vouch"] != nil || objs["Deployment/vouch"] == nil {
		t.Error("the default is not a Deployment")
	}
	if _, err := render(t, map[string]any{"persistence": map[string]any{"enabled": true, "size": "lots"}}); err == nil {
		t.Error("a size that is not a quantity passed the schema")
	}
}

// TestChartMigrationJob: with migrations.job.enabled, a pre-install and
// pre-upgrade Job runs `vouch migrate` on the shared database before the
// replicas start.
func TestChartMigrationJob(t *testing.T) {
	objs, err := render(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := objs["Job/vouch-migrate"]; ok {
		t.Error("a migration Job by default")
	}
	objs, err = render(t, map[string]any{"migrations": map[string]any{"job": map[string]any{"enabled": true}}})
	if err != nil {
		t.Fatal(err)
	}
	job := objs["Job/vouch-migrate"]
	if job == nil {
		t.Fatal("no Job/vouch-migrate")
	}
	if hooks := get(job, "metadata", "annotations", "helm.sh/hook"); hooks != "pre-install,pre-upgrade" {
		t.Errorf("hook = %v", hooks)
	}
	pod := get(job, "spec", "template", "spec").(map[string]any)
	c := get(pod, "containers", 0).(map[string]any)
	if args := toStrings(c["args"]); len(args) != 1 || args[0] != "migrate" || get(c, "env", 0, "valueFrom", "secretKeyRef", "name") != "db" ||
		pod["automountServiceAccountToken"] != false || pod["restartPolicy"] != "Never" || get(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("migration Job pod = %v", pod)
	}
	if get(job, "spec", "template", "metadata", "labels", "app.kubernetes.io/name") == "vouch" {
		t.Error("the Job's pod carries the replicas' selector labels: the Service would send it admissions")
	}
	objs, err = render(t, map[string]any{"migrations": map[string]any{"job": map[string]any{"enabled": true, "existingSecret": "db-owner", "secretKey": "url"}}})
	if err != nil {
		t.Fatal(err)
	}
	if ref := get(objs["Job/vouch-migrate"], "spec", "template", "spec", "containers", 0, "env", 0, "valueFrom", "secretKeyRef").(map[string]any); ref["name"] != "db-owner" || ref["key"] != "url" {
		t.Errorf("the Job's database URL with migrations.job.existingSecret = %v, want the owner's", ref)
	}
	if _, err := renderRaw(t, map[string]any{"replicaCount": 1, "migrations": map[string]any{"job": map[string]any{"enabled": true}}}); err == nil || !strings.Contains(err.Error(), "migrations.job.enabled needs database.existingSecret") {
		t.Errorf("a migration Job without a database: %v, want it refused", err)
	}
}

// TestChartHelmTest: `helm test` runs `vouch health` against the Service,
// verifying the webhook's TLS with the CA of the TLS Secret.
func TestChartHelmTest(t *testing.T) {
	for _, apiTLS := range []bool{true, false} {
		objs, err := render(t, map[string]any{"api": map[string]any{"tls": apiTLS}})
		if err != nil {
			t.Fatal(err)
		}
		pod := objs["Pod/vouch-test-health"]
		if pod == nil {
			t.Fatal("no Pod/vouch-test-health")
		}
		scheme := map[bool]string{true: "https", false: "http"}[apiTLS]
		args := strings.Join(toStrings(get(pod, "spec", "containers", 0, "args")), " ")
		if get(pod, "metadata", "annotations", "helm.sh/hook") != "test" ||
			args != "health --server="+scheme+"://vouch.vouch-system.svc:8080 --webhook=https://vouch.vouch-system.svc:443 --ca=/etc/vouch/tls/ca.crt" ||
			get(pod, "spec", "volumes", 0, "secret", "secretName") != "vouch-tls" || get(pod, "spec", "automountServiceAccountToken") != false {
			t.Errorf("api.tls=%v: helm test pod = %v", apiTLS, pod)
		}
		if get(pod, "metadata", "labels", "app.kubernetes.io/name") == "vouch" {
			t.Error("the test pod carries the replicas' labels")
		}
	}
}
