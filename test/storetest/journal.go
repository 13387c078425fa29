package storetest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/journal"
)

// Tamperer is implemented by the test side of each store: it changes the
// stored journal the way an operator with full database access could,
// bypassing the append-only triggers.
type Tamperer interface {
	// ReplaceLeaf stores data as the leaf of index, with a matching leaf hash.
	ReplaceLeaf(t *testing.T, index uint64, data []byte)
	// DeleteEntry removes the entry at index.
	DeleteEntry(t *testing.T, index uint64)
	// SetTreeState overwrites the tree head.
	SetTreeState(t *testing.T, s journal.TreeState)
	// DeleteCheckpointsFrom removes the checkpoints of size >= size.
	DeleteCheckpointsFrom(t *testing.T, size uint64)
	// InsertArtifact puts an artifact row into the evidence tables without
	// a journal entry.
	InsertArtifact(t *testing.T, id uint64, digest string)
	// RewriteEvidence runs an UPDATE on the evidence or decisions tables.
	RewriteEvidence(t *testing.T, stmt string)
	// ReplaceSnapshotBody stores body as the snapshot record id's.
	ReplaceSnapshotBody(t *testing.T, id uint64, body []byte)
}

type keys struct {
	signer   note.Signer
	verifier note.Verifier
}

func newKeys(t testing.TB, origin string) keys {
	t.Helper()
	skey, vkey, err := note.GenerateKey(crand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return keys{s, v}
}

// buildJournal appends 50 entries of two kinds and two environments in
// batches, with a checkpoint after each batch; it returns the checkpoints.
func buildJournal(t testing.TB, s Store, k keys) []journal.Checkpoint {
	t.Helper()
	cp := journal.NewCheckpointer(s, k.signer, journal.CheckpointerOptions{})
	var cps []journal.Checkpoint
	n := 0
	for _, size := range []int{7, 1, 16, 9, 17} {
		var batch []journal.Entry
		for i := 0; i < size; i++ {
			e := entry(t, "admission", fmt.Sprintf("admission:%d", n), n)
			if n%3 == 0 {
				e.Kind = "approval"
			}
			if n%2 == 0 {
				e.Environment = "staging"
			}
			if err := e.Seal(); err != nil {
				t.Fatal(err)
			}
			batch = append(batch, e)
			n++
		}
		appendBatch(t, s, batch...)
		c, ok, err := cp.Checkpoint(context.Background())
		if err != nil || !ok {
			t.Fatalf("checkpoint: %v %v", ok, err)
		}
		cps = append(cps, c)
	}
	return cps
}

func export(t testing.TB, s Store, req journal.ExportRequest) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := journal.Export(context.Background(), &buf, s, req); err != nil {
		t.Fatalf("Export(%+v): %v", req, err)
	}
	return buf.Bytes()
}

