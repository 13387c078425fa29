package evidence

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// FieldError says what is wrong with one field of a request.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// ValidationError lists every problem found in a request.
type ValidationError struct {
	Fields []FieldError
}

// Invalid is the ValidationError of one field.
func Invalid(field, detail string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Detail: detail}}}
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Detail
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// validator collects field errors.
type validator struct{ errs []FieldError }

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.errs}
}

var (
	digestRE    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	commitRE    = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	nameRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$`)
	artifactRE  = regexp.MustCompile(`^[^\s@\x00-\x1f\x7f]{1,512}$`)
	tokenTypeRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.+-]{0,62}[a-z0-9])?$`)
)

// ValidDigest reports whether d is a content digest Vouch accepts:
// "sha256:" followed by 64 lower-case hex characters.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// ValidName reports whether s is a valid attestation or environment name:
// 1-128 lower-case letters, digits, '.', '_' or '-', starting and ending
// with a letter or digit.
func ValidName(s string) bool { return nameRE.MatchString(s) }

func (v *validator) digest(field, d string) {
	switch {
	case d == "":
		v.add(field, "is required")
	case !ValidDigest(d):
		v.add(field, "must be \"sha256:\" followed by 64 lower-case hex characters, got %q", truncate(d, 80))
	}
}

func (v *validator) name(field, s string) {
	switch {
	case s == "":
		v.add(field, "is required")
	case !ValidName(s):
		v.add(field, "must be 1-128 lower-case letters, digits, '.', '_' or '-', got %q", truncate(s, 80))
	}
}

func (v *validator) url(field, s string) {
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(s) > 2048 {
		v.add(field, "must be an absolute http(s) URL of at most 2048 characters")
	}
}

func (v *validator) maxLen(field, s string, n int) {
	if len(s) > n {
		v.add(field, "must be at most %d bytes, got %d", n, len(s))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
