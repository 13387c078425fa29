// Package junit reads JUnit XML test reports into totals, per-suite counts
// and the first failing tests, and turns them into attestations.
//
// JUnit XML has no normative specification. This package follows the shape
// of the Ant JUnit schema as Maven Surefire writes it
// (https://maven.apache.org/surefire/maven-surefire-plugin/xsd/surefire-test-report-3.0.xsd)
// and the common dialects written by Gradle, pytest (--junitxml),
// go-junit-report and merge tools:
//
//   - The document holds one or more root elements, each <testsuites> or
//     <testsuite>; several roots arise when files are concatenated. Any other
//     root is rejected.
//   - A <testsuite> may sit in a <testsuites> or in another <testsuite>, and
//     a <testsuites> in a <testsuites>. A <testcase> belongs to the nearest
//     enclosing suite.
//   - A test case with a <failure> child is a failure, with an <error> child
//     an error (a case may be both), and with <skipped> and neither of those
//     skipped. Surefire's <flakyFailure>, <flakyError>, <rerunFailure> and
//     <rerunError> are not counted: a flaky test passed on a rerun, and a test
//     that failed every rerun also carries <failure> or <error>.
//   - The counts of a suite are, for each of tests, failures, errors and
//     skipped (or nose's skip), the larger of its attribute and the count
//     from its children, so a missing attribute is computed and a failing
//     test case cannot hide behind failures="0". Its time is the time
//     attribute, or else the sum of its children's. Attributes that are not
//     numbers are treated as absent; "1,234.5" and "0,5" are read as
//     Surefire and some locales write them.
//
// The input is streamed through encoding/xml: memory is bounded by the
// largest single token (Parser.MaxToken) and the kept failures and suites,
// not by the size of the report. Documents declaring ISO-8859-1 or US-ASCII
// are decoded; other encodings must be UTF-8.
package junit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vouch-dev/vouch/evidence"
)

// AttestationType is the attestation type of JUnit reports.
const AttestationType = "junit"

// Defaults of Parser.
const (
	// DefaultMaxFailures is how many failing test cases a report keeps.
	DefaultMaxFailures = 10
	// DefaultMaxSuites is how many suites a report lists.
	DefaultMaxSuites = 1000
	// DefaultMaxMessage is how many bytes of a failure message or detail
	// are kept.
	DefaultMaxMessage = 1024
	// DefaultMaxToken is the largest single XML token (an element with its
	// attributes, or a run of text such as <system-out>) read, in bytes.
	DefaultMaxToken = 64 << 20
)

const (
	maxDepth = 64      // element nesting read before giving up
	maxName  = 512     // bytes kept of suite, class, test and type names
	maxCount = 1 << 31 // largest count attribute believed
)

// ErrNotJUnit means the input is XML but not a JUnit report.
var ErrNotJUnit = errors.New("not a JUnit XML report")

// Counts are the outcomes of a group of test cases.
type Counts struct {
	Tests    int     `json:"tests"`
	Failures int     `json:"failures"`
	Errors   int     `json:"errors"`
	Skipped  int     `json:"skipped"`
	Time     float64 `json:"time"` // seconds
}

func (c *Counts) add(o Counts) {
	c.Tests += o.Tests
	c.Failures += o.Failures
	c.Errors += o.Errors
	c.Skipped += o.Skipped
	c.Time = roundTime(c.Time + o.Time)
}

// Suite is one <testsuite> and its counts, which include those of suites
// nested in it.
type Suite struct {
	Name string `json:"name"`
	Counts
}

// Failure is a failing test case: the first <failure> or <error> it holds.
type Failure struct {
	Suite     string `json:"suite,omitempty"`
	Classname string `json:"classname,omitempty"`
	Name      string `json:"name"`
	Kind      string `json:"kind"` // "failure" or "error"
	Type      string `json:"type,omitempty"`
	Message   string `json:"message,omitempty"` // the message attribute
	Detail    string `json:"detail,omitempty"`  // the start of the element's text, often a stack trace
}

// Report is what a JUnit report says.
type Report struct {
	Totals Counts `json:"totals"`
	// Suites lists the <testsuite> elements in document order.
	Suites        []Suite `json:"suites"`
	SuitesOmitted int     `json:"suites_omitted,omitempty"`
	// Failures lists the first failing test cases in document order.
	Failures        []Failure `json:"failures"`
	FailuresOmitted int       `json:"failures_omitted,omitempty"`
}

