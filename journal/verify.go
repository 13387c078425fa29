package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// VerifyError is a verification failure. Index is the first entry found
// bad, or -1 when the failure is not about one entry.
type VerifyError struct {
	Index  int64
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Index >= 0 {
		return fmt.Sprintf("entry %d: %s", e.Index, e.Reason)
	}
	return e.Reason
}

func verifyErr(index int64, format string, args ...any) error {
	return &VerifyError{Index: index, Reason: fmt.Sprintf(format, args...)}
}

// VerifyOptions tune verification.
type VerifyOptions struct {
	// Known is a checkpoint held from before (a published copy, an earlier
	// export): the journal must have grown from it, not been rewritten.
	Known *Checkpoint
	// Consistency, when set, fetches a consistency proof between two tree
	// sizes (from a Vouch server), for a Known checkpoint whose size the
	// verified data does not cover.
	Consistency func(size1, size2 uint64) ([]Hash, error)
	// Workers hash leaves in parallel; runtime.GOMAXPROCS(0) when 0.
	Workers int
}

// ExportReport describes a verified export.
type ExportReport struct {
	Origin   string
	TreeSize uint64
	Root     Hash
	Signed   time.Time // the checkpoint's signed time; zero if it has none
	From, To uint64
	Entries  uint64 // with their leaf
	Elided   uint64 // as a leaf hash only
	// ElidedRanges are the elided entries, as ranges [first, last]: what
	// the export does not show, whatever its header says it left out.
	ElidedRanges [][2]uint64
	// Kind and Environment are the filter the header names; the header is
	// not signed, so they only say what the exporter claims it selected.
	Kind        Kind
	Environment string
	Checkpoints int // interleaved checkpoints verified
}

// maxLine bounds one line of an export (an entry with a large payload).
const maxLine = 64 << 20

