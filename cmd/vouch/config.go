package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/change"
	"github.com/vouch-dev/vouch/evidence/review"
	"github.com/vouch-dev/vouch/evidence/sigstore"
	"github.com/vouch-dev/vouch/evidence/trust"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/oidc"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/rediscache"
)

// Config is the configuration of `vouch serve`. Flags, VOUCH_* environment
// variables and a YAML file (--config) fill it, in that order of
// precedence over the defaults.
type Config struct {
	DataDir             string                 `json:"data_dir"`
	DatabaseURL         string                 `json:"database_url"`
	APIAddr             string                 `json:"api_addr"`
	WebhookAddr         string                 `json:"webhook_addr"`
	TLSCertFile         string                 `json:"tls_cert_file"`
	TLSKeyFile          string                 `json:"tls_key_file"`
	TLSDNSNames         []string               `json:"tls_dns_names"`
	PolicyDir           string                 `json:"policy_dir"`
	Namespace           string                 `json:"namespace"`
	ExemptNamespaces    []string               `json:"exempt_namespaces"`
	TrustedProxies      []string               `json:"trusted_proxies"`
	LogLevel            string                 `json:"log_level"`
	LogFormat           string                 `json:"log_format"`
	JournalMaxBatch     int                    `json:"journal_max_batch"`
	JournalMaxDelay     Duration               `json:"journal_max_delay"`
	IntegrityInterval   Duration               `json:"integrity_check_interval"`
	ShutdownTimeout     Duration               `json:"shutdown_timeout"`
	ShutdownDelay       Duration               `json:"shutdown_delay"`
	DebugAddr           string                 `json:"debug_addr"`
	Kubeconfig          string                 `json:"kubeconfig"`
	LeaderElection      bool                   `json:"leader_election"`
	LeaderElectionID    string                 `json:"leader_election_id"`
	WebhookSecret       string                 `json:"webhook_secret"`
	WebhookConfig       string                 `json:"webhook_configuration"`
	SnapshotInterval    Duration               `json:"snapshot_interval"`
	Notifications       []drift.NotifierConfig `json:"notifications"`
	EvidenceCacheSize   int                    `json:"evidence_cache_size"`
	MaxBlobSize         ByteSize               `json:"max_blob_size"`
	RedisURL            string                 `json:"redis_url"`
	APITLS              bool                   `json:"api_tls"`
	APIInsecure         bool                   `json:"api_insecure"`
	WebhookClientCAFile string                 `json:"webhook_client_ca_file"`
	APIRateLimit        int                    `json:"api_rate_limit"`
	JournalKeyFile      string                 `json:"journal_key_file"`
	JournalOrigin       string                 `json:"journal_origin"`
	CheckpointInterval  Duration               `json:"checkpoint_interval"`
	CheckpointPublish   []string               `json:"checkpoint_publish"`
	DefaultEnvironment  string                 `json:"default_environment"`
	Environments        []policy.Environment   `json:"environments"`
	TrustedKeys         []trust.KeyConfig      `json:"trusted_keys"`
	TrustedIdentities   []sigstore.Identity    `json:"trusted_identities"`
	SigstoreTrustedRoot string                 `json:"sigstore_trusted_root"`
	Forges              []review.ForgeConfig   `json:"forges"`
	ChangeSystems       []change.SystemConfig  `json:"change_systems"`
	RequireSignatures   []string               `json:"require_signatures"`
	OIDCIssuers         []oidc.IssuerConfig    `json:"oidc_issuers"`

	// AdminToken seeds an admin token (VOUCH_ADMIN_TOKEN only: a secret
	// does not belong in flags or config files).
	AdminToken string `json:"-"`
}

// Duration is a time.Duration written as "5ms" or "10s" in YAML.
type Duration time.Duration

