package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"time"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/journal"
	"github.com/vouch-dev/vouch/sqlite"
)

var minutes = flagInt("history-minutes", 525600, "minutes of snapshot history for the state-at-time benchmark (a year)")

// runDrift builds a year of minute-interval snapshot history — one change
// a minute among 100 workloads, a full snapshot every 50 changes, as the
// Recorder writes it — in SQLite, then times state-at-a-time queries.
func runDrift() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "vouch-bench-drift-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s, err := sqlite.New(ctx, sqlite.Config{Path: filepath.Join(dir, "vouch.db")})
	if err != nil {
		return err
	}
	defer s.Close()

	start := time.Date(2025, 11, 25, 0, 0, 0, 0, time.UTC)
	cur := drift.Snapshot{Environment: "prod"}
	for i := 0; i < 100; i++ {
		cur.Workloads = append(cur.Workloads, drift.Workload{Namespace: "prod", Kind: "Deployment", Name: fmt.Sprint("svc", i), Pods: 3,
			Containers: []drift.Container{{Name: "app", Image: fmt.Sprintf("registry.example.com/svc%d:1", i), Digest: fmt.Sprintf("sha256:%064x", i)}}})
	}
	cur.Normalize()
	fmt.Fprintf(os.Stderr, "drift: writing %d minutes of history…\n", *minutes)
	buildStart := time.Now()
	rnd := rand.New(rand.NewPCG(1, 1))
	var batch []journal.Entry
	var lastID uint64
	sinceFull := drift.DefaultFullEvery // the first record is full
	next := uint64(0)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := s.AppendBatch(ctx, batch)
		if err != nil {
			return err
		}
		next = res[len(res)-1].Index + 1
		batch = batch[:0]
		return nil
	}
	for m := 0; m < *minutes; m++ {
		prev := cur
		cur = drift.Snapshot{Environment: "prod", Workloads: append([]drift.Workload(nil), prev.Workloads...)}
		w := rnd.IntN(len(cur.Workloads))
		ct := cur.Workloads[w].Containers[0]
		ct.Image = fmt.Sprintf("registry.example.com/svc%d:%d", w, m)
		ct.Digest = fmt.Sprintf("sha256:%064x", 1000+m)
		cur.Workloads[w].Containers = []drift.Container{ct}
		rec := drift.Record{Environment: "prod", Hash: cur.ContentHash()}
		if sinceFull+1 >= drift.DefaultFullEvery {
			rec.Kind, rec.Workloads, sinceFull = drift.RecordFull, cur.Workloads, 0
		} else {
			d := drift.Compare(prev, cur)
			base := lastID
			rec.Kind, rec.Diff, rec.Base = drift.RecordDelta, &d, &base
			sinceFull++
		}
		body, _ := json.Marshal(rec)
		e := journal.Entry{Kind: drift.KindSnapshot, Time: start.Add(time.Duration(m) * time.Minute), Environment: "prod", Key: "snapshot:" + strconv.Itoa(m), Body: body}
		if err := e.Seal(); err != nil {
			return err
		}
		lastID = next + uint64(len(batch))
		batch = append(batch, e)
		if len(batch) == 2000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	built := time.Since(buildStart)

	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var lat []time.Duration
	for i := 0; i < 300; i++ {
		at := start.Add(time.Duration(rnd.IntN(*minutes)) * time.Minute).Add(30 * time.Second)
		t := time.Now()
		snap, _, err := drift.State(ctx, s, "prod", at)
		if err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
		if len(snap.Workloads) != 100 {
			return fmt.Errorf("state at %s has %d workloads", at, len(snap.Workloads))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("\nState at a time over %d minutes of history (100 workloads, one change a minute, a full snapshot every %d; SQLite; history written in %s):\n\n",
		*minutes, drift.DefaultFullEvery, built.Round(time.Second))
	fmt.Println("| queries | p50 ms | p99 ms | max ms |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| %d | %.2f | %.2f | %.2f |\n", len(lat), ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1]))
	return nil
}
