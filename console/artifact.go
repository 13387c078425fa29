package console

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

// environmentRun is where an artifact was admitted and ran in one
// environment, with the periods it ran.
type environmentRun struct {
	drift.Sighting
	Periods  []drift.Period
	Complete bool
}

type artifactData struct {
	Digest       string
	Evidence     evidence.Evidence
	Environments []environmentRun
	Decisions    drift.DecisionPage
	NextURL      string
	Before       uint64
}

// ArtifactDecisions is how many decisions about an artifact its page
// lists at a time.
const ArtifactDecisions = 50

// artifact shows everything about one digest: provenance, attestations,
// approvals, where and when it ran, and every decision about it.
func (c *Console) artifact(w http.ResponseWriter, r *http.Request) {
	dg, ok := evidence.ParseDigest(r.PathValue("digest"))
	if !ok {
		c.renderError(w, r, http.StatusBadRequest, "An artifact is named by its digest: sha256: and 64 hex characters.")
		return
	}
	var before uint64
	if b := r.URL.Query().Get("before"); b != "" {
		before, _ = strconv.ParseUint(b, 10, 63)
	}
	d, err := c.artifactFacts(r.Context(), dg, before)
	if errors.Is(err, errNotFound) {
		c.renderError(w, r, http.StatusNotFound, "Vouch knows nothing about "+dg+": no build, attestation, approval, decision or snapshot names it.")
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if d.Decisions.Next > 0 {
		d.NextURL = fmt.Sprintf("/artifacts/%s?before=%d#decisions", dg, d.Decisions.Next)
	}
	title := dg
	if d.Evidence.Artifact != nil {
		title = d.Evidence.Artifact.Name
	}
	c.render(w, r, http.StatusOK, "artifact", title, d)
}

func (c *Console) artifactFacts(ctx context.Context, dg string, before uint64) (artifactData, error) {
	d := artifactData{Digest: dg, Before: before}
	ev, err := c.cfg.Evidence.Evidence(ctx, dg)
	switch {
	case errors.Is(err, evidence.ErrNotFound):
		ev = evidence.Evidence{Digest: dg}
	case err != nil:
		return d, err
	}
	d.Evidence = ev
	sightings, err := c.cfg.Drift.Sightings(ctx, []string{dg})
	if err != nil {
		return d, err
	}
	for _, si := range sightings[dg] {
		run := environmentRun{Sighting: si, Complete: true}
		if si.FirstRan != nil {
			if run.Periods, run.Complete, err = c.cfg.Drift.Periods(ctx, si.Environment, dg, si.FirstRan.Time, 0); err != nil {
				return d, err
			}
		}
		d.Environments = append(d.Environments, run)
	}
	if d.Decisions, err = c.cfg.Decisions.Decisions(ctx, drift.DecisionQuery{Digest: dg, Before: before, Limit: ArtifactDecisions}); err != nil {
		return d, err
	}
	if ev.Empty() && len(d.Environments) == 0 && len(d.Decisions.Decisions) == 0 && before == 0 {
		return d, errNotFound
	}
	return d, nil
}

// PackageDecisions is the most decisions an audit package carries (the
// latest).
const PackageDecisions = 1000

// auditPackage writes a zip of everything about an artifact that an
// auditor keeps as evidence, verifiable offline: its evidence records and
// the decisions about it as journal entries with inclusion proofs, the
// signed checkpoint they prove against, the public key, the documents
// behind its attestations, and a README.
func (c *Console) auditPackage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	dg, ok := evidence.ParseDigest(r.PathValue("digest"))
	if !ok {
		c.renderError(w, r, http.StatusBadRequest, "An artifact is named by its digest: sha256: and 64 hex characters.")
		return
	}
	facts, err := c.artifactFacts(ctx, dg, 0)
	if errors.Is(err, errNotFound) {
		c.renderError(w, r, http.StatusNotFound, "Vouch knows nothing about "+dg+".")
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cp, err := c.cfg.Journal.LatestCheckpoint(ctx)
	if errors.Is(err, journal.ErrNotFound) {
		c.renderError(w, r, http.StatusConflict, "The journal has no signed checkpoint yet; try again in a few seconds.")
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var decisions []drift.Decision
	for before := uint64(0); len(decisions) < PackageDecisions; {
		page, err := c.cfg.Decisions.Decisions(ctx, drift.DecisionQuery{Digest: dg, Before: before, Limit: min(drift.MaxDecisionLimit, PackageDecisions-len(decisions))})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		decisions = append(decisions, page.Decisions...)
		if page.Next == 0 {
			break
		}
		before = page.Next
	}
	// Only what the checkpoint proves: a record newer than it waits for
	// the next package.
	facts.Evidence = provenBy(facts.Evidence, cp.Size)
	decisions = slices.DeleteFunc(decisions, func(d drift.Decision) bool { return d.Index >= cp.Size })
	indices := evidenceIndices(facts.Evidence)
	for _, d := range decisions {
		indices = append(indices, d.Index)
	}
	sort.Slice(indices, func(i, j int) bool { return indices[i] < indices[j] })
	entries, err := c.packageEntries(ctx, indices, cp)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	name := packageName(dg)
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.zip"`)
	zw := zip.NewWriter(w)
	now := c.cfg.Now().UTC()
	put := func(file string, b []byte) error {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name + "/" + file, Method: zip.Deflate, Modified: now})
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		return err
	}
	evJSON, _ := json.MarshalIndent(struct {
		evidence.Evidence
		Environments []environmentRun `json:"environments"`
		Decisions    []drift.Decision `json:"decisions"`
	}{facts.Evidence, facts.Environments, decisions}, "", "  ")
	// The leaves must stay byte for byte as hashed: no HTML escaping.
	var lines bytes.Buffer
	enc := json.NewEncoder(&lines)
	enc.SetEscapeHTML(false)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	files := []struct {
		name string
		body []byte
	}{
		{"README.md", []byte(packageReadme(dg, cp, len(entries), len(decisions), now))},
		{"evidence.json", append(evJSON, '\n')},
		{"entries.jsonl", lines.Bytes()},
		{"checkpoint", cp.Note},
		{"public-key.txt", []byte(c.cfg.PublicKey + "\n")},
	}
	for _, f := range files {
		if err := put(f.name, f.body); err != nil {
			c.log.Error("console: audit package", "digest", dg, "error", err)
			return
		}
	}
	for _, a := range facts.Evidence.Attestations {
		if a.Blob == "" || c.cfg.Blobs == nil {
			continue
		}
		b, err := c.cfg.Blobs.Blob(ctx, a.Blob)
		if err != nil {
			c.log.Error("console: audit package: blob", "blob", a.Blob, "error", err)
			continue
		}
		if err := put("blobs/"+strings.TrimPrefix(b.Digest, "sha256:"), b.Content); err != nil {
			return
		}
	}
	if err := zw.Close(); err != nil {
		c.log.Error("console: audit package", "digest", dg, "error", err)
	}
	c.log.Info("console audit package", "digest", dg, "entries", len(entries), "token", current(ctx).Name)
}