// VerifyExport checks an export against the checkpoint it carries, signed
// by v's key: the signature, that every entry from..to is present in order,
// the root at every interleaved checkpoint, and the root of the whole tree.
// It also checks opts.Known, if given. Leaves are hashed in parallel; the
// export is read once, as a stream.
func VerifyExport(r io.Reader, v note.Verifier, opts VerifyOptions) (ExportReport, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	first, err := readLine(br)
	if err != nil {
		return ExportReport{}, verifyErr(-1, "export has no header line: %v", err)
	}
	var h ExportHeader
	dec := json.NewDecoder(bytes.NewReader(first))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || h.Format != ExportFormat {
		return ExportReport{}, verifyErr(-1, "not a %s export (header: %v)", ExportFormat, err)
	}
	cp, err := OpenCheckpoint([]byte(h.Checkpoint), v)
	if err != nil {
		return ExportReport{}, verifyErr(-1, "%v", err)
	}
	if cp.Size != h.TreeSize || cp.Origin != h.Origin || h.From > h.To || h.To > cp.Size {
		return ExportReport{}, verifyErr(-1, "header (origin %q, size %d, range %d-%d) does not match its signed checkpoint (origin %q, size %d)",
			h.Origin, h.TreeSize, h.From, h.To, cp.Origin, cp.Size)
	}
	rep := ExportReport{Origin: cp.Origin, TreeSize: cp.Size, Root: cp.Root, Signed: cp.Time, From: h.From, To: h.To, Kind: h.Kind, Environment: h.Environment}

	left, err1 := parseHexHashes(h.Left)
	right, err2 := parseHexHashes(h.Right)
	if err1 != nil || err2 != nil {
		return rep, verifyErr(-1, "header: malformed left or right hashes")
	}
	rng, err := rangeFactory.NewRange(0, h.From, fromHashes(left))
	if err != nil {
		return rep, verifyErr(-1, "header: left range: %v", err)
	}
	rightRange, err := rangeFactory.NewRange(h.To, cp.Size, fromHashes(right))
	if err != nil {
		return rep, verifyErr(-1, "header: right range: %v", err)
	}

	// Roots to check on the way: interleaved checkpoints, and Known.
	var known *Checkpoint
	if k := opts.Known; k != nil {
		switch {
		case k.Origin != cp.Origin:
			return rep, verifyErr(-1, "the checkpoint you hold is for %q, the export for %q", k.Origin, cp.Origin)
		case k.Size > cp.Size:
			return rep, verifyErr(-1, "the export's checkpoint (size %d) is older than the one you hold (size %d): the journal was rolled back, or the export is stale", cp.Size, k.Size)
		case k.Size >= h.From && k.Size <= h.To && k.Size > 0:
			known = k
		case k.Size == cp.Size:
			if k.Root != cp.Root {
				return rep, verifyErr(-1, "the checkpoint you hold and the export's both have size %d but different roots: the journal was rewritten", k.Size)
			}
		case opts.Consistency != nil:
			p, err := opts.Consistency(k.Size, cp.Size)
			if err != nil {
				return rep, verifyErr(-1, "consistency proof %d -> %d: %v", k.Size, cp.Size, err)
			}
			if err := VerifyConsistency(k.Size, cp.Size, p, k.Root, cp.Root); err != nil {
				return rep, verifyErr(-1, "the journal is not consistent with the checkpoint you hold (size %d): it was rewritten (%v)", k.Size, err)
			}
		default:
			return rep, verifyErr(-1, "the checkpoint you hold (size %d) is outside the exported range %d-%d; export from 0, or verify with --server to fetch a consistency proof", k.Size, h.From, h.To)
		}
	}

	checkRoot := func(size uint64, want Hash, what string) error {
		root, err := rng.GetRootHash(nil)
		if err != nil {
			return verifyErr(-1, "%v", err)
		}
		var got Hash
		copy(got[:], root)
		if got != want {
			return verifyErr(int64(size)-1, "the entries up to here do not match %s of size %d: an entry at or before index %d was altered, removed, inserted or reordered", what, size, size-1)
		}
		return nil
	}

	items := make(chan []lineItem, 4)
	errc := make(chan error, 1)
	go parseLines(br, v, opts.Workers, items, errc)

	next := h.From
	ended := false
	for batch := range items {
		for _, it := range batch {
			if it.err != nil {
				drain(items)
				return rep, it.err
			}
			if ended {
				drain(items)
				return rep, verifyErr(-1, "data after the end line")
			}
			switch it.kind {
			case itemLeaf, itemElided:
				if it.index != next {
					drain(items)
					return rep, verifyErr(int64(next), "expected entry %d here, found entry %d: entries were removed, inserted or reordered", next, it.index)
				}
				if next >= h.To {
					drain(items)
					return rep, verifyErr(int64(next), "entry beyond the exported range %d-%d", h.From, h.To)
				}
				if err := rng.Append(it.hash[:], nil); err != nil {
					drain(items)
					return rep, verifyErr(int64(next), "%v", err)
				}
				next++
				if it.kind == itemLeaf {
					rep.Entries++
				} else {
					rep.Elided++
					if r := len(rep.ElidedRanges) - 1; r >= 0 && rep.ElidedRanges[r][1] == it.index-1 {
						rep.ElidedRanges[r][1] = it.index
					} else {
						rep.ElidedRanges = append(rep.ElidedRanges, [2]uint64{it.index, it.index})
					}
				}
				if known != nil && next == known.Size {
					if err := checkRoot(next, known.Root, "the checkpoint you hold"); err != nil {
						drain(items)
						return rep, err
					}
				}
			case itemCheckpoint:
				if it.cp.Origin != cp.Origin || it.cp.Size != next {
					drain(items)
					return rep, verifyErr(int64(next)-1, "a checkpoint of size %d (origin %q) stands after entry %d", it.cp.Size, it.cp.Origin, next-1)
				}
				if err := checkRoot(next, it.cp.Root, "the signed checkpoint"); err != nil {
					drain(items)
					return rep, err
				}
				rep.Checkpoints++
			case itemEnd:
				if it.index != h.To-h.From {
					drain(items)
					return rep, verifyErr(-1, "the end line counts %d entries, the header's range %d", it.index, h.To-h.From)
				}
				ended = true
			}
		}
	}
	if err := <-errc; err != nil {
		return rep, err
	}
	if next != h.To {
		return rep, verifyErr(int64(next), "the export ends at entry %d, before the end of its range (%d): it was truncated", next, h.To)
	}
	if !ended {
		return rep, verifyErr(-1, "the export has no end line: it was truncated")
	}
	if err := rng.AppendRange(rightRange, nil); err != nil {
		return rep, verifyErr(-1, "%v", err)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return rep, verifyErr(-1, "%v", err)
	}
	if cp.Size == 0 {
		empty := EmptyTree().Root
		root = empty[:]
	}
	var got Hash
	copy(got[:], root)
	if got != cp.Root {
		return rep, verifyErr(-1, "the recomputed root %s differs from the signed checkpoint's %s: entries were altered, removed, inserted or reordered", got, cp.Root)
	}
	return rep, nil
}

func drain(ch <-chan []lineItem) {
	for range ch {
	}
}

type itemKind int

const (
	itemLeaf itemKind = iota
	itemElided
	itemCheckpoint
	itemEnd
)

type lineItem struct {
	kind  itemKind
	index uint64 // entry index; entry count for itemEnd
	hash  Hash
	cp    Checkpoint
	err   error
}