// Passed reports whether no test failed and none had an error. A report
// without tests passes; require Totals.Tests > 0 where that matters.
func (r Report) Passed() bool { return r.Totals.Failures == 0 && r.Totals.Errors == 0 }

// payload is the attestation payload: the totals at the top level, as the
// API documentation shows them, and the first failing tests.
type payload struct {
	Counts
	Failing        []Failure `json:"failing,omitempty"`
	FailingOmitted int       `json:"failing_omitted,omitempty"`
}

// Attestation returns the attestation of artifact digest named name that
// this report makes: type "junit", passed when Passed, and a payload with
// the totals and the first failing tests, shortened to fit
// evidence.MaxPayload.
func (r Report) Attestation(digest, name string) evidence.AttestationReport {
	passed := r.Passed()
	p := payload{Counts: r.Totals, Failing: r.Failures, FailingOmitted: r.FailuresOmitted}
	var b []byte
	for {
		b = marshal(p)
		if len(b) <= evidence.MaxPayload || len(p.Failing) == 0 {
			break
		}
		p.Failing = p.Failing[:len(p.Failing)/2]
		p.FailingOmitted = r.FailuresOmitted + len(r.Failures) - len(p.Failing)
	}
	return evidence.AttestationReport{Digest: digest, Name: name, Type: AttestationType, Passed: &passed, Payload: b}
}

// marshal encodes v as compact JSON without HTML escapes.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("junit: encode payload: " + err.Error()) // only strings and finite numbers: cannot fail
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Parser reads JUnit reports within limits. The zero Parser uses the
// Default* limits.
type Parser struct {
	MaxFailures int // failing test cases kept; DefaultMaxFailures when zero
	MaxSuites   int // suites listed; DefaultMaxSuites when zero
	MaxMessage  int // bytes kept of a failure message or detail; DefaultMaxMessage when zero
	MaxToken    int // largest XML token read; DefaultMaxToken when zero
}

func (p Parser) withDefaults() Parser {
	if p.MaxFailures <= 0 {
		p.MaxFailures = DefaultMaxFailures
	}
	if p.MaxSuites <= 0 {
		p.MaxSuites = DefaultMaxSuites
	}
	if p.MaxMessage <= 0 {
		p.MaxMessage = DefaultMaxMessage
	}
	if p.MaxToken <= 0 {
		p.MaxToken = DefaultMaxToken
	}
	return p
}

// Parse reads a JUnit report with the default limits.
func Parse(r io.Reader) (Report, error) { return Parser{}.Parse(r) }

// Merge combines reports, as of several files, with the default limits.
func Merge(reports ...Report) Report { return Parser{}.Merge(reports...) }

// Merge combines reports, as of several files: totals are summed, and
// suites and failures are listed in order up to the parser's limits.
func (p Parser) Merge(reports ...Report) Report {
	p = p.withDefaults()
	out := Report{Suites: []Suite{}, Failures: []Failure{}}
	for _, r := range reports {
		out.Totals.add(r.Totals)
		for _, s := range r.Suites {
			if len(out.Suites) < p.MaxSuites {
				out.Suites = append(out.Suites, s)
			} else {
				out.SuitesOmitted++
			}
		}
		out.SuitesOmitted += r.SuitesOmitted
		for _, f := range r.Failures {
			if len(out.Failures) < p.MaxFailures {
				out.Failures = append(out.Failures, f)
			} else {
				out.FailuresOmitted++
			}
		}
		out.FailuresOmitted += r.FailuresOmitted
	}
	return out
}

