package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/vouch-dev/vouch/evidence/trust"
)

// trustedRootCheck is how often vouch serve looks for a new
// sigstore_trusted_root.
const trustedRootCheck = time.Minute

// watchTrustedRoot reloads the Sigstore trusted roots when the file's
// content changes from last (what t was loaded from) — a ConfigMap the
// operator updated after Sigstore or GitHub rotated their keys — looking
// every interval until ctx ends. Roots that do not load are logged, and
// the previous ones stay in force.
func watchTrustedRoot(ctx context.Context, file string, last []byte, t *trust.Trust, log *slog.Logger, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		b, err := os.ReadFile(file)
		if err != nil || bytes.Equal(b, last) {
			continue // a ConfigMap's files are swapped atomically: a failed read is not a change
		}
		last = b
		if err := t.SetTrustedRoot(b); err != nil {
			log.Error("sigstore_trusted_root changed but does not load: the previous trusted roots stay in force", "file", file, "error", err)
			continue
		}
		log.Info("sigstore_trusted_root changed: verifying keyless signatures against the new trusted roots", "file", file)
	}
}
