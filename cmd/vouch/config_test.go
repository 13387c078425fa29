package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "vouch.yaml")
	os.WriteFile(file, []byte(`
api_addr: ":9000"
api_tls: true
webhook_addr: ":9443"
log_level: debug
journal_max_delay: 2ms
default_environment: dev
environments:
  - name: prod
    namespaces: ["prod", "payments-*"]
    require: {digest: true, provenance: true, attestations: [unit-tests], approval: true}
    allow: ["registry.k8s.io/pause"]
`), 0o644)
	cfg, err := loadConfig([]string{"--config", file, "--api-addr", ":9100"}, env(map[string]string{
		"VOUCH_API_ADDR": ":9001", "VOUCH_LOG_LEVEL": "warn", "VOUCH_TLS_DNS_NAMES": "vouch.vouch-system.svc, 10.0.0.1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIAddr != ":9100" {
		t.Errorf("api_addr = %q, want the flag's :9100", cfg.APIAddr)
	}
	if cfg.LogLevel != "warn" {
		t.Errorf("log_level = %q, want the environment's warn", cfg.LogLevel)
	}
	if cfg.WebhookAddr != ":9443" || time.Duration(cfg.JournalMaxDelay) != 2*time.Millisecond {
		t.Errorf("file values not applied: %+v", cfg)
	}
	if cfg.DataDir != "vouch-data" {
		t.Errorf("data_dir = %q, want the default", cfg.DataDir)
	}
	if got := strings.Join(cfg.TLSDNSNames, "|"); got != "vouch.vouch-system.svc|10.0.0.1" {
		t.Errorf("tls_dns_names = %q", got)
	}
	envs, _ := cfg.environments()
	if envs.For("payments-eu").Name != "prod" || envs.For("web").Name != "dev" {
		t.Errorf("environments: payments-eu -> %s, web -> %s", envs.For("payments-eu").Name, envs.For("web").Name)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	n := 0
	yaml := func(s string) string {
		n++
		p := filepath.Join(dir, fmt.Sprintf("c%d.yaml", n))
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"bad trusted proxy", []string{"--trusted-proxies", "10.0.0.0/8,ingress"}, nil, "trusted_proxies[1] (--trusted-proxies): \"ingress\" is not an address or CIDR"},
		{"pprof off loopback", []string{"--debug-addr", ":6060"}, nil, "debug_addr (--debug-addr): \":6060\" is not a loopback address"},
		{"bad address", []string{"--api-addr", "8080"}, nil, "api_addr (--api-addr)"},
		{"same addresses", []string{"--api-addr", ":1", "--webhook-addr", ":1"}, nil, "webhook_addr (--webhook-addr): must differ"},
		{"half TLS", []string{"--tls-cert-file", "/etc/hosts"}, nil, "tls_cert_file and tls_key_file"},
		{"missing TLS file", []string{"--tls-cert-file", "/nope.crt", "--tls-key-file", "/nope.key"}, nil, "tls_cert_file: stat /nope.crt"},
		{"bad DNS name", []string{"--tls-dns-names", "not a name"}, nil, "tls_dns_names[0]"},
		{"bad database URL", nil, map[string]string{"VOUCH_DATABASE_URL": "mysql://x"}, "database_url (--database-url)"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log_level (--log-level)"},
		{"bad duration flag", []string{"--journal-max-delay", "soon"}, nil, "journal_max_delay (--journal-max-delay)"},
		{"bad duration env", nil, map[string]string{"VOUCH_SHUTDOWN_TIMEOUT": "x"}, "shutdown_timeout (VOUCH_SHUTDOWN_TIMEOUT)"},
		{"batch out of range", []string{"--journal-max-batch", "0"}, nil, "journal_max_batch (--journal-max-batch)"},
		{"short admin token", nil, map[string]string{"VOUCH_ADMIN_TOKEN": "short"}, "VOUCH_ADMIN_TOKEN"},
		{"missing policy dir", []string{"--policy-dir", "/nope"}, nil, "policy_dir (--policy-dir)"},
		{"unknown flag", []string{"--nope"}, nil, "flag provided but not defined: -nope"},
		{"unknown YAML key", []string{"--config", yaml("api_adr: ':1'\n")}, nil, `unknown field "api_adr"`},
		{"bad YAML duration", []string{"--config", yaml("journal_max_delay: 5\n")}, nil, "duration"},
		{"environment name", []string{"--config", yaml("environments: [{name: Prod, namespaces: [p]}]\n")}, nil, "environments[0].name"},
		{"namespace pattern", []string{"--config", yaml("environments: [{name: prod, namespaces: ['a b']}]\n")}, nil, "environments[0].namespaces[0]"},
		{"namespace claimed twice", []string{"--config", yaml("environments: [{name: a, namespaces: [x]}, {name: b, namespaces: [x]}]\n")}, nil, `environments[1].namespaces[0]: "x" is already claimed by environment "a"`},
		{"duplicate environment", []string{"--config", yaml("environments: [{name: a, namespaces: [x]}, {name: a, namespaces: [y]}]\n")}, nil, "environments[1].name"},
		{"reserved environment name", []string{"--config", yaml("environments: [{name: exempt, namespaces: [x]}]\n")}, nil, `environment "exempt": the name is reserved`},
		{"reserved default environment", []string{"--config", yaml("default_environment: exempt\n")}, nil, `environment "exempt": the name is reserved`},
		{"attestation name", []string{"--config", yaml("environments: [{name: a, namespaces: [x], require: {attestations: ['Unit Tests']}}]\n")}, nil, "environments[0].require.attestations[0]"},
		{"allow with digest", []string{"--config", yaml("environments: [{name: a, namespaces: [x], allow: ['x@sha256:00']}]\n")}, nil, "environments[0].allow[0]"},
		{"missing config file", []string{"--config", "/nope.yaml"}, nil, "config file"},
		{"blob size unit", []string{"--max-blob-size", "16MB"}, nil, "max_blob_size (--max-blob-size)"},
		{"blob size too small", nil, map[string]string{"VOUCH_MAX_BLOB_SIZE": "100"}, "max_blob_size (--max-blob-size): 100 bytes is not between 1KiB and 1GiB"},
		{"change requests without a change system", []string{"--config", yaml("environments: [{name: prod, namespaces: [prod], require: {change_request: {}}}]\n")}, nil,
			`environments[0].require.change_request: no change_systems are configured`},
		{"deployment reviews without the forge", []string{"--config", yaml("oidc_issuers: [{issuer: 'https://token.actions.githubusercontent.com', name: github, subjects: ['repo:bank/*:environment:production'], repository_claim: repository, repository_prefix: github.com/, deployment_reviews: github}]\nforges: [{name: github, type: gitlab, token_file: /etc/hosts}]\n")}, nil,
			`oidc_issuers[0].deployment_reviews: "github" names no forges entry of type github`},
		{"deployment reviews of another repository claim", []string{"--config", yaml("oidc_issuers: [{issuer: 'https://token.actions.githubusercontent.com', name: github, subjects: ['*'], repository_claim: repository_id, repository_prefix: github.com/, deployment_reviews: github}]\nforges: [{name: github, type: github, token_file: /etc/hosts}]\n")}, nil,
			`oidc_issuers[0].deployment_reviews: needs repository_claim "repository"`},
		{"deployment environment not configured", []string{"--config", yaml("oidc_issuers: [{issuer: 'https://token.actions.githubusercontent.com', name: github, subjects: ['*'], repository_claim: repository, repository_prefix: github.com/, deployment_reviews: github, deployment_environments: {production: [prod]}}]\nforges: [{name: github, type: github, token_file: /etc/hosts}]\n")}, nil,
			`oidc_issuers[0].deployment_environments.production: "prod" is not a configured environment (configured: default)`},
		{"deployment reviews on another GitHub", []string{"--config", yaml("oidc_issuers: [{issuer: 'https://ghe.bank.example/_services/token', name: github, subjects: ['*'], repository_claim: repository, repository_prefix: ghe.bank.example/, deployment_reviews: github}]\nforges: [{name: github, type: github, token_file: /etc/hosts}]\n")}, nil,
			`forge "github" does not serve ghe.bank.example, the host of repository_prefix`},
		{"blob size too large", []string{"--config", yaml("max_blob_size: 2GiB\n")}, nil, "max_blob_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(tt.args, env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadConfig(%v) error = %v, want one containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaultsAreValid(t *testing.T) {
	cfg, err := loadConfig(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIAddr != "127.0.0.1:8080" || cfg.WebhookAddr != ":8443" || cfg.DatabaseURL != "" || cfg.DefaultEnvironment != "default" {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestMaxBlobSize(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		file string
		want ByteSize
	}{
		{nil, nil, "", 16 << 20},
		{[]string{"--max-blob-size", "64MiB"}, nil, "", 64 << 20},
		{nil, map[string]string{"VOUCH_MAX_BLOB_SIZE": "512K"}, "", 512 << 10},
		{nil, nil, "max_blob_size: 1048576\n", 1 << 20},
		{nil, nil, "max_blob_size: 1 GiB\n", 1 << 30},
		{[]string{"--max-blob-size", "2048"}, nil, "max_blob_size: 1GiB\n", 2048},
	} {
		args := tc.args
		if tc.file != "" {
			p := filepath.Join(dir, "vouch.yaml")
			os.WriteFile(p, []byte(tc.file), 0o644)
			args = append(args, "--config", p)
		}
		cfg, err := loadConfig(args, env(tc.env))
		if err != nil || cfg.MaxBlobSize != tc.want {
			t.Errorf("loadConfig(%v, %v, %q): max_blob_size %d, %v; want %d", tc.args, tc.env, tc.file, cfg.MaxBlobSize, err, tc.want)
		}
	}
}

func TestParseFlagsInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		wantOut, wantE string
		wantArgs       []string
	}{
		{[]string{"prod", "-o", "json"}, "json", "", []string{"prod"}},
		{[]string{"-o", "json", "prod", "--environment", "e", "x"}, "json", "e", []string{"prod", "x"}},
		{[]string{"prod", "--", "-o", "json"}, "table", "", []string{"prod", "-o", "json"}},
		{[]string{"--", "prod"}, "table", "", []string{"prod"}},
		{nil, "table", "", nil},
	} {
		fs := newFlagSet("t")
		out := fs.String("o", "table", "")
		env := fs.String("environment", "", "")
		if err := parseFlagsHelp(fs, tc.args, "help"); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if *out != tc.wantOut || *env != tc.wantE || !slices.Equal(fs.Args(), tc.wantArgs) {
			t.Errorf("%q: -o %s --environment %q args %q; want %s %q %q", tc.args, *out, *env, fs.Args(), tc.wantOut, tc.wantE, tc.wantArgs)
		}
	}
	fs := newFlagSet("t")
	if err := parseFlagsHelp(fs, []string{"prod", "--nope"}, "help"); err == nil {
		t.Error("an unknown flag after a positional argument was accepted")
	}
}

func TestInsecureAPIIsRefused(t *testing.T) {
	env := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, true}, // loopback by default
		{[]string{"--api-addr", "127.0.0.1:9000"}, true},
		{[]string{"--api-addr", "[::1]:9000"}, true},
		{[]string{"--api-addr", "localhost:9000"}, true},
		{[]string{"--api-addr", ":8080"}, false},
		{[]string{"--api-addr", "0.0.0.0:8080"}, false},
		{[]string{"--api-addr", "10.0.0.5:8080"}, false},
		{[]string{"--api-addr", ":8080", "--api-tls"}, true},
		{[]string{"--api-addr", ":8080", "--api-insecure"}, true},
		{[]string{"--api-addr", ":8080", "--api-tls=false"}, false},
	} {
		_, err := loadConfig(tc.args, env)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "listens beyond loopback without TLS")) {
			t.Errorf("%v: %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}

// TestNotificationURLFromFile: a notifier's URL (a Slack webhook URL is a
// credential) can come from a file, a mounted Secret; an invalid one is
// refused without repeating it.
func TestNotificationURLFromFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "slack-url")
	os.WriteFile(secret, []byte("https://hooks.slack.com/services/T000/B000/SECRET\n"), 0o600)
	load := func(notifier string) (Config, error) {
		file := filepath.Join(dir, "vouch.yaml")
		os.WriteFile(file, []byte("notifications:\n  - "+notifier+"\n"), 0o644)
		return loadConfig([]string{"--config", file}, env(nil))
	}
	cfg, err := load(`{name: chan, type: slack, url_file: ` + secret + `}`)
	if err != nil || len(cfg.Notifications) != 1 || cfg.Notifications[0].URL != "https://hooks.slack.com/services/T000/B000/SECRET" {
		t.Fatalf("url_file: %+v, %v", cfg.Notifications, err)
	}
	for notifier, want := range map[string]string{
		`{name: chan, type: slack, url: "https://a.example", url_file: ` + secret + `}`: "not both",
		`{name: chan, type: slack, url_file: /nonexistent}`:                             "notifications[0].url_file",
		`{name: chan, type: slack, url: "hooks.slack.com/services/SECRET"}`:             "not an http(s) URL",
	} {
		if _, err := load(notifier); err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: %v, want an error saying %q without the URL", notifier, err, want)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	cfg, err := loadConfig([]string{"--trusted-proxies", "10.1.2.3, 192.168.0.0/16,::ffff:10.0.0.1"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.trustedProxies()
	if err != nil || fmt.Sprint(got) != "[10.1.2.3/32 192.168.0.0/16 10.0.0.1/32]" {
		t.Errorf("trustedProxies = %v, %v", got, err)
	}
}
