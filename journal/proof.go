package journal

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// InclusionProof returns the RFC 6962 inclusion proof of the leaf at index
// in the tree of the given size (index < size <= the stored tree size).
func InclusionProof(ctx context.Context, r NodeReader, index, size uint64) ([]Hash, error) {
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof: %w", err)
	}
	return fetchProof(ctx, r, nodes)
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of sizes size1 <= size2 (<= the stored tree size).
func ConsistencyProof(ctx context.Context, r NodeReader, size1, size2 uint64) ([]Hash, error) {
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	return fetchProof(ctx, r, nodes)
}

func fetchProof(ctx context.Context, r NodeReader, nodes proof.Nodes) ([]Hash, error) {
	hashes, err := r.NodeHashes(ctx, nodes.IDs)
	if err != nil {
		return nil, fmt.Errorf("proof nodes: %w", err)
	}
	raw := make([][]byte, len(hashes))
	for i := range hashes {
		raw[i] = hashes[i][:]
	}
	raw, err = nodes.Rehash(raw, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, err
	}
	return toHashes(raw), nil
}

// RootAt returns the root hash of the tree's first size leaves, from the
// stored perfect-subtree nodes covering them.
func RootAt(ctx context.Context, r NodeReader, size uint64) (Hash, error) {
	if size == 0 {
		return EmptyTree().Root, nil
	}
	hashes, err := r.NodeHashes(ctx, compact.RangeNodes(0, size, nil))
	if err != nil {
		return Hash{}, fmt.Errorf("root at %d: %w", size, err)
	}
	raw := make([][]byte, len(hashes))
	for i := range hashes {
		raw[i] = hashes[i][:]
	}
	rng, err := rangeFactory.NewRange(0, size, raw)
	if err != nil {
		return Hash{}, err
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return Hash{}, err
	}
	var h Hash
	copy(h[:], root)
	return h, nil
}

// VerifyInclusion checks an inclusion proof against a root.
func VerifyInclusion(index, size uint64, leaf Hash, p []Hash, root Hash) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], fromHashes(p), root[:])
}

// VerifyConsistency checks a consistency proof between two roots.
func VerifyConsistency(size1, size2 uint64, p []Hash, root1, root2 Hash) error {
	return proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, fromHashes(p), root1[:], root2[:])
}

func toHashes(raw [][]byte) []Hash {
	out := make([]Hash, len(raw))
	for i := range raw {
		copy(out[i][:], raw[i])
	}
	return out
}

func fromHashes(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// OrderNodes returns the hashes of ids from found, in the order of ids;
// store implementations of NodeHashes use it. A missing node is ErrNotFound.
func OrderNodes(ids []compact.NodeID, found map[compact.NodeID]Hash) ([]Hash, error) {
	out := make([]Hash, len(ids))
	for i, id := range ids {
		h, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("tree node %d/%d: %w", id.Level, id.Index, ErrNotFound)
		}
		out[i] = h
	}
	return out, nil
}
