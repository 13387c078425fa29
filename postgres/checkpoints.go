package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"

	"github.com/vouch-dev/vouch/journal"
)

// NodeHashes implements journal.NodeReader.
func (d *DB) NodeHashes(ctx context.Context, ids []compact.NodeID) ([]journal.Hash, error) {
	found := make(map[compact.NodeID]journal.Hash, len(ids))
	var leaves, nidx []int64
	var levels []int16
	for _, id := range ids {
		if id.Level == 0 {
			leaves = append(leaves, int64(id.Index))
		} else {
			levels, nidx = append(levels, int16(id.Level)), append(nidx, int64(id.Index))
		}
	}
	rows, err := d.pool.Query(ctx, `SELECT 0::smallint, idx, leaf_hash FROM journal_entries WHERE idx = ANY($1)
		UNION ALL
		SELECT n.level, n.idx, n.hash FROM journal_nodes n JOIN unnest($2::smallint[], $3::bigint[]) AS w(level, idx) USING (level, idx)`,
		leaves, levels, nidx)
	if err != nil {
		return nil, fmt.Errorf("postgres: node hashes: %w", err)
	}
	var level int16
	var idx int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&level, &idx, &h}, func() error {
		var x journal.Hash
		copy(x[:], h)
		found[compact.NewNodeID(uint(level), uint64(idx))] = x
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: node hashes: %w", err)
	}
	return journal.OrderNodes(ids, found)
}

// AddCheckpoint implements journal.CheckpointStore.
func (d *DB) AddCheckpoint(ctx context.Context, c journal.Checkpoint) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO journal_checkpoints (size, root, note, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING`,
		int64(c.Size), c.Root[:], c.Note, c.Time)
	if err != nil {
		return fmt.Errorf("postgres: add checkpoint: %w", err)
	}
	return nil
}

// LatestCheckpoint implements journal.CheckpointStore.
func (d *DB) LatestCheckpoint(ctx context.Context) (journal.Checkpoint, error) {
	cs, err := d.checkpoints(ctx, `SELECT size, root, note, created_at FROM journal_checkpoints ORDER BY size DESC LIMIT 1`)
	if err != nil {
		return journal.Checkpoint{}, err
	}
	if len(cs) == 0 {
		return journal.Checkpoint{}, journal.ErrNotFound
	}
	return cs[0], nil
}

// Checkpoints implements journal.CheckpointStore.
func (d *DB) Checkpoints(ctx context.Context, from uint64, limit int) ([]journal.Checkpoint, error) {
	return d.checkpoints(ctx, `SELECT size, root, note, created_at FROM journal_checkpoints WHERE size >= $1 ORDER BY size LIMIT $2`, int64(from), limit)
}

func (d *DB) checkpoints(ctx context.Context, q string, args ...any) ([]journal.Checkpoint, error) {
	rows, err := d.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: checkpoints: %w", err)
	}
	var out []journal.Checkpoint
	var size int64
	var root, note []byte
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&size, &root, &note, &at}, func() error {
		c, err := journal.StoredCheckpoint(uint64(size), root, note, at)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: checkpoints: %w", err)
	}
	return out, nil
}
