//go:build unix

// Command clusterbuild builds the test cluster's etcd, kube-apiserver and
// kubectl into their cache directory (see cluster.Build) and prints their
// paths. Run it before go test on a fresh machine, so that the first build,
// which takes several minutes, does not count against a test's -timeout:
//
//	go run ./test/cluster/clusterbuild
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vouch-dev/vouch/test/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bins, err := cluster.Build(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(bins.Etcd)
	fmt.Println(bins.KubeAPIServer)
	fmt.Println(bins.Kubectl)
}
