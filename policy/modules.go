package policy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// CompileError is a policy bundle that does not parse or compile. Each
// problem names the module and the line it is on.
type CompileError struct {
	Problems []CompileProblem
}

// CompileProblem is one parse or compile error of a module.
type CompileProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Message string `json:"message"` // OPA's, e.g. "rego_parse_error: unexpected } token"
}

// String returns "FILE:LINE: MESSAGE", as OPA prints it.
func (p CompileProblem) String() string {
	if p.File == "" {
		return p.Message
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
}

func (e *CompileError) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return "policy: " + strings.Join(s, "; ")
}

// compileError turns an error of PrepareForEval into a *CompileError when
// OPA says where the problems are, and wraps it otherwise.
func compileError(err error) error {
	var problems []CompileProblem
	add := func(e *ast.Error) {
		p := CompileProblem{Message: e.Code + ": " + e.Message}
		if e.Location != nil {
			p.File, p.Line = e.Location.File, e.Location.Row
		}
		problems = append(problems, p)
	}
	var astErrs ast.Errors
	var regoErrs rego.Errors
	switch {
	case errors.As(err, &astErrs):
		for _, e := range astErrs {
			add(e)
		}
	case errors.As(err, &regoErrs):
		for _, e := range regoErrs {
			var ae *ast.Error
			if !errors.As(e, &ae) {
				return fmt.Errorf("policy: %w", err)
			}
			add(ae)
		}
	}
	if len(problems) == 0 {
		return fmt.Errorf("policy: %w", err)
	}
	return &CompileError{Problems: problems}
}

// MaxModuleName is the longest module file name CheckModuleName accepts.
const MaxModuleName = 255

// CheckModuleName checks the name of a module given in memory: a relative
// slash-separated path ending in ".rego", not a test file, not hidden and
// not under "builtin/" (the built-in modules' names).
func CheckModuleName(name string) error {
	clean := path.Clean(name)
	switch {
	case name == "" || len(name) > MaxModuleName:
		return fmt.Errorf("module name %q: want 1 to %d characters", name, MaxModuleName)
	case !strings.HasSuffix(name, ".rego"):
		return fmt.Errorf("module name %q: want a file name ending in .rego", name)
	case strings.HasSuffix(name, "_test.rego"):
		return fmt.Errorf("module name %q: test files are not part of a policy bundle", name)
	case clean != name || path.IsAbs(name) || strings.HasPrefix(name, "../") || strings.Contains(name, `\`):
		return fmt.Errorf("module name %q: want a clean relative path with '/' separators", name)
	case name == "builtin" || strings.HasPrefix(name, "builtin/"):
		return fmt.Errorf("module name %q: builtin/ names the built-in modules", name)
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return fmt.Errorf("module name %q: hidden files are not part of a policy bundle", name)
		}
	}
	return nil
}

// ReadDir reads the policy modules of dir as the engine reads --policy-dir:
// recursively, without test files and hidden names, keyed by their path
// relative to dir with '/' separators.
func ReadDir(dir string) (map[string]string, error) {
	mods := map[string]string{}
	err := walkPolicyDir(dir, func(p string) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		mods[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return mods, nil
}
