package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const healthHelp = `Usage:
  vouch health [--server URL] [--webhook URL] [--ca FILE] [--timeout 10s]

Checks a running Vouch without a token: the API's /readyz (ready; degraded,
when the store is unreachable and decisions are spooled; or not ready) and,
with --webhook, the webhook's /healthz over TLS, verified against --ca. Exit
0 when ready or degraded (with a warning on stderr), 1 when not ready or not
reachable, 2 for a usage error. The chart's "helm test" runs it.

  --server   the API (env VOUCH_SERVER, default http://localhost:8080)
  --webhook  the webhook's base URL, e.g. https://vouch.vouch-system.svc
  --ca       PEM file of CAs to trust besides the system's (env VOUCH_CA),
             e.g. the generated vouch-data/ca.crt or the TLS Secret's ca.crt
  --timeout  time allowed for each check (default 10s)
`

func healthCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("vouch health")
	server := fs.String("server", envOr("VOUCH_SERVER", "http://localhost:8080"), "the API's URL")
	webhook := fs.String("webhook", "", "the webhook's base URL (https)")
	ca := fs.String("ca", os.Getenv("VOUCH_CA"), "PEM file of CAs to trust")
	timeout := fs.Duration("timeout", 10*time.Second, "time allowed for each check")
	if err := parseFlagsHelp(fs, args, healthHelp); err != nil {
		return err
	}
	tr, err := caTransport(*ca)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr, Timeout: *timeout}

	var failed []string
	status, detail, err := probe(ctx, client, strings.TrimRight(*server, "/")+"/readyz")
	switch {
	case err != nil:
		failed = append(failed, fmt.Sprintf("API %s: %v", *server, err))
	case status == "ready":
		fmt.Fprintf(stdout, "API %s: ready\n", *server)
	case status == "degraded":
		fmt.Fprintf(stdout, "API %s: degraded\n", *server)
		fmt.Fprintf(stderr, "vouch: warning: %s\n", detail)
	default:
		failed = append(failed, fmt.Sprintf("API %s: not ready: %s", *server, detail))
	}
	if *webhook != "" {
		switch status, _, err := probe(ctx, client, strings.TrimRight(*webhook, "/")+"/healthz"); {
		case err != nil:
			failed = append(failed, fmt.Sprintf("webhook %s: %v", *webhook, err))
		case status == "not ready":
			failed = append(failed, fmt.Sprintf("webhook %s: not serving", *webhook))
		default:
			fmt.Fprintf(stdout, "webhook %s: serving (TLS verified)\n", *webhook)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

// probe GETs a health endpoint: the status it answers ("ready" or
// "degraded" with the reason, from a 200's JSON; "not ready" with the
// problem's detail, from a 503), or an error when it cannot be reached or
// answers another status.
func probe(ctx context.Context, client *http.Client, url string) (status, detail string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var body struct{ Status, Reason, Detail string }
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body) // the webhook's /healthz is plain text
	switch resp.StatusCode {
	case http.StatusOK:
		return body.Status, body.Reason, nil
	case http.StatusServiceUnavailable:
		return "not ready", body.Detail, nil
	}
	return "", "", fmt.Errorf("%s answered %s", url, resp.Status)
}
