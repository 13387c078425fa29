package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/vouch-dev/vouch/journal"
)

var _ journal.Store = (*DB)(nil)

// AppendBatch implements journal.Store. SQLite has one writer at a time;
// the immediate transaction serialises batches.
func (d *DB) AppendBatch(ctx context.Context, entries []journal.Entry) ([]journal.Appended, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	state, err := treeState(ctx, tx)
	if err != nil {
		return nil, err
	}
	existing, err := entriesByKey(ctx, tx, journal.Keys(entries))
	if err != nil {
		return nil, err
	}
	b, err := journal.PlanBatch(state, entries, existing)
	if err != nil {
		return nil, err
	}
	if len(b.New) == 0 {
		return b.Results, nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO journal_entries (idx, kind, time, environment, key, leaf, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: append: %w", err)
	}
	defer ins.Close()
	for _, e := range b.New {
		var key any
		if e.Key != "" {
			key = e.Key
		}
		if _, err := ins.ExecContext(ctx, int64(e.Index), string(e.Kind), micros(e.Time), e.Environment, key, e.Leaf, e.LeafHash[:]); err != nil {
			return nil, fmt.Errorf("sqlite: append entry %d: %w", e.Index, err)
		}
		if err := project(ctx, tx, e); err != nil {
			return nil, err
		}
	}
	nodes, err := tx.PrepareContext(ctx, `INSERT INTO journal_nodes (level, idx, hash) VALUES (?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: append: %w", err)
	}
	defer nodes.Close()
	for _, n := range b.Nodes {
		if _, err := nodes.ExecContext(ctx, int64(n.Level), int64(n.Index), n.Hash[:]); err != nil {
			return nil, fmt.Errorf("sqlite: append node %d/%d: %w", n.Level, n.Index, err)
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE journal_tree SET size = ?, root = ?, range_hashes = ? WHERE id = 1 AND size = ?`,
		int64(b.State.Size), b.State.Root[:], journal.EncodeRange(b.State.Range), int64(state.Size))
	if err != nil {
		return nil, fmt.Errorf("sqlite: update tree state: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	return b.Results, nil
}

// TreeState implements journal.Store.
func (d *DB) TreeState(ctx context.Context) (journal.TreeState, error) {
	return treeState(ctx, d.db)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func treeState(ctx context.Context, q querier) (journal.TreeState, error) {
	var size int64
	var root, rng []byte
	if err := q.QueryRowContext(ctx, `SELECT size, root, range_hashes FROM journal_tree WHERE id = 1`).Scan(&size, &root, &rng); err != nil {
		return journal.TreeState{}, fmt.Errorf("sqlite: read tree state: %w", err)
	}
	return journal.DecodeTreeState(size, root, rng)
}

func entriesByKey(ctx context.Context, q querier, keys []string) (map[string]journal.Entry, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT idx, leaf FROM journal_entries WHERE key IN (`+placeholders(len(keys))+`)`, anySlice(keys)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: look up keys: %w", err)
	}
	entries, err := scanEntries(rows)
	if err != nil {
		return nil, err
	}
	out := make(map[string]journal.Entry, len(entries))
	for _, e := range entries {
		out[e.Key] = e
	}
	return out, nil
}

// Entries implements journal.Store.
func (d *DB) Entries(ctx context.Context, q journal.Query) ([]journal.Entry, error) {
	where := []string{"idx >= ?"}
	args := []any{int64(q.From)}
	if q.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, string(q.Kind))
	}
	if q.Environment != "" {
		where = append(where, "environment = ?")
		args = append(args, q.Environment)
	}
	args = append(args, q.EffectiveLimit())
	rows, err := d.db.QueryContext(ctx, `SELECT idx, leaf FROM journal_entries WHERE `+strings.Join(where, " AND ")+` ORDER BY idx LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: entries: %w", err)
	}
	return scanEntries(rows)
}

func scanEntries(rows *sql.Rows) ([]journal.Entry, error) {
	defer rows.Close()
	var out []journal.Entry
	for rows.Next() {
		var idx int64
		var leaf []byte
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, fmt.Errorf("sqlite: scan entry: %w", err)
		}
		e, err := journal.ParseLeaf(uint64(idx), leaf)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: entries: %w", err)
	}
	return out, nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// Leaves implements journal.LeafReader.
func (d *DB) Leaves(ctx context.Context, from uint64, limit int) ([]journal.Leaf, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT idx, kind, environment, leaf, leaf_hash FROM journal_entries WHERE idx >= ? ORDER BY idx LIMIT ?`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: leaves: %w", err)
	}
	out := make([]journal.Leaf, 0, limit)
	err = eachRow(rows, func() error {
		var l journal.Leaf
		var idx int64
		var kind string
		var h []byte
		if err := rows.Scan(&idx, &kind, &l.Environment, &l.Data, &h); err != nil {
			return err
		}
		l.Index, l.Kind = uint64(idx), journal.Kind(kind)
		copy(l.StoredHash[:], h)
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: leaves: %w", err)
	}
	return out, nil
}

// FirstIndexAt implements journal.Store.
func (d *DB) FirstIndexAt(ctx context.Context, t time.Time) (uint64, error) {
	var idx sql.NullInt64
	if err := d.db.QueryRowContext(ctx, `SELECT MIN(idx) FROM journal_entries WHERE time = (SELECT MIN(time) FROM journal_entries WHERE time >= ?)`, micros(t)).Scan(&idx); err != nil {
		return 0, fmt.Errorf("sqlite: first index at %s: %w", t, err)
	}
	if idx.Valid {
		return uint64(idx.Int64), nil
	}
	st, err := d.TreeState(ctx)
	return st.Size, err
}
