package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vouch-dev/vouch/drift"
)

var _ drift.Store = (*DB)(nil)

const recordColumns = `id, time, full_id, environment, kind, body`

// LatestRecord implements drift.Store.
func (d *DB) LatestRecord(ctx context.Context, env string, at time.Time, kinds ...string) (drift.StoredRecord, error) {
	q := `SELECT ` + recordColumns + ` FROM snapshots WHERE environment = $1 AND time <= $2`
	args := []any{env, at}
	if len(kinds) > 0 {
		q += ` AND kind = ANY($3)`
		args = append(args, kinds)
	}
	recs, err := d.records(ctx, q+` ORDER BY time DESC, id DESC LIMIT 1`, args...)
	if err != nil {
		return drift.StoredRecord{}, err
	}
	if len(recs) == 0 {
		return drift.StoredRecord{}, fmt.Errorf("%s at %s: %w", env, at.Format(time.RFC3339), drift.ErrNoSnapshot)
	}
	return recs[0], nil
}

// Records implements drift.Store.
func (d *DB) Records(ctx context.Context, env string, from, to uint64) ([]drift.StoredRecord, error) {
	return d.records(ctx, `SELECT `+recordColumns+` FROM snapshots WHERE environment = $1 AND id >= $2 AND id <= $3 AND kind <> 'heartbeat' ORDER BY id`,
		env, int64(from), int64(to))
}

// RecordsBetween implements drift.Store.
func (d *DB) RecordsBetween(ctx context.Context, env string, since, until time.Time, limit int) ([]drift.StoredRecord, error) {
	return d.records(ctx, `SELECT `+recordColumns+` FROM snapshots WHERE environment = $1 AND time > $2 AND time <= $3 AND kind <> 'heartbeat' ORDER BY time, id LIMIT $4`,
		env, since, until, limit)
}

// RecordsWith implements drift.Store: the records that name the digest,
// and the other full records without their bodies, both by index.
func (d *DB) RecordsWith(ctx context.Context, env, digest string, since, until time.Time, limit int) ([]drift.StoredRecord, error) {
	return d.records(ctx, `SELECT `+recordColumns+` FROM snapshots
		WHERE id IN (SELECT id FROM snapshot_digests WHERE environment = $1 AND digest = $2) AND time > $3 AND time <= $4
		UNION ALL
		SELECT id, time, full_id, environment, kind, NULL FROM snapshots
		WHERE environment = $1 AND kind = 'full' AND time > $3 AND time <= $4
			AND id NOT IN (SELECT id FROM snapshot_digests WHERE environment = $1 AND digest = $2)
		ORDER BY time, id LIMIT $5`, env, digest, since, until, limit)
}

// Environments implements drift.Store.
func (d *DB) Environments(ctx context.Context) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT environment FROM snapshots ORDER BY environment`)
	if err != nil {
		return nil, fmt.Errorf("postgres: environments: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Admitted returns, for each digest admitted in env, the journal index of
// its latest admitted decision.
func (d *DB) Admitted(ctx context.Context, env string, digests []string) (map[string]uint64, error) {
	out := map[string]uint64{}
	rows, err := d.pool.Query(ctx, `SELECT digest, last_id FROM admitted WHERE environment = $1 AND digest = ANY($2)`, env, digests)
	if err != nil {
		return nil, fmt.Errorf("postgres: admitted: %w", err)
	}
	var dg string
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&dg, &id}, func() error {
		out[dg] = uint64(id)
		return nil
	})
	return out, err
}

func (d *DB) records(ctx context.Context, q string, args ...any) ([]drift.StoredRecord, error) {
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshots: %w", err)
	}
	var out []drift.StoredRecord
	var id, full int64
	var at time.Time
	var env, kind string
	var body []byte
	_, err = pgx.ForEachRow(rows, []any{&id, &at, &full, &env, &kind, &body}, func() error {
		r := drift.StoredRecord{ID: uint64(id), Time: at.UTC(), FullID: uint64(full), Record: drift.Record{Environment: env, Kind: kind}}
		if body != nil { // NULL: a record listed without its body
			if err := json.Unmarshal(body, &r.Record); err != nil {
				return err
			}
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: snapshots: %w", err)
	}
	return out, nil
}

// Sightings implements drift.Store.
func (d *DB) Sightings(ctx context.Context, digests []string) (map[string][]drift.Sighting, error) {
	set := drift.SightingSet{}
	if len(digests) == 0 {
		return set.Map(), nil
	}
	var b pgx.Batch
	b.Queue(`SELECT a.digest, a.environment, a.first_id, f.time, a.last_id, l.time
		FROM admitted a JOIN journal_entries f ON f.idx = a.first_id JOIN journal_entries l ON l.idx = a.last_id
		WHERE a.digest = ANY($1)`, digests)
	b.Queue(`SELECT r.digest, r.environment, r.first_id, s.time FROM ran r JOIN snapshots s ON s.id = r.first_id WHERE r.digest = ANY($1)`, digests)
	br := d.pool.SendBatch(ctx, &b)
	defer br.Close()
	var dg, env string
	var first, last int64
	var firstAt, lastAt time.Time
	rows, err := br.Query()
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&dg, &env, &first, &firstAt, &last, &lastAt}, func() error {
			set.Admitted(dg, env, drift.JournalRef{Index: uint64(first), Time: firstAt.UTC()}, drift.JournalRef{Index: uint64(last), Time: lastAt.UTC()})
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: sightings: %w", err)
	}
	rows, err = br.Query()
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&dg, &env, &first, &firstAt}, func() error {
			set.Ran(dg, env, drift.JournalRef{Index: uint64(first), Time: firstAt.UTC()})
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: sightings: %w", err)
	}
	return set.Map(), nil
}
