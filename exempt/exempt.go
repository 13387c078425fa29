// Package exempt keeps time-boxed exemptions: an image name (pattern) or
// digest admitted in one environment, for a reason, until a deadline,
// whatever the policy says. Exemptions live in the journal (entries of kind
// "exemption" and "exemption-revocation"); every replica keeps the active
// ones in memory and follows the journal for new ones.
package exempt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

// Journal entry kinds.
const (
	Kind           journal.Kind = "exemption"
	KindRevocation journal.Kind = "exemption-revocation"
)

// MaxDuration bounds an exemption: they are for incidents, not a way of
// life.
const MaxDuration = 30 * 24 * time.Hour

// Exemption admits an image in an environment until ExpiresAt.
type Exemption struct {
	ID          uint64     `json:"id"` // its journal index
	Environment string     `json:"environment"`
	Image       string     `json:"image,omitempty"`  // image name pattern ('*' any characters), or
	Digest      string     `json:"digest,omitempty"` // one artifact
	Reason      string     `json:"reason"`
	ExpiresAt   time.Time  `json:"expires_at"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedBy   string     `json:"revoked_by,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// Active reports whether the exemption applies at t.
func (e Exemption) Active(t time.Time) bool {
	return e.RevokedAt == nil && t.Before(e.ExpiresAt) && !t.Before(e.CreatedAt)
}

// Request asks for an exemption.
type Request struct {
	Environment string    `json:"environment"`
	Image       string    `json:"image"`
	Digest      string    `json:"digest"`
	Reason      string    `json:"reason"`
	ExpiresAt   time.Time `json:"expires_at"`
}

type revocation struct {
	ID        uint64    `json:"exemption"`
	RevokedBy string    `json:"revoked_by"`
	RevokedAt time.Time `json:"revoked_at"`
}

// Appender appends a journal entry durably.
type Appender interface {
	Append(ctx context.Context, e journal.Entry) (journal.Appended, error)
}

// Reader reads the journal.
type Reader interface {
	Entries(ctx context.Context, q journal.Query) ([]journal.Entry, error)
}

// Service creates, revokes and matches exemptions.
type Service struct {
	journal      Appender
	reader       Reader
	environments []string
	now          func() time.Time

	mu  sync.RWMutex
	all map[uint64]*Exemption
	// refresh serialises reading the journal from these indices on.
	refresh                       sync.Mutex
	nextExemption, nextRevocation uint64
}

// New returns a service for the configured environments.
func New(j Appender, r Reader, environments []string) *Service {
	return &Service{journal: j, reader: r, environments: environments, now: time.Now, all: map[uint64]*Exemption{}}
}

var digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)

// Create records an exemption requested by actor.
func (s *Service) Create(ctx context.Context, actor string, r Request) (Exemption, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	var fields []evidence.FieldError
	add := func(f, format string, args ...any) {
		fields = append(fields, evidence.FieldError{Field: f, Detail: fmt.Sprintf(format, args...)})
	}
	if !slices.Contains(s.environments, r.Environment) {
		add("environment", "%q is not a configured environment (configured: %s)", r.Environment, strings.Join(s.environments, ", "))
	}
	switch {
	case (r.Image == "") == (r.Digest == ""):
		add("image", "give an image name (pattern) or a digest, one of them")
	case r.Digest != "" && !digestRE.MatchString(r.Digest):
		add("digest", "must be \"sha256:\" followed by 64 lower-case hex characters, got %q", r.Digest)
	case r.Image != "" && (strings.ContainsAny(r.Image, " \t@") || len(r.Image) > 512):
		add("image", "%q is not an image name pattern (no tag or digest; '*' matches any characters)", r.Image)
	}
	if strings.TrimSpace(r.Reason) == "" {
		add("reason", "is required: it is what auditors read")
	} else if len(r.Reason) > 4096 {
		add("reason", "must be at most 4096 characters")
	}
	switch {
	case r.ExpiresAt.IsZero():
		add("expires_at", "is required: exemptions are time-boxed")
	case !r.ExpiresAt.After(now):
		add("expires_at", "must be in the future, got %s", r.ExpiresAt.Format(time.RFC3339))
	case r.ExpiresAt.Sub(now) > MaxDuration:
		add("expires_at", "must be within %s of now", MaxDuration)
	}
	if len(fields) > 0 {
		return Exemption{}, &evidence.ValidationError{Fields: fields}
	}
	e := Exemption{Environment: r.Environment, Image: r.Image, Digest: r.Digest, Reason: r.Reason,
		ExpiresAt: r.ExpiresAt.UTC().Truncate(time.Microsecond), CreatedBy: actor, CreatedAt: now}
	body, err := json.Marshal(e)
	if err != nil {
		return Exemption{}, err
	}
	res, err := s.journal.Append(ctx, journal.Entry{Kind: Kind, Time: now, Environment: e.Environment, Key: fmt.Sprintf("exemption:%d", now.UnixNano()), Body: body})
	if err != nil {
		return Exemption{}, fmt.Errorf("record the exemption: %w: %w", evidence.ErrUnavailable, err)
	}
	e.ID = res.Index
	s.mu.Lock()
	s.all[e.ID] = &e
	s.mu.Unlock()
	return e, nil
}