// auditPackageByDigest sends the downloads page's form to the artifact's
// package.
func (c *Console) auditPackageByDigest(w http.ResponseWriter, r *http.Request) {
	dg, ok := evidence.ParseDigest(strings.TrimSpace(r.URL.Query().Get("digest")))
	if !ok {
		c.renderError(w, r, http.StatusBadRequest, "An artifact is named by its digest: sha256: and 64 hex characters.")
		return
	}
	http.Redirect(w, r, "/artifacts/"+url.PathEscape(dg)+"/audit-package", http.StatusSeeOther)
}

// evidenceIndices are the journal indices of an artifact's evidence
// records (a record's id is its journal index).
// provenBy keeps the records of ev that a checkpoint of size holds.
func provenBy(ev evidence.Evidence, size uint64) evidence.Evidence {
	if ev.Artifact != nil && ev.Artifact.ID >= size {
		ev.Artifact = nil
	}
	ev.Attestations = slices.DeleteFunc(slices.Clone(ev.Attestations), func(a evidence.Attestation) bool { return a.ID >= size })
	ev.Approvals = slices.DeleteFunc(slices.Clone(ev.Approvals), func(a evidence.Approval) bool { return a.ID >= size })
	return ev
}

func evidenceIndices(ev evidence.Evidence) []uint64 {
	var out []uint64
	if ev.Artifact != nil {
		out = append(out, ev.Artifact.ID)
	}
	for _, a := range ev.Attestations {
		out = append(out, a.ID)
	}
	for _, a := range ev.Approvals {
		out = append(out, a.ID)
	}
	return out
}