type lineChunk struct {
	seq   int
	lines [][]byte
	first int64 // line number of the first line, for errors
}

// parseLines reads lines, parses and hashes them on several workers, and
// sends the results in order. It closes out when done; a read error goes
// to errc (nil otherwise).
func parseLines(br *bufio.Reader, v note.Verifier, workers int, out chan<- []lineItem, errc chan<- error) {
	defer close(out)
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	chunks := make(chan lineChunk, workers*2)
	results := make(chan struct {
		seq   int
		items []lineItem
	}, workers*2)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range chunks {
				items := make([]lineItem, len(c.lines))
				for i, l := range c.lines {
					items[i] = parseLine(l, v)
				}
				results <- struct {
					seq   int
					items []lineItem
				}{c.seq, items}
			}
		}()
	}
	var readErr error
	go func() {
		defer close(chunks)
		seq := 0
		const chunkLines, chunkBytes = 512, 1 << 20
		var lines [][]byte
		size := 0
		for {
			l, err := readLine(br)
			if err == io.EOF {
				break
			}
			if err != nil {
				readErr = err
				break
			}
			lines = append(lines, l)
			size += len(l)
			if len(lines) >= chunkLines || size >= chunkBytes {
				chunks <- lineChunk{seq: seq, lines: lines}
				seq++
				lines, size = nil, 0
			}
		}
		if len(lines) > 0 {
			chunks <- lineChunk{seq: seq, lines: lines}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	pending := map[int][]lineItem{}
	next := 0
	for r := range results {
		pending[r.seq] = r.items
		for {
			items, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			out <- items
			next++
		}
	}
	if readErr != nil {
		errc <- verifyErr(-1, "reading the export: %v", readErr)
		return
	}
	errc <- nil
}

// readLine returns the next line without its line ending, as a fresh slice.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("a line is longer than %d bytes", maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && len(line) > 0 {
			return trimEOL(line), nil
		}
		if err != nil {
			return nil, err
		}
		return trimEOL(line), nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

var (
	prefixIndex    = []byte(`{"index":`)
	infixLeaf      = []byte(`,"leaf":`)
	infixLeafHash  = []byte(`,"leaf_hash":"`)
	prefixCheckpnt = []byte(`{"checkpoint":`)
	prefixEnd      = []byte(`{"end":true,"entries":`)
)

// parseLine parses one line after the header. Entry lines have a fixed
// layout, so that the leaf's exact bytes can be hashed without decoding.
func parseLine(l []byte, v note.Verifier) lineItem {
	switch {
	case bytes.HasPrefix(l, prefixIndex):
		rest := l[len(prefixIndex):]
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		index, err := strconv.ParseUint(string(rest[:i]), 10, 64)
		if err != nil {
			return lineItem{err: verifyErr(-1, "malformed entry line: %.80q", l)}
		}
		rest = rest[i:]
		switch {
		case bytes.HasPrefix(rest, infixLeaf) && bytes.HasSuffix(rest, []byte("}")):
			leaf := rest[len(infixLeaf) : len(rest)-1]
			return lineItem{kind: itemLeaf, index: index, hash: LeafHash(leaf)}
		case bytes.HasPrefix(rest, infixLeafHash) && bytes.HasSuffix(rest, []byte(`"}`)):
			h, ok := decodeHex(rest[len(infixLeafHash) : len(rest)-2])
			if !ok {
				return lineItem{err: verifyErr(int64(index), "malformed leaf hash")}
			}
			return lineItem{kind: itemElided, index: index, hash: h}
		}
		return lineItem{err: verifyErr(int64(index), "malformed entry line")}
	case bytes.HasPrefix(l, prefixCheckpnt):
		var c struct{ Checkpoint string }
		if err := json.Unmarshal(l, &c); err != nil {
			return lineItem{err: verifyErr(-1, "malformed checkpoint line: %v", err)}
		}
		cp, err := OpenCheckpoint([]byte(c.Checkpoint), v)
		if err != nil {
			return lineItem{err: verifyErr(-1, "interleaved checkpoint: %v", err)}
		}
		return lineItem{kind: itemCheckpoint, cp: cp}
	case bytes.HasPrefix(l, prefixEnd):
		n, err := strconv.ParseUint(string(bytes.TrimSuffix(l[len(prefixEnd):], []byte("}"))), 10, 64)
		if err != nil {
			return lineItem{err: verifyErr(-1, "malformed end line")}
		}
		return lineItem{kind: itemEnd, index: n}
	}
	return lineItem{err: verifyErr(-1, "unrecognised line: %.80q", l)}
}
