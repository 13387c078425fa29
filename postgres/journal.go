package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

var _ journal.Store = (*DB)(nil)

// AppendBatch implements journal.Store. The transaction locks the tree-state
// row first, so batches from every replica are sequenced one after another.
// It takes two round trips: one pipelines BEGIN, the lock and the key
// lookup; the other pipelines the inserts, the new tree head and COMMIT.
func (d *DB) AppendBatch(ctx context.Context, entries []journal.Entry) ([]journal.Appended, error) {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	defer conn.Release()
	res, err := appendBatch(ctx, conn.Conn(), entries)
	if err != nil {
		if conn.Conn().PgConn().TxStatus() != 'I' {
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				conn.Conn().Close(context.WithoutCancel(ctx)) // the pool drops closed connections
			}
		}
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	return res, nil
}

func appendBatch(ctx context.Context, c *pgx.Conn, entries []journal.Entry) ([]journal.Appended, error) {
	keys := journal.Keys(entries)
	if keys == nil {
		keys = []string{}
	}
	var lock pgx.Batch
	lock.Queue(`BEGIN`)
	lock.Queue(`SELECT size, root, range_hashes FROM journal_tree WHERE id = 1 FOR UPDATE`)
	lock.Queue(`SELECT idx, leaf FROM journal_entries WHERE key = ANY($1)`, keys)
	br := c.SendBatch(ctx, &lock)
	state, existing, err := readHead(br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	b, err := journal.PlanBatch(state, entries, existing)
	if err != nil {
		return nil, err
	}
	var write pgx.Batch
	if len(b.New) > 0 {
		n := len(b.New)
		idx, kinds, times, envs, ekeys, leaves, hashes := make([]int64, n), make([]string, n), make([]time.Time, n), make([]string, n), make([]*string, n), make([][]byte, n), make([][]byte, n)
		for i, e := range b.New {
			idx[i], kinds[i], times[i], envs[i], leaves[i], hashes[i] = int64(e.Index), string(e.Kind), e.Time, e.Environment, e.Leaf, e.LeafHash[:]
			if e.Key != "" {
				ekeys[i] = &b.New[i].Key
			}
		}
		write.Queue(`INSERT INTO journal_entries (idx, kind, time, environment, key, leaf, leaf_hash)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::bytea[], $7::bytea[])`,
			idx, kinds, times, envs, ekeys, leaves, hashes)
		for _, e := range b.New {
			if err := project(&write, e); err != nil {
				return nil, err
			}
			if d := evidence.EntryDigest(e); d != "" {
				// Delivered to every listening replica when the batch commits.
				write.Queue(`SELECT pg_notify($1, $2)`, EvidenceChannel, d)
			}
		}
		if len(b.Nodes) > 0 {
			levels, nidx, nhash := make([]int16, len(b.Nodes)), make([]int64, len(b.Nodes)), make([][]byte, len(b.Nodes))
			for i, n := range b.Nodes {
				levels[i], nidx[i], nhash[i] = int16(n.Level), int64(n.Index), b.Nodes[i].Hash[:]
			}
			write.Queue(`INSERT INTO journal_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])`, levels, nidx, nhash)
		}
		write.Queue(`UPDATE journal_tree SET size = $1, root = $2, range_hashes = $3 WHERE id = 1`,
			int64(b.State.Size), b.State.Root[:], journal.EncodeRange(b.State.Range))
	}
	write.Queue(`COMMIT`)
	if err := c.SendBatch(ctx, &write).Close(); err != nil {
		return nil, err
	}
	return b.Results, nil
}

// readHead reads the results of the lock batch: BEGIN, the locked tree
// state and the entries already stored under the batch's keys.
func readHead(br pgx.BatchResults) (journal.TreeState, map[string]journal.Entry, error) {
	if _, err := br.Exec(); err != nil {
		return journal.TreeState{}, nil, fmt.Errorf("begin: %w", err)
	}
	var size int64
	var root, rng []byte
	if err := br.QueryRow().Scan(&size, &root, &rng); err != nil {
		return journal.TreeState{}, nil, fmt.Errorf("lock tree state: %w", err)
	}
	state, err := journal.DecodeTreeState(size, root, rng)
	if err != nil {
		return journal.TreeState{}, nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return journal.TreeState{}, nil, fmt.Errorf("look up keys: %w", err)
	}
	found, err := scanEntries(rows)
	if err != nil {
		return journal.TreeState{}, nil, err
	}
	existing := make(map[string]journal.Entry, len(found))
	for _, e := range found {
		existing[e.Key] = e
	}
	return state, existing, nil
}

// TreeState implements journal.Store.
func (d *DB) TreeState(ctx context.Context) (journal.TreeState, error) {
	var size int64
	var root, rng []byte
	if err := d.pool.QueryRow(ctx, `SELECT size, root, range_hashes FROM journal_tree WHERE id = 1`).Scan(&size, &root, &rng); err != nil {
		return journal.TreeState{}, fmt.Errorf("postgres: read tree state: %w", err)
	}
	return journal.DecodeTreeState(size, root, rng)
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

// Leaves implements journal.LeafReader.
func (d *DB) Leaves(ctx context.Context, from uint64, limit int) ([]journal.Leaf, error) {
	rows, err := d.pool.Query(ctx, `SELECT idx, kind, environment, leaf, leaf_hash FROM journal_entries WHERE idx >= $1 ORDER BY idx LIMIT $2`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: leaves: %w", err)
	}
	out := make([]journal.Leaf, 0, limit)
	var idx int64
	var kind, env string
	var data, h []byte
	_, err = pgx.ForEachRow(rows, []any{&idx, &kind, &env, &data, &h}, func() error {
		l := journal.Leaf{Index: uint64(idx), Kind: journal.Kind(kind), Environment: env, Data: append([]byte(nil), data...)}
		copy(l.StoredHash[:], h)
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: leaves: %w", err)
	}
	return out, nil
}

// FirstIndexAt implements journal.Store.
func (d *DB) FirstIndexAt(ctx context.Context, t time.Time) (uint64, error) {
	var idx *int64
	if err := d.pool.QueryRow(ctx, `SELECT MIN(idx) FROM journal_entries WHERE time >= $1`, t).Scan(&idx); err != nil {
		return 0, fmt.Errorf("postgres: first index at %s: %w", t, err)
	}
	if idx != nil {
		return uint64(*idx), nil
	}
	st, err := d.TreeState(ctx)
	return st.Size, err
}
