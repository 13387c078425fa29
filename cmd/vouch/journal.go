package main

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/console"
	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/postgres"
	"github.com/vouch-dev/vouch/replay"
	"github.com/vouch-dev/vouch/sqlite"
)

const journalHelp = `Usage:
  vouch journal key [--data-dir DIR | --journal-key-file FILE]
      print the public key that verifies this journal's checkpoints

  vouch journal export [--from N|TIME] [--to N|TIME] [--kind K] [--environment E] [--format jsonl|csv] > export.jsonl
      download an export from the server (--server, --token; scope audit:read)

  vouch journal verify --public-key KEY [--checkpoint OLD] export.jsonl
      verify an export offline: the signature, and that no entry was altered,
      removed, inserted or reordered; with --checkpoint, that the journal grew
      from a checkpoint you kept (add --server to fetch a consistency proof
      when OLD is outside the exported range)

  vouch journal verify --public-key KEY --data-dir DIR | --database-url URL
      verify a store in place

  vouch journal verify-package --public-key KEY PACKAGE.zip | DIR
      verify an artifact's audit package from the console offline: the
      checkpoint's signature, every entry's leaf hash and inclusion proof, and
      the sha256 of every document

Exit status: 0 verified, 1 verification failed or error, 2 usage, 3 the server
(export, --server) unreachable or failing.
`

func journalCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{journalHelp}
	}
	switch args[0] {
	case "key":
		return journalKey(args[1:], stdout)
	case "export":
		return journalExport(ctx, args[1:], stdout, stderr)
	case "verify":
		return journalVerify(ctx, args[1:], stdout, stderr)
	case "verify-package":
		return journalVerifyPackage(args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown journal command %q\n\n%s", args[0], journalHelp)}
}

func parseFlags(fs *flag.FlagSet, args []string) error { return parseFlagsHelp(fs, args, journalHelp) }

// newFlagSet returns a flag set that prints nothing itself: parseFlagsHelp
// turns -h into help and a bad flag into a usage error, each reported once.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlagsHelp parses flags before, between and after the positional
// arguments, as kubectl does ("vouch env state prod -o json"), up to a
// "--"; -h becomes help output, bad flags a usage error. fs.Args() are the
// positional arguments afterwards.
func parseFlagsHelp(fs *flag.FlagSet, args []string, help string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errHelp{help}
			}
			return usageError{err.Error() + "\n\n" + help}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

func journalKey(args []string, stdout io.Writer) error {
	fs := newFlagSet("vouch journal key")
	dataDir := fs.String("data-dir", envOr("VOUCH_DATA_DIR", "vouch-data"), "data directory holding journal.key")
	keyFile := fs.String("journal-key-file", os.Getenv("VOUCH_JOURNAL_KEY_FILE"), "the signing key file (default <data-dir>/journal.key)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := *keyFile
	if path == "" {
		path = filepath.Join(*dataDir, "journal.key")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("journal key: %w (vouch serve creates it on first start)", err)
	}
	vkey, err := journal.VerifierKey(string(b))
	if err != nil {
		return fmt.Errorf("journal key %s: %w", path, err)
	}
	fmt.Fprintln(stdout, vkey)
	return nil
}

func journalExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch journal export")
	var cf clientFlags
	cf.register(fs)
	from := fs.String("from", "", "first entry: a journal index or an RFC 3339 time")
	to := fs.String("to", "", "end (exclusive): a journal index or an RFC 3339 time; default: the latest checkpoint")
	kind := fs.String("kind", "", "only entries of this kind in full (admission, artifact, attestation, approval); others are elided to their hash")
	env := fs.String("environment", "", "only entries of this environment in full")
	format := fs.String("format", "jsonl", "jsonl (verifiable) or csv (spreadsheet)")
	output := fs.String("output", "", "write to this file instead of standard output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	q := url.Values{"format": {*format}}
	for k, v := range map[string]string{"from": *from, "to": *to, "kind": *kind, "environment": *env} {
		if v != "" {
			q.Set(k, v)
		}
	}
	w := stdout
	if *output != "" {
		f, err := os.Create(*output)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := c.Stream(ctx, "/api/v1/audit/export?"+q.Encode(), bw); err != nil {
		return err
	}
	return bw.Flush()
}

func journalVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch journal verify")
	publicKey := fs.String("public-key", os.Getenv("VOUCH_JOURNAL_PUBLIC_KEY"), "verifier key (or a file holding it), as `vouch journal key` prints")
	checkpoint := fs.String("checkpoint", "", "a checkpoint file you kept from before: the journal must have grown from it")
	dataDir := fs.String("data-dir", "", "verify the SQLite store in this data directory")
	databaseURL := fs.String("database-url", "", "verify this PostgreSQL store")
	server := fs.String("server", "", "Vouch API to fetch a consistency proof from, when --checkpoint is outside the export")
	token := fs.String("token", os.Getenv("VOUCH_TOKEN"), "API token for --server (scope audit:read)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *publicKey == "" {
		return usageError{"--public-key is required: the key you trust, from `vouch journal key` on the server"}
	}
	v, err := journal.NewVerifier(*publicKey)
	if err != nil {
		return usageError{err.Error()}
	}
	var opts journal.VerifyOptions
	if *checkpoint != "" {
		b, err := os.ReadFile(*checkpoint)
		if err != nil {
			return err
		}
		known, err := journal.OpenCheckpoint(b, v)
		if err != nil {
			return fmt.Errorf("--checkpoint %s: %w", *checkpoint, err)
		}
		opts.Known = &known
	}
	if *server != "" {
		opts.Consistency = consistencyFetcher(ctx, *server, *token, stderr)
	}
	start := time.Now()

	if *dataDir != "" || *databaseURL != "" {
		if fs.NArg() > 0 {
			return usageError{"give an export file or a store (--data-dir, --database-url), not both"}
		}
		st, err := openReadOnlyStore(ctx, *dataDir, *databaseURL)
		if err != nil {
			return err
		}
		defer st.Close()
		last := time.Now()
		rep, err := journal.VerifyStore(ctx, st, v, opts, func(done, total uint64) {
			if time.Since(last) > time.Second {
				fmt.Fprintf(stderr, "verified %d of %d entries\n", done, total)
				last = time.Now()
			}
		})
		if err != nil {
			return verifyFailed(stdout, err)
		}
		took := time.Since(start)
		fmt.Fprintf(stdout, "OK: the store's journal of %d entries verifies: root %s, %d signed checkpoints and %d tree nodes checked\n",
			rep.Size, rep.Root, rep.Checkpoints, rep.Nodes)
		printKnown(stdout, opts.Known)
		n, err := evidence.Audit(ctx, st, st, func(done int) {
			if time.Since(last) > time.Second {
				fmt.Fprintf(stderr, "audited %d evidence records\n", done)
				last = time.Now()
			}
		})
		if err != nil {
			return verifyFailed(stdout, err)
		}
		fmt.Fprintf(stdout, "OK: each of the %d evidence records the webhook reads is the journal entry of its id\n", n)
		if n, err = drift.AuditProjections(ctx, st, st); err != nil {
			return verifyFailed(stdout, err)
		}
		fmt.Fprintf(stdout, "OK: each of the %d decisions and snapshot records the console reads is its journal entry\n", n)
		fmt.Fprintf(stdout, "verified in %s (%.0f entries/s)\n", took.Round(time.Millisecond), float64(rep.Size)/took.Seconds())
		return nil
	}

	if fs.NArg() != 1 {
		return usageError{"give one export file (or - for standard input), or --data-dir / --database-url"}
	}
	var r io.Reader = os.Stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	rep, err := journal.VerifyExport(r, v, opts)
	if err != nil {
		return verifyFailed(stdout, err)
	}
	took := time.Since(start)
	n := rep.To - rep.From
	what := "no entries" // an empty range: only the checkpoint is checked
	if n > 0 {
		what = fmt.Sprintf("entries %d to %d", rep.From, rep.To-1)
	}
	fmt.Fprintf(stdout, "OK: %s of journal %q verify against its checkpoint of %d entries (root %s), signed by %s\n",
		what, rep.Origin, rep.TreeSize, rep.Root, journal.KeyID(v))
	fmt.Fprintf(stdout, "  %d entries in full, %d elided to their hash, %d checkpoints checked along the way\n", rep.Entries, rep.Elided, rep.Checkpoints)
	printSigned(stdout, rep.Signed)
	if rep.Elided > 0 {
		fmt.Fprintf(stdout, "  elided (present, not shown): %s; the export's header says it selected %s, which no signature covers\n",
			rangeList(rep.ElidedRanges, 20), exportFilter(rep))
	}
	printKnown(stdout, opts.Known)
	fmt.Fprintf(stdout, "verified in %s (%.0f entries/s)\n", took.Round(time.Millisecond), float64(n)/took.Seconds())
	return nil
}

// journalVerifyPackage verifies an audit package: the zip the console
// gives, or the directory it unpacks to.
func journalVerifyPackage(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch journal verify-package")
	publicKey := fs.String("public-key", os.Getenv("VOUCH_JOURNAL_PUBLIC_KEY"), "verifier key (or a file holding it), as `vouch journal key` prints")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *publicKey == "" {
		return usageError{"--public-key is required: the key you trust, from the operator (not only the package's public-key.txt)"}
	}
	if fs.NArg() != 1 {
		return usageError{"give one audit package: the .zip, or the directory it unpacks to"}
	}
	v, err := journal.NewVerifier(*publicKey)
	if err != nil {
		return usageError{err.Error()}
	}
	var pkg iofs.FS
	name := fs.Arg(0)
	if strings.HasSuffix(name, ".zip") {
		zr, err := zip.OpenReader(name)
		if err != nil {
			return err
		}
		defer zr.Close()
		// The package is the one directory inside the zip.
		if len(zr.File) == 0 {
			return fmt.Errorf("%s is empty", name)
		}
		top, _, _ := strings.Cut(zr.File[0].Name, "/")
		if pkg, err = iofs.Sub(zr, top); err != nil {
			return err
		}
	} else {
		pkg = os.DirFS(name)
	}
	rep, err := console.VerifyPackage(pkg, v)
	if errors.Is(err, console.ErrPackage) {
		fmt.Fprintf(stdout, "FAILED: %v\n", err)
		return errVerifyFailed
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "OK: %d entries about %s are in the journal %q as signed by %s at %d entries (root %s); %d documents match their sha256; evidence.json's records are the entries'\n",
		rep.Proven, rep.Digest, rep.Checkpoint.Origin, journal.KeyID(v), rep.Checkpoint.Size, rep.Checkpoint.Root, rep.Blobs)
	printSigned(stdout, rep.Checkpoint.Time)
	fmt.Fprintln(stdout, "  This proves what the package shows was recorded, not that nothing was left out: verify a journal export for that.")
	return nil
}

// printSigned says when the checkpoint was signed (under its signature):
// nothing journaled after that is covered.
func printSigned(w io.Writer, at time.Time) {
	if !at.IsZero() {
		fmt.Fprintf(w, "  the checkpoint was signed at %s (%s ago): nothing journaled after that is covered\n",
			at.UTC().Format(time.RFC3339), time.Since(at).Round(time.Second))
	}
}

func printKnown(w io.Writer, known *journal.Checkpoint) {
	if known != nil {
		fmt.Fprintf(w, "  consistent with your checkpoint of %d entries: nothing before it was rewritten\n", known.Size)
	}
}

// errVerifyFailed is a verification failure, already printed.
var errVerifyFailed = errors.New("verification failed")

// verifyFailed prints a failed verification or audit (exit 1); any other
// error is returned as it is.
func verifyFailed(stdout io.Writer, err error) error {
	var ve *journal.VerifyError
	var me *journal.MismatchError
	switch {
	case errors.As(err, &ve):
		fmt.Fprintf(stdout, "FAILED: %s\n", ve)
	case errors.As(err, &me):
		fmt.Fprintf(stdout, "FAILED: %s\n", me)
	default:
		return err
	}
	return errVerifyFailed
}

// consistencyFetcher gets consistency proofs from a Vouch server.
func consistencyFetcher(ctx context.Context, server, token string, stderr io.Writer) func(a, b uint64) ([]journal.Hash, error) {
	c := clientFlags{server: server, token: token, output: "json"}
	return func(a, b uint64) ([]journal.Hash, error) {
		cl, err := c.client(stderr)
		if err != nil {
			return nil, err
		}
		var p struct{ Hashes []journal.Hash }
		_, err = cl.Do(ctx, http.MethodGet, fmt.Sprintf("/api/v1/journal/proof/consistency?from=%d&to=%d", a, b), nil, &p)
		return p.Hashes, err
	}
}

// readOnlyStore is a store opened to read only: to verify it, or to
// replay its decisions.
type readOnlyStore interface {
	journal.StoreSource
	replay.Journal
	replay.EvidenceLookup
	evidence.AuditSource
	drift.ProjectionSource
	Close() error
}

func openReadOnlyStore(ctx context.Context, dataDir, databaseURL string) (readOnlyStore, error) {
	if databaseURL != "" {
		return postgres.New(ctx, postgres.Config{URL: databaseURL, ReadOnly: true})
	}
	path := filepath.Join(dataDir, "vouch.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no Vouch database in %s: %w", dataDir, err)
	}
	return sqlite.New(ctx, sqlite.Config{Path: path, ReadOnly: true})
}

// rangeList writes index ranges as "7, 9, 12-40", at most max of them.
func rangeList(rs [][2]uint64, max int) string {
	var parts []string
	for i, r := range rs {
		if i == max {
			parts = append(parts, fmt.Sprintf("… (%d ranges in all)", len(rs)))
			break
		}
		if r[0] == r[1] {
			parts = append(parts, strconv.FormatUint(r[0], 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
	}
	return strings.Join(parts, ", ")
}

// exportFilter says what an export's header claims it selected.
func exportFilter(rep journal.ExportReport) string {
	var f []string
	if rep.Kind != "" {
		f = append(f, "kind "+string(rep.Kind))
	}
	if rep.Environment != "" {
		f = append(f, "environment "+rep.Environment)
	}
	if len(f) == 0 {
		return "everything (no filter)"
	}
	return strings.Join(f, " and ")
}
