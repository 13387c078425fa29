package journal

import (
	"crypto/rand"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// TestCheckpointTime: the signing time is in the signed note, and a
// checkpoint signed before it was has none, and still opens.
func TestCheckpointTime(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "vouch.test/time")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	at := time.Date(2026, 11, 26, 8, 0, 0, 123456789, time.UTC)
	cp, err := SignCheckpoint(signer, "vouch.test/time", 7, Hash{7}, at)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCheckpoint(cp.Note, verifier)
	if err != nil || !got.Time.Equal(at.Truncate(time.Microsecond)) || got.Size != 7 || got.Root != cp.Root {
		t.Fatalf("OpenCheckpoint = %+v, %v; want size 7 signed at %s", got, err, at)
	}
	old, err := note.Sign(&note.Note{Text: "vouch.test/time\n7\nBwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenCheckpoint(old, verifier); err != nil || !got.Time.IsZero() || got.Size != 7 {
		t.Errorf("a checkpoint without a time line = %+v, %v", got, err)
	}
	stored := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, err := StoredCheckpoint(7, cp.Root[:], old, stored); err != nil || !got.Time.Equal(stored) {
		t.Errorf("a stored checkpoint without a time line = %+v, %v; want the store's time", got, err)
	}
	bad, _ := note.Sign(&note.Note{Text: "vouch.test/time\n7\nBwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime yesterday\n"}, signer)
	if _, err := OpenCheckpoint(bad, verifier); err == nil {
		t.Error("a time line that is not RFC 3339 was accepted")
	}
}
