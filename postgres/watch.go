package postgres

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// EvidenceChannel is the NOTIFY channel on which every committed evidence
// record announces its digest.
const EvidenceChannel = "vouch_evidence"

// WatchEvidence listens for evidence committed by any process (this one
// included) until ctx ends, and calls changed with each digest. It calls
// live(true) once listening and live(false) whenever the connection is
// lost, reconnecting with backoff; notifications sent while not listening
// are lost, which is what live(false) tells the caller.
func (d *DB) WatchEvidence(ctx context.Context, changed func(digest string), live func(bool), log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := d.listen(ctx, changed, live)
		live(false)
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("evidence change feed lost; lookups bypass the cache until it is back", "error", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (d *DB) listen(ctx context.Context, changed func(string), live func(bool)) error {
	conn, err := pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+EvidenceChannel); err != nil {
		return err
	}
	live(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		changed(n.Payload)
	}
}
