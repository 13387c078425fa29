// Package policy evaluates Rego admission policies with OPA.
//
// An Engine loads the built-in modules and any modules from a policy
// directory into one bundle, prepares the query once and evaluates it many
// times. The bundle's hash is the policy version recorded with every
// decision; when the directory changes, a new bundle is prepared and swapped
// in atomically, and a bundle that fails to compile never replaces a working
// one.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Query evaluated for every decision: the sets of deny and warn messages of
// package vouch.admission. Either set may be undefined (no such rules).
const Query = `deny := {m | some m in data.vouch.admission.deny}; warn := {m | some m in data.vouch.admission.warn}`

// Decision is the outcome of evaluating the policy for one input.
type Decision struct {
	Deny       []string    // sorted; empty means admitted
	Violations []Violation // the deny results, in the order of Deny
	Warn       []string    // sorted
	Version    string      // policy bundle version
}

// Violation is one deny result. Rule and Requirement are set when the rule
// returned an object naming them (the built-in rules do); a rule that
// returns a plain string leaves them empty.
type Violation struct {
	Msg         string `json:"msg"`
	Rule        string `json:"rule,omitempty"`
	Requirement string `json:"requirement,omitempty"`
}

// RestrictedBuiltins are the built-in functions a Restricted engine
// refuses: they reach the network, or show the server's configuration and
// environment variables.
var RestrictedBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime"}

// Allowed reports whether the decision admits the change.
func (d Decision) Allowed() bool { return len(d.Deny) == 0 }

// Config says where an Engine's modules come from.
type Config struct {
	// Builtin holds the built-in modules (*.rego at its root).
	Builtin fs.FS
	// Dir is an optional directory of further modules, read recursively.
	Dir string
	// Modules are further modules given in memory, by file name (a
	// candidate policy for replay). Names must pass CheckModuleName.
	Modules map[string]string
	// Restricted refuses modules that call the built-in functions
	// reaching outside the evaluation (RestrictedBuiltins): for modules
	// from people who may not run code on the server, such as replay
	// candidates sent over the API.
	Restricted bool
	// Logger receives reload messages; slog.Default() when nil.
	Logger *slog.Logger
	// OnChange, when set, is called after Watch swapped in a new bundle.
	OnChange func()
}

// Engine evaluates admission policies. It is safe for concurrent use.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	current atomic.Pointer[bundle]
	terms   *termCache

	reloadMu sync.Mutex // serialises Reload; guards stamp
	stamp    string     // modification stamp of Dir at the last Reload
}

type bundle struct {
	version string
	files   []string
	digests map[string]string // file name → sha256 of its content
	query   rego.PreparedEvalQuery
}

