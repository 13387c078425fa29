// Package rego embeds Vouch's built-in admission policy. The policy and its
// unit tests are plain Rego files in this directory; `make test` runs the
// tests with OPA's test runner.
package rego

import "embed"

// FS holds the built-in policy modules (*.rego, tests included; the policy
// engine leaves *_test.rego files out of the bundle it evaluates).
//
//go:embed *.rego
var FS embed.FS
