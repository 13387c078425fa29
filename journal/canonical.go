package journal

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonical returns the RFC 8785 canonical JSON encoding of v: object members
// sorted by their UTF-16 code units, no insignificant white space, minimal
// string escaping and ECMAScript number formatting. v is first marshalled
// with encoding/json, so struct tags apply.
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return CanonicalizeJSON(raw)
}

// CanonicalizeJSON re-encodes a JSON document in RFC 8785 canonical form.
// It rejects invalid JSON, invalid UTF-8, duplicate object keys, numbers
// outside the IEEE 754 double range, and trailing data.
func CanonicalizeJSON(raw []byte) ([]byte, error) {
	p := canonParser{in: raw}
	out, err := p.value(make([]byte, 0, len(raw)), 0)
	if err == nil {
		p.space()
		if p.pos != len(p.in) {
			err = p.errorf("data after the JSON document")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return out, nil
}

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
const maxDepth = 512

// canonParser is a small recursive-descent JSON parser that writes the
// canonical form as it goes. Strings and integers that are already
// canonical are copied as they are, the common case.
type canonParser struct {
	in      []byte
	pos     int
	lastKey string // the object key str read last
}

func (p *canonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *canonParser) space() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *canonParser) value(out []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d levels", maxDepth)
	}
	p.space()
	if p.pos >= len(p.in) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(out, depth)
	case c == '[':
		return p.array(out, depth)
	case c == '"':
		return p.str(out, false)
	case c == 't':
		return p.literal(out, "true")
	case c == 'f':
		return p.literal(out, "false")
	case c == 'n':
		return p.literal(out, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(out)
	default:
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *canonParser) literal(out []byte, lit string) ([]byte, error) {
	if len(p.in)-p.pos < len(lit) || string(p.in[p.pos:p.pos+len(lit)]) != lit {
		return nil, p.errorf("invalid literal")
	}
	p.pos += len(lit)
	return append(out, lit...), nil
}

// member is one object member written to the output: its key (decoded,
// for ordering) and the span of `"key":value` in the output.
type member struct {
	key        string
	start, end int
}

// object writes the members in input order, then reorders them in place
// if they were not already sorted (structs marshalled by Go usually are
// not; re-sorting is a copy of the object's span).
func (p *canonParser) object(out []byte, depth int) ([]byte, error) {
	p.pos++ // '{'
	out = append(out, '{')
	p.space()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return append(out, '}'), nil
	}
	var members []member
	sorted := true
	for {
		p.space()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return nil, p.errorf("expected a string key")
		}
		start := len(out)
		var err error
		if out, err = p.str(out, true); err != nil {
			return nil, err
		}
		key := p.lastKey
		p.space()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return nil, p.errorf("expected ':' after object key")
		}
		p.pos++
		out = append(out, ':')
		if out, err = p.value(out, depth+1); err != nil {
			return nil, err
		}
		if n := len(members); n > 0 && !lessUTF16(members[n-1].key, key) {
			sorted = false
		}
		members = append(members, member{key, start, len(out)})
		p.space()
		if p.pos >= len(p.in) {
			return nil, p.errorf("unexpected end of input in object")
		}
		if p.in[p.pos] == ',' {
			p.pos++
			out = append(out, ',')
			continue
		}
		if p.in[p.pos] != '}' {
			return nil, p.errorf("expected ',' or '}' in object")
		}
		p.pos++
		break
	}
	if !sorted {
		sort.Stable(byKey(members))
		first := members[0].start
		for _, m := range members { // spans are still in input order here
			if m.start < first {
				first = m.start
			}
		}
		body := append([]byte(nil), out[first:]...)
		out = out[:first]
		for i, m := range members {
			if i > 0 {
				if m.key == members[i-1].key {
					return nil, fmt.Errorf("duplicate object key %q", m.key)
				}
				out = append(out, ',')
			}
			out = append(out, body[m.start-first:m.end-first]...)
		}
	}
	return append(out, '}'), nil
}

func (p *canonParser) array(out []byte, depth int) ([]byte, error) {
	p.pos++ // '['
	out = append(out, '[')
	p.space()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return append(out, ']'), nil
	}
	for i := 0; ; i++ {
		if i > 0 {
			out = append(out, ',')
		}
		var err error
		if out, err = p.value(out, depth+1); err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.in) {
			return nil, p.errorf("unexpected end of input in array")
		}
		if p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.in[p.pos] != ']' {
			return nil, p.errorf("expected ',' or ']' in array")
		}
		p.pos++
		return append(out, ']'), nil
	}
}

