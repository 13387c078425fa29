package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// DefaultCheckpointInterval is how often a Checkpointer looks for growth.
const DefaultCheckpointInterval = 5 * time.Second

// CheckpointSource is what a Checkpointer reads and writes.
type CheckpointSource interface {
	TreeState(ctx context.Context) (TreeState, error)
	CheckpointStore
	NodeReader
}

// Publisher sends each new checkpoint somewhere the operator of the
// database cannot rewrite: a file on other storage, a witness, an archive.
type Publisher interface {
	Publish(ctx context.Context, c Checkpoint) error
	String() string
}

// LatestPublisher is a Publisher that can read back the latest checkpoint
// it published, so that a journal rewritten in the database, or restored
// from an older backup, is not signed over it.
type LatestPublisher interface {
	Publisher
	// Latest returns the latest published checkpoint, or ErrNotFound.
	Latest(ctx context.Context) (Checkpoint, error)
}

// ErrInconsistent is returned when the tree in the store does not extend
// a checkpoint signed before: its history was rewritten, or the store was
// restored from a backup older than the checkpoint. Nothing is signed then.
var ErrInconsistent = errors.New("the journal in the store does not extend a checkpoint signed before")

// CheckpointerOptions configure a Checkpointer.
type CheckpointerOptions struct {
	Origin     string
	Interval   time.Duration // DefaultCheckpointInterval when 0
	Publishers []Publisher
	Logger     *slog.Logger
	Now        func() time.Time
	// Observe, when set, is told of every signed checkpoint and publish error.
	Observe func(c Checkpoint, publishErr error)
	// Refused, when set, is told once when the checkpointer starts refusing
	// to sign (ErrInconsistent), and again whenever the reason changes.
	Refused func(ctx context.Context, err error)
}

// Checkpointer signs a checkpoint whenever the tree has grown, keeps it in
// the store and publishes it. It signs a tree only if it extends every
// checkpoint it knows of — the last one it signed, the store's latest and
// each LatestPublisher's — by a consistency proof: the signing key never
// vouches for a history rewritten in the database.
type Checkpointer struct {
	store   CheckpointSource
	signer  note.Signer
	opts    CheckpointerOptions
	refusal string // the reason of the refusal Run last reported

	mu     sync.Mutex  // one Checkpoint at a time (Run's, and the final one at shutdown)
	signed *Checkpoint // the last checkpoint this process signed
}

// NewCheckpointer returns a checkpointer signing with s.
func NewCheckpointer(store CheckpointSource, s note.Signer, opts CheckpointerOptions) *Checkpointer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultCheckpointInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Origin == "" {
		opts.Origin = s.Name()
	}
	return &Checkpointer{store: store, signer: s, opts: opts}
}

