package drift

import (
	"context"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/vouch-dev/vouch/journal"
)

// Decision is an admission decision as the stores index it: who changed
// what, where, with which images, and whether it was admitted. The
// journal entry (Index) holds the whole record.
type Decision struct {
	Index       uint64    `json:"journal_index"`
	Time        time.Time `json:"time"`
	Environment string    `json:"environment"`
	Namespace   string    `json:"namespace"`
	Kind        string    `json:"kind"`
	Name        string    `json:"name"`
	User        string    `json:"user"`
	UID         string    `json:"uid"`
	Allowed     bool      `json:"allowed"`
	Images      []string  `json:"images"`
	Messages    []string  `json:"messages,omitempty"`
	// Digests are the distinct image digests of the decision; stores
	// index them to find every decision about an artifact.
	Digests []string `json:"digests,omitempty"`
}

// ParseDecision reads the indexed fields of an admission entry; ok is
// false for other entries.
func ParseDecision(e journal.Entry) (d Decision, ok bool) {
	if e.Kind != journal.KindAdmission {
		return Decision{}, false
	}
	var b struct {
		UID         string `json:"uid"`
		Kind        string `json:"kind"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		User        string `json:"user"`
		Environment string `json:"environment"`
		Allowed     bool   `json:"allowed"`
		Images      []struct {
			Image  string `json:"image"`
			Digest string `json:"digest"`
		} `json:"images"`
		Messages []string `json:"messages"`
	}
	// goccy/go-json, as AdmittedDigests: this runs for every admission journaled.
	if gojson.Unmarshal(e.Body, &b) != nil {
		return Decision{}, false
	}
	env := b.Environment
	if env == "" {
		env = e.Environment
	}
	d = Decision{Index: e.Index, Time: e.Time, Environment: env, Namespace: b.Namespace, Kind: b.Kind, Name: b.Name,
		User: b.User, UID: b.UID, Allowed: b.Allowed, Messages: b.Messages}
	seen := map[string]bool{}
	for _, i := range b.Images {
		d.Images = append(d.Images, i.Image)
		if i.Digest != "" && !seen[i.Digest] {
			seen[i.Digest] = true
			d.Digests = append(d.Digests, i.Digest)
		}
	}
	return d, true
}

// JoinLines and SplitLines store a list of single-line strings (images,
// messages) in one text column, one per line.
func JoinLines(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ReplaceAll(s, "\n", " ")
	}
	return strings.Join(out, "\n")
}

// SplitLines is the inverse of JoinLines.
func SplitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// DecisionQuery selects indexed admission decisions, newest first. Empty
// fields match everything.
type DecisionQuery struct {
	Environment string
	Namespace   string
	Allowed     *bool
	// Digest keeps the decisions whose images include this digest.
	Digest string
	// Text keeps the decisions whose namespace, kind, name, user, UID,
	// images or messages contain it (ASCII letters in any case).
	Text string
	// From and Before bound the journal indices: From <= index < Before
	// (Before 0: no upper bound).
	From, Before uint64
	Limit        int // DefaultDecisionLimit when 0, at most MaxDecisionLimit
	// Scan bounds the cost of a Text search: at most this many decisions
	// matching the other fields are examined (DefaultDecisionScan when 0).
	Scan int
}

// Decision query bounds.
const (
	DefaultDecisionLimit = 50
	MaxDecisionLimit     = 1000
	DefaultDecisionScan  = 20000
)

// EffectiveLimit returns the page size q asks for.
func (q DecisionQuery) EffectiveLimit() int {
	switch {
	case q.Limit <= 0:
		return DefaultDecisionLimit
	case q.Limit > MaxDecisionLimit:
		return MaxDecisionLimit
	}
	return q.Limit
}

// EffectiveScan returns how many candidates a Text search examines.
func (q DecisionQuery) EffectiveScan() int {
	if q.Scan <= 0 {
		return DefaultDecisionScan
	}
	return q.Scan
}

// DecisionPage is a page of decisions, newest first.
type DecisionPage struct {
	Decisions []Decision
	// Next is the Before of the following (older) page; 0 when there is
	// none.
	Next uint64
	// Exhausted is set when a Text search examined its Scan candidates
	// before filling the page: decisions before Next were not searched.
	Exhausted bool
}

// DecisionStore finds admission decisions.
type DecisionStore interface {
	Decisions(ctx context.Context, q DecisionQuery) (DecisionPage, error)
}

// LikePattern returns the SQL LIKE pattern that matches strings
// containing text, with '\' as the escape character.
func LikePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(text) + "%"
}
