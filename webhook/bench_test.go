package webhook_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServeHTTP measures one admission through the whole handler, in
// process: decode, extract, evidence lookup (SQLite), policy, durable
// journal append (synchronous=FULL), encode. Sequential, so every decision
// pays a commit of its own; `make bench` measures concurrent load.
func BenchmarkServeHTTP(b *testing.B) {
	f := newFixture(b)
	var images []string
	for i := 0; i < 3; i++ {
		f.report(digest(100+i), false, false)
		images = append(images, fmt.Sprintf("registry.example.com/app%d@%s", i, digest(100+i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(review(fmt.Sprint("b", i), "default", "CREATE", false, images...)))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.handler.ServeHTTP(rec, req)
		if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}
