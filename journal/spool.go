package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Spool keeps the journal's promise while its store is unreachable: an
// append that the store cannot take within a short time is written to a
// local append-only file and fsynced before it is acknowledged; Run
// sequences the spooled entries into the journal, in order and exactly once
// (their keys make the appends idempotent), when the store answers again.
// While anything is spooled, new entries are spooled behind it, so the
// journal's order is the order of the answers.
//
// An entry the store would refuse (ErrRefused) is never spooled, where it
// would block every later entry: Append screens it first. One the screen
// missed is set aside when the store refuses it on draining, in a
// refused-<date>.jsonl file next to the spool, and the others drain on.
//
// If the spool cannot be written either, Append fails: the caller must
// refuse the change (fail closed).
type Spool struct {
	inner interface {
		Append(context.Context, Entry) (Appended, error)
	}
	store   BatchAppender
	path    string
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time
	screen  func(Entry) error
	observe func(pending, setAside int)

	mu      sync.Mutex
	f       *os.File
	pending []Entry
	keys    map[string]int // key → position in pending
	drainMu sync.Mutex
}

// SpoolOptions tune a Spool.
type SpoolOptions struct {
	// After is how long an append may wait for the store before it is
	// spooled (DefaultSpoolAfter when 0).
	After  time.Duration
	Logger *slog.Logger
	// Screen, when set, tells without a round trip an entry the store
	// would refuse; its error should wrap ErrRefused. When nil, the
	// store's own Screen is used if it is a Screener.
	Screen func(Entry) error
	// Observe, when set, is told how many entries wait in the spool
	// whenever that changes, and how many were just set aside. It is
	// called with the spool locked and must not call back into it.
	Observe func(pending, setAside int)
}

// Screener is a store that can tell, without a round trip, an entry it
// would refuse: Screen's error then wraps ErrRefused.
type Screener interface {
	Screen(Entry) error
}

// DefaultSpoolAfter leaves room within the apiserver's webhook timeout.
const DefaultSpoolAfter = 2 * time.Second

// OpenSpool opens (or creates) the spool file at path in front of inner,
// draining into store. Entries left in the file by an earlier process are
// pending again, to be sequenced by Run.
func OpenSpool(path string, inner interface {
	Append(context.Context, Entry) (Appended, error)
}, store BatchAppender, opts SpoolOptions) (*Spool, error) {
	if opts.After <= 0 {
		opts.After = DefaultSpoolAfter
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if sc, ok := store.(Screener); ok && opts.Screen == nil {
		opts.Screen = sc.Screen
	}
	s := &Spool{inner: inner, store: store, path: path, timeout: opts.After, log: opts.Logger, now: time.Now,
		screen: opts.Screen, observe: opts.Observe, keys: map[string]int{}}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("journal spool: %w", err)
	}
	entries, err := readSpool(path)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		s.add(e)
	}
	s.observed(0)
	if len(entries) > 0 {
		s.log.Warn("entries spooled while the journal store was unreachable are waiting to be sequenced", "spool", path, "entries", len(entries))
		// Rewrite without a torn last line, if there was one.
		if err := s.rewrite(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// readSpool reads the complete lines of the spool file: each a sealed
// entry's leaf. A torn last line (a crash while writing it, so it was never
// acknowledged) is left out.
func readSpool(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal spool: %w", err)
	}
	var out []Entry
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		e, err := ParseLeaf(0, data[:i])
		if err != nil {
			return nil, fmt.Errorf("journal spool %s: line %d: %w", path, len(out)+1, err)
		}
		if err := e.Seal(); err != nil {
			return nil, fmt.Errorf("journal spool %s: line %d: %w", path, len(out)+1, err)
		}
		out = append(out, e)
		data = data[i+1:]
	}
	return out, nil
}

// Pending reports how many entries wait in the spool.
func (s *Spool) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Append appends e through the store, or spools it when something is
// spooled already or the store does not answer within the spool delay. An
// entry the store refuses, or would refuse (the screen), is refused
// (ErrRefused) rather than spooled.
func (s *Spool) Append(ctx context.Context, e Entry) (Appended, error) {
	s.mu.Lock()
	spooling := len(s.pending) > 0
	s.mu.Unlock()
	if !spooling {
		actx, cancel := context.WithTimeout(ctx, s.timeout)
		res, err := s.inner.Append(actx, e)
		cancel()
		if err == nil || ctx.Err() != nil || errors.Is(err, ErrRefused) {
			return res, err // a refused entry would block the spool forever
		}
		s.log.Warn("journal store unreachable; spooling", "error", err, "key", e.Key)
	}
	if s.screen != nil { // the store cannot say: it is down, or busy with the spool
		if err := s.screen(e); err != nil {
			if !errors.Is(err, ErrRefused) {
				err = fmt.Errorf("%w: %w", ErrRefused, err)
			}
			return Appended{}, err
		}
	}
	return s.spool(e)
}

