package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vouch-dev/vouch/evidence"
	"github.com/vouch-dev/vouch/journal"
)

var _ journal.Store = (*DB)(nil)

// AppendBatch implements journal.Store. The batch is sequenced by the
// vouch_journal_append function inside the database (migration 0003), so
// the tree-state row lock is held only while the server works, never across
// a round trip; the whole batch — the function, the evidence records it
// carries, their change notifications and COMMIT — is one pipelined round
// trip.
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
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22") { // data exception
			return nil, fmt.Errorf("postgres: append: %w: %w", journal.ErrRefused, err)
		}
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	return res, nil
}

func appendBatch(ctx context.Context, c *pgx.Conn, entries []journal.Entry) ([]journal.Appended, error) {
	// Fold repeated keys: only the first of each goes to the database.
	first := make([]int, len(entries)) // the unique entry each one stands for
	repeat := make([]bool, len(entries))
	var unique []journal.Entry
	byKey := map[string]int{}
	for i, e := range entries {
		if len(e.Leaf) == 0 {
			return nil, fmt.Errorf("entry %d is not sealed", i)
		}
		if j, ok := byKey[e.Key]; ok && e.Key != "" {
			first[i], repeat[i] = j, true
			continue
		}
		first[i] = len(unique)
		if e.Key != "" {
			byKey[e.Key] = len(unique)
		}
		unique = append(unique, e)
	}
	// One round trip and one transaction: the statements of a batch run in
	// the implicit transaction that ends at its Sync, all or nothing.
	var b pgx.Batch
	if err := queueAppend(&b, unique); err != nil {
		return nil, err
	}
	n := len(unique)
	br := c.SendBatch(ctx, &b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("set: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	results := make([]journal.Appended, n)
	var pos int32
	var idx int64
	var existing bool
	var leaf []byte
	_, err = pgx.ForEachRow(rows, []any{&pos, &idx, &existing, &leaf}, func() error {
		i := int(pos) - 1
		if i < 0 || i >= n {
			return fmt.Errorf("sequencer returned position %d", pos)
		}
		if existing {
			e, err := journal.ParseLeaf(uint64(idx), append([]byte(nil), leaf...))
			if err != nil {
				return err
			}
			results[i] = journal.Appended{Entry: e, Existing: true}
			return nil
		}
		e := unique[i]
		e.Index = uint64(idx)
		results[i] = journal.Appended{Entry: e}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sequence: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	out := make([]journal.Appended, len(entries))
	for i := range entries {
		out[i] = results[first[i]]
		out[i].Existing = out[i].Existing || repeat[i]
	}
	return out, nil
}

// queueAppend queues the statements that append unique (entries with
// distinct keys) and project them: one round trip and one transaction.
func queueAppend(b *pgx.Batch, unique []journal.Entry) error {
	n := len(unique)
	kinds, times, envs, keys, leaves, hashes := make([]string, n), make([]time.Time, n), make([]string, n), make([]*string, n), make([][]byte, n), make([][]byte, n)
	for i, e := range unique {
		kinds[i], times[i], envs[i], leaves[i], hashes[i] = string(e.Kind), e.Time, e.Environment, e.Leaf, unique[i].LeafHash[:]
		if e.Key != "" {
			keys[i] = &unique[i].Key
		}
	}
	// Never read the whole journal. The sequencer's lookup of existing keys
	// (key = ANY (p_key)) is planned once per connection, inside a PL/pgSQL
	// function that hides the array from the planner; planned while the
	// journal was nearly empty it was a sequential scan, and every later
	// batch read the whole journal (15 ms per batch at 20,000 entries,
	// seconds at millions). The projections join the batch to the journal
	// by key, and for a large batch (a drained spool) would hash all of it.
	// With sequential scans off, both go through the key's unique index,
	// and a generic plan is as good as a custom one: each statement of the
	// batch is planned once per connection, not on every batch (the pool's
	// default is force_custom_plan, for the evidence lookups).
	b.Queue(`SELECT set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)`)
	b.Queue(`SELECT pos, entry_idx, existing, existing_leaf FROM vouch_journal_append($1, $2, $3, $4, $5, $6)`, kinds, times, envs, keys, leaves, hashes)
	var admitted admittedRows
	var decisions decisionRows
	for _, e := range unique {
		if e.Kind == journal.KindAdmission {
			admitted.add(e)
			decisions.add(e)
			continue
		}
		if err := project(b, e); err != nil {
			return err
		}
		if d := evidence.EntryDigest(e); d != "" {
			// Delivered to every listening replica when the batch commits.
			b.Queue(`SELECT pg_notify($1, $2)`, EvidenceChannel, d)
		}
	}
	admitted.queue(b)
	decisions.queue(b)
	return nil
}

// Screen implements journal.Screener: it tells, without a round trip, an
// entry PostgreSQL would refuse (a data exception, as AppendBatch reports
// it): text it cannot hold — a NUL character or invalid UTF-8 — or a time
// out of its range, in any value the append would send, projections
// included.
func (d *DB) Screen(e journal.Entry) error {
	var b pgx.Batch
	if err := queueAppend(&b, []journal.Entry{e}); err != nil {
		return fmt.Errorf("postgres: %w: %w", journal.ErrRefused, err)
	}
	for _, q := range b.QueuedQueries {
		for _, a := range q.Arguments {
			if err := storable(a); err != nil {
				return fmt.Errorf("postgres: %w: %w", journal.ErrRefused, err)
			}
		}
	}
	return nil
}

// storable reports a query argument PostgreSQL would refuse.
func storable(a any) error {
	switch v := a.(type) {
	case string:
		if i := strings.IndexByte(v, 0); i >= 0 {
			return fmt.Errorf("a text value has a NUL character (at byte %d), which PostgreSQL cannot store", i)
		}
		if !utf8.ValidString(v) {
			return errors.New("a text value is not valid UTF-8")
		}
	case *string:
		if v != nil {
			return storable(*v)
		}
	case time.Time:
		// PostgreSQL's timestamptz runs from 4713 BC to 294276 AD.
		if y := v.Year(); y < -4712 || y > 294276 {
			return fmt.Errorf("time %s is out of PostgreSQL's range", v)
		}
	case *time.Time:
		if v != nil {
			return storable(*v)
		}
	case []string:
		return storableEach(v)
	case []*string:
		return storableEach(v)
	case []time.Time:
		return storableEach(v)
	}
	return nil
}

func storableEach[T any](xs []T) error {
	for _, x := range xs {
		if err := storable(x); err != nil {
			return err
		}
	}
	return nil
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
	if err := d.pool.QueryRow(ctx, `SELECT MIN(idx) FROM journal_entries WHERE time = (SELECT MIN(time) FROM journal_entries WHERE time >= $1)`, t).Scan(&idx); err != nil {
		return 0, fmt.Errorf("postgres: first index at %s: %w", t, err)
	}
	if idx != nil {
		return uint64(*idx), nil
	}
	st, err := d.TreeState(ctx)
	return st.Size, err
}
