package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/client"
)

// clientFlags are the flags of commands that talk to a Vouch server.
type clientFlags struct {
	server, token, dataDir, output, ca, timeout string
}

// retryBackoff is the clients' first wait after a failed connection.
var retryBackoff = client.DefaultBackoff

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", envOr("VOUCH_SERVER", "http://localhost:8080"), "Vouch API URL (env VOUCH_SERVER)")
	fs.StringVar(&f.token, "token", os.Getenv("VOUCH_TOKEN"), "API token (env VOUCH_TOKEN); default: <data-dir>/admin.token")
	fs.StringVar(&f.dataDir, "data-dir", envOr("VOUCH_DATA_DIR", "vouch-data"), "where to find admin.token when no token is given")
	fs.StringVar(&f.output, "o", "table", "output format: table or json")
	fs.StringVar(&f.ca, "ca", os.Getenv("VOUCH_CA"), "PEM file of CA certificates to trust besides the system's, e.g. vouch-data/ca.crt for an api_tls server with a generated certificate (env VOUCH_CA)")
	fs.StringVar(&f.timeout, "timeout", os.Getenv("VOUCH_TIMEOUT"), "time allowed for each request, e.g. 30s or 2m (env VOUCH_TIMEOUT; default 30s)")
}

// client returns a client as the flags say; it notes its retries on
// stderr.
func (f *clientFlags) client(stderr io.Writer) (*client.Client, error) {
	if f.output != "table" && f.output != "json" {
		return nil, usageError{fmt.Sprintf("-o %q: want table or json", f.output)}
	}
	// A secret saved with a line break (a CI variable, a file written on
	// Windows) is still the secret: surrounding space is dropped, as the
	// server drops it.
	tok, from := strings.TrimSpace(f.token), "--token (VOUCH_TOKEN)"
	switch oidc := os.Getenv("VOUCH_OIDC"); {
	case tok != "" || oidc == "":
	case oidc == "github":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		idToken, err := githubIDToken(ctx, os.Getenv, envOr("VOUCH_OIDC_AUDIENCE", "vouch"))
		if err != nil {
			return nil, fmt.Errorf("VOUCH_OIDC=github: %w", err)
		}
		tok, from = idToken, "GitHub Actions' ID token (VOUCH_OIDC=github)"
	default:
		return nil, usageError{fmt.Sprintf("VOUCH_OIDC=%q: the one value is github (GitLab CI: give the ID token as VOUCH_TOKEN)", oidc)}
	}
	if tok == "" {
		path := filepath.Join(f.dataDir, "admin.token")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, usageError{"no token: set VOUCH_TOKEN or --token (or run next to the server's data dir, which holds admin.token)"}
		}
		tok, from = strings.TrimSpace(string(b)), path
	}
	if strings.ContainsFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return nil, usageError{fmt.Sprintf("the token in %s has a space or a control character inside it: give the secret alone, on one line", from)}
	}
	u, err := url.Parse(f.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("--server %q: want an http:// or https:// URL, e.g. https://vouch.example.com", f.server)}
	}
	timeout := client.DefaultTimeout
	if f.timeout != "" {
		if timeout, err = time.ParseDuration(f.timeout); err != nil || timeout <= 0 {
			return nil, usageError{fmt.Sprintf("--timeout %q (VOUCH_TIMEOUT): want a positive duration, e.g. 30s or 2m", f.timeout)}
		}
	}
	c := client.New(f.server, tok)
	c.HTTP.Timeout = timeout
	c.Backoff = retryBackoff
	c.Notify = func(msg string) { fmt.Fprintln(stderr, "vouch:", msg) }
	if f.ca != "" {
		tr, err := caTransport(f.ca)
		if err != nil {
			return nil, err
		}
		c.HTTP.Transport = tr
	}
	return c, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