func (s *Spool) spool(e Entry) (Appended, error) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if err := e.Seal(); err != nil {
		return Appended{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.keys[e.Key]; ok && e.Key != "" {
		return Appended{Entry: s.pending[i], Existing: true, Spooled: true}, nil
	}
	if err := s.write(e); err != nil {
		return Appended{}, fmt.Errorf("the journal store is unreachable and the spool %s cannot be written: %w", s.path, err)
	}
	s.add(e)
	s.observed(0)
	return Appended{Entry: e, Spooled: true}, nil
}

func (s *Spool) add(e Entry) {
	if e.Key != "" {
		s.keys[e.Key] = len(s.pending)
	}
	s.pending = append(s.pending, e)
}

// observed tells Observe the spool's depth; s.mu is held (or s is not
// shared yet).
func (s *Spool) observed(setAside int) {
	if s.observe != nil {
		s.observe(len(s.pending), setAside)
	}
}

// write appends e's leaf to the file and fsyncs it.
func (s *Spool) write(e Entry) error {
	if s.f == nil {
		f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		s.f = f
	}
	if _, err := s.f.Write(append(append([]byte(nil), e.Leaf...), '\n')); err != nil {
		return err
	}
	return s.f.Sync()
}

// rewrite replaces the file with the pending entries (atomically).
func (s *Spool) rewrite() error {
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, e := range s.pending {
		w.Write(e.Leaf)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	syncDir(filepath.Dir(s.path))
	return nil
}

// syncDir makes the directory's entries durable (a file created or
// renamed in it), as far as the platform allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Drain sequences the spooled entries into the store, oldest first, in
// batches, and removes them from the spool as they commit. An entry the
// store refuses (ErrRefused) is found by halving its batch, set aside in
// a refused-<date>.jsonl file next to the spool, logged and left out; the
// others drain on. Drain returns an error wrapping ErrRefused only if a
// refused entry could not be set aside: it then stays spooled.
func (s *Spool) Drain(ctx context.Context) error {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	for {
		s.mu.Lock()
		n := min(len(s.pending), DefaultMaxBatch)
		batch := append([]Entry(nil), s.pending[:n]...)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		done, refused, err := s.commit(ctx, batch)
		if len(refused) > 0 {
			if serr := s.setAside(refused); serr != nil {
				return fmt.Errorf("%w, and could not be set aside: %w", ErrRefused, serr)
			}
		}
		if done > 0 {
			s.mu.Lock()
			s.pending = s.pending[done:]
			s.keys = make(map[string]int, len(s.pending))
			for i, e := range s.pending {
				if e.Key != "" {
					s.keys[e.Key] = i
				}
			}
			werr := s.rewrite()
			left := len(s.pending)
			s.observed(len(refused))
			s.mu.Unlock()
			if werr != nil {
				return fmt.Errorf("journal spool: %w", werr)
			}
			s.log.Info("spooled entries sequenced into the journal", "entries", done-len(refused), "set_aside", len(refused), "left", left)
		}
		if err != nil {
			return err
		}
	}
}

// refusal is a spooled entry the store refused, and why.
type refusal struct {
	entry Entry
	err   error
}

// commit appends batch. When the store refuses it, commit halves it until
// the refused entries are alone, committing the others in order. It
// returns how many leading entries of batch are done with (committed or
// refused) and the refused ones among them; err is the error that stopped
// it (the store unreachable).
func (s *Spool) commit(ctx context.Context, batch []Entry) (done int, refused []refusal, err error) {
	_, err = s.store.AppendBatch(ctx, batch)
	switch {
	case err == nil:
		return len(batch), nil, nil
	case !errors.Is(err, ErrRefused) || ctx.Err() != nil:
		return 0, nil, err
	case len(batch) == 1:
		return 1, []refusal{{batch[0], err}}, nil
	}
	h := len(batch) / 2
	done, refused, err = s.commit(ctx, batch[:h])
	if err != nil {
		return done, refused, err
	}
	more, refusedMore, err := s.commit(ctx, batch[h:])
	return done + more, append(refused, refusedMore...), err
}

// setAside appends refused entries to refused-<date>.jsonl next to the
// spool, one JSON object a line (the leaf, why, and when), fsynced.
func (s *Spool) setAside(refused []refusal) error {
	now := s.now().UTC()
	path := filepath.Join(filepath.Dir(s.path), "refused-"+now.Format(time.DateOnly)+".jsonl")
	var buf bytes.Buffer
	for _, r := range refused {
		line, err := json.Marshal(struct {
			SetAside string          `json:"set_aside"`
			Error    string          `json:"error"`
			Leaf     json.RawMessage `json:"leaf"`
		}{now.Format(time.RFC3339Nano), r.err.Error(), r.entry.Leaf})
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if statErr != nil { // new: make its directory entry durable too
		syncDir(filepath.Dir(path))
	}
	for _, r := range refused {
		s.log.Error("the journal store refused a spooled entry; set aside, the others drain on",
			"key", r.entry.Key, "kind", r.entry.Kind, "time", r.entry.Time, "set_aside_in", path, "error", r.err)
	}
	return nil
}

// Run drains the spool every interval until ctx ends.
func (s *Spool) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if s.Pending() > 0 {
			err := s.Drain(ctx)
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, ErrRefused):
				s.log.Error("the journal store refused a spooled entry that could not be set aside; entries stay spooled", "entries", s.Pending(), "error", err)
			default:
				s.log.Warn("journal store still unreachable; entries stay spooled", "entries", s.Pending(), "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
