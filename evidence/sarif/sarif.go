// Package sarif reads SARIF 2.1.0 logs of static analysis tools into
// counts per level and per tool and the most severe findings, and turns them
// into attestations.
//
// It follows the OASIS Static Analysis Results Interchange Format (SARIF)
// Version 2.1.0 (https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html),
// as Trivy, Semgrep, CodeQL, gosec and others write it:
//
//   - The log is a JSON object with "version": "2.1.0" and "runs"; anything
//     else is rejected with ErrNotSARIF.
//   - Each result's level (§3.27.10) is its "level"; when absent, "none" if
//     its "kind" is present and not "fail"; otherwise the
//     defaultConfiguration.level of its rule (§3.49.14) found through
//     ruleIndex, rule.index, rule.toolComponent, ruleId or rule.id (a
//     hierarchical id "A/B" falls back to "A") in tool.driver.rules or
//     tool.extensions[].rules; otherwise "warning". Levels other than
//     error, warning, note and none are rejected. Configuration overrides in
//     invocations are not applied.
//   - A result with a suppression (§3.27.23) whose status is absent or
//     "accepted" is suppressed: counted in Report.Suppressed, not by level.
//
// The log is streamed: memory is bounded by the largest single value read
// at once (a run's tool, one result; Parser.MaxValue) and the findings
// kept, not by the number of results. When a run's results come before its
// tool (as after jq -S), results whose level needs the rules are held
// grouped by rule until the tool is read.
package sarif

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vouch-dev/vouch/evidence"
)

// AttestationType is the attestation type of SARIF logs.
const AttestationType = "sarif"

// Result levels (§3.27.10), most severe first.
const (
	LevelError   = "error"
	LevelWarning = "warning"
	LevelNote    = "note"
	LevelNone    = "none"
)

// rank orders levels, most severe first.
var rank = map[string]int{LevelError: 0, LevelWarning: 1, LevelNote: 2, LevelNone: 3}

// FailOn is the level from which results fail an attestation.
type FailOn string

// Thresholds.
const (
	FailOnError   FailOn = "error"   // fail on errors
	FailOnWarning FailOn = "warning" // fail on errors and warnings
	FailOnNote    FailOn = "note"    // fail on errors, warnings and notes
	// FailOnNone never fails: results of level none are informational (a
	// rule that passed, or did not apply), as with GitHub code scanning's
	// "None" threshold.
	FailOnNone FailOn = "none"
	// DefaultFailOn is the threshold of the zero FailOn.
	DefaultFailOn = FailOnError
)

// ParseFailOn reads a threshold: error, warning, note or none.
func ParseFailOn(s string) (FailOn, error) {
	switch f := FailOn(s); f {
	case FailOnError, FailOnWarning, FailOnNote, FailOnNone:
		return f, nil
	}
	return "", fmt.Errorf("sarif: fail-on %q is not error, warning, note or none", s)
}

// ErrNotSARIF means the input is not a SARIF 2.1.0 log.
var ErrNotSARIF = errors.New("not a SARIF 2.1.0 log")

// Defaults of Parser.
const (
	DefaultMaxFindings = 10       // findings kept
	DefaultMaxMessage  = 512      // bytes kept of a message
	DefaultMaxValue    = 64 << 20 // largest JSON value read at once, in bytes
)

const (
	maxName  = 256 // bytes kept of tool names and rule ids
	maxDepth = 1000
)

// Counts are results by level.
type Counts struct {
	Error   int `json:"error"`
	Warning int `json:"warning"`
	Note    int `json:"note"`
	None    int `json:"none"`
}

func (c *Counts) add(level string, n int) {
	switch level {
	case LevelError:
		c.Error += n
	case LevelWarning:
		c.Warning += n
	case LevelNote:
		c.Note += n
	default:
		c.None += n
	}
}

// Tool is the results of one tool (tool.driver.name), over all its runs.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Counts
}

// Finding is one result.
type Finding struct {
	Tool     string `json:"tool"`
	RuleID   string `json:"rule_id,omitempty"`
	Level    string `json:"level"`
	Message  string `json:"message"`
	Location string `json:"location,omitempty"` // uri:line:column, or a logical location
}

// Report is what a SARIF log says.
type Report struct {
	Totals     Counts `json:"totals"`
	Suppressed int    `json:"suppressed"`
	Tools      []Tool `json:"tools"`
	// Findings are the most severe results, in document order within a
	// level, at most Parser.MaxFindings; suppressed results are not listed.
	Findings []Finding `json:"findings"`
}

