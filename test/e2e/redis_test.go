package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vouch-dev/vouch/rediscache"
	"github.com/vouch-dev/vouch/test/redistest"
)

// TestReplicasShareRedis runs two replicas on one PostgreSQL and one Redis:
// a release decision recorded through one replica reaches the other's next
// decision; Redis killed under load fails no admission; the API rate limit
// is counted across replicas.
func TestReplicasShareRedis(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	admin := strings.Repeat("r", 40)
	t.Setenv("VOUCH_ADMIN_TOKEN", admin)
	t.Setenv("VOUCH_TOKEN", admin)
	db := pg.Database(t)
	a := start(t, db, "--redis-url", srv.URL(), "--api-rate-limit", "40")
	b := start(t, db, "--redis-url", srv.URL(), "--api-rate-limit", "40")
	ci := a.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	rm := a.cli("token", "create", "--name", "rm", "--scopes", "approvals:write")

	digest := "sha256:" + strings.Repeat("7", 64)
	image := "registry.example.com/shop/web@" + digest
	if code, out := a.post(ci, "/api/v1/artifacts", `{"name":"registry.example.com/shop/web","digest":"`+digest+`"}`); code != 201 {
		t.Fatalf("artifact: %d %v", code, out)
	}
	a.post(ci, "/api/v1/attestations", `{"digest":"`+digest+`","name":"unit-tests","passed":true}`)
	if code, out := a.post(rm, "/api/v1/approvals", `{"digest":"`+digest+`","environment":"prod","decision":"approved","reason":"CAB-1"}`); code != 201 {
		t.Fatalf("approve: %d %v", code, out)
	}
	// B admits, and now holds the evidence in its cache and in Redis.
	if resp := b.admit("r-1", "prod", image); !resp.Allowed {
		t.Fatalf("B before the rejection: %s", resp.Result.Message)
	}
	// A records a rejection: B's very next decisions must deny. A stale
	// cache would admit here (denials are re-checked, admissions are not).
	if code, out := a.post(rm, "/api/v1/approvals", `{"digest":"`+digest+`","environment":"prod","decision":"rejected","reason":"CVE-2026-7"}`); code != 201 {
		t.Fatalf("reject: %d %v", code, out)
	}
	rejected := time.Now()
	var took time.Duration
	for i := 0; ; i++ {
		resp := b.admit(fmt.Sprintf("r-2-%d", i), "prod", image)
		if !resp.Allowed {
			took = time.Since(rejected)
			break
		}
		if time.Since(rejected) > 5*time.Second {
			t.Fatalf("B still admits 5 s after the rejection (%d decisions)", i+1)
		}
	}
	t.Logf("the rejection recorded through A reached B's decisions after %s", took)

	// Approved again; then Redis dies in the middle of a load on B.
	a.post(rm, "/api/v1/approvals", `{"digest":"`+digest+`","environment":"prod","decision":"approved","reason":"CAB-2"}`)
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp := b.admit(fmt.Sprintf("load-%d-%d", w, i), "prod", image)
				sent.Add(1)
				if !resp.Allowed {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, resp.Result.Message)
				}
			}
		}(w)
	}
	time.Sleep(500 * time.Millisecond)
	srv.Kill()
	killedAt := sent.Load()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || sent.Load() <= killedAt {
		t.Errorf("%d of %d admissions failed (%d after Redis was killed): %v", failed.Load(), sent.Load(), sent.Load()-killedAt, firstFailure.Load())
	}
	t.Logf("%d admissions, %d of them after Redis was killed, none failed", sent.Load(), sent.Load()-killedAt)

	// The rate limit is per token, across replicas (while Redis is up).
	srv2, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Stop()
	a2 := start(t, db, "--redis-url", srv2.URL(), "--api-rate-limit", "40")
	b2 := start(t, db, "--redis-url", srv2.URL(), "--api-rate-limit", "40")
	for attempt := 0; ; attempt++ {
		burst := a2.cli("token", "create", "--name", fmt.Sprint("burst-", attempt), "--scopes", "audit:read")
		minute := time.Now().Truncate(time.Minute)
		allowed, limited := 0, 0
		var retryAfter, problemType string
		for i := 0; i < 45; i++ {
			v := a2
			if i%2 == 1 {
				v = b2
			}
			req, _ := http.NewRequest("GET", "http://"+v.api+"/api/v1/artifacts?limit=1", nil)
			req.Header.Set("Authorization", "Bearer "+burst)
			code, body := do(t, http.DefaultClient, req)
			switch code {
			case 200:
				allowed++
			case 429:
				limited++
				problemType = fmt.Sprint(body["type"])
			}
			if code == 429 && retryAfter == "" {
				resp, _ := http.DefaultClient.Do(req)
				retryAfter = resp.Header.Get("Retry-After")
				resp.Body.Close()
			}
		}
		if !time.Now().Truncate(time.Minute).Equal(minute) && attempt < 3 {
			continue // a new minute began mid-burst: counts reset; try again
		}
		if allowed != 40 || limited != 5 || retryAfter == "" || !strings.HasSuffix(problemType, "/rate-limited") {
			t.Errorf("burst of 45 over two replicas: %d allowed, %d limited (Retry-After %q, type %q); want 40 and 5", allowed, limited, retryAfter, problemType)
		}
		break
	}
}

