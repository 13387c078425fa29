//go:build tools

// Package tools records the command the side-by-side benchmark builds, so
// that go mod tidy keeps its dependencies in this module's go.mod and go.sum.
package tools

import (
	_ "github.com/open-policy-agent/opa"
)