func testExportVerifies(t *testing.T, s Store) {
	k := newKeys(t, "vouch.test/export")
	if _, err := journal.Export(context.Background(), &bytes.Buffer{}, s, journal.ExportRequest{}); !errors.Is(err, journal.ErrNoCheckpoint) {
		t.Fatalf("export without a checkpoint: %v, want ErrNoCheckpoint", err)
	}
	cps := buildJournal(t, s, k)
	last := cps[len(cps)-1]
	tests := []struct {
		name                 string
		req                  journal.ExportRequest
		entries, elided, cps uint64
	}{
		{"everything", journal.ExportRequest{}, 50, 0, 5},
		{"one environment", journal.ExportRequest{Environment: "staging"}, 25, 25, 5},
		{"one kind", journal.ExportRequest{Kind: "approval"}, 17, 33, 5},
		{"a range", journal.ExportRequest{From: 8, To: 33}, 25, 0, 2},
		{"a range and a filter", journal.ExportRequest{From: 3, To: 40, Kind: "admission", Environment: "prod"}, 12, 25, 4},
		{"empty range", journal.ExportRequest{From: 50}, 0, 0, 0},
	}
	for _, tt := range tests {
		data := export(t, s, tt.req)
		rep, err := journal.VerifyExport(bytes.NewReader(data), k.verifier, journal.VerifyOptions{})
		if err != nil {
			t.Errorf("%s: VerifyExport: %v", tt.name, err)
			continue
		}
		if rep.Entries != tt.entries || rep.Elided != tt.elided || uint64(rep.Checkpoints) != tt.cps || rep.TreeSize != last.Size || rep.Root != last.Root {
			t.Errorf("%s: report %+v, want %d entries, %d elided, %d checkpoints of a %d-entry tree", tt.name, rep, tt.entries, tt.elided, tt.cps, last.Size)
		}
		// The elided entries are named, range by range, and the header's
		// filter reported.
		var named uint64
		for i, r := range rep.ElidedRanges {
			if r[1] < r[0] || i > 0 && r[0] <= rep.ElidedRanges[i-1][1]+1 {
				t.Errorf("%s: elided ranges %v are not ordered, disjoint ranges", tt.name, rep.ElidedRanges)
			}
			named += r[1] - r[0] + 1
		}
		if named != tt.elided || rep.Kind != tt.req.Kind || rep.Environment != tt.req.Environment {
			t.Errorf("%s: elided ranges %v (%d entries), filter %q/%q; want %d entries, filter %q/%q", tt.name, rep.ElidedRanges, named, rep.Kind, rep.Environment, tt.elided, tt.req.Kind, tt.req.Environment)
		}
	}
	// An earlier checkpoint the verifier holds: checked inside the range,
	// or with a consistency proof outside it.
	full := export(t, s, journal.ExportRequest{})
	for _, known := range cps {
		known := known
		if _, err := journal.VerifyExport(bytes.NewReader(full), k.verifier, journal.VerifyOptions{Known: &known}); err != nil {
			t.Errorf("full export with known checkpoint %d: %v", known.Size, err)
		}
	}
	part := export(t, s, journal.ExportRequest{From: 30})
	proof := func(a, b uint64) ([]journal.Hash, error) {
		return journal.ConsistencyProof(context.Background(), s, a, b)
	}
	if _, err := journal.VerifyExport(bytes.NewReader(part), k.verifier, journal.VerifyOptions{Known: &cps[0], Consistency: proof}); err != nil {
		t.Errorf("partial export, known checkpoint before it, with a consistency proof: %v", err)
	}
	if _, err := journal.VerifyExport(bytes.NewReader(part), k.verifier, journal.VerifyOptions{Known: &cps[0]}); err == nil {
		t.Error("partial export, known checkpoint before it, no proof: verified")
	}
}

