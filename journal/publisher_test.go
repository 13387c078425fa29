package journal

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func TestHTTPPublisherRetriesServerErrors(t *testing.T) {
	var calls atomic.Int32
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Header.Get("Content-Type") + "|" + string(b))
	}))
	defer srv.Close()
	p, err := NewPublisher(srv.URL + "/hooks/s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), Checkpoint{Note: []byte("note\n")}); err != nil {
		t.Fatalf("publish after one 503: %v", err)
	}
	if calls.Load() != 2 || got.Load() != "text/plain; charset=utf-8|note\n" {
		t.Fatalf("calls %d, received %q", calls.Load(), got.Load())
	}
}

func TestHTTPPublisherNamesHostOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	const secret = "s3cr3t"
	for _, dest := range []string{
		srv.URL + "/hooks/" + secret + "?token=" + secret,        // answers 403: no retry
		"http://user:" + secret + "@127.0.0.1:1/hooks/" + secret, // nothing listens
	} {
		p, err := NewPublisher(dest)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Publish(context.Background(), Checkpoint{Note: []byte("note\n")})
		if err == nil {
			t.Fatalf("%s: published", dest)
		}
		for _, shown := range []string{err.Error(), p.String()} {
			if strings.Contains(shown, secret) {
				t.Errorf("shows the URL's credential: %q", shown)
			}
		}
	}
}

func TestDirPublisher(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPublisher("file://" + dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range []Checkpoint{{Size: 3, Note: []byte("three\n")}, {Size: 5, Note: []byte("five\n")}} {
		if err := p.Publish(context.Background(), cp); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]string{"checkpoint.3": "three\n", "checkpoint.5": "five\n", "checkpoint": "five\n"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	if err := p.Publish(context.Background(), Checkpoint{Size: 5, Note: []byte("five\n")}); err != nil {
		t.Errorf("the same checkpoint again: %v", err)
	}
	if err := p.Publish(context.Background(), Checkpoint{Size: 5, Note: []byte("another five\n")}); err == nil {
		t.Error("another checkpoint of a published size was accepted")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "checkpoint.5")); string(b) != "five\n" {
		t.Errorf("checkpoint.5 replaced: %q", b)
	}
	if _, err := NewPublisher("ftp://example.com/x"); err == nil {
		t.Error("ftp:// accepted")
	}
}

func TestDirPublisherLatest(t *testing.T) {
	p, _ := NewPublisher(t.TempDir())
	lp := p.(LatestPublisher)
	if _, err := lp.Latest(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("nothing published: %v, want ErrNotFound", err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, "vouch.test/dir")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	cp, err := SignCheckpoint(signer, "vouch.test/dir", 42, Hash{1, 2, 3}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(context.Background(), cp); err != nil {
		t.Fatal(err)
	}
	got, err := lp.Latest(context.Background())
	if err != nil || got.Size != 42 || got.Root != cp.Root || got.Origin != "vouch.test/dir" {
		t.Errorf("Latest = %+v, %v", got, err)
	}
}