// Passed reports whether no result reaches the threshold failOn. An unknown
// threshold fails; the zero FailOn is DefaultFailOn.
func (r Report) Passed(failOn FailOn) bool {
	t := r.Totals
	switch failOn {
	case FailOnError, "":
		return t.Error == 0
	case FailOnWarning:
		return t.Error+t.Warning == 0
	case FailOnNote:
		return t.Error+t.Warning+t.Note == 0
	case FailOnNone:
		return true
	}
	return false
}

// payload is the attestation payload.
type payload struct {
	FailOn FailOn `json:"fail_on"`
	Counts
	Suppressed int       `json:"suppressed"`
	Tools      []Tool    `json:"tools"`
	Findings   []Finding `json:"findings"`
}

// Attestation returns the attestation of artifact digest named name that
// this report makes with threshold failOn: type "sarif", passed when
// Passed(failOn), and a payload with the threshold, the counts, the tools
// and the top findings.
func (r Report) Attestation(digest, name string, failOn FailOn) evidence.AttestationReport {
	if failOn == "" {
		failOn = DefaultFailOn
	}
	passed := r.Passed(failOn)
	p := payload{FailOn: failOn, Counts: r.Totals, Suppressed: r.Suppressed, Tools: r.Tools, Findings: r.Findings}
	if p.Tools == nil {
		p.Tools = []Tool{}
	}
	if p.Findings == nil {
		p.Findings = []Finding{}
	}
	var b []byte
	for {
		b = marshal(p)
		if len(b) <= evidence.MaxPayload || len(p.Findings) == 0 && len(p.Tools) == 0 {
			break
		}
		// Only with very large limits: keep the most severe findings.
		if len(p.Findings) > 0 {
			p.Findings = p.Findings[:len(p.Findings)/2]
		} else {
			p.Tools = p.Tools[:len(p.Tools)/2]
		}
	}
	return evidence.AttestationReport{Digest: digest, Name: name, Type: AttestationType, Passed: &passed, Payload: b}
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("sarif: encode payload: " + err.Error()) // only strings and integers: cannot fail
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Parser reads SARIF logs within limits. The zero Parser uses the Default*
// limits.
type Parser struct {
	MaxFindings int // findings kept; DefaultMaxFindings when zero
	MaxMessage  int // bytes kept of a message; DefaultMaxMessage when zero
	MaxValue    int // largest JSON value read at once; DefaultMaxValue when zero
}

// Parse reads a SARIF log with the default limits.
func Parse(r io.Reader) (Report, error) { return Parser{}.Parse(r) }

// Parse reads a SARIF log from r.
func (p Parser) Parse(r io.Reader) (Report, error) {
	if p.MaxFindings <= 0 {
		p.MaxFindings = DefaultMaxFindings
	}
	if p.MaxMessage <= 0 {
		p.MaxMessage = DefaultMaxMessage
	}
	if p.MaxValue <= 0 {
		p.MaxValue = DefaultMaxValue
	}
	lr := &valueReader{r: bufio.NewReader(r), max: p.MaxValue}
	s := &state{p: p, lr: lr, dec: json.NewDecoder(lr), report: Report{Tools: []Tool{}}}
	rep, err := s.log()
	if err != nil {
		if errors.Is(err, errValueTooLarge) {
			return Report{}, fmt.Errorf("sarif: offset %d: a JSON value is larger than %d bytes", s.dec.InputOffset(), p.MaxValue)
		}
		return Report{}, fmt.Errorf("sarif: %w", err)
	}
	return rep, nil
}

// valueReader counts the bytes read since n was reset and fails beyond max,
// so that one JSON value cannot take unbounded memory in the decoder.
type valueReader struct {
	r      io.Reader
	n, max int
}

var errValueTooLarge = errors.New("JSON value too large")

func (v *valueReader) Read(p []byte) (int, error) {
	if v.n >= v.max {
		return 0, errValueTooLarge
	}
	p = p[:min(len(p), v.max-v.n)]
	n, err := v.r.Read(p)
	v.n += n
	return n, err
}

type state struct {
	p      Parser
	lr     *valueReader
	dec    *json.Decoder
	report Report
	top    []candidate // the most severe findings so far, in (rank, seq) order
	seq    int
}

type candidate struct {
	rank, seq, run int
	f              Finding
}

func (s *state) token() (json.Token, error) {
	s.lr.n = 0
	t, err := s.dec.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return t, err
}

func (s *state) decode(v any) error {
	s.lr.n = 0
	return s.dec.Decode(v)
}

func (s *state) log() (Report, error) {
	t, err := s.dec.Token()
	if err == io.EOF {
		return Report{}, fmt.Errorf("%w: empty input", ErrNotSARIF)
	}
	if err != nil {
		return Report{}, fmt.Errorf("%w: %w", ErrNotSARIF, err)
	}
	if t != json.Delim('{') {
		return Report{}, fmt.Errorf("%w: not a JSON object", ErrNotSARIF)
	}
	var version *string
	runs := false
	for s.dec.More() {
		key, err := s.key()
		if err != nil {
			return Report{}, err
		}
		switch key {
		case "version":
			t, err := s.token()
			if err != nil {
				return Report{}, err
			}
			v, ok := t.(string)
			if !ok {
				return Report{}, fmt.Errorf("%w: version is %v, want \"2.1.0\"", ErrNotSARIF, t)
			}
			version = &v
			if v != "2.1.0" {
				return Report{}, fmt.Errorf("%w: version %q is not supported", ErrNotSARIF, v)
			}
		case "runs":
			runs = true
			if err := s.array("runs", s.run); err != nil {
				return Report{}, err
			}
		default:
			if err := s.skip(); err != nil {
				return Report{}, err
			}
		}
	}
	if _, err := s.token(); err != nil { // '}'
		return Report{}, err
	}
	if _, err := s.dec.Token(); err != io.EOF {
		return Report{}, fmt.Errorf("data after the log at offset %d", s.dec.InputOffset())
	}
	if version == nil {
		return Report{}, fmt.Errorf("%w: no version", ErrNotSARIF)
	}
	if !runs {
		return Report{}, fmt.Errorf("%w: no runs", ErrNotSARIF)
	}
	s.report.Findings = make([]Finding, len(s.top))
	for i, c := range s.top {
		s.report.Findings[i] = c.f
	}
	return s.report, nil
}

func (s *state) key() (string, error) {
	t, err := s.token()
	if err != nil {
		return "", err
	}
	k, ok := t.(string)
	if !ok {
		return "", fmt.Errorf("offset %d: want an object key, got %v", s.dec.InputOffset(), t)
	}
	return k, nil
}

// array reads an array (or null) calling elem for each element's index.
func (s *state) array(what string, elem func(i int) error) error {
	t, err := s.token()
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('[') {
		return fmt.Errorf("%s is %v, want an array", what, t)
	}
	for i := 0; s.dec.More(); i++ {
		if err := elem(i); err != nil {
			return err
		}
	}
	_, err = s.token() // ']'
	return err
}

// skip reads past one value, token by token, so that a large value is not
// held whole.
func (s *state) skip() error {
	depth := 0
	for {
		t, err := s.token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			if depth++; depth > maxDepth {
				return fmt.Errorf("offset %d: values nested deeper than %d", s.dec.InputOffset(), maxDepth)
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// The parts of a run read.
type (
	tool struct {
		Driver     component   `json:"driver"`
		Extensions []component `json:"extensions"`
	}
	component struct {
		Name            string `json:"name"`
		Version         string `json:"version"`
		SemanticVersion string `json:"semanticVersion"`
		Rules           []rule `json:"rules"`
	}
	rule struct {
		ID                   string `json:"id"`
		DefaultConfiguration *struct {
			Level *string `json:"level"`
		} `json:"defaultConfiguration"`
	}
	result struct {
		RuleID    string `json:"ruleId"`
		RuleIndex *int   `json:"ruleIndex"`
		Rule      *struct {
			ID            string `json:"id"`
			Index         *int   `json:"index"`
			ToolComponent *struct {
				Name  string `json:"name"`
				Index *int   `json:"index"`
			} `json:"toolComponent"`
		} `json:"rule"`
		Level   *string `json:"level"`
		Kind    *string `json:"kind"`
		Message struct {
			Text     string `json:"text"`
			Markdown string `json:"markdown"`
			ID       string `json:"id"`
		} `json:"message"`
		Locations []struct {
			PhysicalLocation *struct {
				ArtifactLocation *struct {
					URI string `json:"uri"`
				} `json:"artifactLocation"`
				Region *struct {
					StartLine   int `json:"startLine"`
					StartColumn int `json:"startColumn"`
				} `json:"region"`
			} `json:"physicalLocation"`
			LogicalLocations []struct {
				Name               string `json:"name"`
				FullyQualifiedName string `json:"fullyQualifiedName"`
			} `json:"logicalLocations"`
		} `json:"locations"`
		Suppressions []struct {
			Status string `json:"status"`
		} `json:"suppressions"`
	}
)

// ruleRef is how a result names its rule.
type ruleRef struct {
	component     int    // index into tool.extensions; -1 for the driver
	componentName string // when named rather than indexed
	index         int    // -1 when absent
	id            string
}

// pending is the results of one rule whose level waits for the tool.
type pending struct {
	n     int
	first []candidate // the first MaxFindings, rank unset
}

// run reads one run.
func (s *state) run(i int) error {
	t, err := s.token()
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		return fmt.Errorf("run %d is %v, want an object", i, t)
	}
	var (
		tl      *tool
		counts  Counts
		waiting = map[ruleRef]*pending{}
		order   []ruleRef // of waiting, for a stable result
	)
	for s.dec.More() {
		key, err := s.key()
		if err != nil {
			return err
		}
		switch key {
		case "tool":
			tl = new(tool)
			if err := s.decode(tl); err != nil {
				return fmt.Errorf("run %d: tool: %w", i, err)
			}
			if err := tl.check(); err != nil {
				return fmt.Errorf("run %d: %w", i, err)
			}
		case "results":
			err := s.array(fmt.Sprintf("run %d results", i), func(j int) error {
				var r result
				if err := s.decode(&r); err != nil {
					return fmt.Errorf("run %d: result %d: %w", i, j, err)
				}
				if r.suppressed() {
					s.report.Suppressed++
					return nil
				}
				ref := r.ref()
				level, known, err := r.level()
				if err != nil {
					return fmt.Errorf("run %d: result %d: %w", i, j, err)
				}
				f := s.finding(r)
				s.seq++
				if !known && tl != nil {
					level, known = tl.level(ref), true
				}
				if known {
					counts.add(level, 1)
					f.Level = level
					s.offer(candidate{rank: rank[level], seq: s.seq, run: i, f: f})
					return nil
				}
				w := waiting[ref]
				if w == nil {
					w = &pending{}
					waiting[ref] = w
					order = append(order, ref)
				}
				w.n++
				if len(w.first) < s.p.MaxFindings {
					w.first = append(w.first, candidate{seq: s.seq, run: i, f: f})
				}
				return nil
			})
			if err != nil {
				return err
			}
		default:
			if err := s.skip(); err != nil {
				return err
			}
		}
	}
	if _, err := s.token(); err != nil { // '}'
		return err
	}
	if tl == nil {
		return fmt.Errorf("%w: run %d has no tool", ErrNotSARIF, i)
	}
	for _, ref := range order {
		w := waiting[ref]
		level := tl.level(ref)
		counts.add(level, w.n)
		for _, c := range w.first {
			c.rank, c.f.Level = rank[level], level
			s.offer(c)
		}
	}
	name := clip(tl.Driver.Name, maxName)
	version := tl.Driver.Version
	if version == "" {
		version = tl.Driver.SemanticVersion
	}
	s.report.Totals.add(LevelError, counts.Error)
	s.report.Totals.add(LevelWarning, counts.Warning)
	s.report.Totals.add(LevelNote, counts.Note)
	s.report.Totals.add(LevelNone, counts.None)
	k := slices.IndexFunc(s.report.Tools, func(t Tool) bool { return t.Name == name })
	if k < 0 {
		s.report.Tools = append(s.report.Tools, Tool{Name: name, Version: clip(version, maxName)})
		k = len(s.report.Tools) - 1
	}
	tc := &s.report.Tools[k].Counts
	tc.Error += counts.Error
	tc.Warning += counts.Warning
	tc.Note += counts.Note
	tc.None += counts.None
	for j := range s.top {
		if s.top[j].run == i {
			s.top[j].f.Tool = name
		}
	}
	return nil
}

// offer keeps c if it is among the MaxFindings most severe.
func (s *state) offer(c candidate) {
	i, _ := slices.BinarySearchFunc(s.top, c, func(a, b candidate) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return a.seq - b.seq
	})
	if i >= s.p.MaxFindings {
		return
	}
	s.top = slices.Insert(s.top, i, c)
	if len(s.top) > s.p.MaxFindings {
		s.top = s.top[:s.p.MaxFindings]
	}
}

// check rejects default levels that are not SARIF levels.
func (t *tool) check() error {
	for _, c := range append([]component{t.Driver}, t.Extensions...) {
		for _, r := range c.Rules {
			if d := r.DefaultConfiguration; d != nil && d.Level != nil {
				if _, ok := rank[*d.Level]; !ok {
					return fmt.Errorf("rule %q: defaultConfiguration.level %q is not error, warning, note or none", r.ID, *d.Level)
				}
			}
		}
	}
	return nil
}

// level is the default level of the rule ref names: its
// defaultConfiguration.level, else "warning".
func (t *tool) level(ref ruleRef) string {
	c := &t.Driver
	switch {
	case ref.component >= 0 && ref.component < len(t.Extensions):
		c = &t.Extensions[ref.component]
	case ref.component >= 0:
		return LevelWarning
	case ref.componentName != "" && ref.componentName != t.Driver.Name:
		k := slices.IndexFunc(t.Extensions, func(e component) bool { return e.Name == ref.componentName })
		if k < 0 {
			return LevelWarning
		}
		c = &t.Extensions[k]
	}
	k := -1
	if ref.index >= 0 && ref.index < len(c.Rules) {
		k = ref.index
	} else {
		// A hierarchical rule id "A/B" names a rule "A/B", or else "A".
		for id := ref.id; k < 0 && id != ""; {
			k = slices.IndexFunc(c.Rules, func(r rule) bool { return r.ID == id })
			id, _, _ = cutLast(id, "/")
		}
	}
	if k >= 0 {
		if d := c.Rules[k].DefaultConfiguration; d != nil && d.Level != nil {
			return *d.Level
		}
	}
	return LevelWarning
}

// cutLast slices s around the last sep; before is "" when there is none.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return "", s, false
}

func (r *result) ref() ruleRef {
	ref := ruleRef{component: -1, index: -1, id: r.RuleID}
	if r.RuleIndex != nil {
		ref.index = *r.RuleIndex
	}
	if r.Rule != nil {
		if r.Rule.Index != nil {
			ref.index = *r.Rule.Index
		}
		if ref.id == "" {
			ref.id = r.Rule.ID
		}
		if tc := r.Rule.ToolComponent; tc != nil {
			if tc.Index != nil && *tc.Index >= 0 {
				ref.component = *tc.Index
			} else {
				ref.componentName = tc.Name
			}
		}
	}
	return ref
}

// level is the result's own level, or known false when it comes from its
// rule.
func (r *result) level() (level string, known bool, err error) {
	if r.Level != nil {
		if _, ok := rank[*r.Level]; !ok {
			return "", false, fmt.Errorf("level %q is not error, warning, note or none", *r.Level)
		}
		return *r.Level, true, nil
	}
	if r.Kind != nil && *r.Kind != "fail" {
		return LevelNone, true, nil
	}
	return "", false, nil
}

func (r *result) suppressed() bool {
	for _, s := range r.Suppressions {
		if s.Status == "" || s.Status == "accepted" {
			return true
		}
	}
	return false
}

func (s *state) finding(r result) Finding {
	f := Finding{RuleID: clip(r.RuleID, maxName)}
	if f.RuleID == "" && r.Rule != nil {
		f.RuleID = clip(r.Rule.ID, maxName)
	}
	switch {
	case r.Message.Text != "":
		f.Message = r.Message.Text
	case r.Message.Markdown != "":
		f.Message = r.Message.Markdown
	case r.Message.ID != "":
		f.Message = "message " + r.Message.ID
	}
	f.Message = clip(strings.TrimSpace(f.Message), s.p.MaxMessage)
	if len(r.Locations) > 0 {
		l := r.Locations[0]
		if pl := l.PhysicalLocation; pl != nil && pl.ArtifactLocation != nil && pl.ArtifactLocation.URI != "" {
			f.Location = pl.ArtifactLocation.URI
			if pl.Region != nil && pl.Region.StartLine > 0 {
				f.Location += ":" + strconv.Itoa(pl.Region.StartLine)
				if pl.Region.StartColumn > 0 {
					f.Location += ":" + strconv.Itoa(pl.Region.StartColumn)
				}
			}
		} else if len(l.LogicalLocations) > 0 {
			f.Location = l.LogicalLocations[0].FullyQualifiedName
			if f.Location == "" {
				f.Location = l.LogicalLocations[0].Name
			}
		}
		f.Location = clip(f.Location, s.p.MaxMessage)
	}
	return f
}

// clip shortens s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	const mark = "…"
	i := max(n-len(mark), 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + mark
}
