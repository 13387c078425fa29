package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/policy"
	"github.com/vouch-dev/vouch/replay"
	"github.com/vouch-dev/vouch/webhook"
)

// Replayer decides journaled admissions again with a candidate policy
// (replay.Replayer).
type Replayer interface {
	Candidate(ctx context.Context, modules map[string]string) (replay.Policy, error)
	Replay(ctx context.Context, candidate replay.Policy, opts replay.Options) (replay.Report, error)
}

// ReplayRequest asks what a candidate policy would have decided.
type ReplayRequest struct {
	// Modules are the candidate's Rego modules by file name, as in a
	// --policy-dir; the built-in policy is always part of it. {} replays
	// the built-in policy alone.
	Modules map[string]string `json:"modules"`
	// Since and Until are RFC 3339 times or durations back from now
	// ("7d"); since defaults to 7d, until to now.
	Since       string `json:"since"`
	Until       string `json:"until"`
	Environment string `json:"environment"`
	// Limit is the most decisions replayed (replay.DefaultLimit when 0,
	// at most replay.MaxLimit).
	Limit int `json:"limit"`
}

// MaxReplayBody bounds a replay request: the candidate's modules.
const MaxReplayBody = 4 << 20

// ndjson is the media type of a replay answer streamed with progress.
const ndjson = "application/x-ndjson"

// replayProgressEvery is how often a streamed replay reports progress.
const replayProgressEvery = time.Second

func (s *Server) replay(c *gin.Context) {
	var r ReplayRequest
	if err := decodeJSON(c, MaxReplayBody, &r); err != nil {
		s.fail(c, err)
		return
	}
	now := time.Now()
	opts, err := r.Options(now)
	if err != nil {
		s.fail(c, err)
		return
	}
	// One replay at a time: it keeps the cores busy.
	select {
	case s.replaying <- struct{}{}:
		defer func() { <-s.replaying }()
	default:
		s.fail(c, &bodyError{kind: problemBusy, msg: "another policy replay is running on this server; retry when it is done"})
		return
	}
	ctx := c.Request.Context()
	cand, err := s.cfg.Replayer.Candidate(ctx, r.Modules)
	if err != nil {
		s.fail(c, replayError(err))
		return
	}
	streaming := strings.Contains(c.GetHeader("Accept"), ndjson)
	started, last := false, now
	if streaming {
		// The answer starts with the first progress, so that anything
		// refused before it is still a problem+json with its status.
		opts.Progress = func(p replay.Progress) {
			if p.Index >= p.To || time.Since(last) < replayProgressEvery {
				return
			}
			last = time.Now()
			if !started {
				started = true
				c.Header("Content-Type", ndjson)
				c.Status(http.StatusOK)
			}
			writeLine(c, gin.H{"progress": p})
		}
	}
	rep, err := s.cfg.Replayer.Replay(ctx, cand, opts)
	switch {
	case err != nil && started:
		kind, _ := classify(err)
		s.log.Warn("policy replay failed", "error", err)
		writeLine(c, gin.H{"error": Problem{Type: ProblemBase + kind.slug, Title: kind.title, Status: kind.status, Detail: err.Error(), Instance: c.Request.URL.Path}})
	case err != nil:
		s.fail(c, replayError(err))
	case streaming:
		if !started {
			c.Header("Content-Type", ndjson)
			c.Status(http.StatusOK)
		}
		writeLine(c, gin.H{"report": rep})
	default:
		c.JSON(http.StatusOK, rep)
	}
}

// Options checks the request and turns it into replay options, with now
// as the time durations go back from. Problems are a
// *evidence.ValidationError naming each field.
func (r ReplayRequest) Options(now time.Time) (replay.Options, error) {
	var fields []evidence.FieldError
	if r.Modules == nil {
		fields = append(fields, evidence.FieldError{Field: "modules", Detail: "is required: the candidate's Rego modules by file name ({} for the built-in policy alone)"})
	}
	names := make([]string, 0, len(r.Modules))
	for name := range r.Modules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := policy.CheckModuleName(name); err != nil {
			fields = append(fields, evidence.FieldError{Field: "modules[" + name + "]", Detail: err.Error()})
		}
	}
	opts := replay.Options{Environment: r.Environment, Limit: r.Limit, Now: func() time.Time { return now }}
	var err error
	if opts.Since, err = sinceUntil(r.Since, now.Add(-replay.DefaultSince), now); err != nil {
		fields = append(fields, evidence.FieldError{Field: "since", Detail: err.Error()})
	}
	if opts.Until, err = sinceUntil(r.Until, now, now); err != nil {
		fields = append(fields, evidence.FieldError{Field: "until", Detail: err.Error()})
	}
	if len(fields) == 0 && !opts.Since.Before(opts.Until) {
		fields = append(fields, evidence.FieldError{Field: "since", Detail: fmt.Sprintf("must be before until (%s), got %s", opts.Until.UTC().Format(time.RFC3339), opts.Since.UTC().Format(time.RFC3339))})
	}
	if r.Limit < 0 || r.Limit > replay.MaxLimit {
		fields = append(fields, evidence.FieldError{Field: "limit", Detail: fmt.Sprintf("must be from 1 to %d (0: %d), got %d", replay.MaxLimit, replay.DefaultLimit, r.Limit)})
	}
	if len(fields) > 0 {
		return opts, &evidence.ValidationError{Fields: fields}
	}
	return opts, nil
}

// sinceUntil reads an RFC 3339 time or a duration back from now, def
// when empty.
func sinceUntil(v string, def, now time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, ok := parseTimeOrAgo(v, now)
	if !ok {
		return time.Time{}, fmt.Errorf("%s, got %q", timeOrAgo, v)
	}
	return t, nil
}

// replayError turns what a replay refuses into field errors of the
// request: modules that do not compile, an unknown environment.
func replayError(err error) error {
	var cerr *policy.CompileError
	switch {
	case errors.As(err, &cerr):
		var fields []evidence.FieldError
		for _, p := range cerr.Problems {
			field, detail := "modules", p.Message
			if p.File != "" {
				field, detail = "modules["+p.File+"]", fmt.Sprintf("line %d: %s", p.Line, p.Message)
			}
			fields = append(fields, evidence.FieldError{Field: field, Detail: detail})
		}
		return &evidence.ValidationError{Fields: fields}
	case errors.Is(err, webhook.ErrUnknownEnvironment):
		return evidence.Invalid("environment", err.Error())
	}
	return err
}

// writeLine writes v as one line of JSON and flushes it to the client.
func writeLine(c *gin.Context, v any) {
	b, _ := json.Marshal(v)
	c.Writer.Write(append(b, '\n'))
	c.Writer.Flush()
}