const tokenHelp = `Usage:
  vouch token create --name NAME --scopes SCOPE[,SCOPE…] [--expires-in 720h] [--identity EMAIL|LOGIN]… [--repository REPO]…
  vouch token list
  vouch token revoke ID

Scopes: evidence:write, approvals:write, audit:read, snapshots:write, admin.
create prints the secret alone on stdout, so that it can be captured:
  export VOUCH_TOKEN=$(vouch token create --name ci-app --scopes evidence:write)

--identity names the person a token belongs to, as CI reports commit
authors (email, login; repeat it for each). Four eyes compares an
approval's identities with the commit's author, so a release manager's
approvals:write token needs them:
  vouch token create --name rm-alice --scopes approvals:write \
    --identity alice@bank.example --identity alice

--repository limits a token to the builds of source repositories (repeat
it; '*' matches within one path segment): it may report only builds of
them, attest and approve only those builds, and create no exemptions. One
token per team or repository keeps a leaked pipeline secret from vouching
for other teams' images:
  vouch token create --name ci-payments --scopes evidence:write \
    --repository github.com/bank/payments-*
`

func tokenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return errHelp{tokenHelp}
	}
	fs := newFlagSet("vouch token " + args[0])
	var cf clientFlags
	cf.register(fs)
	name := fs.String("name", "", "token name: the identity recorded with what the token posts")
	scopes := fs.String("scopes", "", "comma-separated scopes")
	expires := fs.String("expires-in", "", "lifetime, e.g. 720h or 30d (default: no expiry)")
	var identities repeated
	fs.Var(&identities, "identity", "the person the token belongs to: an email or login as CI reports commit authors, for four eyes (repeatable)")
	var repositories repeated
	fs.Var(&repositories, "repository", "limit the token to evidence about builds of this source repository, e.g. github.com/org/repo or github.com/org/* (repeatable)")
	if err := parseFlagsHelp(fs, args[1:], tokenHelp); err != nil {
		return err
	}
	c, err := cf.client(stderr)
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		if *name == "" || *scopes == "" {
			return usageError{"token create needs --name and --scopes"}
		}
		req := api.TokenRequest{Name: *name, Scopes: auth.ParseScopes(*scopes), Identities: identities, Repositories: repositories}
		if *expires != "" {
			d, err := lifetime("--expires-in", *expires, "")
			if err != nil {
				return err
			}
			req.ExpiresIn = d.String()
		}
		var t api.CreatedToken
		if _, err := c.Do(ctx, http.MethodPost, "/api/v1/tokens", req, &t); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, t)
		}
		limited := ""
		if len(t.Repositories) > 0 {
			limited = ", limited to builds of " + strings.Join(t.Repositories, ", ")
		}
		fmt.Fprintf(stderr, "created token %s (%s) with scopes %s%s; the secret is shown only once:\n", t.Name, t.ID, *scopes, limited)
		fmt.Fprintln(stdout, t.Secret)
	case "list":
		var out struct{ Tokens []auth.Token }
		if _, err := c.Do(ctx, http.MethodGet, "/api/v1/tokens", nil, &out); err != nil {
			return err
		}
		if cf.output == "json" {
			return writeJSON(stdout, out.Tokens)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tIDENTITIES\tREPOSITORIES\tCREATED\tEXPIRES\tSTATE")
		for _, t := range out.Tokens {
			state := "active"
			if t.RevokedAt != nil {
				state = "revoked"
			} else if !t.Active(time.Now()) {
				state = "expired"
			}
			exp := "never"
			if t.ExpiresAt != nil {
				exp = t.ExpiresAt.Format(time.RFC3339)
			}
			scopes := make([]string, len(t.Scopes))
			for i, s := range t.Scopes {
				scopes[i] = string(s)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(scopes, ","), listOrDash(t.Identities), listOrDash(t.Repositories),
				t.CreatedAt.Format(time.RFC3339), exp, state)
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return usageError{"token revoke needs one token ID (see vouch token list)"}
		}
		if _, err := c.Do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(fs.Arg(0)), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "revoked token %s\n", fs.Arg(0))
	default:
		return usageError{fmt.Sprintf("unknown token command %q\n\n%s", args[0], tokenHelp)}
	}
	return nil
}

func listOrDash(list []string) string {
	if len(list) == 0 {
		return "-"
	}
	return strings.Join(list, ",")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