// Parse reads a JUnit report from r.
func (p Parser) Parse(r io.Reader) (Report, error) {
	p = p.withDefaults()
	tr := &tokenReader{r: bufio.NewReader(r), max: p.MaxToken}
	d := xml.NewDecoder(tr)
	d.CharsetReader = charsetReader
	st := state{p: p, report: Report{Suites: []Suite{}, Failures: []Failure{}}}
	roots := 0
	for {
		tr.n = 0
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errTokenTooLarge) {
				line, _ := d.InputPos()
				return Report{}, fmt.Errorf("junit: line %d: an XML token is larger than %d bytes", line, tr.max)
			}
			return Report{}, fmt.Errorf("junit: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(st.stack) == 0 && st.skip == 0 {
				if t.Name.Local != "testsuites" && t.Name.Local != "testsuite" {
					return Report{}, fmt.Errorf("junit: %w: the root element is <%s>, want <testsuites> or <testsuite>", ErrNotJUnit, t.Name.Local)
				}
				roots++
			}
			if len(st.stack)+st.skip >= maxDepth {
				line, _ := d.InputPos()
				return Report{}, fmt.Errorf("junit: line %d: elements nested deeper than %d", line, maxDepth)
			}
			st.start(t)
		case xml.EndElement:
			st.end()
		case xml.CharData:
			st.text(t)
		}
	}
	if roots == 0 {
		return Report{}, fmt.Errorf("junit: %w: no <testsuites> or <testsuite> element", ErrNotJUnit)
	}
	return st.report, nil
}

type frameKind int

const (
	suiteFrame  frameKind = iota // <testsuites> or <testsuite>
	caseFrame                    // <testcase>
	resultFrame                  // <failure> or <error> in a <testcase>
)

// frame is an element being read.
type frame struct {
	kind frameKind

	// suiteFrame
	name     string
	index    int    // in Report.Suites; -1 for <testsuites> and suites over the limit
	declared [4]int // tests, failures, errors, skipped attributes; -1 when absent
	time     float64
	hasTime  bool
	children Counts

	// caseFrame
	class                    string
	failed, errored, skipped bool
	first                    *Failure

	// resultFrame
	detail    []byte
	truncated bool
}

// state is the report being built while reading.
type state struct {
	p      Parser
	report Report
	stack  []*frame
	skip   int // depth inside elements that are not read
}

func (s *state) top() *frame {
	if len(s.stack) == 0 {
		return nil
	}
	return s.stack[len(s.stack)-1]
}

// suiteName returns the name of the nearest enclosing suite that has one.
func (s *state) suiteName() string {
	for i := len(s.stack) - 1; i >= 0; i-- {
		if f := s.stack[i]; f.kind == suiteFrame && f.name != "" {
			return f.name
		}
	}
	return ""
}

func (s *state) start(t xml.StartElement) {
	if s.skip > 0 {
		s.skip++
		return
	}
	top := s.top()
	local := t.Name.Local
	switch {
	case (top == nil || top.kind == suiteFrame) && (local == "testsuite" || local == "testsuites"):
		skipped := attr(t, "skipped")
		if skipped == "" {
			skipped = attr(t, "skip")
		}
		f := &frame{kind: suiteFrame, index: -1, name: clip(attr(t, "name"), maxName), declared: [4]int{
			count(attr(t, "tests")), count(attr(t, "failures")), count(attr(t, "errors")), count(skipped),
		}}
		f.time, f.hasTime = seconds(attr(t, "time"))
		if local == "testsuite" {
			if len(s.report.Suites) < s.p.MaxSuites {
				f.index = len(s.report.Suites)
				s.report.Suites = append(s.report.Suites, Suite{Name: f.name})
			} else {
				s.report.SuitesOmitted++
			}
		}
		s.stack = append(s.stack, f)
	case top != nil && top.kind == suiteFrame && local == "testcase":
		f := &frame{kind: caseFrame, name: clip(attr(t, "name"), maxName), class: clip(attr(t, "classname"), maxName)}
		f.time, _ = seconds(attr(t, "time"))
		s.stack = append(s.stack, f)
	case top != nil && top.kind == caseFrame && (local == "failure" || local == "error"):
		if local == "failure" {
			top.failed = true
		} else {
			top.errored = true
		}
		if top.first == nil {
			top.first = &Failure{
				Name: top.name, Classname: top.class, Kind: local,
				Type:    clip(attr(t, "type"), maxName),
				Message: clip(strings.TrimSpace(attr(t, "message")), s.p.MaxMessage),
			}
			s.stack = append(s.stack, &frame{kind: resultFrame})
			return
		}
		s.skip++
	case top != nil && top.kind == caseFrame && local == "skipped":
		top.skipped = true
		s.skip++
	default:
		// <properties>, <system-out>, <flakyFailure>, elements of other tools.
		s.skip++
	}
}