// UnmarshalJSON accepts a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`want a duration such as "5ms" or "10s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"5ms\" or \"10s\", got %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ByteSize is a number of bytes, written as 16777216, "16MiB", "512KiB"
// or "1GiB" (also "16M", "512K", "1G", in powers of 1024).
type ByteSize int64

// ParseByteSize reads a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	v, mult := strings.TrimSpace(s), int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a size such as 16777216, \"16MiB\" or \"512KiB\", got %q", s)
	}
	return ByteSize(n * mult), nil
}

// UnmarshalJSON accepts a number of bytes or a size string.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		*b = ByteSize(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New(`want a size such as 16777216 or "16MiB"`)
	}
	v, err := ParseByteSize(s)
	*b = v
	return err
}

// DefaultAPIRateLimit is the default API requests per minute per token:
// far above what a pipeline needs, low enough to stop a runaway script.
const DefaultAPIRateLimit = 3000

// defaultConfig is the zero-setup configuration.
func defaultConfig() Config {
	return Config{
		DataDir:            "vouch-data",
		APIAddr:            "127.0.0.1:8080",
		WebhookAddr:        ":8443",
		Namespace:          "vouch-system",
		ExemptNamespaces:   []string{"kube-system"},
		LogLevel:           "info",
		LogFormat:          "json",
		JournalMaxBatch:    journal.DefaultMaxBatch,
		EvidenceCacheSize:  evidence.DefaultCacheSize,
		MaxBlobSize:        evidence.DefaultMaxBlobSize,
		APIRateLimit:       DefaultAPIRateLimit,
		CheckpointInterval: Duration(journal.DefaultCheckpointInterval),
		LeaderElectionID:   "vouch",
		SnapshotInterval:   Duration(drift.DefaultHeartbeat),
		JournalMaxDelay:    Duration(journal.DefaultMaxDelay),
		IntegrityInterval:  Duration(24 * time.Hour),
		ShutdownTimeout:    Duration(25 * time.Second),
		DefaultEnvironment: policy.DefaultEnvironmentName,
	}
}

// setting is one configuration field settable by flag and environment.
type setting struct {
	name  string // flag name; the variable is VOUCH_ + NAME with '-' as '_'
	field string // YAML key, for error messages
	usage string
	set   func(c *Config, v string) error
}

// boolSettings may be given as bare flags (--api-tls).
var boolSettings = map[string]bool{"api-tls": true, "api-insecure": true, "leader-election": true}

func (s setting) env() string {
	return "VOUCH_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

func boolean(p func(c *Config) *bool) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		*p(c) = b
		return nil
	}
}

func str(p func(c *Config) *string) func(c *Config, v string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func list(p func(c *Config) *[]string) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		*p(c) = out
		return nil
	}
}

func duration(p func(c *Config) *Duration) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("want a duration such as \"5ms\" or \"10s\", got %q", v)
		}
		*p(c) = Duration(d)
		return nil
	}
}

