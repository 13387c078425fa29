// Command vouch-load sends admission load to a Vouch webhook and prints one
// JSON line: req/s, p50/p90/p99/max latency in milliseconds, errors.
//
//	vouch-load --url https://127.0.0.1:8443/validate --ca vouch-data/ca.crt \
//	  --image registry.example.com/app@sha256:… --concurrency 16 --duration 10s
//	vouch-load … --rate 2000 --duration 10s   # open loop
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
	url := flag.String("url", "https://127.0.0.1:8443/validate", "webhook URL")
	ca := flag.String("ca", "vouch-data/ca.crt", "CA certificate of the webhook")
	images := flag.String("image", "", "comma-separated container images of the reviewed Deployment")
	ns := flag.String("namespace", "default", "namespace of the Deployment")
	conc := flag.Int("concurrency", 8, "parallel clients (closed loop) or most in flight (open loop)")
	rate := flag.Float64("rate", 0, "requests per second (open loop); 0 for a closed loop")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	flag.Parse()
	pem, err := os.ReadFile(*ca)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vouch-load:", err)
		os.Exit(2)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	if *images == "" {
		fmt.Fprintln(os.Stderr, "vouch-load: --image is required")
		os.Exit(2)
	}
	res, err := load.Run(context.Background(), load.Options{
		URL: *url, TLS: &tls.Config{RootCAs: pool}, Concurrency: *conc, Rate: *rate, Duration: *dur,
		Images: strings.Split(*images, ","), Namespace: *ns,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vouch-load:", err)
		os.Exit(1)
	}
	fmt.Println(res)
	if res.Errors > 0 {
		os.Exit(1)
	}
}
