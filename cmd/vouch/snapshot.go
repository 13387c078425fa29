package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence/fingerprint"
	"github.com/vouch-dev/vouch/kube"
)

const snapshotHelp = `Usage:
  vouch snapshot k8s --environment ENV [--kubeconfig FILE] [--namespaces 'team-*,payments'] 
  vouch snapshot paths --environment ENV [--host NAME] DIR…

Reports what runs in an environment Vouch does not run in, as a full
snapshot (PUT /api/v1/environments/ENV/snapshot; the server records it only
when it differs from the last one, and as a heartbeat otherwise).

  k8s    the workloads of a cluster (pods and their owners, image digests
         from the container statuses), from --kubeconfig or in-cluster
         credentials; --namespaces limits it (patterns with * and ?).
  paths  the files under each DIR, for servers and VMs: one workload per
         DIR (kind Directory, namespace = --host), one entry per regular
         file with its sha256.

The environment must be configured on the server (an environment without
namespaces is one that is only reported). Each reporter owns its
environment: a second reporter into the same environment replaces the
first one's workloads.

Flags: --server, --token (scope snapshots:write), --dry-run prints the
snapshot instead of sending it.

Examples:
  vouch snapshot k8s --kubeconfig prod.kubeconfig --environment prod
  vouch snapshot paths --environment build-servers /opt/app/bin /usr/local/bin
`

func snapshotCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{snapshotHelp}
	}
	fs := newFlagSet("vouch snapshot " + args[0])
	var cf clientFlags
	cf.register(fs)
	env := fs.String("environment", os.Getenv("VOUCH_ENVIRONMENT"), "environment to report (env VOUCH_ENVIRONMENT)")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "k8s: kubeconfig file (default: in-cluster)")
	namespaces := fs.String("namespaces", "*", "k8s: comma-separated namespace patterns to include")
	host := fs.String("host", "", "paths: the machine's name (default: its hostname)")
	dryRun := fs.Bool("dry-run", false, "print the snapshot as JSON instead of sending it")
	if err := parseFlagsHelp(fs, args[1:], snapshotHelp); err != nil {
		return err
	}
	if *env == "" {
		return usageError{"snapshot needs --environment"}
	}
	var workloads []drift.Workload
	var err error
	switch args[0] {
	case "k8s":
		workloads, err = clusterWorkloads(ctx, *kubeconfig, *env, strings.Split(*namespaces, ","))
	case "paths":
		if fs.NArg() == 0 {
			return usageError{"snapshot paths needs at least one directory"}
		}
		if *host == "" {
			if *host, err = os.Hostname(); err != nil {
				return err
			}
		}
		workloads, err = pathWorkloads(*host, fs.Args())
	default:
		return usageError{fmt.Sprintf("unknown snapshot command %q\n\n%s", args[0], snapshotHelp)}
	}
	if err != nil {
		return err
	}
	if workloads == nil {
		workloads = []drift.Workload{}
	}
	if *dryRun {
		return writeJSON(stdout, api.SnapshotReport{Workloads: workloads})
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	var res struct {
		Recorded     string `json:"recorded"`
		JournalIndex uint64 `json:"journal_index"`
	}
	if _, err := c.Do(ctx, http.MethodPut, "/api/v1/environments/"+url.PathEscape(*env)+"/snapshot", api.SnapshotReport{Workloads: workloads}, &res); err != nil {
		return err
	}
	if cf.output == "json" {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "%s: %d workloads reported, recorded as %s (journal entry %d)\n", *env, len(workloads), res.Recorded, res.JournalIndex)
	return nil
}

// clusterWorkloads lists the workloads running in the namespaces that match
// patterns, with the same informers the in-cluster snapshotter uses.
func clusterWorkloads(ctx context.Context, kubeconfig, env string, patterns []string) ([]drift.Workload, error) {
	for i, p := range patterns {
		patterns[i] = strings.TrimSpace(p)
		if _, err := path.Match(patterns[i], ""); err != nil || patterns[i] == "" {
			return nil, usageError{fmt.Sprintf("--namespaces: %q is not a namespace pattern", p)}
		}
	}
	cs, err := kube.Client(kubeconfig)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	w := drift.NewWatcher(cs, 0)
	if err := w.Start(ctx); err != nil {
		return nil, fmt.Errorf("reading the cluster: %w", err)
	}
	snaps, err := w.Snapshots(time.Now(), func(ns string) string {
		for _, p := range patterns {
			if ok, _ := path.Match(p, ns); ok {
				return env
			}
		}
		return ""
	})
	if err != nil {
		return nil, err
	}
	return snaps[env].Workloads, nil
}

// pathWorkloads makes one workload per directory, one entry per regular
// file beneath it with its sha256. Symbolic links are not followed.
func pathWorkloads(host string, dirs []string) ([]drift.Workload, error) {
	var out []drift.Workload
	for _, dir := range dirs {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		info, err := os.Stat(abs)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			return nil, usageError{fmt.Sprintf("%s is not a directory", dir)}
		}
		w := drift.Workload{Namespace: host, Kind: drift.KindDirectory, Name: filepath.ToSlash(abs), Pods: 1, Started: info.ModTime().UTC()}
		err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			sum, err := fingerprint.File(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(abs, p)
			w.Containers = append(w.Containers, drift.Container{Name: filepath.ToSlash(rel), Image: filepath.ToSlash(p), Digest: sum})
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Slice(w.Containers, func(i, j int) bool { return w.Containers[i].Name < w.Containers[j].Name })
		out = append(out, w)
	}
	return out, nil
}
