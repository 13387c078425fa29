package policy

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// InputSchema is the JSON schema of the input document.
//
//go:embed input.schema.json
var InputSchema []byte

// Sources are Rego files by name: the built-in modules ("builtin/NAME")
// and those of a policy directory (paths relative to it), tests included.
type Sources map[string]string

// LoadSources reads the built-in modules and, when dir is set, the .rego
// files under dir. Tests are included; hidden files are not.
func LoadSources(builtin fs.FS, dir string) (Sources, error) {
	src := Sources{}
	err := fs.WalkDir(builtin, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") {
			return err
		}
		b, err := fs.ReadFile(builtin, p)
		src["builtin/"+p] = string(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return src, nil
	}
	if info, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(p, ".rego") {
			return nil
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		src[filepath.ToSlash(rel)] = string(b)
		return err
	})
	return src, err
}

// Builtin reports whether name is a built-in module.
func Builtin(name string) bool { return strings.HasPrefix(name, "builtin/") }

func (s Sources) parse() (map[string]*ast.Module, error) {
	mods := make(map[string]*ast.Module, len(s))
	var errs ast.Errors
	for name, src := range s {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			if e, ok := err.(ast.Errors); ok {
				errs = append(errs, e...)
				continue
			}
			return nil, err
		}
		mods[name] = m
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return mods, nil
}

// Check parses and compiles every module, type-checking the references to
// input against InputSchema. Problems come back as ast.Errors with
// locations.
func (s Sources) Check() error {
	mods, err := s.parse()
	if err != nil {
		return err
	}
	var schema any
	if err := json.Unmarshal(InputSchema, &schema); err != nil {
		return err
	}
	ss := ast.NewSchemaSet()
	ss.Put(ast.SchemaRootRef, schema)
	c := ast.NewCompiler().WithSchemas(ss)
	if c.Compile(mods); c.Failed() {
		return c.Errors
	}
	return nil
}

// TestResult is one Rego test.
type TestResult struct {
	File     string  `json:"file"`
	Name     string  `json:"name"`
	Pass     bool    `json:"pass"`
	Skip     bool    `json:"skip,omitempty"`
	Error    string  `json:"error,omitempty"`
	FailedAt string  `json:"failed_at,omitempty"` // the expression that was false
	Row      int     `json:"row"`
	Millis   float64 `json:"ms"`
	Output   string  `json:"output,omitempty"` // print() output
}

// TestReport is the outcome of a test run.
type TestReport struct {
	Results  []TestResult            `json:"results"`
	Passed   int                     `json:"passed"`
	Failed   int                     `json:"failed"`
	Skipped  int                     `json:"skipped"`
	Coverage float64                 `json:"coverage"`        // of the modules under test, percent
	Files    map[string]FileCoverage `json:"files,omitempty"` // by module
}

// FileCoverage is the coverage of one module.
type FileCoverage struct {
	Coverage   float64 `json:"coverage"`
	NotCovered []int   `json:"not_covered_lines,omitempty"`
}

// Test runs the tests of the files selected by include (all when nil),
// with every module loaded, and measures the coverage of the selected
// non-test modules.
func (s Sources) Test(ctx context.Context, include func(name string) bool) (TestReport, error) {
	mods, err := s.parse()
	if err != nil {
		return TestReport{}, err
	}
	if include == nil {
		include = func(string) bool { return true }
	}
	cov := cover.New()
	ch, err := tester.NewRunner().SetModules(mods).SetCoverageQueryTracer(cov).SetDefaultRegoVersion(ast.RegoV1).
		RaiseBuiltinErrors(true).RunTests(ctx, nil)
	if err != nil {
		return TestReport{}, err
	}
	var rep TestReport
	var failed []string
	for r := range ch {
		if r.Location == nil || !include(r.Location.File) {
			continue
		}
		tr := TestResult{File: r.Location.File, Name: r.Name, Row: r.Location.Row, Pass: r.Pass(), Skip: r.Skip,
			Millis: float64(r.Duration.Microseconds()) / 1000, Output: string(r.Output)}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		}
		switch {
		case tr.Skip:
			rep.Skipped++
		case tr.Pass:
			rep.Passed++
		default:
			rep.Failed++
			failed = append(failed, regexp.QuoteMeta(r.Package+"."+r.Name))
		}
		rep.Results = append(rep.Results, tr)
	}
	if len(failed) > 0 {
		// Tracing excludes coverage in OPA's runner: run the failed tests
		// again, traced, to say which expression was false.
		at, err := failedAt(ctx, mods, "^("+strings.Join(failed, "|")+")$")
		if err != nil {
			return TestReport{}, err
		}
		for i, r := range rep.Results {
			rep.Results[i].FailedAt = at[r.File+":"+r.Name]
		}
	}
	sort.Slice(rep.Results, func(i, j int) bool {
		a, b := rep.Results[i], rep.Results[j]
		return a.File < b.File || a.File == b.File && a.Row < b.Row
	})
	covered := map[string]*ast.Module{}
	for name, m := range mods {
		if include(name) && !strings.HasSuffix(name, "_test.rego") {
			covered[name] = m
		}
	}
	report := cov.Report(covered)
	rep.Files = map[string]FileCoverage{}
	var lines, notCovered int
	for name, f := range report.Files {
		if covered[name] == nil {
			continue
		}
		lines += f.CoveredLines + f.NotCoveredLines
		notCovered += f.NotCoveredLines
		fc := FileCoverage{Coverage: f.Coverage}
		for _, r := range f.NotCovered {
			for row := r.Start.Row; row <= r.End.Row; row++ {
				fc.NotCovered = append(fc.NotCovered, row)
			}
		}
		rep.Files[name] = fc
	}
	if lines > 0 {
		rep.Coverage = 100 * float64(lines-notCovered) / float64(lines)
	}
	return rep, nil
}

// failedAt runs the tests matching filter with tracing and returns, by
// "file:name", the last expression of each test file that was false.
func failedAt(ctx context.Context, mods map[string]*ast.Module, filter string) (map[string]string, error) {
	ch, err := tester.NewRunner().SetModules(mods).SetDefaultRegoVersion(ast.RegoV1).RaiseBuiltinErrors(true).
		EnableTracing(true).Filter(filter).RunTests(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for r := range ch {
		for _, e := range r.Trace {
			if x, ok := e.Node.(*ast.Expr); ok && e.Op == topdown.FailOp && x.Location != nil && x.Location.File == r.Location.File {
				out[r.Location.File+":"+r.Name] = fmt.Sprintf("%s:%d: %s", x.Location.File, x.Location.Row, x.Location.Text)
			}
		}
	}
	return out, nil
}

// Format returns src formatted as `opa fmt` would (Rego v1).
func Format(name string, src []byte) ([]byte, error) {
	out, err := format.SourceWithOpts(name, src, format.Opts{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Formatted reports whether src is formatted.
func Formatted(name string, src []byte) (bool, error) {
	out, err := Format(name, src)
	return err == nil && bytes.Equal(out, src), err
}