var serveSettings = []setting{
	{"data-dir", "data_dir", "directory for the embedded database, generated certificates and the admin token (default \"vouch-data\")", str(func(c *Config) *string { return &c.DataDir })},
	{"database-url", "database_url", "PostgreSQL URL (postgres://user:pass@host/db); the embedded SQLite database when empty", str(func(c *Config) *string { return &c.DatabaseURL })},
	{"api-addr", "api_addr", "address of the HTTP API (default \":8080\")", str(func(c *Config) *string { return &c.APIAddr })},
	{"webhook-addr", "webhook_addr", "address of the HTTPS admission webhook (default \":8443\")", str(func(c *Config) *string { return &c.WebhookAddr })},
	{"tls-cert-file", "tls_cert_file", "webhook serving certificate (PEM); generated into the data dir when empty", str(func(c *Config) *string { return &c.TLSCertFile })},
	{"tls-key-file", "tls_key_file", "key of --tls-cert-file (PEM)", str(func(c *Config) *string { return &c.TLSKeyFile })},
	{"tls-dns-names", "tls_dns_names", "comma-separated extra names (or IPs) for the generated certificate, e.g. vouch.vouch-system.svc", list(func(c *Config) *[]string { return &c.TLSDNSNames })},
	{"policy-dir", "policy_dir", "directory of extra Rego modules, reloaded when they change", str(func(c *Config) *string { return &c.PolicyDir })},
	{"namespace", "namespace", "Vouch's own namespace, never evaluated (default \"vouch-system\")", str(func(c *Config) *string { return &c.Namespace })},
	{"trusted-proxies", "trusted_proxies", "comma-separated addresses or CIDRs of the proxies in front of the API (an ingress): their requests are from the address they put in X-Forwarded-For, for the logs and the console's sign-in limit (default: none)", list(func(c *Config) *[]string { return &c.TrustedProxies })},
	{"exempt-namespaces", "exempt_namespaces", "comma-separated namespaces never evaluated (default \"kube-system\")", list(func(c *Config) *[]string { return &c.ExemptNamespaces })},
	{"log-level", "log_level", "debug, info, warn or error (default \"info\")", str(func(c *Config) *string { return &c.LogLevel })},
	{"log-format", "log_format", "json or text (default \"json\")", str(func(c *Config) *string { return &c.LogFormat })},
	{"journal-max-batch", "journal_max_batch", "most journal entries per commit (default 512)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", v)
		}
		c.JournalMaxBatch = n
		return nil
	}},
	{"integrity-check-interval", "integrity_check_interval", "how often the leader verifies the whole stored journal and audits the evidence against it, alerting when they do not verify (default \"24h\"; 0: never)", duration(func(c *Config) *Duration { return &c.IntegrityInterval })},
	{"journal-max-delay", "journal_max_delay", "how long a journal batch may wait for more entries (default 0: commit at once)", duration(func(c *Config) *Duration { return &c.JournalMaxDelay })},
	{"shutdown-timeout", "shutdown_timeout", "how long in-flight requests get to finish at shutdown (default \"25s\")", duration(func(c *Config) *Duration { return &c.ShutdownTimeout })},
	{"shutdown-delay", "shutdown_delay", "at shutdown, how long to go on serving with /readyz failing before closing the listeners, so that Kubernetes takes the pod out of the Services first (default 0; the chart sets 5s)", duration(func(c *Config) *Duration { return &c.ShutdownDelay })},
	{"evidence-cache-size", "evidence_cache_size", "digests of evidence cached in memory; 0 turns the cache off (default 100000)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", v)
		}
		c.EvidenceCacheSize = n
		return nil
	}},
	{"api-tls", "api_tls", "serve the API over HTTPS with the webhook's serving certificate", boolean(func(c *Config) *bool { return &c.APITLS })},
	{"api-insecure", "api_insecure", "allow plain HTTP for the API on a non-loopback address, when a proxy or mesh terminates TLS in front of it", boolean(func(c *Config) *bool { return &c.APIInsecure })},
	{"webhook-client-ca-file", "webhook_client_ca_file", "PEM CA of the client certificates the webhook accepts (mTLS: only the apiserver's); default: any client", str(func(c *Config) *string { return &c.WebhookClientCAFile })},
	{"sigstore-trusted-root", "sigstore_trusted_root", "Sigstore trusted root(s) that keyless attestations (trusted_identities) are verified against: a trusted_root.json, or JSON Lines of them as gh attestation trusted-root prints", str(func(c *Config) *string { return &c.SigstoreTrustedRoot })},
	{"redis-url", "redis_url", "Redis shared by the replicas: an evidence cache, change notifications and the API rate limit (redis://[:password@]host:6379/0; rediss:// for TLS)", str(func(c *Config) *string { return &c.RedisURL })},
	{"api-rate-limit", "api_rate_limit", "API requests per minute per token, shared through Redis when set; 0 turns the limit off (default 3000)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", v)
		}
		c.APIRateLimit = n
		return nil
	}},
	{"max-blob-size", "max_blob_size", "largest blob (test report, scan, SBOM) accepted by POST /api/v1/blobs, e.g. 16MiB (default 16MiB)", func(c *Config, v string) error {
		n, err := ParseByteSize(v)
		c.MaxBlobSize = n
		return err
	}},
	{"journal-key-file", "journal_key_file", "Ed25519 key that signs journal checkpoints; generated there on first start (default <data-dir>/journal.key)", str(func(c *Config) *string { return &c.JournalKeyFile })},
	{"journal-origin", "journal_origin", "name of this journal in its checkpoints, e.g. vouch.bank.example/prod (used when the key is generated)", str(func(c *Config) *string { return &c.JournalOrigin })},
	{"checkpoint-interval", "checkpoint_interval", "how often a new checkpoint is signed while the journal grows (default \"5s\")", duration(func(c *Config) *Duration { return &c.CheckpointInterval })},
	{"checkpoint-publish", "checkpoint_publish", "comma-separated directories or http(s) URLs that receive every checkpoint", list(func(c *Config) *[]string { return &c.CheckpointPublish })},
	{"kubeconfig", "kubeconfig", "kubeconfig of the cluster Vouch works with; in a pod, its service account is used", str(func(c *Config) *string { return &c.Kubeconfig })},
	{"leader-election", "leader_election", "elect one replica (coordination.k8s.io Lease) for checkpoints and certificate rotation (true or false)", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", v)
		}
		c.LeaderElection = b
		return nil
	}},
	{"leader-election-id", "leader_election_id", "name of the Lease in Vouch's namespace (default \"vouch\")", str(func(c *Config) *string { return &c.LeaderElectionID })},
	{"webhook-secret", "webhook_secret", "keep the webhook's CA and certificate in this Secret of Vouch's namespace (needs the cluster)", str(func(c *Config) *string { return &c.WebhookSecret })},
	{"webhook-configuration", "webhook_configuration", "ValidatingWebhookConfiguration whose caBundle Vouch keeps up to date (with --webhook-secret)", str(func(c *Config) *string { return &c.WebhookConfig })},
	{"snapshot-interval", "snapshot_interval", "heartbeat of the snapshots of what runs: a snapshot is journaled at least this often, and whenever it changes (default \"1m0s\")", duration(func(c *Config) *Duration { return &c.SnapshotInterval })},
	{"debug-addr", "debug_addr", "address for Go's pprof profiles at /debug/pprof (off when empty; keep it on loopback)", str(func(c *Config) *string { return &c.DebugAddr })},
	{"default-environment", "default_environment", "environment of namespaces no environment claims (default \"default\")", str(func(c *Config) *string { return &c.DefaultEnvironment })},
}

