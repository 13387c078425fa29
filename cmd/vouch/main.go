// Command vouch is Vouch's one binary: `vouch serve` runs the admission
// webhook and the API; the other commands are the CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const help = `Vouch — change control for regulated Kubernetes.

Usage:
  vouch serve [flags]                  run the admission webhook and the API
  vouch token create --name N --scopes S[,S…] [--expires-in 720h]
  vouch token list
  vouch token revoke ID
  vouch journal key | export | verify  the tamper-evident journal: public key, export, offline verification
  vouch env list | state | diff | log | compliance
                                       what runs in an environment, what ran at any time, and is it compliant
  vouch snapshot k8s | paths           report what runs where Vouch does not (a cluster, servers' files)
  vouch assert IMAGE_OR_DIGEST --environment ENV
                                       would it be admitted now? each requirement, met or missing
  vouch review -f MANIFEST [--environment ENV]
                                       every workload of a manifest, decided as the webhook would
  vouch policy replay --policy-dir DIR [--since 7d] [--environment ENV]
                                       impact before rollout: the journaled admissions a candidate
                                       policy would decide differently, by rule and workload
  vouch version

Run "vouch <command> --help" for a command's flags.
`

func main() {
	if os.Getenv("GOGC") == "" {
		// The live heap is small (tens of MB) and allocation per admission
		// high: collecting less often cuts CPU and tail latency noticeably.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit status: 0 success, 1 a
// failure, 2 a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		var cfg Config
		if cfg, err = loadConfig(args[1:], os.Getenv); err == nil {
			err = serve(ctx, cfg, stderr)
		}
	case "token":
		err = tokenCommand(ctx, args[1:], stdout, stderr)
	case "journal":
		err = journalCommand(ctx, args[1:], stdout, stderr)
	case "env":
		err = envCommand(ctx, args[1:], stdout, stderr)
	case "snapshot":
		err = snapshotCommand(ctx, args[1:], stdout, stderr)
	case "attest":
		if len(args) > 1 && args[1] == "intoto" {
			err = attestIntoto(ctx, args[2:], stdout, stderr)
		} else {
			err = usageError{"usage: vouch attest intoto ENVELOPE"}
		}
	case "assert":
		err = assertCommand(ctx, args[1:], stdout, stderr)
	case "review":
		err = reviewCommand(ctx, args[1:], os.Stdin, stdout, stderr)
	case "policy":
		err = policyCommand(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "vouch", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, help)
	default:
		fmt.Fprintf(stderr, "vouch: unknown command %q\n\n%s", args[0], help)
		return 2
	}
	var h errHelp
	var u usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &h):
		fmt.Fprint(stdout, h.text)
		return 0
	case errors.As(err, &u):
		fmt.Fprintln(stderr, "vouch:", err)
		return 2
	case errors.Is(err, errVerifyFailed), errors.Is(err, errDenied):
		return 1 // the reason is printed already
	}
	fmt.Fprintln(stderr, "vouch:", err)
	return 1
}

// usageError is a command line the command cannot run.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