// Revoke ends an exemption now.
func (s *Service) Revoke(ctx context.Context, actor string, id uint64) (Exemption, error) {
	if err := s.Refresh(ctx); err != nil {
		return Exemption{}, err
	}
	s.mu.RLock()
	e, ok := s.all[id]
	s.mu.RUnlock()
	if !ok {
		return Exemption{}, fmt.Errorf("exemption %d: %w", id, evidence.ErrNotFound)
	}
	if e.RevokedAt != nil {
		return *e, nil
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	body, _ := json.Marshal(revocation{ID: id, RevokedBy: actor, RevokedAt: now})
	if _, err := s.journal.Append(ctx, journal.Entry{Kind: KindRevocation, Time: now, Environment: e.Environment, Key: fmt.Sprintf("exemption-revocation:%d", id), Body: body}); err != nil {
		return Exemption{}, fmt.Errorf("record the revocation: %w: %w", evidence.ErrUnavailable, err)
	}
	s.mu.Lock()
	e.RevokedAt, e.RevokedBy = &now, actor
	out := *e
	s.mu.Unlock()
	return out, nil
}

// List returns the exemptions, newest first; only the active ones unless
// all is set.
func (s *Service) List(ctx context.Context, all bool) ([]Exemption, error) {
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []Exemption{}
	for _, e := range s.all {
		if all || e.Active(now) {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, func(a, b Exemption) int { return int(b.ID) - int(a.ID) })
	return out, nil
}

// Active returns the exemptions of env in force at t.
func (s *Service) Active(env string, t time.Time) []Exemption {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Exemption
	for _, e := range s.all {
		if e.Environment == env && e.Active(t) {
			out = append(out, *e)
		}
	}
	return out
}

// Refresh reads the exemptions and revocations journaled since the last
// refresh, by this or another replica. Exemptions are read first: a
// revocation always follows its exemption.
func (s *Service) Refresh(ctx context.Context) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	err := s.follow(ctx, Kind, &s.nextExemption, func(en journal.Entry) error {
		var e Exemption
		if err := json.Unmarshal(en.Body, &e); err != nil {
			return err
		}
		e.ID = en.Index
		if _, ok := s.all[e.ID]; !ok {
			s.all[e.ID] = &e
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.follow(ctx, KindRevocation, &s.nextRevocation, func(en journal.Entry) error {
		var r revocation
		if err := json.Unmarshal(en.Body, &r); err != nil {
			return err
		}
		if e, ok := s.all[r.ID]; ok && e.RevokedAt == nil {
			t := r.RevokedAt
			e.RevokedAt, e.RevokedBy = &t, r.RevokedBy
		}
		return nil
	})
}

// follow applies the entries of kind from *next on, and advances it.
func (s *Service) follow(ctx context.Context, kind journal.Kind, next *uint64, apply func(journal.Entry) error) error {
	for {
		page, err := s.reader.Entries(ctx, journal.Query{From: *next, Limit: journal.MaxLimit, Kind: kind})
		if err != nil {
			return fmt.Errorf("exemptions: %w", err)
		}
		s.mu.Lock()
		for _, en := range page {
			if err := apply(en); err != nil {
				s.mu.Unlock()
				return fmt.Errorf("exemptions: journal entry %d: %w", en.Index, err)
			}
			*next = en.Index + 1
		}
		s.mu.Unlock()
		if len(page) < journal.MaxLimit {
			return nil
		}
	}
}

// Run refreshes every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("could not read exemptions from the journal", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