func (c *Console) packageEntries(ctx context.Context, indices []uint64, cp journal.Checkpoint) ([]packageEntry, error) {
	out := make([]packageEntry, 0, len(indices))
	for _, i := range indices {
		leaves, err := c.cfg.Journal.Leaves(ctx, i, 1)
		if err != nil {
			return nil, err
		}
		if len(leaves) == 0 || leaves[0].Index != i {
			return nil, fmt.Errorf("journal entry %d is missing", i)
		}
		e := packageEntry{Index: i, Kind: leaves[0].Kind, Leaf: leaves[0].Data, LeafHash: journal.LeafHash(leaves[0].Data)}
		if i < cp.Size {
			if e.Proof, err = journal.InclusionProof(ctx, c.cfg.Journal, i, cp.Size); err != nil {
				return nil, err
			}
			if e.Proof == nil {
				e.Proof = []journal.Hash{}
			}
			e.TreeSize = cp.Size
		}
		out = append(out, e)
	}
	return out, nil
}

func packageReadme(dg string, cp journal.Checkpoint, entries, decisions int, at time.Time) string {
	return fmt.Sprintf(`# Vouch audit package: %s

Made %s by the Vouch console. It holds what Vouch recorded about the
artifact with this digest up to the journal's checkpoint of %d entries, in
a form you can verify offline (what was recorded after it is in the next
package):

- evidence.json — the provenance, attestations (with payloads), approvals,
  where the artifact was admitted and ran, and the %d latest admission
  decisions about it (at most %d), as the console shows them;
- entries.jsonl — the journal entries behind all of that (%d): one JSON
  object per line with the entry's index, its exact leaf bytes ("leaf",
  RFC 8785 canonical JSON), its leaf hash SHA-256(0x00 || leaf), and its
  RFC 6962 inclusion proof in the tree of "tree_size" entries;
- checkpoint — the journal's signed tree head of %d entries (C2SP
  tlog-checkpoint, Ed25519), which every proof is against;
- public-key.txt — the key the console was given; compare it with the key
  you obtained from the operator through a channel you trust;
- blobs/ — the documents behind the attestations (test reports, scans,
  SBOMs), each named by its sha256, which the attestation entries record.

## Verify

With the vouch CLI, with the public key you trust (not only the one in
this package):

    unzip %s.zip
    vouch journal verify-package --public-key "$(cat trusted.pub)" %s/

It checks the checkpoint's signature, every leaf hash, every inclusion
proof against the signed root, the sha256 of every blob, and that every
provenance, attestation, approval and decision in evidence.json is what
its journal entry records. The entries are the proof; evidence.json is
the same facts, easier to read (where the artifact ran comes from drift
snapshots, not in this package), and that every entry and record concerns
this digest. It proves that what the package shows was recorded; it cannot
prove that nothing was left out: for that, verify a complete journal
export (`+"`vouch journal export`"+`, `+"`vouch journal verify`"+`).

To check that this checkpoint is part of the journal you audit (not a
different history), compare it with a checkpoint you kept or the operator
published: `+"`vouch journal verify --checkpoint`"+` with an export, or
GET /api/v1/journal/proof/consistency.

Without the CLI: each line's leaf hash is SHA-256 of the byte 0x00 followed
by the leaf; the inclusion proof combines it with each hash in turn as
SHA-256(0x01 || left || right) (RFC 6962, section 2.1.1) up to the root in
the checkpoint's third line (base64).
`, dg, formatTime(at), cp.Size, decisions, PackageDecisions, entries, cp.Size, packageName(dg), packageName(dg))
}

func packageName(dg string) string { return "vouch-audit-" + strings.TrimPrefix(dg, "sha256:")[:12] }
