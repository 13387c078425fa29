package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vouch-dev/vouch/drift"
)

var _ drift.Store = (*DB)(nil)

const recordColumns = `id, time, full_id, environment, kind, body`

// LatestRecord implements drift.Store.
func (d *DB) LatestRecord(ctx context.Context, env string, at time.Time, kinds ...string) (drift.StoredRecord, error) {
	q := `SELECT ` + recordColumns + ` FROM snapshots WHERE environment = ? AND time <= ?`
	args := []any{env, micros(at)}
	if len(kinds) > 0 {
		q += ` AND kind IN (` + placeholders(len(kinds)) + `)`
		args = append(args, anySlice(kinds)...)
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
	return d.records(ctx, `SELECT `+recordColumns+` FROM snapshots WHERE environment = ? AND id >= ? AND id <= ? AND kind <> 'heartbeat' ORDER BY id`,
		env, int64(from), int64(to))
}

// RecordsBetween implements drift.Store.
func (d *DB) RecordsBetween(ctx context.Context, env string, since, until time.Time, limit int) ([]drift.StoredRecord, error) {
	return d.records(ctx, `SELECT `+recordColumns+` FROM snapshots WHERE environment = ? AND time > ? AND time <= ? AND kind <> 'heartbeat' ORDER BY time, id LIMIT ?`,
		env, micros(since), micros(until), limit)
}

// RecordsWith implements drift.Store: the records that name the digest,
// and the other full records without their bodies, both by index.
func (d *DB) RecordsWith(ctx context.Context, env, digest string, since, until time.Time, limit int) ([]drift.StoredRecord, error) {
	// CROSS JOIN and INDEXED BY: SQLite reads the digest's records and
	// the full records, never the whole range of snapshots (which it
	// would choose, by time).
	return d.records(ctx, `SELECT s.id, s.time, s.full_id, s.environment, s.kind, s.body
		FROM snapshot_digests n CROSS JOIN snapshots s ON s.id = n.id
		WHERE n.environment = ?1 AND n.digest = ?2 AND s.time > ?3 AND s.time <= ?4
		UNION ALL
		SELECT id, time, full_id, environment, kind, NULL FROM snapshots INDEXED BY snapshots_env_kind_time
		WHERE environment = ?1 AND kind = 'full' AND time > ?3 AND time <= ?4
			AND id NOT IN (SELECT id FROM snapshot_digests WHERE environment = ?1 AND digest = ?2)
		ORDER BY time, id LIMIT ?5`, env, digest, micros(since), micros(until), limit)
}

// Environments implements drift.Store.
func (d *DB) Environments(ctx context.Context) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT DISTINCT environment FROM snapshots ORDER BY environment`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: environments: %w", err)
	}
	var out []string
	err = eachRow(rows, func() error {
		var e string
		err := rows.Scan(&e)
		out = append(out, e)
		return err
	})
	return out, err
}

// Admitted returns, for each digest admitted in env, the journal index of
// its latest admitted decision.
func (d *DB) Admitted(ctx context.Context, env string, digests []string) (map[string]uint64, error) {
	out := map[string]uint64{}
	if len(digests) == 0 {
		return out, nil
	}
	rows, err := d.db.QueryContext(ctx, `SELECT digest, last_id FROM admitted WHERE environment = ? AND digest IN (`+placeholders(len(digests))+`)`,
		append([]any{env}, anySlice(digests)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: admitted: %w", err)
	}
	err = eachRow(rows, func() error {
		var dg string
		var id int64
		err := rows.Scan(&dg, &id)
		out[dg] = uint64(id)
		return err
	})
	return out, err
}

func (d *DB) records(ctx context.Context, q string, args ...any) ([]drift.StoredRecord, error) {
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: snapshots: %w", err)
	}
	var out []drift.StoredRecord
	err = eachRow(rows, func() error {
		var id, at, full int64
		var env, kind string
		var body []byte
		if err := rows.Scan(&id, &at, &full, &env, &kind, &body); err != nil {
			return err
		}
		r := drift.StoredRecord{ID: uint64(id), Time: fromMicros(at), FullID: uint64(full), Record: drift.Record{Environment: env, Kind: kind}}
		if body != nil { // NULL: a record listed without its body
			if err := json.Unmarshal(body, &r.Record); err != nil {
				return err
			}
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: snapshots: %w", err)
	}
	return out, nil
}

// Sightings implements drift.Store.
func (d *DB) Sightings(ctx context.Context, digests []string) (map[string][]drift.Sighting, error) {
	set := drift.SightingSet{}
	if len(digests) == 0 {
		return set.Map(), nil
	}
	in, args := placeholders(len(digests)), anySlice(digests)
	rows, err := d.db.QueryContext(ctx, `SELECT a.digest, a.environment, a.first_id, f.time, a.last_id, l.time
		FROM admitted a JOIN journal_entries f ON f.idx = a.first_id JOIN journal_entries l ON l.idx = a.last_id
		WHERE a.digest IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sightings: %w", err)
	}
	err = eachRow(rows, func() error {
		var dg, env string
		var first, firstAt, last, lastAt int64
		if err := rows.Scan(&dg, &env, &first, &firstAt, &last, &lastAt); err != nil {
			return err
		}
		set.Admitted(dg, env, drift.JournalRef{Index: uint64(first), Time: fromMicros(firstAt)}, drift.JournalRef{Index: uint64(last), Time: fromMicros(lastAt)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: sightings: %w", err)
	}
	rows, err = d.db.QueryContext(ctx, `SELECT r.digest, r.environment, r.first_id, s.time
		FROM ran r JOIN snapshots s ON s.id = r.first_id WHERE r.digest IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: sightings: %w", err)
	}
	err = eachRow(rows, func() error {
		var dg, env string
		var first, at int64
		if err := rows.Scan(&dg, &env, &first, &at); err != nil {
			return err
		}
		set.Ran(dg, env, drift.JournalRef{Index: uint64(first), Time: fromMicros(at)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: sightings: %w", err)
	}
	return set.Map(), nil
}
