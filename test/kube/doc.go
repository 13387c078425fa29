// Package kube holds the tests that need a real Kubernetes API: the Helm
// chart rendered with the Helm Go SDK and created against a real
// kube-apiserver, and the end-to-end suite where the apiserver itself calls
// Vouch. It is a module of its own, so that the Helm SDK stays out of
// Vouch's dependencies; the cluster comes from test/cluster.
package kube
