package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/mod/sumdb/note"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/certs"
	"github.com/vouch-dev/vouch/console"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/evidence/change"
	"github.com/vouch-dev/vouch/evidence/review"
	"github.com/vouch-dev/vouch/exempt"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/kube"
	"github.com/vouch-dev/vouch/metrics"
	"github.com/vouch-dev/vouch/migration"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/postgres"
	"github.com/vouch-dev/vouch/ratelimit"
	"github.com/vouch-dev/vouch/rediscache"
	vrego "github.com/vouch-dev/vouch/rego"
	"github.com/vouch-dev/vouch/replay"
	"github.com/vouch-dev/vouch/sqlite"
	"github.com/vouch-dev/vouch/webhook"
)

// store is what Vouch needs from a storage adapter.
type store interface {
	journal.Store
	evidence.Store
	evidence.BlobStore
	auth.Store
	auth.SessionStore
	drift.Store
	drift.AdmittedLookup
	drift.DecisionStore
	evidence.RefLister
	SchemaVersions() migration.Versions
	Ping(ctx context.Context) error
	Close() error
}

// redisEntryMaxAge bounds how long the in-process cache keeps an answer
// that may have come from Redis.
const redisEntryMaxAge = 30 * time.Second

// serve runs the webhook and the API until ctx ends, then shuts down
// gracefully: servers stop accepting, in-flight requests finish, pending
// journal batches commit.
func serve(ctx context.Context, cfg Config, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	klog.SetSlogLogger(log) // Kubernetes libraries log through slog too
	if set, container := setMemoryLimit(); set > 0 {
		log.Info("Go memory limit set from the container's", "gomemlimit_mib", set>>20, "container_limit_mib", container>>20)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// It holds the admin token, the CA and journal keys and the database.
	if st, err := os.Stat(cfg.DataDir); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
			log.Warn("the data directory is open to other users and could not be closed", "dir", cfg.DataDir, "mode", st.Mode().Perm().String(), "error", err)
		}
	}
	// Listen first: an address in use stops the start before anything is
	// created, opened or journaled.
	webhookListener, err := net.Listen("tcp", cfg.WebhookAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (webhook_addr, --webhook-addr): %w", cfg.WebhookAddr, err)
	}
	defer webhookListener.Close() // after Shutdown closed it, or when the start failed
	apiListener, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (api_addr, --api-addr): %w", cfg.APIAddr, err)
	}
	defer apiListener.Close()
	listeners := []net.Listener{webhookListener, apiListener}
	var draining atomic.Bool // shutting down: /readyz fails, requests are still served
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if v := st.SchemaVersions(); v.Ahead() {
		log.Warn("a newer Vouch migrated the database: this binary knows its schema up to an older version, and works on it only as far as the migrations were backward compatible (docs/install.md, Upgrading); run the newer version",
			"schema_version", v.Found, "known_version", v.Known)
	}

	m := metrics.New()
	// The background work (cache invalidation, the spool's drainer, leader
	// duties) runs until the shutdown delay is over, not just until the
	// signal: the replica still decides meanwhile.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var journalStore journal.Store = st
	var lookup webhook.EvidenceLookup = st
	var fresh webhook.EvidenceLookup
	var rdb *redis.Client
	var sharedCache *rediscache.Cache
	if cfg.RedisURL != "" {
		opts, _ := rediscache.ClientOptions(cfg.RedisURL) // validated by loadConfig
		sharedCache, rdb = rediscache.Open(opts, st, rediscache.Options{Logger: log})
		defer rdb.Close()
		go sharedCache.Maintain(runCtx)
		lookup, fresh = sharedCache, st
		journalStore = evidence.InvalidateAfter(journalStore, func(digests []string) { sharedCache.Invalidate(ctx, digests...) })
	}
	pg, shared := st.(*postgres.DB)
	var cache *evidence.Cache
	if cfg.EvidenceCacheSize > 0 {
		cache = evidence.NewCache(lookup, cfg.EvidenceCacheSize, !shared) // PostgreSQL: live once the change feed listens
		if sharedCache != nil {
			// Redis may answer stale after a change its deletes missed.
			cache.SetMaxAge(redisEntryMaxAge)
			go sharedCache.Subscribe(runCtx, cache.Invalidate)
		}
		journalStore, lookup, fresh = cache.WrapJournal(journalStore), cache, st
	}
	// Every replica hears every change on PostgreSQL: it deletes the
	// digest from Redis too (and reads it from the store until it has),
	// then from its own cache.
	if shared && (cache != nil || sharedCache != nil) {
		changed, live := func(string) {}, func(bool) {}
		if cache != nil {
			changed, live = func(d string) { cache.Invalidate(d) }, cache.SetLive
		}
		if sharedCache != nil {
			forget := changed
			changed = func(d string) { sharedCache.Forget(d); forget(d) }
		}
		go pg.WatchEvidence(runCtx, changed, live, log)
	}
	appender := journal.NewAppender(journalStore, journal.AppenderOptions{
		MaxBatch: cfg.JournalMaxBatch, MaxDelay: time.Duration(cfg.JournalMaxDelay), Observe: m.ObserveJournalBatch,
	})
	// Decisions go through a spool: while the store is unreachable they are
	// kept, fsynced, in the data directory and sequenced when it is back.
	// An entry the store would refuse is refused before it is spooled
	// (journalStore may wrap st, hiding its Screen).
	spoolOpts := journal.SpoolOptions{Logger: log, Observe: m.ObserveSpool}
	if sc, ok := st.(journal.Screener); ok {
		spoolOpts.Screen = sc.Screen
	}
	spool, err := journal.OpenSpool(filepath.Join(cfg.DataDir, "journal.spool"), appender, journalStore, spoolOpts)
	if err != nil {
		appender.Close(ctx)
		return err
	}
	go spool.Run(runCtx, time.Second)
	var policyChanges *policyJournal
	engine, err := policy.New(ctx, policy.Config{Builtin: vrego.FS, Dir: cfg.PolicyDir, Logger: log, OnChange: func() {
		if err := policyChanges.record(context.WithoutCancel(ctx)); err != nil {
			log.Error("could not journal the policy change", "error", err)
		}
	}})
	if err != nil {
		appender.Close(ctx)
		return err
	}
	envs, _ := cfg.environments() // validated by loadConfig
	policyChanges = &policyJournal{appender: appender, store: st, engine: engine, envs: envs, log: log}
	if err := policyChanges.record(ctx); err != nil {
		appender.Close(ctx)
		return err
	}
	tokens := auth.NewService(st, nil)
	if err := seedAdminToken(ctx, cfg, tokens, log); err != nil {
		appender.Close(ctx)
		return err
	}

	exemptions := exempt.New(appender, st, envs.Names())
	if err := exemptions.Refresh(ctx); err != nil {
		appender.Close(ctx)
		return err
	}
	alerts := &alerter{log: log}
	kc, err := kubeClient(cfg)
	if err != nil {
		appender.Close(ctx)
		return err
	}
	var namespaces webhook.NamespaceLookup
	if kc != nil {
		ns := kube.NewNamespaces(kc, log)
		go func() {
			if err := ns.Start(runCtx); err != nil && runCtx.Err() == nil {
				log.Error("namespace informer", "error", err)
			}
		}()
		namespaces = ns
	}
	hook, err := webhook.New(webhook.Config{
		Policy: engine, Evidence: lookup, FreshEvidence: fresh, Journal: spool, Environments: envs,
		ExemptNamespaces: append([]string{cfg.Namespace}, cfg.ExemptNamespaces...),
		Logger:           log, Observer: m, Exemptions: exemptions, Alerts: alerts, Namespaces: namespaces,
	})
	if err != nil {
		appender.Close(ctx)
		return err
	}
	driftService := &drift.Service{
		Store:    st,
		Recorder: &drift.Recorder{Journal: appender, Store: st, Heartbeat: time.Duration(cfg.SnapshotInterval)},
		Checker: drift.Checker{Evidence: lookup, Admitted: st, Assessor: assessor{hook},
			Reported: func(env string) bool { return !slices.Contains(admittedEnvironments(envs), env) }},
		Environments: envs.Names(),
		Journal:      st,
	}
	trusted, root, err := cfg.trust()
	if err != nil {
		appender.Close(ctx)
		return err
	}
	if cfg.SigstoreTrustedRoot != "" {
		go watchTrustedRoot(runCtx, cfg.SigstoreTrustedRoot, root, trusted, log, trustedRootCheck)
	}
	forges, err := review.NewForges(cfg.Forges)
	if err != nil {
		appender.Close(ctx)
		return err
	}
	changes, err := change.NewSystems(cfg.ChangeSystems)
	if err != nil {
		appender.Close(ctx)
		return err
	}
	evidenceService := evidence.NewService(appender, envs.Names(), nil, evidence.WithBlobs(st), evidence.WithHistory(st))
	evidenceService.RequireSignature = trusted.SignatureRequired
	var limiter ratelimit.Limiter
	switch {
	case cfg.APIRateLimit > 0 && rdb != nil:
		limiter = ratelimit.NewRedis(rdb, cfg.APIRateLimit, log)
	case cfg.APIRateLimit > 0:
		limiter = ratelimit.NewMemory(cfg.APIRateLimit)
	}
	// Replays read the store, not the cache: old digests would evict the
	// evidence admissions need.
	replayer := &replay.Replayer{Journal: st, Evidence: st, Webhook: hook, Current: engine, Builtin: vrego.FS, Environments: envs.Names()}
	verifier, err := cfg.oidc()
	if err != nil {
		return err
	}
	for _, is := range cfg.OIDCIssuers {
		if cmp.Or(is.Audience, "vouch") == "vouch" {
			log.Warn("an OIDC issuer is trusted for the default audience \"vouch\": a job's token for any other Vouch on the default (staging, say) is accepted here too; set audience to this deployment's URL (docs/ci.md)", "issuer", is.Issuer)
		}
	}
	var ciTokens api.OIDCVerifier
	if verifier != nil {
		ciTokens = verifier
	}
	apiServer := api.New(api.Config{
		OIDC:      ciTokens,
		RateLimit: limiter, RateLimitPerMinute: cfg.APIRateLimit, TrustedProxies: cfg.TrustedProxies,
		Drift: driftService, Reviewer: hook, Exemptions: exemptions, Replayer: replayer,
		Evidence: evidenceService, Trust: trusted, Forges: forges, Changes: changes, EvidenceStore: st, Journal: st, Tokens: tokens,
		Blobs: st, MaxBlobBytes: int64(cfg.MaxBlobSize),
		// Ready to admit once a policy is loaded, also while the store is
		// down: decisions are spooled, and a NotReady pod would leave the
		// webhook without endpoints, refusing every change.
		Ready: func(ctx context.Context) error {
			if draining.Load() {
				return errors.New("shutting down")
			}
			if engine.Version() == "" {
				return errors.New("no policy loaded")
			}
			return nil
		},
		Degraded: func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				log.Warn("readiness: store unreachable", "error", err)
				return errors.New("store unreachable: admission decisions are spooled in the data directory; evidence cannot be recorded")
			}
			return nil
		},
		Metrics: promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}), Observer: m, Logger: log,
	})

	// A journal the checkpointer will not sign is an integrity failure.
	refused := func(ctx context.Context, err error) {
		m.CheckpointRefused()
		alerts.monitor.Alert(ctx, drift.Notification{Event: "integrity-check-failed", Summary: err.Error()})
	}
	checkpointer, publicKey, err := newCheckpointer(cfg, st, m, log, refused)
	if err != nil {
		appender.Close(ctx)
		return err
	}
	trustedProxies, _ := cfg.trustedProxies() // validated by loadConfig
	// The auditor's console serves every path the API does not.
	auditorConsole, err := console.New(console.Config{
		Tokens: tokens, Sessions: st, Journal: st, Evidence: st, Blobs: st, Decisions: st, Drift: driftService,
		Environments: envs.Names(), PublicKey: publicKey, API: apiServer, TrustedProxies: trustedProxies,
		// api_insecure off loopback means a proxy terminates TLS in front.
		SecureCookies: cfg.APITLS || (cfg.APIInsecure && !loopback(cfg.APIAddr)), Logger: log,
	})
	if err != nil {
		appender.Close(ctx)
		return err
	}
	certSource, caFile, rotator, err := servingCertificate(cfg, kc, log)
	if err != nil {
		appender.Close(ctx)
		return err
	}
	go certSource.Run(runCtx)
	go engine.Watch(runCtx, 2*time.Second)
	monitor := &drift.Monitor{Service: driftService, Journal: appender, Notifiers: cfg.Notifications, Logger: log, Gauges: m.SetCompliance}
	alerts.monitor = monitor
	go exemptions.Run(runCtx, 2*time.Second, log)
	singletons := []func(context.Context){checkpointer.Run, monitor.Run, m.Lead}
	if d := time.Duration(cfg.IntegrityInterval); d > 0 {
		verifier, err := journal.NewVerifier(publicKey)
		if err != nil {
			appender.Close(ctx)
			return err
		}
		check := &integrityCheck{store: st, verifier: verifier, interval: d, alert: monitor.Alert, observe: m.ObserveIntegrityCheck, log: log}
		singletons = append(singletons, check.Run)
	}
	if rotator != nil {
		singletons = append(singletons, rotator.Run)
	}
	if kc != nil {
		exempt := append([]string{cfg.Namespace}, cfg.ExemptNamespaces...)
		snapshotter := &drift.Snapshotter{
			Watcher: drift.NewWatcher(kc, 10*time.Minute), Recorder: driftService.Recorder, Logger: log,
			Interval: time.Duration(cfg.SnapshotInterval), Environments: append(admittedEnvironments(envs), drift.ExemptEnvironment),
			EnvOf: func(ns string) string {
				if slices.Contains(exempt, ns) {
					return drift.ExemptEnvironment
				}
				return envs.For(ns).Name
			},
		}
		singletons = append(singletons, snapshotter.Run)
	}
	go runSingletons(runCtx, cfg, kc, log, singletons)

	webhookMux := http.NewServeMux()
	webhookMux.Handle("/validate", hook)
	webhookMux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	webhookTLS := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certSource.GetCertificate}
	if cfg.WebhookClientCAFile != "" {
		// mTLS: only clients with a certificate from this CA (the
		// apiserver's) may call the webhook.
		pool, err := loadCAPool(cfg.WebhookClientCAFile)
		if err != nil {
			appender.Close(ctx)
			return err
		}
		webhookTLS.ClientCAs, webhookTLS.ClientAuth = pool, tls.RequireAndVerifyClientCert
	} else if !loopback(cfg.WebhookAddr) {
		log.Warn("the webhook accepts reviews from any client that reaches it, and journals its decisions about them: " +
			"set webhook_client_ca_file (the apiserver's client certificate, mTLS), or restrict who reaches the port (docs/install.md)")
	}
	// A client gets ReadTimeout to send a whole request: a slow one cannot
	// hold a connection and its buffer. The apiserver sends a review at
	// once and waits at most 30 s; the API's largest body is a blob. The
	// API has no write timeout: an export streams for as long as it takes.
	servers := []*http.Server{
		{Addr: cfg.WebhookAddr, Handler: webhookMux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 35 * time.Second,
			IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10, TLSConfig: webhookTLS, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		{Addr: cfg.APIAddr, Handler: auditorConsole, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 2 * time.Minute,
			IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
	}
	apiScheme := "http"
	if cfg.APITLS {
		servers[1].TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certSource.GetCertificate}
		apiScheme = "https"
	}
	if cfg.DebugAddr != "" {
		go servePprof(cfg.DebugAddr, log)
	}
	errc := make(chan error, len(servers))
	go func() { errc <- servers[0].ServeTLS(listeners[0], "", "") }()
	go func() {
		if cfg.APITLS {
			errc <- servers[1].ServeTLS(listeners[1], "", "")
		} else {
			errc <- servers[1].Serve(listeners[1])
		}
	}()

	store := "sqlite:" + filepath.Join(cfg.DataDir, "vouch.db")
	if cfg.DatabaseURL != "" {
		store = "postgres"
	}
	log.Info("vouch started", "version", version,
		"webhook", "https://"+listeners[0].Addr().String()+"/validate", "api", apiScheme+"://"+listeners[1].Addr().String(),
		"store", store, "policy_version", engine.Version(), "environments", strings.Join(envs.Names(), ","), "ca_file", caFile)

	var serveErr error
	select {
	case <-ctx.Done():
		if d := time.Duration(cfg.ShutdownDelay); d > 0 {
			// Kubernetes removes a terminating pod from its Services
			// while it already runs: until the endpoints are gone, the
			// apiserver still calls this replica, and a closed port
			// refuses the change.
			draining.Store(true)
			log.Info("shutting down: serving on while the pod leaves its Services", "delay", d.String())
			time.Sleep(d)
		}
		log.Info("shutting down")
	case serveErr = <-errc:
		log.Error("server failed; shutting down", "error", serveErr)
	}
	cancel()
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(cfg.ShutdownTimeout))
	defer stop()
	for _, s := range servers {
		if err := s.Shutdown(shutdownCtx); err != nil {
			log.Warn("server did not shut down cleanly", "addr", s.Addr, "error", err)
		}
	}
	if err := appender.Close(shutdownCtx); err != nil {
		log.Error("journal appender did not flush", "error", err)
		return err
	}
	if cp, made, err := checkpointer.Checkpoint(shutdownCtx); err != nil {
		log.Error("final journal checkpoint failed", "error", err)
	} else if made {
		log.Info("signed the final journal checkpoint", "size", cp.Size)
	}
	log.Info("stopped")
	return serveErr
}

