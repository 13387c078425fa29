// Package load generates admission load: AdmissionReviews with fresh UIDs
// over keep-alive HTTPS, at a fixed concurrency (closed loop) or at a fixed
// rate (open loop, latency measured from each request's scheduled send
// time, so a stalled server cannot hide its queueing delay).
//
// It drives any server that answers an AdmissionReview with an
// AdmissionReview at some URL: Vouch's /validate, or a plain OPA server's
// default decision at POST /.
package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options describe one load run.
type Options struct {
	URL         string        // webhook URL, e.g. https://127.0.0.1:8443/validate, or https://127.0.0.1:8181/ for OPA
	TLS         *tls.Config   // trusts the webhook's CA
	Concurrency int           // closed loop: parallel clients; open loop: most requests in flight
	Rate        float64       // requests per second for an open loop; 0 for a closed loop
	Duration    time.Duration // how long to send
	Requests    int           // stop after this many (closed loop), when > 0
	// Body is the AdmissionReview to send; its request.uid is replaced by a
	// fresh one in every request. When nil, a Deployment with one container
	// per image of Images in Namespace is sent.
	Body      []byte
	Images    []string // container images of the Deployment under review
	Namespace string
	// WantAllowed, when set, counts any other answer as an error.
	WantAllowed *bool
}

// Result summarises a run. Latencies are in milliseconds.
type Result struct {
	URL         string  `json:"url"`
	BodyBytes   int     `json:"body_bytes"`
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	TargetRate  float64 `json:"target_rate,omitempty"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	Allowed     int     `json:"allowed"`
	Denied      int     `json:"denied"`
	Seconds     float64 `json:"seconds"`
	RPS         float64 `json:"req_per_s"`
	P50         float64 `json:"p50_ms"`
	P90         float64 `json:"p90_ms"`
	P99         float64 `json:"p99_ms"`
	Max         float64 `json:"max_ms"`
	// PacerLateP99 is, for an open loop, the 99th percentile of how late
	// the load generator's own pacer released a send: the part of every
	// latency that is the generator's, not the server's.
	PacerLateP99 float64 `json:"pacer_late_p99_ms,omitempty"`
	FirstError   string  `json:"first_error,omitempty"`
}

// String is the result as one JSON line.
func (r Result) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

type sample struct {
	latency time.Duration
	allowed bool
	err     error
}

// Run sends load as opts say and reports what it measured.
func Run(ctx context.Context, opts Options) (Result, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 8
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	body := opts.Body
	if body == nil {
		if len(opts.Images) == 0 {
			return Result{}, fmt.Errorf("load: no body and no images")
		}
		body = reviewTemplate(opts.Namespace, opts.Images)
	}
	tmpl, err := splitAtUID(body)
	if err != nil {
		return Result{}, err
	}
	tr := &http.Transport{TLSClientConfig: opts.TLS, MaxIdleConnsPerHost: opts.Concurrency, MaxConnsPerHost: opts.Concurrency, ForceAttemptHTTP2: false}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	if opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Duration)
		defer cancel()
	}
	var seq atomic.Int64
	run := fmt.Sprintf("load-%d-", time.Now().UnixNano())
	send := func(buf *[]byte) sample {
		b := append((*buf)[:0], tmpl.prefix...)
		b = strconv.AppendInt(append(b, run...), seq.Add(1), 10)
		b = append(b, tmpl.suffix...)
		*buf = b
		start := time.Now()
		allowed, err := post(client, opts.URL, b)
		return sample{latency: time.Since(start), allowed: allowed, err: err}
	}

	samples := make([][]sample, opts.Concurrency)
	var pacerLate []time.Duration // open loop: how late the pacer let each send go
	start := time.Now()
	var wg sync.WaitGroup
	if opts.Rate <= 0 {
		var sent atomic.Int64
		for w := 0; w < opts.Concurrency; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				var buf []byte
				for ctx.Err() == nil {
					if opts.Requests > 0 && sent.Add(1) > int64(opts.Requests) {
						return
					}
					samples[w] = append(samples[w], send(&buf))
				}
			}(w)
		}
	} else {
		// Open loop: a pacer schedules sends; workers take them in order.
		// The runtime's timers wake an idle program no sooner than ~1 ms
		// after they were set, so at 2,000/s the pacer releases sends in
		// late pairs; PacerLateP99 reports it. A pacer on nanosleep(2)
		// was measured: 0.1-0.4 ms late instead, but ~50 µs more CPU per
		// request, taken from the server on a shared machine
		// (docs/benchmarks.md).
		interval := time.Duration(float64(time.Second) / opts.Rate)
		due := make(chan time.Time, 1<<16)
		go func() {
			defer close(due)
			next := time.Now()
			for {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				if ctx.Err() != nil {
					return
				}
				pacerLate = append(pacerLate, time.Since(next))
				select {
				case due <- next:
				default: // the client itself is saturated; the backlog shows as latency
				}
				next = next.Add(interval)
			}
		}()
		for w := 0; w < opts.Concurrency; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				var buf []byte
				for scheduled := range due {
					s := send(&buf)
					s.latency = time.Since(scheduled)
					samples[w] = append(samples[w], s)
				}
			}(w)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := Result{URL: opts.URL, BodyBytes: len(tmpl.prefix) + len(run) + 1 + len(tmpl.suffix), Mode: "closed",
		Concurrency: opts.Concurrency, TargetRate: opts.Rate, Seconds: round(elapsed.Seconds())}
	if opts.Rate > 0 {
		res.Mode = "open"
	}
	var lat []time.Duration
	for _, ss := range samples {
		for _, s := range ss {
			res.Requests++
			switch {
			case s.err != nil:
				res.Errors++
				if res.FirstError == "" {
					res.FirstError = s.err.Error()
				}
				continue
			case s.allowed:
				res.Allowed++
			default:
				res.Denied++
			}
			if opts.WantAllowed != nil && s.allowed != *opts.WantAllowed {
				res.Errors++
				if res.FirstError == "" {
					res.FirstError = fmt.Sprintf("answer allowed=%v, want %v", s.allowed, *opts.WantAllowed)
				}
			}
			lat = append(lat, s.latency)
		}
	}
	slices.Sort(lat)
	slices.Sort(pacerLate)
	res.PacerLateP99 = pct(pacerLate, 99)
	ok := res.Requests - res.Errors
	res.RPS = round(float64(ok) / elapsed.Seconds())
	res.P50, res.P90, res.P99 = pct(lat, 50), pct(lat, 90), pct(lat, 99)
	if len(lat) > 0 {
		res.Max = ms(lat[len(lat)-1])
	}
	return res, nil
}

func post(c *http.Client, url string, body []byte) (bool, error) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	var review struct {
		Response *struct {
			Allowed bool `json:"allowed"`
			Status  *struct {
				Code int32 `json:"code"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(raw, &review); err != nil || review.Response == nil {
		return false, fmt.Errorf("not an AdmissionReview: %s", raw)
	}
	if st := review.Response.Status; st != nil && st.Code >= 500 {
		return false, fmt.Errorf("webhook error: %s", raw)
	}
	return review.Response.Allowed, nil
}

