package console

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/journal"
)

// Check is one step of a verify-now run.
type Check struct {
	What   string
	OK     bool
	Detail string
}

// Verification is what verify-now found.
type Verification struct {
	Checks []Check
	OK     bool
	Took   time.Duration
}

// Verify-now bounds: the entries whose inclusion it proves, and the older
// checkpoints whose consistency with the latest it proves.
const (
	VerifyRecentEntries  = 32
	VerifyRandomEntries  = 32
	VerifyOldCheckpoints = 8
)

// verifyNow checks the journal against its latest signed checkpoint at a
// bounded cost (a few dozen reads, whatever the journal's size): the
// signature; the root recomputed from the stored tree at the checkpoint's
// size; consistency proofs from the first and the most recent earlier
// checkpoints; and inclusion proofs for the latest and for randomly
// chosen entries, each leaf rehashed from its stored bytes. Checking every
// entry is `vouch journal verify`'s job.
func (c *Console) verifyNow(ctx context.Context) Verification {
	start := time.Now()
	var v Verification
	add := func(what string, err error, detail string) bool {
		ch := Check{What: what, OK: err == nil, Detail: detail}
		if err != nil {
			ch.Detail = err.Error()
		}
		v.Checks = append(v.Checks, ch)
		return err == nil
	}
	defer func() {
		v.Took = time.Since(start)
	}()
	verifier, err := journal.NewVerifier(c.cfg.PublicKey)
	if err != nil {
		add("public key", err, "")
		return v
	}
	latest, err := c.cfg.Journal.LatestCheckpoint(ctx)
	if err != nil {
		add("latest checkpoint", err, "")
		return v
	}
	signed, err := journal.OpenCheckpoint(latest.Note, verifier)
	if !add("signature of the latest checkpoint", err, fmt.Sprintf("signed by %s: %d entries, root %s", journal.KeyID(verifier), latest.Size, latest.Root)) {
		return v
	}
	st, err := c.cfg.Journal.TreeState(ctx)
	if err == nil && st.Size < signed.Size {
		err = fmt.Errorf("the store holds %d entries, fewer than the checkpoint's %d: rolled back", st.Size, signed.Size)
	}
	add("the store holds every signed entry", err, fmt.Sprintf("%d entries stored, %d signed", st.Size, signed.Size))
	root, err := journal.RootAt(ctx, c.cfg.Journal, signed.Size)
	if err == nil && root != signed.Root {
		err = fmt.Errorf("the stored tree at size %d has root %s, the checkpoint signed %s", signed.Size, root, signed.Root)
	}
	add("stored tree matches the signed root", err, fmt.Sprintf("root at %d entries recomputed from the stored tree", signed.Size))

	olds, err := c.earlierCheckpoints(ctx, signed.Size)
	if err != nil {
		add("earlier checkpoints", err, "")
	}
	for _, old := range olds {
		add(fmt.Sprintf("checkpoint of %d entries (%s) is a prefix of the latest", old.Size, formatTime(old.Time)), c.consistent(ctx, verifier, old, signed), "signature and consistency proof")
	}
	for _, i := range sampleIndices(signed.Size) {
		add(fmt.Sprintf("entry %d is in the signed tree", i), c.included(ctx, i, signed), "leaf rehashed, inclusion proof verified")
	}
	v.OK = true
	for _, ch := range v.Checks {
		v.OK = v.OK && ch.OK
	}
	return v
}

// earlierCheckpoints returns the first checkpoint and the most recent ones
// before size, at most VerifyOldCheckpoints in all. Checkpoints are read
// by size, so the recent ones are looked for in a window before size that
// grows until it holds enough.
func (c *Console) earlierCheckpoints(ctx context.Context, size uint64) ([]journal.Checkpoint, error) {
	first, err := c.cfg.Journal.Checkpoints(ctx, 1, 1)
	if err != nil || len(first) == 0 || first[0].Size >= size {
		return nil, err
	}
	for back := uint64(64); ; back *= 8 {
		from := first[0].Size + 1
		if size > back && size-back > from {
			from = size - back
		}
		recent, err := c.cfg.Journal.Checkpoints(ctx, from, 1000)
		if err != nil {
			return nil, err
		}
		var before []journal.Checkpoint
		for _, cp := range recent {
			if cp.Size < size {
				before = append(before, cp)
			}
		}
		if len(before) >= VerifyOldCheckpoints-1 || from == first[0].Size+1 {
			if len(before) > VerifyOldCheckpoints-1 {
				before = before[len(before)-(VerifyOldCheckpoints-1):]
			}
			return append(first, before...), nil
		}
	}
}