// New loads and prepares the policy bundle. It fails if any module does not
// parse or compile.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Builtin == nil {
		return nil, errors.New("policy: no built-in modules")
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, terms: newTermCache()}
	if e.log == nil {
		e.log = slog.Default()
	}
	if _, err := e.Reload(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Version returns the version of the bundle in use: "sha256:" and the hash
// over the names and contents of its modules.
func (e *Engine) Version() string { return e.current.Load().version }

// FileDigests returns the sha256 of each module of the bundle in use.
func (e *Engine) FileDigests() map[string]string { return maps.Clone(e.current.Load().digests) }

// Files returns the module file names of the bundle in use.
func (e *Engine) Files() []string { return e.current.Load().files }

// Decide evaluates the policy for in as of time at (Rego's time.now_ns). It
// fills the input's summaries (Input.Summarize) first.
func (e *Engine) Decide(ctx context.Context, in *Input, at time.Time) (Decision, error) {
	in.Summarize(at)
	b := e.current.Load()
	rs, err := b.query.Eval(ctx, rego.EvalParsedInput(in.value(e.terms)), rego.EvalTime(at))
	if err != nil {
		return Decision{}, fmt.Errorf("evaluate policy %s: %w", shortVersion(b.version), err)
	}
	d := Decision{Version: b.version}
	if len(rs) != 1 {
		return Decision{}, fmt.Errorf("evaluate policy %s: %d results, want 1", shortVersion(b.version), len(rs))
	}
	if d.Violations, err = violations(rs[0].Bindings["deny"]); err != nil {
		return Decision{}, fmt.Errorf("policy %s: deny: %w", shortVersion(b.version), err)
	}
	d.Deny = msgs(d.Violations)
	warn, err := violations(rs[0].Bindings["warn"])
	if err != nil {
		return Decision{}, fmt.Errorf("policy %s: warn: %w", shortVersion(b.version), err)
	}
	d.Warn = msgs(warn)
	return d, nil
}

// violations turns a set of rule results into violations sorted by
// message. A result may be a string, or an object with a "msg" string (as
// Gatekeeper rules return) and optionally "rule" and "requirement";
// anything else is shown as JSON.
func violations(v any) ([]Violation, error) {
	set, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("result is %T, want a set", v)
	}
	out := make([]Violation, 0, len(set))
	for _, m := range set {
		switch m := m.(type) {
		case string:
			out = append(out, Violation{Msg: m})
		case map[string]any:
			s, ok := m["msg"].(string)
			if !ok {
				out = append(out, Violation{Msg: asJSON(m)})
				continue
			}
			rule, _ := m["rule"].(string)
			req, _ := m["requirement"].(string)
			out = append(out, Violation{Msg: s, Rule: rule, Requirement: req})
		default:
			out = append(out, Violation{Msg: asJSON(m)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Msg < out[j].Msg })
	return out, nil
}

func msgs(vs []Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Msg
	}
	return out
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Reload re-reads the policy directory and, if the bundle changed, prepares
// and swaps in the new one. On error the current bundle stays in use.
func (e *Engine) Reload(ctx context.Context) (changed bool, err error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	stamp, err := dirStamp(e.cfg.Dir)
	if err != nil {
		return false, err
	}
	mods, err := e.readModules()
	if err != nil {
		return false, err
	}
	version := bundleVersion(mods)
	if cur := e.current.Load(); cur != nil && cur.version == version {
		e.stamp = stamp
		return false, nil
	}
	opts := []func(*rego.Rego){rego.Query(Query), rego.SetRegoVersion(ast.RegoV1)}
	if e.cfg.Restricted {
		unsafe := map[string]struct{}{}
		for _, b := range RestrictedBuiltins {
			unsafe[b] = struct{}{}
		}
		opts = append(opts, rego.UnsafeBuiltins(unsafe))
	}
	files := make([]string, 0, len(mods))
	digests := make(map[string]string, len(mods))
	for _, m := range mods {
		opts = append(opts, rego.Module(m.name, m.src))
		files = append(files, m.name)
		sum := sha256.Sum256([]byte(m.src))
		digests[m.name] = "sha256:" + hex.EncodeToString(sum[:])
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return false, compileError(err)
	}
	e.current.Store(&bundle{version: version, files: files, digests: digests, query: pq})
	e.stamp = stamp
	return true, nil
}

// Watch polls the policy directory every interval until ctx ends and
// reloads the bundle when a file changed. Errors are logged and the previous
// bundle stays in use.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) {
	if e.cfg.Dir == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !e.dirChanged() {
			continue
		}
		changed, err := e.Reload(ctx)
		switch {
		case err != nil:
			e.log.Error("policy reload failed; keeping the previous policy", "dir", e.cfg.Dir, "version", e.Version(), "error", err)
		case changed:
			e.log.Info("policy reloaded", "dir", e.cfg.Dir, "version", e.Version(), "files", len(e.Files()))
			if e.cfg.OnChange != nil {
				e.cfg.OnChange()
			}
		}
	}
}

// dirChanged reports whether the policy directory may have changed since
// the last Reload.
func (e *Engine) dirChanged() bool {
	stamp, err := dirStamp(e.cfg.Dir)
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	return err != nil || stamp != e.stamp
}

type module struct{ name, src string }

// readModules returns the built-in modules ("builtin/NAME") and those of
// Dir ("DIR-RELATIVE-PATH"), without test files, sorted by name.
func (e *Engine) readModules() ([]module, error) {
	var mods []module
	err := fs.WalkDir(e.cfg.Builtin, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isPolicyFile(p) {
			return err
		}
		b, err := fs.ReadFile(e.cfg.Builtin, p)
		mods = append(mods, module{"builtin/" + p, string(b)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("policy: built-in modules: %w", err)
	}
	if e.cfg.Dir != "" {
		dirMods, err := ReadDir(e.cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("policy: --policy-dir: %w", errors.Unwrap(err))
		}
		for name, src := range dirMods {
			mods = append(mods, module{name, src})
		}
	}
	for name, src := range e.cfg.Modules {
		if err := CheckModuleName(name); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		mods = append(mods, module{name, src})
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].name < mods[j].name })
	for i := 1; i < len(mods); i++ {
		if mods[i].name == mods[i-1].name {
			return nil, fmt.Errorf("policy: module %q is both in --policy-dir and given in memory", mods[i].name)
		}
	}
	return mods, nil
}

func isPolicyFile(p string) bool {
	return strings.HasSuffix(p, ".rego") && !strings.HasSuffix(p, "_test.rego")
}

func bundleVersion(mods []module) string {
	h := sha256.New()
	for _, m := range mods {
		fmt.Fprintf(h, "%d:%s%d:%s", len(m.name), m.name, len(m.src), m.src)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func shortVersion(v string) string {
	if len(v) > 19 {
		return v[:19]
	}
	return v
}

// dirStamp summarises the names, sizes and modification times of the
// policy files under dir, to notice changes cheaply.
func dirStamp(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	h := sha256.New()
	err := walkPolicyDir(dir, func(p string) error {
		info, err := os.Stat(p) // follows symlinks, as ConfigMap mounts use them
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("policy: --policy-dir: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// walkPolicyDir calls fn for each policy file under dir. Names starting
// with "." are skipped: Kubernetes ConfigMap volumes keep a second copy of
// every file in such directories.
func walkPolicyDir(dir string, fn func(path string) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !isPolicyFile(p) {
			return nil
		}
		return fn(p)
	})
}
