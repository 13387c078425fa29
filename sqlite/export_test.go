package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/vouch-dev/vouch/journal"
)

// ExecForTest runs a statement directly, bypassing the store's API.
func (d *DB) ExecForTest(ctx context.Context, stmt string) error {
	_, err := d.db.ExecContext(ctx, stmt)
	return err
}

// The storetest.Tamperer side of the store: what an operator with the
// database file could do, triggers dropped first.

func (d *DB) tamper(t *testing.T, stmts ...string) {
	t.Helper()
	for _, s := range append([]string{
		`DROP TRIGGER IF EXISTS journal_entries_no_update`, `DROP TRIGGER IF EXISTS journal_entries_no_delete`,
		`DROP TRIGGER IF EXISTS journal_checkpoints_no_delete`,
	}, stmts...) {
		if _, err := d.db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func (d *DB) ReplaceLeaf(t *testing.T, index uint64, data []byte) {
	h := journal.LeafHash(data)
	d.tamper(t, fmt.Sprintf(`UPDATE journal_entries SET leaf = x'%x', leaf_hash = x'%x' WHERE idx = %d`, data, h[:], index))
}

func (d *DB) DeleteEntry(t *testing.T, index uint64) {
	d.tamper(t, fmt.Sprintf(`DELETE FROM journal_entries WHERE idx = %d`, index))
}

func (d *DB) SetTreeState(t *testing.T, s journal.TreeState) {
	d.tamper(t, fmt.Sprintf(`UPDATE journal_tree SET size = %d, root = x'%x', range_hashes = x'%x'`, s.Size, s.Root[:], journal.EncodeRange(s.Range)))
}

func (d *DB) DeleteCheckpointsFrom(t *testing.T, size uint64) {
	d.tamper(t, fmt.Sprintf(`DELETE FROM journal_checkpoints WHERE size >= %d`, size))
}

func (d *DB) RewriteEvidence(t *testing.T, stmt string) { d.tamper(t, stmt) }

func (d *DB) ReplaceSnapshotBody(t *testing.T, id uint64, body []byte) {
	d.tamper(t, fmt.Sprintf(`UPDATE snapshots SET body = x'%x' WHERE id = %d`, body, id))
}

func (d *DB) InsertArtifact(t *testing.T, id uint64, digest string) {
	d.tamper(t, fmt.Sprintf(`INSERT INTO artifacts (id, digest, name, git_commit, repository, build_url, pipeline, reported_by, reported_at, author) VALUES (%d, '%s', 'registry.example.com/forged', '', '', '', '', 'dba', 0, '')`, id, digest))
}
