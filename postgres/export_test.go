package postgres

import "context"

// ExecForTest runs a statement directly, bypassing the store's API.
func (d *DB) ExecForTest(ctx context.Context, stmt string) error {
	_, err := d.pool.Exec(ctx, stmt)
	return err
}
