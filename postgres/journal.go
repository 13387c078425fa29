package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vouch-dev/vouch/journal"
)

var _ journal.Store = (*DB)(nil)

// AppendBatch implements journal.Store. The transaction locks the tree-state
// row first, so batches from every replica are sequenced one after another.
func (d *DB) AppendBatch(ctx context.Context, entries []journal.Entry) ([]journal.Appended, error) {
	var results []journal.Appended
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var size int64
		var root, rng []byte
		if err := tx.QueryRow(ctx, `SELECT size, root, range_hashes FROM journal_tree WHERE id = 1 FOR UPDATE`).Scan(&size, &root, &rng); err != nil {
			return fmt.Errorf("lock tree state: %w", err)
		}
		state, err := decodeTreeState(size, root, rng)
		if err != nil {
			return err
		}
		existing, err := entriesByKey(ctx, tx, journal.Keys(entries))
		if err != nil {
			return err
		}
		b, err := journal.PlanBatch(state, entries, existing)
		if err != nil {
			return err
		}
		results = b.Results
		if len(b.New) == 0 {
			return nil
		}
		rows := make([][]any, len(b.New))
		for i, e := range b.New {
			var key any
			if e.Key != "" {
				key = e.Key
			}
			rows[i] = []any{int64(e.Index), string(e.Kind), e.Time, e.Environment, key, e.Leaf, e.LeafHash[:]}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"journal_entries"},
			[]string{"idx", "kind", "time", "environment", "key", "leaf", "leaf_hash"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("insert entries: %w", err)
		}
		var batch pgx.Batch
		for _, e := range b.New {
			if err := project(&batch, e); err != nil {
				return err
			}
		}
		batch.Queue(`UPDATE journal_tree SET size = $1, root = $2, range_hashes = $3 WHERE id = 1`,
			int64(b.State.Size), b.State.Root[:], journal.EncodeRange(b.State.Range))
		if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
			return fmt.Errorf("store batch: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	return results, nil
}

// TreeState implements journal.Store.
func (d *DB) TreeState(ctx context.Context) (journal.TreeState, error) {
	var size int64
	var root, rng []byte
	if err := d.pool.QueryRow(ctx, `SELECT size, root, range_hashes FROM journal_tree WHERE id = 1`).Scan(&size, &root, &rng); err != nil {
		return journal.TreeState{}, fmt.Errorf("postgres: read tree state: %w", err)
	}
	return decodeTreeState(size, root, rng)
}

func decodeTreeState(size int64, root, rng []byte) (journal.TreeState, error) {
	s := journal.TreeState{Size: uint64(size)}
	if len(root) != len(s.Root) {
		return s, fmt.Errorf("tree state: root has %d bytes", len(root))
	}
	copy(s.Root[:], root)
	var err error
	s.Range, err = journal.DecodeRange(rng)
	return s, err
}

func entriesByKey(ctx context.Context, tx pgx.Tx, keys []string) (map[string]journal.Entry, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT idx, leaf FROM journal_entries WHERE key = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("look up keys: %w", err)
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
	where := []string{"idx >= $1"}
	args := []any{int64(q.From)}
	if q.Kind != "" {
		args = append(args, string(q.Kind))
		where = append(where, "kind = $"+strconv.Itoa(len(args)))
	}
	if q.Environment != "" {
		args = append(args, q.Environment)
		where = append(where, "environment = $"+strconv.Itoa(len(args)))
	}
	args = append(args, q.EffectiveLimit())
	rows, err := d.pool.Query(ctx, `SELECT idx, leaf FROM journal_entries WHERE `+strings.Join(where, " AND ")+
		` ORDER BY idx LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: entries: %w", err)
	}
	return scanEntries(rows)
}

func scanEntries(rows pgx.Rows) ([]journal.Entry, error) {
	var out []journal.Entry
	var idx int64
	var leaf []byte
	_, err := pgx.ForEachRow(rows, []any{&idx, &leaf}, func() error {
		e, err := journal.ParseLeaf(uint64(idx), leaf)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: entries: %w", err)
	}
	return out, nil
}