// servePprof serves Go's profiling endpoints; failures are only logged.
func servePprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	log.Info("serving pprof", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		log.Error("pprof server failed", "error", err)
	}
}

// newCheckpointer loads (or creates) the checkpoint signing key and
// returns the checkpointer with its publishers.
func newCheckpointer(cfg Config, st store, m *metrics.Metrics, log *slog.Logger, refused func(context.Context, error)) (*journal.Checkpointer, string, error) {
	skey, created, err := journal.LoadOrCreateKey(cfg.journalKeyFile(), cfg.JournalOrigin)
	if err != nil {
		return nil, "", err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("journal key: %w", err)
	}
	vkey, _ := journal.VerifierKey(skey)
	if created {
		log.Info("generated the journal signing key; give auditors its public key", "file", cfg.journalKeyFile(), "public_key", vkey)
	}
	var pubs []journal.Publisher
	for _, dest := range cfg.CheckpointPublish {
		p, _ := journal.NewPublisher(dest) // validated with the config
		pubs = append(pubs, p)
	}
	return journal.NewCheckpointer(st, signer, journal.CheckpointerOptions{
		Interval: time.Duration(cfg.CheckpointInterval), Publishers: pubs, Logger: log, Observe: m.ObserveCheckpoint, Refused: refused,
	}), vkey, nil
}