// TestRedisOutageDuringRejection: replica B caches an approval in Redis;
// Redis hangs; a rejection is recorded through replica A, and neither A's
// delete nor B's (on hearing PostgreSQL's NOTIFY) reaches Redis; Redis
// comes back holding the approval. B must deny: it reads the digest from
// the store until its own delete has succeeded. Before, B's in-process
// cache refilled from Redis and admitted against the approval.
func TestRedisOutageDuringRejection(t *testing.T) {
	srv, err := redistest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	admin := strings.Repeat("r", 40)
	t.Setenv("VOUCH_ADMIN_TOKEN", admin)
	t.Setenv("VOUCH_TOKEN", admin)
	db := pg.Database(t)
	a := start(t, db, "--redis-url", srv.URL())
	b := start(t, db, "--redis-url", srv.URL())
	ci := a.cli("token", "create", "--name", "ci", "--scopes", "evidence:write")
	rm := a.cli("token", "create", "--name", "rm", "--scopes", "approvals:write")

	digest := "sha256:" + strings.Repeat("8", 64)
	image := "registry.example.com/shop/web@" + digest
	if code, out := a.post(ci, "/api/v1/artifacts", `{"name":"registry.example.com/shop/web","digest":"`+digest+`"}`); code != 201 {
		t.Fatalf("artifact: %d %v", code, out)
	}
	a.post(ci, "/api/v1/attestations", `{"digest":"`+digest+`","name":"unit-tests","passed":true}`)
	if code, out := a.post(rm, "/api/v1/approvals", `{"digest":"`+digest+`","environment":"prod","decision":"approved","reason":"CAB-1"}`); code != 201 {
		t.Fatalf("approve: %d %v", code, out)
	}
	// B admits, and writes the approval to Redis: once the changes it heard
	// are settled (each digest is read from the store until its second
	// delete, half a second after the first).
	time.Sleep(time.Second)
	if resp := b.admit("r-1", "prod", image); !resp.Allowed {
		t.Fatalf("B before the rejection: %s", resp.Result.Message)
	}
	opts, _ := rediscache.ClientOptions(srv.URL())
	raw := redis.NewClient(opts)
	defer raw.Close()
	key := rediscache.KeyPrefix + digest
	approved, err := raw.Get(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("the approval is not in Redis: %v", err)
	}

	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	paused := time.Now()
	if code, out := a.post(rm, "/api/v1/approvals", `{"digest":"`+digest+`","environment":"prod","decision":"rejected","reason":"CVE-2026-7"}`); code != 201 {
		t.Fatalf("reject: %d %v", code, out)
	}
	// Past every deadline of the calls sent meanwhile, within the breakers'
	// first second; Redis back with the approval, as a restored save file
	// would hold it.
	time.Sleep(time.Until(paused.Add(900 * time.Millisecond)))
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := raw.Set(context.Background(), key, approved, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for i, end := 0, time.Now().Add(3*time.Second); time.Now().Before(end); i++ {
		for name, v := range map[string]*vouch{"A": a, "B": b} {
			if resp := v.admit(fmt.Sprintf("r-2-%s-%d", name, i), "prod", image); resp.Allowed {
				t.Fatalf("%s admitted against the approval in Redis after the rejection (decision %d)", name, i)
			}
		}
	}
	if v, _ := raw.Get(context.Background(), key).Result(); v == approved {
		t.Error("the stale entry is still in Redis")
	}
}
