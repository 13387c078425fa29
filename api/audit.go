package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/auth"
	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

// getCheckpoint serves the latest signed checkpoint as the note itself.
func (s *Server) getCheckpoint(c *gin.Context) {
	cp, err := s.cfg.Journal.LatestCheckpoint(c.Request.Context())
	if errors.Is(err, journal.ErrNotFound) {
		s.fail(c, fmt.Errorf("%w: the journal has no signed checkpoint yet", errNotFound))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.Status(http.StatusOK)
	c.Writer.Write(cp.Note)
}

var errNotFound = errors.New("not found")

// proofSize reads the "size" (or "to") parameter: the tree size a proof is
// for, defaulting to the latest checkpoint's and at most the tree's.
func (s *Server) proofSize(c *gin.Context, name string) (uint64, error) {
	st, err := s.cfg.Journal.TreeState(c.Request.Context())
	if err != nil {
		return 0, err
	}
	v := c.Query(name)
	if v == "" {
		cp, err := s.cfg.Journal.LatestCheckpoint(c.Request.Context())
		if err != nil {
			return 0, fmt.Errorf("%w: no checkpoint yet; give %q", errNotFound, name)
		}
		return cp.Size, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil || n == 0 || n > st.Size {
		return 0, badParam(name, fmt.Sprintf("must be a tree size from 1 to %d", st.Size), v)
	}
	return n, nil
}

func badParam(name, want, got string) error {
	return &bodyError{kind: problemInvalidQuery, msg: fmt.Sprintf("query parameter %q %s, got %q", name, want, got),
		fields: []evidence.FieldError{{Field: name, Detail: want}}}
}

func uintParam(c *gin.Context, name string) (uint64, bool, error) {
	v := c.Query(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, false, badParam(name, "must be a journal index (a whole number)", v)
	}
	return n, true, nil
}

type proofAnswer struct {
	Index    *uint64        `json:"index,omitempty"`
	From     *uint64        `json:"from,omitempty"`
	To       *uint64        `json:"to,omitempty"`
	Size     uint64         `json:"size,omitempty"`
	LeafHash *journal.Hash  `json:"leaf_hash,omitempty"`
	Root     journal.Hash   `json:"root"`
	Hashes   []journal.Hash `json:"hashes"`
}

func (s *Server) inclusionProof(c *gin.Context) {
	ctx := c.Request.Context()
	size, err := s.proofSize(c, "size")
	if err != nil {
		s.fail(c, err)
		return
	}
	index, ok, err := uintParam(c, "index")
	if err == nil && (!ok || index >= size) {
		err = badParam("index", fmt.Sprintf("is required and must be below the tree size %d", size), c.Query("index"))
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	p, err := journal.InclusionProof(ctx, s.cfg.Journal, index, size)
	if err != nil {
		s.fail(c, err)
		return
	}
	leaf, err := s.cfg.Journal.NodeHashes(ctx, []journal.NodeID{{Level: 0, Index: index}})
	if err != nil {
		s.fail(c, err)
		return
	}
	root, err := journal.RootAt(ctx, s.cfg.Journal, size)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, proofAnswer{Index: &index, Size: size, LeafHash: &leaf[0], Root: root, Hashes: nonNilHashes(p)})
}

func (s *Server) consistencyProof(c *gin.Context) {
	ctx := c.Request.Context()
	to, err := s.proofSize(c, "to")
	if err != nil {
		s.fail(c, err)
		return
	}
	from, ok, err := uintParam(c, "from")
	if err == nil && (!ok || from == 0 || from > to) {
		err = badParam("from", fmt.Sprintf("is required, from 1 to %d", to), c.Query("from"))
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	p, err := journal.ConsistencyProof(ctx, s.cfg.Journal, from, to)
	if err != nil {
		s.fail(c, err)
		return
	}
	root, err := journal.RootAt(ctx, s.cfg.Journal, to)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, proofAnswer{From: &from, To: &to, Root: root, Hashes: nonNilHashes(p)})
}

func nonNilHashes(h []journal.Hash) []journal.Hash {
	if h == nil {
		return []journal.Hash{}
	}
	return h
}

// exportBound reads "from" or "to": a journal index, or an RFC 3339 time
// (the first entry at or after it).
func (s *Server) exportBound(c *gin.Context, name string) (uint64, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(v, 10, 63); err == nil {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, badParam(name, "must be a journal index or an RFC 3339 time", v)
	}
	return s.cfg.Journal.FirstIndexAt(c.Request.Context(), t)
}

// auditExport streams the journal: JSONL that verifies against the signed
// checkpoint it carries (`vouch journal verify`), or CSV for spreadsheets.
func (s *Server) auditExport(c *gin.Context) {
	t := c.MustGet(tokenKey).(auth.Token)
	release, ok := s.exports.Acquire(t.ID)
	if !ok {
		c.Header("Retry-After", "10")
		s.fail(c, fmt.Errorf("%w: token %q has %d exports streaming already; wait for one to finish", errRateLimited, t.Name, MaxConcurrentExports))
		return
	}
	defer release()
	from, err := s.exportBound(c, "from")
	if err != nil {
		s.fail(c, err)
		return
	}
	to, err := s.exportBound(c, "to")
	if err != nil {
		s.fail(c, err)
		return
	}
	req := journal.ExportRequest{From: from, To: to, Kind: journal.Kind(c.Query("kind")), Environment: c.Query("environment")}
	if c.Query("to") != "" && to <= from {
		req.To, req.From = from, from // an empty range
	}
	switch format := c.DefaultQuery("format", "jsonl"); format {
	case "jsonl":
		c.Header("Content-Type", "application/jsonl")
		c.Header("Content-Disposition", `attachment; filename="vouch-journal.jsonl"`)
		// Errors after the first byte cannot become a problem document; the
		// missing end line then makes the export fail verification.
		if _, err := journal.Export(c.Request.Context(), &lazyWriter{c: c}, s.cfg.Journal, req); err != nil {
			if !c.Writer.Written() {
				if errors.Is(err, journal.ErrNoCheckpoint) {
					err = fmt.Errorf("%w: %v", errNotFound, err)
				}
				s.fail(c, err)
				return
			}
			s.log.Error("audit export failed while streaming", "error", err)
		}
	case "csv":
		s.csvExport(c, req)
	default:
		s.fail(c, badParam("format", "must be jsonl or csv", format))
	}
}

// lazyWriter sets the status only when the first byte is written, so that
// an error before any output can still be answered as problem+json.
type lazyWriter struct{ c *gin.Context }

func (w *lazyWriter) Write(p []byte) (int, error) {
	if !w.c.Writer.Written() {
		w.c.Status(http.StatusOK)
	}
	return w.c.Writer.Write(p)
}

// csvExport writes the entries as a spreadsheet: one row per entry, with a
// short summary of what it records. CSV does not verify; JSONL does.
func (s *Server) csvExport(c *gin.Context, req journal.ExportRequest) {
	ctx := c.Request.Context()
	st, err := s.cfg.Journal.TreeState(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	to := req.To
	if to == 0 || to > st.Size {
		to = st.Size
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="vouch-journal.csv"`)
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	w.Write([]string{"index", "time", "kind", "environment", "subject", "outcome", "actor", "detail", "leaf_hash"})
	for from := req.From; from < to; {
		leaves, err := s.cfg.Journal.Leaves(ctx, from, int(min(journal.ExportPage, to-from)))
		if err != nil || len(leaves) == 0 {
			s.log.Error("csv export failed while streaming", "error", err, "at", from)
			return
		}
		for _, l := range leaves {
			from = l.Index + 1
			if (req.Kind != "" && l.Kind != req.Kind) || (req.Environment != "" && l.Environment != req.Environment) {
				continue
			}
			e, err := journal.ParseLeaf(l.Index, l.Data)
			if err != nil {
				s.log.Error("csv export: unreadable leaf", "index", l.Index, "error", err)
				return
			}
			subject, outcome, actor, detail := summarize(e)
			w.Write([]string{strconv.FormatUint(e.Index, 10), e.Time.Format(time.RFC3339Nano), string(e.Kind), e.Environment,
				subject, outcome, actor, detail, e.LeafHash.String()})
		}
		w.Flush()
		if w.Error() != nil || ctx.Err() != nil {
			return
		}
	}
	w.Flush()
}

// summarize describes an entry in a few words for the CSV view.
func summarize(e journal.Entry) (subject, outcome, actor, detail string) {
	var b map[string]any
	json.Unmarshal(e.Body, &b)
	str := func(k string) string { v, _ := b[k].(string); return v }
	switch e.Kind {
	case journal.KindAdmission:
		subject = fmt.Sprintf("%s %s/%s", str("kind"), str("namespace"), str("name"))
		outcome = "denied"
		if allowed, _ := b["allowed"].(bool); allowed {
			outcome = "allowed"
		}
		actor = str("user")
		var images []string
		if imgs, ok := b["images"].([]any); ok {
			for _, i := range imgs {
				if m, ok := i.(map[string]any); ok {
					images = append(images, fmt.Sprint(m["image"]))
				}
			}
		}
		detail = strings.Join(images, " ")
		if msgs, ok := b["messages"].([]any); ok && len(msgs) > 0 {
			parts := make([]string, len(msgs))
			for i, m := range msgs {
				parts[i] = fmt.Sprint(m)
			}
			detail = strings.Join(parts, "; ")
		}
	case "artifact":
		subject, outcome, actor, detail = str("name")+"@"+str("digest"), "reported", str("reported_by"), strings.TrimSpace(str("git_commit")+" "+str("build_url"))
	case "attestation":
		outcome = "failed"
		if passed, _ := b["passed"].(bool); passed {
			outcome = "passed"
		}
		subject, actor, detail = str("digest"), str("reported_by"), str("name")+" ("+str("type")+")"
	case "approval":
		subject, outcome, actor, detail = str("digest"), str("decision"), str("approver"), str("reason")
	default:
		detail = string(e.Body)
	}
	return subject, outcome, actor, detail
}
