package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FreezeWindow is a period when changes to an environment are frozen:
// either dated (Start to End) or recurring (a cron schedule of when it
// starts, and how long it lasts), in UTC.
type FreezeWindow struct {
	Start    *time.Time `json:"start,omitempty"`
	End      *time.Time `json:"end,omitempty"`
	Cron     string     `json:"cron,omitempty"` // minute hour day-of-month month day-of-week
	Duration Duration   `json:"duration,omitempty"`
	Reason   string     `json:"reason"`
}

// FreezeStatus is whether a freeze is active at the decision time.
type FreezeStatus struct {
	Active bool   `json:"active"`
	Reason string `json:"reason,omitempty"`
	EndsAt string `json:"ends_at,omitempty"` // RFC 3339
}

func (w FreezeWindow) check() error {
	switch {
	case w.Reason == "":
		return errors.New("reason: is required (it is what a denied deployer reads)")
	case w.Cron != "" && (w.Start != nil || w.End != nil):
		return errors.New("give start and end, or cron and duration, not both")
	case w.Cron != "":
		if _, err := parseCron(w.Cron); err != nil {
			return fmt.Errorf("cron: %w", err)
		}
		if w.Duration <= 0 || time.Duration(w.Duration) > 31*24*time.Hour {
			return errors.New("duration: want a positive duration of at most 31 days, e.g. \"62h\"")
		}
	case w.Start == nil || w.End == nil:
		return errors.New("start and end (RFC 3339), or cron and duration, are required")
	case !w.End.After(*w.Start):
		return errors.New("end: must be after start")
	}
	return nil
}

// FreezeAt returns the freeze in force at t: of the windows active then,
// the one ending last.
func FreezeAt(windows []FreezeWindow, t time.Time) FreezeStatus {
	var st FreezeStatus
	var end time.Time
	for _, w := range windows {
		start, ok := w.activeSince(t)
		if !ok {
			continue
		}
		e := start.Add(time.Duration(w.Duration))
		if w.End != nil {
			e = *w.End
		}
		if !st.Active || e.After(end) {
			st, end = FreezeStatus{Active: true, Reason: w.Reason, EndsAt: e.UTC().Format(time.RFC3339)}, e
		}
	}
	return st
}

// activeSince returns when the window's current occurrence began, if t is
// inside one.
func (w FreezeWindow) activeSince(t time.Time) (time.Time, bool) {
	t = t.UTC()
	if w.Cron == "" {
		return *w.Start, w.Start != nil && w.End != nil && !t.Before(*w.Start) && t.Before(*w.End)
	}
	c, err := parseCron(w.Cron)
	if err != nil {
		return time.Time{}, false
	}
	// The latest start at or before t within the duration, skipping
	// whole days and hours that cannot match.
	m := t.Truncate(time.Minute)
	for earliest := t.Add(-time.Duration(w.Duration)); m.After(earliest); {
		switch {
		case !c.dayMatches(m):
			m = time.Date(m.Year(), m.Month(), m.Day(), 0, 0, 0, 0, time.UTC).Add(-time.Minute)
		case !c.fields[1][m.Hour()]:
			m = m.Truncate(time.Hour).Add(-time.Minute)
		case c.fields[0][m.Minute()]:
			return m, true
		default:
			m = m.Add(-time.Minute)
		}
	}
	return time.Time{}, false
}

// cron is a parsed five-field schedule: which minutes, hours, days of the
// month, months and days of the week (0 = Sunday) match.
type cron struct {
	fields           [5]map[int]bool
	domStar, dowStar bool
}

var cronRanges = [5][2]int{{0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}

// parseCron parses "m h dom mon dow" with *, lists, ranges and steps.
func parseCron(spec string) (cron, error) {
	parts := strings.Fields(spec)
	if len(parts) != 5 {
		return cron{}, fmt.Errorf("%q: want five fields: minute hour day-of-month month day-of-week", spec)
	}
	var c cron
	names := []string{"minute", "hour", "day-of-month", "month", "day-of-week"}
	for i, p := range parts {
		set := map[int]bool{}
		lo, hi := cronRanges[i][0], cronRanges[i][1]
		for _, item := range strings.Split(p, ",") {
			rng, stepStr, hasStep := strings.Cut(item, "/")
			step := 1
			if hasStep {
				n, err := strconv.Atoi(stepStr)
				if err != nil || n <= 0 {
					return cron{}, fmt.Errorf("%s %q: bad step", names[i], item)
				}
				step = n
			}
			from, to := lo, hi
			if rng != "*" {
				a, b, isRange := strings.Cut(rng, "-")
				x, err := strconv.Atoi(a)
				if err != nil {
					return cron{}, fmt.Errorf("%s %q: not a number", names[i], item)
				}
				from, to = x, x
				if isRange {
					if to, err = strconv.Atoi(b); err != nil {
						return cron{}, fmt.Errorf("%s %q: not a range", names[i], item)
					}
				} else if hasStep {
					to = hi
				}
			}
			if from < lo || to > hi || from > to {
				return cron{}, fmt.Errorf("%s %q: outside %d-%d", names[i], item, lo, hi)
			}
			for v := from; v <= to; v += step {
				set[v] = true
			}
		}
		c.fields[i] = set
	}
	if c.fields[4][7] {
		c.fields[4][0] = true // 7 is Sunday too
	}
	c.domStar, c.dowStar = parts[2] == "*", parts[4] == "*"
	return c, nil
}

// dayMatches follows cron: when both day fields are restricted, either
// may match.
func (c cron) dayMatches(t time.Time) bool {
	if !c.fields[3][int(t.Month())] {
		return false
	}
	dom, dow := c.fields[2][t.Day()], c.fields[4][int(t.Weekday())]
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	}
	return dom || dow
}
