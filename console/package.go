package console

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/vouch-dev/vouch/drift"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

// packageEntry is one journal entry of an audit package, with its proof.
type packageEntry struct {
	Index    uint64          `json:"index"`
	Kind     journal.Kind    `json:"kind"`
	Leaf     json.RawMessage `json:"leaf"` // the exact bytes hashed (canonical JSON)
	LeafHash journal.Hash    `json:"leaf_hash"`
	// Proof is the RFC 6962 inclusion proof in the tree of TreeSize
	// entries, the checkpoint's; absent for entries newer than it.
	TreeSize uint64         `json:"tree_size,omitempty"`
	Proof    []journal.Hash `json:"inclusion_proof"`
}

// PackageReport is what VerifyPackage proved.
type PackageReport struct {
	Digest     string // the artifact every entry and record concerns
	Checkpoint journal.Checkpoint
	Proven     int // entries proven in the signed tree
	Blobs      int // documents whose sha256 matched
}

// ErrPackage is wrapped by every reason an audit package fails to verify.
var ErrPackage = errors.New("audit package does not verify")

// VerifyPackage checks an audit package (the directory inside the zip the
// console gives) offline: the checkpoint's signature by v; every entry's
// leaf hash recomputed from its leaf bytes, and its inclusion proof
// against the signed root; and every document named by an attestation
// entry present with that sha256; that every entry and every record of
// evidence.json concerns the artifact evidence.json names; and that every
// record of evidence.json — provenance, attestations, approvals,
// decisions — is its entry's, as the entry's leaf says. An entry the
// checkpoint does not cover fails: nothing proves it. evidence.json's
// summary of where the artifact ran comes from snapshots, which the
// package does not carry; and no package can prove that nothing about the
// artifact was left out of it.
func VerifyPackage(fsys fs.FS, v note.Verifier) (PackageReport, error) {
	var rep PackageReport
	fail := func(format string, a ...any) (PackageReport, error) {
		return rep, fmt.Errorf("%w: %s", ErrPackage, fmt.Sprintf(format, a...))
	}
	raw, err := fs.ReadFile(fsys, "checkpoint")
	if err != nil {
		return rep, err
	}
	cp, err := journal.OpenCheckpoint(raw, v)
	if err != nil {
		return fail("checkpoint: %v", err)
	}
	rep.Checkpoint = cp
	ev, err := readEvidenceFile(fsys)
	if err != nil {
		return fail("%v", err)
	}
	if _, ok := evidence.ParseDigest(ev.Digest); !ok {
		return fail("evidence.json names no artifact digest (%q)", ev.Digest)
	}
	rep.Digest = ev.Digest
	lines, err := fs.ReadFile(fsys, "entries.jsonl")
	if err != nil {
		return rep, err
	}
	byIndex := map[uint64]journal.Entry{}
	sc := bufio.NewScanner(bytes.NewReader(lines))
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		var e packageEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fail("entries.jsonl line %d: %v", n, err)
		}
		if journal.LeafHash(e.Leaf) != e.LeafHash {
			return fail("entry %d: its leaf does not hash to its leaf hash: it was altered", e.Index)
		}
		parsed, err := journal.ParseLeaf(e.Index, e.Leaf)
		if err != nil {
			return fail("entry %d: %v", e.Index, err)
		}
		switch {
		case e.Index >= cp.Size:
			return fail("entry %d is past the checkpoint of %d entries: nothing proves it", e.Index, cp.Size)
		case e.TreeSize != cp.Size:
			return fail("entry %d: its proof is for a tree of %d entries, the checkpoint has %d", e.Index, e.TreeSize, cp.Size)
		default:
			if err := journal.VerifyInclusion(e.Index, cp.Size, e.LeafHash, e.Proof, cp.Root); err != nil {
				return fail("entry %d is not in the signed tree: %v", e.Index, err)
			}
			rep.Proven++
		}
		if !concerns(parsed, ev.Digest) {
			return fail("entry %d (%s) is not about %s", e.Index, parsed.Kind, ev.Digest)
		}
		byIndex[e.Index] = parsed
		if parsed.Kind != "attestation" {
			continue
		}
		var att struct {
			Blob string `json:"blob"`
		}
		if json.Unmarshal(parsed.Body, &att); att.Blob == "" {
			continue
		}
		hexDigest, ok := strings.CutPrefix(att.Blob, "sha256:")
		if !ok {
			return fail("entry %d names the document %q, not a sha256 digest", e.Index, att.Blob)
		}
		b, err := fs.ReadFile(fsys, path.Join("blobs", hexDigest))
		if err != nil {
			return fail("entry %d names the document %s, which the package lacks", e.Index, att.Blob)
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hexDigest {
			return fail("the document blobs/%s does not have that sha256: it was altered", hexDigest)
		}
		rep.Blobs++
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	if err := checkEvidenceFile(ev, byIndex); err != nil {
		return fail("%v", err)
	}
	return rep, nil
}

// evidenceFile is what VerifyPackage reads of evidence.json.
type evidenceFile struct {
	evidence.Evidence
	Decisions []drift.Decision `json:"decisions"`
}

func readEvidenceFile(fsys fs.FS) (evidenceFile, error) {
	var file evidenceFile
	raw, err := fs.ReadFile(fsys, "evidence.json")
	if err == nil {
		err = json.Unmarshal(raw, &file)
	}
	if err != nil {
		return file, fmt.Errorf("evidence.json: %v", err)
	}
	return file, nil
}

// concerns reports whether a journal entry is about the artifact dg: an
// evidence record for it, or an admission decision whose images include it.
func concerns(e journal.Entry, dg string) bool {
	if d, ok := drift.ParseDecision(e); ok {
		return slices.Contains(d.Digests, dg)
	}
	return evidence.EntryDigest(e) == dg
}

// checkEvidenceFile checks that each record of evidence.json is the one
// its entry (by index) holds.
func checkEvidenceFile(file evidenceFile, entries map[uint64]journal.Entry) error {
	same := func(what string, id uint64, matches func(journal.Entry) bool) error {
		e, ok := entries[id]
		if !ok {
			return fmt.Errorf("evidence.json: the %s names entry %d, which the package lacks", what, id)
		}
		if !matches(e) {
			return fmt.Errorf("evidence.json: the %s with id %d is not what journal entry %d records: it was altered", what, id, id)
		}
		return nil
	}
	record := func(rec any) func(journal.Entry) bool {
		return func(e journal.Entry) bool { return evidence.SameRecord(rec, e, true) }
	}
	if a := file.Artifact; a != nil {
		if err := same("artifact", a.ID, record(*a)); err != nil {
			return err
		}
	}
	for _, a := range file.Attestations {
		if err := same("attestation", a.ID, record(a)); err != nil {
			return err
		}
	}
	for _, a := range file.Approvals {
		if err := same("approval", a.ID, record(a)); err != nil {
			return err
		}
	}
	for _, d := range file.Decisions {
		if err := same("decision", d.Index, func(e journal.Entry) bool { return drift.SameDecision(d, e) }); err != nil {
			return err
		}
	}
	return nil
}
