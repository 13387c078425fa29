package journal

import (
	"context"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// StoreSource is what VerifyStore reads.
type StoreSource interface {
	TreeState(ctx context.Context) (TreeState, error)
	LeafReader
	NodeReader
	CheckpointStore
}

// StoreReport describes a verified store.
type StoreReport struct {
	Size        uint64
	Root        Hash
	Checkpoints int // stored checkpoints verified
	Nodes       int // stored tree nodes compared
}

// VerifyStore checks a journal in its store: every leaf against its stored
// hash, indices contiguous from 0, every stored tree node, every stored
// checkpoint (signature by v's key and root at its size), the tree state,
// and opts.Known. progress, when set, is called after each page.
//
// The store may be live: Vouch appends while it is checked. The check
// covers the tree as it was when it began. The latest checkpoint is read
// before the tree state, so that one signed meanwhile is not mistaken for
// a rollback, and an entry found past the tree is an insertion only if
// the tree state, read again, does not hold it: an append stores its
// entries and the tree state together.
func VerifyStore(ctx context.Context, src StoreSource, v note.Verifier, opts VerifyOptions, progress func(done, total uint64)) (StoreReport, error) {
	latest, latestErr := src.LatestCheckpoint(ctx)
	st, err := src.TreeState(ctx)
	if err != nil {
		return StoreReport{}, err
	}
	rep := StoreReport{Size: st.Size}
	if k := opts.Known; k != nil && k.Size > st.Size {
		return rep, verifyErr(-1, "the store holds %d entries, but the checkpoint you hold has %d: the journal was truncated or rolled back", st.Size, k.Size)
	}
	if latestErr == nil && latest.Size > st.Size {
		return rep, verifyErr(-1, "the store holds %d entries, but it keeps a checkpoint of %d: the journal was truncated or rolled back", st.Size, latest.Size)
	}
	cps := &checkpointPager{src: src, from: 1}
	rng := rangeFactory.NewEmptyRange(0)
	checkRoot := func(size uint64, want Hash, what string) error {
		root, err := rng.GetRootHash(nil)
		if err != nil {
			return err
		}
		var got Hash
		copy(got[:], root)
		if got != want {
			return verifyErr(int64(size)-1, "the entries up to here do not match %s of size %d: an entry at or before index %d was altered, removed, inserted or reordered", what, size, size-1)
		}
		return nil
	}
	for next := uint64(0); next < st.Size; {
		leaves, err := src.Leaves(ctx, next, int(min(ExportPage, st.Size-next)))
		if err != nil {
			return rep, err
		}
		if len(leaves) == 0 {
			return rep, verifyErr(int64(next), "missing: the tree state says %d entries", st.Size)
		}
		var nodes []Node
		visit := func(id compact.NodeID, hash []byte) {
			if id.Level > 0 {
				n := Node{Level: id.Level, Index: id.Index}
				copy(n.Hash[:], hash)
				nodes = append(nodes, n)
			}
		}
		for _, l := range leaves {
			if l.Index != next {
				return rep, verifyErr(int64(next), "missing: the store has entry %d next", l.Index)
			}
			h := LeafHash(l.Data)
			if h != l.StoredHash {
				return rep, verifyErr(int64(l.Index), "the leaf does not hash to the leaf hash stored beside it: it was altered")
			}
			if err := rng.Append(h[:], visit); err != nil {
				return rep, err
			}
			next++
			if k := opts.Known; k != nil && k.Size == next {
				if err := checkRoot(next, k.Root, "the checkpoint you hold"); err != nil {
					return rep, err
				}
			}
			cp, ok, err := cps.at(ctx, next)
			if err != nil {
				return rep, err
			}
			if ok {
				opened, err := OpenCheckpoint(cp.Note, v)
				if err != nil {
					return rep, verifyErr(-1, "stored checkpoint of size %d: %v", cp.Size, err)
				}
				if err := checkRoot(next, opened.Root, "the signed checkpoint"); err != nil {
					return rep, err
				}
				rep.Checkpoints++
			}
		}
		if err := compareNodes(ctx, src, nodes); err != nil {
			return rep, err
		}
		rep.Nodes += len(nodes)
		if progress != nil {
			progress(next, st.Size)
		}
	}
	if extra, err := src.Leaves(ctx, st.Size, 1); err != nil {
		return rep, err
	} else if len(extra) > 0 {
		now, err := src.TreeState(ctx)
		if err != nil {
			return rep, err
		}
		if extra[0].Index >= now.Size { // not appended since the check began
			return rep, verifyErr(int64(extra[0].Index), "stored beyond the tree size %d: inserted outside Vouch", now.Size)
		}
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return rep, err
	}
	if st.Size == 0 {
		empty := EmptyTree().Root
		root = empty[:]
	}
	copy(rep.Root[:], root)
	if rep.Root != st.Root || len(rng.Hashes()) != len(st.Range) {
		return rep, verifyErr(-1, "the stored tree state (root %s) does not match the entries (root %s)", st.Root, rep.Root)
	}
	for i, h := range rng.Hashes() {
		if Hash(h) != st.Range[i] {
			return rep, verifyErr(-1, "the stored tree state's compact range does not match the entries")
		}
	}
	return rep, nil
}

func compareNodes(ctx context.Context, r NodeReader, nodes []Node) error {
	if len(nodes) == 0 {
		return nil
	}
	ids := make([]compact.NodeID, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID()
	}
	stored, err := r.NodeHashes(ctx, ids)
	if err != nil {
		return verifyErr(-1, "stored tree nodes: %v", err)
	}
	for i, n := range nodes {
		if stored[i] != n.Hash {
			first, _ := n.ID().Coverage()
			return verifyErr(int64(first), "the stored tree node at level %d, index %d differs from the entries it covers: proofs served from it would be wrong", n.Level, n.Index)
		}
	}
	return nil
}