func newLogger(cfg Config, out io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(out, opts))
	}
	return slog.New(slog.NewJSONHandler(out, opts))
}

func openStore(ctx context.Context, cfg Config) (store, error) {
	if cfg.DatabaseURL != "" {
		return postgres.New(ctx, postgres.Config{URL: cfg.DatabaseURL})
	}
	return sqlite.New(ctx, sqlite.Config{Path: filepath.Join(cfg.DataDir, "vouch.db")})
}

// assessor lets continuous compliance ask the webhook's policy.
type assessor struct{ h *webhook.Handler }

func (a assessor) Assess(ctx context.Context, env, kind string, object []byte) (drift.Assessment, error) {
	rec, err := a.h.Assess(ctx, env, kind, object)
	return drift.Assessment{Allowed: rec.Allowed, Messages: rec.Messages}, err
}

// admittedEnvironments are the environments whose namespaces Vouch
// watches: the default one and those that claim namespaces (the others
// get their snapshots from reporters).
func admittedEnvironments(envs *policy.Environments) []string {
	var out []string
	for _, name := range envs.Names() {
		if envs.Admitted(name) {
			out = append(out, name)
		}
	}
	return out
}

// certSource serves the webhook's certificate.
type certSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	Run(ctx context.Context)
}

// servingCertificate returns the webhook's certificate source: a Secret
// kept by the leader (--webhook-secret; the rotator is returned for the
// leader to run), the given files, or a CA and certificate generated into
// the data dir.
func servingCertificate(cfg Config, kc kubernetes.Interface, log *slog.Logger) (certSource, string, *kube.CertRotator, error) {
	if cfg.WebhookSecret != "" {
		if kc == nil {
			return nil, "", nil, errors.New("webhook_secret (--webhook-secret) needs the cluster: run in a pod or give --kubeconfig")
		}
		rotator := &kube.CertRotator{Client: kc, Namespace: cfg.Namespace, Secret: cfg.WebhookSecret, Webhook: cfg.WebhookConfig,
			DNSNames: cfg.TLSDNSNames, Logger: log}
		return &kube.SecretCertSource{Client: kc, Namespace: cfg.Namespace, Secret: cfg.WebhookSecret, Logger: log}, "", rotator, nil
	}
	certFile, keyFile, caFile := cfg.TLSCertFile, cfg.TLSKeyFile, ""
	if certFile == "" {
		f, wrote, err := certs.Ensure(cfg.DataDir, cfg.TLSDNSNames, time.Now())
		if err != nil {
			return nil, "", nil, fmt.Errorf("generate webhook certificate: %w", err)
		}
		if wrote {
			log.Info("generated the webhook serving certificate; its CA is the caBundle for the webhook configuration", "ca_file", f.CACert, "cert_file", f.Cert)
		}
		certFile, keyFile, caFile = f.Cert, f.Key, f.CACert
	}
	src, err := certs.NewSource(certFile, keyFile)
	return src, caFile, nil, err
}

