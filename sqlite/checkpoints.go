package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/compact"

	"github.com/vouch-dev/vouch/journal"
)

// NodeHashes implements journal.NodeReader.
func (d *DB) NodeHashes(ctx context.Context, ids []compact.NodeID) ([]journal.Hash, error) {
	found := make(map[compact.NodeID]journal.Hash, len(ids))
	var leaves, nodes []any
	var nodeMarks []string
	for _, id := range ids {
		if id.Level == 0 {
			leaves = append(leaves, int64(id.Index))
		} else {
			nodes = append(nodes, int64(id.Level), int64(id.Index))
			nodeMarks = append(nodeMarks, "(?,?)")
		}
	}
	collect := func(q string, args []any) error {
		rows, err := d.db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		return eachRow(rows, func() error {
			var level, idx int64
			var h []byte
			if err := rows.Scan(&level, &idx, &h); err != nil {
				return err
			}
			var x journal.Hash
			copy(x[:], h)
			found[compact.NewNodeID(uint(level), uint64(idx))] = x
			return nil
		})
	}
	if len(leaves) > 0 {
		if err := collect(`SELECT 0, idx, leaf_hash FROM journal_entries WHERE idx IN (`+placeholders(len(leaves))+`)`, leaves); err != nil {
			return nil, fmt.Errorf("sqlite: node hashes: %w", err)
		}
	}
	if len(nodes) > 0 {
		if err := collect(`SELECT level, idx, hash FROM journal_nodes WHERE (level, idx) IN (VALUES `+strings.Join(nodeMarks, ",")+`)`, nodes); err != nil {
			return nil, fmt.Errorf("sqlite: node hashes: %w", err)
		}
	}
	return journal.OrderNodes(ids, found)
}

// AddCheckpoint implements journal.CheckpointStore.
func (d *DB) AddCheckpoint(ctx context.Context, c journal.Checkpoint) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO journal_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING`,
		int64(c.Size), c.Root[:], c.Note, micros(c.Time))
	if err != nil {
		return fmt.Errorf("sqlite: add checkpoint: %w", err)
	}
	return nil
}

// LatestCheckpoint implements journal.CheckpointStore.
func (d *DB) LatestCheckpoint(ctx context.Context) (journal.Checkpoint, error) {
	var size, at int64
	var root, note []byte
	err := d.db.QueryRowContext(ctx, `SELECT size, root, note, created_at FROM journal_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &root, &note, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return journal.Checkpoint{}, journal.ErrNotFound
	}
	if err != nil {
		return journal.Checkpoint{}, fmt.Errorf("sqlite: latest checkpoint: %w", err)
	}
	return journal.StoredCheckpoint(uint64(size), root, note, fromMicros(at))
}

// Checkpoints implements journal.CheckpointStore.
func (d *DB) Checkpoints(ctx context.Context, from uint64, limit int) ([]journal.Checkpoint, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT size, root, note, created_at FROM journal_checkpoints WHERE size >= ? ORDER BY size LIMIT ?`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: checkpoints: %w", err)
	}
	var out []journal.Checkpoint
	err = eachRow(rows, func() error {
		var size, at int64
		var root, note []byte
		if err := rows.Scan(&size, &root, &note, &at); err != nil {
			return err
		}
		c, err := journal.StoredCheckpoint(uint64(size), root, note, fromMicros(at))
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: checkpoints: %w", err)
	}
	return out, nil
}