// template is a review split where its request.uid goes.
type template struct{ prefix, suffix []byte }

// uidMark stands for the request UID while a template is made.
const uidMark = "\x00vouch-load-uid\x00"

// splitAtUID splits an AdmissionReview at the value of its request.uid.
// The review is re-encoded (object keys sorted), which changes neither its
// meaning nor, much, its size.
func splitAtUID(review []byte) (template, error) {
	dec := json.NewDecoder(bytes.NewReader(review))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return template{}, fmt.Errorf("load: body is not JSON: %w", err)
	}
	req, ok := doc["request"].(map[string]any)
	if !ok {
		return template{}, fmt.Errorf("load: body is not an AdmissionReview with a request")
	}
	req["uid"] = uidMark
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return template{}, err
	}
	mark, _ := json.Marshal(uidMark)
	mark = mark[1 : len(mark)-1] // without its quotes
	b := bytes.TrimSpace(out.Bytes())
	i := bytes.Index(b, mark)
	return template{prefix: b[:i], suffix: b[i+len(mark):]}, nil
}

// reviewTemplate is a Deployment AdmissionReview with one container per
// image.
func reviewTemplate(namespace string, images []string) []byte {
	var cs []string
	for i, img := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q,"ports":[{"containerPort":%d}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}}}`, i, img, 8080+i))
	}
	return []byte(fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"UID",`+
		`"kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},`+
		`"requestKind":{"group":"apps","version":"v1","kind":"Deployment"},"requestResource":{"group":"apps","version":"v1","resource":"deployments"},`+
		`"name":"web","namespace":%q,"operation":"CREATE","userInfo":{"username":"system:serviceaccount:argocd:argocd-application-controller","groups":["system:serviceaccounts","system:authenticated"]},`+
		`"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":%q,"labels":{"app":"web","team":"payments"},"annotations":{"argocd.argoproj.io/tracking-id":"web:apps/Deployment:%s/web"}},`+
		`"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[%s]}}}},`+
		`"oldObject":null,"dryRun":false,"options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions","fieldManager":"argocd-controller"}}}`,
		namespace, namespace, namespace, strings.Join(cs, ",")))
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return ms(sorted[i])
}

func ms(d time.Duration) float64 { return round(float64(d.Microseconds()) / 1000) }

func round(f float64) float64 { return math.Round(f*100) / 100 }

// SampleReview returns the review body Run sends, for reporting its size.
func SampleReview(namespace string, images []string) []byte { return reviewTemplate(namespace, images) }
