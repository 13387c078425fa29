package sqlite

import "context"

// ExecForTest runs a statement directly, bypassing the store's API.
func (d *DB) ExecForTest(ctx context.Context, stmt string) error {
	_, err := d.db.ExecContext(ctx, stmt)
	return err
}
