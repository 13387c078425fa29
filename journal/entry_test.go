package journal

import (
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

func TestSealLeafIsCanonicalJSONOfItsFields(t *testing.T) {
	e := Entry{Kind: "admission", Time: time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		Environment: "prod", Key: "admission:u\"1", Body: json.RawMessage(`{ "z": 1, "a": "é\u2028" }`)}
	if err := e.Seal(); err != nil {
		t.Fatal(err)
	}
	want := "{\"body\":{\"a\":\"é\u2028\",\"z\":1},\"environment\":\"prod\",\"key\":\"admission:u\\\"1\",\"kind\":\"admission\",\"time\":\"2026-11-25T11:00:00.123456Z\"}"
	if string(e.Leaf) != want {
		t.Errorf("leaf =\n%s\nwant\n%s", e.Leaf, want)
	}
	generic, err := Canonical(leaf{Kind: e.Kind, Time: e.Time.Format(TimeFormat), Environment: e.Environment, Key: e.Key, Body: e.Body})
	if err != nil || string(generic) != string(e.Leaf) {
		t.Errorf("leaf differs from the generic canonical encoding:\n%s\n%s", e.Leaf, generic)
	}
	if e.LeafHash != LeafHash(e.Leaf) {
		t.Error("leaf hash does not match")
	}
	parsed, err := ParseLeaf(7, e.Leaf)
	if err != nil {
		t.Fatal(err)
	}
	e.Index = 7
	if diff := cmp.Diff(e, parsed); diff != "" {
		t.Errorf("ParseLeaf(Seal(e)) differs (-sealed +parsed):\n%s", diff)
	}
}

func TestSealRejects(t *testing.T) {
	for _, e := range []Entry{
		{Time: time.Now(), Body: json.RawMessage(`{}`)},
		{Kind: "x", Body: json.RawMessage(`{}`)},
		{Kind: "x", Time: time.Now(), Body: json.RawMessage(`{"a":1,"a":2}`)},
	} {
		if err := e.Seal(); err == nil {
			t.Errorf("Seal(%+v) succeeded", e)
		}
	}
}

// TestTreeStateRFC6962Vectors checks the incremental tree state against the
// RFC 6962 reference roots for the standard eight test leaves.
func TestTreeStateRFC6962Vectors(t *testing.T) {
	if got, want := EmptyTree().Root.String(), hex.EncodeToString(testonly.EmptyRootHash()); got != want {
		t.Errorf("empty root = %s, want %s", got, want)
	}
	leaves := testonly.LeafInputs()
	roots := testonly.RootHashes()
	state := EmptyTree()
	for i, l := range leaves {
		var err error
		if state, err = state.Extend([]Hash{LeafHash(l)}); err != nil {
			t.Fatal(err)
		}
		if got, want := state.Root.String(), hex.EncodeToString(roots[i+1]); got != want {
			t.Errorf("root of %d leaves = %s, want %s", i+1, got, want)
		}
		decoded, err := DecodeRange(EncodeRange(state.Range))
		if err != nil || !cmp.Equal(decoded, state.Range) {
			t.Errorf("range does not survive encoding: %v", err)
		}
	}
	// Appending in one batch gives the same head as one at a time.
	var hashes []Hash
	for _, l := range leaves {
		hashes = append(hashes, LeafHash(l))
	}
	batch, err := EmptyTree().Extend(hashes)
	if err != nil || batch.Root != state.Root || batch.Size != 8 {
		t.Errorf("batch extend = %d %s, want 8 %s (%v)", batch.Size, batch.Root, state.Root, err)
	}
}

func TestPlanBatch(t *testing.T) {
	mk := func(key string, n int) Entry {
		e := Entry{Kind: "t", Time: time.Unix(int64(n), 0), Key: key, Body: json.RawMessage(`{}`)}
		if err := e.Seal(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	old := mk("a", 0)
	old.Index = 3
	state, _ := EmptyTree().Extend([]Hash{{1}, {2}, {3}, {4}})
	b, err := PlanBatch(state, []Entry{mk("a", 1), mk("", 2), mk("b", 3), mk("b", 4), mk("", 5)}, map[string]Entry{"a": old})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range b.Results {
		got = append(got, fmtResult(r))
	}
	want := []string{"3 existing", "4 new", "5 new", "5 existing", "6 new"}
	if !cmp.Equal(got, want) {
		t.Errorf("results = %v, want %v", got, want)
	}
	if len(b.New) != 3 || b.State.Size != 7 {
		t.Errorf("new = %d, size %d; want 3 and 7", len(b.New), b.State.Size)
	}
	if _, err := PlanBatch(state, []Entry{{Kind: "t"}}, nil); err == nil {
		t.Error("PlanBatch accepted an unsealed entry")
	}
}

func fmtResult(r Appended) string {
	if r.Existing {
		return itoa(r.Index) + " existing"
	}
	return itoa(r.Index) + " new"
}

func itoa(n uint64) string { return string(rune('0' + n)) }

// TestKeys generates many keys, so that some have a '+' in their base64
// part, and checks the verifier key derived from each verifies its
// signatures.
func TestKeys(t *testing.T) {
	for i := 0; i < 50; i++ {
		path := filepath.Join(t.TempDir(), "journal.key")
		skey, created, err := LoadOrCreateKey(path, "vouch.test/keys")
		if err != nil || !created {
			t.Fatalf("LoadOrCreateKey: %v %v", created, err)
		}
		again, created, err := LoadOrCreateKey(path, "")
		if err != nil || created || again != skey {
			t.Fatalf("reloading the key: %v %v", created, err)
		}
		if _, _, err := LoadOrCreateKey(path, "another/origin"); err == nil {
			t.Fatal("a key for another origin was accepted")
		}
		vkey, err := VerifierKey(skey)
		if err != nil {
			t.Fatalf("VerifierKey(%q): %v", skey, err)
		}
		v, err := NewVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := note.NewSigner(skey)
		cp, err := SignCheckpoint(signer, "vouch.test/keys", 3, Hash{1}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenCheckpoint(cp.Note, v)
		if err != nil || got.Size != 3 || got.Root != (Hash{1}) || got.Origin != "vouch.test/keys" {
			t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
		}
	}
}