// testExportTamperMatrix changes an export the ways an attacker could and
// checks verification catches each.
func testExportTamperMatrix(t *testing.T, s Store) {
	k := newKeys(t, "vouch.test/tamper")
	cps := buildJournal(t, s, k)
	full := export(t, s, journal.ExportRequest{})
	lines := strings.SplitAfter(string(full), "\n")
	lines = lines[:len(lines)-1]   // after the final newline
	entryLine := func(i int) int { // line number of entry i (header is line 0, checkpoints interleave)
		for n, l := range lines {
			if strings.HasPrefix(l, fmt.Sprintf(`{"index":%d,`, i)) {
				return n
			}
		}
		t.Fatalf("no line for entry %d", i)
		return 0
	}
	edit := func(f func(ls []string) []string) []byte {
		ls := append([]string(nil), lines...)
		return []byte(strings.Join(f(ls), ""))
	}
	other := newKeys(t, "vouch.test/tamper") // same origin, another key

	cases := []struct {
		name    string
		data    []byte
		opts    journal.VerifyOptions
		verify  note.Verifier
		wantErr string
	}{
		{name: "one byte of an entry changed", data: edit(func(ls []string) []string {
			n := entryLine(20)
			ls[n] = strings.Replace(ls[n], `"text":"entry 20"`, `"text":"entry 2O"`, 1)
			return ls
		}), wantErr: "entry 23: the entries up to here do not match the signed checkpoint of size 24"},
		{name: "an entry deleted", data: edit(func(ls []string) []string {
			n := entryLine(10)
			return append(ls[:n], ls[n+1:]...)
		}), wantErr: "entry 10: expected entry 10 here, found entry 11"},
		{name: "two entries swapped", data: edit(func(ls []string) []string {
			a, b := entryLine(30), entryLine(31)
			ls[a], ls[b] = ls[b], ls[a]
			return ls
		}), wantErr: "entry 30: expected entry 30 here, found entry 31"},
		{name: "two entries swapped with their indices", data: edit(func(ls []string) []string {
			a, b := entryLine(30), entryLine(31)
			la, lb := ls[a], ls[b]
			ls[a] = strings.Replace(lb, `{"index":31,`, `{"index":30,`, 1)
			ls[b] = strings.Replace(la, `{"index":30,`, `{"index":31,`, 1)
			return ls
		}), wantErr: "do not match"},
		{name: "an entry inserted and the rest renumbered", data: edit(func(ls []string) []string {
			n := entryLine(45)
			forged := strings.Replace(ls[n], `"text":"entry 45"`, `"text":"forged"`, 1)
			out := append(append(append([]string{}, ls[:n]...), forged), ls[n:]...)
			for i := n + 1; i < len(out); i++ {
				for j := 49; j >= 45; j-- {
					out[i] = strings.Replace(out[i], fmt.Sprintf(`{"index":%d,`, j), fmt.Sprintf(`{"index":%d,`, j+1), 1)
				}
			}
			return out
		}), wantErr: "entry 50: entry beyond the exported range"},
		{name: "the tail truncated", data: edit(func(ls []string) []string { return ls[:entryLine(40)] }), wantErr: "truncated"},
		{name: "the end line removed", data: edit(func(ls []string) []string { return ls[:len(ls)-1] }), wantErr: "no end line"},
		{name: "signed with another key", data: edit(func(ls []string) []string {
			var h journal.ExportHeader
			json.Unmarshal([]byte(ls[0]), &h)
			c, _ := journal.SignCheckpoint(other.signer, h.Origin, h.TreeSize, cps[len(cps)-1].Root, time.Now())
			h.Checkpoint = string(c.Note)
			b, _ := json.Marshal(h)
			ls[0] = string(b) + "\n"
			return ls
		}), wantErr: "not signed by"},
		{name: "verified with another key", data: full, verify: other.verifier, wantErr: "not signed by"},
		{name: "rolled back to an older tree", data: []byte(strings.Join(lines[:entryLine(int(cps[2].Size-1))+1], "")), wantErr: "truncated"},
		{name: "an older head than one held", data: full, opts: journal.VerifyOptions{Known: &journal.Checkpoint{Origin: cps[0].Origin, Size: 60, Root: cps[0].Root}}, wantErr: "rolled back"},
		{name: "a different history than one held", data: full, opts: journal.VerifyOptions{Known: &journal.Checkpoint{Origin: cps[1].Origin, Size: cps[1].Size, Root: cps[0].Root}}, wantErr: "do not match the checkpoint you hold"},
	}
	for _, tc := range cases {
		v := tc.verify
		if v == nil {
			v = k.verifier
		}
		_, err := journal.VerifyExport(bytes.NewReader(tc.data), v, tc.opts)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && err == nil:
			t.Errorf("%s: verified, want an error containing %q", tc.name, tc.wantErr)
		case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
			t.Errorf("%s: error %q, want one containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// testStoreTamperMatrix changes the store itself and checks VerifyStore.
// testCheckpointerRefusesRewrites: the checkpointer does not sign a
// journal that does not extend a checkpoint it knows of — one it signed,
// or one published to a directory — whether the history was rewritten
// in the database, with every stored checkpoint deleted, or the store was
// restored from an older backup. A published checkpoint is never replaced.
func testCheckpointerRefusesRewrites(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	grow := func(t *testing.T, s Store, kind journal.Kind, from, n int) {
		t.Helper()
		var batch []journal.Entry
		for i := from; i < from+n; i++ {
			e := entry(t, kind, fmt.Sprintf("%s:%d", kind, i), i)
			if err := e.Seal(); err != nil {
				t.Fatal(err)
			}
			batch = append(batch, e)
		}
		appendBatch(t, s, batch...)
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, s Store, tp Tamperer, cps []journal.Checkpoint)
	}{
		{"an entry rewritten, the tree recomputed, every checkpoint deleted", func(t *testing.T, s Store, tp Tamperer, _ []journal.Checkpoint) {
			leaves, _ := s.Leaves(ctx, 12, 1)
			tp.ReplaceLeaf(t, 12, bytes.Replace(leaves[0].Data, []byte("entry 12"), []byte("entry 99"), 1))
			st, _ := journal.EmptyTree().Extend(leafHashes(t, s, 51))
			tp.SetTreeState(t, st)
			tp.DeleteCheckpointsFrom(t, 0)
			grow(t, s, "admission", 100, 3)
		}},
		{"restored from a backup older than the published checkpoint", func(t *testing.T, s Store, tp Tamperer, cps []journal.Checkpoint) {
			old := cps[2]
			for i := old.Size; i < 51; i++ {
				tp.DeleteEntry(t, i)
			}
			st, _ := journal.EmptyTree().Extend(leafHashes(t, s, old.Size))
			tp.SetTreeState(t, st)
			tp.DeleteCheckpointsFrom(t, old.Size+1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			k := newKeys(t, "vouch.test/store")
			cps := buildJournal(t, s, k)
			dir := t.TempDir()
			pub, err := journal.NewPublisher(dir)
			if err != nil {
				t.Fatal(err)
			}
			signer := journal.NewCheckpointer(s, k.signer, journal.CheckpointerOptions{Publishers: []journal.Publisher{pub}})
			grow(t, s, "admission", 50, 1)
			if _, ok, err := signer.Checkpoint(ctx); !ok || err != nil {
				t.Fatalf("checkpoint of 51 entries: %v %v", ok, err)
			}
			published, _ := os.ReadFile(filepath.Join(dir, "checkpoint.51"))
			tc.tamper(t, s, s.(Tamperer), cps)

			restarted := journal.NewCheckpointer(s, k.signer, journal.CheckpointerOptions{Publishers: []journal.Publisher{pub}})
			for name, c := range map[string]*journal.Checkpointer{"the signer": signer, "a restarted signer": restarted} {
				if cp, ok, err := c.Checkpoint(ctx); !errors.Is(err, journal.ErrInconsistent) {
					t.Errorf("%s: signed %v (size %d), error %v; want ErrInconsistent", name, ok, cp.Size, err)
				}
			}
			if now, _ := os.ReadFile(filepath.Join(dir, "checkpoint.51")); !bytes.Equal(now, published) {
				t.Error("the published checkpoint.51 was replaced")
			}
			if latest, err := s.LatestCheckpoint(ctx); err == nil && latest.Size > 51 {
				t.Errorf("a checkpoint of size %d was stored", latest.Size)
			}
		})
	}
}

func testStoreTamperMatrix(t *testing.T, open func(t *testing.T) Store) {
	cases := []struct {
		name    string
		tamper  func(t *testing.T, s Store, tp Tamperer, cps []journal.Checkpoint)
		known   bool // verify with the last checkpoint held
		wantErr string
	}{
		{name: "untouched"},
		{name: "an entry rewritten with a matching hash", tamper: func(t *testing.T, s Store, tp Tamperer, _ []journal.Checkpoint) {
			leaves, _ := s.Leaves(context.Background(), 12, 1)
			tp.ReplaceLeaf(t, 12, bytes.Replace(leaves[0].Data, []byte("entry 12"), []byte("entry 99"), 1))
		}, wantErr: "entry 23: the entries up to here do not match the signed checkpoint of size 24"},
		{name: "an entry deleted", tamper: func(t *testing.T, s Store, tp Tamperer, _ []journal.Checkpoint) {
			tp.DeleteEntry(t, 12)
		}, wantErr: "entry 12: missing"},
		{name: "rolled back to an older tree, newer checkpoints removed", tamper: func(t *testing.T, s Store, tp Tamperer, cps []journal.Checkpoint) {
			old := cps[2]
			for i := old.Size; i < cps[len(cps)-1].Size; i++ {
				tp.DeleteEntry(t, i)
			}
			st, _ := journal.EmptyTree().Extend(leafHashes(t, s, old.Size))
			tp.SetTreeState(t, st)
			tp.DeleteCheckpointsFrom(t, old.Size+1)
		}, known: true, wantErr: "rolled back"},
		{name: "an entry stored past the tree", tamper: func(t *testing.T, s Store, tp Tamperer, cps []journal.Checkpoint) {
			st, _ := journal.EmptyTree().Extend(leafHashes(t, s, 49))
			tp.SetTreeState(t, st)
			tp.DeleteCheckpointsFrom(t, 50)
		}, wantErr: "entry 49: stored beyond the tree size 49"},
		{name: "rolled back, checkpoints kept", tamper: func(t *testing.T, s Store, tp Tamperer, cps []journal.Checkpoint) {
			st, _ := journal.EmptyTree().Extend(leafHashes(t, s, cps[2].Size))
			tp.SetTreeState(t, st)
		}, wantErr: "rolled back"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tp, ok := s.(Tamperer)
			if !ok {
				t.Fatalf("%T does not implement storetest.Tamperer", s)
			}
			k := newKeys(t, "vouch.test/store")
			cps := buildJournal(t, s, k)
			if tc.tamper != nil {
				tc.tamper(t, s, tp, cps)
			}
			opts := journal.VerifyOptions{}
			if tc.known {
				opts.Known = &cps[len(cps)-1]
			}
			rep, err := journal.VerifyStore(context.Background(), s, k.verifier, opts, nil)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("VerifyStore: %v", err)
			case tc.wantErr == "" && (rep.Checkpoints != len(cps) || rep.Size != 50 || rep.Nodes == 0):
				t.Errorf("report %+v, want %d checkpoints of 50 entries and the nodes compared", rep, len(cps))
			case tc.wantErr != "" && err == nil:
				t.Errorf("verified, want an error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// testVerifyWhileAppending verifies a live store: entries appended and a
// checkpoint signed after the check read the tree state are not taken
// for tampering (the scheduled integrity check runs on a busy leader).
func testVerifyWhileAppending(t *testing.T, s Store) {
	ctx := context.Background()
	k := newKeys(t, "vouch.test/store")
	cps := buildJournal(t, s, k)
	before, err := s.TreeState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var more []journal.Entry
	for i := 0; i < 5; i++ {
		more = append(more, entry(t, "admission", fmt.Sprintf("admission:later-%d", i), 100+i))
	}
	appendBatch(t, s, more...)
	if _, _, err := journal.NewCheckpointer(s, k.signer, journal.CheckpointerOptions{}).Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	live := &appendedMeanwhile{Store: s, tree: before, checkpoint: cps[len(cps)-1]}
	rep, err := journal.VerifyStore(ctx, live, k.verifier, journal.VerifyOptions{}, nil)
	if err != nil || rep.Size != before.Size {
		t.Errorf("VerifyStore while appending = %+v, %v; want the %d entries there when it began, verified", rep, err, before.Size)
	}
}

// appendedMeanwhile is a store in which more entries are appended and
// checkpointed right after VerifyStore first reads the tree state: until
// then it answers with the tree and latest checkpoint of before.
type appendedMeanwhile struct {
	Store
	tree       journal.TreeState
	checkpoint journal.Checkpoint
	appended   bool
}

func (a *appendedMeanwhile) TreeState(ctx context.Context) (journal.TreeState, error) {
	if !a.appended {
		a.appended = true
		return a.tree, nil
	}
	return a.Store.TreeState(ctx)
}

func (a *appendedMeanwhile) LatestCheckpoint(ctx context.Context) (journal.Checkpoint, error) {
	if !a.appended {
		return a.checkpoint, nil
	}
	return a.Store.LatestCheckpoint(ctx)
}

func leafHashes(t *testing.T, s Store, n uint64) []journal.Hash {
	leaves, err := s.Leaves(context.Background(), 0, int(n))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]journal.Hash, len(leaves))
	for i, l := range leaves {
		out[i] = journal.LeafHash(l.Data)
	}
	return out
}

// FuzzVerifyExport feeds mutations of real exports of s to
// journal.VerifyExport: whatever the bytes, it returns (never panics), and
// an export it accepts proves the root the store signed at that size.
func FuzzVerifyExport(f *testing.F, s Store) {
	k := newKeys(f, "vouch.test/fuzz")
	cps := buildJournal(f, s, k)
	roots := map[uint64]journal.Hash{}
	for _, c := range cps {
		roots[c.Size] = c.Root
	}
	for _, req := range []journal.ExportRequest{{}, {From: 3, To: 20, Kind: "approval"}, {Environment: "staging"}} {
		f.Add(export(f, s, req))
	}
	f.Add([]byte(`{"format":"vouch-journal-export/1"}` + "\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		rep, err := journal.VerifyExport(bytes.NewReader(body), k.verifier, journal.VerifyOptions{Workers: 2})
		if err != nil {
			return
		}
		if want, ok := roots[rep.TreeSize]; !ok || rep.Root != want {
			t.Fatalf("accepted an export of size %d with root %x; the store signed %x", rep.TreeSize, rep.Root, want)
		}
	})
}