// loadConfig builds the configuration from defaults, the YAML file, the
// environment and the command line, then validates it. getenv is os.Getenv
// outside tests.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("vouch serve", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	configFile := fs.String("config", getenv("VOUCH_CONFIG"), "YAML configuration file (also VOUCH_CONFIG)")
	flags := map[string]string{}
	var order []string
	for _, s := range serveSettings {
		s := s
		record := func(v string) error {
			flags[s.name] = v
			order = append(order, s.name)
			return nil
		}
		if boolSettings[s.name] {
			fs.BoolFunc(s.name, s.usage+" (env "+s.env()+")", record)
		} else {
			fs.Func(s.name, s.usage+" (env "+s.env()+")", record)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, errHelp{usage(fs)}
		}
		return Config{}, fmt.Errorf("%w\n\n%s", err, usage(fs))
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q\n\n%s", fs.Arg(0), usage(fs))
	}

	cfg := defaultConfig()
	if *configFile != "" {
		data, err := os.ReadFile(*configFile)
		if err != nil {
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", *configFile, err)
		}
	}
	for _, s := range serveSettings {
		if v := getenv(s.env()); v != "" {
			if err := s.set(&cfg, v); err != nil {
				return Config{}, fmt.Errorf("invalid configuration: %s (%s): %w", s.field, s.env(), err)
			}
		}
	}
	for _, name := range order {
		for _, s := range serveSettings {
			if s.name == name {
				if err := s.set(&cfg, flags[name]); err != nil {
					return Config{}, fmt.Errorf("invalid configuration: %s (--%s): %w", s.field, s.name, err)
				}
			}
		}
	}
	cfg.AdminToken = getenv("VOUCH_ADMIN_TOKEN")
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