// str writes a string in canonical form; for an object key it leaves the
// decoded key in p.lastKey. Strings without escapes are copied as they are.
func (p *canonParser) str(out []byte, key bool) ([]byte, error) {
	start := p.pos
	p.pos++ // '"'
	escaped := false
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			quoted := p.in[start:p.pos]
			if !utf8.Valid(quoted) {
				return nil, p.errorf("invalid UTF-8 in string")
			}
			if !escaped {
				if key {
					p.lastKey = string(quoted[1 : len(quoted)-1])
				}
				return append(out, quoted...), nil
			}
			var s string
			if err := json.Unmarshal(quoted, &s); err != nil {
				return nil, p.errorf("invalid string escape")
			}
			p.lastKey = s
			return appendCanonicalString(out, s), nil
		case c == '\\':
			escaped = true
			p.pos += 2
		case c < 0x20:
			return nil, p.errorf("control character in string")
		default:
			p.pos++
		}
	}
	return nil, p.errorf("unterminated string")
}

func (p *canonParser) number(out []byte) ([]byte, error) {
	start := p.pos
	if p.in[p.pos] == '-' {
		p.pos++
	}
	digits := p.pos
	switch {
	case p.pos < len(p.in) && p.in[p.pos] == '0':
		p.pos++
	case p.pos < len(p.in) && p.in[p.pos] >= '1' && p.in[p.pos] <= '9':
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
		}
	default:
		return nil, p.errorf("invalid number")
	}
	intLen := p.pos - digits
	simple := true
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		simple = false
		p.pos++
		if !p.digits() {
			return nil, p.errorf("invalid number")
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		simple = false
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if !p.digits() {
			return nil, p.errorf("invalid number")
		}
	}
	text := p.in[start:p.pos]
	// Integers below 2^53 are already in canonical form, except -0.
	if simple && intLen <= 15 && string(text) != "-0" {
		return append(out, text...), nil
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %s is outside the IEEE 754 double range", text)
	}
	return appendCanonicalNumber(out, f), nil
}

func (p *canonParser) digits() bool {
	start := p.pos
	for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
		p.pos++
	}
	return p.pos > start
}

// appendCanonicalNumber writes f as ECMAScript's Number.prototype.toString.
func appendCanonicalNumber(out []byte, f float64) []byte {
	if f == 0 {
		return append(out, '0') // also for -0
	}
	abs := math.Abs(f)
	if abs >= 1e21 || abs < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64) // e.g. 1e+21, 1e-07
		i := 0
		for s[i] != 'e' {
			i++
		}
		out = append(out, s[:i+2]...) // mantissa, 'e', sign
		exp := s[i+2:]
		for len(exp) > 1 && exp[0] == '0' {
			exp = exp[1:]
		}
		return append(out, exp...)
	}
	return strconv.AppendFloat(out, f, 'f', -1, 64)
}

// appendCanonicalString writes s with RFC 8785 escaping: only '"', '\' and
// control characters are escaped; everything else is raw UTF-8.
func appendCanonicalString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c >= 0x20:
			out = append(out, c)
		case c == '\b':
			out = append(out, '\\', 'b')
		case c == '\t':
			out = append(out, '\\', 't')
		case c == '\n':
			out = append(out, '\\', 'n')
		case c == '\f':
			out = append(out, '\\', 'f')
		case c == '\r':
			out = append(out, '\\', 'r')
		default:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	return append(out, '"')
}

// byKey sorts members by key.
type byKey []member

func (m byKey) Len() int           { return len(m) }
func (m byKey) Less(i, j int) bool { return lessUTF16(m[i].key, m[j].key) }
func (m byKey) Swap(i, j int)      { m[i], m[j] = m[j], m[i] }

// lessUTF16 orders strings by their UTF-16 code units, as RFC 8785 requires.
// UTF-8 byte order is code point order, which differs from UTF-16 order
// only between supplementary characters (lead byte F0-F4) and U+E000-U+FFFF
// (lead bytes EE, EF); only then are the strings converted.
func lessUTF16(a, b string) bool {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) || i == len(b) {
		return len(a) < len(b)
	}
	if a[i] < 0xEE && b[i] < 0xEE {
		return a[i] < b[i]
	}
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}