// Run signs checkpoints every interval until ctx ends.
func (c *Checkpointer) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		_, _, err := c.Checkpoint(ctx)
		switch {
		case err == nil:
			c.refusal = ""
		case ctx.Err() != nil:
		case errors.Is(err, ErrInconsistent):
			c.opts.Logger.Error("refusing to sign a journal checkpoint: the stored journal was rewritten, or restored from an older backup", "error", err)
			if c.opts.Refused != nil && err.Error() != c.refusal {
				c.opts.Refused(ctx, err)
			}
			c.refusal = err.Error()
		default:
			c.opts.Logger.Error("journal checkpoint failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Checkpoint signs, stores and publishes a checkpoint of the current tree
// if it is larger than the latest stored one. It reports whether it made one.
// It fails with ErrInconsistent, and signs nothing, if the tree does not
// extend a checkpoint it knows of.
func (c *Checkpointer) Checkpoint(ctx context.Context) (Checkpoint, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Every checkpoint is read before the tree: one signed meanwhile (by a
	// leader on its way out) is then never larger than the tree.
	latest, err := c.store.LatestCheckpoint(ctx)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Checkpoint{}, false, err
	}
	anchors := []Checkpoint{latest}
	if c.signed != nil {
		anchors = append(anchors, *c.signed)
	}
	for _, p := range c.opts.Publishers {
		if lp, ok := p.(LatestPublisher); ok {
			switch pub, err := lp.Latest(ctx); {
			case err == nil:
				anchors = append(anchors, pub)
			case !errors.Is(err, ErrNotFound):
				return Checkpoint{}, false, fmt.Errorf("read the latest checkpoint published to %s: %w", p, err)
			}
		}
	}
	state, err := c.store.TreeState(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	for _, a := range anchors {
		if err := c.extends(ctx, state, a); err != nil {
			return Checkpoint{}, false, err
		}
	}
	if state.Size == 0 || latest.Size >= state.Size {
		return latest, false, nil
	}
	cp, err := SignCheckpoint(c.signer, c.opts.Origin, state.Size, state.Root, c.opts.Now())
	if err != nil {
		return Checkpoint{}, false, err
	}
	if err := c.store.AddCheckpoint(ctx, cp); err != nil {
		return Checkpoint{}, false, fmt.Errorf("store checkpoint %d: %w", cp.Size, err)
	}
	c.signed = &cp
	for _, p := range c.opts.Publishers {
		perr := p.Publish(ctx, cp)
		if perr != nil {
			c.opts.Logger.Error("publishing the journal checkpoint failed", "to", p.String(), "size", cp.Size, "error", perr)
		}
		if c.opts.Observe != nil {
			c.opts.Observe(cp, perr)
		}
	}
	if len(c.opts.Publishers) == 0 && c.opts.Observe != nil {
		c.opts.Observe(cp, nil)
	}
	return cp, true, nil
}

// extends checks that the tree state extends the checkpoint a (a zero
// checkpoint is no anchor).
func (c *Checkpointer) extends(ctx context.Context, state TreeState, a Checkpoint) error {
	switch {
	case a.Size == 0:
		return nil
	case a.Size > state.Size:
		return fmt.Errorf("%w: checkpoint %d, but the store holds %d entries", ErrInconsistent, a.Size, state.Size)
	}
	p, err := ConsistencyProof(ctx, c.store, a.Size, state.Size)
	if err == nil {
		err = VerifyConsistency(a.Size, state.Size, p, a.Root, state.Root)
	}
	if err != nil {
		return fmt.Errorf("%w: checkpoint %d to tree size %d: %v", ErrInconsistent, a.Size, state.Size, err)
	}
	return nil
}

// NewPublisher returns the publisher for a destination: a directory (a
// path or file:// URL), or an http(s) URL that receives a POST.
func NewPublisher(dest string) (Publisher, error) {
	u, err := url.Parse(dest)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return &httpPublisher{url: dest, client: &http.Client{Timeout: 10 * time.Second}}, nil
	}
	dir := dest
	if err == nil && u.Scheme == "file" {
		dir = u.Path
	} else if err == nil && u.Scheme != "" {
		return nil, fmt.Errorf("checkpoint destination %q: want a directory, file:// or http(s):// URL", dest)
	}
	if dir == "" {
		return nil, fmt.Errorf("checkpoint destination %q: empty directory", dest)
	}
	return dirPublisher(dir), nil
}

// dirPublisher writes each checkpoint to DIR/checkpoint.SIZE, never
// replacing one, and replaces DIR/checkpoint with the latest, atomically.
type dirPublisher string

func (d dirPublisher) String() string { return "dir " + string(d) }

func (d dirPublisher) Publish(_ context.Context, c Checkpoint) error {
	dir := string(d)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := filepath.Join(dir, "checkpoint."+strconv.FormatUint(c.Size, 10))
	if err := writeFileAtomic(name, c.Note, false); errors.Is(err, fs.ErrExist) {
		if old, rerr := os.ReadFile(name); rerr != nil || !bytes.Equal(old, c.Note) {
			return fmt.Errorf("%s holds another checkpoint of size %d: not replaced", name, c.Size)
		}
	} else if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "checkpoint"), c.Note, true)
}

// Latest reads DIR/checkpoint (its text; the signature is the verifier's
// business).
func (d dirPublisher) Latest(context.Context) (Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(string(d), "checkpoint"))
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, ErrNotFound
	}
	if err != nil {
		return Checkpoint{}, err
	}
	text, _, ok := bytes.Cut(b, []byte("\n\n")) // a note's text ends at the blank line before its signatures
	if !ok {
		return Checkpoint{}, fmt.Errorf("%s is not a signed note", filepath.Join(string(d), "checkpoint"))
	}
	return ParseCheckpoint(string(text) + "\n")
}

// writeFileAtomic writes data to path through a temporary file, so that a
// reader never sees part of it; unless replace, an existing path is left
// alone and fs.ErrExist returned.
func writeFileAtomic(path string, data []byte, replace bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if !replace {
		return os.Link(tmp.Name(), path) // fails with fs.ErrExist if path exists
	}
	return os.Rename(tmp.Name(), path)
}

// httpPublisher POSTs each checkpoint (text/plain, the signed note) and
// retries a few times.
type httpPublisher struct {
	url    string
	client *http.Client
}

// String names the host only: the URL's path or query may be a credential.
func (h *httpPublisher) String() string {
	u, _ := url.Parse(h.url) // parsed by NewPublisher
	return "POST " + u.Scheme + "://" + u.Host
}

func (h *httpPublisher) Publish(ctx context.Context, c Checkpoint) error {
	var last error
	for attempt, wait := 0, 200*time.Millisecond; attempt < 4; attempt, wait = attempt+1, wait*2 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(c.Note))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
		resp, err := h.client.Do(req)
		var uerr *url.Error
		if errors.As(err, &uerr) { // name the host only: the URL may carry a credential
			err = fmt.Errorf("%s %s://%s: %w", uerr.Op, req.URL.Scheme, req.URL.Host, uerr.Err)
		}
		if err != nil {
			last = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode < 300 {
			return nil
		}
		last = fmt.Errorf("HTTP %d", resp.StatusCode)
		if resp.StatusCode < 500 {
			return last
		}
	}
	return last
}