// kubeClient returns the cluster client, or nil outside a cluster.
func kubeClient(cfg Config) (kubernetes.Interface, error) {
	kc, err := kube.Client(cfg.Kubeconfig)
	if errors.Is(err, kube.ErrNoCluster) {
		return nil, nil
	}
	return kc, err
}

// runSingletons runs the work only one replica may do: on the elected
// leader when leader election is on, else right here.
func runSingletons(ctx context.Context, cfg Config, kc kubernetes.Interface, log *slog.Logger, tasks []func(context.Context)) {
	run := func(ctx context.Context) {
		var wg sync.WaitGroup
		for _, t := range tasks {
			wg.Add(1)
			go func() { defer wg.Done(); t(ctx) }()
		}
		wg.Wait()
	}
	if kc == nil || !cfg.LeaderElection {
		run(ctx)
		return
	}
	id := os.Getenv("POD_NAME")
	if id == "" {
		id, _ = os.Hostname()
	}
	kube.Leader{Client: kc, Namespace: cfg.Namespace, Name: cfg.LeaderElectionID, Identity: id + "_" + randomSuffix(), Logger: log}.Run(ctx, run)
}

func randomSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// seedAdminToken makes sure an admin token exists: VOUCH_ADMIN_TOKEN when
// set, else one generated on first start into <data-dir>/admin.token.
func seedAdminToken(ctx context.Context, cfg Config, tokens *auth.Service, log *slog.Logger) error {
	if cfg.AdminToken != "" {
		return tokens.Seed(ctx, "admin", cfg.AdminToken, []auth.Scope{auth.ScopeAdmin})
	}
	path := filepath.Join(cfg.DataDir, "admin.token")
	if b, err := os.ReadFile(path); err == nil {
		return tokens.Seed(ctx, "admin", strings.TrimSpace(string(b)), []auth.Scope{auth.ScopeAdmin})
	}
	secret := auth.NewSecret()
	err := tokens.Seed(ctx, "admin", secret, []auth.Scope{auth.ScopeAdmin})
	if errors.Is(err, auth.ErrNameTaken) {
		log.Warn("an active token named \"admin\" exists already; not generating another", "hint", "set VOUCH_ADMIN_TOKEN or create tokens with an existing admin token")
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	log.Info("generated an admin token", "file", path)
	return nil
}

// alerter sends the webhook's alerts (break-glass, exemptions used) as
// notifications, each journaled; an exemption used by the same workload
// again within ten minutes is not alerted again.
type alerter struct {
	monitor *drift.Monitor
	log     *slog.Logger
	mu      sync.Mutex
	seen    map[string]time.Time
}

func (a *alerter) Alert(ctx context.Context, event string, rec webhook.Record, index uint64, summary string) {
	key := event + "/" + rec.Namespace + "/" + rec.Kind + "/" + rec.Name
	if event == "break-glass" {
		key += "/" + rec.UID // every break-glass is news
	}
	a.mu.Lock()
	if a.seen == nil {
		a.seen = map[string]time.Time{}
	}
	now := time.Now()
	if last, ok := a.seen[key]; ok && now.Sub(last) < 10*time.Minute {
		a.mu.Unlock()
		return
	}
	a.seen[key] = now
	for k, t := range a.seen {
		if now.Sub(t) > 10*time.Minute {
			delete(a.seen, k)
		}
	}
	a.mu.Unlock()
	go a.monitor.Alert(context.WithoutCancel(ctx), drift.Notification{Environment: rec.Environment, Event: event, Summary: summary, Decision: index})
}

// loadCAPool reads PEM CA certificates.
func loadCAPool(file string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if err := addCAs(pool, file); err != nil {
		return nil, fmt.Errorf("webhook_client_ca_file: %w", err)
	}
	return pool, nil
}

// caTransport is an HTTP transport that trusts the system's CAs and the PEM
// CA certificates in file (none when file is ""): the client commands' --ca.
func caTransport(file string) (*http.Transport, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if file != "" {
		if err := addCAs(pool, file); err != nil {
			return nil, usageError{fmt.Sprintf("--ca: %v", err)}
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return tr, nil
}

// addCAs adds the PEM CA certificates in file to pool.
func addCAs(pool *x509.CertPool, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if !pool.AppendCertsFromPEM(b) {
		return fmt.Errorf("%s holds no PEM certificate", file)
	}
	return nil
}
