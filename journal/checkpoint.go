package journal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a signed tree head in the C2SP tlog-checkpoint format
// (https://c2sp.org/tlog-checkpoint): a signed note (golang.org/x/mod/sumdb/note,
// Ed25519) whose text is the origin, the tree size and the base64 root hash,
// one per line, and one extension line, "time <RFC 3339>": when it was
// signed, under the signature (checkpoints signed before it was added have
// none).
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   Hash
	// Note is the complete signed note, as published.
	Note []byte
	// Time is when it was signed: the note's time line, or for an older
	// stored checkpoint without one, when the store kept it.
	Time time.Time
}

// timeLine starts the extension line that carries the signing time.
const timeLine = "time "

// checkpointText is the note text of a checkpoint.
func checkpointText(origin string, size uint64, root Hash, at time.Time) string {
	return fmt.Sprintf("%s\n%d\n%s\n%s%s\n", origin, size, base64.StdEncoding.EncodeToString(root[:]), timeLine, at.Format(time.RFC3339Nano))
}

// SignCheckpoint signs the tree head (size, root) as origin.
func SignCheckpoint(s note.Signer, origin string, size uint64, root Hash, now time.Time) (Checkpoint, error) {
	at := now.UTC().Truncate(time.Microsecond)
	msg, err := note.Sign(&note.Note{Text: checkpointText(origin, size, root, at)}, s)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return Checkpoint{Origin: origin, Size: size, Root: root, Note: msg, Time: at}, nil
}

// KeyID names a verifier's key as note does: its name and key hash
// (NAME+1a2b3c4d). Two keys can share a name, never a hash.
func KeyID(v note.Verifier) string { return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()) }

// OpenCheckpoint verifies a signed checkpoint with v and parses it. It fails
// if the signature is missing, made by another key, or wrong, or if the
// text is not a checkpoint.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, fmt.Errorf("checkpoint is not signed by %s: %w", KeyID(v), err)
		}
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	c.Note = msg
	return c, nil
}

// ParseCheckpoint parses the text of a checkpoint note (without checking
// any signature).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return Checkpoint{}, errors.New("checkpoint: want origin, size and root hash lines")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || (len(lines[1]) > 1 && lines[1][0] == '0') {
		return Checkpoint{}, fmt.Errorf("checkpoint: size %q is not a decimal number", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != len(Hash{}) {
		return Checkpoint{}, fmt.Errorf("checkpoint: root %q is not a base64 SHA-256 hash", lines[2])
	}
	c := Checkpoint{Origin: lines[0], Size: size}
	copy(c.Root[:], root)
	for _, ext := range strings.Split(strings.TrimSuffix(lines[3], "\n"), "\n") {
		if v, ok := strings.CutPrefix(ext, timeLine); ok {
			if c.Time, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return Checkpoint{}, fmt.Errorf("checkpoint: time %q is not RFC 3339", v)
			}
		}
	}
	return c, nil
}

// Key files hold a signer key in golang.org/x/mod/sumdb/note's encoding
// ("PRIVATE+KEY+<origin>+<hash>+<key>"); the key's name is the origin.

// LoadOrCreateKey reads the signer key at path, or, if there is no file,
// generates an Ed25519 key named origin and writes it there (mode 0600).
// When the file exists and origin is not empty, its name must be origin.
func LoadOrCreateKey(path, origin string) (skey string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		skey = strings.TrimSpace(string(b))
		name, err := KeyName(skey)
		if err != nil {
			return "", false, fmt.Errorf("journal key %s: %w", path, err)
		}
		if origin != "" && name != origin {
			return "", false, fmt.Errorf("journal key %s is for origin %q, but the configured origin is %q", path, name, origin)
		}
		return skey, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("journal key: %w", err)
	}
	if origin == "" {
		origin = DefaultOrigin()
	}
	skey, _, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", false, fmt.Errorf("journal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("journal key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, err
	}
	return skey, true, f.Close()
}

// DefaultOrigin names a new journal: "vouch.local/" and a random id, unique
// per installation (set --journal-origin to name it after your
// organisation, e.g. "vouch.bank.example/prod").
func DefaultOrigin() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "vouch.local/" + hex.EncodeToString(b)
}

// KeyName returns the name (origin) of a signer key.
func KeyName(skey string) (string, error) {
	if _, err := note.NewSigner(skey); err != nil {
		return "", fmt.Errorf("not a signer key: %w", err)
	}
	return strings.SplitN(skey, "+", 4)[2], nil
}

// VerifierKey derives the public verifier key ("<origin>+<hash>+<key>")
// of a signer key: what auditors need to verify checkpoints.
func VerifierKey(skey string) (string, error) {
	name, err := KeyName(skey)
	if err != nil {
		return "", err
	}
	parts := strings.SplitN(skey, "+", 5) // PRIVATE, KEY, name, hash, key (base64 may hold '+')
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize {
		return "", errors.New("not an Ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(name, pub)
}

// NewVerifier parses a verifier key; it accepts the key itself or the path
// of a file holding it.
func NewVerifier(keyOrFile string) (note.Verifier, error) {
	k := strings.TrimSpace(keyOrFile)
	if b, err := os.ReadFile(k); err == nil {
		k = strings.TrimSpace(string(b))
	}
	v, err := note.NewVerifier(k)
	if err != nil {
		return nil, fmt.Errorf("public key %q: %w (want <origin>+<hash>+<key>, as `vouch journal key` prints)", truncateKey(k), err)
	}
	return v, nil
}

func truncateKey(k string) string {
	if len(k) > 60 {
		return k[:60] + "…"
	}
	return k
}

// Equal reports whether two checkpoints describe the same tree head.
func (c Checkpoint) Equal(o Checkpoint) bool {
	return c.Origin == o.Origin && c.Size == o.Size && c.Root == o.Root && bytes.Equal(c.Note, o.Note)
}

// StoredCheckpoint rebuilds a checkpoint a store kept. It parses the note
// text (without checking the signature: that is the reader's job, with the
// public key) and checks it agrees with the stored size and root.
func StoredCheckpoint(size uint64, root, msg []byte, at time.Time) (Checkpoint, error) {
	text, _, _ := strings.Cut(string(msg), "\n\n")
	c, err := ParseCheckpoint(text + "\n")
	if err != nil {
		return Checkpoint{}, fmt.Errorf("stored checkpoint %d: %w", size, err)
	}
	if c.Size != size || !bytes.Equal(c.Root[:], root) {
		return Checkpoint{}, fmt.Errorf("stored checkpoint %d: its note says size %d root %s", size, c.Size, c.Root)
	}
	c.Note = msg
	if c.Time.IsZero() {
		c.Time = at.UTC()
	}
	return c, nil
}
