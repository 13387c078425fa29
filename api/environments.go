package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/vouch-dev/vouch/drift"
)

// DriftService answers what ran where and when (drift.Service).
type DriftService interface {
	State(ctx context.Context, env string, at time.Time) (drift.Snapshot, error)
	Diff(ctx context.Context, env string, from, to time.Time) (drift.Diff, error)
	Events(ctx context.Context, env string, since, until time.Time, limit int) ([]drift.Event, error)
	Compliance(ctx context.Context, env string) (drift.Report, error)
	Summaries(ctx context.Context) ([]drift.Summary, error)
	Report(ctx context.Context, env, reporter string, workloads []drift.Workload) (drift.Result, error)
	Sightings(ctx context.Context, digests []string) (map[string][]drift.Sighting, error)
}

// timeParam reads an RFC 3339 time, or a duration back from now ("7d",
// "24h"), defaulting to def.
func timeParam(c *gin.Context, name string, def time.Time) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	t, ok := parseTimeOrAgo(v, time.Now())
	if !ok {
		return time.Time{}, badParam(name, timeOrAgo, v)
	}
	return t, nil
}

// timeOrAgo says what parseTimeOrAgo accepts.
const timeOrAgo = "must be an RFC 3339 time (2026-11-20T10:00:00Z) or a duration back from now (24h, 7d)"

// parseTimeOrAgo reads an RFC 3339 time, or a duration back from now.
func parseTimeOrAgo(v string, now time.Time) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	if d, err := parseAgo(v); err == nil {
		return now.Add(-d), true
	}
	return time.Time{}, false
}

// parseAgo parses a Go duration, also accepting days ("7d").
func parseAgo(v string) (time.Duration, error) {
	var days int
	if _, err := fmt.Sscanf(v, "%dd", &days); err == nil && fmt.Sprintf("%dd", days) == v {
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

func (s *Server) driftFail(c *gin.Context, err error) {
	switch {
	case errors.Is(err, drift.ErrUnknownEnvironment), errors.Is(err, drift.ErrNoSnapshot):
		err = fmt.Errorf("%w: %v", errNotFound, err)
	case errors.Is(err, drift.ErrReservedEnvironment):
		err = &bodyError{kind: problemConflict, msg: err.Error()}
	}
	s.fail(c, err)
}

func (s *Server) listEnvironments(c *gin.Context) {
	sums, err := s.cfg.Drift.Summaries(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"environments": sums})
}

func (s *Server) environmentState(c *gin.Context) {
	at, err := timeParam(c, "at", time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	snap, err := s.cfg.Drift.State(c.Request.Context(), c.Param("env"), at)
	if err != nil {
		s.driftFail(c, err)
		return
	}
	c.JSON(http.StatusOK, snap)
}

func (s *Server) environmentDiff(c *gin.Context) {
	from, err := timeParam(c, "from", time.Time{})
	if err == nil && c.Query("from") == "" {
		err = badParam("from", "is required: an RFC 3339 time or a duration back from now", "")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	to, err := timeParam(c, "to", time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	d, err := s.cfg.Drift.Diff(c.Request.Context(), c.Param("env"), from, to)
	if err != nil {
		s.driftFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"environment": c.Param("env"), "from": from.UTC(), "to": to.UTC(), "diff": d})
}

func (s *Server) environmentEvents(c *gin.Context) {
	since, err := timeParam(c, "since", time.Now().Add(-7*24*time.Hour))
	if err != nil {
		s.fail(c, err)
		return
	}
	until, err := timeParam(c, "until", time.Now())
	if err != nil {
		s.fail(c, err)
		return
	}
	limit, err := intParam(c, "limit", 1000, 1, 10000)
	if err != nil {
		s.fail(c, err)
		return
	}
	events, err := s.cfg.Drift.Events(c.Request.Context(), c.Param("env"), since, until, limit)
	if err != nil {
		s.driftFail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"environment": c.Param("env"), "events": events})
}

func (s *Server) environmentCompliance(c *gin.Context) {
	rep, err := s.cfg.Drift.Compliance(c.Request.Context(), c.Param("env"))
	if err != nil {
		s.driftFail(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}

// SnapshotReport is what `vouch snapshot` sends.
type SnapshotReport struct {
	Workloads []drift.Workload `json:"workloads"`
}

func (s *Server) putSnapshot(c *gin.Context) {
	var r SnapshotReport
	if err := decodeJSON(c, 32<<20, &r); err != nil {
		s.fail(c, err)
		return
	}
	if r.Workloads == nil {
		s.fail(c, &bodyError{kind: problemInvalidBody, msg: `field "workloads" is required (an empty list when nothing runs)`})
		return
	}
	res, err := s.cfg.Drift.Report(c.Request.Context(), c.Param("env"), caller(c), r.Workloads)
	if err != nil {
		s.driftFail(c, err)
		return
	}
	recorded := res.Recorded
	if recorded == "" {
		recorded = "unchanged"
	}
	c.JSON(http.StatusOK, gin.H{"environment": c.Param("env"), "recorded": recorded, "journal_index": res.ID})
}
