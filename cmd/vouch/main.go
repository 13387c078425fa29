// Command vouch is Vouch's one binary: `vouch serve` runs the admission
// webhook and the API; the other commands are the CLI.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	// Trusted roots for outbound TLS (receivers, checkpoint publishing,
	// PostgreSQL) where the system has none, as in the container image.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/vouch-dev/vouch/client"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const help = `Vouch — change control for regulated Kubernetes.

Usage:
  vouch serve [flags]                  run the admission webhook and the API
  vouch migrate [--status]             apply the database's schema migrations, then exit
  vouch health [--server U] [--webhook U] [--ca F]
                                       is a running Vouch ready? (no token needed)
  vouch token create --name N --scopes S[,S…] [--expires-in 720h]
  vouch token list
  vouch token revoke ID
  vouch journal key | export | verify | verify-package
                                       the tamper-evident journal: public key, export, offline verification
                                       of an export or of an artifact's audit package
  vouch env list | state | diff | log | compliance
                                       what runs in an environment, what ran at any time, and is it compliant
  vouch snapshot k8s | paths           report what runs where Vouch does not (a cluster, servers' files)
  vouch assert IMAGE_OR_DIGEST --environment ENV
                                       would it be admitted now? each requirement, met or missing
  vouch policy test | check | fmt | eval
                                       write and try Rego rules: tests with coverage, schema checks, formatting, a decision explained
  vouch policy replay --policy-dir DIR [--since 7d] [--environment ENV]
                                       impact before rollout: the journaled admissions a candidate
                                       policy would decide differently, by rule and workload
  vouch exempt --environment ENV (--image NAME | --digest D) --reason R --expires 24h
  vouch exemptions list | revoke ID    time-boxed exemptions, journaled and alerted
  vouch review -f MANIFEST [--environment ENV]
                                       every workload of a manifest, decided as the webhook would
  vouch version

From CI pipelines (docs/ci.md):
  vouch fingerprint FILE|DIR|OCI-LAYOUT
                                       the digest that identifies an artifact
  vouch artifact report NAME --digest D|--file F|--dir D|--oci DIR
                                       report a build and its provenance (defaults from the CI's variables)
  vouch artifact get DIGEST            an artifact and all its evidence
  vouch attest junit|sarif|sbom|generic --name N --digest D|--file F|… FILE…
                                       record test results, scans, SBOMs and other evidence
  vouch attest intoto ENVELOPE         record a signed in-toto statement (DSSE), verified against trusted keys
  vouch approve DIGEST --environment E --reason R [--expires 72h] [--reject]
                                       record a release decision
  vouch approvals list [--digest D] [--environment E]
  vouch search COMMIT_OR_DIGEST_PREFIX artifacts by commit or digest, and where they ran

Client commands take --server (VOUCH_SERVER, default http://localhost:8080),
--token (VOUCH_TOKEN), --ca (VOUCH_CA), --timeout (VOUCH_TIMEOUT, default
30s a request) and -o table|json. Run "vouch <command> --help" for a
command's flags and examples.

Exit status:
  0  done (a failed attestation recorded is done: see attest --exit-code)
  1  failed: refused by the server (invalid, conflict, forbidden, not
     found), a verification or a check that failed, a file that cannot be read
  2  usage: the command line or the setup is wrong (a --server that
     redirects, a server certificate not trusted: see --ca)
  3  the server is unreachable, failed (HTTP 5xx) or rate limited (HTTP
     429), after automatic retries: retrying later may help
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
// failure, 2 a usage or setup error, 3 the server unreachable, failing or
// rate limiting (see help).
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
	case "health":
		err = healthCommand(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = migrateCommand(ctx, args[1:], stdout)
	case "journal":
		err = journalCommand(ctx, args[1:], stdout, stderr)
	case "env":
		err = envCommand(ctx, args[1:], stdout, stderr)
	case "snapshot":
		err = snapshotCommand(ctx, args[1:], stdout, stderr)
	case "fingerprint":
		err = fingerprintCommand(args[1:], stdout, stderr)
	case "artifact":
		err = artifactCommand(ctx, args[1:], stdout, stderr)
	case "attest":
		err = attestCommand(ctx, args[1:], stdout, stderr)
	case "approve":
		err = approveCommand(ctx, args[1:], stdout, stderr)
	case "approvals":
		err = approvalsCommand(ctx, args[1:], stdout, stderr)
	case "search":
		err = searchCommand(ctx, args[1:], stdout, stderr)
	case "policy":
		err = policyCommand(ctx, args[1:], stdout, stderr)
	case "exempt":
		err = exemptCommand(ctx, args[1:], stdout, stderr)
	case "exemptions":
		err = exemptionsCommand(ctx, args[1:], stdout, stderr)
	case "assert":
		err = assertCommand(ctx, args[1:], stdout, stderr)
	case "review":
		err = reviewCommand(ctx, args[1:], os.Stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "vouch", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, help)
	default:
		fmt.Fprintf(stderr, "vouch: unknown command %q\n\n%s", args[0], help)
		return 2
	}
	return exitCode(err, stdout, stderr)
}

// exitCode prints err, if any, and returns the exit status for it.
func exitCode(err error, stdout, stderr io.Writer) int {
	var h errHelp
	var u usageError
	var s exitStatus
	var p *client.Problem
	var r *client.RedirectError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &h):
		fmt.Fprint(stdout, h.text)
		return 0
	case errors.As(err, &u):
		fmt.Fprintln(stderr, "vouch:", err)
		return 2
	case errors.As(err, &s):
		return int(s) // the reason is printed already
	case errors.Is(err, errVerifyFailed), errors.Is(err, errDenied):
		return 1 // the reason is printed already
	case errors.As(err, &r):
		fmt.Fprintf(stderr, "vouch: %v: set VOUCH_SERVER (--server) to %s\n", err, first(r.Server, "the address it redirects to"))
		return 2
	case errors.Is(err, client.ErrUntrusted):
		fmt.Fprintf(stderr, "vouch: %v\n%s", err, untrustedHint(err))
		return 2
	case errors.Is(err, client.ErrUnreachable), errors.As(err, &p) && (p.Status >= 500 || p.Status == http.StatusTooManyRequests):
		fmt.Fprintln(stderr, "vouch:", err)
		return 3
	}
	fmt.Fprintln(stderr, "vouch:", err)
	return 1
}

// untrustedHint says how to make the server's certificate trusted.
func untrustedHint(err error) string {
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &host):
		return "  the certificate is not for the host --server (VOUCH_SERVER) names: use a name it is for\n"
	case errors.As(err, &invalid):
		return "  the server's certificate is not valid: its operator must renew or replace it\n"
	}
	return "  give the CA that signed the server's certificate with --ca (VOUCH_CA), a PEM file\n"
}

// exitStatus ends a command with this status, its outcome printed already.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a command line the command cannot run.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