type errHelp struct{ text string }

func (e errHelp) Error() string { return e.text }

func usage(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("Usage: vouch serve [flags]\n\nRuns the admission webhook and the API. Flags:\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(new(strings.Builder))
	return b.String()
}

var dnsNameRE = regexp.MustCompile(`^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// validate checks the configuration; errors name the field.
func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir (--data-dir): must not be empty")
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return errors.New("database_url (--database-url): must be a postgres:// or postgresql:// URL")
		}
	}
	for _, a := range []struct{ field, flag, v string }{{"api_addr", "api-addr", c.APIAddr}, {"webhook_addr", "webhook-addr", c.WebhookAddr}} {
		_, port, err := net.SplitHostPort(a.v)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 0 || p > 65535 {
			return fmt.Errorf("%s (--%s): %q is not host:port (e.g. \":8080\" or \"127.0.0.1:8080\")", a.field, a.flag, a.v)
		}
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			return fmt.Errorf("debug_addr (--debug-addr): %q is not host:port", c.DebugAddr)
		}
		if !loopback(c.DebugAddr) {
			return fmt.Errorf("debug_addr (--debug-addr): %q is not a loopback address: pprof has no authentication and shows the command line and memory; use 127.0.0.1:PORT (kubectl port-forward reaches it)", c.DebugAddr)
		}
	}
	if _, err := c.trustedProxies(); err != nil {
		return err
	}
	if c.APIAddr == c.WebhookAddr {
		return fmt.Errorf("webhook_addr (--webhook-addr): must differ from api_addr, both are %q", c.APIAddr)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("tls_cert_file and tls_key_file (--tls-cert-file, --tls-key-file): set both or neither")
	}
	for _, f := range []struct{ field, path string }{{"tls_cert_file", c.TLSCertFile}, {"tls_key_file", c.TLSKeyFile}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				return fmt.Errorf("%s: %w", f.field, err)
			}
		}
	}
	for i, n := range c.TLSDNSNames {
		if net.ParseIP(n) == nil && !dnsNameRE.MatchString(n) {
			return fmt.Errorf("tls_dns_names[%d] (--tls-dns-names): %q is not a DNS name or IP address", i, n)
		}
	}
	if c.PolicyDir != "" {
		if info, err := os.Stat(c.PolicyDir); err != nil || !info.IsDir() {
			return fmt.Errorf("policy_dir (--policy-dir): %q is not a readable directory", c.PolicyDir)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level (--log-level): %q is not debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return fmt.Errorf("log_format (--log-format): %q is not json or text", c.LogFormat)
	}
	if c.JournalMaxBatch < 1 || c.JournalMaxBatch > 10000 {
		return fmt.Errorf("journal_max_batch (--journal-max-batch): %d is not between 1 and 10000", c.JournalMaxBatch)
	}
	if d := time.Duration(c.CheckpointInterval); d < 100*time.Millisecond || d > time.Hour {
		return fmt.Errorf("checkpoint_interval (--checkpoint-interval): %s is not between 100ms and 1h", d)
	}
	for i, dest := range c.CheckpointPublish {
		if _, err := journal.NewPublisher(dest); err != nil {
			return fmt.Errorf("checkpoint_publish[%d] (--checkpoint-publish): %w", i, err)
		}
	}
	if c.JournalOrigin != "" && (strings.ContainsAny(c.JournalOrigin, "+ \t\n") || !utf8.ValidString(c.JournalOrigin)) {
		return fmt.Errorf("journal_origin (--journal-origin): %q may not contain spaces or '+'", c.JournalOrigin)
	}
	if c.WebhookSecret != "" && (c.TLSCertFile != "") {
		return errors.New("webhook_secret (--webhook-secret): the certificate comes from the Secret or from tls_cert_file, not both")
	}
	if c.WebhookConfig != "" && c.WebhookSecret == "" {
		return errors.New("webhook_configuration (--webhook-configuration): only used with webhook_secret, to publish its CA")
	}
	if d := time.Duration(c.SnapshotInterval); d < time.Second || d > 24*time.Hour {
		return fmt.Errorf("snapshot_interval (--snapshot-interval): %s is not between 1s and 24h", d)
	}
	for i := range c.Notifications {
		n := &c.Notifications[i]
		if n.URLFile != "" {
			if n.URL != "" {
				return fmt.Errorf("notifications[%d]: set url or url_file, not both", i)
			}
			b, err := os.ReadFile(n.URLFile)
			if err != nil {
				return fmt.Errorf("notifications[%d].url_file: %w", i, err)
			}
			n.URL = strings.TrimSpace(string(b))
		}
		u, err := url.Parse(n.URL)
		switch {
		case n.Name == "":
			return fmt.Errorf("notifications[%d].name: is required", i)
		case n.Type != "webhook" && n.Type != "slack":
			return fmt.Errorf("notifications[%d].type: %q is not webhook or slack", i, n.Type)
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			// Not repeated: the URL may be a credential.
			return fmt.Errorf("notifications[%d].url: not an http(s) URL", i)
		}
	}
	if c.MaxBlobSize < 1<<10 || c.MaxBlobSize > 1<<30 {
		return fmt.Errorf("max_blob_size (--max-blob-size): %d bytes is not between 1KiB and 1GiB", c.MaxBlobSize)
	}
	if !c.APITLS && !c.APIInsecure && !loopback(c.APIAddr) {
		return fmt.Errorf("api_addr (--api-addr): %q listens beyond loopback without TLS, so tokens would cross the network in clear; "+
			"set api_tls (--api-tls) to serve HTTPS with the webhook's certificate, or api_insecure (--api-insecure) if a proxy or mesh terminates TLS in front of it", c.APIAddr)
	}
	if c.RedisURL != "" {
		if _, err := rediscache.ClientOptions(c.RedisURL); err != nil {
			return fmt.Errorf("redis_url (--redis-url): %v", err)
		}
	}
	if c.APIRateLimit < 0 {
		return fmt.Errorf("api_rate_limit (--api-rate-limit): %d is negative", c.APIRateLimit)
	}
	if c.EvidenceCacheSize < 0 {
		return fmt.Errorf("evidence_cache_size (--evidence-cache-size): %d is negative", c.EvidenceCacheSize)
	}
	if d := time.Duration(c.JournalMaxDelay); d < 0 || d > time.Second {
		return fmt.Errorf("journal_max_delay (--journal-max-delay): %s is not between 0 and 1s", d)
	}
	if d := time.Duration(c.IntegrityInterval); d != 0 && (d < time.Minute || d > 30*24*time.Hour) {
		return fmt.Errorf("integrity_check_interval (--integrity-check-interval): %s is neither 0 nor between 1m and 720h", d)
	}
	if d := time.Duration(c.ShutdownDelay); d < 0 || d > time.Minute {
		return fmt.Errorf("shutdown_delay (--shutdown-delay): %s is not between 0 and 1m", d)
	}
	if d := time.Duration(c.ShutdownTimeout); d < time.Second || d > 10*time.Minute {
		return fmt.Errorf("shutdown_timeout (--shutdown-timeout): %s is not between 1s and 10m", d)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 32 {
		return errors.New("VOUCH_ADMIN_TOKEN: must be at least 32 characters (e.g. `openssl rand -hex 32`)")
	}
	envs, err := c.environments()
	if err != nil {
		return err
	}
	for i, e := range c.Environments {
		if e.Require.ChangeRequest != nil && len(c.ChangeSystems) == 0 {
			return fmt.Errorf("environments[%d].require.change_request: no change_systems are configured, so no change request could ever be recorded and every change in %s would be denied", i, e.Name)
		}
	}
	if _, _, err := c.trust(); err != nil {
		return err
	}
	if _, err := c.oidc(); err != nil {
		return err
	}
	for i, is := range c.OIDCIssuers {
		if is.DeploymentReviews == "" {
			continue
		}
		field := fmt.Sprintf("oidc_issuers[%d].deployment_reviews", i)
		host := strings.TrimSuffix(is.RepositoryPrefix, "/")
		f := slices.IndexFunc(c.Forges, func(f review.ForgeConfig) bool { return f.Name == is.DeploymentReviews && f.Type == "github" })
		if f < 0 {
			return fmt.Errorf("%s: %q names no forges entry of type github (the forge Vouch asks who approved a job's deployment)", field, is.DeploymentReviews)
		}
		switch {
		case is.RepositoryClaim != "repository":
			return fmt.Errorf("%s: needs repository_claim \"repository\" (GitHub's owner/name), not %q", field, is.RepositoryClaim)
		case !slices.Contains(c.Forges[f].ServedHosts(), host):
			return fmt.Errorf("%s: forge %q does not serve %s, the host of repository_prefix: the jobs' runs would be looked up on another GitHub", field, is.DeploymentReviews, host)
		}
		for _, name := range slices.Sorted(maps.Keys(is.DeploymentEnvironments)) {
			for _, e := range is.DeploymentEnvironments[name] {
				if !slices.Contains(envs.Names(), e) {
					return fmt.Errorf("oidc_issuers[%d].deployment_environments.%s: %q is not a configured environment (configured: %s)", i, name, e, strings.Join(envs.Names(), ", "))
				}
			}
		}
	}
	return nil
}

// oidc is the verifier of CI jobs' ID tokens, nil when no issuer is
// trusted.
func (c *Config) oidc() (*oidc.Verifier, error) {
	if len(c.OIDCIssuers) == 0 {
		return nil, nil
	}
	return oidc.New(c.OIDCIssuers)
}

// trust loads the trusted keys and identities, and returns the Sigstore
// trusted roots it read.
func (c *Config) trust() (*trust.Trust, []byte, error) {
	var root []byte
	if c.SigstoreTrustedRoot != "" {
		b, err := os.ReadFile(c.SigstoreTrustedRoot)
		if err != nil {
			return nil, nil, fmt.Errorf("sigstore_trusted_root: %w", err)
		}
		root = b
	}
	t, err := trust.New(trust.Config{Keys: c.TrustedKeys, Identities: c.TrustedIdentities, TrustedRoot: root, Required: c.RequireSignatures})
	return t, root, err
}

// journalKeyFile is where the checkpoint signing key lives.
func (c *Config) journalKeyFile() string {
	if c.JournalKeyFile != "" {
		return c.JournalKeyFile
	}
	return filepath.Join(c.DataDir, "journal.key")
}

func (c *Config) environments() (*policy.Environments, error) {
	envs, err := policy.NewEnvironments(c.DefaultEnvironment, c.Environments)
	if err == nil && slices.Contains(envs.Names(), drift.ExemptEnvironment) {
		return nil, fmt.Errorf("environment %q: the name is reserved for what runs in exempt_namespaces", drift.ExemptEnvironment)
	}
	return envs, err
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// trustedProxies parses trusted_proxies: addresses or CIDRs.
func (c *Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, v := range c.TrustedProxies {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("trusted_proxies[%d] (--trusted-proxies): %q is not an address or CIDR", i, v)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
