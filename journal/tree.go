package journal

import (
	"crypto/sha256"
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// TreeState is the head of the journal's Merkle tree: its size, its root hash
// and the compact range (the roots of the perfect subtrees covering
// [0, Size)) from which the next root is computed without reading old leaves.
type TreeState struct {
	Size  uint64
	Root  Hash
	Range []Hash
}

// EmptyTree is the state of a journal without entries; its root is the
// RFC 6962 hash of the empty string.
func EmptyTree() TreeState {
	var root Hash
	copy(root[:], rfc6962.DefaultHasher.EmptyRoot())
	return TreeState{Root: root}
}

// Node is a stored node of the tree: the root of a perfect subtree of
// 2^Level leaves, the Index-th at its level. Leaves are level 0.
type Node struct {
	Level uint
	Index uint64
	Hash  Hash
}

// ID returns the node's position.
func (n Node) ID() compact.NodeID { return compact.NewNodeID(n.Level, n.Index) }

// Extend returns the state after appending leaves with the given hashes.
func (s TreeState) Extend(leaves []Hash) (TreeState, error) {
	next, _, err := s.extend(leaves)
	return next, err
}

// extend is Extend that also returns the perfect-subtree nodes (level >= 1)
// the new leaves complete: the nodes proofs are built from.
func (s TreeState) extend(leaves []Hash) (TreeState, []Node, error) {
	var nodes []Node
	visit := func(id compact.NodeID, hash []byte) {
		if id.Level > 0 {
			n := Node{Level: id.Level, Index: id.Index}
			copy(n.Hash[:], hash)
			nodes = append(nodes, n)
		}
	}
	hashes := make([][]byte, len(s.Range))
	for i := range s.Range {
		hashes[i] = s.Range[i][:]
	}
	r, err := rangeFactory.NewRange(0, s.Size, hashes)
	if err != nil {
		return TreeState{}, nil, fmt.Errorf("tree state: %w", err)
	}
	for i := range leaves {
		if err := r.Append(leaves[i][:], visit); err != nil {
			return TreeState{}, nil, fmt.Errorf("tree state: %w", err)
		}
	}
	next := TreeState{Size: r.End()}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return TreeState{}, nil, fmt.Errorf("tree state: %w", err)
	}
	if root == nil {
		return EmptyTree(), nil, nil
	}
	copy(next.Root[:], root)
	for _, h := range r.Hashes() {
		var x Hash
		copy(x[:], h)
		next.Range = append(next.Range, x)
	}
	return next, nodes, nil
}

// EncodeRange packs range hashes into one byte string for storage.
func EncodeRange(r []Hash) []byte {
	out := make([]byte, 0, len(r)*sha256.Size)
	for _, h := range r {
		out = append(out, h[:]...)
	}
	return out
}

// DecodeRange unpacks hashes packed by EncodeRange.
func DecodeRange(b []byte) ([]Hash, error) {
	if len(b)%sha256.Size != 0 {
		return nil, fmt.Errorf("tree range: %d bytes is not a multiple of %d", len(b), sha256.Size)
	}
	r := make([]Hash, len(b)/sha256.Size)
	for i := range r {
		copy(r[i][:], b[i*sha256.Size:])
	}
	return r, nil
}

// DecodeTreeState rebuilds a tree state from its stored columns.
func DecodeTreeState(size int64, root, rng []byte) (TreeState, error) {
	s := TreeState{Size: uint64(size)}
	if len(root) != len(s.Root) {
		return s, fmt.Errorf("tree state: root has %d bytes", len(root))
	}
	copy(s.Root[:], root)
	var err error
	if s.Range, err = DecodeRange(rng); err != nil {
		return s, err
	}
	if len(s.Range) != bits.OnesCount64(s.Size) {
		return s, fmt.Errorf("tree state: %d range hashes for size %d", len(s.Range), s.Size)
	}
	return s, nil
}