func (s *state) text(b []byte) {
	f := s.top()
	if s.skip > 0 || f == nil || f.kind != resultFrame || f.truncated {
		return
	}
	room := s.p.MaxMessage + 1 - len(f.detail) // one byte over to know it was cut
	if len(b) > room {
		b, f.truncated = b[:room], true
	}
	f.detail = append(f.detail, b...)
}

func (s *state) end() {
	if s.skip > 0 {
		s.skip--
		return
	}
	f := s.top()
	s.stack = s.stack[:len(s.stack)-1]
	parent := s.top()
	switch f.kind {
	case resultFrame:
		parent.first.Detail = clip(strings.TrimSpace(string(bytes.ToValidUTF8(f.detail, nil))), s.p.MaxMessage)
	case caseFrame:
		c := &parent.children
		c.Tests++
		if f.failed {
			c.Failures++
		}
		if f.errored {
			c.Errors++
		}
		if f.skipped && !f.failed && !f.errored {
			c.Skipped++
		}
		c.Time = roundTime(c.Time + f.time)
		if f.first != nil {
			if len(s.report.Failures) < s.p.MaxFailures {
				f.first.Suite = s.suiteName()
				s.report.Failures = append(s.report.Failures, *f.first)
			} else {
				s.report.FailuresOmitted++
			}
		}
	case suiteFrame:
		eff := f.children
		eff.Tests = max(eff.Tests, f.declared[0])
		eff.Failures = max(eff.Failures, f.declared[1])
		eff.Errors = max(eff.Errors, f.declared[2])
		eff.Skipped = max(eff.Skipped, f.declared[3])
		if f.hasTime {
			eff.Time = f.time
		}
		if f.index >= 0 {
			s.report.Suites[f.index].Counts = eff
		}
		if parent != nil {
			parent.children.add(eff)
		} else {
			s.report.Totals.add(eff)
		}
	}
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// count reads a count attribute: -1 when it is absent or not a count.
func count(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > maxCount {
		return -1
	}
	return n
}

// seconds reads a time attribute; ok is false when it is absent or not a
// duration. Surefire has written thousands separators ("1,234.5"); some
// tools write a decimal comma ("0,5").
func seconds(s string) (t float64, ok bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, ".") {
		s = strings.ReplaceAll(s, ",", "")
	} else if strings.Count(s, ",") == 1 {
		s = strings.Replace(s, ",", ".", 1)
	}
	t, err := strconv.ParseFloat(s, 64)
	if err != nil || t < 0 || math.IsInf(t, 0) || math.IsNaN(t) || t > 1e12 {
		return 0, false
	}
	return roundTime(t), true
}

// roundTime rounds to microseconds, so sums print as the inputs do.
func roundTime(t float64) float64 { return math.Round(t*1e6) / 1e6 }

// clip shortens s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
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

// tokenReader counts the bytes read since n was reset and fails beyond max,
// so that one token cannot take unbounded memory in the decoder.
type tokenReader struct {
	r      *bufio.Reader
	n, max int
}

var errTokenTooLarge = errors.New("XML token too large")

func (t *tokenReader) ReadByte() (byte, error) {
	if t.n >= t.max {
		return 0, errTokenTooLarge
	}
	t.n++
	return t.r.ReadByte()
}

func (t *tokenReader) Read(p []byte) (int, error) {
	if t.n >= t.max {
		return 0, errTokenTooLarge
	}
	p = p[:min(len(p), t.max-t.n)]
	n, err := t.r.Read(p)
	t.n += n
	return n, err
}

// charsetReader decodes the single-byte encodings JUnit writers other than
// UTF-8 use.
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii":
		return &latin1Reader{r: bufio.NewReader(r)}, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q: use UTF-8", charset)
}

// latin1Reader turns ISO-8859-1 into UTF-8 (US-ASCII is a subset).
type latin1Reader struct {
	r   io.ByteReader
	buf []byte
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(l.buf) > 0 {
			c := copy(p[n:], l.buf)
			l.buf, n = l.buf[c:], n+c
			continue
		}
		b, err := l.r.ReadByte()
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		if b < utf8.RuneSelf {
			p[n] = b
			n++
			continue
		}
		l.buf = utf8.AppendRune(l.buf[:0], rune(b))
	}
	return n, nil
}
