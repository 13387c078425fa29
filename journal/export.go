package journal

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/transparency-dev/merkle/compact"
)

// ExportFormat names the JSONL export format this package writes.
const ExportFormat = "vouch-journal-export/1"

// An export is JSON Lines that proves itself against a signed checkpoint:
//
//	{"format":"vouch-journal-export/1","checkpoint":"<signed note>","origin":…,"tree_size":N,"from":A,"to":B,…,"left":[…],"right":[…]}
//	{"index":A,"leaf":{…the leaf, byte for byte…}}
//	{"index":A+1,"leaf_hash":"<hex>"}          (an entry the filter leaves out)
//	{"checkpoint":"<signed note>"}             (every stored checkpoint of a size in (A, B])
//	…
//	{"end":true,"entries":B-A}
//
// Entries A..B-1 are all there, in order: those that match the filter with
// their leaf, the others elided to their leaf hash. "left" is the compact
// range of [0, A) and "right" that of [B, N): with them, a verifier
// recomputes the root of the whole tree from the export alone and compares
// it with the signed checkpoint, and compares the root at every interleaved
// checkpoint on the way. So editing, removing, inserting or reordering any
// entry — or hiding one behind the filter without its hash — is detected.

// ExportHeader is the first line of an export.
type ExportHeader struct {
	Format      string   `json:"format"`
	Origin      string   `json:"origin"`
	Checkpoint  string   `json:"checkpoint"`
	TreeSize    uint64   `json:"tree_size"`
	From        uint64   `json:"from"`
	To          uint64   `json:"to"`
	Kind        Kind     `json:"kind,omitempty"`
	Environment string   `json:"environment,omitempty"`
	Left        []string `json:"left"`
	Right       []string `json:"right"`
}

// ExportRequest selects what to export.
type ExportRequest struct {
	From, To    uint64 // entries [From, To); To 0 or beyond the checkpoint means up to it
	Kind        Kind   // only these entries in full; others are elided to their hash
	Environment string
}

// ExportSource is what Export reads.
type ExportSource interface {
	LeafReader
	NodeReader
	CheckpointStore
}

// ExportPage is how many leaves Export reads at a time; memory use does not
// grow with the size of the journal.
const ExportPage = 1000

// ErrNoCheckpoint is returned when the journal has no signed checkpoint yet.
var ErrNoCheckpoint = errors.New("the journal has no signed checkpoint yet")

// Export writes the export of req against the latest checkpoint to w,
// streaming page by page. It returns the header it wrote.
func Export(ctx context.Context, w io.Writer, src ExportSource, req ExportRequest) (ExportHeader, error) {
	cp, err := src.LatestCheckpoint(ctx)
	if errors.Is(err, ErrNotFound) {
		return ExportHeader{}, ErrNoCheckpoint
	}
	if err != nil {
		return ExportHeader{}, err
	}
	to := req.To
	if to == 0 || to > cp.Size {
		to = cp.Size
	}
	if req.From > to {
		return ExportHeader{}, fmt.Errorf("export: from %d is beyond the checkpoint's %d entries", req.From, cp.Size)
	}
	left, err := src.NodeHashes(ctx, compact.RangeNodes(0, req.From, nil))
	if err != nil {
		return ExportHeader{}, err
	}
	right, err := src.NodeHashes(ctx, compact.RangeNodes(to, cp.Size, nil))
	if err != nil {
		return ExportHeader{}, err
	}
	h := ExportHeader{
		Format: ExportFormat, Origin: cp.Origin, Checkpoint: string(cp.Note), TreeSize: cp.Size,
		From: req.From, To: to, Kind: req.Kind, Environment: req.Environment,
		Left: hexHashes(left), Right: hexHashes(right),
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := writeJSONLine(bw, h); err != nil {
		return h, err
	}
	cps := &checkpointPager{src: src, from: req.From + 1}
	for from := req.From; from < to; {
		leaves, err := src.Leaves(ctx, from, int(min(ExportPage, to-from)))
		if err != nil {
			return h, err
		}
		if len(leaves) == 0 {
			return h, fmt.Errorf("export: entry %d is missing from the store", from)
		}
		for _, l := range leaves {
			if l.Index != from {
				return h, fmt.Errorf("export: the store returned entry %d where %d was expected", l.Index, from)
			}
			bw.WriteString(`{"index":`)
			bw.WriteString(strconv.FormatUint(l.Index, 10))
			if (req.Kind == "" || l.Kind == req.Kind) && (req.Environment == "" || l.Environment == req.Environment) {
				bw.WriteString(`,"leaf":`)
				bw.Write(l.Data)
				bw.WriteString("}\n")
			} else {
				bw.WriteString(`,"leaf_hash":"`)
				bw.WriteString(LeafHash(l.Data).String())
				bw.WriteString("\"}\n")
			}
			from++
			cp, ok, err := cps.at(ctx, from)
			if err != nil {
				return h, err
			}
			if ok {
				if err := writeJSONLine(bw, map[string]string{"checkpoint": string(cp.Note)}); err != nil {
					return h, err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return h, err
		}
	}
	if err := writeJSONLine(bw, map[string]any{"end": true, "entries": to - req.From}); err != nil {
		return h, err
	}
	return h, bw.Flush()
}

// checkpointPager walks the stored checkpoints in size order, a page at a
// time.
type checkpointPager struct {
	src  CheckpointStore
	from uint64
	page []Checkpoint
	done bool
}

// at returns the checkpoint of exactly size, if there is one. Sizes must be
// asked in increasing order.
func (p *checkpointPager) at(ctx context.Context, size uint64) (Checkpoint, bool, error) {
	for {
		for len(p.page) > 0 && p.page[0].Size < size {
			p.page = p.page[1:]
		}
		if len(p.page) > 0 {
			if p.page[0].Size == size {
				return p.page[0], true, nil
			}
			return Checkpoint{}, false, nil
		}
		if p.done {
			return Checkpoint{}, false, nil
		}
		page, err := p.src.Checkpoints(ctx, max(p.from, size), ExportPage)
		if err != nil {
			return Checkpoint{}, false, err
		}
		p.page, p.done = page, len(page) < ExportPage
		if len(page) > 0 {
			p.from = page[len(page)-1].Size + 1
		}
		if len(page) == 0 {
			return Checkpoint{}, false, nil
		}
	}
}

func writeJSONLine(w *bufio.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Write(b)
	return w.WriteByte('\n')
}

func hexHashes(hs []Hash) []string {
	out := make([]string, len(hs))
	for i := range hs {
		out[i] = hs[i].String()
	}
	return out
}

func parseHexHashes(ss []string) ([]Hash, error) {
	out := make([]Hash, len(ss))
	for i, s := range ss {
		if err := out[i].UnmarshalText([]byte(s)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeHex(b []byte) (Hash, bool) {
	var h Hash
	if len(b) != 2*len(h) {
		return h, false
	}
	_, err := hex.Decode(h[:], b)
	return h, err == nil
}
