package journal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kind names what an entry records.
type Kind string

// Kinds written by Vouch itself. Other packages define the kinds they own.
const (
	KindAdmission Kind = "admission"
)

// Hash is a SHA-256 hash: a leaf hash or a tree node hash.
type Hash [sha256.Size]byte

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash as lower-case hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a hex hash.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*sha256.Size {
		return fmt.Errorf("hash: want %d hex characters, got %d", 2*sha256.Size, len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// LeafHash returns the RFC 6962 leaf hash of data: SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Entry is one record of the journal.
//
// Index, Leaf and LeafHash are set when the entry is appended. The leaf is the
// canonical JSON of the entry's kind, time, environment, key and body; the
// index is not part of it, since it is the leaf's position in the tree.
type Entry struct {
	Index       uint64    `json:"index"`
	Kind        Kind      `json:"kind"`
	Time        time.Time `json:"time"`
	Environment string    `json:"environment,omitempty"`
	// Key makes an append idempotent: a second entry with the same key is
	// not appended, the first is returned instead.
	Key      string          `json:"key,omitempty"`
	Body     json.RawMessage `json:"body"`
	LeafHash Hash            `json:"leaf_hash"`
	// Leaf is the canonical encoding the leaf hash is computed over.
	Leaf []byte `json:"-"`
}

// leaf is the hashed part of an entry, as ParseLeaf reads it.
type leaf struct {
	Kind        Kind            `json:"kind"`
	Time        string          `json:"time"`
	Environment string          `json:"environment,omitempty"`
	Key         string          `json:"key,omitempty"`
	Body        json.RawMessage `json:"body"`
}

// TimeFormat is how entry times are written in leaves: RFC 3339 in UTC with
// up to nanosecond precision.
const TimeFormat = time.RFC3339Nano

// Seal computes the entry's canonical leaf and its hash, and canonicalises
// its body. Time is truncated to microseconds (what both stores keep) and
// kept in UTC.
func (e *Entry) Seal() error {
	if e.Kind == "" {
		return errors.New("entry: kind is empty")
	}
	if e.Time.IsZero() {
		return errors.New("entry: time is zero")
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if len(e.Body) == 0 {
		e.Body = json.RawMessage("{}")
	}
	body, err := CanonicalizeJSON(e.Body)
	if err != nil {
		return fmt.Errorf("entry body: %w", err)
	}
	e.Body = body
	// The leaf's members, written directly in canonical (sorted) order:
	// body, environment, key, kind, time.
	l := make([]byte, 0, len(body)+len(e.Environment)+len(e.Key)+len(e.Kind)+80)
	l = append(l, `{"body":`...)
	l = append(l, body...)
	if e.Environment != "" {
		l = appendCanonicalString(append(l, `,"environment":`...), e.Environment)
	}
	if e.Key != "" {
		l = appendCanonicalString(append(l, `,"key":`...), e.Key)
	}
	l = appendCanonicalString(append(l, `,"kind":`...), string(e.Kind))
	l = appendCanonicalString(append(l, `,"time":`...), e.Time.Format(TimeFormat))
	e.Leaf = append(l, '}')
	e.LeafHash = LeafHash(e.Leaf)
	return nil
}

// ParseLeaf decodes a stored leaf into the entry at index i. Everything it
// returns is read from the hashed bytes, so it cannot differ from what the
// leaf hash covers.
func ParseLeaf(i uint64, data []byte) (Entry, error) {
	var l leaf
	if err := json.Unmarshal(data, &l); err != nil {
		return Entry{}, fmt.Errorf("leaf %d: %w", i, err)
	}
	t, err := time.Parse(TimeFormat, l.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("leaf %d: time: %w", i, err)
	}
	return Entry{
		Index: i, Kind: l.Kind, Time: t.UTC(), Environment: l.Environment, Key: l.Key,
		Body: l.Body, Leaf: data, LeafHash: LeafHash(data),
	}, nil
}

// Appended is the outcome of one append.
type Appended struct {
	Entry
	// Existing is true when an entry with the same key was already in the
	// journal; Entry is then that earlier entry and nothing was appended.
	Existing bool
	// Spooled is true when the store was unreachable and the entry was
	// written durably to the local spool instead: it has no index yet, and
	// is sequenced into the journal when the store is back.
	Spooled bool
}
