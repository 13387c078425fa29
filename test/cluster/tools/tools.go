//go:build tools

// Package tools records the commands the test cluster harness builds, so that
// go mod tidy keeps their dependencies in this module's go.mod and go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
