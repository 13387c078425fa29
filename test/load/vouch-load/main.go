// Command vouch-load sends admission load to a webhook and prints one JSON
// line: req/s, p50/p90/p99/max latency in milliseconds, errors.
//
//	vouch-load --url https://127.0.0.1:8443/validate --ca vouch-data/ca.crt \
//	  --image registry.example.com/app@sha256:… --concurrency 16 --duration 10s
//	vouch-load … --rate 2000 --duration 10s   # open loop
//	vouch-load --url https://127.0.0.1:8181/ --body review.json …   # OPA's POST /
//	taskset -c 1 vouch-load …   # pinned to CPU 1
//
// --body sends an AdmissionReview from a file, with a fresh request.uid in
// every request; without it, a Deployment with one container per --image.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/test/load"
)

func main() {
	url := flag.String("url", "https://127.0.0.1:8443/validate", "URL the reviews are POSTed to (Vouch: /validate; OPA's default decision: /)")
	ca := flag.String("ca", "vouch-data/ca.crt", "CA certificate of the webhook")
	body := flag.String("body", "", "file with the AdmissionReview to send (its request.uid is replaced per request)")
	images := flag.String("image", "", "comma-separated container images of the reviewed Deployment (without --body)")
	ns := flag.String("namespace", "default", "namespace of the Deployment (without --body)")
	conc := flag.Int("concurrency", 8, "parallel clients (closed loop) or most in flight (open loop)")
	rate := flag.Float64("rate", 0, "requests per second (open loop); 0 for a closed loop")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	wantAllowed := flag.Bool("want-allowed", false, "count every answer that does not admit the change as an error")
	flag.Parse()
	fail := func(status int, err any) {
		fmt.Fprintln(os.Stderr, "vouch-load:", err)
		os.Exit(status)
	}
	pem, err := os.ReadFile(*ca)
	if err != nil {
		fail(2, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail(2, fmt.Sprintf("%s holds no PEM certificate", *ca))
	}
	opts := load.Options{URL: *url, TLS: &tls.Config{RootCAs: pool}, Concurrency: *conc, Rate: *rate, Duration: *dur, Namespace: *ns}
	switch {
	case *body != "":
		if opts.Body, err = os.ReadFile(*body); err != nil {
			fail(2, err)
		}
	case *images != "":
		opts.Images = strings.Split(*images, ",")
	default:
		fail(2, "--body or --image is required")
	}
	if *wantAllowed {
		opts.WantAllowed = wantAllowed
	}
	res, err := load.Run(context.Background(), opts)
	if err != nil {
		fail(1, err)
	}
	fmt.Println(res)
	if res.Errors > 0 {
		os.Exit(1)
	}
}
