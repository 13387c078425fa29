package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// DefaultCheckpointInterval is how often a Checkpointer looks for growth.
const DefaultCheckpointInterval = 5 * time.Second

// CheckpointSource is what a Checkpointer reads and writes.
type CheckpointSource interface {
	TreeState(ctx context.Context) (TreeState, error)
	CheckpointStore
}

// Publisher sends each new checkpoint somewhere the operator of the
// database cannot rewrite: a file on other storage, a witness, an archive.
type Publisher interface {
	Publish(ctx context.Context, c Checkpoint) error
	String() string
}

// CheckpointerOptions configure a Checkpointer.
type CheckpointerOptions struct {
	Origin     string
	Interval   time.Duration // DefaultCheckpointInterval when 0
	Publishers []Publisher
	Logger     *slog.Logger
	Now        func() time.Time
	// Observe, when set, is told of every signed checkpoint and publish error.
	Observe func(c Checkpoint, publishErr error)
}

// Checkpointer signs a checkpoint whenever the tree has grown, keeps it in
// the store and publishes it.
type Checkpointer struct {
	store  CheckpointSource
	signer note.Signer
	opts   CheckpointerOptions
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
		if _, _, err := c.Checkpoint(ctx); err != nil && ctx.Err() == nil {
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
func (c *Checkpointer) Checkpoint(ctx context.Context) (Checkpoint, bool, error) {
	state, err := c.store.TreeState(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	latest, err := c.store.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Checkpoint{}, false, err
	case latest.Size >= state.Size:
		return latest, false, nil
	}
	if state.Size == 0 {
		return Checkpoint{}, false, nil
	}
	cp, err := SignCheckpoint(c.signer, c.opts.Origin, state.Size, state.Root, c.opts.Now())
	if err != nil {
		return Checkpoint{}, false, err
	}
	if err := c.store.AddCheckpoint(ctx, cp); err != nil {
		return Checkpoint{}, false, fmt.Errorf("store checkpoint %d: %w", cp.Size, err)
	}
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

// dirPublisher writes each checkpoint to DIR/checkpoint.SIZE and replaces
// DIR/checkpoint with the latest, atomically.
type dirPublisher string

func (d dirPublisher) String() string { return "dir " + string(d) }

func (d dirPublisher) Publish(_ context.Context, c Checkpoint) error {
	dir := string(d)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "checkpoint."+strconv.FormatUint(c.Size, 10)), c.Note); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "checkpoint"), c.Note)
}

func writeFileAtomic(path string, data []byte) error {
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