func (c *Console) consistent(ctx context.Context, v note.Verifier, old, latest journal.Checkpoint) error {
	o, err := journal.OpenCheckpoint(old.Note, v)
	if err != nil {
		return err
	}
	p, err := journal.ConsistencyProof(ctx, c.cfg.Journal, o.Size, latest.Size)
	if err != nil {
		return err
	}
	return journal.VerifyConsistency(o.Size, latest.Size, p, o.Root, latest.Root)
}

func (c *Console) included(ctx context.Context, i uint64, cp journal.Checkpoint) error {
	leaves, err := c.cfg.Journal.Leaves(ctx, i, 1)
	if err != nil {
		return err
	}
	if len(leaves) == 0 || leaves[0].Index != i {
		return fmt.Errorf("entry %d is missing", i)
	}
	h := journal.LeafHash(leaves[0].Data)
	if h != leaves[0].StoredHash {
		return fmt.Errorf("entry %d does not hash to the leaf hash stored beside it: it was altered", i)
	}
	p, err := journal.InclusionProof(ctx, c.cfg.Journal, i, cp.Size)
	if err != nil {
		return err
	}
	if err := journal.VerifyInclusion(i, cp.Size, h, p, cp.Root); err != nil {
		return fmt.Errorf("entry %d: %w", i, err)
	}
	return nil
}

// sampleIndices picks the entries verify-now proves: the latest, and
// others at random.
func sampleIndices(size uint64) []uint64 {
	var out []uint64
	seen := map[uint64]bool{}
	for i := uint64(0); i < VerifyRecentEntries && i < size; i++ {
		out = append(out, size-1-i)
		seen[size-1-i] = true
	}
	for n := 0; n < VerifyRandomEntries && uint64(len(out)) < size; {
		i := rand.Uint64N(size)
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
			n++
		}
	}
	return out
}

type integrityData struct {
	Checkpoint *journal.Checkpoint
	TreeSize   uint64
	PublicKey  string
	Verify     *Verification
}

// integrity shows the latest signed checkpoint, verifies on request, and
// says how to verify offline.
func (c *Console) integrity(w http.ResponseWriter, r *http.Request) {
	d := integrityData{PublicKey: c.cfg.PublicKey}
	cp, err := c.cfg.Journal.LatestCheckpoint(r.Context())
	switch {
	case errors.Is(err, journal.ErrNotFound):
	case err != nil:
		c.fail(w, r, err)
		return
	default:
		d.Checkpoint = &cp
	}
	st, err := c.cfg.Journal.TreeState(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.TreeSize = st.Size
	if r.URL.Query().Get("verify") != "" {
		v := c.verifyNow(r.Context())
		d.Verify = &v
		c.log.Info("console verify-now", "ok", v.OK, "checks", len(v.Checks), "duration_ms", v.Took.Milliseconds(), "token", current(r.Context()).Name)
	}
	c.render(w, r, http.StatusOK, "journal", "Journal integrity", d)
}

type entryData struct {
	Entry      journal.Entry
	Checkpoint *journal.Checkpoint
	Proof      []journal.Hash
	Verified   error
	// Why explains an admission decision; WhyFailed says it could not.
	Why       *explanation
	WhyFailed string
}

// entry shows one journal entry as it is hashed, with its inclusion proof
// against the latest checkpoint.
func (c *Console) entry(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.ParseUint(r.PathValue("index"), 10, 63)
	if err != nil {
		c.renderError(w, r, http.StatusBadRequest, "A journal entry is named by its index, a whole number.")
		return
	}
	leaves, err := c.cfg.Journal.Leaves(r.Context(), i, 1)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(leaves) == 0 || leaves[0].Index != i {
		c.renderError(w, r, http.StatusNotFound, fmt.Sprintf("The journal has no entry %d.", i))
		return
	}
	e, err := journal.ParseLeaf(i, leaves[0].Data)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := entryData{Entry: e}
	title := fmt.Sprintf("Journal entry %d", i)
	if e.Kind == journal.KindAdmission {
		if d.Why, err = c.explain(r.Context(), e); err != nil {
			// The entry, its proof and its bytes are still worth showing.
			c.log.Error("console: explain a decision", "index", i, "error", err)
			d.WhyFailed = "This decision could not be explained; the server log has the details. The entry as recorded follows."
		}
		title = fmt.Sprintf("Admission decision %d", i)
	}
	if cp, err := c.cfg.Journal.LatestCheckpoint(r.Context()); err == nil && cp.Size > i {
		d.Checkpoint = &cp
		d.Proof, d.Verified = journal.InclusionProof(r.Context(), c.cfg.Journal, i, cp.Size)
		if d.Verified == nil {
			d.Verified = c.included(r.Context(), i, cp)
		}
	}
	c.render(w, r, http.StatusOK, "entry", title, d)
}
